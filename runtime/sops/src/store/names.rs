//! [`SopsNames`]: a SOPS file's key names, read without any key.

use std::path::{Path, PathBuf};

use agentsec_policy::SecretPath;
use agentsec_secrets::{NameIndex, StoreError};

use super::{below, served_paths};
use crate::{Format, SopsError};

/// The key names of a SOPS file, read **without decrypting it**: no identity is loaded or
/// looked for, so a policy reviewer or a CI job can check rules against the names of a
/// production file without its key.
///
/// SOPS stores key names in clear; only values (and, with a comment rule, some comments)
/// are encrypted. [`SopsNames::open`] reads the file through the same bounded reader, parser,
/// metadata checks and partial-encryption rules as [`SopsStore::open`](crate::SopsStore::open), and lists exactly the
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
    /// Reads the key names of `file` (format from its name, as [`SopsStore::open`](crate::SopsStore::open)).
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
