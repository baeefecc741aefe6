//! `agentsec exec --agent ID --env NAME=PATH... [--file NAME=PATH...] -- COMMAND [ARGS...]`:
//! run a program that is not a skill (an MCP server that wants `POSTGRES_PASSWORD` in its
//! environment) with only the named secrets, each decided by the policy for the agent and
//! audited like a skill's read. The replacement for `sops exec-env` / `exec-file`, which hand
//! the child every value of the file.
//!
//! - **Decision and audit.** Every path is asked of the [`Broker`] as
//!   [`Operation::Read`] by the caller (agent `--agent`, skill `exec` whose digest is the
//!   SHA-256 of the program file), so a policy rule that allows the agent to read the path
//!   allows it here, a rule that names skills must name `exec`, and each request is one
//!   audit record (`access_type: read`, `skill_name: exec`). A run event records the command
//!   started and how it ended. If any path is refused, the command does not start.
//! - **Environment.** The child starts with an empty environment plus `--inherit-env`
//!   names (e.g. `PATH`, `HOME`) and the `--env` values. `--file NAME=PATH` puts the value in
//!   a sealed memfd (Linux `memfd_create`, no file on any file system) inherited by the child,
//!   and sets `NAME` to `/proc/self/fd/N`, a path the child can open; it is gone when the
//!   child and agentsec have exited.
//! - **Output.** The child's stdout and stderr are redacted line by line with the run's
//!   redactor (every released value in every form a skill's output is checked for);
//!   stdin is the child's own.
//! - **Exit.** The child's exit status, or 128 + signal; agentsec's own failures use
//!   [`exit::exec`] codes and the child then never starts.
//!
//! The calling user must be allowed to act as `--agent` by the policy's `agents:` bindings
//! (the rule of every entry point): checked before the first request; a refusal is on the
//! record (exit 3, the child never starts). Every record carries the caller (uid, user,
//! pid).

use std::ffi::OsString;
use std::io::{BufRead, Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use agentsec_audit::{AuditLog, LogOptions, RunContext};
use agentsec_broker::{Broker, Caller, CallerLimits, Redaction};
use agentsec_policy::{AgentId, Operation, Policy, SkillDigest, SkillName, SkillRef};
use agentsec_redact::Redactor;
use agentsec_sops::{Identities, KeySources, SopsStore};
use clap::Args;
use sha2::Digest;

use crate::error::ExecError;
use crate::exit;

/// Most `--env` and `--file` secrets one exec may name. A command needs a handful; the bound
/// keeps one command line from asking the broker for the whole store.
pub const MAX_EXEC_SECRETS: u32 = 64;

/// Bytes of redaction needles (every form of every value released): as a skill run's default.
const MAX_REDACTION_BYTES: usize = 4 << 20;

/// Longest line of the child's output held before it is redacted and written (a longer one is
/// cut there): a value split across two pieces of one line longer than this is not found.
const MAX_LINE: usize = 1 << 20;

/// `agentsec exec` arguments.
#[derive(Debug, Args)]
#[command(after_help = exit::help(exit::EXEC))]
pub struct ExecArgs {
    /// The agent the command runs for (the policy decides per path for it).
    #[arg(long, value_name = "ID")]
    agent: String,
    /// NAME=PATH: put the secret at PATH in the child's environment as NAME.
    #[arg(long = "env", value_name = "NAME=PATH")]
    env: Vec<String>,
    /// NAME=PATH: put the secret at PATH in a memfd and NAME=/proc/self/fd/N in the child's
    /// environment.
    #[arg(long = "file", value_name = "NAME=PATH")]
    file: Vec<String>,
    /// Pass these variables of agentsec's environment through to the child (repeatable, or
    /// comma-separated). Nothing else is passed.
    #[arg(long = "inherit-env", value_name = "NAME")]
    inherit_env: Vec<String>,
    /// The SOPS secrets file (default: `secrets:` in agentsec.yaml).
    #[arg(long, value_name = "FILE")]
    secrets: Option<PathBuf>,
    /// Policy files or directories (default: `policy:` in agentsec.yaml).
    #[arg(long, value_name = "FILE|DIR")]
    policy: Vec<PathBuf>,
    /// The audit log (default: `audit_log:` in agentsec.yaml, else the state directory's).
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

fn config(message: impl std::fmt::Display) -> ExecError {
    ExecError::Config(message.to_string())
}

/// A `NAME=PATH` pair with a valid environment variable name.
fn name_path(arg: &str, flag: &str) -> Result<(String, String), ExecError> {
    let (name, path) = arg
        .split_once('=')
        .ok_or_else(|| config(format!("{flag} {arg:?}: expected NAME=PATH")))?;
    valid_name(name).map_err(|why| config(format!("{flag} {arg:?}: {why}")))?;
    if path.is_empty() {
        return Err(config(format!("{flag} {arg:?}: the secret path is empty")));
    }
    Ok((name.to_owned(), path.to_owned()))
}

fn valid_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "{name:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
        ));
    }
    Ok(())
}

