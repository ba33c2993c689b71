//! The FUSE frontend: a passthrough over the backing directory that
//! encrypts regular files' content (docs/FORMAT.md) and leaves names,
//! directories, links and metadata as they are.
//!
//! - [`sys`]: the `*at` system calls on `O_PATH` descriptors.
//! - [`inode`]: node ids ↔ backing files, lookup counts.
//! - [`handles`]: open files and directories.
//! - [`content`]: plaintext reads, writes and truncation over cipher blocks.
//! - [`xattr`]: `user.*` value encryption.
//! - `entries`, `files`, `dirs`: the operations, as `Result<_, Errno>`
//!   methods; `filesystem`: the `fuser::Filesystem` impl that calls them
//!   and replies.
//! - [`mount`]: mount options and running a session.
//!
//! The backing directory must not be changed behind a mount's back while it
//! is mounted (as with gocryptfs): the kernel keeps file pages cached
//! across opens.

pub mod attr;
pub mod content;
mod dirs;
mod entries;
mod export;
mod files;
mod filesystem;
pub mod handles;
pub mod inode;
pub mod kernel;
mod keysource;
pub mod layout;
pub mod mount;
mod names;
pub mod revoke;
pub mod stats;
pub mod sys;
mod tree;
pub mod xattr;
mod xattrs;

use content::{Fault, KeySource};
use fuser::{Errno, FileAttr, INodeNo};
use handles::HandleTable;
use inode::{Inode, InodeTable};
use kernel::KernelLink;
use kmsd_client::logsafe::{EscapedPath, escape};
pub use layout::Layout;
use stats::FsStats;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tunables of a mount.
#[derive(Clone, Debug)]
pub struct FsOptions {
    /// How long the kernel may cache attributes.
    pub attr_ttl: Duration,
    /// How long the kernel may cache names.
    pub entry_ttl: Duration,
    /// Let the kernel buffer writes in its page cache and send them in
    /// the background (FUSE_WRITEBACK_CACHE).
    pub writeback_cache: bool,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            attr_ttl: Duration::from_secs(1),
            entry_ttl: Duration::from_secs(1),
            writeback_cache: true,
        }
    }
}

/// The filesystem.
pub struct KmsFs {
    cipherdir: PathBuf,
    inodes: Arc<InodeTable>,
    handles: HandleTable,
    keys: Arc<dyn KeySource>,
    layout: Layout,
    stats: Arc<FsStats>,
    opts: FsOptions,
    /// Our own credentials: files created for a caller with the same ones
    /// need no chown.
    euid: u32,
    egid: u32,
    on_destroy: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// The session's notifier, once the mount connects it.
    kernel: Arc<KernelLink>,
}

impl KmsFs {
    /// A filesystem over the backing directory `cipherdir`.
    pub fn new(
        cipherdir: &Path,
        keys: Arc<dyn KeySource>,
        layout: Layout,
        opts: FsOptions,
    ) -> std::io::Result<KmsFs> {
        let cipherdir = std::fs::canonicalize(cipherdir)?;
        let c = std::ffi::CString::new(cipherdir.as_os_str().as_bytes())
            .map_err(std::io::Error::other)?;
        let root = sys::open_root(&c).map_err(|e| std::io::Error::from_raw_os_error(e.code()))?;
        let st =
            sys::fstat(root.as_fd()).map_err(|e| std::io::Error::from_raw_os_error(e.code()))?;
        sys::raise_nofile_limit();
        sys::clear_umask();
        Ok(KmsFs {
            cipherdir,
            inodes: Arc::new(InodeTable::new(root, &st)),
            handles: HandleTable::default(),
            keys,
            layout,
            stats: Arc::new(FsStats::default()),
            opts,
            // SAFETY: geteuid/getegid cannot fail.
            euid: unsafe { libc::geteuid() },
            egid: unsafe { libc::getegid() },
            on_destroy: Mutex::new(None),
            kernel: Arc::default(),
        })
    }

    /// Counters shared with the control socket.
    pub fn stats(&self) -> Arc<FsStats> {
        self.stats.clone()
    }

    /// Runs `f` when the filesystem is unmounted (wipes the key cache).
    pub fn on_destroy(&self, f: impl FnOnce() + Send + 'static) {
        *inode::lock(&self.on_destroy) = Some(Box::new(f));
    }

    /// Where the mount connects its session's notifier: the filesystem
    /// moves into the session, so it can only be handed over after.
    pub fn kernel_link(&self) -> Arc<KernelLink> {
        self.kernel.clone()
    }

    /// Tells the kernel that `inode`'s attributes changed without its
    /// knowing (we cleared set-id bits after a write, an ACL changed the
    /// mode), so the next `stat` does not show the old mode until the
    /// attribute timeout.
    fn attrs_changed(&self, inode: &Inode) {
        self.kernel.attrs_changed(inode.id);
    }

    fn inode(&self, id: INodeNo) -> Result<Arc<Inode>, Errno> {
        self.inodes.get(id)
    }

    /// Fresh attributes of an inode.
    fn attr_of(&self, inode: &Inode) -> Result<FileAttr, Errno> {
        let st = sys::fstat(inode.fd())?;
        Ok(self.file_attr(inode.id, &st))
    }

    /// The attributes of node `id` with backing status `st`.
    fn file_attr(&self, id: INodeNo, st: &libc::stat) -> FileAttr {
        attr::file_attr(id, st, self.layout.sizes())
    }

    /// The user-visible path of an inode, for log lines: escaped (a file
    /// name may hold a newline or escape sequence; see
    /// [`kmsd_client::logsafe`]).
    fn display_path(&self, inode: &Inode) -> String {
        let link = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&inode.fd())
        ));
        match link {
            Ok(p) => match p.strip_prefix(&self.cipherdir) {
                Ok(rel) => format!("/{}", EscapedPath(&self.plain_path(rel))),
                Err(_) => EscapedPath(&p).to_string(),
            },
            Err(_) => format!("inode {}", inode.id.0),
        }
    }

    /// Logs a fault of `inode` (one line, never key bytes) and counts it.
    fn report(&self, inode: &Inode, fault: &Fault) {
        match fault {
            Fault::Key(k) if k.damaged => {
                self.stats.count_damaged_read();
                tracing::error!(
                    "{}: file header is damaged or not from this volume ({}); returning EIO",
                    self.display_path(inode),
                    escape(&k.message)
                );
            }
            Fault::Key(k) => {
                self.stats.count_key_error();
                if self.stats.should_log_key_error() {
                    tracing::error!("{}: {}", self.display_path(inode), escape(&k.message));
                }
            }
            Fault::Block(b) => {
                self.stats.count_damaged_read();
                tracing::error!(
                    "{}: block {} failed authentication or is damaged ({}); returning EIO",
                    self.display_path(inode),
                    b.block,
                    escape(&b.to_string())
                );
            }
            Fault::Size(s) => {
                self.stats.count_damaged_read();
                tracing::error!(
                    "{}: backing file size {s} is impossible (truncated or damaged); returning EIO",
                    self.display_path(inode)
                );
            }
        }
    }
}
