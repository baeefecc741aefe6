//! Running a loaded skill once.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use agentsec_audit::{CallerInfo, RunContext};
use agentsec_broker::{Broker, Caller, CallerLimits, CancelToken, RunStats, Stop};
use agentsec_policy::AgentId;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::I32Exit;

use crate::engine::{LoadedSkill, Runtime};
use crate::limits::{LimitKind, LimitOverrides, Limits};
use crate::preflight::{NotStarted, check_declared_needs};
use crate::secrets::SecretsCtx;
use crate::state::{Limiter, SkillState, sandbox_wasi};
use agentsec_redact::Redactor;
use agentsec_redact::{ShapeAction, redact_shapes_segments};

/// How often a run waiting in an async WASI call checks its cancel token.
///
/// Reason: cancellation is rare (a watchdog, a server shutting down) and a
/// few milliseconds of delay are invisible there; checking more often only
/// costs wake-ups.
const CANCEL_POLL: Duration = Duration::from_millis(10);

/// Everything one run needs besides the skill.
#[non_exhaustive]
pub struct RunRequest {
    /// The agent the skill runs for (proven by the caller of the host).
    pub agent: AgentId,
    /// JSON text passed to the skill's `run`.
    pub input: String,
    /// The policy, the store and the audit log (shared by every run).
    pub broker: Arc<Broker>,
    /// This run's limits.
    pub limits: Limits,
    /// Identifies the run in audit records (see [`agentsec_audit::new_run_id`]).
    pub run_id: String,
    /// What to do with credential-shaped strings in the output.
    pub on_credential_shape: ShapeAction,
    /// Trips to stop the run from another thread ([`RunEnd::Cancelled`]).
    pub cancel: CancelToken,
    /// Who asked for the run, as the front door proved it (`caller` in every audit
    /// record of the run).
    pub caller: Option<CallerInfo>,
}

impl RunRequest {
    /// A run for `agent` with `input`, answered by `broker`, under the limits
    /// the broker's policy sets (`sandbox:`), else the defaults.
    pub fn new(
        agent: AgentId,
        input: impl Into<String>,
        broker: Arc<Broker>,
        run_id: String,
    ) -> Self {
        let (limits, on_credential_shape) =
            Limits::resolve(&LimitOverrides::default(), broker.policy().sandbox());
        RunRequest {
            agent,
            input: input.into(),
            broker,
            limits,
            run_id,
            on_credential_shape,
            cancel: CancelToken::new(),
            caller: None,
        }
    }

    /// Records `caller` (the OS identity the front door proved) on every audit record
    /// of the run.
    #[must_use]
    pub fn caller(mut self, caller: CallerInfo) -> Self {
        self.caller = Some(caller);
        self
    }

    /// Runs under `overrides` (each given limit wins over the policy's
    /// `sandbox:`, which wins over the default; see [`Limits::resolve`]).
    #[must_use]
    pub fn overrides(mut self, overrides: &LimitOverrides) -> Self {
        let (limits, on_credential_shape) =
            Limits::resolve(overrides, self.broker.policy().sandbox());
        self.limits = limits;
        self.on_credential_shape = on_credential_shape;
        self
    }

    /// Runs under exactly `limits` (the policy's `sandbox:` is not consulted).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Handles credential shapes in the output with `action`.
    #[must_use]
    pub fn on_credential_shape(mut self, action: ShapeAction) -> Self {
        self.on_credential_shape = action;
        self
    }

    /// Stops when `cancel` is tripped.
    #[must_use]
    pub fn cancel(mut self, cancel: CancelToken) -> Self {
        self.cancel = cancel;
        self
    }
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
    /// The wall-clock deadline passed while the skill waited in a host call
    /// (a WASI sleep or poll): the call was abandoned.
    DeadlineInHostCall,
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
    /// The run's [`CancelToken`] was tripped.
    Cancelled,
    /// Needs the skill declares (`agentsec:needs`) are not granted: one line
    /// per need, naming the rule to change. The skill did not run; each
    /// refusal is on the record.
    NeedsNotGranted(Vec<String>),
    /// The skill did not start: its needs declaration is unreadable or names
    /// an invalid path, or the audit log failed while recording a refusal.
    NotStarted(String),
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
    /// What went wrong after the run without changing its outcome (the run's
    /// end could not be recorded), for the caller to show.
    pub warnings: Vec<String>,
}

