//! kmsd on etcd beside kmsd on redb, in one run: GenerateDataKey, Decrypt
//! and CreateKey at 16 clients, against (a) one kmsd on redb and (b) two
//! kmsd instances sharing a 3-member etcd cluster, the clients spread over
//! both (8 each); audit on everywhere, all state on /dev/shm when it
//! exists. Then the staleness bound as measured: DisableKey on instance A,
//! Encrypt on B every millisecond until B refuses; the time from A's
//! acknowledgement to B's refusal, over `KMSD_BENCH_ROUNDS` rounds (100).
//!
//! Run: `cargo bench --bench kmsd_etcd`. `KMSD_BENCH_SECS` per cell (3),
//! `KMSD_BENCH_REPS` alternating repetitions (3; the median is printed).
//! Three etcd members and two kmsd processes share this machine's cores,
//! so the etcd figures are a floor, not what separate hosts give.

#[path = "../tests/common/mod.rs"]
mod common;

use common::KmsdProcess;
use common::etcd::EtcdCluster;
use kmsd_client::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Op {
    GenerateDataKey,
    Decrypt,
    CreateKey,
}

const OPS: [(&str, Op); 3] = [
    ("GenerateDataKey", Op::GenerateDataKey),
    ("Decrypt", Op::Decrypt),
    ("CreateKey", Op::CreateKey),
];

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ctx() -> EncryptionContext {
    [("kmsfs:volume".to_string(), "bench".to_string())].into()
}

fn gdk(key: &str) -> GenerateDataKeyRequest {
    GenerateDataKeyRequest {
        key_id: key.into(),
        encryption_context: ctx(),
        key_spec: Some(DataKeySpec::Aes256),
        number_of_bytes: None,
        grant_tokens: vec![],
    }
}

/// ops/s and p99 of `clients` clients spread over `sockets`.
fn run_cell(
    sockets: &[PathBuf],
    key: &str,
    blob: &Blob,
    op: Op,
    clients: usize,
    secs: f64,
) -> (f64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let c = Client::connect(&sockets[i % sockets.len()]).expect("connect");
            let (stop, key, blob) = (stop.clone(), key.to_string(), blob.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(1 << 14);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ok = match op {
                        Op::GenerateDataKey => c.call(gdk(&key)).is_ok(),
                        Op::Decrypt => c
                            .call(DecryptRequest {
                                ciphertext_blob: blob.clone(),
                                encryption_context: ctx(),
                                key_id: None,
                                grant_tokens: vec![],
                            })
                            .is_ok(),
                        Op::CreateKey => c.call(CreateKeyRequest::default()).is_ok(),
                    };
                    assert!(ok, "a request failed during the benchmark");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("bench thread"))
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let p99 = all
        .get(((all.len() as f64 * 0.99) as usize).min(all.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    (all.len() as f64 / elapsed, p99)
}

fn shm() -> tempfile::TempDir {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    tempfile::tempdir_in(base).expect("tempdir")
}

/// Runs every cell against `sockets` (one key made on the first).
fn cells(sockets: &[PathBuf], secs: f64) -> Vec<(f64, Duration)> {
    let c = Client::connect(&sockets[0]).expect("connect");
    let key = c
        .call(CreateKeyRequest::default())
        .expect("key")
        .key_metadata
        .key_id;
    let blob = c.call(gdk(&key)).expect("gdk").ciphertext_blob;
    // The key known everywhere first.
    for s in sockets {
        let other = Client::connect(s).expect("connect");
        let t = Instant::now();
        while other.call(gdk(&key)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "key not known on {}",
                s.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    OPS.iter()
        .map(|(_, op)| run_cell(sockets, &key, &blob, *op, 16, secs))
        .collect()
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// DisableKey on `a` → refused on `b`, over `rounds` rounds.
fn staleness(a: &Path, b: &Path, rounds: usize) -> Vec<Duration> {
    let (ca, cb) = (
        Client::connect(a).expect("a"),
        Client::connect(b).expect("b"),
    );
    let key = ca
        .call(CreateKeyRequest::default())
        .expect("key")
        .key_metadata
        .key_id;
    let enc = |c: &Client| {
        c.call(EncryptRequest {
            key_id: key.clone(),
            plaintext: SecretBytes::from_slice(b"x"),
            encryption_context: Default::default(),
            grant_tokens: vec![],
        })
    };
    let wait = |ok_wanted: bool| -> Duration {
        let t = Instant::now();
        loop {
            if enc(&cb).is_ok() == ok_wanted {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no change on b within 10 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait(true);
    let mut out = Vec::new();
    for _ in 0..rounds {
        ca.call(DisableKeyRequest {
            key_id: key.clone(),
        })
        .expect("disable");
        out.push(wait(false));
        ca.call(EnableKeyRequest {
            key_id: key.clone(),
        })
        .expect("enable");
        wait(true);
    }
    out
}

fn main() {
    let secs = env_num("KMSD_BENCH_SECS", 3.0);
    let reps = env_num("KMSD_BENCH_REPS", 3.0).max(1.0) as usize;
    let rounds = env_num("KMSD_BENCH_ROUNDS", 100.0).max(1.0) as usize;
    let mut redb = Vec::new();
    let mut etcd_rows = Vec::new();
    let mut stale = Vec::new();
    for rep in 0..reps {
        eprintln!("repetition {} of {reps}", rep + 1);
        {
            let tmp = shm();
            let k = KmsdProcess::start_at(&tmp.path().join("s"), &tmp.path().join("k.sock"), &[]);
            redb.push(cells(std::slice::from_ref(&k.socket), secs));
        }
        {
            let cluster = EtcdCluster::start(3);
            let tmp = shm();
            let root = tmp.path().join("root.key");
            std::fs::write(&root, [7u8; 32]).expect("root key");
            std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod root key");
            let url = cluster.url();
            let args = [
                "--store",
                &url,
                "--root-key-file",
                root.to_str().expect("utf-8"),
            ];
            let k: Vec<KmsdProcess> = (0..2)
                .map(|i| {
                    KmsdProcess::start_at(
                        &tmp.path().join(format!("s{i}")),
                        &tmp.path().join(format!("k{i}.sock")),
                        &args,
                    )
                })
                .collect();
            let sockets: Vec<PathBuf> = k.iter().map(|k| k.socket.clone()).collect();
            etcd_rows.push(cells(&sockets, secs));
            stale.extend(staleness(&sockets[0], &sockets[1], rounds));
        }
    }
    println!(
        "\n16 clients, audit on, state on /dev/shm; median of {reps} runs of {secs} s per cell\n"
    );
    println!(
        "| operation | 1 kmsd on redb: ops/s | p99 | 2 kmsd on etcd (3 members): ops/s | p99 | etcd/redb |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, (name, _)) in OPS.iter().enumerate() {
        let r = median(redb.iter().map(|row| row[i].0).collect());
        let rp = median(redb.iter().map(|row| row[i].1).collect());
        let e = median(etcd_rows.iter().map(|row| row[i].0).collect());
        let ep = median(etcd_rows.iter().map(|row| row[i].1).collect());
        println!(
            "| {name} | {r:.0} | {} µs | {e:.0} | {} µs | {:.2} |",
            rp.as_micros(),
            ep.as_micros(),
            e / r
        );
    }
    stale.sort();
    let pct = |p: f64| stale[((stale.len() - 1) as f64 * p).round() as usize];
    println!(
        "\nstaleness (DisableKey acknowledged on A → Encrypt refused on B), {} rounds: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (bound: 1000 ms)",
        stale.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
}
