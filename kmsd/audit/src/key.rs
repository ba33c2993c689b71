//! The checkpoint key: HMAC-SHA256 under a key derived from kmsd's root key.
//! Checkpoint records and the `HEAD` file carry such MACs, so a rewritten
//! log cannot be passed off as intact by someone without the root key.

use crate::chain::LineHash;
use crate::error::AuditError;
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::io::Read;
use std::path::Path;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// HKDF-SHA256 `info` label for the audit checkpoint key.
pub const AUDIT_KEY_LABEL: &[u8] = b"kmsd/audit-checkpoint/v1";

/// Length of kmsd's root key file: 32 raw bytes.
pub const ROOT_KEY_LEN: usize = 32;

const CHECKPOINT_DOMAIN: &[u8] = b"kmsd-audit checkpoint\0";
const HEAD_DOMAIN: &[u8] = b"kmsd-audit head\0";

type HmacSha256 = Hmac<Sha256>;

/// The 32-byte audit MAC key. No `Debug`, no `Clone`; zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct AuditKey([u8; 32]);

impl AuditKey {
    /// Takes the key bytes; the caller's array is zeroized.
    pub fn from_bytes(bytes: &mut [u8; 32]) -> AuditKey {
        let key = AuditKey(*bytes);
        bytes.zeroize();
        key
    }

    fn hmac(&self) -> HmacSha256 {
        match HmacSha256::new_from_slice(&self.0) {
            Ok(m) => m,
            // HMAC takes keys of any length.
            Err(_) => unreachable!("HMAC rejected a 32-byte key"),
        }
    }

    /// MAC of a checkpoint record: binds its sequence number and the hash
    /// of the record before it (hence the whole chain up to there).
    pub(crate) fn checkpoint_mac(&self, seq: u64, prev: &LineHash) -> [u8; 32] {
        let mut m = self.hmac();
        m.update(CHECKPOINT_DOMAIN);
        m.update(&seq.to_be_bytes());
        m.update(&prev.0);
        m.finalize().into_bytes().into()
    }

    pub(crate) fn checkpoint_mac_ok(&self, seq: u64, prev: &LineHash, mac: &[u8]) -> bool {
        let mut m = self.hmac();
        m.update(CHECKPOINT_DOMAIN);
        m.update(&seq.to_be_bytes());
        m.update(&prev.0);
        m.verify_slice(mac).is_ok()
    }

    /// MAC of the `HEAD` file: the last durable record's seq and hash and
    /// the file it is in.
    pub(crate) fn head_mac(&self, seq: u64, hash: &LineHash, file: &str) -> [u8; 32] {
        let mut m = self.hmac();
        head_input(&mut m, seq, hash, file);
        m.finalize().into_bytes().into()
    }

    pub(crate) fn head_mac_ok(&self, seq: u64, hash: &LineHash, file: &str, mac: &[u8]) -> bool {
        let mut m = self.hmac();
        head_input(&mut m, seq, hash, file);
        m.verify_slice(mac).is_ok()
    }
}

fn head_input(m: &mut HmacSha256, seq: u64, hash: &LineHash, file: &str) {
    m.update(HEAD_DOMAIN);
    m.update(&seq.to_be_bytes());
    m.update(&hash.0);
    m.update(&(file.len() as u64).to_be_bytes());
    m.update(file.as_bytes());
}

/// Derives the audit key from kmsd's 32-byte root key:
/// HKDF-SHA256 (no salt) with info [`AUDIT_KEY_LABEL`].
pub fn audit_key_from_root(root_key: &[u8; 32]) -> AuditKey {
    let hk = Hkdf::<Sha256>::new(None, root_key);
    let mut okm = [0u8; 32];
    if hk.expand(AUDIT_KEY_LABEL, &mut okm).is_err() {
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
        unreachable!("HKDF refused a 32-byte output");
    }
    AuditKey::from_bytes(&mut okm)
}

