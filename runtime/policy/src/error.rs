//! Typed errors. Each says what is wrong and, where natural, how to fix it.
//!
//! Errors name characters and byte positions, never more of hostile input
//! than needed. Policy errors carry `file:line:column` (1-based).

use std::fmt;
use std::sync::Arc;

/// A position in a policy source: `origin:line:column`, all 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    origin: Arc<str>,
    line: usize,
    column: usize,
}

impl Location {
    pub(crate) fn new(origin: Arc<str>, line: usize, column: usize) -> Self {
        Self {
            origin,
            line,
            column,
        }
    }

    /// The file (or the name given to [`Policy::from_sources`](crate::Policy::from_sources)).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The line, starting at 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column, starting at 1.
    pub fn column(&self) -> usize {
        self.column
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// Why a string is not an [`AgentId`](crate::AgentId).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentIdError {
    /// The id is the empty string.
    #[error("agent id is empty; agent ids look like `ops/release-manager`")]
    Empty,
    /// The id is longer than [`MAX_AGENT_ID_LEN`](crate::MAX_AGENT_ID_LEN).
    #[error("agent id is {len} bytes long; at most {max} bytes are allowed")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A character outside `[A-Za-z0-9._-]` and the `/` separator.
    #[error(
        "agent id has {ch:?} at byte {pos}; only A-Z, a-z, 0-9, `.`, `_`, `-` and `/` between segments are allowed"
    )]
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its byte offset in the input.
        pos: usize,
    },
    /// Two `/` in a row, or a leading or trailing `/`.
    #[error("agent id has an empty segment at byte {pos}; separate segments with a single `/`")]
    EmptySegment {
        /// Byte offset where the empty segment starts.
        pos: usize,
    },
    /// A segment that is exactly `.` or `..`.
    #[error(
        "agent id has a `{segment}` segment at byte {pos}; `.` and `..` are not allowed as segments"
    )]
    DotSegment {
        /// `"."` or `".."`.
        segment: &'static str,
        /// Byte offset where the segment starts.
        pos: usize,
    },
}

/// Why a glob is not a valid agent glob (an entry of `allowed_agents` or `denied_agents`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlobError {
    /// The glob is the empty string.
    #[error(
        "the glob is empty; write an agent id such as `ops/release-manager` or a glob such as `ops/*`"
    )]
    Empty,
    /// Longer than [`MAX_AGENT_ID_LEN`](crate::MAX_AGENT_ID_LEN).
    #[error("the glob is {len} bytes long; at most {max} bytes are allowed")]
    TooLong {
        /// Length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A character that is neither allowed in agent ids nor `*`, `?`, `/`.
    #[error(
        "{ch:?} at byte {pos} is not allowed; agent globs use A-Z, a-z, 0-9, `.`, `_`, `-`, `/`, `*` (within a segment), `**` (any number of segments) and `?`"
    )]
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its byte offset.
        pos: usize,
    },
    /// `//`, or a leading or trailing `/`.
    #[error("empty segment at byte {pos}; separate segments with a single `/`")]
    EmptySegment {
        /// Byte offset of the empty segment.
        pos: usize,
    },
    /// `**` combined with other characters in one segment.
    #[error(
        "`**` at byte {pos} must be a whole segment (`ops/**`), not part of one; use `*` within a segment"
    )]
    PartialRecursive {
        /// Byte offset of the `**`.
        pos: usize,
    },
    /// A `.` or `..` segment, which no agent id can have.
    #[error(
        "`{segment}` segment at byte {pos} can never match: agent ids have no `.` or `..` segments"
    )]
    DotSegment {
        /// `"."` or `".."`.
        segment: &'static str,
        /// Byte offset.
        pos: usize,
    },
    /// globset refused the pattern.
    #[error("{0}")]
    Globset(String),
}

