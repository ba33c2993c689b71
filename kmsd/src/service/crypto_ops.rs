//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
//! GenerateRandom. They run under the state's read lock, on the key the
//! pipeline resolved and authorized; cryptographic calls never wait for a
//! mutation's commit (only for its brief in-memory apply).

use super::operation::{Exec, KeyRef, Operation, Planned, Refs, read};
use super::{KeyService, Result, State, validate};
use crate::crypto::aead::{KeyCipher, fill_random};
use crate::crypto::blob::{self, BlobHeader};
use kmsd_client::*;
use kmsd_policy::{GrantOperation as G, RequestContext, Requirement, Target, granted, on_service};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

pub const ALGORITHM: &str = "SYMMETRIC_DEFAULT";

fn invalid_ciphertext() -> KmsError {
    KmsError::invalid_ciphertext(
        "The ciphertext is invalid, was made under another key, or its encryption context does not match.",
    )
}

fn context(ctx: &EncryptionContext) -> Result<RequestContext> {
    Ok(RequestContext::with_encryption_context(ctx))
}

impl KeyService {
    /// The current version of a usable key.
    fn current_cipher(&self, st: &State, id: Uuid) -> Result<(BlobHeader, Arc<KeyCipher>)> {
        let e = self.entry(st, id)?;
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

    /// Authenticates and decrypts a blob made under key `id` (the key its
    /// header names, resolved by the pipeline); `expected` is the key the
    /// caller's `KeyId` resolved to, if it gave one.
    fn open_blob(
        &self,
        st: &State,
        id: Uuid,
        ct: &[u8],
        ctx: &EncryptionContext,
        expected: Option<Uuid>,
    ) -> Result<SecretBytes> {
        let h = blob::parse_header(ct).map_err(|_| invalid_ciphertext())?;
        if h.key_id != id {
            return Err(KmsError::internal("ciphertext key changed under the lock"));
        }
        if let Some(want) = expected
            && want != h.key_id
        {
            return Err(KmsError::incorrect_key(format!(
                "The ciphertext was made under {}, not under the KeyId given ({}).",
                self.key_arn(h.key_id),
                self.key_arn(want)
            )));
        }
        let e = st.keys.get(&h.key_id).ok_or_else(invalid_ciphertext)?;
        self.require_usable(e)?;
        let cipher = e.version(h.key_version).ok_or_else(invalid_ciphertext)?;
        blob::open(&cipher, ct, ctx).map_err(|_| invalid_ciphertext())
    }

    /// A fresh data key of `len` bytes sealed under key `id`.
    fn data_key(
        &self,
        st: &State,
        id: Uuid,
        ctx: &EncryptionContext,
        len: usize,
    ) -> Result<(String, Vec<u8>, SecretBytes)> {
        let (h, c) = self.current_cipher(st, id)?;
        let mut key = SecretBytes::zeroed(len);
        fill_random(key.expose_mut());
        let ct = blob::seal(&c, h, ctx, key.expose());
        Ok((self.key_arn(h.key_id), ct, key))
    }
}

impl Operation for EncryptRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[granted("kms:Encrypt", Target::Key, G::Encrypt)];

    fn validate(&self) -> Result<()> {
        validate::plaintext(self.plaintext.len())?;
        validate::encryption_context("EncryptionContext", &self.encryption_context)?;
        validate::grant_tokens(&self.grant_tokens)
    }

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn grant_tokens(&self) -> &[String] {
        &self.grant_tokens
    }

    fn conditions(&self, _cx: &Exec<'_>, _target: Target) -> Result<RequestContext> {
        context(&self.encryption_context)
    }

    /// Everything but the plaintext, which never reaches a `Value`.
    fn audit_parameters(&self) -> Value {
        json!({
            "KeyId": self.key_id,
            "EncryptionContext": self.encryption_context,
            "GrantTokens": self.grant_tokens,
        })
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<EncryptResponse> {
        let (h, c) = cx.svc.current_cipher(cx.st, cx.key_id()?)?;
        let ct = blob::seal(&c, h, &self.encryption_context, self.plaintext.expose());
        read(EncryptResponse {
            ciphertext_blob: Blob(ct),
            key_id: cx.svc.key_arn(h.key_id),
            encryption_algorithm: ALGORITHM.into(),
        })
    }
}

impl Operation for DecryptRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[granted("kms:Decrypt", Target::Key, G::Decrypt)];

