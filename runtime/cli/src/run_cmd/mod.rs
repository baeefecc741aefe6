//! `agentsec-run`: run one skill for one agent.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentsec_audit::{
    AccessType, AuditLog, Decision as AuditDecision, LogOptions, Record, RunContext, StoreRef,
};
use agentsec_broker::{Broker, CancelToken};
use agentsec_host::{
    AuditSync, HostConfig, LimitOverrides, Limits, LoadedSkill, RunRequest, Runtime, ShapeAction,
};
use agentsec_policy::{AgentId, Policy};
use agentsec_server::identity::OsIdentity;
use agentsec_server::{Refused, Rendered};
use agentsec_sops::{Identities, KeySources, SopsStore};
use clap::Parser;

use crate::error::RunError;
use crate::exit;
use crate::project::{self, Project, StoreSpec};
use crate::units::{parse_duration, parse_size};

pub(crate) mod client;
mod report;

use report::report_end;
pub use report::{render, render_refusal, write_rendered};

/// How long after its deadline a run that is stuck inside a host call (where
/// neither the epoch deadline nor abandoning an async call can reach it: a
/// call blocked in the kernel) is stopped by ending the process. Its cancel
/// token is tripped half-way, in case the call returns by itself.
pub const DEADLINE_GRACE: Duration = Duration::from_secs(2);

/// How long the watchdog waits for its message to reach stderr before it
/// ends the process anyway (stderr may be a full pipe).
const WATCHDOG_MESSAGE_WAIT: Duration = Duration::from_millis(200);

/// Run a WebAssembly skill for an agent, with secrets from a SOPS file,
/// checked by policy and audited.
#[derive(Debug, Parser)]
#[command(name = "agentsec-run", version, after_long_help = exit::help(exit::RUN), after_help = exit::help(exit::RUN))]
pub struct Args {
    /// The skill: a WebAssembly component (wasm32-wasip2) of the agentsec:skill world.
    #[arg(value_name = "SKILL.wasm", required_unless_present = "show_config")]
    pub skill: Option<PathBuf>,

    /// The agent the skill runs for, e.g. `ops/release-manager`.
    #[arg(long, value_name = "ID", required_unless_present = "show_config")]
    pub agent: Option<String>,

    /// Skills directory: a component loaded from it (directly, resolving
    /// symlinks) is known by its file name, so the policy's `skills:` name
    /// entries match it; any other component is unnamed and matches only
    /// `sha256:` entries. Refused if others than you and root can write it
    /// [default: `skills_dir` from agentsec.yaml, else none].
    #[arg(long = "skills", value_name = "DIR")]
    pub skills_dir: Option<PathBuf>,

    /// Print which agentsec.yaml is in force (if any) and the settings it
    /// gives, then exit.
    #[arg(long)]
    pub show_config: bool,

    /// Output format of --show-config: `human` or `json`.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = crate::admin::Format::Human)]
    pub format: crate::admin::Format,

    /// JSON input for the skill, or `@FILE` to read it from a file (`@-`: stdin).
    #[arg(long, value_name = "JSON|@FILE", default_value = "{}")]
    pub input: String,

    /// Where secrets, policy and audit come from.
    #[command(flatten)]
    pub config: ConfigFlags,

    /// Limits of the run.
    #[command(flatten)]
    pub limits: LimitFlags,

    /// Run through `agentsec serve` on SOCKET [default: $AGENTSEC_SOCKET, else
    /// $XDG_RUNTIME_DIR/agentsec/agentsec.sock]: the daemon holds the keys and
    /// decides who you are from the socket (your OS user), not from --agent alone.
    /// SKILL is sent as bytes when it is a file here, else it names a skill
    /// installed in the daemon's skills directory.
    #[arg(long, value_name = "SOCKET")]
    pub connect: Option<Option<PathBuf>>,
}

