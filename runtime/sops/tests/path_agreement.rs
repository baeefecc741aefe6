//! The policy and the store agree on what a path names: whatever spelling a caller uses, a
//! path is either refused, names nothing, or names exactly the node the store lists under
//! one canonical path, and the policy decides it as it decides that canonical path.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use agentsec_policy::{
    AgentId, Decision, Operation, PathPattern, Policy, SecretPath, SkillDigest, SkillName, SkillRef,
};
use agentsec_secrets::{SecretStore, StoreError};
use agentsec_sops::{EncryptConfig, Format, Identities, SopsStore, encrypt_plaintext};
use proptest::prelude::*;

const PLAIN: &str = r#"app:
    keys:
        - k0-value
        - k1-value
        - k2-value
    "0": zero-key-value
    "00": padded-key-value
    "007": bond-value
    name: name-value
list_unencrypted:
    - c0-value
    - c1-value
"a.b":
    c: dotted-key-value
deep:
    x:
        "1": one-value
    "10":
        - t0-value
"#;

struct World {
    store: SopsStore,
    /// Canonical path -> value, as the store lists them.
    values: BTreeMap<SecretPath, Vec<u8>>,
    _dir: tempfile::TempDir,
}

fn skill() -> SkillRef {
    SkillRef::new(
        SkillName::parse("t").expect("name"),
        SkillDigest::from_bytes([0; 32]),
    )
}

fn agent() -> AgentId {
    AgentId::parse("test/agent").expect("agent")
}

fn policy(denied: Option<&str>) -> Policy {
    let mut text = String::from(
        "access_control:\n  secrets:\n    \"*\":\n      allowed_agents: [test/agent]\n",
    );
    if let Some(d) = denied {
        let quoted = d.replace('\\', "\\\\").replace('"', "\\\"");
        text.push_str(&format!(
            "    \"{quoted}\":\n      denied_agents: [test/agent]\n"
        ));
    }
    Policy::from_sources(&[("p.yaml", text.as_str())]).expect("policy parses")
}

fn get(store: &SopsStore, policy: &Policy, path: &SecretPath) -> Result<Vec<u8>, StoreError> {
    let (agent, skill) = (agent(), skill());
    let Decision::Allow(grant) = policy.evaluate(&agent, &skill, path, Operation::Read) else {
        panic!("`{path}` not granted by the allow-all policy");
    };
    store.get(&grant).map(|s| s.value.expose_secret().to_vec())
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = age::x25519::Identity::generate();
        let key_file = dir.path().join("key.txt");
        {
            use age::secrecy::ExposeSecret;
            std::fs::write(&key_file, format!("{}\n", id.to_string().expose_secret()))
                .expect("key written");
        }
        let config = EncryptConfig::for_recipients(vec![id.to_public().to_string()]);
        let enc =
            encrypt_plaintext(PLAIN.as_bytes(), Format::Yaml, "p.yaml", &config).expect("encrypts");
        let file = dir.path().join("s.yaml");
        std::fs::write(&file, enc).expect("written");
        let mut ids = Identities::new();
        ids.add_file(&key_file).expect("key loads");
        let store = SopsStore::open(&file, &ids).expect("opens");
        let all = policy(None);
        let values = store
            .paths()
            .into_iter()
            .map(|p| {
                let v = get(&store, &all, &p).expect("a listed path is served");
                (p, v)
            })
            .collect();
        World {
            store,
            values,
            _dir: dir,
        }
    })
}

/// One way to write a segment; `padded` ones are not canonical.
#[derive(Clone, Copy, Debug)]
enum Spell {
    Dotted,
    Index,
    Double,
    Single,
    PaddedDotted,
    PaddedIndex,
}

fn write(segments: &[String], spells: &[Spell]) -> String {
    let mut out = String::new();
    for (i, (seg, spell)) in segments.iter().zip(spells.iter().cycle()).enumerate() {
        let digits = seg.bytes().all(|b| b.is_ascii_digit());
        let simple = seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        match spell {
            Spell::Dotted if simple => {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(seg);
            }
            Spell::Index if digits => out.push_str(&format!("[{seg}]")),
            Spell::PaddedDotted if digits => {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(&format!("0{seg}"));
            }
            Spell::PaddedIndex if digits => out.push_str(&format!("[00{seg}]")),
            Spell::Single => out.push_str(&format!("['{}']", seg.replace('\'', "\\'"))),
            _ => out.push_str(&format!("[\"{}\"]", seg.replace('"', "\\\""))),
        }
    }
    out
}

