//! One rule of `access_control.secrets`: its path pattern and its fields
//! (`allowed_agents`, `denied_agents`, `access_level`, `audit`, `skills`,
//! `reveal_to_agent`, `inject_only`, `inject`, and on `sign` rules `ssh_hosts`,
//! `confirm` and `lifetime`).

use super::FileReader;
use super::tree::{Node, NodeKind, describe_plain};
use crate::agent::AgentGlob;
use crate::error::{InvalidPolicy, PolicyError, snippet};
use crate::path::PathPattern;
use crate::rule::{AccessLevel, InjectEntry, RuleDef};
use crate::skill::SkillSelector;
use crate::ssh::{MAX_KEY_LIFETIME, MAX_SSH_HOSTS, SshHostKey};

impl FileReader<'_> {
    /// One rule: its key (node `k`), a path pattern, and its fields (`v`).
    pub(super) fn rule(&self, key: &str, k: &Node, v: &Node) -> Result<RuleDef, PolicyError> {
        let pattern =
            PathPattern::parse(key).map_err(|e| self.err(k, InvalidPolicy::BadPattern(e)))?;
        let mut def = RuleDef {
            pattern,
            allowed: Vec::new(),
            denied: Vec::new(),
            access_level: AccessLevel::ReadOnly,
            audit: true,
            skills: Vec::new(),
            reveal_to_agent: false,
            inject_only: false,
            inject: Vec::new(),
            ssh_hosts: Vec::new(),
            confirm: false,
            lifetime: None,
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
                "audit" => def.audit = self.flag(fv, "audit")?,
                "skills" => def.skills = self.skills(fv)?,
                "reveal_to_agent" => def.reveal_to_agent = self.flag(fv, "reveal_to_agent")?,
                "inject_only" => def.inject_only = self.flag(fv, "inject_only")?,
                "inject" => def.inject = self.inject(fv)?,
                "ssh_hosts" => def.ssh_hosts = self.ssh_hosts(fv)?,
                "confirm" => def.confirm = self.flag(fv, "confirm")?,
                "lifetime" => def.lifetime = Some(self.lifetime(fv)?),
                _ => {
                    return Err(self.err(
                        fk,
                        InvalidPolicy::UnknownKey {
                            key: snippet(field),
                            context: "a rule",
                            expected: "one of allowed_agents, denied_agents, access_level, audit, skills, reveal_to_agent, inject_only, inject, ssh_hosts, confirm, lifetime",
                        },
                    ));
                }
            }
        }
        if def.access_level != AccessLevel::Sign {
            for (set, field) in [
                (!def.ssh_hosts.is_empty(), "ssh_hosts"),
                (def.confirm, "confirm"),
                (def.lifetime.is_some(), "lifetime"),
            ] {
                if set {
                    return Err(self.err(k, InvalidPolicy::SshFieldNotSign(field)));
                }
            }
        }
        if def.allowed.is_empty() && def.denied.is_empty() {
            return Err(self.err(k, InvalidPolicy::NoAgents(def.pattern.to_string())));
        }
        Ok(def)
    }

    /// `audit: true|false` or `reveal_to_agent: true|false`: an unquoted boolean.
    fn flag(&self, fv: &Node, field: &'static str) -> Result<bool, PolicyError> {
        match &fv.kind {
            NodeKind::Scalar { value, plain: true } if describe_plain(value) == "a boolean" => {
                Ok(value.eq_ignore_ascii_case("true"))
            }
            _ => Err(self.wrong_type(
                fv,
                field,
                "a boolean",
                if field == "audit" {
                    "; write `audit: true` or `audit: false` without quotes"
                } else if field == "inject_only" {
                    "; write `inject_only: true` or `inject_only: false` without quotes"
                } else if field == "confirm" {
                    "; write `confirm: true` or `confirm: false` without quotes"
                } else {
                    "; write `reveal_to_agent: true` or `reveal_to_agent: false` without quotes"
                },
            )),
        }
    }

    /// `lifetime: 8h`: how long an SSH agent serves a key once loaded (humantime syntax),
    /// at least a second and at most [`MAX_KEY_LIFETIME`].
    fn lifetime(&self, fv: &Node) -> Result<std::time::Duration, PolicyError> {
        let text = self.string(fv, "lifetime", "; e.g. `lifetime: 8h`")?;
        let bad = |why: String| self.err(fv, InvalidPolicy::BadLifetime(why));
        let d = humantime::parse_duration(text.trim()).map_err(|e| {
            bad(format!(
                "`{}` is not a duration ({e}); examples: 30m, 8h, 7d",
                snippet(text)
            ))
        })?;
        if d < std::time::Duration::from_secs(1) || d > MAX_KEY_LIFETIME {
            return Err(bad(format!(
                "`{}` is outside 1s..=365d; remove `lifetime` to serve the key as long as the agent runs",
                snippet(text)
            )));
        }
        Ok(d)
    }

    /// `inject: [{url, header} | {as: url}]`.
    fn inject(&self, fv: &Node) -> Result<Vec<InjectEntry>, PolicyError> {
        let NodeKind::Seq(items) = &fv.kind else {
            return Err(self.wrong_type(
                fv,
                "inject",
                "a list",
                "; write `inject:` then `- url: \"https://api.example.com/**\"` and `header: \"Authorization: Bearer {secret}\"`",
            ));
        };
        let bad = |node: &Node, key: &'static str, reason: String| {
            self.err(node, InvalidPolicy::BadInject { key, reason })
        };
        let mut out = Vec::new();
        for item in items {
            let mut url = None;
            let mut header = None;
            let mut as_url = None;
            for (key, k, v) in self.mapping(
                item,
                "an inject entry",
                "; write `url:` and `header:`, or `as: url`",
            )? {
                match key {
                    "url" => {
                        let text = self.string(v, "url", "")?;
                        url = Some(
                            crate::egress::UrlPattern::parse(text).map_err(|e| bad(v, "url", e))?,
                        );
                    }
                    "header" => {
                        header = Some((
                            v,
                            self.string(
                                v,
                                "header",
                                "; e.g. `header: \"Authorization: Bearer {secret}\"`",
                            )?,
                        ))
                    }
                    "as" => {
                        let text = self.string(v, "as", "")?;
                        if text != "url" {
                            return Err(bad(
                                v,
                                "as",
                                format!(
                                    "`{}`: the only form is `as: url` (the secret is the request's URL)",
                                    snippet(text)
                                ),
                            ));
                        }
                        as_url = Some(v);
                    }
                    _ => {
                        return Err(self.err(
                            k,
                            InvalidPolicy::UnknownKey {
                                key: snippet(key),
                                context: "an inject entry",
                                expected: "one of url, header, as",
                            },
                        ));
                    }
                }
            }
            out.push(match (url, header, as_url) {
                (None, None, Some(_)) => InjectEntry::AsUrl,
                (Some(url), Some((hn, h)), None) => {
                    let Some((name, template)) = h.split_once(':') else {
                        return Err(bad(
                            hn,
                            "header",
                            "write `Name: text with {secret}`".to_owned(),
                        ));
                    };
                    let name = name.trim();
                    if name.is_empty()
                        || !name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    {
                        return Err(bad(
                            hn,
                            "header",
                            format!("`{}` is not a header name", snippet(name)),
                        ));
                    }
                    let template = template.trim_start();
                    let Some((prefix, suffix)) = template.split_once("{secret}") else {
                        return Err(bad(
                            hn,
                            "header",
                            "the template must hold `{secret}` once".to_owned(),
                        ));
                    };
                    if suffix.contains("{secret}") || template.chars().any(char::is_control) {
                        return Err(bad(
                            hn,
                            "header",
                            "the template must hold `{secret}` once and no control characters"
                                .to_owned(),
                        ));
                    }
                    InjectEntry::Header {
                        url,
                        name: name.to_ascii_lowercase(),
                        prefix: prefix.to_owned(),
                        suffix: suffix.to_owned(),
                    }
                }
                (Some(_), None, None) => {
                    return Err(bad(
                        item,
                        "header",
                        "an entry with `url` needs `header: \"Name: ... {secret}\"`".to_owned(),
                    ));
                }
                (None, Some((hn, _)), None) => {
                    return Err(bad(
                        hn,
                        "url",
                        "an entry with `header` needs the `url` it is injected into".to_owned(),
                    ));
                }
                (_, _, Some(a)) => {
                    return Err(bad(
                        a,
                        "as",
                        "`as: url` stands alone (the secret is the URL)".to_owned(),
                    ));
                }
                (None, None, None) => {
                    return Err(bad(
                        item,
                        "inject",
                        "write `url:` and `header:`, or `as: url`".to_owned(),
                    ));
                }
            });
        }
        Ok(out)
    }

    /// `skills: [...]`: a non-empty list of skill selectors.
    pub(super) fn skills(&self, fv: &Node) -> Result<Vec<SkillSelector>, PolicyError> {
        let entries = self.list(fv, "skills", "; write a list: `skills: [db-healthcheck]`")?;
        // An empty list is how "no skill" would be written, but
        // an empty `skills` means "any skill": refuse the mix-up.
        if entries.is_empty() {
            return Err(self.err(fv, InvalidPolicy::EmptySkills));
        }
        entries
            .into_iter()
            .map(|(n, s)| {
                SkillSelector::parse(s).map_err(|e| self.err(n, InvalidPolicy::BadSkill(e)))
            })
            .collect()
    }

    /// `ssh_hosts: [SHA256:...]`: a non-empty list of host key fingerprints.
    fn ssh_hosts(&self, fv: &Node) -> Result<Vec<SshHostKey>, PolicyError> {
        let entries = self.list(
            fv,
            "ssh_hosts",
            "; write a list: `ssh_hosts: [\"SHA256:...\"]`",
        )?;
        // An empty list would read as "no host" but mean "any host".
        if entries.is_empty() || entries.len() > MAX_SSH_HOSTS {
            return Err(self.err(fv, InvalidPolicy::SshHostsCount(entries.len())));
        }
        entries
            .into_iter()
            .map(|(n, s)| {
                SshHostKey::parse(s).map_err(|why| {
                    self.err(
                        n,
                        InvalidPolicy::BadSshHost {
                            host: snippet(s),
                            why,
                        },
                    )
                })
            })
            .collect()
    }

    /// `allowed_agents` or `denied_agents`: a list of agent globs.
    pub(super) fn globs(
        &self,
        node: &Node,
        field: &'static str,
    ) -> Result<Vec<AgentGlob>, PolicyError> {
        let hint = if field == "allowed_agents" {
            "; write a list: `allowed_agents: [ops/release-manager]`"
        } else if field == "agents" {
            "; write a list: `agents: [ops/release-manager]`"
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
