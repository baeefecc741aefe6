//! Properties of the review functions (explain, diff, who-can, lint, needs)
//! over generated policies: each agrees with evaluation.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

use agentsec_policy::{
    AccessLevel, AgentId, Decision, Effect, Operation, PathPattern, Policy, Scope, SecretPath,
    SkillDigest, SkillFilter, SkillName, SkillRef, Warning, diff,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct RuleSpec {
    pattern: Vec<&'static str>,
    allowed: Vec<&'static str>,
    denied: Vec<&'static str>,
    skills: Vec<&'static str>,
    level: &'static str,
}

fn yaml(rules: &[RuleSpec]) -> String {
    if rules.is_empty() {
        return "access_control:\n  secrets: {}\n".to_owned();
    }
    let list = |g: &[&str]| {
        g.iter()
            .map(|g| format!("\"{g}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("access_control:\n  secrets:\n");
    for r in rules {
        out.push_str(&format!("    '{}':\n", r.pattern.join(".")));
        if !r.allowed.is_empty() {
            out.push_str(&format!("      allowed_agents: [{}]\n", list(&r.allowed)));
        }
        if !r.denied.is_empty() {
            out.push_str(&format!("      denied_agents: [{}]\n", list(&r.denied)));
        }
        if !r.skills.is_empty() {
            out.push_str(&format!("      skills: [{}]\n", list(&r.skills)));
        }
        out.push_str(&format!("      access_level: {}\n", r.level));
    }
    out
}

fn build(rules: &[RuleSpec]) -> Policy {
    Policy::from_sources(&[("gen.yaml", yaml(rules))])
        .unwrap_or_else(|e| panic!("{e}\n{}", yaml(rules)))
}

const SEGS: &[&str] = &["a", "b", "c"];
const GLOBS: &[&str] = &[
    "ops/*", "ops/**", "**", "*", "ops/a", "dev/*", "c", "ops/?", "ops/a/*", "**/a",
];
const AGENTS: &[&str] = &["ops/a", "ops/b", "ops/a/x", "dev/a", "c", "ops/bb", "a"];
const SKILLS: &[&str] = &["s", "t", "u"];

fn pattern() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(
        prop_oneof![4 => prop::sample::select(SEGS), 1 => Just("*")],
        1..4,
    )
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    (
        pattern(),
        prop::collection::vec(prop::sample::select(GLOBS), 0..3),
        prop::collection::vec(prop::sample::select(GLOBS), 0..2),
        prop::collection::vec(prop::sample::select(&SKILLS[..2]), 0..2),
        prop::sample::select(&["readonly", "read-write", "post", "sign"][..]),
    )
        .prop_map(|(pattern, mut allowed, denied, skills, level)| {
            if allowed.is_empty() && denied.is_empty() {
                allowed.push("c");
            }
            RuleSpec {
                pattern,
                allowed,
                denied,
                skills,
                level,
            }
        })
}

fn rules() -> impl Strategy<Value = Vec<RuleSpec>> {
    prop::collection::vec(rule(), 0..7).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|r| seen.insert(r.pattern.join(".")));
        v
    })
}

/// Every path of up to 3 segments over SEGS: the "store".
fn all_paths() -> Vec<SecretPath> {
    let mut out = Vec::new();
    for a in SEGS {
        for b in SEGS {
            for c in SEGS {
                out.push(SecretPath::from_segments([a, b, c]).unwrap());
            }
        }
    }
    out
}

fn skill(name: &str) -> SkillRef {
    SkillRef::new(
        SkillName::parse(name).unwrap(),
        SkillDigest::from_bytes([7; 32]),
    )
}

