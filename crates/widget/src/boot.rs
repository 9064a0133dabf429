//! Start-up and sign-in: the page's wake-ups, `config.json`, the language, MSAL (boot, silent
//! sign-in, the popup, token renewal) or dev sign-in, then the hub connection (config → hub
//! client options) and sign-out. Drives the [`Widget`] store (`state.rs`).

use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_core::host::HostKind;
use switchboard_core::{AuthConfig, Config, Desk, History};
use switchboard_signalr::ConnectionState;

use crate::browser::{now_ms, on_document, query_param};
use crate::diagnostics;
use crate::i18n::strings;
use crate::signalr::{HubClient, HubClientHandlers, TokenFuture};
use crate::state::{Phase, Widget};

thread_local! {
    /// The display clock's timer while the page is visible, and its period (ms).
    static CLOCK: std::cell::RefCell<Option<(gloo_timers::callback::Interval, u32)>> =
        const { std::cell::RefCell::new(None) };
}

/// The display clock's period while something on screen shows seconds (ms).
const FINE_TICK_MS: u32 = 1_000;
/// The display clock's period otherwise: what is shown then is in minutes ("Break · 12 min"),
/// so it is at most 15 s late (ms).
const COARSE_TICK_MS: u32 = 15_000;

/// Marks the view being built as one that shows seconds (a countdown, a talk time): the
/// display clock ticks every second until the view's reactive owner is disposed (the view is
/// replaced or removed). Call it while building the view.
pub(crate) fn show_seconds(widget: Widget) {
    widget.seconds_wanted.update(|n| *n += 1);
    on_cleanup(move || {
        let _ = widget
            .seconds_wanted
            .try_update(|n| *n = n.saturating_sub(1));
    });
}

/// Whether the display clock must tick every second: a view shows seconds, the connection's
/// reconnect countdown is up, or the SIP line counts down to its next attempt.
fn wants_seconds(widget: Widget) -> bool {
    widget.seconds_wanted.get() > 0
        || widget.connection.get() != ConnectionState::Connected
        || matches!(
            crate::softphone::line().get(),
            crate::softphone::LineState::Retrying { .. }
        )
}

/// The display clock (`Widget::now_ms`, read by talk times, countdowns and "since" times
/// only): ticks every second while something on screen shows seconds ([`show_seconds`],
/// [`wants_seconds`]), every 15 s otherwise, and stops while the page is hidden, so an idle
/// agent's page wakes up 4 times a minute and a background tab has no wake-ups of ours but the
/// hub connection's (issue 17, "idle cost"). Called at start, on every `visibilitychange` and
/// when [`wants_seconds`] changes; a changed period or showing the page sets the time at once.
fn run_clock(widget: Widget, fine: bool) {
    let visible = !crate::browser::page_hidden();
    let period = if fine { FINE_TICK_MS } else { COARSE_TICK_MS };
    CLOCK.with(|clock| {
        let mut clock = clock.borrow_mut();
        if !visible {
            *clock = None; // dropping an Interval clears it
        } else if clock.as_ref().is_none_or(|(_, p)| *p != period) {
            widget.now_ms.set(now_ms());
            let interval =
                gloo_timers::callback::Interval::new(period, move || widget.now_ms.set(now_ms()));
            *clock = Some((interval, period));
        }
    });
}

