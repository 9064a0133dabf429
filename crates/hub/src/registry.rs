//! The call registry: what the telephony side observes through `GET /api/calls/{callId}`
//! (DESIGN.md §3, "Call registry"), and what `CallUpdated(call)` carries.
//!
//! Pure bookkeeping, no I/O and no clock: every operation takes `now` in Unix milliseconds.
//! The registry keeps the newest [`MAX_CALLS`] calls; older ones are forgotten (their ids then
//! answer 404).
//!
//! Each call carries the agent-side state machine of `switchboard-core`
//! ([`switchboard_core::call::machine::Call`]): a command is legal in the registry exactly when
//! the machine allows it, and every change is applied to the machine as the [`Signal`] the
//! widget will see, so hub and widget cannot disagree. The wire `state` adds two legacy
//! distinctions the machine does not make: `accepted` (an inbound call just answered; after a
//! hold/resume it is `connected`) and `alerting` vs `ringing` (outbound vs inbound).
//!
//! ```text
//! inbound:  ringing ──accept──▶ accepted ──hold──▶ held ──resume──▶ connected ──hold──▶ held …
//!    │                    │                │                  │
//!    ├─reject(declined|busy)──▶ rejected   └──────hang up─────┴──▶ ended (completed)
//!    ├─reject(timeout) / ring backstop ──▶ missed
//!    └─caller hangs up ──▶ ended (abandoned)
//! outbound: dialling ──far end alerts──▶ alerting ──far end answers──▶ connected …
//!    │ busy / no answer / failed / agent cancels ──▶ ended (busy|no-answer|failed|abandoned)
//! connected|held ──startConsult──▶ transferring ──cancelConsult──▶ held
//!                                       ├──completeConsult──▶ ended (completed, transferTarget)
//!                                       └──conference──▶ connected (conference: true)
//! connected|held ──blindTransfer──▶ ended (completed, transferTarget)
//! ```

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::call::machine::{self, CallPhase, Command, Signal};
use switchboard_core::{IncomingCall, RejectReason};

/// How many calls the registry remembers; the oldest is dropped when a new one comes in.
pub const MAX_CALLS: usize = 10_000;
/// DTMF digits one `sendDtmf` may carry.
pub const MAX_DTMF_DIGITS: usize = 32;
/// DTMF digits remembered per call (the newest).
pub const KEPT_DTMF_DIGITS: usize = 64;
/// Ring time of the agent-side machine for inbound calls (the hub's backstop decides really).
const MACHINE_RING_MS: f64 = 86_400_000.0;

/// The wire state of a call (`state` of the call object), lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Inbound: offered to the agent, not yet answered.
    Ringing,
    /// Outbound: placed, the far end not yet alerted.
    Dialling,
    /// Outbound: the far end is ringing.
    Alerting,
    /// Inbound: the agent answered (before any hold/resume).
    Accepted,
    /// Inbound: the agent rejected it.
    Rejected,
    /// Inbound: nobody answered in time.
    Missed,
    /// Talking.
    Connected,
    /// On hold.
    Held,
    /// A consult transfer is in progress (the customer is held).
    Transferring,
    /// Over (see `endReason`).
    Ended,
}

impl State {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ringing => "ringing",
            State::Dialling => "dialling",
            State::Alerting => "alerting",
            State::Accepted => "accepted",
            State::Rejected => "rejected",
            State::Missed => "missed",
            State::Connected => "connected",
            State::Held => "held",
            State::Transferring => "transferring",
            State::Ended => "ended",
        }
    }

    /// Whether the call can change no more.
    pub fn is_final(self) -> bool {
        matches!(self, State::Rejected | State::Missed | State::Ended)
    }
}

/// Why a call ended, the second argument of the `CallEnded(callId, reason)` hub target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// Answered, then hung up (by either side) or transferred away.
    Completed,
    /// Inbound: not answered in time (ring backstop, or the widget's own timeout).
    Missed,
    /// Inbound: the agent rejected it. Outbound to a colleague: the colleague declined.
    Rejected,
    /// The caller hung up while it was still ringing (inbound), or the agent cancelled an
    /// outbound call before it was answered.
    Abandoned,
    /// Outbound: the far end is busy.
    Busy,
    /// Outbound: the far end did not answer.
    NoAnswer,
    /// The telephony system failed the call.
    Failed,
}

impl EndReason {
    /// The wire name (`completed`, `missed`, `rejected`, `abandoned`, `busy`, `no-answer`,
    /// `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::Missed => "missed",
            EndReason::Rejected => "rejected",
            EndReason::Abandoned => "abandoned",
            EndReason::Busy => "busy",
            EndReason::NoAnswer => "no-answer",
            EndReason::Failed => "failed",
        }
    }
}

