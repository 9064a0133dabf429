//! The hub's transports and protocols beyond JSON over WebSockets: MessagePack over WebSockets,
//! long polling, Server-Sent Events, streaming, and stateful reconnect under repeated socket
//! drops (the fault test of issue 3). Every wait is bounded.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_signalr::negotiate::{self, NegotiateConnection, NegotiateResponse};
use switchboard_signalr::retry::{DelayListPolicy, RetryPolicy};
use switchboard_signalr::{
    CompletionOutcome, Event, HubConnectionCore, HubConnectionOptions, HubMessage, HubProtocolKind,
    Transmit, json as sjson, msgpack,
};
use tokio_tungstenite::tungstenite::Message;

/// dev token → /api/negotiate → /client/negotiate (optionally asking for stateful reconnect).
async fn negotiate_client(
    base: &str,
    user: &str,
    stateful: bool,
) -> (String, String, NegotiateConnection) {
    let token = dev_token(base, user).await;
    let (url, access_token) = negotiate_redirect(base, &token).await;
    let mut negotiate = negotiate::negotiate_url(&url);
    if stateful {
        negotiate = negotiate::append_query(&negotiate, "useStatefulReconnect", "true");
    }
    let r = sent(http().post(negotiate).bearer_auth(&access_token)).await;
    assert_eq!(r.status(), 200);
    let NegotiateResponse::Connection(c) =
        NegotiateResponse::decode(&r.text().await.unwrap()).unwrap()
    else {
        panic!("expected a connection")
    };
    (url, access_token, c)
}

/// The core over a tokio-tungstenite socket, any protocol, with stateful resume.
struct Driver {
    ws: Ws,
    core: HubConnectionCore,
    origin: Instant,
    url: String,
}

impl Driver {
    async fn open(url: &str) -> Ws {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("ws connect in time")
            .expect("ws connects");
        ws
    }

    async fn connect(
        base: &str,
        user: &str,
        options: HubConnectionOptions,
    ) -> (Driver, NegotiateConnection) {
        let (url, access_token, c) = negotiate_client(base, user, options.stateful_reconnect).await;
        assert_eq!(c.use_stateful_reconnect, options.stateful_reconnect);
        let url = negotiate::websocket_url(
            &negotiate::connect_url(&url, c.connect_id()),
            Some(&access_token),
        );
        let ws = Self::open(&url).await;
        let mut d = Driver {
            ws,
            core: HubConnectionCore::new(options, Duration::ZERO),
            origin: Instant::now(),
            url,
        };
        d.flush().await;
        assert_eq!(d.next_event().await, Some(Event::Connected));
        (d, c)
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    async fn flush(&mut self) {
        while let Some(frame) = self.core.poll_transmit_frame() {
            let message = match frame {
                Transmit::Text(t) => Message::text(t),
                Transmit::Binary(b) => Message::binary(b),
            };
            if self.ws.send(message).await.is_err() {
                break; // the read side notices the loss
            }
        }
    }

    /// Reads one frame (or runs a timer); returns whether the transport was lost.
    async fn pump(&mut self) -> bool {
        let now = self.now();
        let timer = self
            .core
            .poll_timeout()
            .map(|t| t.saturating_sub(now))
            .unwrap_or(WAIT)
            .min(WAIT);
        let lost = match tokio::time::timeout(timer, self.ws.next()).await {
            Err(_) => {
                self.core.handle_timeout(self.now());
                false
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                self.core.handle_text(self.now(), t.as_str());
                false
            }
            Ok(Some(Ok(Message::Binary(b)))) => {
                self.core.handle_binary(self.now(), &b);
                false
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => true,
            Ok(Some(Ok(_))) => false,
        };
        self.flush().await;
        lost
    }

    /// The next event; transport losses are resumed with stateful reconnect, else closed.
    async fn next_event(&mut self) -> Option<Event> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.core.poll_event() {
                return Some(e);
            }
            if self.core.is_closed() || Instant::now() > deadline {
                return None;
            }
            if self.pump().await {
                let now = self.now();
                if self.core.handle_transport_lost(now, None) {
                    self.ws = Self::open(&self.url).await;
                    self.core.resume(self.now()).unwrap();
                    self.flush().await;
                }
            }
        }
    }
}

