//! The hub's call registry (`switchboard_hub::registry::CallRegistry`, the calls the hub rings,
//! places and controls) driven by any sequence of what agents, the telephony side, the ring
//! backstop and other cluster nodes do to it, on a registry of four calls (so eviction happens)
//! shared by two agents, with a clock that only moves forward. After every step:
//! - **an agent acts only on their own calls**: an operation by the other agent is refused
//!   (`NotYours`) and changes nothing;
//! - **a call in progress is never reset or lost**: a repeated ring of its id leaves it as it
//!   was, and no insert evicts a call that is not over (only `remove` forgets one);
//! - **over is over**: an agent's operation never brings an ended, missed or rejected call back;
//! - the ring backstop ends only a ringing call of its own generation;
//! - `getCalls` lists every call of the agent not yet over, however many newer ones ended;
//! - a call copied to another node and adopted back says the same on the wire.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_core::IncomingCall;
use switchboard_core::RejectReason;
use switchboard_core::call::machine::{Command, Signal};
use switchboard_hub::registry::{Call, CallError, CallRegistry, Outbound};

const IDS: &[&str] = &["c1", "c2", "c3", "c4", "c5"];
const AGENTS: &[&str] = &["alice", "bob"];

struct Bytes<'a>(&'a [u8]);
impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn pick<'b>(&mut self, from: &[&'b str]) -> Option<&'b str> {
        Some(from[self.byte()? as usize % from.len()])
    }
}

fn live(call: &Call) -> bool {
    !call.state.is_final()
}

fn snapshot(reg: &CallRegistry) -> Vec<Call> {
    let mut calls: Vec<Call> = reg.all().cloned().collect();
    calls.sort_by(|a, b| a.call_id.cmp(&b.call_id));
    calls
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mut reg = CallRegistry::with_capacity(4);
    let mut now = 1_000_000u64;
    let incoming = IncomingCall::from_seed_message(r#"{"phoneNumber":"+14255550123"}"#).unwrap();
    for _ in 0..200 {
        let Some(op) = b.byte() else { break };
        now += u64::from(b.byte().unwrap_or(0)) * 100;
        let (Some(id), Some(agent)) = (b.pick(IDS), b.pick(AGENTS)) else {
            break;
        };
        let before = snapshot(&reg);
        let target = reg.get(id).cloned();
        let foreign = target.as_ref().is_some_and(|c| c.agent != agent);
        // An operation on one call by one agent: Ok/Err, and whether it is an agent's own act.
        let result: Option<Result<(), CallError>> = match op % 16 {
            0 => {
                let kept = target.as_ref().is_some_and(|c| {
                    live(c) && c.state != switchboard_hub::registry::State::Ringing
                });
                match reg.register(id.into(), "switchboard", agent, &incoming, now) {
                    Some(call) => assert!(!kept, "a call in progress was rung again: {call:?}"),
                    None => {
                        assert!(kept, "a ring refused for {target:?}");
                        assert_eq!(
                            reg.get(id),
                            target.as_ref(),
                            "a refused ring changed the call"
                        );
                    }
                }
                None
            }
            1 => {
                if target.as_ref().is_none_or(|c| !live(c)) && reg.has_room() {
                    let out = Outbound {
                        phone_number: "+442071838750".into(),
                        display: None,
                        callee_name: None,
                    };
                    reg.register_outbound(id.into(), "switchboard", agent, out, now);
                }
                None
            }
            2 => Some(reg.accept(id, agent, now).map(drop)),
            3 => {
                let reason = [
                    RejectReason::Declined,
                    RejectReason::Busy,
                    RejectReason::Timeout,
                ][op as usize % 3];
                Some(reg.reject(id, agent, reason, now).map(drop))
            }
            4 => Some(reg.hang_up(id, agent, now).map(drop)),
            5 => Some(reg.hold(id, agent, now).map(drop)),
            6 => Some(reg.resume(id, agent, now).map(drop)),
            7 => {
                let commands = [
                    Command::SendDtmf("12#".into()),
                    Command::BlindTransfer("+442071838750".into()),
                    Command::StartConsult("bob".into()),
                    Command::CompleteConsult,
                    Command::CancelConsult,
                    Command::Conference,
                    Command::Mute(true),
                ];
                let command = &commands[b.byte().unwrap_or(0) as usize % commands.len()];
                Some(reg.control(id, agent, command, now).map(drop))
            }
            8 => {
                let signals = [
                    Signal::Alerting,
                    Signal::Answered,
                    Signal::Busy,
                    Signal::NoAnswer,
                    Signal::Rejected,
                    Signal::HungUp,
                    Signal::Held,
                    Signal::Resumed,
                ];
                let signal = &signals[b.byte().unwrap_or(0) as usize % signals.len()];
                let _ = reg.telephony(id, signal, None, now);
                None
            }
            9 => {
                let _ = reg.abandon(id, now);
                None
            }
            10 => {
                // The ring backstop, of this call's generation or a stale one.
                let generation = target.as_ref().map_or(0, |c| c.generation) - u64::from(op & 1);
                let expired = reg.expire(id, generation, now);
                if let Some(t) = &expired {
                    let was = target.as_ref().expect("expired a call that was not there");
                    assert_eq!(was.state, switchboard_hub::registry::State::Ringing);
                    assert_eq!(was.generation, generation);
                    assert!(!live(&t.call));
                }
                None
            }
            11 => {
                // Another node takes the call over and gives it back.
                if let Some(copy) = reg.remove(id).map(|c| c.to_copy()) {
                    let call = Call::from_copy(&copy).expect("a copy reads back");
                    let back = reg.adopt(call);
                    let was = target.as_ref().unwrap();
                    assert_eq!(
                        back.to_json(),
                        was.to_json(),
                        "a call changed on its way through a copy"
                    );
                }
                None
            }
            12 => {
                let wrap_up = switchboard_hub::agents::WrapUp {
                    disposition: Some("Resolved".into()),
                    notes: None,
                    duration_ms: Some(1000),
                    submitted_at: now,
                };
                let _ = reg.set_wrap_up(id, agent, wrap_up);
                None
            }
            13 => {
                let _ = reg.acknowledge(agent, "Accepted");
                None
            }
            14 => {
                let _ = reg.remove(id);
                None
            }
            _ => {
                let _ = reg.newest(3);
                // getCalls (here with room for 2): every call of the agent not yet over is
                // listed, or the widget would end it at its next resync.
                let listed = reg.of_agent(agent, now, 300_000, 2);
                for call in reg.all().filter(|c| c.agent == agent && live(c)) {
                    assert!(
                        listed.iter().any(|l| l.call_id == call.call_id),
                        "getCalls left out {} in progress",
                        call.call_id
                    );
                }
                None
            }
        };
        let after = snapshot(&reg);
        if let Some(result) = &result {
            if foreign {
                assert!(
                    matches!(result, Err(CallError::NotYours(_))),
                    "{agent} acted on another's call: {result:?}"
                );
            }
            if result.is_err() {
                assert_eq!(before, after, "a refused operation changed the registry");
            }
            if let Some(was) = &target
                && !live(was)
            {
                assert_eq!(
                    reg.get(id).map(|c| c.state),
                    Some(was.state),
                    "a call that was over came back"
                );
            }
        }
        // Only `remove` (ops 11 and 14, which put the call back or forget it on purpose)
        // forgets a call; no other step loses a call that is not over.
        if op % 16 != 14 {
            for call in before.iter().filter(|c| live(c)) {
                assert!(
                    reg.get(&call.call_id).is_some(),
                    "call {} in progress was evicted",
                    call.call_id
                );
            }
        }
    }
});
