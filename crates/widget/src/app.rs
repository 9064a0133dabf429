//! The application: start-up (config, sign-in), the hub connection, and the agent's desk.
//!
//! State lives in a few signals ([`Widget`]); the hub client, which is not `Send`, sits in a
//! local [`StoredValue`]. Hub events and button presses go through [`Desk`] (pure, in
//! `switchboard-core`), whose [`Action`]s are carried out here as hub invocations.

use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};
use switchboard_core::{Action, AuthConfig, CallState, Config, Desk, IncomingCall, RejectReason};
use switchboard_signalr::ConnectionState;
use switchboard_signalr::client::HubConnectionOptions;
use switchboard_signalr::negotiate::TransportKind;
use switchboard_signalr::protocol::HubProtocolKind;
use switchboard_signalr::retry::DelayListPolicy;

use crate::diagnostics;
use crate::i18n::strings;
use crate::signalr::{HubClient, HubClientHandlers, HubClientOptions, TokenFuture};
use crate::ui::{
    ActiveCallPanel, ConnectionStatus, IdlePanel, IncomingCallDialog, Notice, SignInForm,
};

/// Where start-up stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Reading config.json.
    Loading,
    /// The widget cannot start; the text says why and what to do.
    Failed(String),
    /// Dev sign-in: the agent picks a user.
    ChooseUser,
    /// Signed in; the hub connection runs.
    Running,
}

/// The reactive state of the widget. `Copy`: every field is a signal handle.
#[derive(Clone, Copy)]
pub struct Widget {
    pub phase: RwSignal<Phase>,
    pub config: RwSignal<Option<Config>>,
    pub user: RwSignal<Option<String>>,
    pub connection: RwSignal<ConnectionState>,
    pub connection_detail: RwSignal<Option<String>>,
    pub desk: RwSignal<Desk>,
    pub notice: RwSignal<Option<String>>,
    /// `performance.now()` in ms, refreshed every second for timers shown to the agent.
    pub now_ms: RwSignal<f64>,
    /// Own presence, the team list and the Teams sync (`presence.rs`).
    pub presence: crate::presence::Presence,
    /// The CRM host around the widget (issue 5, `host/`).
    pub host: crate::host::Host,
    client: StoredValue<Option<HubClient>, LocalStorage>,
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

fn query_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok()?;
    params.get(name).filter(|v| !v.trim().is_empty())
}

async fn load_config() -> Result<Config, String> {
    let response = gloo_net::http::Request::get("config.json")
        .send()
        .await
        .map_err(|_| "config.json could not be loaded: the server did not answer.".to_owned())?;
    if !response.ok() {
        return Err(format!(
            "config.json could not be loaded (HTTP {}). Ask your administrator to deploy it next to the widget.",
            response.status()
        ));
    }
    let text = response
        .text()
        .await
        .map_err(|_| "config.json could not be read.".to_owned())?;
    Config::from_json(&text).map_err(|e| e.to_string())
}

impl Widget {
    fn new() -> Self {
        let desk = RwSignal::new(Desk::new());
        Self {
            phase: RwSignal::new(Phase::Loading),
            config: RwSignal::new(None),
            user: RwSignal::new(None),
            connection: RwSignal::new(ConnectionState::Disconnected),
            connection_detail: RwSignal::new(None),
            desk,
            presence: crate::presence::Presence::new(desk),
            notice: RwSignal::new(None),
            now_ms: RwSignal::new(now_ms()),
            host: crate::host::Host::new(),
            client: StoredValue::new_local(None),
        }
    }

    fn boot(self) {
        spawn_local(async move {
            match load_config().await {
                Ok(config) => {
                    self.host.start(&config, self.host_callbacks());
                    self.config.set(Some(config));
                    match query_param("user") {
                        Some(user) => self.sign_in(user),
                        None => self.phase.set(Phase::ChooseUser),
                    }
                }
                Err(e) => self.phase.set(Phase::Failed(e)),
            }
        });
    }

