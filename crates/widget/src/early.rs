//! The early connection (issue 17, "the start-up target"): the hub connection started from
//! `main` before the Leptos app is mounted, so the network's round trips (negotiate, its
//! redirect, the WebSocket, the handshake) run while the main thread is free instead of behind
//! ~40 ms of mounting and the stores' start.
//!
//! It applies to a dev sign-in with `?user=` whose token index.html's start-up script already
//! asked for (`window.__switchboardBoot`), in hub telephony mode, for an agent whose language is
//! English (built in, so no text waits for a catalogue). Then [`begin`]:
//! 1. parses config.json's answer (kept for [`take_config`], so `boot.rs` does not ask again)
//!    and builds the [`HubClient`] as `boot.rs` would, with handlers that **record** what the
//!    client reports (states, hub invocations, retry times) in order (its diagnostics go to the
//!    log at once);
//! 2. starts it, and shows its state on index.html's static first screen (`#boot-screen`: the
//!    status pill, `role="status"`, "Connecting…" then "Connected");
//! 3. calls `mount` once the connection is up and painted, at its first failure, after
//!    [`MOUNT_WAIT_MS`], or at once when it does not apply.
//!
//! `boot.rs` then [`take`]s the client for the same user: the widget's own handlers replace the
//! recording ones and receive everything recorded, in order, as if they had been there from the
//! start, so a call offered before the desk was built rings when it is (nothing is lost).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde_json::Value;
use switchboard_core::transport::Transport;
use switchboard_core::{AuthConfig, Config};
use switchboard_signalr::ConnectionState;
use switchboard_signalr::client::HubConnectionOptions;
use switchboard_signalr::negotiate::TransportKind;
use switchboard_signalr::protocol::HubProtocolKind;
use switchboard_signalr::retry::{DelayListPolicy, SlowRetryPolicy};

use crate::browser::StartedAnswer;
use crate::signalr::{HubClient, HubClientHandlers, HubClientOptions, TokenFuture};

/// The longest the app's mount waits for the early connection (ms): past it the desk is built
/// whatever the connection does (its state shows in the widget's own header from then on).
pub const MOUNT_WAIT_MS: u32 = 1_000;

/// The longest the early connection waits for the app to take it once the app is being mounted
/// (ms). Past it (the app's chunk did not load, the app failed) the connection is closed, so the
/// hub offers no call to a page that cannot show it, and the first screen says so.
pub const ADOPT_WAIT_MS: u32 = 20_000;

/// What the client reported before the widget's handlers were attached, in order.
enum Recorded {
    State(ConnectionState, Option<String>),
    Invocation(String, Vec<Value>),
    NextAttempt(Option<f64>),
}

/// Where the client's reports go: recorded until [`adopt`], then the widget's handlers.
enum Sink {
    Recording(Vec<Recorded>),
    Live(Rc<HubClientHandlers>),
}

/// The early client, its user and its report sink, until `boot.rs` adopts it.
struct Early {
    user: String,
    client: HubClient,
    sink: Rc<RefCell<Sink>>,
}

thread_local! {
    /// Set while [`EarlyClient::attach`] delivers recorded states (already logged).
    static REPLAYING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static CONFIG: RefCell<Option<StartedAnswer>> = const { RefCell::new(None) };
    static EARLY: RefCell<Option<Early>> = const { RefCell::new(None) };
}

/// config.json's answer as the start-up script got it, if [`begin`] took it (once): `boot.rs`
/// reads it instead of asking again.
pub fn take_config() -> Option<StartedAnswer> {
    CONFIG.with(|c| c.borrow_mut().take())
}

/// The early client for `user`, to be adopted by `boot.rs` (once). `None` when there is none
/// (it did not apply or was taken already) or it is for another user (that one is stopped);
/// the caller builds its own client then.
pub fn take(user: &str) -> Option<EarlyClient> {
    let early = EARLY.with(|e| e.borrow_mut().take())?;
    if early.user != user {
        early.client.stop();
        return None;
    }
    Some(EarlyClient {
        client: early.client,
        sink: early.sink,
    })
}

/// The early client's state while it waits to be taken (`None` when there is none): the app's
/// header starts from it, so "Connected" on the first screen does not turn into "Disconnected"
/// for the moment between the app's mount and the hand-over.
pub fn state() -> Option<ConnectionState> {
    EARLY.with(|e| e.borrow().as_ref().map(|e| e.client.state()))
}

