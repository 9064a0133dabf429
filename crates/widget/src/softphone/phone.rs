//! The signalling half of the softphone: one SIP WebSocket (RFC 7118, subprotocol `sip`) driving
//! the sans-IO [`UserAgent`] — frames and time in, frames, events and the next deadline out —
//! plus the hub's ephemeral credentials, registration with backoff, and the mapping between the
//! UA's calls and the agent's [`Desk`](switchboard_core::Desk).
//!
//! The desk does not know it is on SIP: an INVITE becomes an [`IncomingCall`] offer (same
//! dialog, same ring timer, same host notifications), and what the desk decides comes back as
//! [`Action`]s, which [`perform`] carries out on the UA instead of as hub invocations. What
//! the UA reports is fed to the desk in the hub's own words (`CallUpdated` call objects and
//! `CallEnded` reasons, docs/hub-contract.md), so the call machine, wrap-up and history are
//! the hub mode's.
//!
//! Secrets: the SIP password lives in this module's memory and in the UA only; nothing here
//! logs a token, a password or a SIP message (the diagnostics get call handles and codes).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};
use switchboard_core::call::machine::Command;
use switchboard_core::{Action, DtmfMode, IncomingCall, RejectReason, SipConfig};
use switchboard_sip::auth::Credentials;
use switchboard_sip::ice::{IceState, IceWatch};
use switchboard_sip::quality::{MicWatch, QualityWatch};
use switchboard_sip::ua::{CallHandle, DtmfInfoFormat, EndReason, Event, UaConfig, UserAgent};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, WebSocket};

use super::devices::{self, Role};
use super::line_lock::LineLock;
use super::media::{self, CallMedia, MicError};
use super::{DeskPort, LineState};
use crate::diagnostics;
use crate::i18n::strings;
use crate::signalr::TokenFuture;

/// Renew the credentials this long before they expire.
const RENEW_BEFORE_S: f64 = 120.0;
/// Backoff after a failed registration or a lost WebSocket: 1, 2, 4 … up to 60 s, ±20 %.
const MAX_BACKOFF_S: f64 = 60.0;

struct Creds {
    username: String,
    password: String,
    expires_on: f64,
    ice_servers: Value,
}

#[derive(Clone, Copy, PartialEq)]
enum Pending {
    None,
    Hold,
    Resume,
    Restart,
}

struct Call {
    handle: CallHandle,
    id: String,
    offer: Option<String>,
    media: Option<Rc<CallMedia>>,
    pending: Pending,
    held: bool,
    muted: bool,
    established: bool,
    /// When this call's media needs an ICE restart.
    ice: IceWatch,
    /// This call is the agent's consultation with a transfer target, for that customer call
    /// (attended transfer, RFC 5589 §7): not on the desk, which shows the customer's call.
    consult_for: Option<CallHandle>,
    /// Our REFER for this call is out (blind or attended transfer under way).
    referred: bool,
    /// This call was placed because the far end of that call transferred the agent (its
    /// REFER, RFC 3515): the handle, the desk call's id and the target as shown. Not on the
    /// desk until it is answered; then it takes that call's place ([`Event::Transferred`]).
    transfer_of: Option<(CallHandle, String, String)>,
}

impl Call {
    fn new(
        handle: CallHandle,
        id: String,
        offer: Option<String>,
        media: Option<Rc<CallMedia>>,
    ) -> Call {
        Call {
            handle,
            id,
            offer,
            media,
            pending: Pending::None,
            held: false,
            muted: false,
            established: false,
            ice: IceWatch::default(),
            consult_for: None,
            referred: false,
            transfer_of: None,
        }
    }
}

struct State {
    port: DeskPort,
    config: SipConfig,
    user: String,
    token: Rc<dyn Fn() -> TokenFuture>,
    creds: Option<Creds>,
    ws: Option<WebSocket>,
    ws_closures: Vec<Box<dyn std::any::Any>>,
    ua: Option<UserAgent>,
    timer: Option<gloo_timers::callback::Timeout>,
    /// Wakes the calls' [`IceWatch`]es at their next deadline.
    ice_timer: Option<gloo_timers::callback::Timeout>,
    retry: Option<gloo_timers::callback::Timeout>,
    renew: Option<gloo_timers::callback::Timeout>,
    stats: Option<gloo_timers::callback::Interval>,
    level: Option<gloo_timers::callback::Interval>,
    quality: QualityWatch,
    mic_watch: MicWatch,
    calls: Vec<Call>,
    mic: Option<web_sys::MediaStream>,
    attempt: u32,
    session: u32,
    stopped: bool,
    on_online: Option<Closure<dyn FnMut()>>,
    /// This tab's claim on the agent's one SIP line (multi-tab); `holds_line` once granted.
    line: Option<LineLock>,
    holds_line: bool,
}

/// What [`start`] was given, kept so the line can come back after a pop-out ([`resume`]).
type StartArgs = (DeskPort, SipConfig, String, Rc<dyn Fn() -> TokenFuture>);

/// The running softphone (cheap to clone).
#[derive(Clone)]
pub struct Phone(Rc<RefCell<State>>);

thread_local! {
    static PHONE: RefCell<Option<Phone>> = const { RefCell::new(None) };
    static SESSION: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    static LAST: RefCell<Option<StartArgs>> = const { RefCell::new(None) };
    /// The last `getStats` line of the call in progress (Diagnostics).
    pub(super) static STATS: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The call's quality over the last interval, both ways, with its MOS (Diagnostics).
    pub(super) static QUALITY: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The softphone, when one runs.
pub fn phone() -> Option<Phone> {
    PHONE.with(|p| p.borrow().clone())
}

fn now() -> Duration {
    let ms = web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now);
    Duration::from_micros((ms * 1000.0) as u64)
}

fn unix_s() -> f64 {
    js_sys::Date::now() / 1000.0
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if let Some(crypto) = web_sys::window().and_then(|w| w.crypto().ok()) {
        let _ = crypto.get_random_values_with_u8_array(&mut bytes);
    }
    u64::from_le_bytes(bytes) ^ (js_sys::Date::now() as u64)
}

fn set_line(state: LineState) {
    super::line().set(state);
}

/// Starts the softphone for `user`: credentials from the hub, the WebSocket, REGISTER.
pub fn start(port: DeskPort, config: SipConfig, user: String, token: Rc<dyn Fn() -> TokenFuture>) {
    stop();
    LAST.with(|l| {
        *l.borrow_mut() = Some((port.clone(), config.clone(), user.clone(), token.clone()))
    });
    let session = SESSION.with(|s| {
        s.set(s.get() + 1);
        s.get()
    });
    let phone = Phone(Rc::new(RefCell::new(State {
        port,
        config,
        user,
        token,
        creds: None,
        ws: None,
        ws_closures: Vec::new(),
        ua: None,
        timer: None,
        ice_timer: None,
        retry: None,
        renew: None,
        stats: None,
        level: None,
        quality: QualityWatch::new(),
        mic_watch: MicWatch::new(),
        calls: Vec::new(),
        mic: None,
        attempt: 0,
        session,
        stopped: false,
        on_online: None,
        line: None,
        holds_line: false,
    })));
    PHONE.with(|p| *p.borrow_mut() = Some(phone.clone()));
    diagnostics::record("softphone: starting".into());
    devices::watch(|role| match role {
        Role::Microphone => microphone_changed(),
        _ => speaker_changed(),
    });
    let online = phone.clone();
    let on_online = Closure::<dyn FnMut()>::new(move || {
        if online.alive(session) {
            online.network_changed();
        }
    });
    if let Some(window) = web_sys::window() {
        let _ =
            window.add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
    }
    phone.0.borrow_mut().on_online = Some(on_online);
    // Only the tab that holds the agent's line registers (and so rings); the others wait.
    set_line(LineState::Elsewhere);
    let holder = phone.clone();
    let user = phone.0.borrow().user.clone();
    let lock = LineLock::claim(&user, move || {
        if holder.alive(session) {
            holder.0.borrow_mut().holds_line = true;
            holder.connect();
        }
    });
    phone.0.borrow_mut().line = Some(lock);
}

