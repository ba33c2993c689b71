//! Thousands of small `user.*` xattrs on one file: kmsfs stores as many as
//! the backing file system does with values 29 bytes longer (kmsfs's
//! sealing overhead, docs/FORMAT.md "Extended attributes"), lists, reads
//! and removes every one, and at the backing file system's limit gives its
//! error (`ENOSPC`, `E2BIG`), never `EIO` or a hang. Measured on a tmpfs
//! backing directory and on a loop-mounted ext4 image, against the same
//! calls made on the backing file system directly.

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use common::sys::{cpath, errno};
use mount::Volume;
use std::ffi::CString;
use std::path::Path;

/// How many attributes each test tries.
const WANTED: usize = 3000;
/// Bytes of each value.
const VALUE: usize = 16;
/// What kmsfs adds to a stored value: version, nonce, tag.
const OVERHEAD: usize = 29;

fn attr(i: usize) -> CString {
    CString::new(format!("user.a{i:04}")).unwrap()
}

fn value(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i * 7 + k) as u8).collect()
}

/// Sets `user.a0000`, `user.a0001`, ... with `len`-byte values until
/// `WANTED` are set or one fails: how many were set, and the errno of the
/// failure (0 if none).
fn fill(p: &Path, len: usize) -> (usize, i32) {
    let c = cpath(p);
    for i in 0..WANTED {
        let v = value(i, len);
        // SAFETY: valid strings and buffer.
        let r = unsafe { libc::setxattr(c.as_ptr(), attr(i).as_ptr(), v.as_ptr().cast(), len, 0) };
        if r != 0 {
            return (i, errno());
        }
    }
    (WANTED, 0)
}

