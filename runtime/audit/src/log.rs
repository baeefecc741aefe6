//! Appending to the log: one locked, fsynced write per record, with
//! optional keyed mode and size-based rotation (see [`crate::rotate`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

use crate::entry::{self, DecodeError, Decoded, Entry, GENESIS_HASH, MAX_RECORD_SIZE, TagCheck};
use crate::error::AuditError;
use crate::key::ChainKey;
use crate::record::Record;
use crate::rotate;

/// How many bytes are read at a time when looking for the last line.
///
/// Reason: a record is a few hundred bytes, so one chunk almost always holds
/// the whole tail; the loop stops at [`MAX_RECORD_SIZE`] in any case.
const TAIL_CHUNK: usize = 4096;

/// Permissions of a newly created log file: the log names agents, skills and
/// secret paths, which are for the operator only.
#[cfg(unix)]
pub(crate) const LOG_FILE_MODE: u32 = 0o600;

/// How many times in a row an append reopens the log because the path now
/// names another file (another writer rotated it) before giving up.
///
/// Reason: each reopen means some other writer appended and rotated, so the
/// log as a whole made progress; but `flock` is not fair, and with small
/// files and many writers one writer can lose the race dozens of times. The
/// bound only stops an endless loop when something other than agentsec keeps
/// replacing the file.
const MAX_REOPENS: usize = 4096;

/// How an [`AuditLog`] writes: keyed or not, rotated by size or not.
///
/// ```
/// use agentsec_audit::{ChainKey, LogOptions};
///
/// # fn main() -> Result<(), agentsec_audit::KeyError> {
/// let key = ChainKey::from_plaintext(&[7u8; 32])?;
/// let options = LogOptions::new().key(key).max_size(10 * 1024 * 1024);
/// # let _ = options;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct LogOptions {
    key: Option<ChainKey>,
    max_size: Option<u64>,
}

impl LogOptions {
    /// Unkeyed (SHA-256 chain), never rotated: what [`AuditLog::open`] uses.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keyed mode: every entry's tag is `HMAC-SHA256(key, canonical form)`,
    /// written as `"hmac"`. The log must be empty or already keyed with this
    /// key.
    #[must_use]
    pub fn key(mut self, key: ChainKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Rotate when an append would make the file larger than `bytes`: the
    /// full file becomes `<name>.<N>` (N = 1, 2, ...) and a new file continues
    /// the chain. A file always keeps at least one entry, so a single entry
    /// larger than `bytes` still goes in.
    #[must_use]
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }
}

/// Permissions of newly created parent directories.
#[cfg(unix)]
const LOG_DIR_MODE: u32 = 0o700;

/// An open audit log, ready to append records.
///
/// Several `AuditLog`s (in one process or many) may append to the same file:
/// each append holds an exclusive lock on the file while it reads the last
/// record, writes the next one and flushes it, so they form one chain.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    key: Option<ChainKey>,
    max_size: Option<u64>,
}

/// Where an appended record landed in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Appended {
    /// The record's sequence number (1 for the first record of a log).
    pub seq: u64,
    /// The record's tag, lowercase hex: SHA-256 of its canonical form, or
    /// in keyed mode its HMAC-SHA256.
    pub hash: String,
    /// The segment the full log was rotated to before this record was
    /// written (this record is then the first of the new file).
    pub rotated_to: Option<PathBuf>,
}

/// The last record of the log: what the next record chains to.
struct Tail {
    seq: u64,
    hash: String,
    /// File length when the tail was read, to undo a partial write.
    len: u64,
}

