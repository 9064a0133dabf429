//! `POST /api/sip/credentials` (DESIGN.md §7): ephemeral SIP credentials in the TURN REST API
//! scheme that Kamailio's auth_ephemeral checks.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::{dev_token, http, start_hub, start_hub_with};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use switchboard_hub::routes::sip::{SipConfig, ephemeral_credentials};

const SECRET: &str = "rig-secret";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post_credentials(base: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = http().post(format!("{base}/api/sip/credentials"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[test]
fn hmac_matches_a_known_vector() {
    // printf '1700000000:alice' | openssl dgst -sha1 -hmac 'rig-secret' -binary | base64
    let (username, password) = ephemeral_credentials(SECRET, "alice", 1_700_000_000);
    assert_eq!(username, "1700000000:alice");
    assert_eq!(password, "r3Fvd95aujErucWZH1kMSieSKo8=");
}

#[tokio::test]
async fn not_found_without_a_secret() {
    let hub = start_hub().await;
    let token = dev_token(&hub.base_url(), "alice").await;
    let (status, body) = post_credentials(&hub.base_url(), Some(&token)).await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("--sip-secret"));
}

#[tokio::test]
async fn unauthorized_without_a_valid_token() {
    let hub = start_hub_with(|c| c.sip = Some(SipConfig::new(SECRET))).await;
    let base = hub.base_url();
    assert_eq!(post_credentials(&base, None).await.0, 401);
    assert_eq!(post_credentials(&base, Some("not-a-jwt")).await.0, 401);
    // A token of another hub (another key) does not verify here.
    let other = start_hub_with(|c| c.access_key = "another-key-0123456789".into()).await;
    let foreign = dev_token(&other.base_url(), "alice").await;
    let (status, body) = post_credentials(&base, Some(&foreign)).await;
    assert_eq!(status, 401);
    assert!(body["error"].as_str().unwrap().contains("signature"));
}

#[tokio::test]
async fn credentials_for_the_signed_in_user() {
    let hub = start_hub_with(|c| {
        let mut sip = SipConfig::new(SECRET);
        sip.ttl = Duration::from_secs(600);
        c.sip = Some(sip);
    })
    .await;
    let token = dev_token(&hub.base_url(), "alice").await;
    let before = now();
    let (status, body) = post_credentials(&hub.base_url(), Some(&token)).await;
    let after = now();
    assert_eq!(status, 200, "{body}");

    let expires_on = body["expiresOn"].as_u64().expect("expiresOn is a number");
    assert!(
        (before + 600..=after + 600).contains(&expires_on),
        "expiresOn {expires_on} is not now + 600 s"
    );
    let username = body["username"].as_str().unwrap();
    assert_eq!(username, format!("{expires_on}:alice"));

    let mut mac = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(body["password"], expected.as_str());
    assert_eq!(body["iceServers"], json!([]));
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        4,
        "only username, password, expiresOn, iceServers: {keys:?}"
    );
}

#[tokio::test]
async fn ice_servers_carry_turn_credentials() {
    let hub = start_hub_with(|c| {
        let mut sip = SipConfig::new(SECRET);
        sip.ice_servers = vec![
            "stun:127.0.0.1:3478".into(),
            "turn:127.0.0.1:3478?transport=udp".into(),
        ];
        c.sip = Some(sip);
    })
    .await;
    let token = dev_token(&hub.base_url(), "bob").await;
    let (status, body) = post_credentials(&hub.base_url(), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["iceServers"][0],
        json!({ "urls": ["stun:127.0.0.1:3478"] })
    );
    assert_eq!(
        body["iceServers"][1],
        json!({
            "urls": ["turn:127.0.0.1:3478?transport=udp"],
            "username": body["username"],
            "credential": body["password"],
        })
    );
    assert!(body["username"].as_str().unwrap().ends_with(":bob"));
}
