//! Ephemeral SIP credentials for the softphone (DESIGN.md §7, binding).
//!
//! `POST /api/sip/credentials` with `Authorization: Bearer <user token>` (checked exactly as
//! `/api/negotiate` checks it) → `{"username": "<expiry>:<user>", "password": "<base64
//! HMAC-SHA1(secret, username)>", "expiresOn": <unix s>, "iceServers": [...]}`.
//!
//! This is the TURN REST API scheme (draft-uberti-behave-turn-rest) that Kamailio's
//! `auth_ephemeral` module and coturn's `use-auth-secret` both check: the SIP server (and the
//! TURN server) share the secret with the hub, so no SIP password is ever stored in a browser.
//! TURN URLs in `iceServers` carry the same username and password as `credential`.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;

use super::ApiError;
use crate::access::{Authorized, Scope, User};
use crate::auth::{self, UserIdentity};
use crate::hub::Hub;

/// Default lifetime of SIP credentials: 12 hours (an agent's shift; the widget asks again
/// before they run out).
pub const DEFAULT_TTL: Duration = Duration::from_secs(12 * 3600);

/// SIP credentials configuration (`--sip-secret`, `--sip-credentials-ttl`, `--sip-ice-server`).
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// The secret shared with the SIP server's `auth_ephemeral` (and a TURN server's
    /// `static-auth-secret`).
    pub secret: String,
    /// How long issued credentials stay valid.
    pub ttl: Duration,
    /// STUN/TURN URLs handed to the browser (`stun:`, `turn:`, `turns:`); TURN ones get the
    /// same ephemeral username/credential.
    pub ice_servers: Vec<String>,
}

impl SipConfig {
    /// A configuration with this secret, [`DEFAULT_TTL`] and no ICE servers.
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            ttl: DEFAULT_TTL,
            ice_servers: Vec::new(),
        }
    }
}

/// `(username, password)` for `user` valid until `expires_on` (unix seconds):
/// `username = "<expires_on>:<user>"`, `password = base64(HMAC-SHA1(secret, username))`.
pub fn ephemeral_credentials(secret: &str, user: &str, expires_on: u64) -> (String, String) {
    let username = format!("{expires_on}:{user}");
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

/// The `iceServers` value (RTCIceServer dictionaries): STUN URLs in one entry without
/// credentials, TURN URLs in one entry with `username` and `credential`.
fn ice_servers(urls: &[String], username: &str, password: &str) -> Vec<Value> {
    let is_turn = |u: &&String| u.starts_with("turn:") || u.starts_with("turns:");
    let turn: Vec<&String> = urls.iter().filter(is_turn).collect();
    let stun: Vec<&String> = urls.iter().filter(|u| !is_turn(u)).collect();
    let mut servers = Vec::new();
    if !stun.is_empty() {
        servers.push(json!({ "urls": stun }));
    }
    if !turn.is_empty() {
        servers.push(json!({ "urls": turn, "username": username, "credential": password }));
    }
    servers
}

/// Who may have SIP credentials: nobody when the hub has no SIP secret (404 `{"error"}`, before
/// any token is looked at), else a signed-in user ([`User`]).
#[derive(Debug)]
pub struct SipUser;

impl Scope for SipUser {
    type Principal = (SipConfig, UserIdentity);
    type Rejection = ApiError;

    async fn authorize(hub: &Hub, parts: &Parts) -> Result<Self::Principal, ApiError> {
        let Some(sip) = &hub.config().sip else {
            return Err(ApiError::Json(
                StatusCode::NOT_FOUND,
                "SIP credentials are off: start the hub with --sip-secret".into(),
            ));
        };
        let user = User::authorize(hub, parts).await?;
        Ok((sip.clone(), user))
    }
}

/// `POST /api/sip/credentials` (see the module docs).
///
/// 404 `{"error"}` when the hub has no SIP secret (the route is then off, whoever asks); 401
/// `{"error"}` for a missing, invalid or expired user token (the checks of `/api/negotiate`).
pub async fn credentials(
    Authorized((sip, user)): Authorized<SipUser>,
) -> Result<Json<Value>, ApiError> {
    let expires_on = auth::unix_now() + sip.ttl.as_secs();
    let (username, password) = ephemeral_credentials(&sip.secret, &user.user_id, expires_on);
    tracing::info!(user = %user.user_id, expires_on, "SIP credentials issued");
    Ok(Json(json!({
        "username": username,
        "password": password,
        "expiresOn": expires_on,
        "iceServers": ice_servers(&sip.ice_servers, &username, &password),
    })))
}
