//! Limits of a whole run and of loading it, and how a run ends when the
//! skill does not return: through the real `agentsec-run`.
//!
//! - `--max-memory` bounds the run's total linear memory over all memories.
//! - Compiling is bounded: functions and code size before compiling, and a
//!   compile deadline.
//! - `wasi:cli/exit` is "no result" (exit 1), not a trap.
//! - A result that cannot be written to stdout is a failure (exit 7).
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure should stop the test loudly"
)]

use std::io::Read as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use agentsec_tests::components::generated_skill;
use agentsec_tests::{Run, Scratch, bin, demo_key, root};
use serde_json::json;

fn run_component(s: &Scratch, component: &Path, input: &str, extra: &[&str]) -> Run {
    let mut cmd = s.command(&bin("agentsec-run"));
    cmd.arg(component)
        .args(["--agent", "ops/release-manager", "--secrets"])
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(root().join("tests/testdata/policies/e2e.yaml"))
        .arg("--audit-log")
        .arg(s.audit_log())
        .args(["--input", input])
        .args(extra)
        .env("SOPS_AGE_KEY_FILE", demo_key());
    Run::from(cmd.output().unwrap())
}

fn probe(s: &Scratch, ops: serde_json::Value, extra: &[&str]) -> Run {
    let input = json!({ "ops": ops }).to_string();
    run_component(s, &agentsec_tests::skill("probe"), &input, extra)
}

#[test]
fn max_memory_bounds_the_total_over_many_memories() {
    let s = Scratch::new();
    // 12 extra memories of 2 MiB each: every one is far below 16 MiB, the
    // run's total (24 MiB and the main page) is not.
    let many = s.path("work/many_memories.wasm");
    std::fs::write(&many, generated_skill(12, 32, 0)).unwrap();
    let run = run_component(&s, &many, "{}", &["--max-memory", "16MiB"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("memory limit exceeded"), "{run:?}");

    // Within the total, the same component runs.
    let run = run_component(&s, &many, "{}", &["--max-memory", "32MiB"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout.trim(), "ok");

    // And one memory grown past the total by a real skill still stops.
    let run = probe(&s, json!([{"alloc_mb": 40}]), &["--max-memory", "16MiB"]);
    assert_eq!(run.code, 4, "{run:?}");
}

#[test]
fn a_component_with_too_many_functions_is_refused_before_compiling() {
    let s = Scratch::new();
    let big = s.path("work/many_functions.wasm");
    std::fs::write(&big, generated_skill(0, 0, 60_000)).unwrap();
    let started = Instant::now();
    let run = run_component(
        &s,
        &big,
        "{}",
        &["--timeout", "1s", "--max-memory", "16MiB"],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr
            .contains("60002 functions, over the compile limit of 50000")
            && run.stderr.contains("--max-functions"),
        "{run:?}"
    );
    assert!(
        took < Duration::from_secs(20),
        "refused without compiling: {took:?}"
    );
    assert!(s.audit_records().is_empty(), "the skill never ran");

    // Code size is limited the same way, and both are flags.
    let run = probe(&s, json!([]), &["--max-functions", "10"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains("over the compile limit of 10"),
        "{run:?}"
    );
    let run = probe(&s, json!([]), &["--max-code-size", "1KiB"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr
            .contains("bytes of code, over the compile limit of 1024"),
        "{run:?}"
    );

    // The policy's `sandbox:` sets them too.
    let policy = std::fs::read_to_string(root().join("tests/testdata/policies/e2e.yaml")).unwrap();
    let strict = s.write(
        "work/strict.yaml",
        &format!("{policy}\nsandbox:\n  max_functions: 10\n"),
    );
    let mut cmd = s.command(&bin("agentsec-run"));
    cmd.arg(agentsec_tests::skill("probe"))
        .args(["--agent", "ops/release-manager", "--secrets"])
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(&strict)
        .arg("--audit-log")
        .arg(s.audit_log())
        .env("SOPS_AGE_KEY_FILE", demo_key());
    let run = Run::from(cmd.output().unwrap());
    assert_eq!(run.code, 4, "{run:?}");
}

#[test]
fn compiling_past_the_compile_deadline_exits_4() {
    let s = Scratch::new();
    // A fresh cache, so the probe must be compiled.
    let run = probe(&s, json!([]), &["--compile-timeout", "1ms"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("compile deadline"), "{run:?}");
    assert!(run.stderr.contains("--compile-timeout"), "{run:?}");
}

#[test]
fn wasi_exit_is_a_missing_result_not_a_trap() {
    let s = Scratch::new();
    let run = probe(&s, json!([{"exit": 0}]), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr
            .contains("exited (wasi:cli/exit, status 0) without returning a result"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("trapped"), "{run:?}");

    // WASI p2 carries only success or failure: exit(3) arrives as status 1.
    let run = probe(&s, json!([{"exit": 3}]), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("exited with failure status 1"),
        "{run:?}"
    );
    let records = s.audit_records();
    let last = records.last().unwrap();
    assert_eq!(last["access_type"], "run", "{last}");
    assert!(
        last["detail"].as_str().unwrap().contains("wasi:cli/exit"),
        "{last}"
    );
}

/// Spawns `cmd` with stdout a pipe whose read end is closed at once.
fn into_closed_pipe(mut cmd: std::process::Command) -> Run {
    // The read end is closed before the child starts, so even an output
    // small enough for the pipe's buffer meets EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr,
    }
}

#[test]
fn a_result_that_cannot_be_written_is_a_failure() {
    let s = Scratch::new();
    let mut cmd = s.command(&bin("agentsec-run"));
    cmd.arg(agentsec_tests::skill("probe"))
        .args(["--agent", "ops/release-manager", "--secrets"])
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(root().join("tests/testdata/policies/e2e.yaml"))
        .arg("--audit-log")
        .arg(s.audit_log())
        .args(["--input", r#"{"ops": [{"big_result": 200000}]}"#])
        .env("SOPS_AGE_KEY_FILE", demo_key());
    let run = into_closed_pipe(cmd);
    assert_eq!(run.code, 7, "{run:?}");
    assert!(
        run.stderr.contains("could not be written to stdout"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("panicked"), "{run:?}");

    // `agentsec secrets decrypt` and `agentsec policy check` to a closed pipe.
    let mut cmd = s.command(&bin("agentsec"));
    cmd.args(["secrets", "decrypt"])
        .arg(root().join("demo/secrets.yaml"))
        .env("SOPS_AGE_KEY_FILE", demo_key());
    let run = into_closed_pipe(cmd);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("could not write"), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");

    let mut cmd = s.command(&bin("agentsec"));
    cmd.args(["policy", "check", "--policy"])
        .arg(root().join("tests/testdata/policies/e2e.yaml"));
    let run = into_closed_pipe(cmd);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("could not write"), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");

    // `agentsec audit verify` on the log the first run wrote.
    let mut cmd = s.command(&bin("agentsec"));
    cmd.args(["audit", "verify"]).arg(s.audit_log());
    let run = into_closed_pipe(cmd);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("could not write the report"), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
}