/// Why a string is not a [`SecretPath`](crate::SecretPath) (or a rule's path pattern).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The empty string where a path is required.
    #[error(
        "secret path is empty; write a dotted path such as `databases.postgres.production.password`"
    )]
    Empty,
    /// Longer than [`MAX_PATH_LEN`](crate::MAX_PATH_LEN) (input or canonical form).
    #[error("secret path is {len} bytes long; at most {max} bytes are allowed")]
    TooLong {
        /// Length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_PATH_SEGMENTS`](crate::MAX_PATH_SEGMENTS) segments.
    #[error("secret path has more than {max} segments")]
    TooManySegments {
        /// The limit.
        max: usize,
    },
    /// A control character (NUL, newline, ...), anywhere.
    #[error(
        "secret path has control character {ch:?} at byte {pos}; control characters are never allowed"
    )]
    ControlChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        pos: usize,
    },
    /// A character not allowed in an unquoted (dotted) segment.
    #[error(
        "{ch:?} at byte {pos} is not allowed in a dotted segment (A-Z, a-z, 0-9, `_`, `-`); quote such keys with the bracket form, e.g. `[\"key.with.dots\"][\"child\"]`"
    )]
    InvalidChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        pos: usize,
    },
    /// An empty segment: `a..b`, a leading or trailing `.`, or `[""]`.
    #[error("secret path has an empty segment at byte {pos}")]
    EmptySegment {
        /// Byte offset.
        pos: usize,
    },
    /// Bracket syntax: something else was expected.
    #[error("unexpected {ch:?} at byte {pos} in secret path; expected {expected}")]
    Unexpected {
        /// The character found.
        ch: char,
        /// Its byte offset.
        pos: usize,
        /// What would have been valid there.
        expected: &'static str,
    },
    /// Bracket syntax: the input ended too early.
    #[error("secret path ends early; expected {expected}")]
    UnexpectedEnd {
        /// What was still expected.
        expected: &'static str,
    },
    /// A backslash escape other than `\\`, `\"`, `\'` in a quoted key.
    #[error(
        "unknown escape `\\{ch}` at byte {pos}; inside quotes only `\\\\`, `\\\"` and `\\'` are escapes"
    )]
    BadEscape {
        /// The character after the backslash.
        ch: char,
        /// Byte offset of the backslash.
        pos: usize,
    },
    /// An unquoted run of digits with a leading zero (`keys.007`, `keys[00]`). A list index
    /// has exactly one spelling, without leading zeros, so that the policy, the store and
    /// the audit log cannot disagree on which element a path names.
    #[error(
        "list index with a leading zero at byte {pos}; write indices without leading zeros (`0`, `7`, not `007`); a mapping key that is such digits is quoted, e.g. `[\"007\"]`"
    )]
    LeadingZero {
        /// Byte offset of the segment.
        pos: usize,
    },
    /// A `*` wildcard in a secret path (they are only for policy rule keys).
    #[error(
        "`*` at byte {pos}: wildcards are only allowed in policy rule keys; quote a key that is literally `*` as `[\"*\"]`"
    )]
    Wildcard {
        /// Byte offset.
        pos: usize,
    },
    /// A `*` that is only part of a segment, e.g. `data*`.
    #[error(
        "`*` at byte {pos} is inside a segment; `*` stands for one whole segment only (write `databases.*.staging`, not `databases.post*`)"
    )]
    PartialWildcard {
        /// Byte offset.
        pos: usize,
    },
}

/// Why a string is not a skill name, a skill digest or a skill selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkillError {
    /// Empty name.
    #[error("skill name is empty")]
    Empty,
    /// Longer than [`MAX_SKILL_NAME_LEN`](crate::MAX_SKILL_NAME_LEN).
    #[error("skill name is {len} bytes long; at most {max} bytes are allowed")]
    TooLong {
        /// Length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A character outside `[A-Za-z0-9._-]`.
    #[error(
        "skill name has {ch:?} at byte {pos}; names use A-Z, a-z, 0-9, `.`, `_`, `-` (or write `sha256:` and 64 lowercase hex digits)"
    )]
    InvalidChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        pos: usize,
    },
    /// `sha256:` not followed by exactly 64 lowercase hex digits.
    #[error("a skill digest is `sha256:` followed by exactly 64 lowercase hex digits")]
    BadDigest,
}

