//! When to poll Graph presence (`POST /communications/getPresencesByUserId`) when nothing pushes
//! it: the hub answered `subscribePresence` with `"push": "none"` (docs/hub-contract.md). Sans-IO:
//! time comes in as milliseconds since the Unix epoch.
//!
//! - The interval comes from `presence.pollSeconds` ([`poll_seconds_from_value`]; default 30,
//!   5 to 3600).
//! - A 429 or 503 answer names its own wait in `Retry-After` (Microsoft Graph throttling
//!   guidance; RFC 9110 §10.2.3: delay-seconds or an HTTP-date): the next poll waits exactly that
//!   ([`parse_retry_after`]; capped at [`MAX_RETRY_AFTER_MS`]).
//! - Other failures back off exponentially: the interval doubled per failure in a row, at most
//!   [`MAX_BACKOFF_MS`] (5 min) unless the interval itself is longer.
//! - While the page is hidden nothing is due; on becoming visible a poll whose time passed is due
//!   at once.
//!
//! Use: arm one timer at [`PollScheduler::next_deadline`]; when it fires call
//! [`PollScheduler::start`] and, if it says yes, send the requests; report the outcome with
//! [`PollScheduler::succeeded`], [`PollScheduler::throttled`] or [`PollScheduler::failed`].

use serde_json::Value;

use crate::config::ConfigError;

/// `presence.pollSeconds` when not set.
pub const DEFAULT_POLL_SECONDS: u64 = 30;
/// Shortest `presence.pollSeconds` accepted (Graph's throttling guidance asks clients not to
/// poll presence tightly).
pub const MIN_POLL_SECONDS: u64 = 5;
/// Longest `presence.pollSeconds` accepted (one hour).
pub const MAX_POLL_SECONDS: u64 = 3600;
/// Longest back-off after failures in a row (5 min), unless the interval is longer.
pub const MAX_BACKOFF_MS: u64 = 300_000;
/// Longest `Retry-After` honoured (1 h); a longer one waits this long.
pub const MAX_RETRY_AFTER_MS: u64 = 3_600_000;

/// Reads `presence.pollSeconds` from the `presence` section (`None`: the section is absent):
/// a whole number of seconds from [`MIN_POLL_SECONDS`] to [`MAX_POLL_SECONDS`], default
/// [`DEFAULT_POLL_SECONDS`]. The error names the field and the range.
pub fn poll_seconds_from_value(presence: Option<&Value>) -> Result<u64, ConfigError> {
    match presence.and_then(|p| p.get("pollSeconds")) {
        None | Some(Value::Null) => Ok(DEFAULT_POLL_SECONDS),
        Some(v) => v
            .as_u64()
            .filter(|s| (MIN_POLL_SECONDS..=MAX_POLL_SECONDS).contains(s))
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "presence.pollSeconds must be a whole number of seconds from {MIN_POLL_SECONDS} to {MAX_POLL_SECONDS} (got {v})"
                ))
            }),
    }
}

/// Most entries in `presence.team` (the hub lets one user watch 10,000 ids).
pub const MAX_TEAM: usize = 10_000;

/// Where the widget's team list comes from (`presence.teamGroupId` or `presence.team`;
/// docs/presence.md "Team").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamSource {
    /// Neither is set: the directory as before (`GET /users`, the whole tenant).
    Directory,
    /// `presence.teamGroupId`: the group's members (`GET /groups/{id}/members`, paged).
    Group(String),
    /// `presence.team`: these user ids or UPNs (each read with `GET /users/{id|UPN}`).
    Users(Vec<String>),
}

