//! `confirm: true`: a signature waits for the user's yes, asked through `SSH_ASKPASS` as
//! OpenSSH's own agent does for `ssh-add -c` keys.
//!
//! The program is run with the prompt as its one argument and `SSH_ASKPASS_PROMPT=confirm`
//! in its environment; the answer is yes when it exits with status 0 and prints nothing or
//! a line starting with `yes` (OpenSSH's rule). Anything else, including no answer within
//! [`CONFIRM_TIMEOUT`], is a no. The key is not fetched before the answer.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a confirmation may stay unanswered; then it is a no. Reason: ssh waits for
/// the agent's answer, so a dialog nobody sees must not hold the login forever; a minute
/// is enough to read a prompt and click.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(60);

/// Most bytes of the program's answer that are read. Reason: the answer is a yes, a no
/// or nothing; more is not an answer.
const MAX_ANSWER: u64 = 256;

/// How often a running program is checked for its exit.
const POLL: Duration = Duration::from_millis(20);

/// The variables of the agent's environment that the program gets: what a dialog needs
/// to reach the user's display and session, nothing else (the agent's environment may
/// hold `VAULT_TOKEN` or `SOPS_AGE_KEY`).
pub const PASSED_ENV: &[&str] = &[
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "HOME",
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
];

/// The program that asks: `SSH_ASKPASS` of the agent's environment, and what it may see.
#[derive(Debug, Clone)]
pub struct Askpass {
    program: PathBuf,
    env: Vec<(&'static str, OsString)>,
}

impl Askpass {
    /// The program `SSH_ASKPASS` names, with the [`PASSED_ENV`] variables of this
    /// process; `None` when `SSH_ASKPASS` is unset or empty.
    pub fn from_env() -> Option<Askpass> {
        let program = std::env::var_os("SSH_ASKPASS").filter(|p| !p.is_empty())?;
        let env = PASSED_ENV
            .iter()
            .filter_map(|name| std::env::var_os(name).map(|v| (*name, v)))
            .collect();
        Some(Askpass {
            program: PathBuf::from(program),
            env,
        })
    }

    /// Asks `prompt`. `Ok(())` is a yes; the error says why it is not (for the record).
    ///
    /// # Errors
    /// The user said no, did not answer in time, or the program could not run.
    pub fn ask(&self, prompt: &str) -> Result<(), String> {
        let mut child = Command::new(&self.program)
            .arg(prompt)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("SSH_ASKPASS_PROMPT", "confirm")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "SSH_ASKPASS program {} cannot run: {e}",
                    self.program.display()
                )
            })?;
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut answer = Vec::new();
            if let Some(out) = stdout {
                let _ = out.take(MAX_ANSWER).read_to_end(&mut answer);
            }
            answer
        });
        let deadline = Instant::now() + CONFIRM_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("no answer within {}s", CONFIRM_TIMEOUT.as_secs()));
                }
                Err(e) => return Err(format!("SSH_ASKPASS program: {e}")),
            }
        };
        let answer = reader.join().unwrap_or_default();
        if !status.success() {
            return Err("the user declined".to_owned());
        }
        let line = answer.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.len() >= 3 && line[..3].eq_ignore_ascii_case(b"yes") {
            Ok(())
        } else {
            Err("the user declined".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &std::path::Path, body: &str) -> Askpass {
        let path = dir.join("askpass");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Askpass {
            program: path,
            env: Vec::new(),
        }
    }

    #[test]
    fn answers_follow_openssh() {
        let dir = tempfile::tempdir().unwrap();
        for (body, yes) in [
            ("exit 0", true),
            ("echo yes; exit 0", true),
            ("echo YES please", true),
            ("echo no; exit 0", false),
            ("exit 1", false),
            ("echo yes; exit 1", false),
            ("test \"$SSH_ASKPASS_PROMPT\" = confirm", true),
        ] {
            let askpass = script(dir.path(), body);
            assert_eq!(askpass.ask("Allow use of key k?").is_ok(), yes, "{body}");
        }
        let missing = Askpass {
            program: dir.path().join("nope"),
            env: Vec::new(),
        };
        assert!(missing.ask("?").unwrap_err().contains("cannot run"));
    }
}
