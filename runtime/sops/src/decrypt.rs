//! The decrypting walk (sops `Tree.Decrypt`): every leaf and comment is decrypted (or taken as
//! is) according to the file's rules, typed, fed to the MAC, and put into the [`PlainNode`] tree.

use zeroize::Zeroizing;

use crate::MAX_NESTING_DEPTH;
use crate::cipher::{CipherError, DataKey, EncValue};
use crate::doc::{RawEntry, RawNode, RawScalar, Scalar};
use crate::error::{DisplayPath, SopsError};
use crate::gofmt;
use crate::mac::MacHasher;
use crate::plain::{PlainItem, PlainNode, Value};
use crate::rules::{CommentStack, Selection};

pub(crate) struct Walker<'a> {
    pub(crate) file: &'a str,
    /// `None`: read the structure only (no key is needed, nothing is decrypted); every
    /// encrypted value becomes an empty leaf marked encrypted, encrypted comments stay as
    /// written (see [`crate::sopsfile::names_only`]).
    pub(crate) key: Option<&'a DataKey>,
    /// `None`: a plaintext file, nothing is decrypted.
    pub(crate) selection: Option<&'a Selection>,
    pub(crate) mac: MacHasher,
    pub(crate) json_ints: bool,
    /// When set, the ciphertext of every encrypted value that becomes a leaf of the public tree
    /// is kept here with the document and public-tree path it belongs to (see [`SealedValue`]).
    pub(crate) sealed: Option<SealedLog>,
}

/// The ciphertexts a walk kept, each labelled with where it sits in the public tree.
#[derive(Default)]
pub(crate) struct SealedLog {
    pub(crate) items: Vec<SealedValue>,
    /// The document being walked.
    doc: usize,
    /// The public-tree path of the node being walked: mapping keys and list indices that do
    /// not count comment elements (as [`crate::SecretTree`] numbers them).
    path: Vec<String>,
}

/// An encrypted value kept for decrypting again later, with what that needs besides the key,
/// and the position it was read from: whoever pairs it with a leaf checks the position, so a
/// ciphertext can never end up on another leaf (or a leaf without its ciphertext).
pub(crate) struct SealedValue {
    pub(crate) enc: EncValue,
    pub(crate) aad: String,
    /// Index of the document.
    pub(crate) doc: usize,
    /// Public-tree path (segments) of the leaf.
    pub(crate) path: Vec<String>,
}

impl SealedValue {
    /// Decrypts and types the value again and renders it as the public tree does (`json`:
    /// float texts as Go `encoding/json`). The file's MAC already covered this plaintext.
    pub(crate) fn open(&self, key: &DataKey, json: bool) -> Option<Zeroizing<Vec<u8>>> {
        let plain = self.enc.decrypt(key, self.aad.as_bytes()).ok()?;
        match typed(&self.enc.kind, plain).ok()? {
            Decrypted::Value(v) => Some(v.public_text(json).0),
            Decrypted::Comment(_) => None,
        }
    }
}

/// A decrypted comment or value.
enum Decrypted {
    Comment(Zeroizing<String>),
    Value(Value),
}

