//! Hostile skills: each one tries to hang, exhaust, crash or exfiltrate.
//! For each, the host survives, the run ends as specified (exit code and
//! message), nothing leaks, and the audit log says what happened.

use std::io::Read as _;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use agentsec_tests::probe::{PROD_PASSWORD, PROD_PASSWORD_PATH, assert_run_event, probe_demo};
use agentsec_tests::{Run, Scratch, assert_no_leak, bin, demo_key, root, skill};
use serde_json::{Value, json};

const PASSWORD_PATH: &str = PROD_PASSWORD_PATH;

fn hostile(s: &Scratch, ops: Value, extra: &[&str]) -> Run {
    probe_demo(s, "ops/release-manager", ops, extra)
}

fn assert_clean(s: &Scratch, run: &Run) {
    assert_no_leak(PROD_PASSWORD, run.stdout.as_bytes(), "stdout");
    assert_no_leak(PROD_PASSWORD, run.stderr.as_bytes(), "stderr");
    for (file, bytes) in s.all_file_bytes() {
        assert_no_leak(PROD_PASSWORD, &bytes, &file.display().to_string());
    }
}

#[test]
fn infinite_loop_stops_at_the_deadline() {
    let s = Scratch::new();
    // The spin never ends by itself: exit 4 and the message are the deadline.
    let run = hostile(
        &s,
        json!([{"get": PASSWORD_PATH}, {"spin": true}]),
        &["--timeout", "500ms"],
    );
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains("wall-clock deadline exceeded"),
        "{run:?}"
    );
    let records = s.audit_records();
    assert_eq!(
        records[0]["decision"], "allow",
        "the read before the loop is on record"
    );
    assert_run_event(&s, "wall-clock deadline");
    assert_clean(&s, &run);
}

#[test]
fn blocking_sleep_past_the_deadline_is_stopped_by_the_watchdog() {
    let s = Scratch::new();
    let started = Instant::now();
    let run = hostile(&s, json!([{"sleep_ms": 600_000}]), &["--timeout", "300ms"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("deadline"), "{run:?}");
    assert_run_event(&s, "stuck in a host call");
    // The skill asked for ten minutes; compiling it (cold cache) is included here.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let s = Scratch::new();
    let run = hostile(&s, json!([{"alloc_mb": 4096}]), &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("memory limit exceeded"), "{run:?}");
    assert_run_event(&s, "memory limit");
    let run = hostile(&s, json!([{"alloc_mb": 40}]), &["--max-memory", "16MiB"]);
    assert_eq!(run.code, 4, "{run:?}");
    let run = hostile(&s, json!([{"alloc_mb": 8}]), &["--max-memory", "64MiB"]);
    assert_eq!(
        run.code, 0,
        "a modest allocation within the limit works: {run:?}"
    );
}

#[test]
fn deep_recursion_ends_the_run_and_the_host_survives() {
    let s = Scratch::new();
    let run = hostile(
        &s,
        json!([{"get": PASSWORD_PATH}, {"recurse": 100_000_000u64}]),
        &[],
    );
    // Rust guests keep their own stack in linear memory: it overflows into an
    // out-of-bounds trap (exit 5) before wasmtime's native stack limit
    // (exit 4) is reached; guests without a shadow stack hit the latter.
    match run.code {
        4 => assert!(run.stderr.contains("stack size limit exceeded"), "{run:?}"),
        5 => assert!(run.stderr.contains("trapped: wasm trap"), "{run:?}"),
        other => panic!("unexpected exit {other}: {run:?}"),
    }
    assert_clean(&s, &run);
    let records = s.audit_records();
    assert_eq!(records.len(), 2, "the read, then the end of the run");
    assert_run_event(
        &s,
        if run.code == 4 {
            "stack size limit"
        } else {
            "trap"
        },
    );
}

#[test]
fn output_flood_and_huge_results_hit_the_output_limit() {
    let s = Scratch::new();
    let run = hostile(&s, json!([{"flood": 50_000_000u64}]), &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("output size limit exceeded"), "{run:?}");
    assert_run_event(&s, "output size limit");
    assert!(
        run.stderr.len() < 2 << 20,
        "captured output is capped: {} bytes",
        run.stderr.len()
    );
    let run = hostile(&s, json!([{"big_result": 3_000_000u64}]), &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stdout.is_empty());
    let run = hostile(&s, json!([{"flood": 10_000u64}]), &["--max-output", "4KiB"]);
    assert_eq!(run.code, 4, "{run:?}");
}

#[test]
fn a_million_get_secret_calls_stop_at_the_call_limit_and_are_audited() {
    let s = Scratch::new();
    let run = hostile(
        &s,
        json!([{"get_many": 1_000_000u64, "path": PASSWORD_PATH}]),
        &["--max-secret-calls", "200"],
    );
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains("get-secret call limit exceeded"),
        "{run:?}"
    );
    let records = s.audit_records();
    assert_eq!(records.len(), 201, "200 reads and the breach");
    let last = records.last().unwrap();
    assert_eq!(last["decision"], "deny");
    assert!(last["detail"].as_str().unwrap().contains("limit"), "{last}");
    assert_clean(&s, &run);
}

