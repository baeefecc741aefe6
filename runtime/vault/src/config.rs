//! `vault-config.yaml`: where the Vault cluster is, how agentsec logs in, and which KV v2
//! paths are mounted where in the dotted secret tree.
//!
//! ```yaml
//! vault:
//!   address: http://127.0.0.1:8200        # or a list: the addresses of one HA cluster
//!   ca_file: /etc/agentsec/vault-ca.pem  # TLS via rustls; plain http only for loopback
//!   timeout: 5s                          # one request, connect to last byte (default 5s)
//!   cache_ttl: 60s                       # values kept in memory (default 60s, 0 disables)
//!   auth:
//!     method: approle                    # token | approle | jwt | kubernetes
//!     role: agent-role                   # jwt / kubernetes: the role to log in as
//!     mount: approle                     # the auth method's mount (default: the method name)
//!     role_id_file: /etc/agentsec/role_id
//!     secret_id_file: /etc/agentsec/secret_id
//!     # token_file: (method token; else VAULT_TOKEN in agentsec's own environment)
//!     # jwt_file: (jwt / kubernetes: e.g. /var/run/secrets/kubernetes.io/serviceaccount/token)
//! secrets:                               # dotted prefix -> KV v2 path (its keys are leaves)
//!   databases.postgres: secret/data/agents/postgres
//!   communication.github: { path: secret/data/agents/github, version: 3 }
//! ```
//!
//! Paths in the file are relative to its directory. Credentials are read from files only
//! (never argv, never a child's environment), when the store logs in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentsec_policy::SecretPath;
use yaml_rust2::{Yaml, YamlLoader};

/// A `vault-config.yaml` larger than this is refused: a configuration is a few dozen lines.
pub const MAX_CONFIG_SIZE: u64 = 64 * 1024;

/// Default `vault.timeout`: a local or regional Vault answers in milliseconds; 5 s lets a
/// slow network through and fails a stuck server well inside a run's default deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default `vault.cache_ttl`: a value read from Vault is served from memory for a minute,
/// so a brief outage (a leader election, a restart) does not stop runs.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

/// Most mounts in one file (each is checked against every other for overlap).
pub const MAX_MOUNTS: usize = 256;

/// Most addresses of one cluster.
pub const MAX_ADDRESSES: usize = 16;

/// A `vault-config.yaml` that cannot be used: the file, the key, and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{file}: `{key}`: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// The key (dotted, e.g. `vault.auth.method`).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Where a login credential (a token, role id, secret id or JWT) is read from, each
/// time agentsec logs in: never argv, never a child's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// A file readable only by agentsec's user (its whole content, trimmed).
    File(PathBuf),
    /// A leaf of a SOPS file, decrypted in memory with agentsec's own keys
    /// (`sops:FILE#dotted.path` in the configuration).
    Sops {
        /// The SOPS file.
        file: PathBuf,
        /// The leaf's dotted path.
        path: String,
    },
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::File(p) => write!(f, "file {}", p.display()),
            CredentialSource::Sops { file, path } => {
                write!(f, "SOPS leaf `{path}` of {}", file.display())
            }
        }
    }
}

/// How agentsec logs in to Vault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A token from `token_file`, else `VAULT_TOKEN` in agentsec's own environment.
    Token {
        /// Where the token is.
        token_file: Option<CredentialSource>,
    },
    /// AppRole: `role_id` and `secret_id` from files.
    AppRole {
        /// The auth mount (default `approle`).
        mount: String,
        /// The role's name, as the issue's example writes it (`role: agent-role`): shown in
        /// messages; the login itself is by role id.
        role: Option<String>,
        /// Where the role id is.
        role_id_file: CredentialSource,
        /// Where the secret id is.
        secret_id_file: CredentialSource,
    },
    /// JWT (or Kubernetes service-account token) login: a `role` and a JWT from a file.
    Jwt {
        /// `jwt` or `kubernetes` (as written).
        kind: &'static str,
        /// The auth mount (default: the method name).
        mount: String,
        /// The role.
        role: String,
        /// Where the JWT is.
        jwt_file: CredentialSource,
    },
}

impl AuthMethod {
    /// The method's name as written in the file.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Token { .. } => "token",
            AuthMethod::AppRole { .. } => "approle",
            AuthMethod::Jwt { kind, .. } => kind,
        }
    }
}

