//! Content I/O against an in-memory model, on a real backing file, with a
//! local key source (the key is "wrapped" as itself: tests only).

use super::*;
use crate::format::{DataKey, FileId, Header, VolumeId};
use crate::fs::inode::InodeTable;
use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

struct LocalKeys {
    volume: VolumeId,
    opened: AtomicUsize,
    created: AtomicUsize,
    /// Header version: 1, or 2 (ciphers with xattr keys).
    version: u16,
}

impl LocalKeys {
    fn new(sizes: Sizes) -> Self {
        LocalKeys {
            volume: VolumeId::random().unwrap(),
            opened: AtomicUsize::new(0),
            created: AtomicUsize::new(0),
            version: match sizes {
                Sizes::V1 => crate::format::HEADER_VERSION,
                Sizes::V2 => crate::format::HEADER_VERSION_2,
            },
        }
    }

    fn cipher(&self, key: &DataKey, id: FileId) -> FileCipher {
        if self.version == crate::format::HEADER_VERSION_2 {
            FileCipher::new_v2(key, id)
        } else {
            FileCipher::new(key, id)
        }
    }
}

impl KeySource for LocalKeys {
    fn new_file(&self) -> Result<(Arc<FileCipher>, Vec<u8>), KeyFailure> {
        self.created.fetch_add(1, Ordering::Relaxed);
        let key = DataKey::random().unwrap();
        let file_id = FileId::random().unwrap();
        let h = Header {
            file_id,
            wrapped_key: key.expose().to_vec(),
        };
        let bytes = h.encode_version(self.version, &key, &self.volume).unwrap();
        Ok((Arc::new(self.cipher(&key, file_id)), bytes))
    }

    fn open(&self, header: &[u8]) -> Result<Arc<FileCipher>, KeyFailure> {
        self.opened.fetch_add(1, Ordering::Relaxed);
        let bad = |e: &dyn std::fmt::Display| KeyFailure {
            errno: Errno::EIO,
            damaged: true,
            message: e.to_string(),
        };
        let h = Header::parse_version(header, self.version).map_err(|e| bad(&e))?;
        let key = DataKey::from_slice(&h.wrapped_key).ok_or_else(|| bad(&"key length"))?;
        h.verify_version(self.version, header, &key, &self.volume)
            .map_err(|e| bad(&e))?;
        Ok(Arc::new(self.cipher(&key, h.file_id)))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    file: File,
    table: InodeTable,
    inode: Arc<crate::fs::inode::Inode>,
    keys: LocalKeys,
    damage: Mutex<Vec<Fault>>,
    sizes: Sizes,
}

impl Fixture {
    fn new() -> Self {
        Fixture::of(Sizes::V1)
    }

    /// A format 2 file, created as kmsfs creates one: header and empty
    /// final block.
    fn v2() -> Self {
        let fx = Fixture::of(Sizes::V2);
        fx.with(|io| io.initialize()).unwrap();
        fx.keys.created.store(0, Ordering::Relaxed);
        fx
    }

    fn of(sizes: Sizes) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let root = CString::new(dir.path().as_os_str().as_bytes()).unwrap();
        let rfd = sys::open_root(&root).unwrap();
        let rst = sys::fstat(rfd.as_fd()).unwrap();
        let table = InodeTable::new(rfd, &rst);
        let fd = sys::open_path_at(table.root().fd(), c"f").unwrap();
        let st = sys::fstat(fd.as_fd()).unwrap();
        let inode = table.remember(fd, &st);
        Fixture {
            _dir: dir,
            path,
            file,
            table,
            inode,
            keys: LocalKeys::new(sizes),
            damage: Mutex::new(Vec::new()),
            sizes,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&FileIo<'_>) -> R) -> R {
        let on_fault = |d: &Fault| self.damage.lock().unwrap().push(d.clone());
        let io = FileIo {
            file: &self.file,
            inode: &self.inode,
            keys: &self.keys,
            on_fault: &on_fault,
            sizes: self.sizes,
        };
        f(&io)
    }

    fn write(&self, off: u64, data: &[u8]) {
        self.with(|io| io.write(off, data)).unwrap();
    }

    fn read(&self, off: u64, size: usize) -> Result<Vec<u8>, Errno> {
        self.with(|io| io.read(off, size, |b| b.to_vec()))
    }

