//! `agentsec secrets edit` with scripted editors: the result decrypts with the real sops, an
//! unchanged buffer leaves the file byte for byte, a failing editor or invalid content leaves
//! it untouched, and no plaintext is left in any file of the test's world (HOME, TMPDIR, cwd).
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};

use agentsec_tests::{Run, Scratch, assert_no_leak, bin, root, sops};

const MOCK_RECIPIENT: &str = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun";
const OLD: &str = "old-pw-4f1c9e";
const NEW: &str = "new-pw-b7d2a0";
const OTHER: &str = "kept-token-93e1";

fn key() -> PathBuf {
    root().join("tests/testdata/sops-vectors/generated/key_mockIdentity.txt")
}

/// A SOPS file written by the real sops; the plaintext it came from is removed.
fn sops_file(s: &Scratch) -> PathBuf {
    let plain = s.write(
        "work/secrets.yaml",
        &format!("# database\ndb:\n    user: app\n    password: {OLD}\napi:\n    token: {OTHER}\n"),
    );
    let out = s
        .command(&sops())
        .args(["encrypt", "--in-place", "--age", MOCK_RECIPIENT])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    plain
}

/// An executable editor script in the scratch dir (the new value comes from the environment,
/// so the script itself holds no secret).
fn editor(s: &Scratch, name: &str, body: &str) -> PathBuf {
    let p = s.write(&format!("bin/{name}"), &format!("#!/bin/sh\n{body}\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p
}

fn edit(s: &Scratch, file: &Path, editor: &Path, var: &str) -> Run {
    let out = s
        .command(&bin("agentsec"))
        .args(["secrets", "edit"])
        .arg(file)
        .env("SOPS_AGE_KEY_FILE", key())
        .env(var, editor)
        .env("NEWVAL", NEW)
        .output()
        .unwrap();
    Run::from(out)
}

fn sops_decrypt(s: &Scratch, file: &Path) -> Run {
    let out = s
        .command(&sops())
        .arg("decrypt")
        .arg(file)
        .env("SOPS_AGE_KEY_FILE", key())
        .output()
        .unwrap();
    Run::from(out)
}

fn assert_no_plaintext_left(s: &Scratch, values: &[&str]) {
    for (path, bytes) in s.all_file_bytes() {
        for v in values {
            assert_no_leak(v, &bytes, &path.display().to_string());
        }
    }
}

#[test]
fn edited_value_is_reencrypted_and_readable_by_sops() {
    let s = Scratch::new();
    let file = sops_file(&s);
    let before = std::fs::read_to_string(&file).unwrap();
    // Rewrites the buffer in place (no temporary file: the buffer has no directory).
    let ed = editor(
        &s,
        "change.sh",
        r#"out=$(sed "s/^\(    password:\).*/\1 $NEWVAL/" "$1") && printf '%s\n' "$out" > "$1""#,
    );
    let r = edit(&s, &file, &ed, "EDITOR");
    assert_eq!(r.code, 0, "{r:?}");
    let d = sops_decrypt(&s, &file);
    assert_eq!(d.code, 0, "{d:?}");
    assert_eq!(
        d.stdout,
        format!("# database\ndb:\n    user: app\n    password: {NEW}\napi:\n    token: {OTHER}\n")
    );
    // Same recipients, same options.
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(after.contains(&format!("recipient: {MOCK_RECIPIENT}")));
    assert_eq!(
        before.matches("recipient:").count(),
        after.matches("recipient:").count()
    );
    assert!(after.contains("unencrypted_suffix: _unencrypted"));
    assert_no_plaintext_left(&s, &[OLD, NEW, OTHER]);
    assert!(!r.stderr.contains(NEW) && !r.stderr.contains(OLD));
}

#[test]
fn sops_editor_wins_over_editor() {
    let s = Scratch::new();
    let file = sops_file(&s);
    let change = editor(
        &s,
        "change.sh",
        r#"out=$(sed "s/^\(    password:\).*/\1 $NEWVAL/" "$1") && printf '%s\n' "$out" > "$1""#,
    );
    let out = s
        .command(&bin("agentsec"))
        .args(["secrets", "edit"])
        .arg(&file)
        .env("SOPS_AGE_KEY_FILE", key())
        .env("SOPS_EDITOR", &change)
        .env("EDITOR", "/bin/false")
        .env("NEWVAL", NEW)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sops_decrypt(&s, &file).stdout.contains(NEW));
}

#[test]
fn unchanged_buffer_leaves_the_file_byte_for_byte() {
    let s = Scratch::new();
    let file = sops_file(&s);
    let before = std::fs::read(&file).unwrap();
    let ed = editor(&s, "noop.sh", r#"test -s "$1""#);
    let r = edit(&s, &file, &ed, "EDITOR");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("has not changed"), "{r:?}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_no_plaintext_left(&s, &[OLD, OTHER]);
}

#[test]
fn failing_editor_aborts_without_writing() {
    let s = Scratch::new();
    let file = sops_file(&s);
    let before = std::fs::read(&file).unwrap();
    let ed = editor(
        &s,
        "fail.sh",
        r#"out=$(sed "s/^\(    password:\).*/\1 $NEWVAL/" "$1") && printf '%s\n' "$out" > "$1"; exit 1"#,
    );
    let r = edit(&s, &file, &ed, "EDITOR");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("was not changed"), "{r:?}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_no_plaintext_left(&s, &[OLD, NEW, OTHER]);
}

#[test]
fn invalid_content_is_an_error_and_the_file_is_untouched() {
    let s = Scratch::new();
    let file = sops_file(&s);
    let before = std::fs::read(&file).unwrap();
    let ed = editor(
        &s,
        "break.sh",
        r#"printf 'db: [unclosed %s\n  - : :\n' "$NEWVAL" > "$1""#,
    );
    let r = edit(&s, &file, &ed, "EDITOR");
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("was not changed"), "{r:?}");
    assert!(
        !r.stderr.contains(NEW),
        "the error quotes the content: {r:?}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_no_plaintext_left(&s, &[OLD, NEW, OTHER]);
}

#[test]
fn missing_editor_exits_201() {
    let s = Scratch::new();
    let file = sops_file(&s);
    let before = std::fs::read(&file).unwrap();
    let r = edit(&s, &file, &s.path("bin/no-such-editor"), "EDITOR");
    assert_eq!(r.code, 201, "{r:?}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
}
