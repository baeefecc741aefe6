//! Evaluation: deny by default, a deny always wins, and an allow is a proof
//! value only the evaluator can create.

use std::fmt;

use globset::Candidate;

use crate::agent::AgentId;
use crate::path::{PatternSegment, SecretPath};
use crate::policy::Policy;
use crate::rule::{AccessLevel, Operation, Rule, RuleRef, join};
use crate::skill::SkillRef;
use crate::ssh::SignTarget;

/// The outcome of [`Policy::evaluate`].
#[must_use = "a decision that is not checked grants nothing"]
#[derive(Debug)]
pub enum Decision<'p> {
    /// The policy grants the access; the token is what the secret store requires.
    Allow(Authorized<'p>),
    /// The policy does not grant it; the denial says why and how to fix it.
    Deny(Denial<'p>),
}

impl<'p> Decision<'p> {
    /// Whether the access is granted.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow(_))
    }

    /// `Ok(token)` or `Err(denial)`, for use with `?`.
    ///
    /// # Errors
    /// The [`Denial`] when access is not granted.
    pub fn into_result(self) -> Result<Authorized<'p>, Denial<'p>> {
        match self {
            Self::Allow(a) => Ok(a),
            Self::Deny(d) => Err(d),
        }
    }
}

/// Proof that the policy grants `agent`, running `skill`, access to `path`.
///
/// Only [`Policy::evaluate`] creates it: the fields are private and there is
/// no constructor, `Clone`, `Default` or deserialization. The secret store
/// requires one to release a value. It borrows the policy, agent, skill and
/// path it was evaluated for, so it cannot outlive them.
///
/// ```compile_fail
/// fn copy<'p>(token: &agentsec_policy::Authorized<'p>) -> agentsec_policy::Authorized<'p> {
///     token.clone() // not Clone: a token is used once, where it was granted
/// }
/// ```
/// ```compile_fail
/// fn forge() -> agentsec_policy::Authorized<'static> {
///     Default::default() // no Default, and the fields are private
/// }
/// ```
#[derive(Debug)]
pub struct Authorized<'p> {
    agent: &'p AgentId,
    skill: &'p SkillRef,
    path: &'p SecretPath,
    rule: RuleRef<'p>,
    policy: &'p Policy,
    operation: Operation<'p>,
}

