//! The background sweep: destroys keys whose deletion window has ended and
//! rotates keys whose rotation is due. `tick` is idempotent and runs at
//! start-up and then periodically.

use super::KeyService;
use super::state::grant_store_key;
use crate::store::Mutation;
use kmsd_client::{KeyState, RotationType};
use uuid::Uuid;

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
            if let Err(e) = self.destroy(id) {
                tracing::error!(key_id = %id, error = %e, "could not destroy key at the end of its deletion window");
            }
        }
        for id in due {
            let r = self.update_key(&id.to_string(), |e, rec, now| {
                if let (KeyState::Enabled, Some(mut s)) = (e.record.state, rec.rotation)
                    && s.next_rotation <= now
                {
                    self.add_version(rec, now, RotationType::Automatic);
                    s.next_rotation = now.plus_days(u64::from(s.period_days));
                    rec.rotation = Some(s);
                }
                Ok(())
            });
            match r {
                Ok(()) => tracing::info!(key_id = %id, "key rotated automatically"),
                Err(e) => tracing::error!(key_id = %id, error = %e, "automatic rotation failed"),
            }
        }
    }

    /// Removes a key, its aliases and its grants in one commit. Its
    /// material is wiped when the last in-flight call drops its cipher.
    fn destroy(&self, id: Uuid) -> super::Result<()> {
        self.mutate(|st, now| {
            let Some(e) = st.keys.get(&id) else {
                return Ok(((), vec![]));
            };
            if e.record.state != KeyState::PendingDeletion
                || e.record.deletion_date.is_none_or(|d| d > now)
            {
                return Ok(((), vec![]));
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
            Ok(((), batch))
        })?;
        tracing::info!(key_id = %id, "deletion window ended: key material destroyed");
        Ok(())
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
            .create_alias(CreateAliasRequest {
                alias_name: "alias/doomed".into(),
                target_key_id: id.clone(),
            })
            .unwrap();
        let ct = t
            .svc
            .encrypt(EncryptRequest {
                key_id: id.clone(),
                plaintext: SecretBytes::from_slice(b"x"),
                encryption_context: Default::default(),
                grant_tokens: vec![],
            })
            .unwrap()
            .ciphertext_blob;
        t.svc
            .schedule_key_deletion(ScheduleKeyDeletionRequest {
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
            .describe_key(DescribeKeyRequest { key_id: id.clone() })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::NotFoundException);
        assert!(
            t.svc
                .list_aliases(ListAliasesRequest::default())
                .unwrap()
                .aliases
                .is_empty()
        );
        let d = t.svc.decrypt(DecryptRequest {
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
            svc.describe_key(DescribeKeyRequest { key_id: id })
                .err()
                .unwrap()
                .kind,
            ErrorKind::NotFoundException
        );
    }
}
