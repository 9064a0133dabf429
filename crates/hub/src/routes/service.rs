//! The Azure SignalR Service API subset: the client endpoint (negotiate + WebSockets) and the
//! REST API with AccessKey-signed JWTs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{head, post, put};
use serde::Deserialize;
use serde_json::Value;
use switchboard_signalr::negotiate::{AvailableTransport, NegotiateConnection, NegotiateResponse};

use super::{ApiError, bad_request, json_object};
use crate::access::{Authorized, ClientEndpoint, DevHooks, ServiceRest};
use crate::hub::{Hub, is_valid_hub_name};
use crate::transport;
pub use crate::transport::READ_BUFFER_SIZE;

/// `POST /client/negotiate?hub=H[&negotiateVersion=1]` with the hub access token
/// (`Authorization: Bearer` or `?access_token=`).
///
/// v1: `{"negotiateVersion":1,"connectionId":"..","connectionToken":"..",
/// "availableTransports":[WebSockets Text+Binary, ServerSentEvents Text, LongPolling
/// Text+Binary]}` (+ `"useStatefulReconnect":true` when asked with `useStatefulReconnect=true`
/// and allowed by `HubConfig::allow_stateful_reconnect`);
/// without `negotiateVersion`, v0 (no `connectionToken`; the transport connects with the
/// connection id). The connect id is single-use and expires after 15 s unused.
/// 401 `{"error"}` for a missing/invalid/expired token or one for another hub.
pub async fn client_negotiate(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized(access): Authorized<ClientEndpoint>,
) -> Result<Json<Value>, ApiError> {
    let version = query
        .get("negotiateVersion")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0)
        .min(1);
    let stateful = hub.config().allow_stateful_reconnect
        && query
            .get("useStatefulReconnect")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if let Some(user) = &access.user {
        // --redis: the user's live calls held by other nodes (or left by a dead one) come
        // here first, so that this connection finds them (docs/scale-out.md).
        hub.pull_calls(&access.hub, user)
            .await
            .map_err(|_| ApiError::RedisDown)?;
    }
    let (connection_id, connect_id) = hub
        .start_negotiation(&access.hub, access.user, access.roles, version, stateful)
        .ok_or_else(|| {
            ApiError::Json(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many pending connections".into(),
            )
        })?;
    let answer = NegotiateResponse::Connection(NegotiateConnection {
        connection_id,
        connection_token: (version >= 1).then_some(connect_id),
        negotiate_version: version,
        available_transports: vec![
            AvailableTransport {
                transport: "WebSockets".into(),
                transfer_formats: vec!["Text".into(), "Binary".into()],
            },
            AvailableTransport {
                transport: "ServerSentEvents".into(),
                transfer_formats: vec!["Text".into()],
            },
            AvailableTransport {
                transport: "LongPolling".into(),
                transfer_formats: vec!["Text".into(), "Binary".into()],
            },
        ],
        use_stateful_reconnect: stateful,
    });
    Ok(Json(answer.to_json()))
}

/// `GET /client/?hub=H&id=CONNECT_ID&access_token=TOKEN` (`/client` works too; the token may
/// come as `Authorization: Bearer`): a WebSocket upgrade, a Server-Sent Events stream
/// (`Accept: text/event-stream`) or a long poll (anything else). See [`crate::transport`].
///
/// 401 for a bad token, 404 `{"error": "No Connection with that ID"}` for an unknown, used or
/// expired id (or one negotiated for another hub or user). Without `id` a WebSocket connection
/// is made directly (`skipNegotiation` clients).
pub async fn client_connect(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    Authorized(access): Authorized<ClientEndpoint>,
) -> Result<Response, ApiError> {
    transport::connect(
        hub.clone(),
        access.hub,
        access.user,
        access.roles,
        &query,
        &headers,
        upgrade.ok(),
    )
    .await
}

/// `POST /client/?hub=H&id=CONNECT_ID`: data from a Server-Sent Events or long-polling client
/// (200); 404 for an unknown id, 400 for a WebSocket connection.
pub async fn client_send(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized(access): Authorized<ClientEndpoint>,
    body: Bytes,
) -> Result<Response, ApiError> {
    transport::post(&hub, &access.hub, access.user, query.get("id"), body).await
}

