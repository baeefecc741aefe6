//! The wasmtime engine, the linker and loading components.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentsec_policy::{SkillDigest, SkillName, SkillRef};
use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::SkillPre;
use crate::cache::{self, Cache};
use crate::error::HostError;
use crate::limits::{self, EPOCH_TICK};
use crate::needs::NeedsError;
use crate::state::SkillState;

/// How the host is set up (not per run; see [`crate::Limits`] for that).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostConfig {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Refuse component files larger than this.
    pub max_component_size: u64,
    /// Refuse to compile components with more functions than this
    /// (see [`limits::DEFAULT_MAX_FUNCTIONS`]).
    pub max_functions: u64,
    /// Refuse to compile components with more bytes of function bodies
    /// than this (see [`limits::DEFAULT_MAX_CODE_SIZE`]).
    pub max_code_size: u64,
    /// Give up compiling after this long (see [`limits::DEFAULT_COMPILE_TIMEOUT`]).
    pub compile_timeout: Duration,
    /// Use wasmtime's pooling instance allocator, sized for this many
    /// concurrent runs; `None` (the default) maps fresh memory per run.
    /// See [`HostConfig::pooling`].
    pub pooling: Option<Pooling>,
    /// Called with the skill's name and size in bytes when compiling it (a
    /// cache miss) takes longer than [`SLOW_COMPILE_NOTICE`], so that a
    /// caller can say why the first run is slow; `None` says nothing.
    pub on_slow_compile: Option<fn(&str, usize)>,
}

/// How long compiling may take before [`HostConfig::on_slow_compile`] is
/// called. Reason: a Rust skill compiles in ~0.15 s; a Python or JavaScript
/// one (12-18 MB, an interpreter inside) takes seconds, the first time only,
/// and a silent pause that long looks like a hang.
pub const SLOW_COMPILE_NOTICE: Duration = Duration::from_secs(1);

/// Sizes of the pooling instance allocator (see [`HostConfig::pooling`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pooling {
    /// Runs that may be alive at once.
    pub concurrent_runs: u32,
    /// Linear memory reserved per memory slot: a run's `max_memory` must
    /// not exceed it (a larger limit still stops at this size).
    pub max_memory: usize,
}

/// Idle executors a [`Runtime`] keeps for its next runs.
///
/// Reason: building a current-thread tokio executor costs ~10 µs, a sixth
/// of a small run; one per concurrent run is kept, and runs beyond this many
/// at once build and drop their own.
pub const MAX_IDLE_EXECUTORS: usize = 64;

/// The executors runs wait on (a current-thread tokio runtime with timers and
/// I/O each): taken by a run, put back when it ends. No run's future outlives
/// its run, so nothing of one run is left on an executor for the next.
#[derive(Default)]
pub(crate) struct Executors(std::sync::Mutex<Vec<tokio::runtime::Runtime>>);

impl Executors {
    /// An idle executor, or a new one.
    pub(crate) fn take(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let idle = self.0.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(executor) => Ok(executor),
            None => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        }
    }

    /// Keeps `executor` for a later run (or shuts it down past [`MAX_IDLE_EXECUTORS`]).
    pub(crate) fn put(&self, executor: tokio::runtime::Runtime) {
        match self.0.lock() {
            Ok(mut idle) if idle.len() < MAX_IDLE_EXECUTORS => idle.push(executor),
            // Without waiting: a plain drop panics inside an async context.
            _ => executor.shutdown_background(),
        }
    }
}

impl Drop for Executors {
    fn drop(&mut self) {
        if let Ok(idle) = self.0.get_mut() {
            idle.drain(..)
                .for_each(tokio::runtime::Runtime::shutdown_background);
        }
    }
}

/// Core instances, memories and tables reserved per run in the pool.
///
/// Reason: a Rust `wasm32-wasip2` skill is one core module plus the WASI
/// adapter's few shims (4 core instances, 2 memories, 2 tables in
/// `example-skills`); 16 of each leaves room for components from other
/// toolchains while keeping the reservation per run bounded.
pub const POOLED_PER_RUN: u32 = 16;

impl Default for HostConfig {
    /// Cache in the default directory (see [`cache::default_dir`]).
    fn default() -> Self {
        HostConfig {
            cache_dir: cache::default_dir(),
            max_component_size: limits::DEFAULT_MAX_COMPONENT_SIZE,
            max_functions: limits::DEFAULT_MAX_FUNCTIONS,
            max_code_size: limits::DEFAULT_MAX_CODE_SIZE,
            compile_timeout: limits::DEFAULT_COMPILE_TIMEOUT,
            pooling: None,
            on_slow_compile: None,
        }
    }
}

