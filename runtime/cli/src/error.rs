//! The errors of `agentsec-run` and of each `agentsec` command, and the one place where an
//! error becomes a message on stderr and an exit code (as rage's `error.rs`).
//!
//! Every line the tools write to stderr about their own work starts with the tool's name:
//! `agentsec-run: ` or `agentsec <command>: ` (`agentsec policy: `, `agentsec audit: `,
//! `agentsec secrets: `). An error that ends the command follows it with `error: `, a
//! warning with `warning: `; a report (a skill's outcome, what `pin` changed) has no tag.
//! Lines that mimic another tool's interactive output (`agentsec secrets keygen`'s `Public
//! key:` as age-keygen, `updatekeys`' prompt as sops) keep that tool's form.
//!
//! The codes are the tables in [`crate::exit`]; each `exit_code` below returns one of them,
//! and a test checks that every code is documented there.

use std::fmt;
use std::path::PathBuf;

use agentsec_audit::VerifyError;
use agentsec_sops::SopsError;

use crate::exit;

/// Which tool or command a message is from: its prefix on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `agentsec-run`.
    Run,
    /// `agentsec policy`.
    Policy,
    /// `agentsec audit`.
    Audit,
    /// `agentsec secrets`.
    Secrets,
    /// `agentsec skill`.
    Skill,
    /// `agentsec serve`.
    Serve,
    /// `agentsec exec`.
    Exec,
    /// `agentsec ssh-agent`.
    SshAgent,
    /// `agentsec ssh`.
    Ssh,
    /// `agentsec mcp`.
    Mcp,
    /// `agentsec token`.
    Token,
}

impl Tool {
    /// What every stderr line of this tool starts with, before `: `.
    pub fn prefix(self) -> &'static str {
        match self {
            Tool::Run => "agentsec-run",
            Tool::Policy => "agentsec policy",
            Tool::Audit => "agentsec audit",
            Tool::Secrets => "agentsec secrets",
            Tool::Skill => "agentsec skill",
            Tool::Serve => "agentsec serve",
            Tool::Exec => "agentsec exec",
            Tool::SshAgent => "agentsec ssh-agent",
            Tool::Ssh => "agentsec ssh",
            Tool::Mcp => "agentsec mcp",
            Tool::Token => "agentsec token",
        }
    }

    /// The exit-code table of this tool.
    pub fn exit_codes(self) -> &'static [exit::ExitCode] {
        match self {
            Tool::Run => exit::RUN,
            Tool::Policy => exit::POLICY,
            Tool::Audit => exit::AUDIT,
            Tool::Secrets => exit::SECRETS,
            Tool::Skill => exit::SKILL,
            Tool::Serve => exit::SERVE,
            Tool::Exec => exit::EXEC,
            Tool::SshAgent => exit::SSH_AGENT,
            Tool::Ssh => exit::SSH,
            Tool::Mcp => exit::MCP,
            Tool::Token => exit::TOKEN,
        }
    }

    /// Writes `{prefix}: warning: {message}` to stderr.
    pub fn warn(self, message: impl fmt::Display) {
        eprintln!("{}: warning: {message}", self.prefix());
    }

    /// Writes `{prefix}: {message}` (a report, not an error) to stderr.
    pub fn note(self, message: impl fmt::Display) {
        eprintln!("{}: {message}", self.prefix());
    }
}

/// An error that ends a command: where it is from and its exit code.
pub trait Failure: fmt::Display {
    /// The tool whose message this is.
    fn tool(&self) -> Tool;
    /// The exit code, from the tool's table in [`crate::exit`].
    fn exit_code(&self) -> u8;
}

