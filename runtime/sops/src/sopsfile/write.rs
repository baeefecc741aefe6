//! Writing a SOPS file: encrypting a new one (`sops encrypt`), and re-encrypting a decrypted
//! one under its own, a rotated or new recipients' key (`set`/`edit`/`rotate`/`updatekeys`).

use zeroize::Zeroizing;

use super::{EmitOptions, SopsFile, parse_plain};
use crate::cipher::DataKey;
use crate::error::SopsError;
use crate::mac::MacHasher;
use crate::masterkey::{KeyServices, KeySpec, MasterKey};
use crate::plain::{PlainItem, PlainNode};
use crate::rules::Selection;
use crate::{Format, MAX_FILE_SIZE};

/// How to encrypt a new file: recipients in key groups, partial-encryption option, output.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct EncryptConfig {
    /// Master keys per key group (one group unless Shamir is wanted); a group may mix types.
    pub key_groups: Vec<Vec<KeySpec>>,
    /// Groups needed to recover the key (only with ≥ 2 groups; default: all).
    pub shamir_threshold: Option<usize>,
    /// One of `unencrypted_suffix`, `encrypted_suffix`, `unencrypted_regex`,
    /// `encrypted_regex`, `unencrypted_comment_regex`, `encrypted_comment_regex` and its value
    /// (default: `unencrypted_suffix: _unencrypted`).
    pub selection: Option<(String, String)>,
    /// Only encrypted values enter the MAC.
    pub mac_only_encrypted: bool,
    /// Output indents.
    pub emit: EmitOptions,
    /// What non-age keys need (gpg, Vault token and allowlist, AWS credentials).
    pub services: KeyServices,
}

impl EncryptConfig {
    /// One key group with these age recipients, sops defaults otherwise.
    pub fn for_recipients(recipients: Vec<String>) -> Self {
        EncryptConfig {
            key_groups: vec![recipients.into_iter().map(KeySpec::Age).collect()],
            ..EncryptConfig::default()
        }
    }
}

pub(super) fn encrypt_error(message: String, code: i32) -> SopsError {
    SopsError::Encrypt { message, code }
}

/// Encrypts a plaintext file like `sops encrypt`: the encrypted file's bytes.
pub fn encrypt_plaintext(
    bytes: &[u8],
    format: Format,
    name: &str,
    config: &EncryptConfig,
) -> Result<Vec<u8>, SopsError> {
    if bytes.len() > MAX_FILE_SIZE {
        return Err(SopsError::FileTooLarge {
            file: name.to_owned(),
            limit: MAX_FILE_SIZE,
        });
    }
    let docs = parse_plain(bytes, format, name)?;
    if docs.is_empty() {
        return Err(encrypt_error(
            "File cannot be completely empty, it must contain at least one document".to_owned(),
            92,
        ));
    }
    let already = docs.iter().any(|d| match d {
        PlainNode::Map(items) => items.iter().any(|i| {
            matches!(i, PlainItem::Entry(k, _) if k == "sops"
                || format == Format::Dotenv && k.starts_with("sops_"))
        }),
        _ => false,
    });
    if already {
        return Err(encrypt_error(
            format!(
                "{name:?} contains a top-level entry called 'sops' (or, for flat formats, \
                 entries starting with 'sops_'): it is probably already encrypted. Use \
                 `agentsec secrets edit`, `set` or `rotate` on encrypted files."
            ),
            203,
        ));
    }
    let key = crate::encrypt::new_data_key()?;
    let selection = match (&config.selection, format) {
        (_, Format::Binary) => None,
        (None, _) => Some(Selection::UnencryptedSuffix("_unencrypted".to_owned())),
        (Some((field, value)), _) => Some(
            Selection::from_field(field, value)
                .map_err(|e| encrypt_error(format!("{field}: {e}"), 5))?,
        ),
    };
    let wrapped = wrap_key(
        &key,
        &config.key_groups,
        config.shamir_threshold,
        &config.services,
    )?;
    let out = seal_documents(
        &docs,
        &key,
        selection.as_ref(),
        config.mac_only_encrypted,
        &wrapped,
        config.shamir_threshold,
        crate::encrypt::WRITTEN_VERSION,
        format,
        config.emit,
    )?;
    Ok(out)
}

/// Wraps the data key (or its Shamir shares) for every master key, group by group.
fn wrap_key(
    key: &DataKey,
    groups: &[Vec<KeySpec>],
    threshold: Option<usize>,
    services: &KeyServices,
) -> Result<Vec<Vec<MasterKey>>, SopsError> {
    let groups: Vec<&Vec<KeySpec>> = groups.iter().filter(|g| !g.is_empty()).collect();
    if groups.is_empty() {
        return Err(encrypt_error(
            "no master keys: pass --age, --pgp, --hc-vault-transit or --kms, or add a creation \
             rule with `age:`, `pgp:`, `hc_vault_transit_uri:` or `kms:` to .sops.yaml"
                .to_owned(),
            111,
        ));
    }
    let parts: Vec<Zeroizing<Vec<u8>>> = if groups.len() == 1 {
        vec![Zeroizing::new(key.0.to_vec())]
    } else {
        let t = threshold.unwrap_or(groups.len());
        crate::shamir::split(&*key.0, groups.len(), t).map_err(|e| {
            encrypt_error(
                format!("could not split data key into parts for Shamir: {e}"),
                23,
            )
        })?
    };
    groups
        .iter()
        .zip(parts.iter())
        .map(|(g, part)| g.iter().map(|spec| spec.wrap(part, services)).collect())
        .collect()
}

