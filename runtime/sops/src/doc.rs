//! The parsed, still encrypted document: what the YAML and JSON readers produce and what the
//! metadata reader and the decrypting walker consume. Format-neutral, so that dotenv and INI
//! readers can produce it too.

/// A scalar as the store typed it (yaml.v3 resolution for YAML, `encoding/json` for JSON).
#[derive(Clone, Debug)]
pub(crate) enum Scalar {
    /// A string (for encrypted values, the `ENC[...]` text).
    Str(String),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp, already rendered as Go's `MarshalText` (RFC 3339 with nanoseconds).
    Time(String),
    /// A JSON number, typed later: sops < 3.13.2 reads every JSON number as float64, 3.13.2+
    /// reads integers that fit int64 as int.
    JsonNumber {
        /// The value when the literal is an integer that fits `i64`.
        int: Option<i64>,
        /// The value as float64 (Go's rounding).
        float: f64,
    },
}

/// A scalar with the text it was written as (needed for `lastmodified`, whose YAML form may be
/// an unquoted timestamp) and its line.
#[derive(Clone, Debug)]
pub(crate) struct RawScalar {
    pub(crate) value: Scalar,
    pub(crate) raw: String,
    pub(crate) line: Option<usize>,
}

/// One mapping entry.
#[derive(Clone, Debug)]
pub(crate) struct RawEntry {
    pub(crate) key: String,
    pub(crate) value: RawNode,
}

impl RawEntry {
    /// A comment item of a mapping.
    pub(crate) fn comment(text: String) -> Self {
        RawEntry {
            key: String::new(),
            value: RawNode::Comment(text),
        }
    }

    /// Whether this item is a comment rather than a key/value pair.
    pub(crate) fn is_comment(&self) -> bool {
        matches!(self.value, RawNode::Comment(_))
    }
}

/// A node of a parsed document.
#[derive(Clone, Debug)]
pub(crate) enum RawNode {
    Map(Vec<RawEntry>),
    List(Vec<RawNode>),
    Scalar(RawScalar),
    Null,
    /// A comment line (the text after `#`). In a sequence it is an element; in a mapping it is
    /// the value of an entry whose key is ignored (sops: a `TreeItem` with a `Comment` key).
    Comment(String),
}

impl RawNode {
    /// The value of `key` in a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&RawNode> {
        match self {
            RawNode::Map(entries) => entries
                .iter()
                .find(|e| !e.is_comment() && e.key == key)
                .map(|e| &e.value),
            _ => None,
        }
    }
}

/// A parsed file: one or more documents, each a mapping.
pub(crate) struct RawFile {
    pub(crate) documents: Vec<Vec<RawEntry>>,
}
