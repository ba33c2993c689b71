//! Mounted end-to-end tests of kmsfs: POSIX behaviour through a real FUSE
//! mount backed by a real kmsd. Each test has its own kmsd, volume and
//! mountpoint; the guard always unmounts.

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use common::sys::{cpath, renameat2};
use mount::Volume;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

const HEADER: u64 = 512;
const BS: u64 = 4096;
const CBS: u64 = 4124;

/// Backing size of a plaintext size in format 2, the format these tests
/// mount (docs/FORMAT.md "Sizes", "Regular files": an empty file is a
/// header and an empty final block).
fn cipher_size(p: u64) -> u64 {
    if p == 0 {
        return HEADER + 28;
    }
    HEADER
        + p / BS * CBS
        + if !p.is_multiple_of(BS) {
            p % BS + 28
        } else {
            0
        }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u8)
                .wrapping_mul(13)
                .wrapping_add(seed)
                .wrapping_add((i >> 12) as u8)
        })
        .collect()
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn errno_of<T>(r: std::io::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

#[test]
fn block_edges_round_trip_and_persist() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let sizes = [
        0usize,
        1,
        4095,
        4096,
        4097,
        8191,
        8192,
        8193,
        3 * 4096 + 1,
        (1 << 20) + 5,
    ];
    let m = vol.mount(&[]);
    for (i, &n) in sizes.iter().enumerate() {
        let name = format!("f{n}");
        let data = pattern(n, i as u8);
        std::fs::write(vol.path(&name), &data).unwrap();
        assert_eq!(std::fs::read(vol.path(&name)).unwrap(), data, "size {n}");
        assert_eq!(std::fs::metadata(vol.path(&name)).unwrap().len(), n as u64);
        assert_eq!(
            std::fs::metadata(vol.backing(&name)).unwrap().len(),
            cipher_size(n as u64),
            "backing size of {n}"
        );
    }
    m.unmount();
    let _m = vol.mount(&[]);
    for (i, &n) in sizes.iter().enumerate() {
        let data = pattern(n, i as u8);
        assert_eq!(
            std::fs::read(vol.path(&format!("f{n}"))).unwrap(),
            data,
            "size {n} after remount"
        );
    }
}

#[test]
fn reads_and_writes_at_every_edge_offset() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let offs = [0u64, 1, 4095, 4096, 4097, 8191, 8192, 12_288, 20_000];
    let lens = [1usize, 2, 4095, 4096, 4097, 10_000];
    for &off in &offs {
        for &len in &lens {
            let p = vol.path("edge");
            let base = pattern(16_384 + 7, 1);
            std::fs::write(&p, &base).unwrap();
            let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
            let data = pattern(len, 99);
            f.write_all_at(&data, off).unwrap();
            let mut model = base.clone();
            let end = off as usize + len;
            if model.len() < end {
                model.resize(end, 0);
            }
            model[off as usize..end].copy_from_slice(&data);
            drop(f);
            assert_eq!(std::fs::read(&p).unwrap(), model, "write {len} at {off}");
            let f = File::open(&p).unwrap();
            let mut buf = vec![0u8; len];
            let n = f.read_at(&mut buf, off).unwrap();
            assert_eq!(&buf[..n], &model[off as usize..(off as usize + n)]);
        }
    }
}

#[test]
fn random_access_matches_a_model_and_survives_remount() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let p = vol.path("model");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    let mut model: Vec<u8> = Vec::new();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for op in 0..600u32 {
        match rng.below(10) {
            0..=4 => {
                let off = rng.below(200_000) as usize;
                let max = if rng.below(5) == 0 { 300_000 } else { 9000 };
                let len = 1 + rng.below(max) as usize;
                let data = pattern(len, op as u8);
                f.write_all_at(&data, off as u64).unwrap();
                if model.len() < off + len {
                    model.resize(off + len, 0);
                }
                model[off..off + len].copy_from_slice(&data);
            }
            5 | 6 => {
                let n = rng.below(250_000) as usize;
                f.set_len(n as u64).unwrap();
                model.resize(n, 0);
            }
            _ => {
                let off = rng.below(260_000) as usize;
                let len = rng.below(70_000) as usize;
                let mut buf = vec![0u8; len];
                let mut got = 0;
                while got < len {
                    let n = f.read_at(&mut buf[got..], (off + got) as u64).unwrap();
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                let want = model.get(off..(off + len).min(model.len())).unwrap_or(&[]);
                assert_eq!(&buf[..got], want, "op {op}: read {len} at {off}");
            }
        }
        assert_eq!(
            f.metadata().unwrap().len(),
            model.len() as u64,
            "op {op}: size"
        );
    }
    drop(f);
    assert_eq!(std::fs::read(&p).unwrap(), model);
    m.unmount();
    let _m = vol.mount(&[]);
    assert_eq!(std::fs::read(&p).unwrap(), model, "after remount");
}

