//! What a front end asks of the daemon besides runs: the skills an agent may be offered
//! as tools, the names of the secrets it may read, and a value handed to the agent itself
//! (MCP's `tools/list`, `secrets_list` and `secrets_get`). Each checks the caller's
//! identity first, as a run does; listings and reveals are on the audit record.

use std::sync::Arc;

use agentsec_audit::RunContext;
use agentsec_broker::{Broker, Caller, CallerLimits, NoRedaction, Refusal};
use agentsec_host::CancelToken;
use agentsec_policy::{AgentId, Operation, SkillDigest, SkillName, SkillRef};
use agentsec_secrets::SecretValue;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::identity::OsIdentity;
use crate::pool::Job;
use crate::protocol::{self, BearerToken, RunParams};
use crate::server::{Inner, Outcome, Refused, Rendered, Running, Server, Writer, send};

/// The skill name a listing or a reveal is recorded and decided under: a rule with
/// `skills:` must name `mcp` to let the agent's model list or reveal its secrets.
pub const MCP_SKILL: &str = "mcp";

/// Secret requests one listing or reveal may make (one).
const MCP_CALLS: u32 = 1;

/// A skill offered to an agent as a tool: installed, and every need it declares granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolEntry {
    /// The skill's name.
    pub name: String,
    /// Its `agentsec:tool` section (description and input schema, JSON text), if any.
    pub tool: Option<String>,
}

/// A value the policy lets the agent itself see (`reveal_to_agent: true`), on the record.
#[non_exhaustive]
pub struct Revealed {
    /// The path, canonical.
    pub path: String,
    /// The value (zeroized on drop).
    pub value: SecretValue,
}

/// Who asks: the agent id they name, the peer's OS identity, and a bearer token if they
/// present one (which then proves the agent instead of the OS identity).
#[derive(Clone, Copy)]
pub struct Who<'a> {
    /// The agent id asked for.
    pub agent: &'a str,
    /// The peer (for a front end in this process: this process).
    pub peer: &'a OsIdentity,
    /// A bearer token presented with the request.
    pub token: Option<&'a BearerToken>,
}

/// Why the caller may not act as `agent`, or `None` if it may: a token must be listed in
/// the agent's `tokens_sha256`; without one the peer's OS identity must be bound to it.
pub(crate) fn identity_refusal(
    policy: &agentsec_policy::Policy,
    agent: &AgentId,
    peer: &OsIdentity,
    token: Option<&BearerToken>,
) -> Option<String> {
    match token {
        Some(token) if policy.token_proves(agent, &token.sha256()) => None,
        Some(_) => Some(format!(
            "the bearer token does not prove agent `{agent}`: list its SHA-256 in `agents: {agent}: tokens_sha256:` of the policy (`agentsec token new --agent {agent}` makes one)"
        )),
        None => peer
            .with_peer(|p| policy.check_identity(agent, p))
            .err()
            .map(|refusal| refusal.to_string()),
    }
}

/// What to do with a run's outcome once it is known.
pub type Done = Box<dyn FnOnce(Rendered) + Send>;

/// Why a front-end request was refused: the kind and what to say (never a value).
pub type Declined = (Refused, String);

impl Server {
    /// Queues a run on the daemon's workers (the per-agent cap and the queue apply) and
    /// calls `done` with its outcome from a worker; `cancel` stops it.
    pub fn call(&self, params: RunParams, peer: Arc<OsIdentity>, cancel: CancelToken, done: Done) {
        let inner = Arc::clone(&self.inner);
        let agent = params.agent.clone();
        // Whoever runs first (the job, or the refusal below) takes `done`.
        let slot = Arc::new(std::sync::Mutex::new(Some(done)));
        let in_job = Arc::clone(&slot);
        let take =
            |slot: &std::sync::Mutex<Option<Done>>| slot.lock().ok().and_then(|mut d| d.take());
        let work = Box::new(move || {
            let rendered = inner.run(params, &peer, cancel);
            if let Some(done) = take(&in_job) {
                done(rendered);
            }
        });
        if self.inner.pool.submit(Job { agent, work }).is_err() {
            let rendered = (self.inner.render)(Outcome::Refused {
                kind: Refused::ShuttingDown,
                message: "agentsec is shutting down; the run was not started".to_owned(),
            });
            if let Some(done) = take(&slot) {
                done(rendered);
            }
        }
    }

    /// The skills of the skills directory that `agent` may be offered: those whose
    /// declared needs the policy grants it (a skill that does not load is left out, and
    /// logged).
    ///
    /// # Errors
    /// The peer may not act as `agent`.
    pub fn tools(&self, who: Who<'_>) -> Result<Vec<ToolEntry>, Declined> {
        self.inner.tools(who)
    }

