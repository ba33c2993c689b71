//! Format 2 end to end on real mounts: encrypted names (lengths 1, 175,
//! 176 and 255 bytes, every byte class), directory ids, long names, renames
//! within and across directories, hard links, large directories, name
//! tampering, integrity of empty files and xattrs, plaintext-names volumes,
//! format 1 volumes still mounting, and kill -9 of the mount during mkdir
//! and rename storms (docs/FORMAT.md "Version 2").

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use common::sys::cpath;
use mount::Volume;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn errno_of<T>(r: std::io::Result<T>) -> i32 {
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

/// Every backing path under `dir`, relative.
fn backing_tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(dir.join(&rel)).unwrap().flatten() {
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(r.clone());
            }
            out.push(r);
        }
    }
    out
}

fn names_of(dir: &Path) -> Vec<OsString> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    v.sort();
    v
}

fn name(len: usize, seed: u8) -> OsString {
    // Bytes of every class: ASCII, spaces, a newline, UTF-8, high bytes;
    // never NUL or '/'.
    let alphabet: Vec<u8> = (1u8..=255).filter(|b| *b != b'/').collect();
    let v: Vec<u8> = (0..len)
        .map(|i| alphabet[(i * 7 + seed as usize) % alphabet.len()])
        .collect();
    OsString::from_vec(v)
}

/// lsetxattr(2).
fn xset(p: impl AsRef<Path>, name: &str, value: &[u8]) -> std::io::Result<()> {
    let (p, n) = (cpath(p.as_ref()), std::ffi::CString::new(name).unwrap());
    // SAFETY: valid strings and buffer.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// lgetxattr(2); `None` for ENODATA.
fn xget(p: impl AsRef<Path>, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let (p, n) = (cpath(p.as_ref()), std::ffi::CString::new(name).unwrap());
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid strings and buffer.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENODATA) {
            return Ok(None);
        }
        return Err(e);
    }
    buf.truncate(r as usize);
    Ok(Some(buf))
}

fn fsck_ok(vol: &Volume) -> String {
    let out = vol.fsck();
    let t = mount::text(&out);
    assert!(out.status.success(), "fsck: {t}");
    t
}

#[test]
fn names_of_every_length_and_byte_class_are_hidden_and_round_trip() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let mut made = Vec::new();
    for (len, seed) in [
        (1, 0),
        (2, 1),
        (174, 2),
        (175, 3),
        (176, 4),
        (200, 5),
        (255, 6),
    ] {
        let n = name(len, seed);
        std::fs::write(vol.mountpoint.join(&n), format!("content {len}")).unwrap();
        made.push((n, len));
    }
    std::fs::write(vol.mountpoint.join("with space\nand newline é"), b"x").unwrap();
    std::fs::create_dir(vol.mountpoint.join(name(255, 9))).unwrap();
    std::fs::write(
        vol.mountpoint.join(name(255, 9)).join(name(255, 9)),
        b"deep",
    )
    .unwrap();
    // Too long, empty-ish and reserved-looking names.
    assert_eq!(
        errno_of(std::fs::write(vol.mountpoint.join(name(256, 1)), b"")),
        libc::ENAMETOOLONG
    );
    for n in [
        "kmsfs.conf",
        "kmsfs.dirid",
        "kmsfs.tmp.0123456789abcdef0123456789abcdef",
    ] {
        // With encrypted names these are ordinary names.
        std::fs::write(vol.mountpoint.join(n), n).unwrap();
        assert_eq!(std::fs::read(vol.mountpoint.join(n)).unwrap(), n.as_bytes());
    }
    for (n, len) in &made {
        assert_eq!(
            std::fs::read(vol.mountpoint.join(n)).unwrap(),
            format!("content {len}").as_bytes()
        );
    }
    let listed = names_of(&vol.mountpoint);
    for (n, _) in &made {
        assert!(listed.contains(n), "{n:?} not listed");
    }
    assert_eq!(listed.len(), made.len() + 2 + 3);
    // statfs promises every plaintext name up to 255 bytes.
    let st = nix::sys::statvfs::statvfs(&vol.mountpoint).unwrap();
    assert_eq!(st.name_max(), 255);
    drop(m);
    // No plaintext name reaches the backing directory; long names have a
    // hashed entry and a sidecar; every backing name fits 255 bytes.
    let tree = backing_tree(&vol.cipherdir);
    for p in &tree {
        for c in p.iter() {
            assert!(c.len() <= 255, "{p:?}");
            let b = c.as_bytes();
            assert!(
                !b.windows(6).any(|w| w == b"conten") && !b.contains(&b'\n'),
                "{p:?}"
            );
        }
    }
    for (n, _) in &made {
        assert!(!tree.iter().any(|p| p.file_name() == Some(n.as_os_str())));
    }
    let longs = tree
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.as_bytes().starts_with(b"kmsfs.long."))
        })
        .count();
    // 176, 200, 255 in the root, the long directory and its long file:
    // entries and sidecars.
    assert_eq!(longs, 2 * 5, "{tree:?}");
    let t = fsck_ok(&vol);
    assert!(t.contains("no problems"), "{t}");
    // cat takes plaintext paths.
    let out = vol
        .kmsfs()
        .arg("cat")
        .arg(&vol.cipherdir)
        .arg(Path::new(&name(255, 9)).join(name(255, 9)))
        .arg("--socket")
        .arg(&vol.socket)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", mount::text(&out));
    assert_eq!(out.stdout, b"deep");
}

