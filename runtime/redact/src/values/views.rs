//! Decoded views of the output: for the forms no fixed needle covers (any mix of escaped
//! and plain characters, percent-encoding, line breaks anywhere), the output is decoded and
//! searched again, and each match is mapped back to the bytes that spell it.
//!
//! Memory is what a hostile skill can make the host spend on every run, so the views are
//! built and searched one at a time, each dropped before the next is built, and where a
//! view's bytes came from is kept only for the bytes its decoder changed ([`OffsetMap`]):
//! the rest map 1:1. Peak heap is a few bytes per output byte
//! (`tests/peak_memory.rs` bounds it).

use zeroize::Zeroizing;

use super::MAX_REDACTED_STREAM_BYTES;
use super::matcher::Hit;

/// The backslash escape at `src[at]` (which is `\`): its UTF-8 bytes, how
/// many of them there are and its length in `src`; `None` if it is not one.
pub(super) fn unescape(src: &[u8], at: usize) -> Option<([u8; 4], usize, usize)> {
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

/// The rank of the view with line breaks dropped from escape level `level`
/// (0: from `src`). Ranks are the order in which the views' matches count, should two of them cover the
/// same bytes with different markers (the first one's marker is kept; see
/// `merge`): line breaks dropped from `src` and from each level of escapes,
/// then each level of escapes, then percent-encoding. The source itself is 0.
fn unwrapped_rank(level: usize) -> u8 {
    u8::try_from(1 + level).unwrap_or(u8::MAX)
}
/// The rank of escape level `level` (from 1); see [`unwrapped_rank`].
fn escaped_rank(level: usize) -> u8 {
    u8::try_from(1 + MAX_ESCAPE_DEPTH + level).unwrap_or(u8::MAX)
}
/// The rank of the percent-decoded view; see [`unwrapped_rank`].
const PERCENT_RANK: u8 = 2 + 2 * MAX_ESCAPE_DEPTH as u8;

/// Searches the decoded views of `src` (at most [`MAX_REDACTED_STREAM_BYTES`]
/// long) that redaction searches besides `src` itself: backslash escapes
/// decoded (up to [`MAX_ESCAPE_DEPTH`] levels), line breaks dropped from
/// `src` and from each of those, and percent-encoding decoded. Each view
/// exists only if its decoder finds something to decode.
///
/// `visit(rank, bytes, to_source)` is called once per view, with the view's
/// rank (see [`unwrapped_rank`]), its bytes, and the map of a match in
/// them to the bytes of `src` that spell it. At most two views are held at
/// once: an escape level and a view decoded from it.
pub(super) fn search_views(
    src: &[u8],
    mut visit: impl FnMut(u8, &[u8], &dyn Fn(Hit) -> Option<Hit>),
) {
    if let Some(view) = DecodedView::unwrapped(src) {
        visit(unwrapped_rank(0), &view.bytes, &|h| view.map.to_base(h));
    }
    if let Some(view) = DecodedView::percent(src) {
        visit(PERCENT_RANK, &view.bytes, &|h| view.map.to_base(h));
    }
    // The maps of the escape levels so far, the first level first; and the
    // bytes of the last level only.
    let mut levels: Vec<OffsetMap> = Vec::new();
    let mut last: Option<Zeroizing<Vec<u8>>> = None;
    for level in 1..=MAX_ESCAPE_DEPTH {
        let Some(view) = DecodedView::backslash(last.as_deref().map_or(src, |b| b.as_slice()))
        else {
            break;
        };
        // The level below is no longer needed, but for its map.
        last = Some(view.bytes);
        levels.push(view.map);
        let bytes = last.as_deref().map_or(&[][..], |b| b.as_slice());
        let to_source = |h: Hit| levels.iter().rev().try_fold(h, |h, map| map.to_base(h));
        visit(escaped_rank(level), bytes, &to_source);
        if let Some(view) = DecodedView::unwrapped(bytes) {
            visit(unwrapped_rank(level), &view.bytes, &|h| {
                view.map.to_base(h).and_then(to_source)
            });
        }
    }
}

/// A decoded copy of some output, and where each of its bytes came from.
struct DecodedView {
    bytes: Zeroizing<Vec<u8>>,
    map: OffsetMap,
}

/// Where each byte of a decoded view came from in the text it was decoded
/// from (its base). Only the decoded units are kept, and a run of units of
/// one shape at a fixed distance (`\n\n\n`, `%41 %41 `) is one entry; a
/// byte between two units was copied, and maps 1:1 from where the last one
/// ended. Offsets are `u32`: the stream is at most
/// [`MAX_REDACTED_STREAM_BYTES`] long. So a map takes at most 12 bytes per
/// decoded unit, and next to nothing for repetitive output. Entries are held
/// in chunks of [`CHUNK_RUNS`], so the map grows without copying itself.
#[derive(Default)]
struct OffsetMap {
    /// In order: view offsets ascending, base offsets ascending; every chunk
    /// but the last full.
    chunks: Vec<Vec<Run>>,
}

/// Entries of an [`OffsetMap`] per chunk (48 KiB).
const CHUNK_RUNS: usize = 4096;

/// `count` decoded units, each `n` view bytes from `len` base bytes (packed
/// in `shape`), the first at view offset `at` and base offset `src`, with
/// `gap` copied bytes between one and the next. A dropped line break is a
/// unit with `n == 0`.
#[derive(Clone, Copy)]
struct Run {
    at: u32,
    src: u32,
    count: u16,
    gap: u8,
    /// `n << 4 | len`: both are under 16 (see [`shape`]).
    shape: u8,
}

/// `n` and `len` packed into a [`Run::shape`]; `None` if either is 16 or more.
fn shape(n: usize, len: usize) -> Option<u8> {
    let (n, len) = (u8::try_from(n).ok()?, u8::try_from(len).ok()?);
    (n < 16 && len < 16).then_some(n << 4 | len)
}

impl Run {
    /// View bytes and base bytes of each unit.
    fn n_len(&self) -> (usize, usize) {
        (usize::from(self.shape >> 4), usize::from(self.shape & 0xF))
    }

    /// View and base offsets just past the last unit.
    fn ends(&self) -> (usize, usize) {
        let before = usize::from(self.count).saturating_sub(1);
        let gap = usize::from(self.gap);
        let (n, len) = self.n_len();
        (
            wide(self.at) + before * (n + gap) + n,
            wide(self.src) + before * (len + gap) + len,
        )
    }
}

/// An offset in a stream that [`MAX_REDACTED_STREAM_BYTES`] bounds.
fn offset(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// A stored offset, as an index.
fn wide(i: u32) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

impl OffsetMap {
    /// Records that the base bytes at `src` decoded, as a unit of `shape`,
    /// to the view bytes at `at` (after every unit recorded so far).
    fn push(&mut self, at: usize, src: usize, shape: u8) {
        if let Some(last) = self.chunks.last_mut().and_then(|c| c.last_mut())
            && last.shape == shape
            && last.count < u16::MAX
        {
            let gap = at.checked_sub(last.ends().0);
            if last.count == 1
                && let Some(gap) = gap.and_then(|g| u8::try_from(g).ok())
            {
                last.gap = gap;
                last.count = 2;
                return;
            }
            if gap == Some(usize::from(last.gap)) {
                last.count += 1;
                return;
            }
        }
        let run = Run {
            at: offset(at),
            src: offset(src),
            count: 1,
            gap: 0,
            shape,
        };
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK_RUNS => chunk.push(run),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK_RUNS);
                chunk.push(run);
                self.chunks.push(chunk);
            }
        }
    }

    /// The last run that starts at or before view byte `i`.
    fn run_before(&self, i: usize) -> Option<&Run> {
        let starts = |r: &Run| wide(r.at) <= i;
        let c = self
            .chunks
            .partition_point(|c| c.first().is_some_and(starts));
        let chunk = self.chunks.get(c.checked_sub(1)?)?;
        chunk.get(chunk.partition_point(starts).checked_sub(1)?)
    }

    /// The base range that view byte `i` came from.
    fn range(&self, i: usize) -> (usize, usize) {
        let Some(r) = self.run_before(i) else {
            return (i, i + 1);
        };
        let (view_end, src_end) = r.ends();
        let (n, len) = r.n_len();
        let gap = usize::from(r.gap);
        if i >= view_end || n + gap == 0 {
            let s = src_end + (i.saturating_sub(view_end));
            return (s, s + 1);
        }
        let (j, within) = ((i - wide(r.at)) / (n + gap), (i - wide(r.at)) % (n + gap));
        let unit = wide(r.src) + j * (len + gap);
        if within < n {
            (unit, unit + len)
        } else {
            let s = unit + len + (within - n);
            (s, s + 1)
        }
    }

    /// A match in the view as a match in its base.
    fn to_base(&self, hit: Hit) -> Option<Hit> {
        let start = self.range(hit.start).0;
        let end = self.range(hit.end.checked_sub(1)?).1;
        Some(Hit { start, end, ..hit })
    }
}

