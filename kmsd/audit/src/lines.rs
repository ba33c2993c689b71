//! Reading the log back: lines of one file, and all files in order.

use crate::error::AuditError;
use crate::segments::{Segment, list_segments};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Lines longer than this are not records (the rest is skipped).
pub(crate) const MAX_LINE: usize = 16 << 20;

/// One line of a log file.
#[derive(Clone, Debug)]
pub(crate) struct RawLine {
    /// Without the newline; cut at [`MAX_LINE`] bytes.
    pub bytes: Vec<u8>,
    /// Ended by `\n` (an unterminated last line is a torn write).
    pub complete: bool,
    /// Longer than [`MAX_LINE`].
    pub oversize: bool,
    /// Byte offset of the line's start in its file.
    pub offset: u64,
    /// 1-based.
    pub line_no: u64,
}

pub(crate) struct LineReader {
    r: BufReader<File>,
    offset: u64,
    line_no: u64,
}

impl LineReader {
    pub fn open(path: &Path) -> io::Result<LineReader> {
        LineReader::open_at(path, 0, 0)
    }

    /// Starts at byte `offset`, which must be a line start; `lines_before`
    /// is the number of lines before it.
    pub fn open_at(path: &Path, offset: u64, lines_before: u64) -> io::Result<LineReader> {
        let mut f = File::open(path)?;
        if offset > 0 {
            f.seek(SeekFrom::Start(offset))?;
        }
        Ok(LineReader {
            r: BufReader::with_capacity(256 << 10, f),
            offset,
            line_no: lines_before,
        })
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn next_line(&mut self) -> io::Result<Option<RawLine>> {
        let mut bytes = Vec::new();
        let n = (&mut self.r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut bytes)?;
        if n == 0 {
            return Ok(None);
        }
        let start = self.offset;
        let mut consumed = n as u64;
        let mut complete = bytes.last() == Some(&b'\n');
        let mut oversize = false;
        if complete {
            bytes.pop();
        } else if bytes.len() > MAX_LINE {
            oversize = true;
            bytes.truncate(MAX_LINE);
            let mut skip = Vec::new();
            loop {
                skip.clear();
                let k = (&mut self.r).take(1 << 20).read_until(b'\n', &mut skip)?;
                consumed += k as u64;
                if k == 0 {
                    break;
                }
                if skip.last() == Some(&b'\n') {
                    complete = true;
                    break;
                }
            }
        }
        self.offset += consumed;
        self.line_no += 1;
        Ok(Some(RawLine {
            bytes,
            complete,
            oversize,
            offset: start,
            line_no: self.line_no,
        }))
    }
}

/// An item of a whole-log scan.
#[derive(Clone, Debug)]
pub(crate) enum Item {
    /// The scan enters this file (also for empty files).
    FileStart(Segment),
    /// A line of the file last started.
    Line(Segment, RawLine),
}

/// All segments of a log, in order, with lookahead.
pub(crate) struct LogScan {
    segments: VecDeque<Segment>,
    current: Option<(Segment, LineReader)>,
    ahead: VecDeque<Item>,
}

impl LogScan {
    pub fn open(dir: &Path) -> Result<LogScan, AuditError> {
        let segs = list_segments(dir)
            .map_err(|e| AuditError::io(format!("listing {}", dir.display()), e))?;
        Ok(LogScan::over(segs))
    }

    pub fn over(segments: Vec<Segment>) -> LogScan {
        LogScan {
            segments: segments.into(),
            current: None,
            ahead: VecDeque::new(),
        }
    }

    fn pull(&mut self) -> Result<Option<Item>, AuditError> {
        if let Some((seg, reader)) = &mut self.current {
            let line = reader
                .next_line()
                .map_err(|e| AuditError::io(format!("reading {}", seg.path.display()), e))?;
            match line {
                Some(l) => return Ok(Some(Item::Line(seg.clone(), l))),
                None => self.current = None,
            }
        }
        let Some(seg) = self.segments.pop_front() else {
            return Ok(None);
        };
        let reader = LineReader::open(&seg.path)
            .map_err(|e| AuditError::io(format!("opening {}", seg.path.display()), e))?;
        self.current = Some((seg.clone(), reader));
        Ok(Some(Item::FileStart(seg)))
    }