/// Where secrets, the policy and the audit log come from (`agentsec-run`, `agentsec serve`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigFlags {
    /// SOPS-encrypted secrets file [default: from agentsec.yaml].
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,

    /// Use `secrets.NAME.yaml` next to the default secrets file.
    #[arg(long, value_name = "NAME", conflicts_with = "secrets")]
    pub env: Option<String>,

    /// Vault/OpenBao configuration (`vault-config.yaml`: address, auth, KV v2
    /// mounts). Alone it is the whole store; with --secrets both are mounted
    /// into one tree [default: `vault_config` from agentsec.yaml].
    #[arg(long, value_name = "FILE")]
    pub vault_config: Option<PathBuf>,

    /// Access-control policy file or directory of *.yaml files; repeatable
    /// [default: from agentsec.yaml].
    #[arg(long, value_name = "FILE|DIR")]
    pub policy: Vec<PathBuf>,

    /// Audit log to append to [default: from agentsec.yaml, else
    /// $XDG_STATE_HOME/agentsec/audit.log].
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,

    /// Keyed audit chain: age-encrypted file holding the HMAC key (32 bytes,
    /// raw or hex) [default: `audit_key` from agentsec.yaml, else unkeyed].
    #[arg(long, value_name = "FILE")]
    pub audit_key: Option<PathBuf>,

    /// Rotate the audit log when it would grow past SIZE, e.g. `10MiB`: it
    /// becomes `LOG.1`, `LOG.2`, ... and a new file continues the chain.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub audit_max_size: Option<usize>,

    /// When audit records are fsynced: `run` = each record is written before
    /// its value is released and all are fsynced once before the skill's
    /// output is returned; `record` = each is fsynced before its value is
    /// released [default: `audit_sync` from agentsec.yaml, else run].
    #[arg(long, value_name = "WHEN", value_parser = crate::project::parse_audit_sync)]
    pub audit_sync: Option<AuditSync>,

    /// Also ship every audit record to this sink (postgres://USER@HOST:PORT/DB,
    /// syslog+tcp://HOST:PORT, syslog+unix:///dev/log); repeatable. The
    /// local log is written first and stays the source of truth; records a
    /// sink does not take now go with the next run or `agentsec audit ship`
    /// [default: `audit.sinks` from agentsec.yaml].
    #[arg(long = "audit-sink", value_name = "URL")]
    pub audit_sinks: Vec<String>,
}

/// Limits of a run (`agentsec-run`, `agentsec serve`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LimitFlags {
    /// Wall-clock deadline, e.g. `2s`, `500ms` [default: the policy's
    /// `sandbox.timeout`, else 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Linear-memory limit, e.g. `64MiB` [default: `sandbox.max_memory`, else 128MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<usize>,

    /// Limit on each of the result, stdout and stderr, e.g. `1MiB`
    /// [default: `sandbox.max_output`, else 1MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_output: Option<usize>,

    /// Limit on get-secret and list-secrets calls per run
    /// [default: `sandbox.max_secret_calls`, else 1000].
    #[arg(long, value_name = "N")]
    pub max_secret_calls: Option<u32>,

    /// What to do when the skill's output contains a well-known credential
    /// shape (PEM private key, GitHub/Slack/AWS token) that is not a value
    /// agentsec released: `redact` it, or `fail` the run
    /// [default: `sandbox.on_credential_shape`, else redact].
    #[arg(long, value_name = "ACTION", value_parser = parse_shape_action)]
    pub on_credential_shape: Option<ShapeAction>,

    /// Limit on table elements a skill may grow a table to
    /// [default: `sandbox.max_table_elements`, else 100000].
    #[arg(long, value_name = "N")]
    pub max_table_elements: Option<usize>,

    /// Limit on core instances per component [default: `sandbox.max_instances`, else 100].
    #[arg(long, value_name = "N")]
    pub max_instances: Option<usize>,

    /// Largest component file accepted, e.g. `16MiB`
    /// [default: `sandbox.max_component_size`, else 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_component_size: Option<usize>,

    /// Longest secret path (bytes) a skill may pass; at most 1024
    /// [default: `sandbox.max_path_len`, else 1024].
    #[arg(long, value_name = "N")]
    pub max_path_len: Option<usize>,

    /// Largest `--input` accepted (inline, `@FILE` or `@-`), e.g. `1MiB`
    /// [default: `sandbox.max_input`, else 16MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_input: Option<usize>,

    /// Most functions (over all core modules) a component may have to be
    /// compiled [default: `sandbox.max_functions`, else 50000].
    #[arg(long, value_name = "N")]
    pub max_functions: Option<u64>,

    /// Most bytes of function bodies (over all core modules) a component may
    /// have to be compiled, e.g. `4MiB` [default: `sandbox.max_code_size`, else 16MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_code_size: Option<usize>,

    /// Most bytes of redaction needles (every recognised form of every value
    /// released in the run); a value that would pass it is not released
    /// (exit 4), e.g. `4MiB` [default: `sandbox.max_redaction_bytes`, else 16MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_redaction_bytes: Option<usize>,

    /// Deadline for compiling a component that is not in the cache, e.g.
    /// `10s` [default: `sandbox.compile_timeout`, else 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub compile_timeout: Option<Duration>,
}

