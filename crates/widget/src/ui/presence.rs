//! Presence views: the agent's own presence control (labelled `Presence`, DESIGN.md §4) and the
//! team drawer. Props and callbacks only; names and presences are rendered as text.

use std::collections::{HashMap, HashSet};

use leptos::prelude::*;
use switchboard_core::agent_state::Shown;
use switchboard_core::presence::{
    Availability, Choice, HeldBack, HoldReason, Presence as Pair, choice,
};

use crate::graph::Colleague;
use crate::i18n::{agent_state, availability, presence_words, strings};
use crate::presence::{Own, Source, TeamLoad};
use crate::ui::PHONE_PATH;

/// Rows rendered at once; search narrows the rest.
const SHOWN: usize = 50;
const STAR_PATH: &str =
    "M12 3.5l2.6 5.3 5.9.9-4.3 4.1 1 5.8L12 16.9l-5.2 2.7 1-5.8-4.3-4.1 5.9-.9z";

/// The dot's modifier for a presence (colour; the words carry the meaning).
fn dot_class(p: Option<Pair>) -> &'static str {
    match p.map(|p| p.availability.base()) {
        Some(Availability::Available) => "dot dot--available",
        Some(Availability::Busy) => "dot dot--busy",
        Some(Availability::DoNotDisturb) => "dot dot--dnd",
        Some(Availability::Away | Availability::BeRightBack) => "dot dot--away",
        _ => "dot dot--offline",
    }
}

/// The own-presence control: a native select (agent states, then Teams presences), the agent
/// state as the hub keeps it with how long it has lasted ("Break · 12 min") and the Missed
/// notice, the Teams presence with a coloured dot, and where it came from.
#[component]
pub fn PresenceControl(
    own: RwSignal<Own>,
    states: RwSignal<Vec<String>>,
    /// The hub's agent state as shown now (`None`: none known yet).
    #[prop(into)]
    agent: Signal<Option<Shown>>,
    error: RwSignal<Option<String>>,
    /// A sync the engine holds back (the 15-second rule, loop detection).
    held: RwSignal<Option<HeldBack>>,
    on_choose: Callback<String>,
) -> impl IntoView {
    let t = strings();
    let option = move |value: String, label: String| {
        let v = value.clone();
        view! {
            <option value=value prop:selected=move || own.with(|o| o.choice == v)>{label}</option>
        }
    };
    // Memos: `agent` changes every second (the since-time); these only when the state does,
    // so the options and the notice (an alert) are not rebuilt under the agent.
    let current = Memo::new(move |_| agent.with(|a| a.as_ref().map(|a| a.state.clone())));
    let missed = Memo::new(move |_| agent.with(|a| a.as_ref().and_then(|a| a.missed)));
    let state_options = move || {
        let mut list = states.get();
        // A state the hub set that is not a choice (Missed) is shown as the selected option.
        if let Some(current) = current.get()
            && !list.contains(&current)
        {
            list.push(current);
        }
        list.into_iter()
            .map(|s| option(choice::state_value(&s), agent_state(&s).to_owned()))
            .collect_view()
    };
    let teams_options = choice::teams_choices()
        .map(|p| {
            option(
                Choice::Teams(p).value(),
                availability(p.availability).to_owned(),
            )
        })
        .collect_view();
    let source = move || match own.with(|o| o.source) {
        Source::Here => t.source_here,
        Source::Teams => t.source_teams,
        Source::Automatic => t.source_automatic,
    };
    view! {
        <section class="presence">
            <label class="presence__label" for="presence-select">{t.presence}</label>
            <div class="presence__row">
                <span class=move || dot_class(own.with(|o| o.teams)) aria-hidden="true"></span>
                <select
                    id="presence-select"
                    class="presence__select"
                    on:change=move |ev| on_choose.run(event_target_value(&ev))
                >
                    <optgroup label=t.presence_states>{state_options}</optgroup>
                    <optgroup label=t.presence_teams>{teams_options}</optgroup>
                </select>
            </div>
            {move || agent.get().map(|a| view! {
                <p class="presence__state">{t.state_since(agent_state(&a.state), a.since)}</p>
            })}
            {move || missed.get().map(|n| view! {
                <p class="presence__missed" role="alert">{t.missed_notice(n)}</p>
            })}
            <p class="presence__teams">
                {t.teams_now}" "
                <span class="presence__words">
                    {move || own.with(|o| o.teams.map(presence_words)).unwrap_or_else(|| t.unknown_presence.into())}
                </span>
                " · "
                <span class="presence__source">{source}</span>
            </p>
            // A polite live region that is always there (announced when its text changes); not
            // role="status", which is the connection's.
            <p class="presence__held" aria-live="polite">
                {move || held.get().map(|h| match h.reason {
                    HoldReason::Stability => t.sync_held_stability,
                    HoldReason::Loop => t.sync_held_loop,
                })}
            </p>
            <p class="presence__error" role="alert">{move || error.get().unwrap_or_default()}</p>
        </section>
    }
}

