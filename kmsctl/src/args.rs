//! The command line, as clap definitions: the verbs and flags of `aws kms`.
//! Values with a syntax of their own (shorthand, JSON, `fileb://`) arrive
//! as strings and are parsed by the commands, so errors name the flag the
//! way the AWS CLI does.

use crate::output::OutputFormat;
use crate::shorthand::BinaryFormat;
use clap::{Args, Parser, Subcommand};
use kmsd_client::{DataKeySpec, KeySpec, KeyUsage};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "kmsctl",
    version,
    about = "Control kmsd with the verbs and flags of `aws kms`",
    after_help = "Binary values: `fileb://PATH` reads raw bytes; an inline value is base64 (as in AWS CLI v2).\n\
                  Text values: `file://PATH` reads the file. Maps: `K=V,K2=V2` or JSON `{\"K\":\"V\"}`.\n\
                  Exit status: 0 ok, 252 usage error, 254 kmsd answered with an error, 255 other (kmsd unreachable)."
)]
pub struct Cli {
    /// kmsd's Unix socket; repeat it to name several kmsd instances of one
    /// deployment, tried in turn (failover) [default: $KMSD_ENDPOINTS (a
    /// comma-separated list), else $KMSD_SOCKET, else /run/kmsd/kmsd.sock
    /// for root, $XDG_RUNTIME_DIR/kmsd.sock for others]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Vec<PathBuf>,

    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Json)]
    pub output: OutputFormat,

    /// How inline binary values (--plaintext, --ciphertext-blob) are read:
    /// base64 (default) or raw text; fileb:// is always raw
    #[arg(long, global = true, value_enum, default_value_t = BinaryFormat::Base64)]
    pub cli_binary_format: BinaryFormat,

    #[command(subcommand)]
    pub command: TopLevel,
}

#[derive(Subcommand)]
pub enum TopLevel {
    /// The AWS KMS operations, sent to kmsd.
    #[command(flatten)]
    Kms(Command),
    // Provided by the kmsd-audit crate (`kmsd_audit::cli`), not by kmsctl:
    // it reads the audit files itself and prints as it goes (`tail -f`).
    /// Verify, tail and query kmsd's audit trail (kmsd only)
    #[command(subcommand)]
    Audit(kmsd_audit::cli::AuditCommand),
}

#[cfg(test)]
impl Cli {
    /// The KMS operation of a parsed command line.
    pub fn kms(self) -> Command {
        match self.command {
            TopLevel::Kms(c) => c,
            TopLevel::Audit(_) => panic!("an audit command"),
        }
    }
}

/// One subcommand per AWS KMS operation, named as in the AWS CLI.
#[derive(Subcommand)]
pub enum Command {
    // --- keys ---
    /// Create a KMS key (CreateKey)
    CreateKey(CreateKeyArgs),
    /// Show a key's metadata (DescribeKey)
    DescribeKey(KeyIdArgs),
    /// List the keys (ListKeys)
    ListKeys(PagingArgs),
    /// Enable a key (EnableKey)
    EnableKey(KeyIdArgs),
    /// Disable a key (DisableKey)
    DisableKey(KeyIdArgs),
    /// Schedule a key's deletion after a waiting period (ScheduleKeyDeletion)
    ScheduleKeyDeletion(ScheduleKeyDeletionArgs),
    /// Cancel a scheduled deletion; the key comes back disabled (CancelKeyDeletion)
    CancelKeyDeletion(KeyIdArgs),

    // --- rotation ---
    /// Turn on automatic rotation (EnableKeyRotation)
    EnableKeyRotation(EnableKeyRotationArgs),
    /// Turn off automatic rotation (DisableKeyRotation)
    DisableKeyRotation(KeyIdArgs),
    /// Show whether automatic rotation is on (GetKeyRotationStatus)
    GetKeyRotationStatus(KeyIdArgs),
    /// Rotate a key now (RotateKeyOnDemand)
    RotateKeyOnDemand(KeyIdArgs),
    /// List a key's completed rotations (ListKeyRotations)
    ListKeyRotations(KeyPagingArgs),

    // --- aliases ---
    /// Create an alias for a key (CreateAlias)
    CreateAlias(AliasTargetArgs),
    /// Point an alias at another key (UpdateAlias)
    UpdateAlias(AliasTargetArgs),
    /// Delete an alias (DeleteAlias)
    DeleteAlias(AliasNameArgs),
    /// List aliases, all or one key's (ListAliases)
    ListAliases(ListAliasesArgs),

