//! The SSH fields of a `sign` rule: `ssh_hosts` (the server host keys a key may sign
//! for), `confirm` and `lifetime`, and what a sign request says about the connection it
//! came on.

use std::fmt;

/// Most entries of one rule's `ssh_hosts`: a key is restricted to a few servers; a longer
/// list is a mistake (and the bound keeps a rule's check short).
pub const MAX_SSH_HOSTS: usize = 256;

/// Longest `lifetime` of a `sign` rule. Reason: a year is longer than any key should be
/// served unattended; the bound also keeps `loaded + lifetime` far from overflow.
pub const MAX_KEY_LIFETIME: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// A server host key's fingerprint as `ssh-keygen -l -E sha256` prints it and sshd logs
/// it: `SHA256:` and 43 characters of unpadded base64 (a SHA-256 digest). The only
/// constructor validates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SshHostKey(String);

impl SshHostKey {
    /// Parses `SHA256:<43 base64 characters>`.
    ///
    /// # Errors
    /// Anything else; the message says what the form is.
    pub fn parse(text: &str) -> Result<SshHostKey, String> {
        let form = "a host key fingerprint is `SHA256:` and 43 base64 characters, as \
                    `ssh-keygen -l -E sha256 -f /etc/ssh/ssh_host_ed25519_key.pub` prints it";
        let Some(b64) = text.strip_prefix("SHA256:") else {
            return Err(format!("{form} (it must start with `SHA256:`)"));
        };
        if b64.len() != 43
            || !b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        {
            return Err(form.to_owned());
        }
        Ok(SshHostKey(text.to_owned()))
    }

    /// `SHA256:...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SshHostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a sign request says about the SSH connection the signature is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignTarget<'a> {
    /// No signature: the host reads the key to learn its public half (an SSH agent
    /// loading its keys). `ssh_hosts` does not apply.
    Load,
    /// A signature on a connection the client did not bind to a server host key
    /// (`session-bind@openssh.com`, sent by ssh 8.9+), or for something that is not an SSH
    /// login (`ssh-keygen -Y sign`). A rule with `ssh_hosts` refuses it.
    Unbound,
    /// A signature on a connection bound to the server host key with this fingerprint
    /// (`SHA256:...`, its signature verified by the agent), for a login to that very
    /// session (the signed data names the bound session id).
    Host(&'a str),
    /// A signature asked through a forwarded agent (the connection was bound for
    /// forwarding to this host key first). A rule with `ssh_hosts` refuses it: the host
    /// the agent was forwarded to could use the key for any server.
    Forwarded(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_fingerprints_parse() {
        let good = "SHA256:ZeQhD+IjZC/AN0DQua/dioymrTj+VbDcLD5Hco3RVzU";
        assert_eq!(SshHostKey::parse(good).unwrap().as_str(), good);
        for bad in [
            "",
            "ZeQhD+IjZC/AN0DQua/dioymrTj+VbDcLD5Hco3RVzU",
            "MD5:aa:bb",
            "SHA256:short",
            "SHA256:ZeQhD+IjZC/AN0DQua/dioymrTj+VbDcLD5Hco3RVzU=",
            "SHA256:ZeQhD+IjZC/AN0DQua/dioymrTj+VbDcLD5Hco3RVz!",
        ] {
            assert!(SshHostKey::parse(bad).is_err(), "{bad}");
        }
    }
}
