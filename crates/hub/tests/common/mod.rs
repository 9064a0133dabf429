//! Test helpers: an in-process hub on 127.0.0.1:0, HTTP helpers, and a hub client that drives
//! `switchboard_signalr::HubConnectionCore` over a tokio-tungstenite WebSocket. Every wait is
//! bounded by [`WAIT`].

#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_hub::{HubConfig, RunningHub};
use switchboard_signalr::negotiate::{self, NegotiateResponse};
use switchboard_signalr::{CompletionOutcome, Event, HubConnectionCore, HubConnectionOptions};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(5);
/// The access key of test hubs.
pub const KEY: &str = "test-access-key-0123456789";

pub mod redis;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn start_hub() -> RunningHub {
    start_hub_with(|_| {}).await
}

pub async fn start_hub_with(adjust: impl FnOnce(&mut HubConfig)) -> RunningHub {
    let mut config = HubConfig::new(KEY);
    adjust(&mut config);
    switchboard_hub::start("127.0.0.1:0", config)
        .await
        .expect("hub starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .no_proxy()
        .build()
        .unwrap()
}

/// `GET url` → the HTTP status.
pub async fn get_status(url: &str) -> u16 {
    http().get(url).send().await.unwrap().status().as_u16()
}

/// `GET url` → the body as text (any status).
pub async fn get_text(url: &str) -> String {
    http().get(url).send().await.unwrap().text().await.unwrap()
}

/// `GET url` → the body as JSON (any status).
pub async fn get_json(url: &str) -> Value {
    http().get(url).send().await.unwrap().json().await.unwrap()
}

/// `POST /api/negotiate` with `token` as the bearer → (status, the body as JSON or `Null`).
pub async fn negotiate_bearer(hub: &RunningHub, token: &str) -> (u16, Value) {
    let r = http()
        .post(format!("{}/api/negotiate", hub.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The claims of a JWT, decoded but not verified.
pub fn jwt_payload(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

pub async fn dev_token(base: &str, user: &str) -> String {
    dev_token_as(base, user, None).await
}

/// `POST /dev/token` with an optional `"role"` (`Supervisor`).
pub async fn dev_token_as(base: &str, user: &str, role: Option<&str>) -> String {
    let r = http()
        .post(format!("{base}/dev/token"))
        .json(&json!({ "user": user, "role": role }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["accessToken"].as_str().unwrap().to_owned()
}

/// `/api/negotiate` → `(url, hub access token)`.
pub async fn negotiate_redirect(base: &str, user_token: &str) -> (String, String) {
    let r = http()
        .post(format!("{base}/api/negotiate?negotiateVersion=1"))
        .bearer_auth(user_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    match NegotiateResponse::decode(&r.text().await.unwrap()).unwrap() {
        NegotiateResponse::Redirect { url, access_token } => (url, access_token.unwrap()),
        other => panic!("expected a redirect, got {other:?}"),
    }
}

/// Follows the redirect: `/client/negotiate`, then opens the WebSocket (no handshake yet).
pub async fn open_socket(base: &str, user: &str) -> Ws {
    open_socket_as(base, user, None).await
}

/// [`open_socket`] with a dev token carrying `role`.
pub async fn open_socket_as(base: &str, user: &str, role: Option<&str>) -> Ws {
    let token = dev_token_as(base, user, role).await;
    let (url, access_token) = negotiate_redirect(base, &token).await;
    let r = http()
        .post(negotiate::negotiate_url(&url))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let NegotiateResponse::Connection(c) =
        NegotiateResponse::decode(&r.text().await.unwrap()).unwrap()
    else {
        panic!("expected a connection")
    };
    let ws_url = negotiate::websocket_url(
        &negotiate::connect_url(&url, c.connect_id()),
        Some(&access_token),
    );
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(ws_url))
        .await
        .expect("ws connect in time")
        .expect("ws connects");
    ws
}

/// A hub connection as the widget has it: the sans-IO core over a real socket.
pub struct Client {
    pub ws: Ws,
    pub core: HubConnectionCore,
    origin: Instant,
    events: VecDeque<Event>,
}

impl Client {
    /// dev token → /api/negotiate → /client/negotiate → WebSocket → handshake.
    pub async fn connect(base: &str, user: &str) -> Client {
        Self::connect_as(base, user, None).await
    }

    /// [`Client::connect`] with a dev token carrying `role` (`Supervisor`).
    pub async fn connect_as(base: &str, user: &str, role: Option<&str>) -> Client {
        let ws = open_socket_as(base, user, role).await;
        let origin = Instant::now();
        let core = HubConnectionCore::new(HubConnectionOptions::default(), Duration::ZERO);
        let mut client = Client {
            ws,
            core,
            origin,
            events: VecDeque::new(),
        };
        client.flush().await;
        match client.next_event().await {
            Event::Connected => {}
            other => panic!("expected Connected, got {other:?}"),
        }
        client
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    pub async fn flush(&mut self) {
        while let Some(record) = self.core.poll_transmit() {
            self.ws.send(Message::text(record)).await.expect("send");
        }
    }

    /// Sends raw text as one frame, bypassing the core.
    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send raw");
    }

    async fn pump(&mut self) {
        let frame = tokio::time::timeout(WAIT, self.ws.next())
            .await
            .expect("a frame within the wait");
        let now = self.now();
        match frame {
            Some(Ok(Message::Text(text))) => self.core.handle_text(now, text.as_str()),
            Some(Ok(Message::Close(_))) | None => self.core.handle_transport_closed(None),
            Some(Ok(_)) => {}
            Some(Err(e)) => self.core.handle_transport_closed(Some(e.to_string())),
        }
        while let Some(event) = self.core.poll_event() {
            self.events.push_back(event);
        }
        self.flush().await;
    }

    /// The next event (pings are handled inside the core).
    pub async fn next_event(&mut self) -> Event {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.events.pop_front() {
                return e;
            }
            assert!(Instant::now() < deadline, "no event within the wait");
            self.pump().await;
        }
    }

    /// Waits for a server invocation of `target` (other events are kept for later).
    pub async fn expect_invocation(&mut self, target: &str) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self
                .events
                .iter()
                .position(|e| matches!(e, Event::Invocation { target: t, .. } if t == target))
            {
                let Some(Event::Invocation { arguments, .. }) = self.events.remove(i) else {
                    unreachable!()
                };
                return arguments;
            }
            assert!(Instant::now() < deadline, "no {target} within the wait");
            self.pump().await;
        }
    }

    /// Waits until `n` invocations of `target` arrived (other events are kept) and returns
    /// their arguments, in order; fails after [`WAIT`].
    pub async fn take_invocations(&mut self, target: &str, n: usize) -> Vec<Vec<Value>> {
        let mut taken = Vec::new();
        while taken.len() < n {
            taken.push(self.expect_invocation(target).await);
        }
        taken
    }

    /// How many invocations of `target` arrived and were not taken yet (no waiting).
    pub fn queued(&self, target: &str) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Invocation { target: t, .. } if t == target))
            .count()
    }

    /// Invokes and waits for the completion.
    pub async fn invoke(&mut self, target: &str, arguments: Vec<Value>) -> CompletionOutcome {
        let now = self.now();
        let id = self.core.invoke(now, target, arguments).expect("connected");
        self.flush().await;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self.events.iter().position(
                |e| matches!(e, Event::Completion { invocation_id, .. } if *invocation_id == id),
            ) {
                let Some(Event::Completion { outcome, .. }) = self.events.remove(i) else {
                    unreachable!()
                };
                return outcome;
            }
            assert!(Instant::now() < deadline, "no completion within the wait");
            self.pump().await;
        }
    }

    pub async fn invoke_ok(&mut self, target: &str, arguments: Vec<Value>) -> Value {
        match self.invoke(target, arguments).await {
            CompletionOutcome::Result(v) => v,
            other => panic!("{target}: expected a result, got {other:?}"),
        }
    }

    pub async fn invoke_err(&mut self, target: &str, arguments: Vec<Value>) -> String {
        match self.invoke(target, arguments).await {
            CompletionOutcome::Error(e) => e,
            other => panic!("{target}: expected an error, got {other:?}"),
        }
    }

    /// Waits for the connection to close; returns the Close error.
    pub async fn expect_closed(&mut self) -> (Option<String>, bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self
                .events
                .iter()
                .position(|e| matches!(e, Event::Closed { .. }))
            {
                let Some(Event::Closed {
                    error,
                    allow_reconnect,
                }) = self.events.remove(i)
                else {
                    unreachable!()
                };
                return (error, allow_reconnect);
            }
            assert!(Instant::now() < deadline, "not closed within the wait");
            self.pump().await;
        }
    }
}

