//! The agent's desk: which call is ringing, which one is in progress, and what to do with each
//! notification, acknowledgement and hub event. Pure; the widget holds one [`Desk`] and turns
//! its [`Action`]s into hub invocations and UI.
//!
//! Rules (a contact-centre softphone's, not a demo's):
//! - one call rings at a time; an offer while another rings or is in progress is answered
//!   `busy` at once, so the telephony system can route it elsewhere; a call that started
//!   ringing while the agent's `makeCall` was on its way (or while a resync restores a call in
//!   progress) is refused `busy` when that call takes the desk, so a call never rings during
//!   the call in progress and Accept never replaces it (the `desk` fuzz target checks this);
//! - a repeated delivery of the ringing call (same call id; Azure SignalR is at-most-once but
//!   backends retry) does not ring twice;
//! - the ring time is the configured one; when it runs out the call is reported missed
//!   (`rejectCall(callId, "timeout")`) and the agent sees "Missed call";
//! - a call accepted, rejected or ended elsewhere (another tab, the caller hanging up, the
//!   hub's own timeout) stops ringing here.
//! - the call in progress (answered here, or placed here with `makeCall`) follows the hub's
//!   `CallUpdated`/`CallEnded` through the agent-side [`Call`] machine; a control the machine
//!   does not allow in the present state is refused with its [`CallError`] and nothing is sent;
//! - an answered call that ends goes to wrap-up: the agent adds notes and a disposition, and the
//!   finished [`CallRecord`] goes to the history and the host's call log. Calls that were never
//!   answered are recorded at once.
//!
//! Times: `now_ms` is the widget's clock in Unix milliseconds (`Date.now()`), so timers and the
//! records' `startedAt` share one clock.

use std::collections::VecDeque;

use serde_json::Value;

use crate::call::machine::{Call, CallError, CallPhase, Command, EndReason, Signal};
use crate::call::wire::{signal_for_end, signal_for_state};
use crate::call::{CallState, RejectReason};
use crate::history::{CallDirection, CallRecord};
use crate::notification::IncomingCall;

/// How many recent call ids are remembered to drop repeated deliveries.
pub const RECENT_CALL_IDS: usize = 64;
/// How many `CallUpdated`s for calls this desk does not know yet are kept (a `makeCall`
/// result can arrive after the first updates of its call).
pub const EARLY_UPDATES: usize = 8;

/// How many calls the agent hung up here are remembered, so that [`Desk::resync`] can send a
/// `hangUp` again that was lost with the connection.
pub const HUNG_UP_CALL_IDS: usize = 8;

/// A call the agent is being offered.
#[derive(Debug, Clone, PartialEq)]
pub struct Ringing {
    /// The offer, with its call id (assigned locally when the sender gave none).
    pub call: IncomingCall,
    /// The call id acknowledgements carry.
    pub call_id: String,
    /// Whether the id came from the telephony side (typed hub methods can be used) or was
    /// made up here (only the seed's `sendMessage` acknowledgement is sent).
    pub has_remote_id: bool,
    /// When the ring time runs out, in the caller's clock (milliseconds).
    pub deadline_ms: f64,
    /// When it started ringing (Unix ms).
    pub offered_ms: f64,
}

/// The call in progress: answered here or placed here.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveCall {
    /// Phase and timers (the agent-side machine, kept in step with the hub).
    pub call: Call,
    /// The other party as offered (inbound) or as the hub reports it (outbound: the number
    /// in `phone_number`, the colleague in `caller_name`).
    pub party: IncomingCall,
    /// What to show for the other party when the hub formatted it (`(425) 555-0123`,
    /// `bob (ext. 1002)`).
    pub display: Option<String>,
    /// Whether the typed hub methods can be used (false for a seed notification without id).
    pub has_remote_id: bool,
    /// Whether the agent's microphone is muted (the hub's `muted`).
    pub muted: bool,
    /// The consult/blind transfer target the hub reports.
    pub transfer_target: Option<String>,
    /// When it started ringing or was placed (Unix ms).
    pub started_ms: f64,
}

impl ActiveCall {
    /// The call id.
    pub fn call_id(&self) -> &str {
        &self.call.id
    }

    /// The party's name, else the hub's display, else the number.
    pub fn title(&self) -> &str {
        self.party
            .caller_name
            .as_deref()
            .or(self.display.as_deref())
            .unwrap_or(&self.party.phone_number)
    }
}

/// How a ringing call ended for the agent, shown until the next call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted here; the call is in progress.
    Accepted,
    /// The agent rejected it.
    Rejected,
    /// Nobody answered in time.
    Missed,
    /// The caller hung up while it rang.
    Abandoned,
    /// Handled in another tab or by another device.
    HandledElsewhere,
    /// The call in progress ended.
    Ended,
    /// An outbound call was not answered: busy, no answer or failed (the text says which).
    NotReached(String),
}

/// What the widget must do after a desk transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Show the incoming-call dialog and start the ring timer.
    Ring,
    /// Tell the hub: `rejectCall(callId, reason)` (+ seed ack `"Rejected"` when `seed_ack`).
    Reject {
        call_id: String,
        reason: RejectReason,
        has_remote_id: bool,
    },
    /// Tell the hub: `acceptCall(callId)` and the seed ack `"Accepted"`.
    Accept {
        call_id: String,
        has_remote_id: bool,
    },
    /// Tell the hub: `hangUp(callId)`.
    HangUp { call_id: String },
    /// Tell the hub to carry out `command` on the call ([`crate::call::wire::invocation`]).
    Control { call_id: String, command: Command },
    /// Nothing to do (a duplicate, a stale timer, an event for another call).
    Nothing,
}

/// What [`Desk::resync`] found: calls to offer, and answers to send again.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resync {
    /// Ringing inbound calls the desk does not know, oldest first.
    pub offers: Vec<IncomingCall>,
    /// Answers the hub never heard, to perform again.
    pub actions: Vec<Action>,
}

/// The agent's calls.
#[derive(Debug, Clone, Default)]
pub struct Desk {
    ringing: Option<Ringing>,
    active: Option<ActiveCall>,
    wrap_up: Option<CallRecord>,
    last_outcome: Option<(Outcome, IncomingCall)>,
    finished: Vec<CallRecord>,
    recent: VecDeque<String>,
    hung_up: VecDeque<String>,
    early: VecDeque<Value>,
    local_ids: u64,
}

