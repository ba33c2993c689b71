//! A volume's key set, and a mount that follows `kmsfs rewrap --to-key`
//! while it runs (docs/FORMAT.md "Rewrap in progress", "A mount follows a
//! rewrap").
//!
//! [`KeySet`]: the KMS keys a volume's blobs may be under (the config's
//! `key_arn`, and `rewrap_from.key_arn` while a rewrap is unfinished) and
//! the one new data keys are made under. [`Follow`]: the config data key a
//! mount unwrapped at start; with it a changed `kmsfs.conf` is adopted
//! only if its `config_key`, decrypted under the new key, is that same key
//! (so whoever wrote it could use a key that already held it) and its MAC
//! verifies.

use super::volume::read_config;
use crate::format::{CONFIG_FILE_NAME, DataKey, VolumeConfig};
use crate::kms::Kms;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// The least time between two reads of the config by one mount, and
/// between two checks of whether it changed.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// The keys a volume's blobs may be under, and the one for new keys.
pub struct KeySet {
    inner: RwLock<Keys>,
}

struct Keys {
    current: String,
    accepted: Vec<String>,
}

impl KeySet {
    /// The keys `config` names.
    pub fn of(config: &VolumeConfig) -> KeySet {
        KeySet {
            inner: RwLock::new(Keys {
                current: config.key_arn.clone(),
                accepted: config_keys(config),
            }),
        }
    }

    /// The ARN new data keys are generated under.
    pub fn current(&self) -> String {
        self.read(|k| k.current.clone())
    }

    /// Whether a blob under `arn` belongs to the volume.
    pub fn accepts(&self, arn: &str) -> bool {
        self.read(|k| k.accepted.iter().any(|a| a == arn))
    }

    /// Every accepted key.
    pub fn accepted(&self) -> Vec<String> {
        self.read(|k| k.accepted.clone())
    }

    fn read<T>(&self, f: impl FnOnce(&Keys) -> T) -> T {
        f(&self.inner.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Makes `current` the key of new data keys and adds `more` to the
    /// accepted keys (none is removed).
    fn adopt(&self, current: String, more: Vec<String>) {
        let mut k = self.inner.write().unwrap_or_else(|p| p.into_inner());
        for a in more {
            if !k.accepted.contains(&a) {
                k.accepted.push(a);
            }
        }
        k.current = current;
    }
}

/// The keys a config names: `key_arn`, then `rewrap_from.key_arn`.
fn config_keys(config: &VolumeConfig) -> Vec<String> {
    let mut v = vec![config.key_arn.clone()];
    if let Some(r) = &config.rewrap_from
        && r.key_arn != config.key_arn
    {
        v.push(r.key_arn.clone());
    }
    v
}

/// Constant-time equality of two data keys.
pub fn same_key(a: &DataKey, b: &DataKey) -> bool {
    a.expose()
        .iter()
        .zip(b.expose())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// What identifies one version of the config file on disk.
type Stamp = (u64, u64, u64, i64, i64, i64, i64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

#[derive(Default)]
struct State {
    last_read: Option<Instant>,
    last_stat: Option<Instant>,
    stamp: Option<Stamp>,
}

/// Follows the volume's config: re-reads it when asked (at most once per
/// [`FOLLOW_INTERVAL`]) and adopts a genuine change into a [`KeySet`].
pub struct Follow {
    dir: PathBuf,
    mounted: VolumeConfig,
    /// The config data key unwrapped at start (wiped on drop).
    config_key: DataKey,
    state: Mutex<State>,
}

/// Why a re-read config was not adopted.
type Refusal = String;

impl Follow {
    /// Follows the config of the volume at `dir`, mounted as `config`
    /// whose config data key is `config_key`.
    pub fn new(dir: &Path, config: &VolumeConfig, config_key: &DataKey) -> Follow {
        let mut copy = *config_key.expose();
        Follow {
            dir: dir.to_path_buf(),
            mounted: config.clone(),
            config_key: DataKey::new(&mut copy),
            state: Mutex::new(State {
                stamp: stamp(&dir.join(CONFIG_FILE_NAME)),
                ..State::default()
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-reads the config unless that was done less than
    /// [`FOLLOW_INTERVAL`] ago, and adopts it into `set` if it passes.
    /// Concurrent callers wait for one read.
    pub fn reread(&self, kms: &dyn Kms, set: &KeySet) {
        let mut st = self.state();
        if st.last_read.is_some_and(|t| t.elapsed() < FOLLOW_INTERVAL) {
            return;
        }
        st.last_read = Some(Instant::now());
        st.stamp = stamp(&self.dir.join(CONFIG_FILE_NAME));
        match self.check(kms, set) {
            Ok(None) => {}
            Ok(Some(config)) => {
                let keys = config_keys(&config);
                tracing::info!(
                    "the volume's config changed: new data keys under {}, blobs accepted under {}",
                    kmsd_client::logsafe::escape(&config.key_arn),
                    kmsd_client::logsafe::escape(&keys.join(", "))
                );
                set.adopt(config.key_arn, keys);
            }
            Err(why) => tracing::warn!(
                "{}: not adopting the changed config: {}",
                self.dir.join(CONFIG_FILE_NAME).display(),
                kmsd_client::logsafe::escape(&why)
            ),
        }
    }

    /// Whether the config file changed since it was last read (one `stat`,
    /// at most once per [`FOLLOW_INTERVAL`]); if so, [`Follow::reread`].
    pub fn refresh(&self, kms: &dyn Kms, set: &KeySet) {
        let mut st = self.state();
        if st.last_stat.is_some_and(|t| t.elapsed() < FOLLOW_INTERVAL) {
            return;
        }
        st.last_stat = Some(Instant::now());
        let changed = stamp(&self.dir.join(CONFIG_FILE_NAME)) != st.stamp;
        drop(st);
        if changed {
            self.reread(kms, set);
        }
    }

    /// The config on disk if it differs from what `set` holds and passes
    /// every rule; `None` when nothing changed.
    fn check(&self, kms: &dyn Kms, set: &KeySet) -> Result<Option<VolumeConfig>, Refusal> {
        let c = read_config(&self.dir).map_err(|e| e.to_string())?;
        let m = &self.mounted;
        if set.current() == c.key_arn && config_keys(&c).iter().all(|k| set.accepts(k)) {
            return Ok(None);
        }
        let plaintext = |x: &VolumeConfig| x.names.as_ref().map(|n| n.plaintext_names);
        if c.format_version != m.format_version
            || c.volume_id != m.volume_id
            || c.block_size != m.block_size
            || plaintext(&c) != plaintext(m)
        {
            return Err("it describes another volume or format".into());
        }
        let ctx = VolumeConfig::config_context(&c.volume_id);
        let unwrap = |key: &str, blob: &[u8]| -> Result<bool, Refusal> {
            let k = kms
                .decrypt(key, blob, &ctx)
                .map_err(|e| format!("its config key under {key}: {e}"))?;
            Ok(DataKey::from_slice(k.expose()).is_some_and(|k| same_key(&k, &self.config_key)))
        };
        if !unwrap(&c.key_arn, &c.config_key)? {
            return Err(format!(
                "its config key under {} is not this volume's",
                c.key_arn
            ));
        }
        c.verify(&self.config_key)
            .map_err(|e| format!("its MAC: {e}"))?;
        if let Some(r) = &c.rewrap_from
            && !unwrap(&r.key_arn, &r.config_key)?
        {
            return Err(format!(
                "rewrap_from's config key under {} is not this volume's",
                r.key_arn
            ));
        }
        Ok(Some(c))
    }
}
