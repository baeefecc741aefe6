//! [`Broker`]: the one pipeline every front door uses.
//!
//! Order matters and is the same for every operation:
//! 1. refuse a stopped or cancelled caller;
//! 2. parse the path (bounded first) and decide how it may be recorded;
//! 3. count the request against the caller's limit (stop when exhausted);
//! 4. a path that does not parse is refused (`invalid-path`);
//! 5. ask the policy for this operation (deny → `denied`, whether or not the path exists);
//! 6. look the path up in the store with the policy's
//!    [`Authorized`](agentsec_policy::Authorized) proof;
//! 7. have the caller's [`Redaction`] learn the value (a value that cannot be redacted is
//!    not released);
//! 8. write the audit record (failure → stop, nothing released); it is `fsync`ed then, or
//!    with the caller's other records by [`Broker::sync`] (see [`AuditSync`]);
//! 9. return the value as [`Released`].

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use agentsec_audit::{AccessType, AuditLog, Decision as AuditDecision, Record, RunContext};
use agentsec_policy::{Operation, Policy, SecretPath};
use agentsec_secrets::{NameIndex, SecretStore};

use crate::audit_path::Recorded;
use crate::caller::{Caller, Redaction};
use crate::outcome::{Refusal, Released, Stop};

mod decide;

use decide::access_type;

/// When the audit records of a caller are made durable (`fsync`).
///
/// Either way, a record is **written** to the log (visible to every reader, and kept if
/// this process dies) before the value it records is released, and a failed write stops
/// the caller with nothing released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditSync {
    /// One `fsync` when the caller's run ends ([`Broker::sync`]), before anything the
    /// skill produced is returned. A skill has no channel out of its sandbox but its
    /// output, so a released value can only leave through it, and the records are on disk
    /// first. What a power loss *during* the run can lose is records of values that never
    /// left the machine's memory.
    #[default]
    Run,
    /// An `fsync` per record, before its value is released (~0.15-3 ms each on a real
    /// disk; see `benches/README.md`).
    Record,
}

/// The policy, the store and the audit log, shared by every caller: one
/// [`Broker::request`] per secret request, whatever the front door (a skill's
/// `get-secret`, a server, host-side injection, an SSH agent).
pub struct Broker {
    policy: Arc<Policy>,
    store: Arc<dyn SecretStore>,
    audit: Arc<Mutex<AuditLog>>,
    sync: AuditSync,
    store_ref: Option<agentsec_audit::StoreRef>,
}

/// See [`Broker::end_run_on_drop`].
#[must_use = "the run ends when the guard is dropped"]
pub struct EndRunGuard<'b> {
    broker: &'b Broker,
    run: RunContext,
}

impl Drop for EndRunGuard<'_> {
    fn drop(&mut self) {
        self.broker.end_run(&self.run);
    }
}

impl Broker {
    /// A broker deciding with `policy`, serving from `store`, recording in `audit`.
    pub fn new(
        policy: Arc<Policy>,
        store: Arc<dyn SecretStore>,
        audit: Arc<Mutex<AuditLog>>,
    ) -> Self {
        Broker {
            policy,
            store,
            audit,
            sync: AuditSync::default(),
            store_ref: None,
        }
    }

    /// When records are made durable (default [`AuditSync::Run`]).
    #[must_use]
    pub fn audit_sync(mut self, sync: AuditSync) -> Self {
        self.sync = sync;
        self
    }

    /// Names the store for the audit records (`store`: a SOPS file and its
    /// hash, or a Vault mount); hosts put it in each run's `RunContext`.
    #[must_use]
    pub fn store_ref(mut self, store: agentsec_audit::StoreRef) -> Self {
        self.store_ref = Some(store);
        self
    }

