//! [`SopsStore`]: a SOPS file as an [`agentsec_secrets::SecretStore`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use agentsec_policy::{Authorized, SecretPath};
use agentsec_secrets::{NameIndex, SecretStore, SecretValue, StoreError, StoredSecret};

use crate::cipher::DataKey;
use crate::decrypt::SealedValue;
mod binding;
mod names;

use binding::{Binding, PathShape, below, served_paths};
pub use names::SopsNames;

use crate::{DecryptOptions, Format, Identities, Node, SopsError, SopsFile};

/// A SOPS file, MAC-verified once when opened, whose values are decrypted
/// again only when asked for.
///
/// Opening decrypts every value once, because the MAC covers all plaintexts,
/// and wipes each plaintext as soon as it is hashed; what stays in memory is
/// the file's structure, its unencrypted values, the data key and the
/// ciphertexts. [`SecretStore::get`] on an encrypted leaf decrypts that one
/// value (AES-256-GCM, authenticated with its path) and keeps it, zeroizing,
/// for later requests: values nobody asked for are never resident as
/// plaintext after `open`.
pub struct SopsStore {
    file: PathBuf,
    /// SHA-256 of the file's bytes as read, lowercase hex.
    file_sha256: String,
    root: SealedNode,
    /// Boxed so that its address (which [`SopsStore::pin_with`] may lock)
    /// does not move with the store.
    key: Box<DataKey>,
    /// Float texts as Go `encoding/json` (JSON, dotenv, INI, binary) or
    /// yaml.v3 (YAML), as the decrypted tree renders them.
    json: bool,
    pin: Option<fn(&[u8])>,
    /// What [`NameIndex::list`] of the root returns ([`served_paths`]).
    paths: Vec<SecretPath>,
}

/// The store's tree: the file's first document with encrypted leaves kept
/// sealed (as their ciphertext, decrypted only when asked for).
enum SealedNode {
    Map(Vec<(String, SealedNode)>),
    List(Vec<SealedNode>),
    Leaf(SealedLeaf),
    Null,
}

/// A leaf of a [`SealedNode`] tree.
enum SealedLeaf {
    /// A value the file keeps in clear (public in the file itself).
    Clear(SecretValue),
    /// An encrypted value, decrypted on the first request.
    Encrypted {
        sealed: Box<SealedValue>,
        plain: OnceLock<SecretValue>,
        binding: Binding,
    },
}

