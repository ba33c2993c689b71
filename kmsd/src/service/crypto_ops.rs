//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
//! GenerateRandom. These take the state's read lock only long enough to
//! pick a cipher; the AES work runs unlocked.

use super::{KeyService, Result, validate};
use crate::crypto::aead::{KeyCipher, fill_random};
use crate::crypto::blob::{self, BlobHeader};
use kmsd_client::*;
use std::sync::Arc;
use uuid::Uuid;

pub const ALGORITHM: &str = "SYMMETRIC_DEFAULT";

fn invalid_ciphertext() -> KmsError {
    KmsError::invalid_ciphertext(
        "The ciphertext is invalid, was made under another key, or its encryption context does not match.",
    )
}

impl KeyService {
    /// The current version of a usable key.
    fn current_cipher(&self, key_ref: &str) -> Result<(BlobHeader, Arc<KeyCipher>)> {
        let st = self.read();
        let id = self.resolve(&st, key_ref)?;
        let e = self.entry(&st, id)?;
        self.require_usable(e)?;
        let (key_version, c) = e
            .current()
            .ok_or_else(|| KmsError::internal("key has no material"))?;
        Ok((
            BlobHeader {
                key_id: id,
                key_version,
            },
            c,
        ))
    }

    /// Authenticates and decrypts a blob; `expected` is the caller's KeyId.
    pub(crate) fn open_blob(
        &self,
        ct: &[u8],
        ctx: &EncryptionContext,
        expected: Option<&str>,
    ) -> Result<(Uuid, SecretBytes)> {
        validate::ciphertext_blob(ct.len())?;
        let h = blob::parse_header(ct).map_err(|_| invalid_ciphertext())?;
        let cipher = {
            let st = self.read();
            if let Some(k) = expected {
                let want = self.resolve(&st, k)?;
                if want != h.key_id {
                    return Err(KmsError::incorrect_key(format!(
                        "The ciphertext was made under {}, not under the KeyId given ({}).",
                        self.key_arn(h.key_id),
                        self.key_arn(want)
                    )));
                }
            }
            let e = st.keys.get(&h.key_id).ok_or_else(invalid_ciphertext)?;
            self.require_usable(e)?;
            e.version(h.key_version).ok_or_else(invalid_ciphertext)?
        };
        let plain = blob::open(&cipher, ct, ctx).map_err(|_| invalid_ciphertext())?;
        Ok((h.key_id, plain))
    }

    pub fn encrypt(&self, req: EncryptRequest) -> Result<EncryptResponse> {
        validate::plaintext(req.plaintext.len())?;
        validate::encryption_context("EncryptionContext", &req.encryption_context)?;
        validate::grant_tokens(&req.grant_tokens)?;
        let (h, c) = self.current_cipher(&req.key_id)?;
        let ct = blob::seal(&c, h, &req.encryption_context, req.plaintext.expose());
        Ok(EncryptResponse {
            ciphertext_blob: Blob(ct),
            key_id: self.key_arn(h.key_id),
            encryption_algorithm: ALGORITHM.into(),
        })
    }

    pub fn decrypt(&self, req: DecryptRequest) -> Result<DecryptResponse> {
        validate::encryption_context("EncryptionContext", &req.encryption_context)?;
        validate::grant_tokens(&req.grant_tokens)?;
        let (id, plaintext) = self.open_blob(
            &req.ciphertext_blob.0,
            &req.encryption_context,
            req.key_id.as_deref(),
        )?;
        Ok(DecryptResponse {
            key_id: self.key_arn(id),
            plaintext,
            encryption_algorithm: ALGORITHM.into(),
        })
    }

    pub fn re_encrypt(&self, req: ReEncryptRequest) -> Result<ReEncryptResponse> {
        validate::encryption_context("SourceEncryptionContext", &req.source_encryption_context)?;
        validate::encryption_context(
            "DestinationEncryptionContext",
            &req.destination_encryption_context,
        )?;
        validate::grant_tokens(&req.grant_tokens)?;
        let (dh, dc) = self.current_cipher(&req.destination_key_id)?;
        let (src, plain) = self.open_blob(
            &req.ciphertext_blob.0,
            &req.source_encryption_context,
            req.source_key_id.as_deref(),
        )?;
        let ct = blob::seal(&dc, dh, &req.destination_encryption_context, plain.expose());
        Ok(ReEncryptResponse {
            ciphertext_blob: Blob(ct),
            source_key_id: self.key_arn(src),
            key_id: self.key_arn(dh.key_id),
            source_encryption_algorithm: ALGORITHM.into(),
            destination_encryption_algorithm: ALGORITHM.into(),
        })
    }

    fn data_key(
        &self,
        key_ref: &str,
        ctx: &EncryptionContext,
        spec: Option<DataKeySpec>,
        bytes: Option<u32>,
    ) -> Result<(String, Vec<u8>, SecretBytes)> {
        validate::encryption_context("EncryptionContext", ctx)?;
        let len = validate::data_key_len(spec, bytes)?;
        let (h, c) = self.current_cipher(key_ref)?;
        let mut key = SecretBytes::zeroed(len);
        fill_random(key.expose_mut());
        let ct = blob::seal(&c, h, ctx, key.expose());
        Ok((self.key_arn(h.key_id), ct, key))
    }