impl Walker<'_> {
    /// Walks one document (the items of its top-level mapping).
    pub(crate) fn document(&mut self, entries: Vec<RawEntry>) -> Result<PlainNode, SopsError> {
        let mut keys = Vec::new();
        let mut path = DisplayPath::default();
        let mut comments = CommentStack::new();
        if let Some(log) = &mut self.sealed {
            log.path.clear();
        }
        let doc = self.map(entries, &mut keys, &mut path, &mut comments);
        if let Some(log) = &mut self.sealed {
            log.doc += 1;
        }
        doc
    }

    fn public_push(&mut self, segment: String) {
        if let Some(log) = &mut self.sealed {
            log.path.push(segment);
        }
    }

    fn public_pop(&mut self) {
        if let Some(log) = &mut self.sealed {
            log.path.pop();
        }
    }

    fn encrypted(&self, keys: &[String], comments: &CommentStack, is_comment: bool) -> bool {
        self.selection
            .is_some_and(|s| s.should_encrypt(keys, comments, is_comment))
    }

    fn depth_check(&self, path: &DisplayPath) -> Result<(), SopsError> {
        if path.depth() > MAX_NESTING_DEPTH {
            return Err(SopsError::LimitExceeded {
                file: self.file.to_owned(),
                line: None,
                what: "nesting depth",
                limit: MAX_NESTING_DEPTH,
            });
        }
        Ok(())
    }

    fn map(
        &mut self,
        entries: Vec<RawEntry>,
        keys: &mut Vec<String>,
        path: &mut DisplayPath,
        comments: &mut CommentStack,
    ) -> Result<PlainNode, SopsError> {
        self.depth_check(path)?;
        comments.push(Vec::new());
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            if let RawNode::Comment(text) = entry.value {
                if let Some(level) = comments.last_mut() {
                    level.push(text.clone());
                }
                out.push(PlainItem::Comment(self.comment(text, keys, comments)));
                continue;
            }
            keys.push(entry.key.clone());
            path.push_key(&entry.key);
            self.public_push(entry.key.clone());
            let node = self.node(entry.value, keys, path, comments)?;
            self.public_pop();
            path.pop();
            keys.pop();
            if let Some(level) = comments.last_mut() {
                level.clear();
            }
            out.push(PlainItem::Entry(entry.key, node));
        }
        comments.pop();
        Ok(PlainNode::Map(out))
    }

    /// A comment: decrypted when the rules say comments here are encrypted and it decrypts;
    /// otherwise kept as written (sops assumes an unencrypted comment from an older version).
    fn comment(
        &mut self,
        text: String,
        keys: &[String],
        comments: &CommentStack,
    ) -> Zeroizing<String> {
        if self.encrypted(keys, comments, true)
            && let Some(key) = self.key
            && let Ok(enc) = EncValue::parse(&text)
            && let Ok(plain) = enc.decrypt(key, aad(keys).as_bytes())
            && let Ok(s) = String::from_utf8(plain.to_vec())
        {
            return Zeroizing::new(s);
        }
        Zeroizing::new(text)
    }

    fn node(
        &mut self,
        node: RawNode,
        keys: &mut Vec<String>,
        path: &mut DisplayPath,
        comments: &mut CommentStack,
    ) -> Result<PlainNode, SopsError> {
        self.depth_check(path)?;
        Ok(match node {
            RawNode::Null => PlainNode::Null,
            RawNode::Map(entries) => self.map(entries, keys, path, comments)?,
            RawNode::Comment(text) => PlainNode::Comment(self.comment(text, keys, comments)),
            RawNode::List(items) => {
                comments.push(Vec::new());
                let mut out = Vec::with_capacity(items.len());
                // Index in the public tree, where comment elements do not count.
                let mut public = 0usize;
                for (i, item) in items.into_iter().enumerate() {
                    let is_comment = matches!(item, RawNode::Comment(_));
                    if let (RawNode::Comment(t), Some(level)) = (&item, comments.last_mut()) {
                        level.push(t.clone());
                    }
                    // Sequences add nothing to the AAD path.
                    path.push_index(i);
                    self.public_push(public.to_string());
                    let node = self.node(item, keys, path, comments)?;
                    self.public_pop();
                    path.pop();
                    if !matches!(node, PlainNode::Comment(_)) {
                        public += 1;
                    }
                    if !is_comment && let Some(level) = comments.last_mut() {
                        level.clear();
                    }
                    out.push(node);
                }
                comments.pop();
                PlainNode::List(out)
            }
            RawNode::Scalar(s) => self.leaf(s, keys, path, comments)?,
        })
    }

    fn leaf(
        &mut self,
        s: RawScalar,
        keys: &[String],
        path: &DisplayPath,
        comments: &CommentStack,
    ) -> Result<PlainNode, SopsError> {
        if !self.encrypted(keys, comments, false) {
            let v = self.plain(s.value);
            self.mac.leaf(false, &v.to_bytes());
            return Ok(PlainNode::Leaf(v, false));
        }
        let not_encrypted = || SopsError::NotEncrypted {
            file: self.file.to_owned(),
            path: path.to_string(),
            line: s.line,
        };
        let Scalar::Str(text) = s.value else {
            return Err(not_encrypted());
        };
        if text.is_empty() {
            // sops never encrypts empty strings.
            return Ok(PlainNode::Leaf(Value::str(""), false));
        }
        let enc = EncValue::parse(&text).map_err(|_| not_encrypted())?;
        let Some(key) = self.key else {
            return names_only_leaf(&enc.kind).map_err(|problem| SopsError::ValueType {
                file: self.file.to_owned(),
                path: path.to_string(),
                line: s.line,
                problem,
            });
        };
        let aad = aad(keys);
        let plain = enc.decrypt(key, aad.as_bytes()).map_err(|e| match e {
            CipherError::Format => not_encrypted(),
            CipherError::Auth => SopsError::ValueDecrypt {
                file: self.file.to_owned(),
                path: path.to_string(),
                line: s.line,
            },
        })?;
        let typed = typed(&enc.kind, plain).map_err(|problem| SopsError::ValueType {
            file: self.file.to_owned(),
            path: path.to_string(),
            line: s.line,
            problem,
        })?;
        Ok(match typed {
            // A comment stored as a sequence element: not hashed.
            Decrypted::Comment(c) => PlainNode::Comment(c),
            Decrypted::Value(v) => {
                self.mac.leaf(true, &v.to_bytes());
                if let Some(log) = &mut self.sealed {
                    let path = log.path.clone();
                    let doc = log.doc;
                    log.items.push(SealedValue {
                        enc,
                        aad,
                        doc,
                        path,
                    });
                }
                PlainNode::Leaf(v, true)
            }
        })
    }

    /// The value of an unencrypted scalar.
    fn plain(&self, value: Scalar) -> Value {
        match value {
            Scalar::Str(s) => Value::Str(Zeroizing::new(s.into_bytes())),
            Scalar::Time(t) => Value::Time(Zeroizing::new(t)),
            Scalar::Int(i) => Value::Int(i),
            Scalar::JsonNumber { int: Some(i), .. } if self.json_ints => Value::Int(i),
            Scalar::Float(f) | Scalar::JsonNumber { float: f, .. } => Value::Float(f),
            Scalar::Bool(b) => Value::Bool(b),
        }
    }
}

