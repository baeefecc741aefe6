//! Replays the fuzz seed corpus (fuzz/corpus/<target>/) through the very bodies the fuzz
//! targets in fuzz/fuzz_targets/ run (`agentsec_sops::fuzz`, `agentsec_policy::fuzz`), on
//! stable and without libfuzzer, so that every input that once crashed stays fixed. A body
//! fails by panicking: on hostile input, or on a broken assertion (a secret path's canonical
//! form must parse back to the same path).

use std::path::Path;

use agentsec_tests::root;

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
    replay("sops_parse", agentsec_sops::fuzz::sops_parse);
}

#[test]
fn secret_path_corpus() {
    replay("secret_path", agentsec_policy::fuzz::secret_path);
}

#[test]
fn policy_parse_corpus() {
    replay("policy_parse", agentsec_policy::fuzz::policy_parse);
}
