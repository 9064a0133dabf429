//! The CRM host around the widget (issue 5): one [`Host`] with one adapter per host, chosen by
//! `config.host` (`auto` detects; `?host=` overrides for dev and tests, see
//! [`switchboard_core::host::detect`]).
//!
//! The app calls the hooks ([`Host::ringing`], [`Host::accepted`], [`Host::dismissed`],
//! [`Host::call_ended`], [`Host::presence_changed`]); the host's commands come back through the
//! [`HostCallbacks`] given to [`Host::start`]. Message shapes are in `switchboard_core::host`
//! (native tests); the adapters only call the browser:
//! - [`cif`]: Dynamics 365 `Microsoft.CIFramework` (2.0, and 1.0 without toast or sessions);
//! - [`postmessage`]: any CRM over `docs/host-protocol.md`;
//! - [`opencti`]: Salesforce `sforce.opencti`;
//! - [`standalone`]: a tab of its own (Notification, ringtone, title, `tel:` links).

use std::rc::Rc;

use leptos::prelude::*;
use serde_json::Value;
use switchboard_core::host::{HostKind, PageContext};
use switchboard_core::{CallRecord, Config, Desk, IncomingCall, Outcome};
use wasm_bindgen::{JsCast, JsValue};

use crate::browser::query_param;

pub mod cif;
pub mod opencti;
pub mod postmessage;
pub mod standalone;

/// What the host may ask of the widget.
#[derive(Clone, Copy)]
pub struct HostCallbacks {
    /// Place a call (click-to-act, onClickToDial, `DIAL`, a `tel:` link).
    pub dial: Callback<String>,
    /// Accept / reject the ringing call (the CIF toast, `ACCEPT` / `REJECT`).
    pub accept: Callback<()>,
    pub reject: Callback<()>,
    /// The host's notification timed out: the call is missed.
    pub timeout: Callback<()>,
    /// A presence choice, `state:<agent state>` or `teams:<availability>`.
    pub set_presence: Callback<String>,
    /// The CRM found the caller of a call: `(call id, the record's name)`.
    pub caller_found: Callback<(String, String)>,
}

/// What every adapter may do; the defaults do nothing.
trait Adapter {
    fn ringing(self: Rc<Self>, _call: &IncomingCall, _call_id: &str) {}
    fn accepted(self: Rc<Self>, _call: &IncomingCall, _call_id: &str) {}
    fn dismissed(self: Rc<Self>, _call_id: &str, _outcome: &Outcome) {}
    fn call_ended(self: Rc<Self>, _record: &CallRecord) {}
    fn presence_changed(self: Rc<Self>, _choice: &str, _teams: Option<(&str, &str)>) {}
}

/// The host, as the app holds it. `Copy`: signal handles.
#[derive(Clone, Copy)]
pub struct Host {
    /// Which adapter runs (`None` until config.json is read).
    pub kind: RwSignal<Option<HostKind>>,
    /// CIF panel mode (0 minimized, 1 docked, 2 hidden) and width, from `onmodechanged` /
    /// `onsizechanged`.
    pub mode: RwSignal<Option<i64>>,
    pub width: RwSignal<Option<i64>>,
    /// The focused CIF session (`onsessionswitched`; cleared by `onsessionclosed`) or the one
    /// created for the call.
    pub session: RwSignal<Option<String>>,
    /// Whether the host shows the widget (postMessage `SET_VISIBILITY`).
    pub visible: RwSignal<bool>,
    /// A hint for the agent from the host (the standalone ringtone waiting for a click).
    pub hint: RwSignal<Option<&'static str>>,
    /// A number to dial once connected (a `tel:` link opened the tab).
    pub pending_dial: RwSignal<Option<String>>,
    /// The language of the host's user as a BCP 47 tag (CIF `getEnvironment().userLcid`,
    /// postMessage `SYNC` `locale`); the widget speaks it unless config.json or `?lang=` says
    /// otherwise.
    pub language: RwSignal<Option<String>>,
    /// The host's theme, `light` or `dark` (postMessage `SYNC` `theme`); `None` follows the
    /// system (`prefers-color-scheme`).
    pub theme: RwSignal<Option<&'static str>>,
    /// The host's signed-in user, the login hint for `ssoSilent`: `None` until the host has
    /// said, `Some(None)` when it answered without one (CIF `getEnvironment().username`).
    pub user: RwSignal<Option<Option<String>>>,
    adapter: StoredValue<Option<Rc<dyn Adapter>>, LocalStorage>,
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

impl Host {
    pub fn new() -> Self {
        Self {
            kind: RwSignal::new(None),
            mode: RwSignal::new(None),
            width: RwSignal::new(None),
            session: RwSignal::new(None),
            visible: RwSignal::new(true),
            hint: RwSignal::new(None),
            pending_dial: RwSignal::new(None),
            language: RwSignal::new(None),
            theme: RwSignal::new(None),
            user: RwSignal::new(None),
            adapter: StoredValue::new_local(None),
        }
    }

