//! Appending: the chain, reopening, concurrent writers, fail-closed.

mod common;

use std::path::Path;

use agentsec_audit::{
    AccessType, AuditError, AuditLog, Decision, GENESIS_HASH, MAX_RECORD_SIZE, Record, verify,
};
use common::{TestResult, lines, run, write_log};

#[test]
fn chain_of_several_appends_verifies() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("nested/dirs/audit.jsonl");
    let mut log = AuditLog::open(&path)?;
    let run = run("ops/release");
    let mut last = None;
    for (i, decision) in [Decision::Allow, Decision::Deny, Decision::Allow]
        .into_iter()
        .enumerate()
    {
        let record = Record::new(&run, "github.token", AccessType::Read, decision);
        let appended = log.append(&record)?;
        assert_eq!(appended.seq, i as u64 + 1);
        last = Some(appended);
    }
    let report = verify(&[&path])?;
    assert_eq!(report.entries, 3);
    assert_eq!(Some(report.head_hash), last.map(|a| a.hash));

    let first: serde_json::Value = serde_json::from_str(&lines(&path)?[0])?;
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev"], GENESIS_HASH);
    Ok(())
}

#[test]
fn empty_log_verifies_to_genesis() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.jsonl");
    AuditLog::open(&path)?;
    let report = verify(&[&path])?;
    assert_eq!(report.entries, 0);
    assert_eq!(report.head_hash, GENESIS_HASH);
    Ok(())
}

#[cfg(unix)]
#[test]
fn new_log_is_private() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("d/audit.jsonl");
    AuditLog::open(&path)?;
    assert_eq!(
        std::fs::metadata(&path)?.permissions().mode() & 0o777,
        0o600
    );
    Ok(())
}

#[test]
fn reopen_continues_the_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = write_log(&dir.path().join("audit.jsonl"), 3)?;
    let head = verify(&[&path])?.head_hash;

    let mut log = AuditLog::open(&path)?;
    let run = run("ops/other");
    let appended = log.append(&Record::new(&run, "x.y", AccessType::List, Decision::Deny))?;
    assert_eq!(appended.seq, 4);
    let fourth: serde_json::Value = serde_json::from_str(&lines(&path)?[3])?;
    assert_eq!(fourth["prev"], head.as_str());

    let report = verify(&[&path])?;
    assert_eq!(report.entries, 4);
    assert_eq!(report.head_hash, appended.hash);
    Ok(())
}

#[test]
fn two_handles_appending_alternately_form_one_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.jsonl");
    let mut a = AuditLog::open(&path)?;
    let mut b = AuditLog::open(&path)?;
    let run = run("ops/release");
    for i in 0..10u64 {
        let log = if i % 2 == 0 { &mut a } else { &mut b };
        let appended = log.append(&Record::new(&run, "p", AccessType::Read, Decision::Allow))?;
        assert_eq!(appended.seq, i + 1);
    }
    assert_eq!(verify(&[&path])?.entries, 10);
    Ok(())
}

#[test]
fn unsynced_appends_are_in_the_log_before_the_sync() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.jsonl");
    let mut a = AuditLog::open(&path)?;
    let mut b = AuditLog::open(&path)?;
    let run = run("ops/release");
    let record = Record::new(&run, "p", AccessType::Read, Decision::Allow);
    // Runs of appends by one handle (its remembered tail) broken by the
    // other handle's appends (the length changed: the tail is re-read).
    for (i, use_a) in [true, true, true, false, true, false, false, true]
        .into_iter()
        .enumerate()
    {
        let log = if use_a { &mut a } else { &mut b };
        let appended = log.append_unsynced(&record)?;
        assert_eq!(appended.seq, i as u64 + 1);
        // Readers see every record at once, synced or not.
        let report = verify(&[&path])?;
        assert_eq!(report.entries, i as u64 + 1);
        assert_eq!(report.head_hash, appended.hash);
    }
    a.sync()?;
    b.sync()?;
    a.sync()?; // nothing new: a no-op
    let synced = a.append(&record)?;
    assert_eq!(synced.seq, 9);
    assert_eq!(lines(&path)?.len(), 9);
    assert_eq!(verify(&[&path])?.head_hash, synced.hash);
    Ok(())
}

/// An operator (or logrotate's `create` mode) renames the log: a handle
/// that keeps appending notices within a second, appends nothing more to the
/// renamed file and starts a new chain at the path.
#[test]
fn a_renamed_log_gets_no_more_appends_and_the_path_starts_a_new_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.jsonl");
    let moved = dir.path().join("audit.jsonl.old");
    let mut log = AuditLog::open(&path)?;
    let run = run("ops/release");
    let record = Record::new(&run, "p", AccessType::Read, Decision::Allow);
    log.append(&record)?;
    std::fs::rename(&path, &moved)?;
    // Past the interval in which a handle trusts its file without a look.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let appended = log.append(&record)?;
    assert_eq!(appended.seq, 1, "a new chain in the new file");
    assert_eq!(verify(&[&moved])?.entries, 1);
    assert_eq!(verify(&[&path])?.head_hash, appended.hash);
    Ok(())
}