/// Whether recorded reports are being delivered now: their state lines are in the log already,
/// written when they happened, so the widget does not log them again.
pub fn replaying() -> bool {
    REPLAYING.with(std::cell::Cell::get)
}

/// The log's line for a connection state: `state: Connected`, `state: Reconnecting (why)`.
pub fn state_line(state: ConnectionState, detail: Option<&str>) -> String {
    match detail {
        Some(detail) => ["state: ", state.as_str(), " (", detail, ")"].concat(),
        None => ["state: ", state.as_str()].concat(),
    }
}

/// A started client whose reports are recorded until [`attach`](Self::attach).
pub struct EarlyClient {
    client: HubClient,
    sink: Rc<RefCell<Sink>>,
}

impl EarlyClient {
    /// The client (a shared handle).
    pub fn client(&self) -> HubClient {
        self.client.clone()
    }

    /// How many reports wait for [`attach`](Self::attach), and how many of them are hub
    /// invocations (a call offered before the app was mounted is one).
    pub fn waiting(&self) -> (usize, usize) {
        match &*self.sink.borrow() {
            Sink::Recording(recorded) => (
                recorded.len(),
                recorded
                    .iter()
                    .filter(|r| matches!(r, Recorded::Invocation(..)))
                    .count(),
            ),
            Sink::Live(_) => (0, 0),
        }
    }

    /// Attaches the widget's `handlers`: everything the client reported so far is delivered to
    /// them first, in order, in this task; every later report goes to them directly.
    pub fn attach(self, handlers: HubClientHandlers) {
        let handlers = Rc::new(handlers);
        let recorded =
            match std::mem::replace(&mut *self.sink.borrow_mut(), Sink::Live(handlers.clone())) {
                Sink::Recording(recorded) => recorded,
                Sink::Live(_) => Vec::new(),
            };
        let invocations = recorded
            .iter()
            .filter(|r| matches!(r, Recorded::Invocation(..)))
            .count();
        (handlers.on_diagnostic)(format!(
            "hub connection: started before the app was mounted; {} reports kept for it ({invocations} hub invocations)",
            recorded.len()
        ));
        REPLAYING.with(|r| r.set(true));
        for report in recorded {
            deliver(&handlers, report);
        }
        REPLAYING.with(|r| r.set(false));
    }
}

/// Passes one report to the widget's handlers (with no borrow held: they may call back into
/// the client).
fn deliver(handlers: &HubClientHandlers, report: Recorded) {
    match report {
        Recorded::State(state, detail) => (handlers.on_state)(state, detail),
        Recorded::Invocation(target, arguments) => (handlers.on_invocation)(target, arguments),
        Recorded::NextAttempt(at) => (handlers.on_next_attempt)(at),
    }
}

/// Starts the early connection when it applies, and calls `mount` when the app should be
/// mounted (see the module's documentation). Never fails: when anything is missing, `mount`
/// runs at once and the app starts as without it.
pub fn begin(mount: impl FnOnce() + 'static) {
    let mount_now = once(mount);
    wasm_bindgen_futures::spawn_local(async move {
        let Some(answer) = crate::browser::take_started("config", None).await else {
            return mount_now();
        };
        let config = ((200..300).contains(&answer.status))
            .then(|| Config::from_json(&answer.text).ok())
            .flatten();
        CONFIG.with(|c| *c.borrow_mut() = Some(answer));
        let Some((config, user)) = config.and_then(applies) else {
            return mount_now();
        };
        let (Ok(options), AuthConfig::Dev { token_url }) = (hub_options(&config), &config.auth)
        else {
            return mount_now();
        };
        start(options, token_url.clone(), user, mount_now);
    });
}

/// Starts a hub connection for `user` (dev tokens from `token_url`) whose reports are recorded
/// until [`take`] hands it over, and calls `ready` once: when it is connected and that is
/// painted, at its first failure, or after [`MOUNT_WAIT_MS`]. [`begin`] calls it when the
/// early connection applies; the wasm tests call it directly.
pub fn connect(
    options: HubClientOptions,
    token_url: String,
    user: String,
    ready: impl FnOnce() + 'static,
) {
    start(options, token_url, user, once(ready));
}

/// `f` as a function that runs it the first time it is called and does nothing after.
fn once(f: impl FnOnce() + 'static) -> Rc<dyn Fn()> {
    let f = RefCell::new(Some(f));
    Rc::new(move || {
        let f = f.borrow_mut().take();
        if let Some(f) = f {
            f();
        }
    })
}