    // --- tags ---
    /// Add or overwrite tags on a key (TagResource)
    TagResource(TagResourceArgs),
    /// Remove tags from a key (UntagResource)
    UntagResource(UntagResourceArgs),
    /// List a key's tags (ListResourceTags)
    ListResourceTags(KeyPagingArgs),

    // --- cryptography ---
    /// Encrypt up to 4 KiB under a key (Encrypt)
    Encrypt(EncryptArgs),
    /// Decrypt a ciphertext blob (Decrypt)
    Decrypt(DecryptArgs),
    /// Decrypt and encrypt again under another key or context (ReEncrypt)
    ReEncrypt(ReEncryptArgs),
    /// Make a data key: plaintext and encrypted copies (GenerateDataKey)
    GenerateDataKey(GenerateDataKeyArgs),
    /// Make a data key, encrypted copy only (GenerateDataKeyWithoutPlaintext)
    GenerateDataKeyWithoutPlaintext(DataKeyArgs),
    /// Random bytes from kmsd (GenerateRandom)
    GenerateRandom(GenerateRandomArgs),

    // --- key policies and the service policy ---
    /// Replace a key's policy (PutKeyPolicy)
    PutKeyPolicy(PutKeyPolicyArgs),
    /// Show a key's policy (GetKeyPolicy)
    GetKeyPolicy(GetKeyPolicyArgs),
    /// List a key's policy names (ListKeyPolicies)
    ListKeyPolicies(KeyIdArgs),
    /// Show kmsd's service-wide policy (kmsd only)
    GetServicePolicy,
    /// Replace kmsd's service-wide policy (kmsd only)
    PutServicePolicy(PutServicePolicyArgs),

    // --- access keys for the AWS endpoint (kmsd only, as IAM's) ---
    /// Create an access key acting as a principal; the secret is shown once
    CreateAccessKey(CreateAccessKeyArgs),
    /// List access keys (ids, principals, status; never secrets)
    ListAccessKeys(PagingArgs),
    /// Make an access key Active or Inactive
    UpdateAccessKey(UpdateAccessKeyArgs),
    /// Delete an access key
    DeleteAccessKey(AccessKeyIdArgs),

    // --- grants ---
    /// Grant a principal some operations on a key (CreateGrant)
    CreateGrant(CreateGrantArgs),
    /// List a key's grants (ListGrants)
    ListGrants(ListGrantsArgs),
    /// List the grants a principal may retire (ListRetirableGrants)
    ListRetirableGrants(ListRetirableGrantsArgs),
    /// Retire a grant, by token or by key and grant id (RetireGrant)
    RetireGrant(RetireGrantArgs),
    /// Revoke a grant (RevokeGrant)
    RevokeGrant(KeyGrantArgs),
}

#[derive(Args)]
pub struct KeyIdArgs {
    /// Key id, key ARN, alias name (alias/...) or alias ARN
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
}

#[derive(Args)]
pub struct PagingArgs {
    /// Items per page; with --limit or --marker one page is fetched and
    /// NextMarker/Truncated are shown, otherwise all pages are fetched
    #[arg(long)]
    pub limit: Option<u32>,
    /// NextMarker from a previous truncated page
    #[arg(long)]
    pub marker: Option<String>,
}

impl PagingArgs {
    /// The AWS CLI turns automatic pagination off when either is given.
    pub fn explicit(&self) -> bool {
        self.limit.is_some() || self.marker.is_some()
    }
}

#[derive(Args)]
pub struct KeyPagingArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    #[command(flatten)]
    pub paging: PagingArgs,
}

#[derive(Args)]
pub struct BypassArgs {
    /// Skip the check that the policy leaves the caller able to change it
    #[arg(long, overrides_with = "no_bypass_policy_lockout_safety_check")]
    pub bypass_policy_lockout_safety_check: bool,
    #[arg(long, overrides_with = "bypass_policy_lockout_safety_check")]
    pub no_bypass_policy_lockout_safety_check: bool,
}

