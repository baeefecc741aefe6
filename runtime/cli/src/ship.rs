//! Shipping audit records to sinks from the command line: which sinks are
//! in force (flags, else `audit.sinks` of agentsec.yaml), the host name they
//! are shipped under, and the catch-up after a run.

use std::path::Path;
use std::time::Duration;

use agentsec_audit::sink::{ShipOptions, SinkReport, SinkUrl, ship};

use crate::project::Project;

/// How long `agentsec-run` (`ship: async`) keeps retrying a sink that is
/// down after the run, before it leaves the records to the next run or
/// `agentsec audit ship`.
///
/// Reason: the run's result is already out; a short wait rides over a sink
/// restart without holding a CI step or a script for long.
pub const AFTER_RUN_RETRY: Duration = Duration::from_secs(2);

/// This machine's host name (`uname -n`), the default name records are
/// shipped under; `localhost` if it has none.
pub fn hostname() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().into_owned();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name
    }
}

/// The sinks in force: `--audit-sink` flags if any, else `audit.sinks`.
///
/// # Errors
/// A flag that is not a sink URL, naming it.
pub fn sinks(flags: &[String], project: &Project) -> Result<Vec<SinkUrl>, String> {
    if flags.is_empty() {
        return Ok(project.audit_sinks.clone());
    }
    flags
        .iter()
        .map(|f| SinkUrl::parse(f).map_err(|e| format!("--audit-sink: {e}")))
        .collect()
}

/// After a run: ships what is pending to `sinks`, retrying for
/// [`AFTER_RUN_RETRY`]; what cannot be shipped stays for later and is a
/// warning (prefixed `prefix`) on stderr, not a failure of the run.
pub fn after_run(prefix: &str, log: &Path, sinks: &[SinkUrl]) {
    if sinks.is_empty() {
        return;
    }
    let options = ShipOptions {
        host: hostname(),
        retry_for: AFTER_RUN_RETRY,
        // Another run (or `audit ship`) is shipping this log: it, or the
        // next ship, takes this run's records too; a run does not wait.
        wait_for_lock: false,
    };
    match ship(log, sinks, &options) {
        Ok(reports) => {
            for report in reports {
                warn_unshipped(prefix, &report);
            }
        }
        Err(agentsec_audit::sink::SinkError::Busy { .. }) => eprintln!(
            "{prefix}: note: another process is shipping this audit log now; this run's records stay behind the cursor for the next run or `agentsec audit ship`"
        ),
        Err(e) => eprintln!("{prefix}: warning: audit records not shipped: {e}"),
    }
}

fn warn_unshipped(prefix: &str, report: &SinkReport) {
    if report.pending == 0 && report.error.is_none() {
        return;
    }
    let why = report
        .error
        .as_ref()
        .map_or_else(String::new, |e| format!(": {e}"));
    eprintln!(
        "{prefix}: warning: {} audit record(s) not yet shipped to {}{why}; they stay in the local log and go with the next run or `agentsec audit ship`",
        report.pending, report.sink
    );
}
