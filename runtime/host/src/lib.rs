//! The agentsec WebAssembly host: runs a skill (a component of an `agentsec:skill` world,
//! 0.2.0 or 0.1.0, see `wit/`) in a wasmtime sandbox that starts with nothing: no environment, no
//! arguments, no files, no sockets, empty stdin. The skill's only source of credentials is
//! `get-secret`, which this crate answers through the [`Broker`](agentsec_broker::Broker)
//! (policy, then audit, then the store); everything the skill sends back is redacted.
//!
//! [`Runtime`] is one engine and linker for many runs; [`secrets::add_to_linker`] adds the
//! secrets interface to any other host's linker instead.
//!
//! ```no_run
//! # use std::sync::{Arc, Mutex};
//! # fn demo(policy: agentsec_policy::Policy, store: Arc<dyn agentsec_secrets::SecretStore>) -> Result<(), Box<dyn std::error::Error>> {
//! use agentsec_broker::Broker;
//! use agentsec_host::{HostConfig, RunEnd, RunRequest, Runtime};
//!
//! let runtime = Runtime::new(HostConfig::default())?;
//! let skill = runtime.load_file("db_healthcheck.wasm".as_ref())?;
//! let audit = Arc::new(Mutex::new(agentsec_audit::AuditLog::open("audit.log")?));
//! let broker = Arc::new(Broker::new(Arc::new(policy), store, audit));
//! let request = RunRequest::new(
//!     "ops/release-manager".parse()?,
//!     r#"{"env": "production"}"#,
//!     broker,
//!     agentsec_audit::new_run_id()?,
//! );
//! if let RunEnd::Ok(result) = runtime.run(&skill, request).end {
//!     println!("{result}");
//! }
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]

pub mod bindings;
pub mod cache;
mod egress;
mod engine;
mod error;
pub mod hardening;
pub mod limits;
pub mod needs;
mod preflight;
mod run;
pub mod secrets;
mod state;
pub mod tool;

pub use agentsec_broker::{AuditSync, CancelToken, RunStats};
/// Output redaction (the `agentsec-redact` crate).
pub use agentsec_redact as redact;
pub use agentsec_redact::ShapeAction;
pub use engine::{
    HostConfig, LoadedSkill, MAX_IDLE_EXECUTORS, POOLED_PER_RUN, Pooling, Runtime,
    SLOW_COMPILE_NOTICE,
};
pub use error::HostError;
pub use limits::{LimitKind, LimitOverrides, Limits};
pub use run::{RunEnd, RunReport, RunRequest};
/// The wasmtime this host is built on, for embedders that link the secrets interface
/// into their own engine ([`secrets::add_to_linker`]).
pub use wasmtime;
