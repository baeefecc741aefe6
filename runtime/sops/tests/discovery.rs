//! Identity discovery with an injected environment (never the real HOME).

mod common;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use agentsec_sops::{DecryptOptions, Identities, KeySources, SopsError, decrypt_file};
use common::vectors;

const MOCK_KEY: &str = "AGE-SECRET-KEY-1G0Q5K9TV4REQ3ZSQRMTMG8NSWQGYT0T7TZ33RAZEE0GZYVZN0APSU24RK7";
const FLUX_KEY: &str = "AGE-SECRET-KEY-1RH87A5Z54ZGUR9S0AS3R6WHFSEFNPLYMAKF5Z2CEU7R06VRJ0A3Q7242AM";
const SOPS_AGE_KEY: &str =
    "AGE-SECRET-KEY-1QXRVEJH9S4NQU0FPD6V79ESZQ8S6PXH3L8V40EVPTHFH6KNKD4DQ7SKC4P";

fn sources(vars: &[(&str, &str)]) -> KeySources {
    let map: HashMap<String, OsString> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    KeySources::from_env_fn(move |name| map.get(name).cloned())
}

fn decrypts_basic(ids: &Identities) -> bool {
    decrypt_file(
        &vectors().join("generated/enc/basic.yaml"),
        ids,
        DecryptOptions::default(),
    )
    .is_ok()
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn sops_age_key_env_several_keys() {
    let h = home();
    let both = format!("{FLUX_KEY} {MOCK_KEY}\n{SOPS_AGE_KEY}");
    let ids = Identities::discover(&sources(&[("SOPS_AGE_KEY", &both), ("HOME", &p(h.path()))]))
        .expect("loads");
    assert_eq!(ids.len(), 3);
    assert!(decrypts_basic(&ids));
}

#[test]
fn sops_age_key_file_env() {
    let h = home();
    let file = vectors().join("generated/key_mockIdentity.txt");
    let ids = Identities::discover(&sources(&[
        ("SOPS_AGE_KEY_FILE", &p(&file)),
        ("HOME", &p(h.path())),
    ]))
    .expect("loads");
    assert!(decrypts_basic(&ids));

    let missing = h.path().join("nope.txt");
    let err = Identities::discover(&sources(&[("SOPS_AGE_KEY_FILE", &p(&missing))]))
        .expect_err("unreadable file is an error");
    assert_eq!(err.exit_code(), 128);
    assert!(err.to_string().contains("SOPS_AGE_KEY_FILE"));
}

#[test]
fn sops_age_key_cmd_env() {
    let h = home();
    let file = vectors().join("generated/key_mockIdentity.txt");
    let cmd = format!("cat '{}'", p(&file));
    let ids = Identities::discover(&sources(&[
        ("SOPS_AGE_KEY_CMD", &cmd),
        ("HOME", &p(h.path())),
    ]))
    .expect("loads");
    assert!(decrypts_basic(&ids));

    let err = Identities::discover(&sources(&[("SOPS_AGE_KEY_CMD", "exit 3")]))
        .expect_err("failing command");
    assert!(matches!(err, SopsError::Identity { .. }), "{err:?}");
}

#[test]
fn xdg_and_home_default_files() {
    let h = home();
    let dir = h.path().join("xdg/sops/age");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("keys.txt"),
        format!("# created: now\n\n{MOCK_KEY}\n"),
    )
    .expect("write");
    let ids = Identities::discover(&sources(&[
        ("XDG_CONFIG_HOME", &p(&h.path().join("xdg"))),
        ("HOME", &p(&h.path().join("elsewhere"))),
    ]))
    .expect("loads");
    assert_eq!(ids.len(), 1);
    assert!(decrypts_basic(&ids));

    if !cfg!(target_os = "macos") {
        let dir = h.path().join("home/.config/sops/age");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("keys.txt"), MOCK_KEY).expect("write");
        let ids =
            Identities::discover(&sources(&[("HOME", &p(&h.path().join("home")))])).expect("loads");
        assert!(decrypts_basic(&ids));
    }
}

