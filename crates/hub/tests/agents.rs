//! Issue 15, hub side: agent state through the real SignalR path and the real routes —
//! rings refused with 409 and a reason, automatic OnCall / WrapUp / Missed, the wrap-up
//! timer, `submitWrapUp` reaching `GET /api/calls/{id}`, and the supervisor-only team view.
//! Every wait is bounded by `common::WAIT`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard_hub::RunningHub;

async fn hub() -> RunningHub {
    start_hub_with(|c| {
        c.ring_timeout = Duration::from_millis(150);
        c.agents.wrap_up_ms = 400;
    })
    .await
}

/// `POST /api/SendMessageToUser` with a seed call message: `(status, body)`.
async fn ring(base: &str, agent: &str, call_id: &str) -> (u16, Value) {
    let message = json!({"PhoneNumber": "+14255550123", "callId": call_id}).to_string();
    let r = sent(
        http()
            .post(format!("{base}/api/SendMessageToUser?code={KEY}"))
            .json(&json!({"userId": agent, "message": message})),
    )
    .await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The next `AgentStateChanged` of `user` whose state is `state`.
async fn next_state(client: &mut Client, user: &str, state: &str) -> Value {
    for _ in 0..20 {
        let s = client
            .expect_invocation("AgentStateChanged")
            .await
            .remove(0);
        if s["userId"] == user && s["state"] == state {
            return s;
        }
    }
    panic!("no AgentStateChanged {user} → {state}");
}

#[tokio::test]
async fn rings_obey_the_agent_state_and_calls_move_it() {
    let hub = hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;

    let s = alice.invoke_ok("getAgentState", vec![]).await;
    assert_eq!(
        (s["state"].as_str(), s["source"].as_str()),
        (Some("Ready"), Some("hub"))
    );

    // Break: the REST ring is refused, nothing is registered or sent.
    let s = alice.invoke_ok("setAgentState", vec![json!("Break")]).await;
    assert_eq!(
        (s["state"].as_str(), s["source"].as_str()),
        (Some("Break"), Some("agent"))
    );
    let (status, body) = ring(&base, "alice", "c-break").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["reason"], "not-ready");
    assert_eq!(body["state"], "Break");
    assert_eq!(body["userId"], "alice");
    assert_eq!(body["since"], s["since"]);
    assert!(hub.hub.call("c-break").is_none());

    // Ready: rung.
    alice.invoke_ok("setAgentState", vec![json!("Ready")]).await;
    let (status, body) = ring(&base, "alice", "c1").await;
    assert_eq!((status, body["callId"].as_str()), (200, Some("c1")));
    let note = alice.expect_invocation("ReceiveNotification").await;
    assert!(note[0].as_str().unwrap().contains("c1"));

    // Accept: OnCall; another ring is refused on-call.
    alice.invoke_ok("acceptCall", vec![json!("c1")]).await;
    let on = next_state(&mut alice, "alice", "OnCall").await;
    assert_eq!(
        (on["callId"].as_str(), on["previous"].as_str()),
        (Some("c1"), Some("Ready"))
    );
    assert_eq!(on["source"], "call");
    let (status, body) = ring(&base, "alice", "c2").await;
    assert_eq!((status, body["reason"].as_str()), (409, Some("on-call")));

    // Hang up: WrapUp until wrapUpEndsAt; a ring meanwhile is refused wrap-up.
    alice.invoke_ok("hangUp", vec![json!("c1")]).await;
    let wrap = next_state(&mut alice, "alice", "WrapUp").await;
    let ends = wrap["wrapUpEndsAt"].as_u64().expect("wrapUpEndsAt");
    assert_eq!(ends, wrap["since"].as_u64().unwrap() + 400);
    let (status, body) = ring(&base, "alice", "c3").await;
    assert_eq!((status, body["reason"].as_str()), (409, Some("wrap-up")));

    // The timer: back to the state before the call.
    let back = next_state(&mut alice, "alice", "Ready").await;
    assert_eq!(back["source"], "timer");
    assert!(back["since"].as_u64().unwrap() >= ends);
    let (status, _) = ring(&base, "alice", "c4").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn three_timed_out_offers_make_the_agent_missed() {
    let hub = hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    for i in 1..=3 {
        let id = format!("m{i}");
        assert_eq!(ring(&base, "alice", &id).await.0, 200);
        let ended = alice.expect_invocation("CallEnded").await;
        assert_eq!(ended, vec![json!(id), json!("missed")]);
    }
    let missed = next_state(&mut alice, "alice", "Missed").await;
    assert_eq!(
        (missed["source"].as_str(), missed["missedOffers"].as_u64()),
        (Some("missed"), Some(3))
    );

    let (status, body) = ring(&base, "alice", "m4").await;
    assert_eq!(
        (status, body["reason"].as_str(), body["state"].as_str()),
        (409, Some("not-ready"), Some("Missed"))
    );

    // The Azure REST send-to-user with IncomingCall obeys it too.
    let path = "/api/v1/hubs/switchboard/users/alice";
    let rest_ring = |token: String| {
        http()
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&json!({"target": "IncomingCall", "arguments": [{"phoneNumber": "+14255550123", "callId": "r1"}]}))
            .send()
    };
    let r = rest_ring(rest_token(&base, path)).await.unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "not-ready");
    assert!(hub.hub.call("r1").is_none());

    // Only the agent leaves Missed; Ready clears the count.
    let ready = alice.invoke_ok("setAgentState", vec![json!("Ready")]).await;
    assert_eq!(ready["missedOffers"], 0);
    let r = rest_ring(rest_token(&base, path)).await.unwrap();
    assert_eq!(r.status(), 202);
    alice.expect_invocation("IncomingCall").await;
}

