//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use agentsec_audit::{AccessType, AuditLog, Decision, Record, RunContext};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A run context with recognisable, non-secret fields.
pub fn run(agent: &str) -> RunContext {
    RunContext::new(agent, "changelog", "ab".repeat(32), "0f".repeat(16))
}

/// Appends `n` records to the log at `path` and returns the path.
pub fn write_log(path: &Path, n: u64) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let mut log = AuditLog::open(path)?;
    let run = run("ops/release");
    for i in 0..n {
        let secret_path = format!("db.replica{i}.password");
        let decision = if i % 2 == 0 {
            Decision::Allow
        } else {
            Decision::Deny
        };
        let record = Record::new(&run, &secret_path, AccessType::Read, decision)
            .rule("db")
            .access_level("read");
        log.append(&record)?;
    }
    Ok(path.to_path_buf())
}

/// The log's lines, each with its `\n`.
pub fn lines(path: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.split_inclusive('\n').map(str::to_owned).collect())
}
