//! Conditions: operators, condition keys, the request context the keys are
//! read from, and the IAM evaluation rules.
//!
//! A `Condition` block is `{operator: {key: value or [values]}}`. Every
//! operator and every key in a block must hold (AND); the values of one key
//! are alternatives (OR), and for negated operators (`StringNotEquals`,
//! `StringNotLike`, ...) the request value must match none of them.
//!
//! A key missing from the request makes a condition false, except: negated
//! operators are true, `...IfExists` is true, `ForAllValues:` is true and
//! `Null: true` is true.

use crate::glob::glob_match;
use crate::grants::{Grant, GrantOperation};
use crate::principal::Caller;
use kmsd_client::{EncryptionContext, GrantConstraints};

/// What a request brings to condition evaluation beyond the caller. Fill
/// only what the operation has; missing parts are "absent" keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The request's encryption context (ReEncrypt: the source context when
    /// checking `kms:ReEncryptFrom`, the destination context for
    /// `kms:ReEncryptTo`). Empty = absent.
    pub encryption_context: EncryptionContext,
    /// CreateGrant: the new grant's operations (`kms:GrantOperations`).
    pub grant_operations: Option<Vec<GrantOperation>>,
    /// CreateGrant: the new grant's constraints (a grant passing on
    /// CreateGrant checks them).
    pub grant_constraints: Option<GrantConstraints>,
    /// CreateGrant: `kms:GranteePrincipal`.
    pub grantee_principal: Option<String>,
    /// CreateGrant: `kms:RetiringPrincipal`.
    pub retiring_principal: Option<String>,
    /// RetireGrant: the grant being retired.
    pub target_grant_id: Option<String>,
    /// CreateKey and PutKeyPolicy: `kms:BypassPolicyLockoutSafetyCheck`.
    pub bypass_policy_lockout_safety_check: Option<bool>,
}

impl RequestContext {
    /// For Encrypt, Decrypt, GenerateDataKey* and each half of ReEncrypt.
    pub fn with_encryption_context(ec: &EncryptionContext) -> RequestContext {
        RequestContext {
            encryption_context: ec.clone(),
            ..RequestContext::default()
        }
    }

    /// For CreateGrant, from the validated new grant. As in AWS,
    /// `kms:EncryptionContext:*` keys read the new grant's constraint.
    pub fn for_create_grant(new: &Grant) -> RequestContext {
        let ec = new.constraints.as_ref().and_then(|c| {
            c.encryption_context_equals
                .as_ref()
                .or(c.encryption_context_subset.as_ref())
        });
        RequestContext {
            encryption_context: ec.cloned().unwrap_or_default(),
            grant_operations: Some(new.operations.clone()),
            grant_constraints: new.constraints.clone(),
            grantee_principal: Some(new.grantee_principal.to_string()),
            retiring_principal: new.retiring_principal.as_ref().map(|p| p.to_string()),
            ..RequestContext::default()
        }
    }

    /// For RetireGrant of grant `grant_id`.
    pub fn for_retire_grant(grant_id: &str) -> RequestContext {
        RequestContext {
            target_grant_id: Some(grant_id.to_owned()),
            ..RequestContext::default()
        }
    }
}

/// The operator without its `ForAllValues:`/`ForAnyValue:` prefix and
/// `IfExists` suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    Bool,
    Null,
}

impl BaseOperator {
    const ALL: [(&'static str, BaseOperator); 14] = [
        ("StringEquals", Self::StringEquals),
        ("StringNotEquals", Self::StringNotEquals),
        ("StringEqualsIgnoreCase", Self::StringEqualsIgnoreCase),
        ("StringNotEqualsIgnoreCase", Self::StringNotEqualsIgnoreCase),
        ("StringLike", Self::StringLike),
        ("StringNotLike", Self::StringNotLike),
        ("NumericEquals", Self::NumericEquals),
        ("NumericNotEquals", Self::NumericNotEquals),
        ("NumericLessThan", Self::NumericLessThan),
        ("NumericLessThanEquals", Self::NumericLessThanEquals),
        ("NumericGreaterThan", Self::NumericGreaterThan),
        ("NumericGreaterThanEquals", Self::NumericGreaterThanEquals),
        ("Bool", Self::Bool),
        ("Null", Self::Null),
    ];

    fn is_negated(self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            StringNotEquals | StringNotEqualsIgnoreCase | StringNotLike | NumericNotEquals
        )
    }

