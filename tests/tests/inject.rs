//! Host-side credential injection through the real `agentsec-run`: a SOPS file written by
//! the real sops, the `http-probe` skill asking for a secret with `agentsec-inject`, and
//! an API stand-in on 127.0.0.1 that echoes what it receives.

use agentsec_tests::http_server::HttpServer;
use agentsec_tests::{Run, Scratch, assert_no_leak};
use serde_json::{Value, json};

const AGENT: &str = "ops/release-manager";
const TOKEN: &str = "ghp_InjectedToken7Qx93LmZ2Vw8Rt5Ky1Pa";
const HOOK: &str = "hook-SecretValue-4Hn8Wq2Zx6Ty0Ub3";

struct World {
    s: Scratch,
    server: HttpServer,
    secrets: std::path::PathBuf,
}

fn world() -> World {
    let server = HttpServer::start();
    let s = Scratch::new();
    let secrets = s.sops_encrypt(
        "work/secrets.yaml",
        &format!("communication:\n  github:\n    token: {TOKEN}\n  hook:\n    token: {HOOK}\n"),
    );
    let base = server.base();
    s.write(
        "work/policy.yaml",
        &format!(
            "access_control:
  secrets:
    communication.github.token:
      allowed_agents: [{AGENT}]
      access_level: read-write
      inject_only: true
      inject:
        - url: \"{base}/repos/**\"
          header: \"Authorization: Bearer {{secret}}\"
    communication.hook:
      allowed_agents: [{AGENT}]
      access_level: post
      inject:
        - url: \"{base}/hooks/**\"
          header: \"X-Hook-Token: {{secret}}\"
egress:
  - url: \"{base}/**\"
    methods: [GET, POST, PUT, DELETE]
    agents: [\"ops/*\"]
"
        ),
    );
    World { s, server, secrets }
}

fn run(w: &World, requests: Value, gets: Value) -> Run {
    let input = w.s.write(
        "work/input.json",
        &json!({ "requests": requests, "get": gets }).to_string(),
    );
    w.s.run_skill(
        "http-probe",
        AGENT,
        &w.secrets,
        &w.s.path("work/policy.yaml"),
        &["--input", &format!("@{}", input.display())],
    )
}

fn output(run: &Run) -> Value {
    assert_eq!(run.code, 0, "{run:?}");
    run.json()
}

fn inject_records(w: &World) -> Vec<Value> {
    w.s.audit_records()
        .into_iter()
        .filter(|r| r["access_type"] == "inject")
        .collect()
}

fn assert_nowhere(w: &World, r: &Run, value: &str) {
    assert_no_leak(value, r.stdout.as_bytes(), "the result");
    assert_no_leak(value, r.stderr.as_bytes(), "stderr");
    assert_no_leak(
        value,
        &std::fs::read(w.s.audit_log()).expect("the audit log"),
        "the audit log",
    );
}

#[test]
fn the_stand_in_gets_the_header_and_the_skill_never_sees_the_value() {
    let w = world();
    let r = run(
        &w,
        json!([{"method": "GET", "url": format!("{}/repos/o/r/echo", w.server.base()),
                "inject": "communication.github.token"}]),
        json!([]),
    );
    let out = output(&r);
    let resp = &out["responses"][0];
    assert_eq!(resp["status"], 200, "{out}");
    let got = w.server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        got[0].header("agentsec-inject"),
        None,
        "the request header is removed"
    );
    // The echo (body and x-echo-authorization header) came back redacted.
    let body = resp["body"].as_str().unwrap();
    assert!(body.contains("authorization: Bearer "), "{body}");
    assert!(
        resp["headers"].to_string().contains("x-echo-authorization"),
        "{resp}"
    );
    assert_nowhere(&w, &r, TOKEN);

    let records = inject_records(&w);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "allow");
    assert_eq!(records[0]["secret_path"], "communication.github.token");
    assert_eq!(records[0]["rule"], "communication.github.token");
    assert_eq!(records[0]["access_level"], "read-write");
    assert_eq!(
        records[0]["detail"],
        format!("GET http://127.0.0.1:{}", w.server.port)
    );
}

