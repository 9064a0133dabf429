//! Who may call the Graph stand-in, and its error shape: [`GraphCaller`] (dev mode, a dev user
//! token or an app token from the dev token endpoint, the per-user rate limit) and
//! [`GraphError`] (`{"error": {"code", "message"}}`, Graph's JSON error shape). Shared by the
//! presence routes ([`crate::graph`]) and the subscription routes
//! ([`crate::graph_subscriptions`]).

use axum::Json;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::access::Scope;
use crate::auth::{bearer_token, unix_now_ms};
use crate::hub::Hub;
use crate::presence::{MAX_USERS, UserPresence};

/// A Graph-shaped error: `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

pub(crate) fn error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> GraphError {
    GraphError {
        status,
        code,
        message: message.into(),
        retry_after: None,
    }
}

impl GraphError {
    /// A Graph-shaped error with this status, `code` and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        error(status, code, message)
    }

    /// 429 `TooManyRequests` with `Retry-After: seconds`.
    pub fn throttled(seconds: u64, message: impl Into<String>) -> Self {
        GraphError {
            retry_after: Some(seconds),
            ..error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message)
        }
    }
}

pub(crate) fn bad(message: impl Into<String>) -> GraphError {
    error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

/// Who may call the stand-in's routes ([`crate::access`]): dev mode (404 `ItemNotFound`
/// otherwise), a valid bearer token (401 `InvalidAuthenticationToken`), and the caller within
/// the rate limit (429 `TooManyRequests`). The principal is the caller's id.
#[derive(Debug)]
pub struct GraphCaller;

impl Scope for GraphCaller {
    type Principal = String;
    type Rejection = GraphError;

    async fn authorize(hub: &Hub, parts: &Parts) -> Result<String, GraphError> {
        caller(hub, &parts.headers).await
    }
}

/// Dev mode, a valid bearer token, and the caller within the rate limit: the caller's id.
async fn caller(hub: &Hub, headers: &HeaderMap) -> Result<String, GraphError> {
    if !hub.dev_mode() {
        return Err(error(
            StatusCode::NOT_FOUND,
            "ItemNotFound",
            "The Graph presence stand-in runs in dev mode only",
        ));
    }
    let token = bearer_token(headers).ok_or_else(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        )
    })?;
    // An app token from the dev token endpoint (client-credentials grant): the app's id.
    {
        let now = unix_now_ms();
        let inner = hub.graph.lock();
        if let Some((client, expires)) = inner.app_tokens.get(token) {
            if *expires <= now {
                return Err(error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "Lifetime validation failed, the token is expired.",
                ));
            }
            return Ok(format!("app:{client}"));
        }
    }
    let user = hub.users.authenticate(token).await.map_err(|e| {
        error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            e.to_string(),
        )
    })?;
    let config = &hub.graph.config;
    let now = unix_now_ms();
    let window = config.rate_window.as_millis() as u64;
    let mut inner = hub.graph.lock();
    if inner.rate.len() >= MAX_USERS {
        inner.rate.retain(|_, (start, _)| *start + window > now);
    }
    let (start, count) = inner.rate.entry(user.user_id.clone()).or_insert((now, 0));
    if now >= *start + window {
        (*start, *count) = (now, 0);
    }
    *count += 1;
    if *count > config.rate_limit {
        let wait = (*start + window - now).div_ceil(1000).max(1);
        return Err(GraphError {
            retry_after: Some(wait),
            ..error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!(
                    "More than {} requests in {} s; retry after {wait} s",
                    config.rate_limit,
                    config.rate_window.as_secs()
                ),
            )
        });
    }
    // The caller is a known user from now on (dev users come and go).
    if !inner.users.contains_key(&user.user_id) && inner.users.len() < MAX_USERS {
        inner
            .users
            .insert(user.user_id.clone(), UserPresence::default());
    }
    Ok(user.user_id)
}
