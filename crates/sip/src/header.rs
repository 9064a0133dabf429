//! Typed views of the headers a user agent reads and writes: name-addr (From, To, Contact,
//! Route, Record-Route, Refer-To), Via, CSeq, methods and authentication challenges.

use std::fmt;

use crate::syntax::{
    Params, is_token, is_token_char, is_ws, quote, read_quoted, split_top, unquoted_chars,
};
use crate::uri::{SipUri, Uri, split_host_port};

/// A SIP method (RFC 3261 §7.1; extension methods are any token, compared case-sensitively).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// RFC 3261.
    Invite,
    /// RFC 3261.
    Ack,
    /// RFC 3261.
    Bye,
    /// RFC 3261.
    Cancel,
    /// RFC 3261.
    Register,
    /// RFC 3261.
    Options,
    /// RFC 6086.
    Info,
    /// RFC 3515.
    Refer,
    /// RFC 6665.
    Notify,
    /// RFC 6665.
    Subscribe,
    /// RFC 3311.
    Update,
    /// RFC 3428.
    Message,
    /// RFC 3262.
    Prack,
    /// Any other token.
    Extension(String),
}

impl Method {
    /// Parses a method token (RFC 3261 §25.1 `Method`).
    pub fn parse(s: &str) -> Result<Method, String> {
        if !is_token(s) {
            return Err(format!("method `{s}` is not a token"));
        }
        Ok(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "UPDATE" => Method::Update,
            "MESSAGE" => Method::Message,
            "PRACK" => Method::Prack,
            other => Method::Extension(other.to_owned()),
        })
    }

    /// The method's name as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Update => "UPDATE",
            Method::Message => "MESSAGE",
            Method::Prack => "PRACK",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `name-addr` or `addr-spec` with header parameters (RFC 3261 §20.10, §25.1): the value of
/// From, To, Contact, Route, Record-Route, Refer-To.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted (`None` when absent or empty).
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters after the URI (`;tag=...`, `;expires=...`, `;+sip.instance=...`).
    pub params: Params,
}

impl NameAddr {
    /// Parses one `name-addr`/`addr-spec` with parameters. Follows RFC 3261 §20.10: in the
    /// `addr-spec` form (no `<>`) parameters belong to the header, and a URI containing `?`
    /// or `,` must be enclosed in `<>`. A display name is a quoted string or tokens.
    pub fn parse(s: &str) -> Result<NameAddr, String> {
        let s = s.trim_matches(is_ws);
        if let Some(open) = find_unquoted(s, '<') {
            let display_raw = s[..open].trim_matches(is_ws);
            let display = if display_raw.is_empty() {
                None
            } else if display_raw.starts_with('"') {
                let (d, rest) = read_quoted(display_raw)?;
                if !rest.trim_matches(is_ws).is_empty() {
                    return Err(format!("text after the quoted display name: `{rest}`"));
                }
                Some(d)
            } else {
                if let Some(bad) = display_raw
                    .chars()
                    .find(|c| !(is_token_char(*c) || is_ws(*c)))
                {
                    return Err(format!(
                        "character `{bad}` in an unquoted display name (quote it)"
                    ));
                }
                Some(display_raw.to_owned())
            };
            let after = &s[open + 1..];
            let close = after.find('>').ok_or("missing `>`")?;
            let uri_text = &after[..close];
            let uri = Uri::parse(uri_text).map_err(|e| e.to_string())?;
            let params = Params::parse(&after[close + 1..], true)?;
            Ok(NameAddr {
                display: display.filter(|d| !d.is_empty()),
                uri,
                params,
            })
        } else {
            if s.starts_with('"') {
                return Err(match read_quoted(s) {
                    Err(e) => e,
                    Ok(_) => "a display name needs a URI in `<>`".into(),
                });
            }
            let (uri_text, params) = match s.find(';') {
                Some(i) => (&s[..i], &s[i..]),
                None => (s, ""),
            };
            if uri_text.contains('?') || uri_text.contains(',') {
                return Err(
                    "a URI with `?` or `,` must be enclosed in `<>` (RFC 3261 §20.10)".into(),
                );
            }
            let uri = Uri::parse(uri_text.trim_end_matches(is_ws)).map_err(|e| e.to_string())?;
            let params = Params::parse(params, true)?;
            Ok(NameAddr {
                display: None,
                uri,
                params,
            })
        }
    }

    /// A name-addr without display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Params::default(),
        }
    }

    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag")
    }

    /// The SIP URI, if the URI is one.
    pub fn sip_uri(&self) -> Option<&SipUri> {
        self.uri.as_sip()
    }
}

fn find_unquoted(s: &str, target: char) -> Option<usize> {
    unquoted_chars(s)
        .find(|&(_, c)| c == target)
        .map(|(i, _)| i)
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{} ", quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// One Via value (RFC 3261 §20.42, §18.2.1 `received`, RFC 3581 `rport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The transport (`UDP`, `TCP`, `WS`, `WSS`, ...), upper-cased.
    pub transport: String,
    /// The sent-by host.
    pub host: String,
    /// The sent-by port.
    pub port: Option<u16>,
    /// Parameters: `branch`, `received`, `rport`, `maddr`, `ttl`, extensions.
    pub params: Params,
}

