//! Audit log throughput: records/s with 1, 4 and 16 threads appending
//! synchronously (each waits until its record is durable).
//!
//! `cargo run --release -p kmsd-audit --example throughput -- [DIR] [SECONDS]`
//! DIR defaults to a temp dir under /dev/shm (tmpfs) when it exists; pass a
//! directory on a real disk to measure fsync-bound throughput.

use kmsd_audit::{AuditEvent, AuditLog, Options, Principal, audit_key_from_root, verify};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let shm = std::path::Path::new("/dev/shm");
            if shm.is_dir() {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            }
        });
    let secs: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    println!(
        "audit log throughput in {} ({secs} s per run)",
        base.display()
    );
    for threads in [1usize, 4, 16] {
        let dir = tempfile::tempdir_in(&base)?;
        let log = Arc::new(AuditLog::open(
            dir.path(),
            audit_key_from_root(&[7; 32]),
            Options::default(),
        )?);
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (log, stop, count) = (log.clone(), stop.clone(), count.clone());
                std::thread::spawn(move || -> Result<(), kmsd_audit::AuditError> {
                    let principal = Principal::from_peer(1000, 1000, Some(std::process::id() as i32));
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let ev = AuditEvent::new("Encrypt", format!("{t}-{i}"), principal.clone())
                            .with_parameters(json!({
                                "KeyId": "alias/bench",
                                "EncryptionContext": {"volume": "v1", "file": i.to_string()},
                            }))
                            .with_resource("arn:aws:kms:local:111122223333:key/0b4c2c1e-7a8e-4a52-9e4b-3f0c8e6d1a2b");
                        log.append(&ev)?;
                        count.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                    Ok(())
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("submitter panicked"))??;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let n = count.load(Ordering::Relaxed);
        Arc::try_unwrap(log)
            .map_err(|_| anyhow::anyhow!("log still shared"))?
            .close()?;
        let bytes: u64 = std::fs::read_dir(dir.path())?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("audit-"))
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum();
        let report = verify(dir.path(), Some(&audit_key_from_root(&[7; 32])))?;
        println!(
            "{threads:>2} threads: {:>9.0} records/s  ({n} records, {:.0} B/record, verify: {})",
            n as f64 / elapsed,
            bytes as f64 / n.max(1) as f64,
            if report.is_intact() {
                "intact"
            } else {
                "TAMPERED"
            }
        );
    }
    Ok(())
}
