//! The Diagnostics drawer, for the agent to hand to support: connection state, transport, hub
//! URL, user, versions, language, the last problems and the log, with Copy (clipboard) and
//! Download (a `.txt` file). Props and callbacks only: what it shows and the report come from
//! the callbacks (`support.rs`, `diagnostics.rs`), redacted there (no tokens, phone numbers or
//! e-mail addresses). Nothing here is rendered as HTML.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::i18n::strings;
use crate::support::SOFTPHONE_FACTS;

/// Lines of the log shown in the drawer (Copy and Download carry all of it).
const SHOWN_LINES: usize = 40;

/// The drawer. Its contents refresh with `tick` (every second) while it is open.
#[component]
pub fn DiagnosticsDrawer(
    /// Changes every second: the open drawer reads everything again.
    #[prop(into)]
    tick: Signal<f64>,
    /// The `(name, value)` facts; shown by position: connection, transport, hub, user,
    /// versions, language (0, 1, 2, 4, 5, 7).
    facts: Callback<(), Vec<(&'static str, String)>>,
    /// The last warnings and errors, newest first.
    problems: Callback<(), Vec<String>>,
    /// The whole log, oldest line first.
    log: Callback<(), String>,
    /// The support report (facts and log), for Download.
    report: Callback<(), String>,
    /// Copy: puts the report on the clipboard, then answers whether that worked.
    on_copy: Callback<Callback<bool>>,
    /// Told `true` when the drawer opens and `false` when it closes (the display clock ticks
    /// every second only while something on screen shows seconds).
    #[prop(optional)]
    on_open: Option<Callback<bool>>,
) -> impl IntoView {
    let t = strings();
    let open = RwSignal::new(false);
    if let Some(on_open) = on_open {
        Effect::new(move |was: Option<bool>| {
            let now = open.get();
            if was.is_some_and(|w| w != now) || (was.is_none() && now) {
                on_open.run(now);
            }
            now
        });
    }
    let status = RwSignal::new(None::<&'static str>);
    let copied = Callback::new(move |done: bool| {
        status.set(Some(if done { t.copied } else { t.copy_failed }));
    });
    let body = move || {
        if !open.get() {
            return None;
        }
        tick.track();
        let (facts, problems, log) = (facts.run(()), problems.run(()), log.run(()));
        // The split build awaits the chunk; the default build calls it directly (an `async`
        // path there would cost ~5 KB gzipped of Suspend machinery for nothing).
        #[cfg(feature = "split")]
        let body = Suspend::new(async move {
            drawer_body(facts, problems, log, status, copied, on_copy, report).await
        })
        .into_any();
        #[cfg(not(feature = "split"))]
        let body = drawer_body(facts, problems, log, status, copied, on_copy, report);
        Some(body)
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

/// The open drawer's contents. With the `split` feature (`SWITCHBOARD_SPLIT=1
/// scripts/build-widget`, docs/size.md) a `#[lazy]` split point: its code is a wasm chunk of
/// its own, fetched the first time the drawer opens (the macro makes it `async`); without it,
/// a plain function.
#[cfg_attr(feature = "split", leptos::lazy)]
fn drawer_body(
    facts: Vec<(&'static str, String)>,
    problems: Vec<String>,
    log: String,
    status: RwSignal<Option<&'static str>>,
    copied: Callback<bool>,
    on_copy: Callback<Callback<bool>>,
    report: Callback<(), String>,
) -> AnyView {
    let t = strings();
    let copy = move |_| on_copy.run(copied);
    // The report is written when the link is followed, not at every refresh of the drawer.
    let download = move |ev: leptos::ev::MouseEvent| {
        let Some(link) = ev
            .current_target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        else {
            return;
        };
        let report = report.run(());
        let href = [
            "data:text/plain;charset=utf-8,",
            &String::from(js_sys::encode_uri_component(&report)),
        ]
        .concat();
        let _ = link.set_attribute("href", &href);
    };
    let shown = [
        (t.diag_connection, 0),
        (t.diag_transport, 1),
        (t.diag_hub, 2),
        (t.diag_user, 4),
        (t.diag_versions, 5),
        (t.diag_language, 7),
    ];
    let tail: Vec<&str> = log.lines().rev().take(SHOWN_LINES).collect();
    let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
    view! {
        <dl class="diag__facts">
            {shown.into_iter().map(|(label, i)| view! {
                <dt>{label}</dt>
                <dd>{facts[i].1.clone()}</dd>
            }).collect_view()}
            // The softphone's (SIP mode): the line, the call's audio and its quality.
            {facts.iter().skip(SOFTPHONE_FACTS).map(|(name, value)| view! {
                <dt>{crate::softphone::fact_label(name)}</dt>
                <dd>{value.clone()}</dd>
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
    }
    .into_any()
}