    /// Signs in as `user` (dev mode) and starts the hub connection.
    pub fn sign_in(self, user: String) {
        let Some(config) = self.config.get_untracked() else {
            return;
        };
        let user = user.trim().to_owned();
        if let Some(window) = web_sys::window() {
            // Keep the choice across reloads: /?user=alice.
            let url = format!(
                "?user={}",
                switchboard_signalr::negotiate::encode_uri_component(&user)
            );
            if let Ok(history) = window.history() {
                let _ =
                    history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
            }
        }
        self.user.set(Some(user.clone()));
        self.phase.set(Phase::Running);

        let token_url = match &config.auth {
            AuthConfig::Dev { token_url } => token_url.clone(),
            AuthConfig::Msal { .. } => {
                self.phase.set(Phase::Failed(
                    "config.json asks for MSAL sign-in, which this build does not include yet. Use \"auth\": {\"mode\": \"dev\"} with switchboard-hub.".into(),
                ));
                return;
            }
        };
        let access_token: Rc<dyn Fn() -> TokenFuture> = {
            let user = user.clone();
            Rc::new(move || {
                let (url, user) = (token_url.clone(), user.clone());
                Box::pin(async move { crate::auth::dev_token(&url, &user).await })
            })
        };
        let handlers = HubClientHandlers {
            access_token,
            on_state: Rc::new(move |state, detail: Option<String>| {
                diagnostics::record(format!(
                    "state: {}{}",
                    state.as_str(),
                    detail
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ));
                self.connection.set(state);
                if state == ConnectionState::Connected {
                    self.presence.connected();
                    if let Some(number) = self.host.take_pending_dial() {
                        self.dial(number);
                    }
                }
                self.connection_detail
                    .set(if state == ConnectionState::Connected {
                        None
                    } else {
                        detail
                    });
            }),
            on_invocation: Rc::new(move |target, arguments| self.on_invocation(&target, arguments)),
            on_diagnostic: Rc::new(diagnostics::record),
        };
        let Some(protocol) = HubProtocolKind::from_name(&config.hub.protocol) else {
            self.phase.set(Phase::Failed(format!(
                "config.json asks for the {} hub protocol, which this build of the widget does not include. Use \"protocol\": \"json\", or deploy the MessagePack build.",
                config.hub.protocol
            )));
            return;
        };
        let options = HubClientOptions {
            url: config.hub.url.clone(),
            connection: HubConnectionOptions {
                keep_alive_interval: Duration::from_secs(
                    config.hub.keep_alive_interval_seconds.into(),
                ),
                server_timeout: Duration::from_secs(config.hub.server_timeout_seconds.into()),
                protocol,
                stateful_reconnect: config.hub.stateful_reconnect,
                ..HubConnectionOptions::default()
            },
            transports: config
                .hub
                .transports
                .iter()
                .filter_map(|t| match t.as_str() {
                    "WebSockets" => Some(TransportKind::WebSockets),
                    "ServerSentEvents" => Some(TransportKind::ServerSentEvents),
                    "LongPolling" => Some(TransportKind::LongPolling),
                    _ => None,
                })
                .collect(),
            skip_negotiation: config.hub.skip_negotiation,
            retry: DelayListPolicy::from_millis(&config.hub.reconnect_delays_ms),
        };
        let client = HubClient::new(options, handlers);
        self.client.set_value(Some(client.clone()));
        self.presence.start(&config, &user, client.clone());
        client.start();
    }

