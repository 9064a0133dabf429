//! End-to-end tests of the hub over real sockets on 127.0.0.1 (DESIGN.md §3).

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_hub::auth::{AccessKey, DevTokens, unix_now};
use switchboard_signalr::CompletionOutcome;
use tokio_tungstenite::tungstenite::Message;

// ----- auth ------------------------------------------------------------------------------------

#[tokio::test]
async fn dev_token_is_issued_and_validated() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let r = sent(
        http()
            .post(format!("{base}/dev/token"))
            .json(&json!({"user": "alice"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let token = body["accessToken"].as_str().unwrap();
    let expires = body["expiresOn"].as_u64().unwrap();
    assert!(expires > unix_now() + 3500 && expires <= unix_now() + 3600);
    let claims = switchboard_core::jwt::read_claims(token).unwrap();
    assert_eq!(claims.sub.as_deref(), Some("alice"));

    for bad in [
        json!({"user": ""}),
        json!({"user": "a b"}),
        json!({"user": "x".repeat(65)}),
        json!({}),
    ] {
        let r = sent(http().post(format!("{base}/dev/token")).json(&bad)).await;
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("user"));
    }
    let r = sent(http().post(format!("{base}/dev/token")).body("nope")).await;
    assert_eq!(r.status(), 400);

    // A good token negotiates.
    let r = sent(
        http()
            .post(format!("{base}/api/negotiate"))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(r.status(), 200);

    // Missing, bad signature, expired, wrong audience: 401 with a JSON error.
    let now = unix_now();
    let other_key = DevTokens::new("another key")
        .issue("alice", now)
        .access_token;
    let expired = DevTokens::new(KEY)
        .issue_with_expiry("alice", now - 7200, now - 3600)
        .access_token;
    let hub_token = AccessKey::new(KEY).issue_client_token(
        &format!("{base}/client/?hub=switchboard"),
        Some("alice"),
        now,
    );
    for (name, token) in [
        ("bad signature", other_key),
        ("expired", expired),
        ("wrong aud", hub_token),
        ("garbage", "a.b.c".into()),
    ] {
        let r = sent(
            http()
                .post(format!("{base}/api/negotiate"))
                .bearer_auth(&token),
        )
        .await;
        assert_eq!(r.status(), 401, "{name}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().starts_with("Invalid token"),
            "{name}: {body}"
        );
    }
    let r = sent(http().get(format!("{base}/api/negotiate"))).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
}

/// `POST /client/negotiate?hub=switchboard&negotiateVersion=1` with the hub access token → the
/// answer.
async fn negotiate_v1(base: &str, access_token: &str) -> Value {
    sent(
        http()
            .post(format!(
                "{base}/client/negotiate?hub=switchboard&negotiateVersion=1"
            ))
            .bearer_auth(access_token),
    )
    .await
    .json()
    .await
    .unwrap()
}

#[tokio::test]
async fn negotiate_redirect_and_client_endpoint() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let token = dev_token(&base, "alice").await;
    let (url, access_token) = negotiate_redirect(&base, &token).await;
    assert_eq!(url, format!("{base}/client/?hub=switchboard"));
    let claims = jwt_payload(&access_token);
    assert_eq!(claims["aud"], url);
    assert_eq!(claims["nameid"], "alice");

    // ?hub= picks another hub; the GET form works too.
    let r = sent(
        http()
            .get(format!("{base}/api/negotiate?hub=chat"))
            .bearer_auth(&token),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["url"], format!("{base}/client/?hub=chat"));

    // v1 and v0 answers; localhost and 127.0.0.1 are the same audience.
    let v1 = negotiate_v1(&base, &access_token).await;
    assert_eq!(v1["negotiateVersion"], 1);
    assert!(v1["connectionToken"].is_string() && v1["connectionId"].is_string());
    assert_eq!(
        v1["availableTransports"],
        json!([
            {"transport":"WebSockets","transferFormats":["Text","Binary"]},
            {"transport":"ServerSentEvents","transferFormats":["Text"]},
            {"transport":"LongPolling","transferFormats":["Text","Binary"]}
        ])
    );
    let localhost = base.replace("127.0.0.1", "localhost");
    let v0: Value = sent(http().post(format!(
        "{localhost}/client/negotiate?hub=switchboard&access_token={access_token}"
    )))
    .await
    .json()
    .await
    .unwrap();
    assert!(v0.get("connectionToken").is_none());
    assert!(v0["connectionId"].is_string());

    // Wrong hub, no token, bad token: 401.
    for (path, auth) in [
        (
            "/client/negotiate?hub=other&negotiateVersion=1",
            Some(access_token.as_str()),
        ),
        ("/client/negotiate?hub=switchboard&negotiateVersion=1", None),
        (
            "/client/negotiate?hub=switchboard&negotiateVersion=1",
            Some(token.as_str()),
        ),
    ] {
        let mut req = http().post(format!("{base}{path}"));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        assert_eq!(req.send().await.unwrap().status(), 401, "{path}");
    }

    // The connection token is single use.
    let conn_token = v1["connectionToken"].as_str().unwrap();
    let ws_url = format!(
        "ws://{}/client/?hub=switchboard&id={conn_token}&access_token={access_token}",
        hub.addr
    );
    let (ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    drop(ws);
    let err = tokio_tungstenite::connect_async(&ws_url).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");

    // A full connection through the sans-IO client core.
    let mut alice = Client::connect(&base, "alice").await;
    assert_eq!(
        alice.invoke("sendMessage", vec![json!("Accepted")]).await,
        CompletionOutcome::Void
    );
    eventually(|| hub.hub.connection_count() == 1).await;
}

// ----- SendMessageToUser ---------------------------------------------------------------------

#[tokio::test]
async fn send_message_to_user() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let url = format!("{base}/api/SendMessageToUser");
    let body = json!({"userId": "alice", "message": "{\"PhoneNumber\":\"+15551234567\",\"comments\":\"Billing\"}"});

    let r = sent(http().post(&url).json(&body)).await;
    assert_eq!(r.status(), 401);
    let r = sent(
        http()
            .post(&url)
            .header("x-functions-key", "wrong")
            .json(&body),
    )
    .await;
    assert_eq!(r.status(), 401);
    let r = sent(http().post(format!("{url}?code=wrong")).json(&body)).await;
    assert_eq!(r.status(), 401);

    // Nobody connected: a call is refused 409 `offline` (agent state, issue 15), another
    // message gets the exact seed body; no call is registered either way.
    let r = sent(http().post(format!("{url}?code={KEY}")).json(&body)).await;
    assert_eq!(r.status(), 409);
    let refusal: Value = r.json().await.unwrap();
    assert_eq!(
        (refusal["reason"].as_str(), refusal["userId"].as_str()),
        (Some("offline"), Some("alice"))
    );
    let chat = json!({"userId": "alice", "message": "{\"text\":\"hello\"}"});
    let r = sent(http().post(format!("{url}?code={KEY}")).json(&chat)).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "User Not Connected Currently");
    assert!(hub.hub.newest_calls(10).is_empty());

    // Bad bodies.
    for bad in [json!({"message": "x"}), json!({"userId": "alice"})] {
        let r = sent(http().post(&url).header("x-functions-key", KEY).json(&bad)).await;
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("is required"));
    }
    let r = sent(
        http()
            .post(&url)
            .header("x-functions-key", KEY)
            .body("{oops"),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not valid JSON"));

    let mut alice = Client::connect(&base, "alice").await;
    let r = sent(http().post(&url).header("x-functions-key", KEY).json(&body)).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    let call_id = answer["callId"].as_str().unwrap().to_owned();
    let args = alice.expect_invocation("ReceiveNotification").await;
    let message: Value = serde_json::from_str(args[0].as_str().unwrap()).unwrap();
    assert_eq!(
        message,
        json!({"PhoneNumber": "+15551234567", "comments": "Billing", "callId": call_id})
    );

    // The message's own callId is used; the route matches without regard to case; ?code= works.
    let body = json!({"userId": "alice", "message": "{\"PhoneNumber\":\"+15551234567\",\"callId\":\"tel-42\"}"});
    let r = sent(
        http()
            .post(format!("{base}/api/sendmessagetouser?code={KEY}"))
            .json(&body),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"callId": "tel-42"})
    );
    let args = alice.expect_invocation("ReceiveNotification").await;
    assert_eq!(
        args[0],
        json!("{\"PhoneNumber\":\"+15551234567\",\"callId\":\"tel-42\"}")
    );

    // A non-call message is forwarded unchanged and registers nothing.
    let body = json!({"userId": "alice", "message": "hello"});
    let r = sent(http().post(&url).header("x-functions-key", KEY).json(&body)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    assert_eq!(
        alice.expect_invocation("ReceiveNotification").await,
        vec![json!("hello")]
    );

    // The registry sees the ringing call.
    let r = sent(
        http()
            .get(format!("{base}/api/calls/tel-42"))
            .header("x-functions-key", KEY),
    )
    .await;
    let call: Value = r.json().await.unwrap();
    assert_eq!(call["state"], "ringing");
    assert_eq!(call["agent"], "alice");
    assert_eq!(call["phoneNumber"], "+15551234567");
    assert_eq!(call["direction"], "inbound");
    assert!(call["createdAt"].as_u64().unwrap() > 1_700_000_000_000);
    let r = sent(http().get(format!("{base}/api/calls/tel-42"))).await;
    assert_eq!(r.status(), 401);
    let r = sent(http().get(format!("{base}/api/calls/nope?code={KEY}"))).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn user_client_route() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let url = format!("{base}/api/userclient");
    let body = json!({"userId": "alice", "connectionId": "c1", "connectionStatus": "connected"});
    assert_eq!(sent(http().post(&url).json(&body)).await.status(), 401);
    let r = sent(
        http()
            .post(&url)
            .header("x-functions-key", KEY)
            .json(&json!({"connectionId": "c1"})),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "userId is required");
    let r = sent(http().post(&url).header("x-functions-key", KEY).json(&body)).await;
    assert_eq!(r.status(), 200);
    let token = dev_token(&base, "alice").await;
    let r = sent(
        http()
            .post(format!("{base}/api/UserClient"))
            .bearer_auth(&token)
            .json(&body),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = sent(
        http()
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({"userId": "bob"})),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        hub.hub
            .user_client("alice")
            .unwrap()
            .connection_status
            .as_deref(),
        Some("connected")
    );
}