/// The widget moved to its own window (pop-out): un-REGISTER and let the line go, so the new
/// window takes it; [`resume`] brings it back.
pub fn suspend() {
    let last = LAST.with(|l| l.borrow_mut().take());
    stop();
    LAST.with(|l| *l.borrow_mut() = last);
}

/// Back from the pop-out: ask for the line again with what [`start`] was given.
pub fn resume() {
    if phone().is_some() {
        return;
    }
    if let Some((port, config, user, token)) = LAST.with(|l| l.borrow().clone()) {
        start(port, config, user, token);
    }
}

/// Un-REGISTERs, hangs up, closes the WebSocket (sign-out).
pub fn stop() {
    let Some(phone) = PHONE.with(|p| p.borrow_mut().take()) else {
        return;
    };
    {
        let mut s = phone.0.borrow_mut();
        s.stopped = true;
        let t = now();
        let handles: Vec<CallHandle> = s.calls.iter().map(|c| c.handle).collect();
        if let Some(ua) = s.ua.as_mut() {
            for h in handles {
                let _ = ua.hangup(t, h);
            }
            ua.unregister(t);
        }
        for c in s.calls.drain(..) {
            if let Some(m) = c.media {
                m.close();
            }
        }
    }
    phone.flush();
    let mut s = phone.0.borrow_mut();
    if let Some(ws) = s.ws.take() {
        // Let the un-REGISTER leave first.
        gloo_timers::callback::Timeout::new(300, move || {
            let _ = ws.close();
        })
        .forget();
    }
    s.timer = None;
    s.ice_timer = None;
    s.retry = None;
    s.renew = None;
    s.stats = None;
    s.level = None;
    s.line = None;
    devices::stop_ringing();
    super::clear_call_audio();
    if let (Some(window), Some(f)) = (web_sys::window(), s.on_online.take()) {
        let _ = window.remove_event_listener_with_callback("online", f.as_ref().unchecked_ref());
    }
    set_line(LineState::Stopped);
}

impl Phone {
    fn alive(&self, session: u32) -> bool {
        let s = self.0.borrow();
        !s.stopped && s.session == session
    }

    fn port(&self) -> DeskPort {
        self.0.borrow().port.clone()
    }

    /// Fetches credentials when needed, then opens the WebSocket.
    fn connect(&self) {
        let phone = self.clone();
        let session = self.0.borrow().session;
        spawn_local(async move {
            set_line(LineState::Registering);
            let fresh = phone
                .0
                .borrow()
                .creds
                .as_ref()
                .is_some_and(|c| c.expires_on - unix_s() > RENEW_BEFORE_S);
            if !fresh && let Err(why) = phone.fetch_credentials().await {
                if phone.alive(session) {
                    phone.retry_later(why);
                }
                return;
            }
            if phone.alive(session) {
                phone.open_socket();
            }
        });
    }

