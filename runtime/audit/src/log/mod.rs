//! Appending to the log: one locked write per record, made durable per record
//! ([`AuditLog::append`]) or in one `fsync` for a batch
//! ([`AuditLog::append_unsynced`] then [`AuditLog::sync`]), with optional
//! keyed mode and size-based rotation (see [`crate::rotate`]).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use crate::entry::{self, Entry, MAX_RECORD_SIZE};
use crate::error::AuditError;
use crate::key::ChainKey;
use crate::record::Record;
use crate::rotate;

mod durability;
mod file;
mod lock;
mod tail;
#[cfg(feature = "sinks")]
pub(crate) use tail::last_entry;
#[cfg(test)]
mod tests;

use durability::Durability;
use file::{LogName, create_dirs, file_len, open_file, write_line};
use lock::{FileLock, lock_error};

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

/// How long a handle trusts, without looking at the path, that the file it
/// holds is still the log.
///
/// Reason: agentsec's own writers always grow a file before rotating it, so
/// an unchanged length proves no agentsec writer rotated it; but an operator
/// or an external tool may rename the log (logrotate's `create` mode). A
/// long-lived handle notices that within this interval; a run of
/// `agentsec-run` lasts about as long, and the check it saves costs about a
/// microsecond per record.
const PATH_RECHECK_INTERVAL: Duration = Duration::from_secs(1);

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
    after_append: Option<std::sync::Arc<dyn AppendHook>>,
}

/// Called by [`AuditLog::append`] (and [`AuditLog::append_unsynced`]) with
/// every record it wrote, after the line is in the file and the lock is
/// released, before the append returns: e.g. to ship it to a sink and wait
/// for the acknowledgement (`ship: sync`).
pub trait AppendHook: std::fmt::Debug + Send + Sync {
    /// `line` is the record exactly as written, without its `\n`. An `Err`
    /// (a short reason, never a value) makes the append fail with
    /// [`AuditError::AfterAppend`]: the record is in the local log, but the
    /// caller must fail closed as for any failed append.
    ///
    /// # Errors
    /// Whatever the hook could not do.
    fn appended(&self, log: &Path, seq: u64, hash: &str, line: &str) -> Result<(), String>;
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

    /// Rotate once an append makes the file `bytes` long or longer: the
    /// full file becomes `<name>.<N>` (N = 1, 2, ...) and a new, empty file
    /// continues the chain. A segment is at most `bytes` plus one record
    /// (the one that filled it) long.
    #[must_use]
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// Calls `hook` after every append (see [`AppendHook`]).
    #[must_use]
    pub fn after_append(mut self, hook: std::sync::Arc<dyn AppendHook>) -> Self {
        self.after_append = Some(hook);
        self
    }
}

/// An open audit log, ready to append records.
///
/// Several `AuditLog`s (in one process or many) may append to the same file:
/// each append holds an exclusive lock on the file while it learns the last
/// record and writes the next one, so they form one chain.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// The log's directory and file name, to check cheaply (one path
    /// component, no walk from the root) that the path still names `file`.
    name: LogName,
    file: File,
    key: Option<ChainKey>,
    max_size: Option<u64>,
    after_append: Option<std::sync::Arc<dyn AppendHook>>,
    /// The chain's tail as this handle last read or wrote it, with the file
    /// length at that moment. Valid while the file at the path is the same
    /// and still that long: writers only ever append (a longer file means
    /// another writer added records; a rotation puts another file at the
    /// path), so the tail is re-read only when either changed.
    known_tail: Option<Tail>,
    /// When the path was last seen to name `file`.
    checked_at: Instant,
    /// Reused for every line and timestamp, so an append does not allocate
    /// them.
    line: Vec<u8>,
    ts: Vec<u8>,
    /// What still needs an `fsync`, and whether one failed.
    durability: Durability,
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
    /// This record filled the file, which was then rotated to this segment
    /// (the record is the segment's last; the next one starts a new file).
    pub rotated_to: Option<PathBuf>,
}