impl AuditLog {
    /// Opens the log at `path` for appending, creating the parent directories
    /// (mode 0700 on Unix) and the file (mode 0600 on Unix) if missing.
    ///
    /// Fails fast, before any skill runs: the file must be writable and, if
    /// it is not empty, end with a whole, valid record.
    ///
    /// # Errors
    /// [`AuditError::CreateDir`] or [`AuditError::Open`] if the file cannot
    /// be created or opened for writing, [`AuditError::Lock`] or
    /// [`AuditError::Read`] if it cannot be read, and
    /// [`AuditError::TornTail`], [`AuditError::CorruptTail`] or
    /// [`AuditError::TailTooLarge`] if its last record is damaged.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        Self::open_with(path, LogOptions::new())
    }

    /// [`AuditLog::open`] with a key and/or a rotation size.
    ///
    /// # Errors
    /// As [`AuditLog::open`], and [`AuditError::ModeMismatch`] if the log is
    /// keyed and no key was given or the reverse, [`AuditError::CorruptTail`]
    /// if the last entry's HMAC does not match under the given key (the
    /// wrong key, or an edit).
    pub fn open_with(path: impl AsRef<Path>, options: LogOptions) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dirs(parent).map_err(|source| AuditError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let file = open_file(&path)?;
        let log = Self {
            path,
            file,
            key: options.key,
            max_size: options.max_size,
        };
        let lock = Lock::shared(&log.file, &log.path)?;
        log.read_tail()?;
        lock.release()?;
        Ok(log)
    }

    /// Whether the log is keyed (entries carry `hmac`).
    pub fn is_keyed(&self) -> bool {
        self.key.is_some()
    }

    /// The path the log was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as the next entry of the chain and flushes it to disk
    /// (`fsync`) before returning. Release the secret only after `Ok`.
    ///
    /// Under an exclusive lock: reads the last record (another handle or
    /// process may have appended since), stamps the record with the time,
    /// the next `seq` and the last record's hash, writes the line with one
    /// `write` call and syncs it.
    ///
    /// # Errors
    /// Any [`AuditError`]; then nothing was appended (see
    /// [`AuditError::Sync`] for the one caveat) and the caller must fail
    /// closed.
    pub fn append(&mut self, record: &Record<'_>) -> Result<Appended, AuditError> {
        self.lock_current_file()?;
        let lock = Lock::held(&self.file, &self.path);
        let tail = self.read_tail()?;
        let seq = tail
            .seq
            .checked_add(1)
            .ok_or_else(|| AuditError::SeqExhausted {
                path: self.path.clone(),
            })?;
        let ts = entry::now_timestamp().ok_or(AuditError::Clock)?;
        let entry = Entry::new(record, &ts, seq, &tail.hash);
        let (line, hash) =
            entry::encode(&entry, self.key.as_ref()).map_err(|source| AuditError::Encode {
                path: self.path.clone(),
                source,
            })?;
        if line.len() > MAX_RECORD_SIZE {
            return Err(AuditError::RecordTooLarge {
                path: self.path.clone(),
                len: line.len(),
                limit: MAX_RECORD_SIZE,
            });
        }
        let full = self
            .max_size
            .is_some_and(|max| tail.len > 0 && tail.len.saturating_add(line.len() as u64) > max);
        if full {
            // The new file holds `line` and is in place (and synced) before
            // the old file's lock is released; waiters then reopen the path.
            let (new_file, segment) = rotate::rotate(&self.path, &line)?;
            lock.release()?;
            self.file = new_file;
            return Ok(Appended {
                seq,
                hash,
                rotated_to: Some(segment),
            });
        }
        self.write_line(&line, tail.len)?;
        self.file.sync_data().map_err(|source| AuditError::Sync {
            path: self.path.clone(),
            source,
        })?;
        lock.release()?;
        Ok(Appended {
            seq,
            hash,
            rotated_to: None,
        })
    }

    /// Takes the exclusive lock on the file the path names now. If another
    /// process rotated the log since this handle was opened, the locked file
    /// is no longer at the path: reopen the path and lock again.
    fn lock_current_file(&mut self) -> Result<(), AuditError> {
        for _ in 0..MAX_REOPENS {
            FileExt::lock_exclusive(&self.file).map_err(|source| lock_error(&self.path, source))?;
            if is_at_path(&self.file, &self.path).map_err(|source| AuditError::Read {
                path: self.path.clone(),
                source,
            })? {
                return Ok(());
            }
            FileExt::unlock(&self.file).map_err(|source| lock_error(&self.path, source))?;
            self.file = open_file(&self.path)?;
        }
        Err(AuditError::Open {
            path: self.path.clone(),
            source: io::Error::other(format!(
                "the file was replaced {MAX_REOPENS} times in a row while waiting for its lock"
            )),
        })
    }

    /// Writes `line` with a single `write` call. On failure, cuts the file
    /// back to `len_before` so that no partial record stays behind.
    fn write_line(&self, line: &[u8], len_before: u64) -> Result<(), AuditError> {
        let result = match (&self.file).write(line) {
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
        let _ = self.file.set_len(len_before);
        result.map_err(|source| AuditError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Reads and checks the last record. The caller holds the lock.
    fn read_tail(&self) -> Result<Tail, AuditError> {
        let read_err = |source| AuditError::Read {
            path: self.path.clone(),
            source,
        };
        let len = self.file.metadata().map_err(read_err)?.len();
        if len == 0 {
            return Ok(Tail {
                seq: 0,
                hash: GENESIS_HASH.to_owned(),
                len,
            });
        }
        // `buf` holds the file's bytes from `start` to `len`.
        let mut buf: Vec<u8> = Vec::new();
        let mut start = len;
        let line_start = loop {
            let chunk_len = start.min(TAIL_CHUNK as u64);
            start -= chunk_len;
            let mut chunk = vec![0u8; usize::try_from(chunk_len).unwrap_or(TAIL_CHUNK)];
            read_exact_at(&self.file, &mut chunk, start).map_err(read_err)?;
            chunk.extend_from_slice(&buf);
            buf = chunk;
            if buf.last() != Some(&b'\n') {
                return Err(AuditError::TornTail {
                    path: self.path.clone(),
                });
            }
            let body = &buf[..buf.len() - 1];
            if let Some(i) = body.iter().rposition(|&b| b == b'\n') {
                break i + 1;
            }
            if start == 0 {
                break 0;
            }
            if buf.len() > MAX_RECORD_SIZE {
                return Err(self.tail_too_large());
            }
        };
        let line = &buf[line_start..buf.len() - 1];
        if line.len() + 1 > MAX_RECORD_SIZE {
            return Err(self.tail_too_large());
        }
        let corrupt = |reason: String| AuditError::CorruptTail {
            path: self.path.clone(),
            reason,
        };
        let decoded: Decoded = entry::decode(line).map_err(|e| match e {
            DecodeError::Malformed(reason) => corrupt(reason),
            DecodeError::NonCanonical => corrupt("it is not in canonical form".to_owned()),
        })?;
        match decoded.check(self.key.as_ref()) {
            TagCheck::Valid => {}
            TagCheck::Mismatch if self.key.is_some() => {
                return Err(corrupt(format!(
                    "the hmac of entry seq {} does not match: the key is not this log's key, or the entry was edited",
                    decoded.entry.seq
                )));
            }
            TagCheck::Mismatch => {
                return Err(corrupt(format!(
                    "entry seq {} was edited: its hash does not match its content",
                    decoded.entry.seq
                )));
            }
            TagCheck::KeyRequired => {
                return Err(AuditError::ModeMismatch {
                    path: self.path.clone(),
                    log_keyed: true,
                });
            }
            TagCheck::Unkeyed => {
                return Err(AuditError::ModeMismatch {
                    path: self.path.clone(),
                    log_keyed: false,
                });
            }
        }
        Ok(Tail {
            seq: decoded.entry.seq,
            hash: decoded.stored_hash,
            len,
        })
    }

    fn tail_too_large(&self) -> AuditError {
        AuditError::TailTooLarge {
            path: self.path.clone(),
            limit: MAX_RECORD_SIZE,
        }
    }
}

/// Opens (creating if missing, mode 0600 on Unix) the log file for reading
/// and appending.
fn open_file(path: &Path) -> Result<File, AuditError> {
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

/// Whether `path` still names the open `file` (same device and inode). A
/// missing path counts as "no": reopening creates it.
#[cfg(unix)]
fn is_at_path(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Without inode numbers, assume the path still names the file (rotation
/// by other processes is then not detected; see the crate docs).
#[cfg(not(unix))]
fn is_at_path(_file: &File, _path: &Path) -> io::Result<bool> {
    Ok(true)
}

/// Creates `dir` and its parents, private to the user on Unix.
fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(LOG_DIR_MODE);
    }
    builder.create(dir)
}

/// Reads exactly `buf.len()` bytes at `offset`. Appends ignore the file
/// position, so moving it is harmless.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut reader = file;
    reader.seek(SeekFrom::Start(offset))?;
    reader.read_exact(buf)
}

/// A held `flock`-style lock, released on drop (errors ignored there) or by
/// [`Lock::release`] (errors reported).
struct Lock<'f> {
    file: &'f File,
    path: &'f Path,
    held: bool,
}

impl<'f> Lock<'f> {
    /// Takes over a lock the caller already holds on `file`.
    fn held(file: &'f File, path: &'f Path) -> Self {
        Self {
            file,
            path,
            held: true,
        }
    }

    fn shared(file: &'f File, path: &'f Path) -> Result<Self, AuditError> {
        // Fully qualified (here and below): `File` has inherent lock methods
        // of its own since Rust 1.89; this crate uses fs4's.
        FileExt::lock_shared(file).map_err(|source| lock_error(path, source))?;
        Ok(Self {
            file,
            path,
            held: true,
        })
    }

    fn release(mut self) -> Result<(), AuditError> {
        self.held = false;
        FileExt::unlock(self.file).map_err(|source| lock_error(self.path, source))
    }
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        if self.held {
            // Nothing to report to: an error path is already being returned,
            // and closing the file would release the lock in any case.
            let _ = FileExt::unlock(self.file);
        }
    }
}

fn lock_error(path: &Path, source: io::Error) -> AuditError {
    AuditError::Lock {
        path: path.to_path_buf(),
        source,
    }
}
