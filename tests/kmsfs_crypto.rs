//! Mounted end-to-end tests of what kmsfs promises cryptographically and
//! about kmsd: the backing files never hold plaintext, every tampering is
//! an `EIO` with one log line naming file and block, and kmsd being absent,
//! stopped, restarted, denying or disabled gives clear errors at mount time
//! and `EIO`/`EACCES` (not a dead mount) while mounted.

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use kmsd_client::{DisableKeyRequest, EnableKeyRequest, PutKeyPolicyRequest};
use mount::{Volume, is_mounted, text, tree_contains};
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

const HEADER: u64 = 512;
const CBS: u64 = 4124;

fn block_at(i: u64) -> u64 {
    HEADER + i * CBS
}

fn errno_of<T>(r: std::io::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// Evicts the kernel's cached inodes and pages, so the next open asks
/// kmsfs (and kmsfs asks kmsd) again.
fn drop_caches() {
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

fn flip(path: &Path, off: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, off).unwrap();
}

fn read_range(path: &Path, off: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, off)?;
    Ok(buf)
}

#[test]
fn backing_files_never_contain_the_plaintext() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let marker = b"KMSFS-PLAINTEXT-MARKER-3141592653589793";
    let mut data = Vec::new();
    while data.len() < 3 << 20 {
        data.extend_from_slice(marker);
    }
    std::fs::write(vol.path("big"), &data).unwrap();
    std::fs::write(vol.path("small"), &marker[..]).unwrap();
    // Low-entropy content too: a block of one repeated byte.
    std::fs::write(
        vol.path("zeros-and-a"),
        [vec![b'A'; 8192], vec![0; 8192]].concat(),
    )
    .unwrap();
    // Appends, overwrites in place, holes and truncation.
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(vol.path("mixed"))
        .unwrap();
    for i in 0..20u64 {
        f.write_all_at(marker, i * 5000).unwrap();
    }
    f.write_all_at(marker, 10 << 20).unwrap();
    f.set_len(7 << 20).unwrap();
    f.write_all_at(marker, 3).unwrap();
    drop(f);
    let p =
        std::ffi::CString::new(vol.path("small").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: valid strings and buffer.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            c"user.note".as_ptr(),
            marker.as_ptr().cast(),
            marker.len(),
            0,
        )
    };
    assert_eq!(r, 0);
    // The plaintext is visible through the mount...
    assert!(
        std::fs::read(vol.path("big"))
            .unwrap()
            .windows(marker.len())
            .any(|w| w == marker)
    );
    m.unmount();
    // ...and nowhere in the backing directory.
    assert_eq!(tree_contains(&vol.cipherdir, marker), None);
    assert_eq!(tree_contains(&vol.cipherdir, &marker[..16]), None);
    assert_eq!(tree_contains(&vol.cipherdir, &[b'A'; 64]), None);
    let bp =
        std::ffi::CString::new(vol.backing("small").into_os_string().into_encoded_bytes()).unwrap();
    let mut raw = vec![0u8; 256];
    // SAFETY: valid strings and buffer.
    let n = unsafe {
        libc::getxattr(
            bp.as_ptr(),
            c"user.note".as_ptr(),
            raw.as_mut_ptr().cast(),
            256,
        )
    };
    assert!(n > 0);
    assert!(!raw[..n as usize].windows(16).any(|w| w == &marker[..16]));
}

/// One tampering case: what is done to the backing file and which block
/// (if any) the log line must name.
struct Case {
    name: &'static str,
    tamper: fn(&Volume, &Path),
    /// The failing block the log names; `None` for a damaged header/size.
    block: Option<u64>,
}

