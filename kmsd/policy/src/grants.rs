//! Grants: who may use a key for which operations, under which
//! encryption-context constraints; grant ids and grant tokens.
//!
//! A grant only ever allows. Explicit denies in the key or service policy
//! still win (see [`crate::evaluate`]).

use crate::error::Error;
use crate::principal::{Caller, Principal};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kmsd_client::{
    CreateGrantRequest, EncryptionContext, GrantConstraints, GrantListEntry, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The grant operations of AWS KMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GrantOperation {
    Decrypt,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    ReEncryptFrom,
    ReEncryptTo,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    CreateGrant,
    RetireGrant,
    DescribeKey,
    GetPublicKey,
    Sign,
    Verify,
    GenerateMac,
    VerifyMac,
}

impl GrantOperation {
    pub const ALL: [GrantOperation; 16] = [
        Self::Decrypt,
        Self::Encrypt,
        Self::GenerateDataKey,
        Self::GenerateDataKeyWithoutPlaintext,
        Self::ReEncryptFrom,
        Self::ReEncryptTo,
        Self::GenerateDataKeyPair,
        Self::GenerateDataKeyPairWithoutPlaintext,
        Self::CreateGrant,
        Self::RetireGrant,
        Self::DescribeKey,
        Self::GetPublicKey,
        Self::Sign,
        Self::Verify,
        Self::GenerateMac,
        Self::VerifyMac,
    ];

    pub fn as_str(self) -> &'static str {
        use GrantOperation::*;
        match self {
            Decrypt => "Decrypt",
            Encrypt => "Encrypt",
            GenerateDataKey => "GenerateDataKey",
            GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            ReEncryptFrom => "ReEncryptFrom",
            ReEncryptTo => "ReEncryptTo",
            GenerateDataKeyPair => "GenerateDataKeyPair",
            GenerateDataKeyPairWithoutPlaintext => "GenerateDataKeyPairWithoutPlaintext",
            CreateGrant => "CreateGrant",
            RetireGrant => "RetireGrant",
            DescribeKey => "DescribeKey",
            GetPublicKey => "GetPublicKey",
            Sign => "Sign",
            Verify => "Verify",
            GenerateMac => "GenerateMac",
            VerifyMac => "VerifyMac",
        }
    }

    /// The policy action this operation stands for: `kms:Decrypt`.
    pub fn action(self) -> &'static str {
        use GrantOperation::*;
        match self {
            Decrypt => "kms:Decrypt",
            Encrypt => "kms:Encrypt",
            GenerateDataKey => "kms:GenerateDataKey",
            GenerateDataKeyWithoutPlaintext => "kms:GenerateDataKeyWithoutPlaintext",
            ReEncryptFrom => "kms:ReEncryptFrom",
            ReEncryptTo => "kms:ReEncryptTo",
            GenerateDataKeyPair => "kms:GenerateDataKeyPair",
            GenerateDataKeyPairWithoutPlaintext => "kms:GenerateDataKeyPairWithoutPlaintext",
            CreateGrant => "kms:CreateGrant",
            RetireGrant => "kms:RetireGrant",
            DescribeKey => "kms:DescribeKey",
            GetPublicKey => "kms:GetPublicKey",
            Sign => "kms:Sign",
            Verify => "kms:Verify",
            GenerateMac => "kms:GenerateMac",
            VerifyMac => "kms:VerifyMac",
        }
    }

    /// The operation that can allow `action` (`kms:Decrypt` → Decrypt).
    pub fn for_action(action: &str) -> Option<GrantOperation> {
        Self::ALL.into_iter().find(|op| op.action() == action)
    }

    /// `Err` with the reason when a grant on a kmsd key cannot hold this
    /// operation. kmsd keys are symmetric encryption keys
    /// (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT) and kmsd has no data key pairs.
    pub fn check_supported(self) -> Result<(), String> {
        use GrantOperation::*;
        let why = match self {
            GetPublicKey | Sign | Verify => "it applies to asymmetric keys only",
            GenerateMac | VerifyMac => "it applies to HMAC keys only",
            GenerateDataKeyPair | GenerateDataKeyPairWithoutPlaintext => {
                "kmsd does not implement data key pairs"
            }
            _ => return Ok(()),
        };
        Err(format!(
            "grant operation {} is not valid for kmsd's symmetric encryption keys: {why}",
            self.as_str()
        ))
    }

    /// Whether the operation takes an encryption context, so that grant
    /// constraints apply to it (AWS: constraints are not applied to
    /// DescribeKey or RetireGrant).
    pub fn takes_encryption_context(self) -> bool {
        use GrantOperation::*;
        matches!(
            self,
            Decrypt
                | Encrypt
                | GenerateDataKey
                | GenerateDataKeyWithoutPlaintext
                | ReEncryptFrom
                | ReEncryptTo
                | GenerateDataKeyPair
                | GenerateDataKeyPairWithoutPlaintext
        )
    }
}

