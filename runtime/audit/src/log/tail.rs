//! Learning the chain's tail: the last record of the file (or of the
//! newest segment, for a file that rotation left empty), checked.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::{AuditLog, Tail};
use crate::entry::{self, DecodeError, Decoded, GENESIS_HASH, MAX_RECORD_SIZE, TagCheck};
use crate::error::AuditError;
use crate::rotate;

/// How many bytes are read at a time when looking for the last line.
///
/// Reason: a record is a few hundred bytes, so one chunk almost always holds
/// the whole tail; the loop stops at [`MAX_RECORD_SIZE`] in any case.
const TAIL_CHUNK: usize = 4096;

impl AuditLog {
    /// Reads and checks the last record. The caller holds the lock. An
    /// empty file continues the chain of the newest rotated segment, if
    /// there is one (the file that replaced a full log starts empty).
    pub(super) fn read_tail(&self) -> Result<Tail, AuditError> {
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
        if len == 0 {
            return Err(AuditError::CorruptTail {
                path: path.to_path_buf(),
                reason: "the rotated segment is empty".to_owned(),
            });
        }
        let line = read_last_line(file, path, len)?;
        self.check_tail_line(&line, path, len)
    }

    /// Decodes the last line of the file `path` (`len` bytes long) and
    /// checks its tag under this handle's key.
    fn check_tail_line(&self, line: &[u8], path: &Path, len: u64) -> Result<Tail, AuditError> {
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

/// The last line of `file` (named `path` in errors; `len > 0` bytes long),
/// without its `\n`, read backwards in [`TAIL_CHUNK`]s. It must end the
/// file with a `\n` and be at most [`MAX_RECORD_SIZE`] bytes with it.
fn read_last_line(file: &File, path: &Path, len: u64) -> Result<Vec<u8>, AuditError> {
    let read_err = |source| AuditError::Read {
        path: path.to_path_buf(),
        source,
    };
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
    // Keep only the last line, without its `\n`.
    buf.pop();
    buf.drain(..line_start);
    if buf.len() + 1 > MAX_RECORD_SIZE {
        return Err(tail_too_large(path));
    }
    Ok(buf)
}

fn tail_too_large(path: &Path) -> AuditError {
    AuditError::TailTooLarge {
        path: path.to_path_buf(),
        limit: MAX_RECORD_SIZE,
    }
}

/// Reads exactly `buf.len()` bytes at `offset`. Appends ignore the file
/// position, so moving it is harmless.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut reader = file;
    reader.seek(SeekFrom::Start(offset))?;
    reader.read_exact(buf)
}

/// The `seq` and tag of the last line of the file at `path`, read backwards
/// (without reading the rest of the file); `None` if it is empty, torn or
/// not an entry. Used to skip whole rotated segments that a sink already has.
#[cfg(feature = "sinks")]
pub(crate) fn last_entry(path: &Path) -> Option<(u64, String)> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len == 0 {
        return None;
    }
    let line = read_last_line(&file, path, len).ok()?;
    let decoded = entry::decode(&line).ok()?;
    Some((decoded.entry.seq, decoded.stored_hash))
}
