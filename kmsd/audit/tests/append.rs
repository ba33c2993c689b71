//! Appending: order, durability under concurrency, async submitters,
//! resuming, rotation, crash recovery and refusals.

mod common;

use common::*;
use kmsd_audit::{
    AuditError, AuditLog, CHECKPOINT_EVENT, CommitMode, HEAD_FILE, LineHash, Options,
    RECOVERY_EVENT, Record, verify,
};
use std::collections::HashSet;
use std::sync::Arc;

fn events_only(dir: &std::path::Path) -> Vec<Record> {
    all_entries(dir)
        .into_iter()
        .map(|e| e.record)
        .filter(|r| !r.event_name.starts_with("Audit"))
        .collect()
}

#[test]
fn every_appended_record_appears_exactly_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), opts(None, 100));
    let mut seqs = Vec::new();
    for i in 0..1000 {
        seqs.push(log.append(&event(i)).unwrap());
    }
    log.close().unwrap();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs increase");
    let recs = events_only(dir.path());
    assert_eq!(recs.len(), 1000);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.request_id.as_deref(), Some(format!("req-{i}").as_str()));
        assert_eq!(r.seq, seqs[i], "the seq append returned is the record's");
        assert_eq!(r.event_name, if i % 2 == 0 { "Encrypt" } else { "Decrypt" });
        assert_eq!(r.error_code.is_some(), i % 7 == 0);
        assert_eq!(
            r.resources,
            [format!("arn:aws:kms:local:111122223333:key/key-{}", i % 5)]
        );
    }
    // Every line, checkpoints included, numbered 1.. without gaps, chained.
    let all = all_entries(dir.path());
    let mut prev = LineHash::GENESIS;
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.record.seq, i as u64 + 1);
        assert_eq!(e.record.prev_hash(), Some(prev));
        prev = LineHash::of_line(e.raw.as_bytes());
    }
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(r.records, all.len() as u64);
}

fn with_mode(mut o: Options, commit: CommitMode) -> Options {
    o.commit = commit;
    o
}

#[test]
fn sixteen_concurrent_submitters_are_all_durable_and_chained_inline() {
    sixteen_concurrent_submitters(CommitMode::Inline);
}

#[test]
fn sixteen_concurrent_submitters_are_all_durable_and_chained_by_the_writer_thread() {
    sixteen_concurrent_submitters(CommitMode::Thread);
}

fn sixteen_concurrent_submitters(mode: CommitMode) {
    const THREADS: usize = 16;
    const PER: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), with_mode(opts(Some(64 << 10), 100), mode)));
    assert_eq!(log.commits_inline(), mode == CommitMode::Inline);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..PER)
                    .map(|i| {
                        let mut ev = event(i);
                        ev.request_id = format!("t{t}-{i}");
                        (ev.request_id.clone(), log.append(&ev).unwrap())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<Vec<(String, u64)>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    Arc::try_unwrap(log).ok().unwrap().close().unwrap();

    let on_disk: Vec<(String, u64)> = events_only(dir.path())
        .into_iter()
        .map(|r| (r.request_id.unwrap(), r.seq))
        .collect();
    assert_eq!(on_disk.len(), THREADS * PER);
    let on_disk_set: HashSet<(String, u64)> = on_disk.iter().cloned().collect();
    assert_eq!(on_disk_set.len(), THREADS * PER, "no duplicates");
    for per_thread in &results {
        assert!(
            per_thread.windows(2).all(|w| w[0].1 < w[1].1),
            "a thread's records keep its order"
        );
        for acked in per_thread {
            assert!(
                on_disk_set.contains(acked),
                "acknowledged {acked:?} is in the log with that seq"
            );
        }
    }
    assert!(files(dir.path()).len() > 1, "rotated");
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
}

#[test]
fn async_submitters_on_a_runtime_inline() {
    async_submitters(CommitMode::Inline);
}

#[test]
fn async_submitters_on_a_runtime_with_the_writer_thread() {
    async_submitters(CommitMode::Thread);
}

fn async_submitters(mode: CommitMode) {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), with_mode(opts(None, 50), mode)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let total: usize = rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut n = 0;
                    for i in 0..200 {
                        let mut ev = event(i);
                        ev.request_id = format!("a{t}-{i}");
                        log.submit(&ev).await.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total
    });
    assert_eq!(total, 1600);
    drop(log); // Drop closes too.
    assert_eq!(events_only(dir.path()).len(), 1600);
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
    let last = all_entries(dir.path()).pop().unwrap().record;
    assert_eq!(last.checkpoint.unwrap().reason, "close");
}