/// One call as the registry keeps it, serialised as the body of `GET /api/calls/{callId}`, as
/// the argument of `CallUpdated(call)` and as the result of every call-control method:
///
/// ```json
/// {"callId":"c1","state":"accepted","agent":"alice","phoneNumber":"+14255550123",
///  "callerName":"Dana","queue":"Sales","comments":"Billing","direction":"inbound",
///  "createdAt":1763750000000,"answeredAt":1763750004000}
/// ```
///
/// Optional fields are left out when unset. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    /// The telephony system's id, or one the hub assigned.
    pub call_id: String,
    /// Where the call is now.
    pub state: State,
    /// The user id of the agent whose call this is.
    pub agent: String,
    /// The other party's number: the caller's (inbound), the dialled E.164 number or the
    /// colleague's extension (outbound).
    pub phone_number: String,
    /// What to show for the other party (`(425) 555-0123`, `bob (ext. 1002)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The caller's name, if the telephony system sent one (internal calls: the calling agent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_name: Option<String>,
    /// The queue or line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The sender's free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// When the call was registered.
    pub created_at: u64,
    /// When it was answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<u64>,
    /// When it reached `rejected`, `missed` or `ended`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    /// Total time the customer spent on hold (consultations included), in ms; left out at 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_ms: Option<u64>,
    /// `true` once a third party was conferenced in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conference: Option<bool>,
    /// The blind/consult transfer target (E.164 number or colleague's user id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_target: Option<String>,
    /// The reason given to `rejectCall`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<RejectReason>,
    /// The reason sent with `CallEnded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// The DTMF digits sent on this call so far (the newest [`KEPT_DTMF_DIGITS`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtmf: Option<String>,
    /// Whether the agent's microphone is muted (`muteCall`); left out until first set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted: Option<bool>,
    /// The seed acknowledgement the widget sent with `sendMessage` (`Accepted`/`Rejected`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledgement: Option<String>,
    /// The agent's wrap-up (`submitWrapUp`): disposition, notes, duration, when submitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrap_up: Option<crate::agents::WrapUp>,
    /// The hub (lower-cased) whose connections hear about this call.
    #[serde(skip)]
    pub hub: String,
    /// Registration number, so a stale ring backstop cannot expire a re-registered call.
    #[serde(skip)]
    pub generation: u64,
    /// Agent-to-agent calls: the other agent's leg.
    #[serde(skip)]
    pub peer: Option<String>,
    /// The agent-side state machine, kept in step.
    #[serde(skip)]
    pub machine: machine::Call,
}

impl Call {
    /// The JSON object sent on the wire.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a call serialises")
    }

    /// The copy kept in Redis with `--redis` ([`crate::cluster`]): the wire object plus
    /// `"hub"` (which hub's connections hear about the call) and, on hold, `"heldSince"`
    /// (Unix ms), so that another node can take the call over ([`Call::from_copy`]).
    pub fn to_copy(&self) -> Value {
        let mut value = self.to_json();
        value["hub"] = Value::String(self.hub.clone());
        if let Some(since) = self.machine.held_since_ms() {
            value["heldSince"] = Value::from(since as u64);
        }
        value
    }

    /// The wire object of a copy ([`Call::to_copy`]): without its `hub` and `heldSince`.
    pub fn wire_of_copy(mut copy: Value) -> Value {
        if let Some(object) = copy.as_object_mut() {
            object.remove("hub");
            object.remove("heldSince");
        }
        copy
    }

    /// Rebuilds a call from its copy ([`Call::to_copy`]) when another node takes it over:
    /// the wire fields as written, the agent-side machine replayed to the same phase (answer
    /// at `answeredAt`, the hold time so far, a consult or conference). `generation` is 0
    /// ([`CallRegistry::adopt`] sets it) and the peer link of an agent-to-agent call is not
    /// kept. `None` when the copy is not a call.
    pub fn from_copy(copy: &Value) -> Option<Call> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Copy {
            call_id: String,
            state: State,
            agent: String,
            phone_number: String,
            display: Option<String>,
            caller_name: Option<String>,
            queue: Option<String>,
            comments: Option<String>,
            direction: String,
            created_at: u64,
            answered_at: Option<u64>,
            ended_at: Option<u64>,
            held_ms: Option<u64>,
            conference: Option<bool>,
            transfer_target: Option<String>,
            reject_reason: Option<RejectReason>,
            end_reason: Option<EndReason>,
            dtmf: Option<String>,
            muted: Option<bool>,
            acknowledgement: Option<String>,
            wrap_up: Option<crate::agents::WrapUp>,
            hub: String,
            held_since: Option<u64>,
        }
        let c: Copy = serde_json::from_value(copy.clone()).ok()?;
        let outbound = c.direction == "outbound";
        let created = c.created_at as f64;
        let mut m = if outbound {
            machine::Call::outbound(c.call_id.clone(), created, MACHINE_RING_MS)
        } else {
            machine::Call::inbound(c.call_id.clone(), created, MACHINE_RING_MS)
        };
        let answered = c.answered_at.unwrap_or(c.created_at) as f64;
        let held = c.held_ms.unwrap_or(0) as f64;
        if outbound && c.state != State::Dialling {
            m.apply(&Signal::Alerting, created);
        }
        if c.answered_at.is_some() {
            m.apply(&Signal::Answered, answered);
            if held > 0.0 {
                m.apply(&Signal::Held, answered);
                m.apply(&Signal::Resumed, answered + held);
            }
            if c.conference == Some(true) {
                m.apply(&Signal::ConsultStarted, answered + held);
                m.apply(&Signal::Conferenced, answered + held);
            }
        }
        let now = c
            .ended_at
            .or(c.held_since)
            .map(|t| t as f64)
            .unwrap_or(answered + held);
        match c.state {
            State::Held => {
                m.apply(&Signal::Held, now);
            }
            State::Transferring => {
                m.apply(&Signal::ConsultStarted, now);
            }
            State::Missed => {
                m.apply(&Signal::NoAnswer, now);
            }
            State::Rejected => {
                m.apply(&Signal::Rejected, now);
            }
            State::Ended => {
                m.apply(&Signal::HungUp, now);
            }
            _ => {}
        }
        Some(Call {
            call_id: c.call_id,
            state: c.state,
            agent: c.agent,
            phone_number: c.phone_number,
            display: c.display,
            caller_name: c.caller_name,
            queue: c.queue,
            comments: c.comments,
            direction: if outbound { "outbound" } else { "inbound" },
            created_at: c.created_at,
            answered_at: c.answered_at,
            ended_at: c.ended_at,
            held_ms: c.held_ms,
            conference: c.conference,
            transfer_target: c.transfer_target,
            reject_reason: c.reject_reason,
            end_reason: c.end_reason,
            dtmf: c.dtmf,
            muted: c.muted,
            acknowledgement: c.acknowledgement,
            wrap_up: c.wrap_up,
            hub: c.hub,
            generation: 0,
            peer: None,
            machine: m,
        })
    }

    fn is_outbound(&self) -> bool {
        self.direction == "outbound"
    }

    /// Applies a signal to the machine and derives the wire state. `false` when the machine
    /// refuses it (nothing changes then).
    fn signal(&mut self, signal: &Signal, now: u64) -> Option<Option<EndReason>> {
        if !self.machine.apply(signal, now as f64) {
            return None;
        }
        let held = self.machine.hold_ms(now as f64) as u64;
        self.held_ms = (held > 0).then_some(held);
        let (state, ended) = match self.machine.phase() {
            CallPhase::Dialling => (State::Dialling, None),
            CallPhase::Ringing if self.is_outbound() => (State::Alerting, None),
            CallPhase::Ringing => (State::Ringing, None),
            CallPhase::Connected => {
                if self.answered_at.is_none() {
                    self.answered_at = Some(now);
                }
                (State::Connected, None)
            }
            CallPhase::OnHold => (State::Held, None),
            CallPhase::Transferring => (State::Transferring, None),
            CallPhase::Ended(reason) => {
                use machine::EndReason as M;
                match reason {
                    M::Completed => (State::Ended, Some(EndReason::Completed)),
                    M::Missed => (State::Missed, Some(EndReason::Missed)),
                    M::Rejected => (State::Rejected, Some(EndReason::Rejected)),
                    M::Busy => (State::Ended, Some(EndReason::Busy)),
                    M::NoAnswer => (State::Ended, Some(EndReason::NoAnswer)),
                    M::Failed(_) => (State::Ended, Some(EndReason::Failed)),
                }
            }
        };
        self.state = state;
        if let Some(reason) = ended {
            self.ended_at = Some(now);
            self.end_reason = Some(reason);
        }
        Some(ended)
    }

    /// Ends the call with this wire state and reason, whatever the machine calls it.
    fn finish(&mut self, signal: &Signal, state: State, reason: EndReason, now: u64) -> bool {
        if self.signal(signal, now).is_none() {
            return false;
        }
        self.state = state;
        self.end_reason = Some(reason);
        self.ended_at = Some(now);
        true
    }

    fn transition(&self, ended: Option<EndReason>) -> Transition {
        Transition {
            call: self.clone(),
            ended,
        }
    }
}

