//! The mapping tables between Teams presence and contact-centre agent states, both ways.
//!
//! **Teams → agent.** The default is the mapping table of seed `003_…` (innovaphone "Connector
//! for Microsoft 365", section "Mapping Table"), encoded row for row in [`SEED_003_TABLE`]:
//! Teams activity → PBX presence category (`away`, `busy`, `dnd`, `on-the-phone`, `meeting`,
//! `online`). Each category then names an agent state ([`SeedCategory::default_agent_state`]).
//! As in the seed, "The value "online" unsets the Teams presence": a Teams value that maps to
//! `online` sets no agent state; it [`TeamsTarget::Unset`]s the one sync put there (the agent's
//! own state comes back) and never overrides a state the agent chose.
//!
//! **Agent → Teams.** Per agent state: a user-preferred presence
//! (`setUserPreferredPresence`, for explicit choices such as a break), a session presence
//! (`setPresence`, for "on the phone": `OnCall` → `Busy`/`InACall`), `clear` (remove what we
//! set, e.g. `Ready`), or nothing (no sync). Seed `004_…` (ConnectPath): mappable by an
//! administrator in both directions, "a user who is Connected in ConnectPath could be made
//! Busy in Teams"; Graph's allowed combinations are checked (competitors.md §6.1).
//!
//! **Configuration** (`config.json`, `presence` section; every key optional; entries are merged
//! onto the defaults, `null` removes a row so that value is not synchronised):
//!
//! ```json
//! {
//!   "states": ["Ready", "NotReady", "WrapUp", "OnCall", "Break", "Offline"],
//!   "teamsToAgent": { "InAMeeting": "NotReady", "Available": "online", "OutOfOffice": null },
//!   "agentToTeams": {
//!     "Ready": "clear",
//!     "Break": { "availability": "Away", "activity": "Away" },
//!     "OnCall": { "availability": "Busy", "activity": "InACall", "session": true },
//!     "WrapUp": null
//!   }
//! }
//! ```

use serde_json::{Map, Value};

use super::{Activity, Availability, Presence};
use crate::config::ConfigError;

/// The PBX presence categories of seed `003_…`'s mapping table (wire names as in the seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeedCategory {
    /// `away`.
    Away,
    /// `busy`.
    Busy,
    /// `dnd`.
    Dnd,
    /// `on-the-phone`.
    OnThePhone,
    /// `meeting`.
    Meeting,
    /// `online`: "unsets the Teams presence in the PBX".
    Online,
}

impl SeedCategory {
    /// The seed's name (`"on-the-phone"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SeedCategory::Away => "away",
            SeedCategory::Busy => "busy",
            SeedCategory::Dnd => "dnd",
            SeedCategory::OnThePhone => "on-the-phone",
            SeedCategory::Meeting => "meeting",
            SeedCategory::Online => "online",
        }
    }

    /// The agent state a category maps to by default: `away` → `Break`; `busy`, `dnd` and
    /// `meeting` → `NotReady` (no contact-centre work while busy elsewhere); `on-the-phone` →
    /// `OnCall`; `online` → unset.
    pub fn default_agent_state(self) -> TeamsTarget {
        let state = match self {
            SeedCategory::Away => "Break",
            SeedCategory::Busy | SeedCategory::Dnd | SeedCategory::Meeting => "NotReady",
            SeedCategory::OnThePhone => "OnCall",
            SeedCategory::Online => return TeamsTarget::Unset,
        };
        TeamsTarget::State(state.into())
    }
}

/// Seed `003_…`'s "Mapping Table" (Teams Presence → PBX Presence), every row in the seed's
/// order. (The seed writes `Offwork`; Graph's name is `OffWork`.)
pub const SEED_003_TABLE: [(Activity, SeedCategory); 15] = [
    (Activity::Away, SeedCategory::Away),
    (Activity::BeRightBack, SeedCategory::Away),
    (Activity::Busy, SeedCategory::Busy),
    (Activity::DoNotDisturb, SeedCategory::Dnd),
    (Activity::InACall, SeedCategory::OnThePhone),
    (Activity::InAMeeting, SeedCategory::Meeting),
    (Activity::Inactive, SeedCategory::Online),
    (Activity::PresenceUnknown, SeedCategory::Online),
    (Activity::Available, SeedCategory::Online),
    (Activity::Offline, SeedCategory::Online),
    (Activity::OffWork, SeedCategory::Online),
    (Activity::OutOfOffice, SeedCategory::Away),
    (Activity::UrgentInterruptionsOnly, SeedCategory::Dnd),
    (Activity::Presenting, SeedCategory::OnThePhone),
    (Activity::InAConferenceCall, SeedCategory::OnThePhone),
];

