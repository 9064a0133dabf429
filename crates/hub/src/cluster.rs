//! Scale-out over Redis (issue 16, `docs/scale-out.md`): hub processes started with the same
//! `--redis URL` and access key act as one hub.
//!
//! - **Heartbeat**: every node writes `sb:<ns>:node:<id>` with `EX 5` every second and its
//!   last beat (unix ms) into the zset `sb:<ns>:nodes`. A node whose key expired is dead: its
//!   connection records no longer count, and the first live node that notices removes them.
//! - **Connection records**: `sb:<ns>:user:<hub>:<user>` (hash connection id → node id) and
//!   `sb:<ns>:conn:<hub>` (hash connection id → node id); `sb:<ns>:nodeconns:<id>` (set of
//!   `hub\nuser\nconnection`) indexes one node's records for cleanup and resync. After Redis
//!   comes back (it may have lost everything), each node rewrites its own records.
//! - **Group users**: `sb:<ns>:groupusers:<hub>:<group>` (set of user ids).
//! - **Calls**: each call has one owner node (`sb:<ns>:callowner:<id>`) that holds it in memory
//!   and writes its copy `sb:<ns>:call:<id>` ([`WRITE_CALL`], fenced by the owner). Ownership
//!   moves only by an atomic compare-and-set ([`CLAIM_CALL`]): to the node where the call's
//!   agent negotiates ([`Cluster::pull_calls`], [`BusOp::HandOver`]), or, when the owner died,
//!   to the live node whose beat claims it first ([`Node::adopt`]; its ring timeout then runs
//!   there).
//! - **Backplane**: one pub/sub channel `sb:<ns>:bus`. Every send (to a user, a group, a
//!   connection, everyone; adaptor, Azure REST or hub-internal) is delivered to this node's
//!   matching connections at once and published as one JSON [`BusOp`]; every other node
//!   delivers it to *its* matching connections (local filtering). Group changes and closes of
//!   another node's connection travel the same way, as commands.
//!
//! `<ns>` is the first 16 hex digits of SHA-256 of the access key: processes sharing a Redis
//! but not a key do not see each other, and the key itself is never written to Redis.
//!
//! While Redis is unreachable (heartbeat failing or the subscription lost) [`Cluster::is_up`]
//! is false: `/healthz` answers 503, `/metrics` shows `switchboard_redis_up 0`, and REST sends
//! and negotiate answer 503 ([`require_redis`]). Messages published while Redis is down are
//! lost (pub/sub is at-most-once); clients resync on reconnect.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;
use tokio::sync::{mpsc, watch};

/// What the cluster needs from the hub node it serves (implemented by [`crate::hub::Hub`]).
pub trait Node: Send + Sync + 'static {
    /// Carries out a backplane message from another node on this node's connections only.
    fn apply(&self, op: BusOp);
    /// This node's live connections.
    fn local_records(&self) -> Vec<Record>;
    /// Turns `true` when the node shuts down.
    fn shutdown_signal(&self) -> watch::Receiver<bool>;
    /// Takes over a call whose copy ([`crate::registry::Call::to_copy`]) this node now owns
    /// in Redis: into the local registry, with its ring timeout running here.
    fn adopt(&self, copy: Value);
    /// The copies of this node's calls (rewritten after Redis comes back).
    fn local_calls(&self) -> Vec<Value>;
    /// Forgets a call another node took over (this node had been taken for dead).
    fn forget_call(&self, call_id: &str);
    /// An agent's state as stored in Redis (`AgentState` + `connected` + `node`), loaded
    /// when the node (re)joins.
    fn agent_loaded(&self, stored: Value);
    /// A user's Graph stand-in presence as stored in Redis, loaded when the node (re)joins.
    fn presence_loaded(&self, user: &str, stored: Value);
    /// The states of the agents connected to this node, as [`Cluster::save_agent`] writes
    /// them (rewritten after Redis comes back).
    fn local_agents(&self) -> Vec<Value>;
}

/// Seconds a node's heartbeat key lives (`EX`); a node silent this long is dead.
pub const NODE_TTL_SECS: u64 = 5;
/// Seconds a call's copy stays in Redis after its last change (a day).
pub const CALL_TTL_SECS: u64 = 86_400;
/// Writes (publishes, records, call copies) waiting for Redis at most.
pub const WRITE_QUEUE: usize = 65_536;
/// How often a node beats.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// One message on the backplane channel: `{"o": <origin node>, "k": <kind>, ...}`
/// (the shapes are in `docs/hub-contract.md`, "Scale-out").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusMessage {
    /// The node that published it (it ignores its own messages).
    #[serde(rename = "o")]
    pub origin: String,
    /// What to do.
    #[serde(flatten)]
    pub op: BusOp,
}

