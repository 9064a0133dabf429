//! The Azure Functions adaptor API of the seed sample, the call registry, and dev sign-in.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::{ApiError, bad_request, json_object, string_field};
use crate::access::{Authorized, ServerKey, User, UserOrServerKey};
use crate::auth::{self, is_valid_user_name};
use crate::hub::{Delivery, Hub, UserClient, is_valid_hub_name};

/// The exact 400 body of `SendMessageToUser` when the user has no live connection (seed).
pub const USER_NOT_CONNECTED: &str = "User Not Connected Currently";

/// `POST /dev/token` `{"user": "alice", "role"?: "Supervisor"}` → 200 `{"accessToken": "<JWT>",
/// "expiresOn": <unix s>}` (the role goes in the token's `roles` claim).
///
/// Dev mode only (404 otherwise). 400 `{"error"}` when the body is not JSON or the user name
/// is not `[A-Za-z0-9._@-]{1,64}`.
pub async fn dev_token(State(hub): State<Arc<Hub>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let Some(dev) = hub.users.dev() else {
        return Err(ApiError::Json(
            StatusCode::NOT_FOUND,
            "Dev sign-in is off".into(),
        ));
    };
    let object = json_object(&body).map_err(bad_request)?;
    let user = match super::field(&object, "user") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(bad_request("user is required: {\"user\": \"alice\"}")),
    };
    let role = match super::field(&object, "role") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if crate::agents::is_valid_state(r) => Some(r.clone()),
        Some(_) => {
            return Err(bad_request(
                "role must be 1 to 32 characters from A-Z a-z 0-9 space _ - (\"Supervisor\")",
            ));
        }
    };
    if !is_valid_user_name(&user) {
        return Err(bad_request(
            "user must be 1 to 64 characters from A-Z a-z 0-9 . _ @ -",
        ));
    }
    if hub.config().oidc.is_some() && crate::guard::looks_like_idp_id(&user) {
        return Err(bad_request(
            "user must not look like an identity provider's id (a GUID or a pairwise sub) while OIDC sign-in is on",
        ));
    }
    let roles: Vec<String> = role.into_iter().collect();
    let token = dev.issue_with_roles(&user, &roles, auth::unix_now());
    tracing::info!(%user, ?roles, "dev token issued");
    Ok(Json(serde_json::to_value(token).expect("serialises")))
}

/// The hub name of an adaptor request (`?hub=`, default `switchboard`).
fn hub_name(hub: &Hub, query: &HashMap<String, String>) -> Result<String, ApiError> {
    let name = query
        .get("hub")
        .cloned()
        .unwrap_or_else(|| hub.config().hub_name.clone());
    if is_valid_hub_name(&name) {
        Ok(name)
    } else {
        Err(bad_request(
            "hub must start with a letter and contain only letters, digits and _",
        ))
    }
}

/// `GET|POST /api/negotiate[?hub=H]` with `Authorization: Bearer <user token>` →
/// `{"url": "http://HOST/client/?hub=H", "accessToken": "<hub access token>"}`.
///
/// The hub access token is an HS256 JWT signed with the AccessKey, `aud` = `url`, `nameid` =
/// the user id of the validated user token, one hour. HOST is the request's `Host` header.
/// 401 `{"error"}` for a missing, invalid or expired user token.
pub async fn negotiate(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Authorized(user): Authorized<User>,
) -> Result<Json<Value>, ApiError> {
    let hub_name = hub_name(&hub, &query)?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
                })
        })
        .ok_or_else(|| bad_request("Missing or invalid Host header"))?;
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let url = format!("{scheme}://{host}/client/?hub={hub_name}");
    let access_token = hub.access_key.issue_client_token_with_roles(
        &url,
        Some(&user.user_id),
        &user.roles,
        auth::unix_now(),
    );
    tracing::info!(user = %user.user_id, hub = %hub_name, "negotiate: redirecting to the client endpoint");
    Ok(Json(json!({ "url": url, "accessToken": access_token })))
}

