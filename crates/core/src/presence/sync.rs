//! The Teams ⇄ agent-state sync engine, sans-IO: events and `now_ms` (milliseconds since the
//! Unix epoch) in, [`Command`]s out, plus the next deadline at which to call
//! [`PresenceSync::poll`]. It performs nothing itself.
//!
//! Rules (seed `003_…` innovaphone connector, seed `004_…` ConnectPath, competitors.md §6.4):
//!
//! 1. **15 s rule** (seed `004_…` note 7: "Short lived statuses (under 15 seconds) will be
//!    ignored"): a Teams presence or an agent state is synchronised only once it has held for
//!    [`SyncConfig::min_stable_ms`] (15 000). A call is published once it has lasted as long.
//! 2. **Echo / loop detection** (seed `004_…` note 8): a Teams presence equal to the preferred
//!    presence we hold, to our live session presence, or to anything we wrote within
//!    [`SyncConfig::echo_window_ms`] (3 min, the Teams poll delay) is our own echo and ignored.
//!    States set by sync ([`AgentSource::Sync`]) are never written back to Teams, and a Teams
//!    value that maps to "online" only restores the agent's own state when sync had changed it.
//!    Each direction makes at most [`SyncConfig::max_flips`] changes per
//!    [`SyncConfig::flip_window_ms`]; beyond that the change waits ([`PresenceSync::loop_suspected`]).
//! 3. **Precedence**: when both sides change at once, the agent wins: a Teams change is dropped
//!    when the agent (user or contact-centre system) changed state less than
//!    [`SyncConfig::precedence_ms`] before it, or any time after it while it was still
//!    settling. The agent's change is then written to Teams as usual.
//! 4. **Calls**: while a call is active, `setPresence` Busy/InACall on our session (the app's
//!    client id) with [`SyncConfig::session_expiration_ms`] (PT10M), renewed every
//!    [`SyncConfig::session_renew_ms`] (5 min, as seed `003_…` renews "on-the-phone"). A
//!    preferred presence we hold is cleared first (it would mask the session: Graph lets a
//!    preferred presence override sessions) and set again after the call; the call's end
//!    clears the session (`clearPresence`, never "set Available"). Teams changes wait until
//!    the call is over. Agent states mapped to [`AgentTarget::Session`] publish the same way.
//! 5. **Forced resync** every [`SyncConfig::resync_interval_ms`] (1 h; seed `004_…` note 5,
//!    "Every hour we force synchronization"; seed `003_…` renews presence subscriptions every
//!    10 min): [`Command::FetchTeamsPresence`] and the preferred presence we hold is written
//!    again (resetting its expiry).
//! 6. **Sign-out** clears the session presence ([`Command::ClearSessionPresence`]); nothing is
//!    synchronised afterwards.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::mapping::{AgentTarget, PresenceMapping, TeamsTarget};
use super::{Presence, format_iso_duration};
use crate::config::ConfigError;

