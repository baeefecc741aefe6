//! The agentsec WebAssembly host.
//!
//! Runs a skill (a component of the `agentsec:skill@0.1.0` world, see `wit/`)
//! in a wasmtime sandbox that starts with nothing: no environment, no
//! arguments, no files, no sockets, empty stdin. The skill's only source of
//! credentials is `get-secret`, which this crate answers by asking the policy
//! ([`agentsec_policy`]), writing an audit record ([`agentsec_audit`]) and
//! only then copying the value from the store ([`agentsec_secrets`]) into the
//! guest. Everything the skill sends back is redacted.
//!
//! ```no_run
//! # use std::sync::{Arc, Mutex};
//! # fn demo(policy: agentsec_policy::Policy, store: Arc<dyn agentsec_secrets::SecretStore>) -> Result<(), Box<dyn std::error::Error>> {
//! use agentsec_host::{Host, HostConfig, Limits, RunEnd, RunRequest};
//!
//! let host = Host::new(HostConfig::default())?;
//! let skill = host.load_file("db_healthcheck.wasm".as_ref())?;
//! let report = host.run(&skill, RunRequest {
//!     agent: "ops/release-manager".parse()?,
//!     input: r#"{"env": "production"}"#.into(),
//!     policy: Arc::new(policy),
//!     store,
//!     audit: Arc::new(Mutex::new(agentsec_audit::AuditLog::open("audit.log")?)),
//!     limits: Limits::default(),
//!     run_id: agentsec_audit::new_run_id()?,
//!     on_credential_shape: agentsec_host::ShapeAction::Redact,
//!     audit_sync: agentsec_host::AuditSync::Run,
//! });
//! if let RunEnd::Ok(result) = report.end {
//!     println!("{result}");
//! }
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]

mod audit_path;
mod bindings;
pub mod cache;
mod engine;
mod error;
pub mod hardening;
pub mod limits;
pub mod needs;
pub mod redact;
mod run;
mod secrets_api;
pub mod shapes;
mod state;

pub use engine::{Host, HostConfig, LoadedSkill, POOLED_PER_RUN, Pooling};
pub use error::HostError;
pub use limits::{LimitKind, Limits};
pub use run::{AuditSync, RunEnd, RunReport, RunRequest};
pub use secrets_api::RunStats;
pub use shapes::ShapeAction;
