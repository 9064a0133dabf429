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

/// The widget's policy: the configured delays (SignalR's 0, 2, 10, 30 s by default), then
/// for ever one attempt every `slow_min..=slow_max` (30–60 s by default), spread by a random
/// fraction so that a thousand agents whose hub came back do not all return in the same second.
/// The caller supplies the randomness (`Math.random()` in the browser), so this stays sans-IO
/// and testable. An agent must never have to notice the loss and click (issue 13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowRetryPolicy {
    /// The first delays.
    pub initial: DelayListPolicy,
    /// The shortest delay once the initial ones ran out.
    pub slow_min: Duration,
    /// The longest delay once the initial ones ran out.
    pub slow_max: Duration,
}

impl SlowRetryPolicy {
    /// The default slow interval, in seconds: 30 to 60.
    pub const DEFAULT_SLOW_SECONDS: (u64, u64) = (30, 60);

    /// The delays of `initial`, then `slow_min..=slow_max` seconds.
    pub fn new(initial: DelayListPolicy, slow_min_seconds: u64, slow_max_seconds: u64) -> Self {
        let slow_min = Duration::from_secs(slow_min_seconds);
        Self {
            initial,
            slow_min,
            slow_max: Duration::from_secs(slow_max_seconds).max(slow_min),
        }
    }

    /// The delay before attempt `previous_retry_count + 1`; `unit_random` in `[0, 1)` picks
    /// the point between `slow_min` and `slow_max` (values outside are clamped). Never `None`.
    pub fn next_delay(&self, previous_retry_count: u32, unit_random: f64) -> Duration {
        if let Some(d) = self
            .initial
            .next_retry_delay(previous_retry_count, Duration::ZERO)
        {
            return d;
        }
        let span = self.slow_max.saturating_sub(self.slow_min);
        let fraction = if unit_random.is_finite() {
            unit_random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.slow_min + span.mul_f64(fraction)
    }

    /// The retry count from which the delays are the slow ones (the number of initial delays).
    pub fn first_slow_retry(&self) -> u32 {
        u32::try_from(self.initial.delays.len()).unwrap_or(u32::MAX)
    }

    /// Whether attempt `previous_retry_count + 1` is one of the slow ones.
    pub fn is_slow(&self, previous_retry_count: u32) -> bool {
        self.initial
            .next_retry_delay(previous_retry_count, Duration::ZERO)
            .is_none()
    }
}

impl Default for SlowRetryPolicy {
    fn default() -> Self {
        let (min, max) = Self::DEFAULT_SLOW_SECONDS;
        Self::new(DelayListPolicy::default(), min, max)
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

    #[test]
    fn slow_retry_never_stops_and_spreads_between_its_bounds() {
        let p = SlowRetryPolicy::default();
        assert_eq!(p.next_delay(0, 0.9), Duration::ZERO);
        assert_eq!(p.next_delay(3, 0.9), Duration::from_secs(30));
        assert!(!p.is_slow(3));
        assert!(p.is_slow(4));
        assert_eq!(p.first_slow_retry(), 4);
        assert_eq!(p.next_delay(4, 0.0), Duration::from_secs(30));
        assert_eq!(p.next_delay(4, 0.5), Duration::from_secs(45));
        assert!(p.next_delay(1000, 0.999_999) < Duration::from_secs(60));
        assert!(p.next_delay(1000, 0.999_999) > Duration::from_secs(59));
        // Bad randomness is clamped, never a panic or a zero.
        assert_eq!(p.next_delay(9, f64::NAN), Duration::from_secs(30));
        assert_eq!(p.next_delay(9, 7.0), Duration::from_secs(60));
        assert_eq!(p.next_delay(9, -1.0), Duration::from_secs(30));
        // A max below the min is the min.
        let q = SlowRetryPolicy::new(DelayListPolicy::from_millis(&[]), 5, 1);
        assert_eq!(q.next_delay(0, 0.5), Duration::from_secs(5));
    }
}