impl Desk {
    /// An idle desk.
    pub fn new() -> Self {
        Self::default()
    }

    /// The call ringing now.
    pub fn ringing(&self) -> Option<&Ringing> {
        self.ringing.as_ref()
    }

    /// The call in progress.
    pub fn active(&self) -> Option<&ActiveCall> {
        self.active.as_ref()
    }

    /// The answered call that ended and waits for the agent's notes and disposition.
    pub fn wrap_up(&self) -> Option<&CallRecord> {
        self.wrap_up.as_ref()
    }

    /// The CRM found the caller (CIF `searchAndOpenRecords`, Open CTI `searchAndScreenPop`):
    /// its name is shown for `call_id` when the telephony side gave none. Returns whether
    /// anything changed. Blank names and unknown calls change nothing; the name is cut to
    /// [`crate::notification::MAX_TEXT_CHARS`] characters like any caller name.
    pub fn name_from_crm(&mut self, call_id: &str, name: &str) -> bool {
        let name = name.trim();
        if name.is_empty() {
            return false;
        }
        let name: String = name
            .chars()
            .take(crate::notification::MAX_TEXT_CHARS)
            .collect();
        let party = match (&mut self.ringing, &mut self.active) {
            (Some(r), _) if r.call_id == call_id => &mut r.call,
            (_, Some(a)) if a.call.id == call_id => &mut a.party,
            _ => return false,
        };
        if party.caller_name.is_some() {
            return false;
        }
        party.caller_name = Some(name);
        true
    }

    /// Whether a call rings, is in progress or waits for wrap-up (a new call is refused busy).
    pub fn is_busy(&self) -> bool {
        self.ringing.is_some() || self.active.is_some()
    }

    /// How the last call ended, for the "Missed call from …" line.
    pub fn last_outcome(&self) -> Option<&(Outcome, IncomingCall)> {
        self.last_outcome.as_ref()
    }

    /// The finished calls since the last call, oldest first, to keep in the history (calls that
    /// were never answered, and wrapped-up ones).
    pub fn take_finished(&mut self) -> Vec<CallRecord> {
        std::mem::take(&mut self.finished)
    }

    /// An offer arrived at `now_ms`; it rings for `ring_ms`.
    pub fn offer(&mut self, call: IncomingCall, now_ms: f64, ring_ms: f64) -> Action {
        let (call_id, has_remote_id) = match &call.call_id {
            Some(id) => (id.clone(), true),
            None => {
                self.local_ids += 1;
                (format!("local-{}", self.local_ids), false)
            }
        };
        if has_remote_id && self.recent.contains(&call_id) {
            return Action::Nothing;
        }
        self.remember(&call_id);
        if self.is_busy() {
            return Action::Reject {
                call_id,
                reason: RejectReason::Busy,
                has_remote_id,
            };
        }
        self.ringing = Some(Ringing {
            call,
            call_id,
            has_remote_id,
            deadline_ms: now_ms + ring_ms,
            offered_ms: now_ms,
        });
        Action::Ring
    }

    /// The agent pressed Accept at `now_ms`. The call is connected at once; the hub's
    /// `CallUpdated(accepted)` confirms it.
    /// Nothing happens (and [`Action::Nothing`] is returned) when nothing rings or a call is
    /// already in progress: accepting must never replace that call.
    pub fn accept(&mut self, now_ms: f64) -> Action {
        if self.active.is_some() {
            return Action::Nothing;
        }
        let Some(ringing) = self.ringing.take() else {
            return Action::Nothing;
        };
        let action = Action::Accept {
            call_id: ringing.call_id.clone(),
            has_remote_id: ringing.has_remote_id,
        };
        self.last_outcome = Some((Outcome::Accepted, ringing.call.clone()));
        let mut call = Call::inbound(
            ringing.call_id,
            ringing.offered_ms,
            ringing.deadline_ms - ringing.offered_ms,
        );
        call.apply(&Signal::Answered, now_ms);
        self.file_pending_wrap_up();
        self.active = Some(ActiveCall {
            call,
            party: ringing.call,
            display: None,
            has_remote_id: ringing.has_remote_id,
            muted: false,
            transfer_target: None,
            started_ms: ringing.offered_ms,
        });
        action
    }

    /// The agent pressed Reject.
    pub fn reject(&mut self) -> Action {
        self.finish_ringing(Outcome::Rejected, RejectReason::Declined)
    }

    /// The ring timer fired at `now_ms`; stale timers (for an earlier call) do nothing.
    pub fn ring_timeout(&mut self, now_ms: f64) -> Action {
        match &self.ringing {
            Some(r) if now_ms >= r.deadline_ms => {
                self.finish_ringing(Outcome::Missed, RejectReason::Timeout)
            }
            _ => Action::Nothing,
        }
    }

    /// The agent hung up the call in progress at `now_ms`. It ends here at once (the hub's
    /// `CallEnded` for it is then ignored) and goes to wrap-up if it was answered.
    pub fn hang_up(&mut self, now_ms: f64) -> Action {
        let Some(active) = &self.active else {
            return Action::Nothing;
        };
        if active.call.check(&Command::HangUp).is_err() {
            return Action::Nothing;
        }
        let call_id = active.call_id().to_owned();
        let has_remote_id = active.has_remote_id;
        self.end_active(&Signal::HungUp, now_ms);
        if has_remote_id {
            if self.hung_up.len() == HUNG_UP_CALL_IDS {
                self.hung_up.pop_front();
            }
            self.hung_up.push_back(call_id.clone());
        }
        Action::HangUp { call_id }
    }

    /// The agent asked for `command` on the call in progress (hold, resume, mute, DTMF,
    /// transfers, conference). Checked against the call machine; the state changes only when
    /// the hub reports it. Errors: no call in progress, or the machine's [`CallError`].
    pub fn control(&mut self, command: Command) -> Result<Action, CallError> {
        let active = self.active.as_ref().ok_or(CallError::NoCall)?;
        active.call.check(&command)?;
        if !active.has_remote_id {
            return Err(CallError::NoCall);
        }
        Ok(Action::Control {
            call_id: active.call_id().to_owned(),
            command,
        })
    }