/// One KV v2 secret (or folder of secrets) mounted at a dotted prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it appears in the tree.
    pub prefix: SecretPath,
    /// The KV v2 engine's mount path (`secret`).
    pub engine: String,
    /// The secret's path inside the engine (`agents/postgres`), possibly a folder.
    pub path: String,
    /// A pinned version (`None`: the latest).
    pub version: Option<u64>,
    /// A secrets engine that issues credentials (`database/creds/ROLE`): `engine` is
    /// `database`, `path` the role; each skill run gets its own lease.
    pub dynamic: bool,
}

impl Mount {
    /// The mount as it was written: `secret/data/agents/postgres`, `database/creds/ro`.
    pub fn written(&self) -> String {
        let kind = if self.dynamic { "creds" } else { "data" };
        format!("{}/{kind}/{}", self.engine, self.path)
    }
}

/// A parsed `vault-config.yaml`.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// The cluster's addresses (`scheme://host:port`), tried in order.
    pub addresses: Vec<String>,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// One request's deadline.
    pub timeout: Duration,
    /// How long a value is served from memory (zero: never cached).
    pub cache_ttl: Duration,
    /// How agentsec logs in.
    pub auth: AuthMethod,
    /// What is mounted where.
    pub mounts: Vec<Mount>,
}

impl VaultConfig {
    /// Reads and checks `file`.
    ///
    /// # Errors
    /// The file cannot be read, is not YAML of the documented shape, or mounts overlap.
    pub fn load(file: &Path) -> Result<VaultConfig, ConfigError> {
        let shown = file.display().to_string();
        let err = |key: &str, message: String| ConfigError {
            file: shown.clone(),
            key: key.to_owned(),
            message,
        };
        let meta = std::fs::metadata(file).map_err(|e| err("(file)", e.to_string()))?;
        if !meta.is_file() {
            return Err(err("(file)", "not a regular file".into()));
        }
        if meta.len() > MAX_CONFIG_SIZE {
            return Err(err(
                "(file)",
                format!(
                    "{} bytes, larger than the {MAX_CONFIG_SIZE}-byte limit",
                    meta.len()
                ),
            ));
        }
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(
                std::fs::File::open(file).map_err(|e| err("(file)", e.to_string()))?,
                MAX_CONFIG_SIZE + 1,
            ),
            &mut text,
        )
        .map_err(|e| err("(file)", e.to_string()))?;
        let base = file.parent().unwrap_or(Path::new("."));
        Self::parse(&text, file, base)
    }

    /// Parses the text of a configuration file named `file`; relative paths are resolved
    /// against `base`.
    ///
    /// # Errors
    /// As [`VaultConfig::load`].
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<VaultConfig, ConfigError> {
        let shown = file.display().to_string();
        let err = |key: &str, message: String| ConfigError {
            file: shown.clone(),
            key: key.to_owned(),
            message,
        };
        let docs = YamlLoader::load_from_str(text).map_err(|e| {
            err(
                "(file)",
                format!(
                    "not YAML at line {} column {}: {}",
                    e.marker().line(),
                    e.marker().col() + 1,
                    e.info()
                ),
            )
        })?;
        let [doc] = docs.as_slice() else {
            return Err(err("(file)", "expected one YAML document".into()));
        };
        let top = mapping(doc, "(top level)", &err)?;
        check_keys(&top, "", &["vault", "secrets"], &err)?;
        let vault = top
            .iter()
            .find(|(k, _)| k.as_str() == Some("vault"))
            .map(|(_, v)| v)
            .ok_or_else(|| err("vault", "missing: the server's address and auth".into()))?;
        let vault = mapping(vault, "vault", &err)?;
        check_keys(
            &vault,
            "vault.",
            &["address", "ca_file", "timeout", "cache_ttl", "auth"],
            &err,
        )?;
        let get = |m: &[(Yaml, Yaml)], k: &str| -> Option<Yaml> {
            m.iter()
                .find(|(key, _)| key.as_str() == Some(k))
                .map(|(_, v)| v.clone())
        };
        let addresses = match get(&vault, "address") {
            Some(Yaml::String(a)) => vec![a],
            Some(Yaml::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| err("vault.address", "expected a list of addresses".into()))
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(err(
                    "vault.address",
                    "missing or not an address (https://vault.example:8200, or a list of them)"
                        .into(),
                ));
            }
        };
        if addresses.is_empty() || addresses.len() > MAX_ADDRESSES {
            return Err(err(
                "vault.address",
                format!("give between 1 and {MAX_ADDRESSES} addresses"),
            ));
        }
        let addresses = addresses
            .iter()
            .map(|a| check_address(a).map_err(|m| err("vault.address", m)))
            .collect::<Result<Vec<_>, _>>()?;
        let path_of = |key: &str, v: &Yaml| -> Result<PathBuf, ConfigError> {
            match v.as_str() {
                Some(s) if !s.is_empty() => Ok(base.join(s)),
                _ => Err(err(key, "expected a file path".into())),
            }
        };
        let ca_file = get(&vault, "ca_file")
            .map(|v| path_of("vault.ca_file", &v))
            .transpose()?;
        let duration = |key: &str, default: Duration| -> Result<Duration, ConfigError> {
            match get(&vault, key) {
                None => Ok(default),
                Some(Yaml::Integer(0)) => Ok(Duration::ZERO),
                Some(Yaml::String(s)) if s == "0" => Ok(Duration::ZERO),
                Some(Yaml::String(s)) => humantime::parse_duration(&s).map_err(|e| {
                    err(
                        &format!("vault.{key}"),
                        format!("{s:?} is not a duration ({e}); write e.g. 5s, 500ms, 1m"),
                    )
                }),
                Some(_) => Err(err(
                    &format!("vault.{key}"),
                    "expected a duration such as 5s".into(),
                )),
            }
        };
        let timeout = duration("timeout", DEFAULT_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(err(
                "vault.timeout",
                "must be more than zero (a request without a deadline could hold a run)".into(),
            ));
        }
        let cache_ttl = duration("cache_ttl", DEFAULT_CACHE_TTL)?;
        let auth = get(&vault, "auth").ok_or_else(|| {
            err(
                "vault.auth",
                "missing: say how agentsec logs in (method: token | approle | jwt | kubernetes)"
                    .into(),
            )
        })?;
        let auth = parse_auth(&mapping(&auth, "vault.auth", &err)?, &err, &path_of)?;
        let mounts = match top.iter().find(|(k, _)| k.as_str() == Some("secrets")) {
            None => Vec::new(),
            Some((_, v)) => parse_mounts(&mapping(v, "secrets", &err)?, &err)?,
        };
        Ok(VaultConfig {
            file: file.to_owned(),
            addresses,
            ca_file,
            timeout,
            cache_ttl,
            auth,
            mounts,
        })
    }
}

