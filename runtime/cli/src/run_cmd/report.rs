//! How a run ended, said on stderr, and the exit code that goes with it.

use std::io::Write as _;

use agentsec_host::{LimitKind, Limits, RunEnd, RunReport};

use crate::exit;

/// Writes what the run produced and says how it ended; returns the exit code.
pub(super) fn report_end(report: RunReport, name: &str, limits: &Limits) -> u8 {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(&report.stdout);
    let _ = stderr.write_all(&report.stderr);
    for warning in &report.warnings {
        let _ = writeln!(stderr, "agentsec-run: warning: {warning}");
    }
    let (code, message) = outcome(report.end, name, limits, report.stats.denied > 0);
    if let Some(message) = message {
        let _ = writeln!(stderr, "agentsec-run: {message}");
    }
    code
}

/// The exit code of a run that ended with `end`, and what to say about it (without the
/// `agentsec-run: ` prefix). `denied`: the policy refused the skill something.
fn outcome(end: RunEnd, name: &str, limits: &Limits, denied: bool) -> (u8, Option<String>) {
    match end {
        RunEnd::Ok(result) => match write_result(&result) {
            Ok(()) => (exit::OK, None),
            Err(e) => (
                exit::OUTPUT_FAILED,
                Some(format!(
                    "the result of skill `{name}` could not be written to stdout ({e}); it is lost"
                )),
            ),
        },
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
    }
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

/// The result and a final newline, flushed: a closed or full stdout is an
/// error (Rust ignores `SIGPIPE`, so a closed pipe is `EPIPE` here).
fn write_result(result: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(result.as_bytes())?;
    if !result.ends_with('\n') {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()
}
