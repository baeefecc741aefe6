//! Encryption (sops `Tree.Encrypt` + `EncryptTree`): values and comments under the data key,
//! the MAC, the data key wrapped for every age recipient, and the metadata in sops 3.11's
//! layout for each store.

use std::io::Write as _;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U32;
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, KeyInit, Nonce};
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::Format;
use crate::cipher::DataKey;
use crate::decrypt::aad;
use crate::error::SopsError;
use crate::mac::MacHasher;
use crate::masterkey::{MasterKey, has, list_of};
use crate::plain::{PlainItem, PlainNode, Value};
use crate::rules::{CommentStack, Selection};

/// The `version` written into new files: the sops release whose format this crate writes.
pub(crate) const WRITTEN_VERSION: &str = "3.11.0";

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, SopsError> {
    let mut b = Zeroizing::new([0u8; N]);
    getrandom::fill(&mut *b).map_err(|e| SopsError::Encrypt {
        message: format!("the operating system's random generator failed: {e}"),
        code: 23,
    })?;
    Ok(b)
}

/// A fresh 32-byte data key.
pub(crate) fn new_data_key() -> Result<DataKey, SopsError> {
    Ok(DataKey(random::<32>()?))
}

/// `ENC[AES256_GCM,…]` of `plain` with a fresh 32-byte IV.
pub(crate) fn seal(
    key: &DataKey,
    plain: &[u8],
    aad: &[u8],
    kind: &str,
) -> Result<String, SopsError> {
    let iv = random::<32>()?;
    let key_bytes: &[u8; 32] = &key.0;
    let mut buf = Zeroizing::new(plain.to_vec());
    let tag = AesGcm::<Aes256, U32>::new(key_bytes.into())
        .encrypt_in_place_detached(Nonce::<U32>::from_slice(&*iv), aad, &mut buf)
        .map_err(|_| SopsError::Encrypt {
            message: "AES-GCM encryption failed".to_owned(),
            code: 23,
        })?;
    let e = base64::engine::general_purpose::STANDARD;
    Ok(format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
        e.encode(&*buf),
        e.encode(*iv),
        e.encode(tag)
    ))
}

/// Walks plaintext documents and encrypts them in place.
pub(crate) struct Encrypter<'a> {
    pub(crate) key: &'a DataKey,
    pub(crate) selection: &'a Selection,
    pub(crate) mac: MacHasher,
}

impl Encrypter<'_> {
    pub(crate) fn document(&mut self, doc: &PlainNode) -> Result<PlainNode, SopsError> {
        let mut keys = Vec::new();
        let mut comments = CommentStack::new();
        self.node(doc, &mut keys, &mut comments)
    }

    fn comment(
        &mut self,
        text: &str,
        keys: &[String],
        comments: &CommentStack,
    ) -> Result<Option<String>, SopsError> {
        if text.is_empty() || !self.selection.should_encrypt(keys, comments, true) {
            return Ok(None);
        }
        seal(self.key, text.as_bytes(), aad(keys).as_bytes(), "comment").map(Some)
    }

    fn node(
        &mut self,
        node: &PlainNode,
        keys: &mut Vec<String>,
        comments: &mut CommentStack,
    ) -> Result<PlainNode, SopsError> {
        Ok(match node {
            PlainNode::Null => PlainNode::Null,
            PlainNode::Comment(c) => match self.comment(c, keys, comments)? {
                // An encrypted comment element of a sequence is stored as a string.
                Some(enc) => PlainNode::Leaf(Value::str(&enc), true),
                None => PlainNode::Comment(c.clone()),
            },
            PlainNode::Map(items) => {
                comments.push(Vec::new());
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        PlainItem::Comment(c) => {
                            if let Some(level) = comments.last_mut() {
                                level.push(c.to_string());
                            }
                            let text = match self.comment(c, keys, comments)? {
                                Some(enc) => Zeroizing::new(enc),
                                None => c.clone(),
                            };
                            out.push(PlainItem::Comment(text));
                        }
                        PlainItem::Entry(k, v) => {
                            keys.push(k.clone());
                            let v = self.node(v, keys, comments)?;
                            keys.pop();
                            if let Some(level) = comments.last_mut() {
                                level.clear();
                            }
                            out.push(PlainItem::Entry(k.clone(), v));
                        }
                    }
                }
                comments.pop();
                PlainNode::Map(out)
            }
            PlainNode::List(items) => {
                comments.push(Vec::new());
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let is_comment = matches!(item, PlainNode::Comment(_));
                    if let (PlainNode::Comment(c), Some(level)) = (item, comments.last_mut()) {
                        level.push(c.to_string());
                    }
                    out.push(self.node(item, keys, comments)?);
                    if !is_comment && let Some(level) = comments.last_mut() {
                        level.clear();
                    }
                }
                comments.pop();
                PlainNode::List(out)
            }
            PlainNode::Leaf(v, _) => {
                let encrypted = self.selection.should_encrypt(keys, comments, false);
                let bytes = v.to_bytes();
                self.mac.leaf(encrypted, &bytes);
                if !encrypted || matches!(v, Value::Str(b) if b.is_empty()) {
                    return Ok(PlainNode::Leaf(v.duplicate(), false));
                }
                let enc = seal(self.key, &bytes, aad(keys).as_bytes(), v.type_name())?;
                PlainNode::Leaf(Value::str(&enc), true)
            }
        })
    }
}