/// What decodes one unit of a view: `step(src, i)` is (bytes, how many, the
/// unit's length in `src`), or `None` to copy the byte at `i` as it is.
type Step = fn(&[u8], usize) -> Option<([u8; 4], usize, usize)>;

/// A backslash escape.
fn backslash_step(src: &[u8], i: usize) -> Option<([u8; 4], usize, usize)> {
    if src.get(i) != Some(&b'\\') {
        return None;
    }
    unescape(src, i)
}

/// A `%XX`.
fn percent_step(src: &[u8], i: usize) -> Option<([u8; 4], usize, usize)> {
    if src.get(i) != Some(&b'%') {
        return None;
    }
    let digits = src.get(i + 1..i + 3)?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let byte = u8::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
    Some(([byte, 0, 0, 0], 1, 3))
}

/// A CR or LF, dropped.
fn unwrap_step(src: &[u8], i: usize) -> Option<([u8; 4], usize, usize)> {
    match src.get(i) {
        Some(b'\n' | b'\r') => Some(([0; 4], 0, 1)),
        _ => None,
    }
}

impl DecodedView {
    /// Decodes every backslash escape; `None` when there is none.
    fn backslash(src: &[u8]) -> Option<DecodedView> {
        memchr::memchr(b'\\', src)?;
        Some(Self::decode(src, backslash_step))
    }

