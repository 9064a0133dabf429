//! The hub's shared state: live connections by user and group, pending negotiations, running
//! sessions, the call registry, and the operations every route and connection goes through (send
//! to a user, a connection, a group, everyone; ring a call; announce a call's transition).
//!
//! Hub methods are dispatched through one table ([`HubMethods`], [`crate::methods`]) that the
//! modules implementing them fill at startup ([`crate::hub_methods`]); this module names none
//! of them. Sessions are known through the [`Session`] trait ([`crate::sessions`] has the
//! concrete handle), so this module names no transport either.
//!
//! One mutex guards it all and is never held across an `.await`: sends to connections are
//! `try_send` on a bounded per-connection queue, so a slow client loses messages (Azure SignalR
//! delivery is at-most-once too) instead of stalling the hub.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_core::IncomingCall;
use switchboard_core::call::machine::Signal;
use switchboard_signalr::HubMessage;
use tokio::sync::watch;

use crate::HubConfig;
use crate::auth::{AccessKey, DevTokens};
use crate::methods::MethodTable;
use crate::registry::{Call, CallError, CallRegistry, EndReason, State, Transition};
use crate::users::UserAuthenticator;

/// Messages queued per connection before further ones are dropped.
pub const OUTBOX_CAPACITY: usize = 256;
/// Negotiated connections waiting for their WebSocket at most.
pub const MAX_PENDING: usize = 10_000;
/// `POST /api/userclient` records kept.
pub const MAX_USER_CLIENTS: usize = 10_000;
/// Groups kept at most (per hub and overall).
pub const MAX_GROUPS: usize = 100_000;

/// What the hub asks a connection task to do.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// Send this message (each connection encodes it in its own protocol).
    Message(Arc<HubMessage>),
    /// Send a Close message and end the connection.
    Close {
        error: Option<String>,
        allow_reconnect: bool,
    },
}

/// Who a connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The public connection id (`connectionId` of negotiate).
    pub connection_id: String,
    /// The hub name, lower-cased (hub names are case-insensitive, as in Azure).
    pub hub: String,
    /// The user id of the hub access token (`nameid`); `None` for anonymous connections.
    pub user: Option<String>,
    /// Whether negotiate granted stateful reconnect (`"useStatefulReconnect": true`).
    pub stateful: bool,
    /// The roles of the user's token (`roles` claim, or dev `/dev/token` `"role"`), carried
    /// in the hub access token's `role` claim. [`crate::agents::SUPERVISOR_ROLE`] joins the
    /// group `supervisors` on connect.
    pub roles: Vec<String>,
}

impl ConnectionInfo {
    /// Whether the token has role `Supervisor` ([`crate::agents::SUPERVISOR_ROLE`]).
    pub fn is_supervisor(&self) -> bool {
        self.roles
            .iter()
            .any(|r| r == crate::agents::SUPERVISOR_ROLE)
    }

    /// The signed-in user a hub method `target` acts for; Err `"<target>: this connection has
    /// no user; sign in first"` for an anonymous connection (docs/hub-contract.md, errors).
    pub fn user_for(&self, target: &str) -> Result<&str, String> {
        self.user
            .as_deref()
            .ok_or_else(|| format!("{target}: this connection has no user; sign in first"))
    }
}

/// A running session as the hub state knows it: who it is, what the hub may ask of it, and
/// its outbox. The concrete handle (transport, mailbox, POST and poll queues) is
/// [`crate::sessions::SessionHandle`]; routes find it by connection token. The session table
/// and, once handshaken, the connection table share it (one `ConnectionInfo` per connection).
pub(crate) trait Session: std::any::Any + Send + Sync {
    /// Who the session is.
    fn info(&self) -> &ConnectionInfo;
    /// Asks the session to act; whether it took the request.
    fn tell(&self, request: SessionRequest) -> bool;
    /// Queues a message in the session's outbox (at most [`OUTBOX_CAPACITY`]).
    fn deliver(&self, message: Outbound) -> Result<(), crate::mailbox::Refused>;
}

/// What the hub asks of a running session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionRequest {
    /// Drop the transport without closing the logical connection (dev hook).
    DropTransport,
    /// The connection's outbox is full: close it ([`crate::limits::OUTBOX_OVERFLOW`]).
    Overflow,
    /// The hub is shutting down ([`Hub::shutdown`]): look at [`Hub::is_shutting_down`].
    Shutdown,
}

/// Takes a user's presence (its stand-in state, `{"sessions", "preferred"?}`) that another
/// hub node changed ([`Hub::on_presence`]).
pub type PresenceReplicator = fn(&Hub, &str, &Value);

/// The table of hub methods clients may invoke ([`crate::methods`]): handlers run
/// `target(arguments)` for a connection on this hub.
pub type HubMethods = MethodTable<Hub, ConnectionInfo>;

/// The result of [`Hub::send_message_to_user`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The user has no live connection; nothing was sent or registered.
    NotConnected,
    /// The user is connected but no connection could take the message (every outbox was
    /// full: those connections are being closed with [`crate::limits::OUTBOX_OVERFLOW`]).
    /// `SendMessageToUser` answers 503.
    NotDelivered,
    /// A call the agent's state does not take (`409` with the reason; [`crate::agents`]):
    /// nothing was sent or registered.
    Refused(crate::agents::Refusal),
    /// Sent to the user's connections; `call_id` is set when the message was a call.
    Delivered {
        /// The registered call's id.
        call_id: Option<String>,
    },
}

/// A record of `POST /api/userclient` (with `--redis` also kept in Redis as
/// `{"userId","connectionId"?,"connectionStatus"?}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserClient {
    /// The user.
    pub user_id: String,
    /// The connection the client reported.
    pub connection_id: Option<String>,
    /// What the client reported (`connected`, `disconnected`, ...).
    pub connection_status: Option<String>,
}

struct Pending {
    info: ConnectionInfo,
    expires: Instant,
}

struct Connection {
    /// The running session (shared with the session table): who it is and its outbox.
    session: Arc<dyn Session>,
    /// The groups the connection itself was added to; boxed and made only when it joins one
    /// (most never do, and the connection table keeps spare room for ~1.6× its entries).
    #[allow(clippy::box_collection)] // the box is the point: 8 bytes where a set is 48
    groups: Option<Box<HashSet<String>>>,
}

impl Connection {
    fn info(&self) -> &ConnectionInfo {
        self.session.info()
    }
}

/// The live connections of one user on one hub: nearly always one, kept without a set (24
/// bytes in the user table instead of a set's 48 and its 112-byte allocation).
#[derive(Debug, Default)]
enum UserConnections {
    #[default]
    None,
    One(String),
    #[allow(clippy::box_collection)] // the box is the point: 8 bytes where a set is 48
    Many(Box<HashSet<String>>),
}

impl UserConnections {
    fn insert(&mut self, id: String) {
        match self {
            UserConnections::None => *self = UserConnections::One(id),
            UserConnections::One(one) if *one == id => {}
            UserConnections::One(one) => {
                let one = std::mem::take(one);
                *self = UserConnections::Many(Box::new(HashSet::from([one, id])));
            }
            UserConnections::Many(set) => {
                set.insert(id);
            }
        }
    }

