//! The MessagePack hub protocol (`HubProtocol.md`, "MessagePack (MsgPack) encoding"; protocol
//! name `messagepack`, version 1, or 2 with stateful reconnect).
//!
//! Framing is the *BinaryMessageFormat* of the spec: every message is `[VarInt length][body]`,
//! the length a little-endian base-128 varint of at most 5 bytes (values up to `0x7fffffff`).
//! A WebSocket binary frame or an HTTP body may carry several messages, and on a stream
//! transport a message may arrive split across reads: [`FrameBuffer`] joins and splits them.
//!
//! Bodies are MessagePack arrays whose first element is the message type:
//!
//! ```text
//! Invocation        [1, Headers, InvocationId (str|nil), Target, [Arguments], [StreamIds]?]
//! StreamItem        [2, Headers, InvocationId, Item]
//! Completion        [3, Headers, InvocationId, ResultKind (1 error, 2 void, 3 result), Result?]
//! StreamInvocation  [4, Headers, InvocationId, Target, [Arguments], [StreamIds]?]
//! CancelInvocation  [5, Headers, InvocationId]
//! Ping              [6]
//! Close             [7, Error (str|nil), AllowReconnect?]
//! Ack               [8, SequenceId]
//! Sequence          [9, SequenceId]
//! ```
//!
//! Invocations are read with 5 elements (what the official TypeScript client writes when there
//! are no stream ids) or 6; they are written like the TypeScript client: 5 elements without
//! stream ids, 6 with. Headers must be a map of strings to strings; they are checked and
//! returned by [`decode_with_headers`], and dropped by [`decode`] (the message model carries
//! none).
//!
//! Values: arguments, results and items are [`serde_json::Value`] so that both protocols share
//! one message model. MessagePack `nil`, booleans, integers of every width, floats, strings,
//! arrays and maps (keys must be strings, or integers/booleans, which become their decimal
//! text) map to their JSON counterparts; a float that is not finite becomes `null`. MessagePack
//! `bin` and `ext` values (e.g. a .NET `byte[]` or a timestamp) become a JSON **array of byte
//! numbers** (`[1,2,3]`); the hub re-encodes such an array as a MessagePack array, not `bin`.
//! JSON integers are written in the smallest MessagePack int encoding, other numbers as `float64`.

use std::collections::BTreeMap;

use rmpv::Value as Mp;
use serde_json::{Map, Number, Value};

use crate::error::ProtocolError;
use crate::message::{CompletionOutcome, HubMessage, message_kind, message_type};

/// The protocol name sent in the handshake.
pub const PROTOCOL_NAME: &str = "messagepack";

/// The largest length the 5-byte varint of the spec can say (`0x7fffffff`).
pub const MAX_FRAME_LENGTH: usize = 0x7fff_ffff;

/// Text of the TypeScript reader for a length beyond [`MAX_FRAME_LENGTH`].
pub const TOO_BIG: &str = "Messages bigger than 2GB are not supported.";
/// Text of the TypeScript reader for a frame whose body is cut short.
pub const INCOMPLETE: &str = "Incomplete message.";

/// Nesting depth accepted in a message body; deeper bodies are [`ProtocolError::InvalidMessagePack`].
pub const MAX_DEPTH: usize = 256;

/// Hub message headers (`Headers` of the spec): a map of strings to strings.
pub type Headers = BTreeMap<String, String>;

// ----- framing ----------------------------------------------------------------------------------

/// Appends `length` as the spec's varint (7 bits a byte, low group first, high bit = more).
pub fn write_varint(out: &mut Vec<u8>, mut length: usize) {
    loop {
        let mut byte = (length & 0x7f) as u8;
        length >>= 7;
        if length > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if length == 0 {
            break;
        }
    }
}

