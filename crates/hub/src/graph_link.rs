//! The hub as a **Microsoft Graph change-notification subscriber** for presence, when given
//! app credentials (`--graph-tenant`, `--graph-client-id`, `--graph-client-secret`,
//! `--graph-notification-url`; docs/presence.md "Hub subscriptions").
//!
//! - Tokens: OAuth 2.0 client-credentials grant (RFC 6749 §4.4) against the Entra v2 token
//!   endpoint (`https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`, scope
//!   `https://graph.microsoft.com/.default`) with `reqwest`; kept in memory until a minute
//!   before `expires_in`, never logged.
//! - Subscriptions: the sans-IO [`Manager`] of `switchboard_core::presence::subscriptions`
//!   decides; the driver task here sends its requests to `--graph-base-url` and feeds the
//!   answers back. The ids watched are every id some user watches through `subscribePresence`.
//! - Notifications: `POST /api/graph/notifications` and `POST /api/graph/lifecycle` ([`routes`]):
//!   `?validationToken=T` → 200 `text/plain` `T` (the validation handshake); otherwise the
//!   `{"value": [...]}` body goes to [`Manager::on_notifications`] (items without our
//!   `clientState` are ignored and counted in `switchboard_graph_notifications_total{outcome}`)
//!   and the answer is 202 at once; the presences are then read with `getPresencesByUserId`
//!   and every change is pushed as `PresenceChanged` to the users watching that id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use switchboard_core::presence::Presence;
use switchboard_core::presence::subscriptions::{Manager, Request, SubscriptionConfig};

use crate::auth::unix_now_ms;
use crate::hub::Hub;

/// Longest validation token echoed (Graph's are about 100 characters).
const MAX_VALIDATION_TOKEN: usize = 1024;
/// The driver wakes at least this often (to notice a shutdown).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// One Graph request may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

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
    config: LinkConfig,
    manager: Mutex<Manager>,
    cache: Mutex<HashMap<String, Presence>>,
    token: tokio::sync::Mutex<Option<(String, u64)>>,
    wake: tokio::sync::Notify,
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
    fn manager(&self) -> MutexGuard<'_, Manager> {
        self.manager.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, Presence>> {
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
    async fn send(&self, request: &Request) -> (u16, Option<u64>, Value) {
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

/// Pushes `PresenceChanged` for every presence that differs from the cached one.
fn apply(hub: &Hub, link: &GraphLink, presences: Vec<(String, Presence)>) {
    for (id, p) in presences {
        let moved = link.cache().insert(id.clone(), p) != Some(p);
        if !moved {
            continue;
        }
        let message = crate::presence::wire(&id, p);
        for (hub_name, user) in hub.graph.watchers_of(&id) {
            hub.send_to_user(&hub_name, &user, "PresenceChanged", vec![message.clone()]);
        }
    }
}

/// Starts the link when the hub's Graph config has one (called by [`crate::serve`]).
pub fn start(hub: &Arc<Hub>) {
    let Some(config) = hub.graph.config.link.clone() else {
        return;
    };
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
    let link = Arc::new(GraphLink {
        config,
        manager: Mutex::new(Manager::new(sub)),
        cache: Mutex::new(HashMap::new()),
        token: tokio::sync::Mutex::new(None),
        wake: tokio::sync::Notify::new(),
        http,
    });
    if hub.graph.link.set(link.clone()).is_err() {
        return;
    }
    tracing::info!(
        "Graph presence: change-notification subscriptions to {} (notifications at {})",
        link.config.base_url,
        link.config.notification_url
    );
    tokio::spawn(drive(Arc::downgrade(hub), link));
}

async fn drive(hub: Weak<Hub>, link: Arc<GraphLink>) {
    loop {
        let now = unix_now_ms();
        let (requests, deadline) = {
            let mut m = link.manager();
            let requests = m.poll(now);
            (requests, m.next_deadline())
        };
        for request in requests {
            let (hub, link) = (hub.clone(), link.clone());
            tokio::spawn(async move {
                let (status, retry_after, body) = link.send(&request).await;
                let presences = link.manager().on_response(
                    request.id,
                    status,
                    retry_after,
                    &body,
                    unix_now_ms(),
                );
                if let Some(hub) = hub.upgrade() {
                    apply(&hub, &link, presences);
                }
                link.wake.notify_one();
            });
        }
        let sleep = deadline
            .map(|d| Duration::from_millis(d.saturating_sub(unix_now_ms())))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = link.wake.notified() => {}
        }
        match hub.upgrade() {
            Some(h) if !*h.subscribe_shutdown().borrow() => {}
            _ => return,
        }
    }
}

/// `POST /api/graph/notifications` and `POST /api/graph/lifecycle` (see the module docs).
pub(crate) fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .without_v07_checks()
        .route("/api/graph/notifications", post(notifications))
        .route("/api/graph/lifecycle", post(notifications))
}

async fn notifications(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(link) = hub.graph.link() else {
        return (
            StatusCode::NOT_FOUND,
            "Graph subscriptions are not configured",
        )
            .into_response();
    };
    if let Some(token) = query.get("validationToken") {
        if token.len() > MAX_VALIDATION_TOKEN {
            return (StatusCode::BAD_REQUEST, "validationToken too long").into_response();
        }
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            token.clone(),
        )
            .into_response();
    }
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        crate::metrics::graph_notifications("malformed", 1);
        return (
            StatusCode::BAD_REQUEST,
            "Expected a JSON change notification collection",
        )
            .into_response();
    };
    let outcome = link.manager().on_notifications(&value, unix_now_ms());
    crate::metrics::graph_notifications("accepted", outcome.accepted as u64);
    crate::metrics::graph_notifications("rejected", outcome.rejected as u64);
    if outcome.rejected > 0 {
        tracing::warn!(
            "Graph: ignored {} notification(s) with an unknown subscription or a wrong clientState",
            outcome.rejected
        );
    }
    for event in &outcome.lifecycle {
        tracing::info!("Graph: lifecycle notification {event}");
    }
    link.wake.notify_one();
    StatusCode::ACCEPTED.into_response()
}