#[test]
fn reopening_resumes_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 10, opts(None, 1000)); // seq 1 open, 2..=11, 12 close
    let log = open(dir.path(), opts(None, 1000)); // 13 open
    assert_eq!(log.append(&event(10)).unwrap(), 14);
    drop(log); // 15 close
    let all = all_entries(dir.path());
    assert_eq!(all.len(), 15);
    let reasons: Vec<String> = all
        .iter()
        .filter_map(|e| e.record.checkpoint.as_ref().map(|c| c.reason.clone()))
        .collect();
    assert_eq!(reasons, ["open", "close", "open", "close"]);
    assert!(verify(dir.path(), Some(&key())).unwrap().is_intact());
}

#[test]
fn rotation_keeps_the_chain_across_files() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 200, opts(Some(4 << 10), 1000));
    let fs = files(dir.path());
    assert!(fs.len() >= 5, "{} files", fs.len());
    for pair in fs.windows(2) {
        let last_of_prev = read_lines(&pair[0]).pop().unwrap();
        let first = Record::parse(read_lines(&pair[1])[0].as_bytes()).unwrap();
        assert_eq!(
            first.prev_hash(),
            Some(LineHash::of_line(last_of_prev.as_bytes()))
        );
        assert_eq!(first.event_name, CHECKPOINT_EVENT);
        assert_eq!(first.checkpoint.unwrap().reason, "rotation");
        let size = std::fs::metadata(&pair[0]).unwrap().len();
        assert!(
            (4 << 10..(4 << 10) + 2048).contains(&size),
            "rotated near the limit: {size}"
        );
    }
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(r.files, fs.len());
}

#[test]
fn torn_tail_is_cut_on_restart_and_the_recovery_logged() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 20, opts(None, 1000));
    let file = dir.path().join("audit-000001.jsonl");
    let good_len = std::fs::metadata(&file).unwrap().len();
    let torn = b"{\"seq\":23,\"prevHash\":\"00";
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(torn);
    std::fs::write(&file, &bytes).unwrap();
    // Past HEAD: not acknowledged, so not tampering, but reported.
    let r = verify(dir.path(), None).unwrap();
    assert!(r.is_intact(), "{r}");
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("audit-000001.jsonl line 23 is a partial line")),
        "{r}"
    );

    let log = open(dir.path(), opts(None, 1000));
    log.append(&event(99)).unwrap();
    drop(log);
    let all = all_entries(dir.path());
    let rec = all
        .iter()
        .find(|e| e.record.event_name == RECOVERY_EVENT)
        .expect("recovery record");
    assert_eq!(rec.record.seq, 23, "first record after the cut");
    let p = rec.record.request_parameters.clone().unwrap();
    assert_eq!(p["discardedBytes"], torn.len() as u64);
    assert_eq!(p["offset"], good_len);
    assert_eq!(p["file"], "audit-000001.jsonl");
    assert_eq!(p["discardedSha256"], LineHash::of_line(torn).to_hex());
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(r.recoveries.len(), 1, "{r}");
}

#[test]
fn records_written_after_head_survive_a_crash_before_head_was_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), opts(None, 1000));
    log.append(&event(0)).unwrap();
    let old_head = std::fs::read(dir.path().join(HEAD_FILE)).unwrap();
    for i in 1..5 {
        log.append(&event(i)).unwrap();
    }
    drop(log);
    // As if the machine died between the log's fsync and HEAD's rename.
    std::fs::write(dir.path().join(HEAD_FILE), &old_head).unwrap();
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
    assert!(r.notes.iter().any(|n| n.contains("after HEAD")), "{r}");
    let log = open(dir.path(), opts(None, 1000));
    log.append(&event(5)).unwrap();
    drop(log);
    assert_eq!(events_only(dir.path()).len(), 6);
    assert!(verify(dir.path(), Some(&key())).unwrap().is_intact());
}

fn open_err(dir: &std::path::Path) -> String {
    match AuditLog::open(dir, key(), opts(None, 1000)) {
        Ok(_) => panic!("opened a damaged log"),
        Err(AuditError::Damaged(m)) => m,
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn refuses_to_resume_a_truncated_log_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 10, opts(None, 1000));
    let file = dir.path().join("audit-000001.jsonl");
    let mut lines = read_lines(&file);
    lines.truncate(lines.len() - 3);
    write_lines(&file, &lines);
    let before = std::fs::read(&file).unwrap();
    let m = open_err(dir.path());
    assert!(m.contains("missing"), "{m}");
    assert_eq!(std::fs::read(&file).unwrap(), before, "untouched");
    // A torn line after a truncation is not taken for a crash either.
    let mut b = before.clone();
    b.extend_from_slice(b"{\"seq\":9");
    std::fs::write(&file, &b).unwrap();
    open_err(dir.path());
    assert_eq!(std::fs::read(&file).unwrap(), b);
}

