//! Reviewing a policy against a SOPS file with no key anywhere (issue 13.5): `agentsec
//! policy` reads only the file's key names, lists exactly what the store would serve, and
//! takes its defaults from agentsec.yaml as `agentsec-run` does, flags winning.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure should stop the test loudly"
)]

use std::collections::BTreeSet;

use agentsec_sops::{Identities, SopsStore};
use agentsec_tests::{Run, Scratch, bin, demo_key};
use serde_json::Value;

/// A file with clear, encrypted and unbound values (a key with `:`, a mapping inside a
/// list, a list that mixes clear and encrypted values), as the real sops writes it.
const PLAINTEXT: &str = "\
db:
  password: s3cret
  host_unencrypted: db.internal
  port: 5432
\"a:b\":
  c: colon-key
team:
  - pw: in-a-list
tokens: [t1, t2]
mixed: [m1, null]
empty: \"\"
";

/// Every agent `review/*` may read everything.
const ALL: &str = "\
access_control:
  secrets:
    \"*\":
      allowed_agents: [\"review/*\"]
";

/// A scratch with `work/secrets.yaml` (encrypted by the real sops), `work/all.yaml`, and
/// `work/.git` (so the agentsec.yaml search stops at `work/`).
fn scratch() -> Scratch {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("work/.git")).unwrap();
    s.sops_encrypt("work/secrets.yaml", PLAINTEXT);
    s.write("work/all.yaml", ALL);
    s
}

/// `agentsec ARGS` in `work/` with no key anywhere: an empty HOME, no `SOPS_AGE_*` but a
/// key command that would leave a mark if any identity were looked for.
fn review(s: &Scratch, args: &[&str]) -> Run {
    let marker = s.path("key-cmd-ran");
    let out = s
        .command(&bin("agentsec"))
        .args(args)
        .env(
            "SOPS_AGE_KEY_CMD",
            format!("sh -c 'touch {}; exit 1'", marker.display()),
        )
        .output()
        .unwrap();
    assert!(!marker.exists(), "an identity was looked for: {args:?}");
    Run::from(out)
}

/// The paths the store serves for `work/secrets.yaml`, opened with the demo key.
fn served(s: &Scratch) -> Vec<String> {
    let mut ids = Identities::new();
    ids.add_file(&demo_key()).unwrap();
    let store = SopsStore::open(&s.path("work/secrets.yaml"), &ids).unwrap();
    store.paths().iter().map(ToString::to_string).collect()
}

/// The paths `explain --format json` grants.
fn granted(json: &Value) -> Vec<String> {
    json["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_review_needs_no_key_and_lists_what_the_store_serves() {
    let s = scratch();
    let explain = review(
        &s,
        &[
            "policy",
            "explain",
            "--agent",
            "review/bot",
            "--policy",
            "all.yaml",
            "--secrets",
            "secrets.yaml",
            "--format",
            "json",
        ],
    );
    assert_eq!(explain.code, 0, "{explain:?}");
    let paths = granted(&explain.json());
    assert_eq!(
        paths,
        served(&s),
        "names-only listing agrees with the store"
    );
    let shown: BTreeSet<&str> = paths.iter().map(String::as_str).collect();
    for expected in [
        "db.password",
        "db.host_unencrypted",
        "db.port",
        "tokens.0",
        "tokens.1",
        "empty",
    ] {
        assert!(shown.contains(expected), "{expected}: {paths:?}");
    }
    // Unbound values are never served, so never listed.
    for path in &paths {
        assert!(
            !path.contains("colon-key") && !path.starts_with("team") && !path.starts_with("mixed"),
            "{path}: {paths:?}"
        );
    }

    let check = review(
        &s,
        &[
            "policy",
            "check",
            "--policy",
            "all.yaml",
            "--secrets",
            "secrets.yaml",
        ],
    );
    assert_eq!(check.code, 0, "{check:?}");
    let diff = review(
        &s,
        &[
            "policy",
            "diff",
            "all.yaml",
            "all.yaml",
            "--secrets",
            "secrets.yaml",
            "--format",
            "json",
        ],
    );
    assert_eq!(diff.code, 0, "{diff:?}");
    diff.json();
}

#[test]
fn a_file_that_is_not_sops_is_a_usage_error_naming_it() {
    let s = scratch();
    s.write("work/plain.yaml", "db:\n  password: not-encrypted\n");
    let r = review(
        &s,
        &[
            "policy",
            "check",
            "--policy",
            "all.yaml",
            "--secrets",
            "plain.yaml",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.starts_with(
            "agentsec policy: error: --secrets: sops metadata not found in \"plain.yaml\""
        ),
        "{r:?}"
    );
    assert!(!r.stderr.contains("not-encrypted"), "{r:?}");
    assert_eq!(r.json()["ok"], false, "{r:?}");
}

#[test]
fn defaults_come_from_agentsec_yaml_and_flags_win() {
    let s = scratch();
    s.write(
        "work/agentsec.yaml",
        "policy: all.yaml\nsecrets: secrets.yaml\n",
    );
    // No flags: the policy and the secrets file of agentsec.yaml.
    let explain = review(
        &s,
        &[
            "policy",
            "explain",
            "--agent",
            "review/bot",
            "--format",
            "json",
        ],
    );
    assert_eq!(explain.code, 0, "{explain:?}");
    assert_eq!(explain.json()["paths"], "secrets", "{explain:?}");
    assert_eq!(granted(&explain.json()), served(&s));
    let check = review(&s, &["policy", "check"]);
    assert_eq!(check.code, 0, "{check:?}");
    let who = review(
        &s,
        &["policy", "who-can", "db.password", "--format", "json"],
    );
    assert_eq!(who.code, 0, "{who:?}");
    assert!(who.stdout.contains("review/*"), "{who:?}");

    // A flag wins: another policy, and another secrets file.
    s.write(
        "work/other.yaml",
        "access_control:\n  secrets:\n    db:\n      allowed_agent: [x/y]\n",
    );
    let other = review(&s, &["policy", "check", "--policy", "other.yaml"]);
    assert_eq!(other.code, 1, "{other:?}");
    assert!(
        other
            .stderr
            .starts_with("agentsec policy: error: other.yaml:4:7: unknown key"),
        "{other:?}"
    );
    let missing = review(&s, &["policy", "check", "--secrets", "nope.yaml"]);
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("nope.yaml"), "{missing:?}");

    // A secrets file from agentsec.yaml that is not there is named with its setting.
    s.write(
        "work/agentsec.yaml",
        "policy: all.yaml\nsecrets: gone.yaml\n",
    );
    let gone = review(&s, &["policy", "check"]);
    assert_eq!(gone.code, 2, "{gone:?}");
    assert!(
        gone.stderr
            .starts_with("agentsec policy: error: `secrets` of ")
            && gone
                .stderr
                .contains("agentsec.yaml: cannot operate on non-existent file \"gone.yaml\""),
        "{gone:?}"
    );

    // Without agentsec.yaml and without --policy: a usage error saying both ways.
    std::fs::remove_file(s.path("work/agentsec.yaml")).unwrap();
    let none = review(&s, &["policy", "check"]);
    assert_eq!(none.code, 2, "{none:?}");
    assert!(
        none.stderr.contains("--policy") && none.stderr.contains("agentsec.yaml"),
        "{none:?}"
    );
}
