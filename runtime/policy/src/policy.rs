//! A loaded policy: files read, rules merged, globs compiled, index built.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::egress::{
    EgressDenial, EgressGrant, EgressRule, EgressRuleRef, MAX_EGRESS_RULES, Target,
};
use crate::error::{InvalidPolicy, Location, PolicyError};
use crate::identity::{AgentBinding, Identities, IdentityMode};
use crate::index::Index;
use crate::parse::{MAX_POLICY_FILE_SIZE, MAX_RULES, SandboxField, parse_source};
use crate::path::PathPattern;
use crate::rule::{Rule, RuleDef, RuleRef};
use crate::sandbox::Sandbox;
use crate::{AgentId, SkillRef};

/// Most policy files in one policy (directories included).
///
/// A deployment has a handful; the bound keeps a mistaken `--policy /` from
/// reading thousands of files at start-up.
pub const MAX_POLICY_FILES: usize = 1000;

/// An access-control policy: rules from one or more files, ready to evaluate.
///
/// Deny by default: see [`Policy::evaluate`].
pub struct Policy {
    pub(crate) rules: Vec<Rule>,
    pub(crate) index: Index,
    pub(crate) sandbox: Sandbox,
    pub(crate) identities: Identities,
    pub(crate) egress: Vec<EgressRule>,
}

impl Policy {
    /// The merged `sandbox:` settings (limits, credential-shape handling).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Loads and merges policy files. Each path is a file, or a directory
    /// whose `*.yaml` / `*.yml` files (not recursive, sorted by name) are
    /// read. The same rule key in two places is an error naming both.
    ///
    /// # Errors
    /// The first I/O, size, encoding, syntax or semantic error, with
    /// `file:line:column` where there is one.
    pub fn load(paths: &[PathBuf]) -> Result<Self, PolicyError> {
        let mut files = Vec::new();
        for path in paths {
            let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
            if meta.is_dir() {
                let mut found = Vec::new();
                for entry in std::fs::read_dir(path).map_err(|e| io(path, e))? {
                    let p = entry.map_err(|e| io(path, e))?.path();
                    let yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
                    // Subdirectories are skipped (not recursive); anything else
                    // named *.yaml is read, so a FIFO or device is refused, not
                    // skipped (a skipped file could hold a deny).
                    if yaml && !p.is_dir() {
                        found.push(p);
                        if found.len() > MAX_POLICY_FILES {
                            return Err(PolicyError::TooManyFiles {
                                max: MAX_POLICY_FILES,
                            });
                        }
                    }
                }
                if found.is_empty() {
                    return Err(PolicyError::EmptyDir {
                        origin: path.display().to_string(),
                    });
                }
                found.sort();
                files.extend(found);
            } else {
                files.push(path.clone());
            }
            if files.len() > MAX_POLICY_FILES {
                return Err(PolicyError::TooManyFiles {
                    max: MAX_POLICY_FILES,
                });
            }
        }
        let sources = files
            .iter()
            .map(|p| Ok((p.display().to_string(), read_file(p)?)))
            .collect::<Result<Vec<_>, PolicyError>>()?;
        Self::from_sources(&sources)
    }

    /// Builds a policy from `(origin, text)` pairs, merged in order; the
    /// origin names the source in errors and in [`RuleRef::origin`].
    ///
    /// # Errors
    /// As [`load`](Self::load), without the I/O.
    pub fn from_sources<O: AsRef<str>, T: AsRef<str>>(
        sources: &[(O, T)],
    ) -> Result<Self, PolicyError> {
        if sources.is_empty() {
            return Err(PolicyError::NoSources);
        }
        if sources.len() > MAX_POLICY_FILES {
            return Err(PolicyError::TooManyFiles {
                max: MAX_POLICY_FILES,
            });
        }
        let mut merged = Merged::default();
        for (origin, text) in sources {
            let origin: Arc<str> = Arc::from(origin.as_ref());
            let parsed = parse_source(&origin, text.as_ref())?;
            for (field, at) in parsed.sandbox {
                merged.add_sandbox_field(field, at)?;
            }
            for def in parsed.rules {
                merged.add_rule(def)?;
            }
            if let Some((mode, at)) = parsed.identity {
                merged.set_identity(mode, at)?;
            }
            for binding in parsed.bindings {
                merged.add_binding(binding)?;
            }
            for def in parsed.egress {
                if merged.egress.len() == MAX_EGRESS_RULES {
                    return Err(PolicyError::Invalid {
                        at: def.at,
                        kind: InvalidPolicy::BadEgress {
                            key: "egress",
                            reason: format!("more than {MAX_EGRESS_RULES} entries in all files"),
                        },
                    });
                }
                let at = def.at.clone();
                let rule = EgressRule::compile(def).map_err(|e| PolicyError::Invalid {
                    at,
                    kind: InvalidPolicy::BadGlob {
                        glob: "(this entry's agents together)".to_owned(),
                        source: e,
                    },
                })?;
                merged.egress.push(rule);
            }
        }
        let Merged {
            rules,
            sandbox,
            identities,
            egress,
            ..
        } = merged;
        let index = Index::new(&rules);
        Ok(Self {
            rules,
            index,
            sandbox,
            identities,
            egress,
        })
    }

