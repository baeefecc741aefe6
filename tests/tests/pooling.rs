//! The pooling instance allocator (`HostConfig::pooling`): slots are reused
//! across runs, a run still gets its secret, and the per-run memory limit
//! still stops a skill.

use std::sync::{Arc, Mutex};

use agentsec_audit::AuditLog;
use agentsec_broker::Broker;
use agentsec_host::{HostConfig, LimitKind, Limits, LoadedSkill, RunEnd, RunRequest, Runtime};
use agentsec_policy::{AgentId, Policy};
use agentsec_secrets::SecretStore;
use agentsec_sops::{Identities, SopsStore};
use agentsec_tests::{demo_key, root, skill};

use agentsec_tests::probe::PROD_PASSWORD;

fn request(
    store: &Arc<dyn SecretStore>,
    policy: &Arc<Policy>,
    audit: &Arc<Mutex<AuditLog>>,
    input: serde_json::Value,
    limits: Limits,
) -> RunRequest {
    let broker = Broker::new(Arc::clone(policy), Arc::clone(store), Arc::clone(audit));
    RunRequest::new(
        AgentId::parse("ops/release-manager").expect("agent id"),
        input.to_string(),
        Arc::new(broker),
        agentsec_audit::new_run_id().expect("run id"),
    )
    .limits(limits)
}

#[test]
fn pooled_slots_are_reused_and_limits_still_hold() {
    let host = Runtime::new(HostConfig::default().without_cache().pooling(2)).unwrap();
    let probe: LoadedSkill = host.load_file(&skill("probe")).unwrap();
    let policy =
        Arc::new(Policy::load(&[root().join("tests/testdata/policies/e2e.yaml")]).unwrap());
    let mut ids = Identities::new();
    ids.add_file(&demo_key()).unwrap();
    let store: Arc<dyn SecretStore> =
        Arc::new(SopsStore::open(&root().join("demo/secrets.yaml"), &ids).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let audit = Arc::new(Mutex::new(
        AuditLog::open(dir.path().join("audit.log")).unwrap(),
    ));

    // More runs than slots: each run's instance goes back to the pool.
    let read = serde_json::json!({ "ops": [
        {"get": "databases.postgres.production.password", "expect": PROD_PASSWORD},
    ]});
    for _ in 0..5 {
        let report = host.run(
            &probe,
            request(&store, &policy, &audit, read.clone(), Limits::default()),
        );
        assert!(matches!(report.end, RunEnd::Ok(_)), "{:?}", report.end);
        assert_eq!(report.stats.released, 1);
    }

    let mut small = Limits::default();
    small.max_memory = 16 << 20;
    let bomb = serde_json::json!({ "ops": [{"alloc_mb": 64}] });
    let report = host.run(&probe, request(&store, &policy, &audit, bomb, small));
    assert!(
        matches!(report.end, RunEnd::Limit(LimitKind::Memory)),
        "{:?}",
        report.end
    );

    // The slot the stopped run used is usable again.
    let report = host.run(
        &probe,
        request(&store, &policy, &audit, read, Limits::default()),
    );
    assert!(matches!(report.end, RunEnd::Ok(_)), "{:?}", report.end);
    let log = dir.path().join("audit.log");
    // Six reads, and the memory limit's run-level event (recorded by the host).
    assert_eq!(agentsec_audit::verify(&[&log]).unwrap().entries, 7);
}
