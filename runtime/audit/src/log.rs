//! Appending to the log: one locked write per record, made durable per record
//! ([`AuditLog::append`]) or in one `fsync` for a batch
//! ([`AuditLog::append_unsynced`] then [`AuditLog::sync`]), with optional
//! keyed mode and size-based rotation (see [`crate::rotate`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
}

/// Permissions of newly created parent directories.
#[cfg(unix)]
const LOG_DIR_MODE: u32 = 0o700;

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
    place: Place,
    file: File,
    key: Option<ChainKey>,
    max_size: Option<u64>,
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

/// The `fsync` state of a handle.
#[derive(Debug, Default)]
struct Durability {
    /// Records were written since the last `fsync`.
    unsynced: bool,
    /// An `fsync` failed. Linux reports a writeback error once per open
    /// file and a retry then "succeeds" although the data may be lost, so
    /// after one failure this handle refuses to append or sync again.
    failed: bool,
}

impl Durability {
    /// The error every call returns once an `fsync` of this handle failed.
    fn refuse_if_failed(&self, path: &Path) -> Result<(), AuditError> {
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
    fn sync(&mut self, file: &File, path: &Path) -> Result<(), AuditError> {
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
        let place = Place::of(&path).map_err(|source| AuditError::Open {
            path: path.clone(),
            source,
        })?;
        let mut log = Self {
            path,
            place,
            file,
            key: options.key,
            max_size: options.max_size,
            known_tail: None,
            checked_at: Instant::now(),
            line: Vec::new(),
            ts: Vec::new(),
            durability: Durability::default(),
        };
        let lock = Lock::shared(&log.file, &log.path)?;
        let tail = log.read_tail()?;
        // Remembered only if the file is still the log: a writer may have
        // rotated it between our open and our lock, and a rotated file must
        // never look current (see `lock_and_learn_tail`). While we hold the
        // lock nobody can rotate it.
        let current = log
            .place
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
        self.durability.refuse_if_failed(&self.path)?;
        let tail = self.lock_and_learn_tail()?;
        let lock = Lock::held(&self.file, &self.path);
        let seq = tail
            .seq
            .checked_add(1)
            .ok_or_else(|| AuditError::SeqExhausted {
                path: self.path.clone(),
            })?;
        let ts = entry::now_timestamp_into(&mut self.ts).ok_or(AuditError::Clock)?;
        let mut entry = Entry::new(record, ts, seq, &tail.hash);
        if tail.len == 0 {
            // The first line of this file: say what kind of chain it is.
            entry.chain = Some(entry::ChainInfo::for_key(self.key.as_ref()));
        }
        let hash =
            entry::encode_into(&entry, self.key.as_ref(), &mut self.line).map_err(|source| {
                AuditError::Encode {
                    path: self.path.clone(),
                    source,
                }
            })?;
        if self.line.len() > MAX_RECORD_SIZE {
            return Err(AuditError::RecordTooLarge {
                path: self.path.clone(),
                len: self.line.len(),
                limit: MAX_RECORD_SIZE,
            });
        }
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
            && self.place.names(&self.file).unwrap_or(false);
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
            match self.place.names(&self.file) {
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

    /// Reads and checks the last record. The caller holds the lock. An
    /// empty file continues the chain of the newest rotated segment, if
    /// there is one (the file that replaced a full log starts empty).
    fn read_tail(&self) -> Result<Tail, AuditError> {
        let read_err = |source| AuditError::Read {
            path: self.path.clone(),
            source,
        };
        let len = self.file.metadata().map_err(read_err)?.len();
        if len > 0 {
            return self.read_tail_of(&self.file, &self.path, len);
        }
        let segment = rotate::newest_segment(&self.path).map_err(read_err)?;
        let Some(segment) = segment else {
            return Ok(Tail {
                seq: 0,
                hash: GENESIS_HASH.to_owned(),
                len,
            });
        };
        let file = File::open(&segment).map_err(|source| AuditError::Read {
            path: segment.clone(),
            source,
        })?;
        let segment_len = file
            .metadata()
            .map_err(|source| AuditError::Read {
                path: segment.clone(),
                source,
            })?
            .len();
        let tail = self.read_tail_of(&file, &segment, segment_len)?;
        Ok(Tail { len, ..tail })
    }

    /// The last record of `file` (named `path` in errors), `len` bytes long.
    fn read_tail_of(&self, file: &File, path: &Path, len: u64) -> Result<Tail, AuditError> {
        let read_err = |source| AuditError::Read {
            path: path.to_path_buf(),
            source,
        };
        if len == 0 {
            return Err(AuditError::CorruptTail {
                path: path.to_path_buf(),
                reason: "the rotated segment is empty".to_owned(),
            });
        }
        // `buf` holds the file's bytes from `start` to `len`.
        let mut buf: Vec<u8> = Vec::new();
        let mut start = len;
        let line_start = loop {
            let chunk_len = start.min(TAIL_CHUNK as u64);
            start -= chunk_len;
            let mut chunk = vec![0u8; usize::try_from(chunk_len).unwrap_or(TAIL_CHUNK)];
            read_exact_at(file, &mut chunk, start).map_err(read_err)?;
            chunk.extend_from_slice(&buf);
            buf = chunk;
            if buf.last() != Some(&b'\n') {
                return Err(AuditError::TornTail {
                    path: path.to_path_buf(),
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
                return Err(tail_too_large(path));
            }
        };
        let line = &buf[line_start..buf.len() - 1];
        if line.len() + 1 > MAX_RECORD_SIZE {
            return Err(tail_too_large(path));
        }
        let corrupt = |reason: String| AuditError::CorruptTail {
            path: path.to_path_buf(),
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
                    path: path.to_path_buf(),
                    log_keyed: true,
                });
            }
            TagCheck::Unkeyed => {
                return Err(AuditError::ModeMismatch {
                    path: path.to_path_buf(),
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
}

impl Drop for AuditLog {
    /// Records written with [`AuditLog::append_unsynced`] and never synced
    /// are synced now (best effort: there is no one to report to; they are
    /// in the file either way).
    fn drop(&mut self) {
        let _ = self.sync_file();
    }
}

/// `fdatasync`: what was written to `file` reaches the disk.
fn sync_data(file: &File) -> io::Result<()> {
    #[cfg(test)]
    if tests::FAIL_FILE_SYNC.with(std::cell::Cell::get) {
        return Err(io::Error::other("injected fsync failure"));
    }
    file.sync_data()
}

/// The file's length: one `fstat` (std's `metadata` asks `statx` for more).
#[cfg(unix)]
fn file_len(file: &File) -> io::Result<u64> {
    let stat = rustix::fs::fstat(file)?;
    Ok(u64::try_from(stat.st_size).unwrap_or(0))
}

#[cfg(not(unix))]
fn file_len(file: &File) -> io::Result<u64> {
    Ok(file.metadata()?.len())
}

fn tail_too_large(path: &Path) -> AuditError {
    AuditError::TailTooLarge {
        path: path.to_path_buf(),
        limit: MAX_RECORD_SIZE,
    }
}

/// Writes `line` with a single `write` call. On failure, cuts the file back
/// to `len_before` so that no partial record stays behind.
fn write_line(file: &File, path: &Path, line: &[u8], len_before: u64) -> Result<(), AuditError> {
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

/// Where the log lives: its directory (held open, so a later `chdir` or a
/// long path does not matter) and its file name.
#[cfg(unix)]
#[derive(Debug)]
struct Place {
    dir: std::os::fd::OwnedFd,
    name: std::ffi::OsString,
}

#[cfg(unix)]
impl Place {
    fn of(path: &Path) -> io::Result<Place> {
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
        Ok(Place {
            dir,
            name: name.to_owned(),
        })
    }

    /// Whether the log's name still names the open `file` (same device and
    /// inode). A missing name counts as "no": reopening creates it.
    fn names(&self, file: &File) -> io::Result<bool> {
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
struct Place;

#[cfg(not(unix))]
impl Place {
    fn of(_path: &Path) -> io::Result<Place> {
        Ok(Place)
    }

    fn names(&self, _file: &File) -> io::Result<bool> {
        Ok(true)
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::{AccessType, Decision, RunContext};

    thread_local! {
        /// Makes `sync_data` fail on this thread (fault injection for tests).
        pub(crate) static FAIL_FILE_SYNC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    fn record(run: &RunContext) -> Record<'_> {
        Record::new(run, "db.password", AccessType::Read, Decision::Allow)
    }

    fn run() -> RunContext {
        RunContext::new("ops/a", "skill", "ab".repeat(32), "cd".repeat(16))
    }

    /// The rename happened but making it durable failed: the handle must
    /// move to the new file anyway, or it would fork the chain by appending
    /// to the segment.
    #[test]
    fn a_rotation_whose_directory_sync_fails_still_moves_the_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let options = || LogOptions::new().max_size(1200);
        let run = run();
        let mut a = AuditLog::open_with(&path, options()).unwrap();
        rotate::tests::FAIL_DIR_SYNC.with(|f| f.set(true));
        let err = loop {
            if let Err(e) = a.append(&record(&run)) {
                break e;
            }
        };
        rotate::tests::FAIL_DIR_SYNC.with(|f| f.set(false));
        assert!(matches!(err, AuditError::Sync { .. }), "{err:?}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "rotated");

        let mut b = AuditLog::open_with(&path, options()).unwrap();
        let by_b = b.append(&record(&run)).unwrap();
        let by_a = a.append(&record(&run)).unwrap();
        assert_eq!(by_a.seq, by_b.seq + 1);
        let files = crate::log_files(&path).unwrap();
        assert_eq!(files.len(), 2);
        let report = crate::verify(&files).unwrap();
        assert_eq!(report.head_hash, by_a.hash);
    }

    /// Linux reports a writeback error once; a retried fsync "succeeds". A
    /// handle whose fsync failed refuses everything after.
    #[test]
    fn a_failed_fsync_poisons_the_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let run = run();
        let mut log = AuditLog::open(&path).unwrap();
        log.append_unsynced(&record(&run)).unwrap();
        FAIL_FILE_SYNC.with(|f| f.set(true));
        assert!(matches!(log.sync(), Err(AuditError::Sync { .. })));
        FAIL_FILE_SYNC.with(|f| f.set(false));
        let again = log.sync().unwrap_err();
        assert!(again.to_string().contains("an earlier fsync"), "{again}");
        assert!(matches!(
            log.append_unsynced(&record(&run)),
            Err(AuditError::Sync { .. })
        ));
        assert!(matches!(
            log.append(&record(&run)),
            Err(AuditError::Sync { .. })
        ));
        // A new handle starts clean, and the chain is intact.
        let mut fresh = AuditLog::open(&path).unwrap();
        assert_eq!(fresh.append(&record(&run)).unwrap().seq, 2);
        assert_eq!(crate::verify(&[&path]).unwrap().entries, 2);
    }
}
