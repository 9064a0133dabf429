//! The widget's state and its transitions: the [`Widget`] store (a few signals; the hub client,
//! which is not `Send`, in a local [`StoredValue`]) and everything that changes it after
//! start-up. Hub events (typed by [`switchboard_core::hub_event`]) and the agent's requests go
//! through [`Desk`] (pure, in `switchboard-core`), whose [`Action`]s are carried out here as hub
//! invocations ([`switchboard_core::invocation`]) or by the softphone.
//!
//! Start-up and sign-in are `boot.rs`, the pop-out `popout.rs`; both drive this store.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};
use switchboard_core::call::machine::Command;
use switchboard_core::hub_event::{self, HubEvent};
use switchboard_core::{Action, CallRecord, Config, Desk, History, IncomingCall};
use switchboard_signalr::ConnectionState;

use crate::browser::now_ms;
use crate::calls::CallRequest;
use crate::diagnostics::{self, warn};
use crate::i18n::strings;
use crate::signalr::HubClient;

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

/// How long after sign-in the desk is built at the latest while the first connection is
/// still being tried (ms).
pub const DESK_WAIT_MS: u32 = 1_000;

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
    /// `Date.now()` (Unix ms), for the times shown to the agent: refreshed every second while
    /// something on screen shows seconds ([`Widget::seconds_wanted`]), every 15 s otherwise
    /// (minutes: "Break · 12 min"), and not at all while the page is hidden (`boot.rs`).
    pub now_ms: RwSignal<f64>,
    /// How many views on screen now show seconds (a ringing countdown, a talk time, a wrap-up
    /// countdown, a reconnect countdown, the open Diagnostics drawer): see
    /// [`crate::boot::show_seconds`].
    pub seconds_wanted: RwSignal<u32>,
    /// Own presence, the team list and the Teams sync (`presence.rs`).
    pub presence: crate::presence::Presence,
    /// The agent state the hub keeps (`agent.rs`).
    pub agent: crate::agent::AgentStatus,
    /// Recent calls (`calls.rs`), kept in `localStorage`.
    pub history: RwSignal<History>,
    /// What the agent typed in the `Phone number` box.
    pub dial_text: RwSignal<String>,
    /// Whether this tab is the one that rings (`tabs.rs`).
    pub(crate) ringer: StoredValue<Option<crate::tabs::Ringer>, LocalStorage>,
    /// Whether an offer or a resync was left to another tab since this tab last asked the hub
    /// for its calls: what a tab that becomes the ringing tab must catch up on.
    left_to_other_tab: StoredValue<bool>,
    /// MSAL needs the agent again while connected: the non-blocking "Sign in again" prompt.
    pub reauth: RwSignal<Option<String>>,
    /// Bumped at each sign-in and sign-out; a renewal loop of an older session stops.
    pub(crate) session: RwSignal<u32>,
    pub(crate) client: StoredValue<Option<HubClient>, LocalStorage>,
    pub(crate) msal: StoredValue<Option<crate::msal::Msal>, LocalStorage>,
    /// The CRM host around the widget (issue 5, `host/`).
    pub host: crate::host::Host,
    /// The language in use (a shipped BCP 47 tag); views are rebuilt when it changes.
    pub locale: RwSignal<&'static str>,
    /// The language asked for last; a slower download of an earlier choice is dropped.
    wanted_locale: StoredValue<&'static str>,
    /// The widget runs in its own window (the pop-out); this frame waits, disconnected.
    pub popped_out: RwSignal<bool>,
    /// Whether the desk (the signed-in view) may be built: set once per page, after the first
    /// connection's "Connected" is painted, when its first attempt fails, or
    /// [`DESK_WAIT_MS`] after sign-in, whichever is first ([`Widget::desk_may_show`]).
    /// Building the desk's views takes tens of ms of the main thread; done before, it delays
    /// the token, negotiate and WebSocket steps of the start-up (issue 17, "start-up target").
    pub desk_ready: RwSignal<bool>,
    /// The pop-out's window and the timer that watches it close (`popout.rs`).
    pub(crate) popout:
        StoredValue<Option<(web_sys::Window, gloo_timers::callback::Interval)>, LocalStorage>,
}