/// Timers and switches of [`PresenceSync`]; `presence.sync` in `config.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// Teams → agent on (`teamsToAgent`, default true).
    pub teams_to_agent: bool,
    /// Agent → Teams on, calls included (`agentToTeams`, default true).
    pub agent_to_teams: bool,
    /// A state must hold this long before it is synchronised (`minStableSeconds`, 15 s).
    pub min_stable_ms: u64,
    /// Our writes count as echoes for this long (`echoWindowSeconds`, 180 s).
    pub echo_window_ms: u64,
    /// An agent change this recent beats a Teams change (`precedenceSeconds`, 30 s).
    pub precedence_ms: u64,
    /// Forced resync interval (`resyncMinutes`, 60 min).
    pub resync_interval_ms: u64,
    /// Session presence renewal interval (`sessionRenewSeconds`, 300 s).
    pub session_renew_ms: u64,
    /// Session presence `expirationDuration` (`sessionExpirationSeconds`, 600 s; Graph allows
    /// PT5M–PT4H).
    pub session_expiration_ms: u64,
    /// Preferred presence `expirationDuration`; `None` = Graph's default (1 day for Busy and
    /// DoNotDisturb, 7 days otherwise) (`preferredExpirationSeconds`).
    pub preferred_expiration_ms: Option<u64>,
    /// Changes per direction per window before loop protection holds further ones (`maxFlips`,
    /// 4).
    pub max_flips: usize,
    /// The loop-protection window (`flipWindowSeconds`, 300 s).
    pub flip_window_ms: u64,
    /// `sessionId` of `setPresence` / `clearPresence`: Graph requires the app's client id
    /// (`sessionId`; the widget usually copies `auth.clientId`).
    pub session_id: String,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            teams_to_agent: true,
            agent_to_teams: true,
            min_stable_ms: 15_000,
            echo_window_ms: 180_000,
            precedence_ms: 30_000,
            resync_interval_ms: 3_600_000,
            session_renew_ms: 300_000,
            session_expiration_ms: 600_000,
            preferred_expiration_ms: None,
            max_flips: 4,
            flip_window_ms: 300_000,
            session_id: "switchboard".into(),
        }
    }
}

impl SyncConfig {
    /// Reads `presence.sync` (`None`/`null`: defaults). Errors name the field, e.g.
    /// `presence.sync.minStableSeconds must be a whole number of seconds`.
    pub fn from_value(value: Option<&Value>) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        let o = match value {
            None | Some(Value::Null) => return Ok(c),
            Some(Value::Object(o)) => o,
            Some(_) => {
                return Err(ConfigError::Invalid(
                    "presence.sync must be an object".into(),
                ));
            }
        };
        let flag = |key: &str, default: bool| match o.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ConfigError::Invalid(format!(
                "presence.sync.{key} must be true or false"
            ))),
        };
        c.teams_to_agent = flag("teamsToAgent", c.teams_to_agent)?;
        c.agent_to_teams = flag("agentToTeams", c.agent_to_teams)?;
        let number = |key: &str, unit: u64, what: &str| match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| n.checked_mul(unit))
                .map(Some)
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "presence.sync.{key} must be a whole number of {what}"
                    ))
                }),
        };
        let secs = |key: &str| number(key, 1000, "seconds");
        if let Some(v) = secs("minStableSeconds")? {
            c.min_stable_ms = v;
        }
        if let Some(v) = secs("echoWindowSeconds")? {
            c.echo_window_ms = v;
        }
        if let Some(v) = secs("precedenceSeconds")? {
            c.precedence_ms = v;
        }
        if let Some(v) = number("resyncMinutes", 60_000, "minutes")? {
            c.resync_interval_ms = v;
        }
        if let Some(v) = secs("sessionRenewSeconds")? {
            c.session_renew_ms = v;
        }
        if let Some(v) = secs("sessionExpirationSeconds")? {
            c.session_expiration_ms = v;
        }
        c.preferred_expiration_ms = secs("preferredExpirationSeconds")?;
        if let Some(v) = number("maxFlips", 1, "changes")? {
            c.max_flips = v as usize;
        }
        if let Some(v) = secs("flipWindowSeconds")? {
            c.flip_window_ms = v;
        }
        if let Some(v) = o.get("sessionId").filter(|v| !v.is_null()) {
            c.session_id = v
                .as_str()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| {
                    ConfigError::Invalid(
                        "presence.sync.sessionId must be a non-empty string".into(),
                    )
                })?
                .to_owned();
        }
        let range = |field, ok: bool, expected| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange { field, expected })
            }
        };
        range(
            "presence.sync.sessionExpirationSeconds",
            (300_000..=14_400_000).contains(&c.session_expiration_ms),
            "300 to 14400 (Graph: PT5M to PT4H)",
        )?;
        range(
            "presence.sync.sessionRenewSeconds",
            c.session_renew_ms >= 1000 && c.session_renew_ms < c.session_expiration_ms,
            "at least 1 and less than sessionExpirationSeconds",
        )?;
        range(
            "presence.sync.resyncMinutes",
            c.resync_interval_ms >= 60_000,
            "at least 1",
        )?;
        range("presence.sync.maxFlips", c.max_flips >= 1, "at least 1")?;
        Ok(c)
    }
}

