//! Lookups by node id alone, for file handles (`FUSE_EXPORT_SUPPORT`:
//! NFS export, open_by_handle_at(2)).
//!
//! A handle the kernel decodes names a node id and a generation. When the
//! kernel still caches the node it needs nothing from us; otherwise it
//! asks for `.` in that node ("the node itself") and, to connect a
//! directory to the tree, for `..`. A node we still know is answered from
//! its descriptor; a forgotten one is opened again by the backing handle
//! it left (`inode`), which only works with `CAP_DAC_READ_SEARCH` and
//! while the backing file exists: otherwise `ESTALE`, as for any stale
//! handle. Only nodes this mount handed out can be reached this way: an
//! id that was never ours has no backing handle.

use super::KmsFs;
use super::entries::Entry;
use super::inode::Inode;
use super::sys;
use fuser::{Errno, INodeNo};
use std::ffi::CStr;
use std::os::fd::AsFd;
use std::sync::Arc;

/// Whether `name` asks for a node by id (`.`) or for its parent (`..`).
pub fn is_by_id(name: &CStr) -> bool {
    matches!(name.to_bytes(), b"." | b"..")
}

impl KmsFs {
    /// Answers a lookup of `.` or `..` in node `id`, counting one kernel
    /// reference to the node it gives.
    pub(super) fn lookup_by_id(&self, id: INodeNo, name: &CStr) -> Result<Entry, Errno> {
        let (node, counted) = match self.inode(id) {
            Ok(n) => (n, None),
            Err(_) => {
                let (n, e) = self.reopen(id)?;
                (n, Some(e))
            }
        };
        if name.to_bytes() == b"." {
            return match counted {
                Some(e) => Ok(e),
                None => Ok(self.remember(sys::dup(node.fd())?)?.1),
            };
        }
        let parent = self.parent_of(&node);
        if counted.is_some() {
            self.forget_inode(node.id, 1);
        }
        parent
    }

    /// The directory holding `dir` (the root for the root: never above
    /// the backing directory), counted.
    fn parent_of(&self, dir: &Inode) -> Result<Entry, Errno> {
        if !dir.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let root = self.inodes.root();
        if dir.key == root.key {
            return Ok(self.remember(sys::dup(root.fd())?)?.1);
        }
        self.lookup_backing(dir, c"..")
    }

    /// A forgotten node opened again by the handle it left, counted once.
    fn reopen(&self, id: INodeNo) -> Result<(Arc<Inode>, Entry), Errno> {
        let handle = self.inodes.forgotten(id).ok_or(Errno::ESTALE)?;
        // A real descriptor of the backing file system: open_by_handle_at
        // refuses an `O_PATH` one.
        let root = self.inodes.root();
        let mount = sys::open_at(root.fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let fd = sys::open_by_handle(mount.as_fd(), &handle).map_err(|e| {
            tracing::debug!("node {} cannot be opened by its handle: {e:?}", id.0);
            Errno::ESTALE
        })?;
        let (node, entry) = self.remember(fd)?;
        if node.id != id {
            // Its backing inode number is another node's now.
            self.forget_inode(node.id, 1);
            return Err(Errno::ESTALE);
        }
        Ok((node, entry))
    }
}
