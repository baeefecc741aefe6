//! Decoded views of the output: for the forms no fixed needle covers (any mix of escaped
//! and plain characters, percent-encoding, line breaks anywhere), the output is decoded and
//! searched again, and each match is mapped back to the bytes that spell it.

use zeroize::Zeroizing;

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

/// The decoded views of `src` that redaction searches besides `src` itself:
/// backslash escapes decoded (up to [`MAX_ESCAPE_DEPTH`] levels), then line
/// breaks dropped from `src` and from each of those; and percent-encoding
/// decoded. Each view exists only if its decoder finds something to decode.
pub(super) fn views(src: &[u8]) -> Vec<DecodedView> {
    let mut escaped: Vec<DecodedView> = Vec::new();
    for _ in 0..MAX_ESCAPE_DEPTH {
        let next = match escaped.last() {
            None => DecodedView::backslash(src),
            Some(last) => DecodedView::backslash(&last.bytes).map(|v| v.through(last)),
        };
        match next {
            Some(v) => escaped.push(v),
            None => break,
        }
    }
    let mut out = Vec::new();
    out.extend(DecodedView::unwrapped(src));
    for v in &escaped {
        out.extend(DecodedView::unwrapped(&v.bytes).map(|u| u.through(v)));
    }
    out.extend(escaped);
    out.extend(DecodedView::percent(src));
    out
}

/// A decoded copy of some output, and where each of its bytes came from.
pub(super) struct DecodedView {
    pub(super) bytes: Zeroizing<Vec<u8>>,
    /// For each decoded byte, the source range that produced it.
    from: Vec<(usize, usize)>,
}

impl DecodedView {
    /// Decodes every backslash escape; `None` when there is none.
    fn backslash(src: &[u8]) -> Option<DecodedView> {
        memchr::memchr(b'\\', src)?;
        Some(Self::decode(src, |src, i| {
            if src.get(i) != Some(&b'\\') {
                return None;
            }
            unescape(src, i)
        }))
    }

    /// Decodes every `%XX`; `None` when there is none.
    fn percent(src: &[u8]) -> Option<DecodedView> {
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
    fn unwrapped(src: &[u8]) -> Option<DecodedView> {
        memchr::memchr2(b'\n', b'\r', src)?;
        Some(Self::decode(src, |src, i| match src.get(i) {
            Some(b'\n' | b'\r') => Some(([0; 4], 0, 1)),
            _ => None,
        }))
    }

    /// `step(src, i)` decodes the unit at `i` into (bytes, how many, its
    /// length in `src`), or `None` to copy the byte as it is.
    fn decode(
        src: &[u8],
        step: impl Fn(&[u8], usize) -> Option<([u8; 4], usize, usize)>,
    ) -> DecodedView {
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
        DecodedView { bytes, from }
    }

    /// This view of `base`'s bytes as a view of `base`'s source.
    fn through(self, base: &DecodedView) -> DecodedView {
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
        DecodedView {
            bytes: self.bytes,
            from,
        }
    }

    /// A match in the view as a match in the source.
    pub(super) fn to_source(&self, hit: Hit) -> Option<Hit> {
        let start = self.from.get(hit.start)?.0;
        let end = self.from.get(hit.end.checked_sub(1)?)?.1;
        Some(Hit {
            start,
            end,
            marker: hit.marker,
        })
    }
}
