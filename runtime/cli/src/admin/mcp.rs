//! `agentsec mcp`: skills as MCP tools for an agent harness (see `agentsec-mcp`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use agentsec_mcp::{Backend, Daemon, Listen, Local, Mcp, Tls};
use agentsec_server::Server;

use super::serve::{HostFlags, prepare, render_outcome};
use crate::error::{McpError, Tool};
use crate::exit;

/// Serve MCP to an agent harness: each skill the agent may run is a tool (the model gets
/// its redacted result, never a credential), `secrets_list` names the agent's secrets and
/// `secrets_get` hands out a value only where a rule says `reveal_to_agent: true`. Over
/// stdio (the harness spawns it) the agent is `--agent`, proven by this process's OS user;
/// over `--listen` every request carries a bearer token bound to an agent id in the policy
/// (`agentsec token new`). Nothing but JSON-RPC is written to stdout.
#[derive(Debug, clap::Args)]
#[command(after_help = exit::help(exit::MCP), after_long_help = exit::help(exit::MCP))]
pub struct Args {
    /// The agent id the harness acts as (stdio). Over `--listen` the token decides.
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,

    /// Be a front end of `agentsec serve` on SOCKET [default: $AGENTSEC_SOCKET, else
    /// serve's default socket]: the daemon holds the keys and checks that this user may
    /// act as the agent (or the token). Local-only options are refused then.
    #[arg(long, value_name = "SOCKET", num_args = 0..=1)]
    pub connect: Option<Option<PathBuf>>,

    /// Serve MCP's streamable HTTP transport on ADDR (`127.0.0.1:PORT`, `[::1]:PORT`, or
    /// `unix:PATH`) instead of stdio, at path `/mcp`. Other addresses need
    /// `--allow-remote` and TLS.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Allow `--listen` on an address that is not loopback (requires `--tls-cert` and
    /// `--tls-key`; every request still needs a token).
    #[arg(long)]
    pub allow_remote: bool,

    /// TLS certificate chain (PEM) for `--listen`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for `--listen`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Skills, workers, secrets, policy, audit and limits (as `agentsec serve`).
    #[command(flatten)]
    pub host: HostFlags,
}

fn err(message: impl Into<String>) -> McpError {
    McpError(Tool::Mcp, message.into())
}

