//! `agentsec ssh-agent`: the SSH agent protocol on a unix socket, signing with the OpenSSH
//! private keys (SOPS leaves) that the policy lets one agent id sign with.
//!
//! A trust boundary of its own: SSH clients on a socket. What it does:
//!
//! - **Keys.** [`Keyring::load`] finds every leaf that the policy grants the agent
//!   `access_level: sign` on and that holds an unencrypted OpenSSH private key (ed25519,
//!   RSA, ECDSA P-256). Only their public halves are kept; `ssh-add -l` lists exactly those.
//! - **Signatures.** A sign request is answered only for a listed key, and only after the
//!   [`Broker`](agentsec_broker::Broker) has decided `Operation::Sign` for it again (a policy
//!   reloaded since is in force) and recorded it: `access_type: sign`, the key's path, its
//!   fingerprint, the caller's uid and pid (`SO_PEERCRED`), the server host key when the
//!   client bound the connection (`session-bind@openssh.com`). The private key is fetched,
//!   used and zeroized for each signature; it never leaves the process.
//! - **Peers.** The kernel names each peer. One that the policy's `agents:` section does
//!   not bind to the agent id, or (with no binding) whose uid is not the agent's owner, is
//!   refused before a byte is read; the refusal is on the record.
//! - **Use constraints.** A rule's `confirm: true` makes each signature wait for the
//!   user's yes through `SSH_ASKPASS` ([`Askpass`]), asked before the key is fetched; its
//!   `lifetime` ends the key's service that long after the agent first loaded it (as
//!   `ssh-add -t`): it is no longer listed and signs nothing.
//! - **No key management.** `add`, `remove`, `lock` and `unlock` requests are refused (and
//!   recorded): the policy decides which keys exist. Their bytes (a client's private key)
//!   are never parsed.
#![forbid(unsafe_code)]

mod confirm;
mod keys;
mod socket;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentsec_audit::{AccessType, Decision, Record, RunContext};
use agentsec_broker::{Caller, CallerLimits, NoRedaction};
use agentsec_policy::{IdentityGrant, Operation, SignTarget, SkillDigest, SkillName, SkillRef};
use agentsec_server::identity::OsIdentity;
use ssh_agent_lib::proto::extension::SessionBind;
use ssh_agent_lib::proto::{Extension, Identity, PublicCredential, Response, SignRequest};
use ssh_encoding::{Decode, Encode};
use zeroize::Zeroizing;

pub use confirm::{Askpass, CONFIRM_TIMEOUT, PASSED_ENV};
pub use keys::{KeyEntry, Keyring, LOAD_KEY, MAX_KEYS};
pub use socket::{bind, bind_for_group, default_socket};

/// The skill name on the agent's audit records (a policy rule that names skills must name
/// it to grant a key here).
pub const SKILL_NAME: &str = "ssh-agent";

/// Largest message accepted from a client: OpenSSH's own agent limit (`AGENT_MAX_LEN`).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// Connections served at once; more are closed at once (a client opens one per ssh
/// session, for the length of its authentication).
pub const MAX_CONNECTIONS: usize = 64;

/// Requests answered on one connection: ssh asks for the list and a signature or two per
/// host; the bound stops a client from looping on the broker.
pub const MAX_REQUESTS_PER_CONNECTION: u32 = 1024;

/// How long a connection may stay silent between two messages before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The [`SkillRef`] of the agent's broker callers: [`SKILL_NAME`], an all-zero digest (there
/// is no component).
pub fn skill_ref() -> SkillRef {
    SkillRef::new(
        SkillName::parse(SKILL_NAME).unwrap_or_else(|_| unreachable!("a valid skill name")),
        SkillDigest::from_bytes([0; 32]),
    )
}

/// An SSH agent for one agent id. [`SshAgent::replace`] swaps its keyring (a reload);
/// connections in flight keep the one they started with.
#[derive(Debug)]
pub struct SshAgent {
    owner_uid: u32,
    keyring: Mutex<Arc<Keyring>>,
    connections: AtomicUsize,
    askpass: Option<Askpass>,
    /// When each key (path and fingerprint) was first loaded: where a `lifetime` counts
    /// from, across reloads.
    loaded: Mutex<HashMap<(String, String), Instant>>,
}

