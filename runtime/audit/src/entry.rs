//! The line format: one entry, its canonical JSON form, its hash, and the
//! strict decoding shared by [`AuditLog`](crate::AuditLog) (for the tail) and
//! [`verify`](crate::verify).
//!
//! See the crate documentation for the format as a verifier in another
//! language needs it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::key::ChainKey;
use crate::record::{AccessType, CallerInfo, Decision, Record, StoreRef};

/// The `prev` of the first entry of a chain: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The longest line (including its `\n`) the log writes or reads, in bytes.
///
/// Reason: the writer must find the last record by reading backwards from the
/// end of a file that another process (or an attacker) may have changed, and
/// the verifier reads line by line; both allocate at most this much per line.
/// A real record is a few hundred bytes: ids and secret paths are short (the
/// host limits path length far below this).
pub const MAX_RECORD_SIZE: usize = 64 * 1024;

/// Length of a lowercase hex SHA-256.
const HEX_LEN: usize = 64;

/// What the writer inserts before the final `}` in unkeyed mode:
/// `,"hash":"` + hex + `"`.
const HASH_KEY: &[u8] = b",\"hash\":\"";

/// The same in keyed mode: `,"hmac":"` + hex + `"`. Same length as
/// [`HASH_KEY`], so both suffixes are [`TAG_SUFFIX_LEN`] bytes.
const HMAC_KEY: &[u8] = b",\"hmac\":\"";

/// Bytes at the end of a line (without its `\n`) that carry the tag:
/// `,"hash":"<64 hex>"}` or `,"hmac":"<64 hex>"}`.
const TAG_SUFFIX_LEN: usize = HASH_KEY.len() + HEX_LEN + 2;

/// How an entry's tag was computed, as its key in the line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagKind {
    /// `"hash"`: SHA-256 of the canonical form.
    Hash,
    /// `"hmac"`: HMAC-SHA256 of the canonical form under the chain key.
    Hmac,
}

/// How a decoded entry's tag compares with its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagCheck {
    /// The tag is the hash (or HMAC under the given key) of the content.
    Valid,
    /// The tag does not match the content (or, for `hmac`, the key).
    Mismatch,
    /// The entry is keyed (`hmac`) but no key was given.
    KeyRequired,
    /// A key was given but the entry is unkeyed (`hash`).
    Unkeyed,
}

/// `ts`: RFC 3339 in UTC with exactly six fractional digits and `Z`. (The
/// `Z` is a literal: formatting is always from a UTC time, and parsing
/// reads a `PrimitiveDateTime`.)
const TS_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// The `skill` object.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SkillRef<'a> {
    pub(crate) name: Cow<'a, str>,
    pub(crate) sha256: Cow<'a, str>,
}

/// `chain` of `kind` for an unkeyed (SHA-256) chain.
pub(crate) const KIND_SHA256: &str = "sha256";
/// `chain` of `kind` for a keyed (HMAC-SHA256) chain.
pub(crate) const KIND_HMAC: &str = "hmac-sha256";

/// The `chain` object of a file's first entry: what kind of chain the log is
/// and, keyed, which key (its [`ChainKey::fingerprint`], never the key).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChainInfo<'a> {
    pub(crate) kind: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_id: Option<Cow<'a, str>>,
}

impl ChainInfo<'static> {
    /// The marker for a chain written with `key` (or none).
    pub(crate) fn for_key(key: Option<&ChainKey>) -> Self {
        match key {
            None => Self {
                kind: Cow::Borrowed(KIND_SHA256),
                key_id: None,
            },
            Some(key) => Self {
                kind: Cow::Borrowed(KIND_HMAC),
                key_id: Some(Cow::Owned(key.fingerprint())),
            },
        }
    }
}

