//! The in-process cache of resolved secrets: memory only, never disk or Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patchbay_core::RevealedJson;

use super::clock::Clock;

/// Resolved secrets by reference, each kept for the configured lifetime.
///
/// Every invalidation bumps a generation counter; a read that started before
/// an invalidation does not store its (possibly stale) value afterwards.
pub struct SecretCache {
    ttl: Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    generation: u64,
    entries: HashMap<String, (Instant, RevealedJson)>,
}

impl SecretCache {
    /// A cache keeping values for `ttl` as `clock` counts it; a zero `ttl` keeps nothing.
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl,
            clock,
            state: Mutex::new(CacheState::default()),
        }
    }

    /// Whether a value stored at `stored_at` is still within the lifetime.
    fn fresh(&self, now: Instant, stored_at: Instant) -> bool {
        now.saturating_duration_since(stored_at) < self.ttl
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The cached value for `key`, if it is younger than the lifetime.
    pub fn get(&self, key: &str) -> Option<RevealedJson> {
        if self.ttl.is_zero() {
            return None;
        }
        let now = self.clock.now();
        let state = self.state();
        state
            .entries
            .get(key)
            .filter(|(stored_at, _)| self.fresh(now, *stored_at))
            .map(|(_, value)| value.clone())
    }

    /// The generation to pass to [`SecretCache::insert`] for a read starting now.
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Stores `value`, read at `read_at`, unless the cache was invalidated since `generation`.
    pub fn insert(&self, key: &str, value: &RevealedJson, read_at: Instant, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let now = self.clock.now();
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        state
            .entries
            .retain(|_, (stored_at, _)| self.fresh(now, *stored_at));
        if self.fresh(now, read_at) {
            state
                .entries
                .insert(key.to_owned(), (read_at, value.clone()));
        }
    }

    /// Drops `key` and makes reads in flight skip storing their result.
    pub fn invalidate(&self, key: &str) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::clock::{ManualClock, SystemClock};
    use super::*;

    fn value(n: u64) -> RevealedJson {
        RevealedJson::new(json!({ "n": n }))
    }

    #[test]
    fn values_expire_and_invalidation_wins_over_reads_in_flight() {
        let clock = ManualClock::new();
        let cache = SecretCache::new(Duration::from_secs(30), Arc::new(clock.clone()));
        let generation = cache.generation();
        cache.insert("a", &value(1), clock.now(), generation);
        assert_eq!(cache.get("a"), Some(value(1)));

        let stale_generation = cache.generation();
        cache.invalidate("a");
        cache.insert("a", &value(0), clock.now(), stale_generation);
        assert_eq!(cache.get("a"), None);

        cache.insert("b", &value(2), clock.now(), cache.generation());
        clock.advance(Duration::from_secs(29));
        assert_eq!(cache.get("b"), Some(value(2)));
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.get("b"), None);

        // A value read before a long stall counts its age from the read.
        let read_at = clock.now();
        clock.advance(Duration::from_secs(31));
        cache.insert("c", &value(3), read_at, cache.generation());
        assert_eq!(cache.get("c"), None);
        assert!(
            cache.state().entries.is_empty(),
            "expired entries are dropped"
        );
    }

    #[test]
    fn zero_ttl_keeps_nothing() {
        let cache = SecretCache::new(Duration::ZERO, Arc::new(SystemClock));
        cache.insert("a", &value(1), Instant::now(), cache.generation());
        assert_eq!(cache.get("a"), None);
        assert!(cache.state().entries.is_empty());
    }
}
