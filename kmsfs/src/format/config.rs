//! The volume config `CIPHERDIR/kmsfs.conf` (docs/FORMAT.md, "Volume
//! config" and "Volume config, version 2"): JSON, no secrets, authenticated
//! by an HMAC under a key derived from a data key kmsd wrapped for this
//! volume's config. Version 2 adds the wrapped name key and the
//! `plaintext_names` switch; version 1 configs parse and verify unchanged.

use super::ids::{from_hex, to_hex};
use super::kdf::{CONFIG_MAC_LABEL, DataKey, MAC_SIZE};
use super::offsets::BLOCK_SIZE;
use super::{FormatError, VolumeId};
use kmsd_client::{Blob, EncryptionContext};
use serde::{Deserialize, Serialize};

/// The file name of the config in the backing directory.
pub const CONFIG_FILE_NAME: &str = "kmsfs.conf";
/// The config's `format_version` that [`VolumeConfig::new`] writes.
pub const FORMAT_VERSION: u32 = 1;
/// The `format_version` of volumes with encrypted names
/// ([`VolumeConfig::new_v2`]).
pub const FORMAT_VERSION_2: u32 = 2;
/// Domain separation at the start of the config MAC input (version 1).
pub const CONFIG_MAC_DOMAIN: &[u8] = b"kmsfs.conf v1\0";
/// Domain separation at the start of the config MAC input (version 2).
pub const CONFIG_MAC_DOMAIN_V2: &[u8] = b"kmsfs.conf v2\0";
/// Encryption-context keys (docs/FORMAT.md).
pub const CONTEXT_VOLUME: &str = "kmsfs:volume";
pub const CONTEXT_FILE: &str = "kmsfs:file";
pub const CONTEXT_PURPOSE: &str = "kmsfs:purpose";
/// The `kmsfs:purpose` of the config's data key.
pub const PURPOSE_CONFIG: &str = "config";
/// The `kmsfs:purpose` of the volume's name key (version 2).
pub const PURPOSE_NAMES: &str = "names";

const MAX_ARN: usize = 2048;
const MAX_CONFIG_KEY: usize = 4096;
/// A config file larger than this is rejected before parsing.
pub const MAX_CONFIG_FILE: usize = 64 * 1024;

/// A volume's config. Fields are public for reading; build one with
/// [`VolumeConfig::new`] and [`VolumeConfig::seal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeConfig {
    pub format_version: u32,
    pub volume_id: VolumeId,
    /// ARN of the KMS key every data key of the volume is wrapped under.
    pub key_arn: String,
    pub block_size: u32,
    /// kmsd ciphertext blob of the config's data key.
    pub config_key: Vec<u8>,
    /// Version 2's fields; `None` in version 1.
    pub names: Option<NameSettings>,
    /// Version 2, while `kmsfs rewrap --to-key` moves the volume to
    /// `key_arn`: the key it moves from, and the config key wrapped under
    /// that key (docs/FORMAT.md "Rewrap in progress").
    pub rewrap_from: Option<RewrapFrom>,
    pub mac: [u8; MAC_SIZE],
}

/// The key a volume is being moved from, with the config key under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewrapFrom {
    pub key_arn: String,
    pub config_key: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RewrapJson {
    key_arn: String,
    config_key: Blob,
}

/// What version 2 adds to the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameSettings {
    /// kmsd ciphertext blob of the volume's name key (context
    /// [`VolumeConfig::names_context`]). Present with plaintext names too:
    /// symlink targets and directory xattrs use it.
    pub name_key: Vec<u8>,
    /// Names stored in the clear (`kmsfs init --plaintext-names`).
    pub plaintext_names: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Json {
    format_version: u32,
    volume_id: String,
    key_arn: String,
    block_size: u32,
    config_key: Blob,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name_key: Option<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plaintext_names: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rewrap_from: Option<RewrapJson>,
    mac: String,
}

impl VolumeConfig {
    /// An unsealed config (MAC all zero) for a new volume.
    pub fn new(volume_id: VolumeId, key_arn: String, config_key: Vec<u8>) -> Self {
        VolumeConfig {
            format_version: FORMAT_VERSION,
            volume_id,
            key_arn,
            block_size: BLOCK_SIZE as u32,
            config_key,
            names: None,
            rewrap_from: None,
            mac: [0; MAC_SIZE],
        }
    }