/// Where an agent-state change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentSource {
    /// The agent chose it (the presence control).
    User,
    /// The contact-centre system set it (e.g. `WrapUp` after a call). Treated like `User`.
    System,
    /// This engine set it ([`Command::SetAgentState`]). Feeding such a change back is ignored.
    Sync,
}

/// What the engine asks the widget to do. [`Command::graph_request`] gives the Graph action
/// and body of the Teams-side ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `POST /users/{me}/presence/setUserPreferredPresence`
    /// `{"availability","activity","expirationDuration"?}`.
    SetTeamsPresence {
        /// The pair.
        presence: Presence,
        /// Expiry in ms; `None` = Graph's default.
        expiration_ms: Option<u64>,
    },
    /// `POST /users/{me}/presence/clearUserPreferredPresence` `{}`.
    ClearTeamsPresence,
    /// `POST /users/{me}/presence/setPresence`
    /// `{"sessionId","availability","activity","expirationDuration"}` (a new or changed
    /// session presence).
    PublishSession {
        /// Our session id (the app's client id).
        session_id: String,
        /// The pair (Busy/InACall for a call).
        presence: Presence,
        /// `expirationDuration` in ms.
        expiration_ms: u64,
    },
    /// The same request as `PublishSession`, to renew it before it expires.
    RenewSession {
        /// Our session id.
        session_id: String,
        /// The pair.
        presence: Presence,
        /// `expirationDuration` in ms.
        expiration_ms: u64,
    },
    /// `POST /users/{me}/presence/clearPresence` `{"sessionId"}`.
    ClearSessionPresence {
        /// Our session id.
        session_id: String,
    },
    /// Set the contact-centre agent state (a sync-caused change; report it back, if at all,
    /// with [`AgentSource::Sync`]).
    SetAgentState {
        /// The agent state name.
        state: String,
    },
    /// Read `GET /me/presence` and feed it to [`PresenceSync::teams_presence`] (forced resync).
    FetchTeamsPresence,
}

impl Command {
    /// The Graph action under `/users/{id}/presence/` and its JSON body, for the commands
    /// that write Teams presence; `None` for `SetAgentState` and `FetchTeamsPresence`.
    /// E.g. `("setPresence", {"sessionId":"app","availability":"Busy","activity":"InACall",
    /// "expirationDuration":"PT10M"})`.
    pub fn graph_request(&self) -> Option<(&'static str, Value)> {
        Some(match self {
            Command::SetTeamsPresence {
                presence,
                expiration_ms,
            } => {
                let mut body = presence.to_wire();
                if let Some(ms) = expiration_ms {
                    body["expirationDuration"] = json!(format_iso_duration(*ms));
                }
                ("setUserPreferredPresence", body)
            }
            Command::ClearTeamsPresence => ("clearUserPreferredPresence", json!({})),
            Command::PublishSession {
                session_id,
                presence,
                expiration_ms,
            }
            | Command::RenewSession {
                session_id,
                presence,
                expiration_ms,
            } => {
                let mut body = presence.to_wire();
                body["sessionId"] = json!(session_id);
                body["expirationDuration"] = json!(format_iso_duration(*expiration_ms));
                ("setPresence", body)
            }
            Command::ClearSessionPresence { session_id } => {
                ("clearPresence", json!({ "sessionId": session_id }))
            }
            Command::SetAgentState { .. } | Command::FetchTeamsPresence => return None,
        })
    }
}

/// Our writes remembered for echo detection.
const WRITES_KEPT: usize = 16;