    /// The hub placed the call the agent dialled (`makeCall`'s result: the call object) at
    /// `now_ms`; it becomes the call in progress. Updates that came before it are applied.
    /// Returns `None` (and changes nothing) if a call is already in progress, `call` is not an
    /// outbound call object, or its id is the ringing call's. Otherwise `Some` of what to send:
    /// [`Action::Nothing`], or, when a call started ringing while `makeCall` was on its way, a
    /// `busy` [`Action::Reject`] for it — the agent's own call goes first, as an offer during a
    /// call is refused busy, and Accept could otherwise replace the call in progress (found by
    /// the `desk` fuzz target). That call is recorded as `busy`.
    pub fn dialled(&mut self, call: &Value, now_ms: f64, ring_ms: f64) -> Option<Action> {
        let id = call.get("callId").and_then(Value::as_str)?;
        if self.active.is_some()
            || self.ringing.as_ref().is_some_and(|r| r.call_id == id)
            || call.get("direction").and_then(Value::as_str) != Some("outbound")
        {
            return None;
        }
        let action = self.refuse_ringing_busy();
        let party = IncomingCall {
            call_id: Some(id.to_owned()),
            phone_number: str_field(call, "phoneNumber").unwrap_or_default(),
            caller_name: str_field(call, "callerName"),
            queue: None,
            comments: None,
        };
        self.file_pending_wrap_up();
        self.active = Some(ActiveCall {
            call: Call::outbound(id, now_ms, ring_ms),
            party,
            display: None,
            has_remote_id: true,
            muted: false,
            transfer_target: None,
            started_ms: now_ms,
        });
        self.remember(id);
        self.apply_update(call, now_ms);
        let early: Vec<Value> = self
            .early
            .iter()
            .filter(|u| u.get("callId").and_then(Value::as_str) == Some(id))
            .cloned()
            .collect();
        self.early
            .retain(|u| u.get("callId").and_then(Value::as_str) != Some(id));
        for update in early {
            self.call_updated(&update, now_ms);
        }
        Some(action)
    }

    /// The call in progress is about to be set while a call rings: that call is refused `busy`
    /// (recorded as such; what the agent sees stays as it was). [`Action::Nothing`] when none
    /// rings.
    fn refuse_ringing_busy(&mut self) -> Action {
        let Some(ringing) = self.ringing.take() else {
            return Action::Nothing;
        };
        self.finished.push(unanswered_record(&ringing, "busy"));
        Action::Reject {
            call_id: ringing.call_id,
            reason: RejectReason::Busy,
            has_remote_id: ringing.has_remote_id,
        }
    }

    /// The hub says a call changed (`CallUpdated(call)`, the call object). A ringing call that
    /// is no longer ringing was decided elsewhere and stops ringing here; the call in progress
    /// follows the hub's state, mute and transfer target; an ended one goes to wrap-up.
    pub fn call_updated(&mut self, call: &Value, now_ms: f64) {
        let (Some(id), Some(state)) = (
            call.get("callId").and_then(Value::as_str),
            call.get("state").and_then(Value::as_str),
        ) else {
            return;
        };
        if self.ringing.as_ref().is_some_and(|r| r.call_id == id) {
            match CallState::from_wire(state) {
                Some(CallState::Ringing) | None => {}
                Some(s) => self.stop_ringing(s),
            }
        } else if self.active.as_ref().is_some_and(|a| a.call_id() == id) {
            if state == "ended" || state == "rejected" || state == "missed" {
                let reason = str_field(call, "endReason").unwrap_or_else(|| state.to_owned());
                self.call_ended(id, &reason, now_ms);
            } else {
                self.apply_update(call, now_ms);
            }
        } else if !self.recent.iter().any(|r| r == id) {
            if self.early.len() == EARLY_UPDATES {
                self.early.pop_front();
            }
            self.early.push_back(call.clone());
        }
    }

    /// Applies what the hub knows of this agent's calls after a reload or a reconnect: the
    /// `getCalls` result (`calls`, newest first, each a call object as in `CallUpdated`).
    /// The ringing call and the call in progress follow the hub (a call that ended while the
    /// widget was away ends here too, with the hub's reason); a call in progress the desk does
    /// not know (after a reload) becomes the call in progress again, with its talk time from
    /// the hub's `answeredAt`; a call in progress the hub no longer lists ended. Returns the
    /// ringing inbound calls the desk does not know, oldest first: offer them as usual; and the
    /// actions to send again: a call the desk already finished (rejected, missed, busy) that
    /// the hub still lists as ringing never heard the answer (the invocation was lost with the
    /// connection), so it is rejected again as missed (`RejectReason::Timeout`) instead of
    /// ringing at the hub until its backstop.
    /// Likewise a call the agent hung up here (one of the last [`HUNG_UP_CALL_IDS`]) that the hub
    /// still lists as up (accepted, connected, held, or an outbound call dialling) never heard
    /// the `hangUp`: it is hung up again rather than coming back on screen.
    pub fn resync(&mut self, calls: &[Value], now_ms: f64, ring_ms: f64) -> Resync {
        let mut offers = Vec::new();
        let mut actions = Vec::new();
        let listed = |id: &str| {
            calls
                .iter()
                .any(|c| c.get("callId").and_then(Value::as_str) == Some(id))
        };
        if let Some(active) = &self.active
            && active.has_remote_id
            && !listed(active.call_id())
        {
            let id = active.call_id().to_owned();
            self.call_ended(&id, "completed", now_ms);
        }
        for call in calls.iter().rev() {
            let (Some(id), Some(state)) = (
                call.get("callId").and_then(Value::as_str),
                call.get("state").and_then(Value::as_str),
            ) else {
                continue;
            };
            let known = self.ringing.as_ref().is_some_and(|r| r.call_id == id)
                || self.active.as_ref().is_some_and(|a| a.call_id() == id);
            if known {
                self.call_updated(call, now_ms);
                continue;
            }
            let inbound = call.get("direction").and_then(Value::as_str) != Some("outbound");
            match CallState::from_wire(state) {
                Some(CallState::Ringing) if inbound && self.recent.iter().any(|r| r == id) => {
                    // Once per call: it may have been refused busy a moment ago, above.
                    if actions
                        .iter()
                        .any(|a| matches!(a, Action::Reject { call_id, .. } if call_id == id))
                    {
                        continue;
                    }
                    actions.push(Action::Reject {
                        call_id: id.to_owned(),
                        reason: RejectReason::Timeout,
                        has_remote_id: true,
                    });
                }
                Some(CallState::Ringing) if inbound => {
                    if let Ok(offer) = IncomingCall::from_value(call) {
                        offers.push(offer);
                    }
                }
                _ if self.hung_up.iter().any(|h| h == id)
                    && (matches!(
                        CallState::from_wire(state),
                        Some(CallState::Accepted | CallState::Connected | CallState::Held)
                    ) || matches!(state, "dialling" | "alerting" | "transferring")) =>
                {
                    actions.push(Action::HangUp {
                        call_id: id.to_owned(),
                    });
                }
                Some(CallState::Accepted | CallState::Connected | CallState::Held)
                    if self.active.is_none() =>
                {
                    actions.push(self.refuse_ringing_busy());
                    self.restore_active(call, id, inbound, now_ms, ring_ms);
                }
                _ if !inbound
                    && matches!(state, "dialling" | "alerting" | "transferring")
                    && self.active.is_none() =>
                {
                    actions.push(self.refuse_ringing_busy());
                    self.restore_active(call, id, inbound, now_ms, ring_ms);
                }
                _ => {}
            }
        }
        actions.retain(|a| *a != Action::Nothing);
        Resync { offers, actions }
    }

