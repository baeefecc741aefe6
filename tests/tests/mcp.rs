//! `agentsec mcp` through real MCP clients: the Python `mcp` 2.3.0 client (`ClientSession`
//! with the 2025-11-25 handshake, and `Client` in auto mode), the npm
//! `@modelcontextprotocol/sdk` client over stdio and over streamable HTTP with a bearer
//! token, and a raw client that captures every byte of the protocol stream.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentsec_tests::probe::{PROD_PASSWORD, PROD_PASSWORD_PATH};
use agentsec_tests::{Scratch, assert_no_leak, bin, demo_key, root, skill};
use serde_json::{Value, json};

const AGENT: &str = "ops/operator";

/// The policy: root (the test) is `ops/operator`; it may read the production database,
/// and the GitHub token through `probe` and MCP only (so `needy`, which declares the
/// token, is not offered), and may see the GitHub token itself (`reveal_to_agent`).
fn policy(reveal_github: bool, tokens: &[&str]) -> String {
    let tokens = if tokens.is_empty() {
        String::new()
    } else {
        format!(", tokens_sha256: [{}]", tokens.join(", "))
    };
    format!(
        "agents:\n  {AGENT}: {{ unix_users: [root]{tokens} }}\n\
         access_control:\n  secrets:\n    databases.postgres.production:\n      allowed_agents: [{AGENT}]\n\
         \x20   communication.github.token:\n      allowed_agents: [{AGENT}]\n      skills: [mcp, probe]\n      reveal_to_agent: {reveal_github}\n"
    )
}

/// A scratch world with the demo secrets and key, the policy, and a skills directory of
/// `probe`, `db-healthcheck` and `needy` (whose needs are not all granted).
fn world(policy_text: &str) -> Scratch {
    let s = Scratch::new();
    s.write("work/policy.yaml", policy_text);
    std::fs::copy(
        root().join("demo/secrets.yaml"),
        s.path("work/secrets.yaml"),
    )
    .unwrap();
    let skills = s.path("work/skills");
    std::fs::create_dir_all(&skills).unwrap();
    for name in ["probe", "db-healthcheck", "needy"] {
        let from = skill(name);
        std::fs::copy(&from, skills.join(from.file_name().unwrap())).unwrap();
    }
    s
}