/// Runs `agentsec mcp`.
///
/// # Errors
/// The configuration does not load, the address cannot be used, the daemon cannot be
/// reached.
pub fn run(args: Args) -> Result<u8, McpError> {
    let listen = args.listen.as_deref().map(parse_listen).transpose()?;
    match (&listen, &args.agent) {
        (None, None) => {
            return Err(err(
                "--agent ID is required over stdio: it is the agent the harness acts as (the model cannot choose it)",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(err(
                "--agent is not used with --listen: each request's bearer token names its agent (agentsec token new --agent ID)",
            ));
        }
        _ => {}
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    if let Some(Listen::Tcp(addr)) = &listen
        && !addr.ip().is_loopback()
    {
        if !args.allow_remote {
            return Err(err(format!(
                "--listen {addr} is not a loopback address; bind 127.0.0.1, or pass --allow-remote with --tls-cert and --tls-key"
            )));
        }
        if tls.is_none() {
            return Err(err(format!(
                "--listen {addr} with --allow-remote needs TLS: pass --tls-cert FILE and --tls-key FILE (bearer tokens never cross a network in the clear)"
            )));
        }
    }
    let socket = connect_socket(&args);
    let mut local_server = None;
    let (backend, max_message): (Arc<dyn Backend>, usize) = match socket {
        Some(socket) => {
            if let Some(flag) = local_only_flag(&args.host) {
                return Err(err(format!(
                    "{flag} is not used with --connect: the daemon's own configuration decides; drop it or run agentsec mcp without --connect"
                )));
            }
            let daemon = Daemon::connect(socket).map_err(err)?;
            let max = agentsec_host::limits::DEFAULT_MAX_INPUT as usize;
            (Arc::new(daemon), max + agentsec_mcp::MESSAGE_OVERHEAD)
        }
        None => {
            let prepared =
                prepare(&args.host, PathBuf::from("agentsec-mcp"), false).map_err(|e| err(e.0))?;
            let max = usize::try_from(prepared.limits.max_input).unwrap_or(usize::MAX);
            let (config, loader, runtime, audit, shipper) = prepared.start_shipping("agentsec mcp");
            let server = Server::start_in_process(
                config,
                Box::new(loader),
                runtime,
                Arc::new(Mutex::new(audit)),
                Box::new(render_outcome),
            )
            .map_err(|e| err(e.to_string()))?;
            let local = Arc::new(Local::new(server).map_err(|e| err(e.to_string()))?);
            local_server = Some((Arc::clone(&local), shipper));
            (local, max.saturating_add(agentsec_mcp::MESSAGE_OVERHEAD))
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("agentsec-mcp")
        .build()
        .map_err(|e| err(format!("cannot start the async runtime: {e}")))?;
    let outcome = rt.block_on(async {
        let serve = async {
            match listen {
                None => {
                    let mcp = Mcp::new(Arc::clone(&backend), args.agent.clone());
                    agentsec_mcp::serve_stdio(mcp, max_message)
                        .await
                        .map_err(|e| err(format!("stdio: {e}")))
                }
                Some(listen) => agentsec_mcp::serve_http(
                    Arc::clone(&backend),
                    listen,
                    tls,
                    args.allow_remote,
                    max_message,
                    |at| Tool::Mcp.note(format!("listening on {at}")),
                )
                .await
                .map_err(|e| err(e.to_string())),
            }
        };
        tokio::select! {
            r = serve => r,
            () = stop_signal() => Ok(()),
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    drop(backend);
    if let Some((local, shipper)) = local_server
        && let Ok(local) = Arc::try_unwrap(local)
    {
        local.shutdown();
        shipper.finish();
    }
    outcome.map(|()| exit::admin::OK)
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// `--listen`: `unix:PATH` (or an absolute path), else a socket address.
fn parse_listen(text: &str) -> Result<Listen, McpError> {
    if let Some(path) = text.strip_prefix("unix:") {
        return Ok(Listen::Unix(PathBuf::from(path)));
    }
    if text.starts_with('/') {
        return Ok(Listen::Unix(PathBuf::from(text)));
    }
    text.parse::<SocketAddr>().map(Listen::Tcp).map_err(|_| {
        err(format!(
            "--listen `{}`: write 127.0.0.1:PORT, [::1]:PORT or unix:PATH",
            text.escape_debug()
        ))
    })
}

/// The daemon socket: `--connect [SOCKET]`, else none (in process). `AGENTSEC_SOCKET`
/// only fills in `--connect` without a value: an MCP server the harness spawns must not
/// change where its keys come from because of an inherited variable.
fn connect_socket(args: &Args) -> Option<PathBuf> {
    match &args.connect {
        Some(None) => Some(
            std::env::var_os("AGENTSEC_SOCKET")
                .filter(|s| !s.is_empty())
                .map_or_else(agentsec_server::default_socket, PathBuf::from),
        ),
        Some(Some(path)) => Some(path.clone()),
        None => None,
    }
}

/// The first option given that only an in-process server uses (the daemon's own
/// configuration decides with `--connect`): `agentsec-run --connect`'s list, and the
/// daemon's worker options.
fn local_only_flag(host: &HostFlags) -> Option<&'static str> {
    crate::run_cmd::client::local_only(&host.config, &host.limits, host.skills_dir.is_some())
        .or_else(|| {
            [
                (host.workers.is_some(), "--workers"),
                (host.queue.is_some(), "--queue"),
                (host.max_agent_runs.is_some(), "--max-agent-runs"),
                (host.max_agent_rate.is_some(), "--max-agent-rate"),
                (!host.config.audit_sinks.is_empty(), "--audit-sink"),
            ]
            .into_iter()
            .find_map(|(set, flag)| set.then_some(flag))
        })
}
