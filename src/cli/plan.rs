//! `pmf plan`: predict every partner's migration into a plan file.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{CliError, Exit, UsageError, policy};
use crate::runtime::input::{self, InputError};
use crate::runtime::plan::{
    History, InputFile, PlanError, PlanHeader, PlanInputs, PlanKind, PolicyRef, Totals,
    expires_after, now_rfc3339, write_plan,
};
use crate::runtime::stream::PartnerStream;
use crate::store::illumination::Illumination;
use crate::store::{DEFAULT_PATH, Store};

pub use super::OutputFormat;

/// Arguments of `pmf plan`: make a plan, or (`show`, `diff`) read one.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PlanArgs {
    /// Read plans instead of making one.
    #[command(subcommand)]
    pub view: Option<PlanView>,
    /// The policy: its file and the files of its parents, directories, or a
    /// policy's name among them (repeatable).
    #[arg(long, num_args = 1.., required = true, value_name = "FILE|DIR|NAME")]
    pub policy: Vec<PathBuf>,
    /// Partner states: a JSON array or NDJSON (one partner per line).
    #[arg(long, required = true)]
    pub partners: Option<PathBuf>,
    /// Target: a partial state for all, or `{"all": {...}, "partners": {"ID": {...}}}`.
    #[arg(long, required = true)]
    pub target: Option<PathBuf>,
    /// Observed metrics by partner id (default: the target state's fields).
    #[arg(long)]
    pub observed: Option<PathBuf>,
    /// Plan a part of the fleet the target file covers: targets of
    /// partners not in the partner file are left out (and named in a
    /// warning) instead of refused.
    #[arg(long)]
    pub subset: bool,
    /// Where to write the plan.
    #[arg(short = 'o', long = "output", default_value = "plan.json")]
    pub output: PathBuf,
    /// Store whose lineage history predicts fallback risk (used when it exists).
    #[arg(long, default_value = DEFAULT_PATH)]
    pub store: PathBuf,
    /// How long the plan may be signed and applied (`36h`, `7d`; at most
    /// 90 days): after, it is refused and must be made again.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = validity)]
    pub valid_for: u64,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Seconds of a plan's validity written as a duration (`90m`, `36h`,
/// `7d`, `2w`): a second to 90 days.
pub fn validity(text: &str) -> Result<u64, String> {
    let d = humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write one such as `12h`, `7d` or `2w`")
    })?;
    let secs = d.as_secs();
    if secs == 0 {
        return Err("a plan must be valid for at least a second".into());
    }
    if secs > crate::runtime::plan::MAX_VALIDITY_SECS {
        return Err(format!(
            "a plan may be valid for 90 days at most (`{text}` is {}): an approval should not outlive what its signers saw",
            crate::runtime::plan::spoken_duration(secs)
        ));
    }
    Ok(secs)
}

/// `pmf plan show` and `pmf plan diff`.
#[derive(Subcommand, Debug)]
pub enum PlanView {
    /// A plan for a reviewer: totals by severity, who signs, and what
    /// changes per partner (filters by action, type and partner).
    Show(super::plan_show::ShowArgs),
    /// What changed between two plans of the same fleet (exit 1 when
    /// something did, like `diff`).
    Diff(super::plan_diff::DiffArgs),
}

/// Rows of the partner table in `pmf plan`'s human output.
const PLAN_ROWS: usize = 20;

/// An input file as the plan records it: its path as given and the
/// BLAKE3 of its bytes (a pipe or device is not hashed: it cannot be read
/// twice, and the plan carries its content anyway).
pub fn input_file(p: &std::path::Path) -> Result<InputFile, UsageError> {
    let regular = std::fs::metadata(p).is_ok_and(|m| m.is_file());
    let blake3 = if regular {
        let cannot = |e: std::io::Error| UsageError(format!("cannot read `{}`: {e}", p.display()));
        let file = std::fs::File::open(p).map_err(cannot)?;
        let len = file.metadata().map_err(cannot)?.len();
        Some(crate::runtime::file_digest::blake3_hex(&file, len).map_err(cannot)?)
    } else {
        None
    };
    Ok(InputFile {
        file: p.display().to_string(),
        blake3,
    })
}

