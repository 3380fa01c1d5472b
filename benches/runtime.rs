//! Runtime throughput: `pmf plan` over generated partners streamed from
//! NDJSON, and `pmf apply` with the durable lineage, both timed end to end
//! through the real binary (peak memory from `/proc` of the child).
//!
//! Plans are timed with one target for all, with a target of its own for
//! every partner (the target file in the partners' order, and scattered),
//! and with observed metrics for every partner too. Each plan is written
//! to a new file (the last run's is removed untimed). Apply is timed as a
//! person runs it (a summary) and printing every event (`--format json`),
//! each on a fresh store, beside plain SQLite inserting the same rows (the
//! ratio of their times, and of their CPU times, which the host's noise
//! moves less);
//! then `lineage verify`, `status`, `review list`, `state export` and
//! `lineage show` of the store the last run left, and a `state import` of
//! one partner onto it (which first holds the whole log to its latest
//! signed checkpoint).
//!
//! Run: `cargo bench --bench runtime` (sizes: PMF_BENCH_PLAN, default
//! 1000000; PMF_BENCH_APPLY, default 100000, 0 to skip; runs of each, as
//! the host's noise varies: PMF_BENCH_RUNS, default 3, each apply on a
//! fresh store). PMF_BENCH_INSTRUCTIONS=N (default 0, skipped) also counts
//! the instructions an apply of N partners executes, under valgrind's
//! callgrind: a figure the host's noise does not move.

