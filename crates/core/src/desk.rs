//! The agent's desk: which call is ringing, which one is in progress, and what to do with each
//! notification, acknowledgement and hub event. Pure; the widget holds one [`Desk`] and turns
//! its [`Action`]s into hub invocations and UI.
//!
//! Rules (a contact-centre softphone's, not a demo's):
//! - one call rings at a time; an offer while another rings or is in progress is answered
//!   `busy` at once, so the telephony system can route it elsewhere;
//! - a repeated delivery of the ringing call (same call id; Azure SignalR is at-most-once but
//!   backends retry) does not ring twice;
//! - the ring time is the configured one; when it runs out the call is reported missed
//!   (`rejectCall(callId, "timeout")`) and the agent sees "Missed call";
//! - a call accepted, rejected or ended elsewhere (another tab, the caller hanging up, the
//!   hub's own timeout) stops ringing here.

use std::collections::VecDeque;

use crate::call::{CallState, RejectReason};
use crate::notification::IncomingCall;

/// How many recent call ids are remembered to drop repeated deliveries.
pub const RECENT_CALL_IDS: usize = 64;

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
    /// Nothing to do (a duplicate, a stale timer, an event for another call).
    Nothing,
}

/// The agent's calls.
#[derive(Debug, Clone, Default)]
pub struct Desk {
    ringing: Option<Ringing>,
    active: Option<Ringing>,
    last_outcome: Option<(Outcome, IncomingCall)>,
    recent: VecDeque<String>,
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
    pub fn active(&self) -> Option<&Ringing> {
        self.active.as_ref()
    }

    /// How the last call ended, for the "Missed call from …" line.
    pub fn last_outcome(&self) -> Option<&(Outcome, IncomingCall)> {
        self.last_outcome.as_ref()
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
        if self.ringing.is_some() || self.active.is_some() {
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
        });
        Action::Ring
    }

    /// The agent pressed Accept.
    pub fn accept(&mut self) -> Action {
        let Some(ringing) = self.ringing.take() else {
            return Action::Nothing;
        };
        let action = Action::Accept {
            call_id: ringing.call_id.clone(),
            has_remote_id: ringing.has_remote_id,
        };
        self.last_outcome = Some((Outcome::Accepted, ringing.call.clone()));
        self.active = Some(ringing);
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

    /// The agent hung up the call in progress.
    pub fn hang_up(&mut self) -> Action {
        match self.active.take() {
            Some(active) => {
                self.last_outcome = Some((Outcome::Ended, active.call.clone()));
                Action::HangUp {
                    call_id: active.call_id,
                }
            }
            None => Action::Nothing,
        }
    }

    /// The hub says the call changed state (`CallUpdated`). A ringing call that is no longer
    /// ringing was decided elsewhere and stops ringing here.
    pub fn call_updated(&mut self, call_id: &str, state: CallState) {
        if state == CallState::Ringing {
            return;
        }
        if self.ringing.as_ref().is_some_and(|r| r.call_id == call_id) {
            let ringing = self.ringing.take().expect("checked");
            let outcome = match state {
                CallState::Missed => Outcome::Missed,
                CallState::Ended => Outcome::Abandoned,
                _ => Outcome::HandledElsewhere,
            };
            self.last_outcome = Some((outcome, ringing.call));
        } else if state.is_final() && self.active.as_ref().is_some_and(|a| a.call_id == call_id) {
            let active = self.active.take().expect("checked");
            self.last_outcome = Some((Outcome::Ended, active.call));
        }
    }

    /// The hub says the call ended (`CallEnded(callId, reason)`), e.g. the caller hung up.
    pub fn call_ended(&mut self, call_id: &str, reason: &str) {
        let state = match reason {
            "missed" => CallState::Missed,
            "rejected" => CallState::Rejected,
            _ => CallState::Ended,
        };
        self.call_updated(call_id, state);
    }

    fn finish_ringing(&mut self, outcome: Outcome, reason: RejectReason) -> Action {
        let Some(ringing) = self.ringing.take() else {
            return Action::Nothing;
        };
        self.last_outcome = Some((outcome, ringing.call));
        Action::Reject {
            call_id: ringing.call_id,
            reason,
            has_remote_id: ringing.has_remote_id,
        }
    }

    fn remember(&mut self, call_id: &str) {
        if self.recent.len() == RECENT_CALL_IDS {
            self.recent.pop_front();
        }
        self.recent.push_back(call_id.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: Option<&str>) -> IncomingCall {
        IncomingCall {
            call_id: id.map(str::to_owned),
            phone_number: "+14255550123".into(),
            caller_name: None,
            queue: None,
            comments: None,
        }
    }

    #[test]
    fn ring_then_accept_then_hang_up() {
        let mut desk = Desk::new();
        assert_eq!(desk.offer(call(Some("c1")), 0.0, 30_000.0), Action::Ring);
        assert_eq!(desk.ringing().unwrap().deadline_ms, 30_000.0);
        assert_eq!(
            desk.accept(),
            Action::Accept {
                call_id: "c1".into(),
                has_remote_id: true
            }
        );
        assert!(desk.ringing().is_none());
        assert_eq!(desk.active().unwrap().call_id, "c1");
        assert_eq!(
            desk.hang_up(),
            Action::HangUp {
                call_id: "c1".into()
            }
        );
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::Ended);
        assert_eq!(desk.hang_up(), Action::Nothing);
    }

    #[test]
    fn reject_reports_declined() {
        let mut desk = Desk::new();
        desk.offer(call(Some("c1")), 0.0, 30_000.0);
        assert_eq!(
            desk.reject(),
            Action::Reject {
                call_id: "c1".into(),
                reason: RejectReason::Declined,
                has_remote_id: true
            }
        );
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::Rejected);
        assert_eq!(desk.accept(), Action::Nothing);
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
        desk.accept();
        assert!(matches!(
            desk.offer(call(Some("c3")), 2.0, 30_000.0),
            Action::Reject {
                reason: RejectReason::Busy,
                ..
            }
        ));
        assert_eq!(desk.active().unwrap().call_id, "c1");
    }

    #[test]
    fn calls_without_id_get_local_ids() {
        let mut desk = Desk::new();
        assert_eq!(desk.offer(call(None), 0.0, 1.0), Action::Ring);
        let r = desk.ringing().unwrap();
        assert!(!r.has_remote_id);
        assert_eq!(r.call_id, "local-1");
        assert_eq!(
            desk.accept(),
            Action::Accept {
                call_id: "local-1".into(),
                has_remote_id: false
            }
        );
    }

    #[test]
    fn decided_elsewhere_stops_ringing() {
        let mut desk = Desk::new();
        desk.offer(call(Some("c1")), 0.0, 30_000.0);
        desk.call_updated("other", CallState::Accepted);
        assert!(desk.ringing().is_some());
        desk.call_updated("c1", CallState::Ringing);
        assert!(desk.ringing().is_some());
        desk.call_updated("c1", CallState::Accepted);
        assert!(desk.ringing().is_none());
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::HandledElsewhere);

        desk.offer(call(Some("c2")), 0.0, 30_000.0);
        desk.call_ended("c2", "abandoned");
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::Abandoned);

        desk.offer(call(Some("c3")), 0.0, 30_000.0);
        desk.accept();
        desk.call_ended("c3", "completed");
        assert!(desk.active().is_none());
        assert_eq!(desk.last_outcome().unwrap().0, Outcome::Ended);
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
}
