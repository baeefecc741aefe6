//! The `agentsec-run` and `agentsec` command-line tools: flags and `agentsec.yaml` defaults
//! in, one run of the [`agentsec_host::Runtime`] (or one admin command) out, with one error
//! type ([`error`]) and one exit-code table per tool ([`exit`]).
//!
//! Libraries below this crate return typed errors; this is the edge where
//! they become one clean message on stderr and a documented exit code.
//!
//! ```
//! use clap::Parser as _;
//! use agentsec_cli::{exit, run_cmd::Args};
//!
//! let args = Args::try_parse_from(["agentsec-run", "probe.wasm", "--agent", "ops/ci", "--timeout", "2s"])
//!     .expect("valid flags");
//! assert_eq!(args.agent.as_deref(), Some("ops/ci"));
//! assert_eq!(args.limits.timeout, Some(std::time::Duration::from_secs(2)));
//! // Every exit code agentsec-run can return is documented once, in its table.
//! assert!(exit::RUN.iter().any(|row| row.code == exit::DENIED));
//! ```
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit_key;
pub mod error;
pub mod exit;
pub mod project;
pub mod run_cmd;
pub mod ship;
pub mod skills_dir;
pub mod trust;
pub mod units;

/// Sets up `tracing` to stderr, filtered by `AGENTSEC_LOG` (default `warn`).
/// Values are never logged at any level.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENTSEC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
