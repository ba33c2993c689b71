//! Pure parsing of the parameter syntaxes the AWS CLI accepts:
//!
//! - shorthand: `K=V,K2=V2`, `TagKey=k,TagValue=v`,
//!   `EncryptionContextSubset={K=V,K2=V2}`, with `'...'` or `"..."` quoting
//!   for values that hold `,` or `}`;
//! - JSON: `{"K":"V"}`, `[{"TagKey":"k","TagValue":"v"}]`, `["a","b"]`;
//! - the `file://PATH` (text) and `fileb://PATH` (raw bytes) prefixes, and
//!   base64 for inline binary values (AWS CLI v2's default).
//!
//! No I/O happens here: a prefix becomes a [`TextSource`] or
//! [`BinarySource`] naming the file, and `input.rs` reads it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kmsd_client::{EncryptionContext, GrantConstraints, Tag};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Why a parameter value could not be parsed; shown after
/// `Error parsing parameter '--flag': `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(message.into()))
}

pub const FILE_PREFIX: &str = "file://";
pub const FILEB_PREFIX: &str = "fileb://";

/// Where a text parameter (a policy, a context) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextSource<'a> {
    Inline(&'a str),
    /// `file://PATH` (or `fileb://PATH`): the file's UTF-8 content.
    File(PathBuf),
}

/// Where a binary parameter (a plaintext, a ciphertext blob) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinarySource {
    /// An inline value, base64-decoded as AWS CLI v2 does.
    Inline(Vec<u8>),
    /// `fileb://PATH`: the file's raw bytes.
    RawFile(PathBuf),
    /// `file://PATH`: the file holds base64 text.
    Base64File(PathBuf),
}

/// How inline binary values are read (AWS CLI v2's `--cli-binary-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BinaryFormat {
    /// Inline values are base64 (the AWS CLI v2 default).
    #[default]
    Base64,
    /// Inline values are taken as they are, as raw bytes.
    RawInBase64Out,
}

/// `~/x` becomes `$HOME/x`, as the AWS CLI expands paths after `file://`.
pub fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ if path == "~" => home.map_or_else(|| PathBuf::from(path), PathBuf::from),
        _ => PathBuf::from(path),
    }
}

fn file_path(rest: &str, home: Option<&str>) -> Result<PathBuf, ParseError> {
    if rest.is_empty() {
        return err("the file:// or fileb:// prefix needs a path after it");
    }
    Ok(expand_home(rest, home))
}

pub fn text_source<'a>(raw: &'a str, home: Option<&str>) -> Result<TextSource<'a>, ParseError> {
    if let Some(rest) = raw
        .strip_prefix(FILE_PREFIX)
        .or_else(|| raw.strip_prefix(FILEB_PREFIX))
    {
        return file_path(rest, home).map(TextSource::File);
    }
    Ok(TextSource::Inline(raw))
}

pub fn binary_source(
    raw: &str,
    home: Option<&str>,
    format: BinaryFormat,
) -> Result<BinarySource, ParseError> {
    if let Some(rest) = raw.strip_prefix(FILEB_PREFIX) {
        return file_path(rest, home).map(BinarySource::RawFile);
    }
    if let Some(rest) = raw.strip_prefix(FILE_PREFIX) {
        return file_path(rest, home).map(BinarySource::Base64File);
    }
    match format {
        BinaryFormat::Base64 => decode_base64(raw).map(BinarySource::Inline),
        BinaryFormat::RawInBase64Out => Ok(BinarySource::Inline(raw.as_bytes().to_vec())),
    }
}

/// Decodes standard base64, ignoring ASCII whitespace (so the wrapped
/// output of `base64` works).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, ParseError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    B64.decode(compact.as_bytes()).map_err(|e| {
        ParseError(format!(
            "Invalid base64 ({}). AWS CLI v2 reads inline binary values as base64; \
             use fileb://PATH to pass a file's raw bytes, or --cli-binary-format raw-in-base64-out",
            e.to_string().trim_end_matches('.')
        ))
    })
}

