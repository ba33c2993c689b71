//! Thin wrappers over the `*at` system calls the filesystem uses on the
//! backing directory. Every inode is held as an `O_PATH` descriptor (as in
//! libfuse's passthrough_ll), so operations never resolve a whole path and
//! keep working across renames and for unlinked-but-open files.
//!
//! Each wrapper returns `Result<_, Errno>` with the errno of the failed call.

use fuser::Errno;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// The errno of the last failed call.
pub fn last_errno() -> Errno {
    Errno::from(io::Error::last_os_error())
}

/// `Err(errno)` for a `-1` return.
fn cvt(ret: libc::c_int) -> Result<libc::c_int, Errno> {
    if ret == -1 {
        Err(last_errno())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> Result<usize, Errno> {
    usize::try_from(ret).map_err(|_| last_errno())
}

/// A name from the kernel as a C string; a name with a NUL byte is invalid.
pub fn cname(name: &OsStr) -> Result<CString, Errno> {
    CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)
}

/// `/proc/self/fd/N`: reopens or addresses the file an `O_PATH` fd holds.
pub fn proc_path(fd: BorrowedFd<'_>) -> CString {
    // A decimal number never contains NUL.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

fn owned(fd: libc::c_int) -> Result<OwnedFd, Errno> {
    let fd = cvt(fd)?;
    // SAFETY: `fd` was just returned by a successful open call and is owned
    // by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `path` (absolute) as an `O_PATH` directory handle: the backing root.
pub fn open_root(path: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: `path` is a valid NUL-terminated string.
    owned(unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })
}

/// `O_PATH` handle of `name` in `dir`, not following a final symlink.
pub fn open_path_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: valid fd and NUL-terminated name.
    owned(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })
}

/// Opens `name` in `dir` for I/O (used by `create`).
pub fn open_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> Result<File, Errno> {
    // SAFETY: valid fd and NUL-terminated name.
    let fd = owned(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            libc::c_uint::from(mode),
        )
    })?;
    Ok(File::from(fd))
}

