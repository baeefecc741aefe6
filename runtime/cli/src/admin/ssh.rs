//! `agentsec ssh --agent ID [--secret-stdin [NAME=]PATH]... -- [ssh arguments]`: runs the
//! real `ssh` with a private agent (the keys the policy lets `--agent` sign with, as
//! `agentsec ssh-agent` serves them) on a socket that exists only while the command runs,
//! and hands the remote command its secrets on stdin instead of in its command line.
//!
//! - **Agent.** A fresh directory of mode 0700 (under `$XDG_RUNTIME_DIR`, else `$TMPDIR`)
//!   holds the socket (mode 0600); ssh gets it as `SSH_AUTH_SOCK` and
//!   `-o IdentityAgent=SSH_AUTH_SOCK` (put before the caller's arguments, so it wins over
//!   any `IdentityAgent` in an ssh config: ssh keeps the first value it sees). Both go when
//!   ssh exits. Peers are checked, signatures decided and recorded exactly as by
//!   `agentsec ssh-agent`.
//! - **Secrets on stdin.** Each `--secret-stdin [NAME=]PATH` is asked of the broker as a
//!   read (skill `ssh`, an all-zero digest; a rule that names skills must name `ssh`);
//!   if any is refused, ssh is not started. ssh's stdin is then a pipe that receives one
//!   line `NAME=value` per secret, in the order given, and after them agentsec's own stdin
//!   until it ends; then the pipe is closed. The remote command reads a line with
//!   `IFS= read -r line` and takes the value as `${line#*=}`. The default NAME is the
//!   path in upper case with every character that is not a letter, digit or `_` made `_`
//!   (`db.password` → `DB_PASSWORD`). A value holding a newline or a NUL byte is refused
//!   (it would not be one line). Values are never in an argv or an environment, on
//!   either side; ssh carries them inside its encrypted channel.
//! - **Exit.** ssh's exit status (255: ssh's own failure), 128 + N when it is killed by
//!   signal N; agentsec's own failures exit 3 (refused) or 125 (setup), and ssh is then
//!   never started (127: ssh not found).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use agentsec_audit::RunContext;
use agentsec_broker::{Caller, CallerLimits, NoRedaction};
use agentsec_policy::{Operation, SkillDigest, SkillName, SkillRef};
use agentsec_ssh_agent::{Askpass, SshAgent};
use zeroize::Zeroizing;

use super::ssh_agent::{OpenError, open};
use crate::error::{SshError, Tool};
use crate::exit;
use crate::run_cmd::ConfigFlags;

/// Most `--secret-stdin` secrets one command may name (a remote script needs a handful;
/// the bound keeps one command line from asking the broker for the whole store).
pub const MAX_STDIN_SECRETS: u32 = 64;

/// The skill name on the records of the secrets `--secret-stdin` reads.
pub const SKILL_NAME: &str = "ssh";

/// Run the real `ssh` with a private agent holding the keys the policy lets --agent sign
/// with (the socket lives only for the command), and write --secret-stdin secrets to the
/// remote command's stdin (one `NAME=value` line each, then agentsec's own stdin).
#[derive(Debug, clap::Args)]
#[command(after_help = exit::help(exit::SSH), after_long_help = exit::help(exit::SSH))]
pub struct Args {
    /// The agent whose keys sign and for whom the secrets are read.
    #[arg(long, value_name = "ID")]
    pub agent: String,

    /// [NAME=]PATH: send the secret at PATH to the remote command's stdin as one line
    /// `NAME=value` (repeatable, in this order; default NAME: PATH in upper case, other
    /// characters `_`). Read it remotely with `IFS= read -r line; v=${line#*=}`.
    #[arg(long = "secret-stdin", value_name = "[NAME=]PATH")]
    pub secret_stdin: Vec<String>,

    /// Where secrets, policy and audit come from.
    #[command(flatten)]
    pub config: ConfigFlags,

