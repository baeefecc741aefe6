//! Output of `agentsec policy ...`: aligned tables and JSON.

use std::fmt::Write as _;

use agentsec_policy::{
    AccessLevel, AgentGlob, AgentId, Change, Effect, EgressRuleRef, Explanation, InjectEntry,
    Policy, PolicyDiff, RuleRef, Scope, SecretPath, SkillName, SkillSelector, UrlPattern, Warning,
    WhoCan,
};
use serde_json::{Value, json};

use super::table::Table;

/// `key (file:line)`.
fn rule_text(r: &RuleRef<'_>) -> String {
    format!("{} ({}:{})", r.pattern(), r.origin(), r.line())
}

fn rule_json(r: &RuleRef<'_>) -> Value {
    json!({ "key": r.pattern().to_string(), "location": r.location().to_string() })
}

fn skills_text(skills: &[SkillSelector]) -> String {
    if skills.is_empty() {
        return "any".to_owned();
    }
    let names: Vec<String> = skills.iter().map(ToString::to_string).collect();
    names.join(", ")
}

fn skills_json(skills: &[SkillSelector]) -> Value {
    if skills.is_empty() {
        return Value::Null;
    }
    skills.iter().map(ToString::to_string).collect()
}

fn list_text(rules: &[RuleRef<'_>]) -> String {
    if rules.is_empty() {
        return "-".to_owned();
    }
    let keys: Vec<String> = rules.iter().map(rule_text).collect();
    keys.join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

// ---- check ---------------------------------------------------------------

pub(super) fn check_json(policy: &Policy, warnings: &[Warning<'_>]) -> Value {
    json!({
        "ok": true,
        "rules": policy.len(),
        "warnings": warnings.iter().map(|w| json!({
            "kind": w.kind(),
            "location": w.location().map(ToString::to_string),
            "message": w.to_string(),
        })).collect::<Vec<_>>(),
    })
}

pub(super) fn check_human(
    policy: &Policy,
    warnings: &[Warning<'_>],
    secrets: Option<std::path::Display<'_>>,
) -> String {
    let mut out = String::new();
    for w in warnings {
        let at = match (w.location(), &secrets) {
            (Some(at), _) => at.to_string(),
            (None, Some(file)) => file.to_string(),
            (None, None) => "agentsec".to_owned(),
        };
        let _ = writeln!(out, "{at}: warning: {w}");
    }
    let _ = writeln!(
        out,
        "ok: {}, {}",
        plural(policy.len(), "rule", "rules"),
        plural(warnings.len(), "warning", "warnings")
    );
    out
}

// ---- explain -------------------------------------------------------------

/// What `explain` prints about.
pub(super) struct ExplainView<'a> {
    pub(super) agent: &'a AgentId,
    pub(super) skill: Option<&'a SkillName>,
    pub(super) leaves: bool,
    pub(super) explanation: &'a Explanation<'a>,
    /// The `egress:` entries whose `agents` match the agent (any skill restriction is
    /// shown, not applied).
    pub(super) egress: Vec<EgressRuleRef<'a>>,
}

impl ExplainView<'_> {
    pub(super) fn json(&self) -> Value {
        let e = self.explanation;
        json!({
            "agent": self.agent.as_str(),
            "skill": self.skill.map(SkillName::as_str),
            "paths": if self.leaves { "secrets" } else { "rule keys" },
            "grants": e.grants.iter().map(|g| {
                let mut v = json!({
                    "path": g.path,
                    "access_level": g.rule.access_level().as_str(),
                    "skills": skills_json(g.rule.skills()),
                    "rule": rule_json(&g.rule),
                    "except": g.except.iter().map(rule_json).collect::<Vec<_>>(),
                });
                // Only when set: MCP's `secrets_get` may hand the value to the model.
                if g.rule.reveal_to_agent() {
                    v["reveal_to_agent"] = json!(true);
                }
                if g.rule.inject_only() {
                    v["inject_only"] = json!(true);
                }
                if !g.rule.inject().is_empty() {
                    v["inject"] = json!(g.rule.inject().iter().map(|i| i.describe()).collect::<Vec<_>>());
                }
                v
            }).collect::<Vec<_>>(),
            "denied": e.denials.iter().map(|d| json!({
                "path": d.path,
                "rule": rule_json(&d.rule),
                "overrides": d.overrides.iter().map(rule_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "egress": self.egress.iter().map(|r| json!({
                "url": r.url().to_string(),
                "methods": r.methods(),
                "skills": skills_json(r.skills()),
                "allow_private": r.allow_private(),
                "rule": r.label(),
            })).collect::<Vec<_>>(),
        })
    }

    pub(super) fn human(&self) -> String {
        let e = self.explanation;
        let mut out = String::new();
        let skill = self
            .skill
            .map_or_else(|| "any skill".to_owned(), |s| format!("skill {s}"));
        let what = if self.leaves {
            "secrets"
        } else {
            "rule keys; pass --secrets FILE to list secrets"
        };
        let _ = writeln!(out, "agent {}, {skill} ({what})\n", self.agent);
        if e.grants.is_empty() {
            out.push_str("is granted nothing (deny by default)\n");
        } else {
            let mut t = if self.leaves {
                Table::new(&["GRANTED", "ACCESS", "SKILLS", "RULE"])
            } else {
                Table::new(&["GRANTED", "ACCESS", "SKILLS", "RULE", "EXCEPT (DENIED)"])
            };
            for g in &e.grants {
                let access = if g.rule.reveal_to_agent() {
                    format!("{}, reveal_to_agent", g.rule.access_level())
                } else {
                    g.rule.access_level().to_string()
                };
                let mut row = vec![
                    g.path.clone(),
                    access,
                    skills_text(g.rule.skills()),
                    rule_text(&g.rule),
                ];
                if !self.leaves {
                    row.push(list_text(&g.except));
                }
                t.row(row);
            }
            out.push_str(&t.render());
        }
        if !e.denials.is_empty() {
            out.push('\n');
            let mut t = Table::new(&["DENIED (A DENY ALWAYS WINS)", "RULE", "OVERRIDES"]);
            for d in &e.denials {
                t.row(vec![
                    d.path.clone(),
                    rule_text(&d.rule),
                    list_text(&d.overrides),
                ]);
            }
            out.push_str(&t.render());
        }
        let injected: Vec<_> = e
            .grants
            .iter()
            .filter(|g| g.rule.inject_only() || !g.rule.inject().is_empty())
            .collect();
        if !injected.is_empty() {
            out.push('\n');
            let mut t = Table::new(&["INJECTED BY THE HOST", "INJECT_ONLY", "HOW"]);
            for g in injected {
                let how: Vec<String> = g.rule.inject().iter().map(|i| i.describe()).collect();
                t.row(vec![
                    g.path.clone(),
                    if g.rule.inject_only() { "yes" } else { "no" }.to_owned(),
                    if how.is_empty() {
                        "-".to_owned()
                    } else {
                        how.join("; ")
                    },
                ]);
            }
            out.push_str(&t.render());
        }
        out.push('\n');
        if self.egress.is_empty() {
            out.push_str("may send no outgoing requests (no egress: entry names the agent)\n");
        } else {
            let mut t = Table::new(&["EGRESS TO", "METHODS", "SKILLS", "PRIVATE", "RULE"]);
            for r in &self.egress {
                t.row(vec![
                    r.url().to_string(),
                    if r.url().scheme() == agentsec_policy::Scheme::Tcp {
                        "connect".to_owned()
                    } else {
                        r.methods().join(",")
                    },
                    skills_text(r.skills()),
                    if r.allow_private() {
                        "allowed"
                    } else {
                        "refused"
                    }
                    .to_owned(),
                    r.label(),
                ]);
            }
            out.push_str(&t.render());
        }
        out
    }
}

// ---- who-can -------------------------------------------------------------

fn scope_text(scope: Scope, rule: &RuleRef<'_>) -> String {
    match scope {
        Scope::Below => format!("only below, under {}", rule.pattern()),
        _ => String::new(),
    }
}

/// The methods the host may inject a value of `level` into: JSON `null` for any.
fn inject_methods_json(level: &AccessLevel) -> Value {
    level.inject_methods().map_or(Value::Null, |m| json!(m))
}

fn inject_methods_text(level: &AccessLevel) -> String {
    match level.inject_methods() {
        None => "any".to_owned(),
        Some([]) => "none".to_owned(),
        Some(methods) => methods.join(","),
    }
}

/// The `egress:` entries for the destination (`scheme://host:port`) of `url`: a request
/// the host injects into leaves only under one of them (whose `agents`, `skills` and
/// path glob must also match it).
fn egress_for<'p>(policy: &'p Policy, url: &UrlPattern) -> Vec<EgressRuleRef<'p>> {
    let destination = url.destination();
    policy
        .egress_rules()
        .filter(|r| r.url().destination() == destination)
        .collect()
}

fn egress_json(r: &EgressRuleRef<'_>) -> Value {
    json!({
        "url": r.url().to_string(),
        "methods": r.methods(),
        "agents": r.agents().iter().map(AgentGlob::as_str).collect::<Vec<_>>(),
        "skills": skills_json(r.skills()),
        "rule": r.label(),
    })
}

/// A rule's `inject:` entries, each with the methods its level permits and the
/// `egress:` entries its requests may leave under.
fn inject_json(policy: &Policy, rule: &RuleRef<'_>) -> Value {
    let methods = inject_methods_json(rule.access_level());
    rule.inject()
        .iter()
        .map(|entry| match entry {
            InjectEntry::Header { url, name, .. } => json!({
                "header": name,
                "url": url.to_string(),
                "methods": methods,
                "egress": egress_for(policy, url).iter().map(egress_json).collect::<Vec<_>>(),
            }),
            // The secret's url decides which egress: entry lets it out.
            InjectEntry::AsUrl => json!({ "as": "url", "methods": methods, "egress": null }),
            other => json!({ "entry": other.describe(), "methods": methods }),
        })
        .collect()
}

/// Where the requests of `entry` may leave, for the human table.
fn egress_text(policy: &Policy, entry: &InjectEntry) -> String {
    match entry {
        InjectEntry::Header { url, .. } => {
            let found: Vec<String> = egress_for(policy, url)
                .iter()
                .map(|r| {
                    let agents: Vec<&str> = r.agents().iter().map(AgentGlob::as_str).collect();
                    format!(
                        "{}: {} for {}",
                        r.label(),
                        r.methods().join(","),
                        agents.join(", ")
                    )
                })
                .collect();
            if found.is_empty() {
                format!(
                    "none: no egress: entry for {} (never sent)",
                    url.destination()
                )
            } else {
                found.join("; ")
            }
        }
        _ => "the egress: entry the secret's url matches".to_owned(),
    }
}

pub(super) fn who_can_json(policy: &Policy, path: &SecretPath, who: &WhoCan<'_>) -> Value {
    let entries = |effect: Effect| {
        who.entries
            .iter()
            .filter(|e| e.effect == effect)
            .map(|e| {
                let mut v = json!({
                    "agents": e.glob.as_str(),
                    "rule": rule_json(&e.rule),
                    "scope": if e.scope == Scope::Whole { "path" } else { "below" },
                });
                if effect == Effect::Allow {
                    v["access_level"] = json!(e.rule.access_level().as_str());
                    v["skills"] = skills_json(e.rule.skills());
                    v["shadowed_by"] = e.shadowed_by.as_ref().map_or(Value::Null, rule_json);
                    v["inject_only"] = json!(e.rule.inject_only());
                    v["inject"] = inject_json(policy, &e.rule);
                }
                v
            })
            .collect::<Vec<_>>()
    };
    json!({
        "path": path.to_string(),
        "allowed": entries(Effect::Allow),
        "denied": entries(Effect::Deny),
    })
}

pub(super) fn who_can_human(policy: &Policy, path: &SecretPath, who: &WhoCan<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "who can use {path} (a deny always wins; ACCESS says how)\n"
    );
    let mut allowed = Table::new(&["ALLOWED", "ACCESS", "SKILLS", "RULE", "NOTE"]);
    let mut denied = Table::new(&["DENIED", "RULE", "NOTE"]);
    for e in &who.entries {
        let mut note = scope_text(e.scope, &e.rule);
        if let Some(by) = &e.shadowed_by {
            note = format!("shadowed by the deny in {}", rule_text(by));
        }
        match e.effect {
            Effect::Allow => allowed.row(vec![
                e.glob.to_string(),
                e.rule.access_level().to_string(),
                skills_text(e.rule.skills()),
                rule_text(&e.rule),
                note,
            ]),
            _ => denied.row(vec![e.glob.to_string(), rule_text(&e.rule), note]),
        }
    }
    if allowed.is_empty() {
        out.push_str("no agent may use it (deny by default)\n");
    } else {
        out.push_str(&allowed.render());
    }
    if !denied.is_empty() {
        out.push('\n');
        out.push_str(&denied.render());
    }
    if !allowed.is_empty() {
        out.push('\n');
        out.push_str(&injected_human(policy, who));
    }
    out
}

/// The `INJECTED BY THE HOST` table of `who-can`: one row per allowed agent pattern and
/// `inject:` entry of its rule.
fn injected_human(policy: &Policy, who: &WhoCan<'_>) -> String {
    let mut t = Table::new(&[
        "INJECTED FOR",
        "SKILLS",
        "HOW",
        "METHODS",
        "INJECT_ONLY",
        "SENT UNDER",
        "NOTE",
    ]);
    for e in who.entries.iter().filter(|e| e.effect == Effect::Allow) {
        let rule = &e.rule;
        let note = match &e.shadowed_by {
            Some(by) => format!("shadowed by the deny in {}", rule_text(by)),
            None => scope_text(e.scope, rule),
        };
        let only = if rule.inject_only() { "yes" } else { "no" };
        let row = |how: String, sent: String| {
            vec![
                e.glob.to_string(),
                skills_text(rule.skills()),
                how,
                inject_methods_text(rule.access_level()),
                only.to_owned(),
                sent,
                note.clone(),
            ]
        };
        if rule.inject().is_empty() && rule.inject_only() {
            // get-secret is refused and no entry says where the host may put it.
            t.row(row("- (no inject: entry)".to_owned(), "-".to_owned()));
        }
        for entry in rule.inject() {
            t.row(row(entry.describe(), egress_text(policy, entry)));
        }
    }
    if t.is_empty() {
        return "the host injects it into no request (no rule granting it has inject:)\n"
            .to_owned();
    }
    t.render()
}

// ---- diff ----------------------------------------------------------------

pub(super) fn diff_json(diff: &PolicyDiff<'_>, with_secrets: bool) -> Value {
    json!({
        "widens": diff.widens(),
        "identity": diff.identity.iter().map(|c| json!({"change": c.what, "widens": c.widens})).collect::<Vec<_>>(),
        "egress": diff.egress.iter().map(|c| json!({"change": c.what, "widens": c.widens})).collect::<Vec<_>>(),
        "changes": diff.entries.iter().map(|e| {
            let mut v = json!({
                "change": e.change.as_str(),
                "effect": e.effect.as_str(),
                "path": e.pattern.to_string(),
                "agents": e.glob.as_str(),
                "access_level": (e.effect == Effect::Allow).then(|| e.rule.access_level().as_str()),
                "skills": if e.effect == Effect::Allow { skills_json(e.rule.skills()) } else { Value::Null },
                "rule": rule_json(&e.rule),
                "widens": e.widens.map(|w| w.as_str()),
            });
            if with_secrets {
                v["secrets"] = e.paths.iter().map(ToString::to_string).collect();
            }
            v
        }).collect::<Vec<_>>(),
    })
}

pub(super) fn diff_human(diff: &PolicyDiff<'_>, with_secrets: bool) -> String {
    let mut out = String::new();
    for c in &diff.identity {
        let widens = if c.widens { "yes" } else { "no" };
        let _ = writeln!(out, "identity change: {} (widens: {widens})", c.what);
    }
    for c in &diff.egress {
        let widens = if c.widens { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "egress or inject change: {} (widens: {widens})",
            c.what
        );
    }
    if diff.entries.is_empty() {
        out.push_str("no changes to grants or denies\n");
        return out;
    }
    let mut t = Table::new(&[
        "CHANGE", "EFFECT", "PATH", "AGENTS", "ACCESS", "SKILLS", "RULE", "WIDENS",
    ]);
    for e in &diff.entries {
        let sign = match e.change {
            Change::Added => "+ added",
            _ => "- removed",
        };
        let (access, skills) = if e.effect == Effect::Allow {
            (
                e.rule.access_level().to_string(),
                skills_text(e.rule.skills()),
            )
        } else {
            ("-".to_owned(), "-".to_owned())
        };
        let widens = e
            .widens
            .map_or_else(|| "no".to_owned(), |w| format!("yes: {}", w.as_str()));
        let paths: Vec<String> = if !with_secrets {
            vec![e.pattern.to_string()]
        } else if e.paths.is_empty() {
            vec![format!("{} (no secret yet)", e.pattern)]
        } else {
            e.paths.iter().map(ToString::to_string).collect()
        };
        for path in paths {
            t.row(vec![
                sign.to_owned(),
                e.effect.as_str().to_owned(),
                path,
                e.glob.to_string(),
                access.clone(),
                skills.clone(),
                rule_text(&e.rule),
                widens.clone(),
            ]);
        }
    }
    out.push_str(&t.render());
    let widening = diff.entries.iter().filter(|e| e.widens.is_some()).count();
    let total = plural(diff.entries.len(), "change", "changes");
    if widening > 0 {
        let _ = writeln!(out, "\naccess widens: {widening} of {total} (exit 1)");
    } else {
        let _ = writeln!(out, "\nno access widens ({total})");
    }
    out
}
