//! Every string the widget shows, in one catalogue per language (DESIGN.md §4: nothing visible
//! is written inline in components). English is the only language so far; a language is a
//! second `Strings` value chosen by [`strings`].

/// The catalogue. Function fields take the values they format.
pub struct Strings {
    pub app_name: &'static str,
    pub connected: &'static str,
    pub connecting: &'static str,
    pub reconnecting: &'static str,
    pub disconnected: &'static str,
    pub reconnect: &'static str,
    pub loading: &'static str,
    pub config_failed: &'static str,
    pub signed_in_as: &'static str,
    pub sign_in: &'static str,
    pub sign_in_title: &'static str,
    pub sign_in_hint: &'static str,
    pub user_name: &'static str,
    pub sign_out: &'static str,
    pub incoming_call: &'static str,
    pub unknown_caller: &'static str,
    pub queue: &'static str,
    pub ringing: &'static str,
    pub seconds_left: fn(u32) -> String,
    pub accept: &'static str,
    pub reject: &'static str,
    pub on_call: &'static str,
    pub hang_up: &'static str,
    pub ready: &'static str,
    pub ready_hint: &'static str,
    pub waiting_for_hub: &'static str,
    pub last_accepted: &'static str,
    pub last_rejected: &'static str,
    pub last_missed: &'static str,
    pub last_abandoned: &'static str,
    pub last_elsewhere: &'static str,
    pub last_ended: &'static str,
    pub hub_error: &'static str,
    pub dismiss: &'static str,
    pub presence: &'static str,
    pub presence_states: &'static str,
    pub presence_teams: &'static str,
    pub teams_now: &'static str,
    pub source_here: &'static str,
    pub source_teams: &'static str,
    pub source_automatic: &'static str,
    pub team: &'static str,
    pub search_team: &'static str,
    pub team_loading: &'static str,
    pub team_failed: &'static str,
    pub team_empty: &'static str,
    pub team_shown: fn(usize, usize) -> String,
    pub favourite: fn(&str) -> String,
    pub call_person: fn(&str) -> String,
    pub not_connected: &'static str,
    pub make_call_missing: &'static str,
    pub calling: fn(&str) -> String,
    pub unknown_presence: &'static str,
    pub ringtone_locked: &'static str,
}

/// English.
pub const EN: Strings = Strings {
    app_name: "Switchboard",
    connected: "Connected",
    connecting: "Connecting",
    reconnecting: "Reconnecting",
    disconnected: "Disconnected",
    reconnect: "Reconnect",
    loading: "Starting…",
    config_failed: "Switchboard could not start",
    signed_in_as: "Signed in as",
    sign_in: "Sign in",
    sign_in_title: "Sign in to Switchboard",
    sign_in_hint: "Development sign-in: choose the agent to act as.",
    user_name: "User name",
    sign_out: "Sign out",
    incoming_call: "Incoming call",
    unknown_caller: "Unknown caller",
    queue: "Queue",
    ringing: "Ringing",
    seconds_left: |s| format!("{s} s left to answer"),
    accept: "Accept",
    reject: "Reject",
    on_call: "On call",
    hang_up: "Hang up",
    ready: "Ready for calls",
    ready_hint: "Incoming calls appear here.",
    waiting_for_hub: "Calls will reach you once the hub is connected.",
    last_accepted: "Answered call from",
    last_rejected: "Rejected call from",
    last_missed: "Missed call from",
    last_abandoned: "Caller hung up:",
    last_elsewhere: "Answered elsewhere:",
    last_ended: "Call ended with",
    hub_error: "The hub reported a problem:",
    dismiss: "Dismiss",
    presence: "Presence",
    presence_states: "Contact centre",
    presence_teams: "Teams",
    teams_now: "Teams:",
    source_here: "set here",
    source_teams: "from Teams",
    source_automatic: "automatic",
    team: "Team",
    search_team: "Search team",
    team_loading: "Loading your team…",
    team_failed: "The team list could not be loaded:",
    team_empty: "No one matches your search.",
    team_shown: |shown, total| format!("Showing {shown} of {total}. Search to find others."),
    favourite: |name| format!("Favourite {name}"),
    call_person: |name| format!("Call {name}"),
    not_connected: "Not connected to the hub.",
    make_call_missing: "Calling a colleague needs the hub's makeCall method, which this hub does not offer yet.",
    calling: |name| format!("Calling {name}…"),
    unknown_presence: "Unknown",
    ringtone_locked: "Click anywhere in Switchboard to turn on the ringtone.",
};

/// Graph availability in words.
pub fn availability(a: switchboard_core::presence::Availability) -> &'static str {
    use switchboard_core::presence::Availability as A;
    match a {
        A::Available | A::AvailableIdle => "Available",
        A::Busy | A::BusyIdle => "Busy",
        A::DoNotDisturb => "Do not disturb",
        A::BeRightBack => "Be right back",
        A::Away => "Away",
        A::Offline => "Offline",
        A::PresenceUnknown => "Unknown",
    }
}

/// Graph activity in words, when it says more than the availability.
pub fn activity(a: switchboard_core::presence::Activity) -> Option<&'static str> {
    use switchboard_core::presence::Activity as A;
    Some(match a {
        A::InACall => "In a call",
        A::InAConferenceCall => "In a conference call",
        A::InAMeeting => "In a meeting",
        A::Presenting => "Presenting",
        A::OutOfOffice => "Out of office",
        A::OffWork => "Off work",
        A::UrgentInterruptionsOnly => "Urgent interruptions only",
        A::Inactive => "Inactive",
        _ => return None,
    })
}

/// A presence pair in words: `Busy · In a meeting`.
pub fn presence_words(p: switchboard_core::presence::Presence) -> String {
    match activity(p.activity) {
        Some(act) => format!("{} · {act}", availability(p.availability)),
        None => availability(p.availability).to_owned(),
    }
}

/// A contact-centre agent state in words (configured names pass through).
pub fn agent_state(state: &str) -> &str {
    match state {
        "NotReady" => "Not ready",
        "WrapUp" => "Wrap-up",
        "OnCall" => "On call",
        other => other,
    }
}

/// The catalogue for the page's language.
pub fn strings() -> &'static Strings {
    &EN
}
