//! `GET /supervisor`: the supervisor view (issue 15; `docs/agent-state.md`). A plain HTML page
//! with one inline script and one inline style, no external resources; it signs in with a dev
//! token (`?user=sue&role=Supervisor`), connects to the hub over WebSockets with the JSON hub
//! protocol, lists `getTeamAgentStates` and refreshes on every `AgentStateChanged`. Data is
//! shown with `textContent` only. Anyone may load the page; the data needs role
//! `Supervisor` (others see "Supervisors only").
//!
//! Served with its own `Content-Security-Policy`: `default-src 'none'`, the inline script and
//! style allowed by their `sha256-` hashes ([`crate::csp::inline_script_hashes`]), `connect-src
//! 'self'` (same-origin `ws:`/`wss:` included), `frame-ancestors 'self'`.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::hub::Hub;

/// The page.
pub const PAGE: &str = include_str!("supervisor.html");

/// The page's `Content-Security-Policy` (see the module docs).
pub static POLICY: LazyLock<String> = LazyLock::new(|| {
    let scripts = crate::csp::inline_script_hashes(PAGE).join(" ");
    let styles = style_hashes(PAGE).join(" ");
    format!(
        "default-src 'none'; script-src {scripts}; style-src {styles}; connect-src 'self'; \
         img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    )
});

/// `'sha256-…'` of every inline `<style>` block of `html`.
fn style_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<style>") {
        rest = &rest[start + "<style>".len()..];
        let Some(end) = rest.find("</style>") else {
            break;
        };
        let digest = Sha256::digest(&rest.as_bytes()[..end]);
        hashes.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
        rest = &rest[end..];
    }
    hashes
}

/// The route.
pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .without_v07_checks()
        .route("/supervisor", get(page))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, POLICY.as_str()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Html(PAGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_exactly_the_inline_script_and_style() {
        assert_eq!(crate::csp::inline_script_hashes(PAGE).len(), 1);
        assert_eq!(style_hashes(PAGE).len(), 1);
        assert!(!POLICY.contains("unsafe"));
        assert!(!PAGE.contains("innerHTML"));
    }
}
