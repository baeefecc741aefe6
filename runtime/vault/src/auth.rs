//! Logging in, keeping the token alive, and giving it back.
//!
//! - `token`: the token from `token_file` (read again on every re-login, so a rotated file
//!   is picked up), else `VAULT_TOKEN` from agentsec's own environment. It is not ours, so
//!   it is never revoked.
//! - `approle`, `jwt`, `kubernetes`: `POST /v1/auth/<mount>/login`; the token is ours and is
//!   revoked (`revoke-self`) when the store is dropped.
//!
//! A token with a TTL is renewed (`renew-self`) once 2/3 of it has passed; when renewal
//! fails or no longer extends it (its max TTL is near), agentsec logs in again. Vault
//! answers an expired or revoked token with 403, as it answers a policy denial: a 403 is
//! confirmed with `lookup-self` before it is called a denial (see [`crate::VaultStore`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::client::{Http, error_excerpt, json_string};
use crate::config::{AuthMethod, CredentialSource};

/// Largest credential file read (a token, role id, secret id or JWT).
pub const MAX_CREDENTIAL_FILE: u64 = 64 * 1024;

/// A Vault token. No `Debug`, `Display`, `Clone` or `Serialize`; zeroized on drop.
pub struct VaultToken(Zeroizing<String>);

impl VaultToken {
    /// Wraps a token (leading and trailing white space removed).
    pub fn new(mut text: Zeroizing<String>) -> VaultToken {
        let trimmed = text.trim();
        if trimmed.len() != text.len() {
            let t = Zeroizing::new(trimmed.to_owned());
            text = t;
        }
        VaultToken(text)
    }

    /// The token, for the `X-Vault-Token` header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// A credential read from a file (role id, secret id, JWT): zeroized, never printed.
struct Credential(Zeroizing<String>);

/// Reads a SOPS leaf for a login: the SOPS file and the leaf's dotted path in, the value
/// out (decrypted in memory with agentsec's own keys); the error names file and path,
/// never a value. Given by the program that opens the store (it owns the keys).
pub type SopsReader = Arc<dyn Fn(&Path, &str) -> Result<Zeroizing<String>, String> + Send + Sync>;

/// What a login may use besides the configuration: `VAULT_TOKEN` as agentsec was started
/// with, and the reader of `sops:` credential sources.
#[derive(Clone, Default)]
pub(crate) struct Creds {
    pub(crate) env_token: Option<Arc<VaultToken>>,
    pub(crate) sops: Option<SopsReader>,
}

fn read_credential(
    source: &CredentialSource,
    what: &str,
    creds: &Creds,
) -> Result<Credential, String> {
    match source {
        CredentialSource::File(file) => read_credential_file(file, what),
        CredentialSource::Sops { file, path } => {
            let reader = creds.sops.as_ref().ok_or_else(|| {
                format!("{what}: {source}: this program reads no SOPS credential sources")
            })?;
            let text = reader(file, path).map_err(|e| format!("{what}: {e}"))?;
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Err(format!("{what}: {source} is empty"));
            }
            Ok(Credential(Zeroizing::new(trimmed.to_owned())))
        }
    }
}

