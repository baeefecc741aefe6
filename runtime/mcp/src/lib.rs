//! `agentsec mcp`: skills as MCP tools, and audited secret access, for any agent harness.
//!
//! The model gets results, not credentials. Each skill the agent may run (its declared
//! needs granted by the policy) is a tool named after the skill, described by the skill's
//! `agentsec:tool` section; a call runs the skill with the arguments as its input and
//! returns its redacted result. Two more tools name secrets: `secrets_list` (names only)
//! and `secrets_get`, which hands a value to the model and is refused unless the granting
//! rule says `reveal_to_agent: true`. No tool takes an agent id: the model cannot choose
//! who it is. Over stdio the agent is the `--agent` the harness started us with (proven by
//! this process's OS user, as for `agentsec-run`); over HTTP every request carries a bearer
//! token that the policy binds to one agent id (`tokens_sha256`).
//!
//! The protocol is [`rmcp`]'s; this crate adds the mapping to agentsec's operations, which
//! a [`Backend`] performs: [`Local`] (in this process, on an
//! [`agentsec_server::Server`] without a socket) or [`Daemon`] (a front end of
//! `agentsec serve`, which then checks who we are).

mod backend;
mod daemon;
mod handler;
mod http;

pub use backend::{Backend, Caller, Local, RevealedText};
pub use daemon::Daemon;
pub use handler::{Mcp, SECRETS_GET, SECRETS_LIST};
pub use http::{HttpError, Listen, Tls, serve_http};

/// Largest JSON-RPC message read from a client, in bytes, beyond the skill input limit.
///
/// Reason: a tool call's arguments become the skill's input (bounded by `--max-input`);
/// the envelope around them is small. Anything larger is refused before it is parsed.
pub const MESSAGE_OVERHEAD: usize = 64 * 1024;

/// Serves MCP over this process's stdin and stdout until the client closes stdin (or the
/// process is told to stop). Nothing but JSON-RPC is written to stdout.
///
/// # Errors
/// The transport failed before the session started.
pub async fn serve_stdio(mcp: Mcp, max_message: usize) -> Result<(), std::io::Error> {
    use rmcp::ServiceExt as _;
    let transport = rmcp::transport::async_rw::AsyncRwTransport::new_server(
        tokio::io::stdin(),
        tokio::io::stdout(),
    )
    .with_max_line_length(max_message);
    let running = mcp
        .serve(transport)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let _ = running.waiting().await;
    Ok(())
}
