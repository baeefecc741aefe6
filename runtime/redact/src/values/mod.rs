//! Redaction of released secret values from everything a skill sends back.
//!
//! Every value released to a skill during a run is replaced by
//! `[REDACTED:<path>]` wherever it appears in one of the [`FORMS`]: the list
//! of spellings a standard decoder turns back into the value. It is the one
//! place those spellings are defined, and each has its own test.
//!
//! All needles (every form of every value) go into one Aho-Corasick automaton
//! (leftmost-longest), so redacting output costs one pass over it whatever the
//! number of values; the forms that no fixed needle can cover (any mix of
//! escaped and plain characters) are matched on *decoded views* of the output
//! that map each match back to the bytes that spell it. The views are built
//! and searched one at a time, and map back only the bytes their decoder
//! changed, so the heap redaction needs grows by a few bytes per output byte
//! (about 4 for JSON logs, 8 for the most hostile output `tests/peak_memory.rs`
//! tries, which bounds it), not by the ~100 that building every view at once
//! with a source range per byte cost. Besides, each match costs 24 bytes
//! while redacting and is replaced by its marker in the copy returned: a
//! short value repeated throughout the output costs most (a 3-byte value,
//! 16 bytes per output byte; a 1-byte one, 56).
//!
//! Everything written to one sink is redacted as one stream
//! ([`Redactor::redact_segments`]), so a value split across the skill's
//! stdout, its stderr and its result is caught where the parts meet.
//!
//! Here: the forms and the limits. The pieces: [`redactor`] (registering values and
//! redacting a stream), [`needles`] (the fixed needles each form gives a value), [`matcher`]
//! (the automata, and replacing their matches in the output) and [`views`] (decoded views of
//! the output for the forms no needle covers).

mod matcher;
mod needles;
mod redactor;
mod views;

#[cfg(test)]
mod tests;

pub(crate) use matcher::replace_ranges;
pub use redactor::{Redactor, TOO_LONG_MARKER};

/// Encoded forms are only matched for values at least this long: the
/// encodings of a one- or two-byte value are short strings that occur by
/// chance in ordinary output, and such a value is no credential.
/// The raw value itself is always redacted, whatever its length.
pub const MIN_ENCODED_REDACTION_LEN: usize = 3;

/// A line of a multi-line value, or a string inside a value that is JSON, is
/// a needle of its own from this length on. Shorter lines are the
/// punctuation and boilerplate of such values (`{`, `}`, `"type": "x",`)
/// that ordinary output is full of; a 16-byte piece of a PEM body line or of
/// a key is already useless to guess from.
pub const MIN_LINE_NEEDLE_LEN: usize = 16;

/// The value inside a longer base64 stream is matched by the characters that
/// depend on its bytes only; shorter cores than this (values of under ~6
/// bytes) are random-looking strings that occur by chance in ordinary output.
pub const MIN_EMBEDDED_BASE64_CHARS: usize = 8;

/// Bytes of needles (all forms of all values released in one run) the
/// redactor holds at most. A form costs about 16 bytes of needles per byte of
/// value, and the automaton about 10x its needles in memory: 16 MiB bounds
/// the host's memory for the automaton to a few hundred MiB (the output adds a
/// few bytes per byte; see [`MAX_REDACTED_STREAM_BYTES`]) and its set-up to
/// well under a second, while allowing ~1 MiB of released values per run
/// (a thousand 1 KiB secrets). A release that would pass it is refused
/// before the value leaves the host: a value that cannot be redacted is not
/// released (`agentsec-run` exits 4: the redaction limit).
pub const MAX_REDACTION_NEEDLE_BYTES: usize = 16 << 20;

/// Bytes of output (all segments of one stream, [`Redactor::redact_segments`])
/// redaction searches at most: offsets into it, and into its decoded views,
/// are held as `u32` (4 GiB), which keeps the memory redaction needs to a
/// few bytes per output byte. `agentsec-run` allows 1 MiB for each of three
/// segments by default, so only a `--max-output` over ~1.3 GiB comes near
/// it; a longer stream is replaced whole by [`TOO_LONG_MARKER`], never
/// passed on unredacted.
pub const MAX_REDACTED_STREAM_BYTES: usize = u32::MAX as usize;

/// The spellings of a value that redaction recognises. [`FORMS`] lists them
/// all; every form has a test in this module and one through `agentsec-run`
/// (`tests/tests/redaction.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Form {
    /// The value's bytes, whatever its length.
    Raw,
    /// Base64 of the whole value: standard and URL-safe alphabets, padded or not.
    Base64,
    /// The value inside a longer base64 stream, starting at any of the three
    /// byte offsets of a base64 group: the characters that depend on the
    /// value's bytes only (up to four bits at each end stay visible).
    Base64Embedded,
    /// Hex, in any mix of upper and lower case.
    Hex,
    /// Each line of a multi-line value (a PEM key, a service-account JSON),
    /// leading and trailing blanks removed, from [`MIN_LINE_NEEDLE_LEN`] bytes.
    Line,
    /// Each string member of a value that is itself JSON (the PEM key inside
    /// a service-account key) and its lines, from [`MIN_LINE_NEEDLE_LEN`] bytes.
    JsonMember,
    /// Any of the above with characters written as backslash escapes, in
    /// any mix and up to two levels deep (a JSON string inside a JSON string): JSON's `\"` `\\` `\/` `\n` `\uXXXX` (surrogate pairs
    /// included, either case) and `\xHH`. A JSON result is thereby redacted
    /// on its decoded strings and keys, and no escape spelling survives.
    BackslashEscaped,
    /// Any of the above with any of its bytes percent-encoded (`%2F` or
    /// `%2f`), every byte or some.
    PercentEncoded,
    /// Any of the above broken over lines (CR/LF inserted anywhere), as
    /// `base64`, MIME and PEM wrap long encodings.
    LineWrapped,
}

/// Every form, in one place.
pub const FORMS: &[Form] = &[
    Form::Raw,
    Form::Base64,
    Form::Base64Embedded,
    Form::Hex,
    Form::Line,
    Form::JsonMember,
    Form::BackslashEscaped,
    Form::PercentEncoded,
    Form::LineWrapped,
];

/// A registered value would take the redactor past its limit (by default
/// [`MAX_REDACTION_NEEDLE_BYTES`]); it was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NeedleLimit {
    /// Bytes of needles the value would have added.
    pub needed: usize,
    /// Bytes already held.
    pub held: usize,
    /// The limit.
    pub limit: usize,
}

impl std::fmt::Display for NeedleLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "redacting this value needs {} more bytes of needles; {} are held and the limit is {}",
            self.needed, self.held, self.limit
        )
    }
}

impl std::error::Error for NeedleLimit {}
