//! Agent state (issue 15, `docs/agent-state.md`, the wire contract of
//! `AGENT-STATE-CONTRACT.md` / DESIGN.md §7): what each agent is doing (`Ready`, `Break`,
//! `OnCall`, `WrapUp`, `Missed` …), kept per user in hub memory, and whether a ring may reach
//! them.
//!
//! Pure bookkeeping, no I/O and no clock: every operation takes `now` in Unix milliseconds and
//! returns the [`AgentState`] that changed (the hub sends it as `AgentStateChanged`). The hub
//! wires it to the call registry's transitions (`Hub::settle` in `hub.rs`), to connection
//! presence (a ring for a user with no connection is refused `offline`) and to the hub
//! methods of [`crate::agent_state::register`]:
//!
//! | method | arguments | result |
//! |---|---|---|
//! | `setAgentState` | `state: string` (1–32 of `[A-Za-z0-9 _-]`) | `AgentState` |
//! | `getAgentState` | none | `AgentState` |
//! | `submitWrapUp` | `callId: string`, `wrapUp: {disposition?, notes?, durationMs?}` | the call, with `wrapUp` |
//! | `getTeamAgentStates` | none | `{"agents": [AgentState + {connected, currentCall?, today}]}` (role `Supervisor` only) |
//!
//! Automatic states: a call answered (inbound accept, outbound connect) → `OnCall` (`source:
//! "call"`); that call ends → `WrapUp` until `now + wrap_up_ms` (`wrapUpEndsAt`), then back to
//! `previous` (`source: "timer"`); `missed_offers` unanswered offers in a row → `Missed`
//! (`source: "missed"`), left only by the agent choosing a state.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The state an agent is in while a call is up.
pub const ON_CALL: &str = "OnCall";
/// The state after a call, until the wrap-up time runs out or the agent finishes.
pub const WRAP_UP: &str = "WrapUp";
/// The state after too many unanswered offers in a row.
pub const MISSED: &str = "Missed";
/// The state that is never rung.
pub const OFFLINE: &str = "Offline";
/// The state that is rung by default.
pub const READY: &str = "Ready";
/// The group every connection whose token has role [`SUPERVISOR_ROLE`] joins.
pub const SUPERVISORS_GROUP: &str = "supervisors";
/// The token role that may watch the team (`getTeamAgentStates`, `/supervisor`).
pub const SUPERVISOR_ROLE: &str = "Supervisor";
/// Longest wrap-up note (characters).
pub const MAX_NOTES_CHARS: usize = 2000;
/// Longest disposition (characters).
pub const MAX_DISPOSITION_CHARS: usize = 100;
/// One day in ms ("today" is the UTC day of the hub's clock).
const DAY_MS: u64 = 86_400_000;

/// Agent-state settings (`--routable-state`, `--initial-agent-state`, `--wrap-up-seconds`,
/// `--missed-offers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// States a ring may reach (default `["Ready"]`); `["*"]` rings in every state and even
    /// when the agent has no connection the ring is handled as before agent state existed.
    pub routable: Vec<String>,
    /// The state of an agent the hub has not seen (default `Ready`).
    pub initial_state: String,
    /// How long WrapUp lasts after an answered call, ms (default 60 000; 0: no wrap-up).
    pub wrap_up_ms: u64,
    /// Unanswered offers in a row that make an agent `Missed` (default 3; 0: never).
    pub missed_offers: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            routable: vec![READY.into()],
            initial_state: READY.into(),
            wrap_up_ms: 60_000,
            missed_offers: 3,
        }
    }
}

impl AgentConfig {
    /// Whether every state is routable (`--routable-state '*'`).
    pub fn rings_everyone(&self) -> bool {
        self.routable.iter().any(|s| s == "*")
    }
}

/// Whether `name` is a state name the hub accepts: 1–32 characters of `[A-Za-z0-9 _-]`.
pub fn is_valid_state(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b'-'))
}

/// Who or what made the agent's state what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The agent chose it (`setAgentState`, `submitWrapUp`).
    Agent,
    /// A call was answered or ended.
    Call,
    /// The wrap-up time ran out.
    Timer,
    /// Too many unanswered offers in a row.
    Missed,
    /// The hub's initial state.
    Hub,
}

