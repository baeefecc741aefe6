//! `agentsec secrets`: decrypt, encrypt and maintain SOPS files, compatible with the `sops`
//! CLI (3.11 output; exit codes as sops where they overlap: MAC mismatch 51, no usable key
//! 128, value that will not decrypt 25, missing file 100, no metadata 1, bad `--extract`
//! 91, output conversion 4, already encrypted 203).
//!
//! Which command when:
//! - `updatekeys`: the *recipients* changed (someone joined or left, a key was replaced). It
//!   re-wraps the existing data key for the recipients of the matching `.sops.yaml` rule; the
//!   values and their ciphertexts stay as they are.
//! - `rotate`: the *data key* must change (a removed recipient may have copied it, or on a
//!   schedule). It generates a new data key and re-encrypts every value.
//!
//! Removing a recipient protects only future versions: whoever held the old key can still
//! read every old version of the file in version control. Rotate the data key and the
//! credentials themselves.

mod edit;
mod write;

use std::io::Write;
use std::path::{Path, PathBuf};

use agentsec_policy::SecretPath;
use agentsec_sops::{
    DecryptOptions, EmitOptions, EncryptConfig, ExtractPath, Format, Identities, KeyServices,
    KeySpec, KmsKey, SopsConfig, SopsFile, encrypt_plaintext,
};
use clap::Subcommand;
use zeroize::Zeroizing;

use crate::error::{SecretsError, Tool};
use crate::exit;
pub(crate) use write::replace_file;
use write::write_atomic;

