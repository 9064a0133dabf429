use super::*;
use crate::presence::{Activity, Availability};
use proptest::prelude::*;
use serde_json::json;

const S: u64 = 1000;
const T0: u64 = 1_700_000_000_000;

fn p(a: Availability, b: Activity) -> Presence {
    Presence::new(a, b)
}
fn away() -> Presence {
    p(Availability::Away, Activity::Away)
}
fn available() -> Presence {
    p(Availability::Available, Activity::Available)
}
fn dnd() -> Presence {
    p(Availability::DoNotDisturb, Activity::DoNotDisturb)
}
fn busy() -> Presence {
    p(Availability::Busy, Activity::Busy)
}

fn engine() -> PresenceSync {
    PresenceSync::new(
        SyncConfig::default(),
        PresenceMapping::default(),
        T0,
        "Ready",
    )
}

fn drain(e: &mut PresenceSync) -> Vec<Command> {
    std::iter::from_fn(|| e.poll_command()).collect()
}

fn set_agent(s: &str) -> Command {
    Command::SetAgentState { state: s.into() }
}

fn set_teams(presence: Presence) -> Command {
    Command::SetTeamsPresence {
        presence,
        expiration_ms: None,
    }
}

#[test]
fn teams_state_shorter_than_15_s_is_not_synchronised() {
    let mut e = engine();
    e.teams_presence_changed(T0, away());
    e.poll(T0 + 10 * S);
    e.teams_presence_changed(T0 + 10 * S, dnd());
    e.poll(T0 + 24 * S);
    assert_eq!(drain(&mut e), vec![], "Away held 10 s, DND 14 s");
    assert_eq!(e.next_deadline(), Some(T0 + 25 * S));
    e.poll(T0 + 25 * S);
    assert_eq!(drain(&mut e), vec![set_agent("NotReady")]);
    assert_eq!(e.agent_source(), AgentSource::Sync);
}

#[test]
fn agent_state_shorter_than_15_s_is_not_synchronised() {
    let mut e = engine();
    e.agent_state_changed(T0, "Break", AgentSource::User);
    e.agent_state_changed(T0 + 14 * S, "Ready", AgentSource::User);
    e.poll(T0 + 40 * S);
    assert_eq!(
        drain(&mut e),
        vec![],
        "Break lasted 14 s; Ready needs no write"
    );
    e.agent_state_changed(T0 + 50 * S, "Break", AgentSource::User);
    e.poll(T0 + 64 * S);
    assert_eq!(drain(&mut e), vec![]);
    e.poll(T0 + 65 * S);
    assert_eq!(drain(&mut e), vec![set_teams(away())]);
    assert_eq!(e.preferred_presence(), Some(away()));
}

#[test]
fn our_own_writes_echo_back_without_effect() {
    let mut e = engine();
    e.agent_state_changed(T0, "Break", AgentSource::User);
    e.poll(T0 + 15 * S);
    assert_eq!(drain(&mut e), vec![set_teams(away())]);
    // Teams reports what we wrote, minutes later: ignored (no SetAgentState, no new write).
    e.teams_presence_changed(T0 + 150 * S, away());
    e.poll(T0 + 200 * S);
    assert_eq!(drain(&mut e), vec![]);
    assert_eq!(e.agent_state(), "Break");
    assert_eq!(e.agent_source(), AgentSource::User);
    // The widget feeding back a SetAgentState echo is ignored too.
    e.agent_state_changed(T0 + 201 * S, "Break", AgentSource::Sync);
    assert!(e.is_settled());
}

#[test]
fn teams_to_agent_never_bounces_back_to_teams() {
    let mut e = engine();
    e.teams_presence_changed(T0, away());
    e.poll(T0 + 15 * S);
    assert_eq!(drain(&mut e), vec![set_agent("Break")]);
    // Break maps to Away/Away in Teams, but a sync-caused state is never written back.
    e.agent_state_changed(T0 + 16 * S, "Break", AgentSource::Sync);
    e.poll(T0 + 60 * S);
    assert_eq!(drain(&mut e), vec![]);
    // Teams back to Available ("online" unsets): the agent's own state returns.
    e.teams_presence_changed(T0 + 100 * S, available());
    e.poll(T0 + 115 * S);
    assert_eq!(drain(&mut e), vec![set_agent("Ready")]);
    assert_eq!(e.agent_source(), AgentSource::User);
    e.poll(T0 + 300 * S);
    assert_eq!(drain(&mut e), vec![]);
}

