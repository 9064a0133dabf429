//! The two hub protocols behind one interface (`HubProtocol.md`, "Overview"): which protocol a
//! connection speaks, how its messages become transport frames ([`Transmit`]), and a
//! [`MessageReader`] that turns received bytes into messages for either protocol.
//!
//! JSON messages travel in WebSocket *text* frames, MessagePack in *binary* frames (the
//! official client breaks on JSON in binary frames). The handshake is a JSON record whatever the
//! protocol.

use crate::error::ProtocolError;
use crate::json::{self, RecordBuffer};
use crate::message::HubMessage;
#[cfg(feature = "messagepack")]
use crate::msgpack::{self, FrameBuffer};

/// A hub protocol (`protocol` of the handshake request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HubProtocolKind {
    /// `json`: `0x1E`-terminated JSON records, text frames.
    #[default]
    Json,
    /// `messagepack`: varint-length-prefixed MessagePack, binary frames (feature `messagepack`).
    #[cfg(feature = "messagepack")]
    MessagePack,
}

impl HubProtocolKind {
    /// The name used in the handshake (`json`, `messagepack`).
    pub fn name(self) -> &'static str {
        match self {
            HubProtocolKind::Json => json::PROTOCOL_NAME,
            #[cfg(feature = "messagepack")]
            HubProtocolKind::MessagePack => msgpack::PROTOCOL_NAME,
        }
    }

    /// The protocol of a handshake name (case-sensitive, as ASP.NET Core matches it).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            json::PROTOCOL_NAME => Some(HubProtocolKind::Json),
            #[cfg(feature = "messagepack")]
            msgpack::PROTOCOL_NAME => Some(HubProtocolKind::MessagePack),
            _ => None,
        }
    }

    /// Whether frames of this protocol are binary (MessagePack) rather than text (JSON).
    pub fn is_binary(self) -> bool {
        self != HubProtocolKind::Json
    }

    /// Encodes one message as the transport frame this protocol sends it in.
    pub fn encode(self, message: &HubMessage) -> Transmit {
        match self {
            HubProtocolKind::Json => Transmit::Text(json::encode(message)),
            #[cfg(feature = "messagepack")]
            HubProtocolKind::MessagePack => Transmit::Binary(msgpack::encode(message)),
        }
    }
}

/// One frame to send: text (JSON records, the handshake) or binary (MessagePack frames).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Send as a WebSocket text frame (or UTF-8 body).
    Text(String),
    /// Send as a WebSocket binary frame (or binary body).
    Binary(Vec<u8>),
}

