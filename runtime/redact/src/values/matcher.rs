//! The automata over the needles, and replacing what they find in the output.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use zeroize::Zeroizing;

/// One needle: secret material, wiped on drop.
pub(super) struct Needle {
    pub(super) bytes: Zeroizing<Vec<u8>>,
    pub(super) marker: u32,
}

/// Automata over a range of the needles.
#[derive(Default)]
pub(super) struct Matcher {
    /// Case-sensitive forms, and the marker of each pattern.
    exact: Option<(AhoCorasick, Vec<u32>)>,
    /// Forms matched in any ASCII case (hex).
    folded: Option<(AhoCorasick, Vec<u32>)>,
}

impl Matcher {
    pub(super) fn build(exact: &[Needle], folded: &[Needle]) -> Matcher {
        let build = |needles: &[Needle], fold: bool| {
            if needles.is_empty() {
                return None;
            }
            // A contiguous NFA, not the DFA the crate picks for few patterns: the
            // automata are rebuilt whenever a run learns a value (and per run), and a
            // DFA's build took over half of a small run's time in `benches/serve`,
            // while outputs are mostly small; matches are the same for every kind.
            let ac = AhoCorasickBuilder::new()
                .kind(Some(AhoCorasickKind::ContiguousNFA))
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
    pub(super) fn find(&self, haystack: &[u8], out: &mut Vec<Hit>) {
        for (ac, markers) in self.exact.iter().chain(self.folded.iter()) {
            for m in ac.find_iter(haystack) {
                let marker = markers.get(m.pattern().as_usize()).copied().unwrap_or(0);
                out.push(Hit {
                    start: m.start(),
                    end: m.end(),
                    marker,
                    rank: 0,
                });
            }
        }
    }
}

/// A match in source coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hit {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) marker: u32,
    /// Where it was found: 0 in the output itself, else the decoded view's
    /// rank (see `views::search_views`). Decides between matches of the same
    /// bytes.
    pub(super) rank: u8,
}

/// The order of [`merge`]: by start, the longest first, then by rank.
fn order(h: &Hit) -> (usize, std::cmp::Reverse<usize>, u8) {
    (h.start, std::cmp::Reverse(h.end), h.rank)
}

/// `hits` sorted as [`merge`] sorts them (a stable sort), without those that
/// lie inside one sorted before them: such a hit changes nothing in what
/// [`merge`] makes of `hits` and of anything added to them later (whatever
/// overlaps it overlaps the one around it, which also comes first). Keeps
/// the hits held down to about one per match in the output, however many
/// views find the same match again.
pub(super) fn compact(hits: &mut Vec<Hit>) {
    sort(hits);
    let mut reach = None;
    hits.retain(|h| {
        if reach.is_some_and(|end| h.end <= end) {
            return false;
        }
        reach = Some(h.end);
        true
    });
}

/// Sorted, non-overlapping hits: overlapping ones are joined and keep the
/// marker of the one that starts first (the longest, on a tie; then the one
/// of lower rank, then the one found first).
pub(super) fn merge(mut hits: Vec<Hit>) -> Vec<Hit> {
    sort(&mut hits);
    let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        match out.last_mut() {
            Some(last) if h.start < last.end => last.end = last.end.max(h.end),
            _ => out.push(h),
        }
    }
    out
}

/// Sorts `hits` by [`order`], stably; without the stable sort's scratch
/// space (half the hits) when they are in order already, as the hits of the
/// output alone are.
fn sort(hits: &mut [Hit]) {
    if !hits.is_sorted_by_key(order) {
        hits.sort_by_key(order);
    }
}

/// `segments` (one stream, in order) with each of the sorted, disjoint
/// `hits` (offsets into the stream) replaced by its marker, in every segment
/// it touches.
pub(super) fn apply_segments<'m>(
    segments: &[&[u8]],
    hits: &[Hit],
    marker: impl Fn(u32) -> &'m [u8],
) -> Vec<Vec<u8>> {
    let marker = &marker;
    let mut out = Vec::with_capacity(segments.len());
    let mut base = 0;
    let mut next = 0;
    for seg in segments {
        let end = base + seg.len();
        // Hits that ended before this segment are done.
        while hits.get(next).is_some_and(|h| h.end <= base) {
            next += 1;
        }
        // The pieces of the redacted segment, in order.
        let pieces = || {
            let mut pos = base;
            let mut k = next;
            std::iter::from_fn(move || {
                if let Some(h) = hits.get(k).filter(|h| h.start < end) {
                    let from = h.start.max(base);
                    let kept = seg.get(pos - base..from - base).unwrap_or_default();
                    pos = h.end.min(end);
                    k += 1;
                    Some([kept, marker(h.marker)])
                } else if pos <= end {
                    let rest = seg.get(pos - base..).unwrap_or_default();
                    pos = end + 1;
                    Some([rest, &[]])
                } else {
                    None
                }
            })
            .flatten()
        };
        // Sized exactly: a segment full of short values grows many times over.
        let mut text = Vec::with_capacity(pieces().map(<[u8]>::len).sum());
        pieces().for_each(|p| text.extend_from_slice(p));
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
            rank: 0,
        })
        .collect();
    apply_segments(segments, &hits, |_| marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hits that overlap, nest and repeat, with a few markers and ranks.
    fn hits(seed: u64, count: usize) -> Vec<Hit> {
        let mut x = seed;
        (0..count)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let start = (x % 64) as usize;
                Hit {
                    start,
                    end: start + 1 + (x >> 8) as usize % 12,
                    marker: (x >> 16) as u32 % 3,
                    rank: (x >> 24) as u8 % 3,
                }
            })
            .collect()
    }

    #[test]
    fn compacting_between_batches_changes_nothing_merge_makes() {
        for seed in 1..300 {
            let (a, b) = (hits(seed, 40), hits(seed * 7919, 40));
            let all = merge(a.iter().chain(&b).copied().collect());
            let mut held = a.clone();
            compact(&mut held);
            assert!(held.len() <= a.len());
            held.extend_from_slice(&b);
            compact(&mut held);
            assert_eq!(merge(held), all, "seed {seed}");
        }
    }
}
