//! Shipping audit records to a local PostgreSQL 15 (started by the bench on
//! a loopback port, as the tests do): records per second of a batched
//! catch-up (`agentsec audit ship`), and the latency `ship: sync` adds to
//! each audit append (what every get-secret pays) against the same append
//! without a sink.
//!
//! Run: `cargo bench -p agentsec-benches --bench audit_ship` (needs what
//! tests/run.sh installs: PostgreSQL 15). The log lives under
//! `AGENTSEC_BENCH_DIR` (default: cargo's target tmp dir). The cluster runs
//! with `fsync=off` (a test cluster); a production store's commit adds its
//! own flush to each batch, and to each record in sync mode.

#![expect(
    clippy::unwrap_used,
    reason = "benchmark: a failure should stop it loudly"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentsec_audit::sink::{ShipOptions, SinkUrl, SyncShipper, init_postgres, ship};
use agentsec_audit::{AccessType, AuditLog, Decision, LogOptions, Record, RunContext};
use agentsec_tests::sink_peers::PgCluster;

/// Records in the catch-up log.
const BACKLOG: usize = 50_000;
/// Appends timed per sync case.
const APPENDS: usize = 2_000;
/// Repetitions of each measurement (the median is reported).
const ROUNDS: usize = 5;

fn bench_dir() -> PathBuf {
    std::env::var_os("AGENTSEC_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
}

fn context() -> RunContext {
    RunContext::new(
        "ops/release-manager",
        "db-healthcheck",
        "ab".repeat(32),
        "cd".repeat(16),
    )
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn append_n(log: &mut AuditLog, n: usize) -> Duration {
    let run = context();
    let start = Instant::now();
    for _ in 0..n {
        let record = Record::new(
            &run,
            "databases.postgres.production.password",
            AccessType::Read,
            Decision::Allow,
        )
        .rule("databases.postgres.production")
        .access_level("readonly");
        log.append_unsynced(&record).unwrap();
    }
    start.elapsed()
}

fn main() {
    let pg = PgCluster::start();
    let admin = SinkUrl::parse(&pg.url("postgres")).unwrap();
    init_postgres(&admin, "agentsec").unwrap();
    let sink = SinkUrl::parse(&pg.url("agentsec")).unwrap();
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();

    // Catch-up: a backlog of BACKLOG records, shipped in batches. Each round
    // ships a fresh log (another log id), so every row is a real insert.
    let mut catch_up = Vec::new();
    for round in 0..ROUNDS {
        let path = dir.path().join(format!("backlog-{round}.log"));
        let mut log = AuditLog::open(&path).unwrap();
        append_n(&mut log, BACKLOG);
        log.sync().unwrap();
        drop(log);
        let options = ShipOptions {
            host: format!("bench-{round}"),
            retry_for: Duration::ZERO,
            wait_for_lock: true,
        };
        let start = Instant::now();
        let reports = ship(&path, std::slice::from_ref(&sink), &options).unwrap();
        catch_up.push(start.elapsed());
        assert_eq!(reports[0].shipped, BACKLOG as u64);
        assert!(reports[0].error.is_none());
    }
    let t = median(catch_up);
    println!(
        "catch-up ship of {BACKLOG} records (batches of {}): median {:.0} ms, {:.0} records/s",
        agentsec_audit::sink::SHIP_BATCH,
        t.as_secs_f64() * 1e3,
        BACKLOG as f64 / t.as_secs_f64()
    );

    // ship: sync against no sink, per append.
    let mut plain = Vec::new();
    let mut synced = Vec::new();
    for round in 0..ROUNDS {
        let path = dir.path().join(format!("plain-{round}.log"));
        let mut log = AuditLog::open(&path).unwrap();
        plain.push(append_n(&mut log, APPENDS));
        let path = dir.path().join(format!("sync-{round}.log"));
        let shipper =
            SyncShipper::start(&path, std::slice::from_ref(&sink), &format!("sync-{round}"))
                .unwrap();
        let mut log =
            AuditLog::open_with(&path, LogOptions::new().after_append(Arc::new(shipper))).unwrap();
        synced.push(append_n(&mut log, APPENDS));
    }
    let (p, s) = (median(plain), median(synced));
    let per = |d: Duration| d.as_secs_f64() * 1e6 / APPENDS as f64;
    println!(
        "append without a sink: {:.1} µs; with ship: sync to PostgreSQL: {:.1} µs; added per get-secret: {:.1} µs",
        per(p),
        per(s),
        per(s) - per(p)
    );
}
