//! Outgoing HTTP from skills (wasi:http) through the real `agentsec-run`: the policy's
//! `egress:` rules, the private-address check, the limits and the audit records, against
//! a real HTTP server on 127.0.0.1 that each test starts and stops.

use agentsec_tests::http_server::HttpServer;
use agentsec_tests::probe::probe_demo;
use agentsec_tests::{Run, Scratch, root};
use serde_json::{Value, json};

const AGENT: &str = "ops/release-manager";

/// A policy with the demo's database rule and `egress` (YAML list items, indented).
fn policy(s: &Scratch, egress: &str) -> std::path::PathBuf {
    s.write(
        "work/policy.yaml",
        &format!(
            "access_control:\n  secrets:\n    databases.postgres.production:\n      allowed_agents: [{AGENT}]\n{egress}"
        ),
    )
}

fn run(s: &Scratch, agent: &str, requests: Value, extra: &[&str]) -> Run {
    let input = s.write(
        "work/input.json",
        &json!({ "requests": requests }).to_string(),
    );
    let input_arg = format!("@{}", input.display());
    let mut args = vec!["--input", input_arg.as_str()];
    args.extend_from_slice(extra);
    s.run_skill(
        "http-probe",
        agent,
        &root().join("demo/secrets.yaml"),
        &s.path("work/policy.yaml"),
        &args,
    )
}

fn responses(run: &Run) -> Vec<Value> {
    assert_eq!(run.code, 0, "{run:?}");
    run.json()["responses"]
        .as_array()
        .cloned()
        .expect("a responses list")
}

fn egress_records(s: &Scratch) -> Vec<Value> {
    s.audit_records()
        .into_iter()
        .filter(|r| r["access_type"] == "egress")
        .collect()
}

#[test]
fn an_allowed_request_reaches_the_server_and_is_on_the_record() {
    let server = HttpServer::start();
    let s = Scratch::new();
    policy(
        &s,
        &format!(
            "egress:\n  - url: \"{}/api/**\"\n    methods: [GET, POST]\n    agents: [\"ops/*\"]\n",
            server.base()
        ),
    );
    let out = responses(&run(
        &s,
        AGENT,
        json!([
            {"method": "GET", "url": format!("{}/api/echo?x=1", server.base())},
            {"method": "POST", "url": format!("{}/api/echo", server.base()), "body": "hello"},
        ]),
        &[],
    ));
    assert_eq!(out[0]["status"], 200, "{out:?}");
    assert!(
        out[0]["body"]
            .as_str()
            .unwrap()
            .starts_with("GET /api/echo?x=1"),
        "{out:?}"
    );
    assert!(
        out[1]["body"].as_str().unwrap().ends_with("hello"),
        "{out:?}"
    );
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].body, b"hello");

    let records = egress_records(&s);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["decision"], "allow");
    assert_eq!(records[0]["agent_id"], AGENT);
    assert_eq!(records[0]["secret_path"], "");
    let detail = records[0]["detail"].as_str().unwrap();
    assert_eq!(detail, format!("GET http://127.0.0.1:{}", server.port));
    assert!(
        records[0]["rule"].as_str().unwrap().contains("/api/**"),
        "{records:?}"
    );
    // The path and query are not recorded (a skill chooses them).
    assert!(
        !std::fs::read_to_string(s.audit_log())
            .unwrap()
            .contains("x=1")
    );
}

