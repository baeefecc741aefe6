//! age identities, found the way sops finds them (SPEC section 9).
//!
//! All sources are combined (not first match): SSH keys (`SOPS_AGE_SSH_PRIVATE_KEY_FILE`, then
//! `~/.ssh/id_ed25519` and `~/.ssh/id_rsa` if they exist), `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`,
//! `SOPS_AGE_KEY_CMD` and the default file `$XDG_CONFIG_HOME/sops/age/keys.txt` (or
//! `$HOME/.config/sops/age/keys.txt`), plus files added with [`Identities::add_file`].
//!
//! SSH keys behave as in sops 3.11 (checked against the real binary): the `~/.ssh` keys are
//! loaded even when `SOPS_AGE_SSH_PRIVATE_KEY_FILE` is set, and an SSH key that cannot be read
//! or parsed does not stop decryption with other identities; it is listed in the report when no
//! identity matches. Passphrase-protected SSH keys are not supported (as in sops).

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::MAX_KEY_SOURCE_SIZE;
use crate::error::SopsError;

/// Where identities are looked for. Build it from the process environment with
/// [`KeySources::from_process_env`], or from any lookup function (tests, a sanitised
/// environment) with [`KeySources::from_env_fn`].
#[derive(Default)]
pub struct KeySources {
    /// `SOPS_AGE_SSH_PRIVATE_KEY_FILE`: an OpenSSH `ssh-ed25519` or `ssh-rsa` private key
    /// (unencrypted).
    pub sops_age_ssh_private_key_file: Option<PathBuf>,
    /// `SOPS_AGE_KEY`: one or more `AGE-SECRET-KEY-1…` keys, newline or space separated.
    pub sops_age_key: Option<Zeroizing<String>>,
    /// `SOPS_AGE_KEY_FILE`: a key file.
    pub sops_age_key_file: Option<PathBuf>,
    /// `SOPS_AGE_KEY_CMD`: a command (run with `sh -c`) whose standard output is key file text.
    pub sops_age_key_cmd: Option<String>,
    /// `XDG_CONFIG_HOME`, for the default key file.
    pub xdg_config_home: Option<PathBuf>,
    /// `HOME`, for the default key file when `XDG_CONFIG_HOME` is unset or empty.
    pub home: Option<PathBuf>,
    /// How long `SOPS_AGE_KEY_CMD` may run: `None` means [`KEY_CMD_TIMEOUT`]. Set from
    /// `AGENTSEC_KEY_CMD_TIMEOUT` (seconds, e.g. `2` or `0.5`); a caller with its own deadline
    /// (`agentsec-run --timeout`) lowers it further.
    pub key_cmd_timeout: Option<Duration>,
}

/// How long `SOPS_AGE_KEY_CMD` may run before it and every process it started are killed and
/// the key source counts as failed. A key command normally answers at once (it prints a key
/// kept in a password manager or a secret service); 30 seconds leaves room for an unlock
/// prompt on another device or a slow network, while a command that blocks (waiting on a
/// terminal it does not have, a hung agent) can no longer hold a run forever. Override with
/// `AGENTSEC_KEY_CMD_TIMEOUT` (seconds).
pub const KEY_CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest `AGENTSEC_KEY_CMD_TIMEOUT` accepted (larger values are clamped to it): one hour,
/// so that the override cannot reintroduce "no deadline".
pub const MAX_KEY_CMD_TIMEOUT: Duration = Duration::from_secs(3600);

impl fmt::Debug for KeySources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySources")
            .field(
                "sops_age_ssh_private_key_file",
                &self.sops_age_ssh_private_key_file,
            )
            .field(
                "sops_age_key",
                &self.sops_age_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("sops_age_key_file", &self.sops_age_key_file)
            .field("sops_age_key_cmd", &self.sops_age_key_cmd)
            .field("xdg_config_home", &self.xdg_config_home)
            .field("home", &self.home)
            .field("key_cmd_timeout", &self.key_cmd_timeout)
            .finish()
    }
}

