//! Reading the central store back: every host's chain, checked as
//! [`crate::verify`] checks a file, and the rows themselves for queries.

use super::{SinkError, SinkUrl, postgres};
use crate::entry::{self, DecodeError, GENESIS_HASH, TagCheck};
use crate::key::ChainKey;

/// Rows read per round trip when walking a chain.
///
/// Reason: bounds memory per query while keeping round trips few.
const PAGE: i64 = 5000;

/// One row of the store, as shipped.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreRow {
    /// `host`.
    pub host: String,
    /// `log_id`.
    pub log_id: String,
    /// `seq`.
    pub seq: u64,
    /// `hash` (the entry's tag).
    pub hash: String,
    /// `prev`.
    pub prev: String,
    /// `line`: the entry exactly as written in the host's log.
    pub line: String,
}

/// What is wrong with a chain in the store, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreProblem {
    /// Entries are missing: `missing` was expected, `found` came next (or
    /// the chain does not start at 1).
    Gap {
        /// The first missing seq.
        missing: u64,
        /// The next seq the store has.
        found: u64,
    },
    /// The row at `seq` was changed: its line does not hash to its tag, or
    /// its columns disagree with its line, or it is not a canonical entry.
    Edited {
        /// The row's seq.
        seq: u64,
        /// What disagrees.
        reason: String,
    },
    /// The row at `seq` holds the entry of another seq: rows were reordered
    /// or renumbered.
    Reordered {
        /// The row's seq column.
        seq: u64,
        /// The seq written in its entry.
        entry_seq: u64,
    },
    /// The row at `seq` does not link to the previous one (`prev` is not the
    /// previous entry's hash): entries were reordered, or two histories
    /// (a fork) were mixed.
    BrokenLink {
        /// The row's seq.
        seq: u64,
    },
    /// The entry is keyed (`hmac`) and no key was given, or the reverse.
    Key {
        /// The row's seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// The log id is not the first entry's hash: rows of another log were
    /// put under this id.
    WrongLogId,
}

impl std::fmt::Display for StoreProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gap { missing, found } => write!(
                f,
                "seq {missing} is missing (the next entry in the store is seq {found}): entries were deleted, or not shipped yet"
            ),
            Self::Edited { seq, reason } => write!(f, "entry seq {seq} was edited: {reason}"),
            Self::Reordered { seq, entry_seq } => write!(
                f,
                "rows were reordered: the row at seq {seq} holds entry seq {entry_seq}"
            ),
            Self::BrokenLink { seq } => write!(
                f,
                "entry seq {seq} does not link to seq {}: entries were reordered or replaced (a fork)",
                seq.saturating_sub(1)
            ),
            Self::Key { seq, reason } => write!(f, "entry seq {seq}: {reason}"),
            Self::WrongLogId => f.write_str(
                "the log id is not the first entry's hash: rows of another log were stored under it",
            ),
        }
    }
}

/// One host's chain in the store, as checked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreChain {
    /// `host`.
    pub host: String,
    /// `log_id`.
    pub log_id: String,
    /// Rows of this chain in the store.
    pub rows: u64,
    /// The last entry checked (the head if `problem` is `None`): seq, hash.
    pub head_seq: u64,
    /// Its hash.
    pub head_hash: String,
    /// The first problem found, if any.
    pub problem: Option<StoreProblem>,
}

/// Checks every chain in the PostgreSQL store at `url` (one per host and
/// log id), with `key` for keyed chains.
///
/// # Errors
/// [`SinkError::Unavailable`] if the store cannot be read.
pub fn store_chains(url: &SinkUrl, key: Option<&ChainKey>) -> Result<Vec<StoreChain>, SinkError> {
    let SinkUrl::Postgres { url } = url else {
        return Err(SinkError::Url {
            reason: format!(
                "`{url}` is not a PostgreSQL URL; only a PostgreSQL store can be read back"
            ),
        });
    };
    let unavailable = |e: ::postgres::Error| SinkError::Unavailable {
        sink: url.clone(),
        reason: postgres::describe(&e),
    };
    let mut client = postgres::connect(url)?;
    let groups = client
        .query(
            "SELECT host, log_id, count(*) FROM agentsec_audit GROUP BY host, log_id ORDER BY host, log_id",
            &[],
        )
        .map_err(unavailable)?;
    let mut chains = Vec::with_capacity(groups.len());
    for g in groups {
        let host: String = g.get(0);
        let log_id: String = g.get(1);
        let rows: i64 = g.get(2);
        let mut check = ChainCheck::new(key);
        let mut after = 0i64;
        'pages: loop {
            let page = client
                .query(
                    "SELECT seq, hash, prev, line FROM agentsec_audit WHERE host = $1 AND log_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
                    &[&host, &log_id, &after, &PAGE],
                )
                .map_err(unavailable)?;
            let n = page.len();
            for row in page {
                let seq: i64 = row.get(0);
                after = seq;
                let row = StoreRow {
                    host: host.clone(),
                    log_id: log_id.clone(),
                    seq: u64::try_from(seq).unwrap_or(0),
                    hash: row.get(1),
                    prev: row.get(2),
                    line: row.get(3),
                };
                if check.next(&row).is_err() {
                    break 'pages;
                }
            }
            if i64::try_from(n).unwrap_or(i64::MAX) < PAGE {
                break;
            }
        }
        if check.problem.is_none() && check.first_hash.get(..log_id.len()) != Some(log_id.as_str())
        {
            check.problem = Some(StoreProblem::WrongLogId);
        }
        chains.push(StoreChain {
            host,
            log_id,
            rows: u64::try_from(rows).unwrap_or(0),
            head_seq: check.seq,
            head_hash: check.hash,
            problem: check.problem,
        });
    }
    Ok(chains)
}

