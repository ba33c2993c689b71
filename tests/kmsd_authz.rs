//! Authorization against a real kmsd, by callers that really are other
//! users: each caller is this test binary re-run in a child process that
//! dropped to another uid, gid and group list before connecting, so kmsd
//! sees it through SO_PEERCRED and the user and group databases.
//!
//! The matrix: every operation × scenarios (allowed by the key policy in
//! each principal form, denied by default, denied explicitly by the key
//! policy or the service policy, allowed by a grant, grant constraints met
//! and not met, retired and revoked grants, key policy conditions, the
//! service policy through `account`). Each cell gets its own key(s), so
//! operations cannot disturb each other. Expected decisions are derived
//! from the scenario definitions by `expected` (the rules of docs/AUTHZ.md
//! restated for these scenarios), never from what kmsd answered. All
//! mismatches are collected and listed.
//!
//! Then: the lockout safety check, malformed and oversized policies, grant
//! tokens, passing grants on, retiring grants, group membership read per
//! connection, keys created by users.
//!
//! Each family of checks is its own test (`<family>::decisions`) with its
//! own kmsd, users and groups, and lists every wrong decision it found.
//!
//! Needs root (to create users and switch to them); fails otherwise.

mod common;
#[path = "common/identity.rs"]
mod identity;

use common::KmsdProcess;
use identity::{RunAs, TestAccounts};
use kmsd_client::*;
use serde_json::{Value, json};
use std::cell::Cell;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "KMSD_AUTHZ_CHILD";
const CHILD_TEST: &str = "authz_child";
const RESULT_TAG: &str = "AUTHZ-RESULT ";
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------ child

/// The child side: in a normal run it returns at once. Re-run as another
/// user with `KMSD_AUTHZ_CHILD=<job file>`, it sends the job's requests to
/// kmsd over one connection and prints one result line per request.
#[test]
fn authz_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("read the job file");
    let job: Value = serde_json::from_str(&text).expect("job JSON");
    let socket = job["socket"].as_str().expect("job socket");
    let client = Client::connect(socket).expect("connect to kmsd");
    for r in job["requests"].as_array().expect("job requests") {
        let req: Request = serde_json::from_value(r.clone()).expect("a request");
        let line = match call_any(&client, req) {
            Ok(detail) => json!({"ok": true, "detail": detail}),
            Err(ClientError::Kms(e)) => json!({"error": e.kind.name(), "message": e.message}),
            Err(e) => json!({"error": "ClientError", "message": e.to_string()}),
        };
        println!("{RESULT_TAG}{line}");
    }
}

/// Sends any request with the typed client. The result carries the new
/// key's id for CreateKey and the new grant's id for CreateGrant.
fn call_any(c: &Client, r: Request) -> Result<Option<String>, ClientError> {
    let r = match r {
        Request::CreateKey(x) => return c.call(x).map(|m| Some(m.key_metadata.key_id)),
        Request::CreateGrant(x) => return c.call(x).map(|g| Some(g.grant_id)),
        other => other,
    };
    // Every operation, from the one list the client and kmsd use.
    macro_rules! each {
        ($($name:ident($req:ident) -> $resp:ident;)*) => {
            match r { $(Request::$name(x) => c.call(x).map(|_| None),)* }
        };
    }
    kmsd_client::for_each_operation!(each)
}

// ---------------------------------------------------------------- outcomes

/// What one request got: success or an AWS exception.
#[derive(Clone, Debug)]
enum Outcome {
    /// With the new key's or grant's id for CreateKey and CreateGrant.
    Ok(Option<String>),
    Err {
        kind: String,
        message: String,
    },
}

impl Outcome {
    fn of<T>(r: Result<T, ClientError>) -> Outcome {
        match r {
            Ok(_) => Outcome::Ok(None),
            Err(ClientError::Kms(e)) => Outcome::Err {
                kind: e.kind.name().into(),
                message: e.message,
            },
            Err(e) => Outcome::Err {
                kind: "ClientError".into(),
                message: e.to_string(),
            },
        }
    }

    fn parse(line: &str) -> Outcome {
        let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        if v["ok"] == json!(true) {
            return Outcome::Ok(v["detail"].as_str().map(str::to_owned));
        }
        Outcome::Err {
            kind: v["error"].as_str().unwrap_or("unparsable").into(),
            message: v["message"].as_str().unwrap_or(line).into(),
        }
    }

    /// `ok` or the exception name.
    fn kind(&self) -> &str {
        match self {
            Outcome::Ok(_) => "ok",
            Outcome::Err { kind, .. } => kind,
        }
    }

    fn message(&self) -> &str {
        match self {
            Outcome::Ok(_) => "",
            Outcome::Err { message, .. } => message,
        }
    }

    /// The new key's or grant's id.
    fn detail(&self) -> Option<&str> {
        match self {
            Outcome::Ok(d) => d.as_deref(),
            Outcome::Err { .. } => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(_) => f.write_str("ok"),
            Outcome::Err { kind, message } => write!(f, "{kind}: {message}"),
        }
    }
}

/// Collected mismatches.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn add(&mut self, s: String) {
        self.0.push(s);
    }

    /// `got` must be `want` (`ok` or an exception name).
    fn expect(&mut self, label: &str, got: &Outcome, want: &str) {
        if got.kind() != want {
            self.add(format!("{label}: expected {want}, got {got}"));
        }
    }

    fn expect_message(&mut self, label: &str, got: &Outcome, parts: &[&str]) {
        for p in parts {
            if !got.message().contains(p) {
                self.add(format!("{label}: the message should contain {p:?}: {got}"));
            }
        }
    }
}

// ------------------------------------------------------------- identities

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Alice,
    Bob,
    Carol,
}

/// The test's groups. Alice is in `Storage` as a supplementary group (in
/// the group database only: her process drops it), Alice and Bob have
/// `Users` as primary group. Carol's uid and gid are in no database; her
/// process carries `Storage` as a supplementary group, which kmsd counts
/// (SO_PEERGROUPS: a caller is judged by the union of the groups the
/// databases give it and the groups its process holds, so a Deny on any
/// of them holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum G {
    Users,
    Storage,
    CarolGid,
}

/// A principal, as a function of the test's identities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum P {
    User(Who),
    Uid(Who),
    Gid(G),
    Group(G),
}

impl P {
    /// Whether this principal names `who`, per the user and group databases.
    fn names(self, who: Who) -> bool {
        match self {
            P::User(w) | P::Uid(w) => w == who,
            P::Gid(G::Storage) | P::Group(G::Storage) => matches!(who, Who::Alice | Who::Carol),
            P::Gid(G::Users) | P::Group(G::Users) => matches!(who, Who::Alice | Who::Bob),
            P::Gid(G::CarolGid) | P::Group(G::CarolGid) => who == Who::Carol,
        }
    }
}

struct Person {
    run_as: RunAs,
    name: Option<String>,
}

// ------------------------------------------------------------------ world

/// kmsd (socket mode 666 in a traversable directory), the test users and
/// groups, and an administrator client (this process: root).
struct World {
    kmsd: KmsdProcess,
    admin: Client,
    alice: Person,
    bob: Person,
    carol: Person,
    users: (String, u32),
    storage: (String, u32),
    prefix: String,
    seq: Cell<u32>,
    dir: tempfile::TempDir,
    /// Last: users and groups go after kmsd stopped.
    _accounts: TestAccounts,
}

impl World {
    fn new() -> World {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Unique per World: the families run in parallel in one process.
        static WORLDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = WORLDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("kza{:05x}{n:02x}", (std::process::id() ^ nanos) & 0xfffff);
        let mut accounts = TestAccounts::new();
        let users_name = format!("{prefix}u");
        let storage_name = format!("{prefix}s");
        let users_gid = accounts.add_group(&users_name);
        let storage_gid = accounts.add_group(&storage_name);
        let alice_name = format!("{prefix}a");
        let bob_name = format!("{prefix}b");
        let alice_uid = accounts.add_user(&alice_name, &users_name, &[&storage_name]);
        let bob_uid = accounts.add_user(&bob_name, &users_name, &[]);
        let carol_id = identity::unused_id(3_100_000);

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the test dir");
        let kmsd = KmsdProcess::start_at(
            &dir.path().join("state"),
            &dir.path().join("kmsd.sock"),
            &["--socket-mode", "666"],
        );
        let admin = kmsd.client();
        World {
            kmsd,
            admin,
            alice: Person {
                run_as: RunAs {
                    uid: alice_uid,
                    gid: users_gid,
                    process_groups: vec![],
                },
                name: Some(alice_name),
            },
            bob: Person {
                run_as: RunAs {
                    uid: bob_uid,
                    gid: users_gid,
                    process_groups: vec![users_gid],
                },
                name: Some(bob_name),
            },
            carol: Person {
                run_as: RunAs {
                    uid: carol_id,
                    gid: carol_id,
                    process_groups: vec![carol_id, storage_gid],
                },
                name: None,
            },
            users: (users_name, users_gid),
            storage: (storage_name, storage_gid),
            prefix,
            seq: Cell::new(0),
            dir,
            _accounts: accounts,
        }
    }

    fn person(&self, who: Who) -> &Person {
        match who {
            Who::Alice => &self.alice,
            Who::Bob => &self.bob,
            Who::Carol => &self.carol,
        }
    }

    fn uid(&self, who: Who) -> u32 {
        self.person(who).run_as.uid
    }

    /// How kmsd names the caller in denials: `uid:N (user:NAME)`.
    fn caller_text(&self, who: Who) -> String {
        let p = self.person(who);
        match &p.name {
            Some(n) => format!("uid:{} (user:{n})", p.run_as.uid),
            None => format!("uid:{}", p.run_as.uid),
        }
    }

    fn gid(&self, g: G) -> u32 {
        match g {
            G::Users => self.users.1,
            G::Storage => self.storage.1,
            G::CarolGid => self.carol.run_as.gid,
        }
    }

    fn principal(&self, p: P) -> String {
        match p {
            P::User(w) => format!(
                "user:{}",
                self.person(w).name.as_deref().expect("a named user")
            ),
            P::Uid(w) => format!("uid:{}", self.uid(w)),
            P::Gid(g) => format!("gid:{}", self.gid(g)),
            P::Group(G::Users) => format!("group:{}", self.users.0),
            P::Group(G::Storage) => format!("group:{}", self.storage.0),
            P::Group(G::CarolGid) => panic!("carol's gid has no name"),
        }
    }

    fn next(&self) -> u32 {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        n
    }

    fn fresh_alias(&self) -> String {
        format!("alias/{}-{}", self.prefix, self.next())
    }

    /// Runs `requests` as `who` in a child process, one connection.
    fn run_as(&self, who: Who, requests: &[Request]) -> Vec<Outcome> {
        self.run_as_ids(&self.person(who).run_as, &format!("{who:?}"), requests)
    }

