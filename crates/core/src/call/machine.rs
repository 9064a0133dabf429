//! One call as the agent's widget controls it, by third-party call control: the widget asks the
//! telephony system (ACS Call Automation, a PBX's CTI, the hub's simulator) to act, and the
//! telephony system reports what happened. So a [`Command`] is only *checked* here — legal in the
//! present state or a [`CallError`] that says why not — and the state changes when a
//! [`Signal`] from the telephony side arrives. That keeps the widget honest: it never shows a
//! call on hold that the switch did not hold.
//!
//! States are the standard ones (dialling, ringing/alerting, connected, on hold, transferring,
//! ended with a reason); the action set is the one real backends expose (seed `000_…`: answer,
//! reject, clear, hold, retrieve, transfer, add third party, DTMF). Time is milliseconds on the
//! caller's clock, passed in; nothing here reads a clock.

use std::fmt;

use thiserror::Error;

/// Which side placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The customer called the agent.
    Inbound,
    /// The agent placed the call.
    Outbound,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// Talked, then someone hung up (or it was transferred away).
    Completed,
    /// Inbound: nobody answered in time, or the caller hung up while it rang.
    Missed,
    /// Inbound: the agent rejected it.
    Rejected,
    /// Outbound: the far end was busy.
    Busy,
    /// Outbound: the far end did not answer.
    NoAnswer,
    /// The telephony system failed the call; the text says why.
    Failed(String),
}

impl EndReason {
    /// The wire name (`completed`, `missed`, `rejected`, `busy`, `no-answer`, `failed`).
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::Missed => "missed",
            EndReason::Rejected => "rejected",
            EndReason::Busy => "busy",
            EndReason::NoAnswer => "no-answer",
            EndReason::Failed(_) => "failed",
        }
    }
}

/// Where the call stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallPhase {
    /// Outbound, placed, the far end not yet alerted.
    Dialling,
    /// Inbound: offered to the agent. Outbound: the far end is alerting.
    Ringing,
    /// Talking.
    Connected,
    /// Held by the agent.
    OnHold,
    /// A consult transfer is in progress: the customer is held while the agent talks to the
    /// transfer target.
    Transferring,
    /// Over.
    Ended(EndReason),
}

impl CallPhase {
    fn name(&self) -> &'static str {
        match self {
            CallPhase::Dialling => "dialling",
            CallPhase::Ringing => "ringing",
            CallPhase::Connected => "connected",
            CallPhase::OnHold => "on hold",
            CallPhase::Transferring => "transferring",
            CallPhase::Ended(_) => "ended",
        }
    }
}

/// What the agent asks the telephony system to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Answer an inbound call that rings.
    Answer,
    /// Reject an inbound call that rings.
    Reject,
    /// Hang up (or cancel an outbound call that has not been answered).
    HangUp,
    /// Put the customer on hold.
    Hold,
    /// Take the customer off hold (retrieve).
    Resume,
    /// Send DTMF digits (`0-9`, `*`, `#`, `A-D`, `,` for a pause).
    SendDtmf(String),
    /// Transfer the customer to a number or user without consulting.
    BlindTransfer(String),
    /// Hold the customer and call the transfer target.
    StartConsult(String),
    /// Connect the customer to the consulted target and leave the call.
    CompleteConsult,
    /// Drop the consultation and go back to the customer (still on hold).
    CancelConsult,
    /// Bring the transfer target into the call with the customer (conference, add third party).
    Conference,
    /// Mute (`true`) or unmute (`false`) the agent's microphone on the call (ACS Call
    /// Automation's mute participant; the customer still hears hold music when held).
    Mute(bool),
}

