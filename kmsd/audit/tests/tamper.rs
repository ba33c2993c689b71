//! `verify` catches every kind of tampering, at the right position, and
//! passes intact logs.

mod common;

use common::*;
use kmsd_audit::{HEAD_FILE, LineHash, ProblemKind, Record, Report, verify};
use std::path::Path;

const N: usize = 50;

/// A single-file log: line k holds seq k.
fn single_file_log() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), N, opts(None, 10));
    let file = dir.path().join("audit-000001.jsonl");
    (dir, file)
}

fn check(dir: &Path, kind: ProblemKind, file: &str, line: u64, seq: u64) -> Report {
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
    // Without the key the chain alone finds it at the same place.
    let unkeyed = verify(dir, None).unwrap();
    assert_eq!(unkeyed.problem, report.problem, "{unkeyed}");
    report
}

#[test]
fn intact_log_verifies_with_and_without_key() {
    let (dir, file) = single_file_log();
    let total = read_lines(&file).len() as u64;
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(
        (r.files, r.records, r.last_seq, r.head_seq),
        (1, total, Some(total), Some(total))
    );
    // open + every 10 events + close.
    assert_eq!(r.checkpoints, 2 + (N as u64 - 1) / 10);
    assert!(r.macs_verified);
    assert!(r.to_string().starts_with("INTACT: "), "{r}");
    let r = verify(dir.path(), None).unwrap();
    assert!(r.is_intact());
    assert!(!r.macs_verified);
    assert!(r.to_string().contains("NOT verified"), "{r}");
}

#[test]
fn empty_directory_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact());
    assert_eq!((r.files, r.records), (0, 0));
    assert!(verify(&dir.path().join("missing"), None).is_err());
}

#[test]
fn edited_field() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    lines[19] = replace_once(&lines[19], "\"uid\":", "\"uid\":9");
    write_lines(&file, &lines);
    let r = check(
        dir.path(),
        ProblemKind::Altered,
        "audit-000001.jsonl",
        20,
        20,
    );
    assert!(
        r.to_string()
            .contains("audit-000001.jsonl line 20 (seq 20): record altered"),
        "{r}"
    );
    assert_eq!(r.records, 19);
}

#[test]
fn edited_prev_hash_of_a_record_blames_that_record() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    lines[24] = set_prev_hash(&lines[24], &LineHash::of_line(b"forged"));
    write_lines(&file, &lines);
    check(
        dir.path(),
        ProblemKind::Altered,
        "audit-000001.jsonl",
        25,
        25,
    );
}

#[test]
fn edited_seq_field() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    lines[29] = replace_once(&lines[29], "{\"seq\":30,", "{\"seq\":31,");
    write_lines(&file, &lines);
    check(
        dir.path(),
        ProblemKind::Altered,
        "audit-000001.jsonl",
        30,
        30,
    );
}

#[test]
fn edited_last_record_is_caught_by_head() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    let n = lines.len();
    lines[n - 1] = replace_once(&lines[n - 1], "\"reason\":\"close\"", "\"reason\":\"clos\"");
    write_lines(&file, &lines);
    check(
        dir.path(),
        ProblemKind::Altered,
        "audit-000001.jsonl",
        n as u64,
        n as u64,
    );
}

#[test]
fn deleted_line() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    lines.remove(19);
    write_lines(&file, &lines);
    let r = check(
        dir.path(),
        ProblemKind::Removed,
        "audit-000001.jsonl",
        20,
        20,
    );
    assert!(r.to_string().contains("record 20 is missing"), "{r}");
}

#[test]
fn deleted_lines() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    lines.drain(9..14);
    write_lines(&file, &lines);
    let r = check(
        dir.path(),
        ProblemKind::Removed,
        "audit-000001.jsonl",
        10,
        10,
    );
    assert!(r.to_string().contains("records 10..14 are missing"), "{r}");
}

#[test]
fn swapped_pair() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    lines.swap(19, 20);
    write_lines(&file, &lines);
    let r = check(
        dir.path(),
        ProblemKind::Reordered,
        "audit-000001.jsonl",
        20,
        21,
    );
    assert!(r.to_string().contains("swapped"), "{r}");
}

#[test]
fn moved_line() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    let l = lines.remove(19);
    lines.insert(23, l);
    write_lines(&file, &lines);
    check(
        dir.path(),
        ProblemKind::Reordered,
        "audit-000001.jsonl",
        20,
        21,
    );
}

