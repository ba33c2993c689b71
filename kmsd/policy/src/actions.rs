//! Actions (`kms:Decrypt`, ...), the action patterns policies use
//! (`kms:*`, `kms:Generate*`), and [`Requirement`]: one check an operation
//! needs. Each operation declares its requirements next to its handler in
//! kmsd (`kmsd::service::operation`), built with [`on_service`],
//! [`on_key`] and [`granted`].

use crate::glob::glob_match_ignore_case;
use crate::grants::GrantOperation;

/// Every action a policy may name: kmsd's own operations and the other AWS
/// KMS actions, accepted so policies written for AWS parse (they never
/// match a kmsd request). `kms:GetServicePolicy`, `kms:PutServicePolicy` and
/// the access key actions (`kms:CreateAccessKey`, ...) are kmsd's (AWS has
/// IAM instead).
pub const ACTIONS: &[&str] = &[
    "kms:CancelKeyDeletion",
    "kms:ConnectCustomKeyStore",
    "kms:CreateAccessKey",
    "kms:CreateAlias",
    "kms:CreateCustomKeyStore",
    "kms:CreateGrant",
    "kms:CreateKey",
    "kms:Decrypt",
    "kms:DeleteAccessKey",
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
    "kms:ListAccessKeys",
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
    "kms:UpdateAccessKey",
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

/// A check on no key (the service policy decides).
pub const fn on_service(action: &'static str) -> Requirement {
    Requirement {
        action,
        target: Target::Service,
        grant_operation: None,
    }
}

/// A check on the key the request names that no grant can allow.
pub const fn on_key(action: &'static str) -> Requirement {
    Requirement {
        action,
        target: Target::Key,
        grant_operation: None,
    }
}

/// A check that grant operation `op` can also allow.
pub const fn granted(action: &'static str, target: Target, op: GrantOperation) -> Requirement {
    Requirement {
        action,
        target,
        grant_operation: Some(op),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