// ---------------------------------------------------------------------------
// Shorthand syntax

/// A parsed shorthand value: a string or a `{...}` structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Scalar(String),
    Struct(Vec<(String, Value)>),
}

/// Parses `K=V,K2={A=B},K3='quoted, value'`.
pub fn parse_shorthand(input: &str) -> Result<Vec<(String, Value)>, ParseError> {
    let mut p = Parser {
        chars: input.chars().collect(),
        pos: 0,
    };
    let fields = p.fields(false)?;
    p.skip_ws();
    if p.pos < p.chars.len() {
        return p.error("',' or end of input");
    }
    Ok(fields)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error<T>(&self, expected: &str) -> Result<T, ParseError> {
        let received = match self.peek() {
            Some(c) => format!("'{c}'"),
            None => "end of input".to_string(),
        };
        err(format!(
            "Expected: {expected}, received: {received} at position {} in shorthand {:?}",
            self.pos,
            self.chars.iter().collect::<String>()
        ))
    }

    /// `key=value` pairs separated by commas; inside braces the list ends
    /// at `}` (not consumed) and may be empty.
    fn fields(&mut self, nested: bool) -> Result<Vec<(String, Value)>, ParseError> {
        let mut fields: Vec<(String, Value)> = Vec::new();
        self.skip_ws();
        if nested && self.peek() == Some('}') {
            return Ok(fields);
        }
        loop {
            let key = self.key()?;
            if fields.iter().any(|(k, _)| *k == key) {
                return err(format!("Duplicate key '{key}' in shorthand"));
            }
            let value = self.value(nested)?;
            fields.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') if nested => return Ok(fields),
                None if !nested => return Ok(fields),
                _ if nested => return self.error("',' or '}'"),
                _ => return self.error("',' or end of input"),
            }
        }
    }

    fn key(&mut self) -> Result<String, ParseError> {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == '=' {
                break;
            }
            if matches!(c, ',' | '{' | '}' | '"' | '\'') {
                return self.error("'='");
            }
            self.pos += 1;
        }
        let key: String = self.chars[start..self.pos].iter().collect();
        let key = key.trim().to_string();
        if self.peek() != Some('=') {
            return self.error("'='");
        }
        if key.is_empty() {
            return self.error("a key before '='");
        }
        self.pos += 1;
        Ok(key)
    }

    fn value(&mut self, nested: bool) -> Result<Value, ParseError> {
        self.skip_ws();
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let inner = self.fields(true)?;
                if self.peek() != Some('}') {
                    return self.error("'}'");
                }
                self.pos += 1;
                Ok(Value::Struct(inner))
            }
            Some(q @ ('"' | '\'')) => self.quoted(q).map(Value::Scalar),
            _ => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c == ',' || (nested && c == '}') {
                        break;
                    }
                    self.pos += 1;
                }
                let raw: String = self.chars[start..self.pos].iter().collect();
                Ok(Value::Scalar(raw.trim().to_string()))
            }
        }
    }

    /// A value in quotes; `\q` and `\\` escape the quote and the backslash.
    fn quoted(&mut self, quote: char) -> Result<String, ParseError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return self.error(&format!("closing {quote}")),
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') if matches!(self.chars.get(self.pos + 1), Some(n) if *n == quote || *n == '\\') =>
                {
                    out.push(self.chars[self.pos + 1]);
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

fn string_map(
    fields: Vec<(String, Value)>,
    what: &str,
) -> Result<BTreeMap<String, String>, ParseError> {
    let mut map = BTreeMap::new();
    for (k, v) in fields {
        match v {
            Value::Scalar(s) => {
                map.insert(k, s);
            }
            Value::Struct(_) => {
                return err(format!(
                    "The value of '{k}' in {what} must be a string, not a structure"
                ));
            }
        }
    }
    Ok(map)
}

fn looks_like_json(text: &str, open: char) -> bool {
    text.trim_start().starts_with(open)
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, ParseError> {
    serde_json::from_str(text).map_err(|e| ParseError(format!("Invalid JSON for {what}: {e}")))
}

// ---------------------------------------------------------------------------
// Typed parameters

/// `K=V,K2=V2` or `{"K":"V","K2":"V2"}`.
pub fn encryption_context(text: &str) -> Result<EncryptionContext, ParseError> {
    if looks_like_json(text, '{') {
        return json(
            text,
            "an encryption context (expected an object of strings)",
        );
    }
    string_map(parse_shorthand(text)?, "an encryption context")
}

fn tag_from_map(mut map: BTreeMap<String, String>) -> Result<Tag, ParseError> {
    if let Some(other) = map.keys().find(|k| *k != "TagKey" && *k != "TagValue") {
        return err(format!(
            "Unknown key '{other}' in a tag; expected TagKey and TagValue"
        ));
    }
    let (Some(tag_key), Some(tag_value)) = (map.remove("TagKey"), map.remove("TagValue")) else {
        return err("A tag needs both TagKey and TagValue, as in TagKey=Owner,TagValue=alice");
    };
    Ok(Tag { tag_key, tag_value })
}

/// One `TagKey=K,TagValue=V` per value, or a single JSON list of
/// `{"TagKey":..,"TagValue":..}` objects.
pub fn tags(values: &[String]) -> Result<Vec<Tag>, ParseError> {
    if let [only] = values
        && looks_like_json(only, '[')
    {
        let maps: Vec<BTreeMap<String, String>> = json(only, "tags (expected a list of objects)")?;
        return maps.into_iter().map(tag_from_map).collect();
    }
    values
        .iter()
        .map(|v| {
            if looks_like_json(v, '{') {
                tag_from_map(json(v, "a tag (expected an object of strings)")?)
            } else {
                tag_from_map(string_map(parse_shorthand(v)?, "a tag")?)
            }
        })
        .collect()
}

/// Space-separated values, each of which may hold a comma-separated list,
/// or a single JSON list of strings.
pub fn string_list(values: &[String]) -> Result<Vec<String>, ParseError> {
    if let [only] = values
        && looks_like_json(only, '[')
    {
        return json(only, "a list (expected a list of strings)");
    }
    let mut out = Vec::new();
    for v in values {
        for item in v.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return err(format!("Empty item in list {v:?}"));
            }
            out.push(item.to_string());
        }
    }
    Ok(out)
}

