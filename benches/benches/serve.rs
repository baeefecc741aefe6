//! `agentsec serve` (issue 14 targets): in-process runs per second on the daemon's
//! configuration, the get-secret round trip inside it, runs per second through the socket
//! from one pipelining client, and a one-shot `agentsec-run --connect` against a local
//! one-shot run and `sops decrypt --extract`, alternating in one loop.
//!
//! Run: `cargo build --release --bins && cargo bench -p agentsec-benches --bench serve`.
//! Prints a markdown table (copied into benches/README.md).
#![expect(clippy::unwrap_used, reason = "a benchmark: any failure aborts it")]

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentsec_audit::AuditLog;
use agentsec_broker::Broker;
use agentsec_host::{HostConfig, LoadedSkill, Runtime};
use agentsec_policy::Policy;
use agentsec_secrets::SecretStore;
use agentsec_sops::{Identities, SopsStore};

const PASSWORD: &str = "databases.postgres.production.password";

fn release_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} missing: run `cargo build --release --bins` first",
        path.display()
    );
    path
}

struct Fixture {
    runtime: Runtime,
    skill: LoadedSkill,
    policy: Arc<Policy>,
    store: Arc<dyn SecretStore>,
}

fn fixture(workers: u32) -> Fixture {
    let root = agentsec_tests::root();
    let runtime = Runtime::new(HostConfig::default().without_cache().pooling(workers)).unwrap();
    let skill = runtime.load_file(&agentsec_tests::skill("probe")).unwrap();
    let policy = Policy::load(&[root.join("tests/testdata/policies/e2e.yaml")]).unwrap();
    let mut ids = Identities::new();
    ids.add_file(&agentsec_tests::demo_key()).unwrap();
    let store = SopsStore::open(&root.join("demo/secrets.yaml"), &ids).unwrap();
    Fixture {
        runtime,
        skill,
        policy: Arc::new(policy),
        store: Arc::new(store),
    }
}

fn run_once(f: &Fixture, broker: &Arc<Broker>, input: &str) -> Duration {
    agentsec_benches::run_probe(&f.runtime, &f.skill, broker, input)
}

