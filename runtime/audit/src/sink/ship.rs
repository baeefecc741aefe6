//! Shipping: every entry of the local log after a sink's cursor, in
//! batches, each acknowledged before the cursor moves past it.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use super::cursor::{Cursor, cursor_dir};
use super::{SinkError, SinkUrl, postgres, syslog};
use crate::entry::GENESIS_HASH;
use crate::record::Decision;
use crate::rotate::log_files;

/// Entries per batch (one INSERT, one TCP connection).
///
/// Reason: large enough that a catch-up run is bound by the database, not by
/// round trips; small enough that a batch (at most this many lines of at
/// most `MAX_RECORD_SIZE`) stays a few MiB.
pub const SHIP_BATCH: usize = 500;

/// Entries read from the log into memory per pass; a longer backlog is
/// shipped in several passes.
///
/// Reason: bounds the memory of a catch-up over a large log.
const MAX_PASS: usize = 20 * SHIP_BATCH;

/// First wait between attempts at a sink that is down; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Hex digits of the first entry's hash that make a log's id.
const LOG_ID_LEN: usize = 32;

/// Which chain entries belong to in a sink: the host that wrote them and
/// the log's id (the first 32 hex digits of its first entry's hash, stable
/// for the life of the log and different for every log).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId {
    /// The host name.
    pub host: String,
    /// The log id.
    pub log_id: String,
}

/// One entry as shipped.
#[derive(Debug, Clone)]
pub(crate) struct Shipped {
    pub(crate) seq: u64,
    pub(crate) hash: String,
    pub(crate) prev: String,
    pub(crate) ts: String,
    pub(crate) decision: Decision,
    /// The line exactly as written, without its `\n`.
    pub(crate) line: String,
}

/// How [`ship`] runs.
#[derive(Debug, Clone)]
pub struct ShipOptions {
    /// The host name entries are shipped under (a cursor made under another
    /// name keeps its own).
    pub host: String,
    /// How long to keep retrying a sink that is down (with backoff) before
    /// giving up on it for this call; zero: one attempt.
    pub retry_for: Duration,
    /// Whether to wait for another shipper of the same log to finish;
    /// without, a log being shipped already is [`SinkError::Busy`].
    pub wait_for_lock: bool,
}

/// What [`ship`] did for one sink.
#[derive(Debug)]
#[non_exhaustive]
pub struct SinkReport {
    /// The sink.
    pub sink: SinkUrl,
    /// Entries acknowledged by the sink in this call.
    pub shipped: u64,
    /// Entries of the local log the sink has not acknowledged yet.
    pub pending: u64,
    /// The cursor after this call (the last seq acknowledged).
    pub cursor: u64,
    /// Why shipping stopped early, if it did.
    pub error: Option<SinkError>,
}

/// The id of the log at `log` (see [`ChainId`]), from its first entry.
///
/// # Errors
/// A log that cannot be read, is empty, or whose first entry is not seq 1.
pub fn chain_id(log: &Path, host: &str) -> Result<ChainId, SinkError> {
    use std::io::{BufRead as _, Read as _};
    let files = files_of(log)?;
    let first_file = &files[0];
    let file = fs::File::open(first_file).map_err(|source| SinkError::Io {
        what: "cannot read the audit log",
        path: first_file.clone(),
        source,
    })?;
    // Only the first line: its hash is the log's id.
    let mut line = Vec::new();
    std::io::BufReader::new(file)
        .take(crate::MAX_RECORD_SIZE as u64)
        .read_until(b'\n', &mut line)
        .map_err(|source| SinkError::Io {
            what: "cannot read the audit log",
            path: first_file.clone(),
            source,
        })?;
    let first = std::str::from_utf8(&line)
        .ok()
        .and_then(|l| l.strip_suffix('\n'))
        .and_then(crate::AuditEntry::parse_line);
    match first {
        Some(e) if e.seq == 1 => Ok(ChainId {
            host: host.to_owned(),
            log_id: e.hash[..LOG_ID_LEN.min(e.hash.len())].to_owned(),
        }),
        Some(e) => Err(SinkError::Log {
            path: log.to_path_buf(),
            reason: format!(
                "the oldest entry is seq {}, not 1 (older segments were moved away); the log's id comes from its first entry",
                e.seq
            ),
        }),
        None if line.is_empty() => Err(SinkError::Log {
            path: log.to_path_buf(),
            reason: "the log has no entries yet".to_owned(),
        }),
        None => Err(SinkError::Log {
            path: first_file.clone(),
            reason: "its first line is not an audit entry; run `agentsec audit verify`".to_owned(),
        }),
    }
}