fn parse_shape_action(text: &str) -> Result<ShapeAction, String> {
    match text {
        "redact" => Ok(ShapeAction::Redact),
        "fail" => Ok(ShapeAction::Fail),
        other => Err(format!("`{other}`: use `redact` or `fail`")),
    }
}

/// The limits asked for on the command line (each `None` when not given).
pub fn limit_flags(args: &LimitFlags) -> LimitOverrides {
    let mut o = LimitOverrides::default();
    o.timeout = args.timeout;
    o.max_memory = args.max_memory;
    o.max_output = args.max_output;
    o.max_secret_calls = args.max_secret_calls;
    o.max_table_elements = args.max_table_elements;
    o.max_instances = args.max_instances;
    o.max_component_size = args.max_component_size.map(|v| v as u64);
    o.max_path_len = args.max_path_len;
    o.max_input = args.max_input.map(|v| v as u64);
    o.max_functions = args.max_functions;
    o.max_code_size = args.max_code_size.map(|v| v as u64);
    o.max_redaction_bytes = args.max_redaction_bytes;
    o.compile_timeout = args.compile_timeout;
    o.on_credential_shape = args.on_credential_shape;
    o
}

fn config<E: std::fmt::Display>(e: E) -> RunError {
    RunError::Config(e.to_string())
}

/// What `agentsec-run` says when compiling a skill takes a while (a cache miss).
pub fn say_compiling(name: &str, bytes: usize) {
    eprintln!(
        "agentsec-run: compiling skill {name} ({:.1} MB), first run only...",
        bytes as f64 / 1e6
    );
}

/// What `main` has set up before the skill runs.
struct Prepared {
    runtime: Runtime,
    skill: LoadedSkill,
    request: RunRequest,
    limits: Limits,
    /// The audit log and the sinks it is shipped to after the run.
    audit_path: PathBuf,
    sinks: Vec<agentsec_audit::sink::SinkUrl>,
    /// `ship: sync`: the shipper, whose cursors are written when the run ends.
    synced: Option<Arc<agentsec_audit::sink::SyncShipper>>,
}

/// Runs `agentsec-run` and returns its exit code.
pub fn main(args: Args) -> Result<u8, RunError> {
    // Before any secret is in memory: no core dumps, no ptrace by the same user.
    agentsec_host::hardening::harden_process();
    let cwd = std::env::current_dir().map_err(config)?;
    let project = project::discover(&cwd).map_err(config)?.unwrap_or_default();
    if args.show_config {
        match args.format {
            crate::admin::Format::Json => println!("{}", project::describe_json(&project)),
            crate::admin::Format::Human => print!("{}", project::describe(&project)),
        }
        return Ok(exit::OK);
    }
    if let Some(socket) = connect_socket(&args) {
        return client::run(&args, &socket);
    }
    let prepared = match prepare(&args, &project)? {
        Ok(prepared) => prepared,
        Err(refused) => return Ok(write_rendered(&refused, "")),
    };
    let Prepared {
        runtime,
        skill,
        request,
        limits,
        audit_path,
        sinks,
        synced,
    } = prepared;
    let cancel = request.cancel.clone();
    let broker = Arc::clone(&request.broker);
    let mut run_ctx = RunContext::new(
        request.agent.as_str(),
        skill.name(),
        skill.sha256(),
        request.run_id.as_str(),
    )
    .with_store(broker.audit_store().cloned());
    if let Some(caller) = &request.caller {
        run_ctx = run_ctx.with_caller(caller.clone());
    }
    let watchdog = Watchdog::start(
        limits.timeout + DEADLINE_GRACE / 2,
        cancel,
        Arc::clone(broker.audit_log()),
        run_ctx,
    );
    let report = runtime.run(&skill, request);
    watchdog.stop();
    let code = report_end(report, skill.name(), &limits);
    // `ship: async`: the result is out; the records follow, and whatever a
    // sink does not take now stays behind its cursor for the next ship.
    crate::ship::after_run("agentsec-run", &audit_path, &sinks);
    if let Some(shipper) = synced {
        shipper.flush();
    }
    Ok(code)
}

