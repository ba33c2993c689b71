//! The LRU cache of unwrapped data keys, keyed by the wrapped blob, with a
//! capacity and a time to live counted from the unwrap (so a key disabled
//! in kmsd stops opening files within one TTL). Pure: the caller passes the
//! time. Values are `Arc<DataKey>`: a key is wiped when it leaves the cache
//! and the last user drops it.

use crate::format::DataKey;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counters since the cache was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    /// Entries pushed out by the capacity.
    pub evictions: u64,
    /// Entries dropped because their TTL ran out.
    pub expirations: u64,
}

struct Entry {
    key: Arc<DataKey>,
    expires: Instant,
}

pub struct KeyCache {
    /// `None` when the capacity is 0: caching off.
    lru: Option<LruCache<Vec<u8>, Entry>>,
    ttl: Duration,
    stats: CacheStats,
}

impl KeyCache {
    /// `capacity` 0 or `ttl` 0 turns caching off (every lookup misses).
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let lru = NonZeroUsize::new(capacity)
            .filter(|_| !ttl.is_zero())
            .map(LruCache::new);
        KeyCache {
            lru,
            ttl,
            stats: CacheStats::default(),
        }
    }

    /// The key unwrapped from `wrapped`, if cached and not expired.
    pub fn get(&mut self, wrapped: &[u8], now: Instant) -> Option<Arc<DataKey>> {
        let Some(lru) = self.lru.as_mut() else {
            self.stats.misses += 1;
            return None;
        };
        match lru.get(wrapped) {
            Some(e) if now < e.expires => {
                self.stats.hits += 1;
                Some(e.key.clone())
            }
            Some(_) => {
                lru.pop(wrapped);
                self.stats.expirations += 1;
                self.stats.misses += 1;
                None
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Caches `key` as the unwrapping of `wrapped` for one TTL from `now`.
    pub fn insert(&mut self, wrapped: Vec<u8>, key: Arc<DataKey>, now: Instant) {
        let Some(lru) = self.lru.as_mut() else { return };
        let entry = Entry {
            key,
            expires: now + self.ttl,
        };
        self.stats.inserts += 1;
        if let Some((old, _)) = lru.push(wrapped, entry) {
            // `push` returns the replaced entry for the same blob too.
            if lru.peek(&old).is_none() {
                self.stats.evictions += 1;
            }
        }
    }

    /// Takes the key of `wrapped` out of the cache.
    pub fn remove(&mut self, wrapped: &[u8]) -> Option<Arc<DataKey>> {
        self.lru.as_mut()?.pop(wrapped).map(|e| e.key)
    }

    /// Drops every expired entry; returns how many.
    pub fn purge_expired(&mut self, now: Instant) -> usize {
        let Some(lru) = self.lru.as_mut() else {
            return 0;
        };
        let expired: Vec<Vec<u8>> = lru
            .iter()
            .filter(|(_, e)| now >= e.expires)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            lru.pop(k);
        }
        self.stats.expirations += expired.len() as u64;
        expired.len()
    }

    /// Drops every key (unmount).
    pub fn clear(&mut self) {
        if let Some(lru) = self.lru.as_mut() {
            lru.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.lru.as_ref().map_or(0, LruCache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.len(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(300);

    fn key(b: u8) -> Arc<DataKey> {
        Arc::new(DataKey::from_slice(&[b; 32]).unwrap())
    }

    #[test]
    fn hit_returns_the_same_key() {
        let t0 = Instant::now();
        let mut c = KeyCache::new(4, TTL);
        assert!(c.get(b"a", t0).is_none());
        c.insert(b"a".to_vec(), key(1), t0);
        let k = c.get(b"a", t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(k.expose(), &[1; 32]);
        assert!(c.get(b"b", t0).is_none());
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.inserts, s.entries), (1, 2, 1, 1));
    }

    #[test]
    fn entries_expire_after_the_ttl_from_insertion() {
        let t0 = Instant::now();
        let mut c = KeyCache::new(4, TTL);
        c.insert(b"a".to_vec(), key(1), t0);
        // Use does not extend the TTL.
        assert!(c.get(b"a", t0 + TTL - Duration::from_millis(1)).is_some());
        assert!(c.get(b"a", t0 + TTL).is_none());
        assert_eq!(c.stats().expirations, 1);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn capacity_evicts_the_least_recently_used() {
        let t0 = Instant::now();
        let mut c = KeyCache::new(2, TTL);
        c.insert(b"a".to_vec(), key(1), t0);
        c.insert(b"b".to_vec(), key(2), t0);
        assert!(c.get(b"a", t0).is_some()); // b is now least recent
        c.insert(b"c".to_vec(), key(3), t0);
        assert!(c.get(b"b", t0).is_none());
        assert!(c.get(b"a", t0).is_some());
        assert!(c.get(b"c", t0).is_some());
        assert_eq!(c.stats().evictions, 1);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn reinserting_a_blob_is_not_an_eviction() {
        let t0 = Instant::now();
        let mut c = KeyCache::new(2, TTL);
        c.insert(b"a".to_vec(), key(1), t0);
        c.insert(b"a".to_vec(), key(1), t0 + TTL / 2);
        assert_eq!(c.stats().evictions, 0);
        assert_eq!(c.len(), 1);
        // The TTL restarted.
        assert!(c.get(b"a", t0 + TTL).is_some());
    }

    #[test]
    fn evicted_and_cleared_keys_are_dropped() {
        // ZeroizeOnDrop wipes a DataKey when its last Arc goes; the Weak
        // shows the cache kept no reference.
        let t0 = Instant::now();
        let mut c = KeyCache::new(1, TTL);
        let k1 = key(1);
        let w1 = Arc::downgrade(&k1);
        c.insert(b"a".to_vec(), k1, t0);
        assert!(w1.upgrade().is_some());
        c.insert(b"b".to_vec(), key(2), t0);
        assert!(w1.upgrade().is_none(), "evicted key still alive");

        let k2 = key(3);
        let w2 = Arc::downgrade(&k2);
        c.insert(b"c".to_vec(), k2, t0);
        c.clear();
        assert!(w2.upgrade().is_none(), "cleared key still alive");
        assert!(c.is_empty());

        let k3 = key(4);
        let w3 = Arc::downgrade(&k3);
        c.insert(b"d".to_vec(), k3, t0);
        assert_eq!(c.purge_expired(t0 + TTL), 1);
        assert!(w3.upgrade().is_none(), "expired key still alive");
    }

    #[test]
    fn purge_keeps_live_entries() {
        let t0 = Instant::now();
        let mut c = KeyCache::new(8, TTL);
        c.insert(b"old".to_vec(), key(1), t0);
        c.insert(b"new".to_vec(), key(2), t0 + TTL / 2);
        assert_eq!(c.purge_expired(t0 + TTL), 1);
        assert!(c.get(b"new", t0 + TTL).is_some());
        assert_eq!(c.stats().expirations, 1);
    }

    #[test]
    fn zero_capacity_or_ttl_disables_caching() {
        let t0 = Instant::now();
        for mut c in [KeyCache::new(0, TTL), KeyCache::new(4, Duration::ZERO)] {
            c.insert(b"a".to_vec(), key(1), t0);
            assert!(c.get(b"a", t0).is_none());
            assert_eq!(c.len(), 0);
            assert_eq!(c.stats().misses, 1);
            assert_eq!(c.purge_expired(t0), 0);
        }
    }
}
