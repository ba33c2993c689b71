//! [`KeyService`]: the only way the filesystem gets keys. New files take a
//! pre-generated key from the pool; opens unwrap the header's key through
//! the LRU cache (a hit makes no kmsd call) and always check the header MAC.

use super::KeyError;
use super::backend::{KmsBackend, RemoteBackend};
use super::cache::KeyCache;
use super::clock::{Clock, SystemClock};
use super::flight::SingleFlight;
use super::pool::KeyPool;
use crate::format::{DataKey, FileCipher, FileId, Header, VolumeConfig, VolumeId};
use crate::kms::Kms;
use kmsd_client::EncryptionContext;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Tuning of a [`KeyService`].
#[derive(Clone, Debug)]
pub struct KeyOptions {
    /// Unwrapped keys kept (0 turns the cache off).
    pub cache_capacity: usize,
    /// How long an unwrapped key (or a pooled one) may be used before kmsd
    /// is asked again. A key disabled in kmsd stops opening files after at
    /// most this long.
    pub cache_ttl: Duration,
    /// Pre-generated keys kept ready for new files (0 turns the pool off).
    pub pool_size: usize,
    /// Wait between the pool's attempts while kmsd fails.
    pub pool_retry: Duration,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            cache_capacity: 4096,
            cache_ttl: Duration::from_secs(300),
            pool_size: 16,
            pool_retry: Duration::from_secs(1),
        }
    }
}

impl KeyOptions {
    /// For tools that create no files (cat, fsck): no pool.
    pub fn offline() -> Self {
        KeyOptions {
            pool_size: 0,
            ..KeyOptions::default()
        }
    }
}

/// What a new file needs: its id, its cipher, and the header bytes to
/// write in front of block 0.
pub struct NewFile {
    pub file_id: FileId,
    pub cipher: Arc<FileCipher>,
    pub header: Vec<u8>,
}

/// Counters for `kmsfs status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyStats {
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub expirations: u64,
    /// Calls to kmsd (Decrypt and GenerateDataKey, pool included).
    pub kmsd_calls: u64,
    pub kmsd_errors: u64,
    pub pool_available: usize,
    /// New files that got a pooled key / had to call kmsd.
    pub pool_taken: u64,
    pub pool_empty: u64,
}

/// Counts calls through a backend.
struct Counted {
    inner: Arc<dyn KmsBackend>,
    calls: AtomicU64,
    errors: AtomicU64,
}

impl Counted {
    fn count<T>(&self, r: Result<T, KeyError>) -> Result<T, KeyError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if r.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

impl KmsBackend for Counted {
    fn generate(&self, c: &EncryptionContext) -> Result<super::Generated, KeyError> {
        self.count(self.inner.generate(c))
    }
    fn generate_many(&self, c: &[EncryptionContext]) -> Vec<Result<super::Generated, KeyError>> {
        let each = self.inner.generate_many(c);
        let failed = each.iter().filter(|r| r.is_err()).count();
        self.calls.fetch_add(each.len() as u64, Ordering::Relaxed);
        self.errors.fetch_add(failed as u64, Ordering::Relaxed);
        each
    }
    fn decrypt(&self, w: &[u8], c: &EncryptionContext) -> Result<DataKey, KeyError> {
        self.count(self.inner.decrypt(w, c))
    }
    fn decrypt_with_key(
        &self,
        k: &str,
        w: &[u8],
        c: &EncryptionContext,
    ) -> Result<DataKey, KeyError> {
        self.count(self.inner.decrypt_with_key(k, w, c))
    }
    fn current_key(&self) -> Option<String> {
        self.inner.current_key()
    }
    fn refresh(&self) {
        self.inner.refresh()
    }
}

/// Send + Sync; share it through an `Arc`.
pub struct KeyService {
    backend: Arc<Counted>,
    volume_id: VolumeId,
    cache: Mutex<KeyCache>,
    pool: KeyPool,
    clock: Arc<dyn Clock>,
    /// Unwraps in flight, by wrapped key: concurrent misses share one.
    unwraps: SingleFlight<Vec<u8>, Result<Arc<DataKey>, KeyError>>,
    /// The volume's header version (1, or 2 with xattr ciphers).
    header_version: u16,
    /// How long an unwrapped key is used before kmsd is asked again.
    ttl: Duration,
}

impl KeyService {
    /// Keys from a KMS under the volume's KMS key.
    pub fn new(kms: Arc<dyn Kms>, volume: &VolumeConfig, opts: KeyOptions) -> Self {
        let backend = Arc::new(RemoteBackend::for_volume(kms, volume));
        KeyService::with_backend(backend, volume.volume_id, opts, Arc::new(SystemClock))
            .for_format(volume.format_version)
    }