#[test]
fn online_never_overrides_the_agents_choice() {
    let mut e = engine();
    e.agent_state_changed(T0, "Offline", AgentSource::User);
    e.teams_presence_changed(T0 + 60 * S, available());
    e.poll(T0 + 100 * S);
    assert_eq!(drain(&mut e), vec![]);
    assert_eq!(e.agent_state(), "Offline");
}

#[test]
fn idle_teams_states_count_as_their_base() {
    let mut e = engine();
    e.teams_presence_changed(T0, p(Availability::BusyIdle, Activity::Busy));
    assert_eq!(e.teams_presence(), Some(busy()));
}

#[test]
fn the_agents_change_wins_when_both_change_at_once() {
    let mut e = engine();
    e.agent_state_changed(T0, "NotReady", AgentSource::User);
    e.teams_presence_changed(T0 + 5 * S, away());
    e.poll(T0 + 60 * S);
    assert_eq!(drain(&mut e), vec![set_teams(busy())]);
    assert_eq!(e.agent_state(), "NotReady");
    // A Teams change while the agent's change is still settling loses as well.
    e.teams_presence_changed(T0 + 100 * S, dnd());
    e.agent_state_changed(T0 + 110 * S, "Break", AgentSource::User);
    e.poll(T0 + 130 * S);
    assert_eq!(drain(&mut e), vec![set_teams(away())]);
    // Long after the agent's change, Teams wins again.
    e.teams_presence_changed(T0 + 400 * S, p(Availability::Busy, Activity::InAMeeting));
    e.poll(T0 + 415 * S);
    assert_eq!(drain(&mut e), vec![set_agent("NotReady")]);
}

#[test]
fn forced_resync_every_hour() {
    let mut e = engine();
    e.agent_state_changed(T0, "Break", AgentSource::User);
    e.poll(T0 + 15 * S);
    drain(&mut e);
    assert_eq!(e.next_deadline(), Some(T0 + 3600 * S));
    e.poll(T0 + 3600 * S);
    assert_eq!(
        drain(&mut e),
        vec![Command::FetchTeamsPresence, set_teams(away())]
    );
    assert_eq!(e.next_deadline(), Some(T0 + 7200 * S));
}

#[test]
fn a_call_publishes_in_a_call_renews_and_restores() {
    let mut e = engine();
    e.agent_state_changed(T0, "NotReady", AgentSource::User);
    e.poll(T0 + 15 * S);
    assert_eq!(drain(&mut e), vec![set_teams(busy())]);

    // A 10 s call: nothing published.
    e.call_started(T0 + 100 * S);
    e.call_ended(T0 + 110 * S);
    e.poll(T0 + 130 * S);
    assert_eq!(drain(&mut e), vec![]);

    let start = T0 + 200 * S;
    e.call_started(start);
    assert_eq!(e.next_deadline(), Some(start + 15 * S));
    e.poll(start + 15 * S);
    let session = |presence| Command::PublishSession {
        session_id: "switchboard".into(),
        presence,
        expiration_ms: 600_000,
    };
    assert_eq!(
        drain(&mut e),
        vec![Command::ClearTeamsPresence, session(Presence::IN_A_CALL)]
    );
    assert_eq!(
        session(Presence::IN_A_CALL).graph_request().unwrap(),
        (
            "setPresence",
            json!({"sessionId": "switchboard", "availability": "Busy", "activity": "InACall", "expirationDuration": "PT10M"})
        )
    );
    // Teams echoes InACall: explained by our session.
    e.teams_presence_changed(start + 60 * S, Presence::IN_A_CALL);
    assert_eq!(e.next_deadline(), Some(start + 315 * S));
    e.poll(start + 315 * S);
    assert_eq!(
        drain(&mut e),
        vec![Command::RenewSession {
            session_id: "switchboard".into(),
            presence: Presence::IN_A_CALL,
            expiration_ms: 600_000
        }]
    );
    e.poll(start + 615 * S);
    assert!(matches!(drain(&mut e)[..], [Command::RenewSession { .. }]));

    // The call ends: the session is cleared and the agent's preferred presence restored.
    e.call_ended(start + 700 * S);
    assert_eq!(
        drain(&mut e),
        vec![
            Command::ClearSessionPresence {
                session_id: "switchboard".into()
            },
            set_teams(busy()),
        ]
    );
    // Teams passes through Available on the way: superseded by the echo of Busy, not synced.
    e.teams_presence_changed(start + 701 * S, available());
    e.teams_presence_changed(start + 703 * S, busy());
    e.poll(start + 800 * S);
    assert_eq!(drain(&mut e), vec![]);
    assert_eq!(e.agent_state(), "NotReady");
}