/// What a backplane message asks every node to do with its own connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum BusOp {
    /// `target(arguments)` to the user's connections (an `IncomingCall` call object carries
    /// its `callId`; the node holding the connection registers the call).
    User {
        /// Hub name (lower case).
        hub: String,
        /// User id.
        user: String,
        /// Client method.
        target: String,
        /// Its arguments.
        arguments: Vec<Value>,
        /// The node that registers (owns) the call an `IncomingCall` carries; the others only
        /// deliver. Absent: every node holding a connection of the user registers it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    /// `ReceiveNotification(message)` to the user's connections (the adaptor's
    /// `SendMessageToUser`; an incoming call carries its `callId`).
    Notify {
        /// Hub name.
        hub: String,
        /// User id.
        user: String,
        /// The message text.
        message: String,
        /// The node that registers (owns) the call, as in [`BusOp::User`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    /// `target(arguments)` to one connection.
    Connection {
        /// Hub name.
        hub: String,
        /// Connection id.
        connection: String,
        /// Client method.
        target: String,
        /// Its arguments.
        arguments: Vec<Value>,
    },
    /// `target(arguments)` to every connection in a group.
    Group {
        /// Hub name.
        hub: String,
        /// Group name.
        group: String,
        /// Client method.
        target: String,
        /// Its arguments.
        arguments: Vec<Value>,
    },
    /// `target(arguments)` to every connection of the hub.
    All {
        /// Hub name.
        hub: String,
        /// Client method.
        target: String,
        /// Its arguments.
        arguments: Vec<Value>,
    },
    /// Close a connection with a Close message.
    Close {
        /// Hub name.
        hub: String,
        /// Connection id.
        connection: String,
        /// The Close error text.
        reason: Option<String>,
    },
    /// A user joins (`add`) or leaves a group.
    GroupUser {
        /// Hub name.
        hub: String,
        /// Group name.
        group: String,
        /// User id.
        user: String,
        /// Join (true) or leave.
        add: bool,
    },
    /// An agent's state changed on the node that sent it: take it (routing decisions) and
    /// tell this node's supervisors (`AgentStateChanged`).
    Agent {
        /// The `AgentState` wire object plus `connected` (as the sending node sees it).
        state: Value,
        /// The sending node (`connected` is its view).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// The caller hangs up a call (the simulator's abandon) that another node owns: the node
    /// holding the call carries it out and answers with [`BusOp::Reply`].
    AbandonCall {
        /// The call.
        call_id: String,
        /// The asking node.
        from: String,
        /// Matches the reply.
        request: String,
    },
    /// A node asks the owner of a call to hand it over (its agent connects there): the
    /// owner forgets the call, moves its ownership in Redis to `from` and answers with
    /// [`BusOp::Reply`] `200` and the call's copy.
    HandOver {
        /// The call.
        call_id: String,
        /// The asking node (the new owner).
        from: String,
        /// Matches the reply.
        request: String,
    },
    /// A user's presence in the Graph stand-in changed on the sending node: every other node
    /// takes it (its sessions and preferred presence) and tells its own watchers.
    Presence {
        /// The user id.
        user: String,
        /// Its sessions and preferred presence (`{"sessions": [...], "preferred"?}`).
        state: Value,
    },
    /// The owner's answer to a forwarded request.
    Reply {
        /// The asking node (others ignore the reply).
        to: String,
        /// The request it answers.
        request: String,
        /// HTTP status the asking node answers with.
        status: u16,
        /// The body (the call, or `{"error"}`).
        body: Value,
    },
    /// A connection joins (`add`) or leaves a group.
    GroupConnection {
        /// Hub name.
        hub: String,
        /// Group name.
        group: String,
        /// Connection id.
        connection: String,
        /// Join (true) or leave.
        add: bool,
    },
}

/// Redis is unreachable: the request is refused with 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisDown;

/// A local connection as recorded in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Hub name (lower case).
    pub hub: String,
    /// The user, if the connection has one.
    pub user: Option<String>,
    /// Connection id.
    pub connection: String,
}

impl Record {
    fn member(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.hub,
            self.user.as_deref().unwrap_or(""),
            self.connection
        )
    }

    fn from_member(member: &str) -> Option<Self> {
        let mut parts = member.splitn(3, '\n');
        let hub = parts.next()?.to_owned();
        let user = parts.next()?;
        let connection = parts.next()?.to_owned();
        Some(Self {
            hub,
            user: (!user.is_empty()).then(|| user.to_owned()),
            connection,
        })
    }
}

enum Write {
    Publish(String),
    /// A stand-in presence: `HSET sb:<ns>:presence user json`.
    Presence(String, String),
    /// A `POST /api/userclient` record: `SET sb:<ns>:userclient:<user> json EX`.
    UserClient(String, String),
    /// An agent's state: `HSET sb:<ns>:agents user json`.
    Agent(String, String),
    /// A call's copy, written only while this node owns the call ([`WRITE_CALL`]).
    Call(CallCopy),
    /// Ownership of a call moves from this node to another ([`CLAIM_CALL`]).
    HandOver {
        call_id: String,
        to: String,
    },
    Add(Record),
    Remove(Record),
    GroupUser {
        hub: String,
        group: String,
        user: String,
        add: bool,
    },
}

/// A call's copy to write, with what the keys need.
struct CallCopy {
    id: String,
    hub: String,
    agent: String,
    json: String,
    finished: bool,
}

/// Writes a call's copy if this node owns the call (or nobody does: a new call, or Redis
/// lost it), and keeps the owner and the indexes in step. 1 written, 0 fenced off (another
/// node took the call over; this node's view is stale).
///
/// KEYS: call copy, owner, this node's calls, the agent's live calls.
/// ARGV: copy JSON, this node, TTL seconds, `1` if the call is final, call id.
const WRITE_CALL: &str = r"
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
if ARGV[4] == '1' then
  redis.call('SREM', KEYS[3], ARGV[5])
  redis.call('SREM', KEYS[4], ARGV[5])
else
  redis.call('SADD', KEYS[3], ARGV[5])
  redis.call('SADD', KEYS[4], ARGV[5])
  redis.call('EXPIRE', KEYS[4], ARGV[3])
end
return 1
";

