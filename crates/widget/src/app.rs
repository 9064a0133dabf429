//! The top components: [`App`] (the header, start-up's phases, the Diagnostics drawer) and
//! the signed-in desk view, wired to the [`Widget`] store (`state.rs`): the [`ui`](crate::ui)
//! components get its signals as props and its transitions as callbacks.

use leptos::prelude::*;
use switchboard_signalr::ConnectionState;

use crate::agent::AgentStatus;
use crate::calls::CallRequest;
use crate::i18n::strings;
use crate::presence::Presence;
use crate::state::{Phase, Widget};
use crate::ui::call::{ActiveCallPanel, CallHistory, DialPad, WrapUpPanel};
use crate::ui::diagnostics::DiagnosticsDrawer;
use crate::ui::presence::{PresenceControl, TeamDrawer};
use crate::ui::{ConnectionStatus, IdlePanel, IncomingCallDialog, Notice, SignInForm};
use crate::{boot, popout, shortcuts, support, theme};

/// Mounts the widget on `<body>`, in place of index.html's static first screen (`#boot-screen`,
/// removed in the same task: nothing blank is painted in between). With the `split` feature
/// (the default of `scripts/build-widget`, docs/size.md) a split point (`wasm_split`, as
/// Leptos' `#[lazy]` but `fallible`): the whole app (Leptos, the views, the stores, the host
/// adapters) is a wasm chunk of its own, which the small first module loads while it connects
/// to the hub (`early.rs`); the macro makes it `async`, and a chunk that cannot be fetched or
/// instantiated is `Err(AppNotLoaded)` instead of a panic (`main` then says so on the first
/// screen). Without the feature, a plain function that always mounts.
#[cfg_attr(
    feature = "split",
    leptos::wasm_split::wasm_split(mount_app, wasm_split_path = ::leptos::wasm_split, fallible)
)]
pub fn mount_app() -> Result<(), AppNotLoaded> {
    if let Some(screen) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("boot-screen"))
    {
        screen.remove();
    }
    leptos::mount::mount_to_body(App);
    crate::browser::mark("switchboard:mounted");
    Ok(())
}

/// The app's chunk could not be loaded (a failed fetch or instantiation of `split_mount_app*` or
/// a chunk it needs; `wasm_split_helpers::SplitLoaderError`).
#[derive(Debug)]
pub struct AppNotLoaded;

impl From<leptos::wasm_split::SplitLoaderError> for AppNotLoaded {
    fn from(_: leptos::wasm_split::SplitLoaderError) -> Self {
        AppNotLoaded
    }
}

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    let widget = Widget::new();
    boot::start(widget);
    shortcuts::install();
    theme::follow(widget.host);

    let body = move || {
        let t = strings();
        match widget.phase.get() {
        Phase::Loading => view! { <p class="placeholder">{t.loading}</p> }.into_any(),
        Phase::Failed(reason) => view! {
            <section class="panel panel--error" role="alert">
                <h2>{t.config_failed}</h2>
                <p>{reason}</p>
            </section>
        }
        .into_any(),
        Phase::ChooseUser => view! {
            <SignInForm on_sign_in=Callback::new(move |user: String| boot::sign_in(widget, user)) />
        }
        .into_any(),
        Phase::SignIn(reason) => view! {
            <section class="panel sign-in" aria-labelledby="sign-in-title">
                <h2 id="sign-in-title" class="panel__title">{t.sign_in_title}</h2>
                <p class="muted">{t.msal_sign_in_hint}</p>
                {reason.map(|r| view! { <p role="alert">{r}</p> })}
                <button class="btn btn--primary" on:click=move |_| boot::msal_sign_in(widget)>{t.sign_in}</button>
            </section>
        }
        .into_any(),
        Phase::Running if widget.popped_out.get() => view! {
            <section class="panel popped-out" aria-labelledby="popped-out-title">
                <h2 id="popped-out-title" class="panel__title">{t.popped_out}</h2>
                <button class="btn btn--primary" on:click=move |_| popout::bring_back(widget)>{t.bring_back}</button>
            </section>
        }
        .into_any(),
        // Until the first connection is up: the header's status says what happens.
        Phase::Running if !widget.desk_ready.get() => view! { <p class="placeholder">{t.loading}</p> }.into_any(),
        Phase::Running => {
            let desk = view! { <DeskView widget=widget /> }.into_any();
            crate::browser::mark("switchboard:desk");
            desk
        }
    }
    };

    // Every view reads its texts when built: a new language rebuilds them (state lives in
    // `widget`, so nothing is lost).
    let page = move || {
        widget.locale.track();
        view! {
            <header class="bar">
                <h1 class="bar__brand">
                    <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d=crate::ui::PHONE_PATH /></svg>
                    {strings().app_name}
                </h1>
                {move || (popout::can_pop_out(widget) && widget.phase.get() == Phase::Running && !widget.popped_out.get()).then(|| view! {
                    // In SIP mode this page carries the call's audio: it stays until the call ends.
                    <button
                        class="btn btn--subtle btn--icon"
                        title=move || if popout::waits_for_call(widget) { strings().pop_out_after_call } else { strings().pop_out }
                        aria-label=move || if popout::waits_for_call(widget) { strings().pop_out_after_call } else { strings().pop_out }
                        disabled=move || popout::waits_for_call(widget)
                        on:click=move |_| popout::pop_out(widget)
                    >
                        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d=crate::ui::POP_OUT_PATH /></svg>
                    </button>
                })}
                <ConnectionStatus state=widget.connection />
            </header>
            {body}
            <DiagnosticsDrawer
                tick=widget.now_ms
                on_open=Callback::new(move |open: bool| widget.seconds_wanted.update(|n| {
                    *n = if open { *n + 1 } else { n.saturating_sub(1) }
                }))
                facts=Callback::new(move |_| support::facts(widget))
                problems=Callback::new(|_| crate::diagnostics::problems(5))
                log=Callback::new(|_| crate::diagnostics::text())
                report=Callback::new(move |_| support::report(widget))
                on_copy=Callback::new(move |done| support::copy(support::report(widget), done))
            />
        }
    };
    view! { <main class="widget">{page}</main> }
}

