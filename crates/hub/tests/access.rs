//! REST authorization through the `Authorized<Scope>` extractor (issue 19): each scope's
//! rejection keeps the status and body its route answered before the extractor.

mod common;

use serde_json::{Value, json};
use switchboard_hub::oidc::OidcConfig;

use common::{KEY, http, start_hub, start_hub_with};

async fn answer(r: reqwest::RequestBuilder) -> (u16, bool, Value) {
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let bearer = r.headers().get("www-authenticate").is_some();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, bearer, body)
}

const MISSING_TOKEN: &str = "Missing bearer token: send Authorization: Bearer <token>";
const MISSING_KEY: &str =
    "Missing server credential: send the access key as x-functions-key header or ?code=";

#[tokio::test]
async fn token_and_key_scopes_answer_as_before() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let c = http();

    // Service REST API: a bearer REST token.
    let rest = format!("{base}/api/v1/hubs/switchboard/users/alice");
    let (s, bearer, body) = answer(c.post(&rest).json(&json!({"target": "x"}))).await;
    assert_eq!((s, bearer), (401, true));
    assert_eq!(body, json!({ "error": MISSING_TOKEN }));
    let (s, bearer, body) = answer(c.head(&rest).bearer_auth("not.a.jwt")).await;
    assert_eq!((s, bearer, body), (401, true, Value::Null));

    // Server key: SendMessageToUser, the call registry.
    let send = format!("{base}/api/SendMessageToUser");
    let (s, bearer, body) = answer(c.post(&send).json(&json!({}))).await;
    assert_eq!((s, bearer), (401, false));
    assert_eq!(body, json!({ "error": MISSING_KEY }));
    let (s, _, body) = answer(c.post(format!("{send}?code=wrong")).json(&json!({}))).await;
    assert_eq!(s, 401);
    assert_eq!(body, json!({ "error": "Invalid server credential" }));
    let (s, _, body) = answer(
        c.get(format!("{base}/api/calls/c9"))
            .header("x-functions-key", KEY),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(body, json!({ "error": "Unknown call 'c9'" }));

    // User or server key: /api/userclient.
    let uc = format!("{base}/api/userclient");
    let (s, bearer, body) = answer(c.post(&uc).json(&json!({"userId": "alice"}))).await;
    assert_eq!((s, bearer), (401, true));
    assert_eq!(body, json!({ "error": MISSING_TOKEN }));
    let (s, _, body) = answer(
        c.post(format!("{uc}?code=nope"))
            .json(&json!({"userId": "alice"})),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(body, json!({ "error": "Invalid server credential" }));
    let r = c
        .post(format!("{uc}?code={KEY}"))
        .json(&json!({"userId": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // User token: /api/negotiate.
    let (s, bearer, body) = answer(c.post(format!("{base}/api/negotiate"))).await;
    assert_eq!((s, bearer), (401, true));
    assert_eq!(body, json!({ "error": MISSING_TOKEN }));

    // Client endpoint: the hub name first (400), then the hub access token (401).
    let (s, _, body) = answer(c.post(format!("{base}/client/negotiate"))).await;
    assert_eq!(s, 400);
    assert_eq!(
        body,
        json!({ "error": "The hub query parameter is required (/client/?hub=NAME)" })
    );
    let (s, _, body) = answer(c.post(format!("{base}/client/negotiate?hub=2x"))).await;
    assert_eq!(s, 400);
    assert_eq!(
        body,
        json!({ "error": "hub must start with a letter and contain only letters, digits and _" })
    );
    let (s, bearer, body) = answer(c.delete(format!("{base}/client/?hub=switchboard&id=x"))).await;
    assert_eq!((s, bearer), (401, true));
    assert_eq!(body, json!({ "error": MISSING_TOKEN }));

    // SIP credentials: off says 404 before any token is looked at.
    let (s, _, body) = answer(c.post(format!("{base}/api/sip/credentials"))).await;
    assert_eq!(s, 404);
    assert_eq!(
        body,
        json!({ "error": "SIP credentials are off: start the hub with --sip-secret" })
    );
    hub.shutdown(std::time::Duration::from_secs(1)).await;
}

#[tokio::test]
async fn dev_only_scopes_answer_404_outside_dev_mode() {
    let hub = start_hub_with(|c| {
        c.oidc = Some(OidcConfig::new(
            "https://127.0.0.1:9/tenant",
            vec!["api://x".into()],
        ));
    })
    .await;
    let base = hub.base_url();
    let c = http();
    let (s, _, body) = answer(c.get(format!("{base}/simulator/calls"))).await;
    assert_eq!(s, 404);
    assert_eq!(
        body,
        json!({ "error": "The simulator runs in dev mode only" })
    );
    let (s, _, body) = answer(c.get(format!("{base}/hosts/cif"))).await;
    assert_eq!(s, 404);
    assert_eq!(
        body,
        json!({ "error": "The host simulators run in dev mode only" })
    );
    let (s, _, body) = answer(c.post(format!("{base}/dev/users/alice/drop"))).await;
    assert_eq!(s, 404);
    assert_eq!(body, json!({ "error": "Not found" }));
    let (s, _, body) = answer(c.get(format!("{base}/graph/v1.0/me/presence"))).await;
    assert_eq!(s, 404);
    assert_eq!(body["error"]["code"], "ItemNotFound");
    hub.shutdown(std::time::Duration::from_secs(1)).await;
}