/// Reads a varint at the start of `bytes`: `Ok(Some((length, prefix_len)))`, `Ok(None)` when
/// more bytes are needed, or [`ProtocolError::TooLarge`] beyond 5 bytes / `0x7fffffff`.
pub fn read_varint(bytes: &[u8]) -> Result<Option<(usize, usize)>, ProtocolError> {
    let mut length: u64 = 0;
    for (i, byte) in bytes.iter().enumerate() {
        if i >= 5 {
            return Err(ProtocolError::TooLarge(TOO_BIG.into()));
        }
        length |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if length > MAX_FRAME_LENGTH as u64 {
                return Err(ProtocolError::TooLarge(TOO_BIG.into()));
            }
            return Ok(Some((length as usize, i + 1)));
        }
    }
    if bytes.len() >= 5 {
        return Err(ProtocolError::TooLarge(TOO_BIG.into()));
    }
    Ok(None)
}

/// Prefixes a body with its varint length (one frame of the BinaryMessageFormat).
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    write_varint(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// Splits a complete buffer (one WebSocket message or HTTP body) into frame bodies, as the
/// TypeScript `BinaryMessageFormat.parse` does: a cut-short frame is
/// [`ProtocolError::Incomplete`].
pub fn parse_frames(bytes: &[u8]) -> Result<Vec<&[u8]>, ProtocolError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (length, prefix) =
            read_varint(rest)?.ok_or_else(|| ProtocolError::Incomplete(INCOMPLETE.into()))?;
        if rest.len() - prefix < length {
            return Err(ProtocolError::Incomplete(INCOMPLETE.into()));
        }
        out.push(&rest[prefix..prefix + length]);
        rest = &rest[prefix + length..];
    }
    Ok(out)
}

/// Accumulates bytes and yields complete frame bodies, for transports where a frame may be
/// split across reads or several frames joined in one.
///
/// A frame longer than the buffer's limit, or a malformed length, is an error after which the
/// stream cannot be re-synchronised: the buffer drops everything and reports
/// [`ProtocolError::TooLarge`]; the caller should close the connection.
#[derive(Debug)]
pub struct FrameBuffer {
    pending: Vec<u8>,
    limit: usize,
}

impl Default for FrameBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameBuffer {
    /// A buffer accepting frames up to [`MAX_FRAME_LENGTH`] bytes.
    pub fn new() -> Self {
        Self::with_limit(MAX_FRAME_LENGTH)
    }

    /// A buffer accepting frames up to `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            pending: Vec::new(),
            limit: limit.min(MAX_FRAME_LENGTH),
        }
    }

    /// Appends bytes; returns the complete frame bodies they finished (without prefixes).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            let (length, prefix) = match read_varint(rest) {
                Ok(Some(v)) => v,
                Ok(None) => break,
                Err(e) => {
                    self.pending.clear();
                    return Err(e);
                }
            };
            if length > self.limit {
                self.pending.clear();
                return Err(ProtocolError::TooLarge(format!(
                    "Message of {length} bytes exceeds the maximum message size of {} bytes",
                    self.limit
                )));
            }
            if rest.len() - prefix < length {
                break;
            }
            out.push(rest[prefix..prefix + length].to_vec());
            start += prefix + length;
        }
        self.pending.drain(..start);
        Ok(out)
    }

    /// Bytes received after the last complete frame.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

// ----- encoding ---------------------------------------------------------------------------------

/// Encodes one message as a frame (varint length prefix included), without headers.
pub fn encode(message: &HubMessage) -> Vec<u8> {
    encode_with_headers(message, &Headers::new())
}

/// Encodes one message with headers as a frame. Headers are written for the message types that
/// carry them (1–5) and ignored for the others.
pub fn encode_with_headers(message: &HubMessage, headers: &Headers) -> Vec<u8> {
    frame(&encode_body(message, headers))
}

/// Encodes one message body (no length prefix).
pub fn encode_body(message: &HubMessage, headers: &Headers) -> Vec<u8> {
    let value = to_msgpack(message, headers);
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &value).expect("writing to a Vec cannot fail");
    out
}

fn headers_value(headers: &Headers) -> Mp {
    Mp::Map(
        headers
            .iter()
            .map(|(k, v)| (Mp::from(k.as_str()), Mp::from(v.as_str())))
            .collect(),
    )
}

