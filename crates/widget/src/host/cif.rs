//! Dynamics 365 Channel Integration Framework (`Microsoft.CIFramework`).
//!
//! Loading, the supported way: `msdyn_ciLibrary.js` from the `ucilib` query parameter (only
//! when its origin is allow-listed: a script URL from the query string would otherwise run
//! anyone's code) or from `{crmUrl}/webresources/Widget/msdyn_ciLibrary.js`, with `data-crmurl`
//! and `data-cifid="CIFMainLibrary"`; the `CIFInitDone` listener is registered before the
//! script runs. Then `setClickToAct(true)`, the event handlers, and `getEnvironment()`, whose
//! `customParams` (JSON) may name the templates and whose `username` (the Dynamics user's UPN)
//! is the login hint for MSAL's `ssoSilent` (`Host::user`).
//!
//! CIF 2.0: caller lookup (`searchAndOpenRecords`, search only) → `notifyEvent` toast →
//! Accept / Reject / Timeout; `cancelEvent` when the call stops ringing otherwise; on accept
//! `createSession`; a `task` for rejected and missed calls, a `phonecall` for finished ones.
//! CIF 1.0 (no `notifyEvent` in the library): the widget's own dialog, `setMode(1)` to show
//! it, and the screen pop by `searchAndOpenRecords(…, false)`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;
use switchboard_core::host::{self as core, CifNames, Customer, NotifyResult, PageContext};
use switchboard_core::{CallRecord, Config, IncomingCall, Outcome};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use super::{Adapter, Host, HostCallbacks, call, get, load_script, settle, to_js, warn};

pub struct Cif {
    names: RefCell<CifNames>,
    /// `Microsoft.CIFramework`, once `CIFInitDone` fired.
    api: RefCell<Option<JsValue>>,
    /// CIF 2.0 (toasts and sessions) or 1.0.
    v2: Cell<bool>,
    /// The call whose toast is up (its cancellation token is the call id).
    toast: RefCell<Option<String>>,
    /// The ringing call, for the task logged if it is not taken.
    ringing: RefCell<Option<IncomingCall>>,
    /// The caller found for the ringing call.
    customer: RefCell<Option<(String, Customer)>>,
    host: Host,
    callbacks: HostCallbacks,
}

fn framework() -> Option<JsValue> {
    let w: JsValue = web_sys::window()?.into();
    let f = get(&get(&w, "Microsoft"), "CIFramework");
    (!f.is_undefined() && !f.is_null()).then_some(f)
}

/// Awaits a call in the background, logging a failure.
fn fire(what: &'static str, result: Result<JsValue, JsValue>) {
    spawn_local(async move {
        log_failure(what, settle(result).await);
    });
}

fn log_failure(what: &str, result: Result<String, String>) -> Option<String> {
    result
        .map_err(|e| warn(&["CIF ", what, " failed: ", &e].concat()))
        .ok()
}

impl Cif {
    pub(super) fn start(
        host: Host,
        config: &Config,
        page: &PageContext,
        allowed: &[String],
        callbacks: HostCallbacks,
    ) -> Rc<Self> {
        let this = Rc::new(Self {
            names: RefCell::new(config.host_options.cif.clone()),
            api: RefCell::new(None),
            v2: Cell::new(true),
            toast: RefCell::new(None),
            ringing: RefCell::new(None),
            customer: RefCell::new(None),
            host,
            callbacks,
        });
        let crm = config.host_options.crm_url.clone();
        let library = match (&page.ucilib, &crm) {
            (Some(u), _)
                if core::url_origin(u).is_some_and(|o| core::origin_allowed(o, allowed)) =>
            {
                Some(u.clone())
            }
            (Some(u), _) => {
                warn(&["CIF: ucilib ignored, its origin is not in hostOrigins: ", u].concat());
                None
            }
            (None, Some(crm)) => {
                Some([crm.as_str(), "/webresources/Widget/msdyn_ciLibrary.js"].concat())
            }
            (None, None) => None,
        };
        let me = this.clone();
        let on_init = Closure::once_into_js(move || me.init());
        let window = web_sys::window().expect("a window");
        let _ = window.add_event_listener_with_callback("CIFInitDone", on_init.unchecked_ref());
        match (framework(), library) {
            // The page loaded the library itself: its CIFInitDone may be over.
            (Some(_), _) => this.clone().init(),
            (None, Some(src)) => {
                let crm_origin = crm
                    .as_deref()
                    .and_then(core::url_origin)
                    .or_else(|| core::url_origin(&src))
                    .unwrap_or_default()
                    .to_owned();
                load_script(
                    &src,
                    &[
                        ("data-crmurl", &crm_origin),
                        ("data-cifid", "CIFMainLibrary"),
                    ],
                    || {},
                );
            }
            (None, None) => warn("CIF: no msdyn_ciLibrary.js (ucilib or crmUrl) to load"),
        }
        this
    }