/// An encrypted value read without the key: a comment stored as a list element (its type
/// says so in clear) is a comment, as decryption would make it; any other known type is an
/// empty leaf marked encrypted, standing for a value whose plaintext is not read.
fn names_only_leaf(kind: &str) -> Result<PlainNode, String> {
    match kind {
        "comment" => Ok(PlainNode::Comment(Zeroizing::new(String::new()))),
        "str" | "bytes" | "int" | "float" | "bool" | "time" => {
            Ok(PlainNode::Leaf(Value::str(""), true))
        }
        _ => Err("an unknown datatype in its `type:` field".to_owned()),
    }
}

/// The AAD of a value: the mapping keys joined by `:`, plus `:`.
pub(crate) fn aad(keys: &[String]) -> String {
    let mut aad = keys.join(":");
    aad.push(':');
    aad
}

/// Types a decrypted plaintext by its `type:` tag. Errors name the type, never the value.
fn typed(kind: &str, plain: Zeroizing<Vec<u8>>) -> Result<Decrypted, String> {
    let text =
        || std::str::from_utf8(&plain).map_err(|_| format!("type `{kind}` but is not UTF-8"));
    let bad = || format!("type `{kind}` but its plaintext does not parse as one");
    Ok(Decrypted::Value(match kind {
        "str" | "bytes" => Value::Str(plain.clone()),
        "comment" => return Ok(Decrypted::Comment(Zeroizing::new(text()?.to_owned()))),
        "int" => Value::Int(text()?.parse().map_err(|_| bad())?),
        "float" => Value::Float(gofmt_parse_float(text()?).ok_or_else(bad)?),
        "bool" => Value::Bool(match text()? {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => return Err(bad()),
        }),
        "time" => {
            let t = gofmt::parse_rfc3339(text()?).ok_or_else(bad)?;
            Value::Time(Zeroizing::new(t.rfc3339_nano()))
        }
        _ => return Err("an unknown datatype in its `type:` field".to_owned()),
    }))
}

/// Go's `strconv.ParseFloat` for what sops writes (`+Inf`, `-Inf`, `NaN` included).
fn gofmt_parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}