/// `agentsec mcp` arguments for an in-process server in `s`.
fn mcp_args(s: &Scratch) -> Vec<String> {
    [
        "mcp",
        "--skills",
        &s.path("work/skills").display().to_string(),
        "--policy",
        &s.path("work/policy.yaml").display().to_string(),
        "--secrets",
        &s.path("work/secrets.yaml").display().to_string(),
        "--audit-log",
        &s.path("work/audit.log").display().to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

fn env(s: &Scratch) -> Value {
    json!({
        "SOPS_AGE_KEY_FILE": demo_key(),
        "HOME": s.path("home"),
        "TMPDIR": s.path("tmp"),
        "PATH": std::env::var("PATH").unwrap_or_default(),
    })
}

fn records(s: &Scratch) -> Vec<Value> {
    std::fs::read_to_string(s.path("work/audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn github_token() -> String {
    let out = Command::new(bin("agentsec"))
        .args([
            "secrets",
            "decrypt",
            "--extract",
            r#"["communication"]["github"]["token"]"#,
        ])
        .arg(root().join("demo/secrets.yaml"))
        .env("SOPS_AGE_KEY_FILE", demo_key())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// Runs a client driver (`python` or `node`) with `plan` on stdin; its JSON report.
fn drive(program: &Path, script: &str, plan: &Value) -> Value {
    let mut child = Command::new(program)
        .arg(root().join("tests/mcp-clients").join(script))
        .current_dir(root().join("tests/mcp-clients"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run tests/run.sh to install the MCP clients)",
                program.display()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plan.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script}: {}\nstdout {stdout}\nstderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{script}: {e}: {stdout}"))
}

fn python() -> PathBuf {
    root().join(".venv-mcp/bin/python")
}

fn node() -> PathBuf {
    PathBuf::from("node")
}

fn tool_names(report: &Value) -> Vec<String> {
    let mut names: Vec<String> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn get_password() -> Value {
    json!({"ops": [{"get": PROD_PASSWORD_PATH, "expect": PROD_PASSWORD}]})
}

/// The calls every client makes, and what each must come to.
fn calls() -> Value {
    json!([
        {"name": "probe", "arguments": get_password()},
        {"name": "probe", "arguments": {"ops": [{"get": "communication.slack.bot_token"}]}},
        {"name": "needy", "arguments": {}},
        {"name": "db-healthcheck", "arguments": {"env": "production"}},
        {"name": "secrets_list", "arguments": {}},
        {"name": "secrets_get", "arguments": {"path": PROD_PASSWORD_PATH}},
        {"name": "secrets_get", "arguments": {"path": "communication.github.token"}},
    ])
}

fn check_report(report: &Value, reveal: bool) {
    // needy's needs are not granted: it is not offered (but calling it is an answer).
    assert_eq!(
        tool_names(report),
        ["db-healthcheck", "probe", "secrets_get", "secrets_list"],
        "{report:#}"
    );
    let probe = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "probe")
        .unwrap();
    assert_eq!(
        probe["description"],
        "Runs the operations in its input (\"ops\") and reports each result."
    );
    assert_eq!(probe["input_schema"]["properties"]["ops"]["type"], "array");
    let r = report["results"].as_array().unwrap();
    // A granted read: the result, never the value.
    assert_eq!(r[0]["is_error"], false, "{report:#}");
    let first: Value = serde_json::from_str(r[0]["text"][0].as_str().unwrap()).unwrap();
    assert_eq!(first[0]["matches"], true, "{report:#}");
    // A denied read inside the skill: the skill's own answer.
    assert!(
        r[1]["text"][0].as_str().unwrap().contains("denied"),
        "{report:#}"
    );
    // A skill whose needs are not granted: a tool error with agentsec-run's message.
    assert_eq!(r[2]["is_error"], true, "{report:#}");
    let needy = r[2]["text"][0].as_str().unwrap();
    assert!(needy.starts_with("agentsec-run: "), "{needy}");
    assert!(
        needy.contains("communication.github") || needy.contains("needs"),
        "{needy}"
    );
    // JSON object results are also structured content.
    assert_eq!(r[3]["is_error"], false, "{report:#}");
    assert!(r[3]["structured"].is_object(), "{report:#}");
    // Names only.
    let names = &r[4]["structured"]["names"];
    assert!(
        names
            .as_array()
            .unwrap()
            .contains(&json!(PROD_PASSWORD_PATH)),
        "{report:#}"
    );
    assert!(
        !names.to_string().contains("slack"),
        "a name the agent may not read was listed: {names}"
    );
    // A value to the model needs reveal_to_agent.
    assert_eq!(r[5]["is_error"], true, "{report:#}");
    assert!(
        r[5]["text"][0]
            .as_str()
            .unwrap()
            .contains("reveal_to_agent: true"),
        "{report:#}"
    );
    if reveal {
        assert_eq!(r[6]["is_error"], false, "{report:#}");
        assert_eq!(r[6]["text"][0], github_token());
    } else {
        assert_eq!(r[6]["is_error"], true, "{report:#}");
    }
    assert_no_leak(
        PROD_PASSWORD,
        report.to_string().as_bytes(),
        "the client's view",
    );
}

fn check_records(s: &Scratch) {
    let records = records(s);
    let read = records
        .iter()
        .find(|r| {
            r["access_type"] == "read"
                && r["secret_path"] == PROD_PASSWORD_PATH
                && r["decision"] == "allow"
        })
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert_eq!(read["agent_id"], AGENT);
    assert_eq!(read["skill"]["name"], "probe", "{read:#}");
    assert!(
        records
            .iter()
            .any(|r| r["access_type"] == "list" && r["skill"]["name"] == "mcp")
    );
    let reveals: Vec<&Value> = records
        .iter()
        .filter(|r| r["access_type"] == "reveal")
        .collect();
    assert!(
        reveals
            .iter()
            .any(|r| r["decision"] == "deny" && r["secret_path"] == PROD_PASSWORD_PATH),
        "{reveals:#?}"
    );
    let log = std::fs::read_to_string(s.path("work/audit.log")).unwrap();
    assert_no_leak(PROD_PASSWORD, log.as_bytes(), "the audit log");
    assert_no_leak(&github_token(), log.as_bytes(), "the audit log");
}

#[test]
fn python_client_lists_calls_is_denied_and_sees_only_revealed_values() {
    for (mode, reveal) in [("session", false), ("auto", true)] {
        let s = world(&policy(reveal, &[]));
        let mut command = vec![bin("agentsec").display().to_string()];
        command.extend(mcp_args(&s));
        command.extend(["--agent".to_owned(), AGENT.to_owned()]);
        let report = drive(
            &python(),
            "client.py",
            &json!({"mode": mode, "command": command, "env": env(&s), "calls": calls()}),
        );
        if mode == "session" {
            assert_eq!(report["protocol"], "2025-11-25", "{report:#}");
        } else {
            assert_eq!(report["protocol"], "2026-07-28", "{report:#}");
        }
        check_report(&report, reveal);
        check_records(&s);
        if reveal {
            let records = records(&s);
            let allowed = records
                .iter()
                .find(|r| r["access_type"] == "reveal" && r["decision"] == "allow")
                .unwrap_or_else(|| panic!("{records:#?}"));
            assert_eq!(allowed["secret_path"], "communication.github.token");
            assert_eq!(allowed["agent_id"], AGENT);
        }
    }
}

/// `agentsec token new`: the token on stdout, its SHA-256 in the policy line on stderr.
fn new_token() -> (String, String) {
    let out = Command::new(bin("agentsec"))
        .args(["token", "new", "--agent", AGENT])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("agentsec_"), "{token}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let hash = stderr
        .split('"')
        .find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("{stderr}"))
        .to_owned();
    assert!(!stderr.contains(&token), "the token is printed once");
    (token, hash)
}

/// A child killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn npm_client_over_stdio_and_over_http_with_a_token() {
    let (token, hash) = new_token();
    let s = world(&policy(true, &[&format!("\"{hash}\"")]));
    // stdio.
    let mut command = vec![bin("agentsec").display().to_string()];
    command.extend(mcp_args(&s));
    command.extend(["--agent".to_owned(), AGENT.to_owned()]);
    let report = drive(
        &node(),
        "client.mjs",
        &json!({"transport": "stdio", "command": command, "env": env(&s), "calls": calls()}),
    );
    check_report(&report, true);

    // Streamable HTTP on loopback, the agent proven by the token.
    let port = free_port();
    let server = Killed(
        s.command(&bin("agentsec"))
            .args(mcp_args(&s))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("SOPS_AGE_KEY_FILE", demo_key())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/mcp");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "agentsec mcp --listen did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = drive(
        &node(),
        "client.mjs",
        &json!({"transport": "http", "url": url, "token": token, "calls": calls()}),
    );
    check_report(&report, true);
    // A wrong token and no token: refused (401), and on the record.
    for bad in [Some("agentsec_wrong"), None] {
        let report = drive(
            &node(),
            "client.mjs",
            &json!({"transport": "http", "url": url, "token": bad, "calls": []}),
        );
        // The npm SDK reports the 401's body, not its status: our refusal, by its text.
        let error = report["error"].as_str().unwrap();
        assert!(
            error.contains("a bearer token that the policy binds to an agent is required"),
            "{report:#}"
        );
        assert!(
            report["tools"].is_null(),
            "a refused client listed tools: {report:#}"
        );
    }
    // The status itself, from a bare request without a token.
    let mut bare = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    bare.write_all(
        format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    bare.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{answer}"
    );
    drop(server);
    let records = records(&s);
    assert!(
        records.iter().any(|r| r["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("identity: a bearer token no agent lists"))),
        "{records:#?}"
    );
    assert!(
        records.iter().any(|r| r["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("identity: no bearer token"))),
        "{records:#?}"
    );
    let log = std::fs::read_to_string(s.path("work/audit.log")).unwrap();
    assert_no_leak(&token, log.as_bytes(), "the audit log");
}

#[test]
fn listen_refuses_a_remote_address_without_tls_and_stdio_needs_an_agent() {
    let s = world(&policy(false, &[]));
    let out = s
        .command(&bin("agentsec"))
        .args(mcp_args(&s))
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--allow-remote"),
        "{out:?}"
    );
    let out = s
        .command(&bin("agentsec"))
        .args(mcp_args(&s))
        .args(["--listen", "0.0.0.0:0", "--allow-remote"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tls-cert"),
        "{out:?}"
    );
    let out = s
        .command(&bin("agentsec"))
        .args(mcp_args(&s))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--agent ID is required"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// A raw client: every byte the server writes to stdout, and the lines as they come.
struct Raw {
    child: Killed,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    stdout: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Raw {
    fn start(s: &Scratch, extra: &[&str]) -> Raw {
        let mut child = s
            .command(&bin("agentsec"))
            .args(mcp_args(s))
            .args(["--agent", AGENT])
            .args(extra)
            .env("SOPS_AGE_KEY_FILE", demo_key())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        let sink = std::sync::Arc::clone(&captured);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().extend_from_slice(&line);
                let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                line.clear();
            }
        });
        let mut raw = Raw {
            child: Killed(child),
            stdin,
            lines,
            stdout: captured,
        };
        raw.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}));
        raw.response(0);
        raw.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        raw
    }

    fn send(&mut self, message: &Value) {
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        self.stdin.write_all(&line).unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message that satisfies `want` (others are kept in order of arrival).
    fn wait_for(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} from agentsec mcp"));
            let message: Value = serde_json::from_str(&line).unwrap();
            if want(&message) {
                return message;
            }
        }
    }

    fn response(&mut self, id: u64) -> Value {
        self.wait_for(&format!("response {id}"), |m| m["id"] == id)
    }

    fn call(&mut self, id: u64, name: &str, arguments: Value) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}));
    }

    /// Closes stdin and returns every byte written to stdout.
    fn finish(self) -> Vec<u8> {
        let Raw {
            mut child,
            stdin,
            stdout,
            ..
        } = self;
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.0.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "agentsec mcp did not stop when stdin closed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut stderr = String::new();
        let _ = child.0.stderr.take().unwrap().read_to_string(&mut stderr);
        assert_no_leak(PROD_PASSWORD, stderr.as_bytes(), "agentsec mcp's stderr");
        std::thread::sleep(Duration::from_millis(100));
        stdout.lock().unwrap().clone()
    }
}

