//! Where data keys come from: a [`KmsBackend`]. [`RemoteBackend`] is the
//! real one (a KMS: kmsd's socket or the AWS API); tests use fakes that
//! count calls.

use super::KeyError;
use super::follow::{Follow, KeySet};
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
    /// [`KmsBackend::generate`] for each context, as one batch where the
    /// KMS allows it (the key pool's refills).
    fn generate_many(&self, contexts: &[EncryptionContext]) -> Vec<Result<Generated, KeyError>> {
        contexts.iter().map(|c| self.generate(c)).collect()
    }
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
    /// The ARN new keys are generated under, when the backend knows it
    /// (pooled keys made under another are not used).
    fn current_key(&self) -> Option<String> {
        None
    }
    /// Looks for a change of the volume's config (before a new file gets
    /// its key), for a backend that follows one.
    fn refresh(&self) {}
}

fn data_key(plaintext: &[u8]) -> Result<DataKey, KeyError> {
    DataKey::from_slice(plaintext).ok_or_else(|| {
        KeyError::Corrupt(format!(
            "wrapped key holds {} bytes, expected a 32-byte data key",
            plaintext.len()
        ))
    })
}

/// `GenerateDataKey` / `Decrypt` through any [`Kms`] (kmsd's socket or
/// the AWS API), in one of two ways. [`RemoteBackend::new`]: one key,
/// named in every call, so a blob under any other key is refused
/// (`IncorrectKeyException`). [`RemoteBackend::for_volume`]: a volume's
/// [`KeySet`]: `Decrypt` without a `KeyId`, the key kmsd answers checked
/// against the set (docs/FORMAT.md "Rewrap in progress"), and, with
/// [`RemoteBackend::following`], the config re-read when the answer is
/// outside it.
pub struct RemoteBackend {
    kms: Arc<dyn Kms>,
    /// [`RemoteBackend::new`]'s key (id, ARN or alias).
    key_id: String,
    /// A volume's keys.
    set: Option<Arc<KeySet>>,
    follow: Option<Follow>,
}

impl RemoteBackend {
    /// `key_id`: a key id, ARN, alias name or alias ARN.
    pub fn new(kms: Arc<dyn Kms>, key_id: impl Into<String>) -> Self {
        RemoteBackend {
            kms,
            key_id: key_id.into(),
            set: None,
            follow: None,
        }
    }

    /// The backend of a volume's keys: its key, and the key an unfinished
    /// rewrap moves it from.
    pub fn for_volume(kms: Arc<dyn Kms>, config: &crate::format::VolumeConfig) -> Self {
        RemoteBackend {
            set: Some(Arc::new(KeySet::of(config))),
            ..RemoteBackend::new(kms, config.key_arn.clone())
        }
    }

    /// [`RemoteBackend::for_volume`] for a volume at `dir` that follows a
    /// rewrap to another key: `config_key` is the config data key
    /// unwrapped when `config` was read.
    pub fn following(
        kms: Arc<dyn Kms>,
        dir: &std::path::Path,
        config: &crate::format::VolumeConfig,
        config_key: &DataKey,
    ) -> Self {
        RemoteBackend {
            follow: Some(Follow::new(dir, config, config_key)),
            ..RemoteBackend::for_volume(kms, config)
        }
    }

    pub fn kms(&self) -> &Arc<dyn Kms> {
        &self.kms
    }

    /// The volume's key set (`None` for [`RemoteBackend::new`]).
    pub fn key_set(&self) -> Option<&Arc<KeySet>> {
        self.set.as_ref()
    }
}

impl RemoteBackend {
    /// The key new data keys are generated under.
    fn generating_key(&self) -> String {
        match &self.set {
            Some(s) => s.current(),
            None => self.key_id.clone(),
        }
    }
}

fn generated(g: crate::kms::GeneratedKey) -> Result<Generated, KeyError> {
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

impl KmsBackend for RemoteBackend {
    fn generate(&self, context: &EncryptionContext) -> Result<Generated, KeyError> {
        generated(
            self.kms
                .generate_data_key(&self.generating_key(), context)?,
        )
    }

    fn generate_many(&self, contexts: &[EncryptionContext]) -> Vec<Result<Generated, KeyError>> {
        match self
            .kms
            .generate_data_keys(&self.generating_key(), contexts)
        {
            Ok(each) => each
                .into_iter()
                .map(|r| r.map_err(KeyError::from).and_then(generated))
                .collect(),
            Err(e) => {
                let e = KeyError::from(e);
                contexts.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    fn decrypt(&self, wrapped: &[u8], context: &EncryptionContext) -> Result<DataKey, KeyError> {
        let Some(set) = &self.set else {
            return data_key(self.kms.decrypt(&self.key_id, wrapped, context)?.expose());
        };
        let (plaintext, arn) = self.kms.decrypt_any(wrapped, context)?;
        if !set.accepts(&arn) {
            if let Some(f) = &self.follow {
                f.reread(self.kms.as_ref(), set);
            }
            if !set.accepts(&arn) {
                // `plaintext` is wiped on drop, unused.
                return Err(KeyError::Corrupt(format!(
                    "the key is wrapped under {}, which is not a key of this volume ({})",
                    kmsd_client::logsafe::escape(&arn),
                    kmsd_client::logsafe::escape(&set.accepted().join(", "))
                )));
            }
        }
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

    fn current_key(&self) -> Option<String> {
        self.set.as_ref().map(|s| s.current())
    }

    fn refresh(&self) {
        if let (Some(f), Some(set)) = (&self.follow, &self.set) {
            f.refresh(self.kms.as_ref(), set);
        }
    }
}
