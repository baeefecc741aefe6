//! A decrypted, MAC-verified SOPS file kept whole (comments, types, metadata, data key), so
//! that it can be printed like `sops decrypt`, queried like `--extract`, edited and written
//! back.
//!
//! Here: reading (decrypt, print, extract). Writing it encrypted is in [`write`](mod@write)
//! (also `sops encrypt` of a new file), changing its plaintext (`edit`, `set`, `unset`) in
//! [`edit`].

use zeroize::Zeroizing;

use crate::cipher::DataKey;
use crate::decrypt::{SealedLog, SealedValue, Walker};
use crate::error::SopsError;
use crate::mac::{self, MacHasher};
use crate::metadata::{self, Metadata};
use crate::plain::{PlainItem, PlainNode};
use crate::rules::Selection;
use crate::tree::SecretTree;
use crate::{DecryptOptions, Format, Identities, MAX_FILE_SIZE, datakey, emit, stores};
use agentsec_policy::SecretPath;

mod edit;
mod write;

pub use write::{EncryptConfig, encrypt_plaintext};

/// Output settings (`stores:` in `.sops.yaml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmitOptions {
    /// YAML indent (`stores.yaml.indent`; sops default 4).
    pub yaml_indent: usize,
    /// JSON indent in spaces (`stores.json.indent`); `None` is a tab (sops' default).
    pub json_indent: Option<usize>,
}

impl Default for EmitOptions {
    fn default() -> Self {
        EmitOptions {
            yaml_indent: 4,
            json_indent: None,
        }
    }
}

impl EmitOptions {
    /// Options with the given indents.
    pub fn new(yaml_indent: usize, json_indent: Option<usize>) -> Self {
        EmitOptions {
            yaml_indent,
            json_indent,
        }
    }
}

/// A path for `--extract`, `set` and `unset`: a [`SecretPath`], the one path syntax agentsec
/// has (the dotted form `db.password` or sops' bracket form `["db"]["password"]`, in
/// canonical form). A segment names a mapping key or, on a list, the element at that
/// canonical index; comment elements of a list do not count, so the path names the same
/// node as `get-secret` and the policy do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractPath(SecretPath);

impl ExtractPath {
    /// Parses a path. Anything that is not a [`SecretPath`] (including `""`) is a
    /// [`SopsError::ExtractSyntax`] (sops exit code 91).
    pub fn parse(s: &str) -> Result<ExtractPath, SopsError> {
        SecretPath::parse(s)
            .map(ExtractPath)
            .map_err(|e| SopsError::ExtractSyntax(e.to_string()))
    }

    /// The path.
    pub fn path(&self) -> &SecretPath {
        &self.0
    }
}

impl From<SecretPath> for ExtractPath {
    fn from(path: SecretPath) -> Self {
        ExtractPath(path)
    }
}

/// Where the element a path segment names sits among a list's items (which include comment
/// elements): the `index`-th non-comment item.
pub(super) fn list_slot(items: &[PlainNode], segment: &str) -> Option<usize> {
    let index = agentsec_policy::list_index(segment)?;
    items
        .iter()
        .enumerate()
        .filter(|(_, n)| !matches!(n, PlainNode::Comment(_)))
        .nth(index)
        .map(|(slot, _)| slot)
}

/// The number of list elements that are not comments.
pub(super) fn list_len(items: &[PlainNode]) -> usize {
    items
        .iter()
        .filter(|n| !matches!(n, PlainNode::Comment(_)))
        .count()
}

/// `['key']` or `[3]`, as sops names a component in its messages.
fn component(segment: &str) -> String {
    match agentsec_policy::list_index(segment) {
        Some(i) => format!("[{i}]"),
        None => format!("['{segment}']"),
    }
}

/// A decrypted, verified SOPS file.
pub struct SopsFile {
    pub(crate) docs: Vec<PlainNode>,
    pub(crate) meta: Metadata,
    pub(crate) key: DataKey,
    pub(crate) format: Format,
    pub(crate) name: String,
    /// The key services it was decrypted with, to wrap the data key again.
    pub(crate) services: crate::masterkey::KeyServices,
}

impl std::fmt::Debug for SopsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SopsFile")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("documents", &self.docs.len())
            .finish_non_exhaustive()
    }
}

