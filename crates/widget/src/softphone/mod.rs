//! The browser softphone (issue 14, docs/softphone.md): in `telephony.mode = "sip"` the widget is
//! the phone — SIP over WebSocket driving `switchboard_sip`'s user agent (`phone.rs`) and WebRTC
//! audio (`media.rs`) — while the desk, the dialog, the call panel, wrap-up, history and the
//! host integration stay the hub mode's.
//!
//! The seam into the rest of the widget is these few hooks, each a no-op in hub mode:
//! [`start`]/[`stop`] at sign-in/sign-out (the widget hands over a [`DeskPort`]: the softphone
//! sits below the widget's state and does not name it), [`accept`] (the microphone is asked on the click),
//! [`dial`] (INVITE instead of `makeCall`), [`perform`] (the desk's actions on the UA instead of
//! hub invocations), [`wake`] (the network came back: re-register, ICE restart),
//! [`facts`] (Diagnostics) and the [`LineStatus`] view.
//!
//! Size: the SIP UA and the WebRTC bindings are the cargo feature `sip`, a separate build
//! (`scripts/build-widget --sip` → `dist/sip/`). A hub-mode agent downloads none of it; the
//! default build sends an agent whose config.json says `"mode": "sip"` to `sip/`, which reads the
//! same config.json ([`CONFIG_URL`]).

use std::rc::Rc;

use leptos::prelude::*;
use switchboard_core::{Action, Config, Desk, IncomingCall};

use crate::i18n::strings;
use crate::signalr::TokenFuture;

#[cfg(feature = "sip")]
mod devices;
#[cfg(feature = "sip")]
mod line_lock;
#[cfg(feature = "sip")]
mod media;
#[cfg(feature = "sip")]
mod phone;
#[cfg(feature = "sip")]
mod view;

/// Where the widget reads config.json: the SIP build lives in `sip/` next to the default build
/// and reads the tenant's one config.json.
pub const CONFIG_URL: &str = if cfg!(feature = "sip") {
    "../config.json"
} else {
    "config.json"
};

/// `url` from config.json made absolute the way a stylesheet's `url()` is: relative to
/// config.json's own URL ([`CONFIG_URL`] against the page), so `ring.mp3` beside config.json
/// works in both builds. `None` if it does not parse.
#[cfg(feature = "sip")]
pub fn config_relative(url: &str) -> Option<String> {
    let page = web_sys::window()?.location().href().ok()?;
    let config = web_sys::Url::new_with_base(CONFIG_URL, &page).ok()?;
    Some(
        web_sys::Url::new_with_base(url, &config.href())
            .ok()?
            .href(),
    )
}

/// The SIP registration, as the agent sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum LineState {
    /// Not in SIP mode, or signed out.
    Stopped,
    /// Another tab or window of this agent in this browser holds the line (multi-tab: one
    /// registration per agent and browser); this one takes over when that one closes.
    Elsewhere,
    /// Fetching credentials, connecting, REGISTER sent.
    Registering,
    /// Registered: calls can come and go.
    Registered,
    /// Not registered; the next attempt is at `at_ms` (`Date.now()`).
    Retrying {
        /// When the next attempt starts (Unix ms).
        at_ms: f64,
        /// Why, in the agent's language.
        why: String,
    },
}

/// A transition on the desk at the present time (Unix ms), as the widget's state runs it.
type DeskFn = dyn Fn(&mut dyn FnMut(&mut Desk, f64));

/// What the softphone may do to the widget, given at sign-in: the notice and the phone number
/// box, desk transitions (the widget tells the host and files finished calls), carrying out a
/// desk action, and offering an incoming call.
#[derive(Clone)]
pub struct DeskPort {
    /// The error line shown to the agent.
    pub notice: RwSignal<Option<String>>,
    /// What the agent typed in the `Phone number` box.
    pub dial_text: RwSignal<String>,
    desk: Rc<DeskFn>,
    perform: Rc<dyn Fn(Action)>,
    offer: Rc<dyn Fn(IncomingCall)>,
}

impl DeskPort {
    pub fn new(
        notice: RwSignal<Option<String>>,
        dial_text: RwSignal<String>,
        desk: impl Fn(&mut dyn FnMut(&mut Desk, f64)) + 'static,
        perform: impl Fn(Action) + 'static,
        offer: impl Fn(IncomingCall) + 'static,
    ) -> Self {
        Self {
            notice,
            dial_text,
            desk: Rc::new(desk),
            perform: Rc::new(perform),
            offer: Rc::new(offer),
        }
    }

    /// Runs `f` on the desk at the present time; returns what it returned.
    pub fn with_desk<R>(&self, f: impl FnOnce(&mut Desk, f64) -> R) -> R {
        let mut f = Some(f);
        let mut out = None;
        (self.desk)(&mut |d, now| {
            if let Some(f) = f.take() {
                out = Some(f(d, now));
            }
        });
        out.expect("the desk ran the transition")
    }

