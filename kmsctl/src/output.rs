//! Rendering responses the way the AWS CLI prints them.
//!
//! - `json` (default): pretty-printed with a 4-space indent, fields in the
//!   API's order, absent (null) fields dropped; an empty response prints
//!   nothing.
//! - `text`: the AWS CLI's text format. The scalar fields of an object go on
//!   one tab-separated line, keys sorted; each nested object or list goes on
//!   its own lines, prefixed by its field name in upper case
//!   (`KEYS\t<KeyArn>\t<KeyId>`); booleans print as `True`/`False`.

use crate::json::Json;
use serde::Serialize;
use zeroize::Zeroizing;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Json,
    Text,
}

/// What a command prints on success.
pub enum Reply {
    /// A response document, rendered as `--output` asks.
    Document(Json),
    /// One value alone on a line, whatever `--output` says (the
    /// `--plaintext-only` convenience).
    Line(Zeroizing<String>),
}

impl Reply {
    /// The document of a response: its JSON form without null fields.
    pub fn of<T: Serialize>(response: &T) -> Result<Reply, serde_json::Error> {
        let mut doc = Json::of(response)?;
        doc.strip_nulls();
        Ok(Reply::Document(doc))
    }

    pub fn render(&self, format: OutputFormat) -> Zeroizing<String> {
        match (self, format) {
            (Reply::Line(line), _) => Zeroizing::new(format!("{}\n", line.as_str())),
            (Reply::Document(doc), OutputFormat::Json) => render_json(doc),
            (Reply::Document(doc), OutputFormat::Text) => render_text(doc),
        }
    }
}

pub fn render_json(doc: &Json) -> Zeroizing<String> {
    if doc.is_empty_object() {
        return Zeroizing::new(String::new());
    }
    let mut buf = Zeroizing::new(Vec::new());
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut *buf, fmt);
    // Serializing a `Json` into memory cannot fail: every key is a string
    // and every number finite.
    if doc.serialize(&mut ser).is_err() {
        return Zeroizing::new(String::new());
    }
    buf.push(b'\n');
    Zeroizing::new(String::from_utf8_lossy(&buf).into_owned())
}

pub fn render_text(doc: &Json) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    if !doc.is_empty_object() {
        format_text(doc, None, None, &mut out);
    }
    out
}

fn scalar_text(v: &Json) -> String {
    match v {
        Json::Null => "None".to_string(),
        Json::Bool(true) => "True".to_string(),
        Json::Bool(false) => "False".to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.to_string(),
        Json::Array(_) | Json::Object(_) => String::new(),
    }
}

/// A port of `awscli/text.py`.
fn format_text(
    item: &Json,
    identifier: Option<&str>,
    scalar_keys: Option<&[String]>,
    out: &mut String,
) {
    match item {
        Json::Object(fields) => format_object(fields, identifier, scalar_keys, out),
        Json::Array(items) => format_list(items, identifier, out),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

fn format_list(items: &[Json], identifier: Option<&str>, out: &mut String) {
    if items.is_empty() {
        return;
    }
    if items.iter().any(|e| matches!(e, Json::Object(_))) {
        let keys = all_scalar_keys(items);
        for item in items {
            format_text(item, identifier, Some(&keys), out);
        }
    } else if items.iter().any(|e| matches!(e, Json::Array(_))) {
        let (scalars, nested): (Vec<&Json>, Vec<&Json>) = items.iter().partition(|e| e.is_scalar());
        if !scalars.is_empty() {
            format_scalar_list(&scalars, identifier, out);
        }
        for item in nested {
            format_text(item, identifier, None, out);
        }
    } else {
        format_scalar_list(&items.iter().collect::<Vec<_>>(), identifier, out);
    }
}

fn format_scalar_list(items: &[&Json], identifier: Option<&str>, out: &mut String) {
    match identifier {
        Some(id) => {
            for item in items {
                out.push_str(&format!("{}\t{}\n", id.to_uppercase(), scalar_text(item)));
            }
        }
        None => {
            let line: Vec<String> = items.iter().map(|i| scalar_text(i)).collect();
            out.push_str(&line.join("\t"));
            out.push('\n');
        }
    }
}

/// The sorted keys of the scalar fields found in any of the objects.
fn all_scalar_keys(items: &[Json]) -> Vec<String> {
    let mut keys: Vec<String> = items
        .iter()
        .filter_map(|item| match item {
            Json::Object(fields) => Some(fields),
            _ => None,
        })
        .flatten()
        .filter(|(_, v)| v.is_scalar())
        .map(|(k, _)| k.clone())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn format_object(
    fields: &[(String, Json)],
    identifier: Option<&str>,
    scalar_keys: Option<&[String]>,
    out: &mut String,
) {
    let mut sorted: Vec<&(String, Json)> = fields.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut scalars: Vec<String> = Vec::new();
    let mut nested: Vec<(&str, &Json)> = Vec::new();
    match scalar_keys {
        None => {
            for (k, v) in sorted {
                if v.is_scalar() {
                    scalars.push(scalar_text(v));
                } else {
                    nested.push((k, v));
                }
            }
        }
        Some(keys) => {
            for key in keys {
                let value = fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
                scalars.push(value.map(scalar_text).unwrap_or_default());
            }
            for (k, v) in sorted {
                if !keys.contains(k) {
                    nested.push((k, v));
                }
            }
        }
    }
    if !scalars.is_empty() {
        if let Some(id) = identifier {
            scalars.insert(0, id.to_uppercase());
        }
        out.push_str(&scalars.join("\t"));
        out.push('\n');
    }
    for (k, v) in nested {
        format_text(v, Some(k), None, out);
    }
}

#[cfg(test)]
mod tests;