    /// `POST credentialsUrl` with the user's Bearer token (as negotiate).
    async fn fetch_credentials(&self) -> Result<(), String> {
        let t = strings();
        let (token, url) = {
            let s = self.0.borrow();
            ((s.token)(), s.config.credentials_url.clone())
        };
        let token = token.await?;
        let response = gloo_net::http::Request::post(&url)
            .header("Authorization", &["Bearer ", &token].concat())
            .send()
            .await
            .map_err(|_| t.get("sip_reason_no_credentials").to_owned())?;
        if !response.ok() {
            diagnostics::record(format!(
                "softphone: credentials refused (HTTP {})",
                response.status()
            ));
            return Err(t.get("sip_reason_no_credentials").to_owned());
        }
        let body: Value = serde_json::from_str(&response.text().await.unwrap_or_default())
            .map_err(|_| t.get("sip_reason_no_credentials").to_owned())?;
        let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            return Err(t.get("sip_reason_no_credentials").to_owned());
        };
        let expires_on = body
            .get("expiresOn")
            .and_then(Value::as_f64)
            .unwrap_or(unix_s() + 600.0);
        let ice_servers = body.get("iceServers").cloned().unwrap_or(json!([]));
        diagnostics::record(format!(
            "softphone: credentials for {} s",
            (expires_on - unix_s()).max(0.0) as u64
        ));
        let creds = Credentials::new(username.clone(), password.clone());
        let mut s = self.0.borrow_mut();
        if let Some(ua) = s.ua.as_mut() {
            ua.set_credentials(Some(creds));
        }
        s.creds = Some(Creds {
            username,
            password,
            expires_on,
            ice_servers,
        });
        // Renewed before they expire, so a re-REGISTER never answers a challenge with stale ones.
        let wait = ((expires_on - unix_s() - RENEW_BEFORE_S).max(30.0) * 1000.0) as u32;
        let phone = self.clone();
        let session = s.session;
        s.renew = Some(gloo_timers::callback::Timeout::new(wait, move || {
            spawn_local(async move {
                if phone.alive(session) && phone.fetch_credentials().await.is_err() {
                    diagnostics::record("softphone: credential renewal failed".into());
                }
            });
        }));
        Ok(())
    }

    fn open_socket(&self) {
        let uri = self.0.borrow().config.ws_uri.clone();
        let ws = match WebSocket::new_with_str(&uri, "sip") {
            Ok(ws) => ws,
            Err(_) => return self.retry_later(strings().get("sip_reason_unreachable").into()),
        };
        let session = self.0.borrow().session;
        let phone = self.clone();
        let onopen = Closure::<dyn FnMut()>::new(move || {
            if phone.alive(session) {
                phone.opened();
            }
        });
        let phone = self.clone();
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if !phone.alive(session) {
                return;
            }
            if let Some(text) = e.data().as_string() {
                let t = now();
                if let Some(ua) = phone.0.borrow_mut().ua.as_mut() {
                    ua.handle_text(t, &text);
                    // Throttled background timers: what is due runs on every frame too.
                    ua.handle_timeout(t);
                }
                phone.pump();
            }
        });
        let phone = self.clone();
        let target = ws.clone();
        let onclose = Closure::<dyn FnMut()>::new(move || {
            if !phone.alive(session) {
                return;
            }
            let mine = phone.0.borrow().ws.as_ref().is_some_and(|w| *w == target);
            if !mine {
                return;
            }
            diagnostics::record("softphone: WebSocket closed".into());
            phone.0.borrow_mut().ws = None;
            if let Some(ua) = phone.0.borrow_mut().ua.as_mut() {
                ua.transport_lost(now());
            }
            phone.pump();
            phone.retry_later(strings().get("sip_reason_unreachable").into());
        });
        ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        let mut s = self.0.borrow_mut();
        s.ws = Some(ws);
        s.ws_closures = vec![Box::new(onopen), Box::new(onmessage), Box::new(onclose)];
    }

    fn opened(&self) {
        diagnostics::record("softphone: WebSocket open".into());
        let t = now();
        {
            let mut s = self.0.borrow_mut();
            let creds = s
                .creds
                .as_ref()
                .map(|c| Credentials::new(c.username.clone(), c.password.clone()));
            if s.ua.is_some() && !s.calls.is_empty() {
                // Calls survive a new flow (RFC 5626): same instance, REGISTER again.
                let ua = s.ua.as_mut().expect("checked");
                ua.set_credentials(creds);
                ua.transport_connected(t);
            } else {
                let aor = format!("sip:{}@{}", s.user, s.config.domain);
                let mut config = UaConfig::new(&aor, creds, seed());
                config.secure = s.config.ws_uri.starts_with("wss:");
                config.dtmf_info = DtmfInfoFormat::DtmfRelay;
                config.user_agent = ["Switchboard/", env!("CARGO_PKG_VERSION")].concat();
                let mut ua = UserAgent::new(config, t);
                ua.register(t);
                s.ua = Some(ua);
            }
        }
        self.pump();
    }

    /// Closes the socket and tries again after the backoff; the reason is shown.
    fn retry_later(&self, why: String) {
        let (attempt, session) = {
            let mut s = self.0.borrow_mut();
            if s.stopped {
                return;
            }
            s.attempt += 1;
            if let Some(ws) = s.ws.take() {
                let _ = ws.close();
            }
            (s.attempt, s.session)
        };
        let base = 2f64
            .powi(attempt.saturating_sub(1).min(6) as i32)
            .min(MAX_BACKOFF_S);
        let jitter = 0.8 + 0.4 * js_sys::Math::random();
        let ms = (base * jitter * 1000.0) as u32;
        diagnostics::record(format!(
            "softphone: next attempt in {} ms (attempt {attempt})",
            ms
        ));
        set_line(LineState::Retrying {
            at_ms: js_sys::Date::now() + ms as f64,
            why,
        });
        let phone = self.clone();
        self.0.borrow_mut().retry = Some(gloo_timers::callback::Timeout::new(ms, move || {
            if phone.alive(session) {
                phone.connect();
            }
        }));
    }

    /// Tries at once (the network came back, the tab is visible again, the agent pressed Try
    /// now): a lost socket reconnects without waiting for the backoff.
    pub fn wake(&self) {
        let closed = {
            let s = self.0.borrow();
            s.ws.is_none() && !s.stopped && s.holds_line
        };
        if closed {
            self.0.borrow_mut().retry = None;
            self.connect();
        }
    }

    /// The network changed (`online`): calls in progress restart ICE by re-INVITE
    /// (RFC 8445 §9), so the audio finds the new path.
    fn network_changed(&self) {
        let t = now();
        for c in self.0.borrow_mut().calls.iter_mut() {
            c.ice.on_network_change(t);
        }
        self.check_ice();
    }

    /// Feeds the call's `iceConnectionState` to its [`IceWatch`].
    fn watch_ice(&self, handle: CallHandle, media: &CallMedia) {
        let phone = self.clone();
        let session = self.0.borrow().session;
        media.on_ice_state(move |state| {
            let Some(state) = IceState::parse(&state).filter(|_| phone.alive(session)) else {
                return;
            };
            if matches!(state, IceState::Disconnected | IceState::Failed) {
                diagnostics::record(format!("softphone: ICE {state:?}, call {}", handle.0));
            }
            phone.with_call(handle, |c| c.ice.on_state(now(), state));
            phone.check_ice();
        });
    }

    /// Starts the ICE restarts that are due (a re-INVITE with new ICE credentials, RFC 8445
    /// §2.4) and re-arms the ICE timer for the next deadline.
    fn check_ice(&self) {
        let t = now();
        let due: Vec<_> = self
            .0
            .borrow_mut()
            .calls
            .iter_mut()
            .filter_map(|c| c.ice.poll_restart(t).map(|why| (c.handle, why)))
            .collect();
        for (handle, why) in due {
            diagnostics::record(format!(
                "softphone: ICE restart ({why:?}), call {}",
                handle.0
            ));
            self.renegotiate(handle, Pending::Restart);
        }
        let next = self
            .0
            .borrow()
            .calls
            .iter()
            .filter_map(|c| c.ice.poll_timeout())
            .min();
        let session = self.0.borrow().session;
        let timer = next.map(|at| {
            let ms = at.saturating_sub(now()).as_millis().min(600_000) as u32 + 1;
            let phone = self.clone();
            gloo_timers::callback::Timeout::new(ms, move || {
                if phone.alive(session) {
                    phone.check_ice();
                }
            })
        });
        self.0.borrow_mut().ice_timer = timer;
    }

    /// The consultation call of customer call `handle`, if one is up or ringing.
    fn consult_of(&self, handle: CallHandle) -> Option<(CallHandle, String, bool)> {
        self.0
            .borrow()
            .calls
            .iter()
            .find(|c| c.consult_for == Some(handle))
            .map(|c| (c.handle, c.id.clone(), c.established))
    }

    /// Sends what the UA queued and acts on its events until it is quiet; re-arms the timer.
    fn pump(&self) {
        loop {
            let events = self.flush();
            if events.is_empty() {
                break;
            }
            for event in events {
                self.on_event(event);
            }
        }
        let deadline = self
            .0
            .borrow()
            .ua
            .as_ref()
            .and_then(UserAgent::poll_timeout);
        let timer = deadline.map(|at| {
            let ms = at.saturating_sub(now()).as_millis().min(600_000) as u32;
            let phone = self.clone();
            gloo_timers::callback::Timeout::new(ms, move || {
                if let Some(ua) = phone.0.borrow_mut().ua.as_mut() {
                    ua.handle_timeout(now());
                }
                phone.pump();
            })
        });
        self.0.borrow_mut().timer = timer;
    }

    /// Sends the queued frames; returns the queued events.
    fn flush(&self) -> Vec<Event> {
        let mut s = self.0.borrow_mut();
        let State { ua, ws, .. } = &mut *s;
        let Some(ua) = ua.as_mut() else {
            return Vec::new();
        };
        while let Some(frame) = ua.poll_transmit() {
            if let Some(ws) = ws.as_ref() {
                let _ = ws.send_with_str(&frame);
            }
        }
        std::iter::from_fn(|| ua.poll_event()).collect()
    }

    fn call_id(&self, handle: CallHandle) -> Option<String> {
        self.0
            .borrow()
            .calls
            .iter()
            .find(|c| c.handle == handle)
            .map(|c| c.id.clone())
    }

    fn with_call<R>(&self, handle: CallHandle, f: impl FnOnce(&mut Call) -> R) -> Option<R> {
        self.0
            .borrow_mut()
            .calls
            .iter_mut()
            .find(|c| c.handle == handle)
            .map(f)
    }

    fn by_id(&self, id: &str) -> Option<(CallHandle, Option<Rc<CallMedia>>)> {
        self.0
            .borrow()
            .calls
            .iter()
            .find(|c| c.id == id)
            .map(|c| (c.handle, c.media.clone()))
    }

    fn update_desk(&self, id: &str, update: Value) {
        let mut update = update;
        update["callId"] = json!(id);
        self.port().with_desk(|d, now| d.call_updated(&update, now));
    }

    fn on_event(&self, event: Event) {
        match event {
            Event::Registered { expires } => {
                diagnostics::record(format!("softphone: registered for {expires} s"));
                self.0.borrow_mut().attempt = 0;
                set_line(LineState::Registered);
            }
            Event::RegistrationFailed { code, .. } => {
                diagnostics::record(format!("softphone: REGISTER failed ({code})"));
                if matches!(code, 401 | 403 | 407) {
                    // Fetch new credentials before the next attempt.
                    self.0.borrow_mut().creds = None;
                }
                let why = strings()
                    .get("sip_reason_refused")
                    .replace("{code}", &code.to_string());
                self.retry_later(why);
            }
            Event::Unregistered => diagnostics::record("softphone: unregistered".into()),
            Event::IncomingCall {
                call,
                from,
                display,
                sdp,
                replaces,
            } => match replaces.filter(|old| self.takes_over(*old)) {
                Some(old) => self.take_over(call, old, sdp),
                None => self.incoming(call, &from, display, sdp),
            },
            Event::Ringing { call, .. } => {
                if let Some(id) = self.call_id(call).filter(|_| !self.off_desk(call)) {
                    self.update_desk(&id, json!({"state": "alerting"}));
                }
            }
            Event::Answered { call, sdp } => {
                let Some((id, media, consult)) = self
                    .with_call(call, |c| {
                        c.established = true;
                        let off_desk = c.consult_for.is_some() || c.transfer_of.is_some();
                        (c.id.clone(), c.media.clone(), off_desk)
                    })
                    .and_then(|(id, m, consult)| m.map(|m| (id, m, consult)))
                else {
                    return;
                };
                let phone = self.clone();
                spawn_local(async move {
                    if let Some(sdp) = sdp
                        && let Err(e) = media.accept_answer(&sdp).await
                    {
                        diagnostics::warn(&format!("softphone: the answer was refused: {e}"));
                    }
                    if !consult {
                        phone.update_desk(&id, json!({"state": "connected"}));
                    }
                    phone.watch_stats();
                });
            }
            Event::Ended { call, reason } => self.ended(call, reason),
            Event::Renegotiate { call, sdp } => {
                let media = self.with_call(call, |c| c.media.clone()).flatten();
                let phone = self.clone();
                spawn_local(async move {
                    let answer = match (media, sdp) {
                        (Some(m), Some(sdp)) => m.answer(&sdp).await.ok(),
                        _ => None,
                    };
                    if let Some(answer) = &answer {
                        phone.with_call(call, |c| c.ice.local_description(answer));
                    }
                    if let Some(ua) = phone.0.borrow_mut().ua.as_mut() {
                        let _ = match answer {
                            Some(answer) => ua.answer(now(), call, &answer),
                            None => ua.reject(now(), call, 488),
                        };
                    }
                    phone.pump();
                });
            }
            Event::RenegotiationAnswered { call, sdp } => {
                let Some((id, media, pending, held, consult)) = self.with_call(call, |c| {
                    let p = c.pending;
                    c.pending = Pending::None;
                    match p {
                        Pending::Hold => c.held = true,
                        Pending::Resume => c.held = false,
                        _ => {}
                    }
                    (
                        c.id.clone(),
                        c.media.clone(),
                        p,
                        c.held,
                        c.consult_for.is_some(),
                    )
                }) else {
                    return;
                };
                let phone = self.clone();
                spawn_local(async move {
                    if let (Some(m), Some(sdp)) = (media, sdp) {
                        let _ = m.accept_answer(&sdp).await;
                    }
                    // While a consultation runs the desk shows `transferring`, not `held`.
                    let consulting = phone.consult_of(call).is_some();
                    if pending != Pending::Restart && !consult && !consulting {
                        let state = if held { "held" } else { "connected" };
                        phone.update_desk(&id, json!({ "state": state }));
                    }
                });
            }
            Event::RenegotiationFailed { call, code } => {
                diagnostics::record(format!("softphone: re-INVITE failed ({code})"));
                let restart = self
                    .with_call(call, |c| c.pending == Pending::Restart)
                    .unwrap_or(false);
                if restart {
                    // Tried again after the IceWatch's backoff; the call goes on meanwhile.
                    self.with_call(call, |c| {
                        c.pending = Pending::None;
                        c.ice.restart_failed(now());
                    });
                    return self.check_ice();
                }
                let restore = self.with_call(call, |c| {
                    c.pending = Pending::None;
                    (c.media.clone(), c.held, c.muted)
                });
                if let Some((Some(m), held, muted)) = restore {
                    m.set_held(held, muted);
                }
                self.port().notice.set(Some(
                    strings()
                        .get("sip_control_failed")
                        .replace("{code}", &code.to_string()),
                ));
            }
            Event::Dtmf { call, digit, .. } => {
                diagnostics::record(format!("softphone: DTMF {digit} in call {}", call.0));
            }
            Event::TransferRequested { call, target } => self.being_transferred(call, &target),
            Event::Transferred { from, to } => self.transfer_answered(from, to),
            Event::TransferProgress { call, code, done } => {
                diagnostics::record(format!("softphone: transfer progress {code}"));
                if !done {
                    return;
                }
                let Some(id) = self.call_id(call) else {
                    return;
                };
                if (200..300).contains(&code) {
                    // RFC 5589: the transferor ends its call itself (and its consultation,
                    // which the target has usually ended already by taking the Replaces).
                    let consult = self.consult_of(call);
                    if let Some(ua) = self.0.borrow_mut().ua.as_mut() {
                        let _ = ua.hangup(now(), call);
                        if let Some((consult, ..)) = consult {
                            let _ = ua.hangup(now(), consult);
                        }
                    }
                    if let Some((_, consult_id, _)) = consult {
                        self.drop_call(&consult_id);
                    }
                    self.port()
                        .with_desk(|d, now| d.call_ended(&id, "transferred", now));
                } else {
                    self.with_call(call, |c| c.referred = false);
                    self.port().notice.set(Some(
                        strings()
                            .get("sip_control_failed")
                            .replace("{code}", &code.to_string()),
                    ));
                }
            }
            Event::FlowFailed => {
                diagnostics::record("softphone: keep-alive failed, reconnecting".into());
                let ws = self.0.borrow_mut().ws.clone();
                if let Some(ws) = ws {
                    let _ = ws.close();
                }
            }
            Event::Malformed { .. } => diagnostics::record("softphone: a malformed frame".into()),
        }
    }

    fn incoming(
        &self,
        handle: CallHandle,
        from: &str,
        display: Option<String>,
        sdp: Option<String>,
    ) {
        let id = format!("sip-{}-{}", self.0.borrow().session, handle.0);
        let number = from
            .trim_start_matches('<')
            .split_once(':')
            .map(|(_, rest)| rest)
            .unwrap_or(from)
            .split(['@', ';', '>'])
            .next()
            .unwrap_or_default()
            .to_owned();
        diagnostics::record(format!("softphone: INVITE, call {id}"));
        self.0
            .borrow_mut()
            .calls
            .push(Call::new(handle, id.clone(), sdp, None));
        let call = IncomingCall {
            call_id: Some(id.clone()),
            phone_number: if number.is_empty() {
                from.to_owned()
            } else {
                number
            },
            caller_name: display.filter(|d| !d.trim().is_empty()),
            queue: None,
            comments: None,
        };
        let port = self.port();
        port.offer(call);
        // It rings in this tab (not left to another one, not refused as busy): the ringtone
        // plays on the ringer device.
        if port.with_desk(|d, _| d.ringing().is_some_and(|r| r.call_id == id)) {
            let ringtone = self.0.borrow().config.ringtone.clone();
            devices::start_ringing(ringtone.and_then(|r| super::config_relative(&r)));
        }
    }

    fn ended(&self, handle: CallHandle, reason: EndReason) {
        let call = {
            let mut s = self.0.borrow_mut();
            let i = s.calls.iter().position(|c| c.handle == handle);
            i.map(|i| s.calls.remove(i))
        };
        let Some(call) = call else {
            return;
        };
        if let Some(m) = &call.media {
            m.close();
        }
        if let Some(customer) = call.consult_for {
            return self.consult_ended(customer, reason);
        }
        let mut call = call;
        if let Some((old, desk_id, shown)) = call.transfer_of.take() {
            // The call a REFER asked for did not go through (the UA sent the final NOTIFY).
            diagnostics::record(format!("softphone: transfer not completed ({reason:?})"));
            let why = match &reason {
                EndReason::Rejected { code, .. } => code.to_string(),
                other => format!("{other:?}"),
            };
            super::set_transfer_note(Some(
                strings()
                    .get("sip_transfer_failed")
                    .replace("{target}", &shown)
                    .replace("{reason}", &why),
            ));
            if self.with_call(old, |_| ()).is_some() {
                // The call with the transferor goes on.
                return self.idle_if_no_call();
            }
            // The transferor hung up meanwhile: the desk call ends now.
            call.id = desk_id;
            let wire = "completed";
            diagnostics::record(format!("softphone: call {} ended ({wire})", call.id));
            self.idle_if_no_call();
            return self
                .port()
                .with_desk(|d, now| d.call_ended(&call.id, wire, now));
        }
        // The transferor hung up while the call it asked for is under way: the desk call waits
        // for that one (it takes its place, or ends it when it fails).
        if reason == EndReason::RemoteHangup
            && self
                .0
                .borrow()
                .calls
                .iter()
                .any(|c| c.transfer_of.as_ref().is_some_and(|t| t.0 == handle))
        {
            return;
        }
        // Ended otherwise while a transfer from it is under way (the agent hung up): that call
        // goes too, quietly.
        let pending: Vec<CallHandle> = self
            .0
            .borrow_mut()
            .calls
            .iter_mut()
            .filter(|c| c.transfer_of.as_ref().is_some_and(|t| t.0 == handle))
            .map(|c| {
                c.transfer_of = None;
                c.handle
            })
            .collect();
        for p in pending {
            if let Some(ua) = self.0.borrow_mut().ua.as_mut() {
                let _ = ua.hangup(now(), p);
            }
        }
        // A consultation left behind by its customer call goes too.
        if let Some((consult, consult_id, _)) = self.consult_of(handle) {
            if let Some(ua) = self.0.borrow_mut().ua.as_mut() {
                let _ = ua.hangup(now(), consult);
            }
            self.drop_call(&consult_id);
        }
        devices::stop_ringing();
        self.idle_if_no_call();
        let wire = match &reason {
            EndReason::RemoteCancel => "abandoned",
            EndReason::RemoteHangup => "completed",
            // Its desk call went on as the call that replaced it (take_over), or as the
            // call the far end transferred us to (transfer_answered).
            EndReason::Replaced | EndReason::Transferred => return,
            EndReason::Rejected {
                code: 486 | 600, ..
            } => "busy",
            EndReason::Rejected {
                code: 408 | 480 | 487,
                ..
            } => "no-answer",
            EndReason::Rejected { .. } | EndReason::Timeout | EndReason::TransportLost => "failed",
            EndReason::AckTimeout => "failed",
            // Ended here first: the desk already knows.
            EndReason::LocalHangup | EndReason::LocalCancel | EndReason::LocalReject(_) => {
                return;
            }
        };
        diagnostics::record(format!("softphone: call {} ended ({wire})", call.id));
        self.port()
            .with_desk(|d, now| d.call_ended(&call.id, wire, now));
    }

    /// The consultation with the transfer target ended before the transfer (the target
    /// refused, did not answer or hung up; the agent's own hang-up is [`cancel_consult`]):
    /// the customer stays on hold and the desk goes back from transferring (as the hub's
    /// `cancelConsult` reports `held`).
    ///
    /// [`cancel_consult`]: Self::cancel_consult
    fn consult_ended(&self, customer: CallHandle, reason: EndReason) {
        diagnostics::record(format!("softphone: consultation ended ({reason:?})"));
        self.idle_if_no_call();
        if matches!(
            reason,
            EndReason::LocalHangup | EndReason::LocalCancel | EndReason::Replaced
        ) {
            return;
        }
        // Completing: the target ends the consultation as it takes the Replaces INVITE.
        let Some(id) = self
            .with_call(customer, |c| (!c.referred).then(|| c.id.clone()))
            .flatten()
        else {
            return;
        };
        self.update_desk(&id, json!({"state": "held"}));
        if let EndReason::Rejected { code, .. } = reason {
            self.port().notice.set(Some(
                strings()
                    .get("sip_control_failed")
                    .replace("{code}", &code.to_string()),
            ));
        }
    }

    /// Being transferred (the far end's REFER in `old`, RFC 3515; 202 and NOTIFY 100 went
    /// out): a fresh microphone stream and peer connection, and the call to `target` placed by
    /// [`UserAgent::accept_transfer`] (with the Refer-To's Replaces, RFC 3891). The agent sees
    /// "Transferred to …"; the desk keeps `old`'s call until the new one is answered. Refused
    /// (NOTIFY 603) for a consultation or while another transfer is under way; 488 when no
    /// media could be set up.
    fn being_transferred(&self, old: CallHandle, target: &str) {
        let shown = shown_target(target);
        diagnostics::record(format!(
            "softphone: REFER in call {} (being transferred)",
            old.0
        ));
        let busy = self
            .0
            .borrow()
            .calls
            .iter()
            .any(|c| c.transfer_of.is_some());
        let desk_id = self.call_id(old).filter(|_| !self.off_desk(old) && !busy);
        let Some(desk_id) = desk_id else {
            if let Some(ua) = self.0.borrow_mut().ua.as_mut() {
                let _ = ua.decline_transfer(now(), old, 603);
            }
            return self.pump();
        };
        super::set_transfer_note(Some(
            strings()
                .get("sip_being_transferred")
                .replace("{target}", &shown),
        ));
        let (processing, ice) = {
            let s = self.0.borrow();
            (s.config.audio_processing, ice_servers(&s))
        };
        let phone = self.clone();
        spawn_local(async move {
            let media = match media::microphone(processing).await {
                Ok(mic) => match CallMedia::new(&ice, mic.clone()) {
                    Ok(m) => Ok(Rc::new(m)),
                    Err(e) => {
                        media::release(&mic);
                        Err(e)
                    }
                },
                Err(e) => Err(format!("{e:?}")),
            };
            let offer = match &media {
                Ok(m) => m.offer(false).await,
                Err(e) => Err(e.clone()),
            };
            let placed = match (&media, offer) {
                (Ok(_), Ok(offer)) => phone
                    .0
                    .borrow_mut()
                    .ua
                    .as_mut()
                    .map(|ua| {
                        ua.accept_transfer(now(), old, &offer)
                            .map(|h| (h, offer))
                            .map_err(|e| e.to_string())
                    })
                    .unwrap_or_else(|| Err("no phone line".into())),
                (_, Err(e)) => Err(e),
                (Err(e), _) => Err(e.clone()),
            };
            match (media, placed) {
                (Ok(media), Ok((handle, offer))) => {
                    diagnostics::record(format!("softphone: transferred, call {}", handle.0));
                    phone.watch_ice(handle, &media);
                    let mut call = Call::new(
                        handle,
                        format!("{desk_id}-transfer-{}", handle.0),
                        None,
                        Some(media),
                    );
                    call.ice.local_description(&offer);
                    call.transfer_of = Some((old, desk_id, shown));
                    phone.0.borrow_mut().calls.push(call);
                }
                (media, Err(e)) => {
                    diagnostics::warn(&format!("softphone: transfer not placed: {e}"));
                    if let Ok(m) = media {
                        m.close();
                    }
                    if let Some(ua) = phone.0.borrow_mut().ua.as_mut()
                        && ua.has_call(old)
                    {
                        let _ = ua.decline_transfer(now(), old, 488);
                    }
                    super::set_transfer_note(Some(
                        strings()
                            .get("sip_transfer_failed")
                            .replace("{target}", &shown)
                            .replace("{reason}", &e),
                    ));
                }
                (Err(_), Ok(_)) => {}
            }
            phone.pump();
        });
    }

    /// The call the far end transferred us to was answered ([`Event::Transferred`]): it takes
    /// the desk call's place (same id, now with the new far end); the UA ends `old` by BYE.
    fn transfer_answered(&self, old: CallHandle, new: CallHandle) {
        let Some((desk_id, shown)) = self
            .with_call(new, |c| {
                c.transfer_of.take().map(|(_, id, shown)| (id, shown))
            })
            .flatten()
        else {
            return;
        };
        diagnostics::record(format!(
            "softphone: call {} replaces call {} (transferred)",
            new.0, old.0
        ));
        self.with_call(old, |c| c.id = format!("{}-transferred", c.id));
        self.with_call(new, |c| c.id = desk_id.clone());
        self.update_desk(&desk_id, json!({"state": "connected"}));
        super::set_transfer_note(Some(
            strings().get("sip_transferred").replace("{target}", &shown),
        ));
    }

    /// True for a call that is not on the desk: a consultation, or a call placed for a REFER
    /// that is not answered yet.
    fn off_desk(&self, handle: CallHandle) -> bool {
        self.with_call(handle, |c| {
            c.consult_for.is_some() || c.transfer_of.is_some()
        })
        .unwrap_or(false)
    }

    /// True when `old` is a call of ours that an INVITE with Replaces may take over (RFC 3891:
    /// we are the target of an attended transfer and `old` is the consultation with the
    /// transferor).
    fn takes_over(&self, old: CallHandle) -> bool {
        self.with_call(old, |c| c.established && c.media.is_some())
            .unwrap_or(false)
    }

    /// Answers the Replaces INVITE `new` at once (the agent already accepted the call it
    /// replaces): a fresh microphone stream and peer connection, the desk's call continues
    /// under its id with the new far end, and the UA ends `old` by BYE.
    fn take_over(&self, new: CallHandle, old: CallHandle, sdp: Option<String>) {
        diagnostics::record(format!("softphone: call {} replaces call {}", new.0, old.0));
        let Some(id) = self.with_call(old, |c| {
            let id = c.id.clone();
            c.id = format!("{id}-replaced");
            id
        }) else {
            return;
        };
        let mut call = Call::new(new, id.clone(), None, None);
        call.established = true;
        self.0.borrow_mut().calls.push(call);
        let (processing, ice) = {
            let s = self.0.borrow();
            (s.config.audio_processing, ice_servers(&s))
        };
        let phone = self.clone();
        spawn_local(async move {
            let media = match (media::microphone(processing).await, sdp) {
                (Ok(mic), Some(sdp)) => match CallMedia::new(&ice, mic.clone()) {
                    Ok(m) => {
                        let m = Rc::new(m);
                        m.answer(&sdp).await.map(|a| (m, a))
                    }
                    Err(e) => {
                        media::release(&mic);
                        Err(e)
                    }
                },
                (Ok(mic), None) => {
                    media::release(&mic);
                    Err("no SDP offer".into())
                }
                (Err(e), _) => Err(format!("{e:?}")),
            };
            let answered = match media {
                Ok((m, answer)) => {
                    phone.watch_ice(new, &m);
                    phone.with_call(new, |c| {
                        c.ice.local_description(&answer);
                        c.media = Some(m);
                    });
                    phone
                        .0
                        .borrow_mut()
                        .ua
                        .as_mut()
                        .map(|ua| ua.answer(now(), new, &answer).is_ok())
                }
                Err(e) => {
                    diagnostics::warn(&format!("softphone: Replaces not taken: {e}"));
                    None
                }
            };
            if answered != Some(true) {
                if let Some(ua) = phone.0.borrow_mut().ua.as_mut() {
                    let _ = ua.reject(now(), new, 488);
                }
                // The old call goes on under its desk id.
                phone.drop_call(&id);
                phone.with_call(old, |c| c.id = id.clone());
            }
            phone.pump();
        });
    }

    /// The established call's media (the one the meters and the quality watch follow; a
    /// consultation, added last, before the held customer).
    fn live_media(&self) -> Option<(Rc<CallMedia>, bool)> {
        self.0.borrow().calls.iter().rev().find_map(|c| {
            c.media
                .clone()
                .filter(|_| c.established)
                .map(|m| (m, c.muted || c.held))
        })
    }

    /// While a call is up: `getStats` every 2 s (Diagnostics and the quality watch, which warns
    /// after 5 s of an estimated MOS below 3.5), and the microphone's level every 200 ms (the
    /// meter, "no sound from your microphone", "you are muted").
    fn watch_stats(&self) {
        {
            let mut s = self.0.borrow_mut();
            s.quality = QualityWatch::new();
            s.mic_watch = MicWatch::new();
        }
        let phone = self.clone();
        let interval = gloo_timers::callback::Interval::new(2000, move || {
            if let Some((media, _)) = phone.live_media() {
                let phone = phone.clone();
                spawn_local(async move {
                    if let Some(stats) = media.stats().await {
                        STATS.with(|s| *s.borrow_mut() = Some(stats.line));
                        let t = now();
                        let warning = {
                            let mut s = phone.0.borrow_mut();
                            s.quality.push(t, stats.link);
                            if let Some(q) = s.quality.latest() {
                                QUALITY.with(|l| *l.borrow_mut() = Some(q.summary()));
                            }
                            s.quality.warning(t)
                        };
                        super::set_quality(warning);
                    }
                });
            }
        });
        let phone = self.clone();
        let level = gloo_timers::callback::Interval::new(200, move || {
            let Some((media, muted)) = phone.live_media() else {
                return;
            };
            let Some(db) = media.level_db() else {
                return;
            };
            let hint = phone.0.borrow_mut().mic_watch.push(now(), db, muted);
            super::set_level(Some(db), hint);
        });
        let mut s = self.0.borrow_mut();
        s.stats = Some(interval);
        s.level = Some(level);
    }

    /// Hold, resume or ICE restart: a new offer from the peer connection in a re-INVITE.
    fn renegotiate(&self, handle: CallHandle, pending: Pending) {
        let Some((media, muted)) = self.with_call(handle, |c| (c.media.clone(), c.muted)) else {
            return;
        };
        let Some(media) = media else {
            return;
        };
        match pending {
            Pending::Hold => media.set_held(true, muted),
            Pending::Resume => media.set_held(false, muted),
            _ => {}
        }
        let phone = self.clone();
        spawn_local(async move {
            let offer = match media.offer(pending == Pending::Restart).await {
                Ok(offer) => offer,
                Err(e) => return diagnostics::warn(&format!("softphone: no offer: {e}")),
            };
            let result = {
                let mut s = phone.0.borrow_mut();
                let State { ua, calls, .. } = &mut *s;
                let call = calls.iter_mut().find(|c| c.handle == handle);
                match (ua.as_mut(), call) {
                    (Some(ua), Some(c)) => Some(match pending {
                        // Checked for new ICE credentials (RFC 8839 §4.4.1.1.1).
                        Pending::Restart => c
                            .ice
                            .send_restart(ua, now(), handle, &offer)
                            .map_err(|e| e.to_string()),
                        _ => {
                            c.ice.local_description(&offer);
                            match pending {
                                Pending::Hold => ua.hold(now(), handle, &offer),
                                _ => ua.resume(now(), handle, &offer),
                            }
                            .map_err(|e| e.to_string())
                        }
                    }),
                    _ => None,
                }
            };
            match result {
                Some(Ok(())) => {
                    phone.with_call(handle, |c| c.pending = pending);
                }
                Some(Err(e)) => {
                    diagnostics::warn(&format!("softphone: re-INVITE not sent: {e}"));
                    if pending == Pending::Restart {
                        phone.check_ice();
                    }
                }
                None => {}
            }
            phone.pump();
        });
    }

    /// Accept: the microphone first (asked on the click); only with it is the call answered.
    pub fn accept(&self) {
        let port = self.port();
        let processing = self.0.borrow().config.audio_processing;
        let phone = self.clone();
        spawn_local(async move {
            match media::microphone(processing).await {
                Ok(mic) => {
                    phone.0.borrow_mut().mic = Some(mic);
                    let action = port.with_desk(|d, now| d.accept(now));
                    port.perform(action);
                    // Not used (the call stopped ringing meanwhile): let go of it.
                    if let Some(mic) = phone.0.borrow_mut().mic.take() {
                        media::release(&mic);
                    }
                }
                Err(e) => port.notice.set(Some(mic_message(&e))),
            }
        });
    }

    /// The dial pad's Call: the microphone, an offer, INVITE to `sip:<number>@<domain>`.
    pub fn dial(&self, number: String) {
        let port = self.port();
        if !matches!(super::line().get_untracked(), LineState::Registered) {
            port.notice
                .set(Some(strings().get("sip_not_registered").into()));
            return;
        }
        let target = dial_target(&number);
        let (processing, ice) = {
            let s = self.0.borrow();
            (
                s.config.audio_processing,
                s.creds
                    .as_ref()
                    .map(|c| c.ice_servers.clone())
                    .unwrap_or(json!([])),
            )
        };
        port.notice.set(None);
        port.dial_text.set(String::new());
        let phone = self.clone();
        spawn_local(async move {
            let mic = match media::microphone(processing).await {
                Ok(mic) => mic,
                Err(e) => {
                    port.dial_text.set(number);
                    return port.notice.set(Some(mic_message(&e)));
                }
            };
            let media = match CallMedia::new(&ice, mic.clone()) {
                Ok(m) => Rc::new(m),
                Err(e) => {
                    media::release(&mic);
                    return port.notice.set(Some(call_failed(&e)));
                }
            };
            let offer = match media.offer(false).await {
                Ok(offer) => offer,
                Err(e) => {
                    media.close();
                    return port.notice.set(Some(call_failed(&e)));
                }
            };
            let placed = phone
                .0
                .borrow_mut()
                .ua
                .as_mut()
                .map(|ua| ua.call(now(), &target, &offer));
            let handle = match placed {
                Some(Ok(handle)) => handle,
                Some(Err(e)) => {
                    media.close();
                    port.dial_text.set(number);
                    return port.notice.set(Some(call_failed(&e.to_string())));
                }
                None => {
                    media.close();
                    return port
                        .notice
                        .set(Some(strings().get("sip_not_registered").into()));
                }
            };
            let id = format!("sip-{}-{}", phone.0.borrow().session, handle.0);
            diagnostics::record(format!("softphone: INVITE sent, call {id}"));
            phone.watch_ice(handle, &media);
            let mut call = Call::new(handle, id.clone(), None, Some(media));
            call.ice.local_description(&offer);
            phone.0.borrow_mut().calls.push(call);
            let call = json!({"callId": id, "direction": "outbound", "phoneNumber": number, "state": "dialling"});
            // A call that started ringing meanwhile is refused busy (Desk::dialled).
            if let Some(action) = port.with_desk(|d, now| d.dialled(&call, now, 120_000.0)) {
                port.perform(action);
            }
            phone.pump();
        });
    }

    /// Carries out a desk action on the UA (what hub mode sends as invocations).
    pub fn perform(&self, action: Action) {
        let t = now();
        if matches!(
            action,
            Action::Accept { .. } | Action::Reject { .. } | Action::HangUp { .. }
        ) {
            devices::stop_ringing();
        }
        match action {
            Action::Nothing | Action::Ring => {}
            Action::Accept { call_id, .. } => self.answer(&call_id),
            Action::Reject {
                call_id, reason, ..
            } => {
                let code = match reason {
                    RejectReason::Busy => 486,
                    RejectReason::Timeout => 480,
                    _ => 603,
                };
                if let Some((handle, _)) = self.by_id(&call_id)
                    && let Some(ua) = self.0.borrow_mut().ua.as_mut()
                {
                    let _ = ua.reject(t, handle, code);
                }
                self.drop_call(&call_id);
            }
            Action::HangUp { call_id } => {
                if let Some((handle, _)) = self.by_id(&call_id) {
                    let consult = self.consult_of(handle);
                    if let Some(ua) = self.0.borrow_mut().ua.as_mut() {
                        let _ = ua.hangup(t, handle);
                        if let Some((consult, ..)) = consult {
                            let _ = ua.hangup(t, consult);
                        }
                    }
                    if let Some((_, consult_id, _)) = consult {
                        self.drop_call(&consult_id);
                    }
                }
                self.drop_call(&call_id);
            }
            Action::Control { call_id, command } => self.control(&call_id, command),
        }
        self.pump();
    }

    fn drop_call(&self, id: &str) {
        let call = {
            let mut s = self.0.borrow_mut();
            let i = s.calls.iter().position(|c| c.id == id);
            i.map(|i| s.calls.remove(i))
        };
        if let Some(m) = call.and_then(|c| c.media) {
            m.close();
        }
        self.idle_if_no_call();
    }

    /// No call left: the stats and level watches stop, the meter and the hints go.
    fn idle_if_no_call(&self) {
        if !self.0.borrow().calls.is_empty() {
            return;
        }
        {
            let mut s = self.0.borrow_mut();
            s.stats = None;
            s.level = None;
        }
        STATS.with(|s| *s.borrow_mut() = None);
        QUALITY.with(|s| *s.borrow_mut() = None);
        super::clear_call_audio();
    }

    fn answer(&self, id: &str) {
        let Some((handle, _)) = self.by_id(id) else {
            return;
        };
        let port = self.port();
        let (mic, offer, ice) = {
            let mut s = self.0.borrow_mut();
            let ice = s
                .creds
                .as_ref()
                .map(|c| c.ice_servers.clone())
                .unwrap_or(json!([]));
            let offer = s
                .calls
                .iter_mut()
                .find(|c| c.handle == handle)
                .and_then(|c| c.offer.take());
            (s.mic.take(), offer, ice)
        };
        let (Some(mic), Some(offer)) = (mic, offer) else {
            // Never answered without audio: no microphone (or an offerless INVITE) ends it.
            if let Some(ua) = self.0.borrow_mut().ua.as_mut() {
                let _ = ua.reject(now(), handle, 488);
            }
            port.with_desk(|d, now| d.call_ended(id, "failed", now));
            return;
        };
        let media = match CallMedia::new(&ice, mic.clone()) {
            Ok(m) => Rc::new(m),
            Err(e) => {
                media::release(&mic);
                port.notice.set(Some(call_failed(&e)));
                return;
            }
        };
        self.with_call(handle, |c| c.media = Some(media.clone()));
        self.watch_ice(handle, &media);
        let phone = self.clone();
        let id = id.to_owned();
        spawn_local(async move {
            let answered =
                match media.answer(&offer).await {
                    Ok(answer) => phone
                        .with_call(handle, |c| c.ice.local_description(&answer))
                        .and(phone.0.borrow_mut().ua.as_mut().map(|ua| {
                            ua.answer(now(), handle, &answer).map_err(|e| e.to_string())
                        })),
                    Err(e) => Some(Err(e)),
                };
            match answered {
                Some(Ok(())) => {
                    phone.with_call(handle, |c| c.established = true);
                    phone.watch_stats();
                }
                Some(Err(e)) => {
                    if let Some(ua) = phone.0.borrow_mut().ua.as_mut() {
                        let _ = ua.reject(now(), handle, 488);
                    }
                    phone.drop_call(&id);
                    port.notice.set(Some(call_failed(&e)));
                    port.with_desk(|d, now| d.call_ended(&id, "failed", now));
                }
                None => {}
            }
            phone.pump();
        });
    }

    fn control(&self, id: &str, command: Command) {
        let Some((handle, media)) = self.by_id(id) else {
            return;
        };
        let t = now();
        match command {
            Command::Hold => self.renegotiate(handle, Pending::Hold),
            Command::Resume => self.renegotiate(handle, Pending::Resume),
            Command::Mute(muted) => {
                let held = self
                    .with_call(handle, |c| {
                        c.muted = muted;
                        c.held
                    })
                    .unwrap_or(false);
                if let Some(m) = media {
                    m.set_muted(muted || held);
                }
                // The desk takes a call update with its state (as the hub sends it).
                let state = if held { "held" } else { "connected" };
                self.update_desk(id, json!({ "muted": muted, "state": state }));
            }
            Command::SendDtmf(digits) => {
                let info = self.0.borrow().config.dtmf == DtmfMode::Info;
                let sent = !info && media.as_ref().is_some_and(|m| m.dtmf(&digits));
                if !sent && let Some(ua) = self.0.borrow_mut().ua.as_mut() {
                    for digit in digits.chars().filter(|d| *d != ',') {
                        let _ = ua.send_dtmf_info(t, handle, digit, 160);
                    }
                }
            }
            Command::BlindTransfer(target) => {
                let target = dial_target(&target);
                let sent = self
                    .0
                    .borrow_mut()
                    .ua
                    .as_mut()
                    .map(|ua| ua.transfer_blind(t, handle, &target));
                if let Some(Err(e)) = sent {
                    self.port().notice.set(Some(call_failed(&e.to_string())));
                }
            }
            Command::StartConsult(target) => self.start_consult(handle, id, target),
            Command::CompleteConsult => self.complete_consult(handle),
            Command::CancelConsult => self.cancel_consult(handle, id),
            Command::Answer | Command::Reject | Command::HangUp => {}
            Command::Conference => self
                .port()
                .notice
                .set(Some(strings().get("sip_not_available").into())),
        }
    }
}