/// The config and the user when the early connection applies: a dev sign-in for `?user=` whose
/// token the start-up script asked for, hub telephony, an English-speaking agent.
fn applies(config: Config) -> Option<(Config, String)> {
    if !matches!(config.auth, AuthConfig::Dev { .. }) || config.telephony.sip().is_some() {
        return None;
    }
    let user = crate::browser::query_param("user")?.trim().to_owned();
    if user.is_empty() || crate::browser::started_user().as_deref() != Some(user.as_str()) {
        return None;
    }
    let lang = crate::browser::query_param("lang");
    let language = crate::i18n::for_agent(lang.as_deref(), Some(&config.locale));
    (language == crate::i18n::BUILT_IN).then_some((config, user))
}

fn start(options: HubClientOptions, token_url: String, user: String, mount_now: Rc<dyn Fn()>) {
    // Mounting arms the watchdog: the app must take the connection within ADOPT_WAIT_MS.
    let mount_now: Rc<dyn Fn()> = {
        let armed = std::cell::Cell::new(false);
        Rc::new(move || {
            if !armed.replace(true) {
                gloo_timers::callback::Timeout::new(ADOPT_WAIT_MS, give_up).forget();
            }
            mount_now();
        })
    };
    let sink = Rc::new(RefCell::new(Sink::Recording(Vec::new())));
    let record = {
        let sink = sink.clone();
        move |report: Recorded| match &mut *sink.borrow_mut() {
            Sink::Recording(recorded) => {
                recorded.push(report);
                None
            }
            Sink::Live(handlers) => Some((handlers.clone(), report)),
        }
    };
    let record = Rc::new(record);
    // Each handler records while recording, else passes on to the widget's (with no borrow held).
    let pass = |live: Option<(Rc<HubClientHandlers>, Recorded)>| {
        if let Some((handlers, report)) = live {
            deliver(&handlers, report);
        }
    };
    let dev_tokens = crate::auth::dev_tokens(&token_url, &user);
    let token_sink = sink.clone();
    let handlers = HubClientHandlers {
        access_token: Rc::new(move || -> TokenFuture {
            if let Sink::Live(handlers) = &*token_sink.borrow() {
                return (handlers.access_token)();
            }
            dev_tokens()
        }),
        on_state: Rc::new({
            let (record, mount_now, sink) = (record.clone(), mount_now.clone(), sink.clone());
            move |state, detail| {
                let recording = matches!(&*sink.borrow(), Sink::Recording(_));
                if recording {
                    // Logged now, in order with the client's own lines; not again on delivery.
                    crate::diagnostics::record(state_line(state, detail.as_deref()));
                    show_state(state);
                    match state {
                        // Mount once "Connected" is painted (a hidden page paints nothing).
                        ConnectionState::Connected => after_paint(mount_now.clone()),
                        ConnectionState::Disconnected | ConnectionState::Reconnecting => {
                            mount_now()
                        }
                        _ => {}
                    }
                }
                pass(record(Recorded::State(state, detail)))
            }
        }),
        on_invocation: Rc::new({
            let record = record.clone();
            move |target, arguments| pass(record(Recorded::Invocation(target, arguments)))
        }),
        // Diagnostics go to the log at once (it is installed before this runs), timed when
        // they happen: support sees the early connection's steps even if the app never loads.
        on_diagnostic: Rc::new({
            let sink = sink.clone();
            move |line| {
                let live = match &*sink.borrow() {
                    Sink::Live(handlers) => Some(handlers.clone()),
                    Sink::Recording(_) => None,
                };
                match live {
                    Some(handlers) => (handlers.on_diagnostic)(line),
                    None => crate::diagnostics::record(line),
                }
            }
        }),
        on_next_attempt: Rc::new({
            let (record, mount_now) = (record.clone(), mount_now.clone());
            move |at: Option<f64>| {
                if at.is_some() {
                    // An attempt failed: the widget shows why, and counts down to the next.
                    mount_now();
                }
                pass(record(Recorded::NextAttempt(at)))
            }
        }),
    };
    let client = HubClient::new(options, handlers);
    EARLY.with(|e| {
        *e.borrow_mut() = Some(Early {
            user,
            client: client.clone(),
            sink: sink.clone(),
        })
    });
    {
        let mount_now = mount_now.clone();
        gloo_timers::callback::Timeout::new(MOUNT_WAIT_MS, move || mount_now()).forget();
    }
    crate::browser::mark("switchboard:hub-start");
    client.start();
}