impl Widget {
    pub fn new() -> Self {
        let desk = RwSignal::new(Desk::new());
        let agent = crate::agent::AgentStatus::new(desk);
        Self {
            phase: RwSignal::new(Phase::Loading),
            config: RwSignal::new(None),
            user: RwSignal::new(None),
            // The early connection's state, if it runs (early.rs), so the header goes on saying
            // what the first screen said.
            connection: RwSignal::new(
                crate::early::state().unwrap_or(ConnectionState::Disconnected),
            ),
            connection_detail: RwSignal::new(None),
            next_attempt: RwSignal::new(None),
            desk,
            presence: crate::presence::Presence::new(desk, agent),
            agent,
            notice: RwSignal::new(None),
            now_ms: RwSignal::new(now_ms()),
            seconds_wanted: RwSignal::new(0),
            history: RwSignal::new(History::default()),
            dial_text: RwSignal::new(String::new()),
            ringer: StoredValue::new_local(None),
            left_to_other_tab: StoredValue::new(false),
            reauth: RwSignal::new(None),
            session: RwSignal::new(0),
            host: crate::host::Host::new(),
            client: StoredValue::new_local(None),
            msal: StoredValue::new_local(None),
            locale: RwSignal::new(strings().locale),
            wanted_locale: StoredValue::new(strings().locale),
            popped_out: RwSignal::new(false),
            popout: StoredValue::new_local(None),
            desk_ready: RwSignal::new(false),
        }
    }

    /// Lets the desk be built in a later task than this one, after the next frame (so what
    /// changed now, e.g. "Connected", is painted first); at once in a hidden page, which has
    /// no frames (`requestAnimationFrame` waits until the agent looks at the tab, and a call
    /// ringing meanwhile would have no dialog in the page). Idempotent.
    pub(crate) fn desk_may_show(self) {
        if self.desk_ready.get_untracked() {
            return;
        }
        if crate::browser::page_hidden() {
            self.desk_ready.set(true);
            return;
        }
        request_animation_frame(move || {
            set_timeout(
                move || {
                    if !self.desk_ready.get_untracked() {
                        self.desk_ready.set(true);
                    }
                },
                std::time::Duration::ZERO,
            )
        });
    }

