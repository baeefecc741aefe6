//! YAML text -> a small tree of positioned nodes.
//!
//! yaml-rust2's event parser gives every node a position. [`FileReader::tree`]
//! pulls its events into [`Node`]s, bounded by [`MAX_NESTING_DEPTH`] (the file
//! size is checked before), and refuses what a policy never needs: a second
//! document, aliases, anchors and tags.

use std::panic::{AssertUnwindSafe, catch_unwind};

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{FileReader, MAX_NESTING_DEPTH};
use crate::error::{InvalidPolicy, PolicyError};

/// A YAML node and where it starts (1-based line and column).
pub(super) struct Node {
    pub(super) kind: NodeKind,
    pub(super) line: usize,
    pub(super) column: usize,
}

/// What a [`Node`] holds.
pub(super) enum NodeKind {
    /// A scalar's text; `plain` when unquoted (only a plain scalar can be
    /// null, a boolean or a number).
    Scalar { value: String, plain: bool },
    /// A sequence's items.
    Seq(Vec<Node>),
    /// A mapping's entries, in file order (duplicates are kept, for
    /// [`FileReader::mapping`] to report).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// What the node is, for "expected ..., found ..." messages.
    pub(super) fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
            NodeKind::Scalar { plain: false, .. } => "a string",
            NodeKind::Scalar { value, plain: true } => describe_plain(value),
        }
    }

    pub(super) fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { value, plain: true } if describe_plain(value) == "null")
    }
}

/// YAML 1.2 core schema resolution of a plain scalar, for type checks.
pub(super) fn describe_plain(v: &str) -> &'static str {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => "null",
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => "a boolean",
        _ if v.parse::<f64>().is_ok() => "a number",
        _ => "a string",
    }
}

/// A collection being built: its items (or entries and a key awaiting its
/// value) and where it starts.
enum OpenCollection {
    Seq {
        items: Vec<Node>,
        line: usize,
        column: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        line: usize,
        column: usize,
    },
}

impl FileReader<'_> {
    /// Builds the node tree of the single document, if any.
    pub(super) fn tree(&self, text: &str) -> Result<Option<Node>, PolicyError> {
        // yaml-rust2 reports malformed input as errors, but it has internal
        // `unreachable!`s; a bug there must not take the process down.
        catch_unwind(AssertUnwindSafe(|| self.tree_inner(text))).unwrap_or_else(|_| {
            Err(PolicyError::Invalid {
                at: self.at(1, 1),
                kind: InvalidPolicy::Yaml("the YAML parser failed on this input".into()),
            })
        })
    }

    fn tree_inner(&self, text: &str) -> Result<Option<Node>, PolicyError> {
        let mut parser = Parser::new_from_str(text);
        let mut builder = TreeBuilder {
            reader: self,
            open: Vec::new(),
            root: None,
            documents: 0,
        };
        loop {
            let (event, m) = parser
                .next_token()
                .map_err(|e| self.err_at(e.marker(), InvalidPolicy::Yaml(e.info().to_owned())))?;
            if matches!(event, Event::StreamEnd) {
                break;
            }
            if let Some(node) = builder.event(event, &m)? {
                builder.attach(node);
            }
        }
        Ok(builder.root)
    }
}

/// The state of [`FileReader::tree`] between two parser events.
struct TreeBuilder<'r, 'a> {
    reader: &'r FileReader<'a>,
    /// The collections started and not yet ended, outermost first.
    open: Vec<OpenCollection>,
    /// The document's root, once complete.
    root: Option<Node>,
    /// Documents started so far (a policy file holds one).
    documents: usize,
}

