//! `ship: sync`: every record is acknowledged by every sink before the
//! append that wrote it returns (and so before its value is released).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::cursor::Cursor;
use super::ship::{ChainId, Connection, ShipOptions, Shipped, ship};
use super::{SinkError, SinkUrl};
use crate::log::AppendHook;
use crate::read::AuditEntry;

/// An [`AppendHook`] that sends each record to every sink and waits for
/// the acknowledgement; a sink that does not acknowledge fails the append
/// (the caller fails closed). Install it with
/// [`LogOptions::after_append`](crate::LogOptions::after_append).
///
/// It keeps one connection per sink. When the record it is given follows
/// the last one it shipped, it sends just that record; otherwise (another
/// writer appended in between) it ships from the sink's cursor as
/// [`ship`] does. The cursor files are written by those catch-ups and when
/// the shipper is dropped, not per record: after a crash the next ship
/// sends the records since the cursor again, and the sink de-duplicates.
#[derive(Debug)]
pub struct SyncShipper {
    log: PathBuf,
    host: String,
    state: Mutex<Vec<SinkState>>,
}

struct SinkState {
    sink: SinkUrl,
    connection: Option<Connection>,
    /// Chain and last seq this shipper knows the sink has.
    chain: Option<ChainId>,
    acked: u64,
    acked_hash: String,
    /// Whether `acked` moved past the cursor file.
    dirty: bool,
}

impl std::fmt::Debug for SinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkState")
            .field("sink", &self.sink)
            .field("acked", &self.acked)
            .finish_non_exhaustive()
    }
}

impl SyncShipper {
    /// Ships what the log at `log` has pending to `sinks` now (one attempt
    /// each), so that a sink that is down fails before anything runs.
    ///
    /// # Errors
    /// The first sink that could not take the backlog, or a log that
    /// cannot be shipped.
    pub fn start(log: &Path, sinks: &[SinkUrl], host: &str) -> Result<Self, SinkError> {
        let mut states = Vec::with_capacity(sinks.len());
        let has_entries = crate::log_files(log)
            .map(|files| {
                files
                    .iter()
                    .any(|f| f.metadata().is_ok_and(|m| m.len() > 0))
            })
            .unwrap_or(false);
        for sink in sinks {
            let mut state = SinkState {
                sink: sink.clone(),
                connection: None,
                chain: None,
                acked: 0,
                acked_hash: String::new(),
                dirty: false,
            };
            if has_entries {
                catch_up(log, host, &mut state)?;
            }
            states.push(state);
        }
        Ok(Self {
            log: log.to_path_buf(),
            host: host.to_owned(),
            state: Mutex::new(states),
        })
    }

    fn store_cursors(&self, states: &mut [SinkState]) {
        for state in states.iter_mut().filter(|s| s.dirty) {
            let Some(chain) = &state.chain else { continue };
            // Never move a cursor back (a concurrent `audit ship` may be ahead).
            if let Ok(Some(c)) = Cursor::load(&self.log, &state.sink)
                && c.seq >= state.acked
            {
                continue;
            }
            let cursor = Cursor {
                sink: state.sink.to_string(),
                host: chain.host.clone(),
                log_id: chain.log_id.clone(),
                seq: state.acked,
                hash: state.acked_hash.clone(),
            };
            if cursor.store(&self.log, &state.sink).is_ok() {
                state.dirty = false;
            }
        }
    }
}

/// Ships the backlog of `state.sink` from its cursor (one attempt) and
/// takes the cursor it reached.
fn catch_up(log: &Path, host: &str, state: &mut SinkState) -> Result<(), SinkError> {
    let options = ShipOptions {
        host: host.to_owned(),
        retry_for: std::time::Duration::ZERO,
        wait_for_lock: true,
    };
    let mut reports = ship(log, std::slice::from_ref(&state.sink), &options)?;
    let report = reports.pop().ok_or_else(|| SinkError::Log {
        path: log.to_path_buf(),
        reason: "internal: no report for the sink".to_owned(),
    })?;
    if let Some(e) = report.error {
        return Err(e);
    }
    let cursor = Cursor::load(log, &state.sink)?;
    if let Some(c) = cursor {
        state.chain = Some(ChainId {
            host: c.host,
            log_id: c.log_id,
        });
        state.acked = c.seq;
        state.acked_hash = c.hash;
    }
    state.dirty = false;
    Ok(())
}

impl AppendHook for SyncShipper {
    fn appended(&self, log: &Path, seq: u64, hash: &str, line: &str) -> Result<(), String> {
        // The blocking PostgreSQL client runs its own executor, which cannot
        // start on a thread that is driving one (a host runs skills on an
        // async executor): the network part runs on a thread of its own.
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.ship_appended(log, seq, hash, line))
                .join()
                .unwrap_or_else(|_| Err("the shipping thread panicked".to_owned()))
        })
    }
}

impl SyncShipper {
    fn ship_appended(&self, log: &Path, seq: u64, hash: &str, line: &str) -> Result<(), String> {
        let mut states = self
            .state
            .lock()
            .map_err(|_| "the shipper's lock is poisoned".to_owned())?;
        for state in states.iter_mut() {
            if seq == 1 && state.chain.is_none() {
                state.chain = Some(ChainId {
                    host: self.host.clone(),
                    log_id: hash.get(..32).unwrap_or(hash).to_owned(),
                });
            }
            let follows = state.chain.is_some() && seq == state.acked + 1;
            if !follows {
                catch_up(log, &self.host, state).map_err(|e| e.to_string())?;
                continue;
            }
            let entry = AuditEntry::parse_line(line)
                .ok_or_else(|| "the appended record does not parse".to_owned())?;
            let batch = [Shipped {
                seq,
                hash: hash.to_owned(),
                prev: entry.prev,
                ts: entry.ts,
                decision: entry.decision,
                line: line.to_owned(),
            }];
            let chain = state.chain.clone().unwrap_or(ChainId {
                host: self.host.clone(),
                log_id: String::new(),
            });
            // One reconnect: a sink that restarted since the last record.
            let mut sent = Err(SinkError::Unavailable {
                sink: state.sink.to_string(),
                reason: "not sent".to_owned(),
            });
            for _ in 0..2 {
                if state.connection.is_none() {
                    match Connection::open(&state.sink) {
                        Ok(c) => state.connection = Some(c),
                        Err(e) => {
                            sent = Err(e);
                            continue;
                        }
                    }
                }
                if let Some(c) = state.connection.as_mut() {
                    sent = c.send(&state.sink, &chain, &batch);
                }
                if sent.is_ok() {
                    break;
                }
                state.connection = None;
            }
            sent.map_err(|e| e.to_string())?;
            state.acked = seq;
            state.acked_hash = hash.to_owned();
            state.dirty = true;
        }
        Ok(())
    }
}

impl SyncShipper {
    /// Writes the cursors of the sinks that acknowledged records since the
    /// last write (under the shipping lock, never moving a cursor back).
    /// Call it when a run ends; dropping the shipper does it too.
    pub fn flush(&self) {
        let Ok(mut states) = self.state.lock() else {
            return;
        };
        let dir = super::cursor_dir(&self.log);
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        if let Ok(lock) = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))
            && fs4::fs_std::FileExt::lock_exclusive(&lock).is_ok()
        {
            self.store_cursors(&mut states);
            let _ = fs4::fs_std::FileExt::unlock(&lock);
        }
    }
}

impl Drop for SyncShipper {
    fn drop(&mut self) {
        self.flush();
    }
}
