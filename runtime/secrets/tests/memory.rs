//! `MemoryStore` answers like a store: a leaf, a branch with its children, nothing, and it
//! refuses a path that would be both a leaf and a branch.

use agentsec_policy::{
    AgentId, Decision, Operation, Policy, SecretPath, SkillDigest, SkillName, SkillRef,
};
use agentsec_secrets::{MemoryStore, NameIndex, SecretStore, SecretValue, StoreError};

fn path(text: &str) -> SecretPath {
    SecretPath::parse(text).expect("path parses")
}

fn get(store: &MemoryStore, at: &str) -> Result<(Vec<u8>, bool), StoreError> {
    let policy = Policy::from_sources(&[(
        "p.yaml",
        "access_control:\n  secrets:\n    \"*\":\n      allowed_agents: [a/b]\n",
    )])
    .expect("policy parses");
    let agent = AgentId::parse("a/b").expect("agent");
    let skill = SkillRef::new(
        SkillName::parse("s").expect("name"),
        SkillDigest::from_bytes([0; 32]),
    );
    let at = path(at);
    let Decision::Allow(grant) = policy.evaluate(&agent, &skill, &at, Operation::Read) else {
        panic!("granted");
    };
    store
        .get(&grant)
        .map(|s| (s.value.expose_secret().to_vec(), s.redact))
}

#[test]
fn leaves_branches_and_absent_paths() {
    let mut store = MemoryStore::new();
    store
        .insert(
            path("db.password"),
            SecretValue::copy_from_slice(b"pw"),
            true,
        )
        .expect("inserts")
        .insert(path("db.host"), SecretValue::copy_from_slice(b"h"), false)
        .expect("inserts")
        .insert(path("api.token"), SecretValue::copy_from_slice(b"t"), true)
        .expect("inserts");
    assert_eq!(
        get(&store, "db.password").expect("leaf"),
        (b"pw".to_vec(), true)
    );
    assert_eq!(
        get(&store, "db.host").expect("leaf"),
        (b"h".to_vec(), false)
    );
    match get(&store, "db") {
        Err(StoreError::NotALeaf { children, .. }) => assert_eq!(children, ["password", "host"]),
        other => panic!("a branch: {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        get(&store, "db.user"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        get(&store, "dbx"),
        Err(StoreError::NotFound { .. })
    ));
    let names: Vec<String> = store
        .list(&path("db"))
        .expect("lists")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(names, ["db.password", "db.host"]);
    assert_eq!(store.list(&SecretPath::root()).expect("lists").len(), 3);
}

#[test]
fn a_path_is_a_leaf_or_a_branch_never_both() {
    let mut store = MemoryStore::new();
    store
        .insert(path("a.b"), SecretValue::copy_from_slice(b"1"), true)
        .expect("inserts");
    let below = store
        .insert(path("a.b.c"), SecretValue::copy_from_slice(b"2"), true)
        .expect_err("below a leaf is refused");
    assert_eq!(below.to_string(), "`a.b.c` lies below a value");
    let above = store
        .insert(path("a"), SecretValue::copy_from_slice(b"3"), true)
        .expect_err("above a leaf is refused");
    assert_eq!(above.to_string(), "`a` lies above a value");
    assert!(
        store
            .insert(SecretPath::root(), SecretValue::copy_from_slice(b"4"), true)
            .is_err()
    );
    // Replacing a leaf is fine, and the new value is served.
    store
        .insert(path("a.b"), SecretValue::copy_from_slice(b"5"), false)
        .expect("replaces");
    assert_eq!(get(&store, "a.b").expect("leaf"), (b"5".to_vec(), false));
}

/// A grant evaluated for a listing never unlocks a value: every level permits `List`,
/// including `post` and `sign`, whose values only the host may use.
#[test]
fn a_listing_grant_releases_no_value() {
    let mut store = MemoryStore::new();
    store
        .insert(
            path("hooks.deploy"),
            SecretValue::copy_from_slice(b"h"),
            true,
        )
        .expect("inserts");
    let policy = Policy::from_sources(&[(
        "p.yaml",
        "access_control:\n  secrets:\n    hooks:\n      allowed_agents: [a/b]\n      access_level: post\n",
    )])
    .expect("policy parses");
    let agent = AgentId::parse("a/b").expect("agent");
    let skill = SkillRef::new(
        SkillName::parse("s").expect("name"),
        SkillDigest::from_bytes([0; 32]),
    );
    let at = path("hooks.deploy");
    let Decision::Allow(grant) = policy.evaluate(&agent, &skill, &at, Operation::List) else {
        panic!("post permits listing");
    };
    assert!(!grant.releases_value());
    assert!(matches!(
        store.get(&grant),
        Err(StoreError::ListingGrant { .. })
    ));
    assert!(
        !policy
            .evaluate(&agent, &skill, &at, Operation::Read)
            .is_allowed()
    );
}
