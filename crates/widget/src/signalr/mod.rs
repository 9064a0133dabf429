//! The browser side of the hub connection: negotiate over `fetch` (following the Azure-style
//! redirect `{url, accessToken}`), the WebSocket transport, timers and automatic reconnect.
//! All protocol decisions are made by the sans-IO [`HubConnectionCore`]; this module only moves
//! text between it and the browser, and tells it the time.
//!
//! Start algorithm as the official client's `HttpConnection._startInternal`: negotiate
//! (`negotiateVersion=1`, `useStatefulReconnect=true` when configured), follow at most
//! [`MAX_REDIRECTS`] redirects, then try the configured transports in order (WebSockets, then
//! Server-Sent Events, then long polling) among those the server offers for the protocol's
//! transfer format, negotiating again before each next transport because connection tokens are
//! single-use; handshake. The access-token provider is called before every negotiate, so each
//! (re)connect gets a fresh token.
//!
//! Stateful reconnect (WebSockets): when the socket drops, the core keeps the logical connection
//! ([`HubConnectionCore::handle_transport_lost`]); the state says `Reconnecting` (the hub cannot
//! reach the agent while no socket is open), the same URL is reopened and the core resumes
//! (Sequence + replay of unacknowledged messages), then `Connected` again. A resume is bounded
//! by the core in time and count; a reopen the hub refuses (a restarted hub no longer knows the
//! connection) ends it at once. Either way the connection closes and a full reconnect with a
//! fresh negotiate follows.
//!
//! The truth about the connection (issue 13): every step that waits on the network is bounded
//! (negotiate by [`NEGOTIATE_TIMEOUT_MS`], transport open + handshake by the core's handshake
//! timeout, a silent hub by the server timeout), the reconnect policy never gives up (its
//! delays, then one attempt every 30–60 s with jitter), and [`HubClient::wake`] (online,
//! visibility, page resume) checks the connection at once and cuts any wait short.

mod transport;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use gloo_timers::callback::Timeout;
use serde_json::Value;
use switchboard_signalr::client::{Event, HubConnectionCore, HubConnectionOptions};
use switchboard_signalr::client::{
    RESUME_ATTEMPTS, RESUME_REFUSED, RESUME_TIMEOUT, SERVER_TIMEOUT,
};
use switchboard_signalr::negotiate::{
    MAX_REDIRECTS, NegotiateConnection, NegotiateResponse, TransportKind, append_query,
    connect_url, negotiate_url, resolve_url,
};
use switchboard_signalr::retry::SlowRetryPolicy;
use switchboard_signalr::{CompletionOutcome, ConnectionState};

use self::transport::{Transport, TransportEvent};
use crate::browser::StartedSocket;

/// A future that yields a bearer token for the first negotiate, or a reason it cannot.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>>>>;

/// What the hub client needs to know.
pub struct HubClientOptions {
    /// Hub URL as `withUrl` takes it (relative to the page or absolute).
    pub url: String,
    /// Keep-alive, server timeout, handshake timeout, hub protocol, and whether to ask for
    /// stateful reconnect (used only when the server agrees and the transport is WebSockets).
    pub connection: HubConnectionOptions,
    /// Transports to try, in order.
    pub transports: Vec<TransportKind>,
    /// Connect a WebSocket to `url` without negotiating (`skipNegotiation`).
    pub skip_negotiation: bool,
    /// Delays between reconnect attempts (applied to the first start too), then the slow
    /// interval for ever.
    pub retry: SlowRetryPolicy,
}

/// The longest a negotiate request may take before the attempt fails (ms). A hub behind a
/// network black hole never answers; without a bound the widget would wait for the browser's
/// own TCP timeout (minutes).
pub const NEGOTIATE_TIMEOUT_MS: u32 = 15_000;