impl<'p> Authorized<'p> {
    /// The agent granted access.
    pub fn agent(&self) -> &'p AgentId {
        self.agent
    }

    /// The skill the grant was evaluated for.
    pub fn skill(&self) -> &'p SkillRef {
        self.skill
    }

    /// The path granted.
    pub fn path(&self) -> &'p SecretPath {
        self.path
    }

    /// The most specific rule that grants it (recorded in the audit log).
    pub fn rule(&self) -> RuleRef<'p> {
        self.rule
    }

    /// The granting rule's access level (recorded in the audit log).
    pub fn access_level(&self) -> &'p AccessLevel {
        self.rule.access_level()
    }

    /// The operation the grant was evaluated for.
    pub fn operation(&self) -> Operation<'p> {
        self.operation
    }

    /// Whether the grant lets a store release the value: every operation
    /// but [`Operation::List`], which names paths only (and which every
    /// level permits, so a listing grant must never unlock a value).
    pub fn releases_value(&self) -> bool {
        !matches!(self.operation, Operation::List)
    }

    /// A rule that refuses this grant's operation at a position where sops'
    /// AAD would also fit the value served here: the scalar at `list` (when
    /// `list_as_scalar`) or any element `list.N`. A one-element list and a
    /// scalar share an AAD, and every element of a list shares it, so
    /// whoever can edit the file can move the value between these positions
    /// without breaking the MAC. The policy is evaluated at each position
    /// (index 0 and every index a rule names literally there) for the same
    /// agent, skill and operation; a deny there, or a level there that does
    /// not permit the operation (`post`, `sign`), then holds here too.
    pub fn restricted_for_aad(
        &self,
        list: &SecretPath,
        list_as_scalar: bool,
    ) -> Option<RuleRef<'p>> {
        let depth = list.len();
        let mut indices: Vec<&str> = vec!["0"];
        for rule in &self.policy.rules {
            if let Some(PatternSegment::Literal(last)) = rule.pattern.segments().get(depth)
                && rule.pattern.len() > depth
                && last.bytes().all(|b| b.is_ascii_digit())
                && !indices.contains(&last.as_ref())
            {
                indices.push(last);
            }
        }
        let mut positions: Vec<SecretPath> = indices
            .iter()
            .filter_map(|index| list.child(index).ok())
            .collect();
        if list_as_scalar {
            positions.push(list.clone());
        }
        positions.iter().find_map(|position| {
            let refused =
                match self
                    .policy
                    .evaluate(self.agent, self.skill, position, self.operation)
                {
                    Decision::Deny(denial) => match denial.reason() {
                        DenialReason::DeniedBy(rule) | DenialReason::LevelForbids(rule) => {
                            Some(rule.index())
                        }
                        _ => None,
                    },
                    Decision::Allow(_) => None,
                };
            refused
                .and_then(|i| self.policy.rules.iter().find(|r| r.order == i))
                .map(RuleRef::new)
        })
    }

    /// A `denied_agents` rule matching this agent that covers some tree
    /// position sharing the sops AAD of the value granted, if any.
    ///
    /// sops binds an encrypted value only to the mapping keys above it joined
    /// by `:` (its AAD): list levels add nothing, and a key may contain `:`.
    /// Whoever can edit the file can move a value between positions with the
    /// same AAD without breaking the MAC: `"prod:password"` and
    /// `prod.password`; `solo` and `solo.0` (a one-element list and a
    /// scalar); `team.prod` and `team.1.prod`. A store serving an encrypted
    /// value passes its AAD `keys` (the mapping keys on the granted path); a
    /// deny on any position with that AAD then holds for the value, as a deny
    /// always wins. That includes every element of a list: the elements
    /// share the list's AAD and the MAC pins only the order of all values,
    /// not the nesting, so `keys: [[a, v]]` can be flattened into
    /// `keys: [a, v]`, and a deny on `keys.0` also denies `keys.1`.
    pub fn denied_for_aad(&self, keys: &[&str]) -> Option<RuleRef<'p>> {
        let candidate = Candidate::from_bytes(self.agent.as_str().as_bytes());
        self.policy
            .rules
            .iter()
            .filter(|rule| rule.denied.is_match(&candidate))
            .find(|rule| covers_aad(rule.pattern.segments(), keys))
            .map(RuleRef::new)
    }
}

/// Whether `pattern` covers some position whose AAD is made of `keys`: a
/// segment matches one key, a key containing `:` matches as many keys, and
/// `*` or a list index may also match a list level, which adds no key. Any
/// list index matches at the end of `keys` too, whatever the value's own
/// index: every element of a list shares the list's AAD, and the MAC pins
/// only the order of values, so whoever edits the file can flatten
/// `keys: [[a, v]]` into `keys: [a, v]` and move `v` from `keys.0.1` to
/// `keys.1`. A deny on one element therefore covers every element of that
/// list (deny wins; never the other way round).
fn covers_aad(pattern: &[PatternSegment], keys: &[&str]) -> bool {
    // reach[j]: the pattern so far can match the first j keys.
    let mut reach = vec![false; keys.len() + 1];
    reach[0] = true;
    for seg in pattern {
        let mut next = vec![false; keys.len() + 1];
        for j in (0..=keys.len()).filter(|&j| reach[j]) {
            match seg {
                PatternSegment::Any => {
                    if let Some(rest) = next.get_mut(j..) {
                        rest.fill(true);
                    }
                }
                PatternSegment::Literal(l) => {
                    if crate::path::list_index(l).is_some() {
                        next[j] = true;
                    }
                    let parts: Vec<&str> = l.split(':').collect();
                    if keys.get(j..j + parts.len()) == Some(&parts[..]) {
                        next[j + parts.len()] = true;
                    }
                }
            }
        }
        reach = next;
        if !reach.contains(&true) {
            return false;
        }
    }
    true
}