/// Why a string is not an [`AccessLevel`](crate::AccessLevel).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessLevelError {
    /// Empty.
    #[error("access level is empty; known levels: readonly, read-write, post, sign")]
    Empty,
    /// Longer than [`MAX_ACCESS_LEVEL_LEN`](crate::MAX_ACCESS_LEVEL_LEN).
    #[error(
        "access level is {len} bytes long (at most {max}); known levels: readonly, read-write, post, sign"
    )]
    TooLong {
        /// Length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a level agentsec knows (and so could not enforce).
    #[error(
        "unknown access level `{}`; known levels: readonly, read-write, post, sign (see `access_level` in the README)",
        .level.escape_debug()
    )]
    Unknown {
        /// The level as written (at most [`MAX_ACCESS_LEVEL_LEN`](crate::MAX_ACCESS_LEVEL_LEN) bytes).
        level: String,
    },
}

/// What is wrong at a [`Location`] of a policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidPolicy {
    /// The YAML itself does not parse.
    #[error("YAML syntax error: {0}")]
    Yaml(String),
    /// No document, or an empty one.
    #[error(
        "policy is empty; it must start with `access_control:` holding a `secrets:` mapping of rules"
    )]
    Empty,
    /// More than one YAML document (`---`) in one file.
    #[error("a policy file holds one YAML document; split further documents into their own files")]
    MultipleDocuments,
    /// Anchors, aliases or tags.
    #[error("YAML {0} are not supported in policy files; write the value out in full")]
    Unsupported(&'static str),
    /// Nested deeper than [`MAX_NESTING_DEPTH`](crate::MAX_NESTING_DEPTH).
    #[error("nested deeper than {max} levels; a policy needs 5")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_RULES`](crate::MAX_RULES) rules in all files together.
    #[error("more than {max} rules; split the store or use `*` segments")]
    TooManyRules {
        /// The limit.
        max: usize,
    },
    /// A key that has no meaning here.
    #[error("unknown key `{key}` in {context}; expected {expected}")]
    UnknownKey {
        /// The key (shortened if very long).
        key: String,
        /// Where it was found, e.g. "a rule".
        context: &'static str,
        /// The accepted keys.
        expected: &'static str,
    },
    /// A required key is missing.
    #[error("missing `{key}` in {context}")]
    MissingKey {
        /// The missing key.
        key: &'static str,
        /// Where it should be.
        context: &'static str,
    },
    /// The same key twice in one mapping.
    #[error("duplicate key `{key}` (first at {first}); keep one and merge the two")]
    DuplicateKey {
        /// The key (shortened if very long).
        key: String,
        /// Where it first appeared.
        first: Location,
    },
    /// A value of the wrong YAML type.
    #[error("`{field}` must be {expected}, found {found}{hint}")]
    WrongType {
        /// The field (or "a mapping key", "the document").
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What was found.
        found: &'static str,
        /// "; write ..." or empty.
        hint: &'static str,
    },
    /// A rule key that is not a valid path pattern.
    #[error("rule key is not a valid path pattern: {0}")]
    BadPattern(PathError),
    /// An invalid agent glob.
    #[error("invalid agent glob `{glob}`: {source}")]
    BadGlob {
        /// The glob (shortened if very long).
        glob: String,
        /// Why.
        source: GlobError,
    },
    /// An invalid `access_level`.
    #[error("invalid access_level: {0}")]
    BadAccessLevel(AccessLevelError),
    /// An invalid entry of `skills`.
    #[error("invalid skill: {0}")]
    BadSkill(SkillError),
    /// An `ssh_hosts` entry that is not a `SHA256:...` host key fingerprint.
    #[error("invalid ssh_hosts entry `{host}`: {why}")]
    BadSshHost {
        /// The entry (shortened if very long).
        host: String,
        /// What the form is.
        why: String,
    },
    /// `ssh_hosts` with no entry (which would read as "no host" but mean "any"), or more
    /// than [`crate::MAX_SSH_HOSTS`].
    #[error(
        "`ssh_hosts` lists {0} host keys; list between 1 and {max} (`SHA256:...` fingerprints), or remove the key to allow any host",
        max = crate::MAX_SSH_HOSTS
    )]
    SshHostsCount(usize),
    /// A `lifetime` that is no duration, or outside 1 s ..= [`crate::MAX_KEY_LIFETIME`].
    #[error("invalid lifetime: {0}")]
    BadLifetime(String),
    /// An SSH field (`ssh_hosts`, `confirm`, `lifetime`) on a rule whose `access_level` is not `sign`.
    #[error(
        "`{0}` applies only to keys an SSH agent signs with; give the rule `access_level: sign` or remove `{0}`"
    )]
    SshFieldNotSign(&'static str),
    /// `skills: []`: an empty list would read as "any skill".
    #[error(
        "`skills: []` lists no skill; remove the `skills` key to allow any skill, or list the skills (`sha256:...` entries, or names of components in the skills directory)"
    )]
    EmptySkills,
    /// A rule with neither `allowed_agents` nor `denied_agents` entries.
    #[error(
        "rule `{0}` names no agents; give it an `allowed_agents` list (who may read) or a `denied_agents` list (who may never read)"
    )]
    NoAgents(String),
    /// The same rule key (after canonicalisation) defined twice.
    #[error(
        "rule `{pattern}` is also defined at {first}; conflicts are reported, never resolved: merge the two rules into one"
    )]
    Conflict {
        /// The canonical rule key.
        pattern: String,
        /// The other definition.
        first: Location,
    },
    /// A `sandbox:` value that does not parse.
    #[error("`sandbox.{field}`: {reason}")]
    BadSetting {
        /// The setting.
        field: &'static str,
        /// What is wrong and an example.
        reason: String,
    },
    /// An `inject:` entry of a rule that is not valid.
    #[error("`inject` `{key}`: {reason}")]
    BadInject {
        /// The key (`url`, `header`, `as`).
        key: &'static str,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// An `egress:` entry (or a key of one) that is not valid.
    #[error("`egress` `{key}`: {reason}")]
    BadEgress {
        /// The key (`url`, `methods`, `agents`, ...).
        key: &'static str,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// An `identity:` or `agents:` value that is not valid.
    #[error("`{field}`: {reason}")]
    BadIdentity {
        /// The key (`identity`, `agents`, `unix_users`, ...).
        field: &'static str,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// The same agent bound in two files, or `identity:` set differently by two files.
    #[error(
        "{what} is also set at {first}; conflicts are reported, never resolved: set it in one file"
    )]
    IdentityConflict {
        /// What (`agents.ops/x`, `identity`).
        what: String,
        /// The other definition.
        first: Location,
    },
    /// The same `sandbox:` field set by two files.
    #[error(
        "`sandbox.{field}` is also set at {first}; conflicts are reported, never resolved: set it in one file"
    )]
    SandboxConflict {
        /// The setting.
        field: &'static str,
        /// The other definition.
        first: Location,
    },
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A file or directory could not be read.
    #[error("{origin}: cannot read policy: {source}")]
    Io {
        /// The path.
        origin: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is larger than [`MAX_POLICY_FILE_SIZE`](crate::MAX_POLICY_FILE_SIZE).
    #[error("{origin}: policy file is {len} bytes; at most {max} bytes are allowed")]
    TooLarge {
        /// The path.
        origin: String,
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A file is not UTF-8.
    #[error("{origin}: policy file is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        /// The path.
        origin: String,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// A directory holds no `*.yaml` / `*.yml` file.
    #[error("{origin}: no `*.yaml` or `*.yml` policy files in this directory")]
    EmptyDir {
        /// The directory.
        origin: String,
    },
    /// More than [`MAX_POLICY_FILES`](crate::MAX_POLICY_FILES) files.
    #[error("more than {max} policy files")]
    TooManyFiles {
        /// The limit.
        max: usize,
    },
    /// No file or directory was given at all.
    #[error("no policy given; pass a policy file or a directory of them")]
    NoSources,
    /// The content is invalid at a location.
    #[error("{at}: {kind}")]
    Invalid {
        /// Where.
        at: Location,
        /// What.
        kind: InvalidPolicy,
    },
}

impl PolicyError {
    /// The location in a policy file, if the error has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Invalid { at, .. } => Some(at),
            _ => None,
        }
    }

    /// What is wrong, for errors at a location.
    pub fn invalid(&self) -> Option<&InvalidPolicy> {
        match self {
            Self::Invalid { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// Shorten user text for an error message (policy keys are not secrets, but
/// a one-megabyte key should not become a one-megabyte message).
pub(crate) fn snippet(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.escape_debug().to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or_default().escape_debug())
}
