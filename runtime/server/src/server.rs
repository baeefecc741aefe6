//! The daemon: socket, connections, the worker pool, reload and shutdown.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, FileTypeExt as _, MetadataExt as _, PermissionsExt as _,
};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agentsec_audit::{AccessType, AuditLog, CallerInfo, Decision, Record, RunContext, StoreRef};
use agentsec_broker::{AuditSync, Broker};
use agentsec_host::{
    CancelToken, LimitOverrides, Limits, LoadedSkill, RunReport, RunRequest, Runtime,
};
use agentsec_policy::{AgentId, Policy, SkillName};
use agentsec_secrets::SecretStore;
use arc_swap::ArcSwap;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::identity::OsIdentity;
use crate::pool::{Job, Pool};
use crate::protocol::{self, RunParams, RunResult};

/// How often the policy and secrets files are checked for changes (SIGHUP reloads at
/// once).
///
/// Reason: a changed grant or revocation should apply within a second or two; a `stat`
/// of a few files per second costs nothing. Polling, not inotify: it sees a file
/// replaced by rename, a bind mount or a ConfigMap symlink swap the same way, with no
/// watch to lose.
pub const RELOAD_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Connections served at once; more are answered with an error and closed.
///
/// Reason: each connection has a thread and a read buffer; a local agent harness opens a
/// few. The bound keeps a runaway client from exhausting threads.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Queued runs per worker before a connection that sends more waits (back-pressure).
///
/// Reason: enough to keep every worker busy while clients pipeline, small enough that a
/// queued request (holding its input, and for a sent component its bytes) is bounded.
pub const DEFAULT_QUEUE_PER_WORKER: usize = 32;

/// Runs per second one agent id may start (a burst of one second's worth is allowed).
///
/// Reason: a model makes a few tool calls per second; ten thousand is far above any real
/// agent and still bounds a runaway loop's share of the host and of the audit log.
pub const DEFAULT_MAX_AGENT_RATE: u32 = 10_000;

/// Uploaded components kept compiled (by digest) for the next request that sends them.
///
/// Reason: a client usually sends the same few skills again and again; each kept
/// component holds its compiled code (~1-20 MB).
const MAX_CACHED_UPLOADS: usize = 32;

/// Bytes of a request line beyond the component and the input (the JSON around them).
const MESSAGE_OVERHEAD: usize = 64 * 1024;

/// How `agentsec serve` is set up.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The unix socket to listen on.
    pub socket: PathBuf,
    /// Group given access to the socket (mode 0660); `None`: only the daemon's user (0600).
    pub socket_group: Option<u32>,
    /// Worker threads (runs at once).
    pub workers: usize,
    /// Queued runs before senders wait.
    pub queue: usize,
    /// Connections at once.
    pub max_connections: usize,
    /// Runs of one agent id at once.
    pub max_agent_runs: usize,
    /// Runs one agent id may start per second (0: no limit).
    pub max_agent_rate: u32,
    /// Limits given on the command line (they win over the policy's `sandbox:`).
    pub overrides: LimitOverrides,
    /// When audit records are fsynced.
    pub audit_sync: AuditSync,
    /// How often files are checked for changes.
    pub reload_poll: Duration,
}

impl ServerConfig {
    /// Defaults for a daemon on `socket`: one worker per core, the named defaults.
    pub fn new(socket: PathBuf) -> Self {
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        ServerConfig {
            socket,
            socket_group: None,
            workers,
            queue: workers * DEFAULT_QUEUE_PER_WORKER,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_agent_runs: workers,
            max_agent_rate: DEFAULT_MAX_AGENT_RATE,
            overrides: LimitOverrides::default(),
            audit_sync: AuditSync::default(),
            reload_poll: RELOAD_POLL_INTERVAL,
        }
    }
}

