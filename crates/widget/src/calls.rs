//! The agent's calls in the widget (issue 7): what the call UI may ask for ([`CallRequest`],
//! carried out by `Widget::request` in `state.rs`), and the local call history in
//! `localStorage` (`switchboard.history.<user>`: records without tokens, at most
//! `HISTORY_CAP`). The rules live in `switchboard_core::Desk` and the call machine.

use switchboard_core::History;
use switchboard_core::call::machine::Command;

use crate::browser::storage;

/// What the agent can ask for from the call UI: one callback type for every control.
#[derive(Debug, Clone, PartialEq)]
pub enum CallRequest {
    /// Place a call to what was typed: a number, a `tel:` URI, an extension or a colleague.
    Dial(String),
    /// Answer the ringing call.
    Accept,
    /// Reject the ringing call.
    Reject,
    /// Hang up the call in progress.
    HangUp,
    /// Hold, resume, mute, DTMF, transfers, conference.
    Control(Command),
    /// Finish wrap-up with notes and a disposition (empty: none).
    WrapUp { notes: String, disposition: String },
}

fn history_key(user: &str) -> String {
    format!("switchboard.history.{user}")
}

/// `user`'s history as this browser kept it (empty when there is none).
pub fn load_history(user: &str) -> History {
    storage()
        .and_then(|s| s.get_item(&history_key(user)).ok().flatten())
        .map(|text| History::from_json(&text))
        .unwrap_or_default()
}

/// Keeps `user`'s history in this browser.
pub fn save_history(user: &str, history: &History) {
    if let Some(s) = storage() {
        let _ = s.set_item(&history_key(user), &history.to_json());
    }
}
