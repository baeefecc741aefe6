//! `agentsec exec`: a program that is not a skill gets only the named secrets, each decided by
//! the policy for the agent and audited; a clean environment; `--file` through a memfd that
//! leaves nothing behind; the child's output redacted like a skill's.
#![expect(clippy::unwrap_used, reason = "tests")]

use agentsec_tests::{Run, Scratch, assert_no_leak, bin, demo_key};

const PASSWORD: &str = "exec-pw-81c4f0e2d9";
const TOKEN: &str = "exec-token-5a7b3c1d";

fn setup(s: &Scratch) {
    s.sops_encrypt(
        "work/secrets.yaml",
        &format!(
            "db:\n    password: {PASSWORD}\napi:\n    token: {TOKEN}\nother:\n    key: not-for-exec-3311\n"
        ),
    );
    s.write(
        "work/policy.yaml",
        "access_control:\n  secrets:\n    db:\n      allowed_agents: [ops/*]\n    api:\n      allowed_agents: [ops/*]\n",
    );
}

fn exec(s: &Scratch, args: &[&str]) -> Run {
    let mut cmd = s.command(&bin("agentsec"));
    cmd.args([
        "exec",
        "--agent",
        "ops/mcp",
        "--secrets",
        "secrets.yaml",
        "--policy",
        "policy.yaml",
        "--audit-log",
        "audit.log",
    ])
    .args(args)
    .env("SOPS_AGE_KEY_FILE", demo_key())
    .env("UNRELATED_PARENT_VAR", "should-not-pass");
    Run::from(cmd.output().unwrap())
}

#[test]
fn child_gets_only_the_named_variables_and_its_output_is_redacted() {
    let s = Scratch::new();
    setup(&s);
    let out = exec(
        &s,
        &[
            "--env",
            "POSTGRES_PASSWORD=db.password",
            "--env",
            "API_TOKEN=api.token",
            "--inherit-env",
            "PATH",
            "--",
            "sh",
            "-c",
            "env; echo \"stderr has $API_TOKEN\" >&2; \
             [ \"$POSTGRES_PASSWORD\" = \"$EXPECTED\" ] || echo MISMATCH; exit 7",
        ],
    );
    // EXPECTED is not passed (clean environment), so the comparison above must mismatch.
    assert_eq!(out.code, 7, "{out:?}");
    let names: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    let mut names: Vec<&str> = names
        .into_iter()
        .filter(|n| *n != "PWD" && *n != "SHLVL" && *n != "_")
        .collect();
    names.sort();
    assert_eq!(names, ["API_TOKEN", "PATH", "POSTGRES_PASSWORD"], "{out:?}");
    assert!(
        out.stdout
            .contains("POSTGRES_PASSWORD=[REDACTED:db.password]"),
        "{out:?}"
    );
    assert!(out.stdout.contains("MISMATCH"));
    assert!(
        out.stderr.contains("stderr has [REDACTED:api.token]"),
        "{out:?}"
    );
    for v in [PASSWORD, TOKEN] {
        assert_no_leak(v, out.stdout.as_bytes(), "stdout");
        assert_no_leak(v, out.stderr.as_bytes(), "stderr");
    }
    assert!(!out.stdout.contains("UNRELATED_PARENT_VAR"));
    // The value really is the secret: the child compares it with what it is given on stdin.
    let mut cmd = s.command(&bin("agentsec"));
    cmd.args([
        "exec",
        "--agent",
        "ops/mcp",
        "--secrets",
        "secrets.yaml",
        "--policy",
        "policy.yaml",
        "--audit-log",
        "audit.log",
        "--env",
        "P=db.password",
        "--",
        "/bin/sh",
        "-c",
        "read line; [ \"$line\" = \"$P\" ] && echo SAME",
    ])
    .env("SOPS_AGE_KEY_FILE", demo_key())
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        format!("{PASSWORD}\n").as_bytes(),
    )
    .unwrap();
    let got = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout), "SAME\n");
    // Audited like a skill's read: one record per path, skill `exec`.
    let records = s.audit_records();
    let reads: Vec<_> = records
        .iter()
        .filter(|r| r["access_type"] == "read")
        .collect();
    assert_eq!(reads.len(), 3, "{records:?}");
    assert!(
        reads
            .iter()
            .all(|r| r["decision"] == "allow" && r["skill"]["name"] == "exec")
    );
    assert!(records.iter().any(|r| r["detail"] == "exec end: exit 7"));
    for (path, bytes) in s.all_file_bytes() {
        for v in [PASSWORD, TOKEN] {
            assert_no_leak(v, &bytes, &path.display().to_string());
        }
    }
}

