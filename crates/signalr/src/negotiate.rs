//! Negotiate (`TransportProtocols.md`, "/negotiate"): the HTTP `POST {base}/negotiate` that comes
//! before any transport, its three kinds of answer (connection, redirect, error), and the URL
//! rules the official TypeScript client follows (`HttpConnection.ts`: `_resolveNegotiateUrl`,
//! `_createConnectUrl`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ProtocolError;

/// The newest negotiate version this implementation speaks (1: `connectionToken` is distinct
/// from `connectionId`).
pub const NEGOTIATE_VERSION: u32 = 1;

/// The official client follows at most 100 redirects before it gives up.
pub const MAX_REDIRECTS: usize = 100;

/// A transport as named in `availableTransports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransportKind {
    /// WebSockets (`TransportProtocols.md`, "WebSockets").
    WebSockets,
    /// Server-Sent Events, server to client, with POSTs the other way.
    ServerSentEvents,
    /// Long polling, both ways over HTTP.
    LongPolling,
}

impl TransportKind {
    /// The name in `availableTransports` and in logs: `WebSockets`, `ServerSentEvents`,
    /// `LongPolling` (TransportProtocols.md).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::WebSockets => "WebSockets",
            TransportKind::ServerSentEvents => "ServerSentEvents",
            TransportKind::LongPolling => "LongPolling",
        }
    }
}

/// One entry of `availableTransports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailableTransport {
    /// The transport's name; unknown names are kept out by the caller.
    pub transport: String,
    /// `Text` and/or `Binary`.
    pub transfer_formats: Vec<String>,
}

/// A negotiate answer that names a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NegotiateConnection {
    /// The public connection id (shown, logged; never used to connect in v1).
    pub connection_id: String,
    /// v1 only: the secret id the transport connects with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_token: Option<String>,
    /// 0 when absent.
    #[serde(default)]
    pub negotiate_version: u32,
    /// What the server offers.
    #[serde(default)]
    pub available_transports: Vec<AvailableTransport>,
    /// Stateful reconnect accepted by the server (ASP.NET Core 8+).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_stateful_reconnect: bool,
}

impl NegotiateConnection {
    /// The id for the transport's `id` query parameter: the token in v1, the id in v0.
    pub fn connect_id(&self) -> &str {
        match (&self.connection_token, self.negotiate_version) {
            (Some(token), v) if v >= 1 => token,
            _ => &self.connection_id,
        }
    }

    /// Whether the server offers `kind` with the given transfer format (`Text` or `Binary`).
    pub fn offers(&self, kind: TransportKind, transfer_format: &str) -> bool {
        let name = kind.as_str();
        self.available_transports
            .iter()
            .any(|t| t.transport == name && t.transfer_formats.iter().any(|f| f == transfer_format))
    }
}

/// The three answers negotiate can give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiateResponse {
    /// Connect with this connection.
    Connection(NegotiateConnection),
    /// Negotiate again at `url` with `access_token` (Azure SignalR Service and its adaptors).
    Redirect {
        url: String,
        access_token: Option<String>,
    },
    /// The server refused; the text is meant for people.
    Error(String),
}

