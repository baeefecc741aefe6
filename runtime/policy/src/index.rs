//! A trie over rule patterns: finds the rules covering a path without
//! scanning the others and without allocating.

use crate::path::PatternSegment;
use crate::rule::Rule;

/// One node of the trie, reached by one pattern prefix: its children by
/// next segment (indices into [`Index::nodes`]) and the rules ending there.
#[derive(Debug, Default)]
struct TrieNode {
    /// Literal children, sorted by key for binary search.
    literals: Vec<(Box<str>, usize)>,
    /// The `*` child.
    any: Option<usize>,
    /// Rules whose pattern ends here.
    rules: Vec<usize>,
}

/// Each trie node is reached by exactly one pattern prefix, so a walk visits
/// every node at most once: its cost is bounded by the number of pattern
/// segments, whatever mix of literals and `*` the policy uses.
#[derive(Debug)]
pub(crate) struct Index {
    nodes: Vec<TrieNode>,
}

impl Index {
    pub(crate) fn new(rules: &[Rule]) -> Self {
        let mut index = Self {
            nodes: vec![TrieNode::default()],
        };
        for (i, rule) in rules.iter().enumerate() {
            index.insert(rule.pattern.segments(), i);
        }
        index
    }

    fn insert(&mut self, segments: &[PatternSegment], rule: usize) {
        let mut cur = 0;
        for seg in segments {
            let fresh = self.nodes.len();
            let Some(node) = self.nodes.get_mut(cur) else {
                return;
            };
            let next = match seg {
                PatternSegment::Literal(lit) => {
                    match node.literals.binary_search_by(|(k, _)| (**k).cmp(lit)) {
                        Ok(i) => node.literals.get(i).map(|&(_, c)| c),
                        Err(i) => {
                            node.literals.insert(i, (lit.clone(), fresh));
                            None
                        }
                    }
                }
                PatternSegment::Any => match node.any {
                    Some(c) => Some(c),
                    None => {
                        node.any = Some(fresh);
                        None
                    }
                },
            };
            cur = match next {
                Some(c) => c,
                None => {
                    self.nodes.push(TrieNode::default());
                    fresh
                }
            };
        }
        if let Some(node) = self.nodes.get_mut(cur) {
            node.rules.push(rule);
        }
    }

    /// Calls `f` with the index of every rule whose pattern covers `path`.
    pub(crate) fn visit(&self, path: &[Box<str>], f: &mut impl FnMut(usize)) {
        self.walk(0, path, f);
    }

    fn walk(&self, at: usize, rest: &[Box<str>], f: &mut impl FnMut(usize)) {
        let Some(node) = self.nodes.get(at) else {
            return;
        };
        for &r in &node.rules {
            f(r);
        }
        let Some((first, rest)) = rest.split_first() else {
            return;
        };
        if let Ok(i) = node.literals.binary_search_by(|(k, _)| (**k).cmp(&**first))
            && let Some(&(_, child)) = node.literals.get(i)
        {
            self.walk(child, rest, f);
        }
        if let Some(child) = node.any {
            self.walk(child, rest, f);
        }
    }
}
