//! TCP egress (wasi:sockets) through the real `agentsec-run`: the example
//! `pg-healthcheck` skill logs in to a real PostgreSQL server on 127.0.0.1 with the
//! password it reads (SCRAM-SHA-256) and runs `SELECT 1`, only where a `tcp://` egress
//! rule allows the connection; every connect is an audit record.

use agentsec_tests::sink_peers::PgCluster;
use agentsec_tests::{Run, Scratch};
use serde_json::Value;

const AGENT: &str = "ops/deploy-validator";
const USER: &str = "healthcheck";
/// A planted password: it must reach PostgreSQL and nothing else.
const PASSWORD: &str = "pg-Tcp-Egress-7f3a9c2e-canary";

/// A cluster where `healthcheck` logs in with [`PASSWORD`] only.
fn cluster() -> PgCluster {
    let pg = PgCluster::start();
    pg.psql(
        "postgres",
        &format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"),
    )
    .expect("create role");
    pg.require_password(USER);
    pg
}

/// The SOPS file with the production credentials for `pg` (`password` given).
fn secrets(s: &Scratch, pg: &PgCluster, host: &str, password: &str) -> std::path::PathBuf {
    s.sops_encrypt(
        "work/secrets.yaml",
        &format!(
            "databases:\n  postgres:\n    production:\n      host: \"{host}\"\n      port: \"{}\"\n      username: {USER}\n      password: \"{password}\"\n      database: audit\n",
            pg.port
        ),
    )
}

/// A policy granting the credentials, with `egress` (YAML list items) appended.
fn policy(s: &Scratch, egress: &str) -> std::path::PathBuf {
    s.write(
        "work/policy.yaml",
        &format!(
            "access_control:\n  secrets:\n    databases.postgres.production:\n      allowed_agents: [{AGENT}]\n{egress}"
        ),
    )
}

fn healthcheck(s: &Scratch, secrets: &std::path::Path) -> Run {
    s.run_skill(
        "pg-healthcheck",
        AGENT,
        secrets,
        &s.path("work/policy.yaml"),
        &["--input", r#"{"env":"production"}"#],
    )
}

fn connect_records(s: &Scratch) -> Vec<Value> {
    s.audit_records()
        .into_iter()
        .filter(|r| {
            r["access_type"] == "egress"
                && r["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("CONNECT tcp://"))
        })
        .collect()
}

/// The planted password is in no output, audit record or file of the scratch world.
fn assert_no_password(s: &Scratch, run: &Run) {
    assert!(!run.stdout.contains(PASSWORD), "{run:?}");
    assert!(!run.stderr.contains(PASSWORD), "{run:?}");
    for (path, bytes) in s.all_file_bytes() {
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "the password is in {}",
            path.display()
        );
    }
}

#[test]
fn pg_healthcheck_logs_in_over_an_allowed_tcp_connection() {
    let pg = cluster();
    let s = Scratch::new();
    let file = secrets(&s, &pg, "127.0.0.1", PASSWORD);
    policy(
        &s,
        &format!(
            "egress:\n  - url: \"tcp://127.0.0.1:{}\"\n    agents: [{AGENT}]\n",
            pg.port
        ),
    );
    let run = healthcheck(&s, &file);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["select_1"], 1, "{report}");
    assert!(
        report["server_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("15")),
        "{report}"
    );
    let records = connect_records(&s);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "allow");
    assert_eq!(records[0]["agent_id"], AGENT);
    assert_eq!(records[0]["skill"]["name"], "pg-healthcheck");
    assert_eq!(
        records[0]["detail"],
        format!("CONNECT tcp://127.0.0.1:{}", pg.port)
    );
    assert!(
        records[0]["rule"]
            .as_str()
            .is_some_and(|r| r.starts_with(&format!("egress tcp://127.0.0.1:{}", pg.port))),
        "{records:?}"
    );
    assert_no_password(&s, &run);

    // The server really checks the password: a wrong one fails at login, with
    // PostgreSQL's own error code, over the same allowed connection.
    let s = Scratch::new();
    let file = secrets(&s, &pg, "127.0.0.1", "not-the-password");
    policy(
        &s,
        &format!(
            "egress:\n  - url: \"tcp://127.0.0.1:{}\"\n    agents: [{AGENT}]\n",
            pg.port
        ),
    );
    let report = healthcheck(&s, &file).json();
    assert_eq!(report["healthy"], false, "{report}");
    assert_eq!(report["stage"], "login", "{report}");
    assert_eq!(report["sqlstate"], "28P01", "{report}");
}

