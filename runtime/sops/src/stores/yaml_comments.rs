//! A small lexical scanner that finds the comments of a YAML text, because yaml-rust2's scanner
//! drops them. sops keeps comments (they become `Comment` items of the tree, are encrypted and
//! are printed again by `sops decrypt`), so a byte-identical `decrypt` needs them.
//!
//! The scanner knows just enough YAML to tell a comment `#` from a `#` inside a value: quoted
//! scalars (which may span lines), block scalars (`|`, `>`: every more-indented line belongs to
//! them) and the rule that `#` starts a comment only at the start of a line or after
//! whitespace. Where to attach each comment in the tree is decided by the reader (`yaml.rs`),
//! from the positions recorded here.

/// One comment line.
#[derive(Clone, Debug)]
pub(crate) struct YamlComment {
    /// 1-based line (as yaml-rust2's markers).
    pub(crate) line: usize,
    /// 0-based column of the `#`, in characters.
    pub(crate) col: usize,
    /// The text after `#` (sops keeps the space: `# foo` is ` foo`).
    pub(crate) text: String,
    /// Whether something other than whitespace precedes the comment on its line.
    pub(crate) inline: bool,
}

/// Finds every comment of `text`, in order.
pub(crate) fn scan(text: &str) -> Vec<YamlComment> {
    let mut scanner = Scanner::default();
    text.split('\n')
        .enumerate()
        .filter_map(|(idx, line)| scanner.line(line.strip_suffix('\r').unwrap_or(line), idx + 1))
        .collect()
}

/// What the scanner carries from one line to the next.
#[derive(Default)]
struct Scanner {
    /// Some(indent of the line holding the indicator) while inside a block scalar.
    block_parent: Option<usize>,
    /// A block scalar indicator seen on this line: its line's indent.
    pending_block: Option<usize>,
    /// Inside a quoted scalar that continues on the next line.
    quote: Option<char>,
}

impl Scanner {
    /// Scans line `line_no` (without its line break): the comment it ends with, if any.
    fn line(&mut self, line: &str, line_no: usize) -> Option<YamlComment> {
        let indent = line.chars().take_while(|c| *c == ' ').count();
        let blank = line.trim().is_empty();
        if let Some(parent) = self.block_parent {
            if blank || indent > parent {
                return None;
            }
            self.block_parent = None;
        }
        let comment = self.tokens(line, line_no, indent);
        if let Some(p) = self.pending_block.take() {
            self.block_parent = Some(p);
        }
        comment
    }

    /// Walks the characters of a line outside block scalars, through quoted scalars, up to
    /// the `#` of a comment.
    fn tokens(&mut self, line: &str, line_no: usize, indent: usize) -> Option<YamlComment> {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        // The last significant character before the current position on this line.
        let mut prev_sig: Option<char> = None;
        // Start of the current whitespace-separated word (for `&anchor "x"`, `!tag 'y'`).
        let mut word_start: Option<char> = None;
        let mut seen_token = false;
        while i < chars.len() {
            let c = chars[i];
            if let Some(q) = self.quote {
                if q == '"' && c == '\\' {
                    i += 2;
                    continue;
                }
                if c == q {
                    if q == '\'' && chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    self.quote = None;
                    prev_sig = Some(c);
                }
                i += 1;
                continue;
            }
            let after_space = i == 0 || matches!(chars[i - 1], ' ' | '\t');
            if c == '#' && after_space {
                return Some(YamlComment {
                    line: line_no,
                    col: i,
                    text: chars[i + 1..].iter().collect(),
                    inline: seen_token,
                });
            }
            if c == ' ' || c == '\t' {
                word_start = None;
                i += 1;
                continue;
            }
            let at_value_start = after_space
                && match prev_sig {
                    None => true,
                    Some(p) => matches!(p, ':' | '-' | '[' | '{' | ',' | '?'),
                }
                || matches!(prev_sig, Some('[' | '{' | ','))
                || matches!(word_start, Some('&' | '!')) && after_space;
            if word_start.is_none() {
                word_start = Some(c);
            }
            seen_token = true;
            if (c == '"' || c == '\'') && at_value_start {
                self.quote = Some(c);
                i += 1;
                continue;
            }
            if (c == '|' || c == '>') && at_value_start {
                self.pending_block = Some(indent);
            }
            prev_sig = Some(c);
            i += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<(usize, usize, String, bool)> {
        scan(s)
            .into_iter()
            .map(|c| (c.line, c.col, c.text, c.inline))
            .collect()
    }

    #[test]
    fn finds_comments_but_not_hashes_in_values() {
        let y = "# head\na: b # tail\nc: \"x # y\"\nd: 'it''s # no'\ne: f#g\nh: |\n  # inside\n  x\n# after\n";
        assert_eq!(
            texts(y),
            vec![
                (1, 0, " head".to_owned(), false),
                (2, 5, " tail".to_owned(), true),
                (9, 0, " after".to_owned(), false),
            ]
        );
    }

    #[test]
    fn multi_line_quotes_and_nested_blocks() {
        let y = "a: \"one\n  # not\n  two\"\n  # yes\nb:\n  - |-\n    # no\n  # yes2\n";
        let got: Vec<usize> = scan(y).into_iter().map(|c| c.line).collect();
        assert_eq!(got, vec![4, 8]);
    }
}
