//! Redaction of a run's output: 1,000 released values against 3 MiB of
//! output (1 MiB each of stdout, stderr and result, redacted as one stream),
//! the issue-11 target ("well under the default deadline", 10 s); and the
//! set-up (registering the values and building the automaton).
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::hint::black_box;
use std::time::Duration;

use agentsec_host::redact::Redactor;
use criterion::{Criterion, criterion_group, criterion_main};

/// A value like a real credential: 40 characters, unique per index.
fn value(i: usize) -> String {
    format!(
        "cred-{i:05}-{:016x}-Zq9+/x",
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    )
}

fn redactor(values: usize) -> Redactor {
    let mut r = Redactor::default();
    for i in 0..values {
        r.add(&format!("secrets.v{i}"), value(i).as_bytes())
            .expect("within the needle limit");
    }
    r
}

/// One MiB of log-like text with some escapes and percent signs (so every
/// decoded view is built) and, every 64 KiB, one value in some form.
fn output(seed: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 20);
    let mut n = seed;
    while out.len() < (1 << 20) {
        out.extend_from_slice(
            format!(
                "{{\"ts\":\"2026-12-01T22:{:02}:00Z\",\"msg\":\"line {n} ok \\n 50% done\"}}\n",
                n % 60
            )
            .as_bytes(),
        );
        if n.is_multiple_of(700) {
            let v = value(n % 1000);
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(
                v.bytes()
                    .map(|b| format!("{b:02X}"))
                    .collect::<String>()
                    .as_bytes(),
            );
        }
        n += 1;
    }
    out
}

fn benches(c: &mut Criterion) {
    let outputs = [output(1), output(2), output(3)];
    let segments: Vec<&[u8]> = outputs.iter().map(Vec::as_slice).collect();
    let mut group = c.benchmark_group("redact 3 MiB");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for values in [100, 1_000] {
        let mut r = redactor(values);
        let _ = r.redact(b"build the automaton");
        group.bench_function(format!("{values} values"), |b| {
            b.iter(|| black_box(r.redact_segments(black_box(&segments))));
        });
        group.bench_function(format!("{values} values, including set-up"), |b| {
            b.iter(|| {
                let mut r = redactor(values);
                black_box(r.redact_segments(black_box(&segments)))
            });
        });
    }
    group.finish();
    // A skill that reads its values one call at a time and passes a path
    // after each (each path is redacted before it is recorded).
    let mut group = c.benchmark_group("1,000 values added between path redactions");
    group.sample_size(10);
    group.bench_function("add + redact a 64-byte path, x1000", |b| {
        b.iter(|| {
            let mut r = Redactor::default();
            for i in 0..1_000 {
                r.add(&format!("secrets.v{i}"), value(i).as_bytes())
                    .expect("within the needle limit");
                black_box(
                    r.redact(b"databases.postgres.production.some-path-of-64-bytes-xxxxxxxxxx"),
                );
            }
        });
    });
    group.finish();
}

criterion_group!(redact, benches);
criterion_main!(redact);
