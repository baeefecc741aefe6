//! The compiled-component cache.
//!
//! Compiling a component with Cranelift costs ~100 ms; loading a compiled
//! artifact costs well under a millisecond. Artifacts live under
//! `$XDG_CACHE_HOME/agentsec/components` (or `~/.cache/agentsec/components`),
//! one file per (component digest, engine settings) pair. They are derived
//! from the component alone and hold no secrets.
//!
//! Loading native code from disk is the one `unsafe` operation of the host:
//! whoever can choose the bytes that are loaded runs code in a process that
//! holds every secret. So an artifact is loaded only when all of this holds:
//!
//! - **The directory is ours, at every level that matters.** The path is
//!   walked from `/` one component at a time with `O_NOFOLLOW`, each level
//!   checked on the descriptor that was opened (`fstat`, no second lookup by
//!   name). Every ancestor must be owned by root or by us and not writable by
//!   group or others unless it is sticky (like `/tmp`, where others cannot
//!   rename our entries); the cache directory itself must be owned by us and
//!   writable by nobody else. Missing levels are created `0700`. Anything else
//!   disables the cache for the process (with a warning): every component is
//!   compiled, nothing is written or read there.
//! - **The artifact is bound to its component.** Each file starts with an
//!   HMAC-SHA256 tag over the component's SHA-256, the engine's settings
//!   (wasmtime's precompile-compatibility hash) and the compiled bytes, keyed
//!   by a per-user random key in the cache directory ([`KEY_FILE`], 32 bytes,
//!   `0600`, created once with `O_EXCL` and linked into place atomically). An
//!   artifact of another component renamed to this one's file name, a flipped
//!   byte or an artifact made with another key fails the tag and is recompiled.
//! - **What is checked is what is loaded.** The artifact is opened once
//!   (`O_NOFOLLOW`), its owner and mode are checked on that descriptor, its
//!   bytes are read once into memory (at most [`MAX_ARTIFACT_SIZE`]), the tag
//!   is verified on those bytes and those same bytes are deserialized. The
//!   path is never opened again, so renaming or exchanging files
//!   (`renameat2(RENAME_EXCHANGE)`) between check and use gains nothing.

use std::ffi::OsStr;
use std::hash::{Hash as _, Hasher};
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component as PathPart, Path, PathBuf};

use hmac::{Hmac, Mac as _};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;
use zeroize::Zeroizing;

/// Artifacts larger than this are not read (a real skill compiles to a few
/// MiB at most); protects the host from a planted huge file.
pub const MAX_ARTIFACT_SIZE: u64 = 256 << 20;

/// The per-user MAC key's file name inside the cache directory.
pub const KEY_FILE: &str = "key";

/// Bytes of the MAC key (HMAC-SHA256 takes a key of the hash's block size or
/// less; 32 random bytes are its full strength).
const KEY_LEN: usize = 32;

/// The first bytes of every artifact: names the format so that an artifact
/// of an older layout is recompiled, never misread.
const MAGIC: &[u8; 16] = b"agentsec-cwasm1\n";

/// Bytes of the HMAC-SHA256 tag after [`MAGIC`].
const TAG_LEN: usize = 32;

/// Separates what the tag covers from any other use of the key.
const TAG_DOMAIN: &[u8] = b"agentsec compiled-component cache v1\0";

/// The default cache directory, if a home or XDG cache directory is known.
pub fn default_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(base.join("agentsec").join("components"))
}

/// A cache directory, opened once and checked, with its MAC key.
pub struct Cache {
    dir: OwnedFd,
    key: Zeroizing<[u8; KEY_LEN]>,
    engine_key: String,
    uid: u32,
}

