//! The `agentsec-run` and `agentsec` command-line tools.
//!
//! Libraries below this crate return typed errors; this is the edge where
//! they become one clean message on stderr and a documented exit code.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit_key;
pub mod error;
pub mod exit;
pub mod project;
pub mod run_cmd;
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
