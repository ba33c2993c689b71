//! One module per family of operations. Each command first builds its
//! request from the flags (parsing and reading files: usage errors come
//! before any connection, as in the AWS CLI), then calls kmsd once (or once
//! per page) and returns what to print.

mod access_keys;
mod aliases;
mod crypto;
mod grants;
mod keys;
mod paging;
mod policy;
mod rotation;
mod tags;

use crate::args::Command;
use crate::failure::Failure;
use crate::output::Reply;
use crate::shorthand::BinaryFormat;
use kmsd_client::{Client, ClientConfig, Operation, Request, Response};
use serde::Serialize;
use std::marker::PhantomData;
use std::path::PathBuf;

/// The connection to kmsd, opened on the first call.
pub struct Ctx {
    client: Client,
    /// `--cli-binary-format`.
    pub binary_format: BinaryFormat,
}

impl Ctx {
    pub fn new(sockets: Vec<PathBuf>, binary_format: BinaryFormat) -> Ctx {
        let mut config = ClientConfig::with_sockets(sockets);
        config.client_name = format!("kmsctl {}", env!("CARGO_PKG_VERSION"));
        Ctx {
            client: Client::new(config),
            binary_format,
        }
    }

    /// One request; a failure carries the AWS operation name for the
    /// `when calling the X operation` message.
    pub fn call<O: Operation>(&self, op: O) -> Result<O::Output, Failure> {
        let request = op.into_request();
        let operation = request.name();
        self.client
            .call(Prepared::<O> {
                request,
                op: PhantomData,
            })
            .map_err(|e| Failure::client(operation, &self.client.endpoint(), e))
    }
}

/// A request already turned into the wire enum (to learn its name), still
/// typed by the operation it came from.
struct Prepared<O> {
    request: Request,
    op: PhantomData<O>,
}

impl<O: Operation> Operation for Prepared<O> {
    type Output = O::Output;
    const NAME: &'static str = O::NAME;
    fn into_request(self) -> Request {
        self.request
    }
    fn from_response(r: Response) -> Option<O::Output> {
        O::from_response(r)
    }
}

/// The document printed for a response.
fn reply<T: Serialize>(response: &T) -> Result<Reply, Failure> {
    Reply::of(response).map_err(|e| Failure::Other(format!("Cannot render the response: {e}")))
}

pub fn run(command: Command, ctx: &Ctx) -> Result<Reply, Failure> {
    use Command as C;
    match command {
        C::CreateKey(a) => keys::create_key(ctx, a),
        C::DescribeKey(a) => keys::describe_key(ctx, a),
        C::ListKeys(a) => keys::list_keys(ctx, a),
        C::EnableKey(a) => keys::enable_key(ctx, a),
        C::DisableKey(a) => keys::disable_key(ctx, a),
        C::ScheduleKeyDeletion(a) => keys::schedule_key_deletion(ctx, a),
        C::CancelKeyDeletion(a) => keys::cancel_key_deletion(ctx, a),

        C::EnableKeyRotation(a) => rotation::enable(ctx, a),
        C::DisableKeyRotation(a) => rotation::disable(ctx, a),
        C::GetKeyRotationStatus(a) => rotation::status(ctx, a),
        C::RotateKeyOnDemand(a) => rotation::rotate_now(ctx, a),
        C::ListKeyRotations(a) => rotation::list(ctx, a),

        C::CreateAlias(a) => aliases::create(ctx, a),
        C::UpdateAlias(a) => aliases::update(ctx, a),
        C::DeleteAlias(a) => aliases::delete(ctx, a),
        C::ListAliases(a) => aliases::list(ctx, a),

        C::TagResource(a) => tags::tag(ctx, a),
        C::UntagResource(a) => tags::untag(ctx, a),
        C::ListResourceTags(a) => tags::list(ctx, a),

        C::Encrypt(a) => crypto::encrypt(ctx, a),
        C::Decrypt(a) => crypto::decrypt(ctx, a),
        C::ReEncrypt(a) => crypto::re_encrypt(ctx, a),
        C::GenerateDataKey(a) => crypto::generate_data_key(ctx, a),
        C::GenerateDataKeyWithoutPlaintext(a) => {
            crypto::generate_data_key_without_plaintext(ctx, a)
        }
        C::GenerateRandom(a) => crypto::generate_random(ctx, a),

        C::PutKeyPolicy(a) => policy::put_key_policy(ctx, a),
        C::GetKeyPolicy(a) => policy::get_key_policy(ctx, a),
        C::ListKeyPolicies(a) => policy::list_key_policies(ctx, a),
        C::GetServicePolicy => policy::get_service_policy(ctx),
        C::PutServicePolicy(a) => policy::put_service_policy(ctx, a),

        C::CreateAccessKey(a) => access_keys::create(ctx, a),
        C::ListAccessKeys(a) => access_keys::list(ctx, a),
        C::UpdateAccessKey(a) => access_keys::update(ctx, a),
        C::DeleteAccessKey(a) => access_keys::delete(ctx, a),

        C::CreateGrant(a) => grants::create(ctx, a),
        C::ListGrants(a) => grants::list(ctx, a),
        C::ListRetirableGrants(a) => grants::list_retirable(ctx, a),
        C::RetireGrant(a) => grants::retire(ctx, a),
        C::RevokeGrant(a) => grants::revoke(ctx, a),
    }
}