#[test]
fn truncated_tail_one_line() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    let n = lines.len() as u64;
    lines.pop();
    write_lines(&file, &lines);
    let r = check(
        dir.path(),
        ProblemKind::Truncated,
        "audit-000001.jsonl",
        n,
        n,
    );
    assert!(
        r.to_string()
            .contains(&format!("record {n} removed from the end")),
        "{r}"
    );
}

#[test]
fn truncated_tail_several_lines() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    let n = lines.len() as u64;
    lines.truncate(lines.len() - 5);
    write_lines(&file, &lines);
    let r = check(
        dir.path(),
        ProblemKind::Truncated,
        "audit-000001.jsonl",
        n - 4,
        n - 4,
    );
    assert!(
        r.to_string()
            .contains(&format!("records {}..{n} removed", n - 4)),
        "{r}"
    );
}

#[test]
fn truncated_tail_torn_partial_line() {
    let (dir, file) = single_file_log();
    let bytes = std::fs::read(&file).unwrap();
    let n = read_lines(&file).len() as u64;
    // Cut the last line in half.
    let last_start = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap()
        + 1;
    let cut = last_start + (bytes.len() - last_start) / 2;
    std::fs::write(&file, &bytes[..cut]).unwrap();
    let r = check(
        dir.path(),
        ProblemKind::TornLine,
        "audit-000001.jsonl",
        n,
        n,
    );
    assert!(r.to_string().contains("partial line"), "{r}");
}

#[test]
fn truncated_everything_but_head() {
    let (dir, file) = single_file_log();
    let n = read_lines(&file).len() as u64;
    std::fs::write(&file, b"").unwrap();
    check(
        dir.path(),
        ProblemKind::Truncated,
        "audit-000001.jsonl",
        1,
        1,
    );
    let r = verify(dir.path(), None).unwrap();
    assert!(
        r.to_string().contains(&format!("records 1..{n} removed")),
        "{r}"
    );
}

#[test]
fn inserted_chained_line() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    // A forged record that chains correctly from seq 20 and claims seq 21.
    let forged = replace_once(
        &lines[20],
        "\"requestId\":\"req-",
        "\"requestId\":\"forged-",
    );
    let forged = set_prev_hash(&forged, &LineHash::of_line(lines[19].as_bytes()));
    lines.insert(20, forged);
    write_lines(&file, &lines);
    let r = check(
        dir.path(),
        ProblemKind::Inserted,
        "audit-000001.jsonl",
        21,
        21,
    );
    assert!(
        r.to_string().contains("1 record(s) inserted after seq 20"),
        "{r}"
    );
}

#[test]
fn inserted_duplicate_line() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    let copy = lines[9].clone();
    lines.insert(20, copy);
    write_lines(&file, &lines);
    check(
        dir.path(),
        ProblemKind::Inserted,
        "audit-000001.jsonl",
        21,
        10,
    );
}

#[test]
fn inserted_garbage_line() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    lines.insert(20, "{\"hello\":\"world\"}".into());
    write_lines(&file, &lines);
    check(
        dir.path(),
        ProblemKind::Inserted,
        "audit-000001.jsonl",
        21,
        21,
    );
}

#[test]
fn file_removed_from_the_middle_of_a_rotation_set() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 300, opts(Some(8 << 10), 1000));
    let fs = files(dir.path());
    assert!(fs.len() >= 4, "{} files", fs.len());
    assert!(verify(dir.path(), Some(&key())).unwrap().is_intact());
    let first_seq_of_2 = Record::parse(read_lines(&fs[1])[0].as_bytes()).unwrap().seq;
    std::fs::remove_file(&fs[1]).unwrap();
    let r = check(
        dir.path(),
        ProblemKind::MissingFile,
        "audit-000002.jsonl",
        0,
        first_seq_of_2,
    );
    assert!(
        r.to_string()
            .contains("audit-000002.jsonl missing from the rotation set"),
        "{r}"
    );
}

#[test]
fn first_file_removed() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 300, opts(Some(8 << 10), 1000));
    std::fs::remove_file(&files(dir.path())[0]).unwrap();
    check(
        dir.path(),
        ProblemKind::MissingFile,
        "audit-000001.jsonl",
        0,
        1,
    );
}

#[test]
fn last_file_removed() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 300, opts(Some(8 << 10), 1000));
    let fs = files(dir.path());
    let before_last = read_lines(&fs[fs.len() - 2]);
    let first_missing = Record::parse(read_lines(&fs[fs.len() - 1])[0].as_bytes())
        .unwrap()
        .seq;
    std::fs::remove_file(&fs[fs.len() - 1]).unwrap();
    let name = fs[fs.len() - 2]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    check(
        dir.path(),
        ProblemKind::Truncated,
        &name,
        before_last.len() as u64 + 1,
        first_missing,
    );
}

