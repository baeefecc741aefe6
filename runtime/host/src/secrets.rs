//! The host side of `agentsec:skill/secrets` (0.2.0, and 0.1.0 through it), for any
//! wasmtime host.
//!
//! `get-secret` and `list-secrets` only translate: each call is one
//! [`Broker::request`] (or [`Broker::list`]) for the run's [`Caller`], and the answer is
//! turned into the WIT result ([`Refusal::Stop`] traps the skill). The broker counts,
//! parses, asks the policy, writes the audit record and fetches; `release` is the one
//! place a value is copied on its way into guest memory.
//!
//! The interface plugs into any host's own store type, as wasmtime's `wasi-config` does:
//!
//! ```no_run
//! # fn demo(engine: &wasmtime::Engine, secrets: agentsec_host::secrets::SecretsCtx) -> wasmtime::Result<()> {
//! struct MyState {
//!     secrets: agentsec_host::secrets::SecretsCtx,
//!     // ... WASI, HTTP, the host's own state
//! }
//! let mut linker = wasmtime::component::Linker::<MyState>::new(engine);
//! agentsec_host::secrets::add_to_linker(&mut linker, |state| &mut state.secrets)?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use agentsec_broker::{Broker, Caller, Refusal, Released};
use agentsec_policy::Operation;
use wasmtime::Result;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::agentsec::skill::secrets::{self as wit, Error};
use crate::bindings::v0_1::agentsec::skill::secrets as v0_1;
use agentsec_redact::Redactor;

/// What the secrets interface of one run holds: the shared broker and this run's caller
/// (its counters, its redactor, its cancel token).
pub struct SecretsCtx {
    broker: Arc<Broker>,
    caller: Caller<Redactor>,
    /// Outgoing HTTP of the run, when the policy grants it (see [`crate::egress`]).
    pub(crate) egress: Option<crate::egress::EgressCtx>,
}

impl SecretsCtx {
    /// The interface for `caller`, answered by `broker`.
    pub fn new(broker: Arc<Broker>, caller: Caller<Redactor>) -> Self {
        SecretsCtx {
            broker,
            caller,
            egress: None,
        }
    }

    /// The run's caller (counters, why it stopped).
    pub fn caller(&self) -> &Caller<Redactor> {
        &self.caller
    }

    /// The run's caller, to redact its output once the run is over.
    pub fn caller_mut(&mut self) -> &mut Caller<Redactor> {
        &mut self.caller
    }

    /// The broker and the run's caller, together (the broker answers for the caller).
    pub(crate) fn broker_and_caller(&mut self) -> (&Broker, &mut Caller<Redactor>) {
        (&self.broker, &mut self.caller)
    }

    /// The broker.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }
}

/// Adds `agentsec:skill/secrets` to `linker`, in every version the host serves (0.2.0 and
/// 0.1.0, one implementation); `get` finds the run's [`SecretsCtx`] in the host's store
/// data.
///
/// # Errors
/// The interface is already defined in `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut SecretsCtx,
) -> Result<()> {
    wit::add_to_linker::<T, HasSelf<SecretsCtx>>(linker, get)?;
    v0_1::add_to_linker::<T, HasSelf<SecretsCtx>>(linker, get)
}

/// A refusal as the WIT error, or a trap for a stop.
fn refused(refusal: Refusal) -> Result<Error> {
    Ok(match refusal {
        Refusal::Denied(m) => Error::Denied(m),
        Refusal::NotFound(m) => Error::NotFound(m),
        Refusal::InvalidPath(m) => Error::InvalidPath(m),
        Refusal::Unavailable(m) => Error::Unavailable(m),
        Refusal::Stop(stop) => return Err(wasmtime::format_err!("{stop}")),
        other => return Err(wasmtime::format_err!("{other}")),
    })
}

impl wit::Host for SecretsCtx {
    fn get_secret(&mut self, path: String) -> Result<Result<String, Error>> {
        match self
            .broker
            .request(&mut self.caller, Operation::Read, &path)
        {
            Ok(released) => Ok(release(&released)),
            Err(refusal) => refused(refusal).map(Err),
        }
    }

    fn list_secrets(&mut self, prefix: String) -> Result<Vec<String>> {
        match self.broker.list(&mut self.caller, &prefix) {
            Ok(names) => Ok(names),
            Err(refusal) => refused(refusal).map(|_| Vec::new()),
        }
    }
}

/// `agentsec:skill/secrets@0.1.0`, answered by the 0.2.0 implementation: the interface
/// is the same, only the types are distinct.
impl v0_1::Host for SecretsCtx {
    fn get_secret(&mut self, path: String) -> Result<Result<String, v0_1::Error>> {
        wit::Host::get_secret(self, path).map(|answer| answer.map_err(to_v0_1))
    }

    fn list_secrets(&mut self, prefix: String) -> Result<Vec<String>> {
        wit::Host::list_secrets(self, prefix)
    }
}

/// A 0.2.0 error as 0.1.0's (the same cases).
fn to_v0_1(e: Error) -> v0_1::Error {
    match e {
        Error::Denied(m) => v0_1::Error::Denied(m),
        Error::NotFound(m) => v0_1::Error::NotFound(m),
        Error::InvalidPath(m) => v0_1::Error::InvalidPath(m),
        Error::Unavailable(m) => v0_1::Error::Unavailable(m),
    }
}

/// The only place a secret value is copied out of its zeroizing buffer on its way into
/// guest memory. The returned `String` is handed to wasmtime, which copies it into the
/// guest's linear memory and frees it; `agentsec-run` installs a zeroize-on-free global
/// allocator so that freed copy is wiped. Taking a [`Released`] documents (and enforces)
/// that nothing reaches this function without passing the broker: policy, audit, redaction.
fn release(released: &Released) -> Result<String, Error> {
    match std::str::from_utf8(released.value.expose_secret()) {
        Ok(text) => Ok(text.to_owned()),
        // The broker refuses binary values for a read; kept as a second check.
        Err(_) => Err(Error::InvalidPath(format!(
            "`{}` holds binary data, which get-secret cannot return as text",
            released.path
        ))),
    }
}
