//! Unwrapped key versions, at most a fixed number of them. Every version's
//! material stays wrapped in its record (`material`); a version is
//! unwrapped into a [`KeyCipher`] when first used and kept here, least
//! recently used evicted first. An evicted cipher is dropped, which wipes
//! its key schedule (once the last request using it is done). So how much
//! key material sits unwrapped in memory is bounded by the capacity, not by
//! the number of keys.
//!
//! A hit is one uncontended mutex and a hash lookup; a miss also unwraps
//! (one AES-GCM open of 32 bytes and a key expansion, about a
//! microsecond), outside the lock.

use super::aead::{KeyCipher, Unauthentic};
use super::material;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// Versions kept unwrapped unless configured (a 624-byte `KeyCipher` each,
/// about 0.7 KiB with the cache's own overhead: about 3 MiB in all).
pub const DEFAULT_CAPACITY: usize = 4096;

type Slot = (Uuid, u32);

pub struct CipherCache {
    wrap_key: Arc<KeyCipher>,
    lru: Mutex<LruCache<Slot, Arc<KeyCipher>>>,
    unwraps: AtomicU64,
}

impl CipherCache {
    /// A cache of at most `capacity` versions (at least one), unwrapping
    /// under `wrap_key`.
    pub fn new(wrap_key: Arc<KeyCipher>, capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        CipherCache {
            wrap_key,
            lru: Mutex::new(LruCache::new(cap)),
            unwraps: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<Slot, Arc<KeyCipher>>> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cipher of `version` of key `key_id`, unwrapping `wrapped` (its
    /// stored material) on a miss.
    pub fn cipher(
        &self,
        key_id: Uuid,
        version: u32,
        wrapped: &[u8],
    ) -> Result<Arc<KeyCipher>, Unauthentic> {
        if let Some(c) = self.lock().get(&(key_id, version)) {
            return Ok(c.clone());
        }
        let m = material::unwrap(&self.wrap_key, key_id, version, wrapped)?;
        let fresh = Arc::new(KeyCipher::new(&m));
        self.unwraps.fetch_add(1, Ordering::Relaxed);
        // Another request may have unwrapped it meanwhile: keep one.
        Ok(self
            .lock()
            .get_or_insert((key_id, version), || fresh)
            .clone())
    }

    /// Keeps a cipher just made (a new key or version: likely used soon).
    pub fn insert(&self, key_id: Uuid, version: u32, cipher: KeyCipher) {
        self.lock().put((key_id, version), Arc::new(cipher));
    }

    /// Drops versions `1..=versions` of a key (it was deleted).
    pub fn forget(&self, key_id: Uuid, versions: u32) {
        let mut lru = self.lock();
        for v in 1..=versions {
            lru.pop(&(key_id, v));
        }
    }

    /// Versions held unwrapped now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.lock().cap().get()
    }

    /// Unwraps done on misses so far.
    pub fn unwraps(&self) -> u64 {
        self.unwraps.load(Ordering::Relaxed)
    }

    pub fn contains(&self, key_id: Uuid, version: u32) -> bool {
        self.lock().contains(&(key_id, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::aead::{KeyBytes, random_nonce};

    fn wrapped(wk: &KeyCipher, id: Uuid, v: u32) -> Vec<u8> {
        material::wrap(wk, id, v, &KeyBytes::random())
    }

    #[test]
    fn hit_evict_and_unwrap_again_give_the_same_key() {
        let wk = Arc::new(KeyCipher::new(&KeyBytes::random()));
        let cache = CipherCache::new(wk.clone(), 1);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (wa, wb) = (wrapped(&wk, a, 1), wrapped(&wk, b, 1));

        let first = cache.cipher(a, 1, &wa).unwrap();
        let again = cache.cipher(a, 1, &wa).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "a hit returns the cached cipher"
        );
        assert_eq!(cache.unwraps(), 1);

        let nonce = random_nonce();
        let mut buf = b"sealed before eviction".to_vec();
        let tag = first.seal(&nonce, b"ad", &mut buf);
        drop((first, again));

        cache.cipher(b, 1, &wb).unwrap();
        assert!(!cache.contains(a, 1), "capacity 1: a was evicted");
        assert_eq!(cache.len(), 1);

        let reunwrapped = cache.cipher(a, 1, &wa).unwrap();
        assert_eq!(cache.unwraps(), 3);
        reunwrapped.open(&nonce, b"ad", &mut buf, &tag).unwrap();
        assert_eq!(&buf[..], b"sealed before eviction");
    }

    #[test]
    fn bounded_by_capacity() {
        let wk = Arc::new(KeyCipher::new(&KeyBytes::random()));
        let cache = CipherCache::new(wk.clone(), 8);
        let ids: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            cache.cipher(*id, 1, &wrapped(&wk, *id, 1)).unwrap();
        }
        assert_eq!(cache.len(), 8);
        assert!(ids[92..].iter().all(|id| cache.contains(*id, 1)));
        assert_eq!(CipherCache::new(wk, 0).capacity(), 1);
    }

    #[test]
    fn wrong_material_is_refused_and_not_kept() {
        let wk = Arc::new(KeyCipher::new(&KeyBytes::random()));
        let cache = CipherCache::new(wk.clone(), 8);
        let id = Uuid::new_v4();
        let w = wrapped(&wk, id, 1);
        assert!(cache.cipher(id, 2, &w).is_err(), "bound to its version");
        assert!(cache.cipher(Uuid::new_v4(), 1, &w).is_err(), "and its key");
        let other = wrapped(&KeyCipher::new(&KeyBytes::random()), id, 1);
        assert!(cache.cipher(id, 1, &other).is_err(), "and the wrap key");
        assert!(cache.is_empty());
    }

    #[test]
    fn forget_drops_every_version_of_a_key() {
        let wk = Arc::new(KeyCipher::new(&KeyBytes::random()));
        let cache = CipherCache::new(wk.clone(), 8);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for v in 1..=3 {
            cache.cipher(a, v, &wrapped(&wk, a, v)).unwrap();
        }
        cache.insert(b, 1, KeyCipher::new(&KeyBytes::random()));
        cache.forget(a, 3);
        assert_eq!(cache.len(), 1);
        assert!(cache.contains(b, 1));
    }
}
