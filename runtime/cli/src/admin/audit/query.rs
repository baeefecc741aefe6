//! `agentsec audit query`: "who read X since T?", for rotating exactly the
//! secrets a compromised agent could have seen.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::SystemTime;

use agentsec_audit::{AuditEntry, Decision, VerifyError, VerifyOptions, read_entries, verify_with};
use agentsec_policy::{AgentGlob, AgentId, SecretPath};
use clap::{Args, ValueEnum};

use super::{Format, expand, load_key};
use crate::error::{AuditError, Tool};
use crate::exit;

/// Filters of `agentsec audit query`; an entry must match all that are given.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Log file(s), oldest first (one LOG includes its rotated segments)
    /// [default: `audit_log` from agentsec.yaml, else
    /// $XDG_STATE_HOME/agentsec/audit.log, as agentsec-run].
    #[arg(value_name = "LOG")]
    logs: Vec<PathBuf>,
    /// A secret path, or a prefix: matches it and every path below it,
    /// segment by segment (`db` matches `db.password`, not `dbx`).
    #[arg(long, value_name = "PATH|PREFIX")]
    secret: Option<String>,
    /// Agent ids matching a glob, as in policies: `*` does not cross `/`,
    /// `**` does (`ops/*`, `**`).
    #[arg(long, value_name = "GLOB")]
    agent: Option<String>,
    /// A skill, by name or by the sha256 of its component.
    #[arg(long, value_name = "NAME")]
    skill: Option<String>,
    /// From this time on (inclusive): RFC 3339 in UTC (`2025-01-02T03:04:05Z`),
    /// a date (`2025-01-02`, midnight UTC) or a duration meaning that long
    /// ago (`24h`, `7d`).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Before this time (exclusive); same forms as --since.
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Only allowed or only denied requests.
    #[arg(long, value_enum)]
    decision: Option<DecisionArg>,
    /// The age-encrypted HMAC key of a keyed log, to verify its chain
    /// [default: `audit_key` from agentsec.yaml].
    #[arg(long, visible_alias = "audit-key", value_name = "FILE")]
    key: Option<PathBuf>,
    /// Output format: an aligned table, or JSON lines of the matching
    /// entries exactly as written in the log (`text` is an alias of `human`).
    /// With --from, each JSON line is `{"host", "log_id", "entry"}`.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Query the central store (postgres://USER@HOST:PORT/DB) instead of
    /// local logs: every host's entries, with the same filters; its chains
    /// are verified as `verify --from` does.
    #[arg(long, value_name = "URL", conflicts_with = "logs")]
    from: Option<String>,
    /// Instead of the entries: one row per host, agent and secret path, with
    /// how many requests matched (and how many were allowed) and the first
    /// and last time: what to rotate after an incident.
    #[arg(long)]
    summary: bool,
}

/// `--decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DecisionArg {
    Allow,
    Deny,
}

/// The parsed filters.
struct Filter {
    secret: Option<(String, SecretPath)>,
    agent: Option<AgentGlob>,
    skill: Option<String>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    decision: Option<Decision>,
}

impl Filter {
    fn parse(args: &QueryArgs, now: SystemTime) -> Result<Self, AuditError> {
        let bad = |name: &'static str, reason: String| AuditError::Argument { name, reason };
        let secret = match &args.secret {
            None => None,
            Some(text) => {
                let path = SecretPath::parse(text).map_err(|e| bad("--secret", e.to_string()))?;
                Some((text.clone(), path))
            }
        };
        let agent = match &args.agent {
            None => None,
            Some(text) => Some(AgentGlob::parse(text).map_err(|e| bad("--agent", e.to_string()))?),
        };
        let time = |flag: &'static str, text: &Option<String>| match text {
            None => Ok(None),
            Some(t) => parse_time(t, now).map(Some).map_err(|e| bad(flag, e)),
        };
        Ok(Self {
            secret,
            agent,
            skill: args.skill.clone(),
            since: time("--since", &args.since)?,
            until: time("--until", &args.until)?,
            decision: args.decision.map(|d| match d {
                DecisionArg::Allow => Decision::Allow,
                DecisionArg::Deny => Decision::Deny,
            }),
        })
    }

    fn matches(&self, e: &AuditEntry) -> bool {
        if let Some((text, path)) = &self.secret {
            let hit = match (SecretPath::parse(&e.secret_path), path) {
                (Ok(found), prefix) => found.starts_with(prefix),
                // A recorded path that is not valid (a denied, malformed
                // request) matches only itself.
                (Err(_), _) => e.secret_path == *text,
            };
            if !hit {
                return false;
            }
        }
        if let Some(glob) = &self.agent {
            match AgentId::parse(&e.agent_id) {
                Ok(id) if glob.is_match(&id) => {}
                _ => return false,
            }
        }
        if let Some(skill) = &self.skill
            && e.skill_name != *skill
            && e.skill_sha256 != *skill
        {
            return false;
        }
        if let Some(decision) = self.decision
            && e.decision != decision
        {
            return false;
        }
        if self.since.is_some() || self.until.is_some() {
            let Ok(ts) = humantime::parse_rfc3339(&e.ts) else {
                return false;
            };
            if self.since.is_some_and(|since| ts < since) || self.until.is_some_and(|u| ts >= u) {
                return false;
            }
        }
        true
    }
}