fn opt_str(s: &Option<String>) -> Mp {
    match s {
        Some(s) => Mp::from(s.as_str()),
        None => Mp::Nil,
    }
}

fn to_msgpack(message: &HubMessage, headers: &Headers) -> Mp {
    let kind = Mp::from(message.type_id());
    let h = || headers_value(headers);
    let items = match message {
        HubMessage::Invocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => invocation_items(
            kind,
            h(),
            opt_str(invocation_id),
            target,
            arguments,
            stream_ids,
        ),
        HubMessage::StreamInvocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => invocation_items(
            kind,
            h(),
            Mp::from(invocation_id.as_str()),
            target,
            arguments,
            stream_ids,
        ),
        HubMessage::StreamItem {
            invocation_id,
            item,
        } => vec![
            kind,
            h(),
            Mp::from(invocation_id.as_str()),
            json_to_msgpack(item),
        ],
        HubMessage::Completion {
            invocation_id,
            outcome,
        } => {
            let mut v = vec![kind, h(), Mp::from(invocation_id.as_str())];
            match outcome {
                CompletionOutcome::Error(e) => {
                    v.push(Mp::from(1));
                    v.push(Mp::from(e.as_str()));
                }
                CompletionOutcome::Void => v.push(Mp::from(2)),
                CompletionOutcome::Result(r) => {
                    v.push(Mp::from(3));
                    v.push(json_to_msgpack(r));
                }
            }
            v
        }
        HubMessage::CancelInvocation { invocation_id } => {
            vec![kind, h(), Mp::from(invocation_id.as_str())]
        }
        HubMessage::Ping => vec![kind],
        HubMessage::Close {
            error,
            allow_reconnect,
        } => {
            let mut v = vec![kind, opt_str(error)];
            if *allow_reconnect {
                v.push(Mp::Boolean(true));
            }
            v
        }
        HubMessage::Ack { sequence_id } | HubMessage::Sequence { sequence_id } => {
            vec![kind, Mp::from(*sequence_id)]
        }
    };
    Mp::Array(items)
}

fn invocation_items(
    kind: Mp,
    headers: Mp,
    id: Mp,
    target: &str,
    arguments: &[Value],
    stream_ids: &[String],
) -> Vec<Mp> {
    let mut v = vec![
        kind,
        headers,
        id,
        Mp::from(target),
        Mp::Array(arguments.iter().map(json_to_msgpack).collect()),
    ];
    if !stream_ids.is_empty() {
        v.push(Mp::Array(
            stream_ids.iter().map(|s| Mp::from(s.as_str())).collect(),
        ));
    }
    v
}

/// Converts a JSON value to MessagePack (see the module docs for the mapping).
pub fn json_to_msgpack(value: &Value) -> Mp {
    match value {
        Value::Null => Mp::Nil,
        Value::Bool(b) => Mp::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                Mp::from(i)
            } else if let Some(i) = n.as_i64() {
                Mp::from(i)
            } else {
                Mp::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => Mp::from(s.as_str()),
        Value::Array(items) => Mp::Array(items.iter().map(json_to_msgpack).collect()),
        Value::Object(object) => Mp::Map(
            object
                .iter()
                .map(|(k, v)| (Mp::from(k.as_str()), json_to_msgpack(v)))
                .collect(),
        ),
    }
}

