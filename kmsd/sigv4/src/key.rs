//! The SigV4 key chain: `"AWS4" + secret` → date → region → service →
//! `aws4_request`, each step HMAC-SHA256. Every intermediate lives in a
//! buffer that is wiped on drop; none of these types can be printed.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::canonical::TERMINATOR;

type HmacSha256 = Hmac<Sha256>;

/// The derived key that signs strings to sign (`kSigning`). No `Debug`,
/// no `Clone`; wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SigningKey([u8; 32]);

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length")
}

/// HMAC-SHA256(key, data) into a wiped-on-drop buffer.
fn step(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let tag = mac(key).chain_update(data).finalize();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(tag.as_bytes());
    out
}

impl SigningKey {
    /// Derives the signing key for `date` (yyyymmdd), `region`, `service`.
    pub fn derive(secret: &[u8], date: &str, region: &str, service: &str) -> SigningKey {
        let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret);
        let k_date = step(&k_secret, date.as_bytes());
        let k_region = step(&*k_date, region.as_bytes());
        let k_service = step(&*k_region, service.as_bytes());
        let k_signing = step(&*k_service, TERMINATOR.as_bytes());
        SigningKey(*k_signing)
    }

    /// The signature of `string_to_sign`.
    pub fn sign(&self, string_to_sign: &[u8]) -> [u8; 32] {
        let tag = mac(&self.0).chain_update(string_to_sign).finalize();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_bytes());
        out
    }

    /// Whether `signature` is the signature of `string_to_sign`, compared in
    /// constant time (`Mac::verify_slice`).
    pub fn verify(&self, string_to_sign: &[u8], signature: &[u8; 32]) -> bool {
        mac(&self.0)
            .chain_update(string_to_sign)
            .verify_slice(signature)
            .is_ok()
    }

    #[cfg(test)]
    fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::hex;

    /// The example in AWS's SigV4 documentation ("Deriving the signing
    /// key"): secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215,
    /// us-east-1, iam.
    #[test]
    fn documented_signing_key() {
        let key = SigningKey::derive(
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex(key.bytes()),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn verify_is_sign() {
        let key = SigningKey::derive(b"secret", "20261202", "eu-west-1", "kms");
        let sig = key.sign(b"string to sign");
        assert!(key.verify(b"string to sign", &sig));
        assert!(!key.verify(b"string to sigN", &sig));
        let mut bad = sig;
        bad[31] ^= 1;
        assert!(!key.verify(b"string to sign", &bad));
    }
}