#[test]
fn many_threads_with_their_own_handles_form_one_chain() -> TestResult {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 25;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.jsonl");
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let path = path.clone();
                scope.spawn(move || -> Result<Vec<u64>, AuditError> {
                    let mut log = AuditLog::open(&path)?;
                    let run = run(&format!("ops/thread{t}"));
                    let mut seqs = Vec::new();
                    for _ in 0..PER_THREAD {
                        let record = Record::new(&run, "p", AccessType::Read, Decision::Allow);
                        seqs.push(log.append(&record)?.seq);
                    }
                    Ok(seqs)
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            let seqs = handle.join().expect("thread does not panic")?;
            assert!(seqs.windows(2).all(|w| w[0] < w[1]));
            all.extend(seqs);
        }
        all.sort_unstable();
        assert_eq!(all, (1..=THREADS * PER_THREAD).collect::<Vec<_>>());
        Ok::<_, AuditError>(())
    })?;
    let report = verify(&[&path])?;
    assert_eq!(report.entries, THREADS * PER_THREAD);
    Ok(())
}

#[cfg(target_os = "linux")]
#[test]
fn disk_full_fails_closed() -> TestResult {
    let mut log = AuditLog::open("/dev/full")?;
    let run = run("ops/release");
    let err = log
        .append(&Record::new(&run, "p", AccessType::Read, Decision::Allow))
        .expect_err("writing to /dev/full fails");
    assert!(matches!(err, AuditError::Write { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("/dev/full"), "{message}");
    Ok(())
}

const OPEN_ENV: &str = "AGENTSEC_AUDIT_TEST_OPEN_LOG";

/// Does nothing unless started by `open_as_unprivileged` (then it is the
/// child): opens the log and appends one record. Exit 0: appended; exit 3:
/// refused at open (`AuditError::Open`); a failed test otherwise.
#[test]
fn child_opener() {
    let Some(path) = std::env::var_os(OPEN_ENV) else {
        return;
    };
    let run = run("ops/release");
    match AuditLog::open(&path) {
        Ok(mut log) => {
            log.append(&Record::new(&run, "p", AccessType::Read, Decision::Allow))
                .expect("append after a successful open");
            std::process::exit(0);
        }
        Err(AuditError::Open { .. }) => std::process::exit(3),
        Err(e) => panic!("unexpected error: {e:?}"),
    }
}

/// Runs `child_opener` on `path` as `nobody` (uid 65534) when the test runs
/// as root (root ignores file modes), from a copy of this test binary that
/// `nobody` can execute; as the current user otherwise.
#[cfg(target_os = "linux")]
fn open_as_unprivileged(
    dir: &Path,
    path: &Path,
) -> Result<Option<i32>, Box<dyn std::error::Error>> {
    use std::os::unix::{fs::MetadataExt, process::CommandExt};
    let exe = dir.join("append-test");
    if !exe.exists() {
        std::fs::copy(std::env::current_exe()?, &exe)?;
    }
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(["--exact", "child_opener", "--quiet"])
        .env(OPEN_ENV, path)
        .stdout(std::process::Stdio::null());
    // /proc/self belongs to this process's effective uid.
    if std::fs::metadata("/proc/self")?.uid() == 0 {
        // std drops the supplementary groups when root sets a uid.
        cmd.uid(65534).gid(65534);
    }
    Ok(cmd.status()?.code())
}

#[cfg(target_os = "linux")]
#[test]
fn read_only_file_fails_closed() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    // Only the file's own mode may stop the writer, not the directory's.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
    let path = write_log(&dir.path().join("audit.jsonl"), 2)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))?;
    let before = std::fs::read(&path)?;
    assert_eq!(
        open_as_unprivileged(dir.path(), &path)?,
        Some(3),
        "refused at open"
    );
    assert_eq!(std::fs::read(&path)?, before);

    // The same writer appends once the file is writable: it was the mode
    // that refused it.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    assert_eq!(
        open_as_unprivileged(dir.path(), &path)?,
        Some(0),
        "appended"
    );
    assert_eq!(lines(&path)?.len(), 3);
    Ok(())
}

#[test]
fn parent_that_is_a_file_fails_closed_even_as_root() -> TestResult {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"")?;
    let err = AuditLog::open(file.join("audit.jsonl")).expect_err("parent is a regular file");
    assert!(
        matches!(err, AuditError::CreateDir { .. } | AuditError::Open { .. }),
        "{err:?}"
    );
    let err = AuditLog::open(dir.path()).expect_err("a directory is not a log file");
    assert!(matches!(err, AuditError::Open { .. }), "{err:?}");
    Ok(())
}