const SUBSET: &str = "EncryptionContextSubset";
const EQUALS: &str = "EncryptionContextEquals";

/// `EncryptionContextSubset={K=V,...}` and/or `EncryptionContextEquals={...}`,
/// or the same as JSON.
pub fn constraints(text: &str) -> Result<GrantConstraints, ParseError> {
    let maps: Vec<(String, EncryptionContext)> = if looks_like_json(text, '{') {
        let m: BTreeMap<String, EncryptionContext> = json(
            text,
            "grant constraints (expected an object of objects of strings)",
        )?;
        m.into_iter().collect()
    } else {
        let mut out = Vec::new();
        for (k, v) in parse_shorthand(text)? {
            match v {
                Value::Struct(fields) => out.push((k.clone(), string_map(fields, &k)?)),
                Value::Scalar(_) => {
                    return err(format!(
                        "The value of '{k}' must be a structure, as in {k}={{K=V}}"
                    ));
                }
            }
        }
        out
    };
    let mut c = GrantConstraints::default();
    for (k, ctx) in maps {
        match k.as_str() {
            SUBSET => c.encryption_context_subset = Some(ctx),
            EQUALS => c.encryption_context_equals = Some(ctx),
            _ => {
                return err(format!(
                    "Unknown constraint '{k}'; expected {SUBSET} or {EQUALS}"
                ));
            }
        }
    }
    if c.encryption_context_subset.is_none() && c.encryption_context_equals.is_none() {
        return err(format!("Grant constraints need {SUBSET} or {EQUALS}"));
    }
    Ok(c)
}

#[cfg(test)]
mod tests;
