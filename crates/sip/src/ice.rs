//! When a call's media needs an ICE restart, and the re-INVITE that performs it.
//!
//! A browser call whose network path breaks (Wi-Fi to cable, a VPN coming up, the old
//! interface dropped) does not heal by itself: the ICE agent only checks the candidate pairs it
//! already has. The cure is an ICE restart (RFC 8445 §2.4): a new offer with new ICE
//! credentials (`a=ice-ufrag` / `a=ice-pwd`, both changed: RFC 8839 §4.4.1.1.1), which gathers
//! candidates on the current interfaces, sent in a re-INVITE (RFC 3261 §14).
//!
//! [`IceWatch`] decides when. The adapter feeds it the peer connection's
//! `iceConnectionState` (W3C WebRTC §4.3.3, [`IceState`]) and the browser's network-change
//! signal (`online`), asks [`IceWatch::poll_restart`] at the deadline from
//! [`IceWatch::poll_timeout`], creates an offer with `iceRestart: true` and hands it to
//! [`IceWatch::send_restart`], which checks that the credentials really changed and sends the
//! re-INVITE through the [`UserAgent`]. The rules:
//!
//! - `failed` restarts at once; `disconnected` only after a grace period (default 3 s), because
//!   consent checks (RFC 7675) often bring a briefly interrupted path back by themselves;
//! - a network change restarts at once while the call is connected (the old pair may still
//!   look alive for seconds while its interface is already gone);
//! - nothing before the call first connected (the initial checks are still running), nothing
//!   after `closed`, and one restart at a time: a restart that has not brought `connected` back
//!   after the retry interval (10 s, doubled per attempt up to 80 s), or whose re-INVITE was
//!   refused (491 glare, 488), is tried again.

use std::time::Duration;

use crate::ua::{CallHandle, UaError, UserAgent};

/// `RTCPeerConnection.iceConnectionState` (W3C WebRTC 1.0 §4.3.3, `RTCIceConnectionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceState {
    /// `new`: gathering or waiting for remote candidates.
    New,
    /// `checking`: connectivity checks under way.
    Checking,
    /// `connected`: a usable pair was found.
    Connected,
    /// `completed`: checks finished with a usable pair.
    Completed,
    /// `disconnected`: consent checks failing on the selected pair (may recover).
    Disconnected,
    /// `failed`: no usable pair left; only an ICE restart helps.
    Failed,
    /// `closed`: the peer connection was closed.
    Closed,
}

impl IceState {
    /// Parses the W3C enumeration value (`"connected"`, …); `None` for anything else.
    pub fn parse(value: &str) -> Option<IceState> {
        Some(match value {
            "new" => IceState::New,
            "checking" => IceState::Checking,
            "connected" => IceState::Connected,
            "completed" => IceState::Completed,
            "disconnected" => IceState::Disconnected,
            "failed" => IceState::Failed,
            "closed" => IceState::Closed,
            _ => return None,
        })
    }

    fn is_up(self) -> bool {
        matches!(self, IceState::Connected | IceState::Completed)
    }
}

/// Why a restart is due (for the diagnostics line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The ICE state stayed `disconnected` for the grace period.
    Disconnected,
    /// The ICE state went `failed`.
    Failed,
    /// The browser reported a network change while the call was up.
    NetworkChange,
    /// The previous restart did not bring the connection back (or its re-INVITE was refused).
    Retry,
}

/// Why [`IceWatch::send_restart`] sent nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestartError {
    /// The offer has no `a=ice-ufrag`/`a=ice-pwd`, or they break RFC 8839 §5.4 (ufrag 4–256,
    /// pwd 22–256 ice-chars).
    #[error("the offer carries no valid ICE credentials")]
    NoCredentials,
    /// ufrag or pwd equals the previous description's: that is no restart (RFC 8839
    /// §4.4.1.1.1 requires both to change).
    #[error("the offer keeps the old ICE credentials")]
    SameCredentials,
    /// The UA refused the re-INVITE (no such call, one already under way, …).
    #[error("{0}")]
    Ua(#[from] UaError),
}

