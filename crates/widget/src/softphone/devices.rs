//! Audio devices and sounds of the softphone: the microphone, speaker and ringer the agent
//! picks (`enumerateDevices`, kept current on `devicechange`; Media Capture and Streams §9.2,
//! <https://w3c.github.io/mediacapture-main/#dom-mediadevices-enumeratedevices>), remembered per
//! browser in `localStorage` (device ids only: never labels, which name the agent's hardware),
//! the output chosen with `HTMLMediaElement.setSinkId` (Audio Output Devices API §2,
//! <https://w3c.github.io/mediacapture-output/#dom-htmlmediaelement-setsinkid>), the ringtone on
//! the ringer device while a SIP call rings, and the microphone's level (Web Audio
//! `AnalyserNode`, read by `phone.rs` through [`LevelMeter`]).
//!
//! One `AudioContext` serves the ringtone and the meter; browsers start it suspended until the
//! agent's first click or key press in the page ([`unlock`]).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Reflect};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AnalyserNode, AudioContext, AudioContextState, HtmlAudioElement, MediaDeviceInfo,
    MediaDeviceKind, MediaStream, MediaStreamTrack,
};

use crate::diagnostics;

/// `localStorage` key of the chosen microphone (`deviceId`).
pub const MICROPHONE_KEY: &str = "switchboard.microphone";
/// `localStorage` key of the chosen speaker for the call's audio (`deviceId`).
pub const SPEAKER_KEY: &str = "switchboard.speaker";
/// `localStorage` key of the chosen ringer device (`deviceId`).
pub const RINGER_KEY: &str = "switchboard.ringer";

/// Which of the three choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The microphone (`audioinput`).
    Microphone,
    /// Where the call's audio plays (`audiooutput`).
    Speaker,
    /// Where the ringtone plays (`audiooutput`).
    Ringer,
}

impl Role {
    fn key(self) -> &'static str {
        match self {
            Role::Microphone => MICROPHONE_KEY,
            Role::Speaker => SPEAKER_KEY,
            Role::Ringer => RINGER_KEY,
        }
    }
}

/// One device as the picker lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// `MediaDeviceInfo.deviceId` (`"default"` for the system's default where the browser lists it).
    pub id: String,
    /// `MediaDeviceInfo.label`; empty until the page may use the microphone.
    pub label: String,
}

/// What `enumerateDevices` last said.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceList {
    /// Microphones.
    pub inputs: Vec<Device>,
    /// Speakers and headsets (empty where the browser does not list outputs).
    pub outputs: Vec<Device>,
}

/// The chosen device ids (empty: the system's default).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Choice {
    /// Microphone.
    pub microphone: String,
    /// Speaker for the call's audio.
    pub speaker: String,
    /// Ringer.
    pub ringer: String,
}

impl Choice {
    /// The id chosen for `role`.
    pub fn get(&self, role: Role) -> &str {
        match role {
            Role::Microphone => &self.microphone,
            Role::Speaker => &self.speaker,
            Role::Ringer => &self.ringer,
        }
    }
}

/// The `devicechange` and gesture listeners, kept for the page's life.
type Listeners = Vec<Closure<dyn FnMut()>>;
/// What moves the calls to the effective microphone or speaker (given by `phone.rs`).
type Apply = Rc<dyn Fn(Role)>;

thread_local! {
    static LIST: ArcRwSignal<DeviceList> = ArcRwSignal::new(DeviceList::default());
    static CHOICE: ArcRwSignal<Choice> = ArcRwSignal::new(Choice {
        microphone: stored(MICROPHONE_KEY).unwrap_or_default(),
        speaker: stored(SPEAKER_KEY).unwrap_or_default(),
        ringer: stored(RINGER_KEY).unwrap_or_default(),
    });
    static CONTEXT: RefCell<Option<AudioContext>> = const { RefCell::new(None) };
    static RINGING: RefCell<Option<Ringtone>> = const { RefCell::new(None) };
    static LISTENING: RefCell<Option<Listeners>> = const { RefCell::new(None) };
    static ON_APPLY: RefCell<Option<Apply>> = const { RefCell::new(None) };
}