#[test]
fn enormous_and_odd_paths_are_invalid_and_bounded_in_the_audit_log() {
    let s = Scratch::new();
    let huge = "a.".repeat(500_000) + "b";
    let run = hostile(
        &s,
        json!([
            {"get": "../etc/passwd"},
            {"get": "databases/postgres"},
            {"get": "databases.postgres.production.password\u{0}"},
            {"get": "\u{0}"},
            {"get": ""},
            {"get": "databases..password"},
            {"get": "[\"unterminated"},
            {"get": huge},
            {"list": "../"},
        ]),
        &[],
    );
    let out = run.json();
    for o in out.as_array().unwrap().iter().take(8) {
        assert_eq!(o["err"], "invalid-path", "{o}");
    }
    assert_eq!(out[8]["names"], json!([]));
    let log = std::fs::read(s.audit_log()).unwrap();
    assert!(
        log.len() < 64 * 1024,
        "a 1 MB path is not copied into the audit log ({} bytes)",
        log.len()
    );
    for record in s.audit_records() {
        assert_eq!(record["decision"], "deny", "{record}");
    }
}

/// An over-long path names nothing; its record keeps its full length but
/// hashes only its first `MAX_PATH_LEN` bytes (a guest chooses the length,
/// and the host call that hashes it cannot be interrupted).
#[test]
fn an_over_long_path_is_hashed_only_up_to_the_path_limit() {
    let s = Scratch::new();
    let head = "a".repeat(1024);
    let one = format!("{head}{}", "b".repeat(300_000));
    let two = format!("{head}{}", "c".repeat(300_000));
    let run = hostile(&s, json!([{"get": one}, {"get": two}]), &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let details: Vec<String> = s
        .audit_records()
        .iter()
        .filter(|r| r["access_type"] == "read")
        .map(|r| r["detail"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(
        details[0].contains(&format!("unknown-path len={}", one.len())),
        "{details:?}"
    );
    assert_eq!(details[0], details[1], "same first 1 KiB, same length");
}

#[test]
fn the_sandbox_grants_no_env_files_keys_or_sockets() {
    let s = Scratch::new();
    let keys = s.write(
        "home/.config/sops/age/keys.txt",
        &std::fs::read_to_string(demo_key()).unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let run = hostile(
        &s,
        json!([
            {"env": true},
            {"read_file": "/etc/passwd"},
            {"read_dir": "/"},
            {"read_file": keys.to_str().unwrap()},
            {"read_file": root().join("demo/secrets.yaml").to_str().unwrap()},
            {"read_file": "/proc/self/environ"},
            {"connect": addr},
        ]),
        &[],
    );
    let out = run.json();
    assert_eq!(out[0]["vars"], json!([]));
    for o in out.as_array().unwrap().iter().skip(1) {
        assert_eq!(o["ok"], false, "{o}");
    }
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "no connection reached the listener"
    );
}

#[test]
fn exfiltration_in_every_form_is_redacted() {
    let s = Scratch::new();
    let mut ops = Vec::new();
    for encoding in ["raw", "base64", "base64url", "hex", "url"] {
        ops.push(json!({"echo": PASSWORD_PATH, "encoding": encoding}));
        ops.push(json!({"print": PASSWORD_PATH, "encoding": encoding}));
    }
    ops.push(json!({"reflect": PASSWORD_PATH}));
    let run = hostile(&s, Value::Array(ops), &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout
            .matches("[REDACTED:databases.postgres.production.password]")
            .count(),
        5,
        "{run:?}"
    );
    // The value passed back as a path is on record, as a path that names
    // nothing: its length and a keyed hash, never its text.
    let unknown = s
        .audit_records()
        .iter()
        .filter(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("unknown-path len={}", PROD_PASSWORD.len())))
        })
        .count();
    assert!(unknown >= 2, "the reflected attempts are audited");
    assert_clean(&s, &run);
    for op in [
        json!([{"fail_with": PASSWORD_PATH}]),
        json!([{"panic_with": PASSWORD_PATH}]),
    ] {
        let run = hostile(&s, op, &[]);
        assert_ne!(run.code, 0);
        assert!(run.stderr.contains("[REDACTED:"), "{run:?}");
        assert_clean(&s, &run);
    }
}

