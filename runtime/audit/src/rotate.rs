//! Size-based rotation: once an append fills the file, the file becomes a
//! numbered segment and an empty file takes its place; the next record
//! written there chains to the segment's last.
//!
//! The path always names a log file, so another process that opens it at any
//! moment finds the tail (an empty file's tail is the newest segment's):
//!
//! 1. (holding the exclusive lock on the full file, whose last record was
//!    just appended and `fsync`ed) create a fresh hidden empty file next to
//!    the log;
//! 2. hard-link the full file to `<name>.<N>` (N = one more than the highest
//!    existing segment number, starting at 1), unless an interrupted
//!    rotation already did;
//! 3. rename the empty file over `<name>` (atomic) and `fsync` the directory;
//! 4. release the lock on the old file. Appenders waiting for it find it
//!    longer than they left it, see that the path now names another file,
//!    and reopen it (see `AuditLog::append`).
//!
//! Because the rotating append grows the old file before the rename, an
//! appender that finds its file exactly as long as it left it knows no
//! rotation happened and need not look at the path at all.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::AuditError;

/// How many segment numbers are tried when the chosen one already exists.
///
/// Reason: the number is chosen under the lock as one past the highest
/// existing segment, so a clash means a file appeared in between (a
/// non-cooperating writer); a few retries handle a race, and a bound keeps a
/// hostile directory from making the append loop forever.
const MAX_SEGMENT_ATTEMPTS: u64 = 8;

/// A rotation that happened: the new file is at the path.
pub(crate) struct Rotated {
    /// The new, empty file, open for appending.
    pub(crate) file: File,
    /// The name the full file has now.
    pub(crate) segment: PathBuf,
    /// Whether the directory was synced (the rename made durable). Even if
    /// not, the rotation happened and the caller must use `file`.
    pub(crate) dir_synced: io::Result<()>,
}

/// Rotates the full log `full`, named `path`. The caller holds the exclusive
/// lock on `full`. An error means the rotation did not happen: `full` is
/// still at `path`.
pub(crate) fn rotate(path: &Path, full: &File) -> Result<Rotated, AuditError> {
    let err = |source| AuditError::Rotate {
        path: path.to_path_buf(),
        source,
    };
    let (dir, name) = split(path).map_err(err)?;
    let temp = temp_path(&dir, &name).map_err(err)?;
    let file = create_empty(&temp).map_err(err)?;
    let segment = match existing_segment(full, &dir, &name) {
        Ok(Some(segment)) => segment,
        Ok(None) => match link_segment(path, &dir, &name) {
            Ok(segment) => segment,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(err(e));
            }
        },
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(err(e));
        }
    };
    if let Err(e) = std::fs::rename(&temp, path) {
        // Undo: the old file is still at `path`; drop its extra name.
        let _ = std::fs::remove_file(&segment);
        let _ = std::fs::remove_file(&temp);
        return Err(err(e));
    }
    Ok(Rotated {
        file,
        segment,
        dir_synced: sync_dir(&dir),
    })
}

/// The newest segment (`<name>.<N>` with the highest N) of the log at
/// `path`, if any.
pub(crate) fn newest_segment(path: &Path) -> io::Result<Option<PathBuf>> {
    let (dir, name) = split(path)?;
    let mut newest: Option<(u64, String)> = None;
    for entry in std::fs::read_dir(listing(&dir))? {
        let file = entry?.file_name();
        let file = file.to_string_lossy();
        if let Some(n) = segment_number(&file, &name)
            && newest.as_ref().is_none_or(|(m, _)| n > *m)
        {
            newest = Some((n, file.into_owned()));
        }
    }
    Ok(newest.map(|(_, file)| in_dir(&dir, &file)))
}

/// A segment name `full` already has: a rotation that linked it and was
/// interrupted before the rename. Linking it again would list the same
/// records twice.
#[cfg(unix)]
fn existing_segment(full: &File, dir: &Path, name: &str) -> io::Result<Option<PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    let held = full.metadata()?;
    if held.nlink() < 2 {
        return Ok(None);
    }
    for entry in std::fs::read_dir(listing(dir))? {
        let entry = entry?;
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if segment_number(&file, name).is_some() {
            let candidate = in_dir(dir, &file);
            let meta = std::fs::symlink_metadata(&candidate)?;
            if meta.dev() == held.dev() && meta.ino() == held.ino() {
                return Ok(Some(candidate));
            }
        }
    }
    Ok(None)
}

