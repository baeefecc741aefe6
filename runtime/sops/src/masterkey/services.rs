//! [`KeyServices`]: what the non-age master keys need from the environment (gpg's path, the
//! Vault token and address allowlist, AWS credentials), read once like the age identities.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// A bearer secret (a Vault token, an AWS secret access key or session token): no `Debug`, no
/// `Display`, no `Serialize`, zeroized on drop. Only this crate reads it, to put it in a request
/// header or a signature.
#[derive(Clone)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// Wraps a secret. Surrounding whitespace (a token file's newline) is removed.
    pub fn new(secret: Zeroizing<String>) -> Self {
        let trimmed = secret.trim();
        if trimmed.len() == secret.len() {
            Token(secret)
        } else {
            Token(Zeroizing::new(trimmed.to_owned()))
        }
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// AWS credentials for KMS: an access key id (public), the secret key and an optional session
/// token (both [`Token`]).
#[derive(Clone)]
pub struct AwsCredentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: Token,
    pub(crate) session_token: Option<Token>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

impl AwsCredentials {
    /// Credentials from their parts.
    pub fn new(
        access_key_id: String,
        secret_access_key: Token,
        session_token: Option<Token>,
    ) -> Self {
        AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token,
        }
    }
}

/// What `pgp`, `hc_vault` and `kms` master keys need, read from the environment the way sops
/// reads it:
/// - `SOPS_GPG_EXEC`: the gpg binary (default: `gpg` found on `PATH`, run by absolute path);
///   `GNUPGHOME` is passed to it as `--homedir`.
/// - `VAULT_TOKEN` (else `~/.vault-token`), `VAULT_ADDR`, and the Vault address allowlist
///   `SOPS_HC_VAULT_ALLOWLIST` (comma-separated origins, as sops 3.13) plus any added with
///   [`KeyServices::allow_vault_address`] (configuration). A file's `vault_address` is not
///   covered by the MAC, so the token is sent only to an allowlisted origin or to `VAULT_ADDR`.
/// - `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else the shared
///   credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`) for the
///   key's `aws_profile`, `AWS_PROFILE` or `default`; the endpoint `AWS_ENDPOINT_URL_KMS`, else
///   `AWS_ENDPOINT_URL`, else `https://kms.<region>.amazonaws.com` (region from the ARN).
/// - `SOPS_DECRYPTION_ORDER`: the key types a group tries first, comma-separated (default
///   `age,pgp`; the others follow in file order).
#[derive(Clone, Default)]
pub struct KeyServices {
    pub(crate) gpg_exec: Option<PathBuf>,
    pub(crate) gnupghome: Option<PathBuf>,
    pub(crate) path: Option<OsString>,
    pub(crate) vault_token: Option<Token>,
    pub(crate) vault_addr: Option<String>,
    pub(crate) vault_allowlist: Vec<String>,
    pub(crate) aws_env_credentials: Option<AwsCredentials>,
    pub(crate) aws_profile: Option<String>,
    pub(crate) aws_credentials_file: Option<PathBuf>,
    pub(crate) aws_endpoint_kms: Option<String>,
    /// `SOPS_DECRYPTION_ORDER`: key types to try first, in order (default `age,pgp`).
    pub(crate) decryption_order: Vec<String>,
}

impl fmt::Debug for KeyServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyServices")
            .field("gpg_exec", &self.gpg_exec)
            .field("gnupghome", &self.gnupghome)
            .field(
                "vault_token",
                &self.vault_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("vault_addr", &self.vault_addr)
            .field("vault_allowlist", &self.vault_allowlist)
            .field("aws_env_credentials", &self.aws_env_credentials)
            .field("aws_profile", &self.aws_profile)
            .field("aws_credentials_file", &self.aws_credentials_file)
            .field("aws_endpoint_kms", &self.aws_endpoint_kms)
            .field("decryption_order", &self.decryption_order)
            .finish()
    }
}

/// Largest token or credentials file read: tokens are ~100 bytes, credentials files a few KiB.
const MAX_CREDENTIAL_FILE: u64 = 64 * 1024;

