//! Both versions of the contract through the real `agentsec-run`: a skill built against
//! `agentsec:skill@0.2.0` (`http-probe-v0-2`, world `skill-with-http`) reads a secret and
//! has the host inject another into a request to a stand-in on 127.0.0.1, and a 0.1.0
//! skill (`probe`) still runs on the same host. Which version each component imports is
//! read from the component itself, so neither test can pass on the other's component.

use agentsec_host::wasmtime::component::Component;
use agentsec_host::wasmtime::{Config, Engine};
use agentsec_tests::http_server::HttpServer;
use agentsec_tests::{Scratch, assert_no_leak, skill};
use serde_json::json;

const AGENT: &str = "ops/release-manager";
const TOKEN: &str = "ghp_V02InjectedToken5Wq81LmZ2Vw8Rt5Ky";
const REGION: &str = "eu-north-7-secretregion";

/// The names of the instances `name`'s component imports.
fn imports(name: &str) -> Vec<String> {
    let engine = Engine::new(&Config::new()).expect("engine");
    let bytes = std::fs::read(skill(name)).expect("component");
    let component = Component::new(&engine, &bytes).expect("compiles");
    component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// A policy granting `deploy.region` (read) and injecting the GitHub token into
/// requests to `base`, with egress to `base` when `egress` is set.
fn policy(base: &str, egress: bool) -> String {
    let mut policy = format!(
        "access_control:
  secrets:
    deploy.region:
      allowed_agents: [{AGENT}]
      access_level: readonly
    communication.github.token:
      allowed_agents: [{AGENT}]
      access_level: read-write
      inject_only: true
      inject:
        - url: \"{base}/repos/**\"
          header: \"Authorization: Bearer {{secret}}\"
"
    );
    if egress {
        policy.push_str(&format!(
            "egress:\n  - url: \"{base}/**\"\n    methods: [POST]\n    agents: [\"ops/*\"]\n"
        ));
    }
    policy
}

fn secrets(s: &Scratch) -> std::path::PathBuf {
    s.sops_encrypt(
        "work/secrets.yaml",
        &format!("deploy:\n  region: {REGION}\ncommunication:\n  github:\n    token: {TOKEN}\n"),
    )
}

#[test]
fn a_0_2_0_component_imports_the_0_2_0_world_and_a_0_1_0_one_the_0_1_0_world() {
    let v2 = imports("http-probe-v0-2");
    assert!(
        v2.iter().any(|i| i == "agentsec:skill/secrets@0.2.0"),
        "{v2:?}"
    );
    assert!(
        v2.iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@0.2.")),
        "{v2:?}"
    );
    assert!(!v2.iter().any(|i| i.contains("@0.1.0")), "{v2:?}");
    let v1 = imports("probe");
    assert!(
        v1.iter().any(|i| i == "agentsec:skill/secrets@0.1.0"),
        "{v1:?}"
    );
    assert!(
        !v1.iter()
            .any(|i| i.starts_with("agentsec:skill/secrets@0.2.") || i.starts_with("wasi:http/")),
        "{v1:?}"
    );
}

#[test]
fn a_0_2_0_skill_reads_a_secret_and_makes_an_injected_request() {
    let server = HttpServer::start();
    let s = Scratch::new();
    let secrets = secrets(&s);
    let policy = s.write("work/policy.yaml", &policy(&server.base(), true));
    let input = json!({
        "get": ["deploy.region", "communication.github.token"],
        "requests": [{"method": "POST", "url": format!("{}/repos/o/r/echo", server.base()),
                      "inject": "communication.github.token", "body": "{}"}],
    });
    let r = s.run_skill(
        "http-probe-v0-2",
        AGENT,
        &secrets,
        &policy,
        &["--input", &input.to_string()],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.json();
    assert_eq!(out["gets"][0], json!({"len": REGION.len()}), "{out}");
    let denied = out["gets"][1]["error"]
        .as_str()
        .expect("the inject-only read is refused");
    assert!(denied.starts_with("denied: "), "{denied}");
    assert_eq!(out["responses"][0]["status"], 200, "{out}");
    // Names only: the inject-only token is listed (it is granted), never read.
    assert_eq!(
        out["listed"],
        json!(["deploy.region", "communication.github.token"]),
        "{out}"
    );
    let got = server.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].method, "POST");
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    for value in [TOKEN, REGION] {
        assert_no_leak(value, r.stdout.as_bytes(), "the result");
        assert_no_leak(value, r.stderr.as_bytes(), "stderr");
    }
    let records = s.audit_records();
    assert!(
        records.iter().any(|r| r["access_type"] == "read"
            && r["secret_path"] == "deploy.region"
            && r["decision"] == "allow"),
        "{records:?}"
    );
    assert!(
        records.iter().any(|r| r["access_type"] == "inject"
            && r["secret_path"] == "communication.github.token"
            && r["decision"] == "allow"),
        "{records:?}"
    );
}

#[test]
fn a_0_2_0_skill_that_sends_http_is_refused_before_it_starts_without_egress() {
    let server = HttpServer::start();
    let s = Scratch::new();
    let secrets = secrets(&s);
    let policy = s.write("work/policy.yaml", &policy(&server.base(), false));
    let r = s.run_skill(
        "http-probe-v0-2",
        AGENT,
        &secrets,
        &policy,
        &["--input", r#"{"get": ["deploy.region"]}"#],
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("imports wasi:http")
            && r.stderr
                .contains("grants agent `ops/release-manager` no egress")
            && r.stderr.contains("egress:"),
        "{r:?}"
    );
    assert_eq!(r.stdout, "", "{r:?}");
    assert!(server.received().is_empty());
    // Nothing was read: the refusal came before the skill started.
    let records = s.audit_records();
    assert!(
        !records.iter().any(|r| r["access_type"] == "read"),
        "{records:?}"
    );
}

#[test]
fn a_0_1_0_skill_still_runs_on_the_same_host() {
    let s = Scratch::new();
    let secrets = secrets(&s);
    let policy = s.write("work/policy.yaml", &policy("http://127.0.0.1:9", false));
    let r = s.run_skill(
        "probe",
        AGENT,
        &secrets,
        &policy,
        &[
            "--input",
            &json!({"ops": [{"get": "deploy.region", "expect": REGION}]}).to_string(),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.json(),
        json!([{"ok": true, "len": REGION.len(), "matches": true}]),
        "{r:?}"
    );
    assert_no_leak(REGION, r.stdout.as_bytes(), "the result");
    let records = s.audit_records();
    assert!(
        records.iter().any(|r| r["access_type"] == "read"
            && r["secret_path"] == "deploy.region"
            && r["decision"] == "allow"),
        "{records:?}"
    );
}
