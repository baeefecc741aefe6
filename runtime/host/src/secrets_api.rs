//! The host side of `agentsec:skill/secrets`: policy, then audit, then release.
//!
//! Order matters and is the same on every path:
//! 1. count the call against the per-run limit (trap when exhausted);
//! 2. parse the path (malformed → `invalid-path`);
//! 3. ask the policy (deny → `denied`, whether or not the path exists);
//! 4. look the path up in the store with the policy's [`Authorized`] proof;
//! 5. write the audit record (failure → trap, nothing released); it is
//!    `fsync`ed then, or with the run's other records before the run's
//!    output is returned (see [`crate::AuditSync`]);
//! 6. copy the value into the guest ([`release`], the only place that does).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use agentsec_audit::{AccessType, AuditLog, Decision as AuditDecision, Record, RunContext};
use agentsec_policy::{AgentId, Authorized, Decision, Operation, Policy, SecretPath, SkillRef};
use agentsec_secrets::{SecretStore, StoreError};
use wasmtime::Result;
use zeroize::Zeroizing;

use crate::audit_path::{PathRecorder, Recorded};
use crate::bindings::agentsec::skill::secrets::{Error, Host};
use crate::limits::LimitKind;
use crate::redact::Redactor;

/// Counters of one run, reported after it ends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStats {
    /// `get-secret` and `list-secrets` calls made.
    pub calls: u32,
    /// Secret values released to the skill.
    pub released: u32,
    /// Requests the policy denied.
    pub denied: u32,
}

/// Why the host stopped the skill from inside a secrets call.
#[derive(Debug)]
pub(crate) enum HostStop {
    Limit(LimitKind),
    AuditFailed(String),
}

impl std::fmt::Display for HostStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostStop::Limit(kind) => write!(f, "{kind} exceeded"),
            HostStop::AuditFailed(why) => write!(f, "audit record could not be written: {why}"),
        }
    }
}

impl std::error::Error for HostStop {}

/// The fixed facts of one run: who, which skill, under which policy and store.
pub(crate) struct RunScope {
    pub(crate) agent: AgentId,
    pub(crate) skill: SkillRef,
    pub(crate) run: RunContext,
    pub(crate) policy: Arc<Policy>,
    pub(crate) store: Arc<dyn SecretStore>,
}

/// What the secrets interface of one run can see.
pub(crate) struct SecretsCtx {
    pub(crate) scope: Arc<RunScope>,
    pub(crate) audit: Arc<Mutex<AuditLog>>,
    /// `fsync` each record before its value is released (else the run
    /// syncs once before its output is returned; see [`crate::AuditSync`]).
    pub(crate) sync_each_record: bool,
    pub(crate) max_calls: u32,
    pub(crate) max_path_len: usize,
    pub(crate) stats: RunStats,
    pub(crate) redactor: Redactor,
    /// How paths are written to the audit log (see [`crate::audit_path`]).
    pub(crate) paths: PathRecorder,
    pub(crate) stop: Option<HostStop>,
    /// Reused to render a path's canonical form on every call. Wiped on
    /// drop: a skill may pass a value it was given as a path.
    pub(crate) path_buf: Zeroizing<String>,
}

impl SecretsCtx {
    /// Appends one audit record; an error means the call must trap.
    fn record(&mut self, record: &Record<'_>) -> Result<()> {
        let appended = match self.audit.lock() {
            Ok(mut log) if self.sync_each_record => log.append(record).map_err(|e| e.to_string()),
            Ok(mut log) => log.append_unsynced(record).map_err(|e| e.to_string()),
            Err(_) => Err("audit log lock poisoned".to_owned()),
        };
        match appended {
            Ok(_) => Ok(()),
            Err(why) => {
                let stop = HostStop::AuditFailed(why);
                let err = wasmtime::format_err!("{stop}");
                self.stop = Some(stop);
                Err(err)
            }
        }
    }

    /// A path as it may be recorded: redacted against the values released
    /// in this run when it names something in the store, otherwise only its
    /// length, a keyed hash and the longest prefix that exists (see
    /// [`crate::audit_path`]). A skill can pass a value it was given, in any
    /// form, *as a path* to smuggle it into the audit log.
    fn recorded(&mut self, raw: &str, parsed: Option<&SecretPath>) -> Recorded {
        let store = Arc::clone(&self.scope.store);
        self.paths.form(&*store, &mut self.redactor, raw, parsed)
    }

