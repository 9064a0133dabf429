//! User tokens from a real identity provider (Entra ID or any OpenID Connect issuer).
//!
//! [`OidcTokens`] validates RS256 access tokens the way an API behind Entra ID does:
//!
//! 1. discovery: `GET {authority}/.well-known/openid-configuration` gives `issuer` and
//!    `jwks_uri` (fetched on first use; a failed fetch is retried on the next request);
//! 2. keys: `GET {jwks_uri}` gives the signing keys, cached. A token whose `kid` is not in the
//!    cache makes the hub fetch the JWKS again (key rotation), at most once per
//!    [`OidcConfig::min_refresh_interval`], so a flood of forged `kid`s cannot hammer the IdP;
//! 3. checks: RS256 signature, `iss` one of [`accepted_issuers`], `aud` one of the configured
//!    audiences, `exp`/`nbf` with [`LEEWAY_SECS`] of leeway. The user id is `oid`, else `sub`.
//!
//! Entra ID (see `docs/entra-id.md`): an API whose registration keeps the default
//! `accessTokenAcceptedVersion` gets v1 tokens (`iss` `https://sts.windows.net/{tid}/`) while v2
//! discovery says `https://login.microsoftonline.com/{tid}/v2.0`: both forms are accepted for
//! the same tenant. A multi-tenant authority (`/organizations`, `/common`) discovers an issuer
//! with a `{tenantid}` placeholder: it is replaced by the token's `tid`, which must be one of
//! [`OidcConfig::tenants`] (no tenant list: every multi-tenant token is refused).
//!
//! HTTPS goes through rustls with the Web PKI roots plus, for tests and private IdPs, the
//! certificates of [`OidcConfig::extra_ca_pem`]. Nothing here logs a token.

use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::auth::{AuthError, LEEWAY_SECS, UserIdentity};

/// How the hub trusts an OpenID Connect authority.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The authority, e.g. `https://login.microsoftonline.com/{tenant}/v2.0`; discovery is
    /// `{authority}/.well-known/openid-configuration`.
    pub authority: String,
    /// Accepted `aud` values (at least one): the hub API's application id URI or client id,
    /// e.g. `api://switchboard` (Entra ID v2 tokens carry the client id GUID).
    pub audiences: Vec<String>,
    /// Tenants (`tid`, Entra ID directory ids) whose tokens are accepted (`--oidc-tenant`).
    /// Required with a multi-tenant authority (its issuer has a `{tenantid}` placeholder); with
    /// a single-tenant authority, when not empty, a token's `tid` must also be listed.
    pub tenants: Vec<String>,
    /// Extra trusted certificates (PEM), for a private or self-signed IdP.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Least time between two JWKS fetches caused by an unknown `kid` (default 30 s).
    pub min_refresh_interval: Duration,
    /// Timeout of each request to the authority (default 10 s).
    pub http_timeout: Duration,
}

impl OidcConfig {
    /// A configuration with the default timers.
    pub fn new(authority: impl Into<String>, audiences: Vec<String>) -> Self {
        Self {
            authority: authority.into(),
            audiences,
            tenants: Vec::new(),
            extra_ca_pem: None,
            min_refresh_interval: Duration::from_secs(30),
            http_timeout: Duration::from_secs(10),
        }
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.authority.trim_end_matches('/')
        )
    }
}

#[derive(Default)]
struct Cache {
    issuer: Option<String>,
    jwks_uri: Option<String>,
    keys: Option<JwkSet>,
    last_refetch: Option<Instant>,
}

/// Validates access tokens of an OpenID Connect authority (see the module docs).
pub struct OidcTokens {
    config: OidcConfig,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for OidcTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcTokens")
            .field("authority", &self.config.authority)
            .field("audiences", &self.config.audiences)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    /// Entra app roles (`roles`), e.g. `["Supervisor"]`.
    #[serde(default)]
    roles: Option<serde_json::Value>,
}