#[tokio::test]
async fn messagepack_over_websockets_invoke_notify_and_stream() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let options = HubConnectionOptions {
        protocol: HubProtocolKind::MessagePack,
        ..HubConnectionOptions::default()
    };
    let (mut d, _) = Driver::connect(&base, "alice", options).await;
    let id = d
        .core
        .invoke(d.now(), "sendMessage", vec![json!("Accepted")])
        .unwrap();
    d.flush().await;
    assert_eq!(
        d.next_event().await,
        Some(Event::Completion {
            invocation_id: id,
            outcome: CompletionOutcome::Void
        })
    );
    assert!(
        hub.hub.send_to_user(
            "switchboard",
            "alice",
            "Hello",
            vec![json!({"a": [1, 2.5, null]})]
        ) > 0
    );
    assert_eq!(
        d.next_event().await,
        Some(Event::Invocation {
            target: "Hello".into(),
            arguments: vec![json!({"a": [1, 2.5, null]})],
            invocation_id: None
        })
    );
    let id = d
        .core
        .stream(d.now(), "counter", vec![json!(3), json!(1)])
        .unwrap();
    d.flush().await;
    for n in 0..3 {
        assert_eq!(
            d.next_event().await,
            Some(Event::StreamItem {
                invocation_id: id.clone(),
                item: json!(n)
            })
        );
    }
    assert!(matches!(
        d.next_event().await,
        Some(Event::Completion {
            outcome: CompletionOutcome::Void,
            ..
        })
    ));
    // A streaming method invoked without streaming is an error, as in ASP.NET Core.
    let id = d.core.invoke(d.now(), "counter", vec![json!(1)]).unwrap();
    d.flush().await;
    assert!(matches!(
        d.next_event().await,
        Some(Event::Completion { invocation_id, outcome: CompletionOutcome::Error(_) }) if invocation_id == id
    ));
}

fn records(body: &[u8]) -> Vec<Value> {
    body.split(|b| *b == 0x1e)
        .filter(|r| !r.is_empty())
        .map(|r| serde_json::from_slice(r).unwrap())
        .collect()
}

#[tokio::test]
async fn long_polling_json_and_messagepack() {
    let hub = start_hub_with(|c| c.timeouts.long_poll = Duration::from_millis(300)).await;
    let base = hub.base_url();
    for protocol in [HubProtocolKind::Json, HubProtocolKind::MessagePack] {
        let (url, token, c) = negotiate_client(&base, "bob", false).await;
        let conn = negotiate::connect_url(&url, c.connect_id());
        let get = || http().get(&conn).bearer_auth(&token).send();
        // First poll: 200 empty at once.
        let r = get().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.unwrap().is_empty());
        let post = |body: Vec<u8>| http().post(&conn).bearer_auth(&token).body(body).send();
        let handshake = format!(
            "{{\"protocol\":\"{}\",\"version\":1}}\u{1e}",
            protocol.name()
        );
        assert_eq!(post(handshake.into_bytes()).await.unwrap().status(), 200);
        let body = get().await.unwrap().bytes().await.unwrap();
        assert_eq!(&body[..3], b"{}\x1e");
        let invocation = HubMessage::Invocation {
            invocation_id: Some("0".into()),
            target: "sendMessage".into(),
            arguments: vec![json!("x")],
            stream_ids: vec![],
        };
        assert_eq!(
            post(protocol.encode(&invocation).into_bytes())
                .await
                .unwrap()
                .status(),
            200
        );
        let body = get().await.unwrap().bytes().await.unwrap();
        let completion = match protocol {
            HubProtocolKind::Json => sjson::from_value(&records(&body)[0]).unwrap().unwrap(),
            HubProtocolKind::MessagePack => msgpack::decode_frames(&body)
                .unwrap()
                .remove(0)
                .unwrap()
                .unwrap(),
        };
        assert_eq!(
            completion,
            HubMessage::Completion {
                invocation_id: "0".into(),
                outcome: CompletionOutcome::Void
            }
        );
        // Nothing to send: 200 empty after the poll timeout.
        let r = get().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.unwrap().is_empty());
        // DELETE ends it; the next poll is 204 or 404 (gone).
        let waiting = tokio::spawn(get());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = sent(http().delete(&conn).bearer_auth(&token)).await;
        assert_eq!(r.status(), 202);
        let status = waiting.await.unwrap().unwrap().status();
        assert!(status == 204 || status == 404, "{status}");
    }
    // Wrong token for the connection: 401.
    let (url, _, c) = negotiate_client(&base, "bob", false).await;
    let r = sent(
        http()
            .get(negotiate::connect_url(&url, c.connect_id()))
            .bearer_auth("nope"),
    )
    .await;
    assert_eq!(r.status(), 401);
}

