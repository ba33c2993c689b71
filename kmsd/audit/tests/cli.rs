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

/// Two chains of one deployment (instances kmsd-a and kmsd-b, one root
/// key) written at the same time, so their records interleave in time.
fn two_instances() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a/audit"), root.path().join("b/audit"));
    let open_as = |dir: &std::path::Path, id: &str| {
        open(
            dir,
            kmsd_audit::Options {
                instance: Some(id.into()),
                ..opts(None, 1000)
            },
        )
    };
    let (la, lb) = (open_as(&a, "kmsd-a"), open_as(&b, "kmsd-b"));
    for i in 0..8 {
        la.append(&event(i)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        lb.append(&event(i)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    la.close().unwrap();
    lb.close().unwrap();
    (root, a, b)
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn verify_a_set_of_chains_text_and_json() {
    let (root, a, b) = two_instances();
    let (code, out) = run(&["verify", "--audit-dir", s(&a), "--audit-dir", s(&b)]);
    assert_eq!(code, 0, "{out}");
    let want = format!(
        "{}: INTACT: 10 records in 1 file (seq 1..10); hash chain only: 2 checkpoints and HEAD NOT verified (no root key given)\n  instance: kmsd-a\n\
         {}: INTACT: 10 records in 1 file (seq 1..10); hash chain only: 2 checkpoints and HEAD NOT verified (no root key given)\n  instance: kmsd-b\n\
         SET INTACT: 2 chains, instances kmsd-a, kmsd-b\n",
        a.display(),
        b.display()
    );
    assert_eq!(out, want);

    let key_file = root.path().join("root.key");
    std::fs::write(&key_file, ROOT).unwrap();
    let (sa, sb) = (root.path().join("a"), root.path().join("b"));
    let (code, out) = run(&[
        "verify",
        "--state-dir",
        s(&sa),
        "--state-dir",
        s(&sb),
        "--root-key-file",
        s(&key_file),
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["intact"], true);
    assert_eq!(j["duplicates"], serde_json::json!([]));
    let chains = j["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 2);
    assert_eq!(chains[0]["dir"], s(&a));
    assert_eq!(chains[0]["instance"], "kmsd-a");
    assert_eq!(chains[1]["instance"], "kmsd-b");
    assert_eq!(chains[1]["macsVerified"], true);
    assert_eq!(chains[1]["problem"], serde_json::Value::Null);

    // One chain: the report itself, as before, with its instance.
    let (code, out) = run(&["verify", "--audit-dir", s(&a), "--json"]);
    assert_eq!(code, 0);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["instance"], "kmsd-a");
    assert_eq!(j["records"], 10);
    assert!(j.get("chains").is_none(), "{out}");
}

#[test]
fn verify_refuses_a_set_where_two_chains_are_one_instance() {
    let (root, a, b) = two_instances();
    // c is a copy of a: intact on its own, but a second kmsd-a.
    let c = root.path().join("c");
    std::fs::create_dir(&c).unwrap();
    for f in std::fs::read_dir(&a).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), c.join(f.file_name())).unwrap();
    }
    let args = [
        "verify",
        "--audit-dir",
        s(&a),
        "--audit-dir",
        s(&b),
        "--audit-dir",
        s(&c),
    ];
    let (code, out) = run(&args);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.matches(": INTACT: ").count(), 3, "{out}");
    assert!(
        out.ends_with(&format!(
            "SET NOT INTACT: 0 of 3 chains tampered\n  chains {} and {} are both instance kmsd-a\n",
            a.display(),
            c.display()
        )),
        "{out}"
    );
    let (code, out) = run(&[&args[..], &["--json"]].concat());
    assert_eq!(code, 1);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["intact"], false);
    assert_eq!(
        j["duplicates"],
        serde_json::json!([{"instance": "kmsd-a", "dirs": [s(&a), s(&c)]}])
    );

    // The same directory twice is a usage error, not a duplicate.
    let cli = Cli::try_parse_from([
        "audit",
        "verify",
        "--audit-dir",
        s(&a),
        "--audit-dir",
        s(&a),
    ])
    .unwrap();
    let err = run_to(cli.cmd, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("is given twice"), "{err}");
}