    /// Detects the host and starts its adapter.
    pub fn start(self, config: &Config, callbacks: HostCallbacks) {
        let allowed = allowed_origins(config);
        let page = page_context();
        let kind = switchboard_core::host::detect(&config.host, &page, &allowed);
        crate::diagnostics::record(["host: ", kind.as_str()].concat());
        let adapter: Rc<dyn Adapter> = match kind {
            HostKind::Cif => cif::Cif::start(self, config, &page, &allowed, callbacks),
            HostKind::PostMessage => postmessage::PostMessage::start(self, allowed, callbacks),
            HostKind::OpenCti => opencti::OpenCti::start(&page, &allowed, callbacks),
            HostKind::Standalone => standalone::Standalone::start(self),
        };
        self.adapter.set_value(Some(adapter));
        self.kind.set(Some(kind));
    }

    fn adapter(self) -> Option<Rc<dyn Adapter>> {
        self.adapter.get_value()
    }

    /// A call rings here (`Desk::offer` returned `Ring`).
    pub fn ringing(self, call: &IncomingCall, call_id: &str) {
        if let Some(a) = self.adapter() {
            a.ringing(call, call_id);
        }
    }

    /// The agent accepted the call (here or in the host).
    pub fn accepted(self, call: &IncomingCall, call_id: &str) {
        if let Some(a) = self.adapter() {
            a.accepted(call, call_id);
        }
    }

    /// Ringing ended without being accepted here (rejected, missed, the caller hung up,
    /// answered elsewhere).
    pub fn dismissed(self, call_id: &str, outcome: &Outcome) {
        if let Some(a) = self.adapter() {
            a.dismissed(call_id, outcome);
        }
    }

    /// A finished call, after wrap-up: the host logs it.
    pub fn call_ended(self, record: &CallRecord) {
        if let Some(a) = self.adapter() {
            a.call_ended(record);
        }
    }

    /// The agent's own presence changed: `choice` is `state:<agent state>` or
    /// `teams:<availability>`, `teams` the Teams (availability, activity).
    pub fn presence_changed(self, choice: &str, teams: Option<(&str, &str)>) {
        if let Some(a) = self.adapter() {
            a.presence_changed(choice, teams);
        }
    }

    /// Tells the adapter what a desk transition changed (`before` from [`desk_ids`]): a call
    /// rings, the ringing call was accepted or dismissed, the call in progress ended.
    ///
    /// The adapter hears of it in the next task ([`crate::browser::next_task`], in order):
    /// the widget's own view (the ringing dialog) is built first, and the host's work (a
    /// flashing title, a ringtone, a CRM notification) follows (issue 17, "notification
    /// latency").
    pub fn after_transition(self, desk: &Desk, before: (Option<String>, Option<String>)) {
        let (ringing, _) = before;
        let now = desk_ids(desk);
        if let (Some(r), true) = (desk.ringing(), now.0 != ringing) {
            let (call, id) = (r.call.clone(), r.call_id.clone());
            crate::browser::next_task(move || self.ringing(&call, &id));
        }
        if let Some(id) = ringing.filter(|id| now.0.as_ref() != Some(id)) {
            match desk.active().filter(|a| a.call_id() == id) {
                Some(a) => {
                    let party = a.party.clone();
                    crate::browser::next_task(move || self.accepted(&party, &id));
                }
                None => {
                    if let Some((outcome, _)) = desk.last_outcome() {
                        let outcome = outcome.clone();
                        crate::browser::next_task(move || self.dismissed(&id, &outcome));
                    }
                }
            }
        }
        // The call in progress ending reaches the host after wrap-up (`Widget::finish_wrap_up`
        // calls `call_ended` with the agent's notes and disposition).
    }