/// The devices the picker lists (reactive).
pub fn list() -> ArcRwSignal<DeviceList> {
    LIST.with(Clone::clone)
}

/// The agent's choice (reactive).
pub fn choice() -> ArcRwSignal<Choice> {
    CHOICE.with(Clone::clone)
}

/// A stored choice, if any.
pub fn stored(key: &str) -> Option<String> {
    crate::browser::storage()?
        .get_item(key)
        .ok()?
        .filter(|v| !v.is_empty())
}

/// The id to use for `role` now: the choice when that device is plugged in, else `None` (the
/// system's default). The choice itself stays remembered, so the headset is used again when it
/// comes back.
pub fn effective(role: Role) -> Option<String> {
    let id = choice().get_untracked().get(role).to_owned();
    if id.is_empty() {
        return None;
    }
    let list = list().get_untracked();
    let devices = match role {
        Role::Microphone => &list.inputs,
        Role::Speaker | Role::Ringer => &list.outputs,
    };
    // Before the first listing arrives, trust the stored id.
    (devices.is_empty() || devices.iter().any(|d| d.id == id)).then_some(id)
}

/// Whether this browser can send audio to a chosen output (`HTMLMediaElement.setSinkId`;
/// missing in Firefox before 116 without the pref, and in Safari).
pub fn sink_supported() -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    Reflect::get(&window, &"HTMLMediaElement".into())
        .and_then(|c| Reflect::get(&c, &"prototype".into()))
        .and_then(|p| Reflect::has(&p.unchecked_into(), &"setSinkId".into()))
        .unwrap_or(false)
}

/// Remembers the agent's choice for `role` (empty: the default) and applies it at once.
pub fn choose(role: Role, id: String) {
    if let Some(storage) = crate::browser::storage() {
        let _ = if id.is_empty() {
            storage.remove_item(role.key())
        } else {
            storage.set_item(role.key(), &id)
        };
    }
    choice().update(|c| match role {
        Role::Microphone => c.microphone = id,
        Role::Speaker => c.speaker = id,
        Role::Ringer => c.ringer = id,
    });
    applied(role);
}

/// Listens for `devicechange` and reads the list once (sign-in in SIP mode); also arms
/// [`unlock`] on the agent's first click or key press. `on_apply` moves what plays or records
/// now to the effective microphone or speaker (the phone's calls).
pub fn watch(on_apply: impl Fn(Role) + 'static) {
    ON_APPLY.with(|a| *a.borrow_mut() = Some(Rc::new(on_apply)));
    if LISTENING.with(|l| l.borrow().is_some()) {
        return refresh();
    }
    let mut closures = Vec::new();
    if let Some(media) = media_devices() {
        let changed = Closure::<dyn FnMut()>::new(|| {
            diagnostics::record("softphone: audio devices changed".into());
            refresh();
        });
        let _ = media
            .add_event_listener_with_callback("devicechange", changed.as_ref().unchecked_ref());
        closures.push(changed);
    }
    if let Some(window) = web_sys::window() {
        let gesture = Closure::<dyn FnMut()>::new(unlock);
        for event in ["click", "keydown"] {
            let _ =
                window.add_event_listener_with_callback(event, gesture.as_ref().unchecked_ref());
        }
        closures.push(gesture);
    }
    LISTENING.with(|l| *l.borrow_mut() = Some(closures));
    refresh();
}

fn media_devices() -> Option<web_sys::MediaDevices> {
    web_sys::window()?.navigator().media_devices().ok()
}

/// Reads `enumerateDevices` into [`list`]; a device that came or went applies the choice again
/// (a call in progress moves to the plugged-in headset, or back to the default).
pub fn refresh() {
    let Some(media) = media_devices() else {
        return;
    };
    spawn_local(async move {
        let Ok(promise) = media.enumerate_devices() else {
            return;
        };
        let Ok(found) = JsFuture::from(promise).await else {
            return;
        };
        let mut next = DeviceList::default();
        for info in Array::from(&found).iter() {
            let info: MediaDeviceInfo = info.unchecked_into();
            let device = Device {
                id: info.device_id(),
                label: info.label(),
            };
            match info.kind() {
                MediaDeviceKind::Audioinput => next.inputs.push(device),
                MediaDeviceKind::Audiooutput => next.outputs.push(device),
                _ => {}
            }
        }
        let previous = list().get_untracked();
        if previous == next {
            return;
        }
        list().set(next);
        if !previous.inputs.is_empty() || !previous.outputs.is_empty() {
            for role in [Role::Microphone, Role::Speaker, Role::Ringer] {
                applied(role);
            }
        }
    });
}