    // --- language -----------------------------------------------------------------------

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
                Err(e) => {
                    warn(&format!("language {tag} not loaded: {e}"));
                    if self.wanted_locale.get_value() == tag {
                        // English (or the language in use) stays: nothing to wait for.
                        self.wanted_locale.set_value(crate::i18n::strings().locale);
                    }
                }
            }
        });
    }

    /// Whether the language asked for last ([`Widget::use_language`]) is the one in use (its
    /// catalogue arrived, or failed and English stays).
    pub fn language_settled(self) -> bool {
        self.locale.get_untracked() == self.wanted_locale.get_value()
    }

    /// Whether the language is fixed by `?lang=` or config.json, so the host's does not count.
    pub fn language_fixed(self) -> bool {
        crate::browser::query_param("lang").is_some()
            || self
                .config
                .with_untracked(|c| c.as_ref().is_some_and(|c| c.locale != "auto"))
    }

    // --- the connection -------------------------------------------------------------------

    /// Checks the hub connection now and cuts any reconnect wait short (`HubClient::wake`):
    /// the network came back, the tab became visible, a frozen page resumed, or the agent
    /// pressed **Try now**.
    pub fn reconnect(self) {
        crate::softphone::wake();
        if let Some(client) = self.client.get_value() {
            client.wake();
        }
    }

    /// The hub connection's state changed (`HubClient`'s `on_state`).
    pub(crate) fn connection_changed(self, state: ConnectionState, detail: Option<String>) {
        // A state the early connection reported was logged when it happened (early.rs).
        if !crate::early::replaying() {
            diagnostics::record(crate::early::state_line(state, detail.as_deref()));
        }
        self.connection.set(state);
        if state == ConnectionState::Connected {
            self.desk_may_show();
        }
        if state == ConnectionState::Connected {
            // The hub keeps the agent state: a reload, another tab or the hub may have changed it.
            self.agent.fetch();
        }
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
    }

    /// A client method from the hub (`HubClient`'s `on_invocation`).
    pub(crate) fn on_invocation(self, target: &str, arguments: Vec<Value>) {
        // The call id, never the caller's number or name, goes into the diagnostics log.
        diagnostics::record(hub_event::received_line(target, &arguments));
        match hub_event::parse(target, &arguments) {
            Ok(Some(HubEvent::Offer(call))) => self.offer(call),
            Ok(Some(HubEvent::CallUpdated(call))) => {
                self.with_desk(|d, now| d.call_updated(&call, now));
            }
            Ok(Some(HubEvent::CallEnded { call_id, reason })) => {
                self.with_desk(|d, now| d.call_ended(&call_id, &reason, now));
            }
            Ok(Some(HubEvent::PresenceChanged { id, presence })) => {
                self.presence.pushed(id, presence)
            }
            Ok(Some(HubEvent::AgentStateChanged(state))) => {
                self.agent.changed(state);
            }
            Ok(None) => {}
            Err(warning) => warn(&warning),
        }
    }

    /// After every (re)connect: asks the hub for this agent's calls (`getCalls`) and makes the
    /// desk agree with it (`Desk::resync`), so a reload or a reconnect never loses a call that
    /// rang or was in progress meanwhile (issue 13). Only the tab that rings does this; the
    /// others leave calls to it.
    fn resync(self) {
        // SIP mode: the calls are the softphone's, which the hub does not list.
        if crate::softphone::owns_calls() {
            return;
        }
        if !self.rings_here() {
            self.left_to_other_tab.set_value(true);
            return;
        }
        let Some(client) = self.client.get_value() else {
            return;
        };
        self.left_to_other_tab.set_value(false);
        let ring_ms = self.ring_ms();
        spawn_local(async move {
            let calls = match client.invoke("getCalls", vec![]).await {
                Ok(result) => match result.get("calls").and_then(|c| c.as_array()) {
                    Some(calls) => calls.clone(),
                    None => {
                        warn("getCalls answered without a list of calls.");
                        return;
                    }
                },
                Err(e) => {
                    warn(&format!("getCalls failed: {e}"));
                    return;
                }
            };
            diagnostics::record(format!("resync: the hub lists {} call(s)", calls.len()));
            let found = self.with_desk(|d, now| d.resync(&calls, now, ring_ms));
            for action in found.actions {
                self.perform(action);
            }
            for call in found.offers {
                self.offer(call);
            }
        });
    }

    // --- the desk -------------------------------------------------------------------------

    /// Claims the ringing tab of `user` for this tab (`tabs::Ringer`): sign-in, and back from
    /// the pop-out. Once this tab rings, if an offer or a resync was left to "the tab that rings"
    /// meanwhile (which this one may already have been: the lock is granted a task after the
    /// claim), the hub is asked for the calls again when connected; unconnected, the next
    /// connect's resync does it. Nothing was left: no request (the connect's resync covers it).
    pub(crate) fn claim_ringer(self, user: &str) {
        let ringer = crate::tabs::Ringer::claim(user, move || {
            let connected = self
                .client
                .get_value()
                .is_some_and(|c| c.state() == ConnectionState::Connected);
            if connected && self.left_to_other_tab.get_value() {
                diagnostics::record("this tab rings now: asking the hub for its calls".into());
                self.resync();
            }
        });
        self.ringer.set_value(Some(ringer));
    }

    /// Whether this tab rings (multi-tab: exactly one tab of this agent does). In SIP mode only
    /// the tab holding the agent's SIP line registers, so an INVITE it gets rings here.
    fn rings_here(self) -> bool {
        crate::softphone::owns_calls()
            || self
                .ringer
                .with_value(|r| r.as_ref().is_none_or(|r| r.is_ringer()))
    }

    /// The ring time from config.json, in ms.
    fn ring_ms(self) -> f64 {
        self.config
            .with_untracked(|c| c.as_ref().map(|c| c.ring_timeout_seconds).unwrap_or(30))
            as f64
            * 1000.0
    }

    /// Runs `f` on the desk at the present time, tells the host what changed (a call rings,
    /// the ringing call was accepted or dismissed: `Host::after_transition`), then files the
    /// calls it finished into the history. Returns what `f` returned.
    pub(crate) fn with_desk<R>(self, f: impl FnOnce(&mut Desk, f64) -> R) -> R {
        let now = now_ms();
        let before = self.desk.with_untracked(crate::host::desk_ids);
        let mut out = None;
        let mut finished = Vec::new();
        self.desk.update(|d| {
            out = Some(f(d, now));
            finished = d.take_finished();
        });
        self.desk
            .with_untracked(|d| self.host.after_transition(d, before));
        if !finished.is_empty() {
            self.file(finished);
        }
        out.expect("the closure ran")
    }

    /// Files finished calls into the history and saves it.
    fn file(self, records: Vec<CallRecord>) {
        self.history.update(|h| {
            for r in records {
                h.record(r);
            }
        });
        if let Some(user) = self.user.get_untracked() {
            self.history
                .with_untracked(|h| crate::calls::save_history(&user, h));
        }
    }

    /// Loads `user`'s history from `localStorage` (sign-in).
    pub(crate) fn load_history(self, user: &str) {
        self.history.set(crate::calls::load_history(user));
    }

    /// A call to offer the agent (a hub event, a resync, the softphone).
    pub(crate) fn offer(self, call: IncomingCall) {
        // Multi-tab: exactly one tab of this agent rings; the others stay quiet.
        if !self.rings_here() {
            diagnostics::record("offer left to the tab that rings".into());
            self.left_to_other_tab.set_value(true);
            return;
        }
        let ring_ms = self.ring_ms();
        let action = self.with_desk(|d, now| d.offer(call, now, ring_ms));
        if action == Action::Ring {
            if self.notice.with_untracked(Option::is_some) {
                self.notice.set(None);
            }
            // +50 ms so the deadline has passed when the timer fires. A one-shot callback that
            // frees itself when it runs (a forgotten gloo `Timeout` kept its closure for the
            // page's lifetime: one per call).
            set_timeout(
                move || {
                    let action = self.with_desk(|d, now| d.ring_timeout(now));
                    self.perform(action);
                },
                std::time::Duration::from_millis(ring_ms as u64 + 50),
            );
        } else {
            self.perform(action);
        }
    }

    /// The ring time ran out at `now` (or the host's notification timed out: `f64::MAX`).
    fn ring_timed_out(self, now: f64) {
        let action = self.with_desk(|d, _| d.ring_timeout(now));
        self.perform(action);
    }

    /// Carries out what the agent asked for in the call UI.
    pub fn request(self, request: CallRequest) {
        match request {
            CallRequest::Dial(number) => self.dial(number),
            CallRequest::Accept => self.accept(),
            CallRequest::Reject => self.reject(),
            CallRequest::HangUp => self.hang_up(),
            CallRequest::Control(command) => self.control(command),
            CallRequest::WrapUp { notes, disposition } => self.finish_wrap_up(notes, disposition),
        }
    }

    /// The agent pressed Accept.
    pub fn accept(self) {
        if crate::softphone::accept() {
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

    /// Places a call through the hub's `makeCall`: the hub normalises the number (E.164 with
    /// the configured default region, `tel:` URIs, extensions) or finds the colleague, and
    /// refuses invalid input with a sentence that is shown here; nothing is dialled then.
    pub fn dial(self, number: String) {
        let t = strings();
        let number = number.trim().to_owned();
        if number.is_empty() {
            self.notice.set(Some(t.enter_number.into()));
            return;
        }
        if self.desk.with_untracked(Desk::is_busy) {
            self.notice.set(Some(t.already_on_call.into()));
            return;
        }
        if crate::softphone::dial(&number) {
            return;
        }
        let Some(client) = self.client.get_value() else {
            self.notice.set(Some(t.not_connected.into()));
            return;
        };
        self.notice.set(None);
        self.dial_text.set(String::new());
        spawn_local(async move {
            match client.invoke("makeCall", vec![json!(number)]).await {
                Ok(call) => {
                    diagnostics::record(format!(
                        "placed call {}",
                        call.get("callId").and_then(|v| v.as_str()).unwrap_or("?")
                    ));
                    // A call that started ringing meanwhile is refused busy (Desk::dialled).
                    match self.with_desk(|d, now| d.dialled(&call, now, 120_000.0)) {
                        Some(action) => self.perform(action),
                        None => warn("makeCall returned no outbound call object"),
                    }
                }
                Err(e) => {
                    // Keep what the agent typed so they can correct it.
                    self.dial_text.set(number);
                    self.notice.set(Some(e));
                }
            }
        });
    }

    /// Hold, resume, mute, DTMF, transfers, conference on the call in progress: checked by the
    /// call machine first (an illegal command is explained and nothing is sent).
    pub fn control(self, command: Command) {
        match self.with_desk(|d, _| d.control(command)) {
            Ok(action) => self.perform(action),
            Err(e) => self.notice.set(Some(e.to_string())),
        }
    }

    /// The agent finished wrap-up: the record goes to the history and to the host's call log
    /// (CIF phonecall activity, Open CTI `saveLog`, postMessage `callEnded`).
    pub fn finish_wrap_up(self, notes: String, disposition: String) {
        let record = self.with_desk(|d, _| {
            d.finish_wrap_up(&notes, Some(disposition).filter(|d| !d.is_empty()))
        });
        if let Some(record) = record {
            diagnostics::record(format!("wrap-up saved for call {}", record.call_id));
            self.host.call_ended(&record);
            self.agent.submit_wrap_up(
                &record.call_id,
                record.disposition.as_deref(),
                &record.notes,
            );
        }
    }

    /// Carries out a desk action: on the softphone in SIP mode, else as hub invocations
    /// (`switchboard_core::invocation`), in order.
    pub(crate) fn perform(self, action: Action) {
        if crate::softphone::perform(&action) {
            return;
        }
        let calls = switchboard_core::invocation::invocations(&action);
        if calls.is_empty() {
            return;
        }
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

    // --- the seams to the adapters --------------------------------------------------------

    /// What the host may ask (issue 5).
    pub(crate) fn host_callbacks(self) -> crate::host::HostCallbacks {
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

    /// What the softphone may do (SIP mode): the same transitions as hub mode.
    pub(crate) fn softphone_port(self) -> crate::softphone::DeskPort {
        crate::softphone::DeskPort::new(
            self.notice,
            self.dial_text,
            move |f| self.with_desk(f),
            move |action| self.perform(action),
            move |call| self.offer(call),
        )
    }
}

impl Default for Widget {
    fn default() -> Self {
        Self::new()
    }
}