impl Cache {
    /// Opens (creating missing levels, mode 0700) the cache directory for
    /// `engine`, checking every level and loading (or creating) the MAC key.
    ///
    /// # Errors
    /// A level is a symlink, not a directory, owned by another user or
    /// writable by others (the message names it), the key file is not a
    /// private regular file of ours, or an I/O error.
    pub fn open(path: &Path, engine: &Engine) -> std::io::Result<Cache> {
        let uid = rustix::process::geteuid().as_raw();
        let dir = open_private_dir(path, uid)?;
        let key = load_or_create_key(&dir, uid).map_err(|e| {
            std::io::Error::new(e.kind(), format!("{}/{KEY_FILE}: {e}", path.display()))
        })?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());
        Ok(Cache {
            dir,
            key,
            engine_key,
            uid,
        })
    }

    fn file_name(&self, digest: &[u8; 32]) -> String {
        format!("{}-{}.cwasm", hex::encode(digest), self.engine_key)
    }

    /// The tag binding `payload` to the component `digest` and `engine`.
    fn tag(&self, engine: &Engine, digest: &[u8; 32], payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&*self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(TAG_DOMAIN);
        mac.update(digest);
        let mut feed = MacHasher(&mut mac);
        engine.precompile_compatibility_hash().hash(&mut feed);
        mac.update(payload);
        mac
    }

    /// The compiled component for the component whose SHA-256 is `digest`,
    /// if a trustworthy artifact exists (see the module docs).
    pub fn load(&self, engine: &Engine, digest: &[u8; 32]) -> Option<Component> {
        let name = self.file_name(digest);
        let bytes = match self.read_artifact(&name) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return None,
            Err(why) => {
                tracing::warn!(artifact = %name, "ignoring cache artifact: {why}");
                return None;
            }
        };
        let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            tracing::warn!(artifact = %name, "ignoring cache artifact: not in agentsec's format");
            return None;
        };
        let (tag, payload) = rest.split_at_checked(TAG_LEN)?;
        if self.tag(engine, digest, payload).verify_slice(tag).is_err() {
            tracing::warn!(artifact = %name, "ignoring cache artifact: its MAC does not match this component and engine (recompiling)");
            return None;
        }
        deserialize(engine, payload)
    }

    /// Reads artifact `name` once through one descriptor, after checking on
    /// that descriptor that it is a regular file of ours that nobody else can
    /// write. `Ok(None)`: there is none.
    fn read_artifact(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let fd = match rustix::fs::openat(
            &self.dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| e.to_string())?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err("not a regular file".to_owned());
        }
        if stat.st_uid != self.uid || stat.st_mode & 0o022 != 0 {
            return Err("not owned by this user, or writable by others".to_owned());
        }
        let size = u64::try_from(stat.st_size).unwrap_or(u64::MAX);
        if size > MAX_ARTIFACT_SIZE {
            return Err(format!("larger than {MAX_ARTIFACT_SIZE} bytes"));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
        std::fs::File::from(fd)
            .take(MAX_ARTIFACT_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_ARTIFACT_SIZE {
            return Err(format!("larger than {MAX_ARTIFACT_SIZE} bytes"));
        }
        Ok(Some(bytes))
    }

    /// Stores the compiled form of `component`, whose source has SHA-256
    /// `digest`, with its tag (atomically: temp file, then rename).
    pub fn store(
        &self,
        engine: &Engine,
        digest: &[u8; 32],
        component: &Component,
    ) -> std::io::Result<()> {
        let payload = component.serialize().map_err(std::io::Error::other)?;
        let tag = self.tag(engine, digest, &payload).finalize().into_bytes();
        let name = self.file_name(digest);
        let tmp = temp_name(&name);
        let mut file = std::fs::File::from(rustix::fs::openat(
            &self.dir,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?);
        let written = file
            .write_all(MAGIC)
            .and_then(|()| file.write_all(&tag))
            .and_then(|()| file.write_all(&payload))
            .and_then(|()| file.sync_all());
        drop(file);
        let renamed = written.and_then(|()| {
            rustix::fs::renameat(&self.dir, tmp.as_str(), &self.dir, name.as_str())
                .map_err(Into::into)
        });
        if renamed.is_err() {
            let _ = rustix::fs::unlinkat(&self.dir, tmp.as_str(), rustix::fs::AtFlags::empty());
        }
        renamed
    }
}

/// Feeds what a `Hash` impl writes into the MAC (the engine's settings are
/// only exposed as `impl Hash`).
struct MacHasher<'a>(&'a mut Hmac<Sha256>);

impl Hasher for MacHasher<'_> {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// A name for a temporary file next to `name` that no other writer uses.
fn temp_name(name: &str) -> String {
    let mut random = [0u8; 8];
    let _ = getrandom::fill(&mut random);
    format!(".{name}.{}.{}.tmp", std::process::id(), hex::encode(random))
}

fn refuse(shown: &Path, why: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!(
            "{}: {why}; fix its owner/mode or point XDG_CACHE_HOME at a private directory",
            shown.display()
        ),
    )
}

/// Opens `path` as a directory, walking from `/` without following symlinks
/// and checking each level on its descriptor; creates missing levels 0700.
/// Symlinks in the part that exists when we start are resolved first (so a
/// `~/.cache` that links elsewhere works); a symlink appearing later fails.
fn open_private_dir(path: &Path, uid: u32) -> std::io::Result<OwnedFd> {
    let path = std::path::absolute(path)?;
    let mut existing = path.as_path();
    let mut missing: Vec<&OsStr> = Vec::new();
    let resolved = loop {
        match std::fs::canonicalize(existing) {
            Ok(p) => break p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(e);
                };
                missing.push(name);
                existing = parent;
            }
            Err(e) => return Err(e),
        }
    };
    let mut full = resolved;
    full.extend(missing.iter().rev());

    let parts: Vec<&OsStr> = full
        .components()
        .filter_map(|c| match c {
            PathPart::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut fd = rustix::fs::open("/", dir_flags, Mode::empty())?;
    let mut shown = PathBuf::from("/");
    check_level(&fd, &shown, uid, parts.is_empty())?;
    for (i, part) in parts.iter().enumerate() {
        shown.push(part);
        let last = i + 1 == parts.len();
        let bytes = part.as_bytes();
        let next = match rustix::fs::openat(&fd, bytes, dir_flags, Mode::empty()) {
            Ok(next) => next,
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&fd, bytes, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                rustix::fs::openat(&fd, bytes, dir_flags, Mode::empty())?
            }
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(refuse(&shown, "is a symlink or not a directory"));
            }
            Err(e) => return Err(e.into()),
        };
        check_level(&next, &shown, uid, last)?;
        fd = next;
    }
    Ok(fd)
}

