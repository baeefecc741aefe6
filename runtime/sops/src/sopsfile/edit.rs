//! Changing a decrypted file's plaintext: replacing it with an edited text (`sops edit`),
//! setting and removing one value (`sops set`, `sops unset`). Nothing changes on error.

use zeroize::Zeroizing;

use super::write::encrypt_error;
use super::{ExtractPath, SopsFile, list_len, list_slot, parse_plain};
use crate::decrypt::Walker;
use crate::error::SopsError;
use crate::mac::MacHasher;
use crate::plain::{PlainItem, PlainNode};
use crate::{Format, MAX_FILE_SIZE, stores};

impl SopsFile {
    /// Replaces the documents with edited plaintext in the file's own format (`sops edit`):
    /// typed as decryption types them; the data key, recipients and options are kept. Refuses
    /// an empty file and a top-level `sops` key (the metadata is not editable this way).
    /// Errors name a line and column, never content.
    pub fn replace_plaintext(&mut self, bytes: &[u8]) -> Result<(), SopsError> {
        if bytes.len() > MAX_FILE_SIZE {
            return Err(SopsError::FileTooLarge {
                file: self.name.clone(),
                limit: MAX_FILE_SIZE,
            });
        }
        let docs = parse_plain(bytes, self.format, &self.name)?;
        if docs.is_empty() {
            return Err(encrypt_error(
                "File cannot be completely empty, it must contain at least one document".to_owned(),
                92,
            ));
        }
        let has_sops = docs.iter().any(|d| match d {
            PlainNode::Map(items) => items
                .iter()
                .any(|i| matches!(i, PlainItem::Entry(k, _) if k == "sops")),
            _ => false,
        });
        if has_sops && self.format != Format::Binary {
            return Err(encrypt_error(
                "the edited file has a top-level `sops` key; remove it (the metadata is kept \
                 by agentsec)"
                    .to_owned(),
                1,
            ));
        }
        self.docs = docs;
        Ok(())
    }

    /// Sets the value at `path` from JSON text as `sops set` does (numbers become floats).
    /// Missing mappings are created (a missing node named by a list index becomes a list); an
    /// index equal to a list's length appends; an index past that, or a key on a list, is
    /// refused (exit code 7) rather than written somewhere the path does not name. Nothing is
    /// changed on error.
    pub fn set(&mut self, path: &ExtractPath, json_value: &str) -> Result<(), SopsError> {
        let value = json_to_node(json_value)?;
        let Some(doc) = self.docs.first_mut() else {
            return Err(SopsError::ExtractNotFound("empty file".to_owned()));
        };
        let segs: Vec<&str> = path.0.segments().collect();
        check_set(doc, &segs, 0)?;
        set_in(doc, &segs, value);
        Ok(())
    }

    /// Removes the key or list element at `path` (`sops unset`).
    pub fn unset(&mut self, path: &ExtractPath) -> Result<(), SopsError> {
        let Some(doc) = self.docs.first_mut() else {
            return Err(SopsError::ExtractNotFound("empty file".to_owned()));
        };
        let segs: Vec<&str> = path.0.segments().collect();
        let Some((last, parents)) = segs.split_last() else {
            return Err(SopsError::ExtractSyntax("empty path".to_owned()));
        };
        let mut cur = doc;
        for seg in parents {
            cur = child_mut(cur, seg).ok_or_else(|| not_found(seg))?;
        }
        match cur {
            PlainNode::Map(items) => {
                let pos = items
                    .iter()
                    .position(|i| matches!(i, PlainItem::Entry(key, _) if key == last))
                    .ok_or_else(|| not_found(last))?;
                items.remove(pos);
            }
            PlainNode::List(items) => {
                let slot = list_slot(items, last).ok_or_else(|| not_found(last))?;
                items.remove(slot);
            }
            _ => return Err(not_found(last)),
        }
        Ok(())
    }
}

fn not_found(seg: &str) -> SopsError {
    SopsError::ExtractNotFound(match agentsec_policy::list_index(seg) {
        Some(i) => format!("Index {i} out of bounds"),
        None => format!("Key not found: {seg}"),
    })
}

fn child_mut<'a>(node: &'a mut PlainNode, seg: &str) -> Option<&'a mut PlainNode> {
    match node {
        PlainNode::Map(items) => items.iter_mut().find_map(|i| match i {
            PlainItem::Entry(key, v) if key == seg => Some(v),
            _ => None,
        }),
        PlainNode::List(items) => {
            let slot = list_slot(items, seg)?;
            items.get_mut(slot)
        }
        _ => None,
    }
}