/// The wire object `AgentState` (argument of `AgentStateChanged`, result of `setAgentState`
/// and `getAgentState`):
///
/// ```json
/// {"userId":"alice","state":"WrapUp","since":1764950000000,"source":"call","callId":"c1",
///  "wrapUpEndsAt":1764950060000,"previous":"Ready","missedOffers":0}
/// ```
/// Times are Unix ms; optional fields are left out when unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    /// The agent's user id.
    pub user_id: String,
    /// The state's name.
    pub state: String,
    /// When this state began.
    pub since: u64,
    /// What set it.
    pub source: Source,
    /// The call of `OnCall` / `WrapUp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// When `WrapUp` ends by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrap_up_ends_at: Option<u64>,
    /// The state to return to after `OnCall` / `WrapUp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Unanswered offers in a row.
    pub missed_offers: u32,
}

impl AgentState {
    /// The JSON object sent on the wire.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("an agent state serialises")
    }
}

/// Today's counts of an agent (`today` of `getTeamAgentStates`): "today" is the current UTC
/// day of the hub's clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Today {
    /// Inbound offers rung.
    pub offered: u32,
    /// Inbound offers answered.
    pub answered: u32,
    /// Inbound offers that timed out unanswered.
    pub missed: u32,
    /// Talk time of answered calls (inbound and outbound) that ended today, ms.
    pub talk_ms: u64,
}

/// Why a ring is refused (the `reason` of the 409 body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalReason {
    /// No connection, or state `Offline`.
    Offline,
    /// A call is up, or state `OnCall`.
    OnCall,
    /// State `WrapUp`.
    WrapUp,
    /// Any other state that is not routable (`Missed` included).
    NotReady,
}

impl RefusalReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Offline => "offline",
            RefusalReason::OnCall => "on-call",
            RefusalReason::WrapUp => "wrap-up",
            RefusalReason::NotReady => "not-ready",
        }
    }
}

/// A ring refused by agent state: the body of the 409
/// `{"reason","state","since","userId","error"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub reason: RefusalReason,
    /// The agent's state then.
    pub state: AgentState,
}

impl Refusal {
    /// The 409 body.
    pub fn to_json(&self) -> Value {
        let why = match self.reason {
            RefusalReason::Offline if self.state.state != "Offline" => "is not connected",
            RefusalReason::Offline => "is offline",
            RefusalReason::OnCall => "is on a call",
            RefusalReason::WrapUp => "is wrapping up a call",
            RefusalReason::NotReady => "is not ready",
        };
        json!({
            "reason": self.reason.as_str(),
            "state": self.state.state,
            "since": self.state.since,
            "userId": self.state.user_id,
            "error": format!(
                "{} {why} (state {}); nothing was sent",
                self.state.user_id, self.state.state
            ),
        })
    }
}

#[derive(Debug, Clone)]
struct Agent {
    state: AgentState,
    /// The answered call that is up.
    current_call: Option<String>,
    today: Today,
    day: u64,
}

/// The per-user agent states (see the module docs).
#[derive(Debug, Default)]
pub struct AgentStore {
    config: AgentConfig,
    /// Boxed: the map keeps spare room (up to ~1.6× its entries at 10,000 agents), and an
    /// empty slot of a box is 8 bytes instead of the ~190 of an `Agent` (docs/benchmarks.md).
    agents: HashMap<String, Box<Agent>>,
}

