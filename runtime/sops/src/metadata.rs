//! The `sops` metadata section (SPEC section 6): master keys, key groups, MAC, partial
//! encryption rules. Tolerant of field order and of old styles (`kms: []`, `kms: null`).

use crate::doc::{RawEntry, RawNode, RawScalar, Scalar};
use crate::error::SopsError;
use crate::rules::SELECTION_FIELDS;
use crate::rules::Selection;

/// One age master key: the recipient and the data key (or Shamir share) wrapped for it.
pub(crate) struct AgeKey {
    pub(crate) recipient: String,
    pub(crate) enc: String,
}

/// A key group: its age keys, plus the names of other master key types present (which this
/// crate cannot use, but reports).
pub(crate) struct KeyGroup {
    pub(crate) age: Vec<AgeKey>,
    pub(crate) other: Vec<String>,
}

/// The parsed metadata.
pub(crate) struct Metadata {
    pub(crate) key_groups: Vec<KeyGroup>,
    pub(crate) shamir_threshold: usize,
    /// `lastmodified` as written (the MAC's AAD is its Go RFC 3339 re-rendering).
    pub(crate) lastmodified: Option<String>,
    pub(crate) mac: Option<String>,
    pub(crate) selection: Selection,
    pub(crate) mac_only_encrypted: bool,
    pub(crate) version: Option<String>,
}

/// Master key types other than age (reported, not usable).
const OTHER_KEY_TYPES: [&str; 6] = ["pgp", "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault"];

struct FieldReader<'a> {
    file: &'a str,
}

impl FieldReader<'_> {
    fn invalid(&self, field: &str, reason: &str) -> SopsError {
        SopsError::InvalidMetadata {
            file: self.file.to_owned(),
            field: field.to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// A string field; `null` and absence are `None`.
    fn string(&self, node: Option<&RawNode>, field: &str) -> Result<Option<String>, SopsError> {
        match node {
            None | Some(RawNode::Null) => Ok(None),
            Some(RawNode::Scalar(RawScalar { value, raw, .. })) => match value {
                Scalar::Str(s) => Ok(Some(s.clone())),
                // An unquoted YAML timestamp or version number: the text as written.
                _ => Ok(Some(raw.clone())),
            },
            Some(_) => Err(self.invalid(field, "expected a string")),
        }
    }

    fn list<'n>(&self, node: Option<&'n RawNode>, field: &str) -> Result<&'n [RawNode], SopsError> {
        match node {
            None | Some(RawNode::Null) => Ok(&[]),
            Some(RawNode::List(items)) => Ok(items),
            Some(_) => Err(self.invalid(field, "expected a list")),
        }
    }

    fn group(&self, node: &RawNode, field: &str) -> Result<KeyGroup, SopsError> {
        let mut age = Vec::new();
        for (i, item) in self
            .list(node.get("age"), &format!("{field}age"))?
            .iter()
            .enumerate()
        {
            let name = format!("{field}age[{i}]");
            if !matches!(item, RawNode::Map(_)) {
                return Err(self.invalid(&name, "expected a mapping with `recipient` and `enc`"));
            }
            let recipient = self
                .string(item.get("recipient"), &format!("{name}.recipient"))?
                .ok_or_else(|| self.invalid(&format!("{name}.recipient"), "missing"))?;
            let enc = self
                .string(item.get("enc"), &format!("{name}.enc"))?
                .ok_or_else(|| self.invalid(&format!("{name}.enc"), "missing"))?;
            age.push(AgeKey {
                recipient: recipient.trim().to_owned(),
                enc,
            });
        }
        let mut other = Vec::new();
        for kind in OTHER_KEY_TYPES {
            if !self
                .list(node.get(kind), &format!("{field}{kind}"))?
                .is_empty()
            {
                other.push(kind.to_owned());
            }
        }
        Ok(KeyGroup { age, other })
    }
}

