//! Secret paths (`databases.postgres.production.password`, `["a.b"]["c"]`)
//! and the path patterns that key policy rules (`databases.*.staging`).

use std::fmt;

use crate::error::PathError;

/// Longest accepted secret path, in bytes (both as given and in canonical form).
///
/// Paths come from skills (untrusted guests) on every `get-secret` call and
/// are echoed into audit records and denials. Real secret trees are a few
/// short keys deep; 1 KiB leaves ample room while bounding the work and the
/// size of every record a guest can cause.
pub const MAX_PATH_LEN: usize = 1024;

/// Most segments in a secret path.
///
/// Bounds the depth of every tree walk (policy evaluation and the store)
/// that a guest-supplied path drives. Real trees are under ten levels deep.
pub const MAX_PATH_SEGMENTS: usize = 32;

/// A validated path to a node of the secrets tree.
///
/// Parsed from the dotted form (`databases.postgres.production.password`),
/// the sops `--extract` bracket form (`["a.b"]["c"]`, `['x'][0]`) or a mix
/// (`communication["odd.key"]`). A bracketed run of digits (`[0]`) is the
/// segment `"0"`. Displays in canonical form: dotted when every segment is
/// simple (`[A-Za-z0-9_-]+`, and not digits with a leading zero), otherwise
/// bracket form for the whole path; and `SecretPath::parse(&p.to_string()) ==
/// Ok(p)`.
///
/// **One spelling per node.** A segment names a mapping key, or, on a list,
/// the element whose index is that segment in canonical form
/// ([`list_index`]: digits, no leading zero). An unquoted run of digits with
/// a leading zero (`keys.00`, `keys[007]`) is refused
/// ([`PathError::LeadingZero`]) rather than read as index 0 or 7, so no two
/// accepted spellings name the same list element; a mapping key that really
/// is `007` is written quoted, `["007"]`, and never names a list element.
/// The policy, the store and the audit log all compare these segments as
/// text, so they agree on what a path names.
///
/// Rules: no empty segment, no control character, no leading zero in an
/// unquoted index, at most [`MAX_PATH_LEN`] bytes and [`MAX_PATH_SEGMENTS`]
/// segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretPath {
    segs: Box<[Box<str>]>,
}

impl SecretPath {
    /// Parses a non-empty path.
    ///
    /// # Errors
    /// [`PathError::Empty`] for `""`; otherwise the first problem, with its
    /// byte position.
    pub fn parse(input: &str) -> Result<Self, PathError> {
        if input.is_empty() {
            return Err(PathError::Empty);
        }
        Self::parse_prefix(input)
    }

    /// Like [`parse`](Self::parse), but `""` is the root (for listing).
    ///
    /// # Errors
    /// As [`parse`](Self::parse), except for the empty string.
    pub fn parse_prefix(input: &str) -> Result<Self, PathError> {
        let segs = lex(input, false)?
            .into_iter()
            .map(|s| match s {
                Seg::Lit(s) => s.into_boxed_str(),
                // lex(_, false) never yields a wildcard.
                Seg::Any => Box::from("*"),
            })
            .collect();
        let path = Self { segs };
        check_canonical_len(&path)?;
        Ok(path)
    }

    /// The root: no segments. Only useful as a listing prefix.
    pub fn root() -> Self {
        Self { segs: Box::new([]) }
    }

