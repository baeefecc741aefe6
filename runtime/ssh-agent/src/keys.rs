//! The keys an agent id may sign with: found through the policy, their public halves kept
//! for listing, their private halves fetched through the broker for each signature.

use std::sync::Arc;
use std::time::Duration;

use agentsec_audit::RunContext;
use agentsec_broker::{Broker, Caller, CallerLimits, NoRedaction};
use agentsec_policy::{AgentId, Decision, Operation, SecretPath, SignTarget};
use ssh_key::private::{KeypairData, RsaKeypair};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, HashAlg, PrivateKey, Signature};
use zeroize::Zeroizing;

use crate::skill_ref;

/// Most keys one agent serves. OpenSSH offers every listed key to a server, which
/// disconnects after `MaxAuthTries` (6 by default): more than a few is a mistake, and the
/// bound keeps one policy from loading a whole store.
pub const MAX_KEYS: u32 = 64;

/// What the audit record of a key's loading names as its key (its fingerprint is not known
/// until it is decrypted).
pub const LOAD_KEY: &str = "load";

/// A key the agent lists: its public half and where its private half lives. No secret.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The secret path of the OpenSSH private key (the comment `ssh-add -l` shows).
    pub path: String,
    /// The public key.
    pub public: KeyData,
    /// `SHA256:...`, as `ssh-add -l` prints it.
    pub fingerprint: String,
    /// The granting rule's `confirm`: each signature waits for the user's yes.
    pub confirm: bool,
    /// The granting rule's `lifetime`: how long the agent serves the key after it first
    /// loaded it.
    pub lifetime: Option<Duration>,
}

/// The keys of one agent id under one version of the policy and store.
pub struct Keyring {
    pub(crate) broker: Arc<Broker>,
    pub(crate) agent: AgentId,
    pub(crate) keys: Vec<KeyEntry>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("agent", &self.agent)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Every leaf of the store that the policy lets `agent` sign with and that holds an
    /// unencrypted OpenSSH private key. Each one is fetched once through the broker (an
    /// audit record, `access_type: sign`, key `load`) to learn its public key; the private
    /// half is dropped (and zeroized) at once. `run` is the loading process's context.
    /// The second value lists the leaves skipped and why (paths only, never values).
    pub fn load(broker: Arc<Broker>, agent: AgentId, run: RunContext) -> (Keyring, Vec<String>) {
        let mut skipped = Vec::new();
        let skill = skill_ref();
        // Each key's use constraints come from the rule that grants it (`confirm`,
        // `lifetime`); the broker decides every signature again.
        let candidates: Vec<(SecretPath, bool, Option<Duration>)> =
            match broker.names().list(&SecretPath::root()) {
                Ok(paths) => paths
                    .into_iter()
                    .filter_map(|p| {
                        let granted = match broker.policy().evaluate(
                            &agent,
                            &skill,
                            &p,
                            Operation::Sign {
                                key: LOAD_KEY,
                                target: SignTarget::Load,
                            },
                        ) {
                            Decision::Allow(a) => Some((a.rule().confirm(), a.rule().lifetime())),
                            _ => None,
                        };
                        granted.map(|(confirm, lifetime)| (p, confirm, lifetime))
                    })
                    .collect(),
                Err(e) => {
                    skipped.push(format!("the store cannot list its names: {e}"));
                    Vec::new()
                }
            };
        let mut caller = Caller::new(
            agent.clone(),
            skill,
            run,
            CallerLimits::new(MAX_KEYS, agentsec_policy::MAX_PATH_LEN),
            NoRedaction,
        );
        let mut keys = Vec::new();
        for (path, confirm, lifetime) in candidates {
            let path = path.to_string();
            if keys.len() >= MAX_KEYS as usize {
                skipped.push(format!("{path}: more than {MAX_KEYS} keys; not served"));
                continue;
            }
            let released = match broker.request(
                &mut caller,
                Operation::Sign {
                    key: LOAD_KEY,
                    target: SignTarget::Load,
                },
                &path,
            ) {
                Ok(released) => released,
                Err(refusal) => {
                    skipped.push(format!("{path}: {refusal}"));
                    continue;
                }
            };
            match parse_private(released.value.expose_secret()) {
                Ok(private) => {
                    let public = private.public_key().key_data().clone();
                    let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
                    keys.push(KeyEntry {
                        path,
                        public,
                        fingerprint,
                        confirm,
                        lifetime,
                    });
                }
                Err(why) => skipped.push(format!("{path}: {why}")),
            }
        }
        (
            Keyring {
                broker,
                agent,
                keys,
            },
            skipped,
        )
    }