type ErrFn<'a> = dyn Fn(&str, String) -> ConfigError + 'a;

fn mapping(v: &Yaml, key: &str, err: &ErrFn<'_>) -> Result<Vec<(Yaml, Yaml)>, ConfigError> {
    match v {
        Yaml::Hash(h) => Ok(h.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        _ => Err(err(key, "expected a mapping".into())),
    }
}

fn check_keys(
    m: &[(Yaml, Yaml)],
    prefix: &str,
    allowed: &[&str],
    err: &ErrFn<'_>,
) -> Result<(), ConfigError> {
    for (k, _) in m {
        let name = k.as_str().unwrap_or("(not text)");
        if !allowed.contains(&name) {
            return Err(err(
                &format!("{prefix}{name}"),
                format!("unknown key; expected one of: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn parse_auth(
    m: &[(Yaml, Yaml)],
    err: &ErrFn<'_>,
    path_of: &dyn Fn(&str, &Yaml) -> Result<PathBuf, ConfigError>,
) -> Result<AuthMethod, ConfigError> {
    check_keys(
        m,
        "vault.auth.",
        &[
            "method",
            "role",
            "mount",
            "role_id_file",
            "secret_id_file",
            "token_file",
            "jwt_file",
        ],
        err,
    )?;
    let get = |k: &str| {
        m.iter()
            .find(|(key, _)| key.as_str() == Some(k))
            .map(|(_, v)| v)
    };
    let file = |k: &str| -> Result<Option<CredentialSource>, ConfigError> {
        get(k)
            .map(|v| {
                let key = format!("vault.auth.{k}");
                if let Some(rest) = v.as_str().and_then(|s| s.strip_prefix("sops:")) {
                    let (file, leaf) = rest.rsplit_once('#').ok_or_else(|| {
                        err(
                            &key,
                            "write a SOPS source as `sops:FILE#dotted.path` (e.g. sops:/etc/agentsec/vault.yaml#vault.secret_id)".into(),
                        )
                    })?;
                    if SecretPath::parse(leaf).is_err() || file.is_empty() {
                        return Err(err(
                            &key,
                            format!("`sops:{rest}`: FILE must be a path and `{leaf}` a dotted path"),
                        ));
                    }
                    let file = path_of(&key, &Yaml::String(file.to_owned()))?;
                    return Ok(CredentialSource::Sops {
                        file,
                        path: leaf.to_owned(),
                    });
                }
                path_of(&key, v).map(CredentialSource::File)
            })
            .transpose()
    };
    let need = |k: &str, method: &str| -> Result<CredentialSource, ConfigError> {
        file(k)?.ok_or_else(|| {
            err(
                &format!("vault.auth.{k}"),
                format!("missing: method `{method}` reads its credential from this file"),
            )
        })
    };
    let refuse_other = |keys: &[&str], method: &str| -> Result<(), ConfigError> {
        for k in keys {
            if get(k).is_some() {
                return Err(err(
                    &format!("vault.auth.{k}"),
                    format!("not used by method `{method}`: remove it"),
                ));
            }
        }
        Ok(())
    };
    let method = get("method").and_then(Yaml::as_str).ok_or_else(|| {
        err(
            "vault.auth.method",
            "missing: token | approle | jwt | kubernetes".into(),
        )
    })?;
    let mount = |default: &str| -> Result<String, ConfigError> {
        match get("mount") {
            None => Ok(default.to_owned()),
            Some(v) => match v.as_str() {
                Some(s) if valid_api_path(s) => Ok(s.trim_matches('/').to_owned()),
                _ => Err(err(
                    "vault.auth.mount",
                    "expected an auth mount path of [A-Za-z0-9._-] segments".into(),
                )),
            },
        }
    };
    match method {
        "token" => {
            refuse_other(
                &[
                    "role",
                    "mount",
                    "role_id_file",
                    "secret_id_file",
                    "jwt_file",
                ],
                "token",
            )?;
            Ok(AuthMethod::Token {
                token_file: file("token_file")?,
            })
        }
        "approle" => {
            refuse_other(&["token_file", "jwt_file"], "approle")?;
            Ok(AuthMethod::AppRole {
                mount: mount("approle")?,
                role: get("role").and_then(Yaml::as_str).map(str::to_owned),
                role_id_file: need("role_id_file", "approle")?,
                secret_id_file: need("secret_id_file", "approle")?,
            })
        }
        "jwt" | "kubernetes" => {
            let kind = if method == "jwt" { "jwt" } else { "kubernetes" };
            refuse_other(&["token_file", "role_id_file", "secret_id_file"], kind)?;
            let role = get("role")
                .and_then(Yaml::as_str)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    err(
                        "vault.auth.role",
                        format!("missing: method `{kind}` logs in as a role"),
                    )
                })?;
            Ok(AuthMethod::Jwt {
                kind,
                mount: mount(kind)?,
                role: role.to_owned(),
                jwt_file: need("jwt_file", kind)?,
            })
        }
        other => Err(err(
            "vault.auth.method",
            format!("`{other}` is not supported; use token, approle, jwt or kubernetes"),
        )),
    }
}

fn parse_mounts(m: &[(Yaml, Yaml)], err: &ErrFn<'_>) -> Result<Vec<Mount>, ConfigError> {
    if m.len() > MAX_MOUNTS {
        return Err(err("secrets", format!("more than {MAX_MOUNTS} mounts")));
    }
    let mut mounts: Vec<Mount> = Vec::new();
    for (k, v) in m {
        let name = k.as_str().unwrap_or("(not text)");
        let key = format!("secrets.{name}");
        let prefix =
            SecretPath::parse(name).map_err(|e| err(&key, format!("not a secret path: {e}")))?;
        if prefix.is_root() {
            return Err(err(&key, "a mount needs a name".into()));
        }
        let (written, version) = match v {
            Yaml::String(s) => (s.clone(), None),
            Yaml::Hash(_) => {
                let pairs = &mapping(v, &key, err)?;
                check_keys(pairs, &format!("{key}."), &["path", "version"], err)?;
                let path = pairs
                    .iter()
                    .find(|(k, _)| k.as_str() == Some("path"))
                    .and_then(|(_, v)| v.as_str())
                    .ok_or_else(|| err(&format!("{key}.path"), "missing: the KV v2 path".into()))?;
                let version = match pairs.iter().find(|(k, _)| k.as_str() == Some("version")) {
                    None => None,
                    Some((_, Yaml::Integer(n))) if *n > 0 => Some(n.unsigned_abs()),
                    Some(_) => {
                        return Err(err(
                            &format!("{key}.version"),
                            "expected a version number (1 or more)".into(),
                        ));
                    }
                };
                (path.to_owned(), version)
            }
            _ => {
                return Err(err(
                    &key,
                    "expected a KV v2 path (secret/data/...) or { path, version }".into(),
                ));
            }
        };
        let dynamic = is_dynamic(&written);
        if dynamic && version.is_some() {
            return Err(err(
                &key,
                "a dynamic credential (ENGINE/creds/ROLE) has no versions".into(),
            ));
        }
        let (engine, path) = if dynamic {
            split_creds_path(&written)
        } else {
            split_kv_path(&written)
        }
        .map_err(|m| err(&key, m))?;
        if let Some(other) = mounts
            .iter()
            .find(|o| o.prefix.starts_with(&prefix) || prefix.starts_with(&o.prefix))
        {
            return Err(err(
                &key,
                format!(
                    "overlaps the mount `{}` ({}): one path of the tree must come from one place",
                    other.prefix,
                    other.written()
                ),
            ));
        }
        mounts.push(Mount {
            prefix,
            engine,
            path,
            version,
            dynamic,
        });
    }
    Ok(mounts)
}

/// Whether `s` is a path of `[A-Za-z0-9._-]` segments (no `.`/`..`): what may be put in a
/// URL that carries the token.
pub(crate) fn valid_api_path(s: &str) -> bool {
    let s = s.trim_matches('/');
    !s.is_empty()
        && s.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// Whether `written` names a credentials endpoint of a secrets engine (`ENGINE/creds/ROLE`).
fn is_dynamic(written: &str) -> bool {
    written.trim_matches('/').split('/').any(|s| s == "creds")
}

/// `database/creds/readonly` → (`database`, `readonly`).
fn split_creds_path(written: &str) -> Result<(String, String), String> {
    if !valid_api_path(written) {
        return Err(format!(
            "{written:?}: a credentials path holds only [A-Za-z0-9._-] segments separated by /"
        ));
    }
    let segs: Vec<&str> = written.trim_matches('/').split('/').collect();
    match segs.iter().position(|s| *s == "creds") {
        Some(at) if at > 0 && at + 2 == segs.len() => {
            Ok((segs[..at].join("/"), segs[at + 1].to_owned()))
        }
        _ => Err(format!(
            "{written:?}: write ENGINE/creds/ROLE (e.g. database/creds/readonly) for credentials issued per run"
        )),
    }
}

/// `secret/data/agents/postgres` → (`secret`, `agents/postgres`).
fn split_kv_path(written: &str) -> Result<(String, String), String> {
    if !valid_api_path(written) {
        return Err(format!(
            "{written:?}: a KV v2 path holds only [A-Za-z0-9._-] segments separated by /"
        ));
    }
    let segs: Vec<&str> = written.trim_matches('/').split('/').collect();
    let Some(at) = segs.iter().position(|s| *s == "data") else {
        return Err(format!(
            "{written:?} is not a KV v2 data path: write ENGINE/data/PATH (e.g. secret/data/agents/postgres)"
        ));
    };
    if at == 0 || at + 1 == segs.len() {
        return Err(format!(
            "{written:?}: write ENGINE/data/PATH, with an engine mount before `data` and a path after it"
        ));
    }
    Ok((segs[..at].join("/"), segs[at + 1..].join("/")))
}

/// `scheme://host[:port]`, lower-cased; plain `http` only for a loopback host.
pub(crate) fn check_address(a: &str) -> Result<String, String> {
    let a = a.trim().trim_end_matches('/');
    let (scheme, rest) = a
        .split_once("://")
        .ok_or_else(|| format!("{a:?} has no https:// scheme"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "{a:?}: only https (and http on loopback) are supported"
        ));
    }
    if rest.is_empty()
        || rest.contains(['/', '@', '?', '#', '\\'])
        || rest.contains(char::is_whitespace)
    {
        return Err(format!(
            "{a:?} must be scheme://host[:port] (no path, user or query)"
        ));
    }
    let host = if let Some(end) = rest.strip_prefix('[').and_then(|r| r.find(']')) {
        &rest[1..=end]
    } else {
        rest.split(':').next().unwrap_or("")
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        return Err(format!("{a:?} has no host"));
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if scheme == "http" && !loopback {
        return Err(format!(
            "{a:?}: plain http sends the token in clear; it is allowed only for a loopback address (127.0.0.1, ::1, localhost). Use https"
        ));
    }
    Ok(format!("{scheme}://{}", rest.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<VaultConfig, ConfigError> {
        VaultConfig::parse(text, Path::new("vault-config.yaml"), Path::new("/etc/a"))
    }

    #[test]
    fn the_issue_shape_parses() {
        let c = parse(
            "vault:\n  address: http://127.0.0.1:8200\n  ca_file: ca.pem\n  auth:\n    method: approle\n    role: agent-role\n    role_id_file: /etc/agentsec/role_id\n    secret_id_file: secret_id\nsecrets:\n  databases.postgres: secret/data/agents/postgres\n  communication.github: { path: secret/data/agents/github, version: 3 }\n",
        )
        .unwrap();
        assert!(matches!(&c.auth, AuthMethod::AppRole { role: Some(r), .. } if r == "agent-role"));
        let c = parse(
            "vault:\n  address: [http://127.0.0.1:8200, http://127.0.0.1:8210]\n  ca_file: ca.pem\n  cache_ttl: 0\n  auth:\n    method: approle\n    role_id_file: /etc/agentsec/role_id\n    secret_id_file: secret_id\nsecrets:\n  databases.postgres: secret/data/agents/postgres\n  communication.github: { path: secret/data/agents/github, version: 3 }\n",
        )
        .unwrap();
        assert_eq!(c.addresses.len(), 2);
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/a/ca.pem")));
        assert_eq!(c.cache_ttl, Duration::ZERO);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(
            c.auth,
            AuthMethod::AppRole {
                mount: "approle".into(),
                role: None,
                role_id_file: CredentialSource::File("/etc/agentsec/role_id".into()),
                secret_id_file: CredentialSource::File("/etc/a/secret_id".into())
            }
        );
        assert_eq!(c.mounts[0].engine, "secret");
        assert_eq!(c.mounts[0].path, "agents/postgres");
        assert_eq!(c.mounts[1].version, Some(3));
    }

    #[test]
    fn mistakes_name_the_key() {
        let base = "vault:\n  address: http://127.0.0.1:8200\n  auth: { method: token }\n";
        let cases = [
            (
                "vault:\n  address: http://vault.example:8200\n  auth: { method: token }\n",
                "vault.address",
                "loopback",
            ),
            (
                "vault:\n  address: http://127.0.0.1:8200\n  auth: { method: ldap }\n",
                "vault.auth.method",
                "not supported",
            ),
            (
                "vault:\n  address: http://127.0.0.1:8200\n  auth: { method: jwt, jwt_file: j }\n",
                "vault.auth.role",
                "missing",
            ),
            (
                "vault:\n  address: http://127.0.0.1:8200\n  auth: { method: token, token_file: 'sops:x.yaml' }\n",
                "vault.auth.token_file",
                "sops:FILE#dotted.path",
            ),
            (
                "vault:\n  address: http://127.0.0.1:8200\n  timeout: soon\n  auth: { method: token }\n",
                "vault.timeout",
                "not a duration",
            ),
            ("vault:\n  adress: x\n", "vault.adress", "unknown key"),
        ];
        for (text, key, words) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains(words), "{e}");
        }
        for (mounts, key, words) in [
            (
                "  a.b: secret/data/x\n  a: secret/data/y\n",
                "secrets.a",
                "overlaps the mount `a.b`",
            ),
            ("  a: secret/agents/x\n", "secrets.a", "ENGINE/data/PATH"),
            ("  a: secret/data/../x\n", "secrets.a", "[A-Za-z0-9._-]"),
            ("  a: database/creds\n", "secrets.a", "ENGINE/creds/ROLE"),
            (
                "  a: { path: database/creds/ro, version: 2 }\n",
                "secrets.a",
                "has no versions",
            ),
        ] {
            let e = parse(&format!("{base}secrets:\n{mounts}")).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains(words), "{e}");
        }
        assert!(check_address("https://vault.example:8200").is_ok());
        assert!(check_address("http://[::1]:8200").is_ok());
        assert!(check_address("https://u@vault").is_err());
    }
}