    /// Refuses paths longer than this run's limit (before parsing them).
    fn within_path_limit(&self, raw: &str) -> std::result::Result<(), String> {
        if raw.len() > self.max_path_len {
            return Err(format!(
                "the path is {} bytes, over this run's {}-byte path length limit",
                raw.len(),
                self.max_path_len
            ));
        }
        Ok(())
    }

    /// Counts a call; traps (after recording why) when over the limit.
    fn count_call(&mut self, scope: &RunScope, shown: &Recorded, access: AccessType) -> Result<()> {
        self.stats.calls = self.stats.calls.saturating_add(1);
        if self.stats.calls <= self.max_calls {
            return Ok(());
        }
        let limit = format!(
            "limit: more than {} secret calls in one run",
            self.max_calls
        );
        let detail = shown.detail(Some(&limit));
        self.record(
            &Record::new(&scope.run, &shown.path, access, AuditDecision::Deny)
                .detail(detail.as_deref()),
        )?;
        self.stop = Some(HostStop::Limit(LimitKind::SecretCalls));
        Err(wasmtime::format_err!("{} exceeded", LimitKind::SecretCalls))
    }

    fn read(&mut self, raw: &str) -> Result<Result<String, Error>> {
        let scope = Arc::clone(&self.scope);
        let parsed = self
            .within_path_limit(raw)
            .and_then(|()| SecretPath::parse(raw).map_err(|e| e.to_string()));
        let shown = self.recorded(raw, parsed.as_ref().ok());
        self.count_call(&scope, &shown, AccessType::Read)?;
        let path = match parsed {
            Ok(path) => path,
            Err(e) => {
                let detail = shown.detail(Some("invalid-path"));
                self.record(
                    &Record::new(
                        &scope.run,
                        &shown.path,
                        AccessType::Read,
                        AuditDecision::Deny,
                    )
                    .detail(detail.as_deref()),
                )?;
                return Ok(Err(Error::InvalidPath(format!("invalid secret path: {e}"))));
            }
        };
        // The canonical form, as the policy and `list-secrets` name the path
        // (it differs from `raw` only for the bracketed form).
        let mut canonical = std::mem::take(&mut *self.path_buf);
        canonical.clear();
        let _ = write!(canonical, "{path}");
        let outcome = self.read_parsed(&scope, &path, &canonical, &shown);
        *self.path_buf = canonical;
        outcome
    }

