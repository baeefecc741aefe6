//! `agentsec token new --agent ID`: a bearer token for `agentsec mcp --listen`.
//!
//! The token is printed once, on stdout, and kept nowhere; the policy keeps only its
//! SHA-256 (`agents: ID: tokens_sha256:`), so a policy file that leaks proves no one.

use std::io::Write as _;

use agentsec_policy::AgentId;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::error::{McpError, Tool};
use crate::exit;

/// What a token starts with, so that secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "agentsec_";

/// Random bytes in a token. Reason: 256 bits, as much as the SHA-256 that stands for it.
const TOKEN_BYTES: usize = 32;

/// Make bearer tokens for agents.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Make a token for `--agent`: prints the token (once: it is kept nowhere) on stdout,
    /// and on stderr the policy lines that bind its SHA-256 to the agent.
    #[command(after_help = exit::help(exit::TOKEN), after_long_help = exit::help(exit::TOKEN))]
    New {
        /// The agent id the token will prove.
        #[arg(long, value_name = "ID")]
        agent: String,
    },
}

/// Runs `agentsec token`.
///
/// # Errors
/// A bad agent id, no randomness, or a closed stdout.
pub fn run(command: Command) -> Result<u8, McpError> {
    let err = |m: String| McpError(Tool::Token, m);
    let Command::New { agent } = command;
    let agent: AgentId = agent.parse().map_err(|e| err(format!("--agent: {e}")))?;
    let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
    getrandom::fill(&mut *bytes).map_err(|e| err(format!("no randomness: {e}")))?;
    let mut token = Zeroizing::new(String::from(TOKEN_PREFIX));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(bytes.as_slice(), &mut token);
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let mut line = Zeroizing::new(token.as_bytes().to_vec());
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&line)
        .and_then(|()| out.flush())
        .map_err(|e| err(format!("cannot write the token to stdout: {e}")))?;
    eprintln!(
        "agentsec token: add to the policy (only the hash; the token above is shown once):\n\nagents:\n  {agent}:\n    tokens_sha256: [\"{digest}\"]\n\nthen pass it as `Authorization: Bearer TOKEN` to agentsec mcp --listen."
    );
    Ok(exit::admin::OK)
}
