//! `agentsec ssh-agent --agent ID [--socket PATH]`: an SSH agent whose keys are the OpenSSH
//! private keys (SOPS leaves) that the policy lets `--agent` sign with (see
//! `agentsec-ssh-agent`). The keys stay in this process; clients get signatures, each one
//! decided by the policy and on the audit record.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentsec_audit::{AccessType, Decision, Record, RunContext};
use agentsec_broker::Broker;
use agentsec_policy::AgentId;
use agentsec_server::identity::OsIdentity;
use agentsec_ssh_agent::{Askpass, Keyring, SshAgent};

use crate::error::{SshAgentError, Tool};
use crate::exit;
use crate::run_cmd::{ConfigFlags, Sources};

/// How long a `SOPS_AGE_KEY_CMD` may take when the agent (re)loads the store.
const KEY_CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve the SSH agent protocol on a unix socket (mode 0600, in a 0700 directory) with the
/// keys the policy grants `--agent` at `access_level: sign`. `ssh-add -l` lists exactly
/// those; `add`, `remove` and `lock` requests are refused. Prints
/// `SSH_AUTH_SOCK=PATH; export SSH_AUTH_SOCK;` once listening. SIGHUP, or a change to a
/// policy file or the secrets file (checked every second), reloads the keys; SIGTERM or
/// SIGINT stops.
#[derive(Debug, clap::Args)]
#[command(after_help = exit::help(exit::SSH_AGENT), after_long_help = exit::help(exit::SSH_AGENT))]
pub struct Args {
    /// The agent whose keys are served (and whose callers the policy's `agents:` binds).
    #[arg(long, value_name = "ID")]
    pub agent: String,

    /// Unix socket to listen on [default: ssh-agent-ID.sock beside `agentsec serve`'s
    /// socket: $XDG_RUNTIME_DIR/agentsec/, /run/agentsec/ for root].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Where secrets, policy and audit come from.
    #[command(flatten)]
    pub config: ConfigFlags,
}

fn fail(message: impl std::fmt::Display) -> SshAgentError {
    SshAgentError(message.to_string())
}

/// Polls the policy and secrets files every [`agentsec_server::RELOAD_POLL_INTERVAL`] and
/// reloads when one changed (as `agentsec serve` does: polling sees a file replaced by
/// rename or a symlink swap the same way).
pub(crate) fn watch(loader: &Mutex<Loader>, agent: &SshAgent) {
    let files = match loader.lock() {
        Ok(l) => l.watched(),
        Err(_) => return,
    };
    let mut seen = agentsec_server::stamp(&files);
    loop {
        std::thread::sleep(agentsec_server::RELOAD_POLL_INTERVAL);
        let now = agentsec_server::stamp(&files);
        if now == seen {
            continue;
        }
        // Remember what was seen even when it is refused: a broken file is reported once.
        seen = now;
        match loader.lock() {
            Ok(l) => l.reload(agent, "a policy or secrets file changed"),
            Err(_) => return,
        }
    }
}

/// Opens the policy, the store and the audit log (once) and loads the agent's keys.
pub(crate) struct Loader {
    sources: Sources,
    pub(crate) agent: AgentId,
    pub(crate) audit: Arc<Mutex<agentsec_audit::AuditLog>>,
    pub(crate) me: OsIdentity,
    /// Whose warnings these are (`agentsec ssh-agent` or `agentsec ssh`).
    pub(crate) tool: Tool,
}

impl Loader {
    /// A loader for `agent` inside another entry point (`agentsec serve --ssh-agent`),
    /// recording into its audit log. The identity check of [`open`] does not apply: the
    /// process is a daemon, not the agent; each peer is checked as it connects.
    pub(crate) fn for_daemon(
        sources: Sources,
        agent: AgentId,
        audit: Arc<Mutex<agentsec_audit::AuditLog>>,
        me: OsIdentity,
    ) -> Loader {
        Loader {
            sources,
            agent,
            audit,
            me,
            tool: Tool::Serve,
        }
    }