#[test]
fn get_secret_of_an_inject_only_or_post_secret_is_denied() {
    let w = world();
    let out = output(&run(
        &w,
        json!([]),
        json!(["communication.github.token", "communication.hook.token"]),
    ));
    for g in out["gets"].as_array().unwrap() {
        assert!(g["error"].as_str().unwrap().contains("denied"), "{out}");
    }
    assert!(
        out["gets"][0]["error"]
            .as_str()
            .unwrap()
            .contains("inject_only"),
        "{out}"
    );
    let reads: Vec<Value> =
        w.s.audit_records()
            .into_iter()
            .filter(|r| r["access_type"] == "read")
            .collect();
    assert_eq!(reads.len(), 2);
    assert!(reads.iter().all(|r| r["decision"] == "deny"));
}

#[test]
fn refused_injections_are_never_sent_and_are_on_the_record() {
    let w = world();
    let other = HttpServer::start();
    let base = w.server.base();
    let r = run(
        &w,
        json!([
            // `post` permits POST only.
            {"method": "GET", "url": format!("{base}/hooks/x"), "inject": "communication.hook.token"},
            // A destination outside the rule's inject url.
            {"method": "GET", "url": format!("{base}/orgs/x"), "inject": "communication.github.token"},
            // The skill sets the header the rule injects.
            {"method": "GET", "url": format!("{base}/repos/x"), "inject": "communication.github.token",
             "headers": [["Authorization", "Bearer mine"]]},
            // A path the agent is not granted.
            {"method": "GET", "url": format!("{base}/repos/x"), "inject": "databases.postgres.production.password"},
        ]),
        json!([]),
    );
    let out = output(&r);
    for (i, resp) in out["responses"].as_array().unwrap().iter().enumerate() {
        assert!(
            resp["error"]
                .as_str()
                .unwrap_or("")
                .contains("HttpRequestDenied"),
            "request {i}: {out}"
        );
    }
    assert!(w.server.received().is_empty(), "{:?}", w.server.received());
    assert!(other.received().is_empty());
    let records = inject_records(&w);
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(
        records.iter().all(|r| r["decision"] == "deny"),
        "{records:?}"
    );
    assert!(
        records[2]["detail"]
            .as_str()
            .unwrap()
            .contains("authorization"),
        "{records:?}"
    );
    assert_nowhere(&w, &r, TOKEN);
    assert_nowhere(&w, &r, HOOK);
}

/// A header a rule injects at a url is the host's alone there: the skill's own
/// `Authorization` (any case) or `X-Hook-Token` is refused without `agentsec-inject` too,
/// and for an agent the rule is not for; it is on the record and never sent. The same
/// header to a url no inject entry covers goes out as the skill wrote it.
#[test]
fn a_skill_may_not_set_a_header_the_policy_injects() {
    let w = world();
    let base = w.server.base();
    let requests = json!([
        {"method": "GET", "url": format!("{base}/repos/o/r/echo"),
         "headers": [["Authorization", "Bearer mine"]]},
        {"method": "GET", "url": format!("{base}/repos/o/r/echo"),
         "headers": [["AUTHORIZATION", "Bearer mine"]]},
        // With a body, refused before it is written: the skill still sees the code.
        {"method": "POST", "url": format!("{base}/hooks/x"), "body": "payload",
         "headers": [["x-hook-token", "mine"]]},
        // No inject entry covers /orgs: the skill's header is its own business there.
        {"method": "GET", "url": format!("{base}/orgs/o/echo"),
         "headers": [["Authorization", "Bearer mine"]]},
    ]);
    let r = run(&w, requests.clone(), json!([]));
    let out = output(&r);
    let responses = out["responses"].as_array().unwrap();
    for (i, resp) in responses[..3].iter().enumerate() {
        assert!(
            resp["error"]
                .as_str()
                .unwrap_or("")
                .contains("HttpRequestDenied"),
            "request {i}: {out}"
        );
    }
    assert_eq!(responses[3]["status"], 200, "{out}");
    let got = w.server.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].target, "/orgs/o/echo");
    assert_eq!(got[0].header("authorization"), Some("Bearer mine"));

    let records = inject_records(&w);
    assert_eq!(records.len(), 3, "{records:?}");
    for (record, (rule, header)) in records.iter().zip([
        ("communication.github.token", "authorization"),
        ("communication.github.token", "authorization"),
        ("communication.hook", "x-hook-token"),
    ]) {
        assert_eq!(record["decision"], "deny", "{record}");
        assert_eq!(record["rule"], rule, "{record}");
        assert_eq!(record["secret_path"], "", "{record}");
        let detail = record["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("the skill set the `{header}` header")),
            "{record}"
        );
        assert!(detail.contains("policy.yaml:"), "{record}");
    }
    assert!(records[2]["detail"].as_str().unwrap().starts_with("POST "));
    assert_nowhere(&w, &r, TOKEN);
    assert_nowhere(&w, &r, HOOK);

    // An agent the rules are not for (egress allows `ops/*`) is refused the same way.
    let input = w.s.write(
        "work/input.json",
        &json!({ "requests": requests, "get": [] }).to_string(),
    );
    let r = w.s.run_skill(
        "http-probe",
        "ops/other",
        &w.secrets,
        &w.s.path("work/policy.yaml"),
        &["--input", &format!("@{}", input.display())],
    );
    let out = output(&r);
    let responses = out["responses"].as_array().unwrap();
    assert!(
        responses[..3].iter().all(|resp| resp["error"]
            .as_str()
            .unwrap_or("")
            .contains("HttpRequestDenied")),
        "{out}"
    );
    assert_eq!(responses[3]["status"], 200, "{out}");
    assert_eq!(w.server.received().len(), 2);
    let records = inject_records(&w);
    assert_eq!(records.len(), 6, "{records:?}");
    assert!(
        records[3..]
            .iter()
            .all(|r| r["agent_id"] == "ops/other" && r["decision"] == "deny")
    );
}

