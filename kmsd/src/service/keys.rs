//! CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey,
//! ScheduleKeyDeletion, CancelKeyDeletion.

use super::paginate::paginate;
use super::{Caller, KeyService, Result, validate};
use crate::crypto::aead::KeyBytes;
use crate::crypto::material;
use crate::store::{KeyRecord, Mutation, VersionRecord};
use kmsd_client::*;
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

    pub fn create_key(
        &self,
        caller: &Caller,
        req: CreateKeyRequest,
        policy: String,
    ) -> Result<KeyMetadataResponse> {
        validate::description(req.description.as_deref().unwrap_or(""))?;
        validate::tags(&req.tags)?;
        if req.tags.len() > validate::MAX_TAGS_PER_KEY {
            return Err(KmsError::limit_exceeded(format!(
                "a key can have at most {} tags",
                validate::MAX_TAGS_PER_KEY
            )));
        }
        self.mutate(|_st, now| {
            let key_id = Uuid::new_v4();
            let mut tags: Vec<Tag> = Vec::new();
            for t in req.tags {
                tags.retain(|x| x.tag_key != t.tag_key);
                tags.push(t);
            }
            let record = KeyRecord {
                key_id,
                created: now,
                description: req.description.unwrap_or_default(),
                state: KeyState::Enabled,
                deletion_date: None,
                pending_window_days: None,
                tags,
                rotation: None,
                on_demand_rotations: 0,
                versions: vec![self.new_version(key_id, 1, now, None)],
                policy,
                creator_uid: caller.uid,
            };
            let meta = self.metadata(&record);
            Ok((
                KeyMetadataResponse { key_metadata: meta },
                vec![Mutation::PutKey(record)],
            ))
        })
    }

    pub fn describe_key(&self, req: DescribeKeyRequest) -> Result<KeyMetadataResponse> {
        let st = self.read();
        let id = self.resolve(&st, &req.key_id)?;
        Ok(KeyMetadataResponse {
            key_metadata: self.metadata(&self.entry(&st, id)?.record),
        })
    }

    pub fn list_keys(&self, req: ListKeysRequest) -> Result<ListKeysResponse> {
        let limit = validate::list_limit(req.limit)?;
        let st = self.read();
        let mut ids: Vec<String> = st.keys.keys().map(|k| k.to_string()).collect();
        ids.sort();
        let page = paginate(ids, |s| s.clone(), limit, req.marker.as_deref())?;
        let keys = page
            .items
            .into_iter()
            .map(|id| KeyListEntry {
                key_arn: format!("{}{id}", self.key_arn_prefix()),
                key_id: id,
            })
            .collect();
        Ok(ListKeysResponse {
            keys,
            truncated: page.next_marker.is_some(),
            next_marker: page.next_marker,
        })
    }

    fn key_arn_prefix(&self) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/",
            self.config().region,
            self.config().account
        )
    }

    pub fn enable_key(&self, req: EnableKeyRequest) -> Result<Empty> {
        self.update_key(&req.key_id, |e, rec, _| {
            self.require_not_pending_deletion(e)?;
            rec.state = KeyState::Enabled;
            Ok(Empty {})
        })
    }

    pub fn disable_key(&self, req: DisableKeyRequest) -> Result<Empty> {
        self.update_key(&req.key_id, |e, rec, _| {
            self.require_not_pending_deletion(e)?;
            rec.state = KeyState::Disabled;
            Ok(Empty {})
        })
    }

    pub fn schedule_key_deletion(
        &self,
        req: ScheduleKeyDeletionRequest,
    ) -> Result<ScheduleKeyDeletionResponse> {
        let days = validate::pending_window(req.pending_window_in_days)?;
        self.update_key(&req.key_id, |e, rec, now| {
            self.require_not_pending_deletion(e)?;
            let when = now.plus_days(u64::from(days));
            rec.state = KeyState::PendingDeletion;
            rec.deletion_date = Some(when);
            rec.pending_window_days = Some(days);
            Ok(ScheduleKeyDeletionResponse {
                key_id: self.key_arn(rec.key_id),
                deletion_date: when,
                key_state: KeyState::PendingDeletion,
                pending_window_in_days: days,
            })
        })
    }

    /// As in AWS, a cancelled key comes back Disabled.
    pub fn cancel_key_deletion(&self, req: CancelKeyDeletionRequest) -> Result<KeyIdResponse> {
        self.update_key(&req.key_id, |_, rec, _| {
            if rec.state != KeyState::PendingDeletion {
                return Err(KmsError::invalid_state(format!(
                    "{} is not pending deletion (it is {}).",
                    self.key_arn(rec.key_id),
                    rec.state
                )));
            }
            rec.state = KeyState::Disabled;
            rec.deletion_date = None;
            rec.pending_window_days = None;
            Ok(KeyIdResponse {
                key_id: self.key_arn(rec.key_id),
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
            .create_alias(CreateAliasRequest {
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
            let d = t
                .svc
                .describe_key(DescribeKeyRequest { key_id: r.clone() })
                .unwrap();
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
                .describe_key(DescribeKeyRequest { key_id: bad.into() })
                .err()
                .unwrap();
            assert_eq!(e.kind, ErrorKind::NotFoundException, "{bad}");
        }
        let e = t
            .svc
            .describe_key(DescribeKeyRequest { key_id: "".into() })
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
                .list_keys(ListKeysRequest {
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
            .list_keys(ListKeysRequest {
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
        t.svc
            .disable_key(DisableKeyRequest { key_id: id.clone() })
            .unwrap();
        assert_eq!(t.state_of(&id), KeyState::Disabled);
        t.svc
            .enable_key(EnableKeyRequest { key_id: id.clone() })
            .unwrap();
        assert_eq!(t.state_of(&id), KeyState::Enabled);

        for days in [Some(6), Some(31)] {
            let e = t
                .svc
                .schedule_key_deletion(ScheduleKeyDeletionRequest {
                    key_id: id.clone(),
                    pending_window_in_days: days,
                })
                .err()
                .unwrap();
            assert_eq!(e.kind, ErrorKind::ValidationException);
        }
        let r = t
            .svc
            .schedule_key_deletion(ScheduleKeyDeletionRequest {
                key_id: id.clone(),
                pending_window_in_days: None,
            })
            .unwrap();
        assert_eq!(r.pending_window_in_days, 30);
        assert_eq!(r.deletion_date, t.clock.now().plus_days(30));
        assert_eq!(t.state_of(&id), KeyState::PendingDeletion);
        let again = t.svc.schedule_key_deletion(ScheduleKeyDeletionRequest {
            key_id: id.clone(),
            pending_window_in_days: Some(7),
        });
        assert_eq!(
            again.err().unwrap().kind,
            ErrorKind::KMSInvalidStateException
        );
        assert_eq!(
            t.svc
                .enable_key(EnableKeyRequest { key_id: id.clone() })
                .err()
                .unwrap()
                .kind,
            ErrorKind::KMSInvalidStateException
        );
        t.svc
            .cancel_key_deletion(CancelKeyDeletionRequest { key_id: id.clone() })
            .unwrap();
        assert_eq!(t.state_of(&id), KeyState::Disabled);
        let meta = t
            .svc
            .describe_key(DescribeKeyRequest { key_id: id.clone() })
            .unwrap()
            .key_metadata;
        assert!(meta.deletion_date.is_none());
        assert_eq!(
            t.svc
                .cancel_key_deletion(CancelKeyDeletionRequest { key_id: id })
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