impl std::fmt::Debug for SopsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SopsStore")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl SopsStore {
    /// Decrypts `file` with `identities` and verifies its MAC; any failure
    /// (missing file, no usable key, tampering) is an error before anything
    /// can be read. The plaintexts are wiped again once the MAC is checked.
    pub fn open(file: &Path, identities: &Identities) -> Result<SopsStore, SopsError> {
        let name = file.display().to_string();
        let format = Format::from_path(file)?;
        let bytes = crate::read_file(file, &name)?;
        let file_sha256 = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let (decrypted, sealed) = SopsFile::decrypt_keeping(
            &bytes,
            format,
            &name,
            identities,
            DecryptOptions::default(),
            true,
        )?;
        let json = format != Format::Yaml;
        let tree = decrypted.tree();
        let mut builder = SealedTreeBuilder {
            sealed: sealed.into_iter().filter(|s| s.doc == 0),
            path: Vec::new(),
            keys: Vec::new(),
            file: &name,
        };
        let root = builder.node(tree.root(), PathShape::default())?;
        if let Some(extra) = builder.sealed.next() {
            return Err(builder.mismatch(&extra.path));
        }
        let paths = served_paths(tree.root());
        let SopsFile { key, .. } = decrypted;
        Ok(SopsStore {
            file: file.to_owned(),
            file_sha256,
            root,
            key: Box::new(key),
            json,
            pin: None,
            paths,
        })
    }

    /// Calls `pin` on the buffer of every value when it is decrypted (e.g.
    /// to `mlock` it), and on the data key and the unencrypted values now.
    #[must_use]
    pub fn pin_with(mut self, pin: fn(&[u8])) -> Self {
        fn clear_values(node: &SealedNode, pin: fn(&[u8])) {
            match node {
                SealedNode::Map(entries) => entries.iter().for_each(|(_, n)| clear_values(n, pin)),
                SealedNode::List(items) => items.iter().for_each(|n| clear_values(n, pin)),
                SealedNode::Leaf(SealedLeaf::Clear(value)) => pin(value.expose_secret()),
                SealedNode::Leaf(SealedLeaf::Encrypted { .. }) | SealedNode::Null => {}
            }
        }
        clear_values(&self.root, pin);
        pin(&self.key.0[..]);
        self.pin = Some(pin);
        self
    }

    /// The file this store was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The SHA-256 of the file's bytes as read (lowercase hex): which
    /// version of the (encrypted) file served the values, for the audit
    /// record's `store`. Public: anyone with the file can compute it.
    pub fn file_sha256(&self) -> &str {
        &self.file_sha256
    }

    /// Every leaf path (names only), in file order; what `list` of the root
    /// returns.
    pub fn paths(&self) -> Vec<SecretPath> {
        self.paths.clone()
    }

    /// How many encrypted values are held decrypted now: those asked for
    /// through [`SecretStore::get`] since the store was opened.
    pub fn decrypted(&self) -> usize {
        fn count(node: &SealedNode) -> usize {
            match node {
                SealedNode::Map(entries) => entries.iter().map(|(_, n)| count(n)).sum(),
                SealedNode::List(items) => items.iter().map(count).sum(),
                SealedNode::Leaf(SealedLeaf::Encrypted { plain, .. }) => {
                    usize::from(plain.get().is_some())
                }
                SealedNode::Leaf(SealedLeaf::Clear(_)) | SealedNode::Null => 0,
            }
        }
        count(&self.root)
    }

    /// The plaintext of a sealed leaf: decrypted once, then kept.
    fn open_sealed<'a>(
        &self,
        sealed: &SealedValue,
        plain: &'a OnceLock<SecretValue>,
        path: &SecretPath,
    ) -> Result<&'a SecretValue, StoreError> {
        if let Some(value) = plain.get() {
            return Ok(value);
        }
        // The MAC check at open decrypted this very ciphertext, so this
        // cannot fail short of memory corruption.
        let bytes = sealed
            .open(&self.key, self.json)
            .ok_or_else(|| StoreError::Unavailable {
                reason: format!("`{path}` no longer decrypts"),
            })?;
        // Two threads may race here; the loser's copy is dropped (wiped).
        let value = plain.get_or_init(|| SecretValue::new(bytes));
        if let Some(pin) = self.pin {
            pin(value.expose_secret());
        }
        Ok(value)
    }
}

/// Rebuilds the public tree with each encrypted leaf replaced by its
/// ciphertext. A ciphertext is paired with a leaf only when it was read at
/// that leaf's path with that leaf's AAD: any other pairing (a missing,
/// extra or misplaced ciphertext) fails the whole open, so an encrypted
/// value is never kept as a clear (unredacted) one. The decrypted values of
/// encrypted leaves are not copied.
struct SealedTreeBuilder<'a, I> {
    sealed: I,
    path: Vec<String>,
    /// The mapping keys on `path` (what the AAD is made of).
    keys: Vec<String>,
    file: &'a str,
}

