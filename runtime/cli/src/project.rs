//! `agentsec.yaml`: per-directory defaults for `agentsec-run`, `agentsec
//! policy` (policy, secrets) and `agentsec audit` (audit log, audit key).
//!
//! They look for `agentsec.yaml` in the current directory and its parents
//! (like sops looks for `.sops.yaml`). Paths in it are relative to the
//! file's directory. Flags always win over it. Example (this repository's):
//!
//! # A trust boundary
//!
//! The file chooses the policy (when `--policy` is omitted), the audit log,
//! the key files and the skills directory, so it is only read from where the
//! operator put it:
//!
//! - the search goes upward from the current directory and stops after the
//!   repository root (the first directory holding `.git`) or `$HOME`,
//!   whichever comes first, and at the first directory others can write;
//! - the file, and every directory searched on the way to it, must be owned
//!   by the user running agentsec or root and writable by nobody else
//!   (see [`crate::trust`]); otherwise agentsec refuses to start, naming the
//!   path, rather than silently ignoring it;
//! - `agentsec-run --show-config` prints the file in force (and
//!   `AGENTSEC_LOG=info` logs it).
//!
//! ```yaml
//! secrets: demo/secrets.yaml
//! policy: policies/demo.yaml     # or a list of files/directories
//! audit_log: demo/audit.log
//! age_key_file: demo/age-key.DEMO-ONLY.txt
//! # audit_key: audit-key.age   # optional: keyed (HMAC) audit chain
//! # audit_sync: record          # optional: fsync each record (default: run)
//! # hc_vault_allowlist: [https://vault.example:8200]  # Vault origins a token may go to
//! # vault_config: vault-config.yaml  # optional: Vault/OpenBao KV v2 mounts (with `secrets:`, both)
//! # stores:                      # optional, instead of secrets/vault_config: a store stack
//! #   - sops: demo/secrets.yaml
//! #   - vault: vault-config.yaml
//! # audit:                       # optional: ship every record to sinks too
//! #   secrets: { log_access: true, log_destination: agent_audit_log }  # accepted, as in the seed
//! #   sinks:
//! #     - postgres://agentsec@127.0.0.1:5433/audit
//! #     - syslog+tcp://127.0.0.1:6514
//! #   ship: async                # or sync
//! ```

use std::io::Read as _;
use std::path::{Path, PathBuf};

use agentsec_audit::sink::SinkUrl;
use agentsec_host::AuditSync;
use yaml_rust2::Event;
use yaml_rust2::parser::Parser;

/// The file name searched for.
pub const FILE_NAME: &str = "agentsec.yaml";

/// How many parent directories are searched (as sops does for `.sops.yaml`).
pub const MAX_SEARCH_DEPTH: usize = 100;

/// Project files larger than this are refused: a defaults file is a few lines.
pub const MAX_PROJECT_FILE_SIZE: u64 = 64 * 1024;

/// Defaults read from an `agentsec.yaml`, paths already resolved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Project {
    /// The file these came from.
    pub file: PathBuf,
    /// Default `--secrets`.
    pub secrets: Option<PathBuf>,
    /// Default `--policy` (files or directories).
    pub policy: Vec<PathBuf>,
    /// Default `--audit-log`.
    pub audit_log: Option<PathBuf>,
    /// An age identity file used in addition to the ones sops would find.
    pub age_key_file: Option<PathBuf>,
    /// Default `--audit-key`: the age-encrypted HMAC key of a keyed audit log.
    pub audit_key: Option<PathBuf>,
    /// Default `--audit-sync`.
    pub audit_sync: Option<AuditSync>,
    /// Default `--skills`: the directory whose components count by name.
    pub skills_dir: Option<PathBuf>,
    /// Vault origins (`scheme://host:port`) a `hc_vault` master key may send `VAULT_TOKEN`
    /// to, besides `VAULT_ADDR` and `SOPS_HC_VAULT_ALLOWLIST`.
    pub hc_vault_allowlist: Vec<String>,
    /// `audit.sinks`: where records are shipped besides the local log.
    pub audit_sinks: Vec<SinkUrl>,
    /// `audit.ship`: whether a release waits for the sinks.
    pub ship: Option<ShipMode>,
    /// Default `--vault-config`.
    pub vault_config: Option<PathBuf>,
    /// `stores:`: a store stack (SOPS files and Vault configurations) in one tree.
    pub stores: Vec<StoreSpec>,
}