    /// Runs `requests` with the ids `ids` in a child process, one
    /// connection.
    fn run_as_ids(&self, ids: &RunAs, who: &str, requests: &[Request]) -> Vec<Outcome> {
        let path = self.dir.path().join(format!("job-{}.json", self.next()));
        let reqs: Vec<Value> = requests
            .iter()
            .map(|r| serde_json::to_value(r).expect("request to JSON"))
            .collect();
        let job = json!({"socket": self.kmsd.socket, "requests": reqs});
        std::fs::write(&path, job.to_string()).expect("write the job file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .expect("chmod the job file");
        let path_text = path.to_string_lossy().into_owned();
        let out =
            identity::rerun_test_as(ids, CHILD_TEST, &[(CHILD_ENV, &path_text)], CHILD_TIMEOUT)
                .unwrap_or_else(|e| panic!("child as {who}: {e}"));
        let results: Vec<Outcome> = out
            .stdout
            .lines()
            .filter_map(|l| l.find(RESULT_TAG).map(|i| &l[i + RESULT_TAG.len()..]))
            .map(Outcome::parse)
            .collect();
        assert!(
            out.status.success() && results.len() == requests.len(),
            "child as {who} failed ({}; {} of {} results)\nstdout:\n{}\nstderr:\n{}",
            out.status,
            results.len(),
            requests.len(),
            out.stdout,
            out.stderr
        );
        results
    }

    /// An administrator call that must succeed (test setup).
    fn admin<O: Operation>(&self, op: O) -> O::Output {
        self.admin
            .call(op)
            .unwrap_or_else(|e| panic!("setup {}: {e}", std::any::type_name::<O>()))
    }

    /// A key with `policy` (the default policy when `None`), made by the
    /// administrator; (key id, ARN).
    fn key(&self, description: &str, policy: Option<String>) -> (String, String) {
        let md = self
            .admin(CreateKeyRequest {
                description: Some(description.into()),
                policy,
                ..Default::default()
            })
            .key_metadata;
        (md.key_id, md.arn)
    }

    /// A grant made by the administrator: (grant id, token).
    fn grant(
        &self,
        key_id: &str,
        grantee: &str,
        retiring: Option<&str>,
        ops: &[&str],
        constraints: Option<GrantConstraints>,
    ) -> (String, String) {
        let r = self.admin(CreateGrantRequest {
            key_id: key_id.into(),
            grantee_principal: grantee.into(),
            retiring_principal: retiring.map(str::to_owned),
            operations: ops.iter().map(|s| s.to_string()).collect(),
            constraints,
            name: None,
            grant_tokens: vec![],
        });
        (r.grant_id, r.grant_token)
    }

    fn encrypt(&self, key_id: &str, ctx: &EncryptionContext) -> Blob {
        self.admin(EncryptRequest {
            key_id: key_id.into(),
            plaintext: SecretBytes::from_slice(b"authz matrix"),
            encryption_context: ctx.clone(),
            grant_tokens: vec![],
        })
        .ciphertext_blob
    }
}

// ---------------------------------------------------------------- policies

fn stmt(sid: &str, effect: &str, principal: &str, action: Value) -> Value {
    json!({
        "Sid": sid,
        "Effect": effect,
        "Principal": {"Unix": principal},
        "Action": action,
        "Resource": "*",
    })
}

fn policy(statements: Vec<Value>) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// The administrator's statement every test policy carries, so setup works.
fn admin_stmt() -> Value {
    stmt("Admin", "Allow", "uid:0", json!("kms:*"))
}

fn ec(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ------------------------------------------------------------- operations

/// The matrix rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    CreateKey,
    ListKeys,
    ListAliases,
    GenerateRandom,
    ListRetirableGrants,
    GetServicePolicy,
    PutServicePolicy,
    DescribeKey,
    Encrypt,
    Decrypt,
    ReEncrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    EnableKey,
    DisableKey,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
    EnableKeyRotation,
    DisableKeyRotation,
    GetKeyRotationStatus,
    RotateKeyOnDemand,
    ListKeyRotations,
    CreateAlias,
    UpdateAlias,
    DeleteAlias,
    TagResource,
    UntagResource,
    ListResourceTags,
    PutKeyPolicy,
    GetKeyPolicy,
    ListKeyPolicies,
    CreateGrant,
    ListGrants,
    RetireGrant,
    RevokeGrant,
}

const SERVICE_OPS: [Op; 7] = [
    Op::CreateKey,
    Op::ListKeys,
    Op::ListAliases,
    Op::GenerateRandom,
    Op::ListRetirableGrants,
    Op::GetServicePolicy,
    Op::PutServicePolicy,
];

const KEY_OPS: [Op; 28] = [
    Op::DescribeKey,
    Op::Encrypt,
    Op::Decrypt,
    Op::ReEncrypt,
    Op::GenerateDataKey,
    Op::GenerateDataKeyWithoutPlaintext,
    Op::EnableKey,
    Op::DisableKey,
    Op::ScheduleKeyDeletion,
    Op::CancelKeyDeletion,
    Op::EnableKeyRotation,
    Op::DisableKeyRotation,
    Op::GetKeyRotationStatus,
    Op::RotateKeyOnDemand,
    Op::ListKeyRotations,
    Op::CreateAlias,
    Op::UpdateAlias,
    Op::DeleteAlias,
    Op::TagResource,
    Op::UntagResource,
    Op::ListResourceTags,
    Op::PutKeyPolicy,
    Op::GetKeyPolicy,
    Op::ListKeyPolicies,
    Op::CreateGrant,
    Op::ListGrants,
    Op::RetireGrant,
    Op::RevokeGrant,
];

/// Which key an authorization check is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum On {
    NoKey,
    /// The key the request names (ReEncrypt: the source key).
    Key,
    /// ReEncrypt's destination key, UpdateAlias's new target.
    Dest,
}

/// The grant operations kmsd supports (a matrix grant holds all of them).
const GRANT_OPS: [&str; 9] = [
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
];

impl Op {
    /// The checks of docs/AUTHZ.md "Operations and actions", in order.
    fn checks(self) -> Vec<(String, On)> {
        let name = format!("{self:?}");
        match self {
            Op::ReEncrypt => vec![
                ("kms:ReEncryptFrom".into(), On::Key),
                ("kms:ReEncryptTo".into(), On::Dest),
            ],
            Op::UpdateAlias => vec![
                ("kms:UpdateAlias".into(), On::Key),
                ("kms:UpdateAlias".into(), On::Dest),
            ],
            op if SERVICE_OPS.contains(&op) => vec![(format!("kms:{name}"), On::NoKey)],
            _ => vec![(format!("kms:{name}"), On::Key)],
        }
    }

    fn takes_context(self) -> bool {
        matches!(
            self,
            Op::Encrypt
                | Op::Decrypt
                | Op::ReEncrypt
                | Op::GenerateDataKey
                | Op::GenerateDataKeyWithoutPlaintext
        )
    }
}

/// The grant operation an action uses, if grants can give it.
fn grant_operation(action: &str) -> Option<&'static str> {
    let name = action.strip_prefix("kms:")?;
    GRANT_OPS.into_iter().find(|g| *g == name)
}

// -------------------------------------------------------------- scenarios

