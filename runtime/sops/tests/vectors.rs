//! Every YAML and JSON vector with an X25519 recipient decrypts, MAC-verifies, and equals its
//! plaintext twin (parsed with the same reader).

mod common;

use agentsec_sops::{Format, LeafKind, Lookup};
use common::{assert_same, decrypt, plaintext};

const MOCK: &str = "generated/key_mockIdentity.txt";
const ALL: &str = "generated/keys_all.txt";

fn check(enc: &str, key: &str, expected: &str, format: Format) {
    let got = decrypt(enc, key).unwrap_or_else(|e| panic!("{enc}: {e}"));
    let want = plaintext(expected, format);
    assert_same(&got, &want, enc);
}

#[test]
fn generated_yaml_vectors() {
    for name in [
        "basic",
        "multidoc",
        "indent2",
        "regex",
        "regex_maconly",
        "unenc_regex",
        "enc_suffix",
        "alias",
        "comments_enc_regex",
        "comments_unenc_regex",
    ] {
        check(
            &format!("generated/enc/{name}.yaml"),
            MOCK,
            &format!("generated/expected/{name}.yaml.decrypted"),
            Format::Yaml,
        );
    }
}

/// `nums.yaml` is compared with its input: sops' output re-emits the float `1e3` as `1000`,
/// which reads back as an int.
#[test]
fn yaml_numbers_against_their_plain_input() {
    check(
        "generated/enc/nums.yaml",
        MOCK,
        "generated/plain/nums.yaml",
        Format::Yaml,
    );
    check(
        "generated/enc/basic.yaml",
        MOCK,
        "generated/plain/basic.yaml",
        Format::Yaml,
    );
    check(
        "generated/enc/alias.yaml",
        MOCK,
        "generated/plain/alias.yaml",
        Format::Yaml,
    );
    check(
        "generated/enc/regex.yaml",
        MOCK,
        "generated/plain/regex.yaml",
        Format::Yaml,
    );
}

#[test]
fn generated_json_vectors() {
    for name in ["basic", "esc", "indent2", "num", "after_set_unset"] {
        check(
            &format!("generated/enc/{name}.json"),
            MOCK,
            &format!("generated/expected/{name}.json.decrypted"),
            Format::Json,
        );
    }
}

#[test]
fn shamir_two_groups_needs_both_groups() {
    check(
        "generated/enc/shamir_2groups.yaml",
        ALL,
        "generated/expected/shamir_2groups.yaml.decrypted",
        Format::Yaml,
    );
    // Only group 0's key: threshold 2 not reached.
    let err = decrypt("generated/enc/shamir_2groups.yaml", MOCK).err();
    let err = err.expect("one group is not enough");
    assert_eq!(err.exit_code(), 128);
    let msg = err.to_string();
    assert!(msg.contains("Group 0: SUCCESS"), "{msg}");
    assert!(msg.contains("Group 1: FAILED"), "{msg}");
    assert!(msg.contains("age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29"));
}

#[test]
fn rotated_multidoc_and_multi_recipient() {
    check(
        "generated/enc/rotated_multidoc.yaml",
        ALL,
        "generated/expected/rotated_multidoc.yaml.decrypted",
        Format::Yaml,
    );
    check(
        "generated/enc/after_set_unset.json",
        ALL,
        "generated/expected/after_set_unset.json.decrypted",
        Format::Json,
    );
}

#[test]
fn external_vectors() {
    check(
        "external/sops-age/secret.enc.yaml",
        "external/sops-age/key.txt",
        "expected/sops-age_secret.enc.yaml.decrypted",
        Format::Yaml,
    );
    check(
        "external/sops-age/secret.enc.json",
        "external/sops-age/key.txt",
        "external/sops-age/secret.json",
        Format::Json,
    );
    check(
        "external/sops-age/secret.enc.json",
        "external/sops-age/key.txt",
        "expected/sops-age_secret.enc.json.decrypted",
        Format::Json,
    );
    for name in ["algorithms_age", "patches_merge1", "patches_merge2"] {
        check(
            &format!("external/flux/{name}.yaml"),
            "external/flux/keys_age.txt",
            &format!("expected/flux_{name}.yaml.decrypted"),
            Format::Yaml,
        );
    }
    check(
        "external/flux/global_secret.yaml",
        "external/flux/keys_age-global.txt",
        "expected/flux_global_secret.yaml.decrypted",
        Format::Yaml,
    );
    check(
        "external/helm-secrets/secrets.age.yaml",
        "external/helm-secrets/key.txt",
        "expected/helm-secrets_secrets.age.yaml.decrypted",
        Format::Yaml,
    );
}

