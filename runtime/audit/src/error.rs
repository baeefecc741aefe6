//! Errors of writing ([`AuditError`]) and verifying ([`VerifyError`]) a log.
//!
//! Messages name the file (and line or `seq`) and what to do. They never
//! quote the content of a record.

use std::io;
use std::path::{Path, PathBuf};

use crate::entry::MAX_RECORD_SIZE;

/// Why a record could not be appended (or the log opened).
///
/// Every variant means the record was NOT appended; the host must fail
/// closed: the secret is not released.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The record was written to the local log, but the hook that must see
    /// every record ([`crate::AppendHook`], e.g. `ship: sync` waiting for the
    /// sinks) failed: fail closed as for any failed append.
    #[error(
        "audit record seq {seq} is in {} but was not acknowledged: {reason}",
        path.display()
    )]
    AfterAppend {
        /// The log file.
        path: PathBuf,
        /// The record's seq.
        seq: u64,
        /// What failed.
        reason: String,
    },

    /// The directory for the log could not be created.
    #[error(
        "cannot create the audit log directory {}: {source}; create it or choose another --audit-log path",
        path.display()
    )]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// The log file could not be opened (or created) for appending.
    #[error(
        "cannot open the audit log {} for appending: {source}; check that it is a file this user may write, or choose another --audit-log path",
        path.display()
    )]
    Open {
        /// The log file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// The exclusive (or shared) lock on the log could not be taken or released.
    #[error(
        "cannot lock the audit log {}: {source}; the file system must support file locks (flock)",
        path.display()
    )]
    Lock {
        /// The log file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// The end of the log could not be read.
    #[error("cannot read the end of the audit log {}: {source}", path.display())]
    Read {
        /// The log file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// The log does not end with a newline: its last record was cut short
    /// (a crash or a full disk during a write) or the file was edited.
    #[error(
        "the audit log {} ends with an incomplete record (no final newline); run `agentsec audit verify` on it, then move it aside and start a new log",
        path.display()
    )]
    TornTail {
        /// The log file.
        path: PathBuf,
    },

    /// The last line of the log is not a valid record, or its hash does not
    /// match its content.
    #[error(
        "the last record of the audit log {} is corrupt: {reason}; run `agentsec audit verify` on it, then move it aside and start a new log",
        path.display()
    )]
    CorruptTail {
        /// The log file.
        path: PathBuf,
        /// What is wrong, without quoting the content.
        reason: String,
    },

    /// The last line of the log is longer than [`MAX_RECORD_SIZE`], so it
    /// was not written by this crate.
    #[error(
        "the last line of the audit log {} is longer than {limit} bytes, so it is not an audit record; run `agentsec audit verify` on it, then move it aside and start a new log",
        path.display()
    )]
    TailTooLarge {
        /// The log file.
        path: PathBuf,
        /// The limit, [`MAX_RECORD_SIZE`].
        limit: usize,
    },

    /// The record would be longer than [`MAX_RECORD_SIZE`]: an id, path or
    /// detail is unreasonably long.
    #[error(
        "an audit record for {} would be {len} bytes, more than the {limit}-byte limit; shorten the agent id, skill name, secret path or detail",
        path.display()
    )]
    RecordTooLarge {
        /// The log file.
        path: PathBuf,
        /// The length the line would have had.
        len: usize,
        /// The limit, [`MAX_RECORD_SIZE`].
        limit: usize,
    },

    /// The last record has the largest possible `seq`; the chain cannot grow.
    #[error("the audit log {} has reached the largest sequence number; start a new log", path.display())]
    SeqExhausted {
        /// The log file.
        path: PathBuf,
    },

    /// The system clock is outside the years RFC 3339 can express.
    #[error("the system clock is outside the years 0000-9999; fix the clock")]
    Clock,

    /// The record could not be encoded as JSON.
    #[error("cannot encode an audit record for {}: {source}", path.display())]
    Encode {
        /// The log file.
        path: PathBuf,
        /// What serde_json said.
        source: serde_json::Error,
    },

    /// Writing the record failed (for example the disk is full, `ENOSPC`),
    /// or wrote only part of it. Any partial record is removed again when
    /// the file allows it; otherwise the next append reports
    /// [`AuditError::TornTail`].
    #[error(
        "cannot write to the audit log {}: {source}; free space or fix permissions, then retry",
        path.display()
    )]
    Write {
        /// The log file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// Flushing the record to disk (`fsync`) failed. The record may or may
    /// not be in the file: the log then over-reports (a record for a release
    /// that did not happen), never under-reports.
    #[error("cannot flush the audit log {} to disk: {source}; check the disk", path.display())]
    Sync {
        /// The log file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// The log's mode does not match the writer's: a keyed log (`hmac`
    /// entries) opened without a key, or an unkeyed log (`hash` entries)
    /// opened with one. Mixing modes in one file would let someone without
    /// the key extend or rewrite the chain.
    #[error(
        "the audit log {} is {}; {}",
        path.display(),
        if *log_keyed { "keyed (its entries carry `hmac`)" } else { "not keyed (its entries carry `hash`)" },
        if *log_keyed { "pass its key with --audit-key FILE (or `audit_key:` in agentsec.yaml)" } else { "move it aside to start a keyed log, or run without --audit-key" }
    )]
    ModeMismatch {
        /// The log file.
        path: PathBuf,
        /// Whether the log on disk is keyed.
        log_keyed: bool,
    },

    /// Size-based rotation failed: the full file could not be linked to its
    /// segment name, or the new file could not be created or moved into
    /// place. The record that filled the file *was* appended (and synced);
    /// the log was not rotated, and the next append tries again. The caller
    /// still fails closed: the log then over-reports (a record for a release
    /// that did not happen), never under-reports.
    #[error(
        "cannot rotate the audit log {}: {source}; check the directory's permissions and free space",
        path.display()
    )]
    Rotate {
        /// The log file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// The operating system could not provide random bytes for a run id.
    #[error("cannot get random bytes from the operating system for a run id: {source}")]
    Random {
        /// What getrandom said.
        source: getrandom::Error,
    },
}

