//! The postMessage protocol (version 1) of `docs/host-protocol.md`: the `{type, messageId,
//! payload}` envelope, the commands a CRM sends (`SYNC`, `DIAL`, `ACCEPT`, `REJECT`,
//! `SET_PRESENCE`, `SET_VISIBILITY`) and the events the widget answers with (`SYNC_ACK`,
//! `INCOMING_CALL`, …).

use serde_json::{Map, Value, json};

use super::{HostKind, theme};
use crate::notification::IncomingCall;

/// Version of the postMessage protocol, sent in `SYNC_ACK`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest `messageId` or `type` accepted, in characters.
pub const MAX_ID_CHARS: usize = 100;

/// One postMessage: `{type, messageId, payload}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// `type`: the command or event name (`DIAL`, `SYNC_ACK`, …).
    pub kind: String,
    /// `messageId`: the sender's id, echoed by the answer.
    pub message_id: String,
    /// `payload`: the command's or event's fields (`{}` when absent).
    pub payload: Value,
}

/// Why a message was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The message is not a JSON object.
    NotAnObject,
    /// No `type` text of 1 to [`MAX_ID_CHARS`] characters.
    MissingType,
    /// No `messageId` text of 1 to [`MAX_ID_CHARS`] characters.
    MissingMessageId,
}

impl Envelope {
    /// Reads an envelope; `payload` defaults to `{}`.
    pub fn parse(value: &Value) -> Result<Self, EnvelopeError> {
        let o = value.as_object().ok_or(EnvelopeError::NotAnObject)?;
        let text = |k: &str| {
            o.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && s.chars().count() <= MAX_ID_CHARS)
                .map(str::to_owned)
        };
        Ok(Self {
            kind: text("type").ok_or(EnvelopeError::MissingType)?,
            message_id: text("messageId").ok_or(EnvelopeError::MissingMessageId)?,
            payload: o.get("payload").cloned().unwrap_or_else(|| json!({})),
        })
    }

    /// The wire form.
    pub fn to_value(&self) -> Value {
        json!({ "type": self.kind, "messageId": self.message_id, "payload": self.payload })
    }
}

/// A command from the host (docs/host-protocol.md, "Commands in").
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `SYNC {locale?, theme?}`: the handshake; answered with `SYNC_ACK`. `locale` is the host
    /// user's language (a BCP 47 tag, e.g. `"de-DE"`), `theme` the host's `"light"` or
    /// `"dark"`; anything else there is ignored.
    Sync {
        /// The host user's language, when it is a language tag.
        locale: Option<String>,
        /// `"light"` or `"dark"` ([`crate::host::theme`]).
        theme: Option<&'static str>,
    },
    /// `DIAL {number}`.
    Dial(String),
    /// `ACCEPT` the ringing call.
    Accept,
    /// `REJECT` the ringing call.
    Reject,
    /// `SET_PRESENCE {state}` (a contact-centre state) or `{availability}` (a Teams
    /// availability): the widget's presence choice `state:X` / `teams:X`.
    SetPresence(String),
    /// `SET_VISIBILITY {visible}`: the host shows or hides the widget's panel.
    SetVisibility(bool),
    /// Any other type: answered with an `ERROR`.
    Unknown(String),
}

/// Reads the command in an envelope; `Err` names what is wrong with its payload.
pub fn parse_command(envelope: &Envelope) -> Result<Command, &'static str> {
    let p = &envelope.payload;
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::trim);
    Ok(match envelope.kind.as_str() {
        "SYNC" => Command::Sync {
            locale: text("locale")
                .filter(|l| crate::i18n::is_language_tag(l))
                .map(str::to_owned),
            theme: theme(text("theme")),
        },
        "DIAL" => match text("number") {
            Some(n) if !n.is_empty() && n.chars().count() <= 64 => Command::Dial(n.to_owned()),
            _ => return Err("DIAL needs payload.number"),
        },
        "ACCEPT" => Command::Accept,
        "REJECT" => Command::Reject,
        "SET_PRESENCE" => match (text("state"), text("availability")) {
            (Some(s), _) if !s.is_empty() => Command::SetPresence(format!("state:{s}")),
            (_, Some(a)) if !a.is_empty() => Command::SetPresence(format!("teams:{a}")),
            _ => return Err("SET_PRESENCE needs payload.state or payload.availability"),
        },
        "SET_VISIBILITY" => match p.get("visible").and_then(Value::as_bool) {
            Some(v) => Command::SetVisibility(v),
            None => return Err("SET_VISIBILITY needs payload.visible"),
        },
        other => Command::Unknown(other.to_owned()),
    })
}

