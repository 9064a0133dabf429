//! Keyboard shortcuts (Alt+Shift+letter; `ui/call.rs` lists them). The control that offers a
//! shortcut says so in `aria-keyshortcuts`; the key presses it (a disabled button ignores the
//! click) or focuses it (a text box), so a shortcut does exactly what its button does.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Listens for the shortcuts for the page's lifetime.
pub fn install() {
    let _ = window_event_listener(leptos::ev::keydown, move |ev| shortcut(&ev));
}

fn shortcut(ev: &web_sys::KeyboardEvent) {
    if !(ev.alt_key() && ev.shift_key()) || ev.ctrl_key() || ev.meta_key() {
        return;
    }
    let code = ev.code();
    let Some(letter) = code.strip_prefix("Key").filter(|l| l.len() == 1) else {
        return;
    };
    // Controls kept mounted but hidden (the dial pad during a call) do not count.
    let selector = format!("[aria-keyshortcuts=\"Alt+Shift+{letter}\"]:not([hidden], [hidden] *)");
    let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector(&selector).ok().flatten())
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    else {
        return;
    };
    ev.prevent_default();
    if el.tag_name() == "INPUT" {
        let _ = el.focus();
    } else {
        el.click();
    }
}