/// Why access was denied.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum DenialReason<'p> {
    /// A covering rule's `denied_agents` matches the agent. A deny always
    /// wins, whatever other rules allow.
    DeniedBy(RuleRef<'p>),
    /// A covering rule allows the agent, but only for other skills (`skills:`).
    SkillNotListed(RuleRef<'p>),
    /// No covering rule allows the agent. `nearest` is the most specific
    /// covering rule (preferring rules with `allowed_agents`), `None` when no
    /// rule covers the path at all.
    NoGrant {
        /// The rule to extend to grant the access, if any covers the path.
        nearest: Option<RuleRef<'p>>,
    },
    /// The most specific granting rule's `access_level` does not permit the
    /// operation (e.g. `post` and a raw read: the secret may only be used by
    /// the host).
    LevelForbids(RuleRef<'p>),
    /// The most specific granting rule permits a read but not revealing the value to
    /// the agent's model (`reveal_to_agent` is not set).
    NotRevealed(RuleRef<'p>),
    /// The granting rule says `inject_only: true`: the host may use the value in a
    /// request, the skill may never hold it.
    InjectOnly(RuleRef<'p>),
    /// The most specific granting rule restricts the key to server host keys
    /// (`ssh_hosts`), and the signature is for an unbound connection or another host.
    HostNotListed(RuleRef<'p>),
}

/// A refusal. Its `Display` says which rule decided and how to change the
/// policy to grant the access.
#[derive(Debug)]
pub struct Denial<'p> {
    agent: &'p AgentId,
    skill: &'p SkillRef,
    path: &'p SecretPath,
    reason: DenialReason<'p>,
    /// What was asked, as a verb: `read`, `list`, `use`, `sign with`.
    verb: &'static str,
    /// For [`DenialReason::LevelForbids`]: whether a read was asked.
    read: bool,
    /// For [`DenialReason::HostNotListed`]: the connection the signature was for.
    target: Option<SignTarget<'p>>,
}

impl<'p> Denial<'p> {
    /// The agent refused.
    pub fn agent(&self) -> &'p AgentId {
        self.agent
    }

    /// The skill it was running.
    pub fn skill(&self) -> &'p SkillRef {
        self.skill
    }

    /// The path refused.
    pub fn path(&self) -> &'p SecretPath {
        self.path
    }

    /// Why.
    pub fn reason(&self) -> DenialReason<'p> {
        self.reason
    }

    /// The rule that decided, for the audit record: the denying rule, or the
    /// rule whose `skills` excluded the skill; `None` when nothing granted it.
    pub fn rule(&self) -> Option<RuleRef<'p>> {
        match self.reason {
            DenialReason::DeniedBy(r)
            | DenialReason::SkillNotListed(r)
            | DenialReason::LevelForbids(r)
            | DenialReason::NotRevealed(r)
            | DenialReason::InjectOnly(r)
            | DenialReason::HostNotListed(r) => Some(r),
            DenialReason::NoGrant { .. } => None,
        }
    }
}

impl fmt::Display for Denial<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "agent `{}` may not {} `{}`: ",
            self.agent, self.verb, self.path
        )?;
        match self.reason {
            DenialReason::LevelForbids(r) if self.read => write!(
                f,
                "the secret may only be used by the host: rule {r} grants access_level `{level}`, which permits {what}; let the host use it for the skill, or give the rule access_level readonly if the skill must hold the value",
                level = r.access_level(),
                what = r.access_level().describe(),
            ),
            DenialReason::LevelForbids(r) => write!(
                f,
                "rule {r} grants access_level `{level}`, which permits {what}; change the rule's access_level to one that permits this",
                level = r.access_level(),
                what = r.access_level().describe(),
            ),
            DenialReason::InjectOnly(r) => write!(
                f,
                "the secret may only be injected by the host into the requests its `inject:` entries name: rule {r} says `inject_only: true`; send the request with an `agentsec-inject` header naming the path instead"
            ),
            DenialReason::NotRevealed(r) => write!(
                f,
                "secrets_get would put the value into the model's context, and rule {r} does not allow that; skills may read it, or add `reveal_to_agent: true` to the rule to allow it"
            ),
            DenialReason::HostNotListed(r) => {
                write!(
                    f,
                    "rule {r} lets the key sign only for the server host keys "
                )?;
                join(f, r.ssh_hosts())?;
                match self.target {
                    Some(SignTarget::Host(host)) => write!(
                        f,
                        ", and this connection is bound to host key {host}; add it to the rule's ssh_hosts if the key may log in there"
                    ),
                    Some(SignTarget::Forwarded(host)) => write!(
                        f,
                        ", and this request came through an agent forwarded to host key {host}; a key restricted to hosts is never used through a forwarded agent (log in from this machine, or remove ssh_hosts)"
                    ),
                    _ => f.write_str(
                        ", and this request is not bound to a host (ssh 8.9 or later binds each connection with session-bind@openssh.com; `ssh-keygen -Y sign` and older clients do not); use a client that binds, or remove ssh_hosts",
                    ),
                }
            }
            DenialReason::DeniedBy(r) => {
                write!(
                    f,
                    "it is denied by `denied_agents` of rule {r}; a deny always wins"
                )
            }
            DenialReason::SkillNotListed(r) => {
                write!(f, "rule {r} grants it only to skills ")?;
                join(f, r.skills())?;
                if self.skill.is_named() {
                    write!(
                        f,
                        ", not to skill `{}` ({}); add the skill's name or digest to its skills to grant it",
                        self.skill.name(),
                        self.skill.digest()
                    )
                } else {
                    write!(
                        f,
                        ", and component `{}` was not loaded from a skills directory (--skills DIR or `skills_dir:` in agentsec.yaml), so its name does not count; pin it by adding `{}` to the rule's skills (`agentsec policy pin`), or run it from the skills directory",
                        self.skill.name(),
                        self.skill.digest()
                    )
                }
            }
            DenialReason::NoGrant { nearest: Some(r) } if r.allowed_agents().is_empty() => write!(
                f,
                "rule {r} allows no agents (it only has denied_agents); give it an allowed_agents list with the agent to grant it"
            ),
            DenialReason::NoGrant { nearest: Some(r) } => {
                write!(f, "rule {r} allows only ")?;
                join(f, r.allowed_agents())?;
                f.write_str("; add the agent to its allowed_agents to grant it")
            }
            DenialReason::NoGrant { nearest: None } => {
                f.write_str("no rule covers this path; add a rule under access_control.secrets")
            }
        }
    }
}

