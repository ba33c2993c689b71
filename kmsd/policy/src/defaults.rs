//! The policies kmsd uses when none is given: the default key policy
//! (CreateKey without `Policy`) and the default service policy (first start).
//! See docs/AUTHZ.md for why these defaults.

use serde_json::json;

/// `Id` of the default key policy.
pub const DEFAULT_KEY_POLICY_ID: &str = "kmsd-default-key-policy";
/// `Id` of the default service policy.
pub const DEFAULT_SERVICE_POLICY_ID: &str = "kmsd-default-service-policy";

/// The key policy of a key created without one: the `account` principal
/// gets `kms:*` (so the service policy counts for this key, and the
/// administrator has full access), and the administrator and the creating
/// user get `kms:*` by uid. Pretty JSON.
pub fn default_key_policy(admin_uid: u32, creator_uid: u32) -> String {
    let mut owners = vec![format!("uid:{admin_uid}")];
    if creator_uid != admin_uid {
        owners.push(format!("uid:{creator_uid}"));
    }
    let policy = json!({
        "Version": "2012-10-17",
        "Id": DEFAULT_KEY_POLICY_ID,
        "Statement": [
            {
                "Sid": "Enable service policy",
                "Effect": "Allow",
                "Principal": {"Unix": "account"},
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": "Allow administrator and key creator",
                "Effect": "Allow",
                "Principal": {"Unix": owners},
                "Action": "kms:*",
                "Resource": "*"
            }
        ]
    });
    pretty(&policy)
}

/// The service policy kmsd starts with: the administrator may do
/// everything; every user may ListKeys, ListAliases and GenerateRandom; only
/// the administrator may CreateKey. Pretty JSON.
pub fn default_service_policy(admin_uid: u32) -> String {
    let policy = json!({
        "Version": "2012-10-17",
        "Id": DEFAULT_SERVICE_POLICY_ID,
        "Statement": [
            {
                "Sid": "Administrator has full access",
                "Effect": "Allow",
                "Principal": {"Unix": format!("uid:{admin_uid}")},
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": "Everyone may list and get random bytes",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["kms:ListKeys", "kms:ListAliases", "kms:GenerateRandom"],
                "Resource": "*"
            }
        ]
    });
    pretty(&policy)
}

fn pretty(v: &serde_json::Value) -> String {
    // Serializing a `Value` cannot fail (string keys, no non-finite floats).
    serde_json::to_string_pretty(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::RequestContext;
    use crate::directory::FakeDirectory;
    use crate::document::Policy;
    use crate::evaluate::{Decision, KeyScope, Query, Source, evaluate, lockout_check};
    use crate::principal::Caller;

    const ADMIN: u32 = 0;
    const ARN: &str = "arn:aws:kms:local:000000000000:key/k1";

    fn caller(uid: u32) -> Caller {
        let dir = FakeDirectory::new()
            .user("root", 0, 0)
            .user("alice", 1000, 100)
            .user("bob", 1001, 100);
        Caller::resolve(uid, if uid == 0 { 0 } else { 100 }, None, &dir)
    }

    fn decide(uid: u32, action: &str, key_policy: Option<&Policy>, svc: &Policy) -> Decision {
        let ctx = RequestContext::default();
        let c = caller(uid);
        evaluate(&Query {
            caller: &c,
            admin_uid: ADMIN,
            action,
            key: key_policy.map(|policy| KeyScope {
                key_id: "k1",
                arn: ARN,
                policy,
                grants: &[],
            }),
            service_policy: svc,
            context: &ctx,
        })
    }

    #[test]
    fn default_policies_parse_and_are_pretty() {
        let kp = default_key_policy(0, 1000);
        assert!(kp.contains("\n  \"Statement\""), "{kp}");
        assert_eq!(
            Policy::parse(&kp).unwrap().id.as_deref(),
            Some(DEFAULT_KEY_POLICY_ID)
        );
        let sp = default_service_policy(0);
        assert_eq!(
            Policy::parse(&sp).unwrap().id.as_deref(),
            Some(DEFAULT_SERVICE_POLICY_ID)
        );
        // Creator = administrator: listed once.
        let same = default_key_policy(0, 0);
        assert_eq!(same.matches("uid:0").count(), 1, "{same}");
    }

    #[test]
    fn default_key_policy_gives_admin_and_creator_everything_and_others_nothing() {
        let svc = Policy::parse(&default_service_policy(ADMIN)).unwrap();
        let kp = Policy::parse(&default_key_policy(ADMIN, 1000)).unwrap();
        for action in ["kms:Decrypt", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"] {
            assert!(
                decide(0, action, Some(&kp), &svc).is_allowed(),
                "admin {action}"
            );
            assert_eq!(
                decide(1000, action, Some(&kp), &svc),
                Decision::Allow(Source::KeyPolicy {
                    sid: Some("Allow administrator and key creator".into())
                })
            );
            assert_eq!(
                decide(1001, action, Some(&kp), &svc),
                Decision::ImplicitDeny
            );
        }
        assert!(lockout_check(&kp, &caller(1000), ADMIN, "k1", ARN, &svc).is_ok());
        assert!(lockout_check(&kp, &caller(0), ADMIN, "k1", ARN, &svc).is_ok());
    }

    #[test]
    fn default_service_policy_counts_for_default_keys() {
        // A service policy statement giving bob Decrypt on every key works
        // for keys with the default key policy.
        let mut svc = default_service_policy(ADMIN);
        svc = svc.replacen(
            "\"Statement\": [",
            "\"Statement\": [{\"Sid\": \"Bob\", \"Effect\": \"Allow\", \
             \"Principal\": {\"Unix\": \"uid:1001\"}, \"Action\": \"kms:Decrypt\", \
             \"Resource\": \"*\"},",
            1,
        );
        let svc = Policy::parse(&svc).unwrap();
        let kp = Policy::parse(&default_key_policy(ADMIN, 1000)).unwrap();
        assert_eq!(
            decide(1001, "kms:Decrypt", Some(&kp), &svc),
            Decision::Allow(Source::ServicePolicy {
                sid: Some("Bob".into())
            })
        );
        assert_eq!(
            decide(1001, "kms:Encrypt", Some(&kp), &svc),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn default_service_policy_for_keyless_operations() {
        let svc = Policy::parse(&default_service_policy(ADMIN)).unwrap();
        for (action, admin, user) in [
            ("kms:CreateKey", true, false),
            ("kms:ListKeys", true, true),
            ("kms:ListAliases", true, true),
            ("kms:GenerateRandom", true, true),
            ("kms:ListRetirableGrants", true, false),
            ("kms:GetServicePolicy", true, false),
            ("kms:PutServicePolicy", true, false),
        ] {
            assert_eq!(
                decide(0, action, None, &svc).is_allowed(),
                admin,
                "admin {action}"
            );
            assert_eq!(
                decide(1000, action, None, &svc).is_allowed(),
                user,
                "user {action}"
            );
        }
    }
}