/// Report an input error: a bad record is exit 1 (every bad record of the
/// file, up to [`input::MAX_REPORTED`], one per line), an unreadable file
/// exit 2.
///
/// A duplicate partner id is found while planning, after the records
/// before it were read; the file is then read again (a regular file) for
/// its other repeated or unreadable ids, so that one run reports them all.
pub fn input_failure(e: InputError) -> Result<Exit, CliError> {
    input_failure_then(e, "nothing was planned or applied")
}

/// [`input_failure`], ending with `outcome` (what the command did not do).
pub fn input_failure_then(e: InputError, outcome: &str) -> Result<Exit, CliError> {
    let e = match e {
        InputError::Io(_) => return Err(e.into()),
        InputError::Invalid {
            file,
            at,
            partner,
            problem,
        } if problem.starts_with("duplicate partner id") => {
            let first = InputError::Invalid {
                file,
                at,
                partner,
                problem,
            };
            input::survey_ids(&first).unwrap_or(first)
        }
        invalid => invalid,
    };
    for line in e.lines() {
        errln!("pmf: {line}");
    }
    errln!("pmf: {outcome}");
    Ok(Exit::from(&e))
}

/// Run `pmf plan`.
pub fn run(args: &PlanArgs) -> Result<Exit, CliError> {
    match &args.view {
        Some(PlanView::Show(show)) => return super::plan_show::run(show),
        Some(PlanView::Diff(diff)) => return super::plan_diff::run(diff),
        None => {}
    }
    let (Some(partners), Some(target)) = (&args.partners, &args.target) else {
        return Err(UsageError(
            "`pmf plan` needs --policy, --partners and --target (or: pmf plan show PLAN, pmf plan diff A B)".into(),
        ).into());
    };
    make(&Make {
        policy: args.policy.clone(),
        partners: partners.clone(),
        target: target.clone(),
        observed: args.observed.clone(),
        output: args.output.clone(),
        store: args.store.clone(),
        format: args.format,
        subset: args.subset,
        valid_for: args.valid_for,
    })
}

/// The arguments of `pmf plan` when it makes a plan (every one given).
struct Make {
    policy: Vec<PathBuf>,
    partners: PathBuf,
    target: PathBuf,
    observed: Option<PathBuf>,
    output: PathBuf,
    store: PathBuf,
    format: OutputFormat,
    subset: bool,
    valid_for: u64,
}