    /// An unsealed version 2 config (MAC all zero) for a new volume.
    pub fn new_v2(
        volume_id: VolumeId,
        key_arn: String,
        config_key: Vec<u8>,
        name_key: Vec<u8>,
        plaintext_names: bool,
    ) -> Self {
        VolumeConfig {
            format_version: FORMAT_VERSION_2,
            names: Some(NameSettings {
                name_key,
                plaintext_names,
            }),
            ..VolumeConfig::new(volume_id, key_arn, config_key)
        }
    }

    /// Whether names are encrypted (version 2 without `plaintext_names`).
    pub fn encrypted_names(&self) -> bool {
        matches!(&self.names, Some(n) if !n.plaintext_names)
    }

    /// The encryption context of the config's data key.
    pub fn config_context(volume_id: &VolumeId) -> EncryptionContext {
        EncryptionContext::from([
            (CONTEXT_VOLUME.to_string(), volume_id.to_hex()),
            (CONTEXT_PURPOSE.to_string(), PURPOSE_CONFIG.to_string()),
        ])
    }

    /// The encryption context of the volume's name key (version 2).
    pub fn names_context(volume_id: &VolumeId) -> EncryptionContext {
        EncryptionContext::from([
            (CONTEXT_VOLUME.to_string(), volume_id.to_hex()),
            (CONTEXT_PURPOSE.to_string(), PURPOSE_NAMES.to_string()),
        ])
    }

    /// The encryption context of a file's data key in this volume.
    pub fn file_context(volume_id: &VolumeId, file_id: &super::FileId) -> EncryptionContext {
        EncryptionContext::from([
            (CONTEXT_VOLUME.to_string(), volume_id.to_hex()),
            (CONTEXT_FILE.to_string(), file_id.to_hex()),
        ])
    }

    /// Sets the MAC under `key` (the config's unwrapped data key).
    pub fn seal(&mut self, key: &DataKey) -> Result<(), FormatError> {
        self.check()?;
        self.mac = self.compute_mac(key);
        Ok(())
    }

    /// Checks the MAC under `key` in constant time.
    pub fn verify(&self, key: &DataKey) -> Result<(), FormatError> {
        self.check()?;
        let input = self.mac_input();
        if key.verify_mac(CONFIG_MAC_LABEL, &[&input], &self.mac) {
            Ok(())
        } else {
            Err(FormatError::ConfigAuth)
        }
    }

    fn compute_mac(&self, key: &DataKey) -> [u8; MAC_SIZE] {
        key.mac(CONFIG_MAC_LABEL, &[&self.mac_input()])
    }

    /// The MAC input. Version 1: every field, variable ones with their
    /// length. Version 2: the fields that say how to read the volume
    /// (version, volume id, block size, plaintext names), not the key ARN
    /// and the blobs: kmsd authenticates those (each blob's context names
    /// the volume and its purpose) and `kmsfs rewrap` replaces them
    /// through ReEncrypt, without the plaintext config key a MAC over them
    /// would need. The domain names the version.
    fn mac_input(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(64 + self.key_arn.len() + self.config_key.len());
        m.extend_from_slice(match self.names {
            None => CONFIG_MAC_DOMAIN,
            Some(_) => CONFIG_MAC_DOMAIN_V2,
        });
        m.extend_from_slice(&self.format_version.to_be_bytes());
        m.extend_from_slice(&self.volume_id.0);
        m.extend_from_slice(&self.block_size.to_be_bytes());
        match &self.names {
            None => {
                // Lengths were checked to fit (check()).
                m.extend_from_slice(&(self.key_arn.len() as u32).to_be_bytes());
                m.extend_from_slice(self.key_arn.as_bytes());
                m.extend_from_slice(&(self.config_key.len() as u32).to_be_bytes());
                m.extend_from_slice(&self.config_key);
            }
            Some(n) => m.push(u8::from(n.plaintext_names)),
        }
        m
    }

