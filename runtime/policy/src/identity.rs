//! Who may act as an agent id: the policy's `identity:` mode and `agents:` bindings.
//!
//! An agent id is worth what proves it. A front door learns the caller's OS identity from
//! the kernel (`SO_PEERCRED` on a unix socket, or the calling process's own uid for a local
//! run) and asks [`Policy::check_identity`] whether that identity may act as the agent id
//! it asked for. This crate does no I/O: the caller resolves uids and gids to names
//! ([`Peer`]).
//!
//! ```yaml
//! identity: required          # unbound agent ids are refused (default: optional)
//! agents:
//!   ops/release-manager: { unix_users: [deploy] }
//!   ops/changelog:       { unix_users: [deploy, ci], unix_groups: [release] }
//! ```

use std::collections::HashMap;
use std::fmt;

use crate::agent::AgentId;
use crate::error::Location;
use crate::policy::Policy;

/// Most entries in one binding's `unix_users`, `unix_groups` or `tokens_sha256`.
///
/// Reason: a binding names the few service accounts that run an agent; a long list is a
/// mistake (use a group), and the bound keeps every identity check short.
pub const MAX_BINDING_ENTRIES: usize = 64;

/// Longest user or group name accepted in a binding, in bytes.
///
/// Reason: Linux's `useradd` refuses names longer than 32 bytes.
pub const MAX_UNIX_NAME_LEN: usize = 32;

/// Whether an agent id that `agents:` does not bind may be used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityMode {
    /// Unbound agent ids are allowed to anyone who can reach the host (and
    /// `policy check` warns about each). The default, so that a policy without
    /// `agents:` keeps working.
    #[default]
    Optional,
    /// Unbound agent ids are refused (`identity: required`).
    Required,
}

impl IdentityMode {
    /// The mode as written in a policy: `optional` or `required`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityMode::Optional => "optional",
            IdentityMode::Required => "required",
        }
    }
}

/// A user or group as a binding names it: a name, or a numeric id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixPrincipal {
    /// A name (`deploy`), compared with the caller's name as the system resolves it.
    Name(Box<str>),
    /// A numeric id (`1001`), compared with the caller's id.
    Id(u32),
}

impl UnixPrincipal {
    /// Parses an entry of `unix_users` / `unix_groups`: digits are an id, anything else
    /// must be a portable name (`[A-Za-z0-9._-]`, not starting with `-`, at most
    /// [`MAX_UNIX_NAME_LEN`] bytes; a trailing `$` is allowed, as Samba machine accounts
    /// have).
    ///
    /// # Errors
    /// What is wrong with the entry, in words.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(UnixPrincipal::Id)
                .map_err(|_| format!("`{text}` is not a valid numeric id (at most 4294967295)"));
        }
        let name = text.strip_suffix('$').unwrap_or(text);
        if name.is_empty() || text.len() > MAX_UNIX_NAME_LEN {
            return Err(format!(
                "a user or group name is 1 to {MAX_UNIX_NAME_LEN} bytes"
            ));
        }
        if name.starts_with('-') {
            return Err("a user or group name may not start with `-`".to_owned());
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!(
                "`{}` may not appear in a user or group name (use letters, digits, `.`, `_`, `-`)",
                c.escape_debug()
            ));
        }
        Ok(UnixPrincipal::Name(text.into()))
    }

    fn matches(&self, id: u32, name: Option<&str>) -> bool {
        match self {
            UnixPrincipal::Id(want) => *want == id,
            UnixPrincipal::Name(want) => name == Some(&**want),
        }
    }
}

impl fmt::Display for UnixPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixPrincipal::Name(name) => f.write_str(name),
            UnixPrincipal::Id(id) => write!(f, "{id}"),
        }
    }
}

/// The identities one agent id is bound to (one entry of `agents:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentBinding {
    pub(crate) agent: AgentId,
    pub(crate) unix_users: Vec<UnixPrincipal>,
    pub(crate) unix_groups: Vec<UnixPrincipal>,
    pub(crate) tokens_sha256: Vec<[u8; 32]>,
    pub(crate) at: Location,
}