/// The app did not take the connection in time: closes it (the hub then sees the agent offline
/// and offers calls elsewhere) and tells the agent on the first screen. Does nothing once taken.
fn give_up() {
    let Some(early) = EARLY.with(|e| e.borrow_mut().take()) else {
        return;
    };
    crate::diagnostics::warn(
        "the app did not start in time: the hub connection was closed so that no call is offered here",
    );
    early.client.stop();
    show_not_loaded();
}

/// The app's chunk could not be loaded (`app::mount_app` failed): closes the early connection,
/// if there is one (the hub then offers calls elsewhere), and tells the agent on the first
/// screen at once, without waiting for [`ADOPT_WAIT_MS`].
pub fn app_not_loaded() {
    crate::diagnostics::warn(
        "the app could not be loaded: the hub connection was closed so that no call is offered here",
    );
    if let Some(early) = EARLY.with(|e| e.borrow_mut().take()) {
        early.client.stop();
    }
    show_not_loaded();
}

/// Adds the first screen's notice that the app did not load (text, never HTML; once).
fn show_not_loaded() {
    let document = web_sys::window().and_then(|w| w.document());
    if let Some((document, screen)) = document
        .as_ref()
        .and_then(|d| Some((d, d.get_element_by_id("boot-screen")?)))
        && !matches!(screen.query_selector(".notice"), Ok(Some(_)))
        && let Ok(notice) = document.create_element("p")
    {
        let _ = notice.set_attribute("role", "alert");
        notice.set_class_name("notice");
        // Text, never HTML. English: the only catalogue this module has.
        notice.set_text_content(Some(
            "Switchboard could not finish loading, so it takes no calls. Reload the page.",
        ));
        let _ = screen.append_child(&notice);
    }
}

/// Shows the connection's state on the static first screen's status pill.
fn show_state(state: ConnectionState) {
    let Some(pill) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector("#boot-screen .status").ok().flatten())
    else {
        return;
    };
    // The start-up script says "Connected" once the hub accepted the handshake of the socket
    // this client adopts: the client's own "Connecting…" would only be a step back.
    if state == ConnectionState::Connecting && pill.class_name().contains("status--connected") {
        return;
    }
    let t = crate::i18n::strings();
    let (modifier, text) = match state {
        ConnectionState::Connected => ("connected", t.connected),
        ConnectionState::Connecting => ("connecting", t.connecting),
        ConnectionState::Reconnecting => ("reconnecting", t.reconnecting),
        ConnectionState::Disconnected | ConnectionState::Disconnecting => {
            ("disconnected", t.disconnected)
        }
    };
    pill.set_class_name(&["status status--", modifier].concat());
    if let Ok(Some(label)) = pill.query_selector(".status__text") {
        label.set_text_content(Some(text));
    }
}

/// Runs `f` after the next paint (an animation frame, then a task), or in the next task when
/// the page is hidden (no frames are drawn then).
fn after_paint(f: Rc<dyn Fn()>) {
    if crate::browser::page_hidden() {
        return crate::browser::next_task(move || f());
    }
    crate::browser::after_next_paint(move || f());
}

/// The hub client's options from config.json; `Err` (the text for the agent) when the build
/// lacks the hub protocol it asks for.
pub fn hub_options(config: &Config) -> Result<HubClientOptions, String> {
    let Some(protocol) = HubProtocolKind::from_name(&config.hub.protocol) else {
        return Err(format!(
            "config.json asks for the {} hub protocol, which this build of the widget does not include. Use \"protocol\": \"json\", or deploy the MessagePack build.",
            config.hub.protocol
        ));
    };
    Ok(HubClientOptions {
        url: config.hub.url.clone(),
        connection: HubConnectionOptions {
            keep_alive_interval: Duration::from_secs(config.hub.keep_alive_interval_seconds.into()),
            server_timeout: Duration::from_secs(config.hub.server_timeout_seconds.into()),
            protocol,
            stateful_reconnect: config.hub.stateful_reconnect,
            ..HubConnectionOptions::default()
        },
        transports: switchboard_core::transport::transports(&config.hub.transports)
            .into_iter()
            .map(|t| match t {
                Transport::WebSockets => TransportKind::WebSockets,
                Transport::ServerSentEvents => TransportKind::ServerSentEvents,
                Transport::LongPolling => TransportKind::LongPolling,
            })
            .collect(),
        skip_negotiation: config.hub.skip_negotiation,
        retry: SlowRetryPolicy::new(
            DelayListPolicy::from_millis(&config.hub.reconnect_delays_ms),
            config.hub.slow_retry_seconds.0.into(),
            config.hub.slow_retry_seconds.1.into(),
        ),
    })
}
