//! One SIP registration per agent and browser (issue 14, multi-tab): the tabs and windows of
//! an agent ask for the exclusive Web Lock `switchboard-sip:<user>`
//! (<https://w3c.github.io/web-locks/#api-lock-manager-request>); only the holder registers, so
//! only it receives INVITEs and rings, and only it carries a call's media. The browser hands the
//! lock to the next tab when the holder closes, signs out or pops out (the pop-out window then
//! takes the line), so some tab always holds the line. Where Web Locks are missing (an insecure
//! origin, an old browser), every tab registers, as before.

use crate::tabs::{Grant, WebLock};

/// This tab's claim on the line; dropping it lets the next tab have it (sign-out, pop-out).
pub struct LineLock {
    _lock: WebLock,
}

impl LineLock {
    /// Asks for the line of `user`; `granted` runs once this tab holds it (at once where Web
    /// Locks are missing or refused).
    pub fn claim(user: &str, granted: impl FnOnce() + 'static) -> LineLock {
        let lock = WebLock::claim(&format!("switchboard-sip:{user}"), move |grant| {
            match grant {
                Grant::Held => {
                    crate::diagnostics::record("softphone: this tab holds the SIP line".into())
                }
                Grant::Refused => crate::diagnostics::record(
                    "softphone: no Web Lock here: this tab registers".into(),
                ),
                Grant::Unsupported => {}
            }
            granted();
        });
        LineLock { _lock: lock }
    }
}