/// The longest one whole connection attempt may take (ms): token, negotiate, each transport
/// tried and its handshake. Whatever hangs past it (an access-token provider that never
/// answers, a request the network swallowed), the attempt is given up and the next one is
/// scheduled by the reconnect policy.
pub const ATTEMPT_TIMEOUT_MS: u32 = 45_000;

/// Callbacks the application registers. They are called with no borrow held, so they may call
/// back into the client.
pub struct HubClientHandlers {
    /// Supplies an access token; called before every negotiate.
    pub access_token: Rc<dyn Fn() -> TokenFuture>,
    /// The connection state changed; the text is the reason for a loss or a failure.
    pub on_state: Rc<dyn Fn(ConnectionState, Option<String>)>,
    /// The hub invoked a client method (`target`, `arguments`).
    pub on_invocation: Rc<dyn Fn(String, Vec<Value>)>,
    /// A line for the diagnostics log (transport chosen, resumes, dropped messages).
    pub on_diagnostic: Rc<dyn Fn(String)>,
    /// When the next connection attempt is due (`Date.now()` milliseconds), or `None` when an
    /// attempt is under way or none is waiting.
    pub on_next_attempt: Rc<dyn Fn(Option<f64>)>,
}

/// A hub connection that reconnects by itself. Cheap to clone (shared handle).
#[derive(Clone)]
pub struct HubClient(Rc<RefCell<Inner>>);

struct Inner {
    options: HubClientOptions,
    handlers: Rc<HubClientHandlers>,
    state: ConnectionState,
    /// Bumped for every connection attempt; callbacks of older attempts are ignored.
    generation: u64,
    core: Option<HubConnectionCore>,
    transport: Option<Transport>,
    /// Where a dropped WebSocket is reopened for a stateful resume, and how often it was tried.
    resume: Option<(String, String, u32)>,
    reopen_timer: Option<Timeout>,
    /// The core's timer and the deadline it was armed for.
    timer: Option<(Duration, Timeout)>,
    retry_timer: Option<Timeout>,
    /// Bounds the open + handshake of the attempt under way.
    attempt_timer: Option<Timeout>,
    /// Bounds the whole attempt under way ([`ATTEMPT_TIMEOUT_MS`]).
    attempt_deadline: Option<Timeout>,
    pending: HashMap<String, oneshot::Sender<Result<Value, String>>>,
    streams: HashMap<String, mpsc::UnboundedSender<Result<Value, String>>>,
    handshake: Option<oneshot::Sender<Result<(), String>>>,
    retries: u32,
    ever_connected: bool,
    /// How the last connection was made: transport, protocol, stateful reconnect.
    connected_via: Option<String>,
    /// Whether the last `Connected` was a stateful resume (nothing lost) rather than a new
    /// connection (after which the application resyncs).
    resumed: bool,
}