#[tokio::test]
async fn an_agent_with_no_connection_is_offline() {
    let hub = hub().await;
    let base = hub.base_url();
    let (status, body) = ring(&base, "nobody", "o1").await;
    assert_eq!((status, body["reason"].as_str()), (409, Some("offline")));
    let r = sent(
        http()
            .post(format!("{base}/simulator/ring"))
            .json(&json!({"agent": "nobody", "phoneNumber": "+14255550123"})),
    )
    .await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["reason"], "offline");
    assert!(hub.hub.newest_calls(5).is_empty());

    // Offline chosen while connected is offline too.
    let mut alice = Client::connect(&base, "alice").await;
    alice
        .invoke_ok("setAgentState", vec![json!("Offline")])
        .await;
    assert_eq!(ring(&base, "alice", "o2").await.1["reason"], "offline");
    let e = alice.invoke_err("setAgentState", vec![json!("<b>")]).await;
    assert!(e.starts_with("setAgentState: state must be"), "{e}");
}

#[tokio::test]
async fn submit_wrap_up_reaches_the_call_registry_and_ends_the_wrap_up() {
    let hub = start_hub().await; // 60 s wrap-up: only submitWrapUp ends it here
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    assert_eq!(ring(&base, "alice", "w1").await.0, 200);
    alice.invoke_ok("acceptCall", vec![json!("w1")]).await;
    alice.invoke_ok("hangUp", vec![json!("w1")]).await;
    next_state(&mut alice, "alice", "WrapUp").await;

    let e = alice
        .invoke_err(
            "submitWrapUp",
            vec![json!("w1"), json!({"notes": "x".repeat(2001)})],
        )
        .await;
    assert!(e.contains("notes is 2001 characters; at most 2000"), "{e}");
    let call = alice
        .invoke_ok(
            "submitWrapUp",
            vec![
                json!("w1"),
                json!({"disposition": "Resolved", "notes": "Refund sent", "durationMs": 4200}),
            ],
        )
        .await;
    assert_eq!(call["wrapUp"]["disposition"], "Resolved");
    let back = next_state(&mut alice, "alice", "Ready").await;
    assert_eq!(back["source"], "agent");

    let stored = get_json(&format!("{base}/api/calls/w1?code={KEY}")).await;
    assert_eq!(stored["wrapUp"]["disposition"], "Resolved");
    assert_eq!(stored["wrapUp"]["notes"], "Refund sent");
    assert_eq!(stored["wrapUp"]["durationMs"], 4200);
    assert!(stored["wrapUp"]["submittedAt"].as_u64().is_some());

    let mut bob = Client::connect(&base, "bob").await;
    let e = bob
        .invoke_err("submitWrapUp", vec![json!("w1"), json!({})])
        .await;
    assert_eq!(e, "submitWrapUp: Call w1 is not offered to you");
}

#[tokio::test]
async fn the_team_view_is_for_supervisors_and_live() {
    let hub = hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    let e = alice.invoke_err("getTeamAgentStates", vec![]).await;
    assert_eq!(e, "getTeamAgentStates: supervisors only");

    let mut sue = Client::connect_as(&base, "sue", Some("Supervisor")).await;
    assert_eq!(ring(&base, "alice", "t1").await.0, 200);
    alice.invoke_ok("acceptCall", vec![json!("t1")]).await;
    next_state(&mut sue, "alice", "OnCall").await;
    let team = sue.invoke_ok("getTeamAgentStates", vec![]).await;
    let agents = team["agents"].as_array().unwrap();
    let a = agents
        .iter()
        .find(|a| a["userId"] == "alice")
        .expect("alice listed");
    assert_eq!(a["state"], "OnCall");
    assert_eq!(a["connected"], true);
    assert_eq!(a["currentCall"]["callId"], "t1");
    assert_eq!(
        a["today"],
        json!({"offered": 1, "answered": 1, "missed": 0, "talkMs": 0})
    );

    // A state the agent chooses reaches the supervisor live.
    alice.invoke_ok("hangUp", vec![json!("t1")]).await;
    alice.invoke_ok("setAgentState", vec![json!("Lunch")]).await;
    let lunch = next_state(&mut sue, "alice", "Lunch").await;
    assert_eq!(lunch["connected"], true);
}