/// The end of every command: `Ok(code)` exits with `code` (a command's outcome, e.g. a
/// skill's result or a widening `diff`); an error is printed as `{prefix}: error: {message}`
/// and exits with its code.
pub fn exit<E: Failure>(result: Result<u8, E>) -> std::process::ExitCode {
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("{}: error: {e}", e.tool().prefix());
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

/// Parses the command line as clap does, except that a command line that does not parse
/// is reported like every other error: `{prefix}: error: ` and clap's message, usage and
/// tip, exit 2 (the usage code of every table). `--help` and `--version` print as clap
/// prints them.
///
/// # Errors
/// The exit code to end with, after the message is printed.
pub fn parse<P: clap::Parser>(
    prefix: impl FnOnce(&[std::ffi::OsString]) -> &'static str,
) -> Result<P, std::process::ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    P::try_parse_from(&args).map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(
            e.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            e.exit();
        }
        let text = e.render().to_string();
        let text = text.strip_prefix("error: ").unwrap_or(&text);
        eprint!("{}: error: {text}", prefix(&args));
        std::process::ExitCode::from(USAGE)
    })
}

/// The exit code of a command line that does not parse, in every tool's table.
pub const USAGE: u8 = 2;

/// Why `agentsec-run` did not run the skill.
#[derive(Debug)]
pub enum RunError {
    /// Usage or configuration: flags, agentsec.yaml, policy, secrets file, keys, audit log,
    /// input, or a component that does not load.
    Config(String),
    /// A load limit refused the component (`--max-functions`, `--max-code-size`,
    /// `--compile-timeout`, `--max-component-size`).
    Limit(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Config(m) | RunError::Limit(m) => f.write_str(m),
        }
    }
}

impl Failure for RunError {
    fn tool(&self) -> Tool {
        Tool::Run
    }

    fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) => exit::CONFIG,
            RunError::Limit(_) => exit::LIMIT,
        }
    }
}

/// Why an `agentsec policy` command failed.
#[derive(Debug)]
pub enum PolicyError {
    /// A policy file does not load (`file:line:column` in the message).
    Policy(agentsec_policy::PolicyError),
    /// An argument does not parse: which one, and why.
    Argument {
        /// The flag or argument, as `--help` names it (`--agent`, `PATH`).
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// No `--policy` and no `policy:` in agentsec.yaml.
    NoPolicy,
    /// The secrets file cannot be read or is not a SOPS file.
    Secrets {
        /// Where it was named: `--secrets`, or `secrets` of an agentsec.yaml.
        setting: String,
        /// Why.
        source: SopsError,
    },
    /// The agentsec.yaml in force is refused or invalid.
    Project(String),
    /// A `--vault-config` cannot be read, or its mounts cannot be listed.
    Vault(String),
    /// `pin` could not read a component or rewrite the policy.
    Pin(String),
    /// The report could not be written to stdout.
    Output(std::io::Error),
}

impl From<agentsec_policy::PolicyError> for PolicyError {
    fn from(e: agentsec_policy::PolicyError) -> Self {
        PolicyError::Policy(e)
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Policy(e) => write!(f, "{e}"),
            PolicyError::Argument { name, reason } => write!(f, "{name}: {reason}"),
            PolicyError::NoPolicy => {
                f.write_str("no policy: pass --policy FILE|DIR (or set `policy:` in agentsec.yaml)")
            }
            PolicyError::Secrets { setting, source } => write!(f, "{setting}: {source}"),
            PolicyError::Project(m) | PolicyError::Pin(m) | PolicyError::Vault(m) => f.write_str(m),
            PolicyError::Output(e) => write!(f, "could not write the report to stdout: {e}"),
        }
    }
}

impl Failure for PolicyError {
    fn tool(&self) -> Tool {
        Tool::Policy
    }

    fn exit_code(&self) -> u8 {
        match self {
            PolicyError::Policy(_) => exit::admin::FAILED,
            PolicyError::Argument { .. }
            | PolicyError::NoPolicy
            | PolicyError::Secrets { .. }
            | PolicyError::Project(_)
            | PolicyError::Vault(_)
            | PolicyError::Pin(_)
            | PolicyError::Output(_) => exit::admin::USAGE,
        }
    }
}

