//! How a path a caller passed (`get-secret`, `list-secrets`, an injection
//! header, ...) is written to the audit log.
//!
//! A skill chooses its paths, so a path can carry a value it was given: the
//! value itself, an encoding of it, one line of it, or a transformation no
//! redactor recognises (reversed, XORed). The audit log must never hold one,
//! so a path is recorded as it was asked only when it **names something in
//! the store** (its segments are key names, which the SOPS file keeps in
//! clear text anyway); even then it is redacted against the run's values
//! first. A path that names nothing is recorded as:
//!
//! - `secret_path`: the longest prefix of it that does exist (`""` for the
//!   root, and for a path that does not parse), redacted;
//! - in `detail`, after the usual detail: `unknown-path len=<bytes>
//!   hmac=<32 hex digits>`: its length as passed, and HMAC-SHA256 of its
//!   canonical form (of the raw bytes when it does not parse) under a random
//!   key made for this run and never stored, cut to 128 bits.
//!
//! The length and the prefix show what was probed and where; equal hashes
//! within a run show a repeated path. Because the key is gone when the run
//! ends, the hash is no guessing oracle: whoever reads the log cannot test
//! candidate values (or transformations of a value) against it, and hashes
//! cannot be correlated across runs.

use std::collections::HashSet;

use agentsec_policy::SecretPath;
use agentsec_secrets::NameIndex;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Redaction;

/// A path's recorded form.
pub(crate) struct Recorded {
    /// What goes into `secret_path`.
    pub(crate) path: String,
    /// What is appended to `detail` (only for a path that names nothing).
    pub(crate) note: Option<String>,
}

impl Recorded {
    /// `base` (the record's own detail, if any) followed by the note.
    pub(crate) fn detail(&self, base: Option<&str>) -> Option<String> {
        match (base, &self.note) {
            (Some(b), Some(n)) => Some(format!("{b}; {n}")),
            (Some(b), None) => Some(b.to_owned()),
            (None, Some(n)) => Some(n.clone()),
            (None, None) => None,
        }
    }
}

/// Bytes of an unparsable path that its hash covers. A guest controls the
/// length of what it passes (up to its memory) and hashing runs inside a host
/// call, where the deadline cannot interrupt it; a path longer than the
/// parser's own bound names nothing, and its first bytes plus the recorded
/// `len=` tell such paths apart well enough for forensics.
const MAX_HASHED_RAW: usize = agentsec_policy::MAX_PATH_LEN;

/// The per-run state of path recording.
#[derive(Default)]
pub(crate) struct PathRecorder {
    /// Every path that names a node of the store (leaves and their
    /// ancestors, the root included), computed on first use.
    known: Option<HashSet<SecretPath>>,
    /// This run's hash key: random, never written anywhere.
    key: Option<Zeroizing<[u8; 32]>>,
}

impl PathRecorder {
    /// The recorded form of `raw` (`parsed` when it parsed).
    pub(crate) fn form(
        &mut self,
        store: &dyn NameIndex,
        redactor: &mut dyn Redaction,
        raw: &str,
        parsed: Option<&SecretPath>,
    ) -> Recorded {
        let known = self.known.get_or_insert_with(|| known_paths(store));
        if let Some(path) = parsed
            && known.contains(path)
        {
            let canonical = Zeroizing::new(path.to_string());
            return Recorded {
                path: redactor.redact_text(&canonical),
                note: None,
            };
        }
        let prefix = parsed.map_or_else(SecretPath::root, |p| longest_known_prefix(known, p));
        let tag = match parsed {
            Some(path) => self.tag(Zeroizing::new(path.to_string()).as_bytes()),
            None => self.tag(&raw.as_bytes()[..raw.len().min(MAX_HASHED_RAW)]),
        };
        Recorded {
            path: redactor.redact_text(&prefix.to_string()),
            note: Some(format!("unknown-path len={} hmac={tag}", raw.len())),
        }
    }

    /// HMAC-SHA256 of `bytes` under this run's key, cut to 128 bits, in hex.
    fn tag(&mut self, bytes: &[u8]) -> String {
        if self.key.is_none() {
            let mut key = Zeroizing::new([0u8; 32]);
            if getrandom::fill(key.as_mut()).is_err() {
                // No randomness: record no hash rather than a guessable one.
                return "unavailable".to_owned();
            }
            self.key = Some(key);
        }
        let Some(key) = self.key.as_ref() else {
            return "unavailable".to_owned();
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_ref()) else {
            return "unavailable".to_owned();
        };
        mac.update(bytes);
        let full = mac.finalize().into_bytes();
        hex::encode(full.get(..16).unwrap_or_default())
    }
}

/// Every node of the store: its leaves, their ancestors and the root.
fn known_paths(store: &dyn NameIndex) -> HashSet<SecretPath> {
    let mut known = HashSet::new();
    known.insert(SecretPath::root());
    if let Ok(leaves) = store.list(&SecretPath::root()) {
        for leaf in leaves {
            let segments: Vec<&str> = leaf.segments().collect();
            for k in 1..segments.len() {
                if let Ok(prefix) = SecretPath::from_segments(segments.iter().take(k).copied()) {
                    known.insert(prefix);
                }
            }
            known.insert(leaf);
        }
    }
    known
}

/// The longest prefix of `path` that names a node of the store.
fn longest_known_prefix(known: &HashSet<SecretPath>, path: &SecretPath) -> SecretPath {
    let segments: Vec<&str> = path.segments().collect();
    for k in (1..=segments.len()).rev() {
        if let Ok(prefix) = SecretPath::from_segments(segments.iter().take(k).copied())
            && known.contains(&prefix)
        {
            return prefix;
        }
    }
    SecretPath::root()
}