#[test]
fn the_protocol_stream_is_only_json_rpc_and_calls_run_concurrently_and_cancel() {
    let s = world(&policy(false, &[]));
    let mut raw = Raw::start(&s, &["--workers", "2"]);
    // A skill that prints to its own stdout and stderr (a form of the secret, and a
    // marker): neither reaches the protocol stream.
    raw.call(
        1,
        "probe",
        json!({"ops": [{"print": PROD_PASSWORD_PATH}, {"get": PROD_PASSWORD_PATH}]}),
    );
    let printed = raw.response(1);
    assert_eq!(printed["result"]["isError"], false, "{printed:#}");
    // Unknown methods: -32601 (clients probe, and wait until a timeout otherwise).
    raw.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "agentsec/unknown", "params": {}}));
    assert_eq!(raw.response(2)["error"]["code"], -32601);
    // Concurrency: a slow call does not hold up a quick one sent after it.
    raw.call(3, "probe", json!({"ops": [{"sleep_ms": 4000}]}));
    raw.call(4, "probe", json!({"ops": [{"get": PROD_PASSWORD_PATH}]}));
    let first = raw.wait_for("a call result", |m| m["id"] == 3 || m["id"] == 4);
    assert_eq!(
        first["id"], 4,
        "the quick call waited for the slow one: {first:#}"
    );
    raw.response(3);
    // Cancellation: the skill stops (on the record) and the server goes on.
    raw.call(5, "probe", json!({"ops": [{"spin": true}]}));
    std::thread::sleep(Duration::from_millis(500));
    raw.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let cancelled = records(&s).iter().any(|r| {
            r["access_type"] == "run" && r["detail"].as_str().is_some_and(|d| d.contains("cancel"))
        });
        if cancelled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cancelled skill was not stopped: {:#?}",
            records(&s)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    raw.send(&json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list"}));
    assert!(raw.response(6)["result"]["tools"].is_array());
    // A message over the size limit is refused without taking the server down.
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{{\"name\":\"probe\",\"arguments\":{{\"x\":\"{}\"}}}}}}",
        "a".repeat(2 * 1024 * 1024)
    );
    raw.stdin.write_all(huge.as_bytes()).unwrap();
    raw.stdin.write_all(b"\n").unwrap();
    raw.send(&json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"}));
    raw.wait_for("an answer after the oversized message", |m| m["id"] == 8);
    // The tool list follows the skills directory.
    let renamed = s.path("work/skills/probe2.wasm");
    std::fs::copy(skill("probe"), &renamed).unwrap();
    raw.wait_for("notifications/tools/list_changed", |m| {
        m["method"] == "notifications/tools/list_changed"
    });
    raw.send(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}));
    let listed = raw.response(9);
    assert!(listed.to_string().contains("\"probe2\""), "{listed:#}");

    let stream = raw.finish();
    let text = String::from_utf8(stream).unwrap();
    for line in text.lines() {
        let message: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON on stdout ({e}): {line:?}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
    }
    assert!(
        !text.contains("stderr copy"),
        "a skill's stderr reached the protocol stream"
    );
    assert_no_leak(PROD_PASSWORD, text.as_bytes(), "the protocol stream");
}

/// `--connect`: `agentsec mcp` as a front end of `agentsec serve`, which checks who the
/// front end's user is and holds the keys.
#[test]
fn connect_fronts_agentsec_serve() {
    let s = world(&policy(true, &[]));
    let socket = s.path("run/agentsec.sock");
    let daemon = Killed(
        s.command(&bin("agentsec"))
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .args(&mcp_args(&s)[1..])
            .env("SOPS_AGE_KEY_FILE", demo_key())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "agentsec serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let command = vec![
        bin("agentsec").display().to_string(),
        "mcp".to_owned(),
        "--agent".to_owned(),
        AGENT.to_owned(),
        "--connect".to_owned(),
        socket.display().to_string(),
    ];
    let report = drive(
        &python(),
        "client.py",
        &json!({"mode": "session", "command": command, "env": env(&s), "calls": calls()}),
    );
    check_report(&report, true);
    check_records(&s);
    drop(daemon);
    // Local-only options are refused with --connect.
    let out = s
        .command(&bin("agentsec"))
        .args(["mcp", "--agent", AGENT, "--connect"])
        .arg(&socket)
        .arg("--secrets")
        .arg(s.path("work/secrets.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secrets is not used with --connect"));
}