/// Why a change waits ([`PresenceSync::held_back`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldReason {
    /// The 15-second rule: the new value has not held [`SyncConfig::min_stable_ms`] yet
    /// (seed `004_…`: "Short lived statuses (under 15 seconds) will be ignored").
    Stability,
    /// Loop detection: [`SyncConfig::max_flips`] changes in one direction within
    /// [`SyncConfig::flip_window_ms`] (seed `004_…`: "We attempt to detect potential status
    /// loops").
    Loop,
}

/// A change the engine is holding back, and until when (ms since the epoch; the engine's
/// [`PresenceSync::next_deadline`] fires then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldBack {
    /// Why it waits.
    pub reason: HoldReason,
    /// When it goes out at the earliest (if nothing changes meanwhile).
    pub until_ms: u64,
}

/// The sync engine (see the module docs). Create it at sign-in with the agent's state.
#[derive(Debug, Clone)]
pub struct PresenceSync {
    config: SyncConfig,
    mapping: PresenceMapping,
    signed_in: bool,
    teams: Option<Presence>,
    teams_since: u64,
    teams_pending: bool,
    agent: String,
    agent_source: AgentSource,
    own_state: String,
    agent_since: u64,
    agent_pending: bool,
    last_agent_change: Option<u64>,
    preferred: Option<Presence>,
    writes: VecDeque<(Presence, u64)>,
    call_since: Option<u64>,
    session: Option<(Presence, u64)>,
    next_resync: u64,
    flips_to_agent: VecDeque<u64>,
    flips_to_teams: VecDeque<u64>,
    loop_suspected: bool,
    out: VecDeque<Command>,
}

impl PresenceSync {
    /// An engine for an agent signed in at `now_ms` in `agent_state` (their own state; it is not
    /// written to Teams until it changes). The first forced resync is one interval later.
    pub fn new(
        config: SyncConfig,
        mapping: PresenceMapping,
        now_ms: u64,
        agent_state: &str,
    ) -> Self {
        Self {
            next_resync: now_ms.saturating_add(config.resync_interval_ms),
            config,
            mapping,
            signed_in: true,
            teams: None,
            teams_since: now_ms,
            teams_pending: false,
            agent: agent_state.to_owned(),
            agent_source: AgentSource::User,
            own_state: agent_state.to_owned(),
            agent_since: now_ms,
            agent_pending: false,
            last_agent_change: None,
            preferred: None,
            writes: VecDeque::new(),
            call_since: None,
            session: None,
            flips_to_agent: VecDeque::new(),
            flips_to_teams: VecDeque::new(),
            loop_suspected: false,
            out: VecDeque::new(),
        }
    }

    /// The agent state as the engine knows it.
    pub fn agent_state(&self) -> &str {
        &self.agent
    }

    /// Who set the current agent state.
    pub fn agent_source(&self) -> AgentSource {
        self.agent_source
    }

    /// The last Teams presence reported (idle states as their base).
    pub fn teams_presence(&self) -> Option<Presence> {
        self.teams
    }

    /// The session presence we publish, if any.
    pub fn session_presence(&self) -> Option<Presence> {
        self.session.map(|(p, _)| p)
    }

    /// The preferred presence we hold in Teams, if any.
    pub fn preferred_presence(&self) -> Option<Presence> {
        self.preferred
    }

    /// Whether loop protection has held a change back (a hint for the UI / logs).
    pub fn loop_suspected(&self) -> bool {
        self.loop_suspected
    }