    fn restore_active(&mut self, call: &Value, id: &str, inbound: bool, now_ms: f64, ring_ms: f64) {
        let at = |field: &str| call.get(field).and_then(Value::as_f64);
        let created = at("createdAt").unwrap_or(now_ms).min(now_ms);
        let mut machine = if inbound {
            let mut m = Call::inbound(id, created, ring_ms);
            m.apply(
                &Signal::Answered,
                at("answeredAt").unwrap_or(now_ms).min(now_ms),
            );
            m
        } else {
            Call::outbound(id, created, ring_ms)
        };
        if !inbound && let Some(answered) = at("answeredAt") {
            machine.apply(&Signal::Answered, answered.min(now_ms));
        }
        let party = IncomingCall {
            call_id: Some(id.to_owned()),
            phone_number: str_field(call, "phoneNumber").unwrap_or_default(),
            caller_name: str_field(call, "callerName"),
            queue: str_field(call, "queue"),
            comments: None,
        };
        self.file_pending_wrap_up();
        self.active = Some(ActiveCall {
            call: machine,
            party,
            display: None,
            has_remote_id: true,
            muted: false,
            transfer_target: None,
            started_ms: created,
        });
        self.remember(id);
        self.apply_update(call, now_ms);
    }

    /// The hub says the call ended (`CallEnded(callId, reason)`), e.g. the caller hung up.
    pub fn call_ended(&mut self, call_id: &str, reason: &str, now_ms: f64) {
        if self.ringing.as_ref().is_some_and(|r| r.call_id == call_id) {
            let state = match reason {
                "missed" => CallState::Missed,
                "rejected" => CallState::Rejected,
                _ => CallState::Ended,
            };
            self.stop_ringing(state);
        } else if let Some(active) = &self.active
            && active.call_id() == call_id
        {
            let signal = signal_for_end(&active.call, reason);
            self.end_active(&signal, now_ms);
        }
    }

    /// The agent finished wrap-up: the record, with their notes and disposition, is returned
    /// for the history and the host's call log (and is also in [`take_finished`](Self::take_finished)).
    pub fn finish_wrap_up(
        &mut self,
        notes: &str,
        disposition: Option<String>,
    ) -> Option<CallRecord> {
        let mut record = self.wrap_up.take()?;
        record.set_notes(notes);
        record.disposition = disposition.filter(|d| !d.trim().is_empty());
        self.finished.push(record.clone());
        Some(record)
    }

    /// A new call starts while the last one still waits for wrap-up: it is recorded as it is.
    fn file_pending_wrap_up(&mut self) {
        if let Some(record) = self.wrap_up.take() {
            self.finished.push(record);
        }
    }

    fn apply_update(&mut self, update: &Value, now_ms: f64) {
        let Some(active) = &mut self.active else {
            return;
        };
        if let Some(state) = update.get("state").and_then(Value::as_str)
            && let Some(signal) = signal_for_state(&active.call, state)
        {
            active.call.apply(&signal, now_ms);
        }
        if let Some(display) = str_field(update, "display") {
            active.display = Some(display);
        }
        if let Some(muted) = update.get("muted").and_then(Value::as_bool) {
            active.muted = muted;
        }
        active.transfer_target = str_field(update, "transferTarget");
    }

    fn end_active(&mut self, signal: &Signal, now_ms: f64) {
        let Some(mut active) = self.active.take() else {
            return;
        };
        active.call.apply(signal, now_ms);
        let reason = match active.call.phase() {
            CallPhase::Ended(reason) => reason.clone(),
            _ => EndReason::Completed,
        };
        let answered = active.call.talk_ms(now_ms) > 0.0 || reason == EndReason::Completed;
        let record = record_of(&active, reason.as_str(), now_ms);
        if answered {
            self.last_outcome = Some((Outcome::Ended, active.party));
            self.wrap_up = Some(record);
        } else {
            let text = match reason {
                EndReason::Failed(text) => text,
                other => other.as_str().to_owned(),
            };
            self.last_outcome = Some((Outcome::NotReached(text), active.party));
            self.finished.push(record);
        }
    }

    fn stop_ringing(&mut self, state: CallState) {
        let Some(ringing) = self.ringing.take() else {
            return;
        };
        let (outcome, wire) = match state {
            CallState::Missed => (Outcome::Missed, "missed"),
            CallState::Ended => (Outcome::Abandoned, "abandoned"),
            _ => (Outcome::HandledElsewhere, "elsewhere"),
        };
        self.finished.push(unanswered_record(&ringing, wire));
        self.last_outcome = Some((outcome, ringing.call));
    }

