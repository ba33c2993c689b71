//! `query` and `tail` (with follow) over real logs.

mod common;

use common::*;
use kmsd_audit::{EventTime, Filter, PrincipalFilter, query, tail};
use std::sync::Arc;
use std::time::Duration;

fn ids(it: impl Iterator<Item = Result<kmsd_audit::Entry, kmsd_audit::AuditError>>) -> Vec<String> {
    it.map(|e| e.unwrap().record.request_id.unwrap_or_default())
        .collect()
}

#[test]
fn query_filters_by_key_principal_event_and_time() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 60, opts(Some(4 << 10), 1000));
    let q = |f: Filter| ids(query(dir.path(), f).unwrap());

    let by_key = q(Filter {
        key_id: Some("key-3".into()),
        ..Filter::default()
    });
    assert_eq!(
        by_key,
        (0..60)
            .filter(|i| i % 5 == 3)
            .map(|i| format!("req-{i}"))
            .collect::<Vec<_>>()
    );
    let by_arn = q(Filter {
        key_id: Some("arn:aws:kms:local:111122223333:key/key-3".into()),
        ..Filter::default()
    });
    assert_eq!(by_arn, by_key);

    let by_uid = q(Filter {
        principal: Some(PrincipalFilter::Uid(1001)),
        ..Filter::default()
    });
    assert_eq!(
        by_uid,
        (0..60)
            .filter(|i| i % 3 == 1)
            .map(|i| format!("req-{i}"))
            .collect::<Vec<_>>()
    );
    let by_user = q(Filter {
        principal: Some("user:user1".parse().unwrap()),
        ..Filter::default()
    });
    assert_eq!(by_user, by_uid);

    let decrypts = q(Filter {
        event: Some("decrypt".into()),
        ..Filter::default()
    });
    assert_eq!(decrypts.len(), 30);
    let checkpoints = q(Filter {
        event: Some("AuditCheckpoint".into()),
        ..Filter::default()
    });
    assert!(checkpoints.len() >= 3, "open, rotations, close");

    let in_a_minute = EventTime::from_millis(EventTime::now().millis() + 60_000);
    let future = q(Filter {
        since: Some(in_a_minute),
        ..Filter::default()
    });
    assert!(future.is_empty());
    let recent = q(Filter {
        since: Some(EventTime::now().minus(Duration::from_secs(3600))),
        ..Filter::default()
    });
    assert_eq!(
        recent.len(),
        query(dir.path(), Filter::default()).unwrap().count()
    );

    let both = q(Filter {
        key_id: Some("key-0".into()),
        event: Some("Encrypt".into()),
        ..Filter::default()
    });
    assert_eq!(
        both,
        (0..60)
            .filter(|i| i % 10 == 0)
            .map(|i| format!("req-{i}"))
            .collect::<Vec<_>>()
    );
}

#[test]
fn query_reports_damaged_lines_instead_of_skipping_them() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 5, opts(None, 1000));
    let file = dir.path().join("audit-000001.jsonl");
    let mut lines = read_lines(&file);
    lines.insert(2, "garbage".into());
    write_lines(&file, &lines);
    let results: Vec<_> = query(dir.path(), Filter::default()).unwrap().collect();
    assert_eq!(results.len(), lines.len());
    let err = results[2].as_ref().err().unwrap().to_string();
    assert!(err.contains("audit-000001.jsonl line 3"), "{err}");
}

#[test]
fn tail_takes_the_last_n_across_files() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 200, opts(Some(2 << 10), 1000));
    assert!(files(dir.path()).len() > 5);
    let all = all_entries(dir.path());
    for n in [0, 1, 3, 7, 25, all.len(), all.len() + 10] {
        let got: Vec<u64> = tail(dir.path(), n, false)
            .unwrap()
            .map(|e| e.unwrap().record.seq)
            .collect();
        let want: Vec<u64> = all
            .iter()
            .rev()
            .take(n)
            .rev()
            .map(|e| e.record.seq)
            .collect();
        assert_eq!(got, want, "n = {n}");
    }
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(tail(empty.path(), 5, false).unwrap().count(), 0);
}

#[test]
fn tail_follow_sees_new_records_across_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), opts(Some(2 << 10), 1000)));
    for i in 0..3 {
        log.append(&event(i)).unwrap();
    }
    let follower = tail(dir.path(), 2, true)
        .unwrap()
        .poll_interval(Duration::from_millis(10));
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 3..60 {
                log.append(&event(i)).unwrap();
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(30));
                }
            }
        })
    };
    // 2 old records, then the 57 new events plus the rotation checkpoints.
    let mut seen = Vec::new();
    for e in follower {
        let r = e.unwrap().record;
        let done = r.request_id.as_deref() == Some("req-59");
        seen.push(r);
        if done {
            break;
        }
    }
    writer.join().unwrap();
    assert_eq!(seen[0].request_id.as_deref(), Some("req-1"));
    assert_eq!(seen[1].request_id.as_deref(), Some("req-2"));
    assert!(
        seen.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "no gaps, no repeats"
    );
    let events: Vec<_> = seen.iter().filter_map(|r| r.request_id.clone()).collect();
    assert_eq!(
        events,
        (1..60).map(|i| format!("req-{i}")).collect::<Vec<_>>()
    );
    assert!(files(dir.path()).len() > 2, "it crossed rotations");
}