/// A skill on another wasi:http client (`wstd`, which writes the body while it waits for
/// the response, and not through `agentsec_skill::http`) gets the same injection and the
/// same redacted echo; a request the host refuses reaches it as `HttpRequestDenied`,
/// body or not.
#[test]
fn a_skill_on_another_http_client_gets_the_injection_and_the_redacted_response() {
    let w = world();
    let base = w.server.base();
    let input = w.s.write(
        "work/input.json",
        &json!({ "requests": [
            {"method": "POST", "url": format!("{base}/repos/o/r/echo"), "body": "{\"tag\":\"v1\"}",
             "inject": "communication.github.token"},
            // `post` permits POST only: refused, with a body the client is still writing
            // (larger than wasi:http's buffer: the host reads it before it answers).
            {"method": "PUT", "url": format!("{base}/hooks/x"), "body_size": 256 * 1024,
             "inject": "communication.hook.token"},
            // Its own Authorization where the host injects one.
            {"method": "GET", "url": format!("{base}/repos/o/r/echo"),
             "headers": [["authorization", "Bearer mine"]]},
        ]})
        .to_string(),
    );
    let r = w.s.run_skill(
        "wstd-probe",
        AGENT,
        &w.secrets,
        &w.s.path("work/policy.yaml"),
        &["--input", &format!("@{}", input.display())],
    );
    let out = output(&r);
    let responses = out["responses"].as_array().unwrap();
    assert_eq!(responses[0]["status"], 200, "{out}");
    let got = w.server.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].body, b"{\"tag\":\"v1\"}");
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(got[0].header("agentsec-inject"), None);
    let body = responses[0]["body"].as_str().unwrap();
    assert!(
        body.contains("authorization: Bearer [REDACTED:communication.github.token]"),
        "{body}"
    );
    assert!(
        responses[0]["headers"]
            .to_string()
            .contains("x-echo-authorization"),
        "{out}"
    );
    for (i, resp) in responses[1..].iter().enumerate() {
        assert_eq!(
            resp["error"],
            "ErrorCode::HttpRequestDenied",
            "request {}: {out}",
            i + 1
        );
    }
    assert_nowhere(&w, &r, TOKEN);
    assert_nowhere(&w, &r, HOOK);
    let records = inject_records(&w);
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(records[0]["decision"], "allow");
    assert_eq!(
        records[0]["detail"],
        format!("POST http://127.0.0.1:{}", w.server.port)
    );
    assert!(
        records[1..].iter().all(|r| r["decision"] == "deny"),
        "{records:?}"
    );
}