#[derive(Args)]
pub struct CreateKeyArgs {
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long, value_name = "ENCRYPT_DECRYPT")]
    pub key_usage: Option<KeyUsage>,
    #[arg(long, value_name = "SYMMETRIC_DEFAULT")]
    pub key_spec: Option<KeySpec>,
    /// Key policy: JSON, or file://PATH
    #[arg(long, value_name = "JSON|file://PATH")]
    pub policy: Option<String>,
    /// Tags: TagKey=K,TagValue=V ... (several), or a JSON list
    #[arg(long, num_args = 1.., value_name = "TagKey=K,TagValue=V")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub bypass: BypassArgs,
}

#[derive(Args)]
pub struct ScheduleKeyDeletionArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    /// 7 to 30 days (default 30)
    #[arg(long, value_name = "DAYS")]
    pub pending_window_in_days: Option<u32>,
}

#[derive(Args)]
pub struct EnableKeyRotationArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    /// 90 to 2560 days (default 365)
    #[arg(long, value_name = "DAYS")]
    pub rotation_period_in_days: Option<u32>,
}

#[derive(Args)]
pub struct AliasTargetArgs {
    /// alias/NAME
    #[arg(long)]
    pub alias_name: String,
    /// Key id or key ARN
    #[arg(long)]
    pub target_key_id: String,
}

#[derive(Args)]
pub struct AliasNameArgs {
    #[arg(long)]
    pub alias_name: String,
}

#[derive(Args)]
pub struct ListAliasesArgs {
    /// Only this key's aliases
    #[arg(long, value_name = "KEY")]
    pub key_id: Option<String>,
    #[command(flatten)]
    pub paging: PagingArgs,
}

#[derive(Args)]
pub struct TagResourceArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    /// TagKey=K,TagValue=V ... (several), or a JSON list
    #[arg(long, required = true, num_args = 1.., value_name = "TagKey=K,TagValue=V")]
    pub tags: Vec<String>,
}

#[derive(Args)]
pub struct UntagResourceArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    #[arg(long, required = true, num_args = 1.., value_name = "TAG_KEY")]
    pub tag_keys: Vec<String>,
}

/// Context and grant tokens, shared by the cryptographic operations.
#[derive(Args)]
pub struct ContextArgs {
    /// K=V,K2=V2 or JSON {"K":"V"} (or file://PATH)
    #[arg(long, value_name = "K=V,...")]
    pub encryption_context: Option<String>,
    #[arg(long, num_args = 1.., value_name = "TOKEN")]
    pub grant_tokens: Vec<String>,
}

#[derive(Args)]
pub struct EncryptArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    /// fileb://PATH (raw bytes), file://PATH (base64 text) or inline base64
    #[arg(long, value_name = "fileb://PATH|BASE64")]
    pub plaintext: String,
    #[command(flatten)]
    pub context: ContextArgs,
    #[arg(long, value_parser = ["SYMMETRIC_DEFAULT"])]
    pub encryption_algorithm: Option<String>,
}

#[derive(Args)]
pub struct DecryptArgs {
    /// fileb://PATH (raw bytes), file://PATH (base64 text) or inline base64
    #[arg(long, value_name = "fileb://PATH|BASE64")]
    pub ciphertext_blob: String,
    /// Fail unless the blob was made with this key
    #[arg(long, value_name = "KEY")]
    pub key_id: Option<String>,
    #[command(flatten)]
    pub context: ContextArgs,
    #[arg(long, value_parser = ["SYMMETRIC_DEFAULT"])]
    pub encryption_algorithm: Option<String>,
    /// Print only the base64 Plaintext (kmsctl convenience, not in the AWS
    /// CLI; like `--output text --query Plaintext`)
    #[arg(long)]
    pub plaintext_only: bool,
}

#[derive(Args)]
pub struct ReEncryptArgs {
    #[arg(long, value_name = "fileb://PATH|BASE64")]
    pub ciphertext_blob: String,
    #[arg(long, value_name = "K=V,...")]
    pub source_encryption_context: Option<String>,
    #[arg(long, value_name = "KEY")]
    pub source_key_id: Option<String>,
    #[arg(long, value_name = "KEY")]
    pub destination_key_id: String,
    #[arg(long, value_name = "K=V,...")]
    pub destination_encryption_context: Option<String>,
    #[arg(long, num_args = 1.., value_name = "TOKEN")]
    pub grant_tokens: Vec<String>,
}

