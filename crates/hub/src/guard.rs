//! Dev mode safe by default, and the `Origin` allow-list (issue 18, "Dev mode exposure").
//!
//! - [`dev_hooks`]: the telephony simulator (`/simulator…`) and the dev hooks
//!   (`/dev/connections/…/drop`, `/dev/users/…/drop`) answer only in dev mode (their handlers
//!   say 404 otherwise) and only to a direct loopback client or one that presents the access key
//!   (`x-functions-key`, `?code=`, `Authorization: Bearer KEY`); anyone else gets `403`. A
//!   foreign `Origin` gets `403` and a body that is not `application/json` gets `415` even from
//!   loopback ([`cross_site_refusal`]: no page in the agent's browser may ring or drop agents).
//!   `/dev/token` stays open in dev mode: it is how browsers sign in.
//! - [`OriginPolicy`]: browser routes (negotiate, the client endpoint, `/dev/token`, SIP
//!   credentials) refuse a request whose `Origin` is not allowed with `403`, and CORS answers only
//!   allowed origins. Allowed: no `Origin` (not a browser, or a same-origin GET), the hub's own
//!   origin (`Origin` = the scheme and `Host` of the request, `X-Forwarded-Proto` honoured),
//!   `--allowed-origin` and `--frame-ancestor` values (`https://*.example.com` matches
//!   subdomains). In dev mode on a loopback address every origin is allowed, as before (the
//!   test suites serve host pages from other ports).
//! - [`looks_like_idp_id`]: with an identity provider configured and `--dev-auth on`, a dev user
//!   name shaped like an Entra object id (a GUID) or a pairwise `sub` is refused, so a dev token
//!   can never act as a real user.
//! - [`negotiate_guard`]: the negotiate quotas per address and per user ([`crate::quota`]).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::hub::Hub;
use crate::quota::{ClientAddr, Refusal};

/// Which browser origins may call the hub (see the module docs).
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Allowed origins besides the hub's own (`--allowed-origin`, `--frame-ancestor`).
    pub allowed: Vec<String>,
    /// Every origin is allowed (dev mode on loopback).
    pub permissive: bool,
}

impl OriginPolicy {
    /// The policy of this hub.
    pub fn of(hub: &Hub) -> Self {
        let config = hub.config();
        let mut allowed = config.allowed_origins.clone();
        allowed.extend(config.frame_ancestors.iter().cloned());
        Self {
            allowed,
            permissive: hub.dev_mode() && config.listen_addr.is_some_and(|a| a.ip().is_loopback()),
        }
    }

    /// Whether a request with these headers may come from `origin`.
    pub fn allows(&self, origin: &str, headers: &HeaderMap) -> bool {
        if self.permissive || same_origin(origin, headers) {
            return true;
        }
        self.allowed.iter().any(|a| origin_matches(a, origin))
    }
}