impl KeySources {
    /// Reads the variables from the process environment.
    pub fn from_process_env() -> Self {
        Self::from_env_fn(|name| std::env::var_os(name))
    }

    /// Reads the variables through `get` (e.g. a map in tests). Empty values count as unset.
    pub fn from_env_fn(get: impl Fn(&str) -> Option<OsString>) -> Self {
        let non_empty = |name: &str| get(name).filter(|v| !v.is_empty());
        KeySources {
            sops_age_ssh_private_key_file: non_empty("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
                .map(PathBuf::from),
            sops_age_key: non_empty("SOPS_AGE_KEY")
                .map(|v| Zeroizing::new(v.to_string_lossy().into_owned())),
            sops_age_key_file: non_empty("SOPS_AGE_KEY_FILE").map(PathBuf::from),
            sops_age_key_cmd: non_empty("SOPS_AGE_KEY_CMD")
                .map(|v| v.to_string_lossy().into_owned()),
            xdg_config_home: non_empty("XDG_CONFIG_HOME").map(PathBuf::from),
            home: non_empty("HOME").map(PathBuf::from),
            key_cmd_timeout: non_empty("AGENTSEC_KEY_CMD_TIMEOUT")
                .and_then(|v| v.to_str().and_then(|s| s.trim().parse::<f64>().ok()))
                .filter(|secs| secs.is_finite() && *secs > 0.0)
                .map(|secs| Duration::from_secs_f64(secs.min(MAX_KEY_CMD_TIMEOUT.as_secs_f64()))),
        }
    }

    /// The deadline `SOPS_AGE_KEY_CMD` runs under.
    pub fn key_cmd_deadline(&self) -> Duration {
        self.key_cmd_timeout.unwrap_or(KEY_CMD_TIMEOUT)
    }

    /// Caps the key command's deadline at `limit` (e.g. the run's own `--timeout`).
    pub fn cap_key_cmd_timeout(&mut self, limit: Duration) {
        self.key_cmd_timeout = Some(self.key_cmd_deadline().min(limit));
    }

    /// The default key file: `$XDG_CONFIG_HOME/sops/age/keys.txt` if `XDG_CONFIG_HOME` is set,
    /// else `$HOME/.config/sops/age/keys.txt` (Linux/BSD rules; sops uses
    /// `~/Library/Application Support` on macOS when `XDG_CONFIG_HOME` is unset).
    pub fn default_key_file(&self) -> Option<PathBuf> {
        let base = match (&self.xdg_config_home, &self.home) {
            (Some(x), _) => x.clone(),
            (None, Some(h)) if cfg!(target_os = "macos") => h.join("Library/Application Support"),
            (None, Some(h)) => h.join(".config"),
            (None, None) => return None,
        };
        Some(base.join("sops").join("age").join("keys.txt"))
    }

    /// The SSH private keys sops tries, in order: `SOPS_AGE_SSH_PRIVATE_KEY_FILE`, then
    /// `$HOME/.ssh/id_ed25519` and `$HOME/.ssh/id_rsa`. The first is always tried (a missing
    /// file is reported); the `~/.ssh` ones only if they exist.
    pub fn ssh_key_files(&self) -> Vec<(PathBuf, bool)> {
        let mut out = Vec::new();
        if let Some(p) = &self.sops_age_ssh_private_key_file {
            out.push((p.clone(), true));
        }
        if let Some(h) = &self.home {
            for name in ["id_ed25519", "id_rsa"] {
                out.push((h.join(".ssh").join(name), false));
            }
        }
        out
    }
}

/// An identity this build found but cannot use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsupportedIdentity {
    /// A hybrid post-quantum identity (`AGE-SECRET-KEY-PQ-1…`, sops 3.12+).
    PostQuantum,
    /// An age plugin identity (`AGE-PLUGIN-…`).
    Plugin,
    /// A passphrase-protected identity file (an age-encrypted key file).
    PassphraseProtected,
    /// A passphrase-protected SSH private key (sops cannot use them either).
    SshPassphraseProtected,
    /// An SSH private key of a type age does not support (only ssh-ed25519 and ssh-rsa).
    SshKeyType,
    /// An SSH key file that could not be read or parsed (the reason is not shown: it may
    /// quote the file).
    SshUnreadable,
}

