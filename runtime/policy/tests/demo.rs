//! The demo policy at `policies/demo.yaml` loads and says what its comments say.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

use std::path::PathBuf;

use agentsec_policy::{
    AgentId, Decision, Operation, Policy, SecretPath, SkillDigest, SkillName, SkillRef,
};

fn demo() -> Policy {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies/demo.yaml");
    Policy::load(&[path]).unwrap_or_else(|e| panic!("{e}"))
}

/// The access level in force for the agent and skill at `path`, if granted at all
/// (listing is permitted at every level).
fn check(p: &Policy, agent: &str, skill: &str, path: &str) -> Option<String> {
    let agent = AgentId::parse(agent).unwrap();
    let skill = SkillRef::new(
        SkillName::parse(skill).unwrap(),
        SkillDigest::from_bytes([1; 32]),
    );
    let path = SecretPath::parse(path).unwrap();
    match p.evaluate(&agent, &skill, &path, Operation::List) {
        Decision::Allow(a) => Some(a.access_level().to_string()),
        Decision::Deny(_) => None,
    }
}

/// Whether the skill may hold the value itself.
fn readable(p: &Policy, agent: &str, path: &str) -> bool {
    let agent = AgentId::parse(agent).unwrap();
    let skill = SkillRef::new(
        SkillName::parse("any-skill").unwrap(),
        SkillDigest::from_bytes([1; 32]),
    );
    let path = SecretPath::parse(path).unwrap();
    p.evaluate(&agent, &skill, &path, Operation::Read)
        .is_allowed()
}

#[test]
fn demo_policy_loads() {
    let p = demo();
    assert!(p.len() >= 10);
    assert!(p.rules().any(|r| !r.denied_agents().is_empty()));
    assert!(
        p.rules()
            .any(|r| r.allowed_agents().iter().any(|g| g.as_str() == "ops/*"))
    );
    assert!(p.rules().all(|r| r.audit()));
    assert!(
        p.rules()
            .all(|r| r.origin().ends_with("policies/demo.yaml"))
    );
}

#[test]
fn demo_policy_decisions() {
    let p = demo();
    let s = "any-skill";
    let pw = "databases.postgres.production.password";
    assert_eq!(
        check(&p, "ops/release-manager", s, pw).as_deref(),
        Some("readonly")
    );
    assert_eq!(
        check(&p, "ops/deploy-validator", s, pw).as_deref(),
        Some("readonly")
    );
    assert_eq!(check(&p, "ops/changelog", s, pw), None);
    assert_eq!(check(&p, "ops/intern", s, pw), None);
    // Staging: any ops agent from db-healthcheck only, never the intern.
    let st = "databases.postgres.staging.password";
    assert_eq!(
        check(&p, "ops/changelog", "db-healthcheck", st).as_deref(),
        Some("readonly")
    );
    assert_eq!(
        check(&p, "ops/team/bot", "db-healthcheck", st).as_deref(),
        Some("readonly")
    );
    assert_eq!(check(&p, "ops/changelog", s, st), None);
    assert_eq!(check(&p, "ops/intern", "db-healthcheck", st), None);
    assert_eq!(check(&p, "dev/alice", "db-healthcheck", st), None);
    // Webhooks are `post`: the host may use them, no skill reads them raw.
    assert!(!readable(
        &p,
        "ops/changelog",
        "communication.discord.alerts_webhook"
    ));
    assert!(!readable(
        &p,
        "ops/changelog",
        "communication.slack.webhook"
    ));
    assert!(readable(&p, "ops/release-manager", pw));
    // Discord: first-level ops agents only.
    assert_eq!(
        check(
            &p,
            "ops/changelog",
            s,
            "communication.discord.alerts_webhook"
        )
        .as_deref(),
        Some("post")
    );
    assert_eq!(
        check(&p, "ops/intern", s, "communication.discord.alerts_webhook").as_deref(),
        Some("post")
    );
    assert_eq!(
        check(
            &p,
            "ops/team/bot",
            s,
            "communication.discord.alerts_webhook"
        ),
        None
    );
    // GitHub: developers yes, the intern never.
    assert_eq!(
        check(&p, "dev/alice", s, "communication.github.token").as_deref(),
        Some("read-write")
    );
    assert_eq!(
        check(&p, "ops/intern", s, "communication.github.token"),
        None
    );
    // Cloud: aws for the release manager; gcp for nobody; developers never.
    assert_eq!(
        check(&p, "ops/release-manager", s, "cloud.aws.access_key_id").as_deref(),
        Some("read-write")
    );
    assert_eq!(
        check(&p, "ops/release-manager", s, "cloud.gcp.service_account"),
        None
    );
    assert_eq!(check(&p, "dev/alice", s, "cloud.aws.access_key_id"), None);
    assert_eq!(
        check(&p, "ops/deploy-validator", s, "monitoring.datadog.api_key").as_deref(),
        Some("readonly")
    );
    assert_eq!(
        check(&p, "ops/deploy-validator", s, "monitoring.pagerduty.token"),
        None
    );
}
