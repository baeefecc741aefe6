//! The `flock` an append holds while it learns the tail and writes.

use std::fs::File;
use std::io;
use std::path::Path;

use fs4::fs_std::FileExt;

use crate::error::AuditError;

/// A held `flock`-style lock, released on drop (errors ignored there) or by
/// [`FileLock::release`] (errors reported).
pub(super) struct FileLock<'f> {
    file: &'f File,
    path: &'f Path,
    held: bool,
}

impl<'f> FileLock<'f> {
    /// Takes over a lock the caller already holds on `file`.
    pub(super) fn held(file: &'f File, path: &'f Path) -> Self {
        Self {
            file,
            path,
            held: true,
        }
    }

    /// Takes a shared lock on `file` (named `path` in errors).
    pub(super) fn shared(file: &'f File, path: &'f Path) -> Result<Self, AuditError> {
        // Fully qualified (here and below): `File` has inherent lock methods
        // of its own since Rust 1.89; this crate uses fs4's.
        FileExt::lock_shared(file).map_err(|source| lock_error(path, source))?;
        Ok(Self {
            file,
            path,
            held: true,
        })
    }

    /// Releases the lock, reporting a failure.
    pub(super) fn release(mut self) -> Result<(), AuditError> {
        self.held = false;
        FileExt::unlock(self.file).map_err(|source| lock_error(self.path, source))
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        if self.held {
            // Nothing to report to: an error path is already being returned,
            // and closing the file would release the lock in any case.
            let _ = FileExt::unlock(self.file);
        }
    }
}

/// A failure to lock or unlock the log at `path`.
pub(super) fn lock_error(path: &Path, source: io::Error) -> AuditError {
    AuditError::Lock {
        path: path.to_path_buf(),
        source,
    }
}
