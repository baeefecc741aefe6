//! JSON reader: the document into a [`RawFile`], keeping key order and refusing duplicate keys.
//!
//! Numbers are kept with both readings (`int` when the literal is an integer that fits `i64`,
//! and the float64 value) because sops changed its reading in 3.13.2; the walker picks one from
//! the file's `version`.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::doc::{RawEntry, RawFile, RawNode, RawScalar, Scalar};
use crate::error::SopsError;

/// Parses a JSON document whose top level must be an object.
pub(crate) fn parse(bytes: &[u8], file: &str) -> Result<RawFile, SopsError> {
    let node: JsonNode = serde_json::from_slice(bytes).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Eof => "unexpected end of JSON",
            serde_json::error::Category::Data => "unsupported JSON content",
        };
        // serde_json's message can quote input (`invalid type: string "..."`): keep only our own
        // texts (duplicate keys), which never contain values.
        let text = e.to_string();
        let message = if let Some(rest) = text.strip_prefix(DUP_PREFIX) {
            let key = rest.split(" at line ").next().unwrap_or_default();
            format!("duplicate key {key}")
        } else if text.starts_with(NUM_PREFIX) {
            NUM_PREFIX.to_owned()
        } else {
            kind.to_owned()
        };
        SopsError::Syntax {
            file: file.to_owned(),
            line: Some(e.line()),
            message: format!("{message} (column {})", e.column()),
        }
    })?;
    match node.0 {
        RawNode::Map(entries) => Ok(RawFile {
            documents: vec![entries],
        }),
        _ => Err(SopsError::Unsupported {
            file: file.to_owned(),
            line: None,
            what: "SOPS only supports JSON files with a top-level object".to_owned(),
        }),
    }
}

const DUP_PREFIX: &str = "duplicate JSON key ";
const NUM_PREFIX: &str = "number outside the range of float64";

struct JsonNode(RawNode);

fn scalar(value: Scalar, raw: String) -> JsonNode {
    JsonNode(RawNode::Scalar(RawScalar {
        value,
        raw,
        line: None,
    }))
}

impl<'de> Deserialize<'de> for JsonNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = JsonNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<JsonNode, E> {
        Ok(scalar(Scalar::Bool(v), v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonNode, E> {
        let number = Scalar::JsonNumber {
            int: Some(v),
            float: v as f64,
        };
        Ok(scalar(number, v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonNode, E> {
        let number = Scalar::JsonNumber {
            int: i64::try_from(v).ok(),
            float: v as f64,
        };
        Ok(scalar(number, v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonNode, E> {
        if !v.is_finite() {
            return Err(E::custom(NUM_PREFIX));
        }
        let number = Scalar::JsonNumber {
            int: None,
            float: v,
        };
        Ok(scalar(number, v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonNode, E> {
        Ok(scalar(Scalar::Str(v.to_owned()), v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<JsonNode, E> {
        Ok(scalar(Scalar::Str(v.clone()), v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<JsonNode, E> {
        Ok(JsonNode(RawNode::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<JsonNode, E> {
        Ok(JsonNode(RawNode::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonNode, A::Error> {
        let mut items = Vec::new();
        while let Some(JsonNode(n)) = seq.next_element()? {
            items.push(n);
        }
        Ok(JsonNode(RawNode::List(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonNode, A::Error> {
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("{DUP_PREFIX}{key:?}")));
            }
            let JsonNode(value) = map.next_value()?;
            entries.push(RawEntry { key, value });
        }
        Ok(JsonNode(RawNode::Map(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_without_values() {
        let err = parse(br#"{"a": "secret-one", "a": "secret-two"}"#, "f.json").err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("duplicate key \"a\""), "{msg}");
        assert!(!msg.contains("secret-"), "{msg}");
    }

    #[test]
    fn type_errors_do_not_quote_input() {
        let msg = parse(br#"{"a": "hunter2""#, "f.json")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(parse(br#"["x"]"#, "f.json").is_err());
    }
}
