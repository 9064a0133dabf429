//! The JSON hub protocol (`HubProtocol.md`, "JSON Encoding"; protocol name `json`, version 1).
//!
//! Every message is a JSON object followed by the record separator `0x1E`. A transport frame (or
//! an HTTP body for long polling and SSE) may carry several records, and a record may, on a
//! stream-oriented transport, arrive split across reads: [`RecordBuffer`] joins and splits them.

use serde_json::{Map, Value, json};

use crate::error::ProtocolError;
use crate::message::{CompletionOutcome, HubMessage, message_kind, message_type};

/// The record separator that ends every JSON message (ASCII 0x1E).
pub const RECORD_SEPARATOR: char = '\u{1e}';

/// The protocol name sent in the handshake.
pub const PROTOCOL_NAME: &str = "json";

/// Accumulates text and yields complete records (the text between record separators).
///
/// Input may be split anywhere, including inside a multi-byte character if fed as bytes
/// through [`RecordBuffer::push_bytes`]; incomplete tails stay buffered until the next push.
///
/// Work is linear in the input: each push scans only the new bytes (what is pending holds no
/// separator) and copies every byte at most once, so neither many records in one read nor one
/// record fed a byte at a time costs quadratic time ([`RecordBuffer::bytes_copied`] counts it).
/// Empty records (two separators in a row) carry no message and are skipped, silently; they
/// still count in [`RecordBuffer::separators_in_last_push`], so a reader can cap the records of
/// one read, empty ones included.
#[derive(Debug, Default)]
pub struct RecordBuffer {
    pending: Vec<u8>,
    separators: usize,
    copied: u64,
}

impl RecordBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends text; returns the complete records it finished, without separators.
    pub fn push_str(&mut self, text: &str) -> Vec<Result<String, ProtocolError>> {
        self.push_bytes(text.as_bytes())
    }

    /// Appends bytes; returns the complete non-empty records it finished, without separators.
    /// A record that is not valid UTF-8 is an error for that record only.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Vec<Result<String, ProtocolError>> {
        let mut out = Vec::new();
        self.separators = 0;
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|b| *b == 0x1e) {
            self.separators += 1;
            let piece = &rest[..end];
            rest = &rest[end + 1..];
            self.copied += piece.len() as u64;
            let record = if self.pending.is_empty() {
                if piece.is_empty() {
                    continue;
                }
                piece.to_vec()
            } else {
                self.pending.extend_from_slice(piece);
                std::mem::take(&mut self.pending)
            };
            out.push(String::from_utf8(record).map_err(|_| ProtocolError::InvalidUtf8));
        }
        self.copied += rest.len() as u64;
        self.pending.extend_from_slice(rest);
        out
    }

    /// Bytes received after the last complete record.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Record separators in the last push: the records it ended, empty ones included.
    pub fn separators_in_last_push(&self) -> usize {
        self.separators
    }

    /// Bytes copied since the buffer was made (into the pending tail or into a record): never
    /// more than the bytes pushed, whatever their shape.
    pub fn bytes_copied(&self) -> u64 {
        self.copied
    }
}

/// Encodes one message as a JSON record, record separator included.
pub fn encode(message: &HubMessage) -> String {
    let mut text = to_value(message).to_string();
    text.push(RECORD_SEPARATOR);
    text
}

