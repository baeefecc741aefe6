//! Keyed mode: HMAC chains that cannot be recomputed without the key.

mod common;

use std::path::Path;

use agentsec_audit::{
    AccessType, AuditError, AuditLog, ChainKey, Decision, LogOptions, Record, VerifyError,
    VerifyOptions, verify, verify_with,
};
use common::{TestResult, lines, run, write_log};

fn key(byte: u8) -> Result<ChainKey, agentsec_audit::KeyError> {
    ChainKey::from_plaintext(&[byte; 32])
}

fn write_keyed(path: &Path, n: u64, byte: u8) -> TestResult {
    let mut log = AuditLog::open_with(path, LogOptions::new().key(key(byte)?))?;
    assert!(log.is_keyed());
    let run = run("ops/release");
    for i in 0..n {
        let p = format!("db.replica{i}.password");
        log.append(&Record::new(&run, &p, AccessType::Read, Decision::Allow))?;
    }
    Ok(())
}

fn with_key(key: &ChainKey) -> VerifyOptions<'_> {
    VerifyOptions {
        key: Some(key),
        ..VerifyOptions::default()
    }
}

#[test]
fn keyed_log_verifies_with_its_key_only() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.log");
    write_keyed(&path, 4, 1)?;
    for line in lines(&path)? {
        assert!(line.contains(",\"hmac\":\""), "{line}");
        assert!(!line.contains("\"hash\""), "{line}");
    }
    let k = key(1)?;
    let report = verify_with(&[&path], with_key(&k))?;
    assert_eq!((report.entries, report.keyed), (4, true));

    let err = verify(&[&path]).expect_err("needs the key");
    assert!(
        matches!(err, VerifyError::KeyRequired { seq: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("--key"), "{err}");

    let wrong = key(2)?;
    let err = verify_with(&[&path], with_key(&wrong)).expect_err("wrong key");
    // The first entry's chain marker names the log's key id, so the wrong
    // key is named as such (before any HMAC is compared).
    assert!(
        matches!(err, VerifyError::WrongKey { seq: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("pass this log's key"), "{err}");
    Ok(())
}

#[test]
fn edited_keyed_entry_is_detected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.log");
    write_keyed(&path, 4, 1)?;
    let mut l = lines(&path)?;
    l[2] = l[2].replace("\"decision\":\"allow\"", "\"decision\":\"deny\"");
    std::fs::write(&path, l.concat())?;
    let k = key(1)?;
    let err = verify_with(&[&path], with_key(&k)).expect_err("edited");
    assert!(matches!(err, VerifyError::Edited { seq: 3, .. }), "{err:?}");
    Ok(())
}

/// Someone who can rewrite the file but has no key re-chains it with plain
/// SHA-256 (or with a key of their own): verification with the real key fails.
#[test]
fn rewriting_without_the_key_is_detected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.log");
    write_keyed(&path, 3, 1)?;
    let k = key(1)?;

    let forged = dir.path().join("forged-unkeyed.log");
    write_log(&forged, 3)?;
    verify(&[&forged])?; // a valid unkeyed chain...
    let err = verify_with(&[&forged], with_key(&k)).expect_err("...is not the keyed log");
    assert!(
        matches!(err, VerifyError::Unkeyed { seq: 1, .. }),
        "{err:?}"
    );

    let other = dir.path().join("forged-other-key.log");
    write_keyed(&other, 3, 9)?;
    let err = verify_with(&[&other], with_key(&k)).expect_err("another key");
    assert!(
        matches!(err, VerifyError::WrongKey { seq: 1, .. }),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn modes_do_not_mix_in_one_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let keyed = dir.path().join("keyed.log");
    write_keyed(&keyed, 1, 1)?;
    let err = AuditLog::open(&keyed).expect_err("keyed log needs its key");
    assert!(
        matches!(
            err,
            AuditError::ModeMismatch {
                log_keyed: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("--audit-key"), "{err}");

    let err = AuditLog::open_with(&keyed, LogOptions::new().key(key(2)?))
        .expect_err("wrong key is refused at open");
    assert!(matches!(err, AuditError::CorruptTail { .. }), "{err:?}");
    assert!(err.to_string().contains("not this log's key"), "{err}");

    let plain = write_log(&dir.path().join("plain.log"), 1)?;
    let err = AuditLog::open_with(&plain, LogOptions::new().key(key(1)?))
        .expect_err("unkeyed log refuses a keyed writer");
    assert!(
        matches!(
            err,
            AuditError::ModeMismatch {
                log_keyed: false,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn the_key_never_reaches_the_log_or_messages() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.log");
    let raw = *b"planted-chain-key-0123456789abcd";
    let k = ChainKey::from_plaintext(&raw)?;
    assert_eq!(format!("{k:?}"), "ChainKey([REDACTED])");
    let mut log = AuditLog::open_with(&path, LogOptions::new().key(k))?;
    assert!(!format!("{log:?}").contains("planted"));
    let run = run("ops/release");
    log.append(&Record::new(&run, "x", AccessType::Read, Decision::Allow))?;
    let text = std::fs::read(&path)?;
    for form in [raw.to_vec(), hex::encode(raw).into_bytes()] {
        assert!(!text.windows(form.len()).any(|w| w == form.as_slice()));
    }
    Ok(())
}
