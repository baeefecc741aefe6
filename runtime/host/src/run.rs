//! Running a loaded skill once.

use std::sync::{Arc, Mutex};

use agentsec_audit::{AuditLog, RunContext};
use agentsec_policy::{AgentId, Policy};
use agentsec_secrets::SecretStore;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap};
use wasmtime_wasi::I32Exit;
use zeroize::Zeroizing;

use crate::audit_path::PathRecorder;
use crate::engine::{Host, LoadedSkill};
use crate::limits::{EPOCH_TICK, LimitKind, Limits};
use crate::redact::Redactor;
use crate::secrets_api::{HostStop, RunScope, RunStats, SecretsCtx};
use crate::shapes::{ShapeAction, redact_shapes_segments};
use crate::state::{Limiter, SkillState, sandbox_wasi};

/// Everything one run needs besides the skill.
pub struct RunRequest {
    /// The agent the skill runs for.
    pub agent: AgentId,
    /// JSON text passed to the skill's `run`.
    pub input: String,
    /// The access-control policy.
    pub policy: Arc<Policy>,
    /// Where secret values come from.
    pub store: Arc<dyn SecretStore>,
    /// Where every request is recorded.
    pub audit: Arc<Mutex<AuditLog>>,
    /// This run's limits.
    pub limits: Limits,
    /// Identifies the run in audit records (see [`agentsec_audit::new_run_id`]).
    pub run_id: String,
    /// What to do with credential-shaped strings in the output.
    pub on_credential_shape: ShapeAction,
    /// When this run's audit records are made durable.
    pub audit_sync: AuditSync,
}

/// When the audit records of a run are made durable (`fsync`).
///
/// Either way, a record is **written** to the log (visible to every reader,
/// and kept if this process dies) before the value it records is copied into
/// the sandbox, and a failed write traps the call with nothing released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditSync {
    /// One `fsync` at the end of the run, before the result, stdout or
    /// stderr is returned; if it fails the run ends
    /// [`RunEnd::AuditNotDurable`] and none of the skill's output is returned.
    /// A skill has no network, files or other channel out of the sandbox, so
    /// a released value can only leave through that output, and the records
    /// are on disk first. What a power loss *during* the run can lose is
    /// records of values that never left the machine's memory.
    #[default]
    Run,
    /// An `fsync` per record, before its value is released (~0.15-3 ms
    /// each on a real disk; see `benches/README.md`). For operators who
    /// want every request on disk even if the machine loses power mid-run.
    Record,
}

/// How a run ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunEnd {
    /// `run` returned `ok(result)` (redacted).
    Ok(String),
    /// `run` returned `err(message)` (redacted).
    SkillError(String),
    /// The skill called `wasi:cli/exit` (Rust: `std::process::exit`) with
    /// this status instead of returning from `run`, so there is no result,
    /// whatever the status (0 included). WASI p2 carries only success (0) or
    /// failure (1).
    Exited(i32),
    /// A limit stopped the skill.
    Limit(LimitKind),
    /// The skill trapped (crashed); the message is redacted.
    Trap(String),
    /// An audit record could not be written: the call trapped and nothing
    /// was released.
    AuditFailed(String),
    /// The run's audit records were written but could not be made durable
    /// (`fsync` failed): nothing the skill produced is returned.
    AuditNotDurable(String),
    /// The output contained credential shapes (the kinds are listed) and the
    /// run was asked to fail in that case; no output is returned.
    CredentialInOutput(Vec<&'static str>),
}

/// The outcome of a run. Every byte in it has been redacted.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunReport {
    /// How the run ended.
    pub end: RunEnd,
    /// What the skill wrote to stdout.
    pub stdout: Vec<u8>,
    /// What the skill wrote to stderr.
    pub stderr: Vec<u8>,
    /// Counters.
    pub stats: RunStats,
}

