//! create-access-key, list-access-keys, update-access-key,
//! delete-access-key: the access keys that sign requests on kmsd's AWS
//! endpoint (kmsd's counterparts of `aws iam create-access-key` ...).

use super::{Ctx, paging, reply};
use crate::args::{AccessKeyIdArgs, CreateAccessKeyArgs, PagingArgs, UpdateAccessKeyArgs};
use crate::failure::Failure;
use crate::output::Reply;
use kmsd_client::*;

pub fn create(ctx: &Ctx, a: CreateAccessKeyArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(CreateAccessKeyRequest {
        principal: a.principal,
        description: a.description,
    })?)
}

pub fn list(ctx: &Ctx, a: PagingArgs) -> Result<Reply, Failure> {
    let request = ListAccessKeysRequest {
        limit: a.limit,
        marker: a.marker.clone(),
    };
    paging::list(ctx, request, &a)
}

pub fn update(ctx: &Ctx, a: UpdateAccessKeyArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(UpdateAccessKeyRequest {
        access_key_id: a.access_key_id,
        status: a.status,
    })?)
}

pub fn delete(ctx: &Ctx, a: AccessKeyIdArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(DeleteAccessKeyRequest {
        access_key_id: a.access_key_id,
    })?)
}
