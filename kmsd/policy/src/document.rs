//! Policy documents: parsing and validation of the AWS policy grammar, as
//! kmsd accepts it for key policies and the service policy.
//!
//! ```json
//! {
//!   "Version": "2012-10-17",
//!   "Statement": [{
//!     "Sid": "AliceUsesTheKey",
//!     "Effect": "Allow",
//!     "Principal": {"Unix": ["user:alice", "group:storage"]},
//!     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
//!     "Resource": "*",
//!     "Condition": {"StringEquals": {"kms:EncryptionContext:app": "db"}}
//!   }]
//! }
//! ```

use crate::actions::ActionPattern;
use crate::condition::Condition;
use crate::directory::Directory;
use crate::error::Error;
use crate::glob::glob_match;
use crate::json::Json;
use crate::principal::Principal;

/// The largest policy document accepted, in bytes (as in AWS).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;

const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A statement's `Action` (matches the listed actions) or `NotAction`
/// (matches every action except the listed ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actions {
    Action(Vec<ActionPattern>),
    NotAction(Vec<ActionPattern>),
}

impl Actions {
    pub fn matches(&self, action: &str) -> bool {
        match self {
            Actions::Action(p) => p.iter().any(|p| p.matches(action)),
            Actions::NotAction(p) => !p.iter().any(|p| p.matches(action)),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principals: Vec<Principal>,
    pub actions: Actions,
    /// `*` or ARN patterns (`*`/`?` wildcards), matched against the key ARN,
    /// or against `*` for operations that name no key.
    pub resources: Vec<String>,
    /// All must hold.
    pub conditions: Vec<Condition>,
    /// The account ids its `AWS` principals name (checked against kmsd's
    /// own when the policy is put: [`Policy::check_account`]).
    pub aws_accounts: Vec<String>,
}

impl Statement {
    pub fn matches_resource(&self, resource: &str) -> bool {
        self.resources.iter().any(|r| glob_match(r, resource))
    }
}

/// A parsed, valid policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Parses and validates a policy. Errors are
    /// [`Error::MalformedPolicy`] with a message naming the statement and
    /// the problem.
    pub fn parse(text: &str) -> Result<Policy, Error> {
        parse(text).map_err(Error::MalformedPolicy)
    }

    /// Checks that every `user:NAME` and `group:NAME` the policy names
    /// exists, as AWS rejects policies naming principals that do not exist.
    /// Call it when a policy is put, not when a stored one is loaded (a
    /// user deleted since then just matches nobody).
    pub fn check_principals(&self, dir: &dyn Directory) -> Result<(), Error> {
        for (i, st) in self.statements.iter().enumerate() {
            for p in &st.principals {
                p.check_name(dir)
                    .map_err(|e| Error::MalformedPolicy(format!("{}: {e}", label(i, &st.sid))))?;
            }
        }
        Ok(())
    }

    /// Refuses a policy whose `AWS` principals name an account other than
    /// kmsd's own (`account`): kmsd has one account, and another's
    /// principals would otherwise be read as local ones.
    pub fn check_account(&self, account: &str) -> Result<(), Error> {
        for (i, st) in self.statements.iter().enumerate() {
            if let Some(other) = st.aws_accounts.iter().find(|a| *a != account) {
                return Err(Error::MalformedPolicy(format!(
                    "{}: AWS principal names account {other}; this kmsd is account {account}",
                    label(i, &st.sid)
                )));
            }
        }
        Ok(())
    }
}

fn label(index: usize, sid: &Option<String>) -> String {
    match sid {
        Some(sid) => format!("Statement {} (Sid \"{sid}\")", index + 1),
        None => format!("Statement {}", index + 1),
    }
}

fn parse(text: &str) -> Result<Policy, String> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(format!(
            "the policy is {} bytes; the limit is {MAX_POLICY_BYTES}",
            text.len()
        ));
    }
    let Json::Object(fields) = Json::parse(text)? else {
        return Err("the policy must be a JSON object".into());
    };
    let (mut id, mut statements) = (None, None);
    for (name, value) in fields {
        match name.as_str() {
            "Version" => match &value {
                Json::String(v) if VERSIONS.contains(&v.as_str()) => {}
                other => {
                    return Err(format!(
                        "Version must be \"2012-10-17\" or \"2008-10-17\", not {}",
                        show(other)
                    ));
                }
            },
            "Id" => id = Some(string("Id", value)?),
            "Statement" => statements = Some(value),
            other => {
                return Err(format!(
                    "unknown top-level field \"{other}\" (expected Version, Id, Statement)"
                ));
            }
        }
    }
    let list = match statements {
        None => return Err("missing Statement".into()),
        Some(Json::Array(list)) if list.is_empty() => return Err("Statement is empty".into()),
        Some(Json::Array(list)) => list,
        Some(obj @ Json::Object(_)) => vec![obj],
        Some(other) => {
            return Err(format!(
                "Statement must be an object or a list of objects, not {}",
                other.type_name()
            ));
        }
    };
    let statements = list
        .into_iter()
        .enumerate()
        .map(|(i, s)| statement(i, s))
        .collect::<Result<_, _>>()?;
    Ok(Policy { id, statements })
}

