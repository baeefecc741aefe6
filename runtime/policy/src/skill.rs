//! Skill identity: the running component's name and sha256 digest, and the
//! `skills:` selectors that scope a rule to some skills.

use std::fmt;

use crate::error::SkillError;

/// Longest accepted skill name, in bytes.
///
/// Skill names come from component file names and policy files and are
/// written into audit records; 128 bytes is ample for a readable name and
/// bounds what each record carries.
pub const MAX_SKILL_NAME_LEN: usize = 128;

/// A skill name: `[A-Za-z0-9._-]+`, at most [`MAX_SKILL_NAME_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SkillName(Box<str>);

impl SkillName {
    /// Validates a skill name.
    ///
    /// # Errors
    /// Empty, too long, or the first invalid character with its byte position.
    pub fn parse(name: &str) -> Result<Self, SkillError> {
        if name.is_empty() {
            return Err(SkillError::Empty);
        }
        if name.len() > MAX_SKILL_NAME_LEN {
            return Err(SkillError::TooLong {
                len: name.len(),
                max: MAX_SKILL_NAME_LEN,
            });
        }
        if let Some((pos, ch)) = name
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(SkillError::InvalidChar { ch, pos });
        }
        Ok(Self(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SkillName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The SHA-256 digest of a skill component. Displays as `sha256:<64 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SkillDigest([u8; 32]);

impl SkillDigest {
    /// Wraps a digest computed by the caller.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses `sha256:` followed by 64 lowercase hex digits.
    ///
    /// # Errors
    /// [`SkillError::BadDigest`] for anything else.
    pub fn parse(text: &str) -> Result<Self, SkillError> {
        let hex = text.strip_prefix("sha256:").ok_or(SkillError::BadDigest)?;
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return Err(SkillError::BadDigest);
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let (Some(&hi), Some(&lo)) = (pair.first(), pair.get(1)) else {
                return Err(SkillError::BadDigest);
            };
            *byte = (nibble(hi)? << 4) | nibble(lo)?;
        }
        Ok(Self(out))
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn nibble(c: u8) -> Result<u8, SkillError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(SkillError::BadDigest),
    }
}

impl fmt::Display for SkillDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SkillDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SkillDigest({self})")
    }
}

/// The running component, as the host identifies it: a name and a digest.
///
/// Whoever chooses a component's file chooses its file name, so a name
/// counts ([`SkillSelector::Name`] matches) only when the operator vouches
/// for it, e.g. because the component was loaded from the skills directory
/// they configured ([`SkillRef::new`]). A component from anywhere else is
/// [unnamed](SkillRef::unnamed): it keeps its name as a label for messages
/// and the audit log, but only `sha256:` selectors match it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkillRef {
    name: SkillName,
    digest: SkillDigest,
    named: bool,
}

impl SkillRef {
    /// Identifies a component by a name the caller vouches for (it came from
    /// a trusted skills directory) and the SHA-256 of its bytes.
    pub fn new(name: SkillName, digest: SkillDigest) -> Self {
        Self {
            name,
            digest,
            named: true,
        }
    }

    /// Identifies a component by its digest alone; `label` (e.g. its file
    /// name) is shown in messages and records but selects nothing.
    pub fn unnamed(label: SkillName, digest: SkillDigest) -> Self {
        Self {
            name: label,
            digest,
            named: false,
        }
    }

    /// The name (for an [unnamed](Self::unnamed) component, its label).
    pub fn name(&self) -> &SkillName {
        &self.name
    }

    /// Whether the name counts for `skills:` name entries.
    pub fn is_named(&self) -> bool {
        self.named
    }

    /// The digest.
    pub fn digest(&self) -> &SkillDigest {
        &self.digest
    }
}

impl fmt::Display for SkillRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.named {
            write!(f, "{} ({})", self.name, self.digest)
        } else {
            write!(f, "{} (unnamed, {})", self.name, self.digest)
        }
    }
}

/// An entry of a rule's `skills:` list: a name or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkillSelector {
    /// Any component with this name, loaded from a trusted skills
    /// directory ([`SkillRef::is_named`]).
    Name(SkillName),
    /// Exactly the component with this digest.
    Digest(SkillDigest),
}

impl SkillSelector {
    /// Parses `sha256:<64 lowercase hex>` as a digest, anything else as a name.
    ///
    /// # Errors
    /// An invalid digest or name.
    pub fn parse(text: &str) -> Result<Self, SkillError> {
        if text.starts_with("sha256:") {
            SkillDigest::parse(text).map(Self::Digest)
        } else {
            SkillName::parse(text).map(Self::Name)
        }
    }

    /// Whether `skill` is selected.
    pub fn matches(&self, skill: &SkillRef) -> bool {
        match self {
            Self::Name(n) => skill.named && *n == skill.name,
            Self::Digest(d) => *d == skill.digest,
        }
    }
}

impl fmt::Display for SkillSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => n.fmt(f),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trip() {
        let text = format!("sha256:{}", "0123456789abcdef".repeat(4));
        let d = SkillDigest::parse(&text).unwrap();
        assert_eq!(d.to_string(), text);
        assert_eq!(
            SkillSelector::parse(&text).unwrap(),
            SkillSelector::Digest(d)
        );
        assert_eq!(
            SkillDigest::parse(&text.to_uppercase().replace("SHA256", "sha256")),
            Err(SkillError::BadDigest)
        );
        assert_eq!(SkillDigest::parse("sha256:abc"), Err(SkillError::BadDigest));
        assert_eq!(
            SkillSelector::parse("sha256:zz"),
            Err(SkillError::BadDigest)
        );
    }

    #[test]
    fn an_unnamed_component_matches_only_by_digest() {
        let name = SkillName::parse("db-healthcheck").unwrap();
        let digest = SkillDigest::from_bytes([7; 32]);
        let unnamed = SkillRef::unnamed(name.clone(), digest);
        assert!(!SkillSelector::Name(name.clone()).matches(&unnamed));
        assert!(SkillSelector::Digest(digest).matches(&unnamed));
        let named = SkillRef::new(name.clone(), digest);
        assert!(SkillSelector::Name(name).matches(&named));
        assert!(unnamed.to_string().contains("unnamed"));
    }

    #[test]
    fn names() {
        assert!(SkillName::parse("db-healthcheck").is_ok());
        assert_eq!(
            SkillName::parse("db health"),
            Err(SkillError::InvalidChar { ch: ' ', pos: 2 })
        );
        assert_eq!(SkillName::parse(""), Err(SkillError::Empty));
    }
}