/// `POST /api/userclient` `{"userId", "connectionId", "connectionStatus"}` → 200.
///
/// Takes a user bearer token (then `userId` must be that user: 403 otherwise) or the server
/// credential (`x-functions-key` / `?code=`). 401 without either; 400 `userId is required`
/// (plain text) without `userId`.
pub async fn user_client(
    State(hub): State<Arc<Hub>>,
    Authorized(signed_in): Authorized<UserOrServerKey>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let object = json_object(&body).map_err(|e| ApiError::Text(StatusCode::BAD_REQUEST, e))?;
    let user_id = string_field(&object, "userId")
        .ok_or_else(|| ApiError::Text(StatusCode::BAD_REQUEST, "userId is required".into()))?;
    if signed_in.as_ref().is_some_and(|u| u != &user_id) {
        return Err(ApiError::Text(
            StatusCode::FORBIDDEN,
            "userId does not match the signed-in user".into(),
        ));
    }
    hub.record_user_client(UserClient {
        user_id,
        connection_id: string_field(&object, "connectionId"),
        connection_status: string_field(&object, "connectionStatus"),
    });
    Ok(StatusCode::OK)
}

/// `POST /api/SendMessageToUser[?hub=H]` `{"userId": "alice", "message": "<JSON text>"}`.
///
/// Server credential required (`x-functions-key: KEY` or `?code=KEY`; 401 `{"error"}`).
/// Sends `ReceiveNotification(message)` to the user's live connections; an incoming-call
/// message registers a ringing call (see [`Hub::send_message_to_user`]).
/// - 200 `{"callId": "..."}` (a call) or `{}` (any other message) when delivered;
/// - 409 `{"reason","state","since","userId","error"}` for a call the agent's state does not
///   take (`offline` when the user has no connection; [`crate::agents::AgentStore::refusal`]);
/// - 400 `User Not Connected Currently` (plain text, exactly) when the user has no connection
///   and the message is not a call, or every state is routable (`--routable-state '*'`);
/// - 400 plain text for a body that is not JSON or lacks `userId` / `message`.
pub async fn send_message_to_user(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    _: Authorized<ServerKey>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let text_error = |t: String| ApiError::Text(StatusCode::BAD_REQUEST, t);
    let object = json_object(&body).map_err(text_error)?;
    let user_id =
        string_field(&object, "userId").ok_or_else(|| text_error("userId is required".into()))?;
    let message = match super::field(&object, "message") {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Object(_)) => v.to_string(),
        _ => return Err(text_error("message is required (a JSON string)".into())),
    };
    let hub_name = hub_name(&hub, &query)?;
    if !hub.calls_have_room() && switchboard_core::IncomingCall::from_seed_message(&message).is_ok()
    {
        crate::metrics::quota_refusal("call_registry_full");
        return Err(ApiError::Json(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::calls::REGISTRY_FULL.into(),
        ));
    }
    let elsewhere = hub
        .user_node_elsewhere(&hub_name, &user_id)
        .await
        .map_err(|_| ApiError::RedisDown)?;
    match hub.send_message_to_user_in_cluster(&hub_name, &user_id, &message, elsewhere) {
        Delivery::NotConnected => {
            tracing::info!(user = %user_id, "SendMessageToUser: user not connected");
            Err(ApiError::Text(
                StatusCode::BAD_REQUEST,
                USER_NOT_CONNECTED.into(),
            ))
        }
        Delivery::NotDelivered => Err(ApiError::Json(
            StatusCode::SERVICE_UNAVAILABLE,
            NOT_DELIVERED.into(),
        )),
        Delivery::Refused(r) => {
            tracing::info!(user = %user_id, reason = r.reason.as_str(), "SendMessageToUser: refused by agent state");
            Err(ApiError::refused(&r))
        }
        Delivery::Delivered { call_id: Some(id) } => Ok(Json(json!({ "callId": id }))),
        Delivery::Delivered { call_id: None } => Ok(Json(json!({}))),
    }
}

/// The 503 error of a send that no connection of the user could take (their outboxes were
/// full; those connections are closed and will reconnect).
pub const NOT_DELIVERED: &str =
    "Not delivered: the user's connections could not take the message (they are being reconnected)";

/// `GET /api/calls/{callId}` (server credential) → 200 the call object
/// ([`crate::registry::Call`]), 404 `{"error": "Unknown call 'X'"}`.
pub async fn get_call(
    State(hub): State<Arc<Hub>>,
    Path(call_id): Path<String>,
    _: Authorized<ServerKey>,
) -> Result<Json<Value>, ApiError> {
    if let Some(call) = hub.call(&call_id) {
        return Ok(Json(call.to_json()));
    }
    // With --redis: the copy of a call registered on another node.
    if let Some(cluster) = hub.cluster()
        && let Some(call) = cluster
            .read_call(&call_id)
            .await
            .map_err(|_| ApiError::RedisDown)?
    {
        return Ok(Json(call));
    }
    Err(ApiError::Json(
        StatusCode::NOT_FOUND,
        format!("Unknown call '{call_id}'"),
    ))
}
