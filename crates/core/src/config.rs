//! The widget's runtime configuration, read from `config.json` at start-up so one build serves
//! every tenant (DESIGN.md §5). Unknown fields are ignored (newer configs keep working with
//! older widgets); invalid values are a [`ConfigError`] the widget shows instead of a blank panel.
//!
//! ```json
//! {
//!   "hub": { "url": "/api", "keepAliveIntervalSeconds": 15, "serverTimeoutSeconds": 30 },
//!   "auth": { "mode": "dev", "tokenUrl": "/dev/token" },
//!   "ringTimeoutSeconds": 30,
//!   "host": "auto",
//!   "graph": { "baseUrl": "/graph/v1.0" },
//!   "presence": { "sync": { "minStableSeconds": 15 } }
//! }
//! ```
//!
//! `presence` is the section described in `docs/presence.md` (states, both mapping tables,
//! `sync`); it is optional and defaults to seed 003's table.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::fields::string_list;
use crate::host::{HostKind, HostOptions};
use crate::presence::{PresenceMapping, SyncConfig};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where and how to reach the notification hub (`hub`).
    pub hub: HubConfig,
    /// How the agent signs in (`auth`).
    pub auth: AuthConfig,
    /// How long an incoming call rings before it is reported missed, in seconds (5–300,
    /// default 30; `ringTimeoutSeconds`).
    pub ring_timeout_seconds: u32,
    /// Which host the widget lives in: `auto`, `cif`, `postmessage`, `opencti`, `standalone`
    /// (default `auto`; `host`).
    pub host: String,
    /// Microsoft Graph (`graph`).
    pub graph: GraphConfig,
    /// The contact-centre agent states and the Teams ⇄ agent mapping tables (`presence`).
    pub presence_mapping: PresenceMapping,
    /// The sync engine's timers and switches (`presence.sync`). Without `presence.sync.sessionId`
    /// the session id is `auth.clientId` (MSAL) or `switchboard` (dev).
    pub presence_sync: SyncConfig,
    /// Seconds between `getPresencesByUserId` polls when the hub pushes nothing
    /// (`presence.pollSeconds`, 5–3600, default 30; [`crate::presence::poll`]).
    pub presence_poll_seconds: u64,
    /// Where the team list comes from (`presence.teamGroupId` or `presence.team`).
    pub presence_team: crate::presence::TeamSource,
    /// The host's origins and CIF names (`hostOrigins`, `crmUrl`, `cif`; crate::host).
    pub host_options: HostOptions,
    /// The widget's language (`locale`): `auto` (the default: the host's user language, else
    /// the browser's) or a BCP 47 tag such as `de` that every agent of this tenant gets
    /// (crate::i18n; a tag without a shipped catalogue falls back to English).
    pub locale: String,
    /// How calls reach the agent (`telephony`): hub mode (notifications and third-party call
    /// control, the default) or the browser softphone (SIP over WebSocket + WebRTC).
    pub telephony: TelephonyConfig,
    /// The wrap-up form (`wrapUp`): its dispositions and whether notes are required.
    pub wrap_up: WrapUpConfig,
}

/// The dispositions the widget offers when `wrapUp.dispositions` is absent (the values stored
/// in the CRM and sent to the hub; the widget shows them translated).
pub const DEFAULT_DISPOSITIONS: [&str; 5] = [
    "Resolved",
    "Follow-up needed",
    "Escalated",
    "Wrong number",
    "Other",
];

/// Most dispositions `wrapUp.dispositions` may list (a select longer than this is unusable).
pub const MAX_DISPOSITIONS: usize = 50;
/// Longest disposition, in characters (the hub refuses longer ones: the agent-state contract).
pub const MAX_DISPOSITION_CHARS: usize = 100;

/// `wrapUp`: `{"dispositions": ["Resolved", ...], "notesRequired": false}` (issue 15).
#[derive(Debug, Clone, PartialEq)]
pub struct WrapUpConfig {
    /// The dispositions in the form's order: 1 to [`MAX_DISPOSITIONS`] distinct, non-blank
    /// texts of at most [`MAX_DISPOSITION_CHARS`] characters (default
    /// [`DEFAULT_DISPOSITIONS`]).
    pub dispositions: Vec<String>,
    /// Whether the agent must write notes before saving (default false).
    pub notes_required: bool,
}

impl Default for WrapUpConfig {
    fn default() -> Self {
        WrapUpConfig {
            dispositions: DEFAULT_DISPOSITIONS.map(str::to_owned).to_vec(),
            notes_required: false,
        }
    }
}

/// Why the wrap-up form cannot be saved yet ([`WrapUpConfig::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapUpProblem {
    /// `notesRequired` and the notes are blank.
    NotesRequired,
    /// The disposition is not one of the configured ones (empty = none, always allowed).
    UnknownDisposition,
}

impl WrapUpConfig {
    /// Whether a wrap-up with these `notes` and `disposition` (empty: none) may be saved.
    pub fn check(&self, notes: &str, disposition: &str) -> Result<(), WrapUpProblem> {
        if self.notes_required && notes.trim().is_empty() {
            return Err(WrapUpProblem::NotesRequired);
        }
        if !disposition.is_empty() && !self.dispositions.iter().any(|d| d == disposition) {
            return Err(WrapUpProblem::UnknownDisposition);
        }
        Ok(())
    }