impl FromStr for GrantOperation {
    type Err = String;
    fn from_str(s: &str) -> Result<GrantOperation, String> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|o| o.as_str()).collect();
                format!(
                    "unknown grant operation \"{s}\"; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for GrantOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A grant as kmsd stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grant_id: String,
    pub key_id: String,
    pub name: Option<String>,
    pub grantee_principal: Principal,
    pub retiring_principal: Option<Principal>,
    /// Valid, supported, without duplicates, in request order.
    pub operations: Vec<GrantOperation>,
    /// `None` when the request gave no constraint (or an empty one).
    pub constraints: Option<GrantConstraints>,
    pub creation_date: Timestamp,
    pub issuing_principal: Principal,
}

/// The longest grant name AWS accepts.
pub const MAX_GRANT_NAME_LEN: usize = 256;

impl Grant {
    /// Validates a CreateGrant request and makes the grant. The principals
    /// must be specific (not `*` or `account`); names are not looked up
    /// here (see [`Principal::check_name`]).
    pub fn from_request(
        req: &CreateGrantRequest,
        key_id: &str,
        grant_id: String,
        issuer: &Caller,
        now: Timestamp,
    ) -> Result<Grant, Error> {
        let grantee = specific_principal("GranteePrincipal", &req.grantee_principal)?;
        let retiring = match &req.retiring_principal {
            Some(p) => Some(specific_principal("RetiringPrincipal", p)?),
            None => None,
        };
        Ok(Grant {
            grant_id,
            key_id: key_id.to_owned(),
            name: check_grant_name(req.name.as_deref())?,
            grantee_principal: grantee,
            retiring_principal: retiring,
            operations: parse_operations(&req.operations)?,
            constraints: check_constraints(req.constraints.as_ref())?,
            creation_date: now,
            issuing_principal: issuer.principal(),
        })
    }

    /// Whether this grant lets `caller` perform `op` in a request with
    /// context `ctx`. `CreateGrant` additionally needs the new grant to pass
    /// [`check_pass_on`]; `RetireGrant` only ever applies to this grant
    /// itself.
    pub fn allows(
        &self,
        caller: &Caller,
        op: GrantOperation,
        ctx: &crate::condition::RequestContext,
    ) -> bool {
        if !names(&self.grantee_principal, caller) || !self.operations.contains(&op) {
            return false;
        }
        match op {
            GrantOperation::CreateGrant => match &ctx.grant_operations {
                Some(ops) => check_pass_on(self, ops, ctx.grant_constraints.as_ref()).is_ok(),
                None => false,
            },
            GrantOperation::RetireGrant => ctx.target_grant_id.as_deref() == Some(&self.grant_id),
            op if op.takes_encryption_context() => {
                constraints_met(self.constraints.as_ref(), &ctx.encryption_context)
            }
            _ => true,
        }
    }

    /// Whether `caller` may retire this grant as its retiring principal, or
    /// as its grantee when it holds the RetireGrant operation. (The key
    /// policy can also allow `kms:RetireGrant`; see [`crate::evaluate`].)
    pub fn may_retire(&self, caller: &Caller) -> bool {
        let retiring = self
            .retiring_principal
            .as_ref()
            .is_some_and(|p| names(p, caller));
        let grantee = self.operations.contains(&GrantOperation::RetireGrant)
            && names(&self.grantee_principal, caller);
        retiring || grantee
    }

