//! The handshake that opens every hub connection (`HubProtocol.md`, "Overview" and
//! "Handshake"): the client sends `{"protocol":"json","version":1}` + `0x1E`, the server answers
//! `{}` + `0x1E` or `{"error":"..."}` + `0x1E`. Both are JSON records whatever the hub protocol.

use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;
use crate::json::RECORD_SEPARATOR;

/// The client's first record: which hub protocol and version it will speak.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeRequest {
    /// `json` or `messagepack`.
    pub protocol: String,
    /// Protocol version: 1, or 2 with stateful reconnect.
    pub version: u32,
}

impl HandshakeRequest {
    /// The record to send, separator included.
    pub fn encode(&self) -> String {
        let mut text = serde_json::to_string(self).expect("handshake request serialises");
        text.push(RECORD_SEPARATOR);
        text
    }

    /// Parses the client's record (without separator), as a server does.
    pub fn decode(record: &str) -> Result<Self, ProtocolError> {
        serde_json::from_str(record)
            .map_err(|e| ProtocolError::Handshake(format!("invalid handshake request: {e}")))
    }
}

/// The server's answer: success (`{}`) or an error message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HandshakeResponse {
    /// Set when the server refused the handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HandshakeResponse {
    /// The record to send, separator included.
    pub fn encode(&self) -> String {
        let mut text = serde_json::to_string(self).expect("handshake response serialises");
        text.push(RECORD_SEPARATOR);
        text
    }

    /// Parses the server's record (without separator), as a client does. A response with
    /// `error`, or anything that is not a handshake response (e.g. a hub message with a `type`),
    /// is [`ProtocolError::Handshake`].
    pub fn decode(record: &str) -> Result<(), ProtocolError> {
        let value: serde_json::Value = serde_json::from_str(record)
            .map_err(|e| ProtocolError::Handshake(format!("invalid handshake response: {e}")))?;
        if value.get("type").is_some() {
            return Err(ProtocolError::Handshake(
                "expected a handshake response, got a hub message".into(),
            ));
        }
        match value.as_object().map(|o| o.get("error")) {
            None => Err(ProtocolError::Handshake(
                "invalid handshake response: not an object".into(),
            )),
            Some(None | Some(serde_json::Value::Null)) => Ok(()),
            Some(Some(serde_json::Value::String(error))) => {
                Err(ProtocolError::Handshake(error.clone()))
            }
            Some(Some(_)) => Err(ProtocolError::Handshake(
                "invalid handshake response: error is not a string".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{RecordBuffer, decode};
    use crate::message::HubMessage;

    #[test]
    fn handshake_and_message_in_one_frame() {
        // "{}\x1e{"type":6}\x1e": a handshake success then a ping, in one frame.
        let mut buffer = RecordBuffer::new();
        let records = buffer.push_str("{}\u{1e}{\"type\":6}\u{1e}");
        assert_eq!(records.len(), 2);
        HandshakeResponse::decode(records[0].as_ref().unwrap()).unwrap();
        assert_eq!(
            decode(records[1].as_ref().unwrap()).unwrap(),
            Some(HubMessage::Ping)
        );
    }

    #[test]
    fn request_matches_the_wire() {
        let request = HandshakeRequest {
            protocol: "json".into(),
            version: 1,
        };
        assert_eq!(
            request.encode(),
            "{\"protocol\":\"json\",\"version\":1}\u{1e}"
        );
        assert_eq!(
            HandshakeRequest::decode(r#"{"protocol":"json","version":1}"#).unwrap(),
            request
        );
        assert!(HandshakeRequest::decode(r#"{"protocol":"json"}"#).is_err());
    }

    #[test]
    fn errors_are_reported() {
        assert_eq!(
            HandshakeResponse::decode(r#"{"error":"Requested protocol 'x' is not available."}"#),
            Err(ProtocolError::Handshake(
                "Requested protocol 'x' is not available.".into()
            ))
        );
        assert!(HandshakeResponse::decode(r#"{"type":6}"#).is_err());
        assert!(HandshakeResponse::decode("nope").is_err());
        assert_eq!(HandshakeResponse::default().encode(), "{}\u{1e}");
    }
}