/// The first problem [`verify`](crate::verify) found in a chain.
///
/// `line` is 1-based within `path`; `seq` is the sequence number written in
/// the offending entry; `expected_seq` is the one that should have been there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A log file could not be opened or read.
    #[error("cannot read the audit log {}: {source}", path.display())]
    Io {
        /// The log file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },

    /// The last line has no final newline: it was cut short (torn write or
    /// truncation).
    #[error(
        "{}:{line}: torn entry (no final newline) where seq {expected_seq} was expected; the line was cut short",
        path.display()
    )]
    Torn {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` the line should have had.
        expected_seq: u64,
    },

    /// A line is longer than [`MAX_RECORD_SIZE`].
    #[error(
        "{}:{line}: line longer than {limit} bytes where seq {expected_seq} was expected; it is not an audit entry",
        path.display(),
        limit = MAX_RECORD_SIZE
    )]
    TooLong {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` the line should have had.
        expected_seq: u64,
    },

    /// A line is not an audit entry (cut, garbled, or not JSON).
    #[error(
        "{}:{line}: not an audit entry where seq {expected_seq} was expected: {reason}",
        path.display()
    )]
    Malformed {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` the line should have had.
        expected_seq: u64,
        /// What is wrong, without quoting the content.
        reason: String,
    },

    /// A line is a valid entry but not in canonical form (spacing, key order
    /// or escaping changed), so it was rewritten by something else.
    #[error(
        "{}:{line}: entry where seq {expected_seq} was expected is not in canonical form; it was rewritten",
        path.display()
    )]
    NonCanonical {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` the line should have had.
        expected_seq: u64,
    },

    /// An entry's hash (or, keyed, its HMAC) does not match its content: it
    /// was edited (or, keyed, the key is not the log's key).
    #[error(
        "{}:{line}: entry seq {seq} was edited: its {} does not match its content{}",
        path.display(),
        if *keyed { "hmac" } else { "hash" },
        if *keyed { " (or --key is not this log's key)" } else { "" }
    )]
    Edited {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` written in the entry.
        seq: u64,
        /// Whether the entry is keyed (`hmac`).
        keyed: bool,
    },

    /// A keyed entry (`hmac`) was found but no key was given, so it cannot
    /// be checked.
    #[error(
        "{}:{line}: entry seq {seq} is keyed (`hmac`); pass the log's key with --key FILE to verify it",
        path.display()
    )]
    KeyRequired {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` written in the entry.
        seq: u64,
    },

    /// A key was given but an entry is unkeyed (`hash`): anyone can compute
    /// such an entry, so in a keyed log it is a forgery (or the wrong log).
    #[error(
        "{}:{line}: entry seq {seq} is not keyed (it carries `hash`, not `hmac`), but a key was given; a keyed log has only `hmac` entries, so it was forged or this is not a keyed log",
        path.display()
    )]
    Unkeyed {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` written in the entry.
        seq: u64,
    },

    /// The log's chain marker (the `chain` of a file's first entry) and its
    /// entries disagree: a keyed log rewritten as an unkeyed chain, markers
    /// that change between segments, a marker missing after an earlier one,
    /// or one in the middle of a file.
    #[error(
        "{}:{line}: entry seq {seq}: {reason}; the log was rewritten by someone without its key (a downgrade), or files of different logs were mixed",
        path.display()
    )]
    Downgraded {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` written in the entry.
        seq: u64,
        /// What disagrees.
        reason: String,
    },

    /// The log says it was started with another key than the one given.
    #[error(
        "{}:{line}: entry seq {seq}: the log was started with the key whose id is {log_key_id}, but the given key's id is {given_key_id}; pass this log's key",
        path.display()
    )]
    WrongKey {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` written in the entry.
        seq: u64,
        /// The key id in the log's marker.
        log_key_id: String,
        /// The given key's id.
        given_key_id: String,
    },

    /// The chain is intact but the expected head hash is none of its
    /// entries' hashes: entries were removed from the end (or it is another
    /// log).
    #[error(
        "the chain is intact up to seq {entries} (head {head}), but the expected head {expected} is not in it: entries were removed from the end of the log (truncated), or this is a different log"
    )]
    HeadNotFound {
        /// The head hash that was expected.
        expected: String,
        /// Entries in the chain as found.
        entries: u64,
        /// The chain's actual head hash.
        head: String,
    },

    /// Entries are missing: `seq` jumps from `missing_seq - 1` to `seq` and
    /// `missing_seq` appears nowhere later.
    #[error(
        "{}:{line}: entries deleted: expected seq {missing_seq}, found seq {seq}",
        path.display()
    )]
    Deleted {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The first missing `seq`.
        missing_seq: u64,
        /// The `seq` found instead.
        seq: u64,
    },

    /// Entries are out of order: `seq` appears where `expected_seq` should
    /// be, and `expected_seq` appears later.
    #[error(
        "{}:{line}: entries reordered: found seq {seq} where seq {expected_seq} was expected (it comes later)",
        path.display()
    )]
    Reordered {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` found.
        seq: u64,
        /// The `seq` that should have been there.
        expected_seq: u64,
    },

    /// An entry repeats or goes back to an earlier `seq`: it was inserted
    /// (a copy, or a forged entry chained to the one before).
    #[error(
        "{}:{line}: entry inserted: seq {seq} appears again where seq {expected_seq} was expected",
        path.display()
    )]
    Inserted {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` found.
        seq: u64,
        /// The `seq` that should have been there.
        expected_seq: u64,
    },

    /// An entry is internally consistent but its `prev` is not the hash of
    /// the entry before it: this entry or the one before was replaced (or
    /// edited and rehashed).
    #[error(
        "{}:{line}: entry seq {seq} does not link to the entry before it; one of them was replaced or edited and rehashed",
        path.display()
    )]
    BrokenLink {
        /// The log file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The `seq` written in the entry.
        seq: u64,
    },
}

impl VerifyError {
    /// The file the problem is in.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::Torn { path, .. }
            | Self::TooLong { path, .. }
            | Self::Malformed { path, .. }
            | Self::NonCanonical { path, .. }
            | Self::Edited { path, .. }
            | Self::Deleted { path, .. }
            | Self::Reordered { path, .. }
            | Self::Inserted { path, .. }
            | Self::BrokenLink { path, .. }
            | Self::KeyRequired { path, .. }
            | Self::Downgraded { path, .. }
            | Self::WrongKey { path, .. }
            | Self::Unkeyed { path, .. } => path,
            Self::HeadNotFound { .. } => Path::new(""),
        }
    }

    /// The 1-based line of the problem, if it is at a line.
    pub fn line(&self) -> Option<u64> {
        match self {
            Self::Io { .. } | Self::HeadNotFound { .. } => None,
            Self::KeyRequired { line, .. }
            | Self::Unkeyed { line, .. }
            | Self::Downgraded { line, .. }
            | Self::WrongKey { line, .. } => Some(*line),
            Self::Torn { line, .. }
            | Self::TooLong { line, .. }
            | Self::Malformed { line, .. }
            | Self::NonCanonical { line, .. }
            | Self::Edited { line, .. }
            | Self::Deleted { line, .. }
            | Self::Reordered { line, .. }
            | Self::Inserted { line, .. }
            | Self::BrokenLink { line, .. } => Some(*line),
        }
    }

    /// The first `seq` that is wrong: the edited, unlinked, moved or inserted
    /// entry's `seq`, the first missing `seq` for a deletion, and for a line
    /// that cannot be read the `seq` that should have been there.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Io { .. } => None,
            Self::HeadNotFound { entries, .. } => Some(entries.saturating_add(1)),
            Self::KeyRequired { seq, .. }
            | Self::Unkeyed { seq, .. }
            | Self::Downgraded { seq, .. }
            | Self::WrongKey { seq, .. } => Some(*seq),
            Self::Torn { expected_seq, .. }
            | Self::TooLong { expected_seq, .. }
            | Self::Malformed { expected_seq, .. }
            | Self::NonCanonical { expected_seq, .. }
            | Self::Reordered { expected_seq, .. } => Some(*expected_seq),
            Self::Deleted { missing_seq, .. } => Some(*missing_seq),
            Self::Edited { seq, .. }
            | Self::Inserted { seq, .. }
            | Self::BrokenLink { seq, .. } => Some(*seq),
        }
    }
}

/// Why a chain key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The decrypted key file is not 32 raw bytes or 64 hex digits.
    #[error(
        "the audit key is {len} bytes; it must be 32 raw bytes or 64 hex digits (make one with `openssl rand -hex 32 | age -r RECIPIENT -a > audit-key.age`)"
    )]
    Format {
        /// The plaintext's length (never its content).
        len: usize,
    },
}