impl Phone {
    /// Consult (attended transfer, RFC 5589 §7): the customer goes on hold and a second call
    /// goes to `typed`; the desk shows the customer's call as transferring.
    fn start_consult(&self, customer: CallHandle, id: &str, typed: String) {
        if self.consult_of(customer).is_some() {
            return;
        }
        if !self.with_call(customer, |c| c.held).unwrap_or(true) {
            self.renegotiate(customer, Pending::Hold);
        }
        let target = dial_target(&typed);
        let (processing, ice) = {
            let s = self.0.borrow();
            (s.config.audio_processing, ice_servers(&s))
        };
        let phone = self.clone();
        let port = self.port();
        let id = id.to_owned();
        spawn_local(async move {
            let mic = match media::microphone(processing).await {
                Ok(mic) => mic,
                Err(e) => return port.notice.set(Some(mic_message(&e))),
            };
            let media = match CallMedia::new(&ice, mic.clone()) {
                Ok(m) => Rc::new(m),
                Err(e) => {
                    media::release(&mic);
                    return port.notice.set(Some(call_failed(&e)));
                }
            };
            let placed = match media.offer(false).await {
                Ok(offer) => phone
                    .0
                    .borrow_mut()
                    .ua
                    .as_mut()
                    .map(|ua| ua.call(now(), &target, &offer).map(|h| (h, offer)))
                    .ok_or_else(|| strings().get("sip_not_registered").to_owned())
                    .and_then(|r| r.map_err(|e| e.to_string())),
                Err(e) => Err(e),
            };
            let (handle, offer) = match placed {
                Ok(placed) => placed,
                Err(e) => {
                    media.close();
                    return port.notice.set(Some(call_failed(&e)));
                }
            };
            diagnostics::record(format!("softphone: consultation, call {}", handle.0));
            phone.watch_ice(handle, &media);
            let mut call = Call::new(
                handle,
                format!("{id}-consult-{}", handle.0),
                None,
                Some(media),
            );
            call.ice.local_description(&offer);
            call.consult_for = Some(customer);
            phone.0.borrow_mut().calls.push(call);
            phone.update_desk(
                &id,
                json!({"state": "transferring", "transferTarget": typed}),
            );
            phone.pump();
        });
    }