/// Why a call-control operation was refused; the `Display` text is what the hub method's
/// completion error carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No call with this id (never registered, or forgotten).
    #[error("Unknown call '{0}'")]
    UnknownCall(String),
    /// The call was offered to another agent.
    #[error("Call {0} is not offered to you")]
    NotYours(String),
    /// The call's state does not allow the operation (the texts of the first methods).
    #[error("Call {call_id} is {state}, {what}")]
    IllegalState {
        /// The call.
        call_id: String,
        /// Its current state, lower case.
        state: &'static str,
        /// The rest of the sentence (`it can no longer be accepted`).
        what: &'static str,
    },
    /// The agent-side machine refuses the command (`Cannot hold a call that is ended.`).
    #[error(transparent)]
    Machine(#[from] machine::CallError),
    /// Anything else, as a sentence.
    #[error("{0}")]
    Other(String),
}

/// What a successful transition produced: the call as it is now and, when it just ended, the
/// reason for `CallEnded`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The call after the change.
    pub call: Call,
    /// Set when the call reached a final state with this change.
    pub ended: Option<EndReason>,
}

/// A new outbound call (see [`CallRegistry::register_outbound`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The dialled number (E.164) or the colleague's extension.
    pub phone_number: String,
    /// What to show.
    pub display: Option<String>,
    /// Internal calls: the name of the called colleague.
    pub callee_name: Option<String>,
}

/// The bounded registry of calls (see the module docs).
#[derive(Debug, Default)]
pub struct CallRegistry {
    calls: HashMap<String, Call>,
    order: VecDeque<String>,
    next_generation: u64,
    capacity: usize,
}

impl CallRegistry {
    /// An empty registry keeping at most [`MAX_CALLS`] calls.
    pub fn new() -> Self {
        Self::with_capacity(MAX_CALLS)
    }

