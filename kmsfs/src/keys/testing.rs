//! A local stand-in for kmsd, for tests: wraps data keys with AES-256-GCM
//! under a random in-memory master key, binds the encryption context like
//! kmsd does, counts calls, and can be told to be down or to deny.

use super::KeyError;
use super::backend::{Generated, KmsBackend};
use crate::format::DataKey;
use aes_gcm::aead::Aead;
use aes_gcm::aead::Payload;
use aes_gcm::{Aes256Gcm, KeyInit};
use kmsd_client::EncryptionContext;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub struct FakeKms {
    master: Aes256Gcm,
    generates: AtomicU64,
    /// `generate_many` calls, and the largest batch seen.
    batches: AtomicU64,
    largest_batch: AtomicU64,
    decrypts: AtomicU64,
    down: AtomicBool,
    denied: AtomicBool,
    /// Milliseconds each decrypt takes (a slow kmsd).
    delay_ms: AtomicU64,
}

pub const FAKE_ARN: &str = "arn:aws:kms:local:000000000000:key/fake";

impl FakeKms {
    pub fn new() -> Self {
        let k = DataKey::random().unwrap_or_else(|_| DataKey::new(&mut [9; 32]));
        let master = match Aes256Gcm::new_from_slice(k.expose()) {
            Ok(m) => m,
            Err(_) => unreachable!("32-byte key"),
        };
        FakeKms {
            master,
            generates: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            largest_batch: AtomicU64::new(0),
            decrypts: AtomicU64::new(0),
            down: AtomicBool::new(false),
            denied: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
        }
    }

    pub fn generates(&self) -> u64 {
        self.generates.load(Ordering::SeqCst)
    }

    /// (`generate_many` calls, the largest batch).
    pub fn batches(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::SeqCst),
            self.largest_batch.load(Ordering::SeqCst),
        )
    }

    pub fn decrypts(&self) -> u64 {
        self.decrypts.load(Ordering::SeqCst)
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn set_denied(&self, denied: bool) {
        self.denied.store(denied, Ordering::SeqCst);
    }

    pub fn set_decrypt_delay(&self, d: std::time::Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }

    fn gate(&self) -> Result<(), KeyError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(KeyError::Unavailable("fake kms is down".into()));
        }
        if self.denied.load(Ordering::SeqCst) {
            return Err(KeyError::Denied(
                "DisabledException: fake key disabled".into(),
            ));
        }
        Ok(())
    }
}

impl Default for FakeKms {
    fn default() -> Self {
        FakeKms::new()
    }
}

fn aad(ctx: &EncryptionContext) -> Vec<u8> {
    serde_json::to_vec(ctx).unwrap_or_default()
}

impl KmsBackend for FakeKms {
    fn generate(&self, context: &EncryptionContext) -> Result<Generated, KeyError> {
        self.generates.fetch_add(1, Ordering::SeqCst);
        self.gate()?;
        let key = DataKey::random().map_err(|e| KeyError::Unavailable(e.to_string()))?;
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| KeyError::Unavailable(e.to_string()))?;
        let a = aad(context);
        let ct = self
            .master
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: key.expose(),
                    aad: &a,
                },
            )
            .map_err(|_| KeyError::Unavailable("seal failed".into()))?;
        Ok(Generated {
            key,
            wrapped: [&nonce[..], &ct].concat(),
            key_arn: FAKE_ARN.into(),
        })
    }

    fn generate_many(&self, contexts: &[EncryptionContext]) -> Vec<Result<Generated, KeyError>> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.largest_batch
            .fetch_max(contexts.len() as u64, Ordering::SeqCst);
        contexts.iter().map(|c| self.generate(c)).collect()
    }

    fn decrypt(&self, wrapped: &[u8], context: &EncryptionContext) -> Result<DataKey, KeyError> {
        self.decrypts.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
        self.gate()?;
        let bad = || KeyError::Corrupt("InvalidCiphertextException: fake".into());
        if wrapped.len() < 12 + 16 {
            return Err(bad());
        }
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&wrapped[..12]);
        let a = aad(context);
        let plain = zeroize::Zeroizing::new(
            self.master
                .decrypt(
                    &nonce.into(),
                    Payload {
                        msg: &wrapped[12..],
                        aad: &a,
                    },
                )
                .map_err(|_| bad())?,
        );
        DataKey::from_slice(&plain).ok_or_else(bad)
    }
}