/// The daemon socket to run through: `--connect [SOCKET]`, else `AGENTSEC_SOCKET`.
fn connect_socket(args: &Args) -> Option<PathBuf> {
    match &args.connect {
        Some(None) => Some(
            std::env::var_os("AGENTSEC_SOCKET")
                .filter(|s| !s.is_empty())
                .map_or_else(agentsec_server::default_socket, PathBuf::from),
        ),
        Some(Some(path)) => Some(path.clone()),
        None => std::env::var_os("AGENTSEC_SOCKET")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    }
}

/// Where secrets, the policy, the keys and the audit log come from, from the flags and
/// agentsec.yaml: what `agentsec-run` opens once and `agentsec serve` opens again on
/// every reload.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The stores, in order: SOPS files and Vault configurations.
    pub stores: Vec<StoreSpec>,
    /// Policy files and directories.
    pub policy_paths: Vec<PathBuf>,
    /// The audit log.
    pub audit_path: PathBuf,
    age_key_file: Option<PathBuf>,
    hc_vault_allowlist: Vec<String>,
    audit_key: Option<PathBuf>,
    audit_max_size: Option<usize>,
    /// When audit records are fsynced.
    pub audit_sync: AuditSync,
}

impl Sources {
    /// Resolves the flags against agentsec.yaml.
    ///
    /// # Errors
    /// A missing policy, secrets file or audit log location.
    pub fn new(flags: &ConfigFlags, project: &Project) -> Result<Sources, RunError> {
        let stores = store_specs(flags, project)?;
        let policy_paths = if flags.policy.is_empty() {
            project.policy.clone()
        } else {
            flags.policy.clone()
        };
        if policy_paths.is_empty() {
            return Err(config(
                "no policy: pass --policy FILE|DIR (or set `policy:` in agentsec.yaml)",
            ));
        }
        let audit_path = match flags
            .audit_log
            .clone()
            .or_else(|| project.audit_log.clone())
        {
            Some(path) => path,
            None => {
                default_audit_log().ok_or_else(|| config("no audit log: pass --audit-log FILE"))?
            }
        };
        Ok(Sources {
            stores,
            policy_paths,
            audit_path,
            age_key_file: project.age_key_file.clone(),
            hc_vault_allowlist: project.hc_vault_allowlist.clone(),
            audit_key: flags
                .audit_key
                .clone()
                .or_else(|| project.audit_key.clone()),
            audit_max_size: flags.audit_max_size,
            audit_sync: flags.audit_sync.or(project.audit_sync).unwrap_or_default(),
        })
    }

    /// Reads and checks the policy.
    ///
    /// # Errors
    /// The policy's own error (file:line:column).
    pub fn policy(&self) -> Result<Policy, RunError> {
        Policy::load(&self.policy_paths).map_err(config)
    }

    /// The age identities (a `SOPS_AGE_KEY_CMD` is bounded by `key_cmd_timeout`).
    ///
    /// # Errors
    /// A key source that cannot be read.
    pub fn identities(&self, key_cmd_timeout: Duration) -> Result<Identities, RunError> {
        let mut key_sources = KeySources::from_process_env();
        key_sources.cap_key_cmd_timeout(key_cmd_timeout);
        let mut identities = Identities::discover(&key_sources).map_err(config)?;
        if let Some(key_file) = &self.age_key_file {
            identities.add_file(key_file).map_err(config)?;
        }
        for origin in &self.hc_vault_allowlist {
            identities.services_mut().allow_vault_address(origin);
        }
        Ok(identities)
    }

    /// The files the stores are read from (SOPS files and Vault configurations).
    pub fn store_files(&self) -> Vec<PathBuf> {
        self.stores
            .iter()
            .map(|s| match s {
                StoreSpec::Sops(p) | StoreSpec::Vault(p) => p.clone(),
            })
            .collect()
    }