impl Command {
    fn verb(&self) -> &'static str {
        match self {
            Command::Answer => "answer",
            Command::Reject => "reject",
            Command::HangUp => "hang up",
            Command::Hold => "hold",
            Command::Resume => "resume",
            Command::SendDtmf(_) => "send DTMF on",
            Command::BlindTransfer(_) => "transfer",
            Command::StartConsult(_) => "start a consult transfer on",
            Command::CompleteConsult => "complete a transfer on",
            Command::CancelConsult => "cancel a transfer on",
            Command::Conference => "conference",
            Command::Mute(true) => "mute",
            Command::Mute(false) => "unmute",
        }
    }
}

/// What the telephony system reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Outbound: the far end is alerting.
    Alerting,
    /// The call was answered (by the agent inbound, by the far end outbound).
    Answered,
    /// The far end is busy.
    Busy,
    /// Nobody answered.
    NoAnswer,
    /// The agent's reject took effect.
    Rejected,
    /// The other party hung up (or the agent's hang-up took effect).
    HungUp,
    /// The hold took effect.
    Held,
    /// The resume took effect.
    Resumed,
    /// The consult leg is up: the customer is held, the agent talks to the target.
    ConsultStarted,
    /// The transfer (blind or consult) went through: the agent is out of the call.
    Transferred,
    /// A consult was cancelled or the transfer failed: back to the held customer.
    TransferFailed,
    /// The target joined: a three-way call.
    Conferenced,
    /// The call failed.
    Failed(String),
}

/// A command that the call's state does not allow, or a malformed argument.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    /// E.g. "Cannot hold a call that has ended."
    #[error("Cannot {verb} a call that is {state}.")]
    IllegalCommand {
        /// What was asked ("hold", "answer", …).
        verb: &'static str,
        /// Where the call stands ("ended", "ringing", …).
        state: &'static str,
    },
    /// Inbound-only or outbound-only commands on the other kind of call.
    #[error("Cannot {verb} an {direction} call.")]
    WrongDirection {
        verb: &'static str,
        direction: &'static str,
    },
    /// DTMF digits outside `0-9 * # A-D ,`, or none.
    #[error("\"{0}\" is not a DTMF sequence: use the digits 0-9, * and #.")]
    InvalidDtmf(String),
    /// An empty transfer target.
    #[error("Choose a number or a colleague to transfer to.")]
    NoTransferTarget,
    /// No call in progress that the telephony system knows (the desk's check).
    #[error("There is no call in progress to control.")]
    NoCall,
}

/// One call and its timers.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The telephony system's id.
    pub id: String,
    /// Inbound or outbound.
    pub direction: Direction,
    phase: CallPhase,
    created_ms: f64,
    ring_deadline_ms: Option<f64>,
    answered_ms: Option<f64>,
    ended_ms: Option<f64>,
    held_since_ms: Option<f64>,
    held_total_ms: f64,
    conference: bool,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call {} ({})", self.id, self.phase.name())
    }
}

impl Call {
    /// An inbound call offered to the agent at `now_ms`; it rings for `ring_ms` at most.
    pub fn inbound(id: impl Into<String>, now_ms: f64, ring_ms: f64) -> Self {
        Self::new(
            id.into(),
            Direction::Inbound,
            CallPhase::Ringing,
            now_ms,
            Some(now_ms + ring_ms),
        )
    }

    /// An outbound call placed at `now_ms`; unanswered after `ring_ms` it ends `NoAnswer`.
    pub fn outbound(id: impl Into<String>, now_ms: f64, ring_ms: f64) -> Self {
        Self::new(
            id.into(),
            Direction::Outbound,
            CallPhase::Dialling,
            now_ms,
            Some(now_ms + ring_ms),
        )
    }

    fn new(
        id: String,
        direction: Direction,
        phase: CallPhase,
        now_ms: f64,
        ring_deadline_ms: Option<f64>,
    ) -> Self {
        Self {
            id,
            direction,
            phase,
            created_ms: now_ms,
            ring_deadline_ms,
            answered_ms: None,
            ended_ms: None,
            held_since_ms: None,
            held_total_ms: 0.0,
            conference: false,
        }
    }

    /// Where the call stands.
    pub fn phase(&self) -> &CallPhase {
        &self.phase
    }