/// A grant constraint over pairs.
#[derive(Clone, Copy, Debug)]
enum Constraint {
    Subset(&'static [(&'static str, &'static str)]),
    Equals(&'static [(&'static str, &'static str)]),
}

impl Constraint {
    fn to_wire(self) -> GrantConstraints {
        match self {
            Constraint::Subset(p) => GrantConstraints {
                encryption_context_subset: Some(ec(p)),
                encryption_context_equals: None,
            },
            Constraint::Equals(p) => GrantConstraints {
                encryption_context_subset: None,
                encryption_context_equals: Some(ec(p)),
            },
        }
    }

    fn pairs(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Constraint::Subset(p) | Constraint::Equals(p) => p,
        }
    }
}

/// docs/AUTHZ.md "Grants": Subset: every pair of the constraint is in the
/// request; Equals: exactly those pairs.
fn constraint_met(c: Option<Constraint>, request: &[(&str, &str)]) -> bool {
    let has = |pairs: &[(&str, &str)], kv: &(&str, &str)| pairs.contains(kv);
    match c {
        None => true,
        Some(Constraint::Subset(s)) => s.iter().all(|kv| has(request, kv)),
        Some(Constraint::Equals(e)) => {
            e.len() == request.len() && e.iter().all(|kv| has(request, kv))
        }
    }
}

/// docs/AUTHZ.md: a grant passed on must be at least as strict: Equals
/// unchanged; Subset S → Subset or Equals holding every pair of S.
fn at_least_as_strict(parent: Option<Constraint>, child: Option<Constraint>) -> bool {
    match (parent, child) {
        (None, _) => true,
        (Some(Constraint::Equals(p)), Some(Constraint::Equals(c))) => {
            p.len() == c.len() && p.iter().all(|kv| c.contains(kv))
        }
        (Some(Constraint::Equals(_)), _) | (Some(Constraint::Subset(_)), None) => false,
        (Some(Constraint::Subset(p)), Some(c)) => p.iter().all(|kv| c.pairs().contains(kv)),
    }
}

#[derive(Clone, Copy, Debug)]
enum KeyPolicy {
    /// CreateKey without a policy: administrator and `account`.
    Default,
    /// The administrator only, by uid: no `account` statement, so the
    /// service policy does not count for the key.
    AdminOnly,
    /// Administrator, and `kms:*` for the principal.
    Allow(P),
    /// As `Allow`, but only when `kms:EncryptionContext:app` is `db`.
    AllowIf(P),
    /// `kms:*` for `allow`, and a Deny of `kms:*` (Sid `NoStorage`) for `deny`.
    AllowDeny { allow: P, deny: P },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GrantState {
    Live,
    Retired,
    Revoked,
}

/// A grant holding every grant operation.
#[derive(Clone, Copy, Debug)]
struct GrantSpec {
    grantee: P,
    constraint: Option<Constraint>,
    state: GrantState,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    name: &'static str,
    caller: Who,
    policy: KeyPolicy,
    grant: Option<GrantSpec>,
    /// The service policy allows the caller `kms:*` on this scenario's keys.
    via_service: bool,
    /// The encryption context of every request (and of the ciphertexts).
    context: &'static [(&'static str, &'static str)],
    /// The constraints of the grant the cell's CreateGrant asks for.
    pass_on: Option<Constraint>,
}

const DB: &[(&str, &str)] = &[("app", "db")];
const DB_TEAM: &[(&str, &str)] = &[("app", "db"), ("team", "x")];
const WEB: &[(&str, &str)] = &[("app", "web")];

/// Actions the service policy denies Carol (Sid `CarolRestricted`).
const CAROL_DENIED: [&str; 8] = [
    "kms:GenerateRandom",
    "kms:ListAliases",
    "kms:CreateKey",
    "kms:Decrypt",
    "kms:ReEncryptTo",
    "kms:ScheduleKeyDeletion",
    "kms:CreateGrant",
    "kms:GetKeyPolicy",
];
/// The service policy's statement for everyone.
const EVERYONE: [&str; 3] = ["kms:ListKeys", "kms:ListAliases", "kms:GenerateRandom"];

fn scenarios() -> Vec<Scenario> {
    let base = Scenario {
        name: "",
        caller: Who::Alice,
        policy: KeyPolicy::Default,
        grant: None,
        via_service: false,
        context: DB,
        pass_on: Some(Constraint::Subset(DB)),
    };
    let live = |grantee, constraint| {
        Some(GrantSpec {
            grantee,
            constraint,
            state: GrantState::Live,
        })
    };
    vec![
        Scenario {
            name: "allowed by key policy (user:NAME)",
            policy: KeyPolicy::Allow(P::User(Who::Alice)),
            ..base
        },
        Scenario {
            name: "allowed by key policy (uid:N of a uid without name), service policy denies some",
            caller: Who::Carol,
            policy: KeyPolicy::Allow(P::Uid(Who::Carol)),
            ..base
        },
        Scenario {
            name: "allowed by key policy (gid:N, primary group of a uid without name)",
            caller: Who::Carol,
            policy: KeyPolicy::Allow(P::Gid(G::CarolGid)),
            ..base
        },
        Scenario {
            name: "allowed by key policy (group:NAME, supplementary in the database only)",
            policy: KeyPolicy::Allow(P::Group(G::Storage)),
            ..base
        },
        Scenario {
            name: "allowed by key policy (gid:N, supplementary in the database only)",
            policy: KeyPolicy::Allow(P::Gid(G::Storage)),
            ..base
        },
        Scenario {
            name: "allowed by key policy (gid:N, primary)",
            caller: Who::Bob,
            policy: KeyPolicy::Allow(P::Gid(G::Users)),
            ..base
        },
        Scenario {
            name: "denied by default (default key policy)",
            caller: Who::Bob,
            ..base
        },
        Scenario {
            name: "gid:N only in the caller process's own groups counts (SO_PEERGROUPS)",
            caller: Who::Carol,
            policy: KeyPolicy::Allow(P::Gid(G::Storage)),
            ..base
        },
        Scenario {
            name: "denied explicitly (key policy Deny beats Allow and a grant)",
            policy: KeyPolicy::AllowDeny {
                allow: P::User(Who::Alice),
                deny: P::Group(G::Storage),
            },
            grant: live(P::User(Who::Alice), None),
            ..base
        },
        Scenario {
            name: "allowed by grant (user:NAME)",
            grant: live(P::User(Who::Alice), None),
            pass_on: None,
            ..base
        },
        Scenario {
            name: "allowed by grant (gid:N, supplementary)",
            grant: live(P::Gid(G::Storage), None),
            ..base
        },
        Scenario {
            name: "grant constraint met (Subset)",
            grant: live(P::User(Who::Alice), Some(Constraint::Subset(DB))),
            context: DB_TEAM,
            pass_on: Some(Constraint::Subset(DB_TEAM)),
            ..base
        },
        Scenario {
            name: "grant constraint not met (Subset)",
            grant: live(P::User(Who::Alice), Some(Constraint::Subset(DB))),
            context: WEB,
            pass_on: None,
            ..base
        },
        Scenario {
            name: "grant constraint met (Equals)",
            grant: live(P::User(Who::Alice), Some(Constraint::Equals(DB))),
            context: DB,
            pass_on: Some(Constraint::Equals(DB)),
            ..base
        },
        Scenario {
            name: "grant constraint not met (Equals)",
            grant: live(P::User(Who::Alice), Some(Constraint::Equals(DB))),
            context: DB_TEAM,
            pass_on: Some(Constraint::Subset(DB)),
            ..base
        },
        Scenario {
            name: "retired grant",
            grant: Some(GrantSpec {
                grantee: P::User(Who::Alice),
                constraint: None,
                state: GrantState::Retired,
            }),
            ..base
        },
        Scenario {
            name: "revoked grant",
            grant: Some(GrantSpec {
                grantee: P::User(Who::Alice),
                constraint: None,
                state: GrantState::Revoked,
            }),
            ..base
        },
        Scenario {
            name: "key policy condition met",
            policy: KeyPolicy::AllowIf(P::User(Who::Alice)),
            ..base
        },
        Scenario {
            name: "key policy condition not met",
            policy: KeyPolicy::AllowIf(P::User(Who::Alice)),
            context: WEB,
            pass_on: Some(Constraint::Subset(WEB)),
            ..base
        },
        Scenario {
            name: "allowed by the service policy (key policy allows account)",
            via_service: true,
            ..base
        },
        Scenario {
            name: "service policy does not count (key policy without account)",
            policy: KeyPolicy::AdminOnly,
            via_service: true,
            ..base
        },
    ]
}

/// How a request should be decided.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Allow,
    Deny {
        action: String,
        on: On,
        /// `Some(sid)` for an explicit deny.
        explicit: Option<&'static str>,
    },
}

enum Verdict {
    Allow,
    Implicit,
    Explicit(&'static str),
}

/// The service policy's verdict for a caller (`None`: the administrator).
fn service_verdict(who: Option<Who>, action: &str) -> Verdict {
    match who {
        None => Verdict::Allow,
        Some(Who::Carol) if CAROL_DENIED.contains(&action) => Verdict::Explicit("CarolRestricted"),
        _ if EVERYONE.contains(&action) => Verdict::Allow,
        Some(w) if action == "kms:CreateKey" && P::Group(G::Storage).names(w) => Verdict::Allow,
        _ => Verdict::Implicit,
    }
}

/// One check of a key operation in a scenario, by the rules of
/// docs/AUTHZ.md "Evaluation" applied to the scenario's definition.
fn key_verdict(sc: &Scenario, op: Op, action: &str) -> Verdict {
    let who = sc.caller;
    // 1. Explicit deny: the service policy's, then the key policy's.
    if let Verdict::Explicit(sid) = service_verdict(Some(who), action) {
        return Verdict::Explicit(sid);
    }
    if let KeyPolicy::AllowDeny { deny, .. } = sc.policy
        && deny.names(who)
    {
        return Verdict::Explicit("NoStorage");
    }
    // 2. The key policy.
    let policy_condition = match op {
        _ if op.takes_context() => sc.context.contains(&("app", "db")),
        // CreateGrant: kms:EncryptionContext:* reads the new grant's constraint.
        Op::CreateGrant => sc
            .pass_on
            .is_some_and(|c| c.pairs().contains(&("app", "db"))),
        _ => false,
    };
    match sc.policy {
        KeyPolicy::Allow(p) | KeyPolicy::AllowDeny { allow: p, .. } if p.names(who) => {
            return Verdict::Allow;
        }
        KeyPolicy::AllowIf(p) if p.names(who) && policy_condition => return Verdict::Allow,
        _ => {}
    }
    // 3. The service policy, if the key policy allows `account`.
    if sc.via_service && matches!(sc.policy, KeyPolicy::Default) {
        return Verdict::Allow;
    }
    // 4. Grants.
    if let Some(g) = sc.grant
        && g.state == GrantState::Live
        && g.grantee.names(who)
        && grant_operation(action).is_some()
    {
        let allowed = match op {
            // The cell retires the caller's own grant.
            Op::RetireGrant => true,
            Op::CreateGrant => at_least_as_strict(g.constraint, sc.pass_on),
            _ if op.takes_context() => constraint_met(g.constraint, sc.context),
            _ => true,
        };
        if allowed {
            return Verdict::Allow;
        }
    }
    Verdict::Implicit
}

fn to_expect(verdicts: impl IntoIterator<Item = (Verdict, String, On)>) -> Expect {
    for (v, action, on) in verdicts {
        match v {
            Verdict::Allow => continue,
            Verdict::Implicit => {
                return Expect::Deny {
                    action,
                    on,
                    explicit: None,
                };
            }
            Verdict::Explicit(sid) => {
                return Expect::Deny {
                    action,
                    on,
                    explicit: Some(sid),
                };
            }
        }
    }
    Expect::Allow
}

fn expected(sc: &Scenario, op: Op) -> Expect {
    to_expect(
        op.checks()
            .into_iter()
            .map(|(a, on)| (key_verdict(sc, op, &a), a, on)),
    )
}

// ------------------------------------------------------------------ cells

/// What one matrix cell set up: its key(s), and what the request needs.
struct CellKeys {
    id: String,
    arn: String,
    dest: Option<(String, String)>,
    /// The scenario's grant on `id`: (grant id, token).
    grant: Option<(String, String)>,
    ciphertext: Option<Blob>,
    /// A grant for Bob that RevokeGrant (and RetireGrant, when the caller
    /// holds no live grant) targets.
    other_grant: Option<String>,
    alias: Option<String>,
    policy_text: String,
}

impl World {
    fn scenario_policy(&self, p: KeyPolicy) -> Option<String> {
        let all = json!("kms:*");
        match p {
            KeyPolicy::Default => None,
            KeyPolicy::AdminOnly => Some(policy(vec![admin_stmt()])),
            KeyPolicy::Allow(who) => Some(policy(vec![
                admin_stmt(),
                stmt("Caller", "Allow", &self.principal(who), all),
            ])),
            KeyPolicy::AllowIf(who) => {
                let mut s = stmt("CallerIfDb", "Allow", &self.principal(who), all);
                s["Condition"] = json!({"StringEquals": {"kms:EncryptionContext:app": "db"}});
                Some(policy(vec![admin_stmt(), s]))
            }
            KeyPolicy::AllowDeny { allow, deny } => Some(policy(vec![
                admin_stmt(),
                stmt("Caller", "Allow", &self.principal(allow), all.clone()),
                stmt("NoStorage", "Deny", &self.principal(deny), all),
            ])),
        }
    }

    /// One key configured as the scenario says: (id, ARN, grant).
    fn scenario_key(
        &self,
        sc: &Scenario,
        label: &str,
    ) -> (String, String, Option<(String, String)>) {
        let (id, arn) = self.key(label, self.scenario_policy(sc.policy));
        let grant = sc.grant.map(|g| {
            let (gid, token) = self.grant(
                &id,
                &self.principal(g.grantee),
                None,
                &GRANT_OPS,
                g.constraint.map(Constraint::to_wire),
            );
            match g.state {
                GrantState::Live => {}
                GrantState::Retired => {
                    self.admin(RetireGrantRequest {
                        grant_token: None,
                        key_id: Some(id.clone()),
                        grant_id: Some(gid.clone()),
                    });
                }
                GrantState::Revoked => {
                    self.admin(RevokeGrantRequest {
                        key_id: id.clone(),
                        grant_id: gid.clone(),
                    });
                }
            }
            (gid, token)
        });
        (id, arn, grant)
    }