    fn truncate(&self, n: u64) {
        self.with(|io| io.truncate(n)).unwrap();
    }

    fn backing_len(&self) -> u64 {
        std::fs::metadata(&self.path).unwrap().len()
    }

    /// Everything matches the model; also from a cold key cache.
    fn check(&self, model: &[u8]) {
        assert_eq!(
            self.backing_len(),
            self.sizes.cipher_size(model.len() as u64)
        );
        assert_eq!(self.with(|io| io.size()).unwrap(), model.len() as u64);
        let got = self.read(0, model.len() + 10).unwrap();
        assert!(
            got == model,
            "content differs from model (len {})",
            model.len()
        );
        self.inode.set_cipher(None);
        let got = self.read(0, model.len() + 10).unwrap();
        assert!(got == model, "content differs after reopening");
        assert!(self.damage.lock().unwrap().is_empty());
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

/// xorshift64*: deterministic test randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const EDGES: &[usize] = &[
    0,
    1,
    4095,
    4096,
    4097,
    8191,
    8192,
    8193,
    3 * 4096 + 5,
    300_000,
];

#[test]
fn whole_writes_at_block_edges_round_trip() {
    for &len in EDGES {
        let fx = Fixture::new();
        let data = pattern(len, 7);
        fx.write(0, &data);
        fx.check(&data);
        assert_eq!(
            fx.keys.created.load(Ordering::Relaxed),
            usize::from(len > 0)
        );
    }
}

#[test]
fn reads_at_every_edge_offset() {
    let fx = Fixture::new();
    let data = pattern(5 * 4096 + 17, 3);
    fx.write(0, &data);
    for &off in &[
        0usize,
        1,
        4095,
        4096,
        4097,
        8191,
        8192,
        5 * 4096,
        5 * 4096 + 16,
    ] {
        for &len in &[1usize, 2, 4095, 4096, 4097, 100_000] {
            let got = fx.read(off as u64, len).unwrap();
            let end = (off + len).min(data.len());
            assert_eq!(got, &data[off..end], "off {off} len {len}");
        }
    }
    assert!(fx.read(data.len() as u64, 10).unwrap().is_empty());
    assert!(fx.read(data.len() as u64 + 5000, 10).unwrap().is_empty());
}

#[test]
fn appends_of_every_size_keep_one_final_block() {
    for &step in &[1usize, 100, 4095, 4096, 4097, 10_000] {
        let fx = Fixture::new();
        let mut model = Vec::new();
        for i in 0..6 {
            let chunk = pattern(step, i);
            fx.write(model.len() as u64, &chunk);
            model.extend_from_slice(&chunk);
        }
        fx.check(&model);
    }
}

#[test]
fn writes_past_the_end_leave_holes() {
    let fx = Fixture::new();
    fx.write(0, b"head");
    fx.write(10 * 4096 + 3, b"tail");
    let mut model = b"head".to_vec();
    model.resize(10 * 4096 + 3, 0);
    model.extend_from_slice(b"tail");
    fx.check(&model);
    // A file that starts with a hole.
    let fx = Fixture::new();
    fx.write(3 * 4096 + 1, b"x");
    let mut model = vec![0u8; 3 * 4096 + 1];
    model.push(b'x');
    fx.check(&model);
}

#[test]
fn truncate_up_and_down_across_boundaries() {
    let fx = Fixture::new();
    let mut model = pattern(3 * 4096 + 100, 9);
    fx.write(0, &model);
    for &n in &[
        3 * 4096 + 100,
        3 * 4096,
        2 * 4096 + 1,
        4097,
        4096,
        4095,
        1,
        5000,
        9 * 4096,
        12_345,
        0,
        7,
    ] {
        fx.truncate(n as u64);
        model.resize(n, 0);
        fx.check(&model);
    }
}

#[test]
fn truncate_to_zero_gets_a_fresh_key() {
    let fx = Fixture::new();
    fx.write(0, b"first");
    let h1 = std::fs::read(&fx.path).unwrap()[..HEADER_SIZE].to_vec();
    fx.truncate(0);
    assert_eq!(fx.backing_len(), 0);
    fx.write(0, b"second");
    let h2 = std::fs::read(&fx.path).unwrap()[..HEADER_SIZE].to_vec();
    assert_ne!(h1, h2);
    fx.check(b"second");
}

#[test]
fn random_operations_match_a_model() {
    random_operations(Fixture::new());
}

#[test]
fn format2_random_operations_match_a_model() {
    random_operations(Fixture::v2());
}

fn random_operations(fx: Fixture) {
    let mut model: Vec<u8> = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for op in 0..400 {
        match rng.below(10) {
            0..=5 => {
                let off = rng.below(60_000) as usize;
                let max = if rng.below(4) == 0 { 70_000 } else { 5000 };
                let len = 1 + rng.below(max) as usize;
                let data = pattern(len, op as u8);
                fx.write(off as u64, &data);
                if model.len() < off + len {
                    model.resize(off + len, 0);
                }
                model[off..off + len].copy_from_slice(&data);
            }
            6 | 7 => {
                let n = rng.below(70_000) as usize;
                fx.truncate(n as u64);
                model.resize(n, 0);
            }
            _ => {
                let off = rng.below(70_000) as usize;
                let len = rng.below(20_000) as usize;
                let got = fx.read(off as u64, len).unwrap();
                let want = model.get(off..(off + len).min(model.len())).unwrap_or(&[]);
                assert_eq!(got, want, "op {op}: read {off}+{len}");
            }
        }
        if op % 50 == 0 {
            fx.check(&model);
        }
    }
    fx.check(&model);
}

#[test]
fn a_damaged_block_fails_only_its_reads() {
    let fx = Fixture::new();
    let data = pattern(4 * 4096, 1);
    fx.write(0, &data);
    let mut raw = std::fs::read(&fx.path).unwrap();
    raw[block_offset_in_file(2) as usize + 40] ^= 1;
    std::fs::write(&fx.path, &raw).unwrap();
    assert_eq!(fx.read(0, 8192).unwrap(), &data[..8192]);
    assert_eq!(fx.read(2 * 4096 + 10, 5), Err(Errno::EIO));
    let damage = fx.damage.lock().unwrap().clone();
    assert_eq!(damage.len(), 1);
    assert!(matches!(&damage[0], Fault::Block(b) if b.block == 2));
    assert_eq!(fx.read(3 * 4096, 4096).unwrap(), &data[3 * 4096..]);
    // Writing into the damaged block must not silently repair it with
    // garbage either: partial writes fail.
    assert_eq!(fx.with(|io| io.write(2 * 4096 + 1, b"x")), Err(Errno::EIO));
}

#[test]
fn truncated_backing_files_are_detected() {
    let fx = Fixture::new();
    fx.write(0, &pattern(3 * 4096, 2));
    // Drop the last whole block: the new last block is not final.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&fx.path)
        .unwrap();
    f.set_len(cipher_size(2 * 4096)).unwrap();
    assert_eq!(fx.read(4096, 4096), Err(Errno::EIO));
    // A size no valid file has.
    f.set_len(HEADER_SIZE as u64 + 10).unwrap();
    assert_eq!(fx.read(0, 1), Err(Errno::EIO));
    assert!(matches!(
        fx.damage.lock().unwrap().last(),
        Some(Fault::Size(_))
    ));
    // Truncating to zero through kmsfs repairs the file.
    fx.truncate(0);
    fx.damage.lock().unwrap().clear();
    fx.write(0, b"ok");
    fx.check(b"ok");
}

#[test]
fn one_key_per_file_and_the_header_is_read_once() {
    let fx = Fixture::new();
    fx.write(0, &pattern(10_000, 4));
    fx.write(20_000, &pattern(10, 4));
    fx.truncate(5000);
    assert_eq!(fx.keys.created.load(Ordering::Relaxed), 1);
    assert_eq!(fx.keys.opened.load(Ordering::Relaxed), 0);
    fx.inode.set_cipher(None);
    fx.read(0, 10).unwrap();
    fx.read(100, 10).unwrap();
    assert_eq!(fx.keys.opened.load(Ordering::Relaxed), 1);
    assert_eq!(fx.table.len(), 2);
}

#[test]
fn megabyte_runs_round_trip() {
    let fx = Fixture::new();
    let data = pattern((1 << 20) + 4097, 5);
    fx.write(0, &data);
    fx.write(12_345, &pattern(1 << 20, 6));
    let mut model = data.clone();
    model.resize(12_345 + (1 << 20), 0);
    model[12_345..12_345 + (1 << 20)].copy_from_slice(&pattern(1 << 20, 6));
    fx.check(&model);
}

/// Throughput of the block codec and of the write path (run with
/// `cargo test --release -p kmsfs -- --ignored --nocapture codec_speed`).
#[test]
#[ignore]
fn codec_speed() {
    let key = DataKey::random().unwrap();
    let c = FileCipher::new(&key, FileId::random().unwrap());
    let plain = vec![7u8; 1 << 20];
    let mut out = vec![0u8; cipher_len(1 << 20)];
    let t = std::time::Instant::now();
    for i in 0..200 {
        c.encrypt_blocks(i * 256, &plain, &mut out, false).unwrap();
    }
    let e = t.elapsed();
    println!(
        "encrypt 1 MiB x200 one thread: {:.0} MB/s",
        200.0 * 1.048576 / e.as_secs_f64()
    );
    let mut back = vec![0u8; 1 << 20];
    let t = std::time::Instant::now();
    for _ in 0..200 {
        c.decrypt_blocks(199 * 256, &out, &mut back, false).unwrap();
    }
    let e = t.elapsed();
    println!(
        "decrypt 1 MiB x200 one thread: {:.0} MB/s",
        200.0 * 1.048576 / e.as_secs_f64()
    );
    let fx = Fixture::new();
    let t = std::time::Instant::now();
    for i in 0..200u64 {
        fx.write(i << 20, &plain);
    }
    let e = t.elapsed();
    println!(
        "FileIo::write 1 MiB appends x200: {:.0} MB/s",
        200.0 * 1.048576 / e.as_secs_f64()
    );
}

/// In-place vs separate-buffer AES-GCM (informational).
#[test]
#[ignore]
fn aead_in_place_speed() {
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::aead::inout::InOutBuf;
    use aes_gcm::{Aes256Gcm, KeyInit};
    let aead = Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
    let nonce = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::from([1u8; 12]);
    let src = vec![5u8; 4096];
    let mut dst = vec![0u8; 4096];
    let n = 256 * 200;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let buf = InOutBuf::new(&src, &mut dst).unwrap();
        aead.encrypt_inout_detached(&nonce, b"aad", buf).unwrap();
    }
    let sep = t.elapsed();
    let t = std::time::Instant::now();
    for _ in 0..n {
        aead.encrypt_inout_detached(&nonce, b"aad", dst.as_mut_slice().into())
            .unwrap();
    }
    let inplace = t.elapsed();
    let mb = n as f64 * 4096.0 / 1e6;
    println!(
        "separate: {:.0} MB/s, in place: {:.0} MB/s",
        mb / sep.as_secs_f64(),
        mb / inplace.as_secs_f64()
    );
}

#[test]
fn format2_empty_files_have_a_header_and_an_empty_final_block() {
    let fx = Fixture::v2();
    assert_eq!(fx.backing_len(), 540);
    fx.check(b"");
    let h1 = std::fs::read(&fx.path).unwrap()[..HEADER_SIZE].to_vec();
    // Writes and truncation to zero keep the file's key and header.
    for len in [1usize, 4096, 4097, 10_000] {
        let data = pattern(len, 3);
        fx.write(0, &data);
        fx.check(&data);
        fx.truncate(0);
        fx.check(b"");
    }
    // A first write far from the start leaves block 0 a hole.
    fx.write(3 * 4096 + 7, b"tail");
    let mut model = vec![0u8; 3 * 4096 + 7];
    model.extend_from_slice(b"tail");
    fx.check(&model);
    let h2 = std::fs::read(&fx.path).unwrap()[..HEADER_SIZE].to_vec();
    assert_eq!(h1, h2);
    assert_eq!(fx.keys.created.load(Ordering::Relaxed), 0);
}

#[test]
fn format2_truncation_to_zero_or_to_the_header_is_detected() {
    let f2 = |len: u64| {
        let fx = Fixture::v2();
        fx.write(0, &pattern(5000, 9));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&fx.path)
            .unwrap();
        f.set_len(len).unwrap();
        fx.inode.set_cipher(None);
        let r = fx.read(0, 10);
        (r, fx.damage.lock().unwrap().clone())
    };
    for len in [0u64, 100, HEADER_SIZE as u64, 540] {
        let (r, damage) = f2(len);
        assert_eq!(r, Err(Errno::EIO), "cut to {len}");
        assert_eq!(damage.len(), 1, "cut to {len}: {damage:?}");
    }
}
