//! The `sops` metadata section (SPEC section 6): master keys, key groups, MAC, partial
//! encryption rules. Tolerant of field order and of old styles (`kms: []`, `kms: null`).

use crate::doc::{RawEntry, RawNode, RawScalar, Scalar};
use crate::error::SopsError;
use crate::rules::SELECTION_FIELDS;
use crate::rules::Selection;

use crate::masterkey::MasterKey;

/// A key group: its master keys (age, PGP, Vault Transit, AWS KMS, in the file's order per
/// type), plus the names of master key types present that this crate cannot use (reported).
pub(crate) struct KeyGroup {
    pub(crate) keys: Vec<MasterKey>,
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

/// Master key types that have no implementation here (reported by name, not usable): no local
/// stand-in exists to test them against (see README, "Master keys").
const OTHER_KEY_TYPES: [&str; 3] = ["gcp_kms", "hckms", "azure_kv"];

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

    /// A required string field of a master key entry.
    fn required(&self, item: &RawNode, name: &str, key: &str) -> Result<String, SopsError> {
        self.string(item.get(key), &format!("{name}.{key}"))?
            .ok_or_else(|| self.invalid(&format!("{name}.{key}"), "missing"))
    }

    /// The entries of one master key type in a group, each checked to be a mapping.
    fn entries<'n>(
        &self,
        node: &'n RawNode,
        field: &str,
        kind: &str,
        fields: &str,
    ) -> Result<Vec<(String, &'n RawNode)>, SopsError> {
        let mut out = Vec::new();
        for (i, item) in self
            .list(node.get(kind), &format!("{field}{kind}"))?
            .iter()
            .enumerate()
        {
            let name = format!("{field}{kind}[{i}]");
            if !matches!(item, RawNode::Map(_)) {
                return Err(self.invalid(&name, &format!("expected a mapping with {fields}")));
            }
            out.push((name, item));
        }
        Ok(out)
    }

    fn group(&self, node: &RawNode, field: &str) -> Result<KeyGroup, SopsError> {
        let mut keys = Vec::new();
        for (name, item) in self.entries(node, field, "age", "`recipient` and `enc`")? {
            keys.push(MasterKey::Age {
                recipient: self.required(item, &name, "recipient")?.trim().to_owned(),
                enc: self.required(item, &name, "enc")?,
            });
        }
        for (name, item) in self.entries(node, field, "pgp", "`fp` and `enc`")? {
            keys.push(MasterKey::Pgp {
                fp: self.required(item, &name, "fp")?.trim().to_owned(),
                created_at: self
                    .string(item.get("created_at"), &format!("{name}.created_at"))?
                    .unwrap_or_default(),
                enc: self.required(item, &name, "enc")?,
            });
        }
        for (name, item) in self.entries(
            node,
            field,
            "hc_vault",
            "`vault_address`, `engine_path`, `key_name` and `enc`",
        )? {
            keys.push(MasterKey::HcVault {
                vault_address: self.required(item, &name, "vault_address")?,
                engine_path: self.required(item, &name, "engine_path")?,
                key_name: self.required(item, &name, "key_name")?,
                created_at: self
                    .string(item.get("created_at"), &format!("{name}.created_at"))?
                    .unwrap_or_default(),
                enc: self.required(item, &name, "enc")?,
            });
        }
        for (name, item) in self.entries(node, field, "kms", "`arn` and `enc`")? {
            let mut context = Vec::new();
            match item.get("context") {
                None | Some(RawNode::Null) => {}
                Some(RawNode::Map(entries)) => {
                    for e in entries {
                        let key = format!("{name}.context.{}", e.key);
                        let v = self
                            .string(Some(&e.value), &key)?
                            .ok_or_else(|| self.invalid(&key, "expected a string"))?;
                        context.push((e.key.clone(), v));
                    }
                }
                Some(_) => {
                    return Err(self.invalid(&format!("{name}.context"), "expected a mapping"));
                }
            }
            keys.push(MasterKey::Kms {
                arn: self.required(item, &name, "arn")?.trim().to_owned(),
                role: self
                    .string(item.get("role"), &format!("{name}.role"))?
                    .filter(|r| !r.is_empty()),
                context,
                created_at: self
                    .string(item.get("created_at"), &format!("{name}.created_at"))?
                    .unwrap_or_default(),
                enc: self.required(item, &name, "enc")?,
                aws_profile: self
                    .string(item.get("aws_profile"), &format!("{name}.aws_profile"))?
                    .filter(|p| !p.is_empty()),
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
        Ok(KeyGroup { keys, other })
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
