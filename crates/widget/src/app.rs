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
use switchboard_core::host::HostKind;
use switchboard_core::{Action, AuthConfig, Config, Desk, History, IncomingCall, RejectReason};
use switchboard_signalr::ConnectionState;
use switchboard_signalr::client::HubConnectionOptions;
use switchboard_signalr::negotiate::TransportKind;
use switchboard_signalr::protocol::HubProtocolKind;
use switchboard_signalr::retry::{DelayListPolicy, SlowRetryPolicy};
use wasm_bindgen::JsCast;

use crate::calls::CallRequest;
use crate::diagnostics;
use crate::i18n::strings;
use crate::signalr::{HubClient, HubClientHandlers, HubClientOptions, TokenFuture};
use crate::ui::call::{ActiveCallPanel, CallHistory, DialPad, WrapUpPanel};
use crate::ui::{ConnectionStatus, IdlePanel, IncomingCallDialog, Notice, SignInForm};

/// Where start-up stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Reading config.json.
    Loading,
    /// The widget cannot start; the text says why and what to do.
    Failed(String),
    /// Dev sign-in: the agent picks a user.
    ChooseUser,
    /// MSAL sign-in needs the agent: a "Sign in" button (popup), with why if known.
    SignIn(Option<String>),
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
    /// When the hub client tries to connect next (`Date.now()` ms), shown as a countdown.
    pub next_attempt: RwSignal<Option<f64>>,
    pub desk: RwSignal<Desk>,
    pub notice: RwSignal<Option<String>>,
    /// `Date.now()` (Unix ms), refreshed every second for timers shown to the agent.
    pub now_ms: RwSignal<f64>,
    /// Own presence, the team list and the Teams sync (`presence.rs`).
    pub presence: crate::presence::Presence,
    /// Recent calls (`calls.rs`), kept in `localStorage`.
    pub history: RwSignal<History>,
    /// What the agent typed in the `Phone number` box.
    pub dial_text: RwSignal<String>,
    /// Whether this tab is the one that rings (`tabs.rs`).
    pub(crate) ringer: StoredValue<Option<crate::tabs::Ringer>, LocalStorage>,
    /// MSAL needs the agent again while connected: the non-blocking "Sign in again" prompt.
    pub reauth: RwSignal<Option<String>>,
    /// Bumped at each sign-in and sign-out; a renewal loop of an older session stops.
    session: RwSignal<u32>,
    pub(crate) client: StoredValue<Option<HubClient>, LocalStorage>,
    msal: StoredValue<Option<crate::msal::Msal>, LocalStorage>,
    /// The CRM host around the widget (issue 5, `host/`).
    pub host: crate::host::Host,
    /// The language in use (a shipped BCP 47 tag); views are rebuilt when it changes.
    pub locale: RwSignal<&'static str>,
    /// The language asked for last; a slower download of an earlier choice is dropped.
    wanted_locale: StoredValue<&'static str>,
    /// The widget runs in its own window (the pop-out); this frame waits, disconnected.
    pub popped_out: RwSignal<bool>,
    popout: StoredValue<Option<(web_sys::Window, gloo_timers::callback::Interval)>, LocalStorage>,
}

/// The widget's clock: Unix milliseconds (`Date.now()`), for call timers and records alike.
pub(crate) fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn query_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok()?;
    params.get(name).filter(|v| !v.trim().is_empty())
}

