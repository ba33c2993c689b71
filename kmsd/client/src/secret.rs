//! Byte strings that hold secrets: plaintexts and plaintext data keys.
//!
//! `SecretBytes` zeroizes on drop, has no `Debug` and no `Display`, and its
//! bytes are reachable only through [`SecretBytes::expose`]. A log line
//! cannot contain one by accident: it does not implement the formatting
//! traits.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

/// Secret bytes, wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a new secret; the caller wipes its own copy.
    pub fn from_slice(bytes: &[u8]) -> Self {
        SecretBytes::new(bytes.to_vec())
    }

    /// A secret of `len` zero bytes, to be filled in place.
    pub fn zeroed(len: usize) -> Self {
        SecretBytes::new(vec![0; len])
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Zeroize for SecretBytes {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

/// Binary formats carry raw bytes; human-readable ones (JSON from kmsctl)
/// carry base64, as the AWS CLI prints `Plaintext`.
impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::blob::serialize_bytes(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::blob::deserialize_bytes(d).map(SecretBytes::new)
    }
}

/// A secret string (an access key's secret), wiped from memory when
/// dropped; no `Debug`, no `Display`. Serializes as the plain string: it is
/// what the one answer that returns it must show.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub fn new(s: String) -> Self {
        SecretString(Zeroizing::new(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretString::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_and_compares() {
        let s = SecretBytes::from_slice(b"key");
        assert_eq!(s.expose(), b"key");
        assert_eq!(s.len(), 3);
        assert!(SecretBytes::zeroed(0).is_empty());
        assert_eq!(SecretBytes::zeroed(4).expose(), &[0, 0, 0, 0]);
    }

    #[test]
    fn zeroize_wipes_in_place() {
        let mut s = SecretBytes::from_slice(&[7u8; 16]);
        s.zeroize();
        assert!(s.expose().iter().all(|b| *b == 0));
    }
}