/// Appends the chunks of the event stream `sse` to `text` until it contains `needle`, by
/// `deadline`.
async fn read_sse_until(
    sse: &mut reqwest::Response,
    text: &mut String,
    deadline: Instant,
    needle: &str,
) {
    while !text.contains(needle) {
        assert!(Instant::now() < deadline, "{text:?}");
        let chunk = tokio::time::timeout(WAIT, sse.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn server_sent_events_json_only() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let (url, token, c) = negotiate_client(&base, "carol", false).await;
    let conn =
        negotiate::websocket_url(&negotiate::connect_url(&url, c.connect_id()), Some(&token))
            .replacen("ws://", "http://", 1);
    let mut sse = sent(http().get(&conn).header("accept", "text/event-stream")).await;
    assert_eq!(sse.status(), 200);
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let post = |body: &str| http().post(&conn).body(body.to_owned()).send();
    assert_eq!(
        post("{\"protocol\":\"json\",\"version\":1}\u{1e}")
            .await
            .unwrap()
            .status(),
        200
    );
    let mut text = String::new();
    let deadline = Instant::now() + WAIT;
    read_sse_until(&mut sse, &mut text, deadline, "data: {}\u{1e}\r\n\r\n").await;
    assert!(text.starts_with(":\r\n"), "{text:?}");
    assert!(
        hub.hub
            .send_to_user("switchboard", "carol", "Hi", vec![json!(1)])
            > 0
    );
    read_sse_until(&mut sse, &mut text, deadline, "\"target\":\"Hi\"").await;
    // MessagePack over SSE is refused in the handshake.
    let (url, token, c) = negotiate_client(&base, "carol", false).await;
    let conn =
        negotiate::websocket_url(&negotiate::connect_url(&url, c.connect_id()), Some(&token))
            .replacen("ws://", "http://", 1);
    let mut sse = sent(http().get(&conn).header("accept", "text/event-stream")).await;
    sent(
        http()
            .post(&conn)
            .body("{\"protocol\":\"messagepack\",\"version\":1}\u{1e}"),
    )
    .await;
    let mut text = String::new();
    while !text.contains("error") {
        assert!(Instant::now() < deadline, "{text:?}");
        let Some(chunk) = tokio::time::timeout(WAIT, sse.chunk())
            .await
            .unwrap()
            .unwrap()
        else {
            break;
        };
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("Binary"), "{text:?}");
}

/// Issue 3's fault test: with stateful reconnect the hub drops the client's socket 100 times
/// while sending numbered notifications; every one arrives exactly once, in order.
#[tokio::test]
async fn stateful_reconnect_survives_100_socket_drops_without_loss() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let options = HubConnectionOptions {
        stateful_reconnect: true,
        ack_interval: Duration::from_millis(20),
        ..HubConnectionOptions::default()
    };
    let (mut d, c) = Driver::connect(&base, "dave", options).await;
    const DROPS: usize = 100;
    const PER_ROUND: u64 = 5;
    let resumed = Arc::new(AtomicUsize::new(0));
    let sender = {
        let hub = hub.hub.clone();
        let resumed = resumed.clone();
        let connection_id = c.connection_id.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            for round in 0..DROPS {
                for _ in 0..PER_ROUND {
                    assert_eq!(
                        hub.send_to_user("switchboard", "dave", "Numbered", vec![json!(n)]),
                        1
                    );
                    n += 1;
                }
                // Drop once the client is back on a socket from the previous drop.
                let deadline = Instant::now() + WAIT;
                while resumed.load(Ordering::SeqCst) < round {
                    assert!(
                        Instant::now() < deadline,
                        "client did not resume (round {round})"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                assert_eq!(hub.drop_transports(Some(&connection_id), None), 1);
            }
            n
        })
    };
    let total = DROPS as u64 * PER_ROUND;
    let mut expected = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while expected < total || resumed.load(Ordering::SeqCst) < DROPS {
        assert!(Instant::now() < deadline, "stuck at {expected}");
        if let Some(e) = d.core.poll_event() {
            match e {
                Event::Invocation {
                    target, arguments, ..
                } if target == "Numbered" => {
                    assert_eq!(arguments, vec![json!(expected)], "in order, exactly once");
                    expected += 1;
                }
                // Each successful resume says so (the widget shows `Connected` again).
                Event::Resumed => {}
                other => panic!("unexpected {other:?}"),
            }
            continue;
        }
        assert!(!d.core.is_closed());
        if d.pump().await {
            assert!(d.core.handle_transport_lost(d.now(), None));
            d.ws = Driver::open(&d.url).await;
            d.core.resume(d.now()).unwrap();
            d.flush().await;
            resumed.fetch_add(1, Ordering::SeqCst);
        }
    }
    assert_eq!(sender.await.unwrap(), total);
    assert_eq!(resumed.load(Ordering::SeqCst), DROPS);
    // Still the same logical connection, and nothing extra arrived.
    let id = d
        .core
        .invoke(d.now(), "sendMessage", vec![json!("x")])
        .unwrap();
    d.flush().await;
    // The last resume's `Resumed` may still be queued; then the completion, nothing else.
    let next = loop {
        match d.next_event().await {
            Some(Event::Resumed) => continue,
            other => break other,
        }
    };
    assert_eq!(
        next,
        Some(Event::Completion {
            invocation_id: id,
            outcome: CompletionOutcome::Void
        })
    );
    assert_eq!(hub.hub.connection_count(), 1);
}

/// Reads raw frames until one contains `needle`; panics on a Close (type 7) or after `WAIT`.
async fn read_until(ws: &mut Ws, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    let mut seen = String::new();
    while Instant::now() < deadline {
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(100), ws.next()).await
        {
            assert!(
                !t.contains("\"type\":7"),
                "the hub closed: {t} (after {seen})"
            );
            if t.contains(needle) {
                return t.to_string();
            }
            seen.push_str(&t);
        }
    }
    panic!("no {needle} in {seen}");
}