    fn remove(&mut self, id: &str) {
        match self {
            UserConnections::One(one) if one == id => *self = UserConnections::None,
            UserConnections::None | UserConnections::One(_) => {}
            UserConnections::Many(set) => {
                set.remove(id);
                if set.is_empty() {
                    *self = UserConnections::None;
                }
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            UserConnections::None => 0,
            UserConnections::One(_) => 1,
            UserConnections::Many(set) => set.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn iter(&self) -> impl Iterator<Item = &String> {
        let (one, many) = match self {
            UserConnections::None => (None, None),
            UserConnections::One(id) => (Some(id), None),
            UserConnections::Many(set) => (None, Some(set.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

#[derive(Default)]
struct Group {
    users: HashSet<String>,
    connections: HashSet<String>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pending: HashMap<String, Pending>,
    /// By connection token (the key is shared with the session task).
    sessions: HashMap<Arc<str>, Arc<dyn Session>>,
    connections: HashMap<String, Connection>,
    users: HashMap<(String, String), UserConnections>,
    groups: HashMap<(String, String), Group>,
    pub(crate) calls: CallRegistry,
    pub(crate) directory: crate::numbers::Directory,
    pub(crate) agents: crate::agents::AgentStore,
    user_clients: VecDeque<UserClient>,
    /// With `--redis`: agents connected on another node, and which (from their states).
    remote_online: HashMap<String, String>,
    /// With `--redis`: every call state is copied to Redis for reads through any node.
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Shared state of one running hub (see the module docs).
pub struct Hub {
    pub(crate) config: HubConfig,
    pub(crate) access_key: AccessKey,
    pub(crate) users: UserAuthenticator,
    pub(crate) graph: crate::presence::GraphState,
    pub(crate) quotas: crate::quota::Quotas,
    methods: HubMethods,
    inner: Mutex<Inner>,
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// With `--redis`: where another node's presence change goes ([`Hub::on_presence`]).
    presence: std::sync::OnceLock<PresenceReplicator>,
    shutdown: watch::Sender<bool>,
    weak: Weak<Hub>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

/// A random URL-safe id of `bytes` random bytes (base64url, no padding).
pub fn random_id(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub(crate) fn new_call_id() -> String {
    use rand::Rng;
    format!("call-{:016x}", rand::thread_rng().r#gen::<u64>())
}

/// Hub names as Azure accepts them: a letter, then letters, digits or `_`, at most 128.
pub fn is_valid_hub_name(hub: &str) -> bool {
    let mut chars = hub.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && hub.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Hub {
    /// A hub with this configuration and these hub methods ([`crate::hub_methods`]: all of
    /// them).
    ///
    /// # Panics
    /// When the OIDC configuration is unusable; [`Hub::try_new`] returns the error instead.
    pub fn new(config: HubConfig, methods: HubMethods) -> Arc<Self> {
        Self::try_new(config, methods).expect("usable OIDC configuration")
    }

    /// A hub with this configuration and these hub methods: dev sign-in without
    /// `config.oidc`, otherwise the OIDC authority (plus dev sign-in if `dev_auth_with_oidc`).
    pub fn try_new(config: HubConfig, methods: HubMethods) -> Result<Arc<Self>, String> {
        let access_key = AccessKey::new(config.access_key.clone());
        let dev = DevTokens::new(&config.access_key);
        let users = match &config.oidc {
            None => UserAuthenticator::Dev(dev),
            Some(oidc) => UserAuthenticator::Oidc {
                oidc: Arc::new(crate::oidc::OidcTokens::new(oidc.clone())?),
                dev: config.dev_auth_with_oidc.then_some(dev),
            },
        };
        let (shutdown, _) = watch::channel(false);
        let agents = crate::agents::AgentStore::new(config.agents.clone());
        Ok(Arc::new_cyclic(|weak| Hub {
            graph: crate::presence::GraphState::new(&config.graph),
            quotas: crate::quota::Quotas::new(config.quotas),
            methods,
            config,
            access_key,
            users,
            inner: Mutex::new(Inner {
                calls: CallRegistry::new(),
                agents,
                ..Inner::default()
            }),
            shutdown,
            cluster: std::sync::OnceLock::new(),
            presence: std::sync::OnceLock::new(),
            weak: weak.clone(),
        }))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A weak handle on this hub, for timers.
    pub(crate) fn weak(&self) -> Weak<Hub> {
        self.weak.clone()
    }

    /// Joins the Redis cluster at `url` (`--redis`; [`crate::cluster`]). Fails on a malformed
    /// URL or when this hub already joined one.
    pub fn join_cluster(self: &Arc<Self>, url: &str) -> Result<(), String> {
        let weak: Weak<dyn crate::cluster::Node> = self.weak.clone();
        let cluster = crate::cluster::Cluster::start(weak, &self.config.access_key, url)?;
        self.lock().cluster = Some(cluster.clone());
        self.cluster
            .set(cluster)
            .map_err(|_| "this hub already joined a cluster".to_owned())
    }

    /// Sets what takes a presence change another node published (`--redis`; the Graph
    /// stand-in's `replicate`, wired by [`crate::serve`]). A second call changes nothing.
    pub fn on_presence(&self, replicate: PresenceReplicator) {
        let _ = self.presence.set(replicate);
    }

    fn replicate_presence(&self, user: &str, state: &Value) {
        if let Some(replicate) = self.presence.get() {
            replicate(self, user, state);
        }
    }

    /// The cluster this node belongs to (`--redis`), if any.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.cluster.get()
    }

    fn publish(&self, op: impl FnOnce() -> crate::cluster::BusOp) {
        if let Some(cluster) = self.cluster() {
            cluster.publish(op());
        }
    }

    /// This node's live connections, as the cluster records them.
    pub fn local_connections(&self) -> Vec<crate::cluster::Record> {
        self.lock()
            .connections
            .values()
            .map(|c| crate::cluster::Record {
                hub: c.info().hub.clone(),
                user: c.info().user.clone(),
                connection: c.info().connection_id.clone(),
            })
            .collect()
    }

    /// Whether `user` has a live connection to `hub` on another node (`false` without
    /// `--redis`); `Err` while Redis is unreachable.
    pub async fn user_elsewhere(
        &self,
        hub: &str,
        user: &str,
    ) -> Result<bool, crate::cluster::RedisDown> {
        match self.cluster() {
            Some(c) => c.user_elsewhere(hub, user).await,
            None => Ok(false),
        }
    }

    /// Another live node holding a connection of `user` to `hub` (`None` without `--redis`);
    /// it registers a call rung through this node when the user has no connection here.
    pub async fn user_node_elsewhere(
        &self,
        hub: &str,
        user: &str,
    ) -> Result<Option<String>, crate::cluster::RedisDown> {
        match self.cluster() {
            Some(c) => c.user_node_elsewhere(hub, user).await,
            None => Ok(None),
        }
    }

    /// With `--redis`: takes the live calls of `user` over to this node before they connect
    /// here (a negotiate), so that `getCalls`, `acceptCall` and `hangUp` find them
    /// ([`crate::cluster::Cluster::pull_calls`]; a call whose node died continues here).
    pub async fn pull_calls(&self, hub: &str, user: &str) -> Result<(), crate::cluster::RedisDown> {
        let Some(c) = self.cluster() else {
            return Ok(());
        };
        for copy in c.pull_calls(hub, user).await? {
            self.adopt_call(copy);
        }
        Ok(())
    }

    /// Takes over a call from its copy (this node owns it in Redis now): the local registry
    /// has it, its ring timeout runs here for what is left of it, the agent's connections
    /// here hear `CallUpdated`, and an answered call puts the agent on call here.
    pub fn adopt_call(&self, copy: Value) {
        let Some(call) = crate::registry::Call::from_copy(&copy) else {
            return;
        };
        let now = crate::auth::unix_now_ms();
        let mut inner = self.lock();
        let call = inner.calls.adopt(call);
        tracing::info!(call_id = %call.call_id, state = call.state.as_str(), "call taken over from another node");
        inner.announce(&Transition {
            call: call.clone(),
            ended: None,
        });
        if call.state == State::Ringing {
            let deadline = call.created_at + self.config.ring_timeout.as_millis() as u64;
            self.ring_timer(
                call.call_id.clone(),
                call.generation,
                Duration::from_millis(deadline.saturating_sub(now)),
            );
        } else if !call.state.is_final()
            && call.answered_at.is_some()
            && let Some(s) = inner.agents.call_answered(
                &call.agent,
                &call.call_id,
                call.direction == "inbound",
                now,
            )
        {
            inner.agent_changed(&s);
        }
    }

    /// [`Hub::user_connected`] on any node of the cluster.
    pub async fn user_connected_anywhere(
        &self,
        hub: &str,
        user: &str,
    ) -> Result<bool, crate::cluster::RedisDown> {
        if self.user_connected(hub, user) {
            return Ok(true);
        }
        self.user_elsewhere(hub, user).await
    }

    /// [`Hub::connection_exists`] on any node of the cluster.
    pub async fn connection_exists_anywhere(
        &self,
        hub: &str,
        connection_id: &str,
    ) -> Result<bool, crate::cluster::RedisDown> {
        if self.connection_exists(hub, connection_id) {
            return Ok(true);
        }
        match self.cluster() {
            Some(c) => Ok(c.connection_node(hub, connection_id).await?.is_some()),
            None => Ok(false),
        }
    }

    /// [`Hub::group_has_connections`] on any node: a local member connection, or a member
    /// user connected anywhere (a connection added to a group on another node is seen only
    /// through its node; `docs/scale-out.md`).
    pub async fn group_has_connections_anywhere(
        &self,
        hub: &str,
        group: &str,
    ) -> Result<bool, crate::cluster::RedisDown> {
        if self.group_has_connections(hub, group) {
            return Ok(true);
        }
        match self.cluster() {
            Some(c) => c.group_user_elsewhere(hub, group).await,
            None => Ok(false),
        }
    }

    /// [`Hub::close_connection`] on any node (another node's connection is closed by a
    /// backplane command).
    pub async fn close_connection_anywhere(
        &self,
        hub: &str,
        connection_id: &str,
        reason: Option<String>,
    ) -> Result<bool, crate::cluster::RedisDown> {
        if self.close_connection(hub, connection_id, reason.clone()) {
            return Ok(true);
        }
        let Some(c) = self.cluster() else {
            return Ok(false);
        };
        if c.connection_node(hub, connection_id).await?.is_none() {
            return Ok(false);
        }
        c.publish(crate::cluster::BusOp::Close {
            hub: hub.to_ascii_lowercase(),
            connection: connection_id.to_owned(),
            reason,
        });
        Ok(true)
    }

    /// [`Hub::group_add_connection`] on any node.
    pub async fn group_add_connection_anywhere(
        &self,
        hub: &str,
        group: &str,
        connection_id: &str,
    ) -> Result<bool, crate::cluster::RedisDown> {
        if self.group_add_connection(hub, group, connection_id) {
            return Ok(true);
        }
        let Some(c) = self.cluster() else {
            return Ok(false);
        };
        if c.connection_node(hub, connection_id).await?.is_none() {
            return Ok(false);
        }
        c.publish(crate::cluster::BusOp::GroupConnection {
            hub: hub.to_ascii_lowercase(),
            group: group.to_owned(),
            connection: connection_id.to_owned(),
            add: true,
        });
        Ok(true)
    }

    /// Carries out a backplane message from another node on this node's connections only.
    pub fn apply(&self, op: crate::cluster::BusOp) {
        use crate::cluster::BusOp;
        match op {
            BusOp::User {
                hub,
                user,
                target,
                mut arguments,
                owner,
            } => {
                let mut inner = self.lock();
                let ids = inner.user_connections(&hub, &user);
                if ids.is_empty() {
                    return;
                }
                if self.owns(owner.as_deref()) {
                    self.register_incoming_call_argument(
                        &mut inner,
                        &hub,
                        &user,
                        &target,
                        &mut arguments,
                    );
                }
                inner.deliver(&ids, &HubMessage::send(&target, arguments));
            }
            BusOp::Notify {
                hub,
                user,
                message,
                owner,
            } => {
                let mut inner = self.lock();
                let ids = inner.user_connections(&hub, &user);
                if ids.is_empty() {
                    return;
                }
                if self.owns(owner.as_deref())
                    && let Ok(incoming) = IncomingCall::from_seed_message(&message)
                    && let Some(call_id) = incoming.call_id.clone()
                {
                    self.register_call(&mut inner, call_id, &hub, &user, &incoming);
                }
                inner.deliver(
                    &ids,
                    &HubMessage::send("ReceiveNotification", vec![Value::String(message)]),
                );
            }
            BusOp::Connection {
                hub,
                connection,
                target,
                arguments,
            } => {
                if self.connection_exists(&hub, &connection) {
                    self.send_to_connection(&hub, &connection, &target, arguments);
                }
            }
            BusOp::Group {
                hub,
                group,
                target,
                arguments,
            } => {
                let inner = self.lock();
                let ids = inner.group_connections(&hub, &group);
                inner.deliver(&ids, &HubMessage::send(&target, arguments));
            }
            BusOp::All {
                hub,
                target,
                arguments,
            } => {
                self.broadcast_local(&hub, &target, arguments);
            }
            BusOp::Close {
                hub,
                connection,
                reason,
            } => {
                self.close_connection(&hub, &connection, reason);
            }
            BusOp::AbandonCall {
                call_id,
                from,
                request,
            } => {
                if self.call(&call_id).is_none() {
                    return; // not the owner
                }
                let (status, body) = match self.abandon_call(&call_id) {
                    Ok(call) => (200, call.to_json()),
                    Err(e @ CallError::UnknownCall(_)) => (404, json!({"error": e.to_string()})),
                    Err(e) => (409, json!({"error": e.to_string()})),
                };
                if let Some(c) = self.cluster() {
                    c.publish(BusOp::Reply {
                        to: from,
                        request,
                        status,
                        body,
                    });
                }
            }
            BusOp::HandOver {
                call_id,
                from,
                request,
            } => {
                let Some(c) = self.cluster() else { return };
                let Some(call) = self.lock().calls.remove(&call_id) else {
                    return; // not the owner
                };
                tracing::info!(%call_id, to = %from, "call handed over to another node");
                c.hand_over(
                    &call_id,
                    &from,
                    BusOp::Reply {
                        to: from.clone(),
                        request,
                        status: 200,
                        body: call.to_copy(),
                    },
                );
            }
            BusOp::Reply {
                to,
                request,
                status,
                body,
            } => {
                if let Some(c) = self.cluster() {
                    c.reply_arrived(&to, &request, status, body);
                }
            }
            BusOp::Agent { state, node } => {
                let Ok(agent) = serde_json::from_value::<crate::agents::AgentState>(state.clone())
                else {
                    return;
                };
                let mut inner = self.lock();
                inner.remote_presence(&agent.user_id, &state, node.as_deref());
                inner.agents.replicate(agent, crate::auth::unix_now_ms());
                let ids: Vec<String> = inner
                    .groups
                    .keys()
                    .filter(|(_, name)| name == crate::agents::SUPERVISORS_GROUP)
                    .flat_map(|(hub, name)| inner.group_connections(hub, name))
                    .collect();
                inner.deliver(&ids, &HubMessage::send("AgentStateChanged", vec![state]));
            }
            BusOp::Presence { user, state } => {
                self.replicate_presence(&user, &state);
            }
            BusOp::GroupUser {
                hub,
                group,
                user,
                add,
            } => {
                if add {
                    self.group_add_user_local(&hub, &group, &user);
                } else {
                    self.group_remove_user_local(&hub, &group, &user);
                }
            }
            BusOp::GroupConnection {
                hub,
                group,
                connection,
                add,
            } => {
                if add {
                    self.group_add_connection(&hub, &group, &connection);
                } else {
                    self.group_remove_connection_local(&hub, &group, &connection);
                }
            }
        }
    }

    /// Whether this node registers a call a backplane message names `owner` for (no owner
    /// named: every node holding a connection of the user does).
    fn owns(&self, owner: Option<&str>) -> bool {
        match (owner, self.cluster()) {
            (Some(owner), Some(c)) => owner == c.node_id(),
            _ => true,
        }
    }

    /// Whether dev sign-in (`/dev/token`, the simulator without a key) is on.
    pub fn dev_mode(&self) -> bool {
        self.users.dev().is_some()
    }

    /// The hub configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Asks every connection to close with `Close{allowReconnect: true}`.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        // Wakes every session (each looks at `is_shutting_down`; no per-session watch).
        for session in self.lock().sessions.values() {
            session.tell(SessionRequest::Shutdown);
        }
    }

    /// Whether [`Hub::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub(crate) fn subscribe_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Number of live (handshaken) connections.
    pub fn connection_count(&self) -> usize {
        self.lock().connections.len()
    }

    // ----- negotiate -------------------------------------------------------------------------

    /// Records a negotiated connection and returns `(connectionId, connectId)`, where the
    /// connect id is the connection token (negotiate v1) or the connection id (v0). Unused
    /// entries expire after `connection_token_ttl`. `None` when too many are pending.
    pub(crate) fn start_negotiation(
        &self,
        hub: &str,
        user: Option<String>,
        roles: Vec<String>,
        version: u32,
        stateful: bool,
    ) -> Option<(String, String)> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.pending.retain(|_, p| p.expires > now);
        if inner.pending.len() >= MAX_PENDING {
            return None;
        }
        let connection_id = random_id(16);
        let connect_id = if version >= 1 {
            random_id(32)
        } else {
            connection_id.clone()
        };
        inner.pending.insert(
            connect_id.clone(),
            Pending {
                info: ConnectionInfo {
                    connection_id: connection_id.clone(),
                    hub: hub.to_ascii_lowercase(),
                    user,
                    stateful,
                    roles,
                },
                expires: now + self.config.timeouts.connection_token_ttl,
            },
        );
        Some((connection_id, connect_id))
    }

    /// Takes (single use) a pending connection by its connect id, if it is for `hub` and has
    /// not expired.
    pub(crate) fn take_pending(&self, connect_id: &str, hub: &str) -> Option<ConnectionInfo> {
        let mut inner = self.lock();
        let pending = inner.pending.remove(connect_id)?;
        (pending.expires > Instant::now() && pending.info.hub == hub.to_ascii_lowercase())
            .then_some(pending.info)
    }

    /// Records a running session under its connection token (see
    /// [`crate::sessions`]' `add_session`).
    pub(crate) fn store_session(&self, token: Arc<str>, session: Arc<dyn Session>) {
        self.lock().sessions.insert(token, session);
    }

    /// The running session of a connection token.
    pub(crate) fn stored_session(&self, token: &str) -> Option<Arc<dyn Session>> {
        self.lock().sessions.get(token).cloned()
    }

    /// Forgets a session (it ended).
    pub(crate) fn remove_session(&self, token: &str) {
        self.lock().sessions.remove(token);
    }

    /// Dev hook: drops the transport of every session of `connection_id` (or, with `user`,
    /// of every session of that user on any hub) without closing the logical connection; a
    /// stateful-reconnect client comes back to the same connection, others see the transport
    /// close. Returns how many sessions were told.
    pub fn drop_transports(&self, connection_id: Option<&str>, user: Option<&str>) -> usize {
        let inner = self.lock();
        let mut told = 0;
        for session in inner.sessions.values() {
            let info = session.info();
            let hit = connection_id.is_some_and(|c| c == info.connection_id)
                || user.is_some_and(|u| info.user.as_deref() == Some(u));
            if hit && session.tell(SessionRequest::DropTransport) {
                told += 1;
            }
        }
        told
    }

    // ----- connections -----------------------------------------------------------------------

    /// Makes a handshaken connection reachable: hub messages go to the session's outbox
    /// ([`Session::deliver`]).
    pub(crate) fn register(&self, session: Arc<dyn Session>) {
        let info = session.info();
        let mut inner = self.lock();
        if let Some(user) = &info.user {
            inner
                .users
                .entry((info.hub.clone(), user.clone()))
                .or_default()
                .insert(info.connection_id.clone());
        }
        let mut groups = None;
        if info.is_supervisor() {
            let key = (
                info.hub.clone(),
                crate::agents::SUPERVISORS_GROUP.to_owned(),
            );
            if inner.groups.contains_key(&key) || inner.groups.len() < MAX_GROUPS {
                inner
                    .groups
                    .entry(key)
                    .or_default()
                    .connections
                    .insert(info.connection_id.clone());
                groups = Some(Box::new(HashSet::from([
                    crate::agents::SUPERVISORS_GROUP.to_owned()
                ])));
            }
        }
        inner.connections.insert(
            info.connection_id.clone(),
            Connection {
                session: session.clone(),
                groups,
            },
        );
        if let Some(user) = &info.user
            && inner.user_connections(&info.hub, user).len() == 1
        {
            // First connection: supervisors see the agent come online.
            inner.presence_changed(user);
            // --redis: a wrap-up begun on another node (which may have died) ends here too.
            let now = crate::auth::unix_now_ms();
            let state = inner.agents.get(user, now);
            if self.cluster().is_some()
                && state.state == crate::agents::WRAP_UP
                && let (Some(end), Some(call_id)) = (state.wrap_up_ends_at, state.call_id)
            {
                self.wrap_up_timer(user.clone(), call_id, end.saturating_sub(now));
            }
        }
        drop(inner);
        if let Some(cluster) = self.cluster() {
            cluster.add(crate::cluster::Record {
                hub: info.hub.clone(),
                user: info.user.clone(),
                connection: info.connection_id.clone(),
            });
        }
    }

    /// Forgets a connection (it closed).
    pub(crate) fn unregister(&self, connection_id: &str) {
        let mut inner = self.lock();
        let Some(conn) = inner.connections.remove(connection_id) else {
            return;
        };
        if let Some(cluster) = self.cluster() {
            cluster.remove(crate::cluster::Record {
                hub: conn.info().hub.clone(),
                user: conn.info().user.clone(),
                connection: connection_id.to_owned(),
            });
        }
        if let Some(user) = &conn.info().user {
            let key = (conn.info().hub.clone(), user.clone());
            if let Some(set) = inner.users.get_mut(&key) {
                set.remove(connection_id);
                if set.is_empty() {
                    inner.users.remove(&key);
                    inner.presence_changed(user);
                }
            }
        }
        let Connection { session, groups } = conn;
        for group in groups.into_iter().flat_map(|groups| *groups) {
            let key = (session.info().hub.clone(), group);
            if let Some(g) = inner.groups.get_mut(&key) {
                g.connections.remove(connection_id);
                if g.connections.is_empty() && g.users.is_empty() {
                    inner.groups.remove(&key);
                }
            }
        }
    }

    /// Whether `user` has a live connection to `hub` (`HEAD /api/v1/hubs/{hub}/users/{user}`).
    pub fn user_connected(&self, hub: &str, user: &str) -> bool {
        self.lock()
            .users
            .get(&(hub.to_ascii_lowercase(), user.to_owned()))
            .is_some_and(|s| !s.is_empty())
    }

    /// Whether the connection is live on `hub`.
    pub fn connection_exists(&self, hub: &str, connection_id: &str) -> bool {
        self.lock()
            .connections
            .get(connection_id)
            .is_some_and(|c| c.info().hub == hub.to_ascii_lowercase())
    }

    /// Whether any live connection is in the group.
    pub fn group_has_connections(&self, hub: &str, group: &str) -> bool {
        let inner = self.lock();
        !inner
            .group_connections(&hub.to_ascii_lowercase(), group)
            .is_empty()
    }

    /// Closes a connection with a Close message (`DELETE .../connections/{id}`). Whether it
    /// existed.
    pub fn close_connection(&self, hub: &str, connection_id: &str, reason: Option<String>) -> bool {
        let inner = self.lock();
        match inner.connections.get(connection_id) {
            Some(c) if c.info().hub == hub.to_ascii_lowercase() => {
                let _ = c.session.deliver(Outbound::Close {
                    error: reason,
                    allow_reconnect: false,
                });
                true
            }
            _ => false,
        }
    }

    // ----- groups ----------------------------------------------------------------------------

    /// Adds a user (all their present and future connections) to a group. `false` when the
    /// group table is full.
    pub fn group_add_user(&self, hub: &str, group: &str, user: &str) -> bool {
        if !self.group_add_user_local(hub, group, user) {
            return false;
        }
        if let Some(c) = self.cluster() {
            let hub = hub.to_ascii_lowercase();
            c.group_user(&hub, group, user, true);
            c.publish(crate::cluster::BusOp::GroupUser {
                hub,
                group: group.to_owned(),
                user: user.to_owned(),
                add: true,
            });
        }
        true
    }

    fn group_add_user_local(&self, hub: &str, group: &str, user: &str) -> bool {
        let mut inner = self.lock();
        let key = (hub.to_ascii_lowercase(), group.to_owned());
        if !inner.groups.contains_key(&key) && inner.groups.len() >= MAX_GROUPS {
            return false;
        }
        inner
            .groups
            .entry(key)
            .or_default()
            .users
            .insert(user.to_owned());
        true
    }

    /// Removes a user from a group.
    pub fn group_remove_user(&self, hub: &str, group: &str, user: &str) {
        self.group_remove_user_local(hub, group, user);
        if let Some(c) = self.cluster() {
            let hub = hub.to_ascii_lowercase();
            c.group_user(&hub, group, user, false);
            c.publish(crate::cluster::BusOp::GroupUser {
                hub,
                group: group.to_owned(),
                user: user.to_owned(),
                add: false,
            });
        }
    }

    fn group_remove_user_local(&self, hub: &str, group: &str, user: &str) {
        let mut inner = self.lock();
        let key = (hub.to_ascii_lowercase(), group.to_owned());
        if let Some(g) = inner.groups.get_mut(&key) {
            g.users.remove(user);
            if g.users.is_empty() && g.connections.is_empty() {
                inner.groups.remove(&key);
            }
        }
    }

    /// Adds a live connection to a group. `false` when it is not live on `hub` or the group
    /// table is full.
    pub fn group_add_connection(&self, hub: &str, group: &str, connection_id: &str) -> bool {
        let mut inner = self.lock();
        let hub = hub.to_ascii_lowercase();
        let key = (hub.clone(), group.to_owned());
        let live = inner
            .connections
            .get(connection_id)
            .is_some_and(|c| c.info().hub == hub);
        if !live || (!inner.groups.contains_key(&key) && inner.groups.len() >= MAX_GROUPS) {
            return false;
        }
        inner
            .groups
            .entry(key)
            .or_default()
            .connections
            .insert(connection_id.to_owned());
        if let Some(c) = inner.connections.get_mut(connection_id) {
            c.groups.get_or_insert_default().insert(group.to_owned());
        }
        true
    }

    /// Removes a connection from a group.
    pub fn group_remove_connection(&self, hub: &str, group: &str, connection_id: &str) {
        let local = self.connection_exists(hub, connection_id);
        self.group_remove_connection_local(hub, group, connection_id);
        if !local {
            self.publish(|| crate::cluster::BusOp::GroupConnection {
                hub: hub.to_ascii_lowercase(),
                group: group.to_owned(),
                connection: connection_id.to_owned(),
                add: false,
            });
        }
    }

    fn group_remove_connection_local(&self, hub: &str, group: &str, connection_id: &str) {
        let mut inner = self.lock();
        let key = (hub.to_ascii_lowercase(), group.to_owned());
        if let Some(g) = inner.groups.get_mut(&key) {
            g.connections.remove(connection_id);
            if g.users.is_empty() && g.connections.is_empty() {
                inner.groups.remove(&key);
            }
        }
        if let Some(c) = inner.connections.get_mut(connection_id)
            && let Some(groups) = &mut c.groups
        {
            groups.remove(group);
            if groups.is_empty() {
                c.groups = None;
            }
        }
    }

    // ----- sending ---------------------------------------------------------------------------

    /// Sends `target(arguments)` to every live connection of `user` on `hub`; returns how many
    /// connections it was queued for. With `target` `IncomingCall` and a call object as first
    /// argument, the call is registered (a `callId` is added when absent) if the user is
    /// connected.
    pub fn send_to_user(
        &self,
        hub: &str,
        user: &str,
        target: &str,
        arguments: Vec<Value>,
    ) -> usize {
        self.send_to_user_routed(hub, user, target, arguments)
            .unwrap_or(0)
    }

    /// [`Hub::send_to_user`], but an `IncomingCall` with a call object for an agent whose
    /// state takes no calls ([`crate::agents::AgentStore::refusal`]) is refused: nothing is
    /// sent or registered (the REST send answers 409 with the reason).
    pub fn send_to_user_routed(
        &self,
        hub: &str,
        user: &str,
        target: &str,
        arguments: Vec<Value>,
    ) -> Result<usize, Box<crate::agents::Refusal>> {
        self.send_to_user_in_cluster(hub, user, target, arguments, None)
    }

    /// [`Hub::send_to_user_routed`] in a cluster: `elsewhere` names another node where the
    /// user is connected ([`Hub::user_node_elsewhere`]), which counts as connected for the
    /// routing decision and registers the call when the user has no connection here. The
    /// send is also published on the backplane; the returned count is this node's
    /// connections only.
    pub fn send_to_user_in_cluster(
        &self,
        hub: &str,
        user: &str,
        target: &str,
        mut arguments: Vec<Value>,
        elsewhere: Option<String>,
    ) -> Result<usize, Box<crate::agents::Refusal>> {
        let hub = hub.to_ascii_lowercase();
        let mut inner = self.lock();
        let ids = inner.user_connections(&hub, user);
        let is_call = target.eq_ignore_ascii_case("IncomingCall")
            && arguments
                .first()
                .is_some_and(|a| IncomingCall::from_value(a).is_ok());
        if is_call
            && let Some(refusal) = inner.agents.refusal(
                user,
                !ids.is_empty() || elsewhere.is_some(),
                crate::auth::unix_now_ms(),
            )
        {
            return Err(Box::new(refusal));
        }
        let cluster = self.cluster();
        if ids.is_empty() && cluster.is_none() {
            return Ok(0);
        }
        if is_call
            && let Some(object) = arguments.first_mut().and_then(Value::as_object_mut)
            && !object.contains_key("callId")
        {
            object.insert("callId".into(), Value::String(new_call_id()));
        }
        if let Some(c) = cluster {
            let owner = match ids.is_empty() {
                true => elsewhere,
                false => Some(c.node_id().to_owned()),
            };
            c.publish(crate::cluster::BusOp::User {
                hub: hub.clone(),
                user: user.to_owned(),
                target: target.to_owned(),
                arguments: arguments.clone(),
                owner,
            });
        }
        if ids.is_empty() {
            return Ok(0);
        }
        self.register_incoming_call_argument(&mut inner, &hub, user, target, &mut arguments);
        Ok(inner.deliver(&ids, &HubMessage::send(target, arguments)))
    }

    /// Sends `target(arguments)` to the user's connections on this node only (not published):
    /// for pushes every node makes for its own connections (presence).
    pub(crate) fn send_to_user_here(
        &self,
        hub: &str,
        user: &str,
        target: &str,
        arguments: Vec<Value>,
    ) -> usize {
        let inner = self.lock();
        let ids = inner.user_connections(&hub.to_ascii_lowercase(), user);
        inner.deliver(&ids, &HubMessage::send(target, arguments))
    }

    /// Sends to one connection (registering an `IncomingCall` for its user, as above).
    pub fn send_to_connection(
        &self,
        hub: &str,
        connection_id: &str,
        target: &str,
        mut arguments: Vec<Value>,
    ) -> usize {
        let hub = hub.to_ascii_lowercase();
        let mut inner = self.lock();
        let user = match inner.connections.get(connection_id) {
            Some(c) if c.info().hub == hub => c.info().user.clone(),
            _ => {
                drop(inner);
                self.publish(|| crate::cluster::BusOp::Connection {
                    hub,
                    connection: connection_id.to_owned(),
                    target: target.to_owned(),
                    arguments,
                });
                return 0;
            }
        };
        if let Some(user) = user {
            self.register_incoming_call_argument(&mut inner, &hub, &user, target, &mut arguments);
        }
        inner.deliver(
            &[connection_id.to_owned()],
            &HubMessage::send(target, arguments),
        )
    }

    /// Sends to every connection in a group.
    pub fn send_to_group(
        &self,
        hub: &str,
        group: &str,
        target: &str,
        arguments: Vec<Value>,
    ) -> usize {
        let hub = hub.to_ascii_lowercase();
        self.publish(|| crate::cluster::BusOp::Group {
            hub: hub.clone(),
            group: group.to_owned(),
            target: target.to_owned(),
            arguments: arguments.clone(),
        });
        let inner = self.lock();
        let ids = inner.group_connections(&hub, group);
        inner.deliver(&ids, &HubMessage::send(target, arguments))
    }

    /// Sends to every connection of the hub (of every node).
    pub fn broadcast(&self, hub: &str, target: &str, arguments: Vec<Value>) -> usize {
        let hub = hub.to_ascii_lowercase();
        self.publish(|| crate::cluster::BusOp::All {
            hub: hub.clone(),
            target: target.to_owned(),
            arguments: arguments.clone(),
        });
        self.broadcast_local(&hub, target, arguments)
    }

    fn broadcast_local(&self, hub: &str, target: &str, arguments: Vec<Value>) -> usize {
        let hub = hub.to_ascii_lowercase();
        let inner = self.lock();
        let ids: Vec<String> = inner
            .connections
            .values()
            .filter(|c| c.info().hub == hub)
            .map(|c| c.info().connection_id.clone())
            .collect();
        inner.deliver(&ids, &HubMessage::send(target, arguments))
    }

    fn register_incoming_call_argument(
        &self,
        inner: &mut Inner,
        hub: &str,
        user: &str,
        target: &str,
        arguments: &mut [Value],
    ) {
        if !target.eq_ignore_ascii_case("IncomingCall") {
            return;
        }
        let Some(first) = arguments.first_mut() else {
            return;
        };
        let Ok(incoming) = IncomingCall::from_value(first) else {
            return;
        };
        let call_id = match &incoming.call_id {
            Some(id) => id.clone(),
            None => {
                let id = new_call_id();
                if let Some(object) = first.as_object_mut() {
                    object.insert("callId".into(), Value::String(id.clone()));
                }
                id
            }
        };
        self.register_call(inner, call_id, hub, user, &incoming);
    }

    /// The Azure Functions adaptor's `SendMessageToUser` (also the simulator's Ring): sends
    /// `ReceiveNotification(message)` to the user's connections on `hub`. A message that is an
    /// incoming call (`IncomingCall::from_seed_message`) registers a ringing call, with the
    /// message's `callId` or a new one, which is then added to the message text (all other
    /// fields kept as sent). Nothing is sent or registered when the user is not connected.
    pub fn send_message_to_user(&self, hub: &str, user: &str, message: &str) -> Delivery {
        self.send_message_to_user_in_cluster(hub, user, message, None)
    }

    /// [`Hub::send_message_to_user`] in a cluster: `elsewhere` names another node where the
    /// user is connected ([`Hub::user_node_elsewhere`]). The message (with its `callId`) is
    /// also published on the backplane; one node registers (owns) the call: this one when the
    /// user is connected here, else `elsewhere`.
    pub fn send_message_to_user_in_cluster(
        &self,
        hub: &str,
        user: &str,
        message: &str,
        elsewhere: Option<String>,
    ) -> Delivery {
        let hub = hub.to_ascii_lowercase();
        let mut inner = self.lock();
        let ids = inner.user_connections(&hub, user);
        if IncomingCall::from_seed_message(message).is_ok()
            && let Some(refusal) = inner.agents.refusal(
                user,
                !ids.is_empty() || elsewhere.is_some(),
                crate::auth::unix_now_ms(),
            )
        {
            return Delivery::Refused(refusal);
        }
        if ids.is_empty() && elsewhere.is_none() {
            return Delivery::NotConnected;
        }
        let (text, call_id) = match IncomingCall::from_seed_message(message) {
            Ok(incoming) => {
                let (call_id, text) = match &incoming.call_id {
                    Some(id) => (id.clone(), message.to_owned()),
                    None => {
                        let id = new_call_id();
                        let text = add_call_id(message, &id);
                        (id, text)
                    }
                };
                if !ids.is_empty() {
                    self.register_call(&mut inner, call_id.clone(), &hub, user, &incoming);
                }
                (text, Some(call_id))
            }
            Err(_) => (message.to_owned(), None),
        };
        let elsewhere_too = elsewhere.is_some();
        if let Some(owner) = elsewhere
            && let Some(c) = self.cluster()
        {
            let owner = match ids.is_empty() {
                true => owner,
                false => c.node_id().to_owned(),
            };
            c.publish(crate::cluster::BusOp::Notify {
                hub: hub.clone(),
                user: user.to_owned(),
                message: text.clone(),
                owner: Some(owner),
            });
        }
        let taken = inner.deliver(
            &ids,
            &HubMessage::send("ReceiveNotification", vec![Value::String(text)]),
        );
        if taken == 0 && !elsewhere_too {
            return Delivery::NotDelivered;
        }
        Delivery::Delivered { call_id }
    }

    /// Rings `user` with a call the hub places itself (agent-to-agent calls, transfers to a
    /// colleague): registers it and sends `ReceiveNotification(seed message)`, exactly as
    /// `SendMessageToUser` does. `None` (nothing registered) when the user is not connected.
    pub(crate) fn ring_locked(
        &self,
        inner: &mut Inner,
        hub: &str,
        user: &str,
        incoming: &IncomingCall,
    ) -> Option<String> {
        let ids = inner.user_connections(hub, user);
        if ids.is_empty() {
            return None;
        }
        let call_id = incoming.call_id.clone().unwrap_or_else(new_call_id);
        let mut incoming = incoming.clone();
        incoming.call_id = Some(call_id.clone());
        self.register_call(inner, call_id.clone(), hub, user, &incoming);
        inner.deliver(
            &ids,
            &HubMessage::send(
                "ReceiveNotification",
                vec![Value::String(incoming.to_seed_message())],
            ),
        );
        Some(call_id)
    }

    fn register_call(
        &self,
        inner: &mut Inner,
        call_id: String,
        hub: &str,
        user: &str,
        incoming: &IncomingCall,
    ) {
        let now = crate::auth::unix_now_ms();
        let Some(call) = inner
            .calls
            .register(call_id.clone(), hub, user, incoming, now)
        else {
            tracing::warn!(call_id = %call_id, agent = %user, "a repeated ring of a call in progress: the call stays as it is");
            return;
        };
        if let Some(cluster) = &inner.cluster {
            cluster.copy_call(&call);
        }
        inner.agents.offered(user, now);
        tracing::info!(call_id = %call.call_id, agent = %user, "call ringing");
        self.ring_timer(call.call_id, call.generation, self.config.ring_timeout);
    }

    /// The ring backstop: after `after`, the call of this `generation`, if still ringing, is
    /// missed.
    fn ring_timer(&self, call_id: String, generation: u64, after: Duration) {
        let weak = self.weak.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Some(hub) = weak.upgrade() {
                hub.expire_call(&call_id, generation);
            }
        });
    }

    fn expire_call(&self, call_id: &str, generation: u64) {
        let mut inner = self.lock();
        let now = crate::auth::unix_now_ms();
        if let Some(t) = inner.calls.expire(call_id, generation, now) {
            tracing::info!(
                call_id,
                "call missed: nobody answered within the ring timeout"
            );
            self.settle(&mut inner, &t, now);
        }
    }

    /// Announces a transition and carries it over to the other leg of an agent-to-agent call.
    pub(crate) fn settle(&self, inner: &mut Inner, t: &Transition, now: u64) {
        inner.announce(t);
        self.agent_after_call(inner, t, now);
        let Some(peer_id) = t.call.peer.clone() else {
            return;
        };
        let Some(peer) = inner.calls.get(&peer_id).cloned() else {
            return;
        };
        if peer.state.is_final() {
            return;
        }
        let follow = match (t.ended, t.call.state) {
            (None, State::Accepted) if t.call.direction == "inbound" => {
                Some((Signal::Answered, None))
            }
            (Some(reason), _) => {
                if matches!(peer.state, State::Ringing) {
                    // The caller gave up or its call failed: the callee's offer goes away.
                    Some((Signal::HungUp, Some(EndReason::Abandoned)))
                } else if matches!(peer.state, State::Dialling | State::Alerting) {
                    let reason = match reason {
                        EndReason::Rejected | EndReason::Busy => {
                            if t.call.reject_reason == Some(switchboard_core::RejectReason::Busy) {
                                EndReason::Busy
                            } else {
                                EndReason::Rejected
                            }
                        }
                        EndReason::Missed => EndReason::NoAnswer,
                        other => other,
                    };
                    let signal = if reason == EndReason::NoAnswer {
                        Signal::NoAnswer
                    } else {
                        Signal::Busy
                    };
                    Some((signal, Some(reason)))
                } else {
                    Some((Signal::HungUp, Some(EndReason::Completed)))
                }
            }
            _ => None,
        };
        if let Some((signal, reason)) = follow
            && let Some(pt) = inner.calls.telephony(&peer_id, &signal, reason, now)
        {
            // Abandoned ringing offers end as `ended` (as when a caller hangs up).
            let pt = if reason == Some(EndReason::Abandoned) {
                inner
                    .calls
                    .force_state(&peer_id, State::Ended)
                    .unwrap_or(pt)
            } else {
                pt
            };
            inner.announce(&pt);
            self.agent_after_call(inner, &pt, now);
        }
    }

    /// The automatic agent states ([`crate::agents`]): a call answered → `OnCall`; an
    /// answered call ended → `WrapUp` (its timer started here) or back; an inbound offer
    /// missed → counted, `Missed` after enough in a row. Each change goes out as
    /// `AgentStateChanged`.
    fn agent_after_call(&self, inner: &mut Inner, t: &Transition, now: u64) {
        let c = &t.call;
        let inbound = c.direction == "inbound";
        let changed = match (t.ended, c.answered_at) {
            (None, Some(_)) => inner
                .agents
                .call_answered(&c.agent, &c.call_id, inbound, now),
            (Some(_), Some(answered)) => {
                let talk_ms = c.ended_at.unwrap_or(now).saturating_sub(answered);
                let s = inner.agents.call_ended(&c.agent, &c.call_id, talk_ms, now);
                if let Some(end) = s.as_ref().and_then(|s| s.wrap_up_ends_at) {
                    self.wrap_up_timer(c.agent.clone(), c.call_id.clone(), end.saturating_sub(now));
                }
                s
            }
            (Some(EndReason::Missed), None) if inbound => inner.agents.offer_missed(&c.agent, now),
            _ => None,
        };
        if let Some(s) = changed {
            tracing::info!(agent = %s.user_id, state = %s.state, "agent state (automatic)");
            inner.agent_changed(&s);
        }
    }

    /// Ends `call_id`'s wrap-up of `user` after `after_ms` (if it is still going on then).
    fn wrap_up_timer(&self, user: String, call_id: String, after_ms: u64) {
        let weak = self.weak.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            if let Some(hub) = weak.upgrade() {
                hub.wrap_up_due(user, call_id);
            }
        });
    }

    fn wrap_up_due(&self, user: String, call_id: String) {
        let now = crate::auth::unix_now_ms();
        let mut inner = self.lock();
        match inner.agents.end_wrap_up(&user, &call_id, false, now) {
            Some(s) => {
                tracing::info!(agent = %user, state = %s.state, "wrap-up time is over");
                inner.agent_changed(&s);
            }
            None => {
                // The wall clock lags the timer: try again when it says the time is up.
                let s = inner.agents.get(&user, now);
                if let (Some(end), Some(c)) = (s.wrap_up_ends_at, s.call_id.as_deref())
                    && c == call_id
                    && end > now
                {
                    self.wrap_up_timer(user, call_id, end - now);
                }
            }
        }
    }

    // ----- call registry ---------------------------------------------------------------------

    /// A call by id.
    pub fn call(&self, call_id: &str) -> Option<Call> {
        self.lock().calls.get(call_id).cloned()
    }

    /// Up to `limit` calls, newest first.
    pub fn newest_calls(&self, limit: usize) -> Vec<Call> {
        self.lock().calls.newest(limit)
    }

    /// The caller hangs up (simulator): the call ends and the agent gets `CallUpdated` and
    /// `CallEnded(callId, "abandoned")` (or `"completed"` for an answered call).
    pub fn abandon_call(&self, call_id: &str) -> Result<Call, CallError> {
        let mut inner = self.lock();
        let now = crate::auth::unix_now_ms();
        let t = inner.calls.abandon(call_id, now)?;
        self.settle(&mut inner, &t, now);
        Ok(t.call)
    }

    /// Stores a `POST /api/userclient` record (the newest [`MAX_USER_CLIENTS`] are kept; with
    /// `--redis` the newest of each user is also written to `sb:<ns>:userclient:<user>`).
    pub fn record_user_client(&self, record: UserClient) {
        if let (Some(c), Ok(json)) = (self.cluster(), serde_json::to_value(&record)) {
            c.save_user_client(&record.user_id, &json);
        }
        let mut inner = self.lock();
        if inner.user_clients.len() >= MAX_USER_CLIENTS {
            inner.user_clients.pop_front();
        }
        inner.user_clients.push_back(record);
    }

    /// The newest `/api/userclient` record of a user.
    pub fn user_client(&self, user_id: &str) -> Option<UserClient> {
        self.lock()
            .user_clients
            .iter()
            .rev()
            .find(|r| r.user_id == user_id)
            .cloned()
    }

    /// [`Hub::user_client`] on any node: this node's record, else (`--redis`) the one stored
    /// in Redis by any node.
    pub async fn user_client_anywhere(
        &self,
        user_id: &str,
    ) -> Result<Option<UserClient>, crate::cluster::RedisDown> {
        if let Some(record) = self.user_client(user_id) {
            return Ok(Some(record));
        }
        match self.cluster() {
            Some(c) => Ok(c
                .user_client(user_id)
                .await?
                .and_then(|v| serde_json::from_value(v).ok())),
            None => Ok(None),
        }
    }

    // ----- hub methods -----------------------------------------------------------------------

    /// Runs a hub method invoked by a client through the method table; method names are
    /// matched case-insensitively, as ASP.NET Core does. `Ok(None)` is a void completion,
    /// `Ok(Some(v))` a result, `Err(text)` a completion error; an unknown method is
    /// `Unknown hub method 'X'`. The methods: [`crate::calls`] (call control, `getCalls`,
    /// `sendMessage`) and [`crate::graph`] (`subscribePresence`, `unsubscribePresence`).
    pub fn invoke(
        &self,
        conn: &ConnectionInfo,
        target: &str,
        arguments: &[Value],
    ) -> Result<Option<Value>, String> {
        match self.methods.get(target) {
            Some(method) => (method.handler)(self, conn, target, arguments),
            None => Err(format!("Unknown hub method '{target}'")),
        }
    }

    /// Whether `target` names a hub method (case-insensitive).
    pub fn is_hub_method(&self, target: &str) -> bool {
        self.methods.get(target).is_some()
    }

    /// The names of the hub methods clients may invoke, as registered.
    pub fn hub_methods(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.methods.names()
    }

    // ----- quotas ----------------------------------------------------------------------------

    /// The hub's quotas ([`crate::quota`]).
    pub fn quotas(&self) -> &crate::quota::Quotas {
        &self.quotas
    }

    /// Live hub connections of `user` on every hub.
    pub fn user_connection_count(&self, user: &str) -> usize {
        self.lock().connections_of_user(user)
    }

    /// Whether the call registry can take one more call without evicting a live one.
    pub fn calls_have_room(&self) -> bool {
        self.lock().calls.has_room()
    }
}

/// Checks an invocation's argument count; the error names the method and its parameters.
pub(crate) fn expect_args(
    target: &str,
    arguments: &[Value],
    min: usize,
    max: usize,
    shape: &str,
) -> Result<(), String> {
    if (min..=max).contains(&arguments.len()) {
        Ok(())
    } else {
        Err(format!(
            "{target} expects ({shape}) but the invocation provides {} argument(s)",
            arguments.len()
        ))
    }
}

/// Adds `"callId": id` at the end of a JSON object text, leaving the rest byte for byte.
fn add_call_id(message: &str, id: &str) -> String {
    let trimmed = message.trim_end();
    match trimmed.strip_suffix('}') {
        Some(head) => {
            let sep = if head.trim_end().ends_with('{') {
                ""
            } else {
                ","
            };
            format!("{head}{sep}\"callId\":{}}}", Value::String(id.to_owned()))
        }
        None => message.to_owned(),
    }
}

/// A connection's outbox is full: never drop silently; close it (its client reconnects and
/// resyncs with `getCalls`).
fn outbox_overflowed(connection_id: &str, connection: &Connection) {
    crate::metrics::frame_dropped("outbox_full");
    if connection.session.tell(SessionRequest::Overflow) {
        crate::metrics::overflow_close("outbox");
        tracing::warn!(connection_id, "outbox full; closing the connection");
    }
}

impl Inner {
    /// Live connections of `user` on every hub ([`crate::quota`]).
    pub(crate) fn connections_of_user(&self, user: &str) -> usize {
        self.users
            .iter()
            .filter(|((_, u), _)| u == user)
            .map(|(_, set)| set.len())
            .sum()
    }

    pub(crate) fn user_connections(&self, hub: &str, user: &str) -> Vec<String> {
        self.users
            .get(&(hub.to_owned(), user.to_owned()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn group_connections(&self, hub: &str, group: &str) -> Vec<String> {
        let Some(g) = self.groups.get(&(hub.to_owned(), group.to_owned())) else {
            return Vec::new();
        };
        let mut ids: HashSet<String> = g.connections.clone();
        for user in &g.users {
            if let Some(set) = self.users.get(&(hub.to_owned(), user.clone())) {
                ids.extend(set.iter().cloned());
            }
        }
        ids.into_iter().collect()
    }

    /// Queues one message for these connections; returns how many took it.
    fn deliver(&self, ids: &[String], message: &HubMessage) -> usize {
        if ids.is_empty() {
            return 0;
        }
        let message = Arc::new(message.clone());
        let mut delivered = 0;
        for id in ids {
            if let Some(c) = self.connections.get(id) {
                match c.session.deliver(Outbound::Message(message.clone())) {
                    Ok(()) => delivered += 1,
                    Err(crate::mailbox::Refused::Full) => outbox_overflowed(id, c),
                    Err(crate::mailbox::Refused::Closed) => crate::metrics::frame_dropped("closed"),
                }
            }
        }
        crate::metrics::messages_out(delivered as u64);
        delivered
    }

    /// The users with a live connection on `hub`.
    pub(crate) fn connected_users(&self, hub: &str) -> Vec<String> {
        self.users
            .iter()
            .filter(|((h, _), set)| h == hub && !set.is_empty())
            .map(|((_, u), _)| u.clone())
            .collect()
    }

    /// Whether `user` has a live connection on any hub.
    pub(crate) fn user_online(&self, user: &str) -> bool {
        self.users
            .iter()
            .any(|((_, u), set)| u == user && !set.is_empty())
    }

    /// `AgentStateChanged(AgentState + {"connected": bool})` to every connection of the
    /// agent (every hub) and to the group `supervisors` (every hub).
    pub(crate) fn agent_changed(&self, state: &crate::agents::AgentState) {
        self.agent_changed_to(state, true);
    }

    fn agent_changed_to(&self, state: &crate::agents::AgentState, to_user: bool) {
        let mut ids: HashSet<String> = HashSet::new();
        if to_user {
            ids.extend(
                self.users
                    .iter()
                    .filter(|((_, u), _)| u == &state.user_id)
                    .flat_map(|(_, set)| set.iter().cloned()),
            );
        }
        for ((hub, name), _) in self.groups.iter() {
            if name == crate::agents::SUPERVISORS_GROUP {
                ids.extend(self.group_connections(hub, name));
            }
        }
        let mut value = state.to_json();
        value["connected"] = Value::Bool(self.user_online(&state.user_id));
        if let Some(cluster) = &self.cluster {
            let mut stored = value.clone();
            stored["node"] = Value::String(cluster.node_id().to_owned());
            cluster.save_agent(&state.user_id, &stored);
            cluster.publish(crate::cluster::BusOp::Agent {
                state: value.clone(),
                node: Some(cluster.node_id().to_owned()),
            });
        }
        let ids: Vec<String> = ids.into_iter().collect();
        self.deliver(&ids, &HubMessage::send("AgentStateChanged", vec![value]));
    }

    /// Another node's view of whether `user` is connected there (`state["connected"]`):
    /// remembered for `getTeamAgentStates` while that node lives.
    fn remote_presence(&mut self, user: &str, state: &Value, node: Option<&str>) {
        let Some(node) = node else { return };
        if state["connected"] == Value::Bool(true) {
            self.remote_online.insert(user.to_owned(), node.to_owned());
        } else if self.remote_online.get(user).is_some_and(|n| n == node) {
            self.remote_online.remove(user);
        }
    }

    /// Whether `user` is connected here or (`--redis`) on another live node, as that node
    /// last said.
    pub(crate) fn user_online_anywhere(&self, user: &str) -> bool {
        self.user_online(user)
            || self.remote_online.get(user).is_some_and(|node| {
                self.cluster
                    .as_ref()
                    .is_some_and(|c| c.node_id() != node && c.is_live(node))
            })
    }

    /// A user's first connection opened or their last closed: supervisors hear the state
    /// with the new `connected` (the user's own connections do not: nothing changed for them).
    fn presence_changed(&mut self, user: &str) {
        let state = self.agents.get(user, crate::auth::unix_now_ms());
        self.agent_changed_to(&state, false);
    }

    /// `CallUpdated(call)` to the agent's connections and, when the call just ended,
    /// `CallEnded(callId, reason)`.
    pub(crate) fn announce(&self, t: &Transition) {
        if let Some(cluster) = &self.cluster {
            cluster.copy_call(&t.call);
        }
        let ids = self.user_connections(&t.call.hub, &t.call.agent);
        self.deliver(
            &ids,
            &HubMessage::send("CallUpdated", vec![t.call.to_json()]),
        );
        if let Some(reason) = t.ended {
            self.deliver(
                &ids,
                &HubMessage::send(
                    "CallEnded",
                    vec![json!(t.call.call_id), json!(reason.as_str())],
                ),
            );
        }
    }
}

/// Timing knobs of a hub; the defaults follow ASP.NET Core SignalR and Azure SignalR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The handshake must arrive within this (15 s).
    pub handshake: Duration,
    /// A ping is sent after this long without sending (15 s).
    pub keep_alive: Duration,
    /// A connection that sent nothing for this long is closed with `Client timeout` (30 s).
    pub client_timeout: Duration,
    /// A negotiated connection token is good for this long if unused (15 s).
    pub connection_token_ttl: Duration,
    /// Long polling: a poll with nothing to send answers 200 empty after this (90 s, below
    /// the official client's 100 s request timeout; ASP.NET Core's `PollTimeout`).
    pub long_poll: Duration,
    /// Stateful reconnect: how long a dropped WebSocket may take to come back (30 s).
    pub reconnect_window: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(15),
            keep_alive: Duration::from_secs(15),
            client_timeout: Duration::from_secs(30),
            connection_token_ttl: Duration::from_secs(15),
            long_poll: Duration::from_secs(90),
            reconnect_window: Duration::from_secs(30),
        }
    }
}

impl crate::cluster::Node for Hub {
    fn apply(&self, op: crate::cluster::BusOp) {
        Hub::apply(self, op);
    }

    fn local_records(&self) -> Vec<crate::cluster::Record> {
        self.local_connections()
    }

    fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.subscribe_shutdown()
    }

    fn adopt(&self, copy: Value) {
        self.adopt_call(copy);
    }

    fn local_calls(&self) -> Vec<Value> {
        self.lock().calls.all().map(Call::to_copy).collect()
    }

    fn forget_call(&self, call_id: &str) {
        self.lock().calls.remove(call_id);
    }

    fn agent_loaded(&self, stored: Value) {
        let Ok(agent) = serde_json::from_value::<crate::agents::AgentState>(stored.clone()) else {
            return;
        };
        let now = crate::auth::unix_now_ms();
        let mut inner = self.lock();
        if inner.user_online(&agent.user_id) {
            return; // connected here: this node's state is the one that counts
        }
        let user = agent.user_id.clone();
        if inner.agents.replicate_if_newer(agent, now) {
            let node = stored["node"].as_str().map(str::to_owned);
            inner.remote_presence(&user, &stored, node.as_deref());
        }
    }

    fn presence_loaded(&self, user: &str, stored: Value) {
        self.replicate_presence(user, &stored);
    }

    fn local_agents(&self) -> Vec<Value> {
        let now = crate::auth::unix_now_ms();
        let mut inner = self.lock();
        let Some(node) = inner.cluster.as_ref().map(|c| c.node_id().to_owned()) else {
            return Vec::new();
        };
        let mut users: Vec<String> = inner.users.keys().map(|(_, u)| u.clone()).collect();
        users.sort();
        users.dedup();
        users
            .into_iter()
            .map(|user| {
                let mut value = inner.agents.get(&user, now).to_json();
                value["connected"] = Value::Bool(true);
                value["node"] = Value::String(node.clone());
                value
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_id_is_appended_without_touching_the_rest() {
        assert_eq!(
            add_call_id(r#"{"PhoneNumber":"+1555","comments":"x"}"#, "c1"),
            r#"{"PhoneNumber":"+1555","comments":"x","callId":"c1"}"#
        );
        assert_eq!(add_call_id("{ }", "c1"), r#"{ "callId":"c1"}"#);
    }

    #[test]
    fn hub_names() {
        assert!(is_valid_hub_name("switchboard"));
        assert!(is_valid_hub_name("Chat_2"));
        assert!(!is_valid_hub_name("2chat"));
        assert!(!is_valid_hub_name("a-b"));
        assert!(!is_valid_hub_name(""));
    }
}
