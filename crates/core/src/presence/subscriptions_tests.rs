//! Tests of the subscription manager with a fake clock (`now` is just a number).

use serde_json::{Value, json};

use super::*;
use crate::presence::{Activity, Availability};

const T0: u64 = 1_790_000_000_000;
const MIN: u64 = 60_000;

fn manager() -> Manager {
    Manager::new(SubscriptionConfig::new(
        "https://hub.example/api/graph/notifications",
        "https://hub.example/api/graph/lifecycle",
        "secret-state",
    ))
}

fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("user-{i:04}")).collect()
}

fn creates(requests: &[Request]) -> Vec<&Request> {
    requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/subscriptions")
        .collect()
}

fn reads(requests: &[Request]) -> Vec<&Request> {
    requests
        .iter()
        .filter(|r| r.path == "/communications/getPresencesByUserId")
        .collect()
}

fn created(m: &mut Manager, r: &Request, graph_id: &str, now: u64) {
    let expires = parse_utc(
        r.body.as_ref().unwrap()["expirationDateTime"]
            .as_str()
            .unwrap(),
    );
    let body = json!({"id": graph_id, "expirationDateTime": format_utc(expires.unwrap())});
    m.on_response(r.id, 201, None, &body, now);
}

/// One subscription for alice and bob, created at T0 (the initial presence read answered).
fn subscribed() -> Manager {
    let mut m = manager();
    m.set_watched(["alice".to_owned(), "bob".to_owned()], T0);
    let out = m.poll(T0);
    created(&mut m, creates(&out)[0], "sub-1", T0);
    m.on_response(reads(&out)[0].id, 200, None, &json!({"value": []}), T0);
    m
}

fn notification(sub: &str, state: &str, extra: Value) -> Value {
    let mut item = json!({"subscriptionId": sub, "clientState": state, "tenantId": "t"});
    for (k, v) in extra.as_object().unwrap() {
        item[k] = v.clone();
    }
    json!({ "value": [item] })
}

#[test]
fn seven_hundred_ids_make_two_subscriptions_and_two_reads() {
    let mut m = manager();
    m.set_watched(ids(700), T0);
    let out = m.poll(T0);
    let c = creates(&out);
    assert_eq!(c.len(), 2);
    let sizes: Vec<usize> = c
        .iter()
        .map(|r| {
            let body = r.body.as_ref().unwrap();
            assert_eq!(body["changeType"], "updated");
            assert_eq!(body["clientState"], "secret-state");
            assert_eq!(
                body["notificationUrl"],
                "https://hub.example/api/graph/notifications"
            );
            assert_eq!(
                body["lifecycleNotificationUrl"],
                "https://hub.example/api/graph/lifecycle"
            );
            let expires = parse_utc(body["expirationDateTime"].as_str().unwrap()).unwrap();
            assert_eq!(expires, T0 + 60 * MIN, "presence: at most an hour");
            parse_presence_resource(body["resource"].as_str().unwrap())
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, vec![650, 50]);
    let r = reads(&out);
    assert_eq!(r.len(), 2, "initial presences are read in 650-id batches");
    assert_eq!(
        r[0].body.as_ref().unwrap()["ids"].as_array().unwrap().len(),
        650
    );
    assert_eq!(m.subscription_count(), 2);
    // Nothing more to send while both are in flight.
    assert!(m.poll(T0 + 1).is_empty());
}

#[test]
fn renews_with_ten_minutes_left_and_not_before() {
    let mut m = subscribed();
    assert_eq!(m.subscription_ids(), vec!["sub-1".to_owned()]);
    assert_eq!(m.next_deadline(), Some(T0 + 50 * MIN));
    assert!(m.poll(T0 + 50 * MIN - 1).is_empty());
    let out = m.poll(T0 + 50 * MIN);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].method, "PATCH");
    assert_eq!(out[0].path, "/subscriptions/sub-1");
    let body = out[0].body.as_ref().unwrap();
    assert_eq!(
        parse_utc(body["expirationDateTime"].as_str().unwrap()),
        Some(T0 + 110 * MIN)
    );
    // The renewal answer moves the next renewal an hour on.
    let now = T0 + 50 * MIN;
    m.on_response(
        out[0].id,
        200,
        None,
        &json!({"id": "sub-1", "expirationDateTime": format_utc(T0 + 110 * MIN)}),
        now,
    );
    assert_eq!(m.next_deadline(), Some(T0 + 100 * MIN));
}

