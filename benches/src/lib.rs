//! Benchmarks live in `benches/`; see README.md for results. This library holds what
//! more than one bench sets up.

use std::path::{Path, PathBuf};

use agentsec_tests::peers::{Server, bao, openbao_dev};

/// The root token of [`BenchVault`]'s dev server.
pub const BENCH_VAULT_TOKEN: &str = "bench-root";

/// A local OpenBao dev server holding the probe skill's password at
/// `secret/agents/production`, mounted at `databases.postgres.production` by the configs
/// [`BenchVault::config`] writes (the same dotted path as the demo SOPS file's).
pub struct BenchVault {
    /// The server (stopped on drop).
    pub server: Server,
    dir: PathBuf,
    token: PathBuf,
}

impl BenchVault {
    /// Starts the server and writes its token file into `dir`.
    ///
    /// # Panics
    /// The server or the write fails (a bench aborts).
    pub fn start(dir: &Path) -> BenchVault {
        let server = openbao_dev(BENCH_VAULT_TOKEN);
        let put = bao(
            &server,
            BENCH_VAULT_TOKEN,
            &[
                "kv",
                "put",
                "secret/agents/production",
                "password=Bench-Vault-Password-1",
            ],
        );
        assert!(put.status.success(), "{put:?}");
        let token = dir.join("vault-token");
        std::fs::write(&token, format!("{BENCH_VAULT_TOKEN}\n")).expect("token file");
        BenchVault {
            server,
            dir: dir.to_owned(),
            token,
        }
    }

    /// A `vault-config.yaml` with `cache_ttl: TTL` (e.g. `60s`, `0s`), written into the
    /// directory given to [`BenchVault::start`].
    ///
    /// # Panics
    /// The write fails.
    pub fn config(&self, ttl: &str) -> PathBuf {
        let cfg = self.dir.join(format!("vault-{ttl}.yaml"));
        std::fs::write(
            &cfg,
            format!(
                "vault:\n  address: {}\n  cache_ttl: {ttl}\n  auth:\n    method: token\n    token_file: {}\nsecrets:\n  databases.postgres.production: secret/data/agents/production\n",
                self.server.addr,
                self.token.display()
            ),
        )
        .expect("vault config");
        cfg
    }
}

/// One run of `skill` as `ops/release-manager` on `broker` with `input`, limits raised
/// for benchmarking (no call limit, a 10-minute deadline); its wall time.
///
/// # Panics
/// The run does not end with a result, or the result reports an error (`"err"`).
pub fn run_probe(
    runtime: &agentsec_host::Runtime,
    skill: &agentsec_host::LoadedSkill,
    broker: &std::sync::Arc<agentsec_broker::Broker>,
    input: &str,
) -> std::time::Duration {
    let mut limits = agentsec_host::Limits::default();
    limits.max_secret_calls = u32::MAX;
    limits.timeout = std::time::Duration::from_secs(600);
    let request = agentsec_host::RunRequest::new(
        agentsec_policy::AgentId::parse("ops/release-manager").expect("agent id"),
        input,
        std::sync::Arc::clone(broker),
        "bench".into(),
    )
    .limits(limits);
    let start = std::time::Instant::now();
    let report = runtime.run(skill, request);
    let took = start.elapsed();
    match &report.end {
        agentsec_host::RunEnd::Ok(out) => assert!(!out.contains("\"err\""), "{out}"),
        other => panic!("{other:?}"),
    }
    took
}
