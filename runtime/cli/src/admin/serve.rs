//! `agentsec serve`: the long-lived host that owns the keys (see `agentsec-server`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentsec_host::{HostConfig, Limits, Runtime};
use agentsec_secrets::SecretStore;
use agentsec_server::{Loader, Outcome, Rendered, Server, ServerConfig};

use crate::error::{ServeError, Tool};
use crate::exit;
use crate::project;
use crate::run_cmd::{ConfigFlags, LimitFlags, Sources, limit_flags, render, render_refusal};

/// Serve skills on a unix socket to callers the kernel identifies: the daemon holds the
/// keys, the decrypted store, the policy and the compiled components; each caller's OS
/// user must be bound to the agent id it asks for (the policy's `agents:`). Reloads the
/// policy and the secrets when they change (or on SIGHUP); SIGTERM stops accepting, lets
/// runs finish and syncs the audit log.
#[derive(Debug, clap::Args)]
#[command(after_help = exit::help(exit::SERVE), after_long_help = exit::help(exit::SERVE))]
pub struct Args {
    /// Unix socket to listen on; it exists only once the policy and the store are loaded
    /// [default: $XDG_RUNTIME_DIR/agentsec/agentsec.sock; /run/agentsec/agentsec.sock
    /// for root].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Group whose members may connect: the socket becomes mode 0660 and owned by it
    /// [default: none, mode 0600: only the daemon's own user].
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// Connections at once [default: 256].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Also serve the SSH agent protocol for agent ID, as `agentsec ssh-agent --agent ID`
    /// does (repeat for more agents): the keys the policy lets ID sign with, on PATH
    /// [default: ssh-agent-ID.sock beside the daemon's socket]. With --socket-group the
    /// socket is mode 0660 for that group, else 0600. Reloaded with the policy.
    #[arg(long = "ssh-agent", value_name = "ID[=PATH]")]
    pub ssh_agents: Vec<String>,

    /// Check the configuration (policy, secrets, keys, audit log, skills directory and
    /// every component in it) and exit without serving.
    #[arg(long)]
    pub check: bool,

    /// Skills, workers, secrets, policy, audit and limits.
    #[command(flatten)]
    pub host: HostFlags,
}

/// The options `agentsec serve` and `agentsec mcp` share: what the host serves and how.
#[derive(Debug, clap::Args)]
pub struct HostFlags {
    /// Skills directory (or one component file): the skills clients may run by name (a
    /// client of `serve` may also send a component's bytes, which then matches only
    /// `sha256:` entries of `skills:`) [default: `skills_dir` from agentsec.yaml, else
    /// none].
    #[arg(long = "skills", value_name = "DIR|FILE")]
    pub skills_dir: Option<PathBuf>,

    /// Runs at once [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// Requests queued before a client that sends more waits [default: 32 per worker].
    #[arg(long, value_name = "N")]
    pub queue: Option<usize>,

    /// Runs of one agent id at once (others wait their turn) [default:
    /// `sandbox.max_agent_runs`, else the number of workers].
    #[arg(long, value_name = "N")]
    pub max_agent_runs: Option<usize>,

    /// Runs one agent id may start per second; more are refused (exit 4), 0 for no
    /// limit [default: `sandbox.max_agent_rate`, else 10000].
    #[arg(long, value_name = "N")]
    pub max_agent_rate: Option<u32>,

    /// Where secrets, policy and audit come from.
    #[command(flatten)]
    pub config: ConfigFlags,

    /// Limits of each run.
    #[command(flatten)]
    pub limits: LimitFlags,
}

/// How often `agentsec serve` ships new audit records to the sinks (`ship: async`).
///
/// Reason: a central store a second behind is current for any investigation, and one
/// batch per second keeps the sink's load independent of the run rate.
const SHIP_INTERVAL: Duration = Duration::from_secs(1);

/// Longest skill name a client may ask for. Reason: a file name in the skills directory;
/// the bound keeps the lookup and its error message short.
const MAX_SKILL_NAME: usize = 255;

/// How the daemon reads the flags' files again on every reload.
pub(crate) struct CliLoader {
    pub(crate) sources: Sources,
    pub(crate) skills_dir: Option<PathBuf>,
    pub(crate) key_cmd_timeout: Duration,
}

impl Loader for CliLoader {
    fn policy(&self) -> Result<agentsec_policy::Policy, String> {
        self.sources.policy().map_err(|e| e.to_string())
    }