#[test]
fn all_sources_are_combined() {
    let h = home();
    let dir = h.path().join(".config/sops/age");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("keys.txt"), MOCK_KEY).expect("write");
    let flux = vectors().join("external/flux/keys_age.txt");
    let ids = Identities::discover(&sources(&[
        ("SOPS_AGE_KEY", SOPS_AGE_KEY),
        ("SOPS_AGE_KEY_FILE", &p(&flux)),
        ("HOME", &p(h.path())),
    ]))
    .expect("loads");
    assert_eq!(ids.len(), 3);
    // Shamir needs mockIdentity (group 0, default file) and a group-1 key (env).
    assert!(
        decrypt_file(
            &vectors().join("generated/enc/shamir_2groups.yaml"),
            &ids,
            DecryptOptions::default()
        )
        .is_ok()
    );
}

#[test]
fn malformed_line_names_source_and_line_only() {
    let mut ids = Identities::new();
    let err = ids
        .add_key_text(
            "# comment\n\nAGE-SECRET-KEY-1NOTVALIDBECH32\n",
            "test-source",
        )
        .expect_err("malformed");
    match &err {
        SopsError::Identity {
            source_name, line, ..
        } => {
            assert_eq!(source_name, "test-source");
            assert_eq!(*line, Some(3));
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.to_string().contains("NOTVALID"));
}

#[test]
fn post_quantum_and_plugin_identities_are_skipped_and_remembered() {
    let mut ids = Identities::new();
    ids.add_file(&vectors().join("external/flux/keys_age-pq.txt"))
        .expect("skipped, not an error");
    ids.add_key_text("AGE-PLUGIN-YUBIKEY-1QQQQ\n", "plugin")
        .expect("skipped");
    assert!(ids.is_empty());
    assert_eq!(ids.unsupported().len(), 2);
}

fn getsops(name: &str) -> std::path::PathBuf {
    vectors().join("external/getsops").join(name)
}

fn age_decrypt(ids: &Identities, armored: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let reader = age::armor::ArmoredReader::new(armored);
    let d = age::Decryptor::new(reader).ok()?;
    let mut out = Vec::new();
    d.decrypt(ids.as_age()).ok()?.read_to_end(&mut out).ok()?;
    Some(out)
}

#[test]
fn ssh_identity_from_env_decrypts_sops_mock_vector() {
    let h = home();
    let key = getsops("mockSshIdentity");
    let ids = Identities::discover(&sources(&[
        ("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &p(&key)),
        ("HOME", &p(h.path())),
    ]))
    .expect("loads");
    assert_eq!(ids.len(), 1);
    let blob = std::fs::read(getsops("mockEncryptedSshKey.age")).expect("vector");
    assert_eq!(age_decrypt(&ids, &blob).as_deref(), Some(&b"data"[..]));
}

#[test]
fn ssh_identities_from_home_are_added_to_the_env_one() {
    // sops 3.11 loads ~/.ssh/id_ed25519 and ~/.ssh/id_rsa even when
    // SOPS_AGE_SSH_PRIVATE_KEY_FILE is set, and a missing explicit file is not fatal.
    let h = home();
    std::fs::create_dir_all(h.path().join(".ssh")).expect("mkdir");
    std::fs::copy(getsops("mockSshIdentity"), h.path().join(".ssh/id_ed25519")).expect("copy");
    let missing = h.path().join("no-such-key");
    let ids = Identities::discover(&sources(&[
        ("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &p(&missing)),
        ("HOME", &p(h.path())),
    ]))
    .expect("a missing SSH key file is recorded, not fatal");
    assert_eq!(ids.len(), 1);
    assert_eq!(ids.unsupported().len(), 1);
    let blob = std::fs::read(getsops("mockEncryptedSshKey.age")).expect("vector");
    assert_eq!(age_decrypt(&ids, &blob).as_deref(), Some(&b"data"[..]));
}

#[test]
fn unusable_ssh_key_is_recorded_without_its_contents() {
    let h = home();
    std::fs::create_dir_all(h.path().join(".ssh")).expect("mkdir");
    std::fs::write(h.path().join(".ssh/id_rsa"), "not a key SECRETBYTES\n").expect("write");
    let ids = Identities::discover(&sources(&[("HOME", &p(h.path()))])).expect("loads");
    assert!(ids.is_empty());
    assert_eq!(ids.unsupported().len(), 1);
    assert!(!format!("{ids:?}").contains("SECRETBYTES"));
}