impl HostConfig {
    /// No cache: every load compiles.
    pub fn without_cache(mut self) -> Self {
        self.cache_dir = None;
        self
    }

    /// Pre-allocate instance slots for `concurrent_runs` runs of up to
    /// [`limits::DEFAULT_MAX_MEMORY`] each and reuse them, instead of mapping
    /// and unmapping memory for every run. It pays off in a long-lived host
    /// that runs many skills; a process that makes one run (`agentsec-run`)
    /// pays for reserving the pool and gains nothing (see
    /// `benches/README.md`).
    pub fn pooling(mut self, concurrent_runs: u32) -> Self {
        self.pooling = Some(Pooling {
            concurrent_runs,
            max_memory: limits::DEFAULT_MAX_MEMORY,
        });
        self
    }

    /// Takes the load-time limits (component size, compile limits and
    /// deadline) from a run's [`crate::Limits`].
    pub fn with_load_limits(mut self, limits: &crate::Limits) -> Self {
        self.max_component_size = limits.max_component_size;
        self.max_functions = limits.max_functions;
        self.max_code_size = limits.max_code_size;
        self.compile_timeout = limits.compile_timeout;
        self
    }

    /// Calls `notice(name, bytes)` when a compile takes longer than
    /// [`SLOW_COMPILE_NOTICE`] (see [`HostConfig::on_slow_compile`]).
    pub fn on_slow_compile(mut self, notice: fn(&str, usize)) -> Self {
        self.on_slow_compile = Some(notice);
        self
    }

    /// Cache compiled components in `dir`.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }
}

/// A skill component, compiled and linked, ready to run any number of times.
pub struct LoadedSkill {
    pub(crate) name: String,
    pub(crate) sha256: String,
    pub(crate) skill_ref: SkillRef,
    /// Linked without wasi:http (`None` when the component imports it).
    pub(crate) pre: Option<SkillPre<SkillState>>,
    /// Linked with wasi:http, for runs the policy grants egress.
    pub(crate) pre_http: SkillPre<SkillState>,
    pub(crate) from_cache: bool,
    pub(crate) needs: Result<Vec<String>, NeedsError>,
    pub(crate) tool: Result<Option<String>, String>,
}

impl LoadedSkill {
    /// The skill's name: the component's file name without `.wasm`, with `_`
    /// turned back into `-` (cargo writes `db-healthcheck` as `db_healthcheck.wasm`).
    /// It selects `skills:` name entries only after [`Self::vouch_name`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Lowercase hex SHA-256 of the component file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The skill as the policy sees it: name and digest.
    pub fn skill_ref(&self) -> &SkillRef {
        &self.skill_ref
    }

    /// Makes the name count for the policy's `skills:` name entries. Call
    /// it only when the operator vouches for the name, e.g. the component
    /// was loaded from the skills directory they configured; otherwise the
    /// component is unnamed and matches only `sha256:` entries (see
    /// [`SkillRef::unnamed`]).
    pub fn vouch_name(&mut self) {
        self.skill_ref = SkillRef::new(self.skill_ref.name().clone(), *self.skill_ref.digest());
    }

    /// Whether the compiled code came from the cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// The secret paths the skill declares it needs (its `agentsec:needs`
    /// section, see [`crate::needs`]); empty when it declares none.
    ///
    /// # Errors
    /// The section is unreadable (too large, not UTF-8, ...).
    pub fn declared_needs(&self) -> Result<&[String], &NeedsError> {
        self.needs.as_deref()
    }

    /// The skill's description as a tool (its `agentsec:tool` section, see
    /// [`crate::tool`]), as text; `None` when it has none.
    ///
    /// # Errors
    /// The section is unreadable (too large, not UTF-8), in words.
    pub fn declared_tool(&self) -> Result<Option<&str>, &str> {
        match &self.tool {
            Ok(t) => Ok(t.as_deref()),
            Err(e) => Err(e),
        }
    }
}

