//! What every REST route shares: the error answers ([`ApiError`]) and JSON body helpers.
//! A leaf: the routes ([`crate::routes`]), the Graph stand-in ([`crate::graph`]), the REST
//! authorization ([`crate::access`]) and the transports use it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::auth::AuthError;

/// A failed request.
#[derive(Debug)]
pub enum ApiError {
    /// 401 with `{"error"}`.
    Auth(AuthError),
    /// This status with a plain-text body.
    Text(StatusCode, String),
    /// This status with `{"error": text}`.
    Json(StatusCode, String),
    /// This status with this JSON body.
    Body(StatusCode, Value),
    /// 503 `{"error"}` with `Retry-After`: `--redis` is set and Redis is unreachable
    /// ([`crate::cluster`]).
    RedisDown,
}

impl ApiError {
    /// 409 with the refusal's body `{"reason","state","since","userId","error"}`: a ring for
    /// an agent whose state takes no calls ([`crate::agents::Refusal`]).
    pub fn refused(refusal: &crate::agents::Refusal) -> Self {
        ApiError::Body(StatusCode::CONFLICT, refusal.to_json())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Auth(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Auth(e) => e.into_response(),
            ApiError::Text(status, text) => (
                status,
                [("content-type", "text/plain; charset=utf-8")],
                text,
            )
                .into_response(),
            ApiError::Json(status, text) => {
                (status, axum::Json(json!({ "error": text }))).into_response()
            }
            ApiError::Body(status, body) => (status, axum::Json(body)).into_response(),
            ApiError::RedisDown => crate::cluster::redis_down_response(),
        }
    }
}

/// 400 with `{"error": text}`.
pub fn bad_request(text: impl Into<String>) -> ApiError {
    ApiError::Json(StatusCode::BAD_REQUEST, text.into())
}

/// Parses a JSON object body, or says what is wrong with it.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("Request body is empty; expected a JSON object".into());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("Request body must be a JSON object".into()),
        Err(e) => Err(format!("Request body is not valid JSON: {e}")),
    }
}

/// A field by case-insensitive name (`userId`, `UserId`), as ASP.NET model binding reads it.
pub fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// A non-empty string field.
pub fn string_field(object: &Map<String, Value>, name: &str) -> Option<String> {
    match field(object, name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}