#[test]
fn teams_changes_during_a_call_apply_after_it() {
    let mut e = engine();
    e.call_started(T0);
    e.teams_presence_changed(T0 + 20 * S, away());
    e.poll(T0 + 60 * S);
    assert!(!drain(&mut e).contains(&set_agent("Break")));
    e.call_ended(T0 + 90 * S);
    assert_eq!(
        drain(&mut e),
        vec![
            set_agent("Break"),
            Command::ClearSessionPresence {
                session_id: "switchboard".into()
            },
        ]
    );
}

#[test]
fn on_call_agent_state_publishes_a_session() {
    let mut e = engine();
    e.agent_state_changed(T0, "OnCall", AgentSource::System);
    e.poll(T0 + 15 * S);
    assert!(matches!(
        drain(&mut e)[..],
        [Command::PublishSession { presence, .. }] if presence == Presence::IN_A_CALL
    ));
    e.agent_state_changed(T0 + 100 * S, "Ready", AgentSource::System);
    assert!(matches!(
        drain(&mut e)[..],
        [Command::ClearSessionPresence { .. }]
    ));
}

#[test]
fn sign_out_clears_the_session() {
    let mut e = engine();
    e.call_started(T0);
    e.poll(T0 + 15 * S);
    drain(&mut e);
    e.sign_out(T0 + 20 * S);
    assert_eq!(
        drain(&mut e),
        vec![Command::ClearSessionPresence {
            session_id: "switchboard".into()
        }]
    );
    assert_eq!(e.next_deadline(), None);
    e.teams_presence_changed(T0 + 30 * S, away());
    e.poll(T0 + 100 * S);
    assert_eq!(drain(&mut e), vec![]);
}

#[test]
fn flips_are_rate_limited() {
    let mut e = engine();
    let mut t = T0;
    let mut changes = 0;
    // Another system mirrors the agent into Teams: Teams alternates Away/DND every 16 s.
    for i in 0..9 {
        e.teams_presence_changed(t, if i % 2 == 0 { away() } else { dnd() });
        t += 16 * S;
        e.poll(t);
        changes += drain(&mut e).len();
    }
    assert_eq!(changes, 4, "at most 4 changes per 5 minutes");
    assert!(e.loop_suspected());
    // The last value is applied once the window frees up.
    let deadline = e.next_deadline().unwrap();
    assert!(deadline > t && deadline <= T0 + 16 * S + 300 * S);
    e.poll(deadline);
    assert_eq!(drain(&mut e), vec![set_agent("Break")]);
}

#[test]
fn one_way_sync() {
    let config = SyncConfig {
        teams_to_agent: false,
        ..SyncConfig::default()
    };
    let mut e = PresenceSync::new(config, PresenceMapping::default(), T0, "Ready");
    e.teams_presence_changed(T0, away());
    e.agent_state_changed(T0, "Break", AgentSource::User);
    e.poll(T0 + 100 * S);
    assert_eq!(drain(&mut e), vec![set_teams(away())]);
    let config = SyncConfig {
        agent_to_teams: false,
        ..SyncConfig::default()
    };
    let mut e = PresenceSync::new(config, PresenceMapping::default(), T0, "Ready");
    e.agent_state_changed(T0, "Break", AgentSource::User);
    e.call_started(T0);
    e.poll(T0 + 100 * S);
    assert_eq!(drain(&mut e), vec![]);
    assert_eq!(e.next_deadline(), Some(T0 + 3600 * S));
}

