//! What happened to each master key while recovering the data key: the report shown by
//! [`SopsError::DataKey`](crate::SopsError::DataKey).

use std::fmt;

use super::UnsupportedIdentity;

/// What happened to one master key while recovering the data key.
#[derive(Debug, Clone)]
pub struct KeyAttempt {
    /// The recipient (an `age1…` public key) or the master key type (`pgp`, `kms`, ...).
    pub recipient: String,
    /// Why it failed, or `None` if it succeeded.
    pub failure: Option<String>,
}

/// One key group's outcome.
#[derive(Debug, Clone)]
pub struct GroupReport {
    /// Every master key of the group that was tried.
    pub attempts: Vec<KeyAttempt>,
    /// Whether some key of the group decrypted its part.
    pub success: bool,
}

/// Why the data key could not be recovered: per group, the recipients tried (public keys only),
/// plus where identities were looked for. Shown by [`SopsError::DataKey`](crate::SopsError::DataKey).
#[derive(Debug, Clone)]
pub struct DataKeyReport {
    /// One entry per key group.
    pub groups: Vec<GroupReport>,
    /// Groups needed (Shamir threshold; 1 without Shamir).
    pub threshold: usize,
    /// Number of usable identities that were tried.
    pub identities: usize,
    /// Locations searched that held no identity.
    pub searched: Vec<String>,
    /// Identities found that this build cannot use.
    pub unsupported: Vec<(String, UnsupportedIdentity)>,
    /// A problem with the recovered parts themselves (e.g. Shamir shares that do not combine).
    pub detail: Option<String>,
}

impl fmt::Display for DataKeyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.groups.iter().enumerate() {
            writeln!(
                f,
                "Group {i}: {}",
                if g.success { "SUCCESS" } else { "FAILED" }
            )?;
            if !g.success {
                for a in &g.attempts {
                    match &a.failure {
                        Some(why) => writeln!(f, "  {}: FAILED ({why})", a.recipient)?,
                        None => writeln!(f, "  {}: SUCCESS", a.recipient)?,
                    }
                }
            }
        }
        if let Some(d) = &self.detail {
            writeln!(f, "{d}")?;
        }
        if self.groups.len() > 1 {
            let ok = self.groups.iter().filter(|g| g.success).count();
            writeln!(
                f,
                "The file needs {} of {} key groups (Shamir threshold); {ok} succeeded.",
                self.threshold,
                self.groups.len()
            )?;
        }
        for (source, kind) in &self.unsupported {
            writeln!(f, "Found {kind} in {source}.")?;
        }
        if self.identities == 0 {
            write!(f, "No usable age identity was found")?;
        } else {
            write!(
                f,
                "None of the {} age identities loaded matches a recipient above",
                self.identities
            )?;
        }
        if !self.searched.is_empty() {
            write!(f, "; also searched: {}", self.searched.join(", "))?;
        }
        write!(
            f,
            ".\nHint: set SOPS_AGE_KEY_FILE to a key file holding the private key of one of these \
             recipients (or SOPS_AGE_KEY to the key, or SOPS_AGE_KEY_CMD to a command that prints it)."
        )
    }
}
