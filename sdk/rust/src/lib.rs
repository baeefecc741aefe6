//! Write agentsec skills in Rust.
//!
//! A skill is a WebAssembly component that exports `run` and reads secrets
//! through the host, which checks every request against the operator's policy
//! and audits it. This crate wraps the bindings generated from `wit/` so that
//! a skill is a few lines:
//!
//! ```no_run
//! use agentsec_skill::{Skill, get_secret};
//!
//! struct Hello;
//!
//! impl Skill for Hello {
//!     fn run(_input: String) -> Result<String, String> {
//!         let token = get_secret("communication.github.token")?;
//!         Ok(format!("token has {} characters", token.len()))
//!     }
//! }
//!
//! agentsec_skill::export!(Hello);
//! # fn main() {}
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the result is a
//! component that `agentsec-run` runs.
//!
//! [`Secret`] zeroizes its bytes when dropped and never prints itself. The
//! host additionally redacts every value it released from the skill's result,
//! stdout and stderr, so echoing a secret gains nothing; treat values as
//! opaque and report facts about them (present, well formed), not the values.
// The generated ABI glue needs `unsafe`; our own code has none.
#![deny(unsafe_code)]

// Lets the generated code name this crate as `agentsec_skill` from inside it.
extern crate self as agentsec_skill;

use std::fmt;

use zeroize::Zeroizing;

/// The bindings generated from `wit/` (world `agentsec:skill/skill`).
///
/// Most skills only need [`Skill`], [`get_secret`], [`list_secrets`] and
/// [`export!`]; the raw bindings are here for anything else.
#[allow(missing_docs, reason = "generated code")]
#[allow(unsafe_code, reason = "generated ABI glue from wit-bindgen")]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "skill",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "agentsec_skill::bindings",
        runtime_path: "agentsec_skill::__wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

#[cfg(feature = "http")]
pub mod http;

#[cfg(feature = "v0_2")]
pub mod v0_2;

/// Registers the type implementing [`Skill`] as the component's `run` export:
/// `agentsec_skill::export!(MySkill);` once, at the crate root.
pub use bindings::export;

/// What a skill implements: `run(input) -> Result<output, error>`.
///
/// `input` is the JSON text the caller passed to `agentsec-run --input`.
/// Register the implementing type with [`export!`].
pub use bindings::Guest as Skill;

/// Why the host did not return a secret; see the variant docs in `wit/`.
///
/// Each variant carries the host's explanation, a sentence that never contains
/// a secret value. `Display` prints it after the variant's WIT name
/// (`denied: agent ... may not read ...`), so `?` and `{e}` give a readable
/// line. This is the SDK's own type rather than the generated one, whose
/// `Display` prints the Rust debug form (`NotFound("...")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The policy does not grant this agent and skill the path; the text names
    /// the rule and how to change it.
    Denied(String),
    /// No secret at that path (asked only when the policy grants the path).
    NotFound(String),
    /// The path is malformed, too long, or names a mapping (the text lists the
    /// children the caller may read).
    InvalidPath(String),
    /// The store could not answer (e.g. it could not be decrypted).
    Unavailable(String),
}

