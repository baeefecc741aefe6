//! The syslog sink: RFC 5424 messages, over TCP with octet counting (RFC 6587
//! section 3.4.1, as rsyslog's imtcp and most log pipelines accept it) or to
//! a local datagram socket (`/dev/log`).
//!
//! Written by hand: the framing is a length and a space before each message,
//! and the maintained syslog crates either do not frame by octet count over
//! TCP or bring a logging facade we do not need.
//!
//! Each message: `<PRI>1 TS HOST agentsec - audit [agentsec@32473 log_id="…"
//! seq="…" hash="…"] LINE`, where LINE is the entry exactly as in the local
//! log, PRI is facility authpriv (10) with severity info (allow) or notice
//! (deny), and 32473 is the private enterprise number RFC 5612 reserves for
//! examples (agentsec has none of its own). A receiver de-duplicates by the
//! structured data's log id and seq, with the host.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpStream, ToSocketAddrs as _};
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use super::ship::{ChainId, Shipped};
use super::{CONNECT_TIMEOUT, SinkError};
use crate::record::Decision;

/// Facility `authpriv` (10), as RFC 5424's PRI counts it (facility * 8).
const AUTHPRIV: u8 = 10 * 8;
/// Severity `informational`: an allowed request.
const INFO: u8 = 6;
/// Severity `notice`: a refused request.
const NOTICE: u8 = 5;

/// The longest HOSTNAME RFC 5424 allows.
const MAX_HOSTNAME: usize = 255;

/// One message in RFC 5424 form, without framing.
pub(super) fn message(chain: &ChainId, entry: &Shipped) -> String {
    let severity = match entry.decision {
        Decision::Allow => INFO,
        Decision::Deny => NOTICE,
    };
    // HOSTNAME is printable US-ASCII without spaces; anything else becomes `_`.
    let host: String = chain
        .host
        .chars()
        .take(MAX_HOSTNAME)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    let host = if host.is_empty() {
        "-".to_owned()
    } else {
        host
    };
    format!(
        "<{}>1 {} {host} agentsec - audit [agentsec@32473 log_id=\"{}\" seq=\"{}\" hash=\"{}\"] {}",
        AUTHPRIV + severity,
        entry.ts,
        chain.log_id,
        entry.seq,
        entry.hash,
        entry.line
    )
}

/// Sends `batch` over TCP to `addr` with octet counting, then closes the
/// sending side and waits for the receiver to close its own: a receiver
/// that closes has read every message (plain syslog has no other
/// acknowledgement).
pub(super) fn send_tcp(
    sink: &str,
    addr: &str,
    chain: &ChainId,
    batch: &[Shipped],
) -> Result<(), SinkError> {
    let unavailable = |reason: String| SinkError::Unavailable {
        sink: sink.to_owned(),
        reason,
    };
    let mut last = None;
    let mut stream = None;
    for a in addr
        .to_socket_addrs()
        .map_err(|e| unavailable(format!("cannot resolve {addr}: {e}")))?
    {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(mut stream) = stream else {
        return Err(unavailable(match last {
            Some(e) => format!("cannot connect: {e}"),
            None => format!("{addr} resolves to no address"),
        }));
    };
    let io = |e: std::io::Error| unavailable(e.to_string());
    stream
        .set_write_timeout(Some(CONNECT_TIMEOUT))
        .and_then(|()| stream.set_read_timeout(Some(CONNECT_TIMEOUT)))
        .map_err(io)?;
    let mut frames = Vec::new();
    for entry in batch {
        let msg = message(chain, entry);
        frames.extend_from_slice(format!("{} ", msg.len()).as_bytes());
        frames.extend_from_slice(msg.as_bytes());
    }
    stream.write_all(&frames).map_err(io)?;
    stream.flush().map_err(io)?;
    stream.shutdown(Shutdown::Write).map_err(io)?;
    // The receiver sends nothing; EOF means it read to our end and closed.
    let mut sink_bytes = [0u8; 512];
    loop {
        match stream.read(&mut sink_bytes) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                return Err(unavailable(format!(
                    "the receiver did not close the connection after the messages ({e}); they may not have arrived"
                )));
            }
        }
    }
}

/// Sends `batch` to the local datagram socket at `path`, one message per
/// datagram (no framing).
pub(super) fn send_unix(
    sink: &str,
    path: &Path,
    chain: &ChainId,
    batch: &[Shipped],
) -> Result<(), SinkError> {
    let unavailable = |e: std::io::Error| SinkError::Unavailable {
        sink: sink.to_owned(),
        reason: e.to_string(),
    };
    let socket = UnixDatagram::unbound().map_err(unavailable)?;
    socket
        .set_write_timeout(Some(CONNECT_TIMEOUT))
        .map_err(unavailable)?;
    socket.connect(path).map_err(unavailable)?;
    for entry in batch {
        socket
            .send(message(chain, entry).as_bytes())
            .map_err(unavailable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_rfc5424_with_the_line_verbatim() {
        let chain = ChainId {
            host: "web 1".to_owned(),
            log_id: "ab".repeat(16),
        };
        let entry = Shipped {
            seq: 7,
            hash: "cd".repeat(32),
            prev: "ef".repeat(32),
            ts: "2025-01-02T03:04:05.000006Z".to_owned(),
            decision: Decision::Deny,
            line: "{\"a\":1}".to_owned(),
        };
        assert_eq!(
            message(&chain, &entry),
            format!(
                "<85>1 2025-01-02T03:04:05.000006Z web_1 agentsec - audit [agentsec@32473 log_id=\"{}\" seq=\"7\" hash=\"{}\"] {{\"a\":1}}",
                "ab".repeat(16),
                "cd".repeat(32)
            )
        );
    }
}
