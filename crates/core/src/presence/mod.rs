//! Presence: Microsoft Graph presence values, the Teams ⇄ agent-state mapping tables, and the
//! sans-IO sync engine that keeps them in step (issue 6; DESIGN.md §6; seeds `003_…` and
//! `004_…`; `shared/reference/competitors.md` §6).
//!
//! - [`Availability`], [`Activity`], [`Presence`]: the Graph `presence` resource's values with
//!   their wire names (Graph `resources/presence.md`).
//! - [`mapping`]: the default Teams → agent table (seed `003_…`, exactly), the default agent →
//!   Teams table, and reading both from the `presence` section of `config.json`.
//! - [`sync`]: [`PresenceSync`], events and `now_ms` in, [`Command`]s out.
//! - [`parse_iso_duration`] / [`format_iso_duration`]: Graph's `expirationDuration` (`PT5M`).
//! - [`choice`]: the own-presence control's options (`state:…`, `teams:…`).
//! - [`read_presence`]: one `{id, availability, activity}` presence.
//! - [`subscriptions`]: the Graph presence subscription manager (change notifications,
//!   renewal, lifecycle events, 429), sans-IO.
//! - [`poll`]: [`poll::PollScheduler`], when to poll `getPresencesByUserId` when nothing
//!   pushes (interval, `Retry-After`, back-off, hidden page), sans-IO; and the team's source
//!   ([`poll::TeamSource`]).
//! - [`batches`]: ids in groups of at most [`MAX_IDS_PER_REQUEST`] (650).
//!
//! No clock and no I/O here: time comes in as milliseconds since the Unix epoch (`u64`).

pub mod choice;
pub mod mapping;
pub mod poll;
pub mod subscriptions;
pub mod sync;

pub use choice::Choice;
pub use mapping::{AgentTarget, PresenceMapping, SEED_003_TABLE, SeedCategory, TeamsTarget};
pub use poll::{PollScheduler, TeamSource, poll_seconds_from_value, team_source_from_value};
pub use sync::{AgentSource, Command, HeldBack, HoldReason, PresenceSync, SyncConfig};

/// Most user ids Graph accepts in one `POST /communications/getPresencesByUserId` request and
/// in one presence subscription (Graph docs; seed `003_…` "only 650 users can be subscribed").
pub const MAX_IDS_PER_REQUEST: usize = 650;

/// Splits ids into batches of at most [`MAX_IDS_PER_REQUEST`], in order (the last batch may be
/// shorter; no batch is empty). 700 ids → 650 + 50.
pub fn batches<T>(ids: &[T]) -> std::slice::Chunks<'_, T> {
    ids.chunks(MAX_IDS_PER_REQUEST)
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The Graph wire name (`"InACall"`): the variant's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)*
                }
            }

            /// Reads a wire name, ignoring ASCII case (`"inacall"` is `InACall`); `None` for an
            /// unknown name.
            pub fn from_wire(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(name.trim()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// Graph `presence.availability` (the base presence), e.g. `"Busy"`.
    Availability {
        /// `Available`.
        Available,
        /// `AvailableIdle`: available, but the device is idle; treated as `Available`.
        AvailableIdle,
        /// `Away`.
        Away,
        /// `BeRightBack`.
        BeRightBack,
        /// `Busy`.
        Busy,
        /// `BusyIdle`: busy, device idle; treated as `Busy`.
        BusyIdle,
        /// `DoNotDisturb`.
        DoNotDisturb,
        /// `Offline`.
        Offline,
        /// `PresenceUnknown`.
        PresenceUnknown,
    }
}

wire_enum! {
    /// Graph `presence.activity` (what the user is doing), e.g. `"InACall"`. Unknown activity
    /// names read as [`Activity::PresenceUnknown`] in [`Presence::from_wire`].
    Activity {
        /// `Available`.
        Available,
        /// `Away`.
        Away,
        /// `BeRightBack`.
        BeRightBack,
        /// `Busy`.
        Busy,
        /// `DoNotDisturb`.
        DoNotDisturb,
        /// `InACall`: on a call (what telephony publishes through `setPresence`).
        InACall,
        /// `InAConferenceCall`.
        InAConferenceCall,
        /// `Inactive`.
        Inactive,
        /// `InAMeeting` (calendar; cannot be set through `setPresence`).
        InAMeeting,
        /// `Offline`.
        Offline,
        /// `OffWork` ("appear offline" as preferred presence).
        OffWork,
        /// `OutOfOffice` (mailbox; cannot be set through `setPresence`).
        OutOfOffice,
        /// `PresenceUnknown`.
        PresenceUnknown,
        /// `Presenting`.
        Presenting,
        /// `UrgentInterruptionsOnly`.
        UrgentInterruptionsOnly,
    }
}

impl Availability {
    /// The base value: `AvailableIdle` → `Available`, `BusyIdle` → `Busy`, others unchanged
    /// (competitors.md §6.4 step 3: idle states count as their base state).
    pub fn base(self) -> Self {
        match self {
            Availability::AvailableIdle => Availability::Available,
            Availability::BusyIdle => Availability::Busy,
            other => other,
        }
    }
}

/// A Graph presence pair, as `GET /me/presence` answers it (`{"availability","activity"}`) and
/// `setPresence` / `setUserPreferredPresence` take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Presence {
    /// `availability`.
    pub availability: Availability,
    /// `activity`.
    pub activity: Activity,
}

