//! What the server hands over for each request: [`AuditEvent`] with its
//! [`Principal`]. Serialized here (in the caller's thread) to the record
//! body; the writer only prefixes `seq` and `prevHash`.

use crate::bound::{BoundLimits, bound_message, bound_parameters, needs_bound};
use crate::error::AuditError;
use crate::scrub::{needs_scrub, scrub};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

/// Who made the request: peer credentials of the Unix socket plus
/// best-effort names. JSON: `{"uid","gid","pid","userName","groupName","executable"}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// `/proc/<pid>/exe` when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    /// Set on events kmsd makes itself, with no caller (CloudTrail's
    /// `invokedBy` of AWS service events): `kmsd.sweeper` for key
    /// destruction at the end of the deletion window and automatic
    /// rotation. The uid and pid are then kmsd's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
    /// The access key that signed an AWS-endpoint request (CloudTrail's
    /// `userIdentity.accessKeyId`), also when it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// The client's address on the AWS endpoint (CloudTrail's
    /// `sourceIPAddress`).
    #[serde(
        default,
        rename = "sourceIPAddress",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_ip_address: Option<String>,
}

impl Principal {
    /// Fills names and the executable best-effort from the peer's
    /// credentials. Name lookups go through NSS (`getpwuid_r`), which may be
    /// slow on some systems: a server may prefer to cache per uid/gid.
    pub fn from_peer(uid: u32, gid: u32, pid: Option<i32>) -> Principal {
        use nix::unistd::{Gid, Group, Uid, User};
        Principal {
            uid,
            gid,
            pid,
            user_name: User::from_uid(Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.name),
            group_name: Group::from_gid(Gid::from_raw(gid))
                .ok()
                .flatten()
                .map(|g| g.name),
            executable: pid.and_then(exe_path),
            invoked_by: None,
            access_key_id: None,
            source_ip_address: None,
        }
    }
}

/// The executable of process `pid` (`/proc/<pid>/exe`), or `None` when it
/// cannot be read (process gone, no permission, not Linux). Best-effort: the
/// process may have exited and the pid been reused.
pub fn exe_path(pid: i32) -> Option<String> {
    if pid <= 0 {
        return None;
    }
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// A failed request's AWS error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventError {
    pub code: String,
    pub message: String,
}

/// One kmsd request to record.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub event_time: EventTime,
    /// The operation, e.g. `Encrypt`.
    pub event_name: String,
    pub request_id: String,
    pub principal: Principal,
    /// Key id, alias, encryption context, key spec, grant fields. Never
    /// plaintext, ciphertext or key bytes; [`crate::scrub`] removes such
    /// fields anyway before the record is written.
    pub request_parameters: Value,
    /// Key ARNs the request touched.
    pub resources: Vec<String>,
    /// Set when the request failed or was denied.
    pub error: Option<EventError>,
}

impl AuditEvent {
    /// An event stamped now, with empty parameters and resources.
    pub fn new(
        event_name: impl Into<String>,
        request_id: impl Into<String>,
        principal: Principal,
    ) -> AuditEvent {
        AuditEvent {
            event_time: EventTime::now(),
            event_name: event_name.into(),
            request_id: request_id.into(),
            principal,
            request_parameters: Value::Object(Default::default()),
            resources: Vec::new(),
            error: None,
        }
    }

    pub fn with_parameters(mut self, parameters: Value) -> AuditEvent {
        self.request_parameters = parameters;
        self
    }

    pub fn with_resource(mut self, arn: impl Into<String>) -> AuditEvent {
        self.resources.push(arn.into());
        self
    }

    pub fn with_error(mut self, code: impl Into<String>, message: impl Into<String>) -> AuditEvent {
        self.error = Some(EventError {
            code: code.into(),
            message: message.into(),
        });
        self
    }

    /// Marks the event failed with a KMS error (`errorCode` is the AWS
    /// exception name).
    pub fn with_kms_error(self, e: &kmsd_client::KmsError) -> AuditEvent {
        self.with_error(e.kind.name(), e.message.clone())
    }

    /// The record body: a JSON object without `seq`/`prevHash`, parameters
    /// scrubbed and bounded ([`crate::bound_parameters`] with the default
    /// limits), the error message cut at [`crate::MAX_ERROR_MESSAGE`].
    pub(crate) fn body_json(&self) -> Result<String, AuditError> {
        self.body_json_with(&BoundLimits::default())
    }