    fn finish_ringing(&mut self, outcome: Outcome, reason: RejectReason) -> Action {
        let Some(ringing) = self.ringing.take() else {
            return Action::Nothing;
        };
        let wire = if reason == RejectReason::Timeout {
            "missed"
        } else {
            "rejected"
        };
        self.finished.push(unanswered_record(&ringing, wire));
        self.last_outcome = Some((outcome, ringing.call));
        Action::Reject {
            call_id: ringing.call_id,
            reason,
            has_remote_id: ringing.has_remote_id,
        }
    }

    fn remember(&mut self, call_id: &str) {
        if self.recent.iter().any(|r| r == call_id) {
            return;
        }
        if self.recent.len() == RECENT_CALL_IDS {
            self.recent.pop_front();
        }
        self.recent.push_back(call_id.to_owned());
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn unanswered_record(ringing: &Ringing, outcome: &str) -> CallRecord {
    CallRecord {
        call_id: ringing.call_id.clone(),
        direction: CallDirection::Inbound,
        number: ringing.call.phone_number.clone(),
        name: ringing.call.caller_name.clone(),
        started_at_ms: ringing.offered_ms.max(0.0) as u64,
        duration_s: 0,
        outcome: outcome.to_owned(),
        notes: String::new(),
        disposition: None,
    }
}

fn record_of(active: &ActiveCall, outcome: &str, now_ms: f64) -> CallRecord {
    CallRecord {
        call_id: active.call_id().to_owned(),
        direction: match active.call.direction {
            crate::call::machine::Direction::Inbound => CallDirection::Inbound,
            crate::call::machine::Direction::Outbound => CallDirection::Outbound,
        },
        number: active.party.phone_number.clone(),
        name: active.party.caller_name.clone().or(active.display.clone()),
        started_at_ms: active.started_ms.max(0.0) as u64,
        duration_s: (active.call.talk_ms(now_ms) / 1000.0).round() as u32,
        outcome: outcome.to_owned(),
        notes: String::new(),
        disposition: None,
    }
}

#[cfg(test)]
mod dialled_tests {
    use super::*;
    use serde_json::json;

    fn ring(desk: &mut Desk, id: &str) {
        let call = IncomingCall::from_seed_message(&format!(
            r#"{{"callId":"{id}","phoneNumber":"+14255550123"}}"#
        ))
        .unwrap();
        assert_eq!(desk.offer(call, 0.0, 30_000.0), Action::Ring);
    }

    fn busy(id: &str) -> Action {
        Action::Reject {
            call_id: id.into(),
            reason: RejectReason::Busy,
            has_remote_id: true,
        }
    }

    #[test]
    fn a_makecall_result_with_the_ringing_calls_id_is_refused() {
        let mut desk = Desk::new();
        ring(&mut desk, "a");
        let outbound = json!({"callId": "a", "direction": "outbound", "state": "dialling"});
        assert_eq!(desk.dialled(&outbound, 1.0, 30_000.0), None);
        assert!(desk.active().is_none());
        assert_eq!(desk.ringing().map(|r| r.call_id.as_str()), Some("a"));
    }

    /// The agent dialled; a call started ringing before `makeCall` answered. The agent's call
    /// goes first and the ringing one is refused busy: before, Accept on it replaced the
    /// outbound call, which went on at the hub without the widget (found by the fuzz target).
    #[test]
    fn a_call_that_rang_while_makecall_was_on_its_way_is_refused_busy() {
        let mut desk = Desk::new();
        ring(&mut desk, "in");
        let outbound = json!({"callId": "out", "direction": "outbound", "state": "dialling"});
        assert_eq!(desk.dialled(&outbound, 1.0, 30_000.0), Some(busy("in")));
        assert!(desk.ringing().is_none());
        assert_eq!(desk.active().map(ActiveCall::call_id), Some("out"));
        let records = desk.take_finished();
        assert_eq!(records.len(), 1);
        assert_eq!(
            (records[0].call_id.as_str(), records[0].outcome.as_str()),
            ("in", "busy")
        );
        // The same call delivered again does not ring.
        let again =
            IncomingCall::from_seed_message(r#"{"callId":"in","phoneNumber":"+1"}"#).unwrap();
        assert_eq!(desk.offer(again, 2.0, 30_000.0), Action::Nothing);
    }

    /// After a reconnect the hub lists a call in progress this desk does not know while another
    /// rings here: the call in progress is restored and the ringing one refused busy.
    #[test]
    fn a_resync_restoring_a_call_in_progress_refuses_the_ringing_one() {
        let mut desk = Desk::new();
        ring(&mut desk, "in");
        let listed = [
            json!({"callId": "in", "state": "ringing", "phoneNumber": "+14255550123"}),
            json!({"callId": "up", "state": "connected", "phoneNumber": "+442071838750", "answeredAt": 0.0}),
        ];
        // Newest first: "in" is handled after "up", as a known ringing call that still rings.
        let found = desk.resync(&listed, 5.0, 30_000.0);
        assert_eq!(found.actions, vec![busy("in")]);
        assert!(found.offers.is_empty());
        assert!(desk.ringing().is_none());
        assert_eq!(desk.active().map(ActiveCall::call_id), Some("up"));
    }

    #[test]
    fn accept_never_replaces_the_call_in_progress() {
        let mut desk = Desk::new();
        let outbound = json!({"callId": "out", "direction": "outbound", "state": "dialling"});
        assert_eq!(
            desk.dialled(&outbound, 1.0, 30_000.0),
            Some(Action::Nothing)
        );
        assert_eq!(desk.accept(2.0), Action::Nothing);
        assert_eq!(desk.active().map(ActiveCall::call_id), Some("out"));
    }
}

#[cfg(test)]
mod crm_name_tests {
    use super::*;

    fn offer(desk: &mut Desk, json: &str) -> String {
        let call = IncomingCall::from_seed_message(json).unwrap();
        assert_eq!(desk.offer(call, 0.0, 30_000.0), Action::Ring);
        desk.ringing().unwrap().call_id.clone()
    }

    #[test]
    fn the_crm_names_a_caller_the_telephony_side_did_not() {
        let mut desk = Desk::new();
        let id = offer(
            &mut desk,
            r#"{"PhoneNumber":"+14255550123","callId":"c-1"}"#,
        );
        assert!(!desk.name_from_crm("other", "Dana"));
        assert!(!desk.name_from_crm(&id, "   "));
        assert!(desk.name_from_crm(&id, " Dana Whitfield "));
        assert_eq!(
            desk.ringing().unwrap().call.caller_name.as_deref(),
            Some("Dana Whitfield")
        );
        // The name given by the telephony side wins; a second lookup changes nothing.
        assert!(!desk.name_from_crm(&id, "Someone Else"));
        desk.accept(1.0);
        assert_eq!(desk.active().unwrap().title(), "Dana Whitfield");
    }

    #[test]
    fn a_named_caller_keeps_their_name_and_an_active_call_can_be_named() {
        let mut desk = Desk::new();
        let id = offer(
            &mut desk,
            r#"{"PhoneNumber":"+1","callerName":"Ada","callId":"c-2"}"#,
        );
        assert!(!desk.name_from_crm(&id, "Dana"));
        let mut desk = Desk::new();
        let id = offer(&mut desk, r#"{"PhoneNumber":"+2","callId":"c-3"}"#);
        desk.accept(1.0);
        assert!(desk.name_from_crm(&id, &"x".repeat(500)));
        assert_eq!(
            desk.active().unwrap().title().chars().count(),
            crate::notification::MAX_TEXT_CHARS
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(id: Option<&str>) -> IncomingCall {
        IncomingCall {
            call_id: id.map(str::to_owned),
            phone_number: "+14255550123".into(),
            caller_name: None,
            queue: None,
            comments: None,
        }
    }

    fn update(id: &str, state: &str) -> Value {
        json!({"callId": id, "state": state, "direction": "inbound"})
    }

    #[test]
    fn ring_then_accept_then_hang_up_then_wrap_up() {
        let mut desk = Desk::new();
        assert_eq!(desk.offer(call(Some("c1")), 0.0, 30_000.0), Action::Ring);
        assert_eq!(desk.ringing().unwrap().deadline_ms, 30_000.0);
        assert_eq!(
            desk.accept(1_000.0),
            Action::Accept {
                call_id: "c1".into(),
                has_remote_id: true
            }
        );
        assert!(desk.ringing().is_none());
        let active = desk.active().unwrap();
        assert_eq!(active.call_id(), "c1");
        assert_eq!(active.call.phase(), &CallPhase::Connected);
        assert_eq!(
            desk.hang_up(61_000.0),
            Action::HangUp {
                call_id: "c1".into()
            }
        );
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::Ended);
        assert_eq!(desk.hang_up(62_000.0), Action::Nothing);
        let wrap = desk.wrap_up().unwrap();
        assert_eq!((wrap.duration_s, wrap.outcome.as_str()), (60, "completed"));
        assert!(desk.take_finished().is_empty(), "recorded after wrap-up");
        let record = desk
            .finish_wrap_up("Refund agreed", Some("Resolved".into()))
            .unwrap();
        assert_eq!(record.notes, "Refund agreed");
        assert_eq!(record.disposition.as_deref(), Some("Resolved"));
        assert_eq!(desk.take_finished(), vec![record]);
        assert!(desk.wrap_up().is_none());
    }

    #[test]
    fn a_new_call_files_the_pending_wrap_up() {
        let mut desk = Desk::new();
        desk.offer(call(Some("c1")), 0.0, 30_000.0);
        desk.accept(1.0);
        desk.hang_up(2_000.0);
        assert!(desk.wrap_up().is_some());
        assert_eq!(
            desk.offer(call(Some("c2")), 3_000.0, 30_000.0),
            Action::Ring
        );
        desk.accept(4_000.0);
        assert!(desk.wrap_up().is_none());
        let finished = desk.take_finished();
        assert_eq!(finished.len(), 1);
        assert_eq!(
            (finished[0].call_id.as_str(), finished[0].notes.as_str()),
            ("c1", "")
        );
    }

    #[test]
    fn reject_reports_declined_and_records_it() {
        let mut desk = Desk::new();
        desk.offer(call(Some("c1")), 5.0, 30_000.0);
        assert_eq!(
            desk.reject(),
            Action::Reject {
                call_id: "c1".into(),
                reason: RejectReason::Declined,
                has_remote_id: true
            }
        );
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::Rejected);
        assert_eq!(desk.accept(6.0), Action::Nothing);
        let finished = desk.take_finished();
        assert_eq!(finished.len(), 1);
        assert_eq!(
            (finished[0].outcome.as_str(), finished[0].started_at_ms),
            ("rejected", 5)
        );
    }

    #[test]
    fn timeout_is_missed_and_stale_timers_do_nothing() {
        let mut desk = Desk::new();
        desk.offer(call(Some("c1")), 1_000.0, 5_000.0);
        assert_eq!(desk.ring_timeout(5_999.0), Action::Nothing);
        assert_eq!(
            desk.ring_timeout(6_000.0),
            Action::Reject {
                call_id: "c1".into(),
                reason: RejectReason::Timeout,
                has_remote_id: true
            }
        );
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::Missed);
        assert_eq!(desk.take_finished()[0].outcome, "missed");
        // The next call's ring time is its own: an old timer firing now does nothing.
        desk.offer(call(Some("c2")), 6_000.0, 5_000.0);
        assert_eq!(desk.ring_timeout(6_001.0), Action::Nothing);
    }

    #[test]
    fn busy_while_ringing_or_in_a_call_and_duplicates_dropped() {
        let mut desk = Desk::new();
        desk.offer(call(Some("c1")), 0.0, 30_000.0);
        assert_eq!(desk.offer(call(Some("c1")), 1.0, 30_000.0), Action::Nothing);
        assert_eq!(
            desk.offer(call(Some("c2")), 1.0, 30_000.0),
            Action::Reject {
                call_id: "c2".into(),
                reason: RejectReason::Busy,
                has_remote_id: true
            }
        );
        desk.accept(2.0);
        assert!(matches!(
            desk.offer(call(Some("c3")), 2.0, 30_000.0),
            Action::Reject {
                reason: RejectReason::Busy,
                ..
            }
        ));
        assert_eq!(desk.active().unwrap().call_id(), "c1");
    }

    #[test]
    fn calls_without_id_get_local_ids_and_cannot_be_controlled() {
        let mut desk = Desk::new();
        assert_eq!(desk.offer(call(None), 0.0, 1.0), Action::Ring);
        let r = desk.ringing().unwrap();
        assert!(!r.has_remote_id);
        assert_eq!(r.call_id, "local-1");
        assert_eq!(
            desk.accept(0.5),
            Action::Accept {
                call_id: "local-1".into(),
                has_remote_id: false
            }
        );
        assert_eq!(desk.control(Command::Hold), Err(CallError::NoCall));
    }

    #[test]
    fn decided_elsewhere_stops_ringing() {
        let mut desk = Desk::new();
        desk.offer(call(Some("c1")), 0.0, 30_000.0);
        desk.call_updated(&update("other", "accepted"), 1.0);
        assert!(desk.ringing().is_some());
        desk.call_updated(&update("c1", "ringing"), 1.0);
        assert!(desk.ringing().is_some());
        desk.call_updated(&update("c1", "accepted"), 1.0);
        assert!(desk.ringing().is_none());
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::HandledElsewhere);

        desk.offer(call(Some("c2")), 0.0, 30_000.0);
        desk.call_ended("c2", "abandoned", 2.0);
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::Abandoned);
        let outcomes: Vec<String> = desk
            .take_finished()
            .into_iter()
            .map(|r| r.outcome)
            .collect();
        assert_eq!(outcomes, ["elsewhere", "abandoned"]);

        desk.offer(call(Some("c3")), 0.0, 30_000.0);
        desk.accept(1.0);
        desk.call_ended("c3", "completed", 10_000.0);
        assert!(desk.active().is_none());
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::Ended);
        assert_eq!(desk.wrap_up().unwrap().duration_s, 10);
    }

