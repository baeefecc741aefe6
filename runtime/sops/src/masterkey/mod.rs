//! Master keys: what wraps the data key (or a Shamir share) in a file's `sops` metadata.
//!
//! One [`MasterKey`] enum covers every type this crate can use, so key groups and Shamir work
//! the same across types (a file may have an age group, a PGP group and a Vault Transit group
//! with threshold 2):
//! - `age` (in process, [`crate::Identities`]),
//! - `pgp` through the real `gpg` ([`pgp`]: GnuPG 2.1+ keeps secret keys in its agent, so only
//!   gpg can use smartcards, pinentry and cached passphrases),
//! - `hc_vault`: Vault / OpenBao Transit over HTTP ([`vault`]), only to allowlisted addresses,
//! - `kms`: AWS KMS over HTTP with SigV4 ([`kms`]).
//!
//! `gcp_kms`, `azure_kv` and `hckms` are parsed only far enough to be named in errors: no
//! local stand-in exists to test them against, so they are not supported.
//!
//! What a master key needs besides the file (gpg's path, a Vault token and allowlist, AWS
//! credentials) is a [`KeyServices`], found in the environment beside the age identities.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::SopsError;
use crate::keys::Identities;
use crate::plain::{PlainItem, PlainNode, Value};

mod http;
pub(crate) mod kms;
pub(crate) mod pgp;
mod services;
mod sigv4;
pub(crate) mod vault;

pub use kms::KmsKey;
pub use services::{AwsCredentials, KeyServices, Token};

/// One master key of a key group, as the metadata holds it.
#[derive(Clone)]
pub(crate) enum MasterKey {
    /// `age`: an age recipient.
    Age { recipient: String, enc: String },
    /// `pgp`: a key fingerprint; `enc` is an armored OpenPGP message.
    Pgp {
        fp: String,
        created_at: String,
        enc: String,
    },
    /// `hc_vault`: a Vault Transit key; `enc` is `vault:v1:…`.
    HcVault {
        vault_address: String,
        engine_path: String,
        key_name: String,
        created_at: String,
        enc: String,
    },
    /// `kms`: an AWS KMS key; `enc` is the base64 `CiphertextBlob`.
    Kms {
        arn: String,
        role: Option<String>,
        context: Vec<(String, String)>,
        created_at: String,
        enc: String,
        aws_profile: Option<String>,
    },
}

/// A master key to encrypt for: what `--age`, `--pgp`, `--hc-vault-transit`, `--kms` and
/// `.sops.yaml`'s `age`, `pgp`, `hc_vault_transit_uri`, `kms` name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySpec {
    /// An age recipient (`age1…`, `ssh-ed25519 …`, `ssh-rsa …`).
    Age(String),
    /// An OpenPGP key fingerprint (40 hex digits), encrypted to through `gpg`.
    Pgp(String),
    /// A Vault Transit key URI: `https://vault:8200/v1/<engine>/keys/<key>`.
    HcVaultTransit(String),
    /// An AWS KMS key.
    Kms(KmsKey),
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Age(r) => write!(f, "age: {r}"),
            KeySpec::Pgp(fp) => write!(f, "pgp: {fp}"),
            KeySpec::HcVaultTransit(uri) => write!(f, "hc_vault: {uri}"),
            KeySpec::Kms(k) => write!(f, "kms: {}", k.label()),
        }
    }
}

impl KeySpec {
    /// Wraps `payload` (the data key or a Shamir share) for this key.
    pub(crate) fn wrap(
        &self,
        payload: &[u8],
        services: &KeyServices,
    ) -> Result<MasterKey, SopsError> {
        let created_at = crate::gofmt::now_rfc3339();
        Ok(match self {
            KeySpec::Age(r) => MasterKey::Age {
                recipient: r.trim().to_owned(),
                enc: crate::encrypt::wrap_for(r, payload)?,
            },
            KeySpec::Pgp(fp) => {
                let fp = pgp::normalize_fingerprint(fp).map_err(|why| wrap_error(self, why))?;
                let enc = pgp::encrypt(&fp, payload, services).map_err(|w| wrap_error(self, w))?;
                MasterKey::Pgp {
                    fp,
                    created_at,
                    enc,
                }
            }
            KeySpec::HcVaultTransit(uri) => {
                let key = vault::TransitKey::from_uri(uri).map_err(|w| wrap_error(self, w))?;
                let enc = key
                    .encrypt(payload, services)
                    .map_err(|w| wrap_error(self, w))?;
                MasterKey::HcVault {
                    vault_address: key.address,
                    engine_path: key.engine_path,
                    key_name: key.key_name,
                    created_at,
                    enc,
                }
            }
            KeySpec::Kms(k) => {
                let enc = k
                    .encrypt(payload, services)
                    .map_err(|w| wrap_error(self, w))?;
                MasterKey::Kms {
                    arn: k.arn.clone(),
                    role: k.role.clone(),
                    context: k.context.clone(),
                    created_at,
                    enc,
                    aws_profile: k.aws_profile.clone(),
                }
            }
        })
    }
}