    fn store(&self) -> Result<(Arc<dyn SecretStore>, Option<agentsec_audit::StoreRef>), String> {
        let identities = self
            .sources
            .identities(self.key_cmd_timeout)
            .map_err(|e| e.to_string())?;
        let opened = self
            .sources
            .store(&identities, None)
            .map_err(|e| e.to_string())?;
        Ok((opened.store, Some(opened.store_ref)))
    }

    fn policy_files(&self) -> Vec<PathBuf> {
        self.sources.policy_paths.clone()
    }

    fn store_files(&self) -> Vec<PathBuf> {
        self.sources.store_files()
    }

    fn installed_skill(&self, name: &str) -> Result<PathBuf, String> {
        match &self.skills_dir {
            Some(file) if file.is_file() => {
                let stem = skill_stem(file);
                let asked = name.strip_suffix(".wasm").unwrap_or(name);
                if stem.as_deref() == Some(asked)
                    || stem.as_deref().map(|s| s.replace('_', "-")) == Some(asked.replace('_', "-"))
                {
                    Ok(file.clone())
                } else {
                    Err(format!(
                        "no skill `{}` here: the only skill is {}",
                        name.escape_debug(),
                        file.display()
                    ))
                }
            }
            dir => installed_skill(dir.as_deref(), name),
        }
    }

    fn installed_skills(&self) -> Vec<String> {
        match &self.skills_dir {
            Some(file) if file.is_file() => skill_stem(file).into_iter().collect(),
            dir => installed_skills(dir.as_deref()),
        }
    }
}

/// The file name of a component without `.wasm`.
fn skill_stem(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_str()?;
    Some(name.strip_suffix(".wasm").unwrap_or(name).to_owned())
}

/// The names of the components directly in the skills directory (`NAME.wasm`, sorted):
/// what `agentsec mcp` offers as tools. Hidden files are skipped; a name the daemon would
/// refuse to run is not listed.
pub(crate) fn installed_skills(dir: Option<&Path>) -> Vec<String> {
    let Some(dir) = dir else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".wasm")?;
            (!stem.is_empty() && !stem.starts_with('.') && stem.len() <= MAX_SKILL_NAME)
                .then(|| stem.to_owned())
        })
        .collect();
    names.sort();
    names.truncate(MAX_LISTED_SKILLS);
    names
}

/// Most skills offered from one skills directory.
///
/// Reason: each listed skill is loaded (compiled once, then cached) and sent to the
/// client in every tool list; a directory of a thousand skills is a mistake, not a
/// toolbox, and the bound keeps the listing's time and size in check.
const MAX_LISTED_SKILLS: usize = 1024;

/// The component file of the skill `name` in `dir`: `NAME.wasm` (or `NAME` with `-` as
/// `_`), a regular file directly in the trusted skills directory. A name with a `/`, a
/// NUL or a leading `.` is refused before any file is touched: the daemon opens only
/// files of its own skills directory, never a path a client names.
fn installed_skill(dir: Option<&Path>, name: &str) -> Result<PathBuf, String> {
    let Some(dir) = dir else {
        return Err(format!(
            "no skill `{}` here: agentsec serve has no skills directory (--skills DIR); send the component instead",
            name.escape_debug()
        ));
    };
    if name.is_empty()
        || name.len() > MAX_SKILL_NAME
        || name.starts_with('.')
        || name.contains(['/', '\0', '\\'])
    {
        return Err(format!(
            "`{}` is not a skill name: name a component of the daemon's skills directory (no `/`, no leading `.`)",
            name.escape_debug()
        ));
    }
    let stem = name.strip_suffix(".wasm").unwrap_or(name);
    for candidate in [
        format!("{stem}.wasm"),
        format!("{}.wasm", stem.replace('-', "_")),
    ] {
        let path = dir.join(&candidate);
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        let resolved = crate::skills_dir::resolve(Some(dir), &path)?;
        if !resolved.named {
            return Err(format!(
                "`{}` in the skills directory resolves outside it; the daemon runs only components that are in it",
                name.escape_debug()
            ));
        }
        return Ok(resolved.path);
    }
    Err(format!(
        "no skill `{}` in the daemon's skills directory",
        name.escape_debug()
    ))
}