    /// Every `egress:` entry, in load order.
    pub fn egress_rules(&self) -> impl ExactSizeIterator<Item = EgressRuleRef<'_>> {
        self.egress.iter().map(|rule| EgressRuleRef { rule })
    }

    /// Whether some `egress:` entry applies to `agent` running `skill` (the host links
    /// wasi:http, and TCP sockets, into the skill only then).
    pub fn grants_egress(&self, agent: &AgentId, skill: &SkillRef) -> bool {
        self.egress.iter().any(|r| r.applies_to(agent, skill))
    }

    /// Whether `agent` running `skill` may send a `method` request to `target` (for
    /// `tcp`, `method` is ignored): the first `egress:` entry that matches, or a denial
    /// that says what to add. Deny by default. The resolved address is checked by the
    /// host with [`EgressGrant::permits_address`].
    ///
    /// # Errors
    /// No entry matches.
    pub fn egress(
        &self,
        agent: &AgentId,
        skill: &SkillRef,
        method: &str,
        target: &Target<'_>,
    ) -> Result<EgressGrant<'_>, EgressDenial> {
        let mut near = None;
        for rule in &self.egress {
            if !rule.url.matches(target) || !rule.applies_to(agent, skill) {
                continue;
            }
            if target.scheme == crate::egress::Scheme::Tcp
                || rule.methods.iter().any(|m| m == method)
            {
                return Ok(EgressGrant {
                    rule: EgressRuleRef { rule },
                });
            }
            near.get_or_insert(rule);
        }
        let dest = format!("{}://{}:{}", target.scheme, target.host, target.port);
        let what = if target.scheme == crate::egress::Scheme::Tcp {
            format!("connect to {dest}")
        } else {
            format!("send {method} to {dest}{}", target.path)
        };
        Err(EgressDenial::new(match near {
            Some(rule) => format!(
                "agent `{agent}` (skill `{}`) may not {what}: {} allows only {}; add {method} to its methods to allow it",
                skill.name(),
                EgressRuleRef { rule }.label(),
                rule.methods.join(", ")
            ),
            None => format!(
                "agent `{agent}` (skill `{}`) may not {what}: no egress rule allows it (deny by default); add an `egress:` entry with a `url` that matches and `agents: [{agent}]`",
                skill.name()
            ),
        }))
    }

    /// The first rule (in load order) with an `inject:` header entry whose url matches
    /// `target` and whose header `is_set` (called with the lowercase name) says the
    /// request already carries, with that header's name. The host refuses such a request:
    /// a destination the policy puts a credential header into gets that header only from
    /// the host, whichever agent or skill sends to it and whether or not the request asks
    /// for an injection.
    pub fn injected_header<'p>(
        &'p self,
        target: &Target<'_>,
        mut is_set: impl FnMut(&str) -> bool,
    ) -> Option<(RuleRef<'p>, &'p str)> {
        self.rules.iter().find_map(|rule| {
            rule.inject.iter().find_map(|entry| match entry {
                crate::rule::InjectEntry::Header { url, name, .. }
                    if url.matches(target) && is_set(name) =>
                {
                    Some((RuleRef::new(rule), name.as_str()))
                }
                _ => None,
            })
        })
    }

    /// Every rule, in load order (files in the order given, rules in file order).
    pub fn rules(&self) -> impl ExactSizeIterator<Item = RuleRef<'_>> + DoubleEndedIterator {
        self.rules.iter().map(RuleRef::new)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The policy files read so far, merged: their rules compiled in load order
