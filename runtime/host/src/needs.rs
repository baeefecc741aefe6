//! A skill's declared needs: the `agentsec:needs` custom section.
//!
//! A skill may declare the secret paths it needs (the Rust SDK's
//! `agentsec_skill::needs!` writes them). The section is UTF-8 text, one
//! path or path pattern per line; sections of that name anywhere in the
//! component (at the top level or inside an embedded core module, where
//! `wasm-component-ld` leaves the ones a Rust skill's linker wrote) are
//! concatenated. `agentsec-run` checks every need against the policy before
//! the skill runs. A declaration grants nothing; it only lets a run fail
//! early, with the rule to add.

use std::fmt;

use wasmtime::wasmparser::{Parser, Payload};

/// Name of the custom section that holds a skill's declared needs.
pub const NEEDS_SECTION: &str = "agentsec:needs";

/// Largest accepted total size of the `agentsec:needs` sections, in bytes.
///
/// The text comes from an untrusted component; a real skill declares a few
/// paths of a few dozen bytes. 64 KiB bounds the memory and the per-need
/// policy work at start-up.
pub const MAX_NEEDS_SIZE: usize = 64 * 1024;

/// Most declared needs (non-empty lines) accepted.
///
/// Each need is evaluated (and, when refused, audited) before the run; a
/// skill needs a handful. The bound keeps that work and the audit trail of a
/// refusal small.
pub const MAX_NEEDS: usize = 256;

/// Why the declared needs of a component cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NeedsError {
    /// The component could not be walked (it is not valid WebAssembly).
    Malformed(String),
    /// The sections are larger than [`MAX_NEEDS_SIZE`] in total.
    TooLarge {
        /// Bytes seen (at least).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_NEEDS`] needs.
    TooMany {
        /// The limit.
        max: usize,
    },
    /// The text is not UTF-8.
    NotUtf8 {
        /// Offset of the first invalid byte in the concatenated text.
        offset: usize,
    },
    /// A line holds a control character.
    ControlChar {
        /// 1-based line number in the concatenated text.
        line: usize,
    },
}

impl fmt::Display for NeedsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(
                f,
                "cannot read the `{NEEDS_SECTION}` section: invalid WebAssembly: {why}"
            ),
            Self::TooLarge { len, max } => write!(
                f,
                "the `{NEEDS_SECTION}` section is at least {len} bytes; at most {max} are allowed"
            ),
            Self::TooMany { max } => write!(
                f,
                "the `{NEEDS_SECTION}` section declares more than {max} needs"
            ),
            Self::NotUtf8 { offset } => write!(
                f,
                "the `{NEEDS_SECTION}` section is not UTF-8 (invalid byte at offset {offset})"
            ),
            Self::ControlChar { line } => write!(
                f,
                "line {line} of the `{NEEDS_SECTION}` section holds a control character"
            ),
        }
    }
}

impl std::error::Error for NeedsError {}

/// The needs declared by component (or core module) `bytes`, in order,
/// without duplicates; empty when it declares none. Lines are trimmed and
/// empty lines skipped; the lines are not parsed as paths here.
///
/// # Errors
/// Invalid WebAssembly, a limit exceeded, or text that is not UTF-8.
pub fn declared_needs(bytes: &[u8]) -> Result<Vec<String>, NeedsError> {
    let mut text = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| NeedsError::Malformed(e.message().to_owned()))?;
        if let Payload::CustomSection(section) = payload
            && section.name() == NEEDS_SECTION
        {
            let data = section.data();
            let len = text.len().saturating_add(data.len());
            if len > MAX_NEEDS_SIZE {
                return Err(NeedsError::TooLarge {
                    len,
                    max: MAX_NEEDS_SIZE,
                });
            }
            text.extend_from_slice(data);
            // Sections written by other tools may lack the final newline.
            if !text.ends_with(b"\n") {
                text.push(b'\n');
            }
        }
    }
    let text = String::from_utf8(text).map_err(|e| NeedsError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })?;
    let mut needs: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.chars().any(char::is_control) {
            return Err(NeedsError::ControlChar { line: i + 1 });
        }
        if needs.iter().any(|n| n == line) {
            continue;
        }
        if needs.len() == MAX_NEEDS {
            return Err(NeedsError::TooMany { max: MAX_NEEDS });
        }
        needs.push(line.to_owned());
    }
    Ok(needs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with the given custom sections.
    fn module(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"\0asm\x01\0\0\0".to_vec();
        for (name, data) in sections {
            let mut body = Vec::new();
            leb(&mut body, name.len());
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(data);
            out.push(0);
            leb(&mut out, body.len());
            out.extend_from_slice(&body);
        }
        out
    }

    fn leb(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    #[test]
    fn reads_and_concatenates_sections() {
        let m = module(&[
            (NEEDS_SECTION, b"a.b\nc.*.d\n"),
            ("other", b"x.y\n"),
            (NEEDS_SECTION, b"  e.f \n\na.b"),
        ]);
        assert_eq!(declared_needs(&m).unwrap(), ["a.b", "c.*.d", "e.f"]);
        assert!(declared_needs(&module(&[])).unwrap().is_empty());
    }

    #[test]
    fn refuses_hostile_sections() {
        let big = vec![b'a'; MAX_NEEDS_SIZE + 1];
        assert!(matches!(
            declared_needs(&module(&[(NEEDS_SECTION, &big)])),
            Err(NeedsError::TooLarge { .. })
        ));
        let many: String = (0..=MAX_NEEDS).map(|i| format!("p{i}\n")).collect();
        assert_eq!(
            declared_needs(&module(&[(NEEDS_SECTION, many.as_bytes())])),
            Err(NeedsError::TooMany { max: MAX_NEEDS })
        );
        assert_eq!(
            declared_needs(&module(&[(NEEDS_SECTION, b"a\n\xff")])),
            Err(NeedsError::NotUtf8 { offset: 2 })
        );
        assert_eq!(
            declared_needs(&module(&[(NEEDS_SECTION, b"a\nb\x07c")])),
            Err(NeedsError::ControlChar { line: 2 })
        );
        assert!(matches!(
            declared_needs(b"\0asm\x01\0\0\0\x00\x05"),
            Err(NeedsError::Malformed(_))
        ));
    }
}