// ----- Azure SignalR REST ----------------------------------------------------------------------

#[tokio::test]
async fn azure_rest_send_to_user() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let path = "/api/v1/hubs/switchboard/users/alice";
    let send = |token: String| {
        http()
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&json!({"target": "IncomingCall", "arguments": [{"phoneNumber": "+14255550123", "callerName": "Dana"}]}))
            .send()
    };

    // HEAD: 404 while alice is away; an IncomingCall for her is refused 409 `offline`
    // (agent state, issue 15; Azure itself answers 202 to any send).
    let head = |token: String| {
        http()
            .head(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(head(rest_token(&base, path)).await.unwrap().status(), 404);
    let r = send(rest_token(&base, path)).await.unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["reason"], "offline");

    let mut alice = Client::connect(&base, "alice").await;
    assert_eq!(head(rest_token(&base, path)).await.unwrap().status(), 200);
    assert_eq!(send(rest_token(&base, path)).await.unwrap().status(), 202);
    let args = alice.expect_invocation("IncomingCall").await;
    assert_eq!(args[0]["phoneNumber"], "+14255550123");
    let call_id = args[0]["callId"]
        .as_str()
        .expect("a callId is injected")
        .to_owned();
    assert_eq!(hub.hub.call(&call_id).unwrap().agent, "alice");

    // The 2022-06-01 paths of newer SDKs (aud without the api-version query).
    assert_eq!(
        rest(
            Method::POST,
            &base,
            "/api/hubs/switchboard/users/alice/:send",
            "?api-version=2022-06-01",
            Some(json!({"target": "ReceiveNotification", "arguments": ["v2"]}))
        )
        .await,
        202
    );
    assert_eq!(
        alice.expect_invocation("ReceiveNotification").await,
        vec![json!("v2")]
    );
    assert_eq!(
        rest(
            Method::HEAD,
            &base,
            "/api/hubs/switchboard/users/alice",
            "?api-version=2022-06-01",
            None
        )
        .await,
        200
    );

    // Wrong audience, expired, other key, none: 401.
    let now = unix_now();
    let key = AccessKey::new(KEY);
    for (name, token) in [
        (
            "wrong aud",
            key.sign(
                &format!("{base}/api/v1/hubs/switchboard/users/bob"),
                None,
                now,
                now + 60,
            ),
        ),
        (
            "expired",
            key.sign(&format!("{base}{path}"), None, now - 7200, now - 3600),
        ),
        (
            "other key",
            AccessKey::new("nope").sign(&format!("{base}{path}"), None, now, now + 60),
        ),
    ] {
        assert_eq!(send(token.clone()).await.unwrap().status(), 401, "{name}");
        assert_eq!(head(token).await.unwrap().status(), 401, "{name}");
    }
    assert_eq!(
        sent(
            http()
                .post(format!("{base}{path}"))
                .json(&json!({"target": "x"}))
        )
        .await
        .status(),
        401
    );

    // Bad payload: 400.
    assert_eq!(
        rest(
            Method::POST,
            &base,
            path,
            "",
            Some(json!({"arguments": []}))
        )
        .await,
        400
    );

    // Broadcast, group and connection sends.
    assert_eq!(
        v1(
            &base,
            Method::POST,
            "",
            Some(json!({"target": "PresenceChanged", "arguments": [{"availability": "Busy"}]}))
        )
        .await,
        202
    );
    assert_eq!(
        alice.expect_invocation("PresenceChanged").await,
        vec![json!({"availability": "Busy"})]
    );
    assert_eq!(
        v1(&base, Method::PUT, "/groups/sales/users/alice", None).await,
        200
    );
    assert_eq!(
        v1(
            &base,
            Method::POST,
            "/groups/sales",
            Some(json!({"target": "Team", "arguments": ["hi"]}))
        )
        .await,
        202
    );
    assert_eq!(alice.expect_invocation("Team").await, vec![json!("hi")]);
    assert_eq!(
        v1(&base, Method::DELETE, "/groups/sales/users/alice", None).await,
        200
    );
    assert_eq!(v1(&base, Method::HEAD, "/groups/sales", None).await, 404);
}