    /// After `CIFInitDone` (once).
    fn init(self: Rc<Self>) {
        if self.api.borrow().is_some() {
            return;
        }
        let Some(api) = framework() else {
            return warn("CIF: CIFInitDone without Microsoft.CIFramework");
        };
        self.v2.set(get(&api, "notifyEvent").is_function());
        *self.api.borrow_mut() = Some(api.clone());
        crate::diagnostics::record(if self.v2.get() {
            "CIF 2.0 ready".into()
        } else {
            "CIF 1.0 ready".to_owned()
        });
        let _ = call(&api, "setClickToAct", &[JsValue::TRUE]);
        for name in [
            "onclicktoact",
            "onmodechanged",
            "onsizechanged",
            "onsessionswitched",
            "onsessionclosed",
        ] {
            let me = self.clone();
            let handler = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |data: JsValue| {
                me.on_event(name, &data.as_string().unwrap_or_default());
                js_sys::Promise::resolve(&JsValue::TRUE).into()
            })
            .into_js_value();
            // addHandler returns undefined: not awaited.
            let _ = call(&api, "addHandler", &[name.into(), handler]);
        }
        let me = self.clone();
        spawn_local(async move {
            let env = log_failure(
                "getEnvironment",
                settle(call(&api, "getEnvironment", &[])).await,
            );
            // The Dynamics user (UPN): MSAL's login hint. Set even without one, so sign-in
            // stops waiting.
            me.host.user.set(Some(
                env.as_deref().and_then(core::cif_environment_username),
            ));
            if let Some(env) = env {
                me.apply_custom_params(&env);
                me.apply_language(&env);
            }
            if let Some(mode) = settle(call(&api, "getMode", &[]))
                .await
                .ok()
                .and_then(|m| m.parse().ok())
            {
                me.host.mode.set(Some(mode));
            }
        });
    }

    /// The Dynamics user's language: `userLcid` (a Windows LCID, number or numeric text).
    fn apply_language(&self, environment: &str) {
        let lcid = serde_json::from_str::<Value>(environment)
            .ok()
            .and_then(|e| {
                let lcid = e.get("userLcid")?;
                lcid.as_u64()
                    .or_else(|| lcid.as_str().and_then(|s| s.trim().parse().ok()))
            });
        if let Some(tag) = lcid
            .and_then(|l| u32::try_from(l).ok())
            .and_then(switchboard_core::i18n::lcid_to_tag)
        {
            self.host.language.set(Some(tag.to_owned()));
        }
    }

    /// `customParams` of the channel provider, when it is a JSON object with CIF names
    /// (`notificationTemplate`, `sessionTemplate`, `phoneFields`).
    fn apply_custom_params(&self, environment: &str) {
        let params = serde_json::from_str::<Value>(environment)
            .ok()
            .and_then(|e| {
                e.get("customParams")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .and_then(|p| serde_json::from_str::<Value>(&p).ok());
        let Some(params @ Value::Object(_)) = params else {
            return;
        };
        let mut root = serde_json::Map::new();
        root.insert("cif".into(), params);
        match core::HostOptions::from_root(&root) {
            Ok(options) => {
                let names = &mut *self.names.borrow_mut();
                let default = CifNames::default();
                // Only what customParams sets overrides config.json.
                if options.cif.notification_template != default.notification_template {
                    names.notification_template = options.cif.notification_template;
                }
                if options.cif.session_template != default.session_template {
                    names.session_template = options.cif.session_template;
                }
                if options.cif.phone_fields != default.phone_fields {
                    names.phone_fields = options.cif.phone_fields;
                }
            }
            Err(e) => warn(&["CIF customParams: ", &e].concat()),
        }
    }

    fn on_event(&self, name: &str, data: &str) {
        match name {
            "onclicktoact" => match core::cif_click_to_act_number(data) {
                Some(number) => self.callbacks.dial.run(number),
                None => warn("CIF onclicktoact: not a phone number"),
            },
            "onmodechanged" => self.host.mode.set(core::cif_event_number(data)),
            "onsizechanged" => self.host.width.set(core::cif_event_number(data)),
            "onsessionswitched" => {
                let v: Value = serde_json::from_str(data).unwrap_or_default();
                if v.get("focused").and_then(Value::as_bool) != Some(false) {
                    let id = v
                        .get("sessionId")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    self.host.session.set(id);
                }
            }
            _ => {
                let v: Value = serde_json::from_str(data).unwrap_or_default();
                let closed = v.get("sessionId").and_then(Value::as_str);
                if closed.is_some() && closed == self.host.session.get_untracked().as_deref() {
                    self.host.session.set(None);
                }
            }
        }
    }

    fn api(&self) -> Option<JsValue> {
        self.api.borrow().clone()
    }

    /// Takes the toast of `call_id` down (`cancelEvent`) if it is still up.
    fn cancel_toast(&self, call_id: &str) {
        let up = self.toast.borrow().as_deref() == Some(call_id);
        if let (true, Some(api)) = (up, self.api()) {
            *self.toast.borrow_mut() = None;
            fire("cancelEvent", call(&api, "cancelEvent", &[call_id.into()]));
        }
    }

    fn customer_for(&self, call_id: &str) -> Option<Customer> {
        self.customer
            .borrow()
            .as_ref()
            .filter(|(id, _)| id == call_id)
            .map(|(_, c)| c.clone())
    }

    fn create_record(&self, entity: &str, data: Value) {
        if let Some(api) = self.api() {
            let p = call(
                &api,
                "createRecord",
                &[
                    entity.into(),
                    serde_json::to_string(&data).unwrap_or_default().into(),
                ],
            );
            fire("createRecord", p);
        }
    }
}

impl Adapter for Cif {
    fn ringing(self: Rc<Self>, call_: &IncomingCall, call_id: &str) {
        let Some(api) = self.api() else {
            return warn("CIF: a call rang before CIFInitDone");
        };
        let (incoming, id) = (call_.clone(), call_id.to_owned());
        *self.ringing.borrow_mut() = Some(incoming.clone());
        spawn_local(async move {
            let query =
                core::cif_caller_query(&incoming.phone_number, &self.names.borrow().phone_fields);
            let found = settle(call(
                &api,
                "searchAndOpenRecords",
                &["contact".into(), query.into(), JsValue::TRUE],
            ))
            .await;
            let customer =
                log_failure("searchAndOpenRecords", found).and_then(|r| core::cif_customer(&r));
            if let Some(c) = &customer {
                *self.customer.borrow_mut() = Some((id.clone(), c.clone()));
                // The widget names the caller after the CRM record when the telephony side
                // did not.
                self.callbacks
                    .caller_found
                    .run((id.clone(), c.name.clone()));
            }
            if !self.v2.get() {
                // CIF 1.0: the widget's own dialog; make sure the panel shows it.
                let _ = call(&api, "setMode", &[JsValue::from(1)]);
                return;
            }
            let input =
                core::cif_notify_input(&self.names.borrow(), &incoming, &id, customer.as_ref());
            *self.toast.borrow_mut() = Some(id.clone());
            let result = settle(call(&api, "notifyEvent", &[to_js(&input)])).await;
            // Cancelled meanwhile (accepted or rejected in the widget, caller gone): nothing to do.
            if self.toast.borrow().as_deref() != Some(id.as_str()) {
                return;
            }
            *self.toast.borrow_mut() = None;
            match log_failure("notifyEvent", result).and_then(|r| core::cif_notify_result(&r)) {
                Some(NotifyResult::Accept { .. }) => self.callbacks.accept.run(()),
                Some(NotifyResult::Reject { .. }) => self.callbacks.reject.run(()),
                Some(NotifyResult::Timeout) => self.callbacks.timeout.run(()),
                None => {}
            }
        });
    }

    fn accepted(self: Rc<Self>, incoming: &IncomingCall, call_id: &str) {
        self.cancel_toast(call_id);
        self.ringing.borrow_mut().take();
        let Some(api) = self.api() else { return };
        let customer = self.customer_for(call_id);
        if self.v2.get() {
            let input =
                core::cif_session_input(&self.names.borrow(), incoming, call_id, customer.as_ref());
            let p = call(&api, "createSession", &[to_js(&input)]);
            let session = self.host.session;
            spawn_local(async move {
                if let Some(id) = log_failure("createSession", settle(p).await) {
                    session.set(Some(id.trim_matches('"').to_owned()));
                }
            });
        } else {
            // CIF 1.0 screen pop: open the caller's record (or the search page).
            let query =
                core::cif_caller_query(&incoming.phone_number, &self.names.borrow().phone_fields);
            let p = call(
                &api,
                "searchAndOpenRecords",
                &["contact".into(), query.into(), JsValue::FALSE],
            );
            fire("searchAndOpenRecords", p);
        }
    }

    fn dismissed(self: Rc<Self>, call_id: &str, outcome: &Outcome) {
        self.cancel_toast(call_id);
        let ringing = self.ringing.borrow_mut().take();
        if let (Some(incoming), Outcome::Rejected | Outcome::Missed) = (ringing, outcome) {
            let task = core::cif_missed_task(&incoming, call_id, core::outcome_word(outcome));
            self.create_record("task", task);
        }
    }

    fn call_ended(self: Rc<Self>, record: &CallRecord) {
        self.create_record("phonecall", core::cif_phonecall(record));
    }
}