// A benchmark is a harness, as a test is: what it cannot set up it fails
// loudly (the library code it measures takes the no-panic lints).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn generate(dir: &Path, n: usize) -> std::path::PathBuf {
    let base: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string("examples/fleet/partners.json").expect("fleet partners"),
    )
    .expect("fleet partners are JSON");
    let path = dir.join(format!("partners-{n}.ndjson"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    for i in 0..n {
        let mut p = base[i % 30].clone();
        p["id"] = format!("b-{i:07}").into();
        writeln!(out, "{p}").expect("write");
    }
    out.flush().expect("flush");
    // On disk before the clock starts: the run measured should not wait
    // for the generator's writeback.
    out.get_ref().sync_all().expect("sync");
    path
}

/// A target file giving each of `n` generated partners a target of its
/// own (besides the one for all), in the partners' order or `scattered`;
/// and observed metrics for each, in the partners' order.
fn generate_own(dir: &Path, n: usize, scattered: bool) -> (std::path::PathBuf, std::path::PathBuf) {
    let order = |i: usize| if scattered { (i * 7_919) % n } else { i };
    let target = dir.join(format!("targets-{n}-{scattered}.json"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&target).expect("create"));
    write!(
        out,
        "{{\"all\": {{\"version\": \"1.6.0\"}},\n\"partners\": {{"
    )
    .expect("write");
    for i in 0..n {
        let sep = if i == 0 { "\n" } else { ",\n" };
        let j = order(i);
        write!(
            out,
            "{sep}\"b-{j:07}\": {{\"version\": \"{}.{}.0\"}}",
            1 + j % 3,
            j % 10
        )
        .expect("write");
    }
    writeln!(out, "\n}}}}").expect("write");
    out.flush().expect("flush");
    out.get_ref().sync_all().expect("sync");
    let observed = dir.join(format!("observed-{n}.json"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&observed).expect("create"));
    write!(out, "{{").expect("write");
    for i in 0..n {
        let sep = if i == 0 { "\n" } else { ",\n" };
        write!(
            out,
            "{sep}\"b-{i:07}\": {{\"metrics\": {{\"stability\": {}, \"compatibility\": 90}}}}",
            80 + i % 20
        )
        .expect("write");
    }
    writeln!(out, "\n}}").expect("write");
    out.flush().expect("flush");
    out.get_ref().sync_all().expect("sync");
    (target, observed)
}

/// One run of `pmf ARGS` in `dir`: wall seconds, and from `/usr/bin/time`
/// the peak memory (KB) and the CPU seconds (user + system) of all its
/// threads. The host's noise moves wall time far more than CPU time.
fn timed(dir: &Path, args: &[&str]) -> (f64, String, f64) {
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M %U %S")
        .arg(env!("CARGO_BIN_EXE_pmf"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run pmf");
    let secs = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last: Vec<&str> = stderr.lines().last().unwrap_or("?").split(' ').collect();
    let peak_kb = last.first().copied().unwrap_or("?").to_string();
    let cpu: f64 = last
        .iter()
        .skip(1)
        .filter_map(|s| s.parse::<f64>().ok())
        .sum();
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "pmf {args:?} failed: {stderr}"
    );
    (secs, peak_kb, cpu)
}

fn main() {
    let size = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = std::path::absolute("examples/fleet/policy.pmf").expect("policy path");
    let policy = policy.to_str().expect("utf-8 path");
    std::fs::write(dir.path().join("target.json"), "{\"version\": \"1.6.0\"}").expect("target");

    // `pmf plan` of `partners` into `out` with `target` (and `observed`),
    // timed.
    let plan_with = |partners: &Path, target: &Path, observed: Option<&Path>, out: &str| {
        let mut args = vec![
            "plan",
            "--policy",
            policy,
            "--partners",
            partners.to_str().expect("utf-8 path"),
            "--target",
            target.to_str().expect("utf-8 path"),
            "-o",
            out,
        ];
        if let Some(o) = observed {
            args.extend(["--observed", o.to_str().expect("utf-8 path")]);
        }
        // The last run's plan is removed before the clock starts: replacing
        // it, ext4 frees its 600 MB inside the rename (70-86 ms here), a
        // cost of deleting a file, not of planning.
        let _ = std::fs::remove_file(dir.path().join(out));
        timed(dir.path(), &args)
    };
    let shared = dir.path().join("target.json");
    let plan = |partners: &Path, out: &str| plan_with(partners, &shared, None, out);
    let runs = size("PMF_BENCH_RUNS", 3).max(1);
    let n = size("PMF_BENCH_PLAN", 1_000_000);
    let partners = generate(dir.path(), n);
    let (own, observed) = generate_own(dir.path(), n, false);
    let (scattered, _) = generate_own(dir.path(), n, true);
    let cases: [(&str, &Path, Option<&Path>); 4] = [
        ("one target for all", &shared, None),
        ("a target each", &own, None),
        ("a target each, scattered", &scattered, None),
        ("a target and observed metrics each", &own, Some(&observed)),
    ];
    for (what, target, observed) in cases {
        let mut times = Vec::new();
        for _ in 0..runs {
            let (secs, peak, cpu) = plan_with(&partners, target, observed, "plan.json");
            println!(
                "plan  {n:>8} partners, {what}: {secs:>6.2} s, {:>8.0} partners/s, peak {peak} KB, CPU {cpu:.2} s, {:.0} plan bytes per partner",
                n as f64 / secs,
                std::fs::metadata(dir.path().join("plan.json")).map_or(0, |m| m.len()) as f64
                    / n as f64
            );
            times.push(secs);
        }
        summary(&format!("plan ({what})"), &mut times);
    }

    let n = size("PMF_BENCH_INSTRUCTIONS", 0);
    if n > 0 {
        let partners = generate(dir.path(), n);
        plan(&partners, "counted-plan.json");
        let (all, sha) = instructions(dir.path(), &["apply", "counted-plan.json"]);
        println!(
            "apply {n:>8} partners under callgrind: {:.0} instructions per partner, {:.0} without SHA-256 ({:.1}% of them)",
            all as f64 / n as f64,
            (all - sha) as f64 / n as f64,
            100.0 * sha as f64 / all as f64
        );
    }

    let n = size("PMF_BENCH_APPLY", 100_000);
    if n == 0 {
        return;
    }
    let partners = generate(dir.path(), n);
    plan(&partners, "apply-plan.json");
    let mut times = Vec::new();
    let mut human_times = Vec::new();
    let mut raw_times = Vec::new();
    let mut cpu_ratios = Vec::new();
    for _ in 0..runs {
        // Each run applies the plan to a store of its own, from nothing:
        // once as a person runs it (a summary), once printing every event
        // (NDJSON, what a pipeline reads), which is also the store whose
        // rows plain SQLite inserts again.
        let _ = std::fs::remove_dir_all(dir.path().join(".pmf"));
        let (human, peak, cpu) = timed(dir.path(), &["apply", "apply-plan.json"]);
        println!(
            "apply {n:>8} partners (lineage, summary):      {human:>6.2} s, {:>8.0} partners/s, peak {peak} KB, CPU {cpu:.2} s",
            n as f64 / human
        );
        let _ = std::fs::remove_dir_all(dir.path().join(".pmf"));
        let (secs, peak, cpu) = timed(
            dir.path(),
            &["apply", "apply-plan.json", "--format", "json"],
        );
        let store = dir.path().join(".pmf/state.db");
        let (bytes, events) = store_size(&store);
        println!(
            "apply {n:>8} partners (lineage, every event): {secs:>6.2} s, {:>8.0} partners/s, peak {peak} KB, CPU {cpu:.2} s, {:.0} store bytes and {:.2} events per partner",
            n as f64 / secs,
            bytes as f64 / n as f64,
            events as f64 / n as f64
        );
        // The same rows inserted by plain SQLite, with the store's schema
        // and pragmas, in as many transactions.
        let (raw, raw_cpu) = raw_inserts(&store, &dir.path().join("raw.db"), n.div_ceil(1024));
        println!(
            "raw SQLite inserts of the same rows: {raw:>6.2} s, CPU {raw_cpu:.2} s; apply / raw = {:.2} (summary), {:.2} (every event); CPU: {:.2} (every event)",
            human / raw,
            secs / raw,
            cpu / raw_cpu
        );
        times.push(secs);
        human_times.push(human);
        raw_times.push(raw);
        cpu_ratios.push(cpu / raw_cpu);
    }
    // What an operator and an auditor read from the store the last run
    // left (its every event printed): each whole process, with its peak.
    for args in [
        &["lineage", "verify"][..],
        &["status"][..],
        &["review", "list"][..],
        &["state", "export", "--format", "ndjson"][..],
        &["lineage", "show"][..],
    ] {
        let (secs, peak, cpu) = timed(dir.path(), args);
        println!(
            "pmf {:<30} on {n:>8} partners: {secs:>6.2} s, peak {peak} KB, CPU {cpu:.2} s",
            args.join(" ")
        );
    }
    // A write onto that store: one new partner imported, the whole log's
    // root computed again first and held to its latest checkpoint.
    let one = dir.path().join("one.ndjson");
    let first = std::fs::read_to_string(&partners).expect("partners");
    let first = first.lines().next().unwrap_or_default();
    std::fs::write(&one, first.replacen("\"b-", "\"new-b-", 1)).expect("one partner");
    let one = one.to_str().expect("utf-8 path");
    let (secs, peak, cpu) = timed(dir.path(), &["state", "import", one, "--policy", policy]);
    println!(
        "pmf state import of 1 partner (the log vouched for) on {n:>8} partners: {secs:>6.2} s, peak {peak} KB, CPU {cpu:.2} s"
    );
    summary("apply (summary)", &mut human_times);
    summary("apply (every event)", &mut times);
    summary("raw SQLite inserts", &mut raw_times);
    let raw = raw_times[raw_times.len() / 2];
    cpu_ratios.sort_by(f64::total_cmp);
    println!(
        "apply / raw SQLite (medians): {:.2} (summary), {:.2} (every event); CPU time, every event: {:.2}",
        human_times[human_times.len() / 2] / raw,
        times[times.len() / 2] / raw,
        cpu_ratios[cpu_ratios.len() / 2]
    );
}

/// The store's size on disk (database and WAL) and its lineage events.
fn store_size(store: &Path) -> (u64, i64) {
    let mut wal = store.as_os_str().to_owned();
    wal.push("-wal");
    let bytes = [store.as_os_str().to_owned(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let c = rusqlite::Connection::open(store).expect("store");
    let events = c
        // A row holds one event or a partner's run of them, each with its
        // 32-byte hash.
        .query_row(
            "SELECT SUM(max(length(hash) / 32, 1)) FROM lineage",
            [],
            |r| r.get(0),
        )
        .expect("events");
    (bytes, events)
}

/// CPU seconds (user and system) this process has used, all its threads.
fn cpu_used() -> f64 {
    // SAFETY: getrusage fills the struct it is given; nothing else is read.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0;
    assert!(ok, "getrusage");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Insert every row of `store` into a new database at `raw` with the same
/// schema and pragmas, in `batches` transactions (each a slice of every
/// table): what SQLite alone takes to write what apply wrote. Seconds,
/// from opening to closing (the WAL copied back by a thread of its own
/// and checkpointed at the close, as apply does), and the CPU seconds
/// they took (a measure the host's noise moves less than the time).
fn raw_inserts(store: &Path, raw: &Path, batches: usize) -> (f64, f64) {
    use rusqlite::types::Value;
    let src = rusqlite::Connection::open(store).expect("store");
    let schema: Vec<String> = src
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
        .expect("schema")
        .query_map([], |r| r.get(0))
        .expect("schema")
        .map(Result::unwrap)
        .collect();
    let tables: Vec<String> = src
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("tables")
        .map(Result::unwrap)
        .collect();
    let mut rows: Vec<(String, usize, Vec<Vec<Value>>)> = Vec::new();
    for t in &tables {
        let mut stmt = src.prepare(&format!("SELECT * FROM {t}")).expect("rows");
        let width = stmt.column_count();
        let all: Vec<Vec<Value>> = stmt
            .query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())
            .expect("rows")
            .map(Result::unwrap)
            .collect();
        rows.push((t.clone(), width, all));
    }
    drop(src);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = raw.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let start = Instant::now();
    let cpu_start = cpu_used();
    let mut c = rusqlite::Connection::open(raw).expect("raw");
    c.pragma_update(None, "page_size", 16_384).expect("pragma");
    c.pragma_update(None, "journal_mode", "WAL")
        .expect("pragma");
    c.pragma_update(None, "synchronous", "FULL")
        .expect("pragma");
    c.pragma_update(None, "cache_size", -65_536)
        .expect("pragma");
    c.pragma_update(None, "temp_store", "MEMORY")
        .expect("pragma");
    for sql in &schema {
        c.execute_batch(sql).expect("schema");
    }
    // As apply does: the WAL copied back by a thread of its own.
    c.pragma_update(None, "wal_autocheckpoint", 0)
        .expect("pragma");
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let path = raw.to_path_buf();
    let checkpointer = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(path).expect("raw");
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            stopped.recv_timeout(std::time::Duration::from_millis(250))
        {
            let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
    });
    for b in 0..batches {
        let tx = c.transaction().expect("begin");
        for (t, width, all) in &rows {
            let marks = vec!["?"; *width].join(", ");
            let mut stmt = tx
                .prepare_cached(&format!("INSERT OR REPLACE INTO {t} VALUES ({marks})"))
                .expect("insert");
            let per = all.len().div_ceil(batches);
            for row in all.iter().skip(b * per).take(per) {
                stmt.execute(rusqlite::params_from_iter(row))
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    drop(stop);
    checkpointer.join().expect("checkpointer");
    drop(c);
    (start.elapsed().as_secs_f64(), cpu_used() - cpu_start)
}

/// Instructions `pmf ARGS` executes in `dir` on a fresh store, under
/// valgrind's callgrind (which must be installed): all of them, and those
/// of SHA-256. A count the host's noise does not move, to compare two
/// builds on a shared machine; SHA-256 runs its portable code under
/// valgrind (the host's SHA instructions are not emulated), so its share
/// is shown apart.
fn instructions(dir: &Path, args: &[&str]) -> (u64, u64) {
    let _ = std::fs::remove_dir_all(dir.join(".pmf"));
    let profile = dir.join("callgrind.out");
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", profile.display()))
        .arg(env!("CARGO_BIN_EXE_pmf"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run valgrind (PMF_BENCH_INSTRUCTIONS needs it installed)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = stderr
        .lines()
        .find_map(|l| l.split("Collected : ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("callgrind gave no count: {stderr}"));
    // The store it made goes too: a plan made beside it would be bound to
    // it (and the apply runs after this one begin from no store).
    let _ = std::fs::remove_dir_all(dir.join(".pmf"));
    // Each function's own instructions, one line each.
    let annotated = Command::new("callgrind_annotate")
        .args(["--auto=no", "--threshold=100"])
        .arg(&profile)
        .output()
        .expect("run callgrind_annotate");
    let sha = String::from_utf8_lossy(&annotated.stdout)
        .lines()
        .filter(|l| l.contains("sha2::sha256"))
        .filter_map(|l| {
            l.split_whitespace()
                .next()?
                .replace(',', "")
                .parse::<u64>()
                .ok()
        })
        .sum();
    (all, sha)
}

/// Print the fastest and the median of `times`.
fn summary(what: &str, times: &mut [f64]) {
    times.sort_by(f64::total_cmp);
    println!(
        "{what} over {} runs: min {:.2} s, median {:.2} s",
        times.len(),
        times[0],
        times[times.len() / 2]
    );
}
