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
};

/// The catalogue for the page's language.
pub fn strings() -> &'static Strings {
    &EN
}