    fn setup_cell(&self, sc: &Scenario, op: Op) -> CellKeys {
        let label = format!("{} / {op:?}", sc.name);
        let (id, arn, grant) = self.scenario_key(sc, &label);
        let dest = matches!(op, Op::ReEncrypt | Op::UpdateAlias).then(|| {
            let (id2, arn2, _) = self.scenario_key(sc, &format!("{label} (destination)"));
            (id2, arn2)
        });
        let ctx = ec(sc.context);
        let ciphertext = matches!(op, Op::Decrypt | Op::ReEncrypt).then(|| self.encrypt(&id, &ctx));
        let other_grant = matches!(op, Op::RetireGrant | Op::RevokeGrant).then(|| {
            let bob = self.principal(P::User(Who::Bob));
            self.grant(&id, &bob, None, &["Decrypt"], None).0
        });
        let alias = match op {
            Op::CreateAlias => Some(self.fresh_alias()),
            Op::UpdateAlias | Op::DeleteAlias => {
                let a = self.fresh_alias();
                self.admin(CreateAliasRequest {
                    alias_name: a.clone(),
                    target_key_id: id.clone(),
                });
                Some(a)
            }
            _ => None,
        };
        match op {
            Op::EnableKey => {
                self.admin(DisableKeyRequest { key_id: id.clone() });
            }
            Op::CancelKeyDeletion => {
                self.admin(ScheduleKeyDeletionRequest {
                    key_id: id.clone(),
                    pending_window_in_days: Some(7),
                });
            }
            _ => {}
        }
        let policy_text = self
            .admin(GetKeyPolicyRequest {
                key_id: id.clone(),
                policy_name: None,
            })
            .policy;
        CellKeys {
            id,
            arn,
            dest,
            grant,
            ciphertext,
            other_grant,
            alias,
            policy_text,
        }
    }
}

/// The request a cell sends. Grant tokens of the scenario's grant ride
/// along where the operation takes them (they only have to parse).
fn cell_request(sc: &Scenario, op: Op, c: &CellKeys) -> Request {
    let k = c.id.clone();
    let ctx = ec(sc.context);
    let tokens: Vec<String> = c.grant.iter().map(|(_, t)| t.clone()).collect();
    let dest = || {
        c.dest
            .as_ref()
            .map(|d| d.0.clone())
            .expect("a destination key")
    };
    let alias = || c.alias.clone().expect("an alias");
    let other = || c.other_grant.clone().expect("another grant");
    match op {
        Op::DescribeKey => DescribeKeyRequest { key_id: k }.into_request(),
        Op::Encrypt => EncryptRequest {
            key_id: k,
            plaintext: SecretBytes::from_slice(b"matrix"),
            encryption_context: ctx,
            grant_tokens: tokens,
        }
        .into_request(),
        Op::Decrypt => DecryptRequest {
            ciphertext_blob: c.ciphertext.clone().expect("a ciphertext"),
            encryption_context: ctx,
            key_id: None,
            grant_tokens: tokens,
        }
        .into_request(),
        Op::ReEncrypt => ReEncryptRequest {
            ciphertext_blob: c.ciphertext.clone().expect("a ciphertext"),
            source_encryption_context: ctx.clone(),
            source_key_id: None,
            destination_key_id: dest(),
            destination_encryption_context: ctx,
            grant_tokens: tokens,
        }
        .into_request(),
        Op::GenerateDataKey => GenerateDataKeyRequest {
            key_id: k,
            encryption_context: ctx,
            key_spec: Some(DataKeySpec::Aes256),
            number_of_bytes: None,
            grant_tokens: tokens,
        }
        .into_request(),
        Op::GenerateDataKeyWithoutPlaintext => GenerateDataKeyWithoutPlaintextRequest {
            key_id: k,
            encryption_context: ctx,
            key_spec: Some(DataKeySpec::Aes256),
            number_of_bytes: None,
            grant_tokens: tokens,
        }
        .into_request(),
        Op::EnableKey => EnableKeyRequest { key_id: k }.into_request(),
        Op::DisableKey => DisableKeyRequest { key_id: k }.into_request(),
        Op::ScheduleKeyDeletion => ScheduleKeyDeletionRequest {
            key_id: k,
            pending_window_in_days: Some(7),
        }
        .into_request(),
        Op::CancelKeyDeletion => CancelKeyDeletionRequest { key_id: k }.into_request(),
        Op::EnableKeyRotation => EnableKeyRotationRequest {
            key_id: k,
            rotation_period_in_days: None,
        }
        .into_request(),
        Op::DisableKeyRotation => DisableKeyRotationRequest { key_id: k }.into_request(),
        Op::GetKeyRotationStatus => GetKeyRotationStatusRequest { key_id: k }.into_request(),
        Op::RotateKeyOnDemand => RotateKeyOnDemandRequest { key_id: k }.into_request(),
        Op::ListKeyRotations => ListKeyRotationsRequest {
            key_id: k,
            limit: None,
            marker: None,
        }
        .into_request(),
        Op::CreateAlias => CreateAliasRequest {
            alias_name: alias(),
            target_key_id: k,
        }
        .into_request(),
        Op::UpdateAlias => UpdateAliasRequest {
            alias_name: alias(),
            target_key_id: dest(),
        }
        .into_request(),
        Op::DeleteAlias => DeleteAliasRequest {
            alias_name: alias(),
        }
        .into_request(),
        Op::TagResource => TagResourceRequest {
            key_id: k,
            tags: vec![Tag {
                tag_key: "team".into(),
                tag_value: "x".into(),
            }],
        }
        .into_request(),
        Op::UntagResource => UntagResourceRequest {
            key_id: k,
            tag_keys: vec!["team".into()],
        }
        .into_request(),
        Op::ListResourceTags => ListResourceTagsRequest {
            key_id: k,
            limit: None,
            marker: None,
        }
        .into_request(),
        Op::PutKeyPolicy => PutKeyPolicyRequest {
            key_id: k,
            policy_name: None,
            policy: c.policy_text.clone(),
            bypass_policy_lockout_safety_check: false,
        }
        .into_request(),
        Op::GetKeyPolicy => GetKeyPolicyRequest {
            key_id: k,
            policy_name: None,
        }
        .into_request(),
        Op::ListKeyPolicies => ListKeyPoliciesRequest { key_id: k }.into_request(),
        Op::CreateGrant => CreateGrantRequest {
            key_id: k,
            grantee_principal: "uid:4242".into(),
            retiring_principal: None,
            operations: vec!["Decrypt".into()],
            constraints: sc.pass_on.map(Constraint::to_wire),
            name: None,
            grant_tokens: tokens,
        }
        .into_request(),
        Op::ListGrants => ListGrantsRequest {
            key_id: k,
            grant_id: None,
            grantee_principal: None,
            limit: None,
            marker: None,
        }
        .into_request(),
        Op::RetireGrant => {
            let own_live = sc.grant.is_some_and(|g| g.state == GrantState::Live);
            let target = match &c.grant {
                Some((gid, _)) if own_live => gid.clone(),
                _ => other(),
            };
            RetireGrantRequest {
                grant_token: None,
                key_id: Some(k),
                grant_id: Some(target),
            }
            .into_request()
        }
        Op::RevokeGrant => RevokeGrantRequest {
            key_id: k,
            grant_id: other(),
        }
        .into_request(),
        service => panic!("{service:?} is not a key operation"),
    }
}

fn service_request(op: Op, w: &World, service_policy: &str) -> Request {
    match op {
        Op::CreateKey => CreateKeyRequest {
            description: Some("made by a user".into()),
            ..Default::default()
        }
        .into_request(),
        Op::ListKeys => ListKeysRequest::default().into_request(),
        Op::ListAliases => ListAliasesRequest::default().into_request(),
        Op::GenerateRandom => GenerateRandomRequest {
            number_of_bytes: 16,
        }
        .into_request(),
        Op::ListRetirableGrants => ListRetirableGrantsRequest {
            retiring_principal: w.principal(P::User(Who::Bob)),
            limit: None,
            marker: None,
        }
        .into_request(),
        Op::GetServicePolicy => GetServicePolicyRequest {}.into_request(),
        // The same text again: harmless if kmsd wrongly accepted it.
        Op::PutServicePolicy => PutServicePolicyRequest {
            policy: service_policy.into(),
        }
        .into_request(),
        key_op => panic!("{key_op:?} names a key"),
    }
}

/// Checks one outcome against its expectation; a denial's message must
/// name the caller, the action and the key (or `*`).
fn judge(
    f: &mut Failures,
    label: &str,
    caller: &str,
    exp: &Expect,
    arn_of: impl Fn(On) -> String,
    got: &Outcome,
) {
    match exp {
        Expect::Allow => f.expect(label, got, "ok"),
        Expect::Deny {
            action,
            on,
            explicit,
        } => {
            if got.kind() != "AccessDeniedException" {
                f.add(format!(
                    "{label}: expected AccessDeniedException ({action}), got {got}"
                ));
                return;
            }
            let arn = arn_of(*on);
            let wanted = format!("{caller} is not authorized to perform {action} on {arn}");
            f.expect_message(label, got, &[&wanted]);
            match explicit {
                Some(sid) => f.expect_message(label, got, &["explicitly denied", sid]),
                None if got.message().contains("explicitly") => {
                    f.add(format!("{label}: expected an implicit deny, got {got}"))
                }
                None => {}
            }
        }
    }
}

// ------------------------------------------------------------------- test

/// Runs one family of checks against its own kmsd, users and groups, and
/// fails listing every wrong decision it found.
fn family(name: &str, run: impl FnOnce(&World, &mut Failures)) {
    assert!(
        identity::is_root(),
        "kmsd_authz needs root to create and become other users and cannot run here: \
         run the suite as root (CI does); it fails rather than pass without running"
    );
    let t0 = Instant::now();
    let w = World::new();
    w.admin(PutServicePolicyRequest {
        policy: service_policy(&w, &[]),
    });
    let mut f = Failures::default();
    run(&w, &mut f);
    eprintln!("kmsd_authz {name}: {:?}", t0.elapsed());
    assert!(
        f.0.is_empty(),
        "{name}: {} wrong decisions:\n{}",
        f.0.len(),
        f.0.join("\n")
    );
}

/// One `#[test]` per family of checks (`<family>::decisions`), each with
/// its own kmsd, so each reports on its own.
macro_rules! families {
    ($($f:ident),* $(,)?) => {
        $(mod $f {
            #[test]
            fn decisions() {
                super::family(stringify!($f), super::$f);
            }
        })*
    };
}

families!(
    matrix,
    reencrypt_needs_both_keys,
    lockout_safety_check,
    malformed_policies,
    grant_tokens,
    passing_grants_on,
    retiring_grants,
    membership_is_read_per_connection,
    egid_changes_keep_every_group,
    keys_made_by_users,
    conditions_read_the_request,
    aliases_resolve_to_keys,
    principal_forms_and_resources,
);

/// Every operation × every scenario, plus the operations that name no key
/// for every caller.
fn matrix(w: &World, f: &mut Failures) {
    let cells = matrix_cells(w, f);
    eprintln!("kmsd_authz: {cells} matrix cells");
}

/// The service policy every family runs under: the default's two
/// statements, CreateKey for the storage group, Carol's denials, and
/// `kms:*` for Alice on the keys `alice_keys` (the matrix's `via_service`
/// scenarios).
fn service_policy(w: &World, alice_keys: &[String]) -> String {
    let mut statements = vec![
        admin_stmt(),
        stmt("Everyone", "Allow", "*", json!(EVERYONE)),
        stmt(
            "StorageCreatesKeys",
            "Allow",
            &w.principal(P::Group(G::Storage)),
            json!("kms:CreateKey"),
        ),
        stmt(
            "CarolRestricted",
            "Deny",
            &w.principal(P::Uid(Who::Carol)),
            json!(CAROL_DENIED),
        ),
    ];
    if !alice_keys.is_empty() {
        let mut s = stmt(
            "AliceOnSomeKeys",
            "Allow",
            &w.principal(P::User(Who::Alice)),
            json!("kms:*"),
        );
        s["Resource"] = json!(alice_keys);
        statements.push(s);
    }
    policy(statements)
}

/// The matrix; returns the number of cells.
fn matrix_cells(w: &World, f: &mut Failures) -> usize {
    let scenarios = scenarios();
    // Set up every cell as the administrator.
    let mut setups: Vec<(Scenario, Vec<CellKeys>)> = Vec::new();
    for sc in &scenarios {
        let keys = KEY_OPS.iter().map(|op| w.setup_cell(sc, *op)).collect();
        setups.push((*sc, keys));
    }
    // The service policy: the default's two statements, CreateKey for the
    // storage group, Carol's denials, and `kms:*` for Alice on the keys of
    // the `via_service` scenarios.
    let via_service: Vec<String> = setups
        .iter()
        .filter(|(sc, _)| sc.via_service)
        .flat_map(|(_, cells)| cells.iter())
        .flat_map(|c| std::iter::once(c.arn.clone()).chain(c.dest.iter().map(|d| d.1.clone())))
        .collect();
    let service_policy = service_policy(w, &via_service);
    w.admin(PutServicePolicyRequest {
        policy: service_policy.clone(),
    });

    let mut cells = 0;
    let mut tally = [0usize; 3];
    let mut count = |e: &Expect| match e {
        Expect::Allow => tally[0] += 1,
        Expect::Deny { explicit: None, .. } => tally[1] += 1,
        Expect::Deny { .. } => tally[2] += 1,
    };
    for (sc, keys) in &setups {
        let requests: Vec<Request> = KEY_OPS
            .iter()
            .zip(keys)
            .map(|(op, c)| cell_request(sc, *op, c))
            .collect();
        let results = w.run_as(sc.caller, &requests);
        let caller = w.caller_text(sc.caller);
        for ((op, c), got) in KEY_OPS.iter().zip(keys).zip(&results) {
            cells += 1;
            let label = format!("[{}] {op:?} as {:?}", sc.name, sc.caller);
            let arn_of = |on: On| match on {
                On::NoKey => "*".to_string(),
                On::Key => c.arn.clone(),
                On::Dest => c.dest.as_ref().map(|d| d.1.clone()).unwrap_or_default(),
            };
            let exp = expected(sc, *op);
            count(&exp);
            judge(f, &label, &caller, &exp, arn_of, got);
        }
    }

    // Operations that name no key: decided by the service policy alone.
    for who in [None, Some(Who::Alice), Some(Who::Bob), Some(Who::Carol)] {
        let requests: Vec<Request> = SERVICE_OPS
            .iter()
            .map(|op| service_request(*op, w, &service_policy))
            .collect();
        let (results, caller) = match who {
            Some(x) => (w.run_as(x, &requests), w.caller_text(x)),
            None => (
                requests
                    .into_iter()
                    .map(|r| Outcome::of(call_any(&w.admin, r)))
                    .collect(),
                "uid:0".to_string(),
            ),
        };
        for (op, got) in SERVICE_OPS.iter().zip(&results) {
            cells += 1;
            let exp = to_expect(
                op.checks()
                    .into_iter()
                    .map(|(a, on)| (service_verdict(who, &a), a, on)),
            );
            let label = format!("[service policy] {op:?} as {}", caller);
            count(&exp);
            judge(f, &label, &caller, &exp, |_| "*".into(), got);
        }
    }
    eprintln!(
        "kmsd_authz: matrix of {} scenarios x {} key operations + 4 callers x {} keyless operations = {cells} cells: \
         {} allowed, {} denied by default, {} denied explicitly",
        scenarios.len(),
        KEY_OPS.len(),
        SERVICE_OPS.len(),
        tally[0],
        tally[1],
        tally[2]
    );
    cells
}

// ---------------------------------------------------------- focused checks

/// Every key id, page by page.
fn all_keys(w: &World) -> Vec<String> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = w.admin(ListKeysRequest {
            limit: Some(100),
            marker: marker.take(),
        });
        out.extend(page.keys.into_iter().map(|k| k.key_id));
        match page.next_marker {
            Some(m) if page.truncated => marker = Some(m),
            _ => return out,
        }
    }
}

