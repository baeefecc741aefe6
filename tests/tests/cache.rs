//! The compiled-component cache: reused across hosts (processes), keyed by
//! digest, and never trusted when someone else could have written it.

use std::os::unix::fs::PermissionsExt as _;

use agentsec_host::{Host, HostConfig};
use agentsec_tests::skill;

#[test]
fn a_second_host_loads_the_compiled_component_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig::default().with_cache_dir(dir.path().join("components"));
    let first = Host::new(config.clone())
        .unwrap()
        .load_file(&skill("probe"))
        .unwrap();
    assert!(!first.from_cache(), "cold cache compiles");
    let second = Host::new(config.clone())
        .unwrap()
        .load_file(&skill("probe"))
        .unwrap();
    assert!(second.from_cache(), "warm cache is used");
    assert_eq!(first.sha256(), second.sha256());

    let mode = std::fs::metadata(dir.path().join("components"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the cache directory is private");
    let artifacts: Vec<_> = std::fs::read_dir(dir.path().join("components"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");

    // An artifact that others could have replaced is not trusted.
    std::fs::set_permissions(&artifacts[0], std::fs::Permissions::from_mode(0o666)).unwrap();
    let third = Host::new(config)
        .unwrap()
        .load_file(&skill("probe"))
        .unwrap();
    assert!(
        !third.from_cache(),
        "a group/world-writable artifact is ignored and recompiled"
    );
}

#[test]
fn a_corrupt_artifact_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig::default().with_cache_dir(dir.path());
    Host::new(config.clone())
        .unwrap()
        .load_file(&skill("probe"))
        .unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not a compiled component").unwrap();
    }
    let again = Host::new(config)
        .unwrap()
        .load_file(&skill("probe"))
        .unwrap();
    assert!(!again.from_cache());
}