    /// Opens every store: decrypts each SOPS file (its MAC verified, its plaintext locked in
    /// memory), logs in to each Vault; several are combined into one tree (overlaps refused).
    /// `env`: the `--env` that chose the SOPS file, for the audit records.
    ///
    /// # Errors
    /// A file cannot be read, decrypted or verified; a Vault login fails; stores overlap.
    pub fn store(
        &self,
        identities: &Identities,
        env: Option<String>,
    ) -> Result<OpenedStore, RunError> {
        let mut layers = Vec::new();
        let mut refs = Vec::new();
        for spec in &self.stores {
            match spec {
                StoreSpec::Sops(file) => {
                    let store =
                        SopsStore::open(file, identities)
                            .map_err(config)?
                            .pin_with(|bytes| {
                                agentsec_host::hardening::lock_in_memory(bytes);
                            });
                    let mounts = agentsec_secrets::NameIndex::list(
                        &store,
                        &agentsec_policy::SecretPath::root(),
                    )
                    .map_err(config)?;
                    refs.push(
                        StoreRef::sops(file.display().to_string(), store.file_sha256())
                            .env(env.clone()),
                    );
                    layers.push(agentsec_secrets::Layer {
                        name: format!("SOPS file {}", file.display()),
                        store: Arc::new(store),
                        mounts,
                    });
                }
                StoreSpec::Vault(file) => {
                    let store = open_vault(file)?;
                    let engines: Vec<String> = store
                        .config()
                        .mounts
                        .iter()
                        .map(agentsec_vault::Mount::written)
                        .collect();
                    refs.push(StoreRef::vault(store.address(), engines.join(","), 2));
                    layers.push(agentsec_secrets::Layer {
                        name: format!("Vault config {}", file.display()),
                        mounts: store.mount_points(),
                        store: Arc::new(store),
                    });
                }
            }
        }
        if layers.len() == 1
            && let (Some(layer), Some(store_ref)) = (layers.pop(), refs.pop())
        {
            return Ok(OpenedStore {
                store: layer.store,
                store_ref,
            });
        }
        let mut store_ref = StoreRef::sops(
            self.store_files()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
            refs.iter()
                .filter_map(|r| r.sha256.clone())
                .collect::<Vec<_>>()
                .join(","),
        )
        .env(env);
        store_ref.kind = "stack".to_owned();
        store_ref.addr = refs.iter().find_map(|r| r.addr.clone());
        store_ref.mount = refs.iter().find_map(|r| r.mount.clone());
        let stack = agentsec_secrets::StackStore::new(layers).map_err(config)?;
        Ok(OpenedStore {
            store: Arc::new(stack),
            store_ref,
        })
    }

    /// Opens the audit log (keyed when an audit key is configured).
    ///
    /// # Errors
    /// The log or its key cannot be opened.
    pub fn audit(&self, identities: &Identities) -> Result<AuditLog, RunError> {
        self.audit_with(identities, None)
    }

    /// [`Sources::audit`], calling `hook` after every append (`ship: sync`).
    ///
    /// # Errors
    /// As [`Sources::audit`].
    pub fn audit_with(
        &self,
        identities: &Identities,
        hook: Option<Arc<dyn agentsec_audit::AppendHook>>,
    ) -> Result<AuditLog, RunError> {
        let mut options = LogOptions::new();
        if let Some(hook) = hook {
            options = options.after_append(hook);
        }
        if let Some(key_file) = &self.audit_key {
            let key = crate::audit_key::load_with(key_file, identities).map_err(config)?;
            options = options.key(key);
        }
        if let Some(max) = self.audit_max_size {
            options = options.max_size(max as u64);
        }
        AuditLog::open_with(&self.audit_path, options).map_err(config)
    }
}

/// The stores of a run, opened, and how audit records name them.
pub struct OpenedStore {
    /// One store, or a stack of them.
    pub store: Arc<dyn agentsec_secrets::SecretStore>,
    /// The `store` of audit records.
    pub store_ref: StoreRef,
}