    /// Stops the connection and returns to the sign-in form.
    pub fn sign_out(self) {
        // Clears our session presence in Teams (Graph, not the hub).
        self.presence.sign_out();
        if let Some(client) = self.client.get_value() {
            client.stop();
        }
        self.client.set_value(None);
        self.user.set(None);
        self.desk.set(Desk::new());
        self.notice.set(None);
        if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("?"));
        }
        self.phase.set(Phase::ChooseUser);
    }

    /// Tries again after the reconnect policy gave up.
    pub fn reconnect(self) {
        if let Some(client) = self.client.get_value() {
            client.start();
        }
    }

    fn on_invocation(self, target: &str, arguments: Vec<Value>) {
        // The call id, never the caller's number or name, goes into the diagnostics log.
        let call_id = match arguments.first() {
            Some(Value::String(message)) => serde_json::from_str::<Value>(message)
                .ok()
                .and_then(|m| m.get("callId").and_then(Value::as_str).map(str::to_owned)),
            Some(Value::Object(o)) => o.get("callId").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        diagnostics::record(format!(
            "received {target}{}",
            call_id
                .map(|id| format!(" callId={id}"))
                .unwrap_or_default()
        ));
        // Method names match case-insensitively, as in the official client.
        match target.to_ascii_lowercase().as_str() {
            "receivenotification" => match arguments.first().and_then(Value::as_str) {
                Some(message) => match IncomingCall::from_seed_message(message) {
                    Ok(call) => self.offer(call),
                    Err(e) => warn(&format!("ReceiveNotification ignored: {e}")),
                },
                None => warn("ReceiveNotification ignored: its argument is not a string."),
            },
            "incomingcall" => match arguments.first().map(IncomingCall::from_value) {
                Some(Ok(call)) => self.offer(call),
                Some(Err(e)) => warn(&format!("IncomingCall ignored: {e}")),
                None => warn("IncomingCall ignored: no argument."),
            },
            "callupdated" => {
                let call = arguments.first();
                let id = call.and_then(|c| c.get("callId")).and_then(Value::as_str);
                let state = call
                    .and_then(|c| c.get("state"))
                    .and_then(Value::as_str)
                    .and_then(CallState::from_wire);
                match (id, state) {
                    (Some(id), Some(state)) => {
                        self.transition(|d| {
                            d.call_updated(id, state);
                            Action::Nothing
                        });
                    }
                    _ => warn("CallUpdated ignored: it has no callId or no known state."),
                }
            }
            "callended" => match (
                arguments.first().and_then(Value::as_str),
                arguments.get(1).and_then(Value::as_str),
            ) {
                (Some(id), reason) => {
                    self.transition(|d| {
                        d.call_ended(id, reason.unwrap_or("completed"));
                        Action::Nothing
                    });
                }
                _ => warn("CallEnded ignored: it has no callId."),
            },
            "presencechanged" => self.presence.pushed(&arguments),
            _ => warn(&format!("No client method with the name '{target}' found.")),
        }
    }

    fn offer(self, call: IncomingCall) {
        let ring_ms = self
            .config
            .with_untracked(|c| c.as_ref().map(|c| c.ring_timeout_seconds).unwrap_or(30))
            as f64
            * 1000.0;
        let action = self.transition(|d| d.offer(call, now_ms(), ring_ms));
        if action == Action::Ring {
            self.notice.set(None);
            self.now_ms.set(now_ms());
            // +50 ms so the deadline has passed when the timer fires.
            gloo_timers::callback::Timeout::new(ring_ms as u32 + 50, move || {
                self.ring_timed_out(now_ms())
            })
            .forget();
        } else {
            self.perform(action);
        }
    }

    /// The ring time ran out at `now` (or the host's notification timed out: `f64::MAX`).
    fn ring_timed_out(self, now: f64) {
        let action = self.transition(|d| d.ring_timeout(now));
        self.perform(action);
    }

    /// The agent pressed Accept.
    pub fn accept(self) {
        let action = self.transition(|d| d.accept());
        self.perform(action);
    }

    /// The agent pressed Reject.
    pub fn reject(self) {
        let action = self.transition(|d| d.reject());
        self.perform(action);
    }

    /// The agent pressed Hang up.
    pub fn hang_up(self) {
        let action = self.transition(|d| d.hang_up());
        self.perform(action);
    }

    /// Places a call through the hub's `makeCall` (host click-to-dial, `tel:` links).
    pub fn dial(self, number: String) {
        let Some(client) = self.client.get_value() else {
            self.notice.set(Some(strings().not_connected.into()));
            return;
        };
        spawn_local(async move {
            if let Err(e) = client.invoke("makeCall", vec![json!(number)]).await {
                warn(&format!("makeCall failed: {e}"));
                self.notice.set(Some(e));
            }
        });
    }

    /// What the host may ask (issue 5).
    fn host_callbacks(self) -> crate::host::HostCallbacks {
        crate::host::HostCallbacks {
            dial: Callback::new(move |n| self.dial(n)),
            accept: Callback::new(move |_| self.accept()),
            reject: Callback::new(move |_| self.reject()),
            timeout: Callback::new(move |_| self.ring_timed_out(f64::MAX)),
            set_presence: Callback::new(move |c| self.presence.choose(c)),
        }
    }

    /// Applies a desk transition and tells the host what changed: a call rings, the ringing
    /// call was accepted or dismissed, the call in progress ended (issue 5).
    fn transition(self, f: impl FnOnce(&mut Desk) -> Action) -> Action {
        let before = self.desk.with_untracked(crate::host::desk_ids);
        let mut action = Action::Nothing;
        self.desk.update(|d| action = f(d));
        self.desk
            .with_untracked(|d| self.host.after_transition(d, before));
        action
    }

    /// Carries out a desk action as hub invocations. Typed methods carry the call id; the
    /// seed's `sendMessage("Accepted"|"Rejected")` acknowledgement follows for compatibility.
    fn perform(self, action: Action) {
        let calls: Vec<(&'static str, Vec<Value>)> = match action {
            Action::Nothing | Action::Ring => return,
            Action::Accept {
                call_id,
                has_remote_id,
            } => {
                let mut calls = Vec::new();
                if has_remote_id {
                    calls.push(("acceptCall", vec![json!(call_id)]));
                }
                calls.push(("sendMessage", vec![json!("Accepted")]));
                calls
            }
            Action::Reject {
                call_id,
                reason,
                has_remote_id,
            } => {
                let mut calls = Vec::new();
                if has_remote_id {
                    calls.push(("rejectCall", vec![json!(call_id), json!(reason)]));
                }
                if reason != RejectReason::Timeout {
                    calls.push(("sendMessage", vec![json!("Rejected")]));
                }
                calls
            }
            Action::HangUp { call_id } => vec![("hangUp", vec![json!(call_id)])],
        };
        let Some(client) = self.client.get_value() else {
            return;
        };
        spawn_local(async move {
            for (method, arguments) in calls {
                if let Err(e) = client.invoke(method, arguments).await {
                    warn(&format!("{method} failed: {e}"));
                    self.notice.set(Some(e));
                }
            }
        });
    }
}