    /// Takes the number a `tel:` link asked for, once.
    pub fn take_pending_dial(self) -> Option<String> {
        let n = self.pending_dial.get_untracked()?;
        self.pending_dial.set(None);
        Some(n)
    }
}

/// The ids of the ringing call and of the call in progress.
pub fn desk_ids(desk: &Desk) -> (Option<String>, Option<String>) {
    (
        desk.ringing().map(|r| r.call_id.clone()),
        desk.active().map(|a| a.call_id().to_owned()),
    )
}

/// `hostOrigins` and `crmUrl`, plus the widget's own origin (a same-origin parent can script
/// the widget anyway).
fn allowed_origins(config: &Config) -> Vec<String> {
    let mut allowed = config.host_options.origins.clone();
    if let Some(own) = web_sys::window().and_then(|w| w.location().origin().ok()) {
        allowed.push(own);
    }
    allowed
}

fn page_context() -> PageContext {
    let window = web_sys::window().expect("a window");
    let framed = window
        .parent()
        .ok()
        .flatten()
        .is_some_and(|p| !js_sys::Object::is(&p, &window));
    // Chromium and Safari name the parent's origin in ancestorOrigins; Firefox only has the
    // referrer, whose origin is taken.
    let ancestor = get(&get(&window.location(), "ancestorOrigins"), "0").as_string();
    let referrer = window
        .document()
        .map(|d| d.referrer())
        .and_then(|r| switchboard_core::host::url_origin(&r).map(str::to_owned));
    PageContext {
        host_param: query_param("host"),
        ucilib: query_param("ucilib"),
        sfdc_iframe_origin: query_param("sfdcIframeOrigin"),
        mode: query_param("mode"),
        framed,
        parent_origin: if framed { ancestor.or(referrer) } else { None },
    }
}

// --- the thin JS seam shared by the adapters ------------------------------------------------

pub(crate) fn get(object: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `object[method](...args)`; `Err` when it is not a function or throws.
pub(crate) fn call(object: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: js_sys::Function = get(object, method).dyn_into()?;
    js_sys::Reflect::apply(&f, object, &args.iter().collect::<js_sys::Array>())
}

/// A JSON value as a plain JS object (structured like the API expects).
pub(crate) fn to_js(value: &Value) -> JsValue {
    js_sys::JSON::parse(&serde_json::to_string(value).unwrap_or_default()).unwrap_or(JsValue::NULL)
}

/// A JS value as JSON (`null` for what JSON cannot hold).
pub(crate) fn from_js(value: &JsValue) -> Value {
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// Awaits a call's promise (or plain value); a string result as is, anything else as JSON
/// text. Errors as text (CIF rejects with JSON strings or Maps).
pub(crate) async fn settle(result: Result<JsValue, JsValue>) -> Result<String, String> {
    let text = |v: &JsValue| {
        v.as_string()
            .unwrap_or_else(|| serde_json::to_string(&from_js(v)).unwrap_or_default())
    };
    let value = result.map_err(|e| text(&e))?;
    let value = match value.dyn_into::<js_sys::Promise>() {
        Ok(p) => wasm_bindgen_futures::JsFuture::from(p)
            .await
            .map_err(|e| text(&e))?,
        Err(v) => v,
    };
    Ok(text(&value))
}

/// Adds `<script src>` with `data-*` attributes; `on_load` runs once it has loaded.
pub(crate) fn load_script(src: &str, data: &[(&str, &str)], on_load: impl FnOnce() + 'static) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(script) = document.create_element("script") else {
        return;
    };
    let _ = script.set_attribute("src", src);
    for (k, v) in data {
        let _ = script.set_attribute(k, v);
    }
    let loaded = wasm_bindgen::closure::Closure::once_into_js(on_load);
    let _ = script.add_event_listener_with_callback("load", loaded.unchecked_ref());
    if let Some(head) = document.body() {
        let _ = head.append_child(&script);
    }
}

pub(crate) fn warn(text: &str) {
    crate::diagnostics::warn(text);
}
