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
    /// Not encrypted if a comment in the comment stack matches.
    UnencryptedCommentRegex(Regex),
    /// Encrypted only if a comment in the comment stack matches (not the matching comment
    /// line itself).
    EncryptedCommentRegex(Regex),
}

/// The metadata (and `.sops.yaml` rule) fields that choose which leaves are
/// encrypted, in sops' order; at most one may be set.
pub(crate) const SELECTION_FIELDS: [&str; 6] = [
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
];

/// The comment stack of sops' tree walk: one list per open mapping/sequence; a comment is
/// appended to the innermost list, a non-comment item clears it after it is processed.
pub(crate) type CommentStack = Vec<Vec<String>>;

impl Selection {
    /// Builds the selection from a metadata field and its value.
    pub(crate) fn from_field(field: &str, value: &str) -> Result<Selection, String> {
        let re = || Regex::new(value).map_err(|e| format!("invalid regular expression: {e}"));
        Ok(match field {
            "unencrypted_suffix" => Selection::UnencryptedSuffix(value.to_owned()),
            "encrypted_suffix" => Selection::EncryptedSuffix(value.to_owned()),
            "unencrypted_regex" => Selection::UnencryptedRegex(re()?),
            "encrypted_regex" => Selection::EncryptedRegex(re()?),
            "unencrypted_comment_regex" => Selection::UnencryptedCommentRegex(re()?),
            _ => Selection::EncryptedCommentRegex(re()?),
        })
    }

    /// The metadata field and value this selection is written as.
    pub(crate) fn field(&self) -> (&'static str, String) {
        match self {
            Selection::UnencryptedSuffix(s) => ("unencrypted_suffix", s.clone()),
            Selection::EncryptedSuffix(s) => ("encrypted_suffix", s.clone()),
            Selection::UnencryptedRegex(r) => ("unencrypted_regex", r.as_str().to_owned()),
            Selection::EncryptedRegex(r) => ("encrypted_regex", r.as_str().to_owned()),
            Selection::UnencryptedCommentRegex(r) => {
                ("unencrypted_comment_regex", r.as_str().to_owned())
            }
            Selection::EncryptedCommentRegex(r) => {
                ("encrypted_comment_regex", r.as_str().to_owned())
            }
        }
    }

    /// sops' `shouldBeEncrypted`: whether a leaf (or comment) at `path` (mapping keys from the
    /// root) with the given comment stack is encrypted.
    pub(crate) fn should_encrypt(
        &self,
        path: &[String],
        comments: &CommentStack,
        is_comment: bool,
    ) -> bool {
        match self {
            Selection::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Selection::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Selection::UnencryptedRegex(re) => !path.iter().any(|k| re.is_match(k)),
            Selection::EncryptedRegex(re) => path.iter().any(|k| re.is_match(k)),
            Selection::UnencryptedCommentRegex(re) => {
                !comments.iter().flatten().any(|c| re.is_match(c))
            }
            Selection::EncryptedCommentRegex(re) => {
                let last_level = comments.len().saturating_sub(1);
                comments.iter().enumerate().any(|(i, level)| {
                    level.iter().enumerate().any(|(j, c)| {
                        let itself = is_comment && i == last_level && j + 1 == level.len();
                        !itself && re.is_match(c)
                    })
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Whether a selection encrypts `path` (with no comments above it), as an `Option` so
    /// that it chains after `Selection::from_field(..).ok()` in the assertions.
    trait EncryptsPath {
        fn encrypts(&self, path: &[String]) -> Option<bool>;
    }
    impl EncryptsPath for Selection {
        fn encrypts(&self, path: &[String]) -> Option<bool> {
            Some(self.should_encrypt(path, &Vec::new(), false))
        }
    }

    #[test]
    fn rules_follow_sops() {
        let unenc = Selection::UnencryptedSuffix("_unencrypted".to_owned());
        assert_eq!(unenc.encrypts(&p(&["a", "b"])), Some(true));
        assert_eq!(unenc.encrypts(&p(&["a_unencrypted", "b"])), Some(false));
        let enc = Selection::from_field("encrypted_regex", "^(data|stringData)$").ok();
        let enc = enc
            .as_ref()
            .and_then(|s| s.encrypts(&p(&["stringData", "x"])));
        assert_eq!(enc, Some(true));
        let enc = Selection::from_field("encrypted_regex", "^(data|stringData)$").ok();
        let enc = enc
            .as_ref()
            .and_then(|s| s.encrypts(&p(&["metadata", "data2"])));
        assert_eq!(enc, Some(false));
        let suffix = Selection::EncryptedSuffix("Data".to_owned());
        assert_eq!(suffix.encrypts(&p(&["stringData", "port"])), Some(true));
        assert_eq!(suffix.encrypts(&p(&["kind"])), Some(false));
        assert!(Selection::from_field("encrypted_regex", "(").is_err());
    }
}

#[cfg(test)]
mod comment_tests {
    use super::*;

    #[test]
    fn comment_regexes_follow_the_stack() {
        let enc = Selection::from_field("encrypted_comment_regex", "sops:enc").ok();
        let stack = vec![vec![" sops:enc".to_owned()]];
        let sel = enc.as_ref();
        assert_eq!(
            sel.map(|s| s.should_encrypt(&[], &stack, false)),
            Some(true)
        );
        // The matching comment line itself stays in clear.
        assert_eq!(
            sel.map(|s| s.should_encrypt(&[], &stack, true)),
            Some(false)
        );
        let unenc = Selection::from_field("unencrypted_comment_regex", "sops:enc").ok();
        assert_eq!(
            unenc.map(|s| s.should_encrypt(&[], &stack, false)),
            Some(false)
        );
    }
}