    fn from_value(value: Option<&Value>) -> Result<Self, ConfigError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(WrapUpConfig::default());
        };
        let wrap_up = object(value, "wrapUp")?;
        let mut config = WrapUpConfig::default();
        if let Some(list) =
            string_list(wrap_up.get("dispositions"), "wrapUp.dispositions").map_err(invalid)?
        {
            if list.is_empty() || list.len() > MAX_DISPOSITIONS {
                return Err(invalid(format!(
                    "wrapUp.dispositions must list 1 to {MAX_DISPOSITIONS} dispositions (it lists {})",
                    list.len()
                )));
            }
            for (i, d) in list.iter().enumerate() {
                if d.trim().is_empty() {
                    return Err(invalid(format!(
                        "wrapUp.dispositions[{i}] is blank: every disposition needs a text"
                    )));
                }
                if d.chars().count() > MAX_DISPOSITION_CHARS {
                    return Err(invalid(format!(
                        "wrapUp.dispositions[{i}] is longer than {MAX_DISPOSITION_CHARS} characters"
                    )));
                }
                if list[..i].contains(d) {
                    return Err(invalid(format!("wrapUp.dispositions lists \"{d}\" twice")));
                }
            }
            config.dispositions = list;
        }
        config.notes_required = match wrap_up.get("notesRequired") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("wrapUp.notesRequired must be true or false".into())),
        };
        Ok(config)
    }
}

/// `telephony` (DESIGN.md §7, binding): `{"mode": "hub" | "sip", "sip": {...}}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum TelephonyConfig {
    /// Calls are rung and controlled through the hub; the audio stays on a desk phone.
    #[default]
    Hub,
    /// The widget is the phone: SIP over WebSocket (RFC 7118) with WebRTC audio.
    Sip(SipConfig),
}

impl TelephonyConfig {
    /// The SIP settings in `sip` mode.
    pub fn sip(&self) -> Option<&SipConfig> {
        match self {
            TelephonyConfig::Sip(sip) => Some(sip),
            TelephonyConfig::Hub => None,
        }
    }
}

/// How DTMF digits leave the softphone (`telephony.sip.dtmf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfMode {
    /// RFC 4733 telephone-events in the media (`RTCDTMFSender`), the default.
    Rfc4733,
    /// SIP INFO (RFC 6086), for a PBX that ignores telephone-events.
    Info,
}

/// `telephony.sip`: where the SIP edge is and how the agent authenticates to it.
#[derive(Debug, Clone, PartialEq)]
pub struct SipConfig {
    /// The SIP edge's WebSocket URL, `wss://edge.example.com:7443` (`ws://` only for loopback
    /// tests; `wsUri`).
    pub ws_uri: String,
    /// The SIP domain: the agent is `sip:<hub user id>@<domain>` (`domain`).
    pub domain: String,
    /// Where the hub hands out ephemeral SIP credentials and ICE servers (`credentialsUrl`,
    /// default `/api/sip/credentials`; POST with the user's Bearer token).
    pub credentials_url: String,
    /// RFC 4733 or SIP INFO (`dtmf`, default `rfc4733`).
    pub dtmf: DtmfMode,
    /// The microphone's echo cancellation, noise suppression and automatic gain control
    /// (`audioProcessing`, default true; tone tests turn it off, as a steady tone fades).
    pub audio_processing: bool,
    /// The ringtone: the URL of an audio file the browser can play (`ringtone`; relative to
    /// config.json, e.g. `ring.mp3` or `/sounds/ring.ogg`, or `https://…`), looped on the ringer
    /// device while a SIP call rings. `None`: the generated two-tone ring, which is also what
    /// plays when the file cannot be loaded. Under switchboard-hub's CSP (`media-src 'self'`) only
    /// a same-origin file plays.
    pub ringtone: Option<String>,
}

/// Checks `telephony.sip.ringtone`: a relative URL (resolved against config.json) or an
/// absolute `http(s)://` URL, without whitespace or control characters; any other scheme
/// (`javascript:`, `data:`, `file:` …) is refused (WHATWG URL Standard §4.3: a scheme is the
/// letters, digits, `+`, `-`, `.` before the first `:`, starting with a letter).
fn ringtone_url(value: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| {
        Err(invalid(format!(
            "telephony.sip.ringtone \"{value}\" {why} (an audio file's URL, e.g. \"ring.mp3\", \"/sounds/ring.ogg\" or \"https://…\")"
        )))
    };
    let url = value.trim();
    if url.is_empty() {
        return bad("is empty");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain spaces or control characters");
    }
    let scheme = url.split_once(':').map(|(s, _)| s).filter(|s| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    match scheme.map(str::to_ascii_lowercase).as_deref() {
        None | Some("http" | "https") => Ok(url.to_owned()),
        Some(other) => bad(&format!(
            "has the scheme {other}: only http(s) or a relative URL"
        )),
    }
}

impl SipConfig {
    fn from_value(value: &Value) -> Result<Self, ConfigError> {
        let sip = object(value, "telephony.sip")?;
        let path = "telephony.sip.";
        let ws_uri = required(sip, path, "wsUri")?;
        if !(ws_uri.starts_with("wss://") || ws_uri.starts_with("ws://")) {
            return Err(invalid(format!(
                "telephony.sip.wsUri \"{ws_uri}\" must be a WebSocket URL (wss://host:port/path)"
            )));
        }
        let domain = required(sip, path, "domain")?;
        if domain.trim().is_empty() || domain.contains(['@', ' ', ':', '/']) {
            return Err(invalid(format!(
                "telephony.sip.domain \"{domain}\" must be a SIP domain such as pbx.example.com"
            )));
        }
        Ok(SipConfig {
            ws_uri,
            domain,
            credentials_url: string(sip, path, "credentialsUrl")?
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| "/api/sip/credentials".into()),
            dtmf: match string(sip, path, "dtmf")?.as_deref() {
                None | Some("rfc4733") => DtmfMode::Rfc4733,
                Some("info") => DtmfMode::Info,
                Some(other) => {
                    return Err(invalid(format!(
                        "telephony.sip.dtmf \"{other}\" is not one of rfc4733, info"
                    )));
                }
            },
            audio_processing: match sip.get("audioProcessing") {
                None | Some(Value::Null) => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(invalid(
                        "telephony.sip.audioProcessing must be true or false".into(),
                    ));
                }
            },
            ringtone: string(sip, path, "ringtone")?
                .map(|r| ringtone_url(&r))
                .transpose()?,
        })
    }
}

