//! Entra ID tokens as Entra really issues them: an in-process identity provider (axum on
//! 127.0.0.1:0, the fixed RSA test key of `tests/fixtures` served as JWKS) whose discovery
//! document announces Entra's issuers. v1 tokens (`iss` `https://sts.windows.net/{tid}/`,
//! `aud` the App ID URI, `ver` 1.0) and v2 tokens (`iss`
//! `https://login.microsoftonline.com/{tid}/v2.0`, `aud` the client id, `ver` 2.0) are both
//! accepted for the configured tenant; a multi-tenant authority's `{tenantid}` placeholder is
//! resolved against the token's `tid`, checked against the tenant allow-list.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard_hub::RunningHub;
use switchboard_hub::auth::unix_now;
use switchboard_hub::oidc::OidcConfig;

use common::{jwt_payload, negotiate_bearer, serve_idp, start_hub_with};

const TENANT: &str = "6f2b1c3e-0d4a-4b7e-9c1d-2a3b4c5d6e7f";
const OTHER_TENANT: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const CLIENT_ID: &str = "11111111-2222-4333-8444-555555555555";
const APP_ID_URI: &str = "api://switchboard.contoso.com";
const OID: &str = "9d3c4b5a-6e7f-4a8b-9c0d-1e2f3a4b5c6d";

fn key() -> EncodingKey {
    EncodingKey::from_rsa_der(include_bytes!("fixtures/oidc-test-key-1.der"))
}

struct Idp {
    /// The `issuer` of the discovery document (Entra-shaped, never fetched).
    issuer: String,
    /// `http://127.0.0.1:PORT/tenant` (the authority the hub fetches from).
    authority: String,
}

async fn start_idp(issuer: &str) -> Arc<Idp> {
    serve_idp(
        |base| Idp {
            issuer: issuer.to_owned(),
            authority: format!("{base}/tenant"),
        },
        |idp| {
            json!({
                "issuer": idp.issuer,
                "jwks_uri": format!("{}/discovery/v2.0/keys", idp.authority),
            })
        },
        Router::new().route(
            "/tenant/discovery/v2.0/keys",
            get(|| async {
                let mut jwk = Jwk::from_encoding_key(&key(), Algorithm::RS256).unwrap();
                jwk.common.key_id = Some("entra-kid".into());
                axum::Json(JwkSet { keys: vec![jwk] })
            }),
        ),
    )
    .await
}

/// A hub trusting `idp`, accepting the client id and the App ID URI, and these tenants.
async fn hub_for(idp: &Idp, tenants: &[&str]) -> RunningHub {
    let authority = idp.authority.clone();
    let tenants: Vec<String> = tenants.iter().map(|t| (*t).to_owned()).collect();
    start_hub_with(move |c| {
        let mut oidc = OidcConfig::new(authority, vec![APP_ID_URI.into(), CLIENT_ID.into()]);
        oidc.min_refresh_interval = Duration::from_secs(60);
        oidc.tenants = tenants;
        c.oidc = Some(oidc);
    })
    .await
}

/// An Entra v1 access token of `tid` (`aud` the App ID URI).
fn v1(tid: &str, extra: Value) -> String {
    sign(
        json!({
            "iss": format!("https://sts.windows.net/{tid}/"), "aud": APP_ID_URI, "ver": "1.0",
            "tid": tid, "oid": OID, "sub": "v1-pairwise", "appid": "widget-client",
            "upn": "alice@contoso.com", "scp": "access_as_user",
        }),
        extra,
    )
}

/// An Entra v2 access token of `tid` (`aud` the client id).
fn v2(tid: &str, extra: Value) -> String {
    sign(
        json!({
            "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"), "aud": CLIENT_ID,
            "ver": "2.0", "tid": tid, "oid": OID, "sub": "v2-pairwise", "azp": "widget-client",
            "preferred_username": "alice@contoso.com", "scp": "access_as_user",
        }),
        extra,
    )
}

fn sign(mut body: Value, extra: Value) -> String {
    let now = unix_now();
    body["iat"] = now.into();
    body["nbf"] = now.into();
    body["exp"] = (now + 3600).into();
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("entra-kid".into());
    jsonwebtoken::encode(&header, &body, &key()).unwrap()
}

/// `/api/negotiate` with this token → (status, `nameid` of the hub token or the error).
async fn negotiate(hub: &RunningHub, token: &str) -> (u16, String) {
    let (status, body) = negotiate_bearer(hub, token).await;
    if status != 200 {
        return (
            status,
            body["error"].as_str().unwrap_or_default().to_owned(),
        );
    }
    let payload = jwt_payload(body["accessToken"].as_str().unwrap());
    (
        status,
        payload["nameid"].as_str().unwrap_or_default().to_owned(),
    )
}