/// Applies the effective device of `role` to what is playing or recording now.
fn applied(role: Role) {
    match role {
        Role::Microphone | Role::Speaker => {
            if let Some(apply) = ON_APPLY.with(|a| a.borrow().clone()) {
                apply(role);
            }
        }
        Role::Ringer => RINGING.with(|r| {
            if let Some(r) = r.borrow().as_ref() {
                set_sink(&r.audio, effective(Role::Ringer).as_deref().unwrap_or(""));
            }
        }),
    }
}

/// Plays `audio` on `device_id` ("" for the default); a no-op where `setSinkId` is missing.
pub fn set_sink(audio: &HtmlAudioElement, device_id: &str) {
    if let Ok(f) = Reflect::get(audio, &"setSinkId".into())
        && let Ok(f) = f.dyn_into::<js_sys::Function>()
        && let Ok(promise) = f.call1(audio, &device_id.into())
        && let Ok(promise) = promise.dyn_into::<js_sys::Promise>()
    {
        spawn_local(async move {
            if let Err(e) = JsFuture::from(promise).await {
                let name = Reflect::get(&e, &"name".into())
                    .ok()
                    .and_then(|n| n.as_string())
                    .unwrap_or_default();
                diagnostics::warn(&format!("softphone: setSinkId refused ({name})"));
            }
        });
    }
}

/// The shared audio context, made at the first need.
pub fn context() -> Option<AudioContext> {
    CONTEXT.with(|c| {
        if c.borrow().is_none() {
            *c.borrow_mut() = AudioContext::new().ok();
        }
        c.borrow().clone()
    })
}

/// The agent's gesture: browsers let the audio context start only after one.
pub fn unlock() {
    if let Some(c) = CONTEXT.with(|c| c.borrow().clone())
        && c.state() != AudioContextState::Running
    {
        let _ = c.resume();
    }
}

/// The microphone's level, from a copy of its track (muting the call's track does not silence
/// it, so talking while muted can be noticed).
pub struct LevelMeter {
    analyser: AnalyserNode,
    track: MediaStreamTrack,
    buffer: RefCell<Vec<f32>>,
}

impl LevelMeter {
    /// A meter on `track` (cloned; the clone is stopped on drop).
    pub fn new(track: &MediaStreamTrack) -> Option<LevelMeter> {
        let context = context()?;
        unlock();
        let copy = track.clone();
        let stream = MediaStream::new().ok()?;
        stream.add_track(&copy);
        let source = context.create_media_stream_source(&stream).ok()?;
        let analyser = context.create_analyser().ok()?;
        analyser.set_fft_size(2048);
        source.connect_with_audio_node(&analyser).ok()?;
        let size = analyser.fft_size() as usize;
        Some(LevelMeter {
            analyser,
            track: copy,
            buffer: RefCell::new(vec![0.0; size]),
        })
    }

    /// The level now, dBFS (RMS of the last 2048 samples, about 43 ms at 48 kHz).
    pub fn level_db(&self) -> f64 {
        let mut buffer = self.buffer.borrow_mut();
        self.analyser.get_float_time_domain_data(&mut buffer);
        switchboard_sip::quality::level_db(&buffer)
    }
}

impl Drop for LevelMeter {
    fn drop(&mut self) {
        self.track.stop();
    }
}

/// The ringtone in a hidden `<audio data-switchboard-ringer>` on the ringer device: the file of
/// `telephony.sip.ringtone`, looped (`data-switchboard-ringtone="custom"`), or the generated
/// two-tone ring (440 + 480 Hz, 2 s on, 4 s off, as the North American ring cadence of ITU-T
/// E.180 Suppl. 2) from Web Audio (`"generated"`), which also takes over when the file fails to
/// load or to play.
struct Ringtone {
    audio: HtmlAudioElement,
    _beat: Option<gloo_timers::callback::Interval>,
    _onerror: Option<Closure<dyn FnMut()>>,
}

