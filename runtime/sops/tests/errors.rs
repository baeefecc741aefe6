//! Failure vectors: tampering, wrong keys, missing files, non-SOPS files, and the guarantee that
//! no error shows a plaintext or a MAC.

mod common;

use agentsec_sops::{DecryptOptions, Format, Identities, SopsError, decrypt_bytes, decrypt_file};
use common::{decrypt, ids, vectors};

const MOCK: &str = "generated/key_mockIdentity.txt";

/// The MACs of `tamper/unenc_changed.yaml` (stored and computed, from the sops transcript).
const MACS: [&str; 2] = ["160EA5EF646D6F5F", "A4F6489AE29D09D2"];

fn assert_clean(err: &SopsError) {
    for text in [err.to_string(), format!("{err:?}")] {
        for mac in MACS {
            assert!(!text.contains(mac), "MAC in message: {text}");
        }
        for plain in ["Welcome to SOPS", "inner value", "hunter2"] {
            assert!(!text.contains(plain), "plaintext in message: {text}");
        }
    }
}

#[test]
fn unencrypted_value_changed_is_a_mac_mismatch() {
    let err = decrypt("generated/tamper/unenc_changed.yaml", MOCK).expect_err("refused");
    assert!(matches!(err, SopsError::MacMismatch { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 51);
    assert_clean(&err);
    // The recovery option reads it anyway.
    let tree = decrypt_file(
        &vectors().join("generated/tamper/unenc_changed.yaml"),
        &ids(MOCK),
        DecryptOptions::ignoring_mac(),
    )
    .expect("ignore_mac reads the file");
    match tree.lookup(&["secret_unencrypted"]) {
        agentsec_sops::Lookup::Leaf(l) => assert_eq!(l.value().expose_secret(), b"changed"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn renamed_key_fails_aes_gcm_even_ignoring_the_mac() {
    for opts in [DecryptOptions::default(), DecryptOptions::ignoring_mac()] {
        let err = decrypt_file(
            &vectors().join("generated/tamper/renamed.yaml"),
            &ids(MOCK),
            opts,
        )
        .expect_err("refused");
        assert!(matches!(err, SopsError::ValueDecrypt { .. }), "{err:?}");
        assert_eq!(err.exit_code(), 25);
        assert_clean(&err);
    }
}

#[test]
fn missing_mac_is_refused_unless_ignored() {
    let err = decrypt("generated/tamper/nomac.yaml", MOCK).expect_err("refused");
    assert!(matches!(err, SopsError::MacMissing { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 51);
    assert_clean(&err);
    assert!(
        decrypt_file(
            &vectors().join("generated/tamper/nomac.yaml"),
            &ids(MOCK),
            DecryptOptions::ignoring_mac()
        )
        .is_ok()
    );
}

#[test]
fn mac_only_encrypted_allows_unencrypted_edits_and_retyping_is_not_detected() {
    // As in sops: with mac_only_encrypted the unencrypted values are not authenticated.
    assert!(decrypt("generated/tamper/maconly_changed.yaml", MOCK).is_ok());
    // As in sops: the `type:` tag is not authenticated; "42" retyped as int decrypts.
    let tree = decrypt("generated/tamper/retyped.yaml", MOCK).expect("decrypts like sops");
    match tree.lookup(&["quoted_int"]) {
        agentsec_sops::Lookup::Leaf(l) => {
            assert_eq!(l.kind(), agentsec_sops::LeafKind::Int);
            assert_eq!(l.value().expose_secret(), b"42");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mac_edited_is_undecryptable() {
    let path = vectors().join("generated/enc/basic.yaml");
    let text = std::fs::read_to_string(path).expect("readable");
    let edited = text.replace(
        "lastmodified: \"2026-11-28T10:03:59Z\"",
        "lastmodified: \"2026-11-28T10:04:00Z\"",
    );
    assert_ne!(text, edited);
    let err = decrypt_bytes(
        edited.as_bytes(),
        Format::Yaml,
        "basic.yaml",
        &ids(MOCK),
        DecryptOptions::default(),
    )
    .expect_err("refused");
    assert!(matches!(err, SopsError::MacUndecryptable { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 51);
    // Go renders +00:00 as Z and drops fractions: the same AAD, so this still verifies.
    let same = text.replace(
        "lastmodified: \"2026-11-28T10:03:59Z\"",
        "lastmodified: \"2026-11-28T10:03:59.5+00:00\"",
    );
    assert!(
        decrypt_bytes(
            same.as_bytes(),
            Format::Yaml,
            "b.yaml",
            &ids(MOCK),
            DecryptOptions::default()
        )
        .is_ok()
    );
}

#[test]
fn wrong_key_lists_recipients_not_secrets() {
    let err = decrypt("generated/enc/basic.yaml", "external/rops/key.txt").expect_err("wrong key");
    assert_eq!(err.exit_code(), 128);
    let msg = err.to_string();
    assert!(
        msg.contains("age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun"),
        "{msg}"
    );
    assert!(msg.contains("SOPS_AGE_KEY_FILE"), "{msg}");
    assert!(!msg.contains("AGE-SECRET-KEY-1EQUCG"), "{msg}");
    assert_clean(&err);
}

#[test]
fn no_identity_at_all_lists_locations() {
    let home = tempfile::tempdir().expect("tempdir");
    let sources = agentsec_sops::KeySources::from_env_fn(|name| {
        (name == "HOME").then(|| home.path().as_os_str().to_owned())
    });
    let ids = Identities::discover(&sources).expect("nothing to load is fine");
    assert!(ids.is_empty());
    let err = decrypt_file(
        &vectors().join("generated/enc/basic.yaml"),
        &ids,
        DecryptOptions::default(),
    )
    .expect_err("no key");
    assert_eq!(err.exit_code(), 128);
    let msg = err.to_string();
    for loc in [
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        "sops/age/keys.txt",
    ] {
        assert!(msg.contains(loc), "{loc} missing in: {msg}");
    }
}

#[test]
fn missing_file_is_exit_100() {
    let err = decrypt("generated/enc/does-not-exist.yaml", MOCK).expect_err("missing");
    assert!(matches!(err, SopsError::FileNotFound { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 100);
}

#[test]
fn plaintext_file_has_no_metadata() {
    let err = decrypt("generated/plain/basic.yaml", MOCK).expect_err("not sops");
    assert!(matches!(err, SopsError::NoMetadata { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 1);
    let err = decrypt("generated/plain/basic.json", MOCK).expect_err("not sops");
    assert_eq!(err.exit_code(), 1);
}

#[test]
fn every_store_format_is_read() {
    for f in [
        "generated/enc/basic.env",
        "generated/enc/basic.ini",
        "generated/enc/def.ini",
        "generated/enc/blob.bin",
        "generated/enc/text.txt",
    ] {
        decrypt(f, MOCK).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

#[test]
fn value_that_should_be_encrypted_but_is_not() {
    let path = vectors().join("generated/enc/basic.yaml");
    let text = std::fs::read_to_string(path).expect("readable");
    let start = text.find("hello: ").expect("hello");
    let end = start + text[start..].find('\n').expect("eol");
    let edited = format!("{}hello: hunter2{}", &text[..start], &text[end..]);
    let err = decrypt_bytes(
        edited.as_bytes(),
        Format::Yaml,
        "basic.yaml",
        &ids(MOCK),
        DecryptOptions::default(),
    )
    .expect_err("refused");
    assert!(
        matches!(err, SopsError::NotEncrypted { ref path, .. } if path == "hello"),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), 25);
    assert_clean(&err);
}

/// The secret planted by [`planted_secret_never_appears_in_errors`].
const PLANTED: &str = "s3cr3t-PLANTED-value-0xDEADBEEF";

/// A known secret planted everywhere a reader error could echo it (key file lines, plaintext
/// values, duplicate keys' values, syntax errors, bad ciphertexts, a MAC mismatch) never shows up
/// in any error's `Display` or `Debug`, and decrypted values are redacted in `Debug`.
#[test]
fn planted_secret_never_appears_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let enc = std::fs::read_to_string(vectors().join("generated/enc/basic.yaml")).expect("read");
    let mut errors = planted_key_file_errors(dir.path());
    errors.extend(planted_document_errors(&enc));

    for err in &errors {
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(PLANTED), "planted secret in: {text}");
            assert!(
                !text.contains("DEADBEEF"),
                "part of planted secret in: {text}"
            );
        }
    }

    // Values themselves are redacted in Debug.
    let tree = decrypt("generated/enc/basic.yaml", MOCK).expect("decrypts");
    let debug = format!("{tree:?}");
    assert!(!debug.contains("Welcome to SOPS"), "{debug}");
    assert!(debug.contains("REDACTED"));
}

/// A malformed key file line that contains the secret, and a key file that is only the secret.
fn planted_key_file_errors(dir: &std::path::Path) -> Vec<SopsError> {
    let key_file = dir.join("keys.txt");
    std::fs::write(&key_file, format!("# ok\nAGE-SECRET-KEY-1{PLANTED}\n")).expect("write");
    let malformed = Identities::new()
        .add_file(&key_file)
        .expect_err("malformed");
    std::fs::write(&key_file, format!("{PLANTED}\n")).expect("write");
    let unknown = Identities::new()
        .add_file(&key_file)
        .expect_err("unknown type");
    vec![malformed, unknown]
}

/// Files that plant the secret where decryption refuses them (`enc` is the encrypted
/// `basic.yaml`): plaintext where a ciphertext should be; a duplicate key with the secret as
/// value; a syntax error right after the secret; an undecryptable value; bad JSON around it;
/// a MAC mismatch on a file whose unencrypted value is the secret.
fn planted_document_errors(enc: &str) -> Vec<SopsError> {
    let mut errors = Vec::new();
    let sops_block = &enc[enc.find("\nsops:").expect("sops")..];
    for doc in [
        format!("password: {PLANTED}{sops_block}"),
        format!("a: {PLANTED}\na: {PLANTED}\n{sops_block}"),
        format!("a: \"{PLANTED}\n  b: [\n"),
        format!("hello: ENC[AES256_GCM,data:{PLANTED},iv:x,tag:y,type:str]{sops_block}"),
        format!("k: !!int {PLANTED}\n"),
        format!("k: 99999999999999999999999\n# {PLANTED}\n"),
    ] {
        let r = decrypt_bytes(
            doc.as_bytes(),
            Format::Yaml,
            "f.yaml",
            &ids(MOCK),
            Default::default(),
        );
        errors.push(r.expect_err("refused"));
    }
    for doc in [
        format!(r#"{{"a": "{PLANTED}", "a": 1}}"#),
        format!(r#"{{"a": "{PLANTED}" "#),
        format!(r#"["{PLANTED}"]"#),
        format!(r#"{{"a": {PLANTED}}}"#),
    ] {
        let r = decrypt_bytes(
            doc.as_bytes(),
            Format::Json,
            "f.json",
            &ids(MOCK),
            Default::default(),
        );
        errors.push(r.expect_err("refused"));
    }
    let tampered = enc.replace(
        "secret_unencrypted: visible",
        &format!("secret_unencrypted: {PLANTED}"),
    );
    let r = decrypt_bytes(
        tampered.as_bytes(),
        Format::Yaml,
        "f.yaml",
        &ids(MOCK),
        Default::default(),
    );
    errors.push(r.expect_err("MAC mismatch"));
    errors
}
