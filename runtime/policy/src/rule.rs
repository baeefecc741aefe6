//! One access rule, its access level, and the read-only view of it.

use std::borrow::Cow;
use std::fmt;

use globset::{Candidate, GlobSet, GlobSetBuilder};

use crate::agent::AgentGlob;
use crate::error::{AccessLevelError, GlobError, Location};
use crate::path::PathPattern;
use crate::skill::{SkillRef, SkillSelector};

/// Longest accepted `access_level` identifier, in bytes.
///
/// The level is written into every audit record; known levels are a few
/// bytes, and 32 leaves room for custom ones without letting a policy bloat
/// every record.
pub const MAX_ACCESS_LEVEL_LEN: usize = 32;

/// What a grant lets the skill do with the secret; recorded in every audit
/// record and enforced wherever the host mediates the use.
///
/// Known levels are `readonly` (the default), `read-write` and `post`. Any
/// other identifier `[a-z][a-z0-9_-]*` is accepted and recorded as written
/// ([`is_known`](Self::is_known) is then false).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessLevel(Cow<'static, str>);

impl AccessLevel {
    /// `readonly`: the value may be read. The default.
    pub const READONLY: AccessLevel = AccessLevel(Cow::Borrowed("readonly"));
    /// `read-write`: the value may be read and written.
    pub const READ_WRITE: AccessLevel = AccessLevel(Cow::Borrowed("read-write"));
    /// `post`: the value may be used to post (e.g. a webhook).
    pub const POST: AccessLevel = AccessLevel(Cow::Borrowed("post"));

    /// Parses an identifier `[a-z][a-z0-9_-]*`.
    ///
    /// # Errors
    /// Empty, too long, or the first invalid character with its position.
    pub fn parse(text: &str) -> Result<Self, AccessLevelError> {
        for known in [Self::READONLY, Self::READ_WRITE, Self::POST] {
            if known.as_str() == text {
                return Ok(known);
            }
        }
        if text.is_empty() {
            return Err(AccessLevelError::Empty);
        }
        if text.len() > MAX_ACCESS_LEVEL_LEN {
            return Err(AccessLevelError::TooLong {
                len: text.len(),
                max: MAX_ACCESS_LEVEL_LEN,
            });
        }
        for (pos, ch) in text.char_indices() {
            let ok = ch.is_ascii_lowercase()
                || (pos > 0 && (ch.is_ascii_digit() || ch == '_' || ch == '-'));
            if !ok {
                return Err(AccessLevelError::InvalidChar { ch, pos });
            }
        }
        Ok(Self(Cow::Owned(text.to_owned())))
    }

    /// The level as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `readonly`, `read-write` or `post`.
    pub fn is_known(&self) -> bool {
        matches!(self.as_str(), "readonly" | "read-write" | "post")
    }
}

impl Default for AccessLevel {
    fn default() -> Self {
        Self::READONLY
    }
}

impl fmt::Display for AccessLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A list of agent globs compiled once into one matcher.
#[derive(Debug)]
pub(crate) struct GlobList {
    pub(crate) globs: Vec<AgentGlob>,
    set: GlobSet,
}

impl GlobList {
    pub(crate) fn new(globs: Vec<AgentGlob>) -> Result<Self, GlobError> {
        let mut b = GlobSetBuilder::new();
        for g in &globs {
            b.add(g.glob().clone());
        }
        let set = b
            .build()
            .map_err(|e| GlobError::Globset(e.kind().to_string()))?;
        Ok(Self { globs, set })
    }

    pub(crate) fn is_match(&self, agent: &Candidate<'_>) -> bool {
        !self.globs.is_empty() && self.set.is_match_candidate(agent)
    }
}

/// A parsed rule, before compilation.
#[derive(Debug)]
pub(crate) struct RuleDef {
    pub(crate) pattern: PathPattern,
    pub(crate) allowed: Vec<AgentGlob>,
    pub(crate) denied: Vec<AgentGlob>,
    pub(crate) access_level: AccessLevel,
    pub(crate) audit: bool,
    pub(crate) skills: Vec<SkillSelector>,
    pub(crate) at: Location,
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) pattern: PathPattern,
    pub(crate) allowed: GlobList,
    pub(crate) denied: GlobList,
    pub(crate) access_level: AccessLevel,
    pub(crate) audit: bool,
    pub(crate) skills: Vec<SkillSelector>,
    pub(crate) at: Location,
    /// Position in load order (files in the order given, rules in file order).
    pub(crate) order: usize,
    /// Literal segment count and total segment count.
    pub(crate) literals: usize,
}

