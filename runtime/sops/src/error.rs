//! The one error type of this crate.
//!
//! Every message names the file and, where there is one, the key path or line; none contains a
//! value, a MAC or a line of a key file. Values in a SOPS file are secrets, and a MAC computed over
//! them is an offline guessing oracle for weak ones, so neither may ever reach a log.

use std::fmt;
use std::io;

/// Why a SOPS file could not be read or decrypted.
///
/// [`SopsError::exit_code`] maps each case to the exit code the `sops` CLI uses for it, so a
/// command line built on this crate behaves like sops for scripts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SopsError {
    /// The file does not exist (sops exit code 100).
    #[error("cannot operate on non-existent file {file:?}")]
    FileNotFound {
        /// The file, as given.
        file: String,
    },

    /// The file exists but could not be read (exit code 2).
    #[error("could not read {file:?}: {source}")]
    Read {
        /// The file, as given.
        file: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// The file is larger than [`crate::MAX_FILE_SIZE`] (exit code 2).
    #[error("{file:?} is larger than the limit of {limit} bytes for a SOPS file")]
    FileTooLarge {
        /// The file, as given.
        file: String,
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },

    /// The file's format cannot be read by this build (exit code 1).
    #[error("{file:?}: {detail}")]
    UnsupportedFormat {
        /// The file, as given.
        file: String,
        /// Which format, and what to do instead.
        detail: String,
    },

    /// The file is not valid YAML or JSON (exit code 2).
    #[error("{file:?}{}: {message}", fmt_line(*line))]
    Syntax {
        /// The file, as given.
        file: String,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// The parser's description (never a quote of the input).
        message: String,
    },

    /// A limit on hostile input was exceeded (exit code 2).
    #[error("{file:?}{}: {what} exceeds the limit of {limit}", fmt_line(*line))]
    LimitExceeded {
        /// The file, as given.
        file: String,
        /// 1-based line where the limit was hit, when known.
        line: Option<usize>,
        /// What was counted ("YAML nodes (aliases expanded)", "nesting depth", ...).
        what: &'static str,
        /// The limit (see the constants at the crate root).
        limit: usize,
    },

    /// The same key appears twice in one mapping (exit code 2).
    #[error("{file:?}{}: duplicate key {key:?} in mapping `{path}`", fmt_line(*line))]
    DuplicateKey {
        /// The file, as given.
        file: String,
        /// 1-based line of the second occurrence, when known.
        line: Option<usize>,
        /// The mapping that holds the key (`<root>` for the top level).
        path: String,
        /// The repeated key (keys are names, never values).
        key: String,
    },

    /// The document uses something SOPS cannot represent: a non-string key, a document that is a
    /// sequence, an integer outside the 64-bit range, a tag that does not fit its value (exit code 1).
    #[error("{file:?}{}: {what}", fmt_line(*line))]
    Unsupported {
        /// The file, as given.
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is unsupported, naming the key path where there is one.
        what: String,
    },

    /// The file has no top-level `sops` metadata: it is not a SOPS file (exit code 1).
    #[error("sops metadata not found in {file:?} (is it encrypted with sops?)")]
    NoMetadata {
        /// The file, as given.
        file: String,
    },

    /// The `sops` metadata is present but malformed (exit code 1).
    #[error("{file:?}: invalid sops metadata field `{field}`: {reason}")]
    InvalidMetadata {
        /// The file, as given.
        file: String,
        /// The metadata field, e.g. `age[0].enc` or `lastmodified`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No identity could recover the data key (sops exit code 128). The report lists the
    /// recipients the file is encrypted to and where identities were looked for.
    #[error("failed to get the data key required to decrypt {file:?}\n{report}")]
    DataKey {
        /// The file, as given.
        file: String,
        /// Per key group: which recipients were tried and why each failed.
        report: Box<crate::keys::DataKeyReport>,
    },

    /// An identity source (key file, `SOPS_AGE_KEY`, `SOPS_AGE_KEY_CMD`) is unusable
    /// (exit code 128). Never quotes the offending line.
    #[error("age identities from {source_name}{}: {reason}", fmt_line(*line))]
    Identity {
        /// The source: a file path or an environment variable name.
        source_name: String,
        /// 1-based line in that source, when the problem is one line.
        line: Option<usize>,
        /// What is wrong, and how to fix it.
        reason: String,
    },

    /// A value that the file's rules say is encrypted is not an `ENC[AES256_GCM,...]` string
    /// (sops exit code 25).
    #[error(
        "{file:?}{}: value at `{path}` should be encrypted but does not match sops' data format",
        fmt_line(*line)
    )]
    NotEncrypted {
        /// The file, as given.
        file: String,
        /// The key path of the value.
        path: String,
        /// 1-based line of the value, when known.
        line: Option<usize>,
    },

    /// AES-GCM refused a value: the ciphertext, its key path or the data key do not belong
    /// together (sops exit code 25). A renamed or moved key causes this too.
    #[error(
        "{file:?}{}: could not decrypt the value at `{path}` (AES-GCM authentication failed; \
         was the key renamed or the value edited?)",
        fmt_line(*line)
    )]
    ValueDecrypt {
        /// The file, as given.
        file: String,
        /// The key path of the value.
        path: String,
        /// 1-based line of the value, when known.
        line: Option<usize>,
    },

    /// A decrypted value does not parse as its `type:` says, or the type is unknown
    /// (sops exit code 25).
    #[error("{file:?}{}: value at `{path}` has {problem}", fmt_line(*line))]
    ValueType {
        /// The file, as given.
        file: String,
        /// The key path of the value.
        path: String,
        /// 1-based line of the value, when known.
        line: Option<usize>,
        /// What is wrong (names the type, never the value).
        problem: String,
    },

    /// The file has no MAC (sops exit code 51).
    #[error(
        "MAC missing in {file:?}: the file cannot be checked for tampering and is refused \
         (only a recovery command may ignore the MAC)"
    )]
    MacMissing {
        /// The file, as given.
        file: String,
    },

    /// The stored MAC could not be decrypted (sops exit code 51).
    #[error(
        "MAC in {file:?} could not be decrypted (was `lastmodified` or `mac` edited?); \
         the file is refused"
    )]
    MacUndecryptable {
        /// The file, as given.
        file: String,
    },

    /// An `--extract` path is malformed (sops exit code 91).
    #[error("error parsing --extract path: {0}")]
    ExtractSyntax(String),

    /// An `--extract` path names nothing in the file (sops exit code 1).
    #[error("error truncating tree: {0}")]
    ExtractNotFound(String),

    /// The tree cannot be written in the requested format (sops exit code 4).
    #[error("Error dumping file: {0}")]
    Emit(String),

    /// The file cannot be encrypted or re-encrypted (reason given; sops exit codes 23, 111,
    /// 203, 92, 5 and 61 depending on `code`).
    #[error("{message}")]
    Encrypt {
        /// What went wrong, naming the file, key or rule (never a value).
        message: String,
        /// The sops exit code for it.
        code: i32,
    },

    /// The MAC over the values does not match the stored one: the file was modified outside
    /// sops (sops exit code 51). Neither MAC is shown: a MAC over plaintext is a guessing oracle.
    #[error(
        "MAC mismatch in {file:?}: the values were changed outside sops, so the file is refused; \
         restore it from version control or re-encrypt it with sops"
    )]
    MacMismatch {
        /// The file, as given.
        file: String,
    },
}