/// The default socket: `$XDG_RUNTIME_DIR/agentsec/agentsec.sock` for a user's daemon,
/// `/run/agentsec/agentsec.sock` for root's (a system service).
pub fn default_socket() -> PathBuf {
    if rustix::process::getuid().is_root() {
        return PathBuf::from("/run/agentsec/agentsec.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => {
            PathBuf::from(dir).join("agentsec").join("agentsec.sock")
        }
        _ => PathBuf::from("/run/agentsec/agentsec.sock"),
    }
}

/// How the daemon reads its configuration (the front end knows the flags and the
/// formats): called at start and on every reload.
pub trait Loader: Send + Sync + 'static {
    /// Reads and checks the policy.
    ///
    /// # Errors
    /// Why it cannot be used (file:line:column where there is one; never a value).
    fn policy(&self) -> Result<Policy, String>;
    /// Opens (decrypts and verifies) the store, with what the audit records name it
    /// (`store.kind`, `addr`, ...; `None`: unnamed).
    ///
    /// # Errors
    /// As [`Loader::policy`].
    fn store(&self) -> Result<(Arc<dyn SecretStore>, Option<StoreRef>), String>;
    /// Files and directories whose change reloads the policy.
    fn policy_files(&self) -> Vec<PathBuf>;
    /// Files whose change reloads the store.
    fn store_files(&self) -> Vec<PathBuf>;
    /// The component file of the skill installed as `name` in the skills directory.
    ///
    /// # Errors
    /// No such skill (or no skills directory), in words.
    fn installed_skill(&self, name: &str) -> Result<PathBuf, String>;
    /// The names of every skill installed in the skills directory (what [`Server::tools`]
    /// offers), sorted; none without a skills directory.
    fn installed_skills(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Why a request was refused before (or instead of) a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// The peer may not act as the agent id it named.
    Identity,
    /// The request is wrong (unknown skill, bad input, bad component).
    Usage,
    /// A limit (the agent's rate, a component too large).
    Limit,
    /// The daemon is shutting down.
    ShuttingDown,
    /// The policy refuses what was asked (a secret listing or reveal).
    Denied,
}

/// What a request came to, for the front end to render.
#[non_exhaustive]
pub enum Outcome<'a> {
    /// The skill ran (or its needs were refused before it started).
    Ran {
        /// The report.
        report: RunReport,
        /// The skill's name.
        skill: &'a str,
        /// The limits it ran under.
        limits: &'a Limits,
    },
    /// The request was refused.
    Refused {
        /// Why.
        kind: Refused,
        /// What to say (no value, no prefix).
        message: String,
    },
}

/// What a local run would have written, and its exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// The exit code.
    pub exit_code: u8,
    /// Bytes for stdout.
    pub stdout: Vec<u8>,
    /// Bytes for stderr.
    pub stderr: Vec<u8>,
    /// What agentsec itself said about the run (its `agentsec-run:` lines: warnings, how
    /// the run ended), without the skill's own stdout and stderr, which `stderr` also
    /// holds. A front end that must not forward a skill's prints (MCP) shows this.
    pub message: String,
}