/// Wraps `payload` (the data key or a Shamir share) for one age recipient: an armored age
/// file, as sops' age key source writes it.
pub(crate) fn wrap_for(recipient: &str, payload: &[u8]) -> Result<String, SopsError> {
    let bad = |why: String| SopsError::Encrypt {
        message: format!("age recipient {recipient:?}: {why}"),
        code: 111,
    };
    let r = parse_recipient(recipient).map_err(bad)?;
    let enc = age::Encryptor::with_recipients(std::iter::once(r.as_ref()))
        .map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(|e| bad(e.to_string()))?;
    let mut w = enc.wrap_output(armor).map_err(|e| bad(e.to_string()))?;
    w.write_all(payload).map_err(|e| bad(e.to_string()))?;
    w.finish()
        .and_then(|a| a.finish())
        .map_err(|e| bad(e.to_string()))?;
    let mut s = String::from_utf8(out).map_err(|_| bad("armor is not text".to_owned()))?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}

/// An age recipient from its text: `age1…` (X25519), `ssh-ed25519 …` or `ssh-rsa …` (an
/// OpenSSH public key line; a trailing comment is allowed and kept in the metadata, as sops
/// keeps it). Post-quantum and plugin recipients are named in the error.
pub(crate) fn parse_recipient(r: &str) -> Result<Box<dyn age::Recipient>, String> {
    let r = r.trim();
    if r.starts_with("age1pq1") {
        return Err(
            "post-quantum hybrid recipients (age1pq1…) are not supported by the age crate \
             this build uses"
                .to_owned(),
        );
    }
    if r.starts_with("ssh-") {
        return r
            .parse::<age::ssh::Recipient>()
            .map(|x| Box::new(x) as Box<dyn age::Recipient>)
            .map_err(|e| match e {
                age::ssh::ParseRecipientKeyError::Unsupported(t) => {
                    format!("SSH key type {t} is not supported (only ssh-ed25519 and ssh-rsa)")
                }
                age::ssh::ParseRecipientKeyError::RsaModulusTooSmall => {
                    "ssh-rsa key is too small (under 2048 bits)".to_owned()
                }
                age::ssh::ParseRecipientKeyError::RsaModulusTooLarge => {
                    "ssh-rsa key is too large".to_owned()
                }
                _ => "not a valid SSH public key".to_owned(),
            });
    }
    if r.starts_with("age1") && r.matches('1').count() > 1 && !is_x25519(r) {
        return Err("age plugin recipients are not supported".to_owned());
    }
    r.parse::<age::x25519::Recipient>()
        .map(|x| Box::new(x) as Box<dyn age::Recipient>)
        .map_err(|e| format!("not a valid age recipient: {e}"))
}

fn is_x25519(r: &str) -> bool {
    r.parse::<age::x25519::Recipient>().is_ok()
}

/// The file's sops metadata, as the tree sops 3.11 writes (YAML/JSON struct order).
pub(crate) struct NewMetadata<'a> {
    pub(crate) groups: &'a [Vec<MasterKey>],
    pub(crate) shamir_threshold: usize,
    pub(crate) lastmodified: &'a str,
    pub(crate) mac: &'a str,
    pub(crate) selection: Option<(&'static str, String)>,
    pub(crate) mac_only_encrypted: bool,
    pub(crate) version: &'a str,
}

fn s(text: &str) -> PlainNode {
    PlainNode::Leaf(Value::str(text), false)
}