/// Why an `agentsec audit` command failed.
#[derive(Debug)]
pub enum AuditError {
    /// An argument does not parse: which one, and why.
    Argument {
        /// The flag, as `--help` names it.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// No LOG, no `audit_log:` in agentsec.yaml and no default location.
    NoLog,
    /// The log's files cannot be listed or read, or there is none.
    Log(String),
    /// The chain key cannot be loaded, or agentsec.yaml is refused.
    Key(String),
    /// The chain does not verify.
    Verify(VerifyError),
    /// The report could not be written to stdout.
    Output(std::io::Error),
    /// A sink (or the central store) refused, or the log cannot be shipped.
    Sink(agentsec_audit::sink::SinkError),
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::Argument { name, reason } => write!(f, "{name}: {reason}"),
            AuditError::NoLog => f.write_str(
                "no audit log: pass LOG (or set `audit_log:` in agentsec.yaml, or HOME for the default $XDG_STATE_HOME/agentsec/audit.log)",
            ),
            AuditError::Log(m) | AuditError::Key(m) => f.write_str(m),
            AuditError::Verify(e) => write!(f, "{e}"),
            AuditError::Output(e) => write!(f, "could not write the report to stdout: {e}"),
            AuditError::Sink(e) => write!(f, "{e}"),
        }
    }
}

impl Failure for AuditError {
    fn tool(&self) -> Tool {
        Tool::Audit
    }

    fn exit_code(&self) -> u8 {
        match self {
            // An unreadable file is a usage problem (a wrong path), not a broken chain.
            AuditError::Verify(VerifyError::Io { .. }) => exit::admin::USAGE,
            AuditError::Verify(_) => exit::admin::FAILED,
            AuditError::Sink(agentsec_audit::sink::SinkError::Url { .. }) => exit::admin::USAGE,
            // A store that is down, a fork, a log that cannot be shipped: the
            // records are not (all) where they should be.
            AuditError::Sink(_) => exit::admin::FAILED,
            AuditError::Argument { .. }
            | AuditError::NoLog
            | AuditError::Log(_)
            | AuditError::Key(_)
            | AuditError::Output(_) => exit::admin::USAGE,
        }
    }
}

/// Why an `agentsec secrets` command failed. Codes follow sops where they overlap.
#[derive(Debug)]
pub enum SecretsError {
    /// From the SOPS library, with sops' code ([`SopsError::exit_code`]).
    Sops(SopsError),
    /// The edited text was not accepted (does not parse): FILE is unchanged.
    EditRejected {
        /// The file that was being edited.
        file: PathBuf,
        /// Why.
        source: SopsError,
    },
    /// FILE does not exist (sops' wording and code).
    NotFound(PathBuf),
    /// FILE, stdin or the edited text could not be read.
    Read(String),
    /// The output or FILE could not be written.
    Write(String),
    /// The current directory cannot be read.
    Cwd(std::io::Error),
    /// A `set`/`unset` path that does not parse.
    InvalidPath {
        /// `set` or `unset`.
        command: &'static str,
        /// Why.
        reason: String,
    },
    /// No recipients to encrypt for: why.
    NoRecipients(&'static str),
    /// A malformed `--encryption-context` (sops' 6).
    KmsContext(String),
    /// Stopped by the user or the editor, or refused before anything was written.
    Failed(String),
    /// No editor could be started.
    NoEditor(String),
    /// A `--vault-config` that cannot be used, or leaves it does not mount (`push`).
    VaultConfig(String),
}

impl From<SopsError> for SecretsError {
    fn from(e: SopsError) -> Self {
        SecretsError::Sops(e)
    }
}

impl fmt::Display for SecretsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretsError::Sops(e) => write!(f, "{e}"),
            SecretsError::EditRejected { file, source } => {
                write!(f, "{source}\n{} was not changed", file.display())
            }
            SecretsError::NotFound(file) => {
                write!(f, "cannot operate on non-existent file {file:?}")
            }
            SecretsError::Read(m)
            | SecretsError::Write(m)
            | SecretsError::Failed(m)
            | SecretsError::KmsContext(m)
            | SecretsError::VaultConfig(m)
            | SecretsError::NoEditor(m) => f.write_str(m),
            SecretsError::Cwd(e) => write!(f, "cannot read the current directory: {e}"),
            SecretsError::InvalidPath { command, reason } => write!(
                f,
                "Invalid {command} path: {reason}. Write a dotted path (`db.password`, \
                 `list.0`) or sops' bracket form (`[\"db\"][\"password\"]`, `[\"list\"][0]`)"
            ),
            SecretsError::NoRecipients(why) => f.write_str(why),
        }
    }
}