#[test]
fn truncate_up_and_down_across_block_boundaries() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let p = vol.path("t");
    let mut model = pattern(5 * 4096 + 123, 3);
    std::fs::write(&p, &model).unwrap();
    for n in [
        5 * 4096 + 123,
        5 * 4096,
        4 * 4096 + 1,
        4097,
        4096,
        4095,
        1,
        0,
        1,
        9000,
        3 * 4096,
        100_000,
        4096 * 7 + 5,
        2,
    ] {
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(n).unwrap();
        drop(f);
        model.resize(n as usize, 0);
        assert_eq!(std::fs::read(&p).unwrap(), model, "truncate to {n}");
        assert_eq!(
            std::fs::metadata(vol.backing("t")).unwrap().len(),
            cipher_size(n)
        );
    }
    // truncate(2) by path, too.
    let c = cpath(&p);
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::truncate(c.as_ptr(), 10_000) }, 0);
    model.resize(10_000, 0);
    assert_eq!(std::fs::read(&p).unwrap(), model);
}

#[test]
fn writes_past_the_end_leave_sparse_holes() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let p = vol.path("sparse");
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    f.write_all_at(b"start", 0).unwrap();
    f.write_all_at(b"end", 64 << 20).unwrap();
    drop(f);
    let meta = std::fs::metadata(&p).unwrap();
    assert_eq!(meta.len(), (64 << 20) + 3);
    let backing = std::fs::metadata(vol.backing("sparse")).unwrap();
    assert!(
        backing.blocks() * 512 < (1 << 20),
        "backing file is not sparse: {} blocks",
        backing.blocks()
    );
    let mut f = File::open(&p).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    f.seek(SeekFrom::Start(32 << 20)).unwrap();
    f.read_exact(&mut buf).unwrap();
    assert!(buf.iter().all(|b| *b == 0));
    let mut head = [0u8; 5];
    f.read_exact_at(&mut head, 0).unwrap();
    assert_eq!(&head, b"start");
    let mut tail = [0u8; 3];
    f.read_exact_at(&mut tail, 64 << 20).unwrap();
    assert_eq!(&tail, b"end");
}

fn fallocate(f: &File, mode: i32, off: u64, len: u64) -> i32 {
    // SAFETY: a valid descriptor; fallocate touches no memory of ours.
    let r = unsafe { libc::fallocate(f.as_raw_fd(), mode, off as i64, len as i64) };
    if r == 0 {
        0
    } else {
        errno_of::<()>(Err(std::io::Error::last_os_error()))
    }
}

#[test]
fn fallocate_reserves_space_and_punch_hole_zeroes() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let p = vol.path("f");
    let mut model = pattern(200_000, 5);
    std::fs::write(&p, &model).unwrap();
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    let blocks_before = std::fs::metadata(vol.backing("f")).unwrap().blocks();
    // Punch: edges at odd offsets, whole blocks between, then the file's
    // last bytes (a final block cannot be a hole: it is rewritten).
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    for (off, len) in [(5000u64, 70_000u64), (100, 1), (150_000, 1 << 20)] {
        assert_eq!(fallocate(&f, punch, off, len), 0, "punch {off}+{len}");
        let end = ((off + len) as usize).min(model.len());
        model[off as usize..end].fill(0);
        assert_eq!(std::fs::read(&p).unwrap(), model, "after punch {off}+{len}");
    }
    assert_eq!(
        f.metadata().unwrap().len(),
        200_000,
        "punching changed the size"
    );
    let blocks_after = std::fs::metadata(vol.backing("f")).unwrap().blocks();
    assert!(
        blocks_after + (100_000 / 512) < blocks_before,
        "punched blocks still allocated: {blocks_before} -> {blocks_after}"
    );
    // Mode 0 grows the file and reserves its space; KEEP_SIZE only reserves.
    assert_eq!(fallocate(&f, 0, 300_000, 10_000), 0);
    assert_eq!(f.metadata().unwrap().len(), 310_000);
    assert_eq!(
        fallocate(&f, libc::FALLOC_FL_KEEP_SIZE, 310_000, 1 << 20),
        0
    );
    assert_eq!(f.metadata().unwrap().len(), 310_000);
    let reserved = std::fs::metadata(vol.backing("f")).unwrap().blocks() * 512;
    assert!(
        reserved > (1 << 20),
        "KEEP_SIZE reserved only {reserved} bytes"
    );
    // Unsupported modes say so.
    assert_eq!(
        fallocate(&f, libc::FALLOC_FL_COLLAPSE_RANGE, 0, 4096),
        libc::EOPNOTSUPP
    );
    model.resize(310_000, 0);
    drop(f);
    m.unmount();
    let m = vol.mount(&[]);
    assert_eq!(std::fs::read(&p).unwrap(), model);
    m.unmount();
    assert_fsck_clean(&vol, "fallocate");
}

