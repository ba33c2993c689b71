//! Requests and responses, one pair per KMS operation, named as in the AWS
//! KMS API. The `operations!` table below is the single list of operations:
//! it generates the `Request` and `Response` enums, each operation's event
//! name (`CreateKey`, ...) and the [`Operation`] link between a request type
//! and its response type that the typed client uses.
//!
//! Request members that AWS makes optional and that are lists, maps or
//! booleans carry `#[serde(default)]`, so a JSON request (the AWS JSON 1.1
//! wire, `kmsd-awsjson`) may leave them out as AWS clients do. Binary
//! formats are positional and always carry every field: the attribute does
//! not change the native wire.

use crate::blob::Blob;
use crate::secret::SecretBytes;
use crate::types::*;
use serde::{Deserialize, Serialize};

/// A request type and the response type it gets.
pub trait Operation: Sized {
    type Output;
    /// The AWS operation name (`Request::name()` of this request).
    const NAME: &'static str;
    fn into_request(self) -> Request;
    fn from_response(r: Response) -> Option<Self::Output>;
}

macro_rules! operations {
    ($($name:ident($req:ident) -> $resp:ident;)*) => {
        #[derive(Clone, Serialize, Deserialize)]
        pub enum Request { $($name($req)),* }

        #[derive(Serialize, Deserialize)]
        pub enum Response { $($name($resp)),* }

        impl Request {
            /// The AWS operation name, as CloudTrail's `eventName`.
            pub fn name(&self) -> &'static str {
                match self { $(Request::$name(_) => stringify!($name)),* }
            }
        }

        impl Response {
            pub fn name(&self) -> &'static str {
                match self { $(Response::$name(_) => stringify!($name)),* }
            }
        }

        $(impl Operation for $req {
            type Output = $resp;
            const NAME: &'static str = stringify!($name);
            fn into_request(self) -> Request { Request::$name(self) }
            fn from_response(r: Response) -> Option<$resp> {
                match r {
                    Response::$name(v) => Some(v),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        })*
    };
}

/// Calls macro `$m` with the list of operations, one
/// `Name(RequestType) -> ResponseType;` per line: the one list every
/// per-operation table (these enums, kmsd's dispatch) is generated from.
#[macro_export]
macro_rules! for_each_operation {
    ($m:ident) => {
        $m! {
            CreateKey(CreateKeyRequest) -> KeyMetadataResponse;
            DescribeKey(DescribeKeyRequest) -> KeyMetadataResponse;
            ListKeys(ListKeysRequest) -> ListKeysResponse;
            EnableKey(EnableKeyRequest) -> Empty;
            DisableKey(DisableKeyRequest) -> Empty;
            ScheduleKeyDeletion(ScheduleKeyDeletionRequest) -> ScheduleKeyDeletionResponse;
            CancelKeyDeletion(CancelKeyDeletionRequest) -> KeyIdResponse;
            EnableKeyRotation(EnableKeyRotationRequest) -> Empty;
            DisableKeyRotation(DisableKeyRotationRequest) -> Empty;
            GetKeyRotationStatus(GetKeyRotationStatusRequest) -> GetKeyRotationStatusResponse;
            RotateKeyOnDemand(RotateKeyOnDemandRequest) -> KeyIdResponse;
            ListKeyRotations(ListKeyRotationsRequest) -> ListKeyRotationsResponse;
            CreateAlias(CreateAliasRequest) -> Empty;
            UpdateAlias(UpdateAliasRequest) -> Empty;
            DeleteAlias(DeleteAliasRequest) -> Empty;
            ListAliases(ListAliasesRequest) -> ListAliasesResponse;
            TagResource(TagResourceRequest) -> Empty;
            UntagResource(UntagResourceRequest) -> Empty;
            ListResourceTags(ListResourceTagsRequest) -> ListResourceTagsResponse;
            Encrypt(EncryptRequest) -> EncryptResponse;
            Decrypt(DecryptRequest) -> DecryptResponse;
            ReEncrypt(ReEncryptRequest) -> ReEncryptResponse;
            GenerateDataKey(GenerateDataKeyRequest) -> GenerateDataKeyResponse;
            GenerateDataKeyWithoutPlaintext(GenerateDataKeyWithoutPlaintextRequest) -> GenerateDataKeyWithoutPlaintextResponse;
            GenerateRandom(GenerateRandomRequest) -> GenerateRandomResponse;
            PutKeyPolicy(PutKeyPolicyRequest) -> Empty;
            GetKeyPolicy(GetKeyPolicyRequest) -> GetKeyPolicyResponse;
            ListKeyPolicies(ListKeyPoliciesRequest) -> ListKeyPoliciesResponse;
            CreateGrant(CreateGrantRequest) -> CreateGrantResponse;
            ListGrants(ListGrantsRequest) -> ListGrantsResponse;
            ListRetirableGrants(ListRetirableGrantsRequest) -> ListGrantsResponse;
            RetireGrant(RetireGrantRequest) -> Empty;
            RevokeGrant(RevokeGrantRequest) -> Empty;
            GetServicePolicy(GetServicePolicyRequest) -> GetKeyPolicyResponse;
            PutServicePolicy(PutServicePolicyRequest) -> Empty;
            CreateAccessKey(CreateAccessKeyRequest) -> CreateAccessKeyResponse;
            ListAccessKeys(ListAccessKeysRequest) -> ListAccessKeysResponse;
            UpdateAccessKey(UpdateAccessKeyRequest) -> Empty;
            DeleteAccessKey(DeleteAccessKeyRequest) -> Empty;
        }
    };
}

