//! `pgp` master keys through the real `gpg`, as sops 3.11 falls back to it (and as it must on
//! GnuPG 2.1+, which keeps secret keys in its agent: only gpg can use smartcards, pinentry and
//! cached passphrases).
//!
//! gpg is run by absolute path (`SOPS_GPG_EXEC`, else `gpg` looked up on `PATH` once), with
//! fixed arguments and pipes only: the data key goes in on standard input (encrypt) or comes
//! out on standard output (decrypt), never through a file or an argument. `GNUPGHOME` is passed
//! as `--homedir`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::KeyServices;

/// How long one gpg call may take before it is killed. gpg itself answers in milliseconds; the
/// time is for a person at a pinentry prompt or a smartcard PIN, as with `SOPS_AGE_KEY_CMD`.
pub const GPG_TIMEOUT: Duration = Duration::from_secs(120);

/// Most bytes read from gpg's standard output: an armored message wrapping 33 bytes for an
/// RSA-4096 key is under 1 KiB; a decrypted data key is 32 bytes (a Shamir share 33).
const MAX_GPG_STDOUT: usize = 64 * 1024;

/// Most bytes kept of gpg's standard error, for the failure reason.
const MAX_GPG_STDERR: usize = 4 * 1024;

/// A data key is 32 bytes, a Shamir share 33: more from a decryption is refused.
const MAX_PAYLOAD: usize = 64;

/// A fingerprint as sops stores it: hex digits, upper case, no spaces or `0x`.
pub(crate) fn normalize_fingerprint(fp: &str) -> Result<String, String> {
    let cleaned: String = fp
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if !(16..=64).contains(&cleaned.len()) || !cleaned.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(
            "not an OpenPGP fingerprint (expected 40 hex digits, as `gpg --list-keys \
             --with-colons` prints on its `fpr` line)"
                .to_owned(),
        );
    }
    Ok(cleaned)
}

/// The gpg binary: `SOPS_GPG_EXEC` (an absolute path, or a name looked up on `PATH`), else
/// `gpg` on `PATH`.
fn gpg_binary(services: &KeyServices) -> Result<PathBuf, String> {
    let wanted = services
        .gpg_exec
        .clone()
        .unwrap_or_else(|| PathBuf::from("gpg"));
    if wanted.is_absolute() {
        return Ok(wanted);
    }
    if wanted.components().count() == 1
        && let Some(path) = &services.path
    {
        for dir in std::env::split_paths(path) {
            let candidate = dir.join(&wanted);
            if dir.is_absolute() && candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "gpg ({}) was not found on PATH: install GnuPG, or set SOPS_GPG_EXEC to its absolute path",
        wanted.display()
    ))
}

/// Encrypts `payload` to the key `fp`: the armored message, as sops stores it.
pub(crate) fn encrypt(fp: &str, payload: &[u8], services: &KeyServices) -> Result<String, String> {
    let out = run(
        services,
        &[
            "--no-default-recipient",
            "--yes",
            "--encrypt",
            "--armor",
            "--recipient",
            fp,
            "--trusted-key",
            fp,
            "--no-encrypt-to",
        ],
        payload,
        MAX_GPG_STDOUT,
    )?;
    let text = std::str::from_utf8(&out).map_err(|_| "gpg printed no armored text".to_owned())?;
    if !text.starts_with("-----BEGIN PGP MESSAGE-----") {
        return Err("gpg printed no armored OpenPGP message".to_owned());
    }
    Ok(text.trim_end().to_owned())
}

/// Decrypts an armored message with whatever secret key gpg (its agent) holds.
pub(crate) fn decrypt(enc: &str, services: &KeyServices) -> Result<Zeroizing<Vec<u8>>, String> {
    let out = run(
        services,
        &["--quiet", "--decrypt"],
        enc.as_bytes(),
        MAX_PAYLOAD,
    )?;
    if out.is_empty() {
        return Err("gpg decrypted nothing".to_owned());
    }
    Ok(out)
}

/// Runs gpg with `args` (after `--homedir` when `GNUPGHOME` is set), `input` on stdin; its
/// stdout, at most `max_out` bytes. Failure: gpg's exit status and the end of its stderr.
fn run(
    services: &KeyServices,
    args: &[&str],
    input: &[u8],
    max_out: usize,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let gpg = gpg_binary(services)?;
    let mut cmd = Command::new(&gpg);
    if let Some(home) = &services.gnupghome {
        cmd.arg("--homedir").arg(home);
    }
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not run {}: {e}", gpg.display()))?;
    let stdin = child.stdin.take();
    let input = Zeroizing::new(input.to_vec());
    let writer = std::thread::spawn(move || {
        if let Some(mut w) = stdin {
            // gpg may exit before reading everything (a bad message): a broken pipe here is
            // reported by its exit status instead.
            let _ = w.write_all(&input);
        }
    });
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || -> Zeroizing<Vec<u8>> {
        let mut buf = Zeroizing::new(Vec::new());
        if let Some(r) = stdout {
            let _ = r.take(max_out as u64 + 1).read_to_end(&mut buf);
        }
        buf
    });
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || -> Vec<u8> {
        let mut buf = Vec::new();
        if let Some(r) = stderr {
            let mut limited = r.take(MAX_GPG_STDERR as u64 * 4);
            let _ = limited.read_to_end(&mut buf);
        }
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() >= GPG_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "gpg did not finish within {GPG_TIMEOUT:?} (GPG_TIMEOUT) and was killed"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for gpg failed: {e}")),
        }
    };
    let _ = writer.join();
    let out = reader
        .join()
        .map_err(|_| "reading gpg's output failed".to_owned())?;
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("gpg failed ({status}): {}", stderr_tail(&err)));
    }
    if out.len() > max_out {
        return Err("gpg printed more than expected".to_owned());
    }
    Ok(out)
}

/// The last lines of gpg's stderr, one line, printable characters only.
fn stderr_tail(err: &[u8]) -> String {
    let text = String::from_utf8_lossy(err);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join("; ");
    let clean: String = tail
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.len() > MAX_GPG_STDERR {
        let mut end = MAX_GPG_STDERR;
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        clean[..end].to_owned()
    } else if clean.is_empty() {
        "no message".to_owned()
    } else {
        clean
    }
}
