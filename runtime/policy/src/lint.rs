//! `policy check` warnings: a policy that loads, but probably does not say
//! what its author meant.

use std::fmt;

use crate::agent::{AgentGlob, AgentId};
use crate::contain::{glob_contains, matches_every_agent, pattern_contains};
use crate::error::Location;
use crate::identity::IdentityMode;
use crate::path::SecretPath;
use crate::policy::Policy;
use crate::rule::RuleRef;
use crate::skill::{SkillName, SkillSelector};

/// A warning from [`Policy::lint`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Warning<'p> {
    /// The rule's key matches no secret of the store (a typo, or a secret
    /// not created yet).
    MissingPath {
        /// The rule.
        rule: RuleRef<'p>,
    },
    /// No rule covers this secret: nobody may read it (deny by default).
    Uncovered {
        /// The secret.
        path: SecretPath,
    },
    /// An `allowed_agents` glob that grants nothing: a deny covering the
    /// rule's whole key matches every agent it matches.
    ShadowedAllow {
        /// The allowing rule.
        rule: RuleRef<'p>,
        /// Its glob.
        glob: &'p AgentGlob,
        /// The denying rule.
        by: RuleRef<'p>,
        /// The deny glob.
        deny: &'p AgentGlob,
    },
    /// A glob that matches every agent id.
    MatchesEveryAgent {
        /// The rule.
        rule: RuleRef<'p>,
        /// The glob.
        glob: &'p AgentGlob,
        /// Whether it is in `denied_agents` (else `allowed_agents`).
        denied: bool,
    },
    /// `audit: false`, which agentsec ignores: every access is audited.
    AuditFalse {
        /// The rule.
        rule: RuleRef<'p>,
    },
    /// A `skills:` entry that grants by name only: it counts only for a
    /// component loaded from the operator's skills directory, so whoever
    /// controls that directory's file of that name gets the rule's secrets.
    /// `agentsec policy pin` replaces it with the component's digest.
    NameOnlySkill {
        /// The rule (it grants to at least one agent).
        rule: RuleRef<'p>,
        /// The name entry.
        name: &'p SkillName,
    },
    /// An `allowed_agents` entry that no `agents:` binding covers while the policy's
    /// identity mode is optional: anyone who can reach the host can act as it. Reported
    /// once per entry text, at its first rule.
    UnboundAgent {
        /// The first rule that names it.
        rule: RuleRef<'p>,
        /// The entry (an agent id, or a glob that bindings of exact ids cannot cover).
        glob: &'p AgentGlob,
    },
}

impl Warning<'_> {
    /// A stable identifier of the kind of warning (for `--format json`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingPath { .. } => "missing-path",
            Self::Uncovered { .. } => "uncovered-secret",
            Self::ShadowedAllow { .. } => "shadowed-allow",
            Self::MatchesEveryAgent { .. } => "matches-every-agent",
            Self::AuditFalse { .. } => "audit-false",
            Self::NameOnlySkill { .. } => "name-only-skill",
            Self::UnboundAgent { .. } => "unbound-agent",
        }
    }

    /// Where in a policy file, if the warning is about a rule.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::MissingPath { rule }
            | Self::ShadowedAllow { rule, .. }
            | Self::MatchesEveryAgent { rule, .. }
            | Self::AuditFalse { rule }
            | Self::NameOnlySkill { rule, .. }
            | Self::UnboundAgent { rule, .. } => Some(rule.location()),
            Self::Uncovered { .. } => None,
        }
    }
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingPath { rule } => write!(
                f,
                "rule `{}` matches no secret in the secrets file",
                rule.pattern()
            ),
            Self::Uncovered { path } => write!(
                f,
                "secret `{path}` is covered by no rule, so no agent may read it"
            ),
            Self::ShadowedAllow {
                rule,
                glob,
                by,
                deny,
            } => write!(
                f,
                "`{glob}` in allowed_agents of rule `{}` grants nothing: `{deny}` in denied_agents of rule {by} matches every agent it matches, and a deny always wins",
                rule.pattern()
            ),
            Self::MatchesEveryAgent {
                rule,
                glob,
                denied: false,
            } => write!(
                f,
                "`{glob}` in allowed_agents of rule `{}` matches every agent",
                rule.pattern()
            ),
            Self::MatchesEveryAgent {
                rule,
                glob,
                denied: true,
            } => write!(
                f,
                "`{glob}` in denied_agents of rule `{}` matches every agent: nobody may read anything under it",
                rule.pattern()
            ),
            Self::AuditFalse { rule } => write!(
                f,
                "rule `{}` sets `audit: false`, which has no effect: agentsec audits every access",
                rule.pattern()
            ),
            Self::NameOnlySkill { rule, name } => write!(
                f,
                "rule `{}` grants its secrets to skill `{name}` by name only: the name counts for any component of that name in the skills directory; pin the component with `agentsec policy pin POLICY {}.wasm` (a `sha256:` entry)",
                rule.pattern(),
                name.as_str().replace('-', "_")
            ),
            Self::UnboundAgent { rule, glob } => {
                if glob.as_str().contains(['*', '?', '[', '{']) {
                    write!(
                        f,
                        "`{glob}` in allowed_agents of rule `{}` is a glob, and no `agents:` binding proves who may act as the ids it matches: anyone who can reach the host can act as them; list the ids and bind each under `agents:` (with `identity: required`)",
                        rule.pattern()
                    )
                } else {
                    write!(
                        f,
                        "agent `{glob}` (allowed_agents of rule `{}`) is not bound under `agents:`: anyone who can reach the host can act as it; bind it, e.g. `{glob}: {{ unix_users: [USER] }}`, and set `identity: required`",
                        rule.pattern()
                    )
                }
            }
        }
    }
}