impl RunReport {
    fn bare(end: RunEnd, stats: RunStats) -> RunReport {
        RunReport {
            end,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stats,
            warnings: Vec::new(),
        }
    }
}

/// Why the run future was abandoned before it finished.
enum Interrupted {
    Deadline,
    Cancelled,
}

impl Runtime {
    /// Runs `skill` once for `request.agent`, asking `request.broker` for
    /// every secret, under `request.limits`.
    ///
    /// Before the skill starts, its declared needs are checked. When the run
    /// ends, events of the run as a whole (a limit, a trap, an exit, refused
    /// output, a cancellation) are recorded, the audit log is synced, and
    /// the output is redacted. The store (wasmtime's, with the skill's
    /// memory) and every secret copy it held are dropped before this returns.
    ///
    /// It blocks the calling thread until the run ends (one thread per
    /// concurrent run); called from inside an async runtime, the run waits
    /// on a thread of its own.
    pub fn run(&self, skill: &LoadedSkill, request: RunRequest) -> RunReport {
        let RunRequest {
            agent,
            input,
            broker,
            limits,
            run_id,
            on_credential_shape,
            cancel,
            caller,
        } = request;
        let mut run = RunContext::new(
            agent.as_str(),
            skill.name.as_str(),
            skill.sha256.as_str(),
            run_id,
        )
        .with_store(broker.audit_store().cloned());
        if let Some(caller) = caller {
            run = run.with_caller(caller);
        }
        match check_declared_needs(skill, &agent, &broker, &run) {
            Ok(()) => {}
            Err(NotStarted::Invalid(why)) => {
                return RunReport::bare(RunEnd::NotStarted(why), RunStats::default());
            }
            Err(NotStarted::NotGranted(lines)) => {
                return RunReport::bare(RunEnd::NeedsNotGranted(lines), RunStats::default());
            }
        }
        let caller = Caller::new(
            agent,
            skill.skill_ref.clone(),
            run.clone(),
            CallerLimits::new(limits.max_secret_calls, limits.max_path_len),
            Redactor::with_limit(limits.max_redaction_bytes),
        )
        .with_cancel(cancel.clone());
        // wasi:http is linked only when the policy grants this agent and skill some egress.
        let egress = broker
            .policy()
            .grants_egress(caller.agent(), &skill.skill_ref);
        let pre = match (egress, &skill.pre) {
            (true, _) => &skill.pre_http,
            (false, Some(pre)) => pre,
            (false, None) => {
                let why = format!(
                    "skill `{}` imports wasi:http, but the policy grants agent `{}` no egress for it; add an `egress:` entry with `agents: [{}]` (and the url it calls)",
                    skill.name,
                    caller.agent(),
                    caller.agent()
                );
                let mut warnings = Vec::new();
                if let Err(e) = broker.record_run_event(&run, &format!("not started: {why}")) {
                    warnings.push(format!("could not record the refusal: {e}"));
                }
                let mut report =
                    RunReport::bare(RunEnd::NeedsNotGranted(vec![why]), RunStats::default());
                report.warnings = warnings;
                return report;
            }
        };
        let deadline = Instant::now() + limits.timeout;
        let egress_ctx = egress.then(|| crate::egress::EgressCtx::new(&limits, deadline));
        let tcp = egress_ctx.as_ref().and_then(|ctx| {
            crate::egress::TcpCheck::for_run(
                broker.policy(),
                caller.agent(),
                &skill.skill_ref,
                Arc::clone(&broker),
                run.clone(),
                ctx,
            )
        });
        let (wasi, captured) = sandbox_wasi(&limits, tcp);
        let mut secrets = SecretsCtx::new(Arc::clone(&broker), caller);
        secrets.egress = egress_ctx;
        let state = SkillState {
            wasi,
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limiter: Limiter::new(&limits),
            secrets,
        };
        let mut wasm_store = self.store_for(state, &limits, &cancel);
        let outcome = self.execute(&mut wasm_store, pre, &input, deadline, &cancel);
        let state = wasm_store.into_data();
        let output = Output {
            stdout: captured.stdout.contents().to_vec(),
            stderr: captured.stderr.contents().to_vec(),
        };
        finish(
            state,
            outcome,
            output,
            &limits,
            &cancel,
            on_credential_shape,
            &broker,
            &run,
        )
    }