/// A signed REST request to `/api/v1/hubs/switchboard{path}` → the HTTP status.
async fn v1(base: &str, method: Method, path: &str, body: Option<Value>) -> reqwest::StatusCode {
    rest(
        method,
        base,
        &format!("/api/v1/hubs/switchboard{path}"),
        "",
        body,
    )
    .await
}

// ----- call control ------------------------------------------------------------------------------

async fn ring(base: &str, user: &str, call_id: &str) {
    let message =
        json!({"PhoneNumber": "+14255550123", "callId": call_id, "callerName": "Dana"}).to_string();
    let r = sent(
        http()
            .post(format!("{base}/api/SendMessageToUser"))
            .header("x-functions-key", KEY)
            .json(&json!({"userId": user, "message": message})),
    )
    .await;
    assert_eq!(r.status(), 200);
}

async fn registry_state(base: &str, call_id: &str) -> Value {
    get_json(&format!("{base}/api/calls/{call_id}?code={KEY}")).await
}

#[tokio::test]
async fn call_control_updates_the_registry_and_every_tab() {
    // Call control, not routing: alice is rung again right after hanging up (WrapUp would
    // refuse it), so every state rings here. Routing is tests/agents.rs.
    let hub = start_hub_with(|c| c.agents.routable = vec!["*".into()]).await;
    let base = hub.base_url();
    let mut tab1 = Client::connect(&base, "alice").await;
    let mut tab2 = Client::connect(&base, "alice").await;
    let mut bob = Client::connect(&base, "bob").await;

    // accept → accepted, both tabs hear CallUpdated; hang up → ended, CallEnded completed.
    ring(&base, "alice", "c1").await;
    tab1.expect_invocation("ReceiveNotification").await;
    tab2.expect_invocation("ReceiveNotification").await;
    assert_eq!(
        bob.invoke_err("acceptCall", vec![json!("c1")]).await,
        "Call c1 is not offered to you"
    );
    let call = tab1.invoke_ok("acceptCall", vec![json!("c1")]).await;
    assert_eq!(call["state"], "accepted");
    assert_eq!(call["callId"], "c1");
    assert!(call["answeredAt"].is_u64());
    let updated = tab2.expect_invocation("CallUpdated").await;
    assert_eq!(updated[0]["state"], "accepted");
    assert_eq!(registry_state(&base, "c1").await["state"], "accepted");
    assert_eq!(
        tab1.invoke("sendMessage", vec![json!("Accepted")]).await,
        CompletionOutcome::Void
    );
    assert_eq!(
        registry_state(&base, "c1").await["acknowledgement"],
        "Accepted"
    );
    let call = tab1.invoke_ok("HANGUP", vec![json!("c1")]).await;
    assert_eq!(call["state"], "ended");
    assert_eq!(
        tab2.expect_invocation("CallUpdated").await[0]["state"],
        "ended"
    );
    // The invoking tab hears the updates too, in order.
    assert_eq!(
        tab1.expect_invocation("CallUpdated").await[0]["state"],
        "accepted"
    );
    assert_eq!(
        tab1.expect_invocation("CallUpdated").await[0]["state"],
        "ended"
    );
    assert_eq!(
        tab2.expect_invocation("CallEnded").await,
        vec![json!("c1"), json!("completed")]
    );
    assert_eq!(
        tab1.expect_invocation("CallEnded").await,
        vec![json!("c1"), json!("completed")]
    );
    assert_eq!(registry_state(&base, "c1").await["state"], "ended");

    // reject with timeout → missed; accepting then fails with a clear text.
    ring(&base, "alice", "c2").await;
    let call = tab1
        .invoke_ok("rejectCall", vec![json!("c2"), json!("timeout")])
        .await;
    assert_eq!(call["state"], "missed");
    assert_eq!(call["rejectReason"], "timeout");
    let reg = registry_state(&base, "c2").await;
    assert_eq!(reg["state"], "missed");
    assert!(reg["endedAt"].is_u64());
    assert_eq!(
        tab1.expect_invocation("CallEnded").await,
        vec![json!("c2"), json!("missed")]
    );
    assert_eq!(
        tab1.invoke_err("acceptCall", vec![json!("c2")]).await,
        "Call c2 is missed, it can no longer be accepted"
    );

    // declined → rejected.
    ring(&base, "alice", "c3").await;
    let call = tab2
        .invoke_ok("rejectCall", vec![json!("c3"), json!("declined")])
        .await;
    assert_eq!(call["state"], "rejected");
    assert_eq!(
        tab1.expect_invocation("CallEnded").await,
        vec![json!("c3"), json!("rejected")]
    );

    // Argument and id errors.
    assert_eq!(
        tab1.invoke_err("acceptCall", vec![json!("zzz")]).await,
        "Unknown call 'zzz'"
    );
    assert!(
        tab1.invoke_err("acceptCall", vec![])
            .await
            .contains("provides 0 argument")
    );
    assert!(
        tab1.invoke_err("rejectCall", vec![json!("c3"), json!("later")])
            .await
            .contains("reason must be one of")
    );
    ring(&base, "alice", "c4").await;
    assert!(
        tab1.invoke_err("hangUp", vec![json!("c4")])
            .await
            .contains("is ringing")
    );

    // The caller abandons a ringing call (simulator).
    let r = sent(http().post(format!("{base}/simulator/calls/c4/abandon"))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        tab1.expect_invocation("CallEnded").await,
        vec![json!("c4"), json!("abandoned")]
    );
    assert_eq!(registry_state(&base, "c4").await["state"], "ended");
}

