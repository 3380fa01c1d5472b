//! `pmf apply PLAN`: run a plan through the phase graph on the store.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::plan::OutputFormat;
use super::{Exit, UsageError, policy};
use crate::runtime::apply::{
    ApplyBatch, ApplyError, ApplyInputs, PartnerOutcome, PartnerResult, apply_partner,
    current_states, outcome_from_str,
};
use crate::runtime::approvals;
use crate::runtime::plan::read_plan;
use crate::runtime::value::Value;
use crate::store::checkpoint::OperatorKey;
use crate::store::lineage::EventKind;
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
    /// The observed metrics file the plan was made with (optional: the plan
    /// carries them; another file is refused).
    #[arg(long)]
    pub observed: Option<PathBuf>,
    /// The policy files (default: the sources the plan carries); their
    /// policy hash must be the plan's.
    #[arg(long, num_args = 1..)]
    pub policy: Vec<PathBuf>,
    /// The operator's key, which signs the lineage's checkpoints (default:
    /// `operator.key` beside the store, made on first use).
    #[arg(long, env = "PMF_OPERATOR_KEY")]
    pub operator_key: Option<PathBuf>,
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
    // The lock first: a second writer is refused before it reads anything.
    let _lock = crate::store::lock::lock(&args.store, "apply").map_err(|e| {
        UsageError(format!(
            "{e}; nothing was applied (run again when it is done: apply resumes where it stopped)"
        ))
    })?;
    let loaded = read_plan(&args.plan).map_err(UsageError)?;
    let plan = &loaded.plan;
    // The policy the plan carries, unless given (its hash must then match).
    let loaded_policy = if args.policy.is_empty() {
        policy::load_sources(&plan.header.policy_sources).map(|l| l.policy)
    } else {
        policy::load(&args.policy)
    };
    let policy = match loaded_policy {
        Ok(p) => p,
        Err(f) => return f.exit(),
    };

    // Approvals: every one must verify against the keys the policy trusts;
    // the valid ones name who approved.
    let mut approved = HashSet::new();
    let mut signers: HashMap<String, Vec<String>> = HashMap::new();
    let mut accepted = Vec::new();
    for path in &args.approvals {
        let file = approvals::read_approvals(path).map_err(UsageError)?;
        for a in &file.approvals {
            if let Err(why) = approvals::verify(&policy, &loaded.hash, &file.plan_hash, a) {
                eprintln!(
                    "pmf: approval by `{}` in `{}` refused: {why}",
                    a.authority,
                    path.display()
                );
                eprintln!("pmf: nothing was applied");
                return Ok(Exit::Failure);
            }
            approved.insert(a.authority.clone());
            let key = a.public_key.to_ascii_lowercase();
            let keys = signers.entry(a.authority.clone()).or_default();
            if !keys.contains(&key) {
                keys.push(key);
                accepted.push(a.clone());
            }
        }
    }

    // Observed metrics come from the plan; a file given here must be the
    // one the plan was made with.
    if let Some(given) = &args.observed {
        let given = super::plan::input_file(given)?;
        let same = plan
            .header
            .observed
            .as_ref()
            .is_some_and(|o| o.blake3.is_some() && o.blake3 == given.blake3);
        if !same {
            eprintln!(
                "pmf: the observed metrics `{}` are not the ones the plan was made with ({}); the plan carries its own: drop `--observed`, or make a new plan with these",
                given.file,
                match &plan.header.observed {
                    Some(o) => format!(
                        "`{}`, BLAKE3 {}…",
                        o.file,
                        o.blake3
                            .as_deref()
                            .map_or("of a pipe", |h| h.get(..12).unwrap_or(h))
                    ),
                    None => "it had none".into(),
                }
            );
            eprintln!("pmf: nothing was applied");
            return Ok(Exit::Failure);
        }
    }
    let mut observed: HashMap<String, Value> = HashMap::new();
    for e in &plan.entries {
        if let Some(o) = &e.observed {
            let value = o
                .read(
                    &policy.schema,
                    crate::runtime::value::Completeness::Partial,
                    None,
                )
                .map_err(|err| {
                    UsageError(format!(
                        "the plan's entry for `{}` is not valid: {err}",
                        e.id
                    ))
                })?;
            observed.insert(e.id.clone(), value);
        }
    }

    let mut store = Store::open(&args.store).map_err(|e| UsageError(e.0))?;
    let (operator, made) = OperatorKey::for_store(&args.store, args.operator_key.as_deref())
        .map_err(|e| UsageError(e.0))?;
    if made {
        eprintln!(
            "pmf: made the operator key `{}` (public key {}); it signs this store's checkpoints: keep it private and keep it",
            operator.path.display(),
            operator.public_hex()
        );
    }
    if plan.header.kind == crate::runtime::plan::PlanKind::Rollback {
        drop(store);
        let accepted: Vec<(String, String, String)> = accepted
            .iter()
            .map(|a| {
                (
                    a.authority.clone(),
                    a.public_key.clone(),
                    a.signature.clone(),
                )
            })
            .collect();
        return super::rollback::apply(&super::rollback::RollbackApply {
            store: &args.store,
            operator: &operator,
            plan: &loaded,
            policy: &policy,
            approved: &approved,
            signers: &signers,
            accepted: &accepted,
            format: args.format,
        });
    }
    let progress = store.progress(&loaded.hash).map_err(|e| UsageError(e.0))?;
    // The WAL is copied back into the database by a checkpointer thread of
    // its own, on the other core, while this one goes on writing.
    store
        .disable_autocheckpoint()
        .map_err(|e| UsageError(e.0))?;
    let _checkpointer = crate::store::WalCheckpointer::start(&args.store);

    let inputs = ApplyInputs {
        policy: &policy,
        plan: &loaded,
        observed: &observed,
        approved: &approved,
        signers: &signers,
    };
    let current = match current_states(&store, &inputs, progress) {
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
    let mut pending = 0usize;
    let mut stdout_open = true;
    // Partners are committed in batches: an error in any partner rolls its
    // whole batch back (a re-run redoes it). Output is printed once the
    // batch is durable.
    for (n, chunk) in plan.entries.chunks(APPLY_BATCH).enumerate() {
        let mut results = Vec::with_capacity(chunk.len());
        let mut batch = store
            .begin(&operator)
            .map_err(|e| store_failure(&args.store, e.into()))?;
        if n == 0 {
            // The approvals accepted, kept for `pmf lineage verify`.
            for a in &accepted {
                batch
                    .add_approval(&loaded.hash, &a.authority, &a.public_key, &a.signature)
                    .map_err(|e| store_failure(&args.store, e.into()))?;
            }
        }
        let mut shared = ApplyBatch::begin(&inputs);
        for entry in chunk {
            let result = match current
                .done
                .get(&entry.id)
                .and_then(|o| outcome_from_str(o))
            {
                Some(o) if o.is_final() => {
                    skipped += 1;
                    PartnerResult {
                        id: entry.id.clone(),
                        outcome: o,
                        events: Vec::new(),
                        events_json: Vec::new(),
                        skipped: true,
                        pending: None,
                    }
                }
                _ => {
                    let Some(state) = current.states.get(&entry.id) else {
                        continue;
                    };
                    let r = apply_partner(
                        &mut batch,
                        &inputs,
                        &mut shared,
                        entry,
                        state,
                        current.last.get(&entry.id),
                    )
                    .map_err(|e| store_failure(&args.store, e))?;
                    if r.skipped {
                        pending += 1;
                    }
                    r
                }
            };
            results.push(result);
        }
        shared
            .finish(&batch, &policy)
            .map_err(|e| store_failure(&args.store, e))?;
        batch
            .commit()
            .map_err(|e| store_failure(&args.store, e.into()))?;
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
    let pending_now = counts
        .iter()
        .filter(|(k, _)| matches!(**k, "awaiting_review" | "throttled"))
        .map(|(_, v)| v)
        .sum::<usize>();
    let attention = counts
        .iter()
        .filter(|(k, _)| matches!(**k, "fell_back" | "restricted"))
        .map(|(_, v)| v)
        .sum::<usize>();
    let _ = match args.format {
        OutputFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"event": "summary", "plan_hash": loaded.hash, "partners": total, "skipped": skipped, "still_pending": pending, "outcomes": counts})
        ),
        OutputFormat::Human => {
            let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(
                out,
                "\napplied plan {} to {total} partners: {}{}",
                &loaded.hash[..12],
                parts.join(" · "),
                match (skipped, pending) {
                    (0, 0) => String::new(),
                    (s, 0) => format!(" ({s} done by an earlier run)"),
                    (0, p) =>
                        format!(" ({p} still pending as before: nothing they wait for changed)"),
                    (s, p) => format!(
                        " ({s} done by an earlier run, {p} still pending as before: nothing they wait for changed)"
                    ),
                }
            )
        }
    };
    let _ = out.flush();
    // Pending work first: a caller must come back for it.
    Ok(if pending_now > 0 {
        Exit::Pending
    } else if attention > 0 {
        Exit::Attention
    } else {
        Exit::Success
    })
}

