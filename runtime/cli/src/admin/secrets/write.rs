//! How `agentsec secrets` (and `policy pin`) replace a file: atomically, through symlinks,
//! keeping owner, group and mode.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::SecretsError;

/// The marker in the names of our temporary files: `.NAME.agentsec-tmp-XXXXXX` beside the
/// file NAME being replaced. A run killed between creating and renaming one leaves it behind
/// (ciphertext only); the next write of NAME removes it.
const TMP_MARKER: &str = ".agentsec-tmp-";

/// [`write_atomic`] for the other `agentsec` commands that rewrite a file.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_atomic(path, bytes).map_err(|e| e.to_string())
}

/// Writes `bytes` to `path` atomically, the way the reader sees it: either the old or the new
/// content, never a mix.
///
/// - A symlink is followed to its final target and the target is replaced (sops writes through
///   the link too); the link stays a link.
/// - The new file gets the old file's owner, group and mode (`fchown`, then `fchmod`, on the
///   temporary file before the rename); if the owner cannot be kept (not root and not the
///   owner), nothing is written.
/// - A file with more than one hard link is refused: a rename would split the links (the
///   others would keep the old content), and writing in place is not atomic.
/// - The temporary file is `.NAME.agentsec-tmp-XXXXXX` in the target's directory, created
///   0600, fsynced, renamed over the target, and the directory fsynced. Stale ones of ours
///   (left by a killed run) are removed first.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SecretsError> {
    use std::os::unix::fs::MetadataExt;
    let target = resolve_target(path)?;
    let err = |e: std::io::Error| {
        SecretsError::Write(format!("could not write {}: {e}", target.display()))
    };
    let meta = match std::fs::metadata(&target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(e)),
    };
    if let Some(m) = &meta {
        if !m.is_file() {
            return Err(SecretsError::Write(format!(
                "{} is not a regular file; not changed",
                target.display()
            )));
        }
        if m.nlink() > 1 {
            return Err(SecretsError::Write(format!(
                "{} has {} hard links; replacing it would split them (the other names \
                     would keep the old content), so it was not changed. Remove the other \
                     links (find them with `find / -samefile {}`) or use a symlink instead",
                target.display(),
                m.nlink(),
                target.display()
            )));
        }
    }
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}{TMP_MARKER}");
    remove_stale_temps(dir, &prefix);
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(6)
        .tempfile_in(dir)
        .map_err(err)?;
    if let Some(m) = &meta {
        // Owner first: chown clears set-id bits, the mode is set after it.
        std::os::unix::fs::fchown(tmp.as_file(), Some(m.uid()), Some(m.gid())).map_err(|e| {
            SecretsError::Write(format!(
                "cannot keep the owner {}:{} of {} ({e}); not changed. Run as that user \
                     or as root",
                m.uid(),
                m.gid(),
                target.display()
            ))
        })?;
        tmp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(
                m.mode() & 0o7777,
            ))
            .map_err(err)?;
    }
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(&target).map_err(|e| err(e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The file a write to `path` must replace: `path` itself, or the final target of the symlink
/// chain at `path` (relative links resolved against their own directory).
fn resolve_target(path: &Path) -> Result<PathBuf, SecretsError> {
    /// Symlinks followed before giving up (Linux's own limit, `MAXSYMLINKS`, is 40).
    const MAX_SYMLINK_HOPS: usize = 40;
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINK_HOPS {
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&current).map_err(|e| {
                    SecretsError::Write(format!(
                        "cannot read the symlink {}: {e}",
                        current.display()
                    ))
                })?;
                current = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(SecretsError::Write(format!(
        "{}: more than {MAX_SYMLINK_HOPS} symlinks to follow; not changed",
        path.display()
    )))
}

/// Removes temporary files a killed run of ours left in `dir` for the same file (names
/// starting with `prefix`), if they are regular files owned by us. Best effort: a failure
/// here does not stop the write.
fn remove_stale_temps(dir: &Path, prefix: &str) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        if rest.len() != 6 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        if let Ok(m) = entry.path().symlink_metadata()
            && m.file_type().is_file()
            && m.uid() == me
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
