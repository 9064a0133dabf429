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