    /// Builds a path from raw segments (keys as they are in the store).
    ///
    /// # Errors
    /// An empty segment, a control character, or a limit exceeded.
    pub fn from_segments<I, S>(segments: I) -> Result<Self, PathError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut segs = Vec::new();
        let mut pos = 0;
        for seg in segments {
            let seg = seg.as_ref();
            if segs.len() == MAX_PATH_SEGMENTS {
                return Err(PathError::TooManySegments {
                    max: MAX_PATH_SEGMENTS,
                });
            }
            check_raw_segment(seg, pos)?;
            pos = pos.saturating_add(seg.len() + 1);
            // The canonical form is at least as long as the segments and
            // their separators: stop early on oversized input.
            if pos - 1 > MAX_PATH_LEN {
                return Err(PathError::TooLong {
                    len: pos - 1,
                    max: MAX_PATH_LEN,
                });
            }
            segs.push(Box::from(seg));
        }
        let path = Self {
            segs: segs.into_boxed_slice(),
        };
        check_canonical_len(&path)?;
        Ok(path)
    }

    /// The segments, root first.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = &str> + DoubleEndedIterator + Clone {
        self.segs.iter().map(|s| &**s)
    }

    /// Number of segments (0 for the root).
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    /// Whether this is the root (no segments).
    pub fn is_root(&self) -> bool {
        self.segs.is_empty()
    }

    /// Same as [`is_root`](Self::is_root).
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// The last segment, `None` for the root.
    pub fn last(&self) -> Option<&str> {
        self.segs.last().map(|s| &**s)
    }

    /// The path one level down: `self` plus `segment` (a raw key, not parsed).
    ///
    /// # Errors
    /// An empty segment, a control character, or a limit exceeded.
    pub fn child(&self, segment: &str) -> Result<Self, PathError> {
        Self::from_segments(self.segments().chain(std::iter::once(segment)))
    }

    /// Whether `prefix` is this path or an ancestor of it (segment-wise:
    /// `a.b` is a prefix of `a.b.c`, not of `a.bc`). The root is a prefix of
    /// every path.
    pub fn starts_with(&self, prefix: &SecretPath) -> bool {
        self.segs.len() >= prefix.segs.len()
            && self
                .segs
                .iter()
                .zip(prefix.segs.iter())
                .all(|(a, b)| a == b)
    }

    pub(crate) fn raw_segments(&self) -> &[Box<str>] {
        &self.segs
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_canonical(f, self.segs.iter().map(|s| Show::Lit(s)))
    }
}

impl std::str::FromStr for SecretPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The list index a path segment names on a list: ASCII digits in canonical
/// form (`0`, `7`, `12`; not `007`, `+1`, ` 1`, or beyond `usize`). The one
/// definition the store and the policy share: any other segment names no
/// list element.
pub fn list_index(segment: &str) -> Option<usize> {
    if !is_canonical_index(segment) {
        return None;
    }
    segment.parse().ok()
}

/// Digits without a leading zero (`0` itself is canonical).
fn is_canonical_index(seg: &str) -> bool {
    !seg.is_empty()
        && seg.bytes().all(|b| b.is_ascii_digit())
        && (seg.len() == 1 || !seg.starts_with('0'))
}

/// Digits with a leading zero: what an unquoted segment may not be.
fn is_padded_digits(seg: &str) -> bool {
    seg.len() > 1 && seg.starts_with('0') && seg.bytes().all(|b| b.is_ascii_digit())
}

/// One segment of a [`PathPattern`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PatternSegment {
    /// Matches exactly this key.
    Literal(Box<str>),
    /// `*`: matches any one key.
    Any,
}

/// A rule key: [`SecretPath`] syntax where a whole segment may be `*`
/// (written `*` in dotted form, `[*]` in bracket form; `["*"]` is a key
/// literally named `*`). A rule covers the node its pattern names and
/// everything below it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathPattern {
    segs: Box<[PatternSegment]>,
}

impl PathPattern {
    /// Parses a non-empty pattern.
    ///
    /// # Errors
    /// As [`SecretPath::parse`], plus [`PathError::PartialWildcard`] for a
    /// `*` inside a segment.
    pub fn parse(input: &str) -> Result<Self, PathError> {
        if input.is_empty() {
            return Err(PathError::Empty);
        }
        let segs: Box<[PatternSegment]> = lex(input, true)?
            .into_iter()
            .map(|s| match s {
                Seg::Lit(s) => PatternSegment::Literal(s.into_boxed_str()),
                Seg::Any => PatternSegment::Any,
            })
            .collect();
        let pattern = Self { segs };
        let len = pattern.to_string().len();
        if len > MAX_PATH_LEN {
            return Err(PathError::TooLong {
                len,
                max: MAX_PATH_LEN,
            });
        }
        Ok(pattern)
    }

