//! [`VaultStore`]: KV v2 secrets mounted into the dotted tree.
//!
//! A mount `databases.postgres: secret/data/agents/postgres` makes every key of that KV
//! secret a leaf: `databases.postgres.password` is the field `password`. Segments between
//! the mount and the last one name secrets below a folder: with `databases:
//! secret/data/agents`, `databases.postgres.password` is the field `password` of the secret
//! `agents/postgres`. A string field is the value as stored; a number or boolean its JSON
//! text; `null` is not found; a mapping or list is not a leaf.
//!
//! **Failure is `unavailable`, never `not-found`.** A server that is down, sealed, slow
//! (`vault.timeout`) or answers 5xx, after [`crate::client::MAX_ROUNDS`] tries (to a cluster's
//! active node), gives [`StoreError::Unavailable`]; so does a Vault policy that refuses
//! agentsec's token a path (403 with a valid token, confirmed by `lookup-self`): agentsec's
//! policy granted the read, so the refusal is a store configuration problem, and its
//! message says which Vault path agentsec's token must be allowed to read. Only a 404 (no
//! such secret, or no such field in it) is not-found.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentsec_policy::{Authorized, SecretPath};
use agentsec_secrets::{NameIndex, SecretStore, SecretValue, StoreError, StoredSecret};
use zeroize::Zeroizing;

use crate::VaultToken;
use crate::auth::{self, Creds, LoginError, Session, SopsReader};
use crate::client::{Answer, Http, error_excerpt};
use crate::config::{Mount, VaultConfig};

/// Most secrets read while listing one prefix (each is one request): bounds the time a
/// listing of a large folder can take.
pub const MAX_LIST_SECRETS: usize = 1000;

/// Most folder levels walked below a mount while listing.
pub const MAX_LIST_DEPTH: usize = 16;

/// How often the renewer looks at the token's lifetime. Reason: renewal is due at 2/3 of
/// the TTL; checking every second renews even a short-lived token (a few seconds) in time,
/// and a check is a lock and a clock read.
pub const RENEW_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct OpenError {
    /// The configuration file.
    pub file: String,
    /// What failed (no credential in it).
    pub message: String,
}

/// Why a write to Vault failed (no value in it).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct WriteError {
    /// What failed.
    pub message: String,
}

/// One field of a KV secret.
enum Field {
    Leaf(SecretValue),
    Branch(Vec<String>),
    Null,
}

/// A KV secret as read: its fields in order.
struct Secret {
    fields: Vec<(String, Field)>,
}

struct Cached {
    at: Instant,
    secret: Arc<Secret>,
}

/// Where a leaf of the tree lives in Vault ([`VaultStore::locate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvLocation {
    /// The KV v2 engine's mount path (`secret`).
    pub engine: String,
    /// The secret inside it (`agents/postgres`).
    pub secret: String,
    /// The field of the secret (`password`).
    pub field: String,
    /// The version the mount is pinned to, if any (such a mount is read-only here).
    pub pinned: Option<u64>,
}

/// Vault/OpenBao KV v2 secrets behind the [`SecretStore`] trait.
pub struct VaultStore {
    config: VaultConfig,
    http: Arc<Http>,
    /// `VAULT_TOKEN` from agentsec's environment and the SOPS credential reader.
    creds: Creds,
    /// `None` until a login succeeds (Vault did not answer at start).
    session: Arc<Mutex<Option<Session>>>,
    cache: Mutex<HashMap<String, Cached>>,
    /// KV folder listings (names only), kept as long as values (`cache_ttl`): every run
    /// lists the store once to name unknown paths in its audit records, which must not
    /// cost a request to Vault per run.
    folders: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    /// Tells the renewer thread to stop (set on drop).
    stop: Arc<AtomicBool>,
    /// Credentials issued for runs that have not ended: run id → its leases, each run's
    /// behind its own lock (held while a credential is issued for it, so that a run's reads
    /// share one lease without one run's request to Vault holding up the others).
    leases: Mutex<HashMap<String, RunLeases>>,
}

/// The leases of one run.
type RunLeases = Arc<Mutex<Vec<Lease>>>;

