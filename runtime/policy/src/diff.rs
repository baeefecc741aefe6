//! `policy diff`: grants added and removed between two policies, and whether
//! access widens.
//!
//! A policy is compared as a set of entries, one per agent glob of each rule:
//! `(rule key, glob, allow|deny, access level, skills)`. An entry present on
//! one side only is reported as added or removed. Access **widens** when:
//!
//! - an added allow is not contained in some allow of the old policy, where
//!   contained means: the old rule's key covers every path the new key
//!   covers, the old glob matches every agent the new glob matches, the old
//!   `skills` admit every skill the new ones admit, and the new access level
//!   permits no operation the old one does not ([`AccessLevel::is_within`]:
//!   `readonly` and `post` are within `read-write`). So a new agent, a
//!   broader glob (`ops/*` to `ops/**`), a broader key (`a.b` to `a` or
//!   `a.*`), a lifted or widened `skills:` restriction and a level that
//!   permits more (`post` to `readonly` grants a read) all widen;
//! - a removed deny is not contained in some deny of the new policy (same
//!   reasoning, keys and globs only): a deny dropped or narrowed;
//! - a use of a credential opens up: a new egress destination or method, a
//!   dropped `inject_only`, a new `inject:` entry, and on a `sign` rule a host
//!   added to `ssh_hosts` or the list dropped, `confirm` dropped, a longer or
//!   dropped `lifetime` (reported with the egress changes).
//!
//! If neither happens, no agent can do anything, for any skill, that the old
//! policy refused it: every new allow was already an allow at a level that
//! permitted at least as much, and every old deny still denies. The containment checks recognise common cases and answer "not
//! contained" when unsure, so a change is reported as widening rather than
//! missed.

use std::collections::HashSet;

use crate::agent::AgentGlob;
use crate::contain::{glob_contains, pattern_contains, patterns_overlap, skills_contain};
use crate::path::{PathPattern, SecretPath};
use crate::policy::Policy;
use crate::rule::{AccessLevel, Rule, RuleRef};
use crate::who_can::Effect;

/// Added to or removed from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Only in the new policy.
    Added,
    /// Only in the old policy.
    Removed,
}

impl Change {
    /// `added` or `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
        }
    }
}

/// Why an entry widens access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Widening {
    /// An allow the old policy has nothing comparable to.
    NewGrant,
    /// An old allow on the same key now matches more agents.
    BroaderAgents,
    /// The same glob is now allowed on a broader key.
    BroaderPath,
    /// The same grant now admits more skills (or any skill).
    BroaderSkills,
    /// The same grant at an access level that permits an operation the old
    /// one did not.
    AccessLevel,
    /// A deny removed or narrowed: agents it refused may now be allowed.
    DenyRemoved,
}

impl Widening {
    /// A short explanation.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewGrant => "new grant",
            Self::BroaderAgents => "broader agent pattern",
            Self::BroaderPath => "broader path",
            Self::BroaderSkills => "skills restriction lifted or widened",
            Self::AccessLevel => "access level changed",
            Self::DenyRemoved => "deny removed",
        }
    }
}

/// One added or removed entry.
#[derive(Debug, Clone)]
pub struct DiffEntry<'a> {
    /// Added or removed.
    pub change: Change,
    /// Allow or deny.
    pub effect: Effect,
    /// The rule key.
    pub pattern: &'a PathPattern,
    /// The agent glob.
    pub glob: &'a AgentGlob,
    /// The rule it comes from (in the new policy when added, the old when removed).
    pub rule: RuleRef<'a>,
    /// Why access widens, if it does.
    pub widens: Option<Widening>,
    /// With known secret paths: those the rule key covers.
    pub paths: Vec<SecretPath>,
}

/// The answer of [`diff`].
#[derive(Debug, Clone)]
pub struct PolicyDiff<'a> {
    /// Entries ordered by rule key, then glob; removed before added.
    pub entries: Vec<DiffEntry<'a>>,
    /// Changes to who may act as which agent id (`identity:`, `agents:`), in agent order.
    pub identity: Vec<IdentityChange>,
    /// Changes to `egress:` entries and to secret rules' `inject_only` and `inject:`.
    pub egress: Vec<IdentityChange>,
}

/// A change to `identity:` or to one `agents:` binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityChange {
    /// What changed, e.g. `agents.ops/x: unix_users + eve`.
    pub what: String,
    /// Whether more callers may now act as some agent id.
    pub widens: bool,
}

impl PolicyDiff<'_> {
    /// Whether any entry widens access (a grant, or who may act as an agent id).
    pub fn widens(&self) -> bool {
        self.entries.iter().any(|e| e.widens.is_some())
            || self.identity.iter().any(|c| c.widens)
            || self.egress.iter().any(|c| c.widens)
    }
}

