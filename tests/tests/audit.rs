//! The audit log through the real binaries: concurrent `agentsec-run`
//! processes on one (rotating) log, fail-closed when it cannot be written,
//! keyed mode with an age-encrypted key, and `agentsec audit verify/query`.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure should stop the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use agentsec_tests::{Run, Scratch, assert_no_leak, bin, demo_key, root, skill};
use serde_json::{Value, json};

use agentsec_tests::probe::PROD_PASSWORD;

/// `agentsec-run probe` reading the production password, with the audit
/// flags given (and no others about the audit log).
fn probe_cmd(s: &Scratch, agent: &str, audit_args: &[&str]) -> Command {
    let input = json!({ "ops": [
        {"get": "databases.postgres.production.password", "expect": PROD_PASSWORD},
        {"get": "databases.postgres.production.port"},
    ]})
    .to_string();
    let mut cmd = s.command(&bin("agentsec-run"));
    cmd.arg(skill("probe"))
        .args(["--agent", agent, "--secrets"])
        .arg(root().join("demo/secrets.yaml"))
        .arg("--policy")
        .arg(root().join("tests/testdata/policies/e2e.yaml"))
        .args(["--input", &input])
        .args(audit_args)
        .env("SOPS_AGE_KEY_FILE", demo_key());
    cmd
}

