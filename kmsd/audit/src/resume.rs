//! Opening an existing log: find the end of the chain, check it against
//! `HEAD`, discard a torn last line, and hand back a [`ChainWriter`] that
//! continues the chain.
//!
//! Only what a crash can leave is repaired: complete records beyond `HEAD`
//! (written and fsynced, but `HEAD` not yet replaced) are kept, and a final
//! line without its newline is cut off. Anything else (HEAD ahead of the log,
//! a record that does not match HEAD, a broken chain after HEAD, a forged
//! HEAD) is refused with [`AuditError::Damaged`], leaving the files as they
//! are for `verify`.

use crate::chain::{LineHash, hex_encode};
use crate::error::AuditError;
use crate::head::{Head, HeadFile};
use crate::key::AuditKey;
use crate::lines::LineReader;
use crate::record::{Record, RecoveryParams};
use crate::segments::{Segment, list_segments, segment_name};
use crate::writer::{ChainWriter, Options, create_segment};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Where the chain ends, as found by [`scan_tail`].
#[derive(Debug, PartialEq)]
pub(crate) struct Tail {
    pub next_seq: u64,
    pub prev: LineHash,
    /// File of the last record.
    pub last_file: String,
    /// A final line without newline: (offset in the last file, length).
    pub torn: Option<(u64, u64)>,
    /// The instance the last record names.
    pub last_instance: Option<String>,
}