#[test]
fn renames_links_and_large_directories() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let p = |r: &str| vol.path(r);
    std::fs::create_dir_all(p("a/b")).unwrap();
    std::fs::create_dir(p("c")).unwrap();
    let long_s = "L".repeat(240);
    let long = OsString::from(&long_s);
    std::fs::write(p("a/f"), b"f").unwrap();
    // Within a directory, across directories, to and from long names.
    std::fs::rename(p("a/f"), p("a/g")).unwrap();
    std::fs::rename(p("a/g"), vol.mountpoint.join("c").join(&long)).unwrap();
    std::fs::rename(vol.mountpoint.join("c").join(&long), p("a/b/h")).unwrap();
    assert_eq!(std::fs::read(p("a/b/h")).unwrap(), b"f");
    // A directory moves with its id: its children stay readable.
    std::fs::rename(p("a/b"), p("c/b2")).unwrap();
    assert_eq!(std::fs::read(p("c/b2/h")).unwrap(), b"f");
    // Over an empty directory (the backing one holds its id file).
    std::fs::create_dir(p("empty")).unwrap();
    std::fs::rename(p("c/b2"), p("empty")).unwrap();
    assert_eq!(std::fs::read(p("empty/h")).unwrap(), b"f");
    assert!(!p("c/b2").exists());
    // Over a non-empty one: refused.
    std::fs::create_dir(p("full")).unwrap();
    std::fs::write(p("full/x"), b"").unwrap();
    assert_eq!(
        errno_of(std::fs::rename(p("empty"), p("full"))),
        libc::ENOTEMPTY
    );
    // RENAME_EXCHANGE across directories.
    std::fs::write(p("a/one"), b"1").unwrap();
    std::fs::write(vol.mountpoint.join("c").join(&long), b"2").unwrap();
    let c1 = std::ffi::CString::new(p("a/one").as_os_str().as_bytes()).unwrap();
    let c2 = std::ffi::CString::new(vol.mountpoint.join("c").join(&long).as_os_str().as_bytes())
        .unwrap();
    // SAFETY: valid paths.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            c1.as_ptr(),
            libc::AT_FDCWD,
            c2.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    assert_eq!(std::fs::read(p("a/one")).unwrap(), b"2");
    assert_eq!(std::fs::read(p(&format!("c/{long_s}"))).unwrap(), b"1");
    // Hard links across directories, one of them long.
    std::fs::hard_link(p("a/one"), vol.mountpoint.join("full").join(&long)).unwrap();
    assert_eq!(
        std::fs::metadata(p("a/one")).unwrap().ino(),
        std::fs::metadata(vol.mountpoint.join("full").join(&long))
            .unwrap()
            .ino()
    );
    std::fs::remove_file(p("a/one")).unwrap();
    assert_eq!(
        std::fs::read(vol.mountpoint.join("full").join(&long)).unwrap(),
        b"2"
    );
    // rmdir removes a directory with its id; a long-named one too.
    std::fs::create_dir(vol.mountpoint.join(&long)).unwrap();
    std::fs::remove_dir(vol.mountpoint.join(&long)).unwrap();
    std::fs::remove_dir_all(p("empty")).unwrap();
    // 10,000 entries in one directory.
    std::fs::create_dir(p("big")).unwrap();
    for i in 0..10_000 {
        std::fs::File::create(p(&format!("big/entry-{i:05}"))).unwrap();
    }
    let t = std::time::Instant::now();
    let listed = names_of(&p("big"));
    eprintln!("readdir of 10,000 encrypted names: {:?}", t.elapsed());
    assert_eq!(listed.len(), 10_000);
    assert_eq!(listed[0], OsStr::new("entry-00000"));
    assert_eq!(listed[9999], OsStr::new("entry-09999"));
    drop(_m);
    let t = fsck_ok(&vol);
    assert!(t.contains("no problems"), "{t}");
    // No orphan sidecars or temporary names are left behind.
    let tree = backing_tree(&vol.cipherdir);
    assert!(
        !tree
            .iter()
            .any(|p| p.to_string_lossy().contains("kmsfs.tmp.")),
        "{tree:?}"
    );
    let entries = tree
        .iter()
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.as_bytes().starts_with(b"kmsfs.long.") && !n.as_bytes().ends_with(b".name")
            })
        })
        .count();
    let sidecars = tree
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".name"))
        .count();
    assert_eq!(entries, sidecars, "{tree:?}");
}

