//! [`Kms`] through the AWS KMS API with the official AWS SDK for Rust:
//! kmsd's HTTP endpoint (an access key from `kmsctl create-access-key`),
//! or AWS KMS itself.
//!
//! Credentials, region and endpoint come from the SDK's standard chain
//! (environment, `~/.aws/config` and `credentials` with profiles, the
//! container and instance providers, `AWS_ENDPOINT_URL_KMS`), overridden
//! by `--profile`, `--region` and `--endpoint-url`. kmsfs calls from
//! plain threads, so the SDK runs on a small runtime of its own and each
//! call blocks its caller. The SDK retries throttled and failed calls
//! itself (standard mode, 3 attempts).
//!
//! The SDK's plaintext buffers are its own: each is moved into a
//! [`SecretBytes`] without a copy, but an HTTP body buffer it read from is
//! not wiped (the native socket has no such copy).

use super::aws_error::{service_error, transport_error};
use super::{GeneratedKey, Kms};
use aws_config::{BehaviorVersion, Region, timeout::TimeoutConfig};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_smithy_http_client::tls;
use kmsd_client::{ClientError, EncryptionContext, SecretBytes};
use std::collections::HashMap;
use std::time::Duration;

/// Where the AWS API is and who signs for it; `None`s come from the
/// SDK's standard chain.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
    /// Upper bound of one call, retries included.
    pub call_timeout: Option<Duration>,
}

pub struct AwsKms {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_kms::Client,
    description: String,
}

impl AwsKms {
    /// Resolves the configuration (no request is sent yet).
    pub fn new(opts: &AwsOptions) -> Result<AwsKms, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kmsfs-aws")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the AWS SDK's runtime: {e}"))?;
        // The SDK's default HTTPS client is rustls on aws-lc-rs (cmake and
        // a C toolchain); this one is rustls on ring, as kmsd's TLS is.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_timeout(opts.call_timeout.unwrap_or(Duration::from_secs(30)))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(timeouts);
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &opts.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(u) = &opts.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let conf = runtime.block_on(loader.load());
        let Some(region) = conf.region().map(|r| r.to_string()) else {
            return Err(
                "--kms aws: no AWS region: give --region, or set AWS_REGION or a profile's region"
                    .into(),
            );
        };
        let where_ = conf
            .endpoint_url()
            .map(str::to_string)
            .unwrap_or_else(|| format!("https://kms.{region}.amazonaws.com"));
        Ok(AwsKms {
            runtime,
            client: aws_sdk_kms::Client::new(&conf),
            description: format!(
                "AWS KMS at {} (region {region})",
                kmsd_client::logsafe::escape(&where_)
            ),
        })
    }

    fn block<T>(&self, fut: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(fut)
    }
}

fn context(c: &EncryptionContext) -> Option<HashMap<String, String>> {
    (!c.is_empty()).then(|| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// An SDK failure as the [`ClientError`] the native client would give.
fn sdk_error<E, R>(e: SdkError<E, R>) -> ClientError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use std::io::ErrorKind::{ConnectionRefused, InvalidData, TimedOut};
    let what = aws_sdk_kms::error::DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::ServiceError(s) => service_error(s.err().code(), s.err().message()),
        SdkError::TimeoutError(_) => transport_error(TimedOut, &what),
        SdkError::DispatchFailure(_) => transport_error(ConnectionRefused, &what),
        SdkError::ResponseError(_) => transport_error(InvalidData, &what),
        // No credentials, a bad endpoint URL: the request was never made.
        _ => ClientError::Protocol(what),
    }
}

fn missing(field: &str, op: &str) -> ClientError {
    ClientError::Protocol(format!("the {op} answer has no {field}"))
}

impl Kms for AwsKms {
    fn generate_data_key(
        &self,
        key_id: &str,
        ctx: &EncryptionContext,
    ) -> Result<GeneratedKey, ClientError> {
        let r = self
            .block(
                self.client
                    .generate_data_key()
                    .key_id(key_id)
                    .key_spec(DataKeySpec::Aes256)
                    .set_encryption_context(context(ctx))
                    .send(),
            )
            .map_err(sdk_error)?;
        let op = "GenerateDataKey";
        Ok(GeneratedKey {
            plaintext: SecretBytes::new(
                r.plaintext
                    .ok_or_else(|| missing("Plaintext", op))?
                    .into_inner(),
            ),
            blob: r
                .ciphertext_blob
                .ok_or_else(|| missing("CiphertextBlob", op))?
                .into_inner(),
            key_arn: r.key_id.ok_or_else(|| missing("KeyId", op))?,
        })
    }

    fn decrypt(
        &self,
        key_id: &str,
        blob: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<SecretBytes, ClientError> {
        let r = self
            .block(
                self.client
                    .decrypt()
                    .key_id(key_id)
                    .ciphertext_blob(Blob::new(blob))
                    .set_encryption_context(context(ctx))
                    .send(),
            )
            .map_err(sdk_error)?;
        r.plaintext
            .map(|p| SecretBytes::new(p.into_inner()))
            .ok_or_else(|| missing("Plaintext", "Decrypt"))
    }

    fn decrypt_any(
        &self,
        blob: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<(SecretBytes, String), ClientError> {
        let r = self
            .block(
                self.client
                    .decrypt()
                    .ciphertext_blob(Blob::new(blob))
                    .set_encryption_context(context(ctx))
                    .send(),
            )
            .map_err(sdk_error)?;
        let key = r.key_id.ok_or_else(|| missing("KeyId", "Decrypt"))?;
        r.plaintext
            .map(|p| (SecretBytes::new(p.into_inner()), key))
            .ok_or_else(|| missing("Plaintext", "Decrypt"))
    }

    fn re_encrypt(
        &self,
        blob: &[u8],
        ctx: &EncryptionContext,
        source_key_id: &str,
        destination_key_id: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let r = self
            .block(
                self.client
                    .re_encrypt()
                    .ciphertext_blob(Blob::new(blob))
                    .source_key_id(source_key_id)
                    .destination_key_id(destination_key_id)
                    .set_source_encryption_context(context(ctx))
                    .set_destination_encryption_context(context(ctx))
                    .send(),
            )
            .map_err(sdk_error)?;
        r.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| missing("CiphertextBlob", "ReEncrypt"))
    }

    fn key_arn(&self, key_id: &str) -> Result<String, ClientError> {
        let r = self
            .block(self.client.describe_key().key_id(key_id).send())
            .map_err(sdk_error)?;
        r.key_metadata
            .and_then(|m| m.arn)
            .ok_or_else(|| missing("KeyMetadata.Arn", "DescribeKey"))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
