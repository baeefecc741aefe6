//! One test per form (an exhaustive `match`: a new form does not compile without its
//! examples), and the redactor's behaviour across segments, limits and repeats.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use super::*;

const SECRET: &[u8] = b"s3cr3t/p@ss+word?";
const MARK: &str = "[REDACTED:db.password]";

fn redactor() -> Redactor {
    let mut r = Redactor::default();
    r.add("db.password", SECRET).unwrap();
    r
}

fn pct_all(value: &[u8], lower: bool) -> String {
    value
        .iter()
        .map(|b| {
            if lower {
                format!("%{b:02x}")
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Where `form` spells a value: (the value registered as `db.password`,
/// the output, the output once redacted). The `match` is exhaustive: a
/// new form does not compile without its examples.
fn examples(form: Form) -> Vec<(Vec<u8>, String, String)> {
    let plain = |s: String| (SECRET.to_vec(), format!("x={s};"), format!("x={MARK};"));
    match form {
        Form::Raw => vec![plain(String::from_utf8(SECRET.to_vec()).unwrap())],
        Form::Base64 => [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .map(|e| plain(e.encode(SECRET)))
            .collect(),
        Form::Base64Embedded => base64_embedded_examples(),
        Form::Hex => vec![
            plain(hex::encode(SECRET)),
            plain(hex::encode_upper(SECRET)),
            plain(mixed_case_hex(SECRET)),
        ],
        Form::Line => vec![(
            b"-----BEGIN KEY-----\r\n  MIIEvQIBADANBgkqhkiG9w0BAQEF  \r\n-----END KEY-----\n"
                .to_vec(),
            "x=MIIEvQIBADANBgkqhkiG9w0BAQEF;".to_owned(),
            format!("x={MARK};"),
        )],
        Form::JsonMember => vec![(
            br#"{"type": "x", "key": "first-line-of-the-key\nsecond-line-of-the-key\u0021"}"#
                .to_vec(),
            "x=first-line-of-the-key\nsecond-line-of-the-key!;".to_owned(),
            format!("x={MARK};"),
        )],
        Form::BackslashEscaped => vec![
            plain(SECRET.iter().map(|b| format!("\\u{b:04x}")).collect()),
            plain(SECRET.iter().map(|b| format!("\\u{b:04X}")).collect()),
            plain(SECRET.iter().map(|b| format!("\\x{b:02x}")).collect()),
            plain("s3cr3t\\/p@ss+word?".to_owned()),
            plain("s3cr3t/p@ss\\u002bword?".to_owned()),
        ],
        Form::PercentEncoded => vec![
            plain(pct_all(SECRET, false)),
            plain(pct_all(SECRET, true)),
            plain("s3cr3t%2Fp%40ss%2Bword%3f".to_owned()),
            plain("%73%33cr3t/p@ss+word?".to_owned()),
            plain(
                STANDARD
                    .encode(SECRET)
                    .replace('+', "%2B")
                    .replace('/', "%2f"),
            ),
        ],
        Form::LineWrapped => vec![
            plain("s3cr3t/p@\nss+word?".to_owned()),
            plain({
                let b64 = STANDARD.encode(SECRET);
                format!("{}\r\n{}", &b64[..10], &b64[10..])
            }),
        ],
    }
}

/// [`Form::Base64Embedded`]: the value at each of the three byte offsets of a base64 group,
/// with one to three bytes after it, in both alphabets; only the characters that depend on
/// the value alone are replaced.
fn base64_embedded_examples() -> Vec<(Vec<u8>, String, String)> {
    let mut out = Vec::new();
    for k in 0..3 {
        for tail in [&b"x"[..], b"xy", b"xyz"] {
            let mut stream = vec![b'A'; k];
            stream.extend_from_slice(SECRET);
            stream.extend_from_slice(tail);
            for engine in [&STANDARD, &URL_SAFE_NO_PAD] {
                let text = engine.encode(&stream);
                let first = (8 * k).div_ceil(6);
                let end = 8 * (k + SECRET.len()) / 6;
                let redacted = format!("{}{MARK}{}", &text[..first], &text[end..]);
                out.push((SECRET.to_vec(), text, redacted));
            }
        }
    }
    out
}

/// Hex of `value` with every third digit in upper case.
fn mixed_case_hex(value: &[u8]) -> String {
    hex::encode(value)
        .char_indices()
        .map(|(i, c)| {
            if i % 3 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

#[test]
fn every_form_has_examples_and_they_are_redacted() {
    for &form in FORMS {
        let cases = examples(form);
        assert!(!cases.is_empty(), "{form:?} has no example");
        for (value, input, expected) in cases {
            let mut r = Redactor::default();
            r.add("db.password", &value).unwrap();
            assert_eq!(r.redact_str(&input), expected, "{form:?}: {input}");
        }
    }
}

#[test]
fn embedded_base64_at_offset_zero_inside_a_stream_is_redacted() {
    let mut stream = SECRET.to_vec();
    stream.extend_from_slice(b"and more bytes after it");
    let text = STANDARD.encode(&stream);
    let out = redactor().redact_str(&text);
    assert!(out.starts_with(MARK), "{out}");
}

#[test]
fn lines_of_a_multi_line_value_are_needles() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";
    let mut r = Redactor::default();
    r.add("tls.key", pem.as_bytes()).unwrap();
    let out = r.redact_str("line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC end");
    assert_eq!(out, "line: [REDACTED:tls.key] end");
    // A short line (`{`, or a 15-byte piece) is not a needle.
    let mut r = Redactor::default();
    r.add("k", b"{\n  short: line\n}\n").unwrap();
    assert_eq!(r.redact_str("{ short: line }"), "{ short: line }");
}

#[test]
fn string_members_of_a_json_value_are_needles() {
    let sa = r#"{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n", "client_email": "x@y.iam.gserviceaccount.com"}"#;
    let mut r = Redactor::default();
    r.add("gcp.sa", sa.as_bytes()).unwrap();
    // The decoded key, as a skill that parsed the JSON would print it.
    let out = r.redact_str(
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
    );
    assert!(!out.contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), "{out}");
    assert!(
        !r.redact_str("mail x@y.iam.gserviceaccount.com")
            .contains("gserviceaccount")
    );
    // Keys are not needles.
    assert_eq!(r.redact_str("private_key"), "private_key");
}

#[test]
fn a_line_wrapped_encoding_is_redacted() {
    let long = b"a-much-longer-secret-value-that-wraps-when-base64-encoded-0123456789";
    let mut r = Redactor::default();
    r.add("long", long).unwrap();
    let b64 = STANDARD.encode(long);
    let (a, b) = b64.split_at(40);
    let out = r.redact_str(&format!("{a}\n{b}\n"));
    assert!(
        !out.contains(&b64[..40]) && !out.contains(&b64[41..]),
        "{out}"
    );
    assert!(out.contains("[REDACTED:long]"), "{out}");
}

#[test]
fn json_escaped_values_are_redacted_and_the_json_stays_valid() {
    let value = "quo\"te\\back\nnew\u{1}ctl-é-𝄞";
    let mut r = Redactor::default();
    r.add("odd", value.as_bytes()).unwrap();
    let escaped_ascii: String = value
        .encode_utf16()
        .map(|u| format!("\\u{u:04x}"))
        .collect();
    for text in [
        format!("{{\"v\":{}}}", json_quote(value)),
        format!("{{\"v\":\"{escaped_ascii}\"}}"),
        format!("{{{}:1}}", json_quote(value)),
    ] {
        let out = r.redact_str(&text);
        assert!(out.contains("[REDACTED:odd]"), "{text} -> {out}");
        assert!(!out.contains("back") && !out.contains("ctl"), "{out}");
    }
}

fn json_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn escapes_two_levels_deep_and_escaped_line_breaks_are_redacted() {
    let mut r = Redactor::default();
    r.add("odd", b"quo\"te\nline-two-of-it").unwrap();
    // JSON text of the value, inside a JSON string.
    let inner = "\"quo\\\"te\\nline-two-of-it\"";
    let outer = format!(
        "{{\"v\":\"{}\"}}",
        inner.replace('\\', "\\\\").replace('"', "\\\"")
    );
    assert_eq!(r.redact_str(&outer), "{\"v\":\"\\\"[REDACTED:odd]\\\"\"}");
    // Base64 wrapped with `\n` escapes inside a JSON string.
    let mut r = redactor();
    let b64 = STANDARD.encode(SECRET);
    let text = format!("{{\"v\":\"{}\\n{}\"}}", &b64[..12], &b64[12..]);
    assert_eq!(r.redact_str(&text), format!("{{\"v\":\"{MARK}\"}}"));
}

#[test]
fn a_value_split_across_segments_is_redacted_in_each() {
    let mut r = redactor();
    let out = r.redact_segments(&[b"out: s3cr3t/p", b"@ss+word? err", b"!"]);
    assert_eq!(
        out,
        vec![
            format!("out: {MARK}").into_bytes(),
            format!("{MARK} err").into_bytes(),
            b"!".to_vec()
        ]
    );
    // Across three segments.
    let out = r.redact_segments(&[b"s3cr3t", b"/p@ss", b"+word?"]);
    assert_eq!(out, vec![MARK.as_bytes().to_vec(); 3]);
}

#[test]
fn unrelated_output_is_untouched() {
    let mut r = redactor();
    assert_eq!(r.redact(b"nothing to see"), b"nothing to see");
    assert_eq!(r.redact(b"a\\n%41\r\nb"), b"a\\n%41\r\nb");
    assert!(!r.is_empty());
    assert!(Redactor::default().is_empty());
}

#[test]
fn short_values_are_redacted_raw_only() {
    let mut r = Redactor::default();
    r.add("port", b"54").unwrap();
    assert_eq!(
        r.redact_str("port 54, 3534 is hex"),
        "port [REDACTED:port], 3534 is hex"
    );
}

#[test]
fn longer_value_wins_over_contained_value() {
    let mut r = Redactor::default();
    r.add("short", b"abcd").unwrap();
    r.add("long", b"xxabcdxx").unwrap();
    assert_eq!(
        r.redact_str("xxabcdxx abcd"),
        "[REDACTED:long] [REDACTED:short]"
    );
}

#[test]
fn registering_a_value_twice_changes_nothing() {
    let mut r = redactor();
    let before = r.needle_bytes();
    r.add("db.password", SECRET).unwrap();
    assert_eq!(r.needle_bytes(), before);
    // The same value under another path keeps the first path's marker.
    r.add("other.path", SECRET).unwrap();
    assert_eq!(r.redact_str("s3cr3t/p@ss+word?"), MARK);
}

#[test]
fn values_added_between_redactions_are_all_found() {
    let mut r = Redactor::default();
    let values: Vec<String> = (0..100)
        .map(|i| format!("value-number-{i:03}-xyz"))
        .collect();
    for (i, v) in values.iter().enumerate() {
        r.add(&format!("v{i}"), v.as_bytes()).unwrap();
        // Every value so far, whether in the main or the tail automaton.
        for (j, w) in values.iter().enumerate().take(i + 1) {
            assert_eq!(r.redact_str(w), format!("[REDACTED:v{j}]"));
        }
    }
}

#[test]
fn the_needle_limit_refuses_a_value_and_registers_nothing() {
    let mut r = Redactor::default();
    let big = vec![b'k'; MAX_REDACTION_NEEDLE_BYTES / 4];
    let err = r.add("big", &big).unwrap_err();
    assert!(err.needed > MAX_REDACTION_NEEDLE_BYTES);
    assert!(r.is_empty());
    assert!(err.to_string().contains("limit"));
}

#[test]
fn markers_are_safe_inside_json_strings() {
    let mut r = Redactor::default();
    r.add("a[\"we\\\"ird\"]", b"value-123").unwrap();
    let out = r.redact_str("\"value-123\"");
    assert_eq!(out, "\"[REDACTED:a[_we__ird_]]\"");
}

#[test]
fn debug_never_shows_needles() {
    let shown = format!("{:?}", redactor());
    assert!(!shown.contains("s3cr3t"));
}

#[test]
fn a_stream_too_long_to_redact_is_replaced_whole() {
    let mut r = redactor();
    let segments: [&[u8]; 2] = [b"x=s3cr3t/p@ss+", b"word?;"];
    assert_eq!(
        r.redact_within(&segments, 19),
        vec![TOO_LONG_MARKER.to_vec(); 2]
    );
    // At the limit, it is redacted as usual.
    assert_eq!(
        r.redact_within(&segments, 20),
        vec![
            format!("x={MARK}").into_bytes(),
            format!("{MARK};").into_bytes()
        ]
    );
}
