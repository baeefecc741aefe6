//! SOPS files for agentsec, interchangeable with the real `sops`: the file format (YAML, JSON,
//! dotenv, INI, binary), age identities and recipients, `.sops.yaml` creation rules, emitters
//! that write what `sops` writes, [`SopsStore`], a SOPS file as an
//! [`agentsec_secrets::SecretStore`], and [`SopsNames`], its key names read without any key
//! (an [`agentsec_secrets::NameIndex`], for policy review).
//!
//! ```no_run
//! use std::path::Path;
//! use agentsec_sops::{decrypt_file, DecryptOptions, Identities, Lookup};
//!
//! # fn main() -> Result<(), agentsec_sops::SopsError> {
//! // SSH keys (SOPS_AGE_SSH_PRIVATE_KEY_FILE, ~/.ssh/id_ed25519, ~/.ssh/id_rsa), SOPS_AGE_KEY,
//! // SOPS_AGE_KEY_FILE, SOPS_AGE_KEY_CMD and ~/.config/sops/age/keys.txt.
//! let ids = Identities::from_process_env()?;
//! let tree = decrypt_file(Path::new("secrets.yaml"), &ids, DecryptOptions::default())?;
//! match tree.lookup(&["databases", "postgres", "password"]) {
//!     Lookup::Leaf(leaf) => {
//!         let _bytes: &[u8] = leaf.value().expose_secret();
//!     }
//!     Lookup::Branch { children } => println!("a mapping with keys {children:?}"),
//!     Lookup::Null | Lookup::NotFound { .. } => println!("no such secret"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What this crate guarantees:
//! - The MAC is always verified; a file with a wrong, missing or undecryptable MAC is refused
//!   (only [`DecryptOptions::ignore_mac`], meant for a recovery command, skips the check).
//! - Plaintext lives only in zeroizing buffers: [`agentsec_secrets::SecretValue`], the data key, Shamir shares and
//!   every intermediate decryption buffer are wiped on drop.
//! - No error message contains a value, a MAC or a key file line; they name the file, the key
//!   path or the line number.
//! - Hostile input is bounded: [`MAX_FILE_SIZE`], [`MAX_YAML_NODES`], [`MAX_NESTING_DEPTH`],
//!   [`MAX_KEY_SOURCE_SIZE`].
//!
//! Formats: YAML and JSON (dotenv, INI and binary are not read yet). Compatibility notes and
//! known differences from sops are listed on [`decrypt_bytes`].

#![forbid(unsafe_code)]

mod cipher;
mod config;
mod datakey;
mod decrypt;
mod doc;
mod emit;
mod encrypt;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod gofmt;
mod keys;
mod mac;
mod masterkey;
mod metadata;
mod plain;
mod rules;
mod shamir;
mod sopsfile;
mod store;
mod stores;
mod tree;

use std::path::Path;

use zeroize::Zeroizing;

pub use config::{CreationRule, SopsConfig};
pub use error::SopsError;
pub use keys::{
    DataKeyReport, GroupReport, Identities, KEY_CMD_TIMEOUT, KeyAttempt, KeySources,
    MAX_KEY_CMD_TIMEOUT, UnsupportedIdentity,
};
pub use masterkey::{AwsCredentials, KeyServices, KeySpec, KmsKey, Token};
pub use sopsfile::{EmitOptions, EncryptConfig, ExtractPath, SopsFile, encrypt_plaintext};
pub use store::{SopsNames, SopsStore};
pub use tree::{Leaf, LeafKind, Leaves, Lookup, Node, SecretTree, lookup_in};

/// Largest SOPS file read, in bytes. Secrets files are kilobytes; the bound keeps a hostile or
/// mistaken path (a log file, a device) from exhausting memory before parsing starts.
pub const MAX_FILE_SIZE: usize = 16 * 1024 * 1024;

/// Largest number of YAML nodes in a file, counting every alias expansion. yaml.v3 (and so
/// sops) expands aliases into copies; without a bound, a few lines of nested aliases
/// ("billion laughs") expand into gigabytes.
pub const MAX_YAML_NODES: usize = 250_000;

/// Deepest nesting of mappings and sequences. Real secrets trees are a handful of levels deep;
/// the bound keeps recursive processing of hostile input within a small, fixed stack.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Largest key source read (key file, `SOPS_AGE_KEY_CMD` output), in bytes. An age identity is
/// 74 characters; the bound stops a misconfigured path or command from being read whole.
pub const MAX_KEY_SOURCE_SIZE: usize = 1024 * 1024;

/// The store format of a SOPS file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// YAML (`.yaml`, `.yml`), possibly several documents.
    Yaml,
    /// JSON (`.json`).
    Json,
    /// dotenv (`.env`): `KEY=value` lines.
    Dotenv,
    /// INI (`.ini`): sections of `key = value` lines.
    Ini,
    /// Any other file: the whole content is the string value of key `data`, stored as JSON.
    Binary,
}

impl Format {
    /// The format sops would pick from the file name: `.yaml`/`.yml` → YAML, `.json` → JSON,
    /// `.env` → dotenv, `.ini` → INI, anything else binary.
    pub fn from_path(path: &Path) -> Result<Format, SopsError> {
        let name = path.to_string_lossy();
        Ok(if name.ends_with(".yaml") || name.ends_with(".yml") {
            Format::Yaml
        } else if name.ends_with(".json") {
            Format::Json
        } else if name.ends_with(".env") {
            Format::Dotenv
        } else if name.ends_with(".ini") {
            Format::Ini
        } else {
            Format::Binary
        })
    }

