//! CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey:
//! kmsd's own administration of the access keys that sign requests on the
//! AWS endpoint (IAM's counterparts). Authorized by the service policy
//! (`kms:CreateAccessKey`, ...; the default gives them to the
//! administrator only) and audited like every request; the secret is
//! returned once and kept only wrapped under the root key.
//!
//! An access key acts as one principal, `uid:N` or `user:NAME`; its
//! caller's groups come from the user database, as for a socket caller
//! (docs/AUTHZ.md, "Access keys").

use super::operation::{Exec, Operation, Planned, read};
use super::paginate::paginate;
use super::state::AccessKey;
use super::{Caller, KeyService, Result, validate};
use crate::crypto::aead::fill_random;
use crate::store::{AccessKeyRecord, Mutation};
use kmsd_client::*;
use kmsd_policy::{Directory, Principal, Requirement, SystemDirectory, on_service};

/// `AKIA` and 16 characters of RFC 4648 base32, as IAM's key ids.
fn new_access_key_id() -> String {
    const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut r = [0u8; 16];
    fill_random(&mut r);
    let tail: String = r.iter().map(|b| B32[usize::from(b & 31)] as char).collect();
    format!("AKIA{tail}")
}

/// 40 characters of base64's alphabet, as IAM's secrets (240 bits).
fn new_secret() -> SecretString {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut r = zeroize::Zeroizing::new([0u8; 40]);
    fill_random(&mut r[..]);
    SecretString::new(r.iter().map(|b| B64[usize::from(b & 63)] as char).collect())
}

/// The principal an access key may act as: one user, by uid or name.
fn key_principal(text: &str) -> Result<Principal> {
    let p: Principal = text.parse().map_err(KmsError::validation)?;
    match &p {
        Principal::Uid(_) => Ok(p),
        Principal::User(_) => {
            p.check_name(&SystemDirectory)
                .map_err(KmsError::validation)?;
            Ok(p)
        }
        _ => Err(KmsError::validation(format!(
            "an access key acts as one user: uid:N or user:NAME, not \"{text}\""
        ))),
    }
}

fn not_found(id: &str) -> KmsError {
    KmsError::not_found(format!(
        "The access key with id {} cannot be found.",
        kmsd_client::logsafe::escape(id)
    ))
}

impl KeyService {
    /// The caller a request signed with `key` acts as, its groups read from
    /// the user database now (system lookups: call off the async runtime).
    pub fn access_key_caller(key: &AccessKeyRecord) -> Result<Caller> {
        let dir = SystemDirectory;
        let uid = match key_principal(&key.principal)? {
            Principal::Uid(u) => u,
            Principal::User(name) => dir
                .uid_of(&name)
                .ok_or_else(|| KmsError::access_denied(format!("no user named \"{name}\"")))?,
            _ => return Err(KmsError::internal("access key principal")),
        };
        let gid = dir.primary_gid(uid).unwrap_or(uid);
        Ok(Caller::resolve(uid, gid, None, &dir))
    }

    /// `f` of the access key `id` and its secret, if the key exists (active
    /// or not), under the state's read lock: nothing is copied.
    pub fn with_access_key<R>(
        &self,
        id: &str,
        f: impl FnOnce(&AccessKeyRecord, &[u8]) -> R,
    ) -> Option<R> {
        let st = self.read();
        st.access_keys
            .get(id)
            .map(|k: &AccessKey| f(&k.record, &k.secret))
    }

    /// The access key `id`, if it exists (active or not).
    pub fn access_key(&self, id: &str) -> Option<(AccessKeyRecord, zeroize::Zeroizing<Vec<u8>>)> {
        let st = self.read();
        st.access_keys
            .get(id)
            .map(|k: &AccessKey| (k.record.clone(), k.secret.clone()))
    }
}

impl Operation for CreateAccessKeyRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_service("kms:CreateAccessKey")];

    fn validate(&self) -> Result<()> {
        key_principal(&self.principal)?;
        validate::description(self.description.as_deref().unwrap_or(""))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<CreateAccessKeyResponse> {
        let id = new_access_key_id();
        let secret = new_secret();
        let record = AccessKeyRecord {
            access_key_id: id.clone(),
            principal: self.principal.clone(),
            status: AccessKeyStatus::Active,
            created: cx.now,
            description: self.description,
            wrapped_secret: crate::crypto::secret::wrap(
                cx.svc.wrap_key(),
                &id,
                secret.expose().as_bytes(),
            ),
        };
        let resp = CreateAccessKeyResponse {
            access_key_id: id,
            secret_access_key: secret,
            principal: self.principal,
        };
        Ok((resp, vec![Mutation::PutAccessKey(record)]))
    }
}

