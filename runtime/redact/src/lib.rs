//! Redaction of everything a skill sends back, in one place and with no WebAssembly in it.
//!
//! - [`Redactor`] replaces every value released during a run by `[REDACTED:<path>]`
//!   wherever it appears in one of the [`FORMS`] (raw, base64 also inside a longer stream,
//!   hex in any case, each line of a multi-line value, and all of these JSON-escaped,
//!   percent-encoded or wrapped over lines), with one Aho-Corasick pass over the output. It
//!   learns values as the broker releases them ([`agentsec_broker::Redaction`]).
//! - [`shapes`] finds well-known credential shapes (PEM private keys, GitHub, Slack and
//!   AWS tokens) that no released value explains, to redact them or fail the run.
//!
//! ```
//! use agentsec_redact::Redactor;
//!
//! let mut redactor = Redactor::default();
//! redactor.add("db.password", b"hunter2-but-longer").expect("within the limit");
//! let out = redactor.redact_str("login with aHVudGVyMi1idXQtbG9uZ2Vy or hunter2-but-longer");
//! assert_eq!(out, "login with [REDACTED:db.password] or [REDACTED:db.password]");
//! ```
#![forbid(unsafe_code)]

pub mod shapes;
mod values;

pub use shapes::{ShapeAction, redact_shapes, redact_shapes_segments};
pub use values::{
    FORMS, Form, MAX_REDACTED_STREAM_BYTES, MAX_REDACTION_NEEDLE_BYTES, MIN_EMBEDDED_BASE64_CHARS,
    MIN_ENCODED_REDACTION_LEN, MIN_LINE_NEEDLE_LEN, NeedleLimit, Redactor, TOO_LONG_MARKER,
};

impl agentsec_broker::Redaction for Redactor {
    fn learn(&mut self, path: &str, value: &[u8]) -> Result<(), String> {
        self.add(path, value).map_err(|limit| limit.to_string())
    }

    fn redact_text(&mut self, text: &str) -> String {
        self.redact_str(text)
    }
}
