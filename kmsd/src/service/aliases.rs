//! CreateAlias, UpdateAlias, DeleteAlias, ListAliases.
//!
//! An alias operation is authorized on the key the alias points at when
//! the request runs (UpdateAlias also on its new target), resolved under
//! the writer lock the change commits under: a pipelined UpdateAlias can
//! never slip between the check and the change.

use super::operation::{Exec, KeyRef, Operation, Planned, Refs, read};
use super::paginate::paginate;
use super::{Result, validate};
use crate::store::{AliasRecord, Mutation};
use kmsd_client::*;
use kmsd_policy::{Requirement, Target, on_key, on_service};

fn not_found(cx: &Exec<'_>, alias: &str) -> KmsError {
    KmsError::not_found(format!("Alias {} is not found.", cx.svc.alias_arn(alias)))
}

impl Operation for CreateAliasRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:CreateAlias")];

    fn validate(&self) -> Result<()> {
        validate::alias_name(&self.alias_name)
    }

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Direct(&self.target_key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        if cx.st.aliases.contains_key(&self.alias_name) {
            return Err(KmsError::already_exists(format!(
                "An alias with the name {} already exists",
                cx.svc.alias_arn(&self.alias_name)
            )));
        }
        cx.svc.require_not_pending_deletion(cx.entry()?)?;
        let rec = AliasRecord {
            name: self.alias_name,
            target: cx.key_id()?,
            created: cx.now,
            updated: cx.now,
        };
        Ok((Empty {}, vec![Mutation::PutAlias(rec)]))
    }
}

impl Operation for UpdateAliasRequest {
    const MUTATES: bool = true;
    /// On the key the alias points at now and on its new target.
    const CHECKS: &'static [Requirement] = &[
        on_key("kms:UpdateAlias"),
        Requirement {
            action: "kms:UpdateAlias",
            target: Target::DestinationKey,
            grant_operation: None,
        },
    ];

    fn validate(&self) -> Result<()> {
        validate::alias_name(&self.alias_name)
    }

    fn refs(&self) -> Refs<'_> {
        Refs {
            key: Some(KeyRef::AliasTarget(&self.alias_name)),
            destination: Some(KeyRef::Direct(&self.target_key_id)),
            other: None,
        }
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        let old = cx
            .st
            .aliases
            .get(&self.alias_name)
            .ok_or_else(|| not_found(cx, &self.alias_name))?;
        let target = cx
            .ids
            .destination
            .ok_or_else(|| KmsError::internal("UpdateAlias has no resolved target"))?;
        cx.svc
            .require_not_pending_deletion(cx.svc.entry(cx.st, target)?)?;
        let rec = AliasRecord {
            target,
            updated: cx.now,
            ..old.clone()
        };
        Ok((Empty {}, vec![Mutation::PutAlias(rec)]))
    }
}

impl Operation for DeleteAliasRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:DeleteAlias")];

    fn validate(&self) -> Result<()> {
        validate::alias_name(&self.alias_name)
    }

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::AliasTarget(&self.alias_name))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        if !cx.st.aliases.contains_key(&self.alias_name) {
            return Err(not_found(cx, &self.alias_name));
        }
        Ok((Empty {}, vec![Mutation::DeleteAlias(self.alias_name)]))
    }
}

impl Operation for ListAliasesRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_service("kms:ListAliases")];

    fn validate(&self) -> Result<()> {
        validate::list_limit(self.limit).map(drop)
    }

    /// The `KeyId` filter is resolved, not authorized against (as in AWS,
    /// ListAliases is allowed by the service policy alone).
    fn refs(&self) -> Refs<'_> {
        Refs {
            other: self.key_id.as_deref().map(KeyRef::Named),
            ..Refs::default()
        }
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<ListAliasesResponse> {
        let limit = validate::list_limit(self.limit)?;
        let filter = cx.ids.other;
        let entries = cx
            .st
            .aliases
            .values()
            .filter(|a| filter.is_none_or(|f| a.target == f))
            .map(|a| AliasListEntry {
                alias_name: a.name.clone(),
                alias_arn: cx.svc.alias_arn(&a.name),
                target_key_id: Some(a.target.to_string()),
                creation_date: a.created,
                last_updated_date: a.updated,
            });
        let page = paginate(
            entries,
            |a| a.alias_name.clone(),
            limit,
            self.marker.as_deref(),
        )?;
        read(ListAliasesResponse {
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
            t.svc.run(CreateAliasRequest {
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
            .run(UpdateAliasRequest {
                alias_name: "alias/app".into(),
                target_key_id: b.clone(),
            })
            .unwrap();
        let d = t
            .svc
            .run(DescribeKeyRequest {
                key_id: "alias/app".into(),
            })
            .unwrap();
        assert_eq!(d.key_metadata.key_id, b);
        let missing = t.svc.run(UpdateAliasRequest {
            alias_name: "alias/none".into(),
            target_key_id: b.clone(),
        });
        assert_eq!(missing.err().unwrap().kind, ErrorKind::NotFoundException);

        create("alias/second", &a).unwrap();
        let all = t.svc.run(ListAliasesRequest::default()).unwrap();
        assert_eq!(
            all.aliases
                .iter()
                .map(|x| x.alias_name.as_str())
                .collect::<Vec<_>>(),
            ["alias/app", "alias/second"]
        );
        let for_a = t
            .svc
            .run(ListAliasesRequest {
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
            .run(DeleteAliasRequest {
                alias_name: "alias/app".into(),
            })
            .unwrap();
        let e = t
            .svc
            .run(DeleteAliasRequest {
                alias_name: "alias/app".into(),
            })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::NotFoundException);
        assert_eq!(
            t.svc
                .run(DescribeKeyRequest {
                    key_id: "alias/app".into()
                })
                .err()
                .unwrap()
                .kind,
            ErrorKind::NotFoundException
        );
    }
}
