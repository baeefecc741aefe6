//! [`SopsStore`]: a SOPS file as an [`agentsec_secrets::SecretStore`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use agentsec_policy::{Authorized, SecretPath};
use agentsec_secrets::{NameIndex, SecretStore, SecretValue, StoreError, StoredSecret};

use crate::cipher::DataKey;
use crate::decrypt::SealedValue;
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

/// Whether an encrypted value is bound to the path it would be served under.
///
/// sops authenticates a value with its AAD: the mapping keys above it joined
/// by `:`. List levels add nothing and a key may itself contain `:`, so one
/// AAD can fit several tree positions, and the MAC (over values in order, not
/// over keys) does not notice when a value is moved between them. agentsec
/// authorises by path, so it serves an encrypted value only where its AAD
/// names exactly one position:
/// - no key above it contains `:` (`"prod:password"` has the AAD of
///   `prod.password`);
/// - no mapping above it sits inside a list (`team[1].prod.pw` has the AAD of
///   `team.prod.pw` and of `team[0].prod.pw`), and at most one list level,
///   its own parent;
/// - a list holding it holds only encrypted values (nothing the MAC skips,
///   such as `null`, `{}`, `[]` or, with `mac_only_encrypted`, a clear value,
///   could have been inserted to shift its index).
///
/// A value in a list of encrypted values is then fixed to its index by the
/// MAC's order. The positions that still share its AAD (a scalar at `keys`
/// may have been the only element of a list at `keys`; a value at
/// `prod.password` may have been at `"prod:password"`) are handled by the
/// policy: [`Authorized::denied_for_aad`] makes a deny on any of them hold.
#[derive(Clone, Copy)]
enum Binding {
    /// Served at its path; `scalar` when its parent is a mapping.
    Bound { scalar: bool },
    /// Never served: why its AAD does not pin it to its path.
    Unbound(&'static str),
}

const UNBOUND_COLON: &str = "a key above it contains `:`, so its sops AAD (the keys joined by \
    `:`) does not say which path it was encrypted for; rename the key without `:`";
const UNBOUND_MAP_IN_LIST: &str = "it sits in a mapping inside a list, and sops' AAD does not \
    include list positions, so the value could have been moved there from another path; key \
    the list's entries by name instead (a mapping of mappings)";
const UNBOUND_NESTED_LIST: &str = "it sits in a list inside a list, and sops' AAD does not \
    include list positions; flatten the list";
const UNBOUND_MIXED_LIST: &str = "its list also holds elements that are not encrypted values \
    (null, empty, a mapping, a list or a clear value), which the MAC does not pin, so its \
    index could have been shifted; make every element an encrypted value";

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

/// Where a node sits, as far as binding is concerned.
#[derive(Clone, Copy, Default)]
struct PathShape {
    /// A key on the way here contains `:`.
    colon: bool,
    /// A mapping on the way here is inside a list.
    map_in_list: bool,
    /// List levels on the way here.
    lists: usize,
    /// The parent is a list, and all its elements are encrypted values.
    in_sealed_list: bool,
}

impl PathShape {
    /// The place of the value at key `key` of a mapping here.
    fn below_key(self, key: &str) -> PathShape {
        PathShape {
            colon: self.colon || key.contains(':'),
            map_in_list: self.map_in_list || self.lists > 0,
            in_sealed_list: false,
            ..self
        }
    }

    /// The place of the elements of the list `items` here.
    fn below_list(self, items: &[Node]) -> PathShape {
        PathShape {
            lists: self.lists + 1,
            in_sealed_list: items
                .iter()
                .all(|n| matches!(n, Node::Leaf(l) if l.was_encrypted())),
            ..self
        }
    }

