//! The file operations of a log handle: open and create, write one line,
//! read at an offset, the length, and whether the log's name still names
//! the open file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

#[cfg(unix)]
use super::LOG_FILE_MODE;
use crate::error::AuditError;

/// Permissions of newly created parent directories.
#[cfg(unix)]
const LOG_DIR_MODE: u32 = 0o700;

/// The file's length: one `fstat` (std's `metadata` asks `statx` for more).
#[cfg(unix)]
pub(super) fn file_len(file: &File) -> io::Result<u64> {
    let stat = rustix::fs::fstat(file)?;
    Ok(u64::try_from(stat.st_size).unwrap_or(0))
}

#[cfg(not(unix))]
pub(super) fn file_len(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.len())
}

/// Writes `line` with a single `write` call. On failure, cuts the file back
/// to `len_before` so that no partial record stays behind.
pub(super) fn write_line(
    file: &File,
    path: &Path,
    line: &[u8],
    len_before: u64,
) -> Result<(), AuditError> {
    let result = match (&*file).write(line) {
        Ok(n) if n == line.len() => return Ok(()),
        Ok(n) => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("wrote {n} of {} bytes", line.len()),
        )),
        Err(source) => Err(source),
    };
    // Best effort: we hold the exclusive lock, so the bytes past
    // `len_before` are ours. If this fails (e.g. a device file), the next
    // append reports the torn tail.
    let _ = file.set_len(len_before);
    result.map_err(|source| AuditError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Opens (creating if missing, mode 0600 on Unix) the log file for reading
/// and appending.
pub(super) fn open_file(path: &Path) -> Result<File, AuditError> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(LOG_FILE_MODE);
    }
    options.open(path).map_err(|source| AuditError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// The log's name: its directory (held open, so a later `chdir` or a
/// long path does not matter) and its file name, to check that they still
/// name the open file.
#[cfg(unix)]
#[derive(Debug)]
pub(super) struct LogName {
    dir: std::os::fd::OwnedFd,
    name: std::ffi::OsString,
}

#[cfg(unix)]
impl LogName {
    pub(super) fn of(path: &Path) -> io::Result<LogName> {
        use rustix::fs::{Mode, OFlags};
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::other("the audit log path does not name a file"))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let dir = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(LogName {
            dir,
            name: name.to_owned(),
        })
    }

    /// Whether the log's name still names the open `file` (same device and
    /// inode). A missing name counts as "no": reopening creates it.
    pub(super) fn names(&self, file: &File) -> io::Result<bool> {
        let held = rustix::fs::fstat(file)?;
        match rustix::fs::statat(
            &self.dir,
            self.name.as_os_str(),
            rustix::fs::AtFlags::empty(),
        ) {
            Ok(now) => Ok(now.st_dev == held.st_dev && now.st_ino == held.st_ino),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Without inode numbers, assume the path still names the file (rotation
/// by other processes is then not detected; see the crate docs).
#[cfg(not(unix))]
#[derive(Debug)]
pub(super) struct LogName;

#[cfg(not(unix))]
impl LogName {
    pub(super) fn of(_path: &Path) -> io::Result<LogName> {
        Ok(LogName)
    }

    pub(super) fn names(&self, _file: &File) -> io::Result<bool> {
        Ok(true)
    }
}

/// Creates `dir` and its parents, private to the user on Unix.
pub(super) fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(LOG_DIR_MODE);
    }
    builder.create(dir)
}
