//! `kmsfs fsck`: authenticate a volume offline — the config, then every
//! file's size, header and blocks — and report each problem with its path
//! and block number. Problems are collected, not fatal; only kmsd being
//! unreachable (nothing can be checked) or the directory not being a
//! volume stops the run.

use super::read::{self, Event, FileError};
use super::walk;
use crate::format::offsets::{CIPHER_BLOCK_SIZE, HEADER_SIZE};
use crate::format::{CONFIG_FILE_NAME, FormatError};
use crate::fs::layout::Sizes;
use crate::keys::{KeyError, KeyOptions, Volume, VolumeError};
use crate::kms::Kms;
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One problem: where (path relative to the backing directory, and the
/// block when it is one) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub block: Option<u64>,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.block {
            Some(b) => write!(f, "{}: block {b}: {}", self.path.display(), self.what),
            None => write!(f, "{}: {}", self.path.display(), self.what),
        }
    }
}

/// What fsck found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Regular files checked (empty ones included).
    pub files: u64,
    pub empty_files: u64,
    /// Blocks that authenticated (holes included).
    pub blocks: u64,
    /// All-zero hole blocks (read as zeros, not authenticated).
    pub holes: u64,
    /// Plaintext bytes of the files checked.
    pub bytes: u64,
    /// Entries that are not regular files or directories (not checked).
    pub other: u64,
    /// Their paths and kinds (listed by Display, not problems: a mount
    /// may hold FIFOs and sockets).
    pub other_entries: Vec<(PathBuf, &'static str)>,
    /// Leftovers of interrupted operations (format 2: temporary names,
    /// orphan sidecars): safe to delete, not problems.
    pub leftovers: u64,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Problems of one path (tests and callers that group by file).
    pub fn problems_of(&self, path: impl AsRef<Path>) -> Vec<&Problem> {
        self.problems
            .iter()
            .filter(|p| p.path == path.as_ref())
            .collect()
    }

    fn problem(&mut self, path: &Path, block: Option<u64>, what: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_path_buf(),
            block,
            what: what.into(),
        });
    }
}

impl fmt::Display for Report {
    /// One line per problem, then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        for (p, kind) in &self.other_entries {
            writeln!(f, "{}: {kind}, not checked", p.display())?;
        }
        write!(
            f,
            "{} files ({} empty), {} blocks ({} holes), {} bytes checked: {}",
            self.files,
            self.empty_files,
            self.blocks,
            self.holes,
            self.bytes,
            match self.problems.len() {
                0 => "no problems".to_string(),
                1 => "1 problem".to_string(),
                n => format!("{n} problems"),
            }
        )?;
        if self.leftovers > 0 {
            write!(
                f,
                " ({} leftovers of interrupted operations, safe to delete)",
                self.leftovers
            )?;
        }
        Ok(())
    }
}

/// Why fsck could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum FsckError {
    /// Not a volume, the key pin does not match, or kmsd refused or is
    /// unreachable when opening the config.
    Volume(VolumeError),
    /// kmsd became unreachable during the run.
    Unavailable(KeyError),
}

impl fmt::Display for FsckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsckError::Volume(e) => e.fmt(f),
            FsckError::Unavailable(e) => write!(f, "stopped: {e}"),
        }
    }
}

impl std::error::Error for FsckError {}

/// Opens the volume at `dir` through kmsd and checks it. A config that
/// fails authentication is reported as a problem of `kmsfs.conf` (nothing
/// else can be checked then). `expected_key` pins the KMS key.
pub fn fsck(
    kms: Arc<dyn Kms>,
    dir: &Path,
    expected_key: Option<&str>,
    show_progress: bool,
) -> Result<Report, FsckError> {
    check_opened(
        Volume::open(kms, dir, expected_key, KeyOptions::offline()),
        show_progress,
    )
}

/// Turns a failed open into a config problem where that is what it is.
pub fn check_opened(
    volume: Result<Volume, VolumeError>,
    show_progress: bool,
) -> Result<Report, FsckError> {
    match volume {
        Ok(v) => fsck_volume(&v, show_progress),
        Err(VolumeError::Format { error, .. }) => {
            let mut r = Report::default();
            r.problem(Path::new(CONFIG_FILE_NAME), None, error.to_string());
            Ok(r)
        }
        Err(e) => Err(FsckError::Volume(e)),
    }
}

