//! Creating and opening a volume: its authenticated `kmsfs.conf`
//! (docs/FORMAT.md, "Volume config"), and [`Volume`], a backing directory
//! with its verified config and a [`KeyService`].

use super::backend::{KmsBackend, RemoteBackend};
use super::{KeyError, KeyOptions, KeyService};
use crate::format::config::MAX_CONFIG_FILE;
use crate::format::{CONFIG_FILE_NAME, DataKey, FormatError, VolumeConfig, VolumeId};
use crate::kms::Kms;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug)]
#[non_exhaustive]
pub enum VolumeError {
    /// No `kmsfs.conf` in the directory.
    NotAVolume(PathBuf),
    /// `init` on a directory that already has a config.
    Exists(PathBuf),
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The config is malformed or fails authentication.
    Format { path: PathBuf, error: FormatError },
    /// kmsd refused or failed.
    Key(KeyError),
    /// `--key-id` resolves to another key than the config names.
    KeyMismatch { expected: String, config: String },
    /// The volume's format is one this tool does not handle.
    Unsupported(String),
}

impl fmt::Display for VolumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeError::NotAVolume(p) => {
                write!(
                    f,
                    "{} is not a kmsfs volume (no {CONFIG_FILE_NAME}); run `kmsfs init` first",
                    p.display()
                )
            }
            VolumeError::Exists(p) => write!(f, "{} already exists", p.display()),
            VolumeError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            VolumeError::Format { path, error } => write!(f, "{}: {error}", path.display()),
            VolumeError::Key(e) => e.fmt(f),
            VolumeError::Unsupported(m) => f.write_str(m),
            VolumeError::KeyMismatch { expected, config } => write!(
                f,
                "the volume is bound to KMS key {config}, not the expected {expected}; refusing it"
            ),
        }
    }
}

impl std::error::Error for VolumeError {}

impl From<KeyError> for VolumeError {
    fn from(e: KeyError) -> Self {
        VolumeError::Key(e)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    move |error| VolumeError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The format a new volume gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InitFormat {
    /// Version 1: plaintext names.
    #[default]
    V1,
    /// Version 2 (docs/FORMAT.md "Version 2"), names encrypted unless
    /// `plaintext_names`.
    V2 { plaintext_names: bool },
}

/// Makes `cipherdir` a volume bound to KMS key `key_id` (id, ARN or alias):
/// a fresh volume id and a config sealed with a data key kmsd generates for
/// it. Refuses a directory that already has a config.
pub fn init_volume(
    kms: Arc<dyn Kms>,
    cipherdir: &Path,
    key_id: &str,
) -> Result<VolumeConfig, VolumeError> {
    init_volume_as(kms, cipherdir, key_id, InitFormat::V1)
}

/// [`init_volume`] in a chosen format.
pub fn init_volume_as(
    kms: Arc<dyn Kms>,
    cipherdir: &Path,
    key_id: &str,
    format: InitFormat,
) -> Result<VolumeConfig, VolumeError> {
    init_format_with(&RemoteBackend::new(kms, key_id), cipherdir, format)
}

#[cfg(test)]
pub(crate) fn init_with(
    backend: &dyn KmsBackend,
    cipherdir: &Path,
) -> Result<VolumeConfig, VolumeError> {
    init_format_with(backend, cipherdir, InitFormat::V1)
}

pub(crate) fn init_format_with(
    backend: &dyn KmsBackend,
    cipherdir: &Path,
    format: InitFormat,
) -> Result<VolumeConfig, VolumeError> {
    let path = cipherdir.join(CONFIG_FILE_NAME);
    if !cipherdir.is_dir() {
        return Err(VolumeError::Io {
            path: cipherdir.to_path_buf(),
            error: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        });
    }
    if path.exists() {
        return Err(VolumeError::Exists(path));
    }
    let volume_id = VolumeId::random()
        .map_err(|e| KeyError::Unavailable(format!("no random volume id: {e}")))?;
    let g = backend.generate(&VolumeConfig::config_context(&volume_id))?;
    let mut config = match format {
        InitFormat::V1 => VolumeConfig::new(volume_id, g.key_arn, g.wrapped),
        InitFormat::V2 { plaintext_names } => {
            // The name key: a data key of its own (never derived from
            // another), wrapped under the same KMS key.
            let n = backend.generate(&VolumeConfig::names_context(&volume_id))?;
            VolumeConfig::new_v2(volume_id, g.key_arn, g.wrapped, n.wrapped, plaintext_names)
        }
    };
    config.seal(&g.key).map_err(|error| VolumeError::Format {
        path: path.clone(),
        error,
    })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                VolumeError::Exists(path.clone())
            } else {
                io(&path)(e)
            }
        })?;
    f.write_all(config.to_json().as_bytes())
        .map_err(io(&path))?;
    f.sync_all().map_err(io(&path))?;
    Ok(config)
}