/// Longest lease id accepted from Vault. Reason: ids are `MOUNT/creds/ROLE/` plus a
/// 24-character nonce, well under 200 bytes; it goes into every audit record of the run.
pub const MAX_LEASE_ID_LEN: usize = 512;

/// A dynamic credential issued for one run: its lease and fields.
struct Lease {
    /// The mount it was issued for (`database/creds/readonly`).
    mount: String,
    /// Vault's lease id (an identifier, not a credential).
    id: String,
    fields: Vec<(String, SecretValue)>,
}

/// Most runs holding dynamic credentials at once. Reason: each costs a lease in Vault
/// and a database role; far beyond what one host runs concurrently, and it bounds what a
/// flood of runs can make agentsec hold if their ends were somehow lost.
pub const MAX_LEASED_RUNS: usize = 1024;

/// The fields a `database` engine's credential has, listed without issuing one (so that
/// `list-secrets`, the policy review and the audit's names see them).
const DATABASE_FIELDS: [&str; 2] = ["username", "password"];

impl std::fmt::Debug for VaultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultStore")
            .field("file", &self.config.file)
            .field("addresses", &self.config.addresses)
            .field("mounts", &self.config.mounts.len())
            .finish_non_exhaustive()
    }
}

enum Read {
    Found(Arc<Secret>),
    Missing,
}

impl VaultStore {
    /// Logs in (failing fast on a wrong credential; a cluster that does not answer is
    /// logged in to at the first read it answers).
    /// `env_token`: `VAULT_TOKEN` from agentsec's own environment, used by method `token`
    /// when no `token_file` is configured.
    ///
    /// # Errors
    /// The CA file cannot be read, or the login fails (the message has no credential).
    pub fn open(
        config: VaultConfig,
        env_token: Option<VaultToken>,
    ) -> Result<VaultStore, OpenError> {
        Self::open_with(config, env_token, None)
    }

    /// [`VaultStore::open`], with `sops` reading the configuration's `sops:FILE#path`
    /// credential sources (each login reads them again, so a rotated leaf is picked up).
    ///
    /// # Errors
    /// As [`VaultStore::open`].
    pub fn open_with(
        config: VaultConfig,
        env_token: Option<VaultToken>,
        sops: Option<SopsReader>,
    ) -> Result<VaultStore, OpenError> {
        let creds = Creds {
            env_token: env_token.map(Arc::new),
            sops,
        };
        let file = config.file.display().to_string();
        let http = Http::new(&config).map_err(|message| OpenError {
            file: file.clone(),
            message,
        })?;
        // A refused credential stops start-up; a cluster that does not answer does not:
        // reads are `unavailable` until it does (and each one tries to log in).
        let session = match auth::login(&http, &config.auth, &creds) {
            Ok(session) => Some(session),
            Err(LoginError::Unavailable(e)) => {
                tracing::warn!(
                    file = %file,
                    "Vault does not answer ({e}); its secrets are unavailable until it does"
                );
                None
            }
            Err(LoginError::Refused(e)) => {
                return Err(OpenError {
                    file: file.clone(),
                    message: format!("Vault login ({}): {e}", config.auth.name()),
                });
            }
        };
        let store = VaultStore {
            config,
            http: Arc::new(http),
            creds,
            session: Arc::new(Mutex::new(session)),
            cache: Mutex::new(HashMap::new()),
            folders: Mutex::new(HashMap::new()),
            stop: Arc::default(),
            leases: Mutex::new(HashMap::new()),
        };
        store.start_renewer();
        Ok(store)
    }

