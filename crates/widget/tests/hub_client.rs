//! The widget's own SignalR client (`HubClient`, compiled to wasm) against switchboard-hub, in
//! headless Chromium: every transport × protocol — invoke with a result and with an error,
//! send, a server-to-client stream, and pending invocations failing when the connection stops.
//! The hub is started by scripts/test at `SWITCHBOARD_TEST_HUB` (compile-time env; default
//! http://127.0.0.1:18097). Run with `--features messagepack` to include the MessagePack cases.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use futures_util_lite::next;
use serde_json::{Value, json};
use switchboard::signalr::{HubClient, HubClientHandlers, HubClientOptions, TokenFuture};
use switchboard_signalr::ConnectionState;
use switchboard_signalr::client::HubConnectionOptions;
use switchboard_signalr::negotiate::TransportKind;
use switchboard_signalr::protocol::HubProtocolKind;
use switchboard_signalr::retry::{DelayListPolicy, SlowRetryPolicy};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const HUB: &str = match option_env!("SWITCHBOARD_TEST_HUB") {
    Some(hub) => hub,
    None => "http://127.0.0.1:18097",
};

/// Minimal `StreamExt::next` for an mpsc receiver, without another dependency.
mod futures_util_lite {
    use std::future::poll_fn;
    use std::pin::Pin;

    pub async fn next<T>(rx: &mut futures_channel::mpsc::UnboundedReceiver<T>) -> Option<T> {
        poll_fn(|cx| futures_core_poll(Pin::new(&mut *rx), cx)).await
    }

    fn futures_core_poll<T>(
        rx: Pin<&mut futures_channel::mpsc::UnboundedReceiver<T>>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        use futures_core::Stream;
        rx.poll_next(cx)
    }
}

struct Probe {
    client: HubClient,
    states: Rc<RefCell<Vec<ConnectionState>>>,
}

fn connect(transport: TransportKind, protocol: HubProtocolKind, user: &str) -> Probe {
    let states = Rc::new(RefCell::new(Vec::new()));
    let user = user.to_owned();
    let handlers = HubClientHandlers {
        access_token: Rc::new(move || -> TokenFuture {
            let user = user.clone();
            Box::pin(async move {
                switchboard::auth::dev_token(&format!("{HUB}/dev/token"), &user).await
            })
        }),
        on_state: {
            let states = states.clone();
            Rc::new(move |state, _| states.borrow_mut().push(state))
        },
        on_invocation: Rc::new(|_, _| {}),
        on_diagnostic: Rc::new(|_| {}),
        on_next_attempt: Rc::new(|_| {}),
    };
    let options = HubClientOptions {
        url: format!("{HUB}/api"),
        connection: HubConnectionOptions {
            protocol,
            stateful_reconnect: false,
            ..HubConnectionOptions::default()
        },
        transports: vec![transport],
        skip_negotiation: false,
        retry: SlowRetryPolicy::new(DelayListPolicy::from_millis(&[]), 600, 600),
    };
    let client = HubClient::new(options, handlers);
    client.start();
    Probe { client, states }
}

/// Waits (at most 10 s) for `Connected`.
async fn connected(probe: &Probe) {
    for _ in 0..200 {
        if probe.client.state() == ConnectionState::Connected {
            return;
        }
        gloo_timers::future::TimeoutFuture::new(50).await;
    }
    panic!(
        "not connected after 10 s; states: {:?}",
        probe.states.borrow()
    );
}

async fn exercise(transport: TransportKind, protocol: HubProtocolKind) {
    let user = format!(
        "wasm-{transport:?}-{}-{}",
        protocol.name(),
        js_sys::Math::random().to_bits()
    );
    let probe = connect(transport, protocol, &user);
    connected(&probe).await;
    let client = &probe.client;

    // Invoke with a result (void → null) and with an error completion.
    assert_eq!(
        client.invoke("sendMessage", vec![json!("Accepted")]).await,
        Ok(Value::Null)
    );
    let error = client
        .invoke("acceptCall", vec![json!("no-such-call")])
        .await
        .unwrap_err();
    assert!(error.contains("no-such-call"), "{error}");
    let unknown = client.invoke("noSuchMethod", vec![]).await.unwrap_err();
    assert!(unknown.contains("noSuchMethod"), "{unknown}");

    // Send (no completion), then an invoke still round-trips in order.
    client.send("sendMessage", vec![json!("Rejected")]).unwrap();
    assert_eq!(
        client.invoke("sendMessage", vec![json!("Accepted")]).await,
        Ok(Value::Null)
    );

    // A stream from the hub: items 0..5, then the end.
    let mut items = client.stream("counter", vec![json!(5), json!(10)]);
    let mut got = Vec::new();
    while let Some(item) = next(&mut items).await {
        got.push(item.unwrap());
    }
    assert_eq!(got, (0..5).map(|n| json!(n)).collect::<Vec<_>>());

    // A pending invocation fails with a clear error when the connection stops.
    let pending = client.invoke("sendMessage", vec![json!("Accepted")]);
    client.stop();
    assert!(pending.await.is_err());
    assert_eq!(client.state(), ConnectionState::Disconnected);
}

#[wasm_bindgen_test]
async fn websockets_json() {
    exercise(TransportKind::WebSockets, HubProtocolKind::Json).await;
}

