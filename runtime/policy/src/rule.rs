//! One access rule, its access level, and the read-only view of it.

use std::fmt;

use globset::{Candidate, GlobSet, GlobSetBuilder};

use crate::agent::AgentGlob;
use crate::error::{AccessLevelError, GlobError, Location};
use crate::path::PathPattern;
use crate::skill::{SkillRef, SkillSelector};
use crate::ssh::{SignTarget, SshHostKey};

/// Longest accepted `access_level` identifier, in bytes.
///
/// Every known level is a few bytes; the bound keeps an error message that
/// quotes an unknown level short.
pub const MAX_ACCESS_LEVEL_LEN: usize = 32;

/// What a grant lets the skill do with the secret: the [`Operation`]s it
/// permits. Recorded in every audit record; enforced by
/// [`Policy::evaluate`](crate::Policy::evaluate), which denies an operation
/// the most specific granting rule's level does not permit.
///
/// | level | permits |
/// |---|---|
/// | `readonly` (the default) | [`Operation::Read`], [`Operation::List`], [`Operation::Inject`] with `GET` or `HEAD` |
/// | `read-write` | `Read`, `List`, `Inject` with any method |
/// | `post` | `List`, `Inject` with `POST` only: never a `Read` of the raw value |
/// | `sign` | `List`, [`Operation::Sign`]: never a `Read` of the key |
///
/// Any other level is an error when the policy is loaded
/// ([`AccessLevelError::Unknown`], which lists these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum AccessLevel {
    /// `readonly`: the value may be read, or used by the host for
    /// requests that change nothing (`GET`, `HEAD`).
    #[default]
    ReadOnly,
    /// `read-write`: the value may be read, or used by the host for a
    /// request with any method.
    ReadWrite,
    /// `post`: the value may only be used by the host, for `POST` requests
    /// (a webhook); the skill never holds it.
    Post,
    /// `sign`: the key may only be used by the host, to sign; the skill
    /// never holds it.
    Sign,
}

impl AccessLevel {
    /// Every level, in the order the docs list them.
    pub const ALL: [AccessLevel; 4] = [
        AccessLevel::ReadOnly,
        AccessLevel::ReadWrite,
        AccessLevel::Post,
        AccessLevel::Sign,
    ];

    /// Parses a level as written in a policy.
    ///
    /// # Errors
    /// Empty, too long, or not one of the known levels (the error lists them).
    pub fn parse(text: &str) -> Result<Self, AccessLevelError> {
        if let Some(known) = Self::ALL.into_iter().find(|l| l.as_str() == text) {
            return Ok(known);
        }
        if text.is_empty() {
            return Err(AccessLevelError::Empty);
        }
        if text.len() > MAX_ACCESS_LEVEL_LEN {
            return Err(AccessLevelError::TooLong {
                len: text.len(),
                max: MAX_ACCESS_LEVEL_LEN,
            });
        }
        Err(AccessLevelError::Unknown {
            level: text.to_owned(),
        })
    }

    /// The level as written in a policy and in audit records.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccessLevel::ReadOnly => "readonly",
            AccessLevel::ReadWrite => "read-write",
            AccessLevel::Post => "post",
            AccessLevel::Sign => "sign",
        }
    }

    /// Every level, comma-separated, for messages.
    pub fn known_list() -> &'static str {
        "readonly, read-write, post, sign"
    }

    /// Whether this level permits `operation`.
    pub fn permits(&self, operation: &Operation<'_>) -> bool {
        let method = match operation {
            Operation::List => return true,
            Operation::Read | Operation::Reveal => {
                return matches!(self, AccessLevel::ReadOnly | AccessLevel::ReadWrite);
            }
            Operation::Sign { .. } => return *self == AccessLevel::Sign,
            Operation::Inject { method, .. } => *method,
        };
        match self {
            AccessLevel::ReadOnly => matches!(method, "GET" | "HEAD"),
            AccessLevel::ReadWrite => true,
            AccessLevel::Post => method == "POST",
            AccessLevel::Sign => false,
        }
    }

    /// The methods of the requests the host may inject a value of this level into, as
    /// [`AccessLevel::permits`] decides `Operation::Inject`: `None` for any method
    /// (`read-write`), none at all for `sign`.
    pub fn inject_methods(&self) -> Option<&'static [&'static str]> {
        match self {
            AccessLevel::ReadOnly => Some(&["GET", "HEAD"]),
            AccessLevel::ReadWrite => None,
            AccessLevel::Post => Some(&["POST"]),
            AccessLevel::Sign => Some(&[]),
        }
    }

    /// Whether everything this level permits, `other` permits too (so a
    /// change from `other` to `self` widens nothing): `readonly` and `post`
    /// are within `read-write`; every level is within itself.
    pub fn is_within(&self, other: &AccessLevel) -> bool {
        self == other
            || *other == AccessLevel::ReadWrite
                && matches!(self, AccessLevel::ReadOnly | AccessLevel::Post)
    }

    /// What the level permits, in words (for denials and `policy explain`).
    pub fn describe(&self) -> &'static str {
        match self {
            AccessLevel::ReadOnly => {
                "reading the value, and host-made GET and HEAD requests with it"
            }
            AccessLevel::ReadWrite => "reading the value, and host-made requests with any method",
            AccessLevel::Post => {
                "only host-made POST requests with it (injection); the skill never reads it"
            }
            AccessLevel::Sign => "only host-made signatures with it; the skill never reads it",
        }
    }
}