#[tokio::test]
async fn ring_backstop_marks_unanswered_calls_missed() {
    let hub = start_hub_with(|c| c.ring_timeout = Duration::from_millis(300)).await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    ring(&base, "alice", "slow").await;
    alice.expect_invocation("ReceiveNotification").await;
    assert_eq!(
        alice.expect_invocation("CallEnded").await,
        vec![json!("slow"), json!("missed")]
    );
    assert_eq!(registry_state(&base, "slow").await["state"], "missed");
}

#[tokio::test]
async fn simulator_rings_through_the_same_path() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let page = get_text(&format!("{base}/simulator")).await;
    assert!(page.contains("<label for=\"agent\">") && !page.contains("innerHTML"));
    let ring = json!({"agent": "alice", "phoneNumber": "+14255550123", "callerName": "Dana", "queue": "Sales"});
    let r = sent(http().post(format!("{base}/simulator/ring")).json(&ring)).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["reason"], "offline");
    let mut alice = Client::connect(&base, "alice").await;
    let r = sent(http().post(format!("{base}/simulator/ring")).json(&ring)).await;
    assert_eq!(r.status(), 200);
    let call_id = r.json::<Value>().await.unwrap()["callId"]
        .as_str()
        .unwrap()
        .to_owned();
    let args = alice.expect_invocation("ReceiveNotification").await;
    let message: Value = serde_json::from_str(args[0].as_str().unwrap()).unwrap();
    assert_eq!(message["callId"], call_id);
    assert_eq!(message["queue"], "Sales");
    let calls: Value = get_json(&format!("{base}/simulator/calls")).await;
    assert_eq!(calls[0]["callId"], call_id);
    assert_eq!(calls[0]["state"], "ringing");
    let bad = json!({"agent": "alice", "phoneNumber": "<b>"});
    assert_eq!(
        sent(http().post(format!("{base}/simulator/ring")).json(&bad))
            .await
            .status(),
        400
    );
}