/// Trees at least this large get a progress bar (when asked for).
const PROGRESS_MIN_BYTES: u64 = 64 << 20;
const PROGRESS_MIN_FILES: usize = 1000;

/// Checks every regular file of an open volume.
pub fn fsck_volume(volume: &Volume, show_progress: bool) -> Result<Report, FsckError> {
    let listing = walk::list(&volume.dir, &volume.layout);
    // Format 2 checks symlinks (target and xattrs) below.
    let v2 = volume.layout.v2().is_some();
    let mut report = Report {
        other: listing.other,
        other_entries: listing
            .other_entries
            .iter()
            .filter(|(_, kind)| !(v2 && *kind == "symlink"))
            .cloned()
            .collect(),
        leftovers: listing.leftovers,
        ..Report::default()
    };
    for (path, e) in &listing.errors {
        report.problem(path, None, format!("cannot read: {e}"));
    }
    for (path, what) in &listing.problems {
        report.problem(path, None, what.clone());
    }
    if let Some(v2) = volume.layout.v2() {
        for (plain, backing) in &listing.symlinks {
            let ok = std::fs::read_link(volume.dir.join(backing))
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    v2.symlinks
                        .decrypt_target(t.as_os_str().as_encoded_bytes())
                        .map_err(|e| e.to_string())
                });
            match ok {
                Err(e) => report.problem(plain, None, format!("symlink target: {e}")),
                Ok((id, _)) => match symlink_handle(&volume.dir.join(backing)) {
                    Ok(fd) => check_xattrs_of(
                        crate::fs::sys::XattrTarget::Path(std::os::fd::AsFd::as_fd(&fd)),
                        &v2.node_xattr,
                        &crate::format::xattr::Node::symlink(id),
                        plain,
                        &mut report,
                    ),
                    Err(e) => report.problem(plain, None, format!("cannot open: {e}")),
                },
            }
        }
    }
    if let Some(v2) = volume.layout.v2() {
        for (plain, backing, id) in &listing.dirs {
            let node = crate::format::xattr::Node::dir(*id);
            let dir = volume.dir.join(backing);
            match std::fs::File::open(&dir) {
                Ok(f) => check_xattrs(&f, &v2.node_xattr, &node, plain, &mut report),
                Err(e) => report.problem(plain, None, format!("cannot open: {e}")),
            }
        }
    }
    let total: u64 = listing.files.iter().map(|f| f.size).sum();
    let bar = if show_progress
        && (total >= PROGRESS_MIN_BYTES || listing.files.len() >= PROGRESS_MIN_FILES)
    {
        let b = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
        ) {
            b.set_style(style);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    for f in &listing.files {
        bar.set_message(f.plain.display().to_string());
        check_file(volume, &f.plain, &f.backing, &mut report)?;
        bar.inc(f.size);
    }
    bar.finish_and_clear();
    Ok(report)
}

/// Checks one regular file, known to the user as `rel` and stored at
/// `backing`.
pub(super) fn check_file(
    volume: &Volume,
    rel: &Path,
    backing: &Path,
    report: &mut Report,
) -> Result<(), FsckError> {
    report.files += 1;
    let sizes = volume.layout.sizes();
    let file = match kmsd_client::nofollow::open_regular(&volume.dir.join(backing)) {
        Ok(f) => f,
        Err(e) => {
            report.problem(rel, None, format!("cannot open: {e}"));
            return Ok(());
        }
    };
    let plain_size = match read::plain_size(&file, sizes) {
        Ok((_, p)) => p,
        Err(FileError::Size(FormatError::BadSize { cipher_size })) => {
            size_problem(rel, cipher_size, sizes, report);
            return Ok(());
        }
        Err(e) => return file_problem(rel, e, report),
    };
    if plain_size == 0 && sizes == Sizes::V1 {
        report.empty_files += 1;
        return Ok(());
    }
    let cipher = match read::open(&volume.keys, &file) {
        Ok(c) => c,
        Err(e) => return file_problem(rel, e, report),
    };
    if let Some(x) = cipher.xattr() {
        let node = crate::format::xattr::Node::file(cipher.file_id());
        check_xattrs(&file, x, &node, rel, report);
    }
    if plain_size == 0 {
        report.empty_files += 1;
        return match read::check_empty(&cipher, &file) {
            Ok(()) => Ok(()),
            Err(e) => file_problem(rel, e, report),
        };
    }
    let result = read::blocks(&cipher, &file, plain_size, |ev| {
        match ev {
            Event::Plain(data) => {
                report.blocks += data.len().div_ceil(crate::format::BLOCK_SIZE) as u64;
                report.bytes += data.len() as u64;
            }
            Event::Hole => report.holes += 1,
            Event::Bad(e) => report.problem(rel, Some(e.block), bad_block_text(e.kind)),
        }
        ControlFlow::Continue(())
    });
    if let Err(e) = result {
        report.problem(rel, None, format!("read error: {e}"));
    }
    Ok(())
}

