//! Call control through the hub (issues 1 and 7): the call hub methods, which [`register`] puts
//! in the hub's method table, outbound calls, agent-to-agent calls, transfers, and the telephony
//! simulator's far end.
//!
//! | method | arguments | result |
//! |---|---|---|
//! | `sendMessage` | `content: string` | void (the seed's acknowledgement, stored on the agent's call) |
//! | `getCalls` | none | `{"calls": [call]}`: the agent's calls not yet final and those that ended in the last 5 minutes, newest first (at most 20, never without a call not yet final): what a widget restores after a reload or a reconnect |
//! | `acceptCall` | `callId` | call |
//! | `rejectCall` | `callId`, `reason?: "declined"\|"timeout"\|"busy"` | call |
//! | `hangUp` | `callId` | call |
//! | `holdCall` | `callId` | call |
//! | `resumeCall` | `callId` | call |
//! | `normalizeNumber` | `input`, `region?` | `{e164, extension?, national, international, region?, tel}` or, for a colleague, `{internal: true, user, extension?, display}` |
//! | `makeCall` | `number` (number, `tel:` URI, colleague's user id or extension) | call (`dialling`, or `alerting` for a colleague) |
//! | `answerCall` | `callId` | call (alias of `acceptCall`) |
//! | `sendDtmf` | `callId`, `digits` (`0-9 * # A-D ,`, ≤ 32) | call (`dtmf` grows) |
//! | `blindTransfer` | `callId`, `target` | call (`ended`, `completed`, `transferTarget`) |
//! | `startConsult` | `callId`, `target` | call (`transferring`, `transferTarget`) |
//! | `completeConsult` | `callId` | call (`ended`, `completed`) |
//! | `cancelConsult` | `callId` | call (`held`) |
//! | `conference` | `callId` | call (`connected`, `conference: true`) |
//! | `muteCall` | `callId`, `muted: boolean` | call (`muted` set) |
//!
//! The far end of an outbound call to an external number (dev simulator) alerts after
//! [`CallConfig::alert_delay`] and then behaves by the last four digits of the number:
//! `0000` busy, `0001` never answers (no-answer after [`CallConfig::far_end_ring_timeout`]),
//! `0002` answers then hangs up after [`CallConfig::far_end_hangup_after`], `0003` fails;
//! anything else answers after [`CallConfig::answer_delay`]. The simulator page can answer,
//! hang up or be busy instead, at any time. Hold, resume, DTMF, transfers, consults and
//! conferences take effect at once.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::call::machine::{Command, Signal};
use switchboard_core::{IncomingCall, RejectReason};

use crate::hub::{ConnectionInfo, Hub, HubMethods, Inner, expect_args, new_call_id};
use crate::numbers::{self, Normalized};
use crate::registry::{Call, CallError, EndReason, Outbound, State, Transition};

/// The error of a call refused because the call registry is full of live calls (`makeCall`'s
/// completion error; `SendMessageToUser` and REST rings answer 503 with it).
pub const REGISTRY_FULL: &str = "The call registry is full of live calls; try again later";

/// Call-control and simulator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallConfig {
    /// Region of national numbers (`--default-region`, `US`).
    pub default_region: String,
    /// Far end: dialling → alerting after this (300 ms).
    pub alert_delay: Duration,
    /// Far end: alerting → connected after this, for ordinary numbers (3 s).
    pub answer_delay: Duration,
    /// Far end: a number that never answers ends `no-answer` after this (`--far-end-ring-timeout`, 30 s).
    pub far_end_ring_timeout: Duration,
    /// Far end: numbers ending `0002` hang up this long after answering (5 s).
    pub far_end_hangup_after: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            default_region: numbers::DEFAULT_REGION.into(),
            alert_delay: Duration::from_millis(300),
            answer_delay: Duration::from_secs(3),
            far_end_ring_timeout: Duration::from_secs(30),
            far_end_hangup_after: Duration::from_secs(5),
        }
    }
}

