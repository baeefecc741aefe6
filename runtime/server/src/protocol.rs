//! The wire protocol: JSON-RPC 2.0, one message per line (newline-delimited JSON).
//!
//! A client sends requests and may pipeline them (send many before reading); the daemon
//! answers each with a response carrying the same `id`, in completion order. Methods:
//!
//! - `run` — params `{"agent": ID, "skill": {"installed": NAME} | {"component": BASE64,
//!   "name": NAME?}, "input": JSON-TEXT}`; result `{"exit_code": N, "stdout": BASE64,
//!   "stderr": BASE64}`: exactly what a local `agentsec-run` would have written to its
//!   stdout and stderr, and its exit code. A refusal (identity, limit, unknown skill) is a
//!   result with its exit code, like a local run's; JSON-RPC errors are for messages that
//!   are not valid requests.
//! - `status` — no params; result `{"version", "workers", "queued", "running",
//!   "policy_loaded", "store_loaded"}`.
//!
//! Errors: `-32700` (not JSON), `-32600` (not a JSON-RPC 2.0 request, or over the message
//! size limit, after which the connection is closed), `-32601` (unknown method), `-32602`
//! (bad params).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// JSON-RPC: the message is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: no such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the params do not fit the method.
pub const INVALID_PARAMS: i64 = -32602;

/// One request as read from the wire.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// Must be `"2.0"`.
    pub jsonrpc: String,
    /// Echoed in the response; absent for a notification (answered with nothing).
    #[serde(default)]
    pub id: Option<Value>,
    /// The method.
    pub method: String,
    /// Its params.
    #[serde(default)]
    pub params: Value,
}

/// The params of `run`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    /// The agent id to act as (checked against the peer's OS identity).
    pub agent: String,
    /// Which skill.
    pub skill: SkillSpec,
    /// The skill's JSON input, as text (default `{}`).
    #[serde(default = "empty_object")]
    pub input: String,
    /// A bearer token that proves `agent` (the policy's `tokens_sha256`), instead of the
    /// peer's OS identity: for a front end serving callers that are not local users
    /// (MCP over HTTP).
    #[serde(default)]
    pub token: Option<BearerToken>,
}

/// A bearer token as a caller presents it: zeroized on drop, never shown (no `Display`,
/// `Debug` prints nothing of it), compared only by its SHA-256.
#[derive(Clone)]
pub struct BearerToken(zeroize::Zeroizing<String>);

impl BearerToken {
    /// Wraps a token.
    pub fn new(token: zeroize::Zeroizing<String>) -> Self {
        BearerToken(token)
    }

    /// Its SHA-256, as `tokens_sha256` lists it.
    pub fn sha256(&self) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(self.0.as_bytes()).into()
    }

    /// The token itself, for sending it on (to the daemon).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for BearerToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(d)?);
        Ok(BearerToken(text))
    }
}

fn empty_object() -> String {
    "{}".to_owned()
}

/// A skill to run: `{"installed": NAME}` (a component in the daemon's `--skills DIR`), or
/// `{"component": BASE64, "name": NAME?}` (sent by the client).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillSpec {
    /// The file name (with or without `.wasm`) of a component in `--skills DIR`.
    #[serde(default)]
    pub installed: Option<String>,
    /// A component sent by the client: its bytes, base64 (standard alphabet, padded).
    #[serde(default)]
    pub component: Option<String>,
    /// What to call a sent component in messages and audit records (default `skill`); it
    /// does not make `skills:` name entries match (only installed skills are named).
    #[serde(default)]
    pub name: Option<String>,
}

/// The result of `run`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RunResult {
    /// The exit code a local `agentsec-run` would have returned.
    pub exit_code: u8,
    /// What it would have written to stdout, base64.
    pub stdout: String,
    /// What it would have written to stderr, base64.
    pub stderr: String,
    /// What agentsec said about the run, without the skill's own output (see
    /// [`crate::Rendered::message`]).
    #[serde(default)]
    pub message: String,
}

impl RunResult {
    /// A result from raw output.
    pub fn new(exit_code: u8, stdout: &[u8], stderr: &[u8]) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        RunResult {
            exit_code,
            stdout: b64.encode(stdout),
            stderr: b64.encode(stderr),
            message: String::new(),
        }
    }

    /// With agentsec's own message about the run.
    #[must_use]
    pub fn with_message(mut self, message: &str) -> Self {
        message.clone_into(&mut self.message);
        self
    }

    /// The decoded stdout and stderr.
    ///
    /// # Errors
    /// Either is not valid base64.
    pub fn output(&self) -> Result<(Vec<u8>, Vec<u8>), base64::DecodeError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok((b64.decode(&self.stdout)?, b64.decode(&self.stderr)?))
    }
}

/// A success response line (with its `\n`).
pub fn response(id: &Value, result: &impl Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": result,
    }))
    .unwrap_or_default();
    line.push(b'\n');
    line
}

/// An error response line (with its `\n`). `id` is `null` when the request had none
/// that could be read.
pub fn error(id: Option<&Value>, code: i64, message: &str) -> Vec<u8> {
    let mut line = serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": id.unwrap_or(&Value::Null),
        "error": { "code": code, "message": message },
    }))
    .unwrap_or_default();
    line.push(b'\n');
    line
}

/// A `run` request line, as a client sends it.
pub fn run_request(id: u64, agent: &str, skill: &ClientSkill<'_>, input: &str) -> Vec<u8> {
    let skill = match skill {
        ClientSkill::Installed(name) => serde_json::json!({ "installed": name }),
        ClientSkill::Component { bytes, name } => serde_json::json!({
            "component": base64::engine::general_purpose::STANDARD.encode(bytes),
            "name": name,
        }),
    };
    let mut line = serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "run",
        "params": { "agent": agent, "skill": skill, "input": input },
    }))
    .unwrap_or_default();
    line.push(b'\n');
    line
}

/// The skill of a client's `run` request.
#[derive(Debug, Clone, Copy)]
pub enum ClientSkill<'a> {
    /// Installed in the daemon's skills directory, by file name.
    Installed(&'a str),
    /// The component's bytes, and its name for messages.
    Component {
        /// The component.
        bytes: &'a [u8],
        /// Its name.
        name: &'a str,
    },
}

/// A response as a client reads it.
#[derive(Debug, Deserialize)]
pub struct Response {
    /// The request's id.
    #[serde(default)]
    pub id: Value,
    /// The result, on success.
    #[serde(default)]
    pub result: Option<Value>,
    /// The error, on failure.
    #[serde(default)]
    pub error: Option<ErrorObject>,
}

/// A JSON-RPC error object.
#[derive(Debug, Deserialize)]
pub struct ErrorObject {
    /// The code.
    pub code: i64,
    /// The message.
    pub message: String,
}
