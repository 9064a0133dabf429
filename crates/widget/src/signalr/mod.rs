//! The browser side of the hub connection: negotiate over `fetch` (following the Azure-style
//! redirect `{url, accessToken}`), the WebSocket transport, timers and automatic reconnect.
//! All protocol decisions are made by the sans-IO [`HubConnectionCore`]; this module only moves
//! text between it and the browser, and tells it the time.
//!
//! Start algorithm as the official client's `HttpConnection._startInternal`: negotiate
//! (`negotiateVersion=1`), follow at most [`MAX_REDIRECTS`] redirects, connect the WebSocket to
//! `{url}&id={connectionToken}&access_token={token}`, handshake. The access-token provider is
//! called before every negotiate, so each (re)connect gets a fresh token.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;
use gloo_timers::callback::Timeout;
use serde_json::Value;
use switchboard_signalr::client::{Event, HubConnectionCore, HubConnectionOptions};
use switchboard_signalr::negotiate::{
    MAX_REDIRECTS, NegotiateResponse, connect_url, negotiate_url, resolve_url, websocket_url,
};
use switchboard_signalr::retry::{DelayListPolicy, RetryPolicy};
use switchboard_signalr::{CompletionOutcome, ConnectionState};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// A future that yields a bearer token for the first negotiate, or a reason it cannot.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>>>>;

/// What the hub client needs to know.
pub struct HubClientOptions {
    /// Hub URL as `withUrl` takes it (relative to the page or absolute).
    pub url: String,
    /// Keep-alive, server timeout and handshake timeout.
    pub connection: HubConnectionOptions,
    /// Delays between reconnect attempts; applied to the first start too.
    pub retry: DelayListPolicy,
}

/// Callbacks the application registers. They are called with no borrow held, so they may call
/// back into the client.
pub struct HubClientHandlers {
    /// Supplies an access token; called before every negotiate.
    pub access_token: Rc<dyn Fn() -> TokenFuture>,
    /// The connection state changed; the text is the reason for a loss or a failure.
    pub on_state: Rc<dyn Fn(ConnectionState, Option<String>)>,
    /// The hub invoked a client method (`target`, `arguments`).
    pub on_invocation: Rc<dyn Fn(String, Vec<Value>)>,
}

/// A hub connection that reconnects by itself. Cheap to clone (shared handle).
#[derive(Clone)]
pub struct HubClient(Rc<RefCell<Inner>>);

struct Socket {
    ws: WebSocket,
    // Kept alive as long as the socket; dropped (and detached) with it.
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

struct Inner {
    options: HubClientOptions,
    handlers: Rc<HubClientHandlers>,
    state: ConnectionState,
    /// Bumped for every connection attempt; callbacks of older attempts are ignored.
    generation: u64,
    core: Option<HubConnectionCore>,
    socket: Option<Socket>,
    timer: Option<Timeout>,
    retry_timer: Option<Timeout>,
    pending: HashMap<String, oneshot::Sender<Result<Value, String>>>,
    handshake: Option<oneshot::Sender<Result<(), String>>>,
    retries: u32,
    lost_at: f64,
    ever_connected: bool,
}

/// Milliseconds since page load (`performance.now()`), the clock of the sans-IO core.
fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

fn now() -> Duration {
    Duration::from_secs_f64(now_ms().max(0.0) / 1000.0)
}

impl HubClient {
    /// A client in the `Disconnected` state; call [`start`](Self::start).
    pub fn new(options: HubClientOptions, handlers: HubClientHandlers) -> Self {
        HubClient(Rc::new(RefCell::new(Inner {
            options,
            handlers: Rc::new(handlers),
            state: ConnectionState::Disconnected,
            generation: 0,
            core: None,
            socket: None,
            timer: None,
            retry_timer: None,
            pending: HashMap::new(),
            handshake: None,
            retries: 0,
            lost_at: 0.0,
            ever_connected: false,
        })))
    }

    /// The present state.
    pub fn state(&self) -> ConnectionState {
        self.0.borrow().state
    }

    /// Starts connecting unless already connected or trying. Failures are retried per policy.
    pub fn start(&self) {
        {
            let mut inner = self.0.borrow_mut();
            if !matches!(inner.state, ConnectionState::Disconnected) {
                return;
            }
            inner.retries = 0;
            inner.lost_at = now_ms();
        }
        self.set_state(ConnectionState::Connecting, None);
        self.attempt();
    }

