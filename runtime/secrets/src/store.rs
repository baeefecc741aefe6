//! The [`SecretStore`] trait and its first backend, a SOPS file.
//!
//! A store answers two questions: "the value at this path" (which needs the
//! policy's [`Authorized`] proof, so no code path reads a secret without
//! passing policy) and "the leaf names under this prefix" (names only).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use agentsec_policy::{Authorized, SecretPath};

use crate::cipher::DataKey;
use crate::decrypt::Sealed;
use crate::{DecryptOptions, Format, Identities, Node, SecretValue, SopsError, SopsFile};

/// A secret value released by a store, with what the caller needs to know
/// about it.
#[non_exhaustive]
pub struct StoredSecret {
    /// The value (zeroized on drop).
    pub value: SecretValue,
    /// Whether the value was encrypted at rest. Unencrypted values (a URL, a
    /// region) are readable through the same policy but are not redacted
    /// from output: they are public in the file itself.
    pub encrypted: bool,
}

/// Why a store did not return a value. Messages name paths, never values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Nothing at this path (or it is `null`).
    #[error("no secret at `{path}`")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The path names a mapping or a list, not a leaf.
    #[error("`{path}` is a mapping or list, not a secret")]
    NotALeaf {
        /// The path asked for.
        path: String,
        /// Its keys (or list indexes), names only.
        children: Vec<String>,
    },
    /// The backend cannot answer right now.
    #[error("the secret store is unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// Where secret values come from.
pub trait SecretStore: Send + Sync {
    /// The leaf at `grant.path()`. Requires the policy's proof.
    fn get(&self, grant: &Authorized<'_>) -> Result<StoredSecret, StoreError>;

    /// Every leaf path at or below `prefix` (the root lists everything), in
    /// store order. Names only; callers filter them through the policy.
    fn list(&self, prefix: &SecretPath) -> Result<Vec<SecretPath>, StoreError>;
}

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
    root: SNode,
    /// Boxed so that its address (which [`SopsStore::pin_with`] may lock)
    /// does not move with the store.
    key: Box<DataKey>,
    /// Float texts as Go `encoding/json` (JSON, dotenv, INI, binary) or
    /// yaml.v3 (YAML), as the decrypted tree renders them.
    json: bool,
    pin: Option<fn(&[u8])>,
}

/// The store's tree: the file's first document with encrypted leaves kept
/// sealed.
enum SNode {
    Map(Vec<(String, SNode)>),
    List(Vec<SNode>),
    Leaf(SLeaf),
    Null,
}

enum SLeaf {
    /// A value the file keeps in clear (public in the file itself).
    Clear(SecretValue),
    /// An encrypted value, decrypted on the first request.
    Sealed {
        sealed: Box<Sealed>,
        plain: OnceLock<SecretValue>,
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
        let mut sealed = sealed.into_iter();
        let root = seal(tree.root(), &mut sealed);
        let SopsFile { key, .. } = decrypted;
        Ok(SopsStore {
            file: file.to_owned(),
            root,
            key: Box::new(key),
            json,
            pin: None,
        })
    }

