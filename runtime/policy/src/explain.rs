//! `policy explain`: what one agent may read, which rule grants it, and what
//! a deny takes away.

use globset::Candidate;

use crate::agent::AgentId;
use crate::contain::{pattern_contains, patterns_overlap};
use crate::path::SecretPath;
use crate::policy::Policy;
use crate::rule::{Rule, RuleRef};
use crate::skill::{SkillName, SkillSelector};

/// Which skill `explain` (and the needs check) reasons about.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum SkillFilter<'a> {
    /// Any skill: a rule scoped by `skills:` counts, and the grant shows the
    /// scope ([`RuleRef::skills`] of its rule).
    Any,
    /// The skill with this name. Rules scoped only by `sha256:` digests do
    /// not apply (a name does not identify a component's bytes).
    Named(&'a SkillName),
}

impl SkillFilter<'_> {
    fn admits(&self, rule: &Rule) -> bool {
        match self {
            Self::Any => true,
            Self::Named(name) => {
                rule.skills.is_empty()
                    || rule
                        .skills
                        .iter()
                        .any(|s| matches!(s, SkillSelector::Name(n) if n == *name))
            }
        }
    }
}

/// One thing the agent may read.
#[derive(Debug, Clone)]
pub struct ExplainedGrant<'p> {
    /// A rule key (pattern mode) or a secret path (leaf mode), canonical.
    pub path: String,
    /// The rule that grants it (the most specific one, as evaluation
    /// attributes it); its access level and `skills` apply.
    pub rule: RuleRef<'p>,
    /// Pattern mode: deny rules matching the agent that remove part of the
    /// grant (their keys overlap it without covering all of it).
    pub except: Vec<RuleRef<'p>>,
}

/// Something a deny takes away from the agent.
#[derive(Debug, Clone)]
pub struct ExplainedDenial<'p> {
    /// The deny rule's key (pattern mode) or a secret path (leaf mode).
    pub path: String,
    /// The rule whose `denied_agents` matches the agent.
    pub rule: RuleRef<'p>,
    /// The allowing rules the deny overrides (pattern mode: every allow for
    /// the agent whose key overlaps the deny; leaf mode: the rule that would
    /// grant the path without the deny). Empty when nothing else grants it.
    pub overrides: Vec<RuleRef<'p>>,
}

/// The answer of [`Policy::explain`].
#[derive(Debug, Clone)]
pub struct Explanation<'p> {
    /// What the agent may read, in policy order (pattern mode) or secrets
    /// file order (leaf mode).
    pub grants: Vec<ExplainedGrant<'p>>,
    /// What a deny removes.
    pub denials: Vec<ExplainedDenial<'p>>,
}

impl Policy {
    /// What `agent`, running a skill that `skill` selects, may read.
    ///
    /// Without `leaves` (pattern mode), reasons over rule keys: every rule
    /// whose `allowed_agents` match the agent is a grant, unless a deny rule
    /// matching the agent covers its whole key; denies covering part of it
    /// are listed in [`ExplainedGrant::except`]. With `leaves` (the secret
    /// paths of a store), evaluates each one exactly as [`Policy::evaluate`]
    /// does. With [`SkillFilter::Any`], a path is granted when some skill
    /// may read it; a rule without `skills:` is preferred as the reason.
    pub fn explain<'p>(
        &'p self,
        agent: &AgentId,
        skill: SkillFilter<'_>,
        leaves: Option<&[SecretPath]>,
    ) -> Explanation<'p> {
        match leaves {
            Some(leaves) => self.explain_leaves(agent, skill, leaves),
            None => self.explain_patterns(agent, skill),
        }
    }

    fn explain_patterns<'p>(&'p self, agent: &AgentId, skill: SkillFilter<'_>) -> Explanation<'p> {
        let candidate = Candidate::from_bytes(agent.as_str().as_bytes());
        let denies: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.denied.is_match(&candidate))
            .collect();
        let allows: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.allowed.is_match(&candidate) && skill.admits(r))
            .collect();
        let grants = allows
            .iter()
            .filter(|a| {
                !denies
                    .iter()
                    .any(|d| pattern_contains(&d.pattern, &a.pattern))
            })
            .map(|a| ExplainedGrant {
                path: a.pattern.to_string(),
                rule: RuleRef::new(a),
                except: denies
                    .iter()
                    .filter(|d| patterns_overlap(&d.pattern, &a.pattern))
                    .map(|d| RuleRef::new(d))
                    .collect(),
            })
            .collect();
        let denials = denies
            .iter()
            .map(|d| ExplainedDenial {
                path: d.pattern.to_string(),
                rule: RuleRef::new(d),
                overrides: allows
                    .iter()
                    .filter(|a| patterns_overlap(&d.pattern, &a.pattern))
                    .map(|a| RuleRef::new(a))
                    .collect(),
            })
            .collect();
        Explanation { grants, denials }
    }

    fn explain_leaves<'p>(
        &'p self,
        agent: &AgentId,
        skill: SkillFilter<'_>,
        leaves: &[SecretPath],
    ) -> Explanation<'p> {
        let mut grants = Vec::new();
        let mut denials = Vec::new();
        for leaf in leaves {
            let (granted, denied) = self.decide_for(agent, skill, leaf);
            if let Some(rule) = denied {
                let candidate = Candidate::from_bytes(agent.as_str().as_bytes());
                let mut would: Option<&Rule> = None;
                for r in &self.rules {
                    if r.pattern.covers(leaf)
                        && r.allowed.is_match(&candidate)
                        && skill.admits(r)
                        && would.is_none_or(|w| r.more_specific_than(w))
                    {
                        would = Some(r);
                    }
                }
                denials.push(ExplainedDenial {
                    path: leaf.to_string(),
                    rule: RuleRef::new(rule),
                    overrides: would.map(RuleRef::new).into_iter().collect(),
                });
            } else if let Some(rule) = granted {
                grants.push(ExplainedGrant {
                    path: leaf.to_string(),
                    rule: RuleRef::new(rule),
                    except: Vec::new(),
                });
            }
        }
        Explanation { grants, denials }
    }

    /// The granting and the denying rule for one path, as evaluation decides.
    pub(crate) fn decide_for<'p>(
        &'p self,
        agent: &AgentId,
        skill: SkillFilter<'_>,
        path: &SecretPath,
    ) -> (Option<&'p Rule>, Option<&'p Rule>) {
        let c = match skill {
            // Prefer a grant that holds for every skill.
            SkillFilter::Any => {
                let c = self.covering(agent, path, &|r| r.skills.is_empty());
                if c.allowed.is_some() || c.denied.is_some() {
                    c
                } else {
                    self.covering(agent, path, &|_| true)
                }
            }
            SkillFilter::Named(_) => self.covering(agent, path, &|r| skill.admits(r)),
        };
        (c.allowed, c.denied)
    }
}
