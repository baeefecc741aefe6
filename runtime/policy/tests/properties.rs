//! Properties of parsing and evaluation over generated policies.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

use agentsec_policy::{AgentId, Operation, Policy, SecretPath, SkillDigest, SkillName, SkillRef};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct RuleSpec {
    pattern: Vec<&'static str>,
    allowed: Vec<&'static str>,
    denied: Vec<&'static str>,
}

fn key(pattern: &[&str]) -> String {
    pattern.join(".")
}

fn yaml(rules: &[RuleSpec]) -> String {
    let mut out = String::from("access_control:\n  secrets:\n");
    if rules.is_empty() {
        out = String::from("access_control:\n  secrets: {}\n");
    }
    for r in rules {
        out.push_str(&format!("    '{}':\n", key(&r.pattern)));
        let list = |g: &[&str]| {
            g.iter()
                .map(|g| format!("\"{g}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !r.allowed.is_empty() {
            out.push_str(&format!("      allowed_agents: [{}]\n", list(&r.allowed)));
        }
        if !r.denied.is_empty() {
            out.push_str(&format!("      denied_agents: [{}]\n", list(&r.denied)));
        }
    }
    out
}

fn build(rules: &[RuleSpec]) -> Policy {
    Policy::from_sources(&[("gen.yaml", yaml(rules))])
        .unwrap_or_else(|e| panic!("{e}\n{}", yaml(rules)))
}

const SEGS: &[&str] = &["a", "b", "c", "ab"];
const GLOBS: &[&str] = &[
    "ops/*", "ops/**", "**", "*", "ops/a", "dev/*", "c", "ops/?", "ops/a/*",
];
const AGENTS: &[&str] = &["ops/a", "ops/b", "ops/a/x", "dev/a", "c", "ops/bb"];

fn pattern() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(
        prop_oneof![4 => prop::sample::select(SEGS), 1 => Just("*")],
        1..4,
    )
}

fn path() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(SEGS), 1..5)
}

fn globs(max: usize) -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(GLOBS), 0..max)
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    (pattern(), globs(3), globs(2)).prop_map(|(pattern, mut allowed, denied)| {
        if allowed.is_empty() && denied.is_empty() {
            allowed.push("c");
        }
        RuleSpec {
            pattern,
            allowed,
            denied,
        }
    })
}

fn rules() -> impl Strategy<Value = Vec<RuleSpec>> {
    prop::collection::vec(rule(), 0..8).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|r| seen.insert(key(&r.pattern)));
        v
    })
}

fn allowed(p: &Policy, agent: &str, path: &[&str]) -> bool {
    let agent = AgentId::parse(agent).unwrap();
    let path = SecretPath::from_segments(path).unwrap();
    let skill = SkillRef::new(
        SkillName::parse("s").unwrap(),
        SkillDigest::from_bytes([0; 32]),
    );
    p.evaluate(&agent, &skill, &path, Operation::Read)
        .is_allowed()
}

/// Adds `extra` to `rules`: as a new rule, or merged into the rule with the same key.
fn with(rules: &[RuleSpec], extra: RuleSpec) -> Vec<RuleSpec> {
    let mut out = rules.to_vec();
    match out.iter_mut().find(|r| r.pattern == extra.pattern) {
        Some(r) => {
            r.allowed.extend(extra.allowed);
            r.denied.extend(extra.denied);
        }
        None => out.push(extra),
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn deny_always_wins(rs in rules(), agent in prop::sample::select(AGENTS), p in path(), cut in 1usize..5) {
        // A deny naming the agent exactly, on the path or any ancestor of it.
        let cut = cut.min(p.len());
        let deny = RuleSpec { pattern: p[..cut].to_vec(), allowed: vec![], denied: vec![agent] };
        let policy = build(&with(&rs, deny));
        prop_assert!(!allowed(&policy, agent, &p));
    }

    #[test]
    fn adding_an_allow_never_removes_access(
        rs in rules(), extra in pattern(), g in prop::sample::select(GLOBS),
        agent in prop::sample::select(AGENTS), p in path(),
    ) {
        let before = allowed(&build(&rs), agent, &p);
        let after = allowed(&build(&with(&rs, RuleSpec { pattern: extra, allowed: vec![g], denied: vec![] })), agent, &p);
        prop_assert!(!before || after);
    }

    #[test]
    fn adding_a_deny_never_adds_access(
        rs in rules(), extra in pattern(), g in prop::sample::select(GLOBS),
        agent in prop::sample::select(AGENTS), p in path(),
    ) {
        let before = allowed(&build(&rs), agent, &p);
        let after = allowed(&build(&with(&rs, RuleSpec { pattern: extra, allowed: vec![], denied: vec![g] })), agent, &p);
        prop_assert!(before || !after);
    }

    #[test]
    fn a_rule_never_grants_a_sibling_or_ancestor(
        p in path(), other in prop::sample::select(SEGS), suffix in "[a-z]{1,3}",
        agent in prop::sample::select(AGENTS),
    ) {
        let policy = build(&[RuleSpec { pattern: p.clone(), allowed: vec!["**"], denied: vec![] }]);
        prop_assert!(allowed(&policy, agent, &p));
        // A sibling: same parent, different last key.
        let last = *p.last().unwrap();
        if other != last {
            let mut sib = p.clone();
            *sib.last_mut().unwrap() = other;
            prop_assert!(!allowed(&policy, agent, &sib));
        }
        // A key extending the last one (`a.b` vs `a.bc`).
        let mut longer: Vec<String> = p.iter().map(|s| s.to_string()).collect();
        longer.last_mut().unwrap().push_str(&suffix);
        let longer: Vec<&str> = longer.iter().map(String::as_str).collect();
        prop_assert!(!allowed(&policy, agent, &longer));
        // Every proper ancestor.
        for cut in 1..p.len() {
            prop_assert!(!allowed(&policy, agent, &p[..cut]));
        }
    }

    #[test]
    fn an_allow_is_attributed_to_a_covering_rule(rs in rules(), agent in prop::sample::select(AGENTS), p in path()) {
        let policy = build(&rs);
        let a = AgentId::parse(agent).unwrap();
        let path = SecretPath::from_segments(&p).unwrap();
        let skill = SkillRef::new(SkillName::parse("s").unwrap(), SkillDigest::from_bytes([0; 32]));
        if let agentsec_policy::Decision::Allow(token) = policy.evaluate(&a, &skill, &path, Operation::Read) {
            prop_assert!(token.rule().pattern().covers(&path));
            prop_assert!(token.rule().allowed_agents().iter().any(|g| g.is_match(&a)));
            for r in policy.rules() {
                prop_assert!(!(r.pattern().covers(&path) && r.denied_agents().iter().any(|g| g.is_match(&a))));
            }
        }
    }

    #[test]
    fn parser_never_panics(text in "\\PC{0,200}") {
        let _ = Policy::from_sources(&[("fuzz.yaml", text)]);
    }

    #[test]
    fn parser_never_panics_on_yamlish_input(text in "[a-z_:\\-\\[\\]{}\"'*&!?.,#|> \n/]{0,200}") {
        let _ = Policy::from_sources(&[("fuzz.yaml", text)]);
    }

    #[test]
    fn parser_never_panics_on_mutated_policies(
        base in rules(), cut in 0usize..400, insert in "[\\PC\n]{0,8}",
    ) {
        let mut text = yaml(&base);
        let mut at = cut.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.insert_str(at, &insert);
        let _ = Policy::from_sources(&[("fuzz.yaml", text)]);
    }
}
