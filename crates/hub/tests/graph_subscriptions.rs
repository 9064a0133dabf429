//! The hub as a Graph change-notification subscriber (`graph_link`) against a second hub's
//! Graph stand-in (`graph_subscriptions`): the real protocol end to end over loopback HTTP.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard_hub::RunningHub;
use switchboard_hub::graph_link::LinkConfig;

/// Hub A: the Graph stand-in. Hub B: subscribes to A's stand-in with app credentials,
/// asking for `lifetime` seconds and renewing with `renew_before` left.
async fn pair_with(lifetime: u64, renew_before: u64) -> (RunningHub, RunningHub) {
    let graph = start_hub().await;
    let a = graph.base_url();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = format!("http://{}", listener.local_addr().unwrap());
    let mut config = switchboard_hub::HubConfig::new(KEY);
    let mut link = LinkConfig::new(
        "contoso",
        "switchboard-test-app",
        KEY,
        &format!("{b}/api/graph/notifications"),
    );
    link.base_url = format!("{a}/graph/v1.0");
    link.token_url = format!("{a}/graph/login/contoso/oauth2/v2.0/token");
    link.expiration = Duration::from_secs(lifetime);
    link.renew_before = Duration::from_secs(renew_before);
    config.graph.link = Some(link);
    let hub = switchboard_hub::serve(listener, config).unwrap();
    (graph, hub)
}

/// Subscriptions of an hour, renewed with 10 min left: no renewal happens during a test, so
/// recoveries come from the lifecycle handling alone.
async fn pair() -> (RunningHub, RunningHub) {
    pair_with(3600, 600).await
}

fn subscription_ids(hub: &RunningHub) -> Vec<String> {
    hub.hub.graph().link().unwrap().subscription_ids()
}

/// Waits for `PresenceChanged` of `id` with this availability (skipping others).
async fn expect_presence(client: &mut Client, id: &str, availability: &str) -> Value {
    for _ in 0..10 {
        let args = client.expect_invocation("PresenceChanged").await;
        if args[0]["id"] == id && args[0]["availability"] == availability {
            return args[0].clone();
        }
    }
    panic!("no PresenceChanged {id} {availability}");
}

async fn simulate(graph: &str, user: &str, availability: &str, activity: &str) {
    let r = sent(
        http()
            .post(format!("{graph}/simulator/presence"))
            .json(&json!({"user": user, "availability": availability, "activity": activity})),
    )
    .await;
    assert_eq!(r.status(), 200);
}

/// The stand-in's test hook: sends lifecycle event `event` for subscription `id` (202).
async fn lifecycle_event(graph: &str, id: &str, event: &str) {
    let path = format!("/test/subscriptions/{id}/lifecycle");
    assert_eq!(
        hook(graph, &path, json!({ "lifecycleEvent": event })).await,
        202
    );
}

async fn hook(graph: &str, path: &str, body: Value) -> u16 {
    let token = dev_token(graph, "tester").await;
    sent(
        http()
            .post(format!("{graph}/graph/v1.0{path}"))
            .bearer_auth(token)
            .json(&body),
    )
    .await
    .status()
    .as_u16()
}

