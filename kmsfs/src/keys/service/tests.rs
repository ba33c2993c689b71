use super::*;
use crate::format::offsets::cipher_len;
use crate::keys::ManualClock;
use crate::keys::testing::FakeKms;

const TTL: Duration = Duration::from_secs(300);

fn service(kms: &Arc<FakeKms>, clock: &Arc<ManualClock>, pool: usize) -> KeyService {
    let opts = KeyOptions {
        cache_capacity: 8,
        cache_ttl: TTL,
        pool_size: pool,
        pool_retry: Duration::from_millis(10),
    };
    KeyService::with_backend(kms.clone(), VolumeId([7; 16]), opts, clock.clone())
}

fn setup(pool: usize) -> (Arc<FakeKms>, Arc<ManualClock>, KeyService) {
    let kms = Arc::new(FakeKms::new());
    let clock = Arc::new(ManualClock::new());
    let s = service(&kms, &clock, pool);
    (kms, clock, s)
}

/// Encrypts with one cipher and decrypts with another.
fn same_key(a: &FileCipher, b: &FileCipher) -> bool {
    let mut ct = vec![0; cipher_len(10)];
    a.encrypt_blocks(0, b"0123456789", &mut ct, true).unwrap();
    let mut out = [0u8; 10];
    b.decrypt_blocks(0, &ct, &mut out, true).is_ok() && &out == b"0123456789"
}

#[test]
fn new_file_then_open_is_a_cache_hit() {
    let (kms, _clock, s) = setup(0);
    let f = s.new_file().unwrap();
    assert_eq!(f.header.len(), crate::format::HEADER_SIZE);
    assert_eq!(kms.generates(), 1);
    let c = s.open(&f.header).unwrap();
    assert_eq!(c.file_id(), f.file_id);
    assert!(same_key(&f.cipher, &c));
    assert_eq!(kms.decrypts(), 0, "a hit must not call kmsd");
    let st = s.stats();
    assert_eq!(
        (st.hits, st.misses, st.kmsd_calls, st.entries),
        (1, 0, 1, 1)
    );
}

#[test]
fn miss_unwraps_once_then_hits() {
    let (kms, clock, s) = setup(0);
    let f = s.new_file().unwrap();
    s.clear();
    for _ in 0..5 {
        let c = s.open(&f.header).unwrap();
        assert!(same_key(&f.cipher, &c));
    }
    assert_eq!(kms.decrypts(), 1);
    // After the TTL kmsd is asked again.
    clock.advance(TTL);
    s.open(&f.header).unwrap();
    assert_eq!(kms.decrypts(), 2);
    let st = s.stats();
    assert_eq!((st.hits, st.misses, st.expirations), (4, 2, 1));
}

#[test]
fn disabled_key_stops_opens_after_the_ttl() {
    let (kms, clock, s) = setup(0);
    let f = s.new_file().unwrap();
    kms.set_denied(true);
    // Still cached: opens work.
    assert!(s.open(&f.header).is_ok());
    clock.advance(TTL + Duration::from_secs(1));
    let e = s.open(&f.header).err().unwrap();
    assert!(matches!(e, KeyError::Denied(_)), "{e}");
    assert_eq!(e.errno(), libc::EACCES);
    assert_eq!(s.stats().kmsd_errors, 1);
    kms.set_denied(false);
    kms.set_down(true);
    let e = s.open(&f.header).err().unwrap();
    assert_eq!(e.errno(), libc::EIO);
    let e = s.new_file().err().unwrap();
    assert!(matches!(e, KeyError::Unavailable(_)));
}

