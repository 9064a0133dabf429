//! Salesforce Open CTI (Lightning, `sforce.opencti`). Salesforce frames the softphone with
//! `?sfdcIframeOrigin=https://<org>.lightning.force.com&mode=Lightning`; the library is loaded
//! from that origin (`/support/api/62.0/lightning/opencti_min.js`) only when it is allow-listed
//! (`hostOrigins`). Then `enableClickToDial` + `onClickToDial` → dial;
//! `setSoftphonePanelVisibility({visible: true})` on ring; `searchAndScreenPop` on accept;
//! `saveLog` (a completed call Task) and `refreshView` on call end.

use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value;
use switchboard_core::host::{self as core, PageContext};
use switchboard_core::{CallRecord, IncomingCall};
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;

use super::{Adapter, HostCallbacks, call, from_js, get, load_script, to_js, warn};

/// The Open CTI API version loaded.
pub const API_VERSION: &str = "62.0";

pub struct OpenCti {
    api: Rc<RefCell<Option<JsValue>>>,
}

fn opencti() -> Option<JsValue> {
    let w: JsValue = web_sys::window()?.into();
    let api = get(&get(&w, "sforce"), "opencti");
    (!api.is_undefined() && !api.is_null()).then_some(api)
}

/// `{callback}` logging failures (Open CTI answers `{success, returnValue, errors}`).
fn with_callback(args: &Value, what: &'static str) -> JsValue {
    let args = to_js(args);
    let callback = Closure::once_into_js(move |response: JsValue| {
        if get(&response, "success") != JsValue::TRUE {
            warn(
                &[
                    "Open CTI ",
                    what,
                    " failed: ",
                    &serde_json::to_string(&from_js(&get(&response, "errors"))).unwrap_or_default(),
                ]
                .concat(),
            );
        }
    });
    let _ = js_sys::Reflect::set(&args, &"callback".into(), &callback);
    args
}

impl OpenCti {
    pub(super) fn start(
        page: &PageContext,
        allowed: &[String],
        callbacks: HostCallbacks,
    ) -> Rc<Self> {
        let this = Rc::new(Self {
            api: Rc::new(RefCell::new(None)),
        });
        let api = this.api.clone();
        let init = move || {
            let Some(sforce) = opencti() else {
                return warn("Open CTI: opencti_min.js loaded without sforce.opencti");
            };
            let _ = call(
                &sforce,
                "enableClickToDial",
                &[with_callback(
                    &Value::Object(Default::default()),
                    "enableClickToDial",
                )],
            );
            let listener = Closure::<dyn FnMut(JsValue)>::new(move |payload: JsValue| {
                match core::opencti_click_number(&from_js(&payload)) {
                    Some(number) => callbacks.dial.run(number),
                    None => warn("Open CTI onClickToDial: no number"),
                }
            })
            .into_js_value();
            let args = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&args, &"listener".into(), &listener);
            let _ = call(&sforce, "onClickToDial", &[args.into()]);
            let _ = call(&sforce, "notifyInitializationComplete", &[]);
            *api.borrow_mut() = Some(sforce);
            crate::diagnostics::record("Open CTI ready".into());
        };
        if opencti().is_some() {
            init();
            return this;
        }
        match page
            .sfdc_iframe_origin
            .as_deref()
            .and_then(core::url_origin)
        {
            Some(origin) if core::origin_allowed(origin, allowed) => {
                let src = [
                    origin,
                    "/support/api/",
                    API_VERSION,
                    "/lightning/opencti_min.js",
                ]
                .concat();
                load_script(&src, &[], init);
            }
            Some(origin) => {
                warn(&["Open CTI: sfdcIframeOrigin not in hostOrigins: ", origin].concat())
            }
            None => warn("Open CTI: no sfdcIframeOrigin to load opencti_min.js from"),
        }
        this
    }

    fn invoke(&self, method: &str, args: &Value, what: &'static str) {
        if let Some(api) = self.api.borrow().as_ref()
            && call(api, method, &[with_callback(args, what)]).is_err()
        {
            warn(&["Open CTI ", what, " is not available"].concat());
        }
    }
}

impl Adapter for OpenCti {
    fn ringing(self: Rc<Self>, _call: &IncomingCall, _call_id: &str) {
        self.invoke(
            "setSoftphonePanelVisibility",
            &serde_json::json!({ "visible": true }),
            "setSoftphonePanelVisibility",
        );
    }

    fn accepted(self: Rc<Self>, incoming: &IncomingCall, call_id: &str) {
        let mut args = core::opencti_search(incoming, call_id);
        // sforce.opencti.CALL_TYPE.INBOUND, when the library defines it.
        if let Some(api) = self.api.borrow().as_ref()
            && let Some(t) = get(&get(api, "CALL_TYPE"), "INBOUND").as_string()
        {
            args["callType"] = t.into();
        }
        self.invoke("searchAndScreenPop", &args, "searchAndScreenPop");
    }

    fn call_ended(self: Rc<Self>, record: &CallRecord) {
        self.invoke(
            "saveLog",
            &serde_json::json!({ "value": core::opencti_log(record) }),
            "saveLog",
        );
        self.invoke("refreshView", &serde_json::json!({}), "refreshView");
    }
}
