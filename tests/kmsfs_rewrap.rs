//! `kmsfs rewrap`: a volume moved to another KMS key, or to the current
//! version of its key, without reading or writing a content block; killed
//! with SIGKILL at random moments it leaves every file readable and a
//! second run finishes the job.

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use kmsd_client::*;
use mount::Volume;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `n` files in 20 directories, some empty, one with a long name; their
/// contents by path.
fn populate(vol: &Volume, n: usize) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for d in 0..20 {
        std::fs::create_dir(vol.path(&format!("d{d}"))).unwrap();
    }
    for i in 0..n {
        let rel = PathBuf::from(format!("d{}/file-{i}", i % 20));
        let data = if i % 50 == 0 {
            Vec::new()
        } else {
            format!("content of file {i} ")
                .repeat(1 + i % 300)
                .into_bytes()
        };
        std::fs::write(vol.mountpoint.join(&rel), &data).unwrap();
        files.insert(rel, data);
    }
    let long = PathBuf::from("d0").join("L".repeat(250));
    std::fs::write(vol.mountpoint.join(&long), b"long").unwrap();
    files.insert(long, b"long".to_vec());
    files
}

fn check_contents(vol: &Volume, files: &BTreeMap<PathBuf, Vec<u8>>) {
    for (rel, data) in files {
        let got = std::fs::read(vol.mountpoint.join(rel))
            .unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
        assert!(got == *data, "{} differs", rel.display());
    }
}

fn rewrap_cmd(vol: &Volume, to: Option<&str>) -> std::process::Command {
    let mut c = vol.kmsfs();
    c.arg("rewrap")
        .arg(&vol.cipherdir)
        .arg("--socket")
        .arg(&vol.socket);
    if let Some(k) = to {
        c.arg("--to-key").arg(k);
    }
    c
}

fn config(vol: &Volume) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(vol.cipherdir.join("kmsfs.conf")).unwrap()).unwrap()
}

fn disable(kmsd: &KmsdProcess, key: &str) {
    kmsd.client()
        .call(DisableKeyRequest {
            key_id: key.to_string(),
        })
        .unwrap();
}

fn assert_fsck_clean(vol: &Volume, when: &str) {
    let out = vol.fsck();
    assert!(out.status.success(), "{when}: {}", mount::text(&out));
}

/// Every backing file's bytes after its header, by backing path.
fn bodies(vol: &Volume) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![vol.cipherdir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.path().symlink_metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && m.len() >= 540 {
                out.insert(e.path(), std::fs::read(e.path()).unwrap()[512..].to_vec());
            }
        }
    }
    out
}

#[test]
fn rewrap_moves_a_volume_to_another_key_without_touching_content() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let files = populate(&vol, 2000);
    drop(m);
    let before = bodies(&vol);
    let b = kmsd.create_key("rewrap destination");
    let out = rewrap_cmd(&vol, Some(&b.key_id)).output().unwrap();
    let text = mount::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("2001 files rewrapped"), "{text}");
    eprintln!("rewrap --to-key: {text}");
    let c = config(&vol);
    assert_eq!(c["key_arn"], b.arn.as_str());
    assert!(c.get("rewrap_from").is_none(), "{c}");
    // Content blocks untouched.
    assert_eq!(bodies(&vol), before);
    // The old key is no longer needed.
    disable(&kmsd, &vol.key_arn);
    assert_fsck_clean(&vol, "with the old key disabled");
    let m = vol.mount(&["--key-id", &b.arn]);
    check_contents(&vol, &files);
    std::fs::write(vol.path("d1/new"), b"after the move").unwrap();
    drop(m);
}