/// A group id, user id or UPN we put in a Graph URL path: 1–256 characters of
/// `A-Z a-z 0-9 . _ - @`.
fn is_path_safe(v: &str) -> bool {
    (1..=256).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

/// Reads the team's source from the `presence` section. Errors: both `teamGroupId` and
/// `team` set, a group id or entry that is not 1–256 of `A-Z a-z 0-9 . _ - @`, an empty
/// list, more than [`MAX_TEAM`] entries.
pub fn team_source_from_value(presence: Option<&Value>) -> Result<TeamSource, ConfigError> {
    let get = |k: &str| presence.and_then(|p| p.get(k)).filter(|v| !v.is_null());
    let bad = |t: &str| Err(ConfigError::Invalid(t.into()));
    match (get("teamGroupId"), get("team")) {
        (Some(_), Some(_)) => bad("presence.teamGroupId and presence.team are both set; use one"),
        (Some(g), None) => match g.as_str().map(str::trim) {
            Some(id) if is_path_safe(id) => Ok(TeamSource::Group(id.to_owned())),
            _ => bad("presence.teamGroupId must be a group id (1 to 256 of A-Z a-z 0-9 . _ - @)"),
        },
        (None, Some(list)) => {
            let ids = list
                .as_array()
                .filter(|a| (1..=MAX_TEAM).contains(&a.len()))
                .and_then(|a| {
                    a.iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::trim)
                                .filter(|v| is_path_safe(v))
                                .map(str::to_owned)
                        })
                        .collect::<Option<Vec<_>>>()
                });
            match ids {
                Some(ids) => Ok(TeamSource::Users(ids)),
                None => {
                    bad("presence.team must list 1 to 10000 user ids or UPNs (A-Z a-z 0-9 . _ - @)")
                }
            }
        }
        (None, None) => Ok(TeamSource::Directory),
    }
}

/// The wait a `Retry-After` header value asks for, in ms from `now_ms`: delay-seconds (`"7"`)
/// or an IMF-fixdate HTTP-date (`"Sun, 06 Dec 2026 02:10:00 GMT"`; RFC 9110 §5.6.7; a date in
/// the past is 0). Capped at [`MAX_RETRY_AFTER_MS`]. `None` for anything else (the obsolete
/// RFC 850 and asctime date forms included).
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = v.parse().unwrap_or(u64::MAX);
        return Some(secs.saturating_mul(1000).min(MAX_RETRY_AFTER_MS));
    }
    let at = parse_imf_fixdate(v)?;
    Some(at.saturating_sub(now_ms).min(MAX_RETRY_AFTER_MS))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → ms since the Unix epoch.
fn parse_imf_fixdate(v: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_, rest) = v.split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let m = MONTHS.iter().position(|n| n == month)? + 1;
    if day.len() != 2 || year.len() != 4 || time.len() != 8 {
        return None;
    }
    super::subscriptions::parse_utc(&format!("{year}-{m:02}-{day}T{time}Z"))
}

/// The poll timer's state (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollScheduler {
    interval_ms: u64,
    next_at: u64,
    hidden: bool,
    in_flight: bool,
    failures: u32,
}

impl PollScheduler {
    /// A scheduler polling every `interval_seconds` (already validated by
    /// [`poll_seconds_from_value`]); the first poll is due at `now_ms`.
    pub fn new(interval_seconds: u64, now_ms: u64) -> Self {
        Self {
            interval_ms: interval_seconds.max(1) * 1000,
            next_at: now_ms,
            hidden: false,
            in_flight: false,
            failures: 0,
        }
    }

    /// The interval in ms.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// When the next poll is due (ms since the epoch); `None` while the page is hidden or a
    /// poll is in flight (nothing to arm).
    pub fn next_deadline(&self) -> Option<u64> {
        (!self.hidden && !self.in_flight).then_some(self.next_at)
    }

    /// Whether a poll should start now; if so it is in flight until an outcome is reported.
    pub fn start(&mut self, now_ms: u64) -> bool {
        if self.next_deadline().is_some_and(|at| at <= now_ms) {
            self.in_flight = true;
            true
        } else {
            false
        }
    }

    /// The poll answered: the next one after the interval.
    pub fn succeeded(&mut self, now_ms: u64) {
        self.in_flight = false;
        self.failures = 0;
        self.next_at = now_ms.saturating_add(self.interval_ms);
    }

    /// The poll answered 429/503 with `retry_after_ms` ([`parse_retry_after`]): the next poll
    /// waits exactly that; without a usable header it counts as a failure.
    pub fn throttled(&mut self, now_ms: u64, retry_after_ms: Option<u64>) {
        match retry_after_ms {
            Some(wait) => {
                self.in_flight = false;
                self.failures = self.failures.saturating_add(1);
                self.next_at = now_ms.saturating_add(wait.min(MAX_RETRY_AFTER_MS));
            }
            None => self.failed(now_ms),
        }
    }

