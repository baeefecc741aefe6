//! The decrypted document with everything sops keeps (comments, value types, order): what the
//! emitters print and what encryption starts from. Every value and comment text is held in a
//! zeroizing buffer. Converted to the public [`crate::Node`] tree (comments dropped) for
//! lookups.

use zeroize::Zeroizing;

use crate::gofmt;
use crate::tree::{Leaf, LeafKind, Node};
use agentsec_secrets::SecretValue;

/// A typed scalar value (sops: `string`, `int`, `float64`, `bool`, `time.Time`).
pub(crate) enum Value {
    /// A string; raw bytes (the binary store may hold any bytes).
    Str(Zeroizing<Vec<u8>>),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp, rendered as Go's `MarshalText` (RFC 3339, nanoseconds when non-zero).
    Time(Zeroizing<String>),
}

impl Value {
    /// A string value.
    pub(crate) fn str(s: &str) -> Value {
        Value::Str(Zeroizing::new(s.as_bytes().to_vec()))
    }

    /// The bytes sops feeds to the MAC and encrypts (`ToBytes`, SPEC 5.1).
    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            Value::Str(b) => b.to_vec(),
            Value::Int(i) => i.to_string().into_bytes(),
            Value::Float(f) => gofmt::float_mac_bytes(*f).into_bytes(),
            Value::Bool(true) => b"True".to_vec(),
            Value::Bool(false) => b"False".to_vec(),
            Value::Time(t) => t.as_bytes().to_vec(),
        })
    }

    /// The text and kind of the value in the public tree; float texts follow `json` (Go
    /// `encoding/json`) or yaml.v3.
    pub(crate) fn public_text(&self, json: bool) -> (Zeroizing<Vec<u8>>, LeafKind) {
        match self {
            Value::Str(b) => (b.clone(), LeafKind::Str),
            Value::Int(i) => (Zeroizing::new(i.to_string().into_bytes()), LeafKind::Int),
            Value::Float(f) => {
                let t = if json {
                    gofmt::float_json_text(*f)
                } else {
                    gofmt::float_yaml_text(*f)
                };
                (Zeroizing::new(t.into_bytes()), LeafKind::Float)
            }
            Value::Bool(b) => (
                Zeroizing::new(if *b {
                    b"true".to_vec()
                } else {
                    b"false".to_vec()
                }),
                LeafKind::Bool,
            ),
            Value::Time(t) => (Zeroizing::new(t.as_bytes().to_vec()), LeafKind::Time),
        }
    }

    /// The sops `type:` name.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "str",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Time(_) => "time",
        }
    }

    /// An independent copy.
    pub(crate) fn duplicate(&self) -> Value {
        match self {
            Value::Str(b) => Value::Str(b.clone()),
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Float(*f),
            Value::Bool(b) => Value::Bool(*b),
            Value::Time(t) => Value::Time(t.clone()),
        }
    }
}

/// A node of a document.
pub(crate) enum PlainNode {
    /// A mapping: entries and comment lines in order.
    Map(Vec<PlainItem>),
    /// A sequence; comment lines are elements (as in sops).
    List(Vec<PlainNode>),
    /// A comment element of a sequence (the text after `#`).
    Comment(Zeroizing<String>),
    /// A scalar, and whether the file stored it encrypted.
    Leaf(Value, bool),
    /// `null`.
    Null,
}

/// An item of a mapping.
pub(crate) enum PlainItem {
    /// A key and its value.
    Entry(String, PlainNode),
    /// A comment line (the text after `#`).
    Comment(Zeroizing<String>),
}

impl PlainNode {
    /// An independent deep copy.
    pub(crate) fn duplicate(&self) -> PlainNode {
        match self {
            PlainNode::Map(items) => PlainNode::Map(
                items
                    .iter()
                    .map(|i| match i {
                        PlainItem::Entry(k, v) => PlainItem::Entry(k.clone(), v.duplicate()),
                        PlainItem::Comment(c) => PlainItem::Comment(c.clone()),
                    })
                    .collect(),
            ),
            PlainNode::List(items) => {
                PlainNode::List(items.iter().map(PlainNode::duplicate).collect())
            }
            PlainNode::Comment(c) => PlainNode::Comment(c.clone()),
            PlainNode::Leaf(v, e) => PlainNode::Leaf(v.duplicate(), *e),
            PlainNode::Null => PlainNode::Null,
        }
    }

    /// The value of `key` in a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&PlainNode> {
        match self {
            PlainNode::Map(items) => items.iter().find_map(|i| match i {
                PlainItem::Entry(k, v) if k == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// The public tree (comments dropped); float texts follow `json` (Go `encoding/json`) or
    /// yaml.v3.
    pub(crate) fn to_public(&self, json: bool) -> Option<Node> {
        Some(match self {
            PlainNode::Map(items) => Node::Map(
                items
                    .iter()
                    .filter_map(|i| match i {
                        PlainItem::Entry(k, v) => v.to_public(json).map(|n| (k.clone(), n)),
                        PlainItem::Comment(_) => None,
                    })
                    .collect(),
            ),
            PlainNode::List(items) => {
                Node::List(items.iter().filter_map(|n| n.to_public(json)).collect())
            }
            PlainNode::Comment(_) => return None,
            PlainNode::Null => Node::Null,
            PlainNode::Leaf(v, enc) => {
                let (text, kind) = v.public_text(json);
                Node::Leaf(Leaf::new(SecretValue::new(text), kind, *enc))
            }
        })
    }
}
