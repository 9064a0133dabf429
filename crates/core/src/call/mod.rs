//! Call states as the telephony side observes them (`GET /api/calls/{callId}`, DESIGN.md §3),
//! the reasons an agent's widget gives when a ringing call is not accepted, and
//! [`machine`], the agent-side call state machine of third-party call control.

pub mod machine;
pub mod wire;

use serde::{Deserialize, Serialize};

/// The state of a call in the hub's call registry (lower-case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    /// Offered to the agent, not yet answered.
    Ringing,
    /// The agent accepted the call.
    Accepted,
    /// The agent rejected the call.
    Rejected,
    /// Nobody answered within the ring time.
    Missed,
    /// Media is flowing.
    Connected,
    /// On hold.
    Held,
    /// Hung up after being answered.
    Ended,
}

impl CallState {
    /// Whether the call can change no more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallState::Rejected | CallState::Missed | CallState::Ended
        )
    }

    /// Reads a wire name; `None` for a state this version does not know.
    pub fn from_wire(name: &str) -> Option<Self> {
        [
            CallState::Ringing,
            CallState::Accepted,
            CallState::Rejected,
            CallState::Missed,
            CallState::Connected,
            CallState::Held,
            CallState::Ended,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// The wire name (`ringing`, `accepted`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Ringing => "ringing",
            CallState::Accepted => "accepted",
            CallState::Rejected => "rejected",
            CallState::Missed => "missed",
            CallState::Connected => "connected",
            CallState::Held => "held",
            CallState::Ended => "ended",
        }
    }
}

/// Why a ringing call was not accepted (argument of the `rejectCall` hub method).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RejectReason {
    /// The agent pressed Reject (CIF: `DeclinedByAgent`).
    Declined,
    /// The ring time ran out (CIF notification `Timeout`): the call is missed.
    Timeout,
    /// The agent is already on a call.
    Busy,
}

impl RejectReason {
    /// The registry state a call reaches for this reason.
    pub fn resulting_state(self) -> CallState {
        match self {
            RejectReason::Timeout => CallState::Missed,
            RejectReason::Declined | RejectReason::Busy => CallState::Rejected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names() {
        assert_eq!(serde_json::to_string(&CallState::Held).unwrap(), "\"held\"");
        assert_eq!(CallState::Missed.as_str(), "missed");
        assert_eq!(CallState::from_wire("held"), Some(CallState::Held));
        assert_eq!(CallState::from_wire("parked"), None);
        let r: RejectReason = serde_json::from_str("\"timeout\"").unwrap();
        assert_eq!(r.resulting_state(), CallState::Missed);
        assert_eq!(
            RejectReason::Declined.resulting_state(),
            CallState::Rejected
        );
        assert!(serde_json::from_str::<RejectReason>("\"later\"").is_err());
    }

    #[test]
    fn final_states() {
        assert!(CallState::Ended.is_final());
        assert!(!CallState::Ringing.is_final());
    }
}