/// The last record of the log: what the next record chains to.
#[derive(Debug)]
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
        let name = LogName::of(&path).map_err(|source| AuditError::Open {
            path: path.clone(),
            source,
        })?;
        let mut log = Self {
            path,
            name,
            file,
            key: options.key,
            max_size: options.max_size,
            after_append: options.after_append,
            known_tail: None,
            checked_at: Instant::now(),
            line: Vec::new(),
            ts: Vec::new(),
            durability: Durability::default(),
        };
        let lock = FileLock::shared(&log.file, &log.path)?;
        let tail = log.read_tail()?;
        // Remembered only if the file is still the log: a writer may have
        // rotated it between our open and our lock, and a rotated file must
        // never look current (see `lock_and_learn_tail`). While we hold the
        // lock nobody can rotate it.
        let current = log
            .name
            .names(&log.file)
            .map_err(|source| AuditError::Read {
                path: log.path.clone(),
                source,
            })?;
        lock.release()?;
        log.known_tail = current.then_some(tail);
        log.checked_at = Instant::now();
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
    /// Under an exclusive lock: learns the last record (another handle or
    /// process may have appended since), stamps the record with the time,
    /// the next `seq` and the last record's hash, writes the line with one
    /// `write` call and syncs it (with every earlier unsynced record).
    ///
    /// # Errors
    /// Any [`AuditError`]; then nothing was appended (see
    /// [`AuditError::Sync`] for the one caveat) and the caller must fail
    /// closed.
    pub fn append(&mut self, record: &Record<'_>) -> Result<Appended, AuditError> {
        let appended = self.append_unsynced(record)?;
        self.sync()?;
        Ok(appended)
    }

    /// Appends `record` like [`AuditLog::append`] but does not `fsync`: when
    /// this returns `Ok`, the record is in the file (every reader and writer
    /// sees it, and it survives this process being killed), but a power loss
    /// before the next [`AuditLog::sync`] could lose it.
    ///
    /// This is how a run records its requests: each record is written before
    /// the value is released into the sandbox, and one `sync` makes them all
    /// durable before anything the skill produced leaves the sandbox (see
    /// `agentsec-host`). One `fsync` costs more than a hundred unsynced
    /// appends; see `benches/README.md`.
    ///
    /// # Errors
    /// As [`AuditLog::append`]. [`AuditError::Sync`] comes only from a
    /// rotation (which syncs the full file) or from syncing what this handle
    /// wrote to a file another writer rotated away; after any failed sync
    /// every call fails (see [`AuditLog::sync`]).
    pub fn append_unsynced(&mut self, record: &Record<'_>) -> Result<Appended, AuditError> {
        let appended = self.append_local(record)?;
        if let Some(hook) = &self.after_append {
            let line = std::str::from_utf8(&self.line).unwrap_or("");
            let line = line.strip_suffix('\n').unwrap_or(line);
            hook.appended(&self.path, appended.seq, &appended.hash, line)
                .map_err(|reason| AuditError::AfterAppend {
                    path: self.path.clone(),
                    seq: appended.seq,
                    reason,
                })?;
        }
        Ok(appended)
    }

    fn append_local(&mut self, record: &Record<'_>) -> Result<Appended, AuditError> {
        self.durability.refuse_if_failed(&self.path)?;
        let tail = self.lock_and_learn_tail()?;
        let lock = FileLock::held(&self.file, &self.path);
        let (seq, hash) = encode_next_entry(
            record,
            &tail,
            self.key.as_ref(),
            &mut self.ts,
            &mut self.line,
            &self.path,
        )?;
        write_line(&self.file, &self.path, &self.line, tail.len)?;
        self.durability.unsynced = true;
        let len = tail.len + self.line.len() as u64;
        self.known_tail = Some(Tail {
            seq,
            hash: hash.clone(),
            len,
        });
        // Only the file at the path is rotated: if the log was renamed by
        // something else since this handle last looked (or the check itself
        // fails), leave it alone; the next append tries again.
        let rotate_now = self.max_size.is_some_and(|max| len >= max)
            && self.name.names(&self.file).unwrap_or(false);
        if !rotate_now {
            lock.release()?;
            return Ok(Appended {
                seq,
                hash,
                rotated_to: None,
            });
        }
        // The file is full: it becomes a segment, durable with this record,
        // and an empty file takes its place. The old file grew (by this
        // record) before it was rotated: that is how every other handle
        // notices (see `lock_and_learn_tail`). Until the rotation is done,
        // this handle must not trust its remembered tail either.
        self.known_tail = None;
        self.durability.sync(&self.file, &self.path)?;
        let rotated = rotate::rotate(&self.path, &self.file)?;
        // The empty file is at the path now: switch to it whatever happens
        // next, or this handle would go on appending to the segment.
        let released = lock.release();
        self.file = rotated.file;
        self.checked_at = Instant::now();
        self.known_tail = Some(Tail {
            seq,
            hash: hash.clone(),
            len: 0,
        });
        released?;
        rotated.dir_synced.map_err(|source| AuditError::Sync {
            path: self.path.clone(),
            source,
        })?;
        Ok(Appended {
            seq,
            hash,
            rotated_to: Some(rotated.segment),
        })
    }

    /// Makes every record this handle wrote durable (`fsync`). Call it
    /// before anything that depended on those records leaves your control;
    /// a no-op when nothing was written since the last sync.
    ///
    /// # Errors
    /// [`AuditError::Sync`]: the records are in the file but may not be on
    /// disk; treat it as a failed append. The handle is then unusable:
    /// Linux reports a writeback error only once, so a later sync could
    /// wrongly succeed; every later call fails until the log is opened
    /// again.
    pub fn sync(&mut self) -> Result<(), AuditError> {
        self.sync_file()
    }

    fn sync_file(&mut self) -> Result<(), AuditError> {
        self.durability.sync(&self.file, &self.path)
    }

    /// Takes the exclusive lock on the file the log's name names now and
    /// returns the chain's tail. On `Ok` the caller holds the lock.
    ///
    /// Fast path: the file is as long as this handle left it, so nobody
    /// appended or rotated since (a rotation always appends to the old file
    /// first) and the remembered tail is the tail. Otherwise: if another
    /// writer rotated the log, the locked file is no longer at the path:
    /// make what this handle wrote to it durable, reopen the path and lock
    /// again; then read the tail from the file.
    fn lock_and_learn_tail(&mut self) -> Result<Tail, AuditError> {
        let read_err = |path: &Path, source| AuditError::Read {
            path: path.to_path_buf(),
            source,
        };
        for _ in 0..MAX_REOPENS {
            FileExt::lock_exclusive(&self.file).map_err(|source| lock_error(&self.path, source))?;
            let len = match file_len(&self.file) {
                Ok(len) => len,
                Err(source) => {
                    let _ = FileExt::unlock(&self.file);
                    return Err(read_err(&self.path, source));
                }
            };
            if let Some(tail) = self.known_tail.take()
                && tail.len == len
                && self.checked_at.elapsed() < PATH_RECHECK_INTERVAL
            {
                return Ok(tail);
            }
            match self.name.names(&self.file) {
                Ok(true) => {
                    self.checked_at = Instant::now();
                    return self.read_tail().inspect_err(|_| {
                        let _ = FileExt::unlock(&self.file);
                    });
                }
                Ok(false) => {}
                Err(source) => {
                    let _ = FileExt::unlock(&self.file);
                    return Err(read_err(&self.path, source));
                }
            }
            let synced = self.sync_file();
            FileExt::unlock(&self.file).map_err(|source| lock_error(&self.path, source))?;
            synced?;
            self.file = open_file(&self.path)?;
        }
        Err(AuditError::Open {
            path: self.path.clone(),
            source: io::Error::other(format!(
                "the file was replaced {MAX_REOPENS} times in a row while waiting for its lock"
            )),
        })
    }
}

