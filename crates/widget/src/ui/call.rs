//! The call UI (issue 7): the dial pad, the call in progress with its controls, wrap-up, and
//! recent calls. Components take signals and one [`CallRequest`] callback and do no I/O.
//!
//! Keyboard shortcuts (also in each button's tooltip and `aria-keyshortcuts`; handled in
//! `shortcuts.rs`): Alt+Shift+A accept, Alt+Shift+R reject, Alt+Shift+E hang up, Alt+Shift+H
//! hold or resume, Alt+Shift+M mute, Alt+Shift+K keypad, Alt+Shift+D the phone number box.
//! Alt+Shift keeps clear of the browser's and Dynamics 365's own Ctrl and Alt shortcuts.

use leptos::prelude::*;
use switchboard_core::call::machine::{CallPhase, Command};
use switchboard_core::{
    ActiveCall, CallDirection, CallRecord, History, WrapUpConfig, WrapUpProblem,
};

use crate::calls::CallRequest;
use crate::i18n::{agent_state, disposition as disposition_words, outcome, strings};
use crate::ui::{HANG_UP_PATH, PHONE_PATH};

/// The keys of a telephone keypad, in their usual order.
pub const KEYS: [char; 12] = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];

fn icon(path: &'static str) -> impl IntoView {
    view! { <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d=path /></svg> }
}

/// Twelve keypad buttons; each press reports its key.
#[component]
pub fn Keypad(on_key: Callback<char>) -> impl IntoView {
    view! {
        <div class="keypad" role="group" aria-label=strings().keypad>
            {KEYS.map(|k| view! {
                <button type="button" class="key" on:click=move |_| on_key.run(k)>{k.to_string()}</button>
            })}
        </div>
    }
}

/// Dialling: a text box labelled `Phone number` and a `Call` button (DESIGN.md §4), a keypad
/// that types into the box, and Redial of the last number in the history.
#[component]
pub fn DialPad(
    text: RwSignal<String>,
    #[prop(into)] last_number: Signal<Option<String>>,
    on_request: Callback<CallRequest>,
) -> impl IntoView {
    let t = strings();
    let keypad = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        on_request.run(CallRequest::Dial(text.get_untracked()));
    };
    view! {
        <form class="panel dial" on:submit=submit>
            <label for="dial-number">{t.phone_number}</label>
            <div class="row">
                <input
                    id="dial-number"
                    type="tel"
                    inputmode="tel"
                    autocomplete="off"
                    aria-keyshortcuts="Alt+Shift+D"
                    bind:value=text
                />
                <button class="btn btn--accept" type="submit">{icon(PHONE_PATH)}{t.call}</button>
            </div>
            <div class="row row--tools">
                <button
                    type="button"
                    class="btn btn--subtle"
                    title="Alt+Shift+K"
                    aria-keyshortcuts="Alt+Shift+K"
                    aria-expanded=move || keypad.get().to_string()
                    on:click=move |_| keypad.update(|k| *k = !*k)
                >
                    {t.keypad}
                </button>
                {move || last_number.get().map(|n| {
                    let label = t.redial_to(&n);
                    view! {
                        <button
                            type="button"
                            class="btn btn--subtle"
                            aria-label=label
                            on:click=move |_| on_request.run(CallRequest::Dial(n.clone()))
                        >
                            {t.redial}
                        </button>
                    }
                })}
            </div>
            <Show when=move || keypad.get()>
                <Keypad on_key=Callback::new(move |k: char| text.update(|s| s.push(k))) />
            </Show>
        </form>
    }
}

/// A toggle or action button of the call panel: `label`, a shortcut shown in the tooltip,
/// disabled when the call machine does not allow it now.
#[component]
fn ControlButton(
    label: Signal<&'static str>,
    #[prop(optional)] shortcut: &'static str,
    #[prop(optional, into)] pressed: Option<Signal<bool>>,
    #[prop(into)] enabled: Signal<bool>,
    #[prop(optional)] class: &'static str,
    on_press: Callback<()>,
) -> impl IntoView {
    let title = move || {
        if shortcut.is_empty() {
            label.get().to_owned()
        } else {
            strings().with_shortcut(label.get(), shortcut)
        }
    };
    view! {
        <button
            type="button"
            class=format!("btn btn--secondary {class}")
            title=title
            aria-keyshortcuts=(!shortcut.is_empty()).then_some(shortcut)
            aria-pressed=move || pressed.map(|p| p.get().to_string())
            disabled=move || !enabled.get()
            on:click=move |_| on_press.run(())
        >
            {move || label.get()}
        </button>
    }
}