    /// Calls `pin` on the buffer of every value when it is decrypted (e.g.
    /// to `mlock` it), and on the data key and the unencrypted values now.
    #[must_use]
    pub fn pin_with(mut self, pin: fn(&[u8])) -> Self {
        fn clear_values(node: &SNode, pin: fn(&[u8])) {
            match node {
                SNode::Map(entries) => entries.iter().for_each(|(_, n)| clear_values(n, pin)),
                SNode::List(items) => items.iter().for_each(|n| clear_values(n, pin)),
                SNode::Leaf(SLeaf::Clear(value)) => pin(value.expose_secret()),
                SNode::Leaf(SLeaf::Sealed { .. }) | SNode::Null => {}
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
        let mut out = Vec::new();
        let mut segments = Vec::new();
        collect_paths(&self.root, &mut segments, &mut |segments| {
            if let Ok(path) = SecretPath::from_segments(segments.iter()) {
                out.push(path);
            }
        });
        out
    }

    /// How many encrypted values are held decrypted now: those asked for
    /// through [`SecretStore::get`] since the store was opened.
    pub fn decrypted(&self) -> usize {
        fn count(node: &SNode) -> usize {
            match node {
                SNode::Map(entries) => entries.iter().map(|(_, n)| count(n)).sum(),
                SNode::List(items) => items.iter().map(count).sum(),
                SNode::Leaf(SLeaf::Sealed { plain, .. }) => usize::from(plain.get().is_some()),
                SNode::Leaf(SLeaf::Clear(_)) | SNode::Null => 0,
            }
        }
        count(&self.root)
    }

    /// The plaintext of a sealed leaf: decrypted once, then kept.
    fn open_sealed<'a>(
        &self,
        sealed: &Sealed,
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

/// Rebuilds `node` with each encrypted leaf replaced by its ciphertext, taken
/// from `sealed` (the walk's order is the tree's leaf order). The decrypted
/// values of those leaves are not copied.
fn seal(node: &Node, sealed: &mut std::vec::IntoIter<Sealed>) -> SNode {
    match node {
        Node::Map(entries) => SNode::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), seal(v, sealed)))
                .collect(),
        ),
        Node::List(items) => SNode::List(items.iter().map(|n| seal(n, sealed)).collect()),
        Node::Null => SNode::Null,
        Node::Leaf(leaf) if leaf.was_encrypted() => match sealed.next() {
            Some(one) => SNode::Leaf(SLeaf::Sealed {
                sealed: Box::new(one),
                plain: OnceLock::new(),
            }),
            // Not reached (one ciphertext per encrypted leaf); keeping the
            // value is correct, only not lazy.
            None => SNode::Leaf(SLeaf::Clear(leaf.value().duplicate())),
        },
        Node::Leaf(leaf) => SNode::Leaf(SLeaf::Clear(leaf.value().duplicate())),
    }
}

fn collect_paths(node: &SNode, segments: &mut Vec<String>, found: &mut dyn FnMut(&[String])) {
    match node {
        SNode::Leaf(_) => found(segments),
        SNode::Null => {}
        SNode::Map(entries) => {
            for (key, child) in entries {
                segments.push(key.clone());
                collect_paths(child, segments, found);
                segments.pop();
            }
        }
        SNode::List(items) => {
            for (i, child) in items.iter().enumerate() {
                segments.push(i.to_string());
                collect_paths(child, segments, found);
                segments.pop();
            }
        }
    }
}

impl SecretStore for SopsStore {
    fn get(&self, grant: &Authorized<'_>) -> Result<StoredSecret, StoreError> {
        let path = grant.path();
        let mut node = &self.root;
        for segment in path.segments() {
            let next = match node {
                SNode::Map(entries) => entries.iter().find(|(k, _)| k == segment).map(|(_, v)| v),
                SNode::List(items) => crate::tree::parse_index(segment).and_then(|i| items.get(i)),
                SNode::Leaf(_) | SNode::Null => None,
            };
            node = next.ok_or_else(|| StoreError::NotFound {
                path: path.to_string(),
            })?;
        }
        match node {
            SNode::Leaf(SLeaf::Clear(value)) => Ok(StoredSecret {
                value: value.duplicate(),
                encrypted: false,
            }),
            SNode::Leaf(SLeaf::Sealed { sealed, plain }) => Ok(StoredSecret {
                value: self.open_sealed(sealed, plain, path)?.duplicate(),
                encrypted: true,
            }),
            SNode::Map(entries) => Err(StoreError::NotALeaf {
                path: path.to_string(),
                children: entries.iter().map(|(k, _)| k.clone()).collect(),
            }),
            SNode::List(items) => Err(StoreError::NotALeaf {
                path: path.to_string(),
                children: (0..items.len()).map(|i| i.to_string()).collect(),
            }),
            SNode::Null => Err(StoreError::NotFound {
                path: path.to_string(),
            }),
        }
    }

    fn list(&self, prefix: &SecretPath) -> Result<Vec<SecretPath>, StoreError> {
        Ok(self
            .paths()
            .into_iter()
            .filter(|p| p.starts_with(prefix))
            .collect())
    }
}
