//! The host paths an agent waits on: instantiate + run of a small skill, and
//! the `get-secret` round trip from inside a skill (host call + policy +
//! audit append, with the audit log fsynced on disk or on tmpfs).
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentsec_audit::AuditLog;
use agentsec_broker::Broker;
use agentsec_host::{HostConfig, Limits, LoadedSkill, RunEnd, RunRequest, Runtime};
use agentsec_policy::{AgentId, Policy};
use agentsec_secrets::SecretStore;
use agentsec_sops::{Identities, SopsStore};
use criterion::{Criterion, criterion_group, criterion_main};

struct Fixture {
    host: Runtime,
    skill: LoadedSkill,
    policy: Arc<Policy>,
    store: Arc<dyn SecretStore>,
}

fn fixture(config: HostConfig) -> Fixture {
    let root = agentsec_tests::root();
    let host = Runtime::new(config).expect("host");
    let skill = host
        .load_file(&agentsec_tests::skill("probe"))
        .expect("probe skill");
    let policy = Policy::load(&[root.join("tests/testdata/policies/e2e.yaml")]).expect("policy");
    let mut ids = Identities::new();
    ids.add_file(&agentsec_tests::demo_key()).expect("demo key");
    let store = SopsStore::open(&root.join("demo/secrets.yaml"), &ids).expect("demo secrets");
    Fixture {
        host,
        skill,
        policy: Arc::new(policy),
        store: Arc::new(store),
    }
}

fn run(f: &Fixture, audit: &Arc<Mutex<AuditLog>>, input: &str) -> Duration {
    let mut limits = Limits::default();
    limits.max_secret_calls = u32::MAX;
    limits.timeout = Duration::from_secs(600);
    let broker = Broker::new(
        Arc::clone(&f.policy),
        Arc::clone(&f.store),
        Arc::clone(audit),
    );
    let request = RunRequest::new(
        AgentId::parse("ops/release-manager").expect("agent"),
        input,
        Arc::new(broker),
        "bench".into(),
    )
    .limits(limits);
    let start = Instant::now();
    let report = f.host.run(&f.skill, request);
    let took = start.elapsed();
    assert!(matches!(report.end, RunEnd::Ok(_)), "{:?}", report.end);
    took
}

fn audit_in(dir: &Path) -> Arc<Mutex<AuditLog>> {
    Arc::new(Mutex::new(
        AuditLog::open(dir.join("audit.log")).expect("audit log"),
    ))
}

fn benches(c: &mut Criterion) {
    let f = fixture(HostConfig::default().without_cache());
    let disk = tempfile::tempdir_in(agentsec_tests::root().join("target")).expect("tempdir");
    let shm = tempfile::tempdir_in("/dev/shm").expect("/dev/shm");
    let empty = r#"{"ops":[]}"#;

    let audit = audit_in(disk.path());
    c.bench_function("instantiate + run (no secrets)", |b| {
        b.iter(|| run(&f, &audit, empty))
    });
    let pooled = fixture(HostConfig::default().without_cache().pooling(4));
    c.bench_function("instantiate + run (no secrets, pooling allocator)", |b| {
        b.iter(|| run(&pooled, &audit, empty))
    });
    drop(pooled);
    // What a process pays before its first run: engine, WASI linker, epoch
    // thread (and, pooled, reserving the slots).
    let mut group = c.benchmark_group("Runtime::new");
    group.sample_size(20);
    group.bench_function("on-demand allocator", |b| {
        b.iter(|| Runtime::new(HostConfig::default().without_cache()).expect("host"))
    });
    group.bench_function("pooling allocator, 4 runs", |b| {
        b.iter(|| Runtime::new(HostConfig::default().without_cache().pooling(4)).expect("host"))
    });
    group.finish();

    for (name, dir) in [
        ("audit fsynced on disk", disk.path()),
        ("audit on tmpfs", shm.path()),
    ] {
        let audit = audit_in(dir);
        let mut group = c.benchmark_group("get-secret round trip");
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(5));
        group.bench_function(name, |b| {
            // One run making `iters` calls, minus an empty run: the per-call cost.
            b.iter_custom(|iters| {
                let input = format!(
                    r#"{{"ops":[{{"get_many":{iters},"path":"databases.postgres.production.password"}}]}}"#
                );
                let with_calls = run(&f, &audit, &input);
                let without = run(&f, &audit, empty);
                with_calls.saturating_sub(without)
            });
        });
        group.finish();
    }

    // Denied calls skip the store; their cost is host call + policy + audit.
    let audit = audit_in(shm.path());
    let mut group = c.benchmark_group("get-secret denied");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("audit on tmpfs", |b| {
        b.iter_custom(|iters| {
            let input = format!(
                r#"{{"ops":[{{"get_many":{iters},"path":"cloud.aws.secret_access_key"}}]}}"#
            );
            run(&f, &audit, &input).saturating_sub(run(&f, &audit, empty))
        });
    });
    group.finish();
}

criterion_group!(host, benches);
criterion_main!(host);