    /// Renews the token in the background at 2/3 of its TTL (or logs in again when it no
    /// longer extends), so that a store nobody reads from for a while (a quiet `serve`)
    /// still holds a valid token when the next read comes. Reads refresh it too.
    fn start_renewer(&self) {
        let (http, auth, creds, session, stop) = (
            Arc::clone(&self.http),
            self.config.auth.clone(),
            self.creds.clone(),
            Arc::clone(&self.session),
            Arc::clone(&self.stop),
        );
        let spawned = std::thread::Builder::new()
            .name("vault-renew".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(RENEW_CHECK_INTERVAL);
                    let Ok(mut guard) = session.lock() else {
                        return;
                    };
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Some(session) = guard.as_mut()
                        && session.due()
                        && let Err(e) = auth::refresh(&http, &auth, &creds, session)
                    {
                        tracing::warn!(
                            "the Vault token could not be renewed ({}); the next read tries again",
                            e.message()
                        );
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("no background renewal of the Vault token ({e}); reads renew it");
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// The address requests go to first.
    pub fn address(&self) -> &str {
        self.http.address()
    }

    /// The dotted prefixes this store serves.
    pub fn mount_points(&self) -> Vec<SecretPath> {
        self.config
            .mounts
            .iter()
            .map(|m| m.prefix.clone())
            .collect()
    }

    /// Forgets every cached value (on a policy or configuration reload).
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
        if let Ok(mut f) = self.folders.lock() {
            f.clear();
        }
    }

    /// Where the leaf `path` lives in Vault: the KV secret and its field, as reads look
    /// for it (`None` when no KV mount covers `path`, or it is a mount point itself, or a
    /// folder segment is not a valid API path).
    pub fn locate(&self, path: &SecretPath) -> Option<KvLocation> {
        let mount = self.mount_for(path).filter(|m| !m.dynamic)?;
        let rest: Vec<&str> = path.segments().skip(mount.prefix.len()).collect();
        let (field, folders) = rest.split_last()?;
        let mut secret = mount.path.clone();
        for f in folders {
            if !crate::config::valid_api_path(f) {
                return None;
            }
            secret.push('/');
            secret.push_str(f);
        }
        Some(KvLocation {
            engine: mount.engine.clone(),
            secret,
            field: (*field).to_owned(),
            pinned: mount.version,
        })
    }

    /// Writes `fields` (name, UTF-8 value) as a new version of the KV v2 secret
    /// `engine/data/secret`: the whole secret, as `vault kv put` does (older versions stay
    /// in its history). Each value is a JSON string. The body is zeroized after sending.
    /// Returns the new version.
    ///
    /// # Errors
    /// Vault does not answer, or refuses (the message names the path and the capability
    /// the token needs, never a value).
    pub fn write_secret(
        &self,
        engine: &str,
        secret: &str,
        fields: &[(&str, &SecretValue)],
    ) -> Result<u64, WriteError> {
        let shown = format!("{engine}/data/{secret}");
        let mut body = Zeroizing::new(String::from("{\"data\":{"));
        for (i, (name, value)) in fields.iter().enumerate() {
            let text = std::str::from_utf8(value.expose_secret()).map_err(|_| WriteError {
                message: format!(
                    "the value for field `{name}` of {shown} is not UTF-8; a KV v2 field is a JSON string"
                ),
            })?;
            if i > 0 {
                body.push(',');
            }
            crate::client::json_string(name, &mut body);
            body.push(':');
            crate::client::json_string(text, &mut body);
        }
        body.push_str("}}");
        let answer = self
            .request_with("POST", &format!("/v1/{shown}"), Some(body.as_bytes()))
            .map_err(|e| WriteError {
                message: e.to_string(),
            })?;
        match answer.status {
            200 | 204 => {}
            403 => {
                return Err(WriteError {
                    message: format!(
                        "Vault refuses this token a write of {shown} (403: {}); it needs `create` and `update` there",
                        error_excerpt(&answer.body)
                    ),
                });
            }
            s => {
                return Err(WriteError {
                    message: format!(
                        "Vault answered {s} to a write of {shown}: {}",
                        error_excerpt(&answer.body)
                    ),
                });
            }
        }
        self.invalidate();
        let v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        Ok(v.pointer("/data/version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0))
    }

    fn mount_for(&self, path: &SecretPath) -> Option<&Mount> {
        self.config
            .mounts
            .iter()
            .find(|m| path.starts_with(&m.prefix))
    }

    /// One authenticated request, renewing or logging in again as needed; a 403 is
    /// checked with `lookup-self` (an expired or revoked token looks like a denial) and,
    /// when the token is the cause, retried once after a new login.
    fn request(&self, method: &str, path: &str) -> Result<Answer, StoreError> {
        self.request_with(method, path, None)
    }

    /// [`Self::request`] with a body (a write).
    fn request_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Answer, StoreError> {
        let unavailable = |reason: String| StoreError::Unavailable { reason };
        let mut guard = self
            .session
            .lock()
            .map_err(|_| unavailable("the Vault session lock is poisoned".into()))?;
        if guard.is_none() {
            *guard = Some(
                auth::login(&self.http, &self.config.auth, &self.creds)
                    .map_err(|e| unavailable(format!("Vault login: {}", e.message())))?,
            );
        }
        let Some(session) = guard.as_mut() else {
            return Err(unavailable("no Vault session".into()));
        };
        auth::refresh(&self.http, &self.config.auth, &self.creds, session)
            .map_err(|e| unavailable(format!("Vault login: {}", e.message())))?;
        let answer = self
            .http
            .send(method, path, Some(&session.token), body)
            .map_err(unavailable)?;
        if answer.status != 403 {
            return Ok(answer);
        }
        match auth::lookup_self(&self.http, &session.token) {
            Ok(_) => Ok(answer),
            Err(LoginError::Unavailable(e)) => Err(unavailable(e)),
            Err(LoginError::Refused(_)) => {
                tracing::info!("Vault no longer accepts agentsec's token: logging in again");
                auth::relogin(&self.http, &self.config.auth, &self.creds, session)
                    .map_err(|e| unavailable(format!("Vault login: {}", e.message())))?;
                self.http
                    .send(method, path, Some(&session.token), body)
                    .map_err(unavailable)
            }
        }
    }

    /// Reads the KV secret `rel` of `mount` (cached for `vault.cache_ttl`).
    fn read(&self, mount: &Mount, rel: &str) -> Result<Read, StoreError> {
        let mut api = format!("/v1/{}/data/{rel}", mount.engine);
        if let Some(v) = mount.version {
            api.push_str(&format!("?version={v}"));
        }
        let ttl = self.config.cache_ttl;
        if !ttl.is_zero()
            && let Ok(cache) = self.cache.lock()
            && let Some(hit) = cache.get(&api)
            && hit.at.elapsed() < ttl
        {
            return Ok(Read::Found(Arc::clone(&hit.secret)));
        }
        let answer = self.request("GET", &api)?;
        let shown = format!("{}/data/{rel}", mount.engine);
        match answer.status {
            200 => {}
            404 => return Ok(Read::Missing),
            403 => {
                return Err(StoreError::Unavailable {
                    reason: format!(
                        "Vault's policy refuses agentsec's token read on {shown} (403: {}); grant `read` on it in the Vault policy of agentsec's identity",
                        error_excerpt(&answer.body)
                    ),
                });
            }
            s => {
                return Err(StoreError::Unavailable {
                    reason: format!(
                        "Vault answered {s} to a read of {shown}: {}",
                        error_excerpt(&answer.body)
                    ),
                });
            }
        }
        let secret = parse_secret(&answer.body).map_err(|why| StoreError::Unavailable {
            reason: format!("Vault's answer for {shown} {why}"),
        })?;
        let Some(secret) = secret else {
            // KV v2 answers a deleted or destroyed version with data: null.
            return Ok(Read::Missing);
        };
        let secret = Arc::new(secret);
        if !ttl.is_zero()
            && let Ok(mut cache) = self.cache.lock()
        {
            cache.retain(|_, c| c.at.elapsed() < ttl);
            cache.insert(
                api,
                Cached {
                    at: Instant::now(),
                    secret: Arc::clone(&secret),
                },
            );
        }
        Ok(Read::Found(secret))
    }

    /// `LIST` of a KV folder: its entries (`name/` for sub-folders). Missing: empty.
    fn list_folder(&self, mount: &Mount, rel: &str) -> Result<Vec<String>, StoreError> {
        let api = format!("/v1/{}/metadata/{rel}?list=true", mount.engine);
        let ttl = self.config.cache_ttl;
        if !ttl.is_zero()
            && let Ok(folders) = self.folders.lock()
            && let Some((at, names)) = folders.get(&api)
            && at.elapsed() < ttl
        {
            return Ok(names.clone());
        }
        let names = self.list_folder_uncached(mount, rel, &api)?;
        if !ttl.is_zero()
            && let Ok(mut folders) = self.folders.lock()
        {
            folders.retain(|_, (at, _)| at.elapsed() < ttl);
            folders.insert(api, (Instant::now(), names.clone()));
        }
        Ok(names)
    }

    fn list_folder_uncached(
        &self,
        mount: &Mount,
        rel: &str,
        api: &str,
    ) -> Result<Vec<String>, StoreError> {
        let answer = self.request("GET", api)?;
        match answer.status {
            200 => {}
            404 => return Ok(Vec::new()),
            s => {
                return Err(StoreError::Unavailable {
                    reason: format!(
                        "Vault answered {s} to a list of {}/metadata/{rel}: {}{}",
                        mount.engine,
                        error_excerpt(&answer.body),
                        if s == 403 {
                            "; grant `list` on it in the Vault policy of agentsec's identity"
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
        let v: serde_json::Value =
            serde_json::from_slice(&answer.body).map_err(|_| StoreError::Unavailable {
                reason: "Vault's list answer is not JSON".into(),
            })?;
        Ok(v.pointer("/data/keys")
            .and_then(|k| k.as_array())
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str())
                    .filter(|k| crate::config::valid_api_path(k))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every leaf below `mount` whose path starts with `under` (or lies above it).
    fn walk(
        &self,
        mount: &Mount,
        rel: &str,
        at: &SecretPath,
        depth: usize,
        budget: &mut usize,
        out: &mut Vec<SecretPath>,
    ) -> Result<(), StoreError> {
        if *budget == 0 || depth > MAX_LIST_DEPTH {
            return Err(StoreError::Unavailable {
                reason: format!(
                    "listing {} reads more than {MAX_LIST_SECRETS} secrets or {MAX_LIST_DEPTH} levels; mount narrower paths",
                    mount.written()
                ),
            });
        }
        *budget -= 1;
        if let Read::Found(secret) = self.read(mount, rel)? {
            for (name, _) in &secret.fields {
                if let Ok(p) = at.child(name) {
                    out.push(p);
                }
            }
        }
        for entry in self.list_folder(mount, rel)? {
            let name = entry.trim_end_matches('/');
            let Ok(child) = at.child(name) else { continue };
            self.walk(
                mount,
                &format!("{rel}/{name}"),
                &child,
                depth + 1,
                budget,
                out,
            )?;
        }
        Ok(())
    }
}

fn parse_secret(body: &[u8]) -> Result<Option<Secret>, &'static str> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "is not JSON")?;
    let data = v.pointer("/data/data").ok_or("has no data.data")?;
    let map = match data {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Object(map) => map,
        _ => return Err("has a data.data that is not a mapping"),
    };
    let fields = map
        .iter()
        .map(|(k, v)| {
            let field = match v {
                serde_json::Value::String(s) => {
                    Field::Leaf(SecretValue::copy_from_slice(s.as_bytes()))
                }
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                    let text = Zeroizing::new(v.to_string());
                    Field::Leaf(SecretValue::copy_from_slice(text.as_bytes()))
                }
                serde_json::Value::Null => Field::Null,
                serde_json::Value::Object(m) => Field::Branch(m.keys().cloned().collect()),
                serde_json::Value::Array(a) => {
                    Field::Branch((0..a.len()).map(|i| i.to_string()).collect())
                }
            };
            (k.clone(), field)
        })
        .collect();
    Ok(Some(Secret { fields }))
}

impl NameIndex for VaultStore {
    fn list(&self, prefix: &SecretPath) -> Result<Vec<SecretPath>, StoreError> {
        let mut out = Vec::new();
        let mut budget = MAX_LIST_SECRETS;
        for mount in &self.config.mounts {
            if !(mount.prefix.starts_with(prefix) || prefix.starts_with(&mount.prefix)) {
                continue;
            }
            if mount.dynamic {
                // Listing issues nothing: a database credential's fields are known.
                if mount.engine.rsplit('/').next() == Some("database") {
                    out.extend(
                        DATABASE_FIELDS
                            .iter()
                            .filter_map(|f| mount.prefix.child(f).ok())
                            .filter(|p| p.starts_with(prefix)),
                    );
                }
                continue;
            }
            let mut leaves = Vec::new();
            let walked = self.walk(
                mount,
                &mount.path,
                &mount.prefix,
                0,
                &mut budget,
                &mut leaves,
            );
            match walked {
                Ok(()) => {}
                // A listing from above the mount (the root: `list-secrets`, the audit's
                // names) goes on without a mount Vault will not list for agentsec's
                // token, with a warning; a listing inside the mount fails with it.
                Err(e) if mount.prefix.starts_with(prefix) && mount.prefix != *prefix => {
                    tracing::warn!(mount = %mount.written(), "left out of a listing: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            }
            out.extend(leaves.into_iter().filter(|p| p.starts_with(prefix)));
        }
        Ok(out)
    }
}

impl SecretStore for VaultStore {
    fn get(&self, grant: &Authorized<'_>) -> Result<StoredSecret, StoreError> {
        let path = grant.path();
        if !grant.releases_value() {
            return Err(StoreError::ListingGrant {
                path: path.to_string(),
            });
        }
        let not_found = || StoreError::NotFound {
            path: path.to_string(),
        };
        let Some(mount) = self.mount_for(path) else {
            return Err(not_found());
        };
        if mount.dynamic {
            return Err(StoreError::Unavailable {
                reason: format!(
                    "`{path}` is a credential Vault issues per skill run ({}); only a skill run reads it",
                    mount.written()
                ),
            });
        }
        if path.segments().count() == mount.prefix.len() {
            // The mount point itself: the secret's keys are its children.
            return match self.read(mount, &mount.path)? {
                Read::Found(secret) => Err(StoreError::NotALeaf {
                    path: path.to_string(),
                    children: secret.fields.iter().map(|(k, _)| k.clone()).collect(),
                }),
                Read::Missing => Err(not_found()),
            };
        }
        let Some(at) = self.locate(path) else {
            return Err(not_found());
        };
        let Read::Found(secret) = self.read(mount, &at.secret)? else {
            return Err(not_found());
        };
        match secret.fields.iter().find(|(k, _)| *k == at.field) {
            Some((_, Field::Leaf(value))) => Ok(StoredSecret::secret(value.duplicate())),
            Some((_, Field::Branch(children))) => Err(StoreError::NotALeaf {
                path: path.to_string(),
                children: children.clone(),
            }),
            Some((_, Field::Null)) | None => Err(not_found()),
        }
    }

    fn get_in_run(&self, grant: &Authorized<'_>, run_id: &str) -> Result<StoredSecret, StoreError> {
        let path = grant.path();
        match self.mount_for(path) {
            Some(mount) if mount.dynamic && grant.releases_value() => {
                self.leased(mount, path, run_id)
            }
            _ => self.get(grant),
        }
    }

    fn end_run(&self, run_id: &str) {
        let ended = self.leases.lock().ok().and_then(|mut l| l.remove(run_id));
        let leases = ended
            .and_then(|l| l.lock().ok().map(|mut l| std::mem::take(&mut *l)))
            .unwrap_or_default();
        for lease in &leases {
            self.revoke_lease(lease);
        }
    }
}

impl VaultStore {
    /// The field `path` of the credential issued for `run_id` at `mount`: issued at the
    /// run's first read (one lease per mount and run, so `username` and `password` belong
    /// together), revoked at [`SecretStore::end_run`].
    fn leased(
        &self,
        mount: &Mount,
        path: &SecretPath,
        run_id: &str,
    ) -> Result<StoredSecret, StoreError> {
        let not_found = || StoreError::NotFound {
            path: path.to_string(),
        };
        let rest: Vec<&str> = path.segments().skip(mount.prefix.len()).collect();
        let [field] = rest.as_slice() else {
            return Err(if rest.is_empty() {
                StoreError::NotALeaf {
                    path: path.to_string(),
                    children: DATABASE_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
                }
            } else {
                not_found()
            });
        };
        let written = mount.written();
        let serve = |lease: &Lease| match lease.fields.iter().find(|(k, _)| k == field) {
            Some((_, value)) => Ok(StoredSecret::leased(value.duplicate(), lease.id.clone())),
            None => Err(not_found()),
        };
        let poisoned = || StoreError::Unavailable {
            reason: "the lease table lock is poisoned".into(),
        };
        let run_leases = {
            let mut table = self.leases.lock().map_err(|_| poisoned())?;
            if !table.contains_key(run_id) && table.len() >= MAX_LEASED_RUNS {
                return Err(StoreError::Unavailable {
                    reason: format!(
                        "{MAX_LEASED_RUNS} runs already hold dynamic credentials; none is issued until one ends"
                    ),
                });
            }
            Arc::clone(table.entry(run_id.to_owned()).or_default())
        };
        // This run's lock is held while its credential is issued: its reads share one lease.
        let mut leases = run_leases.lock().map_err(|_| poisoned())?;
        if let Some(lease) = leases.iter().find(|l| l.mount == written) {
            return serve(lease);
        }
        let api = format!("/v1/{}/creds/{}", mount.engine, mount.path);
        let answer = self.request("GET", &api)?;
        if answer.status != 200 {
            return Err(StoreError::Unavailable {
                reason: format!(
                    "Vault answered {} when asked for a credential at {written}: {}{}",
                    answer.status,
                    error_excerpt(&answer.body),
                    if answer.status == 403 {
                        "; grant `read` on it in the Vault policy of agentsec's identity"
                    } else {
                        ""
                    }
                ),
            });
        }
        let lease = parse_lease(&answer.body, &written).map_err(|why| StoreError::Unavailable {
            reason: format!("Vault's answer for {written} {why}"),
        })?;
        tracing::info!(lease = %lease.id, mount = %written, "issued a credential for a run");
        let served = serve(&lease);
        leases.push(lease);
        served
    }

    /// `sys/leases/revoke`, best effort: a lease that cannot be revoked ends with its TTL.
    fn revoke_lease(&self, lease: &Lease) {
        let mut body = Zeroizing::new(String::from("{\"lease_id\":"));
        crate::client::json_string(&lease.id, &mut body);
        body.push('}');
        match self.request_with("PUT", "/v1/sys/leases/revoke", Some(body.as_bytes())) {
            Ok(a) if a.status == 204 || a.status == 200 => {
                tracing::info!(lease = %lease.id, "revoked the run's credential");
            }
            Ok(a) => tracing::warn!(
                lease = %lease.id,
                status = a.status,
                "could not revoke the run's credential; it ends with its TTL"
            ),
            Err(e) => tracing::warn!(
                lease = %lease.id,
                "could not revoke the run's credential ({e}); it ends with its TTL"
            ),
        }
    }
}

/// A credentials answer: `lease_id` and the string fields of `data`.
fn parse_lease(body: &[u8], mount: &str) -> Result<Lease, &'static str> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| "is not JSON")?;
    let id = v
        .get("lease_id")
        .and_then(serde_json::Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= MAX_LEASE_ID_LEN)
        .ok_or("has no lease_id")?
        .to_owned();
    let data = v
        .get("data")
        .and_then(serde_json::Value::as_object)
        .ok_or("has no data")?;
    let fields = data
        .iter()
        .filter_map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), SecretValue::copy_from_slice(s.as_bytes())))
        })
        .collect();
    Ok(Lease {
        mount: mount.to_owned(),
        id,
        fields,
    })
}

impl Drop for VaultStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Runs still holding credentials (the process is going away): revoke them.
        let open: Vec<Lease> = self
            .leases
            .get_mut()
            .map(|table| {
                table
                    .drain()
                    .flat_map(|(_, run)| {
                        run.lock()
                            .map(|mut l| std::mem::take(&mut *l))
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        for lease in &open {
            self.revoke_lease(lease);
        }
        if let Ok(Some(session)) = self.session.lock().as_deref_mut()
            && session.ours
            && !session.expired()
        {
            auth::revoke(&self.http, session);
        }
    }
}
