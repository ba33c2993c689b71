//! Where kmsd's state lives in etcd, and how a batch of [`Mutation`]s
//! becomes the writes of one transaction and a watched event becomes a
//! mutation again. Pure: no I/O. The table is in docs/STORE.md ("etcd").
//!
//! `P` is `--etcd-prefix`, `R` a region:
//!
//! | key                              | value                                  |
//! |----------------------------------|----------------------------------------|
//! | `P/format`                       | `{"format":1,"rootCheck":"<hex>"}`    |
//! | `P/home-region`                  | the home region's name                 |
//! | `P/r/R/rev`                      | instance id of the last writer; its mod revision is the region's revision |
//! | `P/r/R/k/<key id>`               | `KeyRecord` JSON (redb `keys`)         |
//! | `P/r/R/g/<key id>/<grant id>`    | grant JSON (redb `grants`)             |
//! | `P/r/R/a/<alias name>`           | `AliasRecord` JSON (redb `aliases`)    |
//! | `P/r/R/m/<name>`                 | meta JSON (redb `meta`)                |
//! | `P/r/R/ak/<access key id>`       | `AccessKeyRecord` JSON                 |
//! | `P/r/R/audited/<inst>/<seq:020>` | `<requestId> <eventName>` or `aborted` |
//! | `P/r/R/hb/<inst>`                | `<counter> <unix ms>` (heartbeat)      |
//! | `P/r/R/leader/sweeper`           | instance id, on the leader's lease     |

use super::{AccessKeyRecord, AliasRecord, KeyRecord, Mutation, Row, StoreError};
use uuid::Uuid;

/// The value of an audited ref whose transaction was fenced off (it can
/// never commit); not a committed mutation.
pub const ABORTED: &str = "aborted";

/// The kinds of record, each a key segment under the region.
pub const KINDS: [&str; 5] = ["k/", "a/", "g/", "m/", "ak/"];

/// One write of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put(String, String),
    Delete(String),
    /// Every key starting with this.
    DeletePrefix(String),
}

impl Op {
    fn key(&self) -> &str {
        match self {
            Op::Put(k, _) | Op::Delete(k) | Op::DeletePrefix(k) => k,
        }
    }
}

/// A watched key, parsed.
#[derive(Debug, PartialEq)]
pub enum Watched {
    /// A change to the state.
    Change(Mutation),
    /// The region's revision key.
    Guard,
    /// An instance's heartbeat: its id and value.
    Heartbeat(String, String),
    /// Audited refs, the leader key and anything unknown.
    Other,
}

/// The keys of one region of one deployment.
#[derive(Clone, Debug)]
pub struct Layout {
    prefix: String,
    region: String,
    instance: String,
}

fn err(what: String) -> StoreError {
    StoreError(what)
}

/// `P/format`.
pub fn format_key(prefix: &str) -> String {
    format!("{prefix}/format")
}

/// `P/home-region`.
pub fn home_key(prefix: &str) -> String {
    format!("{prefix}/home-region")
}

/// `P/r/`: every region's records.
pub fn regions_prefix(prefix: &str) -> String {
    format!("{prefix}/r/")
}

/// A prefix etcd accepts: starts with `/`, no trailing `/`, no empty or
/// dot segments, printable ASCII.
pub fn check_prefix(prefix: &str) -> Result<(), StoreError> {
    let ok = prefix.starts_with('/')
        && prefix.len() <= 128
        && prefix[1..]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(err(format!(
            "invalid etcd prefix '{}': give /NAME[/NAME...] of a-z, A-Z, 0-9, '-', '_', '.'",
            kmsd_client::logsafe::escape(prefix)
        )))
    }
}

