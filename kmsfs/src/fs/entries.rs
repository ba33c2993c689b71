//! Operations on names: lookup, create, link, unlink, rename.

use super::handles::OpenFile;
use super::inode::Inode;
use super::{KmsFs, attr, sys};
use fuser::{Errno, FileAttr, FileHandle, INodeNo, RenameFlags};
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The caller of an operation, for the owner of what it creates.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

/// Flags a backing file is opened with for the kernel's `flags`: never
/// append (we write at the kernel's offsets), truncate, create or direct
/// I/O; read-write whenever the caller may write (partial blocks are read
/// before they are rewritten).
pub fn backing_open_flags(flags: i32) -> i32 {
    let strip = libc::O_ACCMODE
        | libc::O_CREAT
        | libc::O_EXCL
        | libc::O_NOCTTY
        | libc::O_TRUNC
        | libc::O_APPEND
        | libc::O_DIRECT
        | libc::O_NOFOLLOW
        | libc::O_PATH;
    let acc = if flags & libc::O_ACCMODE == libc::O_RDONLY {
        libc::O_RDONLY
    } else {
        libc::O_RDWR
    };
    (flags & !strip) | acc
}

impl KmsFs {
    /// Looks `name` up in `parent` and counts one kernel reference.
    pub(super) fn lookup_entry(&self, parent: &Inode, name: &CStr) -> Result<FileAttr, Errno> {
        if self.is_hidden(parent, name) {
            return Err(Errno::ENOENT);
        }
        let fd = sys::open_path_at(parent.fd(), name)?;
        Ok(self.remember(fd)?.1)
    }

    /// Counts one kernel reference to the file `fd` holds.
    fn remember(&self, fd: OwnedFd) -> Result<(Arc<Inode>, FileAttr), Errno> {
        let st = sys::fstat(fd.as_fd())?;
        let inode = self.inodes.remember(fd, &st);
        self.stats
            .inodes
            .store(self.inodes.len() as u64, Ordering::Relaxed);
        let attr = attr::file_attr(inode.id, &st);
        Ok((inode, attr))
    }

    pub(super) fn forget_inode(&self, id: INodeNo, n: u64) {
        self.inodes.forget(id, n);
        self.stats
            .inodes
            .store(self.inodes.len() as u64, Ordering::Relaxed);
    }

