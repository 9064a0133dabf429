//! The support log in the browser: `switchboard_core::diagnostics::Log` (bounded to 1,000 lines,
//! redacted when recorded: no tokens, phone numbers or e-mail addresses), each line mirrored to
//! the console at its level (`console.debug/info/warn/error`). `window.switchboardDiagnostics()`
//! returns the log as text, one line per entry; the Diagnostics panel (`ui/diagnostics.rs`)
//! shows it with the connection facts and lets the agent copy or download the report.
//!
//! Lines are filed (redacted, into the log) and mirrored to the console in a task of their own
//! (`browser::next_task`, batched): redaction and a console call (~0.3 ms while DevTools or an
//! automation client listens) would otherwise run on the path from a hub frame to the ringing
//! dialog, which logs several lines (issue 17, "notification latency"). A line keeps the time
//! it was recorded at; reading the log ([`text`], [`problems`], [`report`]) files what waits
//! first, so nothing recorded is ever missing from what is read.

use std::cell::{Cell, RefCell};

use switchboard_core::diagnostics::{Level, Log};
use wasm_bindgen::closure::Closure;

/// A line recorded but not filed yet: ms since load, level, the text as given.
type Recorded = (u64, Level, String);

thread_local! {
    static LOG: RefCell<Log> = RefCell::new(Log::default());
    static COUNT: Cell<u64> = const { Cell::new(0) };
    /// Lines recorded but not filed yet, and whether their task is scheduled.
    static PENDING: RefCell<(Vec<Recorded>, bool)> = const { RefCell::new((Vec::new(), false)) };
    /// Filed lines (redacted) waiting for the console.
    static CONSOLE: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
}

/// Files the waiting lines into the log (redacting them) and queues them for the console.
fn file_pending() {
    let pending = PENDING.with(|p| std::mem::take(&mut p.borrow_mut().0));
    if pending.is_empty() {
        return;
    }
    LOG.with(|log| {
        let mut log = log.borrow_mut();
        CONSOLE.with(|c| {
            let mut c = c.borrow_mut();
            for (ms, level, text) in pending {
                log.push(ms, level, &text);
                if let Some(entry) = log.entries().next_back() {
                    c.push((level, entry.text.clone()));
                }
            }
        });
    });
}

/// The scheduled task: files the waiting lines, then writes them to the console, each at its
/// level, oldest first.
fn flush() {
    PENDING.with(|p| p.borrow_mut().1 = false);
    file_pending();
    let lines = CONSOLE.with(|c| std::mem::take(&mut *c.borrow_mut()));
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

/// Records a line at `level`, timed now; it is redacted and filed, and mirrored to the
/// console, in the next task.
pub fn log(level: Level, text: &str) {
    let ms = since_load_ms();
    COUNT.with(|c| c.set(c.get() + 1));
    let schedule = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.0.push((ms, level, text.to_owned()));
        !std::mem::replace(&mut p.1, true)
    });
    if schedule {
        crate::browser::next_task(flush);
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
    file_pending();
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
    file_pending();
    LOG.with(|log| log.borrow().problems(n).iter().map(|e| e.line()).collect())
}

/// The support report: `facts` (`name`, value), then the log; redacted.
pub fn report(facts: &[(&str, String)]) -> String {
    file_pending();
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
