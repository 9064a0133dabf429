//! Who signs users in: dev tokens (`POST /dev/token`), an OIDC authority ([`crate::oidc`]), or
//! both (`--dev-auth on`).

use std::sync::Arc;

use jsonwebtoken::Algorithm;

use crate::auth::{AuthError, DevTokens, UserIdentity};
use crate::oidc::OidcTokens;

/// Validates user tokens. One variant per identity provider kind.
#[derive(Debug, Clone)]
pub enum UserAuthenticator {
    /// Dev mode: tokens from `POST /dev/token`.
    Dev(DevTokens),
    /// A real identity provider (OIDC discovery, JWKS, RS256: [`crate::oidc`]); dev tokens are
    /// also accepted when `dev` is set (`--dev-auth on`).
    Oidc {
        /// The authority's validator.
        oidc: Arc<OidcTokens>,
        /// Dev sign-in alongside, if explicitly asked for.
        dev: Option<DevTokens>,
    },
}

impl UserAuthenticator {
    /// Validates a user token (signature, issuer, audience, expiry) and returns the user.
    ///
    /// Async: the OIDC validator fetches discovery and keys.
    pub async fn authenticate(&self, token: &str) -> Result<UserIdentity, AuthError> {
        match self {
            UserAuthenticator::Dev(dev) => dev.validate(token),
            UserAuthenticator::Oidc { oidc, dev } => {
                // Dev tokens are HS256; IdP tokens RS256. The header says which to try.
                let hs256 =
                    jsonwebtoken::decode_header(token).is_ok_and(|h| h.alg == Algorithm::HS256);
                match dev {
                    Some(dev) if hs256 => dev.validate(token),
                    _ => oidc.validate(token).await,
                }
            }
        }
    }

    /// The dev token issuer, when dev sign-in is on.
    pub fn dev(&self) -> Option<&DevTokens> {
        match self {
            UserAuthenticator::Dev(dev) => Some(dev),
            UserAuthenticator::Oidc { dev, .. } => dev.as_ref(),
        }
    }
}