/// Encodes one message as a JSON object (no record separator).
pub fn to_value(message: &HubMessage) -> Value {
    let mut object = Map::new();
    object.insert("type".into(), json!(message.type_id()));
    match message {
        HubMessage::Invocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            if let Some(id) = invocation_id {
                object.insert("invocationId".into(), json!(id));
            }
            object.insert("target".into(), json!(target));
            object.insert("arguments".into(), Value::Array(arguments.clone()));
            if !stream_ids.is_empty() {
                object.insert("streamIds".into(), json!(stream_ids));
            }
        }
        HubMessage::StreamInvocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            object.insert("invocationId".into(), json!(invocation_id));
            object.insert("target".into(), json!(target));
            object.insert("arguments".into(), Value::Array(arguments.clone()));
            if !stream_ids.is_empty() {
                object.insert("streamIds".into(), json!(stream_ids));
            }
        }
        HubMessage::StreamItem {
            invocation_id,
            item,
        } => {
            object.insert("invocationId".into(), json!(invocation_id));
            object.insert("item".into(), item.clone());
        }
        HubMessage::Completion {
            invocation_id,
            outcome,
        } => {
            object.insert("invocationId".into(), json!(invocation_id));
            match outcome {
                CompletionOutcome::Void => {}
                CompletionOutcome::Result(value) => {
                    object.insert("result".into(), value.clone());
                }
                CompletionOutcome::Error(error) => {
                    object.insert("error".into(), json!(error));
                }
            }
        }
        HubMessage::CancelInvocation { invocation_id } => {
            object.insert("invocationId".into(), json!(invocation_id));
        }
        HubMessage::Ping => {}
        HubMessage::Close {
            error,
            allow_reconnect,
        } => {
            if let Some(error) = error {
                object.insert("error".into(), json!(error));
            }
            if *allow_reconnect {
                object.insert("allowReconnect".into(), json!(true));
            }
        }
        HubMessage::Ack { sequence_id } | HubMessage::Sequence { sequence_id } => {
            object.insert("sequenceId".into(), json!(sequence_id));
        }
    }
    Value::Object(object)
}

/// Parses one record (without its separator).
///
/// Returns `Ok(None)` for a well-formed message of a type this implementation does not know,
/// which the spec asks receivers to ignore. Errors name the problem: invalid JSON, a missing or
/// mistyped field.
pub fn decode(record: &str) -> Result<Option<HubMessage>, ProtocolError> {
    let value: Value =
        serde_json::from_str(record).map_err(|e| ProtocolError::InvalidJson(e.to_string()))?;
    from_value(&value)
}

/// Parses one message from a JSON value; see [`decode`].
pub fn from_value(value: &Value) -> Result<Option<HubMessage>, ProtocolError> {
    let object = value.as_object().ok_or(ProtocolError::NotAnObject)?;
    let Some(kind) = message_kind(object.get("type").map(Value::as_u64))? else {
        return Ok(None);
    };
    let message = match kind {
        message_type::INVOCATION => HubMessage::Invocation {
            invocation_id: optional_string(object, "invocationId")?,
            target: required_string(object, "target")?,
            arguments: arguments(object)?,
            stream_ids: stream_ids(object)?,
        },
        message_type::STREAM_INVOCATION => HubMessage::StreamInvocation {
            invocation_id: required_string(object, "invocationId")?,
            target: required_string(object, "target")?,
            arguments: arguments(object)?,
            stream_ids: stream_ids(object)?,
        },
        message_type::STREAM_ITEM => HubMessage::StreamItem {
            invocation_id: required_string(object, "invocationId")?,
            item: object.get("item").cloned().unwrap_or(Value::Null),
        },
        message_type::COMPLETION => {
            let invocation_id = required_string(object, "invocationId")?;
            let outcome = match (object.get("error"), object.get("result")) {
                (Some(_), Some(_)) => return Err(ProtocolError::ResultAndError),
                (Some(error), None) => CompletionOutcome::Error(
                    error
                        .as_str()
                        .ok_or(ProtocolError::InvalidField("error"))?
                        .to_owned(),
                ),
                (None, Some(result)) => CompletionOutcome::Result(result.clone()),
                (None, None) => CompletionOutcome::Void,
            };
            HubMessage::Completion {
                invocation_id,
                outcome,
            }
        }
        message_type::CANCEL_INVOCATION => HubMessage::CancelInvocation {
            invocation_id: required_string(object, "invocationId")?,
        },
        message_type::PING => HubMessage::Ping,
        message_type::CLOSE => HubMessage::Close {
            error: optional_string(object, "error")?,
            allow_reconnect: match object.get("allowReconnect") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(ProtocolError::InvalidField("allowReconnect")),
            },
        },
        message_type::ACK => HubMessage::Ack {
            sequence_id: sequence_id(object)?,
        },
        message_type::SEQUENCE => HubMessage::Sequence {
            sequence_id: sequence_id(object)?,
        },
        _ => return Ok(None),
    };
    Ok(Some(message))
}