/// The program's absolute path: as given if it has a `/`, else looked up on `PATH`.
fn resolve_program(program: &OsString) -> Result<PathBuf, ExecError> {
    let p = Path::new(program);
    if p.components().count() > 1 || p.is_absolute() {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(ExecError::NotFound(p.display().to_string()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(p))
        .find(|c| c.is_file())
        .ok_or_else(|| ExecError::NotFound(p.display().to_string()))
}

fn sha256_file(path: &Path) -> Result<[u8; 32], ExecError> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| ExecError::CannotRun(format!("{}: {e}", path.display())))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| ExecError::CannotRun(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Runs `agentsec exec`: the child's exit status.
pub fn run(args: ExecArgs) -> Result<u8, ExecError> {
    let project = super::defaults().map_err(config)?;
    let agent: AgentId = args
        .agent
        .parse()
        .map_err(|e| config(format!("--agent: {e}")))?;
    let mut wanted = Vec::new();
    for e in &args.env {
        let (name, path) = name_path(e, "--env")?;
        wanted.push((name, path, false));
    }
    for f in &args.file {
        let (name, path) = name_path(f, "--file")?;
        wanted.push((name, path, true));
    }
    if wanted.len() > MAX_EXEC_SECRETS as usize {
        return Err(config(format!(
            "{} secrets named; at most {MAX_EXEC_SECRETS} (MAX_EXEC_SECRETS)",
            wanted.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, _, _) in &wanted {
        if !seen.insert(name.clone()) {
            return Err(config(format!("{name} is named twice")));
        }
    }
    let inherit: Vec<String> = args
        .inherit_env
        .iter()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    for name in &inherit {
        valid_name(name).map_err(|why| config(format!("--inherit-env: {why}")))?;
    }
    let program = resolve_program(&args.command[0])?;
    let digest = sha256_file(&program)?;

    let secrets_file = args
        .secrets
        .clone()
        .or(project.secrets.clone())
        .ok_or_else(|| {
            config("no secrets file: pass --secrets FILE (or set `secrets:` in agentsec.yaml)")
        })?;
    let policy_paths = if args.policy.is_empty() {
        project.policy.clone()
    } else {
        args.policy.clone()
    };
    if policy_paths.is_empty() {
        return Err(config(
            "no policy: pass --policy FILE|DIR (or set `policy:` in agentsec.yaml)",
        ));
    }
    let audit_path = match args.audit_log.clone().or(project.audit_log.clone()) {
        Some(p) => p,
        None => crate::run_cmd::default_audit_log()
            .ok_or_else(|| config("no audit log: pass --audit-log FILE"))?,
    };
    let policy = Policy::load(&policy_paths).map_err(config)?;
    let mut identities = Identities::discover(&KeySources::from_process_env()).map_err(config)?;
    if let Some(key_file) = &project.age_key_file {
        identities.add_file(key_file).map_err(config)?;
    }
    for origin in &project.hc_vault_allowlist {
        identities.services_mut().allow_vault_address(origin);
    }
    let store = SopsStore::open(&secrets_file, &identities).map_err(config)?;
    let mut audit_options = LogOptions::new();
    if let Some(key_file) = &project.audit_key {
        let key = crate::audit_key::load_with(key_file, &identities).map_err(config)?;
        audit_options = audit_options.key(key);
    }
    drop(identities);
    let mut audit = AuditLog::open_with(&audit_path, audit_options).map_err(config)?;
    let me = agentsec_server::identity::OsIdentity::of_this_process().map_err(config)?;
    if let Err(refusal) = me.with_peer(|peer| policy.check_identity(&agent, peer)) {
        let message = refusal.to_string();
        let run_id = agentsec_audit::new_run_id().map_err(config)?;
        let run = RunContext::new(agent.as_str(), "exec", hex::encode(digest), run_id)
            .with_caller(me.caller_info());
        let detail = format!("identity: {message}");
        let record = agentsec_audit::Record::new(
            &run,
            "",
            agentsec_audit::AccessType::Run,
            agentsec_audit::Decision::Deny,
        )
        .detail(&*detail);
        audit.append(&record).map_err(config)?;
        return Err(ExecError::Denied(message));
    }
    let broker = Broker::new(
        Arc::new(policy),
        Arc::new(store),
        Arc::new(Mutex::new(audit)),
    );

    let run_id = agentsec_audit::new_run_id().map_err(config)?;
    let digest_hex = hex::encode(digest);
    let run =
        RunContext::new(agent.as_str(), "exec", digest_hex, run_id).with_caller(me.caller_info());
    // Dynamic credentials issued for the command are revoked when it is over.
    let _ended = broker.end_run_on_drop(&run);
    let skill = SkillRef::new(
        SkillName::parse("exec").map_err(config)?,
        SkillDigest::from_bytes(digest),
    );
    let mut caller = Caller::new(
        agent,
        skill,
        run.clone(),
        CallerLimits::new(MAX_EXEC_SECRETS, agentsec_policy::MAX_PATH_LEN),
        Redactor::with_limit(MAX_REDACTION_BYTES),
    );

    let mut cmd = Command::new(&program);
    cmd.args(&args.command[1..]).env_clear();
    for name in &inherit {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    // Kept open until the child has exited: the child reads /proc/self/fd/N.
    let mut memfds = Vec::new();
    let mut refused = Vec::new();
    for (name, path, as_file) in &wanted {
        match broker.request(&mut caller, Operation::Read, path) {
            Ok(released) => {
                let bytes = released.value.expose_secret();
                if *as_file {
                    let fd = memfd_with(name, bytes)?;
                    cmd.env(name, format!("/proc/self/fd/{}", fd_number(&fd)));
                    memfds.push(fd);
                } else {
                    if bytes.contains(&0) {
                        refused.push(format!(
                            "{path}: the value holds a NUL byte and cannot be an environment \
                             variable; pass it with --file"
                        ));
                        continue;
                    }
                    cmd.env(name, OsString::from_vec(bytes.to_vec()));
                }
            }
            Err(refusal) => refused.push(format!("{path}: {refusal}")),
        }
    }
    if !refused.is_empty() {
        let _ = broker.record_run_event(&run, "exec refused: the command was not started");
        let _ = broker.sync();
        return Err(ExecError::Denied(refused.join("\n")));
    }
    broker
        .record_run_event(&run, &format!("exec start: {}", program.display()))
        .map_err(config)?;
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| ExecError::CannotRun(format!("{}: {e}", program.display())))?;
    let caller = Arc::new(Mutex::new(caller));
    let out = child
        .stdout
        .take()
        .map(|r| pump(r, std::io::stdout(), Arc::clone(&caller)));
    let err = child
        .stderr
        .take()
        .map(|r| pump(r, std::io::stderr(), Arc::clone(&caller)));
    let status = child
        .wait()
        .map_err(|e| ExecError::CannotRun(format!("waiting for the command: {e}")))?;
    for t in [out, err].into_iter().flatten() {
        let _ = t.join();
    }
    drop(memfds);
    let code = passthrough_code(status);
    let _ = broker.record_run_event(&run, &format!("exec end: exit {code}"));
    broker.sync().map_err(config)?;
    Ok(code)
}

/// Copies `reader` to `writer` line by line, each line redacted with the caller's redactor.
fn pump<R: Read + Send + 'static, W: Write + Send + 'static>(
    reader: R,
    mut writer: W,
    caller: Arc<Mutex<Caller<Redactor>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(reader);
        let mut line = zeroize::Zeroizing::new(Vec::new());
        loop {
            line.clear();
            let n = match (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let text = String::from_utf8_lossy(&line[..n]);
            let redacted = match caller.lock() {
                Ok(mut c) => c.redactor().redact_text(&text),
                Err(_) => break,
            };
            if writer
                .write_all(redacted.as_bytes())
                .and_then(|()| writer.flush())
                .is_err()
            {
                break;
            }
        }
    })
}

/// A sealed memfd holding `bytes`, inheritable by the child (no `MFD_CLOEXEC`).
fn memfd_with(name: &str, bytes: &[u8]) -> Result<std::os::fd::OwnedFd, ExecError> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd = rustix::fs::memfd_create(format!("agentsec-{name}"), MemfdFlags::ALLOW_SEALING)
        .map_err(|e| config(format!("memfd_create: {e}")))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)
        .map_err(|e| config(format!("writing the memfd: {e}")))?;
    let fd = std::os::fd::OwnedFd::from(file);
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )
    .map_err(|e| config(format!("sealing the memfd: {e}")))?;
    Ok(fd)
}

fn fd_number(fd: &std::os::fd::OwnedFd) -> i32 {
    std::os::fd::AsRawFd::as_raw_fd(fd)
}

/// A child's exit status as ours: its code, or 128 + the signal that ended it (the
/// shell's convention); 1 when it says neither.
pub(crate) fn passthrough_code(status: std::process::ExitStatus) -> u8 {
    match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => u8::try_from(c).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        _ => 1,
    }
}