impl Failure for SecretsError {
    fn tool(&self) -> Tool {
        Tool::Secrets
    }

    fn exit_code(&self) -> u8 {
        use exit::secrets;
        let sops = |e: &SopsError| u8::try_from(e.exit_code()).unwrap_or(secrets::FAILED);
        match self {
            SecretsError::Sops(e) | SecretsError::EditRejected { source: e, .. } => sops(e),
            SecretsError::NotFound(_) => secrets::NOT_FOUND,
            SecretsError::Read(_) => secrets::READ,
            SecretsError::Write(_) => secrets::WRITE,
            SecretsError::Cwd(_) => secrets::CONFIG,
            SecretsError::InvalidPath { .. } => secrets::BAD_PATH,
            SecretsError::NoRecipients(_) => secrets::NO_RECIPIENTS,
            SecretsError::KmsContext(_) => secrets::KMS_CONTEXT,
            SecretsError::Failed(_) => secrets::FAILED,
            SecretsError::NoEditor(_) => secrets::NO_EDITOR,
            SecretsError::VaultConfig(_) => secrets::CONFIG,
        }
    }
}

/// An `agentsec` command's error.
#[derive(Debug)]
pub enum Error {
    /// `agentsec policy`.
    Policy(PolicyError),
    /// `agentsec audit`.
    Audit(AuditError),
    /// `agentsec secrets`.
    Secrets(SecretsError),
    /// From `agentsec skill`.
    Skill(SkillError),
    /// From `agentsec serve`.
    Serve(ServeError),
    /// `agentsec ssh-agent`.
    SshAgent(SshAgentError),
    /// `agentsec ssh`.
    Ssh(SshError),
    /// `agentsec mcp` or `agentsec token`.
    Mcp(McpError),
    /// From `agentsec exec`.
    Exec(ExecError),
}

/// Why `agentsec exec` did not run the command (the child never started).
#[derive(Debug)]
pub enum ExecError {
    /// Bad arguments, or the policy, secrets, keys or audit log could not be set up.
    Config(String),
    /// The policy refused a path (every refusal is on the audit record).
    Denied(String),
    /// The program exists but cannot be run.
    CannotRun(String),
    /// The program was not found.
    NotFound(String),
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Config(m) => f.write_str(m),
            ExecError::Denied(m) => write!(f, "refused, the command was not started:\n{m}"),
            ExecError::CannotRun(m) => write!(f, "cannot run {m}"),
            ExecError::NotFound(p) => write!(f, "{p}: command not found (searched PATH)"),
        }
    }
}

impl Failure for ExecError {
    fn tool(&self) -> Tool {
        Tool::Exec
    }

    fn exit_code(&self) -> u8 {
        match self {
            ExecError::Config(_) => exit::exec::CONFIG,
            ExecError::Denied(_) => exit::exec::DENIED,
            ExecError::CannotRun(_) => exit::exec::CANNOT_RUN,
            ExecError::NotFound(_) => exit::exec::NOT_FOUND,
        }
    }
}

/// Why an `agentsec skill` command failed before it could try every component.
#[derive(Debug)]
pub enum SkillError {
    /// A FILE|DIR argument that cannot be read, or names no component.
    Argument(String),
    /// The runtime or its cache could not be set up.
    Runtime(String),
}

impl fmt::Display for SkillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkillError::Argument(m) | SkillError::Runtime(m) => f.write_str(m),
        }
    }
}

impl Failure for SkillError {
    fn tool(&self) -> Tool {
        Tool::Skill
    }

    fn exit_code(&self) -> u8 {
        exit::admin::USAGE
    }
}

/// Why `agentsec serve` could not start (or `--check` failed): the configuration, the
/// store, the audit log or the socket.
#[derive(Debug)]
pub struct ServeError(pub String);

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Failure for ServeError {
    fn tool(&self) -> Tool {
        Tool::Serve
    }

    fn exit_code(&self) -> u8 {
        exit::admin::USAGE
    }
}