/// The agentsec WebAssembly runtime: one engine, one linker, many runs (one at a time per
/// thread, any number of threads).
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) executors: Executors,
    linker: Linker<SkillState>,
    /// `linker` and wasi:http (for runs the policy grants egress).
    linker_http: Linker<SkillState>,
    cache: Option<Cache>,
    config: HostConfig,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Creates the engine (epoch interruption on, component model, async
    /// support for cancellation, no component-model async) and the linker
    /// with WASI p2 and the secrets interface. Starts the epoch ticker thread
    /// that enforces deadlines.
    pub fn new(config: HostConfig) -> Result<Runtime, HostError> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .concurrency_support(false);
        if let Some(pooling) = config.pooling {
            let runs = pooling.concurrent_runs.max(1);
            let slots = runs.saturating_mul(POOLED_PER_RUN);
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(runs)
                .total_core_instances(slots)
                .total_memories(slots)
                .total_tables(slots)
                .max_memory_size(pooling.max_memory)
                .max_core_instances_per_component(POOLED_PER_RUN)
                .max_memories_per_component(POOLED_PER_RUN)
                .max_tables_per_component(POOLED_PER_RUN)
                // One fiber stack per concurrent run (async support).
                .total_stacks(runs);
            wasm.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wasm).map_err(|e| HostError::Engine(e.to_string()))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| HostError::Engine(e.to_string()))?;
        crate::secrets::add_to_linker(&mut linker, |state: &mut SkillState| &mut state.secrets)
            .map_err(|e| HostError::Engine(e.to_string()))?;
        let mut linker_http = linker.clone();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker_http)
            .map_err(|e| HostError::Engine(e.to_string()))?;

        let cache = config.cache_dir.as_deref().and_then(|dir| match Cache::open(dir, &engine) {
            Ok(cache) => Some(cache),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "compiled-component cache disabled");
                None
            }
        });

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), Arc::clone(&ticker_stop), EPOCH_TICK)?;
        Ok(Runtime {
            engine,
            executors: Executors::default(),
            linker,
            linker_http,
            cache,
            config,
            ticker_stop,
        })
    }

    /// Whether compiled components are cached (a cache directory was given and could be
    /// opened).
    pub fn caches(&self) -> bool {
        self.cache.is_some()
    }

    /// Reads (a regular file, at most `max_component_size` bytes, checked
    /// while reading), compiles (or loads from the cache) and links a
    /// component file.
    pub fn load_file(&self, path: &Path) -> Result<LoadedSkill, HostError> {
        let limit = self.config.max_component_size;
        let mut bytes = Vec::new();
        agentsec_policy::bounded::read_file(path, limit, &mut bytes).map_err(|e| match e {
            agentsec_policy::bounded::ReadError::TooLarge { size, limit } => HostError::TooLarge {
                path: path.to_owned(),
                size: size.unwrap_or(limit.saturating_add(1)),
                limit,
            },
            other => HostError::Read {
                path: path.to_owned(),
                reason: other.to_string(),
            },
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.load_bytes(&stem.replace('_', "-"), &bytes)
            .map_err(|e| e.with_path(path))
    }

    /// Compiles (or loads from the cache) and links component `bytes`.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<LoadedSkill, HostError> {
        if bytes.len() as u64 > self.config.max_component_size {
            return Err(HostError::TooLarge {
                path: PathBuf::from(name),
                size: bytes.len() as u64,
                limit: self.config.max_component_size,
            });
        }
        check_component_header(name, bytes)?;
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let sha256 = hex::encode(digest);
        let skill_name = SkillName::parse(name).map_err(|e| HostError::Name {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
        // Unnamed until the caller vouches for the name (`vouch_name`):
        // whoever chose the file chose its name.
        let skill_ref = SkillRef::unnamed(skill_name, SkillDigest::from_bytes(digest));
        // The compile limits hold for every component, cached or not, so
        // whether a component is accepted does not depend on the cache.
        check_compile_limits(name, bytes, &self.config)?;
        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.load(&self.engine, &digest));
        let from_cache = cached.is_some();
        let component = match cached {
            Some(component) => component,
            None => {
                let component = self.compile(name, bytes)?;
                if let Some(cache) = &self.cache
                    && let Err(e) = cache.store(&self.engine, &digest, &component)
                {
                    tracing::warn!(error = %e, "could not write the compiled-component cache");
                }
                component
            }
        };
        // Linked twice: without wasi:http (runs the policy grants no egress) and with
        // it. A component that imports wasi:http links only the second way; one that
        // links neither way is refused, naming what the host lacks.
        let link = |linker: &Linker<SkillState>| {
            let pre = linker
                .instantiate_pre(&component)
                .map_err(|e| link_error(name, &e))?;
            SkillPre::new(pre).map_err(|e| HostError::Link {
                path: PathBuf::from(name),
                reason: format!("{e:#}"),
            })
        };
        let pre_http = link(&self.linker_http)?;
        let pre = link(&self.linker).ok();
        Ok(LoadedSkill {
            name: name.to_owned(),
            sha256,
            skill_ref,
            pre,
            pre_http,
            from_cache,
            needs: crate::needs::declared_needs(bytes),
            tool: crate::tool::declared_tool(bytes),
        })
    }
}

/// A link failure, naming the import the host does not provide when that is what failed.
fn link_error(name: &str, e: &wasmtime::Error) -> HostError {
    let reason = format!("{e:#}");
    // wasmtime: "component imports instance `wasi:http/outgoing-handler@0.2.0`, but a
    // matching implementation was not found in the linker" (or `func`, `resource`, ...).
    let unprovided = reason
        .contains("matching implementation was not found")
        .then(|| reason.split('`').nth(1))
        .flatten()
        .filter(|import| !import.is_empty() && import.len() <= MAX_SHOWN_IMPORT_LEN);
    match unprovided {
        Some(import) => HostError::Unprovided {
            path: PathBuf::from(name),
            import: import.escape_debug().to_string(),
        },
        None => HostError::Link {
            path: PathBuf::from(name),
            reason,
        },
    }
}

/// Longest import name quoted in an error. Reason: names come from an untrusted component;
/// real interface names are tens of bytes.
const MAX_SHOWN_IMPORT_LEN: usize = 256;

/// Refuses, in one line, bytes that are not a component, before wasmtime's
/// parser sees them: its error quotes the first bytes of the file, and a file
/// given by mistake may be a key.
fn check_component_header(name: &str, bytes: &[u8]) -> Result<(), HostError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    // Bytes 4..8: version and layer; layer 1 is a component, 0 a core module.
    let what = if bytes.len() < 8 || &bytes[..4] != MAGIC {
        Some("it does not start with the WebAssembly magic bytes")
    } else if bytes[6..8] == [0, 0] {
        Some("it is a core WebAssembly module; a skill must be a component (wasm32-wasip2)")
    } else {
        None
    };
    match what {
        Some(what) => Err(HostError::NotComponent {
            path: PathBuf::from(name),
            what,
        }),
        None => Ok(()),
    }
}

