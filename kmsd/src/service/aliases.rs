//! CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

use super::paginate::paginate;
use super::{KeyService, Result, State, validate};
use crate::store::{AliasRecord, Mutation};
use kmsd_client::*;
use uuid::Uuid;

impl KeyService {
    /// An alias target must name a key directly (id or key ARN), not
    /// another alias, and not a key pending deletion.
    fn alias_target(&self, st: &State, target: &str) -> Result<Uuid> {
        if target.starts_with("alias/") || target.contains(":alias/") {
            return Err(KmsError::validation(
                "TargetKeyId must be a key id or key ARN, not an alias",
            ));
        }
        let id = self.resolve(st, target)?;
        self.require_not_pending_deletion(self.entry(st, id)?)?;
        Ok(id)
    }

    pub fn create_alias(&self, req: CreateAliasRequest) -> Result<Empty> {
        validate::alias_name(&req.alias_name)?;
        self.mutate(|st, now| {
            if st.aliases.contains_key(&req.alias_name) {
                return Err(KmsError::already_exists(format!(
                    "An alias with the name {} already exists",
                    self.alias_arn(&req.alias_name)
                )));
            }
            let target = self.alias_target(st, &req.target_key_id)?;
            let rec = AliasRecord {
                name: req.alias_name,
                target,
                created: now,
                updated: now,
            };
            Ok((Empty {}, vec![Mutation::PutAlias(rec)]))
        })
    }

    pub fn update_alias(&self, req: UpdateAliasRequest) -> Result<Empty> {
        validate::alias_name(&req.alias_name)?;
        self.mutate(|st, now| {
            let Some(old) = st.aliases.get(&req.alias_name) else {
                return Err(KmsError::not_found(format!(
                    "Alias {} is not found.",
                    self.alias_arn(&req.alias_name)
                )));
            };
            let target = self.alias_target(st, &req.target_key_id)?;
            let rec = AliasRecord {
                target,
                updated: now,
                ..old.clone()
            };
            Ok((Empty {}, vec![Mutation::PutAlias(rec)]))
        })
    }

    pub fn delete_alias(&self, req: DeleteAliasRequest) -> Result<Empty> {
        validate::alias_name(&req.alias_name)?;
        self.mutate(|st, _| {
            if !st.aliases.contains_key(&req.alias_name) {
                return Err(KmsError::not_found(format!(
                    "Alias {} is not found.",
                    self.alias_arn(&req.alias_name)
                )));
            }
            Ok((Empty {}, vec![Mutation::DeleteAlias(req.alias_name)]))
        })
    }

    pub fn list_aliases(&self, req: ListAliasesRequest) -> Result<ListAliasesResponse> {
        let limit = validate::list_limit(req.limit)?;
        let st = self.read();
        let filter = match &req.key_id {
            Some(k) => Some(self.resolve(&st, k)?),
            None => None,
        };
        let entries = st
            .aliases
            .values()
            .filter(|a| filter.is_none_or(|f| a.target == f))
            .map(|a| AliasListEntry {
                alias_name: a.name.clone(),
                alias_arn: self.alias_arn(&a.name),
                target_key_id: Some(a.target.to_string()),
                creation_date: a.created,
                last_updated_date: a.updated,
            });
        let page = paginate(
            entries,
            |a| a.alias_name.clone(),
            limit,
            req.marker.as_deref(),
        )?;
        Ok(ListAliasesResponse {
            aliases: page.items,
            truncated: page.next_marker.is_some(),
            next_marker: page.next_marker,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::service::testkit::*;
    use kmsd_client::*;

    #[test]
    fn alias_lifecycle() {
        let t = TestService::new();
        let a = t.create("a").key_id;
        let b = t.create("b").key_id;
        let create = |name: &str, target: &str| {
            t.svc.create_alias(CreateAliasRequest {
                alias_name: name.into(),
                target_key_id: target.into(),
            })
        };
        create("alias/app", &a).unwrap();
        assert_eq!(
            create("alias/app", &b).err().unwrap().kind,
            ErrorKind::AlreadyExistsException
        );
        assert_eq!(
            create("alias/aws/x", &b).err().unwrap().kind,
            ErrorKind::ValidationException
        );
        assert_eq!(
            create("alias/other", "alias/app").err().unwrap().kind,
            ErrorKind::ValidationException
        );
        assert_eq!(
            create("alias/other", "no-such-key").err().unwrap().kind,
            ErrorKind::NotFoundException
        );
        t.svc
            .update_alias(UpdateAliasRequest {
                alias_name: "alias/app".into(),
                target_key_id: b.clone(),
            })
            .unwrap();
        let d = t
            .svc
            .describe_key(DescribeKeyRequest {
                key_id: "alias/app".into(),
            })
            .unwrap();
        assert_eq!(d.key_metadata.key_id, b);
        let missing = t.svc.update_alias(UpdateAliasRequest {
            alias_name: "alias/none".into(),
            target_key_id: b.clone(),
        });
        assert_eq!(missing.err().unwrap().kind, ErrorKind::NotFoundException);

        create("alias/second", &a).unwrap();
        let all = t.svc.list_aliases(ListAliasesRequest::default()).unwrap();
        assert_eq!(
            all.aliases
                .iter()
                .map(|x| x.alias_name.as_str())
                .collect::<Vec<_>>(),
            ["alias/app", "alias/second"]
        );
        let for_a = t
            .svc
            .list_aliases(ListAliasesRequest {
                key_id: Some(a.clone()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(for_a.aliases.len(), 1);
        assert_eq!(
            for_a.aliases[0].alias_arn,
            "arn:aws:kms:local:000000000000:alias/second"
        );

        t.svc
            .delete_alias(DeleteAliasRequest {
                alias_name: "alias/app".into(),
            })
            .unwrap();
        let e = t
            .svc
            .delete_alias(DeleteAliasRequest {
                alias_name: "alias/app".into(),
            })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::NotFoundException);
        assert_eq!(
            t.svc
                .describe_key(DescribeKeyRequest {
                    key_id: "alias/app".into()
                })
                .err()
                .unwrap()
                .kind,
            ErrorKind::NotFoundException
        );
    }
}
