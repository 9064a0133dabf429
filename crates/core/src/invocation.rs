//! How the widget carries out a desk [`Action`] in hub mode: the hub methods to invoke, in
//! order (docs/hub-contract.md, "Hub methods"). Typed methods carry the call id; the seed's
//! `sendMessage("Accepted"|"Rejected")` acknowledgement follows for compatibility (not after a
//! ring timeout: the seed had no such answer).

use serde_json::{Value, json};

use crate::call::RejectReason;
use crate::call::wire;
use crate::desk::Action;

/// One hub invocation: the method's name and its arguments.
pub type Invocation = (&'static str, Vec<Value>);

/// The invocations that carry out `action`; none for [`Action::Nothing`] and [`Action::Ring`]
/// (ringing is the widget's own business).
pub fn invocations(action: &Action) -> Vec<Invocation> {
    match action {
        Action::Nothing | Action::Ring => Vec::new(),
        Action::Accept {
            call_id,
            has_remote_id,
        } => {
            let mut calls = Vec::new();
            if *has_remote_id {
                calls.push(("acceptCall", vec![json!(call_id)]));
            }
            calls.push(("sendMessage", vec![json!("Accepted")]));
            calls
        }
        Action::Reject {
            call_id,
            reason,
            has_remote_id,
        } => {
            let mut calls = Vec::new();
            if *has_remote_id {
                calls.push(("rejectCall", vec![json!(call_id), json!(reason)]));
            }
            if *reason != RejectReason::Timeout {
                calls.push(("sendMessage", vec![json!("Rejected")]));
            }
            calls
        }
        Action::HangUp { call_id } => vec![("hangUp", vec![json!(call_id)])],
        Action::Control { call_id, command } => vec![wire::invocation(call_id, command)],
    }
}

/// `setAgentState(state)`: the agent chose `state` (docs/hub-contract.md, "Agent state"); the
/// completion is the hub's `AgentState`.
pub fn set_agent_state(state: &str) -> Invocation {
    ("setAgentState", vec![json!(state)])
}

/// `getAgentState()`: the agent's state as the hub keeps it (after every (re)connect); the
/// completion is the hub's `AgentState`.
pub fn get_agent_state() -> Invocation {
    ("getAgentState", Vec::new())
}

/// `submitWrapUp(callId, {"disposition"?, "notes"?, "durationMs"})`: the agent saved the
/// wrap-up of `call_id`; `duration_ms` is the time spent in wrap-up, in ms. An empty
/// disposition or empty notes are left out. The completion is the call with its `wrapUp`.
pub fn submit_wrap_up(
    call_id: &str,
    disposition: Option<&str>,
    notes: &str,
    duration_ms: u64,
) -> Invocation {
    let mut wrap_up = serde_json::Map::new();
    if let Some(d) = disposition.filter(|d| !d.trim().is_empty()) {
        wrap_up.insert("disposition".into(), json!(d));
    }
    if !notes.trim().is_empty() {
        wrap_up.insert("notes".into(), json!(notes));
    }
    wrap_up.insert("durationMs".into(), json!(duration_ms));
    ("submitWrapUp", vec![json!(call_id), Value::Object(wrap_up)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::machine::Command;

    #[test]
    fn nothing_and_ring_send_nothing() {
        assert!(invocations(&Action::Nothing).is_empty());
        assert!(invocations(&Action::Ring).is_empty());
    }

    #[test]
    fn accept_names_the_call_then_acknowledges_like_the_seed() {
        let action = Action::Accept {
            call_id: "c1".into(),
            has_remote_id: true,
        };
        assert_eq!(
            invocations(&action),
            vec![
                ("acceptCall", vec![json!("c1")]),
                ("sendMessage", vec![json!("Accepted")]),
            ]
        );
        // A seed call without an id of its own: the acknowledgement only.
        let action = Action::Accept {
            call_id: "local-1".into(),
            has_remote_id: false,
        };
        assert_eq!(
            invocations(&action),
            vec![("sendMessage", vec![json!("Accepted")])]
        );
    }

    #[test]
    fn reject_carries_the_reason_and_a_timeout_sends_no_acknowledgement() {
        let reject = |reason, has_remote_id| Action::Reject {
            call_id: "c1".into(),
            reason,
            has_remote_id,
        };
        assert_eq!(
            invocations(&reject(RejectReason::Declined, true)),
            vec![
                ("rejectCall", vec![json!("c1"), json!("declined")]),
                ("sendMessage", vec![json!("Rejected")]),
            ]
        );
        assert_eq!(
            invocations(&reject(RejectReason::Busy, true)),
            vec![
                ("rejectCall", vec![json!("c1"), json!("busy")]),
                ("sendMessage", vec![json!("Rejected")]),
            ]
        );
        assert_eq!(
            invocations(&reject(RejectReason::Timeout, true)),
            vec![("rejectCall", vec![json!("c1"), json!("timeout")])]
        );
        assert!(invocations(&reject(RejectReason::Timeout, false)).is_empty());
        assert_eq!(
            invocations(&reject(RejectReason::Declined, false)),
            vec![("sendMessage", vec![json!("Rejected")])]
        );
    }

    #[test]
    fn agent_state_invocations_carry_the_contracts_arguments() {
        assert_eq!(
            set_agent_state("Break"),
            ("setAgentState", vec![json!("Break")])
        );
        assert_eq!(get_agent_state(), ("getAgentState", vec![]));
        assert_eq!(
            submit_wrap_up("c1", Some("Resolved"), "Refund agreed", 42_000),
            (
                "submitWrapUp",
                vec![
                    json!("c1"),
                    json!({"disposition": "Resolved", "notes": "Refund agreed", "durationMs": 42000})
                ]
            )
        );
        assert_eq!(
            submit_wrap_up("c2", Some(" "), "", 0),
            ("submitWrapUp", vec![json!("c2"), json!({"durationMs": 0})])
        );
        assert_eq!(
            submit_wrap_up("c3", None, "n", 5),
            (
                "submitWrapUp",
                vec![json!("c3"), json!({"notes": "n", "durationMs": 5})]
            )
        );
    }

    #[test]
    fn hang_up_and_controls_name_the_call() {
        assert_eq!(
            invocations(&Action::HangUp {
                call_id: "c1".into()
            }),
            vec![("hangUp", vec![json!("c1")])]
        );
        assert_eq!(
            invocations(&Action::Control {
                call_id: "c1".into(),
                command: Command::Mute(true)
            }),
            vec![("muteCall", vec![json!("c1"), json!(true)])]
        );
        assert_eq!(
            invocations(&Action::Control {
                call_id: "c1".into(),
                command: Command::BlindTransfer("bob".into())
            }),
            vec![("blindTransfer", vec![json!("c1"), json!("bob")])]
        );
    }
}