/// `2025-01-02T03:04:05Z`, `2025-01-02 03:04:05`, `2025-01-02`, or a
/// duration before `now`.
fn parse_time(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let t = text.trim();
    if let Ok(ago) = humantime::parse_duration(t) {
        return now
            .checked_sub(ago)
            .ok_or_else(|| format!("`{text}` ago is before the epoch"));
    }
    let full = if t.len() == 10 {
        format!("{t}T00:00:00Z")
    } else {
        t.to_owned()
    };
    humantime::parse_rfc3339_weak(&full).map_err(|_| {
        format!(
            "`{text}` is not a time; use RFC 3339 in UTC (2025-01-02T03:04:05Z), a date (2025-01-02) or a duration meaning that long ago (24h, 7d)"
        )
    })
}

/// Runs `agentsec audit query`: exit 0, or 1 (after printing the matches)
/// when the chain is broken or cannot be verified.
pub fn run(args: &QueryArgs) -> Result<u8, AuditError> {
    let filter = Filter::parse(args, SystemTime::now())?;
    if let Some(url) = &args.from {
        return run_from(args, &filter, url);
    }
    let files = expand(&args.logs)?;
    let key = load_key(args.key.as_deref())?;
    let chain = verify_with(
        &files,
        VerifyOptions {
            key: key.as_ref(),
            expect_head: None,
        },
    );
    let mut matching = Vec::new();
    let summary = read_entries(&files, |e| {
        if filter.matches(&e) {
            matching.push(e);
        }
    })
    .map_err(|e| AuditError::Log(e.to_string()))?;
    let out = if args.summary {
        let host = crate::ship::hostname();
        summarize(matching.iter().map(|e| (host.as_str(), e)), args.format)
    } else {
        match args.format {
            Format::Json => matching.iter().map(|e| format!("{}\n", e.line)).collect(),
            Format::Human => table(&matching, summary.entries),
        }
    };
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    match chain {
        Ok(_) => Ok(exit::admin::OK),
        Err(VerifyError::KeyRequired { .. }) => {
            Tool::Audit.warn(
                "the log is keyed; pass --key FILE (or set `audit_key` in agentsec.yaml) to verify its chain; these results are unverified",
            );
            Ok(exit::admin::FAILED)
        }
        Err(e) => {
            Tool::Audit.warn(format!(
                "the audit chain is broken, so these results cannot be trusted: {e}"
            ));
            Ok(exit::admin::FAILED)
        }
    }
}

/// `query --from URL`: the store's rows through the same filters.
fn run_from(args: &QueryArgs, filter: &Filter, url: &str) -> Result<u8, AuditError> {
    use agentsec_audit::sink::{SinkUrl, store_chains, store_rows};
    let url = SinkUrl::parse(url).map_err(AuditError::Sink)?;
    let key = load_key(args.key.as_deref())?;
    let chains = store_chains(&url, key.as_ref()).map_err(AuditError::Sink)?;
    let mut matching: Vec<(String, String, AuditEntry)> = Vec::new();
    let mut total = 0u64;
    let mut unreadable = 0u64;
    store_rows(&url, |row| {
        total += 1;
        match AuditEntry::parse_line(&row.line) {
            Some(e) if filter.matches(&e) => matching.push((row.host, row.log_id, e)),
            Some(_) => {}
            None => unreadable += 1,
        }
    })
    .map_err(AuditError::Sink)?;
    let out = if args.summary {
        summarize(
            matching.iter().map(|(h, _, e)| (h.as_str(), e)),
            args.format,
        )
    } else {
        match args.format {
            Format::Json => matching
                .iter()
                .map(|(host, log_id, e)| {
                    let entry: serde_json::Value =
                        serde_json::from_str(&e.line).unwrap_or(serde_json::Value::Null);
                    format!(
                        "{}\n",
                        serde_json::json!({"host": host, "log_id": log_id, "entry": entry})
                    )
                })
                .collect(),
            Format::Human => {
                let entries: Vec<AuditEntry> = matching.iter().map(|(_, _, e)| e.clone()).collect();
                let mut hosts: Vec<&str> = matching.iter().map(|(h, _, _)| h.as_str()).collect();
                hosts.sort_unstable();
                hosts.dedup();
                format!(
                    "{}hosts: {}\n",
                    table(&entries, total),
                    if hosts.is_empty() {
                        "none".to_owned()
                    } else {
                        hosts.join(", ")
                    }
                )
            }
        }
    };
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    let broken: Vec<String> = chains
        .iter()
        .filter_map(|c| {
            c.problem
                .as_ref()
                .map(|p| format!("host {} log {}: {p}", c.host, c.log_id))
        })
        .collect();
    if unreadable > 0 || !broken.is_empty() {
        Tool::Audit.warn(format!(
            "the central store's chains do not verify, so these results cannot be trusted: {}{}",
            broken.join("; "),
            if unreadable > 0 {
                format!("; {unreadable} rows are not audit entries")
            } else {
                String::new()
            }
        ));
        return Ok(exit::admin::FAILED);
    }
    Ok(exit::admin::OK)
}

