//! The support log in the browser: `switchboard_core::diagnostics::Log` (bounded to 1,000 lines,
//! redacted when recorded: no tokens, phone numbers or e-mail addresses), each line mirrored to
//! the console at its level (`console.debug/info/warn/error`). `window.switchboardDiagnostics()`
//! returns the log as text, one line per entry; the Diagnostics panel (`ui/diagnostics.rs`)
//! shows it with the connection facts and lets the agent copy or download the report.
//!
//! The console mirror is written in a task of its own (`browser::next_task`, lines batched): a
//! console call costs ~0.3 ms while DevTools or an automation client listens, and an incoming
//! call logs several lines before its dialog is built (issue 17, "notification latency"). The
//! log itself is written at once.

use std::cell::{Cell, RefCell};

use switchboard_core::diagnostics::{Level, Log};
use wasm_bindgen::closure::Closure;

thread_local! {
    static LOG: RefCell<Log> = RefCell::new(Log::default());
    static COUNT: Cell<u64> = const { Cell::new(0) };
    /// Lines (redacted) waiting for the console, and whether their flush is scheduled.
    static CONSOLE: RefCell<(Vec<(Level, String)>, bool)> = const { RefCell::new((Vec::new(), false)) };
}

/// Writes the waiting lines to the console, each at its level, oldest first.
fn flush_console() {
    let lines = CONSOLE.with(|c| {
        let mut c = c.borrow_mut();
        c.1 = false;
        std::mem::take(&mut c.0)
    });
    for (level, text) in lines {
        let line = text.as_str().into();
        match level {
            Level::Debug => web_sys::console::debug_1(&line),
            Level::Info => web_sys::console::info_1(&line),
            Level::Warn => web_sys::console::warn_1(&line),
            Level::Error => web_sys::console::error_1(&line),
        }
    }
}

fn since_load_ms() -> u64 {
    crate::browser::since_load_ms() as u64 // an integer: float formatting would cost ~10 KB of wasm
}

/// Appends a line at `level` (redacted first) and mirrors it to the console in the next task.
pub fn log(level: Level, text: &str) {
    let ms = since_load_ms();
    let line = LOG.with(|log| {
        let mut log = log.borrow_mut();
        log.push(ms, level, text);
        log.entries().next_back().map(|entry| entry.text.clone())
    });
    COUNT.with(|c| c.set(c.get() + 1));
    let Some(line) = line else { return };
    let schedule = CONSOLE.with(|c| {
        let mut c = c.borrow_mut();
        c.0.push((level, line));
        !std::mem::replace(&mut c.1, true)
    });
    if schedule {
        crate::browser::next_task(flush_console);
    }
}

/// An `INFO` line: what happened (states, transport, calls by id, sign-in steps).
pub fn record(line: String) {
    log(Level::Info, &line);
}

/// A `WARN` line: input refused, a call failed.
pub fn warn(text: &str) {
    log(Level::Warn, text);
}

/// How many lines were ever recorded: the panel refreshes when it changes.
pub fn count() -> u64 {
    COUNT.with(Cell::get)
}

/// The whole log, oldest line first.
pub fn text() -> String {
    LOG.with(|log| {
        log.borrow()
            .entries()
            .map(|e| e.line())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// The last `n` warnings and errors, newest first, as lines.
pub fn problems(n: usize) -> Vec<String> {
    LOG.with(|log| log.borrow().problems(n).iter().map(|e| e.line()).collect())
}

/// The support report: `facts` (`name`, value), then the log; redacted.
pub fn report(facts: &[(&str, String)]) -> String {
    LOG.with(|log| log.borrow().report(facts))
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
