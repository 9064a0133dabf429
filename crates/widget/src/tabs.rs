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

/// How a [`WebLock`] claim came to run its callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The browser granted the lock: this tab holds it until the [`WebLock`] is dropped.
    Held,
    /// No Web Locks API here (an insecure origin, an old browser): every tab acts alone.
    Unsupported,
    /// The browser refused the request (e.g. a sandboxed or storage-less frame).
    Refused,
}

/// What runs once a [`WebLock`] claim is settled.
type OnGrant = Box<dyn FnOnce(Grant)>;

/// A claim on an exclusive Web Lock (`navigator.locks.request(name, callback)`), held from the
/// grant until this value is dropped or the tab closes; dropping it while still waiting gives
/// up the claim (the lock is handed straight on if it arrives later).
pub struct WebLock {
    cancelled: Rc<Cell<bool>>,
    release: Rc<RefCell<Option<Function>>>,
}

impl WebLock {
    /// Asks for the lock `name`; `granted` runs once: when the browser grants it, or at once
    /// (before this returns) where the API is missing, or when the browser refuses it.
    pub fn claim(name: &str, granted: impl FnOnce(Grant) + 'static) -> WebLock {
        let cancelled = Rc::new(Cell::new(false));
        let release: Rc<RefCell<Option<Function>>> = Rc::new(RefCell::new(None));
        let granted: Rc<RefCell<Option<OnGrant>>> = Rc::new(RefCell::new(Some(Box::new(granted))));
        let run = move |grant: Grant| {
            if let Some(f) = granted.borrow_mut().take() {
                f(grant);
            }
        };
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
            run(Grant::Unsupported);
            return WebLock { cancelled, release };
        };
        let grant = {
            let (cancelled, release, run) = (cancelled.clone(), release.clone(), run.clone());
            Closure::<dyn FnMut(JsValue) -> Promise>::new(move |_lock| {
                if cancelled.get() {
                    // Given up while waiting: hand the lock straight on.
                    return Promise::resolve(&JsValue::NULL);
                }
                run(Grant::Held);
                let release = release.clone();
                // Held until `release` resolves this promise (drop) or the tab closes.
                Promise::new(&mut |resolve, _| {
                    *release.borrow_mut() = Some(resolve);
                })
            })
        };
        match request
            .call2(&locks, &name.into(), grant.as_ref())
            .and_then(|p| p.dyn_into::<Promise>())
        {
            Ok(promise) => {
                let run = run.clone();
                let refused = Closure::<dyn FnMut(JsValue)>::new(move |_| run(Grant::Refused));
                let _ = promise.catch(&refused);
                refused.forget();
            }
            Err(_) => run(Grant::Refused),
        }
        // The browser may call it long after the claim was dropped: it lives as long as the page.
        grant.forget();
        WebLock { cancelled, release }
    }
}

impl Drop for WebLock {
    /// Gives the lock to the next tab (or gives up the claim while still waiting).
    fn drop(&mut self) {
        self.cancelled.set(true);
        if let Some(resolve) = self.release.borrow_mut().take() {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }
}

/// This tab's claim on the ringer lock.
pub struct Ringer {
    held: Rc<Cell<bool>>,
    _lock: WebLock,
}

impl Ringer {
    /// Asks for the lock of `user`; [`is_ringer`](Self::is_ringer) turns true once granted.
    /// Where the browser refuses the lock or has no Web Locks, this tab rings. `became_ringer`
    /// runs once, right after this tab starts to ring (in a later task when the browser grants
    /// the lock, possibly much later when another tab held it; before `claim` returns where
    /// there are no Web Locks): an offer that came before was left to another tab, so the
    /// caller asks the hub for the calls again then. Never runs if the claim is dropped first.
    pub fn claim(user: &str, became_ringer: impl FnOnce() + 'static) -> Self {
        let held = Rc::new(Cell::new(false));
        let lock = {
            let held = held.clone();
            WebLock::claim(&format!("switchboard-ringer:{user}"), move |grant| {
                held.set(true);
                match grant {
                    Grant::Held => {
                        crate::diagnostics::record("this tab rings for incoming calls".into())
                    }
                    Grant::Refused => {
                        crate::diagnostics::record("no Web Lock here: this tab rings".into())
                    }
                    Grant::Unsupported => {}
                }
                became_ringer();
            })
        };
        Self { held, _lock: lock }
    }

    /// Whether this tab rings.
    pub fn is_ringer(&self) -> bool {
        self.held.get()
    }
}

impl Drop for Ringer {
    /// Stops ringing here; the lock (dropped next) goes to the next tab (sign-out).
    fn drop(&mut self) {
        self.held.set(false);
    }
}
