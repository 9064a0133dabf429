//! The agent's contact-centre state as the hub keeps it (issue 15, DESIGN.md §7,
//! docs/hub-contract.md "Agent state"): the hub's `AgentState` object read into
//! [`AgentState`], the rules for which of two states is newer, and what the widget shows
//! ([`Shown`]: the state, how long it has lasted, the wrap-up countdown, the Missed notice).
//!
//! Wire shape (JSON, camelCase), from `AgentStateChanged(state)` and the completions of
//! `getAgentState` / `setAgentState`:
//!
//! ```json
//! {"userId":"alice","state":"Break","since":1764950000000,"source":"agent",
//!  "callId":"c1","wrapUpEndsAt":1764950060000,"previous":"Ready","missedOffers":0}
//! ```
//!
//! `since` and `wrapUpEndsAt` are Unix milliseconds; `source` is `agent`, `call`, `timer`,
//! `missed` or `hub`. Sans-IO: times are passed in.

use serde_json::Value;

/// The state the hub sets after too many unanswered offers in a row.
pub const MISSED: &str = "Missed";
/// The state the hub sets after an answered call, until `wrapUpEndsAt`.
pub const WRAP_UP: &str = "WrapUp";
/// The state the hub sets while a call is up.
pub const ON_CALL: &str = "OnCall";

/// The hub's `AgentState` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    /// Whose state (`userId`, the hub user id).
    pub user_id: String,
    /// The state's name (`state`), [`valid_name`].
    pub state: String,
    /// When this state began, Unix ms (`since`).
    pub since_ms: u64,
    /// Who set it (`source`): `agent`, `call`, `timer`, `missed` or `hub` (others kept as sent).
    pub source: String,
    /// The call that caused it (`callId`; OnCall and WrapUp).
    pub call_id: Option<String>,
    /// When the wrap-up time ends, Unix ms (`wrapUpEndsAt`; WrapUp only).
    pub wrap_up_ends_at_ms: Option<u64>,
    /// The state to return to after OnCall/WrapUp (`previous`).
    pub previous: Option<String>,
    /// Unanswered offers in a row (`missedOffers`, 0 when absent).
    pub missed_offers: u32,
}

/// Whether `name` is a state name the hub accepts from `setAgentState`: 1–32 characters of
/// `[A-Za-z0-9 _-]` (the agent-state wire contract).
pub fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'_' || b == b'-')
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn millis(value: &Value, key: &str) -> Option<u64> {
    let v = value.get(key)?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

impl AgentState {
    /// Reads the hub's object. `Err`: what is missing or wrong, for the diagnostics log
    /// (`AgentState has no userId`, `AgentState has no valid state`, `AgentState has no since`).
    pub fn from_value(value: &Value) -> Result<Self, String> {
        if !value.is_object() {
            return Err("AgentState is not an object".into());
        }
        let user_id = text(value, "userId")
            .filter(|u| !u.is_empty())
            .ok_or("AgentState has no userId")?;
        let state = text(value, "state")
            .filter(|s| valid_name(s))
            .ok_or("AgentState has no valid state")?;
        let since_ms = millis(value, "since").ok_or("AgentState has no since")?;
        Ok(AgentState {
            user_id,
            state,
            since_ms,
            source: text(value, "source").unwrap_or_else(|| "hub".into()),
            call_id: text(value, "callId"),
            wrap_up_ends_at_ms: millis(value, "wrapUpEndsAt"),
            previous: text(value, "previous").filter(|p| valid_name(p)),
            missed_offers: millis(value, "missedOffers")
                .map(|n| n.min(u32::MAX as u64) as u32)
                .unwrap_or(0),
        })
    }

    /// A state this widget chose while the hub does not keep agent states (a hub without
    /// `setAgentState`): `source` `agent`, since `now_ms`.
    pub fn local(user_id: &str, state: &str, now_ms: u64) -> Self {
        AgentState {
            user_id: user_id.to_owned(),
            state: state.to_owned(),
            since_ms: now_ms,
            source: "agent".into(),
            call_id: None,
            wrap_up_ends_at_ms: None,
            previous: None,
            missed_offers: 0,
        }
    }

    /// Whether `self` should replace `shown` (what the widget shows now): a state of another
    /// user never does (a supervisor's connection hears everyone's); an older one (smaller
    /// `since`) never does, as a completion and an event may arrive out of order; an equal or
    /// newer one does.
    pub fn replaces(&self, shown: Option<&AgentState>, me: &str) -> bool {
        self.user_id == me && shown.is_none_or(|s| self.since_ms >= s.since_ms)
    }

    /// What the widget shows for this state at `now_ms`.
    pub fn shown(&self, now_ms: u64) -> Shown {
        let elapsed = now_ms.saturating_sub(self.since_ms);
        Shown {
            state: self.state.clone(),
            since: Since::of(elapsed),
            wrap_up_left_s: (self.state == WRAP_UP)
                .then_some(self.wrap_up_ends_at_ms)
                .flatten()
                // Never more than the whole wrap-up time: a browser clock a little behind
                // the hub's would otherwise show 1:01 of a 60 s wrap-up.
                .map(|end| {
                    let whole = end.saturating_sub(self.since_ms) / 1000;
                    end.saturating_sub(now_ms).div_ceil(1000).min(whole)
                }),
            missed: (self.state == MISSED).then_some(self.missed_offers),
            back_to: self
                .previous
                .clone()
                .filter(|_| self.state == WRAP_UP || self.state == ON_CALL),
        }
    }
}

/// How long a state has lasted, rounded down for the agent: under a minute, whole minutes
/// (under an hour), or hours and minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Less than 60 s.
    JustNow,
    /// 1–59 whole minutes.
    Minutes(u64),
    /// Whole hours and the minutes past them.
    Hours(u64, u64),
}