/// Asserts that `append` on the log at `path` fails with an error matching
/// `expected` and leaves the file unchanged.
fn assert_append_refused(path: &Path, expected: fn(&AuditError) -> bool) -> TestResult {
    let before = std::fs::read(path)?;
    assert!(
        AuditLog::open(path).is_err_and(|e| expected(&e)),
        "open must refuse too"
    );
    // A handle opened before the damage must refuse as well.
    let run = run("ops/release");
    let record = Record::new(&run, "p", AccessType::Read, Decision::Allow);
    let err = open_ignoring_tail(path)?
        .append(&record)
        .expect_err("damaged tail");
    assert!(expected(&err), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert_eq!(std::fs::read(path)?, before, "nothing appended");
    Ok(())
}

/// Opens a handle on a healthy copy, then points it at the damaged file by
/// swapping contents: simulates damage after start-up.
fn open_ignoring_tail(path: &Path) -> Result<AuditLog, Box<dyn std::error::Error>> {
    let damaged = std::fs::read(path)?;
    std::fs::write(path, b"")?;
    let log = AuditLog::open(path)?;
    std::fs::write(path, damaged)?;
    Ok(log)
}

#[test]
fn torn_tail_fails_closed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = write_log(&dir.path().join("audit.jsonl"), 2)?;
    let len = std::fs::metadata(&path)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)?
        .set_len(len - 10)?;
    assert_append_refused(&path, |e| matches!(e, AuditError::TornTail { .. }))
}

#[test]
fn tail_that_is_not_json_fails_closed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = write_log(&dir.path().join("audit.jsonl"), 2)?;
    let mut bytes = std::fs::read(&path)?;
    bytes.extend_from_slice(b"garbage\n");
    std::fs::write(&path, bytes)?;
    assert_append_refused(&path, |e| matches!(e, AuditError::CorruptTail { .. }))
}

#[test]
fn edited_tail_fails_closed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = write_log(&dir.path().join("audit.jsonl"), 3)?;
    let text =
        std::fs::read_to_string(&path)?.replace("\"decision\":\"allow\"", "\"decision\":\"deny\"");
    std::fs::write(&path, text)?;
    assert_append_refused(&path, |e| matches!(e, AuditError::CorruptTail { .. }))
}

#[test]
fn huge_tail_fails_closed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = write_log(&dir.path().join("audit.jsonl"), 1)?;
    let mut bytes = std::fs::read(&path)?;
    bytes.extend(std::iter::repeat_n(b'x', MAX_RECORD_SIZE + 10));
    bytes.push(b'\n');
    std::fs::write(&path, bytes)?;
    assert_append_refused(&path, |e| matches!(e, AuditError::TailTooLarge { .. }))
}

#[test]
fn oversized_record_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = write_log(&dir.path().join("audit.jsonl"), 1)?;
    let before = std::fs::read(&path)?;
    let mut log = AuditLog::open(&path)?;
    let run = run("ops/release");
    let long = "a".repeat(MAX_RECORD_SIZE);
    let err = log
        .append(&Record::new(&run, &long, AccessType::Read, Decision::Allow))
        .expect_err("too large");
    assert!(matches!(err, AuditError::RecordTooLarge { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path)?, before);
    Ok(())
}

#[test]
fn tail_found_across_read_chunks() -> TestResult {
    // Records longer than one 4 KiB read chunk.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path)?;
    let run = run("ops/release");
    for len in [5000, 9000, 100, 12000] {
        let detail = "d".repeat(len);
        log.append(
            &Record::new(&run, "p", AccessType::Read, Decision::Deny).detail(detail.as_str()),
        )?;
    }
    assert_eq!(verify(&[&path])?.entries, 4);
    Ok(())
}

/// `caller` sits after `agent_id`, verifies, and reads back; records without one omit it.
#[test]
fn caller_is_recorded_after_the_agent_and_verifies() {
    use agentsec_audit::{AccessType, AuditLog, CallerInfo, Decision, Record, RunContext};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let caller = CallerInfo {
        uid: 1001,
        user: Some("deploy".to_owned()),
        pid: Some(4242),
    };
    let with =
        RunContext::new("ops/a", "s", "ab".repeat(32), "cd".repeat(16)).with_caller(caller.clone());
    let without = RunContext::new("ops/a", "s", "ab".repeat(32), "ce".repeat(16));
    let mut log = AuditLog::open(&path).unwrap();
    log.append(&Record::new(
        &with,
        "a.b",
        AccessType::Read,
        Decision::Allow,
    ))
    .unwrap();
    log.append(&Record::new(
        &without,
        "a.b",
        AccessType::Reload,
        Decision::Deny,
    ))
    .unwrap();
    drop(log);
    let text = std::fs::read_to_string(&path).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.contains(
            r#""agent_id":"ops/a","caller":{"uid":1001,"user":"deploy","pid":4242},"skill":"#
        ),
        "{first}"
    );
    assert!(!text.lines().nth(1).unwrap().contains("caller"));
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .contains(r#""access_type":"reload""#)
    );
    verify(&[&path]).unwrap();
    let mut callers = Vec::new();
    agentsec_audit::read_entries(&[&path], |e| callers.push(e.caller)).unwrap();
    assert_eq!(callers, vec![Some(caller), None]);
}
