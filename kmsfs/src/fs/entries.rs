//! Operations on names: lookup, create, link, unlink, rename.

use super::handles::OpenFile;
use super::inode::Inode;
use super::names::Backing;
use super::{KmsFs, sys};
use fuser::{Errno, FileAttr, FileHandle, Generation, INodeNo, RenameFlags};
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

/// The mode a new node is asked for (type and permission bits) and the
/// caller's umask, which the kernel leaves to us (`FUSE_DONT_MASK`).
#[derive(Clone, Copy, Debug)]
pub struct Mode {
    pub mode: u32,
    pub umask: u32,
}

/// What an entry reply gives the kernel: the node's attributes, and the
/// generation that tells the node apart from an earlier one with its
/// number (file handles carry both; see `inode`).
pub struct Entry {
    pub attr: FileAttr,
    pub generation: Generation,
}

/// The default ACL of a directory (inherited by what is created in it).
const DEFAULT_ACL: &CStr = c"system.posix_acl_default";

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
    pub(super) fn lookup_entry(&self, parent: &Inode, name: &CStr) -> Result<Entry, Errno> {
        let b = self.backing(parent, name, Errno::ENOENT, false)?;
        self.lookup_backing(parent, &b.entry)
    }

    /// Opens the backing entry `entry` of `parent` and counts one kernel
    /// reference.
    pub(super) fn lookup_backing(&self, parent: &Inode, entry: &CStr) -> Result<Entry, Errno> {
        let fd = sys::open_path_at(parent.fd(), entry)?;
        Ok(self.remember(fd)?.1)
    }

    /// Counts one kernel reference to the file `fd` holds.
    pub(super) fn remember(&self, fd: OwnedFd) -> Result<(Arc<Inode>, Entry), Errno> {
        let st = sys::fstat(fd.as_fd())?;
        let inode = self.inodes.remember(fd, &st);
        self.stats
            .inodes
            .store(self.inodes.len() as u64, Ordering::Relaxed);
        let entry = Entry {
            attr: self.file_attr(inode.id, &st),
            generation: Generation(inode.generation()),
        };
        Ok((inode, entry))
    }

    pub(super) fn forget_inode(&self, id: INodeNo, n: u64) {
        self.inodes.forget(id, n);
        self.stats
            .inodes
            .store(self.inodes.len() as u64, Ordering::Relaxed);
    }

    /// The backing form of a name about to be created (a long name's
    /// sidecar written first).
    fn new_name(&self, parent: &Inode, name: &CStr) -> Result<Backing, Errno> {
        let b = self.backing(parent, name, Errno::EPERM, true)?;
        self.write_sidecar(parent, &b)?;
        Ok(b)
    }

    /// The permission bits to create a node in `parent` with. Under a
    /// default ACL the backing file system gives the node that ACL, masked
    /// by the requested mode, and the umask does not apply (POSIX.1e, as on
    /// ext4); otherwise the umask applies, and we apply it: our own umask
    /// is 0 ([`sys::clear_umask`]), so the backing file system applies
    /// none. Should the ACL not be readable, the umask applies (the
    /// narrower mode).
    pub(super) fn create_mode(&self, parent: &Inode, m: Mode) -> u32 {
        let perm = m.mode & 0o7777;
        match sys::xattr_len(sys::XattrTarget::Path(parent.fd()), DEFAULT_ACL) {
            Ok(n) if n > 0 => perm,
            _ => perm & !m.umask,
        }
    }

    /// Gives a file we just created to the caller: the caller's uid, and
    /// the caller's gid unless the directory is set-group-id. Nothing to do
    /// when the caller has our own credentials.
    pub(super) fn adopt(
        &self,
        fd: BorrowedFd<'_>,
        parent: &Inode,
        who: Caller,
    ) -> Result<(), Errno> {
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
        name: &Backing,
        who: Caller,
    ) -> Result<(Arc<Inode>, Entry), Errno> {
        let undo = |e: Errno| {
            let _ = sys::unlink_at(parent.fd(), &name.entry, 0);
            self.remove_sidecar(parent, name);
            e
        };
        let fd = sys::open_path_at(parent.fd(), &name.entry).map_err(undo)?;
        self.adopt(fd.as_fd(), parent, who).map_err(undo)?;
        self.remember(fd)
    }

    pub(super) fn do_mkdir(
        &self,
        parent: INodeNo,
        name: &CStr,
        mode: Mode,
        who: Caller,
    ) -> Result<Entry, Errno> {
        let parent = self.inode(parent)?;
        let perm = self.create_mode(&parent, mode);
        let b = self.new_name(&parent, name)?;
        if self.layout.v2().is_some() {
            return self.mkdir_v2(&parent, &b, perm, who);
        }
        sys::mkdir_at(parent.fd(), &b.entry, perm)?;
        let undo = |e: Errno| {
            let _ = sys::unlink_at(parent.fd(), &b.entry, libc::AT_REMOVEDIR);
            e
        };
        let fd = sys::open_path_at(parent.fd(), &b.entry).map_err(undo)?;
        self.adopt(fd.as_fd(), &parent, who).map_err(undo)?;
        Ok(self.remember(fd)?.1)
    }

    pub(super) fn do_mknod(
        &self,
        parent: INodeNo,
        name: &CStr,
        mode: Mode,
        rdev: u32,
        who: Caller,
    ) -> Result<Entry, Errno> {
        let parent = self.inode(parent)?;
        let perm = self.create_mode(&parent, mode);
        let kind = mode.mode & libc::S_IFMT;
        let b = self.new_name(&parent, name)?;
        let regular = kind == libc::S_IFREG || kind == 0;
        if !regular {
            sys::mknod_at(parent.fd(), &b.entry, kind | perm, libc::dev_t::from(rdev))?;
            return Ok(self.finish_create(&parent, &b, who)?.1);
        }
        // Format 1: an empty regular file has no header, no key. Format 2:
        // it has both, and appears with them.
        if self.layout.v2().is_none() {
            drop(sys::open_at(
                parent.fd(),
                &b.entry,
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                perm,
            )?);
            return Ok(self.finish_create(&parent, &b, who)?.1);
        }
        let (file, cipher) = self.create_v2(&parent, &b, libc::O_RDWR, perm, who)?;
        let (inode, entry) = self.remember(OwnedFd::from(file))?;
        inode.set_cipher(Some(cipher));
        Ok(entry)
    }

    /// Format 2: creates a regular file, the caller's, that appears under
    /// its name only with its header and empty final block written: made
    /// as an `O_TMPFILE`, written, given to the caller, then linked in (`EEXIST`
    /// when the name is taken). A kill at any instant leaves no 0-byte file
    /// (which fsck would rightly call truncated). Backing file systems
    /// without `O_TMPFILE` get the file created in place, then written.
    fn create_v2(
        &self,
        parent: &Inode,
        name: &Backing,
        flags: i32,
        mode: u32,
        who: Caller,
    ) -> Result<(std::fs::File, Arc<crate::format::FileCipher>), Errno> {
        let report = |f: &super::content::Fault| self.report(parent, f);
        let (cipher, bytes) = super::content::empty_file(&*self.keys).map_err(|f| {
            report(&f);
            match f {
                super::content::Fault::Key(k) => k.errno,
                _ => Errno::EIO,
            }
        })?;
        let base = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC);
        match sys::open_at(parent.fd(), c".", base | libc::O_TMPFILE, mode) {
            Ok(file) => {
                sys::pwrite_all(&file, &bytes, 0)?;
                self.adopt(file.as_fd(), parent, who)?;
                sys::link_fd(file.as_fd(), parent.fd(), &name.entry)?;
                Ok((file, cipher))
            }
            Err(e) if e == Errno::EOPNOTSUPP || e == Errno::EISDIR || e == Errno::EINVAL => {
                let file = sys::open_at(
                    parent.fd(),
                    &name.entry,
                    base | libc::O_CREAT | libc::O_EXCL,
                    mode,
                )?;
                let written = sys::pwrite_all(&file, &bytes, 0)
                    .and_then(|()| self.adopt(file.as_fd(), parent, who));
                if let Err(e) = written {
                    let _ = sys::unlink_at(parent.fd(), &name.entry, 0);
                    return Err(e);
                }
                Ok((file, cipher))
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn do_symlink(
        &self,
        parent: INodeNo,
        name: &CStr,
        target: &CStr,
        who: Caller,
    ) -> Result<Entry, Errno> {
        let parent = self.inode(parent)?;
        let stored = self.stored_target(target)?;
        let b = self.new_name(&parent, name)?;
        sys::symlink_at(&stored, parent.fd(), &b.entry)?;
        Ok(self.finish_create(&parent, &b, who)?.1)
    }

    /// Creates and opens a regular file.
    pub(super) fn do_create(
        &self,
        parent: INodeNo,
        name: &CStr,
        mode: Mode,
        flags: i32,
        who: Caller,
    ) -> Result<(Entry, FileHandle), Errno> {
        let parent = self.inode(parent)?;
        let perm = self.create_mode(&parent, mode);
        let b = self.new_name(&parent, name)?;
        let open = backing_open_flags(flags);
        let v2 = self.layout.v2().is_some();
        // Format 2 writes the new file's header through this descriptor:
        // read-write whatever the caller asked (the kernel gives the
        // caller a handle with its own access mode).
        let create = if v2 {
            (open & !libc::O_ACCMODE) | libc::O_RDWR
        } else {
            open
        };
        let made = if v2 {
            self.create_v2(&parent, &b, create, perm, who)
                .map(|(f, c)| (f, Some(c)))
        } else {
            sys::open_at(
                parent.fd(),
                &b.entry,
                create | libc::O_CREAT | libc::O_EXCL,
                perm,
            )
            .map(|f| (f, None))
        };
        let (file, created, fresh) = match made {
            Ok((f, c)) => (f, true, c),
            // It appeared since the kernel's lookup: open it, unless the
            // caller wanted it new.
            Err(e) if e == Errno::EEXIST && flags & libc::O_EXCL == 0 => {
                (sys::open_at(parent.fd(), &b.entry, open, 0)?, false, None)
            }
            Err(e) => return Err(e),
        };
        let undo = |e: Errno| {
            if created {
                let _ = sys::unlink_at(parent.fd(), &b.entry, 0);
                self.remove_sidecar(&parent, &b);
            }
            e
        };
        // The inode's handle is a duplicate of the new descriptor: no
        // second open, no path lookup that a rename could race.
        let pfd = file
            .try_clone()
            .map(OwnedFd::from)
            .map_err(|e| undo(Errno::from(e)))?;
        // (Format 2 made it the caller's before it appeared.)
        if created && !v2 {
            self.adopt(pfd.as_fd(), &parent, who).map_err(undo)?;
        }
        let (inode, mut entry) = self.remember(pfd).map_err(undo)?;
        if let Some(c) = fresh {
            inode.set_cipher(Some(c));
        }
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        // A plain read-write descriptor becomes the inode's shared one.
        let plain = create & !(libc::O_LARGEFILE | libc::O_CLOEXEC) == libc::O_RDWR;
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
        if !created && flags & libc::O_TRUNC != 0 && entry.attr.size > 0 {
            self.truncate_with(&h.inode, h.file()?, 0)?;
            entry.attr = self.attr_of(&h.inode)?;
        }
        if writable {
            self.prepare_write(&h.inode, h.file()?).map_err(undo)?;
        }
        let fh = self.handles.add_file(h);
        self.stats
            .open_files
            .store(self.handles.open_files() as u64, Ordering::Relaxed);
        Ok((entry, fh))
    }

    pub(super) fn do_link(
        &self,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &CStr,
    ) -> Result<Entry, Errno> {
        let inode = self.inode(ino)?;
        let parent = self.inode(newparent)?;
        if inode.is_dir() {
            return Err(Errno::EPERM);
        }
        let b = self.new_name(&parent, newname)?;
        sys::link_fd(inode.fd(), parent.fd(), &b.entry)?;
        self.lookup_backing(&parent, &b.entry)
    }

    pub(super) fn do_unlink(&self, parent: INodeNo, name: &CStr, dir: bool) -> Result<(), Errno> {
        let parent = self.inode(parent)?;
        let b = self.backing(&parent, name, Errno::ENOENT, false)?;
        if dir && self.layout.v2().is_some() {
            return self.rmdir_v2(&parent, &b, false);
        }
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        sys::unlink_at(parent.fd(), &b.entry, flags)?;
        self.remove_sidecar(&parent, &b);
        Ok(())
    }

    /// rename(2) with `RENAME_NOREPLACE`, `RENAME_EXCHANGE` or
    /// `RENAME_WHITEOUT`. A whiteout (a character device 0:0, what
    /// overlayfs's upper directories hold for deleted lower files) is left
    /// in the source's place by the backing `renameat2` itself, so the
    /// source name is never missing; it is stored under the source's
    /// backing name, which (and a long name's sidecar) it keeps. A
    /// whiteout needs `CAP_MKNOD`, which the kernel does not check before
    /// asking us (6.18 passed an euid 4321 caller through) and FUSE does
    /// not report: as for set-id clearing, root is taken to have it and
    /// every other uid not, so only root makes whiteouts (overlayfs does
    /// its renames with the mounter's credentials).
    pub(super) fn do_rename(
        &self,
        parent: INodeNo,
        name: &CStr,
        newparent: INodeNo,
        newname: &CStr,
        flags: RenameFlags,
        who: Caller,
    ) -> Result<(), Errno> {
        let from = self.inode(parent)?;
        let to = self.inode(newparent)?;
        let allowed = RenameFlags::RENAME_NOREPLACE
            | RenameFlags::RENAME_EXCHANGE
            | RenameFlags::RENAME_WHITEOUT;
        let whiteout = flags.contains(RenameFlags::RENAME_WHITEOUT);
        if !allowed.contains(flags) || (whiteout && flags.contains(RenameFlags::RENAME_EXCHANGE)) {
            return Err(Errno::EINVAL);
        }
        if whiteout && who.uid != 0 {
            return Err(Errno::EPERM);
        }
        let old = self.backing(&from, name, Errno::EPERM, false)?;
        let new = self.backing(&to, newname, Errno::EPERM, true)?;
        if self.layout.v2().is_some() {
            self.rename_v2(&from, &old, &to, &new, flags)?;
        } else {
            sys::rename_at2(from.fd(), &old.entry, to.fd(), &new.entry, flags.bits())?;
        }
        if whiteout {
            self.adopt_whiteout(&from, &old.entry, who);
        }
        Ok(())
    }

    /// Gives the whiteout a rename left at `entry` to the caller, whose
    /// the kernel makes it (the backing file system made it ours). The
    /// rename is done by then, so a failure here is logged, not returned:
    /// an error would tell the kernel the rename did not happen.
    fn adopt_whiteout(&self, parent: &Inode, entry: &CStr, who: Caller) {
        let adopted = sys::open_path_at(parent.fd(), entry)
            .and_then(|fd| self.adopt(fd.as_fd(), parent, who));
        if let Err(e) = adopted {
            tracing::warn!(
                "{}: the whiteout of a rename stays owned by the mount: {e:?}",
                self.display_path(parent)
            );
        }
    }

    pub(super) fn do_readlink(&self, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        let inode = self.inode(ino)?;
        if !inode.is_symlink() {
            return Err(Errno::EINVAL);
        }
        let stored = sys::readlink_fd(inode.fd())?;
        self.plain_target(&inode, &stored)
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