/// Why `agentsec ssh-agent` could not start: the configuration, the store, the audit log,
/// the socket, or the caller may not act as the agent id.
#[derive(Debug)]
pub struct SshAgentError(pub String);

impl fmt::Display for SshAgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Failure for SshAgentError {
    fn tool(&self) -> Tool {
        Tool::SshAgent
    }

    fn exit_code(&self) -> u8 {
        exit::admin::USAGE
    }
}

/// Why `agentsec ssh` did not start ssh.
#[derive(Debug)]
pub enum SshError {
    /// Bad arguments, or the policy, secrets, keys, audit log or socket could not be set up.
    Config(String),
    /// The policy refused a `--secret-stdin` path, or the caller may not act as the agent
    /// id (on the record).
    Denied(String),
    /// ssh exists but cannot be run.
    CannotRun(String),
    /// ssh was not found on `PATH`.
    NotFound(String),
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshError::Config(m) => f.write_str(m),
            SshError::Denied(m) => write!(f, "refused, ssh was not started:\n{m}"),
            SshError::CannotRun(m) => write!(f, "cannot run {m}"),
            SshError::NotFound(p) => write!(f, "{p}: command not found (searched PATH)"),
        }
    }
}

impl Failure for SshError {
    fn tool(&self) -> Tool {
        Tool::Ssh
    }

    fn exit_code(&self) -> u8 {
        match self {
            SshError::Config(_) => exit::exec::CONFIG,
            SshError::Denied(_) => exit::exec::DENIED,
            SshError::CannotRun(_) => exit::exec::CANNOT_RUN,
            SshError::NotFound(_) => exit::exec::NOT_FOUND,
        }
    }
}

impl From<SshError> for Error {
    fn from(e: SshError) -> Self {
        Error::Ssh(e)
    }
}

impl From<SshAgentError> for Error {
    fn from(e: SshAgentError) -> Self {
        Error::SshAgent(e)
    }
}

/// Why `agentsec mcp` could not start or stopped, or `agentsec token` failed.
#[derive(Debug)]
pub struct McpError(pub Tool, pub String);

impl fmt::Display for McpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.1)
    }
}

impl Failure for McpError {
    fn tool(&self) -> Tool {
        self.0
    }

    fn exit_code(&self) -> u8 {
        exit::admin::USAGE
    }
}

impl From<McpError> for Error {
    fn from(e: McpError) -> Self {
        Error::Mcp(e)
    }
}

impl From<ServeError> for Error {
    fn from(e: ServeError) -> Self {
        Error::Serve(e)
    }
}

impl From<ExecError> for Error {
    fn from(e: ExecError) -> Self {
        Error::Exec(e)
    }
}

impl From<SkillError> for Error {
    fn from(e: SkillError) -> Self {
        Error::Skill(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Policy(e) => e.fmt(f),
            Error::Audit(e) => e.fmt(f),
            Error::Secrets(e) => e.fmt(f),
            Error::Skill(e) => e.fmt(f),
            Error::Serve(e) => e.fmt(f),
            Error::Exec(e) => e.fmt(f),
            Error::SshAgent(e) => e.fmt(f),
            Error::Ssh(e) => e.fmt(f),
            Error::Mcp(e) => e.fmt(f),
        }
    }
}

impl Failure for Error {
    fn tool(&self) -> Tool {
        match self {
            Error::Policy(e) => e.tool(),
            Error::Audit(e) => e.tool(),
            Error::Secrets(e) => e.tool(),
            Error::Skill(e) => e.tool(),
            Error::Serve(e) => e.tool(),
            Error::Exec(e) => e.tool(),
            Error::SshAgent(e) => e.tool(),
            Error::Ssh(e) => e.tool(),
            Error::Mcp(e) => e.tool(),
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Error::Policy(e) => e.exit_code(),
            Error::Audit(e) => e.exit_code(),
            Error::Secrets(e) => e.exit_code(),
            Error::Skill(e) => e.exit_code(),
            Error::Serve(e) => e.exit_code(),
            Error::Exec(e) => e.exit_code(),
            Error::SshAgent(e) => e.exit_code(),
            Error::Ssh(e) => e.exit_code(),
            Error::Mcp(e) => e.exit_code(),
        }
    }
}

