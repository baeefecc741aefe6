//! Checking a skill's declared needs before it runs.
//!
//! A skill may declare the secret paths it needs (see the `agentsec-skill`
//! SDK's `needs!`). Before the run, each need is checked for the agent and
//! the skill:
//!
//! - a need without `*` is met when [`Policy::evaluate`] grants that exact
//!   path (whether or not it exists, as for a real call);
//! - a need with `*` segments means "one of these, chosen at run time": it is
//!   met when at least one existing secret node it matches is granted. When
//!   it is not met, the refusal reads the same whether matching secrets exist
//!   or not, and names no path but the need itself: a denied agent learns
//!   nothing about the store's names from it.
//!
//! A need is met when the path is granted at any access level (evaluated as
//! [`Operation::List`], which every level permits): what the skill may do
//! with it (read it, or have the host use it) is decided per call.
//!
//! A declaration never grants anything: every call is still evaluated.

use std::fmt;

use crate::agent::AgentId;
use crate::eval::{Decision, DenialReason};
use crate::path::{PathPattern, PatternSegment, SecretPath};
use crate::policy::Policy;
use crate::rule::{Operation, RuleRef};
use crate::skill::SkillRef;

/// A declared need the policy does not grant.
#[derive(Debug, Clone)]
pub struct UnmetNeed<'p> {
    /// The need as declared.
    pub need: PathPattern,
    /// The rule that decided (a deny, or the rule whose `skills` exclude the
    /// skill), for the audit record; `None` when nothing granted it.
    pub rule: Option<RuleRef<'p>>,
    message: String,
}

impl fmt::Display for UnmetNeed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The literal path a need without `*` names.
fn literal(need: &PathPattern) -> Option<SecretPath> {
    let segs: Option<Vec<&str>> = need
        .segments()
        .iter()
        .map(|s| match s {
            PatternSegment::Literal(l) => Some(&**l),
            PatternSegment::Any => None,
        })
        .collect();
    SecretPath::from_segments(segs?).ok()
}

/// What to add when no rule grants `path`.
fn suggestion(reason: &DenialReason<'_>, need: &PathPattern, agent: &AgentId) -> String {
    match reason {
        DenialReason::NoGrant { nearest: None } => format!(
            "; for example `{need}: {{allowed_agents: [{agent}]}}` under access_control.secrets"
        ),
        _ => String::new(),
    }
}

impl Policy {
    /// The declared `needs` of `skill` that this policy does not grant
    /// `agent` (see the module docs for the rule). `known` lists the secret
    /// paths that exist (the store's leaves); only needs with `*` use it.
    pub fn unmet_needs<'p>(
        &'p self,
        agent: &AgentId,
        skill: &SkillRef,
        needs: &[PathPattern],
        known: &[SecretPath],
    ) -> Vec<UnmetNeed<'p>> {
        let mut out = Vec::new();
        for need in needs {
            let head = format!("skill `{}` declares that it needs `{need}`", skill.name());
            let (rule, message) = if let Some(path) = literal(need) {
                // Decided by the policy alone, exactly as a call to that path
                // would be: the store is not consulted.
                match self.evaluate(agent, skill, &path, Operation::List) {
                    Decision::Allow(_) => continue,
                    Decision::Deny(denial) => {
                        let why = format!("{denial}{}", suggestion(&denial.reason(), need, agent));
                        // Re-borrowed from `self`: the denial also borrows `skill`.
                        let rule = denial
                            .rule()
                            .and_then(|r| self.rules.get(r.index()))
                            .map(RuleRef::new);
                        (rule, format!("{head}: {why}"))
                    }
                }
            } else {
                // Met when an existing node it matches is granted. When none
                // is, the answer must not depend on which matching names
                // exist (or whether any does): a denied agent learns nothing
                // about the store, and no path it may not read is named.
                let granted = known
                    .iter()
                    .filter(|k| need.covers(k))
                    .filter_map(|k| SecretPath::from_segments(k.segments().take(need.len())).ok())
                    .any(|node| {
                        matches!(
                            self.evaluate(agent, skill, &node, Operation::List),
                            Decision::Allow(_)
                        )
                    });
                if granted {
                    continue;
                }
                let unnamed = if skill.is_named() {
                    String::new()
                } else {
                    format!(
                        "; component `{}` was not loaded from a skills directory, so `skills:` entries count only by its digest `{}`",
                        skill.name(),
                        skill.digest()
                    )
                };
                (
                    None,
                    format!(
                        "{head}, but no secret it matches is granted to agent `{agent}` (or none exists); grant one with a rule such as `{need}: {{allowed_agents: [{agent}]}}` under access_control.secrets{unnamed}"
                    ),
                )
            };
            out.push(UnmetNeed {
                need: need.clone(),
                rule,
                message,
            });
        }
        out
    }
}