    /// The names at or below `prefix` that `agent` may list (names only; one `list`
    /// record).
    ///
    /// # Errors
    /// The peer may not act as `agent`, or the audit log failed.
    pub fn list_secrets(&self, who: Who<'_>, prefix: &str) -> Result<Vec<String>, Declined> {
        self.inner.list_secrets(who, prefix)
    }

    /// The value at `path`, for the agent itself: only when the granting rule says
    /// `reveal_to_agent: true` (a `reveal` record either way).
    ///
    /// # Errors
    /// Identity, the policy (the message names the rule to change), no such secret.
    pub fn reveal(&self, who: Who<'_>, path: &str) -> Result<Revealed, Declined> {
        self.inner.reveal(who, path)
    }

    /// The agent id a bearer token proves (`None` for none, or for a token listed for
    /// several agents); a missing or unknown token is on the record (`from` says where
    /// the request came from).
    pub fn token_agent(&self, token: Option<&BearerToken>, from: &str) -> Option<String> {
        self.inner.token_agent(token, from)
    }
}

impl Inner {
    /// The agent id `agent`, if the peer may act as it (a refusal is on the record).
    fn prove(&self, broker: &Broker, who: Who<'_>, what: &str) -> Result<AgentId, Declined> {
        let Who { agent, peer, token } = who;
        let agent: AgentId = agent
            .parse()
            .map_err(|e| (Refused::Usage, format!("--agent: {e}")))?;
        if let Some(message) = identity_refusal(broker.policy(), &agent, peer, token) {
            self.record_refusal(
                &agent,
                what,
                "",
                &peer.caller_info(),
                &format!("identity: {message}"),
            );
            return Err((Refused::Identity, message));
        }
        Ok(agent)
    }

    pub(crate) fn tools(&self, who: Who<'_>) -> Result<Vec<ToolEntry>, Declined> {
        let version = self.current.load_full();
        let broker = &version.broker;
        let agent = self.prove(broker, who, MCP_SKILL)?;
        let mut out = Vec::new();
        for name in self.loader.installed_skills() {
            match self.installed_skill(&name) {
                Ok(skill) if skill.needs_granted(&agent, broker) => out.push(ToolEntry {
                    name: skill.name().to_owned(),
                    tool: match skill.declared_tool() {
                        Ok(tool) => tool.map(str::to_owned),
                        Err(e) => {
                            tracing::warn!("skill `{name}`: {e}; offered without a description");
                            None
                        }
                    },
                }),
                Ok(_) => {}
                Err((_, e)) => tracing::warn!("skill `{name}` is not offered: {e}"),
            }
        }
        Ok(out)
    }

    fn caller(&self, agent: AgentId, peer: &OsIdentity) -> Result<Caller<NoRedaction>, Declined> {
        let run_id =
            agentsec_audit::new_run_id().map_err(|e| (Refused::Usage, format!("error: {e}")))?;
        let digest: [u8; 32] = Sha256::digest(b"agentsec mcp").into();
        let run = RunContext::new(agent.as_str(), MCP_SKILL, hex::encode(digest), run_id)
            .with_caller(peer.caller_info());
        let name = SkillName::parse(MCP_SKILL).map_err(|e| (Refused::Usage, e.to_string()))?;
        let skill = SkillRef::new(name, SkillDigest::from_bytes(digest));
        Ok(Caller::new(
            agent,
            skill,
            run,
            CallerLimits::new(MCP_CALLS, agentsec_policy::MAX_PATH_LEN),
            NoRedaction,
        ))
    }

    pub(crate) fn list_secrets(&self, who: Who<'_>, prefix: &str) -> Result<Vec<String>, Declined> {
        let version = self.current.load_full();
        let broker = &version.broker;
        let agent = self.prove(broker, who, MCP_SKILL)?;
        let mut caller = self.caller(agent, who.peer)?;
        let names = broker.list(&mut caller, prefix).map_err(refusal)?;
        broker
            .sync()
            .map_err(|e| (Refused::Usage, format!("error: audit log: {e}")))?;
        Ok(names)
    }

    pub(crate) fn reveal(&self, who: Who<'_>, path: &str) -> Result<Revealed, Declined> {
        let version = self.current.load_full();
        let broker = &version.broker;
        let agent = self.prove(broker, who, MCP_SKILL)?;
        let mut caller = self.caller(agent, who.peer)?;
        let released = broker
            .request(&mut caller, Operation::Reveal, path)
            .map_err(refusal)?;
        // On disk before the value leaves the process.
        broker
            .sync()
            .map_err(|e| (Refused::Usage, format!("error: audit log: {e}")))?;
        Ok(Revealed {
            path: released.path,
            value: released.value,
        })
    }

