//! `agentsec mcp` (issue 15 target: ≥ 5,000 tool calls/s over stdio on 2 cores): a raw
//! JSON-RPC client that pipelines `tools/call` requests for the probe skill (one
//! get-secret each) with a bounded window of calls in flight, measuring calls per second
//! and each call's latency (request written → response read), against `agentsec mcp`
//! in-process and as a `--connect` front end of `agentsec serve`.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p agentsec-benches --bench mcp`.
//! Prints a markdown table (copied into benches/README.md).
#![expect(clippy::unwrap_used, reason = "a benchmark: any failure aborts it")]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const AGENT: &str = "ops/operator";
const PASSWORD: &str = "databases.postgres.production.password";

fn release_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} missing: run `cargo build --release --workspace --bins` first",
        path.display()
    );
    path
}

/// The policy: this process's user is `ops/operator` (stdio proves it by the OS user,
/// the daemon by the peer check), which may read the production database password.
fn world(dir: &Path) {
    let user = Command::new("id").arg("-un").output().unwrap();
    let user = String::from_utf8(user.stdout).unwrap();
    std::fs::write(
        dir.join("policy.yaml"),
        format!(
            "agents:\n  {AGENT}: {{ unix_users: [{}] }}\n\
             access_control:\n  secrets:\n    databases.postgres.production:\n      allowed_agents: [{AGENT}]\n",
            user.trim()
        ),
    )
    .unwrap();
    let skills = dir.join("skills");
    std::fs::create_dir_all(&skills).unwrap();
    std::fs::copy(agentsec_tests::skill("probe"), skills.join("probe.wasm")).unwrap();
}

/// The options `agentsec serve` and in-process `agentsec mcp` share.
fn host_args(dir: &Path, cmd: &mut Command) {
    let root = agentsec_tests::root();
    cmd.arg("--skills")
        .arg(dir.join("skills"))
        .arg("--policy")
        .arg(dir.join("policy.yaml"))
        .arg("--secrets")
        .arg(root.join("demo/secrets.yaml"))
        .arg("--audit-log")
        .arg(dir.join("audit.log"))
        .args(["--max-agent-rate", "0"])
        .env("SOPS_AGE_KEY_FILE", agentsec_tests::demo_key());
}

/// A child process killed and reaped on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `agentsec mcp` on pipes, after the initialize handshake.
struct Session {
    _child: Killed,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Session {
    fn start(dir: &Path, connect: Option<&Path>) -> Session {
        let mut cmd = Command::new(release_bin("agentsec"));
        cmd.args(["mcp", "--agent", AGENT]);
        match connect {
            Some(socket) => {
                cmd.arg("--connect").arg(socket);
            }
            None => host_args(dir, &mut cmd),
        }
        let mut child = cmd
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut s = Session {
            _child: Killed(child),
            stdin,
            stdout,
        };
        s.send(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"}}}),
        );
        s.read();
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        // Warm: the first call compiles the component (or loads it from the cache).
        s.stdin.write_all(&call_line(0)).unwrap();
        check(&s.read());
        s
    }

    fn send(&mut self, message: &Value) {
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        self.stdin.write_all(&line).unwrap();
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        assert!(
            self.stdout.read_line(&mut line).unwrap() > 0,
            "agentsec mcp ended"
        );
        serde_json::from_str(&line).unwrap()
    }
}

fn call_line(id: usize) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "probe", "arguments": {"ops": [{"get": PASSWORD}]}}
    }))
    .unwrap();
    line.push(b'\n');
    line
}

/// A response is a tool result that is not an error.
fn check(response: &Value) -> usize {
    let result = &response["result"];
    assert!(
        result.is_object() && result["isError"] != true,
        "not a successful tool result: {response}"
    );
    usize::try_from(response["id"].as_u64().unwrap()).unwrap()
}

struct Measured {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `n` calls with at most `window` in flight: a writer thread sends as the window allows,
/// this thread reads the answers (in any order) and frees the window.
fn pipelined(session: Session, n: usize, window: usize) -> (Session, Measured) {
    let Session {
        _child,
        mut stdin,
        mut stdout,
    } = session;
    let (free, slots) = mpsc::sync_channel::<()>(window);
    for _ in 0..window {
        free.send(()).unwrap();
    }
    let (sent_tx, sent_rx) = mpsc::channel::<(usize, Instant)>();
    let start = Instant::now();
    let writer = std::thread::spawn(move || {
        for id in 1..=n {
            slots.recv().unwrap();
            let line = call_line(id);
            let at = Instant::now();
            stdin.write_all(&line).unwrap();
            sent_tx.send((id, at)).unwrap();
        }
        stdin
    });
    let mut sent_at = vec![None; n + 1];
    let mut latencies = Vec::with_capacity(n);
    let mut line = String::new();
    for _ in 0..n {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "agentsec mcp ended"
        );
        let done = Instant::now();
        let id = check(&serde_json::from_str(&line).unwrap());
        while sent_at[id].is_none() {
            let (sent, at) = sent_rx.recv().unwrap();
            sent_at[sent] = Some(at);
        }
        latencies.push(done - sent_at[id].unwrap());
        // The writer may have sent its last request: nobody takes the slot then.
        let _ = free.try_send(());
    }
    let took = start.elapsed();
    let stdin = writer.join().unwrap();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let measured = Measured {
        per_second: n as f64 / took.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    };
    (
        Session {
            _child,
            stdin,
            stdout,
        },
        measured,
    )
}

/// `agentsec serve` (release build) on a socket in `dir`, stopped on drop.
fn daemon(dir: &Path) -> (Killed, PathBuf) {
    let socket = dir.join("agentsec.sock");
    let mut cmd = Command::new(release_bin("agentsec"));
    cmd.arg("serve").arg("--socket").arg(&socket);
    host_args(dir, &mut cmd);
    let child = cmd
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .current_dir(dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "agentsec serve did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, socket)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    world(dir.path());
    let (serve, socket) = daemon(dir.path());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let n = 20_000;
    let mut rows = Vec::new();
    for (how, connect) in [
        ("stdio, in process", None),
        (
            "stdio, `--connect` to `agentsec serve`",
            Some(socket.as_path()),
        ),
    ] {
        let mut session = Session::start(dir.path(), connect);
        for window in [1, 8, 64, 512] {
            let calls = if window == 1 { n / 4 } else { n };
            let (s, m) = pipelined(session, calls, window);
            session = s;
            rows.push(format!(
                "| {how}, {window} in flight | {calls} | {:.0} | {:.0} µs | {:.0} µs |",
                m.per_second,
                m.p50.as_secs_f64() * 1e6,
                m.p99.as_secs_f64() * 1e6
            ));
        }
    }
    drop(serve);
    println!(
        "`tools/call` of the probe skill (one get-secret, audited on tmpfs), {cores} cores, release build\n"
    );
    println!("| client | calls | calls/s | p50 | p99 |\n|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}