    /// ssh's arguments (after `--`), e.g. `deploy@host.example ./release.sh`.
    #[arg(last = true, required = true, value_name = "SSH ARGS")]
    pub ssh_args: Vec<OsString>,
}

fn config(message: impl std::fmt::Display) -> SshError {
    SshError::Config(message.to_string())
}

/// `[NAME=]PATH` as a variable name and a secret path.
fn name_path(arg: &str) -> Result<(String, String), SshError> {
    if let Some((name, path)) = arg.split_once('=')
        && is_name(name)
    {
        if path.is_empty() {
            return Err(config(format!(
                "--secret-stdin {arg:?}: the secret path is empty"
            )));
        }
        return Ok((name.to_owned(), path.to_owned()));
    }
    if arg.is_empty() {
        return Err(config("--secret-stdin: the secret path is empty"));
    }
    Ok((default_name(arg), arg.to_owned()))
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `db.password` → `DB_PASSWORD`.
fn default_name(path: &str) -> String {
    let mut name: String = path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// `ssh` on `PATH`.
fn find_ssh() -> Result<PathBuf, SshError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("ssh"))
        .find(|c| c.is_file())
        .ok_or_else(|| SshError::NotFound("ssh".to_owned()))
}

/// A fresh directory of mode 0700 for the socket: under `$XDG_RUNTIME_DIR` when set,
/// else the temporary directory.
fn private_dir() -> Result<tempfile::TempDir, SshError> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    // Created with mode 0700 (not the umask's), so no other user can reach the socket.
    tempfile::Builder::new()
        .prefix("agentsec-ssh-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(|e| {
            config(format!(
                "{}: cannot create the socket directory: {e}",
                base.display()
            ))
        })
}

