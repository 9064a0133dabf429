//! SIP and SIPS URIs (RFC 3261 §19.1, grammar §25.1) and other absolute URIs.

use std::fmt;

use crate::error::ParseError;
use crate::syntax::{Params, check_escaped, is_unreserved};

/// A `sip:` or `sips:` URI. User, password, parameters and headers are kept as written
/// (escaped); [`SipUri::user_unescaped`] decodes the user part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part, escaped as written (`None` without `@`).
    pub user: Option<String>,
    /// The password after `user:` (deprecated by RFC 3261 but part of the grammar).
    pub password: Option<String>,
    /// Host name, IPv4 address or bracketed IPv6 reference, as written.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
    /// `uri-parameters` (`;transport=ws;lr;ob`).
    pub params: Params,
    /// `headers` after `?` (`name=value` pairs, escaped as written).
    pub headers: Vec<(String, String)>,
}

/// A URI in a Request-URI or name-addr: SIP(S), or another scheme kept as text (`tel:`,
/// `urn:`, `http:`; RFC 3261 §19.1.6 `absoluteURI`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` / `sips:`.
    Sip(SipUri),
    /// Any other `scheme:opaque` URI.
    Other(String),
}

const USER_EXTRA: &str = "&=+$,;?/";
const PASSWORD_EXTRA: &str = "&=+$,";
const HEADER_EXTRA: &str = "[]/?:+$";

impl SipUri {
    /// Parses `sip:user:password@host:port;params?headers`. The text must not contain
    /// whitespace or `<>` (RFC 3261 §25.1 `SIP-URI`).
    pub fn parse(text: &str) -> Result<SipUri, ParseError> {
        let err = |reason: &str| ParseError::uri(text, reason);
        if text
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>')
        {
            return Err(err("whitespace or angle bracket inside the URI"));
        }
        let (secure, rest) = if let Some(r) = strip_prefix_ci(text, "sips:") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(text, "sip:") {
            (false, r)
        } else {
            return Err(err("not a sip: or sips: URI"));
        };
        // userinfo ends at the first '@': neither host, params nor headers may hold one.
        let (user, password, rest) = match rest.find('@') {
            Some(at) => {
                let userinfo = &rest[..at];
                let (user, password) = match userinfo.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(err("empty user part before `@`"));
                }
                check_escaped(user, USER_EXTRA).map_err(|e| err(&e))?;
                if let Some(p) = password {
                    check_escaped(p, PASSWORD_EXTRA).map_err(|e| err(&e))?;
                }
                (
                    Some(user.to_owned()),
                    password.map(str::to_owned),
                    &rest[at + 1..],
                )
            }
            None => (None, None, rest),
        };
        let (hostport_params, headers) = match rest.split_once('?') {
            Some((a, h)) => (a, Some(h)),
            None => (rest, None),
        };
        let (hostport, params) = match hostport_params.find(';') {
            Some(i) => (&hostport_params[..i], &hostport_params[i..]),
            None => (hostport_params, ""),
        };
        let (host, port) = split_host_port(hostport).map_err(|e| err(&e))?;
        let params = Params::parse(params, false).map_err(|e| err(&e))?;
        let mut header_list = Vec::new();
        if let Some(h) = headers {
            for pair in h.split('&') {
                let (n, v) = pair
                    .split_once('=')
                    .ok_or_else(|| err("URI header without `=`"))?;
                if n.is_empty() {
                    return Err(err("empty URI header name"));
                }
                check_escaped(n, HEADER_EXTRA).map_err(|e| err(&e))?;
                check_escaped(v, HEADER_EXTRA).map_err(|e| err(&e))?;
                header_list.push((n.to_owned(), v.to_owned()));
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers: header_list,
        })
    }

    /// A `sip:` URI with only user and host.
    pub fn new(user: Option<&str>, host: &str) -> SipUri {
        SipUri {
            secure: false,
            user: user.map(str::to_owned),
            password: None,
            host: host.to_owned(),
            port: None,
            params: Params::default(),
            headers: Vec::new(),
        }
    }

    /// The user part with `%HH` escapes decoded (lossy UTF-8).
    pub fn user_unescaped(&self) -> Option<String> {
        self.user
            .as_deref()
            .map(|u| String::from_utf8_lossy(&crate::syntax::unescape(u)).into_owned())
    }

    /// The URI without its headers (what a Request-URI or Route may carry).
    pub fn without_headers(&self) -> SipUri {
        SipUri {
            headers: Vec::new(),
            ..self.clone()
        }
    }

    /// The value of URI header `name` with escapes decoded (e.g. `Replaces` in a Refer-To).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(&crate::syntax::unescape(v)).into_owned())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// Splits and checks `host[:port]` (RFC 3261 §25.1 `hostport`).
