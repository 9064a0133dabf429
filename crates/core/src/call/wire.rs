//! The hub's call events (`CallUpdated(call)`, `CallEnded(callId, reason)`, docs/hub-contract.md)
//! as the [`Signal`]s of the agent-side [`machine`](super::machine): the widget feeds what the
//! hub reports into its [`Call`] and never guesses.
//!
//! The wire `state` adds `accepted` (= connected, just answered) and `alerting` (an outbound
//! call's far end rings) to the machine's phases; an update that repeats the present phase
//! (e.g. `dtmf` grew) maps to no signal.

use serde_json::{Value, json};

use super::machine::{Call, CallPhase, Command, Direction, Signal};

/// The hub method and arguments that carry out `command` on call `call_id`
/// (docs/hub-contract.md, "Hub methods"): `holdCall(callId)`, `resumeCall(callId)`,
/// `muteCall(callId, muted)`, `sendDtmf(callId, digits)`, `blindTransfer(callId, target)`,
/// `startConsult(callId, target)`, `completeConsult(callId)`, `cancelConsult(callId)`,
/// `conference(callId)`, `hangUp(callId)`, `acceptCall(callId)`, `rejectCall(callId)`.
pub fn invocation(call_id: &str, command: &Command) -> (&'static str, Vec<Value>) {
    let id = json!(call_id);
    match command {
        Command::Answer => ("acceptCall", vec![id]),
        Command::Reject => ("rejectCall", vec![id]),
        Command::HangUp => ("hangUp", vec![id]),
        Command::Hold => ("holdCall", vec![id]),
        Command::Resume => ("resumeCall", vec![id]),
        Command::Mute(muted) => ("muteCall", vec![id, json!(muted)]),
        Command::SendDtmf(digits) => ("sendDtmf", vec![id, json!(digits)]),
        Command::BlindTransfer(to) => ("blindTransfer", vec![id, json!(to)]),
        Command::StartConsult(to) => ("startConsult", vec![id, json!(to)]),
        Command::CompleteConsult => ("completeConsult", vec![id]),
        Command::CancelConsult => ("cancelConsult", vec![id]),
        Command::Conference => ("conference", vec![id]),
    }
}

/// The signal that takes `call` to the hub's wire `state`, or `None` when the state is the
/// one the call is in already (or one an end reason reports: use [`signal_for_end`]).
pub fn signal_for_state(call: &Call, state: &str) -> Option<Signal> {
    use CallPhase::*;
    match (call.phase(), state) {
        (Dialling, "alerting") => Some(Signal::Alerting),
        (Dialling | Ringing, "accepted" | "connected") => Some(Signal::Answered),
        (Connected, "held") => Some(Signal::Held),
        (OnHold, "connected") => Some(Signal::Resumed),
        (Connected | OnHold, "transferring") => Some(Signal::ConsultStarted),
        (Transferring, "held") => Some(Signal::TransferFailed),
        (Transferring, "connected") => Some(Signal::Conferenced),
        _ => None,
    }
}

/// The signal for `CallEnded(callId, reason)` (`completed`, `missed`, `rejected`, `abandoned`,
/// `busy`, `no-answer`, `failed`; an unknown reason counts as a hang-up). A colleague who
/// declines an agent-to-agent call ends the caller's leg `rejected`: the machine calls that
/// [`Signal::Busy`].
pub fn signal_for_end(call: &Call, reason: &str) -> Signal {
    match reason {
        "missed" | "no-answer" => Signal::NoAnswer,
        "busy" => Signal::Busy,
        "rejected" if call.direction == Direction::Outbound => Signal::Busy,
        "rejected" => Signal::Rejected,
        "failed" => Signal::Failed("The telephony system failed the call.".into()),
        _ => Signal::HungUp,
    }
}

#[cfg(test)]
mod tests {
    use super::super::machine::EndReason;
    use super::*;

    #[test]
    fn outbound_call_follows_the_hub() {
        let mut call = Call::outbound("a", 0.0, 60_000.0);
        for (t, state) in [(1.0, "dialling"), (2.0, "alerting"), (3.0, "connected")] {
            if let Some(s) = signal_for_state(&call, state) {
                assert!(call.apply(&s, t));
            }
        }
        assert_eq!(call.phase(), &CallPhase::Connected);
        for state in [
            "held",
            "connected",
            "transferring",
            "held",
            "transferring",
            "connected",
        ] {
            let s = signal_for_state(&call, state).expect(state);
            assert!(call.apply(&s, 4.0), "{state}");
        }
        assert!(call.is_conference());
        assert_eq!(signal_for_state(&call, "connected"), None);
        assert!(call.apply(&signal_for_end(&call, "completed"), 5.0));
        assert_eq!(call.phase(), &CallPhase::Ended(EndReason::Completed));
    }

    #[test]
    fn commands_become_hub_invocations() {
        assert_eq!(
            invocation("c1", &Command::Mute(true)),
            ("muteCall", vec![json!("c1"), json!(true)])
        );
        assert_eq!(
            invocation("c1", &Command::SendDtmf("12#".into())),
            ("sendDtmf", vec![json!("c1"), json!("12#")])
        );
        assert_eq!(
            invocation("c1", &Command::StartConsult("bob".into())),
            ("startConsult", vec![json!("c1"), json!("bob")])
        );
        assert_eq!(
            invocation("c1", &Command::Hold),
            ("holdCall", vec![json!("c1")])
        );
        assert_eq!(invocation("c1", &Command::HangUp).0, "hangUp");
    }

    #[test]
    fn end_reasons() {
        let inbound = Call::inbound("i", 0.0, 1.0);
        let outbound = Call::outbound("o", 0.0, 1.0);
        assert_eq!(signal_for_end(&inbound, "rejected"), Signal::Rejected);
        assert_eq!(signal_for_end(&outbound, "rejected"), Signal::Busy);
        assert_eq!(signal_for_end(&outbound, "no-answer"), Signal::NoAnswer);
        assert_eq!(signal_for_end(&inbound, "abandoned"), Signal::HungUp);
        let mut call = Call::inbound("i", 0.0, 1.0);
        assert!(call.apply(&signal_for_state(&call, "accepted").unwrap(), 1.0));
        assert_eq!(call.phase(), &CallPhase::Connected);
    }
}
