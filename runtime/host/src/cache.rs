//! The compiled-component cache.
//!
//! Compiling a component with Cranelift costs ~100 ms; loading a compiled
//! artifact costs well under a millisecond. Artifacts live under
//! `$XDG_CACHE_HOME/agentsec/components` (or `~/.cache/agentsec/components`),
//! one file per (component digest, engine settings) pair. They are derived
//! from the component alone and hold no secrets.
//!
//! Loading native code from disk is the one `unsafe` operation of the host:
//! whoever can write an artifact can run code in the host process. So the
//! directory is created `0700`, and an artifact is used only if it is a
//! regular file owned by the current user that nobody else can write;
//! anything else is ignored (and recompiled). The directory is opened once as
//! a `cap_std::fs::Dir`, and every later access is relative to it.

use std::hash::{Hash as _, Hasher as _};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, DirBuilder, OpenOptions};
use cap_std::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Artifacts larger than this are not read back (a real skill compiles to a
/// few MiB at most); protects the host from a planted huge file.
pub const MAX_ARTIFACT_SIZE: u64 = 256 << 20;

/// The default cache directory, if a home or XDG cache directory is known.
pub fn default_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(base.join("agentsec").join("components"))
}

/// A cache directory, opened once.
pub struct Cache {
    dir: Dir,
    path: PathBuf,
    engine_key: String,
}

impl Cache {
    /// Opens (creating, mode 0700) the cache directory for `engine`.
    pub fn open(path: &Path, engine: &Engine) -> std::io::Result<Cache> {
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(0o700);
        let parent = Dir::open_ambient_dir("/", ambient_authority())?;
        let relative = path.strip_prefix("/").unwrap_or(path);
        parent.create_dir_with(relative, &builder)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());
        Ok(Cache {
            dir,
            path: path.to_owned(),
            engine_key,
        })
    }

    fn file_name(&self, digest: &str) -> String {
        format!("{digest}-{}.cwasm", self.engine_key)
    }

    /// The compiled component for `digest`, if a trustworthy artifact exists.
    pub fn load(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let name = self.file_name(digest);
        let meta = self.dir.symlink_metadata(&name).ok()?;
        if !meta.is_file() || meta.len() > MAX_ARTIFACT_SIZE {
            return None;
        }
        let std_meta = self.dir.open(&name).ok()?.into_std().metadata().ok()?;
        // SAFETY-relevant checks: owned by us, writable by nobody else.
        if std_meta.uid() != current_uid() || std_meta.permissions().mode() & 0o022 != 0 {
            tracing::warn!(artifact = %name, "ignoring cache artifact not owned by this user or writable by others");
            return None;
        }
        deserialize_file(engine, &self.path.join(&name))
    }

    /// Stores the compiled form of `component` (atomically: temp file, then rename).
    pub fn store(&self, digest: &str, component: &Component) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        let name = self.file_name(digest);
        let tmp = format!(".{name}.{}.tmp", std::process::id());
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(0o600);
        let mut file = self.dir.open_with(&tmp, &options)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        self.dir.rename(&tmp, &self.dir, &name)
    }
}

/// The uid of this process, read from `/proc/self` (no `unsafe` needed).
fn current_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

#[expect(
    unsafe_code,
    reason = "loading a compiled artifact is inherently trusted; see below"
)]
fn deserialize_file(engine: &Engine, file: &Path) -> Option<Component> {
    // SAFETY: `Component::deserialize_file` trusts that the file was produced
    // by `Component::serialize` of a compatible engine and is not modified
    // while mapped. It lies in our own cache directory (created 0700), is a
    // regular file owned by this user and not writable by group or others
    // (checked by the caller just before), and is only ever written by
    // `Cache::store` through a temp file and an atomic rename, never in
    // place. Between the check and the mapping only this user (or root)
    // could swap it. wasmtime checks the artifact header for the wasmtime
    // version and engine settings and refuses mismatches. Mapping the file
    // instead of reading it avoids a copy (~130 µs vs ~260 µs to load).
    match unsafe { Component::deserialize_file(engine, file) } {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring unusable cache artifact");
            None
        }
    }
}
