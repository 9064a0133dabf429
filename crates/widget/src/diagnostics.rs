//! A bounded in-memory log for support: connection states, the transport in use, resumes,
//! hub targets received (with call ids), and failures. Never tokens, never phone numbers or
//! names. `window.switchboardDiagnostics()` returns it as text, one line per entry, so an agent
//! (or a test) can copy it.

use std::cell::RefCell;
use std::collections::VecDeque;

use wasm_bindgen::closure::Closure;

/// Lines kept; older lines are dropped first.
pub const MAX_LINES: usize = 500;

thread_local! {
    static LOG: RefCell<VecDeque<String>> = const { RefCell::new(VecDeque::new()) };
}

/// Appends a line, stamped with milliseconds since the page loaded.
pub fn record(line: String) {
    let ms = web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0) as u64; // an integer: float formatting would cost ~10 KB of wasm
    LOG.with(|log| {
        let mut log = log.borrow_mut();
        if log.len() == MAX_LINES {
            log.pop_front();
        }
        log.push_back(format!("{ms:>9} {line}"));
    });
}

/// The whole log, oldest line first.
pub fn text() -> String {
    LOG.with(|log| {
        log.borrow()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Exposes `window.switchboardDiagnostics()`.
pub fn install() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let getter = Closure::<dyn Fn() -> String>::new(text);
    let _ = js_sys::Reflect::set(&window, &"switchboardDiagnostics".into(), getter.as_ref());
    getter.forget();
}