impl AgentStore {
    /// An empty store.
    pub fn new(config: AgentConfig) -> Self {
        Self {
            config,
            agents: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    fn initial(&self, user: &str, now: u64) -> Agent {
        Agent {
            state: AgentState {
                user_id: user.to_owned(),
                state: self.config.initial_state.clone(),
                since: now,
                source: Source::Hub,
                call_id: None,
                wrap_up_ends_at: None,
                previous: None,
                missed_offers: 0,
            },
            current_call: None,
            today: Today::default(),
            day: now / DAY_MS,
        }
    }

    fn agent(&mut self, user: &str, now: u64) -> &mut Agent {
        if !self.agents.contains_key(user) {
            let agent = Box::new(self.initial(user, now));
            self.agents.insert(user.to_owned(), agent);
        }
        let agent = self.agents.get_mut(user).expect("inserted");
        if agent.day != now / DAY_MS {
            agent.day = now / DAY_MS;
            agent.today = Today::default();
        }
        agent
    }

    /// The agent's state (the initial state, since `now`, for an agent not seen yet; it is
    /// remembered from then on).
    pub fn get(&mut self, user: &str, now: u64) -> AgentState {
        self.agent(user, now).state.clone()
    }

    /// Takes the state another hub node announced for an agent connected there (`--redis`;
    /// [`crate::cluster`]): this node's routing decisions then see it.
    pub fn replicate(&mut self, state: AgentState, now: u64) {
        let agent = self.agent(&state.user_id, now);
        agent.state = state;
    }

    /// Takes a state stored in Redis (`--redis`, a node joining): kept unless this store
    /// already has a newer one (`since`). Whether it was taken.
    pub fn replicate_if_newer(&mut self, state: AgentState, now: u64) -> bool {
        if self
            .agents
            .get(&state.user_id)
            .is_some_and(|a| a.state.since > state.since)
        {
            return false;
        }
        self.replicate(state, now);
        true
    }

    /// The agent's current answered call, if one is up.
    pub fn current_call(&self, user: &str) -> Option<&str> {
        self.agents.get(user)?.current_call.as_deref()
    }

    /// Today's counts.
    pub fn today(&mut self, user: &str, now: u64) -> Today {
        self.agent(user, now).today
    }

    /// The users the store knows, sorted.
    pub fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = self.agents.keys().cloned().collect();
        users.sort();
        users
    }

    /// `setAgentState(state)`: the agent chooses. Ends a wrap-up; choosing `Ready` clears the
    /// missed-offer count. Err: the name is not 1–32 of `[A-Za-z0-9 _-]`.
    pub fn set(&mut self, user: &str, name: &str, now: u64) -> Result<AgentState, String> {
        if !is_valid_state(name) {
            return Err(format!(
                "setAgentState: state must be 1 to 32 characters from A-Z a-z 0-9 space _ - (got {} characters)",
                name.chars().count()
            ));
        }
        let agent = self.agent(user, now);
        let s = &mut agent.state;
        let previous = if name == ON_CALL || name == WRAP_UP {
            s.previous.clone()
        } else {
            None
        };
        let missed = if name == READY { 0 } else { s.missed_offers };
        *s = AgentState {
            user_id: user.to_owned(),
            state: name.to_owned(),
            since: now,
            source: Source::Agent,
            call_id: None,
            wrap_up_ends_at: None,
            previous,
            missed_offers: missed,
        };
        Ok(s.clone())
    }

    /// A call of the agent was answered (inbound accept, outbound connect): `OnCall`.
    /// `inbound` counts an answered offer. `None` when the agent was already OnCall for it.
    pub fn call_answered(
        &mut self,
        user: &str,
        call_id: &str,
        inbound: bool,
        now: u64,
    ) -> Option<AgentState> {
        let agent = self.agent(user, now);
        if agent.current_call.as_deref() == Some(call_id) {
            return None;
        }
        agent.current_call = Some(call_id.to_owned());
        if inbound {
            agent.today.answered += 1;
        }
        let s = &mut agent.state;
        let previous = if s.state == ON_CALL || s.state == WRAP_UP {
            s.previous.clone()
        } else {
            Some(s.state.clone())
        };
        *s = AgentState {
            user_id: user.to_owned(),
            state: ON_CALL.into(),
            since: now,
            source: Source::Call,
            call_id: Some(call_id.to_owned()),
            wrap_up_ends_at: None,
            previous,
            missed_offers: 0,
        };
        Some(s.clone())
    }

    /// An answered call of the agent ended after `talk_ms` of talk: `WrapUp` until
    /// `now + wrap_up_ms` (or straight back to `previous` with no wrap-up time). `None` when
    /// the state did not change (the agent had chosen another state meanwhile, or another
    /// call is up).
    pub fn call_ended(
        &mut self,
        user: &str,
        call_id: &str,
        talk_ms: u64,
        now: u64,
    ) -> Option<AgentState> {
        let wrap_up_ms = self.config.wrap_up_ms;
        let initial = self.config.initial_state.clone();
        let agent = self.agent(user, now);
        agent.today.talk_ms += talk_ms;
        if agent.current_call.as_deref() != Some(call_id) {
            return None;
        }
        agent.current_call = None;
        let s = &mut agent.state;
        if s.state != ON_CALL || s.call_id.as_deref() != Some(call_id) {
            return None;
        }
        let previous = s.previous.clone().unwrap_or(initial);
        *s = if wrap_up_ms == 0 {
            AgentState {
                user_id: user.to_owned(),
                state: previous,
                since: now,
                source: Source::Call,
                call_id: None,
                wrap_up_ends_at: None,
                previous: None,
                missed_offers: s.missed_offers,
            }
        } else {
            AgentState {
                user_id: user.to_owned(),
                state: WRAP_UP.into(),
                since: now,
                source: Source::Call,
                call_id: Some(call_id.to_owned()),
                wrap_up_ends_at: Some(now + wrap_up_ms),
                previous: Some(previous),
                missed_offers: s.missed_offers,
            }
        };
        Some(s.clone())
    }

    /// The wrap-up of `call_id` is over: by the timer (`by_agent` false; only once
    /// `wrapUpEndsAt` is reached) or because the agent submitted it. Back to `previous`.
    /// `None` when the agent is not wrapping up that call (any more), or it is not time yet.
    pub fn end_wrap_up(
        &mut self,
        user: &str,
        call_id: &str,
        by_agent: bool,
        now: u64,
    ) -> Option<AgentState> {
        let initial = self.config.initial_state.clone();
        let s = &mut self.agent(user, now).state;
        if s.state != WRAP_UP || s.call_id.as_deref() != Some(call_id) {
            return None;
        }
        if !by_agent && s.wrap_up_ends_at.is_some_and(|end| now < end) {
            return None;
        }
        *s = AgentState {
            user_id: user.to_owned(),
            state: s.previous.clone().unwrap_or(initial),
            since: now,
            source: if by_agent {
                Source::Agent
            } else {
                Source::Timer
            },
            call_id: None,
            wrap_up_ends_at: None,
            previous: None,
            missed_offers: s.missed_offers,
        };
        Some(s.clone())
    }

    /// An inbound offer was rung to the agent (counted in `today.offered`).
    pub fn offered(&mut self, user: &str, now: u64) {
        self.agent(user, now).today.offered += 1;
    }

    /// An inbound offer timed out unanswered (ring backstop, `rejectCall` reason `timeout`):
    /// counted; the `missed_offers`-th in a row makes the agent `Missed`. Returns the state
    /// when it changed (the count is part of it, so every missed offer changes it).
    pub fn offer_missed(&mut self, user: &str, now: u64) -> Option<AgentState> {
        let limit = self.config.missed_offers;
        let agent = self.agent(user, now);
        agent.today.missed += 1;
        let s = &mut agent.state;
        s.missed_offers = s.missed_offers.saturating_add(1);
        if limit > 0 && s.missed_offers >= limit && s.state != MISSED && s.state != ON_CALL {
            *s = AgentState {
                user_id: user.to_owned(),
                state: MISSED.into(),
                since: now,
                source: Source::Missed,
                call_id: None,
                wrap_up_ends_at: None,
                previous: None,
                missed_offers: s.missed_offers,
            };
        }
        Some(s.clone())
    }

    /// Whether a ring may reach the agent: `None` when it may, else why not. `connected`:
    /// whether the agent has a live connection on the ringing hub. With `*` routable every
    /// ring goes ahead (also to an agent with no connection: the caller handles that as it
    /// did before agent state).
    pub fn refusal(&mut self, user: &str, connected: bool, now: u64) -> Option<Refusal> {
        if self.config.rings_everyone() {
            return None;
        }
        let routable = self.config.routable.clone();
        let agent = self.agent(user, now);
        let name = agent.state.state.as_str();
        let reason = if !connected || name == OFFLINE {
            RefusalReason::Offline
        } else if agent.current_call.is_some() || name == ON_CALL {
            RefusalReason::OnCall
        } else if name == WRAP_UP {
            RefusalReason::WrapUp
        } else if routable.iter().any(|r| r == name) {
            return None;
        } else {
            RefusalReason::NotReady
        };
        Some(Refusal {
            reason,
            state: agent.state.clone(),
        })
    }
}

/// A submitted wrap-up, as `GET /api/calls/{id}` shows it under `wrapUp`:
/// `{"disposition"?, "notes"?, "durationMs"?, "submittedAt"}` (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WrapUp {
    /// The chosen disposition (≤ [`MAX_DISPOSITION_CHARS`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    /// Free-text notes (≤ [`MAX_NOTES_CHARS`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// How long the agent spent wrapping up, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// When the hub took it.
    pub submitted_at: u64,
}

