//! OIDC user tokens: the hub fetches discovery and JWKS from an in-process identity provider
//! (axum on 127.0.0.1:0, fixed RSA test keys from `tests/fixtures`) and validates RS256 access
//! tokens at `/api/negotiate`: good token, wrong audience, wrong issuer, expired, tampered,
//! unknown `kid` → JWKS refetch → rotated key accepted (rate-limited), IdP down → 503, and dev
//! sign-in off unless asked for.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard_hub::RunningHub;
use switchboard_hub::auth::unix_now;
use switchboard_hub::oidc::OidcConfig;

use common::{
    get_status, http, jwt_payload, negotiate_bearer as negotiate, sent, serve_idp, start_hub_with,
};

const AUDIENCE: &str = "api://switchboard-test";

fn key(n: u8) -> EncodingKey {
    let der: &[u8] = match n {
        1 => include_bytes!("fixtures/oidc-test-key-1.der"),
        _ => include_bytes!("fixtures/oidc-test-key-2.der"),
    };
    EncodingKey::from_rsa_der(der)
}

fn jwk(n: u8) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(&key(n), Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(format!("key-{n}"));
    jwk
}

/// The identity provider: its published keys can change (rotation); counts JWKS fetches.
struct Idp {
    issuer: String,
    keys: Mutex<Vec<u8>>,
    jwks_fetches: AtomicUsize,
}

async fn start_idp() -> Arc<Idp> {
    serve_idp(
        |base| Idp {
            issuer: format!("{base}/tenant"),
            keys: Mutex::new(vec![1]),
            jwks_fetches: AtomicUsize::new(0),
        },
        |idp| {
            json!({
                "issuer": idp.issuer,
                "jwks_uri": format!("{}/jwks", idp.issuer),
                "authorization_endpoint": format!("{}/auth", idp.issuer),
            })
        },
        Router::new().route(
            "/tenant/jwks",
            get(|State(idp): State<Arc<Idp>>| async move {
                idp.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                let keys: Vec<Jwk> = idp.keys.lock().unwrap().iter().map(|n| jwk(*n)).collect();
                // An extra key of an unsupported type must not break the set.
                let mut set = serde_json::to_value(JwkSet { keys }).unwrap();
                set["keys"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"kty": "weird", "kid": "x"}));
                axum::Json(set)
            }),
        ),
    )
    .await
}

async fn hub_for(idp: &Idp, dev: bool) -> RunningHub {
    let authority = idp.issuer.clone();
    start_hub_with(move |c| {
        let mut oidc = OidcConfig::new(authority, vec![AUDIENCE.into(), "other-aud".into()]);
        oidc.min_refresh_interval = Duration::from_secs(60);
        c.oidc = Some(oidc);
        c.dev_auth_with_oidc = dev;
    })
    .await
}

