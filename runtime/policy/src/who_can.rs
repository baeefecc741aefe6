//! `policy who-can`: the agent patterns allowed and denied for one path.

use crate::agent::AgentGlob;
use crate::contain::{glob_contains, patterns_overlap};
use crate::path::{PathPattern, SecretPath};
use crate::policy::Policy;
use crate::rule::{Rule, RuleRef};

/// Whether a glob grants or refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Effect {
    /// An entry of `allowed_agents`.
    Allow,
    /// An entry of `denied_agents` (always wins).
    Deny,
}

impl Effect {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// Where a rule applies relative to the asked path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// The rule covers the path (and so everything below it).
    Whole,
    /// The rule's key is below the path: it applies to part of the subtree.
    Below,
}

/// One agent pattern of [`WhoCan`].
#[derive(Debug, Clone)]
pub struct WhoCanEntry<'p> {
    /// The glob as written.
    pub glob: &'p AgentGlob,
    /// Allow or deny.
    pub effect: Effect,
    /// The rule it belongs to (access level and `skills` are the rule's).
    pub rule: RuleRef<'p>,
    /// Whether the rule covers the path or only part of what is below it.
    pub scope: Scope,
    /// For an allow: a deny, covering the path, that matches every agent
    /// this glob matches, so the allow grants nothing here.
    pub shadowed_by: Option<RuleRef<'p>>,
}

/// The answer of [`Policy::who_can`].
#[derive(Debug, Clone)]
pub struct WhoCan<'p> {
    /// Allow entries first, then deny entries; within each, the most
    /// specific rule first (the order evaluation prefers them in).
    pub entries: Vec<WhoCanEntry<'p>>,
}

impl Policy {
    /// The agent patterns allowed and denied for `path`, with their rules.
    ///
    /// Reasons over patterns, not concrete agents: an agent matching an
    /// allow entry (with [`Scope::Whole`]) may read the path unless it also
    /// matches a deny entry with [`Scope::Whole`]. Rules keyed below the path
    /// are listed with [`Scope::Below`].
    pub fn who_can<'p>(&'p self, path: &SecretPath) -> WhoCan<'p> {
        let as_pattern = PathPattern::parse(&path.to_string()).ok();
        let mut rules: Vec<(&Rule, Scope)> =
            self.rules
                .iter()
                .filter_map(|r| {
                    if r.pattern.covers(path) {
                        Some((r, Scope::Whole))
                    } else if as_pattern.as_ref().is_some_and(|p| {
                        r.pattern.len() > p.len() && patterns_overlap(&r.pattern, p)
                    }) {
                        Some((r, Scope::Below))
                    } else {
                        None
                    }
                })
                .collect();
        rules.sort_by(|(a, sa), (b, sb)| {
            (*sa != Scope::Whole)
                .cmp(&(*sb != Scope::Whole))
                .then_with(|| {
                    if a.more_specific_than(b) {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    }
                })
        });
        let whole_denies: Vec<(&Rule, &AgentGlob)> = rules
            .iter()
            .filter(|(_, s)| *s == Scope::Whole)
            .flat_map(|(r, _)| r.denied.globs.iter().map(move |g| (*r, g)))
            .collect();
        let mut entries = Vec::new();
        for (effect, list) in [(Effect::Allow, false), (Effect::Deny, true)] {
            for &(rule, scope) in &rules {
                let globs = if list {
                    &rule.denied.globs
                } else {
                    &rule.allowed.globs
                };
                for glob in globs {
                    let shadowed_by = match (effect, scope) {
                        (Effect::Allow, Scope::Whole) => whole_denies
                            .iter()
                            .find(|(_, d)| glob_contains(d, glob))
                            .map(|(r, _)| RuleRef::new(r)),
                        _ => None,
                    };
                    entries.push(WhoCanEntry {
                        glob,
                        effect,
                        rule: RuleRef::new(rule),
                        scope,
                        shadowed_by,
                    });
                }
            }
        }
        WhoCan { entries }
    }
}