/// What changed in who may act as which agent id. More callers for an id widens: an
/// identity mode relaxed to optional, a binding dropped while unbound ids are open, a
/// binding added where unbound ids were refused, an entry added to a binding.
fn identity_changes(old: &Policy, new: &Policy) -> Vec<IdentityChange> {
    use crate::identity::{AgentBinding, IdentityMode, UnixPrincipal};
    let mut out = Vec::new();
    let (old_mode, new_mode) = (old.identity_mode(), new.identity_mode());
    if old_mode != new_mode {
        out.push(IdentityChange {
            what: format!("identity: {} -> {}", old_mode.as_str(), new_mode.as_str()),
            widens: new_mode == IdentityMode::Optional,
        });
    }
    let mut agents: Vec<&crate::AgentId> = old
        .bindings()
        .chain(new.bindings())
        .map(AgentBinding::agent)
        .collect();
    agents.sort();
    agents.dedup();
    let added = |a: &[UnixPrincipal], b: &[UnixPrincipal]| -> Vec<String> {
        b.iter()
            .filter(|x| !a.contains(x))
            .map(ToString::to_string)
            .collect()
    };
    for agent in agents {
        match (old.binding(agent), new.binding(agent)) {
            (Some(_), None) => out.push(IdentityChange {
                what: format!("agents.{agent}: binding removed"),
                widens: new_mode == IdentityMode::Optional,
            }),
            (None, Some(_)) => out.push(IdentityChange {
                what: format!("agents.{agent}: binding added"),
                widens: old_mode == IdentityMode::Required,
            }),
            (Some(o), Some(n)) => {
                for (field, a, b) in [
                    ("unix_users", o.unix_users(), n.unix_users()),
                    ("unix_groups", o.unix_groups(), n.unix_groups()),
                ] {
                    for x in added(a, b) {
                        out.push(IdentityChange {
                            what: format!("agents.{agent}: {field} + {x}"),
                            widens: true,
                        });
                    }
                    for x in added(b, a) {
                        out.push(IdentityChange {
                            what: format!("agents.{agent}: {field} - {x}"),
                            widens: false,
                        });
                    }
                }
                let (ot, nt) = (o.tokens_sha256(), n.tokens_sha256());
                let more = nt.iter().filter(|t| !ot.contains(t)).count();
                let fewer = ot.iter().filter(|t| !nt.contains(t)).count();
                if more > 0 {
                    out.push(IdentityChange {
                        what: format!("agents.{agent}: tokens_sha256 + {more}"),
                        widens: true,
                    });
                }
                if fewer > 0 {
                    out.push(IdentityChange {
                        what: format!("agents.{agent}: tokens_sha256 - {fewer}"),
                        widens: false,
                    });
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// One `(rule, glob, effect)` of a policy.
#[derive(Clone, Copy)]
struct Item<'a> {
    rule: &'a Rule,
    glob: &'a AgentGlob,
    effect: Effect,
}

type Key<'a> = (
    &'a PathPattern,
    &'a str,
    Effect,
    Option<&'a AccessLevel>,
    Vec<String>,
    bool,
);

impl<'a> Item<'a> {
    fn key(&self) -> Key<'a> {
        // Access level and skills only qualify allows: a deny applies to
        // every skill.
        let allow = self.effect == Effect::Allow;
        let mut skills: Vec<String> = if allow {
            self.rule.skills.iter().map(ToString::to_string).collect()
        } else {
            Vec::new()
        };
        skills.sort();
        skills.dedup();
        let level = allow.then_some(&self.rule.access_level);
        (
            &self.rule.pattern,
            self.glob.as_str(),
            self.effect,
            level,
            skills,
            allow && self.rule.reveal_to_agent,
        )
    }
}

fn items(policy: &Policy) -> Vec<Item<'_>> {
    let mut out = Vec::new();
    for rule in &policy.rules {
        for glob in &rule.allowed.globs {
            out.push(Item {
                rule,
                glob,
                effect: Effect::Allow,
            });
        }
        for glob in &rule.denied.globs {
            out.push(Item {
                rule,
                glob,
                effect: Effect::Deny,
            });
        }
    }
    out
}

/// Whether moving from `old`'s level to `new`'s widens nothing: `new`
/// permits no operation that `old` does not (see [`AccessLevel::is_within`]).
/// Setting `reveal_to_agent` widens too: the value may then reach the model itself.
fn level_ok(old: &Rule, new: &Rule) -> bool {
    new.access_level.is_within(&old.access_level) && (old.reveal_to_agent || !new.reveal_to_agent)
}

/// Why an added allow widens access, or `None` when an old allow contains it.
fn allow_widening(new: &Item<'_>, old: &[Item<'_>]) -> Option<Widening> {
    let allows = || old.iter().filter(|o| o.effect == Effect::Allow);
    let path = |o: &Item<'_>| pattern_contains(&o.rule.pattern, &new.rule.pattern);
    let agents = |o: &Item<'_>| glob_contains(o.glob, new.glob);
    let skills = |o: &Item<'_>| skills_contain(&o.rule.skills, &new.rule.skills);
    let level = |o: &Item<'_>| level_ok(o.rule, new.rule);
    // An old allow overlapping the new key, for the same agents, at another level
    // may have been the rule in force there (the most specific one decides):
    // the new grant can change the level even when a broader old allow
    // contains it (`a.*: readonly` removed, `a: post` added under `*: post`).
    let shadowed_level = allows().any(|o| {
        patterns_overlap(&new.rule.pattern, &o.rule.pattern)
            && (glob_contains(o.glob, new.glob) || glob_contains(new.glob, o.glob))
            && !level_ok(o.rule, new.rule)
    });
    if !shadowed_level && allows().any(|o| path(o) && agents(o) && skills(o) && level(o)) {
        return None;
    }
    Some(if allows().any(|o| path(o) && agents(o) && skills(o)) {
        Widening::AccessLevel
    } else if allows().any(|o| path(o) && agents(o)) {
        Widening::BroaderSkills
    } else if allows()
        .any(|o| o.rule.pattern == new.rule.pattern && glob_contains(new.glob, o.glob))
    {
        Widening::BroaderAgents
    } else if allows()
        .any(|o| o.glob == new.glob && pattern_contains(&new.rule.pattern, &o.rule.pattern))
    {
        Widening::BroaderPath
    } else {
        Widening::NewGrant
    })
}

