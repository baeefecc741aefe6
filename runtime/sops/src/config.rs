//! `.sops.yaml`: found from the current directory upward like sops; the first creation rule
//! whose `path_regex` matches the file gives its recipients and partial-encryption options;
//! `stores:` gives output indents.

use std::path::{Path, PathBuf};

use crate::doc::{RawNode, RawScalar, Scalar};
use crate::error::SopsError;
use crate::masterkey::{KeyServices, KeySpec, KmsKey};
use crate::rules::SELECTION_FIELDS;
use crate::sopsfile::{EmitOptions, EncryptConfig};

/// How many parent directories are searched for `.sops.yaml` (sops: 100).
const MAX_CONFIG_DEPTH: usize = 100;

/// Bytes of a `.sops.yaml`. Real ones are a few KiB (a handful of creation
/// rules); 1 MiB bounds what a stray huge file or `/dev/zero` costs.
pub const MAX_CONFIG_SIZE: u64 = 1 << 20;

/// A loaded `.sops.yaml`.
#[derive(Debug)]
pub struct SopsConfig {
    /// Where it was found.
    pub path: PathBuf,
    rules: Vec<RawNode>,
    /// Output indents from `stores:`.
    pub emit: EmitOptions,
}

/// The creation rule chosen for a file.
#[derive(Debug, Clone)]
pub struct CreationRule {
    /// Recipients and options to encrypt with.
    pub config: EncryptConfig,
}

fn config_error(path: &Path, message: String) -> SopsError {
    SopsError::Encrypt {
        message: format!("{}: {message}", path.display()),
        code: 5,
    }
}

fn text(node: Option<&RawNode>) -> Option<String> {
    match node {
        Some(RawNode::Scalar(RawScalar { value, raw, .. })) => Some(match value {
            Scalar::Str(s) => s.clone(),
            _ => raw.clone(),
        }),
        _ => None,
    }
}

/// A key list: a comma-separated string or (sops 3.11+) a list of strings.
fn key_list(node: Option<&RawNode>) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |s: &str| {
        for part in s.split(',') {
            let p = part.trim();
            if !p.is_empty() && !out.iter().any(|o: &String| o == p) {
                out.push(p.to_owned());
            }
        }
    };
    match node {
        Some(RawNode::List(items)) => {
            for i in items {
                if let Some(s) = text(Some(i)) {
                    add(&s);
                }
            }
        }
        other => {
            if let Some(s) = text(other) {
                add(&s);
            }
        }
    }
    out
}