/// `agentsec secrets`: options of every subcommand, and the subcommand.
#[derive(Debug, clap::Args)]
#[command(after_help = exit::help(exit::SECRETS))]
pub struct SecretsArgs {
    /// Use this .sops.yaml (creation rules, `stores:` indents) instead of searching from the
    /// current directory upward, as sops' `--config`.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The `--config` given, for [`config`].
static CONFIG_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// `agentsec secrets` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decrypt FILE to stdout, byte-identical to `sops decrypt`.
    Decrypt {
        /// The SOPS file.
        file: PathBuf,
        /// Print only this part: a dotted path (`db.password`, `list.1`) or sops' bracket form
        /// (`'["db"]["password"]'`, `'["list"][1]'`). List indices do not count comments.
        #[arg(long)]
        extract: Option<String>,
        /// Read FILE as this format (yaml, json, dotenv, ini, binary) instead of by name.
        #[arg(long, value_name = "T")]
        input_type: Option<String>,
        /// Print in this format (default: the input format).
        #[arg(long, value_name = "T")]
        output_type: Option<String>,
        /// Skip the MAC check. Recovery only: the output may have been tampered with.
        #[arg(long)]
        ignore_mac: bool,
        /// Write the plaintext to FILE (created 0600, replaced atomically) instead of stdout.
        #[arg(long, value_name = "FILE", conflicts_with = "in_place")]
        output: Option<PathBuf>,
        /// Replace FILE with its plaintext (as `sops decrypt -i`).
        #[arg(long, short = 'i')]
        in_place: bool,
    },
    /// Print `{"encrypted":true}` or `{"encrypted":false}`: whether FILE is a SOPS file (has
    /// `sops` metadata with a MAC), as `sops filestatus`. Reads no key.
    Filestatus {
        /// The file.
        file: PathBuf,
        /// Read FILE as this format (yaml, json, dotenv, ini, binary) instead of by name.
        #[arg(long, value_name = "T")]
        input_type: Option<String>,
    },
    /// Encrypt a plaintext FILE for master keys (from --age, --pgp, --hc-vault-transit, --kms
    /// or the first matching .sops.yaml creation rule, searched from the current directory
    /// upward). Any key flag (or SOPS_AGE_RECIPIENTS, SOPS_PGP_FP, SOPS_VAULT_URIS,
    /// SOPS_KMS_ARN) replaces the .sops.yaml keys with one group of the keys given.
    Encrypt {
        /// The plaintext file.
        file: PathBuf,
        /// Comma-separated age recipients.
        #[arg(long, value_name = "R1,R2")]
        age: Option<String>,
        /// Comma-separated OpenPGP fingerprints (encrypted to through gpg).
        #[arg(long, value_name = "FPR,...")]
        pgp: Option<String>,
        /// Comma-separated Vault Transit key URIs
        /// (`https://vault:8200/v1/<engine>/keys/<key>`); the address must be VAULT_ADDR or in
        /// SOPS_HC_VAULT_ALLOWLIST.
        #[arg(long, value_name = "URI,...")]
        hc_vault_transit: Option<String>,
        /// Comma-separated AWS KMS key ARNs.
        #[arg(long, value_name = "ARN,...")]
        kms: Option<String>,
        /// KMS encryption context for the --kms keys: `key:value,key2:value2`.
        #[arg(long, value_name = "K:V,...")]
        encryption_context: Option<String>,
        /// Replace FILE instead of printing to stdout.
        #[arg(long, short = 'i')]
        in_place: bool,
        /// Write the encrypted file to FILE (replaced atomically) instead of stdout.
        #[arg(long, value_name = "FILE", conflicts_with = "in_place")]
        output: Option<PathBuf>,
    },
    /// Open the decrypted FILE in $SOPS_EDITOR or $EDITOR (default vi) and re-encrypt it with
    /// the same data key when it changed. The plaintext stays in memory (a memfd, or a private
    /// file on the /dev/shm tmpfs), never on disk. Unchanged: FILE untouched, exit 0. A FILE
    /// that does not exist starts from sops' example document and is encrypted for the
    /// matching .sops.yaml rule.
    Edit {
        /// The SOPS file.
        file: PathBuf,
    },
    /// Set the value at PATH (`db.password` or `'["db"]["password"]'`) to the JSON value read
    /// from stdin (or `--value-file`), in place; never from the command line. A path that does
    /// not parse is refused (exit 7), as is an index past the end of a list or a key on a
    /// list; the file is then untouched.
    Set {
        /// The SOPS file.
        file: PathBuf,
        /// Where: a dotted path or sops' bracket form (never empty).
        path: String,
        /// Read the JSON value from FILE (as sops 3.10+ `--value-file`).
        #[arg(long, value_name = "FILE", conflicts_with = "value_stdin")]
        value_file: Option<PathBuf>,
        /// Read the JSON value from stdin (the default; as sops 3.10+ `--value-stdin`).
        #[arg(long)]
        value_stdin: bool,
    },
    /// Remove the key or list element at PATH, in place (exit 7 for a path that does not
    /// parse, 1 for one that names nothing; the file is then untouched).
    Unset {
        /// The SOPS file.
        file: PathBuf,
        /// Where: a dotted path or sops' bracket form (never empty).
        path: String,
    },
    /// Re-wrap the data key for the recipients of the matching .sops.yaml rule (use after
    /// adding or removing a recipient). The data key stays the same (values are
    /// written again under it, with new IVs); for a new data key see `rotate`.
    Updatekeys {
        /// The SOPS file.
        file: PathBuf,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Generate a new data key and re-encrypt every value, in place (use after removing a
    /// recipient, or on a schedule). Rotate the credentials themselves too: old versions in
    /// version control stay readable to former recipients.
    Rotate {
        /// The SOPS file.
        file: PathBuf,
    },
    /// Write FILE's values into Vault KV v2 through `--vault-config`'s mounts (migrating a
    /// SOPS tree to Vault).
    ///
    /// Each leaf goes where the config's `secrets:` mounts put it; each KV secret is written once,
    /// as a new version holding the fields FILE has for it (as `vault kv put`; its older
    /// versions stay in Vault's history), every value as a string. Every leaf must fall
    /// under a mount, and no mount may be pinned to a version, or nothing is written. The
    /// token is the config's `auth` (a token that may write there, e.g. an operator's
    /// `VAULT_TOKEN`; agentsec's own reads only). Prints the secrets and field names
    /// written, never a value.
    Push {
        /// The SOPS file.
        file: PathBuf,
        /// The vault-config.yaml whose address, auth and `secrets:` mounts to use.
        #[arg(long, value_name = "FILE")]
        vault_config: PathBuf,
        /// Only the leaves at or below this dotted path.
        #[arg(long, value_name = "PATH")]
        prefix: Option<String>,
        /// Print what would be written (secrets and field names) and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Generate an age identity: written to FILE (mode 0600, never overwritten) or printed;
    /// the public key is printed on stdout.
    Keygen {
        /// Where to write the identity.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Runs one `agentsec secrets` command: exit 0, or the error that ended it.
pub fn run(args: SecretsArgs) -> Result<u8, SecretsError> {
    if let Some(path) = args.config {
        let _ = CONFIG_FILE.set(path);
    }
    match args.command {
        Command::Decrypt {
            file,
            extract,
            input_type,
            output_type,
            ignore_mac,
            output,
            in_place,
        } => decrypt(
            &file,
            extract.as_deref(),
            input_type.as_deref(),
            output_type.as_deref(),
            ignore_mac,
            if in_place { Some(file.clone()) } else { output },
        ),
        Command::Filestatus { file, input_type } => filestatus(&file, input_type.as_deref()),
        Command::Push {
            file,
            vault_config,
            prefix,
            dry_run,
        } => push(&file, &vault_config, prefix.as_deref(), dry_run),
        Command::Encrypt {
            file,
            age,
            pgp,
            hc_vault_transit,
            kms,
            encryption_context,
            in_place,
            output,
        } => encrypt(
            &file,
            KeyFlags {
                age,
                pgp,
                hc_vault_transit,
                kms,
                encryption_context,
            },
            if in_place { Some(file.clone()) } else { output },
        ),
        Command::Edit { file } => edit::edit(&file),
        Command::Set {
            file,
            path,
            value_file,
            value_stdin: _,
        } => set(&file, &path, value_file.as_deref()),
        Command::Unset { file, path } => unset(&file, &path),
        Command::Rotate { file } => rotate(&file),
        Command::Updatekeys { file, yes } => updatekeys(&file, yes),
        Command::Keygen { output } => keygen(output.as_deref()),
    }?;
    Ok(exit::secrets::OK)
}

fn format_of(file: &Path, name: Option<&str>) -> Result<Format, SecretsError> {
    match name {
        Some(n) => Ok(Format::from_name(n)),
        None => Ok(Format::from_path(file)?),
    }
}

fn read(file: &Path) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let mut buf = Zeroizing::new(Vec::new());
    let limit = agentsec_sops::MAX_FILE_SIZE as u64;
    match agentsec_policy::bounded::read_file(file, limit, &mut buf) {
        Ok(()) => Ok(buf),
        Err(e) if e.is_not_found() => Err(SecretsError::NotFound(
            std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()),
        )),
        Err(e) => Err(SecretsError::Read(format!(
            "could not read {}: {e}",
            file.display()
        ))),
    }
}

fn config() -> Result<Option<SopsConfig>, SecretsError> {
    if let Some(path) = CONFIG_FILE.get() {
        return Ok(Some(SopsConfig::load(path)?));
    }
    let cwd = std::env::current_dir().map_err(SecretsError::Cwd)?;
    Ok(SopsConfig::find(&cwd)?)
}

fn emit_options() -> EmitOptions {
    config().ok().flatten().map(|c| c.emit).unwrap_or_default()
}

fn open(file: &Path, input: Option<&str>, ignore_mac: bool) -> Result<SopsFile, SecretsError> {
    let format = format_of(file, input)?;
    let bytes = read(file)?;
    let mut ids = Identities::from_process_env()?;
    for origin in vault_allowlist() {
        ids.services_mut().allow_vault_address(&origin);
    }
    let opts = if ignore_mac {
        DecryptOptions::ignoring_mac()
    } else {
        DecryptOptions::default()
    };
    Ok(SopsFile::decrypt(
        &bytes,
        format,
        &file.display().to_string(),
        &ids,
        opts,
    )?)
}

fn stdout(bytes: &[u8]) -> Result<(), SecretsError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| SecretsError::Write(format!("could not write output: {e}")))
}

/// `decrypt`: the whole file, or `--extract` of it, in the output format.
fn decrypt(
    file: &Path,
    extract: Option<&str>,
    input_type: Option<&str>,
    output_type: Option<&str>,
    ignore_mac: bool,
    output_file: Option<PathBuf>,
) -> Result<(), SecretsError> {
    // `--extract ''` prints the whole file, as in sops (a read, never a write).
    let path = extract
        .filter(|p| !p.is_empty())
        .map(ExtractPath::parse)
        .transpose()?;
    let f = open(file, input_type, ignore_mac)?;
    let output = output_type.map(Format::from_name).unwrap_or(f.format());
    // `sops decrypt` reads only the stores settings of .sops.yaml (the indent).
    let opts = emit_options();
    let out = match path {
        Some(p) => f.extract(&p, output, opts)?,
        None => f.emit(output, opts)?,
    };
    match output_file {
        // Plaintext: a new file is created 0600 (an existing one keeps its mode).
        Some(target) => write_atomic(&target, &out),
        None => stdout(&out),
    }
}

/// Most leaves named in an error about leaves outside every mount. Reason: the message
/// should fit a terminal; the count says how many there are.
const MAX_UNMOUNTED_SHOWN: usize = 10;

/// One KV secret `push` writes: (engine, secret) and its (field, value)s.
type KvWrite<'t> = (
    (String, String),
    Vec<(String, &'t agentsec_secrets::SecretValue)>,
);

/// `push`: FILE's leaves into Vault KV v2, one write per KV secret.
fn push(
    file: &Path,
    vault_config: &Path,
    prefix: Option<&str>,
    dry_run: bool,
) -> Result<(), SecretsError> {
    let prefix = match prefix {
        Some(p) => SecretPath::parse_prefix(p)
            .map_err(|e| SecretsError::Read(format!("--prefix {p:?}: {e}")))?,
        None => SecretPath::root(),
    };
    let f = open(file, None, false)?;
    let tree = f.tree();
    let config = agentsec_vault::VaultConfig::load(vault_config)
        .map_err(|e| SecretsError::VaultConfig(e.to_string()))?;
    let env_token = std::env::var("VAULT_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(|t| agentsec_vault::VaultToken::new(Zeroizing::new(t)));
    let vault = agentsec_vault::VaultStore::open_with(
        config,
        env_token,
        Some(crate::run_cmd::sops_credential_reader()),
    )
    .map_err(|e| SecretsError::VaultConfig(e.to_string()))?;
    // One write per KV secret, in file order.
    let mut writes: Vec<KvWrite> = Vec::new();
    let mut unmounted = Vec::new();
    for (segments, leaf) in tree.leaves() {
        let path = SecretPath::from_segments(&segments).map_err(|e| {
            SecretsError::VaultConfig(format!(
                "{}: the leaf at {segments:?} has no dotted path ({e}); rename its keys",
                file.display()
            ))
        })?;
        if !path.starts_with(&prefix) {
            continue;
        }
        if let Some(dynamic) = vault
            .config()
            .mounts
            .iter()
            .find(|m| m.dynamic && path.starts_with(&m.prefix))
        {
            return Err(SecretsError::VaultConfig(format!(
                "{}: `{path}` falls under `{}`, whose credentials Vault issues per run: nothing is written there; pass --prefix to push another subtree",
                vault_config.display(),
                dynamic.written()
            )));
        }
        let Some(at) = vault.locate(&path) else {
            unmounted.push(path.to_string());
            continue;
        };
        if let Some(version) = at.pinned {
            return Err(SecretsError::VaultConfig(format!(
                "{}: `{path}` falls under a mount pinned to version {version} ({}/data/{}); mount it without `version:` to write to it",
                vault_config.display(),
                at.engine,
                at.secret
            )));
        }
        let key = (at.engine, at.secret);
        let field = (at.field, leaf.value());
        match writes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, fields)) => fields.push(field),
            None => writes.push((key, vec![field])),
        }
    }
    if !unmounted.is_empty() {
        let shown: Vec<&str> = unmounted
            .iter()
            .take(MAX_UNMOUNTED_SHOWN)
            .map(String::as_str)
            .collect();
        return Err(SecretsError::VaultConfig(format!(
            "{}: {} leaves of {} fall under no mount of its `secrets:` (e.g. {}); add mounts for them or pass --prefix; nothing was written",
            vault_config.display(),
            unmounted.len(),
            file.display(),
            shown.join(", ")
        )));
    }
    if writes.is_empty() {
        return Err(SecretsError::Failed(format!(
            "{}: no leaves{}; nothing to write",
            file.display(),
            if prefix.is_root() {
                String::new()
            } else {
                format!(" at or below `{prefix}`")
            }
        )));
    }
    let mut out = String::new();
    for ((engine, secret), fields) in &writes {
        let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
        if dry_run {
            out.push_str(&format!(
                "would write {engine}/data/{secret}: {}\n",
                names.join(", ")
            ));
            continue;
        }
        let values: Vec<(&str, &agentsec_secrets::SecretValue)> =
            fields.iter().map(|(f, v)| (f.as_str(), *v)).collect();
        let version = vault.write_secret(engine, secret, &values).map_err(|e| {
            SecretsError::Write(format!("{e}; secrets written before it stay written"))
        })?;
        out.push_str(&format!(
            "wrote {engine}/data/{secret} (version {version}): {}\n",
            names.join(", ")
        ));
    }
    stdout(out.as_bytes())
}

