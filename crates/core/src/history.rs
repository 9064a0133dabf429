//! Finished calls: the record the widget keeps in its local call history and hands to the host
//! when the agent has wrapped up (CIF 2.0 phonecall activity, Open CTI `saveLog`, postMessage
//! `callEnded`, docs/host-protocol.md), and the bounded history itself.
//!
//! What is kept: call id, direction, the other party's number and name, when, how long, the
//! outcome, wrap-up notes and disposition. Never tokens. The history holds at most
//! [`HISTORY_CAP`] records (newest first) and is stored as JSON (`History::to_json`); a stored
//! text that does not parse yields an empty history rather than an error, so a corrupted
//! `localStorage` entry never stops the widget.

use serde_json::{Map, Value, json};

/// How many finished calls the history keeps (newest first).
pub const HISTORY_CAP: usize = 50;
/// The longest wrap-up note kept, in characters (longer notes are cut).
pub const NOTES_MAX_CHARS: usize = 2000;

/// Whether the agent received or placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    Inbound,
    Outbound,
}

impl CallDirection {
    /// `inbound` | `outbound` (the hub's `direction`, docs/hub-contract.md).
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
        }
    }
}

/// One finished call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// The hub's call id (or the one made up locally for a seed notification without one).
    pub call_id: String,
    pub direction: CallDirection,
    /// The other party's number as the hub gave it (E.164 for external numbers, an extension for
    /// a colleague).
    pub number: String,
    /// The other party's name, when known (caller name, or the colleague's user id).
    pub name: Option<String>,
    /// When the call started ringing or was placed, Unix milliseconds.
    pub started_at_ms: u64,
    /// Talk time in whole seconds (0 for a call that was never answered).
    pub duration_s: u32,
    /// How it ended: `completed`, `missed`, `rejected`, `abandoned`, `busy`, `no-answer`,
    /// `failed`, `elsewhere` (answered in another tab or device).
    pub outcome: String,
    /// Wrap-up notes typed by the agent (at most [`NOTES_MAX_CHARS`] characters).
    pub notes: String,
    /// Wrap-up disposition picked by the agent (e.g. `Resolved`), if any.
    pub disposition: Option<String>,
}

impl CallRecord {
    /// The record as JSON: `{"callId", "direction", "number", "name"?, "startedAt" (Unix ms),
    /// "durationSeconds", "outcome", "notes", "disposition"?}`. This is also the payload of the
    /// postMessage `callEnded` event.
    pub fn to_value(&self) -> Value {
        let mut o = Map::new();
        o.insert("callId".into(), json!(self.call_id));
        o.insert("direction".into(), json!(self.direction.as_str()));
        o.insert("number".into(), json!(self.number));
        if let Some(name) = &self.name {
            o.insert("name".into(), json!(name));
        }
        o.insert("startedAt".into(), json!(self.started_at_ms));
        o.insert("durationSeconds".into(), json!(self.duration_s));
        o.insert("outcome".into(), json!(self.outcome));
        o.insert("notes".into(), json!(self.notes));
        if let Some(d) = &self.disposition {
            o.insert("disposition".into(), json!(d));
        }
        Value::Object(o)
    }

    /// Reads what [`to_value`](Self::to_value) wrote; `None` when a required field is missing
    /// or has the wrong type.
    pub fn from_value(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            call_id: s("callId")?,
            direction: match v.get("direction")?.as_str()? {
                "inbound" => CallDirection::Inbound,
                "outbound" => CallDirection::Outbound,
                _ => return None,
            },
            number: s("number")?,
            name: s("name"),
            started_at_ms: v.get("startedAt")?.as_u64()?,
            duration_s: u32::try_from(v.get("durationSeconds")?.as_u64()?).ok()?,
            outcome: s("outcome")?,
            notes: s("notes").unwrap_or_default(),
            disposition: s("disposition"),
        })
    }

    /// Sets the wrap-up notes, cut to [`NOTES_MAX_CHARS`] characters.
    pub fn set_notes(&mut self, notes: &str) {
        self.notes = notes.chars().take(NOTES_MAX_CHARS).collect();
    }
}