    /// Complete: REFER to the customer with Refer-To the target and Replaces of the
    /// consultation (RFC 3891); the NOTIFYs end both of the agent's calls
    /// ([`Event::TransferProgress`]).
    fn complete_consult(&self, customer: CallHandle) {
        let sent = match self.consult_of(customer) {
            Some((consult, _, true)) => self
                .0
                .borrow_mut()
                .ua
                .as_mut()
                .map(|ua| ua.transfer_attended(now(), customer, consult)),
            _ => Some(Err(switchboard_sip::ua::UaError::InvalidState(
                "the transfer target has not answered",
            ))),
        };
        match sent {
            Some(Ok(())) => {
                self.with_call(customer, |c| c.referred = true);
            }
            Some(Err(e)) => self.port().notice.set(Some(call_failed(&e.to_string()))),
            None => {}
        }
    }

    /// Back to the caller: the consultation is hung up (BYE or CANCEL) and the desk shows the
    /// customer held, as the hub's `cancelConsult` does; Resume takes them back.
    fn cancel_consult(&self, customer: CallHandle, id: &str) {
        if let Some((consult, consult_id, _)) = self.consult_of(customer) {
            if let Some(ua) = self.0.borrow_mut().ua.as_mut() {
                let _ = ua.hangup(now(), consult);
            }
            self.drop_call(&consult_id);
        }
        self.update_desk(id, json!({"state": "held"}));
    }
}

