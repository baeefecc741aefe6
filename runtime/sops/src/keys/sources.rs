//! [`KeySources`]: where identities are looked for (the sops environment variables and the
//! default key file), and the key command's deadline.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::masterkey::KeyServices;

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
    /// What `pgp`, `hc_vault` and `kms` master keys need (gpg, Vault token and allowlist, AWS
    /// credentials), read from the same environment.
    pub services: KeyServices,
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
            .field("services", &self.services)
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
        let services = KeyServices::from_env_fn(&get);
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
            services,
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
