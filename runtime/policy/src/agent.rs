//! Agent identities and the globs that policies match them with.

use std::fmt;
use std::sync::OnceLock;

use globset::{Glob, GlobBuilder, GlobMatcher};

use crate::error::{AgentIdError, GlobError};

/// Longest accepted agent id (and agent glob), in bytes.
///
/// Agent ids are names an operator chooses (`ops/release-manager`); they are
/// written into every audit record and every denial message, and matched
/// against every glob of the covering rules. 128 bytes is far more than a
/// readable id needs and keeps those costs small and bounded whoever supplies
/// the id.
pub const MAX_AGENT_ID_LEN: usize = 128;

/// The identity of an agent, e.g. `ops/release-manager`.
///
/// `/`-separated segments of `[A-Za-z0-9._-]`; no empty, `.` or `..` segment;
/// at most [`MAX_AGENT_ID_LEN`] bytes. [`AgentId::parse`] is the only
/// constructor, so every value is valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(Box<str>);

impl AgentId {
    /// Validates `id` and wraps it.
    ///
    /// # Errors
    /// The first problem found, naming the offending character and its byte
    /// position.
    pub fn parse(id: &str) -> Result<Self, AgentIdError> {
        if id.is_empty() {
            return Err(AgentIdError::Empty);
        }
        if id.len() > MAX_AGENT_ID_LEN {
            return Err(AgentIdError::TooLong {
                len: id.len(),
                max: MAX_AGENT_ID_LEN,
            });
        }
        for (pos, ch) in id.char_indices() {
            if !(is_agent_char(ch) || ch == '/') {
                return Err(AgentIdError::InvalidChar { ch, pos });
            }
        }
        for (pos, seg) in segments_with_pos(id) {
            match seg {
                "" => return Err(AgentIdError::EmptySegment { pos }),
                "." => return Err(AgentIdError::DotSegment { segment: ".", pos }),
                ".." => return Err(AgentIdError::DotSegment { segment: "..", pos }),
                _ => {}
            }
        }
        Ok(Self(id.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for AgentId {
    type Err = AgentIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for AgentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A glob over agent ids, as written in `allowed_agents` / `denied_agents`.
///
/// `*` and `?` match within one segment (they never cross `/`); a whole
/// segment `**` matches any number of segments: `ops/*` matches `ops/a` but
/// not `ops/a/b`, `ops/**` matches both, `*` alone matches only one-segment
/// ids. Character classes and alternations are not accepted.
#[derive(Debug, Clone)]
pub struct AgentGlob {
    text: Box<str>,
    glob: Glob,
    /// Compiled on the first [`AgentGlob::is_match`]: evaluation goes
    /// through each rule's glob set, so most globs never need their own
    /// matcher, and compiling one (a regex) is the costly part of loading
    /// a policy.
    matcher: OnceLock<GlobMatcher>,
}

impl AgentGlob {
    /// Validates and compiles a glob.
    ///
    /// # Errors
    /// The first problem found, with its byte position.
    pub fn parse(text: &str) -> Result<Self, GlobError> {
        if text.is_empty() {
            return Err(GlobError::Empty);
        }
        if text.len() > MAX_AGENT_ID_LEN {
            return Err(GlobError::TooLong {
                len: text.len(),
                max: MAX_AGENT_ID_LEN,
            });
        }
        for (pos, ch) in text.char_indices() {
            if !(is_agent_char(ch) || matches!(ch, '/' | '*' | '?')) {
                return Err(GlobError::InvalidChar { ch, pos });
            }
        }
        for (pos, seg) in segments_with_pos(text) {
            match seg {
                "" => return Err(GlobError::EmptySegment { pos }),
                "." => return Err(GlobError::DotSegment { segment: ".", pos }),
                ".." => return Err(GlobError::DotSegment { segment: "..", pos }),
                "**" => {}
                _ => {
                    if let Some(off) = seg.find("**") {
                        return Err(GlobError::PartialRecursive { pos: pos + off });
                    }
                }
            }
        }
        let glob = GlobBuilder::new(text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| GlobError::Globset(e.kind().to_string()))?;
        Ok(Self {
            text: text.into(),
            glob,
            matcher: OnceLock::new(),
        })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `agent` matches.
    pub fn is_match(&self, agent: &AgentId) -> bool {
        self.matcher
            .get_or_init(|| self.glob.compile_matcher())
            .is_match(agent.as_str())
    }

    pub(crate) fn glob(&self) -> &Glob {
        &self.glob
    }
}

impl fmt::Display for AgentGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for AgentGlob {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for AgentGlob {}

fn is_agent_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-')
}

/// `/`-separated segments with the byte offset each starts at.
fn segments_with_pos(s: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    s.split('/').map(move |seg| {
        let pos = start;
        start += seg.len() + 1;
        (pos, seg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AgentId {
        AgentId::parse(s).unwrap()
    }

    #[test]
    fn valid_ids() {
        for s in ["ops", "ops/release-manager", "a.b/c_d/E-9", "x/..y", "..a"] {
            assert_eq!(id(s).as_str(), s);
        }
    }

    #[test]
    fn invalid_ids_name_char_and_position() {
        assert_eq!(AgentId::parse(""), Err(AgentIdError::Empty));
        assert_eq!(
            AgentId::parse("ops/bad name"),
            Err(AgentIdError::InvalidChar { ch: ' ', pos: 7 })
        );
        assert_eq!(
            AgentId::parse("ops/\0"),
            Err(AgentIdError::InvalidChar { ch: '\0', pos: 4 })
        );
        assert_eq!(
            AgentId::parse("ops//a"),
            Err(AgentIdError::EmptySegment { pos: 4 })
        );
        assert_eq!(
            AgentId::parse("/ops"),
            Err(AgentIdError::EmptySegment { pos: 0 })
        );
        assert_eq!(
            AgentId::parse("ops/"),
            Err(AgentIdError::EmptySegment { pos: 4 })
        );
        assert_eq!(
            AgentId::parse("ops/../x"),
            Err(AgentIdError::DotSegment {
                segment: "..",
                pos: 4
            })
        );
        assert_eq!(
            AgentId::parse("./x"),
            Err(AgentIdError::DotSegment {
                segment: ".",
                pos: 0
            })
        );
        assert_eq!(
            AgentId::parse("ops/é"),
            Err(AgentIdError::InvalidChar { ch: 'é', pos: 4 })
        );
        let long = "a".repeat(MAX_AGENT_ID_LEN + 1);
        assert_eq!(
            AgentId::parse(&long),
            Err(AgentIdError::TooLong {
                len: MAX_AGENT_ID_LEN + 1,
                max: MAX_AGENT_ID_LEN
            })
        );
        assert!(AgentId::parse(&long[1..]).is_ok());
        let msg = AgentId::parse("ops/bad name").unwrap_err().to_string();
        assert!(msg.contains("' '") && msg.contains("byte 7"), "{msg}");
    }

    #[test]
    fn glob_semantics() {
        let g = |s: &str| AgentGlob::parse(s).unwrap();
        assert!(g("ops/**").is_match(&id("ops/a/b")));
        assert!(g("ops/**").is_match(&id("ops/a")));
        assert!(!g("ops/**").is_match(&id("ops")));
        assert!(!g("ops/**").is_match(&id("opsx/a")));
        assert!(g("ops/*").is_match(&id("ops/a")));
        assert!(!g("ops/*").is_match(&id("ops/a/b")));
        assert!(!g("*").is_match(&id("ops/a")));
        assert!(g("*").is_match(&id("ops")));
        assert!(g("**").is_match(&id("ops/a/b")));
        assert!(g("ops/release-*").is_match(&id("ops/release-manager")));
        assert!(!g("ops/release-*").is_match(&id("ops/deploy")));
        assert!(g("ops/?").is_match(&id("ops/a")));
        assert!(!g("ops/?").is_match(&id("ops/ab")));
        assert!(g("ops/intern").is_match(&id("ops/intern")));
        assert!(!g("ops/intern").is_match(&id("ops/intern2")));
        assert!(g("**/intern").is_match(&id("ops/x/intern")));
    }

    #[test]
    fn bad_globs() {
        assert_eq!(AgentGlob::parse("").unwrap_err(), GlobError::Empty);
        assert_eq!(
            AgentGlob::parse("ops/[ab]").unwrap_err(),
            GlobError::InvalidChar { ch: '[', pos: 4 }
        );
        assert_eq!(
            AgentGlob::parse("ops/{a,b}").unwrap_err(),
            GlobError::InvalidChar { ch: '{', pos: 4 }
        );
        assert_eq!(
            AgentGlob::parse("ops/a**").unwrap_err(),
            GlobError::PartialRecursive { pos: 5 }
        );
        assert_eq!(
            AgentGlob::parse("ops/***").unwrap_err(),
            GlobError::PartialRecursive { pos: 4 }
        );
        assert_eq!(
            AgentGlob::parse("ops//x").unwrap_err(),
            GlobError::EmptySegment { pos: 4 }
        );
        assert_eq!(
            AgentGlob::parse("ops/..").unwrap_err(),
            GlobError::DotSegment {
                segment: "..",
                pos: 4
            }
        );
    }
}