impl fmt::Display for AccessLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is asked of a secret: policy evaluation decides an operation, not a
/// path alone, and the granting rule's [`AccessLevel`] must permit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation<'a> {
    /// Hand the value to the skill (`get-secret`).
    Read,
    /// Put the value into the model's context (MCP `secrets_get`): a read that the
    /// granting rule must also allow with `reveal_to_agent: true`.
    Reveal,
    /// Name the path in a listing (`list-secrets`); names only.
    List,
    /// The host puts the value into an outgoing request on the skill's
    /// behalf; the skill never holds it.
    Inject {
        /// The request's HTTP method, as sent (methods are case-sensitive:
        /// only `GET`, `HEAD` and `POST` are recognised as such).
        method: &'a str,
        /// Where the request goes, `scheme://host:port`.
        destination: &'a str,
    },
    /// The host signs with the key on the skill's behalf.
    Sign {
        /// The key's public fingerprint (for the record; never the key).
        key: &'a str,
        /// The connection the signature is for: what a rule's `ssh_hosts` checks.
        target: SignTarget<'a>,
    },
}

impl Operation<'_> {
    /// The operation as audit records name it: `read`, `list`, `inject`, `sign`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Reveal => "reveal",
            Operation::List => "list",
            Operation::Inject { .. } => "inject",
            Operation::Sign { .. } => "sign",
        }
    }
}

impl fmt::Display for Operation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Read => f.write_str("read"),
            Operation::Reveal => f.write_str("reveal"),
            Operation::List => f.write_str("list"),
            Operation::Inject {
                method,
                destination,
            } => write!(f, "use in a {method} request to {destination}"),
            Operation::Sign { .. } => f.write_str("sign with"),
        }
    }
}

/// A list of agent globs compiled once into one matcher.
#[derive(Debug)]
pub(crate) struct GlobList {
    pub(crate) globs: Vec<AgentGlob>,
    set: GlobSet,
}

impl GlobList {
    pub(crate) fn new(globs: Vec<AgentGlob>) -> Result<Self, GlobError> {
        let mut b = GlobSetBuilder::new();
        for g in &globs {
            b.add(g.glob().clone());
        }
        let set = b
            .build()
            .map_err(|e| GlobError::Globset(e.kind().to_string()))?;
        Ok(Self { globs, set })
    }

    pub(crate) fn is_match(&self, agent: &Candidate<'_>) -> bool {
        !self.globs.is_empty() && self.set.is_match_candidate(agent)
    }
}

/// A parsed rule, before compilation.
#[derive(Debug)]
pub(crate) struct RuleDef {
    pub(crate) pattern: PathPattern,
    pub(crate) allowed: Vec<AgentGlob>,
    pub(crate) denied: Vec<AgentGlob>,
    pub(crate) access_level: AccessLevel,
    pub(crate) audit: bool,
    pub(crate) skills: Vec<SkillSelector>,
    pub(crate) reveal_to_agent: bool,
    pub(crate) inject_only: bool,
    pub(crate) inject: Vec<InjectEntry>,
    pub(crate) ssh_hosts: Vec<SshHostKey>,
    pub(crate) confirm: bool,
    pub(crate) lifetime: Option<std::time::Duration>,
    pub(crate) at: Location,
}

/// How the host uses a secret in a request (`inject:` entries of a rule).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InjectEntry {
    /// `url` + `header: "Name: prefix{secret}suffix"`: for requests the url matches, the
    /// host sets header `name` to `prefix`, the value, `suffix`.
    Header {
        /// Which requests.
        url: crate::egress::UrlPattern,
        /// The header name, lowercase.
        name: String,
        /// Text before the value.
        prefix: String,
        /// Text after the value.
        suffix: String,
    },
    /// `as: url`: the secret is the request's whole URL (a webhook).
    AsUrl,
}

