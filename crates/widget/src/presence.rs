//! Presence in the widget (issue 6, `docs/presence.md`): the agent's own presence and the
//! team list, kept live by `PresenceChanged` pushes, and [`PresenceSync`] (sans-IO, in
//! `switchboard-core`) driven with one timer; its [`Command`]s are carried out through the
//! [`Graph`] client, one at a time and in order.
//!
//! The widget calls [`Presence::start`] at sign-in, [`Presence::connected`] on every
//! (re)connect, [`Presence::pushed`] for `PresenceChanged`, and [`Presence::sign_out`] before
//! stopping the hub (`boot.rs`, `state.rs`); the views (`ui/presence.rs`) get its signals and
//! [`Presence::choose`] / [`Presence::toggle_favourite`] as callbacks.
//! Calls are followed from the desk signal (active call → `call_started`, gone → `call_ended`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};
use switchboard_core::presence::poll::{PollScheduler, TeamSource};
use switchboard_core::presence::{
    AgentSource, Choice, Command, HeldBack, Presence as Pair, PresenceSync, batches, choice,
};
use switchboard_core::{Config, Desk};

use crate::agent::AgentStatus;
use crate::browser::storage;
use crate::graph::{Colleague, Graph, read_presences};
use crate::signalr::HubClient;

/// Where the shown presence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The agent chose it in this widget.
    Here,
    /// Teams (or Graph) changed it.
    Teams,
    /// The widget did it by itself (a call).
    Automatic,
}

/// The agent's own presence as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Own {
    /// The selected option: `state:<agent state>`, `teams:<availability>` or empty.
    pub choice: String,
    /// The Teams presence as Graph aggregates it.
    pub teams: Option<Pair>,
    /// Where the last change came from.
    pub source: Source,
}

/// How the team list stands.
#[derive(Debug, Clone, PartialEq)]
pub enum TeamLoad {
    Loading,
    Loaded,
    Failed(String),
}

/// Pushes of our own presence this soon after our own write count as its echo.
const ECHO_MS: f64 = 8_000.0;
const FAVOURITES_KEY: &str = "switchboard.favourites";

struct Inner {
    me: String,
    graph: Rc<Graph>,
    engine: PresenceSync,
    /// Agent states the engine set (`Command::SetAgentState`).
    queue: VecDeque<Command>,
    working: bool,
    timer: Option<gloo_timers::callback::Timeout>,
    /// Source and time of our last Graph write, for telling echoes from Teams changes.
    last_write: Option<(Source, f64)>,
    /// `presence.pollSeconds`.
    poll_seconds: u64,
    /// Polling `getPresencesByUserId`, while the hub says `"push": "none"`.
    poll: Option<PollScheduler>,
    poll_timer: Option<gloo_timers::callback::Timeout>,
}

/// The presence state of the widget. `Copy`: signal handles.
#[derive(Clone, Copy)]
pub struct Presence {
    pub own: RwSignal<Own>,
    pub states: RwSignal<Vec<String>>,
    pub team: RwSignal<Vec<Colleague>>,
    pub team_load: RwSignal<TeamLoad>,
    pub presences: RwSignal<HashMap<String, Pair>>,
    pub favourites: RwSignal<HashSet<String>>,
    pub error: RwSignal<Option<String>>,
    /// A Teams write (or a Teams change) the sync engine holds back: the 15-second rule or
    /// loop detection, and until when (`PresenceSync::held_back`).
    pub held: RwSignal<Option<HeldBack>>,
    /// Whether the widget polls Graph for presence (the hub pushes nothing).
    pub polling: RwSignal<bool>,
    inner: StoredValue<Option<Inner>, LocalStorage>,
    client: StoredValue<Option<HubClient>, LocalStorage>,
    /// Fired by the first hub connection after sign-in (or [`TEAM_LOAD_WAIT_MS`] after it):
    /// Graph's presence and team reads wait for it.
    hub_up: StoredValue<Option<futures_channel::oneshot::Sender<()>>, LocalStorage>,
    /// How many times our own Teams presence was set (a push or a read's answer), and how many
    /// of those were pushes: a read that started before a newer answer is dropped
    /// ([`Presence::teams_read`]).
    teams_seq: StoredValue<(u64, u64)>,
    /// The agent state the hub keeps (`agent.rs`): the control publishes to it and shows it.
    agent: AgentStatus,
}

