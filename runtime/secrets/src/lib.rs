//! Secret values and the store interface of agentsec: what every backend implements and every
//! front door consumes, with no file format, no key handling and no WebAssembly in it.
//!
//! - [`SecretValue`]: plaintext bytes, zeroized on drop, with no `Debug`, `Display`,
//!   `Serialize` or `Clone`.
//! - [`SecretStore`]: "the leaf at this path", which takes the policy's
//!   [`Authorized`](agentsec_policy::Authorized) proof, so no code path reads a secret without
//!   passing policy; and [`NameIndex`]: "the leaf names under this prefix", names only, which
//!   a backend may answer without any key.
//! - [`StoreError`]: why a store gave no value; messages name paths, never values.
//! - [`MemoryStore`]: values held in memory, for tests and embedders.
//!
//! - [`StackStore`]: several stores combined into one tree, overlaps refused.
//!
//! Backends live in their own crates: `agentsec-sops` reads SOPS files, `agentsec-vault`
//! Vault/OpenBao KV v2.
//!
//! ```
//! use agentsec_policy::{
//!     AgentId, Decision, Operation, Policy, SecretPath, SkillDigest, SkillName, SkillRef,
//! };
//! use agentsec_secrets::{MemoryStore, NameIndex, SecretStore, SecretValue};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut store = MemoryStore::new();
//! store.insert(
//!     SecretPath::parse("db.password")?,
//!     SecretValue::copy_from_slice(b"hunter2"),
//!     true,
//! )?;
//! let policy = Policy::from_sources(&[(
//!     "policy.yaml",
//!     "access_control:\n  secrets:\n    db.*:\n      allowed_agents: [ops/*]\n",
//! )])?;
//! let agent = AgentId::parse("ops/release")?;
//! let skill = SkillRef::new(SkillName::parse("db-check")?, SkillDigest::from_bytes([0; 32]));
//! let path = SecretPath::parse("db.password")?;
//! let Decision::Allow(grant) = policy.evaluate(&agent, &skill, &path, Operation::Read) else {
//!     panic!("the policy allows ops/* to read db.*");
//! };
//! let secret = store.get(&grant)?;
//! assert_eq!(secret.value.expose_secret(), b"hunter2");
//! assert!(secret.redact);
//! assert_eq!(store.list(&SecretPath::root())?, vec![path]);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod memory;
mod stack;
mod store;
mod value;

pub use memory::{InsertError, MemoryStore};
pub use stack::{Layer, OverlapError, StackStore};
pub use store::{NameIndex, SecretStore, StoreError, StoredSecret};
pub use value::SecretValue;
