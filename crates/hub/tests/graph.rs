//! The Graph presence stand-in over real sockets on 127.0.0.1 (crates/hub/src/graph.rs).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard_core::presence::batches;

const BASE: &str = "/graph/v1.0";

async fn get(base: &str, token: &str, path: &str) -> reqwest::Response {
    sent(http().get(format!("{base}{BASE}{path}")).bearer_auth(token)).await
}

async fn post(base: &str, token: &str, path: &str, body: Value) -> reqwest::Response {
    sent(
        http()
            .post(format!("{base}{BASE}{path}"))
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

async fn presence(base: &str, token: &str, id: &str) -> (String, String) {
    let r = get(base, token, &format!("/users/{id}/presence")).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], id);
    (
        body["availability"].as_str().unwrap().to_owned(),
        body["activity"].as_str().unwrap().to_owned(),
    )
}

async fn graph_error(r: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

/// `post` answered with a Graph error `status`/`code` → its message.
async fn post_error(
    base: &str,
    token: &str,
    path: &str,
    body: Value,
    status: u16,
    code: &str,
) -> String {
    graph_error(post(base, token, path, body).await, status, code).await
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[tokio::test]
async fn reads_own_and_other_presence() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let alice = dev_token(&base, "alice").await;

    let r = get(&base, &alice, "/me/presence").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": "alice", "availability": "Available", "activity": "Available"})
    );
    assert_eq!(
        presence(&base, &alice, "bob").await,
        pair("Available", "Available")
    );
    assert_eq!(
        presence(&base, &alice, "colleague-001").await,
        pair("Busy", "InACall")
    );
    // A dev user outside the directory exists once signed in, Offline without a session.
    let carol = dev_token(&base, "carol").await;
    let r = get(&base, &carol, "/me/presence").await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["availability"], "Offline");

    let message = graph_error(
        get(&base, &alice, "/users/nobody/presence").await,
        404,
        "ItemNotFound",
    )
    .await;
    assert!(message.contains("nobody"));
    let r = sent(http().get(format!("{base}{BASE}/me/presence"))).await;
    assert!(r.headers().contains_key("www-authenticate"));
    graph_error(r, 401, "InvalidAuthenticationToken").await;
    graph_error(
        get(&base, "a.b.c", "/me/presence").await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    hub.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn directory_of_700_colleagues_loads_in_two_batches() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let alice = dev_token(&base, "alice").await;

    // Page through the directory as Graph clients do (@odata.nextLink), bounded.
    let mut ids: Vec<String> = Vec::new();
    let mut next = Some(format!("{base}{BASE}/users?$top=300"));
    for _ in 0..10 {
        let Some(url) = next.take() else { break };
        let body: Value = sent(http().get(&url).bearer_auth(&alice))
            .await
            .json()
            .await
            .unwrap();
        for user in body["value"].as_array().unwrap() {
            assert!(user["displayName"].as_str().is_some_and(|n| !n.is_empty()));
            ids.push(user["id"].as_str().unwrap().to_owned());
        }
        next = body["@odata.nextLink"]
            .as_str()
            .map(|link| format!("{base}{link}"));
    }
    assert_eq!(ids.len(), 702, "alice, bob and 700 colleagues");
    assert_eq!(&ids[..3], ["alice", "bob", "colleague-001"]);

    let mut sizes = Vec::new();
    let mut busy = 0;
    for batch in batches(&ids) {
        let r = post(
            &base,
            &alice,
            "/communications/getPresencesByUserId",
            json!({ "ids": batch }),
        )
        .await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let value = body["value"].as_array().unwrap();
        sizes.push(value.len());
        busy += value.iter().filter(|p| p["availability"] == "Busy").count();
    }
    assert_eq!(sizes, vec![650, 52]);
    assert!(busy > 100, "a mix of states: {busy} busy");

    // 651 ids: Graph's limit.
    let too_many: Vec<String> = (0..651).map(|i| format!("colleague-{i:03}")).collect();
    let message = post_error(
        &base,
        &alice,
        "/communications/getPresencesByUserId",
        json!({ "ids": too_many }),
        400,
        "BadRequest",
    )
    .await;
    assert!(message.contains("650"), "{message}");
    post_error(
        &base,
        &alice,
        "/communications/getPresencesByUserId",
        json!({}),
        400,
        "BadRequest",
    )
    .await;
    // Unknown and duplicate ids.
    let r = post(
        &base,
        &alice,
        "/communications/getPresencesByUserId",
        json!({ "ids": ["bob", "bob", "nobody"] }),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    hub.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn session_preferred_and_expiry_aggregate_like_graph() {
    let hub = start_hub_with(|c| c.graph.min_session_expiration = Duration::ZERO).await;
    let base = hub.base_url();
    let alice = dev_token(&base, "alice").await;
    let set = "/users/alice/presence/setPresence";

    let r = post(
        &base,
        &alice,
        set,
        json!({"sessionId": "app", "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1S"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        presence(&base, &alice, "alice").await,
        pair("Busy", "InACall")
    );

    // Preferred presence overrides every session.
    let r = post(
        &base,
        &alice,
        "/users/alice/presence/setUserPreferredPresence",
        json!({"availability": "Away", "activity": "Away", "expirationDuration": "PT1H"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(presence(&base, &alice, "alice").await, pair("Away", "Away"));
    let r = post(
        &base,
        &alice,
        "/users/alice/presence/clearUserPreferredPresence",
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        presence(&base, &alice, "alice").await,
        pair("Busy", "InACall")
    );

    // The session expires: the Teams client's Available shows again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        presence(&base, &alice, "alice").await,
        pair("Available", "Available")
    );

    // DoNotDisturb outranks Busy; clearPresence removes our session.
    for (sid, a, b) in [
        ("app", "Busy", "InACall"),
        ("other", "DoNotDisturb", "Presenting"),
    ] {
        let r = post(
            &base,
            &alice,
            set,
            json!({"sessionId": sid, "availability": a, "activity": b, "expirationDuration": "PT5M"}),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(
        presence(&base, &alice, "alice").await,
        pair("DoNotDisturb", "Presenting")
    );
    let r = post(
        &base,
        &alice,
        "/users/alice/presence/clearPresence",
        json!({"sessionId": "other"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        presence(&base, &alice, "alice").await,
        pair("Busy", "InACall")
    );
    post_error(
        &base,
        &alice,
        "/users/alice/presence/clearPresence",
        json!({"sessionId": "other"}),
        404,
        "ItemNotFound",
    )
    .await;

    // Validation: combinations, durations, other users, unknown actions.
    for body in [
        json!({"sessionId": "app", "availability": "Busy", "activity": "InAMeeting"}),
        json!({"sessionId": "app", "availability": "Sleepy", "activity": "Away"}),
        json!({"availability": "Busy", "activity": "InACall"}),
        json!({"sessionId": "app", "availability": "Busy", "activity": "InACall", "expirationDuration": "5 minutes"}),
        json!({"sessionId": "app", "availability": "Busy", "activity": "InACall", "expirationDuration": "PT5H"}),
    ] {
        post_error(&base, &alice, set, body.clone(), 400, "BadRequest").await;
    }
    post_error(
        &base,
        &alice,
        "/users/alice/presence/setUserPreferredPresence",
        json!({"availability": "Busy", "activity": "InACall"}),
        400,
        "BadRequest",
    )
    .await;
    post_error(
        &base,
        &alice,
        "/users/bob/presence/setPresence",
        json!({"sessionId": "app", "availability": "Busy", "activity": "InACall"}),
        403,
        "Forbidden",
    )
    .await;
    post_error(
        &base,
        &alice,
        "/users/alice/presence/setStatusMessage",
        json!({}),
        400,
        "BadRequest",
    )
    .await;
    hub.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn session_expiration_below_pt5m_is_refused_by_default() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let alice = dev_token(&base, "alice").await;
    let message = post_error(&base,
            &alice,
            "/users/alice/presence/setPresence",
            json!({"sessionId": "app", "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1M"}), 400, "BadRequest")
    .await;
    assert!(message.contains("PT5M"));
    hub.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn too_many_requests_answer_429_with_retry_after() {
    let hub = start_hub_with(|c| {
        c.graph.rate_limit = 3;
        c.graph.rate_window = Duration::from_secs(30);
    })
    .await;
    let base = hub.base_url();
    let alice = dev_token(&base, "alice").await;
    for _ in 0..3 {
        assert_eq!(get(&base, &alice, "/me/presence").await.status(), 200);
    }
    let r = get(&base, &alice, "/me/presence").await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    graph_error(r, 429, "TooManyRequests").await;
    // The limit is per user.
    let bob = dev_token(&base, "bob").await;
    assert_eq!(get(&base, &bob, "/me/presence").await.status(), 200);
    hub.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn without_stand_in_push_the_answer_says_none_and_nothing_is_pushed() {
    let hub = start_hub_with(|c| c.graph.stand_in_push = false).await;
    let base = hub.base_url();
    let mut bob = Client::connect(&base, "bob").await;
    let answer = bob
        .invoke_ok("subscribePresence", vec![json!(["alice"])])
        .await;
    assert_eq!(answer["push"], "none");
    let r = sent(
        http()
            .post(format!("{base}/simulator/presence"))
            .json(&json!({"user": "alice", "availability": "Busy", "activity": "InAMeeting"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    // A push would be queued before the simulator answers, so before this completion.
    let answer = bob
        .invoke_ok("subscribePresence", vec![json!(["alice"])])
        .await;
    assert_eq!(answer["value"][0]["availability"], "Busy");
    assert_eq!(bob.queued("PresenceChanged"), 0);
    // The stand-in still answers a poll.
    let token = dev_token(&base, "bob").await;
    let r = post(
        &base,
        &token,
        "/communications/getPresencesByUserId",
        json!({"ids": ["alice"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    hub.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn presence_changes_are_pushed_to_subscribers() {
    let hub = start_hub_with(|c| c.graph.min_session_expiration = Duration::ZERO).await;
    let base = hub.base_url();
    let mut bob = Client::connect(&base, "bob").await;

    let answer = bob
        .invoke_ok("subscribePresence", vec![json!(["alice", "nobody"])])
        .await;
    assert_eq!(
        answer,
        json!({"value": [{"id": "alice", "availability": "Available", "activity": "Available"}], "push": "stand-in"})
    );
    assert_eq!(hub.hub.graph().watcher_count("alice"), 1);

    // The simulator changes alice's Teams presence.
    let r = sent(
        http()
            .post(format!("{base}/simulator/presence"))
            .json(&json!({"user": "alice", "availability": "Busy", "activity": "InAMeeting"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let pushed = bob.expect_invocation("PresenceChanged").await;
    assert_eq!(
        pushed,
        vec![json!({"id": "alice", "availability": "Busy", "activity": "InAMeeting"})]
    );

    // Alice's own write through Graph, then its expiry, are pushed too.
    let alice = dev_token(&base, "alice").await;
    let r = post(
        &base,
        &alice,
        "/users/alice/presence/setPresence",
        json!({"sessionId": "app", "availability": "DoNotDisturb", "activity": "Presenting", "expirationDuration": "PT1S"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let pushed = bob.expect_invocation("PresenceChanged").await;
    assert_eq!(pushed[0]["activity"], "Presenting");
    let pushed = bob.expect_invocation("PresenceChanged").await;
    assert_eq!(
        pushed[0]["activity"], "InAMeeting",
        "after the session expired"
    );

    // Limits and argument errors.
    let ids: Vec<String> = (1..=651).map(|i| format!("colleague-{i:03}")).collect();
    let e = bob.invoke_err("subscribePresence", vec![json!(ids)]).await;
    assert!(e.contains("at most 650"), "{e}");
    let e = bob
        .invoke_err("subscribePresence", vec![json!("alice")])
        .await;
    assert!(e.contains("ids"), "{e}");
    let answer = bob
        .invoke_ok("subscribePresence", vec![json!(ids[..650])])
        .await;
    assert_eq!(answer["value"].as_array().unwrap().len(), 650);

    // Unsubscribed: no more pushes for alice.
    match bob
        .invoke("unsubscribePresence", vec![json!(["alice"])])
        .await
    {
        switchboard_signalr::CompletionOutcome::Void => {}
        other => panic!("expected a void completion, got {other:?}"),
    }
    assert_eq!(hub.hub.graph().watcher_count("alice"), 0);
    hub.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn simulator_page_has_the_teams_presence_control() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let page = get_text(&format!("{base}/simulator")).await;
    assert!(page.contains("Teams presence") && page.contains("/simulator/presence"));
    let r = sent(
        http()
            .post(format!("{base}/simulator/presence"))
            .json(&json!({"user": "alice", "availability": "Busy", "activity": "Lunch"})),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = sent(
        http()
            .post(format!("{base}/simulator/presence"))
            .json(&json!({"user": "alice", "availability": "Offline", "activity": "Offline"})),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["availability"], "Offline");
    hub.shutdown(Duration::from_secs(1)).await;
}

/// Issue 18: client-chosen numbers never overflow (they panicked in debug builds).
#[tokio::test]
async fn huge_skiptoken_and_expiration_do_not_overflow() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let alice = dev_token(&base, "alice").await;

    let r = get(
        &base,
        &alice,
        &format!("/users?$top=999&$skiptoken={}", usize::MAX),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["value"], json!([]));
    assert!(body.get("@odata.nextLink").is_none());

    let r = post(
        &base,
        &alice,
        "/users/alice/presence/setUserPreferredPresence",
        json!({"availability": "Busy", "activity": "Busy", "expirationDuration": "P99999999999999D"}),
    )
    .await;
    assert!(r.status() == 200 || r.status() == 400, "{}", r.status());
    // The hub still answers.
    assert!(!presence(&base, &alice, "alice").await.0.is_empty());
}

#[tokio::test]
async fn group_members_are_paged_and_users_are_read_by_id_or_upn() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let token = dev_token(&base, "bob").await;
    // Following @odata.nextLink: 122 members in pages of the default 100.
    let mut next = Some(format!(
        "{base}{BASE}/groups/switchboard-agents/members?$select=id,displayName,userPrincipalName"
    ));
    let mut pages = Vec::new();
    let mut ids = Vec::new();
    while let Some(url) = next.take() {
        assert!(pages.len() < 10, "paging does not end");
        let body: Value = sent(http().get(&url).bearer_auth(&token))
            .await
            .json()
            .await
            .unwrap();
        let page = body["value"].as_array().unwrap();
        pages.push(page.len());
        ids.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        next = body["@odata.nextLink"]
            .as_str()
            .map(|l| format!("{base}{l}"));
    }
    assert_eq!(pages, [100, 22]);
    assert_eq!(ids[..3], ["alice", "bob", "colleague-001"]);
    assert_eq!(ids.last().unwrap(), "colleague-120");
    // $top changes the page size.
    let body: Value = get(&base, &token, "/groups/switchboard-agents/members?$top=50")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 50);
    let r = get(&base, &token, "/groups/nobody/members").await;
    graph_error(r, 404, "Request_ResourceNotFound").await;

    for key in ["alice", "alice@switchboard.test"] {
        let body: Value = get(&base, &token, &format!("/users/{key}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            body,
            json!({"id": "alice", "displayName": "Alice Adams", "userPrincipalName": "alice@switchboard.test"})
        );
    }
    graph_error(
        get(&base, &token, "/users/nobody").await,
        404,
        "ItemNotFound",
    )
    .await;
    hub.shutdown(Duration::from_secs(1)).await;
}