/// The backing entry of a plaintext name, found through the mount.
fn backing_of(vol: &Volume, rel: &str) -> PathBuf {
    vol.backing(rel)
}

#[test]
fn tampered_names_are_left_out_and_reported() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    std::fs::create_dir(vol.path("d1")).unwrap();
    std::fs::create_dir(vol.path("d2")).unwrap();
    std::fs::write(vol.path("d1/moved"), b"m").unwrap();
    std::fs::write(vol.path("d1/edited"), b"e").unwrap();
    std::fs::write(vol.path("d1/kept"), b"k").unwrap();
    let long = "é".repeat(115);
    std::fs::write(vol.path(&format!("d1/{long}")), b"l").unwrap();
    let moved = backing_of(&vol, "d1/moved");
    let edited = backing_of(&vol, "d1/edited");
    let longb = backing_of(&vol, &format!("d1/{long}"));
    let d2 = backing_of(&vol, "d2");
    drop(m);
    // Moved into another directory's backing directory with its name.
    std::fs::rename(&moved, d2.join(moved.file_name().unwrap())).unwrap();
    // One character of a name changed.
    let mut e = edited.file_name().unwrap().as_bytes().to_vec();
    e[3] = if e[3] == b'A' { b'B' } else { b'A' };
    std::fs::rename(&edited, edited.with_file_name(OsStr::from_bytes(&e))).unwrap();
    // A long name's sidecar swapped for another's content.
    let side = PathBuf::from(format!("{}.name", longb.display()));
    let mut s = std::fs::read(&side).unwrap();
    s[10] = if s[10] == b'A' { b'B' } else { b'A' };
    std::fs::write(&side, &s).unwrap();
    let out = vol.fsck();
    assert!(!out.status.success());
    let t = mount::text(&out);
    assert!(t.contains("3 problems"), "{t}");
    let m = vol.mount(&[]);
    assert_eq!(names_of(&vol.path("d1")), [OsStr::new("kept")]);
    assert!(names_of(&vol.path("d2")).is_empty());
    assert_eq!(std::fs::read(vol.path("d1/kept")).unwrap(), b"k");
    assert!(!vol.path("d1/moved").exists());
    assert!(!vol.path("d2/moved").exists());
    assert!(!vol.path("d1/edited").exists());
    drop(m);
    let log = vol.log();
    assert!(log.contains("left out of the listing"), "{log}");
}

