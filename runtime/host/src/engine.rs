//! The wasmtime engine, the linker and loading components.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentsec_policy::{SkillDigest, SkillName, SkillRef};
use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::SkillPre;
use crate::cache::{self, Cache};
use crate::error::HostError;
use crate::limits::{self, EPOCH_TICK};
use crate::needs::NeedsError;
use crate::secrets_api::SecretsCtx;
use crate::state::SkillState;

/// How the host is set up (not per run; see [`crate::Limits`] for that).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostConfig {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Refuse component files larger than this.
    pub max_component_size: u64,
    /// Use wasmtime's pooling instance allocator, sized for this many
    /// concurrent runs; `None` (the default) maps fresh memory per run.
    /// See [`HostConfig::pooling`].
    pub pooling: Option<Pooling>,
}

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
            pooling: None,
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
    pub(crate) pre: SkillPre<SkillState>,
    pub(crate) from_cache: bool,
    pub(crate) needs: Result<Vec<String>, NeedsError>,
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
}

/// The agentsec WebAssembly host: one engine, one linker, many runs.
pub struct Host {
    pub(crate) engine: Engine,
    linker: Linker<SkillState>,
    cache: Option<Cache>,
    config: HostConfig,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Host {
    /// Creates the engine (epoch interruption on, component model, no
    /// component-model async) and the linker with WASI p2 and the secrets
    /// interface. Starts the epoch ticker thread that enforces deadlines.
    pub fn new(config: HostConfig) -> Result<Host, HostError> {
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
                .max_tables_per_component(POOLED_PER_RUN);
            wasm.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&wasm).map_err(|e| HostError::Engine(e.to_string()))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| HostError::Engine(e.to_string()))?;
        crate::bindings::agentsec::skill::secrets::add_to_linker::<SkillState, HasSelf<SecretsCtx>>(
            &mut linker,
            |state| &mut state.secrets,
        )
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
        Ok(Host {
            engine,
            linker,
            cache,
            config,
            ticker_stop,
        })
    }

    /// Reads, compiles (or loads from the cache) and links a component file.
    pub fn load_file(&self, path: &Path) -> Result<LoadedSkill, HostError> {
        let size = std::fs::metadata(path)
            .map_err(|e| HostError::read(path, &e))?
            .len();
        if size > self.config.max_component_size {
            return Err(HostError::TooLarge {
                path: path.to_owned(),
                size,
                limit: self.config.max_component_size,
            });
        }
        let bytes = std::fs::read(path).map_err(|e| HostError::read(path, &e))?;
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
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let sha256 = hex::encode(digest);
        let skill_name = SkillName::parse(name).map_err(|e| HostError::Name {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
        // Unnamed until the caller vouches for the name (`vouch_name`):
        // whoever chose the file chose its name.
        let skill_ref = SkillRef::unnamed(skill_name, SkillDigest::from_bytes(digest));
        let cached = self
            .cache
            .as_ref()
            .and_then(|c| c.load(&self.engine, &sha256));
        let from_cache = cached.is_some();
        let component = match cached {
            Some(component) => component,
            None => {
                let component =
                    Component::new(&self.engine, bytes).map_err(|e| HostError::Compile {
                        path: PathBuf::from(name),
                        reason: format!("{e:#}"),
                    })?;
                if let Some(cache) = &self.cache
                    && let Err(e) = cache.store(&sha256, &component)
                {
                    tracing::warn!(error = %e, "could not write the compiled-component cache");
                }
                component
            }
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| HostError::Link {
                path: PathBuf::from(name),
                reason: format!("{e:#}"),
            })?;
        let pre = SkillPre::new(pre).map_err(|e| HostError::Link {
            path: PathBuf::from(name),
            reason: format!("{e:#}"),
        })?;
        Ok(LoadedSkill {
            name: name.to_owned(),
            sha256,
            skill_ref,
            pre,
            from_cache,
            needs: crate::needs::declared_needs(bytes),
        })
    }
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
