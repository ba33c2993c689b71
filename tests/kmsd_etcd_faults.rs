//! kmsd on etcd under faults, on a real 3-member cluster on loopback: an
//! etcd member killed under load loses no acknowledged mutation; a kmsd
//! instance killed with SIGKILL under load costs clients with both
//! endpoints nothing but a retry, and a kmsfs mount configured with both
//! keeps serving; the sweeper runs each deletion and rotation exactly
//! once across instances.

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use common::etcd::EtcdCluster;
use kmsd::clock::ManualClock;
use kmsd::{Daemon, DaemonConfig};
use kmsd_client::*;
use mount::{Volume, fuse_available};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn root_key(dir: &Path) -> PathBuf {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    let p = dir.join("root.key");
    std::fs::write(&p, b).expect("root key");
    p
}

fn instance(etcd: &EtcdCluster, dir: &Path, i: usize, root: &Path) -> KmsdProcess {
    KmsdProcess::start_logged(
        &dir.join(format!("s{i}")),
        &dir.join(format!("k{i}.sock")),
        &[
            "--store",
            &etcd.url(),
            "--root-key-file",
            root.to_str().expect("utf-8"),
            "--etcd-lease-ttl-secs",
            "2",
        ],
        Some(&dir.join(format!("k{i}.log"))),
    )
}

fn list_keys(c: &Client) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut marker = None;
    loop {
        let r = c
            .call(ListKeysRequest {
                limit: Some(1000),
                marker: marker.clone(),
            })
            .expect("list keys");
        out.extend(r.keys.into_iter().map(|k| k.key_id));
        match r.next_marker {
            Some(m) if r.truncated => marker = Some(m),
            _ => return out,
        }
    }
}

