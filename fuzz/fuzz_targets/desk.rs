//! The agent's desk (`switchboard_core::Desk`, the call logic the widget runs) driven by any
//! sequence of what can happen to it: offers (repeated, without an id, while busy), the agent's
//! Accept, Reject, hang-up and controls, ring timers (stale or due), the hub's `CallUpdated` and
//! `CallEnded` for known, unknown and finished calls, `makeCall` results, a `getCalls` resync
//! after a reconnect, the CRM's caller name and the end of wrap-up, with a clock that only moves
//! forward. After every step:
//! - **no call is lost**: a call that was ringing, in progress or in wrap-up before the step and
//!   is in none of those after it left a finished record (history, host call log) in that step;
//! - **no call is made up**: every finished record is of a call that was on the desk before,
//!   or of one the step's own call objects brought (a resync may restore and end a call the
//!   hub lists twice);
//! - one call at a time: a call never rings while one is in progress (an offer then is refused
//!   busy; so is a call that rang while the agent's `makeCall` was on its way, or while a resync
//!   restores a call in progress), so Accept can never replace the call in progress;
//! - what the desk tells the widget to send names the call it concerns (Accept: the call that
//!   rang, now in progress; Reject after Reject or a due ring timer: the call that rang), and a
//!   new ring shows the offered call;
//! - records are sane: talk time 0 for calls never answered, start times never after now.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use switchboard_core::call::machine::Command;
use switchboard_core::{Action, Desk, IncomingCall};

const IDS: &[&str] = &["a", "b", "c", "d"];
const STATES: &[&str] = &[
    "ringing",
    "accepted",
    "connected",
    "held",
    "transferring",
    "dialling",
    "alerting",
    "ended",
    "rejected",
    "missed",
    "busy",
    "",
    "bogus",
];
const REASONS: &[&str] = &[
    "completed",
    "missed",
    "rejected",
    "no-answer",
    "busy",
    "failed",
    "abandoned",
    "",
];

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

fn on_desk(desk: &Desk) -> Vec<String> {
    let mut ids = Vec::new();
    ids.extend(desk.ringing().map(|r| r.call_id.clone()));
    ids.extend(desk.active().map(|a| a.call_id().to_owned()));
    ids.extend(desk.wrap_up().map(|w| w.call_id.clone()));
    ids
}

