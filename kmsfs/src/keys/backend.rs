//! Where data keys come from: a [`KmsBackend`]. [`RemoteBackend`] is the
//! real one (a KMS: kmsd's socket or the AWS API); tests use fakes that
//! count calls.

use super::KeyError;
use crate::format::DataKey;
use crate::kms::Kms;
use kmsd_client::EncryptionContext;
use std::sync::Arc;

/// A fresh data key, its kmsd ciphertext blob and the ARN of the KMS key
/// that wrapped it.
pub struct Generated {
    pub key: DataKey,
    pub wrapped: Vec<u8>,
    pub key_arn: String,
}

/// Generates and unwraps 32-byte data keys bound to an encryption context.
pub trait KmsBackend: Send + Sync {
    fn generate(&self, context: &EncryptionContext) -> Result<Generated, KeyError>;
    fn decrypt(&self, wrapped: &[u8], context: &EncryptionContext) -> Result<DataKey, KeyError>;
    /// [`KmsBackend::decrypt`] under the named key (an unfinished
    /// rewrap's old key). Fakes without keys of their own ignore the name.
    fn decrypt_with_key(
        &self,
        key_id: &str,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<DataKey, KeyError> {
        let _ = key_id;
        self.decrypt(wrapped, context)
    }
}

fn data_key(plaintext: &[u8]) -> Result<DataKey, KeyError> {
    DataKey::from_slice(plaintext).ok_or_else(|| {
        KeyError::Corrupt(format!(
            "wrapped key holds {} bytes, expected a 32-byte data key",
            plaintext.len()
        ))
    })
}

/// `GenerateDataKey` / `Decrypt` under one KMS key, through any [`Kms`]
/// (kmsd's socket or the AWS API). `Decrypt` names the key too, so a blob
/// wrapped under any other key is refused (`IncorrectKeyException`).
pub struct RemoteBackend {
    kms: Arc<dyn Kms>,
    key_id: String,
    /// While a rewrap to `key_id` is unfinished: the key blobs not yet
    /// rewrapped are under (docs/FORMAT.md "Rewrap in progress").
    fallback: Option<String>,
}

impl RemoteBackend {
    /// `key_id`: a key id, ARN, alias name or alias ARN.
    pub fn new(kms: Arc<dyn Kms>, key_id: impl Into<String>) -> Self {
        RemoteBackend {
            kms,
            key_id: key_id.into(),
            fallback: None,
        }
    }

    /// The backend of a volume's keys: its key, and the key an unfinished
    /// rewrap moves it from.
    pub fn for_volume(kms: Arc<dyn Kms>, config: &crate::format::VolumeConfig) -> Self {
        RemoteBackend {
            fallback: config.rewrap_from.as_ref().map(|r| r.key_arn.clone()),
            ..RemoteBackend::new(kms, config.key_arn.clone())
        }
    }

    pub fn kms(&self) -> &Arc<dyn Kms> {
        &self.kms
    }
}

impl KmsBackend for RemoteBackend {
    fn generate(&self, context: &EncryptionContext) -> Result<Generated, KeyError> {
        let g = self.kms.generate_data_key(&self.key_id, context)?;
        let key = DataKey::from_slice(g.plaintext.expose()).ok_or_else(|| {
            KeyError::Unavailable(format!(
                "the KMS returned a data key of {} bytes, expected 32",
                g.plaintext.len()
            ))
        })?;
        Ok(Generated {
            key,
            wrapped: g.blob,
            key_arn: g.key_arn,
        })
    }

    fn decrypt(&self, wrapped: &[u8], context: &EncryptionContext) -> Result<DataKey, KeyError> {
        let plaintext = match (
            self.kms.decrypt(&self.key_id, wrapped, context),
            &self.fallback,
        ) {
            (Err(e), Some(old))
                if e.kind() == Some(kmsd_client::ErrorKind::IncorrectKeyException) =>
            {
                self.kms.decrypt(old, wrapped, context)?
            }
            (r, _) => r?,
        };
        data_key(plaintext.expose())
    }

    fn decrypt_with_key(
        &self,
        key_id: &str,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<DataKey, KeyError> {
        data_key(self.kms.decrypt(key_id, wrapped, context)?.expose())
    }
}
