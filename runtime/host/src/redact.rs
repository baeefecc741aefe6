//! Redaction of released secret values from everything a skill sends back.
//!
//! Every value released to a skill during a run is replaced by
//! `[REDACTED:<path>]` in the result, stdout and stderr, together with its
//! common encodings: base64 (standard and URL-safe, padded or not), hex
//! (lower and upper case) and percent-encoding. Output is captured whole
//! before it is redacted, so a value split across several writes is caught.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// Encoded forms are only matched for values at least this long: the
/// encodings of a one- or two-byte value are short strings that occur by
/// chance in ordinary output, and such a value is no credential.
/// The raw value itself is always redacted, whatever its length.
pub const MIN_ENCODED_REDACTION_LEN: usize = 3;

/// The needles for the values released during one run.
#[derive(Default)]
pub struct Redactor {
    /// (needle, replacement). Needles are secret material: zeroized on drop.
    needles: Vec<(Zeroizing<Vec<u8>>, Vec<u8>)>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor([REDACTED; {} needles])", self.needles.len())
    }
}

impl Redactor {
    /// Registers a released value, known to the caller as `path`.
    pub fn add(&mut self, path: &str, value: &[u8]) {
        if value.is_empty() {
            return;
        }
        // A skill reading the same secret again (a loop) must not pay for
        // re-encoding it (or for a new marker): the raw form is registered
        // first, so its presence with this path's marker means every form is.
        let is_marker_of = |m: &[u8]| {
            m.strip_prefix(b"[REDACTED:")
                .and_then(|rest| rest.strip_suffix(b"]"))
                == Some(path.as_bytes())
        };
        if self
            .needles
            .iter()
            .any(|(n, m)| **n == *value && is_marker_of(m))
        {
            return;
        }
        let marker = format!("[REDACTED:{path}]").into_bytes();
        let mut forms: Vec<Zeroizing<Vec<u8>>> = vec![Zeroizing::new(value.to_vec())];
        if value.len() >= MIN_ENCODED_REDACTION_LEN {
            for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                forms.push(Zeroizing::new(engine.encode(value).into_bytes()));
            }
            forms.push(Zeroizing::new(hex::encode(value).into_bytes()));
            forms.push(Zeroizing::new(hex::encode_upper(value).into_bytes()));
            forms.push(percent_encode(value, false));
            forms.push(percent_encode(value, true));
        }
        for form in forms {
            if !self.needles.iter().any(|(n, _)| **n == *form) {
                self.needles.push((form, marker.clone()));
            }
        }
        // Longest first, so that a value is replaced before a shorter value
        // (or a padding-less encoding) that it contains.
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.0.len()));
    }

    /// Whether any value has been registered.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `input` with every registered needle replaced.
    pub fn redact(&self, input: &[u8]) -> Vec<u8> {
        let mut current = input.to_vec();
        for (needle, marker) in &self.needles {
            if let Some(replaced) = replace_all(&current, needle, marker) {
                current = replaced;
            }
        }
        current
    }

    /// [`Redactor::redact`] for text. Replacements are ASCII, and needles are
    /// only ever replaced whole, so valid UTF-8 stays valid; anything else is
    /// converted lossily.
    pub fn redact_str(&self, input: &str) -> String {
        match String::from_utf8(self.redact(input.as_bytes())) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

/// `Some(replaced)` when `needle` occurs in `haystack`.
fn replace_all(haystack: &[u8], needle: &[u8], marker: &[u8]) -> Option<Vec<u8>> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut found = false;
    while i + needle.len() <= haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(&haystack[start..i]);
            out.extend_from_slice(marker);
            i += needle.len();
            start = i;
            found = true;
        } else {
            i += 1;
        }
    }
    if !found {
        return None;
    }
    out.extend_from_slice(&haystack[start..]);
    Some(out)
}

/// Percent-encoding of every byte outside RFC 3986's unreserved set
/// (`%2F` style, or `%2f` when `lower`).
fn percent_encode(value: &[u8], lower: bool) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            let hex = if lower {
                hex::encode([b])
            } else {
                hex::encode_upper([b])
            };
            out.push(b'%');
            out.extend_from_slice(hex.as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"s3cr3t/p@ss+word?";

    fn redactor() -> Redactor {
        let mut r = Redactor::default();
        r.add("db.password", SECRET);
        r
    }

    #[test]
    fn raw_value_is_replaced_everywhere() {
        let out = redactor().redact(b"a s3cr3t/p@ss+word? b s3cr3t/p@ss+word?");
        assert_eq!(out, b"a [REDACTED:db.password] b [REDACTED:db.password]");
    }

    #[test]
    fn every_encoding_is_replaced() {
        let r = redactor();
        let forms = [
            STANDARD.encode(SECRET),
            STANDARD_NO_PAD.encode(SECRET),
            URL_SAFE.encode(SECRET),
            URL_SAFE_NO_PAD.encode(SECRET),
            hex::encode(SECRET),
            hex::encode_upper(SECRET),
            String::from_utf8(percent_encode(SECRET, false).to_vec()).unwrap(),
            String::from_utf8(percent_encode(SECRET, true).to_vec()).unwrap(),
        ];
        for form in forms {
            let out = r.redact_str(&format!("x={form};"));
            assert_eq!(out, "x=[REDACTED:db.password];", "form {form}");
        }
    }

    #[test]
    fn unrelated_output_is_untouched() {
        let r = redactor();
        assert_eq!(r.redact(b"nothing to see"), b"nothing to see");
        assert!(!r.is_empty());
        assert!(Redactor::default().is_empty());
    }

    #[test]
    fn short_values_are_redacted_raw_only() {
        let mut r = Redactor::default();
        r.add("port", b"54");
        assert_eq!(
            r.redact_str("port 54, 3534 is hex"),
            "port [REDACTED:port], 3534 is hex"
        );
    }

    #[test]
    fn longer_value_wins_over_contained_value() {
        let mut r = Redactor::default();
        r.add("short", b"abcd");
        r.add("long", b"xxabcdxx");
        assert_eq!(
            r.redact_str("xxabcdxx abcd"),
            "[REDACTED:long] [REDACTED:short]"
        );
    }

    #[test]
    fn registering_a_value_twice_changes_nothing() {
        let mut r = redactor();
        let before = r.needles.len();
        r.add("db.password", SECRET);
        assert_eq!(r.needles.len(), before);
        // The same value under another path is still registered for that path's marker.
        r.add("other.path", SECRET);
        assert_eq!(r.redact_str("s3cr3t/p@ss+word?"), "[REDACTED:db.password]");
    }

    #[test]
    fn debug_never_shows_needles() {
        let shown = format!("{:?}", redactor());
        assert!(!shown.contains("s3cr3t"));
    }
}