/// Whether a removed deny is still enforced by a deny of the new policy.
fn deny_kept(old: &Item<'_>, new: &[Item<'_>]) -> bool {
    new.iter().any(|n| {
        n.effect == Effect::Deny
            && pattern_contains(&n.rule.pattern, &old.rule.pattern)
            && glob_contains(n.glob, old.glob)
    })
}

/// Compares `old` and `new` (see the module docs for what widens). With
/// `known` secret paths, each entry lists the paths its rule key covers.
pub fn diff<'a>(old: &'a Policy, new: &'a Policy, known: Option<&[SecretPath]>) -> PolicyDiff<'a> {
    let old_items = items(old);
    let new_items = items(new);
    let old_keys: HashSet<Key<'_>> = old_items.iter().map(Item::key).collect();
    let new_keys: HashSet<Key<'_>> = new_items.iter().map(Item::key).collect();
    let paths = |p: &PathPattern| -> Vec<SecretPath> {
        known
            .unwrap_or_default()
            .iter()
            .filter(|k| p.covers(k))
            .cloned()
            .collect()
    };
    let mut entries = Vec::new();
    for item in &old_items {
        if new_keys.contains(&item.key()) {
            continue;
        }
        let widens = match item.effect {
            Effect::Deny => (!deny_kept(item, &new_items)).then_some(Widening::DenyRemoved),
            // A removed allow hands its paths to a broader allow, whose level
            // is then in force there.
            Effect::Allow => new_items
                .iter()
                .any(|n| {
                    n.effect == Effect::Allow
                        && patterns_overlap(&n.rule.pattern, &item.rule.pattern)
                        && (glob_contains(n.glob, item.glob) || glob_contains(item.glob, n.glob))
                        && !level_ok(item.rule, n.rule)
                })
                .then_some(Widening::AccessLevel),
        };
        entries.push(DiffEntry {
            change: Change::Removed,
            effect: item.effect,
            pattern: &item.rule.pattern,
            glob: item.glob,
            rule: RuleRef::new(item.rule),
            widens,
            paths: paths(&item.rule.pattern),
        });
    }
    for item in &new_items {
        if old_keys.contains(&item.key()) {
            continue;
        }
        let widens = match item.effect {
            Effect::Allow => allow_widening(item, &old_items),
            Effect::Deny => None,
        };
        entries.push(DiffEntry {
            change: Change::Added,
            effect: item.effect,
            pattern: &item.rule.pattern,
            glob: item.glob,
            rule: RuleRef::new(item.rule),
            widens,
            paths: paths(&item.rule.pattern),
        });
    }
    entries.sort_by(|a, b| {
        (
            a.pattern.to_string(),
            a.glob.as_str(),
            a.change == Change::Added,
        )
            .cmp(&(
                b.pattern.to_string(),
                b.glob.as_str(),
                b.change == Change::Added,
            ))
    });
    PolicyDiff {
        entries,
        identity: identity_changes(old, new),
        egress: egress_changes(old, new),
    }
}