    fn validate(&self) -> Result<()> {
        validate::ciphertext_blob(self.ciphertext_blob.0.len())?;
        validate::encryption_context("EncryptionContext", &self.encryption_context)?;
        validate::grant_tokens(&self.grant_tokens)
    }

    /// Authorized on the key the blob names; the caller's `KeyId`, if
    /// given, must name the same key.
    fn refs(&self) -> Refs<'_> {
        Refs {
            key: Some(KeyRef::Blob(&self.ciphertext_blob.0)),
            destination: None,
            other: self.key_id.as_deref().map(KeyRef::Named),
        }
    }

    fn grant_tokens(&self) -> &[String] {
        &self.grant_tokens
    }

    fn conditions(&self, _cx: &Exec<'_>, _target: Target) -> Result<RequestContext> {
        context(&self.encryption_context)
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<DecryptResponse> {
        let id = cx.key_id()?;
        let plaintext = cx.svc.open_blob(
            cx.st,
            id,
            &self.ciphertext_blob.0,
            &self.encryption_context,
            cx.ids.other,
        )?;
        read(DecryptResponse {
            key_id: cx.svc.key_arn(id),
            plaintext,
            encryption_algorithm: ALGORITHM.into(),
        })
    }
}

impl Operation for ReEncryptRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[
        granted("kms:ReEncryptFrom", Target::Key, G::ReEncryptFrom),
        granted("kms:ReEncryptTo", Target::DestinationKey, G::ReEncryptTo),
    ];

    fn validate(&self) -> Result<()> {
        validate::ciphertext_blob(self.ciphertext_blob.0.len())?;
        validate::encryption_context("SourceEncryptionContext", &self.source_encryption_context)?;
        validate::encryption_context(
            "DestinationEncryptionContext",
            &self.destination_encryption_context,
        )?;
        validate::grant_tokens(&self.grant_tokens)
    }

    fn refs(&self) -> Refs<'_> {
        Refs {
            key: Some(KeyRef::Blob(&self.ciphertext_blob.0)),
            destination: Some(KeyRef::Named(&self.destination_key_id)),
            other: self.source_key_id.as_deref().map(KeyRef::Named),
        }
    }

    fn grant_tokens(&self) -> &[String] {
        &self.grant_tokens
    }

    fn conditions(&self, _cx: &Exec<'_>, target: Target) -> Result<RequestContext> {
        match target {
            Target::DestinationKey => context(&self.destination_encryption_context),
            _ => context(&self.source_encryption_context),
        }
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<ReEncryptResponse> {
        let dest = cx
            .ids
            .destination
            .ok_or_else(|| KmsError::internal("ReEncrypt has no resolved destination"))?;
        let (dh, dc) = cx.svc.current_cipher(cx.st, dest)?;
        let src = cx.key_id()?;
        let plain = cx.svc.open_blob(
            cx.st,
            src,
            &self.ciphertext_blob.0,
            &self.source_encryption_context,
            cx.ids.other,
        )?;
        let ct = blob::seal(
            &dc,
            dh,
            &self.destination_encryption_context,
            plain.expose(),
        );
        read(ReEncryptResponse {
            ciphertext_blob: Blob(ct),
            source_key_id: cx.svc.key_arn(src),
            key_id: cx.svc.key_arn(dh.key_id),
            source_encryption_algorithm: ALGORITHM.into(),
            destination_encryption_algorithm: ALGORITHM.into(),
        })
    }
}