/// Starts the widget: the diagnostics log, the clock, the wake-ups that reconnect, the
/// host's language and presence, then config.json and sign-in.
pub fn start(widget: Widget) {
    boot(widget);
    // The clock's period follows what is on screen (and starts it), one task later: a call
    // that starts ringing shows its countdown from the time the ring set, and the new timer
    // and the clock's other readers (presence, line status) are not on the ringing path.
    Effect::new(move |_| {
        let fine = wants_seconds(widget);
        crate::browser::next_task(move || run_clock(widget, fine));
    });
    // A laptop waking up or a network coming back: if the reconnect policy had given up, try
    // again at once instead of waiting for the agent to notice.
    let _ = window_event_listener(leptos::ev::online, move |_| widget.reconnect());
    let _ = window_event_listener(leptos::ev::pageshow, move |_| widget.reconnect());
    // A tab shown again, or a page frozen by the browser (a sleeping laptop, an intensively
    // throttled background tab) that runs again: Page Lifecycle's `resume` on the document.
    on_document("visibilitychange", move || {
        let visible = !crate::browser::page_hidden();
        if visible {
            widget.reconnect();
        }
        run_clock(widget, untrack(|| wants_seconds(widget)));
    });
    on_document("resume", move || widget.reconnect());
    // The host's language, unless `?lang=` or config.json fixes one.
    Effect::new(move |_| {
        if let Some(tag) = widget.host.language.get()
            && !widget.language_fixed()
        {
            widget.use_language(crate::i18n::choose(&[tag]));
        }
    });
    // The agent's presence, for the host.
    Effect::new(move |_| {
        let own = widget.presence.own.get();
        let teams = own
            .teams
            .map(|p| (p.availability.as_str(), p.activity.as_str()));
        widget.host.presence_changed(&own.choice, teams);
    });
}

async fn load_config() -> Result<Config, String> {
    // `early.rs` may have taken it first (then it keeps it for us); else index.html's start-up
    // script asked already (while the wasm downloaded), else ask now.
    let started = match crate::early::take_config() {
        Some(answer) => Some(answer),
        None => crate::browser::take_started("config", None).await,
    };
    let (status, text) = match started {
        Some(answer) => (answer.status, Some(answer.text)),
        None => {
            let response = gloo_net::http::Request::get(crate::softphone::CONFIG_URL)
                .send()
                .await
                .map_err(|_| {
                    "config.json could not be loaded: the server did not answer.".to_owned()
                })?;
            let status = response.status();
            (status, response.text().await.ok())
        }
    };
    if !(200..300).contains(&status) {
        return Err(format!(
            "config.json could not be loaded (HTTP {status}). Ask your administrator to deploy it next to the widget."
        ));
    }
    let text = text.ok_or_else(|| "config.json could not be read.".to_owned())?;
    Config::from_json(&text).map_err(|e| e.to_string())
}

fn boot(widget: Widget) {
    // The language: `?lang=`, else config.json's `locale`, else the host's user (an Effect
    // in `start`), else the browser's; English is built in and shown until another arrives.
    let lang = query_param("lang");
    widget.use_language(crate::i18n::for_agent(lang.as_deref(), None));
    spawn_local(async move {
        match load_config().await {
            Ok(config) => {
                crate::browser::mark("switchboard:config");
                if lang.is_none() && config.locale != "auto" {
                    widget.use_language(crate::i18n::for_agent(None, Some(&config.locale)));
                }
                widget.host.start(&config, widget.host_callbacks());
                let msal = matches!(config.auth, AuthConfig::Msal { .. });
                widget.config.set(Some(config));
                if msal {
                    return msal_boot(widget).await;
                }
                match query_param("user") {
                    Some(user) => sign_in(widget, user),
                    None => widget.phase.set(Phase::ChooseUser),
                }
            }
            Err(e) => widget.phase.set(Phase::Failed(e)),
        }
    });
}