#[test]
fn verify_fails_the_set_when_one_chain_is_tampered() {
    let (_root, a, b) = two_instances();
    let file = b.join("audit-000001.jsonl");
    let mut lines = read_lines(&file);
    lines.swap(3, 4);
    write_lines(&file, &lines);
    let (code, out) = run(&["verify", "--audit-dir", s(&a), "--audit-dir", s(&b)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("{}: INTACT: ", a.display())), "{out}");
    assert!(
        out.contains(&format!(
            "{}: TAMPERED: audit-000001.jsonl line 4 (seq 5): records reordered",
            b.display()
        )),
        "{out}"
    );
    assert!(
        out.ends_with(&format!(
            "SET NOT INTACT: 1 of 2 chains tampered\n  tampered: {}\n",
            b.display()
        )),
        "{out}"
    );
    let (code, out) = run(&[
        "verify",
        "--audit-dir",
        s(&a),
        "--audit-dir",
        s(&b),
        "--json",
    ]);
    assert_eq!(code, 1);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["intact"], false);
    assert_eq!(j["chains"][0]["problem"], serde_json::Value::Null);
    assert_eq!(j["chains"][1]["problem"]["kind"], "Reordered");
    assert_eq!(j["chains"][1]["problem"]["seq"], 5);
    // A missing chain is an error naming it.
    let gone = a.with_file_name("gone");
    let cli = Cli::try_parse_from([
        "audit",
        "verify",
        "--audit-dir",
        s(&a),
        "--audit-dir",
        s(&gone),
    ])
    .unwrap();
    let err = format!("{:#}", run_to(cli.cmd, &mut Vec::new()).unwrap_err());
    assert!(err.contains(s(&gone)), "{err}");
}

#[test]
fn query_and_tail_merge_chains_by_event_time() {
    let (_root, a, b) = two_instances();
    let la = read_lines(&a.join("audit-000001.jsonl"));
    let lb = read_lines(&b.join("audit-000001.jsonl"));
    let time = |l: &String| kmsd_audit::Record::parse(l.as_bytes()).unwrap().event_time;
    // Each chain is in time order, so a stable sort of a ++ b is the merge.
    let mut want: Vec<String> = la.iter().chain(&lb).cloned().collect();
    want.sort_by_key(time);
    assert_ne!(
        want,
        [la.clone(), lb.clone()].concat(),
        "the chains interleave"
    );

    let (code, out) = run(&["query", "--audit-dir", s(&a), "--audit-dir", s(&b)]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
    let (code, out) = run(&[
        "query",
        "--audit-dir",
        s(&a),
        "--audit-dir",
        s(&b),
        "--event",
        "Decrypt",
    ]);
    assert_eq!(code, 0);
    let decrypts: Vec<&String> = want
        .iter()
        .filter(|l| l.contains("\"eventName\":\"Decrypt\""))
        .collect();
    assert_eq!(decrypts.len(), 8);
    assert_eq!(out.lines().collect::<Vec<_>>(), decrypts);

    let (code, out) = run(&[
        "tail",
        "--audit-dir",
        s(&b),
        "--audit-dir",
        s(&a),
        "-n",
        "5",
    ]);
    assert_eq!(code, 0);
    // b given first: on equal times b's records come first.
    let mut want_ba: Vec<String> = lb.iter().chain(&la).cloned().collect();
    want_ba.sort_by_key(time);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        want_ba[want_ba.len() - 5..]
    );
    let (_, out) = run(&[
        "tail",
        "--audit-dir",
        s(&a),
        "--audit-dir",
        s(&b),
        "-n",
        "0",
    ]);
    assert!(out.is_empty());

    // -f follows one chain only.
    let cli = Cli::try_parse_from([
        "audit",
        "tail",
        "-f",
        "--audit-dir",
        s(&a),
        "--audit-dir",
        s(&b),
    ])
    .unwrap();
    let err = run_to(cli.cmd, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("tail -f follows one chain"), "{err}");
}
