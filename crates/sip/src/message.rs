//! SIP messages: parsing (RFC 3261 §7, §25) and serialization.
//!
//! [`Message::parse`] takes one message as it arrives in a WebSocket frame (RFC 7118 §5: one
//! message per frame). It unfolds header lines, expands compact names, splits the list headers
//! a UA reads (Via, Contact, Route, Record-Route) into one entry per value, checks the grammar
//! of every header the core understands, and takes `Content-Length` bytes of body (extra
//! octets after it are ignored as RFC 3261 §18.3 says for datagrams; a missing
//! Content-Length takes the rest of the frame). [`Message::validate`] adds the checks that sit
//! above the grammar (CSeq method, single-valued headers).

use std::fmt;

use crate::error::ParseError;
use crate::header::{CSeq, Method, NameAddr, Via, parse_bounded};
use crate::syntax::{is_token, is_word_char, is_ws, split_top};
use crate::uri::Uri;

/// Long names of the compact forms (RFC 3261 §7.3.3, RFC 3515, RFC 3892, RFC 6665, RFC 4028).
const COMPACT: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("r", "Refer-To"),
    ("b", "Referred-By"),
    ("o", "Event"),
    ("u", "Allow-Events"),
    ("x", "Session-Expires"),
];

/// Canonical spelling of the headers the core knows.
const KNOWN: &[&str] = &[
    "Accept",
    "Allow",
    "Authorization",
    "Call-ID",
    "Contact",
    "Content-Disposition",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Event",
    "Expires",
    "From",
    "Max-Forwards",
    "Min-Expires",
    "Path",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Replaces",
    "Require",
    "Retry-After",
    "Route",
    "Server",
    "Service-Route",
    "Subject",
    "Subscription-State",
    "Supported",
    "To",
    "User-Agent",
    "Via",
    "WWW-Authenticate",
];

/// Headers whose comma-separated values are split into separate entries.
const LISTS: &[&str] = &[
    "Via",
    "Contact",
    "Route",
    "Record-Route",
    "Path",
    "Service-Route",
];

/// The canonical name of header `name` (compact forms expanded, known names re-cased).
pub fn canonical_name(name: &str) -> String {
    if name.len() == 1
        && let Some((_, long)) = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(name))
    {
        return (*long).to_owned();
    }
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .map(|k| (*k).to_owned())
        .unwrap_or_else(|| name.to_owned())
}

/// One header line, unfolded, name canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical name ([`canonical_name`]).
    pub name: String,
    /// The value with folding replaced by single spaces, trimmed.
    pub value: String,
}

/// The headers of a message, in order. Names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// The first value of `name`.
    pub fn get<'a>(&'a self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push(Header {
            name: canonical_name(name),
            value: value.into(),
        });
    }

    /// Replaces every `name` with one value (appended where the first one was, or at the end).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .0
            .iter()
            .position(|h| h.name.eq_ignore_ascii_case(name))
        {
            Some(i) => {
                self.0[i].value = value;
                let mut seen = 0;
                self.0.retain(|h| {
                    if h.name.eq_ignore_ascii_case(name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }

    /// Whether `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every Via, top first.
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        self.all("Via")
            .map(|v| Via::parse(v).map_err(|e| ParseError::header("Via", e)))
            .collect()
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let v = self.get("Via").ok_or(ParseError::MissingHeader("Via"))?;
        Via::parse(v).map_err(|e| ParseError::header("Via", e))
    }

    /// From.
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        self.name_addr("From")
    }

    /// To.
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        self.name_addr("To")
    }

    fn name_addr(&self, name: &'static str) -> Result<NameAddr, ParseError> {
        let v = self.get(name).ok_or(ParseError::MissingHeader(name))?;
        NameAddr::parse(v).map_err(|e| ParseError::header(name, e))
    }

    /// Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        self.get("Call-ID")
            .ok_or(ParseError::MissingHeader("Call-ID"))
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        let v = self.get("CSeq").ok_or(ParseError::MissingHeader("CSeq"))?;
        CSeq::parse(v).map_err(|e| ParseError::header("CSeq", e))
    }

    /// Every value of a name-addr list header (`Contact`, `Route`, `Record-Route`, ...).
    pub fn name_addrs(&self, name: &str) -> Result<Vec<NameAddr>, ParseError> {
        self.all(name)
            .filter(|v| *v != "*")
            .map(|v| NameAddr::parse(v).map_err(|e| ParseError::header(name, e)))
            .collect()
    }

    /// Expires in seconds, when present.
    pub fn expires(&self) -> Option<u32> {
        self.get("Expires")
            .and_then(|v| parse_bounded(v, u32::MAX as u64).ok())
    }

    /// Whether an option tag is in a comma list header (`Supported`, `Require`).
    pub fn has_option(&self, header: &str, tag: &str) -> bool {
        self.all(header)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim_matches(is_ws).eq_ignore_ascii_case(tag))
    }

    /// The media type of `Content-Type`, lower-cased, without parameters.
    pub fn content_type(&self) -> Option<String> {
        self.get("Content-Type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim_matches(is_ws)
                .to_ascii_lowercase()
        })
    }

    fn write(&self, out: &mut String, body_len: usize) {
        for h in &self.0 {
            if h.name.eq_ignore_ascii_case("Content-Length") {
                continue;
            }
            out.push_str(&h.name);
            out.push_str(": ");
            out.push_str(&h.value);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {body_len}\r\n\r\n"));
    }
}

