//! The per-run store state and its narrow views.
//!
//! `SkillState` is what a wasmtime `Store` carries for one run. WASI sees only
//! `wasi` + `table` (through [`WasiView`]); the secrets interface sees only
//! [`SecretsCtx`]; the resource limiter sees only [`Limiter`].

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Result};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::limits::{LimitKind, Limits};
use crate::secrets_api::SecretsCtx;

/// Store data for one run.
pub(crate) struct SkillState {
    pub(crate) wasi: WasiCtx,
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
pub(crate) fn sandbox_wasi(limits: &Limits) -> (WasiCtx, Captured) {
    let stdout = MemoryOutputPipe::new(limits.max_output);
    let stderr = MemoryOutputPipe::new(limits.max_output);
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    (builder.build(), Captured { stdout, stderr })
}

/// Memory, table and instance limits; remembers which one was hit.
pub(crate) struct Limiter {
    max_memory: usize,
    max_table_elements: usize,
    max_instances: usize,
    pub(crate) hit: Option<LimitKind>,
}

impl Limiter {
    pub(crate) fn new(limits: &Limits) -> Limiter {
        Limiter {
            max_memory: limits.max_memory,
            max_table_elements: limits.max_table_elements,
            max_instances: limits.max_instances,
            hit: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        if desired > self.max_memory {
            self.hit = Some(LimitKind::Memory);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        if desired > self.max_table_elements {
            self.hit = Some(LimitKind::TableElements);
            return Ok(false);
        }
        Ok(true)
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