/// How the simulated far end of an external number behaves (last four digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FarEnd {
    /// Answers after the answer delay.
    Answers,
    /// `…0000`: busy.
    Busy,
    /// `…0001`: rings until the far-end ring timeout, then no-answer.
    NoAnswer,
    /// `…0002`: answers, then hangs up after `far_end_hangup_after`.
    AnswersThenHangsUp,
    /// `…0003`: the call fails.
    Fails,
}

impl FarEnd {
    /// The behaviour of a number.
    pub fn of(number: &Normalized) -> Self {
        match number.last_four() {
            "0000" => FarEnd::Busy,
            "0001" => FarEnd::NoAnswer,
            "0002" => FarEnd::AnswersThenHangsUp,
            "0003" => FarEnd::Fails,
            _ => FarEnd::Answers,
        }
    }
}

/// What the simulator page (or a test) makes the far end do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FarEndAction {
    /// Answer an outbound call that is dialling or alerting.
    Answer,
    /// Hang up (any live call; a ringing inbound call ends `abandoned`).
    HangUp,
    /// Be busy (an outbound call that is dialling or alerting).
    Busy,
}

impl FarEndAction {
    /// Reads `answer`, `hangup`/`hang-up`, `busy`.
    pub fn from_wire(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "answer" => Some(FarEndAction::Answer),
            "hangup" | "hang-up" | "hang up" => Some(FarEndAction::HangUp),
            "busy" => Some(FarEndAction::Busy),
            _ => None,
        }
    }
}

/// Puts the call methods in the hub's method table (see the module docs).
pub fn register(methods: &mut HubMethods) {
    methods.register("sendMessage", send_message);
    methods.register("getCalls", get_calls);
    for name in [
        "acceptCall",
        "rejectCall",
        "hangUp",
        "holdCall",
        "resumeCall",
    ] {
        methods.register(name, agent_command);
    }
    for name in [
        "normalizeNumber",
        "makeCall",
        "answerCall",
        "sendDtmf",
        "blindTransfer",
        "startConsult",
        "completeConsult",
        "cancelConsult",
        "conference",
        "muteCall",
    ] {
        methods.register(name, call_control);
    }
}

/// How far back `getCalls` reports calls that already ended (ms).
pub const RESYNC_RECENT_MS: u64 = 5 * 60 * 1000;
/// The most calls `getCalls` returns.
pub const RESYNC_MAX_CALLS: usize = 20;

/// `sendMessage(content)`: the seed's acknowledgement, stored on the agent's latest call.
fn send_message(
    hub: &Hub,
    conn: &ConnectionInfo,
    target: &str,
    arguments: &[Value],
) -> Result<Option<Value>, String> {
    expect_args(target, arguments, 1, 1, "content: string")?;
    let content = match &arguments[0] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(user) = &conn.user {
        match hub.lock().calls.acknowledge(user, &content) {
            Some(call_id) => {
                tracing::info!(%call_id, agent = %user, "acknowledgement stored")
            }
            None => {
                tracing::debug!(agent = %user, "acknowledgement without a live call")
            }
        }
    }
    Ok(None)
}

/// `getCalls()`: what a widget restores after a reload or a reconnect.
fn get_calls(
    hub: &Hub,
    conn: &ConnectionInfo,
    target: &str,
    arguments: &[Value],
) -> Result<Option<Value>, String> {
    let now = crate::auth::unix_now_ms();
    expect_args(target, arguments, 0, 0, "")?;
    let user = conn.user_for(target)?;
    let calls = hub
        .lock()
        .calls
        .of_agent(user, now, RESYNC_RECENT_MS, RESYNC_MAX_CALLS);
    Ok(Some(json!({
        "calls": calls.iter().map(Call::to_json).collect::<Vec<_>>()
    })))
}