/// Renders an outcome as a local `agentsec-run` prints it.
pub type Render = dyn Fn(Outcome<'_>) -> Rendered + Send + Sync;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The policy or the store could not be loaded.
    #[error("{0}")]
    Load(String),
    /// The socket could not be set up.
    #[error("socket {path}: {reason}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// One version of the configuration: runs hold the version they started with.
pub(crate) struct Version {
    pub(crate) broker: Arc<Broker>,
}

/// What polled files looked like (`None`: missing): device, inode, size, modification
/// time; a file replaced by rename changes its inode.
pub type Stamp = Vec<(PathBuf, Option<(u64, u64, u64, i64, i64)>)>;

/// A running daemon.
pub struct Server {
    pub(crate) inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

pub(crate) struct Inner {
    config: ServerConfig,
    pub(crate) loader: Box<dyn Loader>,
    runtime: Runtime,
    audit: Arc<Mutex<AuditLog>>,
    pub(crate) current: ArcSwap<Version>,
    pub(crate) render: Box<Render>,
    pub(crate) pool: Arc<Pool>,
    installed: Mutex<HashMap<String, (Stamp, Arc<LoadedSkill>)>>,
    uploads: Mutex<Vec<([u8; 32], Arc<LoadedSkill>)>>,
    rates: Mutex<HashMap<String, Bucket>>,
    connections: AtomicUsize,
    stopping: AtomicBool,
    pub(crate) me: OsIdentity,
    reload: (Mutex<bool>, Condvar),
    max_message: usize,
    /// Whether the daemon owns `config.socket` (false in process: nothing is bound, and
    /// nothing at that path is touched).
    listening: bool,
}

/// A token bucket of one agent's run starts.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Server {
    /// Loads the policy and the store, binds the socket (it exists only once both are
    /// loaded: readiness), and starts the acceptor, the workers and the reload watcher.
    ///
    /// # Errors
    /// [`ServerError`]: nothing is listening then.
    pub fn start(
        config: ServerConfig,
        loader: Box<dyn Loader>,
        runtime: Runtime,
        audit: Arc<Mutex<AuditLog>>,
        render: Box<Render>,
    ) -> Result<Server, ServerError> {
        Self::start_with(config, loader, runtime, audit, render, true)
    }

    /// As [`Server::start`], without a socket: the workers, the caches and the reload
    /// watcher serve the calls of this process only ([`Server::call`], [`Server::tools`],
    /// [`Server::list_secrets`], [`Server::reveal`]). `config.socket` is not touched.
    ///
    /// # Errors
    /// [`ServerError::Load`] or [`ServerError::Thread`].
    pub fn start_in_process(
        config: ServerConfig,
        loader: Box<dyn Loader>,
        runtime: Runtime,
        audit: Arc<Mutex<AuditLog>>,
        render: Box<Render>,
    ) -> Result<Server, ServerError> {
        Self::start_with(config, loader, runtime, audit, render, false)
    }

    fn start_with(
        config: ServerConfig,
        loader: Box<dyn Loader>,
        runtime: Runtime,
        audit: Arc<Mutex<AuditLog>>,
        render: Box<Render>,
        listen: bool,
    ) -> Result<Server, ServerError> {
        let policy = loader.policy().map_err(ServerError::Load)?;
        let (store, store_ref) = loader.store().map_err(ServerError::Load)?;
        let mut broker =
            Broker::new(Arc::new(policy), store, Arc::clone(&audit)).audit_sync(config.audit_sync);
        if let Some(store_ref) = store_ref {
            broker = broker.store_ref(store_ref);
        }
        let me = OsIdentity::of_this_process().map_err(ServerError::Thread)?;
        let (limits, _) = Limits::resolve(&config.overrides, broker.policy().sandbox());
        let max_message = (limits.max_component_size as usize)
            .saturating_mul(4)
            .div_ceil(3)
            .saturating_add(limits.max_input as usize)
            .saturating_add(MESSAGE_OVERHEAD);
        let listener = if listen { Some(bind(&config)?) } else { None };
        let pool = Pool::new(config.queue, config.max_agent_runs);
        let inner = Arc::new(Inner {
            loader,
            runtime,
            audit,
            current: ArcSwap::from_pointee(Version {
                broker: Arc::new(broker),
            }),
            render,
            pool,
            installed: Mutex::new(HashMap::new()),
            uploads: Mutex::new(Vec::new()),
            rates: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            me,
            reload: (Mutex::new(false), Condvar::new()),
            max_message,
            listening: listen,
            config,
        });
        let mut threads = Vec::new();
        for i in 0..inner.config.workers.max(1) {
            let pool = Arc::clone(&inner.pool);
            threads.push(spawn(&format!("agentsec-worker-{i}"), move || pool.work())?);
        }
        let watcher = Arc::clone(&inner);
        threads.push(spawn("agentsec-reload", move || watcher.watch())?);
        if let Some(listener) = listener {
            let acceptor = Arc::clone(&inner);
            threads.push(spawn("agentsec-accept", move || {
                acceptor.accept(&listener)
            })?);
        }
        Ok(Server { inner, threads })
    }

    /// The socket it listens on.
    pub fn socket(&self) -> &Path {
        &self.inner.config.socket
    }

    /// Reloads the policy and the store now (as SIGHUP does).
    pub fn reload(&self) {
        self.inner.request_reload();
    }

    /// Stops accepting (the socket is removed), lets queued and running runs finish, syncs
    /// the audit log and returns.
    pub fn shutdown(self) {
        self.inner.begin_shutdown();
        self.inner.pool.close();
        for thread in self.threads {
            let _ = thread.join();
        }
        if let Ok(mut log) = self.inner.audit.lock()
            && let Err(e) = log.sync()
        {
            tracing::error!(error = %e, "could not sync the audit log at shutdown");
        }
    }

    /// Serves until SIGTERM or SIGINT (then [`Server::shutdown`]); SIGHUP reloads.
    ///
    /// # Errors
    /// The signal handlers could not be installed.
    pub fn run_until_signalled(self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        for signal in signals.forever() {
            if signal == SIGHUP {
                tracing::info!("SIGHUP: reloading");
                self.reload();
            } else {
                tracing::info!("shutting down: finishing the runs in progress");
                break;
            }
        }
        self.shutdown();
        Ok(())
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, ServerError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(ServerError::Thread)
}

/// Creates the socket's directory (0700) if needed, refuses to take over a live daemon's
/// socket, removes a stale one, binds and sets the socket's mode and group.
fn bind(config: &ServerConfig) -> Result<UnixListener, ServerError> {
    let path = &config.socket;
    let err = |reason: String| ServerError::Socket {
        path: path.clone(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(format!("cannot create its directory: {e}")))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(err(
                    "another agentsec serve is listening on it; stop it or pass another --socket"
                        .to_owned(),
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| err(format!("cannot remove the stale socket: {e}")))?;
        }
        Ok(_) => {
            return Err(err(
                "exists and is not a socket; remove it or pass another --socket".to_owned(),
            ));
        }
        Err(_) => {}
    }
    // bind(2) creates the file before listen(2) runs, and then with the umask's mode:
    // bind a temporary name, set its mode and group, and rename it into place, so that
    // the socket appears only listening and with its final permissions (readiness).
    let file_name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    let staged = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&staged);
    let listener = UnixListener::bind(&staged).map_err(|e| err(e.to_string()))?;
    let placed = (|| {
        let mode = if config.socket_group.is_some() {
            0o660
        } else {
            0o600
        };
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))
            .map_err(|e| err(format!("cannot set its mode: {e}")))?;
        if let Some(gid) = config.socket_group {
            std::os::unix::fs::chown(&staged, None, Some(gid))
                .map_err(|e| err(format!("cannot give it to group {gid}: {e}")))?;
        }
        std::fs::rename(&staged, path).map_err(|e| err(format!("cannot put it in place: {e}")))
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&staged);
        return Err(e);
    }
    Ok(listener)
}

