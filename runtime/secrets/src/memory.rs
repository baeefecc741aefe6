//! [`MemoryStore`]: secrets held in memory, for tests and embedders.

use agentsec_policy::{Authorized, SecretPath};

use crate::{NameIndex, SecretStore, SecretValue, StoreError, StoredSecret};

/// A store that holds its values in memory, in insertion order.
///
/// For tests (a host run with no SOPS file and no key) and for embedders that fetch values
/// themselves. A path is a leaf or a branch, never both: inserting `a.b` after `a` (or `a`
/// after `a.b`) is refused.
#[derive(Default)]
pub struct MemoryStore {
    entries: Vec<(SecretPath, StoredSecret)>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("paths", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// [`MemoryStore::insert`] refused a path.
#[derive(Debug, thiserror::Error)]
#[error("`{path}` {why}")]
pub struct InsertError {
    path: String,
    why: &'static str,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// Adds (or replaces) the value at `path`; `redact` says whether it must be redacted
    /// from a skill's output (see [`StoredSecret::redact`]).
    ///
    /// # Errors
    /// `path` is the root, or lies above or below an existing leaf.
    pub fn insert(
        &mut self,
        path: SecretPath,
        value: SecretValue,
        redact: bool,
    ) -> Result<&mut Self, InsertError> {
        let refuse = |why| InsertError {
            path: path.to_string(),
            why,
        };
        if path.is_root() {
            return Err(refuse("is the root; a value needs a name"));
        }
        if let Some(slot) = self.entries.iter_mut().find(|(p, _)| *p == path) {
            slot.1 = StoredSecret {
                value,
                redact,
                lease: None,
            };
            return Ok(self);
        }
        if self.entries.iter().any(|(p, _)| path.starts_with(p)) {
            return Err(refuse("lies below a value"));
        }
        if self.entries.iter().any(|(p, _)| p.starts_with(&path)) {
            return Err(refuse("lies above a value"));
        }
        self.entries.push((
            path,
            StoredSecret {
                value,
                redact,
                lease: None,
            },
        ));
        Ok(self)
    }
}

impl NameIndex for MemoryStore {
    fn list(&self, prefix: &SecretPath) -> Result<Vec<SecretPath>, StoreError> {
        Ok(self
            .entries
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(p, _)| p.clone())
            .collect())
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, grant: &Authorized<'_>) -> Result<StoredSecret, StoreError> {
        let path = grant.path();
        if !grant.releases_value() {
            return Err(StoreError::ListingGrant {
                path: path.to_string(),
            });
        }
        if let Some((_, stored)) = self.entries.iter().find(|(p, _)| p == path) {
            return Ok(StoredSecret {
                value: stored.value.duplicate(),
                redact: stored.redact,
                lease: None,
            });
        }
        let depth = path.segments().count();
        let mut children: Vec<String> = Vec::new();
        for (p, _) in &self.entries {
            if p.starts_with(path)
                && let Some(child) = p.segments().nth(depth)
                && !children.iter().any(|c| c == child)
            {
                children.push(child.to_owned());
            }
        }
        if children.is_empty() {
            Err(StoreError::NotFound {
                path: path.to_string(),
            })
        } else {
            Err(StoreError::NotALeaf {
                path: path.to_string(),
                children,
            })
        }
    }
}