    /// Closes the connection for good (sign-out, page unload).
    pub fn stop(&self) {
        self.set_state(ConnectionState::Disconnecting, None);
        {
            let mut inner = self.0.borrow_mut();
            inner.generation += 1;
            inner.retry_timer = None;
            inner.timer = None;
            if let Some(core) = inner.core.as_mut() {
                core.close(now());
            }
        }
        self.flush();
        self.drain_events();
        let mut inner = self.0.borrow_mut();
        inner.socket = None;
        inner.core = None;
        drop(inner);
        self.set_state(ConnectionState::Disconnected, None);
    }

    /// Invokes a hub method and waits for its completion. Fails at once when not connected,
    /// and with the official client's text when the connection closes first.
    pub fn invoke(
        &self,
        target: &str,
        arguments: Vec<Value>,
    ) -> impl Future<Output = Result<Value, String>> + 'static {
        let receiver = {
            let mut inner = self.0.borrow_mut();
            match inner
                .core
                .as_mut()
                .map(|c| c.invoke(now(), target, arguments))
            {
                Some(Ok(id)) => {
                    let (tx, rx) = oneshot::channel();
                    inner.pending.insert(id, tx);
                    Ok(rx)
                }
                Some(Err(e)) => Err(e.to_string()),
                None => Err("Not connected to the hub.".to_owned()),
            }
        };
        self.flush();
        async move {
            match receiver {
                Ok(rx) => rx
                    .await
                    .unwrap_or_else(|_| Err("The connection was closed.".to_owned())),
                Err(e) => Err(e),
            }
        }
    }

    /// Sends a non-blocking invocation (no completion).
    pub fn send(&self, target: &str, arguments: Vec<Value>) -> Result<(), String> {
        let result = {
            let mut inner = self.0.borrow_mut();
            match inner.core.as_mut() {
                Some(core) => core
                    .send(now(), target, arguments)
                    .map_err(|e| e.to_string()),
                None => Err("Not connected to the hub.".to_owned()),
            }
        };
        self.flush();
        result
    }

    fn set_state(&self, state: ConnectionState, reason: Option<String>) {
        let handlers = {
            let mut inner = self.0.borrow_mut();
            inner.state = state;
            inner.handlers.clone()
        };
        (handlers.on_state)(state, reason);
    }