    /// The segments, root first.
    pub fn segments(&self) -> &[PatternSegment] {
        &self.segs
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    /// Always false: a pattern has at least one segment.
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Number of literal (non-`*`) segments: the first measure of specificity.
    pub fn literal_count(&self) -> usize {
        self.segs
            .iter()
            .filter(|s| matches!(s, PatternSegment::Literal(_)))
            .count()
    }

    /// Whether a rule with this pattern covers `path`: the pattern matches
    /// `path` or one of its ancestors, segment by segment.
    pub fn covers(&self, path: &SecretPath) -> bool {
        self.segs.len() <= path.segs.len()
            && self
                .segs
                .iter()
                .zip(path.segs.iter())
                .all(|(p, s)| match p {
                    PatternSegment::Any => true,
                    PatternSegment::Literal(l) => l == s,
                })
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_canonical(
            f,
            self.segs.iter().map(|s| match s {
                PatternSegment::Literal(l) => Show::Lit(l),
                PatternSegment::Any => Show::Any,
            }),
        )
    }
}

impl std::str::FromStr for PathPattern {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A lexed segment.
enum Seg {
    Lit(String),
    Any,
}

/// A segment to display.
#[derive(Clone, Copy)]
enum Show<'a> {
    Lit(&'a str),
    Any,
}

fn is_simple_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'
}

fn is_simple(seg: &str) -> bool {
    !seg.is_empty() && seg.chars().all(is_simple_char) && !is_padded_digits(seg)
}

fn write_canonical<'a, W: fmt::Write>(
    out: &mut W,
    segs: impl Iterator<Item = Show<'a>> + Clone,
) -> fmt::Result {
    let dotted = segs.clone().all(|s| match s {
        Show::Lit(l) => is_simple(l),
        Show::Any => true,
    });
    for (i, seg) in segs.enumerate() {
        match (dotted, seg) {
            (true, Show::Lit(l)) => {
                if i > 0 {
                    out.write_char('.')?;
                }
                out.write_str(l)?;
            }
            (true, Show::Any) => {
                if i > 0 {
                    out.write_char('.')?;
                }
                out.write_char('*')?;
            }
            (false, Show::Lit(l)) if is_canonical_index(l) => {
                write!(out, "[{l}]")?;
            }
            (false, Show::Lit(l)) => {
                out.write_str("[\"")?;
                for ch in l.chars() {
                    if ch == '"' || ch == '\\' {
                        out.write_char('\\')?;
                    }
                    out.write_char(ch)?;
                }
                out.write_str("\"]")?;
            }
            (false, Show::Any) => out.write_str("[*]")?,
        }
    }
    Ok(())
}

/// Counts bytes instead of writing them.
struct Counter(usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.saturating_add(s.len());
        Ok(())
    }
}

fn check_canonical_len(path: &SecretPath) -> Result<(), PathError> {
    let mut c = Counter(0);
    // Writing to a Counter cannot fail.
    let _ = write_canonical(&mut c, path.segs.iter().map(|s| Show::Lit(s)));
    if c.0 > MAX_PATH_LEN {
        return Err(PathError::TooLong {
            len: c.0,
            max: MAX_PATH_LEN,
        });
    }
    Ok(())
}

fn check_raw_segment(seg: &str, pos: usize) -> Result<(), PathError> {
    if seg.is_empty() {
        return Err(PathError::EmptySegment { pos });
    }
    if let Some((off, ch)) = seg.char_indices().find(|(_, c)| c.is_control()) {
        return Err(PathError::ControlChar { ch, pos: pos + off });
    }
    Ok(())
}

const BRACKET_EXPECTED: &str =
    "a quoted key (`[\"key\"]`), a list index (`[0]`) or `[*]` in a rule key";

/// Lexes a path or pattern into segments. `""` gives no segments.
fn lex(input: &str, allow_wildcard: bool) -> Result<Vec<Seg>, PathError> {
    if input.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong {
            len: input.len(),
            max: MAX_PATH_LEN,
        });
    }
    if let Some((pos, ch)) = input.char_indices().find(|(_, c)| c.is_control()) {
        return Err(PathError::ControlChar { ch, pos });
    }
    let mut segs = Vec::new();
    let mut chars = input.char_indices().peekable();
    // Whether a dotted segment must come next (at the start, or after a `.`).
    let mut need_dotted = false;
    while let Some(&(start, ch)) = chars.peek() {
        if segs.len() == MAX_PATH_SEGMENTS {
            return Err(PathError::TooManySegments {
                max: MAX_PATH_SEGMENTS,
            });
        }
        if ch == '[' && !need_dotted {
            chars.next();
            segs.push(lex_bracket(&mut chars, allow_wildcard)?);
            match chars.peek() {
                None | Some((_, '[')) => {}
                Some((_, '.')) => {
                    chars.next();
                    need_dotted = true;
                }
                Some(&(pos, ch)) => {
                    return Err(PathError::Unexpected {
                        ch,
                        pos,
                        expected: "`.` or `[` after `]`",
                    });
                }
            }
            continue;
        }
        // A dotted segment: up to `.`, `[` or the end.
        let mut seg = String::new();
        let mut star_at = None;
        while let Some(&(pos, ch)) = chars.peek() {
            if ch == '.' || ch == '[' {
                break;
            }
            if ch == '*' {
                if !allow_wildcard {
                    return Err(PathError::Wildcard { pos });
                }
                star_at.get_or_insert(pos);
            } else if !is_simple_char(ch) {
                return Err(PathError::InvalidChar { ch, pos });
            }
            seg.push(ch);
            chars.next();
        }
        if seg.is_empty() {
            return Err(PathError::EmptySegment { pos: start });
        }
        if let Some(pos) = star_at {
            if seg != "*" {
                return Err(PathError::PartialWildcard { pos });
            }
            segs.push(Seg::Any);
        } else if is_padded_digits(&seg) {
            return Err(PathError::LeadingZero { pos: start });
        } else {
            segs.push(Seg::Lit(seg));
        }
        need_dotted = false;
        if let Some(&(_, '.')) = chars.peek() {
            chars.next();
            need_dotted = true;
        }
    }
    if need_dotted {
        return Err(PathError::EmptySegment { pos: input.len() });
    }
    Ok(segs)
}