/// `filestatus`: whether FILE has `sops` metadata with a MAC (read without any key).
fn filestatus(file: &Path, input_type: Option<&str>) -> Result<(), SecretsError> {
    let format = format_of(file, input_type)?;
    // sops' filestatus exits 1 for a file it cannot read, a missing one included.
    let bytes =
        read(file).map_err(|e| SecretsError::Failed(format!("cannot check file status: {e}")))?;
    let encrypted = agentsec_sops::is_encrypted(&bytes, format, &file.display().to_string());
    stdout(format!("{{\"encrypted\":{encrypted}}}\n").as_bytes())
}

/// The key flags of `encrypt`, each falling back to its sops variable.
struct KeyFlags {
    age: Option<String>,
    pgp: Option<String>,
    hc_vault_transit: Option<String>,
    kms: Option<String>,
    encryption_context: Option<String>,
}

fn split_list(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `--encryption-context k:v,k2:v2` (sops' syntax); a pair without `:` is refused (sops' exit
/// code 6).
fn parse_context(text: &str) -> Result<Vec<(String, String)>, SecretsError> {
    split_list(text)
        .map(|pair| match pair.split_once(':') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(SecretsError::KmsContext(format!(
                "--encryption-context: {pair:?} is not key:value"
            ))),
        })
        .collect()
}

impl KeyFlags {
    /// One key group from the flags (or their variables), or `None` when none is given.
    fn group(self) -> Result<Option<Vec<KeySpec>>, SecretsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let age = self.age.or_else(|| var("SOPS_AGE_RECIPIENTS"));
        let pgp = self.pgp.or_else(|| var("SOPS_PGP_FP"));
        let vault = self.hc_vault_transit.or_else(|| var("SOPS_VAULT_URIS"));
        let kms = self.kms.or_else(|| var("SOPS_KMS_ARN"));
        if age.is_none() && pgp.is_none() && vault.is_none() && kms.is_none() {
            return Ok(None);
        }
        let context = self
            .encryption_context
            .as_deref()
            .map(parse_context)
            .transpose()?
            .unwrap_or_default();
        let profile = var("AWS_PROFILE");
        let mut group = Vec::new();
        group.extend(age.iter().flat_map(|l| split_list(l)).map(KeySpec::Age));
        group.extend(pgp.iter().flat_map(|l| split_list(l)).map(KeySpec::Pgp));
        group.extend(kms.iter().flat_map(|l| split_list(l)).map(|arn| {
            let mut key = KmsKey::parse(&arn, context.clone());
            key.aws_profile = profile.clone();
            KeySpec::Kms(key)
        }));
        group.extend(
            vault
                .iter()
                .flat_map(|l| split_list(l))
                .map(KeySpec::HcVaultTransit),
        );
        Ok(Some(group))
    }
}