impl Drop for AuditLog {
    /// Records written with [`AuditLog::append_unsynced`] and never synced
    /// are synced now (best effort: there is no one to report to; they are
    /// in the file either way).
    fn drop(&mut self) {
        let _ = self.sync_file();
    }
}

/// Encodes `record` as the entry after `tail` into `line` (stamped with
/// the time, formatted in `ts_buf`): returns its `seq` and its tag. The
/// first line of a file carries the chain marker.
fn encode_next_entry(
    record: &Record<'_>,
    tail: &Tail,
    key: Option<&ChainKey>,
    ts_buf: &mut Vec<u8>,
    line: &mut Vec<u8>,
    path: &Path,
) -> Result<(u64, String), AuditError> {
    let seq = tail
        .seq
        .checked_add(1)
        .ok_or_else(|| AuditError::SeqExhausted {
            path: path.to_path_buf(),
        })?;
    let ts = entry::now_timestamp_into(ts_buf).ok_or(AuditError::Clock)?;
    let mut entry = Entry::new(record, ts, seq, &tail.hash);
    if tail.len == 0 {
        // The first line of this file: say what kind of chain it is.
        entry.chain = Some(entry::ChainInfo::for_key(key));
    }
    let hash = entry::encode_into(&entry, key, line).map_err(|source| AuditError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    if line.len() > MAX_RECORD_SIZE {
        return Err(AuditError::RecordTooLarge {
            path: path.to_path_buf(),
            len: line.len(),
            limit: MAX_RECORD_SIZE,
        });
    }
    Ok((seq, hash))
}