/// Reads a `vault-config.yaml` and logs in (`VAULT_TOKEN` from agentsec's own environment
/// serves method `token` without a `token_file`).
pub(crate) fn open_vault(file: &Path) -> Result<agentsec_vault::VaultStore, RunError> {
    let config_file = agentsec_vault::VaultConfig::load(file).map_err(config)?;
    let env_token = std::env::var("VAULT_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(|t| agentsec_vault::VaultToken::new(zeroize::Zeroizing::new(t)));
    agentsec_vault::VaultStore::open_with(config_file, env_token, Some(sops_credential_reader()))
        .map_err(config)
}

/// Reads `sops:FILE#path` Vault credential sources: the leaf, decrypted in memory with the
/// keys agentsec's own environment gives SOPS (`SOPS_AGE_KEY_FILE`, ...), at each login.
pub(crate) fn sops_credential_reader() -> agentsec_vault::SopsReader {
    Arc::new(|file: &Path, path: &str| {
        let shown = file.display();
        let ids = Identities::from_process_env().map_err(|e| format!("{shown}: {e}"))?;
        let tree =
            agentsec_sops::decrypt_file(file, &ids, agentsec_sops::DecryptOptions::default())
                .map_err(|e| e.to_string())?;
        let leaf = agentsec_policy::SecretPath::parse(path)
            .map_err(|e| format!("{shown}: `{path}` is not a dotted path: {e}"))?;
        let segments: Vec<&str> = leaf.segments().collect();
        match tree.lookup(&segments) {
            agentsec_sops::Lookup::Leaf(leaf) => std::str::from_utf8(leaf.value().expose_secret())
                .map(|t| zeroize::Zeroizing::new(t.to_owned()))
                .map_err(|_| format!("{shown}: `{path}` is not UTF-8 text")),
            _ => Err(format!("{shown}: no value at `{path}`")),
        }
    })
}

/// Whether the calling process may act as `agent` (the policy's `agents:` bindings, the
/// same rule as `agentsec serve` applies to its peers). A refusal is recorded in `audit`
/// and rendered.
fn check_local_identity(
    policy: &Policy,
    agent: &AgentId,
    me: &OsIdentity,
    audit: &mut AuditLog,
    skill: &str,
) -> Result<(), Rendered> {
    let Err(refusal) = me.with_peer(|peer| policy.check_identity(agent, peer)) else {
        return Ok(());
    };
    let message = refusal.to_string();
    let run_id = agentsec_audit::new_run_id().unwrap_or_default();
    let run = RunContext::new(agent.as_str(), skill, "", run_id).with_caller(me.caller_info());
    let detail = format!("identity: {message}");
    let record = Record::new(&run, "", AccessType::Run, AuditDecision::Deny).detail(&*detail);
    if let Err(e) = audit.append(&record) {
        return Err(render_refusal(
            Refused::Usage,
            &format!("error: the refusal could not be recorded: {e}"),
        ));
    }
    Err(render_refusal(Refused::Identity, &message))
}

/// Everything before the run, failing fast: the policy parses, the caller may act as the
/// agent, the secrets decrypt and their MAC verifies, the audit log is writable, the
/// component loads and links. `Ok(Err(_))`: refused, rendered.
fn prepare(args: &Args, project: &Project) -> Result<Result<Prepared, Rendered>, RunError> {
    let (Some(skill_path), Some(agent)) = (&args.skill, &args.agent) else {
        return Err(config("pass SKILL.wasm and --agent ID"));
    };
    let agent: AgentId = agent.parse().map_err(|e| config(format!("--agent: {e}")))?;
    let sources = Sources::new(&args.config, project)?;
    let sinks = crate::ship::sinks(&args.config.audit_sinks, project).map_err(config)?;
    let policy = sources.policy()?;
    let overrides = limit_flags(&args.limits);
    let (limits, _) = Limits::resolve(&overrides, policy.sandbox());
    let input = read_input(&args.input, limits.max_input)?;
    // A blocking SOPS_AGE_KEY_CMD must not outlive the run's own deadline.
    let identities = sources.identities(limits.timeout)?;
    // The store first: a file that does not verify stops the run before anything,
    // the audit log included, is touched (a local caller could decrypt it anyway).
    let opened = sources.store(&identities, args.config.env.clone())?;
    let ship_sync = project.ship == Some(project::ShipMode::Sync) && !sinks.is_empty();
    let mut synced = None;
    let mut hook: Option<Arc<dyn agentsec_audit::AppendHook>> = None;
    if ship_sync {
        // `ship: sync`: the backlog goes now (a sink that is down stops the
        // run before it starts), then every record before its value is released.
        let shipper = agentsec_audit::sink::SyncShipper::start(
            &sources.audit_path,
            &sinks,
            &crate::ship::hostname(),
        )
        .map_err(|e| config(format!("ship: sync: {e}")))?;
        let shipper = Arc::new(shipper);
        hook = Some(Arc::clone(&shipper) as _);
        synced = Some(shipper);
    }
    let mut audit = sources.audit_with(&identities, hook)?;
    drop(identities);
    let me = OsIdentity::of_this_process().map_err(config)?;
    let shown_name = skill_path
        .file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .filter(|n| agentsec_policy::SkillName::parse(n).is_ok())
        .unwrap_or_else(|| "skill".to_owned());
    if let Err(refused) = check_local_identity(&policy, &agent, &me, &mut audit, &shown_name) {
        return Ok(Err(refused));
    }
    let runtime = Runtime::new(
        HostConfig::default()
            .with_load_limits(&limits)
            .on_slow_compile(say_compiling),
    )
    .map_err(config)?;
    let skills_dir = args.skills_dir.as_ref().or(project.skills_dir.as_ref());
    let component =
        crate::skills_dir::resolve(skills_dir.map(PathBuf::as_path), skill_path).map_err(config)?;
    let mut skill = runtime.load_file(&component.path).map_err(|e| {
        if e.is_limit() {
            RunError::Limit(e.to_string())
        } else {
            RunError::Config(e.to_string())
        }
    })?;
    if component.named {
        skill.vouch_name();
    }
    let broker = Broker::new(Arc::new(policy), opened.store, Arc::new(Mutex::new(audit)))
        .audit_sync(sources.audit_sync)
        .store_ref(opened.store_ref);
    let run_id = agentsec_audit::new_run_id().map_err(config)?;
    // The host merges the flags with the policy's `sandbox:` (as above, where the
    // limits that apply before the run were needed).
    let request = RunRequest::new(agent, input, Arc::new(broker), run_id)
        .overrides(&overrides)
        .caller(me.caller_info());
    Ok(Ok(Prepared {
        runtime,
        skill,
        request,
        limits,
        audit_path: sources.audit_path.clone(),
        // Synced sinks already have every record.
        sinks: if ship_sync { Vec::new() } else { sinks },
        synced,
    }))
}

fn max_input_hint(e: &agentsec_policy::bounded::ReadError) -> &'static str {
    match e {
        agentsec_policy::bounded::ReadError::TooLarge { .. } => " (raise it with --max-input)",
        _ => "",
    }
}

