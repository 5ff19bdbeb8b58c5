//! The time source of the Vault store: when cached secrets go stale, when the token
//! expires, and when it is renewed. Tests move a [`ManualClock`] instead of sleeping.
//!
//! Written here rather than taken from a crate: the store needs `now` and an async
//! `sleep_until` on one swappable clock, while Vault calls keep their real timeouts
//! (tokio's paused time would stop those too).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A future that completes at a point in time of a [`Clock`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Where the Vault store reads the time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Instant;

    /// Completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Sleep;
}

/// The operating system's monotonic clock, with tokio timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it, waking the
/// sleepers whose deadline it passes. For tests and simulations.
#[derive(Debug, Clone)]
pub struct ManualClock {
    start: Instant,
    elapsed: Arc<watch::Sender<Duration>>,
}

impl ManualClock {
    /// A clock reading the current instant until it is advanced.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            elapsed: Arc::new(watch::Sender::new(Duration::ZERO)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.elapsed.send_modify(|elapsed| *elapsed += by);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.elapsed.borrow()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let start = self.start;
        let mut elapsed = self.elapsed.subscribe();
        Box::pin(async move {
            while start + *elapsed.borrow_and_update() < deadline {
                if elapsed.changed().await.is_err() {
                    // The clock is gone and will never move again.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_only_when_the_clock_passes_their_deadline() {
        let clock = ManualClock::new();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        let sleeper = tokio::spawn(clock.sleep_until(start + Duration::from_secs(3)));
        clock.advance(Duration::from_secs(2));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(clock.now(), start + Duration::from_secs(3));
        // A deadline already passed completes at once.
        clock.sleep_until(start).await;
    }
}