fn statement(index: usize, json: Json) -> Result<Statement, String> {
    let Json::Object(fields) = json else {
        return Err(format!(
            "Statement {} must be an object, not {}",
            index + 1,
            json.type_name()
        ));
    };
    let sid = match fields.iter().find(|(k, _)| k == "Sid") {
        Some((_, Json::String(s))) => Some(s.clone()),
        Some((_, other)) => {
            return Err(format!(
                "Statement {}: Sid must be a string, not {}",
                index + 1,
                other.type_name()
            ));
        }
        None => None,
    };
    let at = label(index, &sid);
    let err = |msg: String| format!("{at}: {msg}");
    let (mut effect, mut principals, mut actions, mut resources, mut conditions) =
        (None, None, None, None, Vec::new());
    let mut aws_accounts = Vec::new();
    for (name, value) in fields {
        match name.as_str() {
            "Sid" => {}
            "Effect" => effect = Some(parse_effect(value).map_err(err)?),
            "Principal" => {
                principals = Some(parse_principal(value, &mut aws_accounts).map_err(err)?)
            }
            "Action" | "NotAction" => {
                if actions.is_some() {
                    return Err(err("give Action or NotAction, not both".into()));
                }
                let patterns = strings(&name, value)
                    .and_then(|list| list.iter().map(|a| ActionPattern::parse(a)).collect())
                    .map_err(err)?;
                actions = Some(if name == "Action" {
                    Actions::Action(patterns)
                } else {
                    Actions::NotAction(patterns)
                });
            }
            "Resource" => resources = Some(parse_resources(value).map_err(err)?),
            "Condition" => conditions = parse_conditions(value).map_err(err)?,
            "NotPrincipal" | "NotResource" => {
                return Err(err(format!(
                    "{name} is not supported; use Principal or Resource with a Deny statement \
                     or a Condition"
                )));
            }
            other => {
                return Err(err(format!(
                    "unknown field \"{other}\" (expected Sid, Effect, Principal, Action, \
                     NotAction, Resource, Condition)"
                )));
            }
        }
    }
    Ok(Statement {
        effect: effect.ok_or_else(|| err("missing Effect".into()))?,
        principals: principals.ok_or_else(|| err("missing Principal".into()))?,
        actions: actions.ok_or_else(|| err("missing Action".into()))?,
        resources: resources.ok_or_else(|| err("missing Resource".into()))?,
        conditions,
        aws_accounts,
        sid,
    })
}

fn parse_effect(value: Json) -> Result<Effect, String> {
    match &value {
        Json::String(s) if s == "Allow" => Ok(Effect::Allow),
        Json::String(s) if s == "Deny" => Ok(Effect::Deny),
        other => Err(format!(
            "unknown Effect {}; expected \"Allow\" or \"Deny\"",
            show(other)
        )),
    }
}

/// An `AWS` principal, as IAM writes them, in kmsd's terms: `*`; an
/// account (`123456789012` or `arn:aws:iam::123456789012:root`) is
/// [`Principal::Account`]; `arn:aws:iam::123456789012:user/NAME` is
/// `user:NAME` (the name an access key's caller has: docs/AUTHZ.md). The
/// account is returned too, to be checked against kmsd's.
fn parse_aws_principal(p: &str) -> Result<(Principal, Option<String>), String> {
    let account_id = |a: &str| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit());
    if p == "*" {
        return Ok((Principal::Any, None));
    }
    if account_id(p) {
        return Ok((Principal::Account, Some(p.to_string())));
    }
    if let Some(rest) = p.strip_prefix("arn:aws:iam::")
        && let Some((account, resource)) = rest.split_once(':')
        && account_id(account)
    {
        if resource == "root" {
            return Ok((Principal::Account, Some(account.to_string())));
        }
        if let Some(name) = resource.strip_prefix("user/")
            && !name.is_empty()
            && !name.contains('/')
        {
            return Ok((Principal::User(name.to_string()), Some(account.to_string())));
        }
    }
    Err(format!(
        "AWS principal \"{p}\" is not supported: kmsd takes \"*\", an account \
         (ACCOUNT or arn:aws:iam::ACCOUNT:root) or a user (arn:aws:iam::ACCOUNT:user/NAME), \
         or {{\"Unix\": [\"uid:N\", \"user:NAME\", \"group:NAME\", ...]}}"
    ))
}