/// The clock of the sans-IO core: time since page load (`performance.now()`).
fn now() -> Duration {
    Duration::from_secs_f64(crate::browser::since_load_ms().max(0.0) / 1000.0)
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
            transport: None,
            resume: None,
            reopen_timer: None,
            timer: None,
            retry_timer: None,
            attempt_timer: None,
            attempt_deadline: None,
            pending: HashMap::new(),
            streams: HashMap::new(),
            handshake: None,
            retries: 0,
            ever_connected: false,
            connected_via: None,
            resumed: false,
        })))
    }

    /// The present state.
    pub fn state(&self) -> ConnectionState {
        self.0.borrow().state
    }

    /// Whether the last `Connected` was a stateful resume of the same connection: nothing the
    /// hub sent was lost, so there is nothing to resync. `false` after a new connection.
    pub fn resumed(&self) -> bool {
        self.0.borrow().resumed
    }

    /// How the last connection was made (`transport WebSockets, protocol json, stateful
    /// reconnect on`), for diagnostics; `None` before the first one.
    pub fn connected_via(&self) -> Option<String> {
        self.0.borrow().connected_via.clone()
    }

    fn connected(&self, via: String) {
        let handlers = self.0.borrow().handlers.clone();
        (handlers.on_diagnostic)(["connected: ", &via].concat());
        self.0.borrow_mut().connected_via = Some(via);
    }

    /// Starts connecting unless already connected or trying. Failures are retried per policy.
    pub fn start(&self) {
        {
            let mut inner = self.0.borrow_mut();
            if !matches!(inner.state, ConnectionState::Disconnected) {
                return;
            }
            inner.retries = 0;
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
            inner.attempt_timer = None;
            inner.attempt_deadline = None;
            inner.timer = None;
            if let Some(core) = inner.core.as_mut() {
                core.close(now());
            }
        }
        self.flush();
        self.drain_events();
        let mut inner = self.0.borrow_mut();
        inner.transport = None;
        inner.core = None;
        inner.resume = None;
        inner.reopen_timer = None;
        drop(inner);
        self.set_state(ConnectionState::Disconnected, None);
    }

    /// The browser says the world may have changed under the connection: the network came back
    /// (`online`), the tab became visible, or a frozen page resumed. Checks the connection at
    /// once instead of trusting timers that a frozen or throttled page did not run: a
    /// connected core runs its timers now (a hub silent for longer than the server timeout is
    /// given up at once); a reconnect waiting for its delay is tried now; a stopped one starts.
    pub fn wake(&self) {
        let (state, waiting, has_core) = {
            let inner = self.0.borrow();
            (
                inner.state,
                inner.retry_timer.is_some(),
                inner.core.is_some(),
            )
        };
        match state {
            ConnectionState::Disconnected => self.start(),
            _ if waiting => {
                self.0.borrow_mut().retry_timer = None;
                let handlers = self.0.borrow().handlers.clone();
                (handlers.on_diagnostic)("woken: trying to connect now".into());
                self.0.borrow_mut().retries += 1;
                self.attempt();
            }
            _ if has_core => {
                if let Some(core) = self.0.borrow_mut().core.as_mut() {
                    core.handle_timeout(now());
                }
                self.pump();
            }
            _ => {}
        }
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
                None => Err(crate::i18n::strings().not_connected.to_owned()),
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

    /// Starts a stream invocation (`StreamInvocation`, type 4): the receiver yields each item as
    /// `Ok`, then ends; an error (from the hub, or the connection closing) is a last `Err`.
    pub fn stream(
        &self,
        target: &str,
        arguments: Vec<Value>,
    ) -> mpsc::UnboundedReceiver<Result<Value, String>> {
        let (tx, rx) = mpsc::unbounded();
        let result = {
            let mut inner = self.0.borrow_mut();
            match inner
                .core
                .as_mut()
                .map(|c| c.stream(now(), target, arguments))
            {
                Some(Ok(id)) => {
                    inner.streams.insert(id, tx.clone());
                    Ok(())
                }
                Some(Err(e)) => Err(e.to_string()),
                None => Err(crate::i18n::strings().not_connected.to_owned()),
            }
        };
        if let Err(e) = result {
            let _ = tx.unbounded_send(Err(e));
        }
        self.flush();
        rx
    }

    /// Sends a non-blocking invocation (no completion).
    pub fn send(&self, target: &str, arguments: Vec<Value>) -> Result<(), String> {
        let result = {
            let mut inner = self.0.borrow_mut();
            match inner.core.as_mut() {
                Some(core) => core
                    .send(now(), target, arguments)
                    .map_err(|e| e.to_string()),
                None => Err(crate::i18n::strings().not_connected.to_owned()),
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
            inner.retry_timer = None;
            inner.attempt_timer = None;
            inner.transport = None;
            inner.core = None;
            inner.resume = None;
            inner.reopen_timer = None;
            inner.timer = None;
            (
                inner.generation,
                inner.handlers.clone(),
                inner.options.url.clone(),
            )
        };
        (handlers.on_next_attempt)(None);
        let weak = Rc::downgrade(&self.0);
        let deadline = Timeout::new(ATTEMPT_TIMEOUT_MS, move || {
            let Some(rc) = weak.upgrade() else { return };
            let client = HubClient(rc);
            {
                let mut inner = client.0.borrow_mut();
                if inner.generation != generation {
                    return;
                }
                // Abandon it: its future's result is ignored from now on.
                inner.generation += 1;
                inner.transport = None;
                inner.core = None;
                inner.handshake = None;
                inner.attempt_timer = None;
                inner.attempt_deadline = None;
            }
            (client.0.borrow().handlers.on_diagnostic)(format!(
                "connection attempt abandoned after {} s",
                ATTEMPT_TIMEOUT_MS / 1000
            ));
            client.schedule_retry(crate::i18n::strings().hub_silent.to_owned());
        });
        self.0.borrow_mut().attempt_deadline = Some(deadline);
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
                        inner.resumed = false;
                        inner.attempt_timer = None;
                        inner.attempt_deadline = None;
                    }
                    this.set_state(ConnectionState::Connected, None);
                }
                Err(reason) => {
                    this.0.borrow_mut().attempt_deadline = None;
                    this.schedule_retry(reason)
                }
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
        let base = resolve_url(&page, &url);
        let (options, transports, skip_negotiation) = {
            let inner = self.0.borrow();
            (
                inner.options.connection,
                inner.options.transports.clone(),
                inner.options.skip_negotiation,
            )
        };
        if skip_negotiation {
            // `skipNegotiation`: straight to the WebSocket, no connection id, no stateful reconnect.
            let token = (handlers.access_token)().await?;
            self.start_transport(
                generation,
                TransportKind::WebSockets,
                &base,
                &token,
                false,
                None,
            )
            .await?;
            self.connected(format!(
                "transport WebSockets (negotiation skipped), protocol {}",
                options.protocol.name()
            ));
            return Ok(());
        }
        let format = if options.protocol.is_binary() {
            "Binary"
        } else {
            "Text"
        };
        // The connection index.html's start-up script opened (the first attempt only): adopted
        // as this attempt's negotiate and WebSocket when it was made for this hub URL with this
        // attempt's token; otherwise closed, and the token negotiates here.
        let mut token_in_hand = None;
        let mut started_socket = None;
        let mut negotiated: Option<(String, String, NegotiateConnection)> = None;
        if transports.first() == Some(&TransportKind::WebSockets)
            && !options.protocol.is_binary()
            && let Some(started) = crate::browser::take_started_socket().await
        {
            let token = (handlers.access_token)().await?;
            crate::browser::mark("switchboard:token");
            match NegotiateResponse::decode(&started.negotiate) {
                Ok(NegotiateResponse::Connection(c))
                    if started.hub_url == url && started.token == token =>
                {
                    negotiated = Some((started.url.clone(), started.connect_token.clone(), c));
                    started_socket = Some(started);
                }
                _ => {
                    (handlers.on_diagnostic)(
                        "the start-up script's hub connection was not made for this client: closed"
                            .into(),
                    );
                    started.close();
                    token_in_hand = Some(token);
                }
            }
        }
        let mut failures = Vec::new();
        for kind in transports {
            let (url, token, connection) = match negotiated.take() {
                Some(n) => n,
                None => {
                    let token = match token_in_hand.take() {
                        Some(token) => token,
                        None => {
                            let token = (handlers.access_token)().await?;
                            crate::browser::mark("switchboard:token");
                            token
                        }
                    };
                    negotiate_chain(&base, token, options.stateful_reconnect).await?
                }
            };
            if !connection.offers(kind, format) {
                failures.push(format!(
                    "{} is not offered for {format} frames",
                    kind.as_str()
                ));
                negotiated = Some((url, token, connection));
                continue;
            }
            let stateful = options.stateful_reconnect
                && connection.use_stateful_reconnect
                && kind == TransportKind::WebSockets;
            let target = connect_url(&url, connection.connect_id());
            // The start-up script's socket is the first transport's (WebSockets) or none.
            let started = started_socket.take_if(|_| kind == TransportKind::WebSockets);
            let by_script = if started.is_some() {
                ", opened by the start-up script before the widget ran"
            } else {
                ""
            };
            match self
                .start_transport(generation, kind, &target, &token, stateful, started)
                .await
            {
                Ok(()) => {
                    self.connected(format!(
                        "transport {}, protocol {}, stateful reconnect {}{by_script}",
                        kind.as_str(),
                        options.protocol.name(),
                        if stateful { "on" } else { "off" }
                    ));
                    return Ok(());
                }
                Err(e) => {
                    (handlers.on_diagnostic)(format!("{} failed: {e}", kind.as_str()));
                    failures.push(format!("{}: {e}", kind.as_str()));
                    if self.0.borrow().generation != generation {
                        return Err(e);
                    }
                }
            }
        }
        Err(format!(
            "Unable to connect to the hub with any transport. {}",
            failures.join(" ")
        ))
    }

    /// Opens one transport (or adopts `started`, the start-up script's WebSocket) and waits
    /// for the handshake.
    async fn start_transport(
        &self,
        generation: u64,
        kind: TransportKind,
        url: &str,
        token: &str,
        stateful: bool,
        started: Option<StartedSocket>,
    ) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        let limit = {
            let mut inner = self.0.borrow_mut();
            inner.options.connection.stateful_reconnect = stateful;
            inner.handshake = Some(tx);
            inner.resume = stateful.then(|| (url.to_owned(), token.to_owned(), 0));
            inner.options.connection.handshake_timeout
        };
        let transport = match started {
            Some(started) => Transport::adopt(&started, self.transport_sink(generation))?,
            None => self.open_transport(generation, kind, url, token)?,
        };
        // A transport that never opens (a black-holed network keeps a WebSocket "connecting"
        // for minutes) fails the attempt after the handshake timeout; the core bounds the
        // handshake itself once the transport is open.
        let weak = Rc::downgrade(&self.0);
        let seconds = limit.as_secs();
        let timer = Timeout::new(limit.as_millis().min(u32::MAX as u128) as u32, move || {
            let Some(rc) = weak.upgrade() else { return };
            let mut inner = rc.borrow_mut();
            if inner.generation != generation
                || inner.core.as_ref().is_some_and(|c| c.is_connected())
            {
                return;
            }
            if let Some(tx) = inner.handshake.take() {
                inner.transport = None;
                inner.core = None;
                let _ = tx.send(Err(format!("The hub did not answer within {seconds} s.")));
            }
        });
        {
            let mut inner = self.0.borrow_mut();
            inner.transport = Some(transport);
            inner.attempt_timer = Some(timer);
        }
        rx.await
            .unwrap_or_else(|_| Err("The connection attempt was abandoned.".into()))
    }

    fn open_transport(
        &self,
        generation: u64,
        kind: TransportKind,
        url: &str,
        token: &str,
    ) -> Result<Transport, String> {
        let binary = self.0.borrow().options.connection.protocol.is_binary();
        Transport::open(kind, url, token, binary, self.transport_sink(generation))
    }

    /// Where attempt `generation`'s transport reports to.
    fn transport_sink(&self, generation: u64) -> transport::Sink {
        let weak = Rc::downgrade(&self.0);
        Rc::new(move |event: TransportEvent| {
            if let Some(rc) = weak.upgrade() {
                HubClient(rc).on_transport_event(generation, event);
            }
        })
    }

    fn on_transport_event(&self, generation: u64, event: TransportEvent) {
        if self.0.borrow().generation != generation {
            return;
        }
        match event {
            TransportEvent::Opened => {
                let resumed = {
                    let mut inner = self.0.borrow_mut();
                    inner.reopen_timer = None;
                    match inner.core.as_mut() {
                        Some(core) if core.is_resuming() => core.resume(now()).is_ok(),
                        Some(_) => false,
                        None => {
                            let options = inner.options.connection;
                            inner.core = Some(HubConnectionCore::new(options, now()));
                            false
                        }
                    }
                };
                if resumed && let Some(r) = self.0.borrow_mut().resume.as_mut() {
                    r.2 = 0; // the next drop is retried at once again
                }
            }
            TransportEvent::Text(text) => {
                if let Some(core) = self.0.borrow_mut().core.as_mut() {
                    core.handle_text(now(), &text);
                }
            }
            TransportEvent::Binary(bytes) => {
                if let Some(core) = self.0.borrow_mut().core.as_mut() {
                    core.handle_binary(now(), &bytes);
                }
            }
            TransportEvent::Closed { reason, opened } => {
                let mut inner = self.0.borrow_mut();
                inner.transport = None;
                let resumable = match inner.core.as_mut() {
                    None => {
                        // Closed before it opened: unreachable, or the upgrade was refused.
                        if let Some(tx) = inner.handshake.take() {
                            let _ = tx.send(Err(if opened {
                                reason
                            } else {
                                "The transport to the hub could not be opened.".into()
                            }));
                        }
                        return;
                    }
                    // A reopen for a resume that never opened: the hub refused it (it no
                    // longer knows the connection) or is unreachable: start over at once.
                    Some(core) if core.is_resuming() && !opened => {
                        core.handle_resume_refused();
                        false
                    }
                    Some(core) => {
                        let was_connected = core.is_connected();
                        let resumable = core.handle_transport_lost(now(), Some(reason.clone()));
                        if resumable && was_connected {
                            drop(inner);
                            let handlers = self.0.borrow().handlers.clone();
                            (handlers.on_diagnostic)(format!(
                                "transport lost ({reason}); resuming the connection"
                            ));
                            self.set_state(
                                ConnectionState::Reconnecting,
                                Some(crate::i18n::strings().connection_lost.to_owned()),
                            );
                            inner = self.0.borrow_mut();
                        }
                        resumable
                    }
                };
                drop(inner);
                if resumable {
                    self.schedule_reopen(generation);
                }
            }
        }
        self.pump();
    }

    /// Reopens the WebSocket for a stateful resume: at once, then after 1, 2, 4… s (at most 5 s)
    /// until the core's resume bound gives up on the connection.
    fn schedule_reopen(&self, generation: u64) {
        let Some((url, token, attempts)) = self.0.borrow().resume.clone() else {
            return;
        };
        if let Some(r) = self.0.borrow_mut().resume.as_mut() {
            r.2 += 1;
        }
        let delay = if attempts == 0 {
            0
        } else {
            (1000u32 << (attempts - 1).min(3)).min(5000)
        };
        let weak = Rc::downgrade(&self.0);
        let timer = Timeout::new(delay, move || {
            let Some(rc) = weak.upgrade() else { return };
            let client = HubClient(rc);
            let still_resuming = {
                let inner = client.0.borrow();
                inner.generation == generation
                    && inner
                        .core
                        .as_ref()
                        .is_some_and(HubConnectionCore::is_resuming)
            };
            if !still_resuming {
                return;
            }
            match client.open_transport(generation, TransportKind::WebSockets, &url, &token) {
                Ok(t) => client.0.borrow_mut().transport = Some(t),
                Err(_) => client.schedule_reopen(generation),
            }
        });
        self.0.borrow_mut().reopen_timer = Some(timer);
    }

    /// Sends what the core queued, delivers its events, and re-arms its timer.
    fn pump(&self) {
        self.flush();
        self.drain_events();
        self.arm_timer();
    }

    fn flush(&self) {
        let mut inner = self.0.borrow_mut();
        let Inner {
            core, transport, ..
        } = &mut *inner;
        if let (Some(core), Some(transport)) = (core.as_mut(), transport.as_ref()) {
            while let Some(frame) = core.poll_transmit_frame() {
                transport.send(frame);
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
                    let stream = self.0.borrow_mut().streams.remove(&invocation_id);
                    if let Some(tx) = stream {
                        if let CompletionOutcome::Error(e) = outcome {
                            let _ = tx.unbounded_send(Err(e));
                        }
                        continue; // dropping the sender ends the stream
                    }
                    let waiter = self.0.borrow_mut().pending.remove(&invocation_id);
                    if let Some(tx) = waiter {
                        let _ = tx.send(match outcome {
                            CompletionOutcome::Void => Ok(Value::Null),
                            CompletionOutcome::Result(v) => Ok(v),
                            CompletionOutcome::Error(e) => Err(e),
                        });
                    }
                }
                Event::StreamItem {
                    invocation_id,
                    item,
                } => {
                    if let Some(tx) = self.0.borrow().streams.get(&invocation_id) {
                        let _ = tx.unbounded_send(Ok(item));
                    }
                }
                Event::Resumed => {
                    self.0.borrow_mut().resumed = true;
                    (handlers.on_diagnostic)("stateful reconnect: resumed, nothing lost".into());
                    self.set_state(ConnectionState::Connected, None);
                }
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
            inner.transport = None;
            inner.resume = None;
            inner.reopen_timer = None;
            (
                // Reconnecting here means a stateful resume that just gave up.
                matches!(
                    inner.state,
                    ConnectionState::Connected | ConnectionState::Reconnecting
                ),
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
        let refused = !allow_reconnect && error.is_some();
        {
            let mut inner = self.0.borrow_mut();
            // The server closed on purpose and did not allow reconnecting: the official client
            // stops there. An agent's widget must not stay dead until someone clicks, so it
            // goes straight to the slow retries (once every 30-60 s) instead of the quick ones.
            inner.retries = if refused {
                inner.options.retry.first_slow_retry()
            } else {
                0
            };
            inner.core = None;
        }
        let handlers = self.0.borrow().handlers.clone();
        (handlers.on_diagnostic)(format!(
            "connection lost: {}",
            error.as_deref().unwrap_or("the transport closed")
        ));
        self.schedule_retry(reason_text(error.as_deref()));
    }

    fn schedule_retry(&self, reason: String) {
        let (delay, ever_connected, slow, handlers) = {
            let inner = self.0.borrow();
            (
                inner
                    .options
                    .retry
                    .next_delay(inner.retries, js_sys::Math::random()),
                inner.ever_connected,
                inner.options.retry.is_slow(inner.retries),
                inner.handlers.clone(),
            )
        };
        let state = if ever_connected {
            ConnectionState::Reconnecting
        } else {
            ConnectionState::Connecting
        };
        (handlers.on_diagnostic)(format!(
            "next attempt in {} ms{}",
            delay.as_millis(),
            if slow { " (slow retry)" } else { "" }
        ));
        self.set_state(state, Some(reason));
        let weak = Rc::downgrade(&self.0);
        let timer = Timeout::new(delay.as_millis().min(u32::MAX as u128) as u32, move || {
            if let Some(rc) = weak.upgrade() {
                let client = HubClient(rc);
                client.0.borrow_mut().retries += 1;
                client.attempt();
            }
        });
        self.0.borrow_mut().retry_timer = Some(timer);
        (handlers.on_next_attempt)(Some(js_sys::Date::now() + delay.as_secs_f64() * 1000.0));
    }

    /// Arms one timer for the core's next deadline (keep-alive or timeout). A timer already
    /// armed for that deadline or an earlier one is kept: firing early is harmless (the core
    /// acts on what is due and this re-arms for the rest), and not re-arming on every receive
    /// keeps a setTimeout/clearTimeout pair off each notification's path (issue 17).
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
        if self
            .0
            .borrow()
            .timer
            .as_ref()
            .is_some_and(|(armed, _)| *armed <= deadline)
        {
            return;
        }
        let wait = deadline
            .saturating_sub(now())
            .as_millis()
            .min(i32::MAX as u128) as u32;
        let weak = Rc::downgrade(&self.0);
        let timer = Timeout::new(wait, move || {
            if let Some(rc) = weak.upgrade() {
                let client = HubClient(rc);
                // This timer has fired (dropping it now, as re-arming always did, is safe):
                // the pump below arms the next one.
                let fired = client.0.borrow_mut().timer.take();
                drop(fired);
                if let Some(core) = client.0.borrow_mut().core.as_mut() {
                    core.handle_timeout(now());
                }
                client.pump();
            }
        });
        self.0.borrow_mut().timer = Some((deadline, timer));
    }
}

