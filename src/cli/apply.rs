//! `pmf apply PLAN`: run a plan through the phase graph on the store.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::plan::{OutputFormat, input_failure};
use super::{Exit, UsageError, policy};
use crate::runtime::apply::{
    ApplyBatch, ApplyError, ApplyInputs, PartnerOutcome, PartnerResult, apply_partner,
    current_states, outcome_from_str,
};
use crate::runtime::approvals::{self, DEFAULT_KEYRING};
use crate::runtime::input;
use crate::runtime::plan::read_plan;
use crate::runtime::value::Value;
use crate::store::lock::LockError;
use crate::store::{DEFAULT_PATH, Store};

/// Partners committed together, in one transaction.
const APPLY_BATCH: usize = 1024;

/// Arguments of `pmf apply`.
#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The plan file written by `pmf plan`.
    pub plan: PathBuf,
    /// The store.
    #[arg(long, default_value = DEFAULT_PATH)]
    pub store: PathBuf,
    /// Signed approvals (`pmf approve`); may be given several times.
    #[arg(long)]
    pub approvals: Vec<PathBuf>,
    /// The authorities' public keys.
    #[arg(long, default_value = DEFAULT_KEYRING)]
    pub keyring: PathBuf,
    /// Observed metrics by partner id (default: the target state's fields).
    #[arg(long)]
    pub observed: Option<PathBuf>,
    /// The policy files (default: those the plan was made with).
    #[arg(long, num_args = 1..)]
    pub policy: Vec<PathBuf>,
    /// Show every phase of every partner, however many.
    #[arg(long, short)]
    pub verbose: bool,
    /// Output: human text, or NDJSON events (`json`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Run `pmf apply`.
