//! The MCP server: tools from skills, `secrets_list` and `secrets_get`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentsec_server::{Declined, Refused, Rendered, ToolEntry};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::backend::{Backend, Caller};

/// The tool that lists secret names.
pub const SECRETS_LIST: &str = "secrets_list";
/// The tool that hands a value to the model (`reveal_to_agent: true` only).
pub const SECRETS_GET: &str = "secrets_get";

/// How often the tool list is compared with the skills directory and the policy.
///
/// Reason: a skill installed or a grant changed should show up in the harness within a
/// second or two (`notifications/tools/list_changed`); one listing a second is cheap (the
/// components are cached).
const TOOLS_POLL: Duration = Duration::from_secs(1);

/// The request extension the HTTP transport sets once a bearer token proved an agent.
#[derive(Clone)]
pub(crate) struct Proven(pub(crate) Caller);

/// The MCP server of one session. Over stdio the agent is fixed; over HTTP it is what
/// each request's token proves.
#[derive(Clone)]
pub struct Mcp {
    backend: Arc<dyn Backend>,
    agent: Option<String>,
    /// Tool name → skill name, from the last listing (a skill name may hold a `.`, which
    /// tool names do not).
    names: Arc<Mutex<HashMap<String, String>>>,
}

impl Mcp {
    /// A server for `agent` (stdio), or for whichever agent each request proves (`None`,
    /// HTTP).
    pub fn new(backend: Arc<dyn Backend>, agent: Option<String>) -> Self {
        Mcp {
            backend,
            agent,
            names: Arc::default(),
        }
    }

    fn caller(&self, extensions: &rmcp::model::Extensions) -> Result<Caller, McpError> {
        if let Some(agent) = &self.agent {
            return Ok(Caller {
                agent: agent.clone(),
                token: None,
            });
        }
        extensions
            .get::<hyper::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Proven>())
            .map(|p| p.0.clone())
            .ok_or_else(|| {
                McpError::invalid_request("no agent: the request carried no bearer token", None)
            })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Backend) -> T + Send + 'static,
    ) -> Result<T, McpError> {
        let backend = Arc::clone(&self.backend);
        tokio::task::spawn_blocking(move || f(&*backend))
            .await
            .map_err(|e| McpError::internal_error(format!("agentsec: {e}"), None))
    }

    async fn tool_list(&self, caller: Caller) -> Result<Vec<Tool>, Declined> {
        let entries = self
            .blocking(move |b| b.tools(&caller))
            .await
            .map_err(|e| (Refused::Usage, e.message.to_string()))??;
        let mut names = HashMap::new();
        let mut tools = Vec::with_capacity(entries.len() + 2);
        for entry in entries {
            let name = tool_name(&entry.name);
            if name == SECRETS_LIST || name == SECRETS_GET || names.contains_key(&name) {
                tracing::warn!(
                    "skill `{}` is not offered: its tool name `{name}` is taken",
                    entry.name
                );
                continue;
            }
            tools.push(skill_tool(&name, &entry));
            names.insert(name, entry.name);
        }
        tools.push(Tool::new(
            SECRETS_LIST,
            "Lists the names of the secrets this agent may use (never their values). Skills use them; pass a prefix such as `databases` to list part of the tree.",
            schema(json!({
                "type": "object",
                "properties": { "prefix": { "type": "string", "description": "A dotted path prefix, e.g. `databases.postgres`; all names when absent." } },
                "additionalProperties": false,
            })),
        ));
        tools.push(Tool::new(
            SECRETS_GET,
            "Returns the value of one secret. Refused unless the operator allows this agent to see that value (`reveal_to_agent: true`); prefer the skills, which use secrets without showing them to you.",
            schema(json!({
                "type": "object",
                "properties": { "path": { "type": "string", "description": "The secret's dotted path, as secrets_list names it." } },
                "required": ["path"],
                "additionalProperties": false,
            })),
        ));
        if let Ok(mut map) = self.names.lock() {
            *map = names;
        }
        Ok(tools)
    }

    async fn run_skill(
        &self,
        caller: Caller,
        tool: &str,
        arguments: Option<JsonObject>,
        ct: tokio_util::sync::CancellationToken,
    ) -> CallToolResult {
        let skill = self
            .names
            .lock()
            .ok()
            .and_then(|m| m.get(tool).cloned())
            .unwrap_or_else(|| tool.to_owned());
        let input = Value::Object(arguments.unwrap_or_default()).to_string();
        let (tx, rx) = tokio::sync::oneshot::channel::<Rendered>();
        // Queueing may wait for room (back-pressure) and --connect writes to a socket: off
        // the async threads.
        let name = skill.clone();
        let queued = self
            .blocking(move |b| {
                b.call(
                    &caller,
                    &name,
                    input,
                    Box::new(move |rendered| {
                        let _ = tx.send(rendered);
                    }),
                )
            })
            .await;
        let cancel = match queued {
            Ok(cancel) => cancel,
            Err(e) => {
                return CallToolResult::error(vec![ContentBlock::text(e.message.to_string())]);
            }
        };
        let rendered = tokio::select! {
            r = rx => r.ok(),
            () = ct.cancelled() => {
                // notifications/cancelled: stop the skill; its outcome is not sent.
                cancel();
                None
            }
        };
        match rendered {
            Some(rendered) => rendered_result(&skill, &rendered),
            None => CallToolResult::error(vec![ContentBlock::text(format!(
                "agentsec-run: skill `{skill}` was cancelled"
            ))]),
        }
    }
}

