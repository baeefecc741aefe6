//! Random trees through both directions with the real sops: agentsec encrypt → sops decrypt,
//! and sops encrypt → agentsec decrypt, for YAML and JSON; the trees must come back equal
//! (keys, order, values, scalar kinds). Unicode keys and values, nesting, lists, empty
//! strings, nulls, integers, floats and booleans. 24 cases per direction and format keeps the
//! run to a few seconds.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::process::Command;

use agentsec_sops::{
    DecryptOptions, EncryptConfig, Format, Identities, LeafKind, Node, decrypt_bytes,
    encrypt_plaintext, parse_plaintext,
};
use agentsec_tests::{root, sops};
use proptest::prelude::*;
use serde_json::{Map, Value};

const MOCK_RECIPIENT: &str = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun";
const CASES: u32 = 24;

fn key() -> std::path::PathBuf {
    root().join("tests/testdata/sops-vectors/generated/key_mockIdentity.txt")
}

/// Printable text without the YAML line separators U+0085, U+2028 and U+2029.
const TEXT: &str = "[\\PC&&[^\u{85}\u{2028}\u{2029}]]{0,10}";
const KEY: &str = "[\\PC&&[^\u{85}\u{2028}\u{2029}]]{1,8}";

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1_000_000i64..1_000_000).prop_map(Value::from),
        // Floats with short exact decimal forms, never integral: sops itself writes an
        // integral float (`-405.0`) as `-405`, which reads back as an integer.
        (-4000i32..4000).prop_map(|n| Value::from(f64::from(2 * n + 1) / 8.0)),
        Just(Value::String(String::new())),
        TEXT.prop_map(Value::String),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((KEY, inner), 0..4)
                .prop_map(|kv| { Value::Object(kv.into_iter().collect::<Map<String, Value>>()) }),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    prop::collection::vec((KEY, tree()), 1..5).prop_map(|kv| {
        Value::Object(
            kv.into_iter()
                .filter(|(k, _)| k != "sops")
                .chain(std::iter::once(("k".to_owned(), Value::from("v"))))
                .collect::<Map<String, Value>>(),
        )
    })
}

/// A comparable copy of a tree (the `encrypted` flag is a property of the file, not the data).
#[derive(Debug, PartialEq)]
enum V {
    Map(Vec<(String, V)>),
    List(Vec<V>),
    Leaf(Vec<u8>, LeafKind),
    Null,
}

fn plain(n: &Node) -> V {
    match n {
        Node::Map(items) => V::Map(items.iter().map(|(k, v)| (k.clone(), plain(v))).collect()),
        Node::List(items) => V::List(items.iter().map(plain).collect()),
        Node::Leaf(l) => V::Leaf(l.value().expose_secret().to_vec(), l.kind()),
        Node::Null => V::Null,
    }
}

/// The document as text for either format: JSON is YAML (flow style), and yaml.v3 and
/// agentsec both read it as such; sops then writes its own block-style YAML.
fn text(doc: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(doc).unwrap()
}

fn ext(format: Format) -> &'static str {
    if format == Format::Yaml {
        "yaml"
    } else {
        "json"
    }
}

fn sops_cmd(dir: &Path) -> Command {
    let mut c = Command::new(sops());
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("cfg"))
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("SOPS_AGE_KEY_FILE", key())
        .current_dir(dir);
    c
}

fn agentsec_to_sops(doc: &Value, format: Format) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let bytes = text(doc);
    let want = parse_plaintext(&bytes, format, "plain").unwrap();
    let cfg = EncryptConfig::for_recipients(vec![MOCK_RECIPIENT.to_owned()]);
    let enc = encrypt_plaintext(&bytes, format, "plain", &cfg).unwrap();
    let file = dir.path().join(format!("e.{}", ext(format)));
    std::fs::write(&file, &enc).unwrap();
    let out = sops_cmd(dir.path())
        .arg("decrypt")
        .arg(&file)
        .output()
        .unwrap();
    prop_assert!(
        out.status.success(),
        "sops decrypt failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&enc)
    );
    let got = parse_plaintext(&out.stdout, format, "sops output").unwrap();
    prop_assert_eq!(plain(want.root()), plain(got.root()));
    Ok(())
}

fn sops_to_agentsec(doc: &Value, format: Format) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let bytes = text(doc);
    let want = parse_plaintext(&bytes, format, "plain").unwrap();
    let file = dir.path().join(format!("p.{}", ext(format)));
    std::fs::write(&file, &bytes).unwrap();
    let out = sops_cmd(dir.path())
        .args(["encrypt", "--age", MOCK_RECIPIENT])
        .arg(&file)
        .output()
        .unwrap();
    prop_assert!(
        out.status.success(),
        "sops encrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ids = Identities::new();
    ids.add_file(&key()).unwrap();
    let got = decrypt_bytes(
        &out.stdout,
        format,
        "sops file",
        &ids,
        DecryptOptions::default(),
    );
    prop_assert!(got.is_ok(), "{:?}", got.err());
    prop_assert_eq!(plain(want.root()), plain(got.unwrap().root()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn yaml_agentsec_encrypt_sops_decrypt(doc in document()) {
        agentsec_to_sops(&doc, Format::Yaml)?;
    }

    #[test]
    fn yaml_sops_encrypt_agentsec_decrypt(doc in document()) {
        sops_to_agentsec(&doc, Format::Yaml)?;
    }

    #[test]
    fn json_agentsec_encrypt_sops_decrypt(doc in document()) {
        agentsec_to_sops(&doc, Format::Json)?;
    }

    #[test]
    fn json_sops_encrypt_agentsec_decrypt(doc in document()) {
        sops_to_agentsec(&doc, Format::Json)?;
    }
}
