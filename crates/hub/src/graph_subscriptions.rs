//! The Graph stand-in's **change-notification subscriptions** for presence (dev mode), with the
//! documented semantics of Microsoft Graph v1.0 ("Create subscription", "Update subscription",
//! "Delete subscription", "subscription resource type", "Receive change notifications through
//! webhooks", "Reduce missing subscriptions and change notifications",
//! `changenotifications-for-presence`), so the hub's own subscriber
//! ([`crate::graph_link`]) is tested against the real protocol.
//!
//! Routes under the stand-in's base path (`/graph/v1.0`), `Authorization: Bearer` a dev user
//! token or an app token from the dev token endpoint:
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /subscriptions` | `{"changeType": "updated", "resource": "/communications/presences?$filter=id in ('a','b')"` or `"/communications/presences/{id}"`, `"notificationUrl", "lifecycleNotificationUrl"?, "expirationDateTime", "clientState"?}` | 201 the subscription; 400 `BadRequest` (≤ 650 ids, expiry in the future and ≤ 60 min, `changeType` `updated`, `clientState` ≤ 128 chars, notification URL on loopback, validation failed) |
//! | `GET /subscriptions` | — | 200 `{"value": [subscription...]}`: the caller's live subscriptions (same app or user), one page |
//! | `GET /subscriptions/{id}` | — | 200 the subscription; 404 unknown or expired |
//! | `PATCH /subscriptions/{id}` | `{"expirationDateTime"}` | 200 the subscription (renewed; also reauthorizes); 404 unknown or expired |
//! | `POST /subscriptions/{id}/reauthorize` | — | 204 (reauthorized); 404 |
//! | `DELETE /subscriptions/{id}` | — | 204; 404 |
//!
//! **Validation handshake**: creating a subscription first POSTs
//! `notificationUrl?validationToken=<random>` (and the `lifecycleNotificationUrl`, when
//! different) with `Content-Type: text/plain`; the endpoint must answer 200 with the token as
//! its body within 10 s, or the create answers 400 "Subscription validation request failed".
//!
//! **Notifications**: when a watched user's aggregated presence changes, every live
//! subscription covering the user gets `POST notificationUrl` with
//! `{"value": [{"subscriptionId", "subscriptionExpirationDateTime", "changeType": "updated",
//! "resource": "communications/presences('<id>')", "resourceData": {"@odata.type":
//! "#Microsoft.Graph.presence", "@odata.id", "id"}, "clientState", "tenantId"}]}` (no resource
//! data: the subscriber reads the presence). A subscription past its `expirationDateTime`
//! notifies nothing and is gone (404 on PATCH). Not modelled: delivery retries.
//!
//! **Test hooks (dev mode only, for tests; not Graph routes)**:
//! - `POST /test/subscriptions/{id}/lifecycle` `{"lifecycleEvent"}`: `reauthorizationRequired`
//!   sends that lifecycle notification and withholds change notifications until the
//!   subscription is renewed or reauthorized; `subscriptionRemoved` removes it and sends the
//!   notification; `missed` makes every later change notification to it be dropped and
//!   replaced by a `missed` lifecycle notification (as when deliveries failed).
//! - `POST /test/subscriptions/{id}/expire`: the subscription expires now.
//! - `POST /test/throttle` `{"count", "retryAfter"}`: the next `count` subscription requests
//!   answer 429 `TooManyRequests` with `Retry-After: retryAfter`.
//!
//! **Dev token endpoint** (`POST /graph/login/{tenant}/oauth2/v2.0/token`, form
//! `grant_type=client_credentials&client_id&client_secret&scope`): the Entra v2 shape
//! `{"token_type": "Bearer", "expires_in", "access_token"}` for the secret in
//! [`crate::presence::GraphConfig::app_secret`]; 400 `unsupported_grant_type`, 401
//! `invalid_client` otherwise.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use switchboard_core::presence::MAX_IDS_PER_REQUEST;
use switchboard_core::presence::subscriptions::{
    MAX_CLIENT_STATE_LEN, MAX_PRESENCE_EXPIRATION_MS, format_utc, parse_presence_resource,
    parse_utc,
};

use crate::access::Authorized;
use crate::auth::unix_now_ms;
use crate::graph_access::{GraphCaller, GraphError};
use crate::hub::Hub;
use crate::presence::Subscription;

/// Subscriptions the stand-in keeps at most.
pub const MAX_SUBSCRIPTIONS: usize = 1_000;
/// App tokens issued by the dev token endpoint live this long (Entra's usual hour).
pub const APP_TOKEN_LIFETIME_MS: u64 = 3_600_000;
/// The tenant id the stand-in reports in notifications.
pub const TENANT_ID: &str = "switchboard-dev-tenant";

/// The subscription as Graph answers it.
fn subscription_json(s: &Subscription) -> Value {
    json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": s.id,
            "resource": s.resource,
            "applicationId": s.application,
            "changeType": "updated",
            "clientState": s.client_state,
            "notificationUrl": s.notification_url,
            "lifecycleNotificationUrl": s.lifecycle_url,
            "expirationDateTime": format_utc(s.expires_at),
            "includeResourceData": false,
    })
}

fn random_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]),
        u16::from_be_bytes([b[8], b[9]]),
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

