//! `agentsec policy pin POLICY COMPONENT.wasm...`: replace the `skills:`
//! name entries that name the given components with their `sha256:`
//! digests, so that the rule grants exactly those builds.
//!
//! The file is edited as text: only the name entries change, everything
//! else (comments, order, spacing) stays byte for byte. The result is parsed
//! as a policy before it replaces the file (atomically: a temporary file in
//! the same directory, renamed over it, with the old file's mode), or it is
//! printed with `--stdout`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use yaml_rust2::Event;
use yaml_rust2::parser::Parser;

use agentsec_policy::{MAX_POLICY_FILE_SIZE, Policy, SkillName};

/// Largest component read to compute its digest: the host's own default
/// bound on a component file (`--max-component-size`), for the same reason.
pub const MAX_COMPONENT_SIZE: u64 = agentsec_host::limits::DEFAULT_MAX_COMPONENT_SIZE;

/// A component to pin: the name it goes by and its digest.
struct Pin {
    name: String,
    digest: String,
    shown: PathBuf,
}

/// What `pin` did: the new text and one line per component for stderr.
pub(super) struct Pinned {
    pub(super) text: String,
    pub(super) report: Vec<String>,
    pub(super) unmatched: usize,
}

/// Reads `path` whole through the shared bounded reader: a regular file only
/// (a FIFO is refused without blocking), at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    agentsec_policy::bounded::read_file(path, max, &mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes)
}

fn component(path: &Path) -> Result<Pin, String> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().replace('_', "-"))
        .unwrap_or_default();
    let name = SkillName::parse(&stem)
        .map_err(|e| format!("{}: no skill name in the file name: {e}", path.display()))?;
    let bytes = read_bounded(path, MAX_COMPONENT_SIZE)?;
    Ok(Pin {
        name: name.as_str().to_owned(),
        digest: format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        shown: path.to_owned(),
    })
}

/// One `skills:` entry in the text: its byte range and its value.
struct Entry {
    start: usize,
    end: usize,
    value: String,
    line: usize,
}

impl Entry {
    /// The entry whose scalar `value` the parser read at byte `start` of `text`: its extent
    /// in the text, quotes included.
    fn locate(text: &str, start: usize, value: String, line: usize) -> Result<Entry, String> {
        let source = text.get(start..).unwrap_or_default();
        // A name is plain, '…' or "…" (names need no escapes).
        let len = if source.starts_with(value.as_str()) {
            value.len()
        } else if (source.starts_with('"') || source.starts_with('\''))
            && source.get(1..=value.len()) == Some(value.as_str())
        {
            value.len() + 2
        } else {
            return Err(format!(
                "line {line}: cannot locate the skills entry `{}` in the text; edit it by hand",
                value.escape_debug()
            ));
        };
        Ok(Entry {
            start,
            end: start + len,
            value,
            line,
        })
    }
}

/// The scalar entries of every sequence that is the value of a `skills` key.
fn skills_entries(text: &str) -> Result<Vec<Entry>, String> {
    enum Frame {
        Map { expect_key: bool, key: String },
        Seq { skills: bool },
    }
    // Char offsets (the parser's) to byte offsets.
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let byte = |chars: usize| offsets.get(chars).copied().unwrap_or(text.len());
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut out = Vec::new();
    // A value (scalar, alias or collection) fills the slot of its parent map.
    fn filled(stack: &mut [Frame]) {
        if let Some(Frame::Map { expect_key, .. }) = stack.last_mut() {
            *expect_key = true;
        }
    }
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            format!(
                "line {} column {}: {}",
                e.marker().line(),
                e.marker().col() + 1,
                e.info()
            )
        })?;
        match event {
            Event::StreamEnd => break,
            Event::MappingStart(..) => {
                filled(&mut stack);
                stack.push(Frame::Map {
                    expect_key: true,
                    key: String::new(),
                });
            }
            Event::SequenceStart(..) => {
                let skills = matches!(stack.last(), Some(Frame::Map { expect_key: false, key }) if key == "skills");
                filled(&mut stack);
                stack.push(Frame::Seq { skills });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Scalar(value, ..) => match stack.last_mut() {
                Some(Frame::Map {
                    expect_key: expect @ true,
                    key,
                }) => {
                    *key = value;
                    *expect = false;
                }
                Some(Frame::Seq { skills: true }) => {
                    out.push(Entry::locate(text, byte(mark.index()), value, mark.line())?);
                }
                _ => filled(&mut stack),
            },
            Event::Alias(..) => filled(&mut stack),
            _ => {}
        }
    }
    Ok(out)
}