impl Transmit {
    /// The frame's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Transmit::Text(text) => text.as_bytes(),
            Transmit::Binary(bytes) => bytes,
        }
    }

    /// The frame's bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Transmit::Text(text) => text.into_bytes(),
            Transmit::Binary(bytes) => bytes,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Turns received bytes into hub messages for one protocol, across reads (records or frames
/// may be split or joined). `limit` bounds one message; a longer one (or an unfinished one
/// already longer) is [`ProtocolError::TooLarge`], after which the stream is unusable.
///
/// A read may also carry at most [`MessageReader::max_messages`] messages (default
/// [`DEFAULT_MAX_MESSAGES_PER_READ`]; empty JSON records and MessagePack frames count):
/// beyond it the read is [`ProtocolError::TooManyMessages`], also fatal. Splitting is linear in
/// the bytes read for both protocols.
#[derive(Debug)]
pub struct MessageReader {
    inner: Reader,
    limit: usize,
    max_messages: usize,
}

/// Messages one read may carry unless [`MessageReader::with_max_messages`] says otherwise:
/// 65 536, far above what a server batches into one long-polling answer.
pub const DEFAULT_MAX_MESSAGES_PER_READ: usize = 65_536;

#[derive(Debug)]
enum Reader {
    Json(RecordBuffer),
    #[cfg(feature = "messagepack")]
    MessagePack(FrameBuffer),
}

/// One result of [`MessageReader::push`]: a message, an ignored unknown type (`Ok(None)`), or a
/// message-level error (the rest of the stream goes on).
pub type ReadResult = Result<Option<HubMessage>, ProtocolError>;

impl MessageReader {
    /// A reader for `protocol` with a per-message `limit` in bytes.
    pub fn new(protocol: HubProtocolKind, limit: usize) -> Self {
        let inner = match protocol {
            HubProtocolKind::Json => Reader::Json(RecordBuffer::new()),
            #[cfg(feature = "messagepack")]
            HubProtocolKind::MessagePack => Reader::MessagePack(FrameBuffer::with_limit(limit)),
        };
        Self {
            inner,
            limit,
            max_messages: DEFAULT_MAX_MESSAGES_PER_READ,
        }
    }

    /// The same reader, taking at most `max` messages per read (see the type docs).
    pub fn with_max_messages(mut self, max: usize) -> Self {
        self.max_messages = max;
        self
    }

    /// The cap on messages per read.
    pub fn max_messages(&self) -> usize {
        self.max_messages
    }

    /// Appends received bytes. The outer error is fatal (a frame too large or unparseable
    /// framing); inner results are per message.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<ReadResult>, ProtocolError> {
        match &mut self.inner {
            Reader::Json(buffer) => {
                let mut out = Vec::new();
                let records = buffer.push_bytes(bytes);
                if buffer.separators_in_last_push() > self.max_messages {
                    return Err(ProtocolError::TooManyMessages(self.max_messages));
                }
                for record in records {
                    match record {
                        Ok(record) if record.len() > self.limit => {
                            return Err(too_large(self.limit));
                        }
                        Ok(record) => out.push(json::decode(&record)),
                        Err(e) => out.push(Err(e)),
                    }
                }
                if buffer.pending_len() > self.limit {
                    return Err(too_large(self.limit));
                }
                Ok(out)
            }
            #[cfg(feature = "messagepack")]
            Reader::MessagePack(buffer) => {
                let frames = buffer.push(bytes)?;
                if frames.len() > self.max_messages {
                    return Err(ProtocolError::TooManyMessages(self.max_messages));
                }
                Ok(frames.iter().map(|body| msgpack::decode(body)).collect())
            }
        }
    }
}

fn too_large(limit: usize) -> ProtocolError {
    ProtocolError::TooLarge(format!(
        "Message exceeds the maximum message size of {limit} bytes"
    ))
}

#[cfg(all(test, feature = "messagepack"))]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_protocols_read_split_input() {
        for kind in [HubProtocolKind::Json, HubProtocolKind::MessagePack] {
            let mut bytes = kind.encode(&HubMessage::Ping).into_bytes();
            bytes.extend(
                kind.encode(&HubMessage::send("T", vec![json!([1, "x"])]))
                    .into_bytes(),
            );
            let mut reader = MessageReader::new(kind, 1024);
            let mut got = Vec::new();
            for chunk in bytes.chunks(3) {
                got.extend(reader.push(chunk).unwrap());
            }
            assert_eq!(got.len(), 2, "{kind:?}");
            assert_eq!(got[0], Ok(Some(HubMessage::Ping)));
            assert_eq!(HubProtocolKind::from_name(kind.name()), Some(kind));
        }
        let mut reader = MessageReader::new(HubProtocolKind::Json, 4);
        assert!(reader.push(b"{\"type\":6}\x1e").is_err());
    }

    #[test]
    fn a_read_of_bare_separators_or_empty_frames_is_capped() {
        // 256 KiB of 0x1e (JSON) or 0x00 (MessagePack: empty frames): one fatal error, no
        // per-record results to log.
        for (kind, byte) in [
            (HubProtocolKind::Json, 0x1e),
            (HubProtocolKind::MessagePack, 0),
        ] {
            let mut reader = MessageReader::new(kind, 32 * 1024).with_max_messages(1024);
            assert_eq!(
                reader.push(&vec![byte; 256 * 1024]),
                Err(ProtocolError::TooManyMessages(1024)),
                "{kind:?}"
            );
            // Under the cap, the same bytes are fine (empty JSON records are skipped).
            let mut reader = MessageReader::new(kind, 32 * 1024).with_max_messages(1024);
            let results = reader.push(&[byte; 1024]).unwrap();
            match kind {
                HubProtocolKind::Json => assert!(results.is_empty()),
                HubProtocolKind::MessagePack => assert_eq!(results.len(), 1024),
            }
        }
    }
}