    /// Carries out a desk action (the softphone's own [`perform`] takes it in SIP mode).
    pub fn perform(&self, action: Action) {
        (self.perform)(action);
    }

    /// Offers an incoming call to the agent.
    pub fn offer(&self, call: IncomingCall) {
        (self.offer)(call);
    }
}

thread_local! {
    // Reference-counted, not owned by a view: the views are rebuilt when the language arrives,
    // and an arena signal created inside the first one would be disposed with it.
    static LINE: ArcRwSignal<LineState> = ArcRwSignal::new(LineState::Stopped);
}

/// The line's state (for views and tests).
pub fn line() -> ArcRwSignal<LineState> {
    LINE.with(Clone::clone)
}

/// What the agent is told about the audio of the call in progress.
#[cfg(feature = "sip")]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallAudio {
    /// The microphone's level, dBFS; `None` when no call is up (or no Web Audio).
    pub level_db: Option<f64>,
    /// "No sound from your microphone" / "You are muted" / nothing.
    pub mic: switchboard_sip::quality::MicHint,
    /// The estimate when the call has been poor for 5 s (`QualityWatch::warning`).
    pub poor: Option<switchboard_sip::quality::Estimate>,
}

#[cfg(feature = "sip")]
thread_local! {
    /// What became of the far end's transfer of this call ("Transferred to …"), until it ends.
    static TRANSFER_NOTE: ArcRwSignal<Option<String>> = ArcRwSignal::new(None);
    static AUDIO: ArcRwSignal<CallAudio> = ArcRwSignal::new(CallAudio {
        level_db: None,
        mic: switchboard_sip::quality::MicHint::Fine,
        poor: None,
    });
}

/// The call's audio hints (reactive).
#[cfg(feature = "sip")]
fn call_audio() -> ArcRwSignal<CallAudio> {
    AUDIO.with(Clone::clone)
}

#[cfg(feature = "sip")]
fn set_level(level_db: Option<f64>, mic: switchboard_sip::quality::MicHint) {
    call_audio().update(|a| {
        a.level_db = level_db;
        a.mic = mic;
    });
}

#[cfg(feature = "sip")]
fn set_quality(poor: Option<switchboard_sip::quality::Estimate>) {
    let audio = call_audio();
    if audio.with_untracked(|a| a.poor != poor) {
        audio.update(|a| a.poor = poor);
    }
}

/// Says what became of the far end's transfer of the call (being transferred), beside the
/// call's audio hints; cleared when no call is left.
#[cfg(feature = "sip")]
fn set_transfer_note(note: Option<String>) {
    TRANSFER_NOTE.with(|n| n.set(note));
}

#[cfg(feature = "sip")]
fn clear_call_audio() {
    set_transfer_note(None);
    call_audio().set(CallAudio {
        level_db: None,
        mic: switchboard_sip::quality::MicHint::Fine,
        poor: None,
    });
}

/// Sign-in: in SIP mode starts the softphone and returns true. The default build, which has no
/// SIP UA, moves an agent whose config asks for SIP to the SIP build (`sip/`, same query) and
/// returns false: the caller stops there.
pub fn start(
    port: DeskPort,
    config: &Config,
    user: &str,
    token: Rc<dyn Fn() -> TokenFuture>,
) -> bool {
    let Some(sip) = config.telephony.sip() else {
        return true;
    };
    #[cfg(feature = "sip")]
    {
        phone::start(port, sip.clone(), user.to_owned(), token);
        true
    }
    #[cfg(not(feature = "sip"))]
    {
        let _ = (port, sip, user, token);
        if let Some(location) = web_sys::window().map(|w| w.location()) {
            let search = location.search().unwrap_or_default();
            crate::diagnostics::record("softphone: moving to the SIP build (sip/)".into());
            let _ = location.replace(&["sip/", &search].concat());
        }
        false
    }
}

/// Whether the softphone runs, so the desk's calls are SIP calls the hub does not list (no
/// `getCalls` resync).
pub fn owns_calls() -> bool {
    #[cfg(feature = "sip")]
    return phone::phone().is_some();
    #[cfg(not(feature = "sip"))]
    false
}

/// Sign-out: un-REGISTER and close.
pub fn stop() {
    #[cfg(feature = "sip")]
    phone::stop();
}

/// The widget popped out to its own window: this frame lets the SIP line go (the window takes
/// it), so the media is never in two places.
pub fn suspend() {
    #[cfg(feature = "sip")]
    phone::suspend();
}

/// Back from the pop-out: this frame asks for the SIP line again.
pub fn resume() {
    #[cfg(feature = "sip")]
    phone::resume();
}

/// The network came back or the agent pressed Try now.
pub fn wake() {
    #[cfg(feature = "sip")]
    if let Some(p) = phone::phone() {
        p.wake();
    }
}

/// Accept pressed: in SIP mode asks for the microphone first and answers only with it (true:
/// handled here).
pub fn accept() -> bool {
    #[cfg(feature = "sip")]
    if let Some(p) = phone::phone() {
        p.accept();
        return true;
    }
    false
}