/// `acceptCall`, `rejectCall`, `hangUp`, `holdCall`, `resumeCall`.
fn agent_command(
    hub: &Hub,
    conn: &ConnectionInfo,
    target: &str,
    arguments: &[Value],
) -> Result<Option<Value>, String> {
    let method = target.to_ascii_lowercase();
    let now = crate::auth::unix_now_ms();
    let (min, max, shape) = if method == "rejectcall" {
        (
            1,
            2,
            "callId: string, reason: \"declined\" | \"timeout\" | \"busy\"",
        )
    } else {
        (1, 1, "callId: string")
    };
    expect_args(target, arguments, min, max, shape)?;
    let call_id = arguments[0]
        .as_str()
        .ok_or_else(|| format!("{target}: callId must be a string"))?;
    let user = conn.user_for(target)?;
    let mut inner = hub.lock();
    let result = match method.as_str() {
        "acceptcall" => inner.calls.accept(call_id, user, now),
        "rejectcall" => {
            let reason = match arguments.get(1) {
                None | Some(Value::Null) => RejectReason::Declined,
                Some(v) => serde_json::from_value::<RejectReason>(v.clone()).map_err(|_| {
                    format!("{target}: reason must be one of \"declined\", \"timeout\", \"busy\"")
                })?,
            };
            inner.calls.reject(call_id, user, reason, now)
        }
        "hangup" => inner.calls.hang_up(call_id, user, now),
        "holdcall" => inner.calls.hold(call_id, user, now),
        "resumecall" => inner.calls.resume(call_id, user, now),
        _ => return Err(format!("Unknown hub method '{target}'")),
    };
    let t = result.map_err(|e| e.to_string())?;
    tracing::info!(call_id, agent = %user, state = t.call.state.as_str(), "call updated by agent");
    hub.settle(&mut inner, &t, now);
    Ok(Some(t.call.to_json()))
}

/// The call-control methods of issue 7 (see the module docs).
fn call_control(
    hub: &Hub,
    conn: &ConnectionInfo,
    target: &str,
    arguments: &[Value],
) -> Result<Option<Value>, String> {
    hub.invoke_call_method(conn, &target.to_ascii_lowercase(), target, arguments)
}

fn string_arg<'a>(
    target: &str,
    arguments: &'a [Value],
    i: usize,
    name: &str,
) -> Result<&'a str, String> {
    arguments
        .get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{target}: {name} must be a string"))
}

/// Where a transfer, consult or outbound call goes.
enum Destination {
    Colleague {
        user: String,
        extension: Option<String>,
    },
    Number(Normalized),
}

impl Hub {
    /// A colleague (a user id in the directory or connected to `hub`, or a directory
    /// extension) or else a phone number.
    fn destination(
        &self,
        inner: &mut Inner,
        hub: &str,
        input: &str,
        region: &str,
    ) -> Result<Destination, String> {
        if let Some(user) = inner.directory.colleague(input)
            && (inner.directory.known(&user) || !inner.user_connections(hub, &user).is_empty())
        {
            let extension = inner.directory.extension_of(&user);
            return Ok(Destination::Colleague { user, extension });
        }
        numbers::normalize(input, region).map(Destination::Number)
    }

