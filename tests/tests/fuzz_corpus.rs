//! Replays the fuzz seed corpus (fuzz/corpus/<target>/) through the same calls as the fuzz
//! targets in fuzz/fuzz_targets/, on stable and without libfuzzer, so that every input that
//! once crashed stays fixed. Only "no panic" is checked, as in the targets.

use std::path::Path;

use agentsec_sops::{DecryptOptions, Format, Identities, decrypt_bytes, parse_plaintext};
use agentsec_tests::root;

/// Same body as fuzz/fuzz_targets/sops_parse.rs.
fn sops_parse(data: &[u8]) {
    let ids = Identities::new();
    for format in [
        Format::Yaml,
        Format::Json,
        Format::Dotenv,
        Format::Ini,
        Format::Binary,
    ] {
        let _ = decrypt_bytes(data, format, "fuzz", &ids, DecryptOptions::default());
        let _ = parse_plaintext(data, format, "fuzz");
    }
}

/// Same body as fuzz/fuzz_targets/policy_parse.rs.
fn policy_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = agentsec_policy::Policy::from_sources(&[("fuzz.yaml", text)]);
    }
}

/// Same body as fuzz/fuzz_targets/secret_path.rs: what parses has one canonical form that
/// parses back to the same path, within the length limit, with one spelling per index.
fn secret_path(data: &[u8]) {
    use agentsec_policy::{MAX_PATH_LEN, PathPattern, SecretPath, list_index};
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

fn replay(target: &str, f: fn(&[u8])) {
    let dir = root().join("fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        run_one(&path, &data, f);
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", dir.display());
}

fn run_one(path: &Path, data: &[u8], f: fn(&[u8])) {
    let caught = std::panic::catch_unwind(|| f(data));
    assert!(caught.is_ok(), "{} panics", path.display());
}

#[test]
fn sops_parse_corpus() {
    replay("sops_parse", sops_parse);
}

#[test]
fn secret_path_corpus() {
    replay("secret_path", secret_path);
}

#[test]
fn policy_parse_corpus() {
    replay("policy_parse", policy_parse);
}
