//! Rule keys: secret paths whose segments may be `*`.

use std::fmt;

use super::canonical::{DisplaySegment, write_canonical};
use super::lex::{LexedSegment, lex};
use super::{MAX_PATH_LEN, SecretPath};
use crate::error::PathError;

/// One segment of a [`PathPattern`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PatternSegment {
    /// Matches exactly this key.
    Literal(Box<str>),
    /// `*`: matches any one key.
    Any,
}

/// A rule key: [`SecretPath`] syntax where a whole segment may be `*`
/// (written `*` in dotted form, `[*]` in bracket form; `["*"]` is a key
/// literally named `*`). A rule covers the node its pattern names and
/// everything below it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathPattern {
    segs: Box<[PatternSegment]>,
}

impl PathPattern {
    /// Parses a non-empty pattern.
    ///
    /// # Errors
    /// As [`SecretPath::parse`], plus [`PathError::PartialWildcard`] for a
    /// `*` inside a segment.
    pub fn parse(input: &str) -> Result<Self, PathError> {
        if input.is_empty() {
            return Err(PathError::Empty);
        }
        let segs: Box<[PatternSegment]> = lex(input, true)?
            .into_iter()
            .map(|s| match s {
                LexedSegment::Literal(s) => PatternSegment::Literal(s.into_boxed_str()),
                LexedSegment::Any => PatternSegment::Any,
            })
            .collect();
        let pattern = Self { segs };
        let len = pattern.to_string().len();
        if len > MAX_PATH_LEN {
            return Err(PathError::TooLong {
                len,
                max: MAX_PATH_LEN,
            });
        }
        Ok(pattern)
    }

    /// The segments, root first.
    pub fn segments(&self) -> &[PatternSegment] {
        &self.segs
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    /// Always false: a pattern has at least one segment.
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Number of literal (non-`*`) segments: the first measure of specificity.
    pub fn literal_count(&self) -> usize {
        self.segs
            .iter()
            .filter(|s| matches!(s, PatternSegment::Literal(_)))
            .count()
    }

    /// Whether a rule with this pattern covers `path`: the pattern matches
    /// `path` or one of its ancestors, segment by segment.
    pub fn covers(&self, path: &SecretPath) -> bool {
        self.segs.len() <= path.segs.len()
            && self
                .segs
                .iter()
                .zip(path.segs.iter())
                .all(|(p, s)| match p {
                    PatternSegment::Any => true,
                    PatternSegment::Literal(l) => l == s,
                })
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_canonical(
            f,
            self.segs.iter().map(|s| match s {
                PatternSegment::Literal(l) => DisplaySegment::Literal(l),
                PatternSegment::Any => DisplaySegment::Any,
            }),
        )
    }
}

impl std::str::FromStr for PathPattern {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
