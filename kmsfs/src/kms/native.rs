//! [`Kms`] over kmsd's native socket.

use super::{GeneratedKey, Kms};
use kmsd_client::{
    Blob, Client, ClientError, DataKeySpec, DecryptRequest, DescribeKeyRequest, EncryptionContext,
    GenerateDataKeyRequest, GenerateDataKeyResponse, ReEncryptRequest, SecretBytes,
};

fn data_key_request(key_id: &str, context: &EncryptionContext) -> GenerateDataKeyRequest {
    GenerateDataKeyRequest {
        key_id: key_id.to_string(),
        encryption_context: context.clone(),
        key_spec: Some(DataKeySpec::Aes256),
        number_of_bytes: None,
        grant_tokens: Vec::new(),
    }
}

fn generated(r: GenerateDataKeyResponse) -> GeneratedKey {
    GeneratedKey {
        plaintext: r.plaintext,
        blob: r.ciphertext_blob.into_vec(),
        key_arn: r.key_id,
    }
}

impl Kms for Client {
    fn generate_data_key(
        &self,
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<GeneratedKey, ClientError> {
        self.call(data_key_request(key_id, context)).map(generated)
    }

    /// One write of every request: kmsd answers the batch with one audit
    /// group commit and one write.
    fn generate_data_keys(
        &self,
        key_id: &str,
        contexts: &[EncryptionContext],
    ) -> Result<Vec<Result<GeneratedKey, ClientError>>, ClientError> {
        let ops = contexts
            .iter()
            .map(|c| data_key_request(key_id, c))
            .collect();
        Ok(self
            .call_many(ops)?
            .into_iter()
            .map(|r| r.map(generated))
            .collect())
    }

    fn decrypt(
        &self,
        key_id: &str,
        blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<SecretBytes, ClientError> {
        self.call(DecryptRequest {
            ciphertext_blob: Blob(blob.to_vec()),
            encryption_context: context.clone(),
            key_id: Some(key_id.to_string()),
            grant_tokens: Vec::new(),
        })
        .map(|r| r.plaintext)
    }

    fn decrypt_any(
        &self,
        blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<(SecretBytes, String), ClientError> {
        self.call(DecryptRequest {
            ciphertext_blob: Blob(blob.to_vec()),
            encryption_context: context.clone(),
            key_id: None,
            grant_tokens: Vec::new(),
        })
        .map(|r| (r.plaintext, r.key_id))
    }

    fn re_encrypt(
        &self,
        blob: &[u8],
        context: &EncryptionContext,
        source_key_id: &str,
        destination_key_id: &str,
    ) -> Result<Vec<u8>, ClientError> {
        self.call(ReEncryptRequest {
            ciphertext_blob: Blob(blob.to_vec()),
            source_encryption_context: context.clone(),
            source_key_id: Some(source_key_id.to_string()),
            destination_key_id: destination_key_id.to_string(),
            destination_encryption_context: context.clone(),
            grant_tokens: Vec::new(),
        })
        .map(|r| r.ciphertext_blob.into_vec())
    }

    fn key_arn(&self, key_id: &str) -> Result<String, ClientError> {
        self.call(DescribeKeyRequest {
            key_id: key_id.to_string(),
        })
        .map(|r| r.key_metadata.arn)
    }

    fn describe(&self) -> String {
        format!(
            "kmsd at {}",
            kmsd_client::failover::describe(&self.config().sockets)
        )
    }
}
