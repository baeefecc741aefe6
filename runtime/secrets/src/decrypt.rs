//! The decrypting walk: every leaf is decrypted (or taken as is) according to the file's rules,
//! typed, fed to the MAC, and put into the [`Node`] tree.
//!
//! Comment-based selection (`encrypted_comment_regex` / `unencrypted_comment_regex`): the YAML
//! reader does not see comments, so a leaf counts as encrypted exactly when it has the
//! `ENC[AES256_GCM,...]` form. This cannot produce a wrong result unnoticed: the MAC (always
//! checked unless the caller asks for recovery) covers the plaintext of every leaf, so reading
//! an encrypted leaf as plain, or decrypting a literal `ENC[...]` string that sops would keep,
//! changes the hashed bytes and fails verification.

use zeroize::Zeroizing;

use crate::cipher::{CipherError, DataKey, EncValue, looks_encrypted};
use crate::doc::{RawEntry, RawNode, RawScalar, Scalar};
use crate::error::{DisplayPath, SopsError};
use crate::gofmt;
use crate::mac::MacHasher;
use crate::rules::Selection;
use crate::secret::SecretValue;
use crate::tree::{Leaf, LeafKind, Node};
use crate::{Format, MAX_NESTING_DEPTH};

pub(crate) struct Walker<'a> {
    pub(crate) file: &'a str,
    pub(crate) key: &'a DataKey,
    pub(crate) selection: &'a Selection,
    pub(crate) mac: MacHasher,
    pub(crate) json_ints: bool,
    pub(crate) format: Format,
}