    /// Runs one of the call-control methods (`method` lower case). See the module docs.
    fn invoke_call_method(
        &self,
        conn: &ConnectionInfo,
        method: &str,
        target: &str,
        arguments: &[Value],
    ) -> Result<Option<Value>, String> {
        let now = crate::auth::unix_now_ms();
        if method == "normalizenumber" {
            expect_args(target, arguments, 1, 2, "input: string, region?: string")?;
            let input = string_arg(target, arguments, 0, "input")?;
            let region = match arguments.get(1) {
                None | Some(Value::Null) => self.config.calls.default_region.clone(),
                Some(Value::String(r)) => {
                    numbers::parse_region(r).ok_or_else(|| numbers::unknown_region(r))?
                }
                Some(_) => return Err(format!("{target}: region must be a string")),
            };
            let mut inner = self.lock();
            return match self.destination(&mut inner, &conn.hub, input, &region)? {
                Destination::Number(n) => Ok(Some(n.to_json())),
                Destination::Colleague { user, extension } => Ok(Some(json!({
                    "internal": true,
                    "display": colleague_display(&user, extension.as_deref()),
                    "user": user,
                    "extension": extension,
                }))),
            };
        }
        let user = conn.user_for(target)?;
        if method == "makecall" {
            expect_args(target, arguments, 1, 1, "number: string")?;
            let input = string_arg(target, arguments, 0, "number")?;
            return self.make_call(&conn.hub, user, input, now).map(Some);
        }
        let shape = match method {
            "senddtmf" => "callId: string, digits: string",
            "blindtransfer" | "startconsult" => "callId: string, target: string",
            "mutecall" => "callId: string, muted: boolean",
            _ => "callId: string",
        };
        let count = if shape.contains(',') { 2 } else { 1 };
        expect_args(target, arguments, count, count, shape)?;
        let call_id = string_arg(target, arguments, 0, "callId")?;
        let mut inner = self.lock();
        let t = match method {
            "answercall" => inner.calls.accept(call_id, user, now),
            "senddtmf" => {
                let digits = string_arg(target, arguments, 1, "digits")?;
                inner.calls.control(
                    call_id,
                    user,
                    &Command::SendDtmf(digits.trim().to_owned()),
                    now,
                )
            }
            "blindtransfer" | "startconsult" => {
                let to = string_arg(target, arguments, 1, "target")?;
                return self
                    .transfer(
                        &mut inner,
                        user,
                        call_id,
                        to,
                        method == "blindtransfer",
                        now,
                    )
                    .map(|call| Some(call.to_json()));
            }
            "completeconsult" => {
                inner
                    .calls
                    .check_command(call_id, user, &Command::CompleteConsult)
                    .map_err(|e| e.to_string())?;
                let call = inner.calls.get(call_id).cloned().expect("checked");
                let colleague = call
                    .transfer_target
                    .as_deref()
                    .and_then(|t| inner.directory.colleague(t));
                if let Some(colleague) = &colleague {
                    self.hand_over(&mut inner, &call, colleague, user)?;
                }
                inner
                    .calls
                    .control(call_id, user, &Command::CompleteConsult, now)
            }
            "mutecall" => {
                let muted = arguments
                    .get(1)
                    .and_then(Value::as_bool)
                    .ok_or_else(|| format!("{target}: muted must be a boolean"))?;
                inner
                    .calls
                    .control(call_id, user, &Command::Mute(muted), now)
            }
            "cancelconsult" => inner
                .calls
                .control(call_id, user, &Command::CancelConsult, now),
            "conference" => inner
                .calls
                .control(call_id, user, &Command::Conference, now),
            _ => return Err(format!("Unknown hub method '{target}'")),
        };
        let t = t.map_err(|e| e.to_string())?;
        tracing::info!(call_id, agent = %user, state = t.call.state.as_str(), "call updated by agent");
        self.settle(&mut inner, &t, now);
        Ok(Some(t.call.to_json()))
    }

    /// `blindTransfer` / `startConsult`.
    fn transfer(
        &self,
        inner: &mut Inner,
        user: &str,
        call_id: &str,
        to: &str,
        blind: bool,
        now: u64,
    ) -> Result<Call, String> {
        let probe = if blind {
            Command::BlindTransfer(to.to_owned())
        } else {
            Command::StartConsult(to.to_owned())
        };
        inner
            .calls
            .check_command(call_id, user, &probe)
            .map_err(|e| e.to_string())?;
        let call = inner.calls.get(call_id).cloned().expect("checked");
        if call.peer.is_some() {
            return Err("The simulator cannot transfer a call between two agents.".into());
        }
        let region = self.config.calls.default_region.clone();
        let target = match self.destination(inner, &call.hub, to, &region)? {
            Destination::Colleague {
                user: colleague, ..
            } => {
                if colleague == user {
                    return Err("You cannot transfer a call to yourself.".into());
                }
                if inner.user_connections(&call.hub, &colleague).is_empty() {
                    return Err(format!(
                        "{colleague} is not signed in; the call was not transferred."
                    ));
                }
                if blind {
                    self.hand_over(inner, &call, &colleague, user)?;
                }
                colleague
            }
            Destination::Number(n) => n.e164,
        };
        let command = if blind {
            Command::BlindTransfer(target)
        } else {
            Command::StartConsult(target)
        };
        let t = inner
            .calls
            .control(call_id, user, &command, now)
            .map_err(|e| e.to_string())?;
        tracing::info!(call_id, agent = %user, state = t.call.state.as_str(), "transfer");
        self.settle(inner, &t, now);
        Ok(t.call)
    }

