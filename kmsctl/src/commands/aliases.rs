//! create-alias, update-alias, delete-alias, list-aliases.

use super::paging;
use super::{Ctx, reply};
use crate::args::{AliasNameArgs, AliasTargetArgs, ListAliasesArgs};
use crate::failure::Failure;
use crate::output::Reply;
use kmsd_client::*;

pub fn create(ctx: &Ctx, a: AliasTargetArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(CreateAliasRequest {
        alias_name: a.alias_name,
        target_key_id: a.target_key_id,
    })?)
}

pub fn update(ctx: &Ctx, a: AliasTargetArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(UpdateAliasRequest {
        alias_name: a.alias_name,
        target_key_id: a.target_key_id,
    })?)
}

pub fn delete(ctx: &Ctx, a: AliasNameArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(DeleteAliasRequest {
        alias_name: a.alias_name,
    })?)
}

pub fn list(ctx: &Ctx, a: ListAliasesArgs) -> Result<Reply, Failure> {
    let request = ListAliasesRequest {
        key_id: a.key_id,
        limit: a.paging.limit,
        marker: a.paging.marker.clone(),
    };
    paging::list(ctx, request, &a.paging)
}