fn parse_principal(value: Json, aws_accounts: &mut Vec<String>) -> Result<Vec<Principal>, String> {
    let fields = match value {
        Json::String(s) if s == "*" => return Ok(vec![Principal::Any]),
        Json::Object(fields) if !fields.is_empty() => fields,
        Json::Object(_) => return Err("Principal is empty".into()),
        other => {
            return Err(format!(
                "Principal must be \"*\" or {{\"Unix\": [...]}}, not {}",
                show(&other)
            ));
        }
    };
    let mut out = Vec::new();
    for (kind, v) in fields {
        match kind.as_str() {
            "Unix" => {
                for p in strings("Principal Unix", v)? {
                    out.push(p.parse::<Principal>()?);
                }
            }
            "AWS" => {
                for p in strings("Principal AWS", v)? {
                    let (principal, account) = parse_aws_principal(&p)?;
                    aws_accounts.extend(account);
                    out.push(principal);
                }
            }
            other => {
                return Err(format!(
                    "principal type \"{other}\" is not supported; use \"Unix\""
                ));
            }
        }
    }
    Ok(out)
}

fn parse_resources(value: Json) -> Result<Vec<String>, String> {
    let list = strings("Resource", value)?;
    for r in &list {
        if r != "*" && !r.starts_with("arn:") {
            return Err(format!(
                "Resource \"{r}\" must be \"*\" or a key ARN pattern (arn:...)"
            ));
        }
    }
    Ok(list)
}

fn parse_conditions(value: Json) -> Result<Vec<Condition>, String> {
    let Json::Object(operators) = value else {
        return Err(format!(
            "Condition must be an object, not {}",
            value.type_name()
        ));
    };
    let mut out = Vec::new();
    for (operator, keys) in operators {
        let Json::Object(keys) = keys else {
            return Err(format!(
                "Condition {operator} must map condition keys to values, not {}",
                keys.type_name()
            ));
        };
        if keys.is_empty() {
            return Err(format!("Condition {operator} names no condition key"));
        }
        for (key, values) in keys {
            let values = condition_values(&operator, &key, values)?;
            out.push(Condition::new(&operator, &key, values)?);
        }
    }
    Ok(out)
}

fn condition_values(operator: &str, key: &str, value: Json) -> Result<Vec<String>, String> {
    let scalar = |v: Json| match v {
        Json::String(s) | Json::Number(s) => Ok(s),
        Json::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "Condition {operator} {key}: values must be strings, numbers or booleans, not {}",
            other.type_name()
        )),
    };
    match value {
        Json::Array(items) => items.into_iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

/// A string, or a non-empty list of strings.
fn strings(field: &str, value: Json) -> Result<Vec<String>, String> {
    match value {
        Json::String(s) => Ok(vec![s]),
        Json::Array(items) if items.is_empty() => Err(format!("{field} is empty")),
        Json::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Json::String(s) => Ok(s),
                other => Err(format!(
                    "{field} must hold strings, not {}",
                    other.type_name()
                )),
            })
            .collect(),
        other => Err(format!(
            "{field} must be a string or a list of strings, not {}",
            other.type_name()
        )),
    }
}

fn string(field: &str, value: Json) -> Result<String, String> {
    match value {
        Json::String(s) => Ok(s),
        other => Err(format!(
            "{field} must be a string, not {}",
            other.type_name()
        )),
    }
}

