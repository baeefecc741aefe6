//! Outgoing HTTP from a skill (wasi:http through the host's checks, and with a
//! credential the host injects), side by side with the same requests sent by a plain
//! hyper client on the host (one connection per request, as the host's client does),
//! all to one local HTTP/1.1 server on 127.0.0.1 started here.
//!
//! Per request: (run with N requests - run with none) / N, against hyper's time / N.
//! The difference is the whole cost of going through the sandbox (the guest's
//! wasi:http calls, the policy's egress and inject checks, the audit record, the
//! response redaction), an upper bound on the checks' own overhead.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentsec_audit::AuditLog;
use agentsec_broker::Broker;
use agentsec_host::{HostConfig, Limits, LoadedSkill, RunEnd, RunRequest, Runtime};
use agentsec_policy::{AgentId, Policy};
use agentsec_secrets::SecretStore;
use agentsec_sops::{Identities, SopsStore};
use criterion::{Criterion, criterion_group, criterion_main};

/// Requests per run (the run's limit is 64).
const N: u32 = 50;

const AGENT: &str = "ops/release-manager";

/// A minimal HTTP/1.1 server: one request per connection, answered `200 ok`.
fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            answer(stream);
        }
    });
    port
}

fn answer(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Headers only: the bench sends GETs without bodies.
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let _ =
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
}

struct Fixture {
    host: Runtime,
    skill: LoadedSkill,
    broker: Arc<Broker>,
    port: u16,
}

fn fixture(dir: &std::path::Path) -> Fixture {
    let root = agentsec_tests::root();
    let port = serve();
    let host = Runtime::new(HostConfig::default().without_cache()).expect("host");
    let mut skill = host
        .load_file(&agentsec_tests::skill("http-probe"))
        .expect("http-probe skill");
    skill.vouch_name();
    let base = format!("http://127.0.0.1:{port}");
    let policy = Policy::from_sources(&[(
        "bench.yaml",
        format!(
            "access_control:
  secrets:
    databases.postgres.production:
      allowed_agents: [{AGENT}]
      access_level: read-write
      inject:
        - url: \"{base}/**\"
          header: \"X-Bench-Key: {{secret}}\"
egress:
  - url: \"{base}/**\"
    agents: [{AGENT}]
"
        ),
    )])
    .expect("policy");
    let mut ids = Identities::new();
    ids.add_file(&agentsec_tests::demo_key()).expect("demo key");
    let store: Arc<dyn SecretStore> =
        Arc::new(SopsStore::open(&root.join("demo/secrets.yaml"), &ids).expect("demo secrets"));
    let audit = Arc::new(Mutex::new(
        AuditLog::open(dir.join("audit.log")).expect("audit log"),
    ));
    let broker = Arc::new(Broker::new(Arc::new(policy), store, audit));
    Fixture {
        host,
        skill,
        broker,
        port,
    }
}

/// The probe's input: `n` GETs, each naming `inject` when given.
fn input(port: u16, n: u32, inject: Option<&str>) -> String {
    input_to(&format!("http://127.0.0.1:{port}/bench"), n, inject)
}

/// `n` GETs to `base/i`.
fn input_to(base: &str, n: u32, inject: Option<&str>) -> String {
    let requests: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut r = serde_json::json!({
                "method": "GET",
                "url": format!("{base}/{i}"),
            });
            if let Some(path) = inject {
                r["inject"] = serde_json::json!(path);
            }
            r
        })
        .collect();
    serde_json::json!({ "requests": requests }).to_string()
}

/// What a run's output must hold: `n` answers with status 200, or `n` refusals.
#[derive(Clone, Copy)]
enum Expect {
    Ok(usize),
    Refused(usize),
}

fn run(f: &Fixture, input: &str, expect: Expect) -> Duration {
    let mut limits = Limits::default();
    limits.timeout = Duration::from_secs(600);
    let request = RunRequest::new(
        AgentId::parse(AGENT).expect("agent"),
        input,
        Arc::clone(&f.broker),
        "bench".into(),
    )
    .limits(limits);
    let start = Instant::now();
    let report = f.host.run(&f.skill, request);
    let took = start.elapsed();
    match &report.end {
        RunEnd::Ok(out) => match expect {
            Expect::Ok(n) => assert!(
                !out.contains("\"error\"") && out.matches("\"status\":200").count() == n,
                "{out}"
            ),
            Expect::Refused(n) => assert_eq!(out.matches("\"error\"").count(), n, "{out}"),
        },
        other => panic!("{other:?}"),
    }
    took
}

/// `n` GETs from the host with hyper, one connection each (what the host's client does
/// for a skill's request, without the checks).
fn hyper_gets(rt: &tokio::runtime::Runtime, port: u16, n: u32) -> Duration {
    use http_body_util::{BodyExt as _, Empty};
    let start = Instant::now();
    rt.block_on(async {
        for i in 0..n {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .expect("handshake");
            let driver = tokio::spawn(conn);
            let request = http::Request::get(format!("/bench/{i}"))
                .header("host", format!("127.0.0.1:{port}"))
                .body(Empty::<bytes::Bytes>::new())
                .expect("request");
            let response = sender.send_request(request).await.expect("send");
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.expect("body");
            assert_eq!(&body.to_bytes()[..], b"ok");
            let _ = driver.await;
        }
    });
    start.elapsed()
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir_in("/dev/shm").expect("/dev/shm");
    let f = fixture(dir.path());
    let none = input(f.port, 0, None);
    let plain = input(f.port, N, None);
    let injected = input(f.port, N, Some("databases.postgres.production.password"));
    // No egress rule names this url: each request is checked, recorded and refused by
    // the host, with no connection (the sandbox's own cost per request).
    let refused = input_to("http://127.0.0.1:9/bench", N, None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");

    let mut g = c.benchmark_group("egress");
    g.sample_size(20);
    g.bench_function("run_no_requests", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run(&f, &none, Expect::Ok(0))).sum())
    });
    g.bench_function(format!("run_{N}_requests"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run(&f, &plain, Expect::Ok(N as usize)))
                .sum()
        })
    });
    g.bench_function(format!("run_{N}_injected_requests"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run(&f, &injected, Expect::Ok(N as usize)))
                .sum()
        })
    });
    g.bench_function(format!("run_{N}_refused_requests"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run(&f, &refused, Expect::Refused(N as usize)))
                .sum()
        })
    });
    g.bench_function(format!("hyper_{N}_requests"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| hyper_gets(&rt, f.port, N)).sum())
    });
    g.finish();
}

criterion_group!(egress, benches);
criterion_main!(egress);