impl SshAgent {
    /// An agent serving `keyring`, owned by `owner_uid` (the uid that a peer must have
    /// when the policy binds no OS identity to the agent id).
    pub fn new(keyring: Keyring, owner_uid: u32) -> SshAgent {
        let now = Instant::now();
        let loaded = keyring
            .keys
            .iter()
            .map(|k| ((k.path.clone(), k.fingerprint.clone()), now))
            .collect();
        SshAgent {
            owner_uid,
            keyring: Mutex::new(Arc::new(keyring)),
            connections: AtomicUsize::new(0),
            askpass: None,
            loaded: Mutex::new(loaded),
        }
    }

    /// Asks through `askpass` before each signature with a `confirm: true` key (without
    /// one, such keys sign nothing).
    #[must_use]
    pub fn with_askpass(mut self, askpass: Option<Askpass>) -> SshAgent {
        self.askpass = askpass;
        self
    }

    /// Serves from now on with `keyring`. A key seen before keeps its first load time
    /// (its `lifetime` is not renewed by a reload); a rotated key starts its own.
    pub fn replace(&self, keyring: Keyring) {
        let now = Instant::now();
        {
            let mut loaded = self
                .loaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for k in &keyring.keys {
                loaded
                    .entry((k.path.clone(), k.fingerprint.clone()))
                    .or_insert(now);
            }
        }
        match self.keyring.lock() {
            Ok(mut k) => *k = Arc::new(keyring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(keyring),
        }
    }

    /// Whether `key` is still served: no `lifetime`, or it has not run out. The error
    /// says since when it is over.
    fn live(&self, key: &KeyEntry) -> Result<(), String> {
        let Some(lifetime) = key.lifetime else {
            return Ok(());
        };
        let loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(key.path.clone(), key.fingerprint.clone()))
            .copied();
        let Some(loaded) = loaded else {
            return Err("it was never loaded".to_owned());
        };
        let age = loaded.elapsed();
        if age < lifetime {
            Ok(())
        } else {
            Err(format!(
                "its lifetime ({}) ended {}s ago; restart the agent to load it again, or \
                 raise the rule's `lifetime`",
                humantime::format_duration(lifetime),
                (age - lifetime).as_secs()
            ))
        }
    }

