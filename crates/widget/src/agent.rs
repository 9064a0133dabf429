//! The agent's contact-centre state in the widget (issue 15, docs/hub-contract.md "Agent
//! state"): the hub keeps it; this module publishes the agent's choice (`setAgentState`), asks
//! for it after every (re)connect (`getAgentState`), follows `AgentStateChanged` (other tabs,
//! the hub's automatic OnCall / WrapUp / Missed), and sends the saved wrap-up
//! (`submitWrapUp`). The rules (which state is newer, since-time, countdown, Missed count) are
//! `switchboard_core::agent_state`.
//!
//! A hub without these methods (an older hub) answers `Unknown hub method`: the widget then
//! keeps the state locally, as before, and says so once in the diagnostics log.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_core::Desk;
use switchboard_core::agent_state::{self, AgentState, Shown};
use switchboard_core::invocation::{self, Invocation};

use crate::browser::now_ms;
use crate::diagnostics::{self, warn};
use crate::signalr::HubClient;

fn epoch_ms() -> u64 {
    now_ms().max(0.0) as u64
}

/// The agent state store. `Copy`: signal handles.
#[derive(Clone, Copy)]
pub struct AgentStatus {
    /// The state as the hub has it (or as chosen here when the hub keeps none); `None` before
    /// sign-in and the first answer.
    pub state: RwSignal<Option<AgentState>>,
    /// The hub lacks the agent-state methods: states stay in this widget.
    local: StoredValue<bool>,
    client: StoredValue<Option<HubClient>, LocalStorage>,
    me: StoredValue<Option<String>>,
    /// The first configured state: what an older hub's agent starts in, as before.
    initial: StoredValue<String>,
    /// The call whose wrap-up is open and when it opened (`Date.now()` ms), for `durationMs`
    /// when the hub gave no WrapUp state to measure from.
    wrap_up_opened: StoredValue<Option<(String, f64)>>,
}

impl AgentStatus {
    /// A store that follows `desk` for the wrap-up's start.
    pub fn new(desk: RwSignal<Desk>) -> Self {
        let this = Self {
            state: RwSignal::new(None),
            local: StoredValue::new(false),
            client: StoredValue::new_local(None),
            me: StoredValue::new(None),
            initial: StoredValue::new(String::new()),
            wrap_up_opened: StoredValue::new(None),
        };
        Effect::new(move |_| {
            let id = desk.with(|d| d.wrap_up().map(|w| w.call_id.clone()));
            let open = this.wrap_up_opened.get_value().map(|(id, _)| id);
            if id != open {
                this.wrap_up_opened.set_value(id.map(|id| (id, now_ms())));
            }
        });
        this
    }

    /// Sign-in: talk to the hub through `client` as `user`; `initial` is the first configured
    /// state (config.json `presence.states`), kept locally if the hub keeps no states.
    pub fn start(self, user: &str, client: HubClient, initial: &str) {
        self.me.set_value(Some(user.to_owned()));
        self.initial.set_value(initial.to_owned());
        self.client.set_value(Some(client));
        self.local.set_value(false);
        self.state.set(None);
    }

    /// Sign-out: forget the state and the client.
    pub fn stop(self) {
        self.client.set_value(None);
        self.me.set_value(None);
        self.state.set(None);
    }

    /// What the widget shows at `now_ms` (reactive in the state only).
    pub fn shown(self, now_ms: f64) -> Option<Shown> {
        self.state
            .with(|s| s.as_ref().map(|s| s.shown(now_ms.max(0.0) as u64)))
    }

    /// Takes `state` if it is this agent's and not older than the one shown; returns whether
    /// it did.
    pub fn changed(self, state: AgentState) -> bool {
        let Some(me) = self.me.get_value() else {
            return false;
        };
        let newer = self
            .state
            .with_untracked(|s| state.replaces(s.as_ref(), &me));
        if newer {
            self.state.set(Some(state));
        }
        newer
    }