/// Opens the file an `O_PATH` fd holds for I/O, through `/proc/self/fd`.
pub fn reopen(fd: BorrowedFd<'_>, flags: libc::c_int) -> Result<File, Errno> {
    let path = proc_path(fd);
    // SAFETY: NUL-terminated path.
    let fd = owned(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    Ok(File::from(fd))
}

/// Opens a directory for listing.
pub fn open_dir(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // SAFETY: valid fd, static NUL-terminated name.
    owned(unsafe {
        libc::openat(
            fd.as_raw_fd(),
            c".".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })
}

/// `stat` of the file an fd (of any kind, including `O_PATH`) holds.
pub fn fstat(fd: BorrowedFd<'_>) -> Result<libc::stat, Errno> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, `st` is writable.
    cvt(unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            st.as_mut_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

pub fn mkdir_at(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: valid fd and name.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

pub fn mknod_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: libc::mode_t,
    rdev: libc::dev_t,
) -> Result<(), Errno> {
    // SAFETY: valid fd and name.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, rdev) }).map(drop)
}

pub fn symlink_at(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    // SAFETY: valid strings and fd.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

pub fn unlink_at(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: valid fd and name.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

pub fn rename_at2(
    olddir: BorrowedFd<'_>,
    oldname: &CStr,
    newdir: BorrowedFd<'_>,
    newname: &CStr,
    flags: libc::c_uint,
) -> Result<(), Errno> {
    // SAFETY: valid fds and names.
    cvt(unsafe {
        libc::renameat2(
            olddir.as_raw_fd(),
            oldname.as_ptr(),
            newdir.as_raw_fd(),
            newname.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

/// A new hard link `newdir/newname` to the file `fd` holds.
pub fn link_fd(fd: BorrowedFd<'_>, newdir: BorrowedFd<'_>, newname: &CStr) -> Result<(), Errno> {
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc path works without.
    // SAFETY: valid fds and names.
    let r = unsafe {
        libc::linkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            newdir.as_raw_fd(),
            newname.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = last_errno();
    if e != Errno::ENOENT && e != Errno::EPERM {
        return Err(e);
    }
    let path = proc_path(fd);
    // SAFETY: valid path, fd and name.
    cvt(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            path.as_ptr(),
            newdir.as_raw_fd(),
            newname.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

/// The target of the symlink `fd` holds.
pub fn readlink_fd(fd: BorrowedFd<'_>) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: valid fd, empty path, `buf` writable for its length.
    let n = cvt_size(unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })?;
    buf.truncate(n);
    Ok(buf)
}

/// Changes owner and/or group (`None` leaves it) without following symlinks.
pub fn chown_fd(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
    let uid = uid.unwrap_or(u32::MAX);
    let gid = gid.unwrap_or(u32::MAX);
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH.
    cvt(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// chmod of a non-symlink held by an `O_PATH` fd.
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: libc::mode_t) -> Result<(), Errno> {
    let path = proc_path(fd);
    // SAFETY: NUL-terminated path.
    cvt(unsafe { libc::chmod(path.as_ptr(), mode) }).map(drop)
}

/// Sets access and modification times (`UTIME_OMIT`/`UTIME_NOW` allowed).
pub fn utimens_fd(
    fd: BorrowedFd<'_>,
    is_symlink: bool,
    times: &[libc::timespec; 2],
) -> Result<(), Errno> {
    if is_symlink {
        // SAFETY: valid fd, empty path, `times` points at two timespecs.
        return cvt(unsafe {
            libc::utimensat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                times.as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            )
        })
        .map(drop);
    }
    let path = proc_path(fd);
    // SAFETY: NUL-terminated path, `times` points at two timespecs.
    cvt(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) }).map(drop)
}

/// `access(2)` of the file an fd holds, with our own credentials.
pub fn access_fd(fd: BorrowedFd<'_>, mask: libc::c_int) -> Result<(), Errno> {
    let path = proc_path(fd);
    // SAFETY: NUL-terminated path.
    cvt(unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), mask, 0) }).map(drop)
}

pub fn fstatvfs(fd: BorrowedFd<'_>) -> Result<libc::statvfs, Errno> {
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    let path = proc_path(fd);
    // SAFETY: NUL-terminated path, `st` writable.
    cvt(unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: statvfs succeeded.
    Ok(unsafe { st.assume_init() })
}

pub fn ftruncate(file: &File, len: u64) -> Result<(), Errno> {
    let len = libc::off_t::try_from(len).map_err(|_| Errno::EFBIG)?;
    // SAFETY: valid fd.
    cvt(unsafe { libc::ftruncate(file.as_raw_fd(), len) }).map(drop)
}

/// The first hole at or after `off` (`SEEK_HOLE`: the end of the file
/// counts as one; `ENXIO` past the end).
pub fn seek_hole(file: &File, off: u64) -> Result<u64, Errno> {
    let off = libc::off_t::try_from(off).map_err(|_| Errno::EFBIG)?;
    // SAFETY: valid fd.
    let r = unsafe { libc::lseek(file.as_raw_fd(), off, libc::SEEK_HOLE) };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(r as u64)
}

/// The first data byte at or after `off` (`SEEK_DATA`; `ENXIO` when only
/// holes follow).
pub fn seek_data(file: &File, off: u64) -> Result<u64, Errno> {
    let off = libc::off_t::try_from(off).map_err(|_| Errno::EFBIG)?;
    // SAFETY: valid fd.
    let r = unsafe { libc::lseek(file.as_raw_fd(), off, libc::SEEK_DATA) };
    if r < 0 {
        return Err(last_errno());
    }
    Ok(r as u64)
}

/// Allocates `off..off + len` without changing the file size
/// (`fallocate(FALLOC_FL_KEEP_SIZE)`).
pub fn allocate_keep_size(file: &File, off: u64, len: u64) -> Result<(), Errno> {
    let off = libc::off_t::try_from(off).map_err(|_| Errno::EFBIG)?;
    let len = libc::off_t::try_from(len).map_err(|_| Errno::EFBIG)?;
    // SAFETY: valid fd.
    cvt(unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, off, len) }).map(drop)
}

/// Deallocates `off..off + len`, which then reads as zeros
/// (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`).
pub fn punch_hole(file: &File, off: u64, len: u64) -> Result<(), Errno> {
    let off = libc::off_t::try_from(off).map_err(|_| Errno::EFBIG)?;
    let len = libc::off_t::try_from(len).map_err(|_| Errno::EFBIG)?;
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: valid fd.
    cvt(unsafe { libc::fallocate(file.as_raw_fd(), mode, off, len) }).map(drop)
}

pub fn fsync(file: &File, datasync: bool) -> Result<(), Errno> {
    let fd = file.as_raw_fd();
    // SAFETY: valid fd.
    cvt(unsafe {
        if datasync {
            libc::fdatasync(fd)
        } else {
            libc::fsync(fd)
        }
    })
    .map(drop)
}

pub fn fsync_raw(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: the caller passes an fd it owns.
    cvt(unsafe { libc::fsync(fd) }).map(drop)
}

/// Reads exactly `buf.len()` bytes at `off`; a short file is `EIO` (the
/// caller computed the length from the file's size under its lock).
pub fn pread_exact(file: &File, buf: &mut [u8], off: u64) -> Result<(), Errno> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, off).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Errno::EIO
        } else {
            Errno::from(e)
        }
    })
}

pub fn pwrite_all(file: &File, buf: &[u8], off: u64) -> Result<(), Errno> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(buf, off).map_err(Errno::from)
}

