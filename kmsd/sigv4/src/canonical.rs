//! The canonical request and the string to sign (AWS General Reference,
//! "Create a signed AWS API request", rules for every service but S3).

use sha2::{Digest, Sha256};

use crate::RequestParts;

/// `AWS4-HMAC-SHA256`: the only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of a credential scope.
pub const TERMINATOR: &str = "aws4_request";

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Lowercase hex of SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// The canonical request (bytes, since header values may hold any byte but
/// CR and LF):
///
/// ```text
/// METHOD \n canonical URI \n canonical query \n
/// name:value \n   (for each signed header, in SignedHeaders order)
/// \n SignedHeaders \n payload hash
/// ```
///
/// `signed` are the signed header names, lowercase and sorted (as
/// [`crate::parse`] checked them).
pub fn canonical_request(req: &RequestParts<'_>, signed: &[String], payload_hash: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(req.path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(req.query).as_bytes());
    out.push(b'\n');
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut first = true;
        for (_, value) in req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            if !first {
                out.push(b',');
            }
            first = false;
            push_header_value(&mut out, value);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// The string to sign: algorithm, X-Amz-Date, scope, hash of the canonical
/// request, one per line.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request)
    )
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Appends a header value trimmed of spaces and tabs at both ends, each
/// inner run of spaces and tabs replaced by one space (as botocore does:
/// `' '.join(value.split())`).
pub fn push_header_value(out: &mut Vec<u8>, value: &[u8]) {
    let mut pending_space = false;
    let mut wrote = false;
    for &b in value {
        if is_ows(b) {
            pending_space = wrote;
            continue;
        }
        if pending_space {
            out.push(b' ');
            pending_space = false;
        }
        out.push(b);
        wrote = true;
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn push_encoded(out: &mut String, bytes: &[u8], keep_slash: bool) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
    }
}

/// The canonical URI of a path as it came on the wire (already
/// percent-encoded once by the client): empty and `.` segments dropped,
/// `..` removes the segment before it, a trailing `/` kept, then every byte
/// but unreserved ones and `/` percent-encoded (so `%` becomes `%25`: AWS
/// encodes the path twice for every service but S3). An empty path is `/`.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    if path.starts_with('/') {
        normalized.push('/');
    }
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    let mut out = String::with_capacity(normalized.len() + 8);
    push_encoded(&mut out, normalized.as_bytes(), true);
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays a
/// literal `%`. `+` stays `+` (RFC 3986, not form encoding).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hi = (b[i + 1] as char).to_digit(16);
            let lo = (b[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The canonical query string of a raw query (without `?`): split on `&`
/// (empty parts dropped), each part split at its first `=` (no `=`: empty
/// value), names and values percent-decoded then encoded again (unreserved
/// bytes kept, every other byte `%XX` uppercase), sorted by name then value,
/// joined `name=value` with `&`.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            let mut n = String::new();
            let mut v = String::new();
            push_encoded(&mut n, &percent_decode(name), false);
            push_encoded(&mut v, &percent_decode(value), false);
            (n, v)
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (n, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(n);
        out.push('=');
        out.push_str(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &[u8]) -> String {
        let mut out = Vec::new();
        push_header_value(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn header_values_trimmed_and_collapsed() {
        assert_eq!(value(b"a"), "a");
        assert_eq!(value(b"  a  "), "a");
        assert_eq!(value(b"a   b \t c"), "a b c");
        assert_eq!(value(b"\ta\t"), "a");
        assert_eq!(value(b""), "");
        assert_eq!(value(b"   "), "");
        assert_eq!(value(b"\"a   b\""), "\"a b\"");
    }

    #[test]
    fn uri() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("//"), "/");
        assert_eq!(canonical_uri("/a/b"), "/a/b");
        assert_eq!(canonical_uri("/a/b/"), "/a/b/");
        assert_eq!(canonical_uri("/a//b"), "/a/b");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_uri("/.."), "/");
        assert_eq!(canonical_uri("/../a"), "/a");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(canonical_uri("/a b"), "/a%20b");
        assert_eq!(canonical_uri("/ü"), "/%C3%BC");
        assert_eq!(canonical_uri("/-_.~"), "/-_.~");
        assert_eq!(canonical_uri("/a:b@c"), "/a%3Ab%40c");
    }

    #[test]
    fn query() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1"), "a=1&b=2");
        assert_eq!(canonical_query("a=2&a=1"), "a=1&a=2");
        assert_eq!(canonical_query("a"), "a=");
        assert_eq!(canonical_query("a=&b"), "a=&b=");
        assert_eq!(canonical_query("&&a=1&"), "a=1");
        assert_eq!(canonical_query("a=b%20c"), "a=b%20c");
        assert_eq!(canonical_query("a=b%2fc"), "a=b%2Fc");
        assert_eq!(canonical_query("a=b/c"), "a=b%2Fc");
        assert_eq!(canonical_query("a=b+c"), "a=b%2Bc");
        assert_eq!(canonical_query("a=%zz"), "a=%25zz");
        assert_eq!(canonical_query("a=%4"), "a=%254");
        assert_eq!(canonical_query("a=x=y"), "a=x%3Dy");
        assert_eq!(canonical_query("%41=1"), "A=1");
        // Sorted by the encoded name: "A" (0x41) < "a" (0x61) < "~".
        assert_eq!(canonical_query("~=1&a=1&A=1"), "A=1&a=1&~=1");
    }

    #[test]
    fn hexes() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
