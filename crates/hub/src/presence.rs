//! The Microsoft Graph presence stand-in's state ([`crate::graph`] has its routes and hub
//! methods): the demo directory, every user's presence sessions and preferred presence, Graph's
//! aggregation, and the `subscribePresence` subscriptions. Part of the hub state
//! ([`crate::hub::Hub`]), so it names no hub.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::presence::{Activity, Availability, Presence};

use crate::auth::unix_now_ms;

/// The Teams client's own session in the stand-in (what the simulator sets).
pub const TEAMS_CLIENT_SESSION: &str = "teams-client";
/// Ids one user may watch through `subscribePresence`, in total.
pub const MAX_WATCHED_PER_USER: usize = 10_000;
/// Subscribing users kept at most.
pub const MAX_SUBSCRIBERS: usize = 10_000;
/// Users with presence state kept at most (directory included).
pub const MAX_USERS: usize = 100_000;
/// Sessions per user at most.
pub const MAX_SESSIONS: usize = 16;
/// `setPresence`'s longest `expirationDuration` (PT4H).
pub const MAX_SESSION_EXPIRATION_MS: u64 = 4 * 3_600_000;

/// The stand-in's one group: alice, bob and the first colleagues ([`AGENTS_GROUP_SIZE`] in
/// all; two pages of `/groups/{id}/members` at the default page size).
pub const AGENTS_GROUP: &str = "switchboard-agents";
/// Members of [`AGENTS_GROUP`] (fewer if the directory is smaller).
pub const AGENTS_GROUP_SIZE: usize = 122;
/// Directory users' `userPrincipalName` is their id with this suffix.
pub const UPN_SUFFIX: &str = "@switchboard.test";

/// How many directory entries, from the first, group `group` has (`None`: no such group).
pub(crate) fn group_member_ids(group: &str, directory: usize) -> Option<usize> {
    (group == AGENTS_GROUP).then_some(AGENTS_GROUP_SIZE.min(directory))
}

/// Stand-in settings (part of [`crate::HubConfig`]).
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Where the routes live (`/graph/v1.0`; no trailing slash).
    pub base_path: String,
    /// Requests per user per window before 429 (default 300 per 30 s; Graph's own limit is
    /// 1,500 requests per 30 s per app per tenant).
    pub rate_limit: u32,
    /// The rate window (30 s).
    pub rate_window: Duration,
    /// Shortest `setPresence` `expirationDuration` accepted (Graph: PT5M; tests lower it).
    pub min_session_expiration: Duration,
    /// Generated colleagues in the demo directory besides alice and bob (700: two
    /// `getPresencesByUserId` batches).
    pub colleagues: usize,
    /// The client secret the stand-in's dev token endpoint
    /// (`POST /graph/login/{tenant}/oauth2/v2.0/token`, client-credentials grant) accepts for any
    /// client id; `None` refuses every client. [`crate::HubConfig::new`] sets the AccessKey.
    pub app_secret: Option<String>,
    /// Real Graph change notifications for `subscribePresence` (the hub's app credentials and
    /// public notification URL; [`crate::graph_link`]). `None`: the stand-in is the source.
    pub link: Option<crate::graph_client::LinkConfig>,
    /// Whether the stand-in pushes `PresenceChanged` to `subscribePresence` watchers (default
    /// `true`; `--graph-stand-in-push off` turns it off, so the `subscribePresence` answer says
    /// `"push": "none"` and the widget polls, as against a hub without Graph credentials).
    pub stand_in_push: bool,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            base_path: "/graph/v1.0".into(),
            rate_limit: 300,
            rate_window: Duration::from_secs(30),
            min_session_expiration: Duration::from_secs(300),
            colleagues: 700,
            app_secret: None,
            link: None,
            stand_in_push: true,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) presence: Presence,
    pub(crate) expires: Option<u64>,
    pub(crate) set_at: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct UserPresence {
    pub(crate) sessions: Vec<Session>,
    pub(crate) preferred: Option<(Presence, u64)>,
    pub(crate) last: Option<Presence>,
}

pub(crate) const OFFLINE: Presence = Presence::new(Availability::Offline, Activity::Offline);

fn rank(a: Availability) -> u8 {
    match a.base() {
        Availability::DoNotDisturb => 5,
        Availability::Busy => 4,
        Availability::Available => 3,
        Availability::Away | Availability::BeRightBack => 2,
        _ => 0,
    }
}