fn fmt_line(line: Option<usize>) -> String {
    match line {
        Some(l) => format!(":{l}"),
        None => String::new(),
    }
}

impl SopsError {
    /// The exit code `sops` uses for this failure (`cmd/sops/codes/codes.go`).
    pub fn exit_code(&self) -> i32 {
        match self {
            SopsError::FileNotFound { .. } => 100,
            SopsError::Read { .. }
            | SopsError::FileTooLarge { .. }
            | SopsError::Syntax { .. }
            | SopsError::LimitExceeded { .. }
            | SopsError::DuplicateKey { .. } => 2,
            SopsError::UnsupportedFormat { .. }
            | SopsError::Unsupported { .. }
            | SopsError::NoMetadata { .. }
            | SopsError::InvalidMetadata { .. } => 1,
            SopsError::DataKey { .. } | SopsError::Identity { .. } => 128,
            SopsError::NotEncrypted { .. }
            | SopsError::ValueDecrypt { .. }
            | SopsError::ValueType { .. } => 25,
            SopsError::ExtractSyntax(_) => 91,
            SopsError::ExtractNotFound(_) => 1,
            SopsError::Emit(_) => 4,
            SopsError::Encrypt { code, .. } => *code,
            SopsError::MacMissing { .. }
            | SopsError::MacUndecryptable { .. }
            | SopsError::MacMismatch { .. } => 51,
        }
    }
}

/// A key path for messages: `a.b[2].c`, `<root>` for the top level.
#[derive(Clone, Default)]
pub(crate) struct DisplayPath {
    parts: Vec<PathPart>,
}

#[derive(Clone)]
enum PathPart {
    Key(String),
    Index(usize),
}

impl DisplayPath {
    pub(crate) fn push_key(&mut self, key: &str) {
        self.parts.push(PathPart::Key(key.to_owned()));
    }
    pub(crate) fn push_index(&mut self, index: usize) {
        self.parts.push(PathPart::Index(index));
    }
    pub(crate) fn pop(&mut self) {
        self.parts.pop();
    }
    pub(crate) fn depth(&self) -> usize {
        self.parts.len()
    }
}

impl fmt::Display for DisplayPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.is_empty() {
            return f.write_str("<root>");
        }
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                PathPart::Key(k) if i == 0 => write!(f, "{k}")?,
                PathPart::Key(k) => write!(f, ".{k}")?,
                PathPart::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}