#[test]
fn empty_files_headers_and_xattrs_are_bound_to_their_file() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    for n in ["empty", "cut", "headerless", "x1", "x2"] {
        std::fs::write(
            vol.path(n),
            if n == "cut" {
                &b"some content"[..]
            } else {
                b""
            },
        )
        .unwrap();
    }
    xset(vol.path("x1"), "user.note", b"one").unwrap();
    xset(vol.path("x2"), "user.note", b"two").unwrap();
    xset(vol.path("x1"), "trusted.t", b"root only").unwrap();
    std::fs::create_dir(vol.path("dir1")).unwrap();
    std::fs::create_dir(vol.path("dir2")).unwrap();
    xset(vol.path("dir1"), "user.k", b"dir one").unwrap();
    xset(vol.path("dir2"), "user.k", b"dir two").unwrap();
    assert_eq!(
        xget(vol.path("x1"), "trusted.t").unwrap().unwrap(),
        b"root only"
    );
    // security.* is absent and cannot be stored.
    assert_eq!(
        errno_of(xset(vol.path("x1"), "security.test", b"v")),
        libc::EOPNOTSUPP
    );
    assert_eq!(xget(vol.path("x1"), "security.capability").unwrap(), None);
    let b: Vec<PathBuf> = ["empty", "cut", "headerless", "x1", "x2", "dir1", "dir2"]
        .iter()
        .map(|n| backing_of(&vol, n))
        .collect();
    drop(m);
    assert_eq!(std::fs::metadata(&b[0]).unwrap().len(), 540);
    // Trusted values are stored encrypted too.
    let raw = xget(&b[3], "trusted.t").unwrap().unwrap();
    assert!(!raw.windows(4).any(|w| w == b"root"));
    // A file cut to 0 bytes, a file whose header was removed, an xattr
    // value copied from another file.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&b[1])
        .unwrap()
        .set_len(0)
        .unwrap();
    let whole = std::fs::read(&b[2]).unwrap();
    std::fs::write(&b[2], &whole[512..]).unwrap();
    let v2 = xget(&b[4], "user.note").unwrap().unwrap();
    xset(&b[3], "user.note", &v2).unwrap();
    let d2 = xget(&b[6], "user.k").unwrap().unwrap();
    xset(&b[5], "user.k", &d2).unwrap();
    let m = vol.mount(&[]);
    assert_eq!(std::fs::read(vol.path("empty")).unwrap(), b"");
    assert_eq!(errno_of(std::fs::read(vol.path("cut"))), libc::EIO);
    assert_eq!(errno_of(std::fs::read(vol.path("headerless"))), libc::EIO);
    assert_eq!(errno_of(xget(vol.path("x1"), "user.note")), libc::EIO);
    assert_eq!(xget(vol.path("x2"), "user.note").unwrap().unwrap(), b"two");
    assert_eq!(errno_of(xget(vol.path("dir1"), "user.k")), libc::EIO);
    assert_eq!(
        xget(vol.path("dir2"), "user.k").unwrap().unwrap(),
        b"dir two"
    );
    drop(m);
    let t = mount::text(&vol.fsck());
    assert!(t.contains("cut"), "{t}");
    assert!(t.contains("headerless"), "{t}");
    assert!(t.contains("x1: xattr user.note failed"), "{t}");
    assert!(t.contains("dir1: xattr user.k failed"), "{t}");
    assert!(!t.contains("x2:"), "{t}");
}