/// A Refer-To URI as the agent sees it: `user@host`, without parameters or headers (no
/// `Replaces` dialog ids on screen).
fn shown_target(target: &str) -> String {
    let bare = target
        .trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .trim_start_matches("tel:");
    let end = bare.find([';', '?', '>']).unwrap_or(bare.len());
    bare[..end].to_owned()
}

fn ice_servers(s: &State) -> Value {
    s.creds
        .as_ref()
        .map(|c| c.ice_servers.clone())
        .unwrap_or(json!([]))
}

/// What the agent typed as a SIP target: a SIP URI as is; a phone number without its
/// separators (`+1 (425) 555-0100` → `+14255550100`); a user or extension as is. The UA puts
/// a bare target at the configured domain.
pub fn dial_target(typed: &str) -> String {
    let typed = typed.trim();
    if typed.contains(':') {
        return typed.to_owned();
    }
    let phone_like = typed
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().*#".contains(c));
    if phone_like {
        typed
            .chars()
            .filter(|c| c.is_ascii_digit() || "+*#".contains(*c))
            .collect()
    } else {
        typed.to_owned()
    }
}

fn mic_message(e: &MicError) -> String {
    let t = strings();
    match e {
        MicError::Denied => t.get("mic_denied").into(),
        MicError::Missing => t.get("mic_missing").into(),
        MicError::Other(name) => t.get("mic_failed").replace("{reason}", name),
    }
}