fn required_string(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<String, ProtocolError> {
    optional_string(object, field)?.ok_or(ProtocolError::MissingField(field))
}

fn optional_string(
    object: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ProtocolError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ProtocolError::InvalidField(field)),
    }
}

fn arguments(object: &Map<String, Value>) -> Result<Vec<Value>, ProtocolError> {
    match object.get("arguments") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(ProtocolError::InvalidField("arguments")),
    }
}

fn stream_ids(object: &Map<String, Value>) -> Result<Vec<String>, ProtocolError> {
    match object.get("streamIds") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(ProtocolError::InvalidField("streamIds"))
            })
            .collect(),
        Some(_) => Err(ProtocolError::InvalidField("streamIds")),
    }
}

fn sequence_id(object: &Map<String, Value>) -> Result<u64, ProtocolError> {
    object
        .get("sequenceId")
        .ok_or(ProtocolError::MissingField("sequenceId"))?
        .as_u64()
        .ok_or(ProtocolError::InvalidField("sequenceId"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(message: HubMessage) {
        let text = encode(&message);
        assert!(text.ends_with(RECORD_SEPARATOR));
        let decoded = decode(&text[..text.len() - 1]).unwrap().unwrap();
        assert_eq!(decoded, message);
    }

    #[test]
    fn every_message_type_roundtrips() {
        roundtrip(HubMessage::Invocation {
            invocation_id: Some("0".into()),
            target: "Add".into(),
            arguments: vec![json!(40), json!(2)],
            stream_ids: vec![],
        });
        roundtrip(HubMessage::send("Notify", vec![json!("hi")]));
        roundtrip(HubMessage::Invocation {
            invocation_id: None,
            target: "Upload".into(),
            arguments: vec![],
            stream_ids: vec!["1".into()],
        });
        roundtrip(HubMessage::StreamItem {
            invocation_id: "1".into(),
            item: json!({"n": 1}),
        });
        roundtrip(HubMessage::Completion {
            invocation_id: "1".into(),
            outcome: CompletionOutcome::Void,
        });
        roundtrip(HubMessage::Completion {
            invocation_id: "1".into(),
            outcome: CompletionOutcome::Result(Value::Null),
        });
        roundtrip(HubMessage::Completion {
            invocation_id: "1".into(),
            outcome: CompletionOutcome::Error("boom".into()),
        });
        roundtrip(HubMessage::StreamInvocation {
            invocation_id: "2".into(),
            target: "Counter".into(),
            arguments: vec![json!(2)],
            stream_ids: vec![],
        });
        roundtrip(HubMessage::CancelInvocation {
            invocation_id: "2".into(),
        });
        roundtrip(HubMessage::Ping);
        roundtrip(HubMessage::Close {
            error: Some("bye".into()),
            allow_reconnect: true,
        });
        roundtrip(HubMessage::Close {
            error: None,
            allow_reconnect: false,
        });
        roundtrip(HubMessage::Ack { sequence_id: 7 });
        roundtrip(HubMessage::Sequence { sequence_id: 8 });
    }

    #[test]
    fn reads_the_official_client_key_order() {
        // Captured from @microsoft/signalr 10.0.11 (shared/signalr-notes.md).
        let m = decode(r#"{"target":"Add","arguments":[40,2],"invocationId":"0","type":1}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            m,
            HubMessage::Invocation {
                invocation_id: Some("0".into()),
                target: "Add".into(),
                arguments: vec![json!(40), json!(2)],
                stream_ids: vec![],
            }
        );
    }

    #[test]
    fn completion_null_result_is_not_void() {
        let m = decode(r#"{"type":3,"invocationId":"0","result":null}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            m,
            HubMessage::Completion {
                invocation_id: "0".into(),
                outcome: CompletionOutcome::Result(Value::Null)
            }
        );
    }

    #[test]
    fn records_split_and_joined_across_reads() {
        let mut buffer = RecordBuffer::new();
        let a = encode(&HubMessage::Ping);
        let b = encode(&HubMessage::send("ReceiveNotification", vec![json!("é☎")]));
        let all = format!("{a}{b}");
        let bytes = all.as_bytes();
        // Feed one byte at a time, which also splits the multi-byte characters.
        let mut records = Vec::new();
        for byte in bytes {
            records.extend(buffer.push_bytes(std::slice::from_ref(byte)));
        }
        let messages: Vec<_> = records
            .into_iter()
            .map(|r| decode(&r.unwrap()).unwrap().unwrap())
            .collect();
        assert_eq!(messages[0], HubMessage::Ping);
        assert_eq!(
            messages[1],
            HubMessage::send("ReceiveNotification", vec![json!("é☎")])
        );
        assert_eq!(buffer.pending_len(), 0);

        // Two records in one read, and a third left incomplete.
        let mut buffer = RecordBuffer::new();
        let joined = format!("{a}{b}{{\"type\":");
        let records = buffer.push_str(&joined);
        assert_eq!(records.len(), 2);
        assert_eq!(buffer.pending_len(), "{\"type\":".len());
        let records = buffer.push_str("6}\u{1e}");
        assert_eq!(
            decode(records[0].as_ref().unwrap()).unwrap(),
            Some(HubMessage::Ping)
        );
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        assert!(matches!(
            decode("not json"),
            Err(ProtocolError::InvalidJson(_))
        ));
        assert_eq!(decode("[1]"), Err(ProtocolError::NotAnObject));
        assert_eq!(decode("{}"), Err(ProtocolError::MissingField("type")));
        assert_eq!(
            decode(r#"{"type":"1"}"#),
            Err(ProtocolError::InvalidField("type"))
        );
        assert_eq!(
            decode(r#"{"type":1,"arguments":[]}"#),
            Err(ProtocolError::MissingField("target"))
        );
        assert_eq!(
            decode(r#"{"type":1,"target":"x","arguments":{}}"#),
            Err(ProtocolError::InvalidField("arguments"))
        );
        assert_eq!(
            decode(r#"{"type":3,"invocationId":"1","result":1,"error":"x"}"#),
            Err(ProtocolError::ResultAndError)
        );
        assert_eq!(
            decode(r#"{"type":8}"#),
            Err(ProtocolError::MissingField("sequenceId"))
        );
        let mut buffer = RecordBuffer::new();
        let records = buffer.push_bytes(&[0xff, 0xfe, 0x1e]);
        assert_eq!(records, vec![Err(ProtocolError::InvalidUtf8)]);
    }

    #[test]
    fn framing_is_linear_and_skips_empty_records() {
        // 256 KiB of bare separators: no record, nothing pending, nothing copied.
        let mut buffer = RecordBuffer::new();
        let separators = vec![0x1e; 256 * 1024];
        assert!(buffer.push_bytes(&separators).is_empty());
        assert_eq!(buffer.separators_in_last_push(), 256 * 1024);
        assert_eq!(buffer.pending_len(), 0);
        assert_eq!(buffer.bytes_copied(), 0);

        // Many records in one read, and one long record fed a byte at a time: every byte is
        // copied at most once.
        let ping = encode(&HubMessage::Ping);
        let many = ping.repeat(20_000);
        let mut buffer = RecordBuffer::new();
        assert_eq!(buffer.push_str(&many).len(), 20_000);
        assert!(buffer.bytes_copied() <= many.len() as u64);
        let long = format!("{{\"type\":6,\"pad\":\"{}\"}}\u{1e}", "x".repeat(30_000));
        let mut buffer = RecordBuffer::new();
        let mut records = Vec::new();
        for byte in long.as_bytes() {
            records.extend(buffer.push_bytes(std::slice::from_ref(byte)));
        }
        assert_eq!(records.len(), 1);
        assert!(buffer.bytes_copied() <= long.len() as u64);
        assert_eq!(
            decode(records[0].as_ref().unwrap()),
            Ok(Some(HubMessage::Ping))
        );
    }

    #[test]
    fn unknown_types_are_ignored_not_errors() {
        assert_eq!(decode(r#"{"type":42,"x":1}"#), Ok(None));
        assert_eq!(decode(r#"{"type":100000}"#), Ok(None));
    }
}
