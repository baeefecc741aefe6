//! `pg-healthcheck`: logs in to a real PostgreSQL server with the credentials it reads
//! and runs `SELECT 1`, over a TCP connection the policy allows (`egress:` with
//! `url: "tcp://HOST:PORT"`).
//!
//! Input: `{"env": "production"}` (default `production`), optionally with `"host"`,
//! `"port"` and `"database"` for what the secrets do not hold.
//! Reads `databases.postgres.<env>.{host,port,username,password}` (`port` optional,
//! 5432; `host` from the input when the secret has none, as with credentials Vault
//! issues per run) and, optionally, `databases.postgres.<env>.database` (default: the
//! input's `database`, else the user name).
//! Output: `{"env": ..., "healthy": true, "select_1": 1, "server_version": "15.8", ...}`,
//! or `healthy: false` with the stage that failed (`connect`, `login`, `query`) and the
//! server's error code. No credential leaves the skill; the password is used only in
//! the SCRAM exchange (PostgreSQL's `scram-sha-256`), `md5` or, if the server asks for
//! it, a cleartext password message.
//!
//! The client is the smallest one that does the job: `postgres-protocol` builds and
//! parses the messages, and `std::net::TcpStream` (wasi:sockets) carries them.

use std::io::{Read, Write};
use std::net::TcpStream;

use agentsec_skill::{Error, Secret, Skill, get_secret};
use bytes::BytesMut;
use fallible_iterator::FallibleIterator as _;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::backend::{self, Message};
use postgres_protocol::message::frontend;
use serde_json::{Map, Value, json};

agentsec_skill::needs!(
    "databases.postgres.*.username",
    "databases.postgres.*.password",
);

agentsec_skill::tool!(
    description: "Logs in to the PostgreSQL database of an environment and runs SELECT 1, without revealing the credentials. Reports whether it is healthy, the server version, and where it failed if it did.",
    input_schema: r#"{"type":"object","properties":{"env":{"type":"string","description":"The environment, e.g. production or staging (default production)."},"host":{"type":"string"},"port":{"type":"integer"},"database":{"type":"string"}},"additionalProperties":false}"#,
);

/// Largest backend message the skill accepts. Reason: the answers to a login and
/// `SELECT 1` are tens of bytes; the bound keeps a hostile server from making the
/// skill buffer without end.
const MAX_MESSAGE: usize = 1 << 20;

/// The server's stage that failed, and why (an error code and message from the server,
/// or an I/O error).
struct Failure {
    stage: &'static str,
    detail: String,
    code: Option<String>,
}

impl Failure {
    fn new(stage: &'static str, detail: impl Into<String>) -> Failure {
        Failure {
            stage,
            detail: detail.into(),
            code: None,
        }
    }
}

/// A connection: the socket and what was read from it but not parsed yet.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    fn send(&mut self, out: &BytesMut, stage: &'static str) -> Result<(), Failure> {
        self.stream
            .write_all(out)
            .map_err(|e| Failure::new(stage, format!("write: {e}")))
    }

    /// The next backend message.
    fn next(&mut self, stage: &'static str) -> Result<Message, Failure> {
        loop {
            match Message::parse(&mut self.buf) {
                Ok(Some(Message::ErrorResponse(body))) => return Err(server_error(stage, &body)),
                Ok(Some(message)) => return Ok(message),
                Ok(None) => {}
                Err(e) => return Err(Failure::new(stage, format!("bad message: {e}"))),
            }
            if self.buf.len() > MAX_MESSAGE {
                return Err(Failure::new(stage, "the server sent an oversized message"));
            }
            let mut chunk = [0u8; 8192];
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| Failure::new(stage, format!("read: {e}")))?;
            if n == 0 {
                return Err(Failure::new(stage, "the server closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// An `ErrorResponse` as a failure: its SQLSTATE code and message.
fn server_error(stage: &'static str, body: &backend::ErrorResponseBody) -> Failure {
    let mut failure = Failure::new(stage, "the server refused");
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'C' => failure.code = Some(value),
            b'M' => failure.detail = value,
            _ => {}
        }
    }
    failure
}

struct PgHealthcheck;

impl Skill for PgHealthcheck {
    fn run(input: String) -> Result<String, String> {
        let input: Value = if input.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&input).map_err(|e| format!("input is not JSON: {e}"))?
        };
        let env = input
            .get("env")
            .and_then(Value::as_str)
            .unwrap_or("production");
        if env.is_empty()
            || !env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "`env` must be a simple name like `production`, got {env:?}"
            ));
        }
        let base = format!("databases.postgres.{env}");
        let read = |field: &str| -> Result<Option<Secret>, String> {
            match get_secret(&format!("{base}.{field}")) {
                Ok(v) => Ok(Some(v)),
                Err(Error::NotFound(_)) => Ok(None),
                Err(e) => Err(format!("{base}.{field}: {}", e.kind())),
            }
        };
        // Where the server is may also come from the input: with credentials Vault issues
        // per run (`database/creds/ROLE`), the secret holds only `username` and `password`.
        let given = |field: &str| input.get(field).filter(|v| !v.is_null());
        let host = match read("host")? {
            Some(h) => h.expose().to_owned(),
            None => given("host")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(format!(
                    "{base}.host is missing (or give \"host\" in the input)"
                ))?,
        };
        let user = read("username")?.ok_or(format!("{base}.username is missing"))?;
        let password = read("password")?.ok_or(format!("{base}.password is missing"))?;
        let port = match read("port")? {
            Some(p) => p
                .expose()
                .trim()
                .parse::<u16>()
                .map_err(|_| format!("{base}.port is not a port number"))?,
            None => match given("port") {
                Some(p) => p
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or("\"port\" is not a port number")?,
                None => 5432,
            },
        };
        let database = match read("database")? {
            Some(d) => d.expose().to_owned(),
            None => given("database")
                .and_then(Value::as_str)
                .map_or_else(|| user.expose().to_owned(), str::to_owned),
        };

        let mut report = Map::new();
        report.insert("env".into(), json!(env));
        match check(&host, port, user.expose(), password.expose(), &database) {
            Ok(facts) => {
                report.insert("healthy".into(), json!(true));
                report.extend(facts);
            }
            Err(failure) => {
                report.insert("healthy".into(), json!(false));
                report.insert("stage".into(), json!(failure.stage));
                report.insert("error".into(), json!(failure.detail));
                if let Some(code) = failure.code {
                    report.insert("sqlstate".into(), json!(code));
                }
            }
        }
        Ok(Value::Object(report).to_string())
    }
}

