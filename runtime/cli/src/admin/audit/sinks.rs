//! `agentsec audit ship`, `agentsec audit sink-init` and
//! `agentsec audit verify --from`: the central store.

use std::path::PathBuf;
use std::time::Duration;

use agentsec_audit::sink::{
    ShipOptions, SinkUrl, StoreChain, chain_id, init_postgres, ship, store_chains,
};
use agentsec_audit::{ChainKey, VerifyOptions, read_entries, verify_with};
use clap::Args;

use super::{Format, expand, load_key};
use crate::error::{AuditError, Tool};
use crate::exit;
use crate::units::parse_duration;

/// `agentsec audit ship`.
#[derive(Debug, Args)]
pub struct ShipArgs {
    /// The log to ship (with its rotated segments) [default: `audit_log`
    /// from agentsec.yaml, else $XDG_STATE_HOME/agentsec/audit.log].
    #[arg(value_name = "LOG")]
    log: Option<PathBuf>,
    /// A sink URL (postgres://USER@HOST:PORT/DB, syslog+tcp://HOST:PORT,
    /// syslog+unix:///dev/log); repeatable [default: `audit.sinks` from
    /// agentsec.yaml]. A PostgreSQL password comes from PGPASSWORD.
    #[arg(long = "audit-sink", visible_alias = "sink", value_name = "URL")]
    sinks: Vec<String>,
    /// The host name to ship a log under the first time it is shipped to a
    /// sink (later runs keep the name in the sink's cursor) [default: this
    /// machine's host name].
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// How long to keep retrying a sink that is down, with backoff, e.g.
    /// `30s`; `0s` tries once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    retry_for: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// `agentsec audit sink-init`.
#[derive(Debug, Args)]
pub struct SinkInitArgs {
    /// The PostgreSQL database, as a role that may create tables and roles
    /// (e.g. postgres://postgres@127.0.0.1:5432/audit).
    #[arg(value_name = "URL")]
    url: String,
    /// The role agentsec ships as: created (LOGIN, no password) if missing,
    /// and left with exactly SELECT and INSERT on the table.
    #[arg(long, value_name = "NAME", default_value = "agentsec")]
    role: String,
}

/// The longest host name accepted.
///
/// Reason: RFC 1035's limit for a full domain name; the name is a key in
/// the store and a field in syslog.
const MAX_HOST: usize = 253;

fn sink_error(e: agentsec_audit::sink::SinkError) -> AuditError {
    AuditError::Sink(e)
}

/// Runs `agentsec audit ship`: exit 0 when every sink has every record, 1
/// when any is left unshipped (CI runners: the job fails rather than lose
/// records with the runner's disk).
pub fn ship_command(args: &ShipArgs) -> Result<u8, AuditError> {
    let project = super::super::defaults().map_err(AuditError::Log)?;
    let sinks =
        crate::ship::sinks(&args.sinks, &project).map_err(|reason| AuditError::Argument {
            name: "--audit-sink",
            reason,
        })?;
    if sinks.is_empty() {
        return Err(AuditError::Argument {
            name: "--audit-sink",
            reason: "no sink: pass --audit-sink URL (or set `audit.sinks` in agentsec.yaml)"
                .to_owned(),
        });
    }
    let host = match &args.host {
        Some(h)
            if h.is_empty() || h.len() > MAX_HOST || h.chars().any(|c| !c.is_ascii_graphic()) =>
        {
            return Err(AuditError::Argument {
                name: "--host",
                reason: format!("use 1 to {MAX_HOST} printable ASCII characters, no spaces"),
            });
        }
        Some(h) => h.clone(),
        None => crate::ship::hostname(),
    };
    let logs: Vec<PathBuf> = args.log.iter().cloned().collect();
    let files = expand(&logs)?;
    let log = files.last().cloned().ok_or(AuditError::NoLog)?;
    let reports = ship(
        &log,
        &sinks,
        &ShipOptions {
            host,
            retry_for: args.retry_for,
            wait_for_lock: true,
        },
    )
    .map_err(sink_error)?;
    let mut left = false;
    let mut out = String::new();
    let mut json = Vec::new();
    for r in &reports {
        left |= r.pending > 0 || r.error.is_some();
        if args.format == Format::Json {
            json.push(serde_json::json!({
                "sink": r.sink.to_string(),
                "shipped": r.shipped,
                "pending": r.pending,
                "cursor": r.cursor,
                "error": r.error.as_ref().map(ToString::to_string),
            }));
        } else {
            out.push_str(&format!(
                "{}: shipped {}, {} left, cursor at seq {}\n",
                r.sink, r.shipped, r.pending, r.cursor
            ));
        }
        if let Some(e) = &r.error {
            Tool::Audit.warn(format!("{e}"));
        }
    }
    if args.format == Format::Json {
        out = format!("{}\n", serde_json::Value::Array(json));
    }
    super::super::write_stdout(&out).map_err(AuditError::Output)?;
    if left {
        Tool::Audit.warn(
            "records are left unshipped; run `agentsec audit ship` again once the sink is back",
        );
        return Ok(exit::admin::FAILED);
    }
    Ok(exit::admin::OK)
}

/// Runs `agentsec audit sink-init`.
pub fn sink_init_command(args: &SinkInitArgs) -> Result<u8, AuditError> {
    let url = SinkUrl::parse(&args.url).map_err(sink_error)?;
    init_postgres(&url, &args.role).map_err(sink_error)?;
    super::super::write_stdout(&format!(
        "{url}: table agentsec_audit ready; role {} may SELECT and INSERT only\n",
        args.role
    ))
    .map_err(AuditError::Output)?;
    Ok(exit::admin::OK)
}

/// `agentsec audit verify --from URL [LOG...]`: every chain in the store,
/// and, with LOGs, each local log's head against its chain in the store.
pub fn verify_from(
    url: &str,
    logs: &[PathBuf],
    key: Option<&std::path::Path>,
    format: Format,
) -> Result<u8, AuditError> {
    let url = SinkUrl::parse(url).map_err(sink_error)?;
    let key = load_key(key)?;
    let chains = store_chains(&url, key.as_ref()).map_err(sink_error)?;
    let mut bad = chains.iter().any(|c| c.problem.is_some());
    let mut locals = Vec::new();
    for log in logs {
        let (ok, text) = compare_local(log, &chains, key.as_ref())?;
        bad |= !ok;
        locals.push((log.clone(), ok, text));
    }
    let out = if format == Format::Json {
        let chains: Vec<_> = chains
            .iter()
            .map(|c| {
                serde_json::json!({
                    "host": c.host,
                    "log_id": c.log_id,
                    "rows": c.rows,
                    "ok": c.problem.is_none(),
                    "head_seq": c.head_seq,
                    "head": c.head_hash,
                    "error": c.problem.as_ref().map(ToString::to_string),
                })
            })
            .collect();
        let locals: Vec<_> = locals
            .iter()
            .map(|(log, ok, text)| serde_json::json!({"log": log, "ok": ok, "detail": text}))
            .collect();
        format!(
            "{}\n",
            serde_json::json!({"ok": !bad, "store": url.to_string(), "chains": chains, "local": locals})
        )
    } else {
        let mut out = String::new();
        for c in &chains {
            match &c.problem {
                None => out.push_str(&format!(
                    "ok: host {} log {}: {} entries, head {}\n",
                    c.host, c.log_id, c.head_seq, c.head_hash
                )),
                Some(p) => out.push_str(&format!(
                    "BROKEN: host {} log {}: {p} (last good entry: seq {})\n",
                    c.host, c.log_id, c.head_seq
                )),
            }
        }
        if chains.is_empty() {
            out.push_str("the store holds no entries\n");
        }
        for (log, ok, text) in &locals {
            out.push_str(&format!(
                "{}: {}: {text}\n",
                if *ok { "ok" } else { "MISMATCH" },
                log.display()
            ));
        }
        out
    };
    super::super::write_stdout(&out).map_err(AuditError::Output)?;
    if bad {
        Tool::Audit.warn("the central store does not hold every host's chain intact (see above)");
        return Ok(exit::admin::FAILED);
    }
    Ok(exit::admin::OK)
}

/// Compares a local log with its chain in the store (found by log id):
/// whether they agree, and what was found.
fn compare_local(
    log: &std::path::Path,
    chains: &[StoreChain],
    key: Option<&ChainKey>,
) -> Result<(bool, String), AuditError> {
    let files = expand(std::slice::from_ref(&log.to_path_buf()))?;
    let newest = files.last().cloned().ok_or(AuditError::NoLog)?;
    let report = match verify_with(
        &files,
        VerifyOptions {
            key,
            expect_head: None,
        },
    ) {
        Ok(r) => r,
        Err(e) => return Ok((false, format!("the local chain is broken: {e}"))),
    };
    let id = chain_id(&newest, "").map_err(sink_error)?;
    let Some(chain) = chains.iter().find(|c| c.log_id == id.log_id) else {
        return Ok((
            false,
            format!(
                "log {} is not in the store: nothing of it was shipped",
                id.log_id
            ),
        ));
    };
    let mut local_at_store_head = None;
    read_entries(&files, |e| {
        if e.seq == chain.head_seq {
            local_at_store_head = Some(e.hash);
        }
    })
    .map_err(|e| AuditError::Log(e.to_string()))?;
    let host = &chain.host;
    if report.entries < chain.head_seq {
        return Ok((
            false,
            format!(
                "host {host}: the store has {} entries but the local log only {}: the local log was cut short",
                chain.head_seq, report.entries
            ),
        ));
    }
    if chain.head_seq > 0 && local_at_store_head.as_deref() != Some(chain.head_hash.as_str()) {
        return Ok((
            false,
            format!(
                "host {host}: entry seq {} differs between the store and the local log: the histories forked",
                chain.head_seq
            ),
        ));
    }
    Ok((
        true,
        format!(
            "host {host} log {}: local head seq {} ({}); the store has it up to seq {}, {} not shipped yet",
            id.log_id,
            report.entries,
            report.head_hash,
            chain.head_seq,
            report.entries - chain.head_seq
        ),
    ))
}