async fn load_config() -> Result<Config, String> {
    let response = gloo_net::http::Request::get(crate::softphone::CONFIG_URL)
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
            next_attempt: RwSignal::new(None),
            desk,
            presence: crate::presence::Presence::new(desk),
            notice: RwSignal::new(None),
            now_ms: RwSignal::new(now_ms()),
            history: RwSignal::new(History::default()),
            dial_text: RwSignal::new(String::new()),
            ringer: StoredValue::new_local(None),
            reauth: RwSignal::new(None),
            session: RwSignal::new(0),
            host: crate::host::Host::new(),
            client: StoredValue::new_local(None),
            msal: StoredValue::new_local(None),
            locale: RwSignal::new(strings().locale),
            wanted_locale: StoredValue::new(strings().locale),
            popped_out: RwSignal::new(false),
            popout: StoredValue::new_local(None),
        }
    }

    /// Whether the pop-out is offered: in a frame whose host keeps working without the widget
    /// (postMessage, or a page that just frames it). CIF and Open CTI need the widget inside
    /// the CRM's own panel for screen pops and click-to-dial, so there it stays.
    pub fn can_pop_out(self) -> bool {
        let framed = web_sys::window()
            .and_then(|w| w.top().ok().flatten().map(|top| top != w))
            .unwrap_or(false);
        framed
            && matches!(
                self.host.kind.get(),
                Some(HostKind::PostMessage | HostKind::Standalone)
            )
    }

    /// Moves the widget to its own window: opens this page there as a standalone widget (same
    /// user, same language), then this frame disconnects and stops ringing until that window
    /// closes or the agent brings it back. A blocked popup is explained and nothing changes.
    pub fn pop_out(self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        let search = window.location().search().unwrap_or_default();
        let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search) else {
            return;
        };
        params.set("host", "standalone");
        params.set("popout", "1");
        params.set("lang", strings().locale);
        params.delete("ucilib");
        let path = window.location().pathname().unwrap_or_default();
        let url = [path.as_str(), "?", &String::from(params.to_string())].concat();
        match window.open_with_url_and_target_and_features(
            &url,
            "switchboard-popout",
            "popup,width=400,height=720",
        ) {
            Ok(Some(popup)) => {
                if let Some(client) = self.client.get_value() {
                    client.stop();
                }
                self.ringer.set_value(None);
                let watch = gloo_timers::callback::Interval::new(1000, move || {
                    let closed = self.popout.with_value(|p| {
                        p.as_ref().is_some_and(|(w, _)| w.closed().unwrap_or(true))
                    });
                    if closed {
                        self.bring_back();
                    }
                });
                self.popout.set_value(Some((popup, watch)));
                self.popped_out.set(true);
                diagnostics::record("popped out to its own window".into());
            }
            _ => self.notice.set(Some(strings().pop_out_blocked.into())),
        }
    }

    /// Ends the pop-out (its window closed, or "Bring it back here"): this frame rings and
    /// connects again.
    pub fn bring_back(self) {
        let Some((popup, _watch)) = self.popout.try_update_value(Option::take).flatten() else {
            return;
        };
        let _ = popup.close();
        self.popped_out.set(false);
        if let Some(user) = self.user.get_untracked() {
            self.ringer
                .set_value(Some(crate::tabs::Ringer::claim(&user)));
        }
        diagnostics::record("back from its own window".into());
        self.reconnect();
    }

    /// Speaks `tag` from now on (fetching its catalogue first); the last call wins.
    pub fn use_language(self, tag: &'static str) {
        if self.wanted_locale.get_value() == tag {
            return;
        }
        self.wanted_locale.set_value(tag);
        spawn_local(async move {
            match crate::i18n::fetch(tag).await {
                Ok(strings) if self.wanted_locale.get_value() == tag => {
                    crate::i18n::activate(strings);
                    diagnostics::record(format!("language: {tag}"));
                    self.locale.set(tag);
                }
                Ok(_) => {}
                Err(e) => warn(&format!("language {tag} not loaded: {e}")),
            }
        });
    }

    /// Whether the language is fixed by `?lang=` or config.json, so the host's does not count.
    fn language_fixed(self) -> bool {
        query_param("lang").is_some()
            || self
                .config
                .with_untracked(|c| c.as_ref().is_some_and(|c| c.locale != "auto"))
    }

    fn boot(self) {
        // The language: `?lang=`, else config.json's `locale`, else the host's user (an Effect
        // in App), else the browser's; English is built in and shown until another arrives.
        let explicit: Vec<String> = query_param("lang").into_iter().collect();
        self.use_language(crate::i18n::choose(&explicit));
        spawn_local(async move {
            match load_config().await {
                Ok(config) => {
                    if explicit.is_empty() && config.locale != "auto" {
                        self.use_language(crate::i18n::choose(std::slice::from_ref(
                            &config.locale,
                        )));
                    }
                    self.host.start(&config, self.host_callbacks());
                    let msal = matches!(config.auth, AuthConfig::Msal { .. });
                    self.config.set(Some(config));
                    if msal {
                        return self.msal_boot().await;
                    }
                    match query_param("user") {
                        Some(user) => self.sign_in(user),
                        None => self.phase.set(Phase::ChooseUser),
                    }
                }
                Err(e) => self.phase.set(Phase::Failed(e)),
            }
        });
    }

    /// MSAL start-up: initialise, handle a redirect answer, pick the account, then a silent
    /// token; if that needs the agent, `ssoSilent` with a login hint (the `loginHint` query
    /// parameter, else in CIF the Dynamics user from `getEnvironment`, waited for at most
    /// [`HOST_USER_WAIT_MS`](switchboard_core::signin::HOST_USER_WAIT_MS)); else the
    /// "Sign in" button.
    async fn msal_boot(self) {
        let Some(config) = self.config.get_untracked() else {
            return;
        };
        let msal = match crate::msal::Msal::start(&config.auth).await {
            Ok(msal) => msal,
            Err(p) => return self.phase.set(Phase::Failed(strings().sign_in_problem(&p))),
        };
        self.msal.set_value(Some(msal.clone()));
        let mut token = msal.api_token().await;
        if let Err(p) = &token
            && p.needs_interaction()
        {
            let hint = match query_param("loginHint") {
                Some(hint) => Some(hint),
                None => self.host_user().await,
            };
            if let Some(hint) = hint {
                diagnostics::record("sign-in: ssoSilent with a login hint".into());
                token = msal.sso(&hint).await;
            }
        }
        match token {
            Ok(token) => self.msal_signed_in(token),
            Err(p) if p.needs_interaction() => self.phase.set(Phase::SignIn(None)),
            Err(p) => self
                .phase
                .set(Phase::SignIn(Some(strings().sign_in_problem(&p)))),
        }
    }

    /// The host's signed-in user (CIF `getEnvironment().username`), waited for at most
    /// `HOST_USER_WAIT_MS` in 100 ms steps; `None` at once for other hosts.
    async fn host_user(self) -> Option<String> {
        if self.host.kind.get_untracked() != Some(switchboard_core::host::HostKind::Cif) {
            return None;
        }
        for _ in 0..switchboard_core::signin::HOST_USER_WAIT_MS / 100 {
            if let Some(user) = self.host.user.get_untracked() {
                return user;
            }
            gloo_timers::future::sleep(Duration::from_millis(100)).await;
        }
        diagnostics::record("sign-in: no user from the host in time".into());
        None
    }

    /// The agent pressed "Sign in": a redirect in a top-level tab (`auth.interaction`), else a
    /// popup (opened inside the click).
    pub fn msal_sign_in(self) {
        let Some(msal) = self.msal.get_value() else {
            return;
        };
        if !msal.redirects() {
            return self.msal_popup();
        }
        spawn_local(async move {
            if let Err(p) = msal.redirect().await {
                self.phase
                    .set(Phase::SignIn(Some(strings().sign_in_problem(&p))));
            }
        });
    }

    /// The agent pressed "Sign in" in a frame or "Sign in again" (always a popup, so the hub
    /// connection and a call in progress survive): an MSAL popup, opened inside the click.
    pub fn msal_popup(self) {
        let Some(msal) = self.msal.get_value() else {
            return;
        };
        let popup = msal.popup();
        spawn_local(async move {
            match popup.await {
                Ok(token) if self.phase.get_untracked() == Phase::Running => {
                    diagnostics::record("sign-in: renewed interactively".into());
                    self.reauth.set(None);
                    if self.connection.get_untracked() == ConnectionState::Disconnected {
                        self.reconnect();
                    }
                    drop(token);
                }
                Ok(token) => self.msal_signed_in(token),
                Err(p) if self.phase.get_untracked() == Phase::Running => {
                    self.reauth.set(Some(strings().sign_in_problem(&p)))
                }
                Err(p) => self
                    .phase
                    .set(Phase::SignIn(Some(strings().sign_in_problem(&p)))),
            }
        });
    }

    fn msal_signed_in(self, token: crate::msal::Token) {
        let Some(msal) = self.msal.get_value() else {
            return;
        };
        note_token(&token.access_token, "acquired");
        let session = self.session.get_untracked() + 1;
        self.session.set(session);
        // Renew before expiry, so a negotiate or reconnect never waits on the IdP and an
        // expired session is noticed while the connection still runs.
        let renewing = msal.clone();
        spawn_local(async move {
            let mut exp = exp_of(&token.access_token);
            // Bounded: at most one renewal per 5 s, and it stops at sign-out.
            while self.session.get_untracked() == session {
                let wait = switchboard_core::signin::renew_in_secs(unix_now(), exp);
                gloo_timers::future::sleep(Duration::from_secs(wait)).await;
                if self.session.get_untracked() != session {
                    break;
                }
                match renewing.api_token().await {
                    Ok(t) => {
                        note_token(&t.access_token, "renewed");
                        exp = exp_of(&t.access_token);
                    }
                    Err(p) => {
                        if p.needs_interaction() {
                            self.reauth.set(Some(strings().session_expired.into()));
                        }
                        exp = unix_now() + 60;
                    }
                }
            }
        });
        let access_token: Rc<dyn Fn() -> TokenFuture> = Rc::new(move || {
            let msal = msal.clone();
            Box::pin(async move {
                match msal.api_token().await {
                    Ok(t) => {
                        note_token(&t.access_token, "for negotiate");
                        Ok(t.access_token)
                    }
                    Err(p) => {
                        if p.needs_interaction() {
                            self.reauth.set(Some(strings().session_expired.into()));
                        }
                        Err(p.message())
                    }
                }
            })
        });
        self.run(token.username, access_token);
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
        let AuthConfig::Dev { token_url } = &config.auth else {
            return;
        };
        let token_url = token_url.clone();
        let access_token: Rc<dyn Fn() -> TokenFuture> = {
            let user = user.clone();
            Rc::new(move || {
                let (url, user) = (token_url.clone(), user.clone());
                Box::pin(async move { crate::auth::dev_token(&url, &user).await })
            })
        };
        self.run(user, access_token);
    }

    /// Starts the hub connection for `user` with this token factory (called for every
    /// negotiate and reconnect, so each gets a fresh token).
    fn run(self, user: String, access_token: Rc<dyn Fn() -> TokenFuture>) {
        let Some(config) = self.config.get_untracked() else {
            return;
        };
        // SIP mode: the softphone registers with the hub's credentials (or the default build
        // hands over to the SIP build and stops here).
        if !crate::softphone::start(self, &config, &user, access_token.clone()) {
            return;
        }
        self.user.set(Some(user.clone()));
        self.load_history(&user);
        self.ringer
            .set_value(Some(crate::tabs::Ringer::claim(&user)));
        self.phase.set(Phase::Running);
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
                if state == ConnectionState::Connected
                    && !self.client.get_value().is_some_and(|c| c.resumed())
                {
                    // A new connection may have missed calls and has no presence
                    // subscriptions; a stateful resume keeps both (nothing was lost).
                    self.resync();
                    self.presence.connected();
                }
                if state == ConnectionState::Connected
                    && let Some(number) = self.host.take_pending_dial()
                {
                    self.dial(number);
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
            on_next_attempt: Rc::new(move |at| self.next_attempt.set(at)),
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
            retry: SlowRetryPolicy::new(
                DelayListPolicy::from_millis(&config.hub.reconnect_delays_ms),
                config.hub.slow_retry_seconds.0.into(),
                config.hub.slow_retry_seconds.1.into(),
            ),
        };
        let client = HubClient::new(options, handlers);
        self.client.set_value(Some(client.clone()));
        let graph_token: Option<Rc<dyn Fn() -> TokenFuture>> =
            match (&config.auth, self.msal.get_value()) {
                (AuthConfig::Dev { token_url }, _) => {
                    let (url, user) = (token_url.clone(), user.clone());
                    Some(Rc::new(move || {
                        let (url, user) = (url.clone(), user.clone());
                        Box::pin(async move { crate::auth::dev_token(&url, &user).await })
                    }))
                }
                (AuthConfig::Msal { .. }, Some(msal)) if msal.has_graph() => {
                    Some(Rc::new(move || {
                        let msal = msal.clone();
                        Box::pin(async move { msal.graph_token().await.map_err(|p| p.message()) })
                    }))
                }
                _ => None,
            };
        self.presence
            .start(&config, &user, client.clone(), graph_token);
        client.start();
    }

    /// Stops the connection and returns to the sign-in form.
    pub fn sign_out(self) {
        // Clears our session presence in Teams (Graph, not the hub).
        self.presence.sign_out();
        crate::softphone::stop();
        if let Some(client) = self.client.get_value() {
            client.stop();
        }
        self.client.set_value(None);
        // Another tab of this browser rings from now on.
        self.ringer.set_value(None);
        self.user.set(None);
        self.desk.set(Desk::new());
        self.history.set(History::default());
        self.notice.set(None);
        self.reauth.set(None);
        self.session.update(|s| *s += 1);
        if let Some(msal) = self.msal.get_value() {
            // MSAL: forget this app's tokens and account here, back to "Sign in".
            spawn_local(async move { msal.sign_out().await });
            diagnostics::record("sign-in: signed out".into());
            self.phase.set(Phase::SignIn(None));
            return;
        }
        if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("?"));
        }
        self.phase.set(Phase::ChooseUser);
    }

    /// Checks the hub connection now and cuts any reconnect wait short (`HubClient::wake`):
    /// the network came back, the tab became visible, a frozen page resumed, or the agent
    /// pressed **Try now**.
    pub fn reconnect(self) {
        crate::softphone::wake();
        if let Some(client) = self.client.get_value() {
            client.wake();
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
            "callupdated" => match arguments.first() {
                Some(call) if call.get("callId").and_then(Value::as_str).is_some() => {
                    self.with_desk(|d, now| d.call_updated(call, now))
                }
                _ => warn("CallUpdated ignored: it has no callId."),
            },
            "callended" => match (
                arguments.first().and_then(Value::as_str),
                arguments.get(1).and_then(Value::as_str),
            ) {
                (Some(id), reason) => {
                    self.with_desk(|d, now| d.call_ended(id, reason.unwrap_or("completed"), now))
                }
                _ => warn("CallEnded ignored: it has no callId."),
            },
            "presencechanged" => self.presence.pushed(&arguments),
            _ => warn(&format!("No client method with the name '{target}' found.")),
        }
    }

    pub(crate) fn offer(self, call: IncomingCall) {
        // Multi-tab: exactly one tab of this agent rings; the others stay quiet.
        if !self
            .ringer
            .with_value(|r| r.as_ref().is_none_or(|r| r.is_ringer()))
        {
            diagnostics::record("offer left to the tab that rings".into());
            return;
        }
        let ring_ms = self
            .config
            .with_untracked(|c| c.as_ref().map(|c| c.ring_timeout_seconds).unwrap_or(30))
            as f64
            * 1000.0;
        let action = self.with_desk(|d, now| d.offer(call, now, ring_ms));
        if action == Action::Ring {
            self.notice.set(None);
            self.now_ms.set(now_ms());
            // +50 ms so the deadline has passed when the timer fires.
            gloo_timers::callback::Timeout::new(ring_ms as u32 + 50, move || {
                let action = self.with_desk(|d, now| d.ring_timeout(now));
                self.perform(action);
            })
            .forget();
        } else {
            self.perform(action);
        }
    }

    /// The ring time ran out at `now` (or the host's notification timed out: `f64::MAX`).
    fn ring_timed_out(self, now: f64) {
        let action = self.with_desk(|d, _| d.ring_timeout(now));
        self.perform(action);
    }

    /// The agent pressed Accept.
    pub fn accept(self) {
        if crate::softphone::accept(self) {
            return;
        }
        let action = self.with_desk(|d, now| d.accept(now));
        self.perform(action);
    }

    /// The agent pressed Reject.
    pub fn reject(self) {
        let action = self.with_desk(|d, _| d.reject());
        self.perform(action);
    }

    /// The agent pressed Hang up.
    pub fn hang_up(self) {
        let action = self.with_desk(|d, now| d.hang_up(now));
        self.perform(action);
    }

    /// What the host may ask (issue 5).
    fn host_callbacks(self) -> crate::host::HostCallbacks {
        crate::host::HostCallbacks {
            dial: Callback::new(move |n| self.dial(n)),
            accept: Callback::new(move |_| self.accept()),
            reject: Callback::new(move |_| self.reject()),
            timeout: Callback::new(move |_| self.ring_timed_out(f64::MAX)),
            set_presence: Callback::new(move |c| self.presence.choose(c)),
            caller_found: Callback::new(move |(call_id, name): (String, String)| {
                let named = self
                    .desk
                    .try_update_untracked(|d| d.name_from_crm(&call_id, &name));
                if named == Some(true) {
                    self.desk.notify();
                }
            }),
        }
    }

    /// Carries out a desk action as hub invocations. Typed methods carry the call id; the
    /// seed's `sendMessage("Accepted"|"Rejected")` acknowledgement follows for compatibility.
    pub(crate) fn perform(self, action: Action) {
        if crate::softphone::perform(&action) {
            return;
        }
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
            Action::Control { call_id, command } => {
                vec![switchboard_core::call::wire::invocation(&call_id, &command)]
            }
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

fn unix_now() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

fn exp_of(token: &str) -> u64 {
    switchboard_core::jwt::read_claims(token)
        .and_then(|c| c.exp)
        .unwrap_or_else(|| unix_now() + 300)
}

/// Diagnostics for a token: what happened and how long it lives (never the token itself).
fn note_token(token: &str, what: &str) {
    let left = exp_of(token).saturating_sub(unix_now());
    let id = token.len() as u64 ^ exp_of(token);
    diagnostics::record(format!("token {what}: expires in {left} s (id {id:x})"));
}

/// A `WARN` line in the diagnostics log (and the console): input refused, a call failed.
pub(crate) fn warn(text: &str) {
    diagnostics::log(switchboard_core::diagnostics::Level::Warn, text);
}

/// Listens to a document event for the page's lifetime.
fn on_document(event: &str, handler: impl Fn() + 'static) {
    let closure = wasm_bindgen::closure::Closure::<dyn Fn()>::new(handler);
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        let _ = document.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    }
    closure.forget();
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
    let _ = window_event_listener(leptos::ev::pageshow, move |_| widget.reconnect());
    // A tab shown again, or a page frozen by the browser (a sleeping laptop, an intensively
    // throttled background tab) that runs again: Page Lifecycle's `resume` on the document.
    on_document("visibilitychange", move || {
        let visible = web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| !d.hidden());
        if visible {
            widget.reconnect();
        }
    });
    on_document("resume", move || widget.reconnect());
    let _ = window_event_listener(leptos::ev::keydown, move |ev| shortcut(&ev));
    // Light or dark: `?theme=`, else the host's, else the system's (no attribute).
    Effect::new(move |_| {
        let theme = switchboard_core::host::theme(query_param("theme").as_deref())
            .or(widget.host.theme.get());
        if let Some(root) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        {
            let _ = match theme {
                Some(theme) => root.set_attribute("data-theme", theme),
                None => root.remove_attribute("data-theme"),
            };
        }
    });
    Effect::new(move |_| {
        if let Some(tag) = widget.host.language.get()
            && !widget.language_fixed()
        {
            widget.use_language(crate::i18n::choose(&[tag]));
        }
    });
    Effect::new(move |_| {
        let own = widget.presence.own.get();
        let teams = own
            .teams
            .map(|p| (p.availability.as_str(), p.activity.as_str()));
        widget.host.presence_changed(&own.choice, teams);
    });

    let body = move || {
        let t = strings();
        match widget.phase.get() {
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
        Phase::SignIn(reason) => view! {
            <section class="panel sign-in" aria-labelledby="sign-in-title">
                <h2 id="sign-in-title" class="panel__title">{t.sign_in_title}</h2>
                <p class="muted">{t.msal_sign_in_hint}</p>
                {reason.map(|r| view! { <p role="alert">{r}</p> })}
                <button class="btn btn--primary" on:click=move |_| widget.msal_sign_in()>{t.sign_in}</button>
            </section>
        }
        .into_any(),
        Phase::Running if widget.popped_out.get() => view! {
            <section class="panel popped-out" aria-labelledby="popped-out-title">
                <h2 id="popped-out-title" class="panel__title">{t.popped_out}</h2>
                <button class="btn btn--primary" on:click=move |_| widget.bring_back()>{t.bring_back}</button>
            </section>
        }
        .into_any(),
        Phase::Running => view! { <DeskView widget=widget /> }.into_any(),
    }
    };

    // Every view reads its texts when built: a new language rebuilds them (state lives in
    // `widget`, so nothing is lost).
    let page = move || {
        widget.locale.track();
        view! {
            <header class="bar">
                <h1 class="bar__brand">
                    <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d=crate::ui::PHONE_PATH /></svg>
                    {strings().app_name}
                </h1>
                {move || (widget.can_pop_out() && widget.phase.get() == Phase::Running && !widget.popped_out.get()).then(|| view! {
                    <button
                        class="btn btn--subtle btn--icon"
                        title=strings().pop_out
                        aria-label=strings().pop_out
                        on:click=move |_| widget.pop_out()
                    >
                        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d=crate::ui::POP_OUT_PATH /></svg>
                    </button>
                })}
                <ConnectionStatus state=widget.connection />
            </header>
            {body}
            <crate::ui::diagnostics::DiagnosticsDrawer widget=widget />
        }
    };
    view! { <main class="widget">{page}</main> }
}