impl OidcTokens {
    /// Builds the HTTP client. Fails when `extra_ca_pem` holds no usable certificate.
    pub fn new(config: OidcConfig) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .no_proxy()
            .user_agent(concat!("switchboard-hub/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("the CA file is not PEM certificates: {e}"))?;
            if certs.is_empty() {
                return Err("the CA file holds no certificate".into());
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the HTTPS client: {e}"))?;
        Ok(Self {
            config,
            http,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, AuthError> {
        let unreachable = |why: String| AuthError::AuthorityUnreachable(format!("{url}: {why}"));
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(unreachable(format!("HTTP {}", response.status().as_u16())));
        }
        response
            .json()
            .await
            .map_err(|_| unreachable("the answer is not JSON".into()))
    }

    /// Fetches discovery (if not cached) and the JWKS into `cache`.
    async fn refresh(&self, cache: &mut Cache) -> Result<(), AuthError> {
        if cache.jwks_uri.is_none() {
            let url = self.config.discovery_url();
            let doc = self.get_json(&url).await?;
            let field = |name: &str| {
                doc.get(name)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        AuthError::AuthorityUnreachable(format!(
                            "{url}: the OpenID configuration has no {name}"
                        ))
                    })
            };
            let (issuer, jwks_uri) = (field("issuer")?, field("jwks_uri")?);
            cache.issuer = Some(issuer);
            cache.jwks_uri = Some(jwks_uri);
        }
        let jwks_uri = cache.jwks_uri.clone().unwrap_or_default();
        let doc = self.get_json(&jwks_uri).await?;
        // Keys of types jsonwebtoken does not know are skipped rather than failing the set.
        let keys = doc
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| serde_json::from_value(k.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        cache.keys = Some(JwkSet { keys });
        tracing::info!(
            jwks = %jwks_uri,
            keys = cache.keys.as_ref().map_or(0, |k| k.keys.len()),
            "OIDC signing keys fetched"
        );
        Ok(())
    }

    /// The decoding key for `kid` and the issuer, fetching discovery/JWKS as needed.
    async fn key_for(&self, kid: Option<&str>) -> Result<(DecodingKey, String), AuthError> {
        let mut cache = self.cache.lock().await;
        let mut fetched_now = false;
        if cache.keys.is_none() {
            self.refresh(&mut cache).await?;
            fetched_now = true;
        }
        for attempt in 0..2 {
            let keys = cache
                .keys
                .as_ref()
                .map(|k| k.keys.as_slice())
                .unwrap_or(&[]);
            let found = match kid {
                Some(kid) => keys
                    .iter()
                    .find(|k| k.common.key_id.as_deref() == Some(kid)),
                // No kid: acceptable only when the authority publishes a single key.
                None if keys.len() == 1 => keys.first(),
                None => None,
            };
            if let Some(jwk) = found {
                let key = DecodingKey::from_jwk(jwk).map_err(|_| {
                    AuthError::Malformed("the authority's key is not usable".into())
                })?;
                return Ok((key, cache.issuer.clone().unwrap_or_default()));
            }
            // Unknown kid: the authority may have rotated its keys. Refetch, rate-limited.
            let may_refetch = !fetched_now
                && cache
                    .last_refetch
                    .is_none_or(|t| t.elapsed() >= self.config.min_refresh_interval);
            if attempt == 1 || !may_refetch {
                break;
            }
            cache.last_refetch = Some(Instant::now());
            self.refresh(&mut cache).await?;
            fetched_now = true;
        }
        Err(AuthError::UnknownKey(kid.unwrap_or("").to_owned()))
    }

    /// Validates an access token (see the module docs).
    pub async fn validate(&self, token: &str) -> Result<UserIdentity, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Malformed("not a valid JWT".into()))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Malformed(format!(
                "algorithm must be RS256, not {:?}",
                header.alg
            )));
        }
        let (key, issuer) = self.key_for(header.kid.as_deref()).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        // `iss` is checked below, against the discovered issuer's accepted forms.
        validation.set_audience(&self.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e
            .kind()
        {
            ErrorKind::InvalidAudience => {
                AuthError::WrongAudience(self.config.audiences.join(" or "))
            }
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            _ => AuthError::from_jwt(&e),
        })?;
        let claims = data.claims;
        let accepted = accepted_issuers(&issuer, claims.tid.as_deref(), &self.config.tenants)?;
        let iss = claims.iss.as_deref().unwrap_or_default();
        if !accepted.iter().any(|a| a == iss) {
            return Err(AuthError::WrongIssuer);
        }
        UserIdentity::from_claims(
            claims.oid,
            claims.sub,
            Some(crate::auth::roles_of(claims.roles)),
        )
    }
}

