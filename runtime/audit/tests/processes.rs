//! N real processes × M appends to one log: one chain, exact count, with and
//! without rotation. The children are this test binary run again with
//! `--exact child_appender` and the log path in the environment.

#[expect(dead_code, reason = "shared test helpers; this file uses only some")]
mod common;

use std::process::{Command, Stdio};

use agentsec_audit::{
    AccessType, AuditLog, Decision, LogOptions, Record, log_files, read_entries, verify,
};
use common::{TestResult, run};

const LOG_ENV: &str = "AGENTSEC_AUDIT_TEST_CHILD_LOG";
const COUNT_ENV: &str = "AGENTSEC_AUDIT_TEST_CHILD_COUNT";
const MAX_SIZE_ENV: &str = "AGENTSEC_AUDIT_TEST_CHILD_MAX_SIZE";
const ID_ENV: &str = "AGENTSEC_AUDIT_TEST_CHILD_ID";

/// Does nothing unless started by `spawn_children` (then it is the child).
#[test]
fn child_appender() -> TestResult {
    let Some(path) = std::env::var_os(LOG_ENV) else {
        return Ok(());
    };
    let count: u64 = std::env::var(COUNT_ENV)?.parse()?;
    let id = std::env::var(ID_ENV)?;
    let mut options = LogOptions::new();
    if let Ok(max) = std::env::var(MAX_SIZE_ENV) {
        options = options.max_size(max.parse()?);
    }
    let mut log = AuditLog::open_with(&path, options)?;
    let run = run(&format!("ops/proc{id}"));
    for i in 0..count {
        let p = format!("p{id}.s{i}");
        log.append(&Record::new(&run, &p, AccessType::Read, Decision::Allow))?;
    }
    Ok(())
}

fn spawn_children(path: &std::path::Path, n: u64, m: u64, max_size: Option<u64>) -> TestResult {
    let exe = std::env::current_exe()?;
    let children: Vec<_> = (0..n)
        .map(|id| {
            let mut cmd = Command::new(&exe);
            cmd.args(["--exact", "child_appender", "--quiet"])
                .env(LOG_ENV, path)
                .env(COUNT_ENV, m.to_string())
                .env(ID_ENV, id.to_string())
                .stdout(Stdio::null());
            if let Some(max) = max_size {
                cmd.env(MAX_SIZE_ENV, max.to_string());
            }
            cmd.spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut child in children {
        assert!(child.wait()?.success(), "a child appender failed");
    }
    Ok(())
}

/// Every (process, i) pair appears exactly once.
fn assert_all_present(files: &[std::path::PathBuf], n: u64, m: u64) -> TestResult {
    let mut paths = Vec::new();
    read_entries(files, |e| paths.push(e.secret_path))?;
    paths.sort_unstable();
    let mut expected: Vec<String> = (0..n)
        .flat_map(|id| (0..m).map(move |i| format!("p{id}.s{i}")))
        .collect();
    expected.sort_unstable();
    assert_eq!(paths, expected);
    Ok(())
}

#[test]
fn processes_appending_concurrently_form_one_chain() -> TestResult {
    const N: u64 = 8;
    const M: u64 = 50;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.log");
    spawn_children(&path, N, M, None)?;
    let report = verify(&[&path])?;
    assert_eq!(report.entries, N * M);
    assert_all_present(&[path], N, M)
}

#[test]
fn processes_rotating_concurrently_form_one_chain() -> TestResult {
    const N: u64 = 6;
    const M: u64 = 40;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.log");
    spawn_children(&path, N, M, Some(4096))?;
    let files = log_files(&path)?;
    assert!(files.len() > 5, "{files:?}");
    let report = verify(&files)?;
    assert_eq!(report.entries, N * M);
    assert_all_present(&files, N, M)
}