/// What the non-age master keys need, from the environment, plus the Vault origins allowed
/// by the agentsec.yaml in force.
fn key_services() -> KeyServices {
    let mut services = KeyServices::from_process_env();
    for origin in vault_allowlist() {
        services.allow_vault_address(&origin);
    }
    services
}

/// `hc_vault_allowlist:` of the agentsec.yaml in force (none if there is none, or it cannot
/// be read: the allowlist can only widen, so an unreadable file allows nothing more).
fn vault_allowlist() -> Vec<String> {
    super::defaults()
        .map(|p| p.hc_vault_allowlist)
        .unwrap_or_default()
}

/// `encrypt`: for the key flags (or their sops variables), else the matching `.sops.yaml`
/// rule.
fn encrypt(file: &Path, flags: KeyFlags, output: Option<PathBuf>) -> Result<(), SecretsError> {
    let format = format_of(file, None)?;
    let bytes = read(file)?;
    let cfg = config()?;
    let mut enc = match cfg.as_ref().map(|c| c.rule_for(file)).transpose()? {
        Some(Some(rule)) => rule.config,
        _ => EncryptConfig::default(),
    };
    if let Some(group) = flags.group()? {
        enc.key_groups = vec![group];
        enc.shamir_threshold = None;
    }
    if enc.key_groups.iter().all(Vec::is_empty) {
        return Err(SecretsError::NoRecipients(
            "config file not found, or has no creation rules, and no keys provided through \
             command line options",
        ));
    }
    enc.services = key_services();
    let out = encrypt_plaintext(&bytes, format, &file.display().to_string(), &enc)?;
    match output {
        Some(target) => write_atomic(&target, &out),
        None => stdout(&out),
    }
}

