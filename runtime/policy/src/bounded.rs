//! The one way agentsec reads a file or stream it was pointed at: bounded by
//! a named limit that is checked while reading, and, for files, only regular
//! files.
//!
//! Every file a user names (component, `--input @FILE`, secrets file, policy
//! files, `agentsec.yaml`, `.sops.yaml`, age key files, the audit key) goes
//! through [`read_file`], and every stream through [`read_stream`]. Sizes
//! reported by `stat` are not trusted: `/dev/zero` reports 0 and a file may
//! grow while it is read, so at most `limit + 1` bytes are ever read. A FIFO,
//! a device or a directory is refused without blocking: the file is opened
//! with `O_NONBLOCK` (so opening a FIFO returns at once) and checked with
//! `fstat` on the descriptor that is then read.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use agentsec_policy::bounded::{read_file, ReadError};
//! let mut buf = Vec::new();
//! let err = read_file("/dev/zero".as_ref(), 1 << 20, &mut buf).unwrap_err();
//! assert!(matches!(err, ReadError::NotRegular { .. }));
//! # Ok(()) }
//! ```

use std::io::Read;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Why a bounded read failed. The message never includes file contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The path names something other than a regular file.
    #[error("is {kind}, not a regular file; pass a regular file")]
    NotRegular {
        /// What it is: "a directory", "a FIFO (named pipe)", ...
        kind: &'static str,
    },
    /// More than `limit` bytes.
    #[error("is larger than the {limit}-byte limit{}", size.map(|s| format!(" ({s} bytes)")).unwrap_or_default())]
    TooLarge {
        /// The size `fstat` reported, if it is a file.
        size: Option<u64>,
        /// The limit.
        limit: u64,
    },
}

impl ReadError {
    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Appends the contents of the regular file `path` to `buf`, refusing
/// anything that is not a regular file and anything over `limit` bytes.
/// `buf` is the caller's, so a secret-bearing caller can hand in a buffer
/// that is wiped on drop; it is reserved once to the file's size, so reading
/// does not reallocate (and leave copies) for a file that does not grow.
///
/// # Errors
/// [`ReadError`]: cannot open or read, not a regular file, too large.
pub fn read_file(path: &Path, limit: u64, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits().cast_signed())
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular {
            kind: if kind.is_dir() {
                "a directory"
            } else if kind.is_fifo() {
                "a FIFO (named pipe)"
            } else if kind.is_char_device() {
                "a character device"
            } else if kind.is_block_device() {
                "a block device"
            } else if kind.is_socket() {
                "a socket"
            } else {
                "a special file"
            },
        });
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: Some(meta.len()),
            limit,
        });
    }
    buf.reserve(usize::try_from(meta.len()).unwrap_or(0).saturating_add(1));
    read_stream(file, limit, buf).map_err(|e| match e {
        ReadError::TooLarge { limit, .. } => ReadError::TooLarge { size: None, limit },
        other => other,
    })
}

/// Appends at most `limit` bytes of `reader` to `buf`; more is an error
/// (found by reading one byte past the limit, never more).
///
/// # Errors
/// [`ReadError::Io`] or [`ReadError::TooLarge`].
pub fn read_stream(reader: impl Read, limit: u64, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    let start = buf.len();
    reader.take(limit.saturating_add(1)).read_to_end(buf)?;
    if (buf.len() - start) as u64 > limit {
        buf.truncate(start);
        return Err(ReadError::TooLarge { size: None, limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_within_the_limit_and_refuses_more() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap_or_else(|e| panic!("{e}"));
        let mut buf = Vec::new();
        assert!(read_file(&file, 5, &mut buf).is_ok());
        assert_eq!(buf, b"12345");
        let mut buf = Vec::new();
        let err = read_file(&file, 4, &mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::TooLarge {
                    size: Some(5),
                    limit: 4
                }
            ),
            "{err}"
        );
        let err = read_file(dir.path(), 4, &mut buf).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        let err = read_file("/dev/zero".as_ref(), 4, &mut buf).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        assert!(
            read_file(&dir.path().join("none"), 4, &mut buf)
                .unwrap_err()
                .is_not_found()
        );
        let mut buf = Vec::new();
        let err = read_stream(std::io::repeat(0), 10, &mut buf).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { .. }));
        assert!(buf.is_empty());
    }
}
