//! Operations on open files and attributes: open, read, write, truncate,
//! setattr, fsync, release, lseek.

use super::content::{Fault, FileIo};
use super::entries::backing_open_flags;
use super::handles::OpenFile;
use super::inode::Inode;
use super::{KmsFs, attr, sys};
use crate::format::offsets::{BLOCK_SIZE, block_index, block_offset_in_file, cipher_size};
use crate::format::seek::Whence;
use fuser::{Errno, FileAttr, FileHandle, INodeNo, TimeOrNow};
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What `setattr` changes.
#[derive(Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeOrNow>,
    pub mtime: Option<TimeOrNow>,
    pub fh: Option<FileHandle>,
    /// Clear set-user-id and set-group-id afterwards.
    pub kill_suidgid: bool,
}

/// Open flags a shared descriptor cannot honour: the handle gets its own.
fn needs_own_fd(flags: i32) -> bool {
    flags & (libc::O_SYNC | libc::O_DSYNC | libc::O_NOATIME) != 0
}

impl KmsFs {
    fn io<'a>(
        &'a self,
        inode: &'a Inode,
        file: &'a File,
        on_fault: &'a dyn Fn(&Fault),
    ) -> FileIo<'a> {
        FileIo {
            file,
            inode,
            keys: &*self.keys,
            on_fault,
            sizes: self.layout.sizes(),
        }
    }

    /// Truncates `inode` (open as `file`) to `size` under its write lock.
    pub(super) fn truncate_with(&self, inode: &Inode, file: &File, size: u64) -> Result<(), Errno> {
        let _w = inode.content.write().unwrap_or_else(|p| p.into_inner());
        let report = |f: &Fault| self.report(inode, f);
        self.io(inode, file, &report).truncate(size)
    }

    /// Sets the key of a file opened for writing aside now (see
    /// [`FileIo::prepare_write`]).
    pub(super) fn prepare_write(&self, inode: &Inode, file: &File) -> Result<(), Errno> {
        let _w = inode.content.write().unwrap_or_else(|p| p.into_inner());
        let report = |f: &Fault| self.report(inode, f);
        self.io(inode, file, &report).prepare_write()
    }

    /// The content cipher of regular file `inode`, from its header (or
    /// the inode's cache).
    pub(super) fn file_cipher(
        &self,
        inode: &Inode,
    ) -> Result<Arc<crate::format::FileCipher>, Errno> {
        if let Some(c) = inode.cached_cipher() {
            return Ok(c);
        }
        let io = inode.io()?;
        let _r = inode.content.read().unwrap_or_else(|p| p.into_inner());
        let report = |f: &Fault| self.report(inode, f);
        self.io(inode, &io.file, &report).cipher()
    }

    pub(super) fn do_open(&self, ino: INodeNo, flags: i32) -> Result<FileHandle, Errno> {
        let inode = self.inode(ino)?;
        if inode.is_dir() {
            return Err(Errno::EISDIR);
        }
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let regular = inode.kind == fuser::FileType::RegularFile;
        let own = if regular && !needs_own_fd(flags) && inode.io()?.writable | !writable {
            None
        } else {
            Some(sys::reopen(inode.fd(), backing_open_flags(flags))?)
        };
        let h = OpenFile {
            inode,
            own,
            writable,
        };
        let inode = &h.inode;
        if regular && flags & libc::O_TRUNC != 0 {
            self.truncate_with(inode, h.file()?, 0)?;
        }
        if regular && writable {
            self.prepare_write(inode, h.file()?)?;
        } else if regular && flags & libc::O_ACCMODE != libc::O_WRONLY {
            // Unwrap the key now, so a denied or unavailable key fails the
            // open (EACCES / EIO) rather than the first read. A damaged
            // size fails here too: the kernel would otherwise read a
            // header-only file as empty without asking us.
            let _r = inode.content.read().unwrap_or_else(|p| p.into_inner());
            let report = |f: &Fault| self.report(inode, f);
            let io = self.io(inode, h.file()?, &report);
            if io.size()? > 0 && inode.cached_cipher().is_none() {
                io.cipher()?;
            }
        }
        let fh = self.handles.add_file(h);
        self.count_open_files();
        Ok(fh)
    }

    fn count_open_files(&self) {
        self.stats
            .open_files
            .store(self.handles.open_files() as u64, Ordering::Relaxed);
    }

    /// Calls `f` with up to `size` plaintext bytes at `off`.
    pub(super) fn do_read<R>(
        &self,
        fh: FileHandle,
        off: u64,
        size: u32,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Errno> {
        let h = self.handles.file(fh)?;
        if h.inode.kind != fuser::FileType::RegularFile {
            return Err(Errno::EINVAL);
        }
        let _r = h.inode.content.read().unwrap_or_else(|p| p.into_inner());
        let report = |fault: &Fault| self.report(&h.inode, fault);
        self.io(&h.inode, h.file()?, &report)
            .read(off, size as usize, f)
    }

    pub(super) fn do_write(
        &self,
        fh: FileHandle,
        off: u64,
        data: &[u8],
        kill_suidgid: bool,
    ) -> Result<u32, Errno> {
        let h = self.handles.file(fh)?;
        if !h.writable {
            return Err(Errno::EBADF);
        }
        if h.inode.kind != fuser::FileType::RegularFile {
            return Err(Errno::EINVAL);
        }
        let len = u32::try_from(data.len()).map_err(|_| Errno::EINVAL)?;
        {
            let _w = h.inode.content.write().unwrap_or_else(|p| p.into_inner());
            let report = |fault: &Fault| self.report(&h.inode, fault);
            self.io(&h.inode, h.file()?, &report).write(off, data)?;
        }
        if kill_suidgid {
            self.kill_suidgid(&h.inode)?;
        }
        Ok(len)
    }

    /// Clears set-user-id and set-group-id (with group execute) after a
    /// change of content or size that clears them (see
    /// `filesystem::kills_setid`), and tells the kernel, which caches the
    /// mode and did not see this change.
    pub(super) fn kill_suidgid(&self, inode: &Inode) -> Result<(), Errno> {
        let st = sys::fstat(inode.fd())?;
        let mut mode = st.st_mode & 0o7777;
        let before = mode;
        mode &= !libc::S_ISUID;
        if mode & libc::S_IXGRP != 0 {
            mode &= !libc::S_ISGID;
        }
        if mode != before {
            // With an access ACL the group bits are its mask: unchanged.
            match inode.io_if_open() {
                Some(io) => sys::fchmod(io.file.as_fd(), mode)?,
                None => sys::chmod_fd(inode.fd(), mode)?,
            }
            self.attrs_changed(inode);
        }
        Ok(())
    }

    pub(super) fn do_release(&self, fh: FileHandle) {
        self.handles.remove_file(fh);
        self.count_open_files();
    }

    pub(super) fn do_fsync(&self, fh: FileHandle, datasync: bool) -> Result<(), Errno> {
        let h = self.handles.file(fh)?;
        sys::fsync(h.file()?, datasync)
    }

    pub(super) fn do_fsyncdir(&self, ino: INodeNo) -> Result<(), Errno> {
        let inode = self.inode(ino)?;
        let d = sys::open_dir(inode.fd())?;
        sys::fsync_raw(std::os::fd::AsRawFd::as_raw_fd(&d))
    }

    pub(super) fn do_getattr(&self, ino: INodeNo) -> Result<FileAttr, Errno> {
        let inode = self.inode(ino)?;
        self.attr_of(&inode)
    }

    pub(super) fn do_setattr(&self, ino: INodeNo, s: SetAttr) -> Result<FileAttr, Errno> {
        let inode = self.inode(ino)?;
        if let Some(mode) = s.mode {
            if inode.is_symlink() {
                return Err(Errno::EOPNOTSUPP);
            }
            match inode.io_if_open() {
                Some(io) => sys::fchmod(io.file.as_fd(), mode & 0o7777)?,
                None => sys::chmod_fd(inode.fd(), mode & 0o7777)?,
            }
        }
        if s.uid.is_some() || s.gid.is_some() {
            sys::chown_fd(inode.fd(), s.uid, s.gid)?;
        }
        if let Some(size) = s.size {
            self.set_size(&inode, s.fh, size)?;
            if s.kill_suidgid && s.mode.is_none() {
                self.kill_suidgid(&inode)?;
            }
        }
        if s.atime.is_some() || s.mtime.is_some() {
            let times = [attr::timespec(s.atime), attr::timespec(s.mtime)];
            match inode.io_if_open() {
                Some(io) => sys::futimens(io.file.as_fd(), &times)?,
                None => sys::utimens_fd(inode.fd(), inode.is_symlink(), &times)?,
            }
        }
        self.attr_of(&inode)
    }

    fn set_size(&self, inode: &Arc<Inode>, fh: Option<FileHandle>, size: u64) -> Result<(), Errno> {
        match inode.kind {
            fuser::FileType::RegularFile => {}
            fuser::FileType::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        let handle = fh
            .and_then(|fh| self.handles.file(fh).ok())
            .filter(|h| h.writable && Arc::ptr_eq(&h.inode, inode));
        if let Some(h) = handle {
            return self.truncate_with(inode, h.file()?, size);
        }
        let io = inode.io()?;
        if io.writable {
            self.truncate_with(inode, &io.file, size)
        } else {
            let file = sys::reopen(inode.fd(), libc::O_RDWR)?;
            self.truncate_with(inode, &file, size)
        }
    }

    /// `SEEK_DATA` / `SEEK_HOLE` (the kernel does the others): real holes
    /// at block granularity (docs/FORMAT.md "Seeking").
    pub(super) fn do_lseek(&self, fh: FileHandle, off: i64, whence: i32) -> Result<i64, Errno> {
        let whence = match whence {
            libc::SEEK_DATA => Whence::Data,
            libc::SEEK_HOLE => Whence::Hole,
            _ => return Err(Errno::EINVAL),
        };
        // A negative offset is before any data, as the kernel's own
        // lseek says for it.
        let off = u64::try_from(off).map_err(|_| Errno::ENXIO)?;
        let h = self.handles.file(fh)?;
        if h.inode.kind != fuser::FileType::RegularFile {
            return Err(Errno::EINVAL);
        }
        if self.opts.writeback_cache {
            // The kernel asks without writing its dirty pages back first,
            // and the size it knows may be past ours: a hole reported
            // where written data waits in its cache would lose that data
            // for a sparse copy. So it writes them back now, from `off` on
            // (nothing before counts). Without the flush (a one-thread
            // mount, where the notification would wait for writes only
            // this thread could serve) the whole file is data.
            let from = (off & !(BLOCK_SIZE as u64 - 1)) as i64;
            if !self.kernel.flush_pages(h.inode.id, from) {
                return self.all_data(&h.inode, h.file()?, whence, off);
            }
        }
        let _r = h.inode.content.read().unwrap_or_else(|p| p.into_inner());
        let report = |fault: &Fault| self.report(&h.inode, fault);
        let found = self.io(&h.inode, h.file()?, &report).seek(whence, off)?;
        i64::try_from(found).map_err(|_| Errno::EOVERFLOW)
    }

    /// The answer for a file that is all data: `off` itself, or its size.
    fn all_data(&self, inode: &Inode, file: &File, whence: Whence, off: u64) -> Result<i64, Errno> {
        let _r = inode.content.read().unwrap_or_else(|p| p.into_inner());
        let report = |fault: &Fault| self.report(inode, fault);
        let size = self.io(inode, file, &report).size()?;
        let found = match whence {
            _ if off >= size => return Err(Errno::ENXIO),
            Whence::Data => off,
            Whence::Hole => size,
        };
        i64::try_from(found).map_err(|_| Errno::EOVERFLOW)
    }

    /// Mode 0 makes sure the file is at least `off + len` long and the
    /// backing space for that range is allocated, so writes there do not
    /// fail for lack of space (posix_fallocate's promise); `KEEP_SIZE`
    /// allocates without growing; `PUNCH_HOLE | KEEP_SIZE` zeroes the
    /// range. Other modes are not supported. Set-id bits are cleared
    /// afterwards when `kill_suidgid`, whatever the mode (as Linux does).
    pub(super) fn do_fallocate(
        &self,
        fh: FileHandle,
        off: u64,
        len: u64,
        mode: i32,
        kill_suidgid: bool,
    ) -> Result<(), Errno> {
        const KEEP: i32 = libc::FALLOC_FL_KEEP_SIZE;
        const PUNCH: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        if mode != 0 && mode != KEEP && mode != PUNCH {
            return Err(Errno::EOPNOTSUPP);
        }
        let h = self.handles.file(fh)?;
        if !h.writable {
            return Err(Errno::EBADF);
        }
        let end = off.checked_add(len).ok_or(Errno::EFBIG)?;
        {
            let _w = h.inode.content.write().unwrap_or_else(|p| p.into_inner());
            let report = |fault: &Fault| self.report(&h.inode, fault);
            let io = self.io(&h.inode, h.file()?, &report);
            if mode == PUNCH {
                io.punch_hole(off, len)?;
            } else {
                allocate(&io, off, end, mode == 0)?;
            }
        }
        if kill_suidgid {
            self.kill_suidgid(&h.inode)?;
        }
        Ok(())
    }
}

/// Mode 0 (`grow`) or `KEEP_SIZE` allocation of `off..end` (see
/// [`KmsFs::do_fallocate`]).
fn allocate(io: &FileIo<'_>, off: u64, end: u64, grow: bool) -> Result<(), Errno> {
    let size = io.size()?;
    if grow && end > size {
        io.truncate(end)?;
    }
    // Past the end (KEEP_SIZE) the blocks' stored size is not known
    // yet: full blocks are the most they can take.
    let lo = block_offset_in_file(block_index(off));
    let hi = if grow || end <= size {
        cipher_size(end)
    } else {
        block_offset_in_file(end.div_ceil(BLOCK_SIZE as u64))
    };
    io.reserve(lo, hi)
}