/// and their `sandbox:` fields, each remembered with where it was set so
/// that a second setting of it is a conflict naming both.
#[derive(Default)]
struct Merged {
    rules: Vec<Rule>,
    rule_at: HashMap<PathPattern, Location>,
    sandbox: Sandbox,
    sandbox_field_at: Vec<(&'static str, Location)>,
    identities: Identities,
    identity_at: Option<Location>,
    egress: Vec<EgressRule>,
}

impl Merged {
    /// Sets `identity:` (set `at`), unless another file set it differently.
    fn set_identity(&mut self, mode: IdentityMode, at: Location) -> Result<(), PolicyError> {
        if let Some(first) = &self.identity_at
            && self.identities.mode != mode
        {
            return Err(PolicyError::Invalid {
                at,
                kind: InvalidPolicy::IdentityConflict {
                    what: format!("`identity` (`{}` there)", self.identities.mode.as_str()),
                    first: first.clone(),
                },
            });
        }
        self.identities.mode = mode;
        self.identity_at.get_or_insert(at);
        Ok(())
    }

    /// Adds one `agents:` binding, unless another file bound the same agent.
    fn add_binding(&mut self, binding: AgentBinding) -> Result<(), PolicyError> {
        if let Some(first) = self.identities.bindings.get(&binding.agent) {
            return Err(PolicyError::Invalid {
                at: binding.at.clone(),
                kind: InvalidPolicy::IdentityConflict {
                    what: format!("`agents.{}`", binding.agent),
                    first: first.at.clone(),
                },
            });
        }
        self.identities
            .bindings
            .insert(binding.agent.clone(), binding);
        Ok(())
    }

    /// Sets one `sandbox:` field (set `at`), unless another file set it.
    fn add_sandbox_field(&mut self, field: SandboxField, at: Location) -> Result<(), PolicyError> {
        if let Some(first) = self
            .sandbox_field_at
            .iter()
            .find(|(name, _)| *name == field.name())
        {
            return Err(PolicyError::Invalid {
                at,
                kind: InvalidPolicy::SandboxConflict {
                    field: field.name(),
                    first: first.1.clone(),
                },
            });
        }
        self.sandbox_field_at.push((field.name(), at));
        field.apply_to(&mut self.sandbox);
        Ok(())
    }

    /// Compiles and adds one rule, unless its key is already taken or the
    /// policy is full.
    fn add_rule(&mut self, def: RuleDef) -> Result<(), PolicyError> {
        if self.rules.len() == MAX_RULES {
            return Err(PolicyError::Invalid {
                at: def.at,
                kind: InvalidPolicy::TooManyRules { max: MAX_RULES },
            });
        }
        if let Some(first) = self.rule_at.get(&def.pattern) {
            return Err(PolicyError::Invalid {
                at: def.at.clone(),
                kind: InvalidPolicy::Conflict {
                    pattern: def.pattern.to_string(),
                    first: first.clone(),
                },
            });
        }
        self.rule_at.insert(def.pattern.clone(), def.at.clone());
        let at = def.at.clone();
        let order = self.rules.len();
        let rule = Rule::compile(def, order).map_err(|e| PolicyError::Invalid {
            at,
            kind: InvalidPolicy::BadGlob {
                glob: "(this rule's globs together)".to_owned(),
                source: e,
            },
        })?;
        self.rules.push(rule);
        Ok(())
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.rules()).finish()
    }
}

fn io(path: &Path, source: std::io::Error) -> PolicyError {
    PolicyError::Io {
        origin: path.display().to_string(),
        source,
    }
}

/// Reads a regular file of at most [`MAX_POLICY_FILE_SIZE`] bytes (checked
/// while reading: the file may grow, or claim size 0).
fn read_file(path: &Path) -> Result<String, PolicyError> {
    use crate::bounded::ReadError;
    let origin = || path.display().to_string();
    let mut bytes = Vec::new();
    crate::bounded::read_file(path, MAX_POLICY_FILE_SIZE, &mut bytes).map_err(|e| match e {
        ReadError::TooLarge { size, limit } => PolicyError::TooLarge {
            origin: origin(),
            len: size.unwrap_or(limit.saturating_add(1)),
            max: limit,
        },
        ReadError::Io(source) => io(path, source),
        other => io(path, std::io::Error::other(other.to_string())),
    })?;
    String::from_utf8(bytes).map_err(|e| PolicyError::NotUtf8 {
        origin: origin(),
        offset: e.utf8_error().valid_up_to(),
    })
}