impl Since {
    /// From a duration in ms.
    pub fn of(elapsed_ms: u64) -> Self {
        let minutes = elapsed_ms / 60_000;
        match minutes {
            0 => Since::JustNow,
            1..=59 => Since::Minutes(minutes),
            _ => Since::Hours(minutes / 60, minutes % 60),
        }
    }
}

/// The agent state as the widget shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The state's name (shown through the catalogue for the built-in names).
    pub state: String,
    /// How long it has lasted ("Break · 12 min").
    pub since: Since,
    /// WrapUp: whole seconds until `wrapUpEndsAt` (rounded up; 0 once passed).
    pub wrap_up_left_s: Option<u64>,
    /// Missed: how many offers in a row went unanswered (the notice "You missed 3 calls…").
    pub missed: Option<u32>,
    /// OnCall/WrapUp: the state the hub returns to afterwards.
    pub back_to: Option<String>,
}

/// Whether `name` is one of the states only the hub sets (OnCall, WrapUp, Missed): the
/// Teams sync's `SetAgentState` of one of them is shown but not published, since
/// `setAgentState("OnCall")` would make the hub refuse rings (`on-call`) with no call up.
pub fn is_automatic(name: &str) -> bool {
    [ON_CALL, WRAP_UP, MISSED].contains(&name)
}