    /// The files a reload reads: the policy files (and directories) and the stores' files.
    fn watched(&self) -> Vec<PathBuf> {
        let mut files = self.sources.policy_paths.clone();
        files.extend(self.sources.store_files());
        files
    }

    /// Loads the keys again and serves them (the old keyring stays in force if anything
    /// fails to load); the outcome is a `reload` record and a line on stderr.
    pub(crate) fn reload(&self, agent: &SshAgent, why: &str) {
        let (decision, detail) = match self.keyring() {
            Ok(keyring) => {
                let n = keyring.keys().len();
                agent.replace(keyring);
                eprintln!(
                    "agentsec ssh-agent: reloaded {} ({why}): serving {n} key(s)",
                    self.agent
                );
                (
                    Decision::Allow,
                    format!("ssh-agent keys reloaded ({why}): {n} served"),
                )
            }
            Err(e) => {
                self.tool.warn(format!(
                    "ssh-agent {}: reload failed, keys unchanged: {e}",
                    self.agent
                ));
                (
                    Decision::Deny,
                    format!("ssh-agent reload refused ({why}), the previous keys stay: {e}"),
                )
            }
        };
        let run_id = agentsec_audit::new_run_id().unwrap_or_default();
        let run = RunContext::new(
            self.agent.as_str(),
            agentsec_ssh_agent::SKILL_NAME,
            "00".repeat(32),
            run_id,
        )
        .with_caller(self.me.caller_info());
        let record = Record::new(&run, "", AccessType::Reload, decision).detail(&*detail);
        if let Ok(mut log) = self.audit.lock()
            && let Err(e) = log.append(&record)
        {
            Tool::SshAgent.warn(format!("the reload could not be recorded: {e}"));
        }
    }

    /// The agent's keys under the policy and store as they are now.
    pub(crate) fn keyring(&self) -> Result<Keyring, SshAgentError> {
        let policy = self.sources.policy().map_err(fail)?;
        let identities = self.sources.identities(KEY_CMD_TIMEOUT).map_err(fail)?;
        let opened = self.sources.store(&identities, None).map_err(fail)?;
        drop(identities);
        // The records name the store the key came from (`store.kind`: sops, vault, stack).
        let broker = Arc::new(
            Broker::new(Arc::new(policy), opened.store, Arc::clone(&self.audit))
                .store_ref(opened.store_ref),
        );
        let run_id = agentsec_audit::new_run_id().map_err(fail)?;
        let run = RunContext::new(
            self.agent.as_str(),
            agentsec_ssh_agent::SKILL_NAME,
            "00".repeat(32),
            run_id,
        )
        .with_caller(self.me.caller_info())
        .with_store(broker.audit_store().cloned());
        let (keyring, skipped) = Keyring::load(broker, self.agent.clone(), run);
        for why in skipped {
            self.tool.warn(format!("not served: {why}"));
        }
        Ok(keyring)
    }
}

/// Why [`open`] did not give a [`Loader`].
pub(crate) enum OpenError {
    /// Arguments, policy, keys, store or audit log.
    Config(String),
    /// The calling user may not act as the agent id (on the record).
    Refused(String),
}

impl From<OpenError> for SshAgentError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Config(m) => SshAgentError(m),
            OpenError::Refused(m) => SshAgentError(format!("refused: {m}")),
        }
    }
}

