//! Whether a file or directory may be trusted as configuration: the
//! ownership and mode checks behind `agentsec.yaml` discovery and
//! `--skills DIR` / `skills_dir:`.
//!
//! A path is trusted when it is owned by the user running agentsec or by
//! root, and nobody else can write it (no group or other write bit). A
//! directory that others can write lets them plant or replace what it holds;
//! a file others can write lets them change it; a path owned by another
//! (non-root) user is theirs to change. The sticky bit does not help: it
//! stops others from replacing an entry, not from adding one.

use std::fmt;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// Why a path is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    /// The offending path.
    pub path: PathBuf,
    /// What is wrong with it, e.g. "writable by users other than its owner and root (mode 1777)".
    pub why: String,
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}", self.path.display(), self.why)
    }
}

/// The effective uid of this process.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Checks ownership and mode of what `meta` describes (see the module docs).
///
/// # Errors
/// [`Untrusted`] naming `path` and the reason.
pub fn check(path: &Path, meta: &std::fs::Metadata) -> Result<(), Untrusted> {
    let untrusted = |why: String| Untrusted {
        path: path.to_owned(),
        why,
    };
    let owner = meta.uid();
    if owner != 0 && owner != euid() {
        return Err(untrusted(format!(
            "owned by uid {owner}, neither you (uid {}) nor root",
            euid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(untrusted(format!(
            "writable by users other than its owner and root (mode {mode:04o}; fix with `chmod go-w`)"
        )));
    }
    Ok(())
}

/// Checks the directory at `dir` (following symlinks to it).
///
/// # Errors
/// [`Untrusted`], or an I/O error as text naming the directory.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    check(dir, &meta).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn group_and_other_write_are_refused_owner_write_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        for (mode, ok) in [
            (0o700, true),
            (0o755, true),
            (0o775, false),
            (0o1777, false),
        ] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            assert_eq!(check_dir(p).is_ok(), ok, "mode {mode:o}");
        }
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let err = check_dir(&p.join("missing")).expect_err("missing");
        assert!(err.contains("missing"), "{err}");
    }
}