impl Runtime {
    /// Compiles on a thread of its own, waiting at most `compile_timeout`.
    /// On a timeout the thread is abandoned (it ends when the process does).
    fn compile(&self, name: &str, bytes: &[u8]) -> Result<Component, HostError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let engine = self.engine.clone();
        let owned = bytes.to_vec();
        std::thread::Builder::new()
            .name("agentsec-compile".into())
            .spawn(move || {
                let _ = tx.send(Component::new(&engine, &owned));
            })
            .map_err(|e| HostError::Engine(format!("cannot start the compile thread: {e}")))?;
        let started = std::time::Instant::now();
        let timeout = self.config.compile_timeout;
        let mut received = rx.recv_timeout(timeout.min(SLOW_COMPILE_NOTICE));
        if let (Err(std::sync::mpsc::RecvTimeoutError::Timeout), Some(notice)) =
            (&received, self.config.on_slow_compile)
            && timeout > SLOW_COMPILE_NOTICE
        {
            notice(name, bytes.len());
        }
        if matches!(received, Err(std::sync::mpsc::RecvTimeoutError::Timeout)) {
            received = rx.recv_timeout(timeout.saturating_sub(started.elapsed()));
        }
        match received {
            Ok(Ok(component)) => Ok(component),
            Ok(Err(e)) => Err(HostError::Compile {
                path: PathBuf::from(name),
                reason: format!("{e:#}"),
            }),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(HostError::CompileTimeout {
                path: PathBuf::from(name),
                limit: self.config.compile_timeout,
            }),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(HostError::Compile {
                path: PathBuf::from(name),
                reason: "the compiler stopped unexpectedly".to_owned(),
            }),
        }
    }
}

/// Counts functions and bytes of function bodies over every core module of
/// the component (nested ones included) and refuses what is over the limits,
/// before anything is compiled. A malformed component is left to the
/// compiler, which reports it properly.
fn check_compile_limits(name: &str, bytes: &[u8], config: &HostConfig) -> Result<(), HostError> {
    use wasmtime::wasmparser::{Parser, Payload};
    let (mut functions, mut code) = (0u64, 0u64);
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { break };
        if let Payload::CodeSectionStart { count, size, .. } = payload {
            functions = functions.saturating_add(u64::from(count));
            code = code.saturating_add(u64::from(size));
        }
    }
    let over = |what, count, limit, flag| HostError::CompileLimit {
        path: PathBuf::from(name),
        what,
        count,
        limit,
        flag,
    };
    if functions > config.max_functions {
        return Err(over(
            "functions",
            functions,
            config.max_functions,
            "--max-functions",
        ));
    }
    if code > config.max_code_size {
        return Err(over(
            "bytes of code",
            code,
            config.max_code_size,
            "--max-code-size",
        ));
    }
    Ok(())
}

/// Advances the engine's epoch every `tick` until `stop` is set. A run's
/// deadline is a number of ticks, so it is enforced within one tick.
fn spawn_ticker(engine: Engine, stop: Arc<AtomicBool>, tick: Duration) -> Result<(), HostError> {
    std::thread::Builder::new()
        .name("agentsec-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .map(drop)
        .map_err(|e| HostError::Engine(format!("cannot start the deadline thread: {e}")))
}