    /// Rings `colleague` with the customer of `call` (a transfer).
    fn hand_over(
        &self,
        inner: &mut Inner,
        call: &Call,
        colleague: &str,
        agent: &str,
    ) -> Result<(), String> {
        let incoming = IncomingCall {
            call_id: Some(new_call_id()),
            phone_number: call.phone_number.clone(),
            caller_name: call.caller_name.clone(),
            queue: call.queue.clone(),
            comments: Some(format!("Transferred by {agent}")),
        };
        match self.ring_locked(inner, &call.hub, colleague, &incoming) {
            Some(_) => Ok(()),
            None => Err(format!(
                "{colleague} is not signed in; the call was not transferred."
            )),
        }
    }

    /// `makeCall(number)`; refused beyond the per-user quota ([`crate::quota`]) and when the
    /// registry is full of live calls ([`REGISTRY_FULL`]).
    fn make_call(&self, hub: &str, user: &str, input: &str, now: u64) -> Result<Value, String> {
        self.quotas.call_placed(user).map_err(|r| r.error)?;
        let region = self.config.calls.default_region.clone();
        let mut inner = self.lock();
        if !inner.calls.has_room() {
            crate::metrics::quota_refusal("call_registry_full");
            return Err(REGISTRY_FULL.into());
        }
        match self.destination(&mut inner, hub, input, &region)? {
            Destination::Colleague {
                user: callee,
                extension,
            } => {
                if callee == user {
                    return Err("You cannot call yourself.".into());
                }
                if inner.user_connections(hub, &callee).is_empty() {
                    return Err(format!("{callee} is not signed in; nothing was dialled."));
                }
                let own = inner.directory.extension_of(user);
                let a = inner.calls.register_outbound(
                    new_call_id(),
                    hub,
                    user,
                    Outbound {
                        phone_number: extension.clone().unwrap_or_else(|| callee.clone()),
                        display: Some(colleague_display(&callee, extension.as_deref())),
                        callee_name: Some(callee.clone()),
                    },
                    now,
                );
                inner.announce(&Transition {
                    call: a.clone(),
                    ended: None,
                });
                let incoming = IncomingCall {
                    call_id: Some(new_call_id()),
                    phone_number: own.unwrap_or_else(|| "0".into()),
                    caller_name: Some(user.to_owned()),
                    queue: None,
                    comments: Some("Internal call".into()),
                };
                let Some(b) = self.ring_locked(&mut inner, hub, &callee, &incoming) else {
                    return Err(format!("{callee} is not signed in; nothing was dialled."));
                };
                inner.calls.link(&a.call_id, &b);
                tracing::info!(call_id = %a.call_id, agent = %user, %callee, "internal call");
                let t = inner
                    .calls
                    .telephony(&a.call_id, &Signal::Alerting, None, now)
                    .expect("a new call alerts");
                inner.announce(&t);
                Ok(t.call.to_json())
            }
            Destination::Number(number) => {
                let a = inner.calls.register_outbound(
                    new_call_id(),
                    hub,
                    user,
                    Outbound {
                        phone_number: number.e164.clone(),
                        display: Some(number.display(&region)),
                        callee_name: None,
                    },
                    now,
                );
                tracing::info!(call_id = %a.call_id, agent = %user, number = %number.e164, "outbound call");
                let t = Transition {
                    call: a.clone(),
                    ended: None,
                };
                inner.announce(&t);
                drop(inner);
                self.script_far_end(a.call_id.clone(), FarEnd::of(&number));
                Ok(a.to_json())
            }
        }
    }