impl fmt::Display for UnsupportedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnsupportedIdentity::PostQuantum => {
                "a post-quantum identity (AGE-SECRET-KEY-PQ-1...), which this build cannot use"
            }
            UnsupportedIdentity::Plugin => {
                "an age plugin identity (AGE-PLUGIN-...), which this build cannot use"
            }
            UnsupportedIdentity::PassphraseProtected => {
                "a passphrase-protected identity file, which this build cannot use"
            }
            UnsupportedIdentity::SshPassphraseProtected => {
                "a passphrase-protected SSH key, which cannot be used (as in sops)"
            }
            UnsupportedIdentity::SshKeyType => {
                "an SSH key of a type age cannot use (only ssh-ed25519 and ssh-rsa)"
            }
            UnsupportedIdentity::SshUnreadable => {
                "an SSH key file that could not be read or parsed as an OpenSSH private key"
            }
        })
    }
}

/// The age identities available for decryption.
///
/// Holds X25519 identities and unencrypted SSH identities (the `age` crate keeps their key
/// material zeroized on drop), the identities that were found but cannot be used, and the
/// list of places searched, for error messages.
#[derive(Default)]
pub struct Identities {
    x25519: Vec<age::x25519::Identity>,
    ssh: Vec<age::ssh::Identity>,
    unsupported: Vec<(String, UnsupportedIdentity)>,
    searched: Vec<String>,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("usable", &self.len())
            .field("unsupported", &self.unsupported)
            .field("searched", &self.searched)
            .finish()
    }
}

impl Identities {
    /// No identities.
    pub fn new() -> Self {
        Self::default()
    }

    /// Identities from every source sops uses, combined. Errors when a source is present but
    /// unusable (an unreadable `SOPS_AGE_KEY_FILE`, a malformed line, a failing
    /// `SOPS_AGE_KEY_CMD`). Finding no identity at all is **not** an error here: decryption
    /// reports it, listing the locations searched.
    pub fn discover(sources: &KeySources) -> Result<Self, SopsError> {
        let mut ids = Identities::new();
        for (path, explicit) in sources.ssh_key_files() {
            if explicit || path.exists() {
                ids.add_ssh_file(&path);
            }
        }
        if sources.sops_age_ssh_private_key_file.is_none() {
            ids.searched
                .push("SOPS_AGE_SSH_PRIVATE_KEY_FILE".to_owned());
        }
        if let Some(text) = &sources.sops_age_key {
            ids.add_text(text, "SOPS_AGE_KEY")?;
        } else {
            ids.searched.push("SOPS_AGE_KEY".to_owned());
        }
        if let Some(path) = &sources.sops_age_key_file {
            let text = read_limited(path, "SOPS_AGE_KEY_FILE")?;
            ids.add_text(&text, &format!("SOPS_AGE_KEY_FILE ({})", path.display()))?;
        } else {
            ids.searched.push("SOPS_AGE_KEY_FILE".to_owned());
        }
        if let Some(cmd) = &sources.sops_age_key_cmd {
            let text = run_key_cmd(cmd, sources.key_cmd_deadline())?;
            ids.add_text(&text, "SOPS_AGE_KEY_CMD")?;
        } else {
            ids.searched.push("SOPS_AGE_KEY_CMD".to_owned());
        }
        match sources.default_key_file() {
            Some(path) if path.exists() => {
                let text = read_limited(&path, &path.display().to_string())?;
                ids.add_text(&text, &path.display().to_string())?;
            }
            Some(path) => ids.searched.push(path.display().to_string()),
            None => ids
                .searched
                .push("$HOME/.config/sops/age/keys.txt".to_owned()),
        }
        Ok(ids)
    }