/// MSAL start-up: initialise, handle a redirect answer, pick the account, then a silent
/// token; if that needs the agent, `ssoSilent` with a login hint (the `loginHint` query
/// parameter, else in CIF the Dynamics user from `getEnvironment`, waited for at most
/// [`HOST_USER_WAIT_MS`](switchboard_core::signin::HOST_USER_WAIT_MS)); else the
/// "Sign in" button.
async fn msal_boot(widget: Widget) {
    let Some(config) = widget.config.get_untracked() else {
        return;
    };
    let msal = match crate::msal::Msal::start(&config.auth).await {
        Ok(msal) => msal,
        Err(p) => {
            return widget
                .phase
                .set(Phase::Failed(strings().sign_in_problem(&p)));
        }
    };
    widget.msal.set_value(Some(msal.clone()));
    let mut token = msal.api_token().await;
    if let Err(p) = &token
        && p.needs_interaction()
    {
        let hint = match query_param("loginHint") {
            Some(hint) => Some(hint),
            None => host_user(widget).await,
        };
        if let Some(hint) = hint {
            diagnostics::record("sign-in: ssoSilent with a login hint".into());
            token = msal.sso(&hint).await;
        }
    }
    match token {
        Ok(token) => msal_signed_in(widget, token),
        Err(p) if p.needs_interaction() => widget.phase.set(Phase::SignIn(None)),
        Err(p) => widget
            .phase
            .set(Phase::SignIn(Some(strings().sign_in_problem(&p)))),
    }
}

/// The host's signed-in user (CIF `getEnvironment().username`), waited for at most
/// `HOST_USER_WAIT_MS` in 100 ms steps; `None` at once for other hosts.
async fn host_user(widget: Widget) -> Option<String> {
    if widget.host.kind.get_untracked() != Some(HostKind::Cif) {
        return None;
    }
    for _ in 0..switchboard_core::signin::HOST_USER_WAIT_MS / 100 {
        if let Some(user) = widget.host.user.get_untracked() {
            return user;
        }
        gloo_timers::future::sleep(Duration::from_millis(100)).await;
    }
    diagnostics::record("sign-in: no user from the host in time".into());
    None
}

/// The agent pressed "Sign in": a redirect in a top-level tab (`auth.interaction`), else a
/// popup (opened inside the click).
pub fn msal_sign_in(widget: Widget) {
    let Some(msal) = widget.msal.get_value() else {
        return;
    };
    if !msal.redirects() {
        return msal_popup(widget);
    }
    spawn_local(async move {
        if let Err(p) = msal.redirect().await {
            widget
                .phase
                .set(Phase::SignIn(Some(strings().sign_in_problem(&p))));
        }
    });
}

/// The agent pressed "Sign in" in a frame or "Sign in again" (always a popup, so the hub
/// connection and a call in progress survive): an MSAL popup, opened inside the click.
pub fn msal_popup(widget: Widget) {
    let Some(msal) = widget.msal.get_value() else {
        return;
    };
    let popup = msal.popup();
    spawn_local(async move {
        match popup.await {
            Ok(token) if widget.phase.get_untracked() == Phase::Running => {
                diagnostics::record("sign-in: renewed interactively".into());
                widget.reauth.set(None);
                if widget.connection.get_untracked() == ConnectionState::Disconnected {
                    widget.reconnect();
                }
                drop(token);
            }
            Ok(token) => msal_signed_in(widget, token),
            Err(p) if widget.phase.get_untracked() == Phase::Running => {
                widget.reauth.set(Some(strings().sign_in_problem(&p)))
            }
            Err(p) => widget
                .phase
                .set(Phase::SignIn(Some(strings().sign_in_problem(&p)))),
        }
    });
}

