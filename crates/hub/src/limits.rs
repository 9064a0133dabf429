//! Limits that protect the hub from one client: the cap on messages per read and the rate
//! limit on logging bad input (issue 18). Quotas per user and address are in
//! [`crate::quota`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Hub messages one read from a client (a WebSocket message, a POST body) may carry, empty
/// JSON records and empty MessagePack frames included; more closes the connection with
/// `Too many messages in one read: more than 1024`.
pub const MAX_MESSAGES_PER_READ: usize = 1024;

/// Streams (`counter`) running at once on one connection; more fail with
/// [`too_many_streams`].
pub const MAX_STREAMS_PER_CONNECTION: usize = 8;

/// The completion error of a stream refused by [`MAX_STREAMS_PER_CONNECTION`].
pub fn too_many_streams() -> String {
    format!("Too many concurrent streams on this connection (at most {MAX_STREAMS_PER_CONNECTION})")
}

/// The Close error (with `allowReconnect: true`) of a connection whose outbox or transport
/// queue overflowed: the client reconnects and resyncs (`getCalls`). Nothing is dropped
/// silently.
pub const OUTBOX_OVERFLOW: &str =
    "Connection closed: the client did not read fast enough (outbound queue full); reconnect";

/// The Close error of a stateful-reconnect connection whose replay buffer reached `connection::REPLAY_CLOSE_FACTOR` (8) times
/// `HubConfig::replay_buffer_bytes` (hub messages stop at once that; stream items and
/// completions beyond it mean the client does not ack).
pub const REPLAY_BUFFER_FULL: &str = switchboard_signalr::server::REPLAY_BUFFER_FULL;

/// A WebSocket write that takes longer than this closes the connection (10 s).
pub const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Bad-input warnings logged per [`BAD_INPUT_WINDOW`], over all connections; the rest are
/// counted and reported with the next line logged.
pub const BAD_INPUT_LINES: u32 = 20;
/// The window of [`BAD_INPUT_LINES`] (10 s).
pub const BAD_INPUT_WINDOW: Duration = Duration::from_secs(10);

/// A fixed-window line budget: `allow` says whether to log now and how many lines were
/// suppressed since the last one logged.
#[derive(Debug)]
pub struct LogBudget {
    lines: u32,
    window: Duration,
    state: Mutex<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    started: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    /// `lines` lines per `window`.
    pub const fn new(lines: u32, window: Duration) -> Self {
        Self {
            lines,
            window,
            state: Mutex::new(BudgetState {
                started: None,
                used: 0,
                suppressed: 0,
            }),
        }
    }

    /// `Some(suppressed)` when a line may be logged at `now` (`suppressed` lines were dropped
    /// since the last one logged); `None` when this one should be dropped (and is counted).
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.started
            .is_none_or(|t| now.duration_since(t) >= self.window)
        {
            s.started = Some(now);
            s.used = 0;
        }
        if s.used < self.lines {
            s.used += 1;
            Some(std::mem::take(&mut s.suppressed))
        } else {
            s.suppressed += 1;
            None
        }
    }
}

static BAD_INPUT: LogBudget = LogBudget::new(BAD_INPUT_LINES, BAD_INPUT_WINDOW);

/// Logs a malformed message from a client, within the global budget ([`BAD_INPUT_LINES`] per
/// [`BAD_INPUT_WINDOW`]): a client sending garbage cannot flood the log.
pub fn log_bad_input(connection_id: &str, error: &dyn std::fmt::Display) {
    crate::metrics::malformed_message();
    if let Some(suppressed) = BAD_INPUT.allow(Instant::now()) {
        tracing::warn!(connection_id, error = %error, suppressed, "malformed message dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_logs_a_few_lines_per_window_and_counts_the_rest() {
        let budget = LogBudget::new(2, Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(budget.allow(t), Some(0));
        assert_eq!(budget.allow(t), Some(0));
        for _ in 0..1000 {
            assert_eq!(budget.allow(t), None);
        }
        assert_eq!(budget.allow(t + Duration::from_secs(11)), Some(1000));
    }
}
