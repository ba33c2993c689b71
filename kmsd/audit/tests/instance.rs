//! One chain per kmsd instance: the `instance` field in every line, the
//! `INSTANCE` file, and what `verify` says about records of another chain.

mod common;

use common::*;
use kmsd_audit::{
    AuditError, AuditLog, INSTANCE_FILE, LineHash, Options, ProblemKind, Record, Report, verify,
};
use std::collections::BTreeMap;
use std::path::Path;

fn with_instance(id: &str, rotate: Option<u64>, checkpoint_every: u64) -> Options {
    Options {
        instance: Some(id.into()),
        ..opts(rotate, checkpoint_every)
    }
}

/// Every file of the directory and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn all_lines(dir: &Path) -> Vec<String> {
    files(dir).iter().flat_map(|f| read_lines(f)).collect()
}

/// The first problem, found the same with and without the key.
fn problem_at(dir: &Path, kind: ProblemKind, file: &str, line: u64, seq: u64) -> Report {
    let report = verify(dir, Some(&key())).unwrap();
    let p = report
        .problem
        .clone()
        .unwrap_or_else(|| panic!("not detected ({kind:?}):\n{report}"));
    assert_eq!(
        (p.kind, p.file.as_str(), p.line, p.seq),
        (kind, file, line, Some(seq)),
        "{report}"
    );
    let unkeyed = verify(dir, None).unwrap();
    assert_eq!(unkeyed.problem, report.problem, "{unkeyed}");
    report
}

fn open_err(dir: &Path, opts: Options) -> AuditError {
    match AuditLog::open(dir, key(), opts) {
        Ok(_) => panic!("opened {}", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn every_line_names_the_instance_checkpoints_included() {
    let dir = tempfile::tempdir().unwrap();
    // Small files and frequent checkpoints: open, interval, rotation and
    // close checkpoints all occur.
    build_log(dir.path(), 40, with_instance("kmsd-a", Some(4096), 5));
    // A torn tail, so the reopen writes a recovery record too.
    let last = files(dir.path()).pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"seq\":").unwrap();
    drop(f);
    build_log(dir.path(), 3, with_instance("kmsd-a", Some(4096), 5));

    assert_eq!(
        std::fs::read(dir.path().join(INSTANCE_FILE)).unwrap(),
        b"kmsd-a\n"
    );
    assert!(files(dir.path()).len() > 2, "rotated");
    let lines = all_lines(dir.path());
    let mut reasons = std::collections::BTreeSet::new();
    let mut recoveries = 0;
    for (i, line) in lines.iter().enumerate() {
        let r = Record::parse(line.as_bytes()).unwrap();
        assert_eq!(r.seq, i as u64 + 1);
        let want = format!(
            "{{\"seq\":{},\"prevHash\":\"{}\",\"instance\":\"kmsd-a\",\"eventTime\":\"",
            r.seq, r.prev_hash
        );
        assert!(line.starts_with(&want), "{line}");
        assert_eq!(r.instance.as_deref(), Some("kmsd-a"));
        if let Some(cp) = &r.checkpoint {
            reasons.insert(cp.reason.clone());
        }
        recoveries += usize::from(r.event_name == kmsd_audit::RECOVERY_EVENT);
    }
    let want: std::collections::BTreeSet<String> = ["open", "interval", "rotation", "close"]
        .map(String::from)
        .into();
    assert_eq!(reasons, want);
    assert_eq!(recoveries, 1);
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(r.records, lines.len() as u64);
    assert_eq!(r.instance.as_deref(), Some("kmsd-a"));
    assert!(r.notes.is_empty(), "{r}");
    assert!(r.to_string().contains("\n  instance: kmsd-a\n"), "{r}");
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["instance"], "kmsd-a");
}

#[test]
fn without_an_instance_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 10, opts(None, 1000));
    assert!(!dir.path().join(INSTANCE_FILE).exists());
    for line in all_lines(dir.path()) {
        assert!(!line.contains("instance"), "{line}");
        assert!(line.contains("\",\"eventTime\":\""), "{line}");
    }
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact() && r.notes.is_empty(), "{r}");
    assert_eq!(r.instance, None);
    assert!(!r.to_string().contains("instance"), "{r}");
    assert_eq!(
        serde_json::to_value(&r).unwrap()["instance"],
        serde_json::Value::Null
    );
}

#[test]
fn reopening_as_another_instance_is_refused_and_the_log_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 5, with_instance("kmsd-a", None, 1000));
    let before = snapshot(dir.path());
    let err = open_err(dir.path(), with_instance("kmsd-b", None, 1000));
    let msg = err.to_string();
    assert!(matches!(err, AuditError::WrongInstance(_)), "{err:?}");
    assert!(
        msg.contains("instance kmsd-a") && msg.contains("instance kmsd-b"),
        "{msg}"
    );
    // Nor without an instance: its records would lack the field.
    let err = open_err(dir.path(), opts(None, 1000));
    assert!(matches!(err, AuditError::WrongInstance(_)), "{err:?}");
    assert!(err.to_string().contains("instance kmsd-a"), "{err}");
    assert_eq!(snapshot(dir.path()), before, "refused opens wrote nothing");
    // As itself it opens and continues.
    build_log(dir.path(), 1, with_instance("kmsd-a", None, 1000));
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
}

