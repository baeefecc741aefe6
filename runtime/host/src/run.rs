//! Running a loaded skill once.

use std::sync::{Arc, Mutex};

use agentsec_audit::{AuditLog, RunContext};
use agentsec_policy::{AgentId, Policy};
use agentsec_secrets::SecretStore;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap};

use crate::engine::{Host, LoadedSkill};
use crate::limits::{EPOCH_TICK, LimitKind, Limits};
use crate::redact::Redactor;
use crate::secrets_api::{HostStop, RunScope, RunStats, SecretsCtx};
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
}

/// How a run ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunEnd {
    /// `run` returned `ok(result)` (redacted).
    Ok(String),
    /// `run` returned `err(message)` (redacted).
    SkillError(String),
    /// A limit stopped the skill.
    Limit(LimitKind),
    /// The skill trapped (crashed); the message is redacted.
    Trap(String),
    /// An audit record could not be written: the call trapped and nothing
    /// was released.
    AuditFailed(String),
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
                audit,
                max_calls: limits.max_secret_calls,
                stats: RunStats::default(),
                redactor: Redactor::default(),
                stop: None,
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

        let state = wasm_store.into_data();
        let redactor = &state.secrets.redactor;
        let stdout = redactor.redact(&captured.stdout.contents());
        let stderr = redactor.redact(&captured.stderr.contents());
        let output_full = stdout.len() >= limits.max_output || stderr.len() >= limits.max_output;
        let end = match outcome {
            Ok(_) if output_full => RunEnd::Limit(LimitKind::Output),
            Ok(Ok(result)) if result.len() > limits.max_output => RunEnd::Limit(LimitKind::Output),
            Ok(Ok(result)) => RunEnd::Ok(redactor.redact_str(&result)),
            Ok(Err(message)) => {
                RunEnd::SkillError(redactor.redact_str(&bounded(&message, limits.max_output)))
            }
            Err(error) => match (&state.secrets.stop, state.limiter.hit) {
                (Some(HostStop::AuditFailed(why)), _) => RunEnd::AuditFailed(why.clone()),
                (Some(HostStop::Limit(kind)), _) => RunEnd::Limit(*kind),
                (None, Some(kind)) => RunEnd::Limit(kind),
                (None, None) if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) => {
                    RunEnd::Limit(LimitKind::Timeout)
                }
                (None, None) if output_full => RunEnd::Limit(LimitKind::Output),
                (None, None) => RunEnd::Trap(redactor.redact_str(&describe_trap(&error))),
            },
        };
        RunReport {
            end,
            stdout,
            stderr,
            stats: state.secrets.stats,
        }
    }
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