impl NewMetadata<'_> {
    pub(crate) fn tree(&self) -> PlainNode {
        let mut m = Vec::new();
        let mut pgp_top = None;
        if self.groups.len() > 1 {
            m.push(PlainItem::Entry(
                "shamir_threshold".to_owned(),
                PlainNode::Leaf(Value::Int(self.shamir_threshold as i64), false),
            ));
            m.push(PlainItem::Entry(
                "key_groups".to_owned(),
                PlainNode::List(
                    self.groups
                        .iter()
                        .map(|g| {
                            // sops 3.10-3.12's keygroup struct: `hc_vault` and `age` are
                            // always written, the other lists only when non-empty.
                            let mut items = Vec::new();
                            if has(g, "kms") {
                                items.push(PlainItem::Entry("kms".to_owned(), list_of(g, "kms")));
                            }
                            items.push(PlainItem::Entry(
                                "hc_vault".to_owned(),
                                list_of(g, "hc_vault"),
                            ));
                            items.push(PlainItem::Entry("age".to_owned(), list_of(g, "age")));
                            if has(g, "pgp") {
                                items.push(PlainItem::Entry("pgp".to_owned(), list_of(g, "pgp")));
                            }
                            PlainNode::Map(items)
                        })
                        .collect(),
                ),
            ));
        } else if let Some(g) = self.groups.first() {
            // The metadata struct's order: kms, (gcp_kms, azure_kv,) hc_vault, age,
            // lastmodified, mac, pgp.
            for kind in ["kms", "hc_vault", "age"] {
                if has(g, kind) {
                    m.push(PlainItem::Entry(kind.to_owned(), list_of(g, kind)));
                }
            }
            if has(g, "pgp") {
                pgp_top = Some(list_of(g, "pgp"));
            }
        }
        m.push(PlainItem::Entry(
            "lastmodified".to_owned(),
            s(self.lastmodified),
        ));
        m.push(PlainItem::Entry("mac".to_owned(), s(self.mac)));
        if let Some(pgp) = pgp_top {
            m.push(PlainItem::Entry("pgp".to_owned(), pgp));
        }
        if let Some((field, value)) = &self.selection {
            m.push(PlainItem::Entry((*field).to_owned(), s(value)));
        }
        if self.mac_only_encrypted {
            m.push(PlainItem::Entry(
                "mac_only_encrypted".to_owned(),
                PlainNode::Leaf(Value::Bool(true), false),
            ));
        }
        m.push(PlainItem::Entry("version".to_owned(), s(self.version)));
        PlainNode::Map(m)
    }
}

/// Flattens metadata for dotenv/INI (`age__list_0__map_enc`), sorted by key.
fn flatten(node: &PlainNode, prefix: &str, out: &mut Vec<(String, PlainNode)>) {
    match node {
        PlainNode::Map(items) => {
            for i in items {
                if let PlainItem::Entry(k, v) = i {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}__map_{k}")
                    };
                    flatten(v, &key, out);
                }
            }
        }
        PlainNode::List(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, &format!("{prefix}__list_{i}"), out);
            }
        }
        PlainNode::Leaf(v, _) => {
            let text = match v {
                Value::Bool(b) => b.to_string(),
                other => String::from_utf8_lossy(&other.to_bytes()).into_owned(),
            };
            out.push((prefix.to_owned(), s(&text)));
        }
        _ => {}
    }
}

/// The encrypted documents plus metadata, as the store writes them.
pub(crate) fn emit_encrypted(
    docs: Vec<PlainNode>,
    meta: &PlainNode,
    format: Format,
    yaml_indent: usize,
    json_indent: Option<usize>,
) -> Result<Vec<u8>, SopsError> {
    let with_meta = |d: PlainNode| -> PlainNode {
        let mut items = match d {
            PlainNode::Map(items) => items,
            _ => Vec::new(),
        };
        items.push(PlainItem::Entry("sops".to_owned(), meta.duplicate()));
        PlainNode::Map(items)
    };
    let out_docs: Vec<PlainNode> = match format {
        Format::Yaml => docs.into_iter().map(with_meta).collect(),
        Format::Json | Format::Binary => docs.into_iter().take(1).map(with_meta).collect(),
        Format::Dotenv | Format::Ini => {
            let mut flat = Vec::new();
            flatten(meta, "", &mut flat);
            flat.sort_by(|a, b| a.0.cmp(&b.0));
            let mut items = match docs.into_iter().next() {
                Some(PlainNode::Map(items)) => items,
                _ => Vec::new(),
            };
            if format == Format::Dotenv {
                items.extend(
                    flat.into_iter()
                        .map(|(k, v)| PlainItem::Entry(format!("sops_{k}"), v)),
                );
            } else {
                let escaped = flat
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            PlainNode::Leaf(Value::Str(b), e) => PlainNode::Leaf(
                                Value::str(&String::from_utf8_lossy(&b).replace('\n', "\\n")),
                                e,
                            ),
                            other => other,
                        };
                        PlainItem::Entry(k, v)
                    })
                    .collect();
                items.push(PlainItem::Entry("sops".to_owned(), PlainNode::Map(escaped)));
            }
            vec![PlainNode::Map(items)]
        }
    };
    let fmt = if format == Format::Binary {
        Format::Json
    } else {
        format
    };
    crate::emit::documents(&out_docs, fmt, yaml_indent, json_indent)
        .map(|b| b.to_vec())
        .map_err(|e| SopsError::Emit(e.0))
}