/// Negotiates at `base`, following redirects (each with its own access token). Returns the hub
/// URL to connect to, the token to connect with, and the connection.
async fn negotiate_chain(
    base: &str,
    mut token: String,
    stateful: bool,
) -> Result<(String, String, NegotiateConnection), String> {
    let mut url = base.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let mut target = negotiate_url(&url);
        if stateful {
            target = append_query(&target, "useStatefulReconnect", "true");
        }
        match negotiate(&target, &token).await? {
            NegotiateResponse::Connection(c) => return Ok((url, token, c)),
            NegotiateResponse::Redirect {
                url: next,
                access_token,
            } => {
                url = next;
                if let Some(t) = access_token {
                    token = t;
                }
            }
            NegotiateResponse::Error(e) => return Err(format!("The hub refused: {e}")),
        }
    }
    Err("Negotiate redirection limit exceeded.".into())
}

/// `POST {url}` with `Authorization: Bearer`, as the official client negotiates.
///
/// Failures are sentences in the agent's language (they are shown when the connection is lost).
async fn negotiate(url: &str, token: &str) -> Result<NegotiateResponse, String> {
    let t = crate::i18n::strings();
    let shown = url.split('?').next().unwrap_or(url).to_owned();
    // Bounded: a black-holed hub would otherwise keep the attempt waiting for minutes.
    let controller = web_sys::AbortController::new().ok();
    let signal = controller.as_ref().map(web_sys::AbortController::signal);
    let _deadline = controller.map(|c| Timeout::new(NEGOTIATE_TIMEOUT_MS, move || c.abort()));
    let response = gloo_net::http::Request::post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .abort_signal(signal.as_ref())
        .send()
        .await
        .map_err(|_| t.hub_text("hub_unreachable", &shown, 0))?;
    match response.status() {
        200..=299 => {}
        401 => return Err(t.hub_text("hub_unauthorized", &shown, 401)),
        404 => return Err(t.hub_text("hub_not_found", &shown, 404)),
        status => return Err(t.hub_text("hub_http_error", &shown, status)),
    }
    let body = response
        .text()
        .await
        .map_err(|_| format!("Negotiate at {shown}: the answer could not be read."))?;
    NegotiateResponse::decode(&body).map_err(|e| format!("Negotiate at {shown}: {e}"))
}

/// The reason for a lost connection in the agent's language where the core gave one of its
/// known texts; other texts (the hub's own Close error, a transport's) are shown as they are.
fn reason_text(error: Option<&str>) -> String {
    let t = crate::i18n::strings();
    match error {
        None => t.connection_lost.to_owned(),
        Some(SERVER_TIMEOUT) => t.hub_silent.to_owned(),
        Some(RESUME_TIMEOUT | RESUME_REFUSED | RESUME_ATTEMPTS) => t.resume_failed.to_owned(),
        Some(e) if e.starts_with("WebSocket closed") || e.starts_with("The transport") => {
            t.connection_lost.to_owned()
        }
        Some(e) => e.to_owned(),
    }
}
