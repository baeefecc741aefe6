//! The shared bodies of the fuzz targets (fuzz/fuzz_targets/) and of the corpus replay test
//! (tests/tests/fuzz_corpus.rs), so that the two cannot drift apart. Not an API: hidden from
//! the docs and free to change with the targets.

use crate::{MAX_PATH_LEN, PathPattern, Policy, SecretPath, list_index};

/// Arbitrary text as a policy file: parsing and validation must not panic.
#[doc(hidden)]
pub fn policy_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Policy::from_sources(&[("fuzz.yaml", text)]);
    }
}

/// Arbitrary text as a secret path or rule key: what a guest passes to `get-secret` and
/// `list-secrets` on every call, and what keys policy rules. Parsing must not panic, and what
/// parses has one canonical form that parses back to the same path, within the length limit,
/// with one spelling per list index; a pattern's canonical form parses back to the same
/// pattern.
#[doc(hidden)]
pub fn secret_path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for path in [SecretPath::parse(text), SecretPath::parse_prefix(text)]
        .into_iter()
        .flatten()
    {
        let canonical = path.to_string();
        assert!(canonical.len() <= MAX_PATH_LEN);
        assert_eq!(SecretPath::parse_prefix(&canonical).as_ref(), Ok(&path));
        for seg in path.segments() {
            if let Some(i) = list_index(seg) {
                assert_eq!(i.to_string(), seg, "one spelling per index");
            }
        }
    }
    if let Ok(pattern) = PathPattern::parse(text) {
        assert_eq!(PathPattern::parse(&pattern.to_string()), Ok(pattern));
    }
}