#[test]
fn o_append_appends_even_from_two_handles() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let p = vol.path("log");
    std::fs::write(&p, b"0123456789").unwrap();
    let mut a = OpenOptions::new().append(true).open(&p).unwrap();
    let mut b = OpenOptions::new().append(true).open(&p).unwrap();
    let mut model = b"0123456789".to_vec();
    for i in 0..50u8 {
        let chunk = pattern(100 + i as usize * 37, i);
        if i % 2 == 0 {
            a.write_all(&chunk).unwrap()
        } else {
            b.write_all(&chunk).unwrap()
        }
        model.extend_from_slice(&chunk);
    }
    drop((a, b));
    assert_eq!(std::fs::read(&p).unwrap(), model);
    // pwrite on an O_APPEND fd appends on Linux, too.
    let f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_at(b"XYZ", 0).unwrap();
    model.extend_from_slice(b"XYZ");
    assert_eq!(std::fs::read(&p).unwrap(), model);
}

#[test]
fn open_flags_excl_trunc_and_access_modes() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let p = vol.path("f");
    std::fs::write(&p, pattern(10_000, 1)).unwrap();
    let e = OpenOptions::new().write(true).create_new(true).open(&p);
    assert_eq!(errno_of(e), libc::EEXIST);
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
    assert_eq!(
        std::fs::metadata(vol.backing("f")).unwrap().len(),
        cipher_size(0)
    );
    f.write_all(b"new").unwrap();
    drop(f);
    assert_eq!(std::fs::read(&p).unwrap(), b"new");
    // Write-only handle: partial-block writes still work (the backing
    // file is opened read-write underneath).
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.write_all_at(b"E", 1).unwrap();
    drop(f);
    assert_eq!(std::fs::read(&p).unwrap(), b"nEw");
    // Read-only handle refuses writes.
    let f = File::open(&p).unwrap();
    assert_eq!(errno_of(f.write_at(b"x", 0)), libc::EBADF);
    // O_CREAT without O_EXCL on an existing file opens it.
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&p)
        .unwrap();
    drop(f);
    assert_eq!(std::fs::read(&p).unwrap(), b"nEw");
}

#[test]
fn concurrent_writers_to_one_file_and_to_many() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let p = vol.path("shared");
    File::create(&p).unwrap();
    // Disjoint, unaligned regions that share blocks at their edges.
    let region = 50_001usize;
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let p = p.clone();
            s.spawn(move || {
                let f = OpenOptions::new().write(true).open(&p).unwrap();
                let data = pattern(region, t + 1);
                for chunk in 0..10 {
                    let lo = chunk * region / 10;
                    let hi = (chunk + 1) * region / 10;
                    f.write_all_at(&data[lo..hi], (t as usize * region + lo) as u64)
                        .unwrap();
                }
            });
        }
        for t in 0..4u8 {
            let p = vol.path(&format!("own{t}"));
            s.spawn(move || {
                let data = pattern(300_000 + t as usize, t);
                for _ in 0..3 {
                    std::fs::write(&p, &data).unwrap();
                    assert_eq!(std::fs::read(&p).unwrap(), data);
                }
            });
        }
    });
    let got = std::fs::read(&p).unwrap();
    assert_eq!(got.len(), 4 * region);
    for t in 0..4u8 {
        let r = t as usize * region;
        assert!(
            got[r..r + region] == pattern(region, t + 1)[..],
            "region {t}"
        );
    }
}

