//! CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey,
//! ScheduleKeyDeletion, CancelKeyDeletion.

use super::operation::{Exec, KeyRef, Operation, Planned, Refs, read};
use super::paginate::paginate;
use super::{KeyService, Result, validate};
use crate::crypto::aead::KeyBytes;
use crate::crypto::material;
use crate::store::{KeyRecord, Mutation, VersionRecord};
use kmsd_client::*;
use kmsd_policy::{RequestContext, Requirement, Target, on_key, on_service};
use uuid::Uuid;

impl KeyService {
    pub fn metadata(&self, r: &KeyRecord) -> KeyMetadata {
        KeyMetadata {
            aws_account_id: self.config().account.clone(),
            key_id: r.key_id.to_string(),
            arn: self.key_arn(r.key_id),
            creation_date: r.created,
            enabled: r.state == KeyState::Enabled,
            description: r.description.clone(),
            key_usage: KeyUsage::EncryptDecrypt,
            key_state: r.state,
            deletion_date: r.deletion_date,
            pending_deletion_window_in_days: r.pending_window_days,
            origin: "AWS_KMS".into(),
            key_manager: "CUSTOMER".into(),
            key_spec: KeySpec::SymmetricDefault,
            encryption_algorithms: vec!["SYMMETRIC_DEFAULT".into()],
            multi_region: false,
            current_key_version: r.versions.last().map_or(0, |v| v.version),
        }
    }

    /// A new version's record with fresh material wrapped under the root key.
    pub(crate) fn new_version(
        &self,
        key_id: Uuid,
        version: u32,
        now: Timestamp,
        rotation: Option<RotationType>,
    ) -> VersionRecord {
        let m = KeyBytes::random();
        VersionRecord {
            version,
            created: now,
            rotation,
            wrapped_material: material::wrap(self.wrap_key(), key_id, version, &m),
        }
    }

    fn key_arn_prefix(&self) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/",
            self.config().region,
            self.config().account
        )
    }
}

/// As in AWS, CreateKey with tags also needs `kms:TagResource` (on no key:
/// the key does not exist yet).
const TAG_ON_CREATE: &[Requirement] = &[on_service("kms:TagResource")];

impl Operation for CreateKeyRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_service("kms:CreateKey")];

    fn extra_checks(&self) -> &'static [Requirement] {
        if self.tags.is_empty() {
            &[]
        } else {
            TAG_ON_CREATE
        }
    }

    fn validate(&self) -> Result<()> {
        validate::description(self.description.as_deref().unwrap_or(""))?;
        validate::tags(&self.tags)?;
        if self.tags.len() > validate::MAX_TAGS_PER_KEY {
            return Err(KmsError::limit_exceeded(format!(
                "a key can have at most {} tags",
                validate::MAX_TAGS_PER_KEY
            )));
        }
        super::policies::validate_new_key_policy(self)
    }

    fn conditions(&self, _cx: &Exec<'_>, _target: Target) -> Result<RequestContext> {
        Ok(RequestContext {
            bypass_policy_lockout_safety_check: Some(self.bypass_policy_lockout_safety_check),
            ..RequestContext::default()
        })
    }

    fn created_key(out: &KeyMetadataResponse) -> Option<String> {
        Some(out.key_metadata.arn.clone())
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<KeyMetadataResponse> {
        let policy = cx.svc.new_key_policy(cx.st, cx.caller, &self)?;
        let key_id = Uuid::new_v4();
        let mut tags: Vec<Tag> = Vec::new();
        for t in self.tags {
            tags.retain(|x| x.tag_key != t.tag_key);
            tags.push(t);
        }
        let record = KeyRecord {
            key_id,
            created: cx.now,
            description: self.description.unwrap_or_default(),
            state: KeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            tags,
            rotation: None,
            on_demand_rotations: 0,
            versions: vec![cx.svc.new_version(key_id, 1, cx.now, None)],
            policy: policy.into(),
            creator_uid: cx.caller.uid,
        };
        let key_metadata = cx.svc.metadata(&record);
        Ok((
            KeyMetadataResponse { key_metadata },
            vec![Mutation::PutKey(record)],
        ))
    }
}

