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
//!
//! Here: [`Identities`] and reading key text. Where they are looked for is [`sources`], running
//! `SOPS_AGE_KEY_CMD` under a deadline [`key_cmd`], and the report of a failed data-key
//! recovery [`report`].

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::MAX_KEY_SOURCE_SIZE;
use crate::error::SopsError;
use crate::masterkey::KeyServices;

mod key_cmd;
mod report;
mod sources;

use key_cmd::run_key_cmd;
pub use report::{DataKeyReport, GroupReport, KeyAttempt};
pub use sources::{KEY_CMD_TIMEOUT, KeySources, MAX_KEY_CMD_TIMEOUT};

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
    services: KeyServices,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("usable", &self.len())
            .field("unsupported", &self.unsupported)
            .field("searched", &self.searched)
            .field("services", &self.services)
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
        ids.services = sources.services.clone();
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

    /// What the other master key types (`pgp`, `hc_vault`, `kms`) use: gpg, the Vault token
    /// and allowlist, AWS credentials.
    pub fn services(&self) -> &KeyServices {
        &self.services
    }

    /// Mutable [`Identities::services`] (e.g. to add allowlisted Vault addresses from
    /// configuration).
    pub fn services_mut(&mut self) -> &mut KeyServices {
        &mut self.services
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

pub(super) fn into_text(
    buf: Zeroizing<Vec<u8>>,
    name: &str,
) -> Result<Zeroizing<String>, SopsError> {
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