// ----- protocol edge cases ---------------------------------------------------------------------

#[tokio::test]
async fn unknown_protocol_handshake_is_refused() {
    let hub = start_hub().await;
    let mut ws = open_socket(&hub.base_url(), "alice").await;
    ws.send(Message::text("{\"protocol\":\"xml\",\"version\":1}\u{1e}"))
        .await
        .unwrap();
    let frame = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        frame.into_text().unwrap().as_str(),
        "{\"error\":\"Requested protocol 'xml' is not available.\"}\u{1e}"
    );
    // Then the socket closes.
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => {}
        }
    }
    assert_eq!(hub.hub.connection_count(), 0);
}

#[tokio::test]
async fn malformed_records_and_unknown_methods_keep_the_connection() {
    let hub = start_hub().await;
    let mut alice = Client::connect(&hub.base_url(), "alice").await;
    alice
        .send_raw("this is not json\u{1e}{\"type\":1}\u{1e}[1,2]\u{1e}")
        .await;
    assert_eq!(
        alice.invoke_err("noSuchMethod", vec![]).await,
        "Unknown hub method 'noSuchMethod'"
    );
    // Records split across frames, and several in one frame.
    alice
        .send_raw("{\"type\":1,\"target\":\"sendMessage\",\"argu")
        .await;
    alice.send_raw("ments\":[\"x\"],\"invocationId\":\"a\"}\u{1e}{\"type\":6}\u{1e}{\"type\":1,\"target\":\"bogus\",\"arguments\":[],\"invocationId\":\"b\"}\u{1e}").await;
    assert_eq!(
        alice.invoke("sendMessage", vec![json!("Rejected")]).await,
        CompletionOutcome::Void
    );
    assert!(alice.core.is_connected());
}