impl Presence {
    /// A pair.
    pub const fn new(availability: Availability, activity: Activity) -> Self {
        Self {
            availability,
            activity,
        }
    }

    /// `Busy` / `InACall`: what a call publishes (Graph setPresence's telephony combination).
    pub const IN_A_CALL: Presence = Presence::new(Availability::Busy, Activity::InACall);

    /// Reads `{"availability": "...", "activity": "..."}` (other fields, e.g. `id`, ignored).
    /// An unknown activity reads as `PresenceUnknown`; a missing or unknown availability is
    /// `None`.
    pub fn from_wire(value: &serde_json::Value) -> Option<Self> {
        let availability = Availability::from_wire(value.get("availability")?.as_str()?)?;
        let activity = value
            .get("activity")
            .and_then(|a| a.as_str())
            .and_then(Activity::from_wire)
            .unwrap_or(Activity::PresenceUnknown);
        Some(Self::new(availability, activity))
    }

    /// `{"availability": "...", "activity": "..."}`.
    pub fn to_wire(self) -> serde_json::Value {
        serde_json::json!({
            "availability": self.availability.as_str(),
            "activity": self.activity.as_str(),
        })
    }

    /// The same pair with idle availabilities read as their base ([`Availability::base`]).
    pub fn normalized(self) -> Self {
        Self::new(self.availability.base(), self.activity)
    }
}

/// Reads one presence as Graph and the hub send it, `{"id", "availability", "activity"}`, into
/// the user's id and the pair; `None` without an id or a known availability.
pub fn read_presence(value: &serde_json::Value) -> Option<(String, Presence)> {
    Some((
        value.get("id")?.as_str()?.to_owned(),
        Presence::from_wire(value)?,
    ))
}