fn broker(f: &Fixture, log: &Path) -> Arc<Broker> {
    let audit = Arc::new(Mutex::new(AuditLog::open(log).unwrap()));
    Arc::new(Broker::new(
        Arc::clone(&f.policy),
        Arc::clone(&f.store),
        audit,
    ))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn one_get() -> String {
    format!(r#"{{"ops":[{{"get":"{PASSWORD}"}}]}}"#)
}

/// Runs per second on `threads` threads for `secs`, the probe skill with one get-secret.
fn runs_per_second(f: &Fixture, broker: &Arc<Broker>, threads: usize, secs: f64) -> f64 {
    let input = one_get();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let total: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        run_once(f, broker, &input);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// The per-call cost of get-secret: a run of `calls` calls minus an empty run.
fn round_trip(f: &Fixture, broker: &Arc<Broker>) -> Duration {
    let calls = 2000u32;
    let input = format!(r#"{{"ops":[{{"get_many":{calls},"path":"{PASSWORD}"}}]}}"#);
    let empty = r#"{"ops":[]}"#;
    let samples: Vec<_> = (0..15)
        .map(|_| {
            let with = run_once(f, broker, &input);
            let without = run_once(f, broker, empty);
            with.saturating_sub(without) / calls
        })
        .collect();
    median(samples)
}

/// A daemon (release build) on a socket in `dir`, stopped on drop.
struct Daemon(std::process::Child, PathBuf);

impl Daemon {
    /// On the demo's SOPS file.
    fn start(dir: &Path, audit: &Path) -> Daemon {
        let root = agentsec_tests::root();
        Self::start_on(
            dir,
            audit,
            &["--secrets".into(), root.join("demo/secrets.yaml").into()],
        )
    }

    /// On the store that `store_args` name (`--secrets FILE` or `--vault-config FILE`).
    fn start_on(dir: &Path, audit: &Path, store_args: &[std::ffi::OsString]) -> Daemon {
        let root = agentsec_tests::root();
        let socket = dir.join("agentsec.sock");
        let skills = dir.join("skills");
        std::fs::create_dir_all(&skills).unwrap();
        std::fs::copy(agentsec_tests::skill("probe"), skills.join("probe.wasm")).unwrap();
        let child = Command::new(release_bin("agentsec"))
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .arg("--policy")
            .arg(root.join("tests/testdata/policies/e2e.yaml"))
            .args(store_args)
            .arg("--audit-log")
            .arg(audit)
            .arg("--skills")
            .arg(&skills)
            .args(["--max-agent-rate", "0"])
            .env("SOPS_AGE_KEY_FILE", agentsec_tests::demo_key())
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .current_dir(dir)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "agentsec serve did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Daemon(child, socket)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_line(id: usize, component_b64: Option<&str>) -> Vec<u8> {
    let skill = match component_b64 {
        Some(b64) => serde_json::json!({"component": b64, "name": "probe"}),
        None => serde_json::json!({"installed": "probe"}),
    };
    let mut line = serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0", "id": id, "method": "run",
        "params": {"agent": "ops/release-manager", "skill": skill, "input": one_get()}
    }))
    .unwrap();
    line.push(b'\n');
    line
}

/// Runs per second through the socket from one client that pipelines `n` requests
/// (a writer thread sends, this thread reads the answers), naming the installed skill or
/// sending its bytes each time.
fn socket_runs_per_second(socket: &Path, n: usize, send_bytes: bool) -> f64 {
    use base64::Engine as _;
    let bytes = std::fs::read(agentsec_tests::skill("probe")).unwrap();
    let b64 = send_bytes.then(|| base64::engine::general_purpose::STANDARD.encode(bytes));
    let stream = UnixStream::connect(socket).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // Warm: the daemon compiles the component once.
    writer.write_all(&run_line(0, b64.as_deref())).unwrap();
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    assert!(answer.contains("\"exit_code\":0"), "{answer}");
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        for id in 1..=n {
            writer.write_all(&run_line(id, b64.as_deref())).unwrap();
        }
    });
    for _ in 0..n {
        answer.clear();
        reader.read_line(&mut answer).unwrap();
        assert!(answer.contains("\"exit_code\":0"), "{answer}");
    }
    sender.join().unwrap();
    n as f64 / start.elapsed().as_secs_f64()
}

