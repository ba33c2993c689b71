//! Escaping for text that did not come from us (file names, kmsd's error
//! messages, encryption contexts) before it reaches a log line or a
//! terminal: no raw newline, carriage return, escape sequence or other
//! control character survives, so such text can neither forge a log line
//! nor drive a terminal.
//!
//! The escaped form is unambiguous: `\` becomes `\\`; `\n`, `\r`, `\t`
//! keep their usual spelling; other C0 controls, DEL and bytes that are
//! not UTF-8 become `\xNN`; C1 controls and the Unicode line/paragraph
//! separators and bidirectional overrides become `\u{NNNN}`. Everything
//! else, including non-ASCII letters, is kept as it is.

use std::borrow::Cow;
use std::fmt;

/// `s` escaped; borrowed when nothing needed escaping.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_char(&mut out, c);
    }
    Cow::Owned(out)
}

/// Bytes (a file name, an OS string) escaped; bytes that are not UTF-8
/// become `\xNN`.
pub fn escape_bytes(b: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(b) {
        return escape(s);
    }
    let mut out = String::with_capacity(b.len() + 8);
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    Cow::Owned(out)
}

/// A path or OS string, escaped.
pub fn escape_os(s: &std::ffi::OsStr) -> Cow<'_, str> {
    use std::os::unix::ffi::OsStrExt;
    escape_bytes(s.as_bytes())
}

/// Formats its text escaped: `tracing::warn!("{}", Escaped(name))`.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", escape(self.0))
    }
}

/// Formats a path escaped.
pub struct EscapedPath<'a>(pub &'a std::path::Path);

impl fmt::Display for EscapedPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_os(self.0.as_os_str()))
    }
}

fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control() || is_format_hazard(c)
}

/// Characters that are not `Cc` but still move text around on a line or
/// between lines: line/paragraph separators and bidirectional controls.
fn is_format_hazard(c: char) -> bool {
    matches!(
        c,
        '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if c.is_control() || is_format_hazard(c) => {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32))
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(escape("a file.txt"), Cow::Borrowed("a file.txt")));
        assert_eq!(escape("Grüße/日本"), "Grüße/日本");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn newlines_and_controls_cannot_start_a_line() {
        let s = escape("x\nINFO forged line\r\x1b[31mred\x07\x7f\tend");
        assert_eq!(s, "x\\nINFO forged line\\r\\x1b[31mred\\x07\\x7f\\tend");
        assert!(!s.chars().any(|c| c.is_control()));
    }

    #[test]
    fn backslash_is_escaped_so_the_form_is_unambiguous() {
        assert_eq!(escape("a\\nb"), "a\\\\nb");
        assert_ne!(escape("a\\nb"), escape("a\nb"));
    }

    #[test]
    fn unicode_separators_c1_and_bidi_overrides_are_escaped() {
        assert_eq!(escape("a\u{2028}b"), "a\\u{2028}b");
        assert_eq!(escape("a\u{85}b"), "a\\u{0085}b");
        assert_eq!(escape("\u{202e}cod.exe"), "\\u{202e}cod.exe");
    }

    #[test]
    fn invalid_utf8_bytes_become_hex() {
        assert_eq!(escape_bytes(b"ok"), "ok");
        assert_eq!(escape_bytes(b"a\xffb\n"), "a\\xffb\\n");
        assert_eq!(escape_bytes(b"\xc3"), "\\xc3");
        use std::os::unix::ffi::OsStrExt;
        let p = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/d/\xfe\nx"));
        assert_eq!(EscapedPath(p).to_string(), "/d/\\xfe\\nx");
    }

    #[test]
    fn display_wrappers_escape() {
        assert_eq!(Escaped("a\nb").to_string(), "a\\nb");
        assert_eq!(format!("{:?}", Escaped("a\"\n")), "\"a\"\\n\"");
    }
}