impl Operation for DescribeKeyRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[kmsd_policy::granted(
        "kms:DescribeKey",
        Target::Key,
        kmsd_policy::GrantOperation::DescribeKey,
    )];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<KeyMetadataResponse> {
        read(KeyMetadataResponse {
            key_metadata: cx.svc.metadata(&cx.entry()?.record),
        })
    }
}

impl Operation for ListKeysRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_service("kms:ListKeys")];

    fn validate(&self) -> Result<()> {
        validate::list_limit(self.limit).map(drop)
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<ListKeysResponse> {
        let limit = validate::list_limit(self.limit)?;
        let mut ids: Vec<String> = cx.st.keys.keys().map(|k| k.to_string()).collect();
        ids.sort();
        let page = paginate(ids, |s| s.clone(), limit, self.marker.as_deref())?;
        let prefix = cx.svc.key_arn_prefix();
        let keys = page
            .items
            .into_iter()
            .map(|id| KeyListEntry {
                key_arn: format!("{prefix}{id}"),
                key_id: id,
            })
            .collect();
        read(ListKeysResponse {
            keys,
            truncated: page.next_marker.is_some(),
            next_marker: page.next_marker,
        })
    }
}

impl Operation for EnableKeyRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:EnableKey")];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        cx.update_key(|e, rec| {
            cx.svc.require_not_pending_deletion(e)?;
            rec.state = KeyState::Enabled;
            Ok(Empty {})
        })
    }
}

impl Operation for DisableKeyRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:DisableKey")];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        cx.update_key(|e, rec| {
            cx.svc.require_not_pending_deletion(e)?;
            rec.state = KeyState::Disabled;
            Ok(Empty {})
        })
    }
}

impl Operation for ScheduleKeyDeletionRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:ScheduleKeyDeletion")];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn validate(&self) -> Result<()> {
        validate::pending_window(self.pending_window_in_days).map(drop)
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<ScheduleKeyDeletionResponse> {
        let days = validate::pending_window(self.pending_window_in_days)?;
        cx.update_key(|e, rec| {
            cx.svc.require_not_pending_deletion(e)?;
            let when = cx.now.plus_days(u64::from(days));
            rec.state = KeyState::PendingDeletion;
            rec.deletion_date = Some(when);
            rec.pending_window_days = Some(days);
            Ok(ScheduleKeyDeletionResponse {
                key_id: cx.svc.key_arn(rec.key_id),
                deletion_date: when,
                key_state: KeyState::PendingDeletion,
                pending_window_in_days: days,
            })
        })
    }
}