/// Converts a MessagePack value to JSON (see the module docs for the mapping). Strings that
/// are not UTF-8 and map keys that are not strings, integers or booleans are errors.
pub fn msgpack_to_json(value: &Mp) -> Result<Value, ProtocolError> {
    Ok(match value {
        Mp::Nil => Value::Null,
        Mp::Boolean(b) => Value::Bool(*b),
        Mp::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(s)) => Value::from(s),
            _ => Value::Null,
        },
        Mp::F32(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        Mp::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Mp::String(s) => Value::String(
            s.as_str()
                .ok_or_else(|| ProtocolError::InvalidMessagePack("string is not UTF-8".into()))?
                .to_owned(),
        ),
        Mp::Binary(bytes) | Mp::Ext(_, bytes) => {
            Value::Array(bytes.iter().map(|b| Value::from(*b)).collect())
        }
        Mp::Array(items) => Value::Array(
            items
                .iter()
                .map(msgpack_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Mp::Map(entries) => {
            let mut object = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Mp::String(s) => s
                        .as_str()
                        .ok_or_else(|| {
                            ProtocolError::InvalidMessagePack("map key is not UTF-8".into())
                        })?
                        .to_owned(),
                    Mp::Integer(i) => i.to_string(),
                    Mp::Boolean(b) => b.to_string(),
                    _ => {
                        return Err(ProtocolError::InvalidMessagePack(
                            "map key is not a string".into(),
                        ));
                    }
                };
                object.insert(key, msgpack_to_json(v)?);
            }
            Value::Object(object)
        }
    })
}

// ----- decoding ---------------------------------------------------------------------------------

/// Parses one frame body (no length prefix); headers are checked and dropped.
///
/// `Ok(None)` for a well-formed message of an unknown type (ignored, as the spec asks). Errors:
/// [`ProtocolError::InvalidMessagePack`] for bytes that are not one MessagePack value (or have
/// trailing bytes, or nest deeper than [`MAX_DEPTH`]), [`ProtocolError::NotAnArray`],
/// [`ProtocolError::MissingField`]/[`ProtocolError::InvalidField`] naming the spec's element.
pub fn decode(body: &[u8]) -> Result<Option<HubMessage>, ProtocolError> {
    Ok(decode_with_headers(body)?.map(|(message, _)| message))
}

/// Parses one frame body and returns the message with its headers (empty for types 6–9).
pub fn decode_with_headers(body: &[u8]) -> Result<Option<(HubMessage, Headers)>, ProtocolError> {
    let mut reader = body;
    let value = rmpv::decode::read_value_with_max_depth(&mut reader, MAX_DEPTH)
        .map_err(|e| ProtocolError::InvalidMessagePack(e.to_string()))?;
    if !reader.is_empty() {
        return Err(ProtocolError::InvalidMessagePack(format!(
            "{} bytes after the message",
            reader.len()
        )));
    }
    from_msgpack(&value)
}

/// Parses every frame of a complete buffer (see [`parse_frames`]); each frame's result is
/// separate, so one malformed message does not hide the others.
pub fn decode_frames(
    bytes: &[u8],
) -> Result<Vec<Result<Option<HubMessage>, ProtocolError>>, ProtocolError> {
    Ok(parse_frames(bytes)?.into_iter().map(decode).collect())
}

