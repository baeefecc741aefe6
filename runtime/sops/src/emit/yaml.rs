//! YAML output in the style of `go.yaml.in/yaml/v3` as sops drives it: block style, a
//! configurable indent (4 by default), sequences indented inside mappings, comments as head and
//! foot comments, yaml.v3's quoting rules, no line wrapping.

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::gofmt;
use crate::plain::{PlainItem, PlainNode, Value};
use crate::stores::yaml_scalar::resolves_to_string;

struct YamlWriter {
    buf: Zeroizing<String>,
    indent: usize,
}

/// All documents, `---` between them.
pub(crate) fn documents(docs: &[PlainNode], indent: usize) -> Zeroizing<Vec<u8>> {
    let mut out = YamlWriter {
        buf: Zeroizing::new(String::new()),
        indent: indent.clamp(2, 9),
    };
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.buf.push_str("---\n");
        }
        match doc {
            PlainNode::Map(items) if items.iter().any(|i| matches!(i, PlainItem::Entry(..))) => {
                out.map(items, 0)
            }
            PlainNode::Map(items) => {
                out.comments(items.iter().filter_map(comment_text), 0);
                out.buf.push_str("{}\n");
            }
            other => out.top_value(other),
        }
    }
    Zeroizing::new(std::mem::take(&mut *out.buf).into_bytes())
}

/// One value as `yaml.Marshal` prints it (ends with a newline).
pub(crate) fn value(node: &PlainNode, indent: usize) -> Zeroizing<Vec<u8>> {
    let mut out = YamlWriter {
        buf: Zeroizing::new(String::new()),
        indent: indent.clamp(2, 9),
    };
    out.top_value(node);
    Zeroizing::new(std::mem::take(&mut *out.buf).into_bytes())
}

fn comment_text(item: &PlainItem) -> Option<&str> {
    match item {
        PlainItem::Comment(c) => Some(c.as_str()),
        PlainItem::Entry(..) => None,
    }
}

fn is_empty_container(node: &PlainNode) -> bool {
    match node {
        PlainNode::Map(items) => !items.iter().any(|i| matches!(i, PlainItem::Entry(..))),
        PlainNode::List(items) => !items.iter().any(|n| !matches!(n, PlainNode::Comment(_))),
        _ => false,
    }
}

impl YamlWriter {
    fn pad(&mut self, n: usize) {
        for _ in 0..n {
            self.buf.push(' ');
        }
    }

