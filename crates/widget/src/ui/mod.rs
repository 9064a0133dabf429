//! Leptos components. They take props and callbacks and do no I/O. Text is always rendered as
//! text (Leptos escapes it); nothing from the hub or the caller is ever inserted as HTML.
//! Roles and names follow the UI contract (DESIGN.md §4).

use leptos::html;
use leptos::prelude::*;
use switchboard_core::{IncomingCall, Outcome};
use switchboard_signalr::ConnectionState;

use crate::i18n::strings;

pub mod call;
pub mod diagnostics;
pub mod presence;

/// A handset, 24×24 (inline SVG: no icon font to download).
/// "Open in a new window" (a box with an arrow leaving it), 24×24.
pub const POP_OUT_PATH: &str = "M14 4h6v6h-2V7.4l-7.3 7.3-1.4-1.4L16.6 6H14V4zM5 6h6v2H6v10h10v-5h2v6a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1z";
pub const PHONE_PATH: &str = "M8.2 5.5l1.6 3.4c.2.4.1.9-.2 1.2l-1.2 1.1a9 9 0 0 0 4.4 4.4l1.1-1.2c.3-.3.8-.4 1.2-.2l3.4 1.6c.5.2.7.7.6 1.2l-.4 1.8c-.1.5-.6.9-1.1.9A13.5 13.5 0 0 1 4.3 6.4c0-.5.4-1 .9-1.1l1.8-.4c.5-.1 1 .1 1.2.6z";
/// A handset laid down (hang up / reject).
pub const HANG_UP_PATH: &str = "M12 9c-2.6 0-5.1.6-7.3 1.7-.5.3-.8.8-.7 1.4l.3 2c.1.6.6 1 1.2 1h2.3c.6 0 1-.4 1.1-1l.3-1.7c1.8-.5 3.8-.5 5.6 0l.3 1.7c.1.6.5 1 1.1 1h2.3c.6 0 1.1-.4 1.2-1l.3-2c.1-.6-.2-1.1-.7-1.4C17.1 9.6 14.6 9 12 9z";

/// The connection indicator: `role="status"` with the state in words and a coloured dot
/// (grey while connecting, green when connected, amber reconnecting, red disconnected).
#[component]
pub fn ConnectionStatus(state: RwSignal<ConnectionState>) -> impl IntoView {
    let t = strings();
    let label = move || match state.get() {
        ConnectionState::Connected => t.connected,
        ConnectionState::Connecting => t.connecting,
        ConnectionState::Reconnecting => t.reconnecting,
        ConnectionState::Disconnected | ConnectionState::Disconnecting => t.disconnected,
    };
    let class = move || {
        let modifier = match state.get() {
            ConnectionState::Connected => "connected",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Reconnecting => "reconnecting",
            ConnectionState::Disconnected | ConnectionState::Disconnecting => "disconnected",
        };
        format!("status status--{modifier}")
    };
    view! {
        <div class=class role="status">
            <span class="status__dot" aria-hidden="true"></span>
            <span class="status__text">{label}</span>
        </div>
    }
}

/// The incoming-call notification: `role="alertdialog"` named "Incoming call", the caller's
/// name and number, a ringing indication with the time left, and Accept / Reject. Accept takes
/// the focus when a call starts ringing, so Enter answers and Tab reaches Reject.
///
/// Built once with the desk and kept: while nothing rings it is `hidden` (out of the page's
/// layout, the accessibility tree and the keyboard shortcuts), and a ring only fills in its
/// texts and shows it, instead of building ~20 elements on the ringing path (issue 17,
/// notification latency). Showing it adds it to the accessibility tree, which is when screen
/// readers announce an alert dialog (WAI-ARIA 1.2, `alertdialog`).
#[component]
pub fn IncomingCallDialog(
    /// The call ringing now, by call id (`None`: nothing rings, the dialog is hidden), with
    /// the caller's name as it stands: the telephony side's, or the CRM record's once the
    /// host's lookup found one (`Desk::name_from_crm`). The focus moves to Accept when this
    /// becomes a call with another id.
    #[prop(into)]
    call: Signal<Option<(String, IncomingCall)>>,
    #[prop(into)] seconds_left: Signal<u32>,
    on_accept: Callback<()>,
    on_reject: Callback<()>,
) -> impl IntoView {
    let t = strings();
    let accept_ref = NodeRef::<html::Button>::new();
    let ringing_id = Memo::new(move |_| call.with(|c| c.as_ref().map(|(id, _)| id.clone())));
    // Focus in the frame's rendering step (`requestAnimationFrame`), where the browser lays the
    // page out anyway: `focus()` while the dialog is being shown forces a layout of its own
    // (~3 ms in a loaded CIF panel) before the dialog can be painted (issue 17).
    Effect::new(move |_| {
        if ringing_id.with(Option::is_some)
            && let Some(button) = accept_ref.get()
        {
            request_animation_frame(move || {
                let _ = button.focus();
            });
        }
    });
    let name = move || {
        call.with(|c| c.as_ref().and_then(|(_, c)| c.caller_name.clone()))
            .unwrap_or_else(|| t.unknown_caller.to_owned())
    };
    let number = move || {
        call.with(|c| {
            c.as_ref()
                .map(|(_, c)| c.phone_number.clone())
                .unwrap_or_default()
        })
    };
    let details = Memo::new(move |_| {
        call.with(|c| {
            c.as_ref()
                .map(|(_, call)| {
                    [
                        call.queue.as_ref().map(|q| format!("{}: {q}", t.queue)),
                        call.comments.clone(),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" · ")
                })
                .unwrap_or_default()
        })
    });
    view! {
        <section
            class="incoming"
            role="alertdialog"
            aria-labelledby="incoming-title"
            aria-describedby="incoming-caller"
            hidden=move || ringing_id.with(Option::is_none)
        >
            <div class="incoming__head">
                <span class="incoming__ring" aria-hidden="true">
                    <svg class="icon" viewBox="0 0 24 24"><path d=PHONE_PATH /></svg>
                </span>
                <h2 id="incoming-title" class="incoming__title">{t.incoming_call}</h2>
            </div>
            <div id="incoming-caller" class="incoming__caller">
                <p class="caller__name">{name}</p>
                <p class="caller__number">{number}</p>
                <p class="caller__details" hidden=move || details.with(String::is_empty)>{details}</p>
            </div>
            <p class="incoming__ringing">
                <span class="ringing__label">{t.ringing}"…"</span>
                // Formatted only while it rings: the hidden dialog is built with the desk, and
                // the first number format of a page is costly (`Strings::warm_up`).
                <span class="ringing__left">{move || {
                    if ringing_id.with(Option::is_some) {
                        t.seconds_left(seconds_left.get())
                    } else {
                        String::new()
                    }
                }}</span>
            </p>
            <div class="incoming__actions">
                <button
                    class="btn btn--accept"
                    title=t.with_shortcut(t.accept, "Alt+Shift+A")
                    aria-keyshortcuts="Alt+Shift+A"
                    node_ref=accept_ref
                    on:click=move |_| on_accept.run(())
                >
                    <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d=PHONE_PATH /></svg>
                    {t.accept}
                </button>
                <button
                    class="btn btn--reject"
                    title=t.with_shortcut(t.reject, "Alt+Shift+R")
                    aria-keyshortcuts="Alt+Shift+R"
                    on:click=move |_| on_reject.run(())
                >
                    <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d=HANG_UP_PATH /></svg>
                    {t.reject}
                </button>
            </div>
        </section>
    }
}

