//! `agentsec-run --connect`: the same run, through `agentsec serve`.
//!
//! The client sends the component's bytes (read with the caller's own permissions) or the
//! name of a skill installed in the daemon's skills directory, never a path for the
//! daemon to open; the daemon decides who the caller is from the socket.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;

use agentsec_host::limits::{DEFAULT_MAX_COMPONENT_SIZE, DEFAULT_MAX_INPUT};
use agentsec_server::Rendered;
use agentsec_server::protocol::{self, ClientSkill, RunResult};

use super::{Args, write_rendered};
use crate::error::RunError;

/// Largest response accepted from the daemon.
///
/// Reason: a response carries the skill's result, stdout and stderr (each bounded by the
/// daemon's `--max-output`, 1 MiB by default) in base64; this leaves room for a daemon
/// configured far above the default without letting a broken one exhaust memory.
const MAX_RESPONSE: u64 = 256 * 1024 * 1024;

fn config(message: impl Into<String>) -> RunError {
    RunError::Config(message.into())
}

/// The first flag given that only a local run uses (the daemon's configuration decides).
fn local_only_flag(args: &Args) -> Option<&'static str> {
    local_only(&args.config, &args.limits, args.skills_dir.is_some())
}

/// The first of the configuration and limit flags given (with `skills`: `--skills`): what
/// a front end of `agentsec serve` refuses, since the daemon's own configuration decides.
pub(crate) fn local_only(
    c: &super::ConfigFlags,
    l: &super::LimitFlags,
    skills: bool,
) -> Option<&'static str> {
    [
        (c.secrets.is_some(), "--secrets"),
        (c.env.is_some(), "--env"),
        (c.vault_config.is_some(), "--vault-config"),
        (!c.policy.is_empty(), "--policy"),
        (c.audit_log.is_some(), "--audit-log"),
        (c.audit_key.is_some(), "--audit-key"),
        (c.audit_max_size.is_some(), "--audit-max-size"),
        (c.audit_sync.is_some(), "--audit-sync"),
        (skills, "--skills"),
        (l.timeout.is_some(), "--timeout"),
        (l.max_memory.is_some(), "--max-memory"),
        (l.max_output.is_some(), "--max-output"),
        (l.max_secret_calls.is_some(), "--max-secret-calls"),
        (l.on_credential_shape.is_some(), "--on-credential-shape"),
        (l.max_table_elements.is_some(), "--max-table-elements"),
        (l.max_instances.is_some(), "--max-instances"),
        (l.max_component_size.is_some(), "--max-component-size"),
        (l.max_path_len.is_some(), "--max-path-len"),
        (l.max_input.is_some(), "--max-input"),
        (l.max_functions.is_some(), "--max-functions"),
        (l.max_code_size.is_some(), "--max-code-size"),
        (l.max_redaction_bytes.is_some(), "--max-redaction-bytes"),
        (l.compile_timeout.is_some(), "--compile-timeout"),
    ]
    .into_iter()
    .find_map(|(set, flag)| set.then_some(flag))
}

/// Runs the skill through the daemon on `socket`; prints what a local run prints.
pub(super) fn run(args: &Args, socket: &Path) -> Result<u8, RunError> {
    if let Some(flag) = local_only_flag(args) {
        return Err(config(format!(
            "{flag} is a setting of the daemon (agentsec serve) when running with --connect; drop it, or run locally without --connect"
        )));
    }
    let (Some(skill), Some(agent)) = (&args.skill, &args.agent) else {
        return Err(config("pass SKILL.wasm and --agent ID"));
    };
    let input = super::read_input(&args.input, DEFAULT_MAX_INPUT)?;
    let bytes;
    let name;
    let text = skill.to_string_lossy();
    let spec = if skill.is_file() {
        let mut buf = Vec::new();
        agentsec_policy::bounded::read_file(skill, DEFAULT_MAX_COMPONENT_SIZE, &mut buf)
            .map_err(|e| config(format!("{}: {e}", skill.display())))?;
        bytes = buf;
        name = skill
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-"))
            .unwrap_or_default();
        ClientSkill::Component {
            bytes: &bytes,
            name: &name,
        }
    } else {
        if text.contains('/') || skill.exists() {
            return Err(config(format!(
                "{}: not a component file here; to run a skill installed in the daemon's skills directory, give its name (no `/`)",
                skill.display()
            )));
        }
        name = text.trim_end_matches(".wasm").replace('_', "-");
        ClientSkill::Installed(&text)
    };
    let rendered = request(socket, agent, &spec, &input)?;
    Ok(write_rendered(&rendered, &name))
}

/// One `run` request and its response.
fn request(
    socket: &Path,
    agent: &str,
    skill: &ClientSkill<'_>,
    input: &str,
) -> Result<Rendered, RunError> {
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        config(format!(
            "cannot connect to agentsec serve at {}: {e}; is it running, and may you use its socket?",
            socket.display()
        ))
    })?;
    let line = protocol::run_request(1, agent, skill, input);
    stream
        .write_all(&line)
        .map_err(|e| config(format!("agentsec serve at {}: {e}", socket.display())))?;
    let mut reader = BufReader::new(stream).take(MAX_RESPONSE);
    let mut answer = Vec::new();
    reader
        .read_until(b'\n', &mut answer)
        .map_err(|e| config(format!("agentsec serve at {}: {e}", socket.display())))?;
    if answer.last() != Some(&b'\n') {
        return Err(config(format!(
            "agentsec serve at {} closed the connection without an answer (see its log)",
            socket.display()
        )));
    }
    let response: protocol::Response = serde_json::from_slice(&answer).map_err(|e| {
        config(format!(
            "agentsec serve answered something that is not JSON-RPC: {e}"
        ))
    })?;
    if let Some(error) = response.error {
        return Err(config(format!(
            "agentsec serve refused the request ({}): {}",
            error.code, error.message
        )));
    }
    let result: RunResult = response
        .result
        .ok_or_else(|| config("agentsec serve answered with neither a result nor an error"))
        .and_then(|v| {
            serde_json::from_value(v)
                .map_err(|e| config(format!("agentsec serve's result does not parse: {e}")))
        })?;
    let (stdout, stderr) = result
        .output()
        .map_err(|e| config(format!("agentsec serve's result does not parse: {e}")))?;
    Ok(Rendered {
        exit_code: result.exit_code,
        stdout,
        stderr,
        message: result.message,
    })
}