impl InjectEntry {
    /// The entry as written in a policy (`header` without the value).
    pub fn describe(&self) -> String {
        match self {
            InjectEntry::Header { url, name, .. } => format!("{name} header for {url}"),
            InjectEntry::AsUrl => "as the request's url".to_owned(),
        }
    }
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) pattern: PathPattern,
    pub(crate) allowed: GlobList,
    pub(crate) denied: GlobList,
    pub(crate) access_level: AccessLevel,
    pub(crate) audit: bool,
    pub(crate) skills: Vec<SkillSelector>,
    /// `reveal_to_agent`: the value may be put into the model's context (`secrets_get`).
    pub(crate) reveal_to_agent: bool,
    /// `inject_only`: Read and Reveal are refused; only the host may use the value.
    pub(crate) inject_only: bool,
    /// `inject:` entries.
    pub(crate) inject: Vec<InjectEntry>,
    /// `ssh_hosts`: the server host keys a `sign` key may sign for (empty: any).
    pub(crate) ssh_hosts: Vec<SshHostKey>,
    /// `confirm`: each signature with the key waits for the user's yes (`SSH_ASKPASS`).
    pub(crate) confirm: bool,
    /// `lifetime`: how long an SSH agent serves the key once it loaded it.
    pub(crate) lifetime: Option<std::time::Duration>,
    pub(crate) at: Location,
    /// Position in load order (files in the order given, rules in file order).
    pub(crate) order: usize,
    /// Literal segment count and total segment count.
    pub(crate) literals: usize,
}

impl Rule {
    pub(crate) fn compile(def: RuleDef, order: usize) -> Result<Self, GlobError> {
        Ok(Self {
            literals: def.pattern.literal_count(),
            pattern: def.pattern,
            allowed: GlobList::new(def.allowed)?,
            denied: GlobList::new(def.denied)?,
            access_level: def.access_level,
            audit: def.audit,
            skills: def.skills,
            reveal_to_agent: def.reveal_to_agent,
            inject_only: def.inject_only,
            inject: def.inject,
            ssh_hosts: def.ssh_hosts,
            confirm: def.confirm,
            lifetime: def.lifetime,
            at: def.at,
            order,
        })
    }

    pub(crate) fn allowed_is_empty(&self) -> bool {
        self.allowed.globs.is_empty()
    }

    pub(crate) fn applies_to_skill(&self, skill: &SkillRef) -> bool {
        self.skills.is_empty() || self.skills.iter().any(|s| s.matches(skill))
    }

    /// Whether `self` is more specific than `other`: more literal segments,
    /// then more segments, then earlier in load order.
    pub(crate) fn more_specific_than(&self, other: &Rule) -> bool {
        (
            self.literals,
            self.pattern.len(),
            std::cmp::Reverse(self.order),
        ) > (
            other.literals,
            other.pattern.len(),
            std::cmp::Reverse(other.order),
        )
    }
}

/// A read-only view of one rule: for denials, audit records and the
/// `policy explain / who-can / diff / check` commands.
#[derive(Clone, Copy)]
pub struct RuleRef<'p> {
    rule: &'p Rule,
}

impl<'p> RuleRef<'p> {
    pub(crate) fn new(rule: &'p Rule) -> Self {
        Self { rule }
    }

    /// The rule key.
    pub fn pattern(&self) -> &'p PathPattern {
        &self.rule.pattern
    }

    /// Where the rule key is written.
    pub fn location(&self) -> &'p Location {
        &self.rule.at
    }

    /// The policy file the rule comes from.
    pub fn origin(&self) -> &'p str {
        self.rule.at.origin()
    }

    /// The line of the rule key (1-based).
    pub fn line(&self) -> usize {
        self.rule.at.line()
    }

    /// `allowed_agents`, as written.
    pub fn allowed_agents(&self) -> &'p [AgentGlob] {
        &self.rule.allowed.globs
    }

    /// `denied_agents`, as written.
    pub fn denied_agents(&self) -> &'p [AgentGlob] {
        &self.rule.denied.globs
    }

    /// `access_level` (default `readonly`).
    pub fn access_level(&self) -> &'p AccessLevel {
        &self.rule.access_level
    }

    /// `audit` as written (default true). agentsec audits every access
    /// whatever this says; `policy check` warns when it is false.
    pub fn audit(&self) -> bool {
        self.rule.audit
    }

    /// `skills`; empty means the rule applies to every skill.
    pub fn skills(&self) -> &'p [SkillSelector] {
        &self.rule.skills
    }

    /// `reveal_to_agent` (default false): whether MCP's `secrets_get` may put the value
    /// into the model's context.
    pub fn reveal_to_agent(&self) -> bool {
        self.rule.reveal_to_agent
    }

    /// `inject_only` (default false): `get-secret` is refused; only the host uses it.
    pub fn inject_only(&self) -> bool {
        self.rule.inject_only
    }

    /// `inject:` entries: how the host may use the value in requests.
    pub fn inject(&self) -> &'p [InjectEntry] {
        &self.rule.inject
    }

    /// `ssh_hosts` (only on `sign` rules): the server host keys the key may sign SSH
    /// logins for; empty means any host, and unbound signatures too.
    pub fn ssh_hosts(&self) -> &'p [SshHostKey] {
        &self.rule.ssh_hosts
    }

    /// `confirm` (only on `sign` rules, default false): every signature with the key
    /// waits for the user's confirmation (an SSH agent asks through `SSH_ASKPASS`).
    pub fn confirm(&self) -> bool {
        self.rule.confirm
    }

    /// `lifetime` (only on `sign` rules): how long an SSH agent serves the key from the
    /// moment it first loaded it (`ssh-add -t`); `None`: as long as the agent runs.
    pub fn lifetime(&self) -> Option<std::time::Duration> {
        self.rule.lifetime
    }

    /// Whether `ssh_hosts` lets the key sign for `target`.
    pub fn admits(&self, target: SignTarget<'_>) -> bool {
        let hosts = &self.rule.ssh_hosts;
        match target {
            SignTarget::Load => true,
            _ if hosts.is_empty() => true,
            SignTarget::Host(h) => hosts.iter().any(|k| k.as_str() == h),
            SignTarget::Unbound | SignTarget::Forwarded(_) => false,
        }
    }

    /// Position of the rule in load order (0-based).
    pub fn index(&self) -> usize {
        self.rule.order
    }
}

