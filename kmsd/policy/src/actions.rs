//! Actions (`kms:Decrypt`, ...), the action patterns policies use
//! (`kms:*`, `kms:Generate*`), and the table from each kmsd operation to the
//! action(s) it needs, on which key, and the grant operation that can allow it.

use crate::glob::glob_match_ignore_case;
use crate::grants::GrantOperation;

/// Every action a policy may name: kmsd's own operations and the other AWS
/// KMS actions, accepted so policies written for AWS parse (they never
/// match a kmsd request). `kms:GetServicePolicy` and `kms:PutServicePolicy`
/// are kmsd's (AWS has IAM instead).
pub const ACTIONS: &[&str] = &[
    "kms:CancelKeyDeletion",
    "kms:ConnectCustomKeyStore",
    "kms:CreateAlias",
    "kms:CreateCustomKeyStore",
    "kms:CreateGrant",
    "kms:CreateKey",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DeleteCustomKeyStore",
    "kms:DeleteImportedKeyMaterial",
    "kms:DeriveSharedSecret",
    "kms:DescribeCustomKeyStores",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:DisconnectCustomKeyStore",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateMac",
    "kms:GenerateRandom",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:GetParametersForImport",
    "kms:GetPublicKey",
    "kms:GetServicePolicy",
    "kms:ImportKeyMaterial",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListKeys",
    "kms:ListResourceTags",
    "kms:ListRetirableGrants",
    "kms:PutKeyPolicy",
    "kms:PutServicePolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:ReplicateKey",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:Sign",
    "kms:SynchronizeMultiRegionKey",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateCustomKeyStore",
    "kms:UpdateKeyDescription",
    "kms:UpdatePrimaryRegion",
    "kms:Verify",
    "kms:VerifyMac",
];

/// One entry of a statement's `Action` or `NotAction`: `*`, `kms:*`, an
/// action name or a pattern with `*`/`?`. Matching ignores case, as in IAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionPattern(String);

