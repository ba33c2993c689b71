//! Names on the backing directory: a user's name → the backing entry it is
//! stored under (and, for a long encrypted name, its sidecar), and a
//! backing listing → the user's names (docs/FORMAT.md "Names", "Long
//! names: writing", "Directory ids").
//!
//! Format 1 stores names as they are; format 2 either encrypts them (SIV
//! bound to the parent's directory id) or stores them as they are with
//! kmsfs's own names reserved. Every operation on names asks
//! [`KmsFs::backing`] first, so no other module knows the difference.

use super::inode::Inode;
use super::layout::V2;
use super::sys::{self, RawDirEntry};
use super::{KmsFs, Layout};
use crate::format::dirid::{
    DIRID_FILE_MODE, DIRID_FILE_NAME, encode_dirid, parse_dirid, temp_name,
};
use crate::format::names::{
    BackingKind, NameError, SIDECAR_MAX, classify, is_reserved_plaintext, sidecar_name,
    validate_name,
};
use crate::format::{BackingName, CONFIG_FILE_NAME, DirId};
use fuser::{Errno, INodeNo};
use kmsd_client::logsafe::escape_bytes;
use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::BorrowedFd;

/// Where a user's name lives in the backing directory.
pub struct Backing {
    /// The backing entry (what lookup opens).
    pub entry: CString,
    /// A long name's sidecar: its backing name and content.
    pub sidecar: Option<(CString, String)>,
}

/// One listed entry: the user's name and, where it differs, the backing
/// name it was listed under.
#[derive(Clone, Debug)]
pub struct Listed {
    pub name: CString,
    pub backing: Option<CString>,
    pub ino: u64,
    pub d_type: u8,
}

impl Listed {
    /// The backing name of the entry.
    pub fn backing_name(&self) -> &CStr {
        self.backing.as_deref().unwrap_or(&self.name)
    }
}

/// `kmsfs.dirid` as a C string.
pub const ID_FILE: &CStr = c"kmsfs.dirid";

fn cstring(s: impl Into<Vec<u8>>) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

/// The errno of a plaintext name no file may have.
fn refusal(e: NameError) -> Errno {
    match e {
        NameError::TooLong { .. } => Errno::ENAMETOOLONG,
        _ => Errno::EINVAL,
    }
}

/// Reads a small file `name` of `dir` whole: at most `max` bytes (more is
/// `EIO`), no symlink followed.
pub fn read_small(dir: BorrowedFd<'_>, name: &CStr, max: usize) -> Result<Vec<u8>, Errno> {
    let f = sys::open_at(dir, name, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
    let mut buf = vec![0u8; max + 1];
    let mut n = 0;
    while n < buf.len() {
        match std::os::unix::fs::FileExt::read_at(&f, &mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Errno::from(e)),
        }
    }
    if n > max {
        return Err(Errno::EIO);
    }
    buf.truncate(n);
    Ok(buf)
}

/// Writes `content` to a fresh temporary file in `dir`, `fsync`s it and
/// renames it to `name` without replacing anything. An existing `name`
/// with the same content is kept (`Ok`); with other content it is `EEXIST`.
pub fn write_durable(
    dir: BorrowedFd<'_>,
    name: &CStr,
    content: &[u8],
    mode: u32,
) -> Result<(), Errno> {
    let tmp = cstring(temp_name().map_err(|_| Errno::EIO)?)?;
    let written = (|| {
        let mut f = sys::open_at(
            dir,
            &tmp,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            mode,
        )?;
        f.write_all(content).map_err(Errno::from)?;
        sys::fsync(&f, false)
    })();
    let placed = written.and_then(|()| {
        sys::rename_at2(dir, &tmp, dir, name, libc::RENAME_NOREPLACE as libc::c_uint)
    });
    match placed {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = sys::unlink_at(dir, &tmp, 0);
            if e == Errno::EEXIST && read_small(dir, name, content.len())? == content {
                return Ok(());
            }
            Err(e)
        }
    }
}

