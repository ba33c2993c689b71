//! GenerateDataKey and Decrypt over the socket at 1, 4 and 16 concurrent
//! clients (one connection each, one request in flight per client):
//! ops/s, p50 and p99 latency. Starts its own kmsd (release build) on a
//! temp dir (`KMSD_BENCH_DIR` to choose where: the audit trail's fsyncs
//! make the disk matter); `KMSD_BENCH_SECS` sets the time per cell (default 3).
//!
//! Run: `cargo bench --bench kmsd_throughput`.
//! Target on a 2-core machine: >= 50,000 GenerateDataKey/s at 16 clients
//! with p99 <= 1 ms.

#[path = "../tests/common/mod.rs"]
mod common;

use kmsd_client::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Op {
    GenerateDataKey,
    Decrypt,
}

struct Cell {
    ops: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
}

fn run_cell(
    socket: &std::path::Path,
    key: &str,
    blob: &Blob,
    op: Op,
    clients: usize,
    secs: f64,
) -> Cell {
    let stop = Arc::new(AtomicBool::new(false));
    let ctx: EncryptionContext = [("kmsfs:volume".to_string(), "bench".to_string())].into();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (c, stop, key, blob, ctx) = (
                Client::connect(socket).expect("connect"),
                stop.clone(),
                key.to_string(),
                blob.clone(),
                ctx.clone(),
            );
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(1 << 16);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match op {
                        Op::GenerateDataKey => {
                            let r = c.call(GenerateDataKeyRequest {
                                key_id: key.clone(),
                                encryption_context: ctx.clone(),
                                key_spec: Some(DataKeySpec::Aes256),
                                number_of_bytes: None,
                                grant_tokens: vec![],
                            });
                            assert!(r.is_ok());
                        }
                        Op::Decrypt => {
                            let r = c.call(DecryptRequest {
                                ciphertext_blob: blob.clone(),
                                encryption_context: ctx.clone(),
                                key_id: None,
                                grant_tokens: vec![],
                            });
                            assert!(r.is_ok());
                        }
                    }
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
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Cell {
        ops: all.len(),
        secs: elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

/// One kmsd build under test.
struct Build {
    name: String,
    program: Option<std::path::PathBuf>,
}

/// ops/s, p50 and p99 of every (operation, clients) cell, in table order.
type Row = Vec<(f64, Duration, Duration)>;

const OPS: [(&str, Op); 2] = [
    ("GenerateDataKey", Op::GenerateDataKey),
    ("Decrypt", Op::Decrypt),
];
/// Client counts of the table; `KMSD_BENCH_CLIENTS=16` (a comma list)
/// picks some, e.g. to profile one cell.
fn clients() -> Vec<usize> {
    std::env::var("KMSD_BENCH_CLIENTS")
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 4, 16])
}

/// Starts `build` on a fresh state dir in `base` and runs every cell.
fn run_build(build: &Build, base: Option<&str>, extra: &[&str], secs: f64) -> Row {
    let tmp = match base {
        Some(d) => tempfile::tempdir_in(d).expect("tempdir in KMSD_BENCH_DIR"),
        None => tempfile::tempdir().expect("tempdir"),
    };
    let mut k = common::KmsdProcess::start_program(
        build.program.as_deref(),
        &tmp.path().join("state"),
        &tmp.path().join("kmsd.sock"),
        extra,
        None,
    );
    let key = k.create_key("bench").key_id;
    let ctx: EncryptionContext = [("kmsfs:volume".to_string(), "bench".to_string())].into();
    let blob = k
        .client()
        .call(GenerateDataKeyRequest {
            key_id: key.clone(),
            encryption_context: ctx,
            key_spec: Some(DataKeySpec::Aes256),
            number_of_bytes: None,
            grant_tokens: vec![],
        })
        .expect("gdk")
        .ciphertext_blob;
    let mut row = Vec::new();
    for (_, op) in OPS {
        for &clients in &clients() {
            let c = run_cell(&k.socket, &key, &blob, op, clients, secs);
            row.push((c.ops as f64 / c.secs, c.p50, c.p99));
        }
    }
    k.terminate();
    row
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would too: only
    // run when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let env_num = |name: &str, default: f64| -> f64 {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let secs = env_num("KMSD_BENCH_SECS", 3.0);
    let extra: Vec<String> = std::env::var("KMSD_BENCH_ARGS")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let extra_refs: Vec<&str> = extra.iter().map(String::as_str).collect();
    // KMSD_BENCH_DIR: where the state (store and audit trail) lives; the
    // audit trail fsyncs once per group commit, so a disk's flush latency
    // bounds throughput there. Default: the system temp dir.
    let base = std::env::var("KMSD_BENCH_DIR").ok();
    // KMSD_BENCH_BASELINE: another kmsd binary, run alternately with this
    // build (KMSD_BENCH_REPS times each, default 3) for a side-by-side ratio.
    let mut builds = vec![Build {
        name: "this build".into(),
        program: None,
    }];
    if let Ok(p) = std::env::var("KMSD_BENCH_BASELINE") {
        builds.push(Build {
            name: format!("baseline {p}"),
            program: Some(p.into()),
        });
    }
    let reps = env_num("KMSD_BENCH_REPS", if builds.len() > 1 { 3.0 } else { 1.0 }) as usize;
    println!(
        "kmsd socket benchmark ({secs} s per cell, one connection per client, one request in flight per client, {reps} run(s) per build, median shown, state in {}){}",
        base.as_deref().unwrap_or("the temp dir"),
        if extra.is_empty() {
            String::new()
        } else {
            format!(", kmsd args: {}", extra.join(" "))
        }
    );
    let mut runs: Vec<Vec<Row>> = builds.iter().map(|_| Vec::new()).collect();
    for _ in 0..reps.max(1) {
        for (b, out) in builds.iter().zip(runs.iter_mut()) {
            out.push(run_build(b, base.as_deref(), &extra_refs, secs));
        }
    }
    for (b, rows) in builds.iter().zip(&runs) {
        println!("\n{}", b.name);
        println!(
            "{:<16} {:>7} {:>12} {:>10} {:>10}",
            "operation", "clients", "ops/s", "p50 µs", "p99 µs"
        );
        let mut cell = 0;
        for (name, _) in OPS {
            for &clients in &clients() {
                let ops = median(rows.iter().map(|r| r[cell].0).collect());
                let p50 = median(rows.iter().map(|r| r[cell].1).collect());
                let p99 = median(rows.iter().map(|r| r[cell].2).collect());
                println!(
                    "{:<16} {:>7} {:>12.0} {:>10.1} {:>10.1}",
                    name,
                    clients,
                    ops,
                    p50.as_secs_f64() * 1e6,
                    p99.as_secs_f64() * 1e6
                );
                cell += 1;
            }
        }
    }
    if runs.len() > 1 {
        println!("\nratio this build / baseline (ops/s, medians)");
        let mut cell = 0;
        for (name, _) in OPS {
            for &clients in &clients() {
                let this = median(runs[0].iter().map(|r| r[cell].0).collect());
                let base = median(runs[1].iter().map(|r| r[cell].0).collect());
                println!("{name:<16} {clients:>7} {:>12.2}", this / base);
                cell += 1;
            }
        }
    }
}
