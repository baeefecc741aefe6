//! The canonical spelling of a path or pattern: dotted when every segment
//! is simple, otherwise bracket form for the whole path.

use std::fmt;

use super::{MAX_PATH_LEN, SecretPath, is_canonical_index, is_padded_digits};
use crate::error::PathError;

/// A segment of a path or pattern, as [`write_canonical`] shows it.
#[derive(Clone, Copy)]
pub(super) enum DisplaySegment<'a> {
    /// A key (or list index), shown as it is or quoted.
    Literal(&'a str),
    /// A pattern's `*`.
    Any,
}

/// A character that may appear unquoted in a dotted segment.
pub(super) fn is_simple_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'
}

/// A segment that can be written dotted and read back as itself.
fn is_simple(seg: &str) -> bool {
    !seg.is_empty() && seg.chars().all(is_simple_char) && !is_padded_digits(seg)
}

/// Writes `segs` in canonical form: dotted when every segment is simple
/// (or `*`), otherwise bracket form for the whole path.
pub(super) fn write_canonical<'a, W: fmt::Write>(
    out: &mut W,
    segs: impl Iterator<Item = DisplaySegment<'a>> + Clone,
) -> fmt::Result {
    let dotted = segs.clone().all(|s| match s {
        DisplaySegment::Literal(l) => is_simple(l),
        DisplaySegment::Any => true,
    });
    for (i, seg) in segs.enumerate() {
        match (dotted, seg) {
            (true, DisplaySegment::Literal(l)) => {
                if i > 0 {
                    out.write_char('.')?;
                }
                out.write_str(l)?;
            }
            (true, DisplaySegment::Any) => {
                if i > 0 {
                    out.write_char('.')?;
                }
                out.write_char('*')?;
            }
            (false, DisplaySegment::Literal(l)) if is_canonical_index(l) => {
                write!(out, "[{l}]")?;
            }
            (false, DisplaySegment::Literal(l)) => {
                out.write_str("[\"")?;
                for ch in l.chars() {
                    if ch == '"' || ch == '\\' {
                        out.write_char('\\')?;
                    }
                    out.write_char(ch)?;
                }
                out.write_str("\"]")?;
            }
            (false, DisplaySegment::Any) => out.write_str("[*]")?,
        }
    }
    Ok(())
}

/// Counts bytes instead of writing them.
struct ByteCounter(usize);

impl fmt::Write for ByteCounter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.saturating_add(s.len());
        Ok(())
    }
}

/// Refuses a path whose canonical form is longer than [`MAX_PATH_LEN`]
/// (quoting can make it longer than the text it was parsed from).
pub(super) fn check_canonical_len(path: &SecretPath) -> Result<(), PathError> {
    let mut c = ByteCounter(0);
    // Writing to a ByteCounter cannot fail.
    let _ = write_canonical(&mut c, path.segs.iter().map(|s| DisplaySegment::Literal(s)));
    if c.0 > MAX_PATH_LEN {
        return Err(PathError::TooLong {
            len: c.0,
            max: MAX_PATH_LEN,
        });
    }
    Ok(())
}
