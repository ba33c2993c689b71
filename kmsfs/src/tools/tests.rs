//! cat and fsck against a local fake kmsd; the full tamper matrix against
//! the real kmsd is in `kmsfs/tests/tamper.rs`.

use super::*;
use crate::format::offsets::{block_offset_in_file, cipher_size};
use crate::keys::testing::FakeKms;
use crate::keys::volume::init_with;
use crate::keys::{KeyOptions, Volume};
use std::path::Path;
use std::sync::Arc;

fn volume() -> (tempfile::TempDir, Arc<FakeKms>, Volume) {
    let d = tempfile::tempdir().unwrap();
    let kms = Arc::new(FakeKms::new());
    init_with(kms.as_ref(), d.path()).unwrap();
    let v = Volume::open_with(kms.clone(), d.path(), KeyOptions::offline()).unwrap();
    (d, kms, v)
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn cat_vec(v: &Volume, p: &str) -> Result<Vec<u8>, CatError> {
    let mut out = Vec::new();
    cat(v, Path::new(p), &mut out).map(|n| {
        assert_eq!(n as usize, out.len());
        out
    })
}

#[test]
fn cat_round_trips_every_size() {
    let (_d, _kms, v) = volume();
    for len in [
        0usize,
        1,
        4095,
        4096,
        4097,
        64 * 4096,
        64 * 4096 + 1,
        200_000,
    ] {
        let name = format!("f{len}");
        let p = data(len, 3);
        put(&v, Path::new(&name), &p).unwrap();
        let size = std::fs::metadata(v.dir.join(&name)).unwrap().len();
        assert_eq!(size, cipher_size(len as u64));
        assert_eq!(cat_vec(&v, &name).unwrap(), p, "len {len}");
    }
    let r = fsck_volume(&v, false).unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!((r.files, r.empty_files), (8, 1));
    assert_eq!(
        r.bytes,
        (1 + 4095 + 4096 + 4097 + 64 * 4096 + 64 * 4096 + 1 + 200_000) as u64
    );
}

#[test]
fn holes_are_counted_and_read_as_zeros() {
    let (_d, _kms, v) = volume();
    let p = data(3 * 4096 + 10, 1);
    put(&v, Path::new("h"), &p).unwrap();
    let path = v.dir.join("h");
    let mut b = std::fs::read(&path).unwrap();
    let off = block_offset_in_file(1) as usize;
    b[off..off + 4124].fill(0);
    std::fs::write(&path, &b).unwrap();
    let out = cat_vec(&v, "h").unwrap();
    assert!(out[4096..8192].iter().all(|x| *x == 0));
    assert_eq!(out[8192..], p[8192..]);
    let r = fsck_volume(&v, false).unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!((r.holes, r.blocks), (1, 4));
}

#[test]
fn every_bad_block_is_reported_and_cat_fails() {
    let (_d, _kms, v) = volume();
    put(&v, Path::new("a"), &data(100 * 4096, 2)).unwrap();
    let path = v.dir.join("a");
    let mut b = std::fs::read(&path).unwrap();
    for blk in [3u64, 64, 99] {
        b[block_offset_in_file(blk) as usize + 40] ^= 4;
    }
    std::fs::write(&path, &b).unwrap();
    let r = fsck_volume(&v, false).unwrap();
    let blocks: Vec<_> = r.problems.iter().map(|p| p.block).collect();
    assert_eq!(blocks, [Some(3), Some(64), Some(99)], "{r}");
    assert_eq!(r.blocks, 97);
    assert!(
        r.to_string().contains("a: block 64: failed authentication"),
        "{r}"
    );
    match cat_vec(&v, "a") {
        Err(CatError::Block { error, .. }) => assert_eq!(error.block, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn kmsd_down_stops_fsck_and_denied_is_a_problem() {
    let (_d, kms, v) = volume();
    put(&v, Path::new("a"), b"hello").unwrap();
    v.keys.clear();
    kms.set_down(true);
    assert!(matches!(
        fsck_volume(&v, false),
        Err(FsckError::Unavailable(_))
    ));
    match cat_vec(&v, "a") {
        Err(CatError::Key { error, .. }) => assert_eq!(error.errno(), libc::EIO),
        other => panic!("{other:?}"),
    }
    kms.set_down(false);
    kms.set_denied(true);
    let r = fsck_volume(&v, false).unwrap();
    assert_eq!(r.problems.len(), 1, "{r}");
    assert!(r.problems[0].what.contains("denied"), "{r}");
    match cat_vec(&v, "a") {
        Err(CatError::Key { error, .. }) => assert_eq!(error.errno(), libc::EACCES),
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_failure_is_a_problem_of_the_config() {
    let (d, kms, _v) = volume();
    let conf = d.path().join("kmsfs.conf");
    let s = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, s.replace("\"mac\": \"", "\"mac\": \"0")).unwrap();
    let r = check_opened(
        Volume::open_with(kms.clone(), d.path(), KeyOptions::default()),
        false,
    )
    .unwrap();
    assert_eq!(r.problems.len(), 1);
    assert_eq!(r.problems[0].path, Path::new("kmsfs.conf"));
    std::fs::remove_file(&conf).unwrap();
    let e = check_opened(
        Volume::open_with(kms, d.path(), KeyOptions::default()),
        false,
    );
    assert!(matches!(e, Err(FsckError::Volume(_))));
}

#[test]
fn size_problems_name_the_block() {
    let (_d, _kms, v) = volume();
    for (name, len) in [("short", 100u64), ("hdr", 512), ("mid", 512 + 4124 + 20)] {
        put(&v, Path::new(name), &data(3 * 4096, 0)).unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(v.dir.join(name))
            .unwrap();
        f.set_len(len).unwrap();
    }
    let r = fsck_volume(&v, false).unwrap();
    assert_eq!(r.problems_of("short")[0].block, None);
    assert_eq!(r.problems_of("hdr")[0].block, Some(0));
    assert_eq!(r.problems_of("mid")[0].block, Some(1));
    assert!(matches!(cat_vec(&v, "mid"), Err(CatError::Size { .. })));
}

/// Runs `f` on another thread; `None` when it did not finish in 10 s (the
/// old tools blocked forever opening a FIFO).
fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10)).ok()
}

fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn cat_of_a_fifo_or_symlink_neither_hangs_nor_follows() {
    let (d, _kms, v) = volume();
    put(&v, Path::new("real"), &data(100, 1)).unwrap();
    mkfifo(&d.path().join("fifo"));
    std::os::unix::fs::symlink("real", d.path().join("link")).unwrap();
    let v = Arc::new(v);
    let v2 = v.clone();
    let r = within_10s(move || cat_vec(&v2, "fifo").map_err(|e| e.to_string()))
        .expect("cat of a FIFO hung");
    let e = r.unwrap_err();
    assert!(e.contains("FIFO"), "{e}");
    let e = cat_vec(&v, "link").unwrap_err().to_string();
    assert!(e.contains("symlink"), "{e}");
    assert_eq!(cat_vec(&v, "real").unwrap(), data(100, 1));
}

#[test]
fn fsck_finishes_and_reports_a_fifo_listed_or_swapped_in() {
    let (d, _kms, v) = volume();
    put(&v, Path::new("a"), &data(10, 2)).unwrap();
    put(&v, Path::new("b"), &data(10, 3)).unwrap();
    mkfifo(&d.path().join("pipe"));
    // A FIFO already there when listed: named in the output, not checked.
    let v = Arc::new(v);
    let v2 = v.clone();
    let r = within_10s(move || fsck_volume(&v2, false).map_err(|e| e.to_string()))
        .expect("fsck hung")
        .unwrap();
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.other, 1);
    assert!(r.to_string().contains("pipe: FIFO, not checked"), "{r}");
    // One swapped in after the walk listed a regular file: a problem of
    // that file, and fsck still finishes.
    let mut r = Report::default();
    let v3 = v.clone();
    std::fs::remove_file(d.path().join("b")).unwrap();
    mkfifo(&d.path().join("b"));
    let r = within_10s(move || {
        fsck::check_file(&v3, Path::new("b"), Path::new("b"), &mut r).map_err(|e| e.to_string())?;
        Ok::<_, String>(r)
    })
    .expect("fsck of a swapped-in FIFO hung")
    .unwrap();
    let p = r.problems_of("b");
    assert_eq!(p.len(), 1, "{r}");
    assert!(p[0].what.contains("FIFO"), "{r}");
}