    /// An empty registry keeping at most `capacity` calls (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ..Self::default()
        }
    }

    /// Number of calls held.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether one more call fits without evicting a live call: below capacity, or some
    /// held call is finished (rejected, missed, ended).
    pub fn has_room(&self) -> bool {
        self.calls.len() < self.capacity || self.calls.values().any(|c| c.state.is_final())
    }

    /// Whether no call is held.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    fn insert(&mut self, call: Call) -> Call {
        let call_id = call.call_id.clone();
        if self.calls.remove(&call_id).is_some() {
            self.order.retain(|id| id != &call_id);
        }
        // Only finished calls are evicted, oldest first: never a live one (callers check
        // `has_room` first and refuse the new call when the registry is full of live calls).
        while self.calls.len() >= self.capacity {
            let finished = self
                .order
                .iter()
                .position(|id| self.calls.get(id).is_none_or(|c| c.state.is_final()));
            match finished.and_then(|i| self.order.remove(i)) {
                Some(oldest) => {
                    self.calls.remove(&oldest);
                }
                None => break,
            }
        }
        self.order.push_back(call_id.clone());
        self.calls.insert(call_id, call.clone());
        call
    }

    #[allow(clippy::too_many_arguments)]
    fn blank(
        &mut self,
        call_id: String,
        hub: &str,
        agent: &str,
        phone_number: String,
        direction: &'static str,
        state: State,
        machine: machine::Call,
        now: u64,
    ) -> Call {
        self.next_generation += 1;
        Call {
            call_id,
            state,
            agent: agent.to_owned(),
            phone_number,
            display: None,
            caller_name: None,
            queue: None,
            comments: None,
            direction,
            created_at: now,
            answered_at: None,
            ended_at: None,
            held_ms: None,
            conference: None,
            transfer_target: None,
            reject_reason: None,
            end_reason: None,
            dtmf: None,
            muted: None,
            acknowledgement: None,
            wrap_up: None,
            hub: hub.to_owned(),
            generation: self.next_generation,
            peer: None,
            machine,
        }
    }

    /// Registers a ringing call for `agent`. A call id already present is replaced when that
    /// call still rings or is over (a telephony retry re-rings). Returns the new call, whose
    /// `generation` the ring backstop passes to [`expire`](Self::expire); `None`, changing
    /// nothing, when the call is in progress (answered, held, transferring, or an outbound call
    /// dialling): a repeated delivery of its ring must not turn the call the agent is on back
    /// into a ringing one, which the ring backstop would then end as missed.
    pub fn register(
        &mut self,
        call_id: String,
        hub: &str,
        agent: &str,
        incoming: &IncomingCall,
        now: u64,
    ) -> Option<Call> {
        if self
            .calls
            .get(&call_id)
            .is_some_and(|c| !c.state.is_final() && c.state != State::Ringing)
        {
            return None;
        }
        let machine = machine::Call::inbound(call_id.clone(), now as f64, MACHINE_RING_MS);
        let mut call = self.blank(
            call_id,
            hub,
            agent,
            incoming.phone_number.clone(),
            "inbound",
            State::Ringing,
            machine,
            now,
        );
        call.caller_name = incoming.caller_name.clone();
        call.queue = incoming.queue.clone();
        call.comments = incoming.comments.clone();
        Some(self.insert(call))
    }

    /// Registers an outbound call of `agent`, `dialling`.
    pub fn register_outbound(
        &mut self,
        call_id: String,
        hub: &str,
        agent: &str,
        outbound: Outbound,
        now: u64,
    ) -> Call {
        let machine = machine::Call::outbound(call_id.clone(), now as f64, MACHINE_RING_MS);
        let mut call = self.blank(
            call_id,
            hub,
            agent,
            outbound.phone_number,
            "outbound",
            State::Dialling,
            machine,
            now,
        );
        call.display = outbound.display;
        call.caller_name = outbound.callee_name;
        self.insert(call)
    }

    /// Takes over a call another node held ([`Call::from_copy`]): it replaces any call with
    /// the same id and gets a new `generation` (for its ring backstop here).
    pub fn adopt(&mut self, mut call: Call) -> Call {
        self.next_generation += 1;
        call.generation = self.next_generation;
        self.insert(call)
    }

    /// Forgets a call (another node takes it over); the call as it was.
    pub fn remove(&mut self, call_id: &str) -> Option<Call> {
        let call = self.calls.remove(call_id)?;
        self.order.retain(|id| id != call_id);
        Some(call)
    }

    /// Every call held (any order).
    pub fn all(&self) -> impl Iterator<Item = &Call> + '_ {
        self.calls.values()
    }

    /// Links two legs of an agent-to-agent call.
    pub fn link(&mut self, a: &str, b: &str) {
        if let Some(call) = self.calls.get_mut(a) {
            call.peer = Some(b.to_owned());
        }
        if let Some(call) = self.calls.get_mut(b) {
            call.peer = Some(a.to_owned());
        }
    }

    /// The call with this id.
    pub fn get(&self, call_id: &str) -> Option<&Call> {
        self.calls.get(call_id)
    }

    /// The state of every call in the registry (any order).
    pub fn states(&self) -> impl Iterator<Item = State> + '_ {
        self.calls.values().map(|c| c.state)
    }

    /// Up to `limit` calls, newest first.
    pub fn newest(&self, limit: usize) -> Vec<Call> {
        self.order
            .iter()
            .rev()
            .take(limit)
            .filter_map(|id| self.calls.get(id).cloned())
            .collect()
    }

    /// The calls of `agent` a widget needs to restore after a reload or a reconnect (the
    /// `getCalls` hub method): every call not yet final, and those that became final at most
    /// `recent_ms` before `now` (so a call that rang while the agent was away shows how it
    /// ended). Newest first, at most `limit` — but never without a call that is not final: a
    /// widget ends the call in progress the list leaves out (`Desk::resync`), so a burst of
    /// newer finished calls (offers refused busy during a long call) must not push it out.
    pub fn of_agent(&self, agent: &str, now: u64, recent_ms: u64, limit: usize) -> Vec<Call> {
        let mine = || {
            self.order
                .iter()
                .rev()
                .filter_map(|id| self.calls.get(id))
                .filter(|c| c.agent == agent)
        };
        let live = mine().filter(|c| !c.state.is_final()).count();
        let mut finished_room = limit.saturating_sub(live);
        mine()
            .filter(|c| {
                if !c.state.is_final() {
                    return true;
                }
                let recent = c
                    .ended_at
                    .is_some_and(|t| now.saturating_sub(t) <= recent_ms);
                if recent && finished_room > 0 {
                    finished_room -= 1;
                    return true;
                }
                false
            })
            .cloned()
            .collect()
    }

    fn owned_mut(&mut self, call_id: &str, agent: &str) -> Result<&mut Call, CallError> {
        let call = self
            .calls
            .get_mut(call_id)
            .ok_or_else(|| CallError::UnknownCall(call_id.to_owned()))?;
        if call.agent != agent {
            return Err(CallError::NotYours(call_id.to_owned()));
        }
        Ok(call)
    }

    /// The call of `agent` with this id, for checks before acting.
    pub fn owned(&self, call_id: &str, agent: &str) -> Result<&Call, CallError> {
        let call = self
            .calls
            .get(call_id)
            .ok_or_else(|| CallError::UnknownCall(call_id.to_owned()))?;
        if call.agent != agent {
            return Err(CallError::NotYours(call_id.to_owned()));
        }
        Ok(call)
    }

    /// Checks a command against the call's machine; inbound calls keep the texts of the first
    /// hub methods (`Call c1 is missed, it can no longer be accepted`).
    fn check(
        call: &Call,
        command: &Command,
        legacy: Option<&'static str>,
    ) -> Result<(), CallError> {
        match call.machine.check(command) {
            Ok(()) => Ok(()),
            Err(e) => match legacy {
                Some(what) if !call.is_outbound() => Err(illegal(call, what)),
                _ => Err(CallError::Machine(e)),
            },
        }
    }

    /// `acceptCall`/`answerCall`: ringing → accepted.
    pub fn accept(
        &mut self,
        call_id: &str,
        agent: &str,
        now: u64,
    ) -> Result<Transition, CallError> {
        let call = self.owned_mut(call_id, agent)?;
        Self::check(call, &Command::Answer, Some("it can no longer be accepted"))?;
        call.signal(&Signal::Answered, now);
        call.state = State::Accepted;
        Ok(call.transition(None))
    }

    /// `rejectCall`: ringing → rejected (declined, busy) or missed (timeout).
    pub fn reject(
        &mut self,
        call_id: &str,
        agent: &str,
        reason: RejectReason,
        now: u64,
    ) -> Result<Transition, CallError> {
        let call = self.owned_mut(call_id, agent)?;
        Self::check(call, &Command::Reject, Some("it can no longer be rejected"))?;
        let signal = match reason {
            RejectReason::Timeout => Signal::NoAnswer,
            RejectReason::Declined | RejectReason::Busy => Signal::Rejected,
        };
        let ended = call.signal(&signal, now).flatten();
        call.reject_reason = Some(reason);
        Ok(call.transition(ended))
    }

    /// `hangUp`: accepted, connected, held or transferring → ended (completed); an outbound
    /// call not yet answered → ended (abandoned).
    pub fn hang_up(
        &mut self,
        call_id: &str,
        agent: &str,
        now: u64,
    ) -> Result<Transition, CallError> {
        let call = self.owned_mut(call_id, agent)?;
        let what = if call.state == State::Ringing {
            "it cannot be hung up before it is accepted (use rejectCall)"
        } else {
            "it can no longer be hung up"
        };
        Self::check(call, &Command::HangUp, Some(what))?;
        if matches!(call.state, State::Dialling | State::Alerting) {
            call.finish(&Signal::HungUp, State::Ended, EndReason::Abandoned, now);
            return Ok(call.transition(Some(EndReason::Abandoned)));
        }
        let ended = call.signal(&Signal::HungUp, now).flatten();
        Ok(call.transition(ended))
    }

    /// `submitWrapUp`: stores the agent's wrap-up on their call (any state; a second one
    /// replaces the first). Err: unknown call, or another agent's.
    pub fn set_wrap_up(
        &mut self,
        call_id: &str,
        agent: &str,
        wrap_up: crate::agents::WrapUp,
    ) -> Result<Call, CallError> {
        let call = self.owned_mut(call_id, agent)?;
        call.wrap_up = Some(wrap_up);
        Ok(call.clone())
    }

    /// `holdCall`: accepted or connected → held.
    pub fn hold(&mut self, call_id: &str, agent: &str, now: u64) -> Result<Transition, CallError> {
        let call = self.owned_mut(call_id, agent)?;
        Self::check(call, &Command::Hold, Some("it cannot be put on hold"))?;
        call.signal(&Signal::Held, now);
        Ok(call.transition(None))
    }

    /// `resumeCall`: held → connected.
    pub fn resume(
        &mut self,
        call_id: &str,
        agent: &str,
        now: u64,
    ) -> Result<Transition, CallError> {
        let call = self.owned_mut(call_id, agent)?;
        Self::check(call, &Command::Resume, Some("it is not on hold"))?;
        call.signal(&Signal::Resumed, now);
        Ok(call.transition(None))
    }

    /// Checks a command without acting (the caller has more to check before it acts).
    pub fn check_command(
        &self,
        call_id: &str,
        agent: &str,
        command: &Command,
    ) -> Result<(), CallError> {
        let call = self.owned(call_id, agent)?;
        Self::check(call, command, None)
    }

    /// The commands the telephony simulator carries out at once: DTMF, blind transfer, consult
    /// start/complete/cancel, conference. `target` is what `transferTarget` shows.
    pub fn control(
        &mut self,
        call_id: &str,
        agent: &str,
        command: &Command,
        now: u64,
    ) -> Result<Transition, CallError> {
        let call = self.owned_mut(call_id, agent)?;
        Self::check(call, command, None)?;
        let ended = match command {
            Command::SendDtmf(digits) => {
                if digits.chars().count() > MAX_DTMF_DIGITS {
                    return Err(CallError::Other(format!(
                        "Send at most {MAX_DTMF_DIGITS} DTMF digits at a time."
                    )));
                }
                let mut all = call.dtmf.take().unwrap_or_default();
                all.push_str(digits);
                let skip = all.chars().count().saturating_sub(KEPT_DTMF_DIGITS);
                call.dtmf = Some(all.chars().skip(skip).collect());
                None
            }
            Command::BlindTransfer(target) => {
                call.transfer_target = Some(target.clone());
                call.signal(&Signal::Transferred, now).flatten()
            }
            Command::StartConsult(target) => {
                call.transfer_target = Some(target.clone());
                call.signal(&Signal::ConsultStarted, now).flatten()
            }
            Command::CompleteConsult => call.signal(&Signal::Transferred, now).flatten(),
            Command::CancelConsult => {
                call.transfer_target = None;
                call.signal(&Signal::TransferFailed, now).flatten()
            }
            Command::Conference => {
                call.conference = Some(true);
                call.signal(&Signal::Conferenced, now).flatten()
            }
            Command::Mute(muted) => {
                call.muted = Some(*muted);
                None
            }
            other => {
                return Err(CallError::Other(format!(
                    "{other:?} is not a simulator command"
                )));
            }
        };
        Ok(call.transition(ended))
    }

    /// What the telephony side reports on a call (far end alerting, answering, busy, ...).
    /// `reason` overrides the end reason the machine gives (e.g. `rejected` for a colleague
    /// who declined). `None` when the signal makes no sense now (late, or the call is over).
    pub fn telephony(
        &mut self,
        call_id: &str,
        signal: &Signal,
        reason: Option<EndReason>,
        now: u64,
    ) -> Option<Transition> {
        let call = self.calls.get_mut(call_id)?;
        let ended = call.signal(signal, now)?;
        let ended = match (ended, reason) {
            (Some(_), Some(reason)) => {
                call.end_reason = Some(reason);
                Some(reason)
            }
            (ended, _) => ended,
        };
        Some(call.transition(ended))
    }

    /// Overrides the wire state (the machine already moved); the transition repeats the end
    /// reason.
    pub fn force_state(&mut self, call_id: &str, state: State) -> Option<Transition> {
        let call = self.calls.get_mut(call_id)?;
        call.state = state;
        Some(call.transition(call.end_reason))
    }

    /// The caller hangs up (telephony simulator): a ringing call ends `abandoned`, an answered
    /// one ends `completed`.
    pub fn abandon(&mut self, call_id: &str, now: u64) -> Result<Transition, CallError> {
        let call = self
            .calls
            .get_mut(call_id)
            .ok_or_else(|| CallError::UnknownCall(call_id.to_owned()))?;
        if call.state.is_final() {
            return Err(illegal(call, "the caller can no longer hang up"));
        }
        if matches!(
            call.state,
            State::Ringing | State::Dialling | State::Alerting
        ) {
            call.finish(&Signal::HungUp, State::Ended, EndReason::Abandoned, now);
            return Ok(call.transition(Some(EndReason::Abandoned)));
        }
        let ended = call.signal(&Signal::HungUp, now).flatten();
        Ok(call.transition(ended))
    }

    /// The ring backstop: a call of this `generation` still ringing becomes missed. `None` when
    /// there is nothing to do (answered, re-registered or forgotten meanwhile).
    pub fn expire(&mut self, call_id: &str, generation: u64, now: u64) -> Option<Transition> {
        let call = self.calls.get_mut(call_id)?;
        if call.generation != generation || call.state != State::Ringing {
            return None;
        }
        let ended = call.signal(&Signal::NoAnswer, now)?;
        Some(call.transition(ended))
    }

    /// `sendMessage(content)`: stores the seed acknowledgement on the agent's most recent
    /// inbound call that is ringing or was just decided (accepted, rejected, missed). Returns
    /// that call's id.
    pub fn acknowledge(&mut self, agent: &str, content: &str) -> Option<String> {
        let id = self.order.iter().rev().find(|id| {
            self.calls.get(*id).is_some_and(|c| {
                c.agent == agent
                    && matches!(
                        c.state,
                        State::Ringing | State::Accepted | State::Rejected | State::Missed
                    )
            })
        })?;
        let call = self.calls.get_mut(id)?;
        call.acknowledgement = Some(content.chars().take(200).collect());
        Some(call.call_id.clone())
    }
}