fn encrypt_req(key: &str, ctx: &EncryptionContext, tokens: Vec<String>) -> Request {
    EncryptRequest {
        key_id: key.into(),
        plaintext: SecretBytes::from_slice(b"focused"),
        encryption_context: ctx.clone(),
        grant_tokens: tokens,
    }
    .into_request()
}

fn decrypt_req(ct: &Blob, ctx: &EncryptionContext, tokens: Vec<String>) -> Request {
    DecryptRequest {
        ciphertext_blob: ct.clone(),
        encryption_context: ctx.clone(),
        key_id: None,
        grant_tokens: tokens,
    }
    .into_request()
}

fn reencrypt_req(ct: &Blob, dest: &str) -> Request {
    ReEncryptRequest {
        ciphertext_blob: ct.clone(),
        source_encryption_context: EncryptionContext::new(),
        source_key_id: None,
        destination_key_id: dest.into(),
        destination_encryption_context: EncryptionContext::new(),
        grant_tokens: vec![],
    }
    .into_request()
}

fn put_policy_req(key: &str, text: &str, bypass: bool) -> Request {
    PutKeyPolicyRequest {
        key_id: key.into(),
        policy_name: None,
        policy: text.into(),
        bypass_policy_lockout_safety_check: bypass,
    }
    .into_request()
}

fn create_grant_req(
    key: &str,
    grantee: &str,
    ops: &[&str],
    constraints: Option<Constraint>,
) -> Request {
    CreateGrantRequest {
        key_id: key.into(),
        grantee_principal: grantee.into(),
        retiring_principal: None,
        operations: ops.iter().map(|s| s.to_string()).collect(),
        constraints: constraints.map(Constraint::to_wire),
        name: None,
        grant_tokens: vec![],
    }
    .into_request()
}

fn retire_req(key: &str, grant_id: &str) -> Request {
    RetireGrantRequest {
        grant_token: None,
        key_id: Some(key.into()),
        grant_id: Some(grant_id.into()),
    }
    .into_request()
}

/// ReEncrypt needs ReEncryptFrom on the source and ReEncryptTo on the
/// destination; a denial names the side that failed.
fn reencrypt_needs_both_keys(w: &World, f: &mut Failures) {
    let alice = w.principal(P::User(Who::Alice));
    let from_only = policy(vec![
        admin_stmt(),
        stmt("From", "Allow", &alice, json!("kms:ReEncryptFrom")),
    ]);
    let to_only = policy(vec![
        admin_stmt(),
        stmt("To", "Allow", &alice, json!("kms:ReEncryptTo")),
    ]);
    let (src, _) = w.key("re-encrypt source", Some(from_only));
    let (dst, dst_arn) = w.key("re-encrypt destination", Some(to_only));
    let (plain, plain_arn) = w.key("re-encrypt default policy", None);
    let none = EncryptionContext::new();
    let ct_src = w.encrypt(&src, &none);
    let ct_dst = w.encrypt(&dst, &none);
    let r = w.run_as(
        Who::Alice,
        &[
            reencrypt_req(&ct_src, &dst),
            reencrypt_req(&ct_src, &plain),
            reencrypt_req(&ct_dst, &src),
            reencrypt_req(&ct_src, &src),
        ],
    );
    let caller = w.caller_text(Who::Alice);
    f.expect(
        "ReEncrypt From-only source → To-only destination",
        &r[0],
        "ok",
    );
    for (i, action, arn) in [
        (1, "kms:ReEncryptTo", &plain_arn),
        (2, "kms:ReEncryptFrom", &dst_arn),
    ] {
        let label = format!("ReEncrypt case {i}");
        f.expect(&label, &r[i], "AccessDeniedException");
        f.expect_message(
            &label,
            &r[i],
            &[&format!(
                "{caller} is not authorized to perform {action} on {arn}"
            )],
        );
    }
    f.expect(
        "ReEncrypt to a key allowing only ReEncryptFrom",
        &r[3],
        "AccessDeniedException",
    );
    f.expect_message(
        "ReEncrypt to a key allowing only ReEncryptFrom",
        &r[3],
        &["kms:ReEncryptTo"],
    );
}

/// PutKeyPolicy (and CreateKey with a policy) refuses a policy that would
/// lock the caller out, unless BypassPolicyLockoutSafetyCheck.
fn lockout_safety_check(w: &World, f: &mut Failures) {
    let alice = w.principal(P::User(Who::Alice));
    let full = policy(vec![
        admin_stmt(),
        stmt("Alice", "Allow", &alice, json!("kms:*")),
    ]);
    let locked = policy(vec![
        admin_stmt(),
        stmt(
            "AliceUses",
            "Allow",
            &alice,
            json!(["kms:Encrypt", "kms:DescribeKey"]),
        ),
    ]);
    let (key, _) = w.key("lockout", Some(full.clone()));
    let none = EncryptionContext::new();
    let r = w.run_as(
        Who::Alice,
        &[
            put_policy_req(&key, &locked, false),
            put_policy_req(&key, &full, false),
            put_policy_req(&key, &locked, true),
            put_policy_req(&key, &full, false),
            encrypt_req(&key, &none, vec![]),
        ],
    );
    f.expect(
        "lockout: PutKeyPolicy locking Alice out",
        &r[0],
        "MalformedPolicyDocumentException",
    );
    f.expect_message(
        "lockout: PutKeyPolicy locking Alice out",
        &r[0],
        &["will not allow you to update the key policy"],
    );
    f.expect("lockout: PutKeyPolicy keeping Alice in", &r[1], "ok");
    f.expect("lockout: PutKeyPolicy with bypass", &r[2], "ok");
    f.expect(
        "lockout: PutKeyPolicy after locking herself out",
        &r[3],
        "AccessDeniedException",
    );
    f.expect("lockout: Encrypt still allowed", &r[4], "ok");
    let stored = w
        .admin(GetKeyPolicyRequest {
            key_id: key.clone(),
            policy_name: None,
        })
        .policy;
    if stored != locked {
        f.add(format!(
            "lockout: the bypassed policy was not stored: {stored}"
        ));
    }

    // The administrator has no standing right to keys: it is checked too.
    let alice_only = policy(vec![stmt("Alice", "Allow", &alice, json!("kms:*"))]);
    let (k2, _) = w.key("lockout admin", None);
    let r = Outcome::of(w.admin.call(PutKeyPolicyRequest {
        key_id: k2.clone(),
        policy_name: None,
        policy: alice_only.clone(),
        bypass_policy_lockout_safety_check: false,
    }));
    f.expect(
        "lockout: admin PutKeyPolicy without admin",
        &r,
        "MalformedPolicyDocumentException",
    );
    let r = Outcome::of(w.admin.call(PutKeyPolicyRequest {
        key_id: k2.clone(),
        policy_name: None,
        policy: alice_only.clone(),
        bypass_policy_lockout_safety_check: true,
    }));
    f.expect(
        "lockout: admin PutKeyPolicy without admin, bypass",
        &r,
        "ok",
    );
    let r = Outcome::of(w.admin.call(DescribeKeyRequest { key_id: k2.clone() }));
    f.expect(
        "lockout: admin after giving the key away",
        &r,
        "AccessDeniedException",
    );
    f.expect_message(
        "lockout: admin after giving the key away",
        &r,
        &["uid:0", "kms:DescribeKey"],
    );

    // CreateKey with a policy: Alice may create keys (service policy), but
    // not one she could never manage, unless she bypasses the check.
    let admin_only = policy(vec![admin_stmt()]);
    let create = |bypass| {
        CreateKeyRequest {
            description: Some("lockout at creation".into()),
            policy: Some(admin_only.clone()),
            bypass_policy_lockout_safety_check: bypass,
            ..Default::default()
        }
        .into_request()
    };
    let r = w.run_as(Who::Alice, &[create(false), create(true)]);
    f.expect(
        "lockout: CreateKey with a policy locking Alice out",
        &r[0],
        "MalformedPolicyDocumentException",
    );
    f.expect("lockout: CreateKey with bypass", &r[1], "ok");
}