    /// The change held back at `now_ms`, if any: a Teams write (the agent's state, or a call's
    /// InACall) waiting for the 15-second rule or for loop detection, or a Teams change waiting
    /// for loop detection before it may change the agent state. Loop detection is reported as
    /// soon as the change is pending (its timer fires only when the window frees up). `None`
    /// when nothing waits (a Teams change merely inside its 15 s is not reported: it may well be
    /// an echo or a blip).
    pub fn held_back(&self, now_ms: u64) -> Option<HeldBack> {
        if !self.signed_in {
            return None;
        }
        let stable_at = |since: u64| since + self.config.min_stable_ms;
        let limit = |flips: &VecDeque<u64>| {
            let live: Vec<u64> = flips
                .iter()
                .copied()
                .filter(|t| t + self.config.flip_window_ms > now_ms)
                .collect();
            (live.len() >= self.config.max_flips)
                .then(|| live.first().map(|t| t + self.config.flip_window_ms))
                .flatten()
        };
        let held = |reason, until_ms| Some(HeldBack { reason, until_ms });
        if self.config.agent_to_teams && self.session.is_none() {
            if let Some(since) = self.call_since {
                if now_ms < stable_at(since) {
                    return held(HoldReason::Stability, stable_at(since));
                }
            } else if self.agent_pending && self.agent_source != AgentSource::Sync {
                let needed = match self.mapping.agent_to_teams(&self.agent) {
                    Some(AgentTarget::Preferred(p)) => self.preferred != Some(p),
                    Some(AgentTarget::Clear) => self.preferred.is_some(),
                    Some(AgentTarget::Session(_)) => true,
                    None => false,
                };
                if needed {
                    let stable = stable_at(self.agent_since);
                    if let Some(until) = limit(&self.flips_to_teams) {
                        return held(HoldReason::Loop, until.max(stable));
                    }
                    if now_ms < stable {
                        return held(HoldReason::Stability, stable);
                    }
                }
            }
        }
        let changes_agent = self.config.teams_to_agent
            && self
                .teams
                .is_some_and(|p| match self.mapping.teams_to_agent(p.activity) {
                    Some(TeamsTarget::State(s)) => *s != self.agent,
                    Some(TeamsTarget::Unset) => {
                        self.agent_source == AgentSource::Sync && self.agent != self.own_state
                    }
                    None => false,
                });
        if self.teams_pending
            && self.call_since.is_none()
            && changes_agent
            && let Some(until) = limit(&self.flips_to_agent)
        {
            return held(HoldReason::Loop, until.max(stable_at(self.teams_since)));
        }
        None
    }

    /// Whether nothing waits to be synchronised (no pending change on either side).
    pub fn is_settled(&self) -> bool {
        !self.teams_pending && !self.agent_pending
    }