#[test]
fn tcp_connections_outside_the_rules_are_refused_and_recorded() {
    let pg = cluster();

    // No egress at all: the run has no sockets (nothing to record).
    let s = Scratch::new();
    let file = secrets(&s, &pg, "127.0.0.1", PASSWORD);
    policy(&s, "");
    let run = healthcheck(&s, &file);
    let report = run.json();
    assert_eq!(report["healthy"], false, "{report}");
    assert_eq!(report["stage"], "connect", "{report}");
    assert!(connect_records(&s).is_empty());
    assert_no_password(&s, &run);

    // A rule for another port (and an HTTP rule for this one): refused, recorded.
    let s = Scratch::new();
    let file = secrets(&s, &pg, "127.0.0.1", PASSWORD);
    policy(
        &s,
        &format!(
            "egress:\n  - url: \"tcp://127.0.0.1:{}\"\n    agents: [{AGENT}]\n  - url: \"http://127.0.0.1:{}/\"\n    agents: [{AGENT}]\n",
            pg.port.wrapping_add(1).max(1),
            pg.port
        ),
    );
    let report = healthcheck(&s, &file).json();
    assert_eq!(report["healthy"], false, "{report}");
    assert_eq!(report["stage"], "connect", "{report}");
    let records = connect_records(&s);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "deny");
    assert!(
        records[0]["detail"]
            .as_str()
            .unwrap()
            .ends_with("denied: no egress rule allows it"),
        "{records:?}"
    );

    // Another agent, same rule: no sockets for it.
    let s = Scratch::new();
    let file = secrets(&s, &pg, "127.0.0.1", PASSWORD);
    s.write(
        "work/policy.yaml",
        &format!(
            "access_control:\n  secrets:\n    databases.postgres.production:\n      allowed_agents: [{AGENT}, ops/other]\negress:\n  - url: \"tcp://127.0.0.1:{}\"\n    agents: [{AGENT}]\n",
            pg.port
        ),
    );
    let run = s.run_skill(
        "pg-healthcheck",
        "ops/other",
        &file,
        &s.path("work/policy.yaml"),
        &["--input", r#"{"env":"production"}"#],
    );
    assert_eq!(run.json()["stage"], "connect", "{run:?}");
}

#[test]
fn a_name_that_resolves_to_loopback_needs_allow_private() {
    let pg = cluster();
    let rule = |allow_private: bool| {
        format!(
            "egress:\n  - url: \"tcp://localhost:{}\"\n    agents: [{AGENT}]\n    allow_private: {allow_private}\n",
            pg.port
        )
    };

    // `localhost` resolves to 127.0.0.1: a private address the rule does not name.
    let s = Scratch::new();
    let file = secrets(&s, &pg, "localhost", PASSWORD);
    policy(&s, &rule(false));
    let report = healthcheck(&s, &file).json();
    assert_eq!(report["healthy"], false, "{report}");
    assert_eq!(report["stage"], "connect", "{report}");
    let records = connect_records(&s);
    assert!(!records.is_empty(), "{:?}", s.audit_records());
    assert!(
        records.iter().all(|r| r["decision"] == "deny"),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["detail"].as_str().unwrap().contains("allow_private")),
        "{records:?}"
    );

    // With `allow_private: true` the same name connects (the skill resolved it with
    // wasi:sockets name lookup, the host checked the address against its own lookup).
    let s = Scratch::new();
    let file = secrets(&s, &pg, "localhost", PASSWORD);
    policy(&s, &rule(true));
    let run = healthcheck(&s, &file);
    let report = run.json();
    assert_eq!(report["healthy"], true, "{report}");
    let records = connect_records(&s);
    assert!(
        records.iter().any(|r| r["decision"] == "allow"
            && r["detail"] == format!("CONNECT tcp://127.0.0.1:{}", pg.port)),
        "{records:?}"
    );
    assert_no_password(&s, &run);
}
