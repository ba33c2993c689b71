//! Format 2's directory protocols (docs/FORMAT.md "Crash safety"): mkdir
//! builds a directory with its id under a temporary name and renames it
//! into place; rmdir renames it away before emptying it; rename over an
//! empty directory exchanges, then removes. Symlink targets are sealed
//! here too.

use super::entries::{Caller, Entry};
use super::inode::Inode;
use super::names::ID_FILE;
use super::names::{Backing, rmdir_leftovers};
use super::sys;
use super::{KmsFs, Layout};
use crate::format::dirid::{DIRID_FILE_MODE, encode_dirid, temp_name};
use crate::format::{DirId, LinkId, TargetError};
use fuser::{Errno, RenameFlags};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

fn temp() -> Result<CString, Errno> {
    let t = temp_name().map_err(|_| Errno::EIO)?;
    CString::new(t).map_err(|_| Errno::EIO)
}

/// Opens the directory `name` of `dir` for reading (a real descriptor:
/// `fsync`, `fchmod` and listing need one), not following symlinks.
fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<File, Errno> {
    sys::open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// Removes what an emptied backing directory still holds: its id file and
/// the leftovers [`rmdir_leftovers`] allows (temporary names, orphan
/// sidecars); a temporary directory is emptied the same way.
fn remove_leftovers(d: BorrowedFd<'_>, leftovers: &[CString]) -> Result<(), Errno> {
    for l in leftovers {
        match sys::unlink_at(d, l, 0) {
            Ok(()) => {}
            Err(e) if e == Errno::EISDIR || e == Errno::EPERM => {
                let sub = open_dir_at(d, l)?;
                let _ = sys::unlink_at(sub.as_fd(), ID_FILE, 0);
                sys::unlink_at(d, l, libc::AT_REMOVEDIR)?;
            }
            Err(e) if e == Errno::ENOENT => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl KmsFs {
    /// mkdir, format 2: steps 1–6 of docs/FORMAT.md "mkdir".
    pub(super) fn mkdir_v2(
        &self,
        parent: &Inode,
        name: &Backing,
        mode: u32,
        who: Caller,
    ) -> Result<Entry, Errno> {
        let t = temp()?;
        // `mode` with the owner's rwx, which the id file needs: a default
        // ACL of the parent is inherited masked by the mode, as for any
        // mkdir on the backing file system.
        sys::mkdir_at(parent.fd(), &t, mode | 0o700)?;
        let id = DirId::random().map_err(|_| Errno::EIO)?;
        let undo = |e: Errno| {
            if let Ok(d) = open_dir_at(parent.fd(), &t) {
                let _ = sys::unlink_at(d.as_fd(), ID_FILE, 0);
            }
            let _ = sys::unlink_at(parent.fd(), &t, libc::AT_REMOVEDIR);
            e
        };
        let built = (|| {
            let d = open_dir_at(parent.fd(), &t)?;
            let mut f = sys::open_at(
                d.as_fd(),
                ID_FILE,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                DIRID_FILE_MODE,
            )?;
            f.write_all(&encode_dirid(&id)).map_err(Errno::from)?;
            sys::fsync(&f, false)?;
            sys::fsync(&d, false)?;
            self.adopt(d.as_fd(), parent, who)?;
            // Now the owner's bits `mode` asks for; the rest stays as made:
            // the group bits are an inherited ACL's mask, and a
            // set-group-id parent made the directory set-group-id (the
            // kernel did so at mkdirat); chmod must drop neither.
            let st = sys::fstat(d.as_fd())?;
            let owner = st.st_mode & mode & 0o700;
            sys::fchmod(d.as_fd(), (st.st_mode & 0o7777 & !0o700) | owner)?;
            Ok::<_, Errno>(d)
        })();
        let d = built.map_err(undo)?;
        sys::rename_at2(
            parent.fd(),
            &t,
            parent.fd(),
            &name.entry,
            libc::RENAME_NOREPLACE as libc::c_uint,
        )
        .map_err(undo)?;
        let (inode, entry) = self.remember(OwnedFd::from(d))?;
        let _ = inode.dir_id.set(id);
        Ok(entry)
    }

    /// rmdir, format 2: docs/FORMAT.md "rmdir". With `whiteout` the name
    /// is left to a whiteout (the step that takes the directory out of
    /// sight leaves one, atomically), for a rename over a directory with
    /// `RENAME_WHITEOUT`.
    pub(super) fn rmdir_v2(
        &self,
        parent: &Inode,
        name: &Backing,
        whiteout: bool,
    ) -> Result<(), Errno> {
        let Some(v2) = self.layout.v2() else {
            return Err(Errno::EIO);
        };
        let d = open_dir_at(parent.fd(), &name.entry)?;
        let leftovers = rmdir_leftovers(v2, &sys::list_dir(d.as_fd())?)?;
        remove_leftovers(d.as_fd(), &leftovers)?;
        let t = temp()?;
        let mut away = libc::RENAME_NOREPLACE;
        if whiteout {
            away |= libc::RENAME_WHITEOUT;
        }
        sys::rename_at2(parent.fd(), &name.entry, parent.fd(), &t, away)?;
        // Puts the directory back under its name after a failure below
        // (over the whiteout, if one was left: swapped, then removed).
        let put_back = || {
            if whiteout {
                let swapped = sys::rename_at2(
                    parent.fd(),
                    &t,
                    parent.fd(),
                    &name.entry,
                    libc::RENAME_EXCHANGE,
                );
                if swapped.is_ok() {
                    let _ = sys::unlink_at(parent.fd(), &t, 0);
                }
            } else {
                let _ = sys::rename_at2(parent.fd(), &t, parent.fd(), &name.entry, 0);
            }
        };
        // Out of sight now: empty it (an owner without write permission on
        // its own empty directory may still remove it, as POSIX says).
        let st = sys::fstat(d.as_fd())?;
        if st.st_mode & 0o200 == 0 {
            let _ = sys::fchmod(d.as_fd(), (st.st_mode & 0o7777) | 0o700);
        }
        match sys::unlink_at(d.as_fd(), ID_FILE, 0) {
            Ok(()) => {}
            Err(e) if e == Errno::ENOENT => {}
            Err(e) => {
                put_back();
                return Err(e);
            }
        }
        if let Err(e) = sys::unlink_at(parent.fd(), &t, libc::AT_REMOVEDIR) {
            // Something appeared inside meanwhile: put the directory back
            // (it keeps no id; the mount gives it a new one when needed).
            put_back();
            return Err(e);
        }
        if !whiteout {
            self.remove_sidecar(parent, name);
        }
        Ok(())
    }

    /// rename, format 2: one backing rename; a long new name's sidecar is
    /// written before and the old one removed after (kept when a whiteout
    /// takes the old name); a directory over an empty directory is
    /// exchanged, then the old one removed.
    pub(super) fn rename_v2(
        &self,
        from: &Inode,
        old: &Backing,
        to: &Inode,
        new: &Backing,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        let same = from.key == to.key && old.entry == new.entry;
        let whiteout = flags.contains(RenameFlags::RENAME_WHITEOUT);
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            return sys::rename_at2(from.fd(), &old.entry, to.fd(), &new.entry, flags.bits());
        }
        self.write_sidecar(to, new)?;
        match sys::rename_at2(from.fd(), &old.entry, to.fd(), &new.entry, flags.bits()) {
            Ok(()) => {}
            // The target is an empty directory (its backing directory
            // holds its id file, so the kernel says not empty).
            Err(e)
                if (e == Errno::ENOTEMPTY || e == Errno::EEXIST)
                    && !flags.contains(RenameFlags::RENAME_NOREPLACE) =>
            {
                self.rename_over_dir(from, old, to, new, e, whiteout)?;
            }
            Err(e) => return Err(e),
        }
        if !same && !whiteout {
            self.remove_sidecar(from, old);
        }
        Ok(())
    }

    /// Replaces the empty directory `new` by the directory `old`: exchange
    /// (atomic: the target name always names a directory), then remove the
    /// old target, now under the source's name (leaving a whiteout there
    /// with `whiteout`). `e` is the error to give when the target is not
    /// an empty directory or the source is not one.
    fn rename_over_dir(
        &self,
        from: &Inode,
        old: &Backing,
        to: &Inode,
        new: &Backing,
        e: Errno,
        whiteout: bool,
    ) -> Result<(), Errno> {
        let Some(v2) = self.layout.v2() else {
            return Err(e);
        };
        let src = sys::fstat(sys::open_path_at(from.fd(), &old.entry)?.as_fd())?;
        if src.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(Errno::EISDIR);
        }
        let target = open_dir_at(to.fd(), &new.entry)?;
        rmdir_leftovers(v2, &sys::list_dir(target.as_fd())?)?;
        drop(target);
        sys::rename_at2(
            from.fd(),
            &old.entry,
            to.fd(),
            &new.entry,
            libc::RENAME_EXCHANGE as libc::c_uint,
        )?;
        // The old target is now `old` in `from`; it keeps the source's
        // sidecar (if any) until rename_v2 removes it.
        let gone = Backing {
            entry: old.entry.clone(),
            sidecar: None,
        };
        self.rmdir_v2(from, &gone, whiteout)
    }

    /// The backing target of a new symlink to `target`.
    pub(super) fn stored_target(&self, target: &CStr) -> Result<CString, Errno> {
        let Layout::V2(v2) = &self.layout else {
            return Ok(target.to_owned());
        };
        let id = LinkId::random().map_err(|_| Errno::EIO)?;
        let stored = v2
            .symlinks
            .encrypt_target(&id, target.to_bytes())
            .map_err(|e| match e {
                TargetError::TooLong { .. } => Errno::ENAMETOOLONG,
                _ => Errno::EINVAL,
            })?;
        CString::new(stored).map_err(|_| Errno::EIO)
    }

    /// The plaintext target of symlink `inode` whose backing target is
    /// `stored`; a target that fails authentication is `EIO` and a log line.
    pub(super) fn plain_target(&self, inode: &Inode, stored: &[u8]) -> Result<Vec<u8>, Errno> {
        let Layout::V2(v2) = &self.layout else {
            return Ok(stored.to_vec());
        };
        match v2.symlinks.decrypt_target(stored) {
            Ok((_, target)) => Ok(target),
            Err(e) => {
                self.stats.count_damaged_read();
                tracing::error!(
                    "{}: symlink target failed authentication ({e}); returning EIO",
                    self.display_path(inode)
                );
                Err(Errno::EIO)
            }
        }
    }

    /// The link id of a format 2 symlink (its xattrs' binding).
    pub(super) fn link_id(&self, inode: &Inode) -> Result<LinkId, Errno> {
        let Layout::V2(v2) = &self.layout else {
            return Err(Errno::EOPNOTSUPP);
        };
        let stored = sys::readlink_fd(inode.fd())?;
        v2.symlinks
            .decrypt_target(&stored)
            .map(|(id, _)| id)
            .map_err(|_| Errno::EIO)
    }
}
