//! The first complete path: a real component reads a SOPS secret written by
//! the real sops, through `get-secret`, checked by policy and audited, via the
//! real `agentsec-run` binary.

use agentsec_tests::probe::{PROD_PASSWORD, probe_demo, probe_results};
use agentsec_tests::{Run, Scratch, assert_no_leak, root};
use serde_json::{Value, json};

fn probe(s: &Scratch, agent: &str, ops: Value) -> Run {
    probe_demo(s, agent, ops, &[])
}

fn ops(run: &Run) -> Vec<Value> {
    probe_results(run)
}

#[test]
fn allowed_read_returns_the_value_and_is_audited() {
    let s = Scratch::new();
    let run = probe(
        &s,
        "ops/release-manager",
        json!([
            {"get": "databases.postgres.production.password", "expect": PROD_PASSWORD},
            {"get": "databases.postgres.production.port", "expect": "5432"},
        ]),
    );
    let out = ops(&run);
    assert_eq!(
        out[0],
        json!({"ok": true, "len": PROD_PASSWORD.len(), "matches": true})
    );
    assert_eq!(
        out[1]["matches"],
        json!(true),
        "ints come back as sops --extract prints them"
    );

    let records = s.audit_records();
    assert_eq!(records.len(), 2);
    let r = &records[0];
    assert_eq!(r["agent_id"], "ops/release-manager");
    assert_eq!(r["secret_path"], "databases.postgres.production.password");
    assert_eq!(r["access_type"], "read");
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["rule"], "databases.postgres.production");
    assert_eq!(r["access_level"], "readonly");
    assert_eq!(r["skill"]["name"], "probe");
    assert_eq!(r["skill"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(r["seq"], 1);
    assert_eq!(records[1]["prev"], r["hash"]);
    assert_no_leak(
        PROD_PASSWORD,
        std::fs::read(s.audit_log()).unwrap().as_slice(),
        "the audit log",
    );
}

#[test]
fn denied_read_is_an_error_the_skill_sees_and_an_audit_deny() {
    let s = Scratch::new();
    let out = ops(&probe(
        &s,
        "dev/alice",
        json!([{"get": "databases.postgres.production.password"}]),
    ));
    assert_eq!(out[0]["err"], "denied");
    let message = out[0]["message"].as_str().unwrap();
    assert!(
        message.contains("dev/alice") && message.contains("databases.postgres.production"),
        "{message}"
    );
    let records = s.audit_records();
    assert_eq!(records[0]["decision"], "deny");
    assert_eq!(records[0]["agent_id"], "dev/alice");
}

#[test]
fn deny_by_default_and_no_existence_oracle() {
    let s = Scratch::new();
    let out = ops(&probe(
        &s,
        "ops/release-manager",
        json!([
            {"get": "cloud.aws.secret_access_key"},
            {"get": "cloud.aws.no_such_key"},
            {"get": "nothing.here.at.all"},
        ]),
    ));
    for o in &out {
        assert_eq!(o["err"], "denied", "{o}");
    }
    // The same message shape whether or not the path exists.
    assert_eq!(
        out[1]["message"]
            .as_str()
            .unwrap()
            .replace("no_such_key", "X"),
        out[0]["message"]
            .as_str()
            .unwrap()
            .replace("secret_access_key", "X")
    );
}

#[test]
fn unknown_path_under_a_grant_is_not_found_and_a_mapping_is_invalid_path() {
    let s = Scratch::new();
    let out = ops(&probe(
        &s,
        "ops/release-manager",
        json!([
            {"get": "databases.postgres.production.nope"},
            {"get": "databases.postgres.production"},
            {"get": "databases..x"},
        ]),
    ));
    assert_eq!(out[0]["err"], "not-found");
    assert_eq!(out[1]["err"], "invalid-path");
    let m = out[1]["message"].as_str().unwrap();
    for child in ["host", "port", "username", "password"] {
        assert!(m.contains(child), "{m}");
    }
    assert_eq!(out[2]["err"], "invalid-path");
}

#[test]
fn agent_globs_star_does_not_cross_slash_double_star_does() {
    let s = Scratch::new();
    let out = ops(&probe(
        &s,
        "ops/a/b",
        json!([
            {"get": "communication.github.token"},
            {"get": "monitoring.datadog.api_key"},
        ]),
    ));
    assert_eq!(out[0]["err"], "denied", "ops/* must not match ops/a/b");
    assert_eq!(out[1]["ok"], true, "ops/** matches ops/a/b");
    let out = ops(&probe(
        &s,
        "ops/a",
        json!([{"get": "communication.github.token"}]),
    ));
    assert_eq!(out[0]["ok"], true);
}

#[test]
fn deny_wins_over_any_allow() {
    let s = Scratch::new();
    let out = ops(&probe(
        &s,
        "ops/intern",
        json!([
            {"get": "databases.postgres.staging.password"},
            {"get": "communication.github.token"},
        ]),
    ));
    assert_eq!(out[0]["err"], "denied");
    assert!(
        out[0]["message"].as_str().unwrap().contains("deny"),
        "{}",
        out[0]
    );
    assert_eq!(
        out[1]["ok"], true,
        "the deny is scoped to its rule's subtree"
    );
}

/// `access_level: post` (the demo's webhooks): the host may use the secret for the
/// skill, the skill never reads it. The name is still listed; the read is denied, says the
/// secret may only be used by the host, and is on record as a denied read by that rule.
#[test]
fn a_post_secret_is_never_read_raw_by_a_skill() {
    let s = Scratch::new();
    let out = ops(&probe(
        &s,
        "ops/changelog",
        json!([
            {"get": "communication.discord.alerts_webhook"},
            {"list": "communication.discord"},
        ]),
    ));
    assert_eq!(out[0]["err"], "denied", "{out:?}");
    let message = out[0]["message"].as_str().unwrap();
    assert!(
        message.contains("may only be used by the host")
            && message.contains("grants access_level `post`"),
        "{message}"
    );
    assert_eq!(
        out[1]["names"],
        json!(["communication.discord.alerts_webhook"]),
        "{out:?}"
    );
    let records = s.audit_records();
    let read = &records[0];
    assert_eq!(read["secret_path"], "communication.discord.alerts_webhook");
    assert_eq!(
        (&read["access_type"], &read["decision"], &read["rule"]),
        (
            &json!("read"),
            &json!("deny"),
            &json!("communication.discord")
        )
    );
}

#[test]
fn list_shows_only_granted_names_and_unencrypted_values_follow_policy() {
    let s = Scratch::new();
    let out = ops(&probe(
        &s,
        "dev/alice",
        json!([
            {"list": ""},
            {"list": "cloud"},
            {"get": "cloud.aws.region_unencrypted", "expect": "eu-west-1"},
            {"get": "monitoring.datadog.site_unencrypted"},
        ]),
    ));
    assert_eq!(out[0]["names"], json!(["cloud.aws.region_unencrypted"]));
    assert_eq!(out[1]["names"], json!(["cloud.aws.region_unencrypted"]));
    assert_eq!(out[2]["matches"], true);
    assert_eq!(
        out[3]["err"], "denied",
        "unencrypted values go through the same policy"
    );
    let records = s.audit_records();
    assert_eq!(records[0]["access_type"], "list");
}

#[test]
fn the_skill_sees_no_env_no_args_no_files_no_sockets_no_stdin() {
    let s = Scratch::new();
    let key_file = root().join("demo/age-key.DEMO-ONLY.txt");
    let out = ops(&probe(
        &s,
        "ops/release-manager",
        json!([
            {"env": true},
            {"read_file": "/etc/passwd"},
            {"read_file": key_file.to_str().unwrap()},
            {"read_file": root().join("demo/secrets.yaml").to_str().unwrap()},
            {"read_dir": "/"},
            {"read_dir": "."},
            {"write_file": "/tmp/agentsec-probe-was-here"},
            {"connect": "127.0.0.1:9"},
            {"stdin": true},
        ]),
    ));
    assert_eq!(out[0]["vars"], json!([]), "no environment variables");
    assert!(
        out[0]["args"].as_array().unwrap().len() <= 1,
        "no arguments: {}",
        out[0]
    );
    for o in &out[1..8] {
        assert_eq!(o["ok"], false, "{o}");
    }
    assert_eq!(out[8]["stdin_bytes"], 0);
    assert!(!std::path::Path::new("/tmp/agentsec-probe-was-here").exists());
}

#[test]
fn secret_values_are_redacted_from_everything_the_skill_sends_back() {
    let s = Scratch::new();
    let path = "databases.postgres.production.password";
    for encoding in ["raw", "base64", "base64url", "hex", "url"] {
        let run = probe(
            &s,
            "ops/release-manager",
            json!([
                {"echo": path, "encoding": encoding},
                {"print": path, "encoding": encoding},
            ]),
        );
        assert_eq!(run.code, 0, "{run:?}");
        assert_no_leak(PROD_PASSWORD, run.stdout.as_bytes(), "stdout");
        assert_no_leak(PROD_PASSWORD, run.stderr.as_bytes(), "stderr");
        assert!(
            run.stdout
                .contains("[REDACTED:databases.postgres.production.password]"),
            "{encoding}: {run:?}"
        );
        assert!(
            run.stderr
                .contains("[REDACTED:databases.postgres.production.password]"),
            "{encoding}: {run:?}"
        );
    }
    // In the skill's error and in a panic message, too.
    let run = probe(&s, "ops/release-manager", json!([{"fail_with": path}]));
    assert_eq!(run.code, 1, "{run:?}");
    assert_no_leak(PROD_PASSWORD, run.stderr.as_bytes(), "the skill error");
    let run = probe(&s, "ops/release-manager", json!([{"panic_with": path}]));
    assert_eq!(run.code, 5, "{run:?}");
    assert_no_leak(PROD_PASSWORD, run.stderr.as_bytes(), "a panic message");
    for (file, bytes) in s.all_file_bytes() {
        assert_no_leak(PROD_PASSWORD, &bytes, &file.display().to_string());
    }
}

#[test]
fn tampered_mac_and_wrong_key_refuse_before_the_skill_runs() {
    let s = Scratch::new();
    let original = std::fs::read_to_string(root().join("demo/secrets.yaml")).unwrap();
    assert!(original.contains("site_unencrypted: datadoghq.eu"));
    let tampered = s.write(
        "work/tampered.yaml",
        &original.replace("datadoghq.eu", "datadoghq.com"),
    );
    let policy = root().join("tests/testdata/policies/e2e.yaml");
    let run = s.run_skill(
        "probe",
        "ops/release-manager",
        &tampered,
        &policy,
        &["--input", r#"{"ops":[]}"#],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("MAC"), "{run:?}");
    assert!(
        run.stderr.contains("tampered.yaml"),
        "names the file: {run:?}"
    );
    assert!(!s.audit_log().exists(), "the skill did not run");

    let mut cmd = s.command(&agentsec_tests::bin("agentsec-run"));
    cmd.arg(agentsec_tests::skill("probe"))
        .args(["--agent", "ops/release-manager", "--secrets"])
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(&policy)
        .arg("--audit-log")
        .arg(s.audit_log())
        .env(
            "SOPS_AGE_KEY_FILE",
            root().join("tests/testdata/sops-vectors/external/rops/key.txt"),
        );
    let run = Run::from(cmd.output().unwrap());
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("age1"),
        "names the recipients it could not match: {run:?}"
    );
    assert!(!s.audit_log().exists(), "the skill did not run");
}

#[test]
fn exit_codes_distinguish_skill_error_denial_limit_and_trap() {
    let s = Scratch::new();
    let run = probe(&s, "ops/release-manager", json!([{"fail": "nope"}]));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("nope"));

    // release-notes propagates the denial as its error: exit 3.
    let run = s.run_skill(
        "release-notes",
        "dev/alice",
        &root().join("demo/secrets.yaml"),
        &root().join("tests/testdata/policies/e2e.yaml"),
        &[],
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("communication.github"),
        "names the rule: {run:?}"
    );

    let run = s.run_skill(
        "probe",
        "ops/release-manager",
        &root().join("demo/secrets.yaml"),
        &root().join("tests/testdata/policies/e2e.yaml"),
        &[
            "--timeout",
            "300ms",
            "--input",
            r#"{"ops":[{"spin":true}]}"#,
        ],
    );
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("deadline"), "{run:?}");

    let run = s.run_skill(
        "probe",
        "ops/release-manager",
        &root().join("demo/secrets.yaml"),
        &root().join("tests/testdata/policies/e2e.yaml"),
        &[
            "--max-memory",
            "16MiB",
            "--input",
            r#"{"ops":[{"alloc_mb":64}]}"#,
        ],
    );
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("memory"), "{run:?}");

    let run = s.run_skill(
        "probe",
        "ops/release-manager",
        &root().join("demo/secrets.yaml"),
        &root().join("tests/testdata/policies/e2e.yaml"),
        &["--input", "not json"],
    );
    assert_eq!(run.code, 2, "{run:?}");
}

