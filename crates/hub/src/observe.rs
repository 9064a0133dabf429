//! Observability routes and layers: `GET /metrics` (Prometheus text, [`crate::metrics`]) and the
//! send-latency timer.
//!
//! `/metrics` answers a scraper on loopback (a peer address of `127.0.0.0/8` or `::1` and no
//! `X-Forwarded-For` / `Forwarded` header, so a reverse proxy on the same host does not open it
//! to the network), or anyone who presents the access key: `Authorization: Bearer KEY`
//! (Prometheus `authorization: { credentials: KEY }`), `x-functions-key: KEY` or `?code=KEY`.
//! Anything else is `401`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::hub::Hub;
use crate::quota::ClientAddr;
use crate::registry::State as CallState;

/// Every call state, for the `switchboard_calls` gauge (zero counts are reported too).
const STATES: [CallState; 10] = [
    CallState::Ringing,
    CallState::Dialling,
    CallState::Alerting,
    CallState::Accepted,
    CallState::Rejected,
    CallState::Missed,
    CallState::Connected,
    CallState::Held,
    CallState::Transferring,
    CallState::Ended,
];

/// The `/metrics` route.
pub fn routes() -> Router<Arc<Hub>> {
    Router::new().route("/metrics", get(metrics))
}

/// Whether the request came straight from this machine (no proxy in between).
pub fn is_direct_loopback(
    request_addr: Option<&ConnectInfo<ClientAddr>>,
    headers: &HeaderMap,
) -> bool {
    let loopback = request_addr.is_some_and(|ConnectInfo(ClientAddr(addr))| {
        let ip = addr.ip();
        ip.is_loopback() || ip.to_canonical().is_loopback()
    });
    loopback && !headers.contains_key("x-forwarded-for") && !headers.contains_key(header::FORWARDED)
}

/// Whether the request presents the access key (`Authorization: Bearer`, `x-functions-key`,
/// `?code=`).
pub fn has_access_key(hub: &Hub, headers: &HeaderMap, code: Option<&str>) -> bool {
    if hub
        .access_key
        .check_server_credential(headers, code)
        .is_ok()
    {
        return true;
    }
    let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let mut as_key = HeaderMap::new();
    match HeaderValue::from_str(bearer.trim()) {
        Ok(value) => {
            as_key.insert("x-functions-key", value);
            hub.access_key
                .check_server_credential(&as_key, None)
                .is_ok()
        }
        Err(_) => false,
    }
}

async fn metrics(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let headers = request.headers();
    let addr = request.extensions().get::<ConnectInfo<ClientAddr>>();
    if !is_direct_loopback(addr, headers)
        && !has_access_key(&hub, headers, query.get("code").map(String::as_str))
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({
                "error": "Metrics need the access key (Authorization: Bearer KEY) or a loopback scraper"
            })),
        )
            .into_response();
    }
    let counts = calls_by_state(&hub);
    if let Some(cluster) = hub.cluster() {
        crate::metrics::redis_up(cluster.is_up());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&counts),
    )
        .into_response()
}

/// The registry's calls counted by state (every state, zeros included).
pub fn calls_by_state(hub: &Hub) -> Vec<(&'static str, usize)> {
    let mut counts: Vec<(&'static str, usize)> = STATES.iter().map(|s| (s.as_str(), 0)).collect();
    let inner = hub.lock();
    for state in inner.calls.states() {
        if let Some(entry) = counts.iter_mut().find(|(name, _)| *name == state.as_str()) {
            entry.1 += 1;
        }
    }
    counts
}

/// Middleware: records `switchboard_send_duration_seconds` for the send routes
/// (`POST /api/sendmessagetouser`: route `adaptor`; `POST /api/v1/hubs/...`: route `rest`).
pub async fn time_sends(request: Request, next: Next) -> Response {
    let route = if request.method() != Method::POST {
        None
    } else if request
        .uri()
        .path()
        .eq_ignore_ascii_case("/api/sendmessagetouser")
    {
        Some("adaptor")
    } else if request.uri().path().starts_with("/api/v1/hubs/") {
        Some("rest")
    } else {
        None
    };
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(route) = route {
        crate::metrics::send_duration(route, started.elapsed());
    }
    response
}