/// What a thread returned (its panic, if it had one, goes on here).
fn joined<T>(result: std::thread::Result<T>) -> T {
    result.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Make a plan: `pmf plan --policy … --partners … --target …`.
fn make(args: &Make) -> Result<Exit, CliError> {
    // Ctrl-C or SIGTERM stops the planning and removes the file begun.
    let interrupt = super::interrupt::Interrupt::watch();
    let mut inputs = vec![
        (args.partners.as_path(), "--partners"),
        (args.target.as_path(), "--target"),
        (args.store.as_path(), "--store"),
    ];
    inputs.extend(args.observed.as_deref().map(|o| (o, "--observed")));
    inputs.extend(args.policy.iter().map(|p| (p.as_path(), "--policy")));
    super::files::refuse_output_over(&args.output, "the plan", &inputs)?;
    let loaded = match policy::load_checked(&args.policy) {
        Ok(p) => p,
        Err(f) => return f.exit(),
    };
    let policy_sources = policy::own_sources(&loaded);
    let policy = loaded.policy;
    // The target and observed files are scanned and indexed at once (the
    // partner file is streamed after, and hashed as it is read).
    let (targets, observed) = std::thread::scope(|scope| {
        let observed = scope.spawn(|| {
            args.observed
                .as_ref()
                .map(|p| input::read_observed(&policy.schema, p))
        });
        let targets = input::read_targets(&policy.schema, &args.target);
        (targets, joined(observed.join()))
    });
    let targets = match targets {
        Ok(t) => t,
        Err(e) => return input_failure(e),
    };
    let observed = match observed {
        Some(Ok(o)) => o,
        Some(Err(e)) => return input_failure(e),
        None => input::Observed::none(),
    };
    let partners = match PartnerStream::open(&args.partners) {
        Ok(s) => s,
        Err(e) => return input_failure(e),
    };
    // The store's history (fallback risks) and the policy that governs it:
    // a plan under another one replaces it, and says so to its signers.
    // The plan applies to that store only (its id), when there is one.
    // The counts are those the lineage holds, held to their chain hash;
    // the plan names the event it read them from (`apply` holds its risks
    // to that event's counts).
    let (lit, governing, store_id) = if args.store.exists() {
        let store = Store::open_to_read(&args.store)?;
        // One snapshot: the counts, the governing policy and the id as one
        // commit left them (an apply may be writing).
        let _snapshot = store.snapshot()?;
        (
            store.illumination()?,
            store.governing()?.map(|g| g.policy_hash),
            store.id()?,
        )
    } else {
        (Illumination::default(), None, None)
    };
    let history = History {
        outcomes: lit.counts.clone(),
    };
    let replaces_policy = governing.filter(|g| *g != policy.hash);
    if let Some(g) = &replaces_policy {
        errln!(
            "pmf: this plan replaces the policy that governs `{}` ({} → {}): applying it needs the endorsement of every authority of the policy it replaces, and `pmf approve` tells each signer so",
            args.store.display(),
            super::view::short(g),
            super::view::short(&policy.hash)
        );
    }
    let expires_at = expires_after(args.valid_for);
    let header = PlanHeader {
        kind: PlanKind::Migrate,
        policy: PolicyRef {
            name: policy.name.clone(),
            hash: policy.hash.clone(),
        },
        created_at: now_rfc3339(),
        expires_at: Some(expires_at.clone()),
        policy_sources,
        // The digest of the bytes streamed, filled in by `write_plan`.
        partners: InputFile {
            file: args.partners.display().to_string(),
            blake3: None,
        },
        // The digests of the bytes indexed (the plan checks at its end that
        // the files did not change since).
        target: InputFile {
            file: args.target.display().to_string(),
            blake3: targets.blake3.clone(),
        },
        observed: args.observed.as_deref().map(|p| InputFile {
            file: p.display().to_string(),
            blake3: observed.blake3.clone(),
        }),
        history: lit.name(),
        target_all: targets.all_json.clone(),
        replaces_policy,
        store_id,
    };
    let bar = (std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message("planning");
        b
    });
    let mut shown_header = header.clone();
    let written = write_plan(
        PlanInputs {
            policy: &policy,
            partners,
            targets: &targets,
            observed: &observed,
            history: &history,
            header,
            subset: args.subset,
            review_rows: if args.format == OutputFormat::Human {
                PLAN_ROWS
            } else {
                0
            },
            stop: Some(interrupt.shared()),
        },
        &args.output,
        |n| {
            if let Some(b) = &bar {
                b.set_position(n as u64);
                b.set_message(format!("planned {n} partners"));
            }
        },
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let written = match written {
        Ok(w) => w,
        Err(PlanError::Input(e)) => return input_failure(e),
        Err(e @ PlanError::Io(_)) => return Err(e.into()),
        Err(PlanError::Stopped) => {
            errln!(
                "pmf: interrupted: no plan was written (a file already at `{}` is left as it was)",
                args.output.display()
            );
            return Ok(Exit::Interrupted);
        }
    };
    shown_header.partners.blake3 = written.partners_blake3.clone();
    // Targets (with `--subset`) and metrics of partners that were not
    // planned are left out, and said so: the operator sees which.
    let (counts, named) = (&written.totals.not_planned, &written.not_planned_ids);
    for (count, named, file, what) in [
        (
            counts.targets,
            &named.targets,
            Some(&args.target),
            "a target",
        ),
        (
            counts.observed,
            &named.observed,
            args.observed.as_ref(),
            "metrics",
        ),
    ] {
        if let (1.., Some(file)) = (count, file) {
            errln!(
                "pmf: warning: `{}` has {what} for {count} partner{} not in the partner file ({}), not planned",
                file.display(),
                if count == 1 { "" } else { "s" },
                crate::runtime::plan::id_list(named, count),
            );
        }
    }
    match args.format {
        // As `outln!` prints: what a terminal would obey, escaped.
        OutputFormat::Human => super::output::print_line(format_args!(
            "{}",
            human_output(&policy.name, &args.output, shown_header, &written)
        )),
        OutputFormat::Json => outln!(
            "{}",
            serde_json::json!({
                "format_version": 1,
                "plan": args.output.display().to_string(),
                "plan_hash": written.hash,
                "expires_at": expires_at,
                "policy": {"name": policy.name, "hash": policy.hash},
                "totals": written.totals,
                "not_planned": written.totals.not_planned,
            })
        ),
    }
    Ok(Exit::Success)
}

fn row(title: &str, counts: &std::collections::BTreeMap<String, usize>) -> String {
    let mut out = format!("  {title:<10}");
    for (k, v) in counts {
        out.push_str(&format!(" {k} {v} ·"));
    }
    out.pop();
    out.trim_end().to_string() + "\n"
}

/// The human output of `pmf plan`: what was planned, then the plan as
/// `pmf plan show` shows it (its first [`PLAN_ROWS`] partners, the most
/// severe first), from the review gathered while writing it (or, without
/// one, read back from the file); a plan written to a pipe or a device
/// gets the totals only.
fn human_output(
    policy: &str,
    file: &std::path::Path,
    header: crate::runtime::plan::PlanHeader,
    written: &crate::runtime::plan::Written,
) -> String {
    let (hash, totals) = (&written.hash, &written.totals);
    let shown = file.display().to_string();
    if !std::fs::metadata(file).is_ok_and(|m| m.is_file()) {
        return human_summary(policy, &shown, hash, totals);
    }
    let gathered = written
        .review
        .as_ref()
        .and_then(|r| super::plan_show::Overview::of_review(file, header, hash, totals, r));
    let overview = match gathered {
        Some(o) => o,
        None => {
            let filters = super::plan_show::Filters::default();
            // The plan is written: should reading it back fail (it was
            // replaced meanwhile), the totals still say what was planned.
            match super::plan_show::read(file, &filters, super::plan_show::Keep::Rows(PLAN_ROWS)) {
                Ok(o) => o,
                Err(_) => return human_summary(policy, &shown, hash, totals),
            }
        }
    };
    let width = super::view::terminal_width();
    let title = format!(
        "planned {} partners with policy `{}` → {shown} (plan {})",
        totals.partners,
        crate::runtime::plan_view::printable(policy),
        super::view::short(hash)
    );
    format!(
        "{}\n{}",
        width.map_or(title.clone(), |w| super::view::truncate(&title, w)),
        overview.human_body(
            width,
            &format!(
                ": pmf plan show {shown} --limit 0, or filter with --action, --type or --partner"
            )
        )
    )
}

/// The human summary of a plan (totals only).
pub fn human_summary(policy: &str, file: &str, hash: &str, totals: &Totals) -> String {
    let mut out = format!(
        "planned {} partners with policy `{policy}` → {file} (plan {})\n",
        totals.partners,
        &hash[..12.min(hash.len())]
    );
    out.push_str(&row("by type", &totals.by_type));
    out.push_str(&row("by band", &totals.by_band));
    out.push_str(&row("by action", &totals.by_action));
    out
}
