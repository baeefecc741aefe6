//! dotenv and INI output (sops' dotenv and INI stores).

use zeroize::Zeroizing;

use super::EmitError;
use crate::gofmt;
use crate::plain::{PlainItem, PlainNode, Value};

/// `stores.ValToString` for a scalar (sops 3.11+ accepts non-strings in flat formats).
fn val_to_string(v: &Value) -> Zeroizing<Vec<u8>> {
    match v {
        Value::Str(b) => b.clone(),
        Value::Float(f) => {
            let mut s = gofmt::float_yaml_text(*f).replace('e', "E");
            if f.is_finite() && !s.contains(['.', 'E']) {
                s.push_str(".0");
            }
            Zeroizing::new(s.into_bytes())
        }
        Value::Bool(b) => Zeroizing::new(if *b {
            b"true".to_vec()
        } else {
            b"false".to_vec()
        }),
        other => other.to_bytes(),
    }
}

fn complex(key: &str) -> EmitError {
    EmitError(format!(
        "cannot use complex value in dotenv file; offending key {key}"
    ))
}

/// `KEY=value` lines (newlines in values written as `\n`), comments as `#text`.
pub(crate) fn dotenv(doc: &PlainNode) -> Result<Zeroizing<Vec<u8>>, EmitError> {
    let mut out = Zeroizing::new(Vec::new());
    let PlainNode::Map(items) = doc else {
        return Err(EmitError("dotenv output needs a mapping".to_owned()));
    };
    for item in items {
        match item {
            PlainItem::Comment(c) => {
                out.push(b'#');
                out.extend_from_slice(c.as_bytes());
                out.push(b'\n');
            }
            PlainItem::Entry(k, v) => {
                let value = match v {
                    PlainNode::Leaf(v, _) => val_to_string(v),
                    PlainNode::Null => Zeroizing::new(Vec::new()),
                    _ => return Err(complex(k)),
                };
                out.extend_from_slice(k.as_bytes());
                out.push(b'=');
                for &b in value.iter() {
                    if b == b'\n' {
                        out.extend_from_slice(b"\\n");
                    } else {
                        out.push(b);
                    }
                }
                out.push(b'\n');
            }
        }
    }
    Ok(out)
}

/// INI sections (`[name]`, keys aligned on `=` as gopkg.in/ini.v1 writes them), the
/// `DEFAULT` section without a header; comments as `; text`.
pub(crate) fn ini(doc: &PlainNode) -> Result<Zeroizing<Vec<u8>>, EmitError> {
    let PlainNode::Map(sections) = doc else {
        return Err(EmitError("INI output needs a mapping".to_owned()));
    };
    let mut out = Zeroizing::new(Vec::new());
    let mut first = true;
    for item in sections {
        let PlainItem::Entry(name, body) = item else {
            continue;
        };
        let PlainNode::Map(entries) = body else {
            return Err(EmitError(format!(
                "INI output needs every top-level value to be a section; offending key {name}"
            )));
        };
        let keys: Vec<(&String, &PlainNode)> = entries
            .iter()
            .filter_map(|e| match e {
                PlainItem::Entry(k, v) => Some((k, v)),
                PlainItem::Comment(_) => None,
            })
            .collect();
        if name == "DEFAULT" && entries.is_empty() {
            continue;
        }
        if !first {
            out.push(b'\n');
        }
        first = false;
        let width = keys
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut pending: Vec<&str> = Vec::new();
        let mut header_done = name == "DEFAULT";
        for e in entries {
            match e {
                PlainItem::Comment(c) => pending.push(c.as_str()),
                PlainItem::Entry(k, v) => {
                    let comments = |out: &mut Vec<u8>, pending: &mut Vec<&str>| {
                        for c in pending.drain(..) {
                            out.extend_from_slice(b"; ");
                            out.extend_from_slice(c.as_bytes());
                            out.push(b'\n');
                        }
                    };
                    comments(&mut out, &mut pending);
                    if !header_done {
                        out.extend_from_slice(format!("[{name}]\n").as_bytes());
                        header_done = true;
                    }
                    let value = match v {
                        PlainNode::Leaf(v, _) => val_to_string(v),
                        PlainNode::Null => Zeroizing::new(Vec::new()),
                        _ => return Err(complex(k)),
                    };
                    out.extend_from_slice(k.as_bytes());
                    for _ in k.chars().count()..width {
                        out.push(b' ');
                    }
                    out.extend_from_slice(b" = ");
                    out.extend_from_slice(&ini_value(&value));
                    out.push(b'\n');
                }
            }
        }
        for c in pending.drain(..) {
            out.extend_from_slice(b"; ");
            out.extend_from_slice(c.as_bytes());
            out.push(b'\n');
        }
        if !header_done {
            out.extend_from_slice(format!("[{name}]\n").as_bytes());
        }
    }
    Ok(out)
}

/// gopkg.in/ini.v1 value quoting.
fn ini_value(v: &[u8]) -> Zeroizing<Vec<u8>> {
    let s = String::from_utf8_lossy(v);
    let quoted = if s.contains(['\n', '`']) {
        format!("\"\"\"{s}\"\"\"")
    } else if s.contains(['#', ';']) {
        format!("`{s}`")
    } else if s.trim() != s {
        format!("\"{s}\"")
    } else {
        return Zeroizing::new(v.to_vec());
    };
    Zeroizing::new(quoted.into_bytes())
}
