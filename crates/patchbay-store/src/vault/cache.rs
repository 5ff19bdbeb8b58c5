//! The in-process cache of resolved secrets: memory only, never disk or Redis.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use patchbay_core::RevealedJson;

/// Resolved secrets by reference, each kept for the configured lifetime.
///
/// Every invalidation bumps a generation counter; a read that started before
/// an invalidation does not store its (possibly stale) value afterwards.
pub struct SecretCache {
    ttl: Duration,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    generation: u64,
    entries: HashMap<String, (Instant, RevealedJson)>,
}

impl SecretCache {
    /// A cache keeping values for `ttl`; a zero `ttl` keeps nothing.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::new(CacheState::default()),
        }
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
        let state = self.state();
        state
            .entries
            .get(key)
            .filter(|(stored_at, _)| stored_at.elapsed() < self.ttl)
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
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        let ttl = self.ttl;
        state
            .entries
            .retain(|_, (stored_at, _)| stored_at.elapsed() < ttl);
        state
            .entries
            .insert(key.to_owned(), (read_at, value.clone()));
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

    use super::*;

    fn value(n: u64) -> RevealedJson {
        RevealedJson::new(json!({ "n": n }))
    }

    #[test]
    fn values_expire_and_invalidation_wins_over_reads_in_flight() {
        let cache = SecretCache::new(Duration::from_millis(50));
        let generation = cache.generation();
        cache.insert("a", &value(1), Instant::now(), generation);
        assert_eq!(cache.get("a"), Some(value(1)));

        let stale_generation = cache.generation();
        cache.invalidate("a");
        cache.insert("a", &value(0), Instant::now(), stale_generation);
        assert_eq!(cache.get("a"), None);

        cache.insert("b", &value(2), Instant::now(), cache.generation());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("b"), None);
    }

    #[test]
    fn zero_ttl_keeps_nothing() {
        let cache = SecretCache::new(Duration::ZERO);
        cache.insert("a", &value(1), Instant::now(), cache.generation());
        assert_eq!(cache.get("a"), None);
        assert!(cache.state().entries.is_empty());
    }
}