/// Two secrets of one request that go into the same header refuse the request: the
/// second would silently replace the first.
#[test]
fn two_secrets_into_one_header_refuse_the_request() {
    let server = HttpServer::start();
    let s = Scratch::new();
    let secrets = s.sops_encrypt(
        "work/secrets.yaml",
        &format!("keys:\n  a: {TOKEN}\n  b: {HOOK}\n"),
    );
    let base = server.base();
    s.write(
        "work/policy.yaml",
        &format!(
            "access_control:
  secrets:
    keys:
      allowed_agents: [{AGENT}]
      access_level: read-write
      inject:
        - url: \"{base}/api/**\"
          header: \"X-Key: {{secret}}\"
egress:
  - url: \"{base}/**\"
    agents: [\"ops/*\"]
"
        ),
    );
    let input = s.write(
        "work/input.json",
        &json!({ "get": [], "requests": [
            {"method": "GET", "url": format!("{base}/api/echo"), "inject": "keys.a,keys.b"},
            {"method": "GET", "url": format!("{base}/api/echo"), "inject": "keys.b"},
        ]})
        .to_string(),
    );
    let r = s.run_skill(
        "http-probe",
        AGENT,
        &secrets,
        &s.path("work/policy.yaml"),
        &["--input", &format!("@{}", input.display())],
    );
    let out = output(&r);
    assert!(
        out["responses"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("HttpRequestDenied"),
        "{out}"
    );
    assert_eq!(out["responses"][1]["status"], 200, "{out}");
    let got = server.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].header("x-key"), Some(HOOK));
    let injects: Vec<Value> = s
        .audit_records()
        .into_iter()
        .filter(|r| r["access_type"] == "inject")
        .collect();
    assert_eq!(injects.len(), 3, "{injects:?}");
    assert_eq!(injects[1]["decision"], "deny", "{injects:?}");
    assert_eq!(injects[1]["secret_path"], "keys.b");
    assert!(
        injects[1]["detail"]
            .as_str()
            .unwrap()
            .contains("another secret of this request is injected into the `x-key` header"),
        "{injects:?}"
    );
    for value in [TOKEN, HOOK] {
        assert_no_leak(value, r.stdout.as_bytes(), "the result");
        assert_no_leak(value, r.stderr.as_bytes(), "stderr");
    }
}