    /// The keyring in force.
    pub fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.lock() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Accepts connections until the listener fails, each on a thread of its own.
    ///
    /// # Errors
    /// The listener failed.
    pub fn serve(self: &Arc<Self>, listener: &UnixListener) -> std::io::Result<()> {
        loop {
            let (stream, _) = match listener.accept() {
                Ok(conn) => conn,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if self.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                self.connections.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!("more than {MAX_CONNECTIONS} connections; one was closed");
                continue;
            }
            let agent = Arc::clone(self);
            std::thread::spawn(move || {
                agent.connection(stream);
                agent.connections.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    /// One client, from its identity check to its last request.
    fn connection(&self, mut stream: UnixStream) {
        let keyring = self.keyring();
        let broker = Arc::clone(&keyring.broker);
        let peer = match OsIdentity::of_peer(&stream) {
            Ok(peer) => peer,
            Err(e) => {
                tracing::warn!("a peer's credentials cannot be read: {e}");
                return;
            }
        };
        let run_id = agentsec_audit::new_run_id().unwrap_or_default();
        let run = RunContext::new(keyring.agent.as_str(), SKILL_NAME, "00".repeat(32), run_id)
            .with_caller(peer.caller_info())
            .with_store(broker.audit_store().cloned());
        let refused = match peer.with_peer(|p| broker.policy().check_identity(&keyring.agent, p)) {
            Ok(IdentityGrant::Unbound) if peer.uid != self.owner_uid => Some(format!(
                "uid {} is not the agent's owner (uid {}) and the policy's `agents:` section \
                 binds no OS identity to {}",
                peer.uid, self.owner_uid, keyring.agent
            )),
            Ok(_) => None,
            Err(refusal) => Some(refusal.to_string()),
        };
        if let Some(why) = refused {
            let detail = format!("identity: {why}");
            let record =
                Record::new(&run, "", AccessType::Run, Decision::Deny).detail(detail.as_str());
            if let Err(e) = broker.record_now(&record) {
                tracing::error!("a refused peer could not be recorded: {e}");
            }
            tracing::warn!("ssh-agent: refused a peer: {why}");
            return;
        }
        if stream.set_read_timeout(Some(IDLE_TIMEOUT)).is_err() {
            return;
        }
        let mut session = Session {
            agent: self,
            peer: (peer.uid, peer.pid),
            keyring: &keyring,
            caller: Caller::new(
                keyring.agent.clone(),
                skill_ref(),
                run,
                CallerLimits::new(MAX_REQUESTS_PER_CONNECTION, agentsec_policy::MAX_PATH_LEN),
                NoRedaction,
            ),
            bound: None,
            forwarded: false,
            requests: 0,
        };
        while let Ok(Some(message)) = read_message(&mut stream) {
            session.requests += 1;
            if session.requests > MAX_REQUESTS_PER_CONNECTION {
                return;
            }
            let response = session.answer(&message);
            if write_response(&mut stream, &response).is_err() {
                return;
            }
        }
    }
}

/// The state of one connection.
struct Session<'k> {
    agent: &'k SshAgent,
    /// The peer's uid and pid (for a confirmation prompt).
    peer: (u32, Option<u32>),
    keyring: &'k Keyring,
    caller: Caller<NoRedaction>,
    /// The last `session-bind@openssh.com` of the connection.
    bound: Option<Bound>,
    /// Whether any bind of the connection was for a forwarded agent.
    forwarded: bool,
    requests: u32,
}

/// A connection's binding to an SSH session (`session-bind@openssh.com`).
struct Bound {
    /// The server host key's fingerprint, `SHA256:...`.
    host: String,
    /// The session identifier the server signed.
    session_id: Vec<u8>,
}

/// `SSH_MSG_USERAUTH_REQUEST` (RFC 4252 § 7): what ssh asks an agent to sign to log in.
const USERAUTH_REQUEST: u8 = 50;

/// Whether `data` is a public-key login request for the session `session_id` (RFC 4252
/// § 7: `string session identifier`, `byte SSH_MSG_USERAUTH_REQUEST`, ...). A bound
/// connection may get only its own session's login signed, so a binding to one host
/// cannot be used to sign another host's login.
fn is_login_for(data: &[u8], session_id: &[u8]) -> bool {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return false;
    };
    let len = u32::from_be_bytes(*len) as usize;
    rest.len() > len && &rest[..len] == session_id && rest[len] == USERAUTH_REQUEST
}

/// Message numbers of draft-miller-ssh-agent § 6.1.
mod id {
    pub const REQUEST_IDENTITIES: u8 = 11;
    pub const SIGN_REQUEST: u8 = 13;
    pub const ADD_IDENTITY: u8 = 17;
    pub const REMOVE_IDENTITY: u8 = 18;
    pub const REMOVE_ALL_IDENTITIES: u8 = 19;
    pub const ADD_SMARTCARD_KEY: u8 = 20;
    pub const REMOVE_SMARTCARD_KEY: u8 = 21;
    pub const LOCK: u8 = 22;
    pub const UNLOCK: u8 = 23;
    pub const ADD_ID_CONSTRAINED: u8 = 25;
    pub const ADD_SMARTCARD_KEY_CONSTRAINED: u8 = 26;
    pub const EXTENSION: u8 = 27;
}

impl Session<'_> {
    fn answer(&mut self, message: &[u8]) -> Response {
        let Some((&kind, body)) = message.split_first() else {
            return Response::Failure;
        };
        match kind {
            id::REQUEST_IDENTITIES => Response::IdentitiesAnswer(
                self.keyring
                    .keys
                    .iter()
                    .filter(|k| self.agent.live(k).is_ok())
                    .map(|k| Identity {
                        credential: PublicCredential::Key(k.public.clone()),
                        comment: k.path.clone(),
                    })
                    .collect(),
            ),
            id::SIGN_REQUEST => match SignRequest::decode(&mut &*body) {
                Ok(request) => self.sign(&request),
                Err(_) => Response::Failure,
            },
            id::EXTENSION => match Extension::decode(&mut &*body) {
                Ok(extension) => self.extension(&extension),
                Err(_) => Response::Failure,
            },
            id::ADD_IDENTITY
            | id::REMOVE_IDENTITY
            | id::REMOVE_ALL_IDENTITIES
            | id::ADD_SMARTCARD_KEY
            | id::REMOVE_SMARTCARD_KEY
            | id::LOCK
            | id::UNLOCK
            | id::ADD_ID_CONSTRAINED
            | id::ADD_SMARTCARD_KEY_CONSTRAINED => {
                let what = match kind {
                    id::LOCK | id::UNLOCK => "lock/unlock",
                    id::REMOVE_IDENTITY | id::REMOVE_ALL_IDENTITIES | id::REMOVE_SMARTCARD_KEY => {
                        "remove"
                    }
                    _ => "add",
                };
                self.record_refusal(&format!(
                    "ssh-agent: {what} refused: the policy decides which keys the agent serves"
                ));
                Response::Failure
            }
            _ => Response::Failure,
        }
    }

    fn sign(&mut self, request: &SignRequest) -> Response {
        let PublicCredential::Key(public) = &request.credential else {
            self.record_refusal("ssh-agent: sign refused: certificates are not served");
            return Response::Failure;
        };
        let Some(entry) = self.keyring.keys.iter().find(|k| &k.public == public) else {
            let fingerprint = public.fingerprint(ssh_key::HashAlg::Sha256);
            self.record_refusal(&format!(
                "ssh-agent: sign refused: key {fingerprint} is not one this agent serves"
            ));
            return Response::Failure;
        };
        // What the signature is for: a login to the bound session, through a forwarded
        // agent, or anything else (unbound). The record names the bound host in each case.
        let (target, key) = match &self.bound {
            Some(b) if self.forwarded => (
                SignTarget::Forwarded(b.host.as_str()),
                format!("{} host {} (forwarded)", entry.fingerprint, b.host),
            ),
            Some(b) if is_login_for(&request.data, &b.session_id) => (
                SignTarget::Host(b.host.as_str()),
                format!("{} host {}", entry.fingerprint, b.host),
            ),
            Some(b) => (
                SignTarget::Unbound,
                format!(
                    "{} host {} (not a login to the bound session)",
                    entry.fingerprint, b.host
                ),
            ),
            None => (SignTarget::Unbound, entry.fingerprint.clone()),
        };
        if let Err(why) = self.agent.live(entry) {
            self.record_refusal(&format!(
                "ssh-agent: sign refused for {}: {why}",
                entry.path
            ));
            return Response::Failure;
        }
        let broker = &self.keyring.broker;
        // `confirm: true`: the user is asked before the key is fetched, and only for a
        // signature the policy allows (a refused one is recorded by the broker below).
        if entry.confirm
            && let Ok(path) = entry.path.parse::<agentsec_policy::SecretPath>()
            && broker
                .policy()
                .evaluate(
                    &self.keyring.agent,
                    &skill_ref(),
                    &path,
                    Operation::Sign {
                        key: key.as_str(),
                        target,
                    },
                )
                .is_allowed()
            && let Err(why) = self.confirm(entry, target)
        {
            self.record_refusal(&format!(
                "ssh-agent: sign refused for {} ({key}): confirmation: {why}",
                entry.path
            ));
            return Response::Failure;
        }
        let released = match broker.request(
            &mut self.caller,
            Operation::Sign {
                key: key.as_str(),
                target,
            },
            &entry.path,
        ) {
            Ok(released) => released,
            Err(refusal) => {
                tracing::warn!("ssh-agent: sign refused: {refusal}");
                return Response::Failure;
            }
        };
        let signed = keys::parse_private(released.value.expose_secret()).and_then(|private| {
            // The leaf may have been switched to another key since it was listed.
            if private.public_key().key_data() == public {
                keys::sign(&private, &request.data, request.flags)
            } else {
                Err("the key at this path changed since it was listed; reload".to_owned())
            }
        });
        drop(released);
        match signed {
            // Fail closed: a signature leaves only once its record is durable.
            Ok(signature) => match broker.sync() {
                Ok(()) => Response::SignResponse(signature),
                Err(e) => {
                    tracing::error!("ssh-agent: the audit log cannot be synced: {e}");
                    Response::Failure
                }
            },
            Err(why) => {
                self.record_refusal(&format!("ssh-agent: sign failed for {}: {why}", entry.path));
                Response::Failure
            }
        }
    }

    /// Asks the user whether `entry` may sign for `target` (`confirm: true`).
    fn confirm(&self, entry: &KeyEntry, target: SignTarget<'_>) -> Result<(), String> {
        let Some(askpass) = &self.agent.askpass else {
            return Err(
                "the rule says `confirm: true` and SSH_ASKPASS is not set in the \
                        agent's environment; start it with SSH_ASKPASS naming a program that \
                        asks the user (e.g. ssh-askpass)"
                    .to_owned(),
            );
        };
        let host = match target {
            SignTarget::Host(h) => format!("a login to the host with key {h}"),
            SignTarget::Forwarded(h) => format!("a forwarded agent on the host with key {h}"),
            _ => "a signature not bound to a host".to_owned(),
        };
        let (uid, pid) = self.peer;
        let pid = pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        askpass.ask(&format!(
            "Allow use of key {}?\nKey fingerprint {}.\nRequested by uid {uid}, pid {pid}, for {host}.",
            entry.path, entry.fingerprint
        ))
    }

    fn extension(&mut self, extension: &Extension) -> Response {
        match extension.parse_message::<SessionBind>() {
            Ok(Some(bind)) => {
                // The client proves the binding with the server's signature over the
                // session id: a forged host key does not verify.
                if bind.verify_signature().is_err() {
                    self.record_refusal(
                        "ssh-agent: session-bind refused: the host key's signature does not \
                         verify",
                    );
                    return Response::Failure;
                }
                let host = bind
                    .host_key
                    .fingerprint(ssh_key::HashAlg::Sha256)
                    .to_string();
                self.forwarded |= bind.is_forwarding;
                self.bound = Some(Bound {
                    host,
                    session_id: bind.session_id,
                });
                Response::Success
            }
            _ => Response::Failure,
        }
    }

    fn record_refusal(&self, detail: &str) {
        if let Err(e) = self
            .keyring
            .broker
            .record_run_event(self.caller.run(), detail)
        {
            tracing::error!("ssh-agent: a refusal could not be recorded: {e}");
        }
    }
}

/// One length-prefixed message, wiped on drop (an add request carries a private key).
/// `None` at end of stream.
fn read_message(stream: &mut UnixStream) -> std::io::Result<Option<Zeroizing<Vec<u8>>>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a message of {len} bytes (at most {MAX_MESSAGE})"),
        ));
    }
    let mut body = Zeroizing::new(vec![0u8; len]);
    stream.read_exact(&mut body)?;
    Ok(Some(body))
}

