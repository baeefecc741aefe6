//! The PostgreSQL sink: table [`AGENTSEC_TABLE`], one row per entry, through
//! rust-postgres' blocking client (no hand-written protocol).
//!
//! A row keeps the entry's line exactly as written (`line`), because JSONB
//! reorders keys and the hash covers the exact bytes; `record` is the same
//! entry as JSONB for queries.

use std::str::FromStr as _;

use postgres::{Client, Config, NoTls};
use zeroize::Zeroizing;

use super::ship::{ChainId, Shipped};
use super::{CONNECT_TIMEOUT, SinkError};

/// The table the sink writes: one row per entry, primary key
/// (host, log_id, seq).
pub const AGENTSEC_TABLE: &str = "agentsec_audit";

/// The table, as `agentsec audit sink-init` creates it.
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS agentsec_audit (
    host text NOT NULL,
    log_id text NOT NULL,
    seq bigint NOT NULL CHECK (seq > 0),
    hash text NOT NULL,
    prev text NOT NULL,
    record jsonb NOT NULL,
    line text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, log_id, seq)
)";

/// One batch in one statement. `ON CONFLICT DO NOTHING` is the de-duplication
/// by (host, log id, seq) and needs only the INSERT privilege. JSONB cannot
/// hold U+0000, which JSON may escape: `record` gets U+FFFD there (`line`
/// keeps the exact bytes).
const INSERT: &str = "INSERT INTO agentsec_audit (host, log_id, seq, hash, prev, record, line)
    SELECT $1, $2, t.seq, t.hash, t.prev, replace(t.line, '\\u0000', '\\ufffd')::jsonb, t.line
    FROM unnest($3::int8[], $4::text[], $5::text[], $6::text[]) AS t(seq, hash, prev, line)
    ON CONFLICT (host, log_id, seq) DO NOTHING";

/// What the store already holds at the seqs of a batch.
const STORED_HASHES: &str =
    "SELECT seq, hash FROM agentsec_audit WHERE host = $1 AND log_id = $2 AND seq = ANY($3)";

/// Checks that `url` is a PostgreSQL URL the client accepts.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    Config::from_str(url)
        .map(drop)
        .map_err(|e| format!("not a PostgreSQL URL the client accepts: {e}"))
}

/// Connects to `url`, with `PGPASSWORD` from the environment if set.
pub(super) fn connect(url: &str) -> Result<Client, SinkError> {
    let unavailable = |reason: String| SinkError::Unavailable {
        sink: url.to_owned(),
        reason,
    };
    let mut config =
        Config::from_str(url).map_err(|e| unavailable(format!("not a PostgreSQL URL: {e}")))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    if config.get_application_name().is_none() {
        config.application_name("agentsec");
    }
    if let Some(password) = std::env::var_os("PGPASSWORD") {
        let password = Zeroizing::new(password.into_encoded_bytes());
        config.password(&*password);
    }
    config.connect(NoTls).map_err(|e| unavailable(describe(&e)))
}

/// A client error without the parts that could quote data: the database's
/// own message (names objects, never our values) or the I/O error.
pub(super) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Inserts `batch` of `chain`, de-duplicated by (host, log id, seq); an entry
/// already there with another hash is a [`SinkError::Fork`].
pub(super) fn insert(
    client: &mut Client,
    sink: &str,
    chain: &ChainId,
    batch: &[Shipped],
) -> Result<(), SinkError> {
    let unavailable = |e: postgres::Error| SinkError::Unavailable {
        sink: sink.to_owned(),
        reason: describe(&e),
    };
    let seqs: Vec<i64> = batch
        .iter()
        .map(|s| i64::try_from(s.seq).unwrap_or(i64::MAX))
        .collect();
    let hashes: Vec<&str> = batch.iter().map(|s| s.hash.as_str()).collect();
    let prevs: Vec<&str> = batch.iter().map(|s| s.prev.as_str()).collect();
    let lines: Vec<&str> = batch.iter().map(|s| s.line.as_str()).collect();
    let inserted = client
        .execute(
            INSERT,
            &[&chain.host, &chain.log_id, &seqs, &hashes, &prevs, &lines],
        )
        .map_err(unavailable)?;
    if usize::try_from(inserted).unwrap_or(usize::MAX) == batch.len() {
        return Ok(());
    }
    // Some were there already (a re-send after a crash, or another shipper):
    // they must be the same entries.
    for row in client
        .query(STORED_HASHES, &[&chain.host, &chain.log_id, &seqs])
        .map_err(unavailable)?
    {
        let seq: i64 = row.get(0);
        let stored: String = row.get(1);
        if let Some(local) = batch
            .iter()
            .find(|s| i64::try_from(s.seq).ok() == Some(seq))
            && local.hash != stored
        {
            return Err(SinkError::Fork(Box::new(super::Fork {
                sink: sink.to_owned(),
                host: chain.host.clone(),
                log_id: chain.log_id.clone(),
                seq: local.seq,
                stored,
                local: local.hash.clone(),
            })));
        }
    }
    Ok(())
}

/// Whether `role` is a plain lowercase SQL identifier (so it can be put in
/// a statement without quoting rules).
fn plain_identifier(role: &str) -> bool {
    let mut chars = role.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && role.len() <= 63
}

/// `agentsec audit sink-init`: connects to `url` as a privileged role,
/// creates [`AGENTSEC_TABLE`] if missing, creates `role` (LOGIN, no
/// password) if missing, and leaves `role` exactly SELECT and INSERT on the
/// table (so the shipping role can neither change nor delete a row).
///
/// # Errors
/// [`SinkError::Url`] for a role name that is not a plain identifier,
/// [`SinkError::Unavailable`] if the database refuses a step.
pub fn init(url: &super::SinkUrl, role: &str) -> Result<(), SinkError> {
    let super::SinkUrl::Postgres { url } = url else {
        return Err(SinkError::Url {
            reason: format!(
                "`{url}` is not a PostgreSQL URL; only a PostgreSQL sink has a table to create"
            ),
        });
    };
    if !plain_identifier(role) {
        return Err(SinkError::Url {
            reason: format!(
                "role `{}`: use a lowercase SQL identifier (a-z, 0-9, _; at most 63 characters)",
                role.escape_debug()
            ),
        });
    }
    let mut client = connect(url)?;
    let script = format!(
        "{CREATE_TABLE};
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} LOGIN;
            END IF;
        END $$;
        REVOKE ALL ON agentsec_audit FROM PUBLIC;
        REVOKE ALL ON agentsec_audit FROM {role};
        GRANT SELECT, INSERT ON agentsec_audit TO {role};"
    );
    client
        .batch_execute(&script)
        .map_err(|e| SinkError::Unavailable {
            sink: url.clone(),
            reason: describe(&e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_plain_identifiers() {
        assert!(plain_identifier("agentsec"));
        assert!(plain_identifier("_a1"));
        for bad in ["", "1a", "Agentsec", "a;drop", "a b", "a\"b"] {
            assert!(!plain_identifier(bad), "{bad}");
        }
    }
}