impl NegotiateResponse {
    /// Parses a negotiate body. A body that is none of the three answers is
    /// [`ProtocolError::Negotiate`].
    pub fn decode(body: &str) -> Result<Self, ProtocolError> {
        let value: Value = serde_json::from_str(body)
            .map_err(|e| ProtocolError::Negotiate(format!("invalid JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| ProtocolError::Negotiate("answer is not a JSON object".into()))?;
        if let Some(error) = object.get("error").and_then(Value::as_str) {
            return Ok(NegotiateResponse::Error(error.to_owned()));
        }
        if let Some(url) = object.get("url").and_then(Value::as_str) {
            return Ok(NegotiateResponse::Redirect {
                url: url.to_owned(),
                access_token: object
                    .get("accessToken")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
        if object.get("connectionId").and_then(Value::as_str).is_none() {
            return Err(ProtocolError::Negotiate(
                "answer has no connectionId, url or error".into(),
            ));
        }
        // Read field by field rather than through the derived `Deserialize`: the browser build
        // then carries no per-type deserializer code (the widget's download budget).
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
        let invalid =
            |what: &str| ProtocolError::Negotiate(format!("invalid connection answer: {what}"));
        let available_transports = match object.get("availableTransports") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    Some(AvailableTransport {
                        transport: item.get("transport")?.as_str()?.to_owned(),
                        transfer_formats: item
                            .get("transferFormats")?
                            .as_array()?
                            .iter()
                            .map(|f| f.as_str().map(str::to_owned))
                            .collect::<Option<_>>()?,
                    })
                })
                .collect::<Option<_>>()
                .ok_or_else(|| invalid("availableTransports"))?,
            Some(_) => return Err(invalid("availableTransports")),
        };
        Ok(NegotiateResponse::Connection(NegotiateConnection {
            connection_id: text("connectionId").unwrap_or_default(),
            connection_token: text("connectionToken"),
            negotiate_version: match object.get("negotiateVersion") {
                None | Some(Value::Null) => 0,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| invalid("negotiateVersion"))?,
            },
            available_transports,
            use_stateful_reconnect: object
                .get("useStatefulReconnect")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }))
    }

    /// The JSON body a server sends.
    pub fn to_json(&self) -> Value {
        match self {
            NegotiateResponse::Connection(c) => serde_json::to_value(c).expect("serialises"),
            NegotiateResponse::Redirect { url, access_token } => {
                serde_json::json!({ "url": url, "accessToken": access_token })
            }
            NegotiateResponse::Error(e) => serde_json::json!({ "error": e }),
        }
    }
}

/// The negotiate URL for a hub URL: `/negotiate` goes at the end of the *path*, the query is
/// kept, and `negotiateVersion=1` is added (`HttpConnection._resolveNegotiateUrl`).
///
/// `http://h/client/?hub=chat&asrs_request_id=abc` →
/// `http://h/client/negotiate?hub=chat&asrs_request_id=abc&negotiateVersion=1`.
pub fn negotiate_url(hub_url: &str) -> String {
    let (path, query) = split_query(hub_url);
    let mut url = path.to_owned();
    if !url.ends_with('/') {
        url.push('/');
    }
    url.push_str("negotiate");
    let mut url = match query {
        Some(q) if !q.is_empty() => format!("{url}?{q}"),
        _ => url,
    };
    if !query.is_some_and(|q| q.split('&').any(|p| p.starts_with("negotiateVersion="))) {
        url = append_query(&url, "negotiateVersion", &NEGOTIATE_VERSION.to_string());
    }
    url
}

/// The URL a transport connects to: the hub URL with `id={connect_id}` added.
pub fn connect_url(hub_url: &str, connect_id: &str) -> String {
    append_query(hub_url, "id", connect_id)
}

/// The WebSocket URL for an HTTP URL (`http` → `ws`, `https` → `wss`), with the access token in
/// the `access_token` query parameter as browsers cannot set headers on WebSockets.
pub fn websocket_url(url: &str, access_token: Option<&str>) -> String {
    let url = if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_owned()
    };
    match access_token {
        Some(token) => append_query(&url, "access_token", token),
        None => url,
    }
}

/// Appends `name=value` to a URL's query, percent-encoding the value as `encodeURIComponent`.
pub fn append_query(url: &str, name: &str, value: &str) -> String {
    let (base, fragment) = match url.find('#') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let sep = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    format!(
        "{base}{sep}{name}={}{fragment}",
        encode_uri_component(value)
    )
}

/// Percent-encodes like JavaScript's `encodeURIComponent` (RFC 3986 unreserved and `!'()*` kept).
pub fn encode_uri_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Resolves a possibly relative URL (`/api/negotiate`) against an absolute base
/// (`http://127.0.0.1:8080/?user=alice`): scheme and authority from the base.
pub fn resolve_url(base: &str, url: &str) -> String {
    if url.contains("://") {
        return url.to_owned();
    }
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find(['/', '?', '#'])
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    if url.starts_with('/') {
        format!("{}{}", &base[..authority_end], url)
    } else {
        let (path, _) = split_query(base);
        let dir_end = path.rfind('/').map(|i| i + 1).unwrap_or(path.len());
        let dir_end = dir_end.max(authority_end);
        let mut out = path[..dir_end].to_owned();
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(url);
        out
    }
}

fn split_query(url: &str) -> (&str, Option<&str>) {
    let url = url.split('#').next().unwrap_or(url);
    match url.find('?') {
        Some(i) => (&url[..i], Some(&url[i + 1..])),
        None => (url, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_url_keeps_the_query() {
        assert_eq!(
            negotiate_url("http://h/client/?hub=chat&asrs_request_id=abc"),
            "http://h/client/negotiate?hub=chat&asrs_request_id=abc&negotiateVersion=1"
        );
        assert_eq!(
            negotiate_url("http://h/hub"),
            "http://h/hub/negotiate?negotiateVersion=1"
        );
        assert_eq!(negotiate_url("/api"), "/api/negotiate?negotiateVersion=1");
    }

    #[test]
    fn connect_and_websocket_urls() {
        let url = connect_url("http://h/client/?hub=chat", "TOKEN");
        assert_eq!(url, "http://h/client/?hub=chat&id=TOKEN");
        assert_eq!(
            websocket_url(&url, Some("a b/+=")),
            "ws://h/client/?hub=chat&id=TOKEN&access_token=a%20b%2F%2B%3D"
        );
        assert_eq!(websocket_url("https://h/x", None), "wss://h/x");
    }

    #[test]
    fn resolves_relative_urls() {
        assert_eq!(
            resolve_url("http://127.0.0.1:8080/?user=alice", "/api"),
            "http://127.0.0.1:8080/api"
        );
        assert_eq!(
            resolve_url("http://127.0.0.1:8080/app/index.html", "api"),
            "http://127.0.0.1:8080/app/api"
        );
        assert_eq!(resolve_url("http://a/", "https://b/c"), "https://b/c");
    }

    #[test]
    fn decodes_the_three_answers() {
        let v1 = NegotiateResponse::decode(
            r#"{"connectionId":"pub","connectionToken":"secret","negotiateVersion":1,
                "availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}"#,
        )
        .unwrap();
        let NegotiateResponse::Connection(c) = v1 else {
            panic!()
        };
        assert_eq!(c.connect_id(), "secret");
        assert!(c.offers(TransportKind::WebSockets, "Text"));
        assert!(!c.offers(TransportKind::LongPolling, "Text"));

        let v0 = NegotiateResponse::decode(r#"{"connectionId":"pub","availableTransports":[]}"#)
            .unwrap();
        let NegotiateResponse::Connection(c) = v0 else {
            panic!()
        };
        assert_eq!(c.connect_id(), "pub");

        assert_eq!(
            NegotiateResponse::decode(r#"{"url":"http://x/client/?hub=h","accessToken":"t"}"#)
                .unwrap(),
            NegotiateResponse::Redirect {
                url: "http://x/client/?hub=h".into(),
                access_token: Some("t".into())
            }
        );
        assert_eq!(
            NegotiateResponse::decode(r#"{"error":"Negotiate failed"}"#).unwrap(),
            NegotiateResponse::Error("Negotiate failed".into())
        );
        assert!(NegotiateResponse::decode(r#"{"something":"else"}"#).is_err());
        assert!(NegotiateResponse::decode("<html>").is_err());
        assert!(
            NegotiateResponse::decode(
                r#"{"connectionId":"a","availableTransports":[{"transport":1}]}"#
            )
            .is_err()
        );
        assert!(
            NegotiateResponse::decode(r#"{"connectionId":"a","negotiateVersion":"1"}"#).is_err()
        );
    }

    #[test]
    fn serialises_for_servers() {
        let answer = NegotiateResponse::Connection(NegotiateConnection {
            connection_id: "a".into(),
            connection_token: Some("b".into()),
            negotiate_version: 1,
            available_transports: vec![],
            use_stateful_reconnect: false,
        });
        let text = answer.to_json().to_string();
        assert_eq!(NegotiateResponse::decode(&text).unwrap(), answer);
    }
}
