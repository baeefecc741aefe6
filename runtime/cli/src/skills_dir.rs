//! The skills directory (`--skills DIR`, `skills_dir:` in agentsec.yaml):
//! where a component's name counts.
//!
//! Whoever chooses a component's file chooses its file name, so a policy's
//! `skills: [db-healthcheck]` would otherwise be satisfied by any component
//! renamed to `db_healthcheck.wasm`. A name counts only for a component that
//! is a regular file directly inside the skills directory the operator
//! configured (after resolving symlinks: the name is the real file's), when
//! that directory and the file are owned by the user or root and writable
//! by nobody else ([`crate::trust`]). Any other component is unnamed: only
//! `sha256:` entries match it.

use std::path::{Path, PathBuf};

/// Where to load a component from, and whether its name counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The path to load (the real file inside the skills directory when the
    /// name counts, so that the name is that file's, not a link's).
    pub path: PathBuf,
    /// Whether the component is in the trusted skills directory.
    pub named: bool,
}

/// Resolves `component` against the skills directory `dir`, if any.
///
/// # Errors
/// A configured directory that is missing or not trusted, or a component in
/// it that others could replace: the message names the path and the fix.
pub fn resolve(dir: Option<&Path>, component: &Path) -> Result<Resolved, String> {
    let unnamed = Resolved {
        path: component.to_owned(),
        named: false,
    };
    let Some(dir) = dir else { return Ok(unnamed) };
    crate::trust::check_dir(dir).map_err(|why| {
        format!("skills directory: {why}; only a directory that you or root own and no one else can write may give components their names")
    })?;
    let real_dir = dir
        .canonicalize()
        .map_err(|e| format!("skills directory {}: {e}", dir.display()))?;
    // A component that cannot be resolved is reported by the loader.
    let Ok(real) = component.canonicalize() else {
        return Ok(unnamed);
    };
    if real.parent() != Some(real_dir.as_path()) {
        return Ok(unnamed);
    }
    let meta = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", real.display()));
    }
    crate::trust::check(&real, &meta).map_err(|why| {
        format!("skill component {why}; in the skills directory it would be trusted by name")
    })?;
    Ok(Resolved {
        path: real,
        named: true,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn only_real_files_directly_in_a_trusted_directory_are_named() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("skills");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let inside = dir.join("db_healthcheck.wasm");
        std::fs::write(&inside, b"x").expect("write");
        let outside = root.path().join("db_healthcheck.wasm");
        std::fs::write(&outside, b"x").expect("write");

        assert!(!resolve(None, &inside).expect("no dir").named);
        assert!(resolve(Some(&dir), &inside).expect("inside").named);
        assert!(!resolve(Some(&dir), &outside).expect("outside").named);
        // A link inside the directory to a file outside it: unnamed.
        let link = dir.join("other.wasm");
        std::os::unix::fs::symlink(&outside, &link).expect("symlink");
        assert!(!resolve(Some(&dir), &link).expect("link out").named);
        // A link outside to a file inside: named after the real file.
        let back = root.path().join("renamed.wasm");
        std::os::unix::fs::symlink(&inside, &back).expect("symlink");
        let r = resolve(Some(&dir), &back).expect("link in");
        assert!(r.named);
        assert_eq!(r.path.file_name(), inside.file_name());
        // A group-writable component, or directory, is refused.
        std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        assert!(resolve(Some(&dir), &inside).is_err());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = resolve(Some(&dir), &outside).expect_err("open dir");
        assert!(err.contains("writable by users other than"), "{err}");
    }
}
