//! Hub messages, the unit both hub protocols carry.
//!
//! Follows `HubProtocol.md` ("Message Types") in dotnet/aspnetcore `src/SignalR/docs/specs/`:
//! every message has a numeric `type` from 1 to 9. Arguments, results and stream items are kept as
//! [`serde_json::Value`] so that one message model serves the JSON and the MessagePack protocols.

use serde_json::Value;

use crate::error::ProtocolError;

/// The numeric `type` of each hub message (`HubProtocol.md`, "Message Types").
pub mod message_type {
    /// Invocation: call a method on the other side (blocking with an id, or not).
    pub const INVOCATION: u8 = 1;
    /// StreamItem: one item of a streaming result.
    pub const STREAM_ITEM: u8 = 2;
    /// Completion: the result, error or end of an invocation or stream.
    pub const COMPLETION: u8 = 3;
    /// StreamInvocation: call a method that streams its result.
    pub const STREAM_INVOCATION: u8 = 4;
    /// CancelInvocation: stop a stream invocation.
    pub const CANCEL_INVOCATION: u8 = 5;
    /// Ping: keep-alive, no payload.
    pub const PING: u8 = 6;
    /// Close: the sender is closing the connection.
    pub const CLOSE: u8 = 7;
    /// Ack: stateful reconnect acknowledgement of received messages.
    pub const ACK: u8 = 8;
    /// Sequence: stateful reconnect, the id of the next message after a reconnect.
    pub const SEQUENCE: u8 = 9;
}

/// How an invocation ended: `Completion` carries either a `result`, an `error`, or neither
/// (a void method). `HubProtocol.md`, "Completion Message Encoding".
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionOutcome {
    /// The method returned nothing (no `result`, no `error` field).
    Void,
    /// The method returned a value (which may be JSON `null`).
    Result(Value),
    /// The method failed with this message.
    Error(String),
}

/// One SignalR hub message (`HubProtocol.md`, types 1–9).
#[derive(Debug, Clone, PartialEq)]
pub enum HubMessage {
    /// Type 1. `invocation_id` is `None` for a non-blocking call (`send`).
    Invocation {
        invocation_id: Option<String>,
        target: String,
        arguments: Vec<Value>,
        stream_ids: Vec<String>,
    },
    /// Type 2.
    StreamItem { invocation_id: String, item: Value },
    /// Type 3.
    Completion {
        invocation_id: String,
        outcome: CompletionOutcome,
    },
    /// Type 4.
    StreamInvocation {
        invocation_id: String,
        target: String,
        arguments: Vec<Value>,
        stream_ids: Vec<String>,
    },
    /// Type 5.
    CancelInvocation { invocation_id: String },
    /// Type 6.
    Ping,
    /// Type 7. `allow_reconnect` is false unless the sender says otherwise.
    Close {
        error: Option<String>,
        allow_reconnect: bool,
    },
    /// Type 8. The highest sequence id received so far.
    Ack { sequence_id: u64 },
    /// Type 9. The sequence id of the next message the sender will (re)send.
    Sequence { sequence_id: u64 },
}

impl HubMessage {
    /// A non-blocking invocation of `target` (the `send` of the official clients).
    pub fn send(target: impl Into<String>, arguments: Vec<Value>) -> Self {
        HubMessage::Invocation {
            invocation_id: None,
            target: target.into(),
            arguments,
            stream_ids: Vec::new(),
        }
    }

    /// The numeric message type of this message (see [`message_type`]).
    pub fn type_id(&self) -> u8 {
        use message_type::*;
        match self {
            HubMessage::Invocation { .. } => INVOCATION,
            HubMessage::StreamItem { .. } => STREAM_ITEM,
            HubMessage::Completion { .. } => COMPLETION,
            HubMessage::StreamInvocation { .. } => STREAM_INVOCATION,
            HubMessage::CancelInvocation { .. } => CANCEL_INVOCATION,
            HubMessage::Ping => PING,
            HubMessage::Close { .. } => CLOSE,
            HubMessage::Ack { .. } => ACK,
            HubMessage::Sequence { .. } => SEQUENCE,
        }
    }

    /// Whether stateful reconnect counts this message in its sequence: every message except
    /// Ping, Close, Ack and Sequence (`HubProtocol.md`, "Sequence Message").
    pub fn is_sequenced(&self) -> bool {
        !matches!(
            self,
            HubMessage::Ping
                | HubMessage::Close { .. }
                | HubMessage::Ack { .. }
                | HubMessage::Sequence { .. }
        )
    }
}

/// A decoded message's `type` field (`None` when absent, `Some(None)` when not an unsigned
/// integer) → the message type, or `Ok(None)` for one too large to be known (ignored, as the
/// official protocols do with types they do not know).
pub(crate) fn message_kind(field: Option<Option<u64>>) -> Result<Option<u8>, ProtocolError> {
    let kind = field
        .ok_or(ProtocolError::MissingField("type"))?
        .ok_or(ProtocolError::InvalidField("type"))?;
    Ok(u8::try_from(kind).ok())
}