#[test]
fn graph_requests() {
    assert_eq!(
        Command::SetTeamsPresence {
            presence: dnd(),
            expiration_ms: Some(8 * 3600 * S)
        }
        .graph_request()
        .unwrap(),
        (
            "setUserPreferredPresence",
            json!({"availability": "DoNotDisturb", "activity": "DoNotDisturb", "expirationDuration": "PT8H"})
        )
    );
    assert_eq!(
        Command::ClearTeamsPresence.graph_request().unwrap(),
        ("clearUserPreferredPresence", json!({}))
    );
    assert_eq!(
        Command::ClearSessionPresence {
            session_id: "app".into()
        }
        .graph_request()
        .unwrap(),
        ("clearPresence", json!({"sessionId": "app"}))
    );
    assert_eq!(Command::FetchTeamsPresence.graph_request(), None);
}

#[test]
fn sync_config_from_json() {
    let c = SyncConfig::from_value(Some(&json!({
        "teamsToAgent": false, "minStableSeconds": 20, "resyncMinutes": 30,
        "sessionId": "11111111-2222", "preferredExpirationSeconds": 3600
    })))
    .unwrap();
    assert!(!c.teams_to_agent && c.agent_to_teams);
    assert_eq!(c.min_stable_ms, 20_000);
    assert_eq!(c.resync_interval_ms, 1_800_000);
    assert_eq!(c.preferred_expiration_ms, Some(3_600_000));
    assert_eq!(c.session_id, "11111111-2222");
    assert_eq!(SyncConfig::from_value(None).unwrap(), SyncConfig::default());
    let err = |v: Value| SyncConfig::from_value(Some(&v)).unwrap_err().to_string();
    assert!(err(json!({"minStableSeconds": -1})).contains("presence.sync.minStableSeconds"));
    assert!(err(json!({"teamsToAgent": "yes"})).contains("true or false"));
    assert!(err(json!({"sessionExpirationSeconds": 60})).contains("PT5M to PT4H"));
    assert!(err(json!({"sessionRenewSeconds": 900})).contains("sessionRenewSeconds"));
    assert!(err(json!({"sessionId": ""})).contains("sessionId"));
}

// ----- property test: random event sequences against a simulated Teams and contact centre ----

#[derive(Debug, Clone)]
enum Op {
    TeamsUser(usize),
    AgentUser(usize),
    CallStart,
    CallEnd,
    Wait(u64),
}

const TEAMS_VALUES: [(Availability, Activity); 6] = [
    (Availability::Available, Activity::Available),
    (Availability::Away, Activity::Away),
    (Availability::Busy, Activity::InAMeeting),
    (Availability::DoNotDisturb, Activity::DoNotDisturb),
    (Availability::BeRightBack, Activity::BeRightBack),
    (Availability::Offline, Activity::OffWork),
];
const STATES: [&str; 6] = ["Ready", "NotReady", "WrapUp", "OnCall", "Break", "Offline"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..TEAMS_VALUES.len()).prop_map(Op::TeamsUser),
        (0..STATES.len()).prop_map(Op::AgentUser),
        Just(Op::CallStart),
        Just(Op::CallEnd),
        (0u64..60_000).prop_map(Op::Wait),
    ]
}

/// Teams as Graph aggregates it: a preferred slot (ours or the user's) over our session over
/// the Teams client's own Available; and the contact centre's agent state.
struct World {
    preferred: Option<Presence>,
    session: Option<Presence>,
    agent: String,
    reported: Option<Presence>,
}

impl World {
    fn aggregated(&self) -> Presence {
        self.preferred.or(self.session).unwrap_or(available())
    }