#[test]
fn plaintext_names_volumes_and_format1_volumes_mount() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let plain = Volume::create_init(&kmsd, &["--plaintext-names"]);
    let m = plain.mount(&[]);
    std::fs::create_dir(plain.path("dir")).unwrap();
    std::fs::write(plain.path("dir/file name"), b"secret content").unwrap();
    std::os::unix::fs::symlink("dir/file name", plain.path("link")).unwrap();
    assert_eq!(
        errno_of(std::fs::write(plain.path("kmsfs.conf"), b"")),
        libc::EPERM
    );
    assert_eq!(
        errno_of(std::fs::write(plain.path("dir/kmsfs.dirid"), b"")),
        libc::EPERM
    );
    assert_eq!(names_of(&plain.path("dir")), [OsStr::new("file name")]);
    assert_eq!(
        std::fs::read(plain.path("link")).unwrap(),
        b"secret content"
    );
    drop(m);
    // Names in the clear, contents and symlink targets not.
    assert!(plain.cipherdir.join("dir/file name").is_file());
    assert!(plain.cipherdir.join("dir/kmsfs.dirid").is_file());
    assert_ne!(
        std::fs::read_link(plain.cipherdir.join("link")).unwrap(),
        Path::new("dir/file name")
    );
    fsck_ok(&plain);
    // Format 1 keeps its layout: plaintext names, no id files, empty
    // files of 0 bytes.
    let v1 = Volume::create_init(&kmsd, &["--format", "1"]);
    let m = v1.mount(&[]);
    std::fs::create_dir(v1.path("d")).unwrap();
    std::fs::write(v1.path("d/e"), b"").unwrap();
    std::fs::write(v1.path("d/f"), b"v1 data").unwrap();
    assert_eq!(std::fs::read(v1.path("d/f")).unwrap(), b"v1 data");
    drop(m);
    assert_eq!(
        std::fs::metadata(v1.cipherdir.join("d/e")).unwrap().len(),
        0
    );
    assert!(!v1.cipherdir.join("d/kmsfs.dirid").exists());
    fsck_ok(&v1);
}

#[test]
fn kill_9_during_mkdir_and_rename_storms_leaves_every_directory_readable() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    for round in 0..3 {
        let m = vol.mount(&[]);
        let pid = m.pid.expect("mount pid");
        let root = vol.mountpoint.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let root = root.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut i = 0u32;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let d = root.join(format!("r{round}-w{w}-{i}"));
                        if std::fs::create_dir(&d).is_err() {
                            break;
                        }
                        let _ = std::fs::write(d.join("f"), b"x");
                        let _ = std::fs::rename(&d, root.join(format!("m{round}-w{w}-{i}")));
                        i += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(300 + 200 * round));
        // SAFETY: kill takes a pid and a signal.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in workers {
            let _ = w.join();
        }
        drop(m);
    }
    // Every directory's name decrypts and its id file is whole: fsck finds
    // no problem (leftovers of the kills are allowed) and a new mount reads
    // every directory.
    let t = fsck_ok(&vol);
    assert!(t.contains("no problems"), "{t}");
    let m = vol.mount(&[]);
    let mut dirs = 0;
    for e in std::fs::read_dir(&vol.mountpoint).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            dirs += 1;
            std::fs::read_dir(e.path()).unwrap().for_each(drop);
        }
    }
    assert!(dirs > 10, "only {dirs} directories were made");
    drop(m);
}

/// llistxattr(2): the names.
fn xlist(p: impl AsRef<Path>) -> std::io::Result<Vec<String>> {
    let p = cpath(p.as_ref());
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid string and buffer.
    let r = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(r as usize);
    Ok(buf
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect())
}

