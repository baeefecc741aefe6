//! Running `SOPS_AGE_KEY_CMD` under a deadline, in a process group that is killed whole.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::into_text;
use crate::MAX_KEY_SOURCE_SIZE;
use crate::error::SopsError;

/// Runs `SOPS_AGE_KEY_CMD` with `sh -c`; its standard output is key file text. Standard error
/// is passed through to ours (it is the command's own diagnostics).
///
/// The command runs in a process group of its own. If it has not exited and closed its output
/// within `deadline` (or prints more than [`MAX_KEY_SOURCE_SIZE`]), the whole group is killed
/// with `SIGKILL`, so that a child it forked (`sh -c 'sleep 1000'`, a helper that hangs) does
/// not outlive the run, and the key source fails. After a successful exit, what is left in the
/// group is killed too: a leftover holding our pipe would otherwise keep the read open.
pub(super) fn run_key_cmd(cmd: &str, deadline: Duration) -> Result<Zeroizing<String>, SopsError> {
    let started = Instant::now();
    let mut child = spawn(cmd)?;
    let group = child.id();
    let output = read_output(&mut child);
    let waited = wait(&mut child, &output, started, deadline)?;
    kill_group(group);
    let status = match waited.status {
        Some(s) => s,
        None => {
            // The command itself too, in case it left its process group.
            let _ = child.kill();
            child
                .wait()
                .map_err(|e| key_cmd_error(format!("waiting for the command failed: {e}")))?
        }
    };
    if waited.timed_out {
        return Err(key_cmd_error(format!(
            "the command did not finish within {deadline:?} (KEY_CMD_TIMEOUT; set \
             AGENTSEC_KEY_CMD_TIMEOUT to change it) and was killed with its child processes"
        )));
    }
    let Some((buf, read)) = waited.output else {
        return Err(key_cmd_error("its output could not be read".to_owned()));
    };
    if buf.len() > MAX_KEY_SOURCE_SIZE {
        return Err(key_cmd_error(
            "its output is larger than the limit for a key source (MAX_KEY_SOURCE_SIZE)".to_owned(),
        ));
    }
    read.map_err(|e| key_cmd_error(format!("reading its output failed: {e}")))?;
    if !status.success() {
        return Err(key_cmd_error(format!("the command failed ({status})")));
    }
    into_text(buf, "SOPS_AGE_KEY_CMD")
}

/// How often the shell's exit is checked while waiting.
const POLL: Duration = Duration::from_millis(10);

/// What the command printed (at most one byte over [`MAX_KEY_SOURCE_SIZE`]) and how reading
/// it ended.
type Output = (Zeroizing<Vec<u8>>, std::io::Result<usize>);

/// How waiting for the command ended.
struct Waited {
    /// The deadline passed first.
    timed_out: bool,
    /// Its output, once read to the end (or past the limit).
    output: Option<Output>,
    /// Its exit status, if it exited.
    status: Option<std::process::ExitStatus>,
}

fn key_cmd_error(reason: String) -> SopsError {
    SopsError::Identity {
        source_name: "SOPS_AGE_KEY_CMD".to_owned(),
        line: None,
        reason,
    }
}

/// `sh -c cmd` in a process group of its own, its output piped to us.
fn spawn(cmd: &str) -> Result<std::process::Child, SopsError> {
    use std::os::unix::process::CommandExt;
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| key_cmd_error(format!("cannot run `sh -c`: {e}")))
}

/// Kills every process of the command's group.
fn kill_group(group: u32) {
    if let Some(pid) = i32::try_from(group)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        // The group may already be gone; nothing else to do then.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Reads the command's output on a thread, so that the deadline holds even while the command
/// (or a child holding the pipe) writes nothing; the result arrives on the channel.
fn read_output(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<Output> {
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut buf = Zeroizing::new(Vec::new());
            let res = out
                .take(MAX_KEY_SOURCE_SIZE as u64 + 1)
                .read_to_end(&mut buf);
            let _ = tx.send((buf, res));
        });
    } else {
        let _ = tx.send((Zeroizing::new(Vec::new()), Ok(0)));
    }
    rx
}

/// Waits until the command has exited and its output is read (or the output passed the
/// limit), or until `deadline` after `started`.
fn wait(
    child: &mut std::process::Child,
    rx: &std::sync::mpsc::Receiver<Output>,
    started: Instant,
    deadline: Duration,
) -> Result<Waited, SopsError> {
    let mut output = None;
    let mut status = None;
    let timed_out = loop {
        if output.is_none() {
            let left = deadline.saturating_sub(started.elapsed());
            match rx.recv_timeout(left.min(POLL)) {
                Ok(got) => output = Some(got),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    output = Some((Zeroizing::new(Vec::new()), Ok(0)));
                }
            }
        } else if status.is_none() {
            std::thread::sleep(POLL);
        }
        if status.is_none() {
            status = child
                .try_wait()
                .map_err(|e| key_cmd_error(format!("waiting for the command failed: {e}")))?;
        }
        let too_big = output
            .as_ref()
            .is_some_and(|(buf, _)| buf.len() > MAX_KEY_SOURCE_SIZE);
        if too_big || output.is_some() && status.is_some() {
            break false;
        }
        if started.elapsed() >= deadline {
            break true;
        }
    };
    Ok(Waited {
        timed_out,
        output,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(result: Result<Zeroizing<String>, SopsError>) -> String {
        match result {
            Err(SopsError::Identity { reason, .. }) => reason,
            Err(other) => panic!("not an identity error: {other}"),
            Ok(_) => panic!("the key command succeeded"),
        }
    }

    #[test]
    fn its_output_is_the_key_text() {
        let text = run_key_cmd("printf 'AGE-SECRET-KEY-1X\\n'", KEY_CMD_TEST_DEADLINE)
            .expect("the command succeeds");
        assert_eq!(text.as_str(), "AGE-SECRET-KEY-1X\n");
    }

    #[test]
    fn a_failing_command_is_an_error_with_its_status() {
        let why = reason(run_key_cmd("exit 3", KEY_CMD_TEST_DEADLINE));
        assert!(why.starts_with("the command failed"), "{why}");
    }

    #[test]
    fn output_past_the_limit_is_refused() {
        let cmd = format!("head -c {} /dev/zero", MAX_KEY_SOURCE_SIZE + 10);
        let why = reason(run_key_cmd(&cmd, KEY_CMD_TEST_DEADLINE));
        assert!(why.contains("MAX_KEY_SOURCE_SIZE"), "{why}");
    }

    /// A command whose child keeps the pipe open is killed with that child at the deadline.
    #[test]
    fn a_blocking_command_and_its_children_are_killed_at_the_deadline() {
        // A duration no other process uses, to find the child in /proc.
        let marker = "987.125";
        let started = Instant::now();
        let why = reason(run_key_cmd(
            &format!("sleep {marker} & sleep {marker}"),
            Duration::from_millis(300),
        ));
        assert!(why.contains("did not finish within"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let alive = || {
            std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .any(|entry| {
                    std::fs::read(entry.path().join("cmdline"))
                        .is_ok_and(|cmd| cmd.windows(marker.len()).any(|w| w == marker.as_bytes()))
                })
        };
        // SIGKILL is delivered asynchronously; reaping by init may take a moment.
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            !alive()
        });
        assert!(gone, "a child of the key command outlived it");
    }

    /// Generous: these commands answer at once unless the machine is very busy.
    const KEY_CMD_TEST_DEADLINE: Duration = Duration::from_secs(60);
}
