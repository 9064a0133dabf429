//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616; SHA-256 for SIP by
//! RFC 8760): answers a `WWW-Authenticate` (401) or `Proxy-Authenticate` (407) challenge with
//! an `Authorization` / `Proxy-Authorization` value. `qop=auth` (and `auth-int`) with `nc`
//! and `cnonce`; without qop the RFC 2069 form.

use md5::Md5;
use sha2::{Digest as _, Sha256};

use crate::header::AuthParams;

/// A digest algorithm (RFC 7616 §3.3, RFC 8760 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5` (the default when the challenge names none).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// The algorithm token as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "MD5-SESS" => Some(Algorithm::Md5Sess),
            "SHA-256" => Some(Algorithm::Sha256),
            "SHA-256-SESS" => Some(Algorithm::Sha256Sess),
            _ => None,
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data.as_bytes())),
        }
    }

    fn hash_bytes(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data)),
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The challenge is not `Digest`.
    #[error("unsupported authentication scheme `{0}`")]
    Scheme(String),
    /// The challenge lacks `realm` or `nonce`.
    #[error("digest challenge without {0}")]
    Missing(&'static str),
    /// The algorithm is none of MD5, MD5-sess, SHA-256, SHA-256-sess.
    #[error("unsupported digest algorithm `{0}`")]
    Algorithm(String),
    /// `qop` offers neither `auth` nor `auth-int`.
    #[error("unsupported qop `{0}`")]
    Qop(String),
    /// The header value is not a challenge.
    #[error("malformed challenge: {0}")]
    Malformed(String),
}

