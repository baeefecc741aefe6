//! Policy YAML text -> rule definitions, with `file:line:column` on every error.
//!
//! yaml-rust2's event parser gives every node a position. We pull its events
//! into a small tree ([`tree`]: bounded by [`MAX_NESTING_DEPTH`] and the file
//! size), then read the tree strictly: unknown keys, wrong types and
//! duplicate keys are errors. The document's shape is read here, a rule in
//! [`rules`], the `sandbox:` settings in [`sandbox`](mod@sandbox).
//!
//! Why not `marked-yaml` (which builds a positioned tree on yaml-rust2 too): its 0.8 loader
//! stops after the first document without reading the rest (a `denied_agents` in a second
//! document would be dropped silently: access widens), reports anchors and tags at the next
//! node instead of the key, loses what was found in type errors ("found a list"), cannot
//! tell an empty file from `{}`, has no nesting bound while building, and still panics on
//! some inputs; seven of the parse-error tests would fail. Reviewed in the architecture issue.

use std::collections::HashMap;
use std::sync::Arc;

use yaml_rust2::scanner::Marker;

use crate::egress::EgressDef;
use crate::error::{InvalidPolicy, Location, PolicyError, snippet};
use crate::identity::{AgentBinding, IdentityMode};
use crate::rule::RuleDef;

mod egress;
mod identity;
mod rules;
mod sandbox;
mod tree;

pub(crate) use sandbox::SandboxField;
use tree::{Node, NodeKind, describe_plain};

/// Largest accepted policy file, in bytes.
///
/// A policy with [`MAX_RULES`] realistic rules fits in a fraction of this;
/// the bound keeps the parse time and the in-memory tree of a mistaken or
/// hostile file (a log, a binary) small.
pub const MAX_POLICY_FILE_SIZE: u64 = 1024 * 1024;

/// Most rules in one policy (all files together).
///
/// Far beyond a hand-written policy (use `*` segments to cover families of
/// paths); bounds start-up time and the memory of the compiled globs.
pub const MAX_RULES: usize = 10_000;

/// Deepest accepted nesting of YAML collections.
///
/// A policy needs 5 levels (the document, `access_control`, `secrets`, a rule,
/// and a list inside the rule); anything much deeper is a mistake, and the
/// bound keeps tree building cheap on hostile input.
pub const MAX_NESTING_DEPTH: usize = 8;

/// Parses one policy file.
pub(crate) fn parse_source(origin: &Arc<str>, text: &str) -> Result<Parsed, PolicyError> {
    if text.len() as u64 > MAX_POLICY_FILE_SIZE {
        return Err(PolicyError::TooLarge {
            origin: origin.to_string(),
            len: text.len() as u64,
            max: MAX_POLICY_FILE_SIZE,
        });
    }
    let reader = FileReader { origin };
    let root = reader.tree(text)?;
    reader.document(root.as_ref())
}

/// One parsed policy file.
pub(crate) struct Parsed {
    pub(crate) rules: Vec<RuleDef>,
    /// `sandbox:` fields set by this file, each with where it was set.
    pub(crate) sandbox: Vec<(SandboxField, Location)>,
    /// `identity:`, with where it was set.
    pub(crate) identity: Option<(IdentityMode, Location)>,
    /// `agents:` bindings.
    pub(crate) bindings: Vec<AgentBinding>,
    /// `egress:` entries, in file order.
    pub(crate) egress: Vec<EgressDef>,
}

/// Reads the node tree of one policy file strictly; every error it makes
/// points into that file.
struct FileReader<'a> {
    /// The file's name in errors and in each rule's location.
    origin: &'a Arc<str>,
}

