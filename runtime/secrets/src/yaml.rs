//! YAML reader: yaml-rust2 events into a [`RawFile`], typed like yaml.v3, with limits.
//!
//! Comments are not visible here (yaml-rust2's scanner drops them). That is harmless for
//! decryption (comments never enter the MAC), but it means `encrypted_comment_regex` and
//! `unencrypted_comment_regex` cannot be evaluated; see `decrypt.rs` for how such files are read.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::doc::{RawEntry, RawFile, RawNode, RawScalar, Scalar};
use crate::error::SopsError;
use crate::yaml_scalar::{Resolved, resolve};
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
    };
    let mut parser = Parser::new_from_str(text);
    let res = parser.load(&mut b, true);
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
    },
    Seq {
        items: Vec<RawNode>,
        anchor: usize,
        start_nodes: usize,
    },
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
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.event(ev, Some(mark.line())) {
            self.error = Some(e);
        }
    }
}

impl Builder<'_> {
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

    fn event(&mut self, ev: Event, line: Option<usize>) -> Result<(), SopsError> {
        match ev {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => Ok(()),
            Event::DocumentStart => {
                self.root = None;
                Ok(())
            }
            Event::DocumentEnd => self.end_document(line),
            Event::Scalar(value, style, anchor, tag) => {
                self.count(1, line)?;
                let node = match resolve(&value, style, tag.as_ref()) {
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
            Event::Alias(id) => {
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
            Event::SequenceStart(anchor, _tag) => {
                let start_nodes = self.open(line)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    start_nodes,
                });
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
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, start) = match self.stack.pop() {
                    Some(Frame::Seq {
                        items,
                        anchor,
                        start_nodes,
                    }) => (RawNode::List(items), anchor, start_nodes),
                    Some(Frame::Map {
                        entries,
                        anchor,
                        start_nodes,
                        ..
                    }) => (RawNode::Map(entries), anchor, start_nodes),
                    None => return Err(self.unsupported(line, "unbalanced YAML events".to_owned())),
                };
                if anchor != 0 {
                    let size = self.nodes.saturating_sub(start).saturating_add(1);
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                self.deliver(node, line)
            }
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
            Some(RawNode::Scalar(_)) => {
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
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, pending, ..
            }) => {
                if let Some((key, _)) = pending.take() {
                    entries.push(RawEntry { key, value: node });
                }
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
