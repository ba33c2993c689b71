//! `kmsfs rewrap`: every wrapped key of a format 2 volume re-encrypted
//! through kmsd's `ReEncrypt`, under another KMS key or the current
//! version of the volume's own key; no plaintext key leaves kmsd and no
//! content block is read or written (docs/design/REWRAP.md,
//! docs/FORMAT.md "Rewrap in progress").
//!
//! Order, so that a kill at any instant leaves every file readable and a
//! second run finishes the job: (1) the config gets the new key, its blobs
//! rewrapped, and `rewrap_from` (the old key, with the config key under
//! it), written by rename; (2) each file's header is rewritten in place,
//! one 512-byte `pwrite` (the MAC stays: it does not cover the blob);
//! (3) once every file is done, the config is written without
//! `rewrap_from`. Until then mounts and tools accept blobs under either key.

use super::walk;
use crate::format::config::RewrapFrom;
use crate::format::header::rewrapped;
use crate::format::{CONFIG_FILE_NAME, HEADER_SIZE, HEADER_VERSION_2, Header, VolumeConfig};
use crate::keys::{KeyOptions, Volume};
use crate::kms::Kms;
use kmsd_client::{EncryptionContext, ErrorKind};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a run did.
#[derive(Debug, Default)]
pub struct RewrapReport {
    pub key_arn: String,
    pub files: u64,
    pub seconds: f64,
    pub errors: Vec<(PathBuf, String)>,
}

impl std::fmt::Display for RewrapReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (p, e) in &self.errors {
            writeln!(f, "{}: {e}", p.display())?;
        }
        let rate = if self.seconds > 0.0 {
            self.files as f64 / self.seconds
        } else {
            0.0
        };
        write!(
            f,
            "{} files rewrapped under {} in {:.2} s ({rate:.0} files/s), {} errors",
            self.files,
            self.key_arn,
            self.seconds,
            self.errors.len()
        )
    }
}

/// A connection to the KMS for one worker thread (kmsd: a socket of its
/// own; the AWS API: one shared client).
pub type Connect<'a> = &'a (dyn Fn() -> Result<Arc<dyn Kms>, String> + Sync);

/// Re-encrypts `wrapped` (context `ctx`) from one of `sources` to `dest`.
fn reencrypt(
    kms: &dyn Kms,
    wrapped: &[u8],
    ctx: &EncryptionContext,
    sources: &[&str],
    dest: &str,
) -> Result<Vec<u8>, String> {
    let mut last = String::new();
    for src in sources {
        match kms.re_encrypt(wrapped, ctx, src, dest) {
            Ok(blob) => return Ok(blob),
            // Under the other key (already rewrapped, or not yet).
            Err(e) if e.kind() == Some(ErrorKind::IncorrectKeyException) => last = e.to_string(),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(last)
}

/// Writes `config` as the volume's config: temporary file, fsync, rename,
/// fsync of the directory.
fn write_config(dir: &Path, config: &VolumeConfig) -> Result<(), String> {
    let path = dir.join(CONFIG_FILE_NAME);
    // A reserved temporary name: a crash leaves a leftover fsck counts.
    let tmp = dir.join(crate::format::dirid::temp_name().map_err(|e| e.to_string())?);
    let io = |e: std::io::Error| format!("{}: {e}", tmp.display());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(config.to_json().as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

/// Rewraps one file's header in place.
fn rewrap_file(
    kms: &dyn Kms,
    volume: &Volume,
    backing: &Path,
    sources: &[&str],
    dest: &str,
) -> Result<(), String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(volume.dir.join(backing))
        .map_err(|e| e.to_string())?;
    let mut h = [0u8; HEADER_SIZE];
    f.read_exact_at(&mut h, 0).map_err(|e| e.to_string())?;
    let header = Header::parse_version(&h, HEADER_VERSION_2).map_err(|e| e.to_string())?;
    let ctx = VolumeConfig::file_context(&volume.config.volume_id, &header.file_id);
    let blob = reencrypt(kms, &header.wrapped_key, &ctx, sources, dest)?;
    let new = rewrapped(&h, &blob).map_err(|e| e.to_string())?;
    f.write_all_at(&new, 0).map_err(|e| e.to_string())
}

/// Rewraps the volume at `dir` under `to_key` (id, ARN or alias), or under
/// the current version of its own key. `threads` workers, each with its
/// own kmsd connection.
pub fn rewrap(
    connect: Connect<'_>,
    dir: &Path,
    to_key: Option<&str>,
    threads: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<RewrapReport, String> {
    let kms = connect()?;
    let volume = Volume::open(kms.clone(), dir, None, KeyOptions::offline())
        .map_err(|e| format!("cannot open the volume {}: {e}", dir.display()))?;
    if volume.config.names.is_none() {
        return Err(format!(
            "{} is format 1, whose headers bind the wrapped key: it cannot be rewrapped in place",
            dir.display()
        ));
    }
    let dest = match to_key {
        None => volume.config.key_arn.clone(),
        Some(k) => kms.key_arn(k).map_err(|e| format!("--to-key {k}: {e}"))?,
    };
    let mut config = volume.config.clone();
    let old = match &config.rewrap_from {
        Some(r) if r.key_arn != dest && config.key_arn != dest => {
            return Err(format!(
                "an unfinished rewrap moves this volume from {} to {}: run `kmsfs rewrap` without --to-key (or with --to-key {}) to finish it first",
                r.key_arn, config.key_arn, config.key_arn
            ));
        }
        Some(r) => r.key_arn.clone(),
        None => config.key_arn.clone(),
    };
    let sources: Vec<&str> = if old == dest {
        vec![dest.as_str()]
    } else {
        vec![old.as_str(), dest.as_str()]
    };
    // (1) The config's blobs under the destination.
    let cfg_ctx = VolumeConfig::config_context(&config.volume_id);
    let names_ctx = VolumeConfig::names_context(&config.volume_id);
    let new_config_key = reencrypt(kms.as_ref(), &config.config_key, &cfg_ctx, &sources, &dest)
        .map_err(|e| format!("config key: {e}"))?;
    if old != dest && config.rewrap_from.is_none() {
        config.rewrap_from = Some(RewrapFrom {
            key_arn: old.clone(),
            config_key: config.config_key.clone(),
        });
    }
    config.config_key = new_config_key;
    if let Some(n) = config.names.as_mut() {
        n.name_key = reencrypt(kms.as_ref(), &n.name_key, &names_ctx, &sources, &dest)
            .map_err(|e| format!("name key: {e}"))?;
    }
    config.key_arn = dest.clone();
    write_config(dir, &config)?;
    // (2) Every file's header.
    let listing = walk::list(dir, &volume.layout);
    let total = listing.files.len() as u64;
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let errors = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let kms = match connect() {
                    Ok(c) => c,
                    Err(e) => {
                        crate::fs::inode::lock(&errors).push((PathBuf::new(), e));
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(f) = listing.files.get(i) else { break };
                    if let Err(e) = rewrap_file(kms.as_ref(), &volume, &f.backing, &sources, &dest)
                    {
                        crate::fs::inode::lock(&errors).push((f.plain.clone(), e));
                    }
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(d, total);
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    errors.sort();
    // (3) Finished: the old key is no longer needed.
    if errors.is_empty() && config.rewrap_from.is_some() {
        config.rewrap_from = None;
        write_config(dir, &config)?;
    }
    Ok(RewrapReport {
        key_arn: dest,
        files: total - errors.len() as u64,
        seconds,
        errors,
    })
}