    pub(crate) fn token_agent(&self, token: Option<&BearerToken>, from: &str) -> Option<String> {
        let version = self.current.load_full();
        let policy = version.broker.policy();
        let detail = match token {
            None => format!("identity: no bearer token (from {from})"),
            Some(token) => {
                let digest = token.sha256();
                let mut proven = policy
                    .bindings()
                    .filter(|b| b.accepts_token_sha256(&digest));
                match (proven.next(), proven.next()) {
                    (Some(binding), None) => return Some(binding.agent().to_string()),
                    (Some(_), Some(_)) => format!(
                        "identity: a bearer token listed for several agents (from {from}); give each agent its own token"
                    ),
                    _ => format!("identity: a bearer token no agent lists (from {from})"),
                }
            }
        };
        let run_id = agentsec_audit::new_run_id().unwrap_or_default();
        let run = RunContext::new("", MCP_SKILL, "", run_id).with_caller(self.me.caller_info());
        self.append(
            &agentsec_audit::Record::new(
                &run,
                "",
                agentsec_audit::AccessType::Run,
                agentsec_audit::Decision::Deny,
            )
            .detail(&*detail),
        );
        None
    }

    /// The socket's methods beyond `run` and `status`.
    pub(crate) fn dispatch_more(
        &self,
        id: &Value,
        method: &str,
        params: Value,
        peer: &OsIdentity,
        writer: &Writer,
        running: &Running,
    ) {
        let str_param = |key: &str| params.get(key).and_then(Value::as_str);
        let token =
            str_param("token").map(|t| BearerToken::new(zeroize::Zeroizing::new(t.to_owned())));
        let bad = |m: &str| {
            send(
                writer,
                &protocol::error(
                    Some(id),
                    protocol::INVALID_PARAMS,
                    &format!("{method}: {m}"),
                ),
            );
        };
        let refused = |(kind, message): Declined| json!({ "refused": { "kind": kind_name(kind), "message": message } });
        match method {
            "cancel" => {
                let key = params.get("id").map(Value::to_string);
                let token = key.and_then(|k| running.lock().ok().and_then(|m| m.get(&k).cloned()));
                if let Some(token) = &token {
                    token.cancel();
                }
                send(
                    writer,
                    &protocol::response(id, &json!({ "cancelled": token.is_some() })),
                );
            }
            "token" => {
                let from = str_param("from").unwrap_or("a client of the socket");
                let agent = self.token_agent(token.as_ref(), from);
                send(writer, &protocol::response(id, &json!({ "agent": agent })));
            }
            _ => {
                let Some(agent) = str_param("agent") else {
                    return bad("`agent` (a string) is required");
                };
                let who = Who {
                    agent,
                    peer,
                    token: token.as_ref(),
                };
                let result = match method {
                    "tools" => match self.tools(who) {
                        Ok(tools) => {
                            json!({ "tools": tools.iter().map(|t| json!({ "name": t.name, "tool": t.tool })).collect::<Vec<_>>() })
                        }
                        Err(r) => refused(r),
                    },
                    "secrets.list" => {
                        match self.list_secrets(who, str_param("prefix").unwrap_or("")) {
                            Ok(names) => json!({ "names": names }),
                            Err(r) => refused(r),
                        }
                    }
                    _ => {
                        let Some(path) = str_param("path") else {
                            return bad("`path` (a string) is required");
                        };
                        match self.reveal(who, path) {
                            Ok(revealed) => {
                                match std::str::from_utf8(revealed.value.expose_secret()) {
                                    // The one place a value is put into the daemon's answer.
                                    Ok(text) => json!({ "path": revealed.path, "value": text }),
                                    Err(_) => refused((
                                        Refused::Usage,
                                        format!(
                                            "invalid-path: `{}` holds binary data",
                                            revealed.path
                                        ),
                                    )),
                                }
                            }
                            Err(r) => refused(r),
                        }
                    }
                };
                send(writer, &protocol::response(id, &result));
            }
        }
    }
}

/// A refusal's kind as the socket names it.
pub fn kind_name(kind: Refused) -> &'static str {
    match kind {
        Refused::Identity => "identity",
        Refused::Limit => "limit",
        Refused::ShuttingDown => "shutting-down",
        Refused::Denied => "denied",
        _ => "usage",
    }
}

/// A refusal's kind from its socket name.
pub fn kind_from_name(name: &str) -> Refused {
    match name {
        "identity" => Refused::Identity,
        "limit" => Refused::Limit,
        "shutting-down" => Refused::ShuttingDown,
        "denied" => Refused::Denied,
        _ => Refused::Usage,
    }
}

/// A broker refusal in the words a skill's `get-secret` error would use.
fn refusal(r: Refusal) -> Declined {
    match r {
        Refusal::Denied(m) => (Refused::Denied, format!("denied: {m}")),
        Refusal::NotFound(m) => (Refused::Usage, format!("not-found: {m}")),
        Refusal::InvalidPath(m) => (Refused::Usage, format!("invalid-path: {m}")),
        Refusal::Unavailable(m) => (Refused::Usage, format!("unavailable: {m}")),
        other => (Refused::Limit, format!("stopped: {other}")),
    }
}
