//! The options of the widget's own-presence control, as the values its `<select>` carries and
//! the host's `set_presence` sends: `state:<agent state>` (a contact-centre state, handed to the
//! sync engine) or `teams:<availability>` (a Teams presence the agent sets by hand, one of
//! [`PREFERRED_COMBINATIONS`], written with `setUserPreferredPresence`).

use super::Presence;
use super::mapping::PREFERRED_COMBINATIONS;

/// A parsed option of the presence control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `state:<agent state>`.
    State(String),
    /// `teams:<availability>`: the preferred pair with that availability.
    Teams(Presence),
}

impl Choice {
    /// Reads an option value; `None` for anything else (no prefix, or a Teams availability the
    /// agent may not pick; availability names are matched exactly, as the control writes them).
    pub fn parse(value: &str) -> Option<Self> {
        if let Some(state) = value.strip_prefix("state:") {
            return Some(Choice::State(state.to_owned()));
        }
        let name = value.strip_prefix("teams:")?;
        teams_choices()
            .find(|p| p.availability.as_str() == name)
            .map(Choice::Teams)
    }

    /// The option value (`state:Ready`, `teams:Busy`).
    pub fn value(&self) -> String {
        match self {
            Choice::State(state) => state_value(state),
            Choice::Teams(p) => ["teams:", p.availability.as_str()].concat(),
        }
    }
}

/// The option value of an agent state: `state:<state>`.
pub fn state_value(state: &str) -> String {
    ["state:", state].concat()
}

/// The Teams presences the agent may pick, in the control's order: the pairs
/// `setUserPreferredPresence` accepts.
pub fn teams_choices() -> impl Iterator<Item = Presence> {
    PREFERRED_COMBINATIONS
        .iter()
        .map(|&(a, b)| Presence::new(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::{Activity, Availability};

    #[test]
    fn the_teams_options_are_the_preferred_pairs_in_order() {
        let names: Vec<_> = teams_choices().map(|p| p.availability.as_str()).collect();
        assert_eq!(
            names,
            [
                "Available",
                "Busy",
                "DoNotDisturb",
                "BeRightBack",
                "Away",
                "Offline"
            ]
        );
        assert_eq!(
            Choice::parse("teams:Offline"),
            Some(Choice::Teams(Presence::new(
                Availability::Offline,
                Activity::OffWork
            )))
        );
    }

    #[test]
    fn options_read_and_write_back() {
        assert_eq!(
            Choice::parse("state:Ready"),
            Some(Choice::State("Ready".into()))
        );
        assert_eq!(Choice::parse("state:"), Some(Choice::State(String::new())));
        for p in teams_choices() {
            let value = Choice::Teams(p).value();
            assert_eq!(Choice::parse(&value), Some(Choice::Teams(p)));
        }
        assert_eq!(state_value("On break"), "state:On break");
        assert_eq!(Choice::State("Ready".into()).value(), "state:Ready");
    }

    #[test]
    fn other_values_are_not_options() {
        assert_eq!(Choice::parse(""), None);
        assert_eq!(Choice::parse("Ready"), None);
        // Exact names only, and only pairs the agent may set.
        assert_eq!(Choice::parse("teams:busy"), None);
        assert_eq!(Choice::parse("teams:BusyIdle"), None);
        assert_eq!(Choice::parse("teams:InACall"), None);
    }
}