    /// Decodes every `%XX`; `None` when there is none.
    fn percent(src: &[u8]) -> Option<DecodedView> {
        memchr::memchr(b'%', src)?;
        Some(Self::decode(src, percent_step))
    }

    /// Drops every CR and LF; `None` when there is none.
    fn unwrapped(src: &[u8]) -> Option<DecodedView> {
        memchr::memchr2(b'\n', b'\r', src)?;
        Some(Self::decode(src, unwrap_step))
    }

    /// `step(src, i)` decodes the unit at `i` into (bytes, how many, its
    /// length in `src`), or `None` to copy the byte as it is.
    fn decode(src: &[u8], step: Step) -> DecodedView {
        debug_assert!(src.len() <= MAX_REDACTED_STREAM_BYTES);
        // Room for all of `src` up front: growing would leave copies of the
        // output that are not wiped.
        let mut bytes = Zeroizing::new(Vec::with_capacity(src.len()));
        let mut map = OffsetMap::default();
        let mut i = 0;
        while let Some(&b) = src.get(i) {
            // A unit is at most 4 bytes from 12 (`\uD83D\uDE00`).
            let unit = step(src, i).and_then(|(out, n, len)| {
                let len = len.max(1);
                Some((out, n, len, shape(n, len)?))
            });
            match unit {
                Some((out, n, len, shape)) => {
                    map.push(bytes.len(), i, shape);
                    bytes.extend_from_slice(out.get(..n).unwrap_or_default());
                    i += len;
                }
                None => {
                    bytes.push(b);
                    i += 1;
                }
            }
        }
        DecodedView { bytes, map }
    }
}