/// The access level in force for agent, skill, path, if granted at all (every level
/// permits listing).
fn eval(p: &Policy, agent: &AgentId, skill: &SkillRef, path: &SecretPath) -> Option<String> {
    match p.evaluate(agent, skill, path, Operation::List) {
        Decision::Allow(t) => Some(t.access_level().to_string()),
        Decision::Deny(_) => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn explain_agrees_with_evaluation(rs in rules(), agent in prop::sample::select(AGENTS), s in prop::sample::select(SKILLS)) {
        let policy = build(&rs);
        let agent = AgentId::parse(agent).unwrap();
        let paths = all_paths();
        let name = SkillName::parse(s).unwrap();
        let sk = skill(s);
        let e = policy.explain(&agent, SkillFilter::Named(&name), Some(&paths));
        for path in &paths {
            let shown = path.to_string();
            let grant = e.grants.iter().find(|g| g.path == shown);
            match policy.evaluate(&agent, &sk, path, Operation::List) {
                Decision::Allow(token) => {
                    let grant = grant.unwrap();
                    prop_assert_eq!(grant.rule.index(), token.rule().index());
                }
                Decision::Deny(d) => {
                    prop_assert!(grant.is_none());
                    let denied = e.denials.iter().find(|x| x.path == shown);
                    let by_deny = matches!(d.reason(), agentsec_policy::DenialReason::DeniedBy(_));
                    prop_assert_eq!(denied.is_some(), by_deny);
                }
            }
        }
        // With any skill: granted iff some skill may read it.
        let any = policy.explain(&agent, SkillFilter::Any, Some(&paths));
        for path in &paths {
            let some = SKILLS.iter().any(|s| policy.evaluate(&agent, &skill(s), path, Operation::List).is_allowed());
            prop_assert_eq!(any.grants.iter().any(|g| g.path == path.to_string()), some);
        }
    }

    #[test]
    fn explain_patterns_never_hide_access(rs in rules(), agent in prop::sample::select(AGENTS), s in prop::sample::select(SKILLS)) {
        // Every readable path is covered by a listed grant's rule key.
        let policy = build(&rs);
        let agent = AgentId::parse(agent).unwrap();
        let name = SkillName::parse(s).unwrap();
        let e = policy.explain(&agent, SkillFilter::Named(&name), None);
        for path in all_paths() {
            if policy.evaluate(&agent, &skill(s), &path, Operation::List).is_allowed() {
                prop_assert!(e.grants.iter().any(|g| g.rule.pattern().covers(&path)));
            }
        }
    }

    #[test]
    fn diff_reports_every_widening(old in rules(), new in rules()) {
        // If diff says nothing widens, no agent gains any path, for any skill,
        // and no grant moves to a level that permits an operation the old one did not.
        let (po, pn) = (build(&old), build(&new));
        let d = diff(&po, &pn, None);
        if !d.widens() {
            for agent in AGENTS {
                let agent = AgentId::parse(agent).unwrap();
                for s in SKILLS {
                    let sk = skill(s);
                    for path in all_paths() {
                        let after = eval(&pn, &agent, &sk, &path);
                        let before = eval(&po, &agent, &sk, &path);
                        prop_assert!(after.is_none() || before.is_some(),
                            "{agent} gained {path} with {s}\nOLD\n{}\nNEW\n{}", yaml(&old), yaml(&new));
                        if let (Some(a), Some(b)) = (after, before) {
                            let within = AccessLevel::parse(&a).unwrap().is_within(&AccessLevel::parse(&b).unwrap());
                            prop_assert!(within, "{agent} {path}: {b} -> {a}");
                        }
                    }
                }
            }
        }
        // A policy compared with itself has no changes.
        prop_assert!(diff(&pn, &pn, None).entries.is_empty());
    }

    #[test]
    fn who_can_lists_a_matching_allow_for_every_reader(rs in rules(), agent in prop::sample::select(AGENTS), s in prop::sample::select(SKILLS)) {
        let policy = build(&rs);
        let agent = AgentId::parse(agent).unwrap();
        for path in all_paths() {
            let who = policy.who_can(&path);
            let allowed = policy.evaluate(&agent, &skill(s), &path, Operation::List).is_allowed();
            let listed_allow = who.entries.iter().any(|e| e.effect == Effect::Allow && e.scope == Scope::Whole && e.glob.is_match(&agent) && e.shadowed_by.is_none());
            let listed_deny = who.entries.iter().any(|e| e.effect == Effect::Deny && e.scope == Scope::Whole && e.glob.is_match(&agent));
            if allowed {
                prop_assert!(listed_allow && !listed_deny);
            }
            if listed_deny {
                prop_assert!(!allowed);
            }
        }
    }

    #[test]
    fn a_shadowed_allow_grants_nothing(rs in rules()) {
        let policy = build(&rs);
        for w in policy.lint(None) {
            if let Warning::ShadowedAllow { rule, glob, .. } = w {
                for agent in AGENTS {
                    let agent = AgentId::parse(agent).unwrap();
                    if !glob.is_match(&agent) { continue; }
                    for path in all_paths().iter().filter(|p| rule.pattern().covers(p)) {
                        for s in SKILLS {
                            if let Decision::Allow(t) = policy.evaluate(&agent, &skill(s), path, Operation::List) {
                                prop_assert!(t.rule().index() != rule.index());
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn needs_are_met_exactly_when_evaluation_allows(rs in rules(), agent in prop::sample::select(AGENTS), s in prop::sample::select(SKILLS), need in pattern()) {
        let policy = build(&rs);
        let agent = AgentId::parse(agent).unwrap();
        let sk = skill(s);
        let need = PathPattern::parse(&need.join(".")).unwrap();
        let known = all_paths();
        let unmet = policy.unmet_needs(&agent, &sk, std::slice::from_ref(&need), &known);
        let met = if need.literal_count() == need.len() {
            policy.evaluate(&agent, &sk, &SecretPath::parse(&need.to_string()).unwrap(), Operation::List).is_allowed()
        } else {
            known.iter().filter(|k| need.covers(k)).any(|k| {
                let node = SecretPath::from_segments(k.segments().take(need.len())).unwrap();
                policy.evaluate(&agent, &sk, &node, Operation::List).is_allowed()
            })
        };
        prop_assert_eq!(unmet.is_empty(), met);
    }
}
