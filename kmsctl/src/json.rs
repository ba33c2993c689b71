//! An ordered JSON tree. serde_json's `Value` sorts object keys (its
//! `preserve_order` feature would change the ordering for every crate in
//! the workspace), while the AWS CLI prints fields in the API's order. A
//! response is serialized to JSON text and read back into this tree, which
//! keeps the order. Strings are wiped on drop: a `Plaintext` passes
//! through here.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::fmt;
use zeroize::Zeroizing;

/// No `Debug` outside tests: a string may be a base64 plaintext.
#[cfg_attr(test, derive(Debug))]
#[derive(PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Zeroizing<String>),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The JSON form of a response, fields in declaration order.
    pub fn of<T: Serialize>(value: &T) -> Result<Json, serde_json::Error> {
        let text = Zeroizing::new(serde_json::to_string(value)?);
        serde_json::from_str(&text)
    }

    pub fn string(s: impl Into<String>) -> Json {
        Json::String(Zeroizing::new(s.into()))
    }

    /// Drops object fields whose value is null, at every depth, as the AWS
    /// CLI omits absent fields.
    pub fn strip_nulls(&mut self) {
        match self {
            Json::Object(fields) => {
                fields.retain(|(_, v)| *v != Json::Null);
                for (_, v) in fields {
                    v.strip_nulls();
                }
            }
            Json::Array(items) => items.iter_mut().for_each(Json::strip_nulls),
            _ => {}
        }
    }

    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Removes an object field; `None` when absent or not an object.
    pub fn remove(&mut self, key: &str) -> Option<Json> {
        match self {
            Json::Object(fields) => {
                let at = fields.iter().position(|(k, _)| k == key)?;
                Some(fields.remove(at).1)
            }
            _ => None,
        }
    }

    pub fn is_empty_object(&self) -> bool {
        matches!(self, Json::Object(fields) if fields.is_empty())
    }

    pub fn is_scalar(&self) -> bool {
        !matches!(self, Json::Array(_) | Json::Object(_))
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(v) => s.serialize_str(v),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
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
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a non-finite number"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::string(v))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::string(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            fields.push((k, v));
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsd_client::{GetKeyRotationStatusResponse, Timestamp};

    #[test]
    fn keeps_field_order_and_types() {
        let j: Json =
            serde_json::from_str(r#"{"Z":1,"A":[true,null,-2,1.5],"M":{"y":"s"}}"#).unwrap();
        let keys: Vec<&str> = match &j {
            Json::Object(f) => f.iter().map(|(k, _)| k.as_str()).collect(),
            _ => panic!("not an object"),
        };
        assert_eq!(keys, ["Z", "A", "M"]);
        assert_eq!(
            serde_json::to_string(&j).unwrap(),
            r#"{"Z":1,"A":[true,null,-2,1.5],"M":{"y":"s"}}"#
        );
    }

    #[test]
    fn strip_nulls_at_every_depth_but_not_in_arrays() {
        let mut j: Json =
            serde_json::from_str(r#"{"a":null,"b":{"c":null,"d":1},"e":[null,{"f":null}]}"#)
                .unwrap();
        j.strip_nulls();
        assert_eq!(
            serde_json::to_string(&j).unwrap(),
            r#"{"b":{"d":1},"e":[null,{}]}"#
        );
    }

    #[test]
    fn of_a_response_struct() {
        let r = GetKeyRotationStatusResponse {
            key_id: "k".into(),
            key_rotation_enabled: true,
            rotation_period_in_days: Some(365),
            next_rotation_date: Some(Timestamp(0)),
            on_demand_rotation_start_date: None,
        };
        let mut j = Json::of(&r).unwrap();
        assert_eq!(j.get("OnDemandRotationStartDate"), Some(&Json::Null));
        j.strip_nulls();
        assert_eq!(j.get("OnDemandRotationStartDate"), None);
        assert_eq!(
            j.get("NextRotationDate"),
            Some(&Json::string("1970-01-01T00:00:00+00:00"))
        );
        assert_eq!(j.remove("KeyId"), Some(Json::string("k")));
        assert_eq!(j.remove("KeyId"), None);
        assert!(!j.is_empty_object());
        assert!(Json::Object(vec![]).is_empty_object());
    }
}