const SIZE: usize = 3 * 4096 + 100;

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "body_bit",
            tamper: |_, p| flip(p, block_at(1) + 12 + 100),
            block: Some(1),
        },
        Case {
            name: "nonce_bit",
            tamper: |_, p| flip(p, block_at(0) + 3),
            block: Some(0),
        },
        Case {
            name: "tag_bit",
            tamper: |_, p| flip(p, block_at(2) + CBS - 1),
            block: Some(2),
        },
        Case {
            name: "last_partial_bit",
            tamper: |_, p| flip(p, block_at(3) + 40),
            block: Some(3),
        },
        Case {
            name: "header_magic",
            tamper: |_, p| flip(p, 0),
            block: None,
        },
        Case {
            name: "header_file_id",
            tamper: |_, p| flip(p, 10),
            block: None,
        },
        Case {
            name: "header_wrapped_key",
            tamper: |_, p| flip(p, 40),
            block: None,
        },
        Case {
            name: "header_mac",
            tamper: |_, p| flip(p, 500),
            block: None,
        },
        Case {
            name: "cut_inside_last_block",
            tamper: |_, p| {
                let f = OpenOptions::new().write(true).open(p).unwrap();
                let len = f.metadata().unwrap().len();
                f.set_len(len - 10).unwrap();
            },
            block: Some(3),
        },
        Case {
            name: "drop_last_block",
            tamper: |_, p| {
                OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(block_at(3))
                    .unwrap()
            },
            block: Some(2),
        },
        Case {
            name: "append_a_block",
            tamper: |_, p| {
                let b1 = read_range(p, block_at(1), CBS).unwrap();
                let f = OpenOptions::new().append(true).open(p).unwrap();
                f.write_all_at(&b1, 0).unwrap();
            },
            block: Some(3),
        },
        Case {
            name: "swap_blocks",
            tamper: |_, p| {
                let b0 = read_range(p, block_at(0), CBS).unwrap();
                let b1 = read_range(p, block_at(1), CBS).unwrap();
                let f = OpenOptions::new().write(true).open(p).unwrap();
                f.write_all_at(&b1, block_at(0)).unwrap();
                f.write_all_at(&b0, block_at(1)).unwrap();
            },
            block: Some(0),
        },
        Case {
            name: "block_from_another_file",
            tamper: |v, p| {
                let b1 = read_range(&v.backing("donor"), block_at(1), CBS).unwrap();
                OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .write_all_at(&b1, block_at(1))
                    .unwrap();
            },
            block: Some(1),
        },
        Case {
            name: "header_from_another_file",
            tamper: |v, p| {
                let h = read_range(&v.backing("donor"), 0, HEADER).unwrap();
                OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .write_all_at(&h, 0)
                    .unwrap();
            },
            block: Some(0),
        },
        Case {
            name: "zeroed_final_block",
            tamper: |_, p| {
                OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .write_all_at(&[0u8; 128], block_at(3))
                    .unwrap()
            },
            block: Some(3),
        },
        Case {
            name: "header_only",
            tamper: |_, p| {
                OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(HEADER)
                    .unwrap()
            },
            block: None,
        },
    ]
}

#[test]
fn every_tampering_is_eio_with_one_log_line_naming_file_and_block() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let cases = cases();
    let m = vol.mount(&[]);
    std::fs::write(vol.path("donor"), pattern(SIZE, 200)).unwrap();
    for (i, c) in cases.iter().enumerate() {
        std::fs::write(vol.path(c.name), pattern(SIZE, i as u8)).unwrap();
    }
    std::fs::write(vol.path("zeroed_middle_block"), pattern(SIZE, 99)).unwrap();
    m.unmount();
    for c in &cases {
        (c.tamper)(&vol, &vol.backing(c.name));
    }
    // A full non-final block of zeros is a hole by design (FORMAT.md
    // "Holes"): it reads as zeros, not as an error.
    OpenOptions::new()
        .write(true)
        .open(vol.backing("zeroed_middle_block"))
        .unwrap()
        .write_all_at(&vec![0u8; CBS as usize], block_at(1))
        .unwrap();
    let _m = vol.mount(&[]);
    for c in &cases {
        let r = std::fs::read(vol.path(c.name));
        assert_eq!(errno_of(r), libc::EIO, "case {}", c.name);
    }
    // Undamaged blocks before the damage still read.
    assert_eq!(
        read_range(&vol.path("body_bit"), 0, 4096).unwrap(),
        pattern(SIZE, 0)[..4096]
    );
    let mut want = pattern(SIZE, 99);
    want[4096..8192].fill(0);
    assert_eq!(
        std::fs::read(vol.path("zeroed_middle_block")).unwrap(),
        want
    );
    assert_eq!(
        std::fs::read(vol.path("donor")).unwrap(),
        pattern(SIZE, 200)
    );
    let log = vol.log();
    for c in &cases {
        let lines: Vec<_> = log
            .lines()
            .filter(|l| l.contains(&format!("/{}:", c.name)))
            .collect();
        assert!(!lines.is_empty(), "no log line for {}:\n{log}", c.name);
        if let Some(b) = c.block {
            assert!(
                lines.iter().any(|l| l.contains(&format!("block {b} "))),
                "log for {} does not name block {b}: {lines:?}",
                c.name
            );
        }
        assert!(lines.iter().all(|l| l.contains("EIO")), "{lines:?}");
    }
    // The mount is still up and healthy.
    std::fs::write(vol.path("after"), b"fine").unwrap();
    assert_eq!(std::fs::read(vol.path("after")).unwrap(), b"fine");
    let s = vol.status();
    assert!(
        s["fs"]["damaged_reads"].as_u64().unwrap() >= cases.len() as u64,
        "{s}"
    );
}