/// `origin` is `scheme://Host` of the request itself.
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .map(|p| {
            p.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let schemes: &[&str] = match forwarded.as_deref() {
        Some("https") => &["https"],
        Some("http") => &["http"],
        _ => &["http", "https"],
    };
    schemes
        .iter()
        .any(|s| origin.eq_ignore_ascii_case(&format!("{s}://{host}")))
}

/// `pattern` (`https://a.example.com`, `https://*.example.com`) matches `origin`.
pub fn origin_matches(pattern: &str, origin: &str) -> bool {
    let pattern = pattern.trim_end_matches('/').to_ascii_lowercase();
    let origin = origin.to_ascii_lowercase();
    if let Some((scheme, host)) = pattern.split_once("://*.") {
        return origin
            .strip_prefix(&format!("{scheme}://"))
            .is_some_and(|o| o.ends_with(&format!(".{host}")) && !o.contains('/'));
    }
    pattern == origin
}

/// Middleware of the browser routes: `403` for a disallowed `Origin`.
pub async fn check_origin(
    State(policy): State<Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !policy.allows(origin, request.headers()) {
            tracing::warn!(%origin, path = %request.uri().path(), "request from a disallowed origin refused");
            return (
                StatusCode::FORBIDDEN,
                axum::Json(json!({
                    "error": format!("Origin {origin} is not allowed (hub option --allowed-origin)")
                })),
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// The CORS origin predicate of the same policy.
pub fn cors_origin(policy: Arc<OriginPolicy>) -> tower_http::cors::AllowOrigin {
    tower_http::cors::AllowOrigin::predicate(
        move |origin: &HeaderValue, parts: &axum::http::request::Parts| {
            origin
                .to_str()
                .is_ok_and(|o| policy.allows(o, &parts.headers))
        },
    )
}

/// Middleware: the simulator and the dev hooks only for loopback clients or the access key.
pub async fn dev_hooks(State(hub): State<Arc<Hub>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let guarded = path == "/simulator"
        || path.starts_with("/simulator/")
        || (path.starts_with("/dev/") && path != "/dev/token");
    if guarded {
        let addr = request.extensions().get::<ConnectInfo<ClientAddr>>();
        let code = axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(
            request.uri(),
        )
        .ok()
        .and_then(|q| q.0.get("code").cloned());
        if let Some(refusal) = cross_site_refusal(request.headers()) {
            tracing::warn!(path = %request.uri().path(), "simulator or dev hook refused: {refusal:?}");
            return refusal.into_response();
        }
        if !crate::observe::is_direct_loopback(addr, request.headers())
            && !crate::observe::has_access_key(&hub, request.headers(), code.as_deref())
        {
            return (
                StatusCode::FORBIDDEN,
                axum::Json(json!({
                    "error": "The simulator and dev hooks answer loopback clients or the access key only"
                })),
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Why a request to the simulator or a dev hook is refused as possibly cross-site, if it is.
///
/// "From loopback" is not enough on its own: any page in the agent's browser can send a
/// simple request (no CORS preflight) to `http://127.0.0.1:PORT/simulator/ring` or
/// `/dev/users/alice/drop`. So these routes take an `Origin` only when it is the hub's own
/// (the simulator page; tools send none), and a body only as `application/json` (which a
/// foreign page cannot send without a preflight that CORS refuses): `403` and `415` otherwise.
#[derive(Debug)]
pub enum CrossSite {
    /// `Origin` is present and not the hub's own.
    ForeignOrigin(String),
    /// `Content-Type` is present and not `application/json`.
    NotJson(String),
}

impl IntoResponse for CrossSite {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            CrossSite::ForeignOrigin(origin) => (
                StatusCode::FORBIDDEN,
                format!(
                    "The simulator and dev hooks answer the hub's own pages only, not {origin}"
                ),
            ),
            CrossSite::NotJson(kind) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("The simulator and dev hooks take application/json, not {kind}"),
            ),
        };
        (status, axum::Json(json!({ "error": error }))).into_response()
    }
}

/// See [`CrossSite`].
pub fn cross_site_refusal(headers: &HeaderMap) -> Option<CrossSite> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("(not text)");
        if !same_origin(origin, headers) {
            return Some(CrossSite::ForeignOrigin(origin.chars().take(100).collect()));
        }
    }
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or("(not text)");
        let essence = kind.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Some(CrossSite::NotJson(kind.chars().take(100).collect()));
        }
    }
    None
}

/// Middleware of the browser routes: negotiate quotas per address (`/api/negotiate`,
/// `/client/negotiate`) and per user plus live connections per user (`/client/negotiate`,
/// whose hub access token is checked here cheaply: HS256). Refusals are `429` +
/// `Retry-After`; everything else goes on to the route, which does its own authentication.
pub async fn negotiate_guard(
    State(hub): State<Arc<Hub>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !path.eq_ignore_ascii_case("/api/negotiate") && path != "/client/negotiate" {
        return next.run(request).await;
    }
    if let Some(ConnectInfo(ClientAddr(addr))) =
        request.extensions().get::<ConnectInfo<ClientAddr>>()
        && let Err(refusal) = hub.quotas.negotiate_from_address(addr.ip())
    {
        return refusal.into_response();
    }
    if path == "/client/negotiate" {
        let query = request.uri().query().unwrap_or("");
        let hub_name = crate::auth::query_param(query, "hub").unwrap_or_default();
        let token = crate::auth::bearer_token(request.headers())
            .map(str::to_owned)
            .or_else(|| crate::auth::query_param(query, "access_token"));
        if let Some(token) = token
            && let Ok(Some(user)) = hub.access_key.validate_client_token(&token, &hub_name)
        {
            if let Err(refusal) = hub.quotas.negotiate_of_user(&user) {
                return refusal.into_response();
            }
            let max = hub.quotas.config.connections_per_user;
            if hub.user_connection_count(&user) >= max {
                return Refusal::new(
                    "connections_per_user",
                    format!("Too many connections for this user (at most {max})"),
                    Duration::from_secs(5),
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}

/// A user id an identity provider could issue: a GUID (Entra `oid`, `tid`) or a 40+ character
/// base64url string (Entra's pairwise `sub`).
pub fn looks_like_idp_id(name: &str) -> bool {
    let guid = name.len() == 36
        && name.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    let pairwise = name.len() >= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    guid || pairwise
}

/// Middleware: with `--redis` and Redis unreachable, answers `503 {"error": "Redis is
/// unreachable..."}` instead of running the route (REST sends, negotiate, the client endpoint;
/// [`crate::cluster`]).
pub async fn require_redis(State(hub): State<Arc<Hub>>, request: Request, next: Next) -> Response {
    if hub.cluster().is_some_and(|c| !c.is_up()) {
        return crate::cluster::redis_down_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idp_shaped_names() {
        assert!(looks_like_idp_id("9d3c4b5a-6e7f-4a8b-9c0d-1e2f3a4b5c6d"));
        assert!(looks_like_idp_id(
            "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"
        ));
        assert!(!looks_like_idp_id("alice"));
        assert!(!looks_like_idp_id("resync-ring-m1abc-xyz"));
    }

    #[test]
    fn origin_patterns() {
        assert!(origin_matches(
            "https://*.crm.dynamics.com",
            "https://contoso.crm.dynamics.com"
        ));
        assert!(!origin_matches(
            "https://*.crm.dynamics.com",
            "https://crm.dynamics.com.evil.io"
        ));
        assert!(!origin_matches(
            "https://*.crm.dynamics.com",
            "http://contoso.crm.dynamics.com"
        ));
        assert!(origin_matches("https://a.example/", "https://A.example"));
    }
}