impl Walker<'_> {
    /// Walks one document (the entries of its top-level mapping).
    pub(crate) fn document(&mut self, entries: Vec<RawEntry>) -> Result<Node, SopsError> {
        let mut keys = Vec::new();
        let mut path = DisplayPath::default();
        self.map(entries, &mut keys, &mut path)
    }

    fn map(
        &mut self,
        entries: Vec<RawEntry>,
        keys: &mut Vec<String>,
        path: &mut DisplayPath,
    ) -> Result<Node, SopsError> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            keys.push(entry.key.clone());
            path.push_key(&entry.key);
            let node = self.node(entry.value, keys, path)?;
            path.pop();
            keys.pop();
            if let Some(node) = node {
                out.push((entry.key, node));
            }
        }
        Ok(Node::Map(out))
    }

    fn node(
        &mut self,
        node: RawNode,
        keys: &mut Vec<String>,
        path: &mut DisplayPath,
    ) -> Result<Option<Node>, SopsError> {
        if path.depth() > MAX_NESTING_DEPTH {
            return Err(SopsError::LimitExceeded {
                file: self.file.to_owned(),
                line: None,
                what: "nesting depth",
                limit: MAX_NESTING_DEPTH,
            });
        }
        Ok(match node {
            RawNode::Null => Some(Node::Null),
            RawNode::Map(entries) => Some(self.map(entries, keys, path)?),
            RawNode::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    // Sequences add nothing to the AAD path.
                    path.push_index(i);
                    let node = self.node(item, keys, path)?;
                    path.pop();
                    if let Some(node) = node {
                        out.push(node);
                    }
                }
                Some(Node::List(out))
            }
            RawNode::Scalar(s) => self.leaf(s, keys, path)?.map(Node::Leaf),
        })
    }

    fn leaf(
        &mut self,
        s: RawScalar,
        keys: &[String],
        path: &DisplayPath,
    ) -> Result<Option<Leaf>, SopsError> {
        let encrypted = match self.selection.should_encrypt(keys) {
            Some(e) => e,
            None => matches!(&s.value, Scalar::Str(t) if looks_encrypted(t)),
        };
        if !encrypted {
            let (bytes, mac, kind) = self.plain(s.value);
            self.mac.leaf(false, &mac);
            return Ok(Some(Leaf::new(SecretValue::new(bytes), kind, false)));
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
            return Ok(Some(Leaf::new(
                SecretValue::from_plain(b""),
                LeafKind::Str,
                false,
            )));
        }
        let enc = EncValue::parse(&text).map_err(|_| not_encrypted())?;
        let mut aad = keys.join(":");
        aad.push(':');
        let plain = enc.decrypt(self.key, aad.as_bytes()).map_err(|e| match e {
            CipherError::Format => not_encrypted(),
            CipherError::Auth => SopsError::ValueDecrypt {
                file: self.file.to_owned(),
                path: path.to_string(),
                line: s.line,
            },
        })?;
        let type_error = |problem: String| SopsError::ValueType {
            file: self.file.to_owned(),
            path: path.to_string(),
            line: s.line,
            problem,
        };
        let Some((bytes, mac, kind)) = self.typed(&enc.kind, plain).map_err(type_error)? else {
            return Ok(None);
        };
        self.mac.leaf(true, &mac);
        Ok(Some(Leaf::new(SecretValue::new(bytes), kind, true)))
    }

    fn float_text(&self, f: f64) -> String {
        match self.format {
            Format::Json => gofmt::float_json_text(f),
            Format::Yaml => gofmt::float_yaml_text(f),
        }
    }

    /// (leaf text, MAC bytes, kind) of an unencrypted value.
    fn plain(&self, value: Scalar) -> (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>, LeafKind) {
        let same = |s: String, kind| {
            let b = Zeroizing::new(s.into_bytes());
            (b.clone(), b, kind)
        };
        match value {
            Scalar::Str(s) => same(s, LeafKind::Str),
            Scalar::Time(t) => same(t, LeafKind::Time),
            Scalar::Int(i) => same(i.to_string(), LeafKind::Int),
            Scalar::JsonNumber { int: Some(i), .. } if self.json_ints => {
                same(i.to_string(), LeafKind::Int)
            }
            Scalar::Float(f) | Scalar::JsonNumber { float: f, .. } => (
                Zeroizing::new(self.float_text(f).into_bytes()),
                Zeroizing::new(gofmt::float_mac_bytes(f).into_bytes()),
                LeafKind::Float,
            ),
            Scalar::Bool(b) => (
                Zeroizing::new(if b {
                    b"true".to_vec()
                } else {
                    b"false".to_vec()
                }),
                Zeroizing::new(if b {
                    b"True".to_vec()
                } else {
                    b"False".to_vec()
                }),
                LeafKind::Bool,
            ),
        }
    }

    /// Types a decrypted plaintext by its `type:` tag: (leaf text, MAC bytes, kind), or `None`
    /// for a comment. Errors name the type, never the value.
    #[allow(
        clippy::type_complexity,
        reason = "a private triple, named at its only caller"
    )]
    fn typed(
        &self,
        kind: &str,
        plain: Zeroizing<Vec<u8>>,
    ) -> Result<Option<(Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>, LeafKind)>, String> {
        let text =
            || std::str::from_utf8(&plain).map_err(|_| format!("type `{kind}` but is not UTF-8"));
        let bad = || format!("type `{kind}` but its plaintext does not parse as one");
        let z = |s: String| Zeroizing::new(s.into_bytes());
        Ok(Some(match kind {
            "str" | "bytes" => (plain.clone(), plain, LeafKind::Str),
            "comment" => return Ok(None),
            "int" => {
                let i: i64 = text()?.parse().map_err(|_| bad())?;
                let b = z(i.to_string());
                (b.clone(), b, LeafKind::Int)
            }
            "float" => {
                let f: f64 = text()?.parse().map_err(|_| bad())?;
                (
                    z(self.float_text(f)),
                    z(gofmt::float_mac_bytes(f)),
                    LeafKind::Float,
                )
            }
            "bool" => {
                let b = match text()? {
                    "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
                    "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
                    _ => return Err(bad()),
                };
                (
                    z(if b { "true" } else { "false" }.to_owned()),
                    z(if b { "True" } else { "False" }.to_owned()),
                    LeafKind::Bool,
                )
            }
            "time" => {
                let t = gofmt::parse_rfc3339(text()?).ok_or_else(bad)?;
                let b = z(t.rfc3339_nano());
                (b.clone(), b, LeafKind::Time)
            }
            _ => return Err("an unknown datatype in its `type:` field".to_owned()),
        }))
    }
}