    fn comments<'a>(&mut self, texts: impl Iterator<Item = &'a str>, at: usize) {
        for t in texts {
            self.pad(at);
            self.buf.push('#');
            self.buf.push_str(t);
            self.buf.push('\n');
        }
    }

    fn top_value(&mut self, node: &PlainNode) {
        match node {
            PlainNode::Map(items) if !is_empty_container(node) => self.map(items, 0),
            PlainNode::List(items) if !is_empty_container(node) => self.list(items, 0),
            PlainNode::Comment(c) => {
                // sops' Comment struct marshalled: `value: <text>`.
                self.buf.push_str("value: ");
                self.scalar_str(c.as_bytes(), 0, false);
                self.buf.push('\n');
            }
            other => {
                let content = self.nested(0);
                self.inline(other, content);
                self.buf.push('\n');
            }
        }
    }

    /// yaml.v3's indentation of a block node nested under a mapping key at column `at` (the
    /// emitter's `increase_indent` outside a sequence item): the next multiple of the indent,
    /// so levels stay aligned to it even below a `- ` item (`at` = 6 with indent 4 gives 8).
    fn nested(&self, at: usize) -> usize {
        self.indent * ((at + self.indent) / self.indent)
    }

    /// A block mapping whose keys are at column `at`.
    fn map(&mut self, items: &[PlainItem], at: usize) {
        let mut pending: Vec<&str> = Vec::new();
        for item in items {
            match item {
                PlainItem::Comment(c) => pending.push(c.as_str()),
                PlainItem::Entry(k, v) => {
                    self.comments(pending.drain(..), at);
                    self.pad(at);
                    self.scalar_str(k.as_bytes(), at, true);
                    self.buf.push(':');
                    self.after_key(v, at);
                }
            }
        }
        self.comments(pending.drain(..), at);
    }

    /// The value of a mapping entry whose key is at column `at`.
    fn after_key(&mut self, v: &PlainNode, at: usize) {
        match v {
            PlainNode::Map(items) if !is_empty_container(v) => {
                self.buf.push('\n');
                self.map(items, self.nested(at));
            }
            PlainNode::List(items) if !is_empty_container(v) => {
                self.buf.push('\n');
                self.list(items, self.nested(at));
            }
            other => {
                self.buf.push(' ');
                self.inline(other, self.nested(at));
                self.buf.push('\n');
            }
        }
    }

    /// The column of a node nested in a sequence item whose `-` is at column `at`: yaml.v3
    /// skips just the `- ` indicator, whatever the indent.
    fn item_indent(&self, at: usize) -> usize {
        at + 2
    }

    /// A block sequence whose `-` are at column `at`.
    fn list(&mut self, items: &[PlainNode], at: usize) {
        let mut pending: Vec<&str> = Vec::new();
        for item in items {
            if let PlainNode::Comment(c) = item {
                pending.push(c.as_str());
                continue;
            }
            self.comments(pending.drain(..), at);
            self.pad(at);
            self.buf.push_str("- ");
            let inner = self.item_indent(at);
            match item {
                PlainNode::Map(entries) if !is_empty_container(item) => {
                    // The first key goes on the `- ` line.
                    let mut first = true;
                    let mut pend: Vec<&str> = Vec::new();
                    for e in entries {
                        match e {
                            PlainItem::Comment(c) => pend.push(c.as_str()),
                            PlainItem::Entry(k, v) => {
                                if first {
                                    first = false;
                                    if !pend.is_empty() {
                                        // Head comments of the mapping: before its first key.
                                        let texts: Vec<&str> = std::mem::take(&mut pend);
                                        self.buf.pop();
                                        self.buf.pop();
                                        let keep = self.buf.len().saturating_sub(at);
                                        self.buf.truncate(keep);
                                        self.comments(texts.into_iter(), at);
                                        self.pad(at);
                                        self.buf.push_str("- ");
                                    }
                                } else {
                                    self.comments(pend.drain(..), inner);
                                    self.pad(inner);
                                }
                                self.scalar_str(k.as_bytes(), inner, true);
                                self.buf.push(':');
                                self.after_key(v, inner);
                            }
                        }
                    }
                    self.comments(pend.drain(..), inner);
                }
                PlainNode::List(sub) if !is_empty_container(item) => {
                    // The first element goes on the `- ` line.
                    let mut tmp = YamlWriter {
                        buf: Zeroizing::new(String::new()),
                        indent: self.indent,
                    };
                    tmp.list(sub, inner);
                    self.buf.push_str(tmp.buf.trim_start_matches(' '));
                }
                other => {
                    self.inline(other, inner);
                    self.buf.push('\n');
                }
            }
        }
        self.comments(pending.drain(..), at);
    }

    /// A scalar or empty container after `key: ` or `- ` (`at`: the column of a literal
    /// block's content).
    fn inline(&mut self, node: &PlainNode, at: usize) {
        match node {
            PlainNode::Map(_) => self.buf.push_str("{}"),
            PlainNode::List(_) => self.buf.push_str("[]"),
            PlainNode::Null => self.buf.push_str("null"),
            PlainNode::Comment(c) => {
                self.buf.push('#');
                self.buf.push_str(c);
            }
            PlainNode::Leaf(v, _) => match v {
                Value::Str(b) => self.scalar_str(b, at, false),
                Value::Int(i) => self.buf.push_str(&i.to_string()),
                Value::Float(f) => self.buf.push_str(&gofmt::float_yaml_text(*f)),
                Value::Bool(b) => self.buf.push_str(if *b { "true" } else { "false" }),
                Value::Time(t) => self.buf.push_str(t),
            },
        }
    }

    /// A string in yaml.v3's style (`stringv` + `yaml_emitter_select_scalar_style`).
    fn scalar_str(&mut self, bytes: &[u8], at: usize, key: bool) {
        let Ok(s) = std::str::from_utf8(bytes) else {
            self.buf.push_str("!!binary ");
            self.buf
                .push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
            return;
        };
        let a = analyze(s);
        let can_plain = resolves_to_string(s) && !is_base60_float(s) && !is_old_bool(s);
        let style = if s.contains('\n') {
            if a.block_allowed && !key {
                Style::Literal
            } else {
                Style::Double
            }
        } else if can_plain {
            if !a.block_plain_allowed || s.is_empty() && key {
                if a.single_allowed {
                    Style::Single
                } else {
                    Style::Double
                }
            } else {
                Style::Plain
            }
        } else {
            Style::Double
        };
        match style {
            Style::Plain => self.buf.push_str(s),
            Style::Single => {
                self.buf.push('\'');
                self.buf.push_str(&s.replace('\'', "''"));
                self.buf.push('\'');
            }
            Style::Double => double_quoted(&mut self.buf, s),
            Style::Literal => self.literal(s, at),
        }
    }

    fn literal(&mut self, s: &str, at: usize) {
        self.buf.push('|');
        if s.starts_with([' ', '\n']) {
            self.buf.push_str(&self.indent.to_string());
        }
        let trailing = s.len() - s.trim_end_matches('\n').len();
        match trailing {
            0 => self.buf.push('-'),
            1 if s.len() > 1 => {}
            _ => self.buf.push('+'),
        }
        self.buf.push('\n');
        let content = at;
        let body = s.strip_suffix('\n').unwrap_or(s);
        for line in body.split('\n') {
            if !line.is_empty() {
                self.pad(content);
                self.buf.push_str(line);
            }
            self.buf.push('\n');
        }
        // The caller adds the newline after a scalar.
        self.buf.pop();
    }
}

enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Analysis {
    block_plain_allowed: bool,
    single_allowed: bool,
    block_allowed: bool,
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || u == 0x85
        || (0xA0..=0xD7FF).contains(&u)
        || (0xE000..=0xFFFD).contains(&u) && u != 0xFEFF
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// yaml.v3 `yaml_emitter_analyze_scalar` (block context).
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            block_plain_allowed: true,
            single_allowed: true,
            block_allowed: false,
        };
    }
    let found = ScalarScan::of(s);
    let mut a = Analysis {
        block_plain_allowed: true,
        single_allowed: true,
        block_allowed: true,
    };
    if found.leading_space || found.leading_break || found.trailing_space || found.trailing_break {
        a.block_plain_allowed = false;
    }
    if found.trailing_space {
        a.block_allowed = false;
    }
    if found.break_space {
        a.block_plain_allowed = false;
        a.single_allowed = false;
    }
    if found.space_break || found.special {
        a.block_plain_allowed = false;
        a.single_allowed = false;
        a.block_allowed = false;
    }
    if found.line_breaks || found.block_ind {
        a.block_plain_allowed = false;
    }
    a
}

/// What yaml.v3's scalar analysis finds in a non-empty scalar, before it decides the styles.
#[derive(Default)]
struct ScalarScan {
    /// An indicator (or a document marker) that a plain scalar cannot start with or contain.
    block_ind: bool,
    /// A character that is not printable.
    special: bool,
    line_breaks: bool,
    leading_space: bool,
    leading_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    /// A space right after a line break.
    break_space: bool,
    /// A line break right after a space.
    space_break: bool,
}

