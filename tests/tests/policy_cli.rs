//! Snapshot tests of `agentsec policy check|explain|who-can|diff`: stdout,
//! stderr and exit code of the real binary, on `policies/` (the demo policy
//! and the seed's example) and on the deliberately broken policies under
//! `tests/testdata/policies/broken/`.
//!
//! Snapshots live in `tests/testdata/policy-cli/NAME.stdout|stderr`; after an
//! intended change, regenerate them with `SNAPSHOTS=overwrite cargo test -p
//! agentsec-tests --test policy_cli` and review the diff.

#![expect(clippy::unwrap_used, reason = "tests")]

use agentsec_tests::{Scratch, bin, root};
use snapbox::Data;
use snapbox::cmd::Command;

/// Runs `agentsec ARGS` in a directory that shows the repository's
/// `policies/`, `demo/` and `tests/` (so paths in the output are the relative
/// ones given) but no agentsec.yaml, with a clean environment and **no key**
/// anywhere: `--secrets` is read for its key names only.
fn case(name: &str, args: &[&str], code: i32) {
    let scratch = Scratch::new();
    let work = review_dir(&scratch);
    let dir = root().join("tests/testdata/policy-cli");
    Command::new(bin("agentsec"))
        .args(args)
        .current_dir(work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", scratch.path("home"))
        .env("XDG_CONFIG_HOME", scratch.path("home/.config"))
        .env("COLUMNS", "200")
        .assert()
        .code(code)
        .stdout_eq(Data::read_from(&dir.join(format!("{name}.stdout")), None))
        .stderr_eq(Data::read_from(&dir.join(format!("{name}.stderr")), None));
}

/// `work/` of `scratch`: a repository root (`.git`) whose `policies`, `demo`
/// and `tests` are links to this repository's, and no agentsec.yaml.
fn review_dir(scratch: &Scratch) -> std::path::PathBuf {
    let work = scratch.path("work");
    std::fs::create_dir_all(work.join(".git")).unwrap();
    for dir in ["policies", "demo", "tests"] {
        std::os::unix::fs::symlink(root().join(dir), work.join(dir)).unwrap();
    }
    work
}

const DEMO: &str = "policies/demo.yaml";
const SEED: &str = "policies/seed-example.yaml";
const SECRETS: &str = "demo/secrets.yaml";
const BROKEN: &str = "tests/testdata/policies/broken";
const DIFF: &str = "tests/testdata/policies/diff";

#[test]
fn help() {
    case("policy-help", &["policy", "--help"], 0);
    case("check-help", &["policy", "check", "--help"], 0);
}

#[test]
fn check_valid_policies() {
    let p = "--policy";
    case(
        "check-demo",
        &["policy", "check", p, DEMO, "--secrets", SECRETS],
        0,
    );
    case(
        "check-seed",
        &["policy", "check", p, SEED, "--secrets", SECRETS],
        0,
    );
    case("check-seed-no-secrets", &["policy", "check", p, SEED], 0);
    let warn = "tests/testdata/policies/warnings.yaml";
    case(
        "check-warnings",
        &["policy", "check", p, warn, "--secrets", SECRETS],
        0,
    );
    case(
        "check-warnings-json",
        &[
            "policy",
            "check",
            p,
            warn,
            "--secrets",
            SECRETS,
            "--format",
            "json",
        ],
        0,
    );
}

#[test]
fn check_broken_policies() {
    for name in [
        "unknown-key",
        "wrong-type",
        "bad-glob",
        "malformed-path",
        "partial-wildcard",
    ] {
        let file = format!("{BROKEN}/{name}.yaml");
        case(
            &format!("check-broken-{name}"),
            &["policy", "check", "--policy", &file],
            1,
        );
    }
    case(
        "check-broken-duplicate",
        &[
            "policy",
            "check",
            "--policy",
            &format!("{BROKEN}/duplicate"),
        ],
        1,
    );
    // The demo and the seed's example both define databases.postgres.production.
    case(
        "check-policies-dir",
        &["policy", "check", "--policy", "policies"],
        1,
    );
    case(
        "check-broken-json",
        &[
            "policy",
            "check",
            "--policy",
            &format!("{BROKEN}/unknown-key.yaml"),
            "--format",
            "json",
        ],
        1,
    );
    case(
        "check-missing-file",
        &["policy", "check", "--policy", "no/such.yaml"],
        1,
    );
    case("check-no-policy", &["policy", "check"], 2);
    case(
        "check-bad-secrets",
        &[
            "policy",
            "check",
            "--policy",
            DEMO,
            "--secrets",
            "no/such.yaml",
        ],
        2,
    );
}

#[test]
fn explain() {
    let base = ["policy", "explain", "--policy", DEMO];
    let run = |name: &str, extra: &[&str], code: i32| {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        case(name, &args, code);
    };
    run(
        "explain-release-manager",
        &["--agent", "ops/release-manager"],
        0,
    );
    run(
        "explain-release-manager-secrets",
        &[
            "--agent",
            "ops/release-manager",
            "--skill",
            "db-healthcheck",
            "--secrets",
            SECRETS,
        ],
        0,
    );
    run("explain-intern", &["--agent", "ops/intern"], 0);
    run(
        "explain-intern-secrets",
        &["--agent", "ops/intern", "--secrets", SECRETS],
        0,
    );
    run("explain-nobody", &["--agent", "sales/bot"], 0);
    run(
        "explain-changelog-json",
        &[
            "--agent",
            "ops/changelog",
            "--secrets",
            SECRETS,
            "--format",
            "json",
        ],
        0,
    );
    run("explain-bad-agent", &["--agent", "ops//x"], 2);
    let egress = format!("{DIFF}/egress-wider.yaml");
    case(
        "explain-egress",
        &[
            "policy",
            "explain",
            "--policy",
            &egress,
            "--agent",
            "ops/release-manager",
        ],
        0,
    );
    case(
        "explain-egress-json",
        &[
            "policy",
            "explain",
            "--policy",
            &egress,
            "--agent",
            "ops/release-manager",
            "--format",
            "json",
        ],
        0,
    );
    case(
        "explain-seed",
        &[
            "policy",
            "explain",
            "--policy",
            SEED,
            "--agent",
            "ops/changelog",
            "--secrets",
            SECRETS,
        ],
        0,
    );
    case(
        "explain-broken",
        &[
            "policy",
            "explain",
            "--policy",
            &format!("{BROKEN}/bad-glob.yaml"),
            "--agent",
            "ops/a",
        ],
        1,
    );
}

#[test]
fn who_can() {
    let run = |name: &str, path: &str, policy: &str, extra: &[&str], code: i32| {
        let mut args = vec!["policy", "who-can", path, "--policy", policy];
        args.extend_from_slice(extra);
        case(name, &args, code);
    };
    run(
        "who-can-prod-password",
        "databases.postgres.production.password",
        DEMO,
        &[],
        0,
    );
    run(
        "who-can-redis-staging",
        "databases.redis.staging.password",
        DEMO,
        &[],
        0,
    );
    run("who-can-cloud", "cloud", DEMO, &[], 0);
    run(
        "who-can-nothing",
        "cloud.gcp.service_account_key",
        DEMO,
        &[],
        0,
    );
    run(
        "who-can-seed",
        "communication.discord.alerts_webhook",
        SEED,
        &[],
        0,
    );
    run(
        "who-can-json",
        "communication.github.token",
        DEMO,
        &["--format", "json"],
        0,
    );
    let inject = "tests/testdata/policies/who-can-inject.yaml";
    run(
        "who-can-inject",
        "communication.github.token",
        inject,
        &[],
        0,
    );
    run(
        "who-can-inject-json",
        "communication.github.token",
        inject,
        &["--format", "json"],
        0,
    );
    run(
        "who-can-inject-only-nowhere",
        "communication.github.token_backup",
        inject,
        &[],
        0,
    );
    let wider = format!("{DIFF}/egress-wider.yaml");
    run(
        "who-can-inject-as-url",
        "communication.discord.webhook",
        &wider,
        &[],
        0,
    );
    run("who-can-bad-path", "databases..x", DEMO, &[], 2);
    run("who-can-wildcard-path", "databases.*.staging", DEMO, &[], 2);
}

#[test]
fn diff() {
    let base = format!("{DIFF}/base.yaml");
    let narrower = format!("{DIFF}/narrower.yaml");
    let wider = format!("{DIFF}/wider.yaml");
    case("diff-same", &["policy", "diff", DEMO, DEMO], 0);
    case("diff-narrower", &["policy", "diff", &base, &narrower], 0);
    case("diff-wider", &["policy", "diff", &base, &wider], 1);
    case(
        "diff-wider-json",
        &["policy", "diff", &base, &wider, "--format", "json"],
        1,
    );
    case("diff-reverse", &["policy", "diff", &narrower, &base], 1);
    let (e_base, e_wider, e_narrower) = (
        format!("{DIFF}/egress-base.yaml"),
        format!("{DIFF}/egress-wider.yaml"),
        format!("{DIFF}/egress-narrower.yaml"),
    );
    case(
        "diff-egress-wider",
        &["policy", "diff", &e_base, &e_wider],
        1,
    );
    case(
        "diff-egress-wider-json",
        &["policy", "diff", &e_base, &e_wider, "--format", "json"],
        1,
    );
    case(
        "diff-egress-narrower",
        &["policy", "diff", &e_base, &e_narrower],
        0,
    );
    case(
        "diff-egress-reverse",
        &["policy", "diff", &e_narrower, &e_base],
        1,
    );
    case(
        "diff-seed-to-demo",
        &["policy", "diff", SEED, DEMO, "--secrets", SECRETS],
        1,
    );
    case(
        "diff-broken",
        &[
            "policy",
            "diff",
            &base,
            &format!("{BROKEN}/wrong-type.yaml"),
        ],
        1,
    );
}
