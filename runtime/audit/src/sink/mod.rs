//! Sinks: copies of the log's entries in a central store (PostgreSQL) or a
//! log pipeline (syslog), shipped at least once from a durable cursor.
//!
//! The local log stays the source of truth and is always written first;
//! [`ship`] reads it and sends every entry after the sink's cursor, then
//! moves the cursor (fsynced) only once the sink has acknowledged them. A
//! crash between the two re-sends those entries: the sink de-duplicates by
//! (host, log id, seq). See [`ship`] for the details.
//!
//! Only with the `sinks` feature: the broker, which only appends, does not
//! link a database client.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

mod cursor;
mod postgres;
mod ship;
mod store;
mod sync;
mod syslog;

pub use cursor::{Cursor, cursor_dir};
pub use postgres::{AGENTSEC_TABLE, init as init_postgres};
pub use ship::{ChainId, SHIP_BATCH, ShipOptions, SinkReport, chain_id, ship};
pub use store::{StoreChain, StoreProblem, StoreRow, store_chains, store_rows};
pub use sync::SyncShipper;

/// How long connecting to a sink may take before the attempt counts as failed.
///
/// Reason: a sink that is down must not hold a run (or `audit ship`) longer
/// than its retry budget; a loopback or LAN connection takes milliseconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest sink URL accepted, in bytes.
///
/// Reason: URLs come from the command line and agentsec.yaml; a real one is
/// well under 200 bytes.
pub const MAX_SINK_URL: usize = 2048;

/// Where entries are shipped: parsed from `postgres://...`,
/// `syslog+tcp://HOST:PORT` or `syslog+unix:///PATH`.
#[derive(Clone, PartialEq, Eq)]
pub enum SinkUrl {
    /// A PostgreSQL database (table [`AGENTSEC_TABLE`]). The URL has no
    /// password: it is taken from `PGPASSWORD` when connecting.
    Postgres {
        /// The URL as given.
        url: String,
    },
    /// A syslog receiver over TCP (RFC 5425-style octet counting, no TLS).
    SyslogTcp {
        /// `host:port`.
        addr: String,
    },
    /// A local syslog socket (datagram, as `/dev/log`).
    SyslogUnix {
        /// The socket path.
        path: PathBuf,
    },
}

impl fmt::Debug for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl fmt::Display for SinkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres { url } => f.write_str(url),
            Self::SyslogTcp { addr } => write!(f, "syslog+tcp://{addr}"),
            Self::SyslogUnix { path } => write!(f, "syslog+unix://{}", path.display()),
        }
    }
}

impl SinkUrl {
    /// Parses a sink URL.
    ///
    /// # Errors
    /// [`SinkError::Url`] naming what is wrong (never echoing a password:
    /// a URL with one is refused without repeating it).
    pub fn parse(text: &str) -> Result<Self, SinkError> {
        let bad = |reason: String| SinkError::Url { reason };
        if text.len() > MAX_SINK_URL {
            return Err(bad(format!("longer than {MAX_SINK_URL} bytes")));
        }
        if let Some(rest) = text
            .strip_prefix("postgres://")
            .or_else(|| text.strip_prefix("postgresql://"))
        {
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            if let Some((userinfo, _)) = authority.rsplit_once('@')
                && userinfo.contains(':')
            {
                return Err(bad(
                    "a PostgreSQL sink URL must not carry a password (it would be in shell history, the process list and agentsec.yaml); set PGPASSWORD in the environment instead".to_owned(),
                ));
            }
            if rest.contains("password=") {
                return Err(bad(
                    "a PostgreSQL sink URL must not carry a password; set PGPASSWORD in the environment instead".to_owned(),
                ));
            }
            postgres::check_url(text).map_err(bad)?;
            return Ok(Self::Postgres {
                url: text.to_owned(),
            });
        }
        if let Some(addr) = text.strip_prefix("syslog+tcp://") {
            let addr = addr.trim_end_matches('/');
            let Some((host, port)) = addr.rsplit_once(':') else {
                return Err(bad(format!(
                    "`{}`: expected syslog+tcp://HOST:PORT",
                    text.escape_debug()
                )));
            };
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad(format!(
                    "`{}`: expected syslog+tcp://HOST:PORT with a port from 1 to 65535",
                    text.escape_debug()
                )));
            }
            return Ok(Self::SyslogTcp {
                addr: addr.to_owned(),
            });
        }
        if let Some(path) = text.strip_prefix("syslog+unix://") {
            if !path.starts_with('/') {
                return Err(bad(format!(
                    "`{}`: expected syslog+unix:///ABSOLUTE/PATH (e.g. syslog+unix:///dev/log)",
                    text.escape_debug()
                )));
            }
            return Ok(Self::SyslogUnix {
                path: PathBuf::from(path),
            });
        }
        Err(bad(format!(
            "`{}`: use postgres://USER@HOST:PORT/DB, syslog+tcp://HOST:PORT or syslog+unix:///PATH",
            text.escape_debug()
        )))
    }

    /// A short, stable name for this sink's cursor file: the first 16 hex
    /// digits of the SHA-256 of the URL.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.to_string().as_bytes());
        hex::encode(&digest[..8])
    }

    /// Whether the sink keeps entries by (host, log id, seq), so that it can
    /// be read back (verify, query): only PostgreSQL.
    pub fn is_store(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }
}

/// Why shipping (or reading the central store) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink URL is not one agentsec can use.
    #[error("audit sink URL: {reason}")]
    Url {
        /// What is wrong.
        reason: String,
    },
    /// The sink could not be reached or refused the entries.
    #[error("audit sink {sink}: {reason}")]
    Unavailable {
        /// The sink's URL.
        sink: String,
        /// What went wrong.
        reason: String,
    },
    /// The sink already holds a different entry at a seq being shipped: the
    /// local log was rewritten after it was shipped (or two logs claim the
    /// same host and log id).
    #[error(
        "audit sink {}: host {} log {} seq {} is already in the store with hash {}, but the local log has {}; the local log was rewritten after it was shipped (a fork): run `agentsec audit verify --from {}` and investigate",
        .0.sink, .0.host, .0.log_id, .0.seq, .0.stored, .0.local, .0.sink
    )]
    Fork(Box<Fork>),
    /// The local log or a cursor could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Another process is shipping this log right now (and
    /// [`ShipOptions::wait_for_lock`] was not set).
    #[error("{}: another process is shipping this log now", path.display())]
    Busy {
        /// The log.
        path: PathBuf,
    },
    /// The local log cannot be shipped as it is.
    #[error("{}: {reason}", path.display())]
    Log {
        /// The log.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Where the store and the local log disagree ([`SinkError::Fork`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Fork {
    /// The sink's URL.
    pub sink: String,
    /// The host.
    pub host: String,
    /// The log id.
    pub log_id: String,
    /// The seq.
    pub seq: u64,
    /// The hash in the store.
    pub stored: String,
    /// The hash in the local log.
    pub local: String,
}