/// Which panel the call area shows; the panel is rebuilt only when this changes.
#[derive(Debug, Clone, PartialEq)]
enum Area {
    Ringing(String),
    Active(String),
    WrapUp(String),
    Idle,
}

/// Keyboard shortcuts (Alt+Shift+letter; `ui/call.rs` lists them). The control that offers a
/// shortcut says so in `aria-keyshortcuts`; the key presses it (a disabled button ignores the
/// click) or focuses it (a text box), so a shortcut does exactly what its button does.
fn shortcut(ev: &web_sys::KeyboardEvent) {
    if !(ev.alt_key() && ev.shift_key()) || ev.ctrl_key() || ev.meta_key() {
        return;
    }
    let code = ev.code();
    let Some(letter) = code.strip_prefix("Key").filter(|l| l.len() == 1) else {
        return;
    };
    let selector = format!("[aria-keyshortcuts=\"Alt+Shift+{letter}\"]");
    let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector(&selector).ok().flatten())
        .and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok())
    else {
        return;
    };
    ev.prevent_default();
    if el.tag_name() == "INPUT" {
        let _ = el.focus();
    } else {
        el.click();
    }
}

/// The signed-in view: who, the connection's trouble if any, and the call area.
#[component]
fn DeskView(widget: Widget) -> impl IntoView {
    let t = strings();
    let on_request = Callback::new(move |r: CallRequest| widget.request(r));
    let area = Memo::new(move |_| {
        widget.desk.with(|d| {
            if let Some(r) = d.ringing() {
                Area::Ringing(r.call_id.clone())
            } else if let Some(a) = d.active() {
                Area::Active(a.call_id().to_owned())
            } else if let Some(w) = d.wrap_up() {
                Area::WrapUp(w.call_id.clone())
            } else {
                Area::Idle
            }
        })
    });
    let active = Memo::new(move |_| widget.desk.with(|d| d.active().cloned()));
    let call_area = move || {
        match area.get() {
        Area::Ringing(_) => {
            let Some(r) = widget.desk.with_untracked(|d| d.ringing().cloned()) else {
                return ().into_any();
            };
            let left = Signal::derive(move || {
                let ms = widget
                    .desk
                    .with(|d| d.ringing().map(|r| r.deadline_ms))
                    .unwrap_or(0.0)
                    - widget.now_ms.get();
                (ms / 1000.0).ceil().max(0.0) as u32
            });
            let name = Signal::derive(move || {
                widget
                    .desk
                    .with(|d| d.ringing().and_then(|r| r.call.caller_name.clone()))
            });
            view! {
                <IncomingCallDialog
                    name=name
                    call=r.call
                    seconds_left=left
                    on_accept=Callback::new(move |_| widget.accept())
                    on_reject=Callback::new(move |_| widget.reject())
                />
            }
            .into_any()
        }
        Area::Active(_) => view! {
            <ActiveCallPanel
                call=active
                now_ms=widget.now_ms
                on_request=on_request
                colleagues=Signal::derive(move || widget.presence.transfer_targets())
            />
        }
        .into_any(),
        Area::WrapUp(_) => match widget.desk.with_untracked(|d| d.wrap_up().cloned()) {
            Some(record) => view! { <WrapUpPanel record=record on_request=on_request /> }.into_any(),
            None => ().into_any(),
        },
        Area::Idle => view! {
            <IdlePanel
                last=Signal::derive(move || widget.desk.with(|d| d.last_outcome().cloned()))
                connected=Signal::derive(move || widget.connection.get() == ConnectionState::Connected)
            />
            <DialPad
                text=widget.dial_text
                last_number=Signal::derive(move || widget.history.with(|h| h.last_number().map(str::to_owned)))
                on_request=on_request
            />
        }
        .into_any(),
    }
    };
    view! {
        <div class="identity">
            <span>{t.signed_in_as}" "<strong dir="auto">{move || widget.user.get().unwrap_or_default()}</strong></span>
            <button class="btn btn--subtle" on:click=move |_| widget.sign_out()>{t.sign_out}</button>
        </div>
        {move || {
            let state = widget.connection.get();
            widget.connection_detail.get().filter(|_| state != ConnectionState::Connected).map(|detail| {
                view! {
                    <div class="connection-detail">
                        <p>{detail}</p>
                        <p class="connection-detail__next">{move || match widget.next_attempt.get() {
                            Some(at) => t.next_attempt(((at - widget.now_ms.get()) / 1000.0).ceil().max(0.0) as u32),
                            None => t.attempting.to_owned(),
                        }}</p>
                        <button class="btn btn--secondary" on:click=move |_| widget.reconnect()>
                            {if state == ConnectionState::Disconnected { t.reconnect } else { t.try_now }}
                        </button>
                    </div>
                }
            })
        }}
        {move || widget.reauth.get().map(|text| view! {
            <div class="connection-detail">
                <p>{text}</p>
                <button class="btn btn--primary" on:click=move |_| widget.msal_popup()>{t.sign_in_again}</button>
            </div>
        })}
        <crate::softphone::LineStatus now_ms=widget.now_ms />
        <crate::presence::OwnPresence presence=widget.presence />
        {move || widget.host.hint.get().map(|hint| view! { <p class="host-hint" role="note">{hint}</p> })}
        {call_area}
        {move || widget.notice.get().map(|text| view! {
            <Notice text=text on_dismiss=Callback::new(move |_| widget.notice.set(None)) />
        })}
        <CallHistory history=widget.history on_request=on_request />
        <crate::presence::Team
            presence=widget.presence
            on_call=Callback::new(move |id: String| widget.dial(id))
        />
    }
}