    /// A wasmtime store for one run: its limiter, and a deadline checked every epoch
    /// tick while the skill runs wasm code (past the deadline, or once `cancel` trips,
    /// the skill traps with [`Trap::Interrupt`]).
    fn store_for(
        &self,
        state: SkillState,
        limits: &Limits,
        cancel: &CancelToken,
    ) -> Store<SkillState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        let deadline = Instant::now() + limits.timeout;
        let cancel = cancel.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if cancel.is_cancelled() || Instant::now() >= deadline {
                Err(Trap::Interrupt.into())
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store
    }

    /// Instantiates and calls `run` on a runtime of the calling thread,
    /// abandoning the call when the deadline passes or `cancel` trips while
    /// the skill waits in an async host call (in wasm code, the epoch
    /// callback traps instead).
    fn execute(
        &self,
        store: &mut Store<SkillState>,
        pre: &crate::bindings::SkillPre<SkillState>,
        input: &str,
        deadline: Instant,
        cancel: &CancelToken,
    ) -> Result<wasmtime::Result<Result<String, String>>, Interrupted> {
        let call = async {
            let instance = pre.instantiate_async(&mut *store).await?;
            instance.call_run(&mut *store, input).await
        };
        let executor = match self.executors.take() {
            Ok(executor) => executor,
            Err(e) => {
                return Ok(Err(wasmtime::format_err!(
                    "cannot start the run's executor: {e}"
                )));
            }
        };
        let outcome = if tokio::runtime::Handle::try_current().is_ok() {
            // Called from inside an async runtime, where blocking on another one
            // would panic: wait on a thread of its own.
            std::thread::scope(|scope| {
                scope
                    .spawn(|| executor.block_on(race(call, deadline, cancel)))
                    .join()
            })
            .unwrap_or_else(|_| Ok(Err(wasmtime::format_err!("the run's thread panicked"))))
        } else {
            executor.block_on(race(call, deadline, cancel))
        };
        self.executors.put(executor);
        outcome
    }
}

/// What the skill wrote to its stdout and stderr (captured, not yet redacted).
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// How the run ended, its output redacted, its run-level event on record and the audit
/// log synced: the report, or one without output when it must be withheld.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of one run, taken apart once"
)]
fn finish(
    mut state: SkillState,
    outcome: Result<wasmtime::Result<Result<String, String>>, Interrupted>,
    output: Output,
    limits: &Limits,
    cancel: &CancelToken,
    on_credential_shape: ShapeAction,
    broker: &Broker,
    run: &RunContext,
) -> RunReport {
    let output_full =
        output.stdout.len() >= limits.max_output || output.stderr.len() >= limits.max_output;
    let stopped = state.secrets.caller().stopped().cloned();
    let egress_audit_failed = state
        .secrets
        .egress
        .as_ref()
        .and_then(|e| e.audit_failed.lock().ok().and_then(|f| f.clone()));
    // The text in `end` is redacted below, together with stdout and stderr.
    let mut end = match outcome {
        Err(Interrupted::Cancelled) => RunEnd::Cancelled,
        Err(Interrupted::Deadline) => RunEnd::DeadlineInHostCall,
        Ok(Ok(_)) if output_full => RunEnd::Limit(LimitKind::Output),
        Ok(Ok(Ok(result))) if result.len() > limits.max_output => RunEnd::Limit(LimitKind::Output),
        Ok(Ok(Ok(result))) => RunEnd::Ok(result),
        Ok(Ok(Err(message))) => RunEnd::SkillError(bounded(&message, limits.max_output)),
        Ok(Err(error)) => ended_by(&error, stopped, state.limiter.hit, output_full, cancel),
    };
    // An outgoing request whose record could not be written: fail closed.
    if let Some(why) = egress_audit_failed {
        end = RunEnd::AuditFailed(why);
    }
    let (stdout, stderr, mut shapes_found) = redact_outputs(
        state.secrets.caller_mut().redactor(),
        &output.stdout,
        &output.stderr,
        &mut end,
    );
    let stats = state.secrets.caller().stats();
    drop(state);
    // The instance is gone, and with it every copy the skill held: what the store issued
    // for this run alone (dynamic credentials) is released now, however the run ended.
    broker.end_run(run);
    if on_credential_shape == ShapeAction::Fail && !shapes_found.is_empty() {
        shapes_found.sort_unstable();
        shapes_found.dedup();
        end = RunEnd::CredentialInOutput(shapes_found);
    }
    // Run-level events go on record too (a call-limit breach already is).
    let mut warnings = Vec::new();
    if let Some(detail) = run_event(&end)
        && let Err(e) = broker.record_run_event(run, &detail)
    {
        warnings.push(format!(
            "could not record the end of the run in the audit log: {e}"
        ));
    }
    // Every record of this run is on disk before any output is returned.
    let end = match broker.sync() {
        Err(why) => RunEnd::AuditNotDurable(why),
        Ok(()) => end,
    };
    // Nothing the skill produced is returned when its records are not durable, or when
    // the run was asked to fail on credential shapes.
    let withheld = matches!(
        end,
        RunEnd::AuditNotDurable(_) | RunEnd::CredentialInOutput(_)
    );
    RunReport {
        end,
        stdout: if withheld { Vec::new() } else { stdout },
        stderr: if withheld { Vec::new() } else { stderr },
        stats,
        warnings,
    }
}