/// What `rmdir` may remove from a backing directory besides its entries:
/// `Ok(leftovers)` when it holds nothing else (docs/FORMAT.md "rmdir").
pub fn rmdir_leftovers(v2: &V2, names: &[RawDirEntry]) -> Result<Vec<CString>, Errno> {
    let mut out = Vec::new();
    let present: std::collections::HashSet<&[u8]> =
        names.iter().map(|e| e.name.to_bytes()).collect();
    for e in names {
        let n = e.name.to_bytes();
        let leftover = if v2.names.is_some() {
            match classify(n, false) {
                BackingKind::Dot => continue,
                BackingKind::DirId => continue,
                BackingKind::Temp => true,
                BackingKind::Sidecar { entry } => !present.contains(entry),
                _ => false,
            }
        } else {
            match n {
                b"." | b".." => continue,
                _ if n == DIRID_FILE_NAME.as_bytes() => continue,
                _ => crate::format::dirid::is_temp_name(n),
            }
        };
        if !leftover {
            return Err(Errno::ENOTEMPTY);
        }
        out.push(e.name.clone());
    }
    Ok(out)
}

/// Whether a backing listing holds any user entry (anything but dots,
/// kmsfs's own files and leftovers).
fn has_entries(v2: &V2, names: &[RawDirEntry]) -> bool {
    rmdir_leftovers(v2, names).is_err()
}

impl KmsFs {
    /// Whether `name` in `parent` is the volume's own (format 1: the
    /// config in the root).
    pub(super) fn is_hidden(&self, parent: &Inode, name: &CStr) -> bool {
        match &self.layout {
            Layout::V1 { .. } => {
                parent.id == INodeNo::ROOT && name.to_bytes() == CONFIG_FILE_NAME.as_bytes()
            }
            Layout::V2(_) => false,
        }
    }

    /// The backing form of the user's `name` in `parent`. `reserved` is the
    /// answer for a name that is kmsfs's own (`ENOENT` to a lookup, `EPERM`
    /// to a creation). `repair`: a directory whose id is missing (an
    /// interrupted rmdir emptied it) gets a new one.
    pub(super) fn backing(
        &self,
        parent: &Inode,
        name: &CStr,
        reserved: Errno,
        repair: bool,
    ) -> Result<Backing, Errno> {
        let plain = |n: &CStr| Backing {
            entry: n.to_owned(),
            sidecar: None,
        };
        match &self.layout {
            Layout::V1 { .. } => {
                if self.is_hidden(parent, name) {
                    return Err(reserved);
                }
                Ok(plain(name))
            }
            Layout::V2(v2) => {
                validate_name(name.to_bytes()).map_err(refusal)?;
                let Some(names) = &v2.names else {
                    if is_reserved_plaintext(name.to_bytes(), parent.id == INodeNo::ROOT) {
                        return Err(reserved);
                    }
                    return Ok(plain(name));
                };
                let id = self.dir_id(parent, repair)?;
                match names.encrypt_name(&id, name.to_bytes()).map_err(refusal)? {
                    BackingName::Short(s) => Ok(Backing {
                        entry: cstring(s)?,
                        sidecar: None,
                    }),
                    b @ BackingName::Long { .. } => {
                        let (side, content) = b.sidecar().ok_or(Errno::EIO)?;
                        Ok(Backing {
                            entry: cstring(b.entry())?,
                            sidecar: Some((cstring(side)?, content.to_owned())),
                        })
                    }
                }
            }
        }
    }