/// The Entra ID v1 token issuer host (`https://sts.windows.net/{tid}/`).
const ENTRA_V1: &str = "https://sts.windows.net/";
/// The Entra ID v2 token issuer host (`https://login.microsoftonline.com/{tid}/v2.0`).
const ENTRA_V2: &str = "https://login.microsoftonline.com/";

/// The `iss` values accepted for a token whose `tid` claim is `tid`, given the issuer the
/// authority's discovery document announced and the tenant allow-list:
///
/// - `{tenantid}` in the discovered issuer (multi-tenant Entra authority) is replaced by `tid`,
///   which must be in `tenants` (compared without regard to case);
/// - otherwise, when `tenants` is not empty and the token has a `tid`, it must be listed;
/// - an Entra issuer is accepted in both forms for the same tenant: v1
///   `https://sts.windows.net/{tid}/` and v2 `https://login.microsoftonline.com/{tid}/v2.0`.
///
/// Any other issuer is accepted exactly as discovered.
pub fn accepted_issuers(
    discovered: &str,
    tid: Option<&str>,
    tenants: &[String],
) -> Result<Vec<String>, AuthError> {
    let listed = |tid: &str| tenants.iter().any(|t| t.eq_ignore_ascii_case(tid));
    let expected = if discovered.contains("{tenantid}") {
        let Some(tid) = tid.filter(|t| !t.is_empty()) else {
            return Err(AuthError::TenantNotAllowed(
                "no tid claim (the authority is multi-tenant)".into(),
            ));
        };
        if tenants.is_empty() {
            return Err(AuthError::TenantNotAllowed(format!(
                "tenant {tid} is not allowed (the authority is multi-tenant and the hub has no --oidc-tenant)"
            )));
        }
        if !listed(tid) || tid.contains('/') {
            return Err(AuthError::TenantNotAllowed(format!(
                "tenant {tid} is not allowed"
            )));
        }
        discovered.replace("{tenantid}", tid)
    } else {
        if let Some(tid) = tid
            && !tenants.is_empty()
            && !listed(tid)
        {
            return Err(AuthError::TenantNotAllowed(format!(
                "tenant {tid} is not allowed"
            )));
        }
        discovered.to_owned()
    };
    let mut accepted = vec![expected.clone()];
    if let Some(tenant) = expected
        .strip_prefix(ENTRA_V2)
        .and_then(|rest| rest.strip_suffix("/v2.0"))
        .filter(|t| !t.is_empty() && !t.contains('/'))
    {
        accepted.push(format!("{ENTRA_V1}{tenant}/"));
    } else if let Some(tenant) = expected
        .strip_prefix(ENTRA_V1)
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|t| !t.is_empty() && !t.contains('/'))
    {
        accepted.push(format!("{ENTRA_V2}{tenant}/v2.0"));
    }
    Ok(accepted)
}

/// The error and its sources, joined (reqwest's top-level text alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    let mut depth = 0;
    while let Some(s) = source
        && depth < 4
    {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
        depth += 1;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    #[test]
    fn a_single_tenant_v2_issuer_also_accepts_the_v1_form() {
        let v2 = format!("{ENTRA_V2}{TID}/v2.0");
        let got = accepted_issuers(&v2, Some(TID), &[]).unwrap();
        assert_eq!(got, vec![v2.clone(), format!("{ENTRA_V1}{TID}/")]);
        let v1 = format!("{ENTRA_V1}{TID}/");
        assert_eq!(accepted_issuers(&v1, None, &[]).unwrap(), vec![v1, v2]);
    }

    #[test]
    fn a_multi_tenant_placeholder_needs_a_listed_tid() {
        let d = format!("{ENTRA_V2}{{tenantid}}/v2.0");
        let tenants = vec![TID.to_uppercase()];
        let got = accepted_issuers(&d, Some(TID), &tenants).unwrap();
        assert_eq!(got[0], format!("{ENTRA_V2}{TID}/v2.0"));
        assert!(accepted_issuers(&d, Some("other"), &tenants).is_err());
        assert!(accepted_issuers(&d, None, &tenants).is_err());
        assert!(accepted_issuers(&d, Some(TID), &[]).is_err());
    }

    #[test]
    fn other_issuers_are_exact() {
        let got = accepted_issuers("https://idp.example/realm", Some("x"), &[]).unwrap();
        assert_eq!(got, vec!["https://idp.example/realm".to_owned()]);
    }
}
