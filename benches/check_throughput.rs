//! `check` throughput on generated policies of 1k, 10k and 100k lines:
//! cold (a fresh database each run), all passes (parse, resolve, types,
//! phase graph, policy checks, lints), in process; then `pmf check` of the
//! 100k-line policy as a whole process (the release binary, from its start
//! to its exit: reading, the stdlib, every pass, the report), with its peak
//! memory, as issue 14 asks (0.25 s and 120 MB on 2 cores). Beside each
//! in-process check: the parse alone (pest and the tree, on every core),
//! and pest alone (the grammar run on every chunk, no tree): the floor
//! that the required parser sets under `check`.
//!
//! Run: `cargo bench --bench check_throughput` (runs of the whole process,
//! as the host's noise varies: PMF_BENCH_RUNS, default 7). With
//! PMF_BENCH_DUMP=DIR the generated policies are also written to
//! `DIR/generated-LINES.pmf`, to profile `pmf check` on them.

// A benchmark is a harness, as a test is: what it cannot set up it fails
// loudly (the library code it measures takes the no-panic lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use pmf::db::Session;

// The same allocator as the `pmf` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A policy of about `lines` lines that extends the stdlib and uses every
/// kind of declaration.
fn generate(lines: usize) -> String {
    let mut out = String::from("policy generated extends kwanus\n\n");
    let groups = lines / 40 + 1;
    for g in 0..groups {
        writeln!(out, "authority A{g} \"Authority {g}\" governs cat{g}").unwrap();
        writeln!(
            out,
            "category cat{g} \"Category {g}\" covers f{g}, m{g}.level"
        )
        .unwrap();
        writeln!(out, "partner {{").unwrap();
        writeln!(out, "  f{g}: set<string>").unwrap();
        writeln!(out, "  m{g}: {{ level: number, score: score }}").unwrap();
        writeln!(out, "}}").unwrap();
        writeln!(out, "migration mig{g} \"Migration {g}\" {{").unwrap();
        writeln!(
            out,
            "  when partner.m{g}.level > 3 and target.version.major == partner.version.major + 1"
        )
        .unwrap();
        writeln!(out, "  requires mapping").unwrap();
        writeln!(out, "  touches cat{g}").unwrap();
        writeln!(out, "  approve by A{g}").unwrap();
        writeln!(out, "}}").unwrap();
        writeln!(out, "compatibility {{").unwrap();
        for r in 0..6 {
            writeln!(out, "  keep{g}_{r}: target.f{g} >= partner.f{g} and \"x{r}\" in target.f{g} else fallback").unwrap();
        }
        writeln!(out, "}}").unwrap();
        writeln!(out, "sustainability {{").unwrap();
        for r in 0..6 {
            writeln!(out, "  floor{g}_{r}: observed.m{g}.score >= {} and len(observed.f{g}) > {r} else throttle", 30 + r).unwrap();
        }
        writeln!(out, "}}").unwrap();
        writeln!(out, "validation {{").unwrap();
        writeln!(out, "  capability {{").unwrap();
        for r in 0..6 {
            writeln!(out, "    check{g}_{r}: max(observed.m{g}.level, {r}) - min(partner.m{g}.level, 1) >= abs(-{r}) or target.version >= 1.{r}.0").unwrap();
        }
        writeln!(out, "  }}").unwrap();
        writeln!(out, "}}").unwrap();
        writeln!(out, "ceiling m{g}.level <= {}", 10 + g).unwrap();
        writeln!(out, "// group {g} ends here").unwrap();
        writeln!(out).unwrap();
    }
    let order: Vec<String> = ["forced", "guided", "soft"]
        .iter()
        .map(|s| s.to_string())
        .chain((0..groups).map(|g| format!("mig{g}")))
        .collect();
    writeln!(out, "override order {}", order.join(", ")).unwrap();
    out
}

/// Time a cold check: a fresh database, every pass. Tearing the database
/// down is not timed (`pmf check` exits without freeing it).
fn check_once(text: &str) -> Duration {
    let (elapsed, session) = timed_check(text);
    drop(session);
    elapsed
}

fn timed_check(text: &str) -> (Duration, Session) {
    let start = Instant::now();
    let mut session = Session::default();
    let file = session.set_file("generated.pmf", text.to_string());
    let diags = session.check(file);
    let elapsed = start.elapsed();
    assert!(
        diags.iter().all(|d| !d.is_error()),
        "generated policy has errors: {:?}",
        &diags[..diags.len().min(3)]
    );
    (elapsed, session)
}