    /// Whether the call is over.
    pub fn is_ended(&self) -> bool {
        matches!(self.phase, CallPhase::Ended(_))
    }

    /// Whether a third party was brought in.
    pub fn is_conference(&self) -> bool {
        self.conference
    }

    /// Checks that `command` is legal now. The state does not change: the telephony system's
    /// [`Signal`] will change it.
    pub fn check(&self, command: &Command) -> Result<(), CallError> {
        use CallPhase::*;
        let illegal = || CallError::IllegalCommand {
            verb: command.verb(),
            state: self.phase.name(),
        };
        match command {
            Command::Answer | Command::Reject => {
                if self.direction == Direction::Outbound {
                    return Err(CallError::WrongDirection {
                        verb: command.verb(),
                        direction: "outbound",
                    });
                }
                matches!(self.phase, Ringing)
                    .then_some(())
                    .ok_or_else(illegal)
            }
            Command::HangUp => (!(self.is_ended()
                || self.direction == Direction::Inbound && self.phase == Ringing))
                .then_some(())
                .ok_or_else(illegal),
            Command::Hold => matches!(self.phase, Connected)
                .then_some(())
                .ok_or_else(illegal),
            Command::Resume => matches!(self.phase, OnHold)
                .then_some(())
                .ok_or_else(illegal),
            Command::SendDtmf(digits) => {
                if digits.is_empty()
                    || !digits
                        .chars()
                        .all(|c| c.is_ascii_digit() || "*#ABCD,".contains(c))
                {
                    return Err(CallError::InvalidDtmf(digits.chars().take(32).collect()));
                }
                matches!(self.phase, Connected | Transferring)
                    .then_some(())
                    .ok_or_else(illegal)
            }
            Command::BlindTransfer(target) | Command::StartConsult(target) => {
                if target.trim().is_empty() {
                    return Err(CallError::NoTransferTarget);
                }
                matches!(self.phase, Connected | OnHold)
                    .then_some(())
                    .ok_or_else(illegal)
            }
            Command::CompleteConsult | Command::CancelConsult | Command::Conference => {
                matches!(self.phase, Transferring)
                    .then_some(())
                    .ok_or_else(illegal)
            }
            Command::Mute(_) => matches!(self.phase, Connected | OnHold | Transferring)
                .then_some(())
                .ok_or_else(illegal),
        }
    }

    /// Applies what the telephony system reported at `now_ms`. A signal that makes no sense in
    /// the present state (a late duplicate, say) is ignored and `false` is returned.
    pub fn apply(&mut self, signal: &Signal, now_ms: f64) -> bool {
        use CallPhase::*;
        let next = match (&self.phase, signal) {
            (Ended(_), _) => return false,
            (_, Signal::Failed(reason)) => Ended(EndReason::Failed(reason.clone())),
            (Dialling, Signal::Alerting) => Ringing,
            (Dialling | Ringing, Signal::Answered) => Connected,
            (Dialling | Ringing, Signal::Busy) if self.direction == Direction::Outbound => {
                Ended(EndReason::Busy)
            }
            (Dialling | Ringing, Signal::NoAnswer) => Ended(self.unanswered()),
            (Ringing, Signal::Rejected) if self.direction == Direction::Inbound => {
                Ended(EndReason::Rejected)
            }
            (Dialling | Ringing, Signal::HungUp) => Ended(self.unanswered()),
            (Connected | OnHold | Transferring, Signal::HungUp) => Ended(EndReason::Completed),
            (Connected, Signal::Held) => OnHold,
            (OnHold, Signal::Resumed) => Connected,
            (Connected | OnHold, Signal::ConsultStarted) => Transferring,
            (Connected | OnHold | Transferring, Signal::Transferred) => Ended(EndReason::Completed),
            (Transferring, Signal::TransferFailed) => OnHold,
            (Transferring, Signal::Conferenced) => Connected,
            _ => return false,
        };
        self.enter(next, signal, now_ms);
        true
    }