impl TelephonyConfig {
    fn from_value(value: Option<&Value>) -> Result<Self, ConfigError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(TelephonyConfig::Hub);
        };
        let telephony = object(value, "telephony")?;
        match string(telephony, "telephony.", "mode")?.as_deref() {
            None | Some("hub") => Ok(TelephonyConfig::Hub),
            Some("sip") => match telephony.get("sip").filter(|v| !v.is_null()) {
                Some(sip) => Ok(TelephonyConfig::Sip(SipConfig::from_value(sip)?)),
                None => Err(invalid(
                    "telephony.sip is missing: \"mode\": \"sip\" needs {\"wsUri\", \"domain\"}"
                        .into(),
                )),
            },
            Some(other) => Err(invalid(format!(
                "telephony.mode \"{other}\" is not one of hub, sip"
            ))),
        }
    }
}

/// Where Microsoft Graph is.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphConfig {
    /// The base URL, `https://graph.microsoft.com/v1.0`, or the hub's stand-in `/graph/v1.0`
    /// (the default; `graph.baseUrl`). No trailing slash.
    pub base_url: String,
}

/// The hub endpoint and its timers.
#[derive(Debug, Clone, PartialEq)]
pub struct HubConfig {
    /// The hub URL as the official client's `withUrl` takes it, relative to the page or
    /// absolute: negotiate goes to `{url}/negotiate`. `/api` for the Azure Functions adaptor,
    /// whose negotiate answers with a redirect to the SignalR client endpoint (`hub.url`).
    pub url: String,
    /// Seconds without sending before a ping (SignalR default 15; `keepAliveIntervalSeconds`).
    pub keep_alive_interval_seconds: u32,
    /// Seconds without receiving before the connection is considered lost (SignalR default 30;
    /// at least twice the keep-alive; `serverTimeoutSeconds`).
    pub server_timeout_seconds: u32,
    /// Transports to try, in order, by their SignalR names (`WebSockets`, `ServerSentEvents`,
    /// `LongPolling`); default all three in that order, as the official client (`transports`).
    pub transports: Vec<String>,
    /// Hub protocol: `json` (default) or `messagepack` (`protocol`).
    pub protocol: String,
    /// Ask for stateful reconnect (WebSockets only; default true): a dropped socket is reopened
    /// and unacknowledged messages are replayed, so nothing is lost (`statefulReconnect`).
    pub stateful_reconnect: bool,
    /// Connect the WebSocket straight to `url` without negotiating (`skipNegotiation`; only with
    /// `transports: ["WebSockets"]`, and the token must be one the client endpoint accepts).
    pub skip_negotiation: bool,
    /// Delays before each reconnect attempt, in milliseconds; reconnecting stops when they run
    /// out (`reconnectDelaysMs`; default SignalR's `[0, 2000, 10000, 30000]`, at most 20 entries
    /// of at most 10 minutes each).
    pub reconnect_delays_ms: Vec<u64>,
    /// Once `reconnect_delays_ms` ran out, one attempt every `min..=max` seconds with jitter,
    /// for ever (`slowRetrySeconds: [min, max]`; default `[30, 60]`; 1 to 600, min ≤ max).
    pub slow_retry_seconds: (u32, u32),
}

/// The SignalR transport names `hub.transports` accepts, in the official client's order.
pub const TRANSPORTS: [&str; 3] = ["WebSockets", "ServerSentEvents", "LongPolling"];

/// Sign-in configuration, chosen by `auth.mode`. Read once at start-up, so the size difference
/// between the variants does not matter.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum AuthConfig {
    /// `"dev"`: dev tokens from `switchboard-hub` (`POST {tokenUrl}` with `{"user"}`; default
    /// `/dev/token`). Demo and tests only.
    Dev {
        /// The hub's dev token endpoint.
        token_url: String,
    },
    /// `"msal"`: Entra ID (or any OIDC authority) through MSAL.js.
    Msal {
        /// The app registration's client id (`clientId`).
        client_id: String,
        /// `https://login.microsoftonline.com/{tenant}` or another https authority.
        authority: String,
        /// Scopes of the hub API, e.g. `api://<app>/access_as_user`.
        scopes: Vec<String>,
        /// Scopes of Microsoft Graph presence (`graphScopes`; default `Presence.Read.All`,
        /// `Presence.ReadWrite`; an empty list turns Graph presence off).
        graph_scopes: Vec<String>,
        /// Where the IdP sends the popup's answer (`redirectUri`; default
        /// `redirect.html` next to the widget, the MSAL redirect bridge page).
        redirect_uri: Option<String>,
        /// `sessionStorage` (default) or `localStorage` (`cacheLocation`).
        cache_location: String,
        /// MSAL's popup relay page (`popupRelayUri`; default `popup-relay.html` next to the
        /// widget, shipped in `dist/`). Used only when the widget is framed by a page of another
        /// site ([`crate::signin::needs_popup_relay`]); it must be same-origin as the widget.
        popup_relay_uri: Option<String>,
        /// Extra authorities MSAL may trust (`knownAuthorities`: host names, needed for a
        /// non-Microsoft authority) and `protocolMode` (`AAD` default, `OIDC` for another IdP).
        known_authorities: Vec<String>,
        /// `AAD` (Entra ID, default) or `OIDC` (any other OpenID Connect provider).
        protocol_mode: String,
        /// `prompt` of the interactive sign-in (`prompt`; none by default). npm oidc-provider
        /// issues refresh tokens only with `consent` (docs/msal.md).
        prompt: Option<String>,
        /// How the "Sign in" button signs in at top level (`interaction`: `redirect`, the
        /// default, or `popup`); in a frame it is always a popup ([`crate::signin::use_redirect`]).
        interaction: Interaction,
    },
}