/// One log entry without its `hash`. Field order here IS the canonical order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry<'a> {
    pub(crate) ts: Cow<'a, str>,
    pub(crate) agent_id: Cow<'a, str>,
    /// Who asked (uid, user, pid). Absent in logs written before it existed and in
    /// records of no caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) caller: Option<Cow<'a, CallerInfo>>,
    pub(crate) skill: SkillRef<'a>,
    /// Where the values come from; absent when the host did not say (and
    /// in logs written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) store: Option<Cow<'a, StoreRef>>,
    pub(crate) secret_path: Cow<'a, str>,
    pub(crate) access_type: AccessType,
    pub(crate) decision: Decision,
    pub(crate) rule: Option<Cow<'a, str>>,
    pub(crate) access_level: Option<Cow<'a, str>>,
    pub(crate) detail: Option<Cow<'a, str>>,
    pub(crate) run_id: Cow<'a, str>,
    pub(crate) seq: u64,
    pub(crate) prev: Cow<'a, str>,
    /// Only in the first entry of each file (a log, or a rotated segment):
    /// the chain's kind and key id, so that a keyed log rewritten as an
    /// unkeyed chain is caught. Absent in logs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) chain: Option<ChainInfo<'a>>,
}

impl<'a> Entry<'a> {
    /// Places `record` in the chain after the entry whose hash is `prev`.
    pub(crate) fn new(record: &Record<'a>, ts: &'a str, seq: u64, prev: &'a str) -> Self {
        let run = record.run;
        Self {
            ts: Cow::Borrowed(ts),
            agent_id: Cow::Borrowed(run.agent_id()),
            caller: run.caller().map(Cow::Borrowed),
            skill: SkillRef {
                name: Cow::Borrowed(run.skill_name()),
                sha256: Cow::Borrowed(run.skill_sha256()),
            },
            store: run.store().map(Cow::Borrowed),
            secret_path: Cow::Borrowed(record.secret_path),
            access_type: record.access_type,
            decision: record.decision,
            rule: record.rule.map(Cow::Borrowed),
            access_level: record.access_level.map(Cow::Borrowed),
            detail: record.detail.map(Cow::Borrowed),
            run_id: Cow::Borrowed(run.run_id()),
            seq,
            prev: Cow::Borrowed(prev),
            chain: None,
        }
    }
}

/// The current time in the `ts` format, written into `buf` (cleared first,
/// its allocation reused), or `None` if the clock is outside what RFC 3339
/// can express (years before 0 or after 9999).
pub(crate) fn now_timestamp_into(buf: &mut Vec<u8>) -> Option<&str> {
    buf.clear();
    OffsetDateTime::now_utc().format_into(buf, TS_FORMAT).ok()?;
    std::str::from_utf8(buf).ok()
}

/// Lowercase hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The line to write for `entry` (ending in `\n`) and the entry's tag:
/// SHA-256 without a key, HMAC-SHA256 under `key` with one.
#[cfg(test)]
pub(crate) fn encode(
    entry: &Entry<'_>,
    key: Option<&ChainKey>,
) -> Result<(Vec<u8>, String), serde_json::Error> {
    let mut line = Vec::new();
    let tag = encode_into(entry, key, &mut line)?;
    Ok((line, tag))
}

/// [`encode`] into `line` (cleared first, its allocation reused); returns
/// the tag.
pub(crate) fn encode_into(
    entry: &Entry<'_>,
    key: Option<&ChainKey>,
    line: &mut Vec<u8>,
) -> Result<String, serde_json::Error> {
    line.clear();
    serde_json::to_writer(&mut *line, entry)?;
    let (tag, tag_key) = match key {
        None => (sha256_hex(line), HASH_KEY),
        Some(key) => (key.tag_hex(line), HMAC_KEY),
    };
    if line.pop() != Some(b'}') {
        return Err(serde::ser::Error::custom(
            "an entry must serialize to a JSON object",
        ));
    }
    line.reserve(TAG_SUFFIX_LEN + 1);
    line.extend_from_slice(tag_key);
    line.extend_from_slice(tag.as_bytes());
    line.extend_from_slice(b"\"}\n");
    Ok(tag)
}

/// A line that passed [`decode`]: well-formed and canonical. Its tag may
/// still not match: that is for the caller to judge with [`Decoded::check`].
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The entry without its tag.
    pub(crate) entry: Entry<'static>,
    /// The `hash` or `hmac` written in the line.
    pub(crate) stored_hash: String,
    /// Which of the two it is.
    pub(crate) kind: TagKind,
    /// The canonical form the tag covers.
    canonical: Vec<u8>,
}

