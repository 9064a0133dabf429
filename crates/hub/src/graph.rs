//! A local stand-in for Microsoft Graph presence (dev mode), so the widget's presence code runs
//! against the hub exactly as against `https://graph.microsoft.com/v1.0` (competitors.md §6.1;
//! Graph `resources/presence.md`, `presence-get`, `presence-setpresence`,
//! `presence-clearpresence`, `presence-setuserpreferredpresence`,
//! `presence-clearuserpreferredpresence`, `cloudcommunications-getpresencesbyuserid`).
//!
//! Routes under [`GraphConfig::base_path`] (default `/graph/v1.0`), each with
//! `Authorization: Bearer <dev user token>`:
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /me/presence` | — | `{"id","availability","activity"}` |
//! | `GET /users/{id}/presence` | — | the same; 404 unknown user |
//! | `POST /communications/getPresencesByUserId` | `{"ids": [...]}` (≤ 650) | `{"value": [presence...]}` (unknown ids left out) |
//! | `POST /users/{id}/presence/setPresence` | `{"sessionId","availability","activity","expirationDuration"?}` | 200 |
//! | `POST /users/{id}/presence/clearPresence` | `{"sessionId"}` | 200; 404 no such session |
//! | `POST /users/{id}/presence/setUserPreferredPresence` | `{"availability","activity","expirationDuration"?}` | 200 |
//! | `POST /users/{id}/presence/clearUserPreferredPresence` | `{}` | 200 |
//! | `GET /users?$top=N&$skiptoken=K` | — | the demo directory `{"value": [{"id","displayName","userPrincipalName"}], "@odata.nextLink"?}` |
//! | `GET /users/{id or UPN}` | — | `{"id","displayName","userPrincipalName"}`; 404 unknown |
//! | `GET /groups/{id}/members?$top=N&$skiptoken=K` | — | the group's members as for `/users`, [`MEMBERS_PAGE`] a page unless `$top` (1–999) says otherwise; 404 unknown group. `$select` is accepted (the three fields are always there) |
//!
//! Errors have Graph's shape `{"error": {"code", "message"}}`: 400 `BadRequest`, 401
//! `InvalidAuthenticationToken`, 403 `Forbidden` (writing another user's presence: delegated
//! `Presence.ReadWrite` covers only the caller), 404 `ItemNotFound`, 429 `TooManyRequests` with
//! `Retry-After: <seconds>` beyond [`GraphConfig::rate_limit`] requests per
//! [`GraphConfig::rate_window`] per user.
//!
//! **Aggregation** (Graph "manage presence state" rules, simplified): expired sessions and an
//! expired preferred presence are dropped; no session left → `Offline`/`Offline`; otherwise a
//! preferred presence wins; otherwise the "busiest" session wins, DoNotDisturb > Busy >
//! Available > Away/BeRightBack > Offline/PresenceUnknown (idle variants rank as their base),
//! the newest on a tie. Not modelled: an `Available` app session decaying to Away after 5 min.
//! The Teams client itself is the session `teams-client` (set by the simulator).
//!
//! **Pushes**: a connection's user subscribes with the hub method `subscribePresence(ids)`;
//! whenever the aggregated presence of a watched user changes (a write, the simulator, or an
//! expiry), the hub sends `PresenceChanged({"id","availability","activity"})` to every live
//! connection of every subscribed user.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use switchboard_core::presence::mapping::{is_preferred_combination, is_session_combination};
use switchboard_core::presence::{
    Activity, Availability, MAX_IDS_PER_REQUEST, Presence, parse_iso_duration,
};

use crate::access::Authorized;
use crate::auth::{is_valid_user_name, unix_now_ms};
pub use crate::graph_access::{GraphCaller, GraphError};
use crate::graph_access::{bad, error};
use crate::hub::{ConnectionInfo, Hub, HubMethods};
pub use crate::presence::{
    AGENTS_GROUP, AGENTS_GROUP_SIZE, GraphConfig, GraphState, MAX_SESSION_EXPIRATION_MS,
    MAX_SESSIONS, MAX_SUBSCRIBERS, MAX_USERS, MAX_WATCHED_PER_USER, TEAMS_CLIENT_SESSION,
    colleague_id,
};
use crate::presence::{
    Change, OFFLINE, Session, UPN_SUFFIX, UserPresence, changed, group_member_ids, wire,
};

/// Applies a change, then pushes `PresenceChanged` if the aggregate moved and arms a timer for
/// the next expiry. `Err(())` for `ClearSession` of an unknown session.
fn apply(hub: &Arc<Hub>, id: &str, change: Change) -> Result<(), ()> {
    let now = unix_now_ms();
    let graph = &hub.graph;
    let (pushed, expiry, copy) = {
        let mut inner = graph.lock();
        if !inner.users.contains_key(id) && inner.users.len() >= MAX_USERS {
            return Ok(());
        }
        let user = inner.users.entry(id.to_owned()).or_default();
        user.aggregate(now);
        match change {
            Change::Session(s) => {
                user.sessions.retain(|x| x.id != s.id);
                if user.sessions.len() >= MAX_SESSIONS {
                    user.sessions.remove(0);
                }
                user.sessions.push(s);
            }
            Change::ClearSession(sid) => {
                let before = user.sessions.len();
                user.sessions.retain(|x| x.id != sid);
                if user.sessions.len() == before {
                    return Err(());
                }
            }
            Change::Preferred(p, expires) => user.preferred = Some((p, expires)),
            Change::ClearPreferred => user.preferred = None,
        }
        let expiry = user.next_expiry();
        let copy = hub.cluster().map(|_| user.to_copy());
        (changed(&mut inner, id, now), expiry, copy)
    };
    if let (Some(copy), Some(cluster)) = (copy, hub.cluster()) {
        // --redis: the other nodes take the user's presence (and push to their watchers).
        cluster.save_presence(id, &copy);
        cluster.publish(crate::cluster::BusOp::Presence {
            user: id.to_owned(),
            state: copy,
        });
    }
    if let Some((message, to)) = pushed {
        push(hub, id, message, to);
    }
    if let Some(at) = expiry {
        schedule_refresh(Arc::downgrade(hub), id.to_owned(), at);
    }
    Ok(())
}

/// A stand-in user's aggregate moved: this node's Graph subscriptions are notified
/// ([`crate::graph_subscriptions::notify`]); this node's `subscribePresence` watchers get
/// `PresenceChanged` on their connections here (with `--redis` every node does the same for
/// its own, [`replicate`]), unless this hub reads presence from real Graph
/// ([`crate::graph_link`] pushes then).
fn push(hub: &Hub, id: &str, presence: Value, to: Vec<(String, String)>) {
    crate::graph_subscriptions::notify(hub, id);
    if push_mode(hub) != "stand-in" {
        return;
    }
    for (hub_name, user) in to {
        hub.send_to_user_here(&hub_name, &user, "PresenceChanged", vec![presence.clone()]);
    }
}

/// `--redis`: another node changed (or Redis holds) a stand-in user's presence: it replaces
/// this node's, and if the aggregate moved, this node's watchers and Graph subscriptions hear
/// it; its expiry is timed here too.
pub fn replicate(hub: &Hub, id: &str, copy: &Value) {
    let Some(state) = UserPresence::from_copy(copy) else {
        return;
    };
    let now = unix_now_ms();
    let (pushed, expiry) = {
        let mut inner = hub.graph.lock();
        if !inner.users.contains_key(id) && inner.users.len() >= MAX_USERS {
            return;
        }
        let user = inner.users.entry(id.to_owned()).or_default();
        user.sessions = state.sessions;
        user.preferred = state.preferred;
        let expiry = user.next_expiry();
        (changed(&mut inner, id, now), expiry)
    };
    if let Some((message, to)) = pushed {
        push(hub, id, message, to);
    }
    if let Some(at) = expiry {
        schedule_refresh(hub.weak(), id.to_owned(), at);
    }
}

/// Expiries further away than this are not timed (they are still applied on every read).
const MAX_TIMED_EXPIRY_MS: u64 = 31 * 86_400_000;

fn schedule_refresh(hub: Weak<Hub>, id: String, at: u64) {
    let delay = at.saturating_sub(unix_now_ms());
    if delay > MAX_TIMED_EXPIRY_MS {
        return;
    }
    let delay = delay + 5;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let Some(hub) = hub.upgrade() else { return };
        let now = unix_now_ms();
        let (pushed, next) = {
            let mut inner = hub.graph.lock();
            let pushed = changed(&mut inner, &id, now);
            let next = inner.users.get(&id).and_then(UserPresence::next_expiry);
            (pushed, next)
        };
        if let Some((message, to)) = pushed {
            push(&hub, &id, message, to);
        }
        // A later expiry (another session) arms its own timer; bounded by the writes.
        if let Some(next) = next.filter(|n| *n > at) {
            schedule_refresh(Arc::downgrade(&hub), id, next);
        }
    });
}

/// The simulator's "Teams presence" control: sets the user's Teams client session (or, with
/// `preferred`, the status the user picked in Teams; no Graph combination rules apply) as if
/// it came from Teams. `Offline` as a session removes the Teams client session. Pushes
/// `PresenceChanged` when the aggregate moves; answers the new aggregate.
pub fn simulate(hub: &Arc<Hub>, id: &str, presence: Presence, preferred: bool) -> Value {
    let change = match (preferred, presence.availability) {
        (true, _) => Change::Preferred(presence, u64::MAX),
        (false, Availability::Offline) => Change::ClearSession(TEAMS_CLIENT_SESSION.into()),
        (false, _) => Change::Session(Session {
            id: TEAMS_CLIENT_SESSION.into(),
            presence,
            expires: None,
            set_at: unix_now_ms(),
        }),
    };
    let _ = apply(hub, id, change);
    hub.graph
        .presence_json(id)
        .unwrap_or_else(|| wire(id, OFFLINE))
}

// ----- hub methods ---------------------------------------------------------------------------

/// How `PresenceChanged` reaches a `subscribePresence` watcher, as the answer's `push` says:
/// `"subscriptions"` (real Graph change notifications through [`crate::graph_link`], the hub
/// has app credentials), `"stand-in"` (dev mode: the stand-in pushes its own changes), `"none"`
/// (nothing pushes: no credentials and no stand-in, or `--graph-stand-in-push off`; the widget
/// must poll `getPresencesByUserId`).
pub fn push_mode(hub: &Hub) -> &'static str {
    if hub.graph.link().is_some() {
        "subscriptions"
    } else if hub.dev_mode() && hub.graph.config.stand_in_push {
        "stand-in"
    } else {
        "none"
    }
}

/// Puts the presence hub methods in the hub's method table (see [`invoke`]).
pub fn register(methods: &mut HubMethods) {
    methods.register("subscribePresence", invoke);
    methods.register("unsubscribePresence", invoke);
}

/// The presence hub methods (registered by [`register`]):
///
/// | method | arguments | result |
/// |---|---|---|
/// | `subscribePresence` | `ids: string[]` (≤ 650 per call; ≤ 10,000 per user in all) | `{"value": [presence...], "push": "subscriptions" \| "stand-in" \| "none"}`: the known ids' presence and how changes will arrive ([`push_mode`]) |
/// | `unsubscribePresence` | `ids?: string[]` (none: all) | void |
fn invoke(
    hub: &Hub,
    conn: &ConnectionInfo,
    target: &str,
    arguments: &[Value],
) -> Result<Option<Value>, String> {
    let user = conn.user_for(target)?;
    let key = (conn.hub.clone(), user.to_owned());
    let ids: Option<Vec<String>> = match arguments {
        [] | [Value::Null] => None,
        [Value::Array(items)] => Some(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("{target}: ids must be an array of strings"))?,
        ),
        _ => return Err(format!("{target} expects (ids: string[])")),
    };
    let mut inner = hub.graph.lock();
    if target.eq_ignore_ascii_case("unsubscribePresence") {
        let ids: Vec<String> = match ids {
            Some(ids) => ids,
            None => inner
                .watching
                .get(&key)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
        };
        for id in ids {
            if let Some(w) = inner.watchers.get_mut(&id) {
                w.remove(&key);
                if w.is_empty() {
                    inner.watchers.remove(&id);
                }
            }
            if let Some(s) = inner.watching.get_mut(&key) {
                s.remove(&id);
            }
        }
        if inner.watching.get(&key).is_some_and(HashSet::is_empty) {
            inner.watching.remove(&key);
        }
        if let Some(link) = hub.graph.link() {
            let watched: Vec<String> = inner.watchers.keys().cloned().collect();
            drop(inner);
            link.watch(watched);
        }
        return Ok(None);
    }
    let ids = ids.ok_or_else(|| format!("{target} expects (ids: string[])"))?;
    if ids.len() > MAX_IDS_PER_REQUEST {
        return Err(format!(
            "{target} accepts at most {MAX_IDS_PER_REQUEST} ids per call (got {}); send them in batches",
            ids.len()
        ));
    }
    if !inner.watching.contains_key(&key) && inner.watching.len() >= MAX_SUBSCRIBERS {
        return Err(format!("{target}: too many subscribers"));
    }
    let watching = inner.watching.entry(key.clone()).or_default();
    let added = ids.iter().filter(|id| !watching.contains(*id)).count();
    if watching.len() + added > MAX_WATCHED_PER_USER {
        return Err(format!(
            "{target}: a user may watch at most {MAX_WATCHED_PER_USER} ids"
        ));
    }
    watching.extend(ids.iter().cloned());
    let now = unix_now_ms();
    let mut value = Vec::new();
    let link = hub.graph.link();
    for id in &ids {
        inner
            .watchers
            .entry(id.clone())
            .or_default()
            .insert(key.clone());
        if let Some(link) = link {
            // Real Graph: what the subscriptions last told us (the rest is read and pushed).
            if let Some(p) = link.cached(id) {
                value.push(wire(id, p));
            }
        } else if let Some(u) = inner.users.get_mut(id) {
            let p = u.aggregate(now);
            u.last.get_or_insert(p);
            value.push(wire(id, p));
        }
    }
    if let Some(link) = link {
        let watched: Vec<String> = inner.watchers.keys().cloned().collect();
        drop(inner);
        link.watch(watched);
    }
    Ok(Some(json!({ "value": value, "push": push_mode(hub) })))
}

// ----- routes --------------------------------------------------------------------------------

/// The stand-in's routes nested under `base_path` (e.g. `/graph/v1.0`), with the same CORS
/// policy as the hub's other browser-facing routes (the widget calls them from a CRM page).
pub fn router(base_path: &str) -> Router<Arc<Hub>> {
    use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(true)
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(600));
    Router::new()
        .without_v07_checks()
        .nest(
            base_path,
            routes().merge(crate::graph_subscriptions::routes()),
        )
        .merge(crate::graph_subscriptions::token_routes())
        .layer(cors)
}

fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .without_v07_checks()
        .route("/me/presence", get(me_presence))
        .route("/users", get(directory))
        .route("/users/{id}", get(user))
        .route("/groups/{id}/members", get(group_members))
        .route("/users/{id}/presence", get(user_presence))
        .route(
            "/communications/getPresencesByUserId",
            post(presences_by_user_id),
        )
        .route("/users/{id}/presence/{action}", post(presence_action))
}

fn not_found(id: &str) -> GraphError {
    error(
        StatusCode::NOT_FOUND,
        "ItemNotFound",
        format!("User '{id}' was not found"),
    )
}

async fn me_presence(
    State(hub): State<Arc<Hub>>,
    Authorized(me): Authorized<GraphCaller>,
) -> Result<Json<Value>, GraphError> {
    hub.graph
        .presence_json(&me)
        .map(Json)
        .ok_or_else(|| not_found(&me))
}

async fn user_presence(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
    _: Authorized<GraphCaller>,
) -> Result<Json<Value>, GraphError> {
    hub.graph
        .presence_json(&id)
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>, GraphError> {
    crate::rest::json_object(body).map_err(bad)
}

async fn presences_by_user_id(
    State(hub): State<Arc<Hub>>,
    _: Authorized<GraphCaller>,
    body: Bytes,
) -> Result<Json<Value>, GraphError> {
    let object = body_object(&body)?;
    let ids = object
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("ids is required: {\"ids\": [\"<user id>\", ...]}"))?;
    if ids.len() > MAX_IDS_PER_REQUEST {
        return Err(bad(format!(
            "The number of ids ({}) exceeds the limit of {MAX_IDS_PER_REQUEST}",
            ids.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut value = Vec::new();
    for id in ids {
        let id = id.as_str().ok_or_else(|| bad("ids must be strings"))?;
        if seen.insert(id)
            && let Some(p) = hub.graph.presence_json(id)
        {
            value.push(p);
        }
    }
    Ok(Json(json!({ "value": value })))
}

fn pair(object: &Map<String, Value>) -> Result<Presence, GraphError> {
    let get = |k: &str| {
        object
            .get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{k} is required")))
    };
    let availability = get("availability")?;
    let activity = get("activity")?;
    Ok(Presence::new(
        Availability::from_wire(availability)
            .ok_or_else(|| bad(format!("'{availability}' is not a valid availability")))?,
        Activity::from_wire(activity)
            .ok_or_else(|| bad(format!("'{activity}' is not a valid activity")))?,
    ))
}

fn duration(object: &Map<String, Value>) -> Result<Option<u64>, GraphError> {
    match object.get("expirationDuration") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_iso_duration(s)
            .filter(|ms| *ms > 0)
            .map(Some)
            .ok_or_else(|| {
                bad(format!(
                    "expirationDuration '{s}' is not an ISO-8601 duration such as PT5M"
                ))
            }),
        Some(_) => Err(bad("expirationDuration must be a string such as PT5M")),
    }
}

async fn presence_action(
    State(hub): State<Arc<Hub>>,
    Path((id, action)): Path<(String, String)>,
    Authorized(me): Authorized<GraphCaller>,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    if !is_valid_user_name(&id) {
        return Err(not_found(&id));
    }
    if id != me {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Delegated Presence.ReadWrite lets a user change only their own presence",
        ));
    }
    let object = if action.eq_ignore_ascii_case("clearUserPreferredPresence")
        && body.iter().all(u8::is_ascii_whitespace)
    {
        Map::new()
    } else {
        body_object(&body)?
    };
    let now = unix_now_ms();
    let session_id = || match object.get("sessionId") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(bad("sessionId is required (the application's client id)")),
    };
    let change = match action.to_ascii_lowercase().as_str() {
        "setpresence" => {
            let id = session_id()?;
            let p = pair(&object)?;
            if !is_session_combination(p) {
                return Err(bad(format!(
                    "{}/{} is not a supported combination for setPresence",
                    p.availability, p.activity
                )));
            }
            let ms = duration(&object)?.unwrap_or(300_000);
            let min = hub.graph.config.min_session_expiration.as_millis() as u64;
            if ms < min || ms > MAX_SESSION_EXPIRATION_MS {
                return Err(bad("expirationDuration must be between PT5M and PT4H"));
            }
            Change::Session(Session {
                id,
                presence: p,
                expires: Some(now.saturating_add(ms)),
                set_at: now,
            })
        }
        "clearpresence" => Change::ClearSession(session_id()?),
        "setuserpreferredpresence" => {
            let p = pair(&object)?;
            if !is_preferred_combination(p) {
                return Err(bad(format!(
                    "{}/{} is not a supported combination for setUserPreferredPresence",
                    p.availability, p.activity
                )));
            }
            let default = match p.availability {
                Availability::Busy | Availability::DoNotDisturb => 86_400_000,
                _ => 7 * 86_400_000,
            };
            // A client-chosen duration (`P99999999999D`) must not overflow: saturate (never
            // expires in practice) instead of panicking.
            Change::Preferred(p, now.saturating_add(duration(&object)?.unwrap_or(default)))
        }
        "clearuserpreferredpresence" => Change::ClearPreferred,
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Unsupported presence action '{action}'"),
            ));
        }
    };
    apply(&hub, &id, change).map_err(|()| {
        error(
            StatusCode::NOT_FOUND,
            "ItemNotFound",
            "No presence session with this sessionId",
        )
    })?;
    Ok(StatusCode::OK)
}

async fn directory(
    State(hub): State<Arc<Hub>>,
    Query(query): Query<HashMap<String, String>>,
    _: Authorized<GraphCaller>,
) -> Result<Json<Value>, GraphError> {
    let inner = hub.graph.lock();
    let link = format!("{}/users", hub.graph.config.base_path);
    page(&query, 100, &inner.directory, inner.directory.len(), &link)
}

/// One page of `entries[..total]` as Graph pages a collection: `$top` (1–999, `default_top`
/// when absent) and `$skiptoken` (an offset here), `@odata.nextLink` (`link` with both) while
/// more follow. 400 for a non-number.
fn page(
    query: &HashMap<String, String>,
    default_top: usize,
    entries: &[(String, String)],
    total: usize,
    link: &str,
) -> Result<Json<Value>, GraphError> {
    let number = |k: &str, default: usize| match query.get(k) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| bad(format!("{k} must be a whole number"))),
    };
    let top = number("$top", default_top)?.clamp(1, 999);
    let skip = number("$skiptoken", 0)?;
    let value: Vec<Value> = entries
        .iter()
        .take(total)
        .skip(skip)
        .take(top)
        .map(|(id, name)| user_json(id, name))
        .collect();
    let mut body = json!({ "value": value });
    // `$skiptoken` is the client's: `usize::MAX` must not overflow.
    let next = skip.saturating_add(top);
    if next < total {
        body["@odata.nextLink"] = json!(format!("{link}?$top={top}&$skiptoken={next}"));
    }
    Ok(Json(body))
}

/// Members of a group a page by default (Graph's default page size for `/groups/{id}/members`).
pub const MEMBERS_PAGE: usize = 100;

/// A directory entry as Graph's `user` resource (the fields `$select=id,displayName,userPrincipalName` asks for).
fn user_json(id: &str, name: &str) -> Value {
    json!({
        "id": id,
        "displayName": name,
        "userPrincipalName": format!("{id}{UPN_SUFFIX}"),
    })
}

/// `GET /users/{id|UPN}`.
async fn user(
    State(hub): State<Arc<Hub>>,
    Path(key): Path<String>,
    _: Authorized<GraphCaller>,
) -> Result<Json<Value>, GraphError> {
    let id = key.strip_suffix(UPN_SUFFIX).unwrap_or(&key);
    let inner = hub.graph.lock();
    inner
        .directory
        .iter()
        .find(|(d, _)| d == id)
        .map(|(d, name)| Json(user_json(d, name)))
        .ok_or_else(|| not_found(&key))
}

/// `GET /groups/{id}/members`: paged with `$top` and `$skiptoken`, `@odata.nextLink` while
/// more follow.
async fn group_members(
    State(hub): State<Arc<Hub>>,
    Path(group): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    _: Authorized<GraphCaller>,
) -> Result<Json<Value>, GraphError> {
    let inner = hub.graph.lock();
    let members = group_member_ids(&group, inner.directory.len()).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{group}' does not exist or one of its queried reference-property objects are not present."),
        )
    })?;
    let link = format!("{}/groups/{group}/members", hub.graph.config.base_path);
    page(&query, MEMBERS_PAGE, &inner.directory, members, &link)
}

impl Hub {
    /// The Graph presence stand-in's state (directory, presences, subscriptions).
    pub fn graph(&self) -> &GraphState {
        &self.graph
    }
}