pub fn run(args: &ApplyArgs) -> Result<Exit, UsageError> {
    // A closed stdout must not kill a run that is writing to the store.
    // SAFETY: ignoring a signal; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let loaded = read_plan(&args.plan).map_err(UsageError)?;
    let plan = &loaded.plan;
    let policy_files: Vec<PathBuf> = if args.policy.is_empty() {
        plan.header.policy_files.iter().map(PathBuf::from).collect()
    } else {
        args.policy.clone()
    };
    let policy = match policy::load(&policy_files) {
        Ok(p) => p,
        Err(f) => return f.exit(),
    };

    // Approvals: every one must verify; the valid ones name who approved.
    let keyring = approvals::read_keyring(&args.keyring).map_err(UsageError)?;
    let mut approved = HashSet::new();
    for path in &args.approvals {
        let file = approvals::read_approvals(path).map_err(UsageError)?;
        for a in &file.approvals {
            if let Err(why) = approvals::verify(&keyring, &loaded.hash, &file.plan_hash, a) {
                eprintln!(
                    "pmf: approval by `{}` in `{}` refused: {why}",
                    a.authority,
                    path.display()
                );
                eprintln!("pmf: nothing was applied");
                return Ok(Exit::Failure);
            }
            approved.insert(a.authority.clone());
        }
    }

    let observed = match &args.observed {
        Some(p) => match input::read_observed(&policy.schema, p) {
            Ok(o) => o,
            Err(e) => return input_failure(e),
        },
        None => HashMap::new(),
    };

    let mut store = Store::open(&args.store).map_err(|e| UsageError(e.0))?;
    let _lock = match store.lock("apply") {
        Ok(guard) => guard,
        Err(LockError::Held(h)) => {
            return Err(UsageError(format!(
                "the store `{}` is locked by pid {} on {} since {}: another apply is running",
                args.store.display(),
                h.pid,
                h.host,
                h.started_at
            )));
        }
        Err(LockError::Stale(h)) => {
            return Err(UsageError(format!(
                "the store `{}` is locked by pid {} on {} since {}, which is no longer running; clear it with `pmf state unlock --store {}`",
                args.store.display(),
                h.pid,
                h.host,
                h.started_at,
                args.store.display()
            )));
        }
        Err(LockError::Store(e)) => return Err(UsageError(e.0)),
    };
    let done = store.progress(&loaded.hash).map_err(|e| UsageError(e.0))?;
    // The WAL is copied back into the database by a checkpointer thread of
    // its own, on the other core, while this one goes on writing.
    store
        .conn
        .pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(|e| UsageError(e.to_string()))?;
    let _checkpointer = Checkpointer::start(&args.store);

    // States of partners the store does not have yet come from the plan's partners file.
    let mut initial: HashMap<String, Value> = HashMap::new();
    let mut missing = false;
    for e in &plan.entries {
        if store.partner(&e.id).map_err(|e| UsageError(e.0))?.is_none() {
            missing = true;
            break;
        }
    }
    if missing {
        let path = std::path::Path::new(&plan.header.partners_file);
        match input::read_all_partners(&policy.schema, path) {
            Ok(all) => {
                for v in all {
                    initial.insert(policy.id_of(&v).to_string(), v);
                }
            }
            Err(e) => return input_failure(e),
        }
    }

    let inputs = ApplyInputs {
        policy: &policy,
        plan: &loaded,
        initial_states: &initial,
        observed: &observed,
        approved: &approved,
    };
    let states = match current_states(&store, &inputs, &done) {
        Ok(s) => s,
        Err(ApplyError::Stale(why)) => {
            eprintln!("pmf: the plan is stale; make a new one with `pmf plan`:");
            for w in why.iter().take(20) {
                eprintln!("  - {w}");
            }
            if why.len() > 20 {
                eprintln!("  - ... and {} more", why.len() - 20);
            }
            eprintln!("pmf: nothing was applied");
            return Ok(Exit::Failure);
        }
        Err(ApplyError::Input(m)) => {
            eprintln!("pmf: {m}");
            return Ok(Exit::Failure);
        }
        Err(ApplyError::Store(e)) => return Err(UsageError(e.0)),
    };

    let total = plan.entries.len();
    let detailed = args.verbose || total <= 50;
    let bar = (args.format == OutputFormat::Human && std::io::stderr().is_terminal() && total > 50)
        .then(|| indicatif::ProgressBar::new(total as u64));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let mut skipped = 0usize;
    let mut stdout_open = true;
    // Partners are committed in batches: an error in any partner rolls its
    // whole batch back (a re-run redoes it). Output is printed once the
    // batch is durable.
    for batch in plan.entries.chunks(APPLY_BATCH) {
        let mut results = Vec::with_capacity(batch.len());
        let tx = store
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| UsageError(format!("store: {e}")))?;
        let mut shared = ApplyBatch::begin(&tx, &inputs).map_err(store_failure)?;
        for entry in batch {
            let result = match done.get(&entry.id).and_then(|o| outcome_from_str(o)) {
                Some(o) if o.is_final() => {
                    skipped += 1;
                    PartnerResult {
                        id: entry.id.clone(),
                        outcome: o,
                        events: Vec::new(),
                        events_json: Vec::new(),
                        skipped: true,
                    }
                }
                _ => {
                    let Some(state) = states.get(&entry.id) else {
                        continue;
                    };
                    apply_partner(&tx, &inputs, &mut shared, entry, state).map_err(store_failure)?
                }
            };
            results.push(result);
        }
        shared.finish(&tx, &policy).map_err(store_failure)?;
        tx.commit().map_err(|e| UsageError(format!("store: {e}")))?;
        for result in results {
            *counts.entry(result.outcome.as_str()).or_default() += 1;
            if stdout_open {
                let written = match args.format {
                    OutputFormat::Json => write_ndjson(&mut out, &result),
                    OutputFormat::Human => write_human(&mut out, &result, detailed),
                };
                // Stdout closed: the work goes on being recorded in the store.
                stdout_open = written.is_ok();
            }
            if let Some(b) = &bar {
                b.inc(1);
            }
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let attention = counts
        .iter()
        .filter(|(k, _)| {
            matches!(
                **k,
                "fell_back" | "restricted" | "awaiting_review" | "throttled"
            )
        })
        .map(|(_, v)| v)
        .sum::<usize>();
    let _ = match args.format {
        OutputFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"event": "summary", "plan_hash": loaded.hash, "partners": total, "skipped": skipped, "outcomes": counts})
        ),
        OutputFormat::Human => {
            let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(
                out,
                "\napplied plan {} to {total} partners: {}{}",
                &loaded.hash[..12],
                parts.join(" · "),
                if skipped > 0 {
                    format!(" ({skipped} done by an earlier run)")
                } else {
                    String::new()
                }
            )
        }
    };
    let _ = out.flush();
    Ok(if attention > 0 {
        Exit::Attention
    } else {
        Exit::Success
    })
}

