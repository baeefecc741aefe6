//! The decrypted document: an ordered tree whose leaves hold [`SecretValue`]s.

use std::fmt;

use agentsec_secrets::SecretValue;

/// What kind of scalar a leaf was in the file (the SOPS `type:` of an encrypted value, or the
/// YAML/JSON type of an unencrypted one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeafKind {
    /// A string; the text is the raw bytes.
    Str,
    /// A 64-bit integer; the text is its decimal form (`31` for YAML `0x1F`).
    Int,
    /// A 64-bit float; the text is how `sops decrypt --extract` prints it for the file's format
    /// (YAML: `1234.56789`, `1e+25`, `.inf`; JSON: `42`, `1e-7`, `1e+21`).
    Float,
    /// A boolean; the text is `true` or `false`.
    Bool,
    /// A timestamp (YAML, sops 3.10+); the text is RFC 3339 with nanoseconds when non-zero,
    /// e.g. `2024-01-01T00:00:00Z`.
    Time,
}

/// One scalar of the tree: its text, its kind and whether the file stored it encrypted.
pub struct Leaf {
    value: SecretValue,
    kind: LeafKind,
    encrypted: bool,
}

impl Leaf {
    pub(crate) fn new(value: SecretValue, kind: LeafKind, encrypted: bool) -> Self {
        Leaf {
            value,
            kind,
            encrypted,
        }
    }

    /// The text of the value (see [`LeafKind`] for how non-strings are rendered).
    pub fn value(&self) -> &SecretValue {
        &self.value
    }

    /// What kind of scalar this was.
    pub fn kind(&self) -> LeafKind {
        self.kind
    }

    /// Whether the value was encrypted in the file (`false` for values the file's rules leave in
    /// clear, such as `*_unencrypted` keys, and for empty strings, which sops never encrypts).
    pub fn was_encrypted(&self) -> bool {
        self.encrypted
    }
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaf")
            .field(
                "value",
                &format_args!("[REDACTED; {} bytes]", self.value.len()),
            )
            .field("kind", &self.kind)
            .field("encrypted", &self.encrypted)
            .finish()
    }
}

/// A node of the decrypted tree. Order is the file's order.
#[derive(Debug)]
pub enum Node {
    /// A mapping, keys in file order.
    Map(Vec<(String, Node)>),
    /// A sequence (comment elements of the file are not included).
    List(Vec<Node>),
    /// A scalar value.
    Leaf(Leaf),
    /// `null`, `~` or an empty value: neither encrypted nor covered by the MAC.
    Null,
}

/// What [`SecretTree::lookup`] found.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// The path names a scalar.
    Leaf(&'a Leaf),
    /// The path names a mapping or sequence; `children` are its keys (for a sequence, the
    /// indices `0`, `1`, ...). Names only, never values.
    Branch {
        /// Keys of the mapping, or indices of the sequence, in order.
        children: Vec<String>,
    },
    /// The path names a `null`.
    Null,
    /// The path does not exist: the first `depth` segments matched, segment `depth` did not
    /// (a missing key, an index out of range, or a key below a scalar).
    NotFound {
        /// Number of segments that matched before the lookup failed.
        depth: usize,
    },
}

/// A decrypted, MAC-verified SOPS file.
///
/// A file has one document, except multi-document YAML, which has one per `---` section.
/// [`SecretTree::lookup`] and [`SecretTree::leaves`] address the **first** document (as
/// `sops decrypt --extract` does); the others are reachable with [`SecretTree::documents`].
#[derive(Debug)]
pub struct SecretTree {
    documents: Vec<Node>,
}

impl SecretTree {
    pub(crate) fn new(documents: Vec<Node>) -> Self {
        SecretTree { documents }
    }

    /// The root of the first document (an empty mapping if the file has none).
    pub fn root(&self) -> &Node {
        static EMPTY: Node = Node::Map(Vec::new());
        self.documents.first().unwrap_or(&EMPTY)
    }

    /// All documents, in file order (one for every format except multi-document YAML).
    pub fn documents(&self) -> &[Node] {
        &self.documents
    }

    /// Looks up a path of segments in the first document. A segment is a mapping key; on a
    /// sequence, a canonical index (ASCII digits, no leading zero: `0`, `7`, never `007`). An
    /// empty path names the root.
    pub fn lookup<S: AsRef<str>>(&self, segments: &[S]) -> Lookup<'_> {
        lookup_in(self.root(), segments)
    }

    /// Every leaf of the first document with its path, in file order (`null`s are skipped:
    /// they hold no value). List elements appear with their index as a segment.
    pub fn leaves(&self) -> Leaves<'_> {
        Leaves {
            stack: vec![(Vec::new(), self.root())],
        }
    }
}

/// Looks up `segments` below `node` (see [`SecretTree::lookup`]).
pub fn lookup_in<'a, S: AsRef<str>>(node: &'a Node, segments: &[S]) -> Lookup<'a> {
    let mut cur = node;
    for (depth, seg) in segments.iter().enumerate() {
        let seg = seg.as_ref();
        let next = match cur {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == seg).map(|(_, v)| v),
            Node::List(items) => parse_index(seg).and_then(|i| items.get(i)),
            Node::Leaf(_) | Node::Null => None,
        };
        match next {
            Some(n) => cur = n,
            None => return Lookup::NotFound { depth },
        }
    }
    match cur {
        Node::Leaf(leaf) => Lookup::Leaf(leaf),
        Node::Null => Lookup::Null,
        Node::Map(entries) => Lookup::Branch {
            children: entries.iter().map(|(k, _)| k.clone()).collect(),
        },
        Node::List(items) => Lookup::Branch {
            children: (0..items.len()).map(|i| i.to_string()).collect(),
        },
    }
}

/// The list index a segment names (canonical digits only, see
/// [`agentsec_policy::list_index`]): the store and the policy share one
/// definition, so `keys.00` names no element rather than element 0.
pub(crate) fn parse_index(seg: &str) -> Option<usize> {
    agentsec_policy::list_index(seg)
}

/// Iterator over the leaves of a document, see [`SecretTree::leaves`].
pub struct Leaves<'a> {
    stack: Vec<(Vec<String>, &'a Node)>,
}

impl<'a> Iterator for Leaves<'a> {
    type Item = (Vec<String>, &'a Leaf);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some((path, node)) = self.stack.pop() {
            match node {
                Node::Leaf(leaf) => return Some((path, leaf)),
                Node::Null => {}
                Node::Map(entries) => {
                    for (k, v) in entries.iter().rev() {
                        let mut p = path.clone();
                        p.push(k.clone());
                        self.stack.push((p, v));
                    }
                }
                Node::List(items) => {
                    for (i, v) in items.iter().enumerate().rev() {
                        let mut p = path.clone();
                        p.push(i.to_string());
                        self.stack.push((p, v));
                    }
                }
            }
        }
        None
    }
}
