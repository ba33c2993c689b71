//! Measurements, not checks of correctness: run with
//! `cargo test --release -p kmsfs --test throughput -- --ignored --nocapture`.
//! Each prints one line per figure.

#[path = "../../tests/common/mod.rs"]
mod common;

use kmsfs::format::offsets::cipher_len;
use kmsfs::format::{DataKey, FileCipher, FileId};
use kmsfs::keys::{KeyOptions, KeyService, Volume, init_volume};
use kmsfs::tools;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

#[test]
#[ignore]
fn block_codec() {
    let c = FileCipher::new(&DataKey::random().unwrap(), FileId::random().unwrap());
    for run in [4096usize, 128 << 10, 1 << 20] {
        let plain = vec![7u8; run];
        let mut ct = vec![0u8; cipher_len(run)];
        let mut out = vec![0u8; run];
        let iters = (256 << 20) / run;
        let t = Instant::now();
        for i in 0..iters {
            c.encrypt_blocks(i as u64, &plain, &mut ct, true).unwrap();
        }
        let enc = t.elapsed();
        c.encrypt_blocks(0, &plain, &mut ct, true).unwrap();
        let t = Instant::now();
        for _ in 0..iters {
            c.decrypt_blocks(0, &ct, &mut out, true).unwrap();
        }
        let dec = t.elapsed();
        println!(
            "block codec, {} KiB runs: encrypt {:.0} MiB/s, decrypt {:.0} MiB/s (one thread)",
            run >> 10,
            mib_per_s(iters * run, enc),
            mib_per_s(iters * run, dec)
        );
    }
}

#[test]
#[ignore]
fn keys_and_fsck_with_kmsd() {
    let kmsd = common::KmsdProcess::start();
    let arn = kmsd.create_key("measure").arn;
    let client = Arc::new(kmsd.client());
    let dir = tempfile::tempdir().unwrap();
    init_volume(client.clone(), dir.path(), &arn).unwrap();
    let opts = KeyOptions {
        pool_size: 0,
        ..KeyOptions::default()
    };
    let v = Volume::open(client.clone(), dir.path(), None, opts.clone()).unwrap();

    // new_file straight from kmsd.
    let n = 300;
    let t = Instant::now();
    let headers: Vec<Vec<u8>> = (0..n).map(|_| v.keys.new_file().unwrap().header).collect();
    println!("new_file without pool: {:?} each", t.elapsed() / n);

    // open: miss (kmsd Decrypt) and hit.
    v.keys.clear();
    let t = Instant::now();
    for h in &headers {
        v.keys.open(h).unwrap();
    }
    println!(
        "open, cache miss (kmsd Decrypt): {:?} each",
        t.elapsed() / n
    );
    let t = Instant::now();
    for _ in 0..20 {
        for h in &headers {
            v.keys.open(h).unwrap();
        }
    }
    println!("open, cache hit: {:?} each", t.elapsed() / (20 * n));
    let s = v.keys.stats();
    assert_eq!(s.kmsd_calls, 2 * n as u64);

    // new_file from a warm pool.
    let pooled = KeyService::new(
        client.clone(),
        &v.config,
        KeyOptions {
            pool_size: 64,
            ..KeyOptions::default()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while pooled.stats().pool_available < 64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = Instant::now();
    for _ in 0..64 {
        pooled.new_file().unwrap();
    }
    let took = t.elapsed() / 64;
    let st = pooled.stats();
    println!(
        "new_file from a warm pool: {took:?} each ({} of 64 pooled)",
        st.pool_taken
    );

    // fsck over 64 MiB in 16 files.
    let payload = vec![0x5au8; 4 << 20];
    for i in 0..16 {
        tools::put(&v, Path::new(&format!("f{i}")), &payload).unwrap();
    }
    v.keys.clear();
    let t = Instant::now();
    let r = tools::fsck_volume(&v, false).unwrap();
    let d = t.elapsed();
    assert!(r.is_clean(), "{r}");
    println!(
        "fsck: {} MiB in {d:?} = {:.0} MiB/s",
        r.bytes >> 20,
        mib_per_s(r.bytes as usize, d)
    );
}