/// One store of a stack (`stores:` in agentsec.yaml, or `--secrets` / `--vault-config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// A SOPS file: its leaves.
    Sops(PathBuf),
    /// A `vault-config.yaml`: its mounts.
    Vault(PathBuf),
}

/// `audit.ship` / `--ship`: whether releasing a value waits for the sinks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ShipMode {
    /// Records are shipped after the run (and by `agentsec audit ship`); a
    /// sink that is down delays nothing and loses nothing (the cursor stays).
    #[default]
    Async,
    /// Each record is acknowledged by every sink before its value is
    /// released; a sink that is down fails the request closed.
    Sync,
}

impl ShipMode {
    /// `async` or `sync`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Async => "async",
            Self::Sync => "sync",
        }
    }
}

/// `async` or `sync`, as `audit.ship` and `--ship` spell it.
pub fn parse_ship(text: &str) -> Result<ShipMode, String> {
    match text {
        "async" => Ok(ShipMode::Async),
        "sync" => Ok(ShipMode::Sync),
        other => Err(format!(
            "ship `{other}`: use `async` (runs do not wait for the sinks) or `sync` (each release waits for every sink's acknowledgement)"
        )),
    }
}

/// Finds and reads the nearest trusted `agentsec.yaml` from `start` upward
/// (see the module docs for where the search stops and what is refused).
/// Paths in the result are relative to `start` (as `../..` when the file is
/// in a parent), so that messages show them the way the user would type them.
///
/// # Errors
/// A file that is found but not trusted (or unreadable, or invalid), with
/// the path and how to fix it.
pub fn discover(start: &Path) -> Result<Option<Project>, String> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .and_then(|h| Path::new(&h).canonicalize().ok());
    let start = start
        .canonicalize()
        .map_err(|e| format!("{}: {e}", start.display()))?;
    let mut dir = Some(start.as_path());
    let mut relative = PathBuf::new();
    for _ in 0..MAX_SEARCH_DEPTH {
        let Some(current) = dir else { break };
        let candidate = current.join(FILE_NAME);
        let trusted_dir = crate::trust::check_dir(current);
        match std::fs::symlink_metadata(&candidate) {
            Ok(_) => {
                if let Err(why) = trusted_dir {
                    return Err(refusal(&candidate, &why));
                }
                let project = load_with_base(&candidate, &relative)?;
                tracing::info!(file = %candidate.display(), "using this agentsec.yaml");
                return Ok(Some(project));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", candidate.display())),
        }
        if let Err(why) = trusted_dir {
            tracing::info!(reason = %why, "agentsec.yaml search stopped at a directory others control");
            return Ok(None);
        }
        if current.join(".git").exists() || Some(current) == home.as_deref() {
            break;
        }
        dir = current.parent();
        relative.push("..");
    }
    tracing::info!(start = %start.display(), "no agentsec.yaml in force");
    Ok(None)
}

/// The message for a project file agentsec will not read.
fn refusal(file: &Path, why: &str) -> String {
    format!(
        "refusing {}: {why}. agentsec.yaml chooses the policy, the audit log and key files, so it must be owned by you or root and writable by no one else, as must every directory searched on the way to it; fix the ownership or mode, remove the file, or run from another directory",
        file.display()
    )
}

/// Reads one project file; paths are relative to the file's directory.
///
/// # Errors
/// As [`discover`].
pub fn load(file: &Path) -> Result<Project, String> {
    load_with_base(file, file.parent().unwrap_or(Path::new(".")))
}