    /// [`Identities::discover`] with [`KeySources::from_process_env`].
    pub fn from_process_env() -> Result<Self, SopsError> {
        Self::discover(&KeySources::from_process_env())
    }

    /// Adds the identities of an explicitly configured key file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), SopsError> {
        let name = path.display().to_string();
        let text = read_limited(path, &name)?;
        self.add_text(&text, &name)
    }

    /// Adds the SSH private key at `path` (OpenSSH format, `ssh-ed25519` or `ssh-rsa`,
    /// unencrypted). Never fails: like sops, a key that cannot be used is recorded (see
    /// [`Identities::unsupported`]) and decryption goes on with the other identities.
    pub fn add_ssh_file(&mut self, path: &Path) {
        let name = path.display().to_string();
        let parsed = read_limited(path, &name).ok().and_then(|text| {
            age::ssh::Identity::from_buffer(text.as_bytes(), Some(name.clone())).ok()
        });
        match parsed {
            Some(id @ age::ssh::Identity::Unencrypted(_)) => self.ssh.push(id),
            Some(age::ssh::Identity::Encrypted(_)) => self
                .unsupported
                .push((name, UnsupportedIdentity::SshPassphraseProtected)),
            Some(age::ssh::Identity::Unsupported(_)) => self
                .unsupported
                .push((name, UnsupportedIdentity::SshKeyType)),
            None => self
                .unsupported
                .push((name, UnsupportedIdentity::SshUnreadable)),
        }
    }

    /// Adds identities from key file text (`#` comments, blank lines, `AGE-SECRET-KEY-1…`
    /// lines, several keys per line separated by spaces). `source` names it in errors, which
    /// give line numbers, never line contents.
    pub fn add_key_text(&mut self, text: &str, source: &str) -> Result<(), SopsError> {
        self.add_text(text, source)
    }

    fn add_text(&mut self, text: &str, source: &str) -> Result<(), SopsError> {
        let trimmed = text.trim_start();
        if trimmed.starts_with("age-encryption.org/") || trimmed.starts_with("-----BEGIN AGE") {
            self.unsupported
                .push((source.to_owned(), UnsupportedIdentity::PassphraseProtected));
            return Ok(());
        }
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            for token in line.split_whitespace() {
                let malformed = |reason: &str| SopsError::Identity {
                    source_name: source.to_owned(),
                    line: Some(n + 1),
                    reason: reason.to_owned(),
                };
                if token.starts_with("AGE-SECRET-KEY-PQ-1") {
                    self.unsupported
                        .push((source.to_owned(), UnsupportedIdentity::PostQuantum));
                } else if token.starts_with("AGE-PLUGIN-") {
                    self.unsupported
                        .push((source.to_owned(), UnsupportedIdentity::Plugin));
                } else if token.starts_with("AGE-SECRET-KEY-1") {
                    let id = age::x25519::Identity::from_str(token)
                        .map_err(|_| malformed("malformed age secret key (bad Bech32 encoding)"))?;
                    self.x25519.push(id);
                } else {
                    return Err(malformed(
                        "unknown identity type (expected AGE-SECRET-KEY-1..., a `#` comment \
                         or a blank line)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Number of usable identities.
    pub fn len(&self) -> usize {
        self.x25519.len() + self.ssh.len()
    }

    /// Whether there is no usable identity.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Identities that were found but cannot be used by this build, with their source.
    pub fn unsupported(&self) -> &[(String, UnsupportedIdentity)] {
        &self.unsupported
    }

    /// Locations searched that held nothing (for "did not find keys in ..." messages).
    pub fn searched(&self) -> &[String] {
        &self.searched
    }

    /// The usable identities as `age` identities, to decrypt other age files with the operator's
    /// keys (e.g. the audit log's HMAC key).
    pub fn as_age(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.x25519
            .iter()
            .map(|i| i as &dyn age::Identity)
            .chain(self.ssh.iter().map(|i| i as &dyn age::Identity))
    }
}

fn read_limited(path: &Path, name: &str) -> Result<Zeroizing<String>, SopsError> {
    let mut buf = Zeroizing::new(Vec::new());
    // One byte over the limit is read so that `into_text` reports it.
    agentsec_policy::bounded::read_file(path, MAX_KEY_SOURCE_SIZE as u64 + 1, &mut buf).map_err(
        |e| SopsError::Identity {
            source_name: name.to_owned(),
            line: None,
            reason: format!("cannot read {}: {e}", path.display()),
        },
    )?;
    into_text(buf, name)
}

fn into_text(buf: Zeroizing<Vec<u8>>, name: &str) -> Result<Zeroizing<String>, SopsError> {
    let err = |reason: &str| SopsError::Identity {
        source_name: name.to_owned(),
        line: None,
        reason: reason.to_owned(),
    };
    if buf.len() > MAX_KEY_SOURCE_SIZE {
        return Err(err(
            "larger than the limit for a key source (MAX_KEY_SOURCE_SIZE)",
        ));
    }
    match std::str::from_utf8(&buf) {
        Ok(s) => Ok(Zeroizing::new(s.to_owned())),
        Err(_) => Err(err("not UTF-8 text")),
    }
}

/// Runs `SOPS_AGE_KEY_CMD` with `sh -c`; its standard output is key file text. Standard error
/// is passed through to ours (it is the command's own diagnostics).
///
/// The command runs in a process group of its own. If it has not exited and closed its output
/// within `deadline` (or prints more than [`MAX_KEY_SOURCE_SIZE`]), the whole group is killed
/// with `SIGKILL`, so that a child it forked (`sh -c 'sleep 1000'`, a helper that hangs) does
/// not outlive the run, and the key source fails. After a successful exit, what is left in the
/// group is killed too: a leftover holding our pipe would otherwise keep the read open.
fn run_key_cmd(cmd: &str, deadline: Duration) -> Result<Zeroizing<String>, SopsError> {
    use std::os::unix::process::CommandExt;
    let err = |reason: String| SopsError::Identity {
        source_name: "SOPS_AGE_KEY_CMD".to_owned(),
        line: None,
        reason,
    };
    /// How often the shell's exit is checked while waiting.
    const POLL: Duration = Duration::from_millis(10);
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| err(format!("cannot run `sh -c`: {e}")))?;
    let group = child.id();
    let kill_group = || {
        if let Some(pid) = i32::try_from(group)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            // The group may already be gone; nothing else to do then.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    };
    // The output is read on a thread so that the deadline holds even while the command (or a
    // child holding the pipe) writes nothing.
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut buf = Zeroizing::new(Vec::new());
            let res = out
                .take(MAX_KEY_SOURCE_SIZE as u64 + 1)
                .read_to_end(&mut buf);
            let _ = tx.send((buf, res));
        });
    } else {
        let _ = tx.send((Zeroizing::new(Vec::new()), Ok(0)));
    }
    let mut output = None;
    let mut status = None;
    let timed_out = loop {
        if output.is_none() {
            let left = deadline.saturating_sub(started.elapsed());
            match rx.recv_timeout(left.min(POLL)) {
                Ok(got) => output = Some(got),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    output = Some((Zeroizing::new(Vec::new()), Ok(0)));
                }
            }
        } else if status.is_none() {
            std::thread::sleep(POLL);
        }
        if status.is_none() {
            status = child
                .try_wait()
                .map_err(|e| err(format!("waiting for the command failed: {e}")))?;
        }
        let too_big = output
            .as_ref()
            .is_some_and(|(buf, _)| buf.len() > MAX_KEY_SOURCE_SIZE);
        if too_big || output.is_some() && status.is_some() {
            break false;
        }
        if started.elapsed() >= deadline {
            break true;
        }
    };
    kill_group();
    let status = match status {
        Some(s) => s,
        None => {
            // The command itself too, in case it left its process group.
            let _ = child.kill();
            child
                .wait()
                .map_err(|e| err(format!("waiting for the command failed: {e}")))?
        }
    };
    if timed_out {
        return Err(err(format!(
            "the command did not finish within {deadline:?} (KEY_CMD_TIMEOUT; set \
             AGENTSEC_KEY_CMD_TIMEOUT to change it) and was killed with its child processes"
        )));
    }
    let Some((buf, read)) = output else {
        return Err(err("its output could not be read".to_owned()));
    };
    if buf.len() > MAX_KEY_SOURCE_SIZE {
        return Err(err(
            "its output is larger than the limit for a key source (MAX_KEY_SOURCE_SIZE)".to_owned(),
        ));
    }
    read.map_err(|e| err(format!("reading its output failed: {e}")))?;
    if !status.success() {
        return Err(err(format!("the command failed ({status})")));
    }
    into_text(buf, "SOPS_AGE_KEY_CMD")
}

