//! TCP egress for clients that are not HTTP (PostgreSQL, SMTP, ...): `wasi:sockets`
//! connections to the destinations that `tcp://HOST:PORT` egress rules name.
//!
//! A run whose agent and skill some `tcp://` rule applies to gets `wasi:sockets` TCP
//! (never UDP); every socket operation then passes [`TcpCheck::allows`], in wasmtime's
//! `socket_addr_check`, before the host touches the network:
//! - **connect**: counted against the run's request limit (shared with HTTP), then
//!   allowed only to an address that a rule for this agent and skill names: the rule's
//!   IP literal, or one of the addresses its DNS name resolves to *here* (so a name the
//!   skill resolved differently, or an address it made up, is refused). A loopback,
//!   private, link-local or metadata address passes only when the rule names it
//!   literally or sets `allow_private: true`, as for HTTP. Every connect is an audit
//!   record (`access_type: egress`, `CONNECT tcp://ADDRESS:PORT`, the rule), allowed or
//!   not; a record that cannot be written refuses the connection and fails the run.
//! - **bind**: only the implicit bind of a connect (the unspecified address, port 0).
//! - **listen**, **accept** and every UDP use: refused. A skill is a client.
//!
//! What the skill sends and receives on an allowed connection is its own: there is no
//! injection on TCP (the skill holds what it read, e.g. the database password), and
//! the run's deadline bounds how long it may take.
//!
//! Name lookup (`wasi:sockets/ip-name-lookup`) is enabled only when a rule for the run
//! names a DNS host, so that the skill can resolve it; that lets the skill make DNS
//! queries for any name (a side channel SECURITY.md states). Rules that name IP
//! addresses keep it off.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use agentsec_audit::{AccessType, Decision, Record, RunContext};
use agentsec_broker::Broker;
use agentsec_policy::egress::canonical_ip;
use agentsec_policy::{AgentId, Host, Policy, Scheme, SkillRef};
use wasmtime_wasi::sockets::SocketAddrUse;

use super::{AddressRule, RequestBudget, Taken};

/// One `tcp://` rule that applies to the run, copied out of the policy at its start.
#[derive(Debug, Clone)]
struct TcpRule {
    host: Host,
    port: u16,
    /// Which of the addresses it names may be connected to (as for HTTP).
    addresses: AddressRule,
    label: String,
}

/// The `tcp://` rules of one run and what its connects have used so far.
#[derive(Clone)]
pub(crate) struct TcpCheck {
    rules: Arc<[TcpRule]>,
    broker: Arc<Broker>,
    run: RunContext,
    /// Requests and connections so far (shared with the run's HTTP requests).
    budget: RequestBudget,
    /// Rule names resolved by the host (once per name and run).
    resolved: Arc<Mutex<Resolved>>,
    /// The first audit failure: the run then ends as `AuditFailed`.
    failed: Arc<Mutex<Option<String>>>,
}

/// The addresses of each rule's `(name, port)`, as resolved here.
type Resolved = HashMap<(String, u16), Arc<[IpAddr]>>;

/// The future `socket_addr_check` wants.
type CheckFuture = Pin<Box<dyn Future<Output = bool> + Send + Sync>>;

impl TcpCheck {
    /// The check for `agent` running `skill`, or `None` when no `tcp://` rule applies
    /// (the run then gets no sockets at all).
    pub(crate) fn for_run(
        policy: &Policy,
        agent: &AgentId,
        skill: &SkillRef,
        broker: Arc<Broker>,
        run: RunContext,
        egress: &super::EgressCtx,
    ) -> Option<TcpCheck> {
        let rules: Vec<TcpRule> = policy
            .egress_rules()
            .filter(|r| r.url().scheme() == Scheme::Tcp && r.applies_to(agent, skill))
            .map(|r| TcpRule {
                host: r.url().host().clone(),
                port: r.url().port(),
                addresses: AddressRule::of(&r),
                label: r.label(),
            })
            .collect();
        (!rules.is_empty()).then(|| TcpCheck {
            rules: rules.into(),
            broker,
            run,
            budget: egress.budget.clone(),
            resolved: Arc::default(),
            failed: Arc::clone(&egress.audit_failed),
        })
    }

