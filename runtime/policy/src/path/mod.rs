//! Secret paths (`databases.postgres.production.password`, `["a.b"]["c"]`)
//! and the path patterns that key policy rules (`databases.*.staging`).
//!
//! The types and their rules are here; [`mod@lex`] turns text into segments,
//! [`canonical`] writes the one canonical spelling back, and [`pattern`]
//! adds the `*` segment of rule keys.

use std::fmt;

use crate::error::PathError;

mod canonical;
mod lex;
mod pattern;
#[cfg(test)]
mod tests;

use canonical::{DisplaySegment, check_canonical_len, write_canonical};
use lex::{LexedSegment, lex};
pub use pattern::{PathPattern, PatternSegment};

/// Longest accepted secret path, in bytes (both as given and in canonical form).
///
/// Paths come from skills (untrusted guests) on every `get-secret` call and
/// are echoed into audit records and denials. Real secret trees are a few
/// short keys deep; 1 KiB leaves ample room while bounding the work and the
/// size of every record a guest can cause.
pub const MAX_PATH_LEN: usize = 1024;

/// Most segments in a secret path.
///
/// Bounds the depth of every tree walk (policy evaluation and the store)
/// that a guest-supplied path drives. Real trees are under ten levels deep.
pub const MAX_PATH_SEGMENTS: usize = 32;

/// A validated path to a node of the secrets tree.
///
/// Parsed from the dotted form (`databases.postgres.production.password`),
/// the sops `--extract` bracket form (`["a.b"]["c"]`, `['x'][0]`) or a mix
/// (`communication["odd.key"]`). A bracketed run of digits (`[0]`) is the
/// segment `"0"`. Displays in canonical form: dotted when every segment is
/// simple (`[A-Za-z0-9_-]+`, and not digits with a leading zero), otherwise
/// bracket form for the whole path; and `SecretPath::parse(&p.to_string()) ==
/// Ok(p)`.
///
/// **One spelling per node.** A segment names a mapping key, or, on a list,
/// the element whose index is that segment in canonical form
/// ([`list_index`]: digits, no leading zero). An unquoted run of digits with
/// a leading zero (`keys.00`, `keys[007]`) is refused
/// ([`PathError::LeadingZero`]) rather than read as index 0 or 7, so no two
/// accepted spellings name the same list element; a mapping key that really
/// is `007` is written quoted, `["007"]`, and never names a list element.
/// The policy, the store and the audit log all compare these segments as
/// text, so they agree on what a path names.
///
/// Rules: no empty segment, no control character, no leading zero in an
/// unquoted index, at most [`MAX_PATH_LEN`] bytes and [`MAX_PATH_SEGMENTS`]
/// segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretPath {
    segs: Box<[Box<str>]>,
}

impl SecretPath {
    /// Parses a non-empty path.
    ///
    /// # Errors
    /// [`PathError::Empty`] for `""`; otherwise the first problem, with its
    /// byte position.
    pub fn parse(input: &str) -> Result<Self, PathError> {
        if input.is_empty() {
            return Err(PathError::Empty);
        }
        Self::parse_prefix(input)
    }

    /// Like [`parse`](Self::parse), but `""` is the root (for listing).
    ///
    /// # Errors
    /// As [`parse`](Self::parse), except for the empty string.
    pub fn parse_prefix(input: &str) -> Result<Self, PathError> {
        let segs = lex(input, false)?
            .into_iter()
            .map(|s| match s {
                LexedSegment::Literal(s) => s.into_boxed_str(),
                // lex(_, false) never yields a wildcard.
                LexedSegment::Any => Box::from("*"),
            })
            .collect();
        let path = Self { segs };
        check_canonical_len(&path)?;
        Ok(path)
    }

    /// The root: no segments. Only useful as a listing prefix.
    pub fn root() -> Self {
        Self { segs: Box::new([]) }
    }

