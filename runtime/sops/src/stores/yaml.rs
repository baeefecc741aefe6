//! YAML reader: yaml-rust2 events into a [`RawFile`], typed like yaml.v3, with limits.
//!
//! yaml-rust2 drops comments, so [`super::yaml_comments`] finds them lexically and this builder
//! places each one in the tree the way sops' YAML store does with yaml.v3's head, line and foot
//! comments: a comment on its own line becomes an item of the innermost open mapping or
//! sequence whose indentation is not deeper than the comment (or the first item of the mapping
//! or sequence that opens right after it); a comment at the end of a line becomes an item just
//! before the entry that starts on that line.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::yaml_comments::{self, YamlComment};
use super::yaml_scalar::{Resolved, resolve};
use crate::doc::{RawEntry, RawFile, RawNode, RawScalar, Scalar};
use crate::error::SopsError;
use crate::{MAX_NESTING_DEPTH, MAX_YAML_NODES};

/// Parses YAML text (all documents).
pub(crate) fn parse(text: &str, file: &str) -> Result<RawFile, SopsError> {
    let mut b = Builder {
        file,
        stack: Vec::new(),
        documents: Vec::new(),
        root: None,
        anchors: HashMap::new(),
        nodes: 0,
        error: None,
        comments: yaml_comments::scan(text).into_iter().rev().collect(),
        deferred: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    let res = parser.load(&mut b, true);
    // Comments after the last document belong to it (a foot comment).
    let rest: Vec<YamlComment> = b.comments.drain(..).rev().collect();
    if let Some(last) = b.documents.last_mut() {
        last.extend(rest.into_iter().map(|c| RawEntry::comment(c.text)));
    }
    if let Some(e) = b.error {
        return Err(e);
    }
    if let Err(e) = res {
        return Err(SopsError::Syntax {
            file: file.to_owned(),
            line: Some(e.marker().line()),
            message: format!("invalid YAML: {}", e.info()),
        });
    }
    Ok(RawFile {
        documents: b.documents,
    })
}

enum Frame {
    Map {
        entries: Vec<RawEntry>,
        keys: HashSet<String>,
        pending: Option<(String, Option<usize>)>,
        anchor: usize,
        start_nodes: usize,
        pos: ContainerPos,
        /// Comments that follow the entry still open (its value is a container on the stack
        /// above this frame); they go after that entry once it is complete.
        after: Vec<String>,
    },
    Seq {
        items: Vec<RawNode>,
        anchor: usize,
        start_nodes: usize,
        pos: ContainerPos,
        /// As for `Map`: comments after the item that is still open.
        after: Vec<String>,
    },
}

/// Where a container starts and where its last item started (for comment placement).
#[derive(Clone, Copy)]
struct ContainerPos {
    line: usize,
    /// Column of the items (`None` for a mapping until its first key is seen).
    col: Option<usize>,
    /// Line where the last (non-comment) item started, and its index.
    last: Option<(usize, usize)>,
}

impl Frame {
    fn pos(&self) -> ContainerPos {
        match self {
            Frame::Map { pos, .. } | Frame::Seq { pos, .. } => *pos,
        }
    }
}

struct Builder<'f> {
    file: &'f str,
    stack: Vec<Frame>,
    documents: Vec<Vec<RawEntry>>,
    root: Option<RawNode>,
    /// Anchored nodes and their size in nodes (aliases are expanded, like yaml.v3 does).
    anchors: HashMap<usize, (RawNode, usize)>,
    /// Nodes created so far, alias expansions included.
    nodes: usize,
    error: Option<SopsError>,
    /// Comments not placed yet, last one first.
    comments: Vec<YamlComment>,
    /// Comments that go at the start of the container about to open.
    deferred: Vec<String>,
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        // A block mapping's start mark lies after its first key: comments before the mapping
        // are placed at that key, whose column is the mapping's.
        if !matches!(ev, Event::MappingStart(..)) {
            if let Some(Frame::Map { pos, .. }) = self.stack.last_mut()
                && pos.col.is_none()
            {
                pos.col = Some(mark.col());
            }
            self.place_comments(&ev, mark);
        }
        if let Err(e) = self.event(ev, Some(mark.line()), mark.col()) {
            self.error = Some(e);
        }
    }
}