    /// Publishes the agent's choice (the presence control, the Teams sync, the host).
    pub fn publish(self, state: String) {
        if !agent_state::valid_name(&state) {
            warn(&format!(
                "agent state '{state}' not sent: names are 1-32 letters, digits, spaces, _ or -"
            ));
            return;
        }
        if self.local.get_value() {
            self.keep_locally(&state);
            return;
        }
        let fallback = state.clone();
        self.call(invocation::set_agent_state(&state), move |this| {
            this.keep_locally(&fallback)
        });
    }

    /// After every (re)connect: the state the hub keeps, so a reload or another tab's choice
    /// shows here.
    pub fn fetch(self) {
        if self.local.get_value() {
            return;
        }
        self.call(invocation::get_agent_state(), |this| {
            this.keep_locally(&this.initial.get_value())
        });
    }

    /// "Finish now" in the wrap-up panel: back to the state before the call.
    pub fn finish_wrap_up_now(self) {
        let back = self
            .state
            .with_untracked(|s| s.as_ref().and_then(|s| s.previous.clone()))
            .unwrap_or_else(|| "Ready".into());
        self.publish(back);
    }

    /// The agent saved the wrap-up of `call_id`: `submitWrapUp` with the time spent in
    /// wrap-up (from the hub's WrapUp state for this call, else from when the panel opened).
    pub fn submit_wrap_up(self, call_id: &str, disposition: Option<&str>, notes: &str) {
        if self.local.get_value() {
            return;
        }
        let now = epoch_ms();
        let since = self
            .state
            .with_untracked(|s| {
                s.as_ref()
                    .filter(|s| {
                        s.state == agent_state::WRAP_UP && s.call_id.as_deref() == Some(call_id)
                    })
                    .map(|s| s.since_ms)
            })
            .or_else(|| {
                self.wrap_up_opened
                    .get_value()
                    .filter(|(id, _)| id == call_id)
                    .map(|(_, at)| at.max(0.0) as u64)
            })
            .unwrap_or(now);
        let duration_ms = now.saturating_sub(since);
        let call = invocation::submit_wrap_up(call_id, disposition, notes, duration_ms);
        let Some(client) = self.client.get_value() else {
            return;
        };
        let id = call_id.to_owned();
        spawn_local(async move {
            match client.invoke(call.0, call.1).await {
                Ok(_) => diagnostics::record(format!("wrap-up sent to the hub for call {id}")),
                Err(e) if agent_state::is_unsupported(&e) => self.go_local(),
                Err(e) => warn(&format!("submitWrapUp failed: {e}")),
            }
        });
    }

    /// Invokes `call`; an `AgentState` answer is taken; an older hub turns local mode on and
    /// runs `fallback`.
    fn call(self, call: Invocation, fallback: impl FnOnce(Self) + 'static) {
        let Some(client) = self.client.get_value() else {
            return;
        };
        spawn_local(async move {
            let (method, arguments) = call;
            match client.invoke(method, arguments).await {
                Ok(answer) => match AgentState::from_value(&answer) {
                    Ok(state) => {
                        diagnostics::record(format!("agent state: {}", state.state));
                        self.changed(state);
                    }
                    Err(e) => warn(&format!("{method} answer ignored: {e}.")),
                },
                Err(e) if agent_state::is_unsupported(&e) => {
                    self.go_local();
                    fallback(self);
                }
                Err(e) => warn(&format!("{method} failed: {e}")),
            }
        });
    }

    fn go_local(self) {
        if !self.local.get_value() {
            self.local.set_value(true);
            diagnostics::record(
                "agent state: the hub keeps no agent states (an older hub); kept in this widget"
                    .into(),
            );
        }
    }

    fn keep_locally(self, state: &str) {
        if let Some(me) = self.me.get_value() {
            self.state
                .set(Some(AgentState::local(&me, state, epoch_ms())));
        }
    }
}