/// The `.sops.yaml` rule's encryption settings for `file`, with the key services, for a new
/// file (`edit` of a file that does not exist).
fn rule_config(file: &Path) -> Result<EncryptConfig, SecretsError> {
    let cfg = config()?;
    let mut enc = match cfg.as_ref().map(|c| c.rule_for(file)).transpose()? {
        Some(Some(rule)) => rule.config,
        _ => EncryptConfig::default(),
    };
    if let Some(group) = (KeyFlags {
        age: None,
        pgp: None,
        hc_vault_transit: None,
        kms: None,
        encryption_context: None,
    })
    .group()?
    {
        enc.key_groups = vec![group];
        enc.shamir_threshold = None;
    }
    if enc.key_groups.iter().all(Vec::is_empty) {
        return Err(SecretsError::NoRecipients(
            "config file not found, or has no creation rules, and no keys provided through \
             command line options",
        ));
    }
    enc.services = key_services();
    Ok(enc)
}

/// `set`: the JSON value on stdin at `path`, in place.
fn set(file: &Path, path: &str, value_file: Option<&Path>) -> Result<(), SecretsError> {
    let path = write_path(path, "set")?;
    let mut bytes = Zeroizing::new(Vec::new());
    let limit = agentsec_sops::MAX_FILE_SIZE as u64;
    let source = match value_file {
        Some(f) => {
            agentsec_policy::bounded::read_file(f, limit, &mut bytes).map_err(|e| {
                SecretsError::Read(format!(
                    "could not read the value from {}: {e}",
                    f.display()
                ))
            })?;
            f.display().to_string()
        }
        None => {
            agentsec_policy::bounded::read_stream(std::io::stdin().lock(), limit, &mut bytes)
                .map_err(|e| {
                    SecretsError::Read(format!("could not read the value from stdin: {e}"))
                })?;
            "stdin".to_owned()
        }
    };
    let value = Zeroizing::new(
        String::from_utf8(std::mem::take(&mut *bytes))
            .map_err(|_| SecretsError::Read(format!("the value in {source} is not UTF-8 text")))?,
    );
    let mut f = open(file, None, false)?;
    f.set(&path, value.trim_end_matches('\n'))?;
    let out = f.reencrypt(false, emit_options())?;
    write_atomic(file, &out)
}