fn wrap_error(spec: &KeySpec, why: String) -> SopsError {
    SopsError::Encrypt {
        message: format!("could not encrypt the data key for {spec}: {why}"),
        code: 23,
    }
}

impl MasterKey {
    /// The metadata field of this key type.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            MasterKey::Age { .. } => "age",
            MasterKey::Pgp { .. } => "pgp",
            MasterKey::HcVault { .. } => "hc_vault",
            MasterKey::Kms { .. } => "kms",
        }
    }

    /// How reports name the key: the recipient, fingerprint, Transit URI or ARN (all public).
    pub(crate) fn label(&self) -> String {
        match self {
            MasterKey::Age { recipient, .. } => recipient.clone(),
            MasterKey::Pgp { fp, .. } => format!("pgp {fp}"),
            MasterKey::HcVault {
                vault_address,
                engine_path,
                key_name,
                ..
            } => format!("hc_vault {vault_address}/v1/{engine_path}/keys/{key_name}"),
            MasterKey::Kms { arn, .. } => format!("kms {arn}"),
        }
    }

    /// The key to encrypt for again (`rotate`, `updatekeys`).
    pub(crate) fn spec(&self) -> KeySpec {
        match self {
            MasterKey::Age { recipient, .. } => KeySpec::Age(recipient.clone()),
            MasterKey::Pgp { fp, .. } => KeySpec::Pgp(fp.clone()),
            MasterKey::HcVault {
                vault_address,
                engine_path,
                key_name,
                ..
            } => {
                KeySpec::HcVaultTransit(format!("{vault_address}/v1/{engine_path}/keys/{key_name}"))
            }
            MasterKey::Kms {
                arn,
                role,
                context,
                aws_profile,
                ..
            } => KeySpec::Kms(KmsKey {
                arn: arn.clone(),
                role: role.clone(),
                context: context.clone(),
                aws_profile: aws_profile.clone(),
            }),
        }
    }

    /// Unwraps this key's part of the data key; the error is a one-line reason for the
    /// report (never key material).
    pub(crate) fn unwrap(&self, ids: &Identities) -> Result<Zeroizing<Vec<u8>>, String> {
        let services = ids.services();
        match self {
            MasterKey::Age { enc, .. } => {
                if ids.is_empty() {
                    return Err("no usable age identity loaded".to_owned());
                }
                crate::datakey::unwrap_age(enc, ids)
            }
            MasterKey::Pgp { enc, .. } => pgp::decrypt(enc, services),
            MasterKey::HcVault {
                vault_address,
                engine_path,
                key_name,
                enc,
                ..
            } => vault::TransitKey {
                address: vault_address.clone(),
                engine_path: engine_path.clone(),
                key_name: key_name.clone(),
            }
            .decrypt(enc, services),
            MasterKey::Kms {
                arn,
                role,
                context,
                enc,
                aws_profile,
                ..
            } => KmsKey {
                arn: arn.clone(),
                role: role.clone(),
                context: context.clone(),
                aws_profile: aws_profile.clone(),
            }
            .decrypt(enc, services),
        }
    }

    /// The metadata entry, fields in sops 3.11's order for the type.
    pub(crate) fn entry(&self) -> PlainNode {
        let s = |k: &str, v: &str| {
            PlainItem::Entry(k.to_owned(), PlainNode::Leaf(Value::str(v), false))
        };
        PlainNode::Map(match self {
            MasterKey::Age { recipient, enc } => vec![s("recipient", recipient), s("enc", enc)],
            MasterKey::Pgp {
                fp,
                created_at,
                enc,
            } => vec![s("created_at", created_at), s("enc", enc), s("fp", fp)],
            MasterKey::HcVault {
                vault_address,
                engine_path,
                key_name,
                created_at,
                enc,
            } => vec![
                s("vault_address", vault_address),
                s("engine_path", engine_path),
                s("key_name", key_name),
                s("created_at", created_at),
                s("enc", enc),
            ],
            MasterKey::Kms {
                arn,
                role,
                context,
                created_at,
                enc,
                aws_profile,
            } => {
                let mut m = vec![s("arn", arn)];
                if let Some(r) = role {
                    m.push(s("role", r));
                }
                if !context.is_empty() {
                    m.push(PlainItem::Entry(
                        "context".to_owned(),
                        PlainNode::Map(context.iter().map(|(k, v)| s(k, v)).collect()),
                    ));
                }
                m.push(s("created_at", created_at));
                m.push(s("enc", enc));
                m.push(s("aws_profile", aws_profile.as_deref().unwrap_or("")));
                m
            }
        })
    }
}

/// The metadata list of one key type from a group's keys (in group order).
pub(crate) fn list_of(keys: &[MasterKey], kind: &str) -> PlainNode {
    PlainNode::List(
        keys.iter()
            .filter(|k| k.kind() == kind)
            .map(MasterKey::entry)
            .collect(),
    )
}

/// Whether `keys` has a key of this type.
pub(crate) fn has(keys: &[MasterKey], kind: &str) -> bool {
    keys.iter().any(|k| k.kind() == kind)
}