fn bad(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn gone(id: &str) -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("The object was not found: subscription '{id}'"),
    )
}

/// Routes nested under the stand-in's base path (see the module docs).
pub(crate) fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .without_v07_checks()
        .route("/subscriptions", post(create).get(list))
        .route("/subscriptions/{id}", get(read).patch(renew).delete(remove))
        .route("/subscriptions/{id}/reauthorize", post(reauthorize))
        .route("/test/subscriptions/{id}/lifecycle", post(hook_lifecycle))
        .route("/test/subscriptions/{id}/expire", post(hook_expire))
        .route("/test/throttle", post(hook_throttle))
}

/// The dev token endpoint's route (outside the Graph base path; dev mode only).
pub(crate) fn token_routes() -> Router<Arc<Hub>> {
    Router::new()
        .without_v07_checks()
        .route("/graph/login/{tenant}/oauth2/v2.0/token", post(token))
}

/// The test hook's 429 for subscription requests, if armed.
fn throttled(hub: &Hub) -> Result<(), GraphError> {
    let mut inner = hub.graph.lock();
    let (count, retry_after) = inner.throttle;
    if count == 0 {
        return Ok(());
    }
    inner.throttle.0 -= 1;
    Err(GraphError::throttled(
        retry_after,
        "Too many requests (test hook)",
    ))
}

/// Only loopback notification URLs: the stand-in never calls out of the machine.
fn loopback_url(url: &str) -> Result<(), GraphError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| bad(format!("'{url}' is not an absolute URL")))?;
    let host_ok = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if !matches!(parsed.scheme(), "http" | "https") || !host_ok {
        return Err(bad(
            "The dev stand-in delivers notifications to loopback URLs only (Graph requires public HTTPS)",
        ));
    }
    Ok(())
}

fn client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// The validation handshake: `POST url?validationToken=T` (text/plain) must answer 200 `T`.
async fn validate(url: &str) -> Result<(), GraphError> {
    let token = format!(
        "Validation: Testing client application reachability {}",
        random_id()
    );
    let failed = || {
        bad(format!(
            "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request. ({url})"
        ))
    };
    let mut target = reqwest::Url::parse(url).map_err(|_| failed())?;
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let response = client()
        .post(target)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .send()
        .await
        .map_err(|_| failed())?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(failed());
    }
    let body = response.text().await.map_err(|_| failed())?;
    if body != token {
        return Err(failed());
    }
    Ok(())
}

fn expiry(object: &serde_json::Map<String, Value>, now: u64) -> Result<u64, GraphError> {
    let text = object
        .get("expirationDateTime")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("expirationDateTime is required"))?;
    let at = parse_utc(text).ok_or_else(|| {
        bad(format!(
            "expirationDateTime '{text}' is not an ISO-8601 date-time"
        ))
    })?;
    if at <= now {
        return Err(bad("Subscription expiration must be in the future"));
    }
    if at > now + MAX_PRESENCE_EXPIRATION_MS {
        return Err(bad(
            "Subscription expiration can only be 60 minutes in the future for presence",
        ));
    }
    Ok(at)
}