fn timed(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let root = agentsec_tests::root();
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let f = fixture(4);
    let mut rows: Vec<(String, String)> = Vec::new();

    for (where_, dir) in [("tmpfs", shm.path()), ("ext4", disk.path())] {
        let b = broker(&f, &dir.join("rt.log"));
        let rt = round_trip(&f, &b);
        rows.push((
            format!("get-secret round trip in the daemon's runtime (pooling), audit on {where_}"),
            format!("{:.2} µs", rt.as_secs_f64() * 1e6),
        ));
        let b = broker(&f, &dir.join("rps.log"));
        for threads in [1, 2] {
            let rps = runs_per_second(&f, &b, threads, 3.0);
            rows.push((
                format!("runs/s in process, {threads} thread(s), probe + 1 get-secret, audit on {where_}"),
                format!("{rps:.0}"),
            ));
        }
    }
    drop(f);

    let daemon_dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let daemon = Daemon::start(daemon_dir.path(), &shm.path().join("daemon.log"));
    for (send_bytes, how) in [
        (false, "the installed skill by name"),
        (true, "sending the component's 100 KB each time"),
    ] {
        let n = 5_000;
        let rps = socket_runs_per_second(&daemon.1, n, send_bytes);
        rows.push((
            format!("runs/s through the socket, one client pipelining {n} requests, {how} (audit on tmpfs)"),
            format!("{rps:.0}"),
        ));
    }

    // The same daemon on a Vault store (a local OpenBao dev server holding the probe's
    // secret at the same dotted path), values cached (the default 60 s) and not cached.
    let vault = agentsec_benches::BenchVault::start(daemon_dir.path());
    for (ttl, how) in [
        ("60s", "cached"),
        ("0s", "not cached: one HTTP round trip per run"),
    ] {
        let cfg = vault.config(ttl);
        let vault_dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let daemon = Daemon::start_on(
            vault_dir.path(),
            &shm.path().join(format!("vault-{ttl}.log")),
            &["--vault-config".into(), cfg.into()],
        );
        let n = 5_000;
        let rps = socket_runs_per_second(&daemon.1, n, false);
        rows.push((
            format!("runs/s through the socket on a **Vault** store ({how}), one client pipelining {n} requests"),
            format!("{rps:.0}"),
        ));
    }
    drop(vault);

    // One-shot processes, alternating.
    let sops = agentsec_tests::sops();
    let skill = agentsec_tests::skill("probe");
    let input = one_get();
    let (mut local, mut remote, mut remote_bytes, mut extract) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..40 {
        local.push(timed(
            Command::new(release_bin("agentsec-run"))
                .arg(&skill)
                .args(["--agent", "ops/release-manager", "--input", &input])
                .arg("--policy")
                .arg(root.join("tests/testdata/policies/e2e.yaml"))
                .arg("--secrets")
                .arg(root.join("demo/secrets.yaml"))
                .arg("--audit-log")
                .arg(shm.path().join("local.log"))
                .env("SOPS_AGE_KEY_FILE", agentsec_tests::demo_key())
                .env("XDG_CACHE_HOME", daemon_dir.path().join("cache"))
                .current_dir(daemon_dir.path()),
        ));
        remote.push(timed(
            Command::new(release_bin("agentsec-run"))
                .arg("probe")
                .args([
                    "--agent",
                    "ops/release-manager",
                    "--input",
                    &input,
                    "--connect",
                ])
                .arg(&daemon.1)
                .current_dir(daemon_dir.path()),
        ));
        remote_bytes.push(timed(
            Command::new(release_bin("agentsec-run"))
                .arg(&skill)
                .args([
                    "--agent",
                    "ops/release-manager",
                    "--input",
                    &input,
                    "--connect",
                ])
                .arg(&daemon.1)
                .current_dir(daemon_dir.path()),
        ));
        extract.push(timed(
            Command::new(&sops)
                .args([
                    "decrypt",
                    "--extract",
                    r#"["databases"]["postgres"]["production"]["password"]"#,
                ])
                .arg(root.join("demo/secrets.yaml"))
                .env("SOPS_AGE_KEY_FILE", agentsec_tests::demo_key())
                .env("SOPS_DISABLE_VERSION_CHECK", "1"),
        ));
    }
    let (l, r, rb, e) = (
        median(local),
        median(remote),
        median(remote_bytes),
        median(extract),
    );
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    rows.push((
        "one-shot `agentsec-run` (local: decrypt, policy, audit, run), whole process".into(),
        ms(l),
    ));
    rows.push((
        format!(
            "one-shot `agentsec-run probe --connect` (the installed skill, through the daemon), whole process: {:.2} × local",
            r.as_secs_f64() / l.as_secs_f64()
        ),
        ms(r),
    ));
    rows.push((
        format!(
            "one-shot `agentsec-run probe.wasm --connect` (sending the component), whole process: {:.2} × local",
            rb.as_secs_f64() / l.as_secs_f64()
        ),
        ms(rb),
    ));
    rows.push((
        "`sops decrypt --extract` of the same value (the real sops 3.11)".into(),
        ms(e),
    ));
    drop(daemon);

    println!("| path | result |\n|---|---|");
    for (what, value) in rows {
        println!("| {what} | {value} |");
    }
}
