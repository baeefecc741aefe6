//! The agentsec request pipeline, with no WebAssembly in it: every front door (a skill's
//! `get-secret`, a long-lived server, host-side HTTP injection, an SSH agent) asks the same
//! [`Broker`], which counts the request, parses the path, asks the policy for the
//! [`Operation`](agentsec_policy::Operation), fetches the value from the
//! [`SecretStore`](agentsec_secrets::SecretStore) with the policy's proof, has the caller's
//! [`Redaction`] learn it, and writes the audit record before it hands the value out. The
//! answer is a [`Released`] value or a [`Refusal`]; a front door only translates it.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use agentsec_audit::{AuditLog, RunContext};
//! use agentsec_broker::{Broker, Caller, CallerLimits, NoRedaction, Refusal};
//! use agentsec_policy::{AgentId, Operation, Policy, SecretPath, SkillDigest, SkillName, SkillRef};
//! use agentsec_secrets::{MemoryStore, SecretValue};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let mut store = MemoryStore::new();
//! store.insert(SecretPath::parse("db.password")?, SecretValue::copy_from_slice(b"pw"), true)?;
//! store.insert(SecretPath::parse("hooks.deploy")?, SecretValue::copy_from_slice(b"u"), true)?;
//! let policy = Policy::from_sources(&[(
//!     "policy.yaml",
//!     "access_control:\n  secrets:\n    db:\n      allowed_agents: [ops/*]\n    \
//!      hooks:\n      allowed_agents: [ops/*]\n      access_level: post\n",
//! )])?;
//! let audit = Arc::new(Mutex::new(AuditLog::open(dir.path().join("audit.log"))?));
//! let broker = Broker::new(Arc::new(policy), Arc::new(store), audit);
//!
//! let skill = SkillRef::new(SkillName::parse("db-check")?, SkillDigest::from_bytes([0; 32]));
//! let run = RunContext::new("ops/release", "db-check", "00".repeat(32), "run-1");
//! let mut caller = Caller::new(
//!     AgentId::parse("ops/release")?,
//!     skill,
//!     run,
//!     CallerLimits::new(100, 1024),
//!     NoRedaction,
//! );
//! let released = broker.request(&mut caller, Operation::Read, "db.password")?;
//! assert_eq!(released.value.expose_secret(), b"pw");
//! // `post`: the host may POST with it; the skill may not read it.
//! let refused = broker.request(&mut caller, Operation::Read, "hooks.deploy");
//! assert!(matches!(refused, Err(Refusal::Denied(_))));
//! let post = Operation::Inject { method: "POST", destination: "https://ci.example:443" };
//! assert!(broker.request(&mut caller, post, "hooks.deploy").is_ok());
//! broker.sync()?;
//! assert_eq!(caller.stats().calls, 3);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod audit_path;
mod broker;
mod caller;
mod outcome;

pub use broker::{AuditSync, Broker, EndRunGuard};
pub use caller::{Caller, CallerLimits, CancelToken, NoRedaction, Redaction, RunStats};
pub use outcome::{Refusal, Released, Stop};
