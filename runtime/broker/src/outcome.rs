//! What a request to the broker ends in: a [`Released`] value or a [`Refusal`].

use agentsec_policy::AccessLevel;
use agentsec_secrets::SecretValue;

/// A value the policy granted, on the record in the audit log, that the caller may now use
/// for the operation it asked for (hand it to the skill, inject it, sign with it).
///
/// When [`Released::redact`] is true the caller's [`crate::Redaction`] has already learnt
/// it: whatever the caller sends back is redacted of it.
#[non_exhaustive]
pub struct Released {
    /// The value (zeroized on drop).
    pub value: SecretValue,
    /// The path in canonical form (what a redaction marker names).
    pub path: String,
    /// Whether the value is redacted from output (see
    /// [`StoredSecret::redact`](agentsec_secrets::StoredSecret::redact)).
    pub redact: bool,
    /// The access level of the granting rule.
    pub level: AccessLevel,
}

/// Why a request released nothing. Every refusal is on the record in the audit log.
///
/// Messages name paths and rules, never values.
#[derive(Debug)]
#[non_exhaustive]
pub enum Refusal {
    /// The policy denies it (or a deny on a position the value may have come from); the
    /// message names the rule and how to change it.
    Denied(String),
    /// Nothing at this path.
    NotFound(String),
    /// The path does not parse, names a mapping or list, names binary data where text is
    /// asked for, or names a value the store does not serve at that path.
    InvalidPath(String),
    /// The store cannot answer now.
    Unavailable(String),
    /// The caller must stop: no further request of it will be answered.
    Stop(Stop),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Denied(m)
            | Refusal::NotFound(m)
            | Refusal::InvalidPath(m)
            | Refusal::Unavailable(m) => f.write_str(m),
            Refusal::Stop(stop) => write!(f, "{stop}"),
        }
    }
}

impl std::error::Error for Refusal {}

/// Why the broker stops a caller (a WebAssembly host traps the skill).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stop {
    /// More requests than [`crate::CallerLimits::max_calls`].
    SecretCalls,
    /// Releasing the value would take the redactor past its limit: a value that cannot be
    /// redacted is not released.
    Redaction,
    /// An audit record could not be written, so nothing was released (fail closed).
    AuditFailed(String),
    /// The caller's [`crate::CancelToken`] was tripped.
    Cancelled,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::SecretCalls => f.write_str("the secret-call limit was exceeded"),
            Stop::Redaction => f.write_str("the redaction limit was exceeded"),
            Stop::AuditFailed(why) => write!(f, "audit record could not be written: {why}"),
            Stop::Cancelled => f.write_str("the run was cancelled"),
        }
    }
}

impl std::error::Error for Stop {}
