//! What the MCP server asks of agentsec, and its in-process implementation.

use std::sync::Arc;

use agentsec_host::CancelToken;
use agentsec_server::identity::OsIdentity;
use agentsec_server::protocol::{BearerToken, RunParams, SkillSpec};
use agentsec_server::{Declined, Done, Server, ToolEntry, Who};
use zeroize::Zeroizing;

/// Who a request is for: the agent id, and the bearer token that proved it (HTTP), if any.
#[derive(Clone)]
pub struct Caller {
    /// The agent id.
    pub agent: String,
    /// The token the request carried (the backend checks it again).
    pub token: Option<Arc<BearerToken>>,
}

/// A value for the model (`secrets_get`), zeroized on drop.
pub struct RevealedText {
    /// The path, canonical.
    pub path: String,
    /// The value.
    pub value: Zeroizing<String>,
}

/// agentsec's operations as the MCP server needs them. Every method blocks: the server
/// calls them off its async threads.
pub trait Backend: Send + Sync + 'static {
    /// The skills the caller may be offered.
    ///
    /// # Errors
    /// The caller may not act as the agent.
    fn tools(&self, caller: &Caller) -> Result<Vec<ToolEntry>, Declined>;

    /// Runs the installed skill `skill` with `input`; `done` gets the outcome. The returned
    /// function cancels the run.
    fn call(
        &self,
        caller: &Caller,
        skill: &str,
        input: String,
        done: Done,
    ) -> Box<dyn Fn() + Send + Sync>;

    /// Names at or below `prefix` the caller may list.
    ///
    /// # Errors
    /// Identity, or the audit log.
    fn list_secrets(&self, caller: &Caller, prefix: &str) -> Result<Vec<String>, Declined>;

    /// The value at `path`, for the model (`reveal_to_agent: true` only).
    ///
    /// # Errors
    /// Identity, the policy, no such secret.
    fn reveal(&self, caller: &Caller, path: &str) -> Result<RevealedText, Declined>;

    /// The agent a bearer token proves; a missing or unknown token is on the record.
    fn token_agent(&self, token: Option<&BearerToken>, from: &str) -> Option<String>;
}

/// The backend in this process: a [`Server`] without a socket, the caller's identity this
/// process's OS user (as for a local `agentsec-run`) or a bearer token.
pub struct Local {
    server: Server,
    me: Arc<OsIdentity>,
}

impl Local {
    /// A backend on `server` (started with [`Server::start_in_process`]).
    ///
    /// # Errors
    /// This process's user cannot be looked up.
    pub fn new(server: Server) -> std::io::Result<Self> {
        Ok(Local {
            server,
            me: Arc::new(OsIdentity::of_this_process()?),
        })
    }

    /// Stops the workers, letting runs finish, and syncs the audit log.
    pub fn shutdown(self) {
        self.server.shutdown();
    }

    fn who<'a>(&'a self, caller: &'a Caller) -> Who<'a> {
        Who {
            agent: &caller.agent,
            peer: &self.me,
            token: caller.token.as_deref(),
        }
    }
}

impl Backend for Local {
    fn tools(&self, caller: &Caller) -> Result<Vec<ToolEntry>, Declined> {
        self.server.tools(self.who(caller))
    }

    fn call(
        &self,
        caller: &Caller,
        skill: &str,
        input: String,
        done: Done,
    ) -> Box<dyn Fn() + Send + Sync> {
        let cancel = CancelToken::new();
        let params = RunParams {
            agent: caller.agent.clone(),
            skill: SkillSpec {
                installed: Some(skill.to_owned()),
                component: None,
                name: None,
            },
            input,
            token: caller.token.as_deref().cloned(),
        };
        self.server
            .call(params, Arc::clone(&self.me), cancel.clone(), done);
        Box::new(move || cancel.cancel())
    }

    fn list_secrets(&self, caller: &Caller, prefix: &str) -> Result<Vec<String>, Declined> {
        self.server.list_secrets(self.who(caller), prefix)
    }

    fn reveal(&self, caller: &Caller, path: &str) -> Result<RevealedText, Declined> {
        let revealed = self.server.reveal(self.who(caller), path)?;
        // The one copy into text: the value goes into a JSON-RPC message next.
        let value = std::str::from_utf8(revealed.value.expose_secret())
            .map(|v| Zeroizing::new(v.to_owned()))
            .map_err(|_| {
                (
                    agentsec_server::Refused::Usage,
                    format!("invalid-path: `{}` holds binary data", revealed.path),
                )
            })?;
        Ok(RevealedText {
            path: revealed.path,
            value,
        })
    }

    fn token_agent(&self, token: Option<&BearerToken>, from: &str) -> Option<String> {
        self.server.token_agent(token, from)
    }
}