#[wasm_bindgen_test]
async fn server_sent_events_json() {
    exercise(TransportKind::ServerSentEvents, HubProtocolKind::Json).await;
}

#[wasm_bindgen_test]
async fn long_polling_json() {
    exercise(TransportKind::LongPolling, HubProtocolKind::Json).await;
}

#[cfg(feature = "messagepack")]
#[wasm_bindgen_test]
async fn websockets_messagepack() {
    exercise(TransportKind::WebSockets, HubProtocolKind::MessagePack).await;
}

#[cfg(feature = "messagepack")]
#[wasm_bindgen_test]
async fn long_polling_messagepack() {
    exercise(TransportKind::LongPolling, HubProtocolKind::MessagePack).await;
}

/// The early connection (`early.rs`, issue 17): started before the app, its reports are kept
/// in order until the widget attaches its handlers, a call offered in between is delivered then
/// (nothing lost), later reports go straight to the widget, and it is handed over once. The hub
/// reports to the early connection when the same agent changes state from another connection
/// (`setAgentState` → `AgentStateChanged` to every connection of the agent).
#[wasm_bindgen_test]
async fn early_connection_keeps_what_arrives_before_the_app() {
    let user = format!("wasm-early-{}", js_sys::Math::random().to_bits());
    let options = HubClientOptions {
        url: format!("{HUB}/api"),
        connection: HubConnectionOptions::default(),
        transports: vec![TransportKind::WebSockets],
        skip_negotiation: false,
        retry: SlowRetryPolicy::new(DelayListPolicy::from_millis(&[]), 600, 600),
    };
    let ready = Rc::new(std::cell::Cell::new(false));
    {
        let ready = ready.clone();
        switchboard::early::connect(
            options,
            format!("{HUB}/dev/token"),
            user.clone(),
            move || ready.set(true),
        );
    }
    for _ in 0..200 {
        if ready.get() {
            break;
        }
        gloo_timers::future::TimeoutFuture::new(50).await;
    }
    assert!(ready.get(), "the early connection never said it was ready");
    // Sent by the hub before the widget attaches: kept.
    let other = connect(TransportKind::WebSockets, HubProtocolKind::Json, &user);
    connected(&other).await;
    let set = |state: &str| other.client.invoke("setAgentState", vec![json!(state)]);
    set("Break").await.expect("setAgentState Break");
    let mut early = None;
    for _ in 0..200 {
        gloo_timers::future::TimeoutFuture::new(50).await;
        // `take` hands it over once; keep it while polling.
        let candidate = early.take().or_else(|| switchboard::early::take(&user));
        if let Some(c) = &candidate
            && c.waiting().1 >= 1
        {
            early = candidate;
            break;
        }
        early = candidate;
    }
    let early = early.expect("the early client for this user");
    let (_, kept) = early.waiting();
    assert!(kept >= 1, "the hub's message was not kept");
    assert!(
        switchboard::early::take(&user).is_none(),
        "handed over twice"
    );
    let client = early.client();
    assert_eq!(client.state(), ConnectionState::Connected);

    let seen: Rc<RefCell<Vec<String>>> = Rc::new(RefCell::new(Vec::new()));
    let log = |seen: &Rc<RefCell<Vec<String>>>, line: String| seen.borrow_mut().push(line);
    let handlers = HubClientHandlers {
        access_token: Rc::new(|| -> TokenFuture { Box::pin(async { Err("unused".into()) }) }),
        on_state: {
            let seen = seen.clone();
            Rc::new(move |state, _| log(&seen, format!("state {}", state.as_str())))
        },
        on_invocation: {
            let seen = seen.clone();
            Rc::new(move |target, _| log(&seen, format!("invocation {target}")))
        },
        on_diagnostic: {
            let seen = seen.clone();
            Rc::new(move |line: String| {
                if line.starts_with("hub connection: started before the app") {
                    log(&seen, line)
                }
            })
        },
        on_next_attempt: Rc::new(|_| {}),
    };
    early.attach(handlers);
    let delivered = seen.borrow().clone();
    let states: Vec<&String> = delivered
        .iter()
        .filter(|l| l.starts_with("state"))
        .collect();
    assert_eq!(
        states,
        ["state Connecting", "state Connected"],
        "{delivered:?}"
    );
    let connected = delivered
        .iter()
        .position(|l| l == "state Connected")
        .unwrap();
    let call = delivered
        .iter()
        .position(|l| l == "invocation AgentStateChanged")
        .unwrap_or_else(|| panic!("the message sent before attach is missing: {delivered:?}"));
    assert!(connected < call, "{delivered:?}");
    assert!(
        delivered[0].contains(&format!("({kept} hub invocations)")),
        "{delivered:?}"
    );
    let before = delivered
        .iter()
        .filter(|l| *l == "invocation AgentStateChanged")
        .count();

    // After attach, a report goes straight to the widget's handlers.
    set("Ready").await.expect("setAgentState Ready");
    let count = || {
        seen.borrow()
            .iter()
            .filter(|l| *l == "invocation AgentStateChanged")
            .count()
    };
    for _ in 0..200 {
        if count() > before {
            break;
        }
        gloo_timers::future::TimeoutFuture::new(50).await;
    }
    assert!(count() > before, "{:?}", seen.borrow());
    client.stop();
    other.client.stop();
}