/// What an xattr call goes to.
#[derive(Clone, Copy)]
pub enum XattrTarget<'a> {
    /// An open (not `O_PATH`) descriptor: the `f*xattr` calls.
    Open(BorrowedFd<'a>),
    /// An `O_PATH` descriptor: through its `/proc/self/fd` path. For a
    /// symlink's `O_PATH|O_NOFOLLOW` descriptor that is the link itself
    /// (the magic link is followed once, to the symlink inode, whose target
    /// is not): Linux stores `trusted.*` there and refuses `user.*`
    /// (`EPERM`).
    Path(BorrowedFd<'a>),
    /// A symlink of a volume that stores no xattrs on symlinks (format 1):
    /// `EPERM`, none listed.
    Symlink,
}

/// Retries a size query + fetch pair while the value grows in between.
fn sized_fetch(
    mut call: impl FnMut(*mut libc::c_void, usize) -> libc::ssize_t,
) -> Result<Vec<u8>, Errno> {
    loop {
        let size = cvt_size(call(std::ptr::null_mut(), 0))?;
        let mut buf = vec![0u8; size];
        match cvt_size(call(buf.as_mut_ptr().cast(), buf.len())) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e == Errno::ERANGE => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The value of xattr `name`; `ENODATA` when absent.
pub fn getxattr(t: XattrTarget<'_>, name: &CStr) -> Result<Vec<u8>, Errno> {
    match t {
        XattrTarget::Symlink => Err(Errno::ENODATA),
        // SAFETY (both): valid fd/path and name; `buf` is null with size 0
        // or writable for `size` bytes.
        XattrTarget::Open(fd) => sized_fetch(|buf, size| unsafe {
            libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf, size)
        }),
        XattrTarget::Path(fd) => {
            let path = proc_path(fd);
            sized_fetch(|buf, size| unsafe {
                libc::getxattr(path.as_ptr(), name.as_ptr(), buf, size)
            })
        }
    }
}

/// The length of xattr `name`'s value, without fetching it; `ENODATA`
/// when absent.
pub fn xattr_len(t: XattrTarget<'_>, name: &CStr) -> Result<usize, Errno> {
    let null = std::ptr::null_mut();
    // SAFETY (both): valid fd/path and name; a null buffer of size 0.
    cvt_size(match t {
        XattrTarget::Symlink => return Err(Errno::ENODATA),
        XattrTarget::Open(fd) => unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), null, 0) },
        XattrTarget::Path(fd) => {
            let path = proc_path(fd);
            unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), null, 0) }
        }
    })
}

pub fn setxattr(
    t: XattrTarget<'_>,
    name: &CStr,
    value: &[u8],
    flags: libc::c_int,
) -> Result<(), Errno> {
    let (ptr, len) = (value.as_ptr().cast(), value.len());
    // SAFETY (both): valid fd/path and name, `value` readable for `len`.
    cvt(match t {
        XattrTarget::Symlink => return Err(Errno::EPERM),
        XattrTarget::Open(fd) => unsafe {
            libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), ptr, len, flags)
        },
        XattrTarget::Path(fd) => {
            let path = proc_path(fd);
            unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), ptr, len, flags) }
        }
    })
    .map(drop)
}