/// `SYNC_ACK`, the answer to `SYNC` (same `messageId`).
pub fn sync_ack(message_id: &str, host: HostKind) -> Value {
    json!({ "type": "SYNC_ACK", "messageId": message_id,
            "payload": { "version": PROTOCOL_VERSION, "host": host.as_str() } })
}

/// `INCOMING_CALL {callId, number, name?, queue?}`.
pub fn incoming_call_payload(call: &IncomingCall, call_id: &str) -> Value {
    let mut o = Map::new();
    o.insert("callId".into(), json!(call_id));
    o.insert("number".into(), json!(call.phone_number));
    if let Some(n) = &call.caller_name {
        o.insert("name".into(), json!(n));
    }
    if let Some(q) = &call.queue {
        o.insert("queue".into(), json!(q));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures::call;

    #[test]
    fn envelopes_and_commands() {
        let env = |v: Value| Envelope::parse(&v);
        assert_eq!(env(json!("x")), Err(EnvelopeError::NotAnObject));
        assert_eq!(
            env(json!({"messageId": "1"})),
            Err(EnvelopeError::MissingType)
        );
        assert_eq!(
            env(json!({"type": "DIAL"})),
            Err(EnvelopeError::MissingMessageId)
        );
        assert_eq!(
            env(json!({"type": "DIAL", "messageId": ""})),
            Err(EnvelopeError::MissingMessageId)
        );
        let dial = env(
            json!({"type": "DIAL", "messageId": "h1", "payload": {"number": " +442071234567 "}}),
        )
        .unwrap();
        assert_eq!(
            parse_command(&dial),
            Ok(Command::Dial("+442071234567".into()))
        );
        assert_eq!(dial.to_value()["payload"]["number"], " +442071234567 ");
        let no_number = env(json!({"type": "DIAL", "messageId": "h1"})).unwrap();
        assert!(parse_command(&no_number).is_err());
        let cmd = |t: &str, p: Value| {
            parse_command(&env(json!({"type": t, "messageId": "m", "payload": p})).unwrap())
        };
        let sync = |locale: Option<&str>, theme| Command::Sync {
            locale: locale.map(str::to_owned),
            theme,
        };
        assert_eq!(cmd("SYNC", json!({})), Ok(sync(None, None)));
        assert_eq!(
            cmd("SYNC", json!({"locale": "de-DE", "theme": "Dark"})),
            Ok(sync(Some("de-DE"), Some("dark")))
        );
        assert_eq!(
            cmd("SYNC", json!({"locale": "<script>", "theme": "sepia"})),
            Ok(sync(None, None))
        );
        assert_eq!(cmd("ACCEPT", json!({})), Ok(Command::Accept));
        assert_eq!(cmd("REJECT", json!({})), Ok(Command::Reject));
        assert_eq!(
            cmd("SET_PRESENCE", json!({"state": "Break"})),
            Ok(Command::SetPresence("state:Break".into()))
        );
        assert_eq!(
            cmd("SET_PRESENCE", json!({"availability": "Busy"})),
            Ok(Command::SetPresence("teams:Busy".into()))
        );
        assert!(cmd("SET_PRESENCE", json!({})).is_err());
        assert_eq!(
            cmd("SET_VISIBILITY", json!({"visible": false})),
            Ok(Command::SetVisibility(false))
        );
        assert_eq!(cmd("FOO", json!({})), Ok(Command::Unknown("FOO".into())));
        let ack = sync_ack("h0", HostKind::PostMessage);
        assert_eq!(
            ack,
            json!({"type": "SYNC_ACK", "messageId": "h0", "payload": {"version": 1, "host": "postmessage"}})
        );
        assert_eq!(
            incoming_call_payload(&call(), "c1"),
            json!({"callId": "c1", "number": "+14255550123", "queue": "Sales"})
        );
    }
}