fn files_of(log: &Path) -> Result<Vec<PathBuf>, SinkError> {
    let files = log_files(log).map_err(|source| SinkError::Io {
        what: "cannot list the audit log",
        path: log.to_path_buf(),
        source,
    })?;
    if files.is_empty() {
        return Err(SinkError::Log {
            path: log.to_path_buf(),
            reason: "no audit log here".to_owned(),
        });
    }
    Ok(files)
}

/// Ships every entry of the log at `log` (and its rotated segments) that a
/// sink has not acknowledged, to each of `sinks`.
///
/// For each sink: its cursor (`<log>.ship/<id>.cursor`) says the last seq it
/// acknowledged; the entries after it are sent in batches of [`SHIP_BATCH`],
/// and after each batch is acknowledged (PostgreSQL: the INSERT committed;
/// syslog over TCP: the receiver closed the connection after reading it)
/// the cursor is rewritten and fsynced. A sink that is down is retried with
/// backoff for [`ShipOptions::retry_for`], then left for the next call (its
/// cursor stays). A crash after a batch is acknowledged and before the
/// cursor moves sends that batch again: PostgreSQL de-duplicates it by
/// (host, log id, seq) and refuses an entry that differs from the one it
/// holds ([`SinkError::Fork`]); syslog receivers see it twice, with the
/// same log id and seq.
///
/// Callers on one log are serialized by a lock file in the cursor
/// directory, so cursors only move forward.
///
/// # Errors
/// Only for the log itself (unreadable, no first entry, rewritten below a
/// cursor); a sink's own failure is in its [`SinkReport::error`].
pub fn ship(
    log: &Path,
    sinks: &[SinkUrl],
    options: &ShipOptions,
) -> Result<Vec<SinkReport>, SinkError> {
    let files = files_of(log)?;
    let dir = cursor_dir(log);
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| SinkError::Io { what, path, source }
    };
    fs::create_dir_all(&dir).map_err(io("cannot create the cursor directory", &dir))?;
    let lock_path = dir.join("lock");
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io("cannot open the shipping lock", &lock_path))?;
    if options.wait_for_lock {
        FileExt::lock_exclusive(&lock).map_err(io("cannot lock", &lock_path))?;
    } else if !FileExt::try_lock_exclusive(&lock).map_err(io("cannot lock", &lock_path))? {
        return Err(SinkError::Busy {
            path: log.to_path_buf(),
        });
    }
    let chain = chain_id(log, &options.host)?;
    let mut reports = Vec::with_capacity(sinks.len());
    for sink in sinks {
        let cursor = Cursor::load(log, sink)?;
        let cursor = match cursor {
            Some(c) if c.log_id != chain.log_id => {
                return Err(SinkError::Log {
                    path: log.to_path_buf(),
                    reason: format!(
                        "its first entry changed since it was shipped to {sink} (log id {} then, {} now): the log was replaced; move {} aside to ship it as a new log",
                        c.log_id,
                        chain.log_id,
                        Cursor::path(log, sink).display()
                    ),
                });
            }
            Some(c) => c,
            None => Cursor {
                sink: sink.to_string(),
                host: chain.host.clone(),
                log_id: chain.log_id.clone(),
                seq: 0,
                hash: GENESIS_HASH.to_owned(),
            },
        };
        reports.push(ship_one(log, &files, sink, cursor, options)?);
    }
    FileExt::unlock(&lock).map_err(io("cannot unlock", &lock_path))?;
    Ok(reports)
}