fn agentsec(s: &Scratch, args: &[&str]) -> Run {
    let out = s
        .command(&bin("agentsec"))
        .args(args)
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .output()
        .unwrap();
    Run::from(out)
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An age-encrypted (armored) chain key (64 hex digits) for the demo
/// recipient, written by the real `age` (which the tests need: CI has it).
fn write_key(s: &Scratch) -> PathBuf {
    write_key_as(s, "audit-key.age", "5a")
}

/// As [`write_key`], to `work/NAME`, the key's bytes all `byte` (hex).
fn write_key_as(s: &Scratch, name: &str, byte: &str) -> PathBuf {
    let age = which("age").expect("the real `age` binary is needed (tests/run.sh installs it)");
    let recipient = std::fs::read_to_string(demo_key())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_owned))
        .expect("the demo key names its public key");
    let key = s.path(&format!("work/{name}"));
    let mut child = Command::new(age)
        .args(["-r", &recipient, "-a", "-o"])
        .arg(&key)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", byte.repeat(32)).as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    key
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[test]
fn concurrent_runs_on_a_rotating_log_form_one_chain() {
    const RUNS: usize = 8;
    let s = Scratch::new();
    let log = s.path("work/audit.log");
    let args = ["--audit-log", path_str(&log), "--audit-max-size", "2KiB"];
    let children: Vec<_> = (0..RUNS)
        .map(|i| {
            probe_cmd(&s, "ops/release-manager", &args)
                .env("AGENTSEC_TEST_RUN", i.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let run = Run::from(child.wait_with_output().unwrap());
        assert_eq!(run.code, 0, "{run:?}");
    }
    let segments = std::fs::read_dir(s.path("work"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("audit.log.")
        })
        .count();
    assert!(segments >= 3, "rotation happened: {segments} segments");

    let verify = agentsec(&s, &["audit", "verify", path_str(&log)]);
    assert_eq!(verify.code, 0, "{verify:?}");
    let expected = format!("ok: {} entries", 2 * RUNS);
    assert!(verify.stdout.starts_with(&expected), "{verify:?}");

    let query = agentsec(
        &s,
        &[
            "audit",
            "query",
            path_str(&log),
            "--secret",
            "databases.postgres.production.password",
            "--format",
            "json",
        ],
    );
    assert_eq!(query.code, 0, "{query:?}");
    let runs: std::collections::BTreeSet<String> = query
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["run_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(runs.len(), RUNS, "one password read per run");
    for entry in std::fs::read_dir(s.path("work")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert_no_leak(PROD_PASSWORD, &bytes, "an audit file");
    }
}

/// /dev/full opens (it is empty) but every write fails with ENOSPC: the
/// first get-secret traps, nothing is released, stderr says why.
#[cfg(target_os = "linux")]
#[test]
fn unwritable_log_mid_run_traps_and_releases_nothing() {
    let s = Scratch::new();
    let out = probe_cmd(&s, "ops/release-manager", &["--audit-log", "/dev/full"])
        .output()
        .unwrap();
    let run = Run::from(out);
    assert_eq!(run.code, 5, "{run:?}");
    assert!(
        run.stderr
            .contains("the audit record could not be written, so nothing was released"),
        "{run:?}"
    );
    assert!(run.stderr.contains("/dev/full"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert_no_leak(PROD_PASSWORD, run.stderr.as_bytes(), "stderr");
}

/// Both durability modes write the same records, each before its value is
/// released; `record` fails closed on a full disk as `run` does.
#[test]
fn audit_sync_modes_record_the_same_and_fail_closed() {
    let s = Scratch::new();
    let log = s.path("work/audit.log");
    for mode in [None, Some("run"), Some("record")] {
        let mut args = vec!["--audit-log", path_str(&log)];
        if let Some(mode) = mode {
            args.extend(["--audit-sync", mode]);
        }
        let run = Run::from(
            probe_cmd(&s, "ops/release-manager", &args)
                .output()
                .unwrap(),
        );
        assert_eq!(run.code, 0, "{mode:?}: {run:?}");
    }
    let verified = agentsec(&s, &["audit", "verify", path_str(&log)]);
    assert_eq!(verified.code, 0, "{verified:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 6, "two reads per run, three runs");
    assert!(
        entries
            .iter()
            .all(|e| e["decision"] == "allow" && e["access_type"] == "read")
    );
    assert_no_leak(PROD_PASSWORD, text.as_bytes(), "audit log");

    let full = ["--audit-log", "/dev/full", "--audit-sync", "record"];
    let run = Run::from(
        probe_cmd(&s, "ops/release-manager", &full)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 5, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");

    let bad = ["--audit-log", path_str(&log), "--audit-sync", "sometimes"];
    let run = Run::from(probe_cmd(&s, "ops/release-manager", &bad).output().unwrap());
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("use `run`"), "{run:?}");
}

/// A log that cannot be opened for writing, or that belongs to another mode,
/// stops the run at start-up: exit 2, the skill never runs.
#[test]
fn unusable_log_fails_fast_before_the_skill_runs() {
    let s = Scratch::new();
    let not_a_dir = s.write("work/file", "x");
    let log = not_a_dir.join("audit.log");
    let run = Run::from(
        probe_cmd(&s, "ops/release-manager", &["--audit-log", path_str(&log)])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("audit log"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");

    // A corrupt tail is refused at start-up too.
    let torn = s.write("work/torn.log", "{\"ts\":");
    let run = Run::from(
        probe_cmd(&s, "ops/release-manager", &["--audit-log", path_str(&torn)])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("incomplete record"), "{run:?}");
}

#[test]
fn keyed_log_needs_its_key_to_verify_and_to_append() {
    let s = Scratch::new();
    let key = write_key(&s);
    let log = s.path("work/keyed.log");
    let keyed = ["--audit-log", path_str(&log), "--audit-key", path_str(&key)];
    let run = Run::from(
        probe_cmd(&s, "ops/release-manager", &keyed)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("\"hmac\":\"").count(), 2, "{text}");
    assert_no_leak(&"5a".repeat(32), text.as_bytes(), "the keyed log");

    let ok = agentsec(
        &s,
        &["audit", "verify", path_str(&log), "--key", path_str(&key)],
    );
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains("hmac-sha256 chain"), "{ok:?}");
    let no_key = agentsec(&s, &["audit", "verify", path_str(&log)]);
    assert_eq!(no_key.code, 1, "{no_key:?}");
    assert!(no_key.stderr.contains("--key FILE"), "{no_key:?}");

    // Without the key, agentsec-run refuses to extend a keyed log.
    let plain = ["--audit-log", path_str(&log)];
    let run = Run::from(
        probe_cmd(&s, "ops/release-manager", &plain)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--audit-key"), "{run:?}");

    // `audit_key:` in agentsec.yaml works like the flag.
    s.write("work/agentsec.yaml", "audit_key: audit-key.age\n");
    let run = Run::from(
        probe_cmd(&s, "ops/release-manager", &plain)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let ok = agentsec(
        &s,
        &["audit", "verify", path_str(&log), "--key", path_str(&key)],
    );
    assert!(ok.stdout.starts_with("ok: 4 entries"), "{ok:?}");
}

#[test]
fn verify_names_the_tampering_and_query_warns() {
    let s = Scratch::new();
    let log = s.path("work/audit.log");
    for agent in ["ops/release-manager", "ops/intern", "ops/release-manager"] {
        let run = Run::from(
            probe_cmd(&s, agent, &["--audit-log", path_str(&log)])
                .output()
                .unwrap(),
        );
        assert!(run.code == 0 || run.code == 1 || run.code == 3, "{run:?}");
    }
    let ok = agentsec(&s, &["audit", "verify", path_str(&log), "--format", "json"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    let report = ok.json();
    let head = report["head"].as_str().unwrap().to_owned();
    let entries = report["entries"].as_u64().unwrap();
    assert!(entries >= 4, "{report}");

    let who = agentsec(
        &s,
        &[
            "audit",
            "query",
            path_str(&log),
            "--secret",
            "databases.postgres",
            "--decision",
            "allow",
            "--since",
            "1h",
            "--agent",
            "ops/*",
        ],
    );
    assert_eq!(who.code, 0, "{who:?}");
    assert!(
        who.stdout.contains("agents: ops/release-manager\n"),
        "{who:?}"
    );
    assert!(!who.stdout.contains("ops/intern"), "{who:?}");

    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.split_inclusive('\n').collect();
    let cases: [(&str, String); 4] = [
        ("was edited", original.replacen("\"read\"", "\"list\"", 1)),
        (
            "entries deleted",
            [lines[0], lines[2]].concat() + &lines[3..].concat(),
        ),
        (
            "entries reordered",
            [lines[1], lines[0]].concat() + &lines[2..].concat(),
        ),
        (
            "entry inserted",
            [lines[0], lines[1], lines[1]].concat() + &lines[2..].concat(),
        ),
    ];
    for (what, text) in cases {
        std::fs::write(&log, text).unwrap();
        let bad = agentsec(&s, &["audit", "verify", path_str(&log)]);
        assert_eq!(bad.code, 1, "{what}: {bad:?}");
        assert!(bad.stderr.contains(what), "{what}: {bad:?}");
        assert!(bad.stderr.contains("seq "), "{what}: {bad:?}");
        let q = agentsec(&s, &["audit", "query", path_str(&log)]);
        assert_eq!(q.code, 1, "{what}: {q:?}");
        assert!(q.stderr.contains("cannot be trusted"), "{what}: {q:?}");
    }

    // Truncation of the tail is a valid shorter chain: only --expect-head sees it.
    std::fs::write(&log, lines[..lines.len() - 1].concat()).unwrap();
    let short = agentsec(&s, &["audit", "verify", path_str(&log)]);
    assert_eq!(short.code, 0, "{short:?}");
    let cut = agentsec(
        &s,
        &["audit", "verify", path_str(&log), "--expect-head", &head],
    );
    assert_eq!(cut.code, 1, "{cut:?}");
    assert!(cut.stderr.contains("truncated"), "{cut:?}");

    let usage = agentsec(
        &s,
        &["audit", "query", path_str(&log), "--since", "yesterday"],
    );
    assert_eq!(usage.code, 2, "{usage:?}");
}

/// The lines of a keyed log rewritten as an unkeyed SHA-256 chain, as
/// someone without the key can: entry `drop` (1-based) removed, `seq` and
/// `prev` renumbered, every hash recomputed; the first entry's chain marker
/// replaced by `marker` (`None`: removed).
fn forge_unkeyed(text: &str, drop: usize, marker: Option<&str>) -> String {
    use sha2::Digest as _;
    let mut prev = "0".repeat(64);
    let mut out = String::new();
    let kept = text.lines().enumerate().filter(|(i, _)| i + 1 != drop);
    for (n, (_, line)) in kept.enumerate() {
        // `,"hmac":"<64 hex>"}` is the last 75 bytes.
        let body = &line[..line.len() - 75];
        let (head, rest) = body.split_once(",\"seq\":").unwrap();
        let after_prev = &rest[rest.find("\"prev\":\"").unwrap() + 8 + 64 + 1..];
        let chain = match (n, marker) {
            (0, Some(m)) => format!(",\"chain\":{m}"),
            (0, None) => String::new(),
            _ => after_prev.to_owned(),
        };
        let canonical = format!("{head},\"seq\":{},\"prev\":\"{prev}\"{chain}}}", n + 1);
        let hash = hex::encode(sha2::Sha256::digest(canonical.as_bytes()));
        out.push_str(&canonical[..canonical.len() - 1]);
        out.push_str(&format!(",\"hash\":\"{hash}\"}}\n"));
        prev = hash;
    }
    out
}

#[test]
fn a_keyed_log_cannot_be_downgraded_to_an_unkeyed_chain() {
    let s = Scratch::new();
    let key = write_key(&s);
    let log = s.path("work/keyed.log");
    for _ in 0..2 {
        let run = Run::from(
            probe_cmd(
                &s,
                "ops/release-manager",
                &["--audit-log", path_str(&log), "--audit-key", path_str(&key)],
            )
            .output()
            .unwrap(),
        );
        assert_eq!(run.code, 0, "{run:?}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let first = text.lines().next().unwrap();
    let marker_at = first
        .find(",\"chain\":{\"kind\":\"hmac-sha256\",\"key_id\":\"")
        .unwrap();
    let marker = &first[marker_at + 9..first.len() - 75];
    assert_eq!(
        text.matches("\"chain\"").count(),
        1,
        "only the first entry is marked: {text}"
    );
    assert_no_leak(&"5a".repeat(32), text.as_bytes(), "the keyed log");

    // The marker kept, the chain recomputed without the key: refused, even
    // by a verifier who has no key.
    std::fs::write(&log, forge_unkeyed(&text, 2, Some(marker))).unwrap();
    let v = agentsec(&s, &["audit", "verify", path_str(&log)]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(
        v.stderr.contains("says the log is keyed") && v.stderr.contains("downgrade"),
        "{v:?}"
    );
    let q = agentsec(&s, &["audit", "query", path_str(&log)]);
    assert_eq!(q.code, 1, "{q:?}");

    // The whole file rewritten as a plain chain (marker too): without any
    // key configured this is indistinguishable from an unkeyed log...
    for forged_marker in [Some(r#"{"kind":"sha256"}"#), None] {
        std::fs::write(&log, forge_unkeyed(&text, 2, forged_marker)).unwrap();
        let v = agentsec(&s, &["audit", "verify", path_str(&log)]);
        assert_eq!(v.code, 0, "{v:?}");
        // ...but where agentsec.yaml configures the key, verify and query
        // require a keyed chain, without any flag.
        s.write("work/agentsec.yaml", "audit_key: audit-key.age\n");
        let v = agentsec(&s, &["audit", "verify", path_str(&log)]);
        assert_eq!(v.code, 1, "{v:?}");
        assert!(v.stderr.contains("is not keyed"), "{v:?}");
        let q = agentsec(&s, &["audit", "query", path_str(&log)]);
        assert_eq!(q.code, 1, "{q:?}");
        let v = agentsec(
            &s,
            &[
                "audit",
                "verify",
                path_str(&log),
                "--audit-key",
                path_str(&key),
            ],
        );
        assert_eq!(v.code, 1, "{v:?}");
        std::fs::remove_file(s.path("work/agentsec.yaml")).unwrap();
    }

    // The intact log with the key from agentsec.yaml: ok, naming the key id.
    std::fs::write(&log, &text).unwrap();
    s.write("work/agentsec.yaml", "audit_key: audit-key.age\n");
    let v = agentsec(&s, &["audit", "verify", path_str(&log)]);
    assert_eq!(v.code, 0, "{v:?}");
    assert!(v.stdout.contains("hmac-sha256 chain, key id "), "{v:?}");
    std::fs::remove_file(s.path("work/agentsec.yaml")).unwrap();
    // Another key: named as such.
    let other = write_key_as(&s, "other-key.age", "6b");
    let v = agentsec(
        &s,
        &["audit", "verify", path_str(&log), "--key", path_str(&other)],
    );
    assert_eq!(v.code, 1, "{v:?}");
    assert!(
        v.stderr.contains("was started with the key whose id is"),
        "{v:?}"
    );
    // A keyed log queried without its key is unverified: exit 1.
    let q = agentsec(&s, &["audit", "query", path_str(&log)]);
    assert_eq!(q.code, 1, "{q:?}");
    assert!(q.stderr.contains("unverified"), "{q:?}");
}

/// `audit verify` and `audit query` take the log (and key) from agentsec.yaml as
/// `agentsec-run` does, a LOG argument wins, and `--format human|json` (with `text` kept
/// as an alias of `human`) is the same flag as in `agentsec policy`.
#[test]
fn audit_commands_take_defaults_from_agentsec_yaml_and_share_the_format_flag() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("work/.git")).unwrap();
    let log = s.path("work/logs/audit.log");
    let run = Run::from(
        probe_cmd(&s, "ops/release-manager", &["--audit-log", path_str(&log)])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:?}");

    // No agentsec.yaml, no LOG: the default location, which holds nothing here.
    let none = agentsec(&s, &["audit", "verify"]);
    assert_eq!(none.code, 2, "{none:?}");
    assert!(
        none.stderr.starts_with("agentsec audit: error: ")
            && none.stderr.contains("home/.local/state/agentsec/audit.log"),
        "{none:?}"
    );

    s.write("work/agentsec.yaml", "audit_log: logs/audit.log\n");
    for format in ["human", "text"] {
        let ok = agentsec(&s, &["audit", "verify", "--format", format]);
        assert_eq!(ok.code, 0, "{format}: {ok:?}");
        assert!(ok.stdout.starts_with("ok: 2 entries"), "{format}: {ok:?}");
    }
    let json = agentsec(&s, &["audit", "verify", "--format", "json"]);
    assert_eq!(json.code, 0, "{json:?}");
    assert_eq!(json.json()["ok"], true, "{json:?}");
    assert_eq!(json.json()["entries"], 2, "{json:?}");

    let query = agentsec(&s, &["audit", "query", "--format", "json"]);
    assert_eq!(query.code, 0, "{query:?}");
    let lines: Vec<Value> = query
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{query:?}");
    assert!(lines.iter().all(|e| e["agent_id"] == "ops/release-manager"));
    let table = agentsec(&s, &["audit", "query", "--format", "human"]);
    assert_eq!(table.code, 0, "{table:?}");
    assert!(table.stdout.contains("2 of 2 entries match"), "{table:?}");

    // A LOG argument wins over agentsec.yaml.
    let other = agentsec(&s, &["audit", "verify", "missing.log"]);
    assert_eq!(other.code, 2, "{other:?}");
    assert!(other.stderr.contains("missing.log"), "{other:?}");
}
