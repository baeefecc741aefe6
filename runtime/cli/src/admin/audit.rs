//! `agentsec audit verify` and `agentsec audit query`.
//!
//! Exit codes: [`crate::exit::AUDIT`]. Both read their defaults (the log and
//! the chain key) from the agentsec.yaml in force, as `agentsec-run` does.

use std::path::{Path, PathBuf};

use agentsec_audit::{ChainKey, VerifyOptions, VerifyReport, verify_with};
use clap::Subcommand;

use super::Format;
use crate::error::AuditError;
use crate::exit;

mod query;
mod sinks;

/// `agentsec audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify the hash chain of an audit log: exit 0 if intact, 1 naming the
    /// first bad seq and what is wrong (edited, deleted, reordered, inserted,
    /// truncated, downgraded from keyed to unkeyed).
    ///
    /// Each file's first entry records the chain's kind and key id; a log
    /// whose marker says keyed but whose entries are unkeyed is refused.
    /// With a key (--key, or `audit_key` in agentsec.yaml) the whole log must
    /// be keyed with it, which also catches a log rewritten from scratch as
    /// an unkeyed chain.
    ///
    /// With one LOG, its rotated segments (LOG.1, LOG.2, ...) are verified
    /// first, as one chain; with several, exactly those files, oldest first.
    #[command(after_help = exit::help(exit::AUDIT))]
    Verify {
        /// Log file(s), oldest first [default: `audit_log` from agentsec.yaml,
        /// else $XDG_STATE_HOME/agentsec/audit.log, as agentsec-run]. With
        /// --from: local logs whose heads are compared with their chains in
        /// the store (none by default).
        #[arg(value_name = "LOG")]
        logs: Vec<PathBuf>,
        /// Verify every host's chain in the central store instead
        /// (postgres://USER@HOST:PORT/DB): gaps, edits, reorders, forks.
        #[arg(long, value_name = "URL", conflicts_with = "expect_head")]
        from: Option<String>,
        /// A head hash recorded earlier (the `hash` of an entry, or the head
        /// printed by a previous verify): it must still be in the chain, so
        /// cutting entries from the end is detected.
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
        /// The age-encrypted HMAC key of a keyed log (as given to
        /// `agentsec-run --audit-key`) [default: `audit_key` from
        /// agentsec.yaml]. With a key, the log must be a keyed chain made with
        /// that key: an unkeyed (rewritten) log is refused.
        #[arg(long, visible_alias = "audit-key", value_name = "FILE")]
        key: Option<PathBuf>,
        /// Output format (`text` is an alias of `human`).
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },

    /// Who read what, when: the entries matching every filter given, e.g.
    /// `--secret databases.prod --since 24h --decision allow`. The chain is
    /// verified too (as `verify` does, with the same key); a chain that is
    /// broken or cannot be verified (a keyed log without its key) is
    /// reported on stderr and exits 1.
    #[command(after_help = exit::help(exit::AUDIT))]
    Query(query::QueryArgs),

    /// Ship every record not yet acknowledged to the sinks (PostgreSQL,
    /// syslog), from each sink's durable cursor; exit 1 if any is left
    /// unshipped (for CI runners: ship, then fail rather than lose records).
    #[command(after_help = exit::help(exit::AUDIT))]
    Ship(sinks::ShipArgs),

    /// Create the central store's table (agentsec_audit) and the role
    /// agentsec ships as, which may only INSERT and SELECT. Run once, as a
    /// privileged role.
    #[command(after_help = exit::help(exit::AUDIT))]
    SinkInit(sinks::SinkInitArgs),
}

/// Runs one `agentsec audit` command: its exit code, or the error that ended it.
pub fn run(command: Command) -> Result<u8, AuditError> {
    match command {
        Command::Verify {
            logs,
            from: Some(url),
            key,
            format,
            ..
        } => sinks::verify_from(&url, &logs, key.as_deref(), format),
        Command::Verify {
            logs,
            from: None,
            expect_head,
            key,
            format,
        } => verify_command(&logs, expect_head.as_deref(), key.as_deref(), format),
        Command::Query(args) => query::run(&args),
        Command::Ship(args) => sinks::ship_command(&args),
        Command::SinkInit(args) => sinks::sink_init_command(&args),
    }
}

