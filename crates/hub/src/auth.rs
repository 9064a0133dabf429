//! Credentials: user tokens (dev sign-in, or OIDC through [`crate::oidc`]), hub access tokens signed with the
//! AccessKey (Azure SignalR Service's scheme), and the Azure Functions server credential.
//!
//! - **User tokens** are what the widget holds. [`crate::users::UserAuthenticator`] validates them: dev
//!   tokens ([`DevTokens`]: HS256, issuer `switchboard-hub-dev`, audience `switchboard`,
//!   signed with a key derived from the AccessKey) or an identity provider's access tokens
//!   ([`crate::oidc::OidcTokens`]: discovery + JWKS, RS256).
//! - **Hub access tokens** (`/api/negotiate` answers one; `/client/negotiate` and the
//!   WebSocket connect check it) and **REST tokens** (Azure SignalR REST API) are HS256 JWTs
//!   signed with the AccessKey's UTF-8 bytes, `aud` = the URL they are good for, as Azure
//!   SignalR Service does. Only the path and query of `aud` are compared, so
//!   `http://127.0.0.1:P/...` and `http://localhost:P/...` are the same audience.
//! - **Server credential**: `x-functions-key: KEY` header or `?code=KEY` (Azure Functions
//!   function keys), KEY = the AccessKey.
//!
//! Nothing here logs a token or a key.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Issuer of dev tokens.
pub const DEV_ISSUER: &str = "switchboard-hub-dev";
/// Audience of user tokens.
pub const USER_AUDIENCE: &str = "switchboard";
/// Lifetime of dev tokens and hub access tokens, in seconds (Azure's default: one hour).
pub const TOKEN_LIFETIME_SECS: u64 = 3600;
/// Clock skew tolerated when checking `exp`/`nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// Why a request was not authenticated. Every variant answers 401 with
/// `{"error": "<Display text>"}` (and `WWW-Authenticate: Bearer` for bearer tokens).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header (nor `access_token` where allowed).
    #[error("Missing bearer token: send Authorization: Bearer <token>")]
    MissingToken,
    /// Not a JWT, wrong algorithm, or unreadable claims.
    #[error("Invalid token: {0}")]
    Malformed(String),
    /// The signature does not verify with the expected key.
    #[error("Invalid token: the signature does not verify")]
    BadSignature,
    /// `exp` is in the past.
    #[error("Invalid token: expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("Invalid token: not valid yet")]
    NotYetValid,
    /// `iss` is not the expected issuer.
    #[error("Invalid token: wrong issuer")]
    WrongIssuer,
    /// The token's tenant (`tid`) is not one the hub accepts (`--oidc-tenant`).
    #[error("Invalid token: {0}")]
    TenantNotAllowed(String),
    /// `aud` is not what this endpoint expects.
    #[error("Invalid token: audience does not match {0}")]
    WrongAudience(String),
    /// Neither `oid` nor `sub`.
    #[error("Invalid token: no user id (oid or sub claim)")]
    NoUser,
    /// No `x-functions-key` header nor `code` query parameter.
    #[error("Missing server credential: send the access key as x-functions-key header or ?code=")]
    MissingCredential,
    /// The server credential is not the access key.
    #[error("Invalid server credential")]
    WrongCredential,
    /// The token's `kid` is not among the authority's signing keys, even after a refetch.
    #[error("Invalid token: signing key '{0}' is not in the authority's JWKS")]
    UnknownKey(String),
    /// The identity provider's discovery document or JWKS could not be fetched (503).
    #[error("Sign-in authority unreachable: {0}")]
    AuthorityUnreachable(String),
}