/// What changed in where skills may send requests and where credentials go. Widens: a
/// new destination (an `egress:` url no old entry with those agents and skills
/// contains), a new method on a destination, `allow_private` set, a dropped
/// `inject_only`, a new `inject:` entry, and on `sign` rules a new or dropped
/// `ssh_hosts` restriction, a dropped `confirm` and a longer or dropped `lifetime`
/// ([`sign_changes`]). The checks answer "widens" when unsure.
fn egress_changes(old: &Policy, new: &Policy) -> Vec<IdentityChange> {
    let mut out = Vec::new();
    for n in &new.egress {
        let covering = |o: &&crate::egress::EgressRule| {
            n.url.is_within(&o.url)
                && skills_contain(&o.skills, &n.skills)
                && n.agents
                    .globs
                    .iter()
                    .all(|g| o.agents.globs.iter().any(|og| glob_contains(og, g)))
        };
        let olds: Vec<&crate::egress::EgressRule> = old.egress.iter().filter(covering).collect();
        if olds.is_empty() {
            out.push(IdentityChange {
                what: format!("+ {} (new destination)", n.url),
                widens: true,
            });
            continue;
        }
        for m in &n.methods {
            if !olds.iter().any(|o| o.methods.contains(m)) {
                out.push(IdentityChange {
                    what: format!("{}: method + {m}", n.url),
                    widens: true,
                });
            }
        }
        if n.allow_private && !olds.iter().any(|o| o.allow_private) {
            out.push(IdentityChange {
                what: format!("{}: allow_private set", n.url),
                widens: true,
            });
        }
    }
    for o in &old.egress {
        if !new.egress.iter().any(|n| n.url == o.url) {
            out.push(IdentityChange {
                what: format!("- {}", o.url),
                widens: false,
            });
        }
    }
    for n in &new.rules {
        let old_rule = old.rules.iter().find(|o| o.pattern == n.pattern);
        let (was_only, old_inject): (bool, &[crate::rule::InjectEntry]) = match old_rule {
            Some(o) => (o.inject_only, &o.inject),
            None => (false, &[]),
        };
        if was_only && !n.inject_only {
            out.push(IdentityChange {
                what: format!(
                    "{}: inject_only dropped (skills may read the value)",
                    n.pattern
                ),
                widens: true,
            });
        }
        for e in &n.inject {
            if !old_inject.contains(e) {
                out.push(IdentityChange {
                    what: format!("{}: inject + {}", n.pattern, e.describe()),
                    widens: true,
                });
            }
        }
        if let Some(o) = old_rule {
            out.extend(sign_changes(o, n));
        }
        for e in old_inject {
            if !n.inject.contains(e) {
                out.push(IdentityChange {
                    what: format!("{}: inject - {}", n.pattern, e.describe()),
                    widens: false,
                });
            }
        }
    }
    out
}

/// What changed in how a `sign` rule's key may be used (the rule kept its pattern).
/// Widens: a host added to `ssh_hosts` or the list dropped (any host), `confirm`
/// dropped, `lifetime` longer or dropped.
fn sign_changes(old: &Rule, new: &Rule) -> Vec<IdentityChange> {
    let mut out = Vec::new();
    let at = &new.pattern;
    let mut change = |what: String, widens: bool| out.push(IdentityChange { what, widens });
    match (old.ssh_hosts.is_empty(), new.ssh_hosts.is_empty()) {
        (false, true) => change(format!("{at}: ssh_hosts dropped (any host)"), true),
        (true, false) => change(format!("{at}: ssh_hosts set"), false),
        _ => {
            for h in &new.ssh_hosts {
                if !old.ssh_hosts.contains(h) {
                    change(format!("{at}: ssh_hosts + {h}"), true);
                }
            }
            for h in &old.ssh_hosts {
                if !new.ssh_hosts.contains(h) {
                    change(format!("{at}: ssh_hosts - {h}"), false);
                }
            }
        }
    }
    if old.confirm != new.confirm {
        let (verb, widens) = if new.confirm {
            ("set", false)
        } else {
            ("dropped (signatures no longer asked for)", true)
        };
        change(format!("{at}: confirm {verb}"), widens);
    }
    let show = |d: Option<std::time::Duration>| {
        d.map_or_else(
            || "none".to_owned(),
            |d| humantime::format_duration(d).to_string(),
        )
    };
    if old.lifetime != new.lifetime {
        let widens = match (old.lifetime, new.lifetime) {
            (Some(o), Some(n)) => n > o,
            (Some(_), None) => true,
            _ => false,
        };
        change(
            format!(
                "{at}: lifetime {} -> {}",
                show(old.lifetime),
                show(new.lifetime)
            ),
            widens,
        );
    }
    out
}
