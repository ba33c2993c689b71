//! Helpers shared by the integration tests: events, a fixed key, and the
//! file surgery an attacker would do.
#![allow(dead_code)]

use kmsd_audit::{
    AuditEvent, AuditKey, AuditLog, Entry, Filter, LineHash, Options, Principal,
    audit_key_from_root,
};
use serde_json::json;
use std::path::{Path, PathBuf};

pub const ROOT: [u8; 32] = [0x42; 32];

pub fn key() -> AuditKey {
    audit_key_from_root(&ROOT)
}

pub fn event(i: usize) -> AuditEvent {
    let principal = Principal {
        uid: 1000 + (i % 3) as u32,
        gid: 100,
        pid: Some(4000 + i as i32),
        user_name: Some(format!("user{}", i % 3)),
        group_name: Some("users".into()),
        executable: Some("/usr/bin/app".into()),
        invoked_by: None,
        access_key_id: None,
        source_ip_address: None,
    };
    let ev = AuditEvent::new(
        if i.is_multiple_of(2) {
            "Encrypt"
        } else {
            "Decrypt"
        },
        format!("req-{i}"),
        principal,
    )
    .with_parameters(
        json!({"KeyId": format!("key-{}", i % 5), "EncryptionContext": {"n": i.to_string()}}),
    )
    .with_resource(format!("arn:aws:kms:local:111122223333:key/key-{}", i % 5));
    if i.is_multiple_of(7) {
        ev.with_error("AccessDeniedException", "not allowed")
    } else {
        ev
    }
}

pub fn open(dir: &Path, opts: Options) -> AuditLog {
    AuditLog::open(dir, key(), opts).expect("open audit log")
}

pub fn opts(rotate: Option<u64>, checkpoint_every: u64) -> Options {
    Options {
        rotate_bytes: rotate,
        checkpoint_every,
        ..Options::default()
    }
}

/// A closed log with `n` events (seq 1 = open checkpoint, events 2..=n+1,
/// close checkpoint n+2 unless more checkpoints are configured).
pub fn build_log(dir: &Path, n: usize, opts: Options) {
    let log = open(dir, opts);
    for i in 0..n {
        log.append(&event(i)).expect("append");
    }
    log.close().expect("close");
}

pub fn all_entries(dir: &Path) -> Vec<Entry> {
    kmsd_audit::query(dir, Filter::default())
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
}

pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("audit-")
        })
        .collect();
    v.sort();
    v
}

pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    if !lines.is_empty() {
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// Replaces the `prevHash` value of a record line.
pub fn set_prev_hash(line: &str, prev: &LineHash) -> String {
    let at = line.find("\"prevHash\":\"").expect("record line") + "\"prevHash\":\"".len();
    format!("{}{}{}", &line[..at], prev.to_hex(), &line[at + 64..])
}

/// What an attacker without the key does after editing: recompute every
/// prevHash from line index `from` on (single file).
pub fn rechain(lines: &mut [String], from: usize) {
    for i in from.max(1)..lines.len() {
        let prev = LineHash::of_line(lines[i - 1].as_bytes());
        lines[i] = set_prev_hash(&lines[i], &prev);
    }
}

pub fn replace_once(line: &str, from: &str, to: &str) -> String {
    assert!(line.contains(from), "{from:?} not in {line}");
    line.replacen(from, to, 1)
}

/// Rewrites `HEAD` as an attacker without the key could: takes the newest
/// slot, lets `f` edit it, recomputes its (unkeyed) checksum and writes it
/// back as the only slot.
pub fn edit_head(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    use sha2::Digest;
    let path = dir.join(kmsd_audit::HEAD_FILE);
    let bytes = std::fs::read(&path).unwrap();
    let slots: Vec<serde_json::Value> = bytes
        .chunks(4096)
        .filter_map(|s| {
            let end = s.iter().position(|b| *b == b'\n')?;
            serde_json::from_slice(&s[..end]).ok()
        })
        .collect();
    let mut v = slots
        .into_iter()
        .max_by_key(|v| v["seq"].as_u64().unwrap())
        .expect("a valid slot");
    f(&mut v);
    let check_input = format!(
        "{}|{}|{}|{}",
        v["seq"],
        v["hash"].as_str().unwrap(),
        v["file"].as_str().unwrap(),
        v["mac"].as_str().unwrap()
    );
    let check: String = sha2::Sha256::digest(check_input.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    v["check"] = check.into();
    let mut out = v.to_string().into_bytes();
    out.push(b'\n');
    out.resize(8192, 0);
    std::fs::write(&path, out).unwrap();
}
