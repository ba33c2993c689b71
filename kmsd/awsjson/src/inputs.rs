//! The input members of every served operation, as the AWS model has them,
//! and what the decoder does with each. This table is what the decoder
//! type-checks a body against (so an error names the member) and where it
//! records what kmsd does not do (so such a member is refused, never
//! silently dropped). `conformance::inputs` checks it against botocore's
//! model: the same members, types, required flags and enum values.

/// One member of an input structure.
pub(crate) struct Member {
    /// As on the wire (PascalCase).
    pub name: &'static str,
    pub ty: Ty,
    pub need: Need,
    pub role: Role,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    Optional,
    /// Required by the model.
    Model,
    /// Optional in the model, required by kmsd (see `Role`'s notes in the
    /// table: `Decrypt`/`ReEncrypt` `CiphertextBlob`, `GenerateRandom`
    /// `NumberOfBytes`).
    Kmsd,
}

/// The model's types of the members KMS inputs use.
pub(crate) enum Ty {
    Str,
    Int,
    Bool,
    Blob,
    Enum(&'static [&'static str]),
    List(&'static Ty),
    /// String to string (the only map KMS has: `EncryptionContextType`).
    Map,
    Struct(&'static [Member]),
}

pub(crate) enum Role {
    /// kmsd's request has the member under the same name, with the same
    /// meaning.
    Pass,
    /// As `Pass` for these values of the model's enum; the others are
    /// answered `UnsupportedOperationException`.
    PassOnly(&'static [&'static str]),
    /// For a feature kmsd lacks: accepted when absent or `Accept`, else
    /// `UnsupportedOperationException`. Not passed on.
    Only(Accept),
    /// Checked, then ignored; the text says why that is right for kmsd
    /// (read by the tests and docs/HTTP.md, not by the decoder).
    Drop(#[allow(dead_code)] &'static str),
    /// The request's `DryRun`: taken out into `Decoded::Kms::dry_run`.
    DryRun,
}

pub(crate) enum Accept {
    Absent,
    Value(&'static str),
    False,
}

use Need::{Kmsd, Model, Optional};
use Role::{Drop, DryRun, Only, Pass, PassOnly};
use Ty::{Blob, Bool, Enum, Int, List, Map, Str, Struct};

const fn m(name: &'static str, ty: Ty, need: Need, role: Role) -> Member {
    Member {
        name,
        ty,
        need,
        role,
    }
}

// The model's enums (shape names in the comments).
/// `KeyUsageType`.
pub(crate) const KEY_USAGE: &[&str] = &[
    "SIGN_VERIFY",
    "ENCRYPT_DECRYPT",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
];
/// `CustomerMasterKeySpec` (deprecated; `KeySpec` took its place).
pub(crate) const CUSTOMER_MASTER_KEY_SPEC: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SYMMETRIC_DEFAULT",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
];
/// `KeySpec`.
pub(crate) const KEY_SPEC: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SYMMETRIC_DEFAULT",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
    "ECC_NIST_EDWARDS25519",
];
/// `OriginType`.
pub(crate) const ORIGIN: &[&str] = &["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"];
/// `EncryptionAlgorithmSpec`.
pub(crate) const ENCRYPTION_ALGORITHM: &[&str] = &[
    "SYMMETRIC_DEFAULT",
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "SM2PKE",
];
/// `DataKeySpec`.
pub(crate) const DATA_KEY_SPEC: &[&str] = &["AES_256", "AES_128"];
/// `IncludeKeyMaterial`.
pub(crate) const INCLUDE_KEY_MATERIAL: &[&str] = &["ALL_KEY_MATERIAL", "ROTATIONS_ONLY"];
/// `GrantOperation`.
pub(crate) const GRANT_OPERATION: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
];
/// `DryRunModifierType`.
pub(crate) const DRY_RUN_MODIFIER: &[&str] = &["IGNORE_CIPHERTEXT"];
/// `KeyEncryptionMechanism`.
pub(crate) const KEY_ENCRYPTION_MECHANISM: &[&str] = &["RSAES_OAEP_SHA_256"];

// Shared shapes.
const TAG: &[Member] = &[
    m("TagKey", Str, Model, Pass),
    m("TagValue", Str, Model, Pass),
];
const TAGS: Ty = List(&Struct(TAG));
const GRANT_TOKENS: Ty = List(&Str);
const GRANT_CONSTRAINTS: &[Member] = &[
    m("EncryptionContextSubset", Map, Optional, Pass),
    m("EncryptionContextEquals", Map, Optional, Pass),
];
/// `RecipientInfo`: a Nitro Enclaves attestation document.
const RECIPIENT: &[Member] = &[
    m(
        "KeyEncryptionAlgorithm",
        Enum(KEY_ENCRYPTION_MECHANISM),
        Optional,
        Pass,
    ),
    m("AttestationDocument", Blob, Optional, Pass),
];
const NO_RECIPIENT: Role = Only(Accept::Absent);
const SYMMETRIC_ONLY: Role = Only(Accept::Value("SYMMETRIC_DEFAULT"));
const IGNORE_DRY_RUN_MODIFIERS: Role = Drop(
    "IGNORE_CIPHERTEXT asks a dry run to skip checking the ciphertext; kmsd's \
     request still needs a CiphertextBlob",
);

