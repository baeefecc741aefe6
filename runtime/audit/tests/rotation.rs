//! Size-based rotation, expected heads (truncation) and reading entries.

mod common;

use std::path::{Path, PathBuf};

use agentsec_audit::{
    AccessType, AuditLog, Decision, GENESIS_HASH, LogOptions, Record, VerifyError, VerifyOptions,
    log_files, read_entries, verify, verify_with,
};
use common::{TestResult, lines, run, write_log};

/// Roughly three records per file.
const SMALL: u64 = 1200;

fn append_n(
    log: &mut AuditLog,
    n: u64,
    agent: &str,
) -> Result<Vec<PathBuf>, agentsec_audit::AuditError> {
    let run = run(agent);
    let mut rotated = Vec::new();
    for i in 0..n {
        let p = format!("db.replica{i}.password");
        let appended = log.append(&Record::new(&run, &p, AccessType::Read, Decision::Allow))?;
        rotated.extend(appended.rotated_to);
    }
    Ok(rotated)
}

#[test]
fn rotated_files_verify_as_one_chain() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.log");
    let mut log = AuditLog::open_with(&path, LogOptions::new().max_size(SMALL))?;
    let rotated = append_n(&mut log, 20, "ops/release")?;
    assert!(rotated.len() >= 4, "{rotated:?}");

    let files = log_files(&path)?;
    assert_eq!(files.len(), rotated.len() + 1);
    assert_eq!(files[0], dir.path().join("audit.log.1"));
    assert_eq!(files.last(), Some(&path));
    assert_eq!(&files[..rotated.len()], rotated.as_slice());
    // A segment is rotated once a record fills it: at most SMALL plus one
    // record (these are well under 600 bytes).
    for file in &files[..files.len() - 1] {
        let len = std::fs::metadata(file)?.len();
        assert!(
            (SMALL..SMALL + 600).contains(&len),
            "{}: {len}",
            file.display()
        );
    }
    let report = verify(&files)?;
    assert_eq!(report.entries, 20);

    // The new file starts with the previous file's head.
    let first_of_2: serde_json::Value = serde_json::from_str(&lines(&files[1])?[0])?;
    let head_of_1 = verify(&files[..1])?.head_hash;
    assert_eq!(first_of_2["prev"], head_of_1.as_str());

    // The current file alone does not start at genesis; dropping a middle
    // segment is a deletion.
    assert!(verify(&[&path]).is_err());
    let mut gap = files.clone();
    gap.remove(1);
    let err = verify(&gap).expect_err("segment missing");
    assert!(matches!(err, VerifyError::Deleted { .. }), "{err:?}");
    Ok(())
}

#[test]
fn rotation_with_relative_path_and_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("logs/audit.log");
    let mut a = AuditLog::open_with(&path, LogOptions::new().max_size(SMALL))?;
    let mut b = AuditLog::open_with(&path, LogOptions::new().max_size(SMALL))?;
    // Alternate handles: each append by one may rotate the file the other holds.
    for i in 0..15 {
        let log = if i % 2 == 0 { &mut a } else { &mut b };
        append_n(log, 1, "ops/alt")?;
    }
    let report = verify(&log_files(&path)?)?;
    assert_eq!(report.entries, 15);
    Ok(())
}

#[test]
fn threads_rotating_concurrently_keep_one_chain() -> TestResult {
    const THREADS: u64 = 6;
    const PER_THREAD: u64 = 30;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.log");
    std::thread::scope(|scope| -> TestResult {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let path = path.clone();
                scope.spawn(move || -> Result<(), agentsec_audit::AuditError> {
                    let mut log = AuditLog::open_with(&path, LogOptions::new().max_size(SMALL))?;
                    append_n(&mut log, PER_THREAD, &format!("ops/t{t}")).map(|_| ())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "thread panicked")??;
        }
        Ok(())
    })?;
    let files = log_files(&path)?;
    assert!(files.len() > 10);
    assert_eq!(verify(&files)?.entries, THREADS * PER_THREAD);
    Ok(())
}

#[test]
fn expected_head_detects_truncation() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = write_log(&dir.path().join("audit.log"), 5)?;
    let head = verify(&[&path])?.head_hash;
    let expect = |head: &str, path: &Path| {
        verify_with(
            &[path],
            VerifyOptions {
                expect_head: Some(head),
                ..VerifyOptions::default()
            },
        )
    };
    assert_eq!(expect(&head, &path)?.expected_head_seq, Some(5));
    assert_eq!(expect(GENESIS_HASH, &path)?.expected_head_seq, Some(0));

    // Growth since the head was recorded is fine.
    write_log(&path, 2)?;
    assert_eq!(expect(&head, &path)?.expected_head_seq, Some(5));

    // Cutting the last three entries (a valid shorter chain) is caught.
    let l = lines(&path)?;
    std::fs::write(&path, l[..4].concat())?;
    verify(&[&path])?;
    let err = expect(&head, &path).expect_err("truncated");
    assert!(
        matches!(err, VerifyError::HeadNotFound { entries: 4, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_eq!(err.seq(), Some(5));
    Ok(())
}

#[test]
fn read_entries_yields_every_entry_and_skips_junk() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = write_log(&dir.path().join("audit.log"), 4)?;
    let mut text = std::fs::read_to_string(&path)?;
    text.push_str("not an entry\n");
    std::fs::write(&path, text)?;
    let mut seen = Vec::new();
    let summary = read_entries(&[&path], |e| seen.push(e))?;
    assert_eq!((summary.entries, summary.skipped), (4, 1));
    assert_eq!(seen[2].seq, 3);
    assert_eq!(seen[2].secret_path, "db.replica2.password");
    assert_eq!(seen[2].decision, Decision::Allow);
    assert_eq!(seen[3].decision, Decision::Deny);
    assert_eq!(seen[0].prev, GENESIS_HASH);
    assert_eq!(seen[1].prev, seen[0].hash);
    assert_eq!(format!("{}\n", seen[0].line), lines(&path)?[0]);
    Ok(())
}
