//! What the Diagnostics drawer (`ui/diagnostics.rs`) hands to support, read from the widget:
//! the facts about this widget (connection, transport, hub, host, user, versions, browser,
//! language, page, the SIP line), and the clipboard for Copy.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};

use crate::i18n::strings;
use crate::state::Widget;

/// `(name, value)` facts about this widget, with English names (support reads them). The
/// drawer shows some of them by position: connection, transport, hub, user, versions,
/// language (0, 1, 2, 4, 5, 7), and all from [`SOFTPHONE_FACTS`] on (the softphone's).
pub fn facts(widget: Widget) -> Vec<(&'static str, String)> {
    let (hub, host) = widget.config.with_untracked(|c| {
        c.as_ref()
            .map(|c| (c.hub.url.clone(), c.host.clone()))
            .unwrap_or_default()
    });
    let navigator = web_sys::window().map(|w| w.navigator());
    let browser = navigator
        .as_ref()
        .and_then(|n| n.user_agent().ok())
        .unwrap_or_default();
    let msal = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &"msal".into()).ok())
        .filter(|m| !m.is_undefined())
        .and_then(|m| js_sys::Reflect::get(&m, &"version".into()).ok())
        .and_then(|v| v.as_string());
    let mut versions = ["Switchboard ", env!("CARGO_PKG_VERSION")].concat();
    if let Some(msal) = msal {
        versions.push_str(" · msal-browser ");
        versions.push_str(&msal);
    }
    let mut facts = vec![
        (
            "Connection",
            widget.connection.get_untracked().as_str().to_owned(),
        ),
        (
            "Transport",
            widget
                .client
                .get_value()
                .and_then(|c| c.connected_via())
                .unwrap_or_else(|| "-".into()),
        ),
        ("Hub", hub),
        (
            "Host",
            widget
                .host
                .kind
                .get_untracked()
                .map(|k| k.as_str().to_owned())
                .unwrap_or(host),
        ),
        ("User", widget.user.get_untracked().unwrap_or_default()),
        ("Versions", versions),
        ("Browser", browser),
        ("Language", strings().locale.to_owned()),
        (
            "Page",
            web_sys::window()
                .and_then(|w| w.location().pathname().ok())
                .unwrap_or_default(),
        ),
    ];
    debug_assert_eq!(facts.len(), SOFTPHONE_FACTS);
    facts.extend(crate::softphone::facts());
    facts
}

/// Where the softphone's facts start in [`facts`] (after the nine above).
pub const SOFTPHONE_FACTS: usize = 9;

/// The support report: the facts, then the log (redacted).
pub fn report(widget: Widget) -> String {
    crate::diagnostics::report(&facts(widget))
}

fn write_clipboard(text: String) -> Result<js_sys::Promise, JsValue> {
    let navigator = web_sys::window().ok_or(JsValue::NULL)?.navigator();
    let clipboard = js_sys::Reflect::get(&navigator, &"clipboard".into())?;
    let write: js_sys::Function =
        js_sys::Reflect::get(&clipboard, &"writeText".into())?.dyn_into()?;
    write.call1(&clipboard, &text.into())?.dyn_into()
}

/// Copies `text` to the clipboard, then tells `done` whether that worked.
pub fn copy(text: String, done: Callback<bool>) {
    spawn_local(async move {
        let copied = match write_clipboard(text) {
            Ok(promise) => wasm_bindgen_futures::JsFuture::from(promise).await.is_ok(),
            Err(_) => false,
        };
        // The drawer may have been rebuilt meanwhile (a new language): then nobody asks.
        let _ = done.try_run(copied);
    });
}
