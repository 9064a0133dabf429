//! Issue 7, hub side: typed call control (make call, answer, reject, hang up, hold, resume,
//! DTMF, blind transfer, consult start/complete/cancel, conference), `CallUpdated`/`CallEnded`
//! events, the simulator's far end, agent-to-agent calls and `normalizeNumber`, through the
//! real SignalR path (`HubConnectionCore` over tokio-tungstenite). Every wait is bounded by
//! `common::WAIT`; simulator timings are shortened so the file runs in well under 5 s.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard_hub::RunningHub;

async fn hub() -> RunningHub {
    start_hub_with(|c| {
        c.calls.alert_delay = Duration::from_millis(30);
        c.calls.answer_delay = Duration::from_millis(120);
        c.calls.far_end_ring_timeout = Duration::from_millis(250);
        c.calls.far_end_hangup_after = Duration::from_millis(150);
        // Call control, not routing: these tests ring agents who have a call up or just hung
        // up, so every state rings (`--routable-state '*'`). Routing is tests/agents.rs.
        c.agents.routable = vec!["*".into()];
    })
    .await
}

/// Rings `agent` from the simulator with a known call id.
async fn ring(base: &str, agent: &str, call_id: &str) {
    let r = sent(http().post(format!("{base}/simulator/ring")).json(
        &json!({"agent": agent, "phoneNumber": "+14255550123", "callerName": "Dana",
            "callId": call_id}),
    ))
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

/// The next `CallUpdated` for this call: its state.
async fn next_state(client: &mut Client, call_id: &str) -> Value {
    for _ in 0..20 {
        let call = client.expect_invocation("CallUpdated").await.remove(0);
        if call["callId"] == call_id {
            return call;
        }
    }
    panic!("no CallUpdated for {call_id}");
}

async fn connected_inbound(base: &str, alice: &mut Client, call_id: &str) {
    ring(base, "alice", call_id).await;
    alice.expect_invocation("ReceiveNotification").await;
    let call = alice.invoke_ok("answerCall", vec![json!(call_id)]).await;
    assert_eq!(call["state"], "accepted");
    assert_eq!(next_state(alice, call_id).await["state"], "accepted");
}

#[tokio::test]
async fn outbound_to_an_external_number_alerts_connects_and_is_controlled() {
    let hub = hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    let mut tab2 = Client::connect(&base, "alice").await;

    let call = alice
        .invoke_ok("makeCall", vec![json!("+44 20 7946 0958")])
        .await;
    let id = call["callId"].as_str().unwrap().to_owned();
    assert_eq!(call["state"], "dialling");
    assert_eq!(call["direction"], "outbound");
    assert_eq!(call["agent"], "alice");
    assert_eq!(call["phoneNumber"], "+442079460958");
    assert_eq!(call["display"], "+44 20 7946 0958");
    for state in ["dialling", "alerting", "connected"] {
        assert_eq!(next_state(&mut alice, &id).await["state"], state);
        assert_eq!(next_state(&mut tab2, &id).await["state"], state);
    }

    // Illegal commands on a connected outbound call, in the machine's words.
    assert_eq!(
        alice.invoke_err("answerCall", vec![json!(id)]).await,
        "Cannot answer an outbound call."
    );
    assert_eq!(
        alice.invoke_err("rejectCall", vec![json!(id)]).await,
        "Cannot reject an outbound call."
    );
    assert_eq!(
        alice.invoke_err("resumeCall", vec![json!(id)]).await,
        "Cannot resume a call that is connected."
    );
    assert_eq!(
        alice.invoke_err("completeConsult", vec![json!(id)]).await,
        "Cannot complete a transfer on a call that is connected."
    );
    assert_eq!(
        alice.invoke_err("cancelConsult", vec![json!(id)]).await,
        "Cannot cancel a transfer on a call that is connected."
    );
    assert_eq!(
        alice.invoke_err("conference", vec![json!(id)]).await,
        "Cannot conference a call that is connected."
    );

    // DTMF: validated, accumulated.
    let c = alice
        .invoke_ok("sendDtmf", vec![json!(id), json!("12#")])
        .await;
    assert_eq!(c["dtmf"], "12#");
    let c = alice
        .invoke_ok("sendDtmf", vec![json!(id), json!("*9")])
        .await;
    assert_eq!(c["dtmf"], "12#*9");
    assert_eq!(next_state(&mut tab2, &id).await["dtmf"], "12#");
    assert!(
        alice
            .invoke_err("sendDtmf", vec![json!(id), json!("12x")])
            .await
            .contains("is not a DTMF sequence")
    );
    assert!(
        alice
            .invoke_err("sendDtmf", vec![json!(id), json!("1".repeat(33))])
            .await
            .contains("at most 32")
    );
    assert!(
        alice
            .invoke_err("sendDtmf", vec![json!(id)])
            .await
            .contains("provides 1 argument")
    );

    // Mute and unmute: every tab hears of it.
    let c = alice
        .invoke_ok("muteCall", vec![json!(id), json!(true)])
        .await;
    assert_eq!(c["muted"], true);
    let c = alice
        .invoke_ok("muteCall", vec![json!(id), json!(false)])
        .await;
    assert_eq!(c["muted"], false);
    assert_eq!(
        alice
            .invoke_err("muteCall", vec![json!(id), json!("yes")])
            .await,
        "muteCall: muted must be a boolean"
    );

    // Hold, resume, hang up.
    let c = alice.invoke_ok("holdCall", vec![json!(id)]).await;
    assert_eq!(c["state"], "held");
    assert_eq!(
        alice
            .invoke_err("sendDtmf", vec![json!(id), json!("1")])
            .await,
        "Cannot send DTMF on a call that is on hold."
    );
    let c = alice.invoke_ok("resumeCall", vec![json!(id)]).await;
    assert_eq!(c["state"], "connected");
    assert!(c["heldMs"].is_u64() || c.get("heldMs").is_none());
    let c = alice.invoke_ok("hangUp", vec![json!(id)]).await;
    assert_eq!(c["state"], "ended");
    assert_eq!(c["endReason"], "completed");
    assert_eq!(
        alice.expect_invocation("CallEnded").await,
        vec![json!(id), json!("completed")]
    );
    assert_eq!(
        tab2.expect_invocation("CallEnded").await,
        vec![json!(id), json!("completed")]
    );

    // Every command on the ended call is refused.
    for (method, args, text) in [
        (
            "hangUp",
            vec![json!(id)],
            "Cannot hang up a call that is ended.",
        ),
        (
            "holdCall",
            vec![json!(id)],
            "Cannot hold a call that is ended.",
        ),
        (
            "resumeCall",
            vec![json!(id)],
            "Cannot resume a call that is ended.",
        ),
        (
            "sendDtmf",
            vec![json!(id), json!("1")],
            "Cannot send DTMF on a call that is ended.",
        ),
        (
            "blindTransfer",
            vec![json!(id), json!("bob")],
            "Cannot transfer a call that is ended.",
        ),
        (
            "startConsult",
            vec![json!(id), json!("bob")],
            "Cannot start a consult transfer on a call that is ended.",
        ),
    ] {
        let e = alice.invoke_err(method, args).await;
        assert!(e.starts_with(text), "{method}: {e}");
    }
    // The registry has it too.
    let reg: Value = get_json(&format!("{base}/api/calls/{id}?code={KEY}")).await;
    assert_eq!(reg["state"], "ended");
    assert_eq!(reg["direction"], "outbound");
}

#[tokio::test]
async fn far_end_busy_no_answer_hang_up_failure_and_cancel() {
    let hub = hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    for (number, reason) in [
        ("+44 20 7946 0000", "busy"),
        ("+44 20 7946 0001", "no-answer"),
        ("+44 20 7946 0002", "completed"),
        ("+44 20 7946 0003", "failed"),
    ] {
        let call = alice.invoke_ok("makeCall", vec![json!(number)]).await;
        let id = call["callId"].as_str().unwrap().to_owned();
        assert_eq!(
            alice.expect_invocation("CallEnded").await,
            vec![json!(id), json!(reason)],
            "{number}"
        );
        let reg = hub.hub.call(&id).unwrap().to_json();
        assert_eq!(reg["state"], "ended");
        assert_eq!(reg["endReason"], reason);
        if reason == "completed" {
            assert!(reg["answeredAt"].is_u64());
        }
    }

    // The agent cancels an unanswered call: abandoned.
    let call = alice
        .invoke_ok("makeCall", vec![json!("+44 20 7946 0001")])
        .await;
    let id = call["callId"].as_str().unwrap().to_owned();
    let c = alice.invoke_ok("hangUp", vec![json!(id)]).await;
    assert_eq!(c["endReason"], "abandoned");
    assert_eq!(
        alice.expect_invocation("CallEnded").await,
        vec![json!(id), json!("abandoned")]
    );

    // The simulator page answers instead of the script.
    let call = alice
        .invoke_ok("makeCall", vec![json!("+44 20 7946 0001")])
        .await;
    let id = call["callId"].as_str().unwrap().to_owned();
    let r = sent(
        http()
            .post(format!("{base}/simulator/calls/{id}/far-end"))
            .json(&json!({"action": "answer"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["state"], "connected");
    let r = sent(
        http()
            .post(format!("{base}/simulator/calls/{id}/far-end"))
            .json(&json!({"action": "busy"})),
    )
    .await;
    assert_eq!(r.status(), 409);
    let r = sent(
        http()
            .post(format!("{base}/simulator/calls/{id}/far-end"))
            .json(&json!({"action": "hangup"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        alice.expect_invocation("CallEnded").await,
        vec![json!(id), json!("completed")]
    );
    let r = sent(
        http()
            .post(format!("{base}/simulator/calls/{id}/far-end"))
            .json(&json!({"action": "dance"})),
    )
    .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn invalid_numbers_dial_nothing() {
    let hub = hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    for (input, text) in [
        ("hello world", "That is not a phone number"),
        ("1-800-FLOWERS", "That is not a phone number: letters"),
        ("12", "Too short for US"),
        ("+44 20 7946", "Too short for GB"),
        ("", "Enter a phone number."),
        ("carol", "carol is not signed in; nothing was dialled."),
        ("1003", "carol is not signed in; nothing was dialled."),
        ("alice", "You cannot call yourself."),
        ("1001", "You cannot call yourself."),
    ] {
        let e = alice.invoke_err("makeCall", vec![json!(input)]).await;
        assert!(e.starts_with(text), "{input}: {e}");
    }
    assert!(
        alice
            .invoke_err("makeCall", vec![json!(5)])
            .await
            .contains("must be a string")
    );
    assert!(hub.hub.newest_calls(10).is_empty());
}

#[tokio::test]
async fn agent_to_agent_by_extension_and_by_id() {
    let hub = hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    let mut bob = Client::connect(&base, "bob").await;

    // By extension: bob's widget rings like an inbound call, from alice (1001).
    let call = alice.invoke_ok("makeCall", vec![json!("1002")]).await;
    let a = call["callId"].as_str().unwrap().to_owned();
    assert_eq!(call["state"], "alerting");
    assert_eq!(call["phoneNumber"], "1002");
    assert_eq!(call["display"], "bob (ext. 1002)");
    let message = bob.expect_invocation("ReceiveNotification").await;
    let offer: Value = serde_json::from_str(message[0].as_str().unwrap()).unwrap();
    assert_eq!(offer["PhoneNumber"], "1001");
    assert_eq!(offer["callerName"], "alice");
    let b = offer["callId"].as_str().unwrap().to_owned();
    assert_eq!(hub.hub.call(&b).unwrap().to_json()["state"], "ringing");
    assert_eq!(next_state(&mut alice, &a).await["state"], "dialling");
    assert_eq!(next_state(&mut alice, &a).await["state"], "alerting");

    // bob accepts: both sides hear CallUpdated; alice's leg is connected.
    let c = bob.invoke_ok("acceptCall", vec![json!(b)]).await;
    assert_eq!(c["state"], "accepted");
    assert_eq!(next_state(&mut bob, &b).await["state"], "accepted");
    assert_eq!(next_state(&mut alice, &a).await["state"], "connected");
    // bob hangs up: alice's leg ends completed too.
    bob.invoke_ok("hangUp", vec![json!(b)]).await;
    assert_eq!(
        bob.expect_invocation("CallEnded").await,
        vec![json!(b), json!("completed")]
    );
    assert_eq!(
        alice.expect_invocation("CallEnded").await,
        vec![json!(a), json!("completed")]
    );

    // By user id; bob declines → rejected; bob busy → busy.
    for (reason, ended) in [("declined", "rejected"), ("busy", "busy")] {
        let call = alice.invoke_ok("makeCall", vec![json!("bob")]).await;
        let a = call["callId"].as_str().unwrap().to_owned();
        let message = bob.expect_invocation("ReceiveNotification").await;
        let offer: Value = serde_json::from_str(message[0].as_str().unwrap()).unwrap();
        let b = offer["callId"].as_str().unwrap().to_owned();
        bob.invoke_ok("rejectCall", vec![json!(b), json!(reason)])
            .await;
        assert_eq!(
            alice.expect_invocation("CallEnded").await,
            vec![json!(a), json!(ended)]
        );
        assert_eq!(
            bob.expect_invocation("CallEnded").await,
            vec![json!(b), json!("rejected")]
        );
    }

    // alice gives up while bob's widget rings: bob's offer ends abandoned.
    let call = alice.invoke_ok("makeCall", vec![json!("bob")]).await;
    let a = call["callId"].as_str().unwrap().to_owned();
    let message = bob.expect_invocation("ReceiveNotification").await;
    let offer: Value = serde_json::from_str(message[0].as_str().unwrap()).unwrap();
    let b = offer["callId"].as_str().unwrap().to_owned();
    alice.invoke_ok("hangUp", vec![json!(a)]).await;
    assert_eq!(
        bob.expect_invocation("CallEnded").await,
        vec![json!(b), json!("abandoned")]
    );
    assert_eq!(hub.hub.call(&b).unwrap().to_json()["state"], "ended");
}

#[tokio::test]
async fn consult_start_cancel_conference_complete() {
    let hub = hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    let mut bob = Client::connect(&base, "bob").await;
    connected_inbound(&base, &mut alice, "k1").await;

    assert!(
        alice
            .invoke_err("startConsult", vec![json!("k1"), json!("")])
            .await
            .contains("Choose a number or a colleague")
    );
    assert!(
        alice
            .invoke_err("startConsult", vec![json!("k1"), json!("nonsense!")])
            .await
            .starts_with("That is not a phone number")
    );
    let c = alice
        .invoke_ok(
            "startConsult",
            vec![json!("k1"), json!("(425) 555-0199 x5")],
        )
        .await;
    assert_eq!(c["state"], "transferring");
    assert_eq!(c["transferTarget"], "+14255550199");
    // National numbers are read in the hub's default region (US).
    assert_eq!(
        alice
            .invoke_err("startConsult", vec![json!("k1"), json!("020 7946 0958")])
            .await,
        "Cannot start a consult transfer on a call that is transferring."
    );
    assert_eq!(
        alice.invoke_err("holdCall", vec![json!("k1")]).await,
        "Call k1 is transferring, it cannot be put on hold"
    );
    let c = alice.invoke_ok("cancelConsult", vec![json!("k1")]).await;
    assert_eq!(c["state"], "held");
    assert!(c.get("transferTarget").is_none());

    let c = alice
        .invoke_ok("startConsult", vec![json!("k1"), json!("+44 20 7946 0958")])
        .await;
    assert_eq!(c["transferTarget"], "+442079460958");
    let c = alice.invoke_ok("conference", vec![json!("k1")]).await;
    assert_eq!(c["state"], "connected");
    assert_eq!(c["conference"], true);
    assert!(c["heldMs"].is_u64());

    // Consult a colleague, then complete: bob's widget rings with the customer.
    let c = alice
        .invoke_ok("startConsult", vec![json!("k1"), json!("1002")])
        .await;
    assert_eq!(c["transferTarget"], "bob");
    let c = alice.invoke_ok("completeConsult", vec![json!("k1")]).await;
    assert_eq!(c["state"], "ended");
    assert_eq!(c["endReason"], "completed");
    assert_eq!(
        alice.expect_invocation("CallEnded").await,
        vec![json!("k1"), json!("completed")]
    );
    let message = bob.expect_invocation("ReceiveNotification").await;
    let offer: Value = serde_json::from_str(message[0].as_str().unwrap()).unwrap();
    assert_eq!(offer["PhoneNumber"], "+14255550123");
    assert_eq!(offer["callerName"], "Dana");
    assert_eq!(offer["comments"], "Transferred by alice");
}

#[tokio::test]
async fn blind_transfer_to_a_colleague_and_to_a_number() {
    let hub = hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    let mut bob = Client::connect(&base, "bob").await;
    connected_inbound(&base, &mut alice, "t1").await;

    assert_eq!(
        alice
            .invoke_err("blindTransfer", vec![json!("t1"), json!("carol")])
            .await,
        "carol is not signed in; the call was not transferred."
    );
    assert_eq!(
        alice
            .invoke_err("blindTransfer", vec![json!("t1"), json!("alice")])
            .await,
        "You cannot transfer a call to yourself."
    );
    let c = alice
        .invoke_ok("blindTransfer", vec![json!("t1"), json!("1002")])
        .await;
    assert_eq!(c["state"], "ended");
    assert_eq!(c["endReason"], "completed");
    assert_eq!(c["transferTarget"], "bob");
    assert_eq!(
        alice.expect_invocation("CallEnded").await,
        vec![json!("t1"), json!("completed")]
    );
    let message = bob.expect_invocation("ReceiveNotification").await;
    let offer: Value = serde_json::from_str(message[0].as_str().unwrap()).unwrap();
    assert_eq!(offer["PhoneNumber"], "+14255550123");
    assert_eq!(offer["comments"], "Transferred by alice");
    // bob answers the transferred customer.
    let b = offer["callId"].as_str().unwrap().to_owned();
    assert_eq!(
        bob.invoke_ok("answerCall", vec![json!(b)]).await["state"],
        "accepted"
    );

    connected_inbound(&base, &mut alice, "t2").await;
    alice.invoke_ok("holdCall", vec![json!("t2")]).await;
    let c = alice
        .invoke_ok(
            "blindTransfer",
            vec![json!("t2"), json!("tel:+442079460958")],
        )
        .await;
    assert_eq!(c["transferTarget"], "+442079460958");
    assert_eq!(c["state"], "ended");

    // Ringing calls cannot be transferred.
    ring(&base, "alice", "t3").await;
    assert_eq!(
        alice
            .invoke_err("blindTransfer", vec![json!("t3"), json!("bob")])
            .await,
        "Cannot transfer a call that is ringing."
    );
}

#[tokio::test]
async fn normalize_number_through_the_hub() {
    let hub = hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    let n = alice
        .invoke_ok("normalizeNumber", vec![json!("(425) 555-0123 ext. 12")])
        .await;
    assert_eq!(
        n,
        json!({"e164": "+14255550123", "extension": "12", "national": "(425) 555-0123",
            "international": "+1 425-555-0123", "region": "US",
            "tel": "tel:+14255550123;ext=12"})
    );
    for (input, region, e164) in [
        ("020 7946 0958", json!("GB"), "+442079460958"),
        ("020 7946 0958", json!("gb"), "+442079460958"),
        ("0044 20 7946 0958", Value::Null, "+442079460958"),
        ("tel:+1-425-555-0123", json!("DE"), "+14255550123"),
        (
            "tel:555-0123;phone-context=+1-425",
            Value::Null,
            "+14255550123",
        ),
    ] {
        let n = alice
            .invoke_ok("normalizeNumber", vec![json!(input), region])
            .await;
        assert_eq!(n["e164"], e164, "{input}");
    }
    for (input, text) in [
        ("abc", "That is not a phone number: letters"),
        ("zed", "That is not a phone number: letters"),
        ("+1 425", "Too short"),
        ("425 555 012345", "Too long for US"),
        ("+999 12345678", "Unknown country code"),
    ] {
        let e = alice
            .invoke_err("normalizeNumber", vec![json!(input)])
            .await;
        assert!(e.starts_with(text), "{input}: {e}");
    }
    assert!(
        alice
            .invoke_err("normalizeNumber", vec![json!("0207"), json!("XX")])
            .await
            .starts_with("Unknown region \"XX\"")
    );
    let n = alice
        .invoke_ok("NORMALIZENUMBER", vec![json!("1002")])
        .await;
    assert_eq!(
        n,
        json!({"internal": true, "user": "bob", "extension": "1002", "display": "bob (ext. 1002)"})
    );
}

/// Issue 13: after a reload or a reconnect the widget asks `getCalls` what the hub knows of its
/// calls: the ringing one, the one in progress, and the ones that ended in the last minutes,
/// never another agent's.
#[tokio::test]
async fn get_calls_restores_ringing_in_progress_and_recently_ended_calls() {
    let hub = hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    let mut bob = Client::connect(&base, "bob").await;
    assert_eq!(
        alice.invoke_ok("getCalls", vec![]).await,
        json!({"calls": []})
    );
    // One call answered and held, then a second ringing (the widget would be busy, but the
    // registry keeps both), and one rejected.
    connected_inbound(&base, &mut alice, "gc-1").await;
    alice.invoke_ok("holdCall", vec![json!("gc-1")]).await;
    ring(&base, "alice", "gc-2").await;
    ring(&base, "alice", "gc-3").await;
    alice
        .invoke_ok("rejectCall", vec![json!("gc-3"), json!("busy")])
        .await;
    ring(&base, "bob", "gc-bob").await;
    let calls = alice.invoke_ok("getCalls", vec![]).await["calls"].clone();
    let states: Vec<(String, String)> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["callId"].as_str().unwrap().to_owned(),
                c["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("gc-3".to_owned(), "rejected".to_owned()),
            ("gc-2".to_owned(), "ringing".to_owned()),
            ("gc-1".to_owned(), "held".to_owned()),
        ],
        "newest first, bob's call not among them"
    );
    let bobs = bob.invoke_ok("getCalls", vec![]).await["calls"].clone();
    assert_eq!(bobs.as_array().unwrap().len(), 1);
    assert_eq!(bobs[0]["callId"], "gc-bob");
    assert!(
        alice
            .invoke_err("getCalls", vec![json!("extra")])
            .await
            .contains("getCalls")
    );
}

/// A telephony system retries a ring it thought lost after the agent answered: the hub delivers
/// it (the widget drops the repeated call id) but the call stays answered — before, it became a
/// ringing call again and the ring backstop ended it as missed while the agent talked.
#[tokio::test]
async fn a_repeated_ring_of_an_answered_call_leaves_it_answered() {
    let hub = start_hub_with(|c| {
        c.ring_timeout = Duration::from_millis(200);
        c.agents.routable = vec!["*".into()];
    })
    .await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;
    connected_inbound(&base, &mut alice, "rr-1").await;
    ring(&base, "alice", "rr-1").await;
    alice.expect_invocation("ReceiveNotification").await;
    // Past the ring backstop of the repeated ring.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let calls = alice.invoke_ok("getCalls", vec![]).await["calls"].clone();
    assert_eq!(calls[0]["callId"], "rr-1");
    assert_eq!(calls[0]["state"], "accepted");
    assert!(calls[0]["answeredAt"].is_u64());
    assert_eq!(alice.queued("CallEnded"), 0, "the answered call was ended");
    // And the call is still the agent's to control.
    let held = alice.invoke_ok("holdCall", vec![json!("rr-1")]).await;
    assert_eq!(held["state"], "held");
}