    /// The next command to perform, in order.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.out.pop_front()
    }

    /// When to call [`poll`](Self::poll) next (ms since the epoch); `None` after sign-out.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.signed_in {
            return None;
        }
        let window = |flips: &VecDeque<u64>| {
            (flips.len() >= self.config.max_flips)
                .then(|| flips.front().map(|t| t + self.config.flip_window_ms))
                .flatten()
                .unwrap_or(0)
        };
        let mut next = self.next_resync;
        if self.teams_pending && self.call_since.is_none() {
            next = next.min(
                (self.teams_since + self.config.min_stable_ms).max(window(&self.flips_to_agent)),
            );
        }
        if self.agent_pending && self.session.is_none() {
            next = next.min(
                (self.agent_since + self.config.min_stable_ms).max(window(&self.flips_to_teams)),
            );
        }
        if let Some((_, renew)) = self.session {
            next = next.min(renew);
        }
        if let (Some(since), None, true) =
            (self.call_since, self.session, self.config.agent_to_teams)
        {
            next = next.min(since + self.config.min_stable_ms);
        }
        if self.session.is_none()
            && self.call_since.is_none()
            && self.config.agent_to_teams
            && self.agent_source != AgentSource::Sync
            && matches!(
                self.mapping.agent_to_teams(&self.agent),
                Some(AgentTarget::Session(_))
            )
        {
            next = next.min(self.agent_since + self.config.min_stable_ms);
        }
        Some(next)
    }

    /// Runs the timers (stability, renewal, resync, held-back changes).
    pub fn poll(&mut self, now_ms: u64) {
        self.run(now_ms);
    }

    /// Teams reported a presence (a `PresenceChanged` push, `GET /me/presence`, or a resync
    /// read). Idle availabilities count as their base.
    pub fn teams_presence_changed(&mut self, now_ms: u64, presence: Presence) {
        if !self.signed_in {
            return;
        }
        let p = presence.normalized();
        let window = self.config.echo_window_ms;
        self.writes.retain(|(_, t)| t + window > now_ms);
        let echo = self.preferred == Some(p)
            || self.session_presence() == Some(p)
            || self.writes.iter().any(|(w, _)| *w == p);
        if echo {
            // Teams shows our own value again: whatever it showed before lasted too briefly.
            self.teams = Some(p);
            self.teams_pending = false;
        } else if self.teams != Some(p) {
            self.teams = Some(p);
            self.teams_since = now_ms;
            self.teams_pending = true;
        }
        self.run(now_ms);
    }

    /// The agent state changed on the contact-centre side. `Sync` changes (echoes of
    /// [`Command::SetAgentState`]) are ignored. Choosing the state sync had set makes it the
    /// agent's own without writing anything.
    pub fn agent_state_changed(&mut self, now_ms: u64, state: &str, source: AgentSource) {
        if !self.signed_in || source == AgentSource::Sync {
            return;
        }
        self.last_agent_change = Some(now_ms);
        self.agent_source = source;
        self.own_state = state.to_owned();
        if state != self.agent {
            self.agent = state.to_owned();
            self.agent_since = now_ms;
            self.agent_pending = true;
        }
        self.run(now_ms);
    }

    /// A call became active (accepted or dialled). Published as Busy/InACall once it has
    /// lasted [`SyncConfig::min_stable_ms`].
    pub fn call_started(&mut self, now_ms: u64) {
        if self.signed_in && self.call_since.is_none() {
            self.call_since = Some(now_ms);
        }
        self.run(now_ms);
    }

    /// The call ended: the session presence is cleared and the agent's mapping restored.
    pub fn call_ended(&mut self, now_ms: u64) {
        self.call_since = None;
        self.run(now_ms);
    }

    /// The agent signs out: the session presence is cleared; the engine stops.
    pub fn sign_out(&mut self, _now_ms: u64) {
        if !self.signed_in {
            return;
        }
        if self.session.take().is_some() {
            self.out.push_back(Command::ClearSessionPresence {
                session_id: self.config.session_id.clone(),
            });
        }
        self.signed_in = false;
        self.teams_pending = false;
        self.agent_pending = false;
    }

    fn run(&mut self, now: u64) {
        if !self.signed_in {
            return;
        }
        if now >= self.next_resync {
            self.next_resync = now + self.config.resync_interval_ms;
            self.out.push_back(Command::FetchTeamsPresence);
            if let (true, Some(p), None) =
                (self.config.agent_to_teams, self.preferred, self.session)
            {
                self.write_preferred(now, p);
            }
        }
        self.apply_teams(now);
        self.reconcile_session(now);
        self.apply_agent(now);
    }

    fn limited(&mut self, to_agent: bool, now: u64) -> bool {
        let (window, max) = (self.config.flip_window_ms, self.config.max_flips);
        let flips = if to_agent {
            &mut self.flips_to_agent
        } else {
            &mut self.flips_to_teams
        };
        while flips.front().is_some_and(|t| t + window <= now) {
            flips.pop_front();
        }
        let limited = flips.len() >= max;
        if !limited {
            flips.push_back(now);
        }
        self.loop_suspected |= limited;
        limited
    }

    fn apply_teams(&mut self, now: u64) {
        if !self.teams_pending
            || self.call_since.is_some()
            || now < self.teams_since + self.config.min_stable_ms
        {
            return;
        }
        // A preferred presence overrides every session, so another value that held this long
        // means ours was replaced (the user changed it in Teams) or expired.
        self.preferred = None;
        let agent_first = self
            .last_agent_change
            .is_some_and(|t| t + self.config.precedence_ms >= self.teams_since);
        if agent_first {
            // The agent's state wins: make Teams show its mapping again.
            self.agent_pending = true;
        }
        let target = match self.teams {
            Some(p) if self.config.teams_to_agent && !agent_first => {
                self.mapping.teams_to_agent(p.activity).cloned()
            }
            _ => None,
        };
        let (state, source) = match target {
            Some(TeamsTarget::State(s)) if s != self.agent => (s, AgentSource::Sync),
            Some(TeamsTarget::Unset)
                if self.agent_source == AgentSource::Sync && self.agent != self.own_state =>
            {
                (self.own_state.clone(), AgentSource::User)
            }
            _ => {
                self.teams_pending = false;
                return;
            }
        };
        if self.limited(true, now) {
            return;
        }
        self.teams_pending = false;
        self.agent = state.clone();
        self.agent_source = source;
        self.agent_since = now;
        self.out.push_back(Command::SetAgentState { state });
    }

    fn reconcile_session(&mut self, now: u64) {
        let stable = |since: u64| now >= since + self.config.min_stable_ms;
        let want = if !self.config.agent_to_teams {
            None
        } else if let Some(since) = self.call_since {
            stable(since).then_some(Presence::IN_A_CALL)
        } else {
            match self.mapping.agent_to_teams(&self.agent) {
                Some(AgentTarget::Session(p))
                    if self.agent_source != AgentSource::Sync && stable(self.agent_since) =>
                {
                    Some(p)
                }
                _ => None,
            }
        };
        let session_id = self.config.session_id.clone();
        let expiration_ms = self.config.session_expiration_ms;
        match (self.session, want) {
            (None, None) => {}
            (Some(_), None) => {
                self.session = None;
                self.out
                    .push_back(Command::ClearSessionPresence { session_id });
                // Restore the preferred presence the session had suspended.
                self.agent_pending = true;
            }
            (current, Some(presence)) => {
                if current.is_none() && self.preferred.take().is_some() {
                    self.out.push_back(Command::ClearTeamsPresence);
                }
                let command = match current {
                    Some((p, renew)) if p == presence && now < renew => return,
                    Some((p, _)) if p == presence => Command::RenewSession {
                        session_id,
                        presence,
                        expiration_ms,
                    },
                    _ => Command::PublishSession {
                        session_id,
                        presence,
                        expiration_ms,
                    },
                };
                self.session = Some((presence, now + self.config.session_renew_ms));
                self.remember(now, presence);
                self.out.push_back(command);
            }
        }
    }

    fn apply_agent(&mut self, now: u64) {
        if !self.agent_pending || now < self.agent_since + self.config.min_stable_ms {
            return;
        }
        if self.session.is_some()
            || !self.config.agent_to_teams
            || self.agent_source == AgentSource::Sync
        {
            // The session owns Teams until it ends (which re-arms this); sync-caused states
            // are never written back.
            self.agent_pending = false;
            return;
        }
        let target = self.mapping.agent_to_teams(&self.agent);
        let needed = match target {
            Some(AgentTarget::Preferred(p)) => self.preferred != Some(p),
            Some(AgentTarget::Clear) => self.preferred.is_some(),
            _ => false,
        };
        if !needed {
            self.agent_pending = false;
            return;
        }
        if self.limited(false, now) {
            return;
        }
        self.agent_pending = false;
        match target {
            Some(AgentTarget::Preferred(p)) => self.write_preferred(now, p),
            _ => {
                self.preferred = None;
                self.out.push_back(Command::ClearTeamsPresence);
            }
        }
    }

    fn write_preferred(&mut self, now: u64, presence: Presence) {
        self.preferred = Some(presence);
        self.remember(now, presence);
        self.out.push_back(Command::SetTeamsPresence {
            presence,
            expiration_ms: self.config.preferred_expiration_ms,
        });
    }

    fn remember(&mut self, now: u64, presence: Presence) {
        if self.writes.len() >= WRITES_KEPT {
            self.writes.pop_front();
        }
        self.writes.push_back((presence, now));
    }
}

#[cfg(test)]
mod tests;
