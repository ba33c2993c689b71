//! Listing the files of a backing directory: regular files, depth first,
//! sorted by name, symlinks not followed, the root's `kmsfs.conf` left out.

use crate::format::CONFIG_FILE_NAME;
use std::path::{Path, PathBuf};

pub struct Listing {
    /// (path relative to the root, backing size).
    pub files: Vec<(PathBuf, u64)>,
    /// Entries that are neither regular files nor directories.
    pub other: u64,
    /// Their relative paths and kinds.
    pub other_entries: Vec<(PathBuf, &'static str)>,
    /// Directories that could not be read: (relative path, error).
    pub errors: Vec<(PathBuf, std::io::Error)>,
}

pub fn list(root: &Path) -> Listing {
    let mut l = Listing {
        files: Vec::new(),
        other: 0,
        other_entries: Vec::new(),
        errors: Vec::new(),
    };
    visit(root, Path::new(""), &mut l);
    l
}

fn visit(root: &Path, rel: &Path, l: &mut Listing) {
    let dir = root.join(rel);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            l.errors.push((rel.to_path_buf(), e));
            return;
        }
    };
    let mut names = Vec::new();
    for e in entries {
        match e {
            Ok(e) => names.push(e.file_name()),
            Err(e) => l.errors.push((rel.to_path_buf(), e)),
        }
    }
    names.sort();
    for name in names {
        let r = rel.join(&name);
        if rel.as_os_str().is_empty() && name == CONFIG_FILE_NAME {
            continue;
        }
        match std::fs::symlink_metadata(root.join(&r)) {
            Ok(m) if m.is_dir() => visit(root, &r, l),
            Ok(m) if m.is_file() => l.files.push((r, m.len())),
            Ok(m) => {
                l.other += 1;
                l.other_entries.push((r, kind(&m.file_type())));
            }
            Err(e) => l.errors.push((r, e)),
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
        let l = list(p);
        let names: Vec<_> = l
            .files
            .iter()
            .map(|(p, s)| (p.to_str().unwrap(), *s))
            .collect();
        assert_eq!(names, [("a", 0), ("b/c/f", 3), ("b/kmsfs.conf", 1)]);
        assert_eq!(l.other, 1);
        assert!(l.errors.is_empty());
    }
}