/// The call in progress: who, the state, talk time (and hold time), and the controls —
/// mute, hold/resume, keypad (DTMF), transfer (blind or consult, then complete, conference or
/// back to the caller) and hang up.
#[component]
pub fn ActiveCallPanel(
    call: Memo<Option<ActiveCall>>,
    now_ms: RwSignal<f64>,
    on_request: Callback<CallRequest>,
    /// Colleagues offered as transfer targets, `(id, name)`, favourites first.
    #[prop(into)]
    colleagues: Signal<Vec<(String, String)>>,
) -> impl IntoView {
    let t = strings();
    let phase = Memo::new(move |_| call.with(|c| c.as_ref().map(|c| c.call.phase().clone())));
    let can = move |command: Command| {
        Signal::derive(move || {
            call.with(|c| c.as_ref().is_some_and(|c| c.call.check(&command).is_ok()))
        })
    };
    let muted = Signal::derive(move || call.with(|c| c.as_ref().is_some_and(|c| c.muted)));
    let held = Signal::derive(move || phase.get() == Some(CallPhase::OnHold));
    let keypad = RwSignal::new(false);
    let transfer = RwSignal::new(false);
    let target = RwSignal::new(String::new());
    let control = move |command: Command| on_request.run(CallRequest::Control(command));

    let status = move || match phase.get() {
        Some(CallPhase::Dialling) => t.dialling.to_owned(),
        Some(CallPhase::Ringing) => t.alerting.to_owned(),
        Some(CallPhase::OnHold) => t.on_hold.to_owned(),
        Some(CallPhase::Transferring) => t.consulting(&call.with(|c| {
            c.as_ref()
                .and_then(|c| c.transfer_target.clone())
                .unwrap_or_default()
        })),
        _ if call.with(|c| c.as_ref().is_some_and(|c| c.call.is_conference())) => {
            t.conference_on.to_owned()
        }
        _ => t.on_call.to_owned(),
    };
    let title = move || call.with(|c| c.as_ref().map(|c| c.title().to_owned()));
    let number = move || {
        call.with(|c| {
            c.as_ref().and_then(|c| {
                let shown = c.display.as_deref().unwrap_or(&c.party.phone_number);
                (shown != c.title()).then(|| shown.to_owned())
            })
        })
    };
    let timer = move || {
        let now = now_ms.get();
        call.with(|c| {
            c.as_ref().map(|c| {
                let talk = t.clock(c.call.talk_ms(now));
                if c.call.phase() == &CallPhase::OnHold {
                    format!("{talk} · {} {}", t.held_for, t.clock(c.call.hold_ms(now)))
                } else {
                    talk
                }
            })
        })
    };
    view! {
        <section class="panel call" aria-labelledby="call-title">
            <h2 id="call-title" class="panel__title call__state" aria-live="polite">{status}</h2>
            <p class="caller__name">{title}</p>
            {move || number().map(|n| view! { <p class="caller__number">{n}</p> })}
            <p class="call__timer">
                <span class="visually-hidden">{t.talk_time}" "</span>
                <span class="call__clock">{timer}</span>
                {move || muted.get().then(|| view! { <span class="badge">{t.muted}</span> })}
            </p>
            <div class="call__controls" role="group" aria-label=t.call_controls>
                <ControlButton
                    label=Signal::derive(move || if muted.get() { t.unmute } else { t.mute })
                    shortcut="Alt+Shift+M"
                    pressed=muted
                    enabled=can(Command::Mute(true))
                    on_press=Callback::new(move |_| control(Command::Mute(!muted.get_untracked())))
                />
                <ControlButton
                    label=Signal::derive(move || if held.get() { t.resume } else { t.hold })
                    shortcut="Alt+Shift+H"
                    pressed=held
                    enabled=Signal::derive(move || {
                        can(Command::Hold).get() || can(Command::Resume).get()
                    })
                    on_press=Callback::new(move |_| {
                        control(if held.get_untracked() { Command::Resume } else { Command::Hold })
                    })
                />
                <button
                    type="button"
                    class="btn btn--secondary"
                    title=t.with_shortcut(t.keypad, "Alt+Shift+K")
                    aria-keyshortcuts="Alt+Shift+K"
                    aria-expanded=move || keypad.get().to_string()
                    disabled=move || !can(Command::SendDtmf("1".into())).get()
                    on:click=move |_| keypad.update(|k| *k = !*k)
                >
                    {t.keypad}
                </button>
                <button
                    type="button"
                    class="btn btn--secondary"
                    aria-expanded=move || transfer.get().to_string()
                    disabled=move || !can(Command::StartConsult("x".into())).get()
                    on:click=move |_| transfer.update(|x| *x = !*x)
                >
                    {t.transfer}
                </button>
            </div>
            <Show when=move || keypad.get() && can(Command::SendDtmf("1".into())).get()>
                <Keypad on_key=Callback::new(move |k: char| control(Command::SendDtmf(k.to_string()))) />
            </Show>
            <Show when=move || transfer.get() && can(Command::StartConsult("x".into())).get()>
                <form class="transfer" on:submit=move |ev| {
                    ev.prevent_default();
                    transfer.set(false);
                    control(Command::BlindTransfer(target.get_untracked()));
                }>
                    <label for="transfer-target">{t.transfer_to}</label>
                    // A number or extension typed, or a colleague picked from the team (the hub
                    // takes a user id as a target, as it does for click-to-call).
                    <input id="transfer-target" type="text" autocomplete="off" list="transfer-targets" bind:value=target />
                    <datalist id="transfer-targets">
                        {move || colleagues.get().into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
                    </datalist>
                    <div class="row">
                        <button type="submit" class="btn btn--primary">{t.transfer_now}</button>
                        <button
                            type="button"
                            class="btn btn--secondary"
                            on:click=move |_| {
                                transfer.set(false);
                                control(Command::StartConsult(target.get_untracked()));
                            }
                        >
                            {t.consult_first}
                        </button>
                    </div>
                </form>
            </Show>
            <Show when=move || phase.get() == Some(CallPhase::Transferring)>
                <div class="row transfer" role="group" aria-label=t.transfer>
                    <button type="button" class="btn btn--primary" on:click=move |_| control(Command::CompleteConsult)>
                        {t.complete_transfer}
                    </button>
                    <button type="button" class="btn btn--secondary" on:click=move |_| control(Command::Conference)>
                        {t.merge_conference}
                    </button>
                    <button type="button" class="btn btn--secondary" on:click=move |_| control(Command::CancelConsult)>
                        {t.cancel_transfer}
                    </button>
                </div>
            </Show>
            <button
                type="button"
                class="btn btn--reject call__hang-up"
                title=t.with_shortcut(t.hang_up, "Alt+Shift+E")
                aria-keyshortcuts="Alt+Shift+E"
                on:click=move |_| on_request.run(CallRequest::HangUp)
            >
                {icon(HANG_UP_PATH)}
                {t.hang_up}
            </button>
        </section>
    }
}

/// After an answered call: who, how long, how it ended; a disposition (the site's list) and
/// notes (required where the site says so), then Save. While the hub holds the agent in
/// wrap-up: the countdown to the state after it and **Finish now** (ends the wrap-up time).
#[component]
pub fn WrapUpPanel(
    record: CallRecord,
    /// config.json `wrapUp`: the dispositions and the notes rule.
    config: WrapUpConfig,
    /// The hub's wrap-up countdown: the state after it and the seconds left.
    #[prop(into)]
    countdown: Signal<Option<(String, u64)>>,
    on_finish_now: Callback<()>,
    on_request: Callback<CallRequest>,
) -> impl IntoView {
    let t = strings();
    let problem = RwSignal::new(None::<&'static str>);
    let dispositions = config.dispositions.clone();
    let required = config.notes_required;
    // Built once while the countdown runs (only its text ticks), so Finish now keeps the focus.
    let running = Memo::new(move |_| countdown.with(Option::is_some));
    let notes = RwSignal::new(String::new());
    let disposition = RwSignal::new(String::new());
    let notes_ref = NodeRef::<leptos::html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(el) = notes_ref.get() {
            let _ = el.focus();
        }
    });
    let who = record.name.clone().unwrap_or_else(|| record.number.clone());
    let summary = format!(
        "{} {who} · {} · {}",
        t.wrap_up_with,
        t.clock(record.duration_s as f64 * 1000.0),
        outcome(&record.outcome)
    );
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match config.check(&notes.get_untracked(), &disposition.get_untracked()) {
            Err(WrapUpProblem::NotesRequired) => {
                problem.set(Some(t.notes_required));
                if let Some(el) = notes_ref.get_untracked() {
                    let _ = el.focus();
                }
                return;
            }
            // Cannot happen from this select; save without it rather than lose the notes.
            Err(WrapUpProblem::UnknownDisposition) => disposition.set(String::new()),
            Ok(()) => {}
        }
        on_request.run(CallRequest::WrapUp {
            notes: notes.get_untracked(),
            disposition: disposition.get_untracked(),
        });
    };
    view! {
        <form class="panel wrap-up" aria-labelledby="wrap-up-title" on:submit=submit>
            <h2 id="wrap-up-title" class="panel__title">{t.wrap_up}</h2>
            <p class="muted">{summary}</p>
            {move || running.get().then(|| view! {
                <div class="wrap-up__timer">
                    <p class="wrap-up__left">
                        {move || countdown.get().map(|(state, left)| t.wrap_up_left(agent_state(&state), left))}
                    </p>
                    <button type="button" class="btn btn--secondary" on:click=move |_| on_finish_now.run(())>
                        {t.finish_now}
                    </button>
                </div>
            })}
            <label for="wrap-up-disposition">{t.disposition}</label>
            <select id="wrap-up-disposition" bind:value=disposition>
                <option value="">{t.no_disposition}</option>
                {dispositions.into_iter().map(|value| {
                    let label = disposition_words(&value).to_owned();
                    view! { <option value=value>{label}</option> }
                }).collect_view()}
            </select>
            <label for="wrap-up-notes">{t.notes}{required.then_some(" *")}</label>
            <textarea
                id="wrap-up-notes"
                rows="3"
                maxlength="2000"
                aria-required=if required { "true" } else { "false" }
                aria-describedby="wrap-up-problem"
                node_ref=notes_ref
                bind:value=notes
                on:input=move |_| problem.set(None)
            ></textarea>
            <p id="wrap-up-problem" class="wrap-up__problem" role="alert">{move || problem.get()}</p>
            <button type="submit" class="btn btn--primary">{t.save}</button>
        </form>
    }
}