#[test]
fn hard_links_share_content_and_survive_unlink_and_rename() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    std::fs::create_dir(vol.path("d")).unwrap();
    std::fs::write(vol.path("a"), pattern(9000, 5)).unwrap();
    std::fs::hard_link(vol.path("a"), vol.path("d/b")).unwrap();
    let ma = std::fs::metadata(vol.path("a")).unwrap();
    let mb = std::fs::metadata(vol.path("d/b")).unwrap();
    assert_eq!(ma.ino(), mb.ino());
    assert_eq!(ma.nlink(), 2);
    let f = OpenOptions::new()
        .write(true)
        .open(vol.path("d/b"))
        .unwrap();
    f.write_all_at(b"through b", 4090).unwrap();
    drop(f);
    let mut model = pattern(9000, 5);
    model[4090..4099].copy_from_slice(b"through b");
    assert_eq!(std::fs::read(vol.path("a")).unwrap(), model);
    std::fs::rename(vol.path("a"), vol.path("renamed")).unwrap();
    std::fs::remove_file(vol.path("d/b")).unwrap();
    assert_eq!(std::fs::metadata(vol.path("renamed")).unwrap().nlink(), 1);
    assert_eq!(std::fs::read(vol.path("renamed")).unwrap(), model);
    m.unmount();
    let _m = vol.mount(&[]);
    assert_eq!(std::fs::read(vol.path("renamed")).unwrap(), model);
}

#[test]
fn rename_noreplace_exchange_and_overwrite() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    std::fs::write(vol.path("a"), b"AAAA").unwrap();
    std::fs::write(vol.path("b"), b"BBBBBBBB").unwrap();
    std::fs::create_dir(vol.path("dir")).unwrap();
    assert_eq!(
        renameat2(&vol.path("a"), &vol.path("b"), libc::RENAME_NOREPLACE),
        libc::EEXIST
    );
    assert_eq!(
        renameat2(&vol.path("a"), &vol.path("b"), libc::RENAME_EXCHANGE),
        0
    );
    assert_eq!(std::fs::read(vol.path("a")).unwrap(), b"BBBBBBBB");
    assert_eq!(std::fs::read(vol.path("b")).unwrap(), b"AAAA");
    assert_eq!(
        renameat2(&vol.path("a"), &vol.path("dir/c"), libc::RENAME_NOREPLACE),
        0
    );
    assert_eq!(std::fs::read(vol.path("dir/c")).unwrap(), b"BBBBBBBB");
    assert_eq!(
        renameat2(&vol.path("nope"), &vol.path("x"), libc::RENAME_EXCHANGE),
        libc::ENOENT
    );
    std::fs::rename(vol.path("b"), vol.path("dir/c")).unwrap();
    assert_eq!(std::fs::read(vol.path("dir/c")).unwrap(), b"AAAA");
    assert!(!vol.path("b").exists());
    // Directory over a non-empty directory fails.
    std::fs::create_dir(vol.path("e")).unwrap();
    assert_eq!(
        errno_of(std::fs::rename(vol.path("e"), vol.path("dir"))),
        libc::ENOTEMPTY
    );
}

#[test]
fn unlinked_open_files_keep_working_until_closed() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let p = vol.path("gone");
    std::fs::write(&p, pattern(10_000, 7)).unwrap();
    let mut f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    let backing = vol.backing("gone");
    assert!(backing.exists());
    std::fs::remove_file(&p).unwrap();
    assert!(!p.exists());
    assert!(!backing.exists());
    f.write_all_at(b"after unlink", 9995).unwrap();
    let mut model = pattern(10_000, 7);
    model.truncate(9995);
    model.extend_from_slice(b"after unlink");
    let mut got = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut got).unwrap();
    assert_eq!(got, model);
    let meta = f.metadata().unwrap();
    assert_eq!(meta.nlink(), 0);
    assert_eq!(meta.len(), model.len() as u64);
    f.set_len(3).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 3);
}

