//! `agentsec skill precompile` fills the cache `agentsec-run` uses, and a component that
//! imports an interface the host does not grant is refused at link time with the import
//! named and how to do without it.

use agentsec_tests::components::generated_skill_importing;
use agentsec_tests::{Run, Scratch, bin, demo_key, root, skill, skills_dir};

fn precompile(s: &Scratch, args: &[&str]) -> Run {
    let mut cmd = s.command(&bin("agentsec"));
    cmd.args(["skill", "precompile"]).args(args);
    Run::from(cmd.output().expect("agentsec runs"))
}

#[test]
fn precompile_fills_the_cache_agentsec_run_uses() {
    let s = Scratch::new();
    let dir = s.path("work/skills");
    std::fs::create_dir_all(&dir).expect("test step");
    std::fs::copy(skill("probe"), dir.join("probe.wasm")).expect("test step");
    std::fs::copy(skill("release-notes"), dir.join("release_notes.wasm")).expect("test step");
    let dir_arg = dir.display().to_string();

    let first = precompile(&s, &[&dir_arg]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(
        first.stderr.matches(": compiled in ").count(),
        2,
        "{first:?}"
    );
    assert!(std::fs::read_dir(s.path("cache/agentsec")).is_ok_and(|mut d| d.next().is_some()));
    // The second time, both are found in the cache.
    let again = precompile(&s, &[&dir_arg]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        again.stderr.matches("already in the cache").count(),
        2,
        "{again:?}"
    );

    // agentsec-run with the same cache loads the compiled code: with a 1 ms compile
    // deadline it could not compile, so it must not need to (and with a cold cache it fails).
    let quick = |cache: &std::path::Path| {
        let out = s
            .command(&bin("agentsec-run"))
            .arg(dir.join("probe.wasm"))
            .args([
                "--agent",
                "ops/release-manager",
                "--input",
                r#"{"ops": []}"#,
            ])
            .args(["--compile-timeout", "1ms"])
            .arg("--secrets")
            .arg(root().join("demo/secrets.yaml"))
            .arg("--policy")
            .arg(root().join("tests/testdata/policies/e2e.yaml"))
            .arg("--audit-log")
            .arg(s.audit_log())
            .env("SOPS_AGE_KEY_FILE", demo_key())
            .env("XDG_CACHE_HOME", cache)
            .output()
            .expect("agentsec-run runs");
        Run::from(out)
    };
    let warm = quick(&s.path("cache"));
    assert_eq!(warm.code, 0, "{warm:?}");
    assert!(!warm.stderr.contains("ignoring cache artifact"), "{warm:?}");
    let cold = quick(&s.path("cold-cache"));
    assert_eq!(
        cold.code, 4,
        "a cold cache must compile, and 1 ms is too short: {cold:?}"
    );

    // A file that is not a component: named, exit 1, and the others are still done.
    let junk = s.write("work/skills2/junk.wasm", "not a component");
    std::fs::copy(skill("probe"), s.path("work/skills2/probe.wasm")).expect("test step");
    let mixed = precompile(&s, &[&s.path("work/skills2").display().to_string()]);
    assert_eq!(mixed.code, 1, "{mixed:?}");
    assert!(
        mixed.stderr.contains(&junk.display().to_string()),
        "{mixed:?}"
    );
    assert!(mixed.stderr.contains("already in the cache"), "{mixed:?}");

    // Usage: a directory without components, a path that does not exist.
    std::fs::create_dir_all(s.path("work/empty")).expect("test step");
    let empty = precompile(&s, &[&s.path("work/empty").display().to_string()]);
    assert_eq!(empty.code, 2, "{empty:?}");
    assert!(
        empty.stderr.starts_with("agentsec skill: error: ") && empty.stderr.contains("no `.wasm`"),
        "{empty:?}"
    );
    let missing = precompile(&s, &["/nonexistent/dir"]);
    assert_eq!(missing.code, 2, "{missing:?}");
}

#[test]
fn an_import_the_host_does_not_grant_is_named_at_link_time() {
    let s = Scratch::new();
    let component = s.path("work/wants_http.wasm");
    std::fs::write(
        &component,
        generated_skill_importing("wasi:http/outgoing-handler@0.2.0"),
    )
    .expect("test step");
    let run = s
        .command(&bin("agentsec-run"))
        .arg(&component)
        .args(["--agent", "ops/release-manager"])
        .arg("--skills")
        .arg(skills_dir())
        .arg("--secrets")
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(root().join("tests/testdata/policies/e2e.yaml"))
        .arg("--audit-log")
        .arg(s.audit_log())
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .output()
        .expect("agentsec-run runs");
    let run = Run::from(run);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("imports `wasi:http/outgoing-handler@0.2.0`, which agentsec does not grant")
            && run.stderr.contains("disableFeatures"),
        "{run:?}"
    );
    // The same component without the import links and runs.
    std::fs::write(
        &component,
        agentsec_tests::components::generated_skill(0, 0, 0),
    )
    .expect("test step");
    let ok = s
        .command(&bin("agentsec-run"))
        .arg(&component)
        .args(["--agent", "ops/release-manager"])
        .arg("--secrets")
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(root().join("tests/testdata/policies/e2e.yaml"))
        .arg("--audit-log")
        .arg(s.audit_log())
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .output()
        .expect("agentsec-run runs");
    assert_eq!(Run::from(ok).code, 0);
}
