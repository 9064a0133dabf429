//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4), recorded with the
//! `metrics` crate and rendered by `metrics-exporter-prometheus`.
//!
//! The recorder is process-wide (installed on first use); every hub in a process (tests start
//! several) adds to the same series. Names and labels:
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `switchboard_connections` | gauge | `transport`, `protocol` | live handshaken connections |
//! | `switchboard_messages_in_total` | counter | | hub messages read from clients |
//! | `switchboard_messages_out_total` | counter | | hub messages queued to connections |
//! | `switchboard_send_duration_seconds` | histogram | `route` | time to answer a REST / adaptor send |
//! | `switchboard_frames_dropped_total` | counter | `reason` | messages not delivered (`outbox_full`, `closed`, `redis_queue_full`: a write for Redis dropped, `--redis`) |
//! | `switchboard_malformed_messages_total` | counter | | malformed client messages dropped |
//! | `switchboard_overflow_closes_total` | counter | `reason` | connections closed for overflow (`outbox`, `replay_buffer`, `write_timeout`) |
//! | `switchboard_quota_refusals_total` | counter | `quota` | requests refused by a quota ([`crate::quota`]) |
//! | `switchboard_calls` | gauge | `state` | calls in the registry by state (set at each scrape) |
//! | `switchboard_panics_total` | counter | | requests that panicked (answered 500) |
//! | `switchboard_replay_buffered_bytes` | gauge | | bytes of sent messages kept for stateful reconnect until acked, over all connections |
//! | `switchboard_graph_lifecycle_total` | counter | `event` | Graph lifecycle notifications accepted by `/api/graph/lifecycle` (or `/notifications`): `missed`, `reauthorizationRequired`, `subscriptionRemoved`, `other` |
//! | `switchboard_redis_up` | gauge | | with `--redis`: 1 while Redis answers heartbeats and the backplane subscription is live, else 0 (set at each scrape) |
//! | `switchboard_graph_notifications_total` | counter | `outcome` | Graph change/lifecycle notification items: `accepted`, `rejected` (unknown subscription or wrong `clientState`), `malformed` (bodies) |

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once); `None` when another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The exposition text, with `switchboard_calls` set from `calls_by_state` (state, count).
pub fn render(calls_by_state: &[(&'static str, usize)]) -> String {
    let Some(handle) = handle() else {
        return String::new();
    };
    for (state, count) in calls_by_state {
        metrics::gauge!("switchboard_calls", "state" => *state).set(*count as f64);
    }
    handle.render()
}

/// A connection finished its handshake (`+1`) or closed (`-1`).
pub fn connection(transport: &'static str, protocol: &'static str, delta: f64) {
    handle();
    metrics::gauge!("switchboard_connections", "transport" => transport, "protocol" => protocol)
        .increment(delta);
}

/// `n` hub messages read from clients.
pub fn messages_in(n: u64) {
    handle();
    metrics::counter!("switchboard_messages_in_total").increment(n);
}

/// `n` hub messages queued to connections.
pub fn messages_out(n: u64) {
    handle();
    metrics::counter!("switchboard_messages_out_total").increment(n);
}

/// One REST / adaptor send answered after `elapsed`.
pub fn send_duration(route: &'static str, elapsed: Duration) {
    handle();
    metrics::histogram!("switchboard_send_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
}

/// A message that could not be queued to a connection.
pub fn frame_dropped(reason: &'static str) {
    handle();
    metrics::counter!("switchboard_frames_dropped_total", "reason" => reason).increment(1);
}

/// A malformed message from a client was dropped.
pub fn malformed_message() {
    handle();
    metrics::counter!("switchboard_malformed_messages_total").increment(1);
}

/// A connection closed because a buffer overflowed or a write timed out.
pub fn overflow_close(reason: &'static str) {
    handle();
    metrics::counter!("switchboard_overflow_closes_total", "reason" => reason).increment(1);
}

/// A request refused by a quota.
pub fn quota_refusal(quota: &'static str) {
    handle();
    metrics::counter!("switchboard_quota_refusals_total", "quota" => quota).increment(1);
}

/// The bytes kept for stateful reconnect changed by `delta` (a connection's replay buffer grew,
/// was acked, or went away with its connection).
pub fn replay_buffered(delta: f64) {
    handle();
    metrics::gauge!("switchboard_replay_buffered_bytes").increment(delta);
}

/// A request handler panicked.
pub fn panic() {
    handle();
    metrics::counter!("switchboard_panics_total").increment(1);
}

/// A transport as the `transport` label names it (`websockets`, `sse`, `longpolling`;
/// implemented for the transports in [`crate::sessions`], so this module names no other).
pub trait TransportLabel {
    /// The label.
    fn transport_label(self) -> &'static str;
}

/// The `transport` label of a transport.
pub fn transport_name(kind: impl TransportLabel) -> &'static str {
    kind.transport_label()
}

/// One accepted Graph lifecycle notification (`lifecycleEvent`; unknown names count as `other`,
/// so the label set stays bounded).
pub fn graph_lifecycle(event: &str) {
    let event: &'static str = match event {
        "missed" => "missed",
        "reauthorizationRequired" => "reauthorizationRequired",
        "subscriptionRemoved" => "subscriptionRemoved",
        _ => "other",
    };
    handle();
    metrics::counter!("switchboard_graph_lifecycle_total", "event" => event).increment(1);
}

/// Graph notification items received by `/api/graph/notifications` with this `outcome`
/// (`accepted`, `rejected`, `malformed`).
pub fn graph_notifications(outcome: &'static str, count: u64) {
    if count == 0 {
        return;
    }
    handle();
    metrics::counter!("switchboard_graph_notifications_total", "outcome" => outcome)
        .increment(count);
}

/// `switchboard_redis_up`: whether this node reaches Redis ([`crate::cluster`]).
pub fn redis_up(up: bool) {
    handle();
    metrics::gauge!("switchboard_redis_up").set(if up { 1.0 } else { 0.0 });
}