    /// One connection attempt: token, negotiate (+ redirects), WebSocket, handshake.
    fn attempt(&self) {
        let (generation, handlers, url) = {
            let mut inner = self.0.borrow_mut();
            inner.generation += 1;
            inner.socket = None;
            inner.core = None;
            inner.timer = None;
            (
                inner.generation,
                inner.handlers.clone(),
                inner.options.url.clone(),
            )
        };
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = this.connect(generation, handlers, url).await;
            if this.0.borrow().generation != generation {
                return; // stopped or superseded meanwhile
            }
            match result {
                Ok(()) => {
                    {
                        let mut inner = this.0.borrow_mut();
                        inner.retries = 0;
                        inner.ever_connected = true;
                    }
                    this.set_state(ConnectionState::Connected, None);
                }
                Err(reason) => this.schedule_retry(reason),
            }
        });
    }

    async fn connect(
        &self,
        generation: u64,
        handlers: Rc<HubClientHandlers>,
        url: String,
    ) -> Result<(), String> {
        let page = web_sys::window()
            .and_then(|w| w.location().href().ok())
            .unwrap_or_default();
        let mut url = resolve_url(&page, &url);
        let mut token = (handlers.access_token)().await?;
        let mut redirects = 0;
        let connection = loop {
            match negotiate(&negotiate_url(&url), &token).await? {
                NegotiateResponse::Connection(c) => break c,
                NegotiateResponse::Redirect {
                    url: next,
                    access_token,
                } => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err("Negotiate redirection limit exceeded.".into());
                    }
                    url = next;
                    if let Some(t) = access_token {
                        token = t;
                    }
                }
                NegotiateResponse::Error(e) => return Err(format!("The hub refused: {e}")),
            }
        };
        let ws_url = websocket_url(&connect_url(&url, connection.connect_id()), Some(&token));
        let (tx, rx) = oneshot::channel();
        self.open_socket(generation, &ws_url, tx)?;
        rx.await
            .unwrap_or_else(|_| Err("The connection attempt was abandoned.".into()))
    }

    fn open_socket(
        &self,
        generation: u64,
        ws_url: &str,
        handshake: oneshot::Sender<Result<(), String>>,
    ) -> Result<(), String> {
        let ws = WebSocket::new(ws_url)
            .map_err(|_| "The browser refused to open a WebSocket to the hub.".to_owned())?;
        let weak = Rc::downgrade(&self.0);
        let on_open = {
            let weak = weak.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                let Some(rc) = weak.upgrade() else { return };
                let client = HubClient(rc);
                {
                    let mut inner = client.0.borrow_mut();
                    if inner.generation != generation {
                        return;
                    }
                    let options = inner.options.connection;
                    inner.core = Some(HubConnectionCore::new(options, now()));
                }
                client.pump();
            })
        };
        let on_message = {
            let weak = weak.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let Some(rc) = weak.upgrade() else { return };
                let client = HubClient(rc);
                let Some(text) = event.data().as_string() else {
                    web_sys::console::warn_1(
                        &"Binary frame ignored: the JSON protocol uses text frames.".into(),
                    );
                    return;
                };
                {
                    let mut inner = client.0.borrow_mut();
                    if inner.generation != generation {
                        return;
                    }
                    if let Some(core) = inner.core.as_mut() {
                        core.handle_text(now(), &text);
                    }
                }
                client.pump();
            })
        };
        let on_close = {
            let weak = weak.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
                let Some(rc) = weak.upgrade() else { return };
                let client = HubClient(rc);
                let reason = format!(
                    "WebSocket closed with status code: {}{}",
                    event.code(),
                    if event.reason().is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", event.reason())
                    }
                );
                {
                    let mut inner = client.0.borrow_mut();
                    if inner.generation != generation {
                        return;
                    }
                    match inner.core.as_mut() {
                        Some(core) => core.handle_transport_closed(Some(reason)),
                        None => {
                            // Closed before it opened: the hub is unreachable or refused the upgrade.
                            if let Some(tx) = inner.handshake.take() {
                                let _ = tx.send(Err(
                                    "The WebSocket to the hub could not be opened.".into(),
                                ));
                            }
                            return;
                        }
                    }
                }
                client.pump();
            })
        };
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let mut inner = self.0.borrow_mut();
        inner.handshake = Some(handshake);
        inner.socket = Some(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        });
        Ok(())
    }

    /// Sends what the core queued, delivers its events, and re-arms its timer.
    fn pump(&self) {
        self.flush();
        self.drain_events();
        self.arm_timer();
    }

    fn flush(&self) {
        let mut inner = self.0.borrow_mut();
        let Inner { core, socket, .. } = &mut *inner;
        if let (Some(core), Some(socket)) = (core.as_mut(), socket.as_ref()) {
            while let Some(record) = core.poll_transmit() {
                if socket.ws.send_with_str(&record).is_err() {
                    break;
                }
            }
        }
    }

    fn drain_events(&self) {
        loop {
            let (event, handlers) = {
                let mut inner = self.0.borrow_mut();
                let event = inner.core.as_mut().and_then(HubConnectionCore::poll_event);
                (event, inner.handlers.clone())
            };
            let Some(event) = event else { break };
            match event {
                Event::Connected => {
                    if let Some(tx) = self.0.borrow_mut().handshake.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                Event::Invocation {
                    target,
                    arguments,
                    invocation_id,
                } => {
                    if let Some(id) = invocation_id {
                        // Client results are not offered by this widget: say so, as the
                        // official client does for a method without a result handler.
                        if let Some(core) = self.0.borrow_mut().core.as_mut() {
                            let _ = core.complete(
                                now(),
                                id,
                                CompletionOutcome::Error("Client didn't provide a result.".into()),
                            );
                        }
                        self.flush();
                    }
                    (handlers.on_invocation)(target, arguments);
                }
                Event::Completion {
                    invocation_id,
                    outcome,
                } => {
                    let waiter = self.0.borrow_mut().pending.remove(&invocation_id);
                    if let Some(tx) = waiter {
                        let _ = tx.send(match outcome {
                            CompletionOutcome::Void => Ok(Value::Null),
                            CompletionOutcome::Result(v) => Ok(v),
                            CompletionOutcome::Error(e) => Err(e),
                        });
                    }
                }
                Event::StreamItem { .. } => {}
                Event::Malformed(e) => {
                    web_sys::console::warn_1(&format!("Hub message dropped: {e}").into());
                }
                Event::Closed {
                    error,
                    allow_reconnect,
                } => self.on_closed(error, allow_reconnect),
            }
        }
    }

    fn on_closed(&self, error: Option<String>, allow_reconnect: bool) {
        let (was_connected, handshake) = {
            let mut inner = self.0.borrow_mut();
            inner.timer = None;
            inner.socket = None;
            (
                inner.state == ConnectionState::Connected,
                inner.handshake.take(),
            )
        };
        if let Some(tx) = handshake {
            // Still starting: the attempt fails and its caller schedules the retry.
            let _ = tx.send(Err(
                error.unwrap_or_else(|| "The hub closed the connection.".into())
            ));
            return;
        }
        if !was_connected {
            return;
        }
        if !allow_reconnect && error.is_some() {
            // The server closed on purpose and did not allow reconnecting.
            self.0.borrow_mut().core = None;
            self.set_state(ConnectionState::Disconnected, error);
            return;
        }
        {
            let mut inner = self.0.borrow_mut();
            inner.retries = 0;
            inner.lost_at = now_ms();
        }
        self.schedule_retry(error.unwrap_or_else(|| "Connection lost.".into()));
    }

    fn schedule_retry(&self, reason: String) {
        let (delay, ever_connected) = {
            let inner = self.0.borrow();
            let elapsed = Duration::from_secs_f64(((now_ms() - inner.lost_at) / 1000.0).max(0.0));
            (
                inner.options.retry.next_retry_delay(inner.retries, elapsed),
                inner.ever_connected,
            )
        };
        let Some(delay) = delay else {
            self.set_state(ConnectionState::Disconnected, Some(reason));
            return;
        };
        let state = if ever_connected {
            ConnectionState::Reconnecting
        } else {
            ConnectionState::Connecting
        };
        self.set_state(state, Some(reason));
        let weak = Rc::downgrade(&self.0);
        let timer = Timeout::new(delay.as_millis() as u32, move || {
            if let Some(rc) = weak.upgrade() {
                let client = HubClient(rc);
                client.0.borrow_mut().retries += 1;
                client.attempt();
            }
        });
        self.0.borrow_mut().retry_timer = Some(timer);
    }

    /// Arms one timer for the core's next deadline (keep-alive or timeout). It is re-armed after
    /// every receive, so a throttled background tab is corrected by the next message.
    fn arm_timer(&self) {
        let deadline = self
            .0
            .borrow()
            .core
            .as_ref()
            .and_then(HubConnectionCore::poll_timeout);
        let Some(deadline) = deadline else {
            self.0.borrow_mut().timer = None;
            return;
        };
        let wait = deadline
            .saturating_sub(now())
            .as_millis()
            .min(i32::MAX as u128) as u32;
        let weak = Rc::downgrade(&self.0);
        let timer = Timeout::new(wait, move || {
            if let Some(rc) = weak.upgrade() {
                let client = HubClient(rc);
                if let Some(core) = client.0.borrow_mut().core.as_mut() {
                    core.handle_timeout(now());
                }
                client.pump();
            }
        });
        self.0.borrow_mut().timer = Some(timer);
    }
}

/// `POST {url}` with `Authorization: Bearer`, as the official client negotiates.
async fn negotiate(url: &str, token: &str) -> Result<NegotiateResponse, String> {
    let shown = url.split('?').next().unwrap_or(url).to_owned();
    let response = gloo_net::http::Request::post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .send()
        .await
        .map_err(|_| format!("Cannot reach the hub at {shown}."))?;
    match response.status() {
        200..=299 => {}
        401 => {
            return Err(format!(
                "The hub at {shown} refused the sign-in (401). Sign in again."
            ));
        }
        404 => {
            return Err(format!(
                "No hub at {shown} (404). Check hub.url in config.json."
            ));
        }
        status => return Err(format!("Negotiate at {shown} failed with HTTP {status}.")),
    }
    let body = response
        .text()
        .await
        .map_err(|_| format!("Negotiate at {shown}: the answer could not be read."))?;
    NegotiateResponse::decode(&body).map_err(|e| format!("Negotiate at {shown}: {e}"))
}
