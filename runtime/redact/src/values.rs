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
//! that map each match back to the bytes that spell it.
//!
//! Everything written to one sink is redacted as one stream
//! ([`Redactor::redact_segments`]), so a value split across the skill's
//! stdout, its stderr and its result is caught where the parts meet.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

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
/// the host's memory for redaction to a few hundred MiB and its set-up to
/// well under a second, while allowing ~1 MiB of released values per run
/// (a thousand 1 KiB secrets). A release that would pass it is refused
/// before the value leaves the host: a value that cannot be redacted is not
/// released (`agentsec-run` exits 4: the redaction limit).
pub const MAX_REDACTION_NEEDLE_BYTES: usize = 16 << 20;

/// Values registered since the automaton was last built are searched with a
/// second, small automaton; once they are this many (or more than the built
/// ones) everything is rebuilt into one. A skill releasing values one call at
/// a time then costs O(n log n) automaton building, not O(n^2).
const TAIL_REBUILD_VALUES: usize = 32;

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

/// One needle: secret material, wiped on drop.
struct Needle {
    bytes: Zeroizing<Vec<u8>>,
    marker: u32,
}

/// Automata over a range of the needles.
#[derive(Default)]
struct Matcher {
    /// Case-sensitive forms, and the marker of each pattern.
    exact: Option<(AhoCorasick, Vec<u32>)>,
    /// Forms matched in any ASCII case (hex).
    folded: Option<(AhoCorasick, Vec<u32>)>,
}

impl Matcher {
    fn build(exact: &[Needle], folded: &[Needle]) -> Matcher {
        let build = |needles: &[Needle], fold: bool| {
            if needles.is_empty() {
                return None;
            }
            let ac = AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .ascii_case_insensitive(fold)
                .build(needles.iter().map(|n| n.bytes.as_slice()))
                .ok()?;
            Some((ac, needles.iter().map(|n| n.marker).collect()))
        };
        Matcher {
            exact: build(exact, false),
            folded: build(folded, true),
        }
    }

    /// Every match in `haystack` as (start, end, marker).
    fn find(&self, haystack: &[u8], out: &mut Vec<Hit>) {
        for (ac, markers) in self.exact.iter().chain(self.folded.iter()) {
            for m in ac.find_iter(haystack) {
                let marker = markers.get(m.pattern().as_usize()).copied().unwrap_or(0);
                out.push(Hit {
                    start: m.start(),
                    end: m.end(),
                    marker,
                });
            }
        }
    }
}

/// A match in source coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hit {
    start: usize,
    end: usize,
    marker: u32,
}

/// The needles for the values released during one run.
#[derive(Default)]
pub struct Redactor {
    /// `[REDACTED:<path>]`, one per path.
    markers: Vec<Vec<u8>>,
    /// Case-sensitive needles, in registration order.
    exact: Vec<Needle>,
    /// Needles matched in any ASCII case.
    folded: Vec<Needle>,
    /// Registered (value, marker) pairs by a keyed hash of the value, to skip
    /// re-registering a value a skill reads again (indices into `values`).
    seen: HashMap<u64, Vec<usize>>,
    values: Vec<Needle>,
    hasher: RandomState,
    needle_bytes: usize,
    /// The most `needle_bytes` may reach; `None` is the default,
    /// [`MAX_REDACTION_NEEDLE_BYTES`].
    max_needle_bytes: Option<usize>,
    /// Covers `exact[..main_upto.0]`, `folded[..main_upto.1]`.
    main: Matcher,
    main_upto: (usize, usize, usize),
    /// Covers the rest, when `tail_upto` says it is current.
    tail: Matcher,
    tail_upto: (usize, usize, usize),
}

impl Redactor {
    /// An empty redactor that holds at most `max_needle_bytes` of needles
    /// (`--max-redaction-bytes`; the default is [`MAX_REDACTION_NEEDLE_BYTES`]).
    pub fn with_limit(max_needle_bytes: usize) -> Redactor {
        Redactor {
            max_needle_bytes: Some(max_needle_bytes),
            ..Redactor::default()
        }
    }

    fn max_needle_bytes(&self) -> usize {
        self.max_needle_bytes.unwrap_or(MAX_REDACTION_NEEDLE_BYTES)
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Redactor([REDACTED; {} values, {} needles])",
            self.values.len(),
            self.exact.len() + self.folded.len()
        )
    }
}