fn illegal(call: &Call, what: &'static str) -> CallError {
    CallError::IllegalState {
        call_id: call.call_id.clone(),
        state: call.state.as_str(),
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming() -> IncomingCall {
        IncomingCall::from_seed_message(r#"{"PhoneNumber":"+14255550123","callerName":"Dana"}"#)
            .unwrap()
    }

    fn ring(reg: &mut CallRegistry, id: &str) -> Call {
        reg.register(id.into(), "switchboard", "alice", &incoming(), 1000)
            .unwrap()
    }

    /// Twenty offers refused during a long call must not push the call out of `getCalls`: the
    /// widget would end it at its next resync.
    #[test]
    fn get_calls_never_leaves_out_a_call_in_progress() {
        let mut reg = CallRegistry::new();
        ring(&mut reg, "long");
        reg.accept("long", "alice", 1500).unwrap();
        for i in 0..25 {
            let id = format!("refused-{i}");
            ring(&mut reg, &id);
            reg.reject(&id, "alice", RejectReason::Busy, 2000 + i)
                .unwrap();
        }
        let listed = reg.of_agent("alice", 3000, 300_000, 20);
        assert_eq!(listed.len(), 20);
        assert_eq!(listed.last().map(|c| c.call_id.as_str()), Some("long"));
        assert_eq!(listed[0].call_id, "refused-24", "newest first");
        assert!(listed[..19].iter().all(|c| c.state == State::Rejected));
    }

    /// A telephony system that retries a ring it thinks was lost: while the call still rings
    /// it rings again (new generation); once the agent answered, the call stays as it is —
    /// before, it became a ringing call again and the ring backstop ended it as missed while
    /// the agent talked.
    #[test]
    fn a_repeated_ring_never_resets_a_call_in_progress() {
        let mut reg = CallRegistry::new();
        let first = ring(&mut reg, "c1");
        let again = reg
            .register("c1".into(), "switchboard", "alice", &incoming(), 1500)
            .expect("a ringing call rings again");
        assert!(again.generation > first.generation);
        reg.accept("c1", "alice", 2000).unwrap();
        assert_eq!(
            reg.register("c1".into(), "switchboard", "alice", &incoming(), 2500),
            None
        );
        let call = reg.get("c1").unwrap();
        assert_eq!(
            (call.state, call.answered_at),
            (State::Accepted, Some(2000))
        );
        assert_eq!(reg.expire("c1", again.generation, 40_000), None);
        assert_eq!(reg.get("c1").unwrap().state, State::Accepted);
        // Over: the id may ring again (a new call).
        reg.hang_up("c1", "alice", 3000).unwrap();
        assert!(
            reg.register("c1".into(), "switchboard", "alice", &incoming(), 3500)
                .is_some()
        );
    }

    #[test]
    fn accept_then_hang_up() {
        let mut reg = CallRegistry::new();
        ring(&mut reg, "c1");
        let t = reg.accept("c1", "alice", 2000).unwrap();
        assert_eq!(t.call.state, State::Accepted);
        assert_eq!(t.call.answered_at, Some(2000));
        assert_eq!(t.ended, None);
        let t = reg.hang_up("c1", "alice", 3000).unwrap();
        assert_eq!(t.call.state, State::Ended);
        assert_eq!(t.ended, Some(EndReason::Completed));
        let json = t.call.to_json();
        assert_eq!(json["state"], "ended");
        assert_eq!(json["endReason"], "completed");
        assert_eq!(json["direction"], "inbound");
        assert!(json.get("hub").is_none());
        assert!(json.get("rejectReason").is_none());
    }

    #[test]
    fn reject_reasons_map_to_states() {
        let mut reg = CallRegistry::new();
        ring(&mut reg, "c1");
        ring(&mut reg, "c2");
        let t = reg.reject("c1", "alice", RejectReason::Timeout, 5).unwrap();
        assert_eq!(t.call.state, State::Missed);
        assert_eq!(t.ended, Some(EndReason::Missed));
        assert_eq!(t.call.to_json()["rejectReason"], "timeout");
        let t = reg.reject("c2", "alice", RejectReason::Busy, 5).unwrap();
        assert_eq!(t.call.state, State::Rejected);
        assert_eq!(t.ended, Some(EndReason::Rejected));
    }

    #[test]
    fn illegal_transitions_say_why() {
        let mut reg = CallRegistry::new();
        ring(&mut reg, "c1");
        reg.reject("c1", "alice", RejectReason::Timeout, 5).unwrap();
        assert_eq!(
            reg.accept("c1", "alice", 6).unwrap_err().to_string(),
            "Call c1 is missed, it can no longer be accepted"
        );
        assert_eq!(
            reg.accept("nope", "alice", 6).unwrap_err().to_string(),
            "Unknown call 'nope'"
        );
        ring(&mut reg, "c2");
        assert_eq!(
            reg.accept("c2", "bob", 6).unwrap_err(),
            CallError::NotYours("c2".into())
        );
        assert!(
            reg.hang_up("c2", "alice", 6)
                .unwrap_err()
                .to_string()
                .contains("rejectCall")
        );
    }

    #[test]
    fn hold_resume_and_abandon() {
        let mut reg = CallRegistry::new();
        ring(&mut reg, "c1");
        assert_eq!(
            reg.abandon("c1", 9).unwrap().ended,
            Some(EndReason::Abandoned)
        );
        assert!(reg.abandon("c1", 10).is_err());
        ring(&mut reg, "c2");
        reg.accept("c2", "alice", 1).unwrap();
        assert_eq!(reg.hold("c2", "alice", 2).unwrap().call.state, State::Held);
        assert_eq!(
            reg.resume("c2", "alice", 3).unwrap().call.state,
            State::Connected
        );
        assert_eq!(
            reg.abandon("c2", 3).unwrap().ended,
            Some(EndReason::Completed)
        );
    }

    #[test]
    fn backstop_only_expires_the_same_ringing_registration() {
        let mut reg = CallRegistry::new();
        let first = ring(&mut reg, "c1");
        let second = ring(&mut reg, "c1");
        assert_eq!(reg.len(), 1);
        assert!(reg.expire("c1", first.generation, 50).is_none());
        let t = reg.expire("c1", second.generation, 50).unwrap();
        assert_eq!(t.call.state, State::Missed);
        assert!(reg.expire("c1", second.generation, 51).is_none());
    }

    #[test]
    fn bounded_newest_first() {
        let mut reg = CallRegistry::with_capacity(3);
        for i in 0..5 {
            // Issue 18: only finished calls are evicted, so each call ends before the next.
            if i > 0 {
                reg.abandon(&format!("c{}", i - 1), 2).unwrap();
            }
            ring(&mut reg, &format!("c{i}"));
        }
        assert_eq!(reg.len(), 3);
        assert!(reg.get("c0").is_none());
        let ids: Vec<_> = reg.newest(10).into_iter().map(|c| c.call_id).collect();
        assert_eq!(ids, ["c4", "c3", "c2"]);
    }

    #[test]
    fn live_calls_are_never_evicted() {
        let mut reg = CallRegistry::with_capacity(2);
        ring(&mut reg, "c0");
        ring(&mut reg, "c1");
        assert!(!reg.has_room(), "full of live calls");
        reg.abandon("c0", 2).unwrap();
        assert!(reg.has_room());
        ring(&mut reg, "c2");
        assert!(reg.get("c0").is_none(), "the finished call made room");
        assert!(reg.get("c1").is_some(), "the live call stays");
    }

    #[test]
    fn a_copy_restores_the_call_in_every_state() {
        let mut reg = CallRegistry::new();
        ring(&mut reg, "r");
        ring(&mut reg, "a");
        reg.accept("a", "alice", 2000).unwrap();
        ring(&mut reg, "h");
        reg.accept("h", "alice", 2000).unwrap();
        reg.hold("h", "alice", 3000).unwrap();
        reg.resume("h", "alice", 4000).unwrap();
        reg.hold("h", "alice", 5000).unwrap();
        ring(&mut reg, "m");
        reg.reject("m", "alice", RejectReason::Timeout, 1500)
            .unwrap();
        let out = reg.register_outbound(
            "o".into(),
            "switchboard",
            "alice",
            Outbound {
                phone_number: "+14255550123".into(),
                display: None,
                callee_name: None,
            },
            1000,
        );
        reg.telephony(&out.call_id, &Signal::Alerting, None, 1100);
        for id in ["r", "a", "h", "m", "o"] {
            let call = reg.get(id).unwrap().clone();
            let copy = call.to_copy();
            assert_eq!(copy["hub"], "switchboard");
            let back = Call::from_copy(&copy).unwrap();
            assert_eq!(back.to_json(), call.to_json(), "{id}");
            assert_eq!(back.hub, "switchboard");
            assert_eq!(back.machine.phase(), call.machine.phase(), "{id}");
        }
        // The restored calls go on: accept the ringing one, resume and hang up the held one.
        let mut other = CallRegistry::new();
        for id in ["r", "h", "o"] {
            other.adopt(Call::from_copy(&reg.get(id).unwrap().to_copy()).unwrap());
        }
        assert_eq!(
            other.accept("r", "alice", 9000).unwrap().call.state,
            State::Accepted
        );
        assert_eq!(
            other.resume("h", "alice", 9000).unwrap().call.state,
            State::Connected
        );
        let t = other.hang_up("h", "alice", 9500).unwrap();
        assert_eq!(t.ended, Some(EndReason::Completed));
        assert_eq!(t.call.held_ms, Some(5000), "1 s + 4 s on hold");
        let t = other.telephony("o", &Signal::Answered, None, 9000).unwrap();
        assert_eq!(t.call.state, State::Connected);
        assert!(Call::from_copy(&serde_json::json!({"callId": "x"})).is_none());
        assert!(other.remove("r").is_some() && other.get("r").is_none());
    }

    #[test]
    fn acknowledgement_goes_to_the_latest_live_call() {
        let mut reg = CallRegistry::new();
        ring(&mut reg, "c1");
        ring(&mut reg, "c2");
        reg.accept("c2", "alice", 1).unwrap();
        assert_eq!(reg.acknowledge("alice", "Accepted").as_deref(), Some("c2"));
        assert_eq!(
            reg.get("c2").unwrap().acknowledgement.as_deref(),
            Some("Accepted")
        );
        assert_eq!(reg.acknowledge("bob", "Accepted"), None);
    }
}