/// `--input`: inline JSON, `@-` (stdin) or `@FILE` (a regular file), at
/// most `limit` bytes, checked while reading.
pub(crate) fn read_input(arg: &str, limit: u64) -> Result<String, RunError> {
    use agentsec_policy::bounded::{read_file, read_stream};
    let mut bytes = Vec::new();
    match arg.strip_prefix('@') {
        Some("-") => read_stream(std::io::stdin().lock(), limit, &mut bytes)
            .map_err(|e| config(format!("--input @-: stdin {e}{}", max_input_hint(&e))))?,
        Some(file) => read_file(file.as_ref(), limit, &mut bytes)
            .map_err(|e| config(format!("--input @{file}: {e}{}", max_input_hint(&e))))?,
        None if arg.len() as u64 > limit => {
            return Err(config(format!(
                "--input is {} bytes, larger than the {limit}-byte limit (--max-input)",
                arg.len()
            )));
        }
        None => bytes.extend_from_slice(arg.as_bytes()),
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        config(format!(
            "--input is not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        return Err(config(format!(
            "--input is not valid JSON ({e}); pass JSON text or @FILE"
        )));
    }
    Ok(text)
}

/// The stores in force: the flags' (`--secrets`/`--env` and `--vault-config`) when any is
/// given, else agentsec.yaml's `stores:`, else its `secrets:` and `vault_config:`.
fn store_specs(flags: &ConfigFlags, project: &Project) -> Result<Vec<StoreSpec>, RunError> {
    let sops_flag = flags.secrets.is_some() || flags.env.is_some();
    if sops_flag || flags.vault_config.is_some() {
        let mut specs = Vec::new();
        if sops_flag {
            specs.push(StoreSpec::Sops(secrets_path(flags, project)?));
        }
        if let Some(file) = &flags.vault_config {
            specs.push(StoreSpec::Vault(file.clone()));
        }
        return Ok(specs);
    }
    if !project.stores.is_empty() {
        if project.secrets.is_some() || project.vault_config.is_some() {
            return Err(config(format!(
                "{}: `stores:` lists every store; remove `secrets:` and `vault_config:` (or list them under `stores:`)",
                project.file.display()
            )));
        }
        return Ok(project.stores.clone());
    }
    let mut specs = Vec::new();
    if let Some(file) = &project.secrets {
        specs.push(StoreSpec::Sops(file.clone()));
    }
    if let Some(file) = &project.vault_config {
        specs.push(StoreSpec::Vault(file.clone()));
    }
    if specs.is_empty() {
        return Err(config(
            "no secrets file: pass --secrets FILE or --vault-config FILE (or set `secrets:`, `vault_config:` or `stores:` in agentsec.yaml)",
        ));
    }
    Ok(specs)
}

