//! [`Redactor`]: the values released during one run, and redacting what a skill sends back.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};

use zeroize::Zeroizing;

use super::matcher::{Hit, Matcher, Needle, apply_segments, compact, merge};
use super::needles::needles_of;
use super::views::search_views;
use super::{MAX_REDACTED_STREAM_BYTES, MAX_REDACTION_NEEDLE_BYTES, NeedleLimit};

/// Values registered since the automaton was last built are searched with a
/// second, small automaton; once they are this many (or more than the built
/// ones) everything is rebuilt into one. A skill releasing values one call at
/// a time then costs O(n log n) automaton building, not O(n^2).
const TAIL_REBUILD_VALUES: usize = 32;

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
    ///
    /// A stream longer than [`MAX_REDACTED_STREAM_BYTES`] is not searched:
    /// every segment becomes [`TOO_LONG_MARKER`] (nothing unredacted leaves).
    pub fn redact_segments(&mut self, segments: &[&[u8]]) -> Vec<Vec<u8>> {
        self.redact_within(segments, MAX_REDACTED_STREAM_BYTES)
    }

    /// [`Redactor::redact_segments`] for streams of at most `max_stream`
    /// bytes (at most [`MAX_REDACTED_STREAM_BYTES`]).
    pub(super) fn redact_within(&mut self, segments: &[&[u8]], max_stream: usize) -> Vec<Vec<u8>> {
        if self.is_empty() {
            return segments.iter().map(|s| s.to_vec()).collect();
        }
        let len = segments
            .iter()
            .fold(0usize, |n, s| n.saturating_add(s.len()));
        if len > max_stream.min(MAX_REDACTED_STREAM_BYTES) {
            return segments.iter().map(|_| TOO_LONG_MARKER.to_vec()).collect();
        }
        self.prepare();
        let joined: Zeroizing<Vec<u8>> = Zeroizing::new(segments.concat());
        let mut hits = Vec::new();
        self.find(&joined, &mut hits);
        let mut found = Vec::new();
        search_views(&joined, |rank, bytes, to_source| {
            found.clear();
            self.find(bytes, &mut found);
            hits.extend(found.drain(..).filter_map(|h| to_source(Hit { rank, ..h })));
            compact(&mut hits);
        });
        drop(found);
        drop(joined);
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

/// What each segment of a stream too long to redact becomes (see
/// [`Redactor::redact_segments`]).
pub const TOO_LONG_MARKER: &[u8] = b"[REDACTED:output too long to redact]";

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
