//! Every way a policy file can be wrong, with the exact `file:line:column`.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

use agentsec_policy::{InvalidPolicy, Policy, PolicyError};

fn err(text: &str) -> PolicyError {
    match Policy::from_sources(&[("p.yaml", text)]) {
        Ok(p) => panic!("expected an error, got {p:?}"),
        Err(e) => e,
    }
}

/// Asserts the message starts with `p.yaml:line:col: ` and contains `needle`.
#[track_caller]
fn check(text: &str, line: usize, col: usize, needle: &str) -> PolicyError {
    let e = err(text);
    let msg = e.to_string();
    let prefix = format!("p.yaml:{line}:{col}: ");
    assert!(
        msg.starts_with(&prefix),
        "expected prefix {prefix:?}: {msg}"
    );
    assert!(msg.contains(needle), "expected {needle:?} in: {msg}");
    let at = e.location().unwrap();
    assert_eq!((at.origin(), at.line(), at.column()), ("p.yaml", line, col));
    e
}

#[test]
fn empty_file() {
    check("", 1, 1, "policy is empty");
    check("# only a comment\n", 1, 1, "policy is empty");
    check("---\n", 2, 1, "policy is empty");
}

#[test]
fn no_access_control() {
    check(
        "other: 1\n",
        1,
        1,
        "unknown key `other` in the top level; expected one of access_control, agents, egress, identity, sandbox",
    );
    check("{}\n", 1, 1, "missing `access_control`");
    check(
        "- a\n",
        1,
        1,
        "`the document` must be a mapping, found a list",
    );
    check(
        "access_control:\n  other: {}\n",
        2,
        3,
        "unknown key `other` in access_control",
    );
    check(
        "access_control: {}\n",
        1,
        17,
        "missing `secrets` in access_control",
    );
    check(
        "access_control:\n  secrets: [a]\n",
        2,
        12,
        "`secrets` must be a mapping, found a list",
    );
}

const HEAD: &str = "access_control:\n  secrets:\n";

fn rules(body: &str) -> String {
    format!("{HEAD}{body}")
}

#[test]
fn unknown_rule_key() {
    let e = check(
        &rules("    a.b:\n      allowed_agents: [ops/x]\n      allowd_agents: [ops/y]\n"),
        5,
        7,
        "unknown key `allowd_agents` in a rule; expected one of allowed_agents",
    );
    assert!(matches!(
        e.invalid(),
        Some(InvalidPolicy::UnknownKey { .. })
    ));
}

#[test]
fn wrong_types() {
    check(
        &rules("    a.b:\n      allowed_agents: ops/x\n"),
        4,
        23,
        "`allowed_agents` must be a list, found a string; write a list: `allowed_agents: [ops/release-manager]`",
    );
    check(
        &rules("    a.b:\n      allowed_agents: [ops/x]\n      audit: \"yes\"\n"),
        5,
        14,
        "`audit` must be a boolean, found a string; write `audit: true` or `audit: false` without quotes",
    );
    check(
        &rules("    a.b:\n      allowed_agents: [ops/x]\n      audit: yes\n"),
        5,
        14,
        "`audit` must be a boolean, found a string",
    );
    check(
        &rules("    a.b:\n      allowed_agents: [ops/x, null]\n"),
        4,
        31,
        "`allowed_agents` must be a string, found null",
    );
    check(
        &rules("    a.b:\n      allowed_agents: [ops/x]\n      access_level: [readonly]\n"),
        5,
        21,
        "`access_level` must be a string, found a list",
    );
    check(
        &rules("    a.b:\n      allowed_agents:\n        ops: x\n"),
        5,
        9,
        "`allowed_agents` must be a list, found a mapping",
    );
    check(
        &rules("    a.b: [ops/x]\n"),
        3,
        10,
        "`a rule` must be a mapping, found a list",
    );
    check(
        &rules("    a.b:\n"),
        3,
        5,
        "`a rule` must be a mapping, found null",
    );
    check(
        &rules("    ? [a]\n    : {}\n"),
        3,
        7,
        "`a mapping key` must be a string, found a list",
    );
}

#[test]
fn bad_globs() {
    check(
        &rules("    a.b:\n      allowed_agents: [\"ops/[ab]\"]\n"),
        4,
        24,
        "invalid agent glob `ops/[ab]`: '[' at byte 4 is not allowed",
    );
    check(
        &rules("    a.b:\n      denied_agents: [ops/a**]\n"),
        4,
        23,
        "`**` at byte 5 must be a whole segment",
    );
    check(
        &rules("    a.b:\n      allowed_agents: [\"\"]\n"),
        4,
        24,
        "the glob is empty",
    );
}

#[test]
fn bad_paths() {
    check(
        &rules("    data*:\n      allowed_agents: [ops/x]\n"),
        3,
        5,
        "`*` at byte 4 is inside a segment; `*` stands for one whole segment only",
    );
    check(
        &rules("    a..b:\n      allowed_agents: [ops/x]\n"),
        3,
        5,
        "empty segment at byte 2",
    );
    check(
        &rules("    \"a b\":\n      allowed_agents: [ops/x]\n"),
        3,
        5,
        "' ' at byte 1 is not allowed in a dotted segment",
    );
    check(
        &rules("    \"\":\n      allowed_agents: [ops/x]\n"),
        3,
        5,
        "secret path is empty",
    );
}

