//! The backend that is a front end of `agentsec serve`: one connection to its socket,
//! requests pipelined on it and answered in any order (matched by id). The daemon checks
//! who we are (our OS user must be bound to the agent) or the token we pass on.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use agentsec_server::protocol::{BearerToken, Response, RunResult};
use agentsec_server::{Declined, Done, Refused, Rendered, ToolEntry, kind_from_name};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::backend::{Backend, Caller, RevealedText};

/// Largest response line read from the daemon.
///
/// Reason: a run's result and output are bounded by the daemon's output limits (a few
/// MiB, base64); 64 MiB is far above them and still bounds what a broken daemon costs.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

type Waiter = Box<dyn FnOnce(Result<Value, String>) + Send>;

/// One live connection.
struct Conn {
    writer: Mutex<UnixStream>,
    waiting: Arc<Mutex<HashMap<u64, Waiter>>>,
    /// Cleared when the daemon's side closes: the next request connects again.
    alive: Arc<AtomicBool>,
}

/// A client of `agentsec serve` on `socket`.
pub struct Daemon {
    socket: PathBuf,
    conn: Mutex<Option<Arc<Conn>>>,
    next: AtomicU64,
}

impl Daemon {
    /// A client of the daemon listening on `socket` (connected on first use, and again
    /// after the daemon restarts).
    ///
    /// # Errors
    /// Nothing listens there.
    pub fn connect(socket: PathBuf) -> Result<Self, String> {
        let d = Daemon {
            socket,
            conn: Mutex::new(None),
            next: AtomicU64::new(1),
        };
        d.conn()?;
        Ok(d)
    }

    fn conn(&self) -> Result<Arc<Conn>, String> {
        let mut slot = self.conn.lock().map_err(|_| "lock poisoned".to_owned())?;
        if let Some(c) = slot.as_ref().filter(|c| c.alive.load(Ordering::SeqCst)) {
            return Ok(Arc::clone(c));
        }
        let stream = UnixStream::connect(&self.socket).map_err(|e| {
            format!(
                "cannot reach agentsec serve at {}: {e}; start it, or pass the socket it listens on",
                self.socket.display()
            )
        })?;
        let reader = stream.try_clone().map_err(|e| e.to_string())?;
        let waiting: Arc<Mutex<HashMap<u64, Waiter>>> = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let conn = Arc::new(Conn {
            writer: Mutex::new(stream),
            waiting: Arc::clone(&waiting),
            alive: Arc::clone(&alive),
        });
        std::thread::Builder::new()
            .name("agentsec-mcp-daemon".to_owned())
            .spawn(move || read_responses(reader, &waiting, &alive))
            .map_err(|e| e.to_string())?;
        *slot = Some(Arc::clone(&conn));
        Ok(conn)
    }

    /// Sends `method` with `params`; `then` gets the result (or why there is none).
    fn send(&self, method: &str, params: Value, then: Waiter) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = match self.conn() {
            Ok(c) => c,
            Err(e) => {
                then(Err(e));
                return id;
            }
        };
        if let Ok(mut w) = conn.waiting.lock() {
            w.insert(id, then);
        }
        // The reader may have ended (and answered every waiter) just before the insert.
        if !conn.alive.load(Ordering::SeqCst)
            && let Some(then) = conn.waiting.lock().ok().and_then(|mut w| w.remove(&id))
        {
            then(Err("agentsec serve closed the connection".to_owned()));
            return id;
        }
        let mut line = serde_json::to_vec(&json!({
            "jsonrpc": "2.0", "id": id, "method": method, "params": params,
        }))
        .unwrap_or_default();
        line.push(b'\n');
        let sent = conn
            .writer
            .lock()
            .map_err(|_| "lock poisoned".to_owned())
            .and_then(|mut w| w.write_all(&line).map_err(|e| e.to_string()));
        if let Err(e) = sent {
            // The daemon went away: forget this connection; the next request reconnects.
            if let Ok(mut slot) = self.conn.lock() {
                *slot = None;
            }
            if let Some(then) = conn.waiting.lock().ok().and_then(|mut w| w.remove(&id)) {
                then(Err(format!("agentsec serve closed the connection: {e}")));
            }
        }
        id
    }

    /// Sends and waits for the result.
    fn ask(&self, method: &str, params: Value) -> Result<Value, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.send(
            method,
            params,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv()
            .map_err(|_| "agentsec serve closed the connection".to_owned())?
    }

    /// [`Self::ask`] for a method whose result may be `{"refused": {kind, message}}`.
    fn ask_or_refused(&self, method: &str, params: Value) -> Result<Value, Declined> {
        let result = self
            .ask(method, params)
            .map_err(|e| (Refused::Usage, format!("error: {e}")))?;
        if let Some(refused) = result.get("refused") {
            let kind = refused
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("usage");
            let message = refused
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("refused by agentsec serve");
            return Err((kind_from_name(kind), message.to_owned()));
        }
        Ok(result)
    }
}

