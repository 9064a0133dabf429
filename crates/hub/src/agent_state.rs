//! The agent-state hub methods (issue 15; `docs/agent-state.md`), which [`register`] puts in
//! the hub's method table, and the hub operations behind them. The bookkeeping is
//! [`crate::agents::AgentStore`]; the automatic states (call answered/ended, missed offers,
//! wrap-up timer) and the ring refusals are wired in [`crate::hub`].
//!
//! | method | arguments | result |
//! |---|---|---|
//! | `setAgentState` | `state: string` (1–32 of `[A-Za-z0-9 _-]`) | `AgentState` (`source: "agent"`) |
//! | `getAgentState` | none | `AgentState` |
//! | `submitWrapUp` | `callId: string`, `wrapUp: {disposition?, notes?, durationMs?}` | the call, with `wrapUp` |
//! | `getTeamAgentStates` | none | `{"agents": [AgentState + {connected, currentCall?, today}]}` (role `Supervisor` only; else the error `getTeamAgentStates: supervisors only`) |

use serde_json::{Value, json};

use crate::agents::{AgentState, WrapUp};
use crate::hub::{ConnectionInfo, Hub, HubMethods, expect_args};
use crate::registry::Call;

/// Puts the agent-state methods in the hub's method table (see the module docs).
pub fn register(methods: &mut HubMethods) {
    methods.register("setAgentState", set_agent_state);
    methods.register("getAgentState", get_agent_state);
    methods.register("submitWrapUp", submit_wrap_up);
    methods.register("getTeamAgentStates", get_team_agent_states);
}

fn set_agent_state(
    hub: &Hub,
    conn: &ConnectionInfo,
    target: &str,
    arguments: &[Value],
) -> Result<Option<Value>, String> {
    expect_args(target, arguments, 1, 1, "state: string")?;
    let user = conn.user_for(target)?;
    let name = arguments[0]
        .as_str()
        .ok_or_else(|| format!("{target}: state must be a string"))?;
    hub.set_agent_state(user, name).map(|s| Some(s.to_json()))
}

fn get_agent_state(
    hub: &Hub,
    conn: &ConnectionInfo,
    target: &str,
    arguments: &[Value],
) -> Result<Option<Value>, String> {
    expect_args(target, arguments, 0, 0, "")?;
    let user = conn.user_for(target)?;
    Ok(Some(hub.agent_state(user).to_json()))
}

fn submit_wrap_up(
    hub: &Hub,
    conn: &ConnectionInfo,
    target: &str,
    arguments: &[Value],
) -> Result<Option<Value>, String> {
    expect_args(
        target,
        arguments,
        2,
        2,
        "callId: string, wrapUp: {disposition?, notes?, durationMs?}",
    )?;
    let user = conn.user_for(target)?;
    let call_id = arguments[0]
        .as_str()
        .ok_or_else(|| format!("{target}: callId must be a string"))?;
    let wrap_up = WrapUp::from_wire(&arguments[1], crate::auth::unix_now_ms())?;
    hub.submit_wrap_up(user, call_id, wrap_up)
        .map(|c| Some(c.to_json()))
}

fn get_team_agent_states(
    hub: &Hub,
    conn: &ConnectionInfo,
    target: &str,
    arguments: &[Value],
) -> Result<Option<Value>, String> {
    expect_args(target, arguments, 0, 0, "")?;
    if !conn.is_supervisor() {
        return Err("getTeamAgentStates: supervisors only".into());
    }
    Ok(Some(hub.team_agent_states(&conn.hub)))
}

impl Hub {
    /// `setAgentState`: the agent chooses a state; `AgentStateChanged` goes out.
    pub fn set_agent_state(&self, user: &str, name: &str) -> Result<AgentState, String> {
        let now = crate::auth::unix_now_ms();
        let mut inner = self.lock();
        let state = inner.agents.set(user, name, now)?;
        tracing::info!(agent = %user, state = %state.state, "agent state chosen");
        inner.agent_changed(&state);
        Ok(state)
    }

    /// The agent's state (`getAgentState`; the initial state for an agent not seen yet).
    pub fn agent_state(&self, user: &str) -> AgentState {
        self.lock().agents.get(user, crate::auth::unix_now_ms())
    }

    /// `submitWrapUp`: stores the wrap-up on the agent's call and ends the agent's wrap-up of
    /// it early. Err: unknown call, or another agent's.
    pub fn submit_wrap_up(
        &self,
        user: &str,
        call_id: &str,
        wrap_up: WrapUp,
    ) -> Result<Call, String> {
        let now = wrap_up.submitted_at;
        let mut inner = self.lock();
        let call = inner
            .calls
            .set_wrap_up(call_id, user, wrap_up)
            .map_err(|e| format!("submitWrapUp: {e}"))?;
        tracing::info!(call_id, agent = %user, "wrap-up submitted");
        if let Some(state) = inner.agents.end_wrap_up(user, call_id, true, now) {
            inner.agent_changed(&state);
        }
        Ok(call)
    }

    /// `getTeamAgentStates`: every agent the hub knows (seen, or connected to `hub`; with
    /// `--redis` every agent stored in Redis or announced by another node), sorted by user
    /// id (`connected`: on any live node; `currentCall` only for calls this node holds): `{"agents": [AgentState + {"connected", "currentCall"?, "today":
    /// {"offered","answered","missed","talkMs"}}]}`.
    pub fn team_agent_states(&self, hub: &str) -> Value {
        let now = crate::auth::unix_now_ms();
        let hub = hub.to_ascii_lowercase();
        let mut inner = self.lock();
        let mut users = inner.agents.users();
        users.extend(inner.connected_users(&hub));
        users.sort();
        users.dedup();
        let agents: Vec<Value> = users
            .iter()
            .map(|user| {
                let mut value = inner.agents.get(user, now).to_json();
                value["connected"] = Value::Bool(inner.user_online_anywhere(user));
                value["today"] = json!(inner.agents.today(user, now));
                if let Some(call) = inner
                    .agents
                    .current_call(user)
                    .and_then(|id| inner.calls.get(id))
                {
                    value["currentCall"] = call.to_json();
                }
                value
            })
            .collect();
        json!({ "agents": agents })
    }
}