fn verify_command(
    logs: &[PathBuf],
    expect_head: Option<&str>,
    key: Option<&Path>,
    format: Format,
) -> Result<u8, AuditError> {
    let files = expand(logs)?;
    let key = load_key(key)?;
    if let Some(head) = expect_head
        && !(head.len() == 64 && head.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        return Err(AuditError::Argument {
            name: "--expect-head",
            reason: "expected 64 lowercase hex digits (an entry's `hash`)".to_owned(),
        });
    }
    let options = VerifyOptions {
        key: key.as_ref(),
        expect_head,
    };
    match verify_with(&files, options) {
        Ok(report) => {
            let key_id = key.as_ref().map(ChainKey::fingerprint);
            super::write_stdout(&report_text(&report, key_id.as_deref(), &files, format))
                .map_err(AuditError::Output)?;
            Ok(exit::admin::OK)
        }
        Err(e) => {
            if format == Format::Json {
                let json = serde_json::json!({
                    "ok": false,
                    "error": e.to_string(),
                    "seq": e.seq(),
                    "file": e.path(),
                    "line": e.line(),
                });
                // The chain is broken either way; a lost report changes nothing.
                let _ = super::write_stdout(&format!("{json}\n"));
            }
            Err(AuditError::Verify(e))
        }
    }
}

fn report_text(
    report: &VerifyReport,
    key_id: Option<&str>,
    files: &[PathBuf],
    format: Format,
) -> String {
    let mode = match key_id {
        Some(id) => format!("hmac-sha256 chain, key id {id}"),
        None => "sha256 chain".to_owned(),
    };
    if format == Format::Json {
        let json = serde_json::json!({
            "ok": true,
            "entries": report.entries,
            "head": report.head_hash,
            "chain": if key_id.is_some() { "hmac-sha256" } else { "sha256" },
            "key_id": key_id,
            "marked": report.marked,
            "files": files,
            "expected_head_seq": report.expected_head_seq,
        });
        return format!("{json}\n");
    }
    let count = files.len();
    let mut text = format!(
        "ok: {} entries, head {} ({mode}, {count} file{})\n",
        report.entries,
        report.head_hash,
        if count == 1 { "" } else { "s" }
    );
    if let Some(seq) = report.expected_head_seq {
        text.push_str(&format!(
            "expected head found at seq {seq}; {} entries appended since\n",
            report.entries - seq
        ));
    }
    text
}

/// One LOG: its rotated segments then itself. Several: exactly those. None:
/// the log `agentsec-run` would write to (`audit_log` from agentsec.yaml,
/// else the default location), with its segments.
fn expand(logs: &[PathBuf]) -> Result<Vec<PathBuf>, AuditError> {
    let default;
    let logs = if logs.is_empty() {
        let project = super::defaults().map_err(AuditError::Log)?;
        default = match project.audit_log {
            Some(log) => log,
            None => crate::run_cmd::default_audit_log().ok_or(AuditError::NoLog)?,
        };
        std::slice::from_ref(&default)
    } else {
        logs
    };
    match logs {
        [one] => {
            let files = agentsec_audit::log_files(one).map_err(|e| {
                AuditError::Log(format!("cannot list the audit log {}: {e}", one.display()))
            })?;
            if files.is_empty() {
                return Err(AuditError::Log(format!(
                    "no audit log at {}",
                    one.display()
                )));
            }
            Ok(files)
        }
        _ => Ok(logs.to_vec()),
    }
}

/// The chain key from `--key FILE`, else `audit_key` from the agentsec.yaml
/// in force, decrypted with the operator's age identities (and
/// `age_key_file` from agentsec.yaml). A project file that is refused is an
/// error: it might be what configures the key.
fn load_key(key: Option<&Path>) -> Result<Option<ChainKey>, AuditError> {
    let project = super::defaults().map_err(AuditError::Key)?;
    let extra = project.age_key_file.as_deref();
    let file = match (key, project.audit_key.as_deref()) {
        (Some(file), _) => file,
        (None, Some(file)) => {
            tracing::info!(key = %file.display(), "using audit_key from agentsec.yaml");
            file
        }
        (None, None) => return Ok(None),
    };
    crate::audit_key::load(file, extra)
        .map(Some)
        .map_err(AuditError::Key)
}