/// Lexes what follows a `[`, through the closing `]`.
fn lex_bracket(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    allow_wildcard: bool,
) -> Result<Seg, PathError> {
    let Some((open_pos, first)) = chars.next() else {
        return Err(PathError::UnexpectedEnd {
            expected: BRACKET_EXPECTED,
        });
    };
    let seg = match first {
        '"' | '\'' => {
            let mut seg = String::new();
            loop {
                match chars.next() {
                    None => {
                        return Err(PathError::UnexpectedEnd {
                            expected: "a closing quote",
                        });
                    }
                    Some((_, c)) if c == first => break,
                    Some((pos, '\\')) => match chars.next() {
                        Some((_, c @ ('\\' | '"' | '\''))) => seg.push(c),
                        Some((_, c)) => return Err(PathError::BadEscape { ch: c, pos }),
                        None => {
                            return Err(PathError::UnexpectedEnd {
                                expected: "an escaped character",
                            });
                        }
                    },
                    Some((_, c)) => seg.push(c),
                }
            }
            if seg.is_empty() {
                return Err(PathError::EmptySegment { pos: open_pos });
            }
            Seg::Lit(seg)
        }
        '*' if allow_wildcard => Seg::Any,
        '*' => return Err(PathError::Wildcard { pos: open_pos }),
        c if c.is_ascii_digit() => {
            let mut seg = String::from(c);
            while let Some(&(_, d)) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                seg.push(d);
                chars.next();
            }
            if is_padded_digits(&seg) {
                return Err(PathError::LeadingZero { pos: open_pos });
            }
            Seg::Lit(seg)
        }
        ']' => return Err(PathError::EmptySegment { pos: open_pos }),
        ch => {
            return Err(PathError::Unexpected {
                ch,
                pos: open_pos,
                expected: BRACKET_EXPECTED,
            });
        }
    };
    match chars.next() {
        Some((_, ']')) => Ok(seg),
        Some((pos, ch)) => Err(PathError::Unexpected {
            ch,
            pos,
            expected: "`]`",
        }),
        None => Err(PathError::UnexpectedEnd { expected: "`]`" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> SecretPath {
        SecretPath::parse(s).unwrap()
    }

    fn segs(s: &str) -> Vec<String> {
        p(s).segments().map(String::from).collect()
    }

    #[test]
    fn dotted_and_bracket_forms() {
        assert_eq!(
            segs("databases.postgres.production.password"),
            ["databases", "postgres", "production", "password"]
        );
        assert_eq!(segs(r#"["a.b"]["c"]"#), ["a.b", "c"]);
        assert_eq!(segs("['x'][0]"), ["x", "0"]);
        assert_eq!(
            segs(r#"communication["odd.key"].x"#),
            ["communication", "odd.key", "x"]
        );
        assert_eq!(segs(r#"["q\"uote"]"#), ["q\"uote"]);
        assert_eq!(segs(r"['it\'s']"), ["it's"]);
        assert_eq!(p("a.0.b"), p("a[0].b"));
        assert_eq!(p("a.0.b"), p(r#"["a"]["0"]["b"]"#));
    }

    #[test]
    fn canonical_display() {
        assert_eq!(p(r#"["a"]["b"]"#).to_string(), "a.b");
        assert_eq!(p(r#"a["b.c"]"#).to_string(), r#"["a"]["b.c"]"#);
        assert_eq!(p(r#"a["b.c"][0]"#).to_string(), r#"["a"]["b.c"][0]"#);
        assert_eq!(p(r#"["say \"hi\\\""]"#).to_string(), r#"["say \"hi\\\""]"#);
        assert_eq!(p("a.0").to_string(), "a.0");
        assert_eq!(SecretPath::root().to_string(), "");
    }

    #[test]
    fn errors_name_position() {
        assert_eq!(SecretPath::parse(""), Err(PathError::Empty));
        assert_eq!(SecretPath::parse_prefix(""), Ok(SecretPath::root()));
        assert_eq!(
            SecretPath::parse("a..b"),
            Err(PathError::EmptySegment { pos: 2 })
        );
        assert_eq!(
            SecretPath::parse(".a"),
            Err(PathError::EmptySegment { pos: 0 })
        );
        assert_eq!(
            SecretPath::parse("a."),
            Err(PathError::EmptySegment { pos: 2 })
        );
        assert_eq!(
            SecretPath::parse(r#"[""]"#),
            Err(PathError::EmptySegment { pos: 1 })
        );
        assert_eq!(
            SecretPath::parse("a[]"),
            Err(PathError::EmptySegment { pos: 2 })
        );
        assert_eq!(
            SecretPath::parse("a.b\0c"),
            Err(PathError::ControlChar { ch: '\0', pos: 3 })
        );
        assert_eq!(
            SecretPath::parse("[\"a\nb\"]"),
            Err(PathError::ControlChar { ch: '\n', pos: 3 })
        );
        assert_eq!(
            SecretPath::parse("a.b c"),
            Err(PathError::InvalidChar { ch: ' ', pos: 3 })
        );
        assert_eq!(
            SecretPath::parse("a.*"),
            Err(PathError::Wildcard { pos: 2 })
        );
        assert_eq!(
            SecretPath::parse(r#"["a"]x"#),
            Err(PathError::Unexpected {
                ch: 'x',
                pos: 5,
                expected: "`.` or `[` after `]`"
            })
        );
        assert_eq!(
            SecretPath::parse(r#"["a""#),
            Err(PathError::UnexpectedEnd { expected: "`]`" })
        );
        assert_eq!(
            SecretPath::parse(r#"["a"#),
            Err(PathError::UnexpectedEnd {
                expected: "a closing quote"
            })
        );
        assert_eq!(
            SecretPath::parse(r#"["a\n"]"#),
            Err(PathError::BadEscape { ch: 'n', pos: 3 })
        );
        assert!(matches!(
            SecretPath::parse("[x]"),
            Err(PathError::Unexpected {
                ch: 'x',
                pos: 1,
                ..
            })
        ));
        assert!(matches!(
            SecretPath::parse("[1x]"),
            Err(PathError::Unexpected {
                ch: 'x',
                pos: 2,
                ..
            })
        ));
        assert!(matches!(
            SecretPath::parse("a.[\"b\"]"),
            Err(PathError::EmptySegment { pos: 2 })
        ));
        let long = "a".repeat(MAX_PATH_LEN + 1);
        assert!(matches!(
            SecretPath::parse(&long),
            Err(PathError::TooLong { .. })
        ));
        let many = vec!["a"; MAX_PATH_SEGMENTS + 1].join(".");
        assert_eq!(
            SecretPath::parse(&many),
            Err(PathError::TooManySegments {
                max: MAX_PATH_SEGMENTS
            })
        );
        assert!(SecretPath::parse(&vec!["a"; MAX_PATH_SEGMENTS].join(".")).is_ok());
        // Within the input limit, but the canonical form is longer.
        let k = format!(r#"a['{}']"#, "\"".repeat(600));
        assert!(matches!(
            SecretPath::parse(&k),
            Err(PathError::TooLong { .. })
        ));
    }

    #[test]
    fn one_spelling_per_list_index() {
        for bad in [
            "app.keys.00",
            "app.keys[000]",
            "app.keys.007",
            "app[01]",
            "00",
        ] {
            assert!(
                matches!(SecretPath::parse(bad), Err(PathError::LeadingZero { .. })),
                "{bad}"
            );
            assert!(
                matches!(PathPattern::parse(bad), Err(PathError::LeadingZero { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            SecretPath::parse("app.keys.00"),
            Err(PathError::LeadingZero { pos: 9 })
        );
        assert_eq!(p("app.keys.0"), p("app.keys[0]"));
        assert_eq!(p("app.keys.0"), p(r#"["app"]["keys"]["0"]"#));
        // A mapping key that is padded digits: quoted, and shown quoted.
        let k = p(r#"codes["007"]"#);
        assert_eq!(k.segments().collect::<Vec<_>>(), ["codes", "007"]);
        assert_eq!(k.to_string(), r#"["codes"]["007"]"#);
        assert_eq!(SecretPath::parse(&k.to_string()), Ok(k));
        let from_store = SecretPath::from_segments(["list", "007", "x.y", "3"]).unwrap();
        assert_eq!(from_store.to_string(), r#"["list"]["007"]["x.y"][3]"#);
        assert_eq!(list_index("0"), Some(0));
        assert_eq!(list_index("12"), Some(12));
        for no in [
            "",
            "00",
            "007",
            "+1",
            " 1",
            "1 ",
            "-1",
            "a",
            "99999999999999999999999",
        ] {
            assert_eq!(list_index(no), None, "{no:?}");
        }
    }

    #[test]
    fn child_and_starts_with() {
        let a = p("a.b");
        assert_eq!(a.child("c").unwrap(), p("a.b.c"));
        assert_eq!(a.child("c.d").unwrap().to_string(), r#"["a"]["b"]["c.d"]"#);
        assert_eq!(a.child(""), Err(PathError::EmptySegment { pos: 4 }));
        assert!(matches!(a.child("x\0"), Err(PathError::ControlChar { .. })));
        assert!(p("a.b.c").starts_with(&a));
        assert!(a.starts_with(&a));
        assert!(!p("a.bc").starts_with(&a));
        assert!(!p("a").starts_with(&a));
        assert!(a.starts_with(&SecretPath::root()));
    }

    #[test]
    fn patterns() {
        let pat = PathPattern::parse("databases.*.staging").unwrap();
        assert_eq!(pat.literal_count(), 2);
        assert!(pat.covers(&p("databases.postgres.staging")));
        assert!(pat.covers(&p("databases.redis.staging.password")));
        assert!(!pat.covers(&p("databases.redis.production")));
        assert!(!pat.covers(&p("databases.redis")));
        assert_eq!(pat.to_string(), "databases.*.staging");
        assert_eq!(
            PathPattern::parse(r#"["a.b"][*]"#).unwrap().to_string(),
            r#"["a.b"][*]"#
        );
        assert_eq!(
            PathPattern::parse(r#"a["*"]"#).unwrap().to_string(),
            r#"["a"]["*"]"#
        );
        assert!(!PathPattern::parse(r#"a["*"]"#).unwrap().covers(&p("a.b")));
        assert_eq!(
            PathPattern::parse("data*"),
            Err(PathError::PartialWildcard { pos: 4 })
        );
        assert_eq!(
            PathPattern::parse("a.*b"),
            Err(PathError::PartialWildcard { pos: 2 })
        );
        assert_eq!(
            PathPattern::parse("a.**"),
            Err(PathError::PartialWildcard { pos: 2 })
        );
        let ab = PathPattern::parse("a.b").unwrap();
        assert!(!ab.covers(&p("a.bc")));
        assert!(!ab.covers(&p("a")));
        assert!(ab.covers(&p("a.b")));
    }

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9_-]{1,8}",
            "[0-9]{1,3}",
            "0[0-9]{1,3}",
            "[^\\p{Cc}]{1,8}",
            "[a.\"'\\\\\\[\\]* ]{1,6}",
        ]
    }

    proptest! {
        #[test]
        fn display_round_trips(segs in prop::collection::vec(segment(), 1..6)) {
            let path = SecretPath::from_segments(&segs).unwrap();
            let text = path.to_string();
            let back = SecretPath::parse(&text).unwrap();
            prop_assert_eq!(&back, &path);
            prop_assert_eq!(back.segments().collect::<Vec<_>>(), segs.iter().map(String::as_str).collect::<Vec<_>>());
        }

        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,40}|[a.\\[\\]\"'*0-9\\\\]{0,20}") {
            if let Ok(path) = SecretPath::parse(&s) {
                prop_assert_eq!(SecretPath::parse(&path.to_string()), Ok(path));
            }
            if let Ok(pat) = PathPattern::parse(&s) {
                prop_assert_eq!(PathPattern::parse(&pat.to_string()), Ok(pat));
            }
        }
    }
}
