//! CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.
//! Grants take effect at once: they are part of the state the next request
//! is authorized against.

use super::operation::{Exec, KeyRef, Operation, Planned, Refs, read};
use super::paginate::paginate;
use super::state::grant_store_key;
use super::{KeyService, Result, State, validate};
use crate::store::Mutation;
use kmsd_client::*;
use kmsd_policy::{
    Grant, GrantOperation as G, Principal, RequestContext, Requirement, SystemDirectory, Target,
    granted, mint_grant_token, new_grant_id, on_key, on_service, parse_grant_token,
};
use uuid::Uuid;

/// AWS's limit of grants per key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

fn check_names(g: &Grant) -> Result<()> {
    for p in std::iter::once(&g.grantee_principal).chain(g.retiring_principal.as_ref()) {
        p.check_name(&SystemDirectory)
            .map_err(KmsError::validation)?;
    }
    Ok(())
}

/// A page of grants as AWS lists them (`KeyId` is the key's ARN).
fn list_response(
    svc: &KeyService,
    grants: Vec<&Grant>,
    limit: usize,
    marker: Option<&str>,
) -> Result<ListGrantsResponse> {
    let mut grants = grants;
    grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
    let page = paginate(grants, |g| g.grant_id.clone(), limit, marker)?;
    let arn = |e: GrantListEntry| GrantListEntry {
        key_id: Uuid::parse_str(&e.key_id)
            .map(|id| svc.key_arn(id))
            .unwrap_or(e.key_id.clone()),
        ..e
    };
    Ok(ListGrantsResponse {
        grants: page
            .items
            .into_iter()
            .map(|g| arn(g.to_list_entry()))
            .collect(),
        truncated: page.next_marker.is_some(),
        next_marker: page.next_marker,
    })
}

impl KeyService {
    /// The grant a RetireGrant names: by token, or by key id and grant id.
    pub(crate) fn grant_for_retire(
        &self,
        st: &State,
        r: &RetireGrantRequest,
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
}

impl Operation for CreateGrantRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] =
        &[granted("kms:CreateGrant", Target::Key, G::CreateGrant)];

    fn validate(&self) -> Result<()> {
        validate::grant_constraints(self.constraints.as_ref())?;
        validate::grant_tokens(&self.grant_tokens)
    }

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn grant_tokens(&self) -> &[String] {
        &self.grant_tokens
    }

    /// The grant it would create (`kms:GrantOperations`, ...).
    fn conditions(&self, cx: &Exec<'_>, _target: Target) -> Result<RequestContext> {
        let key_id = cx.key_id()?.to_string();
        let g = Grant::from_request(self, &key_id, "pending".into(), cx.caller, cx.now)?;
        Ok(RequestContext::for_create_grant(&g))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<CreateGrantResponse> {
        let id = cx.key_id()?;
        let e = cx.entry()?;
        cx.svc.require_not_pending_deletion(e)?;
        let g = Grant::from_request(&self, &id.to_string(), new_grant_id()?, cx.caller, cx.now)?;
        check_names(&g)?;
        // A retry with the same name and the same grant returns the
        // existing grant (CreateGrant's Name is for idempotent retries).
        if let Some(name) = &g.name
            && let Some(old) = e.grants.iter().find(|o| o.name.as_ref() == Some(name))
        {
            let same = old.grantee_principal == g.grantee_principal
                && old.retiring_principal == g.retiring_principal
                && old.operations == g.operations
                && old.constraints == g.constraints;
            if same {
                let token = mint_grant_token(&old.grant_id)?;
                return read(CreateGrantResponse {
                    grant_id: old.grant_id.clone(),
                    grant_token: token,
                });
            }
        }
        if e.grants.len() >= MAX_GRANTS_PER_KEY {
            return Err(KmsError::limit_exceeded(format!(
                "{} has {MAX_GRANTS_PER_KEY} grants",
                cx.svc.key_arn(id)
            )));
        }
        let token = mint_grant_token(&g.grant_id)?;
        let json = serde_json::to_string(&g).map_err(|e| KmsError::internal(e.to_string()))?;
        let resp = CreateGrantResponse {
            grant_id: g.grant_id.clone(),
            grant_token: token,
        };
        let m = Mutation::PutGrant {
            grant_id: grant_store_key(id, &g.grant_id),
            json,
        };
        Ok((resp, vec![m]))
    }
}

impl Operation for ListGrantsRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_key("kms:ListGrants")];

    fn validate(&self) -> Result<()> {
        validate::list_limit(self.limit)?;
        if let Some(p) = &self.grantee_principal {
            p.parse::<Principal>().map_err(KmsError::validation)?;
        }
        Ok(())
    }

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<ListGrantsResponse> {
        let limit = validate::list_limit(self.limit)?;
        let grantee: Option<Principal> = match &self.grantee_principal {
            Some(p) => Some(p.parse().map_err(KmsError::validation)?),
            None => None,
        };
        let grants = cx
            .entry()?
            .grants
            .iter()
            .filter(|g| self.grant_id.as_ref().is_none_or(|x| *x == g.grant_id))
            .filter(|g| grantee.as_ref().is_none_or(|p| *p == g.grantee_principal))
            .collect();
        list_response(cx.svc, grants, limit, self.marker.as_deref()).map(|r| (r, vec![]))
    }
}

impl Operation for ListRetirableGrantsRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_service("kms:ListRetirableGrants")];

    fn validate(&self) -> Result<()> {
        validate::list_limit(self.limit)?;
        self.retiring_principal
            .parse::<Principal>()
            .map(drop)
            .map_err(KmsError::validation)
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<ListGrantsResponse> {
        let limit = validate::list_limit(self.limit)?;
        let who: Principal = self
            .retiring_principal
            .parse()
            .map_err(KmsError::validation)?;
        let grants = cx
            .st
            .keys
            .values()
            .flat_map(|e| e.grants.iter())
            .filter(|g| g.retiring_principal.as_ref() == Some(&who))
            .collect();
        list_response(cx.svc, grants, limit, self.marker.as_deref()).map(|r| (r, vec![]))
    }
}

/// Allowed for the grant's retiring principal, its grantee when the grant
/// allows RetireGrant, or by the key policy (kmsd-policy's evaluation).
impl Operation for RetireGrantRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] =
        &[granted("kms:RetireGrant", Target::Key, G::RetireGrant)];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::GrantOf(self))
    }

    fn conditions(&self, cx: &Exec<'_>, _target: Target) -> Result<RequestContext> {
        let (_, g) = cx.svc.grant_for_retire(cx.st, self)?;
        Ok(RequestContext::for_retire_grant(&g.grant_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        let (key, g) = cx.svc.grant_for_retire(cx.st, &self)?;
        if Some(key) != cx.ids.key {
            return Err(KmsError::internal(
                "RetireGrant's grant moved under the lock",
            ));
        }
        Ok((
            Empty {},
            vec![Mutation::DeleteGrant(grant_store_key(key, &g.grant_id))],
        ))
    }
}

impl Operation for RevokeGrantRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:RevokeGrant")];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        let id = cx.key_id()?;
        if !cx
            .entry()?
            .grants
            .iter()
            .any(|g| g.grant_id == self.grant_id)
        {
            return Err(KmsError::not_found(format!(
                "Grant {} does not exist on {}",
                self.grant_id,
                cx.svc.key_arn(id)
            )));
        }
        Ok((
            Empty {},
            vec![Mutation::DeleteGrant(grant_store_key(id, &self.grant_id))],
        ))
    }
}