impl From<PolicyError> for Error {
    fn from(e: PolicyError) -> Self {
        Error::Policy(e)
    }
}

impl From<AuditError> for Error {
    fn from(e: AuditError) -> Self {
        Error::Audit(e)
    }
}

impl From<SecretsError> for Error {
    fn from(e: SecretsError) -> Self {
        Error::Secrets(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io() -> std::io::Error {
        std::io::Error::other("x")
    }

    fn sops_errors() -> Vec<SopsError> {
        let file = || "f.yaml".to_owned();
        vec![
            SopsError::FileNotFound { file: file() },
            SopsError::Read {
                file: file(),
                source: io(),
            },
            SopsError::NoMetadata { file: file() },
            SopsError::MacMissing { file: file() },
            SopsError::ExtractSyntax(String::new()),
            SopsError::ExtractNotFound(String::new()),
            SopsError::Emit(String::new()),
            SopsError::NotEncrypted {
                file: file(),
                path: String::new(),
                line: None,
            },
        ]
        .into_iter()
        .chain([5, 7, 23, 61, 111, 203].map(|code| SopsError::Encrypt {
            message: String::new(),
            code,
        }))
        .collect()
    }

    /// Every code an error maps to is in its tool's table (and so in `--help` and the
    /// README, which a test compares with the table).
    #[test]
    fn every_code_is_documented() {
        let mut all: Vec<Box<dyn Failure>> = vec![
            Box::new(RunError::Config(String::new())),
            Box::new(RunError::Limit(String::new())),
            Box::new(SkillError::Argument(String::new())),
            Box::new(SkillError::Runtime(String::new())),
            Box::new(ServeError(String::new())),
            Box::new(SshError::Config(String::new())),
            Box::new(SshError::Denied(String::new())),
            Box::new(SshError::CannotRun(String::new())),
            Box::new(SshError::NotFound(String::new())),
            Box::new(McpError(Tool::Mcp, String::new())),
            Box::new(McpError(Tool::Token, String::new())),
            Box::new(PolicyError::NoPolicy),
            Box::new(PolicyError::Output(io())),
            Box::new(AuditError::NoLog),
            Box::new(AuditError::Verify(VerifyError::Io {
                path: PathBuf::new(),
                source: io(),
            })),
            Box::new(SecretsError::NotFound(PathBuf::new())),
            Box::new(SecretsError::Read(String::new())),
            Box::new(SecretsError::Write(String::new())),
            Box::new(SecretsError::Cwd(io())),
            Box::new(SecretsError::InvalidPath {
                command: "set",
                reason: String::new(),
            }),
            Box::new(SecretsError::NoRecipients("")),
            Box::new(SecretsError::KmsContext(String::new())),
            Box::new(SecretsError::Failed(String::new())),
            Box::new(SecretsError::NoEditor(String::new())),
        ];
        all.extend(
            sops_errors()
                .into_iter()
                .map(|e| Box::new(SecretsError::Sops(e)) as Box<dyn Failure>),
        );
        for e in &all {
            let table = e.tool().exit_codes();
            assert!(
                exit::documented(table, e.exit_code()),
                "{}: code {} is not in its table",
                e.tool().prefix(),
                e.exit_code()
            );
        }
        for tool in [Tool::Run, Tool::Policy, Tool::Audit, Tool::Secrets] {
            assert!(exit::documented(tool.exit_codes(), USAGE), "{tool:?}");
        }
        for code in [
            exit::OK,
            exit::SKILL_ERROR,
            exit::DENIED,
            exit::TRAP,
            exit::CREDENTIAL_IN_OUTPUT,
            exit::OUTPUT_FAILED,
        ] {
            assert!(exit::documented(exit::RUN, code), "{code}");
        }
    }
}
