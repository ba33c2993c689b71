//! EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus,
//! RotateKeyOnDemand, ListKeyRotations. Automatic rotation runs from
//! `lifecycle::tick`.

use super::operation::{Exec, KeyRef, Operation, Planned, Refs, read};
use super::paginate::paginate;
use super::{KeyService, Result, validate};
use crate::store::{KeyRecord, RotationSchedule};
use kmsd_client::*;
use kmsd_policy::{Requirement, on_key};

impl Operation for EnableKeyRotationRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:EnableKeyRotation")];

    fn validate(&self) -> Result<()> {
        validate::rotation_period(self.rotation_period_in_days).map(drop)
    }

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        let days = validate::rotation_period(self.rotation_period_in_days)?;
        cx.update_key(|e, rec| {
            cx.svc.require_usable(e)?;
            // The schedule counts from the last rotation (or creation).
            let since = rec.versions.last().map_or(cx.now, |v| v.created);
            let mut next = since.plus_days(u64::from(days));
            if next < cx.now {
                next = cx.now;
            }
            rec.rotation = Some(RotationSchedule {
                period_days: days,
                next_rotation: next,
            });
            Ok(Empty {})
        })
    }
}

impl Operation for DisableKeyRotationRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:DisableKeyRotation")];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        cx.update_key(|e, rec| {
            cx.svc.require_usable(e)?;
            rec.rotation = None;
            Ok(Empty {})
        })
    }
}

impl Operation for GetKeyRotationStatusRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_key("kms:GetKeyRotationStatus")];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<GetKeyRotationStatusResponse> {
        let e = cx.entry()?;
        cx.svc.require_not_pending_deletion(e)?;
        let r = &e.record;
        read(GetKeyRotationStatusResponse {
            key_id: cx.svc.key_arn(r.key_id),
            key_rotation_enabled: r.rotation.is_some(),
            rotation_period_in_days: r.rotation.map(|s| s.period_days),
            next_rotation_date: r.rotation.map(|s| s.next_rotation),
            on_demand_rotation_start_date: r
                .versions
                .iter()
                .rev()
                .find(|v| v.rotation == Some(RotationType::OnDemand))
                .map(|v| v.created),
        })
    }
}

impl Operation for RotateKeyOnDemandRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:RotateKeyOnDemand")];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<KeyIdResponse> {
        cx.update_key(|e, rec| {
            cx.svc.require_usable(e)?;
            if rec.on_demand_rotations >= validate::MAX_ON_DEMAND_ROTATIONS {
                return Err(KmsError::limit_exceeded(format!(
                    "{} has reached the limit of {} on-demand rotations",
                    cx.svc.key_arn(rec.key_id),
                    validate::MAX_ON_DEMAND_ROTATIONS
                )));
            }
            rec.on_demand_rotations += 1;
            cx.svc.add_version(rec, cx.now, RotationType::OnDemand);
            Ok(KeyIdResponse {
                key_id: cx.svc.key_arn(rec.key_id),
            })
        })
    }
}

impl KeyService {
    pub(crate) fn add_version(&self, rec: &mut KeyRecord, now: Timestamp, how: RotationType) {
        let v = rec.versions.last().map_or(1, |v| v.version + 1);
        rec.versions
            .push(self.new_version(rec.key_id, v, now, Some(how)));
    }
}