impl AgentBinding {
    /// The agent id bound.
    pub fn agent(&self) -> &AgentId {
        &self.agent
    }

    /// `unix_users`: callers running as one of these users may act as the agent.
    pub fn unix_users(&self) -> &[UnixPrincipal] {
        &self.unix_users
    }

    /// `unix_groups`: callers with one of these groups (primary or supplementary) may act
    /// as the agent.
    pub fn unix_groups(&self) -> &[UnixPrincipal] {
        &self.unix_groups
    }

    /// `tokens_sha256`: SHA-256 digests of bearer tokens that prove the agent (for front
    /// doors that take tokens; the tokens themselves are never in a policy).
    pub fn tokens_sha256(&self) -> &[[u8; 32]] {
        &self.tokens_sha256
    }

    /// Whether a bearer token with this SHA-256 digest proves the agent (constant time
    /// per entry: the digests are public, but the comparison need not leak which byte
    /// differed).
    pub fn accepts_token_sha256(&self, digest: &[u8; 32]) -> bool {
        self.tokens_sha256.iter().fold(false, |found, want| {
            let diff = want
                .iter()
                .zip(digest)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found | (diff == 0)
        })
    }

    /// Where it is defined.
    pub fn location(&self) -> &Location {
        &self.at
    }

    /// The OS identity of `peer` that this binding accepts, if any.
    fn accepts(&self, peer: &Peer<'_>) -> Option<String> {
        if let Some(user) = self
            .unix_users
            .iter()
            .find(|u| u.matches(peer.uid, peer.user))
        {
            return Some(format!("unix_users: {user}"));
        }
        peer.groups.iter().find_map(|(gid, name)| {
            self.unix_groups
                .iter()
                .find(|g| g.matches(*gid, *name))
                .map(|g| format!("unix_groups: {g}"))
        })
    }

    /// `users [deploy] and groups [release]`, for messages.
    fn describe(&self) -> String {
        let list = |items: &[UnixPrincipal]| {
            items
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (self.unix_users.is_empty(), self.unix_groups.is_empty()) {
            (false, true) => format!("users [{}]", list(&self.unix_users)),
            (true, false) => format!("groups [{}]", list(&self.unix_groups)),
            (false, false) => format!(
                "users [{}] and groups [{}]",
                list(&self.unix_users),
                list(&self.unix_groups)
            ),
            (true, true) => "bearer tokens only".to_owned(),
        }
    }
}

/// The OS identity of a caller, as the kernel proved it and the system resolved it.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// The caller's uid.
    pub uid: u32,
    /// Its user name, if the uid has one.
    pub user: Option<&'a str>,
    /// Its groups (primary and supplementary) with their names where they have one.
    pub groups: &'a [(u32, Option<&'a str>)],
}

impl fmt::Display for Peer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.user {
            Some(user) => write!(f, "uid {} (user `{user}`)", self.uid),
            None => write!(f, "uid {} (no user name)", self.uid),
        }
    }
}

/// Why a caller may act as an agent id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityGrant {
    /// A binding accepted the caller; the text says which entry (`unix_users: deploy`).
    Bound(String),
    /// The agent id is not bound and the policy's identity mode is optional.
    Unbound,
}

/// Why a caller may not act as an agent id. Its `Display` names the binding to change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityRefusal {
    /// The agent is bound, to identities the caller does not have.
    NotBound {
        /// The agent id.
        agent: AgentId,
        /// The caller, as displayed (`uid 1002 (user `eve`)`).
        caller: String,
        /// What the binding accepts, in words.
        accepts: String,
        /// Where the binding is.
        at: Location,
    },
    /// The agent is not bound and the policy says `identity: required`.
    Unbound {
        /// The agent id.
        agent: AgentId,
        /// The caller, as displayed.
        caller: String,
    },
}

