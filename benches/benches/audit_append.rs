//! Audit appends per second, each one locked, written and `fsync`ed:
//! one process (unkeyed, keyed, rotating) and 4 processes on one log; and
//! an append without its own `fsync` (what `--audit-sync run` does).
//!
//! Run: `cargo bench -p agentsec-benches --bench audit_append`. The log lives
//! in a temporary directory under `AGENTSEC_BENCH_DIR` (default: cargo's
//! target tmp dir), which must be on a real disk for `fsync` to cost what it
//! costs in production (tmpfs makes it free).
//!
//! The multi-process cases (1 and 4 processes, after the criterion groups)
//! run this same binary as children (selected by an environment variable),
//! each appending its share of 2000 records; the time includes starting
//! them, and the chain is verified afterwards.

#![expect(
    clippy::unwrap_used,
    reason = "benchmark: a failure should stop it loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use agentsec_audit::{AccessType, AuditLog, ChainKey, Decision, LogOptions, Record, RunContext};
use criterion::{Criterion, Throughput};

const CHILD_LOG: &str = "AGENTSEC_BENCH_AUDIT_CHILD_LOG";
const CHILD_COUNT: &str = "AGENTSEC_BENCH_AUDIT_CHILD_COUNT";
const PROCESSES: u64 = 4;

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
        "0f".repeat(16),
    )
}

fn append_n(log: &mut AuditLog, run: &RunContext, n: u64) {
    for _ in 0..n {
        let record = Record::new(
            run,
            "databases.postgres.production.password",
            AccessType::Read,
            Decision::Allow,
        )
        .rule("databases.postgres.production")
        .access_level("readonly");
        log.append(&record).unwrap();
    }
}

/// Child mode: append the requested number of records and exit.
fn child(path: &Path) {
    let count: u64 = std::env::var(CHILD_COUNT).unwrap().parse().unwrap();
    let mut log = AuditLog::open(path).unwrap();
    append_n(&mut log, &context(), count);
}

fn single_process(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let mut group = c.benchmark_group("audit_append");
    group.throughput(Throughput::Elements(1));
    let run = context();
    let cases: [(&str, LogOptions); 3] = [
        ("1 process, sha256", LogOptions::new()),
        (
            "1 process, hmac",
            LogOptions::new().key(ChainKey::from_plaintext(&[7; 32]).unwrap()),
        ),
        (
            "1 process, rotating at 64KiB",
            LogOptions::new().max_size(64 * 1024),
        ),
    ];
    for (i, (name, options)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("single{i}/audit.log"));
        let mut log = AuditLog::open_with(&path, options).unwrap();
        group.bench_function(name, |b| b.iter(|| append_n(&mut log, &run, 1)));
    }
    // What a get-secret pays under `--audit-sync run` (the default): the
    // record is written, and one fsync per run makes the run's records
    // durable before its output leaves (not measured here).
    let path = dir.path().join("unsynced/audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    let record = Record::new(
        &run,
        "databases.postgres.production.password",
        AccessType::Read,
        Decision::Allow,
    )
    .rule("databases.postgres.production")
    .access_level("readonly");
    group.bench_function("1 process, sha256, unsynced (fsync per run)", |b| {
        b.iter(|| log.append_unsynced(&record).unwrap())
    });
    group.finish();
}

/// Total appends per multi-process measurement.
///
/// Reason: at a few hundred fsyncs per second this takes several seconds,
/// long enough that process start-up (included) is noise.
const PROCESS_APPENDS: u64 = 2000;

/// Appends per second with `processes` processes sharing one log, each
/// appending its share; printed as a plain line (criterion's iteration model
/// does not fit work split over processes).
fn processes_throughput(processes: u64) {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let path = dir.path().join("multi/audit.log");
    AuditLog::open(&path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let share = PROCESS_APPENDS / processes;
    let start = Instant::now();
    let children: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(&exe)
                .env(CHILD_LOG, &path)
                .env(CHILD_COUNT, share.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let elapsed = start.elapsed();
    let report = agentsec_audit::verify(&[&path]).unwrap();
    assert_eq!(report.entries, share * processes);
    println!(
        "audit_append/{processes} process(es), sha256: {:.0} appends/s ({} appends in {:.2} s, chain verified)",
        report.entries as f64 / elapsed.as_secs_f64(),
        report.entries,
        elapsed.as_secs_f64()
    );
}

fn main() {
    if let Some(path) = std::env::var_os(CHILD_LOG) {
        child(Path::new(&path));
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    single_process(&mut c);
    c.final_summary();
    processes_throughput(1);
    processes_throughput(PROCESSES);
}