impl Decoded {
    /// Checks the stored tag against the content, with `key` in keyed mode.
    pub(crate) fn check(&self, key: Option<&ChainKey>) -> TagCheck {
        let valid = match (self.kind, key) {
            (TagKind::Hash, None) => sha256_hex(&self.canonical) == self.stored_hash,
            (TagKind::Hmac, Some(key)) => key.tag_matches(&self.canonical, &self.stored_hash),
            (TagKind::Hmac, None) => return TagCheck::KeyRequired,
            (TagKind::Hash, Some(_)) => return TagCheck::Unkeyed,
        };
        if valid {
            TagCheck::Valid
        } else {
            TagCheck::Mismatch
        }
    }
}

/// Why a line is not an audit entry. Never quotes the line's content.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Not an entry at all; the reason names what is wrong, not the value.
    Malformed(String),
    /// A valid entry, but not written in the canonical form (whitespace, key
    /// order, escaping), so its hash would not be reproducible.
    NonCanonical,
}

fn is_lower_hex(s: &[u8]) -> bool {
    s.len() == HEX_LEN && s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Decodes one line (without its `\n`) strictly.
pub(crate) fn decode(line: &[u8]) -> Result<Decoded, DecodeError> {
    let malformed = |reason: &str| DecodeError::Malformed(reason.to_owned());
    if line.len() < TAG_SUFFIX_LEN + 2 || line.first() != Some(&b'{') {
        return Err(malformed(
            "not a JSON object ending in a `hash` or `hmac` field",
        ));
    }
    let (body, suffix) = line.split_at(line.len() - TAG_SUFFIX_LEN);
    let (key, rest) = suffix.split_at(HASH_KEY.len());
    let (hash, end) = rest.split_at(HEX_LEN);
    let kind = match key {
        HASH_KEY => TagKind::Hash,
        HMAC_KEY => TagKind::Hmac,
        _ => {
            return Err(malformed(
                "the line does not end with a `hash` or `hmac` field",
            ));
        }
    };
    if end != b"\"}" {
        return Err(malformed(
            "the line does not end with a `hash` or `hmac` field",
        ));
    }
    if !is_lower_hex(hash) {
        return Err(malformed("the tag is not 64 lowercase hex digits"));
    }
    let mut canonical = Vec::with_capacity(body.len() + 1);
    canonical.extend_from_slice(body);
    canonical.push(b'}');
    let entry: Entry<'static> = serde_json::from_slice(&canonical).map_err(|e| {
        // The error's own message may quote content; give its kind and column.
        DecodeError::Malformed(format!(
            "not a valid audit entry ({:?} error at column {})",
            e.classify(),
            e.column()
        ))
    })?;
    if !is_lower_hex(entry.prev.as_bytes()) {
        return Err(malformed("`prev` is not 64 lowercase hex digits"));
    }
    if PrimitiveDateTime::parse(&entry.ts, TS_FORMAT).is_err() {
        return Err(malformed(
            "`ts` is not an RFC 3339 UTC time with 6 fractional digits",
        ));
    }
    let reencoded = serde_json::to_vec(&entry).map_err(|_| DecodeError::NonCanonical)?;
    if reencoded != canonical {
        return Err(DecodeError::NonCanonical);
    }
    Ok(Decoded {
        entry,
        stored_hash: String::from_utf8_lossy(hash).into_owned(),
        kind,
        canonical,
    })
}