    fn unanswered(&self) -> EndReason {
        match self.direction {
            Direction::Inbound => EndReason::Missed,
            Direction::Outbound => EndReason::NoAnswer,
        }
    }

    fn enter(&mut self, next: CallPhase, signal: &Signal, now_ms: f64) {
        if matches!(self.phase, CallPhase::OnHold | CallPhase::Transferring)
            && let Some(since) = self.held_since_ms.take()
        {
            self.held_total_ms += (now_ms - since).max(0.0);
        }
        match &next {
            CallPhase::Connected if self.answered_ms.is_none() => self.answered_ms = Some(now_ms),
            CallPhase::OnHold | CallPhase::Transferring => self.held_since_ms = Some(now_ms),
            CallPhase::Ended(_) => self.ended_ms = Some(now_ms),
            _ => {}
        }
        if *signal == Signal::Conferenced {
            self.conference = true;
        }
        if !matches!(next, CallPhase::Dialling | CallPhase::Ringing) {
            self.ring_deadline_ms = None;
        }
        self.phase = next;
    }

    /// When the ring timer fires, if the call is still unanswered.
    pub fn poll_timeout(&self) -> Option<f64> {
        self.ring_deadline_ms
    }

    /// Runs the ring timer: an unanswered call past its deadline ends missed (inbound) or
    /// no-answer (outbound). Returns whether it ended.
    pub fn handle_timeout(&mut self, now_ms: f64) -> bool {
        match self.ring_deadline_ms {
            Some(deadline) if now_ms >= deadline => self.apply(&Signal::NoAnswer, now_ms),
            _ => false,
        }
    }

    /// How long it rang (or has been ringing), in ms.
    pub fn ring_ms(&self, now_ms: f64) -> f64 {
        let until = self.answered_ms.or(self.ended_ms).unwrap_or(now_ms);
        (until - self.created_ms).max(0.0)
    }

    /// Time since the call was answered, until it ended (or now), in ms; 0 if never answered.
    /// Includes time on hold, as talk time on a CDR does.
    pub fn talk_ms(&self, now_ms: f64) -> f64 {
        match self.answered_ms {
            Some(answered) => (self.ended_ms.unwrap_or(now_ms) - answered).max(0.0),
            None => 0.0,
        }
    }

    /// Since when the customer is on hold (on hold or in a consultation), Unix ms; `None`
    /// otherwise. (A hub taking a call over from another node restores it from this.)
    pub fn held_since_ms(&self) -> Option<f64> {
        self.held_since_ms
    }

