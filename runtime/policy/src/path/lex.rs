//! Text to segments: the dotted form, the bracket form and their mix.

use super::canonical::is_simple_char;
use super::{MAX_PATH_LEN, MAX_PATH_SEGMENTS, is_padded_digits};
use crate::error::PathError;

/// A segment as the lexer read it, before it becomes a path's key or a
/// pattern's segment.
pub(super) enum LexedSegment {
    /// A key or list index (brackets and quotes removed, escapes resolved).
    Literal(String),
    /// `*` or `[*]`, where wildcards are allowed.
    Any,
}

/// The characters still to lex, with their byte positions.
type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

const BRACKET_EXPECTED: &str =
    "a quoted key (`[\"key\"]`), a list index (`[0]`) or `[*]` in a rule key";

/// Lexes a path or pattern into segments. `""` gives no segments.
pub(super) fn lex(input: &str, allow_wildcard: bool) -> Result<Vec<LexedSegment>, PathError> {
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
            need_dotted = after_bracket(&mut chars)?;
            continue;
        }
        segs.push(lex_dotted(&mut chars, start, allow_wildcard)?);
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

/// What may follow a `]`: the end, another `[`, or a `.`, which is consumed
/// and means a dotted segment must come next (returns `true`).
fn after_bracket(chars: &mut Chars<'_>) -> Result<bool, PathError> {
    match chars.peek() {
        None | Some((_, '[')) => Ok(false),
        Some((_, '.')) => {
            chars.next();
            Ok(true)
        }
        Some(&(pos, ch)) => Err(PathError::Unexpected {
            ch,
            pos,
            expected: "`.` or `[` after `]`",
        }),
    }
}

/// Lexes a dotted segment, starting at byte `start`: up to `.`, `[` or the
/// end (none of which it consumes).
fn lex_dotted(
    chars: &mut Chars<'_>,
    start: usize,
    allow_wildcard: bool,
) -> Result<LexedSegment, PathError> {
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
        Ok(LexedSegment::Any)
    } else if is_padded_digits(&seg) {
        Err(PathError::LeadingZero { pos: start })
    } else {
        Ok(LexedSegment::Literal(seg))
    }
}

/// Lexes what follows a `[`, through the closing `]`.
fn lex_bracket(chars: &mut Chars<'_>, allow_wildcard: bool) -> Result<LexedSegment, PathError> {
    let Some((open_pos, first)) = chars.next() else {
        return Err(PathError::UnexpectedEnd {
            expected: BRACKET_EXPECTED,
        });
    };
    let seg = match first {
        '"' | '\'' => lex_quoted(chars, first, open_pos)?,
        '*' if allow_wildcard => LexedSegment::Any,
        '*' => return Err(PathError::Wildcard { pos: open_pos }),
        c if c.is_ascii_digit() => lex_index(chars, c, open_pos)?,
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

/// Lexes a quoted key after its opening `quote` (at byte `open_pos`),
/// through the closing quote. `\\`, `\"` and `\'` are the only escapes.
fn lex_quoted(
    chars: &mut Chars<'_>,
    quote: char,
    open_pos: usize,
) -> Result<LexedSegment, PathError> {
    let mut seg = String::new();
    loop {
        match chars.next() {
            None => {
                return Err(PathError::UnexpectedEnd {
                    expected: "a closing quote",
                });
            }
            Some((_, c)) if c == quote => break,
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
    Ok(LexedSegment::Literal(seg))
}

/// Lexes a bracketed list index whose first digit, `first`, was at byte
/// `open_pos`; stops before the first non-digit.
fn lex_index(
    chars: &mut Chars<'_>,
    first: char,
    open_pos: usize,
) -> Result<LexedSegment, PathError> {
    let mut seg = String::from(first);
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
    Ok(LexedSegment::Literal(seg))
}