    /// The keys listed.
    pub fn keys(&self) -> &[KeyEntry] {
        &self.keys
    }

    /// The broker this keyring signs through.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }
}

/// An unencrypted OpenSSH private key of a type the agent signs with. The message names
/// no part of the value.
pub(crate) fn parse_private(value: &[u8]) -> Result<PrivateKey, String> {
    let text = std::str::from_utf8(value)
        .map_err(|_| "not an OpenSSH private key (not text)".to_owned())?;
    let private = PrivateKey::from_openssh(text.trim()).map_err(|_| {
        "not an OpenSSH private key (expected a `-----BEGIN OPENSSH PRIVATE KEY-----` block, \
         as `ssh-keygen -t ed25519 -N ''` writes)"
            .to_owned()
    })?;
    if private.is_encrypted() {
        return Err(
            "the private key has a passphrase; store it without one (the SOPS file is its \
             encryption): `ssh-keygen -p -N '' -f KEY`"
                .to_owned(),
        );
    }
    match private.algorithm() {
        Algorithm::Ed25519 | Algorithm::Rsa { .. } => Ok(private),
        Algorithm::Ecdsa {
            curve: ssh_key::EcdsaCurve::NistP256,
        } => Ok(private),
        other => Err(format!(
            "{} keys are not served (ed25519, rsa and ecdsa-sha2-nistp256 are)",
            other.as_str()
        )),
    }
}

/// The signature algorithm flags of a sign request (draft-miller-ssh-agent § 3.6.1).
const RSA_SHA2_256: u32 = 0x02;
const RSA_SHA2_512: u32 = 0x04;

/// Signs `data` with `private`; an RSA key signs with SHA-512 or SHA-256 as `flags` ask
/// (never SHA-1: `ssh-rsa` signatures are refused).
pub(crate) fn sign(private: &PrivateKey, data: &[u8], flags: u32) -> Result<Signature, String> {
    match private.key_data() {
        KeypairData::Rsa(rsa) => sign_rsa(rsa, data, flags),
        other => signature::Signer::try_sign(other, data).map_err(|e| format!("signing: {e}")),
    }
}

fn sign_rsa(key: &RsaKeypair, data: &[u8], flags: u32) -> Result<Signature, String> {
    use rsa::BigUint;
    use rsa::pkcs1v15::SigningKey;
    use signature::SignatureEncoding;
    let hash = if flags & RSA_SHA2_512 != 0 {
        HashAlg::Sha512
    } else if flags & RSA_SHA2_256 != 0 {
        HashAlg::Sha256
    } else {
        return Err(
            "ssh-rsa (SHA-1) signatures are refused; the client must ask for rsa-sha2-256 \
             or rsa-sha2-512"
                .to_owned(),
        );
    };
    let int = |m: &ssh_key::Mpint| {
        m.as_positive_bytes()
            .map(BigUint::from_bytes_be)
            .ok_or_else(|| "the RSA key has a negative component".to_owned())
    };
    // Built from the components: ssh-key 0.6.7's own conversion passes `p` twice.
    let private = rsa::RsaPrivateKey::from_components(
        int(&key.public.n)?,
        int(&key.public.e)?,
        int(&key.private.d)?,
        vec![int(&key.private.p)?, int(&key.private.q)?],
    )
    .map_err(|_| "the RSA key's components are inconsistent".to_owned())?;
    let bytes: Zeroizing<Vec<u8>> = Zeroizing::new(match hash {
        HashAlg::Sha512 => {
            signature::Signer::try_sign(&SigningKey::<sha2::Sha512>::new(private), data)
                .map_err(|e| format!("signing: {e}"))?
                .to_vec()
        }
        _ => signature::Signer::try_sign(&SigningKey::<sha2::Sha256>::new(private), data)
            .map_err(|e| format!("signing: {e}"))?
            .to_vec(),
    });
    Signature::new(Algorithm::Rsa { hash: Some(hash) }, bytes.to_vec())
        .map_err(|e| format!("signature: {e}"))
}
