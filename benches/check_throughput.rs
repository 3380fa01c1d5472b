//! `check` throughput on generated policies of 1k, 10k and 100k lines:
//! cold (a fresh database each run), all passes (parse, resolve, types,
//! phase graph, policy checks, lints).
//!
//! Run: `cargo bench --bench check_throughput`

use std::fmt::Write;
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

fn run() {
    println!("check throughput (cold, all passes); median and min of runs");
    for lines in [1_000, 10_000, 100_000] {
        let text = generate(lines);
        let actual_lines = text.lines().count();
        let runs = if lines >= 100_000 { 7 } else { 15 };
        let (check, check_min) = median((0..runs).map(|_| check_once(&text)).collect());
        let (parse, _) = median((0..runs).map(|_| parse_once(&text)).collect());
        let mb = text.len() as f64 / 1e6;
        println!(
            "{actual_lines:>7} lines ({mb:.2} MB): check median {:>7.1} ms (min {:>7.1} ms, {:.0} lines/s); parse alone {:>7.1} ms",
            check.as_secs_f64() * 1e3,
            check_min.as_secs_f64() * 1e3,
            actual_lines as f64 / check.as_secs_f64(),
            parse.as_secs_f64() * 1e3,
        );
    }
}
