//! `agentsec`: the operator's and reviewer's tool. One module per command
//! group; each exposes a clap `Command` and `run(command) -> Result<exit code,
//! its error>`; [`crate::error::exit`] turns that into the process's exit.

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{Error, Tool};
use crate::project::{self, Project};

pub mod audit;
pub mod exec;
pub mod mcp;
pub mod policy;
pub mod secrets;
pub mod serve;
pub mod skill;
pub mod ssh;
pub mod ssh_agent;
pub mod token;

/// Manage agent secrets, review access-control policies, check the audit log.
///
/// Skills run with `agentsec-run`; this tool is for the people around them.
/// `policy` and `audit` read their defaults (policy, secrets file, audit log,
/// audit key) from the agentsec.yaml in force, as `agentsec-run` does; flags
/// win over it.
#[derive(Debug, Parser)]
#[command(name = "agentsec", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Review access-control policies.
    #[command(subcommand)]
    Policy(policy::Command),
    /// Inspect the audit log.
    #[command(subcommand)]
    Audit(audit::Command),
    /// Decrypt, encrypt and edit SOPS files (sops-compatible).
    Secrets(secrets::SecretsArgs),
    /// Prepare skills: compile components into the cache ahead of their first run.
    #[command(subcommand)]
    Skill(skill::Command),
    /// Serve skills on a unix socket: a long-lived host that owns the keys and identifies
    /// its callers by their OS user.
    Serve(Box<serve::Args>),
    /// Run a program that is not a skill with only the named secrets (each decided by the
    /// policy for --agent and audited) in a clean environment, its output redacted.
    Exec(exec::ExecArgs),
    /// Serve the SSH agent protocol with the SOPS-held keys the policy lets --agent sign
    /// with; every signature is audited.
    SshAgent(ssh_agent::Args),
    /// Run the real ssh with a private agent (the keys --agent may sign with) that lives
    /// only for the command, and send secrets to the remote command's stdin, never in its
    /// command line.
    Ssh(ssh::Args),
    /// Serve skills as MCP tools to an agent harness (stdio, or streamable HTTP with
    /// bearer tokens): the model gets results, never credentials.
    Mcp(Box<mcp::Args>),
    /// Make bearer tokens that prove an agent id to `agentsec mcp --listen`.
    #[command(subcommand)]
    Token(token::Command),
}

/// The output format of every `agentsec` command that prints a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: aligned tables and a summary.
    #[default]
    #[value(alias = "text")]
    Human,
    /// For machines: JSON on stdout.
    Json,
}

/// What `agentsec`'s messages start with for the command line `args`: the
/// command's prefix (`agentsec policy`), or `agentsec` when none is named.
pub fn prefix(args: &[std::ffi::OsString]) -> &'static str {
    let command = args
        .iter()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'));
    match command.and_then(|c| c.to_str()) {
        Some("policy") => Tool::Policy.prefix(),
        Some("audit") => Tool::Audit.prefix(),
        Some("secrets") => Tool::Secrets.prefix(),
        Some("skill") => Tool::Skill.prefix(),
        Some("serve") => Tool::Serve.prefix(),
        Some("exec") => Tool::Exec.prefix(),
        Some("ssh-agent") => Tool::SshAgent.prefix(),
        Some("ssh") => Tool::Ssh.prefix(),
        Some("mcp") => Tool::Mcp.prefix(),
        Some("token") => Tool::Token.prefix(),
        _ => "agentsec",
    }
}

/// Runs `agentsec`: the exit code of its outcome, or the error that ended it.
pub fn main(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Policy(command) => Ok(policy::run(command)?),
        Command::Audit(command) => Ok(audit::run(command)?),
        Command::Secrets(command) => Ok(secrets::run(command)?),
        Command::Skill(command) => Ok(skill::run(command)?),
        Command::Serve(args) => Ok(serve::run(*args)?),
        Command::Exec(args) => Ok(exec::run(args)?),
        Command::SshAgent(args) => Ok(ssh_agent::run(args)?),
        Command::Ssh(args) => Ok(ssh::run(args)?),
        Command::Mcp(args) => Ok(mcp::run(*args)?),
        Command::Token(command) => Ok(token::run(command)?),
    }
}

/// The agentsec.yaml in force from the current directory (empty if none), as
/// `agentsec-run` finds it. A file that is refused is an error: it might be
/// what configures the setting asked for.
fn defaults() -> Result<Project, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    Ok(project::discover(&cwd)?.unwrap_or_default())
}

/// Writes `text` to stdout; a closed or full stdout is an error, not a panic
/// (Rust ignores `SIGPIPE`, so `println!` would panic on `EPIPE`).
fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush())
}