/// A request (RFC 3261 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI.
    pub uri: Uri,
    /// Headers in order.
    pub headers: Headers,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

/// A response (RFC 3261 §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The three-digit status code (100–699).
    pub code: u16,
    /// The reason phrase (may be empty).
    pub reason: String,
    /// Headers in order.
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// Parses one message (see the module docs). Errors name the offending part.
    pub fn parse(input: &[u8]) -> Result<Message, ParseError> {
        // RFC 3261 §7.5: empty lines before the start line are ignored.
        let mut start = 0;
        while input[start..].starts_with(b"\r\n") {
            start += 2;
        }
        let input = &input[start..];
        let (head_end, body_start) = find_head_end(input).ok_or(ParseError::Incomplete)?;
        let head = std::str::from_utf8(&input[..head_end]).map_err(|_| ParseError::NotUtf8)?;
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let start_line = lines.next().unwrap_or("");
        // Unfold (RFC 3261 §7.3.1): a line starting with SP/HT continues the previous one.
        let mut raw: Vec<String> = Vec::new();
        for line in lines {
            if line.starts_with(is_ws) {
                let last = raw
                    .last_mut()
                    .ok_or_else(|| ParseError::HeaderLine(line.to_owned()))?;
                last.push(' ');
                last.push_str(line.trim_start_matches(is_ws));
            } else {
                raw.push(line.to_owned());
            }
        }
        let mut headers = Headers::default();
        for line in &raw {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ParseError::HeaderLine(line.clone()))?;
            let name = name.trim_end_matches(is_ws);
            if !is_token(name) {
                return Err(ParseError::HeaderLine(line.clone()));
            }
            let name = canonical_name(name);
            let value = value.trim_matches(is_ws);
            if LISTS.iter().any(|l| l.eq_ignore_ascii_case(&name)) {
                for part in split_top(value, ',') {
                    let part = part.trim_matches(is_ws);
                    if part.is_empty() {
                        return Err(ParseError::header(&name, "empty value in list"));
                    }
                    headers.push(&name, part);
                }
            } else {
                headers.push(&name, value);
            }
        }
        check_headers(&headers)?;
        let rest = &input[body_start..];
        let body = match headers.get("Content-Length") {
            Some(v) => {
                let declared = parse_bounded(v, u32::MAX as u64)
                    .map_err(|e| ParseError::header("Content-Length", e))?
                    as usize;
                if declared > rest.len() {
                    return Err(ParseError::BodyTooShort {
                        declared,
                        actual: rest.len(),
                    });
                }
                rest[..declared].to_vec()
            }
            None => rest.to_vec(),
        };
        if let Some(status) = start_line.strip_prefix_ci("SIP/") {
            let mut parts = status.splitn(3, ' ');
            let version = parts.next().unwrap_or("");
            if version != "2.0" {
                return Err(ParseError::Version(format!("SIP/{version}")));
            }
            let code = parts.next().unwrap_or("");
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) || code.starts_with('0')
            {
                return Err(ParseError::StatusCode(code.to_owned()));
            }
            let reason = parts
                .next()
                .ok_or_else(|| ParseError::StartLine("missing SP after the status code".into()))?;
            if reason.contains(['\r', '\n']) {
                return Err(ParseError::StartLine("line break in reason phrase".into()));
            }
            Ok(Message::Response(Response {
                code: code
                    .parse()
                    .map_err(|_| ParseError::StatusCode(code.to_owned()))?,
                reason: reason.to_owned(),
                headers,
                body,
            }))
        } else {
            let parts: Vec<&str> = start_line.split(' ').collect();
            if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
                return Err(ParseError::StartLine(format!(
                    "`{start_line}`: a Request-Line is Method SP Request-URI SP SIP-Version, single spaces, nothing after"
                )));
            }
            let method = Method::parse(parts[0]).map_err(ParseError::StartLine)?;
            let version = parts[2];
            if !version.eq_ignore_ascii_case("SIP/2.0") {
                return Err(ParseError::Version(version.to_owned()));
            }
            if parts[1].starts_with('<') {
                return Err(ParseError::uri(
                    parts[1],
                    "a Request-URI is not enclosed in <>",
                ));
            }
            let uri = Uri::parse(parts[1])?;
            if let Uri::Sip(u) = &uri
                && !u.headers.is_empty()
            {
                return Err(ParseError::uri(
                    parts[1],
                    "headers are not allowed in a Request-URI (RFC 3261 §19.1.1)",
                ));
            }
            Ok(Message::Request(Request {
                method,
                uri,
                headers,
                body,
            }))
        }
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// Checks the rules above the grammar (RFC 3261 §8.1.1, §20; RFC 4475 §3.1.2.17–18):
    /// the CSeq method of a request equals its method; Call-ID, CSeq, From, To,
    /// Max-Forwards and Content-Length appear at most once; a request has Max-Forwards.
    pub fn validate(&self) -> Result<(), ParseError> {
        let headers = self.headers();
        for single in [
            "Call-ID",
            "CSeq",
            "From",
            "To",
            "Max-Forwards",
            "Content-Length",
        ] {
            if headers.all(single).count() > 1 {
                return Err(ParseError::Semantic(format!(
                    "{single} appears more than once"
                )));
            }
        }
        if let Message::Request(r) = self {
            let cseq = headers.cseq()?;
            if cseq.method != r.method {
                return Err(ParseError::Semantic(format!(
                    "CSeq method {} does not match the request method {} (RFC 3261 §8.1.1.5)",
                    cseq.method, r.method
                )));
            }
            if !headers.has("Max-Forwards") {
                return Err(ParseError::MissingHeader("Max-Forwards"));
            }
        }
        Ok(())
    }

    /// The message as bytes (see [`Request::to_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