    /// The ListGrants entry. `IssuingAccount` holds the issuing principal
    /// (`uid:1000`): kmsd has one account, so the principal says more.
    pub fn to_list_entry(&self) -> GrantListEntry {
        GrantListEntry {
            key_id: self.key_id.clone(),
            grant_id: self.grant_id.clone(),
            name: self.name.clone(),
            creation_date: self.creation_date,
            grantee_principal: self.grantee_principal.to_string(),
            retiring_principal: self.retiring_principal.as_ref().map(|p| p.to_string()),
            issuing_account: self.issuing_principal.to_string(),
            operations: self
                .operations
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect(),
            constraints: self.constraints.clone(),
        }
    }
}

/// Whether a grant's principal (always specific: never `*` or `account`)
/// names `caller`.
fn names(p: &Principal, caller: &Caller) -> bool {
    p.is_specific() && p.matches(caller, 0)
}

fn specific_principal(field: &str, text: &str) -> Result<Principal, Error> {
    let p: Principal = text
        .parse()
        .map_err(|e| Error::InvalidPrincipal(format!("{field}: {e}")))?;
    if !p.is_specific() {
        return Err(Error::InvalidPrincipal(format!(
            "{field}: a grant must name one user or group (uid:N, gid:N, user:NAME, \
             group:NAME), not \"{text}\""
        )));
    }
    Ok(p)
}

fn parse_operations(ops: &[String]) -> Result<Vec<GrantOperation>, Error> {
    if ops.is_empty() {
        return Err(Error::InvalidGrant(
            "Operations: a grant needs at least one operation".into(),
        ));
    }
    let mut out = Vec::with_capacity(ops.len());
    for text in ops {
        let op: GrantOperation = text
            .parse()
            .map_err(|e| Error::InvalidGrant(format!("Operations: {e}")))?;
        op.check_supported()
            .map_err(|e| Error::InvalidGrant(format!("Operations: {e}")))?;
        if !out.contains(&op) {
            out.push(op);
        }
    }
    Ok(out)
}

fn check_grant_name(name: Option<&str>) -> Result<Option<String>, Error> {
    let Some(name) = name else { return Ok(None) };
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-');
    if name.is_empty() || name.len() > MAX_GRANT_NAME_LEN || !name.chars().all(ok_char) {
        return Err(Error::InvalidGrant(format!(
            "Name: \"{name}\" must be 1 to {MAX_GRANT_NAME_LEN} characters of \
             A-Z a-z 0-9 : / _ -"
        )));
    }
    Ok(Some(name.to_owned()))
}

fn check_constraints(c: Option<&GrantConstraints>) -> Result<Option<GrantConstraints>, Error> {
    let Some(c) = c else { return Ok(None) };
    match (&c.encryption_context_subset, &c.encryption_context_equals) {
        (Some(_), Some(_)) => Err(Error::InvalidGrant(
            "Constraints: give EncryptionContextSubset or EncryptionContextEquals, not both".into(),
        )),
        (None, None) => Ok(None),
        (Some(s), None) if s.is_empty() => Ok(None),
        _ => Ok(Some(c.clone())),
    }
}

/// Finds the value of `key` in `ctx`, comparing keys without regard to case
/// (AWS: "in a grant constraint, the key in each key-value pair is not case
/// sensitive, but the value is case sensitive").
fn has_pair(ctx: &EncryptionContext, key: &str, value: &str) -> bool {
    let key = key.to_lowercase();
    ctx.iter()
        .any(|(k, v)| v == value && k.to_lowercase() == key)
}

/// Whether a request's encryption context satisfies the constraints:
/// Subset = every constraint pair is in the request; Equals = the request
/// has exactly the constraint pairs.
pub fn constraints_met(c: Option<&GrantConstraints>, request: &EncryptionContext) -> bool {
    let Some(c) = c else { return true };
    if let Some(subset) = &c.encryption_context_subset
        && !subset.iter().all(|(k, v)| has_pair(request, k, v))
    {
        return false;
    }
    if let Some(equals) = &c.encryption_context_equals
        && (equals.len() != request.len() || !equals.iter().all(|(k, v)| has_pair(request, k, v)))
    {
        return false;
    }
    true
}

