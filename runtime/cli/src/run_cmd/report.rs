//! How a run ended, said on stderr, and the exit code that goes with it.

use std::fmt::Write as _;
use std::io::Write as _;

use agentsec_host::{LimitKind, Limits, RunEnd, RunReport};
use agentsec_server::{Refused, Rendered};

use crate::exit;

/// Writes what the run produced and says how it ended; returns the exit code.
pub(super) fn report_end(report: RunReport, name: &str, limits: &Limits) -> u8 {
    write_rendered(&render(report, name, limits), name)
}

/// What a run's report comes to on stdout and stderr, and its exit code: the one
/// rendering of a local run and of a run through `agentsec serve`.
pub fn render(report: RunReport, name: &str, limits: &Limits) -> Rendered {
    let mut said = String::new();
    for warning in &report.warnings {
        let _ = writeln!(said, "agentsec-run: warning: {warning}");
    }
    let denied = report.stats.denied > 0;
    let (exit_code, stdout, message) = outcome(report.end, name, limits, denied);
    if let Some(message) = message {
        let _ = writeln!(said, "agentsec-run: {message}");
    }
    let mut stderr = Vec::with_capacity(report.stdout.len() + report.stderr.len() + said.len());
    stderr.extend_from_slice(&report.stdout);
    stderr.extend_from_slice(&report.stderr);
    stderr.extend_from_slice(said.as_bytes());
    Rendered {
        exit_code,
        stdout,
        stderr,
        message: said,
    }
}

/// A refusal before or instead of a run, rendered as `agentsec-run` reports it.
pub fn render_refusal(kind: Refused, message: &str) -> Rendered {
    let exit_code = match kind {
        Refused::Identity | Refused::Denied => exit::DENIED,
        Refused::Limit | Refused::ShuttingDown => exit::LIMIT,
        _ => exit::CONFIG,
    };
    let said = format!("agentsec-run: {message}\n");
    Rendered {
        exit_code,
        stdout: Vec::new(),
        stderr: said.clone().into_bytes(),
        message: said,
    }
}

/// Writes a rendered run: stderr, then the result on stdout (flushed). A result that
/// cannot be written is lost, and says so (exit 6).
pub fn write_rendered(rendered: &Rendered, name: &str) -> u8 {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(&rendered.stderr);
    if rendered.exit_code == exit::OK
        && !rendered.stdout.is_empty()
        && let Err(e) = write_result(&rendered.stdout)
    {
        let _ = writeln!(
            stderr,
            "agentsec-run: the result of skill `{name}` could not be written to stdout ({e}); it is lost"
        );
        return exit::OUTPUT_FAILED;
    }
    rendered.exit_code
}

/// The exit code of a run that ended with `end`, its stdout (the result and a final
/// newline), and what to say about it (without the `agentsec-run: ` prefix). `denied`: the
/// policy refused the skill something.
fn outcome(
    end: RunEnd,
    name: &str,
    limits: &Limits,
    denied: bool,
) -> (u8, Vec<u8>, Option<String>) {
    let (code, message) = match end {
        RunEnd::Ok(mut result) => {
            if !result.ends_with('\n') {
                result.push('\n');
            }
            return (exit::OK, result.into_bytes(), None);
        }
        RunEnd::NeedsNotGranted(lines) => (exit::DENIED, Some(lines.join("\nagentsec-run: "))),
        RunEnd::NotStarted(why) => (exit::CONFIG, Some(format!("error: {why}"))),
        RunEnd::Exited(0) => (
            exit::SKILL_ERROR,
            Some(format!(
                "skill `{name}` exited (wasi:cli/exit, status 0) without returning a result; a skill must return from `run`"
            )),
        ),
        RunEnd::Exited(status) => (
            exit::SKILL_ERROR,
            Some(format!(
                "skill `{name}` exited with failure status {status} (wasi:cli/exit) without returning a result"
            )),
        ),
        RunEnd::SkillError(message) if denied => (
            exit::DENIED,
            Some(format!(
                "skill `{name}` failed after a policy denial: {message}"
            )),
        ),
        RunEnd::SkillError(message) => (
            exit::SKILL_ERROR,
            Some(format!("skill `{name}` returned an error: {message}")),
        ),
        stopped => stopped_outcome(stopped, name, limits),
    };
    (code, Vec::new(), message)
}

/// [`outcome`] for a run that something stopped: a limit, a trap, the audit log, the
/// output check.
fn stopped_outcome(end: RunEnd, name: &str, limits: &Limits) -> (u8, Option<String>) {
    match end {
        RunEnd::Limit(kind) => (
            exit::LIMIT,
            Some(format!(
                "skill `{name}` stopped: {kind} exceeded{}",
                limit_hint(kind, limits)
            )),
        ),
        RunEnd::DeadlineInHostCall | RunEnd::Cancelled => (
            exit::LIMIT,
            Some(format!(
                "skill `{name}` stopped: {} exceeded while it waited in a host call{}",
                LimitKind::Timeout,
                limit_hint(LimitKind::Timeout, limits)
            )),
        ),
        RunEnd::Trap(message) => (
            exit::TRAP,
            Some(format!("skill `{name}` trapped: {message}")),
        ),
        RunEnd::CredentialInOutput(kinds) => (
            exit::CREDENTIAL_IN_OUTPUT,
            Some(format!(
                "skill `{name}` failed: its output contained credential-shaped text ({}); nothing was returned (--on-credential-shape fail)",
                kinds.join(", ")
            )),
        ),
        RunEnd::AuditFailed(why) => (
            exit::TRAP,
            Some(format!(
                "stopped skill `{name}`: the audit record could not be written, so nothing was released: {why}"
            )),
        ),
        RunEnd::AuditNotDurable(why) => (
            exit::TRAP,
            Some(format!(
                "skill `{name}`: its audit records could not be synced to disk, so its output was withheld: {why}"
            )),
        ),
        other => (
            exit::TRAP,
            Some(format!("skill `{name}` ended unexpectedly: {other:?}")),
        ),
    }
}

/// How to raise the limit that stopped a run, for its message.
fn limit_hint(kind: LimitKind, limits: &Limits) -> String {
    match kind {
        LimitKind::Timeout => format!(" ({:?}; raise it with --timeout)", limits.timeout),
        LimitKind::Memory => format!(" ({} bytes; raise it with --max-memory)", limits.max_memory),
        LimitKind::Output => format!(" ({} bytes; raise it with --max-output)", limits.max_output),
        LimitKind::SecretCalls => format!(
            " ({} calls; raise it with --max-secret-calls)",
            limits.max_secret_calls
        ),
        LimitKind::Stack => " (runaway recursion)".to_owned(),
        LimitKind::Redaction => format!(
            " ({} bytes of redaction needles; the value that would pass it was not released; raise it with --max-redaction-bytes)",
            limits.max_redaction_bytes
        ),
        _ => String::new(),
    }
}

/// The result (with its final newline), flushed: a closed or full stdout is an
/// error (Rust ignores `SIGPIPE`, so a closed pipe is `EPIPE` here).
fn write_result(result: &[u8]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(result)?;
    stdout.flush()
}