#[test]
fn symlinks_fifos_sockets_and_directories() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    std::fs::create_dir_all(vol.path("a/b/c")).unwrap();
    std::fs::write(vol.path("a/b/c/file"), b"deep").unwrap();
    std::os::unix::fs::symlink("b/c/file", vol.path("a/link")).unwrap();
    assert_eq!(
        std::fs::read_link(vol.path("a/link")).unwrap(),
        Path::new("b/c/file")
    );
    assert_eq!(std::fs::read(vol.path("a/link")).unwrap(), b"deep");
    assert!(
        std::fs::symlink_metadata(vol.path("a/link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Symlink targets are stored encrypted; lstat shows the plaintext
    // length.
    let stored = std::fs::read_link(vol.backing("a/link")).unwrap();
    assert_ne!(stored, Path::new("b/c/file"));
    assert!(
        !stored
            .as_os_str()
            .as_bytes()
            .windows(5)
            .any(|w| w == b"b/c/f")
    );
    assert_eq!(
        std::fs::symlink_metadata(vol.path("a/link")).unwrap().len(),
        8
    );
    let fifo = cpath(&vol.path("fifo"));
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    let ft = std::fs::metadata(vol.path("fifo")).unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&ft));
    assert_eq!(
        std::fs::metadata(vol.path("fifo"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    let sock = std::os::unix::net::UnixListener::bind(vol.path("sock")).unwrap();
    let ft = std::fs::metadata(vol.path("sock")).unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&ft));
    drop(sock);
    let mut names: Vec<_> = std::fs::read_dir(&vol.mountpoint)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // The volume config is hidden; with encrypted names its name is an
    // ordinary user name (stored encrypted, never the config's).
    assert_eq!(names, ["a", "fifo", "sock"]);
    assert!(!vol.path("kmsfs.conf").exists());
    let config = std::fs::read(vol.cipherdir.join("kmsfs.conf")).unwrap();
    std::fs::write(vol.path("kmsfs.conf"), b"x").unwrap();
    assert_eq!(std::fs::read(vol.path("kmsfs.conf")).unwrap(), b"x");
    assert_eq!(
        std::fs::read(vol.cipherdir.join("kmsfs.conf")).unwrap(),
        config
    );
    std::fs::remove_file(vol.path("kmsfs.conf")).unwrap();
    assert_eq!(
        errno_of(std::fs::remove_dir(vol.path("a"))),
        libc::ENOTEMPTY
    );
    std::fs::remove_dir_all(vol.path("a")).unwrap();
    assert!(!vol.backing("a").exists());
    // A directory with many entries lists completely.
    std::fs::create_dir(vol.path("many")).unwrap();
    for i in 0..2000 {
        File::create(vol.path(&format!("many/file-with-a-long-name-{i:05}"))).unwrap();
    }
    assert_eq!(std::fs::read_dir(vol.path("many")).unwrap().count(), 2000);
}

#[test]
fn metadata_mode_owner_times_and_statfs() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let p = vol.path("f");
    std::fs::write(&p, b"x").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4751)).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o4751);
    std::os::unix::fs::chown(&p, Some(1234), Some(5678)).unwrap();
    let m = std::fs::metadata(&p).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!(std::fs::metadata(vol.backing("f")).unwrap().uid(), 1234);
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_000_000_000, 123_456_789);
    let f = File::options().write(true).open(&p).unwrap();
    f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
    drop(f);
    let m = std::fs::metadata(&p).unwrap();
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_000_000_000, 123_456_789));
    assert_eq!(m.atime(), 1_000_000_000);
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let c = cpath(&vol.mountpoint);
    // SAFETY: valid path and struct.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    assert!(st.f_blocks > 0 && st.f_bsize > 0);
}

#[test]
fn files_created_by_another_user_belong_to_them() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&["-o", "allow_other"]);
    std::fs::create_dir(vol.path("pub")).unwrap();
    std::fs::set_permissions(vol.path("pub"), std::fs::Permissions::from_mode(0o777)).unwrap();
    // The volume's temporary directory must be traversable.
    std::fs::set_permissions(vol.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("echo hi > pub/f && mkdir pub/d && cat pub/f && touch /dev/null")
        .current_dir(&vol.mountpoint)
        .uid(4321)
        .gid(4321)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", mount::text(&out));
    assert_eq!(out.stdout, b"hi\n");
    for n in ["pub/f", "pub/d"] {
        let m = std::fs::metadata(vol.backing(n)).unwrap();
        assert_eq!((m.uid(), m.gid()), (4321, 4321), "{n}");
    }
    // Permissions are enforced for other users.
    std::fs::write(vol.path("private"), b"secret").unwrap();
    std::fs::set_permissions(vol.path("private"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new("cat")
        .arg(vol.path("private"))
        .uid(4321)
        .gid(4321)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

use std::os::unix::process::CommandExt;

#[test]
fn mmap_reads_and_shared_writes() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let p = vol.path("mapped");
    let len = 3 * 4096 + 100;
    std::fs::write(&p, pattern(len, 8)).unwrap();
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    // SAFETY: a fresh shared mapping of a file we keep open; unmapped below.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED);
    // SAFETY: the mapping is `len` bytes long and nothing else aliases it.
    let map = unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) };
    assert!(map[..] == pattern(len, 8)[..]);
    map[4095..4101].copy_from_slice(b"MMAP!!");
    map[len - 1] = b'Z';
    // SAFETY: valid mapping.
    assert_eq!(unsafe { libc::msync(ptr, len, libc::MS_SYNC) }, 0);
    // SAFETY: valid mapping, not used afterwards.
    assert_eq!(unsafe { libc::munmap(ptr, len) }, 0);
    drop(f);
    let mut model = pattern(len, 8);
    model[4095..4101].copy_from_slice(b"MMAP!!");
    model[len - 1] = b'Z';
    assert_eq!(std::fs::read(&p).unwrap(), model);
    m.unmount();
    let _m = vol.mount(&[]);
    assert_eq!(
        std::fs::read(&p).unwrap(),
        model,
        "mmap writes reached the backing file"
    );
}