/// Rewrites the name entries of `text` (from `origin`) for `components`.
fn rewrite(origin: &str, text: &str, components: &[Pin]) -> Result<Pinned, String> {
    let entries = skills_entries(text).map_err(|e| format!("{origin}: {e}"))?;
    let mut edits: Vec<(&Entry, &Pin)> = Vec::new();
    let mut report = Vec::new();
    let mut unmatched = 0;
    for pin in components {
        let named: Vec<&Entry> = entries.iter().filter(|e| e.value == pin.name).collect();
        let already = entries.iter().any(|e| e.value == pin.digest);
        if named.is_empty() {
            if already {
                report.push(format!(
                    "{}: already pinned as {} in {origin}",
                    pin.shown.display(),
                    pin.digest
                ));
            } else {
                unmatched += 1;
                report.push(format!(
                    "{}: no `skills:` entry in {origin} names `{}` or its digest {}",
                    pin.shown.display(),
                    pin.name,
                    pin.digest
                ));
            }
            continue;
        }
        let lines: Vec<String> = named.iter().map(|e| e.line.to_string()).collect();
        report.push(format!(
            "{}: `{}` -> {} ({origin} line{} {})",
            pin.shown.display(),
            pin.name,
            pin.digest,
            if lines.len() == 1 { "" } else { "s" },
            lines.join(", ")
        ));
        edits.extend(named.into_iter().map(|e| (e, pin)));
    }
    edits.sort_by_key(|(e, _)| std::cmp::Reverse(e.start));
    let mut text = text.to_owned();
    for (entry, pin) in edits {
        text.replace_range(entry.start..entry.end, &format!("\"{}\"", pin.digest));
    }
    Ok(Pinned {
        text,
        report,
        unmatched,
    })
}

/// `agentsec policy pin`: see the module docs. Returns the report lines and
/// whether every component matched an entry.
pub(super) fn pin(
    policy: &Path,
    components: &[PathBuf],
    to_stdout: bool,
) -> Result<(Vec<String>, bool), String> {
    let shown = policy.display().to_string();
    let bytes = read_bounded(policy, MAX_POLICY_FILE_SIZE)
        .map_err(|e| format!("{e} (pin takes one policy file, not a directory)"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown}: not UTF-8"))?;
    let pins = components
        .iter()
        .map(|c| component(c))
        .collect::<Result<Vec<_>, _>>()?;
    let pinned = rewrite(&shown, &text, &pins)?;
    let dir = policy
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".agentsec-pin-")
        .suffix(".yaml")
        .tempfile_in(dir)
        .map_err(|e| format!("{}: cannot create a temporary file: {e}", dir.display()))?;
    tmp.write_all(pinned.text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| format!("{}: {e}", tmp.path().display()))?;
    // The result must still be a valid policy before it replaces the file.
    Policy::load(&[tmp.path().to_owned()])
        .map_err(|e| format!("the pinned policy would not load ({e}); {shown} is unchanged"))?;
    drop(tmp);
    if to_stdout {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        out.write_all(pinned.text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| format!("could not write the pinned policy to stdout: {e}"))?;
    } else if pinned.text != text {
        // The same atomic write as `agentsec secrets`: through symlinks to the
        // target, owner, group and mode kept, hard links refused.
        crate::admin::secrets::replace_file(policy, pinned.text.as_bytes())?;
    }
    Ok((pinned.report, pinned.unmatched == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin_of(name: &str, hex: char) -> Pin {
        Pin {
            name: name.to_owned(),
            digest: format!("sha256:{}", hex.to_string().repeat(64)),
            shown: PathBuf::from(format!("{name}.wasm")),
        }
    }

    #[test]
    fn only_the_named_entries_change_and_comments_stay() {
        let text = "# top\naccess_control:\n  secrets:\n    a.b:   # the rule\n      allowed_agents: [x/y]\n      skills: [db-healthcheck, 'other', \"db-healthcheck\"]  # keep\n    c:\n      allowed_agents: [db-healthcheck]\n      skills:\n        - other # note\n        - db-healthcheck\n";
        let out = rewrite(
            "p.yaml",
            text,
            &[pin_of("db-healthcheck", 'a'), pin_of("missing", 'b')],
        )
        .expect("rewrites");
        let d = format!("\"sha256:{}\"", "a".repeat(64));
        let expected = text
            .replace(
                "[db-healthcheck, 'other', \"db-healthcheck\"]",
                &format!("[{d}, 'other', {d}]"),
            )
            .replace("        - db-healthcheck\n", &format!("        - {d}\n"));
        assert_eq!(out.text, expected);
        // An agent glob of the same spelling is not a skills entry.
        assert!(out.text.contains("allowed_agents: [db-healthcheck]"));
        assert_eq!(out.unmatched, 1);
        assert!(
            out.report[1].contains("no `skills:` entry"),
            "{:?}",
            out.report
        );
        let again = rewrite("p.yaml", &out.text, &[pin_of("db-healthcheck", 'a')]).expect("again");
        assert_eq!(again.text, out.text);
        assert!(again.report[0].contains("already pinned"));
    }
}