pub(crate) fn render_outcome(outcome: Outcome<'_>) -> Rendered {
    match outcome {
        Outcome::Ran {
            report,
            skill,
            limits,
        } => render(report, skill, limits),
        Outcome::Refused { kind, message } => render_refusal(kind, &message),
        _ => render_refusal(agentsec_server::Refused::Usage, "error: unexpected outcome"),
    }
}

/// A host put together from [`HostFlags`]: everything but the socket.
pub(crate) struct Prepared {
    pub(crate) config: ServerConfig,
    pub(crate) loader: CliLoader,
    pub(crate) runtime: Runtime,
    pub(crate) audit: agentsec_audit::AuditLog,
    pub(crate) limits: Limits,
    shipping: Shipping,
}

/// How audit records reach the sinks while the host runs.
struct Shipping {
    sinks: Vec<agentsec_audit::sink::SinkUrl>,
    sync: Option<Arc<agentsec_audit::sink::SyncShipper>>,
    audit_path: PathBuf,
}

/// Reads the configuration, checks the skills directory, opens the audit log and builds
/// the runtime (`check`: nothing is shipped).
pub(crate) fn prepare(
    host: &HostFlags,
    socket: PathBuf,
    check: bool,
) -> Result<Prepared, ServeError> {
    agentsec_host::hardening::harden_process();
    let cwd = std::env::current_dir().map_err(|e| ServeError(e.to_string()))?;
    let project = project::discover(&cwd)
        .map_err(|e| ServeError(e.to_string()))?
        .unwrap_or_default();
    let err = |e: crate::error::RunError| ServeError(e.to_string());
    let sources = Sources::new(&host.config, &project).map_err(err)?;
    let policy = sources.policy().map_err(err)?;
    let overrides = limit_flags(&host.limits);
    let (limits, _) = Limits::resolve(&overrides, policy.sandbox());
    let skills_dir = host.skills_dir.clone().or(project.skills_dir.clone());
    if let Some(path) = &skills_dir {
        let dir = if path.is_file() {
            path.parent().unwrap_or(Path::new("."))
        } else {
            path.as_path()
        };
        crate::trust::check_dir(dir).map_err(|why| {
            ServeError(format!(
                "skills directory: {why}; only a directory that the daemon's user or root own and no one else can write may name skills"
            ))
        })?;
    }
    let identities = sources.identities(limits.timeout).map_err(err)?;
    let sinks = crate::ship::sinks(&host.config.audit_sinks, &project).map_err(ServeError)?;
    let ship_sync = project.ship == Some(project::ShipMode::Sync) && !sinks.is_empty();
    let mut synced = None;
    let mut hook: Option<Arc<dyn agentsec_audit::AppendHook>> = None;
    if ship_sync && !check {
        // `ship: sync`: the backlog goes now, then every record before its value is released.
        let shipper = agentsec_audit::sink::SyncShipper::start(
            &sources.audit_path,
            &sinks,
            &crate::ship::hostname(),
        )
        .map_err(|e| ServeError(format!("ship: sync: {e}")))?;
        let shipper = Arc::new(shipper);
        hook = Some(Arc::clone(&shipper) as _);
        synced = Some(shipper);
    }
    let audit = sources.audit_with(&identities, hook).map_err(err)?;
    drop(identities);
    let mut config = ServerConfig::new(socket);
    if let Some(workers) = host.workers {
        config.workers = workers.max(1);
        config.queue = config.workers * agentsec_server::DEFAULT_QUEUE_PER_WORKER;
        config.max_agent_runs = config.workers;
    }
    if let Some(queue) = host.queue {
        config.queue = queue.max(1);
    }
    match (host.max_agent_runs, policy.sandbox().max_agent_runs) {
        (Some(n), _) => config.max_agent_runs = n.max(1),
        (None, Some(n)) => config.max_agent_runs = usize::try_from(n).unwrap_or(usize::MAX).max(1),
        (None, None) => {}
    }
    match (host.max_agent_rate, policy.sandbox().max_agent_rate) {
        (Some(n), _) => config.max_agent_rate = n,
        (None, Some(n)) => config.max_agent_rate = u32::try_from(n).unwrap_or(u32::MAX),
        (None, None) => {}
    }
    config.overrides = overrides;
    config.audit_sync = sources.audit_sync;
    let pooled = u32::try_from(config.workers).unwrap_or(u32::MAX);
    let mut host_config = HostConfig::default()
        .with_load_limits(&limits)
        .pooling(pooled);
    if let Some(pooling) = host_config.pooling.as_mut() {
        // Each slot must hold the largest memory a run may have.
        pooling.max_memory = pooling.max_memory.max(limits.max_memory);
    }
    let runtime = Runtime::new(host_config).map_err(|e| ServeError(e.to_string()))?;
    let audit_path = sources.audit_path.clone();
    let loader = CliLoader {
        sources,
        skills_dir,
        key_cmd_timeout: limits.timeout,
    };
    Ok(Prepared {
        config,
        loader,
        runtime,
        audit,
        limits,
        shipping: Shipping {
            sinks: if ship_sync { Vec::new() } else { sinks },
            sync: synced,
            audit_path,
        },
    })
}

