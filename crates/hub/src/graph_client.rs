//! The hub's Graph client state for change notifications ([`crate::graph_link`] drives it):
//! the app registration ([`LinkConfig`]), the client-credentials token (RFC 6749 §4.4, Entra v2
//! token endpoint, `reqwest`; in memory only, never logged), the sans-IO subscription
//! [`Manager`] and the presences Graph last reported. Names no hub state.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::http::header;
use serde_json::Value;
use switchboard_core::presence::Presence;
use switchboard_core::presence::subscriptions::{Manager, Request, SubscriptionConfig};

use crate::auth::unix_now_ms;

/// Longest validation token echoed (Graph's are about 100 characters).
pub(crate) const MAX_VALIDATION_TOKEN: usize = 1024;
/// The driver wakes at least this often (to notice a shutdown).
pub(crate) const MAX_SLEEP: Duration = Duration::from_secs(30);
/// One Graph request may take this long.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The hub's Graph app registration and where Graph reaches it.
#[derive(Clone)]
pub struct LinkConfig {
    /// The Entra tenant id (or domain).
    pub tenant: String,
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret (never logged; `Debug` hides it).
    pub client_secret: String,
    /// Graph's base URL (`https://graph.microsoft.com/v1.0`; no trailing slash).
    pub base_url: String,
    /// The token endpoint (`https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`).
    pub token_url: String,
    /// The public HTTPS URL of this hub's `POST /api/graph/notifications`.
    pub notification_url: String,
    /// The public URL of `POST /api/graph/lifecycle` (derived from the notification URL).
    pub lifecycle_url: String,
    /// Subscription lifetime asked for (60 min; at most 60 min for presence).
    pub expiration: Duration,
    /// Renew when this much lifetime is left (10 min).
    pub renew_before: Duration,
}

impl std::fmt::Debug for LinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkConfig")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<hidden>")
            .field("base_url", &self.base_url)
            .field("token_url", &self.token_url)
            .field("notification_url", &self.notification_url)
            .finish_non_exhaustive()
    }
}

impl LinkConfig {
    /// The defaults for a tenant: Graph v1.0, the Entra v2 token endpoint, lifecycle URL beside
    /// the notification URL (`…/notifications` → `…/lifecycle`), 60 min lifetime renewed with
    /// 10 min left.
    pub fn new(tenant: &str, client_id: &str, client_secret: &str, notification_url: &str) -> Self {
        let lifecycle_url = match notification_url.strip_suffix("/notifications") {
            Some(base) => format!("{base}/lifecycle"),
            None => notification_url.to_owned(),
        };
        Self {
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            base_url: "https://graph.microsoft.com/v1.0".into(),
            token_url: format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
            notification_url: notification_url.to_owned(),
            lifecycle_url,
            expiration: Duration::from_secs(3600),
            renew_before: Duration::from_secs(600),
        }
    }
}

/// The running link: the subscription manager, the presences Graph told us, the token.
pub struct GraphLink {
    pub(crate) config: LinkConfig,
    manager: Mutex<Manager>,
    cache: Mutex<HashMap<String, Presence>>,
    token: tokio::sync::Mutex<Option<(String, u64)>>,
    pub(crate) wake: tokio::sync::Notify,
    http: reqwest::Client,
}

impl std::fmt::Debug for GraphLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphLink").finish_non_exhaustive()
    }
}

fn random_client_state() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl GraphLink {
    /// A link for this configuration with a fresh random `clientState`; watching nothing.
    pub fn new(config: LinkConfig) -> Self {
        let mut sub = SubscriptionConfig::new(
            &config.notification_url,
            &config.lifecycle_url,
            &random_client_state(),
        );
        sub.expiration_ms = config.expiration.as_millis() as u64;
        sub.renew_before_ms = config.renew_before.as_millis() as u64;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            config,
            manager: Mutex::new(Manager::new(sub)),
            cache: Mutex::new(HashMap::new()),
            token: tokio::sync::Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            http,
        }
    }

    pub(crate) fn manager(&self) -> MutexGuard<'_, Manager> {
        self.manager.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn cache(&self) -> MutexGuard<'_, HashMap<String, Presence>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The presence Graph last reported for `id`, if any.
    pub fn cached(&self, id: &str) -> Option<Presence> {
        self.cache().get(id).copied()
    }

    /// Watch exactly these ids (subscriptions follow; new ids are read and pushed).
    pub fn watch(&self, ids: Vec<String>) {
        self.manager().set_watched(ids, unix_now_ms());
        self.wake.notify_one();
    }

    /// Graph's ids of the live subscriptions.
    pub fn subscription_ids(&self) -> Vec<String> {
        self.manager().subscription_ids()
    }

    async fn token(&self, fresh: bool) -> Result<String, String> {
        let mut slot = self.token.lock().await;
        let now = unix_now_ms();
        if let (false, Some((token, until))) = (fresh, slot.as_ref())
            && *until > now
        {
            return Ok(token.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .http
            .post(&self.config.token_url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("token endpoint unreachable: {e}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|_| status.is_success())
            .ok_or_else(|| {
                let code = answer.get("error").and_then(Value::as_str).unwrap_or("?");
                format!("token endpoint answered {status} ({code})")
            })?;
        let lifetime = answer
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        let until = now + lifetime.saturating_sub(60).max(1) * 1000;
        *slot = Some((token.to_owned(), until));
        Ok(token.to_owned())
    }

    /// Sends one manager request: (status, Retry-After seconds, JSON body).
    pub(crate) async fn send(&self, request: &Request) -> (u16, Option<u64>, Value) {
        let url = format!("{}{}", self.config.base_url, request.path);
        let mut fresh = false;
        for _ in 0..2 {
            let token = match self.token(fresh).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!("Graph: no app token: {e}");
                    return (401, None, Value::Null);
                }
            };
            let method = reqwest::Method::from_bytes(request.method.as_bytes())
                .unwrap_or(reqwest::Method::POST);
            let mut builder = self
                .http
                .request(method, &url)
                .bearer_auth(&token)
                .timeout(REQUEST_TIMEOUT);
            if let Some(body) = &request.body {
                builder = builder.json(body);
            }
            let response = match builder.send().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("Graph: {} {} failed: {e}", request.method, request.path);
                    return (0, None, Value::Null);
                }
            };
            let status = response.status().as_u16();
            if status == 401 && !fresh {
                fresh = true;
                continue;
            }
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = response.json().await.unwrap_or(Value::Null);
            if !(200..300).contains(&status) {
                tracing::info!(
                    "Graph: {} {} answered {status}",
                    request.method,
                    request.path
                );
            }
            return (status, retry_after, body);
        }
        (401, None, Value::Null)
    }
}