/// lremovexattr(2).
fn xremove(p: impl AsRef<Path>, name: &str) -> std::io::Result<()> {
    let (p, n) = (cpath(p.as_ref()), std::ffi::CString::new(name).unwrap());
    // SAFETY: valid strings.
    if unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[test]
fn trusted_xattrs_on_symlinks_are_stored_encrypted_and_bound_to_the_link() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    std::fs::write(vol.path("target"), b"the target").unwrap();
    std::fs::create_dir(vol.path("d")).unwrap();
    for l in ["l1", "l2", "d/l3"] {
        std::os::unix::fs::symlink("target", vol.path(l)).unwrap();
    }
    let secret = b"a secret label of the link";
    xset(vol.path("l1"), "trusted.label", secret).unwrap();
    xset(vol.path("l1"), "trusted.empty", b"").unwrap();
    xset(vol.path("l2"), "trusted.label", b"the other link").unwrap();
    xset(vol.path("d/l3"), "trusted.label", b"link three").unwrap();
    // Get, list, and the link's target untouched by any of it.
    assert_eq!(
        xget(vol.path("l1"), "trusted.label").unwrap().unwrap(),
        secret
    );
    assert_eq!(xget(vol.path("l1"), "trusted.empty").unwrap().unwrap(), b"");
    let mut names = xlist(vol.path("l1")).unwrap();
    names.sort();
    assert_eq!(names, ["trusted.empty", "trusted.label"]);
    assert_eq!(xget(vol.path("l1"), "trusted.nothing").unwrap(), None);
    assert_eq!(std::fs::read(vol.path("l1")).unwrap(), b"the target");
    // The target file has none of the link's.
    assert_eq!(xlist(vol.path("target")).unwrap(), Vec::<String>::new());
    // user.* on a symlink stays EPERM (Linux refuses it before kmsfs).
    assert_eq!(errno_of(xset(vol.path("l1"), "user.x", b"v")), libc::EPERM);
    // Remove.
    xremove(vol.path("l1"), "trusted.empty").unwrap();
    assert_eq!(xget(vol.path("l1"), "trusted.empty").unwrap(), None);
    assert_eq!(
        errno_of(xremove(vol.path("l1"), "trusted.empty")),
        libc::ENODATA
    );
    // A link keeps its values across a rename into another directory
    // (bound to the link's own id, not its place).
    std::fs::rename(vol.path("d/l3"), vol.path("l3")).unwrap();
    assert_eq!(
        xget(vol.path("l3"), "trusted.label").unwrap().unwrap(),
        b"link three"
    );
    let b1 = backing_of(&vol, "l1");
    let b2 = backing_of(&vol, "l2");
    m.unmount();
    // Stored on the backing symlink, encrypted (version byte 2, nonce,
    // ciphertext, tag: 29 bytes more than the value).
    let raw = xget(&b1, "trusted.label").unwrap().unwrap();
    assert_eq!(raw.len(), secret.len() + 29);
    assert_eq!(raw[0], 2);
    assert!(!raw.windows(6).any(|w| w == b"secret"));
    assert_eq!(xget(&b1, "trusted.empty").unwrap(), None);
    fsck_ok(&vol);
    // Remounted, still there.
    let m = vol.mount(&[]);
    assert_eq!(
        xget(vol.path("l1"), "trusted.label").unwrap().unwrap(),
        secret
    );
    m.unmount();
    // A value copied from another link does not authenticate.
    let other = xget(&b2, "trusted.label").unwrap().unwrap();
    xset(&b1, "trusted.label", &other).unwrap();
    let m = vol.mount(&[]);
    assert_eq!(errno_of(xget(vol.path("l1"), "trusted.label")), libc::EIO);
    assert_eq!(
        xget(vol.path("l2"), "trusted.label").unwrap().unwrap(),
        b"the other link"
    );
    m.unmount();
    let t = mount::text(&vol.fsck());
    assert!(t.contains("l1: xattr trusted.label failed"), "{t}");
    assert!(!t.contains("l2:"), "{t}");
}
