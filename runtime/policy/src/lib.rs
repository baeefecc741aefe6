//! Access-control policy for agentsec: which agent may read which secret path.
//!
//! ```
//! use agentsec_policy::{
//!     AgentId, Decision, Operation, Policy, SecretPath, SkillDigest, SkillName, SkillRef,
//! };
//!
//! let policy = Policy::from_sources(&[(
//!     "policies/demo.yaml",
//!     "access_control:
//!   secrets:
//!     databases.postgres.production:
//!       allowed_agents: [ops/release-manager]
//!       denied_agents: [ops/intern]
//!       access_level: readonly
//! ",
//! )])?;
//! let skill = SkillRef::new(SkillName::parse("db-healthcheck")?, SkillDigest::from_bytes([0; 32]));
//! let path = SecretPath::parse("databases.postgres.production.password")?;
//!
//! let manager = AgentId::parse("ops/release-manager")?;
//! match policy.evaluate(&manager, &skill, &path, Operation::Read) {
//!     Decision::Allow(token) => assert_eq!(token.access_level().as_str(), "readonly"),
//!     Decision::Deny(denial) => panic!("{denial}"),
//! }
//!
//! let changelog = AgentId::parse("ops/changelog")?;
//! let denial = policy.evaluate(&changelog, &skill, &path, Operation::Read).into_result().unwrap_err();
//! assert_eq!(
//!     denial.to_string(),
//!     "agent `ops/changelog` may not read `databases.postgres.production.password`: \
//!      rule `databases.postgres.production` (policies/demo.yaml:3) allows only \
//!      ops/release-manager; add the agent to its allowed_agents to grant it"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - **Parse, don't validate**: [`AgentId`], [`SecretPath`], [`AgentGlob`],
//!   [`SkillName`], [`SkillDigest`] and [`AccessLevel`] can only be made by
//!   parsing; errors name the offending character and its byte position.
//! - **Strict policy files** ([`Policy::load`]): unknown keys, wrong types,
//!   duplicate keys and conflicting rules across files are [`PolicyError`]s
//!   displayed as `file:line:column: message`.
//! - **Deny by default, deny wins** ([`Policy::evaluate`]): a matching
//!   `denied_agents` beats any allow, whatever its specificity.
//! - **Authorization is a value**: [`Authorized`] is created only by the
//!   evaluator; the secret store requires it.
//! - **Every bound is named**: [`MAX_AGENT_ID_LEN`], [`MAX_PATH_LEN`],
//!   [`MAX_PATH_SEGMENTS`], [`MAX_POLICY_FILE_SIZE`], [`MAX_POLICY_FILES`],
//!   [`MAX_RULES`], [`MAX_NESTING_DEPTH`], [`MAX_SKILL_NAME_LEN`],
//!   [`MAX_ACCESS_LEVEL_LEN`].
//!
//! - **Review** as pure functions over a loaded policy (and, optionally, the
//!   list of secret paths a store holds, so this crate stays free of SOPS):
//!   [`Policy::lint`] (`policy check` warnings), [`Policy::explain`] (what an
//!   agent may read), [`Policy::who_can`] (who may read a path), [`diff()`]
//!   (grants added and removed; whether access widens, defined in [`diff`](mod@diff))
//!   and [`Policy::unmet_needs`] (a skill's declared needs, see [`needs`]).
//!
//! No wasmtime, and no I/O beyond reading policy files.

#![forbid(unsafe_code)]

mod agent;
pub mod bounded;
pub mod contain;
pub mod diff;
pub mod egress;
mod error;
mod eval;
mod explain;
#[doc(hidden)]
pub mod fuzz;
pub mod identity;
mod index;
mod lint;
pub mod needs;
mod parse;
mod path;
mod policy;
mod rule;
pub mod sandbox;
mod skill;
mod ssh;
mod who_can;

pub use agent::{AgentGlob, AgentId, MAX_AGENT_ID_LEN};
pub use diff::{Change, DiffEntry, IdentityChange, PolicyDiff, Widening, diff};
pub use egress::{EgressDenial, EgressGrant, EgressRuleRef, Host, Scheme, Target, UrlPattern};
pub use error::{
    AccessLevelError, AgentIdError, GlobError, InvalidPolicy, Location, PathError, PolicyError,
    SkillError,
};
pub use eval::{Authorized, Decision, Denial, DenialReason};
pub use explain::{ExplainedDenial, ExplainedGrant, Explanation, SkillFilter};
pub use identity::{
    AgentBinding, IdentityGrant, IdentityMode, IdentityRefusal, Peer, UnixPrincipal,
};
pub use lint::Warning;
pub use needs::UnmetNeed;
pub use parse::{MAX_NESTING_DEPTH, MAX_POLICY_FILE_SIZE, MAX_RULES};
pub use path::{
    MAX_PATH_LEN, MAX_PATH_SEGMENTS, PathPattern, PatternSegment, SecretPath, list_index,
};
pub use policy::{MAX_POLICY_FILES, Policy};
pub use rule::{AccessLevel, InjectEntry, MAX_ACCESS_LEVEL_LEN, Operation, RuleRef};
pub use skill::{MAX_SKILL_NAME_LEN, SkillDigest, SkillName, SkillRef, SkillSelector};
pub use ssh::{MAX_KEY_LIFETIME, MAX_SSH_HOSTS, SignTarget, SshHostKey};
pub use who_can::{Effect, Scope, WhoCan, WhoCanEntry};
