//! Checking a chain: every hash, every `prev` link, `seq` without gaps.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::entry::{
    self, ChainInfo, DecodeError, GENESIS_HASH, KIND_HMAC, KIND_SHA256, MAX_RECORD_SIZE, TagCheck,
    TagKind,
};
use crate::error::VerifyError;
use crate::key::ChainKey;

/// What [`verify`] found in a valid chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Number of entries (equal to the last `seq`).
    pub entries: u64,
    /// Hash of the last entry, or [`GENESIS_HASH`] if there is none. Keep it
    /// somewhere else to detect later truncation of the log's end.
    pub head_hash: String,
    /// Whether the entries are keyed (`hmac`, checked with the given key).
    pub keyed: bool,
    /// With [`VerifyOptions::expect_head`]: the `seq` of the entry whose hash
    /// it is (0 for [`GENESIS_HASH`]); entries after it were appended since.
    pub expected_head_seq: Option<u64>,
    /// Whether the files' first entries carry the chain marker (`chain`);
    /// `false` for a log written before markers existed.
    pub marked: bool,
}

/// What [`verify_with`] checks beyond the chain itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The log's key: every entry must then be keyed (`hmac`) and its HMAC
    /// must match. Without it, every entry must be unkeyed (`hash`).
    pub key: Option<&'a ChainKey>,
    /// A head hash recorded earlier (e.g. the `hash` of the last entry seen
    /// by a monitor): it must be the hash of some entry of the chain (or
    /// [`GENESIS_HASH`]), otherwise the log was truncated since.
    pub expect_head: Option<&'a str>,
}

/// Verifies the chain stored in `paths` (`&[PathBuf]`, `&[&Path]`, ...), read in order as one chain (one log
/// file, or its segments oldest first).
///
/// For every line: it must be a whole line (ending in `\n`) of at most
/// [`MAX_RECORD_SIZE`] bytes, a canonical entry (see the crate docs) whose
/// `hash` is the SHA-256 of its canonical form, whose `seq` is one more than
/// the previous entry's (1 for the first) and whose `prev` is the previous
/// entry's `hash` ([`GENESIS_HASH`] for the first).
///
/// A chain cannot show that entries were removed from its END: compare
/// [`VerifyReport::head_hash`] (or `entries`) with a value kept elsewhere.
///
/// # Errors
/// The first problem, as a [`VerifyError`] naming the file, line and `seq`.
/// A keyed entry is [`VerifyError::KeyRequired`]: use [`verify_with`].
pub fn verify<P: AsRef<Path>>(paths: &[P]) -> Result<VerifyReport, VerifyError> {
    verify_with(paths, VerifyOptions::default())
}

/// [`verify`] with a key for keyed logs and/or an expected head hash.
///
/// # Errors
/// As [`verify`], and [`VerifyError::Unkeyed`] for a `hash` entry when a key
/// is given, [`VerifyError::Edited`] when an HMAC does not match (an edit,
/// or the wrong key), [`VerifyError::HeadNotFound`] when the expected head
/// is not in the chain (truncation).
pub fn verify_with<P: AsRef<Path>>(
    paths: &[P],
    options: VerifyOptions<'_>,
) -> Result<VerifyReport, VerifyError> {
    let mut chain = ChainSoFar::new(options);
    let mut lines = Lines::new(paths);
    while let Some(item) = lines.next_line()? {
        chain.check_next(item, &mut lines)?;
    }
    chain.finish()
}

/// The chain as far as [`verify_with`] has checked it.
struct ChainSoFar<'o> {
    options: VerifyOptions<'o>,
    /// The `seq` the next entry must have.
    expected_seq: u64,
    /// The last entry's hash: the next entry's `prev`.
    head_hash: String,
    /// Entries checked.
    entries: u64,
    /// The chain marker of the first file, once seen.
    marker: Option<ChainInfo<'static>>,
    /// The `seq` of the entry whose hash is [`VerifyOptions::expect_head`],
    /// once found.
    expected_head_seq: Option<u64>,
}

impl<'o> ChainSoFar<'o> {
    fn new(options: VerifyOptions<'o>) -> Self {
        Self {
            options,
            expected_seq: 1,
            head_hash: GENESIS_HASH.to_owned(),
            entries: 0,
            marker: None,
            expected_head_seq: match options.expect_head {
                Some(head) if head == GENESIS_HASH => Some(0),
                _ => None,
            },
        }
    }

