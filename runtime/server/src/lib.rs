//! `agentsec serve`: a long-lived host that owns the keys.
//!
//! It keeps the decrypted store, the policy and the compiled components in memory, is the
//! single writer of the audit log, and answers `run` requests on a unix socket (the wire
//! protocol is in [`protocol`]). Callers are identified by the kernel ([`identity`]): the
//! agent id a request names must be bound to the peer's OS identity by the policy's
//! `agents:` section (or be unbound under `identity: optional`).
//!
//! The pieces a front end supplies: a [`Loader`] (how to read the policy and open the store,
//! so that this crate knows nothing of SOPS or flags), and a [`Render`] function (how a
//! run's outcome is printed, so that a run through the daemon prints exactly what a local
//! `agentsec-run` prints).

pub mod identity;
mod pool;
pub mod protocol;
mod server;
mod service;

pub use server::{
    DEFAULT_MAX_AGENT_RATE, DEFAULT_MAX_CONNECTIONS, DEFAULT_QUEUE_PER_WORKER, Loader, Outcome,
    RELOAD_POLL_INTERVAL, Refused, Render, Rendered, Server, ServerConfig, ServerError, Stamp,
    default_socket, stamp,
};
pub use service::{Declined, Done, MCP_SKILL, Revealed, ToolEntry, Who, kind_from_name, kind_name};
