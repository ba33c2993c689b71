//! Which operations the AWS wire serves: the AWS KMS operations that kmsd
//! implements. kmsd's list comes from `kmsd_client::for_each_operation!`,
//! so an operation added there is picked up here (and the conformance
//! tests then ask for its input table and a sample answer).

use kmsd_client::Request;
use serde::Deserialize;
use serde_json::Value;

/// Every operation of the AWS KMS API (botocore's service model
/// `kms/2014-11-01`), in the model's order. A test checks this list
/// against the model.
pub const AWS_OPERATIONS: [&str; 54] = [
    "CancelKeyDeletion",
    "ConnectCustomKeyStore",
    "CreateAlias",
    "CreateCustomKeyStore",
    "CreateGrant",
    "CreateKey",
    "Decrypt",
    "DeleteAlias",
    "DeleteCustomKeyStore",
    "DeleteImportedKeyMaterial",
    "DeriveSharedSecret",
    "DescribeCustomKeyStores",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "DisconnectCustomKeyStore",
    "EnableKey",
    "EnableKeyRotation",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "GetKeyLastUsage",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetParametersForImport",
    "GetPublicKey",
    "ImportKeyMaterial",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "ListRetirableGrants",
    "PutKeyPolicy",
    "ReEncrypt",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateCustomKeyStore",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
    "Verify",
    "VerifyMac",
];

macro_rules! kmsd_operations {
    ($($name:ident($req:ident) -> $resp:ident;)*) => {
        /// Every operation kmsd implements, AWS's and its own.
        pub(crate) const KMSD_OPERATIONS: &[&str] = &[$(stringify!($name)),*];

        /// Reads `body` as the request of kmsd operation `op`; `None` for a
        /// name kmsd does not have. Deserializes from a borrowed `Value`, so
        /// no string (a base64 plaintext) is copied on the way.
        pub(crate) fn deserialize(
            op: &str,
            body: &Value,
        ) -> Option<Result<Request, serde_json::Error>> {
            match op {
                $(stringify!($name) => Some(
                    kmsd_client::$req::deserialize(body).map(Request::$name)
                ),)*
                _ => None,
            }
        }
    };
}

kmsd_client::for_each_operation!(kmsd_operations);

/// Whether the AWS wire serves `op`: an AWS KMS operation kmsd implements.
pub fn is_served(op: &str) -> bool {
    AWS_OPERATIONS.contains(&op) && KMSD_OPERATIONS.contains(&op)
}

/// The operations the AWS wire serves, in the model's order.
pub fn served_operations() -> impl Iterator<Item = &'static str> {
    AWS_OPERATIONS.into_iter().filter(|op| is_served(op))
}

/// Why kmsd does not implement AWS operation `op`.
pub(crate) fn unsupported_reason(op: &str) -> &'static str {
    match op {
        "Sign"
        | "Verify"
        | "GetPublicKey"
        | "GenerateDataKeyPair"
        | "GenerateDataKeyPairWithoutPlaintext"
        | "DeriveSharedSecret" => "kmsd has symmetric encryption keys only, no asymmetric keys",
        "GenerateMac" | "VerifyMac" => "kmsd has symmetric encryption keys only, no HMAC keys",
        "ConnectCustomKeyStore"
        | "CreateCustomKeyStore"
        | "DeleteCustomKeyStore"
        | "DescribeCustomKeyStores"
        | "DisconnectCustomKeyStore"
        | "UpdateCustomKeyStore" => "kmsd has no custom key stores",
        "ReplicateKey" | "UpdatePrimaryRegion" => "kmsd has no multi-Region keys",
        "GetParametersForImport" | "ImportKeyMaterial" | "DeleteImportedKeyMaterial" => {
            "kmsd makes all key material itself and imports none"
        }
        _ => "kmsd does not implement it",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmsd_own_operations_are_not_served() {
        assert!(is_served("Encrypt"));
        assert!(!is_served("Sign"));
        assert!(KMSD_OPERATIONS.contains(&"GetServicePolicy"));
        assert!(!is_served("GetServicePolicy"));
        assert!(!is_served("PutServicePolicy"));
        assert_eq!(served_operations().next(), Some("CancelKeyDeletion"));
    }
}
