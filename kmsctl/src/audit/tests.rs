//! `kmsctl audit verify` over a set of chains, parsed by kmsctl's own
//! command line and mapped to its exit status.

use super::*;
use crate::args::{Cli, TopLevel};
use clap::Parser;
use kmsd_audit::{AuditEvent, AuditLog, LineHash, Options, Principal, audit_key_from_root};
use std::path::{Path, PathBuf};

const ROOT: [u8; 32] = [0x24; 32];

/// A closed chain of `n` events written as instance `id`.
fn chain(dir: &Path, id: &str, n: usize) {
    let opts = Options {
        instance: Some(id.into()),
        ..Options::default()
    };
    let log = AuditLog::open(dir, audit_key_from_root(&ROOT), opts).unwrap();
    for i in 0..n {
        let who = Principal::from_peer(1000, 100, Some(4000));
        log.append(&AuditEvent::new("Encrypt", format!("{id}-{i}"), who))
            .unwrap();
    }
    log.close().unwrap();
}

/// Runs `kmsctl audit <args>`: the exit status and stdout.
fn kmsctl_audit(args: &[&str]) -> (u8, String) {
    let cli = Cli::try_parse_from(["kmsctl", "audit"].iter().chain(args)).expect("parse");
    let TopLevel::Audit(cmd) = cli.command else {
        panic!("not an audit command")
    };
    let mut out = Vec::new();
    let code = status(cmd, &mut out);
    (code, String::from_utf8(out).unwrap())
}

/// Instances kmsd-a and kmsd-b, each with its own state dir.
fn deployment() -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    chain(&a.join("audit"), "kmsd-a", 6);
    chain(&b.join("audit"), "kmsd-b", 6);
    let key = root.path().join("root.key");
    std::fs::write(&key, ROOT).unwrap();
    let key = key.to_str().unwrap().to_string();
    (root, a, b, key)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn verify_of_two_instances_chains_exits_0() {
    let (_root, a, b, key) = deployment();
    let (code, out) = kmsctl_audit(&[
        "verify",
        "--state-dir",
        p(&a),
        "--state-dir",
        p(&b),
        "--root-key-file",
        &key,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "{}/audit: INTACT: 8 records in 1 file (seq 1..8); 2 checkpoints and HEAD verified with the audit key\n  instance: kmsd-a\n",
            a.display()
        )),
        "{out}"
    );
    assert!(
        out.ends_with("SET INTACT: 2 chains, instances kmsd-a, kmsd-b\n"),
        "{out}"
    );
    let (code, out) = kmsctl_audit(&[
        "verify",
        "--audit-dir",
        &format!("{}/audit", a.display()),
        "--audit-dir",
        &format!("{}/audit", b.display()),
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["intact"], true);
    let ids: Vec<&str> = j["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["instance"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["kmsd-a", "kmsd-b"]);
}

#[test]
fn verify_of_one_instance_twice_exits_1() {
    let (root, a, b, key) = deployment();
    // A copied state dir: a second kmsd-a, each chain intact on its own.
    let c = root.path().join("c/audit");
    std::fs::create_dir_all(&c).unwrap();
    for f in std::fs::read_dir(a.join("audit")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), c.join(f.file_name())).unwrap();
    }
    let (code, out) = kmsctl_audit(&[
        "verify",
        "--state-dir",
        p(&a),
        "--state-dir",
        p(&b),
        "--state-dir",
        p(c.parent().unwrap()),
        "--root-key-file",
        &key,
    ]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.matches(": INTACT: ").count(), 3, "{out}");
    assert!(
        out.contains(&format!(
            "chains {}/audit and {} are both instance kmsd-a",
            a.display(),
            c.display()
        )),
        "{out}"
    );
    // Each on its own is fine.
    let (code, _) = kmsctl_audit(&["verify", "--audit-dir", p(&c), "--root-key-file", &key]);
    assert_eq!(code, 0);
}

#[test]
fn verify_of_a_set_with_a_tampered_chain_exits_1() {
    let (_root, a, b, key) = deployment();
    // A record of b spliced into a, with the chain recomputed after it (an
    // attacker without the key): only the instance check and the
    // checkpoint MAC can tell.
    let fa = a.join("audit/audit-000001.jsonl");
    let fb = b.join("audit/audit-000001.jsonl");
    let read = |f: &Path| -> Vec<String> {
        std::fs::read_to_string(f)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let mut lines = read(&fa);
    let theirs = read(&fb);
    lines[3] = theirs[3].clone();
    for i in 3..lines.len() {
        let prev = LineHash::of_line(lines[i - 1].as_bytes()).to_hex();
        let at = lines[i].find("\"prevHash\":\"").unwrap() + "\"prevHash\":\"".len();
        lines[i].replace_range(at..at + 64, &prev);
    }
    std::fs::write(&fa, lines.join("\n") + "\n").unwrap();

    for with_key in [false, true] {
        let mut args = vec!["verify", "--state-dir", p(&a), "--state-dir", p(&b)];
        if with_key {
            args.extend(["--root-key-file", &key]);
        }
        let (code, out) = kmsctl_audit(&args);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains(
                "TAMPERED: audit-000001.jsonl line 4 (seq 4): wrong instance: record names instance kmsd-b, \
                 but this chain is instance kmsd-a (its INSTANCE file)"
            ),
            "{out}"
        );
        assert!(
            out.ends_with(&format!(
                "SET NOT INTACT: 1 of 2 chains tampered\n  tampered: {}/audit\n",
                a.display()
            )),
            "{out}"
        );
    }
    let (code, out) = kmsctl_audit(&["verify", "--state-dir", p(&b), "--root-key-file", &key]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_missing_chain_is_an_error_not_a_verdict() {
    let (root, a, _b, _key) = deployment();
    let gone = root.path().join("gone");
    let (code, out) = kmsctl_audit(&["verify", "--state-dir", p(&a), "--state-dir", p(&gone)]);
    assert_eq!(code, EXIT_OTHER);
    assert!(out.is_empty(), "{out}");
}
