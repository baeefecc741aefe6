//! Checks made before a skill runs that need the policy and the store
//! together: a skill's declared needs.

use agentsec_audit::{AccessType, AuditLog, Decision, Record, RunContext};
use agentsec_host::LoadedSkill;
use agentsec_policy::{AgentId, PathPattern, Policy};
use agentsec_sops::SopsStore;

/// Why a skill may not start.
pub enum Refusal {
    /// The needs section is unreadable or names an invalid path (a broken
    /// skill: configuration error).
    Invalid(String),
    /// Declared needs the policy does not grant: one line per need.
    NotGranted(Vec<String>),
}

/// Checks the skill's declared needs for `agent` (see
/// [`agentsec_policy::needs`]); each unmet need is written to the audit log
/// as a `read` denied with detail `declared need not granted`.
///
/// # Errors
/// [`Refusal::Invalid`] for an unreadable declaration or an audit failure,
/// [`Refusal::NotGranted`] when a need is not granted.
pub fn check_declared_needs(
    skill: &LoadedSkill,
    agent: &AgentId,
    policy: &Policy,
    store: &SopsStore,
    audit: &mut AuditLog,
    run_id: &str,
) -> Result<(), Refusal> {
    let declared = skill
        .declared_needs()
        .map_err(|e| Refusal::Invalid(format!("skill `{}`: {e}", skill.name())))?;
    if declared.is_empty() {
        return Ok(());
    }
    let needs = declared
        .iter()
        .map(|n| {
            PathPattern::parse(n).map_err(|e| {
                Refusal::Invalid(format!(
                    "skill `{}` declares an invalid need `{}`: {e}",
                    skill.name(),
                    n.escape_debug()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let known = if needs.iter().any(|n| n.literal_count() < n.len()) {
        store.paths()
    } else {
        Vec::new()
    };
    let unmet = policy.unmet_needs(agent, skill.skill_ref(), &needs, &known);
    if unmet.is_empty() {
        return Ok(());
    }
    let run = RunContext::new(agent.as_str(), skill.name(), skill.sha256(), run_id);
    for need in &unmet {
        let path = need.need.to_string();
        let rule = need.rule.map(|r| r.pattern().to_string());
        audit
            .append(
                &Record::new(&run, &path, AccessType::Read, Decision::Deny)
                    .rule(rule.as_deref())
                    .detail("declared need not granted"),
            )
            .map_err(|e| Refusal::Invalid(format!("audit log: {e}")))?;
    }
    Err(Refusal::NotGranted(
        unmet.iter().map(ToString::to_string).collect(),
    ))
}