impl AuthError {
    pub(crate) fn from_jwt(e: &jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAudience => AuthError::WrongAudience(USER_AUDIENCE.into()),
            ErrorKind::InvalidAlgorithm => AuthError::Malformed("algorithm must be HS256".into()),
            ErrorKind::MissingRequiredClaim(c) => {
                AuthError::Malformed(format!("missing {c} claim"))
            }
            _ => AuthError::Malformed("not a valid JWT".into()),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let bearer = !matches!(
            self,
            AuthError::MissingCredential
                | AuthError::WrongCredential
                | AuthError::AuthorityUnreachable(_)
        );
        let status = match self {
            AuthError::AuthorityUnreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        let mut response =
            (status, axum::Json(json!({ "error": self.to_string() }))).into_response();
        if bearer {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The bearer token of `Authorization: Bearer <token>`, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A validated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// `oid`, else `sub`, of the validated token.
    pub user_id: String,
    /// The token's `roles` claim (Entra app roles; dev tokens: `/dev/token` `"role"`).
    pub roles: Vec<String>,
}

impl UserIdentity {
    /// The user id of a validated token: `oid`, else `sub` (empty ones do not count), else
    /// [`AuthError::NoUser`].
    pub(crate) fn from_claims(
        oid: Option<String>,
        sub: Option<String>,
        roles: Option<Vec<String>>,
    ) -> Result<Self, AuthError> {
        oid.filter(|s| !s.is_empty())
            .or(sub.filter(|s| !s.is_empty()))
            .map(|user_id| UserIdentity {
                user_id,
                roles: roles.unwrap_or_default(),
            })
            .ok_or(AuthError::NoUser)
    }
}

/// The body of `POST /dev/token`: `{"accessToken": "<JWT>", "expiresOn": <unix seconds>}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevToken {
    /// HS256 JWT: `iss` `switchboard-hub-dev`, `aud` `switchboard`, `sub` = the user.
    pub access_token: String,
    /// When it expires, Unix seconds.
    pub expires_on: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct UserClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
    iss: String,
    aud: Value,
    iat: u64,
    exp: u64,
}

/// Dev sign-in: issues and validates user tokens for any well-formed user name.
#[derive(Clone)]
pub struct DevTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for DevTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevTokens { .. }")
    }
}

/// A user name `POST /dev/token` accepts: `[A-Za-z0-9._@-]{1,64}`.
pub fn is_valid_user_name(user: &str) -> bool {
    (1..=64).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

impl DevTokens {
    /// The dev signing key is SHA-256 of a fixed label and the AccessKey, so dev tokens and hub
    /// tokens never share a key.
    pub fn new(access_key: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"switchboard-hub dev user token key\0");
        hasher.update(access_key.as_bytes());
        Self {
            key: hasher.finalize().into(),
        }
    }

    /// Issues a token for `user` valid for [`TOKEN_LIFETIME_SECS`] from `now` (Unix seconds).
    /// The caller checks the name with [`is_valid_user_name`].
    pub fn issue(&self, user: &str, now: u64) -> DevToken {
        self.issue_with_expiry(user, now, now + TOKEN_LIFETIME_SECS)
    }

    /// Issues a token with an explicit expiry (tests use it for expired tokens).
    pub fn issue_with_expiry(&self, user: &str, now: u64, exp: u64) -> DevToken {
        self.issue_full(user, &[], now, exp)
    }

    /// Issues a token whose `roles` claim holds `roles` (left out when empty).
    pub fn issue_with_roles(&self, user: &str, roles: &[String], now: u64) -> DevToken {
        self.issue_full(user, roles, now, now + TOKEN_LIFETIME_SECS)
    }

    fn issue_full(&self, user: &str, roles: &[String], now: u64, exp: u64) -> DevToken {
        let claims = UserClaims {
            roles: (!roles.is_empty()).then(|| roles.to_vec()),
            sub: Some(user.to_owned()),
            oid: None,
            name: Some(user.to_owned()),
            iss: DEV_ISSUER.into(),
            aud: Value::String(USER_AUDIENCE.into()),
            iat: now,
            exp,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.key),
        )
        .expect("HS256 signing cannot fail");
        DevToken {
            access_token: token,
            expires_on: exp,
        }
    }

    /// Validates signature, `iss`, `aud` and `exp`; the user is `oid`, else `sub`.
    pub fn validate(&self, token: &str) -> Result<UserIdentity, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[DEV_ISSUER]);
        validation.set_audience(&[USER_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECS;
        let data = jsonwebtoken::decode::<UserClaims>(
            token,
            &DecodingKey::from_secret(&self.key),
            &validation,
        )
        .map_err(|e| AuthError::from_jwt(&e))?;
        UserIdentity::from_claims(data.claims.oid, data.claims.sub, data.claims.roles)
    }
}