/// Waits until `check` holds (polling every 10 ms, at most [`WAIT`]).
pub async fn eventually(mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "condition not met within the wait"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An Azure SignalR REST token for `url` (HS256 with the access key).
pub fn rest_token(base: &str, path: &str) -> String {
    let now = switchboard_hub::auth::unix_now();
    switchboard_hub::auth::AccessKey::new(KEY).sign(&format!("{base}{path}"), None, now, now + 300)
}

/// A REST request `method {base}{path}{query}` signed with a [`rest_token`] for `path` (the
/// audience leaves the query out), with `body` as JSON when given → the HTTP status.
pub async fn rest(
    method: reqwest::Method,
    base: &str,
    path: &str,
    query: &str,
    body: Option<Value>,
) -> reqwest::StatusCode {
    let mut request = http()
        .request(method, format!("{base}{path}{query}"))
        .bearer_auth(rest_token(base, path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

/// Sends `request`, which must get an answer → the response.
pub async fn sent(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.unwrap()
}

/// An identity provider for the OIDC tests, served on 127.0.0.1:0 in the background: its state
/// is made from its base URL (`http://127.0.0.1:PORT`), its discovery document
/// (`/tenant/.well-known/openid-configuration`) is `discovery(state)`, and `routes` serve the rest
/// (the key set) → the state.
pub async fn serve_idp<S: Send + Sync + 'static>(
    state: impl FnOnce(String) -> S,
    discovery: fn(&S) -> Value,
    routes: axum::Router<std::sync::Arc<S>>,
) -> std::sync::Arc<S> {
    use axum::extract::State;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = std::sync::Arc::new(state(format!("http://{}", listener.local_addr().unwrap())));
    let app = routes
        .route(
            "/tenant/.well-known/openid-configuration",
            axum::routing::get(move |State(idp): State<std::sync::Arc<S>>| async move {
                axum::Json(discovery(&idp))
            }),
        )
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    idp
}
