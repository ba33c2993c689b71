//! The on-disk record: one JSON object per line.
//!
//! ```text
//! {"seq":N,"prevHash":"<64 hex>","instance":"<id>","eventTime":"…Z","eventName":"Encrypt","requestId":"…",
//!  "principal":{…},"requestParameters":{…},"resources":[…],"errorCode":"…","errorMessage":"…"}
//! ```
//!
//! `seq` counts from 1 across all files; `prevHash` is the SHA-256 of the
//! previous line's exact bytes (newline excluded), or 64 zeros for seq 1.
//! `instance` is there only when the log was opened with
//! [`crate::Options::instance`] (and in no line written before that).
//! The log's own events use the same shape: `AuditCheckpoint` records carry
//! `"checkpoint":{"reason","mac"}`, `AuditLogRecovered` records describe a
//! torn tail discarded on restart in `requestParameters`.

use crate::chain::{LineHash, hex_encode};
use crate::event::Principal;
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;

/// `eventName` of checkpoint records.
pub const CHECKPOINT_EVENT: &str = "AuditCheckpoint";
/// `eventName` of the record written after a torn tail was discarded.
pub const RECOVERY_EVENT: &str = "AuditLogRecovered";

/// A record as read back from the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub seq: u64,
    pub prev_hash: String,
    /// The kmsd instance that wrote the record; absent in chains written
    /// without [`crate::Options::instance`] (or before it was set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub event_time: String,
    pub event_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointInfo>,
}

/// The `checkpoint` object of an `AuditCheckpoint` record. `mac` is
/// HMAC-SHA256 (audit key) over the record's own `seq` and `prevHash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// `open`, `interval`, `rotation` or `close`.
    pub reason: String,
    pub mac: String,
}

impl Record {
    /// Parses one line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Record, String> {
        serde_json::from_slice(line).map_err(|e| e.to_string())
    }

    pub fn prev_hash(&self) -> Option<LineHash> {
        LineHash::from_hex(&self.prev_hash)
    }

    pub fn time(&self) -> Option<EventTime> {
        EventTime::parse_rfc3339(&self.event_time).ok()
    }

    pub fn is_checkpoint(&self) -> bool {
        self.event_name == CHECKPOINT_EVENT
    }
}

/// Appends `{"seq":N,"prevHash":"…",` (then `"instance":"<id>",` if
/// `instance` is given) + the body without its `{` + `\n` to `buf`; returns
/// the hash of the new line. `body` must be a non-empty JSON object (it
/// always starts with `{"eventTime"`), `instance` a valid id (it is written
/// as is: such an id needs no escaping).
pub(crate) fn push_line(
    buf: &mut Vec<u8>,
    seq: u64,
    prev: &LineHash,
    instance: Option<&str>,
    body: &str,
) -> LineHash {
    debug_assert!(body.starts_with("{\"") && body.ends_with('}'));
    debug_assert!(instance.is_none_or(crate::instance::is_instance_id));
    let start = buf.len();
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "{{\"seq\":{seq},\"prevHash\":\"{}\",", prev.to_hex());
    if let Some(id) = instance {
        let _ = write!(buf, "\"instance\":\"{id}\",");
    }
    buf.extend_from_slice(body.as_bytes().get(1..).unwrap_or_default());
    let hash = LineHash::of_line(&buf[start..]);
    buf.push(b'\n');
    hash
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckpointBody<'a> {
    event_time: EventTime,
    event_name: &'a str,
    checkpoint: CheckpointInfo,
}

