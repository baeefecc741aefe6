//! Whether what a handle wrote is on disk, and the `fsync` failure that
//! makes a handle refuse to go on.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::error::AuditError;

/// The `fsync` state of a handle.
#[derive(Debug, Default)]
pub(super) struct Durability {
    /// Records were written since the last `fsync`.
    pub(super) unsynced: bool,
    /// An `fsync` failed. Linux reports a writeback error once per open
    /// file and a retry then "succeeds" although the data may be lost, so
    /// after one failure this handle refuses to append or sync again.
    failed: bool,
}

impl Durability {
    /// The error every call returns once an `fsync` of this handle failed.
    pub(super) fn refuse_if_failed(&self, path: &Path) -> Result<(), AuditError> {
        if self.failed {
            return Err(AuditError::Sync {
                path: path.to_path_buf(),
                source: io::Error::other(
                    "an earlier fsync of this log failed, so records written since may be lost; open the log again to go on",
                ),
            });
        }
        Ok(())
    }

    /// Syncs `file` (named `path`) if anything was written since the last
    /// sync; a failure is remembered for good.
    pub(super) fn sync(&mut self, file: &File, path: &Path) -> Result<(), AuditError> {
        self.refuse_if_failed(path)?;
        if !self.unsynced {
            return Ok(());
        }
        if let Err(source) = sync_data(file) {
            self.failed = true;
            return Err(AuditError::Sync {
                path: path.to_path_buf(),
                source,
            });
        }
        self.unsynced = false;
        Ok(())
    }
}

/// `fdatasync`: what was written to `file` reaches the disk.
fn sync_data(file: &File) -> io::Result<()> {
    #[cfg(test)]
    if FAIL_FILE_SYNC.with(std::cell::Cell::get) {
        return Err(io::Error::other("injected fsync failure"));
    }
    file.sync_data()
}

#[cfg(test)]
thread_local! {
    /// Makes `sync_data` fail on this thread (fault injection for tests).
    pub(super) static FAIL_FILE_SYNC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
