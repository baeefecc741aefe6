//! Append-only, hash-chained audit log of secret requests.
//!
//! Every time a skill asks for a secret, the host appends one [`Record`] to
//! the log and releases the value only if the append returned `Ok`: the
//! record is in the log before the secret enters the sandbox. Any
//! [`AuditError`] means nothing was appended and the request must fail closed.
//! [`AuditLog::append`] also `fsync`s the record; [`AuditLog::append_unsynced`]
//! leaves that to one [`AuditLog::sync`] for a batch (the host syncs a run's
//! records before the run's output leaves the sandbox).
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
//! let appended = log.append(&record)?; // written and fsynced: only now release the value
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
//! these keys, always all present (except `chain` and `caller`), in this order:
//!
//! | key | value |
//! |---|---|
//! | `ts` | time of the append, RFC 3339 in UTC with exactly 6 fractional digits: `2025-01-02T03:04:05.123456Z` |
//! | `agent_id` | string |
//! | `caller` | only when known: object `{"uid": integer, "user": string, "pid": integer}` (keys in that order; `user` and `pid` absent when unknown): who asked, as the kernel proved it |
//! | `skill` | object `{"name": string, "sha256": string}` (keys in that order; sha256 of the component, lowercase hex) |
//! | `store` | only when the host names it: object `{"kind": "sops", "path": string, "sha256": string, "env": string}` (a SOPS file, the SHA-256 of its bytes, the `--env` that chose it; `env` absent without one) or `{"kind": "vault", "addr": string, "mount": string, "kv_version": integer}`; keys in that order, absent ones left out. Absent in logs written before it existed |
//! | `secret_path` | string |
//! | `access_type` | `"read"`, `"write"`, `"list"`, `"reveal"` (MCP `secrets_get` handed the value to the agent's model, allowed by `reveal_to_agent: true`), `"inject"` (the host used the secret in a request for the skill), `"sign"` (the host signed with it), `"run"` for an event of the whole run (limit, trap, refused output; empty `secret_path`), `"reload"` (a long-lived host loaded, or refused, a changed policy or secrets file; empty `secret_path`, `detail` names the file), or `"egress"` (a skill's outgoing HTTP request or TCP connection that carried no host secret; empty `secret_path`, `detail` has the method and `scheme://host:port`) |
//! | `decision` | `"allow"` or `"deny"` |
//! | `rule` | string or `null`: the policy rule that decided |
//! | `access_level` | string or `null`: the level the rule grants |
//! | `detail` | string or `null`: a short non-secret reason, e.g. `"not-found"`, `"limit: get-secret calls exceeded"` |
//! | `run_id` | string (32 lowercase hex digits from [`new_run_id`]) |
//! | `seq` | integer: 1 for the first entry of a chain, then +1 per entry |
//! | `prev` | the previous entry's `hash`; [`GENESIS_HASH`] (64 zeros) for the first |
//! | `chain` | only on the first line of each file (log or rotated segment): `{"kind":"sha256"}` or `{"kind":"hmac-sha256","key_id":"<16 hex>"}` ([`ChainKey::fingerprint`], never the key); a verifier refuses a keyed marker over unkeyed entries, markers that change, or one missing after an earlier file had one. Absent in logs written before it existed (they verify as before) |
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
//! With [`LogOptions::max_size`], an append that makes the file at least
//! that long then rotates it: the full file is hard-linked to `<name>.<N>`
//! (N = 1, 2, ..., one past the highest existing), and a new, empty file is
//! renamed over `<name>`; the next entry written there chains to the
//! segment's last entry (its `prev` that entry's hash, its `seq` the next
//! number). A writer that finds `<name>` empty takes the newest segment's
//! last entry as the tail. The path always names a log file. Other writers
//! that were waiting for the old file's lock find it longer than they left
//! it, see that the path now names another file (inode check) and reopen
//! it. [`log_files`] lists `<name>.1, <name>.2, ..., <name>`, which
//! [`verify`] checks as one chain.
//!
//! Rotate with this crate (or not at all), not with an external tool:
//! logrotate's `create` mode renames the log under a writer, which keeps
//! appending to the renamed file for up to a second (see below), and its
//! numbering (`.1` the newest) is the reverse of this crate's. Archiving
//! old segments is fine; removing the newest one while `<name>` is empty
//! makes the next entry chain to an older segment, which [`verify`] then
//! reports as a deletion.
//!
//! # Concurrency and durability
//!
//! An append takes an exclusive `flock` lock (via fs4) on the file, learns
//! the tail's `seq` and `hash`, writes the new line with a single `write` to
//! a file opened in append mode and unlocks. Any number
//! of [`AuditLog`] handles, threads or processes can append to one file and
//! still form one chain, provided they all use this crate (or the same
//! locking).
//!
//! The tail is read from the file (last line, parsed and its tag checked)
//! when the handle opens the log and whenever the file's length is not what
//! this handle left it at (after checking that the log's name still names
//! the locked file: another writer may have rotated it); otherwise the
//! handle's own last record is the tail, because writers only ever append,
//! every append changes the length, and a rotation always follows an append
//! to the file it rotates. The path is also checked at least once a second,
//! so a long-lived handle notices a rename by someone else. A log whose last line is torn or corrupt when read refuses
//! further appends until an operator moves it aside. (An in-place edit that
//! keeps the file's length is not noticed by a handle that wrote last; it is
//! what [`verify`] finds.)
//!
//! Durability: [`AuditLog::append`] `fsync`s (`fdatasync`) before it
//! returns. [`AuditLog::append_unsynced`] returns once the line is written
//! (in the page cache: every reader sees it, and it survives the writer
//! being killed); [`AuditLog::sync`] makes all of them durable in one
//! `fsync`, as does rotation and dropping the handle (best effort). A handle
//! that finds the log rotated syncs what it wrote to the old file before it
//! moves on. After a failed `fsync` a handle refuses every further call
//! (Linux reports a writeback error only once, so a retry could wrongly
//! succeed); open the log again to go on. See `benches/README.md` for what
//! each costs.
//!
//! # Sinks (feature `sinks`)
//!
//! `sink::ship` copies every entry after a sink's durable cursor to a
//! central PostgreSQL table or a syslog receiver, at least once, and
//! `sink::store_chains` checks every host's chain in the store as
//! [`verify`] checks a file (the rows keep each line exactly as written).
//! `sink::SyncShipper` is an [`AppendHook`] that makes each append wait for
//! the sinks' acknowledgement. The local log is always written first. Off by
//! default: a crate that only appends (the broker) links no database client.
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
#[cfg(feature = "sinks")]
pub mod sink;
mod verify;

pub use entry::{GENESIS_HASH, MAX_RECORD_SIZE};
pub use error::{AuditError, KeyError, VerifyError};
pub use key::{CHAIN_KEY_LEN, ChainKey, MAX_KEY_PLAINTEXT};
pub use log::{AppendHook, Appended, AuditLog, LogOptions};
pub use read::{AuditEntry, ReadSummary, read_entries};
pub use record::{AccessType, CallerInfo, Decision, Record, RunContext, StoreRef, new_run_id};
pub use rotate::log_files;
pub use verify::{VerifyOptions, VerifyReport, verify, verify_with};