/// Format 2: every `user.*` and `trusted.*` value of an open backing file
/// or directory must authenticate for its node.
fn check_xattrs(
    f: &std::fs::File,
    cipher: &crate::format::xattr::XattrCipherV2,
    node: &crate::format::xattr::Node,
    rel: &Path,
    report: &mut Report,
) {
    use std::os::fd::AsFd;
    check_xattrs_of(
        crate::fs::sys::XattrTarget::Open(f.as_fd()),
        cipher,
        node,
        rel,
        report,
    );
}

/// [`check_xattrs`] of any target (a symlink: its `O_PATH` descriptor).
fn check_xattrs_of(
    target: crate::fs::sys::XattrTarget<'_>,
    cipher: &crate::format::xattr::XattrCipherV2,
    node: &crate::format::xattr::Node,
    rel: &Path,
    report: &mut Report,
) {
    use crate::format::xattr::{XattrPolicy, policy};
    use crate::fs::sys::{getxattr, listxattr};
    let list = match listxattr(target) {
        Ok(l) => l,
        Err(e) => {
            report.problem(rel, None, format!("cannot list xattrs: {e:?}"));
            return;
        }
    };
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if policy(name) != XattrPolicy::Encrypt {
            continue;
        }
        let Ok(cname) = std::ffi::CString::new(name) else {
            continue;
        };
        let shown = kmsd_client::logsafe::escape_bytes(name);
        match getxattr(target, &cname) {
            Ok(raw) => {
                if cipher.open(node, name, &raw).is_err() {
                    report.problem(
                        rel,
                        None,
                        format!(
                            "xattr {shown} failed authentication (edited or from another file)"
                        ),
                    );
                }
            }
            Err(e) => report.problem(rel, None, format!("cannot read xattr {shown}: {e:?}")),
        }
    }
}

/// An `O_PATH|O_NOFOLLOW` descriptor of the symlink at `path` (its xattrs
/// are read through it, never the target's).
fn symlink_handle(path: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)
        .map(std::os::fd::OwnedFd::from)
}

fn bad_block_text(kind: crate::format::BlockErrorKind) -> &'static str {
    use crate::format::BlockErrorKind::*;
    match kind {
        Authentication => {
            "failed authentication (altered, moved, from another file, or the file was truncated or extended here)"
        }
        FinalHole => "all-zero block at the end of the file (truncated or zeroed)",
        Truncated => "truncated block",
        _ => "cannot be decrypted",
    }
}

fn size_problem(rel: &Path, cipher_size: u64, sizes: Sizes, report: &mut Report) {
    let hs = HEADER_SIZE as u64;
    if cipher_size == 0 && sizes == Sizes::V2 {
        report.problem(rel, None, "0 bytes: no header (truncated to zero)");
    } else if cipher_size < hs {
        report.problem(
            rel,
            None,
            format!("{cipher_size} bytes: shorter than a header (truncated)"),
        );
    } else if cipher_size == hs {
        report.problem(rel, Some(0), "header without blocks (truncated at block 0)");
    } else {
        let block = (cipher_size - hs) / CIPHER_BLOCK_SIZE as u64;
        report.problem(
            rel,
            Some(block),
            format!("backing size {cipher_size} ends inside this block (truncated)"),
        );
    }
}

fn file_problem(rel: &Path, e: FileError, report: &mut Report) -> Result<(), FsckError> {
    match e {
        FileError::Io(e) => report.problem(rel, None, format!("read error: {e}")),
        FileError::Size(e) => report.problem(rel, None, e.to_string()),
        FileError::Key(KeyError::Unavailable(m)) => {
            return Err(FsckError::Unavailable(KeyError::Unavailable(m)));
        }
        FileError::Key(e) => report.problem(rel, None, format!("header: {e}")),
        FileError::Block(e) => report.problem(
            rel,
            Some(e.block),
            "not an empty file's final block (truncated to its first block)",
        ),
    }
    Ok(())
}
