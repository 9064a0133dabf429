//! HS256 JWTs as Azure SignalR Service issues them (docs/hub-contract.md "Credentials"): the hub
//! access token a client connects with, and the REST token a server sends with. Both are signed
//! with the AccessKey's UTF-8 bytes, so the load generator mints them itself instead of going
//! through `/api/negotiate` (whose per-address quota would otherwise be the thing measured).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

/// Token lifetime in seconds: longer than any bounded run.
const LIFETIME_SECS: u64 = 3600;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs `claims` with `key` (HS256) and returns the compact JWT.
pub fn sign(key: &str, claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{signature}")
}

/// A hub access token for `user` at the hub `base` (`http://127.0.0.1:PORT`), hub `switchboard`.
pub fn client_token(key: &str, base: &str, user: &str) -> String {
    let now = now_secs();
    sign(
        key,
        &json!({
            "aud": format!("{base}/client/?hub=switchboard"),
            "nameid": user,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        }),
    )
}

/// A REST token for the request URL `url` (`aud` = the URL).
pub fn rest_token(key: &str, url: &str) -> String {
    sign(
        key,
        &json!({ "aud": url, "exp": now_secs() + LIFETIME_SECS }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_has_three_parts_and_the_claims() {
        let token = client_token("k", "http://127.0.0.1:1", "u1");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["nameid"], "u1");
        assert_eq!(claims["aud"], "http://127.0.0.1:1/client/?hub=switchboard");
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // jwt.io's HS256 example key and claims, re-encoded without spaces.
        let token = sign("secret", &json!({"sub": "1"}));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        let (input, signature) = token.rsplit_once('.').unwrap();
        mac.update(input.as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap())
            .unwrap();
    }
}
