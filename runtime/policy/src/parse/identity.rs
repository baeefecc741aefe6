//! The top-level `identity:` mode and `agents:` bindings of a policy file.

use super::FileReader;
use super::tree::Node;
use crate::agent::AgentId;
use crate::error::{InvalidPolicy, Location, PolicyError, snippet};
use crate::identity::{AgentBinding, IdentityMode, MAX_BINDING_ENTRIES, UnixPrincipal};

impl FileReader<'_> {
    /// `identity: required|optional`, with where it was set.
    pub(super) fn identity_mode(&self, v: &Node) -> Result<(IdentityMode, Location), PolicyError> {
        let hint = "; write `identity: required` (recommended) or `identity: optional`";
        let text = self.string(v, "identity", hint)?;
        let mode = match text {
            "required" => IdentityMode::Required,
            "optional" => IdentityMode::Optional,
            other => {
                return Err(self.err(
                    v,
                    InvalidPolicy::BadIdentity {
                        field: "identity",
                        reason: format!("`{}`: use `required` or `optional`", snippet(other)),
                    },
                ));
            }
        };
        Ok((mode, self.at(v.line, v.column)))
    }

    /// `agents:`: agent id -> `{ unix_users, unix_groups, tokens_sha256 }`.
    pub(super) fn bindings(&self, v: &Node) -> Result<Vec<AgentBinding>, PolicyError> {
        let entries = self.mapping(
            v,
            "agents",
            "; write one entry per agent id, e.g. `ops/release-manager: { unix_users: [deploy] }`",
        )?;
        entries
            .into_iter()
            .map(|(key, k, v)| self.binding(key, k, v))
            .collect()
    }

    fn binding(&self, key: &str, k: &Node, v: &Node) -> Result<AgentBinding, PolicyError> {
        let agent = AgentId::parse(key).map_err(|e| {
            self.err(
                k,
                InvalidPolicy::BadIdentity {
                    field: "agents",
                    reason: format!(
                        "`{}` is not an agent id ({e}); `agents:` binds exact agent ids, not globs",
                        snippet(key)
                    ),
                },
            )
        })?;
        let mut binding = AgentBinding {
            agent,
            unix_users: Vec::new(),
            unix_groups: Vec::new(),
            tokens_sha256: Vec::new(),
            at: self.at(k.line, k.column),
        };
        let fields = self.mapping(
            v,
            "an agent binding",
            "; e.g. `ops/release-manager: { unix_users: [deploy], unix_groups: [release] }`",
        )?;
        for (field, fk, fv) in fields {
            match field {
                "unix_users" => binding.unix_users = self.principals(fv, "unix_users")?,
                "unix_groups" => binding.unix_groups = self.principals(fv, "unix_groups")?,
                "tokens_sha256" => binding.tokens_sha256 = self.token_digests(fv)?,
                _ => {
                    return Err(self.err(
                        fk,
                        InvalidPolicy::UnknownKey {
                            key: snippet(field),
                            context: "an agent binding",
                            expected: "one of unix_users, unix_groups, tokens_sha256",
                        },
                    ));
                }
            }
        }
        if binding.unix_users.is_empty()
            && binding.unix_groups.is_empty()
            && binding.tokens_sha256.is_empty()
        {
            return Err(self.err(
                k,
                InvalidPolicy::BadIdentity {
                    field: "agents",
                    reason: format!(
                        "the entry binds `{key}` to nothing, so nobody could act as it; list `unix_users`, `unix_groups` or `tokens_sha256`"
                    ),
                },
            ));
        }
        Ok(binding)
    }

    fn principals(
        &self,
        node: &Node,
        field: &'static str,
    ) -> Result<Vec<UnixPrincipal>, PolicyError> {
        let entries = self.list(node, field, "; write a list, e.g. `[deploy, ci]`")?;
        self.bounded(node, field, entries.len())?;
        entries
            .into_iter()
            .map(|(n, s)| {
                UnixPrincipal::parse(s)
                    .map_err(|reason| self.err(n, InvalidPolicy::BadIdentity { field, reason }))
            })
            .collect()
    }

    fn token_digests(&self, node: &Node) -> Result<Vec<[u8; 32]>, PolicyError> {
        let field = "tokens_sha256";
        let entries = self.list(
            node,
            field,
            "; write a list of hashes printed by `agentsec token new`",
        )?;
        self.bounded(node, field, entries.len())?;
        entries
            .into_iter()
            .map(|(n, s)| {
                let bad = || {
                    self.err(
                        n,
                        InvalidPolicy::BadIdentity {
                            field,
                            reason: "an entry is the SHA-256 of a token as 64 lowercase hex digits (`agentsec token new` prints it); never the token itself".to_owned(),
                        },
                    )
                };
                if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(bad());
                }
                let mut digest = [0u8; 32];
                hex::decode_to_slice(s, &mut digest).map_err(|_| bad())?;
                Ok(digest)
            })
            .collect()
    }

    fn bounded(&self, node: &Node, field: &'static str, len: usize) -> Result<(), PolicyError> {
        if len > MAX_BINDING_ENTRIES {
            return Err(self.err(
                node,
                InvalidPolicy::BadIdentity {
                    field,
                    reason: format!(
                        "more than {MAX_BINDING_ENTRIES} entries; bind a group instead"
                    ),
                },
            ));
        }
        Ok(())
    }
}
