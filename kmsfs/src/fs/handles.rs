//! Open files and directories, by the handle number the kernel passes back.

use super::inode::{Inode, lock};
use super::names::Listed;
use fuser::{Errno, FileHandle};
use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// An open regular file (or other non-directory).
pub struct OpenFile {
    pub inode: Arc<Inode>,
    /// A descriptor of its own, when the open needs flags of its own
    /// (`O_SYNC`, ...) or the inode's shared one cannot write; else the
    /// inode's shared read-write descriptor serves.
    pub own: Option<File>,
    pub writable: bool,
}

impl OpenFile {
    /// The descriptor to do I/O with.
    pub fn file(&self) -> Result<&File, Errno> {
        match &self.own {
            Some(f) => Ok(f),
            None => Ok(&self.inode.io()?.file),
        }
    }
}

/// An open directory: its entries as listed when reading started at
/// offset 0.
pub struct OpenDir {
    pub inode: Arc<Inode>,
    pub entries: Mutex<Vec<Listed>>,
}

#[derive(Default)]
pub struct HandleTable {
    files: RwLock<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<OpenDir>>>,
    next: AtomicU64,
}

impl HandleTable {
    fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn add_file(&self, f: OpenFile) -> FileHandle {
        let fh = self.next();
        self.files
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fh, Arc::new(f));
        FileHandle(fh)
    }

    pub fn file(&self, fh: FileHandle) -> Result<Arc<OpenFile>, Errno> {
        self.files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fh.0)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    pub fn remove_file(&self, fh: FileHandle) -> Option<Arc<OpenFile>> {
        self.files
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&fh.0)
    }

    pub fn add_dir(&self, d: OpenDir) -> FileHandle {
        let fh = self.next();
        lock(&self.dirs).insert(fh, Arc::new(d));
        FileHandle(fh)
    }

    pub fn dir(&self, fh: FileHandle) -> Result<Arc<OpenDir>, Errno> {
        lock(&self.dirs).get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    pub fn remove_dir(&self, fh: FileHandle) {
        lock(&self.dirs).remove(&fh.0);
    }

    pub fn open_files(&self) -> usize {
        self.files.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}