impl ScalarScan {
    fn of(s: &str) -> ScalarScan {
        let mut found = ScalarScan {
            block_ind: s.starts_with("---") || s.starts_with("..."),
            ..ScalarScan::default()
        };
        let (mut prev_space, mut prev_break) = (false, false);
        let mut preceded_ws = true;
        let chars: Vec<char> = s.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            let next = chars.get(i + 1).copied();
            let followed_ws = next.is_none_or(|n| n == ' ' || n == '\t' || is_break(n));
            if is_indicator(c, i == 0, followed_ws, preceded_ws) {
                found.block_ind = true;
            }
            if !is_printable(c) {
                found.special = true;
            }
            let (first, last) = (i == 0, i + 1 == chars.len());
            if c == ' ' {
                found.leading_space |= first;
                found.trailing_space |= last;
                found.break_space |= prev_break;
                prev_space = true;
                prev_break = false;
            } else if is_break(c) {
                found.line_breaks = true;
                found.leading_break |= first;
                found.trailing_break |= last;
                found.space_break |= prev_space;
                prev_space = false;
                prev_break = true;
            } else {
                prev_space = false;
                prev_break = false;
            }
            preceded_ws = c == ' ' || c == '\t' || is_break(c);
        }
        found
    }
}

/// Whether `c` is an indicator where it stands (block context): at the start of the scalar
/// (`first`), or inside it.
fn is_indicator(c: char, first: bool, followed_ws: bool, preceded_ws: bool) -> bool {
    if first {
        match c {
            '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
            | '@' | '`' => true,
            '?' | ':' | '-' => followed_ws,
            _ => false,
        }
    } else {
        match c {
            ':' => followed_ws,
            '#' => preceded_ws,
            _ => false,
        }
    }
}

/// yaml.v3 `isOldBool`: YAML 1.1 booleans, quoted so that old readers keep them strings.
fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// yaml.v3 `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    static RE: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$").ok()
    });
    RE.as_ref().is_some_and(|re| re.is_match(s))
}

/// yaml.v3 `yaml_emitter_write_double_quoted` (without line folding: sops sets no width).
fn double_quoted(buf: &mut String, s: &str) {
    buf.push('"');
    for c in s.chars() {
        let escape = !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\';
        if !escape {
            buf.push(c);
            continue;
        }
        buf.push('\\');
        match c {
            '\0' => buf.push('0'),
            '\x07' => buf.push('a'),
            '\x08' => buf.push('b'),
            '\t' => buf.push('t'),
            '\n' => buf.push('n'),
            '\x0B' => buf.push('v'),
            '\x0C' => buf.push('f'),
            '\r' => buf.push('r'),
            '\x1B' => buf.push('e'),
            '"' => buf.push('"'),
            '\\' => buf.push('\\'),
            '\u{85}' => buf.push('N'),
            '\u{A0}' => buf.push('_'),
            '\u{2028}' => buf.push('L'),
            '\u{2029}' => buf.push('P'),
            other => {
                let u = other as u32;
                if u <= 0xFF {
                    buf.push_str(&format!("x{u:02X}"));
                } else if u <= 0xFFFF {
                    buf.push_str(&format!("u{u:04X}"));
                } else {
                    buf.push_str(&format!("U{u:08X}"));
                }
            }
        }
    }
    buf.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> String {
        let mut o = YamlWriter {
            buf: Zeroizing::new(String::new()),
            indent: 4,
        };
        o.scalar_str(s.as_bytes(), 4, false);
        o.buf.to_string()
    }

    #[test]
    fn quoting_follows_yaml_v3() {
        assert_eq!(q("plain"), "plain");
        assert_eq!(q("yes"), "\"yes\"");
        assert_eq!(q("42"), "\"42\"");
        assert_eq!(q(""), "\"\"");
        assert_eq!(q(" lead"), "' lead'");
        assert_eq!(q("a: b"), "'a: b'");
        assert_eq!(q("tab\there"), "\"tab\\there\"");
        assert_eq!(q("2024-01-01T00:00:00Z"), "\"2024-01-01T00:00:00Z\"");
        assert_eq!(q("x\ny"), "|-\n    x\n    y");
    }
}