impl KeyServices {
    /// Reads the variables through `get`; empty values count as unset.
    pub fn from_env_fn(get: impl Fn(&str) -> Option<OsString>) -> Self {
        let non_empty = |name: &str| get(name).filter(|v| !v.is_empty());
        let text = |name: &str| non_empty(name).map(|v| v.to_string_lossy().into_owned());
        let home = non_empty("HOME").map(PathBuf::from);
        let vault_token = non_empty("VAULT_TOKEN")
            .map(|v| Token::new(Zeroizing::new(v.to_string_lossy().into_owned())))
            .or_else(|| {
                home.as_ref()
                    .and_then(|h| read_small(&h.join(".vault-token")))
                    .map(Token::new)
            });
        let vault_allowlist = text("SOPS_HC_VAULT_ALLOWLIST")
            .map(|l| {
                l.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let aws_env_credentials = match (
            text("AWS_ACCESS_KEY_ID"),
            non_empty("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(id), Some(secret)) => Some(AwsCredentials {
                access_key_id: id,
                secret_access_key: Token::new(Zeroizing::new(
                    secret.to_string_lossy().into_owned(),
                )),
                session_token: non_empty("AWS_SESSION_TOKEN")
                    .map(|t| Token::new(Zeroizing::new(t.to_string_lossy().into_owned()))),
            }),
            _ => None,
        };
        KeyServices {
            gpg_exec: non_empty("SOPS_GPG_EXEC").map(PathBuf::from),
            gnupghome: non_empty("GNUPGHOME").map(PathBuf::from),
            path: non_empty("PATH"),
            vault_token,
            vault_addr: text("VAULT_ADDR"),
            vault_allowlist,
            aws_env_credentials,
            aws_profile: text("AWS_PROFILE"),
            aws_credentials_file: non_empty("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".aws").join("credentials"))),
            aws_endpoint_kms: text("AWS_ENDPOINT_URL_KMS").or_else(|| text("AWS_ENDPOINT_URL")),
            decryption_order: text("SOPS_DECRYPTION_ORDER")
                .map(|l| {
                    let mut order: Vec<String> = Vec::new();
                    for t in l.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        if !order.iter().any(|o| o == t) {
                            order.push(t.to_owned());
                        }
                    }
                    order
                })
                .unwrap_or_default(),
        }
    }

    /// [`KeyServices::from_env_fn`] over the process environment.
    pub fn from_process_env() -> Self {
        Self::from_env_fn(|name| std::env::var_os(name))
    }

    /// Allows the Vault origin `address` (`https://vault.example:8200`), e.g. from
    /// configuration, in addition to `SOPS_HC_VAULT_ALLOWLIST`.
    pub fn allow_vault_address(&mut self, address: &str) {
        let a = address.trim();
        if !a.is_empty() && !self.vault_allowlist.iter().any(|x| x == a) {
            self.vault_allowlist.push(a.to_owned());
        }
    }

    /// Where a key of type `kind` (`age`, `pgp`, `hc_vault`, `kms`) comes in the order keys of
    /// a group are tried: its position in `SOPS_DECRYPTION_ORDER` (default `age,pgp`), types
    /// not named after those, in file order.
    pub(crate) fn decryption_rank(&self, kind: &str) -> usize {
        const DEFAULT: [&str; 2] = ["age", "pgp"];
        let pos = if self.decryption_order.is_empty() {
            DEFAULT.iter().position(|k| *k == kind)
        } else {
            self.decryption_order.iter().position(|k| k == kind)
        };
        pos.unwrap_or(usize::MAX)
    }

    /// The Vault origins a token may be sent to (besides `VAULT_ADDR`).
    pub fn vault_allowlist(&self) -> &[String] {
        &self.vault_allowlist
    }

    /// Sets the Vault token (instead of `VAULT_TOKEN`).
    pub fn set_vault_token(&mut self, token: Token) {
        self.vault_token = Some(token);
    }

    /// Sets the AWS credentials (instead of the environment and files).
    pub fn set_aws_credentials(&mut self, credentials: AwsCredentials) {
        self.aws_env_credentials = Some(credentials);
    }

    /// AWS credentials for a key with `profile` (the key's `aws_profile`): the environment's,
    /// or the shared credentials file's section for the profile.
    pub(crate) fn aws_credentials(&self, profile: Option<&str>) -> Result<AwsCredentials, String> {
        if profile.is_none()
            && let Some(c) = &self.aws_env_credentials
        {
            return Ok(c.clone());
        }
        let profile = profile.or(self.aws_profile.as_deref()).unwrap_or("default");
        let file = self.aws_credentials_file.as_deref();
        let text = file.and_then(read_small);
        let none = || {
            format!(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add \
                 profile [{profile}] to {}",
                file.map(|f| f.display().to_string())
                    .unwrap_or_else(|| "~/.aws/credentials".to_owned())
            )
        };
        let Some(text) = text else {
            return Err(none());
        };
        let (mut id, mut secret, mut session) = (None, None, None);
        let mut in_profile = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') && line.ends_with(']') {
                in_profile = line[1..line.len() - 1].trim() == profile;
                continue;
            }
            if !in_profile {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim();
                match k.trim() {
                    "aws_access_key_id" => id = Some(v.to_owned()),
                    "aws_secret_access_key" => {
                        secret = Some(Token::new(Zeroizing::new(v.to_owned())))
                    }
                    "aws_session_token" => session = Some(Token::new(Zeroizing::new(v.to_owned()))),
                    _ => {}
                }
            }
        }
        match (id, secret) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(AwsCredentials {
                access_key_id,
                secret_access_key,
                session_token: session,
            }),
            _ => Err(none()),
        }
    }
}

