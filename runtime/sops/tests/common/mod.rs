//! Shared helpers for the integration tests.
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::{Path, PathBuf};

use agentsec_sops::{
    DecryptOptions, Format, Identities, Node, SecretTree, SopsError, decrypt_file, parse_plaintext,
};

/// The real-sops vectors (a copy of shared/sops/vectors).
pub fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/testdata/sops-vectors")
}

pub fn ids(key_file: &str) -> Identities {
    let mut ids = Identities::new();
    ids.add_file(&vectors().join(key_file))
        .expect("key file loads");
    ids
}

pub fn decrypt(file: &str, key_file: &str) -> Result<SecretTree, SopsError> {
    decrypt_file(
        &vectors().join(file),
        &ids(key_file),
        DecryptOptions::default(),
    )
}

pub fn plaintext(file: &str, format: Format) -> SecretTree {
    let bytes = std::fs::read(vectors().join(file)).expect("plaintext readable");
    parse_plaintext(&bytes, format, file).expect("plaintext parses")
}

/// Asserts that two trees have the same shape, keys, kinds and leaf texts.
pub fn assert_same(got: &SecretTree, want: &SecretTree, what: &str) {
    assert_eq!(
        got.documents().len(),
        want.documents().len(),
        "{what}: number of documents"
    );
    for (g, w) in got.documents().iter().zip(want.documents()) {
        same_node(g, w, what, "<root>");
    }
}

fn same_node(g: &Node, w: &Node, what: &str, path: &str) {
    match (g, w) {
        (Node::Map(a), Node::Map(b)) => {
            let ka: Vec<&String> = a.iter().map(|(k, _)| k).collect();
            let kb: Vec<&String> = b.iter().map(|(k, _)| k).collect();
            assert_eq!(ka, kb, "{what}: keys of {path}");
            for ((k, x), (_, y)) in a.iter().zip(b) {
                same_node(x, y, what, &format!("{path}.{k}"));
            }
        }
        (Node::List(a), Node::List(b)) => {
            assert_eq!(a.len(), b.len(), "{what}: length of {path}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                same_node(x, y, what, &format!("{path}[{i}]"));
            }
        }
        (Node::Leaf(a), Node::Leaf(b)) => {
            assert_eq!(
                String::from_utf8_lossy(a.value().expose_secret()),
                String::from_utf8_lossy(b.value().expose_secret()),
                "{what}: text of {path}"
            );
            assert_eq!(a.kind(), b.kind(), "{what}: kind of {path}");
        }
        (Node::Null, Node::Null) => {}
        _ => panic!("{what}: different node types at {path}: {g:?} vs {w:?}"),
    }
}
