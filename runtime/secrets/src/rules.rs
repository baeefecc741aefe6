//! Which leaves a SOPS file stores encrypted (SPEC section 4, `Tree.shouldBeEncrypted`).

use regex::Regex;

/// The file's partial-encryption option (at most one may be set; without any,
/// `unencrypted_suffix: _unencrypted` applies).
pub(crate) enum Selection {
    /// Not encrypted if any path component ends with the suffix.
    UnencryptedSuffix(String),
    /// Encrypted only if some path component ends with the suffix.
    EncryptedSuffix(String),
    /// Not encrypted if any path component matches.
    UnencryptedRegex(Regex),
    /// Encrypted only if some path component matches.
    EncryptedRegex(Regex),
    /// `unencrypted_comment_regex` / `encrypted_comment_regex`: selection depends on comments,
    /// which the YAML reader cannot see. Leaves are classified by their form instead (see
    /// `decrypt.rs`), which the mandatory MAC check makes safe.
    Comment,
}

impl Selection {
    /// Builds the selection from a metadata field and its value.
    pub(crate) fn from_field(field: &str, value: &str) -> Result<Selection, String> {
        let re = || Regex::new(value).map_err(|e| format!("invalid regular expression: {e}"));
        Ok(match field {
            "unencrypted_suffix" => Selection::UnencryptedSuffix(value.to_owned()),
            "encrypted_suffix" => Selection::EncryptedSuffix(value.to_owned()),
            "unencrypted_regex" => Selection::UnencryptedRegex(re()?),
            "encrypted_regex" => Selection::EncryptedRegex(re()?),
            _ => {
                re()?;
                Selection::Comment
            }
        })
    }

    /// Whether a leaf at `path` (mapping keys from the root) must be encrypted; `None` for
    /// comment-based selection, which cannot be decided from the path.
    pub(crate) fn should_encrypt(&self, path: &[String]) -> Option<bool> {
        Some(match self {
            Selection::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Selection::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Selection::UnencryptedRegex(re) => !path.iter().any(|k| re.is_match(k)),
            Selection::EncryptedRegex(re) => path.iter().any(|k| re.is_match(k)),
            Selection::Comment => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn rules_follow_sops() {
        let unenc = Selection::UnencryptedSuffix("_unencrypted".to_owned());
        assert_eq!(unenc.should_encrypt(&p(&["a", "b"])), Some(true));
        assert_eq!(
            unenc.should_encrypt(&p(&["a_unencrypted", "b"])),
            Some(false)
        );
        let enc = Selection::from_field("encrypted_regex", "^(data|stringData)$").ok();
        let enc = enc
            .as_ref()
            .and_then(|s| s.should_encrypt(&p(&["stringData", "x"])));
        assert_eq!(enc, Some(true));
        let enc = Selection::from_field("encrypted_regex", "^(data|stringData)$").ok();
        let enc = enc
            .as_ref()
            .and_then(|s| s.should_encrypt(&p(&["metadata", "data2"])));
        assert_eq!(enc, Some(false));
        let suffix = Selection::EncryptedSuffix("Data".to_owned());
        assert_eq!(
            suffix.should_encrypt(&p(&["stringData", "port"])),
            Some(true)
        );
        assert_eq!(suffix.should_encrypt(&p(&["kind"])), Some(false));
        assert!(Selection::from_field("encrypted_regex", "(").is_err());
    }
}