impl Operation for ListAccessKeysRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_service("kms:ListAccessKeys")];

    fn validate(&self) -> Result<()> {
        validate::list_limit(self.limit).map(drop)
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<ListAccessKeysResponse> {
        let limit = validate::list_limit(self.limit)?;
        let entries = cx.st.access_keys.values().map(|k| AccessKeyEntry {
            access_key_id: k.record.access_key_id.clone(),
            principal: k.record.principal.clone(),
            status: k.record.status,
            create_date: k.record.created,
            description: k.record.description.clone(),
        });
        let page = paginate(
            entries,
            |e| e.access_key_id.clone(),
            limit,
            self.marker.as_deref(),
        )?;
        read(ListAccessKeysResponse {
            access_keys: page.items,
            truncated: page.next_marker.is_some(),
            next_marker: page.next_marker,
        })
    }
}

impl Operation for UpdateAccessKeyRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_service("kms:UpdateAccessKey")];

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        let k = cx
            .st
            .access_keys
            .get(&self.access_key_id)
            .ok_or_else(|| not_found(&self.access_key_id))?;
        if k.record.status == self.status {
            return read(Empty {});
        }
        let record = AccessKeyRecord {
            status: self.status,
            ..k.record.clone()
        };
        Ok((Empty {}, vec![Mutation::PutAccessKey(record)]))
    }
}

impl Operation for DeleteAccessKeyRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_service("kms:DeleteAccessKey")];

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        if !cx.st.access_keys.contains_key(&self.access_key_id) {
            return Err(not_found(&self.access_key_id));
        }
        Ok((
            Empty {},
            vec![Mutation::DeleteAccessKey(self.access_key_id)],
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::service::testkit::*;
    use kmsd_client::*;

    #[test]
    fn create_list_update_delete() {
        let t = TestService::new();
        let made = t
            .svc
            .run(CreateAccessKeyRequest {
                principal: "uid:1234".into(),
                description: Some("ci".into()),
            })
            .expect("create");
        assert_eq!(made.access_key_id.len(), 20);
        assert!(made.access_key_id.starts_with("AKIA"));
        assert_eq!(made.secret_access_key.expose().len(), 40);
        let (rec, secret) = t.svc.access_key(&made.access_key_id).expect("stored");
        assert_eq!(&secret[..], made.secret_access_key.expose().as_bytes());
        assert!(
            !rec.wrapped_secret
                .windows(8)
                .any(|w| w == &made.secret_access_key.expose().as_bytes()[..8]),
            "the secret is stored wrapped"
        );
        let list = t.svc.run(ListAccessKeysRequest::default()).expect("list");
        assert_eq!(list.access_keys.len(), 1);
        assert_eq!(list.access_keys[0].status, AccessKeyStatus::Active);
        assert_eq!(list.access_keys[0].principal, "uid:1234");
        t.svc
            .run(UpdateAccessKeyRequest {
                access_key_id: made.access_key_id.clone(),
                status: AccessKeyStatus::Inactive,
            })
            .expect("deactivate");
        assert_eq!(
            t.svc.access_key(&made.access_key_id).unwrap().0.status,
            AccessKeyStatus::Inactive
        );
        t.svc
            .run(DeleteAccessKeyRequest {
                access_key_id: made.access_key_id.clone(),
            })
            .expect("delete");
        assert!(t.svc.access_key(&made.access_key_id).is_none());
        let e = t
            .svc
            .run(DeleteAccessKeyRequest {
                access_key_id: made.access_key_id,
            })
            .expect_err("gone");
        assert_eq!(e.kind, ErrorKind::NotFoundException);
        for bad in [
            "group:wheel",
            "*",
            "gid:1",
            "uid:x",
            "user:no-such-user-kmsd-test",
        ] {
            let Err(e) = t.svc.run(CreateAccessKeyRequest {
                principal: bad.into(),
                description: None,
            }) else {
                panic!("{bad} accepted");
            };
            assert_eq!(e.kind, ErrorKind::ValidationException, "{bad}");
        }
    }

    #[test]
    fn secrets_survive_a_restart_wrapped() {
        let t = TestService::new();
        let made = t
            .svc
            .run(CreateAccessKeyRequest {
                principal: "uid:1234".into(),
                description: None,
            })
            .expect("create");
        let TestService { svc, clock, dir } = t;
        drop(svc);
        let svc = TestService::open(&dir, clock);
        let (_, secret) = svc.access_key(&made.access_key_id).expect("reloaded");
        assert_eq!(&secret[..], made.secret_access_key.expose().as_bytes());
    }
}