trait StripPrefixCi {
    fn strip_prefix_ci(&self, prefix: &str) -> Option<&str>;
}

impl StripPrefixCi for str {
    fn strip_prefix_ci(&self, prefix: &str) -> Option<&str> {
        (self.len() >= prefix.len()
            && self.is_char_boundary(prefix.len())
            && self[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &self[prefix.len()..])
    }
}

/// End of the header section and start of the body: the first empty line (CRLF CRLF, or bare
/// LF LF from lenient senders).
fn find_head_end(input: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'\n' {
            if input[i + 1..].starts_with(b"\r\n") {
                return Some((i, i + 3));
            }
            if input[i + 1..].starts_with(b"\n") {
                return Some((i, i + 2));
            }
        }
        i += 1;
    }
    None
}

/// Grammar checks of the headers the core knows; the rest are kept as opaque text.
fn check_headers(headers: &Headers) -> Result<(), ParseError> {
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if !headers.has(name) {
            return Err(ParseError::MissingHeader(match name {
                "Via" => "Via",
                "From" => "From",
                "To" => "To",
                "Call-ID" => "Call-ID",
                _ => "CSeq",
            }));
        }
    }
    headers.vias()?;
    headers.from()?;
    headers.to()?;
    for call_id in headers.all("Call-ID") {
        let ok = !call_id.is_empty()
            && call_id.split('@').count() <= 2
            && call_id
                .split('@')
                .all(|w| !w.is_empty() && w.chars().all(is_word_char));
        if !ok {
            return Err(ParseError::header(
                "Call-ID",
                format!("`{call_id}` is not word[@word]"),
            ));
        }
    }
    for v in headers.all("CSeq") {
        CSeq::parse(v).map_err(|e| ParseError::header("CSeq", e))?;
    }
    for v in headers.all("Max-Forwards") {
        parse_bounded(v, 255).map_err(|e| ParseError::header("Max-Forwards", e))?;
    }
    for v in headers.all("Content-Length") {
        parse_bounded(v, u32::MAX as u64).map_err(|e| ParseError::header("Content-Length", e))?;
    }
    for v in headers.all("Expires") {
        parse_bounded(v, u32::MAX as u64).map_err(|e| ParseError::header("Expires", e))?;
    }
    for name in ["Contact", "Route", "Record-Route", "Refer-To"] {
        headers.name_addrs(name)?;
    }
    for v in headers.all("Date") {
        check_date(v).map_err(|e| ParseError::header("Date", e))?;
    }
    Ok(())
}