/// How the "Sign in" button signs in when the widget is the top-level page (`auth.interaction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// `"redirect"` (default): the tab goes to the identity provider and comes back
    /// (`loginRedirect`); inside a frame, where MSAL refuses redirects, a popup.
    Redirect,
    /// `"popup"`: always a popup, also at top level.
    Popup,
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

// The configuration is read through `serde_json::Value` rather than derived `Deserialize`
// impls: the widget already carries Value's parser for the hub protocol, and each derived
// impl would add its own code to every agent's download (measured: 9 KB of wasm).

fn invalid(text: String) -> ConfigError {
    ConfigError::Invalid(text)
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ConfigError> {
    value
        .as_object()
        .ok_or_else(|| invalid(format!("{path} must be an object")))
}

fn string(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<String>, ConfigError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{path}{key} must be a string"))),
    }
}

fn required(object: &Map<String, Value>, path: &str, key: &str) -> Result<String, ConfigError> {
    string(object, path, key)?.ok_or_else(|| invalid(format!("{path}{key} is missing")))
}

fn seconds(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
    default: u32,
) -> Result<u32, ConfigError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| invalid(format!("{path}{key} must be a whole number of seconds"))),
    }
}

/// `auth.<key>` as a list of strings; `None` when absent.
fn strings(object: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    string_list(object.get(key), &["auth.", key].concat()).map_err(invalid)
}

impl AuthConfig {
    fn from_value(value: &Value) -> Result<Self, ConfigError> {
        let auth = object(value, "auth")?;
        match required(auth, "auth.", "mode")?.as_str() {
            "dev" => Ok(AuthConfig::Dev {
                token_url: string(auth, "auth.", "tokenUrl")?
                    .unwrap_or_else(|| "/dev/token".into()),
            }),
            "msal" => Ok(AuthConfig::Msal {
                client_id: required(auth, "auth.", "clientId")?,
                authority: required(auth, "auth.", "authority")?,
                scopes: strings(auth, "scopes")?
                    .ok_or_else(|| invalid("auth.scopes must be a list of strings".into()))?,
                graph_scopes: strings(auth, "graphScopes")?.unwrap_or_else(|| {
                    vec!["Presence.Read.All".into(), "Presence.ReadWrite".into()]
                }),
                redirect_uri: string(auth, "auth.", "redirectUri")?,
                cache_location: match string(auth, "auth.", "cacheLocation")?.as_deref() {
                    None | Some("sessionStorage") => "sessionStorage".into(),
                    Some("localStorage") => "localStorage".into(),
                    Some(_) => {
                        return Err(invalid(
                            "auth.cacheLocation must be sessionStorage or localStorage".into(),
                        ));
                    }
                },
                popup_relay_uri: string(auth, "auth.", "popupRelayUri")?,
                known_authorities: strings(auth, "knownAuthorities")?.unwrap_or_default(),
                protocol_mode: match string(auth, "auth.", "protocolMode")?.as_deref() {
                    None | Some("AAD") => "AAD".into(),
                    Some("OIDC") => "OIDC".into(),
                    Some(_) => return Err(invalid("auth.protocolMode must be AAD or OIDC".into())),
                },
                prompt: string(auth, "auth.", "prompt")?,
                interaction: match string(auth, "auth.", "interaction")?.as_deref() {
                    None | Some("redirect") => Interaction::Redirect,
                    Some("popup") => Interaction::Popup,
                    Some(_) => {
                        return Err(invalid("auth.interaction must be redirect or popup".into()));
                    }
                },
            }),
            other => Err(invalid(format!(
                "auth.mode \"{other}\" is not one of dev, msal"
            ))),
        }
    }
}

