//! A JSON tree that keeps object fields in order and refuses duplicate
//! field names. `serde_json::Value` silently keeps the last duplicate, which
//! would let `{"Effect": "Deny", "Effect": "Allow"}` read as Allow to kmsd
//! and as Deny to a person reviewing the text.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// The number as written by serde_json (`1000`, `-1`, `1.5`).
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn parse(text: &str) -> Result<Json, String> {
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
    }

    /// The JSON type name, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "a list",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields: Vec<(String, Json)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate field \"{key}\"")));
            }
            let value = map.next_value()?;
            fields.push((key, value));
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_types_in_order() {
        let j = Json::parse(r#"{"b": [1, -2, 1.5, true, null], "a": "x"}"#).unwrap();
        assert_eq!(
            j,
            Json::Object(vec![
                (
                    "b".into(),
                    Json::Array(vec![
                        Json::Number("1".into()),
                        Json::Number("-2".into()),
                        Json::Number("1.5".into()),
                        Json::Bool(true),
                        Json::Null,
                    ])
                ),
                ("a".into(), Json::String("x".into())),
            ])
        );
    }

    #[test]
    fn duplicate_fields_are_rejected_at_any_depth() {
        let e = Json::parse(r#"{"Effect": "Deny", "Effect": "Allow"}"#).unwrap_err();
        assert!(e.contains("duplicate field \"Effect\""), "{e}");
        let e = Json::parse(r#"{"S": [{"a": 1, "a": 2}]}"#).unwrap_err();
        assert!(e.contains("duplicate field \"a\""), "{e}");
    }

    #[test]
    fn garbage_and_trailing_text_are_rejected() {
        for text in ["", "{", "not json", "{} {}", "{\"a\":1,}"] {
            let e = Json::parse(text).unwrap_err();
            assert!(e.starts_with("not valid JSON"), "{text:?}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = "[".repeat(100_000);
        assert!(Json::parse(&text).is_err());
    }
}
