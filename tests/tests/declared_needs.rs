//! Declared needs (`agentsec_skill::needs!`, the `agentsec:needs` custom
//! section): `agentsec-run` refuses to start a skill whose needs the policy
//! does not grant, names the rule to change, audits the refusal, and runs
//! nothing.

use agentsec_tests::{Run, Scratch, root};

fn needy(s: &Scratch, agent: &str) -> Run {
    s.run_skill(
        "needy",
        agent,
        &root().join("demo/secrets.yaml"),
        &root().join("tests/testdata/policies/e2e.yaml"),
        &[],
    )
}

#[test]
fn granted_needs_let_the_skill_run() {
    let s = Scratch::new();
    let run = needy(&s, "ops/release-manager");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("password_len"), "{run:?}");
    let records = s.audit_records();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r["decision"] == "allow"));
}

#[test]
fn needs_not_granted_refuse_the_run_naming_the_rule() {
    let s = Scratch::new();
    let run = needy(&s, "dev/alice");
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.stdout, "", "the skill must not run");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(
        lines[0].contains(
            "skill `needy` declares that it needs `databases.postgres.production.password`"
        ) && lines[0].contains("rule `databases.postgres.production` (")
            && lines[0].contains("add the agent to its allowed_agents"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("`communication.github.token`")
            && lines[1].contains("rule `communication.github` ("),
        "{}",
        lines[1]
    );
    // Audited: one denied read per need, and nothing else (nothing ran).
    let records = s.audit_records();
    assert_eq!(records.len(), 2, "{records:?}");
    for (r, path) in records.iter().zip([
        "databases.postgres.production.password",
        "communication.github.token",
    ]) {
        assert_eq!(r["secret_path"], path);
        assert_eq!(r["access_type"], "read");
        assert_eq!(r["decision"], "deny");
        assert_eq!(r["agent_id"], "dev/alice");
        assert_eq!(r["detail"], "declared need not granted");
        assert_eq!(r["skill"]["name"], "needy");
    }
}

#[test]
fn a_deny_on_one_need_refuses_the_run() {
    let s = Scratch::new();
    let run = needy(&s, "ops/intern");
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr
            .contains("denied by `denied_agents` of rule `databases.postgres`"),
        "{run:?}"
    );
    let records = s.audit_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["rule"], "databases.postgres");
}

#[test]
fn wildcard_needs_are_met_by_any_granted_environment() {
    // db-healthcheck declares `databases.postgres.*.{host,username,password}`.
    let s = Scratch::new();
    let demo = root().join("policies/demo.yaml");
    let secrets = root().join("demo/secrets.yaml");
    // ops/changelog may read staging (databases.*.staging, for this skill):
    // the run starts, then production is denied at the call, as before.
    let run = s.run_skill("db-healthcheck", "ops/changelog", &secrets, &demo, &[]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("failed after a policy denial"),
        "{run:?}"
    );
    let run = s.run_skill(
        "db-healthcheck",
        "ops/changelog",
        &secrets,
        &demo,
        &["--input", r#"{"env": "staging"}"#],
    );
    assert_eq!(run.code, 0, "{run:?}");
    // An agent no environment is granted to is refused before the run.
    let run = s.run_skill("db-healthcheck", "sales/bot", &secrets, &demo, &[]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("declares that it needs `databases.postgres.*.host`, and none of the 2 matching secrets is granted"),
        "{run:?}"
    );
}