impl FileReader<'_> {
    fn at(&self, line: usize, column: usize) -> Location {
        Location::new(Arc::clone(self.origin), line, column)
    }

    fn mark(&self, m: &Marker) -> Location {
        // yaml-rust2 columns are 0-based; editors count from 1.
        self.at(m.line().max(1), m.col() + 1)
    }

    fn err(&self, node: &Node, kind: InvalidPolicy) -> PolicyError {
        PolicyError::Invalid {
            at: self.at(node.line, node.column),
            kind,
        }
    }

    fn err_at(&self, m: &Marker, kind: InvalidPolicy) -> PolicyError {
        PolicyError::Invalid {
            at: self.mark(m),
            kind,
        }
    }

    fn wrong_type(
        &self,
        node: &Node,
        field: &'static str,
        expected: &'static str,
        hint: &'static str,
    ) -> PolicyError {
        self.err(
            node,
            InvalidPolicy::WrongType {
                field,
                expected,
                found: node.describe(),
                hint,
            },
        )
    }

    /// The entries of a mapping with string keys, checking for duplicates.
    fn mapping<'n>(
        &self,
        node: &'n Node,
        field: &'static str,
        hint: &'static str,
    ) -> Result<Vec<(&'n str, &'n Node, &'n Node)>, PolicyError> {
        let NodeKind::Map(entries) = &node.kind else {
            return Err(self.wrong_type(node, field, "a mapping", hint));
        };
        let mut seen: HashMap<&str, &Node> = HashMap::with_capacity(entries.len());
        let mut out = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let NodeKind::Scalar { value: text, .. } = &key.kind else {
                return Err(self.wrong_type(key, "a mapping key", "a string", ""));
            };
            if let Some(first) = seen.insert(text, key) {
                return Err(self.err(
                    key,
                    InvalidPolicy::DuplicateKey {
                        key: snippet(text),
                        first: self.at(first.line, first.column),
                    },
                ));
            }
            out.push((text.as_str(), key, value));
        }
        Ok(out)
    }

    fn string<'n>(
        &self,
        node: &'n Node,
        field: &'static str,
        hint: &'static str,
    ) -> Result<&'n str, PolicyError> {
        match &node.kind {
            NodeKind::Scalar { value, plain }
                if !*plain
                    || describe_plain(value) != "null" && describe_plain(value) != "a boolean" =>
            {
                Ok(value)
            }
            _ => Err(self.wrong_type(node, field, "a string", hint)),
        }
    }

    fn list<'n>(
        &self,
        node: &'n Node,
        field: &'static str,
        hint: &'static str,
    ) -> Result<Vec<(&'n Node, &'n str)>, PolicyError> {
        let NodeKind::Seq(items) = &node.kind else {
            return Err(self.wrong_type(node, field, "a list", hint));
        };
        items
            .iter()
            .map(|item| {
                Ok((
                    item,
                    self.string(
                        item,
                        field,
                        "; quote list entries that YAML reads as null or a boolean",
                    )?,
                ))
            })
            .collect()
    }

    /// The whole file: `access_control:` (required), `sandbox:`, `identity:`, `agents:`.
    fn document(&self, root: Option<&Node>) -> Result<Parsed, PolicyError> {
        let root = match root {
            None => {
                return Err(PolicyError::Invalid {
                    at: self.at(1, 1),
                    kind: InvalidPolicy::Empty,
                });
            }
            Some(n) if n.is_null() => return Err(self.err(n, InvalidPolicy::Empty)),
            Some(n) => n,
        };
        let hint = "; a policy starts with `access_control:` and a `secrets:` mapping of rules";
        let mut access_control = None;
        let mut sandbox = Vec::new();
        let mut identity = None;
        let mut bindings = Vec::new();
        let mut egress = Vec::new();
        for (key, k, v) in self.mapping(root, "the document", hint)? {
            match key {
                "access_control" => access_control = Some(v),
                "sandbox" => sandbox = self.sandbox(v)?,
                "identity" => identity = Some(self.identity_mode(v)?),
                "agents" => bindings = self.bindings(v)?,
                "egress" => egress = self.egress(v)?,
                _ => {
                    return Err(self.err(
                        k,
                        InvalidPolicy::UnknownKey {
                            key: snippet(key),
                            context: "the top level",
                            expected: "one of access_control, agents, egress, identity, sandbox",
                        },
                    ));
                }
            }
        }
        let Some(ac) = access_control else {
            return Err(self.err(
                root,
                InvalidPolicy::MissingKey {
                    key: "access_control",
                    context: "the top level",
                },
            ));
        };
        let rules = self.rules(self.secrets_of(ac)?)?;
        Ok(Parsed {
            rules,
            sandbox,
            identity,
            bindings,
            egress,
        })
    }

    /// The `secrets:` mapping of `access_control:` (`ac`), its only key.
    fn secrets_of<'n>(&self, ac: &'n Node) -> Result<&'n Node, PolicyError> {
        let mut secrets = None;
        for (key, k, v) in
            self.mapping(ac, "access_control", "; write `secrets:` indented below it")?
        {
            match key {
                "secrets" => secrets = Some(v),
                _ => {
                    return Err(self.err(
                        k,
                        InvalidPolicy::UnknownKey {
                            key: snippet(key),
                            context: "access_control",
                            expected: "`secrets`",
                        },
                    ));
                }
            }
        }
        let Some(secrets) = secrets else {
            return Err(self.err(
                ac,
                InvalidPolicy::MissingKey {
                    key: "secrets",
                    context: "access_control",
                },
            ));
        };
        Ok(secrets)
    }

    /// The rules of `secrets:`, one per key, at most [`MAX_RULES`].
    fn rules(&self, secrets: &Node) -> Result<Vec<RuleDef>, PolicyError> {
        let entries = self.mapping(
            secrets,
            "secrets",
            "; write one rule per secret path, e.g. `databases.postgres.production:` with `allowed_agents:` below it",
        )?;
        if entries.len() > MAX_RULES {
            return Err(self.err(secrets, InvalidPolicy::TooManyRules { max: MAX_RULES }));
        }
        entries
            .into_iter()
            .map(|(key, k, v)| self.rule(key, k, v))
            .collect()
    }
}