    fn check_name(&self, parent: &Inode, name: &CStr) -> Result<(), Errno> {
        if self.is_hidden(parent, name) {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// Gives a file we just created to the caller: the caller's uid, and
    /// the caller's gid unless the directory is set-group-id. Nothing to do
    /// when the caller has our own credentials.
    fn adopt(&self, fd: BorrowedFd<'_>, parent: &Inode, who: Caller) -> Result<(), Errno> {
        if who.uid == self.euid && who.gid == self.egid {
            return Ok(());
        }
        let st = sys::fstat(fd)?;
        let pst = sys::fstat(parent.fd())?;
        let gid = if pst.st_mode & libc::S_ISGID != 0 {
            pst.st_gid
        } else {
            who.gid
        };
        if st.st_uid == who.uid && st.st_gid == gid {
            return Ok(());
        }
        sys::chown_fd(fd, Some(who.uid), Some(gid))?;
        // chown clears set-id bits of non-directories: put back the mode
        // the caller asked for.
        let kind = st.st_mode & libc::S_IFMT;
        if st.st_mode & 0o6000 != 0 && kind != libc::S_IFDIR && kind != libc::S_IFLNK {
            sys::chmod_fd(fd, st.st_mode & 0o7777)?;
        }
        Ok(())
    }

    /// The `O_PATH` handle of a name just created, made the caller's (the
    /// name is removed again if that fails), and counted.
    fn finish_create(
        &self,
        parent: &Inode,
        name: &CStr,
        who: Caller,
        is_dir: bool,
    ) -> Result<FileAttr, Errno> {
        let undo = |e: Errno| {
            let flag = if is_dir { libc::AT_REMOVEDIR } else { 0 };
            let _ = sys::unlink_at(parent.fd(), name, flag);
            e
        };
        let fd = sys::open_path_at(parent.fd(), name).map_err(undo)?;
        self.adopt(fd.as_fd(), parent, who).map_err(undo)?;
        Ok(self.remember(fd)?.1)
    }

    pub(super) fn do_mkdir(
        &self,
        parent: INodeNo,
        name: &CStr,
        mode: u32,
        who: Caller,
    ) -> Result<FileAttr, Errno> {
        let parent = self.inode(parent)?;
        self.check_name(&parent, name)?;
        sys::mkdir_at(parent.fd(), name, mode & 0o7777)?;
        self.finish_create(&parent, name, who, true)
    }

    pub(super) fn do_mknod(
        &self,
        parent: INodeNo,
        name: &CStr,
        mode: u32,
        rdev: u32,
        who: Caller,
    ) -> Result<FileAttr, Errno> {
        let parent = self.inode(parent)?;
        self.check_name(&parent, name)?;
        if mode & libc::S_IFMT == libc::S_IFREG || mode & libc::S_IFMT == 0 {
            // An empty regular file: no header, no key.
            drop(sys::open_at(
                parent.fd(),
                name,
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                mode & 0o7777,
            )?);
        } else {
            sys::mknod_at(parent.fd(), name, mode, libc::dev_t::from(rdev))?;
        }
        self.finish_create(&parent, name, who, false)
    }

    pub(super) fn do_symlink(
        &self,
        parent: INodeNo,
        name: &CStr,
        target: &CStr,
        who: Caller,
    ) -> Result<FileAttr, Errno> {
        let parent = self.inode(parent)?;
        self.check_name(&parent, name)?;
        sys::symlink_at(target, parent.fd(), name)?;
        self.finish_create(&parent, name, who, false)
    }

    /// Creates and opens a regular file.
    pub(super) fn do_create(
        &self,
        parent: INodeNo,
        name: &CStr,
        mode: u32,
        flags: i32,
        who: Caller,
    ) -> Result<(FileAttr, FileHandle), Errno> {
        let parent = self.inode(parent)?;
        self.check_name(&parent, name)?;
        let open = backing_open_flags(flags);
        let (file, created) = match sys::open_at(
            parent.fd(),
            name,
            open | libc::O_CREAT | libc::O_EXCL,
            mode & 0o7777,
        ) {
            Ok(f) => (f, true),
            // It appeared since the kernel's lookup: open it, unless the
            // caller wanted it new.
            Err(e) if e == Errno::EEXIST && flags & libc::O_EXCL == 0 => {
                (sys::open_at(parent.fd(), name, open, 0)?, false)
            }
            Err(e) => return Err(e),
        };
        let undo = |e: Errno| {
            if created {
                let _ = sys::unlink_at(parent.fd(), name, 0);
            }
            e
        };
        // The inode's handle is a duplicate of the new descriptor: no
        // second open, no path lookup that a rename could race.
        let pfd = file
            .try_clone()
            .map(OwnedFd::from)
            .map_err(|e| undo(Errno::from(e)))?;
        if created {
            self.adopt(pfd.as_fd(), &parent, who).map_err(undo)?;
        }
        let (inode, mut attr) = self.remember(pfd)?;
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        // A plain read-write descriptor becomes the inode's shared one.
        let plain = open & !(libc::O_LARGEFILE | libc::O_CLOEXEC) == libc::O_RDWR;
        let own = if plain && inode.io_if_open().is_none() {
            inode.adopt_io(file);
            None
        } else {
            Some(file)
        };
        let h = OpenFile {
            inode,
            own,
            writable,
        };
        if !created && flags & libc::O_TRUNC != 0 && attr.size > 0 {
            self.truncate_with(&h.inode, h.file()?, 0)?;
            attr = self.attr_of(&h.inode)?;
        }
        if writable {
            self.prepare_write(&h.inode, h.file()?).map_err(undo)?;
        }
        let fh = self.handles.add_file(h);
        self.stats
            .open_files
            .store(self.handles.open_files() as u64, Ordering::Relaxed);
        Ok((attr, fh))
    }

    pub(super) fn do_link(
        &self,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &CStr,
    ) -> Result<FileAttr, Errno> {
        let inode = self.inode(ino)?;
        let parent = self.inode(newparent)?;
        self.check_name(&parent, newname)?;
        if inode.is_dir() {
            return Err(Errno::EPERM);
        }
        sys::link_fd(inode.fd(), parent.fd(), newname)?;
        self.lookup_entry(&parent, newname)
    }

    pub(super) fn do_unlink(&self, parent: INodeNo, name: &CStr, dir: bool) -> Result<(), Errno> {
        let parent = self.inode(parent)?;
        if self.is_hidden(&parent, name) {
            return Err(Errno::ENOENT);
        }
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        sys::unlink_at(parent.fd(), name, flags)
    }

    pub(super) fn do_rename(
        &self,
        parent: INodeNo,
        name: &CStr,
        newparent: INodeNo,
        newname: &CStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        let from = self.inode(parent)?;
        let to = self.inode(newparent)?;
        if self.is_hidden(&from, name) || self.is_hidden(&to, newname) {
            return Err(Errno::EPERM);
        }
        let allowed = RenameFlags::RENAME_NOREPLACE | RenameFlags::RENAME_EXCHANGE;
        if !allowed.contains(flags) {
            return Err(Errno::EINVAL);
        }
        sys::rename_at2(from.fd(), name, to.fd(), newname, flags.bits())
    }

    pub(super) fn do_readlink(&self, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        let inode = self.inode(ino)?;
        if !inode.is_symlink() {
            return Err(Errno::EINVAL);
        }
        sys::readlink_fd(inode.fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backing_files_never_append_truncate_or_bypass_the_cache() {
        let f = backing_open_flags(libc::O_WRONLY | libc::O_APPEND | libc::O_TRUNC | libc::O_SYNC);
        assert_eq!(f & libc::O_ACCMODE, libc::O_RDWR);
        assert_eq!(f & (libc::O_APPEND | libc::O_TRUNC), 0);
        assert_ne!(f & libc::O_SYNC, 0);
        assert_eq!(
            backing_open_flags(libc::O_RDONLY | libc::O_DIRECT),
            libc::O_RDONLY
        );
        assert_eq!(
            backing_open_flags(libc::O_RDWR | libc::O_CREAT | libc::O_EXCL) & !libc::O_LARGEFILE,
            libc::O_RDWR
        );
    }
}