fn as_usize(node: Option<&RawNode>) -> Option<Option<usize>> {
    match node {
        None | Some(RawNode::Null) => Some(None),
        Some(RawNode::Scalar(RawScalar { value, .. })) => match value {
            Scalar::Int(i) => usize::try_from(*i).ok().map(Some),
            Scalar::JsonNumber { float, .. } | Scalar::Float(float)
                if float.fract() == 0.0 && *float >= 0.0 && *float < 256.0 =>
            {
                Some(Some(*float as usize))
            }
            Scalar::Str(s) => s.trim().parse().ok().map(Some),
            _ => None,
        },
        Some(_) => None,
    }
}

fn as_bool(node: Option<&RawNode>) -> Option<bool> {
    match node {
        None | Some(RawNode::Null) => Some(false),
        Some(RawNode::Scalar(RawScalar { value, .. })) => match value {
            Scalar::Bool(b) => Some(*b),
            Scalar::Str(s) => match s.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" | "" => Some(false),
                _ => None,
            },
            _ => None,
        },
        Some(_) => None,
    }
}

/// Removes the top-level `sops` entry of the first document and parses it. Later documents
/// (multi-document YAML) carry a copy, which is removed too.
pub(crate) fn take(documents: &mut [Vec<RawEntry>], file: &str) -> Result<Metadata, SopsError> {
    let no_metadata = || SopsError::NoMetadata {
        file: file.to_owned(),
    };
    let mut sops = None;
    for (i, doc) in documents.iter_mut().enumerate() {
        if let Some(pos) = doc.iter().position(|e| e.key == "sops") {
            let entry = doc.remove(pos);
            if i == 0 {
                sops = Some(entry.value);
            }
        }
    }
    let sops = sops.ok_or_else(no_metadata)?;
    if !matches!(sops, RawNode::Map(_)) {
        return Err(no_metadata());
    }
    let ctx = FieldReader { file };

    let groups_node = ctx.list(sops.get("key_groups"), "key_groups")?;
    let key_groups = if groups_node.is_empty() {
        vec![ctx.group(&sops, "")?]
    } else {
        groups_node
            .iter()
            .enumerate()
            .map(|(i, g)| match g {
                RawNode::Map(_) => ctx.group(g, &format!("key_groups[{i}].")),
                _ => Err(ctx.invalid(&format!("key_groups[{i}]"), "expected a mapping")),
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let shamir_threshold = as_usize(sops.get("shamir_threshold"))
        .ok_or_else(|| ctx.invalid("shamir_threshold", "expected a non-negative integer"))?
        .unwrap_or(0);
    let mac_only_encrypted = as_bool(sops.get("mac_only_encrypted"))
        .ok_or_else(|| ctx.invalid("mac_only_encrypted", "expected a boolean"))?;

    let mut chosen = Vec::new();
    for field in SELECTION_FIELDS {
        if let Some(v) = ctx.string(sops.get(field), field)?
            && !v.is_empty()
        {
            chosen.push((field, v));
        }
    }
    if chosen.len() > 1 {
        return Err(ctx.invalid(
            "encrypted_*/unencrypted_*",
            "cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, \
             unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file",
        ));
    }
    let selection = match chosen.pop() {
        None => Selection::UnencryptedSuffix("_unencrypted".to_owned()),
        Some((field, value)) => {
            Selection::from_field(field, &value).map_err(|reason| ctx.invalid(field, &reason))?
        }
    };

    Ok(Metadata {
        key_groups,
        shamir_threshold,
        lastmodified: ctx.string(sops.get("lastmodified"), "lastmodified")?,
        mac: ctx
            .string(sops.get("mac"), "mac")?
            .filter(|m| !m.is_empty()),
        selection,
        mac_only_encrypted,
        version: ctx.string(sops.get("version"), "version")?,
    })
}

impl Metadata {
    /// Whether the writer (sops 3.13.2 and later) read JSON integers as `int` rather than
    /// float64. Unknown or missing versions read as older sops (float64).
    pub(crate) fn json_ints(&self) -> bool {
        let Some(v) = self.version.as_deref() else {
            return false;
        };
        let mut parts = v
            .trim_start_matches('v')
            .split(['.', '-', '+'])
            .map(|p| p.parse::<u64>().unwrap_or(0));
        let (a, b, c) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        (a, b, c) >= (3, 13, 2)
    }
}
