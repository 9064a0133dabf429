//! One ringing tab per agent and browser (issue 7, multi-tab).
//!
//! Every tab of the agent gets the hub's `ReceiveNotification`/`IncomingCall`; exactly one
//! must ring. The tabs elect that one with the Web Locks API
//! (<https://w3c.github.io/web-locks/>): each tab asks for the exclusive lock
//! `switchboard-ringer:<user>`; the holder rings, the others stay quiet. The browser grants the
//! lock to the next tab when the holder closes or signs out, so some tab always rings. Answering
//! in the ringing tab reaches the others as `CallUpdated(accepted)`, which they ignore or use to
//! clear a stale offer.
//!
//! Where the API is missing (an insecure origin, an old browser) every tab rings, as before.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;

/// This tab's claim on the ringer lock.
pub struct Ringer {
    held: Rc<Cell<bool>>,
    cancelled: Rc<Cell<bool>>,
    release: Rc<RefCell<Option<Function>>>,
}

impl Ringer {
    /// Asks for the lock of `user`; [`is_ringer`](Self::is_ringer) turns true once granted.
    pub fn claim(user: &str) -> Self {
        let held = Rc::new(Cell::new(false));
        let cancelled = Rc::new(Cell::new(false));
        let release: Rc<RefCell<Option<Function>>> = Rc::new(RefCell::new(None));
        let locks = web_sys::window()
            .map(|w| JsValue::from(w.navigator()))
            .and_then(|n| Reflect::get(&n, &"locks".into()).ok())
            .filter(|l| !l.is_undefined() && !l.is_null());
        let request = locks.as_ref().and_then(|l| {
            Reflect::get(l, &"request".into())
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok())
        });
        let (Some(locks), Some(request)) = (locks, request) else {
            held.set(true);
            return Self {
                held,
                cancelled,
                release,
            };
        };
        let grant = {
            let (held, cancelled, release) = (held.clone(), cancelled.clone(), release.clone());
            Closure::<dyn FnMut(JsValue) -> Promise>::new(move |_lock| {
                if cancelled.get() {
                    // Signed out while waiting: hand the lock straight on.
                    return Promise::resolve(&JsValue::NULL);
                }
                held.set(true);
                crate::diagnostics::record("this tab rings for incoming calls".into());
                let release = release.clone();
                // Held until `release` resolves this promise (sign-out) or the tab closes.
                Promise::new(&mut |resolve, _| {
                    *release.borrow_mut() = Some(resolve);
                })
            })
        };
        let name = format!("switchboard-ringer:{user}");
        // Where the browser refuses the lock (e.g. a sandboxed or storage-less frame), this tab
        // rings, as if there were no Web Locks.
        if let Ok(promise) = request
            .call2(&locks, &name.into(), grant.as_ref())
            .and_then(|p| p.dyn_into::<Promise>())
        {
            let held = held.clone();
            let refused = Closure::<dyn FnMut(JsValue)>::new(move |_| {
                crate::diagnostics::record("no Web Lock here: this tab rings".into());
                held.set(true);
            });
            let _ = promise.catch(&refused);
            refused.forget();
        } else {
            held.set(true);
        }
        // The browser may call it long after this tab signed out: it lives as long as the page.
        grant.forget();
        Self {
            held,
            cancelled,
            release,
        }
    }

    /// Whether this tab rings.
    pub fn is_ringer(&self) -> bool {
        self.held.get()
    }
}

impl Drop for Ringer {
    /// Gives the lock to the next tab (sign-out).
    fn drop(&mut self) {
        self.cancelled.set(true);
        self.held.set(false);
        if let Some(resolve) = self.release.borrow_mut().take() {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }
}