#[test]
fn a_renewal_answered_404_creates_again_and_reads_the_batch() {
    let mut m = subscribed();
    let now = T0 + 50 * MIN;
    let out = m.poll(now);
    m.on_response(out[0].id, 404, None, &Value::Null, now);
    let out = m.poll(now);
    assert_eq!(creates(&out).len(), 1, "{out:?}");
    let read = reads(&out);
    assert_eq!(read.len(), 1);
    assert_eq!(
        read[0].body.as_ref().unwrap()["ids"],
        json!(["alice", "bob"])
    );
    assert!(m.subscription_ids().is_empty(), "the old id is gone");
    created(&mut m, creates(&out)[0], "sub-2", now);
    assert_eq!(m.subscription_ids(), vec!["sub-2".to_owned()]);
}

#[test]
fn reauthorization_required_renews_now() {
    let mut m = subscribed();
    let now = T0 + 5 * MIN;
    let outcome = m.on_notifications(
        &notification(
            "sub-1",
            "secret-state",
            json!({"lifecycleEvent": "reauthorizationRequired"}),
        ),
        now,
    );
    assert_eq!(
        outcome.lifecycle,
        vec!["reauthorizationRequired".to_owned()]
    );
    let out = m.poll(now);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].method, out[0].path.as_str()),
        ("PATCH", "/subscriptions/sub-1")
    );
}

#[test]
fn subscription_removed_creates_again_and_reads() {
    let mut m = subscribed();
    let now = T0 + 5 * MIN;
    m.on_notifications(
        &notification(
            "sub-1",
            "secret-state",
            json!({"lifecycleEvent": "subscriptionRemoved"}),
        ),
        now,
    );
    let out = m.poll(now);
    assert_eq!(creates(&out).len(), 1);
    assert_eq!(reads(&out).len(), 1);
}

#[test]
fn missed_reads_the_batch_and_returns_the_presences() {
    let mut m = subscribed();
    let now = T0 + 5 * MIN;
    m.on_notifications(
        &notification("sub-1", "secret-state", json!({"lifecycleEvent": "missed"})),
        now,
    );
    let out = m.poll(now);
    assert!(creates(&out).is_empty());
    let read = reads(&out);
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].method, "POST");
    assert_eq!(
        read[0].body.as_ref().unwrap()["ids"],
        json!(["alice", "bob"])
    );
    let got = m.on_response(
        read[0].id,
        200,
        None,
        &json!({"value": [
            {"id": "alice", "availability": "Busy", "activity": "InACall"},
            {"id": "mallory", "availability": "Busy", "activity": "InACall"}
        ]}),
        now,
    );
    assert_eq!(
        got,
        vec![(
            "alice".to_owned(),
            Presence::new(Availability::Busy, Activity::InACall)
        )],
        "ids not watched are left out"
    );
}

#[test]
fn a_change_notification_reads_only_that_user() {
    let mut m = subscribed();
    let now = T0 + MIN;
    let outcome = m.on_notifications(
        &notification(
            "sub-1",
            "secret-state",
            json!({"changeType": "updated", "resource": "communications/presences('bob')",
                   "resourceData": {"@odata.type": "#Microsoft.Graph.presence", "id": "bob"}}),
        ),
        now,
    );
    assert_eq!(outcome.accepted, 1);
    let out = m.poll(now);
    assert_eq!(reads(&out)[0].body.as_ref().unwrap()["ids"], json!(["bob"]));
}

#[test]
fn client_state_mismatch_and_unknown_subscriptions_are_rejected() {
    let mut m = subscribed();
    let now = T0 + MIN;
    let change = json!({"resourceData": {"id": "bob"}});
    let o = m.on_notifications(&notification("sub-1", "guess", change.clone()), now);
    assert_eq!((o.accepted, o.rejected), (0, 1));
    let o = m.on_notifications(&notification("sub-9", "secret-state", change.clone()), now);
    assert_eq!((o.accepted, o.rejected), (0, 1));
    let o = m.on_notifications(
        &json!({"value": [{"subscriptionId": "sub-1", "resourceData": {"id": "bob"}}]}),
        now,
    );
    assert_eq!((o.accepted, o.rejected), (0, 1), "no clientState at all");
    // A user not in that subscription is not read either.
    let o = m.on_notifications(
        &notification(
            "sub-1",
            "secret-state",
            json!({"resourceData": {"id": "eve"}}),
        ),
        now,
    );
    assert_eq!((o.accepted, o.rejected), (0, 1));
    let o = m.on_notifications(
        &notification("sub-1", "secret-state", json!({"lifecycleEvent": "missed"})),
        now,
    );
    assert_eq!(o.accepted, 1);
    let o = m.on_notifications(&json!({"value": "nope"}), now);
    assert_eq!(o, NotificationOutcome::default());
    // Only the accepted `missed` caused a read.
    let out = m.poll(now);
    assert_eq!(reads(&out).len(), 1);
    assert_eq!(
        reads(&out)[0].body.as_ref().unwrap()["ids"],
        json!(["alice", "bob"])
    );
}