/// How long Graph's first reads wait for the hub connection at most (ms).
const TEAM_LOAD_WAIT_MS: u32 = 3_000;

fn epoch_ms() -> u64 {
    crate::browser::now_ms().max(0.0) as u64
}

impl Presence {
    /// Transfer targets for the call panel: `(id, name)` of the team, favourites first, then
    /// by name, at most 100 (the hub takes the id as a target). Reactive.
    pub fn transfer_targets(&self) -> Vec<(String, String)> {
        let favourites = self.favourites.get();
        let mut list: Vec<(String, String)> = self.team.with(|team| {
            team.iter()
                .map(|c| (c.id.clone(), c.name.clone()))
                .collect()
        });
        list.sort_by(|a, b| {
            favourites
                .contains(&b.0)
                .cmp(&favourites.contains(&a.0))
                .then_with(|| a.1.cmp(&b.1))
        });
        list.truncate(100);
        list
    }

    pub fn new(desk: RwSignal<Desk>, agent: AgentStatus) -> Self {
        let favourites = storage()
            .and_then(|s| s.get_item(FAVOURITES_KEY).ok()?)
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|v| {
                v.as_array().map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default();
        let this = Self {
            own: RwSignal::new(Own {
                choice: String::new(),
                teams: None,
                source: Source::Here,
            }),
            states: RwSignal::new(Vec::new()),
            team: RwSignal::new(Vec::new()),
            team_load: RwSignal::new(TeamLoad::Loading),
            presences: RwSignal::new(HashMap::new()),
            favourites: RwSignal::new(favourites),
            error: RwSignal::new(None),
            held: RwSignal::new(None),
            polling: RwSignal::new(false),
            inner: StoredValue::new_local(None),
            client: StoredValue::new_local(None),
            hub_up: StoredValue::new_local(None),
            teams_seq: StoredValue::new((0, 0)),
            agent,
        };
        // The hub's state (another tab's choice, OnCall / WrapUp / Missed, a reload) is the
        // control's choice; for the Teams sync it is the contact-centre system's change.
        Effect::new(move |_| {
            let Some(state) = agent.state.with(|s| s.as_ref().map(|s| s.state.clone())) else {
                return;
            };
            let value = choice::state_value(&state);
            if this.own.with_untracked(|o| o.choice != value) {
                this.own.update(|o| o.choice = value);
                this.with_engine(|e, now| e.agent_state_changed(now, &state, AgentSource::System));
            }
        });
        // Follow the desk: a call became active → call_started; it went → call_ended.
        Effect::new(move |before: Option<bool>| {
            let on_call = desk.with(|d| d.active().is_some());
            if before.is_some_and(|b| b != on_call) {
                this.with_engine(|e, now| {
                    if on_call {
                        e.call_started(now)
                    } else {
                        e.call_ended(now)
                    }
                });
                if on_call {
                    this.own.update(|o| o.source = Source::Automatic);
                }
            }
            on_call
        });
        // A hidden page polls nothing; shown again, an overdue poll runs at once.
        crate::browser::on_document("visibilitychange", move || {
            let hidden = crate::browser::page_hidden();
            this.inner.update_value(|i| {
                if let Some(p) = i.as_mut().and_then(|i| i.poll.as_mut()) {
                    p.set_hidden(hidden);
                }
            });
            this.arm_poll();
        });
        // Favourites persist (ids only).
        Effect::new(move |_| {
            let ids: Vec<String> = this.favourites.with(|f| f.iter().cloned().collect());
            if let Some(s) = storage() {
                let _ = s.set_item(FAVOURITES_KEY, &json!(ids).to_string());
            }
        });
        this
    }

    /// Sign-in: build the engine and the Graph client, read our presence, load the team.
    /// `graph_token` gives Graph bearer tokens (dev tokens, or MSAL's for the Graph presence
    /// scopes); `None` leaves presence off (MSAL without Graph scopes).
    pub fn start(
        self,
        config: &Config,
        user: &str,
        client: HubClient,
        graph_token: Option<Rc<dyn Fn() -> crate::signalr::TokenFuture>>,
    ) {
        // The agent states are offered with or without Graph (the hub keeps them).
        let states = config.presence_mapping.states.clone();
        let first = states.first().cloned().unwrap_or_default();
        self.states.set(states);
        self.own.set(Own {
            choice: choice::state_value(&first),
            teams: None,
            source: Source::Here,
        });
        let Some(graph_token) = graph_token else {
            return;
        };
        let graph = Rc::new(Graph::new(&config.graph.base_url, user, graph_token));
        let engine = PresenceSync::new(
            config.presence_sync.clone(),
            config.presence_mapping.clone(),
            epoch_ms(),
            &first,
        );
        self.error.set(None);
        self.client.set_value(Some(client));
        self.inner.set_value(Some(Inner {
            me: user.to_owned(),
            graph: graph.clone(),
            engine,
            queue: VecDeque::new(),
            working: false,
            timer: None,
            last_write: None,
            poll_seconds: config.presence_poll_seconds,
            poll: None,
            poll_timer: None,
        }));
        self.arm();
        let team_source = config.presence_team.clone();
        // Graph waits for the hub: its token, presence and team requests (and their JSON) would
        // otherwise compete with the hub connection for the network and the main thread, and
        // the team is not shown before the desk is connected (issue 17, "start-up target").
        // Bounded, so a hub that does not answer never keeps the team from loading.
        let (up, hub_up) = futures_channel::oneshot::channel::<()>();
        self.hub_up.set_value(Some(up));
        gloo_timers::callback::Timeout::new(TEAM_LOAD_WAIT_MS, move || {
            if let Some(up) = self.hub_up.try_update_value(Option::take).flatten() {
                let _ = up.send(());
            }
        })
        .forget();
        spawn_local(async move {
            let _ = hub_up.await;
            let started = self.teams_seq.get_value().0;
            match graph.my_presence().await {
                Ok(p) => self.teams_read(started, p, false),
                Err(e) => self.error.set(Some(e)),
            }
            self.team_load.set(TeamLoad::Loading);
            let me = self.me();
            let loaded = async {
                let mut team = match &team_source {
                    TeamSource::Group(id) => graph.group_members(id).await?,
                    TeamSource::Users(keys) => graph.users(keys).await?,
                    TeamSource::Directory => graph.colleagues().await?,
                };
                team.retain(|c| Some(&c.id) != me.as_ref());
                let ids: Vec<String> = team.iter().map(|c| c.id.clone()).collect();
                let presences = graph.presences(&ids).await?;
                Ok::<_, String>((team, presences))
            };
            match loaded.await {
                Ok((team, presences)) => {
                    self.presences.update(|m| m.extend(presences));
                    self.team.set(team);
                    self.team_load.set(TeamLoad::Loaded);
                    self.subscribe(true);
                }
                Err(e) => self.team_load.set(TeamLoad::Failed(e)),
            }
        });
    }

    fn me(self) -> Option<String> {
        self.inner.with_value(|i| i.as_ref().map(|i| i.me.clone()))
    }

    /// The hub connected (again): watch our own presence and the team's.
    pub fn connected(self) {
        if let Some(up) = self.hub_up.try_update_value(Option::take).flatten() {
            let _ = up.send(());
        }
        self.subscribe(false);
    }

    /// `subscribePresence([me, ...team])`, 650 ids per call. `team_only` skips our own id.
    fn subscribe(self, team_only: bool) {
        let (Some(me), Some(client)) = (self.me(), self.client.get_value()) else {
            return;
        };
        let mut ids: Vec<String> = if team_only { Vec::new() } else { vec![me] };
        if self.team_load.get_untracked() == TeamLoad::Loaded {
            self.team
                .with_untracked(|t| ids.extend(t.iter().map(|c| c.id.clone())));
        }
        let chunks: Vec<Vec<String>> = batches(&ids).map(<[String]>::to_vec).collect();
        spawn_local(async move {
            for chunk in chunks {
                // The hub reads the presence when it subscribes: newer than any read before,
                // older only than a push after it.
                let pushes = self.teams_seq.get_value().1;
                match client.invoke("subscribePresence", vec![json!(chunk)]).await {
                    Ok(answer) => {
                        self.push_mode(answer.get("push").and_then(Value::as_str));
                        let me = self.me();
                        let mut own = None;
                        let list: Vec<_> = read_presences(&answer)
                            .filter(|(id, p)| {
                                let mine = Some(id) == me.as_ref();
                                if mine {
                                    own = Some(*p);
                                }
                                !mine
                            })
                            .collect();
                        self.presences.update(|m| m.extend(list));
                        if let Some(p) = own
                            && self.teams_seq.get_value().1 == pushes
                        {
                            self.teams_changed(p, false);
                        }
                    }
                    Err(e) => web_sys::console::warn_1(&format!("subscribePresence: {e}").into()),
                }
            }
        });
    }

    /// The hub said how presence will arrive (`subscribePresence`'s `push`): `"none"` starts
    /// polling Graph (`presence.pollSeconds`), anything else stops it.
    fn push_mode(self, push: Option<&str>) {
        let poll = push == Some("none");
        let hidden = crate::browser::page_hidden();
        self.inner.update_value(|i| {
            if let Some(i) = i {
                match (poll, i.poll.is_some()) {
                    (true, false) => {
                        let mut scheduler = PollScheduler::new(i.poll_seconds, epoch_ms());
                        scheduler.set_hidden(hidden);
                        i.poll = Some(scheduler);
                    }
                    (false, true) => {
                        i.poll = None;
                        i.poll_timer = None;
                    }
                    _ => {}
                }
            }
        });
        self.polling.set(poll);
        self.arm_poll();
    }

    /// One timer at the poll scheduler's next deadline (none while hidden or in flight).
    fn arm_poll(self) {
        let deadline = self.inner.with_value(|i| {
            i.as_ref()
                .and_then(|i| i.poll.as_ref())
                .and_then(PollScheduler::next_deadline)
        });
        let timer = deadline.map(|at| {
            let delay = at.saturating_sub(epoch_ms()).min(i32::MAX as u64) as u32;
            gloo_timers::callback::Timeout::new(delay, move || self.poll_now())
        });
        self.inner.update_value(|i| {
            if let Some(i) = i {
                i.poll_timer = timer;
            }
        });
    }

    /// The poll timer fired: read our own and the team's presence with
    /// `getPresencesByUserId` (650 ids a request), then schedule the next poll (`Retry-After`
    /// on 429/503, back-off on errors).
    fn poll_now(self) {
        let now = epoch_ms();
        let started = self.inner.try_update_value(|i| {
            let i = i.as_mut()?;
            let start = i.poll.as_mut()?.start(now);
            start.then(|| (i.graph.clone(), i.me.clone()))
        });
        let Some(Some((graph, me))) = started else {
            self.arm_poll();
            return;
        };
        let mut ids = vec![me.clone()];
        self.team
            .with_untracked(|t| ids.extend(t.iter().map(|c| c.id.clone())));
        let started = self.teams_seq.get_value().0;
        spawn_local(async move {
            let result = graph.poll_presences(&ids).await;
            let now = epoch_ms();
            let outcome = match result {
                Ok(list) => {
                    let mut own = None;
                    let others: Vec<_> = list
                        .into_iter()
                        .filter(|(id, p)| {
                            let mine = *id == me;
                            if mine {
                                own = Some(*p);
                            }
                            !mine
                        })
                        .collect();
                    // Only what changed: a poll repeats the same values every interval.
                    let changed: Vec<_> = self.presences.with_untracked(|m| {
                        others
                            .into_iter()
                            .filter(|(id, p)| m.get(id) != Some(p))
                            .collect()
                    });
                    if !changed.is_empty() {
                        self.presences.update(|m| m.extend(changed));
                    }
                    if let Some(p) =
                        own.filter(|p| self.own.with_untracked(|o| o.teams != Some(*p)))
                    {
                        self.teams_read(started, p, true);
                    }
                    Ok(())
                }
                Err(f) => {
                    web_sys::console::warn_1(&format!("presence poll: {}", f.message).into());
                    Err(f)
                }
            };
            self.inner.update_value(|i| {
                if let Some(p) = i.as_mut().and_then(|i| i.poll.as_mut()) {
                    match outcome {
                        Ok(()) => p.succeeded(now),
                        Err(f) if f.throttled => p.throttled(now, f.retry_after_ms),
                        Err(_) => p.failed(now),
                    }
                }
            });
            self.arm_poll();
        });
    }

    /// `PresenceChanged(presence)`: `id`'s Teams presence is `pair`.
    pub fn pushed(self, id: String, pair: Pair) {
        if Some(&id) == self.me().as_ref() {
            self.teams_seq.update_value(|(_, pushes)| *pushes += 1);
            self.teams_changed(pair, true);
        } else {
            self.presences.update(|m| {
                m.insert(id, pair);
            });
        }
    }

    /// A read of our own Teams presence (Graph, or `subscribePresence`'s answer) that started
    /// when [`teams_seq`](Self::teams_seq) counted `started` changes: applied unless another answer (a
    /// push, a later read) came meanwhile. A read answered before a change but handled after
    /// its push would otherwise undo the change until the next poll (seen in the e2e suite
    /// under load: "Available" pushed, then "Offline" from the start-up read).
    fn teams_read(self, started: u64, pair: Pair, push: bool) {
        if self.teams_seq.get_value().0 == started {
            self.teams_changed(pair, push);
        } else {
            crate::diagnostics::record(
                "presence: a Teams read older than the last change was not applied".into(),
            );
        }
    }

    /// Our Teams presence is `pair` (a push, a read). A push soon after our own write is its echo.
    fn teams_changed(self, pair: Pair, push: bool) {
        self.teams_seq.update_value(|(changes, _)| *changes += 1);
        let recent = self.inner.with_value(|i| {
            i.as_ref()
                .and_then(|i| i.last_write)
                .filter(|(_, at)| crate::browser::now_ms() - at < ECHO_MS)
                .map(|(s, _)| s)
        });
        let on_call =
            self.own.with_untracked(|o| o.source == Source::Automatic) && pair == Pair::IN_A_CALL;
        self.own.update(|o| {
            if o.teams != Some(pair) {
                o.source = match (push, recent) {
                    _ if on_call => Source::Automatic,
                    (true, Some(source)) => source,
                    _ => Source::Teams,
                };
            }
            o.teams = Some(pair);
        });
        self.with_engine(|e, now| e.teams_presence_changed(now, pair));
    }

    /// The agent picked an option of the presence control.
    pub fn choose(self, choice: String) {
        self.error.set(None);
        self.own.update(|o| {
            o.choice = choice.clone();
            o.source = Source::Here;
        });
        match Choice::parse(&choice) {
            Some(Choice::State(state)) => {
                self.with_engine(|e, now| e.agent_state_changed(now, &state, AgentSource::User));
                self.agent.publish(state);
            }
            Some(Choice::Teams(presence)) => {
                let command = Command::SetTeamsPresence {
                    presence,
                    expiration_ms: None,
                };
                self.inner.update_value(|i| {
                    if let Some(i) = i {
                        i.queue.push_back(command);
                    }
                });
                self.work(Source::Here);
            }
            None => {}
        }
    }

    /// Star or unstar a colleague.
    pub fn toggle_favourite(self, id: String) {
        self.favourites.update(|f| {
            if !f.remove(&id) {
                f.insert(id);
            }
        });
    }

    /// Sign-out: clear our session presence (before the hub stops), then forget everything.
    pub fn sign_out(self) {
        self.with_engine(|e, now| e.sign_out(now));
        self.inner.update_value(|i| {
            if let Some(i) = i {
                i.timer = None;
                i.poll = None;
                i.poll_timer = None;
            }
        });
        self.polling.set(false);
        self.held.set(None);
        self.client.set_value(None);
        self.team.set(Vec::new());
        self.presences.set(HashMap::new());
        self.team_load.set(TeamLoad::Loading);
    }

    /// Feeds the engine, collects its commands, runs them, re-arms the timer.
    fn with_engine(self, f: impl FnOnce(&mut PresenceSync, u64)) {
        let mut fed = false;
        self.inner.update_value(|i| {
            if let Some(i) = i {
                f(&mut i.engine, epoch_ms());
                while let Some(c) = i.engine.poll_command() {
                    i.queue.push_back(c);
                }
                fed = true;
            }
        });
        if fed {
            let on_call = self.own.with_untracked(|o| o.source == Source::Automatic);
            self.work(if on_call {
                Source::Automatic
            } else {
                Source::Here
            });
            self.arm();
        }
    }

    /// One timer at the engine's next deadline (and the held-back notice brought up to date).
    fn arm(self) {
        let now = epoch_ms();
        let held = self
            .inner
            .with_value(|i| i.as_ref().and_then(|i| i.engine.held_back(now)));
        if self.held.get_untracked() != held {
            self.held.set(held);
        }
        let deadline = self
            .inner
            .with_value(|i| i.as_ref().and_then(|i| i.engine.next_deadline()));
        let timer = deadline.map(|at| {
            let delay = at.saturating_sub(epoch_ms()).min(i32::MAX as u64) as u32;
            gloo_timers::callback::Timeout::new(delay + 20, move || {
                self.with_engine(|e, now| e.poll(now));
            })
        });
        self.inner.update_value(|i| {
            if let Some(i) = i {
                i.timer = timer;
            }
        });
    }

    /// Runs queued commands one at a time (Graph calls in order).
    fn work(self, source: Source) {
        let start = self.inner.try_update_value(|i| match i {
            Some(i) if !i.working && !i.queue.is_empty() => {
                i.working = true;
                Some(i.graph.clone())
            }
            _ => None,
        });
        let Some(Some(graph)) = start else { return };
        spawn_local(async move {
            // Bounded: a queue grows only by engine output, which is bounded per input.
            for _ in 0..64 {
                let next = self
                    .inner
                    .try_update_value(|i| i.as_mut().and_then(|i| i.queue.pop_front()))
                    .flatten();
                let Some(command) = next else { break };
                self.run(&graph, command, source).await;
            }
            self.inner.update_value(|i| {
                if let Some(i) = i {
                    i.working = false;
                }
            });
            // Commands queued while the last one ran.
            if self
                .inner
                .with_value(|i| i.as_ref().is_some_and(|i| !i.queue.is_empty()))
            {
                self.work(source);
            }
        });
    }

    async fn run(self, graph: &Graph, command: Command, source: Source) {
        match &command {
            // The source stays that of the Teams change that caused it.
            Command::SetAgentState { state } => {
                self.own.update(|o| o.choice = choice::state_value(state));
                // OnCall / WrapUp / Missed are the hub's to set (a Teams call maps to OnCall).
                if !switchboard_core::agent_state::is_automatic(state) {
                    self.agent.publish(state.clone());
                }
            }
            Command::FetchTeamsPresence => {
                let started = self.teams_seq.get_value().0;
                match graph.my_presence().await {
                    Ok(p) => self.teams_read(started, p, false),
                    Err(e) => self.error.set(Some(e)),
                }
            }
            _ => {
                let Some((action, body)) = command.graph_request() else {
                    return;
                };
                let source = match command {
                    Command::PublishSession { .. }
                    | Command::RenewSession { .. }
                    | Command::ClearSessionPresence { .. } => Source::Automatic,
                    _ => source,
                };
                self.inner.update_value(|i| {
                    if let Some(i) = i {
                        i.last_write = Some((source, crate::browser::now_ms()));
                    }
                });
                if let Err(e) = graph.presence_action(action, &body).await {
                    web_sys::console::warn_1(&format!("{action}: {e}").into());
                    self.error.set(Some(e));
                }
            }
        }
    }
}
