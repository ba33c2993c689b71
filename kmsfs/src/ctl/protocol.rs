//! Control socket messages.

use serde::{Deserialize, Serialize};

/// Largest request or response line accepted.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CtlRequest {
    Status,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CtlResponse {
    Status(Box<Status>),
    Error { message: String },
}

/// What `kmsfs status` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub mountpoint: String,
    pub cipherdir: String,
    pub key_arn: String,
    pub volume_id: String,
    /// The key service: `kmsd at SOCKETS`, or `AWS KMS at URL (region R)`.
    pub kms: String,
    /// The background mount's log file, when it has one.
    pub log_file: Option<String>,
    pub cache: CacheFigures,
    pub kmsd: KmsdFigures,
    pub fs: FsFigures,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheFigures {
    pub entries: u64,
    pub capacity: u64,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsdFigures {
    pub calls: u64,
    pub errors: u64,
    /// Pre-generated keys ready for new files.
    pub pool_ready: u64,
    /// New files that took a pre-generated key.
    pub pool_taken: u64,
    /// New files that found the pool empty and waited for kmsd.
    pub pool_empty: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsFigures {
    /// Inodes the kernel holds.
    pub inodes: u64,
    pub open_files: u64,
    /// Reads that failed because a block or file did not authenticate.
    pub damaged_reads: u64,
    /// Operations that failed because a key was unavailable or denied.
    pub key_errors: u64,
}

impl Status {
    /// The human form `kmsfs status` prints.
    pub fn render(&self) -> String {
        let c = &self.cache;
        let k = &self.kmsd;
        let f = &self.fs;
        let mut s = format!(
            "mountpoint:  {}\ncipherdir:   {}\nkey:         {}\nvolume:      {}\npid:         {}\n",
            self.mountpoint, self.cipherdir, self.key_arn, self.volume_id, self.pid
        );
        s.push_str(&format!(
            "key cache:   entries {} (capacity {}), hits {}, misses {}, evictions {}\n",
            c.entries, c.capacity, c.hits, c.misses, c.evictions
        ));
        s.push_str(&format!(
            "kms:         calls {}, errors {} ({})\n",
            k.calls, k.errors, self.kms
        ));
        s.push_str(&format!(
            "key pool:    ready {}, taken {}, empty {}\n",
            k.pool_ready, k.pool_taken, k.pool_empty
        ));
        s.push_str(&format!(
            "files:       inodes {}, open {}, damaged reads {}, key errors {}\n",
            f.inodes, f.open_files, f.damaged_reads, f.key_errors
        ));
        if let Some(l) = &self.log_file {
            s.push_str(&format!("log:         {l}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_tagged_json() {
        assert_eq!(
            serde_json::to_string(&CtlRequest::Status).unwrap(),
            r#"{"op":"status"}"#
        );
        let r = CtlResponse::Error {
            message: "no".into(),
        };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, r#"{"error":{"message":"no"}}"#);
        assert_eq!(serde_json::from_str::<CtlResponse>(&j).unwrap(), r);
    }

    #[test]
    fn render_names_every_cache_figure() {
        let mut s = Status::default();
        s.cache.hits = 7;
        s.cache.evictions = 2;
        s.kmsd.errors = 3;
        let out = s.render();
        assert!(out.contains("hits 7"), "{out}");
        assert!(out.contains("evictions 2"), "{out}");
        assert!(out.contains("errors 3"), "{out}");
    }
}
