//! One SIP registration per agent and browser (issue 14, multi-tab): the tabs and windows of
//! an agent ask for the exclusive Web Lock `switchboard-sip:<user>`
//! (<https://w3c.github.io/web-locks/#api-lock-manager-request>); only the holder registers, so
//! only it receives INVITEs and rings, and only it carries a call's media. The browser hands the
//! lock to the next tab when the holder closes, signs out or pops out (the pop-out window then
//! takes the line), so some tab always holds the line. Where Web Locks are missing (an insecure
//! origin, an old browser), every tab registers, as before.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;

/// What runs once the line is this tab's.
type Granted = Box<dyn FnOnce()>;

/// This tab's claim on the line; dropping it lets the next tab have it.
pub struct LineLock {
    cancelled: Rc<Cell<bool>>,
    release: Rc<RefCell<Option<Function>>>,
}

impl LineLock {
    /// Asks for the line of `user`; `granted` runs once this tab holds it (at once where Web
    /// Locks are missing or refused).
    pub fn claim(user: &str, granted: impl FnOnce() + 'static) -> LineLock {
        let cancelled = Rc::new(Cell::new(false));
        let release: Rc<RefCell<Option<Function>>> = Rc::new(RefCell::new(None));
        let granted: Rc<RefCell<Option<Granted>>> = Rc::new(RefCell::new(Some(Box::new(granted))));
        let run = {
            let granted = granted.clone();
            move || {
                if let Some(f) = granted.borrow_mut().take() {
                    f();
                }
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
            run();
            return LineLock { cancelled, release };
        };
        let grant = {
            let (cancelled, release, run) = (cancelled.clone(), release.clone(), run.clone());
            Closure::<dyn FnMut(JsValue) -> Promise>::new(move |_lock| {
                if cancelled.get() {
                    // Stopped while waiting: hand the lock straight on.
                    return Promise::resolve(&JsValue::NULL);
                }
                crate::diagnostics::record("softphone: this tab holds the SIP line".into());
                run();
                let release = release.clone();
                Promise::new(&mut |resolve, _| {
                    *release.borrow_mut() = Some(resolve);
                })
            })
        };
        let name = format!("switchboard-sip:{user}");
        match request
            .call2(&locks, &name.into(), grant.as_ref())
            .and_then(|p| p.dyn_into::<Promise>())
        {
            Ok(promise) => {
                let refused = Closure::<dyn FnMut(JsValue)>::new(move |_| {
                    crate::diagnostics::record(
                        "softphone: no Web Lock here: this tab registers".into(),
                    );
                    run();
                });
                let _ = promise.catch(&refused);
                refused.forget();
            }
            Err(_) => run(),
        }
        // The browser may call it long after this tab stopped: it lives as long as the page.
        grant.forget();
        LineLock { cancelled, release }
    }
}

impl Drop for LineLock {
    /// Lets the next tab have the line (sign-out, pop-out).
    fn drop(&mut self) {
        self.cancelled.set(true);
        if let Some(resolve) = self.release.borrow_mut().take() {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }
}
