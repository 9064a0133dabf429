//! The call registry: what the telephony side observes through `GET /api/calls/{callId}`
//! (DESIGN.md §3, "Call registry").
//!
//! Pure bookkeeping, no I/O and no clock: every operation takes `now` in Unix milliseconds.
//! The registry keeps the newest [`MAX_CALLS`] calls; older ones are forgotten (their ids then
//! answer 404).
//!
//! State machine (`CallState` of `switchboard-core`):
//!
//! ```text
//! ringing ──accept──▶ accepted ──hold──▶ held ──resume──▶ connected ──hold──▶ held …
//!    │                    │                │                  │
//!    ├─reject(declined|busy)──▶ rejected   └──────hang up─────┴──▶ ended (completed)
//!    ├─reject(timeout) / ring backstop ──▶ missed
//!    └─caller hangs up ──▶ ended (abandoned)
//! ```

use std::collections::{HashMap, VecDeque};

use serde::Serialize;
use switchboard_core::{CallState, IncomingCall, RejectReason};

/// How many calls the registry remembers; the oldest is dropped when a new one comes in.
pub const MAX_CALLS: usize = 10_000;

/// Why a call ended, the second argument of the `CallEnded(callId, reason)` hub target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndReason {
    /// Answered, then hung up (by the agent or the caller).
    Completed,
    /// Not answered in time (ring backstop, or the widget's own timeout).
    Missed,
    /// The agent rejected it (declined or busy).
    Rejected,
    /// The caller hung up while it was still ringing.
    Abandoned,
}

impl EndReason {
    /// The wire name (`completed`, `missed`, `rejected`, `abandoned`).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::Missed => "missed",
            EndReason::Rejected => "rejected",
            EndReason::Abandoned => "abandoned",
        }
    }
}

/// One call as the registry keeps it, serialised as the body of `GET /api/calls/{callId}` and
/// as the argument of `CallUpdated(call)` and of the `acceptCall`/`rejectCall`/`hangUp` results:
///
/// ```json
/// {"callId":"c1","state":"accepted","agent":"alice","phoneNumber":"+14255550123",
///  "callerName":"Dana","queue":"Sales","comments":"Billing","direction":"inbound",
///  "createdAt":1763750000000,"answeredAt":1763750004000}
/// ```
///
/// Optional fields (`callerName`, `queue`, `comments`, `answeredAt`, `endedAt`, `rejectReason`,
/// `endReason`, `acknowledgement`) are left out when unset. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    /// The telephony system's id, or one the hub assigned.
    pub call_id: String,
    /// Where the call is now.
    pub state: CallState,
    /// The user id of the agent the call was offered to.
    pub agent: String,
    /// The caller's number.
    pub phone_number: String,
    /// The caller's name, if the telephony system sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_name: Option<String>,
    /// The queue or line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The sender's free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    /// Always `inbound` for now.
    pub direction: &'static str,
    /// When the call was registered.
    pub created_at: u64,
    /// When the agent accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<u64>,
    /// When it reached `rejected`, `missed` or `ended`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    /// The reason given to `rejectCall`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<RejectReason>,
    /// The reason sent with `CallEnded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// The seed acknowledgement the widget sent with `sendMessage` (`Accepted`/`Rejected`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledgement: Option<String>,
    /// The hub (lower-cased) whose connections hear about this call.
    #[serde(skip)]
    pub hub: String,
    /// Registration number, so a stale ring backstop cannot expire a re-registered call.
    #[serde(skip)]
    pub generation: u64,
}

impl Call {
    /// The JSON object sent on the wire.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a call serialises")
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
    /// The call's state does not allow the operation.
    #[error("Call {call_id} is {state}, {what}")]
    IllegalState {
        /// The call.
        call_id: String,
        /// Its current state, lower case.
        state: &'static str,
        /// The rest of the sentence (`it can no longer be accepted`).
        what: &'static str,
    },
}