    fn binding(self) -> Binding {
        if self.colon {
            Binding::Unbound(UNBOUND_COLON)
        } else if self.map_in_list {
            Binding::Unbound(UNBOUND_MAP_IN_LIST)
        } else if self.lists > 1 {
            Binding::Unbound(UNBOUND_NESTED_LIST)
        } else if self.lists == 1 && !self.in_sealed_list {
            Binding::Unbound(UNBOUND_MIXED_LIST)
        } else {
            Binding::Bound {
                scalar: self.lists == 0,
            }
        }
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

/// The leaf paths a store serves for the public tree `root`, in file order: every clear leaf
/// and every encrypted leaf bound to its path ([`PathShape::binding`]); never a `null` or an
/// unbound value (never served, so never listed). [`SopsStore`] and [`SopsNames`] both list
/// through this, so a review without the key sees exactly the names a run would.
fn served_paths(root: &Node) -> Vec<SecretPath> {
    fn walk(node: &Node, place: PathShape, segments: &mut Vec<String>, out: &mut Vec<SecretPath>) {
        match node {
            Node::Leaf(leaf)
                if leaf.was_encrypted() && matches!(place.binding(), Binding::Unbound(_)) => {}
            Node::Leaf(_) => {
                if let Ok(path) = SecretPath::from_segments(segments.iter()) {
                    out.push(path);
                }
            }
            Node::Null => {}
            Node::Map(entries) => {
                for (key, child) in entries {
                    segments.push(key.clone());
                    walk(child, place.below_key(key), segments, out);
                    segments.pop();
                }
            }
            Node::List(items) => {
                let below = place.below_list(items);
                for (i, child) in items.iter().enumerate() {
                    segments.push(i.to_string());
                    walk(child, below, segments, out);
                    segments.pop();
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(root, PathShape::default(), &mut Vec::new(), &mut out);
    out
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
            }) => {
                let segments: Vec<&str> = path.segments().collect();
                // A list element's AAD is its list's keys: drop its index.
                let keys = match segments.split_last() {
                    Some((_, keys)) if !*scalar => keys,
                    _ => &segments[..],
                };
                // The positions a one-element list and a scalar share (and
                // the other elements of its list): a deny or a restricting
                // level there holds here too.
                let list = if *scalar {
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

impl NameIndex for SopsStore {
    fn list(&self, prefix: &SecretPath) -> Result<Vec<SecretPath>, StoreError> {
        Ok(below(&self.paths, prefix))
    }
}

fn below(paths: &[SecretPath], prefix: &SecretPath) -> Vec<SecretPath> {
    paths
        .iter()
        .filter(|p| p.starts_with(prefix))
        .cloned()
        .collect()
}

/// The key names of a SOPS file, read **without decrypting it**: no identity is loaded or
/// looked for, so a policy reviewer or a CI job can check rules against the names of a
/// production file without its key.
///
/// SOPS stores key names in clear; only values (and, with a comment rule, some comments)
/// are encrypted. [`SopsNames::open`] reads the file through the same bounded reader, parser,
/// metadata checks and partial-encryption rules as [`SopsStore::open`], and lists exactly the
/// paths the store would list for the same file: encrypted values that are not bound to their
/// path are left out here too. What it cannot check without the key is whether the values
/// decrypt and the MAC verifies, so a file that lists fine here may still be refused by
/// `agentsec-run`.
///
/// ```no_run
/// use std::path::Path;
/// use agentsec_secrets::NameIndex;
/// use agentsec_sops::SopsNames;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let names = SopsNames::open(Path::new("secrets.yaml"))?;
/// for path in names.list(&"databases".parse()?)? {
///     println!("{path}");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SopsNames {
    file: PathBuf,
    paths: Vec<SecretPath>,
}

impl SopsNames {
    /// Reads the key names of `file` (format from its name, as [`SopsStore::open`]).
    ///
    /// # Errors
    /// A missing, unreadable or oversized file, a syntax error, a file that is not SOPS (no
    /// `sops` metadata), invalid metadata or a missing MAC, and a value the rules say is
    /// encrypted that is not in sops' format; each names the file.
    pub fn open(file: &Path) -> Result<SopsNames, SopsError> {
        let name = file.display().to_string();
        let format = Format::from_path(file)?;
        let bytes = crate::read_file(file, &name)?;
        let tree = crate::sopsfile::names_only(&bytes, format, &name)?;
        Ok(SopsNames {
            file: file.to_owned(),
            paths: served_paths(tree.root()),
        })
    }

    /// The file the names were read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Every leaf path, in file order (what `list` of the root returns).
    pub fn paths(&self) -> &[SecretPath] {
        &self.paths
    }
}

impl NameIndex for SopsNames {
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