#[test]
fn seek_data_and_hole() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let p = vol.path("s");
    std::fs::write(&p, pattern(10_000, 1)).unwrap();
    let f = File::open(&p).unwrap();
    // SAFETY: valid fd.
    let data = unsafe { libc::lseek(f.as_raw_fd(), 100, libc::SEEK_DATA) };
    let hole = unsafe { libc::lseek(f.as_raw_fd(), 100, libc::SEEK_HOLE) };
    let past = unsafe { libc::lseek(f.as_raw_fd(), 20_000, libc::SEEK_DATA) };
    assert_eq!((data, hole, past), (100, 10_000, -1));
}

#[test]
fn xattrs_on_files_and_directories() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    std::fs::write(vol.path("f"), b"").unwrap();
    std::fs::create_dir(vol.path("d")).unwrap();
    for n in ["f", "d"] {
        let p = cpath(&vol.path(n));
        let set = |name: &std::ffi::CStr, v: &[u8], flags: i32| {
            // SAFETY: valid strings and buffer.
            let r = unsafe {
                libc::setxattr(p.as_ptr(), name.as_ptr(), v.as_ptr().cast(), v.len(), flags)
            };
            if r == 0 {
                0
            } else {
                std::io::Error::last_os_error().raw_os_error().unwrap()
            }
        };
        let get = |name: &std::ffi::CStr, size: usize| -> Result<Vec<u8>, i32> {
            let mut buf = vec![0u8; size];
            // SAFETY: valid strings and buffer.
            let r =
                unsafe { libc::getxattr(p.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), size) };
            if r < 0 {
                return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
            }
            buf.truncate(r as usize);
            Ok(buf)
        };
        assert_eq!(set(c"user.color", b"a secret blue value", 0), 0);
        assert_eq!(get(c"user.color", 100).unwrap(), b"a secret blue value");
        // Size query and a too-small buffer.
        // SAFETY: null buffer with size 0 asks for the size.
        let size =
            unsafe { libc::getxattr(p.as_ptr(), c"user.color".as_ptr(), std::ptr::null_mut(), 0) };
        assert_eq!(size, 19);
        assert_eq!(get(c"user.color", 5), Err(libc::ERANGE));
        assert_eq!(set(c"user.color", b"x", libc::XATTR_CREATE), libc::EEXIST);
        assert_eq!(set(c"user.none", b"x", libc::XATTR_REPLACE), libc::ENODATA);
        assert_eq!(get(c"user.none", 10), Err(libc::ENODATA));
        // The backing value is encrypted.
        let bp = cpath(&vol.backing(n));
        let mut raw = vec![0u8; 256];
        // SAFETY: valid strings and buffer.
        let r = unsafe {
            libc::getxattr(
                bp.as_ptr(),
                c"user.color".as_ptr(),
                raw.as_mut_ptr().cast(),
                256,
            )
        };
        assert_eq!(r, 19 + 29);
        raw.truncate(r as usize);
        assert!(!raw.windows(6).any(|w| w == b"secret"));
        let mut list = vec![0u8; 256];
        // SAFETY: valid string and buffer.
        let r = unsafe { libc::listxattr(p.as_ptr(), list.as_mut_ptr().cast(), 256) };
        list.truncate(r as usize);
        assert!(list.split(|b| *b == 0).any(|n| n == b"user.color"));
        // SAFETY: valid strings.
        assert_eq!(
            unsafe { libc::removexattr(p.as_ptr(), c"user.color".as_ptr()) },
            0
        );
        assert_eq!(get(c"user.color", 100), Err(libc::ENODATA));
        assert_eq!(set(c"user.keep", b"kept", 0), 0);
    }
    m.unmount();
    let _m = vol.mount(&[]);
    let p = cpath(&vol.path("f"));
    let mut buf = [0u8; 16];
    // SAFETY: valid strings and buffer.
    let r = unsafe {
        libc::getxattr(
            p.as_ptr(),
            c"user.keep".as_ptr(),
            buf.as_mut_ptr().cast(),
            16,
        )
    };
    assert_eq!(&buf[..r as usize], b"kept");
}

