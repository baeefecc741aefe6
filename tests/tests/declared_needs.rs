//! Declared needs (`agentsec_skill::needs!`, the `agentsec:needs` custom
//! section): `agentsec-run` refuses to start a skill whose needs the policy
//! does not grant, names the rule to change, audits the refusal, and runs
//! nothing.

#![expect(clippy::unwrap_used, reason = "tests")]

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
    assert_eq!(lines.len(), 3, "{run:?}");
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
    assert!(
        lines[2].contains("declares that it needs `databases.postgres.*.password`, but no secret it matches is granted to agent `dev/alice`"),
        "{}",
        lines[2]
    );
    // Audited: one denied read per need, and nothing else (nothing ran).
    let records = s.audit_records();
    assert_eq!(records.len(), 3, "{records:?}");
    for (r, path) in records.iter().zip([
        "databases.postgres.production.password",
        "communication.github.token",
        "databases.postgres.*.password",
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
    // The literal need names the deny; the `*` need is refused too.
    assert_eq!(run.stderr.lines().count(), 2, "{run:?}");
    assert!(
        run.stderr
            .contains("denied by `denied_agents` of rule `databases.postgres`"),
        "{run:?}"
    );
    let records = s.audit_records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["rule"], "databases.postgres");
    assert_eq!(records[1]["rule"], serde_json::Value::Null);
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
        run.stderr.contains("declares that it needs `databases.postgres.*.host`, but no secret it matches is granted to agent `sales/bot`"),
        "{run:?}"
    );
}

/// A real SOPS file (written by the real sops, to the demo key) holding
/// `yaml` and nothing else.
fn sops_store(s: &Scratch, name: &str, yaml: &str) -> std::path::PathBuf {
    let file = s.write(&format!("work/{name}"), yaml);
    let out = s
        .command(&agentsec_tests::sops())
        .args(["encrypt", "--in-place", "--age", DEMO_RECIPIENT])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    file
}

/// The demo key's public half (demo/.sops.yaml).
const DEMO_RECIPIENT: &str = "age1w4e5n4l5d89gh6ur98t0cmwy87nsnqhgjx7690twufrzwsxh6dfqqjhepc";

/// What a refused start looks like from outside: exit code, stderr, and the
/// audit records without their times, run ids and hashes.
fn refusal(s: &Scratch, secrets: &std::path::Path, agent: &str) -> (i32, String, Vec<String>) {
    let run = s.run_skill(
        "needy",
        agent,
        secrets,
        &root().join("tests/testdata/policies/e2e.yaml"),
        &[],
    );
    let records = s
        .audit_records()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r["secret_path"], r["access_type"], r["decision"], r["rule"], r["detail"]
            )
        })
        .collect();
    std::fs::remove_file(s.audit_log()).unwrap();
    (run.code, run.stderr, records)
}

#[test]
fn a_refused_wildcard_need_reads_the_same_whether_or_not_matching_secrets_exist() {
    // dev/alice is granted no `databases.postgres.*.password`. In the demo
    // store two exist (production, staging); in the other, none. The refusal
    // must not tell the two apart, nor name either environment.
    let s = Scratch::new();
    let with = root().join("demo/secrets.yaml");
    let without = sops_store(
        &s,
        "other.yaml",
        "communication:\n    github:\n        token: t-123\nmonitoring:\n    key: m-456\n",
    );
    for agent in ["dev/alice", "ops/intern"] {
        let a = refusal(&s, &with, agent);
        let b = refusal(&s, &without, agent);
        assert_eq!(a.0, 3, "{a:?}");
        assert_eq!(a, b, "the refusal for {agent} depends on the store's names");
        for name in ["production", "staging"] {
            let wildcard_line =
                a.1.lines()
                    .find(|l| l.contains("`databases.postgres.*.password`"))
                    .unwrap();
            assert!(!wildcard_line.contains(name), "{wildcard_line}");
        }
    }
}
