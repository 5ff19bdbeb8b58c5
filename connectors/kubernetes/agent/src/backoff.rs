//! Reconnect delays: exponential with full jitter (a random delay between zero
//! and a ceiling that doubles from `initial` to `max`), reset once a connection
//! has stayed up for `reset_after`.

use std::time::{Duration, Instant};

use rand::Rng;

/// The backoff timing (the chart's `network.*` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffSettings {
    /// The first ceiling.
    pub initial: Duration,
    /// The largest ceiling.
    pub max: Duration,
    /// How long a connection must last for the next failure to start over.
    pub reset_after: Duration,
}

/// Where the agent reads the time, so tests can move it.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// The reconnect state: how many failures in a row, and since when connected.
#[derive(Debug)]
pub struct Backoff<R> {
    settings: BackoffSettings,
    failures: u32,
    connected_at: Option<Instant>,
    rng: R,
}

impl<R: Rng> Backoff<R> {
    /// A fresh backoff drawing its jitter from `rng`.
    pub fn new(settings: BackoffSettings, rng: R) -> Self {
        Backoff {
            settings,
            failures: 0,
            connected_at: None,
            rng,
        }
    }

    /// Notes that a connection came up at `now`.
    pub fn connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// Notes that the connection (or the attempt) ended at `now`; a connection
    /// that lasted `reset_after` starts the delays over.
    pub fn disconnected(&mut self, now: Instant) {
        if let Some(since) = self.connected_at.take() {
            if now.saturating_duration_since(since) >= self.settings.reset_after {
                self.failures = 0;
            }
        }
    }

    /// The ceiling of the next delay: `initial · 2^failures`, at most `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(31));
        self.settings
            .initial
            .saturating_mul(factor)
            .min(self.settings.max)
    }

    /// The delay before the next attempt: uniform in `[0, ceiling]`.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.gen_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn settings() -> BackoffSettings {
        BackoffSettings {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn ceilings_double_from_one_second_to_sixty() {
        let mut backoff = Backoff::new(settings(), StdRng::seed_from_u64(7));
        let mut ceilings = Vec::new();
        for _ in 0..9 {
            ceilings.push(backoff.ceiling().as_secs());
            let delay = backoff.next_delay();
            assert!(delay <= Duration::from_secs(*ceilings.last().unwrap()));
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn jitter_spans_zero_to_the_ceiling() {
        let mut backoff = Backoff::new(settings(), StdRng::seed_from_u64(1));
        for _ in 0..6 {
            backoff.next_delay();
        }
        let delays: Vec<Duration> = (0..400).map(|_| backoff.next_delay()).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(60)));
        let shortest = delays.iter().min().unwrap();
        let longest = delays.iter().max().unwrap();
        assert!(
            *shortest < Duration::from_secs(3),
            "full jitter reaches near zero: {shortest:?}"
        );
        assert!(
            *longest > Duration::from_secs(57),
            "and near the ceiling: {longest:?}"
        );
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 390, "the delays are random, not fixed");
    }

    #[test]
    fn a_minute_connected_resets_and_a_short_connection_does_not() {
        let start = Instant::now();
        let mut backoff = Backoff::new(settings(), StdRng::seed_from_u64(3));
        for _ in 0..4 {
            backoff.next_delay();
        }
        assert_eq!(backoff.ceiling(), Duration::from_secs(16));
        backoff.connected(start);
        backoff.disconnected(start + Duration::from_secs(59));
        assert_eq!(
            backoff.ceiling(),
            Duration::from_secs(16),
            "59 s is not stable"
        );
        backoff.connected(start + Duration::from_secs(100));
        backoff.disconnected(start + Duration::from_secs(160));
        assert_eq!(
            backoff.ceiling(),
            Duration::from_secs(1),
            "60 s connected resets"
        );
    }
}
