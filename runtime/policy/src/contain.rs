//! Containment between agent globs and between path patterns: the
//! conservative reasoning behind `lint` (shadowed allows, match-everything
//! globs) and `diff` (does a change widen access?).
//!
//! Every `true` answer is a proof: when [`glob_contains`] says `outer`
//! contains `inner`, every agent id `inner` matches, `outer` matches too. A
//! `false` answer may be a miss (the relation holds but is not recognised);
//! callers treat `false` as "possibly wider".

use crate::agent::AgentGlob;
use crate::path::{PathPattern, PatternSegment};
use crate::skill::SkillSelector;

/// One `/`-separated segment of an agent glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GlobSeg<'a> {
    /// A segment glob (`ops`, `release-*`, `?x`): matches exactly one segment.
    One(&'a str),
    /// `**` that matches zero or more segments (leading, inner, or alone).
    ZeroOrMore,
    /// A trailing `**` after other segments: one or more segments
    /// (globset: `ops/**` matches `ops/a` but not `ops`).
    OneOrMore,
}

fn segments(glob: &str) -> Vec<GlobSeg<'_>> {
    let parts: Vec<&str> = glob.split('/').collect();
    let last = parts.len().saturating_sub(1);
    parts
        .iter()
        .enumerate()
        .map(|(i, &p)| match p {
            "**" if i == last && i > 0 => GlobSeg::OneOrMore,
            "**" => GlobSeg::ZeroOrMore,
            other => GlobSeg::One(other),
        })
        .collect()
}

/// Whether every agent id `inner` matches is matched by `outer` (see the
/// module docs: `true` is certain, `false` may be a miss).
pub fn glob_contains(outer: &AgentGlob, inner: &AgentGlob) -> bool {
    if outer.as_str() == inner.as_str() {
        return true;
    }
    seq_contains(&segments(outer.as_str()), &inner_segments(inner.as_str()))
}

/// Like [`segments`], for the contained side: `**` alone matches every id,
/// i.e. one segment followed by any number (ids are never empty).
fn inner_segments(glob: &str) -> Vec<GlobSeg<'_>> {
    if glob == "**" {
        return vec![GlobSeg::One("*"), GlobSeg::ZeroOrMore];
    }
    segments(glob)
}

/// Whether `glob` matches every agent id.
pub fn matches_every_agent(glob: &AgentGlob) -> bool {
    seq_contains(&segments(glob.as_str()), &inner_segments("**"))
}