#[test]
fn an_invalid_id_is_refused_before_anything_is_created() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("audit");
    for bad in ["", "Kmsd", "kmsd_a", "a/b", "a\"b", &"x".repeat(65)] {
        let err = open_err(&dir, with_instance(bad, None, 1000));
        assert!(
            matches!(&err, AuditError::BadInput(m) if m.contains("invalid audit instance id")),
            "{bad:?}: {err}"
        );
        assert!(!dir.exists());
    }
    build_log(&dir, 1, with_instance(&"x".repeat(64), None, 1000));
    assert!(verify(&dir, Some(&key())).unwrap().is_intact());
}

#[test]
fn a_chain_from_before_instances_is_accepted_and_continued_with_one() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 5, opts(None, 1000));
    let old = all_lines(dir.path());
    assert!(!dir.path().join(INSTANCE_FILE).exists());
    build_log(dir.path(), 5, with_instance("kmsd-a", None, 1000));
    assert_eq!(
        std::fs::read(dir.path().join(INSTANCE_FILE)).unwrap(),
        b"kmsd-a\n"
    );
    let lines = all_lines(dir.path());
    assert_eq!(&lines[..old.len()], old.as_slice(), "old records untouched");
    for line in &lines[old.len()..] {
        let r = Record::parse(line.as_bytes()).unwrap();
        assert_eq!(r.instance.as_deref(), Some("kmsd-a"), "{line}");
    }
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(r.instance.as_deref(), Some("kmsd-a"));
    let n = old.len();
    assert_eq!(
        r.notes,
        [format!(
            "seq 1..{n} name no instance (written before the log had one); seq {} on name instance kmsd-a",
            n + 1
        )]
    );
    // From now on it is kmsd-a's chain.
    let err = open_err(dir.path(), with_instance("kmsd-b", None, 1000));
    assert!(matches!(err, AuditError::WrongInstance(_)), "{err:?}");
}

/// Two chains of 20 events under the same root key, as two instances of
/// one deployment write them.
fn two_chains() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    build_log(&a, 20, with_instance("kmsd-a", None, 1000));
    build_log(&b, 20, with_instance("kmsd-b", None, 1000));
    (root, a, b)
}

#[test]
fn a_line_of_another_chain_spliced_in_is_a_record_of_another_instance() {
    let (_root, a, b) = two_chains();
    let (fa, fb) = (a.join("audit-000001.jsonl"), b.join("audit-000001.jsonl"));
    let (orig, theirs) = (read_lines(&fa), read_lines(&fb));
    let mut lines = orig.clone();
    // B's seq 9 in place of A's seq 9: the chain breaks there too, but the
    // field says where the line came from.
    lines[8] = theirs[8].clone();
    write_lines(&fa, &lines);
    let r = problem_at(&a, ProblemKind::WrongInstance, "audit-000001.jsonl", 9, 9);
    let p = r.problem.unwrap();
    assert!(
        p.detail.contains("names instance kmsd-b")
            && p.detail
                .contains("this chain is instance kmsd-a (its INSTANCE file)")
            && p.detail.contains("copied from another instance's chain"),
        "{}",
        p.detail
    );
    assert_eq!(r.records, 8);
    assert_eq!(r.instance.as_deref(), Some("kmsd-a"));
    // Inserted rather than replaced: B's seq 10 after A's seq 10.
    let mut lines = orig.clone();
    lines.insert(10, theirs[9].clone());
    write_lines(&fa, &lines);
    problem_at(&a, ProblemKind::WrongInstance, "audit-000001.jsonl", 11, 10);
    // Without the field, the same splice is only an inserted record.
    let mut lines = orig.clone();
    lines.insert(10, replace_once(&theirs[9], "\"instance\":\"kmsd-b\",", ""));
    write_lines(&fa, &lines);
    problem_at(&a, ProblemKind::Inserted, "audit-000001.jsonl", 11, 10);
}

#[test]
fn a_rewritten_and_rechained_instance_is_caught_by_the_instance_check_alone() {
    let (_root, a, _b) = two_chains();
    let f = a.join("audit-000001.jsonl");
    let mut lines = read_lines(&f);
    lines[9] = replace_once(
        &lines[9],
        "\"instance\":\"kmsd-a\"",
        "\"instance\":\"kmsd-b\"",
    );
    // An attacker without the key recomputes the chain and HEAD: the hash
    // chain and HEAD are consistent again.
    rechain(&mut lines, 10);
    write_lines(&f, &lines);
    let last = LineHash::of_line(lines.last().unwrap().as_bytes());
    edit_head(&a, |h| h["hash"] = last.to_hex().into());
    let r = problem_at(&a, ProblemKind::WrongInstance, "audit-000001.jsonl", 10, 10);
    assert!(r.to_string().contains("TAMPERED: audit-000001.jsonl line 10 (seq 10): wrong instance: record names instance kmsd-b"), "{r}");

    // Only the instance is wrong: with the line named kmsd-a again (and
    // the chain recomputed), the unkeyed check passes.
    lines[9] = replace_once(
        &lines[9],
        "\"instance\":\"kmsd-b\"",
        "\"instance\":\"kmsd-a\"",
    );
    rechain(&mut lines, 10);
    write_lines(&f, &lines);
    let last = LineHash::of_line(lines.last().unwrap().as_bytes());
    edit_head(&a, |h| h["hash"] = last.to_hex().into());
    let r = verify(&a, None).unwrap();
    assert!(r.is_intact(), "{r}");
}

