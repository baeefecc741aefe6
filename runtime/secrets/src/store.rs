//! The [`SecretStore`] and [`NameIndex`] traits, what they return and how they fail.
//!
//! A store answers two questions: "the value at this path" (which needs the policy's
//! [`Authorized`] proof, so no code path reads a secret without passing policy) and "the leaf
//! names under this prefix" (names only). The second is its own trait, [`NameIndex`], because
//! it can often be answered without any key: a SOPS file's key names are clear text, so a
//! policy reviewer can check rules against them with no production identity.

use agentsec_policy::{Authorized, SecretPath};

use crate::SecretValue;

/// A secret value released by a store, with what the caller must know about it.
#[non_exhaustive]
pub struct StoredSecret {
    /// The value (zeroized on drop).
    pub value: SecretValue,
    /// Whether the value must be redacted from what a skill sends back. A value the store
    /// keeps in clear (a URL, a region: public in the file itself) is readable through the
    /// same policy but not redacted, so that a skill can echo it.
    pub redact: bool,
    /// The lease the value was issued under, when the store issued it for this run (a
    /// Vault dynamic credential): audit records name it, so an operator can revoke by
    /// lease. An identifier, never a credential.
    pub lease: Option<String>,
}

impl StoredSecret {
    /// A value to be redacted from output (a secret).
    pub fn secret(value: SecretValue) -> Self {
        StoredSecret {
            value,
            redact: true,
            lease: None,
        }
    }

    /// A value that is public where it is stored, and so is not redacted.
    pub fn public(value: SecretValue) -> Self {
        StoredSecret {
            value,
            redact: false,
            lease: None,
        }
    }

    /// The value, issued under `lease` (see [`StoredSecret::lease`]).
    pub fn leased(value: SecretValue, lease: String) -> Self {
        StoredSecret {
            value,
            redact: true,
            lease: Some(lease),
        }
    }
}

/// Why a store did not return a value. Messages name paths, never values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Nothing at this path (or it is `null`).
    #[error("no secret at `{path}`")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The path names a mapping or a list, not a leaf.
    #[error("`{path}` is a mapping or list, not a secret")]
    NotALeaf {
        /// The path asked for.
        path: String,
        /// Its keys (or list indexes), names only.
        children: Vec<String>,
    },
    /// The path names an encrypted value that is not bound to it: its sops
    /// AAD fits other tree positions too, so the file may have been
    /// restructured to move it here (see SECURITY.md). Never served.
    #[error("`{path}` is not served: {reason}")]
    Unbound {
        /// The path asked for.
        path: String,
        /// Why, and how to restructure the file.
        reason: &'static str,
    },
    /// A rule refuses the agent this operation at another position in the
    /// store where this value may have been (for a SOPS file: the same sops
    /// AAD, where the value may have been before the file was restructured):
    /// a `denied_agents` deny, or an access level that does not permit the
    /// operation there. A deny (and a restriction) always wins.
    #[error(
        "`{path}` is denied: rule `{rule}` ({location}) denies this, or restricts it by its \
         access level, at a position with the same sops AAD as this value (sops binds a value \
         only to its mapping keys joined by `:`, not to list positions, so the file may have \
         been restructured to move it here); a deny always wins"
    )]
    DeniedElsewhere {
        /// The path asked for.
        path: String,
        /// The denying rule's pattern.
        rule: String,
        /// Where the rule is, `file:line`.
        location: String,
    },
    /// The grant was made for a listing ([`Authorized::releases_value`] is
    /// false): it names paths and never unlocks a value.
    #[error("`{path}`: a grant to list names releases no value")]
    ListingGrant {
        /// The path asked for.
        path: String,
    },
    /// The backend cannot answer right now.
    #[error("the secret store is unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// The leaf names of a store, without their values: all a policy review needs.
pub trait NameIndex: Send + Sync {
    /// Every leaf path at or below `prefix` (the root lists everything), in store order.
    /// Names only; callers filter them through the policy.
    fn list(&self, prefix: &SecretPath) -> Result<Vec<SecretPath>, StoreError>;
}

/// Where secret values come from.
pub trait SecretStore: NameIndex {
    /// The leaf at `grant.path()`. Requires the policy's proof.
    fn get(&self, grant: &Authorized<'_>) -> Result<StoredSecret, StoreError>;

    /// The leaf at `grant.path()` for the skill run `run_id`. A store whose values are
    /// issued per run (Vault's dynamic database credentials) issues them at the run's
    /// first read, serves its later reads the same ones, and releases them at
    /// [`SecretStore::end_run`]; every other store answers as [`SecretStore::get`].
    fn get_in_run(&self, grant: &Authorized<'_>, run_id: &str) -> Result<StoredSecret, StoreError> {
        let _ = run_id;
        self.get(grant)
    }

    /// The run `run_id` ended (in any way: a result, a trap, a limit): release what was
    /// issued for it (revoke its leases). Best effort; the default does nothing.
    fn end_run(&self, run_id: &str) {
        let _ = run_id;
    }
}