    /// Performs the engine's commands and feeds back what Teams then reports; bounded.
    fn settle(&mut self, e: &mut PresenceSync, now: u64, log: &mut Vec<Command>) {
        for _ in 0..100 {
            let Some(c) = e.poll_command() else {
                return;
            };
            match &c {
                Command::SetTeamsPresence { presence, .. } => self.preferred = Some(*presence),
                Command::ClearTeamsPresence => self.preferred = None,
                Command::PublishSession { presence, .. }
                | Command::RenewSession { presence, .. } => self.session = Some(*presence),
                Command::ClearSessionPresence { .. } => self.session = None,
                Command::SetAgentState { state } => {
                    self.agent = state.clone();
                    e.agent_state_changed(now, state, AgentSource::Sync);
                }
                Command::FetchTeamsPresence => self.reported = None,
            }
            log.push(c);
            let now_reported = self.aggregated();
            if self.reported != Some(now_reported) {
                self.reported = Some(now_reported);
                e.teams_presence_changed(now, now_reported);
            }
        }
        panic!("commands did not stop");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn sync_is_bounded_and_converges(ops in proptest::collection::vec(op(), 0..40)) {
        let config = SyncConfig::default();
        let mut e = PresenceSync::new(config, PresenceMapping::default(), T0, "Ready");
        let mut world = World { preferred: None, session: None, agent: "Ready".into(), reported: None };
        let mut log = Vec::new();
        let mut now = T0;
        let mut external = 0usize;
        let mut in_call = false;
        let mut last_external_agent: Option<String> = None;
        for op in &ops {
            match op {
                Op::Wait(ms) => {
                    let until = now + ms;
                    // Fire every deadline on the way (bounded).
                    for _ in 0..1000 {
                        match e.next_deadline() {
                            Some(d) if d <= until => {
                                now = now.max(d);
                                e.poll(now);
                                world.settle(&mut e, now, &mut log);
                            }
                            _ => break,
                        }
                    }
                    now = until;
                    e.poll(now);
                }
                Op::TeamsUser(i) => {
                    external += 1;
                    last_external_agent = None;
                    let (a, b) = TEAMS_VALUES[*i];
                    world.preferred = Some(Presence::new(a, b));
                    let reported = world.aggregated();
                    if world.reported != Some(reported) {
                        world.reported = Some(reported);
                        e.teams_presence_changed(now, reported);
                    }
                }
                Op::AgentUser(i) => {
                    external += 1;
                    // Choosing the current state again changes nothing.
                    if world.agent != STATES[*i] {
                        last_external_agent = Some(STATES[*i].into());
                    }
                    world.agent = STATES[*i].into();
                    e.agent_state_changed(now, STATES[*i], AgentSource::User);
                }
                Op::CallStart => {
                    external += 1;
                    in_call = true;
                    e.call_started(now);
                }
                Op::CallEnd => {
                    external += 1;
                    in_call = false;
                    e.call_ended(now);
                }
            }
            world.settle(&mut e, now, &mut log);
        }
        // Inputs stop. Let every pending change play out, through one forced resync (which
        // repairs what a stale echo hid: a user's Teams change to a value we wrote minutes
        // before is indistinguishable from the late echo of that write).
        let quiet = now + 2 * 3600 * S;
        for _ in 0..1000 {
            match e.next_deadline() {
                Some(d) if d <= quiet => {
                    now = now.max(d);
                    e.poll(now);
                    world.settle(&mut e, now, &mut log);
                }
                _ => break,
            }
        }
        let resyncs = log.iter().filter(|c| matches!(c, Command::FetchTeamsPresence)).count();
        let significant = log
            .iter()
            .filter(|c| !matches!(c, Command::RenewSession { .. } | Command::FetchTeamsPresence))
            .count();
        prop_assert!(
            significant <= 2 * external + resyncs,
            "{significant} commands for {external} changes and {resyncs} resyncs: {log:?}"
        );

        // Converged: nothing pending, and another hour brings nothing but renewals.
        prop_assert!(in_call || e.is_settled());
        let mut later = Vec::new();
        let end = now + 3600 * S;
        for _ in 0..1000 {
            match e.next_deadline() {
                Some(d) if d <= end => {
                    now = now.max(d);
                    e.poll(now);
                    world.settle(&mut e, now, &mut later);
                }
                _ => break,
            }
        }
        // Only renewals and the resync's idempotent refresh.
        let held = e.preferred_presence();
        prop_assert!(
            later.iter().all(|c| match c {
                Command::RenewSession { .. } | Command::FetchTeamsPresence => true,
                Command::SetTeamsPresence { presence, .. } => Some(*presence) == held,
                _ => false,
            }),
            "{later:?}"
        );
        prop_assert_eq!(e.agent_state(), world.agent.as_str());
        if in_call {
            prop_assert_eq!(e.session_presence(), Some(Presence::IN_A_CALL));
        }
        // The agent's last own change (after any Teams change) is what Teams shows, when it maps to a preferred presence
        // and no call masks it.
        if let (Some(state), false) = (last_external_agent, in_call)
            && let Some(AgentTarget::Preferred(p)) = PresenceMapping::default().agent_to_teams(&state)
            && e.agent_state() == state
        {
            prop_assert_eq!(world.aggregated(), p);
        }
    }
}

#[test]
fn held_back_reports_the_15_second_rule_and_loop_detection() {
    let mut e = engine();
    assert_eq!(e.held_back(T0), None);
    // The agent's Break waits for the 15-second rule before Teams is written.
    e.agent_state_changed(T0, "Break", AgentSource::User);
    assert_eq!(
        e.held_back(T0 + 3 * S),
        Some(HeldBack {
            reason: HoldReason::Stability,
            until_ms: T0 + 15 * S
        })
    );
    e.poll(T0 + 15 * S);
    assert_eq!(drain(&mut e), vec![set_teams(away())]);
    assert_eq!(e.held_back(T0 + 15 * S), None);
    // Back to Ready clears the preferred presence Break wrote: that write waits too.
    e.agent_state_changed(T0 + 20 * S, "Ready", AgentSource::User);
    assert_eq!(
        e.held_back(T0 + 20 * S).map(|h| h.reason),
        Some(HoldReason::Stability)
    );
    // A call waits 15 s before InACall is published.
    e.call_started(T0 + 100 * S);
    assert_eq!(
        e.held_back(T0 + 101 * S),
        Some(HeldBack {
            reason: HoldReason::Stability,
            until_ms: T0 + 115 * S
        })
    );
    e.poll(T0 + 115 * S);
    drain(&mut e);
    assert_eq!(e.held_back(T0 + 116 * S), None);
}

#[test]
fn held_back_reports_a_suspected_loop() {
    let mut e = engine();
    let mut t = T0;
    for i in 0..4 {
        e.teams_presence_changed(t, if i % 2 == 0 { away() } else { dnd() });
        t += 16 * S;
        e.poll(t);
        assert_eq!(drain(&mut e).len(), 1);
    }
    // The fifth flip is reported at once, before its 15 s are up (its timer is the window's).
    e.teams_presence_changed(t, away());
    let held = e.held_back(t + S).expect("the fifth flip waits");
    assert_eq!(held.reason, HoldReason::Loop);
    assert_eq!(Some(held.until_ms), e.next_deadline());
    // Busy maps to NotReady, the state already: nothing is held back.
    let mut quiet = e.clone();
    quiet.teams_presence_changed(t + S, busy());
    assert_eq!(quiet.held_back(t + 2 * S), None);
    e.poll(held.until_ms);
    drain(&mut e);
    assert_eq!(e.held_back(held.until_ms), None);

    // The agent side: four Teams writes in five minutes, the fifth waits.
    let mut e = engine();
    let mut t = T0;
    for i in 0..5 {
        e.agent_state_changed(
            t,
            if i % 2 == 0 { "Break" } else { "NotReady" },
            AgentSource::User,
        );
        t += 16 * S;
        e.poll(t);
        drain(&mut e);
    }
    assert_eq!(e.held_back(t).map(|h| h.reason), Some(HoldReason::Loop));
}
