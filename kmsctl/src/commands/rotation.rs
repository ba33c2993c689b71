//! enable-key-rotation, disable-key-rotation, get-key-rotation-status,
//! rotate-key-on-demand, list-key-rotations.

use super::paging;
use super::{Ctx, reply};
use crate::args::{EnableKeyRotationArgs, KeyIdArgs, KeyPagingArgs};
use crate::failure::Failure;
use crate::output::Reply;
use kmsd_client::*;

pub fn enable(ctx: &Ctx, a: EnableKeyRotationArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(EnableKeyRotationRequest {
        key_id: a.key_id,
        rotation_period_in_days: a.rotation_period_in_days,
    })?)
}

pub fn disable(ctx: &Ctx, a: KeyIdArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(DisableKeyRotationRequest { key_id: a.key_id })?)
}

pub fn status(ctx: &Ctx, a: KeyIdArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(GetKeyRotationStatusRequest { key_id: a.key_id })?)
}

pub fn rotate_now(ctx: &Ctx, a: KeyIdArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(RotateKeyOnDemandRequest { key_id: a.key_id })?)
}

pub fn list(ctx: &Ctx, a: KeyPagingArgs) -> Result<Reply, Failure> {
    let request = ListKeyRotationsRequest {
        key_id: a.key_id,
        limit: a.paging.limit,
        marker: a.paging.marker.clone(),
    };
    paging::list(ctx, request, &a.paging)
}