    /// Checks the next line read (`lines` is read on only to tell a moved
    /// entry from a deleted one).
    fn check_next<P: AsRef<Path>>(
        &mut self,
        item: NumberedLine<'_>,
        lines: &mut Lines<'_, P>,
    ) -> Result<(), VerifyError> {
        let (path, line) = (item.path, item.line);
        let decoded = decode_line(item, self.expected_seq)?;
        let seq = decoded.entry.seq;
        // The chain marker before the tag, so that a downgrade or the wrong
        // key is named as such (an error either way).
        check_marker(
            &mut self.marker,
            &decoded.entry.chain,
            decoded.kind,
            self.options.key,
            (path, line, seq),
        )?;
        // Then the tag: an edited entry is "edited", whatever field changed.
        let path = path.to_path_buf();
        match decoded.check(self.options.key) {
            TagCheck::Valid => {}
            TagCheck::Mismatch => {
                return Err(VerifyError::Edited {
                    path,
                    line,
                    seq,
                    keyed: self.options.key.is_some(),
                });
            }
            TagCheck::KeyRequired => return Err(VerifyError::KeyRequired { path, line, seq }),
            TagCheck::Unkeyed => return Err(VerifyError::Unkeyed { path, line, seq }),
        }
        let expected_seq = self.expected_seq;
        if seq > expected_seq {
            // Entry `expected_seq` is either further on (moved) or gone.
            return Err(if lines.find_seq(expected_seq)? {
                VerifyError::Reordered {
                    path,
                    line,
                    seq,
                    expected_seq,
                }
            } else {
                VerifyError::Deleted {
                    path,
                    line,
                    missing_seq: expected_seq,
                    seq,
                }
            });
        }
        if seq < expected_seq {
            return Err(VerifyError::Inserted {
                path,
                line,
                seq,
                expected_seq,
            });
        }
        if decoded.entry.prev != self.head_hash {
            return Err(VerifyError::BrokenLink { path, line, seq });
        }
        self.head_hash = decoded.stored_hash;
        self.entries = seq;
        if self.options.expect_head == Some(self.head_hash.as_str()) {
            self.expected_head_seq = Some(seq);
        }
        // Cannot overflow: `seq` is a u64 equal to `expected_seq`, and a
        // chain reaching u64::MAX is refused by the writer. Saturate anyway.
        self.expected_seq = expected_seq.saturating_add(1);
        Ok(())
    }

    /// The report, once every line was checked.
    fn finish(self) -> Result<VerifyReport, VerifyError> {
        if let Some(expected) = self.options.expect_head
            && self.expected_head_seq.is_none()
        {
            return Err(VerifyError::HeadNotFound {
                expected: expected.to_owned(),
                entries: self.entries,
                head: self.head_hash,
            });
        }
        Ok(VerifyReport {
            entries: self.entries,
            head_hash: self.head_hash,
            keyed: self.options.key.is_some(),
            expected_head_seq: self.expected_head_seq,
            marked: self.marker.is_some(),
        })
    }
}

/// Decodes one line read, or names what is wrong with it (`expected_seq`:
/// the entry it should have been).
fn decode_line(item: NumberedLine<'_>, expected_seq: u64) -> Result<entry::Decoded, VerifyError> {
    let path = item.path.to_path_buf();
    let line = item.line;
    let bytes = match item.raw {
        RawLine::Line(bytes) => bytes,
        RawLine::Torn => {
            return Err(VerifyError::Torn {
                path,
                line,
                expected_seq,
            });
        }
        RawLine::TooLong => {
            return Err(VerifyError::TooLong {
                path,
                line,
                expected_seq,
            });
        }
    };
    entry::decode(&bytes).map_err(|e| match e {
        DecodeError::Malformed(reason) => VerifyError::Malformed {
            path,
            line,
            expected_seq,
            reason,
        },
        DecodeError::NonCanonical => VerifyError::NonCanonical {
            path,
            line,
            expected_seq,
        },
    })
}