impl<I: Iterator<Item = SealedValue>> SealedTreeBuilder<'_, I> {
    fn mismatch(&self, at: &[String]) -> SopsError {
        let shown = SecretPath::from_segments(at.iter())
            .map(|p| p.to_string())
            .unwrap_or_else(|_| "<a path too long to show>".to_owned());
        SopsError::Unsupported {
            file: self.file.to_owned(),
            line: None,
            what: format!(
                "the ciphertext kept for `{shown}` does not pair with that leaf (an internal \
                 error); refusing to serve the file rather than serve a value as clear text"
            ),
        }
    }

    fn node(&mut self, node: &Node, place: PathShape) -> Result<SealedNode, SopsError> {
        Ok(match node {
            Node::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let below = place.below_key(k);
                    self.path.push(k.clone());
                    self.keys.push(k.clone());
                    let child = self.node(v, below);
                    self.keys.pop();
                    self.path.pop();
                    out.push((k.clone(), child?));
                }
                SealedNode::Map(out)
            }
            Node::List(items) => {
                let below = place.below_list(items);
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    self.path.push(i.to_string());
                    let child = self.node(item, below);
                    self.path.pop();
                    out.push(child?);
                }
                SealedNode::List(out)
            }
            Node::Null => SealedNode::Null,
            Node::Leaf(leaf) if leaf.was_encrypted() => {
                let one = match self.sealed.next() {
                    Some(one)
                        if one.path == self.path && one.aad == crate::decrypt::aad(&self.keys) =>
                    {
                        one
                    }
                    _ => return Err(self.mismatch(&self.path)),
                };
                SealedNode::Leaf(SealedLeaf::Encrypted {
                    sealed: Box::new(one),
                    plain: OnceLock::new(),
                    binding: place.binding(),
                })
            }
            Node::Leaf(leaf) => SealedNode::Leaf(SealedLeaf::Clear(leaf.value().duplicate())),
        })
    }
}

impl SecretStore for SopsStore {
    fn get(&self, grant: &Authorized<'_>) -> Result<StoredSecret, StoreError> {
        let path = grant.path();
        if !grant.releases_value() {
            return Err(StoreError::ListingGrant {
                path: path.to_string(),
            });
        }
        let mut node = &self.root;
        for segment in path.segments() {
            let next = match node {
                SealedNode::Map(entries) => {
                    entries.iter().find(|(k, _)| k == segment).map(|(_, v)| v)
                }
                SealedNode::List(items) => {
                    crate::tree::parse_index(segment).and_then(|i| items.get(i))
                }
                SealedNode::Leaf(_) | SealedNode::Null => None,
            };
            node = next.ok_or_else(|| StoreError::NotFound {
                path: path.to_string(),
            })?;
        }
        match node {
            // Clear in the file, so public: not redacted.
            SealedNode::Leaf(SealedLeaf::Clear(value)) => {
                Ok(StoredSecret::public(value.duplicate()))
            }
            SealedNode::Leaf(SealedLeaf::Encrypted {
                binding: Binding::Unbound(reason),
                ..
            }) => Err(StoreError::Unbound {
                path: path.to_string(),
                reason,
            }),
            SealedNode::Leaf(SealedLeaf::Encrypted {
                sealed,
                plain,
                binding: Binding::Bound { scalar },
            }) => self.serve_encrypted(grant, sealed, plain, *scalar),
            SealedNode::Map(entries) => Err(StoreError::NotALeaf {
                path: path.to_string(),
                children: entries.iter().map(|(k, _)| k.clone()).collect(),
            }),
            SealedNode::List(items) => Err(StoreError::NotALeaf {
                path: path.to_string(),
                children: (0..items.len()).map(|i| i.to_string()).collect(),
            }),
            SealedNode::Null => Err(StoreError::NotFound {
                path: path.to_string(),
            }),
        }
    }
}

impl SopsStore {
    /// An encrypted leaf bound to its path: refused when a rule denies (or restricts by
    /// its level) a position sharing its sops AAD; else decrypted (once) and served.
    fn serve_encrypted(
        &self,
        grant: &Authorized<'_>,
        sealed: &SealedValue,
        plain: &OnceLock<SecretValue>,
        scalar: bool,
    ) -> Result<StoredSecret, StoreError> {
        let path = grant.path();
        let segments: Vec<&str> = path.segments().collect();
        // A list element's AAD is its list's keys: drop its index.
        let keys = match segments.split_last() {
            Some((_, keys)) if !scalar => keys,
            _ => &segments[..],
        };
        // The positions a one-element list and a scalar share (and
        // the other elements of its list): a deny or a restricting
        // level there holds here too.
        let list = if scalar {
            Some((path.clone(), false))
        } else {
            SecretPath::from_segments(keys.iter().copied())
                .ok()
                .map(|list| (list, true))
        };
        let restricted =
            list.and_then(|(list, as_scalar)| grant.restricted_for_aad(&list, as_scalar));
        if let Some(rule) = grant.denied_for_aad(keys).or(restricted) {
            return Err(StoreError::DeniedElsewhere {
                path: path.to_string(),
                rule: rule.pattern().to_string(),
                location: format!("{}:{}", rule.origin(), rule.line()),
            });
        }
        Ok(StoredSecret::secret(
            self.open_sealed(sealed, plain, path)?.duplicate(),
        ))
    }
}