impl Host {
    /// Runs `skill` once under `request`'s policy, store, audit log and limits.
    ///
    /// The store (wasmtime's, with the skill's memory) and every secret copy
    /// it held are dropped before this returns.
    pub fn run(&self, skill: &LoadedSkill, request: RunRequest) -> RunReport {
        let RunRequest {
            agent,
            input,
            policy,
            store,
            audit,
            limits,
            run_id,
            on_credential_shape,
            audit_sync,
        } = request;
        let run = RunContext::new(
            agent.as_str(),
            skill.name.as_str(),
            skill.sha256.as_str(),
            run_id,
        );
        let (wasi, captured) = sandbox_wasi(&limits);
        let state = SkillState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(&limits),
            secrets: SecretsCtx {
                scope: Arc::new(RunScope {
                    agent,
                    skill: skill.skill_ref.clone(),
                    run,
                    policy,
                    store,
                }),
                audit: Arc::clone(&audit),
                sync_each_record: audit_sync == AuditSync::Record,
                max_calls: limits.max_secret_calls,
                max_path_len: limits.max_path_len,
                stats: RunStats::default(),
                redactor: Redactor::with_limit(limits.max_redaction_bytes),
                paths: PathRecorder::default(),
                stop: None,
                path_buf: Zeroizing::new(String::new()),
            },
        };
        let mut wasm_store = Store::new(&self.engine, state);
        wasm_store.limiter(|state| &mut state.limiter);
        let ticks = limits
            .timeout
            .as_nanos()
            .div_ceil(EPOCH_TICK.as_nanos())
            .max(1);
        wasm_store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1));
        wasm_store.epoch_deadline_trap();

        let outcome = skill
            .pre
            .instantiate(&mut wasm_store)
            .and_then(|instance| instance.call_run(&mut wasm_store, &input));

        let mut state = wasm_store.into_data();
        let stdout = captured.stdout.contents();
        let stderr = captured.stderr.contents();
        let output_full = stdout.len() >= limits.max_output || stderr.len() >= limits.max_output;
        // The text in `end` is redacted below, together with stdout and stderr.
        let mut end = match outcome {
            Ok(_) if output_full => RunEnd::Limit(LimitKind::Output),
            Ok(Ok(result)) if result.len() > limits.max_output => RunEnd::Limit(LimitKind::Output),
            Ok(Ok(result)) => RunEnd::Ok(result),
            Ok(Err(message)) => RunEnd::SkillError(bounded(&message, limits.max_output)),
            Err(error) => match (&state.secrets.stop, state.limiter.hit) {
                (Some(HostStop::AuditFailed(why)), _) => RunEnd::AuditFailed(why.clone()),
                (Some(HostStop::Limit(kind)), _) => RunEnd::Limit(*kind),
                (None, Some(kind)) => RunEnd::Limit(kind),
                (None, None) if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) => {
                    RunEnd::Limit(LimitKind::Timeout)
                }
                (None, None) if error.downcast_ref::<Trap>() == Some(&Trap::StackOverflow) => {
                    RunEnd::Limit(LimitKind::Stack)
                }
                (None, None) if output_full => RunEnd::Limit(LimitKind::Output),
                (None, None) if let Some(exit) = error.downcast_ref::<I32Exit>() => {
                    RunEnd::Exited(exit.0)
                }
                (None, None) => RunEnd::Trap(describe_trap(&error)),
            },
        };
        let (stdout, stderr, mut shapes_found) =
            redact_outputs(&mut state.secrets.redactor, &stdout, &stderr, &mut end);
        let stats = state.secrets.stats;
        // Every record of this run is on disk before any output is returned.
        let synced = match audit.lock() {
            Ok(mut log) => log.sync().map_err(|e| e.to_string()),
            Err(_) => Err("audit log lock poisoned".to_owned()),
        };
        if let Err(why) = synced {
            return RunReport {
                end: RunEnd::AuditNotDurable(why),
                stdout: Vec::new(),
                stderr: Vec::new(),
                stats,
            };
        }
        if on_credential_shape == ShapeAction::Fail && !shapes_found.is_empty() {
            shapes_found.sort_unstable();
            shapes_found.dedup();
            let end = RunEnd::CredentialInOutput(shapes_found);
            return RunReport {
                end,
                stdout: Vec::new(),
                stderr: Vec::new(),
                stats,
            };
        }
        RunReport {
            end,
            stdout,
            stderr,
            stats,
        }
    }
}

/// Redacts the skill's stdout, its stderr and the text in `end` (result,
/// error or trap message) as **one stream, in that order**: the order in
/// which `agentsec-run` writes them (stdout and stderr to its stderr, then
/// the result to its stdout or the message to its stderr), so a value split
/// across them is caught even when the caller reads both of its streams as
/// one (`2>&1`). Released values first (they are named by path), then
/// credential shapes. Returns the redacted stdout and stderr and the shapes.
fn redact_outputs(
    redactor: &mut Redactor,
    stdout: &[u8],
    stderr: &[u8],
    end: &mut RunEnd,
) -> (Vec<u8>, Vec<u8>, Vec<&'static str>) {
    let text = match end {
        RunEnd::Ok(text) | RunEnd::SkillError(text) | RunEnd::Trap(text) => Some(text),
        _ => None,
    };
    let third: &[u8] = text.as_deref().map_or(&[], |t| t.as_bytes());
    let values = redactor.redact_segments(&[stdout, stderr, third]);
    let parts: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    let (mut clean, found) = redact_shapes_segments(&parts);
    let third = clean.pop().unwrap_or_default();
    let stderr = clean.pop().unwrap_or_default();
    let stdout = clean.pop().unwrap_or_default();
    if let Some(text) = text {
        let mut old = std::mem::replace(text, self::text(third));
        zeroize::Zeroize::zeroize(&mut old);
    }
    (stdout, stderr, found)
}

/// Redacted output as text (replacement markers are ASCII, so valid UTF-8
/// stays valid; anything else is shown lossily).
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The trap code and the guest frames, without host internals.
fn describe_trap(error: &wasmtime::Error) -> String {
    let mut text = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => error.to_string(),
    };
    if let Some(trace) = error.downcast_ref::<wasmtime::WasmBacktrace>() {
        text.push('\n');
        text.push_str(&trace.to_string());
    }
    text
}

/// A skill's error message, cut at `max` bytes on a character boundary.
fn bounded(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_owned();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut at {max} bytes)", &message[..end])
}