    /// [`Self::read`] once the path parsed: policy, store, audit, release.
    /// `canonical` is the path's canonical text (what the guest is told and
    /// what its value's marker says); `shown` its recorded form.
    fn read_parsed(
        &mut self,
        scope: &RunScope,
        path: &SecretPath,
        canonical: &str,
        shown: &Recorded,
    ) -> Result<Result<String, Error>> {
        let grant = match scope
            .policy
            .evaluate(&scope.agent, &scope.skill, path, Operation::Read)
        {
            Decision::Allow(grant) => grant,
            Decision::Deny(denial) => {
                self.stats.denied += 1;
                let rule = denial.rule().map(|r| r.pattern().to_string());
                let detail = shown.detail(None);
                self.record(
                    &Record::new(
                        &scope.run,
                        &shown.path,
                        AccessType::Read,
                        AuditDecision::Deny,
                    )
                    .rule(rule.as_deref())
                    .detail(detail.as_deref()),
                )?;
                return Ok(Err(Error::Denied(denial.to_string())));
            }
        };
        let rule = grant.rule().pattern().to_string();
        let allowed = |detail: Option<&'static str>| shown.detail(detail);
        let record_allowed = |this: &mut Self, detail: Option<String>| {
            this.record(
                &Record::new(
                    &scope.run,
                    &shown.path,
                    AccessType::Read,
                    AuditDecision::Allow,
                )
                .rule(rule.as_str())
                .access_level(grant.access_level().as_str())
                .detail(detail.as_deref()),
            )
        };
        match scope.store.get(&grant) {
            Ok(secret) => {
                let Ok(text) = std::str::from_utf8(secret.value.expose_secret()) else {
                    record_allowed(self, allowed(Some("not-utf8")))?;
                    return Ok(Err(Error::InvalidPath(format!(
                        "`{canonical}` holds binary data, which get-secret cannot return as text"
                    ))));
                };
                // A value that cannot be redacted is not released.
                if secret.redact
                    && let Err(limit) = self.redactor.add(canonical, text.as_bytes())
                {
                    let detail = format!("limit: {}: {limit}", LimitKind::Redaction);
                    self.record(
                        &Record::new(
                            &scope.run,
                            &shown.path,
                            AccessType::Read,
                            AuditDecision::Deny,
                        )
                        .rule(rule.as_str())
                        .detail(detail.as_str()),
                    )?;
                    self.stop = Some(HostStop::Limit(LimitKind::Redaction));
                    return Err(wasmtime::format_err!("{} exceeded", LimitKind::Redaction));
                }
                // The record is in the log before the value enters the sandbox.
                record_allowed(self, allowed(None))?;
                self.stats.released += 1;
                Ok(Ok(release(text, &grant)))
            }
            Err(StoreError::NotFound { .. }) => {
                record_allowed(self, allowed(Some("not-found")))?;
                Ok(Err(Error::NotFound(format!("no secret at `{canonical}`"))))
            }
            Err(StoreError::NotALeaf { children, .. }) => {
                record_allowed(self, allowed(Some("not-a-leaf")))?;
                let readable: Vec<&str> = children
                    .iter()
                    .map(String::as_str)
                    .filter(|child| {
                        path.child(child).is_ok_and(|c| {
                            scope
                                .policy
                                .evaluate(&scope.agent, &scope.skill, &c, Operation::Read)
                                .is_allowed()
                        })
                    })
                    .collect();
                Ok(Err(Error::InvalidPath(format!(
                    "`{canonical}` is not a secret but a mapping or list; entries you may read: {}",
                    if readable.is_empty() {
                        "(none)".to_owned()
                    } else {
                        readable.join(", ")
                    }
                ))))
            }
            Err(e @ StoreError::Unbound { .. }) => {
                record_allowed(self, allowed(Some("invalid-path: not bound to its path")))?;
                Ok(Err(Error::InvalidPath(e.to_string())))
            }
            Err(e @ StoreError::DeniedElsewhere { .. }) => {
                self.stats.denied += 1;
                let denying = match &e {
                    StoreError::DeniedElsewhere { rule, .. } => Some(rule.as_str()),
                    _ => None,
                };
                let detail = shown.detail(Some("denied: a position with the same AAD"));
                self.record(
                    &Record::new(
                        &scope.run,
                        &shown.path,
                        AccessType::Read,
                        AuditDecision::Deny,
                    )
                    .rule(denying)
                    .detail(detail.as_deref()),
                )?;
                Ok(Err(Error::Denied(e.to_string())))
            }
            Err(e) => {
                record_allowed(self, allowed(Some("unavailable")))?;
                Ok(Err(Error::Unavailable(e.to_string())))
            }
        }
    }

    fn list(&mut self, raw: &str) -> Result<Vec<String>> {
        let scope = Arc::clone(&self.scope);
        let parsed = self
            .within_path_limit(raw)
            .and_then(|()| SecretPath::parse_prefix(raw).map_err(|e| e.to_string()));
        let shown = self.recorded(raw, parsed.as_ref().ok());
        self.count_call(&scope, &shown, AccessType::List)?;
        let Ok(prefix) = parsed else {
            let detail = shown.detail(Some("invalid-path"));
            self.record(
                &Record::new(
                    &scope.run,
                    &shown.path,
                    AccessType::List,
                    AuditDecision::Deny,
                )
                .detail(detail.as_deref()),
            )?;
            return Ok(Vec::new());
        };
        let names: Vec<String> = match scope.store.list(&prefix) {
            Ok(paths) => paths
                .iter()
                .filter(|p| {
                    scope
                        .policy
                        .evaluate(&scope.agent, &scope.skill, p, Operation::List)
                        .is_allowed()
                })
                .map(ToString::to_string)
                .collect(),
            Err(_) => Vec::new(),
        };
        let count = format!("{} names", names.len());
        let detail = shown.detail(Some(&count));
        self.record(
            &Record::new(
                &scope.run,
                &shown.path,
                AccessType::List,
                AuditDecision::Allow,
            )
            .detail(detail.as_deref()),
        )?;
        Ok(names)
    }
}

impl Host for SecretsCtx {
    fn get_secret(&mut self, path: String) -> Result<Result<String, Error>> {
        self.read(&path)
    }

    fn list_secrets(&mut self, prefix: String) -> Result<Vec<String>> {
        self.list(&prefix)
    }
}

/// The only place a secret value is copied out of its zeroizing buffer on its
/// way into guest memory. The returned `String` is handed to wasmtime, which
/// copies it into the guest's linear memory and frees it; `agentsec-run`
/// installs a zeroize-on-free global allocator so that freed copy is wiped.
/// Requiring the [`Authorized`] proof documents (and enforces) that nothing
/// reaches this function without passing policy.
fn release(value: &str, _proof: &Authorized<'_>) -> String {
    value.to_owned()
}