fn token(idp: &Idp, key_n: u8, claims: Value) -> String {
    let now = unix_now();
    let mut body = json!({
        "iss": idp.issuer, "aud": AUDIENCE, "sub": "pairwise-sub", "oid": "oid-alice",
        "iat": now, "nbf": now, "exp": now + 600,
    });
    for (k, v) in claims.as_object().unwrap() {
        body[k] = v.clone();
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(format!("key-{key_n}"));
    jsonwebtoken::encode(&header, &body, &key(key_n)).unwrap()
}

#[tokio::test]
async fn a_valid_token_negotiates_as_its_oid_and_bad_ones_get_401_with_the_reason() {
    let idp = start_idp().await;
    let hub = hub_for(&idp, false).await;

    let (status, body) = negotiate(&hub, &token(&idp, 1, json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let hub_token = body["accessToken"].as_str().unwrap();
    let claims = switchboard_core::jwt::read_claims(hub_token);
    assert!(claims.is_some());
    // The user is `oid` (the hub access token's nameid).
    let payload = jwt_payload(hub_token);
    assert_eq!(payload["nameid"], "oid-alice");
    // Without oid: sub. A second accepted audience works too.
    let (status, _) = negotiate(
        &hub,
        &token(&idp, 1, json!({"oid": null, "aud": "other-aud"})),
    )
    .await;
    assert_eq!(status, 200);

    let cases = [
        (
            json!({"aud": "api://someone-else"}),
            "Invalid token: audience does not match api://switchboard-test or other-aud",
        ),
        (
            json!({"aud": "https://graph.microsoft.com"}),
            "Invalid token: audience does not match api://switchboard-test or other-aud",
        ),
        (
            json!({"iss": "https://evil.example/tenant"}),
            "Invalid token: wrong issuer",
        ),
        (
            json!({"exp": unix_now() - 3600, "iat": unix_now() - 7200, "nbf": unix_now() - 7200}),
            "Invalid token: expired",
        ),
        (
            json!({"nbf": unix_now() + 3600}),
            "Invalid token: not valid yet",
        ),
        (
            json!({"oid": null, "sub": null}),
            "Invalid token: no user id (oid or sub claim)",
        ),
    ];
    for (claims, error) in cases {
        let (status, body) = negotiate(&hub, &token(&idp, 1, claims.clone())).await;
        assert_eq!(status, 401, "{claims}");
        assert_eq!(body["error"], error, "{claims}");
    }

    // Tampered payload: the signature no longer verifies.
    let good = token(&idp, 1, json!({}));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let forged = token(&idp, 1, json!({"oid": "oid-mallory"}));
    parts[1] = forged.split('.').nth(1).unwrap().to_owned();
    let (status, body) = negotiate(&hub, &parts.join(".")).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"],
        "Invalid token: the signature does not verify"
    );

    // Dev tokens are HS256: refused, and dev sign-in is off.
    let dev = switchboard_hub::auth::DevTokens::new(common::KEY).issue("alice", unix_now());
    let (status, body) = negotiate(&hub, &dev.access_token).await;
    assert_eq!(status, 401);
    assert!(body["error"].as_str().unwrap().contains("RS256"), "{body}");
    let r = sent(
        http()
            .post(format!("{}/dev/token", hub.base_url()))
            .json(&json!({"user": "alice"})),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert!(!hub.hub.dev_mode());
    // Nor are the simulators there: the telephony simulator, the CRM host pages, Graph's
    // stand-in.
    for path in [
        "/simulator",
        "/hosts/cif",
        "/hosts/cif1",
        "/hosts/opencti",
        "/hosts/postmessage",
        "/graph/v1.0/me/presence",
    ] {
        let status = get_status(&format!("{}{path}", hub.base_url())).await;
        assert_eq!(status, 404, "{path} with dev mode off");
    }
    // Keys were fetched once for all of this.
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_so_a_rotated_key_works_and_refetches_are_rate_limited() {
    let idp = start_idp().await;
    let hub = hub_for(&idp, false).await;
    assert_eq!(negotiate(&hub, &token(&idp, 1, json!({}))).await.0, 200);
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), 1);

    // The IdP rotates to key 2.
    *idp.keys.lock().unwrap() = vec![2];
    let (status, body) = negotiate(&hub, &token(&idp, 2, json!({}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), 2);
    // Key 1 is gone now: refused, and no new fetch within the minimum interval.
    let (status, body) = negotiate(&hub, &token(&idp, 1, json!({}))).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"],
        "Invalid token: signing key 'key-1' is not in the authority's JWKS"
    );
    for _ in 0..5 {
        negotiate(&hub, &token(&idp, 1, json!({}))).await;
    }
    assert_eq!(idp.jwks_fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreachable_authority_is_503_with_the_url_and_dev_auth_can_be_kept_on() {
    // Nothing listens on this port once the listener is dropped.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let hub = start_hub_with(move |c| {
        c.oidc = Some(OidcConfig::new(
            format!("http://127.0.0.1:{port}/nowhere"),
            vec![AUDIENCE.into()],
        ));
        c.dev_auth_with_oidc = true;
    })
    .await;
    let idp = Idp {
        issuer: format!("http://127.0.0.1:{port}/nowhere"),
        keys: Mutex::new(vec![1]),
        jwks_fetches: AtomicUsize::new(0),
    };
    let (status, body) = negotiate(&hub, &token(&idp, 1, json!({}))).await;
    assert_eq!(status, 503);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "Sign-in authority unreachable: http://127.0.0.1:{port}/nowhere/.well-known/openid-configuration"
        )),
        "{error}"
    );
    // --dev-auth on: dev tokens still work next to OIDC.
    assert!(hub.hub.dev_mode());
    let dev = common::dev_token(&hub.base_url(), "alice").await;
    assert_eq!(negotiate(&hub, &dev).await.0, 200);
    // ... and so do the simulators.
    for path in ["/simulator", "/hosts/cif", "/hosts/postmessage"] {
        let status = get_status(&format!("{}{path}", hub.base_url())).await;
        assert_eq!(status, 200, "{path} with dev mode on");
    }
}

#[tokio::test]
async fn the_roles_claim_reaches_the_hub_access_token() {
    let idp = start_idp().await;
    let hub = hub_for(&idp, false).await;
    let (status, body) = negotiate(&hub, &token(&idp, 1, json!({"roles": ["Supervisor"]}))).await;
    assert_eq!(status, 200, "{body}");
    let payload = jwt_payload(body["accessToken"].as_str().unwrap());
    assert_eq!(payload["role"], json!(["Supervisor"]));
    let (_, body) = negotiate(&hub, &token(&idp, 1, json!({}))).await;
    assert!(
        jwt_payload(body["accessToken"].as_str().unwrap())
            .get("role")
            .is_none()
    );
}