    /// The store's name for the audit records, if one was given.
    pub fn audit_store(&self) -> Option<&agentsec_audit::StoreRef> {
        self.store_ref.as_ref()
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The policy, shared (a server builds the next version of its broker from it).
    pub fn policy_arc(&self) -> Arc<Policy> {
        Arc::clone(&self.policy)
    }

    /// The store, shared (as [`Broker::policy_arc`]).
    pub fn store_arc(&self) -> Arc<dyn SecretStore> {
        Arc::clone(&self.store)
    }

    /// The store's names (a front door never reads values but through
    /// [`Broker::request`], which decides, records and redacts first).
    pub fn names(&self) -> &dyn NameIndex {
        &*self.store
    }

    /// The audit log.
    pub fn audit_log(&self) -> &Arc<Mutex<AuditLog>> {
        &self.audit
    }

    /// Asks for the secret at `raw_path` to do `operation` with it; see the module docs
    /// for the steps. `Operation::List` is answered by [`Broker::list`].
    ///
    /// # Errors
    /// A [`Refusal`]: on the record, with a message that names no value.
    pub fn request<R: Redaction>(
        &self,
        caller: &mut Caller<R>,
        operation: Operation<'_>,
        raw_path: &str,
    ) -> Result<Released, Refusal> {
        let access = access_type(&operation);
        let parsed = within_path_limit(caller, raw_path)
            .and_then(|()| SecretPath::parse(raw_path).map_err(|e| e.to_string()));
        let shown = recorded(&*self.store, caller, raw_path, parsed.as_ref().ok());
        self.refuse_if_stopped(caller, &shown, access)?;
        self.count(caller, &shown, access)?;
        // A listing releases no value: it is answered by `list`, never here (`List` is
        // permitted at every level, so treating it as a release would hand out values
        // that only the host may use).
        if operation == Operation::List {
            self.record_refused(
                caller,
                &shown,
                access,
                "invalid-operation: list releases no value",
            )?;
            return Err(Refusal::InvalidPath(
                "a listing releases no value; ask Broker::list".to_owned(),
            ));
        }
        let path = match parsed {
            Ok(path) => path,
            Err(e) => {
                self.record_refused(caller, &shown, access, "invalid-path")?;
                return Err(Refusal::InvalidPath(format!("invalid secret path: {e}")));
            }
        };
        // The canonical form, as the policy and listings name the path (it differs from
        // `raw_path` only for the bracketed form).
        let mut canonical = std::mem::take(&mut *caller.path_buf);
        canonical.clear();
        let _ = write!(canonical, "{path}");
        let outcome = self.decide_and_fetch(caller, operation, &path, &canonical, &shown);
        *caller.path_buf = canonical;
        outcome
    }

    /// Every leaf name at or below `raw_prefix` that the policy lets the caller list,
    /// in store order (names only; one audit record with their count). A prefix that
    /// does not parse lists nothing (and is recorded as such).
    ///
    /// # Errors
    /// Only [`Refusal::Stop`]: a stopped caller, the call limit, or an audit failure.
    pub fn list<R: Redaction>(
        &self,
        caller: &mut Caller<R>,
        raw_prefix: &str,
    ) -> Result<Vec<String>, Refusal> {
        let parsed = within_path_limit(caller, raw_prefix)
            .and_then(|()| SecretPath::parse_prefix(raw_prefix).map_err(|e| e.to_string()));
        let shown = recorded(&*self.store, caller, raw_prefix, parsed.as_ref().ok());
        self.refuse_if_stopped(caller, &shown, AccessType::List)?;
        self.count(caller, &shown, AccessType::List)?;
        let Ok(prefix) = parsed else {
            self.record_refused(caller, &shown, AccessType::List, "invalid-path")?;
            return Ok(Vec::new());
        };
        let names: Vec<String> = match self.store.list(&prefix) {
            Ok(paths) => paths
                .iter()
                .filter(|p| {
                    self.policy
                        .evaluate(&caller.agent, &caller.skill, p, Operation::List)
                        .is_allowed()
                })
                .map(ToString::to_string)
                .collect(),
            Err(_) => Vec::new(),
        };
        let count = format!("{} names", names.len());
        let detail = shown.detail(Some(&count));
        self.record(
            &mut caller.stop,
            &Record::new(
                &caller.run,
                &shown.path,
                AccessType::List,
                AuditDecision::Allow,
            )
            .detail(detail.as_deref()),
        )?;
        Ok(names)
    }

    /// Appends a record about the caller's run as a whole (a limit, a trap, a refused
    /// output, a need not granted...): `access_type: run`, empty path, denied.
    ///
    /// # Errors
    /// The record could not be written (the message says why).
    pub fn record_run_event(&self, run: &RunContext, detail: &str) -> Result<(), String> {
        self.record_now(&Record::new(run, "", AccessType::Run, AuditDecision::Deny).detail(detail))
    }

    /// Appends `record` and syncs it now (for checks made before a run starts, such as
    /// declared needs).
    ///
    /// # Errors
    /// The record could not be written.
    pub fn record_now(&self, record: &Record<'_>) -> Result<(), String> {
        match self.audit.lock() {
            Ok(mut log) => log.append(record).map(drop).map_err(|e| e.to_string()),
            Err(_) => Err("audit log lock poisoned".to_owned()),
        }
    }

    /// The run ended (after its instance is gone): the store releases what it issued for
    /// it, e.g. revokes the leases of its dynamic credentials.
    pub fn end_run(&self, run: &RunContext) {
        self.store.end_run(run.run_id());
    }

    /// Ends `run` at the store when the guard is dropped, however the caller leaves: for
    /// callers that are not skill runs (`agentsec exec`, `agentsec ssh`), whose dynamic
    /// credentials live as long as their command.
    pub fn end_run_on_drop<'b>(&'b self, run: &RunContext) -> EndRunGuard<'b> {
        EndRunGuard {
            broker: self,
            run: run.clone(),
        }
    }

    /// Makes every record written so far durable. A host calls it when a run ends,
    /// before anything the skill produced is returned.
    ///
    /// # Errors
    /// The `fsync` failed: the caller's output must be withheld.
    pub fn sync(&self) -> Result<(), String> {
        match self.audit.lock() {
            Ok(mut log) => log.sync().map_err(|e| e.to_string()),
            Err(_) => Err("audit log lock poisoned".to_owned()),
        }
    }

    /// Refuses a stopped caller. The request that finds the cancel token tripped is
    /// recorded (a denied request, `stopped: cancelled`); a stop for another reason was
    /// recorded when it happened, and nothing the caller asks afterwards is.
    fn refuse_if_stopped<R: Redaction>(
        &self,
        caller: &mut Caller<R>,
        shown: &Recorded,
        access: AccessType,
    ) -> Result<(), Refusal> {
        if caller.stop.is_none() && caller.cancel.is_cancelled() {
            self.record_refused(caller, shown, access, "stopped: the run was cancelled")?;
            caller.stop = Some(Stop::Cancelled);
        }
        match &caller.stop {
            Some(stop) => Err(Refusal::Stop(stop.clone())),
            None => Ok(()),
        }
    }

    /// Records a refused request: denied, the path as recorded, `why` (then the
    /// unknown-path note, if any) as its detail.
    fn record_refused<R: Redaction>(
        &self,
        caller: &mut Caller<R>,
        shown: &Recorded,
        access: AccessType,
        why: &str,
    ) -> Result<(), Refusal> {
        let detail = shown.detail(Some(why));
        self.record(
            &mut caller.stop,
            &Record::new(&caller.run, &shown.path, access, AuditDecision::Deny)
                .detail(detail.as_deref()),
        )
    }

    /// Appends one audit record; an error stops the caller.
    fn record(&self, stopped: &mut Option<Stop>, record: &Record<'_>) -> Result<(), Refusal> {
        let appended = match self.audit.lock() {
            Ok(mut log) if self.sync == AuditSync::Record => {
                log.append(record).map(drop).map_err(|e| e.to_string())
            }
            Ok(mut log) => log
                .append_unsynced(record)
                .map(drop)
                .map_err(|e| e.to_string()),
            Err(_) => Err("audit log lock poisoned".to_owned()),
        };
        appended.map_err(|why| stop(stopped, Stop::AuditFailed(why)))
    }

    /// Counts a request; stops the caller (after recording why) when over the limit.
    fn count<R: Redaction>(
        &self,
        caller: &mut Caller<R>,
        shown: &Recorded,
        access: AccessType,
    ) -> Result<(), Refusal> {
        caller.stats.calls = caller.stats.calls.saturating_add(1);
        if caller.stats.calls <= caller.limits.max_calls {
            return Ok(());
        }
        let limit = format!(
            "limit: more than {} secret calls in one run",
            caller.limits.max_calls
        );
        self.record_refused(caller, shown, access, &limit)?;
        Err(stop(&mut caller.stop, Stop::SecretCalls))
    }
}

/// Stops `caller` for `why`; returns the refusal that says so.
fn stop(stopped: &mut Option<Stop>, why: Stop) -> Refusal {
    *stopped = Some(why.clone());
    Refusal::Stop(why)
}

/// Refuses paths longer than the caller's limit (before parsing them).
fn within_path_limit<R: Redaction>(caller: &Caller<R>, raw: &str) -> Result<(), String> {
    if raw.len() > caller.limits.max_path_len {
        return Err(format!(
            "the path is {} bytes, over this run's {}-byte path length limit",
            raw.len(),
            caller.limits.max_path_len
        ));
    }
    Ok(())
}

/// A path as it may be recorded (see [`crate::audit_path`]): a caller can pass a value it
/// was given, in any form, *as a path* to smuggle it into the audit log.
fn recorded<R: Redaction>(
    store: &dyn SecretStore,
    caller: &mut Caller<R>,
    raw: &str,
    parsed: Option<&SecretPath>,
) -> Recorded {
    caller.paths.form(store, &mut caller.redactor, raw, parsed)
}