async fn create(
    State(hub): State<Arc<Hub>>,
    Authorized(caller): Authorized<GraphCaller>,
    body: Bytes,
) -> Result<Response, GraphError> {
    throttled(&hub)?;
    let object = crate::rest::json_object(&body).map_err(bad)?;
    let text = |k: &str| object.get(k).and_then(Value::as_str);
    if text("changeType") != Some("updated") {
        return Err(bad("changeType must be 'updated' for presence"));
    }
    let resource = text("resource").ok_or_else(|| bad("resource is required"))?;
    let ids = parse_presence_resource(resource).ok_or_else(|| {
        bad("resource must be /communications/presences?$filter=id in ('id',...) or /communications/presences/{id}")
    })?;
    if ids.len() > MAX_IDS_PER_REQUEST {
        return Err(bad(format!(
            "Too many users requested: {} ids; a presence subscription takes at most {MAX_IDS_PER_REQUEST}",
            ids.len()
        )));
    }
    let client_state = text("clientState").map(str::to_owned);
    if client_state
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_CLIENT_STATE_LEN)
    {
        return Err(bad("clientState is longer than 128 characters"));
    }
    let notification_url = text("notificationUrl")
        .ok_or_else(|| bad("notificationUrl is required"))?
        .to_owned();
    loopback_url(&notification_url)?;
    let lifecycle_url = text("lifecycleNotificationUrl").map(str::to_owned);
    if let Some(url) = &lifecycle_url {
        loopback_url(url)?;
    }
    let expires_at = expiry(&object, unix_now_ms())?;
    if hub.graph.lock().subscriptions.len() >= MAX_SUBSCRIPTIONS {
        purge(&hub);
        if hub.graph.lock().subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(GraphError::new(
                StatusCode::FORBIDDEN,
                "ExtensionError",
                "Too many subscriptions",
            ));
        }
    }
    validate(&notification_url).await?;
    if let Some(url) = lifecycle_url.as_ref().filter(|u| **u != notification_url) {
        validate(url).await?;
    }
    let subscription = Subscription {
        id: random_id(),
        resource: resource.to_owned(),
        ids: ids.into_iter().collect(),
        notification_url,
        lifecycle_url,
        client_state,
        expires_at,
        application: caller,
        needs_reauth: false,
        dropping: false,
    };
    let answer = subscription_json(&subscription);
    hub.graph
        .lock()
        .subscriptions
        .insert(subscription.id.clone(), subscription);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Drops expired subscriptions.
fn purge(hub: &Hub) {
    let now = unix_now_ms();
    hub.graph
        .lock()
        .subscriptions
        .retain(|_, s| s.expires_at > now);
}

fn live(hub: &Hub, id: &str) -> Result<Subscription, GraphError> {
    purge(hub);
    hub.graph
        .lock()
        .subscriptions
        .get(id)
        .cloned()
        .ok_or_else(|| gone(id))
}

/// `GET /subscriptions`: the caller's live subscriptions (those it created: the same app
/// token's client id, or the same user), one page.
async fn list(
    State(hub): State<Arc<Hub>>,
    Authorized(caller): Authorized<GraphCaller>,
) -> Json<Value> {
    let now = unix_now_ms();
    let inner = hub.graph.lock();
    let mut mine: Vec<&Subscription> = inner
        .subscriptions
        .values()
        .filter(|s| s.application == caller && s.expires_at > now)
        .collect();
    mine.sort_by(|a, b| a.id.cmp(&b.id));
    let value: Vec<Value> = mine
        .into_iter()
        .map(|s| {
            let mut v = subscription_json(s);
            if let Some(o) = v.as_object_mut() {
                o.remove("@odata.context");
            }
            v
        })
        .collect();
    Json(json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions",
        "value": value,
    }))
}

async fn read(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    _: Authorized<GraphCaller>,
) -> Result<Json<Value>, GraphError> {
    Ok(Json(subscription_json(&live(&hub, &id)?)))
}

async fn renew(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    _: Authorized<GraphCaller>,
    body: Bytes,
) -> Result<Json<Value>, GraphError> {
    throttled(&hub)?;
    live(&hub, &id)?;
    let object = crate::rest::json_object(&body).map_err(bad)?;
    let at = expiry(&object, unix_now_ms())?;
    let mut inner = hub.graph.lock();
    let s = inner.subscriptions.get_mut(&id).ok_or_else(|| gone(&id))?;
    s.expires_at = at;
    s.needs_reauth = false;
    Ok(Json(subscription_json(s)))
}