#[tokio::test]
async fn oversized_messages_close_with_the_limit() {
    let hub = start_hub().await;
    let mut alice = Client::connect(&hub.base_url(), "alice").await;
    let big = format!(
        "{{\"type\":1,\"target\":\"sendMessage\",\"arguments\":[\"{}\"]}}\u{1e}",
        "x".repeat(40 * 1024)
    );
    alice.send_raw(&big).await;
    let (error, allow_reconnect) = alice.expect_closed().await;
    let error = error.unwrap();
    assert!(error.contains("32768"), "{error}");
    assert!(!allow_reconnect);
}

#[tokio::test]
async fn client_timeout_and_shutdown_send_close_messages() {
    let hub = start_hub_with(|c| {
        c.timeouts.client_timeout = Duration::from_millis(400);
        c.timeouts.keep_alive = Duration::from_millis(100);
    })
    .await;
    let base = hub.base_url();
    // Say nothing after the handshake: pings arrive, then Close "Client timeout".
    let mut ws = open_socket(&base, "alice").await;
    ws.send(Message::text("{\"protocol\":\"json\",\"version\":1}\u{1e}"))
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("\"type\":7") {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => seen.push_str(t.as_str()),
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    assert!(seen.starts_with("{}\u{1e}"), "{seen:?}");
    assert!(seen.contains("{\"type\":6}"), "{seen:?}");
    assert!(seen.contains("\"error\":\"Client timeout\""), "{seen:?}");
    assert!(
        seen.contains("\"allowReconnect\":true"),
        "a timed-out client may come back: {seen:?}"
    );

    // Shutdown: Close with allowReconnect.
    let hub = start_hub().await;
    let mut alice = Client::connect(&hub.base_url(), "alice").await;
    let state = hub.hub.clone();
    let stopping = tokio::spawn(hub.shutdown(Duration::from_secs(2)));
    let (_, allow_reconnect) = alice.expect_closed().await;
    assert!(allow_reconnect);
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
    assert_eq!(state.connection_count(), 0);
}

#[tokio::test]
async fn unused_connection_tokens_expire() {
    let hub =
        start_hub_with(|c| c.timeouts.connection_token_ttl = Duration::from_millis(100)).await;
    let base = hub.base_url();
    let token = dev_token(&base, "alice").await;
    let (_, access_token) = negotiate_redirect(&base, &token).await;
    let v1 = negotiate_v1(&base, &access_token).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!(
        "ws://{}/client/?hub=switchboard&id={}&access_token={access_token}",
        hub.addr,
        v1["connectionToken"].as_str().unwrap()
    );
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn silent_sockets_are_dropped_after_the_handshake_timeout() {
    let hub = start_hub_with(|c| c.timeouts.handshake = Duration::from_millis(200)).await;
    let mut ws = open_socket(&hub.base_url(), "alice").await;
    // No handshake: the hub closes the socket without a word.
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {}
        Some(Ok(other)) => panic!("unexpected frame {other:?}"),
    }
    assert_eq!(hub.hub.connection_count(), 0);
}

#[tokio::test]
async fn static_files_with_spa_fallback() {
    let dir = std::env::temp_dir().join(format!("switchboard-hub-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>widget</title>",
    )
    .unwrap();
    std::fs::write(dir.join("config.json"), "{\"auth\":{\"mode\":\"dev\"}}").unwrap();
    let hub = start_hub_with(|c| c.static_dir = Some(dir.clone())).await;
    let base = hub.base_url();
    let index = sent(http().get(format!("{base}/?user=alice"))).await;
    assert_eq!(index.status(), 200);
    assert!(index.text().await.unwrap().contains("widget"));
    let config = sent(http().get(format!("{base}/config.json"))).await;
    assert_eq!(config.json::<Value>().await.unwrap()["auth"]["mode"], "dev");
    let deep = sent(http().get(format!("{base}/some/route"))).await;
    assert_eq!(deep.status(), 200);
    assert!(deep.text().await.unwrap().contains("widget"));
    // API routes still win.
    assert_eq!(
        sent(http().get(format!("{base}/api/negotiate")))
            .await
            .status(),
        401
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn cors_preflight_for_the_browser_routes() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let r = sent(
        http()
            .request(
                reqwest::Method::OPTIONS,
                format!("{base}/client/negotiate?hub=switchboard&negotiateVersion=1"),
            )
            .header("origin", "https://crm.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,x-signalr-user-agent",
            ),
    )
    .await;
    assert!(r.status().is_success());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://crm.example"
    );
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
}
