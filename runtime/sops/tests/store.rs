//! `SopsStore` answers exactly what the decrypted tree holds, for every vector written by the
//! real sops, while decrypting a value only when it is asked for.

mod common;

use agentsec_policy::{
    AgentId, Decision, Operation, Policy, SecretPath, SkillDigest, SkillName, SkillRef,
};
use agentsec_secrets::{NameIndex, SecretStore, StoreError};
use agentsec_sops::{Node, SopsError, SopsStore};
use common::{decrypt, ids, vectors};

/// Every vector file the mock identity opens, all formats.
const FILES: &[&str] = &[
    "generated/enc/basic.yaml",
    "generated/enc/basic.json",
    "generated/enc/basic.env",
    "generated/enc/basic.ini",
    "generated/enc/alias.yaml",
    "generated/enc/comments_enc_regex.yaml",
    "generated/enc/comments_unenc_regex.yaml",
    "generated/enc/enc_suffix.yaml",
    "generated/enc/esc.json",
    "generated/enc/multidoc.yaml",
    "generated/enc/num.json",
    "generated/enc/nums.yaml",
    "generated/enc/odd.env",
    "generated/enc/regex.yaml",
    "generated/enc/regex_maconly.yaml",
    "generated/enc/unenc_regex.yaml",
    "generated/enc/blob.bin",
];
const MOCK: &str = "generated/key_mockIdentity.txt";

fn grant_all() -> (Policy, AgentId, SkillRef) {
    let policy = Policy::from_sources(&[(
        "all.yaml",
        "access_control:\n  secrets:\n    \"*\":\n      allowed_agents: [test/agent]\n",
    )])
    .expect("policy parses");
    let agent = AgentId::parse("test/agent").expect("agent");
    let skill = SkillRef::new(
        SkillName::parse("t").expect("name"),
        SkillDigest::from_bytes([0; 32]),
    );
    (policy, agent, skill)
}

fn get(
    store: &SopsStore,
    grants: &(Policy, AgentId, SkillRef),
    path: &SecretPath,
) -> Result<(Vec<u8>, bool), StoreError> {
    let (policy, agent, skill) = grants;
    let Decision::Allow(grant) = policy.evaluate(agent, skill, path, Operation::Read) else {
        panic!("`{path}` not granted");
    };
    store
        .get(&grant)
        .map(|s| (s.value.expose_secret().to_vec(), s.redact))
}

#[test]
fn every_leaf_matches_the_decrypted_tree_and_is_decrypted_only_when_asked() {
    let grants = grant_all();
    for file in FILES {
        let tree = decrypt(file, MOCK).unwrap_or_else(|e| panic!("{file}: {e}"));
        let store = SopsStore::open(&vectors().join(file), &ids(MOCK))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(store.decrypted(), 0, "{file}: nothing decrypted at open");

        let leaves: Vec<(SecretPath, Vec<u8>, bool)> = tree
            .leaves()
            .filter_map(|(segments, leaf)| {
                let path = SecretPath::from_segments(segments.iter()).ok()?;
                Some((
                    path,
                    leaf.value().expose_secret().to_vec(),
                    leaf.was_encrypted(),
                ))
            })
            .collect();
        assert!(!leaves.is_empty(), "{file}: has leaves");
        // Encrypted values whose sops AAD does not pin them to their path are never served
        // nor listed (SECURITY.md, "Values are bound to their path").
        let (leaves, unbound): (Vec<_>, Vec<_>) = leaves
            .into_iter()
            .partition(|(path, _, encrypted)| !encrypted || bound(tree.root(), path));
        for (path, ..) in &unbound {
            assert!(
                matches!(get(&store, &grants, path), Err(StoreError::Unbound { .. })),
                "{file} {path}: unbound"
            );
        }
        let listed = store.paths();
        let expected: Vec<&SecretPath> = leaves.iter().map(|(p, ..)| p).collect();
        assert_eq!(listed.iter().collect::<Vec<_>>(), expected, "{file}: paths");

        let mut encrypted_seen = 0;
        for (path, value, encrypted) in &leaves {
            let got = get(&store, &grants, path).unwrap_or_else(|e| panic!("{file} {path}: {e}"));
            assert_eq!(&got.0, value, "{file} {path}: value");
            assert_eq!(
                got.1, *encrypted,
                "{file} {path}: redacted exactly when encrypted"
            );
            encrypted_seen += usize::from(*encrypted);
            assert_eq!(store.decrypted(), encrypted_seen, "{file} {path}: count");
            // Asked again: served from the value decrypted the first time.
            assert_eq!(get(&store, &grants, path).expect("again").0, *value);
            assert_eq!(store.decrypted(), encrypted_seen, "{file} {path}: once");
        }
        assert!(encrypted_seen > 0, "{file}: has encrypted leaves");
    }
}