/// Whether a grantee using `parent` (which must hold CreateGrant) may create
/// a grant with `ops` and `constraints`: only operations the parent holds,
/// and constraints at least as strict as the parent's.
pub fn check_pass_on(
    parent: &Grant,
    ops: &[GrantOperation],
    constraints: Option<&GrantConstraints>,
) -> Result<(), String> {
    if !parent.operations.contains(&GrantOperation::CreateGrant) {
        return Err(format!(
            "grant {} does not include CreateGrant",
            parent.grant_id
        ));
    }
    if let Some(op) = ops.iter().find(|op| !parent.operations.contains(op)) {
        return Err(format!(
            "grant {} does not include {op}, so it cannot pass it on",
            parent.grant_id
        ));
    }
    let Some(pc) = &parent.constraints else {
        return Ok(());
    };
    let new_subset = constraints.and_then(|c| c.encryption_context_subset.as_ref());
    let new_equals = constraints.and_then(|c| c.encryption_context_equals.as_ref());
    let stricter = match (&pc.encryption_context_equals, &pc.encryption_context_subset) {
        // Equals can only be passed on unchanged.
        (Some(pe), _) => {
            new_equals.is_some_and(|ne| ne.len() == pe.len() && constraints_met(Some(pc), ne))
        }
        // Subset S: the new grant must require every pair of S.
        (None, Some(ps)) => new_subset
            .or(new_equals)
            .is_some_and(|n| ps.iter().all(|(k, v)| has_pair(n, k, v))),
        (None, None) => true,
    };
    if stricter {
        Ok(())
    } else {
        Err(format!(
            "grant {} has encryption context constraints; the new grant's must be the same \
             or stricter",
            parent.grant_id
        ))
    }
}

const TOKEN_MAGIC: &[u8; 4] = b"KGT1";
const TOKEN_NONCE_LEN: usize = 16;
/// AWS's limit on a grant token's length.
pub const MAX_GRANT_TOKEN_LEN: usize = 8192;
const GRANT_ID_LEN: usize = 64;

/// A new grant id: 64 lowercase hex digits (256 random bits), shaped like
/// AWS's.
pub fn new_grant_id() -> Result<String, Error> {
    let mut bytes = [0u8; GRANT_ID_LEN / 2];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("random source: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `id` has the shape of a grant id (does not say it exists).
pub fn is_grant_id(id: &str) -> bool {
    id.len() == GRANT_ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A grant token for `grant_id` with a fresh random nonce.
pub fn mint_grant_token(grant_id: &str) -> Result<String, Error> {
    let mut nonce = [0u8; TOKEN_NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| Error::Internal(format!("random source: {e}")))?;
    Ok(grant_token(grant_id, nonce))
}

/// The token format: base64url (no padding) of `KGT1` ‖ 16-byte nonce ‖
/// grant id (ASCII). Tokens carry no authority: kmsd grants take effect at
/// once, so a token only names a grant, and the grant is still checked.
pub fn grant_token(grant_id: &str, nonce: [u8; TOKEN_NONCE_LEN]) -> String {
    let mut raw = Vec::with_capacity(4 + TOKEN_NONCE_LEN + grant_id.len());
    raw.extend_from_slice(TOKEN_MAGIC);
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(grant_id.as_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// The grant id inside a token, or `InvalidGrantToken`.
pub fn parse_grant_token(token: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Err(Error::InvalidGrantToken(format!(
            "invalid grant token: {why}"
        )))
    };
    if token.is_empty() || token.len() > MAX_GRANT_TOKEN_LEN {
        return bad("wrong length");
    }
    let Ok(raw) = URL_SAFE_NO_PAD.decode(token) else {
        return bad("not base64url");
    };
    let Some(rest) = raw.strip_prefix(TOKEN_MAGIC) else {
        return bad("not a kmsd grant token");
    };
    let Some(id) = rest.get(TOKEN_NONCE_LEN..) else {
        return bad("truncated");
    };
    match std::str::from_utf8(id) {
        Ok(id) if is_grant_id(id) => Ok(id.to_owned()),
        _ => bad("no grant id inside"),
    }
}

#[cfg(test)]
mod tests;
