//! dotenv and INI readers, and the flattened `sops_…` metadata they carry.

use crate::doc::{RawEntry, RawFile, RawNode, RawScalar, Scalar};
use crate::error::SopsError;

fn string(s: String, line: usize) -> RawNode {
    RawNode::Scalar(RawScalar {
        value: Scalar::Str(s.clone()),
        raw: s,
        line: Some(line),
    })
}

/// Un-flattens `age__list_0__map_enc`-style keys into a metadata tree.
fn unflatten(flat: Vec<(String, String)>) -> RawNode {
    let mut root = RawNode::Map(Vec::new());
    for (key, value) in flat {
        let mut parts = key.split("__");
        let Some(first) = parts.next() else { continue };
        let mut cur = map_slot(&mut root, first);
        for part in parts {
            cur = if let Some(i) = part.strip_prefix("list_") {
                let idx = i.parse::<usize>().unwrap_or(0);
                list_slot(cur, idx)
            } else {
                map_slot(cur, part.strip_prefix("map_").unwrap_or(part))
            };
        }
        *cur = string(value, 0);
    }
    root
}

fn map_slot<'a>(node: &'a mut RawNode, key: &str) -> &'a mut RawNode {
    if !matches!(node, RawNode::Map(_)) {
        *node = RawNode::Map(Vec::new());
    }
    let RawNode::Map(entries) = node else {
        unreachable_slot()
    };
    let pos = match entries.iter().position(|e| e.key == key) {
        Some(p) => p,
        None => {
            entries.push(RawEntry {
                key: key.to_owned(),
                value: RawNode::Null,
            });
            entries.len() - 1
        }
    };
    &mut entries[pos].value
}

fn list_slot(node: &mut RawNode, idx: usize) -> &mut RawNode {
    if !matches!(node, RawNode::List(_)) {
        *node = RawNode::List(Vec::new());
    }
    let RawNode::List(items) = node else {
        unreachable_slot()
    };
    // Bounded: an index in a key name cannot make us allocate more than this.
    let idx = idx.min(MAX_FLAT_LIST);
    while items.len() <= idx {
        items.push(RawNode::Null);
    }
    &mut items[idx]
}

/// The largest list index accepted in a flattened metadata key (`age__list_N__…`); a file
/// has one entry per recipient, and the bound keeps a hostile index from allocating.
const MAX_FLAT_LIST: usize = 4096;

#[expect(
    clippy::panic,
    reason = "called only right after the node was made that variant"
)]
fn unreachable_slot() -> ! {
    panic!("slot variant was just set")
}

/// Parses a dotenv file (sops' rules: no quoting, `\n` escapes, `#` comment lines).
pub(crate) fn parse_dotenv(bytes: &[u8], file: &str) -> Result<RawFile, SopsError> {
    let text = std::str::from_utf8(bytes).map_err(|e| SopsError::Syntax {
        file: file.to_owned(),
        line: None,
        message: format!("not UTF-8 (at byte {})", e.valid_up_to()),
    })?;
    let mut entries = Vec::new();
    let mut meta = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            entries.push(RawEntry::comment(c.to_owned()));
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(SopsError::Syntax {
                file: file.to_owned(),
                line: Some(i + 1),
                message: "invalid dotenv input line (no `=`)".to_owned(),
            });
        };
        let v = v.replace("\\n", "\n");
        if let Some(m) = k.strip_prefix("sops_") {
            meta.push((m.to_owned(), v));
        } else {
            entries.push(RawEntry {
                key: k.to_owned(),
                value: string(v, i + 1),
            });
        }
    }
    if !meta.is_empty() {
        entries.push(RawEntry {
            key: "sops".to_owned(),
            value: unflatten(meta),
        });
    }
    Ok(RawFile {
        documents: vec![entries],
    })
}

/// Parses an INI file as gopkg.in/ini.v1 (as sops configures it) reads it.
pub(crate) fn parse_ini(bytes: &[u8], file: &str) -> Result<RawFile, SopsError> {
    let text = std::str::from_utf8(bytes).map_err(|e| SopsError::Syntax {
        file: file.to_owned(),
        line: None,
        message: format!("not UTF-8 (at byte {})", e.valid_up_to()),
    })?;
    let mut sections: Vec<(String, Vec<RawEntry>)> = vec![("DEFAULT".to_owned(), Vec::new())];
    let mut pending: Vec<String> = Vec::new();
    let mut meta = Vec::new();
    let mut in_sops = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with([';', '#']) {
            let c = line.trim_start_matches([';', '#']).trim_start();
            pending.push(c.to_owned());
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_owned();
            in_sops = name == "sops";
            let comments = pending.drain(..).map(RawEntry::comment).collect();
            if name == "DEFAULT" {
                if let Some(first) = sections.first_mut() {
                    first.1.extend(comments);
                }
            } else if !in_sops {
                sections.push((name, comments));
            }
            continue;
        }
        let Some((k, v)) = line.split_once(['=', ':']) else {
            return Err(SopsError::Syntax {
                file: file.to_owned(),
                line: Some(i + 1),
                message: "INI line is neither a section, a comment nor `key = value`".to_owned(),
            });
        };
        let (k, v) = (k.trim().to_owned(), unquote(v.trim()));
        if in_sops {
            meta.push((k, v.replace("\\n", "\n")));
            continue;
        }
        if let Some((_, entries)) = sections.last_mut() {
            entries.extend(pending.drain(..).map(RawEntry::comment));
            entries.push(RawEntry {
                key: k,
                value: string(v, i + 1),
            });
        }
    }
    let mut doc: Vec<RawEntry> = sections
        .into_iter()
        .map(|(key, entries)| RawEntry {
            key,
            value: RawNode::Map(entries),
        })
        .collect();
    if !meta.is_empty() {
        doc.push(RawEntry {
            key: "sops".to_owned(),
            value: unflatten(meta),
        });
    }
    Ok(RawFile {
        documents: vec![doc],
    })
}

fn unquote(v: &str) -> String {
    for q in ["\"\"\"", "\"", "`", "'"] {
        if v.len() >= 2 * q.len()
            && let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q))
        {
            return inner.to_owned();
        }
    }
    v.to_owned()
}