/// Claims of hub access tokens (client) and REST tokens (server), Azure SignalR style.
#[derive(Debug, Serialize, Deserialize)]
struct HubClaims {
    aud: Value,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    /// The user id (ASP.NET's short name for the `nameidentifier` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nameid: Option<String>,
    /// The user's roles (ASP.NET's short name for the `role` claim: one string or an array);
    /// left out when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<Value>,
}

/// The AccessKey: signs and checks hub access tokens and REST tokens, and is the server
/// credential.
#[derive(Clone)]
pub struct AccessKey(String);

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKey(..)")
    }
}

impl AccessKey {
    /// Wraps the key text.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key text (for the start-up connection string only).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A hub access token for `user` (claim `nameid`), `aud` = `audience` (the client URL,
    /// `http://HOST/client/?hub=H`), valid one hour from `now`.
    pub fn issue_client_token(&self, audience: &str, user: Option<&str>, now: u64) -> String {
        self.sign(audience, user, now, now + TOKEN_LIFETIME_SECS)
    }

    /// [`AccessKey::issue_client_token`] with the user's roles in the `role` claim (Azure
    /// SignalR passes custom claims through to the hub the same way).
    pub fn issue_client_token_with_roles(
        &self,
        audience: &str,
        user: Option<&str>,
        roles: &[String],
        now: u64,
    ) -> String {
        self.sign_claims(audience, user, roles, now, now + TOKEN_LIFETIME_SECS)
    }

    /// Signs a token exactly as Azure SignalR clients and SDKs do (tests use it with odd
    /// audiences and expiries).
    pub fn sign(&self, audience: &str, user: Option<&str>, iat: u64, exp: u64) -> String {
        self.sign_claims(audience, user, &[], iat, exp)
    }

    fn sign_claims(
        &self,
        audience: &str,
        user: Option<&str>,
        roles: &[String],
        iat: u64,
        exp: u64,
    ) -> String {
        let claims = HubClaims {
            aud: Value::String(audience.to_owned()),
            exp,
            iat: Some(iat),
            nameid: user.map(str::to_owned),
            role: (!roles.is_empty()).then(|| json!(roles)),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(self.0.as_bytes()),
        )
        .expect("HS256 signing cannot fail")
    }

    fn verify(&self, token: &str) -> Result<HubClaims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_aud = false; // compared by path and query below
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.leeway = LEEWAY_SECS;
        jsonwebtoken::decode::<HubClaims>(
            token,
            &DecodingKey::from_secret(self.0.as_bytes()),
            &validation,
        )
        .map(|d| d.claims)
        .map_err(|e| AuthError::from_jwt(&e))
    }

    /// Checks a hub access token for the client endpoint of `hub`: signature, `exp`, and an
    /// `aud` whose path is `/client/` and whose `hub` query parameter names this hub (case
    /// insensitive). Returns the user id (`nameid`), `None` for an anonymous connection.
    pub fn validate_client_token(
        &self,
        token: &str,
        hub: &str,
    ) -> Result<Option<String>, AuthError> {
        self.validate_client_claims(token, hub)
            .map(|(user, _)| user)
    }

    /// [`AccessKey::validate_client_token`], also returning the `role` claim's roles.
    pub fn validate_client_claims(
        &self,
        token: &str,
        hub: &str,
    ) -> Result<(Option<String>, Vec<String>), AuthError> {
        let claims = self.verify(token)?;
        let wanted = format!("/client/?hub={hub}");
        let ok = audiences(&claims.aud).into_iter().any(|aud| {
            let (path, query) = split_path_query(path_and_query(&aud));
            normalize_path(path) == "/client"
                && query_param(query.unwrap_or(""), "hub")
                    .is_some_and(|h| h.eq_ignore_ascii_case(hub))
        });
        if !ok {
            return Err(AuthError::WrongAudience(wanted));
        }
        Ok((
            claims.nameid.filter(|s| !s.is_empty()),
            roles_of(claims.role),
        ))
    }

    /// Checks a REST token (Azure SignalR Service REST API): signature, `exp`, and `aud` = the
    /// request URL. Paths are compared percent-decoded and without a trailing slash; a query in
    /// `aud` must equal the request's (as a set of parameters), an `aud` without query matches
    /// any query (Azure SDKs leave `api-version` out of it).
    pub fn validate_rest_token(
        &self,
        token: &str,
        request_path_and_query: &str,
    ) -> Result<(), AuthError> {
        let claims = self.verify(token)?;
        let (req_path, req_query) = split_path_query(request_path_and_query);
        let ok = audiences(&claims.aud).into_iter().any(|aud| {
            let (path, query) = split_path_query(path_and_query(&aud));
            normalize_path(path) == normalize_path(req_path)
                && match query {
                    None | Some("") => true,
                    Some(q) => same_query(q, req_query.unwrap_or("")),
                }
        });
        if ok {
            Ok(())
        } else {
            Err(AuthError::WrongAudience(req_path.to_owned()))
        }
    }

    /// Checks the Azure Functions server credential: header `x-functions-key` or query `code`
    /// equal to the key (constant-time comparison).
    pub fn check_server_credential(
        &self,
        headers: &HeaderMap,
        code: Option<&str>,
    ) -> Result<(), AuthError> {
        let given = headers
            .get("x-functions-key")
            .and_then(|v| v.to_str().ok())
            .or(code)
            .ok_or(AuthError::MissingCredential)?;
        if constant_time_eq(given.as_bytes(), self.0.as_bytes()) {
            Ok(())
        } else {
            Err(AuthError::WrongCredential)
        }
    }
}

