//! Checks made before a skill runs: its declared needs (`agentsec:needs`, see
//! [`agentsec_policy::needs`]) must all be granted.

use agentsec_audit::{AccessType, Decision, Record, RunContext};
use agentsec_broker::Broker;
use agentsec_policy::{AgentId, PathPattern, SecretPath};

use crate::engine::LoadedSkill;

/// Why a skill may not start.
pub(crate) enum NotStarted {
    /// The needs section is unreadable or names an invalid path (a broken skill), or the
    /// audit log failed: a configuration error.
    Invalid(String),
    /// Declared needs the policy does not grant: one line per need.
    NotGranted(Vec<String>),
}

/// Checks the skill's declared needs for `agent`; each unmet need is written to the audit
/// log as a `read` denied with detail `declared need not granted`.
pub(crate) fn check_declared_needs(
    skill: &LoadedSkill,
    agent: &AgentId,
    broker: &Broker,
    run: &RunContext,
) -> Result<(), NotStarted> {
    let declared = skill
        .declared_needs()
        .map_err(|e| NotStarted::Invalid(format!("skill `{}`: {e}", skill.name())))?;
    if declared.is_empty() {
        return Ok(());
    }
    let needs = declared
        .iter()
        .map(|n| {
            PathPattern::parse(n).map_err(|e| {
                NotStarted::Invalid(format!(
                    "skill `{}` declares an invalid need `{}`: {e}",
                    skill.name(),
                    n.escape_debug()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let known = if needs.iter().any(|n| n.literal_count() < n.len()) {
        broker.names().list(&SecretPath::root()).unwrap_or_default()
    } else {
        Vec::new()
    };
    let unmet = broker
        .policy()
        .unmet_needs(agent, skill.skill_ref(), &needs, &known);
    if unmet.is_empty() {
        return Ok(());
    }
    for need in &unmet {
        let path = need.need.to_string();
        let rule = need.rule.map(|r| r.pattern().to_string());
        broker
            .record_now(
                &Record::new(run, &path, AccessType::Read, Decision::Deny)
                    .rule(rule.as_deref())
                    .detail("declared need not granted"),
            )
            .map_err(|e| NotStarted::Invalid(format!("audit log: {e}")))?;
    }
    Err(NotStarted::NotGranted(
        unmet.iter().map(ToString::to_string).collect(),
    ))
}

impl LoadedSkill {
    /// Whether the policy grants `agent` every need this skill declares (as
    /// the check before a run decides it), without writing anything to the
    /// audit log: for a front end deciding which skills to offer an agent (MCP's
    /// tool list). A skill whose needs section is unreadable is not offered.
    pub fn needs_granted(&self, agent: &AgentId, broker: &Broker) -> bool {
        let Ok(declared) = self.declared_needs() else {
            return false;
        };
        if declared.is_empty() {
            return true;
        }
        let Ok(needs) = declared
            .iter()
            .map(|n| PathPattern::parse(n))
            .collect::<Result<Vec<_>, _>>()
        else {
            return false;
        };
        let known = if needs.iter().any(|n| n.literal_count() < n.len()) {
            broker.names().list(&SecretPath::root()).unwrap_or_default()
        } else {
            Vec::new()
        };
        broker
            .policy()
            .unmet_needs(agent, self.skill_ref(), &needs, &known)
            .is_empty()
    }
}