pub(crate) fn checkpoint_body(time: EventTime, reason: &str, mac: &[u8; 32]) -> String {
    let body = CheckpointBody {
        event_time: time,
        event_name: CHECKPOINT_EVENT,
        checkpoint: CheckpointInfo {
            reason: reason.to_string(),
            mac: hex_encode(mac),
        },
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// What was discarded from a torn tail on restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecoveryParams {
    pub file: String,
    pub offset: u64,
    pub discarded_bytes: u64,
    pub discarded_sha256: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecoveryBody<'a> {
    event_time: EventTime,
    event_name: &'a str,
    request_parameters: &'a RecoveryParams,
}

pub(crate) fn recovery_body(time: EventTime, params: &RecoveryParams) -> String {
    let body = RecoveryBody {
        event_time: time,
        event_name: RECOVERY_EVENT,
        request_parameters: params,
    };
    serde_json::to_string(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_chain_and_parse_back() {
        let mut buf = Vec::new();
        let body =
            r#"{"eventTime":"2025-01-01T00:00:00.000Z","eventName":"Encrypt","requestId":"r1"}"#;
        let h1 = push_line(&mut buf, 1, &LineHash::GENESIS, None, body);
        let first_len = buf.len();
        let h2 = push_line(&mut buf, 2, &h1, None, body);
        assert_eq!(
            std::str::from_utf8(&buf[..first_len]).unwrap(),
            format!(
                "{{\"seq\":1,\"prevHash\":\"{}\",\"eventTime\":\"2025-01-01T00:00:00.000Z\",\"eventName\":\"Encrypt\",\"requestId\":\"r1\"}}\n",
                "0".repeat(64)
            )
        );
        assert_eq!(h1, LineHash::of_line(&buf[..first_len - 1]));
        assert_eq!(h2, LineHash::of_line(&buf[first_len..buf.len() - 1]));
        let r2 = Record::parse(&buf[first_len..buf.len() - 1]).unwrap();
        assert_eq!(r2.seq, 2);
        assert_eq!(r2.prev_hash(), Some(h1));
        assert_eq!(r2.request_id.as_deref(), Some("r1"));
        assert!(!r2.is_checkpoint());
        assert_eq!(r2.instance, None);
        assert_eq!(r2.time(), Some(EventTime::from_millis(1_735_689_600_000)));
    }

    #[test]
    fn the_instance_goes_right_after_prev_hash_and_parses_back() {
        let mut buf = Vec::new();
        let body = r#"{"eventTime":"2025-01-01T00:00:00.000Z","eventName":"Encrypt"}"#;
        let h = push_line(&mut buf, 3, &LineHash::GENESIS, Some("kmsd-a"), body);
        assert_eq!(
            std::str::from_utf8(&buf).unwrap(),
            format!(
                "{{\"seq\":3,\"prevHash\":\"{}\",\"instance\":\"kmsd-a\",\"eventTime\":\"2025-01-01T00:00:00.000Z\",\"eventName\":\"Encrypt\"}}\n",
                "0".repeat(64)
            )
        );
        // The hash covers the field.
        assert_eq!(h, LineHash::of_line(&buf[..buf.len() - 1]));
        let r = Record::parse(&buf[..buf.len() - 1]).unwrap();
        assert_eq!((r.seq, r.instance.as_deref()), (3, Some("kmsd-a")));
        let mut cp = Vec::new();
        push_line(
            &mut cp,
            4,
            &h,
            Some("kmsd-a"),
            &checkpoint_body(EventTime::from_millis(0), "open", &[1; 32]),
        );
        let r = Record::parse(&cp[..cp.len() - 1]).unwrap();
        assert!(r.is_checkpoint());
        assert_eq!(r.instance.as_deref(), Some("kmsd-a"));
    }

    #[test]
    fn checkpoint_and_recovery_bodies_parse_as_records() {
        let mut buf = Vec::new();
        push_line(
            &mut buf,
            7,
            &LineHash::GENESIS,
            None,
            &checkpoint_body(EventTime::from_millis(0), "open", &[0xab; 32]),
        );
        let r = Record::parse(&buf[..buf.len() - 1]).unwrap();
        assert!(r.is_checkpoint());
        let cp = r.checkpoint.unwrap();
        assert_eq!(cp.reason, "open");
        assert_eq!(cp.mac, "ab".repeat(32));

        let params = RecoveryParams {
            file: "audit-000001.jsonl".into(),
            offset: 10,
            discarded_bytes: 3,
            discarded_sha256: "00".repeat(32),
        };
        let mut buf = Vec::new();
        push_line(
            &mut buf,
            8,
            &LineHash::GENESIS,
            None,
            &recovery_body(EventTime::from_millis(0), &params),
        );
        let r = Record::parse(&buf[..buf.len() - 1]).unwrap();
        assert_eq!(r.event_name, RECOVERY_EVENT);
        assert_eq!(r.request_parameters.unwrap()["discardedBytes"], 3);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Record::parse(b"").is_err());
        assert!(Record::parse(b"{\"seq\":1").is_err());
        assert!(
            Record::parse(
                b"{\"seq\":\"one\",\"prevHash\":\"\",\"eventTime\":\"\",\"eventName\":\"\"}"
            )
            .is_err()
        );
        assert!(Record::parse(&[0xff, 0xfe]).is_err());
    }
}