/// The roles of a `role`/`roles` claim: one string or an array of strings (other values are
/// ignored).
pub(crate) fn roles_of(claim: Option<Value>) -> Vec<String> {
    match claim {
        Some(Value::String(r)) => vec![r],
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Compare digests so the length does not leak either.
    let a = Sha256::digest(a);
    let b = Sha256::digest(b);
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn audiences(aud: &Value) -> Vec<String> {
    match aud {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The path and query of a URL (`http://h:1/a?b` → `/a?b`); a relative reference is returned
/// as is.
pub fn path_and_query(url: &str) -> &str {
    let url = url.split('#').next().unwrap_or(url);
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            match rest.find(['/', '?']) {
                Some(j) => &rest[j..],
                None => "/",
            }
        }
        None => url,
    }
}

fn split_path_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    }
}

fn normalize_path(path: &str) -> String {
    let decoded = percent_decode(path, false);
    let trimmed = decoded.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_owned()
    }
}

fn same_query(a: &str, b: &str) -> bool {
    let mut a = parse_query(a);
    let mut b = parse_query(b);
    a.sort();
    b.sort();
    a == b
}

/// Parses `a=1&b=x%20y` into decoded pairs (`+` is a space).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// The decoded value of the first `name` parameter of a query string.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    parse_query(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Percent-decodes (invalid escapes are kept as they are); `plus_is_space` for query strings.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_travel_from_the_user_token_to_the_connection() {
        let now = unix_now();
        let dev = DevTokens::new("key");
        let user = dev
            .validate(
                &dev.issue_with_roles("sue", &["Supervisor".into()], now)
                    .access_token,
            )
            .unwrap();
        assert_eq!(user.roles, ["Supervisor"]);
        assert!(
            dev.validate(&dev.issue("al", now).access_token)
                .unwrap()
                .roles
                .is_empty()
        );
        let key = AccessKey::new("key");
        let url = "http://h/client/?hub=switchboard";
        let t = key.issue_client_token_with_roles(url, Some("sue"), &user.roles, now);
        assert_eq!(
            key.validate_client_claims(&t, "switchboard").unwrap(),
            (Some("sue".into()), vec!["Supervisor".to_owned()])
        );
        // One string or an array, as ASP.NET and Entra write them; anything else is no role.
        assert_eq!(roles_of(Some(json!("Supervisor"))), ["Supervisor"]);
        assert_eq!(roles_of(Some(json!(["A", 1, "B"]))), ["A", "B"]);
        assert!(roles_of(Some(json!({"x": 1}))).is_empty());
    }

    #[test]
    fn dev_tokens_roundtrip_and_fail_properly() {
        let dev = DevTokens::new("key");
        let now = unix_now();
        let t = dev.issue("alice", now);
        assert_eq!(t.expires_on, now + 3600);
        assert_eq!(dev.validate(&t.access_token).unwrap().user_id, "alice");
        // Another key: bad signature.
        assert_eq!(
            DevTokens::new("other").validate(&t.access_token),
            Err(AuthError::BadSignature)
        );
        // Expired.
        let old = dev.issue_with_expiry("alice", now - 7200, now - 3600);
        assert_eq!(dev.validate(&old.access_token), Err(AuthError::Expired));
        // A hub token is not a user token.
        let hub =
            AccessKey::new("key").issue_client_token("http://h/client/?hub=x", Some("alice"), now);
        assert!(dev.validate(&hub).is_err());
        assert!(matches!(
            dev.validate("garbage"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn user_names() {
        assert!(is_valid_user_name("alice"));
        assert!(is_valid_user_name("a.b_c@d-e"));
        assert!(!is_valid_user_name(""));
        assert!(!is_valid_user_name("a b"));
        assert!(!is_valid_user_name("<script>"));
        assert!(!is_valid_user_name(&"a".repeat(65)));
    }

    #[test]
    fn client_tokens_compare_path_and_hub_only() {
        let key = AccessKey::new("k");
        let now = unix_now();
        let t = key.issue_client_token(
            "http://127.0.0.1:9/client/?hub=switchboard",
            Some("alice"),
            now,
        );
        assert_eq!(
            key.validate_client_token(&t, "switchboard")
                .unwrap()
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            key.validate_client_token(&t, "SwitchBoard")
                .unwrap()
                .as_deref(),
            Some("alice")
        );
        assert!(matches!(
            key.validate_client_token(&t, "other"),
            Err(AuthError::WrongAudience(_))
        ));
        let t = key.issue_client_token(
            "https://localhost/client?hub=switchboard&asrs_request_id=1",
            None,
            now,
        );
        assert_eq!(key.validate_client_token(&t, "switchboard").unwrap(), None);
        let t = key.sign(
            "http://h/client/?hub=switchboard",
            None,
            now - 7200,
            now - 3600,
        );
        assert_eq!(
            key.validate_client_token(&t, "switchboard"),
            Err(AuthError::Expired)
        );
        assert_eq!(
            AccessKey::new("x").validate_client_token(&t, "switchboard"),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn rest_tokens_compare_the_request_url() {
        let key = AccessKey::new("k");
        let now = unix_now();
        let t = key.sign(
            "http://localhost:1/api/v1/hubs/sb/users/al%20ice",
            None,
            now,
            now + 60,
        );
        assert!(
            key.validate_rest_token(&t, "/api/v1/hubs/sb/users/al ice")
                .is_ok()
        );
        assert!(
            key.validate_rest_token(&t, "/api/v1/hubs/sb/users/al%20ice?api-version=1")
                .is_ok()
        );
        assert!(
            key.validate_rest_token(&t, "/api/v1/hubs/sb/users/bob")
                .is_err()
        );
        let t = key.sign("http://h/api/v1/hubs/sb?x=1", None, now, now + 60);
        assert!(key.validate_rest_token(&t, "/api/v1/hubs/sb?x=1").is_ok());
        assert!(key.validate_rest_token(&t, "/api/v1/hubs/sb?x=2").is_err());
    }

    #[test]
    fn server_credential() {
        let key = AccessKey::new("secret");
        let mut headers = HeaderMap::new();
        assert_eq!(
            key.check_server_credential(&headers, None),
            Err(AuthError::MissingCredential)
        );
        assert_eq!(
            key.check_server_credential(&headers, Some("nope")),
            Err(AuthError::WrongCredential)
        );
        assert!(
            key.check_server_credential(&headers, Some("secret"))
                .is_ok()
        );
        headers.insert("x-functions-key", "secret".parse().unwrap());
        assert!(key.check_server_credential(&headers, None).is_ok());
    }

    #[test]
    fn url_helpers() {
        assert_eq!(path_and_query("http://h:1/a/b?c=d#e"), "/a/b?c=d");
        assert_eq!(path_and_query("http://h"), "/");
        assert_eq!(path_and_query("/x?y"), "/x?y");
        assert_eq!(percent_decode("a%20b+c%zz%", true), "a b c%zz%");
        assert_eq!(query_param("hub=a%2Fb&x", "hub").as_deref(), Some("a/b"));
    }
}