impl SopsFile {
    /// Decrypts and verifies file contents (see [`crate::decrypt_bytes`]).
    pub fn decrypt(
        bytes: &[u8],
        format: Format,
        name: &str,
        ids: &Identities,
        opts: DecryptOptions,
    ) -> Result<SopsFile, SopsError> {
        Self::decrypt_keeping(bytes, format, name, ids, opts, false).map(|(file, _)| file)
    }

    /// [`SopsFile::decrypt`], also returning the ciphertexts of the public tree's encrypted
    /// leaves, each labelled with its document and path, when `keep_sealed` (for
    /// [`crate::SopsStore`], which decrypts a value again only when it is asked for).
    pub(crate) fn decrypt_keeping(
        bytes: &[u8],
        format: Format,
        name: &str,
        ids: &Identities,
        opts: DecryptOptions,
        keep_sealed: bool,
    ) -> Result<(SopsFile, Vec<SealedValue>), SopsError> {
        if bytes.len() > MAX_FILE_SIZE {
            return Err(SopsError::FileTooLarge {
                file: name.to_owned(),
                limit: MAX_FILE_SIZE,
            });
        }
        let mut raw = stores::parse(bytes, format, name, true)?;
        let meta = metadata::take(&mut raw.documents, name)?;
        let key = datakey::recover(&meta, ids, name)?;
        let mut walker = Walker {
            file: name,
            key: Some(&key),
            selection: Some(selection(format, &meta)),
            mac: MacHasher::new(meta.mac_only_encrypted),
            json_ints: json_ints(format, &meta),
            sealed: keep_sealed.then(SealedLog::default),
        };
        let mut docs = Vec::with_capacity(raw.documents.len());
        for doc in raw.documents {
            docs.push(walker.document(doc)?);
        }
        let computed = walker.mac.finish();
        if !opts.ignore_mac {
            mac::verify(
                &computed,
                meta.mac.as_deref(),
                meta.lastmodified.as_deref(),
                &key,
                name,
            )?;
        }
        let sealed = walker
            .sealed
            .take()
            .map(|log| log.items)
            .unwrap_or_default();
        Ok((
            SopsFile {
                docs,
                meta,
                key,
                format,
                name: name.to_owned(),
                services: ids.services().clone(),
            },
            sealed,
        ))
    }

    /// The public tree (comments dropped).
    pub fn tree(&self) -> SecretTree {
        let json = self.format != Format::Yaml;
        SecretTree::new(self.docs.iter().filter_map(|d| d.to_public(json)).collect())
    }

    /// The format the file was read as.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The plaintext as `sops decrypt --output-type <output>` prints it.
    pub fn emit(&self, output: Format, opts: EmitOptions) -> Result<Zeroizing<Vec<u8>>, SopsError> {
        emit::documents(&self.docs, output, opts.yaml_indent, opts.json_indent)
            .map_err(|e| SopsError::Emit(e.0))
    }

    /// What `sops decrypt --extract <path>` prints: a string raw (no newline), a mapping as a
    /// document, anything else as a value. List indices do not count comment elements (sops'
    /// do), so a path names what `get-secret` names.
    pub fn extract(
        &self,
        path: &ExtractPath,
        output: Format,
        opts: EmitOptions,
    ) -> Result<Zeroizing<Vec<u8>>, SopsError> {
        if self.format == Format::Binary {
            return Err(SopsError::Emit(
                "Binary files are not structured and extracting a single value is not possible"
                    .to_owned(),
            ));
        }
        let empty = PlainNode::Map(Vec::new());
        let mut cur = self.docs.first().unwrap_or(&empty);
        for seg in path.0.segments() {
            cur = match cur {
                PlainNode::Map(_) => cur.get(seg).ok_or_else(|| {
                    SopsError::ExtractNotFound(format!("component {} not found", component(seg)))
                })?,
                PlainNode::List(items) => list_slot(items, seg)
                    .and_then(|slot| items.get(slot))
                    .ok_or_else(|| {
                        SopsError::ExtractNotFound(match agentsec_policy::list_index(seg) {
                            Some(i) => format!("component [{i}] accesses out of bounds"),
                            None => {
                                format!("component ['{seg}'] is a key, but tree part is a list")
                            }
                        })
                    })?,
                _ => {
                    return Err(SopsError::ExtractNotFound(format!(
                        "component {} not found",
                        component(seg)
                    )));
                }
            };
        }
        match cur {
            PlainNode::Map(_) => emit::documents(
                std::slice::from_ref(cur),
                output,
                opts.yaml_indent,
                opts.json_indent,
            ),
            PlainNode::Leaf(crate::plain::Value::Str(b), _) => Ok(b.clone()),
            other => emit::value(other, output, opts.yaml_indent, opts.json_indent),
        }
        .map_err(|e| SopsError::Emit(e.0))
    }
}

