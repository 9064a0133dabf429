//! The Azure SignalR Service API subset: the client endpoint (negotiate + WebSockets) and the
//! REST API with AccessKey-signed JWTs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{head, post, put};
use serde::Deserialize;
use serde_json::Value;
use switchboard_signalr::negotiate::{AvailableTransport, NegotiateConnection, NegotiateResponse};

use super::{ApiError, bad_request, json_object};
use crate::access::{Authorized, ClientAccess, ClientEndpoint, DevHooks, ServiceRest};
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
    Authorized(ClientAccess {
        hub: hub_name,
        user,
    }): Authorized<ClientEndpoint>,
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
    let (connection_id, connect_id) = hub
        .start_negotiation(&hub_name, user, version, stateful)
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
    Authorized(ClientAccess {
        hub: hub_name,
        user,
    }): Authorized<ClientEndpoint>,
) -> Result<Response, ApiError> {
    transport::connect(hub.clone(), hub_name, user, &query, &headers, upgrade.ok()).await
}

/// `POST /client/?hub=H&id=CONNECT_ID`: data from a Server-Sent Events or long-polling client
/// (200); 404 for an unknown id, 400 for a WebSocket connection.
pub async fn client_send(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized(ClientAccess {
        hub: hub_name,
        user,
    }): Authorized<ClientEndpoint>,
    body: Bytes,
) -> Result<Response, ApiError> {
    transport::post(&hub, &hub_name, user, query.get("id"), body).await
}

