//! Light or dark: `?theme=`, else the host's (postMessage `SYNC`), else the system's (no
//! `data-theme` attribute on the root element: `prefers-color-scheme` decides).

use leptos::prelude::*;

use crate::browser::query_param;
use crate::host::Host;

/// Keeps the root element's `data-theme` in step with the host's theme.
pub fn follow(host: Host) {
    Effect::new(move |_| {
        let theme =
            switchboard_core::host::theme(query_param("theme").as_deref()).or(host.theme.get());
        if let Some(root) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        {
            let _ = match theme {
                Some(theme) => root.set_attribute("data-theme", theme),
                None => root.remove_attribute("data-theme"),
            };
        }
    });
}