for_each_operation!(operations);

/// The response of operations that return nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

macro_rules! key_id_request {
    ($($name:ident),*) => {$(
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "PascalCase")]
        pub struct $name {
            /// Key id, key ARN, alias name or alias ARN.
            pub key_id: String,
        }
    )*};
}

key_id_request!(
    DescribeKeyRequest,
    EnableKeyRequest,
    DisableKeyRequest,
    CancelKeyDeletionRequest,
    DisableKeyRotationRequest,
    GetKeyRotationStatusRequest,
    RotateKeyOnDemandRequest,
    ListKeyPoliciesRequest
);

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateKeyRequest {
    pub description: Option<String>,
    pub key_usage: Option<KeyUsage>,
    pub key_spec: Option<KeySpec>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub policy: Option<String>,
    #[serde(default)]
    pub bypass_policy_lockout_safety_check: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadataResponse {
    pub key_metadata: KeyMetadata,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyIdResponse {
    pub key_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeysRequest {
    pub limit: Option<u32>,
    pub marker: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeysResponse {
    pub keys: Vec<KeyListEntry>,
    pub next_marker: Option<String>,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleKeyDeletionRequest {
    pub key_id: String,
    pub pending_window_in_days: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleKeyDeletionResponse {
    pub key_id: String,
    pub deletion_date: Timestamp,
    pub key_state: KeyState,
    pub pending_window_in_days: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnableKeyRotationRequest {
    pub key_id: String,
    pub rotation_period_in_days: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyRotationStatusResponse {
    pub key_id: String,
    pub key_rotation_enabled: bool,
    pub rotation_period_in_days: Option<u32>,
    pub next_rotation_date: Option<Timestamp>,
    pub on_demand_rotation_start_date: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyRotationsRequest {
    pub key_id: String,
    pub limit: Option<u32>,
    pub marker: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyRotationsResponse {
    pub rotations: Vec<RotationListEntry>,
    pub next_marker: Option<String>,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAliasRequest {
    pub alias_name: String,
    pub target_key_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAliasRequest {
    pub alias_name: String,
    pub target_key_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteAliasRequest {
    pub alias_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesRequest {
    pub key_id: Option<String>,
    pub limit: Option<u32>,
    pub marker: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesResponse {
    pub aliases: Vec<AliasListEntry>,
    pub next_marker: Option<String>,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceRequest {
    pub key_id: String,
    pub tags: Vec<Tag>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceRequest {
    pub key_id: String,
    pub tag_keys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResourceTagsRequest {
    pub key_id: String,
    pub limit: Option<u32>,
    pub marker: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResourceTagsResponse {
    pub tags: Vec<Tag>,
    pub next_marker: Option<String>,
    pub truncated: bool,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptRequest {
    pub key_id: String,
    pub plaintext: SecretBytes,
    #[serde(default)]
    pub encryption_context: EncryptionContext,
    #[serde(default)]
    pub grant_tokens: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptResponse {
    pub ciphertext_blob: Blob,
    /// The ARN of the key that encrypted.
    pub key_id: String,
    pub encryption_algorithm: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecryptRequest {
    pub ciphertext_blob: Blob,
    #[serde(default)]
    pub encryption_context: EncryptionContext,
    /// When given, the blob must name this key (`IncorrectKeyException`).
    pub key_id: Option<String>,
    #[serde(default)]
    pub grant_tokens: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecryptResponse {
    pub key_id: String,
    pub plaintext: SecretBytes,
    pub encryption_algorithm: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReEncryptRequest {
    pub ciphertext_blob: Blob,
    #[serde(default)]
    pub source_encryption_context: EncryptionContext,
    pub source_key_id: Option<String>,
    pub destination_key_id: String,
    #[serde(default)]
    pub destination_encryption_context: EncryptionContext,
    #[serde(default)]
    pub grant_tokens: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReEncryptResponse {
    pub ciphertext_blob: Blob,
    pub source_key_id: String,
    pub key_id: String,
    pub source_encryption_algorithm: String,
    pub destination_encryption_algorithm: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyRequest {
    pub key_id: String,
    #[serde(default)]
    pub encryption_context: EncryptionContext,
    /// Exactly one of `key_spec` and `number_of_bytes`.
    pub key_spec: Option<DataKeySpec>,
    pub number_of_bytes: Option<u32>,
    #[serde(default)]
    pub grant_tokens: Vec<String>,
}

/// Same fields as [`GenerateDataKeyRequest`]; a distinct type so the
/// operation table maps it to its own response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyWithoutPlaintextRequest {
    pub key_id: String,
    #[serde(default)]
    pub encryption_context: EncryptionContext,
    pub key_spec: Option<DataKeySpec>,
    pub number_of_bytes: Option<u32>,
    #[serde(default)]
    pub grant_tokens: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyResponse {
    pub ciphertext_blob: Blob,
    pub plaintext: SecretBytes,
    pub key_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyWithoutPlaintextResponse {
    pub ciphertext_blob: Blob,
    pub key_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateRandomRequest {
    pub number_of_bytes: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateRandomResponse {
    pub plaintext: SecretBytes,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutKeyPolicyRequest {
    pub key_id: String,
    /// Always `default`, as in AWS.
    pub policy_name: Option<String>,
    pub policy: String,
    #[serde(default)]
    pub bypass_policy_lockout_safety_check: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyPolicyRequest {
    pub key_id: String,
    pub policy_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyPolicyResponse {
    pub policy: String,
    pub policy_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyPoliciesResponse {
    pub policy_names: Vec<String>,
    pub truncated: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantConstraints {
    pub encryption_context_subset: Option<EncryptionContext>,
    pub encryption_context_equals: Option<EncryptionContext>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateGrantRequest {
    pub key_id: String,
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    /// AWS grant operation names: `Decrypt`, `Encrypt`, `GenerateDataKey`, ...
    pub operations: Vec<String>,
    pub constraints: Option<GrantConstraints>,
    pub name: Option<String>,
    #[serde(default)]
    pub grant_tokens: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateGrantResponse {
    pub grant_id: String,
    pub grant_token: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListGrantsRequest {
    pub key_id: String,
    pub grant_id: Option<String>,
    pub grantee_principal: Option<String>,
    pub limit: Option<u32>,
    pub marker: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListRetirableGrantsRequest {
    pub retiring_principal: String,
    pub limit: Option<u32>,
    pub marker: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantListEntry {
    pub key_id: String,
    pub grant_id: String,
    pub name: Option<String>,
    pub creation_date: Timestamp,
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    pub issuing_account: String,
    pub operations: Vec<String>,
    pub constraints: Option<GrantConstraints>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListGrantsResponse {
    pub grants: Vec<GrantListEntry>,
    pub next_marker: Option<String>,
    pub truncated: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetireGrantRequest {
    pub grant_token: Option<String>,
    pub key_id: Option<String>,
    pub grant_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RevokeGrantRequest {
    pub key_id: String,
    pub grant_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetServicePolicyRequest {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutServicePolicyRequest {
    pub policy: String,
}

/// kmsd's own: an access key for the AWS endpoint (as IAM's
/// CreateAccessKey), acting as `principal` (`uid:N` or `user:NAME`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAccessKeyRequest {
    pub principal: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// The secret is returned once, here; kmsd keeps it only encrypted under
/// its root key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAccessKeyResponse {
    pub access_key_id: String,
    pub secret_access_key: crate::SecretString,
    pub principal: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAccessKeysRequest {
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub marker: Option<String>,
}

/// `Active` keys sign requests; `Inactive` ones are refused
/// (`UnrecognizedClientException`) until made active again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKeyStatus {
    Active,
    Inactive,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeyEntry {
    pub access_key_id: String,
    pub principal: String,
    pub status: AccessKeyStatus,
    pub create_date: Timestamp,
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAccessKeysResponse {
    pub access_keys: Vec<AccessKeyEntry>,
    pub next_marker: Option<String>,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAccessKeyRequest {
    pub access_key_id: String,
    pub status: AccessKeyStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteAccessKeyRequest {
    pub access_key_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_requests_may_leave_out_optional_lists_maps_and_booleans() {
        let e: EncryptRequest =
            serde_json::from_str(r#"{"KeyId": "alias/app", "Plaintext": "aGk="}"#).unwrap();
        assert_eq!(e.plaintext.expose(), b"hi");
        assert!(e.encryption_context.is_empty() && e.grant_tokens.is_empty());
        let c: CreateKeyRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(c, CreateKeyRequest::default());
        let r: ReEncryptRequest =
            serde_json::from_str(r#"{"CiphertextBlob": "AA==", "DestinationKeyId": "k"}"#).unwrap();
        assert!(
            r.source_encryption_context.is_empty() && r.destination_encryption_context.is_empty()
        );
        let g: CreateGrantRequest = serde_json::from_str(
            r#"{"KeyId": "k", "GranteePrincipal": "uid:1", "Operations": ["Decrypt"]}"#,
        )
        .unwrap();
        assert!(g.grant_tokens.is_empty() && g.constraints.is_none());
        let p: PutKeyPolicyRequest =
            serde_json::from_str(r#"{"KeyId": "k", "Policy": "{}"}"#).unwrap();
        assert!(!p.bypass_policy_lockout_safety_check);
        // Required members stay required.
        assert!(serde_json::from_str::<EncryptRequest>(r#"{"KeyId": "k"}"#).is_err());
    }
}