/// As in AWS, a cancelled key comes back Disabled.
impl Operation for CancelKeyDeletionRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:CancelKeyDeletion")];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<KeyIdResponse> {
        cx.update_key(|_, rec| {
            if rec.state != KeyState::PendingDeletion {
                return Err(KmsError::invalid_state(format!(
                    "{} is not pending deletion (it is {}).",
                    cx.svc.key_arn(rec.key_id),
                    rec.state
                )));
            }
            rec.state = KeyState::Disabled;
            rec.deletion_date = None;
            rec.pending_window_days = None;
            Ok(KeyIdResponse {
                key_id: cx.svc.key_arn(rec.key_id),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::Clock;
    use crate::service::testkit::*;
    use kmsd_client::*;

    #[test]
    fn create_describe_by_every_reference_form() {
        let t = TestService::new();
        let meta = t.create("first key");
        assert_eq!(meta.key_state, KeyState::Enabled);
        assert_eq!(
            meta.arn,
            format!("arn:aws:kms:local:000000000000:key/{}", meta.key_id)
        );
        assert_eq!(meta.current_key_version, 1);
        t.svc
            .run(CreateAliasRequest {
                alias_name: "alias/first".into(),
                target_key_id: meta.key_id.clone(),
            })
            .unwrap();
        for r in [
            meta.key_id.clone(),
            meta.arn.clone(),
            "alias/first".to_string(),
            "arn:aws:kms:local:000000000000:alias/first".to_string(),
        ] {
            let d = t.svc.run(DescribeKeyRequest { key_id: r.clone() }).unwrap();
            assert_eq!(d.key_metadata.key_id, meta.key_id, "{r}");
            assert_eq!(d.key_metadata.description, "first key");
        }
        for bad in [
            "alias/nope",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "not-a-key",
            "arn:aws:kms:other:000000000000:key/x",
        ] {
            let e = t
                .svc
                .run(DescribeKeyRequest { key_id: bad.into() })
                .err()
                .unwrap();
            assert_eq!(e.kind, ErrorKind::NotFoundException, "{bad}");
        }
        let e = t
            .svc
            .run(DescribeKeyRequest { key_id: "".into() })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::ValidationException);
    }

    #[test]
    fn list_keys_paginates() {
        let t = TestService::new();
        let mut made: Vec<String> = (0..7).map(|i| t.create(&format!("k{i}")).key_id).collect();
        made.sort();
        let mut seen = Vec::new();
        let mut marker = None;
        loop {
            let r = t
                .svc
                .run(ListKeysRequest {
                    limit: Some(3),
                    marker: marker.clone(),
                })
                .unwrap();
            assert!(r.keys.len() <= 3);
            seen.extend(r.keys.iter().map(|k| k.key_id.clone()));
            if !r.truncated {
                assert!(r.next_marker.is_none());
                break;
            }
            marker = r.next_marker;
        }
        assert_eq!(seen, made);
        let e = t
            .svc
            .run(ListKeysRequest {
                limit: Some(1001),
                marker: None,
            })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::ValidationException);
    }

    #[test]
    fn enable_disable_and_deletion_states() {
        let t = TestService::new();
        let id = t.create("k").key_id;
        t.svc.run(DisableKeyRequest { key_id: id.clone() }).unwrap();
        assert_eq!(t.state_of(&id), KeyState::Disabled);
        t.svc.run(EnableKeyRequest { key_id: id.clone() }).unwrap();
        assert_eq!(t.state_of(&id), KeyState::Enabled);

        for days in [Some(6), Some(31)] {
            let e = t
                .svc
                .run(ScheduleKeyDeletionRequest {
                    key_id: id.clone(),
                    pending_window_in_days: days,
                })
                .err()
                .unwrap();
            assert_eq!(e.kind, ErrorKind::ValidationException);
        }
        let r = t
            .svc
            .run(ScheduleKeyDeletionRequest {
                key_id: id.clone(),
                pending_window_in_days: None,
            })
            .unwrap();
        assert_eq!(r.pending_window_in_days, 30);
        assert_eq!(r.deletion_date, t.clock.now().plus_days(30));
        assert_eq!(t.state_of(&id), KeyState::PendingDeletion);
        let again = t.svc.run(ScheduleKeyDeletionRequest {
            key_id: id.clone(),
            pending_window_in_days: Some(7),
        });
        assert_eq!(
            again.err().unwrap().kind,
            ErrorKind::KMSInvalidStateException
        );
        assert_eq!(
            t.svc
                .run(EnableKeyRequest { key_id: id.clone() })
                .err()
                .unwrap()
                .kind,
            ErrorKind::KMSInvalidStateException
        );
        t.svc
            .run(CancelKeyDeletionRequest { key_id: id.clone() })
            .unwrap();
        assert_eq!(t.state_of(&id), KeyState::Disabled);
        let meta = t
            .svc
            .run(DescribeKeyRequest { key_id: id.clone() })
            .unwrap()
            .key_metadata;
        assert!(meta.deletion_date.is_none());
        assert_eq!(
            t.svc
                .run(CancelKeyDeletionRequest { key_id: id })
                .err()
                .unwrap()
                .kind,
            ErrorKind::KMSInvalidStateException
        );
    }

    #[test]
    fn description_and_tag_limits_on_create() {
        let t = TestService::new();
        let long = CreateKeyRequest {
            description: Some("x".repeat(8193)),
            ..Default::default()
        };
        assert_eq!(
            t.create_req(long).err().unwrap().kind,
            ErrorKind::ValidationException
        );
        let bad_tag = CreateKeyRequest {
            tags: vec![Tag {
                tag_key: "".into(),
                tag_value: "v".into(),
            }],
            ..Default::default()
        };
        assert_eq!(
            t.create_req(bad_tag).err().unwrap().kind,
            ErrorKind::TagException
        );
    }
}