/// Which panel the call area shows; the panel is rebuilt only when this changes.
#[derive(Debug, Clone, PartialEq)]
enum Area {
    Ringing(String),
    Active(String),
    WrapUp(String),
    Idle,
}

/// The signed-in view: who, the connection's trouble if any, and the call area.
#[component]
fn DeskView(widget: Widget) -> impl IntoView {
    let t = strings();
    // The formatters the first ring needs are made once the page is idle, not by the ring.
    crate::browser::when_idle(|| strings().warm_up());
    let on_request = Callback::new(move |r: CallRequest| widget.request(r));
    let area = Memo::new(move |_| {
        widget.desk.with(|d| {
            if let Some(r) = d.ringing() {
                Area::Ringing(r.call_id.clone())
            } else if let Some(a) = d.active() {
                Area::Active(a.call_id().to_owned())
            } else if let Some(w) = d.wrap_up() {
                Area::WrapUp(w.call_id.clone())
            } else {
                Area::Idle
            }
        })
    });
    let active = Memo::new(move |_| widget.desk.with(|d| d.active().cloned()));
    // Memos: the idle panel stays mounted through calls, and must not be rebuilt at every
    // change of the desk (a call ringing) when what it shows is the same.
    let last_outcome = Memo::new(move |_| widget.desk.with(|d| d.last_outcome().cloned()));
    let ringing = Memo::new(move |_| {
        widget
            .desk
            .with(|d| d.ringing().map(|r| (r.call_id.clone(), r.call.clone())))
    });
    let call_area = move || {
        match area.get() {
            // The dialog is built once (below) and shown by the ring; the clock ticks every
            // second while it rings.
            Area::Ringing(_) => {
                boot::show_seconds(widget);
                ().into_any()
            }
            Area::Active(_) => {
                boot::show_seconds(widget);
                view! {
                <ActiveCallPanel
                    call=active
                    now_ms=widget.now_ms
                    on_request=on_request
                    colleagues=Signal::derive(move || widget.presence.transfer_targets())
                />
                }
                .into_any()
            }
            Area::WrapUp(_) => match widget.desk.with_untracked(|d| d.wrap_up().cloned()) {
                Some(record) => {
                    boot::show_seconds(widget);
                    let config = widget
                        .config
                        .with_untracked(|c| c.as_ref().map(|c| c.wrap_up.clone()))
                        .unwrap_or_default();
                    let call_id = record.call_id.clone();
                    // The hub's countdown, while it holds this agent in wrap-up for this call.
                    let countdown = Signal::derive(move || {
                        widget.agent.shown(widget.now_ms.get()).and_then(|s| {
                            let left = s.wrap_up_left_s?;
                            let for_this_call = widget.agent.state.with(|a| {
                                a.as_ref()
                                    .is_some_and(|a| a.call_id.as_deref() == Some(call_id.as_str()))
                            });
                            for_this_call
                                .then(|| (s.back_to.unwrap_or_else(|| "Ready".into()), left))
                        })
                    });
                    view! {
                        <WrapUpPanel
                            record=record
                            config=config
                            countdown=countdown
                            on_finish_now=Callback::new(move |_| widget.agent.finish_wrap_up_now())
                            on_request=on_request
                        />
                    }
                    .into_any()
                }
                None => ().into_any(),
            },
            // The idle panel and the dial pad stay mounted (below), hidden while a call shows.
            Area::Idle => ().into_any(),
        }
    };
    view! {
        <div class="identity">
            <span>{t.signed_in_as}" "<strong dir="auto">{move || widget.user.get().unwrap_or_default()}</strong></span>
            <button class="btn btn--subtle" on:click=move |_| boot::sign_out(widget)>{t.sign_out}</button>
        </div>
        {move || {
            let state = widget.connection.get();
            widget.connection_detail.get().filter(|_| state != ConnectionState::Connected).map(|detail| {
                view! {
                    <div class="connection-detail">
                        <p>{detail}</p>
                        <p class="connection-detail__next">{move || match widget.next_attempt.get() {
                            Some(at) => t.next_attempt(((at - widget.now_ms.get()) / 1000.0).ceil().max(0.0) as u32),
                            None => t.attempting.to_owned(),
                        }}</p>
                        <button class="btn btn--secondary" on:click=move |_| widget.reconnect()>
                            {if state == ConnectionState::Disconnected { t.reconnect } else { t.try_now }}
                        </button>
                    </div>
                }
            })
        }}
        {move || widget.reauth.get().map(|text| view! {
            <div class="connection-detail">
                <p>{text}</p>
                <button class="btn btn--primary" on:click=move |_| boot::msal_popup(widget)>{t.sign_in_again}</button>
            </div>
        })}
        <crate::softphone::LineStatus now_ms=widget.now_ms />
        <OwnPresence presence=widget.presence agent=widget.agent now_ms=widget.now_ms />
        {move || widget.host.hint.get().map(|hint| view! { <p class="host-hint" role="note">{hint}</p> })}
        <IncomingCallDialog
            call=ringing
            // From the clock, but never from before the ring: the clock is not set on the
            // ringing path (it switches to seconds in the next task), so its last tick may be
            // up to 15 s old when a call starts ringing.
            seconds_left=Signal::derive(move || {
                let (deadline, offered) = widget
                    .desk
                    .with(|d| d.ringing().map(|r| (r.deadline_ms, r.offered_ms)))
                    .unwrap_or_default();
                let ms = deadline - widget.now_ms.get().max(offered);
                (ms / 1000.0).ceil().max(0.0) as u32
            })
            on_accept=Callback::new(move |_| widget.accept())
            on_reject=Callback::new(move |_| widget.reject())
        />
        {call_area}
        // Built once and kept: a call hides them instead of tearing them down and building
        // them again after it, so the ringing dialog is all that is built when a call comes
        // (issue 17, notification latency). `hidden` keeps them out of the accessibility tree
        // and of the keyboard shortcuts (shortcuts.rs skips hidden controls).
        <div class="idle-area" hidden=move || area.get() != Area::Idle>
            <IdlePanel
                last=last_outcome.into()
                connected=Signal::derive(move || widget.connection.get() == ConnectionState::Connected)
                not_ready=Memo::new(move |_| widget.agent.state.with(|s| {
                    s.as_ref()
                        .filter(|s| s.state != "Ready")
                        .map(|s| crate::i18n::agent_state(&s.state).to_owned())
                }))
            />
            <DialPad
                text=widget.dial_text
                last_number=Memo::new(move |_| widget.history.with(|h| h.last_number().map(str::to_owned)))
                on_request=on_request
            />
        </div>
        {move || widget.notice.get().map(|text| view! {
            <Notice text=text on_dismiss=Callback::new(move |_| widget.notice.set(None)) />
        })}
        <CallHistory history=widget.history on_request=on_request />
        <Team
            presence=widget.presence
            on_call=Callback::new(move |id: String| widget.dial(id))
        />
    }
}

/// The own-presence control, wired: the hub's agent state, refreshed with the clock.
#[component]
fn OwnPresence(presence: Presence, agent: AgentStatus, now_ms: RwSignal<f64>) -> impl IntoView {
    view! {
        <PresenceControl
            own=presence.own
            states=presence.states
            agent=Signal::derive(move || agent.shown(now_ms.get()))
            error=presence.error
            held=presence.held
            on_choose=Callback::new(move |choice| presence.choose(choice))
        />
    }
}

/// The team drawer, wired.
#[component]
fn Team(presence: Presence, on_call: Callback<String>) -> impl IntoView {
    view! {
        <TeamDrawer
            team=presence.team
            load=presence.team_load
            presences=presence.presences
            favourites=presence.favourites
            on_favourite=Callback::new(move |id| presence.toggle_favourite(id))
            on_call=on_call
        />
    }
}