/// Whether `write(segments, spells)` spells a list index with a leading zero, which the
/// parser must refuse: a padded spelling of digits, or digits that are padded themselves
/// (a key `007`) written unquoted.
fn refused(segments: &[String], spells: &[Spell]) -> bool {
    segments.iter().zip(spells.iter().cycle()).any(|(s, sp)| {
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let padded_itself = digits && s.len() > 1 && s.starts_with('0');
        (digits && matches!(sp, Spell::PaddedDotted | Spell::PaddedIndex))
            || (padded_itself && matches!(sp, Spell::Dotted | Spell::Index))
    })
}

fn spell() -> impl Strategy<Value = Spell> {
    prop_oneof![
        Just(Spell::Dotted),
        Just(Spell::Index),
        Just(Spell::Double),
        Just(Spell::Single),
        Just(Spell::PaddedDotted),
        Just(Spell::PaddedIndex),
    ]
}

proptest! {
    #[test]
    fn policy_and_store_agree_on_what_a_path_names(
        leaf in 0usize..64,
        spells in prop::collection::vec(spell(), 1..6),
        deny in 0usize..64,
        deny_depth in 1usize..4,
        deny_spells in prop::collection::vec(spell(), 1..6),
    ) {
        let w = world();
        let listed: Vec<&SecretPath> = w.values.keys().collect();
        let target = listed[leaf % listed.len()];
        let segments: Vec<String> = target.segments().map(str::to_owned).collect();
        let text = write(&segments, &spells);
        let padded = refused(&segments, &spells);

        // A deny on an ancestor (or the leaf) of another listed path, in some spelling.
        let denied_path = listed[deny % listed.len()];
        let denied_segs: Vec<String> = denied_path
            .segments()
            .take(deny_depth)
            .map(str::to_owned)
            .collect();
        let denied_text = write(&denied_segs, &deny_spells);
        let deny_pattern = PathPattern::parse(&denied_text);
        let all = policy(None);

        match SecretPath::parse(&text) {
            Err(_) => prop_assert!(padded, "{text:?} is a valid spelling of {target}"),
            Ok(path) => {
                prop_assert!(!padded, "{text:?} parsed to {path}");
                match get(&w.store, &all, &path) {
                    Ok(value) => {
                        // Served only under its one canonical name, with its own value.
                        prop_assert_eq!(&path, target, "{:?}", text);
                        prop_assert_eq!(Some(&value), w.values.get(&path));
                    }
                    Err(e) => prop_assert!(
                        !w.values.contains_key(&path),
                        "{text:?}: listed but not served: {e}"
                    ),
                }
                if let Ok(pattern) = deny_pattern {
                    let strict = policy(Some(&denied_text));
                    let decision = strict.evaluate(&agent(), &skill(), &path, Operation::Read).is_allowed();
                    let canonical_denied = SecretPath::from_segments(&denied_segs)
                        .expect("segments");
                    // The rule's spelling does not matter either: it covers exactly the
                    // canonical node it names.
                    prop_assert_eq!(pattern.to_string(), canonical_denied.to_string());
                    prop_assert_eq!(
                        decision,
                        !path.starts_with(&canonical_denied),
                        "{:?} under deny {:?}", text, denied_text
                    );
                } else {
                    prop_assert!(
                        refused(&denied_segs, &deny_spells),
                        "{denied_text:?} is a valid rule key"
                    );
                }
            }
        }
    }
}

#[test]
fn padded_keys_and_indices_are_distinct_nodes() {
    let w = world();
    let all = policy(None);
    let got = |p: &str| get(&w.store, &all, &SecretPath::parse(p).expect(p)).ok();
    assert_eq!(got("app.keys.0").as_deref(), Some(&b"k0-value"[..]));
    assert_eq!(got(r#"app["0"]"#).as_deref(), Some(&b"zero-key-value"[..]));
    assert_eq!(
        got(r#"app["00"]"#).as_deref(),
        Some(&b"padded-key-value"[..])
    );
    assert_eq!(got(r#"app["007"]"#).as_deref(), Some(&b"bond-value"[..]));
    // A quoted padded index names a key, never a list element.
    assert_eq!(got(r#"app.keys["00"]"#), None);
    assert_eq!(got("deep.10.0").as_deref(), Some(&b"t0-value"[..]));
    assert!(SecretPath::parse("app.keys.00").is_err());
    assert!(SecretPath::parse("app.keys[000]").is_err());
}