impl UserPresence {
    /// Graph's aggregation at `now` (see the module docs); drops what has expired.
    pub(crate) fn aggregate(&mut self, now: u64) -> Presence {
        self.sessions.retain(|s| s.expires.is_none_or(|e| e > now));
        if self.preferred.is_some_and(|(_, e)| e <= now) {
            self.preferred = None;
        }
        if self.sessions.is_empty() {
            return OFFLINE;
        }
        if let Some((p, _)) = self.preferred {
            return p;
        }
        self.sessions
            .iter()
            .max_by_key(|s| (rank(s.presence.availability), s.set_at))
            .map(|s| s.presence)
            .unwrap_or(OFFLINE)
    }

    /// What other hub nodes need of it (`--redis`; [`crate::cluster`]):
    /// `{"sessions": [{"id","availability","activity","expires"?,"setAt"}], "preferred"?:
    /// {"availability","activity","expires"}}` (times Unix ms).
    pub(crate) fn to_copy(&self) -> Value {
        let sessions: Vec<Value> = self
            .sessions
            .iter()
            .map(|s| {
                let mut v = s.presence.to_wire();
                v["id"] = Value::String(s.id.clone());
                v["expires"] = json!(s.expires);
                v["setAt"] = json!(s.set_at);
                v
            })
            .collect();
        let mut copy = json!({ "sessions": sessions });
        if let Some((p, expires)) = self.preferred {
            let mut v = p.to_wire();
            v["expires"] = json!(expires);
            copy["preferred"] = v;
        }
        copy
    }

    /// Reads [`UserPresence::to_copy`] (`last` left unset); `None` when it is not one.
    pub(crate) fn from_copy(copy: &Value) -> Option<Self> {
        let mut sessions = Vec::new();
        for s in copy.get("sessions")?.as_array()?.iter().take(MAX_SESSIONS) {
            sessions.push(Session {
                id: s.get("id")?.as_str()?.to_owned(),
                presence: Presence::from_wire(s)?,
                expires: s.get("expires").and_then(Value::as_u64),
                set_at: s.get("setAt").and_then(Value::as_u64).unwrap_or(0),
            });
        }
        let preferred = match copy.get("preferred") {
            Some(p) => Some((Presence::from_wire(p)?, p.get("expires")?.as_u64()?)),
            None => None,
        };
        Some(Self {
            sessions,
            preferred,
            last: None,
        })
    }

    pub(crate) fn next_expiry(&self) -> Option<u64> {
        let sessions = self.sessions.iter().filter_map(|s| s.expires);
        sessions.chain(self.preferred.map(|(_, e)| e)).min()
    }
}

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) directory: Vec<(String, String)>,
    pub(crate) users: HashMap<String, UserPresence>,
    pub(crate) watchers: HashMap<String, HashSet<(String, String)>>,
    pub(crate) watching: HashMap<(String, String), HashSet<String>>,
    pub(crate) rate: HashMap<String, (u64, u32)>,
    /// Change-notification subscriptions by id ([`crate::graph_subscriptions`]).
    pub(crate) subscriptions: HashMap<String, Subscription>,
    /// Client-credentials access tokens issued by the dev token endpoint: token → (client
    /// id, expiry ms).
    pub(crate) app_tokens: HashMap<String, (String, u64)>,
    /// Test hook: this many subscription requests answer 429 with this `Retry-After` (s).
    pub(crate) throttle: (u32, u64),
}

/// The stand-in's state: the directory, every user's sessions and preferred presence, and the
/// `subscribePresence` subscriptions. Its lock is never held while sending to connections.
pub struct GraphState {
    pub(crate) config: GraphConfig,
    pub(crate) inner: Mutex<Inner>,
    /// The real-Graph link when [`GraphConfig::link`] is set (started by [`crate::serve`]).
    pub(crate) link: std::sync::OnceLock<std::sync::Arc<crate::graph_client::GraphLink>>,
}

impl std::fmt::Debug for GraphState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphState").finish_non_exhaustive()
    }
}

const FIRST: [&str; 20] = [
    "Ada", "Ben", "Chloe", "Dev", "Elif", "Farah", "Goran", "Hana", "Ivan", "Jia", "Kofi", "Lena",
    "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
];
const LAST: [&str; 36] = [
    "Abbott",
    "Bauer",
    "Costa",
    "Diaz",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Meyer",
    "Novak",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rossi",
    "Sato",
    "Tanaka",
    "Uddin",
    "Vargas",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
    "Moreau",
    "Lindqvist",
    "Haddad",
    "Brennan",
    "Achebe",
    "Kim",
    "Silva",
    "Horvat",
    "Nakamura",
    "Olsen",
];

