//! The key service kmsfs talks to: the four KMS operations it needs, over
//! kmsd's native socket ([`kmsd_client::Client`]) or the AWS KMS API
//! through the AWS SDK ([`aws::AwsKms`]: kmsd's HTTP endpoint, or AWS KMS
//! itself). The volume format does not depend on which: a volume made on
//! one mounts on the other when both reach the same KMS key.
//!
//! Failures are [`ClientError`]s on both, with the AWS exception name
//! where the service gave one, so [`crate::keys::KeyError`] maps them to
//! errnos the same way.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
mod aws_error;
mod native;

#[cfg(feature = "aws")]
pub use aws::{AwsKms, AwsOptions};
use kmsd_client::{ClientError, EncryptionContext, SecretBytes};

/// A data key from `GenerateDataKey`.
pub struct GeneratedKey {
    pub plaintext: SecretBytes,
    /// The ciphertext blob (what a header or the config stores).
    pub blob: Vec<u8>,
    /// The ARN of the KMS key that wrapped it.
    pub key_arn: String,
}

/// What kmsfs asks of a KMS. Key ids may be ids, ARNs, alias names or
/// alias ARNs; every call names its key, so a blob under any other key is
/// refused (`IncorrectKeyException`).
pub trait Kms: Send + Sync {
    /// A fresh AES-256 data key under `key_id`, bound to `context`.
    fn generate_data_key(
        &self,
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<GeneratedKey, ClientError>;

    /// [`Kms::generate_data_key`] for each context, as one batch where the
    /// service allows it (kmsd's socket: one write, one audit flush). The
    /// outer error: the batch failed as a whole.
    fn generate_data_keys(
        &self,
        key_id: &str,
        contexts: &[EncryptionContext],
    ) -> Result<Vec<Result<GeneratedKey, ClientError>>, ClientError> {
        Ok(contexts
            .iter()
            .map(|c| self.generate_data_key(key_id, c))
            .collect())
    }

    /// The plaintext of `blob`, which must be under `key_id`.
    fn decrypt(
        &self,
        key_id: &str,
        blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<SecretBytes, ClientError>;

    /// The plaintext of `blob` under whichever key it names, and the ARN
    /// of that key as the KMS answers it (`Decrypt` without a `KeyId`).
    /// The caller checks the key: a volume's key set (docs/FORMAT.md
    /// "Rewrap in progress").
    fn decrypt_any(
        &self,
        blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<(SecretBytes, String), ClientError>;

    /// `blob` re-encrypted from `source_key_id` to `destination_key_id`
    /// under the same context; the plaintext never leaves the KMS.
    fn re_encrypt(
        &self,
        blob: &[u8],
        context: &EncryptionContext,
        source_key_id: &str,
        destination_key_id: &str,
    ) -> Result<Vec<u8>, ClientError>;

    /// The ARN `key_id` resolves to (`DescribeKey`).
    fn key_arn(&self, key_id: &str) -> Result<String, ClientError>;

    /// Where it is, for messages: `kmsd at /run/kmsd/kmsd.sock`,
    /// `AWS KMS at https://... (region eu-west-3)`.
    fn describe(&self) -> String;
}