/// The ownership and mode rules of the module docs, for one level.
fn check_level(fd: &impl AsFd, shown: &Path, uid: u32, is_cache_dir: bool) -> std::io::Result<()> {
    let stat = rustix::fs::fstat(fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return Err(refuse(shown, "is not a directory"));
    }
    let writable_by_others = stat.st_mode & 0o022 != 0;
    let sticky = stat.st_mode & 0o1000 != 0;
    if is_cache_dir {
        if stat.st_uid != uid {
            return Err(refuse(
                shown,
                &format!(
                    "is owned by uid {}, not by this user (uid {uid}); refusing the compiled-component cache",
                    stat.st_uid
                ),
            ));
        }
        if writable_by_others {
            return Err(refuse(
                shown,
                "is writable by group or others; refusing the compiled-component cache",
            ));
        }
    } else {
        if stat.st_uid != uid && stat.st_uid != 0 {
            return Err(refuse(
                shown,
                &format!(
                    "(on the way to the compiled-component cache) is owned by uid {}, neither this user nor root",
                    stat.st_uid
                ),
            ));
        }
        if writable_by_others && !sticky {
            return Err(refuse(
                shown,
                "(on the way to the compiled-component cache) is writable by group or others and not sticky",
            ));
        }
    }
    Ok(())
}

/// The MAC key: read if it exists (it must be a 32-byte regular file of
/// ours that only we can read or write), else created.
fn load_or_create_key(dir: &OwnedFd, uid: u32) -> std::io::Result<Zeroizing<[u8; KEY_LEN]>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rustix::fs::openat(dir, KEY_FILE, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => {
            create_key(dir)?;
            rustix::fs::openat(dir, KEY_FILE, flags, Mode::empty())?
        }
        Err(e) => return Err(e.into()),
    };
    let stat = rustix::fs::fstat(&fd)?;
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::PermissionDenied, why.to_owned());
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(bad("the cache key is not a regular file"));
    }
    if stat.st_uid != uid || stat.st_mode & 0o077 != 0 {
        return Err(bad(
            "the cache key must be owned by this user with mode 0600; delete it to make a new one",
        ));
    }
    if stat.st_size != KEY_LEN as i64 {
        return Err(bad(
            "the cache key is not 32 bytes; delete it to make a new one",
        ));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    std::fs::File::from(fd).read_exact(&mut *key)?;
    Ok(key)
}

/// Writes a new random key to a temp file (`O_EXCL`, 0600) and links it into
/// place, so a reader never sees a half-written key; if another process won
/// the race, its key stays.
fn create_key(dir: &OwnedFd) -> std::io::Result<()> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(&mut *key).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = temp_name(KEY_FILE);
    let mut file = std::fs::File::from(rustix::fs::openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?);
    let linked = file
        .write_all(&*key)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            match rustix::fs::linkat(
                dir,
                tmp.as_str(),
                dir,
                KEY_FILE,
                rustix::fs::AtFlags::empty(),
            ) {
                Ok(()) | Err(Errno::EXIST) => Ok(()),
                Err(e) => Err(e.into()),
            }
        });
    let _ = rustix::fs::unlinkat(dir, tmp.as_str(), rustix::fs::AtFlags::empty());
    linked
}

#[expect(
    unsafe_code,
    reason = "loading a compiled artifact is inherently trusted; see below"
)]
fn deserialize(engine: &Engine, payload: &[u8]) -> Option<Component> {
    // SAFETY: `Component::deserialize` trusts that the bytes were produced by
    // `Component::serialize` of a compatible engine. These bytes were read
    // once, into this process's memory, from a file of this user in a
    // directory that only this user (and root) can write at any level (see
    // the module docs), and they carry an HMAC-SHA256 tag, verified just
    // before on these very bytes, that only a holder of this user's private
    // cache key can make and that binds them to this component's SHA-256 and
    // this engine's settings. `Cache::store` is the only writer of tags. No
    // later change to the file can reach these bytes. wasmtime also checks
    // the artifact header for its version and engine settings.
    match unsafe { Component::deserialize(engine, payload) } {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring unusable cache artifact");
            None
        }
    }
}