    #[test]
    fn controls_follow_the_machine_and_the_hub() {
        let mut desk = Desk::new();
        assert_eq!(desk.control(Command::Hold), Err(CallError::NoCall));
        desk.offer(call(Some("c1")), 0.0, 30_000.0);
        desk.accept(1.0);
        assert_eq!(
            desk.control(Command::Hold),
            Ok(Action::Control {
                call_id: "c1".into(),
                command: Command::Hold
            })
        );
        assert!(matches!(
            desk.control(Command::Resume),
            Err(CallError::IllegalCommand { verb: "resume", .. })
        ));
        // Only the hub's report changes the state.
        assert_eq!(desk.active().unwrap().call.phase(), &CallPhase::Connected);
        desk.call_updated(&update("c1", "held"), 2.0);
        assert_eq!(desk.active().unwrap().call.phase(), &CallPhase::OnHold);
        assert!(desk.control(Command::SendDtmf("1".into())).is_err());
        desk.call_updated(
            &json!({"callId": "c1", "state": "connected", "muted": true}),
            3.0,
        );
        let a = desk.active().unwrap();
        assert_eq!((a.call.phase(), a.muted), (&CallPhase::Connected, true));
        desk.call_updated(
            &json!({"callId": "c1", "state": "transferring", "transferTarget": "bob"}),
            4.0,
        );
        let a = desk.active().unwrap();
        assert_eq!(a.call.phase(), &CallPhase::Transferring);
        assert_eq!(a.transfer_target.as_deref(), Some("bob"));
        assert!(desk.control(Command::Conference).is_ok());
        // Completing the transfer ends the agent's leg: wrap-up.
        desk.call_updated(
            &json!({"callId": "c1", "state": "ended", "endReason": "completed"}),
            9_000.0,
        );
        assert!(desk.active().is_none());
        assert_eq!(desk.wrap_up().unwrap().outcome, "completed");
    }