fn write_response(stream: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let mut out = Vec::new();
    let len = response
        .encoded_len()
        .ok()
        .and_then(|l| u32::try_from(l).ok())
        .ok_or_else(|| std::io::Error::other("response too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    response
        .encode(&mut out)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    stream.write_all(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_bounded_and_end_of_stream_is_not_an_error() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let too_long = u32::try_from(MAX_MESSAGE + 1).unwrap().to_be_bytes();
        a.write_all(&too_long).unwrap();
        let err = read_message(&mut b).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);

        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(&0u32.to_be_bytes()).unwrap();
        assert!(read_message(&mut b).is_err());

        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(&[0, 0, 0, 1, id::REQUEST_IDENTITIES]).unwrap();
        drop(a);
        let message = read_message(&mut b).unwrap().unwrap();
        assert_eq!(&message[..], &[id::REQUEST_IDENTITIES]);
        assert!(read_message(&mut b).unwrap().is_none());
    }

    #[test]
    fn a_leaf_that_is_no_key_is_refused_without_echoing_it() {
        for value in [
            &b"db-password-93f1c2"[..],
            &[0xff, 0xfe, 0x00][..],
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot-base64-secret-77aa\n-----END OPENSSH PRIVATE KEY-----\n",
        ] {
            let why = keys::parse_private(value).unwrap_err();
            assert!(why.starts_with("not an OpenSSH private key"), "{why}");
            assert!(!why.contains("93f1c2") && !why.contains("77aa"), "{why}");
        }
    }

    #[test]
    fn a_socket_directory_open_to_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = bind(&open.join("s.sock")).unwrap_err();
        assert!(err.contains("open to other users (mode 755)"), "{err}");
        let fresh = dir.path().join("new/sub");
        let listener = bind(&fresh.join("s.sock")).unwrap();
        drop(listener);
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&fresh.join("s.sock")), 0o600);
        // A stale socket (nothing listening) is replaced.
        assert!(bind(&fresh.join("s.sock")).is_ok());
    }
}
