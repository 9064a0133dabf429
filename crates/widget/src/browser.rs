//! Small browser helpers the rest of the widget shares: the clock, `localStorage`, the page's
//! query parameters and document events. No state of the widget's own.

use wasm_bindgen::JsCast;

/// The widget's clock: Unix milliseconds (`Date.now()`), for call timers and records alike.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Milliseconds since the page loaded (`performance.now()`): a monotonic clock for the SignalR
/// core and the diagnostics log; 0 without one.
pub fn since_load_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = performance, js_name = mark)]
    fn performance_mark(name: &str) -> Result<(), wasm_bindgen::JsValue>;
}

/// A User Timing mark (`performance.mark(name)`, W3C User Timing Level 3 §3.1.1) on the
/// start-up path (`switchboard:mounted`, `switchboard:config`, `switchboard:hub-start`,
/// `switchboard:desk`), read by `scripts/bench` for its cold-start breakdown and visible in
/// the browser's performance panel. Nothing happens where the API is missing.
pub fn mark(name: &str) {
    let _ = performance_mark(name);
}

/// This origin's `localStorage`, when the browser allows it.
pub fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// A query parameter of the page (`?lang=de`); `None` when absent or blank.
pub fn query_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
        .filter(|v| !v.trim().is_empty())
}

/// Listens to a document event for the page's lifetime.
pub fn on_document(event: &str, handler: impl Fn() + 'static) {
    let closure = wasm_bindgen::closure::Closure::<dyn Fn()>::new(handler);
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        let _ = document.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    }
    closure.forget();
}