/// Encrypts documents, computes and seals the MAC, builds metadata and emits.
#[expect(
    clippy::too_many_arguments,
    reason = "one private call site per command"
)]
fn seal_documents(
    docs: &[PlainNode],
    key: &DataKey,
    selection: Option<&Selection>,
    mac_only_encrypted: bool,
    wrapped: &[Vec<MasterKey>],
    threshold: Option<usize>,
    version: &str,
    format: Format,
    emit_opts: EmitOptions,
) -> Result<Vec<u8>, SopsError> {
    let binary = Selection::UnencryptedSuffix("\u{0}never".to_owned());
    let mut enc = crate::encrypt::Encrypter {
        key,
        selection: selection.unwrap_or(&binary),
        mac: MacHasher::new(mac_only_encrypted),
    };
    let encrypted: Vec<PlainNode> = docs
        .iter()
        .map(|d| enc.document(d))
        .collect::<Result<_, _>>()?;
    let mac = enc.mac.finish();
    let lastmodified = crate::gofmt::now_rfc3339();
    let mac_enc = crate::encrypt::seal(key, mac.as_bytes(), lastmodified.as_bytes(), "str")?;
    let meta = crate::encrypt::NewMetadata {
        groups: wrapped,
        shamir_threshold: threshold.unwrap_or(wrapped.len()),
        lastmodified: &lastmodified,
        mac: &mac_enc,
        selection: selection.map(Selection::field),
        mac_only_encrypted,
        version,
    }
    .tree();
    crate::encrypt::emit_encrypted(
        encrypted,
        &meta,
        format,
        emit_opts.yaml_indent,
        emit_opts.json_indent,
    )
}

impl SopsFile {
    /// Re-encrypts the (possibly edited) documents under the same data key and master keys,
    /// with a new MAC and `lastmodified` (`sops set`/`unset`/`edit`): the wrapped keys are kept
    /// as they are, as sops keeps them, so no key service is asked. With `rotate`, a new data
    /// key is generated and wrapped for the same master keys (`sops rotate`).
    pub fn reencrypt(&self, rotate: bool, emit: EmitOptions) -> Result<Vec<u8>, SopsError> {
        let threshold = (self.meta.shamir_threshold > 0).then_some(self.meta.shamir_threshold);
        if rotate {
            let fresh = crate::encrypt::new_data_key()?;
            let threshold = threshold.map(|t| t.min(self.meta.key_groups.len().max(1)));
            let wrapped = wrap_key(&fresh, &self.key_specs(), threshold, &self.services)?;
            return self.seal_with(&fresh, &wrapped, threshold, emit);
        }
        let kept: Vec<Vec<MasterKey>> = self
            .meta
            .key_groups
            .iter()
            .map(|g| g.keys.clone())
            .filter(|g| !g.is_empty())
            .collect();
        if kept.is_empty() {
            return Err(encrypt_error(
                "the file has no master key this build can write back".to_owned(),
                111,
            ));
        }
        self.seal_with(&self.key, &kept, threshold.or(Some(kept.len())), emit)
    }

    /// The file's master keys per group, as keys to encrypt for (what `rotate` re-wraps for,
    /// and what `updatekeys` compares with the creation rule).
    pub fn key_specs(&self) -> Vec<Vec<KeySpec>> {
        self.meta
            .key_groups
            .iter()
            .map(|g| g.keys.iter().map(MasterKey::spec).collect())
            .collect()
    }

    /// Re-wraps the data key for new master keys (`sops updatekeys`); values, MAC and
    /// `lastmodified` are re-written unchanged in meaning.
    pub fn with_recipients(
        &self,
        groups: &[Vec<KeySpec>],
        threshold: Option<usize>,
        emit: EmitOptions,
    ) -> Result<Vec<u8>, SopsError> {
        let threshold = threshold.or(if self.meta.shamir_threshold > 0 {
            Some(self.meta.shamir_threshold.min(groups.len().max(1)))
        } else {
            None
        });
        let wrapped = wrap_key(&self.key, groups, threshold, &self.services)?;
        self.seal_with(&self.key, &wrapped, threshold, emit)
    }

    fn seal_with(
        &self,
        key: &DataKey,
        wrapped: &[Vec<MasterKey>],
        threshold: Option<usize>,
        emit: EmitOptions,
    ) -> Result<Vec<u8>, SopsError> {
        let binary = self.format == Format::Binary;
        seal_documents(
            &self.docs,
            key,
            if binary {
                None
            } else {
                Some(&self.meta.selection)
            },
            self.meta.mac_only_encrypted,
            wrapped,
            threshold,
            self.meta
                .version
                .as_deref()
                .unwrap_or(crate::encrypt::WRITTEN_VERSION),
            self.format,
            emit,
        )
    }
}