/// Reads and authenticates `cipherdir/kmsfs.conf`. With `expected_key`
/// (`--key-id`: id, ARN or alias) the config must name the key kmsd
/// resolves it to; pin it whenever the backing directory is untrusted.
pub fn load_volume(
    kms: Arc<dyn Kms>,
    cipherdir: &Path,
    expected_key: Option<&str>,
) -> Result<VolumeConfig, VolumeError> {
    load_volume_keys(kms, cipherdir, expected_key).map(|(c, _)| c)
}

/// [`load_volume`], and the keys it unwrapped to authenticate the config
/// (the config key, and the name key of version 2), so a caller that needs
/// them asks kmsd once.
pub fn load_volume_keys(
    kms: Arc<dyn Kms>,
    cipherdir: &Path,
    expected_key: Option<&str>,
) -> Result<(VolumeConfig, VolumeKeys), VolumeError> {
    let config = read_config(cipherdir)?;
    if let Some(expected) = expected_key {
        let arn = kms.key_arn(expected).map_err(KeyError::from)?;
        // During a rewrap from the pinned key, the config names the new
        // key; its `rewrap_from` is checked below (the same config key).
        let from = config.rewrap_from.as_ref().map(|r| r.key_arn.as_str());
        if arn != config.key_arn && Some(arn.as_str()) != from {
            return Err(VolumeError::KeyMismatch {
                expected: arn,
                config: config.key_arn,
            });
        }
    }
    let backend = RemoteBackend::for_volume(kms, &config);
    let keys = unwrap_volume_keys(&backend, cipherdir, &config)?;
    Ok((config, keys))
}

/// Parses the config (structure only).
pub fn read_config(cipherdir: &Path) -> Result<VolumeConfig, VolumeError> {
    let path = cipherdir.join(CONFIG_FILE_NAME);
    // No symlink followed, no wait on a FIFO; only a regular file is read.
    let f = match kmsd_client::nofollow::open_regular(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VolumeError::NotAVolume(cipherdir.to_path_buf()));
        }
        Err(e) => return Err(io(&path)(e)),
    };
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_FILE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io(&path))?;
    VolumeConfig::from_json(&bytes).map_err(|error| VolumeError::Format { path, error })
}

/// The unwrapped keys of a volume's config: the config key (verified
/// against the MAC) and, in version 2, the name key.
pub struct VolumeKeys {
    pub config_key: DataKey,
    pub name_key: Option<DataKey>,
}

/// Unwraps the config key (checking the MAC) and the name key.
pub fn unwrap_volume_keys(
    backend: &dyn KmsBackend,
    cipherdir: &Path,
    config: &VolumeConfig,
) -> Result<VolumeKeys, VolumeError> {
    let path = cipherdir.join(CONFIG_FILE_NAME);
    let auth = |what: &str, detail: String| VolumeError::Format {
        path: path.clone(),
        error: FormatError::BadConfig(format!("{what} failed authentication ({detail})")),
    };
    let ctx = VolumeConfig::config_context(&config.volume_id);
    let config_key = match backend.decrypt_with_key(&config.key_arn, &config.config_key, &ctx) {
        Ok(k) => k,
        Err(KeyError::Corrupt(m)) => return Err(auth("the config", m)),
        Err(e) => return Err(e.into()),
    };
    config
        .verify(&config_key)
        .map_err(|error| VolumeError::Format {
            path: path.clone(),
            error,
        })?;
    if let Some(r) = &config.rewrap_from {
        // An unfinished rewrap: the config key under the old key must be
        // the same key, or the config was not written by someone who
        // could use the old key (docs/FORMAT.md "Rewrap in progress").
        let same = match backend.decrypt_with_key(&r.key_arn, &r.config_key, &ctx) {
            Ok(k) => super::follow::same_key(&k, &config_key),
            Err(KeyError::Corrupt(_)) => false,
            Err(e) => return Err(e.into()),
        };
        if !same {
            return Err(auth(
                "the unfinished rewrap",
                "rewrap_from's config key is not the volume's".into(),
            ));
        }
    }
    let name_key = match &config.names {
        None => None,
        Some(n) => {
            let ctx = VolumeConfig::names_context(&config.volume_id);
            match backend.decrypt_with_key(&config.key_arn, &n.name_key, &ctx) {
                Ok(k) => Some(k),
                Err(KeyError::Corrupt(m)) => return Err(auth("the name key", m)),
                Err(e) => return Err(e.into()),
            }
        }
    };
    Ok(VolumeKeys {
        config_key,
        name_key,
    })
}

