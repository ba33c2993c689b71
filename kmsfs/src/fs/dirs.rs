//! Directory listing, statfs, access and extended attributes.

use super::KmsFs;
use super::handles::OpenDir;
use super::inode::Inode;
use super::sys::{self, RawDirEntry, XattrTarget};
use super::xattr::{is_encrypted, is_posix_acl, without_acls};
use fuser::{Errno, FileAttr, FileHandle, FileType, INodeNo};
use std::ffi::CStr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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

/// The xattr the kernel asks for before writes.
const CAPS: &[u8] = b"security.capability";

/// Where an inode's xattr calls go: its shared descriptor when open (no
/// `/proc` path lookup).
fn xattr_target(inode: &Inode) -> XattrTarget<'_> {
    if inode.is_symlink() {
        return XattrTarget::Symlink;
    }
    match inode.io_if_open() {
        Some(io) => XattrTarget::Open(io.file.as_fd()),
        None => XattrTarget::Path(inode.fd()),
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
        mut add: impl FnMut(&CStr, u64, &FileAttr) -> bool,
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
                if add(&e.name, next, &dot_attr(ino)) {
                    break;
                }
                continue;
            }
            let attr = match self.lookup_entry(&d.inode, &e.name) {
                Ok(a) => a,
                // Gone since the listing: skip it.
                Err(_) => continue,
            };
            if add(&e.name, next, &attr) {
                self.forget_inode(attr.ino, 1);
                break;
            }
        }
        Ok(())
    }

    fn list(&self, d: &Arc<OpenDir>) -> Result<Vec<RawDirEntry>, Errno> {
        let mut v = sys::list_dir(d.inode.fd())?;
        if d.inode.id == INodeNo::ROOT {
            v.retain(|e| !self.is_hidden(&d.inode, &e.name));
        }
        Ok(v)
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
            namelen: s.f_namemax as u32,
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

    pub(super) fn do_getxattr(&self, ino: INodeNo, name: &CStr) -> Result<Vec<u8>, Errno> {
        if is_posix_acl(name.to_bytes()) {
            return Err(Errno::EOPNOTSUPP);
        }
        let inode = self.inode(ino)?;
        let caps = name.to_bytes() == CAPS;
        if caps && inode.no_caps.load(Ordering::Relaxed) {
            return Err(Errno::ENODATA);
        }
        let raw = match sys::getxattr(xattr_target(&inode), name) {
            Err(e) if caps && e == Errno::ENODATA => {
                inode.no_caps.store(true, Ordering::Relaxed);
                return Err(e);
            }
            r => r?,
        };
        if !is_encrypted(name.to_bytes()) {
            return Ok(raw);
        }
        self.xattr.open(name.to_bytes(), &raw).inspect_err(|_| {
            self.stats.count_damaged_read();
            tracing::error!(
                "{}: extended attribute {} failed authentication; returning EIO",
                self.display_path(&inode),
                kmsd_client::logsafe::escape_bytes(name.to_bytes())
            );
        })
    }

    pub(super) fn do_setxattr(
        &self,
        ino: INodeNo,
        name: &CStr,
        value: &[u8],
        flags: i32,
    ) -> Result<(), Errno> {
        if is_posix_acl(name.to_bytes()) {
            return Err(Errno::EOPNOTSUPP);
        }
        let inode = self.inode(ino)?;
        if name.to_bytes() == CAPS {
            inode.no_caps.store(false, Ordering::Relaxed);
        }
        if is_encrypted(name.to_bytes()) {
            let sealed = self.xattr.seal(name.to_bytes(), value)?;
            sys::setxattr(xattr_target(&inode), name, &sealed, flags)
        } else {
            sys::setxattr(xattr_target(&inode), name, value, flags)
        }
    }

    pub(super) fn do_listxattr(&self, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        let inode = self.inode(ino)?;
        sys::listxattr(xattr_target(&inode)).map(without_acls)
    }

    pub(super) fn do_removexattr(&self, ino: INodeNo, name: &CStr) -> Result<(), Errno> {
        if is_posix_acl(name.to_bytes()) {
            return Err(Errno::EOPNOTSUPP);
        }
        let inode = self.inode(ino)?;
        sys::removexattr(xattr_target(&inode), name)
    }
}
