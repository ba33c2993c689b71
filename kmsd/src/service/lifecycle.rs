//! The background sweep: destroys keys whose deletion window has ended and
//! rotates keys whose rotation is due. `tick` is idempotent and runs at
//! start-up and then periodically. Both are kmsd's own events, audited as
//! CloudTrail logs them (`DeleteKey`, `RotateKey`, invoked by
//! `kmsd.sweeper`) through the same audit-then-commit path as requests.

use super::operation::Resolved;
use super::state::grant_store_key;
use super::{KeyService, Result};
use crate::store::Mutation;
use kmsd_client::{KeyState, RotationType};
use serde_json::json;
use uuid::Uuid;

/// The `invokedBy` of the sweeper's records.
pub const SWEEPER: &str = "kmsd.sweeper";

impl KeyService {
    pub fn tick(&self) {
        let now = self.now();
        let (doomed, due): (Vec<Uuid>, Vec<Uuid>) = {
            let st = self.read();
            let doomed = st
                .keys
                .values()
                .filter(|e| {
                    e.record.state == KeyState::PendingDeletion
                        && e.record.deletion_date.is_some_and(|d| d <= now)
                })
                .map(|e| e.record.key_id)
                .collect();
            let due = st
                .keys
                .values()
                .filter(|e| {
                    e.record.state == KeyState::Enabled
                        && e.record.rotation.is_some_and(|r| r.next_rotation <= now)
                })
                .map(|e| e.record.key_id)
                .collect();
            (doomed, due)
        };
        for id in doomed {
            match self.destroy(id) {
                Ok(true) => {
                    tracing::info!(key_id = %id, "deletion window ended: key material destroyed")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(key_id = %id, error = %e, "could not destroy key at the end of its deletion window")
                }
            }
        }
        for id in due {
            match self.rotate_due(id) {
                Ok(true) => tracing::info!(key_id = %id, "key rotated automatically"),
                Ok(false) => {}
                Err(e) => tracing::error!(key_id = %id, error = %e, "automatic rotation failed"),
            }
        }
    }

    /// Removes a key, its aliases and its grants in one commit, if its
    /// window has still ended under the writer lock. Its material is wiped
    /// when the last in-flight call drops its cipher.
    fn destroy(&self, id: Uuid) -> Result<bool> {
        let params = json!({ "KeyId": id.to_string() });
        self.service_event("DeleteKey", SWEEPER, params, |st, now| {
            let Some(e) = st.keys.get(&id) else {
                return Ok((false, vec![], Resolved::default()));
            };
            if e.record.state != KeyState::PendingDeletion
                || e.record.deletion_date.is_none_or(|d| d > now)
            {
                return Ok((false, vec![], Resolved::default()));
            }
            let mut batch = vec![Mutation::DeleteKey(id)];
            batch.extend(
                st.aliases
                    .values()
                    .filter(|a| a.target == id)
                    .map(|a| Mutation::DeleteAlias(a.name.clone())),
            );
            batch.extend(
                e.grants
                    .iter()
                    .map(|g| Mutation::DeleteGrant(grant_store_key(id, &g.grant_id))),
            );
            Ok((true, batch, Resolved::key(id)))
        })
    }

    /// Adds a version to a key whose automatic rotation is due (checked
    /// again under the writer lock).
    fn rotate_due(&self, id: Uuid) -> Result<bool> {
        let params = json!({ "KeyId": id.to_string() });
        self.service_event("RotateKey", SWEEPER, params, |st, now| {
            let Some(e) = st.keys.get(&id) else {
                return Ok((false, vec![], Resolved::default()));
            };
            let mut rec = e.record.clone();
            let (KeyState::Enabled, Some(mut s)) = (rec.state, rec.rotation) else {
                return Ok((false, vec![], Resolved::default()));
            };
            if s.next_rotation > now {
                return Ok((false, vec![], Resolved::default()));
            }
            self.add_version(&mut rec, now, RotationType::Automatic);
            s.next_rotation = now.plus_days(u64::from(s.period_days));
            rec.rotation = Some(s);
            Ok((true, vec![Mutation::PutKey(rec)], Resolved::key(id)))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::service::testkit::*;
    use kmsd_client::*;

    #[test]
    fn key_destroyed_after_window_with_its_aliases() {
        let t = TestService::new();
        let id = t.create("doomed").key_id;
        t.svc
            .run(CreateAliasRequest {
                alias_name: "alias/doomed".into(),
                target_key_id: id.clone(),
            })
            .unwrap();
        let ct = t
            .svc
            .run(EncryptRequest {
                key_id: id.clone(),
                plaintext: SecretBytes::from_slice(b"x"),
                encryption_context: Default::default(),
                grant_tokens: vec![],
            })
            .unwrap()
            .ciphertext_blob;
        t.svc
            .run(ScheduleKeyDeletionRequest {
                key_id: id.clone(),
                pending_window_in_days: Some(7),
            })
            .unwrap();
        t.clock.advance_days(6);
        t.svc.tick();
        assert_eq!(t.state_of(&id), KeyState::PendingDeletion);
        t.clock.advance_days(1);
        t.svc.tick();
        let e = t
            .svc
            .run(DescribeKeyRequest { key_id: id.clone() })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::NotFoundException);
        assert!(
            t.svc
                .run(ListAliasesRequest::default())
                .unwrap()
                .aliases
                .is_empty()
        );
        let d = t.svc.run(DecryptRequest {
            ciphertext_blob: ct,
            encryption_context: Default::default(),
            key_id: None,
            grant_tokens: vec![],
        });
        assert_eq!(d.err().unwrap().kind, ErrorKind::InvalidCiphertextException);
        // Gone after a restart too.
        drop(t.svc);
        let svc = TestService::open(&t.dir, t.clock.clone());
        assert_eq!(
            svc.run(DescribeKeyRequest { key_id: id })
                .err()
                .unwrap()
                .kind,
            ErrorKind::NotFoundException
        );
    }
}