/// Opens the log in `dir` (which exists and is locked by the caller).
pub(crate) fn resume(
    dir: &Path,
    key: AuditKey,
    opts: Options,
) -> Result<(ChainWriter, Option<RecoveryParams>), AuditError> {
    let io = |what: String| move |e| AuditError::io(what, e);
    let dir_fd = File::open(dir).map_err(io(format!("opening {}", dir.display())))?;
    let segments = list_segments(dir).map_err(io(format!("listing {}", dir.display())))?;
    let head = HeadFile::open(dir)?;
    if let Some((_, h)) = &head
        && !h.mac_ok(&key)
    {
        return Err(AuditError::Damaged(format!(
            "the MAC of {}/HEAD does not verify: wrong root key, or HEAD was replaced",
            dir.display()
        )));
    }
    let Some(last) = segments.last() else {
        // A fresh log (or one created but never written to).
        let first = segment_name(1);
        let head_file = match head {
            Some((_, h)) if h.seq != 0 => {
                return Err(AuditError::Damaged(format!(
                    "HEAD names record {} in {} but no log files exist",
                    h.seq, h.file
                )));
            }
            Some((hf, _)) => hf,
            None => {
                let genesis = Head::new(&key, 0, LineHash::GENESIS, first.clone());
                HeadFile::create(dir, &dir_fd, &genesis).map_err(io("creating HEAD".into()))?
            }
        };
        let file = create_segment(dir, 1).map_err(io(format!("creating {first}")))?;
        dir_fd
            .sync_all()
            .map_err(io(format!("syncing {}", dir.display())))?;
        let tail = Tail {
            next_seq: 1,
            prev: LineHash::GENESIS,
            last_file: first,
            torn: None,
            last_instance: None,
        };
        return Ok((
            writer(dir, dir_fd, head_file, file, 1, 0, tail, key, opts),
            None,
        ));
    };
    let Some((head_file, head)) = head else {
        return Err(AuditError::Damaged(format!(
            "log files exist in {} but HEAD is missing: truncation could not be ruled out",
            dir.display()
        )));
    };
    let tail = scan_tail(&segments, &head)?;
    // Before any repair: continuing another instance's records (say, with
    // its INSTANCE file removed) would give a chain that fails verify.
    if let Some(named) = &tail.last_instance
        && opts.instance.as_ref() != Some(named)
    {
        let as_what = match &opts.instance {
            Some(id) => format!("not by instance {id}"),
            None => "not without an instance".to_string(),
        };
        return Err(AuditError::WrongInstance(format!(
            "the last record of {} (seq {}) names instance {named}: it is continued by that instance, {as_what}",
            dir.display(),
            tail.next_seq - 1
        )));
    }
    let mut file_len = std::fs::metadata(&last.path)
        .map_err(io(format!("reading {}", last.name)))?
        .len();
    let mut recovery = None;
    if let Some((offset, len)) = tail.torn {
        let discarded_sha256 =
            hash_range(&last.path, offset, len).map_err(io(format!("reading {}", last.name)))?;
        let f = OpenOptions::new()
            .write(true)
            .open(&last.path)
            .map_err(io(format!("opening {}", last.name)))?;
        f.set_len(offset)
            .map_err(io(format!("truncating {}", last.name)))?;
        f.sync_all().map_err(io(format!("syncing {}", last.name)))?;
        file_len = offset;
        recovery = Some(RecoveryParams {
            file: last.name.clone(),
            offset,
            discarded_bytes: len,
            discarded_sha256,
        });
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(&last.path)
        .map_err(io(format!("opening {}", last.name)))?;
    Ok((
        writer(
            dir, dir_fd, head_file, file, last.index, file_len, tail, key, opts,
        ),
        recovery,
    ))
}

#[allow(clippy::too_many_arguments)]
fn writer(
    dir: &Path,
    dir_fd: File,
    head_file: HeadFile,
    file: File,
    seg_index: u32,
    file_len: u64,
    tail: Tail,
    key: AuditKey,
    opts: Options,
) -> ChainWriter {
    ChainWriter {
        dir: dir.to_path_buf(),
        dir_fd,
        head_file,
        file,
        seg_index,
        file_len,
        next_seq: tail.next_seq,
        prev: tail.prev,
        last_file: tail.last_file,
        since_checkpoint: 0,
        rotation_checkpoint_due: false,
        key,
        opts,
        buf: Vec::new(),
        poisoned: None,
        head_stale: false,
    }
}

/// Walks the files from the one `HEAD` names to the last, finds HEAD's
/// record and checks that everything after it chains on.
pub(crate) fn scan_tail(segments: &[Segment], head: &Head) -> Result<Tail, AuditError> {
    let damaged = |m: String| Err(AuditError::Damaged(m));
    let start = if head.seq == 0 {
        match segments.first() {
            Some(s) if s.index == 1 => 0,
            _ => {
                return damaged(format!(
                    "HEAD is at the start of the log but {} is missing",
                    segment_name(1)
                ));
            }
        }
    } else {
        match segments.iter().position(|s| s.name == head.file) {
            Some(i) => i,
            None => {
                return damaged(format!(
                    "HEAD names record {} in {}, which is missing",
                    head.seq, head.file
                ));
            }
        }
    };
    // Before HEAD's record is found, `found` is false and lines are skipped.
    let mut found = head.seq == 0;
    let mut next_seq = head.seq + 1;
    let mut prev = head.hash;
    let mut last_file = head.file.clone();
    let mut torn = None;
    let mut last_instance = None;
    let last_index = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate().skip(start) {
        let mut reader = LineReader::open(&seg.path)
            .map_err(|e| AuditError::io(format!("opening {}", seg.name), e))?;
        while let Some(line) = reader
            .next_line()
            .map_err(|e| AuditError::io(format!("reading {}", seg.name), e))?
        {
            let at = format!("{} line {}", seg.name, line.line_no);
            if !line.complete {
                if i == last_index {
                    torn = Some((line.offset, line.bytes.len() as u64));
                    break;
                }
                return damaged(format!(
                    "{at}: partial line at the end of a file that is not the last"
                ));
            }
            let record = Record::parse(&line.bytes);
            if !found {
                if let Ok(r) = &record
                    && r.seq == head.seq
                {
                    if LineHash::of_line(&line.bytes) != head.hash {
                        return damaged(format!(
                            "{at}: record {} differs from the one HEAD names",
                            head.seq
                        ));
                    }
                    last_instance = r.instance.clone();
                    found = true;
                }
                continue;
            }
            let r = match record {
                Ok(r) => r,
                Err(e) => {
                    return damaged(format!(
                        "{at}: not a record after the last acknowledged one: {e}"
                    ));
                }
            };
            if r.seq != next_seq || r.prev_hash() != Some(prev) {
                return damaged(format!(
                    "{at}: record {} does not chain on from record {} (the chain after HEAD is broken)",
                    r.seq,
                    next_seq - 1
                ));
            }
            prev = LineHash::of_line(&line.bytes);
            next_seq += 1;
            last_file = seg.name.clone();
            last_instance = r.instance;
        }
    }
    if !found {
        return damaged(format!(
            "HEAD names record {} in {} but the log does not contain it: acknowledged records are missing \
             (truncated or removed)",
            head.seq, head.file
        ));
    }
    Ok(Tail {
        next_seq,
        prev,
        last_file,
        torn,
        last_instance,
    })
}

fn hash_range(path: &Path, offset: u64, len: u64) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = f.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hex_encode(&h.finalize()))
}