/// One row of `--summary`.
struct SummaryRow {
    count: u64,
    allowed: u64,
    first: String,
    last: String,
}

/// `--summary`: requests per (host, agent, secret path), sorted by those.
/// Run events (no secret path) are left out.
fn summarize<'e>(
    entries: impl Iterator<Item = (&'e str, &'e AuditEntry)>,
    format: Format,
) -> String {
    use std::collections::BTreeMap;
    let mut rows: BTreeMap<(String, String, String), SummaryRow> = BTreeMap::new();
    for (host, e) in entries {
        if e.secret_path.is_empty() {
            continue;
        }
        let key = (host.to_owned(), e.agent_id.clone(), e.secret_path.clone());
        let row = rows.entry(key).or_insert_with(|| SummaryRow {
            count: 0,
            allowed: 0,
            first: e.ts.clone(),
            last: e.ts.clone(),
        });
        row.count += 1;
        row.allowed += u64::from(e.decision == Decision::Allow);
        if e.ts < row.first {
            row.first.clone_from(&e.ts);
        }
        if e.ts > row.last {
            row.last.clone_from(&e.ts);
        }
    }
    let mut out = String::new();
    if format == Format::Json {
        for ((host, agent, secret), r) in &rows {
            out.push_str(&format!(
                "{}\n",
                serde_json::json!({
                    "host": host, "agent_id": agent, "secret_path": secret,
                    "count": r.count, "allowed": r.allowed, "first": r.first, "last": r.last,
                })
            ));
        }
        return out;
    }
    let header = [
        "HOST", "AGENT", "SECRET", "COUNT", "ALLOWED", "FIRST", "LAST",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|((host, agent, secret), r)| {
            [
                host.clone(),
                agent.clone(),
                secret.clone(),
                r.count.to_string(),
                r.allowed.to_string(),
                r.first.clone(),
                r.last.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count().min(MAX_COLUMN_WIDTH));
        }
    }
    let mut line = |cells: &[&str]| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(w.saturating_sub(cell.chars().count()) + 2));
            }
        }
        out.push('\n');
    };
    line(&header);
    for row in &cells {
        let refs: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&refs);
    }
    let secrets: std::collections::BTreeSet<&str> =
        rows.keys().map(|(_, _, s)| s.as_str()).collect();
    out.push_str(&format!(
        "\n{} distinct secret(s) in {} (host, agent, secret) row(s)\n",
        secrets.len(),
        rows.len()
    ));
    out
}

/// Column width cap, so one long path does not push the table off screen.
///
/// Reason: ids and paths are short in practice; a longer cell is printed in
/// full but no longer widens its column.
const MAX_COLUMN_WIDTH: usize = 48;

fn table(entries: &[AuditEntry], total: u64) -> String {
    let mut out = String::new();
    let header = [
        "TIME", "AGENT", "SKILL", "SECRET", "ACCESS", "DECISION", "RULE", "RUN",
    ];
    let rows: Vec<[String; 8]> = entries
        .iter()
        .map(|e| {
            [
                e.ts.clone(),
                e.agent_id.clone(),
                e.skill_name.clone(),
                e.secret_path.clone(),
                e.access_type.to_string(),
                e.decision.to_string(),
                e.rule.clone().unwrap_or_else(|| "-".to_owned()),
                e.run_id.get(..8).unwrap_or(&e.run_id).to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count().min(MAX_COLUMN_WIDTH));
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = w.saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out
    };
    if !rows.is_empty() {
        out.push_str(&line(&header));
        out.push('\n');
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            out.push_str(&line(&cells));
            out.push('\n');
        }
        out.push('\n');
    }
    let mut agents: Vec<&str> = entries.iter().map(|e| e.agent_id.as_str()).collect();
    agents.sort_unstable();
    agents.dedup();
    out.push_str(&format!(
        "{} of {total} entries match; agents: {}\n",
        entries.len(),
        if agents.is_empty() {
            "none".to_owned()
        } else {
            agents.join(", ")
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times() {
        let now = humantime::parse_rfc3339("2025-01-10T00:00:00Z").expect("time");
        let day = Duration::from_secs(86_400);
        assert_eq!(parse_time("24h", now), Ok(now - day));
        assert_eq!(parse_time("2025-01-09", now), Ok(now - day));
        assert_eq!(parse_time("2025-01-09T00:00:00Z", now), Ok(now - day));
        assert!(parse_time("yesterday", now).is_err());
    }
}
