//! The offline tamper matrix against a real kmsd: every kind of damage an
//! attacker with write access to the backing directory can do must be
//! reported by fsck (with the path and, for content, the block number) and
//! must make `cat` fail. Offsets come from docs/FORMAT.md's tables.
//!
//! Needs the kmsd binary next to the test executable's profile dir
//! (`cargo build --release -p kmsd` then `cargo test --release -p kmsfs`).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::KmsdProcess;
use kmsd_client::{Client, DisableKeyRequest, EnableKeyRequest};
use kmsfs::format::offsets::block_offset_in_file;
use kmsfs::keys::{KeyOptions, Volume, VolumeError, init_volume};
use kmsfs::tools::{self, CatError, FsckError, Report};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const CBS: usize = 4124;

struct Fixture {
    kmsd: KmsdProcess,
    client: Arc<Client>,
    key_arn: String,
    dir: tempfile::TempDir,
    volume: Volume,
    pristine: BTreeMap<&'static str, Vec<u8>>,
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

impl Fixture {
    fn new() -> Fixture {
        let kmsd = KmsdProcess::start();
        let key_arn = kmsd.create_key("kmsfs tamper test").arn;
        let client = Arc::new(kmsd.client());
        let dir = tempfile::tempdir().unwrap();
        init_volume(client.clone(), dir.path(), &key_arn).unwrap();
        let volume = Volume::open(
            client.clone(),
            dir.path(),
            Some(&key_arn),
            KeyOptions::default(),
        )
        .unwrap();
        let files: [(&'static str, usize, u8); 4] = [
            ("base", 3 * 4096 + 100, 1),
            ("other", 3 * 4096 + 100, 2),
            ("aligned", 3 * 4096, 3),
            ("empty", 0, 0),
        ];
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let mut pristine = BTreeMap::new();
        for (name, len, seed) in files {
            tools::put(&volume, Path::new(name), &data(len, seed)).unwrap();
            pristine.insert(name, std::fs::read(dir.path().join(name)).unwrap());
        }
        tools::put(&volume, Path::new("sub/deep"), &data(5000, 9)).unwrap();
        Fixture {
            kmsd,
            client,
            key_arn,
            dir,
            volume,
            pristine,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn restore(&self) {
        for (name, bytes) in &self.pristine {
            std::fs::write(self.path(name), bytes).unwrap();
        }
        self.volume.keys.clear();
        let r = self.fsck();
        assert!(r.is_clean(), "restore left problems:\n{r}");
    }

    fn edit(&self, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let mut b = self.pristine[name].clone();
        f(&mut b);
        std::fs::write(self.path(name), b).unwrap();
    }

    fn fsck(&self) -> Report {
        tools::fsck_volume(&self.volume, false).unwrap()
    }

    fn cat(&self, name: &str) -> Result<Vec<u8>, CatError> {
        let mut out = Vec::new();
        tools::cat(&self.volume, Path::new(name), &mut out).map(|_| out)
    }

    /// fsck reports exactly problems at `blocks` of `name` (None = a
    /// header/size problem), and nothing else; cat of `name` fails.
    fn expect(&self, case: &str, name: &str, blocks: &[Option<u64>]) {
        let r = self.fsck();
        let got: Vec<Option<u64>> = r.problems_of(name).iter().map(|p| p.block).collect();
        assert_eq!(got, blocks, "{case}: fsck said:\n{r}");
        assert_eq!(
            r.problems.len(),
            blocks.len(),
            "{case}: problems elsewhere:\n{r}"
        );
        assert!(self.cat(name).is_err(), "{case}: cat {name} succeeded");
    }
}

#[test]
fn tamper_matrix() {
    let fx = Fixture::new();
    let r = fx.fsck();
    assert!(r.is_clean(), "{r}");
    assert_eq!((r.files, r.empty_files), (5, 1));
    assert_eq!(fx.cat("base").unwrap(), data(3 * 4096 + 100, 1));
    assert_eq!(fx.cat("sub/deep").unwrap(), data(5000, 9));

    // A flipped bit in each header field (FORMAT.md, "Header").
    for (field, off) in [
        ("magic", 0),
        ("version", 5),
        ("wrapped_len", 7),
        ("file_id", 8),
        ("file_id end", 23),
        ("wrapped_key", 30),
        ("padding", 479),
        ("mac", 480),
        ("mac end", 511),
    ] {
        for cached in [true, false] {
            if cached {
                // Key still in the cache: the header MAC must catch it.
                fx.cat("base").unwrap();
            } else {
                fx.volume.keys.clear();
            }
            fx.edit("base", |b| b[off] ^= 0x01);
            fx.expect(
                &format!("header {field} (cached {cached})"),
                "base",
                &[None],
            );
            fx.restore();
        }
    }

    // A flipped bit in a block's nonce, ciphertext and tag.
    for (part, within) in [("nonce", 0), ("ciphertext", 12 + 1000), ("tag", CBS - 1)] {
        fx.edit("base", |b| {
            b[block_offset_in_file(1) as usize + within] ^= 0x80
        });
        fx.expect(&format!("block 1 {part}"), "base", &[Some(1)]);
        fx.restore();
    }
    // ... and in the partial last block.
    fx.edit("base", |b| *b.last_mut().unwrap() ^= 1);
    fx.expect("last partial block", "base", &[Some(3)]);
    fx.restore();

    // Two blocks of one file swapped.
    fx.edit("base", |b| {
        let (o0, o1) = (
            block_offset_in_file(0) as usize,
            block_offset_in_file(1) as usize,
        );
        let first: Vec<u8> = b[o0..o0 + CBS].to_vec();
        b.copy_within(o1..o1 + CBS, o0);
        b[o1..o1 + CBS].copy_from_slice(&first);
    });
    fx.expect("blocks 0 and 1 swapped", "base", &[Some(0), Some(1)]);
    fx.restore();

    // A block copied from another file at the same index.
    let other = fx.pristine["other"].clone();
    fx.edit("base", |b| {
        let o = block_offset_in_file(2) as usize;
        b[o..o + CBS].copy_from_slice(&other[o..o + CBS]);
    });
    fx.expect("block 2 from another file", "base", &[Some(2)]);
    fx.restore();

    // Headers swapped between two files: each header is valid, but no
    // block of either file authenticates under the other's key.
    let base = fx.pristine["base"].clone();
    fx.edit("base", |b| b[..512].copy_from_slice(&other[..512]));
    fx.edit("other", |b| b[..512].copy_from_slice(&base[..512]));
    let r = fx.fsck();
    for name in ["base", "other"] {
        let blocks: Vec<_> = r.problems_of(name).iter().map(|p| p.block).collect();
        assert_eq!(blocks, [Some(0), Some(1), Some(2), Some(3)], "{name}:\n{r}");
        assert!(fx.cat(name).is_err());
    }
    fx.restore();

    // Truncated at a block boundary: the new last block was not final.
    fx.edit("aligned", |b| b.truncate(512 + 2 * CBS));
    fx.expect("aligned file truncated by one block", "aligned", &[Some(1)]);
    fx.restore();
    fx.edit("base", |b| b.truncate(512 + 3 * CBS));
    fx.expect("partial last block dropped", "base", &[Some(2)]);
    fx.restore();
    fx.edit("base", |b| b.truncate(512));
    fx.expect("truncated to the header", "base", &[Some(0)]);
    fx.restore();
    fx.edit("base", |b| b.truncate(512 + CBS + 10));
    fx.expect("truncated inside block 1", "base", &[Some(1)]);
    fx.restore();

    // Extended: a whole block appended (a copy of block 0), and an
    // all-zero block appended (a hole can never be final).
    fx.edit("aligned", |b| {
        let o = block_offset_in_file(0) as usize;
        let blk = b[o..o + CBS].to_vec();
        b.extend_from_slice(&blk);
    });
    fx.expect("block appended", "aligned", &[Some(2), Some(3)]);
    fx.restore();
    fx.edit("aligned", |b| b.extend_from_slice(&[0; CBS]));
    fx.expect("hole appended", "aligned", &[Some(2), Some(3)]);
    fx.restore();

    // Zeroing a middle block is the documented hole limitation: it reads as
    // zeros and fsck counts it as a hole rather than a problem.
    fx.edit("aligned", |b| {
        let o = block_offset_in_file(1) as usize;
        b[o..o + CBS].fill(0);
    });
    let r = fx.fsck();
    assert!(r.is_clean() && r.holes == 1, "{r}");
    fx.restore();
}

#[test]
fn volume_config_edits_are_reported() {
    let fx = Fixture::new();
    let conf = fx.path("kmsfs.conf");
    let good = std::fs::read_to_string(&conf).unwrap();
    let c = &fx.volume.config;
    let flip_hex = |h: &str| {
        let mut s = h.to_string();
        let last = if s.ends_with('0') { "1" } else { "0" };
        s.replace_range(s.len() - 1.., last);
        s
    };
    let mac_hex = kmsfs::format::ids::to_hex(&c.mac);
    let blob = serde_json::from_str::<serde_json::Value>(&good).unwrap()["config_key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut blob_edit = blob.clone();
    // A character in the blob's ciphertext, not in the key id it names.
    let at = blob.len() - 10;
    blob_edit.replace_range(at..at + 1, if &blob[at..at + 1] == "A" { "B" } else { "A" });
    let edits = [
        (
            "volume_id",
            good.replace(&c.volume_id.to_hex(), &flip_hex(&c.volume_id.to_hex())),
        ),
        (
            "key_arn",
            good.replace(&c.key_arn, &format!("{}0", c.key_arn)),
        ),
        (
            "block_size",
            good.replace("\"block_size\": 4096", "\"block_size\": 8192"),
        ),
        (
            "format_version",
            good.replace("\"format_version\": 1", "\"format_version\": 2"),
        ),
        ("config_key", good.replace(&blob, &blob_edit)),
        ("mac", good.replace(&mac_hex, &flip_hex(&mac_hex))),
        ("not json", good.replace('{', "[")),
    ];
    for (field, bad) in edits {
        assert_ne!(bad, good, "{field}: edit did nothing");
        std::fs::write(&conf, &bad).unwrap();
        let r = tools::fsck(fx.client.clone(), fx.dir.path(), None, false);
        match r {
            Ok(r) => {
                assert_eq!(r.problems.len(), 1, "{field}:\n{r}");
                assert_eq!(r.problems[0].path, Path::new("kmsfs.conf"), "{field}");
            }
            // An edited ARN names a key kmsd does not have.
            Err(FsckError::Volume(VolumeError::Key(e))) if field == "key_arn" => {
                assert_eq!(e.errno(), libc::EACCES, "{e}");
            }
            Err(e) => panic!("{field}: {e}"),
        }
        // Nothing can be read through an edited config.
        assert!(
            Volume::open(
                fx.client.clone(),
                fx.dir.path(),
                None,
                KeyOptions::default()
            )
            .is_err(),
            "{field}: volume opened"
        );
    }
    std::fs::write(&conf, &good).unwrap();
    assert!(
        tools::fsck(fx.client.clone(), fx.dir.path(), Some(&fx.key_arn), false)
            .unwrap()
            .is_clean()
    );
}

#[test]
fn key_pinning_refuses_a_forged_config() {
    let fx = Fixture::new();
    // An attacker with another key of their own writes a complete,
    // self-consistent config over the volume's.
    let attacker = fx.kmsd.create_key("attacker").arn;
    let conf = fx.path("kmsfs.conf");
    let scratch = tempfile::tempdir().unwrap();
    init_volume(fx.client.clone(), scratch.path(), &attacker).unwrap();
    std::fs::copy(scratch.path().join("kmsfs.conf"), &conf).unwrap();

    // Pinned to the real key: refused outright.
    match tools::fsck(fx.client.clone(), fx.dir.path(), Some(&fx.key_arn), false) {
        Err(FsckError::Volume(VolumeError::KeyMismatch { .. })) => {}
        other => panic!("{other:?}"),
    }
    // Unpinned: the forged config opens (the documented limit), but no
    // existing file does.
    let r = tools::fsck(fx.client.clone(), fx.dir.path(), None, false).unwrap();
    for name in ["base", "other", "aligned", "sub/deep"] {
        let p = r.problems_of(name);
        assert_eq!(p.len(), 1, "{name}:\n{r}");
        assert!(p[0].what.starts_with("header"), "{}", p[0]);
    }
}

#[test]
fn key_state_and_kmsd_outage() {
    let mut fx = Fixture::new();
    fx.volume.keys.clear();
    fx.client
        .call(DisableKeyRequest {
            key_id: fx.key_arn.clone(),
        })
        .unwrap();
    let r = fx.fsck();
    assert_eq!(r.problems.len(), 4, "{r}");
    assert!(r.problems.iter().all(|p| p.what.contains("denied")), "{r}");
    match fx.cat("base") {
        Err(CatError::Key { error, .. }) => assert_eq!(error.errno(), libc::EACCES),
        other => panic!("{other:?}"),
    }
    fx.client
        .call(EnableKeyRequest {
            key_id: fx.key_arn.clone(),
        })
        .unwrap();
    assert!(fx.fsck().is_clean());

    // kmsd gone: fsck stops (nothing can be checked), cat reports EIO.
    fx.volume.keys.clear();
    fx.kmsd.kill9();
    assert!(matches!(
        tools::fsck_volume(&fx.volume, false),
        Err(FsckError::Unavailable(_))
    ));
    match fx.cat("base") {
        Err(CatError::Key { error, .. }) => assert_eq!(error.errno(), libc::EIO),
        other => panic!("{other:?}"),
    }
    // Back again: the client reconnects by itself.
    fx.kmsd.spawn();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut ok = false;
    for _ in 0..100 {
        if fx.cat("base").is_ok() {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ok, "cat did not recover after kmsd came back");
}