/// What a Teams activity does to the agent state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamsTarget {
    /// Set this agent state (source: sync).
    State(String),
    /// `"online"`: clear the state sync set, so the agent's own state returns; never touches a
    /// state the agent chose.
    Unset,
}

/// What an agent state does to Teams presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentTarget {
    /// `setUserPreferredPresence` with this pair (Graph combinations: Available/Available,
    /// Busy/Busy, DoNotDisturb/DoNotDisturb, BeRightBack/BeRightBack, Away/Away,
    /// Offline/OffWork).
    Preferred(Presence),
    /// `setPresence` on our session with this pair, renewed while the state holds (Graph
    /// combinations: Available/Available, Busy/InACall, Busy/InAConferenceCall, Away/Away,
    /// DoNotDisturb/Presenting).
    Session(Presence),
    /// `"clear"`: `clearUserPreferredPresence` if we set one (Teams shows its own presence).
    Clear,
}

/// Pairs `setUserPreferredPresence` accepts (Graph docs).
pub const PREFERRED_COMBINATIONS: [(Availability, Activity); 6] = [
    (Availability::Available, Activity::Available),
    (Availability::Busy, Activity::Busy),
    (Availability::DoNotDisturb, Activity::DoNotDisturb),
    (Availability::BeRightBack, Activity::BeRightBack),
    (Availability::Away, Activity::Away),
    (Availability::Offline, Activity::OffWork),
];

/// Pairs `setPresence` accepts (Graph docs; `DoNotDisturb`/`Presenting` in current docs).
pub const SESSION_COMBINATIONS: [(Availability, Activity); 5] = [
    (Availability::Available, Activity::Available),
    (Availability::Busy, Activity::InACall),
    (Availability::Busy, Activity::InAConferenceCall),
    (Availability::Away, Activity::Away),
    (Availability::DoNotDisturb, Activity::Presenting),
];

/// Whether `setUserPreferredPresence` accepts this pair.
pub fn is_preferred_combination(p: Presence) -> bool {
    PREFERRED_COMBINATIONS.contains(&(p.availability, p.activity))
}

/// Whether `setPresence` accepts this pair.
pub fn is_session_combination(p: Presence) -> bool {
    SESSION_COMBINATIONS.contains(&(p.availability, p.activity))
}

/// The agent states and both mapping tables (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceMapping {
    /// The contact centre's agent states (`states`), e.g. `Ready`.
    pub states: Vec<String>,
    /// Teams activity → target; an activity without a row is not synchronised.
    pub teams_to_agent: Vec<(Activity, TeamsTarget)>,
    /// Agent state → target; a state without a row is not synchronised.
    pub agent_to_teams: Vec<(String, AgentTarget)>,
}

impl Default for PresenceMapping {
    /// States `Ready`, `NotReady`, `WrapUp`, `OnCall`, `Break`, `Offline`; Teams → agent:
    /// [`SEED_003_TABLE`] through [`SeedCategory::default_agent_state`]; agent → Teams:
    /// `Ready` → clear, `NotReady` and `WrapUp` → preferred Busy/Busy, `OnCall` → session
    /// Busy/InACall, `Break` → preferred Away/Away, `Offline` → clear.
    fn default() -> Self {
        let preferred = |a, b| AgentTarget::Preferred(Presence::new(a, b));
        Self {
            states: ["Ready", "NotReady", "WrapUp", "OnCall", "Break", "Offline"]
                .map(String::from)
                .to_vec(),
            teams_to_agent: SEED_003_TABLE
                .iter()
                .map(|(a, c)| (*a, c.default_agent_state()))
                .collect(),
            agent_to_teams: vec![
                ("Ready".into(), AgentTarget::Clear),
                (
                    "NotReady".into(),
                    preferred(Availability::Busy, Activity::Busy),
                ),
                (
                    "WrapUp".into(),
                    preferred(Availability::Busy, Activity::Busy),
                ),
                ("OnCall".into(), AgentTarget::Session(Presence::IN_A_CALL)),
                (
                    "Break".into(),
                    preferred(Availability::Away, Activity::Away),
                ),
                ("Offline".into(), AgentTarget::Clear),
            ],
        }
    }
}

