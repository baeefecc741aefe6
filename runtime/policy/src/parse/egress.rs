//! The top-level `egress:` list: one entry per allowed destination (see
//! [`crate::egress`]).

use super::FileReader;
use super::tree::{Node, NodeKind, describe_plain};
use crate::egress::{DEFAULT_EGRESS_METHODS, EgressDef, MAX_EGRESS_RULES, Scheme, UrlPattern};
use crate::error::{InvalidPolicy, PolicyError, snippet};

/// Longest accepted HTTP method name. Reason: real methods are a few bytes.
const MAX_METHOD_LEN: usize = 32;

impl FileReader<'_> {
    /// `egress: [ {url, methods, agents, skills, allow_private}, ... ]`.
    pub(super) fn egress(&self, v: &Node) -> Result<Vec<EgressDef>, PolicyError> {
        let NodeKind::Seq(items) = &v.kind else {
            return Err(self.wrong_type(
                v,
                "egress",
                "a list",
                "; write `egress:` then one `- url: ...` entry per destination",
            ));
        };
        if items.len() > MAX_EGRESS_RULES {
            return Err(self.err(
                v,
                InvalidPolicy::BadEgress {
                    key: "egress",
                    reason: format!("more than {MAX_EGRESS_RULES} entries"),
                },
            ));
        }
        items.iter().map(|item| self.egress_entry(item)).collect()
    }

    fn egress_entry(&self, item: &Node) -> Result<EgressDef, PolicyError> {
        let bad = |node: &Node, key: &'static str, reason: String| {
            self.err(node, InvalidPolicy::BadEgress { key, reason })
        };
        let fields = self.mapping(
            item,
            "an egress entry",
            "; write `- url: \"https://api.example.com/**\"` with `agents:` below it",
        )?;
        let mut url = None;
        let mut methods = None;
        let mut agents = None;
        let mut skills = Vec::new();
        let mut allow_private = false;
        for (key, k, fv) in fields {
            match key {
                "url" => {
                    let text =
                        self.string(fv, "url", "; e.g. `url: \"https://api.example.com/v1/**\"`")?;
                    url = Some(UrlPattern::parse(text).map_err(|e| bad(fv, "url", e))?);
                }
                "methods" => {
                    let list =
                        self.list(fv, "methods", "; write a list: `methods: [GET, POST]`")?;
                    if list.is_empty() {
                        return Err(bad(
                            fv,
                            "methods",
                            "`methods: []` allows nothing; remove the entry instead".to_owned(),
                        ));
                    }
                    let mut out: Vec<String> = Vec::new();
                    for (n, m) in list {
                        if m.is_empty()
                            || m.len() > MAX_METHOD_LEN
                            || !m.bytes().all(|b| b.is_ascii_uppercase() || b == b'-')
                        {
                            return Err(bad(
                                n,
                                "methods",
                                format!(
                                    "`{}` is not an HTTP method; write methods in capitals (GET, POST, PUT, PATCH, DELETE, ...)",
                                    snippet(m)
                                ),
                            ));
                        }
                        if !out.iter().any(|o| o == m) {
                            out.push(m.to_owned());
                        }
                    }
                    methods = Some((fv, out));
                }
                "agents" => agents = Some((fv, self.globs(fv, "agents")?)),
                "skills" => skills = self.skills(fv)?,
                "allow_private" => match &fv.kind {
                    NodeKind::Scalar { value, plain: true }
                        if describe_plain(value) == "a boolean" =>
                    {
                        allow_private = value.eq_ignore_ascii_case("true");
                    }
                    _ => {
                        return Err(self.wrong_type(
                            fv,
                            "allow_private",
                            "a boolean",
                            "; write `allow_private: true` or `allow_private: false` without quotes",
                        ));
                    }
                },
                _ => {
                    return Err(self.err(
                        k,
                        InvalidPolicy::UnknownKey {
                            key: snippet(key),
                            context: "an egress entry",
                            expected: "one of url, methods, agents, skills, allow_private",
                        },
                    ));
                }
            }
        }
        let Some(url) = url else {
            return Err(self.err(
                item,
                InvalidPolicy::MissingKey {
                    key: "url",
                    context: "an egress entry",
                },
            ));
        };
        let Some((agents_node, agents)) = agents else {
            return Err(self.err(
                item,
                InvalidPolicy::MissingKey {
                    key: "agents",
                    context: "an egress entry",
                },
            ));
        };
        if agents.is_empty() {
            return Err(bad(
                agents_node,
                "agents",
                "`agents: []` allows no one; remove the entry instead".to_owned(),
            ));
        }
        let methods = match (url.scheme(), methods) {
            (Scheme::Tcp, Some((n, _))) => {
                return Err(bad(
                    n,
                    "methods",
                    "a tcp:// entry has no methods; remove `methods`".to_owned(),
                ));
            }
            (Scheme::Tcp, None) => Vec::new(),
            (_, Some((_, m))) => m,
            (_, None) => DEFAULT_EGRESS_METHODS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
        };
        Ok(EgressDef {
            url,
            methods,
            agents,
            skills,
            allow_private,
            at: self.at(item.line, item.column),
        })
    }
}