fn from_msgpack(value: &Mp) -> Result<Option<(HubMessage, Headers)>, ProtocolError> {
    let items = match value {
        Mp::Array(items) => items,
        _ => return Err(ProtocolError::NotAnArray),
    };
    let Some(kind) = message_kind(items.first().map(Mp::as_u64))? else {
        return Ok(None);
    };
    let at = |i: usize, name: &'static str| items.get(i).ok_or(ProtocolError::MissingField(name));
    // The messages that carry headers have them at index 1.
    let headers = match kind {
        message_type::INVOCATION
        | message_type::STREAM_INVOCATION
        | message_type::STREAM_ITEM
        | message_type::COMPLETION
        | message_type::CANCEL_INVOCATION => read_headers(at(1, "headers")?)?,
        _ => Headers::new(),
    };
    let invocation_id = || string(at(2, "invocationId")?, "invocationId");
    let sequence_id = || {
        at(1, "sequenceId")?
            .as_u64()
            .ok_or(ProtocolError::InvalidField("sequenceId"))
    };
    let message = match kind {
        message_type::INVOCATION | message_type::STREAM_INVOCATION => {
            let id = opt_string(at(2, "invocationId")?, "invocationId")?;
            let target = string(at(3, "target")?, "target")?;
            let arguments = match at(4, "arguments")? {
                Mp::Array(a) => a.iter().map(msgpack_to_json).collect::<Result<_, _>>()?,
                _ => return Err(ProtocolError::InvalidField("arguments")),
            };
            let stream_ids = match items.get(5) {
                None | Some(Mp::Nil) => Vec::new(),
                Some(Mp::Array(ids)) => ids
                    .iter()
                    .map(|v| string(v, "streamIds"))
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(ProtocolError::InvalidField("streamIds")),
            };
            if kind == message_type::INVOCATION {
                HubMessage::Invocation {
                    invocation_id: id,
                    target,
                    arguments,
                    stream_ids,
                }
            } else {
                HubMessage::StreamInvocation {
                    invocation_id: id.ok_or(ProtocolError::MissingField("invocationId"))?,
                    target,
                    arguments,
                    stream_ids,
                }
            }
        }
        message_type::STREAM_ITEM => HubMessage::StreamItem {
            invocation_id: invocation_id()?,
            item: msgpack_to_json(at(3, "item")?)?,
        },
        message_type::COMPLETION => {
            let invocation_id = invocation_id()?;
            let kind = at(3, "resultKind")?
                .as_u64()
                .ok_or(ProtocolError::InvalidField("resultKind"))?;
            let outcome = match kind {
                1 => CompletionOutcome::Error(string(at(4, "error")?, "error")?),
                2 => CompletionOutcome::Void,
                3 => CompletionOutcome::Result(msgpack_to_json(at(4, "result")?)?),
                _ => return Err(ProtocolError::InvalidField("resultKind")),
            };
            HubMessage::Completion {
                invocation_id,
                outcome,
            }
        }
        message_type::CANCEL_INVOCATION => HubMessage::CancelInvocation {
            invocation_id: invocation_id()?,
        },
        message_type::PING => HubMessage::Ping,
        message_type::CLOSE => HubMessage::Close {
            error: match items.get(1) {
                None => None,
                Some(v) => opt_string(v, "error")?,
            },
            allow_reconnect: match items.get(2) {
                None | Some(Mp::Nil) => false,
                Some(Mp::Boolean(b)) => *b,
                Some(_) => return Err(ProtocolError::InvalidField("allowReconnect")),
            },
        },
        message_type::ACK => HubMessage::Ack {
            sequence_id: sequence_id()?,
        },
        message_type::SEQUENCE => HubMessage::Sequence {
            sequence_id: sequence_id()?,
        },
        _ => return Ok(None),
    };
    Ok(Some((message, headers)))
}

fn read_headers(value: &Mp) -> Result<Headers, ProtocolError> {
    match value {
        Mp::Map(entries) => entries
            .iter()
            .map(|(k, v)| Ok((string(k, "headers")?, string(v, "headers")?)))
            .collect(),
        _ => Err(ProtocolError::InvalidField("headers")),
    }
}

fn string(value: &Mp, field: &'static str) -> Result<String, ProtocolError> {
    match value {
        Mp::String(s) => s
            .as_str()
            .map(str::to_owned)
            .ok_or(ProtocolError::InvalidField(field)),
        _ => Err(ProtocolError::InvalidField(field)),
    }
}