/// Invalid policies through PutKeyPolicy and CreateKey:
/// MalformedPolicyDocumentException, nothing stored.
fn malformed_policies(w: &World, f: &mut Failures) {
    let admin = admin_stmt();
    let with = |extra: Value| {
        json!({"Version": "2012-10-17", "Statement": [admin.clone(), extra]}).to_string()
    };
    let ok_stmt = |field: &str, value: Value| {
        let mut s = stmt("Extra", "Allow", "uid:4242", json!("kms:Encrypt"));
        s[field] = value;
        s
    };
    let without = |field: &str| {
        let mut s = stmt("Extra", "Allow", "uid:4242", json!("kms:Encrypt"));
        if let Some(o) = s.as_object_mut() {
            o.remove(field);
        }
        s
    };
    let no_principal = without("Principal");
    let no_resource = without("Resource");
    let mut not_principal = without("Principal");
    not_principal["NotPrincipal"] = json!({"Unix": "uid:4242"});
    let admin_text = admin.to_string();
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        ("not JSON", "{\"Version\": ".into(), None),
        ("a JSON array", "[]".into(), None),
        (
            "no statements",
            json!({"Version": "2012-10-17", "Statement": []}).to_string(),
            None,
        ),
        (
            "unknown version",
            json!({"Version": "2020-01-01", "Statement": [admin.clone()]}).to_string(),
            None,
        ),
        (
            "Effect Alow",
            with(ok_stmt("Effect", json!("Alow"))),
            Some("Alow"),
        ),
        ("no Principal", with(no_principal), None),
        ("NotPrincipal", with(not_principal), None),
        (
            "AWS principal of another account",
            with(ok_stmt(
                "Principal",
                json!({"AWS": "arn:aws:iam::111122223333:root"}),
            )),
            Some("this kmsd is account 000000000000"),
        ),
        (
            "AWS role principal",
            with(ok_stmt(
                "Principal",
                json!({"AWS": "arn:aws:iam::000000000000:role/admin"}),
            )),
            Some("Unix"),
        ),
        (
            "bad principal",
            with(ok_stmt("Principal", json!({"Unix": "uid:abc"}))),
            None,
        ),
        (
            "unknown user",
            with(ok_stmt(
                "Principal",
                json!({"Unix": format!("user:{}-nosuch", w.prefix)}),
            )),
            Some("nosuch"),
        ),
        (
            "unknown group",
            with(ok_stmt(
                "Principal",
                json!({"Unix": format!("group:{}-nosuch", w.prefix)}),
            )),
            Some("nosuch"),
        ),
        (
            "misspelt action",
            with(ok_stmt("Action", json!("kms:Encrpyt"))),
            Some("Encrpyt"),
        ),
        (
            "non-KMS action",
            with(ok_stmt("Action", json!("s3:GetObject"))),
            Some("s3:GetObject"),
        ),
        (
            "Action and NotAction",
            with(ok_stmt("NotAction", json!("kms:Decrypt"))),
            None,
        ),
        ("no Resource", with(no_resource), None),
        (
            "NotResource",
            with(ok_stmt("NotResource", json!("*"))),
            None,
        ),
        (
            "unknown operator",
            with(ok_stmt(
                "Condition",
                json!({"StringEqualz": {"kms:CallerUid": "1"}}),
            )),
            Some("StringEqualz"),
        ),
        (
            "bare multi-valued key",
            with(ok_stmt(
                "Condition",
                json!({"StringEquals": {"kms:EncryptionContextKeys": "app"}}),
            )),
            None,
        ),
        (
            "statement not an object",
            json!({"Version": "2012-10-17", "Statement": [admin.clone(), "x"]}).to_string(),
            None,
        ),
        (
            "duplicate field",
            format!(
                "{{\"Version\": \"2012-10-17\", \"Statement\": [{admin_text}, {{\"Sid\": \"Dup\", \"Effect\": \"Deny\", \"Effect\": \"Allow\", \"Principal\": \"*\", \"Action\": \"kms:Encrypt\", \"Resource\": \"*\"}}]}}"
            ),
            Some("Effect"),
        ),
    ];

    // The control: the template itself is accepted.
    let valid = with(ok_stmt("Sid", json!("Extra")));
    let (key, _) = w.key("malformed policies", None);
    let put = |text: &str| {
        Outcome::of(w.admin.call(PutKeyPolicyRequest {
            key_id: key.clone(),
            policy_name: None,
            policy: text.into(),
            bypass_policy_lockout_safety_check: false,
        }))
    };
    f.expect("malformed: the valid template", &put(&valid), "ok");
    let before = w
        .admin(GetKeyPolicyRequest {
            key_id: key.clone(),
            policy_name: None,
        })
        .policy;
    let count_keys = || all_keys(w).len();
    let keys_before = count_keys();
    for (name, text, part) in &cases {
        let label = format!("malformed policy ({name}) via PutKeyPolicy");
        let got = put(text);
        f.expect(&label, &got, "MalformedPolicyDocumentException");
        if got.message().contains("will not allow you to update") {
            f.add(format!(
                "{label}: rejected by the lockout check, not as malformed: {got}"
            ));
        }
        if let Some(p) = part {
            f.expect_message(&label, &got, &[p]);
        }
        let label = format!("malformed policy ({name}) via CreateKey");
        let got = Outcome::of(w.admin.call(CreateKeyRequest {
            policy: Some(text.clone()),
            ..Default::default()
        }));
        f.expect(&label, &got, "MalformedPolicyDocumentException");
    }
    let after = w
        .admin(GetKeyPolicyRequest {
            key_id: key.clone(),
            policy_name: None,
        })
        .policy;
    if after != before {
        f.add(format!("malformed: the key policy changed to {after}"));
    }
    if count_keys() != keys_before {
        f.add("malformed: CreateKey with a malformed policy made a key".into());
    }

    // Size: 32768 bytes is the limit (a long Sid pads the text).
    let sized = |n: usize| {
        let base = with(ok_stmt("Sid", json!("")));
        with(ok_stmt("Sid", json!("x".repeat(n - base.len()))))
    };
    let at_limit = sized(32 * 1024);
    let over = sized(32 * 1024 + 1);
    assert_eq!((at_limit.len(), over.len()), (32768, 32769));
    f.expect("policy of exactly 32768 bytes", &put(&at_limit), "ok");
    let got = put(&over);
    f.expect(
        "policy of 32769 bytes",
        &got,
        "MalformedPolicyDocumentException",
    );
    f.expect_message("policy of 32769 bytes", &got, &["32768"]);
    let got = Outcome::of(w.admin.call(CreateKeyRequest {
        policy: Some(over.clone()),
        ..Default::default()
    }));
    f.expect(
        "CreateKey with a 32769-byte policy",
        &got,
        "MalformedPolicyDocumentException",
    );
    let big = policy(vec![
        admin_stmt(),
        ok_stmt("Sid", json!("y".repeat(40_000))),
    ]);
    f.expect(
        "policy of 40 KB",
        &put(&big),
        "MalformedPolicyDocumentException",
    );
}

/// Grant tokens must parse (InvalidGrantTokenException) and grant nothing
/// by themselves.
fn grant_tokens(w: &World, f: &mut Failures) {
    let alice = w.principal(P::User(Who::Alice));
    let (key, _) = w.key("grant tokens", None);
    let (other, _) = w.key("grant tokens, other key", None);
    let (_, token) = w.grant(
        &key,
        &alice,
        None,
        &["Encrypt", "Decrypt", "CreateGrant"],
        None,
    );
    let (_, other_token) = w.grant(
        &other,
        &w.principal(P::User(Who::Bob)),
        None,
        &["Encrypt"],
        None,
    );
    let none = EncryptionContext::new();
    let ct = w.encrypt(&key, &none);
    let garbage = vec!["not-a-grant-token".to_string()];
    let r = w.run_as(
        Who::Alice,
        &[
            encrypt_req(&key, &none, garbage.clone()),
            decrypt_req(&ct, &none, garbage.clone()),
            CreateGrantRequest {
                key_id: key.clone(),
                grantee_principal: w.principal(P::User(Who::Bob)),
                retiring_principal: None,
                operations: vec!["Encrypt".into()],
                constraints: None,
                name: None,
                grant_tokens: garbage.clone(),
            }
            .into_request(),
            RetireGrantRequest {
                grant_token: Some("AAAA".into()),
                key_id: None,
                grant_id: None,
            }
            .into_request(),
            encrypt_req(&key, &none, vec![token.clone()]),
            // A valid token of another key's grant (Bob's) gives nothing.
            encrypt_req(&other, &none, vec![other_token.clone()]),
            encrypt_req(&key, &none, vec![]),
        ],
    );
    for (i, what) in ["Encrypt", "Decrypt", "CreateGrant", "RetireGrant"]
        .iter()
        .enumerate()
    {
        f.expect(
            &format!("garbage grant token on {what}"),
            &r[i],
            "InvalidGrantTokenException",
        );
    }
    f.expect("Encrypt with the grant's own token", &r[4], "ok");
    f.expect(
        "Encrypt with another grantee's token",
        &r[5],
        "AccessDeniedException",
    );
    f.expect("Encrypt by grant, no token", &r[6], "ok");
}