fn params(caller: &Caller, mut rest: Value) -> Value {
    rest["agent"] = json!(caller.agent);
    if let Some(token) = &caller.token {
        rest["token"] = json!(token.expose_secret());
    }
    rest
}

impl Backend for Daemon {
    fn tools(&self, caller: &Caller) -> Result<Vec<ToolEntry>, Declined> {
        let result = self.ask_or_refused("tools", params(caller, json!({})))?;
        Ok(result
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| {
                        Some(ToolEntry {
                            name: t.get("name")?.as_str()?.to_owned(),
                            tool: t.get("tool").and_then(Value::as_str).map(str::to_owned),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn call(
        &self,
        caller: &Caller,
        skill: &str,
        input: String,
        done: Done,
    ) -> Box<dyn Fn() + Send + Sync> {
        let p = params(
            caller,
            json!({ "skill": { "installed": skill }, "input": input }),
        );
        let id = self.send(
            "run",
            p,
            Box::new(move |r| {
                done(
                    match r.and_then(|v| {
                        serde_json::from_value::<RunResult>(v).map_err(|e| e.to_string())
                    }) {
                        Ok(result) => match result.output() {
                            Ok((stdout, stderr)) => Rendered {
                                exit_code: result.exit_code,
                                stdout,
                                stderr,
                                message: result.message,
                            },
                            Err(e) => {
                                failed(&format!("agentsec serve's result does not parse: {e}"))
                            }
                        },
                        Err(e) => failed(&e),
                    },
                );
            }),
        );
        let conn = self.conn.lock().ok().and_then(|c| c.clone());
        Box::new(move || {
            if let Some(conn) = &conn {
                let mut line = serde_json::to_vec(
                    &json!({"jsonrpc": "2.0", "id": 0, "method": "cancel", "params": {"id": id}}),
                )
                .unwrap_or_default();
                line.push(b'\n');
                if let Ok(mut w) = conn.writer.lock() {
                    let _ = w.write_all(&line);
                }
            }
        })
    }

    fn list_secrets(&self, caller: &Caller, prefix: &str) -> Result<Vec<String>, Declined> {
        let result =
            self.ask_or_refused("secrets.list", params(caller, json!({ "prefix": prefix })))?;
        Ok(result
            .get("names")
            .and_then(Value::as_array)
            .map(|n| {
                n.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    fn reveal(&self, caller: &Caller, path: &str) -> Result<RevealedText, Declined> {
        let mut result =
            self.ask_or_refused("secrets.get", params(caller, json!({ "path": path })))?;
        let value = match result.get_mut("value") {
            Some(Value::String(v)) => Zeroizing::new(std::mem::take(v)),
            _ => {
                return Err((
                    Refused::Usage,
                    "error: agentsec serve answered secrets.get without a value".to_owned(),
                ));
            }
        };
        let path = result
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or(path)
            .to_owned();
        Ok(RevealedText { path, value })
    }

    fn token_agent(&self, token: Option<&BearerToken>, from: &str) -> Option<String> {
        let mut p = json!({ "from": from });
        if let Some(token) = token {
            p["token"] = json!(token.expose_secret());
        }
        self.ask("token", p)
            .ok()?
            .get("agent")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

/// A run that did not come back, rendered as agentsec-run says it (exit 3).
fn failed(why: &str) -> Rendered {
    let message = format!("agentsec-run: {why}\n");
    Rendered {
        exit_code: 3,
        stdout: Vec::new(),
        stderr: message.clone().into_bytes(),
        message,
    }
}

/// Hands every response to its waiter; when the connection ends, every waiter is told.
fn read_responses(stream: UnixStream, waiting: &Mutex<HashMap<u64, Waiter>>, alive: &AtomicBool) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_RESPONSE)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => break,
            Ok(_) if line.last() != Some(&b'\n') => break,
            Ok(_) => {}
        }
        let Ok(response) = serde_json::from_slice::<Response>(&line) else {
            continue;
        };
        let Some(id) = response.id.as_u64() else {
            continue;
        };
        let Some(waiter) = waiting.lock().ok().and_then(|mut w| w.remove(&id)) else {
            continue;
        };
        waiter(match (response.result, response.error) {
            (Some(result), _) => Ok(result),
            (None, Some(e)) => Err(format!("agentsec serve: {} ({})", e.message, e.code)),
            (None, None) => {
                Err("agentsec serve answered with neither a result nor an error".to_owned())
            }
        });
    }
    alive.store(false, Ordering::SeqCst);
    let rest: Vec<Waiter> = waiting
        .lock()
        .map(|mut w| w.drain().map(|(_, v)| v).collect())
        .unwrap_or_default();
    for waiter in rest {
        waiter(Err("agentsec serve closed the connection".to_owned()));
    }
}