fn call_object(b: &mut Bytes) -> Option<Value> {
    let id = b.pick(IDS)?;
    let state = b.pick(STATES)?;
    let flags = b.byte()?;
    let mut call = json!({ "callId": id, "state": state, "phoneNumber": "+442071838750" });
    if flags & 1 != 0 {
        call["direction"] = json!("outbound");
    }
    if flags & 2 != 0 {
        call["endReason"] = json!(REASONS[(flags >> 4) as usize % REASONS.len()]);
    }
    if flags & 4 != 0 {
        call["answeredAt"] = json!(1_000.0 * f64::from(flags));
    }
    if flags & 8 != 0 {
        call["muted"] = json!(true);
    }
    Some(call)
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mut desk = Desk::new();
    let mut now = 1_000_000.0_f64;
    let ring_ms = 30_000.0;
    for _ in 0..256 {
        let Some(op) = b.byte() else { break };
        now += f64::from(b.byte().unwrap_or(0)) * 250.0;
        let before = on_desk(&desk);
        let ringing_before = desk.ringing().map(|r| r.call_id.clone());
        let mut brought: Vec<String> = Vec::new();
        match op % 13 {
            0 => {
                let Some(id) = b.pick(&["a", "b", "c", "d", "none"]) else {
                    break;
                };
                let call = IncomingCall {
                    call_id: (id != "none").then(|| id.to_owned()),
                    phone_number: "+14255550123".into(),
                    caller_name: None,
                    queue: Some("Sales".into()),
                    comments: None,
                };
                let busy = desk.is_busy();
                match desk.offer(call, now, ring_ms) {
                    Action::Ring => {
                        assert!(!busy, "rang while busy");
                        let r = desk.ringing().expect("a ring shows a ringing call");
                        assert!(id == "none" || r.call_id == id);
                    }
                    Action::Reject { .. } => assert!(busy, "refused while free"),
                    Action::Nothing => {}
                    other => panic!("offer gave {other:?}"),
                }
            }
            1 => match desk.accept(now) {
                Action::Accept { call_id, .. } => {
                    assert_eq!(Some(&call_id), ringing_before.as_ref());
                    assert_eq!(desk.active().map(|a| a.call_id()), Some(call_id.as_str()));
                    assert!(desk.ringing().is_none());
                }
                Action::Nothing => assert!(ringing_before.is_none()),
                other => panic!("accept gave {other:?}"),
            },
            2 | 3 => {
                let action = if op % 13 == 2 {
                    desk.reject()
                } else {
                    desk.ring_timeout(now)
                };
                match action {
                    Action::Reject { call_id, .. } => {
                        assert_eq!(Some(&call_id), ringing_before.as_ref());
                        assert!(desk.ringing().is_none());
                    }
                    Action::Nothing => {}
                    other => panic!("reject gave {other:?}"),
                }
            }
            4 => {
                let _ = desk.hang_up(now);
            }
            5 => {
                let commands = [
                    Command::Hold,
                    Command::Resume,
                    Command::Mute(true),
                    Command::SendDtmf("12#".into()),
                    Command::BlindTransfer("+442071838750".into()),
                    Command::StartConsult("bob".into()),
                    Command::CompleteConsult,
                    Command::CancelConsult,
                    Command::Conference,
                    Command::HangUp,
                ];
                let Some(i) = b.byte() else { break };
                let _ = desk.control(commands[i as usize % commands.len()].clone());
            }
            6 => {
                let Some(call) = call_object(&mut b) else {
                    break;
                };
                brought.push(call["callId"].as_str().unwrap_or_default().to_owned());
                let _ = desk.dialled(&call, now, ring_ms);
            }
            7 => {
                let Some(call) = call_object(&mut b) else {
                    break;
                };
                desk.call_updated(&call, now);
            }
            8 => {
                let Some(n) = b.byte() else { break };
                let mut calls = Vec::new();
                for _ in 0..n % 4 {
                    let Some(call) = call_object(&mut b) else {
                        break;
                    };
                    brought.push(call["callId"].as_str().unwrap_or_default().to_owned());
                    calls.push(call);
                }
                let _ = desk.resync(&calls, now, ring_ms);
            }
            9 => {
                let (Some(id), Some(reason)) = (b.pick(IDS), b.pick(REASONS)) else {
                    break;
                };
                desk.call_ended(id, reason, now);
            }
            10 => {
                let Some(flags) = b.byte() else { break };
                let _ =
                    desk.finish_wrap_up("notes", (flags & 1 != 0).then(|| "Resolved".to_owned()));
            }
            11 => {
                let Some(id) = b.pick(IDS) else { break };
                let _ = desk.name_from_crm(id, "Pat Jones");
            }
            _ => {
                // A ring timer that fires late (or early: a stale one).
                let _ = desk.ring_timeout(now + ring_ms);
            }
        }
        let after = on_desk(&desk);
        let records = desk.take_finished();
        for id in &before {
            if !after.contains(id) {
                assert!(
                    records.iter().any(|r| &r.call_id == id),
                    "call {id} left the desk without a record (op {}; before {before:?}, after {after:?})",
                    op % 13
                );
            }
        }
        for r in &records {
            assert!(
                before.contains(&r.call_id) || brought.contains(&r.call_id),
                "record of a call never on the desk: {r:?}"
            );
            assert!(
                r.started_at_ms as f64 <= now,
                "a call started in the future: {r:?}"
            );
            if r.outcome == "missed"
                || r.outcome == "rejected"
                || r.outcome == "elsewhere"
                || r.outcome == "abandoned"
            {
                assert_eq!(r.duration_s, 0, "an unanswered call with talk time: {r:?}");
            }
        }
        assert!(
            desk.ringing().is_none() || desk.active().is_none(),
            "a call rings during the call in progress (op {})",
            op % 13
        );
    }
});
