//! Listing the files of a backing directory: regular files, depth first,
//! sorted by backing name, symlinks not followed, kmsfs's own files left
//! out. Format 2 with encrypted names: every name decrypted under its
//! directory's id, so each file is known by its plaintext path; names
//! that do not decrypt are problems (docs/FORMAT.md "What fsck reports").

use crate::format::dirid::{DIRID_FILE_NAME, DIRID_FILE_SIZE, is_temp_name, parse_dirid};
use crate::format::names::{BackingKind, SIDECAR_MAX, classify, is_reserved_plaintext};
use crate::format::{CONFIG_FILE_NAME, DirId, NameCipher};
use crate::fs::Layout;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// A regular file: its user-visible path, its backing path (both
/// relative to the root) and backing size.
pub struct Found {
    pub plain: PathBuf,
    pub backing: PathBuf,
    pub size: u64,
}

#[derive(Default)]
pub struct Listing {
    pub files: Vec<Found>,
    /// Entries that are neither regular files nor directories.
    pub other: u64,
    /// Their plaintext paths and kinds.
    pub other_entries: Vec<(PathBuf, &'static str)>,
    /// Their backing paths (symlinks: format 2 checks their targets).
    pub symlinks: Vec<(PathBuf, PathBuf)>,
    /// Format 2 directories with a readable id, the root included:
    /// (plaintext path, backing path, id), for their xattrs.
    pub dirs: Vec<(PathBuf, PathBuf, DirId)>,
    /// Directories that could not be read: (relative path, error).
    pub errors: Vec<(PathBuf, std::io::Error)>,
    /// Names that fail: (path, what). The backing path where the name is
    /// unknown.
    pub problems: Vec<(PathBuf, String)>,
    /// Leftovers of interrupted operations (temporary names, orphan
    /// sidecars): harmless, counted.
    pub leftovers: u64,
}

/// Lists the tree under `root` as `layout` stores it.
pub fn list(root: &Path, layout: &Layout) -> Listing {
    let mut l = Listing::default();
    let root_id = layout.v2().map(|v| v.root_id());
    if let Some(id) = root_id {
        l.dirs.push((PathBuf::new(), PathBuf::new(), id));
    }
    visit(root, layout, Path::new(""), Path::new(""), root_id, &mut l);
    l
}

/// Reads a small file whole (no symlink followed): at most `max` bytes.
fn read_small(path: &Path, max: usize) -> std::io::Result<Vec<u8>> {
    let f = kmsd_client::nofollow::open_regular(path)?;
    let mut v = Vec::new();
    f.take(max as u64 + 1).read_to_end(&mut v)?;
    if v.len() > max {
        return Err(std::io::Error::other(format!("more than {max} bytes")));
    }
    Ok(v)
}

/// The id of the backing directory `dir` (not the root).
pub fn read_dir_id(dir: &Path) -> Result<DirId, String> {
    let bytes = read_small(&dir.join(DIRID_FILE_NAME), DIRID_FILE_SIZE)
        .map_err(|e| format!("{DIRID_FILE_NAME}: {e}"))?;
    parse_dirid(&bytes).map_err(|e| format!("{DIRID_FILE_NAME} is damaged: {e}"))
}

/// The backing path (relative to `root`) of the plaintext path `plain`
/// (relative to the volume's root): each component encrypted under its
/// directory's id with encrypted names, else the same path.
pub fn resolve(root: &Path, layout: &Layout, plain: &Path) -> Result<PathBuf, String> {
    let names = layout
        .v2()
        .and_then(|v2| v2.names.as_ref().map(|n| (n, v2.root_id())));
    let Some((names, root_id)) = names else {
        return Ok(plain.to_path_buf());
    };
    let mut out = PathBuf::new();
    for c in plain.components() {
        let std::path::Component::Normal(c) = c else {
            return Err(format!(
                "{}: only plain components are allowed",
                plain.display()
            ));
        };
        let id = if out.as_os_str().is_empty() {
            root_id
        } else {
            read_dir_id(&root.join(&out))?
        };
        let b = names
            .encrypt_name(&id, c.as_bytes())
            .map_err(|e| format!("{}: {e}", c.to_string_lossy()))?;
        out.push(b.entry());
    }
    Ok(out)
}

/// Whether the backing entry `name` is kmsfs's own (config, directory
/// id, temporary name, sidecar) or not a user entry at all, by the
/// config's format alone (no key): what `kmsfs info` leaves out.
pub fn is_reserved(name: &[u8], in_root: bool, config: &crate::format::VolumeConfig) -> bool {
    if config.names.is_none() {
        return in_root && name == CONFIG_FILE_NAME.as_bytes();
    }
    if !config.encrypted_names() {
        return is_reserved_plaintext(name, in_root);
    }
    !matches!(
        classify(name, in_root),
        BackingKind::Short | BackingKind::Long
    )
}

/// What one backing entry is to the user: its plaintext name, or `None`
/// for kmsfs's own files (with `leftover` set for leftovers).
enum Entry {
    Named(OsString),
    Own { leftover: bool },
    Problem(String),
}

fn classify_entry(
    layout: &Layout,
    dir: &Path,
    name: &[u8],
    in_root: bool,
    id: Option<&Result<DirId, String>>,
    present: &dyn Fn(&[u8]) -> bool,
) -> Entry {
    let own = |leftover| Entry::Own { leftover };
    let Some(v2) = layout.v2() else {
        if in_root && name == CONFIG_FILE_NAME.as_bytes() {
            return own(false);
        }
        return Entry::Named(OsString::from_vec(name.to_vec()));
    };
    let Some(names) = &v2.names else {
        if name == DIRID_FILE_NAME.as_bytes() || (in_root && name == CONFIG_FILE_NAME.as_bytes()) {
            return own(false);
        }
        if is_reserved_plaintext(name, in_root) {
            return own(is_temp_name(name));
        }
        return Entry::Named(OsString::from_vec(name.to_vec()));
    };
    match classify(name, in_root) {
        BackingKind::Dot | BackingKind::DirId | BackingKind::Config => return own(false),
        BackingKind::Temp => return own(true),
        BackingKind::Sidecar { entry } => return own(!present(entry)),
        BackingKind::Unknown => {
            return Entry::Problem("unexpected entry (not written by kmsfs)".into());
        }
        BackingKind::Short | BackingKind::Long => {}
    };
    let id = match id {
        Some(Ok(id)) => id,
        Some(Err(e)) => return Entry::Problem(format!("name cannot be decrypted: {e}")),
        None => return Entry::Problem("name cannot be decrypted".into()),
    };
    match decrypt_entry(names, id, dir, name) {
        Ok(n) => Entry::Named(OsString::from_vec(n)),
        Err(e) => Entry::Problem(e),
    }
}

/// The plaintext name of the encrypted backing entry `name` of the
/// backing directory `dir` (whose id is `id`): a short name decrypted, a
/// long one through its sidecar.
pub fn decrypt_entry(
    names: &NameCipher,
    id: &DirId,
    dir: &Path,
    name: &[u8],
) -> Result<Vec<u8>, String> {
    let sidecar = match classify(name, false) {
        BackingKind::Long => {
            let side = [name, b".name"].concat();
            let s = read_small(&dir.join(OsString::from_vec(side)), SIDECAR_MAX)
                .map_err(|e| format!("long name without its sidecar ({e})"))?;
            Some(s)
        }
        _ => None,
    };
    names
        .decrypt_name(id, name, sidecar.as_deref())
        .map_err(|e| format!("name: {e}"))
}

fn visit(
    root: &Path,
    layout: &Layout,
    rel: &Path,
    plain_rel: &Path,
    id: Option<DirId>,
    l: &mut Listing,
) {
    let dir = root.join(rel);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            l.errors.push((plain_rel.to_path_buf(), e));
            return;
        }
    };
    let mut names = Vec::new();
    for e in entries {
        match e {
            Ok(e) => names.push(e.file_name()),
            Err(e) => l.errors.push((plain_rel.to_path_buf(), e)),
        }
    }
    names.sort();
    let in_root = rel.as_os_str().is_empty();
    let id: Option<Result<DirId, String>> = match (id, layout.v2()) {
        (Some(id), _) => Some(Ok(id)),
        (None, Some(_)) => Some(read_dir_id(&dir)),
        (None, None) => None,
    };
    let present = |n: &[u8]| names.iter().any(|x| x.as_bytes() == n);
    for name in &names {
        let r = rel.join(name);
        let plain = match classify_entry(
            layout,
            &dir,
            name.as_bytes(),
            in_root,
            id.as_ref(),
            &present,
        ) {
            Entry::Named(n) => plain_rel.join(n),
            Entry::Own { leftover } => {
                l.leftovers += u64::from(leftover);
                continue;
            }
            Entry::Problem(what) => {
                l.problems.push((r, what));
                continue;
            }
        };
        match std::fs::symlink_metadata(root.join(&r)) {
            Ok(m) if m.is_dir() => {
                // Without a readable id, every entry inside is reported.
                let sub = layout.v2().and_then(|_| read_dir_id(&root.join(&r)).ok());
                if let Some(id) = sub {
                    l.dirs.push((plain.clone(), r.clone(), id));
                }
                visit(root, layout, &r, &plain, sub, l);
            }
            Ok(m) if m.is_file() => l.files.push(Found {
                plain,
                backing: r,
                size: m.len(),
            }),
            Ok(m) => {
                if m.file_type().is_symlink() {
                    l.symlinks.push((plain.clone(), r));
                }
                l.other += 1;
                l.other_entries.push((plain, kind(&m.file_type())));
            }
            Err(e) => l.errors.push((plain, e)),
        }
    }
}

fn kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::DataKey;

    #[test]
    fn lists_regular_files_in_order() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(p.join(CONFIG_FILE_NAME), "x").unwrap();
        std::fs::create_dir_all(p.join("b/c")).unwrap();
        std::fs::write(p.join("b/c/f"), "123").unwrap();
        std::fs::write(p.join("a"), "").unwrap();
        std::fs::write(p.join("b/kmsfs.conf"), "1").unwrap();
        std::os::unix::fs::symlink("a", p.join("link")).unwrap();
        let l = list(p, &Layout::format1(&DataKey::from_slice(&[1; 32]).unwrap()));
        let names: Vec<_> = l
            .files
            .iter()
            .map(|f| (f.plain.to_str().unwrap(), f.size))
            .collect();
        assert_eq!(names, [("a", 0), ("b/c/f", 3), ("b/kmsfs.conf", 1)]);
        assert_eq!(l.other, 1);
        assert!(l.errors.is_empty());
    }
}