/// A small file's text (a token or credentials file), or `None` when it cannot be read.
fn read_small(path: &Path) -> Option<Zeroizing<String>> {
    let mut buf = Zeroizing::new(Vec::new());
    agentsec_policy::bounded::read_file(path, MAX_CREDENTIAL_FILE, &mut buf).ok()?;
    std::str::from_utf8(&buf)
        .ok()
        .map(|s| Zeroizing::new(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A planted token and AWS secret appear in no `Debug` of the services or of the
    /// identities that carry them.
    #[test]
    fn secrets_are_not_in_debug() {
        let env = |name: &str| -> Option<OsString> {
            match name {
                "VAULT_TOKEN" => Some("hvs.planted-token-9f1e".into()),
                "AWS_ACCESS_KEY_ID" => Some("AKIDPUBLIC".into()),
                "AWS_SECRET_ACCESS_KEY" => Some("planted-aws-secret-77c2".into()),
                "AWS_SESSION_TOKEN" => Some("planted-session-31d0".into()),
                "SOPS_HC_VAULT_ALLOWLIST" => Some("https://vault.example:8200, http://b:1".into()),
                _ => None,
            }
        };
        let services = KeyServices::from_env_fn(env);
        let shown = format!("{services:?}");
        for planted in [
            "planted-token-9f1e",
            "planted-aws-secret-77c2",
            "planted-session-31d0",
        ] {
            assert!(!shown.contains(planted), "{shown}");
        }
        assert!(shown.contains("AKIDPUBLIC"));
        assert_eq!(
            services.vault_allowlist(),
            ["https://vault.example:8200", "http://b:1"]
        );
        let sources = crate::KeySources::from_env_fn(env);
        let ids = crate::Identities::discover(&sources).unwrap();
        let shown = format!("{sources:?} {ids:?}");
        for planted in [
            "planted-token-9f1e",
            "planted-aws-secret-77c2",
            "planted-session-31d0",
        ] {
            assert!(!shown.contains(planted), "{shown}");
        }
    }

    #[test]
    fn decryption_order_from_the_environment() {
        let default = KeyServices::default();
        assert!(default.decryption_rank("age") < default.decryption_rank("pgp"));
        assert!(default.decryption_rank("pgp") < default.decryption_rank("kms"));
        let services = KeyServices::from_env_fn(|n| {
            (n == "SOPS_DECRYPTION_ORDER").then(|| "kms, pgp,kms".into())
        });
        assert_eq!(services.decryption_order, ["kms", "pgp"]);
        assert!(services.decryption_rank("kms") < services.decryption_rank("pgp"));
        assert!(services.decryption_rank("pgp") < services.decryption_rank("age"));
    }

    #[test]
    fn shared_credentials_file_by_profile() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = A1\naws_secret_access_key = s1\n\n[ci]\naws_access_key_id=A2\naws_secret_access_key=s2\naws_session_token = t2\n",
        )
        .unwrap();
        let f = file.clone();
        let services = KeyServices::from_env_fn(move |name| {
            (name == "AWS_SHARED_CREDENTIALS_FILE").then(|| f.clone().into_os_string())
        });
        let d = services.aws_credentials(None).unwrap();
        assert_eq!(
            (d.access_key_id.as_str(), d.secret_access_key.expose()),
            ("A1", "s1")
        );
        let ci = services.aws_credentials(Some("ci")).unwrap();
        assert_eq!(ci.access_key_id, "A2");
        assert_eq!(ci.session_token.as_ref().map(Token::expose), Some("t2"));
        let missing = services.aws_credentials(Some("nope")).unwrap_err();
        assert!(missing.contains("[nope]"), "{missing}");
    }
}
