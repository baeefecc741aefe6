//! Policy YAML text -> rule definitions, with `file:line:column` on every error.
//!
//! yaml-rust2's event parser gives every node a position. We pull its events
//! into a small tree (bounded by [`MAX_NESTING_DEPTH`] and the file size),
//! then read the tree strictly: unknown keys, wrong types and duplicate keys
//! are errors.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::agent::AgentGlob;
use crate::error::{InvalidPolicy, Location, PolicyError, snippet};
use crate::path::PathPattern;
use crate::rule::{AccessLevel, RuleDef};
use crate::sandbox::{ShapeSetting, parse_duration, parse_size};
use crate::skill::SkillSelector;

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

struct Node {
    kind: Kind,
    line: usize,
    column: usize,
}

enum Kind {
    Scalar { value: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
            Kind::Scalar { plain: false, .. } => "a string",
            Kind::Scalar { value, plain: true } => describe_plain(value),
        }
    }

    fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, plain: true } if describe_plain(value) == "null")
    }
}

/// YAML 1.2 core schema resolution of a plain scalar, for type checks.
fn describe_plain(v: &str) -> &'static str {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => "null",
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => "a boolean",
        _ if v.parse::<f64>().is_ok() => "a number",
        _ => "a string",
    }
}

/// Parses one policy file.
pub(crate) fn parse_source(origin: &Arc<str>, text: &str) -> Result<Parsed, PolicyError> {
    if text.len() as u64 > MAX_POLICY_FILE_SIZE {
        return Err(PolicyError::TooLarge {
            origin: origin.to_string(),
            len: text.len() as u64,
            max: MAX_POLICY_FILE_SIZE,
        });
    }
    let cx = Cx { origin };
    let root = cx.tree(text)?;
    cx.document(root.as_ref())
}

/// One parsed policy file.
pub(crate) struct Parsed {
    pub(crate) rules: Vec<RuleDef>,
    /// `sandbox:` fields set by this file, each with where it was set.
    pub(crate) sandbox: Vec<(SandboxField, Location)>,
}

/// One `sandbox:` setting.
pub(crate) enum SandboxField {
    Timeout(std::time::Duration),
    MaxMemory(u64),
    MaxOutput(u64),
    MaxSecretCalls(u32),
    OnCredentialShape(ShapeSetting),
    MaxTableElements(u64),
    MaxInstances(u64),
    MaxComponentSize(u64),
    MaxPathLen(u64),
    MaxInput(u64),
    MaxFunctions(u64),
    MaxCodeSize(u64),
    MaxRedactionBytes(u64),
    CompileTimeout(std::time::Duration),
}

impl SandboxField {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            SandboxField::Timeout(_) => "timeout",
            SandboxField::MaxMemory(_) => "max_memory",
            SandboxField::MaxOutput(_) => "max_output",
            SandboxField::MaxSecretCalls(_) => "max_secret_calls",
            SandboxField::OnCredentialShape(_) => "on_credential_shape",
            SandboxField::MaxTableElements(_) => "max_table_elements",
            SandboxField::MaxInstances(_) => "max_instances",
            SandboxField::MaxComponentSize(_) => "max_component_size",
            SandboxField::MaxPathLen(_) => "max_path_len",
            SandboxField::MaxInput(_) => "max_input",
            SandboxField::MaxFunctions(_) => "max_functions",
            SandboxField::MaxCodeSize(_) => "max_code_size",
            SandboxField::MaxRedactionBytes(_) => "max_redaction_bytes",
            SandboxField::CompileTimeout(_) => "compile_timeout",
        }
    }
}

struct Cx<'a> {
    origin: &'a Arc<str>,
}

/// A collection being built: its items (or entries and a key awaiting its
/// value) and where it starts.
enum Frame {
    Seq(Vec<Node>, usize, usize),
    Map(Vec<(Node, Node)>, Option<Node>, usize, usize),
}