    /// Total time the customer spent on hold (including consultations), in ms.
    pub fn hold_ms(&self, now_ms: f64) -> f64 {
        self.held_total_ms
            + self
                .held_since_ms
                .map(|since| (self.ended_ms.unwrap_or(now_ms) - since).max(0.0))
                .unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_COMMANDS: fn() -> Vec<Command> = || {
        vec![
            Command::Answer,
            Command::Reject,
            Command::HangUp,
            Command::Hold,
            Command::Resume,
            Command::SendDtmf("1#".into()),
            Command::BlindTransfer("+4930123".into()),
            Command::StartConsult("bob".into()),
            Command::CompleteConsult,
            Command::CancelConsult,
            Command::Conference,
            Command::Mute(true),
            Command::Mute(false),
        ]
    };

    fn connected_inbound() -> Call {
        let mut call = Call::inbound("c1", 0.0, 30_000.0);
        assert!(call.apply(&Signal::Answered, 2_000.0));
        call
    }

    /// The legal commands in each state, exhaustively: everything else is an error.
    #[test]
    fn legal_commands_per_state() {
        let cases: Vec<(Call, Vec<Command>)> = vec![
            (
                Call::inbound("r", 0.0, 1.0),
                vec![Command::Answer, Command::Reject],
            ),
            (Call::outbound("d", 0.0, 1.0), vec![Command::HangUp]),
            (
                connected_inbound(),
                vec![
                    Command::HangUp,
                    Command::Hold,
                    Command::SendDtmf("1#".into()),
                    Command::BlindTransfer("+4930123".into()),
                    Command::StartConsult("bob".into()),
                    Command::Mute(true),
                    Command::Mute(false),
                ],
            ),
            (
                {
                    let mut c = connected_inbound();
                    c.apply(&Signal::Held, 3_000.0);
                    c
                },
                vec![
                    Command::HangUp,
                    Command::Resume,
                    Command::BlindTransfer("+4930123".into()),
                    Command::StartConsult("bob".into()),
                    Command::Mute(true),
                    Command::Mute(false),
                ],
            ),
            (
                {
                    let mut c = connected_inbound();
                    c.apply(&Signal::ConsultStarted, 3_000.0);
                    c
                },
                vec![
                    Command::HangUp,
                    Command::SendDtmf("1#".into()),
                    Command::CompleteConsult,
                    Command::CancelConsult,
                    Command::Conference,
                    Command::Mute(true),
                    Command::Mute(false),
                ],
            ),
            (
                {
                    let mut c = connected_inbound();
                    c.apply(&Signal::HungUp, 3_000.0);
                    c
                },
                vec![],
            ),
        ];
        for (call, legal) in cases {
            for command in ALL_COMMANDS() {
                let result = call.check(&command);
                assert_eq!(
                    result.is_ok(),
                    legal.contains(&command),
                    "{call}: {command:?} gave {result:?}"
                );
            }
        }
    }

    #[test]
    fn illegal_commands_say_why() {
        let mut call = connected_inbound();
        call.apply(&Signal::HungUp, 5_000.0);
        assert_eq!(
            call.check(&Command::Hold).unwrap_err().to_string(),
            "Cannot hold a call that is ended."
        );
        let ringing = Call::inbound("r", 0.0, 1.0);
        assert_eq!(
            ringing.check(&Command::Resume).unwrap_err().to_string(),
            "Cannot resume a call that is ringing."
        );
        assert_eq!(
            Call::outbound("o", 0.0, 1.0)
                .check(&Command::Answer)
                .unwrap_err()
                .to_string(),
            "Cannot answer an outbound call."
        );
        let call = connected_inbound();
        assert_eq!(
            call.check(&Command::SendDtmf("12x".into())),
            Err(CallError::InvalidDtmf("12x".into()))
        );
        assert_eq!(
            call.check(&Command::SendDtmf(String::new())),
            Err(CallError::InvalidDtmf(String::new()))
        );
        assert_eq!(
            call.check(&Command::BlindTransfer("  ".into())),
            Err(CallError::NoTransferTarget)
        );
    }

    #[test]
    fn inbound_answered_held_resumed_hung_up_with_timers() {
        let mut call = Call::inbound("c1", 1_000.0, 30_000.0);
        assert_eq!(call.poll_timeout(), Some(31_000.0));
        assert!(call.apply(&Signal::Answered, 4_000.0));
        assert_eq!(call.poll_timeout(), None);
        assert!(call.apply(&Signal::Held, 10_000.0));
        assert_eq!(call.hold_ms(12_000.0), 2_000.0);
        assert!(call.apply(&Signal::Resumed, 15_000.0));
        assert!(call.apply(&Signal::Held, 20_000.0));
        assert!(call.apply(&Signal::Resumed, 21_000.0));
        assert!(call.apply(&Signal::HungUp, 34_000.0));
        assert_eq!(call.phase(), &CallPhase::Ended(EndReason::Completed));
        assert_eq!(call.ring_ms(99_000.0), 3_000.0);
        assert_eq!(call.talk_ms(99_000.0), 30_000.0);
        assert_eq!(call.hold_ms(99_000.0), 6_000.0);
    }

    #[test]
    fn inbound_endings() {
        let mut call = Call::inbound("a", 0.0, 30_000.0);
        assert!(call.apply(&Signal::Rejected, 1.0));
        assert_eq!(call.phase(), &CallPhase::Ended(EndReason::Rejected));

        let mut call = Call::inbound("b", 0.0, 30_000.0);
        assert!(!call.handle_timeout(29_999.0));
        assert!(call.handle_timeout(30_000.0));
        assert_eq!(call.phase(), &CallPhase::Ended(EndReason::Missed));

        let mut call = Call::inbound("c", 0.0, 30_000.0);
        assert!(call.apply(&Signal::HungUp, 5.0)); // the caller gave up while it rang
        assert_eq!(call.phase(), &CallPhase::Ended(EndReason::Missed));
        assert_eq!(call.talk_ms(10.0), 0.0);
    }

    #[test]
    fn outbound_dialling_alerting_and_its_endings() {
        let mut call = Call::outbound("o", 0.0, 45_000.0);
        assert_eq!(call.phase(), &CallPhase::Dialling);
        assert!(call.apply(&Signal::Alerting, 500.0));
        assert_eq!(call.phase(), &CallPhase::Ringing);
        assert!(call.apply(&Signal::Answered, 6_000.0));
        assert_eq!(call.phase(), &CallPhase::Connected);

        let mut busy = Call::outbound("b", 0.0, 45_000.0);
        assert!(busy.apply(&Signal::Busy, 300.0));
        assert_eq!(busy.phase(), &CallPhase::Ended(EndReason::Busy));

        let mut unanswered = Call::outbound("n", 0.0, 45_000.0);
        unanswered.apply(&Signal::Alerting, 1.0);
        assert!(unanswered.handle_timeout(45_000.0));
        assert_eq!(unanswered.phase(), &CallPhase::Ended(EndReason::NoAnswer));

        let mut failed = Call::outbound("f", 0.0, 45_000.0);
        assert!(failed.apply(&Signal::Failed("Trunk down".into()), 1.0));
        assert_eq!(
            failed.phase(),
            &CallPhase::Ended(EndReason::Failed("Trunk down".into()))
        );
        assert_eq!(EndReason::NoAnswer.as_str(), "no-answer");
    }

    #[test]
    fn consult_transfer_complete_cancel_and_conference() {
        let mut call = connected_inbound();
        assert!(call.apply(&Signal::ConsultStarted, 3_000.0));
        assert_eq!(call.phase(), &CallPhase::Transferring);
        assert!(call.apply(&Signal::TransferFailed, 5_000.0)); // cancelled: customer still held
        assert_eq!(call.phase(), &CallPhase::OnHold);
        assert!(call.apply(&Signal::ConsultStarted, 6_000.0));
        assert!(call.apply(&Signal::Conferenced, 8_000.0));
        assert!(call.is_conference());
        assert_eq!(call.phase(), &CallPhase::Connected);
        assert_eq!(call.hold_ms(9_000.0), 5_000.0);

        let mut call = connected_inbound();
        call.apply(&Signal::ConsultStarted, 3_000.0);
        assert!(call.apply(&Signal::Transferred, 4_000.0));
        assert_eq!(call.phase(), &CallPhase::Ended(EndReason::Completed));
    }

    #[test]
    fn signals_out_of_place_are_ignored() {
        let mut call = Call::inbound("c", 0.0, 1_000.0);
        assert!(!call.apply(&Signal::Resumed, 1.0));
        assert!(!call.apply(&Signal::Busy, 1.0)); // busy means nothing for an inbound offer
        assert_eq!(call.phase(), &CallPhase::Ringing);
        call.apply(&Signal::Answered, 2.0);
        call.apply(&Signal::HungUp, 3.0);
        for signal in [
            Signal::Answered,
            Signal::Held,
            Signal::HungUp,
            Signal::Failed("x".into()),
        ] {
            assert!(!call.apply(&signal, 4.0), "{signal:?} after the end");
        }
        assert_eq!(call.phase(), &CallPhase::Ended(EndReason::Completed));
        assert!(!call.handle_timeout(1e9));
    }
}