#[test]
fn a_denied_path_means_the_child_never_starts() {
    let s = Scratch::new();
    setup(&s);
    let marker = s.path("work/started");
    let out = exec(
        &s,
        &[
            "--env",
            "P=db.password",
            "--env",
            "K=other.key",
            "--",
            "/bin/sh",
            "-c",
            &format!("touch {}", marker.display()),
        ],
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("may not read `other.key`"), "{out:?}");
    assert!(out.stderr.contains("not started"), "{out:?}");
    assert!(!marker.exists(), "the child ran");
    let records = s.audit_records();
    assert!(
        records
            .iter()
            .any(|r| r["secret_path"] == "other.key" && r["decision"] == "deny")
    );
    assert!(
        records
            .iter()
            .any(|r| r["detail"] == "exec refused: the command was not started")
    );
    // Bad arguments: agentsec's own code, nothing started.
    let bad = exec(&s, &["--env", "1BAD=db.password", "--", "/bin/true"]);
    assert_eq!(bad.code, 125, "{bad:?}");
    let missing = exec(&s, &["--env", "P=db.password", "--", "no-such-program-xyz"]);
    assert_eq!(missing.code, 127, "{missing:?}");
}

#[test]
fn file_secrets_go_through_a_memfd_and_leave_nothing_behind() {
    let s = Scratch::new();
    setup(&s);
    let out = exec(
        &s,
        &[
            "--file",
            "PW_FILE=db.password",
            "--inherit-env",
            "PATH",
            "--",
            "sh",
            "-c",
            "echo \"path=$PW_FILE\"; readlink \"$PW_FILE\"; sha256sum < \"$PW_FILE\"; \
             echo extra >> \"$PW_FILE\" 2>/dev/null && echo WRITABLE; cat \"$PW_FILE\"",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("path=/proc/self/fd/"), "{out:?}");
    assert!(out.stdout.contains("/memfd:agentsec-PW_FILE"), "{out:?}");
    // The child read the value (its digest), could not change it (sealed), and printing it is
    // redacted.
    let digest = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(PASSWORD.as_bytes()))
    };
    assert!(out.stdout.contains(&digest), "{out:?}");
    assert!(!out.stdout.contains("WRITABLE"), "{out:?}");
    assert!(out.stdout.contains("[REDACTED:db.password]"), "{out:?}");
    assert_no_leak(PASSWORD, out.stdout.as_bytes(), "stdout");
    for (path, bytes) in s.all_file_bytes() {
        assert_no_leak(PASSWORD, &bytes, &path.display().to_string());
    }
}

/// The calling user must be bound to `--agent` when the agent is bound (here to a uid
/// nobody has): refused before any secret is read, on the record with the caller.
#[test]
fn an_agent_bound_to_another_user_is_refused_before_anything_is_read() {
    let s = Scratch::new();
    setup(&s);
    s.write(
        "work/policy.yaml",
        "agents:\n  ops/mcp: { unix_users: [\"4000000001\"] }\naccess_control:\n  secrets:\n    db:\n      allowed_agents: [ops/*]\n",
    );
    let marker = s.path("work/started");
    let out = exec(
        &s,
        &[
            "--env",
            "P=db.password",
            "--",
            "/bin/sh",
            "-c",
            &format!("touch {}", marker.display()),
        ],
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("may not act as agent `ops/mcp`"),
        "{out:?}"
    );
    assert!(!marker.exists(), "the child ran");
    let records = s.audit_records();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["decision"], "deny");
    assert!(
        records[0]["caller"]["uid"].as_u64().is_some(),
        "{records:#?}"
    );
    assert!(
        records[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("identity: ")
    );
}