impl Rule {
    pub(crate) fn compile(def: RuleDef, order: usize) -> Result<Self, GlobError> {
        Ok(Self {
            literals: def.pattern.literal_count(),
            pattern: def.pattern,
            allowed: GlobList::new(def.allowed)?,
            denied: GlobList::new(def.denied)?,
            access_level: def.access_level,
            audit: def.audit,
            skills: def.skills,
            at: def.at,
            order,
        })
    }

    pub(crate) fn allowed_is_empty(&self) -> bool {
        self.allowed.globs.is_empty()
    }

    pub(crate) fn applies_to_skill(&self, skill: &SkillRef) -> bool {
        self.skills.is_empty() || self.skills.iter().any(|s| s.matches(skill))
    }

    /// Whether `self` is more specific than `other`: more literal segments,
    /// then more segments, then earlier in load order.
    pub(crate) fn more_specific_than(&self, other: &Rule) -> bool {
        (
            self.literals,
            self.pattern.len(),
            std::cmp::Reverse(self.order),
        ) > (
            other.literals,
            other.pattern.len(),
            std::cmp::Reverse(other.order),
        )
    }
}

/// A read-only view of one rule: for denials, audit records and the
/// `policy explain / who-can / diff / check` commands.
#[derive(Clone, Copy)]
pub struct RuleRef<'p> {
    rule: &'p Rule,
}

impl<'p> RuleRef<'p> {
    pub(crate) fn new(rule: &'p Rule) -> Self {
        Self { rule }
    }

    /// The rule key.
    pub fn pattern(&self) -> &'p PathPattern {
        &self.rule.pattern
    }

    /// Where the rule key is written.
    pub fn location(&self) -> &'p Location {
        &self.rule.at
    }

    /// The policy file the rule comes from.
    pub fn origin(&self) -> &'p str {
        self.rule.at.origin()
    }

    /// The line of the rule key (1-based).
    pub fn line(&self) -> usize {
        self.rule.at.line()
    }

    /// `allowed_agents`, as written.
    pub fn allowed_agents(&self) -> &'p [AgentGlob] {
        &self.rule.allowed.globs
    }

    /// `denied_agents`, as written.
    pub fn denied_agents(&self) -> &'p [AgentGlob] {
        &self.rule.denied.globs
    }

    /// `access_level` (default `readonly`).
    pub fn access_level(&self) -> &'p AccessLevel {
        &self.rule.access_level
    }

    /// `audit` as written (default true). agentsec audits every access
    /// whatever this says; `policy check` warns when it is false.
    pub fn audit(&self) -> bool {
        self.rule.audit
    }

    /// `skills`; empty means the rule applies to every skill.
    pub fn skills(&self) -> &'p [SkillSelector] {
        &self.rule.skills
    }

    /// Position of the rule in load order (0-based).
    pub fn index(&self) -> usize {
        self.rule.order
    }
}

impl fmt::Display for RuleRef<'_> {
    /// `` `pattern` (origin:line) ``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` ({}:{})",
            self.rule.pattern,
            self.rule.at.origin(),
            self.rule.at.line()
        )
    }
}

impl fmt::Debug for RuleRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleRef")
            .field("pattern", &self.rule.pattern.to_string())
            .field("at", &self.rule.at.to_string())
            .finish()
    }
}

/// Writes globs or skills as `a, b, c`.
pub(crate) fn join<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_levels() {
        assert_eq!(AccessLevel::parse("readonly"), Ok(AccessLevel::READONLY));
        assert_eq!(AccessLevel::parse("post"), Ok(AccessLevel::POST));
        let custom = AccessLevel::parse("rotate_2").unwrap();
        assert!(!custom.is_known());
        assert_eq!(custom.as_str(), "rotate_2");
        assert_eq!(
            AccessLevel::parse("Read"),
            Err(AccessLevelError::InvalidChar { ch: 'R', pos: 0 })
        );
        assert_eq!(
            AccessLevel::parse("1x"),
            Err(AccessLevelError::InvalidChar { ch: '1', pos: 0 })
        );
        assert_eq!(AccessLevel::parse(""), Err(AccessLevelError::Empty));
        assert_eq!(AccessLevel::default(), AccessLevel::READONLY);
    }
}
