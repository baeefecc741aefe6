//! Whether an encrypted value is bound to the path it would be served under, and the
//! paths a store serves (and so lists) for a tree.

use agentsec_policy::SecretPath;

use crate::Node;

/// Whether an encrypted value is bound to the path it would be served under.
///
/// sops authenticates a value with its AAD: the mapping keys above it joined
/// by `:`. List levels add nothing and a key may itself contain `:`, so one
/// AAD can fit several tree positions, and the MAC (over values in order, not
/// over keys) does not notice when a value is moved between them. agentsec
/// authorises by path, so it serves an encrypted value only where its AAD
/// names exactly one position:
/// - no key above it contains `:` (`"prod:password"` has the AAD of
///   `prod.password`);
/// - no mapping above it sits inside a list (`team[1].prod.pw` has the AAD of
///   `team.prod.pw` and of `team[0].prod.pw`), and at most one list level,
///   its own parent;
/// - a list holding it holds only encrypted values (nothing the MAC skips,
///   such as `null`, `{}`, `[]` or, with `mac_only_encrypted`, a clear value,
///   could have been inserted to shift its index).
///
/// A value in a list of encrypted values is then fixed to its index by the
/// MAC's order. The positions that still share its AAD (a scalar at `keys`
/// may have been the only element of a list at `keys`; a value at
/// `prod.password` may have been at `"prod:password"`) are handled by the
/// policy: [`Authorized::denied_for_aad`] makes a deny on any of them hold.
#[derive(Clone, Copy)]
pub(super) enum Binding {
    /// Served at its path; `scalar` when its parent is a mapping.
    Bound { scalar: bool },
    /// Never served: why its AAD does not pin it to its path.
    Unbound(&'static str),
}

const UNBOUND_COLON: &str = "a key above it contains `:`, so its sops AAD (the keys joined by \
    `:`) does not say which path it was encrypted for; rename the key without `:`";
const UNBOUND_MAP_IN_LIST: &str = "it sits in a mapping inside a list, and sops' AAD does not \
    include list positions, so the value could have been moved there from another path; key \
    the list's entries by name instead (a mapping of mappings)";
const UNBOUND_NESTED_LIST: &str = "it sits in a list inside a list, and sops' AAD does not \
    include list positions; flatten the list";
const UNBOUND_MIXED_LIST: &str = "its list also holds elements that are not encrypted values \
    (null, empty, a mapping, a list or a clear value), which the MAC does not pin, so its \
    index could have been shifted; make every element an encrypted value";

/// Where a node sits, as far as binding is concerned.
#[derive(Clone, Copy, Default)]
pub(super) struct PathShape {
    /// A key on the way here contains `:`.
    colon: bool,
    /// A mapping on the way here is inside a list.
    map_in_list: bool,
    /// List levels on the way here.
    lists: usize,
    /// The parent is a list, and all its elements are encrypted values.
    in_sealed_list: bool,
}

impl PathShape {
    /// The place of the value at key `key` of a mapping here.
    pub(super) fn below_key(self, key: &str) -> PathShape {
        PathShape {
            colon: self.colon || key.contains(':'),
            map_in_list: self.map_in_list || self.lists > 0,
            in_sealed_list: false,
            ..self
        }
    }

    /// The place of the elements of the list `items` here.
    pub(super) fn below_list(self, items: &[Node]) -> PathShape {
        PathShape {
            lists: self.lists + 1,
            in_sealed_list: items
                .iter()
                .all(|n| matches!(n, Node::Leaf(l) if l.was_encrypted())),
            ..self
        }
    }

    pub(super) fn binding(self) -> Binding {
        if self.colon {
            Binding::Unbound(UNBOUND_COLON)
        } else if self.map_in_list {
            Binding::Unbound(UNBOUND_MAP_IN_LIST)
        } else if self.lists > 1 {
            Binding::Unbound(UNBOUND_NESTED_LIST)
        } else if self.lists == 1 && !self.in_sealed_list {
            Binding::Unbound(UNBOUND_MIXED_LIST)
        } else {
            Binding::Bound {
                scalar: self.lists == 0,
            }
        }
    }
}

/// The leaf paths a store serves for the public tree `root`, in file order: every clear leaf
/// and every encrypted leaf bound to its path ([`PathShape::binding`]); never a `null` or an
/// unbound value (never served, so never listed). [`SopsStore`] and [`SopsNames`] both list
/// through this, so a review without the key sees exactly the names a run would.
pub(super) fn served_paths(root: &Node) -> Vec<SecretPath> {
    fn walk(node: &Node, place: PathShape, segments: &mut Vec<String>, out: &mut Vec<SecretPath>) {
        match node {
            Node::Leaf(leaf)
                if leaf.was_encrypted() && matches!(place.binding(), Binding::Unbound(_)) => {}
            Node::Leaf(_) => {
                if let Ok(path) = SecretPath::from_segments(segments.iter()) {
                    out.push(path);
                }
            }
            Node::Null => {}
            Node::Map(entries) => {
                for (key, child) in entries {
                    segments.push(key.clone());
                    walk(child, place.below_key(key), segments, out);
                    segments.pop();
                }
            }
            Node::List(items) => {
                let below = place.below_list(items);
                for (i, child) in items.iter().enumerate() {
                    segments.push(i.to_string());
                    walk(child, below, segments, out);
                    segments.pop();
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(root, PathShape::default(), &mut Vec::new(), &mut out);
    out
}

pub(super) fn below(paths: &[SecretPath], prefix: &SecretPath) -> Vec<SecretPath> {
    paths
        .iter()
        .filter(|p| p.starts_with(prefix))
        .cloned()
        .collect()
}