#[test]
fn rewrap_after_rotation_works_while_mounted() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&[]);
    let files = populate(&vol, 300);
    let open = std::fs::File::open(vol.path("d1/file-1")).unwrap();
    kmsd.client()
        .call(RotateKeyOnDemandRequest {
            key_id: vol.key_arn.clone(),
        })
        .unwrap();
    let out = rewrap_cmd(&vol, None).output().unwrap();
    assert!(out.status.success(), "{}", mount::text(&out));
    assert!(mount::text(&out).contains("301 files rewrapped"));
    check_contents(&vol, &files);
    let mut b = Vec::new();
    std::io::Read::read_to_end(&mut &open, &mut b).unwrap();
    assert_eq!(b, files[&PathBuf::from("d1/file-1")]);
}

#[test]
fn rewrap_killed_at_random_moments_finishes_on_a_second_run() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let files = populate(&vol, 3000);
    drop(m);
    let b = kmsd.create_key("rewrap destination");
    let mut seed = Instant::now().elapsed().as_nanos() as u64 | 1;
    let mut kills = 0;
    for _ in 0..5 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = Duration::from_millis(20 + seed % 400);
        let mut child = rewrap_cmd(&vol, Some(&b.key_id))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        // Whatever the moment, every file is readable: fsck decrypts all.
        assert_fsck_clean(&vol, &format!("after a kill at {wait:?}"));
    }
    eprintln!("{kills} rewraps killed");
    assert!(kills > 0, "no run was interrupted");
    let out = rewrap_cmd(&vol, Some(&b.key_id)).output().unwrap();
    assert!(out.status.success(), "{}", mount::text(&out));
    assert!(config(&vol).get("rewrap_from").is_none());
    disable(&kmsd, &vol.key_arn);
    assert_fsck_clean(&vol, "with the old key disabled");
    let _m = vol.mount(&[]);
    check_contents(&vol, &files);
}

#[test]
fn a_forged_rewrap_from_is_refused() {
    require_fuse!();
    use base64::Engine;
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    // Someone with a key of their own names it as the key the volume
    // "moves from", with a config key of their making under it.
    let c = kmsd.create_key("attacker");
    let mut conf = config(&vol);
    let ctx = EncryptionContext::from([
        (
            "kmsfs:volume".to_string(),
            conf["volume_id"].as_str().unwrap().to_string(),
        ),
        ("kmsfs:purpose".to_string(), "config".to_string()),
    ]);
    let g = kmsd
        .client()
        .call(GenerateDataKeyRequest {
            key_id: c.arn.clone(),
            encryption_context: ctx,
            key_spec: Some(DataKeySpec::Aes256),
            number_of_bytes: None,
            grant_tokens: Vec::new(),
        })
        .unwrap();
    conf["rewrap_from"] = serde_json::json!({
        "key_arn": c.arn,
        "config_key": base64::engine::general_purpose::STANDARD.encode(g.ciphertext_blob.0),
    });
    std::fs::write(
        vol.cipherdir.join("kmsfs.conf"),
        serde_json::to_string_pretty(&conf).unwrap(),
    )
    .unwrap();
    let out = vol.try_mount(&[]);
    assert!(!out.status.success());
    assert!(
        mount::text(&out).contains("rewrap"),
        "{}",
        mount::text(&out)
    );
    assert!(!vol.fsck().status.success());
}