/// A skill name as a tool name: `[A-Za-z0-9_-]` only (several clients and model APIs
/// accept nothing else), so a `.` becomes `_`.
fn tool_name(skill: &str) -> String {
    skill
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn schema(v: Value) -> Arc<JsonObject> {
    Arc::new(match v {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    })
}

/// The tool of a skill: its `agentsec:tool` description and input schema, or a plain
/// description and `{"type": "object"}`.
fn skill_tool(name: &str, entry: &ToolEntry) -> Tool {
    let parsed = entry
        .tool
        .as_deref()
        .and_then(|t| match serde_json::from_str::<Value>(t) {
            Ok(Value::Object(o)) => Some(o),
            _ => {
                tracing::warn!(
                    "skill `{}`: its agentsec:tool section is not a JSON object; offered without it",
                    entry.name
                );
                None
            }
        });
    let description = parsed
        .as_ref()
        .and_then(|o| o.get("description"))
        .and_then(Value::as_str)
        .map_or_else(
            || format!("Runs the agentsec skill `{}`.", entry.name),
            str::to_owned,
        );
    let input_schema = parsed
        .as_ref()
        .and_then(|o| o.get("input_schema"))
        .and_then(Value::as_object)
        .filter(|s| s.get("type").and_then(Value::as_str) == Some("object"))
        .cloned()
        .unwrap_or_else(|| {
            let mut o = JsonObject::new();
            o.insert("type".to_owned(), json!("object"));
            o
        });
    Tool::new(name.to_owned(), description, Arc::new(input_schema))
}

/// A run's outcome as a tool result: the redacted result (and `structuredContent` when
/// it is a JSON object), or `isError` with what `agentsec-run` says. The skill's own
/// stdout and stderr go to our stderr, never into the protocol stream.
fn rendered_result(skill: &str, rendered: &Rendered) -> CallToolResult {
    let prints = rendered.stderr.len().saturating_sub(rendered.message.len());
    if let Some(own) = rendered.stderr.get(..prints)
        && !own.is_empty()
    {
        use std::io::Write as _;
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "agentsec mcp: skill `{skill}` printed:");
        let _ = err.write_all(own);
    }
    if rendered.exit_code == 0 {
        let text = String::from_utf8_lossy(&rendered.stdout);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let mut result = CallToolResult::success(vec![ContentBlock::text(text.to_owned())]);
        if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text) {
            result.structured_content = Some(Value::Object(o));
        }
        return result;
    }
    let message = rendered.message.trim_end();
    let message = if message.is_empty() {
        format!(
            "agentsec-run: skill `{skill}` failed (exit {})",
            rendered.exit_code
        )
    } else {
        message.to_owned()
    };
    CallToolResult::error(vec![ContentBlock::text(message)])
}

fn declined_result((_, message): Declined) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

fn string_arg(arguments: Option<&JsonObject>, key: &str) -> Result<Option<String>, String> {
    match arguments.and_then(|a| a.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

impl ServerHandler for Mcp {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        );
        info.server_info = Implementation::new("agentsec", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "Each tool runs an agentsec skill in a sandbox; the skill uses the credentials it needs without showing them to you, and its result has every released value redacted. secrets_list names the secrets this agent may use; secrets_get returns a value only where the operator allows it."
                .to_owned(),
        );
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = self.caller(&context.extensions)?;
        match self.tool_list(caller).await {
            Ok(tools) => Ok(ListToolsResult::with_all_items(tools)),
            Err((_, message)) => Err(McpError::invalid_request(message, None)),
        }
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = self.caller(&context.extensions)?;
        let args = request.arguments;
        let result = match &*request.name {
            SECRETS_LIST => match string_arg(args.as_ref(), "prefix") {
                Err(e) => CallToolResult::error(vec![ContentBlock::text(e)]),
                Ok(prefix) => {
                    let prefix = prefix.unwrap_or_default();
                    match self
                        .blocking(move |b| b.list_secrets(&caller, &prefix))
                        .await?
                    {
                        Ok(names) => {
                            let value = json!({ "names": names });
                            let mut r = CallToolResult::success(vec![ContentBlock::text(
                                value.to_string(),
                            )]);
                            r.structured_content = Some(value);
                            r
                        }
                        Err(d) => declined_result(d),
                    }
                }
            },
            SECRETS_GET => match string_arg(args.as_ref(), "path") {
                Err(e) => CallToolResult::error(vec![ContentBlock::text(e)]),
                Ok(None) => CallToolResult::error(vec![ContentBlock::text(
                    "`path` is required: the secret's dotted path, as secrets_list names it",
                )]),
                Ok(Some(path)) => match self.blocking(move |b| b.reveal(&caller, &path)).await? {
                    Ok(revealed) => {
                        CallToolResult::success(vec![ContentBlock::text(revealed.value.as_str())])
                    }
                    Err(d) => declined_result(d),
                },
            },
            tool => self.run_skill(caller, tool, args, context.ct.clone()).await,
        };
        Ok(result.into())
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // Follow the skills directory and the policy: tell the client when its tool list
        // changed. Ends with the session (the notification cannot be sent any more).
        let Ok(caller) = self.caller(&context.extensions) else {
            return;
        };
        let me = self.clone();
        let peer = context.peer.clone();
        tokio::spawn(async move {
            let mut last = me.tool_list(caller.clone()).await.ok();
            loop {
                tokio::time::sleep(TOOLS_POLL).await;
                let now = me.tool_list(caller.clone()).await.ok();
                if now != last {
                    last = now;
                    if peer.notify_tool_list_changed().await.is_err() {
                        return;
                    }
                }
                if peer.is_transport_closed() {
                    return;
                }
            }
        });
    }
}