    /// [`KeyService::new`] for a mount that follows a rewrap of the volume
    /// at `dir` to another key (docs/FORMAT.md "A mount follows a
    /// rewrap"): `config_key` is the config data key unwrapped at start.
    pub fn following(
        kms: Arc<dyn Kms>,
        dir: &std::path::Path,
        volume: &VolumeConfig,
        config_key: &DataKey,
        opts: KeyOptions,
    ) -> Self {
        let backend = Arc::new(RemoteBackend::following(kms, dir, volume, config_key));
        KeyService::with_backend(backend, volume.volume_id, opts, Arc::new(SystemClock))
            .for_format(volume.format_version)
    }

    /// Headers of format `version` (1 unless told): what new files get
    /// and what opening requires.
    pub fn for_format(mut self, version: u32) -> Self {
        self.header_version = if version == crate::format::FORMAT_VERSION_2 {
            crate::format::HEADER_VERSION_2
        } else {
            crate::format::HEADER_VERSION
        };
        self
    }

    fn cipher(&self, key: &DataKey, file_id: FileId) -> FileCipher {
        if self.header_version == crate::format::HEADER_VERSION_2 {
            FileCipher::new_v2(key, file_id)
        } else {
            FileCipher::new(key, file_id)
        }
    }

    /// Keys from any backend, on any clock (tests).
    pub fn with_backend(
        backend: Arc<dyn KmsBackend>,
        volume_id: VolumeId,
        opts: KeyOptions,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let backend = Arc::new(Counted {
            inner: backend,
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        let pool = KeyPool::start(
            backend.clone(),
            volume_id,
            clock.clone(),
            opts.pool_size,
            opts.cache_ttl,
            opts.pool_retry,
        );
        KeyService {
            backend,
            volume_id,
            cache: Mutex::new(KeyCache::new(opts.cache_capacity, opts.cache_ttl)),
            pool,
            clock,
            unwraps: SingleFlight::new(),
            header_version: crate::format::HEADER_VERSION,
            ttl: opts.cache_ttl,
        }
    }

    pub fn volume_id(&self) -> &VolumeId {
        &self.volume_id
    }

    fn cache(&self) -> MutexGuard<'_, KeyCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh key for a new file: from the pool when one is ready, else
    /// straight from kmsd. The key is cached, so opening the new header
    /// later costs no kmsd call.
    pub fn new_file(&self) -> Result<NewFile, KeyError> {
        // A rewrap to another key may have changed the config.
        self.backend.refresh();
        let current = self.backend.current_key();
        let pooled = loop {
            match self.pool.take() {
                // Made under the key the volume moved from: wipe them all.
                Some(p) if current.as_ref().is_some_and(|c| *c != p.key_arn) => self.pool.clear(),
                p => break p,
            }
        };
        let (file_id, key, wrapped) = match pooled {
            Some(p) => (p.file_id, p.key, p.wrapped),
            None => {
                let file_id = FileId::random()
                    .map_err(|e| KeyError::Unavailable(format!("no random file id: {e}")))?;
                let ctx = VolumeConfig::file_context(&self.volume_id, &file_id);
                let g = self.backend.generate(&ctx)?;
                (file_id, g.key, g.wrapped)
            }
        };
        let header = Header {
            file_id,
            wrapped_key: wrapped,
        };
        let bytes = header
            .encode_version(self.header_version, &key, &self.volume_id)
            .map_err(|e| KeyError::Unavailable(format!("kmsd's wrapped key does not fit: {e}")))?;
        let cipher = Arc::new(self.cipher(&key, file_id));
        self.cache()
            .insert(header.wrapped_key, Arc::new(key), self.clock.now());
        Ok(NewFile {
            file_id,
            cipher,
            header: bytes,
        })
    }

    /// The cipher of an existing file from its header bytes (exactly
    /// `HEADER_SIZE`): parses, unwraps through the cache, verifies the MAC.
    pub fn open(&self, header_bytes: &[u8]) -> Result<Arc<FileCipher>, KeyError> {
        let header = Header::parse_version(header_bytes, self.header_version)
            .map_err(|e| KeyError::Corrupt(e.to_string()))?;
        let key = self.unwrap_key(&header, header_bytes)?;
        Ok(Arc::new(self.cipher(&key, header.file_id)))
    }

    /// How long a key is used before kmsd is asked again (the cache TTL).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// [`KeyService::open`] asking kmsd, not the cache: whether the key may
    /// still be used (revocation). A refusal drops the cached key.
    pub fn revalidate(&self, header_bytes: &[u8]) -> Result<Arc<FileCipher>, KeyError> {
        let header = Header::parse_version(header_bytes, self.header_version)
            .map_err(|e| KeyError::Corrupt(e.to_string()))?;
        let dropped = self.cache().remove(&header.wrapped_key);
        let key = self.unwrap_key(&header, header_bytes);
        if let (Err(KeyError::Unavailable(_)), Some(k)) = (&key, dropped) {
            // kmsd unreachable: keep the key it gave.
            self.cache()
                .insert(header.wrapped_key.clone(), k, self.clock.now());
        }
        Ok(Arc::new(self.cipher(&*key?, header.file_id)))
    }

    /// The verified data key of a parsed header.
    fn unwrap_key(&self, header: &Header, bytes: &[u8]) -> Result<Arc<DataKey>, KeyError> {
        let now = self.clock.now();
        let cached = self.cache().get(&header.wrapped_key, now);
        let (key, fresh) = match cached {
            Some(k) => (k, false),
            None => {
                let ctx = VolumeConfig::file_context(&self.volume_id, &header.file_id);
                let (key, led) = self.unwraps.run(&header.wrapped_key, || {
                    self.backend
                        .decrypt(&header.wrapped_key, &ctx)
                        .map(Arc::new)
                });
                (key?, led)
            }
        };
        header
            .verify_version(self.header_version, bytes, &key, &self.volume_id)
            .map_err(|e| KeyError::Corrupt(e.to_string()))?;
        if fresh {
            let mut c = self.cache();
            c.insert(header.wrapped_key.clone(), key.clone(), now);
            c.purge_expired(now);
        }
        Ok(key)
    }

    pub fn stats(&self) -> KeyStats {
        let c = self.cache().stats();
        let p = self.pool.stats();
        KeyStats {
            entries: c.entries,
            hits: c.hits,
            misses: c.misses,
            evictions: c.evictions,
            expirations: c.expirations,
            kmsd_calls: self.backend.calls.load(Ordering::Relaxed),
            kmsd_errors: self.backend.errors.load(Ordering::Relaxed),
            pool_available: p.available,
            pool_taken: p.taken,
            pool_empty: p.empty,
        }
    }

    /// Wipes every cached and pooled key (unmount, or on demand).
    pub fn clear(&self) {
        self.cache().clear();
        self.pool.clear();
    }
}

#[cfg(test)]
mod tests;