/// Nothing ringing: readiness (or the agent state, in words, when it is not Ready: calls are
/// not offered then), and how the last call ended.
#[component]
pub fn IdlePanel(
    last: Signal<Option<(Outcome, IncomingCall)>>,
    connected: Signal<bool>,
    /// The agent state in words when it is not `Ready` (`None`: Ready, or not known).
    #[prop(into)]
    not_ready: Signal<Option<String>>,
) -> impl IntoView {
    let t = strings();
    let last_line =
        move || {
            last.get().map(|(outcome, call)| {
            let lead = match outcome {
                Outcome::Accepted => t.last_accepted,
                Outcome::Rejected => t.last_rejected,
                Outcome::Missed => t.last_missed,
                Outcome::Abandoned => t.last_abandoned,
                Outcome::HandledElsewhere => t.last_elsewhere,
                Outcome::Ended => t.last_ended,
                Outcome::NotReached(_) => t.last_not_reached,
            };
            let who = call.caller_name.clone().map(|n| format!("{n} ")).unwrap_or_default();
            let missed = outcome == Outcome::Missed;
            view! {
                <p class="last-call" class:last-call--missed=missed>
                    {lead}" "{who}<span class="caller__number">{call.phone_number.clone()}</span>
                </p>
            }
        })
        };
    view! {
        <section class="panel idle">
            <h2 class="panel__title">{move || not_ready.get().unwrap_or_else(|| t.ready.to_owned())}</h2>
            <p class="muted">{move || match (connected.get(), not_ready.with(Option::is_some)) {
                (false, _) => t.waiting_for_hub,
                (true, true) => t.not_ready_hint,
                (true, false) => t.ready_hint,
            }}</p>
            {last_line}
        </section>
    }
}

/// An error from the hub, shown until dismissed.
#[component]
pub fn Notice(text: String, on_dismiss: Callback<()>) -> impl IntoView {
    let t = strings();
    view! {
        <div class="notice" role="alert">
            <p>{t.hub_error}" "{text}</p>
            <button class="btn btn--subtle" on:click=move |_| on_dismiss.run(())>{t.dismiss}</button>
        </div>
    }
}

/// Dev sign-in: a user name, or one of the demo agents.
#[component]
pub fn SignInForm(on_sign_in: Callback<String>) -> impl IntoView {
    let t = strings();
    let name = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let user = name.get_untracked();
        if !user.trim().is_empty() {
            on_sign_in.run(user);
        }
    };
    view! {
        <section class="panel sign-in" aria-labelledby="sign-in-title">
            <h2 id="sign-in-title" class="panel__title">{t.sign_in_title}</h2>
            <p class="muted">{t.sign_in_hint}</p>
            <form on:submit=submit>
                <label for="user-name">{t.user_name}</label>
                <div class="row">
                    <input
                        id="user-name"
                        type="text"
                        autocomplete="username"
                        required
                        bind:value=name
                    />
                    <button class="btn btn--primary" type="submit">{t.sign_in}</button>
                </div>
            </form>
            <div class="row quick-users">
                {["alice", "bob"].map(|u| view! {
                    <button class="btn btn--secondary" on:click=move |_| on_sign_in.run(u.to_owned())>{u}</button>
                })}
            </div>
        </section>
    }
}