/// `unset`: removes what `path` names, in place.
fn unset(file: &Path, path: &str) -> Result<(), SecretsError> {
    let path = write_path(path, "unset")?;
    let mut f = open(file, None, false)?;
    f.unset(&path)?;
    let out = f.reencrypt(false, emit_options())?;
    write_atomic(file, &out)
}

/// `rotate`: a new data key, every value re-encrypted, in place.
fn rotate(file: &Path) -> Result<(), SecretsError> {
    let f = open(file, None, false)?;
    // As sops: the new data key goes to the file's own keys; say so when the matching
    // .sops.yaml rule names others (that is `updatekeys`' job).
    if let Ok(Some(cfg)) = config()
        && let Ok(Some(rule)) = cfg.rule_for(file)
        && !rule.config.key_groups.iter().all(Vec::is_empty)
        && rule.config.key_groups != f.key_specs()
    {
        note(format_args!(
            "warning: the keys of {} differ from its creation rule in {}; rotate keeps the \
             file's keys (run `agentsec secrets updatekeys {}` to apply the rule)",
            file.display(),
            cfg.path.display(),
            file.display()
        ));
    }
    let out = f.reencrypt(true, emit_options())?;
    write_atomic(file, &out)
}

/// `updatekeys`: the data key re-wrapped for the recipients of the matching rule (asks
/// first, as sops, unless `yes`).
fn updatekeys(file: &Path, yes: bool) -> Result<(), SecretsError> {
    let cfg = config()?.ok_or(SecretsError::NoRecipients("config file not found"))?;
    let rule = cfg.rule_for(file)?.ok_or(SecretsError::NoRecipients(
        "config file has no creation rules",
    ))?;
    let f = open(file, None, false)?;
    let current = f.key_specs();
    let wanted = &rule.config.key_groups;
    if !print_key_diff(&current, wanted) {
        eprintln!("File {} already up to date", file.display());
        return Ok(());
    }
    if !yes {
        eprint!("Is this okay? (y/n):");
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(|e| SecretsError::Failed(format!("could not read the answer: {e}")))?;
        if answer.trim() != "y" {
            return Err(SecretsError::Failed("Changes not applied".to_owned()));
        }
    }
    let threshold = rule.config.shamir_threshold;
    let out = f.with_recipients(wanted, threshold, cfg.emit)?;
    write_atomic(file, &out)?;
    eprintln!("File {} synced with new keys", file.display());
    Ok(())
}