/// Refuses, before anything changes, a `set` whose path crosses a list with a key, or with an
/// index past the end (where `set_in` would write elsewhere than the path names).
fn check_set(node: &PlainNode, segs: &[&str], depth: usize) -> Result<(), SopsError> {
    let Some((first, rest)) = segs.split_first() else {
        return Ok(());
    };
    match node {
        PlainNode::Map(_) => match node.get(first) {
            Some(child) => check_set(child, rest, depth + 1),
            None => check_fresh(rest, depth + 1),
        },
        PlainNode::List(items) => {
            let len = list_len(items);
            match agentsec_policy::list_index(first) {
                Some(i) if i < len => match list_slot(items, first).and_then(|s| items.get(s)) {
                    Some(child) => check_set(child, rest, depth + 1),
                    None => Ok(()),
                },
                Some(i) if i == len => check_fresh(rest, depth + 1),
                Some(i) => Err(encrypt_error(
                    format!(
                        "index {i} (path segment {}) is past the end of a list of {len} \
                         elements; use index {len} to append",
                        depth + 1
                    ),
                    7,
                )),
                None => Err(encrypt_error(
                    format!(
                        "path segment {} names a key, but the node there is a list; use an \
                         index (0 to {len})",
                        depth + 1
                    ),
                    7,
                )),
            }
        }
        // A scalar on the way is replaced by what the rest of the path creates.
        _ => check_fresh(segs, depth),
    }
}

/// The part of a `set` path that names nodes which do not exist yet: each list
/// there is created empty and gets one element, so only index 0 names where
/// the value will be (`set f tokens.7` with no `tokens` would write `tokens.0`).
fn check_fresh(segs: &[&str], depth: usize) -> Result<(), SopsError> {
    for (n, seg) in segs.iter().enumerate() {
        if let Some(i) = agentsec_policy::list_index(seg)
            && i != 0
        {
            return Err(encrypt_error(
                format!(
                    "index {i} (path segment {}) names an element of a list that does not \
                     exist yet; a new list starts at index 0",
                    depth + n + 1
                ),
                7,
            ));
        }
    }
    Ok(())
}

/// Writes `value` at `segs` below `node`; [`check_set`] has ruled out every case that would
/// write elsewhere. Missing nodes are created: a list when the next segment is a list index,
/// else a mapping; a scalar on the way is replaced, as `sops set` does.
fn set_in(node: &mut PlainNode, segs: &[&str], value: PlainNode) {
    let Some((first, rest)) = segs.split_first() else {
        *node = value;
        return;
    };
    let fresh = || match rest.first() {
        Some(next) if agentsec_policy::list_index(next).is_some() => PlainNode::List(Vec::new()),
        Some(_) => PlainNode::Map(Vec::new()),
        None => PlainNode::Null,
    };
    if !matches!(node, PlainNode::Map(_) | PlainNode::List(_)) {
        *node = if agentsec_policy::list_index(first).is_some() {
            PlainNode::List(Vec::new())
        } else {
            PlainNode::Map(Vec::new())
        };
    }
    match node {
        PlainNode::Map(items) => {
            if let Some(v) = items.iter_mut().find_map(|i| match i {
                PlainItem::Entry(key, v) if key == first => Some(v),
                _ => None,
            }) {
                return set_in(v, rest, value);
            }
            let mut child = fresh();
            set_in(&mut child, rest, value);
            items.push(PlainItem::Entry((*first).to_owned(), child));
        }
        PlainNode::List(items) => {
            if let Some(slot) = list_slot(items, first)
                && let Some(v) = items.get_mut(slot)
            {
                return set_in(v, rest, value);
            }
            let mut child = fresh();
            set_in(&mut child, rest, value);
            items.push(child);
        }
        _ => {}
    }
}

/// A `sops set` value: JSON, numbers as float64, objects ordered.
fn json_to_node(text: &str) -> Result<PlainNode, SopsError> {
    let invalid = || encrypt_error("Value for --set is not valid JSON".to_owned(), 7);
    let wrapped = Zeroizing::new(format!("{{\"v\": {text}}}"));
    let raw = stores::json::parse(wrapped.as_bytes(), "value").map_err(|_| invalid())?;
    let mut walker = Walker {
        file: "value",
        key: None,
        selection: None,
        mac: MacHasher::new(false),
        json_ints: false,
        sealed: None,
    };
    let mut docs = raw.documents;
    let doc = docs.pop().ok_or_else(invalid)?;
    match walker.document(doc)? {
        PlainNode::Map(mut items) => match items.pop() {
            Some(PlainItem::Entry(_, v)) => Ok(v),
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}
