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
}

/// kmsd `GenerateDataKey` / `Decrypt` under one KMS key. `Decrypt` names
/// the key too, so a blob wrapped under any other key is refused
/// (`IncorrectKeyException`).
pub struct KmsdBackend {
    client: Arc<Client>,
    key_id: String,
}

impl KmsdBackend {
    /// `key_id`: a key id, ARN, alias name or alias ARN.
    pub fn new(client: impl Into<Arc<Client>>, key_id: impl Into<String>) -> Self {
        KmsdBackend {
            client: client.into(),
            key_id: key_id.into(),
        }
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
        let r = self.client.call(DecryptRequest {
            ciphertext_blob: Blob(wrapped.to_vec()),
            encryption_context: context.clone(),
            key_id: Some(self.key_id.clone()),
            grant_tokens: Vec::new(),
        })?;
        DataKey::from_slice(r.plaintext.expose()).ok_or_else(|| {
            KeyError::Corrupt(format!(
                "wrapped key holds {} bytes, expected a 32-byte data key",
                r.plaintext.len()
            ))
        })
    }
}
