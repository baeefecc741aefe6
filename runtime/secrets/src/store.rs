//! The [`SecretStore`] trait and its first backend, a SOPS file.
//!
//! A store answers two questions: "the value at this path" (which needs the
//! policy's [`Authorized`] proof, so no code path reads a secret without
//! passing policy) and "the leaf names under this prefix" (names only).

use std::path::{Path, PathBuf};

use agentsec_policy::{Authorized, SecretPath};

use crate::{DecryptOptions, Identities, Lookup, SecretTree, SecretValue, SopsError, decrypt_file};

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

/// A SOPS file, decrypted and MAC-verified once when opened, kept in
/// zeroizing memory for the life of the store.
pub struct SopsStore {
    file: PathBuf,
    tree: SecretTree,
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
    /// can be read.
    pub fn open(file: &Path, identities: &Identities) -> Result<SopsStore, SopsError> {
        let tree = decrypt_file(file, identities, DecryptOptions::default())?;
        Ok(SopsStore {
            file: file.to_owned(),
            tree,
        })
    }

    /// The file this store was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The decrypted tree.
    pub fn tree(&self) -> &SecretTree {
        &self.tree
    }
}

impl SecretStore for SopsStore {
    fn get(&self, grant: &Authorized<'_>) -> Result<StoredSecret, StoreError> {
        let path = grant.path();
        let segments: Vec<&str> = path.segments().collect();
        match self.tree.lookup(&segments) {
            Lookup::Leaf(leaf) => Ok(StoredSecret {
                value: leaf.value().duplicate(),
                encrypted: leaf.was_encrypted(),
            }),
            Lookup::Branch { children } => Err(StoreError::NotALeaf {
                path: path.to_string(),
                children,
            }),
            Lookup::Null | Lookup::NotFound { .. } => Err(StoreError::NotFound {
                path: path.to_string(),
            }),
        }
    }

    fn list(&self, prefix: &SecretPath) -> Result<Vec<SecretPath>, StoreError> {
        Ok(self
            .tree
            .leaves()
            .filter_map(|(segments, _)| SecretPath::from_segments(segments).ok())
            .filter(|p| p.starts_with(prefix))
            .collect())
    }
}