/// Reads up to [`MAX_PASS`] entries after `after`, and counts all of them.
/// Also returns the hash of the entry at `after` (to check the cursor).
fn read_after(
    log: &Path,
    files: &[PathBuf],
    after: u64,
) -> Result<(Vec<Shipped>, u64, Option<String>), SinkError> {
    let mut batch = Vec::new();
    let mut pending = 0u64;
    let mut at_cursor = None;
    // Rotated segments whose last entry the sink already has are skipped
    // whole (their last line is read backwards), so a ship reads only the
    // files it has something to send from.
    let mut skip = 0;
    for segment in &files[..files.len().saturating_sub(1)] {
        match crate::log::last_entry(segment) {
            Some((seq, hash)) if seq <= after => {
                if seq == after {
                    at_cursor = Some(hash);
                }
                skip += 1;
            }
            _ => break,
        }
    }
    let files = &files[skip..];
    crate::read_entries(files, |e| {
        if e.seq == after {
            at_cursor = Some(e.hash.clone());
        }
        if e.seq > after {
            pending += 1;
            if batch.len() < MAX_PASS {
                batch.push(Shipped {
                    seq: e.seq,
                    hash: e.hash,
                    prev: e.prev,
                    ts: e.ts,
                    decision: e.decision,
                    line: e.line,
                });
            }
        }
    })
    .map_err(|e| SinkError::Log {
        path: log.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok((batch, pending, at_cursor))
}

fn ship_one(
    log: &Path,
    files: &[PathBuf],
    sink: &SinkUrl,
    mut cursor: Cursor,
    options: &ShipOptions,
) -> Result<SinkReport, SinkError> {
    let chain = ChainId {
        host: cursor.host.clone(),
        log_id: cursor.log_id.clone(),
    };
    let mut report = SinkReport {
        sink: sink.clone(),
        shipped: 0,
        pending: 0,
        cursor: cursor.seq,
        error: None,
    };
    let deadline = Instant::now() + options.retry_for;
    let mut connection: Option<Connection> = None;
    loop {
        let (entries, pending, at_cursor) = read_after(log, files, cursor.seq)?;
        report.pending = pending;
        if cursor.seq > 0 && at_cursor.as_deref() != Some(cursor.hash.as_str()) {
            return Err(SinkError::Log {
                path: log.to_path_buf(),
                reason: format!(
                    "entry seq {} is not the one shipped to {sink} (hash {}): the log was rewritten after it was shipped; run `agentsec audit verify`",
                    cursor.seq, cursor.hash
                ),
            });
        }
        if entries.is_empty() {
            return Ok(report);
        }
        let full_pass = entries.len() == MAX_PASS;
        for batch in entries.chunks(SHIP_BATCH) {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let sent = match connection.as_mut() {
                    Some(c) => c.send(sink, &chain, batch),
                    None => Connection::open(sink).and_then(|mut c| {
                        let sent = c.send(sink, &chain, batch);
                        connection = Some(c);
                        sent
                    }),
                };
                match sent {
                    Ok(()) => break,
                    Err(SinkError::Unavailable { .. }) if Instant::now() < deadline => {
                        connection = None;
                        let left = deadline.saturating_duration_since(Instant::now());
                        std::thread::sleep(backoff.min(left));
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    Err(e) => {
                        report.error = Some(e);
                        return Ok(report);
                    }
                }
            }
            let Some(last) = batch.last() else { continue };
            cursor.seq = last.seq;
            cursor.hash.clone_from(&last.hash);
            cursor.store(log, sink)?;
            let n = batch.len() as u64;
            report.shipped += n;
            report.pending = report.pending.saturating_sub(n);
            report.cursor = cursor.seq;
        }
        if !full_pass {
            return Ok(report);
        }
    }
}

/// An open connection to a sink.
pub(crate) enum Connection {
    Postgres(Box<::postgres::Client>),
    /// Syslog connects per batch (the close is its acknowledgement).
    Syslog,
}

impl Connection {
    pub(crate) fn open(sink: &SinkUrl) -> Result<Self, SinkError> {
        match sink {
            SinkUrl::Postgres { url } => {
                postgres::connect(url).map(|c| Self::Postgres(Box::new(c)))
            }
            SinkUrl::SyslogTcp { .. } | SinkUrl::SyslogUnix { .. } => Ok(Self::Syslog),
        }
    }

    pub(crate) fn send(
        &mut self,
        sink: &SinkUrl,
        chain: &ChainId,
        batch: &[Shipped],
    ) -> Result<(), SinkError> {
        let name = sink.to_string();
        match (self, sink) {
            (Self::Postgres(client), _) => postgres::insert(client, &name, chain, batch),
            (Self::Syslog, SinkUrl::SyslogTcp { addr }) => {
                syslog::send_tcp(&name, addr, chain, batch)
            }
            (Self::Syslog, SinkUrl::SyslogUnix { path }) => {
                syslog::send_unix(&name, path, chain, batch)
            }
            (Self::Syslog, SinkUrl::Postgres { .. }) => Err(SinkError::Unavailable {
                sink: name,
                reason: "internal: a syslog connection for a PostgreSQL sink".to_owned(),
            }),
        }
    }
}
