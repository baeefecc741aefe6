//! Peak heap of redacting a run's output, per byte of output: the cost a hostile skill
//! can make the host pay on every run, bounded so that a regression fails.
//!
//! Its own test binary with one test, because the counting allocator is process-wide:
//! no other test may allocate while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use agentsec_redact::Redactor;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Peak heap of `Redactor::redact_segments` (the redacted copy it returns included),
/// per byte of output, at most, for each output below. Measured (2026-12-02, 3 MiB): 3.7
/// bytes per byte for the log lines, 7.8 at worst (a value back to back with the triggers of
/// every view: the hits dominate), 6.4 for the densest offset maps (escapes of alternating
/// shapes, `\n\x41`); 95.8 for the log lines before the decoded views were built one at a
/// time with sparse `u32` offset maps. The margin is for a `Vec`'s growth steps landing
/// elsewhere, not for dense offset maps again (16 bytes per byte of each view).
const MAX_PEAK_HEAP_PER_OUTPUT_BYTE: usize = 12;

/// Each of stdout, stderr and result, as `agentsec-run` allows by default.
const SEGMENT_BYTES: usize = 1 << 20;

/// `System`, counting the bytes it holds and the most it has held.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

fn shrank(by: usize) {
    CURRENT.fetch_sub(by, Ordering::SeqCst);
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds `GlobalAlloc`'s contract; the counting only reads sizes.
#[expect(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; this one only counts"
)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `layout` contract is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (so by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as the old block and the new one at once: a moving
            // realloc holds both for a moment.
            grew(new_size);
            shrank(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One segment of output, and how many values are planted in it.
type Segment = (Vec<u8>, usize);

/// Values like real credentials, with characters that every encoding changes.
const VALUES: &[(&str, &str)] = &[
    ("db.password", "s3cr3t/p@ss+word?-0123456789"),
    ("api.token", "tok_live_4f9a8b7c6d5e4f3a2b1c0d9e"),
    ("odd.value", "quo\"te\\back-slash%25-é"),
];

/// `value` JSON-escaped (quotes, backslashes, non-ASCII as `\uXXXX`).
fn json_escaped(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '"' => "\\\"".to_owned(),
            '\\' => "\\\\".to_owned(),
            c if !c.is_ascii() => format!("\\u{:04x}", u32::from(c)),
            c => c.to_string(),
        })
        .collect()
}

/// One segment of hostile output: log lines that build every decoded view (backslash
/// escapes two levels deep, CR/LF, `%XX`) over their whole length, base64-ish blobs, and
/// every ~8 KiB one of the values in one of its forms. Returns the output and how many
/// values it holds.
fn output(seed: usize) -> Segment {
    let mut out = Vec::with_capacity(SEGMENT_BYTES + 4096);
    let mut planted = 0;
    let mut n = seed;
    while out.len() < SEGMENT_BYTES {
        let blob = STANDARD.encode(format!("blob-{n}-{}", n.wrapping_mul(2_654_435_761)));
        out.extend_from_slice(
            format!(
                "{{\"n\":{n},\"msg\":\"{{\\\"inner\\\":\\\"a\\\\\\\\nb \\\\u00e9 C:\\\\\\\\x\\\"}} 50%25 %2F\\r\\n\",\"b64\":\"{blob}\"}}\r\n"
            )
            .as_bytes(),
        );
        if n.is_multiple_of(64) {
            let (_, value) = VALUES[(n / 64) % VALUES.len()];
            let form = match (n / 64 / VALUES.len()) % 6 {
                0 => value.to_owned(),
                1 => STANDARD.encode(value),
                2 => hex::encode_upper(value),
                3 => json_escaped(value),
                4 => value.bytes().map(|b| format!("%{b:02x}")).collect(),
                _ => json_escaped(&json_escaped(value)),
            };
            out.extend_from_slice(format!("value: {form};\n").as_bytes());
            planted += 1;
        }
        n += 1;
    }
    (out, planted)
}