impl Operation for ListKeyRotationsRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_key("kms:ListKeyRotations")];

    fn validate(&self) -> Result<()> {
        validate::list_limit(self.limit).map(drop)
    }

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<ListKeyRotationsResponse> {
        let limit = validate::list_limit(self.limit)?;
        let e = cx.entry()?;
        let arn = cx.svc.key_arn(e.record.key_id);
        let rotations = e.record.versions.iter().filter_map(|v| {
            v.rotation.map(|t| RotationListEntry {
                key_id: arn.clone(),
                rotation_date: v.created,
                rotation_type: t,
                key_version: v.version,
            })
        });
        let page = paginate(
            rotations,
            |r| format!("{:010}", r.key_version),
            limit,
            self.marker.as_deref(),
        )?;
        read(ListKeyRotationsResponse {
            rotations: page.items,
            truncated: page.next_marker.is_some(),
            next_marker: page.next_marker,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::Clock;
    use crate::service::testkit::*;
    use kmsd_client::*;

    fn enc(t: &TestService, key: &str) -> Vec<u8> {
        t.svc
            .run(EncryptRequest {
                key_id: key.into(),
                plaintext: SecretBytes::from_slice(b"data"),
                encryption_context: Default::default(),
                grant_tokens: vec![],
            })
            .unwrap()
            .ciphertext_blob
            .0
    }

    fn dec(t: &TestService, blob: &[u8]) -> Result<Vec<u8>, KmsError> {
        t.svc
            .run(DecryptRequest {
                ciphertext_blob: Blob(blob.to_vec()),
                encryption_context: Default::default(),
                key_id: None,
                grant_tokens: vec![],
            })
            .map(|r| r.plaintext.expose().to_vec())
    }

    #[test]
    fn on_demand_rotation_keeps_old_blobs_and_is_limited() {
        let t = TestService::new();
        let id = t.create("r").key_id;
        let old = enc(&t, &id);
        t.svc
            .run(RotateKeyOnDemandRequest { key_id: id.clone() })
            .unwrap();
        let new = enc(&t, &id);
        assert_eq!(u32::from_be_bytes(old[17..21].try_into().unwrap()), 1);
        assert_eq!(u32::from_be_bytes(new[17..21].try_into().unwrap()), 2);
        assert_eq!(dec(&t, &old).unwrap(), b"data");
        assert_eq!(dec(&t, &new).unwrap(), b"data");
        for _ in 1..25 {
            t.svc
                .run(RotateKeyOnDemandRequest { key_id: id.clone() })
                .unwrap();
        }
        let e = t
            .svc
            .run(RotateKeyOnDemandRequest { key_id: id.clone() })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::LimitExceededException);
        let list = t
            .svc
            .run(ListKeyRotationsRequest {
                key_id: id.clone(),
                limit: Some(10),
                marker: None,
            })
            .unwrap();
        assert_eq!(list.rotations.len(), 10);
        assert!(list.truncated);
        assert!(
            list.rotations
                .iter()
                .all(|r| r.rotation_type == RotationType::OnDemand)
        );
        assert_eq!(dec(&t, &old).unwrap(), b"data");
    }

    #[test]
    fn automatic_rotation_when_due() {
        let t = TestService::new();
        let id = t.create("auto").key_id;
        for bad in [89, 2561] {
            let e = t.svc.run(EnableKeyRotationRequest {
                key_id: id.clone(),
                rotation_period_in_days: Some(bad),
            });
            assert_eq!(e.err().unwrap().kind, ErrorKind::ValidationException);
        }
        t.svc
            .run(EnableKeyRotationRequest {
                key_id: id.clone(),
                rotation_period_in_days: Some(90),
            })
            .unwrap();
        let s = t
            .svc
            .run(GetKeyRotationStatusRequest { key_id: id.clone() })
            .unwrap();
        assert!(s.key_rotation_enabled);
        assert_eq!(s.rotation_period_in_days, Some(90));
        assert_eq!(s.next_rotation_date, Some(t.clock.now().plus_days(90)));
        let old = enc(&t, &id);
        t.clock.advance_days(89);
        t.svc.tick();
        assert_eq!(
            t.svc
                .run(DescribeKeyRequest { key_id: id.clone() })
                .unwrap()
                .key_metadata
                .current_key_version,
            1
        );
        t.clock.advance_days(1);
        t.svc.tick();
        let meta = t
            .svc
            .run(DescribeKeyRequest { key_id: id.clone() })
            .unwrap()
            .key_metadata;
        assert_eq!(meta.current_key_version, 2);
        let rot = t
            .svc
            .run(ListKeyRotationsRequest {
                key_id: id.clone(),
                limit: None,
                marker: None,
            })
            .unwrap();
        assert_eq!(rot.rotations.len(), 1);
        assert_eq!(rot.rotations[0].rotation_type, RotationType::Automatic);
        assert_eq!(dec(&t, &old).unwrap(), b"data");
        t.svc
            .run(DisableKeyRotationRequest { key_id: id.clone() })
            .unwrap();
        t.clock.advance_days(400);
        t.svc.tick();
        assert_eq!(
            t.svc
                .run(DescribeKeyRequest { key_id: id })
                .unwrap()
                .key_metadata
                .current_key_version,
            2
        );
    }

    #[test]
    fn rotation_survives_restart() {
        let t = TestService::new();
        let id = t.create("persist").key_id;
        let old = enc(&t, &id);
        t.svc
            .run(RotateKeyOnDemandRequest { key_id: id.clone() })
            .unwrap();
        let new = enc(&t, &id);
        drop(t.svc);
        let svc = TestService::open(&t.dir, t.clock.clone());
        let t2 = TestService {
            svc,
            clock: t.clock,
            dir: t.dir,
        };
        assert_eq!(dec(&t2, &old).unwrap(), b"data");
        assert_eq!(dec(&t2, &new).unwrap(), b"data");
    }
}