#[test]
fn throttled_requests_wait_for_retry_after() {
    let mut m = manager();
    m.set_watched(["alice".to_owned()], T0);
    let out = m.poll(T0);
    let create = creates(&out)[0].id;
    let read = reads(&out)[0].id;
    m.on_response(create, 429, Some(7), &Value::Null, T0);
    m.on_response(read, 429, Some(3), &Value::Null, T0);
    assert_eq!(m.next_deadline(), Some(T0 + 3_000));
    assert!(m.poll(T0 + 2_999).is_empty());
    let out = m.poll(T0 + 3_000);
    assert_eq!((creates(&out).len(), reads(&out).len()), (0, 1));
    assert!(m.poll(T0 + 6_999).is_empty());
    let out = m.poll(T0 + 7_000);
    assert_eq!((creates(&out).len(), reads(&out).len()), (1, 0));
}

#[test]
fn other_failures_back_off_exponentially_up_to_the_limit() {
    let mut m = manager();
    m.set_watched(["alice".to_owned()], T0);
    let mut now = T0;
    let mut waits = Vec::new();
    for _ in 0..12 {
        let out = m.poll(now);
        let create = creates(&out)[0].id;
        m.on_response(create, 500, None, &Value::Null, now);
        let next = m
            .next_deadline()
            .filter(|d| *d > now)
            .expect("a retry is scheduled");
        // The read (answered never) stays in flight, so only the create is scheduled.
        waits.push(next - now);
        now = next;
    }
    assert_eq!(&waits[..4], &[2_000, 4_000, 8_000, 16_000]);
    assert_eq!(*waits.last().unwrap(), 300_000);
}

#[test]
fn ids_no_longer_watched_delete_their_subscription() {
    let mut m = subscribed();
    let now = T0 + MIN;
    m.set_watched(["alice".to_owned(), "carol".to_owned()], now);
    let out = m.poll(now);
    let delete: Vec<_> = out.iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(delete.len(), 1);
    assert_eq!(delete[0].path, "/subscriptions/sub-1");
    let c = creates(&out);
    assert_eq!(c.len(), 1);
    let resource = c[0].body.as_ref().unwrap()["resource"].as_str().unwrap();
    assert_eq!(
        parse_presence_resource(resource).unwrap(),
        vec!["alice".to_owned(), "carol".to_owned()]
    );
    assert_eq!(
        reads(&out)[0].body.as_ref().unwrap()["ids"],
        json!(["carol"])
    );
    m.on_response(delete[0].id, 204, None, &Value::Null, now);
    assert_eq!(m.subscription_count(), 1);
}

#[test]
fn resources_and_dates_round_trip() {
    let ids = vec!["a".to_owned(), "o'brien".to_owned()];
    let r = presence_resource(&ids);
    assert_eq!(
        r,
        "/communications/presences?$filter=id in ('a','o''brien')"
    );
    assert_eq!(parse_presence_resource(&r), Some(ids));
    assert_eq!(
        parse_presence_resource("communications/presences/u1"),
        Some(vec!["u1".to_owned()])
    );
    assert_eq!(parse_presence_resource("/users/u1"), None);
    assert_eq!(
        parse_presence_resource("/communications/presences?$filter=id in ()"),
        None
    );
    assert_eq!(
        parse_presence_resource("/communications/presences?$filter=id in ('a'"),
        None
    );
    assert_eq!(format_utc(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
    for ms in [0, 951_782_400_123, T0, T0 + 123_456_789] {
        assert_eq!(parse_utc(&format_utc(ms)), Some(ms));
    }
    assert_eq!(
        parse_utc("2000-02-29T00:00:00.1234567Z"),
        Some(951_782_400_123)
    );
    assert_eq!(
        parse_utc("2000-02-29T01:00:00+01:00"),
        Some(951_782_400_000)
    );
    assert_eq!(parse_utc("2000-13-01T00:00:00Z"), None);
    assert_eq!(parse_utc("yesterday"), None);
    assert_eq!(
        notified_id(&json!({"resource": "communications/presences('u7')"})),
        Some("u7".to_owned())
    );
}