    pub(crate) fn body_json_with(&self, limits: &BoundLimits) -> Result<String, AuditError> {
        let mut params: Cow<'_, Value> = match &self.request_parameters {
            Value::Null => Cow::Owned(Value::Object(Default::default())),
            v if needs_scrub(v) => {
                let mut owned = v.clone();
                scrub(&mut owned);
                Cow::Owned(owned)
            }
            v => Cow::Borrowed(v),
        };
        if needs_bound(&params, limits) {
            bound_parameters(params.to_mut(), limits);
        }
        let message = self.error.as_ref().map(|e| bound_message(&e.message));
        let body = Body {
            event_time: self.event_time,
            event_name: &self.event_name,
            request_id: &self.request_id,
            principal: &self.principal,
            request_parameters: &params,
            resources: &self.resources,
            error_code: self.error.as_ref().map(|e| e.code.as_str()),
            error_message: message.as_deref(),
        };
        serde_json::to_string(&body)
            .map_err(|e| AuditError::BadInput(format!("audit event cannot be serialized: {e}")))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    event_time: EventTime,
    event_name: &'a str,
    request_id: &'a str,
    principal: &'a Principal,
    request_parameters: &'a Value,
    resources: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal() -> Principal {
        Principal {
            uid: 1000,
            gid: 100,
            pid: Some(42),
            user_name: Some("alice".into()),
            ..Default::default()
        }
    }

    #[test]
    fn body_has_the_documented_fields_in_order() {
        let mut ev = AuditEvent::new("Encrypt", "req-1", principal())
            .with_parameters(json!({"KeyId": "alias/a"}))
            .with_resource("arn:aws:kms:local:111122223333:key/k1");
        ev.event_time = EventTime::from_millis(1_700_000_000_123);
        assert_eq!(
            ev.body_json().unwrap(),
            r#"{"eventTime":"2023-11-14T22:13:20.123Z","eventName":"Encrypt","requestId":"req-1","principal":{"uid":1000,"gid":100,"pid":42,"userName":"alice"},"requestParameters":{"KeyId":"alias/a"},"resources":["arn:aws:kms:local:111122223333:key/k1"]}"#
        );
    }

    #[test]
    fn failures_carry_code_and_message_and_secrets_are_scrubbed() {
        let ev = AuditEvent::new("Decrypt", "r", principal())
            .with_parameters(json!({"CiphertextBlob": "AQID", "KeyId": "k"}))
            .with_kms_error(&kmsd_client::KmsError::new(
                kmsd_client::ErrorKind::AccessDeniedException,
                "denied",
            ));
        let body: Value = serde_json::from_str(&ev.body_json().unwrap()).unwrap();
        assert_eq!(body["errorCode"], "AccessDeniedException");
        assert_eq!(body["errorMessage"], "denied");
        assert_eq!(body["requestParameters"], json!({"KeyId": "k"}));
        assert!(!ev.body_json().unwrap().contains("AQID"));
    }

    #[test]
    fn a_denied_request_with_a_huge_context_costs_a_bounded_record() {
        let huge = "x".repeat(240_000);
        let ev = AuditEvent::new("Encrypt", "r", principal())
            .with_parameters(json!({"KeyId": "alias/a", "EncryptionContext": {"a": huge}}))
            .with_kms_error(&kmsd_client::KmsError::new(
                kmsd_client::ErrorKind::AccessDeniedException,
                format!("denied {}", "y".repeat(100_000)),
            ));
        let line = ev.body_json().unwrap();
        assert!(line.len() < 2048, "{} bytes", line.len());
        let body: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            body["requestParameters"]["EncryptionContext"]["a"]["truncated"]["length"],
            240_000
        );
        assert_eq!(body["requestParameters"]["KeyId"], "alias/a");
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap()
                .contains("[truncated: 100007 bytes")
        );
    }

    #[test]
    fn null_parameters_become_an_empty_object() {
        let ev = AuditEvent::new("ListKeys", "r", principal()).with_parameters(Value::Null);
        let body: Value = serde_json::from_str(&ev.body_json().unwrap()).unwrap();
        assert_eq!(body["requestParameters"], json!({}));
    }

    #[test]
    fn exe_path_of_self_and_of_nonsense() {
        let me = exe_path(std::process::id() as i32).expect("own /proc/self/exe readable");
        assert!(me.starts_with('/'));
        assert_eq!(exe_path(0), None);
        assert_eq!(exe_path(-5), None);
        assert_eq!(exe_path(i32::MAX), None);
    }

    #[test]
    fn from_peer_fills_names_for_root() {
        let p = Principal::from_peer(0, 0, Some(std::process::id() as i32));
        assert_eq!(p.user_name.as_deref(), Some("root"));
        assert_eq!(p.group_name.as_deref(), Some("root"));
        assert!(p.executable.is_some());
    }
}
