//! The hub as a **Microsoft Graph change-notification subscriber** for presence, when given
//! app credentials (`--graph-tenant`, `--graph-client-id`, `--graph-client-secret`,
//! `--graph-notification-url`; docs/presence.md "Hub subscriptions").
//!
//! - Tokens ([`crate::graph_client`]): OAuth 2.0 client-credentials grant (RFC 6749 §4.4) against the Entra v2 token
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
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use switchboard_core::presence::Presence;

use crate::auth::unix_now_ms;
pub use crate::graph_client::{GraphLink, LinkConfig};
use crate::graph_client::{MAX_SLEEP, MAX_VALIDATION_TOKEN};
use crate::hub::Hub;

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
    let link = Arc::new(GraphLink::new(config));
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
        crate::metrics::graph_lifecycle(event);
    }
    link.wake.notify_one();
    StatusCode::ACCEPTED.into_response()
}