/// A failure in the middle of applying: the store failed (exit 2; what
/// was not committed is redone by the next run).
fn store_failure(store: &std::path::Path, e: ApplyError) -> UsageError {
    let what = match e {
        ApplyError::Store(e) => e.0,
        ApplyError::Input(m) => m,
        ApplyError::Stale(why) => why.join("; "),
    };
    UsageError(format!(
        "the store `{}` failed: {what}; what was committed is kept, and running this apply again resumes where it stopped",
        store.display()
    ))
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<&'a str>,
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
        pending: r.pending.as_deref(),
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
        return match &r.pending {
            Some(why) => writeln!(
                out,
                "{mark} {:<14} {} (still pending: {why})",
                r.id,
                r.outcome.as_str()
            ),
            None => writeln!(
                out,
                "{mark} {:<14} {} (done by an earlier run)",
                r.id,
                r.outcome.as_str()
            ),
        };
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
        let line = match e.kind {
            EventKind::PhaseEntered => match &e.rite {
                Some(words) => format!("{phase:<14} “{words}”"),
                None => phase,
            },
            EventKind::Validated => format!(
                "{:<14} validation {}",
                "",
                e.outcome.clone().unwrap_or_default()
            ),
            EventKind::Health => format!(
                "{:<14} health {} → {} {}",
                "",
                e.health.map_or("unknown".into(), |h| format!("{h}")),
                e.band.clone().unwrap_or_default(),
                e.detail
                    .as_ref()
                    .map(|d| format!("({d})"))
                    .unwrap_or_default()
            ),
            EventKind::Released => format!(
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