#[cfg(test)]
mod tests {
    //! The sparse maps against the dense one they replace (a source range
    //! per view byte, composed level by level), on every view of many inputs.

    use super::*;

    /// The view as the dense decoder made it: bytes, and a source range per byte.
    fn dense(src: &[u8], step: Step) -> (Vec<u8>, Vec<(usize, usize)>) {
        let (mut bytes, mut from) = (Vec::new(), Vec::new());
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
        (bytes, from)
    }

    /// `from` (into a view) composed with `base` (that view's map to the source).
    fn through(from: &[(usize, usize)], base: &[(usize, usize)]) -> Vec<(usize, usize)> {
        from.iter()
            .map(|&(s, e)| (base[s].0, base[e - 1].1))
            .collect()
    }

    /// Every range the sparse `maps` (view first) give matches the dense `from`.
    fn check(maps: &[&OffsetMap], from: &[(usize, usize)], src: &[u8]) {
        for start in 0..from.len() {
            for end in [start + 1, from.len()] {
                let hit = Hit {
                    start,
                    end,
                    marker: 0,
                    rank: 0,
                };
                let got = maps.iter().try_fold(hit, |h, m| m.to_base(h)).unwrap();
                let want = (from[start].0, from[end - 1].1);
                assert_eq!(
                    (got.start, got.end),
                    want,
                    "{:?}",
                    String::from_utf8_lossy(src)
                );
            }
        }
    }

    fn inputs() -> Vec<Vec<u8>> {
        let alphabet: &[&[u8]] = &[
            b"\\", b"\\\\", b"n", b"u00e9", b"ud83d", b"\\ude00", b"x41", b"%", b"41", b"%2f",
            b"a", b"\r", b"\n", b"\r\n", b"\"", b"/",
        ];
        let mut out: Vec<Vec<u8>> = ["\\n", "\\\\\\\\", "%41", "a\n", "\\\\na", "\n\r\n"]
            .iter()
            .map(|p| p.repeat(50).into_bytes())
            .collect();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..400 {
            let mut text = Vec::new();
            for _ in 0..len % 60 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.extend_from_slice(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            out.push(text);
        }
        out
    }

    #[test]
    fn sparse_maps_give_the_dense_maps_ranges() {
        for src in inputs() {
            for step in [unwrap_step as Step, percent_step] {
                let view = DecodedView::decode(&src, step);
                let (bytes, from) = dense(&src, step);
                assert_eq!(*view.bytes, bytes);
                check(&[&view.map], &from, &src);
            }
            // Two levels of escapes, and line breaks dropped from each.
            let one = DecodedView::decode(&src, backslash_step);
            let (b1, f1) = dense(&src, backslash_step);
            assert_eq!(*one.bytes, b1);
            check(&[&one.map], &f1, &src);
            let two = DecodedView::decode(&one.bytes, backslash_step);
            let (b2, f2) = dense(&b1, backslash_step);
            assert_eq!(*two.bytes, b2);
            let f2 = through(&f2, &f1);
            check(&[&two.map, &one.map], &f2, &src);
            for (level, base, from) in [
                (&[&one.map][..], &b1, &f1),
                (&[&two.map, &one.map], &b2, &f2),
            ] {
                let u = DecodedView::decode(base, unwrap_step);
                let (bu, fu) = dense(base, unwrap_step);
                assert_eq!(*u.bytes, bu);
                let mut maps = vec![&u.map];
                maps.extend_from_slice(level);
                check(&maps, &through(&fu, from), &src);
            }
        }
    }
}