    #[test]
    fn outbound_calls_are_adopted_with_early_updates() {
        let mut desk = Desk::new();
        let created = json!({"callId": "o1", "state": "dialling", "direction": "outbound",
            "phoneNumber": "+442079460958", "display": "+44 20 7946 0958"});
        // The far end alerts before makeCall's result reaches the widget.
        desk.call_updated(
            &json!({"callId": "o1", "state": "alerting", "direction": "outbound"}),
            1.0,
        );
        assert!(desk.active().is_none());
        assert_eq!(desk.dialled(&created, 2.0, 60_000.0), Some(Action::Nothing));
        let a = desk.active().unwrap();
        assert_eq!(a.call.phase(), &CallPhase::Ringing);
        assert_eq!(a.title(), "+44 20 7946 0958");
        assert_eq!(
            desk.dialled(&created, 2.0, 60_000.0),
            None,
            "one call at a time"
        );
        desk.call_updated(&json!({"callId": "o1", "state": "connected"}), 3_000.0);
        assert_eq!(desk.active().unwrap().call.phase(), &CallPhase::Connected);
        assert_eq!(
            desk.hang_up(5_000.0),
            Action::HangUp {
                call_id: "o1".into()
            }
        );
        let wrap = desk.wrap_up().unwrap();
        assert_eq!(wrap.direction, CallDirection::Outbound);
        assert_eq!(wrap.duration_s, 2);
    }

    #[test]
    fn unanswered_outbound_calls_are_recorded_without_wrap_up() {
        let mut desk = Desk::new();
        let created = json!({"callId": "o2", "state": "dialling", "direction": "outbound",
            "phoneNumber": "+14255550000"});
        assert_eq!(desk.dialled(&created, 0.0, 60_000.0), Some(Action::Nothing));
        desk.call_ended("o2", "busy", 1_000.0);
        assert!(desk.active().is_none() && desk.wrap_up().is_none());
        assert_eq!(
            desk.last_outcome().unwrap().0,
            Outcome::NotReached("busy".into())
        );
        let finished = desk.take_finished();
        assert_eq!(
            (finished[0].outcome.as_str(), finished[0].duration_s),
            ("busy", 0)
        );
        // An inbound call object is not an outbound call to adopt.
        assert_eq!(desk.dialled(&update("i1", "ringing"), 0.0, 1.0), None);
    }

    #[test]
    fn recent_ids_are_bounded() {
        let mut desk = Desk::new();
        for i in 0..(RECENT_CALL_IDS + 10) {
            desk.offer(call(Some(&format!("c{i}"))), 0.0, 1.0);
            desk.reject();
        }
        assert_eq!(desk.recent.len(), RECENT_CALL_IDS);
        // The oldest id has been forgotten and would ring again.
        assert_eq!(desk.offer(call(Some("c0")), 0.0, 1.0), Action::Ring);
    }

