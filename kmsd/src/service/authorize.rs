//! Every request is authorized before it runs: the checks kmsd-policy's
//! table lists for the operation (an action on no key, on the key the
//! request names, or on ReEncrypt's / UpdateAlias's destination key), each
//! evaluated against the key policy, the service policy and the key's
//! grants. A denial is an `AccessDeniedException` naming the caller, the
//! action and the key.

use super::{Caller, KeyEntry, KeyService, Result, State};
use crate::crypto::blob;
use kmsd_client::{KmsError, Request};
use kmsd_policy::{
    Grant, KeyScope, Query, RequestContext, Requirement, Target, evaluate, parse_grant_token,
};
use uuid::Uuid;

fn invalid_ciphertext() -> KmsError {
    KmsError::invalid_ciphertext("The ciphertext is invalid or was not made by this kmsd.")
}

fn grant_tokens(r: &Request) -> &[String] {
    match r {
        Request::Encrypt(x) => &x.grant_tokens,
        Request::Decrypt(x) => &x.grant_tokens,
        Request::ReEncrypt(x) => &x.grant_tokens,
        Request::GenerateDataKey(x) => &x.grant_tokens,
        Request::GenerateDataKeyWithoutPlaintext(x) => &x.grant_tokens,
        Request::CreateGrant(x) => &x.grant_tokens,
        _ => &[],
    }
}

impl KeyService {
    pub(crate) fn authorize(&self, caller: &Caller, request: &Request) -> Result<()> {
        let reqs = kmsd_policy::requirements(request.name()).ok_or_else(|| {
            KmsError::internal(format!("no authorization rule for {}", request.name()))
        })?;
        // kmsd grants take effect at once; tokens only have to be ours.
        for t in grant_tokens(request) {
            parse_grant_token(t)?;
        }
        // As in AWS, CreateKey with tags also needs kms:TagResource (on no
        // key: the key does not exist yet).
        let tag_on_create = Requirement {
            action: "kms:TagResource",
            target: Target::Service,
            grant_operation: None,
        };
        let extra = match request {
            Request::CreateKey(r) if !r.tags.is_empty() => Some(&tag_on_create),
            _ => None,
        };
        let st = self.read();
        for r in reqs.iter().chain(extra) {
            let key = match r.target {
                Target::Service => None,
                Target::Key => Some(self.primary_key(&st, request)?),
                Target::DestinationKey => Some(self.destination_key(&st, request)?),
            };
            let context = self.condition_context(&st, caller, request, r.target, key)?;
            let entry = match key {
                Some(id) => Some(self.entry(&st, id)?),
                None => None,
            };
            let (id_text, arn) = key
                .map(|id| (id.to_string(), self.key_arn(id)))
                .unwrap_or_default();
            let q = Query {
                caller,
                admin_uid: self.config().admin_uid,
                action: r.action,
                key: entry.map(|e: &KeyEntry| KeyScope {
                    key_id: &id_text,
                    arn: &arn,
                    policy: &e.policy,
                    grants: &e.grants,
                }),
                service_policy: &st.service_policy,
                context: &context,
            };
            let decision = evaluate(&q);
            if !decision.is_allowed() {
                tracing::info!(op = request.name(), uid = caller.uid, action = r.action, key = %arn, "access denied");
                return Err(KmsError::access_denied(q.denied_message(&decision)));
            }
        }
        Ok(())
    }

    /// The key an operation acts on (see `kmsd_policy::Target::Key`).
    pub(crate) fn primary_key(&self, st: &State, request: &Request) -> Result<Uuid> {
        use Request as Q;
        let key_ref: &str = match request {
            Q::Decrypt(r) => return blob_key(st, &r.ciphertext_blob.0),
            Q::ReEncrypt(r) => return blob_key(st, &r.ciphertext_blob.0),
            Q::UpdateAlias(r) => return self.alias_target_now(st, &r.alias_name),
            Q::DeleteAlias(r) => return self.alias_target_now(st, &r.alias_name),
            Q::RetireGrant(r) => return self.grant_for_retire(st, r).map(|(k, _)| k),
            Q::CreateAlias(r) => &r.target_key_id,
            Q::DescribeKey(r) => &r.key_id,
            Q::EnableKey(r) => &r.key_id,
            Q::DisableKey(r) => &r.key_id,
            Q::ScheduleKeyDeletion(r) => &r.key_id,
            Q::CancelKeyDeletion(r) => &r.key_id,
            Q::EnableKeyRotation(r) => &r.key_id,
            Q::DisableKeyRotation(r) => &r.key_id,
            Q::GetKeyRotationStatus(r) => &r.key_id,
            Q::RotateKeyOnDemand(r) => &r.key_id,
            Q::ListKeyRotations(r) => &r.key_id,
            Q::TagResource(r) => &r.key_id,
            Q::UntagResource(r) => &r.key_id,
            Q::ListResourceTags(r) => &r.key_id,
            Q::Encrypt(r) => &r.key_id,
            Q::GenerateDataKey(r) => &r.key_id,
            Q::GenerateDataKeyWithoutPlaintext(r) => &r.key_id,
            Q::PutKeyPolicy(r) => &r.key_id,
            Q::GetKeyPolicy(r) => &r.key_id,
            Q::ListKeyPolicies(r) => &r.key_id,
            Q::CreateGrant(r) => &r.key_id,
            Q::ListGrants(r) => &r.key_id,
            Q::RevokeGrant(r) => &r.key_id,
            Q::CreateKey(_)
            | Q::ListKeys(_)
            | Q::ListAliases(_)
            | Q::GenerateRandom(_)
            | Q::ListRetirableGrants(_)
            | Q::GetServicePolicy(_)
            | Q::PutServicePolicy(_) => {
                return Err(KmsError::internal(format!(
                    "{} names no key",
                    request.name()
                )));
            }
        };
        self.resolve(st, key_ref)
    }