/// `--env NAME` picks `secrets.NAME.yaml` next to the default secrets file
/// (here from an agentsec.yaml in the working directory).
#[test]
fn env_selects_the_environment_file_next_to_the_default() {
    let s = Scratch::new();
    for name in ["secrets.yaml", "secrets.prod.yaml"] {
        std::fs::copy(root().join("demo").join(name), s.path("work").join(name)).unwrap();
    }
    s.write(
        "work/agentsec.yaml",
        &format!(
            "secrets: secrets.yaml\npolicy: {}\naudit_log: audit.log\nage_key_file: {}\n",
            root().join("tests/testdata/policies/e2e.yaml").display(),
            root().join("demo/age-key.DEMO-ONLY.txt").display()
        ),
    );
    let run_env = |extra: &[&str], expect: &str| {
        let input =
            json!({"ops": [{"get": "databases.postgres.production.password", "expect": expect}]});
        let mut cmd = s.command(&agentsec_tests::bin("agentsec-run"));
        cmd.arg(agentsec_tests::skill("probe"))
            .args([
                "--agent",
                "ops/release-manager",
                "--input",
                &input.to_string(),
            ])
            .args(extra);
        Run::from(cmd.output().unwrap())
    };
    let default = run_env(&[], PROD_PASSWORD);
    assert_eq!(default.json()[0]["matches"], true, "{default:?}");
    let prod = run_env(&["--env", "prod"], "Demo-Prod-Pg-Z8q2Lw5Xr7Kt1Vn3");
    assert_eq!(prod.json()[0]["matches"], true, "{prod:?}");
    let missing = run_env(&["--env", "qa"], "");
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(
        missing.stderr.contains("secrets.qa.yaml"),
        "names the file it looked for: {missing:?}"
    );
    let bad = run_env(&["--env", "../prod"], "");
    assert_eq!(bad.code, 2, "{bad:?}");
}
