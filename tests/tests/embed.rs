//! The host as a library: a run against the in-memory store (no SOPS file, no age key),
//! the secrets interface in a host's own store type, and per-run cancellation that leaves
//! the process able to run the next skill.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentsec_audit::AuditLog;
use agentsec_broker::{Broker, Caller, CallerLimits, CancelToken};
use agentsec_host::redact::Redactor;
use agentsec_host::secrets::SecretsCtx;
use agentsec_host::wasmtime::component::{Component, Linker, ResourceTable};
use agentsec_host::wasmtime::{Config, Engine, Store};
use agentsec_host::{HostConfig, Limits, RunEnd, RunRequest, Runtime};
use agentsec_policy::{AgentId, Policy, SecretPath, SkillDigest, SkillName, SkillRef};
use agentsec_secrets::{MemoryStore, SecretValue};
use agentsec_tests::skill;
use serde_json::{Value, json};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const PASSWORD: &str = "Memory-Store-Pw-9d2Kq7Lx";
const HOOK: &str = "https://hooks.example/T0/B0/Memory-Hook-4sZ8";

const POLICY: &str = "\
access_control:
  secrets:
    db:
      allowed_agents: [ops/*]
    hooks:
      allowed_agents: [ops/*]
      access_level: post
    region:
      allowed_agents: [ops/*]
";

/// A broker over a `MemoryStore`: no file is read and no identity exists.
fn broker(dir: &std::path::Path) -> Arc<Broker> {
    let mut store = MemoryStore::new();
    let path = |p| SecretPath::parse(p).expect("path");
    store
        .insert(
            path("db.password"),
            SecretValue::copy_from_slice(PASSWORD.as_bytes()),
            true,
        )
        .expect("inserts")
        .insert(
            path("hooks.deploy"),
            SecretValue::copy_from_slice(HOOK.as_bytes()),
            true,
        )
        .expect("inserts")
        .insert(
            path("region"),
            SecretValue::copy_from_slice(b"eu-west-1"),
            false,
        )
        .expect("inserts");
    let policy = Policy::from_sources(&[("memory.yaml", POLICY)]).expect("policy");
    let audit = AuditLog::open(dir.join("audit.log")).expect("audit log");
    Arc::new(Broker::new(
        Arc::new(policy),
        Arc::new(store),
        Arc::new(Mutex::new(audit)),
    ))
}

fn agent() -> AgentId {
    AgentId::parse("ops/release").expect("agent")
}

fn records(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("audit.log"))
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn a_skill_runs_against_the_memory_store_with_no_sops_file_and_no_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let runtime = Runtime::new(HostConfig::default().without_cache()).expect("runtime");
    let probe = runtime.load_file(&skill("probe")).expect("probe");
    let ops = json!({"ops": [
        {"get": "db.password", "expect": PASSWORD},
        {"get": "hooks.deploy"},
        {"get": "region", "expect": "eu-west-1"},
        {"list": ""},
    ]});
    let report = runtime.run(
        &probe,
        RunRequest::new(
            agent(),
            ops.to_string(),
            Arc::clone(&broker),
            "run-1".into(),
        ),
    );
    let RunEnd::Ok(result) = report.end else {
        panic!("{:?}", report.end);
    };
    let out: Value = serde_json::from_str(&result).expect("json result");
    assert_eq!(
        out[0],
        json!({"ok": true, "len": PASSWORD.len(), "matches": true})
    );
    // `post`: the host may use it, the skill may not read it.
    assert_eq!(out[1]["err"], "denied", "{out}");
    let message = out[1]["message"].as_str().expect("message");
    assert!(
        message.contains("may only be used by the host"),
        "{message}"
    );
    assert_eq!(out[2]["matches"], true);
    assert_eq!(
        out[3]["names"],
        json!(["db.password", "hooks.deploy", "region"])
    );
    assert_eq!(
        (
            report.stats.calls,
            report.stats.released,
            report.stats.denied
        ),
        (4, 2, 1)
    );

    // A released secret is redacted from the result; a public value is not.
    let echo = json!({"ops": [{"result_raw": "db.password"}]});
    let report = runtime.run(
        &probe,
        RunRequest::new(
            agent(),
            echo.to_string(),
            Arc::clone(&broker),
            "run-2".into(),
        ),
    );
    let RunEnd::Ok(result) = report.end else {
        panic!("{:?}", report.end);
    };
    assert_eq!(result, r#"{"v":"[REDACTED:db.password]"}"#);
    let echo = json!({"ops": [{"result_raw": "region"}]});
    let report = runtime.run(
        &probe,
        RunRequest::new(
            agent(),
            echo.to_string(),
            Arc::clone(&broker),
            "run-3".into(),
        ),
    );
    assert!(
        matches!(&report.end, RunEnd::Ok(r) if r == r#"{"v":"eu-west-1"}"#),
        "{:?}",
        report.end
    );

    // Every request is on record, never a value; the chain verifies.
    let log = records(dir.path());
    let kinds: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|r| {
            (
                r["secret_path"].as_str().unwrap_or_default(),
                r["access_type"].as_str().unwrap_or_default(),
                r["decision"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds[..4],
        [
            ("db.password", "read", "allow"),
            ("hooks.deploy", "read", "deny"),
            ("region", "read", "allow"),
            ("", "list", "allow"),
        ]
    );
    assert_eq!(log[0]["access_level"], "readonly");
    assert_eq!(log[1]["rule"], "hooks");
    let text = std::fs::read_to_string(dir.path().join("audit.log")).expect("log");
    assert!(!text.contains(PASSWORD) && !text.contains(HOOK));
    agentsec_audit::verify(&[dir.path().join("audit.log")]).expect("chain verifies");
}

/// A host's own store type: WASI of its own, the secrets interface through its view.
struct MyState {
    wasi: WasiCtx,
    table: ResourceTable,
    secrets: SecretsCtx,
}

impl WasiView for MyState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[test]
fn the_secrets_interface_plugs_into_a_host_s_own_store_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let engine = Engine::new(&Config::new()).expect("engine");
    let mut linker = Linker::<MyState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
    agentsec_host::secrets::add_to_linker(&mut linker, |state: &mut MyState| &mut state.secrets)
        .expect("secrets interface");
    let bytes = std::fs::read(skill("probe")).expect("probe component");
    let component = Component::new(&engine, &bytes).expect("compiles");
    let pre =
        agentsec_host::bindings::SkillPre::new(linker.instantiate_pre(&component).expect("links"))
            .expect("the skill world");
    let skill_ref = SkillRef::new(
        SkillName::parse("probe").expect("name"),
        SkillDigest::from_bytes([0; 32]),
    );
    let run = agentsec_audit::RunContext::new("ops/release", "probe", "00".repeat(32), "own");
    let caller = Caller::new(
        agent(),
        skill_ref,
        run,
        CallerLimits::new(10, 1024),
        Redactor::default(),
    );
    let state = MyState {
        wasi: WasiCtx::builder().build(),
        table: ResourceTable::new(),
        secrets: SecretsCtx::new(Arc::clone(&broker), caller),
    };
    let mut store = Store::new(&engine, state);
    let input = json!({"ops": [{"get": "db.password", "expect": PASSWORD}]}).to_string();
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("executor");
    let result = executor.block_on(async {
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiates");
        instance.call_run(&mut store, &input).await.expect("runs")
    });
    let out: Value = serde_json::from_str(&result.expect("ok result")).expect("json");
    assert_eq!(out[0]["matches"], true, "{out}");
    assert_eq!(store.data().secrets.caller().stats().released, 1);
    assert_eq!(records(dir.path())[0]["access_type"], "read");
}

#[test]
fn a_run_is_cancelled_by_its_token_and_the_runtime_runs_the_next_skill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let runtime = Runtime::new(HostConfig::default().without_cache()).expect("runtime");
    let probe = runtime.load_file(&skill("probe")).expect("probe");
    let mut limits = Limits::default();
    limits.timeout = Duration::from_secs(600);
    // Waiting in a WASI sleep, and spinning in wasm code: both end when the token trips.
    for ops in [json!([{"sleep_ms": 600_000}]), json!([{"spin": true}])] {
        let cancel = CancelToken::new();
        let tripper = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            tripper.cancel();
        });
        let started = Instant::now();
        let report = runtime.run(
            &probe,
            RunRequest::new(
                agent(),
                json!({"ops": ops}).to_string(),
                Arc::clone(&broker),
                "c".into(),
            )
            .limits(limits)
            .cancel(cancel),
        );
        assert!(
            matches!(report.end, RunEnd::Cancelled),
            "{ops}: {:?}",
            report.end
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
    }
    // The process goes on: the next run of the same runtime succeeds.
    let ops = json!({"ops": [{"get": "db.password", "expect": PASSWORD}]});
    let report = runtime.run(
        &probe,
        RunRequest::new(
            agent(),
            ops.to_string(),
            Arc::clone(&broker),
            "after".into(),
        ),
    );
    assert!(matches!(report.end, RunEnd::Ok(_)), "{:?}", report.end);
    let events: Vec<String> = records(dir.path())
        .iter()
        .filter(|r| r["access_type"] == "run")
        .map(|r| r["detail"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events.iter().all(|d| d.starts_with("cancelled")),
        "{events:?}"
    );
}

/// `Runtime::run` called from inside an async runtime (a server's request handler) does
/// not panic: the run waits on a thread of its own.
#[test]
fn a_run_started_from_inside_an_async_runtime_completes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let runtime = Runtime::new(HostConfig::default().without_cache()).expect("runtime");
    let probe = runtime.load_file(&skill("probe")).expect("probe");
    let ops = json!({"ops": [{"get": "db.password", "expect": PASSWORD}]});
    let server = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("executor");
    let report = server.block_on(async {
        runtime.run(
            &probe,
            RunRequest::new(
                agent(),
                ops.to_string(),
                Arc::clone(&broker),
                "in-async".into(),
            ),
        )
    });
    assert!(matches!(report.end, RunEnd::Ok(_)), "{:?}", report.end);
    drop(server);
    drop(runtime);
}