pub(crate) fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed IPv6 reference")?;
        let inner = &rest[..end];
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("invalid IPv6 reference `[{inner}]`"));
        }
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("text after IPv6 reference")?),
        };
        (&s[..end + 2], port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if !host.starts_with('[') {
        if host.is_empty() {
            return Err("empty host".into());
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(format!("invalid host `{host}`"));
        }
    }
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("invalid port `{p}`"));
            }
            Some(
                p.parse::<u16>()
                    .map_err(|_| format!("port `{p}` out of range"))?,
            )
        }
    };
    Ok((host.to_owned(), port))
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        for (i, (n, v)) in self.headers.iter().enumerate() {
            write!(f, "{}{n}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

impl Uri {
    /// Parses a SIP(S) URI, or any `scheme:rest` absolute URI (RFC 3261 §25.1 `absoluteURI`).
    pub fn parse(text: &str) -> Result<Uri, ParseError> {
        let scheme_end = text
            .find(':')
            .ok_or_else(|| ParseError::uri(text, "no scheme"))?;
        let scheme = &text[..scheme_end];
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !scheme_ok {
            return Err(ParseError::uri(text, "invalid scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse(text).map(Uri::Sip);
        }
        let rest = &text[scheme_end + 1..];
        if rest.is_empty()
            || !rest
                .chars()
                .all(|c| is_unreserved(c) || ";?:@&=+$,/%[]#".contains(c))
        {
            return Err(ParseError::uri(text, "invalid character in absolute URI"));
        }
        Ok(Uri::Other(text.to_owned()))
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other(_) => None,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Other(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_uri() {
        let u = SipUri::parse("sips:alice:pw@[2001:db8::1]:5061;transport=ws;lr?Subject=hi&X=%20y")
            .unwrap();
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.params.get("transport"), Some("ws"));
        assert!(u.params.has("lr"));
        assert_eq!(u.header("x").as_deref(), Some(" y"));
        assert_eq!(
            u.to_string(),
            "sips:alice:pw@[2001:db8::1]:5061;transport=ws;lr?Subject=hi&X=%20y"
        );
    }

    #[test]
    fn user_with_semicolon_and_escapes() {
        let u = SipUri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(u.host, "example.com");
        let u = SipUri::parse("sip:%75se%72@example.com").unwrap();
        assert_eq!(u.user_unescaped().as_deref(), Some("user"));
    }

    #[test]
    fn rejects_bad_uris() {
        assert!(SipUri::parse("sip:user@example.com; lr").is_err());
        assert!(SipUri::parse(" sip:t.watson@example.org").is_err());
        assert!(SipUri::parse("sip:user@exa mple.com").is_err());
        assert!(SipUri::parse("sip:user@host:99999").is_err());
        assert!(SipUri::parse("sip:@host").is_err());
        assert!(Uri::parse("<sip:user@example.com>").is_err());
    }

    #[test]
    fn other_schemes() {
        assert_eq!(
            Uri::parse("tel:+15551234567").unwrap(),
            Uri::Other("tel:+15551234567".into())
        );
        assert!(Uri::parse("soap.beep://192.0.2.103:3002").is_ok());
        assert!(Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").is_ok());
    }
}