    /// Builds a path from raw segments (keys as they are in the store).
    ///
    /// # Errors
    /// An empty segment, a control character, or a limit exceeded.
    pub fn from_segments<I, S>(segments: I) -> Result<Self, PathError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut segs = Vec::new();
        let mut pos = 0;
        for seg in segments {
            let seg = seg.as_ref();
            if segs.len() == MAX_PATH_SEGMENTS {
                return Err(PathError::TooManySegments {
                    max: MAX_PATH_SEGMENTS,
                });
            }
            check_raw_segment(seg, pos)?;
            pos = pos.saturating_add(seg.len() + 1);
            // The canonical form is at least as long as the segments and
            // their separators: stop early on oversized input.
            if pos - 1 > MAX_PATH_LEN {
                return Err(PathError::TooLong {
                    len: pos - 1,
                    max: MAX_PATH_LEN,
                });
            }
            segs.push(Box::from(seg));
        }
        let path = Self {
            segs: segs.into_boxed_slice(),
        };
        check_canonical_len(&path)?;
        Ok(path)
    }

    /// The segments, root first.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = &str> + DoubleEndedIterator + Clone {
        self.segs.iter().map(|s| &**s)
    }

    /// Number of segments (0 for the root).
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    /// Whether this is the root (no segments).
    pub fn is_root(&self) -> bool {
        self.segs.is_empty()
    }

    /// Same as [`is_root`](Self::is_root).
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// The last segment, `None` for the root.
    pub fn last(&self) -> Option<&str> {
        self.segs.last().map(|s| &**s)
    }

    /// The path one level down: `self` plus `segment` (a raw key, not parsed).
    ///
    /// # Errors
    /// An empty segment, a control character, or a limit exceeded.
    pub fn child(&self, segment: &str) -> Result<Self, PathError> {
        Self::from_segments(self.segments().chain(std::iter::once(segment)))
    }

    /// Whether `prefix` is this path or an ancestor of it (segment-wise:
    /// `a.b` is a prefix of `a.b.c`, not of `a.bc`). The root is a prefix of
    /// every path.
    pub fn starts_with(&self, prefix: &SecretPath) -> bool {
        self.segs.len() >= prefix.segs.len()
            && self
                .segs
                .iter()
                .zip(prefix.segs.iter())
                .all(|(a, b)| a == b)
    }

    pub(crate) fn raw_segments(&self) -> &[Box<str>] {
        &self.segs
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_canonical(f, self.segs.iter().map(|s| DisplaySegment::Literal(s)))
    }
}

impl std::str::FromStr for SecretPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The list index a path segment names on a list: ASCII digits in canonical
/// form (`0`, `7`, `12`; not `007`, `+1`, ` 1`, or beyond `usize`). The one
/// definition the store and the policy share: any other segment names no
/// list element.
pub fn list_index(segment: &str) -> Option<usize> {
    if !is_canonical_index(segment) {
        return None;
    }
    segment.parse().ok()
}

/// Digits without a leading zero (`0` itself is canonical).
fn is_canonical_index(seg: &str) -> bool {
    !seg.is_empty()
        && seg.bytes().all(|b| b.is_ascii_digit())
        && (seg.len() == 1 || !seg.starts_with('0'))
}

/// Digits with a leading zero: what an unquoted segment may not be.
fn is_padded_digits(seg: &str) -> bool {
    seg.len() > 1 && seg.starts_with('0') && seg.bytes().all(|b| b.is_ascii_digit())
}

/// Refuses an empty segment or a control character in a raw key at byte
/// `pos` of the path it is joining.
fn check_raw_segment(seg: &str, pos: usize) -> Result<(), PathError> {
    if seg.is_empty() {
        return Err(PathError::EmptySegment { pos });
    }
    if let Some((off, ch)) = seg.char_indices().find(|(_, c)| c.is_control()) {
        return Err(PathError::ControlChar { ch, pos: pos + off });
    }
    Ok(())
}