/// Whether `inner` may match an empty run of segments (it is only `**`s).
fn can_be_empty(inner: &[GlobSeg<'_>]) -> bool {
    inner.iter().all(|s| *s == GlobSeg::ZeroOrMore)
}

fn seq_contains(outer: &[GlobSeg<'_>], inner: &[GlobSeg<'_>]) -> bool {
    match outer.split_first() {
        None => inner.is_empty(),
        Some((GlobSeg::ZeroOrMore, rest)) => {
            // Either the `**` matches nothing here, or it absorbs the first
            // inner segment (whatever it is) and stays available.
            seq_contains(rest, inner)
                || inner
                    .split_first()
                    .is_some_and(|(_, inner_rest)| seq_contains(outer, inner_rest))
        }
        Some((GlobSeg::OneOrMore, _)) => {
            // Trailing: anything non-empty is absorbed.
            !inner.is_empty() && !can_be_empty(inner)
        }
        Some((GlobSeg::One(o), rest)) => match inner.split_first() {
            Some((GlobSeg::One(i), inner_rest)) => {
                segment_contains(o, i) && seq_contains(rest, inner_rest)
            }
            _ => false,
        },
    }
}

/// Whether segment glob `outer` matches every segment `inner` matches.
fn segment_contains(outer: &str, inner: &str) -> bool {
    if outer == inner || outer == "*" {
        return true;
    }
    if inner.contains(['*', '?']) {
        return false;
    }
    wildcard_match(outer.as_bytes(), inner.as_bytes())
}

/// `*` (any run) and `?` (one character) over one segment; no `/` occurs.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// Whether every path a rule keyed `inner` covers is covered by a rule keyed
/// `outer`: `outer` is no longer, and each of its segments is `*` or the same
/// literal.
pub fn pattern_contains(outer: &PathPattern, inner: &PathPattern) -> bool {
    outer.len() <= inner.len()
        && outer
            .segments()
            .iter()
            .zip(inner.segments())
            .all(|(o, i)| match (o, i) {
                (PatternSegment::Any, _) => true,
                (PatternSegment::Literal(a), PatternSegment::Literal(b)) => a == b,
                (PatternSegment::Literal(_), PatternSegment::Any) => false,
            })
}

/// Whether some path is covered by rules keyed `a` and `b` both.
pub fn patterns_overlap(a: &PathPattern, b: &PathPattern) -> bool {
    a.segments()
        .iter()
        .zip(b.segments())
        .all(|(x, y)| match (x, y) {
            (PatternSegment::Literal(x), PatternSegment::Literal(y)) => x == y,
            _ => true,
        })
}

/// Whether a `skills:` list `outer` admits every skill `inner` admits
/// (an empty list admits every skill).
pub fn skills_contain(outer: &[SkillSelector], inner: &[SkillSelector]) -> bool {
    outer.is_empty() || (!inner.is_empty() && inner.iter().all(|s| outer.contains(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::AgentId;

    fn g(s: &str) -> AgentGlob {
        AgentGlob::parse(s).unwrap()
    }

    #[test]
    fn glob_containment() {
        let yes = [
            ("**", "ops/a"),
            ("**", "ops/**"),
            ("**", "*"),
            ("ops/**", "ops/*"),
            ("ops/**", "ops/a/b"),
            ("ops/**", "ops/**"),
            ("ops/*", "ops/release-manager"),
            ("ops/release-*", "ops/release-manager"),
            ("ops/?", "ops/a"),
            ("**/intern", "ops/x/intern"),
            ("**/intern", "intern"),
            ("ops/**/x", "ops/a/b/x"),
            ("*/*", "ops/*"),
        ];
        for (o, i) in yes {
            assert!(glob_contains(&g(o), &g(i)), "{o} should contain {i}");
        }
        let no = [
            ("ops/**", "ops"),
            ("ops/*", "ops/**"),
            ("ops/*", "ops/a/b"),
            ("*", "ops/a"),
            ("ops/a", "ops/*"),
            ("ops/release-*", "ops/*"),
            ("ops/?", "ops/ab"),
            ("dev/*", "ops/a"),
            ("ops/**", "**"),
        ];
        for (o, i) in no {
            assert!(!glob_contains(&g(o), &g(i)), "{o} should not contain {i}");
        }
        assert!(matches_every_agent(&g("**")));
        assert!(matches_every_agent(&g("**/**")));
        assert!(!matches_every_agent(&g("*")));
        assert!(!matches_every_agent(&g("ops/**")));
    }

    #[test]
    fn containment_is_sound_on_samples() {
        let globs = [
            "**", "*", "ops/*", "ops/**", "ops/a", "**/a", "ops/**/a", "*/*", "*/**", "ops/?",
            "o*", "o*/a", "ops/a*", "**/**",
        ];
        let ids = [
            "ops",
            "ops/a",
            "ops/b",
            "ops/a/a",
            "ops/x/y/a",
            "a",
            "dev/a",
            "o",
            "oa/a",
            "ops/ab",
        ];
        for o in globs {
            for i in globs {
                if glob_contains(&g(o), &g(i)) {
                    for id in ids {
                        let id = AgentId::parse(id).unwrap();
                        assert!(
                            !g(i).is_match(&id) || g(o).is_match(&id),
                            "{o} claimed to contain {i}, but {id} matches only {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn pattern_containment_and_overlap() {
        let p = |s: &str| PathPattern::parse(s).unwrap();
        assert!(pattern_contains(&p("a"), &p("a.b")));
        assert!(pattern_contains(&p("*.b"), &p("a.b.c")));
        assert!(!pattern_contains(&p("a.b"), &p("a")));
        assert!(!pattern_contains(&p("a.b"), &p("a.*")));
        assert!(patterns_overlap(&p("a.*"), &p("a.b.c")));
        assert!(patterns_overlap(&p("a.b.c"), &p("a")));
        assert!(!patterns_overlap(&p("a.b"), &p("a.c")));
    }
}