impl Via {
    /// Parses one Via value, allowing LWS around `/`, `;` and `=` as the grammar does.
    pub fn parse(s: &str) -> Result<Via, String> {
        let s = s.trim_matches(is_ws);
        let mut parts = s.splitn(3, '/');
        let name = parts.next().unwrap_or("").trim_matches(is_ws);
        let version = parts
            .next()
            .ok_or("missing `/` in sent-protocol")?
            .trim_matches(is_ws);
        let rest = parts
            .next()
            .ok_or("missing transport")?
            .trim_start_matches(is_ws);
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(format!("unsupported protocol `{name}/{version}`"));
        }
        let transport_end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        let transport = &rest[..transport_end];
        if transport.is_empty() {
            return Err("missing transport".into());
        }
        let rest = &rest[transport_end..];
        if !rest.starts_with(is_ws) {
            return Err("missing space before sent-by".into());
        }
        let rest = rest.trim_start_matches(is_ws);
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let sent_by = sent_by.trim_end_matches(is_ws);
        let sent_by = sent_by.replace([' ', '\t'], "");
        let (host, port) = split_host_port(&sent_by)?;
        let params = Params::parse(params, true)?;
        if params.get("branch") == Some("") {
            return Err("empty branch".into());
        }
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch")
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// CSeq (RFC 3261 §20.16): a sequence number below 2^31 and a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number.
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`; the number must be less than 2^31 (RFC 3261 §8.1.1.5).
    pub fn parse(s: &str) -> Result<CSeq, String> {
        let s = s.trim_matches(is_ws);
        let end = s.find(is_ws).ok_or("missing method")?;
        let num = &s[..end];
        let method = s[end..].trim_matches(is_ws);
        Ok(CSeq {
            seq: parse_bounded(num, (1 << 31) - 1)?,
            method: Method::parse(method)?,
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Parses `1*DIGIT` no greater than `max`.
pub fn parse_bounded(s: &str, max: u64) -> Result<u32, String> {
    let s = s.trim_matches(is_ws);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a number"));
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > 10 {
        return Err(format!("`{s}` is too large"));
    }
    let v: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| format!("`{s}` is too large"))?
    };
    if v > max {
        return Err(format!("`{s}` is larger than {max}"));
    }
    Ok(v as u32)
}

/// An authentication challenge or credentials: a scheme and its `auth-param`s (RFC 3261
/// §25.1 `challenge`/`credentials`, RFC 7616 §3.3). Parameter values are unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParams {
    /// `Digest`, or another scheme.
    pub scheme: String,
    /// `name=value` pairs with quotes removed, names as written.
    pub params: Vec<(String, String)>,
}

impl AuthParams {
    /// Parses `Scheme name=value, name="value", ...`.
    pub fn parse(s: &str) -> Result<AuthParams, String> {
        let s = s.trim_matches(is_ws);
        let end = s.find(is_ws).unwrap_or(s.len());
        let scheme = &s[..end];
        if !is_token(scheme) {
            return Err(format!("auth scheme `{scheme}` is not a token"));
        }
        let mut params = Vec::new();
        let rest = s[end..].trim_matches(is_ws);
        if !rest.is_empty() {
            for part in split_top(rest, ',') {
                let part = part.trim_matches(is_ws);
                if part.is_empty() {
                    continue;
                }
                let (n, v) = part
                    .split_once('=')
                    .ok_or_else(|| format!("auth-param `{part}` without `=`"))?;
                let n = n.trim_matches(is_ws);
                let v = v.trim_matches(is_ws);
                if !is_token(n) {
                    return Err(format!("auth-param name `{n}` is not a token"));
                }
                let v = if v.starts_with('"') {
                    let (q, rest) = read_quoted(v)?;
                    if !rest.trim_matches(is_ws).is_empty() {
                        return Err(format!("text after quoted value of `{n}`"));
                    }
                    q
                } else {
                    v.to_owned()
                };
                params.push((n.to_owned(), v));
            }
        }
        Ok(AuthParams {
            scheme: scheme.to_owned(),
            params,
        })
    }

    /// The unquoted value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.display.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(n.params.has("unknownparam"));
        assert!(n.sip_uri().unwrap().params.0.is_empty());
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@example.org >").is_err());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
        assert_eq!(
            NameAddr::parse("\"A \\\"B\\\"\" <sip:a@b>;tag=1")
                .unwrap()
                .to_string(),
            "\"A \\\"B\\\"\" <sip:a@b>;tag=1"
        );
    }

    #[test]
    fn via_with_lws_and_rport() {
        let v = Via::parse(
            "SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239"
                .replace("\r\n", "")
                .as_str(),
        )
        .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.168.255.111");
        assert_eq!(v.branch(), Some("z9hG4bK30239"));
        let v = Via::parse(
            "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKabc;rport=5060;received=192.0.2.1",
        )
        .unwrap();
        assert_eq!(v.params.get("rport"), Some("5060"));
        assert_eq!(v.params.get("received"), Some("192.0.2.1"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKabc;rport=5060;received=192.0.2.1"
        );
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/7.0/UDP c.example.com").is_err());
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(
            CSeq::parse("0009\r\n  INVITE".replace("\r\n", "").as_str())
                .unwrap()
                .seq,
            9
        );
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("fhdjkgfhdkjhgkj").is_err());
    }

    #[test]
    fn auth_params() {
        let a = AuthParams::parse(r#"Digest realm="atlanta.com", nonce="ab,c", qop="auth,auth-int", algorithm=SHA-256, stale=FALSE"#).unwrap();
        assert_eq!(a.scheme, "Digest");
        assert_eq!(a.get("nonce"), Some("ab,c"));
        assert_eq!(a.get("QOP"), Some("auth,auth-int"));
        assert_eq!(a.get("algorithm"), Some("SHA-256"));
    }
}