/// The team drawer: colleagues with live presence, search, favourites, click-to-call.
#[component]
pub fn TeamDrawer(
    team: RwSignal<Vec<Colleague>>,
    load: RwSignal<TeamLoad>,
    presences: RwSignal<HashMap<String, Pair>>,
    favourites: RwSignal<HashSet<String>>,
    on_favourite: Callback<String>,
    on_call: Callback<String>,
) -> impl IntoView {
    let t = strings();
    let open = RwSignal::new(false);
    let query = RwSignal::new(String::new());
    let matching = Memo::new(move |_| {
        // ASCII case folding: Unicode tables would cost the download more than they help here.
        let q = query.get().trim().to_ascii_lowercase();
        favourites.with(|fav| {
            team.with(|team| {
                let mut list: Vec<&Colleague> = team
                    .iter()
                    .filter(|c| {
                        q.is_empty()
                            || c.name.to_ascii_lowercase().contains(&q)
                            || c.id.to_ascii_lowercase().contains(&q)
                    })
                    .collect();
                list.sort_by_key(|c| !fav.contains(&c.id));
                let total = list.len();
                (
                    list.into_iter().take(SHOWN).cloned().collect::<Vec<_>>(),
                    total,
                )
            })
        })
    });
    let favourite = move |id: String| {
        on_favourite.run(id.clone());
        // The row may move (favourites first): keep the focus on its star.
        request_animation_frame(move || {
            if let Some(el) = document().get_element_by_id(&format!("fav-{id}")) {
                use wasm_bindgen::JsCast;
                if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
                    let _ = el.focus();
                }
            }
        });
    };
    let row = move |c: Colleague| {
        let id = c.id.clone();
        let (fid, cid, pid, sid) = (id.clone(), id.clone(), id.clone(), id.clone());
        let pair = Signal::derive(move || presences.with(|m| m.get(&pid).copied()));
        let pressed = move || favourites.with(|f| f.contains(&fid));
        view! {
            <li class="mate">
                <button
                    id=format!("fav-{sid}")
                    class="mate__star"
                    aria-pressed=move || if pressed() { "true" } else { "false" }
                    aria-label=t.favourite(&c.name)
                    on:click=move |_| favourite(id.clone())
                >
                    <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d=STAR_PATH /></svg>
                </button>
                <span class=move || dot_class(pair.get()) aria-hidden="true"></span>
                <span class="mate__text">
                    <span class="mate__name">{c.name.clone()}</span>
                    <span class="mate__presence">
                        {move || pair.get().map(presence_words).unwrap_or_else(|| t.unknown_presence.into())}
                    </span>
                </span>
                <button
                    class="btn btn--secondary mate__call"
                    aria-label=t.call_person(&c.name)
                    on:click=move |_| on_call.run(cid.clone())
                >
                    <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d=PHONE_PATH /></svg>
                </button>
            </li>
        }
    };
    // Plain text closures and an unkeyed list keep this view small in the download: the list
    // re-renders only when the team, the search or the favourites change (presence updates
    // touch only each row's own text), and `favourite` puts the focus back on the star.
    let status = move || match load.get() {
        TeamLoad::Loading => t.team_loading.to_owned(),
        TeamLoad::Failed(e) => format!("{} {e}", t.team_failed),
        TeamLoad::Loaded => match matching.with(|m| m.1) {
            0 => t.team_empty.to_owned(),
            total if total > SHOWN => t.team_shown(SHOWN, total),
            _ => String::new(),
        },
    };
    let body = move || {
        view! {
            <input
                id="team-search"
                class="team__search"
                type="search"
                aria-label=t.search_team
                placeholder=t.search_team
                bind:value=query
            />
            <p class="muted team__count">{status}</p>
            <ul class="team__list">
                {move || matching.get().0.into_iter().map(row).collect_view()}
            </ul>
        }
    };
    view! {
        <details class="panel team" on:toggle=move |ev| {
            use wasm_bindgen::JsCast;
            let is_open = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlDetailsElement>().ok())
                .is_some_and(|d| d.open());
            open.set(is_open);
        }>
            <summary class="team__summary">
                {t.team}
                <span class="team__total">
                    {move || team.with(|t| if t.is_empty() { String::new() } else { format!(" {}", t.len()) })}
                </span>
            </summary>
            {move || open.get().then(body)}
        </details>
    }
}