/// A JSON value in an error message: strings quoted, others by type.
fn show(v: &Json) -> String {
    match v {
        Json::String(s) => format!("\"{s}\""),
        other => other.type_name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::BaseOperator;
    use crate::directory::FakeDirectory;

    /// A policy with one statement whose fields are `fields` (JSON text).
    fn one(fields: &str) -> String {
        format!(r#"{{"Version": "2012-10-17", "Statement": [{{{fields}}}]}}"#)
    }

    const OK: &str = r#""Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*""#;

    #[test]
    fn parses_the_full_grammar() {
        let text = r#"{
          "Version": "2012-10-17",
          "Id": "key-policy-1",
          "Statement": [
            {
              "Sid": "Use",
              "Effect": "Allow",
              "Principal": {"Unix": ["user:alice", "group:storage", "uid:1000", "gid:5"]},
              "Action": ["kms:Encrypt", "kms:Generate*"],
              "Resource": "*",
              "Condition": {
                "StringEquals": {"kms:EncryptionContext:app": ["db", "web"]},
                "ForAllValues:StringLike": {"kms:EncryptionContextKeys": "a*"},
                "NumericLessThan": {"kms:CallerUid": 2000},
                "Bool": {"kms:BypassPolicyLockoutSafetyCheck": false}
              }
            },
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "NotAction": "kms:Describe*",
             "Resource": ["arn:aws:kms:*:*:key/*"]}
          ]
        }"#;
        let p = Policy::parse(text).unwrap();
        assert_eq!(p.id.as_deref(), Some("key-policy-1"));
        assert_eq!(p.statements.len(), 2);
        let s = &p.statements[0];
        assert_eq!(s.sid.as_deref(), Some("Use"));
        assert_eq!(s.effect, Effect::Allow);
        assert_eq!(
            s.principals,
            [
                Principal::User("alice".into()),
                Principal::Group("storage".into()),
                Principal::Uid(1000),
                Principal::Gid(5),
            ]
        );
        assert!(s.actions.matches("kms:GenerateDataKey"));
        assert!(!s.actions.matches("kms:Decrypt"));
        assert_eq!(s.conditions.len(), 4);
        assert_eq!(s.conditions[0].values, ["db", "web"]);
        assert_eq!(s.conditions[2].operator.base, BaseOperator::NumericLessThan);
        assert_eq!(s.conditions[2].values, ["2000"]);
        assert_eq!(s.conditions[3].values, ["false"]);
        let d = &p.statements[1];
        assert_eq!(d.effect, Effect::Deny);
        assert_eq!(d.principals, [Principal::Any]);
        assert!(d.actions.matches("kms:Decrypt"));
        assert!(!d.actions.matches("kms:DescribeKey"));
        assert!(d.matches_resource("arn:aws:kms:local:000000000000:key/abc"));
        assert!(!d.matches_resource("*"));
    }

    #[test]
    fn single_statement_object_and_optional_version() {
        let p = Policy::parse(&format!(r#"{{"Statement": {{{OK}}}}}"#)).unwrap();
        assert_eq!(p.statements.len(), 1);
        assert!(p.statements[0].matches_resource("anything"));
        assert!(Policy::parse(&one(OK).replace("2012-10-17", "2008-10-17")).is_ok());
        assert!(Policy::parse(&one(&format!(r#""Sid": "", {OK}"#))).is_ok());
        assert!(Policy::parse(&one(&format!(r#"{OK}, "Condition": {{}}"#))).is_ok());
        let p = Policy::parse(&one(
            r#""Effect": "Allow", "Principal": {"Unix": "account"},
            "Action": "*", "Resource": "*""#,
        ))
        .unwrap();
        assert_eq!(p.statements[0].principals, [Principal::Account]);
    }

    /// Malformed policies and a fragment of the message each must give.
    #[test]
    fn malformed_policies_name_the_problem() {
        let big = format!(
            r#"{{"Statement": {{{OK}, "Sid": "{}"}}}}"#,
            "x".repeat(MAX_POLICY_BYTES)
        );
        let table: Vec<(String, &str)> = vec![
            ("not json".into(), "not valid JSON"),
            ("".into(), "not valid JSON"),
            (big, "the limit is 32768"),
            ("[]".into(), "must be a JSON object"),
            (r#"{"Version": "2012-10-17"}"#.into(), "missing Statement"),
            (r#"{"Statement": []}"#.into(), "Statement is empty"),
            (r#"{"Statement": "x"}"#.into(), "not a string"),
            (
                r#"{"Statement": [1]}"#.into(),
                "Statement 1 must be an object, not a number",
            ),
            (
                format!(r#"{{"Version": "2020-01-01", "Statement": {{{OK}}}}}"#),
                "Version must be",
            ),
            (
                format!(r#"{{"Version": 1, "Statement": {{{OK}}}}}"#),
                "not a number",
            ),
            (
                format!(r#"{{"Id": [], "Statement": {{{OK}}}}}"#),
                "Id must be a string",
            ),
            (
                format!(r#"{{"Statements": [], "Statement": {{{OK}}}}}"#),
                "unknown top-level field \"Statements\"",
            ),
            (
                format!(r#"{{"Statement": {{{OK}, "Effect": "Deny"}}}}"#),
                "duplicate field \"Effect\"",
            ),
            (
                one(r#""Principal": "*", "Action": "kms:*", "Resource": "*""#),
                "Statement 1: missing Effect",
            ),
            (
                one(r#""Effect": "Allow", "Action": "kms:*", "Resource": "*""#),
                "missing Principal",
            ),
            (
                one(r#""Effect": "Allow", "Principal": "*", "Resource": "*""#),
                "missing Action",
            ),
            (
                one(r#""Effect": "Allow", "Principal": "*", "Action": "kms:*""#),
                "missing Resource",
            ),
            (
                one(
                    r#""Sid": "S", "Effect": "Alow", "Principal": "*", "Action": "kms:*", "Resource": "*""#,
                ),
                "Statement 1 (Sid \"S\"): unknown Effect \"Alow\"",
            ),
            (
                one(r#""Effect": "allow", "Principal": "*", "Action": "kms:*", "Resource": "*""#),
                "unknown Effect",
            ),
            (
                one(r#""Effect": true, "Principal": "*", "Action": "kms:*", "Resource": "*""#),
                "unknown Effect a boolean",
            ),
            (one(&format!(r#"{OK}, "Sid": 3"#)), "Sid must be a string"),
            (
                one(&format!(r#"{OK}, "Extra": 1"#)),
                "unknown field \"Extra\"",
            ),
            (
                one(&format!(r#"{OK}, "NotAction": "kms:Decrypt""#)),
                "not both",
            ),
            (
                one(&format!(r#"{OK}, "NotPrincipal": "*""#)),
                "NotPrincipal is not supported",
            ),
            (
                one(&format!(r#"{OK}, "NotResource": "*""#)),
                "NotResource is not supported",
            ),
            (
                one(
                    r#""Effect": "Allow", "Principal": "alice", "Action": "kms:*", "Resource": "*""#,
                ),
                "Principal must be \"*\" or",
            ),
            (
                one(r#""Effect": "Allow", "Principal": {}, "Action": "kms:*", "Resource": "*""#),
                "Principal is empty",
            ),
            (
                one(
                    r#""Effect": "Allow", "Principal": {"Unix": []}, "Action": "kms:*", "Resource": "*""#,
                ),
                "Principal Unix is empty",
            ),
            (
                one(
                    r#""Effect": "Allow", "Principal": {"Unix": [1000]}, "Action": "kms:*", "Resource": "*""#,
                ),
                "must hold strings, not a number",
            ),
            (
                one(
                    r#""Effect": "Allow", "Principal": {"Unix": "alice"}, "Action": "kms:*", "Resource": "*""#,
                ),
                "invalid principal \"alice\"",
            ),
            (
                one(
                    r#""Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*", "Resource": "*""#,
                ),
                "AWS principal \"arn:aws:iam::1:root\" is not supported",
            ),
            (
                one(
                    r#""Effect": "Allow", "Principal": {"Service": "x"}, "Action": "kms:*", "Resource": "*""#,
                ),
                "principal type \"Service\" is not supported",
            ),
            (
                one(r#""Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*""#),
                "service prefix \"s3\"",
            ),
            (
                one(
                    r#""Effect": "Allow", "Principal": "*", "Action": "kms:Encrpyt", "Resource": "*""#,
                ),
                "matches no KMS action",
            ),
            (
                one(r#""Effect": "Allow", "Principal": "*", "Action": [], "Resource": "*""#),
                "Action is empty",
            ),
            (
                one(r#""Effect": "Allow", "Principal": "*", "Action": {}, "Resource": "*""#),
                "Action must be a string or a list of strings, not an object",
            ),
            (
                one(
                    r#""Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "key/1""#,
                ),
                "Resource \"key/1\" must be \"*\" or a key ARN",
            ),
            (
                one(&format!(r#"{OK}, "Condition": []"#)),
                "Condition must be an object",
            ),
            (
                one(&format!(r#"{OK}, "Condition": {{"StringEquals": "x"}}"#)),
                "must map condition keys",
            ),
            (
                one(&format!(r#"{OK}, "Condition": {{"StringEquals": {{}}}}"#)),
                "names no condition key",
            ),
            (
                one(&format!(
                    r#"{OK}, "Condition": {{"StringEquals": {{"kms:CallerUid": []}}}}"#
                )),
                "has no values",
            ),
            (
                one(&format!(
                    r#"{OK}, "Condition": {{"StringEquals": {{"kms:CallerUid": {{}}}}}}"#
                )),
                "values must be strings, numbers or booleans",
            ),
            (
                one(&format!(
                    r#"{OK}, "Condition": {{"StringEquals": {{"kms:CallerUid": [null]}}}}"#
                )),
                "not null",
            ),
            (
                one(&format!(
                    r#"{OK}, "Condition": {{"DateEquals": {{"kms:CallerUid": "1"}}}}"#
                )),
                "unknown condition operator \"DateEquals\"",
            ),
            (
                one(&format!(
                    r#"{OK}, "Condition": {{"StringEquals": {{"aws:username": "x"}}}}"#
                )),
                "unknown condition key \"aws:username\"",
            ),
        ];
        for (text, want) in &table {
            match Policy::parse(text) {
                Ok(_) => panic!("accepted: {text}"),
                Err(Error::MalformedPolicy(msg)) => {
                    assert!(msg.contains(want), "want {want:?} in {msg:?} for {text}")
                }
                Err(other) => panic!("wrong error kind {other:?}"),
            }
        }
    }

    #[test]
    fn errors_name_the_statement_by_position() {
        let text =
            format!(r#"{{"Statement": [{{{OK}}}, {{"Sid": "Second", "Effect": "Maybe"}}]}}"#);
        let e = Policy::parse(&text).unwrap_err();
        assert!(
            e.message().starts_with("Statement 2 (Sid \"Second\"): "),
            "{e}"
        );
    }

    #[test]
    fn exactly_the_size_limit_is_accepted() {
        let base = format!(r#"{{"Statement": {{{OK}, "Sid": ""}}}}"#);
        let pad = MAX_POLICY_BYTES - base.len();
        let text = base.replace(r#""Sid": """#, &format!(r#""Sid": "{}""#, "x".repeat(pad)));
        assert_eq!(text.len(), MAX_POLICY_BYTES);
        assert!(Policy::parse(&text).is_ok());
    }

    #[test]
    fn principal_names_must_exist_when_checked() {
        let dir = FakeDirectory::new()
            .user("alice", 1000, 100)
            .group("storage", 200, &[]);
        let ok = one(
            r#""Effect": "Allow", "Principal": {"Unix": ["user:alice", "group:storage", "uid:5"]},
            "Action": "kms:*", "Resource": "*""#,
        );
        assert!(Policy::parse(&ok).unwrap().check_principals(&dir).is_ok());
        let bad = one(
            r#""Sid": "X", "Effect": "Allow", "Principal": {"Unix": ["user:alice", "group:nope"]},
            "Action": "kms:*", "Resource": "*""#,
        );
        let e = Policy::parse(&bad)
            .unwrap()
            .check_principals(&dir)
            .unwrap_err();
        assert_eq!(
            e,
            Error::MalformedPolicy("Statement 1 (Sid \"X\"): no group named \"nope\"".into())
        );
    }

    #[test]
    fn aws_principals_map_to_accounts_and_users() {
        let doc = |principal: &str| {
            format!(
                r#"{{"Statement": [{{"Effect": "Allow", "Principal": {{"AWS": {principal}}},
                   "Action": "kms:*", "Resource": "*"}}]}}"#
            )
        };
        let p = Policy::parse(&doc(
            r#"["*", "111122223333", "arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/alice"]"#,
        ))
        .expect("AWS principal forms");
        assert_eq!(
            p.statements[0].principals,
            [
                Principal::Any,
                Principal::Account,
                Principal::Account,
                Principal::User("alice".into())
            ]
        );
        assert!(p.check_account("111122223333").is_ok());
        let e = p
            .check_account("000000000000")
            .expect_err("another account");
        assert!(e.to_string().contains("111122223333"), "{e}");
        for bad in [
            r#""arn:aws:iam::1:root""#,
            r#""arn:aws:iam::111122223333:role/x""#,
            r#""arn:aws:iam::111122223333:user/""#,
            r#""arn:aws:iam::111122223333:user/a/b""#,
            r#""alice""#,
        ] {
            assert!(Policy::parse(&doc(bad)).is_err(), "{bad}");
        }
    }
}