/// `rfc1123-date` (RFC 3261 §20.17): `Sun, 06 Nov 1994 08:49:37 GMT`; the zone is always GMT.
fn check_date(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split(' ').collect();
    let days = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let time_ok = |t: &str| {
        let p: Vec<&str> = t.split(':').collect();
        p.len() == 3 && p.iter().all(|x| digits(x, 2))
    };
    if parts.len() == 6
        && days.contains(&parts[0])
        && digits(parts[1], 2)
        && months.contains(&parts[2])
        && digits(parts[3], 4)
        && time_ok(parts[4])
    {
        if parts[5] == "GMT" {
            Ok(())
        } else {
            Err(format!(
                "time zone `{}` (a SIP Date is always GMT)",
                parts[5]
            ))
        }
    } else {
        Err(format!("`{v}` is not an RFC 1123 date"))
    }
}

/// A message as sent: `start_line` (with its CRLF), the headers, `Content-Length` (always,
/// computed), the body.
fn wire_bytes(mut start_line: String, headers: &Headers, body: &[u8]) -> Vec<u8> {
    headers.write(&mut start_line, body.len());
    let mut bytes = start_line.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A body as text (lossy), when not empty.
fn body_text(body: &[u8]) -> Option<String> {
    (!body.is_empty()).then(|| String::from_utf8_lossy(body).into_owned())
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// The request as sent: Request-Line, headers, `Content-Length` (always, computed), body.
    pub fn to_bytes(&self) -> Vec<u8> {
        wire_bytes(
            format!("{} {} SIP/2.0\r\n", self.method, self.uri),
            &self.headers,
            &self.body,
        )
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> Option<String> {
        body_text(&self.body)
    }
}

impl Response {
    /// A response to `request` (RFC 3261 §8.2.6.2): Via, From, To, Call-ID and CSeq copied;
    /// `to_tag` is added to To when To has no tag yet and the code is above 100.
    pub fn to_request(
        request: &Request,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Response {
        let mut headers = Headers::default();
        for h in &request.headers.0 {
            if ["Via", "From", "Call-ID", "CSeq"]
                .iter()
                .any(|n| h.name.eq_ignore_ascii_case(n))
            {
                headers.0.push(h.clone());
            } else if h.name.eq_ignore_ascii_case("To") {
                let mut value = h.value.clone();
                if let (Some(tag), Ok(to)) = (to_tag, NameAddr::parse(&h.value))
                    && to.tag().is_none()
                    && code > 100
                {
                    value.push_str(";tag=");
                    value.push_str(tag);
                }
                headers.push("To", value);
            }
        }
        Response {
            code,
            reason: reason.to_owned(),
            headers,
            body: Vec::new(),
        }
    }

    /// The response as sent (see [`Request::to_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        wire_bytes(
            format!("SIP/2.0 {} {}\r\n", self.code, self.reason),
            &self.headers,
            &self.body,
        )
    }

    /// The body as text (lossy), when not empty.
    pub fn body_text(&self) -> Option<String> {
        body_text(&self.body)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

/// The default reason phrase of a status code (RFC 3261 §21).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => match code / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKnashds7;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws;ob>\r\n\
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\r\n";

    #[test]
    fn parses_and_serializes_a_request() {
        let Message::Request(r) = Message::parse(INVITE.as_bytes()).unwrap() else {
            panic!("not a request")
        };
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.body, b"v=0\r");
        assert_eq!(r.headers.all("Record-Route").count(), 2);
        assert_eq!(r.headers.top_via().unwrap().params.get("rport"), Some(""));
        let again = Message::parse(&r.to_bytes()).unwrap();
        assert_eq!(again, Message::Request(r));
    }

    #[test]
    fn compact_forms_and_folding() {
        let text = "SIP/2.0 180 Ringing\r\nv: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\n ;tag=2\r\ni: x@y\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
        let Message::Response(r) = Message::parse(text.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(r.code, 180);
        assert_eq!(r.headers.to().unwrap().tag(), Some("2"));
        assert_eq!(r.headers.call_id().unwrap(), "x@y");
    }

    #[test]
    fn errors_are_specific() {
        assert_eq!(
            Message::parse(b"INVITE sip:a@b SIP/2.0\r\n"),
            Err(ParseError::Incomplete)
        );
        let e = Message::parse(b"SIP/2.0 20 OK\r\nVia: SIP/2.0/WS a;branch=z9hG4bK1\r\nFrom: <sip:a@b>\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n");
        assert_eq!(e, Err(ParseError::StatusCode("20".into())));
    }

    #[test]
    fn response_to_request_copies_headers() {
        let Message::Request(r) = Message::parse(INVITE.as_bytes()).unwrap() else {
            panic!()
        };
        let resp = Response::to_request(&r, 180, "Ringing", Some("abc"));
        assert_eq!(resp.headers.to().unwrap().tag(), Some("abc"));
        assert_eq!(resp.headers.call_id().unwrap(), "a84b4c76e66710");
        assert!(resp.headers.get("Record-Route").is_none());
    }
}
