//! Reading entries for queries ("who read X since T?").
//!
//! Reading does not check the chain: run [`verify_with`](crate::verify_with)
//! as well and distrust the answer if it fails.

use std::path::Path;

use crate::entry::{self, TagKind};
use crate::error::VerifyError;
use std::borrow::Cow;

use crate::record::{AccessType, CallerInfo, Decision};
use crate::verify::{Lines, RawLine};

/// One entry of a log, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEntry {
    /// `ts`: RFC 3339 UTC with 6 fractional digits.
    pub ts: String,
    /// `agent_id`.
    pub agent_id: String,
    /// `caller`, where the record has one.
    pub caller: Option<CallerInfo>,
    /// `skill.name`.
    pub skill_name: String,
    /// `skill.sha256`.
    pub skill_sha256: String,
    /// `store`, when the record names one.
    pub store: Option<crate::record::StoreRef>,
    /// `secret_path`.
    pub secret_path: String,
    /// `access_type`.
    pub access_type: AccessType,
    /// `decision`.
    pub decision: Decision,
    /// `rule`.
    pub rule: Option<String>,
    /// `access_level`.
    pub access_level: Option<String>,
    /// `detail`.
    pub detail: Option<String>,
    /// `run_id`.
    pub run_id: String,
    /// `seq`.
    pub seq: u64,
    /// `prev`.
    pub prev: String,
    /// `hash` or `hmac`, whichever the line carries.
    pub hash: String,
    /// Whether the line carries `hmac` (keyed mode).
    pub keyed: bool,
    /// The line exactly as written, without its `\n`.
    pub line: String,
}

/// What [`read_entries`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadSummary {
    /// Entries passed to the callback.
    pub entries: u64,
    /// Lines skipped because they are not audit entries (torn, too long,
    /// malformed, not canonical).
    pub skipped: u64,
}

/// Calls `each` with every entry of the files in `paths`, in order. Lines
/// that are not entries are skipped and counted; the chain is not checked.
///
/// # Errors
/// [`VerifyError::Io`] if a file cannot be read.
pub fn read_entries<P: AsRef<Path>>(
    paths: &[P],
    mut each: impl FnMut(AuditEntry),
) -> Result<ReadSummary, VerifyError> {
    let mut lines = Lines::new(paths);
    let mut summary = ReadSummary::default();
    while let Some(item) = lines.next_line()? {
        let RawLine::Line(bytes) = item.raw else {
            summary.skipped += 1;
            continue;
        };
        let Some(parsed) = AuditEntry::from_line(&bytes) else {
            summary.skipped += 1;
            continue;
        };
        each(parsed);
        summary.entries += 1;
    }
    Ok(summary)
}

impl AuditEntry {
    /// Parses one line of a log (without its `\n`; e.g. a row's `line` in the
    /// central store): `None` if it is not a canonical entry. The tag is not
    /// checked.
    pub fn parse_line(line: &str) -> Option<AuditEntry> {
        Self::from_line(line.as_bytes())
    }

    fn from_line(bytes: &[u8]) -> Option<AuditEntry> {
        let decoded = entry::decode(bytes).ok()?;
        let e = decoded.entry;
        Some(AuditEntry {
            ts: e.ts.into_owned(),
            agent_id: e.agent_id.into_owned(),
            caller: e.caller.map(Cow::into_owned),
            skill_name: e.skill.name.into_owned(),
            skill_sha256: e.skill.sha256.into_owned(),
            store: e.store.map(Cow::into_owned),
            secret_path: e.secret_path.into_owned(),
            access_type: e.access_type,
            decision: e.decision,
            rule: e.rule.map(|c| c.into_owned()),
            access_level: e.access_level.map(|c| c.into_owned()),
            detail: e.detail.map(|c| c.into_owned()),
            run_id: e.run_id.into_owned(),
            seq: e.seq,
            prev: e.prev.into_owned(),
            hash: decoded.stored_hash,
            keyed: decoded.kind == TagKind::Hmac,
            // `decode` parsed it as JSON, so it is UTF-8.
            line: String::from_utf8_lossy(bytes).into_owned(),
        })
    }
}
