//! The example skills `github-release` and `discord-notify` through the real
//! `agentsec-run`, against stand-ins of api.github.com and a Discord webhook on
//! 127.0.0.1 (tests/src/http_server.rs): the stand-in receives the credential (the
//! header, the webhook URL), while the skill's result, stdout, stderr and the audit log
//! never hold it; without the grant nothing is sent.

use agentsec_tests::http_server::HttpServer;
use agentsec_tests::{Run, Scratch, assert_no_leak};
use serde_json::{Value, json};

const AGENT: &str = "ops/release-manager";
const TOKEN: &str = "ghp_ExampleReleaseToken4Lq8Zx2Wv6Ty0Ub3Nm";
/// The secret part of the webhook URL (the whole URL is the secret).
const HOOK_TOKEN: &str = "Wh00kT0ken-9fQ2xL7pRz4Kd8Vn3Bs6Hy1Jc5";

struct World {
    s: Scratch,
    server: HttpServer,
    secrets: std::path::PathBuf,
}

impl World {
    fn webhook(&self) -> String {
        format!("{}/api/webhooks/1234567/{HOOK_TOKEN}", self.server.base())
    }
}

/// `level` is the webhook's access level, `token_agents` who the token is granted to.
fn world(level: &str, token_agents: &str) -> World {
    let server = HttpServer::start();
    let s = Scratch::new();
    let base = server.base();
    let secrets = s.sops_encrypt(
        "work/secrets.yaml",
        &format!(
            "communication:\n  github:\n    token: {TOKEN}\n  discord:\n    releases_webhook: {base}/api/webhooks/1234567/{HOOK_TOKEN}\n"
        ),
    );
    s.write(
        "work/policy.yaml",
        &format!(
            "access_control:
  secrets:
    communication.github.token:
      allowed_agents: [{token_agents}]
      access_level: read-write
      inject_only: true
      inject:
        - url: \"{base}/repos/**\"
          header: \"Authorization: Bearer {{secret}}\"
    communication.discord.releases_webhook:
      allowed_agents: [\"ops/*\"]
      access_level: {level}
      inject:
        - as: url
egress:
  - url: \"{base}/repos/*/*/releases\"
    methods: [POST]
    agents: [\"ops/*\"]
    skills: [github-release]
  - url: \"{base}/api/webhooks/**\"
    methods: [POST]
    agents: [\"ops/*\"]
    skills: [discord-notify]
"
        ),
    );
    World { s, server, secrets }
}

fn run(w: &World, skill: &str, input: &Value) -> Run {
    w.s.run_skill(
        skill,
        AGENT,
        &w.secrets,
        &w.s.path("work/policy.yaml"),
        &["--input", &input.to_string()],
    )
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

fn inject_records(w: &World) -> Vec<Value> {
    w.s.audit_records()
        .into_iter()
        .filter(|r| r["access_type"] == "inject")
        .collect()
}

#[test]
fn github_release_creates_the_release_with_a_token_it_never_holds() {
    let w = world("post", AGENT);
    let r = run(
        &w,
        "github-release",
        &json!({"repo": "acme/api", "tag": "v1.4.0", "changes": ["Faster deploys"],
                "api": w.server.base()}),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.json(),
        json!({"created": {"repo": "acme/api", "id": 1, "tag": "v1.4.0",
                           "url": "https://github.com/acme/api/releases/tag/v1.4.0"}}),
        "{r:?}"
    );
    let got = w.server.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].target, "/repos/acme/api/releases");
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(got[0].header("agentsec-inject"), None);
    let sent: Value = serde_json::from_slice(&got[0].body).expect("a JSON body");
    assert_eq!(sent["tag_name"], "v1.4.0");
    assert_eq!(sent["body"], "## v1.4.0\n\n- Faster deploys\n");
    assert_nowhere(&w, &r, TOKEN);
    let records = inject_records(&w);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "allow");
    assert_eq!(records[0]["secret_path"], "communication.github.token");
    assert_eq!(records[0]["skill"]["name"], "github-release");
}

#[test]
fn github_release_sends_nothing_for_an_agent_the_token_is_not_granted_to() {
    let w = world("post", "ops/someone-else");
    let r = run(
        &w,
        "github-release",
        &json!({"repo": "acme/api", "tag": "v1.4.0", "api": w.server.base()}),
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("HttpRequestDenied"), "{r:?}");
    assert!(
        w.server.received().is_empty(),
        "nothing is sent without the token"
    );
    let records = inject_records(&w);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "deny");
    assert_nowhere(&w, &r, TOKEN);
}

#[test]
fn github_release_refuses_a_repo_that_would_change_the_path() {
    let w = world("post", AGENT);
    let r = run(
        &w,
        "github-release",
        &json!({"repo": "acme/../../orgs/x", "tag": "v1", "api": w.server.base()}),
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("\"repo\" must be owner/name"), "{r:?}");
    assert!(w.server.received().is_empty());
}

#[test]
fn discord_notify_posts_to_a_webhook_url_it_never_sees() {
    let w = world("post", AGENT);
    let r = run(
        &w,
        "discord-notify",
        &json!({"content": "acme/api v1.4.0 is out"}),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json(), json!({"posted": true, "status": 204}), "{r:?}");
    let got = w.server.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].target, format!("/api/webhooks/1234567/{HOOK_TOKEN}"));
    let sent: Value = serde_json::from_slice(&got[0].body).expect("a JSON body");
    assert_eq!(sent["content"], "acme/api v1.4.0 is out");
    for value in [w.webhook().as_str(), HOOK_TOKEN] {
        assert_nowhere(&w, &r, value);
    }
    let records = inject_records(&w);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "allow");
    assert_eq!(records[0]["access_level"], "post");
}

#[test]
fn discord_notify_sends_nothing_when_the_webhook_is_readonly() {
    let w = world("readonly", AGENT);
    let r = run(&w, "discord-notify", &json!({"content": "hello"}));
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("HttpRequestDenied"), "{r:?}");
    assert!(w.server.received().is_empty());
    let records = inject_records(&w);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "deny");
    for value in [w.webhook().as_str(), HOOK_TOKEN] {
        assert_nowhere(&w, &r, value);
    }
}

#[test]
fn discord_notify_refuses_an_empty_message() {
    let w = world("post", AGENT);
    let r = run(&w, "discord-notify", &json!({"content": "  "}));
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("input needs \"content\""), "{r:?}");
    assert!(w.server.received().is_empty());
}