fn read_credential_file(file: &Path, what: &str) -> Result<Credential, String> {
    let shown = file.display();
    let f = std::fs::File::open(file).map_err(|e| format!("{what} file {shown}: {e}"))?;
    let mut bytes = Zeroizing::new(Vec::new());
    std::io::Read::read_to_end(
        &mut std::io::Read::take(f, MAX_CREDENTIAL_FILE + 1),
        &mut bytes,
    )
    .map_err(|e| format!("{what} file {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_CREDENTIAL_FILE {
        return Err(format!(
            "{what} file {shown}: larger than the {MAX_CREDENTIAL_FILE}-byte limit"
        ));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| format!("{what} file {shown}: not UTF-8 text"))?
        .trim();
    if text.is_empty() {
        return Err(format!("{what} file {shown}: empty"));
    }
    Ok(Credential(Zeroizing::new(text.to_owned())))
}

/// A token in use and what is known about its lifetime.
pub(crate) struct Session {
    pub(crate) token: VaultToken,
    /// When the TTL below was learnt.
    since: Instant,
    /// Its TTL then (`None`: it does not expire, e.g. a root token).
    ttl: Option<Duration>,
    renewable: bool,
    /// Whether agentsec made it (a login), and so revokes it.
    pub(crate) ours: bool,
}

impl Session {
    /// Whether 2/3 of the TTL has passed: time to renew.
    pub(crate) fn due(&self) -> bool {
        self.ttl
            .is_some_and(|ttl| self.since.elapsed() >= ttl.mul_f64(2.0 / 3.0))
    }

    /// Whether the token has expired by our clock.
    pub(crate) fn expired(&self) -> bool {
        self.ttl.is_some_and(|ttl| self.since.elapsed() >= ttl)
    }

    fn remaining(&self) -> Option<Duration> {
        self.ttl.map(|ttl| ttl.saturating_sub(self.since.elapsed()))
    }
}

/// Why a login did not give a token: Vault unreachable (`unavailable`) or refused.
pub(crate) enum LoginError {
    /// No address answered.
    Unavailable(String),
    /// Vault refused the credential, or the configuration is wrong.
    Refused(String),
}

impl LoginError {
    pub(crate) fn message(&self) -> &str {
        match self {
            LoginError::Unavailable(m) | LoginError::Refused(m) => m,
        }
    }
}

/// Logs in with `method` (`creds`: `VAULT_TOKEN` as agentsec was started with, the SOPS reader).
pub(crate) fn login(
    http: &Http,
    method: &AuthMethod,
    creds: &Creds,
) -> Result<Session, LoginError> {
    match method {
        AuthMethod::Token { token_file } => {
            let token = match (token_file, creds.env_token.as_deref()) {
                (Some(file), _) => VaultToken::new(
                    read_credential(file, "vault.auth.token_file", creds)
                        .map_err(LoginError::Refused)?
                        .0,
                ),
                (None, Some(t)) => VaultToken::new(Zeroizing::new(t.expose().to_owned())),
                (None, None) => {
                    return Err(LoginError::Refused(
                        "auth method `token`: set vault.auth.token_file, or VAULT_TOKEN in agentsec's environment".into(),
                    ));
                }
            };
            let (ttl, renewable) = lookup_self(http, &token)?;
            Ok(Session {
                token,
                since: Instant::now(),
                ttl,
                renewable,
                ours: false,
            })
        }
        AuthMethod::AppRole {
            mount,
            role_id_file,
            secret_id_file,
            ..
        } => {
            let role_id = read_credential(role_id_file, "vault.auth.role_id_file", creds)
                .map_err(LoginError::Refused)?;
            let secret_id = read_credential(secret_id_file, "vault.auth.secret_id_file", creds)
                .map_err(LoginError::Refused)?;
            let mut body = Zeroizing::new(String::from("{\"role_id\":"));
            json_string(&role_id.0, &mut body);
            body.push_str(",\"secret_id\":");
            json_string(&secret_id.0, &mut body);
            body.push('}');
            post_login(http, mount, "approle", &body)
        }
        AuthMethod::Jwt {
            kind,
            mount,
            role,
            jwt_file,
        } => {
            let jwt = read_credential(jwt_file, "vault.auth.jwt_file", creds)
                .map_err(LoginError::Refused)?;
            let mut body = Zeroizing::new(String::from("{\"role\":"));
            json_string(role, &mut body);
            body.push_str(",\"jwt\":");
            json_string(&jwt.0, &mut body);
            body.push('}');
            post_login(http, mount, kind, &body)
        }
    }
}

fn post_login(http: &Http, mount: &str, kind: &str, body: &str) -> Result<Session, LoginError> {
    let path = format!("/v1/auth/{mount}/login");
    let answer = http
        .send("POST", &path, None, Some(body.as_bytes()))
        .map_err(LoginError::Unavailable)?;
    if answer.status != 200 {
        return Err(LoginError::Refused(format!(
            "Vault refused the {kind} login at auth/{mount} ({}): {}",
            answer.status,
            error_excerpt(&answer.body)
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&answer.body)
        .map_err(|_| LoginError::Refused(format!("the {kind} login answer is not JSON")))?;
    let auth = v.get("auth");
    let token = auth
        .and_then(|a| a.get("client_token"))
        .and_then(|t| t.as_str())
        .ok_or_else(|| {
            LoginError::Refused(format!("the {kind} login answer has no auth.client_token"))
        })?;
    let token = VaultToken::new(Zeroizing::new(token.to_owned()));
    let ttl = auth
        .and_then(|a| a.get("lease_duration"))
        .and_then(serde_json::Value::as_u64)
        .filter(|t| *t > 0)
        .map(Duration::from_secs);
    let renewable = auth
        .and_then(|a| a.get("renewable"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    tracing::info!(
        method = kind,
        ttl_s = ttl.map(|t| t.as_secs()),
        "logged in to Vault"
    );
    Ok(Session {
        token,
        since: Instant::now(),
        ttl,
        renewable,
        ours: true,
    })
}

/// `GET auth/token/lookup-self`: the token's remaining TTL and whether it is renewable.
/// `Refused` when Vault says the token is not valid (403).
pub(crate) fn lookup_self(
    http: &Http,
    token: &VaultToken,
) -> Result<(Option<Duration>, bool), LoginError> {
    let answer = http
        .send("GET", "/v1/auth/token/lookup-self", Some(token), None)
        .map_err(LoginError::Unavailable)?;
    if answer.status != 200 {
        return Err(LoginError::Refused(format!(
            "Vault does not accept agentsec's token ({}): {}",
            answer.status,
            error_excerpt(&answer.body)
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&answer.body)
        .map_err(|_| LoginError::Refused("the lookup-self answer is not JSON".into()))?;
    let data = v.get("data");
    let ttl = data
        .and_then(|d| d.get("ttl"))
        .and_then(serde_json::Value::as_u64)
        .filter(|t| *t > 0)
        .map(Duration::from_secs);
    let renewable = data
        .and_then(|d| d.get("renewable"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    Ok((ttl, renewable))
}

/// Renews the session if 2/3 of its TTL has passed; logs in again when renewal is not
/// possible, fails, or does not extend the token.
pub(crate) fn refresh(
    http: &Http,
    method: &AuthMethod,
    creds: &Creds,
    session: &mut Session,
) -> Result<(), LoginError> {
    if !session.due() {
        return Ok(());
    }
    if session.renewable && !session.expired() {
        let before = session.remaining().unwrap_or_default();
        let answer = http.send(
            "POST",
            "/v1/auth/token/renew-self",
            Some(&session.token),
            Some(b"{}"),
        );
        match answer {
            Err(e) => return Err(LoginError::Unavailable(e)),
            Ok(a) if a.status == 200 => {
                let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
                let ttl = v
                    .pointer("/auth/lease_duration")
                    .and_then(serde_json::Value::as_u64)
                    .map(Duration::from_secs);
                // Extended by at least a second: keep it. Otherwise it is pinned at its max
                // TTL and will expire: log in again below.
                if let Some(ttl) = ttl
                    && ttl > before + Duration::from_secs(1)
                {
                    session.since = Instant::now();
                    session.ttl = Some(ttl);
                    tracing::info!(ttl_s = ttl.as_secs(), "renewed the Vault token");
                    return Ok(());
                }
                tracing::info!("the Vault token no longer extends: logging in again");
            }
            Ok(a) => {
                tracing::info!(
                    status = a.status,
                    "renewing the Vault token failed: logging in again"
                );
            }
        }
    }
    relogin(http, method, creds, session)
}

/// Replaces the session by a new login (revoking the old token if it was ours).
pub(crate) fn relogin(
    http: &Http,
    method: &AuthMethod,
    creds: &Creds,
    session: &mut Session,
) -> Result<(), LoginError> {
    let new = login(http, method, creds)?;
    let old = std::mem::replace(session, new);
    if old.ours && !old.expired() {
        revoke(http, &old);
    }
    Ok(())
}

/// `revoke-self`, best effort (the token dies with its TTL otherwise).
pub(crate) fn revoke(http: &Http, session: &Session) {
    match http.send(
        "POST",
        "/v1/auth/token/revoke-self",
        Some(&session.token),
        Some(b"{}"),
    ) {
        Ok(a) if a.status == 204 || a.status == 200 => tracing::debug!("revoked our Vault token"),
        Ok(a) => tracing::warn!(status = a.status, "revoking our Vault token failed"),
        Err(e) => tracing::warn!(reason = %e, "revoking our Vault token failed"),
    }
}