impl From<bindings::agentsec::skill::secrets::Error> for Error {
    fn from(e: bindings::agentsec::skill::secrets::Error) -> Self {
        use bindings::agentsec::skill::secrets::Error as Wit;
        match e {
            Wit::Denied(m) => Error::Denied(m),
            Wit::NotFound(m) => Error::NotFound(m),
            Wit::InvalidPath(m) => Error::InvalidPath(m),
            Wit::Unavailable(m) => Error::Unavailable(m),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for Error {}

/// A secret value released by the host.
///
/// Its bytes are zeroized on drop. It has no `Display`, and its `Debug` prints
/// `Secret([REDACTED])`, so it cannot end up in a log line by accident.
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// The value. Use it where it is needed (a connection string, a header)
    /// and let it drop; do not return it or print it (the host would redact
    /// it anyway).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// Reads the secret at `path` (dotted, e.g. `databases.postgres.production.password`,
/// or the bracket form `["a.b"]["c"]`).
///
/// A policy denial is an ordinary `Err` the skill can handle.
pub fn get_secret(path: &str) -> Result<Secret, Error> {
    bindings::agentsec::skill::secrets::get_secret(path)
        .map(|v| Secret(Zeroizing::new(v)))
        .map_err(Error::from)
}

/// The secret paths under `prefix` this skill may read (names, never values).
/// `""` lists everything the skill may read.
pub fn list_secrets(prefix: &str) -> Vec<String> {
    bindings::agentsec::skill::secrets::list_secrets(prefix)
}

impl Error {
    /// The host's explanation (never contains a secret value).
    pub fn message(&self) -> &str {
        match self {
            Error::Denied(m)
            | Error::NotFound(m)
            | Error::InvalidPath(m)
            | Error::Unavailable(m) => m,
        }
    }

    /// The variant's name as in `wit/`: `denied`, `not-found`, `invalid-path`, `unavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Denied(_) => "denied",
            Error::NotFound(_) => "not-found",
            Error::InvalidPath(_) => "invalid-path",
            Error::Unavailable(_) => "unavailable",
        }
    }
}

/// Lets `?` turn a secrets error into `run`'s `Err(String)`.
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

/// Name of the custom section that holds a skill's declared needs.
///
/// The section is UTF-8 text, one secret path per line (`\n`-terminated):
/// dotted (`databases.postgres.production.password`) or bracket form, where a
/// whole segment may be `*` (`databases.postgres.*.password`). The linker
/// concatenates sections of the same name, so several [`needs!`] invocations
/// (in this crate or its dependencies) add up. Any toolchain can write it;
/// `agentsec-run` reads it from the component (or from a core module inside
/// it) before the skill runs.
pub const NEEDS_SECTION: &str = "agentsec:needs";

/// Declares the secrets this skill needs, so that `agentsec-run` can refuse to
/// start it, naming the rule to add, when the policy does not grant them:
///
/// ```no_run
/// agentsec_skill::needs!(
///     "communication.github.token",
///     // `*` is one whole segment: "one of these, chosen at run time".
///     "databases.postgres.*.password",
/// );
/// ```
///
/// Before the run, every declared path without `*` must be granted to the
/// agent (for this skill); a path with `*` segments is satisfied when the
/// policy grants at least one existing secret it matches. A declaration grants
/// nothing: every `get-secret` call is still checked against the policy, and
/// undeclared paths may still be requested (and are checked the same way).
///
/// Expands to a `#[used]` static in the [`NEEDS_SECTION`] custom section.
/// Each path must be a non-empty string literal without control characters;
/// anything else fails the build.
#[macro_export]
macro_rules! needs {
    ($($path:literal),+ $(,)?) => {
        const _: () = {
            $( $crate::__check_need($path); )+
            const TEXT: &str = concat!($($path, "\n"),+);
            #[used]
            #[unsafe(link_section = "agentsec:needs")]
            static AGENTSEC_NEEDS: [u8; TEXT.len()] = $crate::__need_bytes::<{ TEXT.len() }>(TEXT);
        };
    };
}

/// Compile-time check of one [`needs!`] entry.
#[doc(hidden)]
pub const fn __check_need(path: &str) {
    let bytes = path.as_bytes();
    assert!(
        !bytes.is_empty(),
        "agentsec_skill::needs!: a declared path is empty"
    );
    let mut i = 0;
    while i < bytes.len() {
        assert!(
            bytes[i] >= 0x20 && bytes[i] != 0x7f,
            "agentsec_skill::needs!: a declared path contains a control character"
        );
        i += 1;
    }
}

/// The bytes of a [`needs!`] section, as an array the linker can place.
#[doc(hidden)]
pub const fn __need_bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Name of the custom section that describes the skill as a tool for a model
/// (`agentsec mcp` lists it with this description and input schema).
pub const TOOL_SECTION: &str = "agentsec:tool";

/// Describes this skill as a tool, for `agentsec mcp` (the model sees the
/// description and the input schema; the skill's input is the tool call's
/// arguments):
///
/// ```no_run
/// agentsec_skill::tool!(
///     description: "Checks that the production database answers.",
///     input_schema: r#"{"type":"object","properties":{"database":{"type":"string"}}}"#,
/// );
/// ```
///
/// `input_schema` is a JSON Schema object (default `{"type":"object"}`). The
/// section holds `{"description": ..., "input_schema": ...}`; write it once
/// per skill. Expands to a `#[used]` static in the [`TOOL_SECTION`] custom
/// section; a description with a control character other than a newline or
/// tab, or a schema that is not a `{...}` object literal, fails the build.
#[macro_export]
macro_rules! tool {
    (description: $description:literal $(, input_schema: $schema:literal)? $(,)?) => {
        const _: () = {
            const DESCRIPTION: &str = $description;
            const SCHEMA: &str = $crate::__tool_schema!($($schema)?);
            const LEN: usize = $crate::__tool_len(DESCRIPTION, SCHEMA);
            #[used]
            #[unsafe(link_section = "agentsec:tool")]
            static AGENTSEC_TOOL: [u8; LEN] = $crate::__tool_bytes::<LEN>(DESCRIPTION, SCHEMA);
        };
    };
}

/// The input schema of a [`tool!`]: the one given, or `{"type":"object"}`.
#[doc(hidden)]
#[macro_export]
macro_rules! __tool_schema {
    () => {
        "{\"type\":\"object\"}"
    };
    ($schema:literal) => {
        $schema
    };
}

const TOOL_PREFIX: &[u8] = b"{\"description\":\"";
const TOOL_MIDDLE: &[u8] = b"\",\"input_schema\":";

/// Bytes of `c` once escaped in a JSON string.
const fn escaped_len(c: u8) -> usize {
    match c {
        b'"' | b'\\' | b'\n' | b'\t' => 2,
        0..=0x1f => 6,
        _ => 1,
    }
}

/// Length of a [`tool!`] section (checks the description and the schema).
#[doc(hidden)]
pub const fn __tool_len(description: &str, schema: &str) -> usize {
    let d = description.as_bytes();
    let s = schema.as_bytes();
    assert!(
        !s.is_empty() && s[0] == b'{' && s[s.len() - 1] == b'}',
        "agentsec_skill::tool!: input_schema must be a JSON object `{{...}}`"
    );
    let mut len = TOOL_PREFIX.len() + TOOL_MIDDLE.len() + s.len() + 1;
    let mut i = 0;
    while i < d.len() {
        assert!(
            d[i] >= 0x20 || d[i] == b'\n' || d[i] == b'\t',
            "agentsec_skill::tool!: the description contains a control character"
        );
        len += escaped_len(d[i]);
        i += 1;
    }
    len
}

/// The bytes of a [`tool!`] section: `{"description":"...","input_schema":...}`.
#[doc(hidden)]
pub const fn __tool_bytes<const N: usize>(description: &str, schema: &str) -> [u8; N] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < TOOL_PREFIX.len() {
        out[at] = TOOL_PREFIX[i];
        at += 1;
        i += 1;
    }
    let d = description.as_bytes();
    i = 0;
    while i < d.len() {
        let c = d[i];
        match c {
            b'"' | b'\\' => {
                out[at] = b'\\';
                out[at + 1] = c;
                at += 2;
            }
            b'\n' => {
                out[at] = b'\\';
                out[at + 1] = b'n';
                at += 2;
            }
            b'\t' => {
                out[at] = b'\\';
                out[at + 1] = b't';
                at += 2;
            }
            0..=0x1f => {
                out[at] = b'\\';
                out[at + 1] = b'u';
                out[at + 2] = b'0';
                out[at + 3] = b'0';
                out[at + 4] = HEX[(c >> 4) as usize];
                out[at + 5] = HEX[(c & 0xf) as usize];
                at += 6;
            }
            _ => {
                out[at] = c;
                at += 1;
            }
        }
        i += 1;
    }
    i = 0;
    while i < TOOL_MIDDLE.len() {
        out[at] = TOOL_MIDDLE[i];
        at += 1;
        i += 1;
    }
    let s = schema.as_bytes();
    i = 0;
    while i < s.len() {
        out[at] = s[i];
        at += 1;
        i += 1;
    }
    out[at] = b'}';
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_section_is_json_with_the_description_escaped() {
        const D: &str = "Says \"hi\"\n\tthen C:\\ or é";
        const S: &str = "{\"type\":\"object\"}";
        const N: usize = __tool_len(D, S);
        let bytes = __tool_bytes::<N>(D, S);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"description":"Says \"hi\"\n\tthen C:\\ or é","input_schema":{"type":"object"}}"#
        );
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret(Zeroizing::new("hunter2-planted".to_owned()));
        let shown = format!("{s:?}");
        assert_eq!(shown, "Secret([REDACTED])");
        assert!(!shown.contains("hunter2"));
        assert_eq!(s.len(), 15);
        assert_eq!(s.expose(), "hunter2-planted");
    }

    #[test]
    fn error_converts_to_a_message_naming_the_variant() {
        assert_eq!(
            String::from(Error::Denied("rule x".into())),
            "denied: rule x"
        );
        assert_eq!(String::from(Error::NotFound("n".into())), "not-found: n");
    }

    #[test]
    fn error_displays_as_a_sentence_not_as_debug() {
        let e = Error::InvalidPath("`a..b` has an empty segment at byte 2".into());
        assert_eq!(
            e.to_string(),
            "invalid-path: `a..b` has an empty segment at byte 2"
        );
        assert!(!e.to_string().contains("InvalidPath("));
        let wit = bindings::agentsec::skill::secrets::Error::Unavailable("store down".into());
        assert_eq!(Error::from(wit), Error::Unavailable("store down".into()));
    }
}