fn invalid(text: String) -> ConfigError {
    ConfigError::Invalid(text)
}

impl PresenceMapping {
    /// The Teams → agent row for an activity (`None`: not synchronised).
    pub fn teams_to_agent(&self, activity: Activity) -> Option<&TeamsTarget> {
        self.teams_to_agent
            .iter()
            .find(|(a, _)| *a == activity)
            .map(|(_, t)| t)
    }

    /// The agent → Teams row for a state (`None`: not synchronised).
    pub fn agent_to_teams(&self, state: &str) -> Option<AgentTarget> {
        self.agent_to_teams
            .iter()
            .find(|(s, _)| s == state)
            .map(|(_, t)| *t)
    }

    /// Reads the `presence` section of `config.json` (see the module docs); `None`/`null` is
    /// the default. Errors name the field: `presence.teamsToAgent.Lunch is not a Teams
    /// activity`, `presence.agentToTeams.Break: Away/Busy cannot be a preferred presence ...`.
    pub fn from_value(value: Option<&Value>) -> Result<Self, ConfigError> {
        let mut mapping = Self::default();
        let section = match value {
            None | Some(Value::Null) => return Ok(mapping),
            Some(Value::Object(o)) => o,
            Some(_) => return Err(invalid("presence must be an object".into())),
        };
        if let Some(states) = section.get("states").filter(|v| !v.is_null()) {
            let list = states
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|s| s.as_str().map(str::trim).filter(|s| !s.is_empty()))
                        .collect::<Option<Vec<_>>>()
                })
                .filter(|l| !l.is_empty())
                .ok_or_else(|| {
                    invalid("presence.states must be a non-empty list of state names".into())
                })?;
            mapping.states = list.into_iter().map(String::from).collect();
            // Drop default rows that name states this contact centre does not have.
            let states = mapping.states.clone();
            mapping
                .teams_to_agent
                .retain(|(_, t)| !matches!(t, TeamsTarget::State(s) if !states.contains(s)));
            mapping.agent_to_teams.retain(|(s, _)| states.contains(s));
        }
        if let Some(table) = table(section, "teamsToAgent")? {
            for (key, value) in table {
                let activity = Activity::from_wire(key).ok_or_else(|| {
                    invalid(format!(
                        "presence.teamsToAgent.{key} is not a Teams activity (one of {})",
                        names(Activity::ALL.iter().map(|a| a.as_str()))
                    ))
                })?;
                mapping.teams_to_agent.retain(|(a, _)| *a != activity);
                let target = match value {
                    Value::Null => continue,
                    Value::String(s) if s.eq_ignore_ascii_case("online") => TeamsTarget::Unset,
                    Value::String(s) if mapping.states.contains(s) => TeamsTarget::State(s.clone()),
                    _ => {
                        return Err(invalid(format!(
                            "presence.teamsToAgent.{key} must be \"online\", null or one of {}",
                            names(mapping.states.iter().map(String::as_str))
                        )));
                    }
                };
                mapping.teams_to_agent.push((activity, target));
            }
        }
        if let Some(table) = table(section, "agentToTeams")? {
            for (key, value) in table {
                if !mapping.states.contains(key) {
                    return Err(invalid(format!(
                        "presence.agentToTeams.{key} is not an agent state (one of {})",
                        names(mapping.states.iter().map(String::as_str))
                    )));
                }
                mapping.agent_to_teams.retain(|(s, _)| s != key);
                let path = format!("presence.agentToTeams.{key}");
                let target = match value {
                    Value::Null => continue,
                    Value::String(s) if s.eq_ignore_ascii_case("clear") => AgentTarget::Clear,
                    Value::Object(o) => agent_target(o, &path)?,
                    _ => {
                        return Err(invalid(format!(
                            "{path} must be \"clear\", null or {{\"availability\", \"activity\", \"session\"?}}"
                        )));
                    }
                };
                mapping.agent_to_teams.push((key.clone(), target));
            }
        }
        Ok(mapping)
    }
}

fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn table<'a>(
    section: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, ConfigError> {
    match section.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(invalid(format!("presence.{key} must be an object"))),
    }
}

fn agent_target(o: &Map<String, Value>, path: &str) -> Result<AgentTarget, ConfigError> {
    let availability = o
        .get("availability")
        .and_then(Value::as_str)
        .and_then(Availability::from_wire)
        .ok_or_else(|| invalid(format!("{path}.availability must be a Graph availability")))?;
    let activity = o
        .get("activity")
        .and_then(Value::as_str)
        .and_then(Activity::from_wire)
        .ok_or_else(|| invalid(format!("{path}.activity must be a Graph activity")))?;
    let session = match o.get("session") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid(format!("{path}.session must be true or false"))),
    };
    let p = Presence::new(availability, activity);
    let (ok, target, allowed) = if session {
        (
            is_session_combination(p),
            AgentTarget::Session(p),
            &SESSION_COMBINATIONS[..],
        )
    } else {
        (
            is_preferred_combination(p),
            AgentTarget::Preferred(p),
            &PREFERRED_COMBINATIONS[..],
        )
    };
    if ok {
        Ok(target)
    } else {
        Err(invalid(format!(
            "{path}: {availability}/{activity} cannot be a {} presence (Graph allows {})",
            if session { "session" } else { "preferred" },
            allowed
                .iter()
                .map(|(a, b)| format!("{a}/{b}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seed_003_table_is_encoded_exactly() {
        // Copied from the seed's "Mapping Table", in its order.
        let seed = "Away away|BeRightBack away|Busy busy|DoNotDisturb dnd|InACall on-the-phone|\
                    InAMeeting meeting|Inactive online|PresenceUnknown online|Available online|\
                    Offline online|Offwork online|OutOfOffice away|UrgentInterruptionsOnly dnd|\
                    Presenting on-the-phone|InAConferenceCall on-the-phone";
        let rows: Vec<(&str, &str)> = seed
            .split('|')
            .map(|r| r.trim().split_once(' ').unwrap())
            .collect();
        assert_eq!(rows.len(), SEED_003_TABLE.len());
        for ((teams, pbx), (activity, category)) in rows.iter().zip(SEED_003_TABLE) {
            assert_eq!(Activity::from_wire(teams), Some(activity), "{teams}");
            assert_eq!(category.as_str(), *pbx, "{teams}");
        }
        // Every Graph activity has a row.
        for a in Activity::ALL {
            assert!(SEED_003_TABLE.iter().any(|(x, _)| x == a), "{a}");
        }
    }

    #[test]
    fn default_tables() {
        let m = PresenceMapping::default();
        let state = |a| m.teams_to_agent(a).cloned();
        assert_eq!(
            state(Activity::Away),
            Some(TeamsTarget::State("Break".into()))
        );
        assert_eq!(
            state(Activity::OutOfOffice),
            Some(TeamsTarget::State("Break".into()))
        );
        assert_eq!(
            state(Activity::InACall),
            Some(TeamsTarget::State("OnCall".into()))
        );
        assert_eq!(
            state(Activity::Presenting),
            Some(TeamsTarget::State("OnCall".into()))
        );
        assert_eq!(
            state(Activity::InAMeeting),
            Some(TeamsTarget::State("NotReady".into()))
        );
        assert_eq!(
            state(Activity::UrgentInterruptionsOnly),
            Some(TeamsTarget::State("NotReady".into()))
        );
        for online in [
            Activity::Available,
            Activity::Inactive,
            Activity::Offline,
            Activity::OffWork,
            Activity::PresenceUnknown,
        ] {
            assert_eq!(state(online), Some(TeamsTarget::Unset), "{online}");
        }
        assert_eq!(
            m.agent_to_teams("OnCall"),
            Some(AgentTarget::Session(Presence::IN_A_CALL))
        );
        assert_eq!(m.agent_to_teams("Ready"), Some(AgentTarget::Clear));
        assert_eq!(
            m.agent_to_teams("Break"),
            Some(AgentTarget::Preferred(Presence::new(
                Availability::Away,
                Activity::Away
            )))
        );
        assert_eq!(m.agent_to_teams("Lunch"), None);
        for (_, t) in &m.agent_to_teams {
            match t {
                AgentTarget::Preferred(p) => assert!(is_preferred_combination(*p)),
                AgentTarget::Session(p) => assert!(is_session_combination(*p)),
                AgentTarget::Clear => {}
            }
        }
        assert_eq!(PresenceMapping::from_value(None).unwrap(), m);
        assert_eq!(PresenceMapping::from_value(Some(&json!(null))).unwrap(), m);
    }

    #[test]
    fn config_overrides_merge_onto_defaults() {
        let m = PresenceMapping::from_value(Some(&json!({
            "states": ["Ready", "NotReady", "Break", "Meeting", "OnCall"],
            "teamsToAgent": {"InAMeeting": "Meeting", "outofoffice": null, "Busy": "online"},
            "agentToTeams": {
                "Meeting": {"availability": "DoNotDisturb", "activity": "DoNotDisturb"},
                "OnCall": {"availability": "Busy", "activity": "InAConferenceCall", "session": true},
                "Break": null
            }
        })))
        .unwrap();
        assert_eq!(
            m.teams_to_agent(Activity::InAMeeting),
            Some(&TeamsTarget::State("Meeting".into()))
        );
        assert_eq!(m.teams_to_agent(Activity::OutOfOffice), None);
        assert_eq!(m.teams_to_agent(Activity::Busy), Some(&TeamsTarget::Unset));
        assert_eq!(
            m.teams_to_agent(Activity::Away),
            Some(&TeamsTarget::State("Break".into()))
        );
        assert_eq!(
            m.agent_to_teams("Meeting"),
            Some(AgentTarget::Preferred(Presence::new(
                Availability::DoNotDisturb,
                Activity::DoNotDisturb
            )))
        );
        assert_eq!(m.agent_to_teams("Break"), None);
        assert_eq!(m.agent_to_teams("WrapUp"), None, "not a state any more");
        assert_eq!(m.agent_to_teams("Ready"), Some(AgentTarget::Clear));
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = |v: Value| {
            PresenceMapping::from_value(Some(&v))
                .unwrap_err()
                .to_string()
        };
        assert!(err(json!(3)).contains("presence must be an object"));
        assert!(err(json!({"states": []})).contains("presence.states"));
        assert!(
            err(json!({"teamsToAgent": {"Lunch": "Break"}}))
                .contains("presence.teamsToAgent.Lunch is not a Teams activity")
        );
        assert!(
            err(json!({"teamsToAgent": {"Away": "Nap"}}))
                .contains("presence.teamsToAgent.Away must be")
        );
        assert!(
            err(json!({"agentToTeams": {"Nap": "clear"}}))
                .contains("presence.agentToTeams.Nap is not an agent state")
        );
        let e =
            err(json!({"agentToTeams": {"Break": {"availability": "Away", "activity": "Busy"}}}));
        assert!(
            e.contains("Away/Busy cannot be a preferred presence"),
            "{e}"
        );
        let e = err(
            json!({"agentToTeams": {"OnCall": {"availability": "Busy", "activity": "Busy", "session": true}}}),
        );
        assert!(e.contains("cannot be a session presence"), "{e}");
        assert!(err(json!({"agentToTeams": {"Ready": 1}})).contains("must be \"clear\""));
        assert!(
            err(json!({"agentToTeams": {"Ready": {"availability": "Sleepy", "activity": "Away"}}}))
                .contains("availability")
        );
    }
}