fn call_failed(reason: &str) -> String {
    strings().get("sip_call_failed").replace("{reason}", reason)
}

/// The agent picked another microphone, or one came or went: a call in progress moves to the
/// effective one (`replaceTrack`, no renegotiation).
fn microphone_changed() {
    let Some(phone) = phone() else {
        return;
    };
    let Some((media, _)) = phone.live_media() else {
        return;
    };
    let want = devices::effective(Role::Microphone).unwrap_or_else(|| "default".into());
    if media.microphone_id().as_deref() == Some(want.as_str()) {
        return;
    }
    let processing = phone.0.borrow().config.audio_processing;
    spawn_local(async move {
        match media::microphone(processing).await {
            Ok(stream) => match media.switch_microphone(stream).await {
                Ok(()) => {
                    diagnostics::record("softphone: the call moved to another microphone".into())
                }
                Err(e) => diagnostics::warn(&format!("softphone: microphone not switched: {e}")),
            },
            Err(e) => phone.port().notice.set(Some(mic_message(&e))),
        }
    });
}

/// The agent picked another speaker, or one came or went: the call's audio moves to it.
fn speaker_changed() {
    let Some(phone) = phone() else {
        return;
    };
    let speaker = devices::effective(Role::Speaker).unwrap_or_default();
    let calls: Vec<Rc<CallMedia>> = phone
        .0
        .borrow()
        .calls
        .iter()
        .filter_map(|c| c.media.clone())
        .collect();
    for media in calls {
        media.set_speaker(&speaker);
    }
}
