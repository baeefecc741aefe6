//! The second half of a request, once its path parsed: the policy's decision for the
//! operation, the store's answer with the proof, and the record and release (or refusal)
//! that follow.

use agentsec_audit::{AccessType, Decision as AuditDecision, Record};
use agentsec_policy::{AccessLevel, Decision, DenialReason, Operation, SecretPath};
use agentsec_secrets::{StoreError, StoredSecret};

use super::{Broker, stop};
use crate::audit_path::Recorded;
use crate::caller::{Caller, Redaction};
use crate::outcome::{Refusal, Released, Stop};

/// The rule that refused a request, for its audit record: and the level it grants, when
/// it refused because that level does not permit the operation.
#[derive(Clone, Copy)]
struct Refusing<'a> {
    rule: Option<&'a str>,
    level: Option<AccessLevel>,
    /// Why, when the rule grants the agent but a condition of it refused (`ssh_hosts`).
    condition: Option<&'static str>,
}

impl Broker {
    /// [`Self::request`] once the path parsed: policy, store, redaction, audit.
    pub(super) fn decide_and_fetch<R: Redaction>(
        &self,
        caller: &mut Caller<R>,
        operation: Operation<'_>,
        path: &SecretPath,
        canonical: &str,
        shown: &Recorded,
    ) -> Result<Released, Refusal> {
        let access = access_type(&operation);
        let grant = match self
            .policy
            .evaluate(&caller.agent, &caller.skill, path, operation)
        {
            Decision::Allow(grant) => grant,
            Decision::Deny(denial) => {
                let rule = denial.rule().map(|r| r.pattern().to_string());
                let message = denial.to_string();
                // A rule that grants the path at a level that does not permit the operation:
                // the record says which level, so it does not read like a `denied_agents` deny.
                let level = match denial.reason() {
                    DenialReason::LevelForbids(r) => Some(*r.access_level()),
                    _ => None,
                };
                let condition = match denial.reason() {
                    DenialReason::HostNotListed(_) => {
                        Some("the host is not in the rule's ssh_hosts")
                    }
                    _ => None,
                };
                return self.denied(
                    caller,
                    operation,
                    shown,
                    access,
                    Refusing {
                        rule: rule.as_deref(),
                        level,
                        condition,
                    },
                    message,
                );
            }
        };
        let allow = AllowRecord {
            shown,
            access,
            rule: grant.rule().pattern().to_string(),
            level: *grant.access_level(),
            what: operation_detail(&operation),
        };
        match self.store.get_in_run(&grant, caller.run.run_id()) {
            Ok(secret) => self.release(caller, operation, canonical, &allow, secret),
            Err(StoreError::NotFound { .. }) => {
                self.record_allowed(caller, &allow, Some("not-found"))?;
                Err(Refusal::NotFound(format!("no secret at `{canonical}`")))
            }
            Err(StoreError::NotALeaf { children, .. }) => {
                self.record_allowed(caller, &allow, Some("not-a-leaf"))?;
                Err(self.not_a_leaf(caller, operation, path, canonical, &children))
            }
            Err(e @ StoreError::Unbound { .. }) => {
                self.record_allowed(caller, &allow, Some("invalid-path: not bound to its path"))?;
                Err(Refusal::InvalidPath(e.to_string()))
            }
            Err(e @ StoreError::DeniedElsewhere { .. }) => {
                self.denied_elsewhere(caller, shown, access, e)
            }
            Err(e) => {
                self.record_allowed(caller, &allow, Some("unavailable"))?;
                Err(Refusal::Unavailable(e.to_string()))
            }
        }
    }

    /// A request the policy denied: counted, recorded and refused with the denial's
    /// message (`rule`: the denying rule, if one matched).
    fn denied<R: Redaction>(
        &self,
        caller: &mut Caller<R>,
        operation: Operation<'_>,
        shown: &Recorded,
        access: AccessType,
        refusing: Refusing<'_>,
        message: String,
    ) -> Result<Released, Refusal> {
        caller.stats.denied += 1;
        let what = operation_detail(&operation);
        let forbids = refusing
            .level
            .map(|level| format!("level {level} does not permit {}", operation.as_str()))
            .or(refusing.condition.map(str::to_owned));
        let base = match (what, forbids) {
            (Some(w), Some(f)) => Some(format!("{w}; {f}")),
            (w, f) => w.or(f),
        };
        let detail = shown.detail(base.as_deref());
        self.record(
            &mut caller.stop,
            &Record::new(&caller.run, &shown.path, access, AuditDecision::Deny)
                .rule(refusing.rule)
                .access_level(refusing.level.as_ref().map(AccessLevel::as_str))
                .detail(detail.as_deref()),
        )?;
        Err(Refusal::Denied(message))
    }