#[test]
fn an_etcd_member_killed_under_load_loses_no_acknowledged_mutation() {
    let mut etcd = EtcdCluster::start(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_key(dir.path());
    let k: Vec<KmsdProcess> = (0..2)
        .map(|i| instance(&etcd, dir.path(), i, &root))
        .collect();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let sock = k[t % 2].socket.clone();
            let (acked, failures, stop) = (acked.clone(), failures.clone(), stop.clone());
            std::thread::spawn(move || {
                let c = Client::connect(&sock).expect("connect");
                while !stop.load(Ordering::Relaxed) {
                    match c.call(CreateKeyRequest::default()) {
                        Ok(r) => {
                            acked.lock().unwrap().insert(r.key_metadata.key_id);
                        }
                        Err(e) => failures.lock().unwrap().push((e.kind(), e.to_string())),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    etcd.kill(0);
    let killed_at = acked.lock().unwrap().len();
    std::thread::sleep(Duration::from_secs(3));
    etcd.restart(0);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    let acked = acked.lock().unwrap().clone();
    let failures = failures.lock().unwrap().clone();
    let mut by_kind = std::collections::BTreeMap::new();
    for (k, m) in &failures {
        by_kind
            .entry(format!("{k:?}"))
            .or_insert((0usize, m.clone()))
            .0 += 1;
    }
    eprintln!(
        "{} keys acknowledged ({killed_at} before the kill), {} failures: {by_kind:?}",
        acked.len(),
        failures.len()
    );
    assert!(acked.len() > killed_at, "service continued after the kill");
    for (f, m) in &failures {
        assert!(
            matches!(
                f,
                Some(ErrorKind::DependencyTimeoutException | ErrorKind::KMSInternalException)
            ),
            "a failure other than a dependency timeout: {f:?} {m}"
        );
    }
    // Every acknowledged key is on both instances (within the bound).
    for (i, kmsd) in k.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let listed = list_keys(&kmsd.client());
            let missing: Vec<&String> = acked.difference(&listed).collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "instance {i} lacks {} acknowledged keys, e.g. {:?}",
                missing.len(),
                missing.first()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_kmsd_instance_killed_under_load_costs_two_endpoint_clients_nothing() {
    let etcd = EtcdCluster::start(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_key(dir.path());
    let mut k: Vec<KmsdProcess> = (0..2)
        .map(|i| instance(&etcd, dir.path(), i, &root))
        .collect();
    let key = k[0].create_key("failover").key_id;
    let sockets = vec![k[0].socket.clone(), k[1].socket.clone()];
    // Known on both before the load starts.
    let b = k[1].client();
    let deadline = Instant::now() + Duration::from_secs(1);
    while b
        .call(DescribeKeyRequest {
            key_id: key.clone(),
        })
        .is_err()
    {
        assert!(Instant::now() < deadline, "key not on b within 1 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (sockets, key, stop, done) =
                (sockets.clone(), key.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || -> Vec<String> {
                let c = Client::new(ClientConfig::with_sockets(sockets));
                let mut errors = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = c
                        .call(GenerateDataKeyRequest {
                            key_id: key.clone(),
                            encryption_context: Default::default(),
                            key_spec: Some(DataKeySpec::Aes256),
                            number_of_bytes: None,
                            grant_tokens: vec![],
                        })
                        .and_then(|d| {
                            c.call(DecryptRequest {
                                ciphertext_blob: d.ciphertext_blob,
                                encryption_context: Default::default(),
                                key_id: None,
                                grant_tokens: vec![],
                            })
                        });
                    match r {
                        Ok(_) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                errors
            })
        })
        .collect();

    // A kmsfs mount with both endpoints, when FUSE is here.
    let volume = fuse_available().then(|| Volume::create_with_key(&k[0].socket, &key));
    let b_sock = k[1].socket.to_str().expect("utf-8").to_string();
    let mount = volume.as_ref().map(|v| v.mount(&["--socket", &b_sock]));
    if let Some(v) = &volume {
        for i in 0..20 {
            std::fs::write(v.path(&format!("before-{i}")), format!("file {i}")).expect("write");
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let before = done.load(Ordering::Relaxed);
    k[0].kill9();
    if let Some(v) = &volume {
        for i in 0..20 {
            std::fs::write(v.path(&format!("after-{i}")), format!("file {i}"))
                .expect("a new file after instance a died (a data key from b)");
            let back = std::fs::read_to_string(v.path(&format!("before-{i}")))
                .expect("an old file after instance a died");
            assert_eq!(back, format!("file {i}"));
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let errors: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker"))
        .collect();
    let after = done.load(Ordering::Relaxed);
    eprintln!(
        "{before} round trips before the kill, {} after; errors: {errors:?}",
        after - before
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert!(after > before, "clients kept being served after the kill");
    if let Some(v) = &volume {
        for i in 0..20 {
            let back = std::fs::read_to_string(v.path(&format!("after-{i}"))).expect("read");
            assert_eq!(back, format!("file {i}"));
        }
    }
    drop(mount);
    // Restarted on its state dir, the instance takes its place again.
    k[0].spawn();
    assert!(
        k[0].client()
            .call(DescribeKeyRequest {
                key_id: key.clone()
            })
            .is_ok()
    );
    if volume.is_none() {
        panic!("the kmsfs half of this test needs root and /dev/fuse");
    }
}

/// An in-process daemon on etcd with a manual clock.
fn daemon(
    etcd: &EtcdCluster,
    dir: &Path,
    i: usize,
    root: &Path,
    clock: Arc<ManualClock>,
) -> Daemon {
    let mut cfg = DaemonConfig::new(dir.join(format!("s{i}")), dir.join(format!("d{i}.sock")));
    cfg.root_key_file = Some(root.to_path_buf());
    let mut e = kmsd::store::etcd::EtcdConfig::parse_url(&etcd.url()).expect("url");
    e.lease_ttl_secs = 2;
    cfg.etcd = Some(e);
    cfg.sweep_interval = Duration::from_millis(300);
    Daemon::start(cfg, clock).expect("start an in-process daemon on etcd")
}

/// Committed sweeper events in one chain, by name: (event, key arn).
fn sweeper_commits(dir: &Path) -> Vec<(String, String)> {
    kmsd_audit::query(&kmsd_audit::audit_dir(dir), kmsd_audit::Filter::default())
        .expect("query")
        .map(|e| e.expect("record").record)
        .filter(|r| {
            r.principal
                .as_ref()
                .is_some_and(|p| p.invoked_by.as_deref() == Some("kmsd.sweeper"))
                && r.error_code.is_none()
        })
        .map(|r| {
            (
                r.event_name,
                r.resources.first().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn the_sweeper_runs_each_deletion_and_rotation_exactly_once_across_instances() {
    let etcd = EtcdCluster::start(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = root_key(dir.path());
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000)));
    let d: Vec<Daemon> = (0..2)
        .map(|i| daemon(&etcd, dir.path(), i, &root, clock.clone()))
        .collect();
    let c = Client::connect(d[0].socket()).expect("connect");
    let n = 20;
    let mut doomed = Vec::new();
    let mut rotating = Vec::new();
    for _ in 0..n {
        let id = c
            .call(CreateKeyRequest::default())
            .expect("key")
            .key_metadata
            .key_id;
        c.call(ScheduleKeyDeletionRequest {
            key_id: id.clone(),
            pending_window_in_days: Some(7),
        })
        .expect("schedule");
        doomed.push(id);
        let id = c
            .call(CreateKeyRequest::default())
            .expect("key")
            .key_metadata
            .key_id;
        c.call(EnableKeyRotationRequest {
            key_id: id.clone(),
            rotation_period_in_days: Some(90),
        })
        .expect("rotation");
        rotating.push(id);
    }
    clock.advance_days(91);
    let b = Client::connect(d[1].socket()).expect("connect b");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let gone = doomed
            .iter()
            .all(|k| b.call(DescribeKeyRequest { key_id: k.clone() }).is_err());
        let rotated = rotating.iter().all(|k| {
            b.call(ListKeyRotationsRequest {
                key_id: k.clone(),
                limit: Some(10),
                marker: None,
            })
            .is_ok_and(|r| r.rotations.len() == 1)
        });
        if gone && rotated {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sweeper did not finish within 15 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // One more sweep interval on both: nothing more may commit.
    std::thread::sleep(Duration::from_secs(1));
    let mut all: Vec<(String, String)> = (0..2)
        .flat_map(|i| sweeper_commits(&dir.path().join(format!("s{i}"))))
        .collect();
    all.sort();
    let deletes = all.iter().filter(|(e, _)| e == "DeleteKey").count();
    let rotations = all.iter().filter(|(e, _)| e == "RotateKey").count();
    assert_eq!((deletes, rotations), (n, n), "{all:?}");
    let distinct: BTreeSet<&(String, String)> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "an event committed twice: {all:?}"
    );
    // Each chain verifies, and as a set (two instances, two ids).
    let dirs: Vec<PathBuf> = (0..2)
        .map(|i| kmsd_audit::audit_dir(&dir.path().join(format!("s{i}"))))
        .collect();
    drop(c);
    drop(b);
    drop(d);
    let set = kmsd_audit::verify_set(&dirs, None).expect("verify the set");
    assert!(
        set.is_intact(),
        "{}",
        serde_json::to_string(&set).unwrap_or_default()
    );
}