#[test]
fn requests_outside_every_rule_are_refused_before_any_connection() {
    let server = HttpServer::start();
    let s = Scratch::new();
    policy(
        &s,
        &format!(
            "egress:\n  - url: \"{}/api/**\"\n    agents: [\"ops/*\"]\n",
            server.base()
        ),
    );
    let other = HttpServer::start();
    let out = responses(&run(
        &s,
        AGENT,
        json!([
            // A path outside the rule's glob.
            {"method": "GET", "url": format!("{}/admin", server.base())},
            // A method the rule does not list (default: GET, HEAD).
            {"method": "DELETE", "url": format!("{}/api/x", server.base())},
            // Another port of the same host.
            {"method": "GET", "url": format!("{}/api/x", other.base())},
            // A path a server would resolve outside the glob.
            {"method": "GET", "url": format!("{}/api/../admin", server.base())},
            {"method": "GET", "url": format!("{}/api/%2e%2e/admin", server.base())},
            // Refused with a body the skill writes after handing the request over: the
            // skill gets the refusal's code, not a closed stream.
            {"method": "POST", "url": format!("{}/admin", server.base()), "body": "hello"},
        ]),
        &[],
    ));
    for (i, expected) in [
        "HttpRequestDenied",
        "HttpRequestDenied",
        "HttpRequestDenied",
        "HttpRequestUriInvalid",
        "HttpRequestUriInvalid",
        "HttpRequestDenied",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            out[i]["error"].as_str().unwrap_or("").contains(expected),
            "request {i}: {out:?}"
        );
    }
    assert!(server.received().is_empty(), "{:?}", server.received());
    assert!(other.received().is_empty());
    let records = egress_records(&s);
    assert_eq!(records.len(), 6, "{records:?}");
    assert!(
        records.iter().all(|r| r["decision"] == "deny"),
        "{records:?}"
    );
    assert!(
        records[1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("DELETE http://127.0.0.1:"),
        "{records:?}"
    );
}