/// What `agentsec ssh-agent` and `agentsec ssh` do before any key is loaded: harden the
/// process, resolve the configuration, open the audit log, and check that the calling
/// user may act as `agent` (a refusal is recorded).
pub(crate) fn open(agent: &str, config: &ConfigFlags, tool: Tool) -> Result<Loader, OpenError> {
    let cfg = |e: String| OpenError::Config(e);
    // Before any key is in memory: no core dumps, no ptrace by the same user.
    agentsec_host::hardening::harden_process();
    let agent: AgentId = agent.parse().map_err(|e| cfg(format!("--agent: {e}")))?;
    if !config.audit_sinks.is_empty() {
        return Err(cfg(
            "--audit-sink: not shipped from agentsec ssh-agent; ship its records with \
             `agentsec audit ship`"
                .to_owned(),
        ));
    }
    let project = super::defaults().map_err(cfg)?;
    let sources = Sources::new(config, &project).map_err(|e| cfg(e.to_string()))?;
    let policy = sources.policy().map_err(|e| cfg(e.to_string()))?;
    let identities = sources
        .identities(KEY_CMD_TIMEOUT)
        .map_err(|e| cfg(e.to_string()))?;
    let mut audit = sources.audit(&identities).map_err(|e| cfg(e.to_string()))?;
    drop(identities);
    // The user who starts the agent must be one the policy lets act as the agent id, as at
    // every entry point; refused, it serves nothing.
    let me = OsIdentity::of_this_process().map_err(|e| cfg(e.to_string()))?;
    if let Err(refusal) = me.with_peer(|peer| policy.check_identity(&agent, peer)) {
        let message = refusal.to_string();
        let run_id = agentsec_audit::new_run_id().map_err(|e| cfg(e.to_string()))?;
        let run = RunContext::new(
            agent.as_str(),
            agentsec_ssh_agent::SKILL_NAME,
            "00".repeat(32),
            run_id,
        )
        .with_caller(me.caller_info());
        let detail = format!("identity: {message}");
        let record = Record::new(&run, "", AccessType::Run, Decision::Deny).detail(&*detail);
        audit.append(&record).map_err(|e| cfg(e.to_string()))?;
        return Err(OpenError::Refused(message));
    }
    drop(policy);
    Ok(Loader {
        sources,
        agent,
        audit: Arc::new(Mutex::new(audit)),
        me,
        tool,
    })
}

/// Runs `agentsec ssh-agent` until SIGTERM or SIGINT.
///
/// # Errors
/// The configuration cannot be loaded, the caller may not act as the agent id, or the
/// socket cannot be created.
pub fn run(args: Args) -> Result<u8, SshAgentError> {
    let loader = open(&args.agent, &args.config, Tool::SshAgent)?;
    let agent = loader.agent.clone();
    let keyring = loader.keyring()?;
    let served = keyring.keys().len();
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| agentsec_ssh_agent::default_socket(agent.as_str()));
    // Before the socket exists (and SSH_AUTH_SOCK is printed): a SIGHUP sent as soon as
    // the agent is reachable reloads rather than kills it.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(fail)?;
    let listener = agentsec_ssh_agent::bind(&socket).map_err(fail)?;
    let owner = rustix::process::getuid().as_raw();
    let ssh_agent = Arc::new(SshAgent::new(keyring, owner).with_askpass(Askpass::from_env()));
    eprintln!(
        "agentsec ssh-agent: serving {served} key(s) for {agent} on {}",
        socket.display()
    );
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;",
        socket.display()
    );
    let _ = stdout.flush();

    let serving = Arc::clone(&ssh_agent);
    std::thread::spawn(move || {
        if let Err(e) = serving.serve(&listener) {
            Tool::SshAgent.warn(format!("the socket failed: {e}"));
        }
    });
    // One reload at a time, whether a signal or a file change asked for it.
    let loader = Arc::new(Mutex::new(loader));
    {
        let loader = Arc::clone(&loader);
        let agent = Arc::clone(&ssh_agent);
        std::thread::spawn(move || watch(&loader, &agent));
    }
    for signal in signals.forever() {
        if signal == signal_hook::consts::SIGHUP {
            if let Ok(loader) = loader.lock() {
                loader.reload(&ssh_agent, "SIGHUP");
            }
            continue;
        }
        break;
    }
    let Ok(loader) = loader.lock() else {
        return Ok(exit::admin::OK);
    };
    let _ = std::fs::remove_file(&socket);
    // Holding the log's lock, no record is half-written when the process exits.
    let log = loader.audit.lock();
    if let Ok(mut log) = log {
        let _ = log.sync();
    }
    Ok(exit::admin::OK)
}
