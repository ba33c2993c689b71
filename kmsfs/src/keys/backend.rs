//! Where data keys come from: a [`KmsBackend`]. [`KmsdBackend`] is the real
//! one (kmsd over its socket); tests use fakes that count calls.

use super::KeyError;
use crate::format::DataKey;
use kmsd_client::{
    Blob, Client, DataKeySpec, DecryptRequest, EncryptionContext, GenerateDataKeyRequest,
};
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

/// kmsd `GenerateDataKey` / `Decrypt` under one KMS key. `Decrypt` names
/// the key too, so a blob wrapped under any other key is refused
/// (`IncorrectKeyException`).
pub struct KmsdBackend {
    client: Arc<Client>,
    key_id: String,
    /// While a rewrap to `key_id` is unfinished: the key blobs not yet
    /// rewrapped are under (docs/FORMAT.md "Rewrap in progress").
    fallback: Option<String>,
}

impl KmsdBackend {
    /// `key_id`: a key id, ARN, alias name or alias ARN.
    pub fn new(client: impl Into<Arc<Client>>, key_id: impl Into<String>) -> Self {
        KmsdBackend {
            client: client.into(),
            key_id: key_id.into(),
            fallback: None,
        }
    }

    /// The backend of a volume's keys: its key, and the key an unfinished
    /// rewrap moves it from.
    pub fn for_volume(
        client: impl Into<Arc<Client>>,
        config: &crate::format::VolumeConfig,
    ) -> Self {
        KmsdBackend {
            fallback: config.rewrap_from.as_ref().map(|r| r.key_arn.clone()),
            ..KmsdBackend::new(client, config.key_arn.clone())
        }
    }

    fn decrypt_under(
        &self,
        key_id: &str,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<kmsd_client::DecryptResponse, kmsd_client::ClientError> {
        self.client.call(DecryptRequest {
            ciphertext_blob: Blob(wrapped.to_vec()),
            encryption_context: context.clone(),
            key_id: Some(key_id.to_string()),
            grant_tokens: Vec::new(),
        })
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }
}

impl KmsBackend for KmsdBackend {
    fn generate(&self, context: &EncryptionContext) -> Result<Generated, KeyError> {
        let r = self.client.call(GenerateDataKeyRequest {
            key_id: self.key_id.clone(),
            encryption_context: context.clone(),
            key_spec: Some(DataKeySpec::Aes256),
            number_of_bytes: None,
            grant_tokens: Vec::new(),
        })?;
        let key = DataKey::from_slice(r.plaintext.expose()).ok_or_else(|| {
            KeyError::Unavailable(format!(
                "kmsd returned a data key of {} bytes, expected 32",
                r.plaintext.len()
            ))
        })?;
        Ok(Generated {
            key,
            wrapped: r.ciphertext_blob.into_vec(),
            key_arn: r.key_id,
        })
    }

    fn decrypt(&self, wrapped: &[u8], context: &EncryptionContext) -> Result<DataKey, KeyError> {
        let r = match (
            self.decrypt_under(&self.key_id, wrapped, context),
            &self.fallback,
        ) {
            (Err(e), Some(old))
                if e.kind() == Some(kmsd_client::ErrorKind::IncorrectKeyException) =>
            {
                self.decrypt_under(old, wrapped, context)?
            }
            (r, _) => r?,
        };
        data_key(r.plaintext.expose())
    }

    fn decrypt_with_key(
        &self,
        key_id: &str,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<DataKey, KeyError> {
        let r = self.decrypt_under(key_id, wrapped, context)?;
        data_key(r.plaintext.expose())
    }
}