/// A grantee passes a grant on only with operations it holds and
/// constraints at least as strict; the grants it makes work for Bob.
fn passing_grants_on(w: &World, f: &mut Failures) {
    let alice = w.principal(P::User(Who::Alice));
    let bob = w.principal(P::User(Who::Bob));
    let (key, _) = w.key("pass on", None);
    w.grant(
        &key,
        &alice,
        None,
        &["CreateGrant", "Decrypt", "Encrypt"],
        Some(Constraint::Subset(DB).to_wire()),
    );
    let cases: Vec<(&[&str], Option<Constraint>, bool)> = vec![
        (&["Decrypt"], Some(Constraint::Subset(DB)), true),
        (
            &["Decrypt", "GenerateDataKey"],
            Some(Constraint::Subset(DB)),
            false,
        ),
        (&["DescribeKey"], Some(Constraint::Subset(DB)), false),
        (&["RetireGrant"], Some(Constraint::Subset(DB)), false),
        (&["Encrypt"], None, false),
        (&["Encrypt"], Some(Constraint::Subset(DB_TEAM)), true),
        (&["Decrypt"], Some(Constraint::Equals(DB)), true),
        (&["Decrypt"], Some(Constraint::Subset(WEB)), false),
        (&["CreateGrant"], Some(Constraint::Subset(DB)), true),
    ];
    let requests: Vec<Request> = cases
        .iter()
        .map(|(ops, c, _)| create_grant_req(&key, &bob, ops, *c))
        .collect();
    let r = w.run_as(Who::Alice, &requests);
    for ((ops, c, ok), got) in cases.iter().zip(&r) {
        let label = format!("pass on {ops:?} with {c:?}");
        f.expect(
            &label,
            got,
            if *ok { "ok" } else { "AccessDeniedException" },
        );
    }
    let grants = w
        .admin(ListGrantsRequest {
            key_id: key.clone(),
            grant_id: None,
            grantee_principal: Some(bob.clone()),
            limit: None,
            marker: None,
        })
        .grants;
    let made = cases.iter().filter(|c| c.2).count();
    if grants.len() != made {
        f.add(format!(
            "pass on: Bob has {} grants, expected {made}",
            grants.len()
        ));
    }
    let issuer = format!("uid:{}", w.uid(Who::Alice));
    if let Some(g) = grants.iter().find(|g| g.issuing_account != issuer) {
        f.add(format!(
            "pass on: grant {} issued by {}, expected {issuer}",
            g.grant_id, g.issuing_account
        ));
    }
    // Bob uses what Alice passed on.
    let ct_db = w.encrypt(&key, &ec(DB));
    let ct_web = w.encrypt(&key, &ec(WEB));
    let r = w.run_as(
        Who::Bob,
        &[
            decrypt_req(&ct_db, &ec(DB), vec![]),
            decrypt_req(&ct_web, &ec(WEB), vec![]),
            encrypt_req(&key, &ec(DB_TEAM), vec![]),
            encrypt_req(&key, &ec(DB), vec![]),
        ],
    );
    f.expect("Bob decrypts under the passed-on grant", &r[0], "ok");
    f.expect(
        "Bob decrypts outside its constraint",
        &r[1],
        "AccessDeniedException",
    );
    f.expect("Bob encrypts with app=db,team=x", &r[2], "ok");
    f.expect(
        "Bob encrypts without team=x",
        &r[3],
        "AccessDeniedException",
    );
}

/// RetireGrant: the grantee of a grant holding RetireGrant retires that
/// grant only; the retiring principal (by name or group) retires it too;
/// nobody else without the key policy's kms:RetireGrant.
fn retiring_grants(w: &World, f: &mut Failures) {
    let alice = w.principal(P::User(Who::Alice));
    let bob = w.principal(P::User(Who::Bob));
    let storage = w.principal(P::Group(G::Storage));
    let (key, _) = w.key("retiring", None);
    let (g_self, g_self_token) = w.grant(&key, &alice, None, &["Decrypt", "RetireGrant"], None);
    let (g_bob_retires, _) = w.grant(&key, &alice, Some(&bob), &["Encrypt"], None);
    let (g_group_retires, _) = w.grant(&key, &bob, Some(&storage), &["Encrypt"], None);
    let (g_other, _) = w.grant(&key, &bob, None, &["Decrypt"], None);
    let (g_no_retire, _) = w.grant(&key, &alice, None, &["Encrypt"], None);

    let listed = w
        .admin(ListRetirableGrantsRequest {
            retiring_principal: bob.clone(),
            limit: None,
            marker: None,
        })
        .grants;
    if listed
        .iter()
        .map(|g| g.grant_id.as_str())
        .collect::<Vec<_>>()
        != [g_bob_retires.as_str()]
    {
        f.add(format!("ListRetirableGrants for Bob: {listed:?}"));
    }

    let none = EncryptionContext::new();
    let ct = w.encrypt(&key, &none);
    let r = w.run_as(
        Who::Carol,
        &[retire_req(&key, &g_other), retire_req(&key, &g_bob_retires)],
    );
    f.expect(
        "Carol retires a grant she has nothing to do with",
        &r[0],
        "AccessDeniedException",
    );
    f.expect_message(
        "Carol retires a grant",
        &r[0],
        &[&format!("uid:{}", w.uid(Who::Carol)), "kms:RetireGrant"],
    );
    f.expect(
        "Carol retires Bob's retirable grant",
        &r[1],
        "AccessDeniedException",
    );
    let r = w.run_as(
        Who::Alice,
        &[
            retire_req(&key, &g_other),
            retire_req(&key, &g_no_retire),
            retire_req(&key, &g_bob_retires),
            RetireGrantRequest {
                grant_token: Some(g_self_token.clone()),
                key_id: None,
                grant_id: None,
            }
            .into_request(),
            retire_req(&key, &g_group_retires),
            decrypt_req(&ct, &none, vec![]),
        ],
    );
    f.expect(
        "grantee with RetireGrant retires another grant",
        &r[0],
        "AccessDeniedException",
    );
    f.expect(
        "grantee without RetireGrant retires its grant",
        &r[1],
        "AccessDeniedException",
    );
    f.expect(
        "grantee retires a grant whose retiring principal is Bob",
        &r[2],
        "AccessDeniedException",
    );
    f.expect(
        "grantee with RetireGrant retires its grant by token",
        &r[3],
        "ok",
    );
    f.expect(
        "retiring principal group:NAME (supplementary) retires",
        &r[4],
        "ok",
    );
    f.expect(
        "Decrypt after the grant was retired",
        &r[5],
        "AccessDeniedException",
    );
    let r = w.run_as(Who::Bob, &[retire_req(&key, &g_bob_retires)]);
    f.expect("retiring principal user:NAME retires", &r[0], "ok");

    let mut left: Vec<String> = w
        .admin(ListGrantsRequest {
            key_id: key.clone(),
            grant_id: None,
            grantee_principal: None,
            limit: None,
            marker: None,
        })
        .grants
        .into_iter()
        .map(|g| g.grant_id)
        .collect();
    left.sort();
    let mut want = vec![g_other, g_no_retire];
    want.sort();
    if left != want {
        f.add(format!(
            "retiring: grants left {left:?}, expected {want:?} (retired {g_self})"
        ));
    }
}

/// Groups come from the group database at each connection: adding Bob to
/// the storage group takes effect on his next connection, removing him too.
fn membership_is_read_per_connection(w: &World, f: &mut Failures) {
    let storage = w.principal(P::Group(G::Storage));
    let storage_gid = w.principal(P::Gid(G::Storage));
    let p = policy(vec![
        admin_stmt(),
        stmt("ByName", "Allow", &storage, json!("kms:DescribeKey")),
        stmt(
            "ById",
            "Allow",
            &storage_gid,
            json!("kms:GetKeyRotationStatus"),
        ),
    ]);
    let (key, _) = w.key("membership", Some(p));
    let reqs = || {
        [
            DescribeKeyRequest {
                key_id: key.clone(),
            }
            .into_request(),
            GetKeyRotationStatusRequest {
                key_id: key.clone(),
            }
            .into_request(),
        ]
    };
    let bob_name = w.bob.name.clone().expect("bob's name");
    let r = w.run_as(Who::Bob, &reqs());
    f.expect(
        "Bob outside the group (group:NAME)",
        &r[0],
        "AccessDeniedException",
    );
    f.expect(
        "Bob outside the group (gid:N)",
        &r[1],
        "AccessDeniedException",
    );
    let gpasswd = |flag: &str| {
        let _db = identity::accounts_lock();
        let ok = std::process::Command::new("gpasswd")
            .args([flag, &bob_name, &w.storage.0])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(ok, "gpasswd {flag} {bob_name} {}", w.storage.0);
    };
    gpasswd("-a");
    let r = w.run_as(Who::Bob, &reqs());
    gpasswd("-d");
    f.expect("Bob added to the group (group:NAME)", &r[0], "ok");
    f.expect("Bob added to the group (gid:N)", &r[1], "ok");
    let r = w.run_as(Who::Bob, &reqs());
    f.expect(
        "Bob removed from the group (group:NAME)",
        &r[0],
        "AccessDeniedException",
    );
    f.expect(
        "Bob removed from the group (gid:N)",
        &r[1],
        "AccessDeniedException",
    );
}

/// Issue 9, item 3: a user whose primary group a key policy denies does not
/// escape the Deny by changing its effective gid, as `sg other -c ...` or
/// `newgrp other` do (the process then runs with gid `other`, and in the
/// worst case without the primary group in its list). kmsd judges the
/// union of the passwd primary group, the database's supplementary groups
/// and the process's groups, so the Deny holds however the process is set.
fn egid_changes_keep_every_group(w: &World, f: &mut Failures) {
    let mut accounts = TestAccounts::new();
    let denied = format!("{}c", w.prefix);
    let other = format!("{}o", w.prefix);
    let denied_gid = accounts.add_group(&denied);
    let other_gid = accounts.add_group(&other);
    let dave_name = format!("{}d", w.prefix);
    let dave = accounts.add_user(&dave_name, &denied, &[&other]);
    let p = policy(vec![
        admin_stmt(),
        stmt(
            "Dave",
            "Allow",
            &format!("user:{dave_name}"),
            json!("kms:DescribeKey"),
        ),
        stmt(
            "NoContractors",
            "Deny",
            &format!("group:{denied}"),
            json!("kms:DescribeKey"),
        ),
        stmt(
            "Other",
            "Allow",
            &format!("group:{other}"),
            json!("kms:GetKeyRotationStatus"),
        ),
    ]);
    let (key, _) = w.key("egid", Some(p));
    let reqs = [
        DescribeKeyRequest {
            key_id: key.clone(),
        }
        .into_request(),
        GetKeyRotationStatusRequest { key_id: key }.into_request(),
    ];
    let ways = [
        (
            "login: gid = primary, groups from initgroups",
            denied_gid,
            vec![denied_gid, other_gid],
        ),
        (
            "sg other: gid = other, primary kept as supplementary",
            other_gid,
            vec![other_gid, denied_gid],
        ),
        (
            "sg other, primary dropped from the process's groups",
            other_gid,
            vec![other_gid],
        ),
        ("setpriv --regid other --clear-groups", other_gid, vec![]),
    ];
    for (how, gid, groups) in ways {
        let ids = RunAs {
            uid: dave,
            gid,
            process_groups: groups,
        };
        let r = w.run_as_ids(&ids, &dave_name, &reqs);
        f.expect(
            &format!("{how}: the Deny on the primary group holds"),
            &r[0],
            "AccessDeniedException",
        );
        f.expect(&format!("{how}: the other group still counts"), &r[1], "ok");
    }
}