impl std::error::Error for Denial<'_> {}

fn keep_most_specific<'a>(slot: &mut Option<&'a Rule>, rule: &'a Rule) {
    if slot.is_none_or(|cur| rule.more_specific_than(cur)) {
        *slot = Some(rule);
    }
}

impl Policy {
    /// Decides whether `agent`, running `skill`, may do `operation` with
    /// `path`.
    ///
    /// Deny by default. The covering rules are those whose pattern matches
    /// `path` or an ancestor of it, segment by segment (`*` matches any one
    /// segment). If any covering rule's `denied_agents` matches the agent,
    /// access is denied: a deny always wins, whatever its specificity. Else,
    /// if a covering rule's `allowed_agents` matches and its `skills` is empty
    /// or names this skill (by name or digest), access is allowed and
    /// attributed to the most specific such rule (most literal segments, then
    /// most segments, then first in load order). Otherwise it is denied.
    /// An allowed access is then denied if that rule's
    /// [`AccessLevel`] does not permit `operation` (a less specific rule
    /// with another level never applies instead: the most specific rule
    /// decides, as for everything else).
    ///
    /// Never consults the secret store: an unauthorized agent is denied
    /// whether or not the path exists. Does not allocate.
    pub fn evaluate<'p>(
        &'p self,
        agent: &'p AgentId,
        skill: &'p SkillRef,
        path: &'p SecretPath,
        operation: Operation<'p>,
    ) -> Decision<'p> {
        let Covering {
            denied,
            allowed,
            wrong_skill,
            nearest,
            nearest_deny_only,
        } = self.covering(agent, path, &|rule| rule.applies_to_skill(skill));
        let reason = match (denied, allowed, wrong_skill) {
            (Some(rule), _, _) => DenialReason::DeniedBy(RuleRef::new(rule)),
            (None, Some(rule), _) if !rule.access_level.permits(&operation) => {
                DenialReason::LevelForbids(RuleRef::new(rule))
            }
            (None, Some(rule), _)
                if rule.inject_only && matches!(operation, Operation::Read | Operation::Reveal) =>
            {
                DenialReason::InjectOnly(RuleRef::new(rule))
            }
            (None, Some(rule), _) if operation == Operation::Reveal && !rule.reveal_to_agent => {
                DenialReason::NotRevealed(RuleRef::new(rule))
            }
            (None, Some(rule), _)
                if matches!(operation, Operation::Sign { target, .. }
                    if !RuleRef::new(rule).admits(target)) =>
            {
                DenialReason::HostNotListed(RuleRef::new(rule))
            }
            (None, Some(rule), _) => {
                return Decision::Allow(Authorized {
                    agent,
                    skill,
                    path,
                    rule: RuleRef::new(rule),
                    policy: self,
                    operation,
                });
            }
            (None, None, Some(rule)) => DenialReason::SkillNotListed(RuleRef::new(rule)),
            (None, None, None) => DenialReason::NoGrant {
                nearest: nearest.or(nearest_deny_only).map(RuleRef::new),
            },
        };
        Decision::Deny(Denial {
            agent,
            skill,
            path,
            reason,
            verb: match operation {
                Operation::Read => "read",
                Operation::Reveal => "reveal",
                // A listing refusal is never shown (names are filtered); a declared need is
                // checked as one, and is reported as before the operations existed.
                Operation::List => "read",
                Operation::Inject { .. } => "use",
                Operation::Sign { .. } => "sign with",
            },
            read: operation == Operation::Read,
            target: match operation {
                Operation::Sign { target, .. } => Some(target),
                _ => None,
            },
        })
    }
}