/// The generated colleagues' presences, by index modulo 6 (`None`: no session, Offline).
fn seeded_presence(i: usize) -> Option<Presence> {
    use Activity as Ac;
    use Availability as Av;
    [
        Some(Presence::new(Av::Available, Ac::Available)),
        Some(Presence::IN_A_CALL),
        Some(Presence::new(Av::Away, Ac::Away)),
        Some(Presence::new(Av::DoNotDisturb, Ac::DoNotDisturb)),
        Some(Presence::new(Av::Busy, Ac::InAMeeting)),
        None,
    ][i % 6]
}

/// The id of generated colleague `i` (1-based): `colleague-001` … `colleague-700`.
pub fn colleague_id(i: usize) -> String {
    format!("colleague-{i:03}")
}

impl GraphState {
    /// The directory (alice, bob, `config.colleagues` generated colleagues), alice and bob
    /// Available in Teams, the colleagues in a fixed mix of states.
    pub fn new(config: &GraphConfig) -> Self {
        let mut inner = Inner::default();
        let teams = |p: Presence| UserPresence {
            sessions: vec![Session {
                id: TEAMS_CLIENT_SESSION.into(),
                presence: p,
                expires: None,
                set_at: 0,
            }],
            ..UserPresence::default()
        };
        let available = Presence::new(Availability::Available, Activity::Available);
        for (id, name) in [("alice", "Alice Adams"), ("bob", "Bob Brown")] {
            inner.directory.push((id.into(), name.into()));
            inner.users.insert(id.into(), teams(available));
        }
        for i in 1..=config.colleagues.min(MAX_USERS / 2) {
            let id = colleague_id(i);
            let name = format!(
                "{} {}",
                FIRST[i % FIRST.len()],
                LAST[(i / FIRST.len()) % LAST.len()]
            );
            inner.directory.push((id.clone(), name));
            let state = seeded_presence(i).map(teams).unwrap_or_default();
            inner.users.insert(id, state);
        }
        Self {
            config: config.clone(),
            inner: Mutex::new(inner),
            link: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The aggregated presence of a known user, as Graph answers it
    /// (`{"id","availability","activity"}`); `None` for an unknown one.
    pub fn presence_json(&self, id: &str) -> Option<Value> {
        let now = unix_now_ms();
        let mut inner = self.lock();
        let p = inner.users.get_mut(id)?.aggregate(now);
        Some(wire(id, p))
    }

    /// The real-Graph link, when the hub has Graph app credentials.
    pub fn link(&self) -> Option<&std::sync::Arc<crate::graph_client::GraphLink>> {
        self.link.get()
    }

    /// Every id some user watches through `subscribePresence`.
    pub fn watched_ids(&self) -> Vec<String> {
        self.lock().watchers.keys().cloned().collect()
    }

    /// The `(hub, user)` pairs watching `id`.
    pub(crate) fn watchers_of(&self, id: &str) -> Vec<(String, String)> {
        self.lock()
            .watchers
            .get(id)
            .map(|w| w.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many users watch `id` through `subscribePresence`.
    pub fn watcher_count(&self, id: &str) -> usize {
        self.lock().watchers.get(id).map_or(0, HashSet::len)
    }
}

pub(crate) fn wire(id: &str, p: Presence) -> Value {
    json!({ "id": id, "availability": p.availability.as_str(), "activity": p.activity.as_str() })
}

/// What changed a user's presence.
pub(crate) enum Change {
    Session(Session),
    ClearSession(String),
    Preferred(Presence, u64),
    ClearPreferred,
}

/// When the aggregate differs from the last one pushed: the `PresenceChanged` argument and the
/// `(hub, user)` subscribers to send it to (possibly none: Graph subscriptions are notified
/// all the same).
pub(crate) fn changed(
    inner: &mut Inner,
    id: &str,
    now: u64,
) -> Option<(Value, Vec<(String, String)>)> {
    let user = inner.users.get_mut(id)?;
    let p = user.aggregate(now);
    if user.last == Some(p) {
        return None;
    }
    user.last = Some(p);
    let to: Vec<_> = inner
        .watchers
        .get(id)
        .map(|w| w.iter().cloned().collect())
        .unwrap_or_default();
    Some((wire(id, p), to))
}

/// A change-notification subscription held by the stand-in.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub(crate) id: String,
    pub(crate) resource: String,
    pub(crate) ids: HashSet<String>,
    pub(crate) notification_url: String,
    pub(crate) lifecycle_url: Option<String>,
    pub(crate) client_state: Option<String>,
    pub(crate) expires_at: u64,
    pub(crate) application: String,
    /// `reauthorizationRequired` sent and not answered: change notifications are withheld.
    pub(crate) needs_reauth: bool,
    /// Test hook `missed`: change notifications are dropped and `missed` is sent instead.
    pub(crate) dropping: bool,
}