/// What happened to one master key while recovering the data key.
#[derive(Debug, Clone)]
pub struct KeyAttempt {
    /// The recipient (an `age1…` public key) or the master key type (`pgp`, `kms`, ...).
    pub recipient: String,
    /// Why it failed, or `None` if it succeeded.
    pub failure: Option<String>,
}

/// One key group's outcome.
#[derive(Debug, Clone)]
pub struct GroupReport {
    /// Every master key of the group that was tried.
    pub attempts: Vec<KeyAttempt>,
    /// Whether some key of the group decrypted its part.
    pub success: bool,
}

/// Why the data key could not be recovered: per group, the recipients tried (public keys only),
/// plus where identities were looked for. Shown by [`SopsError::DataKey`].
#[derive(Debug, Clone)]
pub struct DataKeyReport {
    /// One entry per key group.
    pub groups: Vec<GroupReport>,
    /// Groups needed (Shamir threshold; 1 without Shamir).
    pub threshold: usize,
    /// Number of usable identities that were tried.
    pub identities: usize,
    /// Locations searched that held no identity.
    pub searched: Vec<String>,
    /// Identities found that this build cannot use.
    pub unsupported: Vec<(String, UnsupportedIdentity)>,
    /// A problem with the recovered parts themselves (e.g. Shamir shares that do not combine).
    pub detail: Option<String>,
}