impl NameIndex for SopsStore {
    fn list(&self, prefix: &SecretPath) -> Result<Vec<SecretPath>, StoreError> {
        Ok(below(&self.paths, prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Leaf, LeafKind};
    use agentsec_secrets::SecretValue;
    use zeroize::Zeroizing;

    fn enc_leaf(text: &str) -> Node {
        Node::Leaf(Leaf::new(
            SecretValue::new(Zeroizing::new(text.as_bytes().to_vec())),
            LeafKind::Str,
            true,
        ))
    }

    fn sealed(key: &DataKey, aad: &str, path: &[&str]) -> SealedValue {
        let text = crate::encrypt::seal(key, b"v", aad.as_bytes(), "str").expect("seals");
        SealedValue {
            enc: crate::cipher::EncValue::parse(&text).expect("parses"),
            aad: aad.to_owned(),
            doc: 0,
            path: path.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn pair(tree: &Node, sealed: Vec<SealedValue>) -> Result<SealedNode, SopsError> {
        let mut builder = SealedTreeBuilder {
            sealed: sealed.into_iter(),
            path: Vec::new(),
            keys: Vec::new(),
            file: "t.yaml",
        };
        let root = builder.node(tree, PathShape::default())?;
        match builder.sealed.next() {
            Some(extra) => Err(builder.mismatch(&extra.path)),
            None => Ok(root),
        }
    }

    fn all_sealed(node: &SealedNode) -> bool {
        match node {
            SealedNode::Map(e) => e.iter().all(|(_, n)| all_sealed(n)),
            SealedNode::List(i) => i.iter().all(all_sealed),
            SealedNode::Leaf(SealedLeaf::Encrypted { .. }) | SealedNode::Null => true,
            SealedNode::Leaf(SealedLeaf::Clear(_)) => false,
        }
    }

    /// Any ciphertext list that does not pair leaf for leaf (missing, extra, swapped, or
    /// from another position) fails the open; it never leaves an encrypted leaf in clear.
    #[test]
    fn ciphertexts_pair_by_position_or_not_at_all() {
        let key = crate::encrypt::new_data_key().expect("key");
        let tree = Node::Map(vec![
            ("a".to_owned(), enc_leaf("A")),
            (
                "l".to_owned(),
                Node::List(vec![enc_leaf("L0"), enc_leaf("L1")]),
            ),
        ]);
        let a = || sealed(&key, "a:", &["a"]);
        let l0 = || sealed(&key, "l:", &["l", "0"]);
        let l1 = || sealed(&key, "l:", &["l", "1"]);
        let good = pair(&tree, vec![a(), l0(), l1()]).expect("pairs");
        assert!(all_sealed(&good));
        for (what, bad) in [
            ("missing", vec![a(), l0()]),
            ("extra", vec![a(), l0(), l1(), l1()]),
            ("swapped", vec![a(), l1(), l0()]),
            ("reordered", vec![l0(), a(), l1()]),
            ("wrong AAD", vec![sealed(&key, "b:", &["a"]), l0(), l1()]),
            ("none", vec![]),
        ] {
            let err = pair(&tree, bad).err();
            assert!(
                matches!(err, Some(SopsError::Unsupported { .. })),
                "{what}: {err:?}"
            );
        }
    }
}