    fn is_numeric(self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            NumericEquals
                | NumericNotEquals
                | NumericLessThan
                | NumericLessThanEquals
                | NumericGreaterThan
                | NumericGreaterThanEquals
        )
    }

    /// Whether request value `v` matches policy value `p` (for negated
    /// operators: the positive form; the caller negates).
    fn matches(self, v: &str, p: &str) -> bool {
        use BaseOperator::*;
        let num = || Some((v.trim().parse::<f64>().ok()?, p.trim().parse::<f64>().ok()?));
        match self {
            StringEquals | StringNotEquals => v == p,
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                v.to_lowercase() == p.to_lowercase()
            }
            StringLike | StringNotLike => glob_match(p, v),
            NumericEquals | NumericNotEquals => num().is_some_and(|(a, b)| a == b),
            NumericLessThan => num().is_some_and(|(a, b)| a < b),
            NumericLessThanEquals => num().is_some_and(|(a, b)| a <= b),
            NumericGreaterThan => num().is_some_and(|(a, b)| a > b),
            NumericGreaterThanEquals => num().is_some_and(|(a, b)| a >= b),
            Bool => v.eq_ignore_ascii_case(p),
            Null => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOperator {
    /// `ForAllValues:` every request value matches (true when none).
    ForAllValues,
    /// `ForAnyValue:` at least one request value matches.
    ForAnyValue,
}

/// A condition operator as written: `ForAnyValue:StringLikeIfExists`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operator {
    pub base: BaseOperator,
    pub set: Option<SetOperator>,
    pub if_exists: bool,
}

impl Operator {
    pub fn parse(text: &str) -> Result<Operator, String> {
        let (set, rest) = if let Some(r) = text.strip_prefix("ForAllValues:") {
            (Some(SetOperator::ForAllValues), r)
        } else if let Some(r) = text.strip_prefix("ForAnyValue:") {
            (Some(SetOperator::ForAnyValue), r)
        } else {
            (None, text)
        };
        let (if_exists, name) = match rest.strip_suffix("IfExists") {
            Some(n) => (true, n),
            None => (false, rest),
        };
        let Some(&(_, base)) = BaseOperator::ALL.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = BaseOperator::ALL.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "unknown condition operator \"{text}\"; supported: {} (with optional \
                 IfExists suffix and ForAllValues:/ForAnyValue: prefix)",
                names.join(", ")
            ));
        };
        if base == BaseOperator::Null && (if_exists || set.is_some()) {
            return Err(format!(
                "condition operator \"{text}\": Null takes no IfExists suffix or set prefix"
            ));
        }
        Ok(Operator {
            base,
            set,
            if_exists,
        })
    }
}

/// A condition key kmsd fills in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConditionKey {
    /// `kms:EncryptionContext:NAME`: the value of pair NAME (an exact key
    /// match first, else a match ignoring case, as AWS ignores case here).
    EncryptionContext(String),
    /// `kms:EncryptionContextKeys` (multi-valued): the context's keys.
    EncryptionContextKeys,
    /// `kms:CallerUid`: the caller's uid, in decimal.
    CallerUid,
    /// `kms:CallerGid`: the caller's primary gid, in decimal.
    CallerGid,
    /// `kms:GrantOperations` (multi-valued, CreateGrant).
    GrantOperations,
    /// `kms:GranteePrincipal` (CreateGrant).
    GranteePrincipal,
    /// `kms:RetiringPrincipal` (CreateGrant).
    RetiringPrincipal,
    /// `kms:BypassPolicyLockoutSafetyCheck` (CreateKey, PutKeyPolicy).
    BypassPolicyLockoutSafetyCheck,
}

const EC_PREFIX: &str = "kms:encryptioncontext:";

