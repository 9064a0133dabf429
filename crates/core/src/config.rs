//! The widget's runtime configuration, read from `config.json` at start-up so one build serves
//! every tenant (DESIGN.md §5). Unknown fields are ignored (newer configs keep working with
//! older widgets); invalid values are a [`ConfigError`] the widget shows instead of a blank panel.
//!
//! ```json
//! {
//!   "hub": { "url": "/api", "keepAliveIntervalSeconds": 15, "serverTimeoutSeconds": 30 },
//!   "auth": { "mode": "dev", "tokenUrl": "/dev/token" },
//!   "ringTimeoutSeconds": 30,
//!   "host": "auto"
//! }
//! ```

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// Where and how to reach the notification hub.
    pub hub: HubConfig,
    /// How the agent signs in.
    pub auth: AuthConfig,
    /// How long an incoming call rings before it is reported missed, in seconds (5–300).
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_seconds: u32,
    /// Which host the widget lives in: `auto`, `cif`, `postmessage`, `opencti`, `standalone`.
    #[serde(default = "default_host")]
    pub host: String,
}

/// The hub endpoint and its timers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubConfig {
    /// The hub URL as the official client's `withUrl` takes it, relative to the page or
    /// absolute: negotiate goes to `{url}/negotiate`. `/api` for the Azure Functions adaptor,
    /// whose negotiate answers with a redirect to the SignalR client endpoint.
    pub url: String,
    /// Seconds without sending before a ping (SignalR default 15).
    #[serde(default = "default_keep_alive")]
    pub keep_alive_interval_seconds: u32,
    /// Seconds without receiving before the connection is considered lost (SignalR default 30;
    /// must be at least twice the server's keep-alive).
    #[serde(default = "default_server_timeout")]
    pub server_timeout_seconds: u32,
}

/// Sign-in configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum AuthConfig {
    /// Dev tokens from `switchboard-hub` (`POST {tokenUrl}` with `{"user"}`); demo and tests only.
    #[serde(rename_all = "camelCase")]
    Dev {
        /// The hub's dev token endpoint.
        #[serde(default = "default_token_url")]
        token_url: String,
    },
    /// Entra ID (or any OIDC authority) through MSAL.js.
    #[serde(rename_all = "camelCase")]
    Msal {
        /// The app registration's client id.
        client_id: String,
        /// `https://login.microsoftonline.com/{tenant}` or another https authority.
        authority: String,
        /// Scopes of the hub API, e.g. `api://<app>/access_as_user`.
        scopes: Vec<String>,
    },
}

/// What is wrong with a configuration, in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Not JSON, or a field of the wrong type or a missing required field.
    #[error("config.json is not valid: {0}")]
    Invalid(String),
    /// A value is out of its range.
    #[error("config.json: {field} must be {expected}")]
    OutOfRange {
        field: &'static str,
        expected: &'static str,
    },
}

fn default_ring_timeout() -> u32 {
    30
}
fn default_host() -> String {
    "auto".into()
}
fn default_keep_alive() -> u32 {
    15
}
fn default_server_timeout() -> u32 {
    30
}
fn default_token_url() -> String {
    "/dev/token".into()
}

impl Config {
    /// Parses and validates `config.json`.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config: Config =
            serde_json::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and relations between values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(5..=300).contains(&self.ring_timeout_seconds) {
            return Err(ConfigError::OutOfRange {
                field: "ringTimeoutSeconds",
                expected: "between 5 and 300",
            });
        }
        if self.hub.url.trim().is_empty() {
            return Err(ConfigError::OutOfRange {
                field: "hub.url",
                expected: "a URL",
            });
        }
        if self.hub.keep_alive_interval_seconds == 0 {
            return Err(ConfigError::OutOfRange {
                field: "hub.keepAliveIntervalSeconds",
                expected: "at least 1",
            });
        }
        if self.hub.server_timeout_seconds < 2 * self.hub.keep_alive_interval_seconds {
            return Err(ConfigError::OutOfRange {
                field: "hub.serverTimeoutSeconds",
                expected: "at least twice hub.keepAliveIntervalSeconds",
            });
        }
        if !["auto", "cif", "postmessage", "opencti", "standalone"].contains(&self.host.as_str()) {
            return Err(ConfigError::OutOfRange {
                field: "host",
                expected: "one of auto, cif, postmessage, opencti, standalone",
            });
        }
        if let AuthConfig::Msal {
            authority,
            client_id,
            scopes,
        } = &self.auth
        {
            if !authority.starts_with("https://") {
                return Err(ConfigError::OutOfRange {
                    field: "auth.authority",
                    expected: "an https URL",
                });
            }
            if client_id.trim().is_empty() {
                return Err(ConfigError::OutOfRange {
                    field: "auth.clientId",
                    expected: "the app registration's client id",
                });
            }
            if scopes.is_empty() {
                return Err(ConfigError::OutOfRange {
                    field: "auth.scopes",
                    expected: "the hub API scope, e.g. api://<app>/access_as_user",
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../widget/public/config.json");

    #[test]
    fn the_shipped_config_is_valid() {
        let config = Config::from_json(SHIPPED).unwrap();
        assert_eq!(config.hub.url, "/api");
        assert!(matches!(config.auth, AuthConfig::Dev { .. }));
    }

    #[test]
    fn defaults_fill_the_gaps() {
        let config = Config::from_json(r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"}}"#).unwrap();
        assert_eq!(config.ring_timeout_seconds, 30);
        assert_eq!(config.hub.server_timeout_seconds, 30);
        assert_eq!(
            config.auth,
            AuthConfig::Dev {
                token_url: "/dev/token".into()
            }
        );
    }

    #[test]
    fn invalid_configs_say_what_is_wrong() {
        assert!(matches!(
            Config::from_json("{"),
            Err(ConfigError::Invalid(_))
        ));
        assert!(
            matches!(Config::from_json(r#"{"auth":{"mode":"dev"}}"#), Err(ConfigError::Invalid(e)) if e.contains("hub"))
        );
        let e = Config::from_json(
            r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"},"ringTimeoutSeconds":1}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.json: ringTimeoutSeconds must be between 5 and 300"
        );
        let e = Config::from_json(
            r#"{"hub":{"url":"/x","keepAliveIntervalSeconds":20,"serverTimeoutSeconds":30},"auth":{"mode":"dev"}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("serverTimeoutSeconds"));
        let e = Config::from_json(
            r#"{"hub":{"url":"/x"},"auth":{"mode":"msal","clientId":"c","authority":"http://idp","scopes":["s"]}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("https"));
        assert!(Config::from_json(r#"{"hub":{"url":"/x"},"auth":{"mode":"saml"}}"#).is_err());
    }
}