fn secrets_path(args: &ConfigFlags, project: &Project) -> Result<PathBuf, RunError> {
    if let Some(path) = &args.secrets {
        return Ok(path.clone());
    }
    let default = project.secrets.clone();
    match (&args.env, default) {
        (None, Some(path)) => Ok(path),
        (Some(env), Some(path)) => {
            if env.is_empty()
                || !env
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(config(format!(
                    "--env `{env}`: use a simple name like dev, staging, prod"
                )));
            }
            Ok(path
                .parent()
                .unwrap_or(Path::new("."))
                .join(format!("secrets.{env}.yaml")))
        }
        (_, None) => Err(config(
            "no secrets file: pass --secrets FILE (or set `secrets:` in agentsec.yaml)",
        )),
    }
}

pub(crate) fn default_audit_log() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?)
            .join(".local")
            .join("state"),
    };
    Some(base.join("agentsec").join("audit.log"))
}

/// Appends a run-level audit record without waiting for the log (it may be held by the
/// stuck call). Best effort: the process is about to end.
fn record_run_event(audit: &Mutex<AuditLog>, run: &RunContext, detail: &str) -> Result<(), String> {
    let record = Record::new(run, "", AccessType::Run, AuditDecision::Deny).detail(detail);
    match audit.try_lock() {
        Ok(mut log) => log.append(&record).map(drop).map_err(|e| e.to_string()),
        Err(_) => Err("the audit log is busy".to_owned()),
    }
}

/// The last resort for a run that overstays its deadline: the runtime stops a skill at its
/// deadline in wasm code and in async WASI calls, so only a host call blocked in the kernel
/// (a hung audit disk) gets here. Half of [`DEADLINE_GRACE`] after the deadline the
/// watchdog trips the run's cancel token; if the run has still not returned at the end of
/// the grace, it ends the process (`agentsec-run` makes one run; a server would abandon the
/// thread).
struct Watchdog(std::sync::mpsc::Sender<()>);

/// What the watchdog needs to put its intervention on record.
type AuditHandle = Arc<Mutex<AuditLog>>;

impl Watchdog {
    fn start(
        after: Duration,
        cancel: CancelToken,
        audit: AuditHandle,
        run: RunContext,
    ) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(after) {
                cancel.cancel();
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(DEADLINE_GRACE / 2)
                {
                    // Best effort, and never blocking: the stuck call may hold the log.
                    let _ = record_run_event(
                        &audit,
                        &run,
                        "limit: wall-clock deadline exceeded (stuck in a host call)",
                    );
                    // stderr may be blocked (a full pipe nobody reads, held by a
                    // logger): say why from another thread, but exit regardless.
                    std::thread::spawn(|| {
                        let _ = std::io::stderr().write_all(
                            b"agentsec-run: skill stopped: wall-clock deadline exceeded (stuck in a host call)\n",
                        );
                    });
                    std::thread::sleep(WATCHDOG_MESSAGE_WAIT);
                    std::process::exit(i32::from(exit::LIMIT));
                }
            }
        });
        Watchdog(tx)
    }

    fn stop(self) {
        let _ = self.0.send(());
    }
}