fn msal_signed_in(widget: Widget, token: crate::msal::Token) {
    let Some(msal) = widget.msal.get_value() else {
        return;
    };
    note_token(&token.access_token, "acquired");
    let session = widget.session.get_untracked() + 1;
    widget.session.set(session);
    // Renew before expiry, so a negotiate or reconnect never waits on the IdP and an
    // expired session is noticed while the connection still runs.
    let renewing = msal.clone();
    spawn_local(async move {
        let mut exp = exp_of(&token.access_token);
        // Bounded: at most one renewal per 5 s, and it stops at sign-out.
        while widget.session.get_untracked() == session {
            let wait = switchboard_core::signin::renew_in_secs(unix_now(), exp);
            gloo_timers::future::sleep(Duration::from_secs(wait)).await;
            if widget.session.get_untracked() != session {
                break;
            }
            match renewing.api_token().await {
                Ok(t) => {
                    note_token(&t.access_token, "renewed");
                    exp = exp_of(&t.access_token);
                }
                Err(p) => {
                    if p.needs_interaction() {
                        widget.reauth.set(Some(strings().session_expired.into()));
                    }
                    exp = unix_now() + 60;
                }
            }
        }
    });
    let access_token: Rc<dyn Fn() -> TokenFuture> = Rc::new(move || {
        let msal = msal.clone();
        Box::pin(async move {
            match msal.api_token().await {
                Ok(t) => {
                    note_token(&t.access_token, "for negotiate");
                    Ok(t.access_token)
                }
                Err(p) => {
                    if p.needs_interaction() {
                        widget.reauth.set(Some(strings().session_expired.into()));
                    }
                    Err(p.message())
                }
            }
        })
    });
    run(widget, token.username, access_token);
}

/// Signs in as `user` (dev mode) and starts the hub connection.
pub fn sign_in(widget: Widget, user: String) {
    let Some(config) = widget.config.get_untracked() else {
        return;
    };
    let user = user.trim().to_owned();
    if let Some(window) = web_sys::window() {
        // Keep the choice across reloads (/?user=alice) and the host's own parameters (ucilib,
        // sfdcIframeOrigin, host, ...): a reload and the hand-over to the SIP build (`sip/`, same
        // query) detect the host from them.
        let search = window.location().search().unwrap_or_default();
        if let (Ok(params), Ok(history)) = (
            web_sys::UrlSearchParams::new_with_str(&search),
            window.history(),
        ) {
            params.set("user", &user);
            let url = ["?", &String::from(params.to_string())].concat();
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
        }
    }
    let AuthConfig::Dev { token_url } = &config.auth else {
        return;
    };
    let access_token = crate::auth::dev_tokens(token_url, &user);
    run(widget, user, access_token);
}

/// How long the first connection attempt waits for the agent's language (ms), and the step.
const LANGUAGE_WAIT_MS: u32 = 1_000;
const LANGUAGE_STEP_MS: u32 = 10;

