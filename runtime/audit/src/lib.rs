//! Append-only, hash-chained audit log of secret requests.
//!
//! Every time a skill asks for a secret, the host appends one [`Record`] to
//! the log and releases the value only if [`AuditLog::append`] returned `Ok`:
//! the record is on disk (`fsync`ed) before the secret leaves the host. Any
//! [`AuditError`] means nothing was appended and the request must fail closed.
//!
//! ```
//! use agentsec_audit::{new_run_id, verify, AccessType, AuditLog, Decision, Record, RunContext};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("audit/audit.jsonl");
//! let mut log = AuditLog::open(&path)?; // at start-up: fails fast if not writable
//!
//! let run = RunContext::new("ops/release", "changelog", "ab".repeat(32), new_run_id()?);
//! let record = Record::new(&run, "github.token", AccessType::Read, Decision::Allow)
//!     .rule("github")
//!     .access_level("read");
//! let appended = log.append(&record)?; // only now release the value
//! assert_eq!(appended.seq, 1);
//!
//! let report = verify(&[path])?;
//! assert_eq!((report.entries, report.head_hash), (1, appended.hash));
//! # Ok(())
//! # }
//! ```
//!
//! # Never a value
//!
//! A [`Record`] is built from a [`RunContext`] (agent id, skill name and
//! digest, run id), a secret path, an [`AccessType`], a [`Decision`] and
//! optional rule, access level and detail strings. No constructor or setter
//! takes bytes, a `SecretString` or any other value type, so the API cannot
//! write a secret value. Passing bytes does not compile:
//!
//! ```compile_fail
//! # use agentsec_audit::{AccessType, Decision, Record, RunContext};
//! let run = RunContext::new("a", "s", "00", "r");
//! let value: &[u8] = b"hunter2";
//! let record = Record::new(&run, value, AccessType::Read, Decision::Allow);
//! ```
//!
//! The `&str` fields are identifiers chosen by the operator or the policy,
//! never values: the host must not put a value (or part of one) in `detail`.
//!
//! # Format
//!
//! The log is UTF-8 JSON lines: one entry per line, each ending in `\n`, at
//! most [`MAX_RECORD_SIZE`] bytes including the `\n`. An entry has exactly
//! these keys, always all present, in this order:
//!
//! | key | value |
//! |---|---|
//! | `ts` | time of the append, RFC 3339 in UTC with exactly 6 fractional digits: `2025-01-02T03:04:05.123456Z` |
//! | `agent_id` | string |
//! | `skill` | object `{"name": string, "sha256": string}` (keys in that order; sha256 of the component, lowercase hex) |
//! | `secret_path` | string |
//! | `access_type` | `"read"`, `"write"`, `"list"`, or `"run"` for an event of the whole run (limit, trap, refused output; empty `secret_path`) |
//! | `decision` | `"allow"` or `"deny"` |
//! | `rule` | string or `null`: the policy rule that decided |
//! | `access_level` | string or `null`: the level the rule grants |
//! | `detail` | string or `null`: a short non-secret reason, e.g. `"not-found"`, `"limit: get-secret calls exceeded"` |
//! | `run_id` | string (32 lowercase hex digits from [`new_run_id`]) |
//! | `seq` | integer: 1 for the first entry of a chain, then +1 per entry |
//! | `prev` | the previous entry's `hash`; [`GENESIS_HASH`] (64 zeros) for the first |
//! | `hash` | lowercase hex SHA-256 of the entry's canonical form; in keyed mode the key is `hmac` instead (see below) |
//!
//! **Canonical form.** The entry without `hash`, serialized as compact JSON
//! (serde_json's `to_vec`): keys in the order above, no whitespace anywhere,
//! `null` for absent optional strings, `seq` as a plain decimal integer, and
//! strings escaped exactly so: `"` as `\"`, `\` as `\\`, U+0008 `\b`, U+000C
//! `\f`, U+000A `\n`, U+000D `\r`, U+0009 `\t`, every other character below
//! U+0020 as `\u00XX` with lowercase hex digits, and every other character
//! (including `/`, U+007F and all non-ASCII) as its literal UTF-8 bytes.
//!
//! **Written line.** The canonical form with `,"hash":"<64 hex>"` inserted
//! before its final `}`, then `\n`.
//!
//! **Checking a line** (what [`verify`] does, reproducible in any language):
//! drop the `\n`; the line must end with `,"hash":"<64 lowercase hex>"}`
//! (75 bytes); remove those 75 bytes and append `}` to get the canonical form;
//! its SHA-256 must equal the hex (keyed: `,"hmac":"<64 hex>"}`, and the
//! HMAC-SHA256 under the key must equal it). Re-serializing the parsed entry in the
//! form above must give the same bytes (otherwise the line was rewritten).
//! Then `seq` must be the previous `seq + 1` and `prev` the previous `hash`.
//!
//! # Keyed mode
//!
//! With [`LogOptions::key`] (a [`ChainKey`]: 32 bytes the operator keeps in
//! an age-encrypted file, see `agentsec-run --audit-key`), each entry's tag
//! is `HMAC-SHA256(key, canonical form)`, written as `"hmac"` in place of
//! `"hash"` (same position, same 64 hex digits; `prev` links to it as
//! usual). Someone who can rewrite the file but does not hold the key
//! cannot recompute the chain. The line says which mode it is in; the key
//! itself is never written. A file is all `hash` or all `hmac`: a writer
//! refuses a log of the other mode ([`AuditError::ModeMismatch`]), and
//! [`verify_with`] with a key refuses a `hash` entry ([`VerifyError::Unkeyed`])
//! while [`verify`] without one refuses an `hmac` entry
//! ([`VerifyError::KeyRequired`]). Unkeyed logs are exactly as before.
//!
//! # Rotation
//!
//! With [`LogOptions::max_size`], an append that would make the file larger
//! than the limit first rotates it: the full file is hard-linked to
//! `<name>.<N>` (N = 1, 2, ..., one past the highest existing), and a new
//! file whose first entry is the record being appended (its `prev` the old
//! file's last hash, its `seq` the next number) is renamed over `<name>`.
//! The path always names a complete file. Other writers that were waiting
//! for the old file's lock see that the path now names another file (inode
//! check after taking the lock) and reopen it. [`log_files`] lists
//! `<name>.1, <name>.2, ..., <name>`, which [`verify`] checks as one chain.
//!
//! # Concurrency and durability
//!
//! [`AuditLog::append`] takes an exclusive `flock` lock (via fs4) on the
//! file, reads the last line to learn the tail's `seq` and `hash`, writes
//! the new line with a single `write` to a file opened in append mode,
//! `fsync`s it and unlocks. Any number of [`AuditLog`] handles, threads or
//! processes can append to one file and still form one chain, provided they
//! all use this crate (or the same locking). A log whose last line is torn
//! or corrupt refuses further appends until an operator moves it aside.
//! There is no group commit: every append is its own `fsync` (a run makes a
//! handful of records; see `benches/README.md` for the cost).
//!
//! # What the chain proves
//!
//! Editing, deleting, inserting or reordering entries is detected by
//! [`verify`], unless the attacker rewrites every later entry too (which
//! keyed mode prevents without the key); and removing entries from the end
//! is not detectable from the file alone. Keep [`VerifyReport::head_hash`]
//! (or the last [`Appended::hash`]) somewhere the attacker cannot write and
//! pass it as [`VerifyOptions::expect_head`], to close both gaps.

#![forbid(unsafe_code)]

mod entry;
mod error;
mod key;
mod log;
mod read;
mod record;
mod rotate;
mod verify;

pub use entry::{GENESIS_HASH, MAX_RECORD_SIZE};
pub use error::{AuditError, KeyError, VerifyError};
pub use key::{CHAIN_KEY_LEN, ChainKey, MAX_KEY_PLAINTEXT};
pub use log::{Appended, AuditLog, LogOptions};
pub use read::{AuditEntry, ReadSummary, read_entries};
pub use record::{AccessType, Decision, Record, RunContext, new_run_id};
pub use rotate::log_files;
pub use verify::{VerifyOptions, VerifyReport, verify, verify_with};
