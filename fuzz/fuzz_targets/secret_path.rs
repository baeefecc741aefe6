//! Arbitrary text as a secret path or rule key: what a guest passes to `get-secret` and
//! `list-secrets` on every call, and what keys policy rules. Parsing must not panic, and what
//! parses must have one canonical form that parses back to the same path.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
});

/// The same body as `secret_path` in tests/tests/fuzz_corpus.rs.
fn check(text: &str) {
    use agentsec_policy::{MAX_PATH_LEN, PathPattern, SecretPath, list_index};
    for parsed in [SecretPath::parse(text), SecretPath::parse_prefix(text)] {
        if let Ok(path) = parsed {
            let canonical = path.to_string();
            assert!(canonical.len() <= MAX_PATH_LEN);
            assert_eq!(SecretPath::parse_prefix(&canonical).as_ref(), Ok(&path));
            for seg in path.segments() {
                if let Some(i) = list_index(seg) {
                    assert_eq!(i.to_string(), seg, "one spelling per index");
                }
            }
        }
    }
    if let Ok(pattern) = PathPattern::parse(text) {
        assert_eq!(PathPattern::parse(&pattern.to_string()), Ok(pattern));
    }
}