impl Inner {
    fn begin_shutdown(&self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the acceptor (blocked in accept) and the watcher.
        if self.listening {
            let _ = UnixStream::connect(&self.config.socket);
            let _ = std::fs::remove_file(&self.config.socket);
        }
        self.request_reload();
    }

    fn request_reload(&self) {
        let (flag, cv) = &self.reload;
        if let Ok(mut f) = flag.lock() {
            *f = true;
        }
        cv.notify_all();
    }

    fn accept(self: &Arc<Self>, listener: &UnixListener) {
        for stream in listener.incoming() {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            if self.connections.fetch_add(1, Ordering::SeqCst) >= self.config.max_connections {
                self.connections.fetch_sub(1, Ordering::SeqCst);
                let mut s = stream;
                let _ = s.write_all(&protocol::error(
                    None,
                    protocol::INVALID_REQUEST,
                    "too many connections; try again",
                ));
                continue;
            }
            let inner = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("agentsec-conn".to_owned())
                .spawn(move || {
                    inner.connection(stream);
                    inner.connections.fetch_sub(1, Ordering::SeqCst);
                });
            if spawned.is_err() {
                self.connections.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Reads requests from one connection until it closes.
    fn connection(self: &Arc<Self>, stream: UnixStream) {
        let peer = match OsIdentity::of_peer(&stream) {
            Ok(peer) => Arc::new(peer),
            Err(e) => {
                tracing::warn!(error = %e, "cannot identify a peer; closing its connection");
                return;
            }
        };
        let Ok(write_half) = stream.try_clone() else {
            return;
        };
        let writer = Arc::new(Mutex::new(write_half));
        let running: Running = Arc::default();
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            let limit = self.max_message as u64 + 1;
            match (&mut reader).take(limit).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line.last() != Some(&b'\n') {
                if line.len() as u64 >= limit {
                    let message = format!(
                        "message over {} bytes (the component and input limits); closing the connection",
                        self.max_message
                    );
                    send(
                        &writer,
                        &protocol::error(None, protocol::INVALID_REQUEST, &message),
                    );
                }
                return;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.dispatch(&line, &peer, &writer, &running);
        }
    }

    fn dispatch(
        self: &Arc<Self>,
        line: &[u8],
        peer: &Arc<OsIdentity>,
        writer: &Writer,
        running: &Running,
    ) {
        let request: protocol::Request = match serde_json::from_slice::<Value>(line) {
            Err(_) => {
                return send(
                    writer,
                    &protocol::error(None, protocol::PARSE_ERROR, "not JSON"),
                );
            }
            Ok(value) => match serde_json::from_value(value) {
                Ok(r) => r,
                Err(e) => {
                    let message = format!("not a JSON-RPC 2.0 request: {e}");
                    return send(
                        writer,
                        &protocol::error(None, protocol::INVALID_REQUEST, &message),
                    );
                }
            },
        };
        let Some(id) = request.id.clone() else {
            // A notification: nothing to answer, and no method takes one.
            return;
        };
        if request.jsonrpc != "2.0" {
            return send(
                writer,
                &protocol::error(
                    Some(&id),
                    protocol::INVALID_REQUEST,
                    "`jsonrpc` must be \"2.0\"",
                ),
            );
        }
        match request.method.as_str() {
            "run" => match serde_json::from_value::<RunParams>(request.params) {
                Ok(params) => self.submit_run(id, params, peer, writer, running),
                Err(e) => send(
                    writer,
                    &protocol::error(Some(&id), protocol::INVALID_PARAMS, &format!("run: {e}")),
                ),
            },
            "status" => {
                let (queued, running) = self.pool.load();
                let status = serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "workers": self.config.workers,
                    "queued": queued,
                    "running": running,
                    "rules": self.current.load().broker.policy().len(),
                });
                send(writer, &protocol::response(&id, &status));
            }
            "tools" | "secrets.list" | "secrets.get" | "cancel" | "token" => {
                self.dispatch_more(&id, &request.method, request.params, peer, writer, running);
            }
            other => send(
                writer,
                &protocol::error(
                    Some(&id),
                    protocol::METHOD_NOT_FOUND,
                    &format!(
                        "unknown method `{}`; methods: run, status, tools, secrets.list, secrets.get, cancel, token",
                        other.escape_debug()
                    ),
                ),
            ),
        }
    }

    /// Checks what can be checked at once (rate), then queues the run.
    fn submit_run(
        self: &Arc<Self>,
        id: Value,
        params: RunParams,
        peer: &Arc<OsIdentity>,
        writer: &Writer,
        running: &Running,
    ) {
        let agent = params.agent.clone();
        let inner = Arc::clone(self);
        let peer = Arc::clone(peer);
        let reply = Arc::clone(writer);
        let cancel = CancelToken::new();
        let key = id.to_string();
        if let Ok(mut map) = running.lock() {
            map.insert(key.clone(), cancel.clone());
        }
        let registry = Arc::clone(running);
        let work = Box::new(move || {
            let rendered = inner.run(params, &peer, cancel);
            if let Ok(mut map) = registry.lock() {
                map.remove(&key);
            }
            let result = RunResult::new(rendered.exit_code, &rendered.stdout, &rendered.stderr)
                .with_message(&rendered.message);
            send(&reply, &protocol::response(&id, &result));
        });
        if self.pool.submit(Job { agent, work }).is_err() {
            let rendered = (self.render)(Outcome::Refused {
                kind: Refused::ShuttingDown,
                message: "agentsec serve is shutting down; the run was not started".to_owned(),
            });
            let result = RunResult::new(rendered.exit_code, &rendered.stdout, &rendered.stderr);
            // The id moved into the job: answer with a null id (the client matches the
            // only request it has outstanding, or gives up).
            send(writer, &protocol::response(&Value::Null, &result));
        }
    }

    /// One run request, on a worker: identity, rate, skill, input, run; rendered.
    pub(crate) fn run(
        &self,
        params: RunParams,
        peer: &OsIdentity,
        cancel: CancelToken,
    ) -> Rendered {
        let version = self.current.load_full();
        let broker = &version.broker;
        let caller = peer.caller_info();
        let requested_name = params
            .skill
            .installed
            .as_deref()
            .or(params.skill.name.as_deref())
            .unwrap_or("skill")
            .to_owned();
        let refuse =
            |kind: Refused, message: String| (self.render)(Outcome::Refused { kind, message });
        let agent: AgentId = match params.agent.parse() {
            Ok(agent) => agent,
            Err(e) => return refuse(Refused::Usage, format!("error: --agent: {e}")),
        };
        // Identity first: a caller who may not act as the agent learns nothing more and
        // costs nothing more (no compile of what it sent).
        if let Some(message) =
            crate::service::identity_refusal(broker.policy(), &agent, peer, params.token.as_ref())
        {
            self.record_refusal(
                &agent,
                &requested_name,
                "",
                &caller,
                &format!("identity: {message}"),
            );
            return refuse(Refused::Identity, message);
        }
        if !self.take_rate_token(agent.as_str()) {
            let message = format!(
                "agent `{agent}` is over its rate of {} runs per second (--max-agent-rate); the run was not started",
                self.config.max_agent_rate
            );
            self.record_refusal(
                &agent,
                &requested_name,
                "",
                &caller,
                "limit: agent run rate exceeded",
            );
            return refuse(Refused::Limit, message);
        }
        let skill = match self.skill(&params.skill) {
            Ok(skill) => skill,
            Err((kind, message)) => return refuse(kind, message),
        };
        let run_id = match agentsec_audit::new_run_id() {
            Ok(id) => id,
            Err(e) => return refuse(Refused::Usage, format!("error: {e}")),
        };
        let request = RunRequest::new(agent, params.input, Arc::clone(broker), run_id)
            .overrides(&self.config.overrides)
            .caller(caller)
            .cancel(cancel);
        let limits = request.limits;
        if request.input.len() as u64 > limits.max_input {
            return refuse(
                Refused::Usage,
                format!(
                    "error: --input is {} bytes, larger than the {}-byte limit (--max-input)",
                    request.input.len(),
                    limits.max_input
                ),
            );
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&request.input) {
            return refuse(
                Refused::Usage,
                format!("error: --input is not valid JSON ({e}); pass JSON text or @FILE"),
            );
        }
        let report = self.runtime.run(&skill, request);
        (self.render)(Outcome::Ran {
            report,
            skill: skill.name(),
            limits: &limits,
        })
    }

    /// The skill a request names: installed (by name, from the operator's skills
    /// directory only) or sent (by bytes, cached by digest).
    fn skill(&self, spec: &protocol::SkillSpec) -> Result<Arc<LoadedSkill>, (Refused, String)> {
        let usage = |m: String| (Refused::Usage, m);
        match (&spec.installed, &spec.component) {
            (Some(name), None) => self.installed_skill(name),
            (None, Some(b64)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| usage(format!("error: the component is not valid base64: {e}")))?;
                let name = spec
                    .name
                    .as_deref()
                    .filter(|n| SkillName::parse(n).is_ok())
                    .unwrap_or("skill");
                let digest: [u8; 32] = Sha256::digest(&bytes).into();
                if let Some(hit) = self.uploads.lock().ok().and_then(|u| {
                    u.iter()
                        .find(|(d, s)| *d == digest && s.name() == name)
                        .map(|(_, s)| Arc::clone(s))
                }) {
                    return Ok(hit);
                }
                let skill = self.runtime.load_bytes(name, &bytes).map_err(load_error)?;
                let skill = Arc::new(skill);
                if let Ok(mut uploads) = self.uploads.lock() {
                    if uploads.len() >= MAX_CACHED_UPLOADS {
                        uploads.remove(0);
                    }
                    uploads.push((digest, Arc::clone(&skill)));
                }
                Ok(skill)
            }
            _ => Err(usage(
                "error: name the skill: `{\"installed\": NAME}` or `{\"component\": BASE64}`"
                    .to_owned(),
            )),
        }
    }