#[test]
fn refuses_a_broken_chain_after_head_a_missing_head_and_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 10, opts(None, 1000));
    let file = dir.path().join("audit-000001.jsonl");
    let lines = read_lines(&file);
    // An extra, unchained complete line after HEAD's record.
    let mut bad = lines.clone();
    bad.push(set_prev_hash(&lines[3], &LineHash::GENESIS));
    write_lines(&file, &bad);
    assert!(open_err(dir.path()).contains("chain after HEAD is broken"));
    write_lines(&file, &lines);

    let wrong = kmsd_audit::audit_key_from_root(&[9; 32]);
    match AuditLog::open(dir.path(), wrong, opts(None, 1000)) {
        Err(AuditError::Damaged(m)) => assert!(m.contains("wrong root key"), "{m}"),
        _ => panic!("opened with the wrong key"),
    }

    std::fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
    assert!(open_err(dir.path()).contains("HEAD is missing"));
}

#[test]
fn a_second_writer_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), opts(None, 1000));
    assert!(matches!(
        AuditLog::open(dir.path(), key(), opts(None, 1000)),
        Err(AuditError::Locked(_))
    ));
    drop(log);
    let again = open(dir.path(), opts(None, 1000));
    drop(again);
}

#[test]
fn secrets_never_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), opts(None, 1000));
    let ev = event(1).with_parameters(serde_json::json!({
        "KeyId": "k",
        "Plaintext": "U0VDUkVUU0VDUkVU",
        "CiphertextBlob": "Q0lQSEVSQ0lQSEVS",
        "Nested": {"plaintext": "U0VDUkVUU0VDUkVU"}
    }));
    log.append(&ev).unwrap();
    drop(log);
    let text = std::fs::read_to_string(dir.path().join("audit-000001.jsonl")).unwrap();
    assert!(!text.contains("U0VDUkVUU0VDUkVU") && !text.contains("Q0lQSEVSQ0lQSEVS"));
    assert!(!text.contains("Plaintext") && !text.contains("CiphertextBlob"));
    assert!(text.contains("\"KeyId\":\"k\""));
}

#[test]
fn files_and_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("state/audit");
    build_log(&dir, 1, opts(None, 1000));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("audit-000001.jsonl")), 0o600);
}

/// A full disk: the append fails (so the server can answer
/// KMSInternalException), nothing half-written stays, and every
/// acknowledged record is intact. Needs root to mount a small tmpfs.
#[test]
fn a_full_disk_fails_the_append_and_keeps_the_log_intact() {
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: cannot mount a tmpfs (not root?)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let dir = mnt.join("audit");
    let log = open(&dir, opts(None, 1000));
    let mut acked = 0;
    let mut failure = None;
    for i in 0..10_000 {
        match log.append(&event(i)) {
            Ok(_) => acked += 1,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let e = failure.expect("a 64 KiB tmpfs fills up");
    assert!(
        matches!(
            e,
            AuditError::WriteFailed {
                poisoned: false,
                ..
            }
        ),
        "{e}"
    );
    assert!(acked > 10);
    drop(log); // its close checkpoint may fail too; that is fine.
    let r = verify(&dir, Some(&key())).unwrap();
    assert!(r.is_intact(), "{r}");
    assert_eq!(events_only(&dir).len(), acked);
}

#[test]
fn verify_and_tail_on_a_live_log_see_no_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), opts(Some(16 << 10), 50)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    log.append(&event(t * 100_000 + i)).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    for _ in 0..20 {
        let r = verify(dir.path(), Some(&key())).unwrap();
        assert!(r.is_intact(), "{r}");
        for e in kmsd_audit::tail(dir.path(), 5, false).unwrap() {
            e.unwrap();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    drop(log);
    let r = verify(dir.path(), Some(&key())).unwrap();
    assert!(r.is_intact() && r.notes.is_empty(), "{r}");
}

#[test]
fn probe_checks_the_tail_and_writes_a_resume_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), opts(None, 0));
    for i in 0..3 {
        log.submit(&event(i)).wait().unwrap();
    }
    let seq = log.probe().expect("a healthy log probes fine");
    log.submit(&event(3)).wait().unwrap();
    let recs: Vec<Record> = all_entries(dir.path())
        .into_iter()
        .map(|e| e.record)
        .collect();
    let resume = recs
        .iter()
        .find(|r| r.checkpoint.as_ref().is_some_and(|c| c.reason == "resume"))
        .expect("a resume checkpoint");
    assert_eq!(resume.seq, seq);

    // Something else appended to the segment: the tail no longer matches
    // the chain, so the probe refuses (and so does every append after it).
    let seg = files(dir.path()).pop().expect("a segment");
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, b"{\"forged\":true}\n").unwrap();
    let e = log.probe().expect_err("a foreign tail");
    assert!(e.to_string().contains("bytes, the chain expects"), "{e}");
}
