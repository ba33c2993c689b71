//! The AWS JSON 1.1 protocol of AWS KMS (`X-Amz-Target: TrentService.<Op>`,
//! `Content-Type: application/x-amz-json-1.1`) to and from kmsd's request
//! and response types. Pure functions over bytes: no sockets, no HTTP, no
//! signatures. The HTTP front end calls [`decode_request`] on a body,
//! runs the [`Request`] as it runs one from the native socket, and sends
//! back [`encode_response`] or [`encode_error`] / [`AwsError::encode`].
//!
//! The shapes are those of botocore's KMS service model (`2014-11-01`);
//! the tests in `src/conformance/` check every operation kmsd serves
//! against that model. `docs/HTTP.md` ("AWS JSON 1.1 mapping") says what
//! is served and how kmsd differs from AWS.
//!
//! Choices, in short:
//! * Members the model does not know are ignored (AWS does so, for
//!   forward compatibility); a JSON `null` reads as an absent member.
//! * A member of the wrong JSON type is a `SerializationException`; a
//!   missing required member or a value outside the model's enum is a
//!   `ValidationException` worded as AWS words it.
//! * Model members for features kmsd lacks (`Origin`, `MultiRegion`,
//!   `Recipient`, a non-default `EncryptionAlgorithm`, ...) are accepted
//!   when absent or carrying the default, and otherwise answered
//!   `UnsupportedOperationException`: never silently dropped.
//! * AWS operations kmsd does not implement: `UnsupportedOperationException`.
//!   kmsd's own operations (`GetServicePolicy`, ...) are not served on this
//!   wire: `UnknownOperationException`, as for any name AWS does not know.

mod decode;
mod encode;
mod error;
mod inputs;
mod json_out;
mod operations;

#[cfg(test)]
mod conformance;

pub use decode::decode_request;
pub use encode::encode_response;
pub use error::{AwsError, encode_error, status_for};
pub use operations::{AWS_OPERATIONS, is_served, served_operations};

use kmsd_client::Request;

/// The `X-Amz-Target` prefix of AWS KMS (the model's `targetPrefix`), with
/// the dot that separates it from the operation name.
pub const TARGET_PREFIX: &str = "TrentService.";

/// The `Content-Type` of requests and of every answer, errors included.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A request read off the AWS wire.
///
/// One variant today; an enum so that requests kmsd answers without the
/// service (none yet) can be added. With one variant the pattern is
/// irrefutable: `let Decoded::Kms { request, dry_run } = decode_request(..)?;`
pub enum Decoded {
    /// A kmsd request. `dry_run` is the request's `DryRun` member (for the
    /// operations whose model has one; `false` when absent): the caller
    /// then only checks the request (kmsd's `KeyService::handle_dry_run`),
    /// which answers `DryRunOperationException` when it would have
    /// succeeded. The member is not part of `request`.
    Kms { request: Request, dry_run: bool },
}