/// One segment of `pattern` repeated, with every ~64 KiB one value (raw) in it: the
/// output that makes one decoded view as large, or its offset map as dense, as it gets.
fn repeated(pattern: &str, seed: usize) -> Segment {
    let mut out = Vec::with_capacity(SEGMENT_BYTES + 4096);
    let mut planted = 0;
    let mut n = seed;
    while out.len() < SEGMENT_BYTES {
        out.extend_from_slice(pattern.as_bytes());
        if out.len() / (64 << 10) > planted {
            let (_, value) = VALUES[n % VALUES.len()];
            out.extend_from_slice(format!(" {value} ").as_bytes());
            planted += 1;
            n += 1;
        }
    }
    (out, planted)
}

/// Redacts the three segments as one stream; asserts that every planted value is gone;
/// returns the peak heap it took, per output byte.
fn peak_per_byte(outputs: &[Segment]) -> f64 {
    let planted: usize = outputs.iter().map(|(_, p)| p).sum();
    let segments: Vec<&[u8]> = outputs.iter().map(|(o, _)| o.as_slice()).collect();
    let total: usize = segments.iter().map(|s| s.len()).sum();
    let mut redactor = Redactor::default();
    for (path, value) in VALUES {
        redactor
            .add(path, value.as_bytes())
            .expect("within the limit");
    }
    // Builds the automaton, whose size depends on the values, not on the output.
    let _ = redactor.redact(b"warm up");

    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let redacted = redactor.redact_segments(&segments);
    let peak = PEAK.load(Ordering::SeqCst) - before;

    // Redaction did its work: every planted value is gone, each behind a marker.
    let markers: usize = redacted
        .iter()
        .map(|s| s.windows(10).filter(|w| w == b"[REDACTED:").count())
        .sum();
    assert!(markers >= planted, "{markers} markers for {planted} values");
    for s in &redacted {
        for (_, value) in VALUES {
            assert!(!s.windows(value.len()).any(|w| w == value.as_bytes()));
        }
    }
    peak as f64 / total as f64
}

#[test]
fn peak_heap_of_redacting_3_mib_is_bounded_per_output_byte() {
    let seeds = [1, 1_000_003, 2_000_003];
    let mut cases: Vec<(String, Vec<Segment>)> =
        vec![("log lines".to_owned(), seeds.map(output).to_vec())];
    // Each view at its densest: a unit to decode every few bytes, nested escapes
    // whose every level is a view, line breaks and escaped line breaks everywhere,
    // and one value back to back with the triggers of every view.
    let (_, dense) = VALUES[0];
    for pattern in [
        "\\n".to_owned(),
        "\\\\\\\\".to_owned(),
        "\\u00e9\\ud83d\\ude00".to_owned(),
        // Units of alternating shapes, or at alternating distances: no two in one run.
        "\\n\\x41".to_owned(),
        "\\na\\nbb".to_owned(),
        "\\n%41%41\\x41\r\n\na%2f".to_owned(),
        "%41".to_owned(),
        "a\n".to_owned(),
        "\\\\na".to_owned(),
        format!("{dense}\\\\n%41\r\n"),
    ] {
        let outputs = seeds.map(|seed| repeated(&pattern, seed)).to_vec();
        cases.push((format!("{pattern:?} repeated"), outputs));
    }
    let mut worst = 0.0f64;
    for (name, outputs) in &cases {
        let per_byte = peak_per_byte(outputs);
        println!("{name}: peak heap {per_byte:.1} bytes per output byte");
        worst = worst.max(per_byte);
    }
    assert!(
        worst <= MAX_PEAK_HEAP_PER_OUTPUT_BYTE as f64,
        "peak heap {worst:.1} bytes per output byte, over {MAX_PEAK_HEAP_PER_OUTPUT_BYTE}"
    );
}
