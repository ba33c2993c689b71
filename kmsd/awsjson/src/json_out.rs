//! A small JSON writer for answers. Members are written in the order the
//! encoder calls them (the model's order), absent members are simply not
//! written (no `null`s), and the buffer wipes what it leaves behind when it
//! grows: a `Plaintext` is written straight into it as base64 and no copy
//! of it stays in freed memory.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kmsd_client::Timestamp;
use std::collections::BTreeMap;
use zeroize::Zeroize;

pub(crate) struct JsonBuf {
    buf: Vec<u8>,
}

impl JsonBuf {
    pub(crate) fn with_capacity(n: usize) -> Self {
        JsonBuf {
            buf: Vec::with_capacity(n),
        }
    }

    /// Makes room for `more` bytes: a bigger buffer gets the bytes and the
    /// old one is wiped (`Vec`'s own growth would free it as it is).
    fn reserve(&mut self, more: usize) {
        let need = self.buf.len() + more;
        if need > self.buf.capacity() {
            let mut bigger = Vec::with_capacity(need.max(2 * self.buf.capacity()));
            bigger.extend_from_slice(&self.buf);
            self.buf.zeroize();
            self.buf = bigger;
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// A JSON string: `"`, `\` and control characters escaped.
    fn string(&mut self, s: &str) {
        self.reserve(s.len() + 2);
        self.push(b"\"");
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..0x20 => b"",
                _ => continue,
            };
            self.push(&s.as_bytes()[start..i]);
            if esc.is_empty() {
                self.push(format!("\\u{b:04x}").as_bytes());
            } else {
                self.push(esc);
            }
            start = i + 1;
        }
        self.push(&s.as_bytes()[start..]);
        self.push(b"\"");
    }

    /// Standard base64 with padding, written in place.
    fn base64(&mut self, bytes: &[u8]) {
        let n = base64::encoded_len(bytes.len(), true).expect("blob length overflows");
        self.reserve(n + 2);
        self.buf.push(b'"');
        let at = self.buf.len();
        self.buf.resize(at + n, 0);
        let written = B64
            .encode_slice(bytes, &mut self.buf[at..])
            .expect("sized by encoded_len");
        debug_assert_eq!(written, n);
        self.buf.push(b'"');
    }

    /// Writes one JSON object whose members `f` writes.
    pub(crate) fn object(&mut self, f: impl FnOnce(&mut Obj<'_>)) {
        self.push(b"{");
        let mut o = Obj {
            out: self,
            first: true,
        };
        f(&mut o);
        self.push(b"}");
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// The members of one object being written.
pub(crate) struct Obj<'a> {
    out: &'a mut JsonBuf,
    first: bool,
}

impl Obj<'_> {
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b",");
        }
        self.first = false;
        self.out.string(k);
        self.out.push(b":");
    }

    pub(crate) fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.out.string(v);
    }

    pub(crate) fn opt_str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }

    pub(crate) fn uint(&mut self, k: &str, v: u64) {
        self.key(k);
        self.out.push(v.to_string().as_bytes());
    }

    pub(crate) fn opt_uint(&mut self, k: &str, v: Option<u64>) {
        if let Some(v) = v {
            self.uint(k, v);
        }
    }

    pub(crate) fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.out.push(if v { b"true" } else { b"false" });
    }

    /// AWS JSON 1.1 timestamps: epoch seconds as a JSON number.
    pub(crate) fn time(&mut self, k: &str, t: Timestamp) {
        self.uint(k, t.0);
    }

    pub(crate) fn opt_time(&mut self, k: &str, t: Option<Timestamp>) {
        if let Some(t) = t {
            self.time(k, t);
        }
    }

    pub(crate) fn blob(&mut self, k: &str, bytes: &[u8]) {
        self.key(k);
        self.out.base64(bytes);
    }

    pub(crate) fn strs<'s>(&mut self, k: &str, items: impl IntoIterator<Item = &'s str>) {
        self.key(k);
        self.out.push(b"[");
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                self.out.push(b",");
            }
            self.out.string(s);
        }
        self.out.push(b"]");
    }

    pub(crate) fn map(&mut self, k: &str, m: &BTreeMap<String, String>) {
        self.obj(k, |o| {
            for (mk, mv) in m {
                o.str(mk, mv);
            }
        });
    }

    pub(crate) fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) {
        self.key(k);
        self.out.object(f);
    }

    /// A list of objects, one per item.
    pub(crate) fn objs<T>(&mut self, k: &str, items: &[T], mut f: impl FnMut(&mut Obj<'_>, &T)) {
        self.key(k);
        self.out.push(b"[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(b",");
            }
            self.out.object(|o| f(o, item));
        }
        self.out.push(b"]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn write(f: impl FnOnce(&mut Obj<'_>)) -> Value {
        // A tiny start so that every write grows the buffer.
        let mut out = JsonBuf::with_capacity(1);
        out.object(f);
        serde_json::from_slice(&out.into_vec()).unwrap()
    }

    #[test]
    fn members_and_escapes() {
        let ctx: BTreeMap<String, String> = [("a\"b".into(), "\u{1}é\t".into())].into();
        let v = write(|o| {
            o.str("S", "quote \" back \\ nl \n cr \r nul \0 del \x7f ünï");
            o.opt_str("Absent", None);
            o.uint("N", u64::MAX);
            o.bool("T", true);
            o.bool("F", false);
            o.time("When", Timestamp(1_700_000_000));
            o.opt_time("Never", None);
            o.blob("B", &[0, 1, 2, 255]);
            o.blob("Empty", &[]);
            o.strs("L", ["x", "y"]);
            o.strs("NoItems", []);
            o.map("M", &ctx);
            o.obj("O", |_| {});
            o.objs("Os", &[1u64, 2], |o, n| o.uint("N", *n));
        });
        assert_eq!(
            v,
            json!({
                "S": "quote \" back \\ nl \n cr \r nul \0 del \x7f ünï",
                "N": u64::MAX,
                "T": true,
                "F": false,
                "When": 1_700_000_000u64,
                "B": "AAEC/w==",
                "Empty": "",
                "L": ["x", "y"],
                "NoItems": [],
                "M": {"a\"b": "\u{1}é\t"},
                "O": {},
                "Os": [{"N": 1}, {"N": 2}],
            })
        );
    }

    #[test]
    fn growth_keeps_the_bytes() {
        let big = vec![7u8; 10_000];
        let v = write(|o| o.blob("B", &big));
        assert_eq!(v["B"].as_str().unwrap(), B64.encode(&big));
    }
}