#[test]
fn duplicate_keys() {
    check(
        &rules(
            "    a.b:\n      allowed_agents: [ops/x]\n    a.b:\n      allowed_agents: [ops/y]\n",
        ),
        5,
        5,
        "duplicate key `a.b` (first at p.yaml:3:5)",
    );
    check(
        &rules("    a.b:\n      allowed_agents: [ops/x]\n      allowed_agents: [ops/y]\n"),
        5,
        7,
        "duplicate key `allowed_agents` (first at p.yaml:4:7)",
    );
    // Same rule, two spellings: a conflict, not a silent merge.
    check(
        &rules(
            "    a.b:\n      allowed_agents: [ops/x]\n    '[\"a\"][\"b\"]':\n      denied_agents: [ops/y]\n",
        ),
        5,
        5,
        "rule `a.b` is also defined at p.yaml:3:5",
    );
}

#[test]
fn rule_without_agents() {
    check(
        &rules("    a.b:\n      access_level: post\n"),
        3,
        5,
        "rule `a.b` names no agents",
    );
    check(
        &rules("    a.b:\n      allowed_agents: []\n      denied_agents: []\n"),
        3,
        5,
        "rule `a.b` names no agents",
    );
}

#[test]
fn bad_access_level_and_skills() {
    check(
        &rules("    a.b:\n      allowed_agents: [ops/x]\n      access_level: Read\n"),
        5,
        21,
        "invalid access_level: unknown access level `Read`; known levels: readonly, read-write, post, sign",
    );
    // A level agentsec does not know could not be enforced: it is an error, not a label.
    check(
        &rules("    a.b:\n      allowed_agents: [ops/x]\n      access_level: rotate\n"),
        5,
        21,
        "invalid access_level: unknown access level `rotate`; known levels: readonly, read-write, post, sign",
    );
    check(
        &rules("    a.b:\n      allowed_agents: [ops/x]\n      skills: [\"sha256:ABC\"]\n"),
        5,
        16,
        "invalid skill: a skill digest is `sha256:` followed by exactly 64 lowercase hex digits",
    );
    check(
        &rules("    a.b:\n      allowed_agents: [ops/x]\n      skills: [\"my skill\"]\n"),
        5,
        16,
        "skill name has ' ' at byte 2",
    );
    check(
        &rules("    a.b:\n      allowed_agents: [ops/x]\n      skills: db-healthcheck\n"),
        5,
        15,
        "`skills` must be a list",
    );
}

#[test]
fn yaml_syntax_and_unsupported_features() {
    let e = err("access_control:\n  secrets: [\n");
    assert!(e.to_string().starts_with("p.yaml:"), "{e}");
    assert!(e.to_string().contains("YAML syntax error"), "{e}");
    check(
        &rules("    a.b: &r\n      allowed_agents: [ops/x]\n    a.c: *r\n"),
        3,
        5,
        "YAML anchors are not supported",
    );
    check(
        &rules("    a.b:\n      allowed_agents: !!seq [ops/x]\n"),
        4,
        7,
        "YAML tags are not supported",
    );
    check(
        "access_control:\n  secrets: {}\n---\naccess_control:\n  secrets: {}\n",
        3,
        1,
        "one YAML document",
    );
    check(
        "a: [[[[[[[[[[x]]]]]]]]]]\n",
        1,
        11,
        "nested deeper than 8 levels",
    );
}

#[test]
fn io_errors_name_the_file() {
    let e = Policy::load(&["/nonexistent/policy.yaml".into()]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/policy.yaml: cannot read policy"),
        "{e}"
    );
    assert!(matches!(Policy::load(&[]), Err(PolicyError::NoSources)));

    let dir = tempfile::tempdir().unwrap();
    let e = Policy::load(&[dir.path().to_path_buf()]).unwrap_err();
    assert!(matches!(e, PolicyError::EmptyDir { .. }), "{e}");

    let big = dir.path().join("big.yaml");
    std::fs::write(
        &big,
        vec![b'#'; agentsec_policy::MAX_POLICY_FILE_SIZE as usize + 1],
    )
    .unwrap();
    assert!(matches!(
        Policy::load(std::slice::from_ref(&big)),
        Err(PolicyError::TooLarge { .. })
    ));
    std::fs::write(&big, b"access_control:\n  secrets: {}\n# \xff\n").unwrap();
    assert!(matches!(
        Policy::load(&[big]),
        Err(PolicyError::NotUtf8 { offset: 32, .. })
    ));
}

#[test]
fn empty_rule_set_is_valid_and_denies_everything() {
    let p = Policy::from_sources(&[("p.yaml", "access_control:\n  secrets: {}\n")]).unwrap();
    assert!(p.is_empty());
}