#[test]
fn a_name_that_resolves_to_loopback_is_refused_unless_the_rule_allows_private() {
    let server = HttpServer::start();
    let s = Scratch::new();
    let url = format!("http://localhost:{}/echo", server.port);
    policy(
        &s,
        &format!(
            "egress:\n  - url: \"http://localhost:{}/**\"\n    agents: [\"ops/*\"]\n",
            server.port
        ),
    );
    let out = responses(&run(&s, AGENT, json!([{"method": "GET", "url": url}]), &[]));
    assert!(
        out[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("DestinationIpProhibited"),
        "{out:?}"
    );
    assert!(server.received().is_empty());
    let records = egress_records(&s);
    assert_eq!(records.last().unwrap()["decision"], "deny", "{records:?}");
    assert!(
        records.last().unwrap()["detail"]
            .as_str()
            .unwrap()
            .contains("resolves to 127.0.0.1"),
        "{records:?}"
    );

    let s = Scratch::new();
    policy(
        &s,
        &format!(
            "egress:\n  - url: \"http://localhost:{}/**\"\n    agents: [\"ops/*\"]\n    allow_private: true\n",
            server.port
        ),
    );
    let out = responses(&run(&s, AGENT, json!([{"method": "GET", "url": url}]), &[]));
    assert_eq!(out[0]["status"], 200, "{out:?}");
    assert_eq!(server.received().len(), 1);
}

#[test]
fn without_an_egress_grant_a_skill_importing_wasi_http_does_not_start() {
    let server = HttpServer::start();
    let s = Scratch::new();
    policy(
        &s,
        &format!(
            "egress:\n  - url: \"{}/**\"\n    agents: [ops/someone-else]\n",
            server.base()
        ),
    );
    let r = run(
        &s,
        AGENT,
        json!([{"method": "GET", "url": format!("{}/x", server.base())}]),
        &[],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("imports wasi:http"), "{r:?}");
    assert!(r.stderr.contains("egress"), "{r:?}");
    assert!(server.received().is_empty());
    let last = s.audit_records().pop().unwrap();
    assert_eq!(last["access_type"], "run", "{last}");
}

#[test]
fn a_skill_without_http_runs_whether_or_not_egress_is_granted() {
    let s = Scratch::new();
    let p = policy(
        &s,
        "egress:\n  - url: \"https://api.example.com/**\"\n    agents: [\"ops/*\"]\n",
    );
    let _ = p;
    // probe_demo uses the e2e policy; run probe against this one instead.
    let input = s.write("work/in.json", &json!({"ops": [{"env": true}]}).to_string());
    let r = s.run_skill(
        "probe",
        AGENT,
        &root().join("demo/secrets.yaml"),
        &s.path("work/policy.yaml"),
        &["--input", &format!("@{}", input.display())],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = probe_demo(&s, AGENT, json!([{"env": true}]), &[]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn the_request_count_and_body_limits_hold() {
    let server = HttpServer::start();
    let s = Scratch::new();
    policy(
        &s,
        &format!(
            "egress:\n  - url: \"{}/**\"\n    agents: [\"ops/*\"]\n",
            server.base()
        ),
    );
    let limit = agentsec_host::limits::DEFAULT_MAX_HTTP_REQUESTS as usize;
    // Past the limit every request is refused; only the first refusal is recorded (a
    // skill looping on refused requests must not fill the audit log).
    let requests: Vec<Value> = (0..limit + 20)
        .map(|_| json!({"method": "GET", "url": format!("{}/ok", server.base())}))
        .collect();
    let out = responses(&run(&s, AGENT, Value::Array(requests), &[]));
    assert!(out[..limit].iter().all(|o| o["status"] == 200));
    assert!(
        out[limit..].iter().all(|o| o["error"]
            .as_str()
            .unwrap_or("")
            .contains("ConnectionLimitReached")),
        "{:?}",
        &out[limit..]
    );
    assert_eq!(server.received().len(), limit);
    let records = egress_records(&s);
    assert_eq!(records.len(), limit + 1, "one record past the limit");
    let last = records.last().unwrap();
    assert!(
        last["detail"]
            .as_str()
            .unwrap()
            .contains("refused without a record"),
        "{last}"
    );

    let big = agentsec_host::limits::DEFAULT_MAX_HTTP_RESPONSE_BODY + 1;
    let out = responses(&run(
        &s,
        AGENT,
        json!([
            {"method": "GET", "url": format!("{}/big?n={big}", server.base())},
            {"method": "GET", "url": format!("{}/big?n=1000", server.base())},
        ]),
        &[],
    ));
    assert!(
        out[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("HttpResponseBodySize"),
        "{:?}",
        out[0]
    );
    assert_eq!(out[1]["body"].as_str().unwrap().len(), 1000);

    // A request body over the limit is not sent; the skill gets the code, not a closed
    // stream (the host stops reading it).
    let received = server.received().len();
    let big = agentsec_host::limits::DEFAULT_MAX_HTTP_REQUEST_BODY + 1;
    let out = responses(&run(
        &s,
        AGENT,
        json!([{"method": "GET", "url": format!("{}/ok", server.base()), "body_size": big}]),
        &[],
    ));
    assert!(
        out[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("HttpRequestBodySize"),
        "{:?}",
        out[0]
    );
    assert_eq!(server.received().len(), received);
}

#[test]
fn a_request_that_hangs_ends_with_the_run_deadline() {
    let server = HttpServer::start();
    let s = Scratch::new();
    policy(
        &s,
        &format!(
            "egress:\n  - url: \"{}/**\"\n    agents: [\"ops/*\"]\n",
            server.base()
        ),
    );
    // Built before the clock starts (the first call builds the skill and the CLI).
    agentsec_tests::skill("http-probe");
    agentsec_tests::bin("agentsec-run");
    let started = std::time::Instant::now();
    let r = run(
        &s,
        AGENT,
        json!([{"method": "GET", "url": format!("{}/hang", server.base())}]),
        &["--timeout", "1s"],
    );
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(8),
        "took {took:?}: {r:?}"
    );
    assert_eq!(server.received().len(), 1);
    // Either the request timed out and the skill returned, or the deadline ended the run:
    // it did not wait for the server.
    assert!(
        r.stdout.contains("ConnectionTimeout") || r.code == 4,
        "{r:?}"
    );
}
