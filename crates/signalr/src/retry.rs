//! Automatic reconnect policy (`HubConnectionBuilder.withAutomaticReconnect` in the official
//! client): after a connection that had started is lost, wait 0, 2, 10 and 30 seconds between
//! attempts, then stop. The widget also applies a policy to the *first* start, which the
//! official client (and the CIF sample built on it) does not retry.

use std::time::Duration;

/// Decides how long to wait before the next reconnect attempt.
pub trait RetryPolicy {
    /// `previous_retry_count` attempts have failed so far, `elapsed` is the time since the
    /// connection was lost. `None` stops reconnecting.
    fn next_retry_delay(&self, previous_retry_count: u32, elapsed: Duration) -> Option<Duration>;
}

/// The official client's default delays: 0, 2, 10, 30 seconds, then stop.
pub const DEFAULT_RETRY_DELAYS_MS: [u64; 4] = [0, 2_000, 10_000, 30_000];

/// A fixed list of delays; reconnecting stops when it runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayListPolicy {
    delays: Vec<Duration>,
}

impl DelayListPolicy {
    /// A policy from delays in milliseconds.
    pub fn from_millis(delays: &[u64]) -> Self {
        Self {
            delays: delays.iter().copied().map(Duration::from_millis).collect(),
        }
    }
}

impl Default for DelayListPolicy {
    fn default() -> Self {
        Self::from_millis(&DEFAULT_RETRY_DELAYS_MS)
    }
}

impl RetryPolicy for DelayListPolicy {
    fn next_retry_delay(&self, previous_retry_count: u32, _elapsed: Duration) -> Option<Duration> {
        self.delays.get(previous_retry_count as usize).copied()
    }
}

/// Never give up: the listed delays, then `steady` forever. What an agent's widget wants all day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepTryingPolicy {
    /// The first delays.
    pub initial: DelayListPolicy,
    /// The delay after the initial ones ran out.
    pub steady: Duration,
}

impl RetryPolicy for KeepTryingPolicy {
    fn next_retry_delay(&self, previous_retry_count: u32, elapsed: Duration) -> Option<Duration> {
        self.initial
            .next_retry_delay(previous_retry_count, elapsed)
            .or(Some(self.steady))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_delays_then_stop() {
        let p = DelayListPolicy::default();
        let got: Vec<_> = (0..5)
            .map(|n| p.next_retry_delay(n, Duration::ZERO))
            .collect();
        assert_eq!(
            got,
            vec![
                Some(Duration::ZERO),
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(30)),
                None
            ]
        );
    }

    #[test]
    fn keep_trying_never_stops() {
        let p = KeepTryingPolicy {
            initial: DelayListPolicy::default(),
            steady: Duration::from_secs(60),
        };
        assert_eq!(
            p.next_retry_delay(100, Duration::ZERO),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            p.next_retry_delay(1, Duration::ZERO),
            Some(Duration::from_secs(2))
        );
    }
}
