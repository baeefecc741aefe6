//! JSON output as sops' JSON store prints it: Go `encoding/json` encoding (HTML-safe escapes),
//! re-indented with `json.Indent` (a tab by default, or N spaces), comments dropped.

use zeroize::Zeroizing;

use crate::gofmt;
use crate::plain::{PlainItem, PlainNode, Value};

/// A whole document, with the trailing newline sops ≥ 3.10 writes.
pub(crate) fn document(node: &PlainNode, indent: Option<usize>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(String::new());
    write(&mut out, node, 0, &unit(indent));
    out.push('\n');
    Zeroizing::new(std::mem::take(&mut *out).into_bytes())
}

/// One value (`EmitValue`): indented, no trailing newline.
pub(crate) fn value(node: &PlainNode, indent: Option<usize>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(String::new());
    write(&mut out, node, 0, &unit(indent));
    Zeroizing::new(std::mem::take(&mut *out).into_bytes())
}

fn unit(indent: Option<usize>) -> String {
    match indent {
        None => "\t".to_owned(),
        Some(n) => " ".repeat(n),
    }
}

fn newline(out: &mut String, depth: usize, unit: &str) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str(unit);
    }
}

fn write(out: &mut String, node: &PlainNode, depth: usize, unit: &str) {
    match node {
        PlainNode::Map(items) => {
            let entries: Vec<(&String, &PlainNode)> = items
                .iter()
                .filter_map(|i| match i {
                    PlainItem::Entry(k, v) => Some((k, v)),
                    PlainItem::Comment(_) => None,
                })
                .collect();
            if entries.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1, unit);
                string(out, k.as_bytes());
                out.push_str(": ");
                write(out, v, depth + 1, unit);
            }
            newline(out, depth, unit);
            out.push('}');
        }
        PlainNode::List(items) => {
            let items: Vec<&PlainNode> = items
                .iter()
                .filter(|n| !matches!(n, PlainNode::Comment(_)))
                .collect();
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1, unit);
                write(out, v, depth + 1, unit);
            }
            newline(out, depth, unit);
            out.push(']');
        }
        PlainNode::Null => out.push_str("null"),
        PlainNode::Comment(c) => {
            out.push_str("{\"Value\": ");
            string(out, c.as_bytes());
            out.push('}');
        }
        PlainNode::Leaf(v, _) => match v {
            Value::Str(b) => string(out, b),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&gofmt::float_json_text(*f)),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Time(t) => string(out, t.as_bytes()),
        },
    }
}

/// Go `encoding/json` string encoding with HTML escaping; invalid UTF-8 becomes U+FFFD.
pub(crate) fn string(out: &mut String, bytes: &[u8]) {
    let s = String::from_utf8_lossy(bytes);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0C' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    if let std::borrow::Cow::Owned(mut owned) = s {
        zeroize::Zeroize::zeroize(&mut owned);
    }
}