    pub(crate) fn installed_skill(
        &self,
        name: &str,
    ) -> Result<Arc<LoadedSkill>, (Refused, String)> {
        let path = self
            .loader
            .installed_skill(name)
            .map_err(|m| (Refused::Usage, format!("error: {m}")))?;
        let now = stamp(std::slice::from_ref(&path));
        if let Some(hit) = self.installed.lock().ok().and_then(|cache| {
            cache
                .get(name)
                .filter(|(at, _)| *at == now)
                .map(|(_, s)| Arc::clone(s))
        }) {
            return Ok(hit);
        }
        let mut skill = self.runtime.load_file(&path).map_err(load_error)?;
        skill.vouch_name();
        let skill = Arc::new(skill);
        if let Ok(mut cache) = self.installed.lock() {
            cache.insert(name.to_owned(), (now, Arc::clone(&skill)));
        }
        Ok(skill)
    }

    fn take_rate_token(&self, agent: &str) -> bool {
        let rate = self.config.max_agent_rate;
        if rate == 0 {
            return true;
        }
        let Ok(mut rates) = self.rates.lock() else {
            return false;
        };
        let now = Instant::now();
        let bucket = rates.entry(agent.to_owned()).or_insert(Bucket {
            tokens: f64::from(rate),
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * f64::from(rate);
        bucket.tokens = (bucket.tokens + refill).min(f64::from(rate));
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A refused request on the record: `run`, denied, with the caller.
    pub(crate) fn record_refusal(
        &self,
        agent: &AgentId,
        skill: &str,
        sha256: &str,
        caller: &CallerInfo,
        detail: &str,
    ) {
        let run_id = agentsec_audit::new_run_id().unwrap_or_default();
        let name =
            SkillName::parse(skill).map_or_else(|_| "skill".to_owned(), |n| n.as_str().to_owned());
        let run = RunContext::new(agent.as_str(), name, sha256, run_id).with_caller(caller.clone());
        let record = Record::new(&run, "", AccessType::Run, Decision::Deny).detail(detail);
        self.append(&record);
    }

    pub(crate) fn append(&self, record: &Record<'_>) {
        match self.audit.lock() {
            Ok(mut log) => {
                if let Err(e) = log.append(record) {
                    tracing::error!(error = %e, "could not write an audit record");
                }
            }
            Err(_) => tracing::error!("the audit log lock is poisoned"),
        }
    }

    /// The reload watcher: polls the files, reloads on change or on request.
    fn watch(&self) {
        let mut policy_stamp = stamp(&self.loader.policy_files());
        let mut store_stamp = stamp(&self.loader.store_files());
        loop {
            let asked = {
                let (flag, cv) = &self.reload;
                let Ok(guard) = flag.lock() else { return };
                let Ok((mut guard, _)) =
                    cv.wait_timeout_while(guard, self.config.reload_poll, |f| !*f)
                else {
                    return;
                };
                std::mem::take(&mut *guard)
            };
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            let policy_now = stamp(&self.loader.policy_files());
            let store_now = stamp(&self.loader.store_files());
            let policy_changed = asked || policy_now != policy_stamp;
            let store_changed = asked || store_now != store_stamp;
            if !policy_changed && !store_changed {
                continue;
            }
            // Remember what was seen even when it is refused: a broken file is reported
            // once, and the next change to it is tried again.
            policy_stamp = policy_now;
            store_stamp = store_now;
            self.reload_now(policy_changed, store_changed);
        }
    }

    /// Loads what changed; swaps in a new version only if everything loaded. A refused
    /// file keeps the old version in force, is logged and is an audit event.
    fn reload_now(&self, policy_changed: bool, store_changed: bool) {
        let old = self.current.load_full();
        let policy = if policy_changed {
            match self.loader.policy() {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    self.reload_event(
                        Decision::Deny,
                        &format!("policy refused, the previous version stays in force: {e}"),
                    );
                    tracing::error!(
                        "policy reload refused (the previous version stays in force): {e}"
                    );
                    return;
                }
            }
        } else {
            None
        };
        let store = if store_changed {
            match self.loader.store() {
                Ok(s) => Some(s),
                Err(e) => {
                    self.reload_event(
                        Decision::Deny,
                        &format!("secrets refused, the previous version stays in force: {e}"),
                    );
                    tracing::error!(
                        "secrets reload refused (the previous version stays in force): {e}"
                    );
                    return;
                }
            }
        } else {
            None
        };
        let policy_arc = policy.unwrap_or_else(|| old.broker.policy_arc());
        let (store_arc, store_ref) =
            store.unwrap_or_else(|| (old.broker.store_arc(), old.broker.audit_store().cloned()));
        let mut broker = Broker::new(policy_arc, store_arc, Arc::clone(&self.audit))
            .audit_sync(self.config.audit_sync);
        if let Some(store_ref) = store_ref {
            broker = broker.store_ref(store_ref);
        }
        self.current.store(Arc::new(Version {
            broker: Arc::new(broker),
        }));
        let what = match (policy_changed, store_changed) {
            (true, true) => "policy and secrets reloaded",
            (true, false) => "policy reloaded",
            _ => "secrets reloaded",
        };
        self.reload_event(Decision::Allow, what);
        tracing::info!("{what}");
    }

    fn reload_event(&self, decision: Decision, detail: &str) {
        let run_id = agentsec_audit::new_run_id().unwrap_or_default();
        let run =
            RunContext::new("", "agentsec-serve", "", run_id).with_caller(self.me.caller_info());
        self.append(&Record::new(&run, "", AccessType::Reload, decision).detail(detail));
    }
}

pub(crate) type Writer = Arc<Mutex<UnixStream>>;

/// The runs of one connection in progress, by request id (JSON text), for `cancel`.
pub(crate) type Running = Arc<Mutex<HashMap<String, CancelToken>>>;

/// Writes one response line; a client that went away is not an error of the daemon.
pub(crate) fn send(writer: &Writer, line: &[u8]) {
    if let Ok(mut w) = writer.lock() {
        let _ = w.write_all(line);
    }
}

fn load_error(e: agentsec_host::HostError) -> (Refused, String) {
    let kind = if e.is_limit() {
        Refused::Limit
    } else {
        Refused::Usage
    };
    (kind, format!("error: {e}"))
}

/// What the files (and, for directories, their entries) look like now; compare two
/// stamps to see whether anything changed.
pub fn stamp(paths: &[PathBuf]) -> Stamp {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).ok();
        let is_dir = meta.as_ref().is_some_and(std::fs::Metadata::is_dir);
        out.push((path.clone(), meta.map(|m| key(&m))));
        if is_dir && let Ok(entries) = std::fs::read_dir(path) {
            let mut inside: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| {
                    let p = e.path();
                    let m = std::fs::metadata(&p).ok().map(|m| key(&m));
                    (p, m)
                })
                .collect();
            inside.sort();
            out.extend(inside);
        }
    }
    out
}

fn key(m: &std::fs::Metadata) -> (u64, u64, u64, i64, i64) {
    (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec())
}
