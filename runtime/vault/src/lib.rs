//! HashiCorp Vault / OpenBao as a secret store of agentsec.
//!
//! - [`VaultConfig`]: `vault-config.yaml` (addresses, CA, auth method, KV v2 mounts).
//! - [`VaultStore`]: KV v2 secrets behind [`agentsec_secrets::SecretStore`], each key of a
//!   KV secret a leaf of the dotted tree; logins (token, AppRole, JWT / Kubernetes),
//!   renewal at 2/3 of the TTL, re-login, `revoke-self` on drop; bounded retries across the
//!   addresses; a value cache with a TTL.
//! - [`VaultToken`]: a token, zeroized and never printed.
//!
//! The HTTP client is a thin layer over `ureq` with rustls and **redirects off**, so a 307
//! from a standby cannot carry the token to another host. Every failure to answer is
//! [`agentsec_secrets::StoreError::Unavailable`], never not-found.
#![forbid(unsafe_code)]

mod auth;
mod client;
pub mod config;
mod store;

pub use auth::{MAX_CREDENTIAL_FILE, SopsReader, VaultToken};
pub use client::{
    CLUSTER_ROUNDS, FIRST_BACKOFF, LEADER_RECHECK, MAX_BACKOFF, MAX_RESPONSE, MAX_ROUNDS,
};
pub use config::{AuthMethod, ConfigError, CredentialSource, Mount, VaultConfig};
pub use store::{
    KvLocation, MAX_LEASE_ID_LEN, MAX_LEASED_RUNS, MAX_LIST_DEPTH, MAX_LIST_SECRETS, OpenError,
    RENEW_CHECK_INTERVAL, VaultStore, WriteError,
};