/// Call pressed: in SIP mode an INVITE to `sip:<number>@<domain>` (true: handled here).
pub fn dial(number: &str) -> bool {
    let _ = number;
    #[cfg(feature = "sip")]
    if let Some(p) = phone::phone() {
        p.dial(number.to_owned());
        return true;
    }
    false
}

/// A desk action: in SIP mode carried out on the UA (true: handled here).
pub fn perform(action: &Action) -> bool {
    let _ = action;
    #[cfg(feature = "sip")]
    if let Some(p) = phone::phone() {
        p.perform(action.clone());
        return true;
    }
    false
}

/// Facts for Diagnostics: the line and the call's audio quality (`getStats`).
pub fn facts() -> Vec<(&'static str, String)> {
    #[cfg(feature = "sip")]
    if phone::phone().is_some() {
        let line = match line().get_untracked() {
            LineState::Registered => "registered".to_owned(),
            LineState::Registering => "registering".to_owned(),
            LineState::Retrying { why, .. } => ["retrying: ", &why].concat(),
            LineState::Stopped => "stopped".to_owned(),
            LineState::Elsewhere => "in another tab".to_owned(),
        };
        let audio = phone::STATS
            .with(|s| s.borrow().clone())
            .unwrap_or_else(|| "-".into());
        let quality = phone::QUALITY
            .with(|s| s.borrow().clone())
            .unwrap_or_else(|| "-".into());
        return vec![
            ("SIP line", line),
            ("Call audio", audio),
            ("Call quality", quality),
        ];
    }
    Vec::new()
}

/// The Diagnostics drawer's label for one of [`facts`]' names (the report keeps the English
/// name).
pub fn fact_label(name: &'static str) -> &'static str {
    let t = strings();
    match name {
        "SIP line" => t.get("diag_sip_line"),
        "Call audio" => t.get("diag_call_audio"),
        "Call quality" => t.get("diag_call_quality"),
        other => other,
    }
}

/// The SIP line under the connection status: ready, connecting, or why not and when it tries
/// again. Nothing in hub mode.
#[component]
pub fn LineStatus(now_ms: RwSignal<f64>) -> impl IntoView {
    let t = strings();
    let line = line();
    let status = {
        let line = line.clone();
        move || {
            let (modifier, text) = match line.get() {
                LineState::Stopped => return None,
                LineState::Registering => ("connecting", t.get("sip_registering").to_owned()),
                LineState::Elsewhere => ("elsewhere", t.get("sip_elsewhere").to_owned()),
                LineState::Registered => ("connected", t.get("sip_registered").to_owned()),
                LineState::Retrying { at_ms, why } => {
                    let seconds = ((at_ms - now_ms.get()) / 1000.0).ceil().max(0.0) as u32;
                    (
                        "reconnecting",
                        t.get("sip_retrying")
                            .replace("{reason}", &why)
                            .replace("{seconds}", &seconds.to_string()),
                    )
                }
            };
            Some(view! {
                <p class=format!("status line-status status--{modifier}") aria-live="polite">
                    <span class="status__dot" aria-hidden="true"></span>
                    <span class="status__text">{text}</span>
                </p>
            })
        }
    };
    // Rebuilt only when the softphone starts or stops, so an open picker stays open while the
    // line reconnects.
    #[cfg(feature = "sip")]
    let extra = {
        let running = Memo::new(move |_| line.with(|l| *l != LineState::Stopped));
        move || {
            running.get().then(|| {
                view! {
                    <CallAudioHints />
                    <Devices />
                }
            })
        }
    };
    #[cfg(not(feature = "sip"))]
    let extra = {
        let _ = line;
        || ()
    };
    view! { {status} {extra} }
}

/// The microphone's level and the warnings about the call's audio (SIP mode, during a call).
#[cfg(feature = "sip")]
#[component]
fn CallAudioHints() -> impl IntoView {
    let audio = call_audio();
    let level = {
        let audio = audio.clone();
        Signal::derive(move || audio.with(|a| a.level_db))
    };
    let mic = {
        let audio = audio.clone();
        Signal::derive(move || audio.with(|a| a.mic))
    };
    let poor = Signal::derive(move || audio.with(|a| a.poor));
    let note = TRANSFER_NOTE.with(Clone::clone);
    view! {
        {move || note.get().map(|text| view! { <p class="call-audio__note" role="status">{text}</p> })}
        <view::CallAudioView level_db=level mic=mic poor=poor />
    }
}

/// The device picker, wired to the browser (SIP mode).
#[cfg(feature = "sip")]
#[component]
fn Devices() -> impl IntoView {
    let list = devices::list();
    let choice = devices::choice();
    view! {
        <view::DevicesView
            list=Signal::derive(move || list.get())
            choice=Signal::derive(move || choice.get())
            sink_supported=devices::sink_supported()
            on_choose=Callback::new(move |(role, id): (devices::Role, String)| devices::choose(role, id))
            on_open=Callback::new(move |_| devices::refresh())
        />
    }
}