    /// The simulated far end of an external call: a bounded script of at most three steps.
    fn script_far_end(&self, call_id: String, behaviour: FarEnd) {
        let weak = self.weak();
        let c = self.config.calls.clone();
        tokio::spawn(async move {
            tokio::time::sleep(c.alert_delay).await;
            let step = |signal: Signal| {
                weak.upgrade()
                    .is_some_and(|hub| hub.telephony_signal(&call_id, &signal, None))
            };
            match behaviour {
                FarEnd::Busy => {
                    step(Signal::Busy);
                    return;
                }
                FarEnd::Fails => {
                    step(Signal::Failed("The number cannot be reached".into()));
                    return;
                }
                _ => {}
            }
            if !step(Signal::Alerting) {
                return;
            }
            match behaviour {
                FarEnd::NoAnswer => {
                    tokio::time::sleep(c.far_end_ring_timeout).await;
                    step(Signal::NoAnswer);
                }
                FarEnd::AnswersThenHangsUp => {
                    tokio::time::sleep(c.answer_delay).await;
                    if step(Signal::Answered) {
                        tokio::time::sleep(c.far_end_hangup_after).await;
                        step(Signal::HungUp);
                    }
                }
                _ => {
                    tokio::time::sleep(c.answer_delay).await;
                    step(Signal::Answered);
                }
            }
        });
    }

    /// Applies a telephony signal and announces it; `false` when it made no sense any more.
    pub(crate) fn telephony_signal(
        &self,
        call_id: &str,
        signal: &Signal,
        reason: Option<EndReason>,
    ) -> bool {
        let now = crate::auth::unix_now_ms();
        let mut inner = self.lock();
        match inner.calls.telephony(call_id, signal, reason, now) {
            Some(t) => {
                tracing::info!(call_id, state = t.call.state.as_str(), "far end");
                self.settle(&mut inner, &t, now);
                true
            }
            None => false,
        }
    }

    /// The simulator page's far-end buttons.
    pub fn far_end(&self, call_id: &str, action: FarEndAction) -> Result<Call, CallError> {
        let now = crate::auth::unix_now_ms();
        let call = self
            .call(call_id)
            .ok_or_else(|| CallError::UnknownCall(call_id.to_owned()))?;
        let outbound_unanswered =
            call.direction == "outbound" && matches!(call.state, State::Dialling | State::Alerting);
        let signal = match action {
            FarEndAction::Answer if outbound_unanswered => Signal::Answered,
            FarEndAction::Busy if outbound_unanswered => Signal::Busy,
            FarEndAction::HangUp if call.direction == "inbound" || !outbound_unanswered => {
                return self.abandon_call(call_id);
            }
            _ => {
                return Err(CallError::Other(format!(
                    "Call {call_id} is {} {}; the far end cannot do that now",
                    call.direction,
                    call.state.as_str()
                )));
            }
        };
        if call.peer.is_some() {
            return Err(CallError::Other(
                "This call is between two agents: the called agent answers it.".into(),
            ));
        }
        let mut inner = self.lock();
        let t = inner
            .calls
            .telephony(call_id, &signal, None, now)
            .ok_or_else(|| CallError::Other(format!("Call {call_id} changed meanwhile")))?;
        self.settle(&mut inner, &t, now);
        Ok(t.call)
    }
}

fn colleague_display(user: &str, extension: Option<&str>) -> String {
    match extension {
        Some(ext) => format!("{user} (ext. {ext})"),
        None => user.to_owned(),
    }
}