impl Redactor {
    /// Registers a released value, known to the caller as `path`.
    ///
    /// Fails (registering nothing) when the value's needles would take the
    /// redactor past [`MAX_REDACTION_NEEDLE_BYTES`]; the caller must then not
    /// release the value.
    pub fn add(&mut self, path: &str, value: &[u8]) -> Result<(), NeedleLimit> {
        if value.is_empty() {
            return Ok(());
        }
        let marker = marker_for(path);
        let key = self.hasher.hash_one(value);
        // A skill reading the same secret again (a loop) must not pay for
        // re-encoding it (or for a new marker).
        if let Some(seen) = self.seen.get(&key)
            && seen.iter().any(|&i| {
                self.values.get(i).is_some_and(|n| {
                    *n.bytes == *value && self.markers.get(n.marker as usize) == Some(&marker)
                })
            })
        {
            return Ok(());
        }
        let (exact, folded) = needles_of(value);
        let needed: usize = exact.iter().chain(folded.iter()).map(|n| n.len()).sum();
        if self.needle_bytes.saturating_add(needed) > self.max_needle_bytes() {
            return Err(NeedleLimit {
                needed,
                held: self.needle_bytes,
                limit: self.max_needle_bytes(),
            });
        }
        self.needle_bytes += needed;
        let id = match self.markers.iter().position(|m| *m == marker) {
            Some(i) => i,
            None => {
                self.markers.push(marker);
                self.markers.len() - 1
            }
        };
        let id = u32::try_from(id).unwrap_or(u32::MAX);
        self.exact
            .extend(exact.into_iter().map(|bytes| Needle { bytes, marker: id }));
        self.folded
            .extend(folded.into_iter().map(|bytes| Needle { bytes, marker: id }));
        self.seen.entry(key).or_default().push(self.values.len());
        self.values.push(Needle {
            bytes: Zeroizing::new(value.to_vec()),
            marker: id,
        });
        Ok(())
    }

    /// Whether any value has been registered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Bytes of needles held (see [`MAX_REDACTION_NEEDLE_BYTES`]).
    pub fn needle_bytes(&self) -> usize {
        self.needle_bytes
    }

    /// `input` with every registered value, in every form, replaced.
    pub fn redact(&mut self, input: &[u8]) -> Vec<u8> {
        self.redact_segments(&[input]).pop().unwrap_or_default()
    }

