//! Directory listing, statfs and access.

use super::entries::Entry;
use super::handles::OpenDir;
use super::names::Listed;
use super::sys;
use super::{KmsFs, Layout};
use fuser::{Errno, FileAttr, FileHandle, FileType, Generation, INodeNo};
use std::ffi::CStr;
use std::sync::Arc;

/// One entry to hand to the kernel.
pub struct ListedEntry<'a> {
    pub ino: INodeNo,
    /// The offset of the entry after this one.
    pub next: u64,
    pub kind: FileType,
    pub name: &'a CStr,
}

fn kind_of_dtype(t: u8) -> FileType {
    match t {
        libc::DT_DIR => FileType::Directory,
        libc::DT_LNK => FileType::Symlink,
        libc::DT_FIFO => FileType::NamedPipe,
        libc::DT_SOCK => FileType::Socket,
        libc::DT_CHR => FileType::CharDevice,
        libc::DT_BLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

/// Attributes of `.` and `..` in readdirplus: only the number and type
/// are used.
fn dot_attr(ino: INodeNo) -> FileAttr {
    let t = std::time::SystemTime::UNIX_EPOCH;
    FileAttr {
        ino,
        size: 0,
        blocks: 0,
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind: FileType::Directory,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 0,
        flags: 0,
    }
}

fn is_dot(name: &CStr) -> bool {
    matches!(name.to_bytes(), b"." | b"..")
}

/// Statfs figures, in `ReplyStatfs::statfs` argument order.
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

impl KmsFs {
    pub(super) fn do_opendir(&self, ino: INodeNo) -> Result<FileHandle, Errno> {
        let inode = self.inode(ino)?;
        if !inode.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(self.handles.add_dir(OpenDir {
            inode,
            entries: std::sync::Mutex::new(Vec::new()),
        }))
    }

    pub(super) fn do_releasedir(&self, fh: FileHandle) {
        self.handles.remove_dir(fh);
    }

    /// The directory's entries from `offset` on (reading from 0 lists the
    /// backing directory afresh). `add` returns true when the kernel's
    /// buffer is full.
    pub(super) fn do_readdir(
        &self,
        fh: FileHandle,
        offset: u64,
        mut add: impl FnMut(ListedEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let d = self.handles.dir(fh)?;
        let mut entries = super::inode::lock(&d.entries);
        if offset == 0 {
            *entries = self.list(&d)?;
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, e) in entries.iter().enumerate().skip(start) {
            let ino = if e.name.to_bytes() == b"." {
                d.inode.id
            } else {
                INodeNo(e.ino)
            };
            let full = add(ListedEntry {
                ino,
                next: i as u64 + 1,
                kind: kind_of_dtype(e.d_type),
                name: &e.name,
            });
            if full {
                break;
            }
        }
        Ok(())
    }

    /// Like [`KmsFs::do_readdir`] but with each entry's attributes; every
    /// entry except `.` and `..` counts one kernel reference, given back
    /// when the buffer turns out full.
    pub(super) fn do_readdirplus(
        &self,
        fh: FileHandle,
        offset: u64,
        mut add: impl FnMut(&CStr, u64, &Entry) -> bool,
    ) -> Result<(), Errno> {
        let d = self.handles.dir(fh)?;
        let mut entries = super::inode::lock(&d.entries);
        if offset == 0 {
            *entries = self.list(&d)?;
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, e) in entries.iter().enumerate().skip(start) {
            let next = i as u64 + 1;
            if is_dot(&e.name) {
                // The kernel links neither `.` nor `..`: no reference.
                let ino = if e.name.to_bytes() == b"." {
                    d.inode.id
                } else {
                    INodeNo(e.ino)
                };
                let dot = Entry {
                    attr: dot_attr(ino),
                    generation: Generation(0),
                };
                if add(&e.name, next, &dot) {
                    break;
                }
                continue;
            }
            let entry = match self.lookup_backing(&d.inode, e.backing_name()) {
                Ok(a) => a,
                // Gone since the listing: skip it.
                Err(_) => continue,
            };
            if add(&e.name, next, &entry) {
                self.forget_inode(entry.attr.ino, 1);
                break;
            }
        }
        Ok(())
    }

    fn list(&self, d: &Arc<OpenDir>) -> Result<Vec<Listed>, Errno> {
        let raw = sys::list_dir(d.inode.fd())?;
        Ok(self.user_listing(&d.inode, raw))
    }

    /// The longest name `statfs` promises: 255 with encrypted names (long
    /// names make every plaintext name fit), else the backing one's, at
    /// most 255 in format 2.
    fn name_max(&self, backing: u64) -> u32 {
        let backing = u32::try_from(backing).unwrap_or(u32::MAX);
        match &self.layout {
            Layout::V1 { .. } => backing,
            Layout::V2(v) if v.names.is_some() => crate::format::names::NAME_MAX as u32,
            Layout::V2(_) => backing.min(crate::format::names::NAME_MAX as u32),
        }
    }

    pub(super) fn do_statfs(&self) -> Result<StatFs, Errno> {
        let root = self.inodes.root();
        let s = sys::fstatvfs(root.fd())?;
        Ok(StatFs {
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
            bsize: s.f_bsize as u32,
            namelen: self.name_max(s.f_namemax),
            frsize: s.f_frsize as u32,
        })
    }

    /// `access(2)`. The kernel asks only on mounts without
    /// `default_permissions`, which only their owner can use, and the
    /// daemon runs as that owner: the backing file system answers.
    pub(super) fn do_access(&self, ino: INodeNo, mask: i32) -> Result<(), Errno> {
        let inode = self.inode(ino)?;
        sys::access_fd(inode.fd(), mask)
    }
}
