//! Well-known credential shapes in skill output.
//!
//! Redaction of released values catches what the host knows. A skill may
//! also emit a credential it never got from agentsec (one baked into the
//! component, or fetched elsewhere). These patterns flag the common shapes,
//! with a choice to redact them or to fail the run.

use std::sync::OnceLock;

use regex::bytes::Regex;

/// What to do when output contains a credential shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeAction {
    /// Replace each match with `[REDACTED:credential:<kind>]` (the default).
    #[default]
    Redact,
    /// End the run: nothing the skill produced is returned.
    Fail,
}

/// One kind of credential shape.
struct Shape {
    kind: &'static str,
    /// Matched on bytes in ASCII mode (`(?-u)`): tokens are ASCII, output
    /// need not be UTF-8, and the pattern compiles several times faster.
    pattern: &'static str,
    /// Literals of which every match contains at least one. Output with
    /// none of them cannot match, so the pattern is neither compiled nor
    /// run (most output holds no credential at all).
    needles: &'static [&'static str],
}

/// The shapes, from the vendors' documented token formats.
const SHAPES: &[Shape] = &[
    Shape {
        kind: "private-key",
        // A PEM private key block (RSA, EC, OPENSSH, ENCRYPTED, PKCS#8...),
        // or a lone BEGIN line when the block was cut.
        pattern: r"(?-u)-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:(?s:.*?)-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?",
        needles: &["PRIVATE KEY-----"],
    },
    Shape {
        kind: "github-token",
        pattern: r"(?-u)\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        needles: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
    },
    Shape {
        kind: "slack-token",
        pattern: r"(?-u)\bxox[abposr]-[A-Za-z0-9-]{10,250}\b",
        needles: &["xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-"],
    },
    Shape {
        kind: "slack-webhook",
        pattern: r"(?-u)https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,200}",
        needles: &["https://hooks.slack.com/services/"],
    },
    Shape {
        kind: "aws-access-key-id",
        pattern: r"(?-u)\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        needles: &["AKIA", "ASIA"],
    },
];

/// The compiled pattern of `SHAPES[i]`, compiled on first use.
fn regex(i: usize) -> Option<&'static Regex> {
    static COMPILED: [OnceLock<Option<Regex>>; SHAPES.len()] =
        [const { OnceLock::new() }; SHAPES.len()];
    let shape = SHAPES.get(i)?;
    COMPILED
        .get(i)?
        .get_or_init(|| Regex::new(shape.pattern).ok())
        .as_ref()
}

/// `output` with every credential shape replaced, and the kinds found.
pub fn redact_shapes(output: &[u8]) -> (Vec<u8>, Vec<&'static str>) {
    let (mut out, found) = redact_shapes_segments(&[output]);
    (out.pop().unwrap_or_default(), found)
}

/// [`redact_shapes`] over `segments` as one stream, in the order given (the
/// order they are written to one sink): a credential split across two
/// segments is replaced in both.
pub fn redact_shapes_segments(segments: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<&'static str>) {
    let mut current: Vec<Vec<u8>> = segments.iter().map(|s| s.to_vec()).collect();
    let mut found = Vec::new();
    for (i, shape) in SHAPES.iter().enumerate() {
        let joined = current.concat();
        let possible = shape
            .needles
            .iter()
            .any(|needle| memchr::memmem::find(&joined, needle.as_bytes()).is_some());
        if !possible {
            continue;
        }
        let Some(re) = regex(i) else { continue };
        let ranges: Vec<(usize, usize)> = re
            .find_iter(&joined)
            .map(|m| (m.start(), m.end()))
            .collect();
        if ranges.is_empty() {
            continue;
        }
        found.push(shape.kind);
        let marker = format!("[REDACTED:credential:{}]", shape.kind);
        let parts: Vec<&[u8]> = current.iter().map(Vec::as_slice).collect();
        current = crate::values::replace_ranges(&parts, &ranges, marker.as_bytes());
    }
    (current, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for (i, shape) in SHAPES.iter().enumerate() {
            assert!(regex(i).is_some(), "{}", shape.kind);
            assert!(!shape.needles.is_empty(), "{}", shape.kind);
        }
    }

    #[test]
    fn known_shapes_are_found_and_redacted() {
        let cases: &[(&str, &str)] = &[
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
                "private-key",
            ),
            ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn", "private-key"),
            (
                "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 end",
                "github-token",
            ),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
                "github-token",
            ),
            ("xoxb-123456789012-abcdefghijkl", "slack-token"),
            (
                "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX",
                "slack-webhook",
            ),
            ("key=AKIAIOSFODNN7EXAMPLE;", "aws-access-key-id"),
        ];
        for (text, kind) in cases {
            let (out, found) = redact_shapes(text.as_bytes());
            assert_eq!(found, vec![*kind], "{text}");
            let out = String::from_utf8(out).unwrap();
            assert!(
                out.contains(&format!("[REDACTED:credential:{kind}]")),
                "{out}"
            );
        }
    }

    #[test]
    fn a_token_split_across_segments_is_found_in_both() {
        let (out, found) = redact_shapes_segments(&[b"a AKIAIOSFOD", b"NN7EXAMPLE b"]);
        assert_eq!(found, vec!["aws-access-key-id"]);
        assert_eq!(
            out,
            vec![
                b"a [REDACTED:credential:aws-access-key-id]".to_vec(),
                b"[REDACTED:credential:aws-access-key-id] b".to_vec()
            ]
        );
    }

    #[test]
    fn ordinary_output_is_untouched() {
        let text = b"{\"healthy\":true,\"ghp\":\"short\",\"AKIA\":1}";
        let (out, found) = redact_shapes(text);
        assert!(found.is_empty());
        assert_eq!(out, text);
    }
}
