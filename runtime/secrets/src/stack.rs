//! [`StackStore`]: several stores (SOPS files, Vault mounts) combined into one tree.
//!
//! Each layer says which parts of the tree it serves (its mount points: a SOPS file's leaf
//! paths, a Vault configuration's mount prefixes). Two layers whose mount points overlap
//! (one equal to, above or below the other) are refused when the stack is built, naming
//! both, so every path of the tree comes from exactly one place.

use std::sync::Arc;

use agentsec_policy::{Authorized, SecretPath};

use crate::{NameIndex, SecretStore, StoreError, StoredSecret};

/// One store of a stack.
pub struct Layer {
    /// How messages name it (`SOPS file demo/secrets.yaml`, `Vault config vault.yaml`).
    pub name: String,
    /// The store.
    pub store: Arc<dyn SecretStore>,
    /// The parts of the tree it serves.
    pub mounts: Vec<SecretPath>,
}

/// Two layers claim overlapping parts of the tree.
#[derive(Debug, thiserror::Error)]
#[error(
    "the stores overlap: `{first_path}` of {first} and `{second_path}` of {second}; every path of the tree must come from one store (move one of them, or mount it elsewhere)"
)]
pub struct OverlapError {
    /// The first layer's name.
    pub first: String,
    /// Its mount point.
    pub first_path: String,
    /// The second layer's name.
    pub second: String,
    /// Its mount point.
    pub second_path: String,
}

/// Stores combined into one tree; see the module docs.
pub struct StackStore {
    layers: Vec<Layer>,
}

impl std::fmt::Debug for StackStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackStore")
            .field(
                "layers",
                &self
                    .layers
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl StackStore {
    /// Combines `layers`.
    ///
    /// # Errors
    /// Two layers' mount points overlap.
    pub fn new(layers: Vec<Layer>) -> Result<StackStore, OverlapError> {
        for (i, a) in layers.iter().enumerate() {
            for b in &layers[i + 1..] {
                for pa in &a.mounts {
                    if let Some(pb) = b
                        .mounts
                        .iter()
                        .find(|pb| pa.starts_with(pb) || pb.starts_with(pa))
                    {
                        return Err(OverlapError {
                            first: a.name.clone(),
                            first_path: pa.to_string(),
                            second: b.name.clone(),
                            second_path: pb.to_string(),
                        });
                    }
                }
            }
        }
        Ok(StackStore { layers })
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }
}

impl NameIndex for StackStore {
    fn list(&self, prefix: &SecretPath) -> Result<Vec<SecretPath>, StoreError> {
        let mut out = Vec::new();
        for layer in &self.layers {
            if layer
                .mounts
                .iter()
                .any(|m| m.starts_with(prefix) || prefix.starts_with(m))
            {
                out.extend(layer.store.list(prefix)?);
            }
        }
        Ok(out)
    }
}

impl SecretStore for StackStore {
    fn get(&self, grant: &Authorized<'_>) -> Result<StoredSecret, StoreError> {
        self.get_from(grant, None)
    }

    fn get_in_run(&self, grant: &Authorized<'_>, run_id: &str) -> Result<StoredSecret, StoreError> {
        self.get_from(grant, Some(run_id))
    }

    fn end_run(&self, run_id: &str) {
        for layer in &self.layers {
            layer.store.end_run(run_id);
        }
    }
}

impl StackStore {
    /// The layer that mounts `grant.path()` answers (within `run`, when given).
    fn get_from(
        &self,
        grant: &Authorized<'_>,
        run: Option<&str>,
    ) -> Result<StoredSecret, StoreError> {
        let path = grant.path();
        if let Some(layer) = self
            .layers
            .iter()
            .find(|l| l.mounts.iter().any(|m| path.starts_with(m)))
        {
            return match run {
                Some(run) => layer.store.get_in_run(grant, run),
                None => layer.store.get(grant),
            };
        }
        // Above every mount point it touches: a branch whose children are the next
        // segments of the mount points below it.
        let depth = path.segments().count();
        let mut children: Vec<String> = Vec::new();
        for m in self.layers.iter().flat_map(|l| &l.mounts) {
            if m.starts_with(path)
                && let Some(child) = m.segments().nth(depth)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, SecretValue};

    fn layer(name: &str, leaves: &[&str]) -> Layer {
        let mut store = MemoryStore::new();
        for l in leaves {
            store
                .insert(
                    SecretPath::parse(l).unwrap(),
                    SecretValue::copy_from_slice(name.as_bytes()),
                    true,
                )
                .unwrap();
        }
        Layer {
            name: name.to_owned(),
            store: Arc::new(store),
            mounts: leaves
                .iter()
                .map(|l| SecretPath::parse(l).unwrap())
                .collect(),
        }
    }

    #[test]
    fn overlapping_layers_are_refused_naming_both() {
        let e = StackStore::new(vec![
            layer("sops a.yaml", &["db.mysql.password", "x.y"]),
            layer("vault v.yaml", &["db"]),
        ])
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("`db.mysql.password` of sops a.yaml"),
            "{text}"
        );
        assert!(text.contains("`db` of vault v.yaml"), "{text}");
        let s = StackStore::new(vec![
            layer("sops", &["db.mysql.password"]),
            layer("vault", &["db.postgres.password"]),
        ])
        .unwrap();
        let all = s.list(&SecretPath::root()).unwrap();
        assert_eq!(all.len(), 2);
    }
}