impl Builder<'_> {
    /// Places the comments that come before the event at `mark`.
    fn place_comments(&mut self, ev: &Event, mark: Marker) {
        let opening = matches!(ev, Event::SequenceStart(..));
        // At a dedent (the next token closes blocks), yaml.v3 makes the first run of comment
        // lines at one column right after the last content a foot comment of that content,
        // i.e. it stays in the innermost block, unless it is at the next token's column (then
        // it is that token's head comment).
        let closing = matches!(ev, Event::SequenceEnd | Event::MappingEnd);
        let mut first = true;
        let mut foot_col: Option<usize> = None;
        while let Some(c) = self.comments.last() {
            if (c.line, c.col) >= (mark.line(), mark.col()) {
                break;
            }
            let Some(c) = self.comments.pop() else { break };
            if c.inline && self.place_inline(&c) {
                continue;
            }
            if std::mem::take(&mut first) && closing && c.col != mark.col() {
                foot_col = Some(c.col);
            }
            if foot_col == Some(c.col) {
                match self.stack.last_mut() {
                    Some(Frame::Map { entries, .. }) => entries.push(RawEntry::comment(c.text)),
                    Some(Frame::Seq { items, .. }) => items.push(RawNode::Comment(c.text)),
                    None => self.deferred.push(c.text),
                }
                continue;
            }
            foot_col = None;
            if self.stack.is_empty() || opening && c.col >= mark.col() {
                self.deferred.push(c.text);
                continue;
            }
            let idx = self
                .stack
                .iter()
                .rposition(|f| f.pos().col.unwrap_or(mark.col()) <= c.col)
                .unwrap_or(0);
            // A frame below the top has an entry (or item) still open: the containers above
            // it close before its next entry, so the comment follows the open one.
            let open_above = idx + 1 < self.stack.len();
            if let Some(frame) = self.stack.get_mut(idx) {
                match frame {
                    Frame::Map { after, .. } | Frame::Seq { after, .. } if open_above => {
                        after.push(c.text)
                    }
                    Frame::Map { entries, .. } => entries.push(RawEntry::comment(c.text)),
                    Frame::Seq { items, .. } => items.push(RawNode::Comment(c.text)),
                }
            }
        }
    }

    /// Puts an end-of-line comment before the innermost entry that starts on its line.
    fn place_inline(&mut self, c: &YamlComment) -> bool {
        for frame in self.stack.iter_mut().rev() {
            match frame {
                Frame::Map {
                    entries,
                    pending,
                    pos,
                    ..
                } => {
                    if matches!(pending, Some((_, Some(l))) if *l == c.line) {
                        entries.push(RawEntry::comment(c.text.clone()));
                        return true;
                    }
                    if let Some((line, idx)) = pos.last
                        && line == c.line
                    {
                        entries.insert(idx, RawEntry::comment(c.text.clone()));
                        pos.last = Some((line, idx + 1));
                        return true;
                    }
                }
                Frame::Seq { items, pos, .. } => {
                    if let Some((line, idx)) = pos.last
                        && line == c.line
                    {
                        items.insert(idx, RawNode::Comment(c.text.clone()));
                        pos.last = Some((line, idx + 1));
                        return true;
                    }
                }
            }
        }
        false
    }

    fn unsupported(&self, line: Option<usize>, what: String) -> SopsError {
        SopsError::Unsupported {
            file: self.file.to_owned(),
            line,
            what,
        }
    }

    fn count(&mut self, n: usize, line: Option<usize>) -> Result<(), SopsError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_YAML_NODES {
            return Err(SopsError::LimitExceeded {
                file: self.file.to_owned(),
                line,
                what: "number of YAML nodes (aliases expanded)",
                limit: MAX_YAML_NODES,
            });
        }
        Ok(())
    }

    fn open(&mut self, line: Option<usize>) -> Result<usize, SopsError> {
        if self.stack.len() >= MAX_NESTING_DEPTH {
            return Err(SopsError::LimitExceeded {
                file: self.file.to_owned(),
                line,
                what: "nesting depth",
                limit: MAX_NESTING_DEPTH,
            });
        }
        self.count(1, line)?;
        Ok(self.nodes)
    }

    fn event(&mut self, ev: Event, line: Option<usize>, col: usize) -> Result<(), SopsError> {
        let pos = ContainerPos {
            line: line.unwrap_or(0),
            col: matches!(ev, Event::SequenceStart(..)).then_some(col),
            last: None,
        };
        match ev {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => Ok(()),
            Event::DocumentStart => {
                self.root = None;
                Ok(())
            }
            Event::DocumentEnd => self.end_document(line),
            Event::Scalar(value, style, anchor, tag) => {
                self.scalar(value, style, anchor, tag.as_ref(), line)
            }
            Event::Alias(id) => self.alias(id, line),
            Event::SequenceStart(anchor, _tag) => {
                let start_nodes = self.open(line)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    start_nodes,
                    pos,
                    after: Vec::new(),
                });
                self.take_deferred();
                Ok(())
            }
            Event::MappingStart(anchor, _tag) => {
                let start_nodes = self.open(line)?;
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    keys: HashSet::new(),
                    pending: None,
                    anchor,
                    start_nodes,
                    pos,
                    after: Vec::new(),
                });
                self.take_deferred();
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(line),
        }
    }

    /// A scalar, typed as yaml.v3 types it, and remembered under its anchor.
    fn scalar(
        &mut self,
        value: String,
        style: TScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        line: Option<usize>,
    ) -> Result<(), SopsError> {
        self.count(1, line)?;
        let node = match resolve(&value, style, tag) {
            Ok(Resolved::Null) => RawNode::Null,
            Ok(Resolved::Value(v)) => RawNode::Scalar(RawScalar {
                value: v,
                raw: value,
                line,
            }),
            Err(problem) => {
                return Err(self.unsupported(line, format!("scalar is {problem}")));
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), 1));
        }
        self.deliver(node, line)
    }

    /// An alias: a copy of the anchored node, counted at its full size before it is made.
    fn alias(&mut self, id: usize, line: Option<usize>) -> Result<(), SopsError> {
        let Some(size) = self.anchors.get(&id).map(|(_, size)| *size) else {
            return Err(self.unsupported(line, "alias to an unknown anchor".to_owned()));
        };
        // Count before cloning: a billion-laughs document stops here.
        self.count(size, line)?;
        let Some(node) = self.anchors.get(&id).map(|(node, _)| node.clone()) else {
            return Err(self.unsupported(line, "alias to an unknown anchor".to_owned()));
        };
        self.deliver(node, line)
    }

    /// The end of the innermost sequence or mapping: its trailing comments go in, it is
    /// remembered under its anchor (with its size in nodes) and delivered to its parent.
    fn close(&mut self, line: Option<usize>) -> Result<(), SopsError> {
        let (node, anchor, start, pos) = match self.stack.pop() {
            Some(Frame::Seq {
                mut items,
                anchor,
                start_nodes,
                pos,
                after,
            }) => {
                items.extend(after.into_iter().map(RawNode::Comment));
                (RawNode::List(items), anchor, start_nodes, pos)
            }
            Some(Frame::Map {
                mut entries,
                anchor,
                start_nodes,
                pos,
                after,
                ..
            }) => {
                entries.extend(after.into_iter().map(RawEntry::comment));
                (RawNode::Map(entries), anchor, start_nodes, pos)
            }
            None => return Err(self.unsupported(line, "unbalanced YAML events".to_owned())),
        };
        if anchor != 0 {
            let size = self.nodes.saturating_sub(start).saturating_add(1);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        self.deliver(node, Some(pos.line))
    }

    /// Moves the comments waiting for a new container into it (now the top of the stack).
    fn take_deferred(&mut self) {
        let deferred = std::mem::take(&mut self.deferred);
        match self.stack.last_mut() {
            Some(Frame::Map { entries, .. }) => {
                entries.extend(deferred.into_iter().map(RawEntry::comment));
            }
            Some(Frame::Seq { items, .. }) => {
                items.extend(deferred.into_iter().map(RawNode::Comment));
            }
            None => {}
        }
    }

    fn end_document(&mut self, line: Option<usize>) -> Result<(), SopsError> {
        match self.root.take() {
            None | Some(RawNode::Null) => self.documents.push(Vec::new()),
            Some(RawNode::Map(entries)) => self.documents.push(entries),
            Some(RawNode::List(_)) => {
                return Err(self.unsupported(
                    line,
                    "YAML documents that are sequences are not supported".to_owned(),
                ));
            }
            Some(RawNode::Scalar(_) | RawNode::Comment(_)) => {
                return Err(self.unsupported(
                    line,
                    "YAML documents that are a single scalar are not supported".to_owned(),
                ));
            }
        }
        Ok(())
    }

    fn deliver(&mut self, node: RawNode, line: Option<usize>) -> Result<(), SopsError> {
        if matches!(self.stack.last(), Some(Frame::Map { pending: None, .. })) {
            let key = self.key_of(node, line)?;
            let duplicate = match self.stack.last_mut() {
                Some(Frame::Map { keys, .. }) => !keys.insert(key.clone()),
                _ => false,
            };
            if duplicate {
                return Err(SopsError::DuplicateKey {
                    file: self.file.to_owned(),
                    line,
                    path: self.path_for_errors(),
                    key,
                });
            }
            if let Some(Frame::Map { pending, .. }) = self.stack.last_mut() {
                *pending = Some((key, line));
            }
            return Ok(());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq {
                items, pos, after, ..
            }) => {
                pos.last = Some((line.unwrap_or(0), items.len()));
                items.push(node);
                items.extend(after.drain(..).map(RawNode::Comment));
            }
            Some(Frame::Map {
                entries,
                pending,
                pos,
                after,
                ..
            }) => {
                if let Some((key, key_line)) = pending.take() {
                    pos.last = Some((key_line.unwrap_or(0), entries.len()));
                    entries.push(RawEntry { key, value: node });
                }
                entries.extend(after.drain(..).map(RawEntry::comment));
            }
        }
        Ok(())
    }

    /// A mapping key must be a string (sops: `Tree contains a non-string key`).
    fn key_of(&self, node: RawNode, line: Option<usize>) -> Result<String, SopsError> {
        let kind = match node {
            RawNode::Scalar(RawScalar {
                value: Scalar::Str(s),
                ..
            }) => return Ok(s),
            RawNode::Null => "null",
            RawNode::Map(_) => "mapping",
            RawNode::List(_) => "sequence",
            RawNode::Comment(_) => "comment",
            RawNode::Scalar(RawScalar { value, .. }) => match value {
                Scalar::Int(_) => "int",
                Scalar::Float(_) | Scalar::JsonNumber { .. } => "float",
                Scalar::Bool(_) => "bool",
                Scalar::Time(_) => "timestamp",
                Scalar::Str(_) => "string",
            },
        };
        Err(self.unsupported(
            line,
            format!("mapping key of type {kind}: only string keys are supported (quote the key)"),
        ))
    }

    /// The key path of the innermost open mapping, for duplicate-key messages.
    fn path_for_errors(&self) -> String {
        let mut path = crate::error::DisplayPath::default();
        for frame in &self.stack {
            match frame {
                Frame::Map {
                    pending: Some((k, _)),
                    ..
                } => path.push_key(k),
                Frame::Seq { items, .. } => path.push_index(items.len()),
                Frame::Map { .. } => {}
            }
        }
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, \
                 *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = parse(&text, "lol.yaml").err();
        assert!(
            matches!(err, Some(SopsError::LimitExceeded { what, .. }) if what.contains("nodes")),
            "{err:?}"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!(
            "{}x{}",
            "[".repeat(MAX_NESTING_DEPTH + 1),
            "]".repeat(MAX_NESTING_DEPTH + 1)
        );
        let err = parse(&format!("k: {text}"), "deep.yaml").err();
        assert!(
            matches!(
                err,
                Some(SopsError::LimitExceeded {
                    what: "nesting depth",
                    ..
                })
            ),
            "{err:?}"
        );
        let ok = format!(
            "{}x{}",
            "[".repeat(MAX_NESTING_DEPTH - 2),
            "]".repeat(MAX_NESTING_DEPTH - 2)
        );
        assert!(parse(&format!("k: {ok}"), "ok.yaml").is_ok());
    }

    #[test]
    fn duplicate_keys_name_the_line() {
        let err = parse("a: 1\nb:\n  c: 1\n  c: 2\n", "dup.yaml").err();
        match err {
            Some(SopsError::DuplicateKey {
                line, key, path, ..
            }) => {
                assert_eq!(line, Some(4));
                assert_eq!(key, "c");
                assert_eq!(path, "b");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_string_keys_and_sequence_documents_are_refused() {
        assert!(matches!(
            parse("1: x\n", "f").err(),
            Some(SopsError::Unsupported { .. })
        ));
        assert!(matches!(
            parse("- a\n", "f").err(),
            Some(SopsError::Unsupported { .. })
        ));
        assert!(parse("\"1\": x\n", "f").is_ok());
    }

    #[test]
    fn aliases_expand_and_documents_split() {
        let f = parse("a: &x {k: 1}\nb: *x\n---\nc: 2\n", "f").ok();
        let docs = f.map(|f| f.documents).unwrap_or_default();
        assert_eq!(docs.len(), 2);
        assert!(matches!(docs[0][1].value, RawNode::Map(ref m) if m.len() == 1));
    }
}