#[test]
fn status_reports_cache_and_kmsd_figures() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    for i in 0..5 {
        std::fs::write(vol.path(&format!("f{i}")), b"x").unwrap();
    }
    m.unmount();
    let _m = vol.mount(&[]);
    for i in 0..5 {
        std::fs::read(vol.path(&format!("f{i}"))).unwrap();
    }
    let s = vol.status();
    assert_eq!(s["cache"]["misses"], 5, "{s}");
    assert_eq!(s["cache"]["entries"], 5, "{s}");
    assert!(s["kmsd"]["calls"].as_u64().unwrap() >= 5, "{s}");
    assert_eq!(s["kmsd"]["errors"], 0, "{s}");
    assert_eq!(s["key_arn"], vol.key_arn.as_str());
    let out = vol
        .kmsfs()
        .arg("status")
        .arg(&vol.mountpoint)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("misses 5"), "{text}");
    assert!(text.contains("evictions 0"), "{text}");
}

#[test]
fn access_on_an_owner_only_mount() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let p = vol.path("ro");
    std::fs::write(&p, b"x").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    let c = cpath(&p);
    let access = |mask| {
        // SAFETY: valid path.
        if unsafe { libc::access(c.as_ptr(), mask) } == 0 {
            0
        } else {
            std::io::Error::last_os_error().raw_os_error().unwrap()
        }
    };
    // Root may read and write anything, but execute only what has an x bit.
    assert_eq!(access(libc::R_OK | libc::W_OK), 0);
    assert_eq!(access(libc::X_OK), libc::EACCES);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o544)).unwrap();
    assert_eq!(access(libc::X_OK), 0);
    let missing = cpath(&vol.path("missing"));
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::access(missing.as_ptr(), libc::F_OK) }, -1);
}

/// Writes `chunk` to `f` until something fails (write, fsync or close);
/// returns the errno and how many bytes write(2) accepted.
/// fsck of the (unmounted) volume finds nothing wrong.
fn assert_fsck_clean(vol: &Volume, what: &str) {
    let out = vol.fsck();
    assert!(out.status.success(), "{what}: fsck: {}", mount::text(&out));
}

/// From page `skip` on, each 4 KiB page of `now` is what a write that
/// failed part-way meant to leave there (`intended`) or zeros: never
/// other bytes.
fn assert_pages_intended_or_zero(now: &[u8], intended: &[u8], skip: usize, what: &str) {
    for (i, page) in now.chunks(4096).enumerate().skip(skip) {
        let want = &intended[i * 4096..i * 4096 + page.len()];
        assert!(
            page == want || page.iter().all(|b| *b == 0),
            "{what}: page {i} is garbled"
        );
    }
}

fn write_until_failure(path: &Path, chunk: &[u8], limit: u64) -> (i32, u64) {
    let mut f = File::create(path).expect("create the filler");
    let mut accepted = 0u64;
    while accepted < limit {
        match f.write(chunk) {
            Ok(n) => accepted += n as u64,
            Err(e) => return (e.raw_os_error().unwrap_or(-1), accepted),
        }
        if accepted.is_multiple_of(1 << 20)
            && let Err(e) = f.sync_data()
        {
            return (e.raw_os_error().unwrap_or(-1), accepted);
        }
    }
    match f.sync_all() {
        Ok(()) => (0, accepted),
        Err(e) => (e.raw_os_error().unwrap_or(-1), accepted),
    }
}