impl ActionPattern {
    /// Accepts `*` and `kms:` patterns that match at least one known action,
    /// so a typo (`kms:Encrpyt`) is an error rather than a silent no-op.
    pub fn parse(text: &str) -> Result<ActionPattern, String> {
        if text == "*" {
            return Ok(ActionPattern(text.to_owned()));
        }
        let Some((service, name)) = text.split_once(':') else {
            return Err(format!(
                "action \"{text}\" has no service prefix; write kms:NAME"
            ));
        };
        if !service.eq_ignore_ascii_case("kms") {
            return Err(format!(
                "action \"{text}\" has service prefix \"{service}\"; only kms: actions apply"
            ));
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
        {
            return Err(format!(
                "action \"{text}\" is not an action name (letters, digits, * and ?)"
            ));
        }
        let pattern = ActionPattern(text.to_owned());
        if !ACTIONS.iter().any(|a| pattern.matches(a)) {
            return Err(format!("action \"{text}\" matches no KMS action"));
        }
        Ok(pattern)
    }

    pub fn matches(&self, action: &str) -> bool {
        glob_match_ignore_case(&self.0, action)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which key (if any) an action is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The operation names no key: only the service policy decides.
    Service,
    /// The key the request names: `KeyId`; for Decrypt the key in the
    /// ciphertext; for ReEncrypt the source key; for CreateAlias the
    /// `TargetKeyId`; for UpdateAlias and DeleteAlias the key the alias
    /// points at now; for RetireGrant the key of the grant.
    Key,
    /// ReEncrypt's `DestinationKeyId`; UpdateAlias's new `TargetKeyId`.
    DestinationKey,
}

/// One authorization check an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The action, as policies name it: `kms:Decrypt`.
    pub action: &'static str,
    pub target: Target,
    /// The grant operation that can allow this action on the key, if grants
    /// can allow it at all.
    pub grant_operation: Option<GrantOperation>,
}

const fn svc(action: &'static str) -> Requirement {
    Requirement {
        action,
        target: Target::Service,
        grant_operation: None,
    }
}

const fn key(action: &'static str) -> Requirement {
    Requirement {
        action,
        target: Target::Key,
        grant_operation: None,
    }
}

const fn granted(action: &'static str, target: Target, op: GrantOperation) -> Requirement {
    Requirement {
        action,
        target,
        grant_operation: Some(op),
    }
}

use GrantOperation as G;

/// kmsd operation name (`Request::name()`) → the checks it needs, all of
/// which must allow.
const TABLE: &[(&str, &[Requirement])] = &[
    ("CreateKey", &[svc("kms:CreateKey")]),
    (
        "DescribeKey",
        &[granted("kms:DescribeKey", Target::Key, G::DescribeKey)],
    ),
    ("ListKeys", &[svc("kms:ListKeys")]),
    ("EnableKey", &[key("kms:EnableKey")]),
    ("DisableKey", &[key("kms:DisableKey")]),
    ("ScheduleKeyDeletion", &[key("kms:ScheduleKeyDeletion")]),
    ("CancelKeyDeletion", &[key("kms:CancelKeyDeletion")]),
    ("EnableKeyRotation", &[key("kms:EnableKeyRotation")]),
    ("DisableKeyRotation", &[key("kms:DisableKeyRotation")]),
    ("GetKeyRotationStatus", &[key("kms:GetKeyRotationStatus")]),
    ("RotateKeyOnDemand", &[key("kms:RotateKeyOnDemand")]),
    ("ListKeyRotations", &[key("kms:ListKeyRotations")]),
    ("CreateAlias", &[key("kms:CreateAlias")]),
    (
        "UpdateAlias",
        &[
            key("kms:UpdateAlias"),
            Requirement {
                action: "kms:UpdateAlias",
                target: Target::DestinationKey,
                grant_operation: None,
            },
        ],
    ),
    ("DeleteAlias", &[key("kms:DeleteAlias")]),
    ("ListAliases", &[svc("kms:ListAliases")]),
    ("TagResource", &[key("kms:TagResource")]),
    ("UntagResource", &[key("kms:UntagResource")]),
    ("ListResourceTags", &[key("kms:ListResourceTags")]),
    (
        "Encrypt",
        &[granted("kms:Encrypt", Target::Key, G::Encrypt)],
    ),
    (
        "Decrypt",
        &[granted("kms:Decrypt", Target::Key, G::Decrypt)],
    ),
    (
        "ReEncrypt",
        &[
            granted("kms:ReEncryptFrom", Target::Key, G::ReEncryptFrom),
            granted("kms:ReEncryptTo", Target::DestinationKey, G::ReEncryptTo),
        ],
    ),
    (
        "GenerateDataKey",
        &[granted(
            "kms:GenerateDataKey",
            Target::Key,
            G::GenerateDataKey,
        )],
    ),
    (
        "GenerateDataKeyWithoutPlaintext",
        &[granted(
            "kms:GenerateDataKeyWithoutPlaintext",
            Target::Key,
            G::GenerateDataKeyWithoutPlaintext,
        )],
    ),
    ("GenerateRandom", &[svc("kms:GenerateRandom")]),
    ("PutKeyPolicy", &[key("kms:PutKeyPolicy")]),
    ("GetKeyPolicy", &[key("kms:GetKeyPolicy")]),
    ("ListKeyPolicies", &[key("kms:ListKeyPolicies")]),
    (
        "CreateGrant",
        &[granted("kms:CreateGrant", Target::Key, G::CreateGrant)],
    ),
    ("ListGrants", &[key("kms:ListGrants")]),
    ("ListRetirableGrants", &[svc("kms:ListRetirableGrants")]),
    (
        "RetireGrant",
        &[granted("kms:RetireGrant", Target::Key, G::RetireGrant)],
    ),
    ("RevokeGrant", &[key("kms:RevokeGrant")]),
    ("GetServicePolicy", &[svc("kms:GetServicePolicy")]),
    ("PutServicePolicy", &[svc("kms:PutServicePolicy")]),
];

/// The checks operation `operation` (a `Request::name()`) needs, or `None`
/// for a name kmsd does not know. Every returned check must allow.
///
/// Not in the table, as in AWS: CreateKey with `Tags` also needs
/// `kms:TagResource` (service policy, `Target::Service`).
pub fn requirements(operation: &str) -> Option<&'static [Requirement]> {
    TABLE
        .iter()
        .find(|(name, _)| *name == operation)
        .map(|(_, reqs)| *reqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operation names in kmsd-client's `operations!` table, read from
    /// its source so a new operation cannot be added without a policy entry.
    fn client_operation_names() -> Vec<String> {
        let src = include_str!("../../client/src/messages.rs");
        let start = src.find("operations! {").expect("operations table");
        let body = &src[start..];
        let body = &body[..body.find("\n}").expect("table end")];
        body.lines()
            .filter_map(|l| {
                let l = l.trim();
                let (name, _) = l.split_once('(')?;
                l.contains("->").then(|| name.to_owned())
            })
            .collect()
    }

    #[test]
    fn every_client_operation_has_requirements() {
        let names = client_operation_names();
        assert!(names.len() >= 35, "parsed only {names:?}");
        for name in &names {
            let reqs = requirements(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(!reqs.is_empty(), "{name}");
            for r in reqs {
                assert!(ACTIONS.contains(&r.action), "{name}: {}", r.action);
            }
        }
        assert_eq!(TABLE.len(), names.len(), "table has extra entries");
        assert_eq!(requirements("Frobnicate"), None);
    }

    #[test]
    fn keyless_operations_are_service_scoped() {
        for op in [
            "CreateKey",
            "ListKeys",
            "ListAliases",
            "GenerateRandom",
            "ListRetirableGrants",
            "GetServicePolicy",
            "PutServicePolicy",
        ] {
            let reqs = requirements(op).unwrap();
            assert!(reqs.iter().all(|r| r.target == Target::Service), "{op}");
        }
        for op in ["Encrypt", "PutKeyPolicy", "ListGrants", "TagResource"] {
            assert_eq!(requirements(op).unwrap()[0].target, Target::Key, "{op}");
        }
    }

    #[test]
    fn reencrypt_needs_from_on_source_and_to_on_destination() {
        let r = requirements("ReEncrypt").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].action, r[0].target, r[0].grant_operation),
            ("kms:ReEncryptFrom", Target::Key, Some(G::ReEncryptFrom))
        );
        assert_eq!(
            (r[1].action, r[1].target, r[1].grant_operation),
            (
                "kms:ReEncryptTo",
                Target::DestinationKey,
                Some(G::ReEncryptTo)
            )
        );
        let u = requirements("UpdateAlias").unwrap();
        assert_eq!(
            u.iter().map(|r| r.target).collect::<Vec<_>>(),
            [Target::Key, Target::DestinationKey]
        );
    }

    #[test]
    fn grants_allow_only_crypto_describe_and_grant_ops() {
        let mut grantable: Vec<&str> = TABLE
            .iter()
            .filter(|(_, reqs)| reqs.iter().any(|r| r.grant_operation.is_some()))
            .map(|(name, _)| *name)
            .collect();
        grantable.sort_unstable();
        assert_eq!(
            grantable,
            [
                "CreateGrant",
                "Decrypt",
                "DescribeKey",
                "Encrypt",
                "GenerateDataKey",
                "GenerateDataKeyWithoutPlaintext",
                "ReEncrypt",
                "RetireGrant",
            ]
        );
        for (_, reqs) in TABLE {
            for r in *reqs {
                if let Some(op) = r.grant_operation {
                    assert_eq!(op.action(), r.action);
                }
            }
        }
    }

    #[test]
    fn patterns_match_case_insensitively() {
        let p = |s: &str| ActionPattern::parse(s).unwrap();
        assert!(p("*").matches("kms:Decrypt"));
        assert!(p("kms:*").matches("kms:CreateKey"));
        assert!(p("kms:Generate*").matches("kms:GenerateDataKeyWithoutPlaintext"));
        assert!(p("kms:Generate*").matches("kms:GenerateRandom"));
        assert!(!p("kms:Generate*").matches("kms:Decrypt"));
        assert!(p("kms:ReEncrypt*").matches("kms:ReEncryptTo"));
        assert!(p("KMS:decrypt").matches("kms:Decrypt"));
        assert!(p("kms:?ncrypt").matches("kms:Encrypt"));
        assert!(!p("kms:Encrypt").matches("kms:EncryptX"));
        assert!(p("kms:Sign").matches("kms:Sign"));
        assert_eq!(p("kms:List*").as_str(), "kms:List*");
    }

    #[test]
    fn bad_patterns_say_why() {
        let cases = [
            ("Decrypt", "no service prefix"),
            ("s3:GetObject", "service prefix \"s3\""),
            ("iam:*", "service prefix \"iam\""),
            ("kms:", "not an action name"),
            ("kms:Get Key", "not an action name"),
            ("kms:Encrpyt", "matches no KMS action"),
            ("kms:Foo*", "matches no KMS action"),
        ];
        for (text, why) in cases {
            let e = ActionPattern::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