#[derive(Args)]
pub struct DataKeyArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    /// AES_256 or AES_128 (give this or --number-of-bytes)
    #[arg(long, value_name = "AES_256|AES_128")]
    pub key_spec: Option<DataKeySpec>,
    #[arg(long, value_name = "N")]
    pub number_of_bytes: Option<u32>,
    #[command(flatten)]
    pub context: ContextArgs,
}

#[derive(Args)]
pub struct GenerateDataKeyArgs {
    #[command(flatten)]
    pub key: DataKeyArgs,
    /// Print only the base64 Plaintext (kmsctl convenience, not in the AWS CLI)
    #[arg(long)]
    pub plaintext_only: bool,
}

#[derive(Args)]
pub struct GenerateRandomArgs {
    #[arg(long, value_name = "N")]
    pub number_of_bytes: u32,
}

#[derive(Args)]
pub struct PutKeyPolicyArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    /// Always `default`
    #[arg(long)]
    pub policy_name: Option<String>,
    /// JSON, or file://PATH
    #[arg(long, value_name = "JSON|file://PATH")]
    pub policy: String,
    #[command(flatten)]
    pub bypass: BypassArgs,
}

#[derive(Args)]
pub struct GetKeyPolicyArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    /// Always `default`
    #[arg(long)]
    pub policy_name: Option<String>,
}

#[derive(Args)]
pub struct CreateAccessKeyArgs {
    /// Who requests signed with the key act as: uid:N or user:NAME
    #[arg(long, value_name = "PRINCIPAL")]
    pub principal: String,
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Args)]
pub struct AccessKeyIdArgs {
    #[arg(long, value_name = "AKID")]
    pub access_key_id: String,
}

#[derive(Args)]
pub struct UpdateAccessKeyArgs {
    #[arg(long, value_name = "AKID")]
    pub access_key_id: String,
    /// Active or Inactive
    #[arg(long, value_parser = parse_status)]
    pub status: kmsd_client::AccessKeyStatus,
}

fn parse_status(s: &str) -> Result<kmsd_client::AccessKeyStatus, String> {
    match s {
        "Active" => Ok(kmsd_client::AccessKeyStatus::Active),
        "Inactive" => Ok(kmsd_client::AccessKeyStatus::Inactive),
        other => Err(format!("'{other}' is not Active or Inactive")),
    }
}

#[derive(Args)]
pub struct PutServicePolicyArgs {
    /// JSON, or file://PATH
    #[arg(long, value_name = "JSON|file://PATH")]
    pub policy: String,
}

#[derive(Args)]
pub struct CreateGrantArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    #[arg(long, value_name = "PRINCIPAL")]
    pub grantee_principal: String,
    #[arg(long, value_name = "PRINCIPAL")]
    pub retiring_principal: Option<String>,
    /// Decrypt Encrypt GenerateDataKey ... (several)
    #[arg(long, required = true, num_args = 1.., value_name = "OPERATION")]
    pub operations: Vec<String>,
    /// EncryptionContextSubset={K=V,...} or EncryptionContextEquals={K=V,...} (or JSON)
    #[arg(long, value_name = "CONSTRAINTS")]
    pub constraints: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, num_args = 1.., value_name = "TOKEN")]
    pub grant_tokens: Vec<String>,
}

#[derive(Args)]
pub struct ListGrantsArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    #[arg(long)]
    pub grant_id: Option<String>,
    #[arg(long, value_name = "PRINCIPAL")]
    pub grantee_principal: Option<String>,
    #[command(flatten)]
    pub paging: PagingArgs,
}

#[derive(Args)]
pub struct ListRetirableGrantsArgs {
    #[arg(long, value_name = "PRINCIPAL")]
    pub retiring_principal: String,
    #[command(flatten)]
    pub paging: PagingArgs,
}

#[derive(Args)]
pub struct RetireGrantArgs {
    #[arg(long)]
    pub grant_token: Option<String>,
    #[arg(long, value_name = "KEY")]
    pub key_id: Option<String>,
    #[arg(long)]
    pub grant_id: Option<String>,
}

#[derive(Args)]
pub struct KeyGrantArgs {
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    #[arg(long)]
    pub grant_id: String,
}

#[cfg(test)]
mod tests;