/// A failure in the middle of applying: the store failed (exit 2; what
/// was not committed is redone by the next run).
fn store_failure(e: ApplyError) -> UsageError {
    match e {
        ApplyError::Store(e) => UsageError(format!("store: {}", e.0)),
        ApplyError::Input(m) => UsageError(m),
        ApplyError::Stale(why) => UsageError(why.join("; ")),
    }
}

/// Write a lineage event as a line of `--format json` output, from the JSON
/// the lineage stored for it (`lineage::Chain::append` returns it).
pub(crate) fn write_lineage_line(out: &mut impl Write, stored: &str) -> std::io::Result<()> {
    out.write_all(b"{\"event\":\"lineage\",\"data\":")?;
    out.write_all(stored.as_bytes())?;
    out.write_all(b"}\n")
}

/// The `--format json` line that ends a partner's events.
#[derive(serde::Serialize)]
struct PartnerLine<'a> {
    event: &'static str,
    id: &'a str,
    outcome: PartnerOutcome,
    skipped: bool,
}

fn write_ndjson(out: &mut impl Write, r: &PartnerResult) -> std::io::Result<()> {
    for json in &r.events_json {
        write_lineage_line(out, json)?;
    }
    let line = PartnerLine {
        event: "partner",
        id: &r.id,
        outcome: r.outcome,
        skipped: r.skipped,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

fn write_human(out: &mut impl Write, r: &PartnerResult, detailed: bool) -> std::io::Result<()> {
    let mark = match r.outcome {
        PartnerOutcome::Completed => "✓",
        PartnerOutcome::Unchanged => "=",
        PartnerOutcome::FellBack => "↩",
        PartnerOutcome::Restricted => "✗",
        PartnerOutcome::AwaitingReview | PartnerOutcome::Throttled => "⏸",
    };
    let first = r.events.first();
    let from = first.and_then(|e| e.from.clone()).unwrap_or_default();
    let to = first.and_then(|e| e.to.clone()).unwrap_or_default();
    let ty = first.and_then(|e| e.migration.clone()).unwrap_or_default();
    if r.skipped {
        return writeln!(
            out,
            "{mark} {:<14} {} (done by an earlier run)",
            r.id,
            r.outcome.as_str()
        );
    }
    writeln!(
        out,
        "{mark} {:<14} {from} → {to} {ty}: {}",
        r.id,
        r.outcome.as_str()
    )?;
    if !detailed {
        return Ok(());
    }
    for e in &r.events {
        let phase = e.phase.clone().unwrap_or_default();
        let line = match e.kind.as_str() {
            "phase_entered" => match &e.rite {
                Some(words) => format!("{phase:<14} “{words}”"),
                None => phase,
            },
            "validated" => format!(
                "{:<14} validation {}",
                "",
                e.outcome.clone().unwrap_or_default()
            ),
            "health" => format!(
                "{:<14} health {} → {} {}",
                "",
                e.health.map_or("unknown".into(), |h| format!("{h}")),
                e.band.clone().unwrap_or_default(),
                e.detail
                    .as_ref()
                    .map(|d| format!("({d})"))
                    .unwrap_or_default()
            ),
            "released" => format!(
                "{:<14} released {} “{}”",
                "",
                e.from.clone().unwrap_or_default(),
                e.rite.clone().unwrap_or_default()
            ),
            kind => format!(
                "{:<14} {kind}{}",
                "",
                e.detail
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
        };
        writeln!(out, "    {line}")?;
    }
    Ok(())
}

/// Checkpoints the store's WAL in the background (passive checkpoints: they
/// never block the writer) until dropped; SQLite checkpoints what is left
/// when the last connection closes.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &std::path::Path) -> Checkpointer {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let path = path.to_path_buf();
        let thread = std::thread::spawn(move || {
            let Ok(conn) = rusqlite::Connection::open(&path) else {
                return;
            };
            loop {
                match stopped.recv_timeout(std::time::Duration::from_millis(250)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        // Busy or failed: the next round (or the close) does it.
                        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    }
                    _ => return,
                }
            }
        });
        Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
