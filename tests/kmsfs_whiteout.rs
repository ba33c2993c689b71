//! `renameat2(RENAME_WHITEOUT)` on real mounts, and overlayfs with its
//! upper and work directories on kmsfs (what whiteouts are for). The
//! whiteout is a character device 0:0 under the source's name: listed,
//! stat'ed, checked by fsck and removed like any entry, on format 2 volumes
//! with encrypted names (short and long, whose sidecar it keeps), with
//! plaintext names, and on format 1 volumes.

mod common;
#[path = "common/mount.rs"]
mod mount;
#[path = "common/raw.rs"]
mod raw;

use common::KmsdProcess;
use common::sys::renameat2;
use mount::Volume;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `p` is a whiteout: a character device 0:0.
fn assert_whiteout(p: &Path, uid: u32, what: &str) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{what}: {p:?}: {e}"));
    assert!(m.file_type().is_char_device(), "{what}: {p:?} is {m:?}");
    assert_eq!(m.rdev(), 0, "{what}: device number");
    assert_eq!(m.uid(), uid, "{what}: owner");
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Backing entries named like long names, and their sidecars.
fn long_entries_and_sidecars(dir: &Path) -> (usize, usize) {
    let mut entries = 0;
    let mut sidecars = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let n = e.file_name();
            let n = n.as_bytes();
            if n.starts_with(b"kmsfs.long.") {
                if n.ends_with(b".name") {
                    sidecars += 1;
                } else {
                    entries += 1;
                }
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    (entries, sidecars)
}

fn fsck_clean(vol: &Volume, what: &str) -> String {
    let out = vol.fsck();
    let t = mount::text(&out);
    assert!(out.status.success(), "{what}: fsck: {t}");
    t
}

#[test]
fn rename_whiteout_leaves_a_whiteout_on_every_kind_of_volume() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let long = "w".repeat(200);
    for (args, what) in [
        (&[][..], "format 2"),
        (&["--plaintext-names"][..], "plaintext names"),
        (&["--format", "1"][..], "format 1"),
    ] {
        let vol = Volume::create_init(&kmsd, args);
        let m = vol.mount(&[]);
        let p = |r: &str| vol.path(r);
        std::fs::create_dir(p("d")).unwrap();
        std::fs::write(p("src"), b"moved content").unwrap();
        // Within a directory, and from a long name across directories.
        assert_eq!(
            renameat2(&p("src"), &p("dst"), libc::RENAME_WHITEOUT),
            0,
            "{what}"
        );
        assert_whiteout(&p("src"), 0, what);
        assert_eq!(std::fs::read(p("dst")).unwrap(), b"moved content", "{what}");
        std::fs::write(p(&long), b"long one").unwrap();
        assert_eq!(
            renameat2(&p(&long), &p("d/short"), libc::RENAME_WHITEOUT),
            0,
            "{what}"
        );
        assert_whiteout(&p(&long), 0, what);
        assert_eq!(std::fs::read(p("d/short")).unwrap(), b"long one");
        // Over an existing file (replaced), and refused with NOREPLACE.
        std::fs::write(p("a"), b"A").unwrap();
        std::fs::write(p("b"), b"B").unwrap();
        assert_eq!(
            renameat2(&p("a"), &p("b"), libc::RENAME_WHITEOUT),
            0,
            "{what}"
        );
        assert_eq!(std::fs::read(p("b")).unwrap(), b"A");
        assert_whiteout(&p("a"), 0, what);
        std::fs::write(p("c"), b"C").unwrap();
        let flags = libc::RENAME_WHITEOUT | libc::RENAME_NOREPLACE;
        assert_eq!(renameat2(&p("c"), &p("b"), flags), libc::EEXIST, "{what}");
        assert_eq!(std::fs::read(p("c")).unwrap(), b"C");
        let flags = libc::RENAME_WHITEOUT | libc::RENAME_EXCHANGE;
        assert_eq!(renameat2(&p("c"), &p("b"), flags), libc::EINVAL, "{what}");
        // A directory over an empty directory (format 2 exchanges, then
        // removes the old target: the whiteout is left by that step).
        std::fs::create_dir(p("full")).unwrap();
        std::fs::write(p("full/inside"), b"in").unwrap();
        std::fs::create_dir(p("empty")).unwrap();
        assert_eq!(
            renameat2(&p("full"), &p("empty"), libc::RENAME_WHITEOUT),
            0,
            "{what}"
        );
        assert_whiteout(&p("full"), 0, what);
        assert_eq!(std::fs::read(p("empty/inside")).unwrap(), b"in");
        // Listed with the right type, under the plaintext names.
        let listed = names(&vol.mountpoint);
        for n in ["src", "a", "full", long.as_str()] {
            assert!(
                listed.iter().any(|l| l == n),
                "{what}: {n} not in {listed:?}"
            );
        }
        let kinds: Vec<_> = std::fs::read_dir(&vol.mountpoint)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_char_device())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(kinds.len(), 4, "{what}: {kinds:?}");
        m.unmount();
        // fsck: the whiteouts are devices, not problems.
        let t = fsck_clean(&vol, what);
        assert!(t.contains("device, not checked"), "{what}: {t}");
        let (entries, sidecars) = long_entries_and_sidecars(&vol.cipherdir);
        if what == "format 2" {
            // The long whiteout keeps its name through its sidecar.
            assert_eq!((entries, sidecars), (1, 1), "{what}");
        }
        // Remounted: still whiteouts; removed like any entry.
        let _m = vol.mount(&[]);
        for n in ["src", "a", "full", long.as_str()] {
            assert_whiteout(&p(n), 0, what);
            std::fs::remove_file(p(n)).unwrap();
        }
        assert_eq!(
            names(&vol.mountpoint),
            ["b", "c", "d", "dst", "empty"],
            "{what}"
        );
        drop(_m);
        fsck_clean(&vol, what);
        assert_eq!(long_entries_and_sidecars(&vol.cipherdir), (0, 0), "{what}");
    }
}

