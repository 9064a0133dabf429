//! The telephony simulator (dev mode): a page that rings agents and hangs up as the caller.
//!
//! - `GET /simulator`: the page (inline CSS and script, no external resources).
//! - `POST /simulator/ring` `{"agent","phoneNumber","callerName"?,"queue"?,"comments"?}` → the
//!   same code path as `SendMessageToUser`: 200 `{"callId"}`, 400 `User Not Connected
//!   Currently` (plain text), 400 `{"error"}` for a number that is not a phone number.
//! - `GET /simulator/calls` → up to 200 calls, newest first (call objects).
//! - `POST /simulator/calls/{callId}/abandon` → 200 the call (ended, `CallEnded(callId,
//!   "abandoned")` sent to the agent), 404 unknown, 409 already over.
//! - `POST /simulator/calls/{callId}/far-end` `{"action": "answer" | "hangup" | "busy"}` → the
//!   far end of an outbound call answers, hangs up or is busy ([`crate::calls`]); `hangup` on
//!   an inbound call is the caller hanging up (as `abandon`). 200 the call, 400 unknown action,
//!   404 unknown call, 409 not possible in the call's state.
//!
//! - `POST /simulator/presence` `{"user","availability","activity","preferred"?}` → 200 the
//!   user's new Teams presence; subscribers get `PresenceChanged` ([`crate::graph`]).
//!
//! No key is needed: these routes exist only in dev mode (404 otherwise).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use serde_json::{Value, json};
use switchboard_core::IncomingCall;

use super::adaptor::USER_NOT_CONNECTED;
use super::{ApiError, bad_request, json_object, string_field};
use crate::access::{Authorized, Simulator};
use crate::calls::FarEndAction;
use crate::hub::{Delivery, Hub};
use crate::registry::CallError;

/// Calls listed by `GET /simulator/calls`.
pub const LISTED_CALLS: usize = 200;

/// The simulator routes.
pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .without_v07_checks()
        .route("/simulator", get(page))
        .route("/simulator/", get(page))
        .route("/simulator/ring", post(ring))
        .route("/simulator/calls", get(calls))
        .route("/simulator/calls/{call_id}/abandon", post(abandon))
        .route("/simulator/calls/{call_id}/far-end", post(far_end))
        .route("/simulator/presence", post(presence))
}

/// `POST /simulator/presence` `{"user","availability","activity","preferred"?: bool}`: changes
/// the user's Teams presence as if from Teams ([`crate::graph::simulate`]) → 200 the new
/// presence `{"id","availability","activity"}`; `PresenceChanged` goes to subscribers.
/// 400 `{"error"}` for an invalid user or value.
pub async fn presence(
    State(hub): State<Arc<Hub>>,
    _: Authorized<Simulator>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let object = json_object(&body).map_err(bad_request)?;
    let user = string_field(&object, "user")
        .map(|u| u.trim().to_owned())
        .filter(|u| crate::auth::is_valid_user_name(u))
        .ok_or_else(|| bad_request("user is required (a user id such as alice)"))?;
    let value = |k: &str| string_field(&object, k).unwrap_or_default();
    let availability = switchboard_core::Availability::from_wire(&value("availability"));
    let activity = switchboard_core::Activity::from_wire(&value("activity"));
    let (Some(availability), Some(activity)) = (availability, activity) else {
        return Err(bad_request(
            "availability and activity must be Graph presence values (Busy, InACall, ...)",
        ));
    };
    let presence = switchboard_core::Presence::new(availability, activity);
    let preferred = matches!(super::field(&object, "preferred"), Some(Value::Bool(true)));
    Ok(Json(crate::graph::simulate(
        &hub, &user, presence, preferred,
    )))
}

async fn page(_: Authorized<Simulator>) -> Result<Html<&'static str>, ApiError> {
    Ok(Html(include_str!("simulator.html")))
}

/// `POST /simulator/ring` (see the module docs).
pub async fn ring(
    State(hub): State<Arc<Hub>>,
    _: Authorized<Simulator>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let object = json_object(&body).map_err(bad_request)?;
    let agent = string_field(&object, "agent").ok_or_else(|| bad_request("agent is required"))?;
    let mut call = object.clone();
    call.remove("agent");
    let incoming =
        IncomingCall::from_value(&Value::Object(call)).map_err(|e| bad_request(e.to_string()))?;
    let message = incoming.to_seed_message();
    let hub_name = hub.config().hub_name.clone();
    let elsewhere = hub
        .user_node_elsewhere(&hub_name, agent.trim())
        .await
        .map_err(|_| ApiError::RedisDown)?;
    match hub.send_message_to_user_in_cluster(&hub_name, agent.trim(), &message, elsewhere) {
        Delivery::Refused(r) => Err(ApiError::refused(&r)),
        Delivery::NotConnected => Err(ApiError::Text(
            StatusCode::BAD_REQUEST,
            USER_NOT_CONNECTED.into(),
        )),
        Delivery::NotDelivered => Err(ApiError::Json(
            StatusCode::SERVICE_UNAVAILABLE,
            super::adaptor::NOT_DELIVERED.into(),
        )),
        Delivery::Delivered { call_id } => Ok(Json(json!({ "callId": call_id }))),
    }
}

async fn calls(
    State(hub): State<Arc<Hub>>,
    _: Authorized<Simulator>,
) -> Result<Json<Value>, ApiError> {
    let calls: Vec<Value> = hub
        .newest_calls(LISTED_CALLS)
        .iter()
        .map(|c| c.to_json())
        .collect();
    Ok(Json(Value::Array(calls)))
}

async fn abandon(
    State(hub): State<Arc<Hub>>,
    Path(call_id): Path<String>,
    _: Authorized<Simulator>,
) -> Result<Json<Value>, ApiError> {
    if hub.call(&call_id).is_none()
        && let Some(cluster) = hub.cluster()
    {
        // --redis: the node that owns the call carries it out (one final state).
        let answer = cluster
            .forward(|from, request| crate::cluster::BusOp::AbandonCall {
                call_id: call_id.clone(),
                from,
                request,
            })
            .await
            .map_err(|_| ApiError::RedisDown)?;
        return match answer {
            Some((200, call)) => Ok(Json(call)),
            Some((status, body)) => Err(ApiError::Body(
                StatusCode::from_u16(status).unwrap_or(StatusCode::CONFLICT),
                body,
            )),
            None => Err(ApiError::Json(
                StatusCode::NOT_FOUND,
                format!("Unknown call '{call_id}'"),
            )),
        };
    }
    match hub.abandon_call(&call_id) {
        Ok(call) => Ok(Json(call.to_json())),
        Err(e @ CallError::UnknownCall(_)) => {
            Err(ApiError::Json(StatusCode::NOT_FOUND, e.to_string()))
        }
        Err(e) => Err(ApiError::Json(StatusCode::CONFLICT, e.to_string())),
    }
}

async fn far_end(
    State(hub): State<Arc<Hub>>,
    Path(call_id): Path<String>,
    _: Authorized<Simulator>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let object = json_object(&body).map_err(bad_request)?;
    let action = string_field(&object, "action")
        .and_then(|a| FarEndAction::from_wire(a.trim()))
        .ok_or_else(|| bad_request("action must be \"answer\", \"hangup\" or \"busy\""))?;
    match hub.far_end(&call_id, action) {
        Ok(call) => Ok(Json(call.to_json())),
        Err(e @ CallError::UnknownCall(_)) => {
            Err(ApiError::Json(StatusCode::NOT_FOUND, e.to_string()))
        }
        Err(e) => Err(ApiError::Json(StatusCode::CONFLICT, e.to_string())),
    }
}
