//! The per-run store state and its narrow views.
//!
//! `SkillState` is what a wasmtime `Store` carries for one run. WASI sees only
//! `wasi` + `table` (through [`WasiView`]); the secrets interface sees only
//! [`SecretsCtx`] (through [`crate::secrets::add_to_linker`]); the resource
//! limiter sees only [`Limiter`].

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Result};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::egress::TcpCheck;
use crate::limits::{LimitKind, Limits};
use crate::secrets::SecretsCtx;

/// Store data for one run.
pub(crate) struct SkillState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) secrets: SecretsCtx,
}

impl WasiView for SkillState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// wasi:http sees its context, the table, and the run's [`SecretsCtx`] as its hooks
/// (every request is checked and sent there: see [`crate::egress`]).
impl WasiHttpView for SkillState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.secrets,
        }
    }
}

/// The captured stdout and stderr of a run.
pub(crate) struct Captured {
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

/// Builds the WASI context of a skill: deny by default.
///
/// What a skill gets, exhaustively: no environment variables, no arguments,
/// no preopened directories (so no files at all), stdin closed, no sockets
/// (TCP, UDP and name lookup all off), stdout and stderr captured in memory
/// up to `max_output` bytes each, the host's clocks, and random numbers.
///
/// With `tcp` (the policy has `tcp://` egress for the run), TCP client sockets
/// are on, every bind and connect passing [`TcpCheck::allows`], and name lookup
/// only when a rule names a DNS host. UDP stays off.
pub(crate) fn sandbox_wasi(limits: &Limits, tcp: Option<TcpCheck>) -> (WasiCtx, Captured) {
    let stdout = MemoryOutputPipe::new(limits.max_output);
    let stderr = MemoryOutputPipe::new(limits.max_output);
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if let Some(tcp) = tcp {
        builder
            .allow_tcp(true)
            .allow_ip_name_lookup(tcp.names_hosts())
            .socket_addr_check(move |address, usage| tcp.allows(address, usage));
    }
    (builder.build(), Captured { stdout, stderr })
}

/// Memory, table and instance limits for the whole run; remembers which one
/// was hit.
///
/// `max_memory` and `max_table_elements` bound the run's **total**: wasmtime
/// asks before creating or growing any memory or table (a new one grows from
/// 0 to its initial size), and every grant is added to a running total over
/// all memories (or tables) of all instances of the run. A component with
/// many memories gets no more than one with a single memory. Totals only go
/// up: wasm memories and tables never shrink, and a grant whose growth then
/// fails is taken back (`*_grow_failed`).
pub(crate) struct Limiter {
    max_memory: usize,
    max_table_elements: usize,
    max_instances: usize,
    memory_total: usize,
    table_total: usize,
    last_memory_grant: usize,
    last_table_grant: usize,
    pub(crate) hit: Option<LimitKind>,
}

impl Limiter {
    pub(crate) fn new(limits: &Limits) -> Limiter {
        Limiter {
            max_memory: limits.max_memory,
            max_table_elements: limits.max_table_elements,
            max_instances: limits.max_instances,
            memory_total: 0,
            table_total: 0,
            last_memory_grant: 0,
            last_table_grant: 0,
            hit: None,
        }
    }
}

/// Adds `desired - current` to `total` if the result stays within `max`.
fn grant(total: &mut usize, current: usize, desired: usize, max: usize) -> Option<usize> {
    let delta = desired.saturating_sub(current);
    let new_total = total.checked_add(delta).filter(|&t| t <= max)?;
    *total = new_total;
    Some(delta)
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        match grant(&mut self.memory_total, current, desired, self.max_memory) {
            Some(delta) => {
                self.last_memory_grant = delta;
                Ok(true)
            }
            None => {
                self.hit = Some(LimitKind::Memory);
                Ok(false)
            }
        }
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> Result<()> {
        self.memory_total = self.memory_total.saturating_sub(self.last_memory_grant);
        self.last_memory_grant = 0;
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        match grant(
            &mut self.table_total,
            current,
            desired,
            self.max_table_elements,
        ) {
            Some(delta) => {
                self.last_table_grant = delta;
                Ok(true)
            }
            None => {
                self.hit = Some(LimitKind::TableElements);
                Ok(false)
            }
        }
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> Result<()> {
        self.table_total = self.table_total.saturating_sub(self.last_table_grant);
        self.last_table_grant = 0;
        Ok(())
    }

    fn instances(&self) -> usize {
        self.max_instances
    }

    fn tables(&self) -> usize {
        self.max_instances
    }

    fn memories(&self) -> usize {
        self.max_instances
    }
}