    /// [`Redactor::redact`] for text. Replacements are ASCII and replace
    /// whole matches of UTF-8 needles, so valid UTF-8 stays valid; anything
    /// else is converted lossily.
    pub fn redact_str(&mut self, input: &str) -> String {
        match String::from_utf8(self.redact(input.as_bytes())) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// Redacts `segments` as one stream, in the order given: the order they
    /// are written to one sink. A value that spans the end of one segment
    /// and the start of the next is replaced in both, by the marker in each.
    pub fn redact_segments(&mut self, segments: &[&[u8]]) -> Vec<Vec<u8>> {
        if self.is_empty() {
            return segments.iter().map(|s| s.to_vec()).collect();
        }
        self.prepare();
        let joined: Zeroizing<Vec<u8>> = Zeroizing::new(segments.concat());
        let mut hits = Vec::new();
        self.find(&joined, &mut hits);
        for view in views(&joined) {
            let mut found = Vec::new();
            self.find(&view.bytes, &mut found);
            hits.extend(found.into_iter().filter_map(|h| view.to_source(h)));
        }
        let hits = merge(hits);
        let markers: Vec<&[u8]> = self.markers.iter().map(Vec::as_slice).collect();
        apply_segments(segments, &hits, |m| {
            markers.get(m as usize).copied().unwrap_or(b"[REDACTED]")
        })
    }

    /// Brings the automata up to date with the registered needles.
    fn prepare(&mut self) {
        let now = (self.exact.len(), self.folded.len(), self.values.len());
        if self.main_upto == now {
            return;
        }
        let main_values = self.main_upto.2;
        let tail_values = now.2 - main_values;
        if tail_values >= TAIL_REBUILD_VALUES || tail_values > main_values {
            self.main = Matcher::build(&self.exact, &self.folded);
            self.main_upto = now;
            self.tail = Matcher::default();
            self.tail_upto = now;
        } else if self.tail_upto != now {
            let (e, f, _) = self.main_upto;
            self.tail = Matcher::build(
                self.exact.get(e..).unwrap_or_default(),
                self.folded.get(f..).unwrap_or_default(),
            );
            self.tail_upto = now;
        }
    }

    fn find(&self, haystack: &[u8], out: &mut Vec<Hit>) {
        self.main.find(haystack, out);
        if self.tail_upto != self.main_upto {
            self.tail.find(haystack, out);
        }
    }
}

/// The marker for `path`, safe to land inside a JSON string or a shell word:
/// quotes, backslashes and control characters of a bracketed path become `_`.
fn marker_for(path: &str) -> Vec<u8> {
    let mut out = b"[REDACTED:".to_vec();
    out.extend(path.bytes().map(|b| match b {
        b'"' | b'\\' | b'`' => b'_',
        b if b.is_ascii_control() => b'_',
        b => b,
    }));
    out.push(b']');
    out
}

/// Needle bytes: secret material, wiped on drop.
type NeedleBytes = Zeroizing<Vec<u8>>;

/// Every needle of `value`: (case-sensitive, any-case).
fn needles_of(value: &[u8]) -> (Vec<NeedleBytes>, Vec<NeedleBytes>) {
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

/// The backslash escape at `src[at]` (which is `\`): its UTF-8 bytes, how
/// many of them there are and its length in `src`; `None` if it is not one.
fn unescape(src: &[u8], at: usize) -> Option<([u8; 4], usize, usize)> {
    let simple = |b: u8| {
        let mut out = [0; 4];
        out[0] = b;
        out
    };
    let hex_at = |from: usize, n: usize| -> Option<u32> {
        let digits = src.get(from..from + n)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    let c = *src.get(at + 1)?;
    Some(match c {
        b'"' | b'\\' | b'/' | b'\'' => (simple(c), 1, 2),
        b'b' => (simple(0x08), 1, 2),
        b'f' => (simple(0x0C), 1, 2),
        b'n' => (simple(b'\n'), 1, 2),
        b'r' => (simple(b'\r'), 1, 2),
        b't' => (simple(b'\t'), 1, 2),
        b'x' => (simple(u8::try_from(hex_at(at + 2, 2)?).ok()?), 1, 4),
        b'u' => {
            let unit = hex_at(at + 2, 4)?;
            let (code, len) = if (0xD800..0xDC00).contains(&unit) {
                // A surrogate pair: `\uD83D\uDE00`.
                if src.get(at + 6) != Some(&b'\\') || src.get(at + 7) != Some(&b'u') {
                    return None;
                }
                let low = hex_at(at + 8, 4)?;
                if !(0xDC00..0xE000).contains(&low) {
                    return None;
                }
                (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), 12)
            } else {
                (unit, 6)
            };
            let ch = char::from_u32(code)?;
            let mut out = [0; 4];
            let n = ch.encode_utf8(&mut out).len();
            (out, n, len)
        }
        _ => return None,
    })
}

/// Nested escapes are decoded this many levels deep: a JSON string inside a
/// JSON string (the value's escapes escaped again) is common; a third level
/// is contrived, and each level costs a pass over the output.
const MAX_ESCAPE_DEPTH: usize = 2;

/// The decoded views of `src` that redaction searches besides `src` itself:
/// backslash escapes decoded (up to [`MAX_ESCAPE_DEPTH`] levels), then line
/// breaks dropped from `src` and from each of those; and percent-encoding
/// decoded. Each view exists only if its decoder finds something to decode.
fn views(src: &[u8]) -> Vec<View> {
    let mut escaped: Vec<View> = Vec::new();
    for _ in 0..MAX_ESCAPE_DEPTH {
        let next = match escaped.last() {
            None => View::backslash(src),
            Some(last) => View::backslash(&last.bytes).map(|v| v.through(last)),
        };
        match next {
            Some(v) => escaped.push(v),
            None => break,
        }
    }
    let mut out = Vec::new();
    out.extend(View::unwrapped(src));
    for v in &escaped {
        out.extend(View::unwrapped(&v.bytes).map(|u| u.through(v)));
    }
    out.extend(escaped);
    out.extend(View::percent(src));
    out
}

/// A decoded copy of some output, and where each of its bytes came from.
struct View {
    bytes: Zeroizing<Vec<u8>>,
    /// For each decoded byte, the source range that produced it.
    from: Vec<(usize, usize)>,
}

impl View {
    /// Decodes every backslash escape; `None` when there is none.
    fn backslash(src: &[u8]) -> Option<View> {
        memchr::memchr(b'\\', src)?;
        Some(Self::decode(src, |src, i| {
            if src.get(i) != Some(&b'\\') {
                return None;
            }
            unescape(src, i)
        }))
    }

    /// Decodes every `%XX`; `None` when there is none.
    fn percent(src: &[u8]) -> Option<View> {
        memchr::memchr(b'%', src)?;
        Some(Self::decode(src, |src, i| {
            if src.get(i) != Some(&b'%') {
                return None;
            }
            let digits = src.get(i + 1..i + 3)?;
            if !digits.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let byte = u8::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
            Some(([byte, 0, 0, 0], 1, 3))
        }))
    }

    /// Drops every CR and LF; `None` when there is none.
    fn unwrapped(src: &[u8]) -> Option<View> {
        memchr::memchr2(b'\n', b'\r', src)?;
        Some(Self::decode(src, |src, i| match src.get(i) {
            Some(b'\n' | b'\r') => Some(([0; 4], 0, 1)),
            _ => None,
        }))
    }

    /// `step(src, i)` decodes the unit at `i` into (bytes, how many, its
    /// length in `src`), or `None` to copy the byte as it is.
    fn decode(src: &[u8], step: impl Fn(&[u8], usize) -> Option<([u8; 4], usize, usize)>) -> View {
        let mut bytes = Zeroizing::new(Vec::with_capacity(src.len()));
        let mut from = Vec::with_capacity(src.len());
        let mut i = 0;
        while let Some(&b) = src.get(i) {
            match step(src, i) {
                Some((out, n, len)) => {
                    for &o in out.iter().take(n) {
                        bytes.push(o);
                        from.push((i, i + len));
                    }
                    i += len.max(1);
                }
                None => {
                    bytes.push(b);
                    from.push((i, i + 1));
                    i += 1;
                }
            }
        }
        View { bytes, from }
    }

    /// This view of `base`'s bytes as a view of `base`'s source.
    fn through(self, base: &View) -> View {
        let from = self
            .from
            .iter()
            .map(|&(start, end)| {
                let s = base.from.get(start).map_or(0, |r| r.0);
                let e = end
                    .checked_sub(1)
                    .and_then(|last| base.from.get(last))
                    .map_or(s, |r| r.1);
                (s, e)
            })
            .collect();
        View {
            bytes: self.bytes,
            from,
        }
    }

    /// A match in the view as a match in the source.
    fn to_source(&self, hit: Hit) -> Option<Hit> {
        let start = self.from.get(hit.start)?.0;
        let end = self.from.get(hit.end.checked_sub(1)?)?.1;
        Some(Hit {
            start,
            end,
            marker: hit.marker,
        })
    }
}

/// Sorted, non-overlapping hits: overlapping ones are joined and keep the
/// marker of the one that starts first (the longest, on a tie).
fn merge(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
    let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        match out.last_mut() {
            Some(last) if h.start < last.end => last.end = last.end.max(h.end),
            _ => out.push(h),
        }
    }
    out
}

/// `segments` (one stream, in order) with each of the sorted, disjoint
/// `hits` (offsets into the stream) replaced by its marker, in every segment
/// it touches.
fn apply_segments<'m>(
    segments: &[&[u8]],
    hits: &[Hit],
    marker: impl Fn(u32) -> &'m [u8],
) -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(segments.len());
    let mut base = 0;
    let mut next = 0;
    for seg in segments {
        let end = base + seg.len();
        let mut text = Vec::with_capacity(seg.len());
        let mut pos = base;
        // Hits that ended before this segment are done.
        while hits.get(next).is_some_and(|h| h.end <= base) {
            next += 1;
        }
        let mut k = next;
        while let Some(h) = hits.get(k).filter(|h| h.start < end) {
            let from = h.start.max(base);
            text.extend_from_slice(seg.get(pos - base..from - base).unwrap_or_default());
            text.extend_from_slice(marker(h.marker));
            pos = h.end.min(end);
            k += 1;
        }
        text.extend_from_slice(seg.get(pos - base..).unwrap_or_default());
        out.push(text);
        base = end;
    }
    out
}

/// `segments` as one stream with each range in `ranges` (sorted, disjoint,
/// stream offsets) replaced by `marker`: the shape redaction's use of
/// [`apply_segments`].
pub(crate) fn replace_ranges(
    segments: &[&[u8]],
    ranges: &[(usize, usize)],
    marker: &[u8],
) -> Vec<Vec<u8>> {
    let hits: Vec<Hit> = ranges
        .iter()
        .map(|&(start, end)| Hit {
            start,
            end,
            marker: 0,
        })
        .collect();
    apply_segments(segments, &hits, |_| marker)
}

#[cfg(test)]
mod tests {
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
            Form::Base64Embedded => {
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
            Form::Hex => vec![
                plain(hex::encode(SECRET)),
                plain(hex::encode_upper(SECRET)),
                plain(
                    hex::encode(SECRET)
                        .char_indices()
                        .map(|(i, c)| {
                            if i % 3 == 0 {
                                c.to_ascii_uppercase()
                            } else {
                                c
                            }
                        })
                        .collect(),
                ),
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
}
