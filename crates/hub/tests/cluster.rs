//! Scale-out (issue 16): several hub nodes over a real Redis (`redis-server`, started per test
//! on a loopback port; see `common::redis`). Nodes are in-process hubs started with `--redis`,
//! except the node that is killed, which is a `switchboard-hub` process.

mod common;

use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_hub::RunningHub;

/// Longest a cluster-wide fact may take to settle (heartbeat TTL 5 s plus a beat, or a ring
/// timeout; generous, because two shared cores under load stretch every step).
const SETTLE: Duration = Duration::from_secs(20);

async fn node(redis: &RedisServer) -> RunningHub {
    let url = redis.url();
    let hub = start_hub_with(|c| c.redis_url = Some(url)).await;
    until(|| async { get_status(&format!("{}/healthz", hub.base_url())).await == 200 }).await;
    hub
}

/// Polls `check` every 50 ms until it holds, at most [`SETTLE`].
async fn until<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + SETTLE;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {SETTLE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn user_seen(base: &str, user: &str) -> u16 {
    let path = format!("/api/v1/hubs/switchboard/users/{user}");
    rest(Method::HEAD, base, &path, "", None).await.as_u16()
}

async fn ring(base: &str, user: &str) -> (u16, Value) {
    let message = json!({"PhoneNumber": "+14255550123"}).to_string();
    let response = http()
        .post(format!("{base}/api/SendMessageToUser"))
        .header("x-functions-key", KEY)
        .json(&json!({"userId": user, "message": message}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Rings `user` through `base`, again every 50 ms while the ring is refused 409 (the agent's
/// `Ready` may not have reached that node yet), at most `SETTLE`; panics unless it is 200.
/// Returns the call id.
async fn ring_once_ready(base: &str, user: &str, round: u64) -> String {
    let mut rung = ring(base, user).await;
    let deadline = Instant::now() + SETTLE;
    while rung.0 == 409 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        rung = ring(base, user).await;
    }
    assert_eq!(rung.0, 200, "round {round}: {}", rung.1);
    rung.1["callId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn sends_through_one_node_reach_connections_on_another() {
    let redis = RedisServer::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let mut alice = Client::connect(&b.base_url(), "alice").await;
    until(|| async { user_seen(&a.base_url(), "alice").await == 200 }).await;

    // Azure REST send to a user, through node A.
    let path = "/api/v1/hubs/switchboard/users/alice";
    let body = json!({"target": "Hello", "arguments": ["to-user"]});
    let status = rest(Method::POST, &a.base_url(), path, "", Some(body)).await;
    assert_eq!(status, 202);
    assert_eq!(
        alice.expect_invocation("Hello").await,
        vec![json!("to-user")]
    );

    // Group: the user joins through node A, the group send goes through node A too.
    let path = "/api/v1/hubs/switchboard/groups/team/users/alice";
    assert_eq!(rest(Method::PUT, &a.base_url(), path, "", None).await, 200);
    until(|| async {
        let p = "/api/v1/hubs/switchboard/groups/team";
        rest(Method::HEAD, &a.base_url(), p, "", None).await == 200
    })
    .await;
    let body = json!({"target": "Hello", "arguments": ["to-group"]});
    let p = "/api/v1/hubs/switchboard/groups/team";
    assert_eq!(
        rest(Method::POST, &a.base_url(), p, "", Some(body)).await,
        202
    );
    assert_eq!(
        alice.expect_invocation("Hello").await,
        vec![json!("to-group")]
    );

    // Everyone.
    let body = json!({"target": "Hello", "arguments": ["to-all"]});
    let p = "/api/v1/hubs/switchboard";
    assert_eq!(
        rest(Method::POST, &a.base_url(), p, "", Some(body)).await,
        202
    );
    assert_eq!(
        alice.expect_invocation("Hello").await,
        vec![json!("to-all")]
    );

    // The adaptor's ring: the call is registered on the node holding the connection.
    let (status, body) = ring(&a.base_url(), "alice").await;
    assert_eq!(status, 200, "{body}");
    let call_id = body["callId"].as_str().expect("callId").to_owned();
    let notification = alice.expect_invocation("ReceiveNotification").await;
    let text = notification[0].as_str().unwrap();
    assert!(text.contains(&call_id), "{text}");
    let call = get_json(&format!("{}/api/calls/{call_id}?code={KEY}", b.base_url())).await;
    assert_eq!(call["state"], "ringing", "{call}");

    // The call is readable through the other node (its copy in Redis) and follows the agent.
    let through_a = format!("{}/api/calls/{call_id}?code={KEY}", a.base_url());
    until(|| async { get_json(&through_a).await["state"] == "ringing" }).await;
    alice.invoke_ok("acceptCall", vec![json!(call_id)]).await;
    until(|| async { get_json(&through_a).await["state"] == "accepted" }).await;
    let unknown = format!(
        "{}/api/calls/call-0000000000000000?code={KEY}",
        a.base_url()
    );
    assert_eq!(get_status(&unknown).await, 404);
}

#[tokio::test]
async fn connection_sends_and_closes_reach_another_node() {
    let redis = RedisServer::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let mut alice = Client::connect(&b.base_url(), "alice").await;
    let id = b
        .hub
        .local_connections()
        .into_iter()
        .find(|r| r.user.as_deref() == Some("alice"))
        .expect("alice's connection on node B")
        .connection;
    let path = format!("/api/v1/hubs/switchboard/connections/{id}");
    until(|| async { rest(Method::HEAD, &a.base_url(), &path, "", None).await == 200 }).await;
    let body = json!({"target": "Hello", "arguments": ["to-connection"]});
    assert_eq!(
        rest(Method::POST, &a.base_url(), &path, "", Some(body)).await,
        202
    );
    assert_eq!(
        alice.expect_invocation("Hello").await,
        vec![json!("to-connection")]
    );
    let unknown = "/api/v1/hubs/switchboard/connections/nobody";
    assert_eq!(
        rest(Method::HEAD, &a.base_url(), unknown, "", None).await,
        404
    );
    assert_eq!(
        rest(Method::DELETE, &a.base_url(), &path, "", None).await,
        200
    );
    let (_, allow_reconnect) = alice.expect_closed().await;
    assert!(!allow_reconnect);
    until(|| async { rest(Method::HEAD, &a.base_url(), &path, "", None).await == 404 }).await;
}

#[tokio::test]
async fn a_ring_is_refused_offline_until_the_agent_is_connected_on_any_node() {
    let redis = RedisServer::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let (status, body) = ring(&a.base_url(), "bob").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["reason"], "offline");

    let bob = Client::connect(&b.base_url(), "bob").await;
    until(|| async { user_seen(&a.base_url(), "bob").await == 200 }).await;
    let (status, body) = ring(&a.base_url(), "bob").await;
    assert_eq!(status, 200, "{body}");

    // The agent's state follows them: bob (on node B) takes a break, a ring through node A is
    // refused `not-ready`, and a supervisor on node A hears the change.
    let mut bob = bob;
    let mut supervisor = Client::connect_as(&a.base_url(), "sue", Some("Supervisor")).await;
    bob.invoke_ok("setAgentState", vec![json!("Break")]).await;
    let mut changed = supervisor.expect_invocation("AgentStateChanged").await;
    for _ in 0..5 {
        if changed[0]["userId"] == "bob" {
            break;
        }
        changed = supervisor.expect_invocation("AgentStateChanged").await;
    }
    assert_eq!(changed[0]["userId"], "bob");
    assert_eq!(changed[0]["state"], "Break");
    let (status, body) = ring(&a.base_url(), "bob").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["reason"], "not-ready");
    bob.invoke_ok("setAgentState", vec![json!("Ready")]).await;
    until(|| async { ring(&a.base_url(), "bob").await.0 == 200 }).await;

    drop(bob);
    until(|| async { user_seen(&a.base_url(), "bob").await == 404 }).await;
    let (status, body) = ring(&a.base_url(), "bob").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["reason"], "offline");
}

/// Agent states live in Redis: a node started after the agents chose their states knows
/// them (its supervisor's `getTeamAgentStates` lists every agent of the cluster, with
/// `connected` as the cluster sees it) and refuses rings by them.
#[tokio::test]
async fn a_node_started_later_knows_every_agents_state() {
    let redis = RedisServer::start();
    let a = node(&redis).await;
    let mut alice = Client::connect(&a.base_url(), "alice").await;
    let mut bob = Client::connect(&a.base_url(), "bob").await;
    alice.invoke_ok("setAgentState", vec![json!("Break")]).await;
    bob.invoke_ok("setAgentState", vec![json!("Ready")]).await;
    drop(bob);
    until(|| async { user_seen(&a.base_url(), "bob").await == 404 }).await;

    let b = node(&redis).await;
    let (status, body) = ring(&b.base_url(), "alice").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["reason"], "not-ready");
    assert_eq!(body["state"], "Break");
    let mut supervisor = Client::connect_as(&b.base_url(), "sue", Some("Supervisor")).await;
    let team = supervisor.invoke_ok("getTeamAgentStates", vec![]).await;
    let agent = |team: &Value, user: &str| {
        team["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["userId"] == user)
            .cloned()
            .unwrap_or_else(|| panic!("{user} missing in {team}"))
    };
    assert_eq!(agent(&team, "alice")["state"], "Break", "{team}");
    assert_eq!(agent(&team, "alice")["connected"], true, "{team}");
    assert_eq!(agent(&team, "bob")["state"], "Ready");
    assert_eq!(agent(&team, "bob")["connected"], false);
    assert_eq!(agent(&team, "sue")["connected"], true);

    // Alice comes back Ready on node B: node A's supervisor list follows.
    drop(alice);
    let mut alice = Client::connect(&b.base_url(), "alice").await;
    assert_eq!(
        alice.invoke_ok("getAgentState", vec![]).await["state"],
        "Break",
        "her state followed her to node B"
    );
    alice.invoke_ok("setAgentState", vec![json!("Ready")]).await;
    let mut watcher = Client::connect_as(&a.base_url(), "sam", Some("Supervisor")).await;
    let team = watcher.invoke_ok("getTeamAgentStates", vec![]).await;
    assert_eq!(agent(&team, "alice")["state"], "Ready", "{team}");
    assert_eq!(agent(&team, "alice")["connected"], true, "{team}");
}

/// `POST /api/userclient` through node A is known to node B (kept in Redis).
#[tokio::test]
async fn user_client_records_are_shared() {
    let redis = RedisServer::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let body = json!({"userId": "alice", "connectionId": "c1", "connectionStatus": "connected"});
    let r = sent(
        http()
            .post(format!("{}/api/userclient", a.base_url()))
            .header("x-functions-key", KEY)
            .json(&body),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        b.hub.user_client("alice").is_none(),
        "not in node B's memory"
    );
    until(|| async { b.hub.user_client_anywhere("alice").await.unwrap().is_some() }).await;
    let seen = b.hub.user_client_anywhere("alice").await.unwrap();
    let record = seen.unwrap();
    assert_eq!(record.connection_id.as_deref(), Some("c1"));
    assert_eq!(record.connection_status.as_deref(), Some("connected"));
}

/// The Graph presence stand-in is one for the cluster: a Teams presence set through node A
/// reaches a `subscribePresence` watcher on node B once, and a node started later knows it.
#[tokio::test]
async fn the_presence_stand_in_is_shared() {
    let redis = RedisServer::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let mut alice = Client::connect(&b.base_url(), "alice").await;
    let answer = alice
        .invoke_ok("subscribePresence", vec![json!(["bob"])])
        .await;
    assert_eq!(answer["push"], "stand-in", "{answer}");
    assert_eq!(answer["value"][0]["availability"], "Available");

    let r = sent(
        http()
            .post(format!("{}/simulator/presence", a.base_url()))
            .json(&json!({"user": "bob", "availability": "Busy", "activity": "InACall"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let pushed = alice.expect_invocation("PresenceChanged").await;
    assert_eq!(
        pushed,
        vec![json!({"id": "bob", "availability": "Busy", "activity": "InACall"})]
    );
    assert_eq!(graph_activity(&b.base_url(), "bob").await, "InACall");
    // Exactly once: a later send arrives with no second PresenceChanged before it.
    let path = "/api/v1/hubs/switchboard/users/alice";
    let body = json!({"target": "Last", "arguments": []});
    assert_eq!(
        rest(Method::POST, &a.base_url(), path, "", Some(body)).await,
        202
    );
    alice.expect_invocation("Last").await;
    assert_eq!(alice.queued("PresenceChanged"), 0);

    let c = node(&redis).await;
    until(|| async { graph_activity(&c.base_url(), "bob").await == "InACall" }).await;
}

/// `GET /graph/v1.0/users/{id}/presence` with a dev user token → the activity.
async fn graph_activity(base: &str, id: &str) -> String {
    let token = dev_token(base, "reader").await;
    let url = format!("{base}/graph/v1.0/users/{id}/presence");
    let body: Value = sent(http().get(url).bearer_auth(token))
        .await
        .json()
        .await
        .unwrap();
    body["activity"].as_str().unwrap_or_default().to_owned()
}

/// A `switchboard-hub` process on 127.0.0.1:0 → (child, base URL).
fn hub_process(redis: &RedisServer) -> (common::redis::HubChild, String) {
    common::redis::spawn_hub(redis, "127.0.0.1:0", KEY)
}

#[tokio::test]
async fn a_dead_nodes_users_are_no_longer_connected() {
    let redis = RedisServer::start();
    let url = redis.url();
    // Node A's ring timeout is what counts once A runs the dead node's call.
    let a = start_hub_with(|c| {
        c.redis_url = Some(url);
        c.ring_timeout = Duration::from_secs(8);
    })
    .await;
    until(|| async { get_status(&format!("{}/healthz", a.base_url())).await == 200 }).await;
    let (mut child, c) = hub_process(&redis);
    until(|| async { get_status(&format!("{c}/healthz")).await == 200 }).await;
    let _carol = Client::connect(&c, "carol").await;
    until(|| async { user_seen(&a.base_url(), "carol").await == 200 }).await;
    let (status, body) = ring(&a.base_url(), "carol").await;
    assert_eq!(status, 200, "{body}");
    let call_id = body["callId"].as_str().unwrap().to_owned();
    let through_a = format!("{}/api/calls/{call_id}?code={KEY}", a.base_url());
    until(|| async { get_json(&through_a).await["state"] == "ringing" }).await;

    child.kill().unwrap(); // SIGKILL: no goodbye, the records stay until the heartbeat expires
    child.wait().unwrap();
    until(|| async { user_seen(&a.base_url(), "carol").await == 404 }).await;
    let (status, body) = ring(&a.base_url(), "carol").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["reason"], "offline");
    // Node A took the ringing call over: it is still ringing there, and its ring timeout
    // (A's 8 s from when it rang) makes it missed.
    until(|| async { a.hub.call(&call_id).is_some() }).await;
    until(|| async { get_json(&through_a).await["state"] == "missed" }).await;
    assert_eq!(get_json(&through_a).await["endReason"], "missed");
}

/// Calls rung through node C to agents on node A (a process) survive A's `kill -9`: a call
/// in progress stays connected and is hung up through node B, where its agent reconnects;
/// a ringing call is accepted on node B; a ringing call whose agent never comes back is
/// missed by its ring timeout, run by a live node.
#[tokio::test]
async fn calls_survive_the_death_of_their_node() {
    let redis = RedisServer::start();
    let url = redis.url();
    let cluster_node = || {
        let url = url.clone();
        async move {
            let hub = start_hub_with(|c| {
                c.redis_url = Some(url);
                c.ring_timeout = Duration::from_secs(12);
            })
            .await;
            until(|| async { get_status(&format!("{}/healthz", hub.base_url())).await == 200 })
                .await;
            hub
        }
    };
    let b = cluster_node().await;
    let c = cluster_node().await;
    let (mut child, a) = hub_process(&redis);
    until(|| async { get_status(&format!("{a}/healthz")).await == 200 }).await;
    let mut alice = Client::connect(&a, "alice").await;
    let _bob = Client::connect(&a, "bob").await;
    let _carol = Client::connect(&a, "carol").await;
    for user in ["alice", "bob", "carol"] {
        until(|| async { user_seen(&c.base_url(), user).await == 200 }).await;
    }
    let mut ids = Vec::new();
    for user in ["alice", "bob", "carol"] {
        let (status, body) = ring(&c.base_url(), user).await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["callId"].as_str().unwrap().to_owned());
    }
    let through_c = |id: &str| format!("{}/api/calls/{id}?code={KEY}", c.base_url());
    alice.invoke_ok("acceptCall", vec![json!(ids[0])]).await;
    until(|| async { get_json(&through_c(&ids[0])).await["state"] == "accepted" }).await;
    until(|| async { get_json(&through_c(&ids[2])).await["state"] == "ringing" }).await;

    child.kill().unwrap();
    child.wait().unwrap();
    until(|| async { user_seen(&c.base_url(), "alice").await == 404 }).await;

    // Alice and Carol reconnect through node B: their calls come with them.
    let mut alice = Client::connect(&b.base_url(), "alice").await;
    let calls = alice.invoke_ok("getCalls", vec![]).await;
    assert_eq!(calls["calls"][0]["callId"], json!(ids[0]), "{calls}");
    assert_eq!(calls["calls"][0]["state"], "accepted", "{calls}");
    let mut carol = Client::connect(&b.base_url(), "carol").await;
    let accepted = carol.invoke_ok("acceptCall", vec![json!(ids[2])]).await;
    assert_eq!(accepted["state"], "accepted");
    until(|| async { get_json(&through_c(&ids[2])).await["state"] == "accepted" }).await;

    // Alice's call is still up; she hangs up through node B, read through node C.
    assert_eq!(get_json(&through_c(&ids[0])).await["state"], "accepted");
    let ended = alice.invoke_ok("hangUp", vec![json!(ids[0])]).await;
    assert_eq!(ended["endReason"], "completed");
    until(|| async { get_json(&through_c(&ids[0])).await["state"] == "ended" }).await;

    // Carol's caller hangs up through node C (the owner is B now).
    let response = http()
        .post(format!(
            "{}/simulator/calls/{}/abandon",
            c.base_url(),
            ids[2]
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(carol.expect_invocation("CallEnded").await[1], "completed");

    // Bob never came back: his call rang out on whichever live node took it over.
    until(|| async { get_json(&through_c(&ids[1])).await["state"] == "missed" }).await;
    // Exactly one node runs it (a node that was only slow, and taken for dead, lets go).
    until(|| async {
        [b.hub.call(&ids[1]), c.hub.call(&ids[1])]
            .iter()
            .flatten()
            .count()
            == 1
    })
    .await;
}

/// The agent moves from node A to node B while a call rings, near its ring timeout, and
/// accepts there at once, 20 times: the ring timeout (on A, or on B after the hand-over) and
/// the accept on B end every call in exactly one state, the same through both nodes, and the
/// accept succeeded exactly when the call was answered.
#[tokio::test]
async fn accept_and_ring_timeout_on_two_nodes_end_in_one_state() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let url = url.clone();
        let hub = start_hub_with(|c| {
            c.redis_url = Some(url);
            c.ring_timeout = Duration::from_millis(150);
        })
        .await;
        until(|| async { get_status(&format!("{}/healthz", hub.base_url())).await == 200 }).await;
        nodes.push(hub);
    }
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut on_a = Client::connect(&a.base_url(), "alice").await;
    let (mut answered, mut missed) = (0, 0);
    for round in 0..20u64 {
        on_a.invoke_ok("setAgentState", vec![json!("Ready")]).await;
        let call_id = ring_once_ready(&a.base_url(), "alice", round).await;
        // From well before to just after the ring timeout.
        tokio::time::sleep(Duration::from_millis((round * 37) % 180)).await;
        let mut on_b = Client::connect(&b.base_url(), "alice").await;
        let accept = on_b.invoke("acceptCall", vec![json!(call_id)]).await;
        let accepted = matches!(accept, switchboard_signalr::CompletionOutcome::Result(_));
        let through =
            |hub: &RunningHub| format!("{}/api/calls/{call_id}?code={KEY}", hub.base_url());
        let want = if accepted { "accepted" } else { "missed" };
        until(|| async { get_json(&through(a)).await["state"] == want }).await;
        until(|| async { get_json(&through(b)).await["state"] == want }).await;
        let holders = [a.hub.call(&call_id), b.hub.call(&call_id)];
        assert!(
            holders.iter().flatten().count() <= 1,
            "round {round}: two nodes hold the call"
        );
        if accepted {
            answered += 1;
            on_b.invoke_ok("hangUp", vec![json!(call_id)]).await;
        } else {
            missed += 1;
        }
        drop(on_b);
        until(|| async { !b.hub.user_connected("switchboard", "alice") }).await;
    }
    eprintln!("accept vs ring timeout: {answered} answered, {missed} missed");
}

#[tokio::test]
async fn while_redis_is_down_the_node_says_so_and_refuses_work() {
    let mut redis = RedisServer::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let _alice = Client::connect(&b.base_url(), "alice").await;
    until(|| async { user_seen(&a.base_url(), "alice").await == 200 }).await;

    let token = dev_token(&a.base_url(), "dave").await;
    redis.stop();
    let health = format!("{}/healthz", a.base_url());
    until(|| async { get_status(&health).await == 503 }).await;
    let metrics = get_text(&format!("{}/metrics", a.base_url())).await;
    assert!(metrics.contains("switchboard_redis_up 0"), "{metrics}");
    let body = json!({"target": "Hello", "arguments": []});
    let path = "/api/v1/hubs/switchboard/users/alice";
    assert_eq!(
        rest(Method::POST, &a.base_url(), path, "", Some(body)).await,
        503
    );
    let (status, _) = ring(&a.base_url(), "alice").await;
    assert_eq!(status, 503);
    let (status, _) = negotiate_bearer(&a, &token).await;
    assert_eq!(status, 503);

    // Redis comes back empty: both nodes reconnect and rewrite their records.
    redis.restart();
    until(|| async { get_status(&health).await == 200 }).await;
    until(|| async { user_seen(&a.base_url(), "alice").await == 200 }).await;
    let metrics = get_text(&format!("{}/metrics", a.base_url())).await;
    assert!(metrics.contains("switchboard_redis_up 1"), "{metrics}");
}

/// The caller hangs up through node A while the agent accepts on node B, 20 times: the owner
/// (node B) carries out both in some order, so every call ends in exactly one final state, the
/// same through both nodes, and the accept succeeded exactly when the call was answered.
#[tokio::test]
async fn accept_and_caller_hang_up_on_two_nodes_end_in_one_state() {
    let redis = RedisServer::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let mut alice = Client::connect(&b.base_url(), "alice").await;
    until(|| async { user_seen(&a.base_url(), "alice").await == 200 }).await;
    let http = http();
    for round in 0..20 {
        // Ready again after the previous round's wrap-up.
        alice.invoke_ok("setAgentState", vec![json!("Ready")]).await;
        let call_id = ring_once_ready(&a.base_url(), "alice", round).await;
        let through_a = format!("{}/api/calls/{call_id}?code={KEY}", a.base_url());
        until(|| async { get_json(&through_a).await["state"] == "ringing" }).await;

        let abandon = http
            .post(format!(
                "{}/simulator/calls/{call_id}/abandon",
                a.base_url()
            ))
            .json(&json!({}))
            .send();
        let (accept, abandoned) =
            tokio::join!(alice.invoke("acceptCall", vec![json!(call_id)]), abandon);
        let abandoned = abandoned.unwrap();
        assert_eq!(abandoned.status(), 200, "round {round}");
        let accepted = matches!(accept, switchboard_signalr::CompletionOutcome::Result(_));

        let owner = b
            .hub
            .call(&call_id)
            .expect("the owner has the call")
            .to_json();
        assert!(
            owner["endedAt"].is_u64(),
            "round {round}: not final: {owner}"
        );
        assert_eq!(
            owner["answeredAt"].is_u64(),
            accepted,
            "round {round}: {owner}"
        );
        until(|| async { get_json(&through_a).await == owner }).await;
    }
}