impl ConditionKey {
    /// Parses a key; the names ignore case, as IAM's do, but the NAME part
    /// of `kms:EncryptionContext:NAME` is kept as written.
    pub fn parse(text: &str) -> Result<ConditionKey, String> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with(EC_PREFIX) {
            let name = &text[EC_PREFIX.len()..];
            if name.is_empty() {
                return Err(format!(
                    "condition key \"{text}\" names no encryption context key"
                ));
            }
            return Ok(ConditionKey::EncryptionContext(name.to_owned()));
        }
        Ok(match lower.as_str() {
            "kms:encryptioncontextkeys" => ConditionKey::EncryptionContextKeys,
            "kms:calleruid" => ConditionKey::CallerUid,
            "kms:callergid" => ConditionKey::CallerGid,
            "kms:grantoperations" => ConditionKey::GrantOperations,
            "kms:granteeprincipal" => ConditionKey::GranteePrincipal,
            "kms:retiringprincipal" => ConditionKey::RetiringPrincipal,
            "kms:bypasspolicylockoutsafetycheck" => ConditionKey::BypassPolicyLockoutSafetyCheck,
            _ => {
                return Err(format!(
                    "unknown condition key \"{text}\"; supported: kms:EncryptionContext:NAME, \
                     kms:EncryptionContextKeys, kms:CallerUid, kms:CallerGid, \
                     kms:GrantOperations, kms:GranteePrincipal, kms:RetiringPrincipal, \
                     kms:BypassPolicyLockoutSafetyCheck"
                ));
            }
        })
    }

    pub fn is_multi_valued(&self) -> bool {
        matches!(
            self,
            ConditionKey::EncryptionContextKeys | ConditionKey::GrantOperations
        )
    }

    /// The key's values in this request; `None` when absent (an empty set
    /// counts as absent).
    fn values(&self, caller: &Caller, ctx: &RequestContext) -> Option<Vec<String>> {
        let one = |v: Option<String>| v.map(|v| vec![v]);
        let ec = &ctx.encryption_context;
        let out = match self {
            ConditionKey::EncryptionContext(name) => one(ec.get(name).cloned().or_else(|| {
                let lower = name.to_lowercase();
                ec.iter()
                    .find(|(k, _)| k.to_lowercase() == lower)
                    .map(|(_, v)| v.clone())
            })),
            ConditionKey::EncryptionContextKeys => Some(ec.keys().cloned().collect()),
            ConditionKey::CallerUid => one(Some(caller.uid.to_string())),
            ConditionKey::CallerGid => one(Some(caller.gid.to_string())),
            ConditionKey::GrantOperations => ctx
                .grant_operations
                .as_ref()
                .map(|ops| ops.iter().map(|o| o.as_str().to_owned()).collect()),
            ConditionKey::GranteePrincipal => one(ctx.grantee_principal.clone()),
            ConditionKey::RetiringPrincipal => one(ctx.retiring_principal.clone()),
            ConditionKey::BypassPolicyLockoutSafetyCheck => one(ctx
                .bypass_policy_lockout_safety_check
                .map(|b| b.to_string())),
        };
        out.filter(|v| !v.is_empty())
    }
}

/// One `operator: {key: values}` entry of a Condition block.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub operator: Operator,
    pub key: ConditionKey,
    /// The policy's values, as strings (JSON numbers and booleans are
    /// written out: `1000`, `true`).
    pub values: Vec<String>,
}

impl Condition {
    /// Validates one condition. `values` must not be empty.
    pub fn new(operator: &str, key: &str, values: Vec<String>) -> Result<Condition, String> {
        let op = Operator::parse(operator)?;
        let k = ConditionKey::parse(key)?;
        if values.is_empty() {
            return Err(format!("condition {operator} {key} has no values"));
        }
        if k.is_multi_valued() && op.set.is_none() && op.base != BaseOperator::Null {
            return Err(format!(
                "condition key {key} is multi-valued: write ForAnyValue:{operator} or \
                 ForAllValues:{operator}"
            ));
        }
        for v in &values {
            let ok = match op.base {
                BaseOperator::Bool | BaseOperator::Null => {
                    v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
                }
                b if b.is_numeric() => v.trim().parse::<f64>().is_ok_and(f64::is_finite),
                _ => true,
            };
            if !ok {
                let want = if op.base.is_numeric() {
                    "a number"
                } else {
                    "true or false"
                };
                return Err(format!(
                    "condition {operator} {key}: value \"{v}\" is not {want}"
                ));
            }
        }
        Ok(Condition {
            operator: op,
            key: k,
            values,
        })
    }