fn load_with_base(file: &Path, base: &Path) -> Result<Project, String> {
    let shown = file.display();
    // A symlink is followed, but then its target's directory must be
    // trusted too: the link's directory vouches only for the link.
    let real = file.canonicalize().map_err(|e| format!("{shown}: {e}"))?;
    if real != file
        && let Some(dir) = real.parent()
    {
        crate::trust::check_dir(dir).map_err(|why| refusal(file, &why))?;
    }
    // One open: the checks below are about the file that is read.
    // O_NONBLOCK: a FIFO planted under the name must not block the open.
    let handle = std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::fs::OpenOptions::new().read(true),
        rustix::fs::OFlags::NONBLOCK.bits().cast_signed(),
    )
    .open(file)
    .map_err(|e| format!("{shown}: {e}"))?;
    let meta = handle.metadata().map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    crate::trust::check(file, &meta).map_err(|why| refusal(file, &why.to_string()))?;
    let size = meta.len();
    if size > MAX_PROJECT_FILE_SIZE {
        return Err(format!(
            "{shown}: {size} bytes, larger than the {MAX_PROJECT_FILE_SIZE}-byte limit"
        ));
    }
    let mut text = String::new();
    handle
        .take(MAX_PROJECT_FILE_SIZE + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{shown}: {e}"))?;
    if text.len() as u64 > MAX_PROJECT_FILE_SIZE {
        return Err(format!(
            "{shown}: larger than the {MAX_PROJECT_FILE_SIZE}-byte limit"
        ));
    }
    let mut project = Project {
        file: file.to_owned(),
        ..Project::default()
    };
    let (entries, audit, stores) =
        parse(&text).map_err(|(line, col, msg)| format!("{shown}:{line}:{col}: {msg}"))?;
    if let Some(audit) = audit {
        for (url, (line, col)) in &audit.sinks {
            let sink = SinkUrl::parse(url).map_err(|e| format!("{shown}:{line}:{col}: {e}"))?;
            project.audit_sinks.push(sink);
        }
        if let Some((value, (line, col))) = &audit.ship {
            project.ship =
                Some(parse_ship(value).map_err(|e| format!("{shown}:{line}:{col}: {e}"))?);
        }
    }
    for (kind, path, _) in stores {
        project.stores.push(match kind.as_str() {
            "sops" => StoreSpec::Sops(base.join(path)),
            _ => StoreSpec::Vault(base.join(path)),
        });
    }
    for (key, (line, col), values) in entries {
        let at = |msg: &str| format!("{shown}:{line}:{col}: {msg}");
        let one = || match values.as_slice() {
            [v] => Ok(base.join(v)),
            _ => Err(at(&format!("`{key}` takes one path"))),
        };
        match key.as_str() {
            "secrets" => project.secrets = Some(one()?),
            "audit_log" => project.audit_log = Some(one()?),
            "age_key_file" => project.age_key_file = Some(one()?),
            "audit_key" => project.audit_key = Some(one()?),
            "skills_dir" => project.skills_dir = Some(one()?),
            "vault_config" => project.vault_config = Some(one()?),
            "policy" => project.policy = values.iter().map(|v| base.join(v)).collect(),
            "hc_vault_allowlist" => {
                for v in &values {
                    if !(v.starts_with("https://") || v.starts_with("http://")) {
                        return Err(at(&format!(
                            "`hc_vault_allowlist`: {v:?} is not a Vault origin (https://host:port)"
                        )));
                    }
                }
                project.hc_vault_allowlist = values.clone();
            }
            "audit_sync" => {
                let [value] = values.as_slice() else {
                    return Err(at("`audit_sync` takes one word: run or record"));
                };
                project.audit_sync = Some(parse_audit_sync(value).map_err(|e| at(&e))?);
            }
            other => {
                return Err(at(&format!(
                    "unknown key `{other}`; expected one of: secrets, policy, audit_log, age_key_file, audit_key, audit_sync, skills_dir, hc_vault_allowlist, vault_config, stores, audit"
                )));
            }
        }
    }
    Ok(project)
}