async fn metric(base: &str, outcome: &str) -> f64 {
    let text = get_text(&format!("{base}/metrics")).await;
    let prefix = format!("switchboard_graph_notifications_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn lifecycle_metric(base: &str, event: &str) -> f64 {
    let text = get_text(&format!("{base}/metrics")).await;
    let prefix = format!("switchboard_graph_lifecycle_total{{event=\"{event}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_stand_in_change_reaches_a_signalr_client_through_the_subscription() {
    let (graph, hub) = pair().await;
    let (a, b) = (graph.base_url(), hub.base_url());
    let mut bob = Client::connect(&b, "bob").await;
    let answer = bob
        .invoke_ok("subscribePresence", vec![json!(["alice", "colleague-002"])])
        .await;
    assert_eq!(answer["push"], "subscriptions");
    // The initial read (getPresencesByUserId) is pushed.
    expect_presence(&mut bob, "alice", "Available").await;
    eventually(|| subscription_ids(&hub).len() == 1).await;
    let sid = subscription_ids(&hub)[0].clone();

    // The subscription as Graph holds it: our resource, changeType, an expiry ≤ 60 min.
    let token = dev_token(&a, "tester").await;
    let held: Value = sent(
        http()
            .get(format!("{a}/graph/v1.0/subscriptions/{sid}"))
            .bearer_auth(&token),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(held["changeType"], "updated");
    assert_eq!(
        held["resource"],
        "/communications/presences?$filter=id in ('alice','colleague-002')"
    );
    assert_eq!(
        held["notificationUrl"],
        format!("{b}/api/graph/notifications")
    );

    // GET /subscriptions lists the app's own live subscriptions (not another caller's).
    let app: Value = sent(
        http()
            .post(format!("{a}/graph/login/contoso/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "switchboard-test-app"),
                ("client_secret", KEY),
            ]),
    )
    .await
    .json()
    .await
    .unwrap();
    let app = app["access_token"].as_str().unwrap();
    let listed: Value = sent(
        http()
            .get(format!("{a}/graph/v1.0/subscriptions"))
            .bearer_auth(app),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(listed["value"].as_array().unwrap().len(), 1);
    assert_eq!(listed["value"][0]["id"], sid.as_str());
    let theirs: Value = sent(
        http()
            .get(format!("{a}/graph/v1.0/subscriptions"))
            .bearer_auth(&token),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(theirs["value"], json!([]));

    simulate(&a, "alice", "Busy", "InAMeeting").await;
    let p = expect_presence(&mut bob, "alice", "Busy").await;
    assert_eq!(p["activity"], "InAMeeting");

    // The validation handshake answers the token as text/plain.
    let r = sent(http().post(format!(
        "{b}/api/graph/notifications?validationToken=abc%20123"
    )))
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(r.text().await.unwrap(), "abc 123");

    // A notification with a wrong clientState is ignored and counted.
    let before = metric(&b, "rejected").await;
    let forged = json!({"value": [{"subscriptionId": sid, "clientState": "guess",
        "changeType": "updated", "resource": "communications/presences('alice')",
        "resourceData": {"id": "alice"}}]});
    let r = sent(
        http()
            .post(format!("{b}/api/graph/notifications"))
            .json(&forged),
    )
    .await;
    assert_eq!(r.status(), 202);
    assert!(metric(&b, "rejected").await >= before + 1.0);
    hub.shutdown(Duration::from_secs(1)).await;
    graph.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn lifecycle_events_are_handled() {
    let (graph, hub) = pair().await;
    let (a, b) = (graph.base_url(), hub.base_url());
    let mut bob = Client::connect(&b, "bob").await;
    bob.invoke_ok("subscribePresence", vec![json!(["alice"])])
        .await;
    expect_presence(&mut bob, "alice", "Available").await;
    eventually(|| subscription_ids(&hub).len() == 1).await;
    let first = subscription_ids(&hub)[0].clone();

    // `missed`: the stand-in drops the change notification and sends `missed`; the hub
    // resyncs through getPresencesByUserId and the change still arrives.
    lifecycle_event(&a, &first, "missed").await;
    simulate(&a, "alice", "DoNotDisturb", "Presenting").await;
    expect_presence(&mut bob, "alice", "DoNotDisturb").await;
    assert!(lifecycle_metric(&b, "missed").await >= 1.0);

    // `subscriptionRemoved`: created again (a new id), changes flow again.
    lifecycle_event(&a, &first, "subscriptionRemoved").await;
    eventually(|| subscription_ids(&hub).first().is_some_and(|s| *s != first)).await;
    let second = subscription_ids(&hub)[0].clone();
    simulate(&a, "alice", "Away", "Away").await;
    expect_presence(&mut bob, "alice", "Away").await;

    // `reauthorizationRequired`: notifications are withheld until the hub renews.
    lifecycle_event(&a, &second, "reauthorizationRequired").await;
    simulate(&a, "alice", "Busy", "InACall").await;
    expect_presence(&mut bob, "alice", "Busy").await;

    hub.shutdown(Duration::from_secs(1)).await;
    graph.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_stand_in_enforces_subscription_limits_and_the_handshake() {
    let graph = start_hub().await;
    let a = graph.base_url();
    // The dev token endpoint: client credentials with the AccessKey as secret.
    let r = sent(
        http()
            .post(format!("{a}/graph/login/t/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "app"),
                ("client_secret", "wrong"),
            ]),
    )
    .await;
    assert_eq!(r.status(), 401);
    let r: Value = sent(
        http()
            .post(format!("{a}/graph/login/t/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "app"),
                ("client_secret", KEY),
            ]),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = r["access_token"].as_str().unwrap().to_owned();
    let create = |body: Value| {
        let (a, token) = (a.clone(), token.clone());
        async move {
            let r = sent(
                http()
                    .post(format!("{a}/graph/v1.0/subscriptions"))
                    .bearer_auth(token)
                    .json(&body),
            )
            .await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let in_30_min = switchboard_core::presence::subscriptions::format_utc(
        switchboard_hub::auth::unix_now_ms() + 30 * 60_000,
    );
    let in_61_min = switchboard_core::presence::subscriptions::format_utc(
        switchboard_hub::auth::unix_now_ms() + 61 * 60_000,
    );
    let ids: Vec<String> = (1..=651).map(|i| format!("'colleague-{i:03}'")).collect();
    let body = |resource: String, expiry: &str, url: &str| {
        json!({"changeType": "updated", "resource": resource, "expirationDateTime": expiry,
               "notificationUrl": url, "clientState": "s"})
    };
    // 651 ids → 400.
    let (s, e) = create(body(
        format!(
            "/communications/presences?$filter=id in ({})",
            ids.join(",")
        ),
        &in_30_min,
        &format!("{a}/healthz"),
    ))
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("650"));
    // More than 60 minutes → 400.
    let (s, _) = create(body(
        "/communications/presences/alice".into(),
        &in_61_min,
        &format!("{a}/healthz"),
    ))
    .await;
    assert_eq!(s, 400);
    // An endpoint that does not echo the validation token → 400.
    let (s, e) = create(body(
        "/communications/presences/alice".into(),
        &in_30_min,
        &format!("{a}/healthz"),
    ))
    .await;
    assert_eq!(s, 400);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("validation"),
        "{e}"
    );
    // A URL off the machine → 400 (the stand-in only calls loopback).
    let (s, _) = create(body(
        "/communications/presences/alice".into(),
        &in_30_min,
        "https://example.com/hook",
    ))
    .await;
    assert_eq!(s, 400);
    graph.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_expired_subscription_is_created_again_after_a_429() {
    // 10 s subscriptions renewed with 8 s left: a renewal every 2 s.
    let (graph, hub) = pair_with(10, 8).await;
    let (a, b) = (graph.base_url(), hub.base_url());
    let mut bob = Client::connect(&b, "bob").await;
    bob.invoke_ok("subscribePresence", vec![json!(["alice"])])
        .await;
    expect_presence(&mut bob, "alice", "Available").await;
    eventually(|| subscription_ids(&hub).len() == 1).await;
    let second = subscription_ids(&hub)[0].clone();
    simulate(&a, "alice", "Busy", "InACall").await;
    expect_presence(&mut bob, "alice", "Busy").await;

    // Expired (and the first re-create throttled with Retry-After: 1): the renewal gets 404,
    // the hub creates a new subscription after the wait and reads alice again.
    assert_eq!(
        hook(&a, "/test/throttle", json!({"count": 1, "retryAfter": 1})).await,
        204
    );
    assert_eq!(
        hook(
            &a,
            &format!("/test/subscriptions/{second}/expire"),
            json!({})
        )
        .await,
        204
    );
    simulate(&a, "alice", "Available", "Available").await;
    // Not notified (expired), but the re-create's resync reads it.
    expect_presence(&mut bob, "alice", "Available").await;
    eventually(|| subscription_ids(&hub).first().is_some_and(|s| *s != second)).await;
    simulate(&a, "alice", "Busy", "InAMeeting").await;
    expect_presence(&mut bob, "alice", "Busy").await;
    hub.shutdown(Duration::from_secs(1)).await;
    graph.shutdown(Duration::from_secs(1)).await;
}