impl TreeBuilder<'_, '_> {
    /// Handles one event (marked `m`); returns the node it completes, if any.
    fn event(&mut self, event: Event, m: &Marker) -> Result<Option<Node>, PolicyError> {
        let (line, column) = (m.line().max(1), m.col() + 1);
        match event {
            Event::StreamEnd | Event::StreamStart | Event::Nothing | Event::DocumentEnd => Ok(None),
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(self.reader.err_at(m, InvalidPolicy::MultipleDocuments));
                }
                Ok(None)
            }
            Event::Alias(_) => Err(self.reader.err_at(m, InvalidPolicy::Unsupported("aliases"))),
            Event::Scalar(value, style, anchor, tag) => {
                self.refuse_anchor_or_tag(m, anchor, tag.is_some())?;
                Ok(Some(Node {
                    kind: NodeKind::Scalar {
                        value,
                        plain: style == TScalarStyle::Plain,
                    },
                    line,
                    column,
                }))
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                self.refuse_anchor_or_tag(m, anchor, tag.is_some())?;
                if self.open.len() >= MAX_NESTING_DEPTH {
                    return Err(self.reader.err_at(
                        m,
                        InvalidPolicy::TooDeep {
                            max: MAX_NESTING_DEPTH,
                        },
                    ));
                }
                let is_seq = matches!(event, Event::SequenceStart(..));
                self.open.push(if is_seq {
                    OpenCollection::Seq {
                        items: Vec::new(),
                        line,
                        column,
                    }
                } else {
                    OpenCollection::Map {
                        entries: Vec::new(),
                        pending_key: None,
                        line,
                        column,
                    }
                });
                Ok(None)
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(m).map(Some),
        }
    }

    /// Ends the innermost open collection (at the end event marked `m`).
    fn close(&mut self, m: &Marker) -> Result<Node, PolicyError> {
        match self.open.pop() {
            Some(OpenCollection::Seq {
                items,
                line,
                column,
            }) => Ok(Node {
                kind: NodeKind::Seq(items),
                line,
                column,
            }),
            Some(OpenCollection::Map {
                entries,
                pending_key: None,
                line,
                column,
            }) => {
                // A block mapping's start mark is one column past its
                // first key; point at the key instead.
                let (line, column) = match entries.first() {
                    Some((k, _)) if (k.line, k.column) < (line, column) => (k.line, k.column),
                    _ => (line, column),
                };
                Ok(Node {
                    kind: NodeKind::Map(entries),
                    line,
                    column,
                })
            }
            // The parser never ends a mapping between key and value,
            // nor a collection it did not start; be defensive anyway.
            Some(OpenCollection::Map {
                pending_key: Some(_),
                ..
            })
            | None => Err(self
                .reader
                .err_at(m, InvalidPolicy::Yaml("unbalanced collection".into()))),
        }
    }

    /// Puts a completed node where it belongs: the root, the next item of
    /// the open sequence, or the open mapping's next key or its value.
    fn attach(&mut self, node: Node) {
        match self.open.last_mut() {
            None => self.root = Some(node),
            Some(OpenCollection::Seq { items, .. }) => items.push(node),
            Some(OpenCollection::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    let mut node = node;
                    // An implicit null (`key:` and nothing) is marked
                    // wherever the next token is; point at the key.
                    if matches!(&node.kind, NodeKind::Scalar { value, plain: true } if value.is_empty())
                    {
                        (node.line, node.column) = (key.line, key.column);
                    }
                    entries.push((key, node));
                }
            },
        }
    }

    /// Refuses anchors and tags. yaml-rust2 marks the node after them, not
    /// them; when the node is a mapping value, point at its key instead.
    fn refuse_anchor_or_tag(
        &self,
        m: &Marker,
        anchor: usize,
        tagged: bool,
    ) -> Result<(), PolicyError> {
        let what = match (anchor != 0, tagged) {
            (true, _) => "anchors",
            (false, true) => "tags",
            (false, false) => return Ok(()),
        };
        let at = match self.open.last() {
            Some(OpenCollection::Map {
                pending_key: Some(key),
                ..
            }) => self.reader.at(key.line, key.column),
            _ => self.reader.mark(m),
        };
        Err(PolicyError::Invalid {
            at,
            kind: InvalidPolicy::Unsupported(what),
        })
    }
}