/// `a=ice-ufrag` and `a=ice-pwd` of `sdp` (RFC 8839 §5.4): the first media section's, else the
/// session level's. `None` when either is missing or not made of 4–256 (ufrag) / 22–256 (pwd)
/// ice-chars (`ALPHA / DIGIT / "+" / "/"`).
pub fn credentials(sdp: &str) -> Option<(String, String)> {
    let (mut session, mut media) = ((None, None), (None, None));
    let mut in_media = 0;
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if line.starts_with("m=") {
            in_media += 1;
            if in_media > 1 {
                break;
            }
            continue;
        }
        let slot = if in_media == 1 {
            &mut media
        } else {
            &mut session
        };
        if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
            slot.0 = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
            slot.1 = Some(v.trim().to_owned());
        }
    }
    let ufrag = media.0.or(session.0)?;
    let pwd = media.1.or(session.1)?;
    let ice_chars = |s: &str, min: usize| {
        (min..=256).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    (ice_chars(&ufrag, 4) && ice_chars(&pwd, 22)).then_some((ufrag, pwd))
}

/// The ICE restart decision for one call (see the module docs). Times are the adapter's clock.
#[derive(Debug, Clone)]
pub struct IceWatch {
    grace: Duration,
    retry: Duration,
    state: IceState,
    /// Connected at least once.
    established: bool,
    /// The next restart and why.
    due: Option<(Duration, Trigger)>,
    /// A restart in flight since.
    restarting: Option<Duration>,
    /// Restarts since the connection was last up.
    attempts: u32,
    /// The local ICE credentials of the current description.
    local: Option<(String, String)>,
}

impl Default for IceWatch {
    fn default() -> Self {
        IceWatch::new(Duration::from_secs(3), Duration::from_secs(10))
    }
}

impl IceWatch {
    /// A watch that restarts after `grace` of `disconnected` and tries again after `retry`
    /// (doubled per attempt, at most 8×) when a restart did not help.
    pub fn new(grace: Duration, retry: Duration) -> IceWatch {
        IceWatch {
            grace,
            retry,
            state: IceState::New,
            established: false,
            due: None,
            restarting: None,
            attempts: 0,
            local: None,
        }
    }

    /// The last state fed in.
    pub fn state(&self) -> IceState {
        self.state
    }

    /// True while a restart's re-INVITE is out and the connection is not back yet.
    pub fn restarting(&self) -> bool {
        self.restarting.is_some()
    }

    /// Records the local description in use (initial offer or answer, and every renegotiation),
    /// so a restart offer can be checked against its ICE credentials.
    pub fn local_description(&mut self, sdp: &str) {
        if let Some(c) = credentials(sdp) {
            self.local = Some(c);
        }
    }

    /// The peer connection's `iceConnectionState` changed.
    pub fn on_state(&mut self, now: Duration, state: IceState) {
        self.state = state;
        match state {
            IceState::Connected | IceState::Completed => {
                self.established = true;
                self.due = None;
                self.restarting = None;
                self.attempts = 0;
            }
            IceState::Disconnected if self.established && self.due.is_none() => {
                self.due = Some((now + self.grace, Trigger::Disconnected));
            }
            IceState::Failed if self.established => {
                self.due = Some((now, Trigger::Failed));
            }
            IceState::Closed => {
                self.due = None;
                self.restarting = None;
            }
            _ => {}
        }
    }

    /// The browser reports a network change (`online`, a new interface): restart at once when
    /// the call has connected (after the restart in flight, if one is).
    pub fn on_network_change(&mut self, now: Duration) {
        if self.established && self.state != IceState::Closed {
            self.due = Some((now, Trigger::NetworkChange));
        }
    }

    /// The restart's re-INVITE was refused or could not be sent: try again after the retry
    /// interval.
    pub fn restart_failed(&mut self, now: Duration) {
        if self.restarting.take().is_some() && !self.state.is_up() {
            self.due = Some((now + self.backoff(), Trigger::Retry));
        }
    }

    fn backoff(&self) -> Duration {
        self.retry * 2u32.pow(self.attempts.saturating_sub(1).min(3))
    }