/// Connects, logs in, runs `SELECT 1`; what it learnt.
fn check(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
) -> Result<Map<String, Value>, Failure> {
    let stream = TcpStream::connect((host, port))
        .map_err(|e| Failure::new("connect", format!("{host}:{port}: {e}")))?;
    let mut conn = Conn {
        stream,
        buf: BytesMut::new(),
    };
    let mut out = BytesMut::new();
    frontend::startup_message(
        [
            ("user", user),
            ("database", database),
            ("application_name", "agentsec pg-healthcheck"),
        ],
        &mut out,
    )
    .map_err(|e| Failure::new("login", format!("startup message: {e}")))?;
    conn.send(&out, "login")?;
    login(&mut conn, user, password)?;

    let mut facts = Map::new();
    // ParameterStatus, BackendKeyData ... until the server is ready.
    loop {
        match conn.next("login")? {
            Message::ParameterStatus(p) => {
                if let (Ok("server_version"), Ok(v)) = (p.name(), p.value()) {
                    facts.insert("server_version".into(), json!(v));
                }
            }
            Message::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    out.clear();
    frontend::query("SELECT 1", &mut out)
        .map_err(|e| Failure::new("query", format!("query message: {e}")))?;
    conn.send(&out, "query")?;
    let mut value = None;
    loop {
        match conn.next("query")? {
            Message::DataRow(row) => {
                let buf = row.buffer();
                let mut ranges = row.ranges();
                if let Ok(Some(Some(range))) = ranges.next() {
                    value = std::str::from_utf8(&buf[range])
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok());
                }
            }
            Message::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    out.clear();
    frontend::terminate(&mut out);
    let _ = conn.stream.write_all(&out);
    match value {
        Some(v) => {
            facts.insert("select_1".into(), json!(v));
            Ok(facts)
        }
        None => Err(Failure::new("query", "SELECT 1 returned no value")),
    }
}

/// The authentication exchange, until `AuthenticationOk`.
fn login(conn: &mut Conn, user: &str, password: &str) -> Result<(), Failure> {
    let mut out = BytesMut::new();
    let mut scram: Option<ScramSha256> = None;
    loop {
        out.clear();
        match conn.next("login")? {
            Message::AuthenticationOk => return Ok(()),
            Message::AuthenticationCleartextPassword => {
                frontend::password_message(password.as_bytes(), &mut out)
                    .map_err(|e| Failure::new("login", e.to_string()))?;
            }
            Message::AuthenticationMd5Password(body) => {
                let hash = md5_hash(user.as_bytes(), password.as_bytes(), body.salt());
                frontend::password_message(hash.as_bytes(), &mut out)
                    .map_err(|e| Failure::new("login", e.to_string()))?;
            }
            Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut offered = false;
                while let Ok(Some(m)) = mechanisms.next() {
                    offered |= m == SCRAM_SHA_256;
                }
                if !offered {
                    return Err(Failure::new(
                        "login",
                        "the server offers no SASL mechanism this client knows (SCRAM-SHA-256)",
                    ));
                }
                let exchange = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, exchange.message(), &mut out)
                    .map_err(|e| Failure::new("login", e.to_string()))?;
                scram = Some(exchange);
            }
            Message::AuthenticationSaslContinue(body) => {
                let exchange = scram
                    .as_mut()
                    .ok_or_else(|| Failure::new("login", "SASL continue before SASL start"))?;
                exchange
                    .update(body.data())
                    .map_err(|e| Failure::new("login", e.to_string()))?;
                frontend::sasl_response(exchange.message(), &mut out)
                    .map_err(|e| Failure::new("login", e.to_string()))?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let mut exchange = scram
                    .take()
                    .ok_or_else(|| Failure::new("login", "SASL final before SASL start"))?;
                exchange
                    .finish(body.data())
                    .map_err(|e| Failure::new("login", format!("the server's proof: {e}")))?;
                continue;
            }
            _ => {
                return Err(Failure::new(
                    "login",
                    "the server asked for an authentication method this client does not speak (use scram-sha-256 or md5)",
                ));
            }
        }
        let sent = conn.send(&out, "login");
        // The buffer held the password (or its hash): clear it before it is reused.
        out.iter_mut().for_each(|b| *b = 0);
        sent?;
    }
}

agentsec_skill::export!(PgHealthcheck);