static BINARY_SELECTION: std::sync::LazyLock<Selection> =
    std::sync::LazyLock::new(|| Selection::UnencryptedSuffix("\u{0}never".to_owned()));

/// Which leaves of a file in `format` are encrypted: the metadata's rule, except for the
/// binary store, whose one value is always encrypted (its options are ignored).
fn selection(format: Format, meta: &Metadata) -> &Selection {
    if format == Format::Binary {
        &BINARY_SELECTION
    } else {
        &meta.selection
    }
}

/// Whether JSON integers are read as integers (see [`crate::decrypt_bytes`]).
fn json_ints(format: Format, meta: &Metadata) -> bool {
    matches!(format, Format::Json | Format::Binary) && meta.json_ints()
}

/// The public tree of SOPS file contents read **without any key**: the same walk as
/// decryption (same parser, metadata checks, partial-encryption rules, comment handling and
/// list numbering), except that an encrypted value is not decrypted but becomes an empty leaf
/// marked encrypted ([`crate::Leaf::was_encrypted`]). Key names are clear text in a SOPS file,
/// so this is all a names-only reader needs; nothing here is authenticated (the MAC needs the
/// data key), so it is fit for review, never for serving values.
///
/// # Errors
/// As decryption, for everything but the key: a file over [`MAX_FILE_SIZE`], a syntax error,
/// no or invalid `sops` metadata, a missing MAC, a value that should be encrypted but is not in
/// sops' format or has an unknown type.
pub(crate) fn names_only(
    bytes: &[u8],
    format: Format,
    name: &str,
) -> Result<SecretTree, SopsError> {
    if bytes.len() > MAX_FILE_SIZE {
        return Err(SopsError::FileTooLarge {
            file: name.to_owned(),
            limit: MAX_FILE_SIZE,
        });
    }
    let mut raw = stores::parse(bytes, format, name, true)?;
    let meta = metadata::take(&mut raw.documents, name)?;
    if meta.mac.is_none() {
        // The store would refuse the file; a review of it should not pass silently.
        return Err(SopsError::MacMissing {
            file: name.to_owned(),
        });
    }
    let mut walker = Walker {
        file: name,
        key: None,
        selection: Some(selection(format, &meta)),
        mac: MacHasher::new(meta.mac_only_encrypted),
        json_ints: json_ints(format, &meta),
        sealed: None,
    };
    let mut docs = Vec::with_capacity(raw.documents.len());
    for doc in raw.documents {
        docs.push(walker.document(doc)?);
    }
    let json = format != Format::Yaml;
    Ok(SecretTree::new(
        docs.iter().filter_map(|d| d.to_public(json)).collect(),
    ))
}

/// Parses a plaintext file into documents, typed as decryption types them; nothing is
/// decrypted.
pub(crate) fn parse_plain(
    bytes: &[u8],
    format: Format,
    name: &str,
) -> Result<Vec<PlainNode>, SopsError> {
    if format == Format::Binary {
        return Ok(vec![PlainNode::Map(vec![PlainItem::Entry(
            "data".to_owned(),
            PlainNode::Leaf(
                crate::plain::Value::Str(Zeroizing::new(bytes.to_vec())),
                false,
            ),
        )])]);
    }
    let raw = stores::parse(bytes, format, name, false)?;
    let mut walker = Walker {
        file: name,
        key: None,
        selection: None,
        mac: MacHasher::new(false),
        json_ints: false,
        sealed: None,
    };
    raw.documents
        .into_iter()
        .map(|d| walker.document(d))
        .collect()
}
