//! Revocation within a bounded time: every key a mount holds is checked
//! with kmsd again once per TTL (one call per file key per TTL, not per
//! read), open files included. A refused key (disabled, pending deletion,
//! grant revoked, policy denies) is wiped and the kernel is told to drop
//! the file's cached pages, so reads and writes of it get `EACCES` from
//! then on; when kmsd agrees again, the next request unwraps the key anew.
//! Requests check too (`FileIo::cipher`); this sweep makes the bound hold
//! for files whose pages the kernel serves without asking.

use super::content::{KeySource, revalidate};
use super::inode::{InodeTable, lock};
use crate::format::HEADER_SIZE;
use fuser::INodeNo;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Checks the mount's keys with kmsd again.
pub struct Sweeper {
    inodes: Arc<InodeTable>,
    keys: Arc<dyn KeySource>,
    ttl: Duration,
}

impl Sweeper {
    /// How often to sweep: a quarter of the TTL (so a key is at most
    /// 1.25 TTL old), at least every 100 ms.
    pub fn interval(&self) -> Duration {
        (self.ttl / 4).max(Duration::from_millis(100))
    }

    /// Checks every key older than the TTL; `revoked` is called with each
    /// file whose key kmsd refused. Returns how many keys were checked.
    pub fn sweep(&self, revoked: &dyn Fn(INodeNo)) -> usize {
        let Some(before) = Instant::now().checked_sub(self.ttl) else {
            return 0;
        };
        let stale = self.inodes.checked_before(before);
        for inode in &stale {
            let Ok(io) = inode.io() else { continue };
            let _r = inode.content.read().unwrap_or_else(|p| p.into_inner());
            let mut slot = lock(&inode.cipher);
            if slot.as_ref().is_none_or(|c| c.at >= before) {
                continue;
            }
            let mut header = [0u8; HEADER_SIZE];
            if super::sys::pread_exact(&io.file, &mut header, 0).is_err() {
                continue;
            }
            if let Err(k) = revalidate(inode, &*self.keys, &header, &mut slot)
                && slot.is_none()
            {
                tracing::warn!(
                    "inode {}: kmsd refused the key ({}); the file gives EACCES until it agrees again",
                    inode.id.0,
                    kmsd_client::logsafe::escape(&k.message)
                );
                drop(slot);
                revoked(inode.id);
            }
        }
        stale.len()
    }
}

impl super::KmsFs {
    /// The sweeper of this mount's keys, when its key source revalidates.
    pub fn sweeper(&self) -> Option<Sweeper> {
        Some(Sweeper {
            inodes: self.inodes.clone(),
            keys: self.keys.clone(),
            ttl: self.keys.revalidate_after()?,
        })
    }
}
