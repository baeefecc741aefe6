//! One test per kind of tampering: `verify` names the right seq and kind.

mod common;

use std::path::{Path, PathBuf};

use agentsec_audit::{AuditLog, VerifyError, verify};
use common::{TestResult, lines, write_log};

/// A valid log of `n` entries in a fresh directory.
fn fresh(n: u64) -> Result<(tempfile::TempDir, PathBuf), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = write_log(&dir.path().join("audit.jsonl"), n)?;
    Ok((dir, path))
}

fn rewrite(path: &Path, lines: &[String]) -> TestResult {
    std::fs::write(path, lines.concat())?;
    Ok(())
}

fn verify_err(path: &Path) -> VerifyError {
    let err = verify(&[path]).expect_err("tampering is detected");
    assert_eq!(err.path(), path);
    err
}

#[test]
fn edited_field_names_its_seq() -> TestResult {
    let (_dir, path) = fresh(5)?;
    let mut l = lines(&path)?;
    l[2] = l[2].replace("\"decision\":\"allow\"", "\"decision\":\"deny\"");
    rewrite(&path, &l)?;
    let err = verify_err(&path);
    assert!(
        matches!(
            err,
            VerifyError::Edited {
                seq: 3,
                line: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.seq(), Some(3));
    assert!(err.to_string().contains("seq 3 was edited"), "{err}");
    Ok(())
}

#[test]
fn edited_seq_field_is_an_edit() -> TestResult {
    let (_dir, path) = fresh(5)?;
    let mut l = lines(&path)?;
    l[1] = l[1].replace("\"seq\":2,", "\"seq\":7,");
    rewrite(&path, &l)?;
    let err = verify_err(&path);
    assert!(
        matches!(
            err,
            VerifyError::Edited {
                seq: 7,
                line: 2,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn deleted_line_names_the_missing_seq() -> TestResult {
    let (_dir, path) = fresh(5)?;
    let mut l = lines(&path)?;
    l.remove(2);
    rewrite(&path, &l)?;
    let err = verify_err(&path);
    assert!(
        matches!(
            err,
            VerifyError::Deleted {
                missing_seq: 3,
                seq: 4,
                line: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.seq(), Some(3));
    Ok(())
}

#[test]
fn deleted_first_line_is_detected() -> TestResult {
    let (_dir, path) = fresh(3)?;
    let mut l = lines(&path)?;
    l.remove(0);
    rewrite(&path, &l)?;
    let err = verify_err(&path);
    assert!(
        matches!(
            err,
            VerifyError::Deleted {
                missing_seq: 1,
                seq: 2,
                line: 1,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn deleted_last_line_changes_only_the_head() -> TestResult {
    // Documented limit: the end can only be checked against a kept head hash.
    let (_dir, path) = fresh(3)?;
    let head = verify(&[&path])?.head_hash;
    let mut l = lines(&path)?;
    l.pop();
    rewrite(&path, &l)?;
    let report = verify(&[&path])?;
    assert_eq!(report.entries, 2);
    assert_ne!(report.head_hash, head);
    Ok(())
}

#[test]
fn swapped_lines_are_reordered() -> TestResult {
    let (_dir, path) = fresh(5)?;
    let mut l = lines(&path)?;
    l.swap(1, 2);
    rewrite(&path, &l)?;
    let err = verify_err(&path);
    assert!(
        matches!(
            err,
            VerifyError::Reordered {
                seq: 3,
                expected_seq: 2,
                line: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.seq(), Some(2));
    Ok(())
}

#[test]
fn duplicated_line_is_an_insertion() -> TestResult {
    let (_dir, path) = fresh(4)?;
    let mut l = lines(&path)?;
    let copy = l[1].clone();
    l.insert(2, copy);
    rewrite(&path, &l)?;
    let err = verify_err(&path);
    assert!(
        matches!(
            err,
            VerifyError::Inserted {
                seq: 2,
                expected_seq: 3,
                line: 3,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn forged_line_chained_to_the_real_one_is_an_insertion() -> TestResult {
    let (dir, path) = fresh(5)?;
    let l = lines(&path)?;
    // Forge a well-hashed seq 3 chained to the real seq 2: a copy of the
    // first two lines, plus one append through the real API.
    let forge_path = dir.path().join("forge.jsonl");
    rewrite(&forge_path, &l[..2])?;
    write_log(&forge_path, 1)?;
    let forged = lines(&forge_path)?.remove(2);
    assert_ne!(forged, l[2]);

    let mut tampered = l.clone();
    tampered.insert(2, forged);
    rewrite(&path, &tampered)?;
    let err = verify_err(&path);
    assert!(
        matches!(
            err,
            VerifyError::Inserted {
                seq: 3,
                expected_seq: 4,
                line: 4,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn replaced_line_breaks_the_link() -> TestResult {
    let (dir, path) = fresh(5)?;
    let l = lines(&path)?;
    // A well-hashed seq 3 chained to a different seq 2.
    let other = write_log(&dir.path().join("other.jsonl"), 3)?;
    let mut tampered = l.clone();
    tampered[2] = lines(&other)?.remove(2);
    rewrite(&path, &tampered)?;
    let err = verify_err(&path);
    // Timestamps differ between the logs, so seq 3's prev is not seq 2's hash.
    assert!(
        matches!(
            err,
            VerifyError::BrokenLink {
                seq: 3,
                line: 3,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn truncated_last_line_is_torn() -> TestResult {
    let (_dir, path) = fresh(4)?;
    let len = std::fs::metadata(&path)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)?
        .set_len(len - 20)?;
    let err = verify_err(&path);
    assert!(
        matches!(
            err,
            VerifyError::Torn {
                expected_seq: 4,
                line: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.seq(), Some(4));
    Ok(())
}

#[test]
fn truncated_middle_line_is_malformed() -> TestResult {
    let (_dir, path) = fresh(4)?;
    let mut l = lines(&path)?;
    l[1] = format!("{}\n", &l[1][..l[1].len() / 2]);
    rewrite(&path, &l)?;
    let err = verify_err(&path);
    assert!(
        matches!(
            err,
            VerifyError::Malformed {
                expected_seq: 2,
                line: 2,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn reformatted_line_is_not_canonical() -> TestResult {
    let (_dir, path) = fresh(3)?;
    let mut l = lines(&path)?;
    l[0] = l[0].replacen("\"seq\":1,", "\"seq\": 1,", 1);
    rewrite(&path, &l)?;
    let err = verify_err(&path);
    assert!(
        matches!(
            err,
            VerifyError::NonCanonical {
                expected_seq: 1,
                line: 1,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn segments_verify_as_one_chain() -> TestResult {
    let (dir, path) = fresh(5)?;
    let l = lines(&path)?;
    let first = dir.path().join("audit.1.jsonl");
    let second = dir.path().join("audit.2.jsonl");
    rewrite(&first, &l[..2])?;
    rewrite(&second, &l[2..])?;
    // Cut by hand, the second file lacks the chain marker that the writer
    // puts on the first line of every segment: refused as a downgrade.
    let err = verify(&[&first, &second]).expect_err("no marker on the second file");
    assert!(
        matches!(err, VerifyError::Downgraded { seq: 3, .. }),
        "{err:?}"
    );
    let err = verify(&[&second, &first]).expect_err("wrong order");
    assert_eq!(err.path(), second);
    Ok(())
}

#[test]
fn error_messages_do_not_quote_content() -> TestResult {
    let (_dir, path) = fresh(3)?;
    let mut l = lines(&path)?;
    l[1] = l[1].replace("\"seq\":2,", "\"seq\":\"PLANTED-IN-SEQ\",");
    rewrite(&path, &l)?;
    let err = verify_err(&path);
    assert!(!format!("{err} {err:?}").contains("PLANTED"), "{err:?}");
    // And a log damaged like this refuses appends without quoting it either.
    assert!(
        AuditLog::open(&path).is_ok(),
        "only the tail is checked at open"
    );
    Ok(())
}