/// `DELETE /client/?hub=H&id=CONNECT_ID`: ends the connection (202); 404 for an unknown id.
pub async fn client_close(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized(access): Authorized<ClientEndpoint>,
) -> Result<Response, ApiError> {
    transport::delete(&hub, &access.hub, access.user, query.get("id")).await
}

/// Dev mode only: `POST /dev/connections/{connectionId}/drop` drops the connection's transport
/// without closing the logical connection (a stateful-reconnect client resumes it; others see
/// the socket close and reconnect per policy). `{"dropped": N}`; 404 outside dev mode.
pub async fn dev_drop_connection(
    State(hub): State<Arc<Hub>>,
    Path(connection_id): Path<String>,
    _: Authorized<DevHooks>,
) -> Result<Json<Value>, ApiError> {
    let dropped = hub.drop_transports(Some(&connection_id), None);
    Ok(Json(serde_json::json!({ "dropped": dropped })))
}

/// Dev mode only: `POST /dev/users/{userId}/drop`, the same for every connection of a user.
pub async fn dev_drop_user(
    State(hub): State<Arc<Hub>>,
    Path(user): Path<String>,
    _: Authorized<DevHooks>,
) -> Result<Json<Value>, ApiError> {
    let dropped = hub.drop_transports(None, Some(&user));
    Ok(Json(serde_json::json!({ "dropped": dropped })))
}

// ----- REST -------------------------------------------------------------------------------------

/// The REST routes: the v1 paths (`/api/v1/hubs/{hub}/...`) and the 2022-06-01 paths
/// (`/api/hubs/{hub}/.../:send?api-version=2022-06-01`), which newer Azure SDKs use. Existence
/// checks answer `HEAD` (and `GET`, as the v1 reference lists them).
pub fn rest_routes() -> Router<Arc<Hub>> {
    // The group membership routes, the same under both API versions.
    let group_user = put(rest_group_add_user).delete(rest_group_remove_user);
    let group_connection = put(rest_group_add_connection).delete(rest_group_remove_connection);
    Router::new()
        .route(
            "/dev/connections/{connection}/drop",
            post(dev_drop_connection),
        )
        .route("/dev/users/{user}/drop", post(dev_drop_user))
        // `:send` is a literal segment (2022-06-01 paths), not an axum 0.7 capture.
        .without_v07_checks()
        // v1
        .route("/api/v1/hubs/{hub}", post(rest_broadcast))
        .route(
            "/api/v1/hubs/{hub}/users/{user}",
            post(rest_user).head(rest_user_exists).get(rest_user_exists),
        )
        .route(
            "/api/v1/hubs/{hub}/connections/{connection}",
            post(rest_connection)
                .head(rest_connection_exists)
                .get(rest_connection_exists)
                .delete(rest_connection_close),
        )
        .route(
            "/api/v1/hubs/{hub}/groups/{group}",
            post(rest_group)
                .head(rest_group_exists)
                .get(rest_group_exists),
        )
        .route(
            "/api/v1/hubs/{hub}/groups/{group}/users/{user}",
            group_user.clone(),
        )
        .route(
            "/api/v1/hubs/{hub}/groups/{group}/connections/{connection}",
            group_connection.clone(),
        )
        // 2022-06-01
        .route(
            "/api/health",
            head(|| async { StatusCode::OK }).get(|| async { StatusCode::OK }),
        )
        .route("/api/hubs/{hub}/:send", post(rest_broadcast))
        .route("/api/hubs/{hub}/users/{user}", head(rest_user_exists))
        .route("/api/hubs/{hub}/users/{user}/:send", post(rest_user))
        .route(
            "/api/hubs/{hub}/users/{user}/groups/{group}",
            group_user.clone(),
        )
        .route(
            "/api/hubs/{hub}/connections/{connection}",
            head(rest_connection_exists).delete(rest_connection_close),
        )
        .route(
            "/api/hubs/{hub}/connections/{connection}/:send",
            post(rest_connection),
        )
        .route("/api/hubs/{hub}/groups/{group}", head(rest_group_exists))
        .route("/api/hubs/{hub}/groups/{group}/:send", post(rest_group))
        .route(
            "/api/hubs/{hub}/groups/{group}/connections/{connection}",
            group_connection.clone(),
        )
}