    /// The values this version supports.
    fn check(&self) -> Result<(), FormatError> {
        let bad = |m: String| Err(FormatError::BadConfig(m));
        match (self.format_version, &self.names) {
            (FORMAT_VERSION, None) => {}
            (FORMAT_VERSION, Some(_)) => {
                return bad("name_key or plaintext_names in a version 1 config".into());
            }
            (FORMAT_VERSION_2, Some(n)) => {
                if n.name_key.is_empty() || n.name_key.len() > MAX_CONFIG_KEY {
                    return bad(format!("name_key of {} bytes", n.name_key.len()));
                }
            }
            (FORMAT_VERSION_2, None) => {
                return bad("a version 2 config needs name_key and plaintext_names".into());
            }
            (v, _) => {
                return bad(format!(
                    "format_version {v} (this kmsfs reads {FORMAT_VERSION} and {FORMAT_VERSION_2})"
                ));
            }
        }
        if self.block_size as usize != BLOCK_SIZE {
            return bad(format!(
                "block_size {} (only {BLOCK_SIZE} is supported)",
                self.block_size
            ));
        }
        if self.key_arn.is_empty() || self.key_arn.len() > MAX_ARN {
            return bad(format!("key_arn of {} bytes", self.key_arn.len()));
        }
        if self.config_key.is_empty() || self.config_key.len() > MAX_CONFIG_KEY {
            return bad(format!("config_key of {} bytes", self.config_key.len()));
        }
        if self.volume_id.0 == [0; 16] {
            return bad("all-zero volume_id".into());
        }
        if let Some(r) = &self.rewrap_from {
            if self.names.is_none() {
                return bad("rewrap_from in a version 1 config".into());
            }
            if r.key_arn.is_empty() || r.key_arn.len() > MAX_ARN || r.key_arn == self.key_arn {
                return bad("rewrap_from names no other key".into());
            }
            if r.config_key.is_empty() || r.config_key.len() > MAX_CONFIG_KEY {
                return bad(format!(
                    "rewrap_from config_key of {} bytes",
                    r.config_key.len()
                ));
            }
        }
        Ok(())
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let j = Json {
            format_version: self.format_version,
            volume_id: self.volume_id.to_hex(),
            key_arn: self.key_arn.clone(),
            block_size: self.block_size,
            config_key: Blob(self.config_key.clone()),
            name_key: self.names.as_ref().map(|n| Blob(n.name_key.clone())),
            plaintext_names: self.names.as_ref().map(|n| n.plaintext_names),
            rewrap_from: self.rewrap_from.as_ref().map(|r| RewrapJson {
                key_arn: r.key_arn.clone(),
                config_key: Blob(r.config_key.clone()),
            }),
            mac: to_hex(&self.mac),
        };
        // Serializing plain strings and numbers cannot fail.
        let mut s = serde_json::to_string_pretty(&j).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parses and checks structure and values (not the MAC).
    pub fn from_json(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() > MAX_CONFIG_FILE {
            return Err(FormatError::BadConfig(format!(
                "{} bytes is too large",
                bytes.len()
            )));
        }
        let j: Json = serde_json::from_slice(bytes)
            .map_err(|e| FormatError::BadConfig(format!("not a kmsfs config: {e}")))?;
        let volume_id = VolumeId::from_hex(&j.volume_id).ok_or_else(|| {
            FormatError::BadConfig("volume_id is not 32 hex digits of a non-zero id".into())
        })?;
        let mac = from_hex(&j.mac)
            .and_then(|m| <[u8; MAC_SIZE]>::try_from(m).ok())
            .ok_or_else(|| FormatError::BadConfig("mac is not 64 hex digits".into()))?;
        let names = match (j.name_key, j.plaintext_names) {
            (None, None) => None,
            (Some(k), Some(p)) => Some(NameSettings {
                name_key: k.0,
                plaintext_names: p,
            }),
            _ => {
                return Err(FormatError::BadConfig(
                    "name_key and plaintext_names go together".into(),
                ));
            }
        };
        let c = VolumeConfig {
            format_version: j.format_version,
            volume_id,
            key_arn: j.key_arn,
            block_size: j.block_size,
            config_key: j.config_key.0,
            names,
            rewrap_from: j.rewrap_from.map(|r| RewrapFrom {
                key_arn: r.key_arn,
                config_key: r.config_key.0,
            }),
            mac,
        };
        c.check()?;
        Ok(c)
    }
}

/// Fields of the JSON, for tests that edit each one.
#[cfg(test)]
pub(crate) const JSON_FIELDS: &[&str] = &[
    "format_version",
    "volume_id",
    "key_arn",
    "block_size",
    "config_key",
    "mac",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> (VolumeConfig, DataKey) {
        let key = DataKey::from_slice(&[3; 32]).unwrap();
        let mut c = VolumeConfig::new(
            VolumeId([0x44; 16]),
            "arn:aws:kms:us-east-1:111122223333:key/abc".into(),
            vec![1, 2, 3, 4, 5],
        );
        c.seal(&key).unwrap();
        (c, key)
    }

    #[test]
    fn json_round_trip_and_verify() {
        let (c, key) = sealed();
        let j = c.to_json();
        assert!(
            j.contains("\"volume_id\": \"44444444444444444444444444444444\""),
            "{j}"
        );
        assert!(j.contains("\"config_key\": \"AQIDBAU=\""), "{j}");
        let back = VolumeConfig::from_json(j.as_bytes()).unwrap();
        assert_eq!(back, c);
        back.verify(&key).unwrap();
        assert_eq!(
            back.verify(&DataKey::from_slice(&[4; 32]).unwrap()),
            Err(FormatError::ConfigAuth)
        );
    }

    #[test]
    fn every_field_is_covered_by_the_mac() {
        let (c, key) = sealed();
        let edits: Vec<VolumeConfig> = vec![
            VolumeConfig {
                volume_id: VolumeId([0x45; 16]),
                ..c.clone()
            },
            VolumeConfig {
                key_arn: format!("{}x", c.key_arn),
                ..c.clone()
            },
            VolumeConfig {
                config_key: vec![1, 2, 3, 4, 6],
                ..c.clone()
            },
            VolumeConfig {
                mac: [0; 32],
                ..c.clone()
            },
        ];
        for e in edits {
            assert_eq!(e.verify(&key), Err(FormatError::ConfigAuth), "{e:?}");
        }
        // Moving a byte between the ARN and the blob changes the lengths.
        let moved = VolumeConfig {
            key_arn: c.key_arn[..c.key_arn.len() - 1].to_string(),
            config_key: [&[b'c'][..], &c.config_key].concat(),
            ..c.clone()
        };
        assert_eq!(moved.verify(&key), Err(FormatError::ConfigAuth));
    }

    #[test]
    fn unsupported_values_are_rejected() {
        let (c, key) = sealed();
        for e in [
            VolumeConfig {
                format_version: 2,
                ..c.clone()
            },
            VolumeConfig {
                block_size: 8192,
                ..c.clone()
            },
            VolumeConfig {
                key_arn: String::new(),
                ..c.clone()
            },
            VolumeConfig {
                config_key: vec![],
                ..c.clone()
            },
        ] {
            let err = VolumeConfig::from_json(e.to_json().as_bytes()).unwrap_err();
            assert!(matches!(err, FormatError::BadConfig(_)), "{err}");
            assert!(e.verify(&key).is_err());
        }
    }

    #[test]
    fn malformed_json_is_rejected() {
        let (c, _) = sealed();
        let j = c.to_json();
        let cases = [
            String::new(),
            "{}".into(),
            "not json".into(),
            j.replace("\"mac\"", "\"extra\": 1, \"mac\""),
            j.replace(&"44".repeat(16), &"00".repeat(16)),
            j.replace(&"44".repeat(16), "4444"),
            j.replace("AQIDBAU=", "***"),
            j.replace(&to_hex(&c.mac), "abcd"),
        ];
        for bad in cases {
            assert!(
                VolumeConfig::from_json(bad.as_bytes()).is_err(),
                "accepted {bad}"
            );
        }
        assert!(VolumeConfig::from_json(&vec![b' '; MAX_CONFIG_FILE + 1]).is_err());
        for f in JSON_FIELDS {
            assert!(j.contains(&format!("\"{f}\"")), "{f}");
        }
    }

    fn sealed_v2(plaintext_names: bool) -> (VolumeConfig, DataKey) {
        let key = DataKey::from_slice(&[3; 32]).unwrap();
        let mut c = VolumeConfig::new_v2(
            VolumeId([0x44; 16]),
            "arn:aws:kms:us-east-1:111122223333:key/abc".into(),
            vec![1, 2, 3, 4, 5],
            vec![6, 7, 8],
            plaintext_names,
        );
        c.seal(&key).unwrap();
        (c, key)
    }

    #[test]
    fn v2_json_round_trip_and_verify() {
        for p in [false, true] {
            let (c, key) = sealed_v2(p);
            assert_eq!(c.encrypted_names(), !p);
            let j = c.to_json();
            assert!(j.contains("\"format_version\": 2"), "{j}");
            assert!(j.contains("\"name_key\": \"BgcI\""), "{j}");
            assert!(j.contains(&format!("\"plaintext_names\": {p}")), "{j}");
            let back = VolumeConfig::from_json(j.as_bytes()).unwrap();
            assert_eq!(back, c);
            back.verify(&key).unwrap();
        }
        let (v1, _) = sealed();
        assert!(!v1.encrypted_names());
        assert!(!v1.to_json().contains("name_key"));
        assert!(!v1.to_json().contains("plaintext_names"));
    }

    #[test]
    fn v2_fields_are_covered_by_the_mac() {
        let (c, key) = sealed_v2(false);
        let n = c.names.clone().unwrap();
        let edits = vec![
            VolumeConfig {
                names: Some(NameSettings {
                    plaintext_names: true,
                    ..n.clone()
                }),
                ..c.clone()
            },
            VolumeConfig {
                volume_id: VolumeId([0x45; 16]),
                ..c.clone()
            },
        ];
        for e in edits {
            assert_eq!(e.verify(&key), Err(FormatError::ConfigAuth), "{e:?}");
        }
        // The key ARN and the blobs are outside the MAC (rewrap replaces
        // them through kmsd; kmsd authenticates each blob against its
        // context and the key the mount names).
        let rewrapped = VolumeConfig {
            key_arn: format!("{}x", c.key_arn),
            config_key: vec![9; 7],
            names: Some(NameSettings {
                name_key: vec![8; 9],
                ..n.clone()
            }),
            ..c.clone()
        };
        assert_eq!(rewrapped.verify(&key), Ok(()));
        // A v1 MAC does not verify as v2 and the reverse: the domains differ.
        let mut v1 = VolumeConfig {
            format_version: FORMAT_VERSION,
            names: None,
            ..c.clone()
        };
        v1.seal(&key).unwrap();
        assert_ne!(v1.mac, c.mac);
        let forged = VolumeConfig { mac: v1.mac, ..c };
        assert_eq!(forged.verify(&key), Err(FormatError::ConfigAuth));
    }

    #[test]
    fn version_and_fields_must_agree() {
        let (c2, _) = sealed_v2(false);
        let j2 = c2.to_json();
        let (c1, _) = sealed();
        let j1 = c1.to_json();
        let cases = [
            // v2 fields in a v1 config, a v2 config without them, half of them.
            j2.replace("\"format_version\": 2", "\"format_version\": 1"),
            j1.replace("\"format_version\": 1", "\"format_version\": 2"),
            j2.replace("\"plaintext_names\": false,", ""),
            j2.replace("\"name_key\": \"BgcI\",", ""),
            j2.replace("\"name_key\": \"BgcI\"", "\"name_key\": \"\""),
            j2.replace("\"plaintext_names\": false", "\"plaintext_names\": 0"),
            j2.replace("\"format_version\": 2", "\"format_version\": 3"),
        ];
        for bad in cases {
            assert_ne!(bad, j2);
            assert!(
                VolumeConfig::from_json(bad.as_bytes()).is_err(),
                "accepted {bad}"
            );
        }
    }

    #[test]
    fn contexts() {
        let v = VolumeId([1; 16]);
        let c = VolumeConfig::config_context(&v);
        assert_eq!(c["kmsfs:volume"], "01".repeat(16));
        assert_eq!(c["kmsfs:purpose"], "config");
        let n = VolumeConfig::names_context(&v);
        assert_eq!(n["kmsfs:volume"], "01".repeat(16));
        assert_eq!(n["kmsfs:purpose"], "names");
        assert_eq!(n.len(), 2);
        let f = VolumeConfig::file_context(&v, &super::super::FileId([2; 16]));
        assert_eq!(f["kmsfs:file"], "02".repeat(16));
        assert_eq!(f.len(), 2);
    }
}