impl fmt::Display for DataKeyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.groups.iter().enumerate() {
            writeln!(
                f,
                "Group {i}: {}",
                if g.success { "SUCCESS" } else { "FAILED" }
            )?;
            if !g.success {
                for a in &g.attempts {
                    match &a.failure {
                        Some(why) => writeln!(f, "  {}: FAILED ({why})", a.recipient)?,
                        None => writeln!(f, "  {}: SUCCESS", a.recipient)?,
                    }
                }
            }
        }
        if let Some(d) = &self.detail {
            writeln!(f, "{d}")?;
        }
        if self.groups.len() > 1 {
            let ok = self.groups.iter().filter(|g| g.success).count();
            writeln!(
                f,
                "The file needs {} of {} key groups (Shamir threshold); {ok} succeeded.",
                self.threshold,
                self.groups.len()
            )?;
        }
        for (source, kind) in &self.unsupported {
            writeln!(f, "Found {kind} in {source}.")?;
        }
        if self.identities == 0 {
            write!(f, "No usable age identity was found")?;
        } else {
            write!(
                f,
                "None of the {} age identities loaded matches a recipient above",
                self.identities
            )?;
        }
        if !self.searched.is_empty() {
            write!(f, "; also searched: {}", self.searched.join(", "))?;
        }
        write!(
            f,
            ".\nHint: set SOPS_AGE_KEY_FILE to a key file holding the private key of one of these \
             recipients (or SOPS_AGE_KEY to the key, or SOPS_AGE_KEY_CMD to a command that prints it)."
        )
    }
}