/// [`describe`] as JSON (`agentsec-run --show-config --format json`): `file` is `null`
/// when no agentsec.yaml is in force, and a setting that is not set is `null`.
pub fn describe_json(project: &Project) -> serde_json::Value {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let found = !project.file.as_os_str().is_empty();
    serde_json::json!({
        "file": found.then(|| project.file.display().to_string()),
        "secrets": path(&project.secrets),
        "policy": project.policy.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "audit_log": path(&project.audit_log),
        "audit_key": path(&project.audit_key),
        "audit_sync": project.audit_sync.map(|s| match s {
            AuditSync::Record => "record",
            _ => "run",
        }),
        "age_key_file": path(&project.age_key_file),
        "skills_dir": path(&project.skills_dir),
        "hc_vault_allowlist": project.hc_vault_allowlist,
        "audit_sinks": project.audit_sinks.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "ship": project.ship.map(ShipMode::as_str),
        "vault_config": path(&project.vault_config),
        "stores": project.stores.iter().map(|s| match s {
            StoreSpec::Sops(p) => serde_json::json!({"sops": p.display().to_string()}),
            StoreSpec::Vault(p) => serde_json::json!({"vault": p.display().to_string()}),
        }).collect::<Vec<_>>(),
    })
}

/// What `agentsec-run --show-config` prints: the file in force and what it
/// sets (flags still win over each of these).
pub fn describe(project: &Project) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if project.file.as_os_str().is_empty() {
        out.push_str("agentsec.yaml: none in force (searched from the current directory up to the repository root or $HOME)\n");
        return out;
    }
    let _ = writeln!(out, "agentsec.yaml: {}", project.file.display());
    let show = |p: &Option<PathBuf>| {
        p.as_ref()
            .map_or("(not set)".to_owned(), |p| p.display().to_string())
    };
    let policy = if project.policy.is_empty() {
        "(not set)".to_owned()
    } else {
        project
            .policy
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sinks = if project.audit_sinks.is_empty() {
        "(not set)".to_owned()
    } else {
        project
            .audit_sinks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sync = match project.audit_sync {
        Some(AuditSync::Record) => "record",
        Some(_) => "run",
        None => "(not set)",
    };
    for (key, value) in [
        ("secrets", show(&project.secrets)),
        ("policy", policy),
        ("audit_log", show(&project.audit_log)),
        ("audit_key", show(&project.audit_key)),
        ("audit_sync", sync.to_owned()),
        ("age_key_file", show(&project.age_key_file)),
        ("skills_dir", show(&project.skills_dir)),
        (
            "hc_vault_allowlist",
            if project.hc_vault_allowlist.is_empty() {
                "(not set)".to_owned()
            } else {
                project.hc_vault_allowlist.join(", ")
            },
        ),
        ("audit.sinks", sinks),
        ("vault_config", show(&project.vault_config)),
        (
            "stores",
            if project.stores.is_empty() {
                "(not set)".to_owned()
            } else {
                project
                    .stores
                    .iter()
                    .map(|s| match s {
                        StoreSpec::Sops(p) => format!("sops {}", p.display()),
                        StoreSpec::Vault(p) => format!("vault {}", p.display()),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        (
            "audit.ship",
            project
                .ship
                .map_or("(not set)", ShipMode::as_str)
                .to_owned(),
        ),
    ] {
        let _ = writeln!(out, "  {key}: {value}");
    }
    out
}

/// `run` or `record` (see [`AuditSync`]), as `--audit-sync` and
/// `audit_sync:` spell it.
pub fn parse_audit_sync(text: &str) -> Result<AuditSync, String> {
    match text {
        "run" => Ok(AuditSync::Run),
        "record" => Ok(AuditSync::Record),
        other => Err(format!(
            "audit sync `{other}`: use `run` (one fsync before the run's output is returned) or `record` (one fsync per record)"
        )),
    }
}

type Entry = (String, (usize, usize), Vec<String>);

/// A line and column in the file.
type Pos = (usize, usize);

/// The `audit:` block, as written.
#[derive(Debug, Default)]
struct AuditBlock {
    sinks: Vec<(String, Pos)>,
    ship: Option<(String, Pos)>,
}

type ParseError = (usize, usize, String);

/// The next event and where it is.
type Next<'a> = dyn FnMut() -> Result<(Event, Pos), ParseError> + 'a;

/// Skips one node whose first event was `first` (a scalar, or a whole
/// mapping or sequence).
fn skip_node(first: &Event, next: &mut Next<'_>) -> Result<(), ParseError> {
    let mut depth: usize = match first {
        Event::MappingStart(..) | Event::SequenceStart(..) => 1,
        _ => 0,
    };
    while depth > 0 {
        match next()?.0 {
            Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
            Event::MappingEnd | Event::SequenceEnd => depth -= 1,
            Event::StreamEnd => break,
            _ => {}
        }
    }
    Ok(())
}

/// The body of `audit:` (after its MappingStart): `secrets` (the seed's
/// block, accepted as is), `sinks` (a URL or a list of them), `ship`.
fn parse_audit(next: &mut Next<'_>) -> Result<AuditBlock, ParseError> {
    let mut block = AuditBlock::default();
    let mut seen: Vec<String> = Vec::new();
    loop {
        let (event, pos) = next()?;
        let key = match event {
            Event::MappingEnd => return Ok(block),
            Event::Scalar(key, ..) => key,
            _ => {
                return Err((
                    pos.0,
                    pos.1,
                    "expected a key of `audit:` (secrets, sinks, ship)".into(),
                ));
            }
        };
        if seen.contains(&key) {
            return Err((pos.0, pos.1, format!("duplicate key `audit.{key}`")));
        }
        seen.push(key.clone());
        let (value, vpos) = next()?;
        match (key.as_str(), value) {
            ("secrets", first @ (Event::MappingStart(..) | Event::Scalar(..))) => {
                skip_node(&first, next)?;
            }
            ("sinks", Event::Scalar(url, ..)) => block.sinks.push((url, vpos)),
            ("sinks", Event::SequenceStart(..)) => loop {
                match next()? {
                    (Event::SequenceEnd, _) => break,
                    (Event::Scalar(url, ..), p) => block.sinks.push((url, p)),
                    (_, p) => {
                        return Err((p.0, p.1, "`audit.sinks` is a list of sink URLs".into()));
                    }
                }
            },
            ("ship", Event::Scalar(mode, ..)) => block.ship = Some((mode, vpos)),
            ("secrets" | "sinks" | "ship", _) => {
                return Err((
                    vpos.0,
                    vpos.1,
                    format!(
                        "`audit.{key}`: {}",
                        match key.as_str() {
                            "secrets" =>
                                "expected a mapping (e.g. { log_access: true, log_destination: agent_audit_log })",
                            "sinks" => "expected a list of sink URLs",
                            _ => "expected `async` or `sync`",
                        }
                    ),
                ));
            }
            (other, _) => {
                return Err((
                    pos.0,
                    pos.1,
                    format!("unknown key `audit.{other}`; expected one of: secrets, sinks, ship"),
                ));
            }
        }
    }
}

/// One entry of `stores:`: `sops` or `vault`, the path, where it was written.
type StoreEntry = (String, String, Pos);

/// The body of `stores:` (after its SequenceStart): items `{ sops: FILE }` or `{ vault: FILE }`.
fn parse_stores(next: &mut Next<'_>) -> Result<Vec<StoreEntry>, ParseError> {
    let mut out = Vec::new();
    let bad = |p: Pos| {
        (
            p.0,
            p.1,
            "`stores:` is a list of `- sops: FILE` and `- vault: VAULT-CONFIG.yaml` items"
                .to_owned(),
        )
    };
    loop {
        match next()? {
            (Event::SequenceEnd, _) => return Ok(out),
            (Event::MappingStart(..), _) => {}
            (_, p) => return Err(bad(p)),
        }
        let (kind, pos) = match next()? {
            (Event::Scalar(k, ..), p) if k == "sops" || k == "vault" => (k, p),
            (Event::Scalar(k, ..), p) => {
                return Err((
                    p.0,
                    p.1,
                    format!("unknown store kind `{k}` in `stores:`; expected sops or vault"),
                ));
            }
            (_, p) => return Err(bad(p)),
        };
        let path = match next()? {
            (Event::Scalar(v, ..), _) if !v.is_empty() => v,
            (_, p) => return Err(bad(p)),
        };
        match next()? {
            (Event::MappingEnd, _) => {}
            (_, p) => {
                return Err((
                    p.0,
                    p.1,
                    "each `stores:` item has one key: sops or vault".to_owned(),
                ));
            }
        }
        out.push((kind, path, pos));
    }
}

/// A top-level mapping of scalar keys to a scalar or a list of scalars, the
/// `audit:` mapping and the `stores:` list.
/// What [`parse`] finds: the scalar entries, `audit:` and `stores:`.
type Parsed = (Vec<Entry>, Option<AuditBlock>, Vec<StoreEntry>);

fn parse(text: &str) -> Result<Parsed, ParseError> {
    let mut parser = Parser::new_from_str(text);
    let mut next = move || {
        parser
            .next_token()
            .map(|(event, mark)| (event, (mark.line(), mark.col() + 1)))
            .map_err(|e| (e.marker().line(), e.marker().col() + 1, e.info().to_owned()))
    };
    let mut audit = None;
    let mut stores: Option<Vec<StoreEntry>> = None;
    let mut entries: Vec<Entry> = Vec::new();
    let mut depth = 0usize;
    let mut key: Option<(String, (usize, usize))> = None;
    let mut list: Option<Vec<String>> = None;
    loop {
        let (event, pos) = next()?;
        match event {
            Event::StreamEnd => break,
            Event::MappingStart(..)
                if depth == 1
                    && list.is_none()
                    && key.as_ref().is_some_and(|(k, _)| k == "audit") =>
            {
                if audit.is_some() {
                    return Err((pos.0, pos.1, "duplicate key `audit`".into()));
                }
                audit = Some(parse_audit(&mut next)?);
                key = None;
            }
            Event::SequenceStart(..)
                if depth == 1
                    && list.is_none()
                    && key.as_ref().is_some_and(|(k, _)| k == "stores") =>
            {
                if stores.is_some() {
                    return Err((pos.0, pos.1, "duplicate key `stores`".into()));
                }
                stores = Some(parse_stores(&mut next)?);
                key = None;
            }
            Event::StreamStart | Event::DocumentStart | Event::DocumentEnd | Event::Nothing => {}
            Event::MappingStart(..) if depth == 0 => depth = 1,
            Event::MappingEnd if depth == 1 => depth = 0,
            Event::Scalar(value, ..) => match (&key, &mut list) {
                (None, None) if depth == 1 => {
                    if entries.iter().any(|(k, ..)| *k == value) {
                        return Err((pos.0, pos.1, format!("duplicate key `{value}`")));
                    }
                    key = Some((value, pos));
                }
                (Some(_), Some(items)) => items.push(value),
                (Some(_), None) => {
                    if let Some((k, p)) = key.take() {
                        entries.push((k, p, vec![value]));
                    }
                }
                _ => return Err((pos.0, pos.1, "expected `key: value` lines".into())),
            },
            Event::SequenceStart(..) if key.is_some() && list.is_none() => list = Some(Vec::new()),
            Event::SequenceEnd if list.is_some() => {
                if let (Some((k, p)), Some(items)) = (key.take(), list.take()) {
                    entries.push((k, p, items));
                }
            }
            _ => {
                return Err((
                    pos.0,
                    pos.1,
                    "expected `key: value` or `key: [a, b]`".into(),
                ));
            }
        }
    }
    Ok((entries, audit, stores.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_paths_relative_to_the_file() {
        let dir = std::env::temp_dir().join(format!("agentsec-project-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(FILE_NAME);
        std::fs::write(
            &file,
            "secrets: s.yaml\npolicy: [a.yaml, dir]\naudit_log: a.log\n",
        )
        .unwrap();
        let p = load(&file).unwrap();
        assert_eq!(p.secrets, Some(dir.join("s.yaml")));
        assert_eq!(p.policy, vec![dir.join("a.yaml"), dir.join("dir")]);
        assert_eq!(p.audit_log, Some(dir.join("a.log")));
        assert_eq!(p.age_key_file, None);
        std::fs::write(&file, "secrets: s.yaml\nsecret: x\n").unwrap();
        let err = load(&file).unwrap_err();
        assert!(err.ends_with(":2:1: unknown key `secret`; expected one of: secrets, policy, audit_log, age_key_file, audit_key, audit_sync, skills_dir, hc_vault_allowlist, vault_config, stores, audit"), "{err}");
        std::fs::write(&file, "audit_sync: record\n").unwrap();
        assert_eq!(load(&file).unwrap().audit_sync, Some(AuditSync::Record));
        std::fs::write(&file, "audit_sync: sometimes\n").unwrap();
        let err = load(&file).unwrap_err();
        assert!(
            err.contains(":1:1: audit sync `sometimes`: use `run`"),
            "{err}"
        );
        std::fs::write(
            &file,
            "audit:\n  secrets: { log_access: true, log_destination: agent_audit_log }\n  sinks:\n    - postgres://agentsec@127.0.0.1:5433/audit\n    - syslog+tcp://127.0.0.1:6514\n  ship: sync\naudit_log: a.log\n",
        )
        .unwrap();
        let p = load(&file).unwrap();
        assert_eq!(p.audit_sinks.len(), 2);
        assert_eq!(p.audit_sinks[1].to_string(), "syslog+tcp://127.0.0.1:6514");
        assert_eq!(p.ship, Some(ShipMode::Sync));
        assert_eq!(p.audit_log, Some(dir.join("a.log")));
        std::fs::write(&file, "audit:\n  sinks: [ftp://x]\n").unwrap();
        let err = load(&file).unwrap_err();
        assert!(err.contains(":2:11: audit sink URL: `ftp://x`"), "{err}");
        std::fs::write(&file, "audit:\n  sinks: [postgres://u:pw@h/db]\n").unwrap();
        let err = load(&file).unwrap_err();
        assert!(
            err.contains("must not carry a password") && !err.contains("pw@"),
            "{err}"
        );
        std::fs::write(&file, "audit:\n  shipping: async\n").unwrap();
        let err = load(&file).unwrap_err();
        assert!(err.contains(":2:3: unknown key `audit.shipping`"), "{err}");
        std::fs::write(&file, "audit:\n  ship: later\n").unwrap();
        assert!(load(&file).unwrap_err().contains(":2:9: ship `later`"));
        std::fs::write(
            &file,
            "stores:\n  - sops: s.yaml\n  - vault: v.yaml\nvault_config: w.yaml\n",
        )
        .unwrap();
        let p = load(&file).unwrap();
        assert_eq!(
            p.stores,
            vec![
                StoreSpec::Sops(dir.join("s.yaml")),
                StoreSpec::Vault(dir.join("v.yaml"))
            ]
        );
        assert_eq!(p.vault_config, Some(dir.join("w.yaml")));
        std::fs::write(&file, "stores:\n  - consul: c.yaml\n").unwrap();
        assert!(
            load(&file)
                .unwrap_err()
                .contains(":2:5: unknown store kind `consul`")
        );
        std::fs::write(&file, "secrets: [a, b]\n").unwrap();
        assert!(load(&file).unwrap_err().contains("takes one path"));
        std::fs::write(&file, "secrets: {a: b}\n").unwrap();
        assert!(load(&file).unwrap_err().contains(":1:"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