/// Whether a hub error means the hub lacks the agent-state methods (an older hub): the
/// widget then keeps the state locally. The completion error for an unknown method is
/// `Unknown hub method 'X'` (switchboard-hub) or `Method does not exist.` (ASP.NET Core
/// SignalR's `HubException`).
pub fn is_unsupported(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("method does not exist") || e.contains("unknown hub method")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn break_at(since: u64) -> AgentState {
        AgentState::from_value(&json!({
            "userId": "alice", "state": "Break", "since": since, "source": "agent",
            "missedOffers": 0
        }))
        .unwrap()
    }

    #[test]
    fn the_hub_object_is_read_with_its_optional_fields() {
        let s = AgentState::from_value(&json!({
            "userId": "alice", "state": "WrapUp", "since": 1_764_950_000_000u64,
            "source": "call", "callId": "c1", "wrapUpEndsAt": 1_764_950_060_000u64,
            "previous": "Ready", "missedOffers": 2
        }))
        .unwrap();
        assert_eq!(s.user_id, "alice");
        assert_eq!(s.state, "WrapUp");
        assert_eq!(s.since_ms, 1_764_950_000_000);
        assert_eq!(s.source, "call");
        assert_eq!(s.call_id.as_deref(), Some("c1"));
        assert_eq!(s.wrap_up_ends_at_ms, Some(1_764_950_060_000));
        assert_eq!(s.previous.as_deref(), Some("Ready"));
        assert_eq!(s.missed_offers, 2);
        let plain = break_at(5);
        assert_eq!(
            (plain.call_id, plain.wrap_up_ends_at_ms, plain.previous),
            (None, None, None)
        );
    }

    #[test]
    fn bad_objects_are_refused_with_the_reason() {
        assert_eq!(
            AgentState::from_value(&json!("Break")),
            Err("AgentState is not an object".into())
        );
        assert_eq!(
            AgentState::from_value(&json!({"state": "Break", "since": 1})),
            Err("AgentState has no userId".into())
        );
        assert_eq!(
            AgentState::from_value(&json!({"userId": "a", "state": "<b>x</b>", "since": 1})),
            Err("AgentState has no valid state".into())
        );
        assert_eq!(
            AgentState::from_value(&json!({"userId": "a", "state": "Break"})),
            Err("AgentState has no since".into())
        );
        assert_eq!(
            AgentState::from_value(&json!({"userId": "a", "state": "Break", "since": -4})),
            Err("AgentState has no since".into())
        );
    }

    #[test]
    fn state_names_follow_the_contract() {
        for ok in ["Ready", "Not ready", "Lunch_2", "a-b", &"x".repeat(32)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", &"x".repeat(33), "Café", "a/b", "a<b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn only_my_own_newer_states_replace_the_shown_one() {
        let shown = break_at(1_000);
        assert!(break_at(1_000).replaces(Some(&shown), "alice"));
        assert!(break_at(2_000).replaces(Some(&shown), "alice"));
        assert!(!break_at(999).replaces(Some(&shown), "alice"));
        assert!(!break_at(2_000).replaces(Some(&shown), "bob"));
        assert!(break_at(1).replaces(None, "alice"));
    }

    #[test]
    fn since_is_rounded_down_to_minutes_and_hours() {
        assert_eq!(Since::of(0), Since::JustNow);
        assert_eq!(Since::of(59_999), Since::JustNow);
        assert_eq!(Since::of(60_000), Since::Minutes(1));
        assert_eq!(Since::of(12 * 60_000 + 59_000), Since::Minutes(12));
        assert_eq!(Since::of(60 * 60_000), Since::Hours(1, 0));
        assert_eq!(Since::of(125 * 60_000), Since::Hours(2, 5));
        assert_eq!(break_at(0).shown(12 * 60_000).since, Since::Minutes(12));
        // A clock behind the hub's shows "just now", never a negative time.
        assert_eq!(break_at(10_000).shown(0).since, Since::JustNow);
    }

    #[test]
    fn wrap_up_counts_down_to_its_end_and_names_the_state_after() {
        let s = AgentState::from_value(&json!({
            "userId": "a", "state": "WrapUp", "since": 0, "source": "call",
            "callId": "c1", "wrapUpEndsAt": 60_000, "previous": "Break"
        }))
        .unwrap();
        let shown = s.shown(17_500);
        assert_eq!(shown.wrap_up_left_s, Some(43));
        assert_eq!(shown.back_to.as_deref(), Some("Break"));
        assert_eq!(shown.missed, None);
        assert_eq!(s.shown(60_000).wrap_up_left_s, Some(0));
        assert_eq!(s.shown(90_000).wrap_up_left_s, Some(0));
        // A browser clock behind the hub's: at most the whole wrap-up time, never 1:01 of 1:00.
        assert_eq!(s.shown(0).wrap_up_left_s, Some(60));
        let behind = AgentState {
            since_ms: 1_000,
            wrap_up_ends_at_ms: Some(61_000),
            ..s.clone()
        };
        assert_eq!(behind.shown(900).wrap_up_left_s, Some(60));
        // No countdown outside WrapUp, nor without an end.
        assert_eq!(break_at(0).shown(1).wrap_up_left_s, None);
        let open = AgentState::from_value(
            &json!({"userId": "a", "state": "WrapUp", "since": 0, "source": "call"}),
        )
        .unwrap();
        assert_eq!(open.shown(5).wrap_up_left_s, None);
    }

    #[test]
    fn missed_carries_the_count_for_the_notice() {
        let s = AgentState::from_value(&json!({
            "userId": "a", "state": "Missed", "since": 0, "source": "missed", "missedOffers": 3
        }))
        .unwrap();
        assert_eq!(s.shown(0).missed, Some(3));
        assert_eq!(break_at(0).shown(0).missed, None);
    }

    #[test]
    fn a_local_state_starts_now_as_the_agents_choice() {
        let s = AgentState::local("alice", "Lunch", 42);
        assert_eq!((s.since_ms, s.source.as_str()), (42, "agent"));
        assert_eq!(s.shown(42).state, "Lunch");
    }

    #[test]
    fn only_the_hub_sets_the_automatic_states() {
        assert!(is_automatic("OnCall") && is_automatic("WrapUp") && is_automatic("Missed"));
        assert!(!is_automatic("Ready") && !is_automatic("Break") && !is_automatic("oncall"));
    }

    #[test]
    fn unknown_method_errors_mean_an_older_hub() {
        assert!(is_unsupported(
            "Failed to invoke 'setAgentState' due to an error on the server. HubException: Method does not exist."
        ));
        assert!(is_unsupported("Unknown hub method 'setAgentState'"));
        assert!(!is_unsupported(
            "setAgentState: state must be 1-32 characters"
        ));
        assert!(!is_unsupported("The connection was closed."));
    }
}