/// Only the `seq` of a line, ignoring everything else; used to tell a
/// reordered log from one with deleted entries.
pub(crate) fn loose_seq(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    serde_json::from_slice::<SeqOnly>(line).ok().map(|s| s.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{RunContext, StoreRef};

    fn sample_line(path: &str) -> (Vec<u8>, String) {
        let run = RunContext::new("ops/a", "skill", "ab".repeat(32), "cd".repeat(16));
        let record = Record::new(&run, path, AccessType::Read, Decision::Allow).rule("r");
        let entry = Entry::new(&record, "2025-01-02T03:04:05.000006Z", 1, GENESIS_HASH);
        encode(&entry, None).expect("encodes")
    }

    #[test]
    fn line_is_canonical_plus_hash_and_round_trips() {
        let (line, hash) = sample_line("a.b");
        let text = std::str::from_utf8(&line).expect("utf-8");
        let expected_canonical = format!(
            "{{\"ts\":\"2025-01-02T03:04:05.000006Z\",\"agent_id\":\"ops/a\",\"skill\":{{\"name\":\"skill\",\"sha256\":\"{}\"}},\"secret_path\":\"a.b\",\"access_type\":\"read\",\"decision\":\"allow\",\"rule\":\"r\",\"access_level\":null,\"detail\":null,\"run_id\":\"{}\",\"seq\":1,\"prev\":\"{}\"}}",
            "ab".repeat(32),
            "cd".repeat(16),
            GENESIS_HASH
        );
        assert_eq!(hash, sha256_hex(expected_canonical.as_bytes()));
        let mut written = expected_canonical.clone();
        written.pop();
        written.push_str(&format!(",\"hash\":\"{hash}\"}}\n"));
        assert_eq!(text, written);

        let decoded = decode(&line[..line.len() - 1]).expect("decodes");
        assert_eq!(decoded.check(None), TagCheck::Valid);
        assert_eq!(decoded.entry.seq, 1);
        assert_eq!(loose_seq(&line), Some(1));
    }

    #[test]
    fn store_is_after_skill_and_round_trips() {
        let run = RunContext::new("ops/a", "skill", "ab".repeat(32), "cd".repeat(16)).with_store(
            Some(StoreRef::sops("s.yaml", "ef".repeat(32)).env(Some("prod".to_owned()))),
        );
        let record = Record::new(&run, "p", AccessType::Read, Decision::Allow);
        let entry = Entry::new(&record, "2025-01-02T03:04:05.000006Z", 1, GENESIS_HASH);
        let (line, _) = encode(&entry, None).expect("encodes");
        let text = std::str::from_utf8(&line).expect("utf-8");
        let sha = "ef".repeat(32);
        assert!(
            text.contains(&format!("}},\"store\":{{\"kind\":\"sops\",\"path\":\"s.yaml\",\"sha256\":\"{sha}\",\"env\":\"prod\"}},\"secret_path\":\"p\"")),
            "{text}"
        );
        let decoded = decode(&line[..line.len() - 1]).expect("decodes");
        assert_eq!(decoded.check(None), TagCheck::Valid);
        assert_eq!(decoded.entry.store.as_deref(), run.store());
    }

    #[test]
    fn timestamps_reuse_the_buffer_and_parse_back() {
        let mut buf = Vec::with_capacity(64);
        let first = now_timestamp_into(&mut buf).expect("clock").to_owned();
        let capacity = buf.capacity();
        let second = now_timestamp_into(&mut buf).expect("clock").to_owned();
        assert_eq!(buf.capacity(), capacity);
        for ts in [&first, &second] {
            assert_eq!(ts.len(), "2025-01-02T03:04:05.123456Z".len(), "{ts}");
            assert!(PrimitiveDateTime::parse(ts, TS_FORMAT).is_ok(), "{ts}");
        }
        assert!(second >= first);
    }

    #[test]
    fn escaping_is_serde_json_standard() {
        let (line, _) = sample_line("q\"\\/\n\u{1}\u{7f}é");
        let text = std::str::from_utf8(&line).expect("utf-8");
        assert!(text.contains(r#""secret_path":"q\"\\/\n\u0001"#));
        assert!(text.contains("\u{7f}é\""));
        assert!(decode(&line[..line.len() - 1]).is_ok());
    }

    #[test]
    fn non_canonical_and_malformed_lines_are_rejected() {
        let (line, _) = sample_line("a.b");
        let text = std::str::from_utf8(&line[..line.len() - 1]).expect("utf-8");
        let spaced = text.replacen("\"seq\":1", "\"seq\": 1", 1);
        assert!(matches!(
            decode(spaced.as_bytes()),
            Err(DecodeError::NonCanonical)
        ));
        let unknown = text.replacen("{", "{\"x\":1,", 1);
        assert!(matches!(
            decode(unknown.as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(decode(b""), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            decode(&line[..40]),
            Err(DecodeError::Malformed(_))
        ));
    }
}