/// Prints, per key group, the keys `updatekeys` adds (`+++ KEY`) and removes (`--- KEY`), as
/// sops does; whether anything changes.
fn print_key_diff(current: &[Vec<KeySpec>], wanted: &[Vec<KeySpec>]) -> bool {
    let mut changed = current.len() != wanted.len();
    for i in 0..current.len().max(wanted.len()) {
        let old = current.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let new = wanted.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let added: Vec<&KeySpec> = new.iter().filter(|k| !old.contains(k)).collect();
        let removed: Vec<&KeySpec> = old.iter().filter(|k| !new.contains(k)).collect();
        if added.is_empty() && removed.is_empty() {
            continue;
        }
        changed = true;
        eprintln!("Group {}", i + 1);
        for k in old.iter().filter(|k| new.contains(k)) {
            eprintln!("    {k}");
        }
        for k in added {
            eprintln!("+++ {k}");
        }
        for k in removed {
            eprintln!("--- {k}");
        }
    }
    changed
}

/// The path of a `set` or `unset`: the one path parser ([`SecretPath`]), dotted or bracket
/// form. Anything else, the empty path included (it never means "the whole document" for a
/// write), is refused with sops' exit code 7 before the file is read.
fn write_path(text: &str, command: &'static str) -> Result<ExtractPath, SecretsError> {
    SecretPath::parse(text)
        .map(ExtractPath::from)
        .map_err(|e| SecretsError::InvalidPath {
            command,
            reason: e.to_string(),
        })
}

fn keygen(output: Option<&Path>) -> Result<(), SecretsError> {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let created = time_stamp();
    let body = Zeroizing::new(format!(
        "# created: {created}\n# public key: {public}\n{}\n",
        id.to_string().expose_secret()
    ));
    match output {
        Some(path) => {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(path).map_err(|e| {
                SecretsError::Failed(format!(
                    "could not create {} (never overwritten): {e}",
                    path.display()
                ))
            })?;
            f.write_all(body.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| {
                    SecretsError::Write(format!("could not write {}: {e}", path.display()))
                })?;
            eprintln!("Public key: {public}");
            stdout(format!("{public}\n").as_bytes())
        }
        None => {
            // As age-keygen does: when the key goes to a file or a pipe rather
            // than a terminal, say on stderr which public key it belongs to.
            if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                eprintln!("Public key: {public}");
            }
            stdout(body.as_bytes())
        }
    }
}

fn time_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// Notes what was done, `agentsec secrets: MESSAGE` on stderr.
fn note(message: impl std::fmt::Display) {
    Tool::Secrets.note(message);
}