impl Cx<'_> {
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

    /// Builds the node tree of the single document, if any.
    fn tree(&self, text: &str) -> Result<Option<Node>, PolicyError> {
        // yaml-rust2 reports malformed input as errors, but it has internal
        // `unreachable!`s; a bug there must not take the process down.
        catch_unwind(AssertUnwindSafe(|| self.tree_inner(text))).unwrap_or_else(|_| {
            Err(PolicyError::Invalid {
                at: self.at(1, 1),
                kind: InvalidPolicy::Yaml("the YAML parser failed on this input".into()),
            })
        })
    }

    fn tree_inner(&self, text: &str) -> Result<Option<Node>, PolicyError> {
        let mut parser = Parser::new_from_str(text);
        let mut stack: Vec<Frame> = Vec::new();
        let mut root = None;
        let mut documents = 0usize;
        loop {
            let (event, m) = parser
                .next_token()
                .map_err(|e| self.err_at(e.marker(), InvalidPolicy::Yaml(e.info().to_owned())))?;
            let (line, column) = (m.line().max(1), m.col() + 1);
            let node = match event {
                Event::StreamEnd => break,
                Event::StreamStart | Event::Nothing | Event::DocumentEnd => continue,
                Event::DocumentStart => {
                    documents += 1;
                    if documents > 1 {
                        return Err(self.err_at(&m, InvalidPolicy::MultipleDocuments));
                    }
                    continue;
                }
                Event::Alias(_) => {
                    return Err(self.err_at(&m, InvalidPolicy::Unsupported("aliases")));
                }
                Event::Scalar(value, style, anchor, tag) => {
                    self.plain_node(&stack, &m, anchor, tag.is_some())?;
                    Node {
                        kind: Kind::Scalar {
                            value,
                            plain: style == TScalarStyle::Plain,
                        },
                        line,
                        column,
                    }
                }
                Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                    self.plain_node(&stack, &m, anchor, tag.is_some())?;
                    if stack.len() >= MAX_NESTING_DEPTH {
                        return Err(self.err_at(
                            &m,
                            InvalidPolicy::TooDeep {
                                max: MAX_NESTING_DEPTH,
                            },
                        ));
                    }
                    let is_seq = matches!(event, Event::SequenceStart(..));
                    stack.push(if is_seq {
                        Frame::Seq(Vec::new(), line, column)
                    } else {
                        Frame::Map(Vec::new(), None, line, column)
                    });
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                    Some(Frame::Seq(items, line, column)) => Node {
                        kind: Kind::Seq(items),
                        line,
                        column,
                    },
                    Some(Frame::Map(entries, None, line, column)) => {
                        // A block mapping's start mark is one column past its
                        // first key; point at the key instead.
                        let (line, column) = match entries.first() {
                            Some((k, _)) if (k.line, k.column) < (line, column) => {
                                (k.line, k.column)
                            }
                            _ => (line, column),
                        };
                        Node {
                            kind: Kind::Map(entries),
                            line,
                            column,
                        }
                    }
                    // The parser never ends a mapping between key and value,
                    // nor a collection it did not start; be defensive anyway.
                    Some(Frame::Map(_, Some(_), ..)) | None => {
                        return Err(
                            self.err_at(&m, InvalidPolicy::Yaml("unbalanced collection".into()))
                        );
                    }
                },
            };
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq(items, ..)) => items.push(node),
                Some(Frame::Map(entries, pending, ..)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => {
                        let mut node = node;
                        // An implicit null (`key:` and nothing) is marked
                        // wherever the next token is; point at the key.
                        if matches!(&node.kind, Kind::Scalar { value, plain: true } if value.is_empty())
                        {
                            (node.line, node.column) = (key.line, key.column);
                        }
                        entries.push((key, node));
                    }
                },
            }
        }
        Ok(root)
    }

    /// Refuses anchors and tags. yaml-rust2 marks the node after them, not
    /// them; when the node is a mapping value, point at its key instead.
    fn plain_node(
        &self,
        stack: &[Frame],
        m: &Marker,
        anchor: usize,
        tagged: bool,
    ) -> Result<(), PolicyError> {
        let what = match (anchor != 0, tagged) {
            (true, _) => "anchors",
            (false, true) => "tags",
            (false, false) => return Ok(()),
        };
        let at = match stack.last() {
            Some(Frame::Map(_, Some(key), ..)) => self.at(key.line, key.column),
            _ => self.mark(m),
        };
        Err(PolicyError::Invalid {
            at,
            kind: InvalidPolicy::Unsupported(what),
        })
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
        let Kind::Map(entries) = &node.kind else {
            return Err(self.wrong_type(node, field, "a mapping", hint));
        };
        let mut seen: HashMap<&str, &Node> = HashMap::with_capacity(entries.len());
        let mut out = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Kind::Scalar { value: text, .. } = &key.kind else {
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
            Kind::Scalar { value, plain }
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
        let Kind::Seq(items) = &node.kind else {
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
        for (key, k, v) in self.mapping(root, "the document", hint)? {
            match key {
                "access_control" => access_control = Some(v),
                "sandbox" => sandbox = self.sandbox(v)?,
                _ => {
                    return Err(self.err(
                        k,
                        InvalidPolicy::UnknownKey {
                            key: snippet(key),
                            context: "the top level",
                            expected: "`access_control` or `sandbox`",
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
        let entries = self.mapping(
            secrets,
            "secrets",
            "; write one rule per secret path, e.g. `databases.postgres.production:` with `allowed_agents:` below it",
        )?;
        if entries.len() > MAX_RULES {
            return Err(self.err(secrets, InvalidPolicy::TooManyRules { max: MAX_RULES }));
        }
        let rules = entries
            .into_iter()
            .map(|(key, k, v)| self.rule(key, k, v))
            .collect::<Result<_, _>>()?;
        Ok(Parsed { rules, sandbox })
    }

    fn sandbox(&self, node: &Node) -> Result<Vec<(SandboxField, Location)>, PolicyError> {
        let mut fields = Vec::new();
        let hint = "; e.g. `timeout: 5s`, `max_memory: 64MiB`, `on_credential_shape: fail`";
        for (key, k, v) in self.mapping(node, "sandbox", hint)? {
            let text = |field: &'static str| {
                let hint = "; e.g. `timeout: 5s` or `max_memory: 64MiB`";
                match &v.kind {
                    Kind::Scalar { value, .. } => Ok(value.as_str()),
                    _ => Err(self.wrong_type(v, field, "a value", hint)),
                }
            };
            let bad = |field: &'static str, reason: String| {
                self.err(v, InvalidPolicy::BadSetting { field, reason })
            };
            let field = match key {
                "timeout" => SandboxField::Timeout(
                    parse_duration(text("timeout")?).map_err(|e| bad("timeout", e))?,
                ),
                "max_memory" => SandboxField::MaxMemory(
                    parse_size(text("max_memory")?).map_err(|e| bad("max_memory", e))?,
                ),
                "max_output" => SandboxField::MaxOutput(
                    parse_size(text("max_output")?).map_err(|e| bad("max_output", e))?,
                ),
                "max_secret_calls" => SandboxField::MaxSecretCalls(
                    text("max_secret_calls")?.parse().map_err(|_| {
                        bad(
                            "max_secret_calls",
                            "a whole number of calls, e.g. 100".to_owned(),
                        )
                    })?,
                ),
                "max_component_size" => SandboxField::MaxComponentSize(
                    parse_size(text("max_component_size")?)
                        .map_err(|e| bad("max_component_size", e))?,
                ),
                "compile_timeout" => SandboxField::CompileTimeout(
                    parse_duration(text("compile_timeout")?)
                        .map_err(|e| bad("compile_timeout", e))?,
                ),
                "max_input" => SandboxField::MaxInput(
                    parse_size(text("max_input")?).map_err(|e| bad("max_input", e))?,
                ),
                "max_code_size" => SandboxField::MaxCodeSize(
                    parse_size(text("max_code_size")?).map_err(|e| bad("max_code_size", e))?,
                ),
                "max_redaction_bytes" => SandboxField::MaxRedactionBytes(
                    parse_size(text("max_redaction_bytes")?)
                        .map_err(|e| bad("max_redaction_bytes", e))?,
                ),
                "max_table_elements" | "max_instances" | "max_path_len" | "max_functions" => {
                    let name = match key {
                        "max_table_elements" => "max_table_elements",
                        "max_instances" => "max_instances",
                        "max_functions" => "max_functions",
                        _ => "max_path_len",
                    };
                    let n: u64 = text(name)?
                        .parse()
                        .map_err(|_| bad(name, "a whole number, e.g. 100".to_owned()))?;
                    match name {
                        "max_table_elements" => SandboxField::MaxTableElements(n),
                        "max_instances" => SandboxField::MaxInstances(n),
                        "max_functions" => SandboxField::MaxFunctions(n),
                        _ => SandboxField::MaxPathLen(n),
                    }
                }
                "on_credential_shape" => {
                    SandboxField::OnCredentialShape(match text("on_credential_shape")? {
                        "redact" => ShapeSetting::Redact,
                        "fail" => ShapeSetting::Fail,
                        _ => {
                            return Err(bad(
                                "on_credential_shape",
                                "use `redact` or `fail`".to_owned(),
                            ));
                        }
                    })
                }
                _ => {
                    return Err(self.err(
                        k,
                        InvalidPolicy::UnknownKey {
                            key: snippet(key),
                            context: "sandbox",
                            expected: "one of timeout, max_memory, max_output, max_secret_calls, on_credential_shape, max_table_elements, max_instances, max_component_size, max_path_len, max_input, max_functions, max_code_size, max_redaction_bytes, compile_timeout",
                        },
                    ));
                }
            };
            fields.push((field, self.at(k.line, k.column)));
        }
        Ok(fields)
    }

    fn rule(&self, key: &str, k: &Node, v: &Node) -> Result<RuleDef, PolicyError> {
        let pattern =
            PathPattern::parse(key).map_err(|e| self.err(k, InvalidPolicy::BadPattern(e)))?;
        let mut def = RuleDef {
            pattern,
            allowed: Vec::new(),
            denied: Vec::new(),
            access_level: AccessLevel::ReadOnly,
            audit: true,
            skills: Vec::new(),
            at: self.at(k.line, k.column),
        };
        let fields = self.mapping(
            v,
            "a rule",
            "; write the rule's fields below its key, e.g. `allowed_agents: [ops/release-manager]`",
        )?;
        for (field, fk, fv) in fields {
            match field {
                "allowed_agents" => def.allowed = self.globs(fv, "allowed_agents")?,
                "denied_agents" => def.denied = self.globs(fv, "denied_agents")?,
                "access_level" => {
                    let text =
                        self.string(fv, "access_level", "; e.g. `access_level: readonly`")?;
                    def.access_level = AccessLevel::parse(text)
                        .map_err(|e| self.err(fv, InvalidPolicy::BadAccessLevel(e)))?;
                }
                "audit" => {
                    def.audit = match &fv.kind {
                        Kind::Scalar { value, plain: true }
                            if describe_plain(value) == "a boolean" =>
                        {
                            value.eq_ignore_ascii_case("true")
                        }
                        _ => {
                            return Err(self.wrong_type(
                                fv,
                                "audit",
                                "a boolean",
                                "; write `audit: true` or `audit: false` without quotes",
                            ));
                        }
                    }
                }
                "skills" => {
                    let entries =
                        self.list(fv, "skills", "; write a list: `skills: [db-healthcheck]`")?;
                    // An empty list is how "no skill" would be written, but
                    // an empty `skills` means "any skill": refuse the mix-up.
                    if entries.is_empty() {
                        return Err(self.err(fv, InvalidPolicy::EmptySkills));
                    }
                    def.skills = entries
                        .into_iter()
                        .map(|(n, s)| {
                            SkillSelector::parse(s)
                                .map_err(|e| self.err(n, InvalidPolicy::BadSkill(e)))
                        })
                        .collect::<Result<_, _>>()?;
                }
                _ => {
                    return Err(self.err(
                        fk,
                        InvalidPolicy::UnknownKey {
                            key: snippet(field),
                            context: "a rule",
                            expected: "one of allowed_agents, denied_agents, access_level, audit, skills",
                        },
                    ));
                }
            }
        }
        if def.allowed.is_empty() && def.denied.is_empty() {
            return Err(self.err(k, InvalidPolicy::NoAgents(def.pattern.to_string())));
        }
        Ok(def)
    }

    fn globs(&self, node: &Node, field: &'static str) -> Result<Vec<AgentGlob>, PolicyError> {
        let hint = if field == "allowed_agents" {
            "; write a list: `allowed_agents: [ops/release-manager]`"
        } else {
            "; write a list: `denied_agents: [ops/intern]`"
        };
        self.list(node, field, hint)?
            .into_iter()
            .map(|(n, s)| {
                AgentGlob::parse(s).map_err(|e| {
                    self.err(
                        n,
                        InvalidPolicy::BadGlob {
                            glob: snippet(s),
                            source: e,
                        },
                    )
                })
            })
            .collect()
    }
}