    /// Whether the condition holds for this caller and request.
    pub fn holds(&self, caller: &Caller, ctx: &RequestContext) -> bool {
        let present = self.key.values(caller, ctx);
        let op = self.operator;
        if op.base == BaseOperator::Null {
            let absent = present.is_none();
            return self
                .values
                .iter()
                .any(|v| v.eq_ignore_ascii_case("true") == absent);
        }
        let Some(request_values) = present else {
            return op.if_exists
                || match op.set {
                    Some(SetOperator::ForAllValues) => true,
                    Some(SetOperator::ForAnyValue) => false,
                    None => op.base.is_negated(),
                };
        };
        let one = |v: &String| {
            let any = self.values.iter().any(|p| op.base.matches(v, p));
            any != op.base.is_negated()
        };
        match op.set {
            Some(SetOperator::ForAnyValue) => request_values.iter().any(one),
            Some(SetOperator::ForAllValues) | None => request_values.iter().all(one),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::FakeDirectory;

    fn caller() -> Caller {
        let dir = FakeDirectory::new().user("alice", 1000, 100);
        Caller::resolve(1000, 100, None, &dir)
    }

    fn ctx(pairs: &[(&str, &str)]) -> RequestContext {
        let ec = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        RequestContext::with_encryption_context(&ec)
    }

    /// Whether `operator key values` holds in `c`.
    fn holds(operator: &str, key: &str, values: &[&str], c: &RequestContext) -> bool {
        let values = values.iter().map(|v| (*v).to_owned()).collect();
        Condition::new(operator, key, values)
            .unwrap_or_else(|e| panic!("{e}"))
            .holds(&caller(), c)
    }

    const APP: &str = "kms:EncryptionContext:app";

    #[test]
    fn string_equals_and_not_equals() {
        let db = ctx(&[("app", "db")]);
        let none = ctx(&[]);
        assert!(holds("StringEquals", APP, &["db"], &db));
        assert!(
            holds("StringEquals", APP, &["web", "db"], &db),
            "values are OR"
        );
        assert!(!holds("StringEquals", APP, &["DB"], &db), "case-sensitive");
        assert!(
            !holds("StringEquals", APP, &["db"], &none),
            "absent → false"
        );
        assert!(!holds("StringNotEquals", APP, &["db"], &db));
        assert!(
            !holds("StringNotEquals", APP, &["web", "db"], &db),
            "must match none"
        );
        assert!(holds("StringNotEquals", APP, &["web"], &db));
        assert!(
            holds("StringNotEquals", APP, &["db"], &none),
            "negated + absent → true"
        );
    }

    #[test]
    fn ignore_case_variants() {
        let db = ctx(&[("app", "DB")]);
        assert!(holds("StringEqualsIgnoreCase", APP, &["db"], &db));
        assert!(!holds("StringNotEqualsIgnoreCase", APP, &["db"], &db));
        assert!(holds("StringNotEqualsIgnoreCase", APP, &["web"], &db));
    }

    #[test]
    fn string_like_and_not_like() {
        let c = ctx(&[("app", "db-prod-1")]);
        assert!(holds("StringLike", APP, &["db-*"], &c));
        assert!(holds("StringLike", APP, &["db-prod-?"], &c));
        assert!(!holds("StringLike", APP, &["web-*"], &c));
        assert!(!holds("StringLike", APP, &["db-prod-??"], &c));
        assert!(holds("StringNotLike", APP, &["web-*"], &c));
        assert!(!holds("StringNotLike", APP, &["web-*", "*prod*"], &c));
        assert!(!holds("StringLike", APP, &["*"], &ctx(&[])));
        assert!(holds("StringNotLike", APP, &["*"], &ctx(&[])));
    }

    #[test]
    fn context_key_name_ignores_case_but_exact_wins() {
        assert!(holds(
            "StringEquals",
            "kms:EncryptionContext:APP",
            &["db"],
            &ctx(&[("app", "db")])
        ));
        assert!(holds(
            "StringEquals",
            "KMS:encryptioncontext:app",
            &["db"],
            &ctx(&[("App", "db")])
        ));
        let both = ctx(&[("APP", "x"), ("app", "db")]);
        assert!(holds("StringEquals", APP, &["db"], &both));
    }

    #[test]
    fn numeric_operators_on_caller_ids() {
        let c = ctx(&[]);
        let uid = "kms:CallerUid";
        assert!(holds("NumericEquals", uid, &["1000"], &c));
        assert!(!holds("NumericNotEquals", uid, &["1000"], &c));
        assert!(holds("NumericNotEquals", uid, &["0"], &c));
        assert!(holds("NumericLessThan", uid, &["1001"], &c));
        assert!(!holds("NumericLessThan", uid, &["1000"], &c));
        assert!(holds("NumericLessThanEquals", uid, &["1000"], &c));
        assert!(holds("NumericGreaterThan", uid, &["999"], &c));
        assert!(!holds("NumericGreaterThan", uid, &["1000"], &c));
        assert!(holds("NumericGreaterThanEquals", uid, &["1000"], &c));
        assert!(holds("StringEquals", "kms:CallerGid", &["100"], &c));
        assert!(holds("StringEquals", "kms:CallerUid", &["1000"], &c));
        // A non-numeric request value never matches a numeric operator.
        assert!(!holds(
            "NumericEquals",
            APP,
            &["1"],
            &ctx(&[("app", "one")])
        ));
        assert!(holds("NumericEquals", APP, &["1"], &ctx(&[("app", "1.0")])));
    }

    #[test]
    fn bool_and_null() {
        let mut c = ctx(&[("app", "db")]);
        let bypass = "kms:BypassPolicyLockoutSafetyCheck";
        assert!(!holds("Bool", bypass, &["true"], &c), "absent");
        assert!(holds("Null", bypass, &["true"], &c));
        assert!(!holds("Null", bypass, &["false"], &c));
        c.bypass_policy_lockout_safety_check = Some(true);
        assert!(holds("Bool", bypass, &["true"], &c));
        assert!(holds("Bool", bypass, &["TRUE"], &c));
        assert!(!holds("Bool", bypass, &["false"], &c));
        assert!(!holds("Null", bypass, &["true"], &c));
        assert!(holds("Null", bypass, &["false"], &c));
        assert!(holds("Null", APP, &["false"], &c));
        assert!(holds("Null", "kms:EncryptionContext:other", &["true"], &c));
        assert!(holds(
            "Null",
            "kms:EncryptionContextKeys",
            &["true"],
            &ctx(&[])
        ));
        assert!(holds("Null", "kms:GrantOperations", &["true"], &c));
    }

    #[test]
    fn if_exists() {
        let none = ctx(&[]);
        let web = ctx(&[("app", "web")]);
        assert!(holds("StringEqualsIfExists", APP, &["db"], &none));
        assert!(!holds("StringEqualsIfExists", APP, &["db"], &web));
        assert!(holds("StringLikeIfExists", APP, &["w*"], &web));
        assert!(holds(
            "NumericLessThanIfExists",
            "kms:CallerUid",
            &["2000"],
            &none
        ));
        assert!(holds(
            "BoolIfExists",
            "kms:BypassPolicyLockoutSafetyCheck",
            &["true"],
            &none
        ));
    }

    #[test]
    fn for_all_values_on_context_keys() {
        let keys = "kms:EncryptionContextKeys";
        let op = "ForAllValues:StringEquals";
        assert!(holds(op, keys, &["app", "env"], &ctx(&[("app", "1")])));
        assert!(holds(
            op,
            keys,
            &["app", "env"],
            &ctx(&[("app", "1"), ("env", "2")])
        ));
        assert!(!holds(
            op,
            keys,
            &["app", "env"],
            &ctx(&[("app", "1"), ("x", "2")])
        ));
        assert!(
            holds(op, keys, &["app"], &ctx(&[])),
            "vacuously true when absent"
        );
        assert!(holds(
            "ForAllValues:StringLike",
            keys,
            &["a*"],
            &ctx(&[("ab", ""), ("ac", "")])
        ));
        assert!(holds(
            "ForAllValues:StringNotEquals",
            keys,
            &["secret"],
            &ctx(&[("a", "")])
        ));
        assert!(!holds(
            "ForAllValues:StringNotEquals",
            keys,
            &["a"],
            &ctx(&[("a", ""), ("b", "")])
        ));
    }

    #[test]
    fn for_any_value_on_context_keys() {
        let keys = "kms:EncryptionContextKeys";
        let op = "ForAnyValue:StringEquals";
        assert!(holds(op, keys, &["app"], &ctx(&[("app", "1"), ("x", "2")])));
        assert!(!holds(op, keys, &["app"], &ctx(&[("x", "2")])));
        assert!(!holds(op, keys, &["app"], &ctx(&[])), "false when absent");
        assert!(holds(
            "ForAnyValue:StringNotLike",
            keys,
            &["a*"],
            &ctx(&[("ab", ""), ("x", "")])
        ));
        assert!(!holds(
            "ForAnyValue:StringNotLike",
            keys,
            &["a*"],
            &ctx(&[("ab", "")])
        ));
        assert!(holds(
            "ForAnyValue:StringEqualsIfExists",
            keys,
            &["x"],
            &ctx(&[])
        ));
    }

    #[test]
    fn set_operators_on_single_valued_keys_treat_them_as_one_value() {
        assert!(holds(
            "ForAnyValue:StringEquals",
            APP,
            &["db"],
            &ctx(&[("app", "db")])
        ));
        assert!(holds("ForAllValues:StringEquals", APP, &["db"], &ctx(&[])));
    }

    #[test]
    fn grant_keys() {
        let mut c = RequestContext {
            grant_operations: Some(vec![GrantOperation::Decrypt, GrantOperation::Encrypt]),
            grantee_principal: Some("user:bob".into()),
            ..RequestContext::default()
        };
        let ops = "kms:GrantOperations";
        assert!(holds(
            "ForAllValues:StringEquals",
            ops,
            &["Decrypt", "Encrypt", "DescribeKey"],
            &c
        ));
        assert!(!holds("ForAllValues:StringEquals", ops, &["Decrypt"], &c));
        assert!(holds("ForAnyValue:StringEquals", ops, &["Encrypt"], &c));
        assert!(holds(
            "StringEquals",
            "kms:GranteePrincipal",
            &["user:bob"],
            &c
        ));
        assert!(holds("StringLike", "kms:GranteePrincipal", &["user:*"], &c));
        assert!(!holds(
            "StringEquals",
            "kms:RetiringPrincipal",
            &["user:bob"],
            &c
        ));
        c.retiring_principal = Some("uid:0".into());
        assert!(holds(
            "StringEquals",
            "kms:RetiringPrincipal",
            &["uid:0"],
            &c
        ));
    }

    #[test]
    fn bad_conditions_say_why() {
        let cases = [
            (
                "StringEqual",
                APP,
                vec!["x"],
                "unknown condition operator \"StringEqual\"",
            ),
            ("ArnLike", APP, vec!["x"], "unknown condition operator"),
            (
                "ForSomeValues:StringEquals",
                APP,
                vec!["x"],
                "unknown condition operator",
            ),
            ("NullIfExists", APP, vec!["true"], "Null takes no IfExists"),
            (
                "ForAnyValue:Null",
                APP,
                vec!["true"],
                "Null takes no IfExists",
            ),
            (
                "StringEquals",
                "aws:SourceIp",
                vec!["x"],
                "unknown condition key \"aws:SourceIp\"",
            ),
            (
                "StringEquals",
                "kms:ViaService",
                vec!["x"],
                "unknown condition key",
            ),
            (
                "StringEquals",
                "kms:EncryptionContext:",
                vec!["x"],
                "names no encryption context key",
            ),
            ("StringEquals", APP, vec![], "has no values"),
            (
                "StringEquals",
                "kms:EncryptionContextKeys",
                vec!["a"],
                "multi-valued",
            ),
            (
                "StringLike",
                "kms:GrantOperations",
                vec!["a"],
                "multi-valued",
            ),
            (
                "NumericEquals",
                "kms:CallerUid",
                vec!["abc"],
                "is not a number",
            ),
            (
                "NumericEquals",
                "kms:CallerUid",
                vec!["inf"],
                "is not a number",
            ),
            (
                "Bool",
                "kms:BypassPolicyLockoutSafetyCheck",
                vec!["yes"],
                "not true or false",
            ),
            ("Null", APP, vec!["1"], "not true or false"),
        ];
        for (op, key, values, want) in cases {
            let values = values.into_iter().map(String::from).collect();
            let e = Condition::new(op, key, values).unwrap_err();
            assert!(e.contains(want), "{op} {key}: {e}");
        }
    }

    #[test]
    fn context_constructors() {
        let c = RequestContext::for_retire_grant("g1");
        assert_eq!(c.target_grant_id.as_deref(), Some("g1"));
        assert!(c.encryption_context.is_empty());
    }
}
