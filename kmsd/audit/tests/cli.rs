//! `kmsctl audit ...` as kmsctl will wire it: parse with clap, run, check
//! exit codes and output.

mod common;

use clap::Parser;
use common::*;
use kmsd_audit::cli::{AuditCommand, run_to};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: AuditCommand,
}

fn run(args: &[&str]) -> (i32, String) {
    let cli =
        Cli::try_parse_from(std::iter::once("audit").chain(args.iter().copied())).expect("parse");
    let mut out = Vec::new();
    let code = run_to(cli.cmd, &mut out).expect("run");
    (code, String::from_utf8(out).unwrap())
}

fn state_with_log(n: usize) -> (tempfile::TempDir, String, String) {
    let state = tempfile::tempdir().unwrap();
    build_log(&state.path().join("audit"), n, opts(None, 1000));
    let key_file = state.path().join("root.key");
    std::fs::write(&key_file, ROOT).unwrap();
    let s = state.path().to_str().unwrap().to_string();
    let k = key_file.to_str().unwrap().to_string();
    (state, s, k)
}

#[test]
fn verify_intact_and_tampered_exit_codes() {
    let (state, s, k) = state_with_log(20);
    let (code, out) = run(&["verify", "--state-dir", &s]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("INTACT: 22 records in 1 file (seq 1..22); hash chain only"),
        "{out}"
    );
    let (code, out) = run(&["verify", "--state-dir", &s, "--root-key-file", &k]);
    assert_eq!(code, 0);
    assert!(
        out.contains("2 checkpoints and HEAD verified with the audit key"),
        "{out}"
    );
    let audit = state.path().join("audit");
    let (code, _) = run(&["verify", "--audit-dir", audit.to_str().unwrap()]);
    assert_eq!(code, 0);

    let file = audit.join("audit-000001.jsonl");
    let mut lines = read_lines(&file);
    lines.swap(5, 6);
    write_lines(&file, &lines);
    let (code, out) = run(&["verify", "--state-dir", &s, "--root-key-file", &k]);
    assert_eq!(code, 1);
    assert!(
        out.contains("TAMPERED: audit-000001.jsonl line 6 (seq 7): records reordered"),
        "{out}"
    );
    let (code, out) = run(&["verify", "--state-dir", &s, "--json"]);
    assert_eq!(code, 1);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["problem"]["kind"], "Reordered");
    assert_eq!(j["problem"]["line"], 6);
    assert_eq!(j["problem"]["seq"], 7);
}

#[test]
fn verify_with_a_wrong_key_is_tampered_and_a_bad_key_file_is_an_error() {
    let (state, s, _k) = state_with_log(3);
    let other = state.path().join("other.key");
    std::fs::write(&other, [1u8; 32]).unwrap();
    let (code, out) = run(&[
        "verify",
        "--state-dir",
        &s,
        "--root-key-file",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    std::fs::write(&other, [1u8; 16]).unwrap();
    let cli = Cli::try_parse_from([
        "audit",
        "verify",
        "--state-dir",
        &s,
        "--root-key-file",
        other.to_str().unwrap(),
    ])
    .unwrap();
    let err = run_to(cli.cmd, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("exactly 32 raw bytes"), "{err}");
}

#[test]
fn tail_and_query_print_exact_lines() {
    let (state, s, _k) = state_with_log(20);
    let lines = read_lines(&state.path().join("audit/audit-000001.jsonl"));
    let (code, out) = run(&["tail", "--state-dir", &s, "-n", "3"]);
    assert_eq!(code, 0);
    assert_eq!(out, lines[lines.len() - 3..].join("\n") + "\n");

    let (code, out) = run(&[
        "query",
        "--state-dir",
        &s,
        "--event",
        "Encrypt",
        "--principal",
        "uid:1000",
    ]);
    assert_eq!(code, 0);
    let want: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"eventName\":\"Encrypt\"") && l.contains("\"uid\":1000,"))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
    let (_, out) = run(&[
        "query",
        "--state-dir",
        &s,
        "--key-id",
        "key-2",
        "--since",
        "1h",
    ]);
    assert_eq!(out.lines().count(), 4, "{out}");
    let (_, out) = run(&["query", "--state-dir", &s, "--since", "2999-01-01"]);
    assert!(out.is_empty());
}

#[test]
fn usage_errors_are_clear() {
    let cli = Cli::try_parse_from(["audit", "verify"]).unwrap();
    let err = run_to(cli.cmd, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("--state-dir"), "{err}");
    assert!(
        Cli::try_parse_from([
            "audit",
            "query",
            "--audit-dir",
            "/x",
            "--principal",
            "alice"
        ])
        .is_err()
    );
    let cli = Cli::try_parse_from(["audit", "query", "--audit-dir", "/x", "--since", "whenever"])
        .unwrap();
    let err = run_to(cli.cmd, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("RFC 3339"), "{err}");
    for sub in ["verify", "tail", "query"] {
        let cli = Cli::try_parse_from(["audit", sub, "--audit-dir", "/nonexistent/audit"]).unwrap();
        let err = format!("{:#}", run_to(cli.cmd, &mut Vec::new()).unwrap_err());
        assert!(err.contains("/nonexistent/audit"), "{sub}: {err}");
    }
}