/// The names listxattr(2) gives, through its size probe and a buffer of
/// exactly that size; a buffer one byte short is ERANGE.
fn list(p: &Path) -> Vec<String> {
    let c = cpath(p);
    // SAFETY: a null buffer of size 0 asks for the size.
    let size = unsafe { libc::listxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    assert!(size >= 0, "listxattr size probe: errno {}", errno());
    let mut buf = vec![0u8; size as usize];
    if size > 0 {
        // SAFETY: valid string and buffer of `size - 1` bytes.
        let short = unsafe { libc::listxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len() - 1) };
        assert_eq!((short, errno()), (-1, libc::ERANGE), "a short list buffer");
    }
    // SAFETY: valid string and buffer.
    let n = unsafe { libc::listxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(n, size, "listxattr: errno {}", errno());
    buf.split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

/// Reads back each of the first `n` attributes (size probe, a short
/// buffer, the value), then removes them all.
fn check_and_remove(p: &Path, n: usize, len: usize, what: &str) {
    let c = cpath(p);
    for i in 0..n {
        let name = attr(i);
        // SAFETY: a null buffer of size 0 asks for the size.
        let size = unsafe { libc::getxattr(c.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
        assert_eq!(
            size,
            len as isize,
            "{what}: size of {name:?}: errno {}",
            errno()
        );
        let mut buf = vec![0u8; len + 8];
        if len > 0 {
            // SAFETY: valid strings and buffer.
            let r = unsafe {
                libc::getxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), len - 1)
            };
            assert_eq!((r, errno()), (-1, libc::ERANGE), "{what}: short buffer");
        }
        // SAFETY: valid strings and buffer.
        let r = unsafe {
            libc::getxattr(
                c.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert_eq!(r, len as isize, "{what}: get {name:?}: errno {}", errno());
        assert_eq!(&buf[..len], &value(i, len)[..], "{what}: value of {name:?}");
    }
    for i in 0..n {
        // SAFETY: valid strings.
        let r = unsafe { libc::removexattr(c.as_ptr(), attr(i).as_ptr()) };
        assert_eq!(r, 0, "{what}: remove {i}: errno {}", errno());
    }
    assert_eq!(list(p), Vec::<String>::new(), "{what}: left after removal");
}

/// The backing file system's own count for `len`-byte values, on a file
/// of its own (removed again).
fn backing_count(dir: &Path, len: usize) -> (usize, i32) {
    let p = dir.join("raw-probe");
    std::fs::write(&p, b"probe").unwrap();
    let r = fill(&p, len);
    check_and_remove(&p, r.0, len, "backing");
    std::fs::remove_file(&p).unwrap();
    r
}

/// Fills one file on the mount, checks everything, and compares with the
/// backing file system's own counts; returns (kmsfs, backing with
/// kmsfs's stored size, backing with the plain size) counts.
fn measure(vol: &Volume, what: &str) -> (usize, usize, usize) {
    let m = vol.mount(&[]);
    let p = vol.path("many");
    std::fs::write(&p, b"a file with many attributes").unwrap();
    let t = std::time::Instant::now();
    let (n, e) = fill(&p, VALUE);
    let set_time = t.elapsed();
    if n < WANTED {
        assert!(
            e == libc::ENOSPC || e == libc::E2BIG,
            "{what}: attribute {n} failed with errno {e}, not the backing file system's limit"
        );
    }
    let t = std::time::Instant::now();
    let names = list(&p);
    eprintln!(
        "{what}: {n} attributes set in {set_time:?} (then errno {e}), listed in {:?}",
        t.elapsed()
    );
    // In the backing file system's order, which is not the order they
    // were set in on every one (tmpfs lists them by hash).
    let mut names = names;
    names.sort();
    let set: Vec<String> = (0..n)
        .map(|i| attr(i).to_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), n, "{what}: listed");
    assert!(
        names == set,
        "{what}: the listed names are not the names set"
    );
    m.unmount();
    // Stored encrypted: each value 29 bytes longer on the backing file.
    let b = cpath(&vol.backing("many"));
    // SAFETY: a null buffer of size 0 asks for the size.
    let stored = unsafe { libc::getxattr(b.as_ptr(), attr(0).as_ptr(), std::ptr::null_mut(), 0) };
    if n > 0 {
        assert_eq!(stored, (VALUE + OVERHEAD) as isize, "{what}: stored size");
    }
    let out = vol.fsck();
    assert!(out.status.success(), "{what}: fsck: {}", mount::text(&out));
    let m = vol.mount(&[]);
    check_and_remove(&p, n, VALUE, what);
    std::fs::remove_file(&p).unwrap();
    m.unmount();
    let (same, same_e) = backing_count(&vol.cipherdir, VALUE + OVERHEAD);
    let (plain, plain_e) = backing_count(&vol.cipherdir, VALUE);
    eprintln!(
        "{what}: backing file system alone: {same} attributes of {} bytes (errno {same_e}), \
         {plain} of {VALUE} bytes (errno {plain_e})",
        VALUE + OVERHEAD
    );
    assert_eq!(n, same, "{what}: kmsfs stops short of the backing limit");
    if n < WANTED {
        assert_eq!(e, same_e, "{what}: not the backing file system's error");
    }
    (n, same, plain)
}

#[test]
fn three_thousand_user_xattrs_on_a_tmpfs_backing_directory() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let (vol, _disk) = Volume::create_on_tmpfs(&kmsd, 64 << 10);
    let (n, _, _) = measure(&vol, "tmpfs");
    assert_eq!(n, WANTED, "tmpfs holds them all");
}

#[test]
fn user_xattrs_on_ext4_reach_its_limit_and_give_its_error() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    for (opts, what) in [
        (&[][..], "ext4"),
        (&["-I", "1024"][..], "ext4 with 1 KiB inodes"),
    ] {
        let Some((vol, _disk)) = Volume::create_on_ext4(&kmsd, 64, opts) else {
            panic!(
                "{what}: cannot make or loop-mount an ext4 image here (mkfs.ext4, mount -o loop)"
            );
        };
        let (n, same, plain) = measure(&vol, what);
        assert!(n < WANTED && n > 0, "{what}: {n}");
        assert!(plain >= same, "{what}");
    }
}
