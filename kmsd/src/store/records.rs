//! What the store keeps per key and alias. Records hold key material only
//! wrapped under the root key (`crypto::material`).

use kmsd_client::{KeyState, RotationType, Tag, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: u32,
    pub created: Timestamp,
    /// How this version came to be; `None` for the first.
    pub rotation: Option<RotationType>,
    /// `crypto::material` layout; never plaintext.
    pub wrapped_material: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationSchedule {
    pub period_days: u32,
    pub next_rotation: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: Uuid,
    pub created: Timestamp,
    pub description: String,
    pub state: KeyState,
    /// Set while `PendingDeletion`.
    pub deletion_date: Option<Timestamp>,
    pub pending_window_days: Option<u32>,
    pub tags: Vec<Tag>,
    pub rotation: Option<RotationSchedule>,
    pub on_demand_rotations: u32,
    /// Ascending by version; the last is current.
    #[serde(deserialize_with = "versions")]
    pub versions: Vec<VersionRecord>,
    /// The key policy document (JSON, as stored).
    pub policy: PolicyText,
    /// uid of the principal that created the key.
    pub creator_uid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub name: String,
    pub target: Uuid,
    pub created: Timestamp,
    pub updated: Timestamp,
}

/// Deserializes a key's versions into a vector of exactly one when there is
/// one (most keys), where serde's default reserves four (128 bytes more per
/// key held in memory).
fn versions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<VersionRecord>, D::Error> {
    struct Versions;
    impl<'de> serde::de::Visitor<'de> for Versions {
        type Value = Vec<VersionRecord>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of key versions")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(1).clamp(1, 64));
            while let Some(x) = seq.next_element()? {
                v.push(x);
            }
            Ok(v)
        }
    }
    d.deserialize_seq(Versions)
}

/// A key policy document (JSON text, stored as a JSON string). Shared, not
/// copied, between keys with the same text once the state interns it
/// (most keys hold one of a few default policies); equality is by text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PolicyText(Arc<str>);

impl PolicyText {
    /// Whether both share one allocation (interned).
    pub fn shares(&self, other: &PolicyText) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for PolicyText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PolicyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<Arc<str>> for PolicyText {
    fn from(s: Arc<str>) -> Self {
        PolicyText(s)
    }
}

impl From<String> for PolicyText {
    fn from(s: String) -> Self {
        PolicyText(s.into())
    }
}

impl From<&str> for PolicyText {
    fn from(s: &str) -> Self {
        PolicyText(s.into())
    }
}

impl Serialize for PolicyText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PolicyText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = PolicyText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a policy document as a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PolicyText, E> {
                Ok(PolicyText(v.into()))
            }
        }
        d.deserialize_str(Text)
    }
}

/// A plain key record for tests: enabled, no versions, policy `{}`.
#[cfg(test)]
pub(crate) fn test_key(id: Uuid) -> KeyRecord {
    KeyRecord {
        key_id: id,
        created: Timestamp(1),
        description: "d".into(),
        state: KeyState::Enabled,
        deletion_date: None,
        pending_window_days: None,
        tags: vec![],
        rotation: None,
        on_demand_rotations: 0,
        versions: vec![],
        policy: "{}".into(),
        creator_uid: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_text_is_a_json_string() {
        let p = PolicyText::from("{\"Statement\": []}\n");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            serde_json::to_string("{\"Statement\": []}\n").unwrap()
        );
        let back: PolicyText = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert!(!back.shares(&p));
        assert!(p.clone().shares(&p));
    }

    #[test]
    fn one_version_is_held_without_spare_room() {
        for n in [0u32, 1, 3] {
            let r = KeyRecord {
                key_id: Uuid::new_v4(),
                created: Timestamp(1_700_000_000),
                description: "d".into(),
                state: KeyState::Enabled,
                deletion_date: None,
                pending_window_days: None,
                tags: vec![],
                rotation: None,
                on_demand_rotations: 0,
                versions: (1..=n)
                    .map(|version| VersionRecord {
                        version,
                        created: Timestamp(1_700_000_000),
                        rotation: None,
                        wrapped_material: vec![7; 60],
                    })
                    .collect(),
                policy: "{}".into(),
                creator_uid: 0,
            };
            let back: KeyRecord =
                serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(back, r);
            if n == 1 {
                assert_eq!(back.versions.capacity(), 1);
            }
        }
    }
}

/// An access key for the AWS endpoint. The secret is kept only wrapped
/// under the root key (`crypto::secret`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    /// `uid:N` or `user:NAME`: who requests it signs act as.
    pub principal: String,
    pub status: kmsd_client::AccessKeyStatus,
    pub created: Timestamp,
    pub description: Option<String>,
    /// `crypto::secret` layout; never plaintext.
    pub wrapped_secret: Vec<u8>,
}