    /// The directory id of `dir` (format 2): the volume id for the root,
    /// else its `kmsfs.dirid`, read once per inode. A missing id file in a
    /// directory without entries is `ENOENT` (nothing can be in it), or,
    /// with `repair`, replaced by a new id; with entries, and for a damaged
    /// id file, it is `EIO` and a log line.
    pub(super) fn dir_id(&self, dir: &Inode, repair: bool) -> Result<DirId, Errno> {
        let Some(v2) = self.layout.v2() else {
            return Err(Errno::EIO);
        };
        if dir.id == INodeNo::ROOT {
            return Ok(v2.root_id());
        }
        if let Some(id) = dir.dir_id.get() {
            return Ok(*id);
        }
        let name = ID_FILE;
        let id = match read_small(dir.fd(), name, crate::format::dirid::DIRID_FILE_SIZE) {
            Ok(bytes) => parse_dirid(&bytes).map_err(|e| {
                self.stats.count_damaged_read();
                tracing::error!(
                    "{}: directory id file is damaged ({e}); returning EIO",
                    self.display_path(dir)
                );
                Errno::EIO
            })?,
            Err(e) if e == Errno::ENOENT => {
                let listing = sys::list_dir(dir.fd())?;
                if has_entries(v2, &listing) {
                    self.stats.count_damaged_read();
                    tracing::error!(
                        "{}: directory has entries but no {DIRID_FILE_NAME}; returning EIO",
                        self.display_path(dir)
                    );
                    return Err(Errno::EIO);
                }
                if !repair {
                    return Err(Errno::ENOENT);
                }
                let id = DirId::random().map_err(|_| Errno::EIO)?;
                let placed = write_durable(dir.fd(), name, &encode_dirid(&id), DIRID_FILE_MODE);
                match placed {
                    Ok(()) => id,
                    // Another thread repaired it first: use its id.
                    Err(e) if e == Errno::EEXIST => {
                        let bytes =
                            read_small(dir.fd(), name, crate::format::dirid::DIRID_FILE_SIZE)?;
                        parse_dirid(&bytes).map_err(|_| Errno::EIO)?
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        Ok(*dir.dir_id.get_or_init(|| id))
    }

    /// Makes a long name's sidecar durable before its entry is created
    /// (docs/FORMAT.md "Long names: writing"). An identical sidecar left by
    /// a crash is reused; a different one is damage (`EIO`).
    pub(super) fn write_sidecar(&self, parent: &Inode, b: &Backing) -> Result<(), Errno> {
        let Some((side, content)) = &b.sidecar else {
            return Ok(());
        };
        write_durable(parent.fd(), side, content.as_bytes(), DIRID_FILE_MODE).map_err(|e| {
            if e == Errno::EEXIST {
                tracing::error!(
                    "{}: a long-name sidecar {} exists with other content; returning EIO",
                    self.display_path(parent),
                    escape_bytes(side.to_bytes())
                );
                Errno::EIO
            } else {
                e
            }
        })
    }

    /// Removes a long name's sidecar after its entry went (a failure leaves
    /// an orphan, which is harmless).
    pub(super) fn remove_sidecar(&self, parent: &Inode, b: &Backing) {
        if let Some((side, _)) = &b.sidecar {
            let _ = sys::unlink_at(parent.fd(), side, 0);
        }
    }

    /// The user's view of a backing listing of `dir`: kmsfs's own files
    /// left out; with encrypted names, every name decrypted (one that fails
    /// is left out with one log line).
    pub(super) fn user_listing(&self, dir: &Inode, raw: Vec<RawDirEntry>) -> Vec<Listed> {
        let root = dir.id == INodeNo::ROOT;
        let keep = |e: RawDirEntry| Listed {
            name: e.name,
            backing: None,
            ino: e.ino,
            d_type: e.d_type,
        };
        let v2 = match &self.layout {
            Layout::V1 { .. } => {
                return raw
                    .into_iter()
                    .filter(|e| !self.is_hidden(dir, &e.name))
                    .map(keep)
                    .collect();
            }
            Layout::V2(v2) => v2,
        };
        let Some(names) = &v2.names else {
            return raw
                .into_iter()
                .filter(|e| {
                    let n = e.name.to_bytes();
                    matches!(n, b"." | b"..") || !is_reserved_plaintext(n, root)
                })
                .map(keep)
                .collect();
        };
        // No id (and so no entries): only the dots are listed.
        let id = self.dir_id(dir, false).ok();
        let mut out = Vec::with_capacity(raw.len());
        for e in raw {
            let n = e.name.to_bytes();
            let kind = classify(n, root);
            let sidecar = match kind {
                BackingKind::Dot => {
                    out.push(keep(e));
                    continue;
                }
                BackingKind::Short => None,
                BackingKind::Long => {
                    let side = std::str::from_utf8(n)
                        .ok()
                        .map(sidecar_name)
                        .and_then(|s| CString::new(s).ok());
                    match side.map(|s| read_small(dir.fd(), &s, SIDECAR_MAX)) {
                        Some(Ok(bytes)) => Some(bytes),
                        _ => {
                            self.report_name(dir, n, &NameError::MissingSidecar);
                            continue;
                        }
                    }
                }
                BackingKind::Unknown => {
                    self.report_name(dir, n, &NameError::NotAName);
                    continue;
                }
                // kmsfs's own files and leftovers.
                _ => continue,
            };
            let Some(id) = id else { continue };
            match names.decrypt_name(&id, n, sidecar.as_deref()) {
                Ok(plain) => match CString::new(plain) {
                    Ok(name) => out.push(Listed {
                        name,
                        backing: Some(e.name),
                        ino: e.ino,
                        d_type: e.d_type,
                    }),
                    Err(_) => self.report_name(dir, n, &NameError::Authentication),
                },
                Err(err) => self.report_name(dir, n, &err),
            }
        }
        out
    }

    /// The user's path of a backing path relative to the root (for log
    /// lines): each encrypted name decrypted, one that does not decrypt
    /// left as it is stored.
    pub(super) fn plain_path(&self, rel: &std::path::Path) -> std::path::PathBuf {
        let Some((names, root_id)) = self
            .layout
            .v2()
            .and_then(|v| v.names.as_ref().map(|n| (n, v.root_id())))
        else {
            return rel.to_path_buf();
        };
        let mut out = std::path::PathBuf::new();
        let mut dir = self.cipherdir.clone();
        let mut id = Some(root_id);
        for c in rel.iter() {
            let b = std::os::unix::ffi::OsStrExt::as_bytes(c);
            let plain =
                id.and_then(|id| crate::tools::walk::decrypt_entry(names, &id, &dir, b).ok());
            match plain {
                Some(n) => {
                    out.push(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&n))
                }
                None => out.push(c),
            }
            dir.push(c);
            id = crate::tools::walk::read_dir_id(&dir).ok();
        }
        out
    }

    /// One log line for a backing name readdir leaves out.
    fn report_name(&self, dir: &Inode, backing: &[u8], e: &NameError) {
        self.stats.count_damaged_read();
        tracing::error!(
            "{}: backing entry {} left out of the listing: {e}",
            self.display_path(dir),
            escape_bytes(backing)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::DataKey;
    use crate::format::VolumeId;
    use std::os::fd::AsFd;

    fn v2(encrypted: bool) -> V2 {
        match Layout::format2(
            VolumeId([7; 16]),
            &DataKey::from_slice(&[1; 32]).unwrap(),
            !encrypted,
        ) {
            Layout::V2(v) => v,
            Layout::V1 { .. } => unreachable!(),
        }
    }

    fn entries(names: &[&str]) -> Vec<RawDirEntry> {
        names
            .iter()
            .map(|n| RawDirEntry {
                name: CString::new(*n).unwrap(),
                ino: 1,
                d_type: 0,
            })
            .collect()
    }

    #[test]
    fn the_id_file_name_is_the_format_s() {
        assert_eq!(ID_FILE.to_bytes(), DIRID_FILE_NAME.as_bytes());
    }

    #[test]
    fn rmdir_removes_only_leftovers() {
        let enc = v2(true);
        let long = "kmsfs.long.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let orphan = format!("{long}.name");
        let tmp = "kmsfs.tmp.0123456789abcdef0123456789abcdef";
        let ok = rmdir_leftovers(&enc, &entries(&[".", "..", DIRID_FILE_NAME, tmp, &orphan]));
        assert_eq!(
            ok.unwrap(),
            vec![
                CString::new(tmp).unwrap(),
                CString::new(orphan.clone()).unwrap()
            ]
        );
        // A sidecar beside its entry, an entry, a stranger's file: not empty.
        for extra in [long, "QUJDREVGR0hJSktMTU5PUFFSUw", "notes.txt"] {
            let e = rmdir_leftovers(&enc, &entries(&[".", DIRID_FILE_NAME, &orphan, extra]));
            assert_eq!(e.err(), Some(Errno::ENOTEMPTY), "{extra}");
        }
        let plain = v2(false);
        assert!(rmdir_leftovers(&plain, &entries(&[".", "..", DIRID_FILE_NAME, tmp])).is_ok());
        assert_eq!(
            rmdir_leftovers(&plain, &entries(&[DIRID_FILE_NAME, "a"])).err(),
            Some(Errno::ENOTEMPTY)
        );
    }

    #[test]
    fn durable_writes_keep_an_identical_file_and_refuse_another() {
        let d = tempfile::tempdir().unwrap();
        let p = CString::new(d.path().as_os_str().as_encoded_bytes()).unwrap();
        let dir = sys::open_root(&p).unwrap();
        write_durable(dir.as_fd(), c"x", b"abc", 0o440).unwrap();
        write_durable(dir.as_fd(), c"x", b"abc", 0o440).unwrap();
        assert_eq!(
            write_durable(dir.as_fd(), c"x", b"abd", 0o440).err(),
            Some(Errno::EEXIST)
        );
        assert_eq!(std::fs::read(d.path().join("x")).unwrap(), b"abc");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert_eq!(read_small(dir.as_fd(), c"x", 2).err(), Some(Errno::EIO));
    }
}
