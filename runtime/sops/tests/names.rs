//! `SopsNames` reads the key names of a SOPS file without any key, and lists exactly what
//! `SopsStore` (which decrypts and verifies) lists for the same file: over every real-sops
//! vector a key is available for, unbound values left out by both.

mod common;

use std::path::{Path, PathBuf};

use agentsec_policy::SecretPath;
use agentsec_secrets::NameIndex;
use agentsec_sops::{Identities, SopsError, SopsNames, SopsStore};
use common::vectors;

/// Every key file of the vectors (the post-quantum one may not load; it is skipped then).
const KEY_FILES: &[&str] = &[
    "generated/keys_all.txt",
    "generated/key_mockIdentity.txt",
    "external/flux/keys_age.txt",
    "external/flux/keys_age-global.txt",
    "external/flux/keys_age-pq.txt",
    "external/sops-age/key.txt",
    "external/helm-secrets/key.txt",
    "external/rops/key.txt",
];

fn all_identities() -> Identities {
    let mut ids = Identities::new();
    for file in KEY_FILES {
        let _ = ids.add_file(&vectors().join(file));
    }
    ids
}

/// The encrypted files among the vectors: everything under `generated/enc`, `generated/tamper`
/// and `external`, except key files, configs and plaintext twins.
fn encrypted_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("vector dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                walk(&path, out);
            } else if !(name.starts_with('.')
                || name.starts_with("key")
                || name.starts_with("mock")
                || name.contains("plaintext")
                || name == "secret.json")
            {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    for dir in ["generated/enc", "generated/tamper", "external"] {
        walk(&vectors().join(dir), &mut out);
    }
    out
}

#[test]
fn names_match_the_store_for_every_vector_that_opens() {
    let ids = all_identities();
    let mut compared = 0;
    let mut with_unbound = 0;
    for file in encrypted_files() {
        let shown = file.display();
        let store = SopsStore::open(&file, &ids);
        let names = SopsNames::open(&file);
        match (&store, &names) {
            (Ok(store), Ok(names)) => {
                assert_eq!(names.paths(), store.paths(), "{shown}: listed paths");
                let root = SecretPath::root();
                assert_eq!(
                    names.list(&root).expect("lists"),
                    store.list(&root).expect("lists"),
                    "{shown}: list of the root"
                );
                compared += 1;
                let leaves = agentsec_sops::decrypt_file(&file, &ids, Default::default())
                    .expect("decrypts")
                    .leaves()
                    .count();
                with_unbound += usize::from(leaves > store.paths().len());
            }
            // Tampered values decrypt wrongly or the MAC fails: only the store can tell.
            (
                Err(
                    SopsError::MacMismatch { .. }
                    | SopsError::ValueDecrypt { .. }
                    | SopsError::ValueType { .. }
                    | SopsError::DataKey { .. },
                ),
                Ok(_),
            ) => {}
            // Both refuse the structure, with the same kind of error.
            (Err(a), Err(b)) => assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "{shown}: store {a}; names {b}"
            ),
            (store, names) => panic!(
                "{shown}: store {:?}; names {:?}",
                store.as_ref().err(),
                names.as_ref().err()
            ),
        }
    }
    assert!(compared >= 20, "compared only {compared} vectors");
    assert!(with_unbound > 0, "some vector has unbound values left out");
}

#[test]
fn names_need_no_key_and_decrypt_nothing() {
    // No identity is involved at all: the type has no way to take one.
    let names =
        SopsNames::open(&vectors().join("generated/enc/basic.yaml")).expect("opens without a key");
    let nested = SecretPath::parse("nested").expect("path");
    let listed: Vec<String> = names
        .list(&nested)
        .expect("lists")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        listed,
        [
            "nested.inner_key",
            "nested.inner_unencrypted",
            "nested.deeper.leaf"
        ]
    );
}

#[test]
fn a_file_that_is_not_sops_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    type Expect = fn(&SopsError) -> bool;
    let cases: &[(&str, &str, Expect)] = &[
        ("plain.yaml", "a: 1\nb: [x]\n", |e| {
            matches!(e, SopsError::NoMetadata { .. })
        }),
        ("bad.yaml", "a: [1\n", |e| {
            matches!(e, SopsError::Syntax { .. })
        }),
        (
            "badmeta.yaml",
            "a: 1\nsops:\n  version: 3.11.0\n  key_groups: 7\n",
            |e| matches!(e, SopsError::InvalidMetadata { .. }),
        ),
        (
            "nomac.yaml",
            "a: ENC[AES256_GCM,data:AA==,iv:AAAAAAAAAAAAAAAAAAAAAA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\nsops:\n  age: []\n  version: 3.11.0\n",
            |e| matches!(e, SopsError::MacMissing { .. }),
        ),
    ];
    for (name, text, expected) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, text).expect("writes");
        let err = SopsNames::open(&file).expect_err(name);
        assert!(expected(&err), "{name}: {err:?}");
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    let missing = dir.path().join("missing.yaml");
    assert!(matches!(
        SopsNames::open(&missing),
        Err(SopsError::FileNotFound { .. })
    ));
}

#[test]
fn a_value_that_should_be_encrypted_but_is_clear_is_refused() {
    let text = std::fs::read_to_string(vectors().join("generated/enc/basic.yaml")).expect("reads");
    let hello = text
        .lines()
        .find(|l| l.starts_with("hello: ENC["))
        .expect("fixture has hello");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("clear.yaml");
    std::fs::write(&file, text.replace(hello, "hello: in clear")).expect("writes");
    let err = SopsNames::open(&file).expect_err("refused");
    assert!(
        matches!(err, SopsError::NotEncrypted { ref path, .. } if path == "hello"),
        "{err:?}"
    );
}