    pub fn generate_data_key(
        &self,
        req: GenerateDataKeyRequest,
    ) -> Result<GenerateDataKeyResponse> {
        validate::grant_tokens(&req.grant_tokens)?;
        let (key_id, ct, plaintext) = self.data_key(
            &req.key_id,
            &req.encryption_context,
            req.key_spec,
            req.number_of_bytes,
        )?;
        Ok(GenerateDataKeyResponse {
            ciphertext_blob: Blob(ct),
            plaintext,
            key_id,
        })
    }

    pub fn generate_data_key_without_plaintext(
        &self,
        req: GenerateDataKeyWithoutPlaintextRequest,
    ) -> Result<GenerateDataKeyWithoutPlaintextResponse> {
        validate::grant_tokens(&req.grant_tokens)?;
        let (key_id, ct, _) = self.data_key(
            &req.key_id,
            &req.encryption_context,
            req.key_spec,
            req.number_of_bytes,
        )?;
        Ok(GenerateDataKeyWithoutPlaintextResponse {
            ciphertext_blob: Blob(ct),
            key_id,
        })
    }

    pub fn generate_random(&self, req: GenerateRandomRequest) -> Result<GenerateRandomResponse> {
        let n = validate::random_bytes(req.number_of_bytes)?;
        let mut plaintext = SecretBytes::zeroed(n);
        fill_random(plaintext.expose_mut());
        Ok(GenerateRandomResponse { plaintext })
    }
}

#[cfg(test)]
mod tests {
    use crate::service::testkit::*;
    use kmsd_client::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn encrypt(
        t: &TestService,
        key: &str,
        pt: &[u8],
        c: &EncryptionContext,
    ) -> Result<Vec<u8>, KmsError> {
        t.svc
            .encrypt(EncryptRequest {
                key_id: key.into(),
                plaintext: SecretBytes::from_slice(pt),
                encryption_context: c.clone(),
                grant_tokens: vec![],
            })
            .map(|r| r.ciphertext_blob.0)
    }

    fn decrypt(
        t: &TestService,
        ct: &[u8],
        c: &EncryptionContext,
        key: Option<&str>,
    ) -> Result<Vec<u8>, KmsError> {
        t.svc
            .decrypt(DecryptRequest {
                ciphertext_blob: Blob(ct.to_vec()),
                encryption_context: c.clone(),
                key_id: key.map(str::to_string),
                grant_tokens: vec![],
            })
            .map(|r| r.plaintext.expose().to_vec())
    }