#[test]
fn edited_headers_are_corrupt_even_on_a_cache_hit() {
    let (kms, _clock, s) = setup(0);
    let f = s.new_file().unwrap();
    // Every byte of the header, flipped, with the key still cached.
    for i in 0..f.header.len() {
        let mut h = f.header.clone();
        h[i] ^= 0x40;
        let e = s
            .open(&h)
            .err()
            .unwrap_or_else(|| panic!("byte {i} accepted"));
        assert_eq!(e.errno(), libc::EIO, "byte {i}");
    }
    assert!(s.open(&f.header[..100]).is_err());
    // Only edits to the wrapped blob (a different cache key) reached kmsd.
    assert!(kms.decrypts() <= 456, "{}", kms.decrypts());
}

#[test]
fn headers_from_another_volume_do_not_open() {
    let kms = Arc::new(FakeKms::new());
    let clock = Arc::new(ManualClock::new());
    let a = service(&kms, &clock, 0);
    let b = KeyService::with_backend(
        kms.clone(),
        VolumeId([8; 16]),
        KeyOptions {
            pool_size: 0,
            ..KeyOptions::default()
        },
        clock.clone(),
    );
    let f = a.new_file().unwrap();
    let e = b.open(&f.header).err().unwrap();
    assert!(matches!(e, KeyError::Corrupt(_)), "{e}");
}

#[test]
fn pool_serves_new_files_without_kmsd_calls() {
    let (kms, _clock, s) = setup(4);
    assert!(s.pool.wait_ready(4, Duration::from_secs(10)));
    let before = kms.generates();
    let t0 = std::time::Instant::now();
    let f = s.new_file().unwrap();
    let took = t0.elapsed();
    // The new file's key came from the pool; the refill is in the background.
    assert_eq!(s.stats().pool_taken, 1);
    assert!(kms.generates() <= before + 1);
    assert!(took < Duration::from_secs(1));
    let c = s.open(&f.header).unwrap();
    assert!(same_key(&f.cipher, &c));
    // Distinct files, distinct ids.
    let g = s.new_file().unwrap();
    assert_ne!(f.file_id, g.file_id);
}

#[test]
fn empty_pool_falls_back_to_kmsd() {
    let (kms, _clock, s) = setup(0);
    s.new_file().unwrap();
    s.new_file().unwrap();
    assert_eq!(kms.generates(), 2);
    assert_eq!(s.stats().pool_empty, 2);
}

#[test]
fn clear_wipes_the_cache() {
    let (kms, _clock, s) = setup(0);
    let f = s.new_file().unwrap();
    assert_eq!(s.stats().entries, 1);
    s.clear();
    assert_eq!(s.stats().entries, 0);
    s.open(&f.header).unwrap();
    assert_eq!(kms.decrypts(), 1);
}

#[test]
fn service_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<KeyService>();
}

#[test]
fn concurrent_opens_share_the_cache() {
    let (kms, _clock, s) = setup(0);
    let s = Arc::new(s);
    let headers: Vec<Vec<u8>> = (0..4).map(|_| s.new_file().unwrap().header).collect();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            let hs = headers.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    for h in &hs {
                        s.open(h).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(kms.decrypts(), 0);
    assert_eq!(s.stats().hits, 800);
}

#[test]
fn concurrent_misses_of_one_key_make_one_kmsd_call() {
    let (kms, _clock, s) = setup(0);
    let s = Arc::new(s);
    let f = s.new_file().unwrap();
    s.clear();
    kms.set_decrypt_delay(Duration::from_millis(200));
    let start = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (s, h, start) = (s.clone(), f.header.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                s.open(&h).map(|c| c.file_id())
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), f.file_id);
    }
    assert_eq!(kms.decrypts(), 1, "one unwrap for eight concurrent misses");
    // A failure is shared the same way, and not cached.
    s.clear();
    kms.set_down(true);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (s, h) = (s.clone(), f.header.clone());
            std::thread::spawn(move || s.open(&h).map(|_| ()))
        })
        .collect();
    for t in threads {
        assert!(matches!(t.join().unwrap(), Err(KeyError::Unavailable(_))));
    }
    kms.set_down(false);
    kms.set_decrypt_delay(Duration::ZERO);
    assert!(s.open(&f.header).is_ok());
}
