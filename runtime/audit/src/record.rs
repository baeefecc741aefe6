//! What the host says about one secret request: the typed fields of a record.
//!
//! A [`Record`] is built only from enums and identifiers (`&str` agent ids,
//! skill names, digests, secret paths, rule names). There is no field, setter
//! or constructor that takes bytes or a secret value, so a value cannot end up
//! in the audit log through this API.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::AuditError;

/// Number of random bytes in a run id from [`new_run_id`].
///
/// Reason: 128 bits make a collision between runs negligible without any
/// coordination between hosts.
const RUN_ID_BYTES: usize = 16;

/// What the skill asked to do with a secret.
///
/// Serialized as the lowercase name: `read`, `write`, `list`, `inject`,
/// `sign`, `run`, `reload` or `egress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AccessType {
    /// Read a secret value (`get-secret`).
    Read,
    /// Write or replace a secret value.
    Write,
    /// List the secret paths under a prefix.
    List,
    /// Hand a value to the agent's model itself (MCP `secrets_get`, allowed only by a
    /// rule with `reveal_to_agent: true`), not to a skill.
    Reveal,
    /// The host used a secret in an outgoing request on the skill's behalf
    /// (the skill never held it).
    Inject,
    /// The host signed with a key on the skill's behalf (the skill never
    /// held it).
    Sign,
    /// An event of the run as a whole, about no single secret: a limit
    /// stopped the skill, it trapped, or its output was refused. The
    /// `secret_path` is empty and `detail` says what happened.
    Run,
    /// A long-lived host (`agentsec serve`) loaded a changed policy or
    /// secrets file (`allow`), or refused one that does not parse or verify
    /// and kept the old version in force (`deny`). `secret_path` is empty,
    /// `detail` names the file (and why it was refused).
    Reload,
    /// A skill's outgoing request (wasi:http) or TCP connection (wasi:sockets) that
    /// carried no secret of the host's: allowed by an `egress:` rule, or refused.
    /// `secret_path` is empty; `detail` has the method and `scheme://host:port`.
    Egress,
}

impl AccessType {
    /// The name used in the log: `read`, `write`, `list`, `reveal`, `inject`, `sign`,
    /// `run`, `reload` or `egress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::List => "list",
            Self::Reveal => "reveal",
            Self::Inject => "inject",
            Self::Sign => "sign",
            Self::Run => "run",
            Self::Reload => "reload",
            Self::Egress => "egress",
        }
    }
}

impl fmt::Display for AccessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the policy decided.
///
/// Serialized as the lowercase name: `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The request was granted.
    Allow,
    /// The request was refused.
    Deny,
}

impl Decision {
    /// The name used in the log: `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a request, as the kernel proved it: the calling process's uid (and user
/// name, and pid where known). `caller` in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerInfo {
    /// The caller's uid.
    pub uid: u32,
    /// Its user name, if the uid has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The caller's process id, where known (a socket peer's pid at connect time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// Where the values of a run come from (`store` in the log): a SOPS file
/// (its path and the SHA-256 of its bytes, and the `--env` that chose it),
/// or a Vault/OpenBao KV mount. None of it is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreRef {
    /// `sops` or `vault`.
    pub kind: String,
    /// SOPS: the file's path, as the operator named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// SOPS: the SHA-256 of the file's bytes (lowercase hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Vault: the server's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Vault: the KV mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// Vault: the KV version (1 or 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_version: Option<u8>,
    /// The environment (`--env`) that chose the store, if any: a read of
    /// `prod` and one of `dev` are told apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

impl StoreRef {
    /// A SOPS file at `path` whose bytes hash to `sha256`.
    pub fn sops(path: impl Into<String>, sha256: impl Into<String>) -> Self {
        Self {
            kind: "sops".to_owned(),
            path: Some(path.into()),
            sha256: Some(sha256.into()),
            addr: None,
            mount: None,
            kv_version: None,
            env: None,
        }
    }

    /// A Vault/OpenBao KV `mount` (version `kv_version`) at `addr`.
    pub fn vault(addr: impl Into<String>, mount: impl Into<String>, kv_version: u8) -> Self {
        Self {
            kind: "vault".to_owned(),
            path: None,
            sha256: None,
            addr: Some(addr.into()),
            mount: Some(mount.into()),
            kv_version: Some(kv_version),
            env: None,
        }
    }

    /// The environment that chose this store (`--env NAME`).
    #[must_use]
    pub fn env(mut self, env: impl Into<Option<String>>) -> Self {
        self.env = env.into();
        self
    }
}

/// The identity of one skill run, set once when the run starts and shared by
/// every record of that run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    agent_id: String,
    caller: Option<CallerInfo>,
    skill_name: String,
    skill_sha256: String,
    run_id: String,
    store: Option<StoreRef>,
}

impl RunContext {
    /// Describes a run of the skill `skill_name` (whose component has the
    /// lowercase hex SHA-256 `skill_sha256`) on behalf of `agent_id`.
    /// `run_id` is usually [`new_run_id`]'s result.
    ///
    /// None of these are secret; they are written to the log as given.
    pub fn new(
        agent_id: impl Into<String>,
        skill_name: impl Into<String>,
        skill_sha256: impl Into<String>,
        run_id: impl Into<String>,
    ) -> Self {
        Self {
            agent_id: agent_id.into(),
            caller: None,
            skill_name: skill_name.into(),
            skill_sha256: skill_sha256.into(),
            run_id: run_id.into(),
            store: None,
        }
    }