    /// When to call [`poll_restart`](Self::poll_restart) next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let retry = self.restarting.map(|at| at + self.backoff());
        match (self.due.map(|(at, _)| at), retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `Some(trigger)` when a restart should start now; the watch then counts it as in flight
    /// until the connection is back ([`on_state`](Self::on_state)) or it is given up
    /// ([`restart_failed`](Self::restart_failed), or the retry interval passes).
    pub fn poll_restart(&mut self, now: Duration) -> Option<Trigger> {
        if self.state == IceState::Closed {
            return None;
        }
        if let Some(at) = self.restarting {
            if now < at + self.backoff() {
                return None;
            }
            // The restart did not help in time.
            self.restarting = None;
            if !self.state.is_up() && self.due.is_none() {
                self.due = Some((now, Trigger::Retry));
            }
        }
        let (at, trigger) = self.due?;
        if now < at {
            return None;
        }
        self.due = None;
        self.restarting = Some(now);
        self.attempts += 1;
        Some(trigger)
    }

    /// Sends the restart: checks that `offer` (created with `iceRestart: true`) carries new ICE
    /// credentials — both ufrag and pwd differ from the current description's — then sends it
    /// as a re-INVITE on `call` ([`UserAgent::reinvite`]; the answer arrives as
    /// `RenegotiationAnswered`). On success the offer becomes the current description. On an
    /// error nothing is sent and the restart counts as failed (tried again later).
    pub fn send_restart(
        &mut self,
        ua: &mut UserAgent,
        now: Duration,
        call: CallHandle,
        offer: &str,
    ) -> Result<(), RestartError> {
        let result = self.check_and_send(ua, now, call, offer);
        if result.is_err() {
            self.restarting.get_or_insert(now);
            self.restart_failed(now);
        }
        result
    }

    fn check_and_send(
        &mut self,
        ua: &mut UserAgent,
        now: Duration,
        call: CallHandle,
        offer: &str,
    ) -> Result<(), RestartError> {
        let new = credentials(offer).ok_or(RestartError::NoCredentials)?;
        if let Some((ufrag, pwd)) = &self.local
            && (*ufrag == new.0 || *pwd == new.1)
        {
            return Err(RestartError::SameCredentials);
        }
        ua.reinvite(now, call, offer)?;
        self.local = Some(new);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn offer(ufrag: &str, pwd: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na=sendrecv\r\n"
        )
    }

    const PWD1: &str = "asd88fgpdd777uzjYhagZg0";
    const PWD2: &str = "Zx9+/kkQ1bb2cc3dd4ee5ff6";

    fn connected() -> IceWatch {
        let mut w = IceWatch::default();
        w.on_state(S(0), IceState::Checking);
        w.on_state(S(1), IceState::Connected);
        w
    }

    #[test]
    fn states_parse_as_the_w3c_enumeration() {
        assert_eq!(
            IceState::parse("disconnected"),
            Some(IceState::Disconnected)
        );
        assert_eq!(IceState::parse("completed"), Some(IceState::Completed));
        assert_eq!(IceState::parse("Connected"), None);
    }

    #[test]
    fn disconnected_restarts_only_after_the_grace_period() {
        let mut w = connected();
        w.on_state(S(10), IceState::Disconnected);
        assert_eq!(w.poll_timeout(), Some(S(13)));
        assert_eq!(w.poll_restart(S(12)), None);
        // A later `disconnected` does not push the deadline back.
        w.on_state(S(12), IceState::Disconnected);
        assert_eq!(w.poll_restart(S(13)), Some(Trigger::Disconnected));
        assert!(w.restarting());
        assert_eq!(w.poll_restart(S(13)), None, "one restart at a time");
    }

    #[test]
    fn a_path_that_recovers_by_itself_is_left_alone() {
        let mut w = connected();
        w.on_state(S(10), IceState::Disconnected);
        w.on_state(S(11), IceState::Connected);
        assert_eq!(w.poll_timeout(), None);
        assert_eq!(w.poll_restart(S(20)), None);
    }

    #[test]
    fn failed_and_network_change_restart_at_once() {
        let mut w = connected();
        w.on_state(S(5), IceState::Failed);
        assert_eq!(w.poll_restart(S(5)), Some(Trigger::Failed));
        w.on_state(S(6), IceState::Checking);
        w.on_state(S(7), IceState::Connected);
        assert!(!w.restarting());
        w.on_network_change(S(30));
        assert_eq!(w.poll_restart(S(30)), Some(Trigger::NetworkChange));
    }

    #[test]
    fn nothing_before_the_first_connection_or_after_close() {
        let mut w = IceWatch::default();
        w.on_state(S(0), IceState::Checking);
        w.on_state(S(1), IceState::Disconnected);
        w.on_state(S(2), IceState::Failed);
        w.on_network_change(S(3));
        assert_eq!(w.poll_timeout(), None);
        assert_eq!(w.poll_restart(S(60)), None);
        let mut w = connected();
        w.on_state(S(5), IceState::Disconnected);
        w.on_state(S(6), IceState::Closed);
        w.on_network_change(S(7));
        assert_eq!(w.poll_restart(S(60)), None);
    }

    #[test]
    fn an_unhelpful_or_refused_restart_is_retried_with_backoff() {
        let mut w = connected();
        w.on_state(S(10), IceState::Failed);
        assert_eq!(w.poll_restart(S(10)), Some(Trigger::Failed));
        // Still failed 10 s later: the first retry.
        assert_eq!(w.poll_timeout(), Some(S(20)));
        assert_eq!(w.poll_restart(S(19)), None);
        assert_eq!(w.poll_restart(S(20)), Some(Trigger::Retry));
        // Its re-INVITE is refused (491): the next one after 20 s (second attempt doubles).
        w.restart_failed(S(21));
        assert_eq!(w.poll_timeout(), Some(S(41)));
        assert_eq!(w.poll_restart(S(41)), Some(Trigger::Retry));
        // The connection comes back: attempts reset, nothing more due.
        w.on_state(S(42), IceState::Completed);
        assert_eq!(w.poll_timeout(), None);
        w.on_state(S(50), IceState::Failed);
        w.poll_restart(S(50));
        assert_eq!(w.poll_timeout(), Some(S(60)));
    }

    #[test]
    fn credentials_are_read_from_the_first_media_section_or_the_session() {
        assert_eq!(
            credentials(&offer("F7gI", PWD1)),
            Some(("F7gI".into(), PWD1.into()))
        );
        let session =
            format!("v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:{PWD2}\r\nm=audio 9 RTP/AVP 0\r\n");
        assert_eq!(credentials(&session), Some(("abcd".into(), PWD2.into())));
        assert_eq!(credentials(&offer("abc", PWD1)), None, "ufrag too short");
        assert_eq!(credentials(&offer("abcd", "short")), None, "pwd too short");
        assert_eq!(credentials(&offer("ab d", PWD1)), None, "not ice-chars");
        assert_eq!(credentials("v=0\r\nm=audio 9 RTP/AVP 0\r\n"), None);
    }

    #[test]
    fn the_restart_reinvite_carries_new_credentials() {
        use crate::ua::{Event, UaConfig};
        use crate::{Message, Response};
        let mut ua = UserAgent::new(UaConfig::new("sip:agent7@example.com", None, 1), S(0));
        let call = ua
            .call(S(0), "sip:bob@example.com", &offer("old1", PWD1))
            .unwrap();
        let invite = match Message::parse(ua.poll_transmit().unwrap().as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!(),
        };
        let mut ok = Response::to_request(&invite, 200, "OK", Some("far"));
        ok.headers.push("Contact", "<sip:bob@192.0.2.9>");
        ua.handle_bytes(S(1), &ok.to_bytes());
        while ua.poll_transmit().is_some() {}
        assert!(matches!(ua.poll_event(), Some(Event::Answered { .. })));

        let mut w = connected();
        w.local_description(&offer("old1", PWD1));
        w.on_state(S(5), IceState::Failed);
        assert_eq!(w.poll_restart(S(5)), Some(Trigger::Failed));
        // An offer without a restart (same ufrag) is refused and nothing is sent.
        assert_eq!(
            w.send_restart(&mut ua, S(5), call, &offer("old1", PWD2)),
            Err(RestartError::SameCredentials)
        );
        assert_eq!(ua.poll_transmit(), None);
        assert_eq!(w.poll_timeout(), Some(S(15)), "retried later");
        assert_eq!(w.poll_restart(S(15)), Some(Trigger::Retry));
        w.send_restart(&mut ua, S(15), call, &offer("new2", PWD2))
            .unwrap();
        let reinvite = ua.poll_transmit().unwrap();
        assert!(reinvite.starts_with("INVITE "), "{reinvite}");
        assert!(reinvite.contains("a=ice-ufrag:new2\r\n") && reinvite.contains(PWD2));
        assert!(w.restarting());
    }
}