impl fmt::Display for IdentityRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityRefusal::NotBound {
                agent,
                caller,
                accepts,
                at,
            } => write!(
                f,
                "{caller} may not act as agent `{agent}`: `agents.{agent}` ({at}) binds it to {accepts}; run as one of them, or add the user or one of its groups to that binding"
            ),
            IdentityRefusal::Unbound { agent, caller } => write!(
                f,
                "{caller} may not act as agent `{agent}`: the policy says `identity: required` and no `agents:` entry binds `{agent}`; add `{agent}: {{ unix_users: [...] }}` under `agents:`"
            ),
        }
    }
}

impl std::error::Error for IdentityRefusal {}

/// The `identity:` mode and `agents:` bindings of a policy (all files merged).
#[derive(Debug, Clone, Default)]
pub(crate) struct Identities {
    pub(crate) mode: IdentityMode,
    pub(crate) bindings: HashMap<AgentId, AgentBinding>,
}

impl Policy {
    /// The policy's identity mode (`identity:`; default optional).
    pub fn identity_mode(&self) -> IdentityMode {
        self.identities.mode
    }

    /// The binding of `agent`, if `agents:` has one.
    pub fn binding(&self, agent: &AgentId) -> Option<&AgentBinding> {
        self.identities.bindings.get(agent)
    }

    /// Every binding, in no particular order.
    pub fn bindings(&self) -> impl Iterator<Item = &AgentBinding> {
        self.identities.bindings.values()
    }

    /// Whether `peer` may act as `agent`: a bound agent needs one of its identities; an
    /// unbound one is refused under `identity: required` and allowed otherwise.
    ///
    /// # Errors
    /// [`IdentityRefusal`], whose text names the binding to change.
    pub fn check_identity(
        &self,
        agent: &AgentId,
        peer: &Peer<'_>,
    ) -> Result<IdentityGrant, IdentityRefusal> {
        match (self.binding(agent), self.identities.mode) {
            (Some(binding), _) => match binding.accepts(peer) {
                Some(via) => Ok(IdentityGrant::Bound(via)),
                None => Err(IdentityRefusal::NotBound {
                    agent: agent.clone(),
                    caller: peer.to_string(),
                    accepts: binding.describe(),
                    at: binding.at.clone(),
                }),
            },
            (None, IdentityMode::Required) => Err(IdentityRefusal::Unbound {
                agent: agent.clone(),
                caller: peer.to_string(),
            }),
            (None, _) => Ok(IdentityGrant::Unbound),
        }
    }