    /// Whether a rule names a DNS host (the skill then needs name lookup).
    pub(crate) fn names_hosts(&self) -> bool {
        self.rules.iter().any(|r| matches!(r.host, Host::Name(_)))
    }

    /// The `socket_addr_check` of the run's WASI context.
    pub(crate) fn allows(&self, address: SocketAddr, usage: SocketAddrUse) -> CheckFuture {
        match usage {
            // The implicit bind of a connect, or an explicit bind to "any": harmless.
            SocketAddrUse::TcpBind => {
                let ok = address.ip().is_unspecified() && address.port() == 0;
                Box::pin(async move { ok })
            }
            SocketAddrUse::TcpConnect => {
                let this = self.clone();
                Box::pin(async move { this.connect(address).await })
            }
            _ => Box::pin(async { false }),
        }
    }

    async fn connect(self, address: SocketAddr) -> bool {
        let shown = format!(
            "CONNECT tcp://{}",
            SocketAddr::new(canonical_ip(address.ip()), address.port())
        );
        match self.budget.take() {
            Taken::Within => {}
            taken => {
                if taken == Taken::FirstOver {
                    let why = format!("{shown}; {}", self.budget.over_limit());
                    self.record(Decision::Deny, None, &why);
                }
                return false;
            }
        }
        let ip = canonical_ip(address.ip());
        let mut unlisted_private = None;
        for rule in self.rules.iter().filter(|r| r.port == address.port()) {
            let named = match &rule.host {
                Host::Ip(literal) => canonical_ip(*literal) == ip,
                Host::Name(name) => self.resolve(name, rule.port).await.contains(&ip),
            };
            if !named {
                continue;
            }
            if rule.addresses.permits(ip) {
                return self.record(Decision::Allow, Some(&rule.label), &shown);
            }
            unlisted_private.get_or_insert(rule);
        }
        let why = match unlisted_private {
            Some(rule) => {
                tracing::info!(%address, rule = %rule.label, "connection to a private address refused");
                format!(
                    "{shown}; denied: a loopback, private or metadata address; name it in the rule or set `allow_private: true`"
                )
            }
            None => {
                tracing::info!(%address, "connection refused: no tcp egress rule names it");
                format!("{shown}; denied: no egress rule allows it")
            }
        };
        self.record(
            Decision::Deny,
            unlisted_private.map(|r| r.label.as_str()),
            &why,
        );
        false
    }

    /// The addresses `name` resolves to here, once per run (empty when it does not).
    async fn resolve(&self, name: &str, port: u16) -> Arc<[IpAddr]> {
        let key = (name.to_owned(), port);
        if let Some(found) = self.resolved.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return found;
        }
        let lookup = key.clone();
        let addresses: Arc<[IpAddr]> = tokio::task::spawn_blocking(move || {
            use std::net::ToSocketAddrs as _;
            lookup
                .to_socket_addrs()
                .map(|found| found.map(|a| canonical_ip(a.ip())).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .await
        .unwrap_or_default()
        .into();
        if let Ok(mut map) = self.resolved.lock() {
            map.insert(key, Arc::clone(&addresses));
        }
        addresses
    }

    /// Appends the record; `decision` is kept only if it was written.
    fn record(&self, decision: Decision, rule: Option<&str>, detail: &str) -> bool {
        let record = Record::new(&self.run, "", AccessType::Egress, decision)
            .rule(rule)
            .detail(detail);
        match self.broker.record_now(&record) {
            Ok(()) => decision == Decision::Allow,
            Err(e) => {
                if let Ok(mut failed) = self.failed.lock() {
                    failed.get_or_insert(e);
                }
                false
            }
        }
    }
}