#[test]
fn forged_checkpoint() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    let cp = lines
        .iter()
        .position(|l| l.contains("\"reason\":\"interval\""))
        .unwrap();
    assert!(cp > 1);
    // Forge its MAC and rechain everything after it so the hash chain holds.
    let mac_at = lines[cp].find("\"mac\":\"").unwrap() + 7;
    let mut forged = lines[cp].clone();
    forged.replace_range(mac_at..mac_at + 64, &"ab".repeat(32));
    lines[cp] = forged;
    rechain(&mut lines, cp + 1);
    write_lines(&file, &lines);
    let r = verify(dir.path(), Some(&key())).unwrap();
    let p = r.problem.clone().unwrap();
    assert_eq!(
        (p.kind, p.file.as_str(), p.line, p.seq),
        (
            ProblemKind::BadCheckpoint,
            "audit-000001.jsonl",
            cp as u64 + 1,
            Some(cp as u64 + 1)
        ),
        "{r}"
    );
    // Without the key the forged MAC is not noticed; HEAD's hash still is.
    let r = verify(dir.path(), None).unwrap();
    assert_eq!(r.problem.unwrap().kind, ProblemKind::Altered);
}

#[test]
fn rewritten_log_needs_the_key_to_detect() {
    let (dir, file) = single_file_log();
    let mut lines = read_lines(&file);
    // Edit record 20 and redo the whole chain after it, HEAD included: the
    // hash chain alone can no longer tell.
    lines[19] = replace_once(&lines[19], "\"uid\":", "\"uid\":9");
    rechain(&mut lines, 20);
    write_lines(&file, &lines);
    let last_hash = LineHash::of_line(lines.last().unwrap().as_bytes()).to_hex();
    edit_head(dir.path(), |h| h["hash"] = last_hash.into());
    assert!(verify(dir.path(), None).unwrap().is_intact());
    // The first checkpoint after the edit no longer verifies.
    let cp = lines
        .iter()
        .skip(20)
        .position(|l| l.contains("\"checkpoint\""))
        .unwrap()
        + 20;
    let r = verify(dir.path(), Some(&key())).unwrap();
    let p = r.problem.unwrap();
    assert_eq!(
        (p.kind, p.line),
        (ProblemKind::BadCheckpoint, cp as u64 + 1)
    );
}

#[test]
fn forged_or_missing_head() {
    let (dir, _file) = single_file_log();
    let head_path = dir.path().join(HEAD_FILE);
    edit_head(dir.path(), |h| h["mac"] = "00".repeat(32).into());
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert_eq!(r.problem.unwrap().kind, ProblemKind::BadHead);
    assert!(
        verify(dir.path(), None).unwrap().is_intact(),
        "unkeyed: HEAD's seq and hash still match"
    );
    let wrong = kmsd_audit::audit_key_from_root(&[1; 32]);
    assert_eq!(
        verify(dir.path(), Some(&wrong))
            .unwrap()
            .problem
            .unwrap()
            .kind,
        ProblemKind::BadCheckpoint
    );

    std::fs::remove_file(&head_path).unwrap();
    let r = verify(dir.path(), None).unwrap();
    let p = r.problem.unwrap();
    assert_eq!((p.kind, p.file.as_str()), (ProblemKind::BadHead, "HEAD"));
    std::fs::write(&head_path, "not json").unwrap();
    assert_eq!(
        verify(dir.path(), None).unwrap().problem.unwrap().kind,
        ProblemKind::BadHead
    );
}

#[test]
fn torn_head_slot_falls_back_to_the_older_one() {
    let (dir, file) = single_file_log();
    let head_path = dir.path().join(HEAD_FILE);
    let mut bytes = std::fs::read(&head_path).unwrap();
    let newest = (0..2)
        .max_by_key(|i| {
            let s = &bytes[i * 4096..(i + 1) * 4096];
            let end = s.iter().position(|b| *b == b'\n').unwrap();
            serde_json::from_slice::<serde_json::Value>(&s[..end]).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .unwrap();
    bytes[newest * 4096 + 20..newest * 4096 + 60].fill(b'#');
    std::fs::write(&head_path, &bytes).unwrap();
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
    assert!(r.head_seq.unwrap() < read_lines(&file).len() as u64);
    assert!(r.notes.iter().any(|n| n.contains("HEAD slot")), "{r}");
    // The writer resumes from it too.
    build_log(dir.path(), 1, opts(None, 10));
    assert!(verify(dir.path(), Some(&key())).unwrap().is_intact());
}
