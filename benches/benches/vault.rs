//! A Vault-backed `get-secret` next to a SOPS-backed one (issue 17): the same probe
//! skill, the same dotted path, in one process, against a local OpenBao dev server
//! started here. Per call: a run of N calls minus an empty run; the first read of a run:
//! a run of one call minus an empty run, with the cache off (one HTTP round trip).
//!
//! Run: `cargo bench -p agentsec-benches --bench vault`. Prints a markdown table.
#![expect(clippy::unwrap_used, reason = "a benchmark: any failure aborts it")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentsec_audit::AuditLog;
use agentsec_broker::Broker;
use agentsec_host::{HostConfig, LoadedSkill, Runtime};
use agentsec_policy::Policy;
use agentsec_secrets::SecretStore;
use agentsec_sops::{Identities, SopsStore};
use agentsec_vault::{VaultConfig, VaultStore};

const PASSWORD: &str = "databases.postgres.production.password";

fn run_once(runtime: &Runtime, skill: &LoadedSkill, broker: &Arc<Broker>, input: &str) -> Duration {
    agentsec_benches::run_probe(runtime, skill, broker, input)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Per call of `calls` get-secrets in one run, minus an empty run (median of 15).
fn per_call(runtime: &Runtime, skill: &LoadedSkill, broker: &Arc<Broker>, calls: u32) -> Duration {
    let input = format!(r#"{{"ops":[{{"get_many":{calls},"path":"{PASSWORD}"}}]}}"#);
    let empty = r#"{"ops":[]}"#;
    median(
        (0..15)
            .map(|_| {
                let with = run_once(runtime, skill, broker, &input);
                let without = run_once(runtime, skill, broker, empty);
                with.saturating_sub(without) / calls
            })
            .collect(),
    )
}

fn main() {
    let root = agentsec_tests::root();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let runtime = Runtime::new(HostConfig::default().without_cache()).unwrap();
    let mut skill = runtime.load_file(&agentsec_tests::skill("probe")).unwrap();
    skill.vouch_name();
    let policy = Arc::new(Policy::load(&[root.join("tests/testdata/policies/e2e.yaml")]).unwrap());
    let audit = || {
        Arc::new(Mutex::new(
            AuditLog::open(shm.path().join("audit.log")).unwrap(),
        ))
    };

    let mut ids = Identities::new();
    ids.add_file(&agentsec_tests::demo_key()).unwrap();
    let sops: Arc<dyn SecretStore> =
        Arc::new(SopsStore::open(&root.join("demo/secrets.yaml"), &ids).unwrap());

    let bench_vault = agentsec_benches::BenchVault::start(shm.path());
    let vault = |ttl: &str| -> Arc<dyn SecretStore> {
        let cfg = bench_vault.config(ttl);
        Arc::new(VaultStore::open(VaultConfig::load(&cfg).unwrap(), None).unwrap())
    };

    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |what: &str, d: Duration| {
        rows.push((what.to_owned(), format!("{:.2} µs", d.as_secs_f64() * 1e6)));
    };
    let cases: [(&str, Arc<dyn SecretStore>, u32); 3] = [
        ("SOPS file (decrypted at open), per call", sops, 2000),
        (
            "Vault, cached (`cache_ttl: 60s`), per call",
            vault("60s"),
            2000,
        ),
        (
            "Vault, not cached (`cache_ttl: 0s`): one HTTP round trip per call",
            vault("0s"),
            200,
        ),
    ];
    for (what, store, calls) in cases {
        let broker = Arc::new(Broker::new(Arc::clone(&policy), store, audit()));
        // Warm: the cache, the connection pool, the login.
        run_once(
            &runtime,
            &skill,
            &broker,
            &format!(r#"{{"ops":[{{"get":"{PASSWORD}"}}]}}"#),
        );
        row(what, per_call(&runtime, &skill, &broker, calls));
        if calls == 200 {
            row(
                "Vault, the first read of a run (cache off: a run of one call minus an empty run)",
                per_call(&runtime, &skill, &broker, 1),
            );
        }
    }
    println!("| path | time |\n|---|---|");
    for (what, value) in rows {
        println!("| {what} | {value} |");
    }
}