fn opt_string(value: &Mp, field: &'static str) -> Result<Option<String>, ProtocolError> {
    match value {
        Mp::Nil => Ok(None),
        other => string(other, field).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// The vectors of the official TypeScript `MessagePackHubProtocol.writeMessage`
    /// (reference §6.2): encode gives these exact bytes and decode reads them back.
    #[test]
    fn typescript_vectors_both_ways() {
        let cases: Vec<(&str, HubMessage)> = vec![
            ("02 91 06", HubMessage::Ping),
            (
                "0c 95 01 80 a1 30 a3 41 64 64 92 28 02",
                HubMessage::Invocation {
                    invocation_id: Some("0".into()),
                    target: "Add".into(),
                    arguments: vec![json!(40), json!(2)],
                    stream_ids: vec![],
                },
            ),
            (
                "0f 95 01 80 c0 a6 4e 6f 74 69 66 79 91 a2 68 69",
                HubMessage::send("Notify", vec![json!("hi")]),
            ),
            (
                "10 96 01 80 a1 30 a6 55 70 6c 6f 61 64 90 91 a1 31",
                HubMessage::Invocation {
                    invocation_id: Some("0".into()),
                    target: "Upload".into(),
                    arguments: vec![],
                    stream_ids: vec!["1".into()],
                },
            ),
            (
                "0f 95 04 80 a1 31 a7 43 6f 75 6e 74 65 72 91 02",
                HubMessage::StreamInvocation {
                    invocation_id: "1".into(),
                    target: "Counter".into(),
                    arguments: vec![json!(2)],
                    stream_ids: vec![],
                },
            ),
            (
                "06 94 02 80 a1 31 07",
                HubMessage::StreamItem {
                    invocation_id: "1".into(),
                    item: json!(7),
                },
            ),
            (
                "07 95 03 80 a1 30 03 2a",
                HubMessage::Completion {
                    invocation_id: "0".into(),
                    outcome: CompletionOutcome::Result(json!(42)),
                },
            ),
            (
                "06 94 03 80 a1 30 02",
                HubMessage::Completion {
                    invocation_id: "0".into(),
                    outcome: CompletionOutcome::Void,
                },
            ),
            (
                "0b 95 03 80 a1 30 01 a4 62 6f 6f 6d",
                HubMessage::Completion {
                    invocation_id: "0".into(),
                    outcome: CompletionOutcome::Error("boom".into()),
                },
            ),
            (
                "05 93 05 80 a1 31",
                HubMessage::CancelInvocation {
                    invocation_id: "1".into(),
                },
            ),
            (
                "03 92 07 c0",
                HubMessage::Close {
                    error: None,
                    allow_reconnect: false,
                },
            ),
            ("03 92 08 24", HubMessage::Ack { sequence_id: 36 }),
            ("03 92 09 13", HubMessage::Sequence { sequence_id: 19 }),
        ];
        for (bytes, message) in cases {
            let bytes = hex(bytes);
            assert_eq!(encode(&message), bytes, "encode {message:?}");
            let bodies = parse_frames(&bytes).unwrap();
            assert_eq!(bodies.len(), 1);
            assert_eq!(decode(bodies[0]).unwrap(), Some(message));
        }
    }

    #[test]
    fn spec_six_element_invocation_close_and_headers() {
        let bytes = hex("11 96 01 80 a3 78 79 7a a6 6d 65 74 68 6f 64 91 2a 90");
        let body = parse_frames(&bytes).unwrap()[0];
        assert_eq!(
            decode(body).unwrap(),
            Some(HubMessage::Invocation {
                invocation_id: Some("xyz".into()),
                target: "method".into(),
                arguments: vec![json!(42)],
                stream_ids: vec![],
            })
        );
        let bytes = hex("07 93 07 a3 78 79 7a c3");
        let close = HubMessage::Close {
            error: Some("xyz".into()),
            allow_reconnect: true,
        };
        assert_eq!(
            decode(parse_frames(&bytes).unwrap()[0]).unwrap(),
            Some(close.clone())
        );
        assert_eq!(encode(&close), bytes);

        let body =
            hex("96 01 82 a1 78 a1 79 a1 7a a1 7a a3 78 79 7a a6 6d 65 74 68 6f 64 91 2a 90");
        let (message, headers) = decode_with_headers(&body).unwrap().unwrap();
        assert_eq!(message.type_id(), 1);
        assert_eq!(headers.get("x").map(String::as_str), Some("y"));
        assert_eq!(headers.get("z").map(String::as_str), Some("z"));
        let again = encode_body(&message, &headers);
        // Written like the TS client: 5 elements when there are no stream ids.
        assert_eq!(again[0], 0x95);
        assert_eq!(again[1..], body[1..body.len() - 1]);
    }

    #[test]
    fn varints_and_framing() {
        for (n, bytes) in [
            (53usize, "35"),
            (200, "c8 01"),
            (5248, "80 29"),
            (0x7fff_ffff, "ff ff ff ff 07"),
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, n);
            assert_eq!(out, hex(bytes));
            assert_eq!(read_varint(&out).unwrap(), Some((n, out.len())));
        }
        let bytes = hex("0b 68 65 6c 6c 6f 0a 77 6f 72 6c 64 02 01 02");
        let frames = parse_frames(&bytes).unwrap();
        assert_eq!(frames, vec![&b"hello\nworld"[..], &[1u8, 2][..]]);
        // Negative: a sixth varint byte, a value beyond 2 GB, a cut-short body.
        assert_eq!(
            parse_frames(&hex("80 80 80 80 80 01")),
            Err(ProtocolError::TooLarge(TOO_BIG.into()))
        );
        assert_eq!(
            parse_frames(&hex("ff ff ff ff 08")),
            Err(ProtocolError::TooLarge(TOO_BIG.into()))
        );
        assert_eq!(
            parse_frames(&hex("05 01 02")),
            Err(ProtocolError::Incomplete(INCOMPLETE.into()))
        );
    }

    #[test]
    fn frame_buffer_joins_and_splits() {
        let mut all = encode(&HubMessage::Ping);
        all.extend(encode(&HubMessage::send("Notify", vec![json!("hi")])));
        all.extend(encode(&HubMessage::Ack { sequence_id: 300 }));
        // Byte by byte.
        let mut buffer = FrameBuffer::new();
        let mut bodies = Vec::new();
        for b in &all {
            bodies.extend(buffer.push(&[*b]).unwrap());
        }
        assert_eq!(bodies.len(), 3);
        assert_eq!(
            decode(&bodies[2]).unwrap(),
            Some(HubMessage::Ack { sequence_id: 300 })
        );
        assert_eq!(buffer.pending_len(), 0);
        // All at once.
        assert_eq!(FrameBuffer::new().push(&all).unwrap().len(), 3);
        // Limits.
        let mut small = FrameBuffer::with_limit(4);
        assert!(matches!(
            small.push(&encode(&HubMessage::send("Notify", vec![]))),
            Err(ProtocolError::TooLarge(_))
        ));
        assert_eq!(small.pending_len(), 0);
    }

    #[test]
    fn values_map_both_ways() {
        let value = json!({"a": [1, -2, 3.5, null, true, "x"], "big": u64::MAX, "neg": i64::MIN});
        assert_eq!(msgpack_to_json(&json_to_msgpack(&value)).unwrap(), value);
        assert_eq!(
            msgpack_to_json(&Mp::Binary(vec![1, 2])).unwrap(),
            json!([1, 2])
        );
        assert_eq!(msgpack_to_json(&Mp::F64(f64::NAN)).unwrap(), Value::Null);
        assert_eq!(
            msgpack_to_json(&Mp::Map(vec![(Mp::from(1), Mp::Nil)])).unwrap(),
            json!({"1": null})
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let bad: Vec<Vec<u8>> = vec![
            vec![],
            hex("c1"),
            hex("06"),
            hex("90"),
            hex("91 c0"),
            hex("91 01"),
            hex("93 01 80 a1"),
            hex("95 01 01 a1 30 a3 41 64 64 90"),
            hex("95 01 80 01 a3 41 64 64 90"),
            hex("95 01 80 c0 a3 41 64 64 01"),
            hex("94 03 80 a1 30 07"),
            hex("94 03 80 a1 30 01"),
            hex("92 08 a1"),
            hex("92 06 06 06"),
            hex("93 07 c0 01"),
            hex("94 04 80 c0 a1 41"),
        ];
        for body in bad {
            let result = std::panic::catch_unwind(|| decode(&body));
            assert!(
                matches!(result, Ok(Err(_))),
                "{body:02x?} should be an error: {result:?}"
            );
        }
        // Unknown types are ignored; deep nesting is refused.
        assert_eq!(decode(&hex("91 63")).unwrap(), None);
        let mut deep = vec![0x91u8; 10_000];
        deep.push(0xc0);
        assert!(decode(&deep).is_err());
    }
}