#[test]
fn a_redirect_is_not_followed_with_the_credential() {
    let w = world();
    let other = HttpServer::start();
    let to = format!("{}/repos/x/echo", other.base());
    let r = run(
        &w,
        json!([
            {"method": "GET", "url": format!("{}/repos/redirect?to={to}", w.server.base()),
             "inject": "communication.github.token"},
            // Following it by hand, with the credential, is refused: another destination.
            {"method": "GET", "url": to, "inject": "communication.github.token"},
        ]),
        json!([]),
    );
    let out = output(&r);
    assert_eq!(out["responses"][0]["status"], 302, "{out}");
    assert!(
        out["responses"][1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("HttpRequestDenied"),
        "{out}"
    );
    assert!(other.received().is_empty(), "{:?}", other.received());
    assert_nowhere(&w, &r, TOKEN);
}

#[test]
fn a_request_without_agentsec_inject_goes_out_without_the_credential() {
    let w = world();
    let r = run(
        &w,
        json!([{"method": "POST", "url": format!("{}/hooks/echo", w.server.base()), "body": "x"}]),
        json!([]),
    );
    let out = output(&r);
    assert_eq!(out["responses"][0]["status"], 200, "{out}");
    let got = w.server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-hook-token"), None);
    assert!(inject_records(&w).is_empty());

    // With it, the POST carries the webhook token.
    let r = run(
        &w,
        json!([{"method": "POST", "url": format!("{}/hooks/echo", w.server.base()), "body": "x",
                "inject": "communication.hook.token"}]),
        json!([]),
    );
    assert_eq!(output(&r)["responses"][0]["status"], 200);
    assert_eq!(w.server.received()[1].header("x-hook-token"), Some(HOOK));
    assert_nowhere(&w, &r, HOOK);
}

#[test]
fn an_as_url_secret_is_the_whole_url_and_is_never_shown() {
    let server = HttpServer::start();
    let elsewhere = HttpServer::start();
    let s = Scratch::new();
    let base = server.base();
    let hook_path = "/api/webhooks/4242/DiscordHookTok-9Xq2Lw7Vz5Pm1/echo";
    let hook = format!("{base}{hook_path}");
    let outside = format!(
        "{}/api/webhooks/1/OutsideHookTok-3Ty8Ka6Qw/echo",
        elsewhere.base()
    );
    let secrets = s.sops_encrypt(
        "work/secrets.yaml",
        &format!(
            "communication:\n  discord:\n    webhook: \"{hook}\"\n  other:\n    webhook: \"{outside}\"\n"
        ),
    );
    s.write(
        "work/policy.yaml",
        &format!(
            "access_control:
  secrets:
    communication.*.webhook:
      allowed_agents: [{AGENT}]
      access_level: post
      inject:
        - as: url
egress:
  - url: \"{base}/api/webhooks/**\"
    methods: [GET, POST]
    agents: [\"ops/*\"]
"
        ),
    );
    let input = s.write(
        "work/input.json",
        &json!({ "get": [], "requests": [
            // The skill's own url does not matter: the secret replaces it.
            {"method": "POST", "url": "https://placeholder.invalid/", "body": "{\"content\":\"deployed\"}",
             "inject": "communication.discord.webhook"},
            // `post` permits POST only.
            {"method": "GET", "url": "https://placeholder.invalid/", "inject": "communication.discord.webhook"},
            // The secret's url must pass the egress rules like any request.
            {"method": "POST", "url": "https://placeholder.invalid/", "body": "x",
             "inject": "communication.other.webhook"},
        ]})
        .to_string(),
    );
    let r = s.run_skill(
        "http-probe",
        AGENT,
        &secrets,
        &s.path("work/policy.yaml"),
        &["--input", &format!("@{}", input.display())],
    );
    let out = output(&r);
    let responses = out["responses"].as_array().unwrap();
    assert_eq!(responses[0]["status"], 200, "{out}");
    // The stand-in got the post at the secret's path, with the skill's body.
    let got = server.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].target, hook_path);
    assert_eq!(got[0].body, b"{\"content\":\"deployed\"}");
    assert_eq!(
        got[0].header("host"),
        Some(format!("127.0.0.1:{}", server.port).as_str())
    );
    assert_eq!(got[0].header("agentsec-inject"), None);
    // The echo of the request line came back redacted.
    let body = responses[0]["body"].as_str().unwrap();
    assert!(body.starts_with("POST "), "{body}");
    assert!(!body.contains("DiscordHookTok"), "{body}");
    assert!(
        responses[1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("HttpRequestDenied"),
        "{out}"
    );
    // Refused before its body is written: the skill still gets the refusal's code.
    assert!(
        responses[2]["error"]
            .as_str()
            .unwrap_or("")
            .contains("HttpRequestDenied"),
        "{out}"
    );
    assert!(elsewhere.received().is_empty());
    for value in [
        hook.as_str(),
        hook_path,
        outside.as_str(),
        "DiscordHookTok",
        "OutsideHookTok",
    ] {
        assert_no_leak(value, r.stdout.as_bytes(), "the result");
        assert_no_leak(value, r.stderr.as_bytes(), "stderr");
        assert_no_leak(
            value,
            &std::fs::read(s.audit_log()).expect("the audit log"),
            "the audit log",
        );
    }
    // The records name scheme://host:port of the secret's url, never more.
    let records = s.audit_records();
    let egress: Vec<&Value> = records
        .iter()
        .filter(|r| r["access_type"] == "egress")
        .collect();
    assert_eq!(egress[0]["decision"], "allow", "{records:?}");
    assert_eq!(
        egress[0]["detail"],
        format!("POST http://127.0.0.1:{}", server.port)
    );
    let denied_outside = egress
        .iter()
        .find(|r| {
            r["detail"]
                .as_str()
                .unwrap_or("")
                .starts_with(&format!("POST http://127.0.0.1:{}", elsewhere.port))
        })
        .expect("the request to the url outside the egress rules is on the record");
    assert_eq!(denied_outside["decision"], "deny");
    let injects: Vec<&Value> = records
        .iter()
        .filter(|r| r["access_type"] == "inject")
        .collect();
    assert_eq!(injects[0]["decision"], "allow", "{injects:?}");
    assert_eq!(injects[0]["secret_path"], "communication.discord.webhook");
    assert_eq!(injects[0]["access_level"], "post");
    assert!(
        injects.iter().any(|r| r["decision"] == "deny"
            && r["secret_path"] == "communication.discord.webhook"),
        "the GET is refused on the record: {injects:?}"
    );
}