    #[test]
    fn encrypt_decrypt_with_context_and_key_checks() {
        let t = TestService::new();
        let a = t.create("a");
        let b = t.create("b");
        let c = ctx(&[("Purpose", "Lab"), ("App", "kms-demo")]);
        let ct = encrypt(&t, &a.key_id, b"hello", &c).unwrap();
        assert_eq!(decrypt(&t, &ct, &c, None).unwrap(), b"hello");
        assert_eq!(decrypt(&t, &ct, &c, Some(&a.arn)).unwrap(), b"hello");
        assert_eq!(
            decrypt(&t, &ct, &c, Some(&b.key_id)).err().unwrap().kind,
            ErrorKind::IncorrectKeyException
        );
        for wrong in [
            ctx(&[]),
            ctx(&[("Purpose", "Prod"), ("App", "kms-demo")]),
            ctx(&[("Purpose", "Lab")]),
        ] {
            assert_eq!(
                decrypt(&t, &ct, &wrong, None).err().unwrap().kind,
                ErrorKind::InvalidCiphertextException
            );
        }
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x20;
            assert_eq!(
                decrypt(&t, &bad, &c, None).err().unwrap().kind,
                ErrorKind::InvalidCiphertextException,
                "byte {i}"
            );
        }
        assert_eq!(
            decrypt(&t, &[], &c, None).err().unwrap().kind,
            ErrorKind::ValidationException
        );
        assert_eq!(
            encrypt(&t, &a.key_id, &[], &c).err().unwrap().kind,
            ErrorKind::ValidationException
        );
        assert_eq!(
            encrypt(&t, &a.key_id, &[0; 4097], &c).err().unwrap().kind,
            ErrorKind::ValidationException
        );
        assert!(encrypt(&t, &a.key_id, &[0; 4096], &c).is_ok());
    }

    #[test]
    fn key_state_is_enforced() {
        let t = TestService::new();
        let a = t.create("a").key_id;
        let ct = encrypt(&t, &a, b"x", &ctx(&[])).unwrap();
        t.svc
            .disable_key(DisableKeyRequest { key_id: a.clone() })
            .unwrap();
        assert_eq!(
            encrypt(&t, &a, b"x", &ctx(&[])).err().unwrap().kind,
            ErrorKind::DisabledException
        );
        assert_eq!(
            decrypt(&t, &ct, &ctx(&[]), None).err().unwrap().kind,
            ErrorKind::DisabledException
        );
        t.svc
            .schedule_key_deletion(ScheduleKeyDeletionRequest {
                key_id: a.clone(),
                pending_window_in_days: Some(7),
            })
            .unwrap();
        assert_eq!(
            encrypt(&t, &a, b"x", &ctx(&[])).err().unwrap().kind,
            ErrorKind::KMSInvalidStateException
        );
        assert_eq!(
            decrypt(&t, &ct, &ctx(&[]), None).err().unwrap().kind,
            ErrorKind::KMSInvalidStateException
        );
        assert!(t.svc.describe_key(DescribeKeyRequest { key_id: a }).is_ok());
    }

    #[test]
    fn data_keys_and_reencrypt() {
        let t = TestService::new();
        let a = t.create("a").key_id;
        let b = t.create("b").key_id;
        let c = ctx(&[("file", "1")]);
        let dk = t
            .svc
            .generate_data_key(GenerateDataKeyRequest {
                key_id: a.clone(),
                encryption_context: c.clone(),
                key_spec: Some(DataKeySpec::Aes256),
                number_of_bytes: None,
                grant_tokens: vec![],
            })
            .unwrap();
        assert_eq!(dk.plaintext.len(), 32);
        assert_eq!(
            decrypt(&t, &dk.ciphertext_blob.0, &c, None).unwrap(),
            dk.plaintext.expose()
        );
        let wp = t
            .svc
            .generate_data_key_without_plaintext(GenerateDataKeyWithoutPlaintextRequest {
                key_id: a.clone(),
                encryption_context: c.clone(),
                key_spec: None,
                number_of_bytes: Some(7),
                grant_tokens: vec![],
            })
            .unwrap();
        assert_eq!(
            decrypt(&t, &wp.ciphertext_blob.0, &c, None).unwrap().len(),
            7
        );

        let c2 = ctx(&[("file", "2")]);
        let re = t
            .svc
            .re_encrypt(ReEncryptRequest {
                ciphertext_blob: dk.ciphertext_blob.clone(),
                source_encryption_context: c.clone(),
                source_key_id: None,
                destination_key_id: b.clone(),
                destination_encryption_context: c2.clone(),
                grant_tokens: vec![],
            })
            .unwrap();
        assert_eq!(re.key_id, t.svc.key_arn(b.parse().unwrap()));
        assert_eq!(
            decrypt(&t, &re.ciphertext_blob.0, &c2, Some(&b)).unwrap(),
            dk.plaintext.expose()
        );
        let wrong_src = t.svc.re_encrypt(ReEncryptRequest {
            ciphertext_blob: dk.ciphertext_blob,
            source_encryption_context: c2,
            source_key_id: None,
            destination_key_id: b,
            destination_encryption_context: c,
            grant_tokens: vec![],
        });
        assert_eq!(
            wrong_src.err().unwrap().kind,
            ErrorKind::InvalidCiphertextException
        );

        let r = t
            .svc
            .generate_random(GenerateRandomRequest {
                number_of_bytes: 1024,
            })
            .unwrap();
        assert_eq!(r.plaintext.len(), 1024);
        assert!(
            t.svc
                .generate_random(GenerateRandomRequest { number_of_bytes: 0 })
                .is_err()
        );
    }

    #[test]
    fn oversized_contexts_are_refused_by_every_crypto_operation() {
        let t = TestService::new();
        let k = t.create("ctx").key_id;
        let small = ctx(&[("a", "b")]);
        let ct = encrypt(&t, &k, b"x", &small).unwrap();
        let big: EncryptionContext = [("a".to_string(), "x".repeat(240_000))].into();
        let many: EncryptionContext = (0..65).map(|i| (format!("k{i}"), "v".into())).collect();
        for c in [&big, &many] {
            let errs = [
                encrypt(&t, &k, b"x", c).unwrap_err(),
                decrypt(&t, &ct, c, None).unwrap_err(),
                t.svc
                    .generate_data_key(GenerateDataKeyRequest {
                        key_id: k.clone(),
                        encryption_context: c.clone(),
                        key_spec: Some(DataKeySpec::Aes256),
                        number_of_bytes: None,
                        grant_tokens: vec![],
                    })
                    .map(|_| ())
                    .unwrap_err(),
                t.svc
                    .re_encrypt(ReEncryptRequest {
                        ciphertext_blob: Blob(ct.clone()),
                        source_encryption_context: small.clone(),
                        destination_encryption_context: c.clone(),
                        source_key_id: None,
                        destination_key_id: k.clone(),
                        grant_tokens: vec![],
                    })
                    .map(|_| ())
                    .unwrap_err(),
            ];
            for e in errs {
                assert_eq!(e.kind, ErrorKind::ValidationException, "{e}");
            }
        }
        let e = t
            .svc
            .encrypt(EncryptRequest {
                key_id: k.clone(),
                plaintext: SecretBytes::from_slice(b"x"),
                encryption_context: small.clone(),
                grant_tokens: vec!["t".into(); 11],
            })
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::ValidationException);
    }
}