#[test]
fn a_file_from_another_volume_does_not_open() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let a = Volume::create(&kmsd);
    // Same kmsd key, different volume: the key alone does not make a file
    // valid elsewhere.
    let b = Volume::create_with_key(&kmsd.socket, &a.key_arn);
    let m = b.mount(&[]);
    std::fs::write(b.path("f"), pattern(10_000, 1)).unwrap();
    m.unmount();
    std::fs::copy(b.backing("f"), a.backing("stranger")).unwrap();
    let _m = a.mount(&[]);
    assert_eq!(errno_of(std::fs::read(a.path("stranger"))), libc::EIO);
    assert!(a.log().contains("/stranger:"), "{}", a.log());
}

#[test]
fn mount_fails_clearly_when_kmsd_is_absent() {
    require_fuse!();
    let mut kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    kmsd.terminate();
    let out = vol.try_mount(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach"), "{}", text(&out));
    assert!(
        err.contains(&common::aws_mode::location(&vol.socket)),
        "{}",
        text(&out)
    );
    assert!(!is_mounted(&vol.mountpoint));
}

#[test]
fn mount_fails_clearly_for_a_disabled_key_a_denied_caller_a_wrong_pin_and_a_bad_config() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let client = kmsd.client();
    client
        .call(DisableKeyRequest {
            key_id: vol.key_arn.clone(),
        })
        .unwrap();
    let out = vol.try_mount(&[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DisabledException"),
        "{}",
        text(&out)
    );
    assert!(!is_mounted(&vol.mountpoint));
    client
        .call(EnableKeyRequest {
            key_id: vol.key_arn.clone(),
        })
        .unwrap();

    let deny = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "all", "Effect": "Allow", "Principal": {"Unix": "account"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "no decrypt for root", "Effect": "Deny", "Principal": {"Unix": "uid:0"},
             "Action": ["kms:Decrypt"], "Resource": "*"}
        ]
    });
    client
        .call(PutKeyPolicyRequest {
            key_id: vol.key_arn.clone(),
            policy_name: None,
            policy: deny.to_string(),
            bypass_policy_lockout_safety_check: true,
        })
        .unwrap();
    let out = vol.try_mount(&[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("AccessDenied"),
        "{}",
        text(&out)
    );
    assert!(!is_mounted(&vol.mountpoint));

    // A volume pinned to another key is refused.
    let vol2 = Volume::create(&kmsd);
    let out = vol2.try_mount(&["--key-id", &vol.key_arn]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bound to KMS key"),
        "{}",
        text(&out)
    );
    let _ok = vol2.mount(&["--key-id", &vol2.key_arn]);
    drop(_ok);

    // An edited config does not authenticate; a missing one is not a volume.
    let conf = vol2.cipherdir.join("kmsfs.conf");
    let text_conf = std::fs::read_to_string(&conf).unwrap();
    let edited = text_conf.replacen("\"block_size\": 4096", "\"block_size\": 4096 ", 1);
    let v: serde_json::Value = serde_json::from_str(&edited).unwrap();
    let mut v2 = v.clone();
    let id = v["volume_id"].as_str().unwrap();
    let other = format!(
        "{}{}",
        if id.starts_with('0') { "1" } else { "0" },
        &id[1..]
    );
    v2["volume_id"] = serde_json::Value::String(other);
    std::fs::write(&conf, serde_json::to_string_pretty(&v2).unwrap()).unwrap();
    let out = vol2.try_mount(&[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("kmsfs.conf"),
        "{}",
        text(&out)
    );
    std::fs::remove_file(&conf).unwrap();
    let out = vol2.try_mount(&[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a kmsfs volume"),
        "{}",
        text(&out)
    );
    assert!(!is_mounted(&vol2.mountpoint));
}

/// Retries `f` until it succeeds or `secs` pass.
fn eventually<T>(secs: u64, mut f: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn kmsd_stopped_while_mounted_gives_eio_then_recovers() {
    require_fuse!();
    let mut kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    // No pool and no cache, so every new file and every open asks kmsd.
    let _m = vol.mount(&["--pool-size", "0", "--cache-capacity", "0"]);
    std::fs::write(vol.path("before"), b"written while kmsd ran").unwrap();
    let during = vol.backing("during");
    kmsd.terminate();
    drop_caches();
    // A file opened for writing needs its key at open (the kernel may
    // send the writes after write(2) returned): creating fails, and leaves
    // nothing behind.
    assert_eq!(
        errno_of(std::fs::File::create(vol.path("during"))),
        libc::EIO
    );
    assert!(!during.exists());
    assert_eq!(errno_of(std::fs::read(vol.path("before"))), libc::EIO);
    let append = std::fs::OpenOptions::new()
        .append(true)
        .open(vol.path("before"));
    assert_eq!(errno_of(append), libc::EIO);
    // The mount is alive: listing and metadata work without kmsd.
    let names: Vec<_> = std::fs::read_dir(&vol.mountpoint)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["before"]);
    assert_eq!(std::fs::metadata(vol.path("before")).unwrap().len(), 22);
    kmsd.spawn();
    eventually(20, || std::fs::write(vol.path("during"), b"after restart")).unwrap();
    assert_eq!(std::fs::read(vol.path("during")).unwrap(), b"after restart");
    drop_caches();
    let got = eventually(20, || std::fs::read(vol.path("before"))).unwrap();
    assert_eq!(got, b"written while kmsd ran");
    let s = vol.status();
    assert!(s["kmsd"]["errors"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["fs"]["key_errors"].as_u64().unwrap() >= 1, "{s}");
}

#[test]
fn kmsd_restarted_while_mounted_is_transparent_for_cached_keys() {
    require_fuse!();
    let mut kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    std::fs::write(vol.path("a"), pattern(50_000, 3)).unwrap();
    kmsd.terminate();
    kmsd.spawn();
    // New files and reopened files work across the restart.
    eventually(20, || std::fs::write(vol.path("b"), pattern(5000, 4))).unwrap();
    drop_caches();
    assert_eq!(std::fs::read(vol.path("a")).unwrap(), pattern(50_000, 3));
    assert_eq!(std::fs::read(vol.path("b")).unwrap(), pattern(5000, 4));
}

#[test]
fn a_key_disabled_while_mounted_gives_eacces() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&["--pool-size", "0", "--cache-capacity", "0"]);
    std::fs::write(vol.path("old"), b"old content").unwrap();
    let client = kmsd.client();
    client
        .call(DisableKeyRequest {
            key_id: vol.key_arn.clone(),
        })
        .unwrap();
    drop_caches();
    assert_eq!(
        errno_of(std::fs::File::create(vol.path("new"))),
        libc::EACCES
    );
    let w = std::fs::OpenOptions::new()
        .write(true)
        .open(vol.path("old"));
    assert_eq!(errno_of(w), libc::EACCES);
    let r = std::fs::File::open(vol.path("old")).and_then(|mut f| {
        let mut s = String::new();
        f.read_to_string(&mut s).map(|_| s)
    });
    assert_eq!(errno_of(r), libc::EACCES);
    client
        .call(EnableKeyRequest {
            key_id: vol.key_arn.clone(),
        })
        .unwrap();
    assert_eq!(std::fs::read(vol.path("old")).unwrap(), b"old content");
    std::fs::write(vol.path("new"), b"now").unwrap();
}