    pub fn next_item(&mut self) -> Result<Option<Item>, AuditError> {
        match self.ahead.pop_front() {
            Some(i) => Ok(Some(i)),
            None => self.pull(),
        }
    }

    /// The `n`th line (0-based) after the items already taken, skipping
    /// file starts; `None` past the end.
    pub fn peek_line(&mut self, n: usize) -> Result<Option<(&Segment, &RawLine)>, AuditError> {
        let mut seen = 0;
        let mut i = 0;
        loop {
            if i == self.ahead.len() {
                match self.pull()? {
                    Some(item) => self.ahead.push_back(item),
                    None => return Ok(None),
                }
            }
            if let Item::Line(_, _) = &self.ahead[i] {
                if seen == n {
                    break;
                }
                seen += 1;
            }
            i += 1;
        }
        match &self.ahead[i] {
            Item::Line(s, l) => Ok(Some((s, l))),
            Item::FileStart(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_offsets_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"ab\n\ncde\nxy").unwrap();
        let mut r = LineReader::open(&p).unwrap();
        let mut got = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            got.push((l.bytes, l.complete, l.offset, l.line_no));
        }
        assert_eq!(
            got,
            [
                (b"ab".to_vec(), true, 0, 1),
                (b"".to_vec(), true, 3, 2),
                (b"cde".to_vec(), true, 4, 3),
                (b"xy".to_vec(), false, 8, 4)
            ]
        );
        assert_eq!(r.offset(), 10);
        let mut r = LineReader::open_at(&p, 4, 2).unwrap();
        let l = r.next_line().unwrap().unwrap();
        assert_eq!((l.bytes.as_slice(), l.line_no), (&b"cde"[..], 3));
    }

    #[test]
    fn oversize_lines_are_cut_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut data = vec![b'a'; MAX_LINE + 10];
        data.extend_from_slice(b"\nok\n");
        std::fs::write(&p, &data).unwrap();
        let mut r = LineReader::open(&p).unwrap();
        let l = r.next_line().unwrap().unwrap();
        assert!(l.oversize && l.complete);
        assert_eq!(l.bytes.len(), MAX_LINE);
        let l = r.next_line().unwrap().unwrap();
        assert_eq!(
            (l.bytes.as_slice(), l.offset, l.line_no),
            (&b"ok"[..], MAX_LINE as u64 + 11, 2)
        );
    }

    #[test]
    fn scan_crosses_files_with_lookahead() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("audit-000001.jsonl"), b"1\n2\n").unwrap();
        std::fs::write(dir.path().join("audit-000002.jsonl"), b"").unwrap();
        std::fs::write(dir.path().join("audit-000003.jsonl"), b"3\n").unwrap();
        let mut s = LogScan::open(dir.path()).unwrap();
        assert!(matches!(s.next_item().unwrap(), Some(Item::FileStart(seg)) if seg.index == 1));
        assert_eq!(s.peek_line(0).unwrap().unwrap().1.bytes, b"1");
        assert_eq!(s.peek_line(2).unwrap().unwrap().1.bytes, b"3");
        assert_eq!(s.peek_line(2).unwrap().unwrap().0.index, 3);
        assert!(s.peek_line(3).unwrap().is_none());
        let mut seq = Vec::new();
        while let Some(i) = s.next_item().unwrap() {
            seq.push(match i {
                Item::FileStart(seg) => format!("F{}", seg.index),
                Item::Line(seg, l) => {
                    format!("{}:{}", seg.index, String::from_utf8(l.bytes).unwrap())
                }
            });
        }
        assert_eq!(seq, ["1:1", "1:2", "F2", "F3", "3:3"]);
    }
}