impl SopsConfig {
    /// Searches `.sops.yaml` in `start` and its parents.
    pub fn find(start: &Path) -> Result<Option<SopsConfig>, SopsError> {
        let mut dir = Some(start.to_path_buf());
        for _ in 0..MAX_CONFIG_DEPTH {
            let Some(d) = dir else { break };
            let candidate = d.join(".sops.yaml");
            if candidate.is_file() {
                return SopsConfig::load(&candidate).map(Some);
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(None)
    }

    /// Loads a config file.
    pub fn load(path: &Path) -> Result<SopsConfig, SopsError> {
        let mut bytes = Vec::new();
        agentsec_policy::bounded::read_file(path, MAX_CONFIG_SIZE, &mut bytes)
            .map_err(|e| config_error(path, e.to_string()))?;
        let text =
            std::str::from_utf8(&bytes).map_err(|_| config_error(path, "not UTF-8".to_owned()))?;
        let raw = crate::stores::yaml::parse(text, &path.display().to_string())?;
        let doc = RawNode::Map(raw.documents.into_iter().next().unwrap_or_default());
        let rules = match doc.get("creation_rules") {
            Some(RawNode::List(items)) => items.clone(),
            _ => Vec::new(),
        };
        let indent = |store: &str| -> Option<i64> {
            match doc.get("stores")?.get(store)?.get("indent")? {
                RawNode::Scalar(RawScalar {
                    value: Scalar::Int(i),
                    ..
                }) => Some(*i),
                _ => None,
            }
        };
        let yaml_indent = indent("yaml")
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(4);
        let json_indent = indent("json").and_then(|i| usize::try_from(i).ok());
        Ok(SopsConfig {
            path: path.to_path_buf(),
            rules,
            emit: EmitOptions::new(yaml_indent, json_indent),
        })
    }

    /// The first creation rule matching `file` (its absolute path relative to the config's
    /// directory, as sops computes it). `Ok(None)`: the config has no creation rules.
    pub fn rule_for(&self, file: &Path) -> Result<Option<CreationRule>, SopsError> {
        if self.rules.is_empty() {
            return Ok(None);
        }
        let abs = std::path::absolute(file).map_err(|e| config_error(file, e.to_string()))?;
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let rel = abs.strip_prefix(&dir).unwrap_or(&abs);
        let rel = rel.to_string_lossy();
        for rule in &self.rules {
            if let Some(re) = text(rule.get("path_regex")) {
                let re = regex::Regex::new(&re).map_err(|e| {
                    config_error(&self.path, format!("can not compile regexp: {e}"))
                })?;
                if !re.is_match(&rel) {
                    continue;
                }
            }
            return self.to_rule(rule).map(Some);
        }
        Err(config_error(
            &self.path,
            "error loading config: no matching creation rules found".to_owned(),
        ))
    }

    /// A `kms` entry of a key group: `{arn, role, context, aws_profile}`.
    fn kms_entry(&self, k: &RawNode, group: usize, index: usize) -> Result<KmsKey, SopsError> {
        let field = format!("key_groups[{group}].kms[{index}]");
        let arn = text(k.get("arn"))
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| config_error(&self.path, format!("{field}.arn is missing")))?;
        let mut context = Vec::new();
        match k.get("context") {
            None | Some(RawNode::Null) => {}
            Some(RawNode::Map(entries)) => {
                for e in entries {
                    let v = text(Some(&e.value)).ok_or_else(|| {
                        config_error(
                            &self.path,
                            format!("{field}.context.{} must be a string", e.key),
                        )
                    })?;
                    context.push((e.key.clone(), v));
                }
            }
            Some(_) => {
                return Err(config_error(
                    &self.path,
                    format!("{field}.context must be a mapping"),
                ));
            }
        }
        Ok(KmsKey {
            arn: arn.trim().to_owned(),
            role: text(k.get("role")).filter(|r| !r.is_empty()),
            context,
            aws_profile: text(k.get("aws_profile")).filter(|p| !p.is_empty()),
        })
    }

    /// Key types of sops that this build does not support, named in the error.
    fn unsupported_keys(&self, node: &RawNode) -> Result<(), SopsError> {
        for kind in ["gcp_kms", "azure_keyvault", "hckms"] {
            let present = match node.get(kind) {
                None | Some(RawNode::Null) => false,
                Some(RawNode::List(l)) => !l.is_empty(),
                Some(other) => text(Some(other)).is_some_and(|t| !t.trim().is_empty()),
            };
            if present {
                return Err(config_error(
                    &self.path,
                    format!(
                        "`{kind}` keys are not supported by agentsec (age, pgp, kms and \
                         hc_vault_transit_uri are); encrypt with the real sops, or use one of \
                         the supported key types"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn to_rule(&self, rule: &RawNode) -> Result<CreationRule, SopsError> {
        let mut key_groups = Vec::new();
        if let Some(RawNode::List(groups)) = rule.get("key_groups") {
            for (i, g) in groups.iter().enumerate() {
                if g.get("merge").is_some() {
                    return Err(config_error(
                        &self.path,
                        format!(
                            "key_groups[{i}].merge is not supported: list the keys of the group \
                             directly"
                        ),
                    ));
                }
                let mut group: Vec<KeySpec> = Vec::new();
                group.extend(key_list(g.get("age")).into_iter().map(KeySpec::Age));
                group.extend(key_list(g.get("pgp")).into_iter().map(KeySpec::Pgp));
                if let Some(RawNode::List(kms)) = g.get("kms") {
                    for (j, k) in kms.iter().enumerate() {
                        group.push(KeySpec::Kms(self.kms_entry(k, i, j)?));
                    }
                }
                group.extend(
                    key_list(g.get("hc_vault"))
                        .into_iter()
                        .map(KeySpec::HcVaultTransit),
                );
                self.unsupported_keys(g)?;
                key_groups.push(group);
            }
        } else {
            let mut group: Vec<KeySpec> = Vec::new();
            group.extend(key_list(rule.get("age")).into_iter().map(KeySpec::Age));
            group.extend(key_list(rule.get("pgp")).into_iter().map(KeySpec::Pgp));
            let profile = text(rule.get("aws_profile")).filter(|p| !p.is_empty());
            group.extend(key_list(rule.get("kms")).into_iter().map(|k| {
                let mut key = KmsKey::parse(&k, Vec::new());
                key.aws_profile = profile.clone();
                KeySpec::Kms(key)
            }));
            group.extend(
                key_list(rule.get("hc_vault_transit_uri"))
                    .into_iter()
                    .map(KeySpec::HcVaultTransit),
            );
            self.unsupported_keys(rule)?;
            key_groups.push(group);
        }
        let mut selection = None;
        for field in SELECTION_FIELDS {
            if let Some(v) = text(rule.get(field)).filter(|v| !v.is_empty()) {
                if selection.is_some() {
                    return Err(config_error(
                        &self.path,
                        "Cannot use more than one of encrypted_suffix, unencrypted_suffix, \
                         encrypted_regex, unencrypted_regex, encrypted_comment_regex, or \
                         unencrypted_comment_regex in the same file"
                            .to_owned(),
                    ));
                }
                selection = Some((field.to_owned(), v));
            }
        }
        let shamir_threshold = text(rule.get("shamir_threshold")).and_then(|t| t.parse().ok());
        let mac_only_encrypted = text(rule.get("mac_only_encrypted")).as_deref() == Some("true");
        Ok(CreationRule {
            config: EncryptConfig {
                key_groups,
                shamir_threshold,
                selection,
                mac_only_encrypted,
                emit: self.emit,
                services: KeyServices::default(),
            },
        })
    }
}