/// Recent calls, newest first, each with a Call button.
#[component]
pub fn CallHistory(history: RwSignal<History>, on_request: Callback<CallRequest>) -> impl IntoView {
    let t = strings();
    let rows =
        move || {
            history.with(|h| {
                h.records()
                .iter()
                .map(|r| {
                    let who = r.name.clone().unwrap_or_else(|| r.number.clone());
                    let number = r.number.clone();
                    let details = format!(
                        "{} · {} · {} · {}",
                        if r.direction == CallDirection::Inbound { t.inbound } else { t.outbound },
                        outcome(&r.outcome),
                        t.clock(r.duration_s as f64 * 1000.0),
                        t.time_of_day(r.started_at_ms)
                    );
                    let label = t.call_person(&who);
                    view! {
                        <li class="mate">
                            <div class="mate__text">
                                <span class="mate__name">{who}</span>
                                <span class="mate__presence">{details}</span>
                            </div>
                            <button
                                type="button"
                                class="btn btn--subtle mate__call"
                                aria-label=label
                                on:click=move |_| on_request.run(CallRequest::Dial(number.clone()))
                            >
                                {icon(PHONE_PATH)}
                            </button>
                        </li>
                    }
                })
                .collect_view()
            })
        };
    view! {
        <details class="panel team history">
            <summary class="team__summary">
                {t.history}
                <span class="team__total">" "{move || history.with(|h| h.records().len())}</span>
            </summary>
            {move || if history.with(|h| h.records().is_empty()) {
                Some(view! { <p class="muted">{t.history_empty}</p> })
            } else {
                None
            }}
            <ul class="team__list">{rows}</ul>
        </details>
    }
}
