//! CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.
//! Grants take effect at once: they are part of the state the next request
//! is authorized against.

use super::paginate::paginate;
use super::state::grant_store_key;
use super::{Caller, KeyService, Result, validate};
use crate::store::Mutation;
use kmsd_client::*;
use kmsd_policy::{Grant, Principal, SystemDirectory, mint_grant_token, new_grant_id};

/// AWS's limit of grants per key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

fn check_names(g: &Grant) -> Result<()> {
    for p in std::iter::once(&g.grantee_principal).chain(g.retiring_principal.as_ref()) {
        p.check_name(&SystemDirectory)
            .map_err(KmsError::validation)?;
    }
    Ok(())
}

impl KeyService {
    pub fn create_grant(
        &self,
        caller: &Caller,
        req: CreateGrantRequest,
    ) -> Result<CreateGrantResponse> {
        validate::grant_constraints(req.constraints.as_ref())?;
        validate::grant_tokens(&req.grant_tokens)?;
        self.mutate(|st, now| {
            let id = self.resolve(st, &req.key_id)?;
            let e = self.entry(st, id)?;
            self.require_not_pending_deletion(e)?;
            let g = Grant::from_request(&req, &id.to_string(), new_grant_id()?, caller, now)?;
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
                    return Ok((
                        CreateGrantResponse {
                            grant_id: old.grant_id.clone(),
                            grant_token: token,
                        },
                        vec![],
                    ));
                }
            }
            if e.grants.len() >= MAX_GRANTS_PER_KEY {
                return Err(KmsError::limit_exceeded(format!(
                    "{} has {MAX_GRANTS_PER_KEY} grants",
                    self.key_arn(id)
                )));
            }
            let token = mint_grant_token(&g.grant_id)?;
            let json = serde_json::to_string(&g).map_err(|e| KmsError::internal(e.to_string()))?;
            let resp = CreateGrantResponse {
                grant_id: g.grant_id.clone(),
                grant_token: token,
            };
            Ok((
                resp,
                vec![Mutation::PutGrant {
                    grant_id: grant_store_key(id, &g.grant_id),
                    json,
                }],
            ))
        })
    }

    pub fn list_grants(&self, req: ListGrantsRequest) -> Result<ListGrantsResponse> {
        let limit = validate::list_limit(req.limit)?;
        let grantee: Option<Principal> = match &req.grantee_principal {
            Some(p) => Some(p.parse().map_err(KmsError::validation)?),
            None => None,
        };
        let st = self.read();
        let id = self.resolve(&st, &req.key_id)?;
        let mut grants: Vec<&Grant> = self
            .entry(&st, id)?
            .grants
            .iter()
            .filter(|g| req.grant_id.as_ref().is_none_or(|x| *x == g.grant_id))
            .filter(|g| grantee.as_ref().is_none_or(|p| *p == g.grantee_principal))
            .collect();
        grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        let page = paginate(grants, |g| g.grant_id.clone(), limit, req.marker.as_deref())?;
        Ok(ListGrantsResponse {
            grants: page.items.into_iter().map(Grant::to_list_entry).collect(),
            truncated: page.next_marker.is_some(),
            next_marker: page.next_marker,
        })
    }

    pub fn list_retirable_grants(
        &self,
        req: ListRetirableGrantsRequest,
    ) -> Result<ListGrantsResponse> {
        let limit = validate::list_limit(req.limit)?;
        let who: Principal = req
            .retiring_principal
            .parse()
            .map_err(KmsError::validation)?;
        let st = self.read();
        let mut grants: Vec<&Grant> = st
            .keys
            .values()
            .flat_map(|e| e.grants.iter())
            .filter(|g| g.retiring_principal.as_ref() == Some(&who))
            .collect();
        grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        let page = paginate(grants, |g| g.grant_id.clone(), limit, req.marker.as_deref())?;
        Ok(ListGrantsResponse {
            grants: page.items.into_iter().map(Grant::to_list_entry).collect(),
            truncated: page.next_marker.is_some(),
            next_marker: page.next_marker,
        })
    }

    /// Authorization (retiring principal, grantee with RetireGrant, or the
    /// key policy) happened before this runs.
    pub fn retire_grant(&self, req: RetireGrantRequest) -> Result<Empty> {
        self.mutate(|st, _| {
            let (key, g) = self.grant_for_retire(st, &req)?;
            Ok((
                Empty {},
                vec![Mutation::DeleteGrant(grant_store_key(key, &g.grant_id))],
            ))
        })
    }

    pub fn revoke_grant(&self, req: RevokeGrantRequest) -> Result<Empty> {
        self.mutate(|st, _| {
            let id = self.resolve(st, &req.key_id)?;
            if !self
                .entry(st, id)?
                .grants
                .iter()
                .any(|g| g.grant_id == req.grant_id)
            {
                return Err(KmsError::not_found(format!(
                    "Grant {} does not exist on {}",
                    req.grant_id,
                    self.key_arn(id)
                )));
            }
            Ok((
                Empty {},
                vec![Mutation::DeleteGrant(grant_store_key(id, &req.grant_id))],
            ))
        })
    }
}