/// Runs `agentsec ssh`: ssh's exit status.
///
/// # Errors
/// Bad arguments, the configuration, a refused secret or identity, or ssh not found; ssh
/// was then not started.
pub fn run(args: Args) -> Result<u8, SshError> {
    let mut wanted = Vec::new();
    for arg in &args.secret_stdin {
        wanted.push(name_path(arg)?);
    }
    if wanted.len() > MAX_STDIN_SECRETS as usize {
        return Err(config(format!(
            "{} secrets named; at most {MAX_STDIN_SECRETS} (MAX_STDIN_SECRETS)",
            wanted.len()
        )));
    }
    let ssh = find_ssh()?;
    let loader = open(&args.agent, &args.config, Tool::Ssh).map_err(|e| match e {
        OpenError::Config(m) => SshError::Config(m),
        OpenError::Refused(m) => SshError::Denied(m),
    })?;
    let keyring = loader.keyring().map_err(|e| config(e.0))?;
    let broker = Arc::clone(keyring.broker());

    // The secrets, each decided and recorded, before anything starts.
    let run_id = agentsec_audit::new_run_id().map_err(config)?;
    let run = RunContext::new(loader.agent.as_str(), SKILL_NAME, "00".repeat(32), run_id)
        .with_caller(loader.me.caller_info())
        .with_store(broker.audit_store().cloned());
    // Dynamic credentials issued for the command are revoked when it is over.
    let _ended = broker.end_run_on_drop(&run);
    let skill = SkillRef::new(
        SkillName::parse(SKILL_NAME).map_err(config)?,
        SkillDigest::from_bytes([0; 32]),
    );
    let mut caller = Caller::new(
        loader.agent.clone(),
        skill,
        run.clone(),
        CallerLimits::new(MAX_STDIN_SECRETS, agentsec_policy::MAX_PATH_LEN),
        NoRedaction,
    );
    let mut lines: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    let mut refused = Vec::new();
    for (name, path) in &wanted {
        match broker.request(&mut caller, Operation::Read, path) {
            Ok(released) => {
                let value = released.value.expose_secret();
                if value.iter().any(|&b| b == b'\n' || b == b'\r' || b == 0) {
                    refused.push(format!(
                        "{path}: the value holds a line break or a NUL byte, so it cannot be \
                         sent as one `NAME=value` line"
                    ));
                    continue;
                }
                lines.extend_from_slice(name.as_bytes());
                lines.push(b'=');
                lines.extend_from_slice(value);
                lines.push(b'\n');
            }
            Err(refusal) => refused.push(format!("{path}: {refusal}")),
        }
    }
    if !refused.is_empty() {
        let _ = broker.record_run_event(&run, "ssh refused: ssh was not started");
        let _ = broker.sync();
        return Err(SshError::Denied(refused.join("\n")));
    }

    // The private agent.
    let dir = private_dir()?;
    let socket = dir.path().join("agent.sock");
    let listener = agentsec_ssh_agent::bind(&socket).map_err(config)?;
    let owner = rustix::process::getuid().as_raw();
    let agent = Arc::new(SshAgent::new(keyring, owner).with_askpass(Askpass::from_env()));
    let serving = Arc::clone(&agent);
    std::thread::spawn(move || {
        if let Err(e) = serving.serve(&listener) {
            Tool::Ssh.warn(format!("the agent socket failed: {e}"));
        }
    });

    broker
        .record_run_event(&run, &format!("ssh start: {}", ssh.display()))
        .map_err(config)?;
    broker.sync().map_err(config)?;
    let mut cmd = Command::new(&ssh);
    cmd.arg("-o")
        .arg("IdentityAgent=SSH_AUTH_SOCK")
        .args(&args.ssh_args)
        .env("SSH_AUTH_SOCK", &socket);
    for name in STORE_CREDENTIALS {
        cmd.env_remove(name);
    }
    if !wanted.is_empty() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| SshError::CannotRun(format!("{}: {e}", ssh.display())))?;
    if let Some(stdin) = child.stdin.take() {
        feed(stdin, lines);
    } else {
        drop(lines);
    }
    let status = child
        .wait()
        .map_err(|e| SshError::CannotRun(format!("waiting for ssh: {e}")))?;
    let code = super::exec::passthrough_code(status);
    let _ = std::fs::remove_file(&socket);
    drop(dir);
    let _ = broker.record_run_event(&run, &format!("ssh end: exit {code}"));
    broker.sync().map_err(config)?;
    drop(agent);
    Ok(code)
}

/// The variables of agentsec's own environment that open its stores (a Vault token, age
/// identities): ssh runs without them, so neither ssh nor a `ProxyCommand` it starts
/// inherits what unlocks every secret.
const STORE_CREDENTIALS: &[&str] = &[
    "VAULT_TOKEN",
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_KEY_CMD",
];

/// Writes the secret lines to ssh's stdin, then copies agentsec's own stdin after them
/// until it ends, then closes the pipe (on a thread: ssh may exit before either ends).
fn feed(mut stdin: std::process::ChildStdin, lines: Zeroizing<Vec<u8>>) {
    std::thread::spawn(move || {
        if stdin
            .write_all(&lines)
            .and_then(|()| stdin.flush())
            .is_err()
        {
            return;
        }
        drop(lines);
        let mut buf = vec![0u8; 64 * 1024];
        let mut own = std::io::stdin().lock();
        loop {
            match own.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if stdin.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(
            name_path("DB_PASSWORD=db.password").unwrap(),
            ("DB_PASSWORD".to_owned(), "db.password".to_owned())
        );
        assert_eq!(
            name_path("db.password").unwrap(),
            ("DB_PASSWORD".to_owned(), "db.password".to_owned())
        );
        // Not a variable name before `=`: the whole argument is the path.
        assert_eq!(
            name_path(r#"["a=b"].c"#).unwrap().1,
            r#"["a=b"].c"#.to_owned()
        );
        assert_eq!(default_name("2fa.seed"), "_2FA_SEED");
        assert!(name_path("X=").is_err());
        assert!(name_path("").is_err());
    }
}
