//! The widget in a tab of its own: a browser `Notification` with the caller while the tab is
//! hidden (permission asked at the agent's first click or key press, never at load), a Web
//! Audio ringtone (unlocked by that same gesture; until then a visible hint says to click),
//! the title flashing, and `navigator.registerProtocolHandler("tel", …)` so `tel:` links open
//! the widget with `?dial=`.

use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::callback::Interval;
use switchboard_core::{IncomingCall, Outcome};
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;

use super::{Adapter, Host, call, get};
use crate::i18n::strings;

#[derive(Default)]
struct Ring {
    title: Option<String>,
    flash: Option<Interval>,
    tone: Option<Interval>,
    notification: Option<JsValue>,
}

pub struct Standalone {
    host: Host,
    audio: RefCell<Option<JsValue>>,
    ring: RefCell<Ring>,
}

fn window() -> JsValue {
    web_sys::window().map(JsValue::from).unwrap_or_default()
}

fn notification_class() -> JsValue {
    get(&window(), "Notification")
}

impl Standalone {
    pub(super) fn start(host: Host) -> Rc<Self> {
        let this = Rc::new(Self {
            host,
            audio: RefCell::new(None),
            ring: RefCell::new(Ring::default()),
        });
        // tel: links open the widget with ?dial=tel:…
        if let Some(origin) = web_sys::window().and_then(|w| w.location().origin().ok()) {
            let url = [origin.as_str(), "/?dial=%s"].concat();
            let navigator = get(&window(), "navigator");
            let _ = call(
                &navigator,
                "registerProtocolHandler",
                &["tel".into(), url.into()],
            );
        }
        if let Some(number) = crate::browser::query_param("dial") {
            let number = number.strip_prefix("tel:").unwrap_or(&number).to_owned();
            host.pending_dial.set(Some(number));
        }
        let me = this.clone();
        let gesture = Closure::<dyn FnMut()>::new(move || me.clone().unlock()).into_js_value();
        // `click`, not `pointerdown`: unlocking removes the ringtone hint above the call area,
        // and removing it between a press and its release would move the Accept button from
        // under the pointer, so the agent's first click on Accept would be lost (issue 18).
        for event in ["click", "keydown"] {
            let _ = call(
                &window(),
                "addEventListener",
                &[event.into(), gesture.clone()],
            );
        }
        this
    }

    /// The agent's gesture: the audio context may start, the permission may be asked.
    fn unlock(self: Rc<Self>) {
        let context = self.context();
        if let Some(c) = &context {
            let _ = call(c, "resume", &[]);
        }
        let class = notification_class();
        if get(&class, "permission").as_string().as_deref() == Some("default") {
            let _ = call(&class, "requestPermission", &[]);
        }
        if self.host.hint.get_untracked().is_some() {
            self.host.hint.set(None);
            self.start_tone();
        }
    }

    /// The audio context, made at the first need.
    fn context(&self) -> Option<JsValue> {
        if self.audio.borrow().is_none() {
            let class = get(&window(), "AudioContext");
            let class: js_sys::Function = wasm_bindgen::JsCast::dyn_into(class).ok()?;
            *self.audio.borrow_mut() =
                js_sys::Reflect::construct(&class, &js_sys::Array::new()).ok();
        }
        self.audio.borrow().clone()
    }

    /// A two-tone ring every 3 s while ringing.
    fn start_tone(self: Rc<Self>) {
        // The softphone rings on the agent's ringer device itself (SIP mode).
        if crate::softphone::owns_calls() {
            return;
        }
        let Some(context) = self.context() else {
            return;
        };
        let beep = move || {
            let at = get(&context, "currentTime").as_f64().unwrap_or(0.0);
            for (offset, freq) in [(0.0, 440.0), (0.4, 480.0)] {
                let (Ok(osc), Ok(gain)) = (
                    call(&context, "createOscillator", &[]),
                    call(&context, "createGain", &[]),
                ) else {
                    return;
                };
                let _ =
                    js_sys::Reflect::set(&get(&osc, "frequency"), &"value".into(), &freq.into());
                let _ = js_sys::Reflect::set(&get(&gain, "gain"), &"value".into(), &0.08.into());
                let _ = call(&osc, "connect", std::slice::from_ref(&gain));
                let _ = call(&gain, "connect", &[get(&context, "destination")]);
                let _ = call(&osc, "start", &[(at + offset).into()]);
                let _ = call(&osc, "stop", &[(at + offset + 0.35).into()]);
            }
        };
        beep();
        self.ring.borrow_mut().tone = Some(Interval::new(3000, beep));
    }

    fn stop(&self) {
        let ring = std::mem::take(&mut *self.ring.borrow_mut());
        if let (Some(title), Some(document)) =
            (ring.title, web_sys::window().and_then(|w| w.document()))
        {
            document.set_title(&title);
        }
        if let Some(n) = ring.notification {
            let _ = call(&n, "close", &[]);
        }
        self.host.hint.set(None);
    }
}

impl Adapter for Standalone {
    fn ringing(self: Rc<Self>, incoming: &IncomingCall, call_id: &str) {
        let t = strings();
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        let who = match &incoming.caller_name {
            Some(name) => [name.as_str(), " ", &incoming.phone_number].concat(),
            None => incoming.phone_number.clone(),
        };
        // The tab's title flashes "Incoming call" until the ringing ends.
        let title = document.title();
        let flashing = [t.incoming_call, ": ", &who].concat();
        let (doc, original, mut on) = (document.clone(), title.clone(), false);
        let flash = Interval::new(1000, move || {
            on = !on;
            doc.set_title(if on { &flashing } else { &original });
        });
        document.set_title(&[t.incoming_call, ": ", &who].concat());
        let mut ring = self.ring.borrow_mut();
        ring.title = Some(title);
        ring.flash = Some(flash);
        // A system notification while the tab is hidden.
        let class = notification_class();
        if document.hidden() && get(&class, "permission").as_string().as_deref() == Some("granted")
        {
            let options = super::to_js(
                &serde_json::json!({ "body": who, "tag": call_id, "requireInteraction": true }),
            );
            if let Ok(class) = wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(class) {
                let args = js_sys::Array::of2(&t.incoming_call.into(), &options);
                if let Ok(n) = js_sys::Reflect::construct(&class, &args) {
                    let focus = Closure::<dyn FnMut()>::new(|| {
                        let _ = web_sys::window().map(|w| w.focus());
                    })
                    .into_js_value();
                    let _ = js_sys::Reflect::set(&n, &"onclick".into(), &focus);
                    ring.notification = Some(n);
                }
            }
        }
        drop(ring);
        // The ringtone plays if the page may play sound; otherwise the hint asks for a click.
        let running = self
            .context()
            .is_some_and(|c| get(&c, "state").as_string().as_deref() == Some("running"));
        if running {
            self.start_tone();
        } else {
            self.host.hint.set(Some(t.ringtone_locked));
        }
    }

    fn accepted(self: Rc<Self>, _call: &IncomingCall, _call_id: &str) {
        self.stop();
    }

    fn dismissed(self: Rc<Self>, _call_id: &str, _outcome: &Outcome) {
        self.stop();
    }
}