    /// Who asked for the run (`caller` in the log; absent when not set).
    #[must_use]
    pub fn with_caller(mut self, caller: CallerInfo) -> Self {
        self.caller = Some(caller);
        self
    }

    /// Names the store the run's values come from (`store` in the log;
    /// absent without it, as in logs written before it existed).
    #[must_use]
    pub fn with_store(mut self, store: Option<StoreRef>) -> Self {
        self.store = store;
        self
    }

    /// The store the run's values come from.
    pub fn store(&self) -> Option<&StoreRef> {
        self.store.as_ref()
    }

    /// The agent the skill runs for (`agent_id` in the log).
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// Who asked for the run, if known.
    pub fn caller(&self) -> Option<&CallerInfo> {
        self.caller.as_ref()
    }

    /// The skill's name (`skill.name` in the log).
    pub fn skill_name(&self) -> &str {
        &self.skill_name
    }

    /// The SHA-256 of the skill's component, lowercase hex (`skill.sha256`).
    pub fn skill_sha256(&self) -> &str {
        &self.skill_sha256
    }

    /// The id of this run (`run_id` in the log).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }
}

/// A fresh run id: 128 random bits from the operating system, as 32
/// lowercase hex digits.
///
/// # Errors
/// [`AuditError::Random`] if the operating system has no randomness to give.
pub fn new_run_id() -> Result<String, AuditError> {
    let mut bytes = [0u8; RUN_ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|source| AuditError::Random { source })?;
    Ok(hex::encode(bytes))
}

/// One audited secret request, before it is stamped with a time, a sequence
/// number and its place in the hash chain by [`AuditLog::append`].
///
/// ```
/// use agentsec_audit::{AccessType, Decision, Record, RunContext};
///
/// let run = RunContext::new("ops/release", "changelog", "ab".repeat(32), "0f".repeat(16));
/// let denied = Record::new(&run, "databases.prod.password", AccessType::Read, Decision::Deny)
///     .detail("not-found");
/// let allowed = Record::new(&run, "github.token", AccessType::Read, Decision::Allow)
///     .rule("github")
///     .access_level("read");
/// # let _ = (denied, allowed);
/// ```
///
/// [`AuditLog::append`]: crate::AuditLog::append
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub(crate) run: &'a RunContext,
    pub(crate) secret_path: &'a str,
    pub(crate) access_type: AccessType,
    pub(crate) decision: Decision,
    pub(crate) rule: Option<&'a str>,
    pub(crate) access_level: Option<&'a str>,
    pub(crate) detail: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// A record of `run` asking for `access_type` on `secret_path`, and the
    /// policy's `decision`. `rule`, `access_level` and `detail` start empty
    /// (`null` in the log).
    pub fn new(
        run: &'a RunContext,
        secret_path: &'a str,
        access_type: AccessType,
        decision: Decision,
    ) -> Self {
        Self {
            run,
            secret_path,
            access_type,
            decision,
            rule: None,
            access_level: None,
            detail: None,
        }
    }

    /// The policy rule that decided (`rule` in the log). Takes a `&str` or an
    /// `Option<&str>`.
    #[must_use]
    pub fn rule(mut self, rule: impl Into<Option<&'a str>>) -> Self {
        self.rule = rule.into();
        self
    }

    /// The access level the rule grants, e.g. `read` (`access_level` in the
    /// log). Takes a `&str` or an `Option<&str>`.
    #[must_use]
    pub fn access_level(mut self, level: impl Into<Option<&'a str>>) -> Self {
        self.access_level = level.into();
        self
    }

    /// A short, non-secret reason, e.g. `not-found` or
    /// `limit: get-secret calls exceeded` (`detail` in the log). Takes a
    /// `&str` or an `Option<&str>`.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<Option<&'a str>>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The run this record belongs to.
    pub fn run(&self) -> &'a RunContext {
        self.run
    }

    /// The secret path that was asked for.
    pub fn secret_path(&self) -> &'a str {
        self.secret_path
    }

    /// What was asked.
    pub fn access_type(&self) -> AccessType {
        self.access_type
    }

    /// What the policy decided.
    pub fn decision(&self) -> Decision {
        self.decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_128_bit_hex_and_differ() -> Result<(), AuditError> {
        let a = new_run_id()?;
        let b = new_run_id()?;
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn builder_accepts_str_and_option() {
        let run = RunContext::new("a", "s", "00", "r");
        let r = Record::new(&run, "p", AccessType::List, Decision::Allow)
            .rule("x")
            .access_level(None)
            .detail(Some("d"));
        assert_eq!(r.rule, Some("x"));
        assert_eq!(r.access_level, None);
        assert_eq!(r.detail, Some("d"));
        assert_eq!(AccessType::List.to_string(), "list");
        assert_eq!(AccessType::Run.to_string(), "run");
        assert_eq!(Decision::Deny.to_string(), "deny");
    }
}