/// Time the syntax layer alone.
fn parse_once(text: &str) -> Duration {
    let start = Instant::now();
    let parsed = pmf::syntax::parse("generated.pmf", text);
    let elapsed = start.elapsed();
    assert!(parsed.diagnostics.is_empty());
    drop(parsed);
    elapsed
}

/// pest alone: every chunk recognised by the grammar, no tree built (the
/// floor under `parse_once`, on the same cores; the chunks are cut before
/// the clock starts).
fn pest_once(text: &str) -> Duration {
    let chunks: Vec<&str> = pmf::syntax::parser::chunk_spans(text)
        .iter()
        .map(|s| &text[s.range()])
        .collect();
    let start = Instant::now();
    let accepted = pmf::syntax::accepted_chunks(&chunks);
    let elapsed = start.elapsed();
    assert_eq!(
        accepted,
        chunks.len(),
        "every chunk of the generated policy parses"
    );
    elapsed
}

fn median(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[0])
}

fn main() {
    // Measure on a thread like the one `pmf` runs the CLI on.
    let worker = std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(run)
        .expect("spawn the benchmark thread");
    worker.join().expect("benchmark thread");
}

/// One run of `pmf check FILE` under `/usr/bin/time`: wall seconds, user
/// plus system seconds, and peak resident memory in KB.
fn whole_process(file: &std::path::Path) -> (f64, f64, u64) {
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %U %S %M")
        .arg(env!("CARGO_BIN_EXE_pmf"))
        .arg("check")
        .arg(file)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run /usr/bin/time pmf check");
    assert!(
        out.status.success(),
        "pmf check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fields: Vec<f64> = stderr
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .map(|f| f.parse().expect("a number from /usr/bin/time"))
        .collect();
    let [wall, user, sys, peak_kb] = fields[..] else {
        panic!("unexpected /usr/bin/time output: {stderr}");
    };
    (wall, user + sys, peak_kb as u64)
}

fn run() {
    let dump = std::env::var_os("PMF_BENCH_DUMP").map(std::path::PathBuf::from);
    println!("check throughput (cold, all passes); median and min of runs");
    let mut largest = String::new();
    for lines in [1_000, 10_000, 100_000] {
        let text = generate(lines);
        if let Some(dir) = &dump {
            let path = dir.join(format!("generated-{lines}.pmf"));
            std::fs::write(&path, &text).expect("write the generated policy");
            println!("wrote {}", path.display());
        }
        let actual_lines = text.lines().count();
        let runs = if lines >= 100_000 { 7 } else { 15 };
        let (check, check_min) = median((0..runs).map(|_| check_once(&text)).collect());
        let (parse, _) = median((0..runs).map(|_| parse_once(&text)).collect());
        let (pest, _) = median((0..runs).map(|_| pest_once(&text)).collect());
        let mb = text.len() as f64 / 1e6;
        println!(
            "{actual_lines:>7} lines ({mb:.2} MB): check median {:>7.1} ms (min {:>7.1} ms, {:.0} lines/s); parse alone {:>7.1} ms, pest alone {:>7.1} ms",
            check.as_secs_f64() * 1e3,
            check_min.as_secs_f64() * 1e3,
            actual_lines as f64 / check.as_secs_f64(),
            parse.as_secs_f64() * 1e3,
            pest.as_secs_f64() * 1e3,
        );
        largest = text;
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("generated.pmf");
    std::fs::write(&file, &largest).expect("write the generated policy");
    let runs = std::env::var("PMF_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7usize)
        .max(1);
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..runs {
        let (wall, cpu, peak) = whole_process(&file);
        walls.push(wall);
        cpus.push(cpu);
        peaks.push(peak);
    }
    let min_median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    };
    let (wall_min, wall_median) = min_median(&mut walls);
    let (cpu_min, cpu_median) = min_median(&mut cpus);
    peaks.sort_unstable();
    println!(
        "pmf check, whole process, {} lines, {runs} runs: wall min {wall_min:.2} s, median {wall_median:.2} s; user+sys min {cpu_min:.2} s, median {cpu_median:.2} s; peak RSS min {} MB, median {} MB",
        largest.lines().count(),
        peaks[0] / 1024,
        peaks[peaks.len() / 2] / 1024,
    );
}