/// A key a user creates gets the default policy naming its creator: the
/// creator has full access, other users none. CreateKey with tags also
/// needs kms:TagResource.
fn keys_made_by_users(w: &World, f: &mut Failures) {
    let r = w.run_as(
        Who::Alice,
        &[CreateKeyRequest {
            description: Some("Alice's key".into()),
            ..Default::default()
        }
        .into_request()],
    );
    f.expect("Alice creates a key", &r[0], "ok");
    let Some(key) = r[0].detail().map(str::to_owned) else {
        return;
    };
    let alice_uid = format!("uid:{}", w.uid(Who::Alice));
    if !all_keys(w).contains(&key) {
        f.add(format!("Alice's key {key} is not listed"));
    }
    let pol = w
        .admin(GetKeyPolicyRequest {
            key_id: key.clone(),
            policy_name: None,
        })
        .policy;
    if !pol.contains(&format!("\"{alice_uid}\"")) {
        f.add(format!("Alice's key's policy does not name her: {pol}"));
    }
    let none = EncryptionContext::new();
    let r = w.run_as(
        Who::Alice,
        &[
            encrypt_req(&key, &none, vec![]),
            ScheduleKeyDeletionRequest {
                key_id: key.clone(),
                pending_window_in_days: Some(30),
            }
            .into_request(),
            CancelKeyDeletionRequest {
                key_id: key.clone(),
            }
            .into_request(),
            CreateKeyRequest {
                description: Some("tagged".into()),
                tags: vec![Tag {
                    tag_key: "k".into(),
                    tag_value: "v".into(),
                }],
                ..Default::default()
            }
            .into_request(),
        ],
    );
    f.expect("creator encrypts", &r[0], "ok");
    f.expect("creator schedules deletion", &r[1], "ok");
    f.expect("creator cancels deletion", &r[2], "ok");
    f.expect(
        "CreateKey with tags without kms:TagResource",
        &r[3],
        "AccessDeniedException",
    );
    f.expect_message(
        "CreateKey with tags without kms:TagResource",
        &r[3],
        &["kms:TagResource"],
    );
    let r = w.run_as(Who::Bob, &[encrypt_req(&key, &none, vec![])]);
    f.expect(
        "another user encrypts under Alice's key",
        &r[0],
        "AccessDeniedException",
    );
}

/// Condition keys kmsd fills from the request and the caller: caller uid
/// and gid, CreateGrant's grantee and operations, the lockout bypass flag,
/// the encryption context's keys.
fn conditions_read_the_request(w: &World, f: &mut Failures) {
    let alice = w.principal(P::User(Who::Alice));
    let bob = w.principal(P::User(Who::Bob));
    let cond = |mut s: Value, c: Value| {
        s["Condition"] = c;
        s
    };
    let p = policy(vec![
        admin_stmt(),
        cond(
            stmt("ByUid", "Allow", "*", json!("kms:DescribeKey")),
            json!({"NumericEquals": {"kms:CallerUid": w.uid(Who::Alice)}}),
        ),
        cond(
            stmt("ByGid", "Allow", "*", json!("kms:ListKeyPolicies")),
            json!({"StringEquals": {"kms:CallerGid": w.gid(G::Users).to_string()}}),
        ),
        cond(
            stmt("GrantsToBob", "Allow", &alice, json!("kms:CreateGrant")),
            json!({
                "StringEquals": {"kms:GranteePrincipal": bob},
                "ForAllValues:StringEquals": {"kms:GrantOperations": ["Decrypt", "Encrypt"]},
            }),
        ),
        cond(
            stmt("NoBypass", "Deny", "*", json!("kms:PutKeyPolicy")),
            json!({"Bool": {"kms:BypassPolicyLockoutSafetyCheck": true}}),
        ),
        stmt("AlicePolicy", "Allow", &alice, json!("kms:PutKeyPolicy")),
        cond(
            stmt("OnlyAppKey", "Allow", &alice, json!("kms:Encrypt")),
            json!({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app"]}}),
        ),
    ]);
    let (key, arn) = w.key("conditions", Some(p.clone()));
    let describe = || {
        DescribeKeyRequest {
            key_id: key.clone(),
        }
        .into_request()
    };
    let list_policies = || {
        ListKeyPoliciesRequest {
            key_id: key.clone(),
        }
        .into_request()
    };
    let r = w.run_as(
        Who::Alice,
        &[
            describe(),
            list_policies(),
            create_grant_req(&key, &bob, &["Decrypt"], None),
            create_grant_req(&key, &bob, &["Decrypt", "GenerateDataKey"], None),
            create_grant_req(&key, "uid:4242", &["Decrypt"], None),
            put_policy_req(&key, &p, false),
            put_policy_req(&key, &p, true),
            encrypt_req(&key, &ec(DB), vec![]),
            encrypt_req(&key, &ec(DB_TEAM), vec![]),
            encrypt_req(&key, &EncryptionContext::new(), vec![]),
        ],
    );
    let want = [
        ("kms:CallerUid matches", "ok"),
        ("kms:CallerGid matches (primary gid)", "ok"),
        ("kms:GranteePrincipal and kms:GrantOperations match", "ok"),
        (
            "kms:GrantOperations has an operation outside the list",
            "AccessDeniedException",
        ),
        ("kms:GranteePrincipal differs", "AccessDeniedException"),
        ("PutKeyPolicy without bypass", "ok"),
        (
            "PutKeyPolicy with bypass, denied by condition",
            "AccessDeniedException",
        ),
        ("kms:EncryptionContextKeys within the list", "ok"),
        (
            "kms:EncryptionContextKeys outside the list",
            "AccessDeniedException",
        ),
        ("ForAllValues on an empty context (holds)", "ok"),
    ];
    for ((label, kind), got) in want.iter().zip(&r) {
        f.expect(&format!("condition: {label}"), got, kind);
    }
    f.expect_message(
        "condition: PutKeyPolicy with bypass",
        &r[6],
        &["kms:PutKeyPolicy", &arn, "explicitly denied", "NoBypass"],
    );
    let r = w.run_as(Who::Bob, &[describe(), list_policies()]);
    f.expect(
        "condition: kms:CallerUid differs",
        &r[0],
        "AccessDeniedException",
    );
    f.expect("condition: kms:CallerGid matches for Bob", &r[1], "ok");
    let r = w.run_as(Who::Carol, &[list_policies()]);
    f.expect(
        "condition: kms:CallerGid differs",
        &r[0],
        "AccessDeniedException",
    );
}

/// Requests naming a key by alias are authorized against the key; denials
/// name the key's ARN.
fn aliases_resolve_to_keys(w: &World, f: &mut Failures) {
    let alice = w.principal(P::User(Who::Alice));
    let (granted, _) = w.key("alias, granted", None);
    let (other, other_arn) = w.key("alias, not granted", None);
    w.grant(&granted, &alice, None, &["Encrypt", "DescribeKey"], None);
    let (a1, a2) = (w.fresh_alias(), w.fresh_alias());
    for (a, k) in [(&a1, &granted), (&a2, &other)] {
        w.admin(CreateAliasRequest {
            alias_name: a.clone(),
            target_key_id: k.clone(),
        });
    }
    let none = EncryptionContext::new();
    let r = w.run_as(
        Who::Alice,
        &[
            encrypt_req(&a1, &none, vec![]),
            DescribeKeyRequest { key_id: a1.clone() }.into_request(),
            encrypt_req(&a2, &none, vec![]),
        ],
    );
    f.expect("Encrypt by alias of a granted key", &r[0], "ok");
    f.expect("DescribeKey by alias of a granted key", &r[1], "ok");
    f.expect(
        "Encrypt by alias of another key",
        &r[2],
        "AccessDeniedException",
    );
    f.expect_message("Encrypt by alias of another key", &r[2], &[&other_arn]);
}

/// `{"AWS": "*"}` is `*`; `account` in a Deny matches every caller, the
/// administrator included; Resource patterns match the key's ARN.
fn principal_forms_and_resources(w: &World, f: &mut Failures) {
    let alice = w.principal(P::User(Who::Alice));
    let with_resource = |mut s: Value, r: &str| {
        s["Resource"] = json!(r);
        s
    };
    let mut aws_star = stmt("AwsStar", "Allow", "*", json!("kms:DescribeKey"));
    aws_star["Principal"] = json!({"AWS": "*"});
    let p = policy(vec![
        admin_stmt(),
        aws_star,
        with_resource(
            stmt(
                "AnyKeyArn",
                "Allow",
                &alice,
                json!(["kms:Encrypt", "kms:Decrypt"]),
            ),
            "arn:aws:kms:*:*:key/*",
        ),
        with_resource(
            stmt("OtherKeyArn", "Allow", &alice, json!("kms:GenerateDataKey")),
            "arn:aws:kms:local:000000000000:key/00000000-0000-0000-0000-000000000000",
        ),
        stmt("NobodyDecrypts", "Deny", "account", json!("kms:Decrypt")),
    ]);
    let (key, arn) = w.key("principal forms", Some(p));
    let none = EncryptionContext::new();
    let ct = w.encrypt(&key, &none);
    let gdk = GenerateDataKeyRequest {
        key_id: key.clone(),
        encryption_context: none.clone(),
        key_spec: Some(DataKeySpec::Aes256),
        number_of_bytes: None,
        grant_tokens: vec![],
    };
    let r = w.run_as(
        Who::Alice,
        &[
            encrypt_req(&key, &none, vec![]),
            gdk.into_request(),
            decrypt_req(&ct, &none, vec![]),
        ],
    );
    f.expect("Resource arn:aws:kms:*:*:key/* matches", &r[0], "ok");
    f.expect(
        "Resource naming another key",
        &r[1],
        "AccessDeniedException",
    );
    f.expect(
        "Deny account matches a user",
        &r[2],
        "AccessDeniedException",
    );
    f.expect_message(
        "Deny account matches a user",
        &r[2],
        &["explicitly denied", "NobodyDecrypts"],
    );
    let r = w.run_as(
        Who::Bob,
        &[DescribeKeyRequest {
            key_id: key.clone(),
        }
        .into_request()],
    );
    f.expect("Principal {\"AWS\": \"*\"} matches anyone", &r[0], "ok");
    let got = Outcome::of(w.admin.call(DecryptRequest {
        ciphertext_blob: ct.clone(),
        encryption_context: none,
        key_id: None,
        grant_tokens: vec![],
    }));
    f.expect(
        "Deny account matches the administrator",
        &got,
        "AccessDeniedException",
    );
    f.expect_message(
        "Deny account matches the administrator",
        &got,
        &["uid:0", "kms:Decrypt", &arn, "NobodyDecrypts"],
    );
}