impl Policy {
    /// Warnings about a valid policy, rule by rule in load order: allows a
    /// deny shadows, globs matching every agent, `audit: false`, `skills`
    /// entries that grant by name only. With
    /// `known` (every secret path of the store), also rules that match no
    /// secret and secrets no rule covers (those come last, in store order).
    pub fn lint<'p>(&'p self, known: Option<&[SecretPath]>) -> Vec<Warning<'p>> {
        let mut out = Vec::new();
        for rule in &self.rules {
            let r = RuleRef::new(rule);
            if let Some(known) = known
                && !known.iter().any(|k| rule.pattern.covers(k))
            {
                out.push(Warning::MissingPath { rule: r });
            }
            for glob in &rule.allowed.globs {
                let by = self.rules.iter().find_map(|d| {
                    if !pattern_contains(&d.pattern, &rule.pattern) {
                        return None;
                    }
                    d.denied
                        .globs
                        .iter()
                        .find(|dg| glob_contains(dg, glob))
                        .map(|dg| (d, dg))
                });
                if let Some((d, deny)) = by {
                    out.push(Warning::ShadowedAllow {
                        rule: r,
                        glob,
                        by: RuleRef::new(d),
                        deny,
                    });
                }
            }
            for (globs, denied) in [(&rule.allowed.globs, false), (&rule.denied.globs, true)] {
                for glob in globs.iter().filter(|g| matches_every_agent(g)) {
                    out.push(Warning::MatchesEveryAgent {
                        rule: r,
                        glob,
                        denied,
                    });
                }
            }
            if !rule.audit {
                out.push(Warning::AuditFalse { rule: r });
            }
            if !rule.allowed_is_empty() {
                for skill in &rule.skills {
                    if let SkillSelector::Name(name) = skill {
                        out.push(Warning::NameOnlySkill { rule: r, name });
                    }
                }
            }
        }
        if self.identity_mode() == IdentityMode::Optional {
            self.lint_unbound(&mut out);
        }
        if let Some(known) = known {
            for path in known {
                if !self.rules.iter().any(|r| r.pattern.covers(path)) {
                    out.push(Warning::Uncovered { path: path.clone() });
                }
            }
        }
        out
    }

    /// [`Warning::UnboundAgent`] for every distinct `allowed_agents` entry no binding covers.
    fn lint_unbound<'p>(&'p self, out: &mut Vec<Warning<'p>>) {
        let mut seen = std::collections::HashSet::new();
        for rule in &self.rules {
            for glob in &rule.allowed.globs {
                let bound = AgentId::parse(glob.as_str())
                    .is_ok_and(|id| !glob.as_str().contains('*') && self.binding(&id).is_some());
                if !bound && seen.insert(glob.as_str()) {
                    out.push(Warning::UnboundAgent {
                        rule: RuleRef::new(rule),
                        glob,
                    });
                }
            }
        }
    }
}