    fn destination_key(&self, st: &State, request: &Request) -> Result<Uuid> {
        match request {
            Request::ReEncrypt(r) => self.resolve(st, &r.destination_key_id),
            Request::UpdateAlias(r) => self.resolve(st, &r.target_key_id),
            other => Err(KmsError::internal(format!(
                "{} has no destination key",
                other.name()
            ))),
        }
    }

    fn alias_target_now(&self, st: &State, alias: &str) -> Result<Uuid> {
        st.aliases.get(alias).map(|a| a.target).ok_or_else(|| {
            KmsError::not_found(format!("Alias {} is not found.", self.alias_arn(alias)))
        })
    }

    /// The grant a RetireGrant names: by token, or by key id and grant id.
    pub(crate) fn grant_for_retire(
        &self,
        st: &State,
        r: &kmsd_client::RetireGrantRequest,
    ) -> Result<(Uuid, Grant)> {
        let grant_id = match (&r.grant_token, &r.grant_id) {
            (Some(t), _) => parse_grant_token(t)?,
            (None, Some(g)) => g.clone(),
            (None, None) => {
                return Err(KmsError::validation(
                    "RetireGrant needs GrantToken, or KeyId and GrantId",
                ));
            }
        };
        let key = match &r.key_id {
            Some(k) => Some(self.resolve(st, k)?),
            None if r.grant_token.is_none() => {
                return Err(KmsError::validation(
                    "RetireGrant by GrantId needs the KeyId too",
                ));
            }
            None => None,
        };
        st.keys
            .iter()
            .filter(|(id, _)| key.is_none_or(|k| k == **id))
            .find_map(|(id, e)| {
                e.grants
                    .iter()
                    .find(|g| g.grant_id == grant_id)
                    .map(|g| (*id, g.clone()))
            })
            .ok_or_else(|| KmsError::not_found(format!("Grant {grant_id} does not exist")))
    }

    fn condition_context(
        &self,
        st: &State,
        caller: &Caller,
        request: &Request,
        target: Target,
        key: Option<Uuid>,
    ) -> Result<RequestContext> {
        use Request as Q;
        Ok(match request {
            Q::Encrypt(r) => RequestContext::with_encryption_context(&r.encryption_context),
            Q::Decrypt(r) => RequestContext::with_encryption_context(&r.encryption_context),
            Q::GenerateDataKey(r) => RequestContext::with_encryption_context(&r.encryption_context),
            Q::GenerateDataKeyWithoutPlaintext(r) => {
                RequestContext::with_encryption_context(&r.encryption_context)
            }
            Q::ReEncrypt(r) if target == Target::DestinationKey => {
                RequestContext::with_encryption_context(&r.destination_encryption_context)
            }
            Q::ReEncrypt(r) => {
                RequestContext::with_encryption_context(&r.source_encryption_context)
            }
            Q::CreateGrant(r) => {
                let key_id = key.map(|k| k.to_string()).unwrap_or_default();
                let g = Grant::from_request(r, &key_id, "pending".into(), caller, self.now())?;
                RequestContext::for_create_grant(&g)
            }
            Q::RetireGrant(r) => {
                let (_, g) = self.grant_for_retire(st, r)?;
                RequestContext::for_retire_grant(&g.grant_id)
            }
            Q::CreateKey(r) => RequestContext {
                bypass_policy_lockout_safety_check: Some(r.bypass_policy_lockout_safety_check),
                ..RequestContext::default()
            },
            Q::PutKeyPolicy(r) => RequestContext {
                bypass_policy_lockout_safety_check: Some(r.bypass_policy_lockout_safety_check),
                ..RequestContext::default()
            },
            _ => RequestContext::default(),
        })
    }

    /// ARNs of the keys a request touches, for the audit trail (best
    /// effort: unresolvable references give none).
    pub fn request_resources(&self, request: &Request) -> Vec<String> {
        let st = self.read();
        let mut out = Vec::new();
        if let Ok(k) = self.primary_key(&st, request) {
            out.push(self.key_arn(k));
        }
        if let Ok(k) = self.destination_key(&st, request) {
            out.push(self.key_arn(k));
        }
        out
    }
}

/// The key a ciphertext blob names, if this kmsd has it.
fn blob_key(st: &State, ct: &[u8]) -> Result<Uuid> {
    let h = blob::parse_header(ct).map_err(|_| invalid_ciphertext())?;
    if st.keys.contains_key(&h.key_id) {
        Ok(h.key_id)
    } else {
        Err(invalid_ciphertext())
    }
}
