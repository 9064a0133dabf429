//! Reading a JWT's claims without verifying it (RFC 7519 §7.2 steps 1–7, no signature check).
//!
//! The widget only needs a token's expiry to renew it before it runs out; the hub verifies
//! signatures. Never log the token itself.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The claims the widget reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Expiry, seconds since the Unix epoch.
    pub exp: Option<u64>,
    /// Subject.
    pub sub: Option<String>,
    /// Entra ID object id.
    pub oid: Option<String>,
}

/// Decodes the payload of a compact JWS (`header.payload.signature`). `None` if the token is not
/// of that shape or its payload is not JSON claims.
pub fn read_claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    // Through `Value` from a `&str`: the widget already has that parser; a derived
    // `Deserialize` from bytes would add a second one (several KB of wasm).
    let claims = serde_json::from_str::<Value>(std::str::from_utf8(&bytes).ok()?).ok()?;
    let claims = claims.as_object()?;
    let text = |k: &str| match claims.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    };
    Some(Claims {
        exp: match claims.get("exp") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64()?),
        },
        sub: text("sub").ok()?,
        oid: text("oid").ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exp_and_sub() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"sub":"alice","exp":1700000000}"#);
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig");
        let claims = read_claims(&token).unwrap();
        assert_eq!(claims.sub.as_deref(), Some("alice"));
        assert_eq!(claims.exp, Some(1_700_000_000));
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(read_claims("abc"), None);
        assert_eq!(read_claims("a.b.c.d"), None);
        assert_eq!(read_claims("a.!!!.c"), None);
        let payload = URL_SAFE_NO_PAD.encode("[1]");
        assert_eq!(read_claims(&format!("a.{payload}.c")), None);
    }
}