/// The path parameters of a REST route, by name (the two API versions order them differently).
#[derive(Debug, Deserialize)]
pub struct RestPath {
    hub: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    connection: String,
}

fn valid_hub(hub: &str) -> Result<(), ApiError> {
    if is_valid_hub_name(hub) {
        Ok(())
    } else {
        Err(bad_request("Invalid hub name"))
    }
}

/// The REST send body `{"target": "Name", "arguments": [...]}`.
fn payload(body: &[u8]) -> Result<(String, Vec<Value>), ApiError> {
    let object = json_object(body).map_err(bad_request)?;
    let target = match object.get("target").or_else(|| object.get("Target")) {
        Some(Value::String(t)) if !t.trim().is_empty() => t.clone(),
        _ => {
            return Err(bad_request(
                "target is required: {\"target\": \"Method\", \"arguments\": [...]}",
            ));
        }
    };
    let arguments = match object.get("arguments").or_else(|| object.get("Arguments")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(bad_request("arguments must be an array")),
    };
    Ok((target, arguments))
}

/// What a REST handler takes: the hub, the route's path parameters and the AccessKey
/// authorization, extracted in that order.
pub struct Rest {
    hub: Arc<Hub>,
    path: RestPath,
}

impl FromRequestParts<Arc<Hub>> for Rest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, Response> {
        let Path(path) = Path::<RestPath>::from_request_parts(parts, hub)
            .await
            .map_err(IntoResponse::into_response)?;
        Authorized::<ServiceRest>::from_request_parts(parts, hub)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Rest {
            hub: Arc::clone(hub),
            path,
        })
    }
}

impl Rest {
    /// A REST send → 202: the hub name checked, the body read as `(target, arguments)` and
    /// handed to `send`.
    fn send<R>(
        self,
        body: &[u8],
        send: impl FnOnce(&Hub, &RestPath, &str, Vec<Value>) -> R,
    ) -> Result<StatusCode, ApiError> {
        let (target, arguments) = send_payload(&self.path.hub, body)?;
        send(&self.hub, &self.path, &target, arguments);
        Ok(StatusCode::ACCEPTED)
    }
}

