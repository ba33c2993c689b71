//! The server's side of the audit trail: one record per request, allowed
//! or denied, successful or failed, durable before the response is sent.
//!
//! Order per request: run it, submit its record (group commit), wait for
//! the record to be durable, answer. A record that cannot be written turns
//! the answer into `KMSInternalException` and puts the server in a failed
//! state in which every later request is refused before it runs: so at
//! most the requests already running when the disk failed can have been
//! carried out without a record (see docs/AUDIT.md).

use crate::service::{Caller, KeyService};
use kmsd_audit::{AuditError, AuditEvent, AuditLog, Principal, Ticket};
use kmsd_client::{KmsError, Request, Response};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub struct Auditor {
    log: AuditLog,
    failed: AtomicBool,
    next_id: AtomicU64,
    /// Random per daemon start, so request ids are unique across restarts.
    boot: String,
}

impl Auditor {
    pub fn new(log: AuditLog) -> Self {
        let mut b = [0u8; 6];
        crate::crypto::aead::fill_random(&mut b);
        let boot = b.iter().map(|x| format!("{x:02x}")).collect();
        Auditor {
            log,
            failed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            boot,
        }
    }

    /// Refuses every request once a record could not be written.
    pub fn check_healthy(&self) -> Result<(), KmsError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(KmsError::internal(
                "the audit trail cannot be written; kmsd refuses requests until restarted",
            ));
        }
        Ok(())
    }

    /// The record of a request, before it runs (parameters and the keys it
    /// names are read from the request).
    pub fn begin(&self, svc: &KeyService, principal: &Principal, request: &Request) -> AuditEvent {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut ev = AuditEvent::new(
            request.name(),
            format!("{}-{n:08x}", self.boot),
            principal.clone(),
        )
        .with_parameters(parameters(request));
        for arn in svc.request_resources(request) {
            ev = ev.with_resource(arn);
        }
        ev
    }

    /// Completes the record with the outcome and submits it.
    pub fn finish(&self, mut ev: AuditEvent, result: &Result<Response, KmsError>) -> Ticket {
        match result {
            Err(e) => ev = ev.with_kms_error(e),
            Ok(Response::CreateKey(r)) if ev.resources.is_empty() => {
                ev = ev.with_resource(r.key_metadata.arn.clone())
            }
            Ok(_) => {}
        }
        self.log.submit(&ev)
    }

    /// The answer to send once the record's fate is known.
    pub fn settle<T>(
        &self,
        written: Result<T, AuditError>,
        result: Result<Response, KmsError>,
    ) -> Result<Response, KmsError> {
        match written {
            Ok(_) => result,
            Err(e) => {
                self.failed.store(true, Ordering::Release);
                tracing::error!(error = %e, "audit record not written; refusing further requests");
                Err(KmsError::internal(
                    "the request's audit record could not be written",
                ))
            }
        }
    }
}

/// The audit principal of a connection's caller.
pub fn principal(c: &Caller) -> Principal {
    Principal {
        uid: c.uid,
        gid: c.gid,
        pid: c.pid,
        user_name: c.user_name.clone(),
        group_name: kmsd_policy_group_name(c),
        executable: c.pid.and_then(kmsd_audit::exe_path),
    }
}

fn kmsd_policy_group_name(c: &Caller) -> Option<String> {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(c.gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

/// What a request asked for, without plaintext, ciphertext or key bytes:
/// requests are serialized field by field by their own serde
/// implementation, except Encrypt whose plaintext is left out before
/// serialization; the audit crate scrubs secret-named fields
/// (`CiphertextBlob`, ...) when it writes the record.
pub fn parameters(request: &Request) -> Value {
    let v = match request {
        Request::Encrypt(r) => json!({
            "KeyId": r.key_id,
            "EncryptionContext": r.encryption_context,
            "GrantTokens": r.grant_tokens,
        }),
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    };
    // `Request` serializes as {"Operation": {fields}}: keep the fields.
    let v = match v {
        Value::Object(mut m) if m.len() == 1 && m.contains_key(request.name()) => {
            m.remove(request.name()).unwrap_or(Value::Null)
        }
        other => other,
    };
    // The audit crate scrubs secret-named fields from every event again
    // when it serializes it.
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsd_client::*;

    #[test]
    fn parameters_never_hold_secrets() {
        let r = Request::Encrypt(EncryptRequest {
            key_id: "alias/a".into(),
            plaintext: SecretBytes::from_slice(b"top secret"),
            encryption_context: [("k".to_string(), "v".to_string())].into(),
            grant_tokens: vec![],
        });
        let p = parameters(&r);
        assert_eq!(p["KeyId"], "alias/a");
        assert_eq!(p["EncryptionContext"]["k"], "v");
        assert!(!p.to_string().contains("top secret"));
        assert!(p.get("Plaintext").is_none());

        let d = Request::Decrypt(DecryptRequest {
            ciphertext_blob: Blob(vec![1, 2, 3]),
            encryption_context: Default::default(),
            key_id: Some("k".into()),
            grant_tokens: vec![],
        });
        let mut p = parameters(&d);
        kmsd_audit::scrub(&mut p);
        assert!(p.get("CiphertextBlob").is_none(), "{p}");
        assert_eq!(p["KeyId"], "k");
    }
}