    /// A value the policy granted and the store found: checked for text (a read), learnt
    /// by the caller's redaction (a value that cannot be redacted is not released),
    /// recorded, and only then released.
    fn release<R: Redaction>(
        &self,
        caller: &mut Caller<R>,
        operation: Operation<'_>,
        canonical: &str,
        allow: &AllowRecord<'_>,
        secret: StoredSecret,
    ) -> Result<Released, Refusal> {
        // Every front door releases text today (WIT `string`, JSON).
        if matches!(operation, Operation::Read | Operation::Reveal)
            && std::str::from_utf8(secret.value.expose_secret()).is_err()
        {
            self.record_allowed(caller, allow, Some("not-utf8"))?;
            return Err(Refusal::InvalidPath(format!(
                "`{canonical}` holds binary data, which get-secret cannot return as text"
            )));
        }
        if secret.redact
            && let Err(limit) = caller
                .redactor
                .learn(canonical, secret.value.expose_secret())
        {
            let detail = format!("limit: redaction limit: {limit}");
            self.record(
                &mut caller.stop,
                &Record::new(
                    &caller.run,
                    &allow.shown.path,
                    allow.access,
                    AuditDecision::Deny,
                )
                .rule(allow.rule.as_str())
                .detail(detail.as_str()),
            )?;
            return Err(stop(&mut caller.stop, Stop::Redaction));
        }
        // The record is in the log before the value is released (with the lease a
        // dynamic credential was issued under: an id, never the credential).
        let lease = secret.lease.as_ref().map(|l| format!("lease {l}"));
        self.record_allowed(caller, allow, lease.as_deref())?;
        caller.stats.released += 1;
        Ok(Released {
            value: secret.value,
            path: canonical.to_owned(),
            redact: secret.redact,
            level: allow.level,
        })
    }

    /// Records an allowed request, with `detail` about its outcome.
    fn record_allowed<R: Redaction>(
        &self,
        caller: &mut Caller<R>,
        allow: &AllowRecord<'_>,
        detail: Option<&str>,
    ) -> Result<(), Refusal> {
        let detail = allow.detail(detail);
        self.record(
            &mut caller.stop,
            &Record::new(
                &caller.run,
                &allow.shown.path,
                allow.access,
                AuditDecision::Allow,
            )
            .rule(allow.rule.as_str())
            .access_level(allow.level.as_str())
            .detail(detail.as_deref()),
        )
    }

    /// The refusal of a path that names a mapping or a list: it lists the entries the
    /// caller may use for this operation, so that it can ask again.
    fn not_a_leaf<R: Redaction>(
        &self,
        caller: &Caller<R>,
        operation: Operation<'_>,
        path: &SecretPath,
        canonical: &str,
        children: &[String],
    ) -> Refusal {
        let readable: Vec<&str> = children
            .iter()
            .map(String::as_str)
            .filter(|child| {
                path.child(child).is_ok_and(|c| {
                    self.policy
                        .evaluate(&caller.agent, &caller.skill, &c, operation)
                        .is_allowed()
                })
            })
            .collect();
        Refusal::InvalidPath(format!(
            "`{canonical}` is not a secret but a mapping or list; entries you may {}: {}",
            verb(&operation),
            if readable.is_empty() {
                "(none)".to_owned()
            } else {
                readable.join(", ")
            }
        ))
    }

    /// The store refused the value because a deny rule holds at a position that shares
    /// its sops AAD: a denial, counted and recorded as one.
    fn denied_elsewhere<R: Redaction>(
        &self,
        caller: &mut Caller<R>,
        shown: &Recorded,
        access: AccessType,
        e: StoreError,
    ) -> Result<Released, Refusal> {
        caller.stats.denied += 1;
        let denying = match &e {
            StoreError::DeniedElsewhere { rule, .. } => Some(rule.as_str()),
            _ => None,
        };
        let detail = shown.detail(Some("denied: a position with the same AAD"));
        self.record(
            &mut caller.stop,
            &Record::new(&caller.run, &shown.path, access, AuditDecision::Deny)
                .rule(denying)
                .detail(detail.as_deref()),
        )?;
        Err(Refusal::Denied(e.to_string()))
    }
}

/// What every audit record of one granted request carries: the path as recorded, the
/// access type, the granting rule and its level, and what the operation was beyond its
/// type.
struct AllowRecord<'a> {
    shown: &'a Recorded,
    access: AccessType,
    rule: String,
    level: AccessLevel,
    what: Option<String>,
}

impl AllowRecord<'_> {
    /// The record's `detail`: the operation's, then `outcome`'s, then the recorded path's.
    fn detail(&self, outcome: Option<&str>) -> Option<String> {
        let base = match (self.what.as_deref(), outcome) {
            (Some(w), Some(d)) => Some(format!("{w}; {d}")),
            (Some(w), None) => Some(w.to_owned()),
            (None, Some(d)) => Some(d.to_owned()),
            (None, None) => None,
        };
        self.shown.detail(base.as_deref())
    }
}

/// The audit `access_type` of an operation.
pub(super) fn access_type(operation: &Operation<'_>) -> AccessType {
    match operation {
        Operation::List => AccessType::List,
        Operation::Inject { .. } => AccessType::Inject,
        Operation::Sign { .. } => AccessType::Sign,
        Operation::Reveal => AccessType::Reveal,
        _ => AccessType::Read,
    }
}

/// What the record says about the operation beyond its type: the method and destination
/// of an injection, the key of a signature (never a value, never a full URL).
pub(super) fn operation_detail(operation: &Operation<'_>) -> Option<String> {
    match operation {
        Operation::Inject {
            method,
            destination,
        } => Some(format!("{method} {destination}")),
        Operation::Sign { key, .. } => Some(format!("key {key}")),
        _ => None,
    }
}

/// The verb of an operation, for "entries you may ...".
fn verb(operation: &Operation<'_>) -> &'static str {
    match operation {
        Operation::Inject { .. } => "use",
        Operation::Sign { .. } => "sign with",
        _ => "read",
    }
}