/// The end of the range of keys starting with `p` (etcd's prefix rule).
pub fn prefix_end(p: &str) -> Vec<u8> {
    let mut end = p.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Layout {
    pub fn new(prefix: &str, region: &str, instance: &str) -> Layout {
        Layout {
            prefix: prefix.to_string(),
            region: region.to_string(),
            instance: instance.to_string(),
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// `P/r/R/`.
    pub fn region_prefix(&self) -> String {
        format!("{}/r/{}/", self.prefix, self.region)
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}{id}", self.region_prefix())
    }

    /// The region's revision key.
    pub fn guard(&self) -> String {
        format!("{}rev", self.region_prefix())
    }

    /// `P/r/R/<kind>`, for scanning one kind.
    pub fn kind_prefix(&self, kind: &str) -> String {
        self.key(kind, "")
    }

    /// This instance's audited refs.
    pub fn audited_prefix(&self) -> String {
        self.key("audited/", &format!("{}/", self.instance))
    }

    pub fn audited(&self, seq: u64) -> String {
        format!("{}{seq:020}", self.audited_prefix())
    }

    pub fn heartbeat(&self) -> String {
        self.key("hb/", &self.instance)
    }

    pub fn leader(&self) -> String {
        self.key("leader/", "sweeper")
    }

    /// The writes of one batch, in order, plus the region's revision key.
    /// A key's grants go with one range delete (a key may have 50,000), so
    /// the batch's own deletes of those grants are left out: etcd refuses
    /// a transaction that names one key twice.
    pub fn ops(&self, batch: &[Mutation]) -> Result<Vec<Op>, StoreError> {
        let mut ops = Vec::with_capacity(batch.len() + 2);
        for m in batch {
            ops.extend(self.ops_of(m)?);
        }
        let prefixes: Vec<String> = ops
            .iter()
            .filter_map(|o| match o {
                Op::DeletePrefix(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        ops.retain(|o| {
            matches!(o, Op::DeletePrefix(_)) || !prefixes.iter().any(|p| o.key().starts_with(p))
        });
        // The last write of a key wins, as in redb.
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<Op> = ops
            .into_iter()
            .rev()
            .filter(|o| seen.insert(o.key().to_string()))
            .collect();
        out.reverse();
        out.push(Op::Put(self.guard(), self.instance.clone()));
        Ok(out)
    }

    fn ops_of(&self, m: &Mutation) -> Result<Vec<Op>, StoreError> {
        let json = |v: &dyn erased::Json| v.to_json();
        Ok(match m {
            Mutation::PutKey(r) => vec![Op::Put(self.key("k/", &r.key_id.to_string()), json(r)?)],
            Mutation::DeleteKey(id) => vec![
                Op::Delete(self.key("k/", &id.to_string())),
                Op::DeletePrefix(self.key("g/", &format!("{id}/"))),
            ],
            Mutation::PutAlias(a) => vec![Op::Put(self.key("a/", &a.name), json(a)?)],
            Mutation::DeleteAlias(n) => vec![Op::Delete(self.key("a/", n))],
            Mutation::PutGrant { grant_id, json } => {
                vec![Op::Put(self.key("g/", grant_id), json.clone())]
            }
            Mutation::DeleteGrant(id) => vec![Op::Delete(self.key("g/", id))],
            Mutation::PutMeta { name, json } => vec![Op::Put(self.key("m/", name), json.clone())],
            Mutation::PutAccessKey(r) => {
                vec![Op::Put(self.key("ak/", &r.access_key_id), json(r)?)]
            }
            Mutation::DeleteAccessKey(id) => vec![Op::Delete(self.key("ak/", id))],
            Mutation::Audited(r) => vec![Op::Put(
                self.audited(r.seq),
                format!("{} {}", r.request_id, r.event_name),
            )],
        })
    }

    /// What a watched put (`value: Some`) or delete means.
    pub fn watched(&self, key: &[u8], value: Option<&[u8]>) -> Result<Watched, StoreError> {
        let key = std::str::from_utf8(key).map_err(|_| err("a key that is not UTF-8".into()))?;
        let Some(rest) = key.strip_prefix(&self.region_prefix()) else {
            return Ok(Watched::Other);
        };
        if rest == "rev" {
            return Ok(Watched::Guard);
        }
        let text = |v: &[u8]| {
            std::str::from_utf8(v)
                .map(str::to_string)
                .map_err(|_| err(format!("the value of {key} is not UTF-8")))
        };
        if let Some(inst) = rest.strip_prefix("hb/") {
            return Ok(match value {
                Some(v) => Watched::Heartbeat(inst.to_string(), text(v)?),
                None => Watched::Other,
            });
        }
        let Some((kind, id)) = KINDS
            .iter()
            .find_map(|k| rest.strip_prefix(k).map(|id| (*k, id)))
        else {
            return Ok(Watched::Other);
        };
        let m = match value {
            Some(v) => match row(kind, id, &text(v)?)? {
                Row::Key(r) => Mutation::PutKey(r),
                Row::Alias(a) => Mutation::PutAlias(a),
                Row::Grant(grant_id, json) => Mutation::PutGrant { grant_id, json },
                Row::Meta(name, json) => Mutation::PutMeta { name, json },
                Row::AccessKey(a) => Mutation::PutAccessKey(a),
            },
            None => match kind {
                "k/" => Mutation::DeleteKey(
                    Uuid::parse_str(id).map_err(|_| err(format!("key id in {key}")))?,
                ),
                "a/" => Mutation::DeleteAlias(id.to_string()),
                "g/" => Mutation::DeleteGrant(id.to_string()),
                "ak/" => Mutation::DeleteAccessKey(id.to_string()),
                _ => return Ok(Watched::Other),
            },
        };
        Ok(Watched::Change(m))
    }
}

/// A stored value of `kind` (one of [`KINDS`]) under `id`, decoded.
pub fn row(kind: &str, id: &str, value: &str) -> Result<Row, StoreError> {
    let bad = |e: serde_json::Error| err(format!("{kind}{id}: {e}"));
    Ok(match kind {
        "k/" => Row::Key(serde_json::from_str::<KeyRecord>(value).map_err(bad)?),
        "a/" => Row::Alias(serde_json::from_str::<AliasRecord>(value).map_err(bad)?),
        "g/" => Row::Grant(id.to_string(), value.to_string()),
        "m/" => Row::Meta(id.to_string(), value.to_string()),
        "ak/" => Row::AccessKey(serde_json::from_str::<AccessKeyRecord>(value).map_err(bad)?),
        _ => return Err(err(format!("unknown record kind {kind}"))),
    })
}

/// Records as JSON, the way redb stores them.
mod erased {
    pub trait Json {
        fn to_json(&self) -> Result<String, super::StoreError>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<String, super::StoreError> {
            serde_json::to_string(self).map_err(|e| super::StoreError(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditRef;
    use kmsd_client::Timestamp;

    use crate::store::records::test_key as key;

    fn layout() -> Layout {
        Layout::new("/kmsd", "eu-west-1", "i1")
    }

    #[test]
    fn a_destroy_is_one_range_delete_of_its_grants_and_the_guard_is_last() {
        let l = layout();
        let id = Uuid::new_v4();
        let batch = vec![
            Mutation::DeleteKey(id),
            Mutation::DeleteAlias("alias/x".into()),
            Mutation::DeleteGrant(format!("{id}/g1")),
            Mutation::DeleteGrant(format!("{id}/g2")),
            Mutation::Audited(AuditRef {
                seq: 7,
                request_id: "r".into(),
                event_name: "DeleteKey".into(),
            }),
        ];
        let ops = l.ops(&batch).unwrap();
        let p = "/kmsd/r/eu-west-1/";
        assert_eq!(
            ops,
            vec![
                Op::Delete(format!("{p}k/{id}")),
                Op::DeletePrefix(format!("{p}g/{id}/")),
                Op::Delete(format!("{p}a/alias/x")),
                Op::Put(
                    format!("{p}audited/i1/00000000000000000007"),
                    "r DeleteKey".into()
                ),
                Op::Put(format!("{p}rev"), "i1".into()),
            ]
        );
    }

    #[test]
    fn the_last_write_of_a_key_wins() {
        let l = layout();
        let id = Uuid::new_v4();
        let mut k2 = key(id);
        k2.description = "second".into();
        let ops = l
            .ops(&[Mutation::PutKey(key(id)), Mutation::PutKey(k2.clone())])
            .unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(
            ops[0],
            Op::Put(
                format!("/kmsd/r/eu-west-1/k/{id}"),
                serde_json::to_string(&k2).unwrap()
            )
        );
    }

    #[test]
    fn every_write_watched_back_is_the_same_mutation() {
        let l = layout();
        let id = Uuid::new_v4();
        let alias = AliasRecord {
            name: "alias/a/b".into(),
            target: id,
            created: Timestamp(2),
            updated: Timestamp(3),
        };
        let batch = vec![
            Mutation::PutKey(key(id)),
            Mutation::PutAlias(alias),
            Mutation::PutGrant {
                grant_id: format!("{id}/g"),
                json: "{\"x\":1}".into(),
            },
            Mutation::PutMeta {
                name: "service-policy".into(),
                json: "{}".into(),
            },
            Mutation::DeleteAlias("alias/old".into()),
            Mutation::DeleteGrant(format!("{}/g", Uuid::new_v4())),
            Mutation::DeleteAccessKey("AKIA1".into()),
        ];
        let ops = l.ops(&batch).unwrap();
        let back: Vec<Mutation> = ops
            .iter()
            .filter_map(|o| match o {
                Op::Put(k, v) => Some(l.watched(k.as_bytes(), Some(v.as_bytes())).unwrap()),
                Op::Delete(k) => Some(l.watched(k.as_bytes(), None).unwrap()),
                Op::DeletePrefix(_) => None,
            })
            .filter_map(|w| match w {
                Watched::Change(m) => Some(m),
                Watched::Guard => None,
                w => panic!("{w:?}"),
            })
            .collect();
        assert_eq!(back, batch);
        let del = l
            .watched(format!("/kmsd/r/eu-west-1/k/{id}").as_bytes(), None)
            .unwrap();
        assert_eq!(del, Watched::Change(Mutation::DeleteKey(id)));
    }

    #[test]
    fn other_regions_heartbeats_and_refs_are_not_changes() {
        let l = layout();
        let w = |k: &str, v: Option<&str>| l.watched(k.as_bytes(), v.map(str::as_bytes)).unwrap();
        assert_eq!(w("/kmsd/r/us-east-1/k/x", Some("{}")), Watched::Other);
        assert_eq!(w("/kmsd/r/eu-west-1/rev", Some("i2")), Watched::Guard);
        assert_eq!(
            w("/kmsd/r/eu-west-1/hb/i2", Some("5 1000")),
            Watched::Heartbeat("i2".into(), "5 1000".into())
        );
        assert_eq!(
            w(
                "/kmsd/r/eu-west-1/audited/i2/00000000000000000001",
                Some("r X")
            ),
            Watched::Other
        );
        assert!(
            l.watched(b"/kmsd/r/eu-west-1/k/x", Some(b"not json"))
                .is_err()
        );
    }

    #[test]
    fn prefixes_and_range_ends() {
        assert!(check_prefix("/kmsd").is_ok());
        assert!(check_prefix("/a/b-c_d.e").is_ok());
        for bad in ["", "kmsd", "/kmsd/", "/a//b", "/a/../b", "/a b", "/\u{e9}"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }
}
