//! Dev mode safe by default (issue 18): the Origin allow-list of the browser routes (CORS and
//! the WebSocket endpoint), the simulator and dev hooks for loopback or the access key only, dev
//! user names that cannot pass for identity-provider ids, and no dev mode on a network address
//! unless `--dev-auth on`.

mod common;

use std::process::Command;

use serde_json::json;
use switchboard_hub::oidc::OidcConfig;

use common::{KEY, http, sent, start_hub, start_hub_with};

fn oidc() -> OidcConfig {
    // Never fetched by these tests: they are refused (or not) before any token check.
    OidcConfig::new("https://127.0.0.1:9/tenant", vec!["api://x".into()])
}

#[tokio::test]
async fn without_dev_mode_only_allowed_origins_reach_the_browser_routes() {
    let hub = start_hub_with(|c| {
        c.oidc = Some(oidc());
        c.allowed_origins = vec!["https://widget.contoso.com".into()];
        c.frame_ancestors = vec!["https://*.crm.dynamics.com".into()];
    })
    .await;
    let base = hub.base_url();
    let negotiate = |origin: &str| {
        http()
            .post(format!("{base}/api/negotiate"))
            .header("origin", origin)
            .send()
    };
    let r = negotiate("https://evil.example").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("--allowed-origin"));
    // Its own origin, an allowed one and a frame ancestor get to the token check (401).
    for origin in [
        base.as_str(),
        "https://widget.contoso.com",
        "https://contoso.crm.dynamics.com",
    ] {
        assert_eq!(negotiate(origin).await.unwrap().status(), 401, "{origin}");
    }
    // No Origin (not a browser): as before.
    let r = sent(http().post(format!("{base}/api/negotiate"))).await;
    assert_eq!(r.status(), 401);
    // The WebSocket endpoint checks Origin too (before the upgrade).
    let r = sent(
        http()
            .get(format!("{base}/client/?hub=switchboard&id=x"))
            .header("origin", "https://evil.example")
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    )
    .await;
    assert_eq!(r.status(), 403);
    // CORS preflight: an allowed origin is echoed, another is not.
    let preflight = |origin: &str| {
        http()
            .request(reqwest::Method::OPTIONS, format!("{base}/api/negotiate"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let r = preflight("https://widget.contoso.com").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://widget.contoso.com"
    );
    let r = preflight("https://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn dev_mode_on_loopback_keeps_every_origin() {
    let hub = start_hub().await;
    let r = sent(
        http()
            .post(format!("{}/dev/token", hub.base_url()))
            .header("origin", "http://localhost:5999")
            .json(&json!({"user": "alice"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:5999"
    );
}

#[tokio::test]
async fn the_simulator_and_dev_hooks_answer_loopback_or_the_access_key() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let proxied = "203.0.113.7";
    for (method, path) in [
        (reqwest::Method::GET, "/simulator/calls"),
        (reqwest::Method::GET, "/simulator"),
        (reqwest::Method::POST, "/dev/users/alice/drop"),
    ] {
        let url = format!("{base}{path}");
        let r = sent(
            http()
                .request(method.clone(), &url)
                .header("x-forwarded-for", proxied),
        )
        .await;
        assert_eq!(r.status(), 403, "{path}");
        assert!(r.text().await.unwrap().contains("loopback"));
        let r = sent(
            http()
                .request(method.clone(), &url)
                .header("x-forwarded-for", proxied)
                .header("x-functions-key", KEY),
        )
        .await;
        assert_eq!(r.status(), 200, "{path} with the key");
        let r = sent(http().request(method, &url)).await;
        assert_eq!(r.status(), 200, "{path} from loopback");
    }
    // Dev sign-in itself stays open (browsers use it).
    let r = sent(
        http()
            .post(format!("{base}/dev/token"))
            .header("x-forwarded-for", proxied)
            .json(&json!({"user": "alice"})),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn with_oidc_a_dev_name_cannot_look_like_an_identity_provider_id() {
    let hub = start_hub_with(|c| {
        c.oidc = Some(oidc());
        c.dev_auth_with_oidc = true;
    })
    .await;
    let token = |user: &'static str| {
        http()
            .post(format!("{}/dev/token", hub.base_url()))
            .json(&json!({ "user": user }))
            .send()
    };
    let r = token("9d3c4b5a-6e7f-4a8b-9c0d-1e2f3a4b5c6d").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("identity provider"));
    assert_eq!(token("alice").await.unwrap().status(), 200);
    // Without OIDC there is nobody to collide with: GUID names stay allowed.
    let dev = start_hub().await;
    let r = sent(
        http()
            .post(format!("{}/dev/token", dev.base_url()))
            .json(&json!({"user": "9d3c4b5a-6e7f-4a8b-9c0d-1e2f3a4b5c6d"})),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[test]
fn dev_mode_on_a_network_address_needs_dev_auth_on() {
    let bin = env!("CARGO_BIN_EXE_switchboard-hub");
    let out = Command::new(bin)
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");

    // (The hub refuses before binding; with --dev-auth on it would bind the network address,
    // which these tests never do: loopback only.)
}

/// A page in the agent's own browser is on loopback too: it must not ring agents or drop their
/// connections with a simple (preflight-free) request. The simulator page itself (same origin)
/// and tools (no Origin, JSON) still work.
#[tokio::test]
async fn no_page_of_another_site_may_use_the_simulator_or_dev_hooks() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let ring = json!({"agent": "alice", "PhoneNumber": "+14255550123"}).to_string();
    // A foreign page's simple request: text/plain, its Origin.
    let r = http()
        .post(format!("{base}/simulator/ring"))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain;charset=UTF-8")
        .body(ring.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("https://evil.example"));
    // text/plain without an Origin (a form post, a sandboxed frame's "null" origin aside).
    let r = http()
        .post(format!("{base}/simulator/ring"))
        .header("content-type", "text/plain")
        .body(ring.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.text().await.unwrap().contains("application/json"));
    // Dropping an agent's connections from another site: refused.
    let r = http()
        .post(format!("{base}/dev/users/alice/drop"))
        .header("origin", "null")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The simulator page's own request (same origin, JSON) and a tool's (no Origin) pass the guard
    // (alice is not connected: the ring itself answers what it always did, never 403/415).
    for origin in [Some(base.as_str()), None] {
        let mut request = http()
            .post(format!("{base}/simulator/ring"))
            .header("content-type", "application/json")
            .body(ring.clone());
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        let status = request.send().await.unwrap().status();
        assert!(status != 403 && status != 415, "{origin:?}: {status}");
    }
    let r = http()
        .post(format!("{base}/dev/users/alice/drop"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