    #[test]
    fn early_updates_are_bounded() {
        let mut desk = Desk::new();
        for i in 0..(EARLY_UPDATES + 5) {
            desk.call_updated(&update(&format!("x{i}"), "connected"), 0.0);
        }
        assert_eq!(desk.early.len(), EARLY_UPDATES);
    }

    /// Issue 13: a reload (empty desk) restores the held call from the hub with its talk time,
    /// and offers the ringing one; an ended one is not offered.
    #[test]
    fn resync_after_a_reload_restores_the_call_and_offers_the_ringing_one() {
        let mut desk = Desk::new();
        let calls = vec![
            json!({"callId": "r3", "state": "missed", "direction": "inbound", "phoneNumber": "+14255550100"}),
            json!({"callId": "r2", "state": "ringing", "direction": "inbound", "phoneNumber": "+14255550199", "callerName": "Dana"}),
            json!({"callId": "r1", "state": "held", "direction": "inbound", "phoneNumber": "+14255550123",
                   "createdAt": 1_000.0, "answeredAt": 5_000.0}),
        ];
        let offers = desk.resync(&calls, 65_000.0, 30_000.0).offers;
        let active = desk.active().expect("the held call is back");
        assert_eq!(active.call_id(), "r1");
        assert_eq!(active.call.phase(), &CallPhase::OnHold);
        assert_eq!(active.call.talk_ms(65_000.0), 60_000.0);
        assert_eq!(active.party.phone_number, "+14255550123");
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0].call_id.as_deref(), Some("r2"));
        assert_eq!(offers[0].caller_name.as_deref(), Some("Dana"));
        // The same resync again changes nothing and offers the ringing call again (the app's
        // offer drops it as already seen once it was offered).
        let again = desk.resync(&calls, 66_000.0, 30_000.0);
        assert_eq!(desk.active().unwrap().call_id(), "r1");
        assert_eq!(again.offers.len(), 1);
        assert!(again.actions.is_empty());
    }

    /// After a reconnect: the ringing call was answered elsewhere meanwhile and stops ringing;
    /// the call in progress that the hub no longer lists ended while the widget was away.
    #[test]
    fn resync_after_a_reconnect_settles_what_changed_meanwhile() {
        let mut desk = Desk::new();
        desk.offer(call(Some("a")), 0.0, 30_000.0);
        desk.accept(1_000.0);
        let found = desk.resync(&[], 20_000.0, 30_000.0);
        assert_eq!(found, Resync::default());
        assert!(desk.active().is_none(), "ended while away");
        assert!(desk.wrap_up().is_some());
        let mut desk = Desk::new();
        desk.offer(call(Some("b")), 0.0, 30_000.0);
        desk.resync(&[update("b", "accepted")], 1_000.0, 30_000.0);
        assert!(desk.ringing().is_none());
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::HandledElsewhere);
        // A call that is still ringing stays ringing, and is not offered twice.
        let mut desk = Desk::new();
        desk.offer(call(Some("c")), 0.0, 30_000.0);
        assert_eq!(
            desk.resync(&[update("c", "ringing")], 1_000.0, 30_000.0),
            Resync::default()
        );
        assert!(desk.ringing().is_some());
        // Rejected here, but the rejectCall was lost with the connection: the hub still lists
        // it as ringing, so the answer is sent again (as missed), and it is not offered again.
        desk.reject();
        assert_eq!(
            desk.resync(&[update("c", "ringing")], 2_000.0, 30_000.0),
            Resync {
                offers: vec![],
                actions: vec![Action::Reject {
                    call_id: "c".into(),
                    reason: RejectReason::Timeout,
                    has_remote_id: true
                }]
            }
        );
        assert!(desk.ringing().is_none());
    }

    /// The agent hung up while the connection was down: the `hangUp` was lost, so the hub still
    /// lists the call as connected after the reconnect. It is hung up again, not restored; a
    /// call the agent did not hang up here (answered on another device) is still restored.
    #[test]
    fn resync_sends_a_lost_hang_up_again() {
        let mut desk = Desk::new();
        desk.offer(call(Some("h")), 0.0, 30_000.0);
        desk.accept(1_000.0);
        assert_eq!(
            desk.hang_up(5_000.0),
            Action::HangUp {
                call_id: "h".into()
            }
        );
        let found = desk.resync(&[update("h", "connected")], 6_000.0, 30_000.0);
        assert_eq!(
            found.actions,
            vec![Action::HangUp {
                call_id: "h".into()
            }]
        );
        assert!(found.offers.is_empty());
        assert!(desk.active().is_none(), "not back on screen");
        // Once the hub lists it as ended, nothing more is sent.
        let found = desk.resync(&[update("h", "ended")], 7_000.0, 30_000.0);
        assert!(found.actions.is_empty());
        // Offered here but answered on another device: restored, not hung up.
        let mut desk = Desk::new();
        desk.offer(call(Some("e")), 0.0, 30_000.0);
        desk.resync(&[update("e", "accepted")], 1_000.0, 30_000.0);
        let found = desk.resync(&[update("e", "connected")], 2_000.0, 30_000.0);
        assert!(found.actions.is_empty());
        assert_eq!(desk.active().map(|a| a.call_id()), Some("e"));
    }

    /// Only the last [`HUNG_UP_CALL_IDS`] hung-up calls are remembered.
    #[test]
    fn hung_up_ids_are_bounded() {
        let mut desk = Desk::new();
        for i in 0..(HUNG_UP_CALL_IDS + 3) {
            let id = format!("x{i}");
            desk.offer(call(Some(&id)), i as f64 * 10.0, 30_000.0);
            desk.accept(i as f64 * 10.0 + 1.0);
            desk.hang_up(i as f64 * 10.0 + 2.0);
            let _ = desk.finish_wrap_up("", None);
        }
        assert_eq!(desk.hung_up.len(), HUNG_UP_CALL_IDS);
        assert_eq!(desk.hung_up.front().map(String::as_str), Some("x3"));
    }
}