/// Starts the ringtone (an incoming SIP call rings in this tab): `custom`, the configured file's
/// absolute URL, or the generated ring. A no-op if it already rings.
pub fn start_ringing(custom: Option<String>) {
    if RINGING.with(|r| r.borrow().is_some()) {
        return;
    }
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(audio) = document.create_element("audio") else {
        return;
    };
    let audio: HtmlAudioElement = audio.unchecked_into();
    let _ = audio.set_attribute("data-switchboard-ringer", "");
    let _ = audio.set_attribute("hidden", "");
    if let Some(body) = document.body() {
        let _ = body.append_child(&audio);
    }
    set_sink(&audio, effective(Role::Ringer).as_deref().unwrap_or(""));
    let Some(url) = custom else {
        let beat = generated(&audio);
        RINGING.with(|r| {
            *r.borrow_mut() = Some(Ringtone {
                audio,
                _beat: beat,
                _onerror: None,
            })
        });
        return;
    };
    let _ = audio.set_attribute("data-switchboard-ringtone", "custom");
    audio.set_loop(true);
    audio.set_src(&url);
    // A file that does not load (404, not audio, blocked by the CSP) fires `error`.
    let failed = audio.clone();
    let onerror = Closure::<dyn FnMut()>::new(move || fall_back(&failed));
    audio.set_onerror(Some(onerror.as_ref().unchecked_ref()));
    if let Ok(playing) = audio.play() {
        let failed = audio.clone();
        spawn_local(async move {
            if JsFuture::from(playing).await.is_err() {
                fall_back(&failed);
            }
        });
    }
    RINGING.with(|r| {
        *r.borrow_mut() = Some(Ringtone {
            audio,
            _beat: None,
            _onerror: Some(onerror),
        })
    });
}

/// The configured file failed: the same element plays the generated ring instead, if it is
/// still the one ringing.
fn fall_back(audio: &HtmlAudioElement) {
    let ringing = RINGING.with(|r| r.borrow().as_ref().is_some_and(|r| r.audio == *audio));
    if !ringing || audio.get_attribute("data-switchboard-ringtone").as_deref() != Some("custom") {
        return;
    }
    crate::diagnostics::warn(
        "the configured ringtone could not be played: the generated one rings",
    );
    audio.set_onerror(None);
    audio.set_loop(false);
    let _ = audio.remove_attribute("src");
    let beat = generated(audio);
    RINGING.with(|r| {
        if let Some(r) = r.borrow_mut().as_mut() {
            r._beat = beat;
        }
    });
}

/// Plays the generated two-tone ring into `audio`; the interval that repeats it every 6 s.
fn generated(audio: &HtmlAudioElement) -> Option<gloo_timers::callback::Interval> {
    let _ = audio.set_attribute("data-switchboard-ringtone", "generated");
    let context = context()?;
    let destination = context.create_media_stream_destination().ok()?;
    audio.set_src_object(Some(&destination.stream()));
    let _ = audio.play();
    let ring = move || {
        let at = context.current_time();
        for freq in [440.0, 480.0] {
            let (Ok(osc), Ok(gain)) = (context.create_oscillator(), context.create_gain()) else {
                return;
            };
            osc.frequency().set_value(freq);
            gain.gain().set_value(0.1);
            let _ = osc.connect_with_audio_node(&gain);
            let _ = gain.connect_with_audio_node(&destination);
            let _ = osc.start_with_when(at);
            let _ = osc.stop_with_when(at + 2.0);
        }
    };
    ring();
    Some(gloo_timers::callback::Interval::new(6000, ring))
}

/// Stops the ringtone (answered, rejected, cancelled, taken elsewhere).
pub fn stop_ringing() {
    if let Some(r) = RINGING.with(|r| r.borrow_mut().take()) {
        let _ = r.audio.pause();
        r.audio.set_onerror(None);
        r.audio.set_src_object(None);
        let _ = r.audio.remove_attribute("src");
        r.audio.remove();
    }
}