#[test]
fn a_full_disk_gives_enospc_and_loses_nothing_acknowledged() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let (vol, _disk) = Volume::create_on_tmpfs(&kmsd, 4096);
    for args in [&[][..], &["-o", "no_writeback_cache"][..]] {
        let m = vol.mount(args);
        let keep = pattern(300_001, 7);
        std::fs::write(vol.path("keep"), &keep).unwrap();
        File::open(vol.path("keep")).unwrap().sync_all().unwrap();
        // An appending log whose last append will not fit.
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(vol.path("log"))
            .unwrap();
        log.write_all(&pattern(5000, 9)).unwrap();
        log.sync_all().unwrap();

        let (errno, accepted) = write_until_failure(&vol.path("fill"), &[0x5a; 65536], 16 << 20);
        assert_eq!(errno, libc::ENOSPC, "{args:?}: after {accepted} bytes");
        assert!(
            accepted < 8 << 20,
            "{args:?}: {accepted} bytes fit on 4 MiB"
        );
        // The failed write was rolled back, so what is free is less than
        // one write request (at most 1 MiB): a 2 MiB append fails, and
        // leaves the log as it was.
        let r = log
            .write_all(&pattern(2 << 20, 10))
            .and_then(|()| log.sync_all());
        assert_eq!(errno_of(r), libc::ENOSPC, "{args:?}");
        drop(log);
        std::fs::remove_file(vol.path("fill")).unwrap();
        m.unmount();

        // Remounted (nothing cached): what was acknowledged is intact and
        // every backing file is whole.
        let m = vol.mount(args);
        assert_eq!(std::fs::read(vol.path("keep")).unwrap(), keep, "{args:?}");
        // The log holds its acknowledged bytes. Of the failed append, each
        // 4 KiB page is there or reads as zeros (the kernel's writeback may
        // land requests after the one that failed): never other bytes.
        // Without the writeback cache, requests come in order, so what is
        // there is a prefix of the append.
        let log_now = std::fs::read(vol.path("log"))
            .unwrap_or_else(|e| panic!("{args:?}: read log: {e}; {}", vol.log()));
        let mut whole = pattern(5000, 9);
        whole.extend(pattern(2 << 20, 10));
        assert!(
            log_now.len() >= 5000 && log_now.len() <= whole.len(),
            "{args:?}"
        );
        assert_eq!(&log_now[..5000], &whole[..5000], "{args:?}");
        assert_pages_intended_or_zero(&log_now, &whole, 2, &format!("{args:?} log"));
        if !args.is_empty() {
            assert!(log_now == whole[..log_now.len()], "{args:?}: not a prefix");
        }
        m.unmount();
        assert_fsck_clean(&vol, &format!("{args:?}"));
        // The space is free again: a file the size of the lost append fits.
        let m = vol.mount(args);
        std::fs::write(vol.path("after"), pattern(200_000, 11)).unwrap();
        assert_eq!(
            std::fs::read(vol.path("after")).unwrap(),
            pattern(200_000, 11)
        );
        for f in ["after", "log", "keep"] {
            std::fs::remove_file(vol.path(f)).unwrap();
        }
        m.unmount();
    }
}

/// Writing into a hole needs new space while the blocks around it are
/// stored: on a full disk the write fails with ENOSPC and leaves no torn
/// block (each page of it is new data or zeros; fsck stays clean).
#[test]
fn a_full_disk_write_into_a_hole_tears_no_block() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let (vol, _disk) = Volume::create_on_tmpfs(&kmsd, 4096);
    for args in [&[][..], &["-o", "no_writeback_cache"][..]] {
        let m = vol.mount(args);
        let hole_end: u64 = 3 << 20;
        let mut sparse = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(vol.path("sparse"))
            .unwrap();
        sparse.write_all(&pattern(5000, 1)).unwrap();
        sparse.seek(SeekFrom::Start(hole_end)).unwrap();
        sparse.write_all(&pattern(5000, 2)).unwrap();
        sparse.sync_all().unwrap();

        let (errno, _) = write_until_failure(&vol.path("fill"), &[0x5a; 65536], 16 << 20);
        assert_eq!(errno, libc::ENOSPC, "{args:?}");
        // Less than one request (1 MiB) is free: 2 MiB into the hole
        // cannot all fit.
        let at = 8192u64;
        let fill = pattern(2 << 20, 3);
        sparse.seek(SeekFrom::Start(at)).unwrap();
        let r = sparse.write_all(&fill).and_then(|()| sparse.sync_all());
        assert_eq!(errno_of(r), libc::ENOSPC, "{args:?}");
        drop(sparse);
        std::fs::remove_file(vol.path("fill")).unwrap();
        m.unmount();
        assert_fsck_clean(&vol, &format!("{args:?}"));
        let m = vol.mount(args);
        let now = std::fs::read(vol.path("sparse"))
            .unwrap_or_else(|e| panic!("{args:?}: read: {e}; {}", vol.log()));
        let mut whole = pattern(5000, 1);
        whole.resize(hole_end as usize, 0);
        whole.extend(pattern(5000, 2));
        assert_eq!(now.len(), whole.len(), "{args:?}");
        assert_eq!(&now[..5000], &whole[..5000], "{args:?}");
        assert_eq!(
            &now[hole_end as usize..],
            &whole[hole_end as usize..],
            "{args:?}"
        );
        let mut intended = whole.clone();
        intended[at as usize..at as usize + fill.len()].copy_from_slice(&fill);
        assert_pages_intended_or_zero(&now, &intended, 2, &format!("{args:?} hole"));
        std::fs::remove_file(vol.path("sparse")).unwrap();
        m.unmount();
    }
}
