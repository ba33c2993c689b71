//! The filesystem's line back to the kernel: the session's notifier.
//!
//! The filesystem moves into the session, so the notifier can only be
//! handed over after the mount ([`KernelLink::connect`]), before the
//! session serves its first request. Until then every notification is a
//! no-op.

use fuser::{INodeNo, Notifier};
use std::sync::OnceLock;

struct Connected {
    notifier: Notifier,
    /// Another thread can serve the writes a write-back waits for (a
    /// one-thread session would deadlock on its own notification).
    can_flush: bool,
}

/// Shared between the filesystem and the mount that connects it.
#[derive(Default)]
pub struct KernelLink {
    session: OnceLock<Connected>,
}

impl KernelLink {
    /// Hands over the session's notifier; `threads` is the number of
    /// threads that serve requests. A second call is ignored.
    pub fn connect(&self, notifier: Notifier, threads: usize) {
        let _ = self.session.set(Connected {
            notifier,
            can_flush: threads > 1,
        });
    }

    /// The kernel drops the attributes it caches for `ino` (offset -1:
    /// not its pages), so the next `stat` asks us.
    pub fn attrs_changed(&self, ino: INodeNo) {
        let Some(s) = self.session.get() else { return };
        // ENOENT: the kernel has forgotten the inode, nothing is cached.
        if let Err(e) = s.notifier.inval_inode(ino, -1, 0) {
            tracing::debug!("cannot invalidate the attributes of inode {}: {e}", ino.0);
        }
    }

    /// The kernel writes its dirty pages of `ino` back from byte `off` on
    /// (the invalidation launders them) and returns once we have them.
    /// False when it cannot: not connected, or one thread only.
    pub fn flush_pages(&self, ino: INodeNo, off: i64) -> bool {
        let Some(s) = self.session.get().filter(|s| s.can_flush) else {
            return false;
        };
        if let Err(e) = s.notifier.inval_inode(ino, off, 0) {
            tracing::debug!("cannot have inode {} written back: {e}", ino.0);
        }
        true
    }
}