/// Reads a root key file (exactly 32 raw bytes) and derives the audit key.
pub fn audit_key_from_root_file(path: &Path) -> Result<AuditKey, AuditError> {
    let io = |e| AuditError::io(format!("reading root key file {}", path.display()), e);
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut buf = zeroize::Zeroizing::new([0u8; ROOT_KEY_LEN + 1]);
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    if n != ROOT_KEY_LEN {
        return Err(AuditError::BadInput(format!(
            "root key file {} must hold exactly {ROOT_KEY_LEN} raw bytes (found {}{})",
            path.display(),
            if n > ROOT_KEY_LEN { "more than " } else { "" },
            n.min(ROOT_KEY_LEN)
        )));
    }
    let mut root = zeroize::Zeroizing::new([0u8; ROOT_KEY_LEN]);
    root.copy_from_slice(&buf[..ROOT_KEY_LEN]);
    Ok(audit_key_from_root(&root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_key_dependent() {
        let a = audit_key_from_root(&[1; 32]);
        let b = audit_key_from_root(&[1; 32]);
        let c = audit_key_from_root(&[2; 32]);
        assert_eq!(a.0, b.0);
        assert_ne!(a.0, c.0);
        assert_ne!(a.0, [1; 32], "derived, not the root key itself");
    }

    #[test]
    fn derivation_matches_rfc5869_style_expand() {
        // Independent computation: PRK = HMAC(0^32, ikm); OKM = HMAC(PRK, info || 0x01).
        let ikm = [7u8; 32];
        let mut ext = HmacSha256::new_from_slice(&[0u8; 32]).unwrap();
        ext.update(&ikm);
        let prk: [u8; 32] = ext.finalize().into_bytes().into();
        let mut exp = HmacSha256::new_from_slice(&prk).unwrap();
        exp.update(AUDIT_KEY_LABEL);
        exp.update(&[1]);
        let okm: [u8; 32] = exp.finalize().into_bytes().into();
        assert_eq!(audit_key_from_root(&ikm).0, okm);
    }

    #[test]
    fn macs_verify_and_bind_their_inputs() {
        let k = audit_key_from_root(&[9; 32]);
        let h = LineHash::of_line(b"line");
        let mac = k.checkpoint_mac(5, &h);
        assert!(k.checkpoint_mac_ok(5, &h, &mac));
        assert!(!k.checkpoint_mac_ok(6, &h, &mac));
        assert!(!k.checkpoint_mac_ok(5, &LineHash::GENESIS, &mac));
        assert!(!audit_key_from_root(&[8; 32]).checkpoint_mac_ok(5, &h, &mac));
        let hm = k.head_mac(5, &h, "audit-000001.jsonl");
        assert!(k.head_mac_ok(5, &h, "audit-000001.jsonl", &hm));
        assert!(!k.head_mac_ok(5, &h, "audit-000002.jsonl", &hm));
        assert_ne!(hm, mac, "domains are separated");
    }

    #[test]
    fn from_bytes_zeroizes_the_source() {
        let mut b = [3u8; 32];
        let _k = AuditKey::from_bytes(&mut b);
        assert_eq!(b, [0; 32]);
    }

    #[test]
    fn root_key_file_must_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.key");
        std::fs::write(&p, [5u8; 32]).unwrap();
        assert_eq!(
            audit_key_from_root_file(&p).unwrap().0,
            audit_key_from_root(&[5; 32]).0
        );
        std::fs::write(&p, [5u8; 31]).unwrap();
        let e = audit_key_from_root_file(&p).err().unwrap().to_string();
        assert!(e.contains("exactly 32") && e.contains("found 31"), "{e}");
        std::fs::write(&p, [5u8; 33]).unwrap();
        assert!(audit_key_from_root_file(&p).is_err());
        assert!(audit_key_from_root_file(&dir.path().join("missing")).is_err());
    }
}