/// GenerateDataKey and GenerateDataKeyWithoutPlaintext: the same request
/// members and checks (each its own action and grant operation); they
/// differ only in whether the answer carries the plaintext key.
macro_rules! data_key_operation {
    ($req:ty, $resp:ty, $action:literal, $grant:ident, |$ct:ident, $key:ident, $arn:ident| $answer:expr) => {
        impl Operation for $req {
            const MUTATES: bool = false;
            const CHECKS: &'static [Requirement] = &[granted($action, Target::Key, G::$grant)];

            fn validate(&self) -> Result<()> {
                validate::encryption_context("EncryptionContext", &self.encryption_context)?;
                validate::data_key_len(self.key_spec, self.number_of_bytes)?;
                validate::grant_tokens(&self.grant_tokens)
            }

            fn refs(&self) -> Refs<'_> {
                Refs::key(KeyRef::Named(&self.key_id))
            }

            fn grant_tokens(&self) -> &[String] {
                &self.grant_tokens
            }

            fn conditions(&self, _cx: &Exec<'_>, _target: Target) -> Result<RequestContext> {
                context(&self.encryption_context)
            }

            fn execute(self, cx: &Exec<'_>) -> Planned<$resp> {
                let len = validate::data_key_len(self.key_spec, self.number_of_bytes)?;
                let ($arn, ct, $key) =
                    cx.svc
                        .data_key(cx.st, cx.key_id()?, &self.encryption_context, len)?;
                let $ct = Blob(ct);
                read($answer)
            }
        }
    };
}

data_key_operation!(
    GenerateDataKeyRequest,
    GenerateDataKeyResponse,
    "kms:GenerateDataKey",
    GenerateDataKey,
    |ciphertext_blob, plaintext, key_id| GenerateDataKeyResponse {
        ciphertext_blob,
        plaintext,
        key_id,
    }
);

data_key_operation!(
    GenerateDataKeyWithoutPlaintextRequest,
    GenerateDataKeyWithoutPlaintextResponse,
    "kms:GenerateDataKeyWithoutPlaintext",
    GenerateDataKeyWithoutPlaintext,
    |ciphertext_blob, _plaintext, key_id| GenerateDataKeyWithoutPlaintextResponse {
        ciphertext_blob,
        key_id,
    }
);

impl Operation for GenerateRandomRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_service("kms:GenerateRandom")];

    fn validate(&self) -> Result<()> {
        validate::random_bytes(self.number_of_bytes).map(drop)
    }

    fn execute(self, _cx: &Exec<'_>) -> Planned<GenerateRandomResponse> {
        let n = validate::random_bytes(self.number_of_bytes)?;
        let mut plaintext = SecretBytes::zeroed(n);
        fill_random(plaintext.expose_mut());
        read(GenerateRandomResponse { plaintext })
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
            .run(EncryptRequest {
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
            .run(DecryptRequest {
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
        t.svc.run(DisableKeyRequest { key_id: a.clone() }).unwrap();
        assert_eq!(
            encrypt(&t, &a, b"x", &ctx(&[])).err().unwrap().kind,
            ErrorKind::DisabledException
        );
        assert_eq!(
            decrypt(&t, &ct, &ctx(&[]), None).err().unwrap().kind,
            ErrorKind::DisabledException
        );
        t.svc
            .run(ScheduleKeyDeletionRequest {
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
        assert!(t.svc.run(DescribeKeyRequest { key_id: a }).is_ok());
    }

    #[test]
    fn data_keys_and_reencrypt() {
        let t = TestService::new();
        let a = t.create("a").key_id;
        let b = t.create("b").key_id;
        let c = ctx(&[("file", "1")]);
        let dk = t
            .svc
            .run(GenerateDataKeyRequest {
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
            .run(GenerateDataKeyWithoutPlaintextRequest {
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
            .run(ReEncryptRequest {
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
        let wrong_src = t.svc.run(ReEncryptRequest {
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
            .run(GenerateRandomRequest {
                number_of_bytes: 1024,
            })
            .unwrap();
        assert_eq!(r.plaintext.len(), 1024);
        assert!(
            t.svc
                .run(GenerateRandomRequest { number_of_bytes: 0 })
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
                    .run(GenerateDataKeyRequest {
                        key_id: k.clone(),
                        encryption_context: c.clone(),
                        key_spec: Some(DataKeySpec::Aes256),
                        number_of_bytes: None,
                        grant_tokens: vec![],
                    })
                    .map(|_| ())
                    .unwrap_err(),
                t.svc
                    .run(ReEncryptRequest {
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
            .run(EncryptRequest {
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
