//! Any CRM over postMessage (`docs/host-protocol.md`): the host sends `SYNC`, the widget answers
//! `SYNC_ACK` to that origin and from then on posts its events there, never to `*`. Messages
//! from origins outside the allow-list (`hostOrigins`, plus the widget's own) or from another
//! window than the parent are ignored and logged.

use leptos::prelude::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::{Value, json};
use switchboard_core::host::{self as core, Command, Envelope, HostKind};
use switchboard_core::{CallRecord, IncomingCall, Outcome};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use super::{Adapter, Host, HostCallbacks, from_js, to_js, warn};

pub struct PostMessage {
    /// The origin that sent `SYNC` (allow-listed), where events go.
    target: RefCell<Option<String>>,
    next_id: Cell<u32>,
}

impl PostMessage {
    pub(super) fn start(host: Host, allowed: Vec<String>, callbacks: HostCallbacks) -> Rc<Self> {
        let this = Rc::new(Self {
            target: RefCell::new(None),
            next_id: Cell::new(0),
        });
        let me = this.clone();
        let listener =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                me.on_message(&e, &allowed, host, callbacks);
            });
        if let Some(w) = web_sys::window() {
            let _ =
                w.add_event_listener_with_callback("message", listener.as_ref().unchecked_ref());
        }
        listener.forget();
        this
    }

    fn on_message(
        &self,
        e: &web_sys::MessageEvent,
        allowed: &[String],
        host: Host,
        callbacks: HostCallbacks,
    ) {
        let origin = e.origin();
        let window = web_sys::window().expect("a window");
        let from_parent = match (e.source(), window.parent().ok().flatten()) {
            (Some(source), Some(parent)) => js_sys::Object::is(&source, &parent),
            _ => false,
        };
        if !core::origin_allowed(&origin, allowed) || !from_parent {
            warn(
                &[
                    "host: ignored a message from ",
                    &origin,
                    " (not an allowed parent origin)",
                ]
                .concat(),
            );
            return;
        }
        let envelope = match Envelope::parse(&from_js(&e.data())) {
            Ok(envelope) => envelope,
            Err(_) => {
                return warn("host: ignored a message that is not {type, messageId, payload}");
            }
        };
        match core::parse_command(&envelope) {
            Ok(Command::Sync { locale, theme }) => {
                *self.target.borrow_mut() = Some(origin);
                if locale.is_some() {
                    host.language.set(locale);
                }
                if theme.is_some() {
                    host.theme.set(theme);
                }
                self.post_value(&core::sync_ack(&envelope.message_id, HostKind::PostMessage));
            }
            // Commands count only after the handshake, from the origin that made it.
            _ if self.target.borrow().as_deref() != Some(origin.as_str()) => {
                warn("host: ignored a command before SYNC");
            }
            Ok(Command::Dial(number)) => callbacks.dial.run(number),
            Ok(Command::Accept) => callbacks.accept.run(()),
            Ok(Command::Reject) => callbacks.reject.run(()),
            Ok(Command::SetPresence(choice)) => callbacks.set_presence.run(choice),
            Ok(Command::SetVisibility(visible)) => host.visible.set(visible),
            Ok(Command::Unknown(kind)) => {
                self.error(&envelope.message_id, &["unknown type ", &kind].concat())
            }
            Err(text) => self.error(&envelope.message_id, text),
        }
    }

    fn error(&self, message_id: &str, text: &str) {
        self.post_value(
            &json!({ "type": "ERROR", "messageId": message_id, "payload": { "message": text } }),
        );
    }

    /// Posts an event with a fresh `messageId` (`sb-1`, `sb-2`, …).
    fn event(&self, kind: &str, payload: Value) {
        let n = self.next_id.get() + 1;
        self.next_id.set(n);
        let envelope = Envelope {
            kind: kind.to_owned(),
            message_id: ["sb-", &n.to_string()].concat(),
            payload,
        };
        self.post_value(&envelope.to_value());
    }

    /// Posts to the synced origin only; before `SYNC` nothing is sent.
    fn post_value(&self, value: &Value) {
        let Some(origin) = self.target.borrow().clone() else {
            return;
        };
        if let Some(parent) = web_sys::window().and_then(|w| w.parent().ok().flatten()) {
            let _ = parent.post_message(&to_js(value), &origin);
        }
    }
}

impl Adapter for PostMessage {
    fn ringing(self: Rc<Self>, call: &IncomingCall, call_id: &str) {
        self.event("INCOMING_CALL", core::incoming_call_payload(call, call_id));
    }

    fn accepted(self: Rc<Self>, _call: &IncomingCall, call_id: &str) {
        self.event("CALL_ANSWERED", json!({ "callId": call_id }));
    }

    fn dismissed(self: Rc<Self>, call_id: &str, outcome: &Outcome) {
        self.event(
            "CALL_DISMISSED",
            json!({ "callId": call_id, "outcome": core::outcome_word(outcome) }),
        );
    }

    fn call_ended(self: Rc<Self>, record: &CallRecord) {
        self.event("CALL_ENDED", record.to_value());
    }

    fn presence_changed(self: Rc<Self>, choice: &str, teams: Option<(&str, &str)>) {
        let mut payload = json!({ "state": choice.strip_prefix("state:") });
        if let Some((availability, activity)) = teams {
            payload["availability"] = json!(availability);
            payload["activity"] = json!(activity);
        }
        self.event("PRESENCE_CHANGED", payload);
    }
}