/// The NUL-separated list of xattr names.
pub fn listxattr(t: XattrTarget<'_>) -> Result<Vec<u8>, Errno> {
    match t {
        XattrTarget::Symlink => Ok(Vec::new()),
        // SAFETY (both): valid fd/path; buffer null with size 0 or
        // writable for `size` bytes.
        XattrTarget::Open(fd) => {
            sized_fetch(|buf, size| unsafe { libc::flistxattr(fd.as_raw_fd(), buf.cast(), size) })
        }
        XattrTarget::Path(fd) => {
            let path = proc_path(fd);
            sized_fetch(|buf, size| unsafe { libc::listxattr(path.as_ptr(), buf.cast(), size) })
        }
    }
}

pub fn removexattr(t: XattrTarget<'_>, name: &CStr) -> Result<(), Errno> {
    // SAFETY (both): valid fd/path and name.
    cvt(match t {
        XattrTarget::Symlink => return Err(Errno::EPERM),
        XattrTarget::Open(fd) => unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) },
        XattrTarget::Path(fd) => {
            let path = proc_path(fd);
            unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) }
        }
    })
    .map(drop)
}

/// `fchmod` of an open (not `O_PATH`) descriptor.
pub fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: valid fd.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }).map(drop)
}

/// `futimens` of an open (not `O_PATH`) descriptor.
pub fn futimens(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> Result<(), Errno> {
    // SAFETY: valid fd, `times` points at two timespecs.
    cvt(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) }).map(drop)
}

/// One directory entry as listed from the backing directory.
#[derive(Clone, Debug)]
pub struct RawDirEntry {
    pub name: CString,
    pub ino: u64,
    /// `DT_*` type from the directory; `DT_UNKNOWN` when the fs gave none.
    pub d_type: u8,
}

/// All entries of the directory `fd` holds, `.` and `..` included.
pub fn list_dir(fd: BorrowedFd<'_>) -> Result<Vec<RawDirEntry>, Errno> {
    let dirfd = open_dir(fd)?;
    let raw = dirfd.as_raw_fd();
    // SAFETY: fdopendir takes ownership of a valid directory fd; on success
    // it is closed by closedir below.
    let dir = unsafe { libc::fdopendir(raw) };
    if dir.is_null() {
        return Err(last_errno());
    }
    std::mem::forget(dirfd);
    let mut out = Vec::new();
    let result = loop {
        // readdir reports errors through errno only.
        // SAFETY: errno location is thread-local and always valid.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dir` is a valid open DIR stream.
        let ent = unsafe { libc::readdir64(dir) };
        if ent.is_null() {
            // SAFETY: as above.
            let err = unsafe { *libc::__errno_location() };
            break if err == 0 {
                Ok(())
            } else {
                Err(Errno::from_i32(err))
            };
        }
        // SAFETY: readdir returned a valid entry whose d_name is
        // NUL-terminated and lives until the next readdir call.
        let (name, ino, d_type) = unsafe {
            let e = &*ent;
            (
                CStr::from_ptr(e.d_name.as_ptr()).to_owned(),
                e.d_ino,
                e.d_type,
            )
        };
        out.push(RawDirEntry { name, ino, d_type });
    };
    // SAFETY: `dir` is valid and closed exactly once.
    unsafe { libc::closedir(dir) };
    result.map(|()| out)
}

/// `umount2(path)`, detaching lazily when `lazy`.
pub fn umount(path: &std::path::Path, lazy: bool) -> Result<(), Errno> {
    let p = cname(path.as_os_str())?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: NUL-terminated path.
    cvt(unsafe { libc::umount2(p.as_ptr(), flags) }).map(drop)
}

