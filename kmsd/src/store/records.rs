//! What the store keeps per key and alias. Records hold key material only
//! wrapped under the root key (`crypto::material`).

use kmsd_client::{KeyState, RotationType, Tag, Timestamp};
use serde::{Deserialize, Serialize};
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
    pub versions: Vec<VersionRecord>,
    /// The key policy document (JSON, as stored).
    pub policy: String,
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
