//! The Diagnostics drawer, for the agent to hand to support: connection state, transport, hub
//! URL, host, user, versions, language, the last problems and the log (`diagnostics.rs`), with
//! Copy (clipboard) and Download (a `.txt` file). The report is redacted: no tokens, phone
//! numbers or e-mail addresses. Nothing here is rendered as HTML.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};

use crate::app::Widget;
use crate::diagnostics;
use crate::i18n::strings;

/// Lines of the log shown in the drawer (Copy and Download carry all of it).
const SHOWN_LINES: usize = 40;

/// `(name, value)` facts about this widget, with English names (support reads them).
fn facts(widget: Widget) -> Vec<(&'static str, String)> {
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
    facts.extend(crate::softphone::facts());
    facts
}

fn copy_to_clipboard(text: String) -> Result<js_sys::Promise, JsValue> {
    let navigator = web_sys::window().ok_or(JsValue::NULL)?.navigator();
    let clipboard = js_sys::Reflect::get(&navigator, &"clipboard".into())?;
    let write: js_sys::Function =
        js_sys::Reflect::get(&clipboard, &"writeText".into())?.dyn_into()?;
    write.call1(&clipboard, &text.into())?.dyn_into()
}

/// The drawer. Its contents refresh every second while it is open.
#[component]
pub fn DiagnosticsDrawer(widget: Widget) -> impl IntoView {
    let t = strings();
    let open = RwSignal::new(false);
    let status = RwSignal::new(None::<&'static str>);
    let copy = move |_| {
        let report = diagnostics::report(&facts(widget));
        spawn_local(async move {
            let done = match copy_to_clipboard(report) {
                Ok(promise) => wasm_bindgen_futures::JsFuture::from(promise).await.is_ok(),
                Err(_) => false,
            };
            status.set(Some(if done { t.copied } else { t.copy_failed }));
        });
    };
    // The report is written when the link is followed, not at every refresh of the drawer.
    let download = move |ev: leptos::ev::MouseEvent| {
        let Some(link) = ev
            .current_target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        else {
            return;
        };
        let report = diagnostics::report(&facts(widget));
        let href = [
            "data:text/plain;charset=utf-8,",
            &String::from(js_sys::encode_uri_component(&report)),
        ]
        .concat();
        let _ = link.set_attribute("href", &href);
    };
    let body = move || {
        if !open.get() {
            return None;
        }
        widget.now_ms.track();
        let facts = facts(widget);
        let shown = [
            (t.diag_connection, 0),
            (t.diag_transport, 1),
            (t.diag_hub, 2),
            (t.diag_user, 4),
            (t.diag_versions, 5),
            (t.diag_language, 7),
        ];
        let problems = diagnostics::problems(5);
        let log = diagnostics::text();
        let tail: Vec<&str> = log.lines().rev().take(SHOWN_LINES).collect();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
        Some(view! {
            <dl class="diag__facts">
                {shown.into_iter().map(|(label, i)| view! {
                    <dt>{label}</dt>
                    <dd>{facts[i].1.clone()}</dd>
                }).collect_view()}
            </dl>
            <h3 class="diag__heading">{t.diag_errors}</h3>
            {if problems.is_empty() {
                view! { <p class="muted">{t.diag_no_errors}</p> }.into_any()
            } else {
                view! { <ul class="diag__problems">{problems.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}</ul> }.into_any()
            }}
            <h3 class="diag__heading">{t.diag_log}</h3>
            <pre class="diag__log" dir="ltr" tabindex="0" aria-label=t.diag_log>{tail}</pre>
            <p class="muted">{t.diag_redacted}</p>
            <div class="row">
                <button type="button" class="btn btn--secondary" on:click=copy>{t.copy}</button>
                <a class="btn btn--secondary" href="#" download="switchboard-diagnostics.txt" on:click=download>{t.download}</a>
            </div>
            {move || status.get().map(|s| view! { <p role="status" class="muted">{s}</p> })}
        })
    };
    view! {
        <details class="panel team diag" on:toggle=move |ev| {
            let details: web_sys::HtmlDetailsElement = event_target(&ev);
            open.set(details.open());
            status.set(None);
        }>
            <summary class="team__summary">{t.diagnostics}</summary>
            {body}
        </details>
    }
}
