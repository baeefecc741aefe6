//! The shipping cursor: per log and per sink, the last seq the sink has
//! acknowledged, in a small JSON file replaced atomically and fsynced.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{SinkError, SinkUrl};

/// The largest cursor file read, in bytes.
///
/// Reason: a cursor is one short JSON object (about 300 bytes); anything
/// larger is not one.
const MAX_CURSOR_SIZE: u64 = 4096;

/// Where a log's cursors live: `<log>.ship/` next to the log (a name that
/// [`crate::log_files`] does not take for a segment).
pub fn cursor_dir(log: &Path) -> PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_owned();
    name.push(".ship");
    log.with_file_name(name)
}

/// What a sink has acknowledged of one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// The sink's URL (for people reading the file).
    pub sink: String,
    /// The host name the entries were shipped under.
    pub host: String,
    /// The log id they were shipped under.
    pub log_id: String,
    /// The last seq acknowledged (0: none yet).
    pub seq: u64,
    /// That entry's hash (the genesis hash for 0): a local log rewritten
    /// since no longer has it at `seq`.
    pub hash: String,
}

impl Cursor {
    /// The cursor file of `sink` for `log`.
    pub fn path(log: &Path, sink: &SinkUrl) -> PathBuf {
        cursor_dir(log).join(format!("{}.cursor", sink.id()))
    }

    /// Reads the cursor of `sink` for `log`, `None` if nothing was shipped.
    ///
    /// # Errors
    /// A cursor that exists but cannot be read or parsed.
    pub fn load(log: &Path, sink: &SinkUrl) -> Result<Option<Cursor>, SinkError> {
        let path = Self::path(log, sink);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SinkError::Io {
                    what: "cannot read the shipping cursor",
                    path,
                    source,
                });
            }
        };
        let mut text = String::new();
        file.take(MAX_CURSOR_SIZE)
            .read_to_string(&mut text)
            .map_err(|source| SinkError::Io {
                what: "cannot read the shipping cursor",
                path: path.clone(),
                source,
            })?;
        serde_json::from_str(&text).map(Some).map_err(|e| SinkError::Log {
            path,
            reason: format!(
                "not a shipping cursor ({:?} error at line {} column {}); move it aside to ship everything again (the sink de-duplicates)",
                e.classify(),
                e.line(),
                e.column()
            ),
        })
    }

    /// Writes the cursor durably: a temporary file, fsynced, renamed over
    /// the old one, and the directory fsynced, so that after a crash the
    /// cursor is either the old or the new one, never torn.
    ///
    /// # Errors
    /// [`SinkError::Io`] if any step fails (the old cursor then stands).
    pub fn store(&self, log: &Path, sink: &SinkUrl) -> Result<(), SinkError> {
        let path = Self::path(log, sink);
        let io = |what: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| SinkError::Io {
                what,
                path: p,
                source,
            }
        };
        let dir = cursor_dir(log);
        let tmp = dir.join(format!("{}.cursor.tmp", sink.id()));
        let mut text = serde_json::to_vec(self).map_err(|e| SinkError::Log {
            path: path.clone(),
            reason: format!("cannot encode the cursor: {e}"),
        })?;
        text.push(b'\n');
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io("cannot write the shipping cursor", &tmp))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(io("cannot write the shipping cursor", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("cannot replace the shipping cursor", &path))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot fsync the cursor directory", &dir))
    }
}
