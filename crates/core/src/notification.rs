//! Incoming-call notifications as the widget receives them.
//!
//! Two shapes arrive (DESIGN.md §3):
//! - `ReceiveNotification(message: string)` where `message` is the seed sample's JSON text
//!   `{"PhoneNumber": "+15551234567", "comments": "..."}`, to which Switchboard adds optional
//!   `callId`, `callerName` and `queue`;
//! - `IncomingCall(call)` where `call` is an object
//!   `{"callId", "phoneNumber", "callerName"?, "queue"?, "comments"?}`.
//!
//! Field names are matched without regard to case (`PhoneNumber`, `phoneNumber`), as the
//! seed's .NET side serialises PascalCase and JavaScript senders camelCase.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

/// Longest caller name or comment kept, in characters; longer text is cut (it is shown in a
/// narrow panel and must never let a sender flood the UI).
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest phone number accepted, in characters (E.164 has at most 15 digits; extensions and
/// formatting add some).
pub const MAX_NUMBER_CHARS: usize = 40;

/// One incoming call offered to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncomingCall {
    /// The telephony system's id for the call; every acknowledgement carries it. `None` only
    /// for a seed message sent without one to a sender that assigns none (the hub assigns one).
    pub call_id: Option<String>,
    /// The caller's number as sent (E.164 expected, not enforced here).
    pub phone_number: String,
    /// The caller's name, when the telephony system knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_name: Option<String>,
    /// The queue or line the call came in on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Free text from the sender (the seed's `comments`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
}

/// Why a notification could not be read. The notification is dropped and the reason logged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotificationError {
    /// `ReceiveNotification`'s argument is not a JSON text.
    #[error("notification is not JSON: {0}")]
    NotJson(String),
    /// The JSON is not an object.
    #[error("notification is not a JSON object")]
    NotAnObject,
    /// No usable phone number.
    #[error("notification has no phone number (PhoneNumber)")]
    MissingPhoneNumber,
    /// The phone number is too long or has characters no dial string has.
    #[error("notification phone number is not a phone number")]
    InvalidPhoneNumber,
}

impl IncomingCall {
    /// Reads the seed message text (the string argument of `ReceiveNotification`).
    pub fn from_seed_message(message: &str) -> Result<Self, NotificationError> {
        let value: Value =
            serde_json::from_str(message).map_err(|e| NotificationError::NotJson(e.to_string()))?;
        Self::from_value(&value)
    }

    /// Reads a notification object (the argument of `IncomingCall`, or a parsed seed message).
    pub fn from_value(value: &Value) -> Result<Self, NotificationError> {
        let object = value.as_object().ok_or(NotificationError::NotAnObject)?;
        let phone_number =
            field(object, "phoneNumber").ok_or(NotificationError::MissingPhoneNumber)?;
        if !is_dial_string(&phone_number) {
            return Err(NotificationError::InvalidPhoneNumber);
        }
        Ok(Self {
            call_id: field(object, "callId").map(|s| truncate(&s, MAX_TEXT_CHARS)),
            phone_number,
            caller_name: field(object, "callerName").map(|s| truncate(&s, MAX_TEXT_CHARS)),
            queue: field(object, "queue").map(|s| truncate(&s, MAX_TEXT_CHARS)),
            comments: field(object, "comments").map(|s| truncate(&s, MAX_TEXT_CHARS)),
        })
    }

    /// The seed message text for this call (`PhoneNumber` PascalCase as the seed sends it).
    pub fn to_seed_message(&self) -> String {
        let mut object = Map::new();
        object.insert(
            "PhoneNumber".into(),
            Value::String(self.phone_number.clone()),
        );
        if let Some(c) = &self.comments {
            object.insert("comments".into(), Value::String(c.clone()));
        }
        if let Some(id) = &self.call_id {
            object.insert("callId".into(), Value::String(id.clone()));
        }
        if let Some(n) = &self.caller_name {
            object.insert("callerName".into(), Value::String(n.clone()));
        }
        if let Some(q) = &self.queue {
            object.insert("queue".into(), Value::String(q.clone()));
        }
        Value::Object(object).to_string()
    }
}

/// A string field by case-insensitive name; empty or blank strings count as absent. Numbers are
/// accepted for ids and phone numbers, as some senders send them unquoted.
fn field(object: &Map<String, Value>, name: &str) -> Option<String> {
    let value = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)?;
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// Digits, `+`, separators, `*`, `#`, and an extension marker; nothing that could be markup.
fn is_dial_string(s: &str) -> bool {
    s.chars().count() <= MAX_NUMBER_CHARS
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars().all(|c| {
            c.is_ascii_digit()
                || matches!(
                    c,
                    '+' | ' ' | '-' | '.' | '(' | ')' | '*' | '#' | ';' | '=' | 'x' | 'e' | 't'
                )
        })
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_seed_message_byte_for_byte() {
        let call = IncomingCall::from_seed_message(
            r#"{"PhoneNumber":"+14255550123","comments":"Billing"}"#,
        )
        .unwrap();
        assert_eq!(call.phone_number, "+14255550123");
        assert_eq!(call.comments.as_deref(), Some("Billing"));
        assert_eq!(call.call_id, None);
    }

    #[test]
    fn reads_switchboard_additions_and_camel_case() {
        let call = IncomingCall::from_value(&json!({
            "callId": "c-1", "phoneNumber": "+4930123456", "callerName": "Dana", "queue": "Sales"
        }))
        .unwrap();
        assert_eq!(call.call_id.as_deref(), Some("c-1"));
        assert_eq!(call.caller_name.as_deref(), Some("Dana"));
        assert_eq!(call.queue.as_deref(), Some("Sales"));
        let back = IncomingCall::from_seed_message(&call.to_seed_message()).unwrap();
        assert_eq!(back, call);
    }

    #[test]
    fn bad_notifications_get_clear_errors() {
        assert!(matches!(
            IncomingCall::from_seed_message("hello"),
            Err(NotificationError::NotJson(_))
        ));
        assert_eq!(
            IncomingCall::from_seed_message("[1]"),
            Err(NotificationError::NotAnObject)
        );
        assert_eq!(
            IncomingCall::from_seed_message(r#"{"comments":"x"}"#),
            Err(NotificationError::MissingPhoneNumber)
        );
        assert_eq!(
            IncomingCall::from_seed_message(r#"{"PhoneNumber":"   "}"#),
            Err(NotificationError::MissingPhoneNumber)
        );
        assert_eq!(
            IncomingCall::from_seed_message(r#"{"PhoneNumber":"<img src=x onerror=alert(1)>"}"#),
            Err(NotificationError::InvalidPhoneNumber)
        );
        assert_eq!(
            IncomingCall::from_seed_message(
                r#"{"PhoneNumber":"+1234567890123456789012345678901234567890123"}"#
            ),
            Err(NotificationError::InvalidPhoneNumber)
        );
    }

    #[test]
    fn long_text_is_cut() {
        let long = "é".repeat(1000);
        let call =
            IncomingCall::from_value(&json!({"PhoneNumber": 12345, "callerName": long})).unwrap();
        assert_eq!(call.phone_number, "12345");
        assert_eq!(call.caller_name.unwrap().chars().count(), MAX_TEXT_CHARS);
    }
}
