//! Fault injection: a failed directory sync during rotation, a failed
//! `fsync` of the log.

use super::durability::FAIL_FILE_SYNC;
use super::*;
use crate::record::{AccessType, Decision, RunContext};

fn record(run: &RunContext) -> Record<'_> {
    Record::new(run, "db.password", AccessType::Read, Decision::Allow)
}

fn run() -> RunContext {
    RunContext::new("ops/a", "skill", "ab".repeat(32), "cd".repeat(16))
}

/// The rename happened but making it durable failed: the handle must
/// move to the new file anyway, or it would fork the chain by appending
/// to the segment.
#[test]
fn a_rotation_whose_directory_sync_fails_still_moves_the_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let options = || LogOptions::new().max_size(1200);
    let run = run();
    let mut a = AuditLog::open_with(&path, options()).unwrap();
    rotate::tests::FAIL_DIR_SYNC.with(|f| f.set(true));
    let err = loop {
        if let Err(e) = a.append(&record(&run)) {
            break e;
        }
    };
    rotate::tests::FAIL_DIR_SYNC.with(|f| f.set(false));
    assert!(matches!(err, AuditError::Sync { .. }), "{err:?}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "rotated");

    let mut b = AuditLog::open_with(&path, options()).unwrap();
    let by_b = b.append(&record(&run)).unwrap();
    let by_a = a.append(&record(&run)).unwrap();
    assert_eq!(by_a.seq, by_b.seq + 1);
    let files = crate::log_files(&path).unwrap();
    assert_eq!(files.len(), 2);
    let report = crate::verify(&files).unwrap();
    assert_eq!(report.head_hash, by_a.hash);
}

/// Linux reports a writeback error once; a retried fsync "succeeds". A
/// handle whose fsync failed refuses everything after.
#[test]
fn a_failed_fsync_poisons_the_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let run = run();
    let mut log = AuditLog::open(&path).unwrap();
    log.append_unsynced(&record(&run)).unwrap();
    FAIL_FILE_SYNC.with(|f| f.set(true));
    assert!(matches!(log.sync(), Err(AuditError::Sync { .. })));
    FAIL_FILE_SYNC.with(|f| f.set(false));
    let again = log.sync().unwrap_err();
    assert!(again.to_string().contains("an earlier fsync"), "{again}");
    assert!(matches!(
        log.append_unsynced(&record(&run)),
        Err(AuditError::Sync { .. })
    ));
    assert!(matches!(
        log.append(&record(&run)),
        Err(AuditError::Sync { .. })
    ));
    // A new handle starts clean, and the chain is intact.
    let mut fresh = AuditLog::open(&path).unwrap();
    assert_eq!(fresh.append(&record(&run)).unwrap().seq, 2);
    assert_eq!(crate::verify(&[&path]).unwrap().entries, 2);
}