    /// The poll failed otherwise (network, 5xx, 401 …): back off, the interval times 2^n for
    /// the n-th failure in a row, at most [`MAX_BACKOFF_MS`] (or the interval, if longer).
    pub fn failed(&mut self, now_ms: u64) {
        self.in_flight = false;
        self.failures = self.failures.saturating_add(1);
        let factor = 1u64 << self.failures.min(20);
        let wait = self
            .interval_ms
            .saturating_mul(factor)
            .min(MAX_BACKOFF_MS.max(self.interval_ms));
        self.next_at = now_ms.saturating_add(wait);
    }

    /// Failures (and throttles) in a row since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The page became hidden (`true`) or visible (`false`). Hidden: nothing is due. Visible
    /// again: a poll whose time passed meanwhile is due at once (the due time is kept).
    pub fn set_hidden(&mut self, hidden: bool) {
        self.hidden = hidden;
    }

    /// Whether the page is hidden.
    pub fn is_hidden(&self) -> bool {
        self.hidden
    }

    /// Poll as soon as possible (the team changed): due at `now_ms` unless a `Retry-After` or
    /// back-off asks for later.
    pub fn poll_soon(&mut self, now_ms: u64) {
        if self.failures == 0 {
            self.next_at = self.next_at.min(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: u64 = 1_796_000_000_000;

    /// Drives the scheduler with a fake clock; returns the times polls started.
    fn run(
        s: &mut PollScheduler,
        until: u64,
        mut outcome: impl FnMut(&mut PollScheduler, u64),
    ) -> Vec<u64> {
        let mut starts = Vec::new();
        let mut now = T0;
        for _ in 0..10_000 {
            let Some(at) = s.next_deadline() else { break };
            now = now.max(at);
            if now > until {
                break;
            }
            assert!(s.start(now));
            starts.push(now - T0);
            outcome(s, now);
        }
        starts
    }

    #[test]
    fn polls_at_the_configured_interval() {
        let mut s = PollScheduler::new(30, T0);
        let starts = run(&mut s, T0 + 100_000, |s, now| s.succeeded(now));
        assert_eq!(starts, [0, 30_000, 60_000, 90_000]);
    }

    #[test]
    fn nothing_starts_before_it_is_due_or_while_in_flight() {
        let mut s = PollScheduler::new(30, T0);
        assert!(s.start(T0));
        assert_eq!(s.next_deadline(), None);
        assert!(!s.start(T0 + 60_000));
        s.succeeded(T0 + 1_000);
        assert!(!s.start(T0 + 30_999));
        assert!(s.start(T0 + 31_000));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_five_minutes() {
        let mut s = PollScheduler::new(30, T0);
        let starts = run(&mut s, T0 + 1_500_000, |s, now| s.failed(now));
        let gaps: Vec<u64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps[..5], [60_000, 120_000, 240_000, 300_000, 300_000]);
        // One success resets the cadence.
        s.start(T0 + 2_000_000);
        s.succeeded(T0 + 2_000_000);
        assert_eq!(s.next_deadline(), Some(T0 + 2_030_000));
        assert_eq!(s.failures(), 0);
    }

    #[test]
    fn a_long_interval_is_not_shortened_by_the_backoff_cap() {
        let mut s = PollScheduler::new(3600, T0);
        assert!(s.start(T0));
        s.failed(T0);
        assert_eq!(s.next_deadline(), Some(T0 + 3_600_000));
    }

    #[test]
    fn retry_after_is_honoured_in_seconds_and_as_an_http_date() {
        let mut s = PollScheduler::new(30, T0);
        assert!(s.start(T0));
        s.throttled(T0, parse_retry_after("7", T0));
        assert_eq!(s.next_deadline(), Some(T0 + 7_000));
        assert!(s.start(T0 + 7_000));
        // 1_796_000_000 s is Mon, 30 Nov 2026 00:53:20 GMT.
        let date = "Mon, 30 Nov 2026 00:55:00 GMT";
        assert_eq!(parse_retry_after(date, T0), Some(100_000));
        s.throttled(T0 + 7_000, parse_retry_after(date, T0 + 7_000));
        assert_eq!(s.next_deadline(), Some(T0 + 100_000));
        // Without a usable header a throttle counts as a failure (back-off).
        assert!(s.start(T0 + 100_000));
        s.throttled(T0 + 100_000, None);
        assert_eq!(s.next_deadline(), Some(T0 + 100_000 + 240_000));
    }

    #[test]
    fn retry_after_values_are_read_strictly() {
        assert_eq!(parse_retry_after(" 120 ", T0), Some(120_000));
        assert_eq!(
            parse_retry_after("999999999999999999999", T0),
            Some(MAX_RETRY_AFTER_MS)
        );
        // A date in the past: no wait.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", T0),
            Some(0)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
        ] {
            assert_eq!(parse_retry_after(bad, T0), None, "{bad}");
        }
    }

    #[test]
    fn a_hidden_page_polls_nothing_and_catches_up_when_visible() {
        let mut s = PollScheduler::new(30, T0);
        assert!(s.start(T0));
        s.succeeded(T0);
        s.set_hidden(true);
        assert_eq!(s.next_deadline(), None);
        assert!(!s.start(T0 + 90_000));
        s.set_hidden(false);
        assert!(s.start(T0 + 95_000), "overdue: at once");
        s.succeeded(T0 + 95_000);
        assert_eq!(s.next_deadline(), Some(T0 + 125_000));
    }

    #[test]
    fn poll_soon_respects_a_backoff() {
        let mut s = PollScheduler::new(30, T0);
        assert!(s.start(T0));
        s.succeeded(T0);
        s.poll_soon(T0 + 5_000);
        assert_eq!(s.next_deadline(), Some(T0 + 5_000));
        assert!(s.start(T0 + 5_000));
        s.failed(T0 + 5_000);
        s.poll_soon(T0 + 6_000);
        assert_eq!(s.next_deadline(), Some(T0 + 65_000));
    }

    #[test]
    fn the_team_comes_from_a_group_or_a_list_but_not_both() {
        assert_eq!(team_source_from_value(None), Ok(TeamSource::Directory));
        assert_eq!(
            team_source_from_value(Some(&json!({"teamGroupId": "switchboard-agents"}))),
            Ok(TeamSource::Group("switchboard-agents".into()))
        );
        assert_eq!(
            team_source_from_value(Some(&json!({"team": ["bob", "ada@contoso.com"]}))),
            Ok(TeamSource::Users(vec![
                "bob".into(),
                "ada@contoso.com".into()
            ]))
        );
        let both = team_source_from_value(Some(&json!({"teamGroupId": "g", "team": ["bob"]})));
        assert!(both.unwrap_err().to_string().contains("both set"));
        for bad in [
            json!({"teamGroupId": "a/b"}),
            json!({"teamGroupId": ""}),
            json!({"team": []}),
            json!({"team": ["../x"]}),
            json!({"team": "bob"}),
        ] {
            assert!(team_source_from_value(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn poll_seconds_are_validated() {
        assert_eq!(poll_seconds_from_value(None), Ok(30));
        assert_eq!(poll_seconds_from_value(Some(&json!({}))), Ok(30));
        assert_eq!(
            poll_seconds_from_value(Some(&json!({"pollSeconds": 5}))),
            Ok(5)
        );
        assert_eq!(
            poll_seconds_from_value(Some(&json!({"pollSeconds": 3600}))),
            Ok(3600)
        );
        for bad in [
            json!(4),
            json!(3601),
            json!(0),
            json!(-5),
            json!(7.5),
            json!("30"),
        ] {
            let e = poll_seconds_from_value(Some(&json!({ "pollSeconds": bad }))).unwrap_err();
            assert!(
                e.to_string().contains(
                    "presence.pollSeconds must be a whole number of seconds from 5 to 3600"
                ),
                "{e}"
            );
        }
    }
}
