//! Decrypting and MAC-verifying a SOPS file with 1,000 values (YAML and JSON), as every
//! `agentsec-run` start-up does once.
//!
//! Run: `cargo bench -p agentsec-benches --bench sops_decrypt`. The file is generated at start
//! with agentsec's own encrypt to the demo recipient (demo/age-key.DEMO-ONLY.txt): 100
//! services × 10 string values each. `benches/sops_compare.sh` times the same shape through
//! the CLIs, agentsec against the real sops.

#![expect(
    clippy::unwrap_used,
    reason = "benchmark: a failure should stop it loudly"
)]

use std::path::PathBuf;

use agentsec_sops::{
    DecryptOptions, EncryptConfig, Format, Identities, SopsFile, SopsStore, decrypt_bytes,
    encrypt_plaintext,
};
use criterion::{Criterion, Throughput};

/// Values in the benchmarked file.
const VALUES: usize = 1_000;

fn demo_key() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("demo/age-key.DEMO-ONLY.txt")
}

fn demo_recipient() -> String {
    let text = std::fs::read_to_string(demo_key()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .trim()
        .to_owned()
}

/// 100 services with 10 values each, as YAML.
fn plaintext() -> String {
    let mut s = String::new();
    for i in 0..VALUES / 10 {
        s.push_str(&format!("service{i:03}:\n"));
        for j in 0..10 {
            s.push_str(&format!("    key{j}: value-{i:03}-{j}-0123456789abcdef\n"));
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    let ids = {
        let mut ids = Identities::new();
        ids.add_file(&demo_key()).unwrap();
        ids
    };
    let cfg = EncryptConfig::for_recipients(vec![demo_recipient()]);
    let plain = plaintext();
    let yaml = encrypt_plaintext(plain.as_bytes(), Format::Yaml, "bench.yaml", &cfg).unwrap();
    let json_plain = SopsFile::decrypt(
        &yaml,
        Format::Yaml,
        "bench.yaml",
        &ids,
        DecryptOptions::default(),
    )
    .unwrap()
    .emit(Format::Json, Default::default())
    .unwrap();
    let json = encrypt_plaintext(&json_plain, Format::Json, "bench.json", &cfg).unwrap();

    let mut g = c.benchmark_group("sops_decrypt_1000_values");
    g.throughput(Throughput::Elements(VALUES as u64));
    for (name, bytes, format) in [("yaml", &yaml, Format::Yaml), ("json", &json, Format::Json)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let tree =
                    decrypt_bytes(bytes, format, "bench", &ids, DecryptOptions::default()).unwrap();
                assert_eq!(tree.leaves().count(), VALUES);
                tree
            })
        });
    }
    // What agentsec-run does: open the store (decrypt + MAC, keep only
    // ciphertexts), then decrypt one value on request.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.yaml");
    std::fs::write(&file, &yaml).unwrap();
    g.bench_function("SopsStore::open yaml", |b| {
        b.iter(|| SopsStore::open(&file, &ids).unwrap())
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