/// A socket lost in the middle of the client's replay: the hub had received and acked
/// messages 1–3, the client replays from 2, the socket drops after 2, and the client (whose
/// buffer the Ack emptied) resumes at 4. Nothing is missing, so the hub goes on; before the
/// fix it compared with its replay counter (3) and closed with "Sequence ID greater…".
#[tokio::test]
async fn a_replay_cut_short_then_a_sequence_after_the_acked_messages_goes_on() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let options = HubConnectionOptions {
        stateful_reconnect: true,
        ..HubConnectionOptions::default()
    };
    let (mut d, c) = Driver::connect(&base, "erin", options).await;
    let send = |n: u64| {
        json!({"type": 1, "target": "sendMessage", "arguments": [format!("m{n}")]}).to_string()
            + "\u{1e}"
    };
    for n in 1..=3 {
        d.ws.send(Message::text(send(n))).await.unwrap();
    }
    read_until(&mut d.ws, "\"sequenceId\":3").await; // the hub's Ack
    assert_eq!(hub.hub.drop_transports(Some(&c.connection_id), None), 1);
    d.ws = Driver::open(&d.url).await;
    d.ws.send(Message::text(
        "{\"type\":9,\"sequenceId\":2}\u{1e}".to_owned() + &send(2),
    ))
    .await
    .unwrap();
    read_until(&mut d.ws, "\"type\":9").await; // the hub's own Sequence
    // A duplicate has no visible effect: give the hub time to read it before the next drop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hub.hub.drop_transports(Some(&c.connection_id), None), 1);
    d.ws = Driver::open(&d.url).await;
    let invoke =
        json!({"type": 1, "invocationId": "9", "target": "sendMessage", "arguments": ["m4"]});
    d.ws.send(Message::text(
        "{\"type\":9,\"sequenceId\":4}\u{1e}".to_owned() + &invoke.to_string() + "\u{1e}",
    ))
    .await
    .unwrap();
    read_until(&mut d.ws, "\"invocationId\":\"9\"").await;
    assert_eq!(hub.hub.connection_count(), 1);
}

/// Without stateful reconnect a dropped socket ends the connection: the client sees Closed
/// with reconnect allowed and reconnects per policy (a new connection).
#[tokio::test]
async fn without_stateful_reconnect_a_drop_closes_and_the_policy_reconnects() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let (mut d, c) = Driver::connect(&base, "erin", HubConnectionOptions::default()).await;
    assert!(!c.use_stateful_reconnect);
    assert_eq!(hub.hub.drop_transports(Some(&c.connection_id), None), 1);
    assert!(matches!(
        d.next_event().await,
        Some(Event::Closed {
            allow_reconnect: true,
            ..
        })
    ));
    let policy = DelayListPolicy::from_millis(&[0, 2_000]);
    let delay = policy.next_retry_delay(0, Duration::ZERO).expect("retry");
    tokio::time::sleep(delay).await;
    let (mut d2, c2) = Driver::connect(&base, "erin", HubConnectionOptions::default()).await;
    assert_ne!(c2.connection_id, c.connection_id);
    let id = d2
        .core
        .invoke(d2.now(), "sendMessage", vec![json!("x")])
        .unwrap();
    d2.flush().await;
    assert!(
        matches!(d2.next_event().await, Some(Event::Completion { invocation_id, .. }) if invocation_id == id)
    );
    // The dev hook is off outside dev mode only; here it answers JSON.
    let r = sent(http().post(format!("{base}/dev/connections/{}/drop", c2.connection_id))).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"dropped": 1}));
}