/// Raises the soft open-file limit to the hard limit: every inode the
/// kernel remembers holds one `O_PATH` descriptor.
pub fn raise_nofile_limit() {
    let mut lim = MaybeUninit::<libc::rlimit>::uninit();
    // SAFETY: `lim` is writable.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, lim.as_mut_ptr()) } != 0 {
        return;
    }
    // SAFETY: getrlimit succeeded.
    let mut lim = unsafe { lim.assume_init() };
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: valid pointer; failure only leaves the old limit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

/// Sets the process umask to 0, so the backing files get exactly the
/// modes we ask for: the caller's umask is applied (or, under a default
/// ACL, not) in `entries::KmsFs::create_mode`.
pub fn clear_umask() {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(0) };
}

/// Room for the largest handle a file system gives (`MAX_HANDLE_SZ`).
const MAX_HANDLE_SZ: usize = 128;

/// `struct file_handle` with room for its bytes.
#[repr(C)]
struct RawHandle {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    f_handle: [u8; MAX_HANDLE_SZ],
}

/// The backing file system's handle of a file (name_to_handle_at(2)): it
/// opens the file again by identity, wherever it was renamed to, and goes
/// stale once the file is deleted (its inode number reused or not).
#[derive(Clone, PartialEq, Eq)]
pub struct BackingHandle {
    kind: libc::c_int,
    bytes: Box<[u8]>,
}

impl BackingHandle {
    /// A 32-bit digest (FNV-1a) of the handle: the FUSE generation, which
    /// tells a file apart from an earlier one with the same inode number
    /// (the handle holds the backing file system's own generation).
    pub fn generation(&self) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for b in self.kind.to_le_bytes().iter().chain(self.bytes.iter()) {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
        h
    }
}

