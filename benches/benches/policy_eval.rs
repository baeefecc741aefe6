//! Policy decisions with 1,000 rules and 1,000 agents.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use agentsec_policy::{AgentId, Operation, Policy, SecretPath, SkillDigest, SkillName, SkillRef};
use criterion::{Criterion, criterion_group, criterion_main};
use std::fmt::Write as _;
use std::hint::black_box;

fn policy_text(rules: usize) -> String {
    let mut text = String::from("access_control:\n  secrets:\n");
    for i in 0..rules {
        let _ = writeln!(text, "    svc{}.db{}:", i / 10, i % 10);
        let _ = writeln!(
            text,
            "      allowed_agents: [\"team{}/*\", ops/release-manager]",
            i % 50
        );
        if i % 7 == 0 {
            let _ = writeln!(text, "      denied_agents: [team{}/intern]", i % 50);
        }
    }
    text
}

fn benches(c: &mut Criterion) {
    let policy = Policy::from_sources(&[("bench.yaml", policy_text(1_000))]).expect("policy");
    let agents: Vec<AgentId> = (0..1_000)
        .map(|i| AgentId::parse(&format!("team{}/agent{i}", i % 60)).expect("agent"))
        .collect();
    let paths: Vec<SecretPath> = (0..1_000)
        .map(|i| {
            SecretPath::parse(&format!("svc{}.db{}.password", (i * 7) % 110, i % 10)).expect("path")
        })
        .collect();
    let skill = SkillRef::new(
        SkillName::parse("bench").expect("name"),
        SkillDigest::from_bytes([0; 32]),
    );
    let mut i = 0usize;
    c.bench_function("policy decision, 1000 rules x 1000 agents", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let agent = &agents[i % agents.len()];
            let path = &paths[(i * 31) % paths.len()];
            black_box(
                policy
                    .evaluate(agent, &skill, path, Operation::Read)
                    .is_allowed(),
            )
        });
    });
}

criterion_group!(policy_eval, benches);
criterion_main!(policy_eval);