/// Checks an entry's chain marker against its tag, the key, and the marker
/// of the chain's first file (`seen`). A marker belongs on the first line of
/// each file; once a file has one, every later file must have the same one.
fn check_marker(
    seen: &mut Option<ChainInfo<'static>>,
    found: &Option<ChainInfo<'static>>,
    tag: TagKind,
    key: Option<&ChainKey>,
    (path, line, seq): (&Path, u64, u64),
) -> Result<(), VerifyError> {
    let downgraded = |reason: String| VerifyError::Downgraded {
        path: path.to_path_buf(),
        line,
        seq,
        reason,
    };
    let Some(info) = found else {
        if line == 1 && seen.is_some() {
            return Err(downgraded(
                "this file's first entry has no chain marker (`chain`), but the log's earlier files have one".to_owned(),
            ));
        }
        return Ok(());
    };
    if line != 1 {
        return Err(downgraded(
            "a chain marker (`chain`) belongs only on the first line of a file".to_owned(),
        ));
    }
    let key_id = info.key_id.as_deref().unwrap_or("none");
    match (info.kind.as_ref(), tag) {
        (KIND_HMAC, TagKind::Hmac) | (KIND_SHA256, TagKind::Hash) => {}
        (KIND_HMAC, TagKind::Hash) => {
            return Err(downgraded(format!(
                "the chain marker says the log is keyed (hmac-sha256, key id {key_id}), but the entry carries an unkeyed `hash`"
            )));
        }
        (KIND_SHA256, TagKind::Hmac) => {
            return Err(downgraded(
                "the chain marker says the log is unkeyed (sha256), but the entry carries `hmac`"
                    .to_owned(),
            ));
        }
        (other, _) => {
            return Err(downgraded(format!(
                "unknown chain kind `{}` (expected sha256 or hmac-sha256)",
                other.escape_debug()
            )));
        }
    }
    if info.kind == KIND_HMAC && info.key_id.is_none() {
        return Err(downgraded(
            "a keyed chain marker without a key id".to_owned(),
        ));
    }
    if let (Some(key), Some(log_key_id)) = (key, &info.key_id) {
        let given = key.fingerprint();
        if **log_key_id != *given {
            return Err(VerifyError::WrongKey {
                path: path.to_path_buf(),
                line,
                seq,
                log_key_id: log_key_id.to_string(),
                given_key_id: given,
            });
        }
    }
    match seen {
        Some(first) if first != info => Err(downgraded(format!(
            "the chain marker changed from {} (key id {}) in an earlier file to {} (key id {key_id})",
            first.kind,
            first.key_id.as_deref().unwrap_or("none"),
            info.kind
        ))),
        Some(_) => Ok(()),
        None => {
            *seen = Some(info.clone());
            Ok(())
        }
    }
}

/// One line as read: whole, cut short at the end of the file, or too long.
pub(crate) enum RawLine {
    /// A whole line, without its `\n`.
    Line(Vec<u8>),
    /// The file ends without a final `\n`.
    Torn,
    /// No `\n` within [`MAX_RECORD_SIZE`] bytes.
    TooLong,
}

/// One line of a log file, and where it is.
pub(crate) struct NumberedLine<'p> {
    pub(crate) path: &'p Path,
    /// 1-based line number within `path`.
    pub(crate) line: u64,
    pub(crate) raw: RawLine,
}

/// The lines of several files in order, each read with a bounded buffer.
pub(crate) struct Lines<'p, P> {
    paths: &'p [P],
    /// Index in `paths` of the file being read.
    index: usize,
    reader: Option<BufReader<File>>,
    line: u64,
}

impl<'p, P: AsRef<Path>> Lines<'p, P> {
    pub(crate) fn new(paths: &'p [P]) -> Self {
        Self {
            paths,
            index: 0,
            reader: None,
            line: 0,
        }
    }

    pub(crate) fn next_line(&mut self) -> Result<Option<NumberedLine<'p>>, VerifyError> {
        loop {
            let Some(path) = self.paths.get(self.index).map(AsRef::as_ref) else {
                return Ok(None);
            };
            let io_err = |source| VerifyError::Io {
                path: path.to_path_buf(),
                source,
            };
            let reader = match &mut self.reader {
                Some(reader) => reader,
                None => {
                    let file = File::open(path).map_err(io_err)?;
                    self.line = 0;
                    self.reader.insert(BufReader::new(file))
                }
            };
            let mut buf = Vec::new();
            let limit = u64::try_from(MAX_RECORD_SIZE).unwrap_or(u64::MAX);
            let n = reader
                .by_ref()
                .take(limit)
                .read_until(b'\n', &mut buf)
                .map_err(io_err)?;
            if n == 0 {
                self.reader = None;
                self.index += 1;
                continue;
            }
            self.line += 1;
            let raw = if buf.last() == Some(&b'\n') {
                buf.pop();
                RawLine::Line(buf)
            } else if buf.len() >= MAX_RECORD_SIZE {
                RawLine::TooLong
            } else {
                RawLine::Torn
            };
            return Ok(Some(NumberedLine {
                path,
                line: self.line,
                raw,
            }));
        }
    }

    /// Whether any of the remaining lines claims to be entry `seq`
    /// (content not checked; this only tells moved from deleted).
    fn find_seq(&mut self, seq: u64) -> Result<bool, VerifyError> {
        while let Some(item) = self.next_line()? {
            if let RawLine::Line(bytes) = item.raw
                && entry::loose_seq(&bytes) == Some(seq)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