/// A caller without `CAP_MKNOD` is refused with `EPERM`, as on any file
/// system: shown with an `allow_other` mount and a thread whose effective
/// uid is not root (FUSE does not report capabilities; kmsfs lets only
/// uid 0 make whiteouts).
#[test]
fn rename_whiteout_needs_cap_mknod() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&["-o", "allow_other"]);
    let dir = vol.path("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(dir.join("f"), b"x").unwrap();
    std::fs::set_permissions(dir.join("f"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let r = raw::as_ids(4321, 4321, || {
        renameat2(&dir.join("f"), &dir.join("g"), libc::RENAME_WHITEOUT)
    });
    assert_eq!(r, libc::EPERM);
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"x");
    assert!(!dir.join("g").exists());
}

/// An overlay mount, unmounted (lazily if busy) on drop.
struct Overlay(PathBuf);

impl Drop for Overlay {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// overlayfs with its upper and work directories on a kmsfs mount:
/// deleting and renaming lower files leaves whiteouts in the upper
/// directory (kmsfs), and the merged view no longer shows them.
#[test]
fn overlayfs_deletes_lower_files_through_a_kmsfs_upper_directory() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let lower = vol.tmp.path().join("lower");
    let merged = vol.tmp.path().join("merged");
    std::fs::create_dir(&lower).unwrap();
    std::fs::create_dir(&merged).unwrap();
    std::fs::write(lower.join("gone"), b"lower file").unwrap();
    std::fs::write(lower.join("moved"), b"lower moved").unwrap();
    std::fs::write(lower.join("kept"), b"lower kept").unwrap();
    std::fs::create_dir(vol.path("upper")).unwrap();
    std::fs::create_dir(vol.path("work")).unwrap();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        vol.path("upper").display(),
        vol.path("work").display()
    );
    let out = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mount -t overlay: {}",
        mount::text(&out)
    );
    let ov = Overlay(merged.clone());
    std::fs::remove_file(merged.join("gone")).unwrap();
    assert!(!merged.join("gone").exists());
    std::fs::rename(merged.join("moved"), merged.join("renamed")).unwrap();
    assert!(!merged.join("moved").exists());
    assert_eq!(
        std::fs::read(merged.join("renamed")).unwrap(),
        b"lower moved"
    );
    std::fs::write(merged.join("new"), b"upper file").unwrap();
    assert_eq!(names(&merged), ["kept", "new", "renamed"]);
    // The lower directory is untouched; the upper one holds whiteouts.
    assert_eq!(names(&lower), ["gone", "kept", "moved"]);
    assert_whiteout(&vol.path("upper/gone"), 0, "overlay delete");
    assert_whiteout(&vol.path("upper/moved"), 0, "overlay rename");
    drop(ov);
    m.unmount();
    fsck_clean(&vol, "overlay");
    // Mounted again over the same directories: the deletions hold.
    let _m = vol.mount(&[]);
    let out = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mount -t overlay again: {}",
        mount::text(&out)
    );
    let _ov = Overlay(merged.clone());
    assert_eq!(names(&merged), ["kept", "new", "renamed"]);
}
