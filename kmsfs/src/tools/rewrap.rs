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
use crate::format::kmsblob::BlobKey;
use crate::format::{CONFIG_FILE_NAME, HEADER_SIZE, HEADER_VERSION_2, Header, VolumeConfig};
use crate::keys::follow::FOLLOW_INTERVAL;
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
    /// Of `files`, those later passes found (made under the old key while
    /// the rewrap ran).
    pub later: u64,
    /// The whole run (later passes wait for mounts to see the config).
    pub seconds: f64,
    /// The first pass over every file.
    pub first_pass_seconds: f64,
    pub errors: Vec<(PathBuf, String)>,
}

impl std::fmt::Display for RewrapReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (p, e) in &self.errors {
            writeln!(f, "{}: {e}", p.display())?;
        }
        let first = self.files - self.later;
        let rate = if self.first_pass_seconds > 0.0 {
            first as f64 / self.first_pass_seconds
        } else {
            0.0
        };
        write!(
            f,
            "{} files rewrapped under {} in {:.2} s (the first pass: {first} in {:.2} s, {rate:.0} files/s), {} errors",
            self.files,
            self.key_arn,
            self.seconds,
            self.first_pass_seconds,
            self.errors.len()
        )?;
        if self.later > 0 {
            write!(
                f,
                "; {} of them made under the old key during the run",
                self.later
            )?;
        }
        Ok(())
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

/// Rewraps one file's header in place. With `skip_under`, a header whose
/// kmsd blob names that key is left alone (a later pass). Whether it was
/// rewritten.
fn rewrap_file(
    kms: &dyn Kms,
    volume: &Volume,
    backing: &Path,
    sources: &[&str],
    dest: &str,
    skip_under: Option<&str>,
) -> Result<bool, String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(volume.dir.join(backing))
        .map_err(|e| e.to_string())?;
    let mut h = [0u8; HEADER_SIZE];
    f.read_exact_at(&mut h, 0).map_err(|e| e.to_string())?;
    let header = Header::parse_version(&h, HEADER_VERSION_2).map_err(|e| e.to_string())?;
    if let Some(k) = skip_under
        && BlobKey::of(&header.wrapped_key).is_some_and(|b| b.is_under(k))
    {
        return Ok(false);
    }
    let ctx = VolumeConfig::file_context(&volume.config.volume_id, &header.file_id);
    let blob = match reencrypt(kms, &header.wrapped_key, &ctx, sources, dest) {
        Ok(b) => b,
        // A later pass over a blob that is not kmsd's (AWS KMS): not under
        // the old key, so already moved.
        Err(_) if skip_under.is_some() && !is_under_source(kms, &header, &ctx, sources) => {
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let new = rewrapped(&h, &blob).map_err(|e| e.to_string())?;
    f.write_all_at(&new, 0).map_err(|e| e.to_string())?;
    Ok(true)
}

/// Whether `header`'s blob is under one of `sources` (one `Decrypt` per
/// source naming it; only for blobs whose key cannot be read).
fn is_under_source(
    kms: &dyn Kms,
    header: &Header,
    ctx: &EncryptionContext,
    sources: &[&str],
) -> bool {
    sources.iter().any(|s| {
        !matches!(kms.decrypt(s, &header.wrapped_key, ctx),
            Err(e) if e.kind() == Some(ErrorKind::IncorrectKeyException))
    })
}

/// One pass over every file of the volume: `(files rewritten, errors)`.
fn pass(
    connect: Connect<'_>,
    volume: &Volume,
    threads: usize,
    sources: &[&str],
    dest: &str,
    skip_under: Option<&str>,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> (u64, Vec<(PathBuf, String)>) {
    let listing = walk::list(&volume.dir, &volume.layout);
    let total = listing.files.len() as u64;
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let rewritten = AtomicU64::new(0);
    let errors = Mutex::new(Vec::new());
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
                    match rewrap_file(kms.as_ref(), volume, &f.backing, sources, dest, skip_under) {
                        Ok(true) => {
                            rewritten.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {}
                        Err(e) => crate::fs::inode::lock(&errors).push((f.plain.clone(), e)),
                    }
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(d, total);
                }
            });
        }
    });
    let mut errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    errors.sort();
    (rewritten.into_inner(), errors)
}

/// Later passes after a move to another key, at most this many: mounts
/// that had not yet seen the new config may have made files under the old
/// key (docs/FORMAT.md "Rewrap in progress", step 3).
const MAX_LATER_PASSES: usize = 16;

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
    let config_written = Instant::now();
    // (2) Every file's header.
    let started = Instant::now();
    let (mut files, mut errors) = pass(connect, &volume, threads, &sources, &dest, None, progress);
    let first_pass_seconds = started.elapsed().as_secs_f64();
    // (3) Files mounts made under the old key before they re-read the
    // config: once every mount has seen it, pass again until none is left.
    let mut later = 0;
    if old != dest && errors.is_empty() {
        let settled = config_written + 2 * FOLLOW_INTERVAL;
        for round in 1..=MAX_LATER_PASSES {
            std::thread::sleep(settled.saturating_duration_since(Instant::now()));
            let (n, e) = pass(
                connect,
                &volume,
                threads,
                &[&old],
                &dest,
                Some(&dest),
                &|_, _| {},
            );
            files += n;
            later += n;
            errors = e;
            if n == 0 || !errors.is_empty() {
                break;
            }
            if round == MAX_LATER_PASSES {
                errors.push((
                    PathBuf::new(),
                    format!(
                        "files under {old} still appear after {MAX_LATER_PASSES} passes (a mount that does not follow the config?); rewrap_from kept: run again"
                    ),
                ));
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // (4) Finished: the old key is no longer needed.
    if errors.is_empty() && config.rewrap_from.is_some() {
        config.rewrap_from = None;
        write_config(dir, &config)?;
    }
    Ok(RewrapReport {
        key_arn: dest,
        files,
        later,
        seconds,
        first_pass_seconds,
        errors,
    })
}