/// `hub` takes a v1 and a v2 token of `tid`, as the user `OID`.
async fn assert_accepts_v1_and_v2(hub: &RunningHub, tid: &str) {
    assert_eq!(negotiate(hub, &v1(tid, json!({}))).await, (200, OID.into()));
    assert_eq!(negotiate(hub, &v2(tid, json!({}))).await, (200, OID.into()));
}

#[tokio::test]
async fn a_single_tenant_v2_authority_accepts_v1_and_v2_tokens_of_its_tenant_only() {
    let idp = start_idp(&format!("https://login.microsoftonline.com/{TENANT}/v2.0")).await;
    let hub = hub_for(&idp, &[]).await;

    assert_accepts_v1_and_v2(&hub, TENANT).await;
    // `aud` may be the client id or the App ID URI, in either version.
    assert_eq!(
        negotiate(&hub, &v1(TENANT, json!({"aud": CLIENT_ID})))
            .await
            .0,
        200
    );
    assert_eq!(
        negotiate(&hub, &v2(TENANT, json!({"aud": APP_ID_URI})))
            .await
            .0,
        200
    );
    // Another API's audience.
    let (status, error) = negotiate(&hub, &v2(TENANT, json!({"aud": "api://other"}))).await;
    assert_eq!(status, 401);
    assert!(error.contains("audience"), "{error}");
    // Another tenant's issuer, in either form, is refused.
    for token in [v1(OTHER_TENANT, json!({})), v2(OTHER_TENANT, json!({}))] {
        let (status, error) = negotiate(&hub, &token).await;
        assert_eq!(
            (status, error.as_str()),
            (401, "Invalid token: wrong issuer")
        );
    }
    // Look-alike issuers are refused.
    for iss in [
        format!("https://sts.windows.net/{TENANT}"),
        format!("https://login.microsoftonline.com/{TENANT}/"),
        format!("https://sts.windows.net.evil.example/{TENANT}/"),
    ] {
        let (status, _) = negotiate(&hub, &v1(TENANT, json!({ "iss": iss }))).await;
        assert_eq!(status, 401, "{iss}");
    }
}

#[tokio::test]
async fn a_single_tenant_v1_authority_accepts_v2_tokens_too() {
    let idp = start_idp(&format!("https://sts.windows.net/{TENANT}/")).await;
    let hub = hub_for(&idp, &[TENANT]).await;
    assert_accepts_v1_and_v2(&hub, TENANT).await;
    // With a tenant list, a token whose tid is not listed is refused even with a good iss.
    let (status, error) = negotiate(&hub, &v1(TENANT, json!({"tid": OTHER_TENANT}))).await;
    assert_eq!(status, 401);
    assert!(error.contains("not allowed"), "{error}");
}

#[tokio::test]
async fn a_multi_tenant_authority_resolves_tenantid_against_the_allow_list() {
    // What `/organizations/v2.0` and `/common/v2.0` discovery announce.
    let idp = start_idp("https://login.microsoftonline.com/{tenantid}/v2.0").await;
    let hub = hub_for(&idp, &[&TENANT.to_uppercase()]).await;

    assert_accepts_v1_and_v2(&hub, TENANT).await;
    // A tenant not in the list, with a consistent issuer: refused, saying why.
    let (status, error) = negotiate(&hub, &v2(OTHER_TENANT, json!({}))).await;
    assert_eq!(status, 401);
    assert!(
        error.contains(&format!("tenant {OTHER_TENANT} is not allowed")),
        "{error}"
    );
    // A listed tid with another tenant's issuer: wrong issuer.
    let other_iss = format!("https://login.microsoftonline.com/{OTHER_TENANT}/v2.0");
    let (status, error) = negotiate(&hub, &v2(TENANT, json!({ "iss": other_iss }))).await;
    assert_eq!(
        (status, error.as_str()),
        (401, "Invalid token: wrong issuer")
    );
    // The literal placeholder is never an issuer, and a token without tid is refused.
    let literal = "https://login.microsoftonline.com/{tenantid}/v2.0";
    assert_eq!(
        negotiate(&hub, &v2(TENANT, json!({ "iss": literal })))
            .await
            .0,
        401
    );
    assert_eq!(
        negotiate(&hub, &v2(TENANT, json!({ "tid": null }))).await.0,
        401
    );

    // Without an allow-list every multi-tenant token is refused.
    let open = hub_for(&idp, &[]).await;
    let (status, error) = negotiate(&open, &v2(TENANT, json!({}))).await;
    assert_eq!(status, 401);
    assert!(error.contains("--oidc-tenant"), "{error}");
    hub.shutdown(Duration::from_secs(1)).await;
    open.shutdown(Duration::from_secs(1)).await;
}
