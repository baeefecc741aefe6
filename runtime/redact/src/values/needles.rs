//! The fixed needles of a value: one per spelling in the [`FORMS`] that a needle can cover.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use super::views::unescape;
use super::{
    FORMS, Form, MIN_EMBEDDED_BASE64_CHARS, MIN_ENCODED_REDACTION_LEN, MIN_LINE_NEEDLE_LEN,
};

/// Needle bytes: secret material, wiped on drop.
pub(super) type NeedleBytes = Zeroizing<Vec<u8>>;

/// Every needle of `value`: (case-sensitive, any-case).
pub(super) fn needles_of(value: &[u8]) -> (Vec<NeedleBytes>, Vec<NeedleBytes>) {
    let mut exact: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut folded: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let push = |list: &mut Vec<Zeroizing<Vec<u8>>>, form: Zeroizing<Vec<u8>>| {
        if !form.is_empty() && !list.iter().any(|n| **n == *form) {
            list.push(form);
        }
    };
    for form in FORMS {
        match form {
            Form::Raw => push(&mut exact, Zeroizing::new(value.to_vec())),
            Form::Base64 if value.len() >= MIN_ENCODED_REDACTION_LEN => {
                for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                    push(
                        &mut exact,
                        Zeroizing::new(engine.encode(value).into_bytes()),
                    );
                }
            }
            Form::Base64Embedded if value.len() >= MIN_ENCODED_REDACTION_LEN => {
                for offset in 0..3 {
                    let core = base64_core(value, offset);
                    if core.len() >= MIN_EMBEDDED_BASE64_CHARS {
                        let url: Zeroizing<Vec<u8>> = Zeroizing::new(
                            core.iter()
                                .map(|&c| match c {
                                    b'+' => b'-',
                                    b'/' => b'_',
                                    c => c,
                                })
                                .collect(),
                        );
                        push(&mut exact, url);
                        push(&mut exact, core);
                    }
                }
            }
            Form::Hex if value.len() >= MIN_ENCODED_REDACTION_LEN => {
                push(&mut folded, Zeroizing::new(hex::encode(value).into_bytes()));
            }
            Form::Line => {
                for line in lines(value) {
                    push(&mut exact, Zeroizing::new(line.to_vec()));
                }
            }
            // Searched in views without line breaks: the value's own must go too.
            Form::LineWrapped if value.contains(&b'\n') || value.contains(&b'\r') => {
                let unwrapped: Vec<u8> = value
                    .iter()
                    .copied()
                    .filter(|&b| b != b'\n' && b != b'\r')
                    .collect();
                push(&mut exact, Zeroizing::new(unwrapped));
            }
            Form::JsonMember => {
                for member in json_strings(value) {
                    for line in lines(&member) {
                        push(&mut exact, Zeroizing::new(line.to_vec()));
                    }
                    if member.len() >= MIN_LINE_NEEDLE_LEN {
                        push(&mut exact, member);
                    }
                }
            }
            // Matched on decoded views of the output, not by needles.
            Form::BackslashEscaped | Form::PercentEncoded => {}
            Form::Base64 | Form::Base64Embedded | Form::Hex | Form::LineWrapped => {}
        }
    }
    (exact, folded)
}

/// The base64 characters (standard alphabet) that depend only on `value`'s
/// bytes when it starts `offset` bytes into a base64 group.
fn base64_core(value: &[u8], offset: usize) -> Zeroizing<Vec<u8>> {
    let mut padded = Zeroizing::new(vec![0u8; offset]);
    padded.extend_from_slice(value);
    let encoded = Zeroizing::new(STANDARD_NO_PAD.encode(&*padded).into_bytes());
    let first = (8 * offset).div_ceil(6);
    let end = (8 * (offset + value.len())) / 6;
    Zeroizing::new(encoded.get(first..end).unwrap_or_default().to_vec())
}

/// The lines of a multi-line `value` long enough to be needles, trimmed.
fn lines(value: &[u8]) -> Vec<&[u8]> {
    if !value.contains(&b'\n') {
        return Vec::new();
    }
    value
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| l.len() >= MIN_LINE_NEEDLE_LEN)
        .collect()
}

/// The decoded string values (not keys) of `value` when it looks like JSON.
fn json_strings(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let trimmed = value.trim_ascii();
    if !(trimmed.starts_with(b"{") || trimmed.starts_with(b"[")) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(open) = trimmed.get(i..).and_then(|r| memchr::memchr(b'"', r)) {
        let start = i + open + 1;
        let mut j = start;
        let mut decoded = Zeroizing::new(Vec::new());
        let mut closed = false;
        while let Some(&b) = trimmed.get(j) {
            match b {
                b'"' => {
                    closed = true;
                    break;
                }
                b'\\' => match unescape(trimmed, j) {
                    Some((bytes, n, len)) => {
                        decoded.extend_from_slice(bytes.get(..n).unwrap_or_default());
                        j += len;
                    }
                    None => {
                        decoded.push(b);
                        j += 1;
                    }
                },
                b => {
                    decoded.push(b);
                    j += 1;
                }
            }
        }
        if !closed {
            break;
        }
        i = j + 1;
        let rest = trimmed.get(i..).unwrap_or_default();
        let is_key = rest.trim_ascii_start().starts_with(b":");
        if !is_key {
            out.push(decoded);
        }
    }
    out
}