    /// The format named on a command line (`--input-type`, `--output-type`): `yaml`, `json`,
    /// `dotenv`, `ini`, `binary`. Like sops, an unknown name means binary.
    pub fn from_name(name: &str) -> Format {
        match name {
            "yaml" => Format::Yaml,
            "json" => Format::Json,
            "dotenv" => Format::Dotenv,
            "ini" => Format::Ini,
            _ => Format::Binary,
        }
    }
}

/// Options for decryption.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecryptOptions {
    /// Skip the MAC check (`sops decrypt --ignore-mac`). Only for recovering a damaged file:
    /// the result may have been tampered with. Values still must decrypt.
    pub ignore_mac: bool,
}

impl DecryptOptions {
    /// Options with the MAC check skipped; see [`DecryptOptions::ignore_mac`].
    pub fn ignoring_mac() -> Self {
        DecryptOptions { ignore_mac: true }
    }
}

/// Reads, decrypts and verifies the SOPS file at `path`; the format comes from the name
/// ([`Format::from_path`]).
pub fn decrypt_file(
    path: &Path,
    ids: &Identities,
    opts: DecryptOptions,
) -> Result<SecretTree, SopsError> {
    let name = path.display().to_string();
    let format = Format::from_path(path)?;
    let bytes = read_file(path, &name)?;
    decrypt_bytes(&bytes, format, &name, ids, opts)
}

pub(crate) fn read_file(path: &Path, name: &str) -> Result<Zeroizing<Vec<u8>>, SopsError> {
    use agentsec_policy::bounded::ReadError;
    let mut buf = Zeroizing::new(Vec::new());
    agentsec_policy::bounded::read_file(path, MAX_FILE_SIZE as u64, &mut buf).map_err(
        |e| match e {
            e if e.is_not_found() => SopsError::FileNotFound {
                file: name.to_owned(),
            },
            ReadError::TooLarge { .. } => SopsError::FileTooLarge {
                file: name.to_owned(),
                limit: MAX_FILE_SIZE,
            },
            ReadError::Io(source) => SopsError::Read {
                file: name.to_owned(),
                source,
            },
            other => SopsError::Read {
                file: name.to_owned(),
                source: std::io::Error::other(other.to_string()),
            },
        },
    )?;
    Ok(buf)
}

/// Decrypts and verifies SOPS file contents; `name` is used in error messages only.
///
/// Steps, as `sops decrypt`: parse; read the `sops` metadata (from the first document); recover
/// the data key with `ids`; decrypt every value that the file's rules say is encrypted (AAD =
/// mapping keys joined by `:` plus `:`); compute the MAC over all values in order and compare it
/// with the stored one unless `opts.ignore_mac`.
///
/// Compatibility decisions and known differences from sops:
/// - Files without a `version` field (written by rops) are accepted; sops refuses them with
///   `Version string empty` although nothing else is wrong. The version is not authenticated.
/// - JSON numbers are read as float64, as sops before 3.13.2 did; if the file's `version` is
///   3.13.2 or later, integers that fit `i64` are read as integers (as that sops does).
/// - Comments stored as list elements (`ENC[...,type:comment]`) are not part of the public
///   tree, so list indices do not count them: not in [`SecretTree::lookup`], the store,
///   [`SopsFile::extract`], `set` or `unset` (sops' `--extract` does). One path names one node
///   everywhere, and a list index has one spelling (`0`, never `00`).
/// - Regexes use the `regex` crate: RE2 syntax, but `\w`, `\d`, `\s` and `\b` are
///   Unicode-aware where Go's are ASCII-only.
/// - YAML merge keys (`<<`) are kept as ordinary keys, like sops' tree walk does.
pub fn decrypt_bytes(
    bytes: &[u8],
    format: Format,
    name: &str,
    ids: &Identities,
    opts: DecryptOptions,
) -> Result<SecretTree, SopsError> {
    let file = SopsFile::decrypt(bytes, format, name, ids, opts)?;
    Ok(file.tree())
}

/// Whether `bytes` is a SOPS file (what `sops filestatus` reports): it parses, has `sops`
/// metadata with a MAC, and its values are in sops' format. No key is used, so nothing here
/// is authenticated.
pub fn is_encrypted(bytes: &[u8], format: Format, name: &str) -> bool {
    sopsfile::names_only(bytes, format, name).is_ok()
}

/// Parses a **plaintext** file into a tree typed exactly as decryption types it (same scalar
/// resolution, same leaf texts), without any `sops` metadata handling. Meant for tests and
/// tools that compare a decrypted file with its plaintext twin; a top-level `sops` key is kept
/// like any other.
pub fn parse_plaintext(bytes: &[u8], format: Format, name: &str) -> Result<SecretTree, SopsError> {
    let docs = sopsfile::parse_plain(bytes, format, name)?;
    let json = format != Format::Yaml;
    Ok(SecretTree::new(
        docs.iter().filter_map(|d| d.to_public(json)).collect(),
    ))
}