/// `DELETE /client/?hub=H&id=CONNECT_ID`: ends the connection (202); 404 for an unknown id.
pub async fn client_close(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    Authorized(ClientAccess {
        hub: hub_name,
        user,
    }): Authorized<ClientEndpoint>,
) -> Result<Response, ApiError> {
    transport::delete(&hub, &hub_name, user, query.get("id")).await
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
            put(rest_group_add_user).delete(rest_group_remove_user),
        )
        .route(
            "/api/v1/hubs/{hub}/groups/{group}/connections/{connection}",
            put(rest_group_add_connection).delete(rest_group_remove_connection),
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
            put(rest_group_add_user).delete(rest_group_remove_user),
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
            put(rest_group_add_connection).delete(rest_group_remove_connection),
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

/// `POST /api/v1/hubs/{hub}/users/{userId}` → 202 (also when nobody is connected, as Azure).
/// An `IncomingCall` with a call object registers the call for that user.
pub async fn rest_user(
    State(hub): State<Arc<Hub>>,
    Path(RestPath {
        hub: hub_name,
        user,
        ..
    }): Path<RestPath>,
    _: Authorized<ServiceRest>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    valid_hub(&hub_name)?;
    let (target, arguments) = payload(&body)?;
    let n = hub.send_to_user(&hub_name, &user, &target, arguments);
    tracing::info!(%user, %target, connections = n, "REST send to user");
    if n == 0 && hub.user_connected(&hub_name, &user) {
        return Err(ApiError::Json(
            StatusCode::SERVICE_UNAVAILABLE,
            super::adaptor::NOT_DELIVERED.into(),
        ));
    }
    Ok(StatusCode::ACCEPTED)
}

/// `HEAD /api/v1/hubs/{hub}/users/{userId}` → 200 when connected, 404 otherwise.
pub async fn rest_user_exists(
    State(hub): State<Arc<Hub>>,
    Path(RestPath {
        hub: hub_name,
        user,
        ..
    }): Path<RestPath>,
    _: Authorized<ServiceRest>,
) -> Result<StatusCode, ApiError> {
    Ok(if hub.user_connected(&hub_name, &user) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

/// `POST /api/v1/hubs/{hub}/connections/{connectionId}` → 202.
pub async fn rest_connection(
    State(hub): State<Arc<Hub>>,
    Path(RestPath {
        hub: hub_name,
        connection,
        ..
    }): Path<RestPath>,
    _: Authorized<ServiceRest>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    valid_hub(&hub_name)?;
    let (target, arguments) = payload(&body)?;
    hub.send_to_connection(&hub_name, &connection, &target, arguments);
    Ok(StatusCode::ACCEPTED)
}

/// `HEAD /api/v1/hubs/{hub}/connections/{connectionId}` → 200 / 404.
pub async fn rest_connection_exists(
    State(hub): State<Arc<Hub>>,
    Path(RestPath {
        hub: hub_name,
        connection,
        ..
    }): Path<RestPath>,
    _: Authorized<ServiceRest>,
) -> Result<StatusCode, ApiError> {
    Ok(if hub.connection_exists(&hub_name, &connection) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

/// `DELETE /api/v1/hubs/{hub}/connections/{connectionId}[?reason=..]` → 200 (closed with a
/// Close message) / 404.
pub async fn rest_connection_close(
    State(hub): State<Arc<Hub>>,
    Path(RestPath {
        hub: hub_name,
        connection,
        ..
    }): Path<RestPath>,
    Query(query): Query<HashMap<String, String>>,
    _: Authorized<ServiceRest>,
) -> Result<StatusCode, ApiError> {
    let reason = query.get("reason").cloned();
    Ok(if hub.close_connection(&hub_name, &connection, reason) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

/// `POST /api/v1/hubs/{hub}/groups/{group}` → 202.
pub async fn rest_group(
    State(hub): State<Arc<Hub>>,
    Path(RestPath {
        hub: hub_name,
        group,
        ..
    }): Path<RestPath>,
    _: Authorized<ServiceRest>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    valid_hub(&hub_name)?;
    let (target, arguments) = payload(&body)?;
    hub.send_to_group(&hub_name, &group, &target, arguments);
    Ok(StatusCode::ACCEPTED)
}

/// `HEAD /api/v1/hubs/{hub}/groups/{group}` → 200 when a live connection is in it, else 404.
pub async fn rest_group_exists(
    State(hub): State<Arc<Hub>>,
    Path(RestPath {
        hub: hub_name,
        group,
        ..
    }): Path<RestPath>,
    _: Authorized<ServiceRest>,
) -> Result<StatusCode, ApiError> {
    Ok(if hub.group_has_connections(&hub_name, &group) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

/// `POST /api/v1/hubs/{hub}` (broadcast) → 202.
pub async fn rest_broadcast(
    State(hub): State<Arc<Hub>>,
    Path(RestPath { hub: hub_name, .. }): Path<RestPath>,
    _: Authorized<ServiceRest>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    valid_hub(&hub_name)?;
    let (target, arguments) = payload(&body)?;
    hub.broadcast(&hub_name, &target, arguments);
    Ok(StatusCode::ACCEPTED)
}

/// `PUT /api/v1/hubs/{hub}/groups/{group}/users/{userId}` → 200: the user's present and future
/// connections are in the group.
pub async fn rest_group_add_user(
    State(hub): State<Arc<Hub>>,
    Path(RestPath {
        hub: hub_name,
        group,
        user,
        ..
    }): Path<RestPath>,
    _: Authorized<ServiceRest>,
) -> Result<StatusCode, ApiError> {
    valid_hub(&hub_name)?;
    if hub.group_add_user(&hub_name, &group, &user) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::Json(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many groups".into(),
        ))
    }
}

/// `DELETE /api/v1/hubs/{hub}/groups/{group}/users/{userId}` → 200.
pub async fn rest_group_remove_user(
    State(hub): State<Arc<Hub>>,
    Path(RestPath {
        hub: hub_name,
        group,
        user,
        ..
    }): Path<RestPath>,
    _: Authorized<ServiceRest>,
) -> Result<StatusCode, ApiError> {
    hub.group_remove_user(&hub_name, &group, &user);
    Ok(StatusCode::OK)
}

/// `PUT /api/v1/hubs/{hub}/groups/{group}/connections/{connectionId}` → 200, 404 when the
/// connection is not live.
pub async fn rest_group_add_connection(
    State(hub): State<Arc<Hub>>,
    Path(RestPath {
        hub: hub_name,
        group,
        connection,
        ..
    }): Path<RestPath>,
    _: Authorized<ServiceRest>,
) -> Result<StatusCode, ApiError> {
    if hub.group_add_connection(&hub_name, &group, &connection) {
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
    State(hub): State<Arc<Hub>>,
    Path(RestPath {
        hub: hub_name,
        group,
        connection,
        ..
    }): Path<RestPath>,
    _: Authorized<ServiceRest>,
) -> Result<StatusCode, ApiError> {
    hub.group_remove_connection(&hub_name, &group, &connection);
    Ok(StatusCode::OK)
}