/// Reads an ISO-8601 duration as Graph's `expirationDuration` uses it (`PT5M`, `PT1H30M`,
/// `P1D`, `PT45S`; whole numbers; `W`, `Y` and month `M` are not accepted) into milliseconds.
/// `None` for anything else, for an empty duration (`PT`) and on overflow.
pub fn parse_iso_duration(text: &str) -> Option<u64> {
    let rest = text.trim().strip_prefix(['P', 'p'])?;
    let (date, time) = match rest.find(['T', 't']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut total: u64 = 0;
    let mut parts = 0;
    let mut add = |part: &str, units: &[(char, u64)]| -> Option<()> {
        let mut number = String::new();
        let mut unit_index = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let c = c.to_ascii_uppercase();
            let pos = units[unit_index..].iter().position(|(u, _)| *u == c)?;
            let ms = units[unit_index + pos].1;
            if number.is_empty() {
                return None;
            }
            let n: u64 = number.parse().ok()?;
            total = total.checked_add(n.checked_mul(ms)?)?;
            number.clear();
            unit_index += pos + 1;
            parts += 1;
        }
        number.is_empty().then_some(())
    };
    add(date, &[('D', 86_400_000)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        add(time, &[('H', 3_600_000), ('M', 60_000), ('S', 1_000)])?;
    }
    (parts > 0).then_some(total)
}

/// Formats milliseconds as an ISO-8601 duration in whole seconds, largest units first:
/// 300 000 → `PT5M`, 5 400 000 → `PT1H30M`, 86 400 000 → `P1D`, 0 → `PT0S`.
pub fn format_iso_duration(ms: u64) -> String {
    let mut secs = ms / 1000;
    let days = secs / 86_400;
    secs %= 86_400;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if h + m + s > 0 || days == 0 {
        out.push('T');
        for (n, u) in [(h, 'H'), (m, 'M'), (s, 'S')] {
            if n > 0 {
                out.push_str(&format!("{n}{u}"));
            }
        }
        if h + m + s == 0 {
            out.push_str("0S");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presence_reads_with_its_id() {
        let v = serde_json::json!({"id": "u1", "availability": "Busy", "activity": "InACall"});
        assert_eq!(
            read_presence(&v),
            Some(("u1".to_owned(), Presence::IN_A_CALL))
        );
        assert_eq!(
            read_presence(&serde_json::json!({"availability": "Busy"})),
            None
        );
        assert_eq!(
            read_presence(&serde_json::json!({"id": "u1", "availability": "Lunch"})),
            None
        );
        assert_eq!(read_presence(&serde_json::json!("u1")), None);
    }

    #[test]
    fn wire_names_round_trip() {
        for a in Availability::ALL {
            assert_eq!(Availability::from_wire(a.as_str()), Some(*a));
        }
        for a in Activity::ALL {
            assert_eq!(Activity::from_wire(a.as_str()), Some(*a));
        }
        assert_eq!(Activity::ALL.len(), 15);
        assert_eq!(Availability::ALL.len(), 9);
        assert_eq!(Activity::from_wire("inacall"), Some(Activity::InACall));
        assert_eq!(Activity::from_wire("Lunch"), None);
        assert_eq!(Availability::BusyIdle.base(), Availability::Busy);
    }

    #[test]
    fn presence_from_wire() {
        let p = Presence::from_wire(&serde_json::json!({
            "id": "alice", "availability": "Busy", "activity": "InACall"
        }));
        assert_eq!(p, Some(Presence::IN_A_CALL));
        let p = Presence::from_wire(
            &serde_json::json!({"availability": "Away", "activity": "Napping"}),
        );
        assert_eq!(
            p,
            Some(Presence::new(Availability::Away, Activity::PresenceUnknown))
        );
        assert_eq!(
            Presence::from_wire(&serde_json::json!({"activity": "Away"})),
            None
        );
        assert_eq!(
            Presence::IN_A_CALL.to_wire(),
            serde_json::json!({"availability": "Busy", "activity": "InACall"})
        );
    }

    #[test]
    fn iso_durations() {
        assert_eq!(parse_iso_duration("PT5M"), Some(300_000));
        assert_eq!(parse_iso_duration("PT1H30M"), Some(5_400_000));
        assert_eq!(parse_iso_duration("P1D"), Some(86_400_000));
        assert_eq!(parse_iso_duration("P1DT2S"), Some(86_402_000));
        assert_eq!(parse_iso_duration("pt45s"), Some(45_000));
        for bad in [
            "", "P", "PT", "5M", "PT5", "PTM", "PT5M1H", "P1H", "PT1.5H", "P1W", "PT5X",
        ] {
            assert_eq!(parse_iso_duration(bad), None, "{bad}");
        }
        assert_eq!(format_iso_duration(300_000), "PT5M");
        assert_eq!(format_iso_duration(5_400_000), "PT1H30M");
        assert_eq!(format_iso_duration(86_400_000), "P1D");
        assert_eq!(format_iso_duration(0), "PT0S");
        for ms in [1_000, 61_000, 3_601_000, 90_061_000] {
            assert_eq!(parse_iso_duration(&format_iso_duration(ms)), Some(ms));
        }
    }

    #[test]
    fn batches_of_650() {
        let ids: Vec<u32> = (0..700).collect();
        let sizes: Vec<usize> = batches(&ids).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![650, 50]);
        assert_eq!(batches::<u32>(&[]).count(), 0);
        assert_eq!(batches(&ids[..650]).count(), 1);
    }
}