/// What a successful transition produced: the call as it is now and, when it just ended, the
/// reason for `CallEnded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The call after the change.
    pub call: Call,
    /// Set when the call reached a final state with this change.
    pub ended: Option<EndReason>,
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

    /// Whether no call is held.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Registers a ringing call for `agent`. A call id already present is replaced (a
    /// telephony retry re-rings). Returns the new call, whose `generation` the ring backstop
    /// passes to [`expire`](Self::expire).
    pub fn register(
        &mut self,
        call_id: String,
        hub: &str,
        agent: &str,
        incoming: &IncomingCall,
        now: u64,
    ) -> Call {
        if self.calls.remove(&call_id).is_some() {
            self.order.retain(|id| id != &call_id);
        }
        while self.calls.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.calls.remove(&oldest);
                }
                None => break,
            }
        }
        self.next_generation += 1;
        let call = Call {
            call_id: call_id.clone(),
            state: CallState::Ringing,
            agent: agent.to_owned(),
            phone_number: incoming.phone_number.clone(),
            caller_name: incoming.caller_name.clone(),
            queue: incoming.queue.clone(),
            comments: incoming.comments.clone(),
            direction: "inbound",
            created_at: now,
            answered_at: None,
            ended_at: None,
            reject_reason: None,
            end_reason: None,
            acknowledgement: None,
            hub: hub.to_owned(),
            generation: self.next_generation,
        };
        self.order.push_back(call_id.clone());
        self.calls.insert(call_id, call.clone());
        call
    }

    /// The call with this id.
    pub fn get(&self, call_id: &str) -> Option<&Call> {
        self.calls.get(call_id)
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

    /// `acceptCall`: ringing → accepted.
    pub fn accept(
        &mut self,
        call_id: &str,
        agent: &str,
        now: u64,
    ) -> Result<Transition, CallError> {
        let call = self.owned_mut(call_id, agent)?;
        if call.state != CallState::Ringing {
            return Err(illegal(call, "it can no longer be accepted"));
        }
        call.state = CallState::Accepted;
        call.answered_at = Some(now);
        Ok(Transition {
            call: call.clone(),
            ended: None,
        })
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
        if call.state != CallState::Ringing {
            return Err(illegal(call, "it can no longer be rejected"));
        }
        let state = reason.resulting_state();
        let ended = if state == CallState::Missed {
            EndReason::Missed
        } else {
            EndReason::Rejected
        };
        call.state = state;
        call.reject_reason = Some(reason);
        call.ended_at = Some(now);
        call.end_reason = Some(ended);
        Ok(Transition {
            call: call.clone(),
            ended: Some(ended),
        })
    }

    /// `hangUp`: accepted, connected or held → ended (completed).
    pub fn hang_up(
        &mut self,
        call_id: &str,
        agent: &str,
        now: u64,
    ) -> Result<Transition, CallError> {
        let call = self.owned_mut(call_id, agent)?;
        match call.state {
            CallState::Accepted | CallState::Connected | CallState::Held => {}
            CallState::Ringing => {
                return Err(illegal(
                    call,
                    "it cannot be hung up before it is accepted (use rejectCall)",
                ));
            }
            _ => return Err(illegal(call, "it can no longer be hung up")),
        }
        Ok(end(call, EndReason::Completed, now))
    }

    /// `holdCall`: accepted or connected → held.
    pub fn hold(&mut self, call_id: &str, agent: &str) -> Result<Transition, CallError> {
        let call = self.owned_mut(call_id, agent)?;
        if !matches!(call.state, CallState::Accepted | CallState::Connected) {
            return Err(illegal(call, "it cannot be put on hold"));
        }
        call.state = CallState::Held;
        Ok(Transition {
            call: call.clone(),
            ended: None,
        })
    }

    /// `resumeCall`: held → connected.
    pub fn resume(&mut self, call_id: &str, agent: &str) -> Result<Transition, CallError> {
        let call = self.owned_mut(call_id, agent)?;
        if call.state != CallState::Held {
            return Err(illegal(call, "it is not on hold"));
        }
        call.state = CallState::Connected;
        Ok(Transition {
            call: call.clone(),
            ended: None,
        })
    }

    /// The caller hangs up (telephony simulator): a ringing call ends `abandoned`, an answered
    /// one ends `completed`.
    pub fn abandon(&mut self, call_id: &str, now: u64) -> Result<Transition, CallError> {
        let call = self
            .calls
            .get_mut(call_id)
            .ok_or_else(|| CallError::UnknownCall(call_id.to_owned()))?;
        let reason = match call.state {
            CallState::Ringing => EndReason::Abandoned,
            CallState::Accepted | CallState::Connected | CallState::Held => EndReason::Completed,
            _ => return Err(illegal(call, "the caller can no longer hang up")),
        };
        Ok(end(call, reason, now))
    }

    /// The ring backstop: a call of this `generation` still ringing becomes missed. `None` when
    /// there is nothing to do (answered, re-registered or forgotten meanwhile).
    pub fn expire(&mut self, call_id: &str, generation: u64, now: u64) -> Option<Transition> {
        let call = self.calls.get_mut(call_id)?;
        if call.generation != generation || call.state != CallState::Ringing {
            return None;
        }
        call.state = CallState::Missed;
        call.ended_at = Some(now);
        call.end_reason = Some(EndReason::Missed);
        Some(Transition {
            call: call.clone(),
            ended: Some(EndReason::Missed),
        })
    }

    /// `sendMessage(content)`: stores the seed acknowledgement on the agent's most recent call
    /// that is ringing or was just decided (accepted, rejected, missed). Returns that call's id.
    pub fn acknowledge(&mut self, agent: &str, content: &str) -> Option<String> {
        let id = self.order.iter().rev().find(|id| {
            self.calls.get(*id).is_some_and(|c| {
                c.agent == agent
                    && matches!(
                        c.state,
                        CallState::Ringing
                            | CallState::Accepted
                            | CallState::Rejected
                            | CallState::Missed
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

fn end(call: &mut Call, reason: EndReason, now: u64) -> Transition {
    call.state = CallState::Ended;
    call.ended_at = Some(now);
    call.end_reason = Some(reason);
    Transition {
        call: call.clone(),
        ended: Some(reason),
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
    }

    #[test]
    fn accept_then_hang_up() {
        let mut reg = CallRegistry::new();
        ring(&mut reg, "c1");
        let t = reg.accept("c1", "alice", 2000).unwrap();
        assert_eq!(t.call.state, CallState::Accepted);
        assert_eq!(t.call.answered_at, Some(2000));
        assert_eq!(t.ended, None);
        let t = reg.hang_up("c1", "alice", 3000).unwrap();
        assert_eq!(t.call.state, CallState::Ended);
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
        assert_eq!(t.call.state, CallState::Missed);
        assert_eq!(t.ended, Some(EndReason::Missed));
        assert_eq!(t.call.to_json()["rejectReason"], "timeout");
        let t = reg.reject("c2", "alice", RejectReason::Busy, 5).unwrap();
        assert_eq!(t.call.state, CallState::Rejected);
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
        assert_eq!(reg.hold("c2", "alice").unwrap().call.state, CallState::Held);
        assert_eq!(
            reg.resume("c2", "alice").unwrap().call.state,
            CallState::Connected
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
        assert_eq!(t.call.state, CallState::Missed);
        assert!(reg.expire("c1", second.generation, 51).is_none());
    }

    #[test]
    fn bounded_newest_first() {
        let mut reg = CallRegistry::with_capacity(3);
        for i in 0..5 {
            ring(&mut reg, &format!("c{i}"));
        }
        assert_eq!(reg.len(), 3);
        assert!(reg.get("c0").is_none());
        let ids: Vec<_> = reg.newest(10).into_iter().map(|c| c.call_id).collect();
        assert_eq!(ids, ["c4", "c3", "c2"]);
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