/// Starts the hub connection for `user` with this token factory (called for every
/// negotiate and reconnect, so each gets a fresh token).
fn run(widget: Widget, user: String, access_token: Rc<dyn Fn() -> TokenFuture>) {
    let Some(config) = widget.config.get_untracked() else {
        return;
    };
    // SIP mode: the softphone registers with the hub's credentials (or the default build
    // hands over to the SIP build and stops here).
    if !crate::softphone::start(
        widget.softphone_port(),
        &config,
        &user,
        access_token.clone(),
    ) {
        return;
    }
    widget.user.set(Some(user.clone()));
    widget.load_history(&user);
    widget.claim_ringer(&user);
    let handlers = HubClientHandlers {
        access_token,
        on_state: Rc::new(move |state, detail: Option<String>| {
            widget.connection_changed(state, detail)
        }),
        on_invocation: Rc::new(move |target, arguments| widget.on_invocation(&target, arguments)),
        on_diagnostic: Rc::new(diagnostics::record),
        on_next_attempt: Rc::new(move |at: Option<f64>| {
            if at.is_some() {
                // An attempt failed: the desk shows at once (its "waiting for the hub" state).
                widget.desk_may_show();
            }
            widget.next_attempt.set(at)
        }),
    };
    let options = match crate::early::hub_options(&config) {
        Ok(options) => options,
        Err(text) => return widget.phase.set(Phase::Failed(text)),
    };
    // The connection `early.rs` started before the app was mounted, if any (its reports so
    // far are delivered at the end, once the stores below are listening); else a new one.
    let (client, early) = match crate::early::take(&user) {
        Some(early) => (early.client(), Some((early, handlers))),
        None => (HubClient::new(options, handlers), None),
    };
    widget.client.set_value(Some(client.clone()));
    let graph_token: Option<Rc<dyn Fn() -> TokenFuture>> =
        match (&config.auth, widget.msal.get_value()) {
            (AuthConfig::Dev { token_url }, _) => Some(crate::auth::dev_tokens(token_url, &user)),
            (AuthConfig::Msal { .. }, Some(msal)) if msal.has_graph() => Some(Rc::new(move || {
                let msal = msal.clone();
                Box::pin(async move { msal.graph_token().await.map_err(|p| p.message()) })
            })),
            _ => None,
        };
    let first_state = config.presence_mapping.states.first().cloned();
    widget.agent.start(
        &user,
        client.clone(),
        first_state.as_deref().unwrap_or("Ready"),
    );
    widget
        .presence
        .start(&config, &user, client.clone(), graph_token);
    // The connection first, then the desk: the token request leaves before the desk's views
    // are built (both run as queued tasks, in this order), so the network and the rendering
    // overlap instead of following one another (issue 17, "start-up target").
    // The connection's texts (why it failed, in the agent's language) are made when they
    // happen: the first attempt waits for the catalogue asked for at start (`?lang=`, the
    // browser's), at most LANGUAGE_WAIT_MS; English agents never wait.
    match early {
        // Started already: what it recorded is delivered now (a call offered before this tab
        // held its ringing-tab lock is asked for again once it does: `claim_ringer`).
        Some((early, handlers)) => spawn_local(async move { early.attach(handlers) }),
        None => spawn_local(async move {
            for _ in 0..LANGUAGE_WAIT_MS / LANGUAGE_STEP_MS {
                if widget.language_settled() {
                    break;
                }
                gloo_timers::future::sleep(Duration::from_millis(LANGUAGE_STEP_MS.into())).await;
            }
            crate::browser::mark("switchboard:hub-start");
            client.start();
        }),
    }
    widget.phase.set(Phase::Running);
    // The desk is built once the first connection is up (state.rs `desk_ready`), or after
    // DESK_WAIT_MS if it takes longer.
    gloo_timers::callback::Timeout::new(crate::state::DESK_WAIT_MS, move || widget.desk_may_show())
        .forget();
}

/// Stops the connection and returns to the sign-in form.
pub fn sign_out(widget: Widget) {
    // Clears our session presence in Teams (Graph, not the hub).
    widget.presence.sign_out();
    widget.agent.stop();
    crate::softphone::stop();
    if let Some(client) = widget.client.get_value() {
        client.stop();
    }
    widget.client.set_value(None);
    // Another tab of this browser rings from now on.
    widget.ringer.set_value(None);
    widget.user.set(None);
    widget.desk.set(Desk::new());
    widget.history.set(History::default());
    widget.notice.set(None);
    widget.reauth.set(None);
    widget.session.update(|s| *s += 1);
    if let Some(msal) = widget.msal.get_value() {
        // MSAL: forget this app's tokens and account here, back to "Sign in".
        spawn_local(async move { msal.sign_out().await });
        diagnostics::record("sign-in: signed out".into());
        widget.phase.set(Phase::SignIn(None));
        return;
    }
    if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("?"));
    }
    widget.phase.set(Phase::ChooseUser);
}

fn unix_now() -> u64 {
    (now_ms() / 1000.0) as u64
}

fn exp_of(token: &str) -> u64 {
    switchboard_core::jwt::read_claims(token)
        .and_then(|c| c.exp)
        .unwrap_or_else(|| unix_now() + 300)
}

/// Diagnostics for a token: what happened and how long it lives (never the token itself).
fn note_token(token: &str, what: &str) {
    let left = exp_of(token).saturating_sub(unix_now());
    let id = token.len() as u64 ^ exp_of(token);
    diagnostics::record(format!("token {what}: expires in {left} s (id {id:x})"));
}