impl Config {
    /// Parses and validates `config.json`.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let root = object(&value, "the file")?;
        let hub_value = root
            .get("hub")
            .ok_or_else(|| invalid("hub is missing".into()))?;
        let hub = object(hub_value, "hub")?;
        let auth = root
            .get("auth")
            .ok_or_else(|| invalid("auth is missing".into()))?;
        let graph_base = match root.get("graph") {
            None | Some(Value::Null) => None,
            Some(g) => string(object(g, "graph")?, "graph.", "baseUrl")?,
        };
        let presence = root.get("presence").filter(|p| !p.is_null());
        let auth = AuthConfig::from_value(auth)?;
        let presence_mapping = PresenceMapping::from_value(presence)?;
        let mut presence_sync = SyncConfig::from_value(presence.and_then(|p| p.get("sync")))?;
        let presence_poll_seconds = crate::presence::poll_seconds_from_value(presence)?;
        let presence_team = crate::presence::team_source_from_value(presence)?;
        let explicit_session = presence
            .and_then(|p| p.get("sync"))
            .and_then(|s| s.get("sessionId"))
            .is_some_and(|s| !s.is_null());
        if let (false, AuthConfig::Msal { client_id, .. }) = (explicit_session, &auth) {
            presence_sync.session_id = client_id.clone();
        }
        let config = Config {
            hub: HubConfig {
                url: required(hub, "hub.", "url")?,
                keep_alive_interval_seconds: seconds(hub, "hub.", "keepAliveIntervalSeconds", 15)?,
                server_timeout_seconds: seconds(hub, "hub.", "serverTimeoutSeconds", 30)?,
                transports: match hub.get("transports") {
                    None | Some(Value::Null) => TRANSPORTS.iter().map(|t| (*t).to_owned()).collect(),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|t| t.as_str().filter(|t| TRANSPORTS.contains(t)).map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| {
                            invalid("hub.transports must list some of WebSockets, ServerSentEvents, LongPolling".into())
                        })?,
                    Some(_) => return Err(invalid("hub.transports must be a list".into())),
                },
                protocol: match string(hub, "hub.", "protocol")?.as_deref() {
                    None | Some("json") => "json".into(),
                    Some("messagepack") => "messagepack".into(),
                    Some(other) => return Err(invalid(format!("hub.protocol \"{other}\" is not one of json, messagepack"))),
                },
                stateful_reconnect: match hub.get("statefulReconnect") {
                    None | Some(Value::Null) => true,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(invalid("hub.statefulReconnect must be true or false".into())),
                },
                reconnect_delays_ms: match hub.get("reconnectDelaysMs") {
                    None | Some(Value::Null) => vec![0, 2_000, 10_000, 30_000],
                    Some(Value::Array(items)) if items.len() <= 20 => items
                        .iter()
                        .map(|d| d.as_u64().filter(|d| *d <= 600_000))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| invalid("hub.reconnectDelaysMs must list delays of 0 to 600000 ms".into()))?,
                    Some(_) => return Err(invalid("hub.reconnectDelaysMs must be a list of at most 20 delays in ms".into())),
                },
                slow_retry_seconds: match hub.get("slowRetrySeconds") {
                    None | Some(Value::Null) => (30, 60),
                    Some(Value::Array(items)) => match items.iter().map(|d| d.as_u64().filter(|d| (1..=600).contains(d))).collect::<Option<Vec<_>>>().as_deref() {
                        Some([min, max]) if min <= max => (*min as u32, *max as u32),
                        _ => return Err(invalid("hub.slowRetrySeconds must be [min, max]: two whole seconds from 1 to 600, min not above max".into())),
                    },
                    Some(_) => return Err(invalid("hub.slowRetrySeconds must be [min, max] in seconds".into())),
                },
                skip_negotiation: match hub.get("skipNegotiation") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(invalid("hub.skipNegotiation must be true or false".into())),
                },
            },
            auth,
            ring_timeout_seconds: seconds(root, "", "ringTimeoutSeconds", 30)?,
            host: string(root, "", "host")?.unwrap_or_else(|| "auto".into()),
            graph: GraphConfig {
                base_url: graph_base
                    .unwrap_or_else(|| "/graph/v1.0".into())
                    .trim_end_matches('/')
                    .to_owned(),
            },
            presence_mapping,
            presence_sync,
            presence_poll_seconds,
            presence_team,
            host_options: HostOptions::from_root(root).map_err(invalid)?,
            locale: match string(root, "", "locale")? {
                None => "auto".into(),
                Some(tag) if tag == "auto" || crate::i18n::is_language_tag(&tag) => tag,
                Some(tag) => {
                    return Err(invalid(format!(
                        "locale \"{tag}\" is not \"auto\" nor a language tag such as \"de\" or \"fr-CA\""
                    )));
                }
            },
            telephony: TelephonyConfig::from_value(root.get("telephony"))?,
            wrap_up: WrapUpConfig::from_value(root.get("wrapUp"))?,
        };
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
        if self.hub.skip_negotiation && self.hub.transports != ["WebSockets"] {
            return Err(ConfigError::OutOfRange {
                field: "hub.skipNegotiation",
                expected: "used only with \"transports\": [\"WebSockets\"] (as in SignalR)",
            });
        }
        if self.host != "auto" && HostKind::from_name(&self.host).is_none() {
            return Err(ConfigError::OutOfRange {
                field: "host",
                expected: "one of auto, cif, postmessage, opencti, standalone",
            });
        }
        if self.graph.base_url.trim().is_empty() {
            return Err(ConfigError::OutOfRange {
                field: "graph.baseUrl",
                expected: "a URL such as https://graph.microsoft.com/v1.0",
            });
        }
        if let AuthConfig::Msal {
            authority,
            client_id,
            scopes,
            popup_relay_uri,
            ..
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
            if popup_relay_uri
                .as_deref()
                .is_some_and(|u| u.is_empty() || u.contains("://") || u.starts_with("//"))
            {
                return Err(ConfigError::OutOfRange {
                    field: "auth.popupRelayUri",
                    expected: "a path on the widget's own origin (MSAL requires the relay page to be same-origin), e.g. popup-relay.html",
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
        // The team is the stand-in's group; polling (when the hub pushes nothing) every 30 s.
        assert_eq!(
            config.presence_team,
            crate::presence::TeamSource::Group("switchboard-agents".into())
        );
        assert_eq!(config.presence_poll_seconds, 30);
    }

    #[test]
    fn host_options_are_read() {
        let config = Config::from_json(
            r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"},"hostOrigins":["https://crm.example.com"],"cif":{"sessionTemplate":"sb"}}"#,
        )
        .unwrap();
        assert_eq!(config.host_options.origins, ["https://crm.example.com"]);
        assert_eq!(config.host_options.cif.session_template, "sb");
        let e =
            Config::from_json(r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"},"hostOrigins":"x"}"#);
        assert!(e.unwrap_err().to_string().contains("hostOrigins"));
    }

    fn with_wrap_up(wrap_up: &str) -> Result<Config, ConfigError> {
        Config::from_json(&format!(
            r#"{{"hub":{{"url":"/api"}},"auth":{{"mode":"dev"}},"wrapUp":{wrap_up}}}"#
        ))
    }

    #[test]
    fn wrap_up_defaults_to_the_five_dispositions_and_optional_notes() {
        let config = Config::from_json(r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"}}"#).unwrap();
        assert_eq!(config.wrap_up.dispositions, DEFAULT_DISPOSITIONS);
        assert!(!config.wrap_up.notes_required);
        assert_eq!(
            with_wrap_up("null").unwrap().wrap_up,
            WrapUpConfig::default()
        );
        assert_eq!(with_wrap_up("{}").unwrap().wrap_up, WrapUpConfig::default());
    }

    #[test]
    fn wrap_up_reads_the_sites_dispositions_and_notes_rule() {
        let config =
            with_wrap_up(r#"{"dispositions":["Sale","No sale"],"notesRequired":true}"#).unwrap();
        assert_eq!(config.wrap_up.dispositions, ["Sale", "No sale"]);
        assert!(config.wrap_up.notes_required);
    }

    #[test]
    fn the_wrap_up_form_obeys_the_notes_rule_and_the_list() {
        let optional = WrapUpConfig::default();
        assert_eq!(optional.check("", ""), Ok(()));
        assert_eq!(optional.check("", "Escalated"), Ok(()));
        assert_eq!(
            optional.check("n", "Sale"),
            Err(WrapUpProblem::UnknownDisposition)
        );
        let required = with_wrap_up(r#"{"dispositions":["Sale"],"notesRequired":true}"#)
            .unwrap()
            .wrap_up;
        assert_eq!(
            required.check(" \n", "Sale"),
            Err(WrapUpProblem::NotesRequired)
        );
        assert_eq!(required.check("Sold 3", "Sale"), Ok(()));
        assert_eq!(required.check("Sold 3", ""), Ok(()));
    }

    #[test]
    fn bad_wrap_up_values_are_explained() {
        let error = |json: &str| with_wrap_up(json).unwrap_err().to_string();
        assert_eq!(
            error(r#""Sale""#),
            "config.json is not valid: wrapUp must be an object"
        );
        assert_eq!(
            error(r#"{"dispositions":"Sale"}"#),
            "config.json is not valid: wrapUp.dispositions must be a list of strings"
        );
        assert_eq!(
            error(r#"{"dispositions":[]}"#),
            "config.json is not valid: wrapUp.dispositions must list 1 to 50 dispositions (it lists 0)"
        );
        assert_eq!(
            error(r#"{"dispositions":["Sale"," "]}"#),
            "config.json is not valid: wrapUp.dispositions[1] is blank: every disposition needs a text"
        );
        assert_eq!(
            error(&format!(r#"{{"dispositions":["{}"]}}"#, "x".repeat(101))),
            "config.json is not valid: wrapUp.dispositions[0] is longer than 100 characters"
        );
        assert_eq!(
            error(r#"{"dispositions":["Sale","Sale"]}"#),
            "config.json is not valid: wrapUp.dispositions lists \"Sale\" twice"
        );
        assert_eq!(
            error(r#"{"notesRequired":"yes"}"#),
            "config.json is not valid: wrapUp.notesRequired must be true or false"
        );
        let many: Vec<String> = (0..51).map(|i| format!("\"d{i}\"")).collect();
        assert!(
            error(&format!(r#"{{"dispositions":[{}]}}"#, many.join(","))).contains("(it lists 51)")
        );
    }

    #[test]
    fn defaults_fill_the_gaps() {
        let config = Config::from_json(r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"}}"#).unwrap();
        assert_eq!(config.ring_timeout_seconds, 30);
        assert_eq!(
            config.hub.transports,
            TRANSPORTS.map(str::to_owned).to_vec()
        );
        assert_eq!(config.hub.protocol, "json");
        assert!(config.hub.stateful_reconnect);
        assert_eq!(config.hub.server_timeout_seconds, 30);
        assert_eq!(
            config.auth,
            AuthConfig::Dev {
                token_url: "/dev/token".into()
            }
        );
    }

    #[test]
    fn transports_protocol_and_stateful_reconnect() {
        let config = Config::from_json(
            r#"{"hub":{"url":"/api","transports":["LongPolling"],"protocol":"messagepack","statefulReconnect":false},"auth":{"mode":"dev"}}"#,
        )
        .unwrap();
        assert_eq!(config.hub.transports, vec!["LongPolling".to_owned()]);
        assert_eq!(config.hub.protocol, "messagepack");
        assert!(!config.hub.stateful_reconnect);
        assert!(!config.hub.skip_negotiation);
        assert_eq!(
            config.hub.reconnect_delays_ms,
            vec![0, 2_000, 10_000, 30_000]
        );
        assert_eq!(config.hub.slow_retry_seconds, (30, 60));
        let slow = Config::from_json(
            r#"{"hub":{"url":"/api","slowRetrySeconds":[2, 4]},"auth":{"mode":"dev"}}"#,
        )
        .unwrap();
        assert_eq!(slow.hub.slow_retry_seconds, (2, 4));
        let e = Config::from_json(
            r#"{"hub":{"url":"/client/?hub=h","skipNegotiation":true},"auth":{"mode":"dev"}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("hub.skipNegotiation"));
        let c = Config::from_json(
            r#"{"hub":{"url":"/client/?hub=h","skipNegotiation":true,"transports":["WebSockets"]},"auth":{"mode":"dev"}}"#,
        )
        .unwrap();
        assert!(c.hub.skip_negotiation);
        for bad in [
            r#""transports":["Carrier pigeon"]"#,
            r#""transports":[]"#,
            r#""transports":"WebSockets""#,
            r#""protocol":"xml""#,
            r#""statefulReconnect":"yes""#,
            r#""skipNegotiation":1"#,
            r#""reconnectDelaysMs":[-1]"#,
            r#""reconnectDelaysMs":[700000]"#,
            r#""reconnectDelaysMs":"fast""#,
            r#""slowRetrySeconds":[60, 30]"#,
            r#""slowRetrySeconds":[0, 30]"#,
            r#""slowRetrySeconds":[30]"#,
            r#""slowRetrySeconds":[30, 601]"#,
            r#""slowRetrySeconds":45"#,
        ] {
            let text = format!(r#"{{"hub":{{"url":"/api",{bad}}},"auth":{{"mode":"dev"}}}}"#);
            assert!(
                matches!(Config::from_json(&text), Err(ConfigError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_locale_is_auto_or_a_language_tag() {
        let with = |locale: &str| {
            Config::from_json(&format!(
                r#"{{"hub": {{"url": "/hub"}}, "auth": {{"mode": "dev"}}, "locale": {locale}}}"#
            ))
        };
        assert_eq!(with("null").unwrap().locale, "auto");
        assert_eq!(with("\"de\"").unwrap().locale, "de");
        assert_eq!(with("\"fr-CA\"").unwrap().locale, "fr-CA");
        let err = with("\"<b>German</b>\"").unwrap_err().to_string();
        assert!(err.contains("locale"), "{err}");
        assert!(with("\"d\"").is_err());
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
        assert_eq!(
            Config::from_json(r#"{"hub":{"url":"/x"},"auth":{"mode":"saml"}}"#),
            Err(ConfigError::Invalid(
                "auth.mode \"saml\" is not one of dev, msal".into()
            ))
        );
    }

    #[test]
    fn graph_and_presence_have_defaults() {
        let config = Config::from_json(r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"}}"#).unwrap();
        assert_eq!(config.graph.base_url, "/graph/v1.0");
        assert_eq!(config.presence_mapping, PresenceMapping::default());
        assert_eq!(config.presence_sync, SyncConfig::default());
        let shipped = Config::from_json(SHIPPED).unwrap();
        assert_eq!(shipped.graph.base_url, "/graph/v1.0");
    }

    #[test]
    fn graph_and_presence_are_read() {
        let config = Config::from_json(
            r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"},
                "graph":{"baseUrl":"https://graph.microsoft.com/v1.0/"},
                "presence":{"states":["Ready","Lunch"],"sync":{"minStableSeconds":2}}}"#,
        )
        .unwrap();
        assert_eq!(config.graph.base_url, "https://graph.microsoft.com/v1.0");
        assert_eq!(config.presence_mapping.states, ["Ready", "Lunch"]);
        assert_eq!(config.presence_sync.min_stable_ms, 2_000);
        assert_eq!(config.presence_sync.session_id, "switchboard");
    }

    #[test]
    fn the_session_id_defaults_to_the_msal_client_id() {
        let msal =
            r#""auth":{"mode":"msal","clientId":"app-1","authority":"https://idp","scopes":["s"]}"#;
        let config = Config::from_json(&format!(r#"{{"hub":{{"url":"/api"}},{msal}}}"#)).unwrap();
        assert_eq!(config.presence_sync.session_id, "app-1");
        let config = Config::from_json(&format!(
            r#"{{"hub":{{"url":"/api"}},{msal},"presence":{{"sync":{{"sessionId":"other"}}}}}}"#
        ))
        .unwrap();
        assert_eq!(config.presence_sync.session_id, "other");
    }

    #[test]
    fn msal_interaction_and_popup_relay_are_read_and_checked() {
        let msal = |extra: &str| {
            Config::from_json(&format!(
                r#"{{"hub":{{"url":"/api"}},"auth":{{"mode":"msal","clientId":"c","authority":"https://idp","scopes":["s"]{extra}}}}}"#
            ))
        };
        let interaction = |c: Config| match c.auth {
            AuthConfig::Msal {
                interaction,
                popup_relay_uri,
                ..
            } => (interaction, popup_relay_uri),
            AuthConfig::Dev { .. } => panic!("msal expected"),
        };
        assert_eq!(
            interaction(msal("").unwrap()),
            (Interaction::Redirect, None)
        );
        assert_eq!(
            interaction(
                msal(r#","interaction":"popup","popupRelayUri":"/sign-in/relay.html""#).unwrap()
            ),
            (Interaction::Popup, Some("/sign-in/relay.html".into()))
        );
        assert_eq!(
            msal(r#","interaction":"window""#).unwrap_err().to_string(),
            "config.json is not valid: auth.interaction must be redirect or popup"
        );
        for cross_origin in [
            "https://cdn.example/relay.html",
            "//cdn.example/relay.html",
            "",
        ] {
            let e = msal(&format!(r#","popupRelayUri":"{cross_origin}""#)).unwrap_err();
            assert!(
                e.to_string()
                    .contains("auth.popupRelayUri must be a path on the widget's own origin"),
                "{e}"
            );
        }
    }

    #[test]
    fn bad_graph_and_presence_sections_say_what_is_wrong() {
        let base = r#""hub":{"url":"/api"},"auth":{"mode":"dev"}"#;
        let e = Config::from_json(&format!(r#"{{{base},"graph":{{"baseUrl":5}}}}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.json is not valid: graph.baseUrl must be a string"
        );
        let e = Config::from_json(&format!(r#"{{{base},"graph":{{"baseUrl":" "}}}}"#)).unwrap_err();
        assert!(e.to_string().contains("graph.baseUrl"));
        let e = Config::from_json(&format!(r#"{{{base},"presence":[]}}"#)).unwrap_err();
        assert!(e.to_string().contains("presence must be an object"), "{e}");
        let e = Config::from_json(&format!(
            r#"{{{base},"presence":{{"sync":{{"minStableSeconds":"soon"}}}}}}"#
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("presence.sync.minStableSeconds"),
            "{e}"
        );
    }

    #[test]
    fn telephony_defaults_to_hub_mode() {
        let config = Config::from_json(r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"}}"#).unwrap();
        assert_eq!(config.telephony, TelephonyConfig::Hub);
        let config = Config::from_json(
            r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"},"telephony":{"mode":"hub"}}"#,
        )
        .unwrap();
        assert_eq!(config.telephony.sip(), None);
    }

    #[test]
    fn telephony_sip_is_read_with_defaults() {
        let config = Config::from_json(
            r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"},
                "telephony":{"mode":"sip","sip":{"wsUri":"wss://edge.example.com:7443","domain":"pbx.example.com"}}}"#,
        )
        .unwrap();
        let sip = config.telephony.sip().unwrap();
        assert_eq!(sip.ws_uri, "wss://edge.example.com:7443");
        assert_eq!(sip.domain, "pbx.example.com");
        assert_eq!(sip.credentials_url, "/api/sip/credentials");
        assert_eq!(sip.dtmf, DtmfMode::Rfc4733);
        assert!(sip.audio_processing);
        let config = Config::from_json(
            r#"{"hub":{"url":"/api"},"auth":{"mode":"dev"},
                "telephony":{"mode":"sip","sip":{"wsUri":"ws://127.0.0.1:5066","domain":"127.0.0.1",
                "credentialsUrl":"https://hub.example.com/api/sip/credentials","dtmf":"info","audioProcessing":false}}}"#,
        )
        .unwrap();
        let sip = config.telephony.sip().unwrap();
        assert_eq!(
            sip.credentials_url,
            "https://hub.example.com/api/sip/credentials"
        );
        assert_eq!(sip.dtmf, DtmfMode::Info);
        assert!(!sip.audio_processing);
        assert_eq!(sip.ringtone, None);
    }

    #[test]
    fn telephony_sip_ringtone_is_a_relative_or_http_url() {
        let ringtone = |value: &str| {
            let text = format!(
                r#"{{"hub":{{"url":"/api"}},"auth":{{"mode":"dev"}},"telephony":{{"mode":"sip",
                "sip":{{"wsUri":"wss://e.example.com","domain":"e.example.com","ringtone":{value}}}}}}}"#
            );
            Config::from_json(&text).map(|c| c.telephony.sip().unwrap().ringtone.clone())
        };
        for (value, expected) in [
            (r#""ring.mp3""#, Some("ring.mp3")),
            (r#"" /sounds/ring.ogg ""#, Some("/sounds/ring.ogg")),
            (r#""../tones/a.wav?v=2""#, Some("../tones/a.wav?v=2")),
            (
                r#""https://cdn.example.com/ring.mp3""#,
                Some("https://cdn.example.com/ring.mp3"),
            ),
            (
                r#""HTTP://intranet/ring.wav""#,
                Some("HTTP://intranet/ring.wav"),
            ),
            // A colon after a slash is no scheme: a path.
            (r#""sounds/a:b.wav""#, Some("sounds/a:b.wav")),
            ("null", None),
        ] {
            assert_eq!(ringtone(value).unwrap().as_deref(), expected, "{value}");
        }
        for (value, expected) in [
            (r#""""#, r#"telephony.sip.ringtone "" is empty"#),
            (r#""javascript:alert(1)""#, "has the scheme javascript"),
            (r#""data:audio/wav;base64,AAAA""#, "has the scheme data"),
            (r#""file:///tmp/ring.wav""#, "has the scheme file"),
            (r#""ring tone.mp3""#, "must not contain spaces"),
            ("3", "telephony.sip.ringtone must be a string"),
        ] {
            match ringtone(value) {
                Err(ConfigError::Invalid(e)) => assert!(e.contains(expected), "{value}: {e}"),
                other => panic!("{value}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_telephony_says_what_is_wrong() {
        let check = |telephony: &str, expected: &str| {
            let text = format!(
                r#"{{"hub":{{"url":"/api"}},"auth":{{"mode":"dev"}},"telephony":{telephony}}}"#
            );
            match Config::from_json(&text) {
                Err(ConfigError::Invalid(e)) => assert!(e.contains(expected), "{telephony}: {e}"),
                other => panic!("{telephony}: {other:?}"),
            }
        };
        check(r#""sip""#, "telephony must be an object");
        check(
            r#"{"mode":"pstn"}"#,
            r#"telephony.mode "pstn" is not one of hub, sip"#,
        );
        check(r#"{"mode":"sip"}"#, "telephony.sip is missing");
        check(
            r#"{"mode":"sip","sip":{"domain":"a.b"}}"#,
            "telephony.sip.wsUri is missing",
        );
        check(
            r#"{"mode":"sip","sip":{"wsUri":"https://a.b","domain":"a.b"}}"#,
            "must be a WebSocket URL",
        );
        check(
            r#"{"mode":"sip","sip":{"wsUri":"wss://a.b"}}"#,
            "telephony.sip.domain is missing",
        );
        check(
            r#"{"mode":"sip","sip":{"wsUri":"wss://a.b","domain":"alice@a.b"}}"#,
            "must be a SIP domain",
        );
        check(
            r#"{"mode":"sip","sip":{"wsUri":"wss://a.b","domain":"a.b","dtmf":"inband"}}"#,
            r#"telephony.sip.dtmf "inband" is not one of rfc4733, info"#,
        );
        check(
            r#"{"mode":"sip","sip":{"wsUri":"wss://a.b","domain":"a.b","audioProcessing":"yes"}}"#,
            "audioProcessing must be true or false",
        );
    }
}
