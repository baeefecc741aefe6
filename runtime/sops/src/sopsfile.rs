//! A decrypted, MAC-verified SOPS file kept whole (comments, types, metadata, data key), so
//! that it can be printed like `sops decrypt`, queried like `--extract`, edited and written
//! back.

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
fn list_slot(items: &[PlainNode], segment: &str) -> Option<usize> {
    let index = agentsec_policy::list_index(segment)?;
    items
        .iter()
        .enumerate()
        .filter(|(_, n)| !matches!(n, PlainNode::Comment(_)))
        .nth(index)
        .map(|(slot, _)| slot)
}

/// The number of list elements that are not comments.
fn list_len(items: &[PlainNode]) -> usize {
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
        let json_ints = matches!(format, Format::Json | Format::Binary) && meta.json_ints();
        let mut walker = Walker {
            file: name,
            key: &key,
            selection: if format == Format::Binary {
                None
            } else {
                Some(&meta.selection)
            },
            mac: MacHasher::new(meta.mac_only_encrypted),
            json_ints,
            sealed: keep_sealed.then(SealedLog::default),
        };
        if format == Format::Binary {
            // The binary store's one value is always encrypted; its options are ignored.
            walker.selection = Some(&BINARY_SELECTION);
        }
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
    let key = DataKey(Zeroizing::new([0u8; 32]));
    let mut walker = Walker {
        file: name,
        key: &key,
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

/// How to encrypt a new file: recipients in key groups, partial-encryption option, output.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct EncryptConfig {
    /// Age recipients per key group (one group unless Shamir is wanted).
    pub key_groups: Vec<Vec<String>>,
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
}

impl EncryptConfig {
    /// One key group with these recipients, sops defaults otherwise.
    pub fn for_recipients(recipients: Vec<String>) -> Self {
        EncryptConfig {
            key_groups: vec![recipients],
            ..EncryptConfig::default()
        }
    }
}

fn encrypt_error(message: String, code: i32) -> SopsError {
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
    let wrapped = wrap_key(&key, &config.key_groups, config.shamir_threshold)?;
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

/// Wraps the data key (or its Shamir shares) for every recipient: per group, (recipient, enc).
fn wrap_key(
    key: &DataKey,
    groups: &[Vec<String>],
    threshold: Option<usize>,
) -> Result<Vec<Vec<(String, String)>>, SopsError> {
    let groups: Vec<&Vec<String>> = groups.iter().filter(|g| !g.is_empty()).collect();
    if groups.is_empty() {
        return Err(encrypt_error(
            "no age recipients: pass --age or add a creation rule with `age:` to .sops.yaml"
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
        .map(|(g, part)| {
            g.iter()
                .map(|r| Ok((r.trim().to_owned(), crate::encrypt::wrap_for(r, part)?)))
                .collect()
        })
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
    wrapped: &[Vec<(String, String)>],
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
    /// Re-encrypts the (possibly edited) documents under the same data key and recipients,
    /// with a new MAC and `lastmodified` (`sops set`/`unset`/`edit`). With `rotate`, a new data
    /// key is generated and wrapped for the same recipients (`sops rotate`).
    pub fn reencrypt(&self, rotate: bool, emit: EmitOptions) -> Result<Vec<u8>, SopsError> {
        let groups: Vec<Vec<String>> = self
            .meta
            .key_groups
            .iter()
            .map(|g| g.age.iter().map(|k| k.recipient.clone()).collect())
            .collect();
        self.write_with(rotate, &groups, None, emit)
    }

    /// Re-wraps the data key for new recipients (`sops updatekeys`); values, MAC and
    /// `lastmodified` are re-written unchanged in meaning.
    pub fn with_recipients(
        &self,
        groups: &[Vec<String>],
        threshold: Option<usize>,
        emit: EmitOptions,
    ) -> Result<Vec<u8>, SopsError> {
        self.write_with(false, groups, threshold, emit)
    }

    fn write_with(
        &self,
        rotate: bool,
        groups: &[Vec<String>],
        threshold: Option<usize>,
        emit: EmitOptions,
    ) -> Result<Vec<u8>, SopsError> {
        let fresh;
        let key = if rotate {
            fresh = crate::encrypt::new_data_key()?;
            &fresh
        } else {
            &self.key
        };
        let threshold = threshold.or(if self.meta.shamir_threshold > 0 {
            Some(self.meta.shamir_threshold.min(groups.len().max(1)))
        } else {
            None
        });
        let wrapped = wrap_key(key, groups, threshold)?;
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
            &wrapped,
            threshold,
            self.meta
                .version
                .as_deref()
                .unwrap_or(crate::encrypt::WRITTEN_VERSION),
            self.format,
            emit,
        )
    }

    /// Replaces the documents with edited plaintext in the file's own format (`sops edit`):
    /// typed as decryption types them; the data key, recipients and options are kept. Refuses
    /// an empty file and a top-level `sops` key (the metadata is not editable this way).
    /// Errors name a line and column, never content.
    pub fn replace_plaintext(&mut self, bytes: &[u8]) -> Result<(), SopsError> {
        if bytes.len() > MAX_FILE_SIZE {
            return Err(SopsError::FileTooLarge {
                file: self.name.clone(),
                limit: MAX_FILE_SIZE,
            });
        }
        let docs = parse_plain(bytes, self.format, &self.name)?;
        if docs.is_empty() {
            return Err(encrypt_error(
                "File cannot be completely empty, it must contain at least one document".to_owned(),
                92,
            ));
        }
        let has_sops = docs.iter().any(|d| match d {
            PlainNode::Map(items) => items
                .iter()
                .any(|i| matches!(i, PlainItem::Entry(k, _) if k == "sops")),
            _ => false,
        });
        if has_sops && self.format != Format::Binary {
            return Err(encrypt_error(
                "the edited file has a top-level `sops` key; remove it (the metadata is kept \
                 by agentsec)"
                    .to_owned(),
                1,
            ));
        }
        self.docs = docs;
        Ok(())
    }

    /// Sets the value at `path` from JSON text as `sops set` does (numbers become floats).
    /// Missing mappings are created (a missing node named by a list index becomes a list); an
    /// index equal to a list's length appends; an index past that, or a key on a list, is
    /// refused (exit code 7) rather than written somewhere the path does not name. Nothing is
    /// changed on error.
    pub fn set(&mut self, path: &ExtractPath, json_value: &str) -> Result<(), SopsError> {
        let value = json_to_node(json_value)?;
        let Some(doc) = self.docs.first_mut() else {
            return Err(SopsError::ExtractNotFound("empty file".to_owned()));
        };
        let segs: Vec<&str> = path.0.segments().collect();
        check_set(doc, &segs, 0)?;
        set_in(doc, &segs, value);
        Ok(())
    }

    /// Removes the key or list element at `path` (`sops unset`).
    pub fn unset(&mut self, path: &ExtractPath) -> Result<(), SopsError> {
        let Some(doc) = self.docs.first_mut() else {
            return Err(SopsError::ExtractNotFound("empty file".to_owned()));
        };
        let segs: Vec<&str> = path.0.segments().collect();
        let Some((last, parents)) = segs.split_last() else {
            return Err(SopsError::ExtractSyntax("empty path".to_owned()));
        };
        let mut cur = doc;
        for seg in parents {
            cur = child_mut(cur, seg).ok_or_else(|| not_found(seg))?;
        }
        match cur {
            PlainNode::Map(items) => {
                let pos = items
                    .iter()
                    .position(|i| matches!(i, PlainItem::Entry(key, _) if key == last))
                    .ok_or_else(|| not_found(last))?;
                items.remove(pos);
            }
            PlainNode::List(items) => {
                let slot = list_slot(items, last).ok_or_else(|| not_found(last))?;
                items.remove(slot);
            }
            _ => return Err(not_found(last)),
        }
        Ok(())
    }
}

fn not_found(seg: &str) -> SopsError {
    SopsError::ExtractNotFound(match agentsec_policy::list_index(seg) {
        Some(i) => format!("Index {i} out of bounds"),
        None => format!("Key not found: {seg}"),
    })
}

fn child_mut<'a>(node: &'a mut PlainNode, seg: &str) -> Option<&'a mut PlainNode> {
    match node {
        PlainNode::Map(items) => items.iter_mut().find_map(|i| match i {
            PlainItem::Entry(key, v) if key == seg => Some(v),
            _ => None,
        }),
        PlainNode::List(items) => {
            let slot = list_slot(items, seg)?;
            items.get_mut(slot)
        }
        _ => None,
    }
}

/// Refuses, before anything changes, a `set` whose path crosses a list with a key, or with an
/// index past the end (where `set_in` would write elsewhere than the path names).
fn check_set(node: &PlainNode, segs: &[&str], depth: usize) -> Result<(), SopsError> {
    let Some((first, rest)) = segs.split_first() else {
        return Ok(());
    };
    match node {
        PlainNode::Map(_) => match node.get(first) {
            Some(child) => check_set(child, rest, depth + 1),
            None => check_fresh(rest, depth + 1),
        },
        PlainNode::List(items) => {
            let len = list_len(items);
            match agentsec_policy::list_index(first) {
                Some(i) if i < len => match list_slot(items, first).and_then(|s| items.get(s)) {
                    Some(child) => check_set(child, rest, depth + 1),
                    None => Ok(()),
                },
                Some(i) if i == len => check_fresh(rest, depth + 1),
                Some(i) => Err(encrypt_error(
                    format!(
                        "index {i} (path segment {}) is past the end of a list of {len} \
                         elements; use index {len} to append",
                        depth + 1
                    ),
                    7,
                )),
                None => Err(encrypt_error(
                    format!(
                        "path segment {} names a key, but the node there is a list; use an \
                         index (0 to {len})",
                        depth + 1
                    ),
                    7,
                )),
            }
        }
        // A scalar on the way is replaced by what the rest of the path creates.
        _ => check_fresh(segs, depth),
    }
}

/// The part of a `set` path that names nodes which do not exist yet: each list
/// there is created empty and gets one element, so only index 0 names where
/// the value will be (`set f tokens.7` with no `tokens` would write `tokens.0`).
fn check_fresh(segs: &[&str], depth: usize) -> Result<(), SopsError> {
    for (n, seg) in segs.iter().enumerate() {
        if let Some(i) = agentsec_policy::list_index(seg)
            && i != 0
        {
            return Err(encrypt_error(
                format!(
                    "index {i} (path segment {}) names an element of a list that does not \
                     exist yet; a new list starts at index 0",
                    depth + n + 1
                ),
                7,
            ));
        }
    }
    Ok(())
}

/// Writes `value` at `segs` below `node`; [`check_set`] has ruled out every case that would
/// write elsewhere. Missing nodes are created: a list when the next segment is a list index,
/// else a mapping; a scalar on the way is replaced, as `sops set` does.
fn set_in(node: &mut PlainNode, segs: &[&str], value: PlainNode) {
    let Some((first, rest)) = segs.split_first() else {
        *node = value;
        return;
    };
    let fresh = || match rest.first() {
        Some(next) if agentsec_policy::list_index(next).is_some() => PlainNode::List(Vec::new()),
        Some(_) => PlainNode::Map(Vec::new()),
        None => PlainNode::Null,
    };
    if !matches!(node, PlainNode::Map(_) | PlainNode::List(_)) {
        *node = if agentsec_policy::list_index(first).is_some() {
            PlainNode::List(Vec::new())
        } else {
            PlainNode::Map(Vec::new())
        };
    }
    match node {
        PlainNode::Map(items) => {
            if let Some(v) = items.iter_mut().find_map(|i| match i {
                PlainItem::Entry(key, v) if key == first => Some(v),
                _ => None,
            }) {
                return set_in(v, rest, value);
            }
            let mut child = fresh();
            set_in(&mut child, rest, value);
            items.push(PlainItem::Entry((*first).to_owned(), child));
        }
        PlainNode::List(items) => {
            if let Some(slot) = list_slot(items, first)
                && let Some(v) = items.get_mut(slot)
            {
                return set_in(v, rest, value);
            }
            let mut child = fresh();
            set_in(&mut child, rest, value);
            items.push(child);
        }
        _ => {}
    }
}

/// A `sops set` value: JSON, numbers as float64, objects ordered.
fn json_to_node(text: &str) -> Result<PlainNode, SopsError> {
    let invalid = || encrypt_error("Value for --set is not valid JSON".to_owned(), 7);
    let wrapped = Zeroizing::new(format!("{{\"v\": {text}}}"));
    let raw = stores::json::parse(wrapped.as_bytes(), "value").map_err(|_| invalid())?;
    let key = DataKey(Zeroizing::new([0u8; 32]));
    let mut walker = Walker {
        file: "value",
        key: &key,
        selection: None,
        mac: MacHasher::new(false),
        json_ints: false,
        sealed: None,
    };
    let mut docs = raw.documents;
    let doc = docs.pop().ok_or_else(invalid)?;
    match walker.document(doc)? {
        PlainNode::Map(mut items) => match items.pop() {
            Some(PlainItem::Entry(_, v)) => Ok(v),
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}
