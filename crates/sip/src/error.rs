//! Errors of the SIP core. Each variant says what was wrong and where, so a malformed message
//! can be logged (and answered with `400`) without losing the connection.

use thiserror::Error;

/// A message, header or URI that does not follow the RFC 3261 §25 grammar, or a message that
/// breaks a rule of RFC 3261 above the grammar (checked by [`crate::Message::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The input ends before the blank line that closes the header section.
    #[error("incomplete message: no blank line after the headers")]
    Incomplete,
    /// The start line and headers are not UTF-8.
    #[error("the start line and headers are not valid UTF-8")]
    NotUtf8,
    /// The Request-Line or Status-Line is malformed (RFC 3261 §7.1, §7.2).
    #[error("malformed start line: {0}")]
    StartLine(String),
    /// The SIP-Version is not `SIP/2.0` (RFC 3261 §7.1).
    #[error("unsupported SIP version `{0}` (only SIP/2.0)")]
    Version(String),
    /// The Status-Code is not three digits (RFC 3261 §7.2).
    #[error("status code `{0}` is not three digits")]
    StatusCode(String),
    /// A header line has no `name:` (RFC 3261 §7.3).
    #[error("malformed header line `{0}`")]
    HeaderLine(String),
    /// A header's value does not follow its grammar.
    #[error("invalid {name} header: {reason}")]
    Header {
        /// The header's canonical name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header the message must carry is absent (RFC 3261 §8.1.1).
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A URI does not follow RFC 3261 §19.1 / §25.1.
    #[error("invalid URI `{uri}`: {reason}")]
    Uri {
        /// The URI text as received.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Content-Length says more bytes than arrived (RFC 3261 §18.3).
    #[error("Content-Length is {declared} but the body has only {actual} bytes")]
    BodyTooShort {
        /// The declared length.
        declared: usize,
        /// The bytes present after the blank line.
        actual: usize,
    },
    /// A semantic rule of RFC 3261 is broken (found by [`crate::Message::validate`]).
    #[error("{0}")]
    Semantic(String),
}

impl ParseError {
    pub(crate) fn header(name: &str, reason: impl Into<String>) -> Self {
        ParseError::Header {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn uri(uri: &str, reason: impl Into<String>) -> Self {
        ParseError::Uri {
            uri: uri.to_owned(),
            reason: reason.into(),
        }
    }
}