impl fmt::Display for RuleRef<'_> {
    /// `` `pattern` (origin:line) ``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` ({}:{})",
            self.rule.pattern,
            self.rule.at.origin(),
            self.rule.at.line()
        )
    }
}

impl fmt::Debug for RuleRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleRef")
            .field("pattern", &self.rule.pattern.to_string())
            .field("at", &self.rule.at.to_string())
            .finish()
    }
}

/// Writes globs or skills as `a, b, c`.
pub(crate) fn join<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_levels() {
        assert_eq!(AccessLevel::parse("readonly"), Ok(AccessLevel::ReadOnly));
        assert_eq!(AccessLevel::parse("post"), Ok(AccessLevel::Post));
        assert_eq!(AccessLevel::parse("sign"), Ok(AccessLevel::Sign));
        assert_eq!(
            AccessLevel::parse("rotate_2"),
            Err(AccessLevelError::Unknown {
                level: "rotate_2".to_owned()
            })
        );
        assert_eq!(AccessLevel::parse(""), Err(AccessLevelError::Empty));
        for level in AccessLevel::ALL {
            assert_eq!(AccessLevel::parse(level.as_str()), Ok(level));
        }
    }

    /// `inject_methods` says what `permits` decides for `Inject`.
    #[test]
    fn inject_methods_agree_with_permits() {
        for level in AccessLevel::ALL {
            for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "get"] {
                let op = Operation::Inject {
                    method,
                    destination: "https://example.com:443",
                };
                let listed = level.inject_methods().is_none_or(|m| m.contains(&method));
                assert_eq!(level.permits(&op), listed, "{level} {method}");
            }
        }
    }

    #[test]
    fn levels_permit_operations() {
        let inject = |method| Operation::Inject {
            method,
            destination: "https://example.com:443",
        };
        let sign = Operation::Sign {
            key: "SHA256:x",
            target: SignTarget::Unbound,
        };
        let table = [
            (
                AccessLevel::ReadOnly,
                [true, true, true, true, false, false, false],
            ),
            (
                AccessLevel::ReadWrite,
                [true, true, true, true, true, true, false],
            ),
            (
                AccessLevel::Post,
                [false, true, false, false, true, false, false],
            ),
            (
                AccessLevel::Sign,
                [false, true, false, false, false, false, true],
            ),
        ];
        for (level, expected) in table {
            let ops = [
                Operation::Read,
                Operation::List,
                inject("GET"),
                inject("HEAD"),
                inject("POST"),
                inject("DELETE"),
                sign,
            ];
            for (op, want) in ops.iter().zip(expected) {
                assert_eq!(level.permits(op), want, "{level} {op:?}");
            }
        }
        // Methods are case-sensitive: `get` is not `GET`.
        assert!(!AccessLevel::ReadOnly.permits(&inject("get")));
        assert!(!AccessLevel::Post.permits(&inject("post")));
    }

    #[test]
    fn within_is_the_subset_of_permitted_operations() {
        let all = AccessLevel::ALL;
        let ops = [
            Operation::Read,
            Operation::List,
            Operation::Inject {
                method: "GET",
                destination: "d",
            },
            Operation::Inject {
                method: "POST",
                destination: "d",
            },
            Operation::Inject {
                method: "PUT",
                destination: "d",
            },
            Operation::Sign {
                key: "k",
                target: SignTarget::Load,
            },
        ];
        for a in all {
            for b in all {
                let subset = ops.iter().all(|op| !a.permits(op) || b.permits(op));
                assert_eq!(a.is_within(&b), subset, "{a} within {b}");
            }
        }
    }
}