/// Ships audit records to the sinks in the background while the host runs (`ship:
/// async`); [`Shipper::finish`] sends the rest.
pub(crate) struct Shipper {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    shipping: Shipping,
    tool: &'static str,
}

impl Shipper {
    fn start(shipping: Shipping, tool: &'static str) -> Shipper {
        // `ship: async` (the default): records follow every SHIP_INTERVAL; whatever a sink
        // does not take stays behind its cursor for the next pass.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = (!shipping.sinks.is_empty()).then(|| {
            let stop = Arc::clone(&stop);
            let log = shipping.audit_path.clone();
            let sinks = shipping.sinks.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    std::thread::sleep(SHIP_INTERVAL);
                    crate::ship::after_run(tool, &log, &sinks);
                }
            })
        });
        Shipper {
            stop,
            thread,
            shipping,
            tool,
        }
    }

    /// Stops the background pass and ships what is left.
    pub(crate) fn finish(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        crate::ship::after_run(self.tool, &self.shipping.audit_path, &self.shipping.sinks);
        if let Some(shipper) = &self.shipping.sync {
            shipper.flush();
        }
    }
}

impl Prepared {
    /// Starts shipping to the sinks; returns the host's parts.
    pub(crate) fn start_shipping(
        self,
        tool: &'static str,
    ) -> (
        ServerConfig,
        CliLoader,
        Runtime,
        agentsec_audit::AuditLog,
        Shipper,
    ) {
        let shipper = Shipper::start(self.shipping, tool);
        (self.config, self.loader, self.runtime, self.audit, shipper)
    }
}

/// Runs `agentsec serve`.
///
/// # Errors
/// A configuration that does not load, or a socket that cannot be set up.
pub fn run(args: Args) -> Result<u8, ServeError> {
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(agentsec_server::default_socket);
    let prepared = prepare(&args.host, socket, args.check)?;
    if args.check {
        return check(&prepared.loader, &prepared.runtime);
    }
    let (mut config, loader, runtime, audit, shipper) = prepared.start_shipping("agentsec serve");
    if let Some(n) = args.max_connections {
        config.max_connections = n.max(1);
    }
    if let Some(group) = &args.socket_group {
        let gid = agentsec_server::identity::group_id(group).ok_or_else(|| {
            ServeError(format!(
                "--socket-group: no group `{}` on this system",
                group.escape_debug()
            ))
        })?;
        config.socket_group = Some(gid);
    }
    let audit = Arc::new(Mutex::new(audit));
    let ssh_agents = ssh_agents(&args, &config, &loader.sources, &audit)?;
    let server = Server::start(
        config,
        Box::new(loader),
        runtime,
        audit,
        Box::new(render_outcome),
    )
    .map_err(|e| ServeError(e.to_string()))?;
    Tool::Serve.note(format!("listening on {}", server.socket().display()));
    server
        .run_until_signalled()
        .map_err(|e| ServeError(format!("cannot install signal handlers: {e}")))?;
    for socket in ssh_agents {
        let _ = std::fs::remove_file(socket);
    }
    shipper.finish();
    Tool::Serve.note("stopped");
    Ok(exit::admin::OK)
}