/// An open volume: the backing directory, its verified config and keys,
/// and its format's name and xattr ciphers.
pub struct Volume {
    pub dir: PathBuf,
    pub config: VolumeConfig,
    pub keys: Arc<KeyService>,
    pub layout: Arc<crate::fs::Layout>,
}

impl Volume {
    /// Loads and authenticates the config, then starts a key service.
    pub fn open(
        kms: Arc<dyn Kms>,
        dir: &Path,
        expected_key: Option<&str>,
        opts: KeyOptions,
    ) -> Result<Volume, VolumeError> {
        let (config, volume_keys) = load_volume_keys(kms.clone(), dir, expected_key)?;
        let layout = layout_of(&config, &volume_keys)?;
        let keys = Arc::new(KeyService::following(
            kms,
            dir,
            &config,
            &volume_keys.config_key,
            opts,
        ));
        Ok(Volume {
            dir: dir.to_path_buf(),
            config,
            keys,
            layout,
        })
    }

    /// The same with any backend (tests).
    pub fn open_with(
        backend: Arc<dyn KmsBackend>,
        dir: &Path,
        opts: KeyOptions,
    ) -> Result<Volume, VolumeError> {
        let config = read_config(dir)?;
        let layout = layout_of(
            &config,
            &unwrap_volume_keys(backend.as_ref(), dir, &config)?,
        )?;
        let keys = Arc::new(
            KeyService::with_backend(
                backend,
                config.volume_id,
                opts,
                Arc::new(super::SystemClock),
            )
            .for_format(config.format_version),
        );
        Ok(Volume {
            dir: dir.to_path_buf(),
            config,
            keys,
            layout,
        })
    }
}

/// The volume's layout from its unwrapped keys.
fn layout_of(
    config: &VolumeConfig,
    keys: &VolumeKeys,
) -> Result<Arc<crate::fs::Layout>, VolumeError> {
    crate::fs::Layout::of(config, keys)
        .map(Arc::new)
        .map_err(VolumeError::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::testing::{FAKE_ARN, FakeKms};

    #[test]
    fn init_then_open() {
        let d = tempfile::tempdir().unwrap();
        let kms = Arc::new(FakeKms::new());
        let c = init_with(kms.as_ref(), d.path()).unwrap();
        assert_eq!(c.key_arn, FAKE_ARN);
        let v = Volume::open_with(
            kms.clone(),
            d.path(),
            KeyOptions {
                pool_size: 0,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(v.config, c);
        assert_eq!(v.keys.volume_id(), &c.volume_id);
        // A second init is refused and leaves the config alone.
        assert!(matches!(
            init_with(kms.as_ref(), d.path()),
            Err(VolumeError::Exists(_))
        ));
        assert_eq!(read_config(d.path()).unwrap(), c);
    }

    #[test]
    fn missing_config_is_not_a_volume() {
        let d = tempfile::tempdir().unwrap();
        let kms = Arc::new(FakeKms::new());
        let e = Volume::open_with(kms, d.path(), KeyOptions::default())
            .err()
            .unwrap();
        assert!(matches!(e, VolumeError::NotAVolume(_)), "{e}");
        assert!(e.to_string().contains("kmsfs init"));
    }

    #[test]
    fn every_edited_field_fails() {
        let d = tempfile::tempdir().unwrap();
        let kms = Arc::new(FakeKms::new());
        let c = init_with(kms.as_ref(), d.path()).unwrap();
        let path = d.path().join(CONFIG_FILE_NAME);
        let good = std::fs::read_to_string(&path).unwrap();
        let mut other_vol = c.volume_id.0;
        other_vol[0] ^= 1;
        let mut mac = c.mac;
        mac[31] ^= 1;
        let mut blob = c.config_key.clone();
        blob[20] ^= 1;
        let edits = [
            good.replace(&c.volume_id.to_hex(), &VolumeId(other_vol).to_hex()),
            good.replace(FAKE_ARN, "arn:aws:kms:local:000000000000:key/other"),
            good.replace(
                &crate::format::ids::to_hex(&c.mac),
                &crate::format::ids::to_hex(&mac),
            ),
            VolumeConfig {
                config_key: blob,
                ..c.clone()
            }
            .to_json(),
            good.replace("\"block_size\": 4096", "\"block_size\": 4097"),
            good.replace("\"format_version\": 1", "\"format_version\": 2"),
            good.replace("\"format_version\": 1", "\"format_version\": 3"),
        ];
        for bad in edits {
            assert_ne!(bad, good);
            std::fs::write(&path, &bad).unwrap();
            let e = Volume::open_with(kms.clone(), d.path(), KeyOptions::default()).err();
            assert!(
                matches!(e, Some(VolumeError::Format { .. })),
                "{bad}: {e:?}"
            );
        }
    }
}
