//! Checking a skill's declared needs before it runs.
//!
//! A skill may declare the secret paths it needs (see the `agentsec-skill`
//! SDK's `needs!`). Before the run, each need is checked for the agent and
//! the skill:
//!
//! - a need without `*` is met when [`Policy::evaluate`] grants that exact
//!   path (whether or not it exists, as for a real call);
//! - a need with `*` segments means "one of these, chosen at run time": it is
//!   met when at least one existing secret node it matches is granted.
//!
//! A declaration never grants anything: every call is still evaluated.

use std::fmt;

use crate::agent::AgentId;
use crate::eval::{Decision, DenialReason};
use crate::path::{PathPattern, PatternSegment, SecretPath};
use crate::policy::Policy;
use crate::rule::RuleRef;
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
            let candidates: Vec<SecretPath> = match literal(need) {
                Some(path) => vec![path],
                None => {
                    let mut nodes: Vec<SecretPath> = Vec::new();
                    for k in known.iter().filter(|k| need.covers(k)) {
                        if let Ok(node) = SecretPath::from_segments(k.segments().take(need.len()))
                            && !nodes.contains(&node)
                        {
                            nodes.push(node);
                        }
                    }
                    nodes
                }
            };
            let mut first_denial = None;
            let mut granted = false;
            for path in &candidates {
                match self.evaluate(agent, skill, path) {
                    Decision::Allow(_) => {
                        granted = true;
                        break;
                    }
                    Decision::Deny(denial) => {
                        if first_denial.is_none() {
                            let reason = denial.reason();
                            first_denial = Some((
                                denial.rule().map(|r| r.index()),
                                format!("{denial}{}", suggestion(&reason, need, agent)),
                            ));
                        }
                    }
                }
            }
            if granted {
                continue;
            }
            let head = format!("skill `{}` declares that it needs `{need}`", skill.name());
            let first_denial = first_denial
                .map(|(index, why)| (index.and_then(|i| self.rules.get(i)).map(RuleRef::new), why));
            let (rule, message) = match (first_denial, candidates.len()) {
                (None, _) => (
                    None,
                    format!("{head}, but no secret in the store matches it"),
                ),
                (Some((rule, why)), 1) if literal(need).is_some() => {
                    (rule, format!("{head}: {why}"))
                }
                (Some((rule, why)), n) => (
                    rule,
                    format!(
                        "{head}, and none of the {n} matching secrets is granted; for example: {why}"
                    ),
                ),
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