/// rops drops the `version` field; real sops refuses such files (`Version string empty`). We
/// accept them: the version is not authenticated and nothing else is wrong with them.
#[test]
fn rops_vectors_without_version_are_accepted() {
    for name in [
        "age_example",
        "age_empty_value",
        "age_mac_only_encrypted",
        "age_encrypted_regex",
        "age_encrypted_suffix",
        "age_unencrypted_regex",
        "age_unencrypted_suffix",
    ] {
        check(
            &format!("external/rops/{name}.yaml"),
            "external/rops/key.txt",
            &format!("external/rops/{name}_plaintext.yaml"),
            Format::Yaml,
        );
    }
}

#[test]
fn post_quantum_recipient_reports_the_unusable_identity() {
    let err = decrypt(
        "external/flux/algorithms_age-pq.yaml",
        "external/flux/keys_age-pq.txt",
    )
    .expect_err("this build has no post-quantum age");
    assert_eq!(err.exit_code(), 128);
    let msg = err.to_string();
    assert!(msg.contains("post-quantum identity"), "{msg}");
    assert!(
        !msg.contains("Z8QMHKS77CVF95LF38SMLT0MEFR00HVMW58DJGD5USLGCVXTJCSQNRKCNK"),
        "{msg}"
    );
}

#[test]
fn leaf_texts_match_sops_extract() {
    let tree = decrypt("generated/enc/basic.yaml", MOCK).expect("decrypts");
    let text = |path: &[&str]| match tree.lookup(path) {
        Lookup::Leaf(l) => (
            String::from_utf8_lossy(l.value().expose_secret()).into_owned(),
            l.kind(),
            l.was_encrypted(),
        ),
        other => panic!("{path:?}: {other:?}"),
    };
    assert_eq!(
        text(&["nested", "inner_key"]),
        ("inner value".into(), LeafKind::Str, true)
    );
    assert_eq!(
        text(&["nested", "deeper", "leaf"]),
        ("3".into(), LeafKind::Int, true)
    );
    assert_eq!(
        text(&["number_float"]),
        ("1234.56789".into(), LeafKind::Float, true)
    );
    assert_eq!(
        text(&["float_exp"]),
        ("1e+25".into(), LeafKind::Float, true)
    );
    assert_eq!(text(&["bool_true"]), ("true".into(), LeafKind::Bool, true));
    assert_eq!(
        text(&["date_value"]),
        ("2024-01-01T00:00:00Z".into(), LeafKind::Time, true)
    );
    assert_eq!(
        text(&["secret_unencrypted"]),
        ("visible".into(), LeafKind::Str, false)
    );
    assert_eq!(
        text(&["empty_string"]),
        (String::new(), LeafKind::Str, false)
    );
    // The list comment element is dropped: index 1 is the int 2.
    assert_eq!(
        text(&["list_of_scalars", "1"]),
        ("2".into(), LeafKind::Int, true)
    );
    assert_eq!(text(&["list_of_maps", "1", "name"]).0, "second");
    assert!(matches!(tree.lookup(&["null_value"]), Lookup::Null));
    assert!(matches!(
        tree.lookup(&["nope"]),
        Lookup::NotFound { depth: 0 }
    ));
    assert!(matches!(
        tree.lookup(&["nested", "x", "y"]),
        Lookup::NotFound { depth: 1 }
    ));
    assert!(matches!(
        tree.lookup(&["hello", "x"]),
        Lookup::NotFound { depth: 1 }
    ));
    match tree.lookup(&["nested"]) {
        Lookup::Branch { children } => {
            assert_eq!(children, ["inner_key", "inner_unencrypted", "deeper"]);
        }
        other => panic!("{other:?}"),
    }
    let paths: Vec<String> = tree.leaves().map(|(p, _)| p.join(".")).collect();
    assert_eq!(paths.first().map(String::as_str), Some("hello"));
    assert!(paths.contains(&"nested_list.0.1".to_owned()));
    assert!(!paths.contains(&"null_value".to_owned()));

    let json = decrypt("generated/enc/basic.json", MOCK).expect("decrypts");
    match json.lookup(&["int"]) {
        Lookup::Leaf(l) => assert_eq!(l.value().expose_secret(), b"42"),
        other => panic!("{other:?}"),
    }
    match json.lookup(&["exp"]) {
        Lookup::Leaf(l) => assert_eq!(l.value().expose_secret(), b"1e-7"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn multidoc_lookup_addresses_the_first_document() {
    let tree = decrypt("generated/enc/multidoc.yaml", MOCK).expect("decrypts");
    assert_eq!(tree.documents().len(), 2);
    match tree.lookup(&["secret"]) {
        Lookup::Leaf(l) => assert_eq!(l.value().expose_secret(), b"s1"),
        other => panic!("{other:?}"),
    }
}
