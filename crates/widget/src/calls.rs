//! The agent's calls in the widget (issue 7): dialling, call control, wrap-up and the local
//! call history. The rules live in `switchboard_core::Desk` and the call machine; this module
//! carries their [`Action`]s out as hub invocations (docs/hub-contract.md) and keeps the history
//! in `localStorage` (`switchboard.history.<user>`: records without tokens, at most
//! `HISTORY_CAP`).

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;
use switchboard_core::call::machine::Command;
use switchboard_core::{CallRecord, Desk, History};

use crate::app::{Widget, now_ms};
use crate::i18n::strings;

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

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

impl Widget {
    /// After every (re)connect: asks the hub for this agent's calls (`getCalls`) and makes the
    /// desk agree with it (`Desk::resync`), so a reload or a reconnect never loses a call that
    /// rang or was in progress meanwhile (issue 13). Only the tab that rings does this; the
    /// others leave calls to it.
    pub(crate) fn resync(self) {
        // SIP mode: the calls are the softphone's, which the hub does not list.
        if crate::softphone::owns_calls() {
            return;
        }
        if !self
            .ringer
            .with_value(|r| r.as_ref().is_none_or(|r| r.is_ringer()))
        {
            return;
        }
        let Some(client) = self.client.get_value() else {
            return;
        };
        let ring_ms = self
            .config
            .with_untracked(|c| c.as_ref().map(|c| c.ring_timeout_seconds).unwrap_or(30))
            as f64
            * 1000.0;
        spawn_local(async move {
            let calls = match client.invoke("getCalls", vec![]).await {
                Ok(result) => match result.get("calls").and_then(|c| c.as_array()) {
                    Some(calls) => calls.clone(),
                    None => {
                        crate::app::warn("getCalls answered without a list of calls.");
                        return;
                    }
                },
                Err(e) => {
                    crate::app::warn(&format!("getCalls failed: {e}"));
                    return;
                }
            };
            crate::diagnostics::record(format!("resync: the hub lists {} call(s)", calls.len()));
            let found = self.with_desk(|d, now| d.resync(&calls, now, ring_ms));
            for action in found.actions {
                self.perform(action);
            }
            for call in found.offers {
                self.offer(call);
            }
        });
    }

    /// Runs `f` on the desk at the present time, tells the host what changed (a call rings,
    /// the ringing call was accepted or dismissed: `Host::after_transition`), then files the
    /// calls it finished into the history. Returns what `f` returned.
    pub(crate) fn with_desk<R>(self, f: impl FnOnce(&mut Desk, f64) -> R) -> R {
        let now = now_ms();
        let before = self.desk.with_untracked(crate::host::desk_ids);
        let mut out = None;
        let mut finished = Vec::new();
        self.desk.update(|d| {
            out = Some(f(d, now));
            finished = d.take_finished();
        });
        self.desk
            .with_untracked(|d| self.host.after_transition(d, before));
        if !finished.is_empty() {
            self.file(finished);
        }
        out.expect("the closure ran")
    }

    fn file(self, records: Vec<CallRecord>) {
        self.history.update(|h| {
            for r in records {
                h.record(r);
            }
        });
        if let (Some(user), Some(s)) = (self.user.get_untracked(), storage()) {
            let text = self.history.with_untracked(History::to_json);
            let _ = s.set_item(&history_key(&user), &text);
        }
    }

    /// Loads `user`'s history from `localStorage` (sign-in).
    pub(crate) fn load_history(self, user: &str) {
        let history = storage()
            .and_then(|s| s.get_item(&history_key(user)).ok().flatten())
            .map(|text| History::from_json(&text))
            .unwrap_or_default();
        self.history.set(history);
    }

    /// Carries out what the agent asked for in the call UI.
    pub fn request(self, request: CallRequest) {
        match request {
            CallRequest::Dial(number) => self.dial(number),
            CallRequest::Accept => self.accept(),
            CallRequest::Reject => self.reject(),
            CallRequest::HangUp => self.hang_up(),
            CallRequest::Control(command) => self.control(command),
            CallRequest::WrapUp { notes, disposition } => self.finish_wrap_up(notes, disposition),
        }
    }

    /// Places a call through the hub's `makeCall`: the hub normalises the number (E.164 with
    /// the configured default region, `tel:` URIs, extensions) or finds the colleague, and
    /// refuses invalid input with a sentence that is shown here; nothing is dialled then.
    pub fn dial(self, number: String) {
        let t = strings();
        let number = number.trim().to_owned();
        if number.is_empty() {
            self.notice.set(Some(t.enter_number.into()));
            return;
        }
        if self.desk.with_untracked(Desk::is_busy) {
            self.notice.set(Some(t.already_on_call.into()));
            return;
        }
        if crate::softphone::dial(self, &number) {
            return;
        }
        let Some(client) = self.client.get_value() else {
            self.notice.set(Some(t.not_connected.into()));
            return;
        };
        self.notice.set(None);
        self.dial_text.set(String::new());
        spawn_local(async move {
            match client.invoke("makeCall", vec![json!(number)]).await {
                Ok(call) => {
                    crate::diagnostics::record(format!(
                        "placed call {}",
                        call.get("callId").and_then(|v| v.as_str()).unwrap_or("?")
                    ));
                    if !self.with_desk(|d, now| d.dialled(&call, now, 120_000.0)) {
                        crate::app::warn("makeCall returned no outbound call object");
                    }
                }
                Err(e) => {
                    // Keep what the agent typed so they can correct it.
                    self.dial_text.set(number);
                    self.notice.set(Some(e));
                }
            }
        });
    }

    /// Hold, resume, mute, DTMF, transfers, conference on the call in progress: checked by the
    /// call machine first (an illegal command is explained and nothing is sent).
    pub fn control(self, command: Command) {
        match self.with_desk(|d, _| d.control(command)) {
            Ok(action) => self.perform(action),
            Err(e) => self.notice.set(Some(e.to_string())),
        }
    }

    /// The agent finished wrap-up: the record goes to the history and to the host's call log
    /// (CIF phonecall activity, Open CTI `saveLog`, postMessage `callEnded`).
    pub fn finish_wrap_up(self, notes: String, disposition: String) {
        let record = self.with_desk(|d, _| {
            d.finish_wrap_up(&notes, Some(disposition).filter(|d| !d.is_empty()))
        });
        if let Some(record) = record {
            crate::diagnostics::record(format!("wrap-up saved for call {}", record.call_id));
            self.host.call_ended(&record);
        }
    }
}