/// `kmsfs info --json` of the volume.
fn info(vol: &Volume) -> serde_json::Value {
    let out = vol
        .kmsfs()
        .arg("info")
        .arg(&vol.cipherdir)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", mount::text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `info`'s per-key counts as (ARN, version, files).
fn counts(info: &serde_json::Value) -> Vec<(String, u64, u64)> {
    info["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key_arn"].as_str().unwrap_or("?").to_string(),
                k["version"].as_u64().unwrap(),
                k["files"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn read_all(f: &std::fs::File) -> std::io::Result<Vec<u8>> {
    let mut b = Vec::new();
    std::io::Read::read_to_end(&mut &*f, &mut b)?;
    std::io::Seek::rewind(&mut &*f)?;
    Ok(b)
}

#[test]
fn a_mount_follows_a_rewrap_to_another_key_while_files_are_open_and_written() {
    require_fuse!();
    const TTL: u64 = 2;
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&["--cache-ttl", &TTL.to_string()]);
    let pid = m.pid;
    let mut files = populate(&vol, 1500);
    // Files held open across the whole run: read before, during, after.
    let open: Vec<(PathBuf, std::fs::File)> = files
        .keys()
        .step_by(150)
        .map(|rel| {
            (
                rel.clone(),
                std::fs::File::open(vol.mountpoint.join(rel)).unwrap(),
            )
        })
        .collect();
    for (rel, f) in &open {
        assert_eq!(read_all(f).unwrap(), files[rel]);
    }
    let b = kmsd.create_key("rewrap destination");
    let mut rewrap = rewrap_cmd(&vol, Some(&b.key_id))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // While it runs: new files, and reads of the open ones.
    std::fs::create_dir(vol.path("new")).unwrap();
    let started = Instant::now();
    let mut n = 0;
    let status = loop {
        if let Some(s) = rewrap.try_wait().unwrap() {
            break s;
        }
        for _ in 0..10 {
            let rel = PathBuf::from(format!("new/during-{n}"));
            let data = format!("written while the rewrap ran, {n} ").repeat(1 + n % 200);
            std::fs::write(vol.mountpoint.join(&rel), &data).unwrap();
            files.insert(rel, data.into_bytes());
            n += 1;
        }
        for (rel, f) in &open {
            assert_eq!(read_all(f).unwrap(), files[rel], "{} during", rel.display());
        }
        assert!(started.elapsed() < Duration::from_secs(120), "rewrap hangs");
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut rewrap.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{out}");
    eprintln!("rewrap with a busy mount: {out} ({n} files written meanwhile)");
    assert!(config(&vol).get("rewrap_from").is_none());
    // Files made after the rewrap are under B too (the mount moved on).
    for i in 0..20 {
        let rel = PathBuf::from(format!("new/after-{i}"));
        std::fs::write(vol.mountpoint.join(&rel), b"after").unwrap();
        files.insert(rel, b"after".to_vec());
    }
    // Every file reads, every header is under B (version 1).
    check_contents(&vol, &files);
    let i = info(&vol);
    assert_eq!(i["key_arn"], b.arn.as_str());
    assert_eq!(
        counts(&i),
        vec![(b.arn.clone(), 1, files.len() as u64)],
        "{i}"
    );
    assert_fsck_clean(&vol, "after the rewrap");
    // The old key goes: the mount keeps serving, open files included,
    // once their keys were checked with kmsd again (TTL, then a margin).
    disable(&kmsd, &vol.key_arn);
    std::thread::sleep(Duration::from_secs(TTL * 2 + 1));
    for (rel, f) in &open {
        assert_eq!(
            read_all(f).unwrap(),
            files[rel],
            "{} with A disabled",
            rel.display()
        );
    }
    check_contents(&vol, &files);
    std::fs::write(vol.path("new/with-a-disabled"), b"still writable").unwrap();
    assert_eq!(
        std::fs::read(vol.path("new/with-a-disabled")).unwrap(),
        b"still writable"
    );
    assert_eq!(
        vol.status()["pid"].as_u64().map(|p| p as u32),
        pid,
        "remounted?"
    );
    assert_fsck_clean(&vol, "with the old key disabled");
    drop(open);
    m.unmount();
}

#[test]
fn info_counts_files_per_key_and_version_through_rotation_and_move() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let files = populate(&vol, 200);
    m.unmount();
    let n = files.len() as u64;
    let a = vol.key_arn.clone();
    let i = info(&vol);
    assert_eq!(i["key_arn"], a.as_str());
    assert_eq!(i["format_version"], 2);
    assert_eq!(i["files"], n);
    assert_eq!(counts(&i), vec![(a.clone(), 1, n)], "{i}");
    assert_eq!(i["config_key"]["version"], 1);
    assert_eq!(i["name_key"]["version"], 1);
    // A rotation: new keys under version 2; rewrap moves the old ones.
    kmsd.client()
        .call(RotateKeyOnDemandRequest { key_id: a.clone() })
        .unwrap();
    let out = rewrap_cmd(&vol, None).output().unwrap();
    assert!(out.status.success(), "{}", mount::text(&out));
    let i = info(&vol);
    assert_eq!(counts(&i), vec![(a.clone(), 2, n)], "{i}");
    assert_eq!(i["config_key"]["version"], 2);
    assert_eq!(i["config_key"]["key_arn"], a.as_str());
    // A file made after the rotation and before a rewrap: one of each.
    let m = vol.mount(&[]);
    std::fs::write(vol.path("fresh"), b"x").unwrap();
    m.unmount();
    kmsd.client()
        .call(RotateKeyOnDemandRequest { key_id: a.clone() })
        .unwrap();
    let m = vol.mount(&[]);
    std::fs::write(vol.path("fresher"), b"y").unwrap();
    m.unmount();
    assert_eq!(
        counts(&info(&vol)),
        vec![(a.clone(), 2, n + 1), (a.clone(), 3, 1)]
    );
    // --to-key: everything under B, version 1; the text form says so.
    let b = kmsd.create_key("info destination");
    let out = rewrap_cmd(&vol, Some(&b.arn)).output().unwrap();
    assert!(out.status.success(), "{}", mount::text(&out));
    let i = info(&vol);
    assert_eq!(i["key_arn"], b.arn.as_str());
    assert!(i["rewrap_from"].is_null(), "{i}");
    assert_eq!(counts(&i), vec![(b.arn.clone(), 1, n + 2)], "{i}");
    assert_eq!(i["name_key"]["key_arn"], b.arn.as_str());
    let out = vol
        .kmsfs()
        .arg("info")
        .arg(&vol.cipherdir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("  {} version 1: {}", b.arn, n + 2)),
        "{text}"
    );
    eprintln!("kmsfs info:\n{text}");
}

#[test]
fn a_running_mount_does_not_follow_a_forged_config_to_another_key() {
    require_fuse!();
    use base64::Engine;
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    std::fs::write(vol.path("before"), b"before").unwrap();
    // Someone who can write CIPHERDIR and use a key of their own, C,
    // points the config at C with a config key of their making.
    let c = kmsd.create_key("attacker");
    let original = std::fs::read(vol.cipherdir.join("kmsfs.conf")).unwrap();
    let mut conf = config(&vol);
    let ctx = EncryptionContext::from([
        (
            "kmsfs:volume".to_string(),
            conf["volume_id"].as_str().unwrap().to_string(),
        ),
        ("kmsfs:purpose".to_string(), "config".to_string()),
    ]);
    let g = kmsd
        .client()
        .call(GenerateDataKeyRequest {
            key_id: c.arn.clone(),
            encryption_context: ctx,
            key_spec: Some(DataKeySpec::Aes256),
            number_of_bytes: None,
            grant_tokens: Vec::new(),
        })
        .unwrap();
    conf["key_arn"] = serde_json::json!(c.arn);
    conf["config_key"] =
        serde_json::json!(base64::engine::general_purpose::STANDARD.encode(g.ciphertext_blob.0));
    let tmp = vol.cipherdir.join("forged");
    std::fs::write(&tmp, serde_json::to_string_pretty(&conf).unwrap()).unwrap();
    std::fs::rename(&tmp, vol.cipherdir.join("kmsfs.conf")).unwrap();
    // The mount looks (a new file, more than a second later) and refuses:
    // new files stay under the volume's key.
    std::thread::sleep(Duration::from_millis(1100));
    for i in 0..5 {
        std::fs::write(vol.path(&format!("after-{i}")), b"after").unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(std::fs::read(vol.path("before")).unwrap(), b"before");
    m.unmount();
    std::fs::write(vol.cipherdir.join("kmsfs.conf"), original).unwrap();
    let i = info(&vol);
    assert_eq!(counts(&i), vec![(vol.key_arn.clone(), 1, 6)], "{i}");
    let log = vol.log();
    assert!(
        log.contains("not adopting the changed config") && log.contains("is not this volume's"),
        "{log}"
    );
}