#[test]
fn a_record_without_the_instance_after_ones_with_it_is_reported() {
    let (_root, a, _b) = two_chains();
    let f = a.join("audit-000001.jsonl");
    let mut lines = read_lines(&f);
    lines[11] = replace_once(&lines[11], "\"instance\":\"kmsd-a\",", "");
    rechain(&mut lines, 12);
    write_lines(&f, &lines);
    let r = problem_at(&a, ProblemKind::WrongInstance, "audit-000001.jsonl", 12, 12);
    let detail = r.problem.unwrap().detail;
    assert!(
        detail.contains(
            "names no instance, but seq 1 and every record after it name instance kmsd-a"
        ),
        "{detail}"
    );
}

#[test]
fn a_chain_whose_records_name_another_instance_than_its_instance_file() {
    // B's directory holds a copy of A's log (a swapped chain): every record
    // is intact, but none is B's.
    let (_root, a, b) = two_chains();
    std::fs::copy(a.join("audit-000001.jsonl"), b.join("audit-000001.jsonl")).unwrap();
    std::fs::copy(a.join("HEAD"), b.join("HEAD")).unwrap();
    assert!(verify(&a, Some(&key())).unwrap().is_intact());
    let r = problem_at(&b, ProblemKind::WrongInstance, "audit-000001.jsonl", 1, 1);
    assert_eq!(r.instance.as_deref(), Some("kmsd-b"));
    assert_eq!(r.records, 0);
}

#[test]
fn instance_file_damaged_or_missing() {
    let (_root, a, _b) = two_chains();
    std::fs::write(a.join(INSTANCE_FILE), b"Kmsd A\n").unwrap();
    let r = verify(&a, Some(&key())).unwrap();
    let p = r.problem.clone().expect("damaged INSTANCE reported");
    assert_eq!(
        (p.kind, p.file.as_str(), p.line, p.seq),
        (ProblemKind::WrongInstance, INSTANCE_FILE, 0, None),
        "{r}"
    );
    assert!(p.detail.contains("does not hold an instance id"), "{r}");
    // The chain itself was checked in full.
    assert_eq!(r.records, 22);
    let err = open_err(&a, with_instance("kmsd-a", None, 1000));
    assert!(matches!(err, AuditError::Damaged(_)), "{err:?}");

    // Removed: the records still name one instance; noted, not tampering.
    std::fs::remove_file(a.join(INSTANCE_FILE)).unwrap();
    let r = verify(&a, Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(r.instance.as_deref(), Some("kmsd-a"));
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("there is no INSTANCE file")),
        "{r}"
    );
    // And a record of another chain is still one.
    let f = a.join("audit-000001.jsonl");
    let mut lines = read_lines(&f);
    lines[4] = replace_once(
        &lines[4],
        "\"instance\":\"kmsd-a\"",
        "\"instance\":\"kmsd-b\"",
    );
    rechain(&mut lines, 5);
    write_lines(&f, &lines);
    let r = verify(&a, None).unwrap();
    let p = r.problem.expect("detected");
    assert_eq!((p.kind, p.line), (ProblemKind::WrongInstance, 5));
    assert!(p.detail.contains("named from seq 1 on"), "{}", p.detail);
}

#[test]
fn without_its_instance_file_a_chain_is_still_continued_only_by_its_instance() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 3, with_instance("kmsd-a", None, 1000));
    std::fs::remove_file(dir.path().join(INSTANCE_FILE)).unwrap();
    let before = snapshot(dir.path());
    let err = open_err(dir.path(), with_instance("kmsd-b", None, 1000));
    let msg = err.to_string();
    assert!(matches!(err, AuditError::WrongInstance(_)), "{err:?}");
    assert!(
        msg.contains("(seq 5) names instance kmsd-a") && msg.contains("not by instance kmsd-b"),
        "{msg}"
    );
    let err = open_err(dir.path(), opts(None, 1000));
    assert!(err.to_string().contains("not without an instance"), "{err}");
    assert_eq!(snapshot(dir.path()), before, "refused opens wrote nothing");
    build_log(dir.path(), 1, with_instance("kmsd-a", None, 1000));
    assert_eq!(
        std::fs::read(dir.path().join(INSTANCE_FILE)).unwrap(),
        b"kmsd-a\n"
    );
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact() && r.notes.is_empty(), "{r}");
}