fn warn(text: &str) {
    diagnostics::record(text.to_owned());
    web_sys::console::warn_1(&text.into());
}

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    diagnostics::install();
    let widget = Widget::new();
    widget.boot();
    gloo_timers::callback::Interval::new(1000, move || widget.now_ms.set(now_ms())).forget();
    // A laptop waking up or a network coming back: if the reconnect policy had given up, try
    // again at once instead of waiting for the agent to notice.
    let _ = window_event_listener(leptos::ev::online, move |_| widget.reconnect());
    let _ = window_event_listener(leptos::ev::visibilitychange, move |_| widget.reconnect());
    let t = strings();
    Effect::new(move |_| {
        let own = widget.presence.own.get();
        let teams = own
            .teams
            .map(|p| (p.availability.as_str(), p.activity.as_str()));
        widget.host.presence_changed(&own.choice, teams);
    });

    let body = move || match widget.phase.get() {
        Phase::Loading => view! { <p class="placeholder">{t.loading}</p> }.into_any(),
        Phase::Failed(reason) => view! {
            <section class="panel panel--error" role="alert">
                <h2>{t.config_failed}</h2>
                <p>{reason}</p>
            </section>
        }
        .into_any(),
        Phase::ChooseUser => view! {
            <SignInForm on_sign_in=Callback::new(move |user: String| widget.sign_in(user)) />
        }
        .into_any(),
        Phase::Running => view! { <DeskView widget=widget /> }.into_any(),
    };

    view! {
        <main class="widget">
            <header class="bar">
                <h1 class="bar__brand">
                    <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d=crate::ui::PHONE_PATH /></svg>
                    {t.app_name}
                </h1>
                <ConnectionStatus state=widget.connection />
            </header>
            {body}
        </main>
    }
}

/// The signed-in view: who, the connection's trouble if any, and the call area.
#[component]
fn DeskView(widget: Widget) -> impl IntoView {
    let t = strings();
    let ringing = move || widget.desk.with(|d| d.ringing().cloned());
    let active = move || widget.desk.with(|d| d.active().cloned());
    let call_area = move || {
        if let Some(r) = ringing() {
            let left = Signal::derive(move || {
                let ms = widget
                    .desk
                    .with(|d| d.ringing().map(|r| r.deadline_ms))
                    .unwrap_or(0.0)
                    - widget.now_ms.get();
                (ms / 1000.0).ceil().max(0.0) as u32
            });
            view! {
                <IncomingCallDialog
                    call=r.call
                    seconds_left=left
                    on_accept=Callback::new(move |_| widget.accept())
                    on_reject=Callback::new(move |_| widget.reject())
                />
            }
            .into_any()
        } else if let Some(a) = active() {
            view! {
                <ActiveCallPanel call=a.call on_hang_up=Callback::new(move |_| widget.hang_up()) />
            }
            .into_any()
        } else {
            view! {
                <IdlePanel
                    last=Signal::derive(move || widget.desk.with(|d| d.last_outcome().cloned()))
                    connected=Signal::derive(move || widget.connection.get() == ConnectionState::Connected)
                />
            }
            .into_any()
        }
    };
    view! {
        <div class="identity">
            <span>{t.signed_in_as}" "<strong>{move || widget.user.get().unwrap_or_default()}</strong></span>
            <button class="btn btn--subtle" on:click=move |_| widget.sign_out()>{t.sign_out}</button>
        </div>
        {move || {
            let state = widget.connection.get();
            widget.connection_detail.get().filter(|_| state != ConnectionState::Connected).map(|detail| {
                view! {
                    <div class="connection-detail">
                        <p>{detail}</p>
                        {(state == ConnectionState::Disconnected).then(|| view! {
                            <button class="btn btn--secondary" on:click=move |_| widget.reconnect()>{t.reconnect}</button>
                        })}
                    </div>
                }
            })
        }}
        <crate::presence::OwnPresence presence=widget.presence />
        {move || widget.host.hint.get().map(|hint| view! { <p class="host-hint" role="note">{hint}</p> })}
        {call_area}
        {move || widget.notice.get().map(|text| view! {
            <Notice text=text on_dismiss=Callback::new(move |_| widget.notice.set(None)) />
        })}
        <crate::presence::Team presence=widget.presence />
    }
}