async fn reauthorize(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    _: Authorized<GraphCaller>,
) -> Result<StatusCode, GraphError> {
    throttled(&hub)?;
    live(&hub, &id)?;
    if let Some(s) = hub.graph.lock().subscriptions.get_mut(&id) {
        s.needs_reauth = false;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    _: Authorized<GraphCaller>,
) -> Result<StatusCode, GraphError> {
    throttled(&hub)?;
    live(&hub, &id)?;
    hub.graph.lock().subscriptions.remove(&id);
    Ok(StatusCode::NO_CONTENT)
}

fn lifecycle_item(s: &Subscription, event: &str) -> Value {
    json!({
        "subscriptionId": s.id,
        "subscriptionExpirationDateTime": format_utc(s.expires_at),
        "tenantId": TENANT_ID,
        "clientState": s.client_state,
        "lifecycleEvent": event,
    })
}

fn deliver(url: String, body: Value) {
    tokio::spawn(async move {
        let sent = client()
            .post(&url)
            .timeout(Duration::from_secs(3))
            .json(&body)
            .send()
            .await;
        if let Err(e) = sent {
            tracing::debug!("Graph stand-in: notification to {url} not delivered: {e}");
        }
    });
}

async fn hook_lifecycle(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    _: Authorized<GraphCaller>,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    let object = crate::rest::json_object(&body).map_err(bad)?;
    let event = object
        .get("lifecycleEvent")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let s = live(&hub, &id)?;
    let url = s
        .lifecycle_url
        .clone()
        .ok_or_else(|| bad("This subscription has no lifecycleNotificationUrl"))?;
    {
        let mut inner = hub.graph.lock();
        match event.as_str() {
            "reauthorizationRequired" => {
                if let Some(s) = inner.subscriptions.get_mut(&id) {
                    s.needs_reauth = true;
                }
            }
            "subscriptionRemoved" => {
                inner.subscriptions.remove(&id);
            }
            "missed" => {
                if let Some(s) = inner.subscriptions.get_mut(&id) {
                    s.dropping = true;
                }
                return Ok(StatusCode::ACCEPTED);
            }
            _ => {
                return Err(bad(
                    "lifecycleEvent must be reauthorizationRequired, subscriptionRemoved or missed",
                ));
            }
        }
    }
    deliver(url, json!({ "value": [lifecycle_item(&s, &event)] }));
    Ok(StatusCode::ACCEPTED)
}

async fn hook_expire(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    _: Authorized<GraphCaller>,
) -> Result<StatusCode, GraphError> {
    live(&hub, &id)?;
    if let Some(s) = hub.graph.lock().subscriptions.get_mut(&id) {
        s.expires_at = unix_now_ms().saturating_sub(1);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn hook_throttle(
    State(hub): State<Arc<Hub>>,
    _: Authorized<GraphCaller>,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    let object = crate::rest::json_object(&body).map_err(bad)?;
    let number = |k: &str| object.get(k).and_then(Value::as_u64);
    let count = number("count").ok_or_else(|| bad("count is required"))?;
    let retry_after = number("retryAfter").unwrap_or(1).clamp(1, 3600);
    hub.graph.lock().throttle = (count.min(1000) as u32, retry_after);
    Ok(StatusCode::NO_CONTENT)
}

/// Sends change notifications for user `id`'s new presence to every live subscription
/// covering it (called when the aggregate moved; see the module docs).
pub(crate) fn notify(hub: &Hub, id: &str) {
    let now = unix_now_ms();
    let mut sends = Vec::new();
    {
        let mut inner = hub.graph.lock();
        inner.subscriptions.retain(|_, s| s.expires_at > now);
        for s in inner.subscriptions.values() {
            if !s.ids.contains(id) || s.needs_reauth {
                continue;
            }
            if s.dropping {
                if let Some(url) = &s.lifecycle_url {
                    sends.push((url.clone(), lifecycle_item(s, "missed")));
                }
                continue;
            }
            let resource = format!("communications/presences('{id}')");
            sends.push((
                s.notification_url.clone(),
                json!({
                    "subscriptionId": s.id,
                    "subscriptionExpirationDateTime": format_utc(s.expires_at),
                    "changeType": "updated",
                    "resource": resource,
                    "resourceData": {
                        "@odata.type": "#Microsoft.Graph.presence",
                        "@odata.id": resource,
                        "id": id,
                    },
                    "clientState": s.client_state,
                    "tenantId": TENANT_ID,
                }),
            ));
        }
    }
    for (url, item) in sends {
        deliver(url, json!({ "value": [item] }));
    }
}

/// The client-credentials grant of the dev token endpoint.
async fn token(State(hub): State<Arc<Hub>>, Path(_tenant): Path<String>, body: Bytes) -> Response {
    let oauth_error = |status: StatusCode, code: &str, description: &str| {
        (
            status,
            Json(json!({ "error": code, "error_description": description })),
        )
            .into_response()
    };
    if !hub.dev_mode() {
        return oauth_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "The dev token endpoint runs in dev mode only",
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only grant_type=client_credentials is supported",
        );
    }
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let secret_ok = match (&hub.graph.config.app_secret, form.get("client_secret")) {
        (Some(expected), Some(given)) => {
            use sha2::{Digest, Sha256};
            // Compare digests: equal length, no early exit on the secret's bytes.
            Sha256::digest(expected.as_bytes()) == Sha256::digest(given.as_bytes())
        }
        _ => false,
    };
    if client_id.is_empty() || !secret_ok {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    let token = format!("{}{}", random_id(), random_id()).replace('-', "");
    let now = unix_now_ms();
    {
        let mut inner = hub.graph.lock();
        inner.app_tokens.retain(|_, (_, exp)| *exp > now);
        if inner.app_tokens.len() >= MAX_SUBSCRIPTIONS {
            return oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                "Too many tokens",
            );
        }
        inner
            .app_tokens
            .insert(token.clone(), (client_id, now + APP_TOKEN_LIFETIME_MS));
    }
    Json(json!({
        "token_type": "Bearer",
        "expires_in": APP_TOKEN_LIFETIME_MS / 1000,
        "ext_expires_in": APP_TOKEN_LIFETIME_MS / 1000,
        "access_token": token,
    }))
    .into_response()
}