/// Moves a call's ownership from one node to another, if the first still owns it: the
/// atomic claim that lets exactly one node take over a dead node's call. Returns the call's
/// copy, or nil when the call is not (any more) the first node's.
///
/// KEYS: owner, the old owner's calls, the new owner's calls, call copy.
/// ARGV: old owner, new owner, call id, TTL seconds.
const CLAIM_CALL: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[4])
redis.call('SREM', KEYS[2], ARGV[3])
local copy = redis.call('GET', KEYS[4])
if copy then redis.call('SADD', KEYS[3], ARGV[3]) end
return copy
";

/// This node's membership of a Redis-backed cluster (see the module docs).
pub struct Cluster {
    node_id: String,
    prefix: String,
    client: redis::Client,
    conn: ConnectionManager,
    beat_ok: AtomicBool,
    subscribed: AtomicBool,
    /// The nodes whose last beat is younger than the heartbeat TTL (refreshed every beat).
    live_nodes: std::sync::Mutex<std::collections::HashSet<String>>,
    writes: mpsc::Sender<(u64, Write)>,
    /// Number of the last write queued.
    queued: std::sync::atomic::AtomicU64,
    /// Number of the last write Redis took (every write before it too).
    flushed: watch::Sender<u64>,
    replies: std::sync::Mutex<
        std::collections::HashMap<String, tokio::sync::oneshot::Sender<(u16, Value)>>,
    >,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The key prefix `sb:<16 hex digits of SHA-256(access key)>`.
pub fn key_prefix(access_key: &str) -> String {
    let digest = sha2::Sha256::digest(access_key.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("sb:{hex}")
}

impl Cluster {
    /// Joins the cluster at `url` (`redis://host:port[/db]`): connects lazily (a node starts
    /// while Redis is down and reports it), then beats, subscribes and writes records in
    /// background tasks that end when the hub is dropped. Fails only on a malformed URL.
    pub fn start(hub: Weak<dyn Node>, access_key: &str, url: &str) -> Result<Arc<Self>, String> {
        let client = redis::Client::open(url).map_err(|e| format!("--redis {url}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("--redis {url}: {e}"))?;
        let (writes, rx) = mpsc::channel(WRITE_QUEUE);
        let cluster = Arc::new(Self {
            node_id: format!("{:016x}", rand::random::<u64>()),
            prefix: key_prefix(access_key),
            client,
            conn,
            beat_ok: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            live_nodes: std::sync::Mutex::new(std::collections::HashSet::new()),
            writes,
            queued: std::sync::atomic::AtomicU64::new(0),
            flushed: watch::channel(0).0,
            replies: std::sync::Mutex::new(std::collections::HashMap::new()),
        });
        tokio::spawn(heartbeat(cluster.clone(), hub.clone()));
        tokio::spawn(subscribe(cluster.clone(), hub));
        tokio::spawn(writer(cluster.clone(), rx));
        Ok(cluster)
    }

    /// This node's id (random per process).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Whether Redis answers heartbeats and the backplane subscription is live.
    pub fn is_up(&self) -> bool {
        self.beat_ok.load(Ordering::Relaxed) && self.subscribed.load(Ordering::Relaxed)
    }

    fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// Queues a write; when [`WRITE_QUEUE`] writes are already waiting (Redis slow or gone), it
    /// is dropped and Redis counts as down until the next beat resyncs the records.
    fn enqueue(&self, write: Write) {
        let seq = self.queued.fetch_add(1, Ordering::SeqCst) + 1;
        if self.writes.try_send((seq, write)).is_err() {
            crate::metrics::frame_dropped("redis_queue_full");
            self.beat_ok.store(false, Ordering::Relaxed);
        }
    }

    /// Waits (at most `within`) until every write queued so far is in Redis: a hub method
    /// that changed a call answers after this, so that the change survives this node's death.
    /// `false` when Redis did not take them in time.
    pub async fn written(&self, within: Duration) -> bool {
        let seq = self.queued.load(Ordering::SeqCst);
        let mut flushed = self.flushed.subscribe();
        tokio::time::timeout(within, flushed.wait_for(|f| *f >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Whether every write queued so far is in Redis already.
    pub fn all_written(&self) -> bool {
        *self.flushed.borrow() >= self.queued.load(Ordering::SeqCst)
    }

    /// Publishes `op` on the backplane (queued; in order with record writes).
    pub fn publish(&self, op: BusOp) {
        let message = BusMessage {
            origin: self.node_id.clone(),
            op,
        };
        if let Ok(text) = serde_json::to_string(&message) {
            self.enqueue(Write::Publish(text));
        }
    }

    /// Copies a call's state ([`crate::registry::Call::to_copy`]) to `sb:<ns>:call:<id>` with
    /// [`CALL_TTL_SECS`] (queued, in the order of the transitions), if this node owns it.
    pub fn copy_call(&self, call: &crate::registry::Call) {
        self.enqueue(Write::Call(CallCopy {
            id: call.call_id.clone(),
            hub: call.hub.clone(),
            agent: call.agent.clone(),
            json: call.to_copy().to_string(),
            finished: call.state.is_final(),
        }));
    }

    /// Hands a call this node owns over to node `to` (queued after the call's last copy):
    /// ownership moves in Redis, then `reply` is published.
    pub fn hand_over(&self, call_id: &str, to: &str, reply: BusOp) {
        self.enqueue(Write::HandOver {
            call_id: call_id.to_owned(),
            to: to.to_owned(),
        });
        self.publish(reply);
    }

    /// Takes the live calls of `user` that other nodes own over to this node (the user
    /// connects here; a negotiate calls it): each owner that is alive hands its call over
    /// ([`BusOp::HandOver`]); a dead owner's call is claimed atomically ([`CLAIM_CALL`]) once
    /// its heartbeat has expired (at most [`NODE_TTL_SECS`] + 1 s of waiting). Returns the
    /// copies to adopt ([`Node::adopt`]). At most 20 calls.
    pub async fn pull_calls(&self, hub: &str, user: &str) -> Result<Vec<Value>, RedisDown> {
        if !self.is_up() {
            return Err(RedisDown);
        }
        let mut conn = self.conn.clone();
        let hub = hub.to_ascii_lowercase();
        let ids: Vec<String> = conn
            .smembers(self.key(&format!("agentcalls:{hub}:{user}")))
            .await
            .map_err(|_| RedisDown)?;
        let mut copies = Vec::new();
        for id in ids.into_iter().take(20) {
            if let Some(copy) = self.pull_call(&id).await? {
                copies.push(copy);
            }
        }
        Ok(copies)
    }

    async fn pull_call(&self, call_id: &str) -> Result<Option<Value>, RedisDown> {
        let mut conn = self.conn.clone();
        let owner_key = self.key(&format!("callowner:{call_id}"));
        for _ in 0..3 {
            let owner: Option<String> = conn.get(&owner_key).await.map_err(|_| RedisDown)?;
            let Some(owner) = owner.filter(|o| *o != self.node_id) else {
                return Ok(None); // gone, or already here
            };
            if self.alive(std::slice::from_ref(&owner)).await?[0] {
                let answer = self
                    .forward_within(Duration::from_millis(1500), |from, request| {
                        BusOp::HandOver {
                            call_id: call_id.to_owned(),
                            from,
                            request,
                        }
                    })
                    .await?;
                match answer {
                    Some((200, copy)) => return Ok(Some(copy)),
                    Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    None => {
                        // No answer: the owner may have died with its heartbeat still
                        // counting. Wait until it beats again (alive: the call stays
                        // there) or its heartbeat expires (dead: claim it).
                        if !self.await_death(&owner).await? {
                            return Ok(None);
                        }
                    }
                }
                continue;
            }
            if let Some(copy) = self
                .claim(&mut conn, call_id, &owner)
                .await
                .map_err(|_| RedisDown)?
            {
                return Ok(Some(copy));
            }
        }
        Ok(None)
    }

    /// Waits (at most [`NODE_TTL_SECS`] + 1 s) until `node` beats again (`false`: alive) or
    /// its heartbeat key expires (`true`: dead).
    async fn await_death(&self, node: &str) -> Result<bool, RedisDown> {
        let mut conn = self.conn.clone();
        let nodes = self.key("nodes");
        let first: Option<f64> = conn.zscore(&nodes, node).await.map_err(|_| RedisDown)?;
        let until = tokio::time::Instant::now() + Duration::from_secs(NODE_TTL_SECS + 1);
        while tokio::time::Instant::now() < until {
            if !self.alive(&[node.to_owned()]).await?[0] {
                return Ok(true);
            }
            let beat: Option<f64> = conn.zscore(&nodes, node).await.map_err(|_| RedisDown)?;
            if beat != first {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(false)
    }

    /// Claims a call from `from` (a dead node) for this node: the copy when this node won.
    async fn claim(
        &self,
        conn: &mut ConnectionManager,
        call_id: &str,
        from: &str,
    ) -> redis::RedisResult<Option<Value>> {
        let copy: Option<String> = redis::cmd("EVAL")
            .arg(CLAIM_CALL)
            .arg(4)
            .arg(self.key(&format!("callowner:{call_id}")))
            .arg(self.key(&format!("nodecalls:{from}")))
            .arg(self.key(&format!("nodecalls:{}", self.node_id)))
            .arg(self.key(&format!("call:{call_id}")))
            .arg(from)
            .arg(&self.node_id)
            .arg(call_id)
            .arg(CALL_TTL_SECS)
            .query_async(conn)
            .await?;
        Ok(copy.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// The copy of a call another node registered (`None`: no such call).
    pub async fn read_call(&self, call_id: &str) -> Result<Option<Value>, RedisDown> {
        if !self.is_up() {
            return Err(RedisDown);
        }
        let mut conn = self.conn.clone();
        let text: Option<String> = conn
            .get(self.key(&format!("call:{call_id}")))
            .await
            .map_err(|_| RedisDown)?;
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .map(crate::registry::Call::wire_of_copy))
    }

    /// Forwards a request to the node that owns the call and waits (at most 3 s) for its
    /// [`BusOp::Reply`]: `(status, body)`; `None` when no node answered.
    pub async fn forward(
        &self,
        op: impl FnOnce(String, String) -> BusOp,
    ) -> Result<Option<(u16, Value)>, RedisDown> {
        self.forward_within(Duration::from_secs(3), op).await
    }

    /// [`Cluster::forward`], waiting at most `wait`.
    pub async fn forward_within(
        &self,
        wait: Duration,
        op: impl FnOnce(String, String) -> BusOp,
    ) -> Result<Option<(u16, Value)>, RedisDown> {
        if !self.is_up() {
            return Err(RedisDown);
        }
        let request = format!("{:016x}", rand::random::<u64>());
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(request.clone(), tx);
        self.publish(op(self.node_id.clone(), request.clone()));
        let answer = tokio::time::timeout(wait, rx).await;
        self.replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&request);
        Ok(answer.ok().and_then(Result::ok))
    }

    /// Hands a [`BusOp::Reply`] addressed to this node to the waiting [`Cluster::forward`].
    pub fn reply_arrived(&self, to: &str, request: &str, status: u16, body: Value) {
        if to != self.node_id {
            return;
        }
        let waiting = self
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(request);
        if let Some(tx) = waiting {
            let _ = tx.send((status, body));
        }
    }

    /// Stores an agent's state (`AgentState` + `connected` + `node`) in the hash
    /// `sb:<ns>:agents` (queued), so that a node started later knows it.
    pub fn save_agent(&self, user: &str, stored: &Value) {
        self.enqueue(Write::Agent(user.to_owned(), stored.to_string()));
    }

    /// Stores the newest `POST /api/userclient` record of `user` (its JSON; queued; kept a
    /// day).
    pub fn save_user_client(&self, user: &str, record: &Value) {
        self.enqueue(Write::UserClient(user.to_owned(), record.to_string()));
    }

    /// The newest `POST /api/userclient` record (JSON) of a user, written by any node.
    pub async fn user_client(&self, user: &str) -> Result<Option<Value>, RedisDown> {
        if !self.is_up() {
            return Err(RedisDown);
        }
        let mut conn = self.conn.clone();
        let json: Option<String> = conn
            .get(self.key(&format!("userclient:{user}")))
            .await
            .map_err(|_| RedisDown)?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Stores a user's Graph stand-in presence in the hash `sb:<ns>:presence` (queued).
    pub fn save_presence(&self, user: &str, copy: &Value) {
        self.enqueue(Write::Presence(user.to_owned(), copy.to_string()));
    }

    /// Whether `node` beat within the heartbeat TTL at this node's last beat (this node:
    /// always).
    pub fn is_live(&self, node: &str) -> bool {
        node == self.node_id
            || self
                .live_nodes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(node)
    }

    /// A message from `node` arrived: it is alive (until the next beat's refresh says).
    fn heard_from(&self, node: &str) {
        let mut live = self.live_nodes.lock().unwrap_or_else(|e| e.into_inner());
        if !live.contains(node) {
            live.insert(node.to_owned());
        }
    }

    /// Records a local connection (queued).
    pub fn add(&self, record: Record) {
        self.enqueue(Write::Add(record));
    }

    /// Forgets a local connection (queued).
    pub fn remove(&self, record: Record) {
        self.enqueue(Write::Remove(record));
    }

    /// Records a group join or leave of a user (queued).
    pub fn group_user(&self, hub: &str, group: &str, user: &str, add: bool) {
        self.enqueue(Write::GroupUser {
            hub: hub.to_owned(),
            group: group.to_owned(),
            user: user.to_owned(),
            add,
        });
    }

    /// Which of these nodes are alive (their heartbeat key exists), in order.
    async fn alive(&self, nodes: &[String]) -> Result<Vec<bool>, RedisDown> {
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = nodes
            .iter()
            .map(|n| self.key(&format!("node:{n}")))
            .collect();
        let mut conn = self.conn.clone();
        let values: Vec<Option<String>> = conn.mget(&keys).await.map_err(|_| RedisDown)?;
        Ok(values.into_iter().map(|v| v.is_some()).collect())
    }

    /// Whether the user has a connection on another live node.
    pub async fn user_elsewhere(&self, hub: &str, user: &str) -> Result<bool, RedisDown> {
        Ok(self.user_node_elsewhere(hub, user).await?.is_some())
    }

    /// Another live node holding a connection of the user (the smallest node id, so that
    /// every node names the same one), if any.
    pub async fn user_node_elsewhere(
        &self,
        hub: &str,
        user: &str,
    ) -> Result<Option<String>, RedisDown> {
        if !self.is_up() {
            return Err(RedisDown);
        }
        let mut conn = self.conn.clone();
        let key = self.key(&format!("user:{}:{user}", hub.to_ascii_lowercase()));
        let nodes: Vec<String> = conn.hvals(&key).await.map_err(|_| RedisDown)?;
        let mut others: Vec<String> = nodes.into_iter().filter(|n| *n != self.node_id).collect();
        others.sort();
        others.dedup();
        let alive = self.alive(&others).await?;
        Ok(others
            .into_iter()
            .zip(alive)
            .find_map(|(node, alive)| alive.then_some(node)))
    }

    /// The live node other than this one holding the connection, if any.
    pub async fn connection_node(
        &self,
        hub: &str,
        connection: &str,
    ) -> Result<Option<String>, RedisDown> {
        if !self.is_up() {
            return Err(RedisDown);
        }
        let mut conn = self.conn.clone();
        let key = self.key(&format!("conn:{}", hub.to_ascii_lowercase()));
        let node: Option<String> = conn.hget(&key, connection).await.map_err(|_| RedisDown)?;
        let Some(node) = node.filter(|n| *n != self.node_id) else {
            return Ok(None);
        };
        let alive = self.alive(std::slice::from_ref(&node)).await?;
        Ok(alive.first().copied().unwrap_or(false).then_some(node))
    }

    /// Whether some member user of the group is connected on another live node.
    pub async fn group_user_elsewhere(&self, hub: &str, group: &str) -> Result<bool, RedisDown> {
        if !self.is_up() {
            return Err(RedisDown);
        }
        let mut conn = self.conn.clone();
        let hub = hub.to_ascii_lowercase();
        let key = self.key(&format!("groupusers:{hub}:{group}"));
        let users: Vec<String> = conn.smembers(&key).await.map_err(|_| RedisDown)?;
        for user in users.iter().take(1000) {
            if self.user_elsewhere(&hub, user).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The users of the group recorded in Redis (loaded by a node at its first beat).
    async fn group_users(&self, hub_group_key: &str) -> Result<Vec<String>, RedisDown> {
        let mut conn = self.conn.clone();
        conn.smembers(hub_group_key).await.map_err(|_| RedisDown)
    }

    /// Adds the commands of one write to a pipeline.
    fn queue(&self, pipe: &mut redis::Pipeline, write: Write) {
        match write {
            Write::Publish(text) => {
                pipe.publish(self.key("bus"), text).ignore();
            }
            Write::UserClient(user, json) => {
                pipe.set_ex(self.key(&format!("userclient:{user}")), json, CALL_TTL_SECS)
                    .ignore();
            }
            Write::Presence(user, json) => {
                pipe.hset(self.key("presence"), user, json).ignore();
            }
            Write::Agent(user, json) => {
                pipe.hset(self.key("agents"), user, json).ignore();
            }
            Write::Call(c) => {
                self.add_write_call(pipe, c);
                pipe.ignore();
            }
            Write::HandOver { call_id, to } => {
                pipe.cmd("EVAL")
                    .arg(CLAIM_CALL)
                    .arg(4)
                    .arg(self.key(&format!("callowner:{call_id}")))
                    .arg(self.key(&format!("nodecalls:{}", self.node_id)))
                    .arg(self.key(&format!("nodecalls:{to}")))
                    .arg(self.key(&format!("call:{call_id}")))
                    .arg(&self.node_id)
                    .arg(to)
                    .arg(call_id)
                    .arg(CALL_TTL_SECS)
                    .ignore();
            }
            Write::Add(record) => {
                if let Some(user) = &record.user {
                    pipe.hset(
                        self.key(&format!("user:{}:{user}", record.hub)),
                        &record.connection,
                        &self.node_id,
                    )
                    .ignore();
                }
                pipe.hset(
                    self.key(&format!("conn:{}", record.hub)),
                    &record.connection,
                    &self.node_id,
                )
                .ignore()
                .sadd(
                    self.key(&format!("nodeconns:{}", self.node_id)),
                    record.member(),
                )
                .ignore();
            }
            Write::Remove(record) => {
                self.queue_removal(pipe, &self.node_id, &record);
            }
            Write::GroupUser {
                hub,
                group,
                user,
                add,
            } => {
                let key = self.key(&format!("groupusers:{hub}:{group}"));
                if add {
                    pipe.sadd(key, user).ignore();
                } else {
                    pipe.srem(key, user).ignore();
                }
            }
        }
    }

    /// Adds [`WRITE_CALL`] for this copy (its reply: 1 written, 0 fenced off).
    fn add_write_call(&self, pipe: &mut redis::Pipeline, c: CallCopy) {
        pipe.cmd("EVAL")
            .arg(WRITE_CALL)
            .arg(4)
            .arg(self.key(&format!("call:{}", c.id)))
            .arg(self.key(&format!("callowner:{}", c.id)))
            .arg(self.key(&format!("nodecalls:{}", self.node_id)))
            .arg(self.key(&format!("agentcalls:{}:{}", c.hub, c.agent)))
            .arg(c.json)
            .arg(&self.node_id)
            .arg(CALL_TTL_SECS)
            .arg(if c.finished { "1" } else { "0" })
            .arg(c.id);
    }

    /// Sends these writes as one pipeline (in order).
    async fn write_all(&self, writes: Vec<Write>) -> redis::RedisResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for write in writes {
            self.queue(&mut pipe, write);
        }
        let mut conn = self.conn.clone();
        pipe.query_async(&mut conn).await
    }

    fn queue_removal(&self, pipe: &mut redis::Pipeline, node: &str, record: &Record) {
        if let Some(user) = &record.user {
            pipe.hdel(
                self.key(&format!("user:{}:{user}", record.hub)),
                &record.connection,
            )
            .ignore();
        }
        pipe.hdel(
            self.key(&format!("conn:{}", record.hub)),
            &record.connection,
        )
        .ignore()
        .srem(self.key(&format!("nodeconns:{node}")), record.member())
        .ignore();
    }

    async fn remove_records(
        &self,
        conn: &mut ConnectionManager,
        node: &str,
        records: &[Record],
    ) -> redis::RedisResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for record in records {
            self.queue_removal(&mut pipe, node, record);
        }
        pipe.query_async(conn).await
    }

    /// Rewrites this node's records from `local` and the copies of its calls (after a start
    /// or a Redis outage). Returns the ids of the calls another node owns now (this node was
    /// taken for dead meanwhile): they are no longer this node's to run.
    async fn resync(
        &self,
        local: Vec<Record>,
        calls: Vec<Value>,
        agents: Vec<Value>,
    ) -> redis::RedisResult<Vec<String>> {
        let mut conn = self.conn.clone();
        let index = self.key(&format!("nodeconns:{}", self.node_id));
        let old: Vec<String> = conn.smembers(&index).await?;
        let old: Vec<Record> = old.iter().filter_map(|m| Record::from_member(m)).collect();
        self.remove_records(&mut conn, &self.node_id.clone(), &old)
            .await?;
        for chunk in local.chunks(500) {
            self.write_all(chunk.iter().cloned().map(Write::Add).collect())
                .await?;
        }
        let calls: Vec<crate::registry::Call> = calls
            .iter()
            .filter_map(crate::registry::Call::from_copy)
            .collect();
        let mut lost = Vec::new();
        for chunk in calls.chunks(500) {
            let mut pipe = redis::pipe();
            for call in chunk {
                self.add_write_call(
                    &mut pipe,
                    CallCopy {
                        id: call.call_id.clone(),
                        hub: call.hub.clone(),
                        agent: call.agent.clone(),
                        json: call.to_copy().to_string(),
                        finished: call.state.is_final(),
                    },
                );
            }
            let written: Vec<i64> = pipe.query_async(&mut conn).await?;
            lost.extend(
                chunk
                    .iter()
                    .zip(written)
                    .filter(|(_, w)| *w == 0)
                    .map(|(c, _)| c.call_id.clone()),
            );
        }
        let agents: Vec<Write> = agents
            .iter()
            .filter_map(|a| {
                let user = a.get("userId")?.as_str()?.to_owned();
                Some(Write::Agent(user, a.to_string()))
            })
            .collect();
        self.write_all(agents).await?;
        Ok(lost)
    }

    /// Refreshes [`Cluster::is_live`]'s view from `sb:<ns>:nodes`.
    async fn refresh_live_nodes(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let since = crate::auth::unix_now_ms() as i64 - (NODE_TTL_SECS as i64) * 1000;
        let live: Vec<String> = conn.zrangebyscore(self.key("nodes"), since, "+inf").await?;
        *self.live_nodes.lock().unwrap_or_else(|e| e.into_inner()) = live.into_iter().collect();
        Ok(())
    }

    /// Removes the records of nodes whose heartbeat expired and takes over their calls.
    async fn reap(&self, hub: &Weak<dyn Node>) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let now = crate::auth::unix_now_ms() as i64;
        let stale: Vec<String> = conn
            .zrangebyscore(
                self.key("nodes"),
                "-inf",
                now - (NODE_TTL_SECS as i64) * 1000,
            )
            .await?;
        for node in stale.into_iter().take(16) {
            let exists: bool = conn.exists(self.key(&format!("node:{node}"))).await?;
            if exists {
                continue;
            }
            let index = self.key(&format!("nodeconns:{node}"));
            let members: Vec<String> = conn.smembers(&index).await?;
            let records: Vec<Record> = members
                .iter()
                .filter_map(|m| Record::from_member(m))
                .collect();
            self.remove_records(&mut conn, &node, &records).await?;
            let calls_key = self.key(&format!("nodecalls:{node}"));
            let calls: Vec<String> = conn.smembers(&calls_key).await?;
            let mut taken = 0;
            for id in calls.iter().take(10_000) {
                // Exactly one live node wins each call and runs it from now on.
                if let Some(copy) = self.claim(&mut conn, id, &node).await? {
                    taken += 1;
                    if let Some(h) = hub.upgrade() {
                        h.adopt(copy);
                    }
                }
            }
            let _: () = redis::pipe()
                .del(&index)
                .del(&calls_key)
                .zrem(self.key("nodes"), &node)
                .query_async(&mut conn)
                .await?;
            tracing::info!(%node, connections = records.len(), calls = taken, "cluster: removed a dead node's connections and took over its calls");
        }
        Ok(())
    }
}

async fn heartbeat(cluster: Arc<Cluster>, hub: Weak<dyn Node>) {
    let mut synced = false;
    let mut shutdown = match hub.upgrade() {
        Some(h) => h.shutdown_signal(),
        None => return,
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(h) = hub.upgrade() else { return };
        let mut conn = cluster.conn.clone();
        // `SET … GET`: the previous beat's key. Gone means Redis lost this node's state (a
        // restart, even one too quick to fail a beat, or this node was silent long enough to
        // be reaped): everything is rewritten.
        let beat: redis::RedisResult<(Option<String>, i64)> = redis::pipe()
            .cmd("SET")
            .arg(cluster.key(&format!("node:{}", cluster.node_id)))
            .arg(1)
            .arg("EX")
            .arg(NODE_TTL_SECS)
            .arg("GET")
            .zadd(
                cluster.key("nodes"),
                &cluster.node_id,
                crate::auth::unix_now_ms() as i64,
            )
            .query_async(&mut conn)
            .await;
        match beat {
            Ok((previous, _)) => {
                if previous.is_none() && synced {
                    tracing::warn!("cluster: Redis lost this node's state; rewriting it");
                    synced = false;
                }
                let _ = cluster.refresh_live_nodes().await;
                // A write that failed since (the writer marked Redis down) may be lost:
                // rewrite everything, as after an outage.
                if !cluster.beat_ok.load(Ordering::Relaxed) {
                    synced = false;
                }
                if !synced {
                    let local = h.local_records();
                    let calls = h.local_calls();
                    let agents = h.local_agents();
                    match cluster.resync(local, calls, agents).await {
                        Ok(lost) => {
                            synced = true;
                            for id in lost {
                                tracing::warn!(call_id = %id, "cluster: another node took this call over meanwhile; forgetting it here");
                                h.forget_call(&id);
                            }
                        }
                        Err(_) => synced = false,
                    }
                    if synced {
                        load_groups(&cluster, h.as_ref()).await;
                        load_agents(&cluster, h.as_ref()).await;
                        load_presence(&cluster, h.as_ref()).await;
                    }
                }
                let was = cluster.beat_ok.swap(synced, Ordering::Relaxed);
                if !was && synced {
                    tracing::info!(node = %cluster.node_id, "cluster: Redis reachable");
                }
                let _ = cluster.reap(&hub).await;
            }
            Err(e) => {
                if cluster.beat_ok.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cluster: Redis unreachable");
                }
                synced = false;
            }
        }
        drop(h);
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Loads the agent states stored in Redis into the local agent store.
async fn load_agents(cluster: &Cluster, hub: &dyn Node) {
    let mut conn = cluster.conn.clone();
    let all: std::collections::HashMap<String, String> =
        match conn.hgetall(cluster.key("agents")).await {
            Ok(all) => all,
            Err(_) => return,
        };
    for json in all.into_values().take(100_000) {
        if let Ok(value) = serde_json::from_str::<Value>(&json) {
            hub.agent_loaded(value);
        }
    }
}

/// Loads the Graph stand-in presences stored in Redis.
async fn load_presence(cluster: &Cluster, hub: &dyn Node) {
    let mut conn = cluster.conn.clone();
    let all: std::collections::HashMap<String, String> =
        match conn.hgetall(cluster.key("presence")).await {
            Ok(all) => all,
            Err(_) => return,
        };
    for (user, json) in all.into_iter().take(100_000) {
        if let Ok(value) = serde_json::from_str::<Value>(&json) {
            hub.presence_loaded(&user, value);
        }
    }
}

/// Loads the group users recorded in Redis into the local group table.
async fn load_groups(cluster: &Cluster, hub: &dyn Node) {
    let mut conn = cluster.conn.clone();
    let pattern = cluster.key("groupusers:*");
    let keys: Vec<String> = match conn.keys(&pattern).await {
        Ok(k) => k,
        Err(_) => return,
    };
    let head = cluster.key("groupusers:");
    for key in keys.into_iter().take(10_000) {
        let Some(rest) = key.strip_prefix(&head) else {
            continue;
        };
        let Some((hub_name, group)) = rest.split_once(':') else {
            continue;
        };
        if let Ok(users) = cluster.group_users(&key).await {
            for user in users {
                hub.apply(BusOp::GroupUser {
                    hub: hub_name.to_owned(),
                    group: group.to_owned(),
                    user,
                    add: true,
                });
            }
        }
    }
}

async fn subscribe(cluster: Arc<Cluster>, hub: Weak<dyn Node>) {
    let channel = cluster.key("bus");
    let mut shutdown = match hub.upgrade() {
        Some(h) => h.shutdown_signal(),
        None => return,
    };
    loop {
        if *shutdown.borrow() || hub.strong_count() == 0 {
            return;
        }
        let pubsub = tokio::time::timeout(Duration::from_secs(2), async {
            let mut pubsub = cluster.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        if let Ok(Ok(mut pubsub)) = pubsub {
            cluster.subscribed.store(true, Ordering::Relaxed);
            let mut stream = pubsub.on_message();
            loop {
                tokio::select! {
                    message = stream.next() => {
                        let Some(message) = message else { break };
                        let Some(h) = hub.upgrade() else { return };
                        match serde_json::from_slice::<BusMessage>(message.get_payload_bytes()) {
                            Ok(m) if m.origin != cluster.node_id => {
                                cluster.heard_from(&m.origin);
                                h.apply(m.op)
                            }
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "cluster: malformed backplane message"),
                        }
                    }
                    _ = shutdown.changed() => return,
                }
            }
            cluster.subscribed.store(false, Ordering::Relaxed);
            tracing::warn!("cluster: backplane subscription lost");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn writer(cluster: Arc<Cluster>, mut rx: mpsc::Receiver<(u64, Write)>) {
    // Everything queued meanwhile goes out as one pipeline (at most 512 writes), in order.
    while let Some((mut last, first)) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 512
            && let Ok((seq, write)) = rx.try_recv()
        {
            last = seq;
            batch.push(write);
        }
        let result = cluster.write_all(batch).await;
        if result.is_ok() {
            cluster.flushed.send_if_modified(|f| {
                let newer = last > *f;
                if newer {
                    *f = last;
                }
                newer
            });
        }
        if let Err(e) = result {
            // Records are rewritten by the heartbeat's resync once Redis answers again.
            tracing::debug!(error = %e, "cluster: write to Redis failed");
            cluster.beat_ok.store(false, Ordering::Relaxed);
        }
    }
}

/// `503 {"error": "..."}`: Redis is unreachable.
pub fn redis_down_response() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "2")],
        axum::Json(serde_json::json!({
            "error": "Redis is unreachable: this hub node cannot answer for the cluster; retry"
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_messages_have_the_documented_shape() {
        let m = BusMessage {
            origin: "n1".into(),
            op: BusOp::User {
                hub: "switchboard".into(),
                user: "alice".into(),
                target: "T".into(),
                arguments: vec![Value::from(1)],
                owner: None,
            },
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"o":"n1","k":"user","hub":"switchboard","user":"alice","target":"T","arguments":[1]})
        );
        let c: BusMessage = serde_json::from_value(serde_json::json!(
            {"o":"n2","k":"groupConnection","hub":"h","group":"g","connection":"c","add":true}
        ))
        .unwrap();
        assert!(matches!(c.op, BusOp::GroupConnection { add: true, .. }));
    }

    #[test]
    fn records_round_trip_and_prefix_hides_the_key() {
        let r = Record {
            hub: "h".into(),
            user: None,
            connection: "c".into(),
        };
        assert_eq!(Record::from_member(&r.member()), Some(r));
        let p = key_prefix("secret");
        assert!(p.starts_with("sb:") && p.len() == 19 && !p.contains("secret"));
    }
}