/// Calls `each` with every row of the store (ordered by host, log id, seq).
///
/// # Errors
/// [`SinkError::Unavailable`] if the store cannot be read.
pub fn store_rows(url: &SinkUrl, mut each: impl FnMut(StoreRow)) -> Result<(), SinkError> {
    let SinkUrl::Postgres { url } = url else {
        return Err(SinkError::Url {
            reason: format!(
                "`{url}` is not a PostgreSQL URL; only a PostgreSQL store can be read back"
            ),
        });
    };
    let unavailable = |e: ::postgres::Error| SinkError::Unavailable {
        sink: url.clone(),
        reason: postgres::describe(&e),
    };
    let mut client = postgres::connect(url)?;
    let mut after: (String, String, i64) = (String::new(), String::new(), 0);
    loop {
        let page = client
            .query(
                "SELECT host, log_id, seq, hash, prev, line FROM agentsec_audit WHERE (host, log_id, seq) > ($1, $2, $3) ORDER BY host, log_id, seq LIMIT $4",
                &[&after.0, &after.1, &after.2, &PAGE],
            )
            .map_err(unavailable)?;
        let n = page.len();
        for row in page {
            let seq: i64 = row.get(2);
            let r = StoreRow {
                host: row.get(0),
                log_id: row.get(1),
                seq: u64::try_from(seq).unwrap_or(0),
                hash: row.get(3),
                prev: row.get(4),
                line: row.get(5),
            };
            after = (r.host.clone(), r.log_id.clone(), seq);
            each(r);
        }
        if i64::try_from(n).unwrap_or(i64::MAX) < PAGE {
            return Ok(());
        }
    }
}

/// The chain check over rows in seq order.
struct ChainCheck<'k> {
    key: Option<&'k ChainKey>,
    /// Last seq checked.
    seq: u64,
    /// Its hash.
    hash: String,
    first_hash: String,
    problem: Option<StoreProblem>,
}

impl<'k> ChainCheck<'k> {
    fn new(key: Option<&'k ChainKey>) -> Self {
        Self {
            key,
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
            first_hash: String::new(),
            problem: None,
        }
    }

    fn fail(&mut self, problem: StoreProblem) -> Result<(), ()> {
        self.problem = Some(problem);
        Err(())
    }

    fn next(&mut self, row: &StoreRow) -> Result<(), ()> {
        let seq = row.seq;
        let edited = |reason: &str| StoreProblem::Edited {
            seq,
            reason: reason.to_owned(),
        };
        let decoded = match entry::decode(row.line.as_bytes()) {
            Ok(d) => d,
            Err(DecodeError::NonCanonical) => {
                return self.fail(edited(
                    "its line is not in canonical form (it was rewritten)",
                ));
            }
            Err(DecodeError::Malformed(reason)) => {
                return self.fail(edited(&format!("its line is not an audit entry: {reason}")));
            }
        };
        match decoded.check(self.key) {
            TagCheck::Valid => {}
            TagCheck::Mismatch => {
                return self.fail(edited("its hash does not match its content"));
            }
            TagCheck::KeyRequired => {
                return self.fail(StoreProblem::Key {
                    seq,
                    reason: "the chain is keyed (`hmac`); pass its key with --key FILE".to_owned(),
                });
            }
            TagCheck::Unkeyed => {
                return self.fail(StoreProblem::Key {
                    seq,
                    reason: "a key was given but the entry is unkeyed (`hash`)".to_owned(),
                });
            }
        }
        if decoded.entry.seq != seq {
            return self.fail(StoreProblem::Reordered {
                seq,
                entry_seq: decoded.entry.seq,
            });
        }
        if decoded.stored_hash != row.hash || *decoded.entry.prev != *row.prev {
            return self.fail(edited(
                "the row's hash or prev column disagrees with its entry",
            ));
        }
        let expected = self.seq + 1;
        if seq != expected {
            return self.fail(StoreProblem::Gap {
                missing: expected,
                found: seq,
            });
        }
        if decoded.entry.prev != self.hash {
            return self.fail(StoreProblem::BrokenLink { seq });
        }
        if seq == 1 {
            self.first_hash.clone_from(&decoded.stored_hash);
        }
        self.seq = seq;
        self.hash = decoded.stored_hash;
        Ok(())
    }
}
