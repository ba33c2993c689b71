//! EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus,
//! RotateKeyOnDemand, ListKeyRotations. Automatic rotation runs from
//! `lifecycle::tick`.

use super::paginate::paginate;
use super::{KeyService, Result, validate};
use crate::store::{KeyRecord, RotationSchedule};
use kmsd_client::*;

impl KeyService {
    pub fn enable_key_rotation(&self, req: EnableKeyRotationRequest) -> Result<Empty> {
        let days = validate::rotation_period(req.rotation_period_in_days)?;
        self.update_key(&req.key_id, |e, rec, now| {
            self.require_usable(e)?;
            // The schedule counts from the last rotation (or creation).
            let since = rec.versions.last().map_or(now, |v| v.created);
            let mut next = since.plus_days(u64::from(days));
            if next < now {
                next = now;
            }
            rec.rotation = Some(RotationSchedule {
                period_days: days,
                next_rotation: next,
            });
            Ok(Empty {})
        })
    }

    pub fn disable_key_rotation(&self, req: DisableKeyRotationRequest) -> Result<Empty> {
        self.update_key(&req.key_id, |e, rec, _| {
            self.require_usable(e)?;
            rec.rotation = None;
            Ok(Empty {})
        })
    }

    pub fn get_key_rotation_status(
        &self,
        req: GetKeyRotationStatusRequest,
    ) -> Result<GetKeyRotationStatusResponse> {
        let st = self.read();
        let id = self.resolve(&st, &req.key_id)?;
        let e = self.entry(&st, id)?;
        self.require_not_pending_deletion(e)?;
        let r = &e.record;
        Ok(GetKeyRotationStatusResponse {
            key_id: self.key_arn(id),
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

    pub fn rotate_key_on_demand(&self, req: RotateKeyOnDemandRequest) -> Result<KeyIdResponse> {
        self.update_key(&req.key_id, |e, rec, now| {
            self.require_usable(e)?;
            if rec.on_demand_rotations >= validate::MAX_ON_DEMAND_ROTATIONS {
                return Err(KmsError::limit_exceeded(format!(
                    "{} has reached the limit of {} on-demand rotations",
                    self.key_arn(rec.key_id),
                    validate::MAX_ON_DEMAND_ROTATIONS
                )));
            }
            rec.on_demand_rotations += 1;
            self.add_version(rec, now, RotationType::OnDemand);
            Ok(KeyIdResponse {
                key_id: self.key_arn(rec.key_id),
            })
        })
    }

    pub(crate) fn add_version(&self, rec: &mut KeyRecord, now: Timestamp, how: RotationType) {
        let v = rec.versions.last().map_or(1, |v| v.version + 1);
        rec.versions
            .push(self.new_version(rec.key_id, v, now, Some(how)));
    }

    pub fn list_key_rotations(
        &self,
        req: ListKeyRotationsRequest,
    ) -> Result<ListKeyRotationsResponse> {
        let limit = validate::list_limit(req.limit)?;
        let st = self.read();
        let id = self.resolve(&st, &req.key_id)?;
        let e = self.entry(&st, id)?;
        let arn = self.key_arn(id);
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
            req.marker.as_deref(),
        )?;
        Ok(ListKeyRotationsResponse {
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
            .encrypt(EncryptRequest {
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
            .decrypt(DecryptRequest {
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
            .rotate_key_on_demand(RotateKeyOnDemandRequest { key_id: id.clone() })
            .unwrap();
        let new = enc(&t, &id);
        assert_eq!(u32::from_be_bytes(old[17..21].try_into().unwrap()), 1);
        assert_eq!(u32::from_be_bytes(new[17..21].try_into().unwrap()), 2);
        assert_eq!(dec(&t, &old).unwrap(), b"data");
        assert_eq!(dec(&t, &new).unwrap(), b"data");
        for _ in 1..25 {
            t.svc
                .rotate_key_on_demand(RotateKeyOnDemandRequest { key_id: id.clone() })
                .unwrap();
        }
        let e = t
            .svc
            .rotate_key_on_demand(RotateKeyOnDemandRequest { key_id: id.clone() })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::LimitExceededException);
        let list = t
            .svc
            .list_key_rotations(ListKeyRotationsRequest {
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
            let e = t.svc.enable_key_rotation(EnableKeyRotationRequest {
                key_id: id.clone(),
                rotation_period_in_days: Some(bad),
            });
            assert_eq!(e.err().unwrap().kind, ErrorKind::ValidationException);
        }
        t.svc
            .enable_key_rotation(EnableKeyRotationRequest {
                key_id: id.clone(),
                rotation_period_in_days: Some(90),
            })
            .unwrap();
        let s = t
            .svc
            .get_key_rotation_status(GetKeyRotationStatusRequest { key_id: id.clone() })
            .unwrap();
        assert!(s.key_rotation_enabled);
        assert_eq!(s.rotation_period_in_days, Some(90));
        assert_eq!(s.next_rotation_date, Some(t.clock.now().plus_days(90)));
        let old = enc(&t, &id);
        t.clock.advance_days(89);
        t.svc.tick();
        assert_eq!(
            t.svc
                .describe_key(DescribeKeyRequest { key_id: id.clone() })
                .unwrap()
                .key_metadata
                .current_key_version,
            1
        );
        t.clock.advance_days(1);
        t.svc.tick();
        let meta = t
            .svc
            .describe_key(DescribeKeyRequest { key_id: id.clone() })
            .unwrap()
            .key_metadata;
        assert_eq!(meta.current_key_version, 2);
        let rot = t
            .svc
            .list_key_rotations(ListKeyRotationsRequest {
                key_id: id.clone(),
                limit: None,
                marker: None,
            })
            .unwrap();
        assert_eq!(rot.rotations.len(), 1);
        assert_eq!(rot.rotations[0].rotation_type, RotationType::Automatic);
        assert_eq!(dec(&t, &old).unwrap(), b"data");
        t.svc
            .disable_key_rotation(DisableKeyRotationRequest { key_id: id.clone() })
            .unwrap();
        t.clock.advance_days(400);
        t.svc.tick();
        assert_eq!(
            t.svc
                .describe_key(DescribeKeyRequest { key_id: id })
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
            .rotate_key_on_demand(RotateKeyOnDemandRequest { key_id: id.clone() })
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