/// A username and password for digest authentication. Kept in memory only; `Debug` hides
/// the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username (with ephemeral credentials `<expiry>:<user>`).
    pub username: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// Credentials from a username and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// A parsed `Digest` challenge (RFC 7616 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back.
    pub opaque: Option<String>,
    /// `algorithm` (MD5 when absent).
    pub algorithm: Algorithm,
    /// Offered qop values (`auth`, `auth-int`); empty for RFC 2069 servers.
    pub qop: Vec<String>,
    /// `stale=true`: the nonce expired but the credentials were right (retry silently).
    pub stale: bool,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` / `Proxy-Authenticate` value.
    pub fn parse(value: &str) -> Result<Challenge, AuthError> {
        let p = AuthParams::parse(value).map_err(AuthError::Malformed)?;
        if !p.scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::Scheme(p.scheme));
        }
        let algorithm = match p.get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a).ok_or_else(|| AuthError::Algorithm(a.to_owned()))?,
        };
        Ok(Challenge {
            realm: p
                .get("realm")
                .ok_or(AuthError::Missing("realm"))?
                .to_owned(),
            nonce: p
                .get("nonce")
                .ok_or(AuthError::Missing("nonce"))?
                .to_owned(),
            opaque: p.get("opaque").map(str::to_owned),
            algorithm,
            qop: p
                .get("qop")
                .map(|q| {
                    q.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            stale: p
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` value for `method` on `uri` (the Request-URI as sent), with
    /// client nonce `cnonce` and nonce count `nc` (1 for the first use of this nonce). `body`
    /// is hashed only for `auth-int` (chosen only when `auth` is not offered).
    pub fn respond(
        &self,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
        nc: u32,
    ) -> Result<String, AuthError> {
        let qop = if self.qop.is_empty() {
            None
        } else if self.qop.iter().any(|q| q == "auth") {
            Some("auth")
        } else if self.qop.iter().any(|q| q == "auth-int") {
            Some("auth-int")
        } else {
            return Err(AuthError::Qop(self.qop.join(",")));
        };
        let alg = self.algorithm;
        let (username, password) = (credentials.username.as_str(), credentials.password.as_str());
        let mut ha1 = alg.hash(&format!("{username}:{}:{password}", self.realm));
        if alg.is_sess() {
            ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = match qop {
            Some("auth-int") => alg.hash(&format!("{method}:{uri}:{}", alg.hash_bytes(body))),
            _ => alg.hash(&format!("{method}:{uri}")),
        };
        let nc = format!("{nc:08x}");
        let response = match qop {
            Some(q) => alg.hash(&format!("{ha1}:{}:{nc}:{cnonce}:{q}:{ha2}", self.nonce)),
            None => alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce)),
        };
        let q = crate::syntax::quote;
        let mut out = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            q(username),
            q(&self.realm),
            q(&self.nonce),
            q(uri),
            q(&response),
            alg.as_str()
        );
        if let Some(opaque) = &self.opaque {
            out.push_str(&format!(", opaque={}", q(opaque)));
        }
        if let Some(qop) = qop {
            out.push_str(&format!(", qop={qop}, nc={nc}, cnonce={}", q(cnonce)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_of(header: &str) -> String {
        AuthParams::parse(header)
            .unwrap()
            .get("response")
            .unwrap()
            .to_owned()
    }

    /// RFC 7616's and RFC 2617's example: Mufasa's GET /dir/index.html, nonce count 1.
    fn mufasa_get(c: &Challenge, password: &str, cnonce: &str) -> String {
        let credentials = Credentials::new("Mufasa", password);
        c.respond(&credentials, "GET", "/dir/index.html", b"", cnonce, 1)
            .unwrap()
    }

    /// User "u" with password "p" answers `c` for `method` `uri` with `body`.
    fn respond_as_u(
        c: &Challenge,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
        nc: u32,
    ) -> String {
        c.respond(&Credentials::new("u", "p"), method, uri, body, cnonce, nc)
            .unwrap()
    }

    /// RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5.
    #[test]
    fn rfc7616_vectors() {
        let challenge = |alg: &str| {
            format!(
                r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
            )
        };
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let sha = Challenge::parse(&challenge("SHA-256")).unwrap();
        assert_eq!(sha.algorithm, Algorithm::Sha256);
        let h = mufasa_get(&sha, "Circle of Life", cnonce);
        assert_eq!(
            response_of(&h),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(h.contains("qop=auth, nc=00000001"));
        assert!(h.contains(r#"opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#));
        let md5 = Challenge::parse(&challenge("MD5")).unwrap();
        let h = mufasa_get(&md5, "Circle of Life", cnonce);
        assert_eq!(response_of(&h), "8ca523f5e9506fed4657c9700eebdbec");
    }

    /// RFC 2617 §3.5.
    #[test]
    fn rfc2617_vector() {
        let c = Challenge::parse(r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#).unwrap();
        let h = mufasa_get(&c, "Circle Of Life", "0a4f113b");
        assert_eq!(response_of(&h), "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc2069_without_qop_and_errors() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n""#).unwrap();
        let h = respond_as_u(&c, "REGISTER", "sip:r", b"", "c", 1);
        let ha1 = Algorithm::Md5.hash("u:r:p");
        let ha2 = Algorithm::Md5.hash("REGISTER:sip:r");
        assert_eq!(
            response_of(&h),
            Algorithm::Md5.hash(&format!("{ha1}:n:{ha2}"))
        );
        assert!(!h.contains("qop"));
        assert_eq!(
            Challenge::parse(r#"Basic realm="x""#),
            Err(AuthError::Scheme("Basic".into()))
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="x", nonce="n", algorithm=SHA-512-256"#),
            Err(AuthError::Algorithm("SHA-512-256".into()))
        );
        assert_eq!(
            Challenge::parse(r#"Digest nonce="n""#),
            Err(AuthError::Missing("realm"))
        );
        let stale = Challenge::parse(r#"Digest realm="x", nonce="n", stale=TRUE"#).unwrap();
        assert!(stale.stale);
    }

    #[test]
    fn auth_int_and_sess() {
        let c = Challenge::parse(
            r#"Digest realm="r", nonce="n", qop="auth-int", algorithm=SHA-256-sess"#,
        )
        .unwrap();
        let h = respond_as_u(&c, "INVITE", "sip:b@r", b"v=0\r\n", "cn", 2);
        let a = Algorithm::Sha256;
        let ha1 = a.hash(&format!("{}:n:cn", a.hash("u:r:p")));
        let ha2 = a.hash(&format!("INVITE:sip:b@r:{}", a.hash_bytes(b"v=0\r\n")));
        assert_eq!(
            response_of(&h),
            a.hash(&format!("{ha1}:n:00000002:cn:auth-int:{ha2}"))
        );
        assert!(h.contains("algorithm=SHA-256-sess"));
    }
}