/// The most specific covering rule of each kind, for one agent and path.
#[derive(Debug, Default)]
pub(crate) struct Covering<'p> {
    /// A covering rule whose `denied_agents` match.
    pub(crate) denied: Option<&'p Rule>,
    /// A covering rule whose `allowed_agents` match and that applies to the skill.
    pub(crate) allowed: Option<&'p Rule>,
    /// A covering rule whose `allowed_agents` match, for other skills only.
    pub(crate) wrong_skill: Option<&'p Rule>,
    /// A covering rule with `allowed_agents` that do not match.
    pub(crate) nearest: Option<&'p Rule>,
    /// A covering rule with only `denied_agents`, none matching.
    pub(crate) nearest_deny_only: Option<&'p Rule>,
}

impl Policy {
    /// Classifies the rules covering `path` for `agent`; `applies` says
    /// whether a rule's `skills` admit the skill in question. The single
    /// place evaluation, `explain` and the needs check get their facts from.
    pub(crate) fn covering<'p>(
        &'p self,
        agent: &AgentId,
        path: &SecretPath,
        applies: &dyn Fn(&Rule) -> bool,
    ) -> Covering<'p> {
        let candidate = Candidate::from_bytes(agent.as_str().as_bytes());
        let mut c = Covering::default();
        self.index.visit(path.raw_segments(), &mut |i| {
            let Some(rule) = self.rules.get(i) else {
                return;
            };
            if rule.denied.is_match(&candidate) {
                keep_most_specific(&mut c.denied, rule);
            } else if rule.allowed.is_match(&candidate) {
                if applies(rule) {
                    keep_most_specific(&mut c.allowed, rule);
                } else {
                    keep_most_specific(&mut c.wrong_skill, rule);
                }
            } else if rule.allowed_is_empty() {
                keep_most_specific(&mut c.nearest_deny_only, rule);
            } else {
                keep_most_specific(&mut c.nearest, rule);
            }
        });
        c
    }
}

#[cfg(test)]
mod tests {
    use super::covers_aad;
    use crate::path::PathPattern;

    fn covers(pattern: &str, keys: &[&str]) -> bool {
        let p = PathPattern::parse(pattern).expect("pattern");
        covers_aad(p.segments(), keys)
    }

    #[test]
    fn a_deny_covers_every_position_with_the_same_aad() {
        // `"prod:password"` and `prod.password`, both ways.
        assert!(covers(r#"["prod:password"]"#, &["prod", "password"]));
        // `team.prod` and `team.1.prod`.
        assert!(covers("team.1.prod", &["team", "prod", "token"]));
        assert!(covers("team.*.prod", &["team", "prod", "token"]));
        // `solo.0` and the scalar `solo`; and every element of the same list,
        // which shares its AAD (`keys: [[a, v]]` flattened to `keys: [a, v]`
        // moves `v` from `keys.0.1` to `keys.1`).
        assert!(covers("solo.0", &["solo"]));
        assert!(covers("keys.0", &["keys"]));
        assert!(covers("keys.0.1", &["keys"]));
        assert!(covers("keys.*", &["keys"]));
        // `a: [{b: [w]}, {b: [v]}]` flattened to `a: {b: [w, v]}`.
        assert!(covers("a.1.b.0", &["a", "b"]));
        // Unrelated paths stay unrelated.
        assert!(!covers("team.dev", &["team", "prod", "token"]));
        assert!(!covers("prod.password.x", &["prod", "password"]));
        assert!(!covers("a", &["b"]));
    }
}
