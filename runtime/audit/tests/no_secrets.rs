//! A record carries identifiers only: what goes in is what comes out, and
//! nothing else reaches the file.

use agentsec_audit::{AccessType, AuditLog, Decision, Record, RunContext, verify};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A value the host holds while auditing; it must never reach the log.
const PLANTED_VALUE: &str = "s3cr3t-PLANTED-value-7f3a";
const PLANTED_PATH: &str = "databases.postgres.PLANTED-PATH-91c2.password";

#[test]
fn planted_path_appears_verbatim_and_nothing_else() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path)?;
    let secret = String::from(PLANTED_VALUE); // what the host would release
    let run = RunContext::new("ops/release", "changelog", "ab".repeat(32), "0f".repeat(16));
    let record = Record::new(&run, PLANTED_PATH, AccessType::Read, Decision::Allow)
        .rule("databases.postgres")
        .access_level("read")
        .detail("released");
    let appended = log.append(&record)?;

    let text = std::fs::read_to_string(&path)?;
    assert_eq!(text.matches(PLANTED_PATH).count(), 1);
    for haystack in [
        text.as_str(),
        &format!("{record:?} {run:?} {appended:?} {log:?}"),
    ] {
        assert!(!haystack.contains(&secret));
        assert!(!haystack.contains(&hex_of(&secret)));
    }

    // The line holds exactly the documented keys, in order, with the values
    // given and nothing more (`chain`: the first line of a file).
    let entry: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)?;
    let keys: Vec<&str> = entry.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "ts",
            "agent_id",
            "skill",
            "secret_path",
            "access_type",
            "decision",
            "rule",
            "access_level",
            "detail",
            "run_id",
            "seq",
            "prev",
            "chain",
            "hash"
        ]
    );
    assert_eq!(entry["agent_id"], "ops/release");
    assert_eq!(
        entry["skill"],
        serde_json::json!({"name": "changelog", "sha256": "ab".repeat(32)})
    );
    assert_eq!(entry["secret_path"], PLANTED_PATH);
    assert_eq!(entry["access_type"], "read");
    assert_eq!(entry["decision"], "allow");
    assert_eq!(entry["rule"], "databases.postgres");
    assert_eq!(entry["access_level"], "read");
    assert_eq!(entry["detail"], "released");
    assert_eq!(entry["run_id"], "0f".repeat(16));
    assert_eq!(entry["seq"], 1);
    assert_eq!(entry["hash"], appended.hash.as_str());
    let ts = entry["ts"].as_str().unwrap_or_default();
    assert_eq!(ts.len(), "2025-01-02T03:04:05.123456Z".len(), "{ts}");
    assert!(ts.ends_with('Z'));
    verify(&[&path])?;
    Ok(())
}

#[test]
fn absent_optionals_are_null() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.jsonl");
    let run = RunContext::new("a", "s", "00", "r");
    AuditLog::open(&path)?.append(&Record::new(&run, "p", AccessType::Write, Decision::Deny))?;
    let text = std::fs::read_to_string(&path)?;
    assert!(
        text.contains(r#""access_type":"write","decision":"deny","rule":null,"access_level":null,"detail":null,"#),
        "{text}"
    );
    Ok(())
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}