const KEY_ID: Member = m("KeyId", Str, Model, Pass);
const LIMIT: Member = m("Limit", Int, Optional, Pass);
const MARKER: Member = m("Marker", Str, Optional, Pass);
const DRY_RUN: Member = m("DryRun", Bool, Optional, DryRun);
const KEY_ID_ONLY: &[Member] = &[KEY_ID];

/// The input members of served operation `op`; `None` for an operation
/// this table lacks (a test requires every served one).
/// A member list as a `'static` slice (a `const`: the `m(..)` calls are
/// not promoted to statics in a function body).
macro_rules! members {
    ($($m:expr),* $(,)?) => {{
        const MEMBERS: &[Member] = &[$($m),*];
        MEMBERS
    }};
}

pub(crate) fn members(op: &str) -> Option<&'static [Member]> {
    Some(match op {
        "CancelKeyDeletion"
        | "DisableKey"
        | "DisableKeyRotation"
        | "EnableKey"
        | "GetKeyRotationStatus"
        | "RotateKeyOnDemand" => KEY_ID_ONLY,
        "CreateAlias" | "UpdateAlias" => members![
            m("AliasName", Str, Model, Pass),
            m("TargetKeyId", Str, Model, Pass),
        ],
        "CreateGrant" => members![
            KEY_ID,
            m("GranteePrincipal", Str, Model, Pass),
            m("RetiringPrincipal", Str, Optional, Pass),
            m("Operations", List(&Enum(GRANT_OPERATION)), Model, Pass),
            m("Constraints", Struct(GRANT_CONSTRAINTS), Optional, Pass),
            m("GrantTokens", GRANT_TOKENS, Optional, Pass),
            m("Name", Str, Optional, Pass),
            DRY_RUN,
        ],
        "CreateKey" => members![
            m("Policy", Str, Optional, Pass),
            m("Description", Str, Optional, Pass),
            m(
                "KeyUsage",
                Enum(KEY_USAGE),
                Optional,
                PassOnly(&["ENCRYPT_DECRYPT"])
            ),
            m(
                "CustomerMasterKeySpec",
                Enum(CUSTOMER_MASTER_KEY_SPEC),
                Optional,
                SYMMETRIC_ONLY,
            ),
            m(
                "KeySpec",
                Enum(KEY_SPEC),
                Optional,
                PassOnly(&["SYMMETRIC_DEFAULT"])
            ),
            m(
                "Origin",
                Enum(ORIGIN),
                Optional,
                Only(Accept::Value("AWS_KMS"))
            ),
            m("CustomKeyStoreId", Str, Optional, Only(Accept::Absent)),
            m("BypassPolicyLockoutSafetyCheck", Bool, Optional, Pass),
            m("Tags", TAGS, Optional, Pass),
            m("MultiRegion", Bool, Optional, Only(Accept::False)),
            m("XksKeyId", Str, Optional, Only(Accept::Absent)),
        ],
        "Decrypt" => members![
            // kmsd finds the key in the blob's header: it needs the blob
            // (AWS makes it optional for IGNORE_CIPHERTEXT dry runs).
            m("CiphertextBlob", Blob, Kmsd, Pass),
            m("EncryptionContext", Map, Optional, Pass),
            m("GrantTokens", GRANT_TOKENS, Optional, Pass),
            m("KeyId", Str, Optional, Pass),
            m(
                "EncryptionAlgorithm",
                Enum(ENCRYPTION_ALGORITHM),
                Optional,
                SYMMETRIC_ONLY
            ),
            m("Recipient", Struct(RECIPIENT), Optional, NO_RECIPIENT),
            DRY_RUN,
            m(
                "DryRunModifiers",
                List(&Enum(DRY_RUN_MODIFIER)),
                Optional,
                IGNORE_DRY_RUN_MODIFIERS,
            ),
        ],
        "DeleteAlias" => members![m("AliasName", Str, Model, Pass)],
        "DescribeKey" => members![
            KEY_ID,
            m(
                "GrantTokens",
                GRANT_TOKENS,
                Optional,
                Drop("kmsd's grants take effect at once; DescribeKey needs no grant token"),
            ),
        ],
        "EnableKeyRotation" => members![KEY_ID, m("RotationPeriodInDays", Int, Optional, Pass)],
        "Encrypt" => members![
            KEY_ID,
            m("Plaintext", Blob, Model, Pass),
            m("EncryptionContext", Map, Optional, Pass),
            m("GrantTokens", GRANT_TOKENS, Optional, Pass),
            m(
                "EncryptionAlgorithm",
                Enum(ENCRYPTION_ALGORITHM),
                Optional,
                SYMMETRIC_ONLY
            ),
            DRY_RUN,
        ],
        "GenerateDataKey" => members![
            KEY_ID,
            m("EncryptionContext", Map, Optional, Pass),
            m("NumberOfBytes", Int, Optional, Pass),
            m("KeySpec", Enum(DATA_KEY_SPEC), Optional, Pass),
            m("GrantTokens", GRANT_TOKENS, Optional, Pass),
            m("Recipient", Struct(RECIPIENT), Optional, NO_RECIPIENT),
            DRY_RUN,
        ],
        "GenerateDataKeyWithoutPlaintext" => members![
            KEY_ID,
            m("EncryptionContext", Map, Optional, Pass),
            m("KeySpec", Enum(DATA_KEY_SPEC), Optional, Pass),
            m("NumberOfBytes", Int, Optional, Pass),
            m("GrantTokens", GRANT_TOKENS, Optional, Pass),
            DRY_RUN,
        ],
        "GenerateRandom" => members![
            // Optional in the model; kmsd's request has no default (what
            // AWS answers without it is not checked here).
            m("NumberOfBytes", Int, Kmsd, Pass),
            m("CustomKeyStoreId", Str, Optional, Only(Accept::Absent)),
            m("Recipient", Struct(RECIPIENT), Optional, NO_RECIPIENT),
        ],
        "GetKeyPolicy" => members![KEY_ID, m("PolicyName", Str, Optional, Pass)],
        "ListAliases" => members![m("KeyId", Str, Optional, Pass), LIMIT, MARKER],
        "ListGrants" => members![
            LIMIT,
            MARKER,
            KEY_ID,
            m("GrantId", Str, Optional, Pass),
            m("GranteePrincipal", Str, Optional, Pass),
        ],
        "ListKeyPolicies" => members![
            KEY_ID,
            m(
                "Limit",
                Int,
                Optional,
                Drop("a key has one policy, so one page")
            ),
            m(
                "Marker",
                Str,
                Optional,
                Drop("a key has one policy, so one page")
            ),
        ],
        "ListKeyRotations" => members![
            KEY_ID,
            m(
                "IncludeKeyMaterial",
                Enum(INCLUDE_KEY_MATERIAL),
                Optional,
                // ALL_KEY_MATERIAL would add the first key material, which
                // kmsd's answer does not list.
                Only(Accept::Value("ROTATIONS_ONLY")),
            ),
            LIMIT,
            MARKER,
        ],
        "ListKeys" => members![LIMIT, MARKER],
        "ListResourceTags" => members![KEY_ID, LIMIT, MARKER],
        "ListRetirableGrants" => members![LIMIT, MARKER, m("RetiringPrincipal", Str, Model, Pass)],
        "PutKeyPolicy" => members![
            KEY_ID,
            m("PolicyName", Str, Optional, Pass),
            m("Policy", Str, Model, Pass),
            m("BypassPolicyLockoutSafetyCheck", Bool, Optional, Pass),
        ],
        "ReEncrypt" => members![
            m("CiphertextBlob", Blob, Kmsd, Pass),
            m("SourceEncryptionContext", Map, Optional, Pass),
            m("SourceKeyId", Str, Optional, Pass),
            m("DestinationKeyId", Str, Model, Pass),
            m("DestinationEncryptionContext", Map, Optional, Pass),
            m(
                "SourceEncryptionAlgorithm",
                Enum(ENCRYPTION_ALGORITHM),
                Optional,
                SYMMETRIC_ONLY,
            ),
            m(
                "DestinationEncryptionAlgorithm",
                Enum(ENCRYPTION_ALGORITHM),
                Optional,
                SYMMETRIC_ONLY,
            ),
            m("GrantTokens", GRANT_TOKENS, Optional, Pass),
            DRY_RUN,
            m(
                "DryRunModifiers",
                List(&Enum(DRY_RUN_MODIFIER)),
                Optional,
                IGNORE_DRY_RUN_MODIFIERS,
            ),
        ],
        "RetireGrant" => members![
            m("GrantToken", Str, Optional, Pass),
            m("KeyId", Str, Optional, Pass),
            m("GrantId", Str, Optional, Pass),
            DRY_RUN,
        ],
        "RevokeGrant" => members![KEY_ID, m("GrantId", Str, Model, Pass), DRY_RUN],
        "ScheduleKeyDeletion" => members![KEY_ID, m("PendingWindowInDays", Int, Optional, Pass)],
        "TagResource" => members![KEY_ID, m("Tags", TAGS, Model, Pass)],
        "UntagResource" => members![KEY_ID, m("TagKeys", List(&Str), Model, Pass)],
        _ => return None,
    })
}