    /// Whether a bearer token with SHA-256 `digest` proves `agent` (`tokens_sha256` of its
    /// binding). An unbound agent accepts no token.
    pub fn token_proves(&self, agent: &AgentId, digest: &[u8; 32]) -> bool {
        self.binding(agent)
            .is_some_and(|b| b.accepts_token_sha256(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        Policy::from_sources(&[("p.yaml", text)]).unwrap()
    }

    const RULES: &str =
        "access_control:\n  secrets:\n    a:\n      allowed_agents: [ops/x, ops/y]\n";

    fn peer<'a>(uid: u32, user: &'a str, groups: &'a [(u32, Option<&'a str>)]) -> Peer<'a> {
        Peer {
            uid,
            user: Some(user),
            groups,
        }
    }

    #[test]
    fn a_bound_agent_needs_one_of_its_identities() {
        let p = policy(&format!(
            "agents:\n  ops/x: {{ unix_users: [deploy, 1005], unix_groups: [release] }}\n{RULES}"
        ));
        let x: AgentId = "ops/x".parse().unwrap();
        let none: &[(u32, Option<&str>)] = &[(100, Some("users"))];
        assert_eq!(
            p.check_identity(&x, &peer(1001, "deploy", none)),
            Ok(IdentityGrant::Bound("unix_users: deploy".into()))
        );
        assert!(p.check_identity(&x, &peer(1005, "other", none)).is_ok());
        let release: &[(u32, Option<&str>)] = &[(100, Some("users")), (200, Some("release"))];
        assert_eq!(
            p.check_identity(&x, &peer(1002, "eve", release)),
            Ok(IdentityGrant::Bound("unix_groups: release".into()))
        );
        let refusal = p
            .check_identity(&x, &peer(1002, "eve", none))
            .unwrap_err()
            .to_string();
        assert!(
            refusal.starts_with("uid 1002 (user `eve`) may not act as agent `ops/x`: `agents.ops/x` (p.yaml:2:3) binds it to users [deploy, 1005] and groups [release]"),
            "{refusal}"
        );
        // Unbound agents: allowed in the default mode, refused when required.
        let y: AgentId = "ops/y".parse().unwrap();
        assert_eq!(
            p.check_identity(&y, &peer(1002, "eve", none)),
            Ok(IdentityGrant::Unbound)
        );
        let strict = policy(&format!(
            "identity: required\nagents:\n  ops/x: {{ unix_users: [deploy] }}\n{RULES}"
        ));
        let refusal = strict
            .check_identity(&y, &peer(1002, "eve", none))
            .unwrap_err()
            .to_string();
        assert!(refusal.contains("`identity: required`"), "{refusal}");
    }

    #[test]
    fn check_warns_about_unbound_agents_unless_identity_is_required() {
        let rules = "access_control:\n  secrets:\n    a:\n      allowed_agents: [ops/x, ops/y, \"dev/*\"]\n    b:\n      allowed_agents: [ops/y]\n";
        let p = policy(&format!(
            "agents:\n  ops/x: {{ unix_users: [deploy] }}\n{rules}"
        ));
        let unbound: Vec<String> = p
            .lint(None)
            .iter()
            .filter(|w| w.kind() == "unbound-agent")
            .map(ToString::to_string)
            .collect();
        assert_eq!(unbound.len(), 2, "{unbound:#?}");
        assert!(unbound[0].starts_with("agent `ops/y`"), "{unbound:#?}");
        assert!(unbound[1].starts_with("`dev/*`") && unbound[1].contains("is a glob"));
        let strict = policy(&format!("identity: required\n{rules}"));
        assert!(
            strict
                .lint(None)
                .iter()
                .all(|w| w.kind() != "unbound-agent")
        );
    }

    #[test]
    fn diff_counts_more_callers_for_an_agent_as_widening() {
        let base = |head: &str| policy(&format!("{head}{RULES}"));
        let old = base("identity: required\nagents:\n  ops/x: { unix_users: [deploy] }\n");
        let same = base("identity: required\nagents:\n  ops/x: { unix_users: [deploy] }\n");
        assert!(crate::diff(&old, &same, None).identity.is_empty());
        assert!(!crate::diff(&old, &same, None).widens());
        for (head, want) in [
            (
                "identity: required\nagents:\n  ops/x: { unix_users: [deploy, eve] }\n",
                "agents.ops/x: unix_users + eve",
            ),
            (
                "identity: required\nagents:\n  ops/x: { unix_users: [deploy], unix_groups: [staff] }\n",
                "agents.ops/x: unix_groups + staff",
            ),
            (
                "agents:\n  ops/x: { unix_users: [deploy] }\n",
                "identity: required -> optional",
            ),
            (
                "identity: required\nagents:\n  ops/x: { unix_users: [deploy] }\n  ops/y: { unix_users: [ci] }\n",
                "agents.ops/y: binding added",
            ),
        ] {
            let new = base(head);
            let d = crate::diff(&old, &new, None);
            assert!(d.widens(), "{head}: {:?}", d.identity);
            assert!(
                d.identity.iter().any(|c| c.what == want && c.widens),
                "{head}: {:?}",
                d.identity
            );
        }
        // Fewer callers narrows.
        let narrower = base("identity: required\nagents:\n  ops/x: { unix_users: [\"1001\"] }\n");
        let d = crate::diff(&old, &narrower, None);
        assert!(
            d.identity
                .iter()
                .any(|c| c.what == "agents.ops/x: unix_users - deploy" && !c.widens)
        );
        assert!(
            d.identity
                .iter()
                .any(|c| c.what == "agents.ops/x: unix_users + 1001" && c.widens)
        );
        // Dropping a binding while unbound ids are open widens.
        let open = base("agents:\n  ops/x: { unix_users: [deploy] }\n");
        let dropped = base("");
        assert!(
            crate::diff(&open, &dropped, None)
                .identity
                .iter()
                .any(|c| c.what == "agents.ops/x: binding removed" && c.widens)
        );
    }

    #[test]
    fn root_is_not_special() {
        let p = policy(&format!(
            "agents:\n  ops/x: {{ unix_users: [deploy] }}\n{RULES}"
        ));
        let x: AgentId = "ops/x".parse().unwrap();
        assert!(
            p.check_identity(&x, &peer(0, "root", &[(0, Some("root"))]))
                .is_err()
        );
    }

    #[test]
    fn tokens_match_by_digest() {
        let digest = [7u8; 32];
        let p = policy(&format!(
            "agents:\n  ops/x: {{ tokens_sha256: [\"{}\"] }}\n{RULES}",
            hex_of(&digest)
        ));
        let x: AgentId = "ops/x".parse().unwrap();
        assert!(p.token_proves(&x, &digest));
        assert!(!p.token_proves(&x, &[8u8; 32]));
        assert!(!p.token_proves(&"ops/y".parse().unwrap(), &digest));
        // A token-only binding accepts no OS user.
        assert!(p.check_identity(&x, &peer(0, "root", &[])).is_err());
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn bad_bindings_are_errors_with_a_location() {
        for (text, want) in [
            ("agents:\n  ops/x: { unix_users: [\"-rf\"] }\n", "p.yaml:2:"),
            (
                "agents:\n  ops/x: { unix_users: [\"a b\"] }\n",
                "may not appear",
            ),
            (
                "agents:\n  ops/x: { unix_user: [deploy] }\n",
                "unknown key `unix_user`",
            ),
            ("agents:\n  ops/x: {}\n", "binds `ops/x` to nothing"),
            (
                "agents:\n  \"ops/*\": { unix_users: [deploy] }\n",
                "agent id",
            ),
            (
                "agents:\n  ops/x: { tokens_sha256: [abc] }\n",
                "64 lowercase hex",
            ),
            ("identity: strict\n", "`required` or `optional`"),
        ] {
            let err = Policy::from_sources(&[("p.yaml", format!("{text}{RULES}"))])
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn files_merge_bindings_and_report_conflicts() {
        let a =
            format!("identity: required\nagents:\n  ops/x: {{ unix_users: [deploy] }}\n{RULES}");
        let b = "agents:\n  ops/y: { unix_users: [ci] }\naccess_control:\n  secrets:\n    b:\n      allowed_agents: [ops/y]\n";
        let p = Policy::from_sources(&[("a.yaml", a.as_str()), ("b.yaml", b)]).unwrap();
        assert_eq!(p.identity_mode(), IdentityMode::Required);
        assert_eq!(p.bindings().count(), 2);
        let c = "agents:\n  ops/x: { unix_users: [ci] }\naccess_control:\n  secrets:\n    c:\n      allowed_agents: [ops/x]\n";
        let err = Policy::from_sources(&[("a.yaml", a.as_str()), ("c.yaml", c)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.yaml:2:3") && err.contains("a.yaml:3:3"),
            "{err}"
        );
        let d = "identity: optional\naccess_control:\n  secrets:\n    d:\n      allowed_agents: [ops/x]\n";
        let err = Policy::from_sources(&[("a.yaml", a.as_str()), ("d.yaml", d)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`identity`") && err.contains("a.yaml:1:"),
            "{err}"
        );
    }
}
