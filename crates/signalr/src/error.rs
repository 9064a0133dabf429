//! Errors of the sans-IO core. Every variant says what was wrong, so a malformed frame can be
//! logged and dropped without losing the rest of the connection.

use thiserror::Error;

/// A frame or record that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The record is not JSON at all.
    #[error("invalid JSON in hub message: {0}")]
    InvalidJson(String),
    /// The record is JSON but not an object.
    #[error("hub message is not a JSON object")]
    NotAnObject,
    /// A field the message type requires is absent.
    #[error("hub message is missing the field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("hub message field `{0}` has the wrong type")]
    InvalidField(&'static str),
    /// A completion may carry a result or an error, never both (`HubProtocol.md`, Completion).
    #[error("completion carries both `result` and `error`")]
    ResultAndError,
    /// A record is not valid UTF-8.
    #[error("hub message is not valid UTF-8")]
    InvalidUtf8,
    /// The handshake response reported an error, or was not a handshake response.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// A MessagePack body is not one well-formed MessagePack value (`HubProtocol.md`,
    /// "MessagePack (MsgPack) encoding").
    #[error("invalid MessagePack in hub message: {0}")]
    InvalidMessagePack(String),
    /// A MessagePack message is not an array.
    #[error("hub message is not a MessagePack array")]
    NotAnArray,
    /// A MessagePack frame says it is longer than allowed (2 GB by the spec, or the receiver's
    /// limit). The stream cannot be re-synchronised after this.
    #[error("{0}")]
    TooLarge(String),
    /// One read (a WebSocket message, an HTTP body) carried more messages than the reader's cap
    /// ([`crate::protocol::MessageReader::with_max_messages`]); empty JSON records count too.
    /// The caller should close the connection.
    #[error("Too many messages in one read: more than {0}")]
    TooManyMessages(usize),
    /// A MessagePack buffer ends inside a frame (`Incomplete message.`).
    #[error("{0}")]
    Incomplete(String),
    /// Stateful reconnect went wrong (`HubProtocol.md`, "Sequence Message"), e.g. a Sequence
    /// id beyond what was received.
    #[error("stateful reconnect: {0}")]
    Sequence(String),
    /// A negotiate response could not be used.
    #[error("negotiate failed: {0}")]
    Negotiate(String),
}
