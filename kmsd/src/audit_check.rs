//! The offline cross-check of the state against the audit trail (docs/
//! AUDIT.md, "Audit before commit"): every committed mutation names the
//! record written, durably, before its commit (`Store::audited`); this
//! finds any that has no such record, or whose record says it failed.
//!
//! The matching is pure ([`cross_check`]); [`check_state_dir`] reads a
//! stopped kmsd's state and trail.

use crate::store::{AuditRef, RedbStore, Store};
use kmsd_audit::{Filter, Record};
use std::collections::HashMap;
use std::path::Path;

/// What the cross-check found.
#[derive(Debug, Default)]
pub struct CrossCheck {
    /// Committed mutations whose record is present and says they succeeded.
    pub matched: usize,
    /// Committed mutations without a matching record, with the reason.
    pub unaudited: Vec<(AuditRef, &'static str)>,
}

impl CrossCheck {
    pub fn is_ok(&self) -> bool {
        self.unaudited.is_empty()
    }
}

/// Matches each committed mutation to the record at its seq: same request
/// id and event name, and no error code.
pub fn cross_check(refs: &[AuditRef], records: impl IntoIterator<Item = Record>) -> CrossCheck {
    let mut by_seq: HashMap<u64, &AuditRef> = refs.iter().map(|r| (r.seq, r)).collect();
    let mut out = CrossCheck::default();
    for rec in records {
        let Some(r) = by_seq.remove(&rec.seq) else {
            continue;
        };
        let why = if rec.request_id.as_deref() != Some(r.request_id.as_str()) {
            Some("the record at its seq has another request id")
        } else if rec.event_name != r.event_name {
            Some("the record at its seq is of another operation")
        } else if rec.error_code.is_some() {
            Some("its record says the request failed")
        } else {
            None
        };
        match why {
            Some(w) => out.unaudited.push((r.clone(), w)),
            None => out.matched += 1,
        }
    }
    let mut missing: Vec<AuditRef> = by_seq.into_values().cloned().collect();
    missing.sort_by_key(|r| r.seq);
    out.unaudited
        .extend(missing.into_iter().map(|r| (r, "no record at its seq")));
    out
}

/// Cross-checks the state and trail in `state_dir` (kmsd must be stopped:
/// the store is locked while it runs).
pub fn check_state_dir(state_dir: &Path) -> anyhow::Result<CrossCheck> {
    let store = RedbStore::open(&state_dir.join("state.redb"))?;
    let refs = store.audited()?;
    let dir = kmsd_audit::audit_dir(state_dir);
    let mut records = Vec::new();
    for e in kmsd_audit::query(&dir, Filter::default())? {
        records.push(e?.record);
    }
    Ok(cross_check(&refs, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(seq: u64, id: &str, name: &str) -> AuditRef {
        AuditRef {
            seq,
            request_id: id.into(),
            event_name: name.into(),
        }
    }

    fn rec(seq: u64, id: &str, name: &str, error: Option<&str>) -> Record {
        let mut line = serde_json::json!({
            "seq": seq, "prevHash": "", "eventTime": "2026-01-01T00:00:00.000Z",
            "eventName": name, "requestId": id,
        });
        if let Some(e) = error {
            line["errorCode"] = e.into();
        }
        serde_json::from_value(line).expect("record")
    }

    #[test]
    fn every_commit_needs_its_own_successful_record() {
        let refs = [
            r(2, "a", "CreateKey"),
            r(3, "b", "DisableKey"),
            r(5, "c", "CreateAlias"),
            r(7, "d", "TagResource"),
            r(9, "e", "CreateGrant"),
        ];
        let records = vec![
            rec(1, "x", "Encrypt", None),
            rec(2, "a", "CreateKey", None),
            rec(3, "b", "DisableKey", None),
            rec(5, "other", "CreateAlias", None),
            rec(7, "d", "TagResource", Some("KMSInternalException")),
            rec(8, "e", "CreateGrant", None),
        ];
        let c = cross_check(&refs, records);
        assert_eq!(c.matched, 2);
        let found: Vec<(u64, &str)> = c.unaudited.iter().map(|(r, w)| (r.seq, *w)).collect();
        assert_eq!(
            found,
            [
                (5, "the record at its seq has another request id"),
                (7, "its record says the request failed"),
                (9, "no record at its seq"),
            ]
        );
        assert!(!c.is_ok());
        assert!(
            cross_check(
                &refs[..2],
                vec![
                    rec(2, "a", "CreateKey", None),
                    rec(3, "b", "DisableKey", None)
                ]
            )
            .is_ok()
        );
    }
}