#[cfg(not(unix))]
fn existing_segment(_full: &File, _dir: &Path, _name: &str) -> io::Result<Option<PathBuf>> {
    Ok(None)
}

/// The files of the log at `path`, oldest first: its rotated segments
/// `<name>.1`, `<name>.2`, ... in numeric order, then `path` itself if it
/// exists. Verify them together as one chain.
///
/// # Errors
/// The directory cannot be read.
pub fn log_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let (dir, name) = split(path)?;
    let mut numbered: Vec<(u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(listing(&dir))? {
        let file = entry?.file_name();
        let file = file.to_string_lossy();
        if let Some(n) = segment_number(&file, &name) {
            numbered.push((n, in_dir(&dir, &file)));
        }
    }
    numbered.sort_unstable_by_key(|(n, _)| *n);
    let mut files: Vec<PathBuf> = numbered.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    Ok(files)
}

/// The directory to list or sync: `dir`, or `.` for a bare file name.
fn listing(dir: &Path) -> &Path {
    if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }
}

/// The directory (`""` for a bare file name) and file name of `path`.
fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::other("the audit log path has no UTF-8 file name"))?;
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    Ok((dir, name.to_owned()))
}

/// `N` if `file` is `<name>.<N>` with N a positive decimal number.
fn segment_number(file: &str, name: &str) -> Option<u64> {
    let digits = file.strip_prefix(name)?.strip_prefix('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

fn in_dir(dir: &Path, file: &str) -> PathBuf {
    if dir.as_os_str().is_empty() {
        PathBuf::from(file)
    } else {
        dir.join(file)
    }
}

/// A hidden temporary name next to the log that cannot be a segment name.
fn temp_path(dir: &Path, name: &str) -> io::Result<PathBuf> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(in_dir(dir, &format!(".{name}.{}.new", hex::encode(random))))
}

/// Creates `temp`, empty (mode 0600 on Unix), open for reading and appending.
fn create_empty(temp: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(crate::log::LOG_FILE_MODE);
    }
    options.open(temp)
}

/// Links the current file to the next free `<name>.<N>`.
fn link_segment(path: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
    let mut highest = 0;
    for entry in std::fs::read_dir(listing(dir))? {
        if let Some(n) = segment_number(&entry?.file_name().to_string_lossy(), name) {
            highest = highest.max(n);
        }
    }
    for attempt in 1..=MAX_SEGMENT_ATTEMPTS {
        let n = highest.saturating_add(attempt);
        let segment = in_dir(dir, &format!("{name}.{n}"));
        match std::fs::hard_link(path, &segment) {
            Ok(()) => return Ok(segment),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{MAX_SEGMENT_ATTEMPTS} segment names after {name}.{highest} already exist"
    )))
}

/// Makes the rename durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(test)]
    if tests::FAIL_DIR_SYNC.with(std::cell::Cell::get) {
        return Err(io::Error::other("injected directory sync failure"));
    }
    File::open(listing(dir))?.sync_all()
}

/// Directories cannot be opened for syncing here; the rename is as durable
/// as the platform makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// Makes `sync_dir` fail on this thread (fault injection for tests).
        pub(crate) static FAIL_DIR_SYNC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[test]
    fn segment_numbers() {
        assert_eq!(segment_number("audit.log.3", "audit.log"), Some(3));
        assert_eq!(segment_number("audit.log.12", "audit.log"), Some(12));
        assert_eq!(segment_number("audit.log.0", "audit.log"), None);
        assert_eq!(segment_number("audit.log", "audit.log"), None);
        assert_eq!(segment_number("audit.log.", "audit.log"), None);
        assert_eq!(segment_number("audit.log.1x", "audit.log"), None);
        assert_eq!(segment_number(".audit.log.ab.new", "audit.log"), None);
        assert_eq!(segment_number("audit.logx.1", "audit.log"), None);
    }
}