/// 200 when `yes`, else 404 (the REST `HEAD` checks and a close).
fn found(yes: bool) -> StatusCode {
    if yes {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

/// A REST send's hub name checked and its body read as `(target, arguments)`.
fn send_payload(hub_name: &str, body: &[u8]) -> Result<(String, Vec<Value>), ApiError> {
    valid_hub(hub_name)?;
    payload(body)
}

/// `POST /api/v1/hubs/{hub}/users/{userId}` → 202 (also when nobody is connected, as Azure).
/// An `IncomingCall` with a call object registers the call for that user, or answers 409
/// `{"reason","state","since","userId","error"}` when the agent's state takes no calls
/// ([`Hub::send_to_user_routed`]).
pub async fn rest_user(Rest { hub, path: p }: Rest, body: Bytes) -> Result<StatusCode, ApiError> {
    let (target, arguments) = send_payload(&p.hub, &body)?;
    let user = &p.user;
    let elsewhere = hub
        .user_node_elsewhere(&p.hub, user)
        .await
        .map_err(|_| ApiError::RedisDown)?;
    let connected_elsewhere = elsewhere.is_some();
    let n = hub
        .send_to_user_in_cluster(&p.hub, user, &target, arguments, elsewhere)
        .map_err(|r| {
            tracing::info!(%user, reason = r.reason.as_str(), "REST IncomingCall refused by agent state");
            ApiError::refused(&r)
        })?;
    tracing::info!(%user, %target, connections = n, "REST send to user");
    if n == 0 && !connected_elsewhere && hub.user_connected(&p.hub, user) {
        return Err(ApiError::Json(
            StatusCode::SERVICE_UNAVAILABLE,
            super::adaptor::NOT_DELIVERED.into(),
        ));
    }
    Ok(StatusCode::ACCEPTED)
}

/// `HEAD /api/v1/hubs/{hub}/users/{userId}` → 200 when connected, 404 otherwise.
pub async fn rest_user_exists(Rest { hub, path: p }: Rest) -> Result<StatusCode, ApiError> {
    let yes = hub.user_connected_anywhere(&p.hub, &p.user).await;
    Ok(found(yes.map_err(|_| ApiError::RedisDown)?))
}

/// `POST /api/v1/hubs/{hub}/connections/{connectionId}` → 202.
pub async fn rest_connection(rest: Rest, body: Bytes) -> Result<StatusCode, ApiError> {
    rest.send(&body, |hub, p, target, arguments| {
        hub.send_to_connection(&p.hub, &p.connection, target, arguments)
    })
}

/// `HEAD /api/v1/hubs/{hub}/connections/{connectionId}` → 200 / 404.
pub async fn rest_connection_exists(Rest { hub, path: p }: Rest) -> Result<StatusCode, ApiError> {
    let yes = hub.connection_exists_anywhere(&p.hub, &p.connection).await;
    Ok(found(yes.map_err(|_| ApiError::RedisDown)?))
}

/// `DELETE /api/v1/hubs/{hub}/connections/{connectionId}[?reason=..]` → 200 (closed with a
/// Close message) / 404.
pub async fn rest_connection_close(
    State(hub): State<Arc<Hub>>,
    Path(p): Path<RestPath>,
    Query(query): Query<HashMap<String, String>>,
    _: Authorized<ServiceRest>,
) -> Result<StatusCode, ApiError> {
    let reason = query.get("reason").cloned();
    let closed = hub
        .close_connection_anywhere(&p.hub, &p.connection, reason)
        .await;
    Ok(found(closed.map_err(|_| ApiError::RedisDown)?))
}

/// `POST /api/v1/hubs/{hub}/groups/{group}` → 202.
pub async fn rest_group(rest: Rest, body: Bytes) -> Result<StatusCode, ApiError> {
    rest.send(&body, |hub, p, target, arguments| {
        hub.send_to_group(&p.hub, &p.group, target, arguments)
    })
}

/// `HEAD /api/v1/hubs/{hub}/groups/{group}` → 200 when a live connection is in it, else 404.
pub async fn rest_group_exists(Rest { hub, path: p }: Rest) -> Result<StatusCode, ApiError> {
    let yes = hub.group_has_connections_anywhere(&p.hub, &p.group).await;
    Ok(found(yes.map_err(|_| ApiError::RedisDown)?))
}

/// `POST /api/v1/hubs/{hub}` (broadcast) → 202.
pub async fn rest_broadcast(rest: Rest, body: Bytes) -> Result<StatusCode, ApiError> {
    rest.send(&body, |hub, p, target, arguments| {
        hub.broadcast(&p.hub, target, arguments)
    })
}

/// `PUT /api/v1/hubs/{hub}/groups/{group}/users/{userId}` → 200: the user's present and future
/// connections are in the group.
pub async fn rest_group_add_user(Rest { hub, path: p }: Rest) -> Result<StatusCode, ApiError> {
    valid_hub(&p.hub)?;
    if hub.group_add_user(&p.hub, &p.group, &p.user) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::Json(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many groups".into(),
        ))
    }
}

/// `DELETE /api/v1/hubs/{hub}/groups/{group}/users/{userId}` → 200.
pub async fn rest_group_remove_user(Rest { hub, path: p }: Rest) -> Result<StatusCode, ApiError> {
    hub.group_remove_user(&p.hub, &p.group, &p.user);
    Ok(StatusCode::OK)
}

/// `PUT /api/v1/hubs/{hub}/groups/{group}/connections/{connectionId}` → 200, 404 when the
/// connection is not live.
pub async fn rest_group_add_connection(
    Rest { hub, path: p }: Rest,
) -> Result<StatusCode, ApiError> {
    let added = hub
        .group_add_connection_anywhere(&p.hub, &p.group, &p.connection)
        .await;
    if added.map_err(|_| ApiError::RedisDown)? {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::Json(
            StatusCode::NOT_FOUND,
            "No live connection with that id".into(),
        ))
    }
}

/// `DELETE /api/v1/hubs/{hub}/groups/{group}/connections/{connectionId}` → 200.
pub async fn rest_group_remove_connection(
    Rest { hub, path: p }: Rest,
) -> Result<StatusCode, ApiError> {
    hub.group_remove_connection(&p.hub, &p.group, &p.connection);
    Ok(StatusCode::OK)
}