/// `--ssh-agent ID[=PATH]`: one SSH agent per agent id, recording into the daemon's
/// audit log, reloaded when a policy or store file changes or on SIGHUP. Returns the
/// sockets (removed at shutdown).
fn ssh_agents(
    args: &Args,
    config: &ServerConfig,
    sources: &Sources,
    audit: &Arc<Mutex<agentsec_audit::AuditLog>>,
) -> Result<Vec<PathBuf>, ServeError> {
    use super::ssh_agent::{Loader, watch};
    let mut sockets = Vec::new();
    let mut agents = Vec::new();
    let me = agentsec_server::identity::OsIdentity::of_this_process()
        .map_err(|e| ServeError(e.to_string()))?;
    for spec in &args.ssh_agents {
        let (id, path) = match spec.split_once('=') {
            Some((id, path)) => (id, Some(PathBuf::from(path))),
            None => (spec.as_str(), None),
        };
        let agent: agentsec_policy::AgentId = id.parse().map_err(|e| {
            ServeError(format!(
                "--ssh-agent {}: {e}; write --ssh-agent ID or --ssh-agent ID=PATH",
                spec.escape_debug()
            ))
        })?;
        let socket = path.unwrap_or_else(|| {
            let dir = config.socket.parent().unwrap_or(Path::new("."));
            dir.join(format!(
                "ssh-agent-{}.sock",
                agent.as_str().replace('/', "_")
            ))
        });
        if socket == config.socket || sockets.contains(&socket) {
            return Err(ServeError(format!(
                "--ssh-agent {}: {} is already another socket of this daemon; give each agent \
                 its own (ID=PATH)",
                spec.escape_debug(),
                socket.display()
            )));
        }
        let loader = Loader::for_daemon(
            sources.clone(),
            agent.clone(),
            Arc::clone(audit),
            me.clone(),
        );
        let keyring = loader
            .keyring()
            .map_err(|e| ServeError(format!("--ssh-agent {agent}: {e}")))?;
        let served = keyring.keys().len();
        let listener = match config.socket_group {
            Some(gid) => agentsec_ssh_agent::bind_for_group(&socket, gid),
            None => agentsec_ssh_agent::bind(&socket),
        }
        .map_err(|e| ServeError(format!("--ssh-agent {agent}: {e}")))?;
        let owner = rustix::process::getuid().as_raw();
        let ssh_agent = Arc::new(
            agentsec_ssh_agent::SshAgent::new(keyring, owner)
                .with_askpass(agentsec_ssh_agent::Askpass::from_env()),
        );
        Tool::Serve.note(format!(
            "ssh-agent for {agent}: serving {served} key(s) on {}",
            socket.display()
        ));
        let serving = Arc::clone(&ssh_agent);
        std::thread::spawn(move || {
            if let Err(e) = serving.serve(&listener) {
                Tool::Serve.warn(format!("an ssh-agent socket failed: {e}"));
            }
        });
        let loader = Arc::new(Mutex::new(loader));
        {
            let (loader, ssh_agent) = (Arc::clone(&loader), Arc::clone(&ssh_agent));
            std::thread::spawn(move || watch(&loader, &ssh_agent));
        }
        agents.push((loader, ssh_agent));
        sockets.push(socket);
    }
    if !agents.is_empty() {
        // The daemon's own SIGHUP handler reloads the skills' policy; this one the keys.
        let mut hup = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
            .map_err(|e| ServeError(format!("cannot install signal handlers: {e}")))?;
        std::thread::spawn(move || {
            for _ in hup.forever() {
                for (loader, agent) in &agents {
                    if let Ok(loader) = loader.lock() {
                        loader.reload(agent, "SIGHUP");
                    }
                }
            }
        });
    }
    Ok(sockets)
}

/// `--check`: the store opens and verifies, and every installed component loads.
fn check(loader: &CliLoader, runtime: &Runtime) -> Result<u8, ServeError> {
    loader.store().map_err(ServeError)?;
    let mut skills = 0;
    if let Some(dir) = &loader.skills_dir {
        let paths: Vec<PathBuf> = if dir.is_file() {
            vec![dir.clone()]
        } else {
            std::fs::read_dir(dir)
                .map_err(|e| ServeError(format!("skills directory {}: {e}", dir.display())))?
                .flatten()
                .map(|e| e.path())
                .collect()
        };
        for path in paths {
            if path.extension().is_some_and(|e| e == "wasm") {
                runtime
                    .load_file(&path)
                    .map_err(|e| ServeError(format!("skills directory: {e}")))?;
                skills += 1;
            }
        }
    }
    Tool::Serve.note(format!(
        "configuration ok: policy, secrets ({}), audit log ({}), {skills} skills",
        loader
            .sources
            .store_files()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        loader.sources.audit_path.display()
    ));
    Ok(exit::admin::OK)
}