#[test]
fn credential_shapes_are_redacted_or_fail_the_run() {
    let s = Scratch::new();
    // communication.github.token is a ghp_ token; echo it hex-encoded so that
    // value redaction catches it, and raw so that both layers agree.
    let ops = json!([{"fail": "leaking ghp_abcdefghijklmnopqrstuvwxyz0123456789 and AKIAIOSFODNN7EXAMPLE"}]);
    let run = hostile(&s, ops.clone(), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("[REDACTED:credential:github-token]"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("[REDACTED:credential:aws-access-key-id]"),
        "{run:?}"
    );
    assert!(
        !run.stderr
            .contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789")
    );
    let run = hostile(&s, ops, &["--on-credential-shape", "fail"]);
    assert_eq!(run.code, 6, "{run:?}");
    assert_run_event(&s, "credential shapes aws-access-key-id, github-token");
    assert!(
        run.stderr.contains("aws-access-key-id, github-token"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("AKIAIOSFODNN7EXAMPLE"));
}

/// Plants a unique secret in a SOPS file written by the real sops, runs a
/// skill that tries every exfiltration path with tracing at `trace`, and
/// looks for the secret (and its encodings) everywhere it must not be:
/// the host's /proc/<pid>/environ during the run, every file under HOME,
/// TMPDIR, the cache and the working directory, the audit log, stdout, stderr.
#[test]
fn planted_secret_appears_nowhere_it_must_not() {
    let s = Scratch::new();
    let planted = format!("planted-{}-Zq9/x+Y=", std::process::id());
    let secrets = s.sops_encrypt(
        "work/planted.yaml",
        &format!("planted:\n    token: {planted}\n    note_unencrypted: public\n"),
    );
    let policy = s.write(
        "work/policy.yaml",
        "access_control:\n  secrets:\n    planted:\n      allowed_agents: [ops/leaker]\n",
    );
    let mut ops = vec![
        json!({"get": "planted.token", "expect": planted}),
        json!({"list": ""}),
        json!({"reflect": "planted.token"}),
    ];
    for encoding in ["raw", "base64", "base64url", "hex", "url"] {
        ops.push(json!({"echo": "planted.token", "encoding": encoding}));
        ops.push(json!({"print": "planted.token", "encoding": encoding}));
    }
    ops.push(json!({"write_file": "planted.txt"}));
    ops.push(json!({"sleep_ms": 1500}));
    let input = s.write("work/input.json", &json!({ "ops": ops }).to_string());
    // Warm the compiled-component cache so the traced run logs the run, not
    // Cranelift compiling the component.
    let warm = s.run_skill(
        "probe",
        "ops/leaker",
        &secrets,
        &policy,
        &["--input", r#"{"ops":[]}"#],
    );
    assert_eq!(warm.code, 0, "{warm:?}");

    let mut child = s
        .command(&bin("agentsec-run"))
        .arg(skill("probe"))
        .args(["--agent", "ops/leaker", "--secrets"])
        .arg(&secrets)
        .arg("--policy")
        .arg(&policy)
        .arg("--audit-log")
        .arg(s.audit_log())
        .arg("--input")
        .arg(format!("@{}", input.display()))
        .args(["--timeout", "60s"])
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .env("AGENTSEC_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes while the run goes on (trace logging is voluminous).
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let stdout_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        out_pipe.read_to_end(&mut buf).map(|_| buf)
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        err_pipe.read_to_end(&mut buf).map(|_| buf)
    });
    let environ = format!("/proc/{}/environ", child.id());
    let mut environ_reads = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        if let Ok(env) = std::fs::read(&environ) {
            assert_no_leak(&planted, &env, "the host's environment");
            environ_reads += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let stdout = stdout_reader.join().unwrap().unwrap();
    let stderr = stderr_reader.join().unwrap().unwrap();
    assert!(
        environ_reads > 5,
        "the environment was sampled during the run ({environ_reads})"
    );
    assert!(status.success(), "{}", String::from_utf8_lossy(&stderr));
    let out: Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(out[0]["matches"], true, "the skill did get the value");
    assert!(stderr.len() > 1000, "trace logging was on");
    assert_no_leak(&planted, &stdout, "stdout");
    assert_no_leak(
        &planted,
        &stderr,
        "stderr (trace logs and the skill's output)",
    );
    for (file, bytes) in s.all_file_bytes() {
        if file == secrets || file == input {
            continue; // the encrypted file itself, and the test's own input (it holds the expected value)
        }
        assert_no_leak(&planted, &bytes, &file.display().to_string());
    }
    let audit = std::fs::read_to_string(s.audit_log()).unwrap();
    assert!(audit.contains("planted.token"), "the reads are on record");
}

/// A policy's `sandbox:` section sets limits and output handling; flags win.
#[test]
fn policy_sandbox_settings_apply_and_flags_override_them() {
    let s = Scratch::new();
    let policy = s.write(
        "work/sandboxed.yaml",
        &format!(
            "{}\nsandbox:\n  timeout: 400ms\n  max_secret_calls: 3\n  on_credential_shape: fail\n",
            std::fs::read_to_string(root().join("tests/testdata/policies/e2e.yaml")).unwrap()
        ),
    );
    let run_with = |ops: Value, extra: &[&str]| {
        let input = json!({ "ops": ops }).to_string();
        let mut args = vec!["--input", input.as_str()];
        args.extend_from_slice(extra);
        s.run_skill(
            "probe",
            "ops/release-manager",
            &root().join("demo/secrets.yaml"),
            &policy,
            &args,
        )
    };
    // The spin never ends by itself: exit 4 is the policy deadline.
    let run = run_with(json!([{"spin": true}]), &[]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr.contains("400ms"),
        "the policy deadline is the one reported: {run:?}"
    );
    let many = json!([{"get_many": 5, "path": PASSWORD_PATH}]);
    assert_eq!(
        run_with(many.clone(), &[]).code,
        4,
        "the policy allows 3 calls"
    );
    assert_eq!(
        run_with(many, &["--max-secret-calls", "10"]).code,
        0,
        "the flag wins"
    );
    let leak = json!([{"fail": "AKIAIOSFODNN7EXAMPLE"}]);
    assert_eq!(run_with(leak.clone(), &[]).code, 6, "the policy says fail");
    assert_eq!(
        run_with(leak, &["--on-credential-shape", "redact"]).code,
        1,
        "the flag wins"
    );
}

/// The path-length and component-size limits can be lowered per run.
#[test]
fn path_length_and_component_size_limits_apply() {
    let s = Scratch::new();
    let long = format!("databases.postgres.production.{}", "x".repeat(300));
    let run = hostile(
        &s,
        json!([{"get": long}, {"get": PASSWORD_PATH}]),
        &["--max-path-len", "64"],
    );
    let out = run.json();
    assert_eq!(out[0]["err"], "invalid-path", "{run:?}");
    assert!(
        out[0]["message"]
            .as_str()
            .unwrap()
            .contains("64-byte path length limit"),
        "{run:?}"
    );
    assert_eq!(out[1]["ok"], true, "short paths still work");

    let fresh = Scratch::new();
    let run = hostile(&fresh, json!([]), &["--max-component-size", "1KiB"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("component size limit"), "{run:?}");
    assert!(fresh.audit_records().is_empty(), "the skill never ran");
}