/// The binding rule, written independently of the store: no key with `:` above the value,
/// no mapping inside a list, at most one list level (its parent), and that list holds only
/// encrypted values.
fn bound(root: &Node, path: &SecretPath) -> bool {
    let mut node = root;
    let mut lists = 0;
    let segs: Vec<&str> = path.segments().collect();
    for (i, seg) in segs.iter().enumerate() {
        node = match node {
            Node::Map(entries) => {
                if seg.contains(':') || lists > 0 {
                    return false;
                }
                &entries.iter().find(|(k, _)| k == seg).expect("key").1
            }
            Node::List(items) => {
                lists += 1;
                let all_encrypted = items
                    .iter()
                    .all(|n| matches!(n, Node::Leaf(l) if l.was_encrypted()));
                if lists > 1 || i + 1 != segs.len() || !all_encrypted {
                    return false;
                }
                &items[seg.parse::<usize>().expect("index")]
            }
            _ => panic!("a leaf's path goes through a scalar"),
        };
    }
    true
}

#[test]
fn branches_missing_paths_and_nulls_answer_like_the_tree() {
    let grants = grant_all();
    let store =
        SopsStore::open(&vectors().join("generated/enc/basic.yaml"), &ids(MOCK)).expect("opens");
    let path = |p: &str| SecretPath::parse(p).expect("path");
    match get(&store, &grants, &path("nested")) {
        Err(StoreError::NotALeaf { children, .. }) => {
            assert_eq!(children, ["inner_key", "inner_unencrypted", "deeper"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        get(&store, &grants, &path("nope")),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        get(&store, &grants, &path("null_value")),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        get(&store, &grants, &path("hello.below_a_leaf")),
        Err(StoreError::NotFound { .. })
    ));
    // A list index, counted without the list's comment element.
    assert_eq!(
        get(&store, &grants, &path("list_of_scalars.1"))
            .expect("leaf")
            .0,
        b"2"
    );
    assert_eq!(store.decrypted(), 1);
    let under_nested = store.list(&path("nested")).expect("lists");
    let names: Vec<String> = under_nested.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "nested.inner_key",
            "nested.inner_unencrypted",
            "nested.deeper.leaf"
        ]
    );
    assert_eq!(store.decrypted(), 1, "listing decrypts nothing");
}

#[test]
fn a_tampered_file_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(vectors().join("generated/enc/basic.yaml")).expect("reads");
    // Swap the ciphertexts of two values. The AAD is the value's path, so
    // neither decrypts where it now stands: refused at open, not at get.
    let file = dir.path().join("swapped.yaml");
    let lines: Vec<&str> = text.lines().collect();
    let enc: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            lines[i].starts_with("hello: ENC[") || lines[i].starts_with("number_float: ENC[")
        })
        .collect();
    assert_eq!(enc.len(), 2, "fixture has both values");
    let value = |i: usize| lines[i].split_once(": ").map(|(_, v)| v).expect("value");
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    out[enc[0]] = format!("hello: {}", value(enc[1]));
    out[enc[1]] = format!("number_float: {}", value(enc[0]));
    std::fs::write(&file, out.join("\n") + "\n").expect("writes");
    let err = SopsStore::open(&file, &ids(MOCK)).expect_err("refused at open");
    assert!(
        matches!(err, SopsError::ValueDecrypt { ref path, .. } if path == "hello"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("ENC["), "{err}");
}