/// The bounded local call history, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    records: Vec<CallRecord>,
}

impl History {
    /// Parses a stored history (a JSON array of records). Unreadable text or entries are
    /// skipped; at most [`HISTORY_CAP`] are kept.
    pub fn from_json(text: &str) -> Self {
        let records = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| match v {
                Value::Array(items) => Some(items),
                _ => None,
            })
            .unwrap_or_default()
            .iter()
            .filter_map(CallRecord::from_value)
            .take(HISTORY_CAP)
            .collect();
        Self { records }
    }

    /// The history as a JSON array, for storage.
    pub fn to_json(&self) -> String {
        Value::Array(self.records.iter().map(CallRecord::to_value).collect()).to_string()
    }

    /// Adds a finished call at the front, or replaces the record with the same call id (wrap-up
    /// notes added later), and drops the oldest beyond [`HISTORY_CAP`].
    pub fn record(&mut self, record: CallRecord) {
        self.records.retain(|r| r.call_id != record.call_id);
        self.records.insert(0, record);
        self.records.truncate(HISTORY_CAP);
    }

    /// The records, newest first.
    pub fn records(&self) -> &[CallRecord] {
        &self.records
    }

    /// The newest record whose number can be dialled again (for Redial).
    pub fn last_number(&self) -> Option<&str> {
        self.records.first().map(|r| r.number.as_str())
    }

    /// Forgets everything (sign-out of a shared machine).
    pub fn clear(&mut self) {
        self.records.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> CallRecord {
        CallRecord {
            call_id: id.into(),
            direction: CallDirection::Inbound,
            number: "+14255550123".into(),
            name: Some("Dana".into()),
            started_at_ms: 1_763_750_000_000,
            duration_s: 95,
            outcome: "completed".into(),
            notes: String::new(),
            disposition: None,
        }
    }

    #[test]
    fn round_trips_through_json() {
        let mut r = record("c1");
        r.set_notes("Refund agreed");
        r.disposition = Some("Resolved".into());
        let mut h = History::default();
        h.record(r.clone());
        h.record(CallRecord {
            direction: CallDirection::Outbound,
            name: None,
            ..record("c2")
        });
        let back = History::from_json(&h.to_json());
        assert_eq!(back, h);
        assert_eq!(back.records()[1], r);
        assert_eq!(back.records()[0].call_id, "c2");
    }

    #[test]
    fn is_bounded_and_replaces_by_call_id() {
        let mut h = History::default();
        for i in 0..HISTORY_CAP + 7 {
            h.record(record(&format!("c{i}")));
        }
        assert_eq!(h.records().len(), HISTORY_CAP);
        assert_eq!(h.records()[0].call_id, format!("c{}", HISTORY_CAP + 6));
        let mut wrapped = record("c20");
        wrapped.set_notes("later");
        h.record(wrapped);
        assert_eq!(h.records().len(), HISTORY_CAP);
        assert_eq!(h.records()[0].notes, "later");
        assert_eq!(h.records().iter().filter(|r| r.call_id == "c20").count(), 1);
    }

    #[test]
    fn corrupted_storage_gives_an_empty_or_partial_history() {
        assert!(History::from_json("not json").records().is_empty());
        assert!(History::from_json("{\"a\":1}").records().is_empty());
        let partial = format!("[{{\"callId\":1}},{}]", record("ok").to_value());
        assert_eq!(History::from_json(&partial).records().len(), 1);
    }

    #[test]
    fn notes_are_capped() {
        let mut r = record("c");
        r.set_notes(&"é".repeat(NOTES_MAX_CHARS + 10));
        assert_eq!(r.notes.chars().count(), NOTES_MAX_CHARS);
    }
}