/// The handle of the file `fd` refers to (an `O_PATH` descriptor will
/// do); `None` where the file system gives none.
pub fn backing_handle(fd: BorrowedFd<'_>) -> Option<BackingHandle> {
    let mut raw = RawHandle {
        handle_bytes: MAX_HANDLE_SZ as libc::c_uint,
        handle_type: 0,
        f_handle: [0; MAX_HANDLE_SZ],
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: valid fd, empty NUL-terminated path with AT_EMPTY_PATH, and
    // a handle buffer of the size `handle_bytes` says.
    let r = unsafe {
        libc::name_to_handle_at(
            fd.as_raw_fd(),
            c"".as_ptr(),
            (&mut raw as *mut RawHandle).cast(),
            &mut mount_id,
            libc::AT_EMPTY_PATH,
        )
    };
    let n = raw.handle_bytes as usize;
    if r != 0 || n > MAX_HANDLE_SZ {
        return None;
    }
    Some(BackingHandle {
        kind: raw.handle_type,
        bytes: raw.f_handle[..n].into(),
    })
}

/// An `O_PATH` descriptor of the file `h` names on the file system of
/// `mount` (open_by_handle_at(2); needs `CAP_DAC_READ_SEARCH`). `ESTALE`
/// once the file is gone.
pub fn open_by_handle(mount: BorrowedFd<'_>, h: &BackingHandle) -> Result<OwnedFd, Errno> {
    let mut raw = RawHandle {
        handle_bytes: h.bytes.len() as libc::c_uint,
        handle_type: h.kind,
        f_handle: [0; MAX_HANDLE_SZ],
    };
    raw.f_handle[..h.bytes.len()].copy_from_slice(&h.bytes);
    // SAFETY: valid fd and a handle of `handle_bytes` bytes.
    owned(unsafe {
        libc::open_by_handle_at(
            mount.as_raw_fd(),
            (&mut raw as *mut RawHandle).cast(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })
}

/// A second descriptor of the same open file.
pub fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    // SAFETY: valid fd.
    owned(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn root(dir: &std::path::Path) -> OwnedFd {
        let p = CString::new(dir.as_os_str().as_bytes()).unwrap();
        open_root(&p).unwrap()
    }

    #[test]
    fn path_handles_survive_rename_and_unlink() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a"), b"hello").unwrap();
        let r = root(tmp.path());
        let fd = open_path_at(r.as_fd(), c"a").unwrap();
        rename_at2(r.as_fd(), c"a", r.as_fd(), c"b", 0).unwrap();
        assert_eq!(fstat(fd.as_fd()).unwrap().st_size, 5);
        let f = reopen(fd.as_fd(), libc::O_RDONLY).unwrap();
        unlink_at(r.as_fd(), c"b", 0).unwrap();
        let mut buf = [0u8; 5];
        pread_exact(&f, &mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello");
        assert_eq!(fstat(fd.as_fd()).unwrap().st_nlink, 0);
    }

    #[test]
    fn rename_flags_are_passed_through() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a"), b"A").unwrap();
        std::fs::write(tmp.path().join("b"), b"B").unwrap();
        let r = root(tmp.path());
        let e = rename_at2(r.as_fd(), c"a", r.as_fd(), c"b", libc::RENAME_NOREPLACE);
        assert_eq!(e, Err(Errno::EEXIST));
        rename_at2(r.as_fd(), c"a", r.as_fd(), c"b", libc::RENAME_EXCHANGE).unwrap();
        assert_eq!(std::fs::read(tmp.path().join("a")).unwrap(), b"B");
        assert_eq!(std::fs::read(tmp.path().join("b")).unwrap(), b"A");
    }

    #[test]
    fn links_symlinks_and_listing() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        let r = root(tmp.path());
        let f = open_path_at(r.as_fd(), c"f").unwrap();
        link_fd(f.as_fd(), r.as_fd(), c"g").unwrap();
        assert_eq!(fstat(f.as_fd()).unwrap().st_nlink, 2);
        symlink_at(c"f", r.as_fd(), c"s").unwrap();
        let s = open_path_at(r.as_fd(), c"s").unwrap();
        assert_eq!(readlink_fd(s.as_fd()).unwrap(), b"f");
        assert_eq!(
            fstat(s.as_fd()).unwrap().st_mode & libc::S_IFMT,
            libc::S_IFLNK
        );
        let mut names: Vec<_> = list_dir(r.as_fd())
            .unwrap()
            .into_iter()
            .map(|e| e.name.into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".", "..", "f", "g", "s"]);
    }

    #[test]
    fn xattrs_round_trip_through_path_handles() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        let r = root(tmp.path());
        let f = open_path_at(r.as_fd(), c"f").unwrap();
        let p = XattrTarget::Path(f.as_fd());
        match setxattr(p, c"user.k", b"v", 0) {
            // Some test filesystems do not support user xattrs.
            Err(e) if e == Errno::EOPNOTSUPP => return,
            other => other.unwrap(),
        }
        assert_eq!(getxattr(p, c"user.k").unwrap(), b"v");
        assert_eq!(xattr_len(p, c"user.k"), Ok(1));
        assert_eq!(xattr_len(p, c"user.none"), Err(Errno::ENODATA));
        assert_eq!(listxattr(p).unwrap(), b"user.k\0");
        let io = reopen(f.as_fd(), libc::O_RDWR).unwrap();
        let o = XattrTarget::Open(io.as_fd());
        assert_eq!(getxattr(o, c"user.k").unwrap(), b"v");
        setxattr(o, c"user.big", &[7u8; 3000], 0).unwrap();
        assert_eq!(getxattr(p, c"user.big").unwrap(), vec![7u8; 3000]);
        removexattr(o, c"user.big").unwrap();
        removexattr(p, c"user.k").unwrap();
        assert_eq!(getxattr(o, c"user.k"), Err(Errno::ENODATA));
        assert_eq!(listxattr(o).unwrap(), b"");
        assert_eq!(
            setxattr(XattrTarget::Symlink, c"user.k", b"v", 0),
            Err(Errno::EPERM)
        );
    }

    #[test]
    fn times_and_modes_through_path_handles() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        let r = root(tmp.path());
        let f = open_path_at(r.as_fd(), c"f").unwrap();
        chmod_fd(f.as_fd(), 0o640).unwrap();
        let t = libc::timespec {
            tv_sec: 1_000_000,
            tv_nsec: 5,
        };
        let omit = libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        };
        utimens_fd(f.as_fd(), false, &[omit, t]).unwrap();
        let st = fstat(f.as_fd()).unwrap();
        assert_eq!(st.st_mode & 0o7777, 0o640);
        assert_eq!((st.st_mtime, st.st_mtime_nsec), (1_000_000, 5));
    }
}