/// `call`'s output, unless the deadline passes or `cancel` trips first.
async fn race<F: Future>(
    call: F,
    deadline: Instant,
    cancel: &CancelToken,
) -> Result<F::Output, Interrupted> {
    let mut call = pin!(call);
    let mut expiry = pin!(tokio::time::sleep_until(tokio::time::Instant::from_std(
        deadline
    )));
    let mut poll = tokio::time::interval(CANCEL_POLL);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = call.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        if cancel.is_cancelled() {
            return Poll::Ready(Err(Interrupted::Cancelled));
        }
        if expiry.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(Interrupted::Deadline));
        }
        while poll.poll_tick(cx).is_ready() {
            if cancel.is_cancelled() {
                return Poll::Ready(Err(Interrupted::Cancelled));
            }
        }
        Poll::Pending
    })
    .await
}

/// How a run that failed with `error` ended: what stopped it, in order of
/// precedence (the broker's stop, a resource limit, the deadline, ...).
fn ended_by(
    error: &wasmtime::Error,
    stopped: Option<Stop>,
    limit_hit: Option<LimitKind>,
    output_full: bool,
    cancel: &CancelToken,
) -> RunEnd {
    let trap = error.downcast_ref::<Trap>();
    match (stopped, limit_hit) {
        (Some(Stop::AuditFailed(why)), _) => RunEnd::AuditFailed(why),
        (Some(Stop::SecretCalls), _) => RunEnd::Limit(LimitKind::SecretCalls),
        (Some(Stop::Redaction), _) => RunEnd::Limit(LimitKind::Redaction),
        (Some(_), _) => RunEnd::Cancelled,
        (None, Some(kind)) => RunEnd::Limit(kind),
        (None, None) if trap == Some(&Trap::Interrupt) && cancel.is_cancelled() => {
            RunEnd::Cancelled
        }
        (None, None) if trap == Some(&Trap::Interrupt) => RunEnd::Limit(LimitKind::Timeout),
        (None, None) if trap == Some(&Trap::StackOverflow) => RunEnd::Limit(LimitKind::Stack),
        (None, None) if output_full => RunEnd::Limit(LimitKind::Output),
        (None, None) if let Some(exit) = error.downcast_ref::<I32Exit>() => RunEnd::Exited(exit.0),
        (None, None) => RunEnd::Trap(describe_trap(error)),
    }
}

/// The audit record of a run-level event, if the run ended with one (a
/// call-limit breach or an audit failure is already on record).
fn run_event(end: &RunEnd) -> Option<String> {
    match end {
        RunEnd::Limit(LimitKind::SecretCalls) => None,
        RunEnd::Limit(kind) => Some(format!("limit: {kind} exceeded")),
        RunEnd::DeadlineInHostCall => Some(format!(
            "limit: {} exceeded (stuck in a host call)",
            LimitKind::Timeout
        )),
        RunEnd::Trap(_) => Some("trap: the skill crashed".to_owned()),
        RunEnd::Exited(status) => Some(format!(
            "exit: the skill called wasi:cli/exit (status {status}) instead of returning a result"
        )),
        RunEnd::CredentialInOutput(kinds) => Some(format!(
            "output refused: credential shapes {}",
            kinds.join(", ")
        )),
        RunEnd::Cancelled => Some("cancelled: the run was stopped by its host".to_owned()),
        _ => None,
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