impl WrapUp {
    /// Reads the `wrapUp` argument of `submitWrapUp`; Err names what is wrong.
    pub fn from_wire(value: &Value, now: u64) -> Result<Self, String> {
        let Value::Object(o) = value else {
            return Err(
                "submitWrapUp: wrapUp must be an object {disposition?, notes?, durationMs?}".into(),
            );
        };
        let text = |key: &str, max: usize| -> Result<Option<String>, String> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
                Some(Value::String(s)) => Err(format!(
                    "submitWrapUp: {key} is {} characters; at most {max} are kept",
                    s.chars().count()
                )),
                Some(_) => Err(format!("submitWrapUp: {key} must be a string")),
            }
        };
        let duration_ms = match o.get("durationMs") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or(
                "submitWrapUp: durationMs must be a whole number of milliseconds, 0 or more",
            )?),
        };
        Ok(WrapUp {
            disposition: text("disposition", MAX_DISPOSITION_CHARS)?,
            notes: text("notes", MAX_NOTES_CHARS)?,
            duration_ms,
            submitted_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_764_950_000_000;

    fn store() -> AgentStore {
        AgentStore::new(AgentConfig::default())
    }

    #[test]
    fn an_unseen_agent_starts_in_the_initial_state_and_keeps_its_since() {
        let mut s = AgentStore::new(AgentConfig {
            initial_state: "NotReady".into(),
            ..AgentConfig::default()
        });
        let a = s.get("alice", T0);
        assert_eq!(
            (a.state.as_str(), a.since, a.source),
            ("NotReady", T0, Source::Hub)
        );
        assert_eq!(s.get("alice", T0 + 5_000).since, T0);
    }

    #[test]
    fn names_are_checked() {
        let mut s = store();
        assert!(s.set("alice", "Lunch break", T0).is_ok());
        assert!(s.set("alice", "Out-of_office 2", T0).is_ok());
        for bad in ["", "<b>x</b>", "é", &"x".repeat(33)] {
            let e = s.set("alice", bad, T0).unwrap_err();
            assert!(e.starts_with("setAgentState: state must be"), "{e}");
        }
        assert_eq!(s.get("alice", T0).state, "Out-of_office 2");
    }

    #[test]
    fn a_call_puts_the_agent_on_call_then_in_wrap_up_then_back() {
        let mut s = store();
        s.set("alice", "Ready", T0).unwrap();
        let on = s.call_answered("alice", "c1", true, T0 + 1_000).unwrap();
        assert_eq!(on.state, ON_CALL);
        assert_eq!(on.previous.as_deref(), Some("Ready"));
        assert_eq!(on.call_id.as_deref(), Some("c1"));
        assert_eq!(on.source, Source::Call);
        assert_eq!(s.call_answered("alice", "c1", true, T0 + 1_500), None);

        let wrap = s.call_ended("alice", "c1", 9_000, T0 + 10_000).unwrap();
        assert_eq!(wrap.state, WRAP_UP);
        assert_eq!(wrap.wrap_up_ends_at, Some(T0 + 70_000));
        assert_eq!(wrap.previous.as_deref(), Some("Ready"));

        assert_eq!(s.end_wrap_up("alice", "c1", false, T0 + 69_999), None);
        let back = s.end_wrap_up("alice", "c1", false, T0 + 70_000).unwrap();
        assert_eq!((back.state.as_str(), back.source), ("Ready", Source::Timer));
        assert_eq!(back.since, T0 + 70_000);
        assert_eq!(
            s.today("alice", T0 + 70_000),
            Today {
                offered: 0,
                answered: 1,
                missed: 0,
                talk_ms: 9_000
            }
        );
    }

    #[test]
    fn no_wrap_up_time_goes_straight_back() {
        let mut s = AgentStore::new(AgentConfig {
            wrap_up_ms: 0,
            ..AgentConfig::default()
        });
        s.set("alice", "Busy-ish", T0).unwrap();
        s.call_answered("alice", "c1", false, T0).unwrap();
        let back = s.call_ended("alice", "c1", 1, T0 + 1).unwrap();
        assert_eq!(
            (back.state.as_str(), back.wrap_up_ends_at),
            ("Busy-ish", None)
        );
    }

    #[test]
    fn the_agent_ends_wrap_up_early_and_a_stale_timer_changes_nothing() {
        let mut s = store();
        s.call_answered("alice", "c1", true, T0).unwrap();
        s.call_ended("alice", "c1", 0, T0 + 1).unwrap();
        let back = s.end_wrap_up("alice", "c1", true, T0 + 2).unwrap();
        assert_eq!((back.state.as_str(), back.source), ("Ready", Source::Agent));
        assert_eq!(s.end_wrap_up("alice", "c1", false, T0 + 60_001), None);

        // setAgentState during a wrap-up ends it too; the timer then does nothing.
        s.call_answered("alice", "c2", true, T0 + 10).unwrap();
        s.call_ended("alice", "c2", 0, T0 + 11).unwrap();
        s.set("alice", "Break", T0 + 12).unwrap();
        assert_eq!(s.end_wrap_up("alice", "c2", false, T0 + 60_011), None);
        assert_eq!(s.get("alice", T0 + 60_011).state, "Break");
    }

    #[test]
    fn a_second_call_during_wrap_up_keeps_the_state_before_the_first() {
        let mut s = store();
        s.set("alice", "Ready", T0).unwrap();
        s.call_answered("alice", "c1", true, T0).unwrap();
        s.call_ended("alice", "c1", 0, T0 + 1).unwrap();
        let on = s.call_answered("alice", "c2", false, T0 + 2).unwrap();
        assert_eq!(on.previous.as_deref(), Some("Ready"));
    }

    #[test]
    fn three_missed_offers_in_a_row_make_the_agent_missed_until_they_choose() {
        let mut s = store();
        for i in 0..2 {
            s.offered("alice", T0 + i);
            let st = s.offer_missed("alice", T0 + i).unwrap();
            assert_eq!(
                (st.state.as_str(), st.missed_offers),
                ("Ready", i as u32 + 1)
            );
        }
        // An answer resets the count.
        s.call_answered("alice", "c1", true, T0 + 10).unwrap();
        s.call_ended("alice", "c1", 0, T0 + 11).unwrap();
        s.end_wrap_up("alice", "c1", true, T0 + 12).unwrap();
        assert_eq!(s.get("alice", T0 + 12).missed_offers, 0);
        for i in 0..3 {
            s.offer_missed("alice", T0 + 20 + i);
        }
        let st = s.get("alice", T0 + 30);
        assert_eq!((st.state.as_str(), st.source), (MISSED, Source::Missed));
        assert_eq!(
            s.refusal("alice", true, T0 + 30).unwrap().reason,
            RefusalReason::NotReady
        );
        let ready = s.set("alice", "Ready", T0 + 40).unwrap();
        assert_eq!(ready.missed_offers, 0);
        assert_eq!(s.refusal("alice", true, T0 + 40), None);
        assert_eq!(s.today("alice", T0 + 40).missed, 5);
    }

    #[test]
    fn zero_missed_offers_never_makes_anyone_missed() {
        let mut s = AgentStore::new(AgentConfig {
            missed_offers: 0,
            ..AgentConfig::default()
        });
        for i in 0..10 {
            s.offer_missed("alice", T0 + i);
        }
        assert_eq!(s.get("alice", T0 + 10).state, "Ready");
    }

    #[test]
    fn refusal_reasons() {
        let mut s = store();
        let reason =
            |s: &mut AgentStore, connected| s.refusal("alice", connected, T0).map(|r| r.reason);
        assert_eq!(reason(&mut s, true), None);
        assert_eq!(reason(&mut s, false), Some(RefusalReason::Offline));
        s.set("alice", "Offline", T0).unwrap();
        assert_eq!(reason(&mut s, true), Some(RefusalReason::Offline));
        s.set("alice", "Break", T0).unwrap();
        assert_eq!(reason(&mut s, true), Some(RefusalReason::NotReady));
        s.set("alice", "Ready", T0).unwrap();
        s.call_answered("alice", "c1", true, T0).unwrap();
        assert_eq!(reason(&mut s, true), Some(RefusalReason::OnCall));
        // A call that is up counts even if the agent chose Ready meanwhile.
        s.set("alice", "Ready", T0).unwrap();
        assert_eq!(reason(&mut s, true), Some(RefusalReason::OnCall));
        // The agent chose a state during the call: its end keeps that choice.
        assert_eq!(s.call_ended("alice", "c1", 0, T0), None);
        assert_eq!(reason(&mut s, true), None);
        s.set("alice", "WrapUp", T0).unwrap();
        assert_eq!(reason(&mut s, true), Some(RefusalReason::WrapUp));

        let body = s.refusal("alice", true, T0).unwrap().to_json();
        assert_eq!(body["reason"], "wrap-up");
        assert_eq!(body["state"], "WrapUp");
        assert_eq!(body["userId"], "alice");
        assert_eq!(body["since"], T0);
        assert_eq!(
            body["error"],
            "alice is wrapping up a call (state WrapUp); nothing was sent"
        );
        // No connection while Ready, and Offline chosen: both `offline`, said apart.
        s.set("alice", "Ready", T0).unwrap();
        let body = s.refusal("alice", false, T0).unwrap().to_json();
        assert_eq!(body["reason"], "offline");
        assert_eq!(
            body["error"],
            "alice is not connected (state Ready); nothing was sent"
        );
        s.set("alice", "Offline", T0).unwrap();
        let body = s.refusal("alice", true, T0).unwrap().to_json();
        assert_eq!(body["reason"], "offline");
        assert_eq!(
            body["error"],
            "alice is offline (state Offline); nothing was sent"
        );
    }

    #[test]
    fn routable_states_and_star() {
        let mut s = AgentStore::new(AgentConfig {
            routable: vec!["Ready".into(), "Available".into()],
            ..AgentConfig::default()
        });
        s.set("alice", "Available", T0).unwrap();
        assert_eq!(s.refusal("alice", true, T0), None);
        let mut star = AgentStore::new(AgentConfig {
            routable: vec!["*".into()],
            ..AgentConfig::default()
        });
        star.set("alice", "Break", T0).unwrap();
        assert_eq!(star.refusal("alice", true, T0), None);
        assert_eq!(star.refusal("alice", false, T0), None);
    }

    #[test]
    fn today_starts_again_at_midnight_utc() {
        let mut s = store();
        let midnight = (T0 / DAY_MS + 1) * DAY_MS;
        s.offered("alice", midnight - 1);
        assert_eq!(s.today("alice", midnight - 1).offered, 1);
        assert_eq!(s.today("alice", midnight).offered, 0);
    }

    #[test]
    fn wrap_up_limits() {
        let ok = WrapUp::from_wire(
            &json!({"disposition": "Resolved", "notes": "n", "durationMs": 1200}),
            T0,
        )
        .unwrap();
        assert_eq!(ok.disposition.as_deref(), Some("Resolved"));
        assert_eq!(ok.duration_ms, Some(1200));
        assert_eq!(
            ok.to_owned(),
            WrapUp {
                disposition: Some("Resolved".into()),
                notes: Some("n".into()),
                duration_ms: Some(1200),
                submitted_at: T0
            }
        );
        let long = "é".repeat(2001);
        let e = WrapUp::from_wire(&json!({ "notes": long }), T0).unwrap_err();
        assert!(e.contains("notes is 2001 characters; at most 2000"), "{e}");
        assert!(WrapUp::from_wire(&json!({ "notes": "é".repeat(2000) }), T0).is_ok());
        let e = WrapUp::from_wire(&json!({ "disposition": "x".repeat(101) }), T0).unwrap_err();
        assert!(e.contains("disposition"), "{e}");
        assert!(WrapUp::from_wire(&json!({ "durationMs": -1 }), T0).is_err());
        assert!(WrapUp::from_wire(&json!("Resolved"), T0).is_err());
    }
}
