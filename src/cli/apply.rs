//! `pmf apply PLAN`: run a plan through the phase graph on the store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::plan::OutputFormat;
use super::refusal::Refuser;
use super::view::short;
use super::{CliError, Exit, UsageError, policy};
use crate::runtime::apply::{
    ApplyBatch, ApplyError, ApplyInputs, PartnerOutcome, PartnerResult, PreparedPartner, Start,
    current_states, outcome_from_str, policy_changed, prepare_partner, record_partner,
    target_for_all,
};
use crate::runtime::approvals;
use crate::runtime::engine::CompiledPolicy;
use crate::runtime::plan::{History, LoadedPlan, PlanEntry, PlanKind, now_rfc3339, read_plan};
use crate::runtime::plan_claims;
use crate::runtime::plan_view::printable;
use crate::runtime::shared_batch::SharedBatch;
use crate::runtime::value::CanonicalMemo;
use crate::runtime::value::Value;
use crate::store::checkpoint::OperatorKey;
use crate::store::interned::Texts;
use crate::store::lineage::EventKind;
use crate::store::plans::Mark;
use crate::store::{DEFAULT_PATH, Store};

/// Partners committed together, in one transaction.
const APPLY_BATCH: usize = 1024;

/// Up to this many partners, human output has a line for each; above it,
/// a progress bar (on a terminal) and a summary: the outcomes with their
/// reasons, and the partners that need attention (`-v` lists every
/// partner and phase, however many).
pub const FEW_PARTNERS: usize = 50;

/// How many of the partners that need attention a summary lists.
pub const ATTENTION_SHOWN: usize = 20;

/// What a refusal says last.
const NOTHING_APPLIED: &str = "nothing was applied";

/// How many reasons a summary gives for each outcome (the rest counted).
const REASONS_SHOWN: usize = 5;

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
    /// The policy (default: the sources the plan carries), named as every
    /// command names it: files, directories, or a policy's name among them;
    /// its policy hash must be the plan's.
    #[arg(long, num_args = 1.., value_name = "FILE|DIR|NAME")]
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
pub fn run(args: &ApplyArgs) -> Result<Exit, CliError> {
    // A closed stdout must not kill a run that is writing to the store.
    // SAFETY: ignoring a signal; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // Ctrl-C or SIGTERM stops the run after the batch it is committing.
    let interrupt = super::interrupt::Interrupt::watch();
    // The lock first: a second writer is refused before it reads anything.
    let _lock = crate::store::lock::lock(&args.store, "apply").map_err(|e| {
        CliError::from(e)
            .then("nothing was applied (run again when it is done: apply resumes where it stopped)")
    })?;
    let mut loaded = read_plan(&args.plan).map_err(UsageError)?;
    let plan = &loaded.plan;
    // A plan made against a store, given where there is none (another
    // folder, a mistyped `--store`): no new store is made for it.
    if let Some(made_for) = &plan.header.store_id
        && !args.store.exists()
    {
        return Err(UsageError(format!(
            "there is no store at `{}`, and the plan was made against store {}: name that store with `--store PATH`, or run where it is; nothing was applied, and no store was made",
            args.store.display(),
            printable(made_for)
        ))
        .into());
    }
    // From here on, a plan refused is recorded in the store's lineage.
    let refuser = Refuser::of_plan(&args.store, args.operator_key.as_deref(), &loaded);
    // The policy the plan carries, unless given (its hash must then match).
    let loaded_policy = if args.policy.is_empty() {
        policy::load_sources(&plan.header.policy_sources)
    } else {
        policy::load_checked(&args.policy)
    };
    // The sources compiled, kept by the store when this policy governs it.
    let (policy, kept_sources) = match loaded_policy {
        Ok(l) => {
            let sources = policy::kept_sources(&l);
            (l.policy, sources)
        }
        Err(f) => return f.exit(),
    };

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
            let reason = format!(
                "the observed metrics `{}` are not the ones the plan was made with ({}); the plan carries its own: drop `--observed`, or make a new plan with these",
                given.file,
                match &plan.header.observed {
                    Some(o) => format!(
                        "`{}`, BLAKE3 {}…",
                        o.file,
                        o.blake3.as_deref().map_or("of a pipe", short)
                    ),
                    None => "it had none".into(),
                }
            );
            return Ok(refuser.refuse(&reason, &[NOTHING_APPLIED]));
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

    // Every id is one `pmf plan` accepts: a plan edited to carry another
    // (control characters, an empty or overlong id, one reserved for the
    // store's own records) is refused before the
    // store is opened, and never printed as it is.
    if let Some((e, problem)) = plan
        .entries
        .iter()
        .find_map(|e| crate::runtime::value::id_problem(&e.id).map(|p| (e, p)))
    {
        let reason = format!(
            "the plan names partner `{}`: {problem} (`pmf plan` never writes such an id: the plan was edited)",
            crate::runtime::value::shown_id(&e.id)
        );
        return Ok(refuser.refuse(&reason, &[NOTHING_APPLIED]));
    }
    // A partner appears once in a plan (`pmf plan` never writes one twice;
    // a plan edited so is refused before the store is opened): its entries
    // are prepared ahead of the batches that write them.
    let mut seen = HashSet::with_capacity(plan.entries.len());
    if let Some(e) = plan.entries.iter().find(|e| !seen.insert(e.id.as_str())) {
        let reason = format!(
            "the plan names partner `{}` twice: a plan gives each partner one entry (make a new one with `pmf plan`)",
            e.id
        );
        return Ok(refuser.refuse(&reason, &[NOTHING_APPLIED]));
    }
    drop(seen);
    // An expired plan starts nothing: its signers approved it for a time.
    // One whose every partner an earlier run finished still says so.
    if let Some(why) = plan.expiry_problem(crate::runtime::plan::now_secs())
        && !finished_earlier(&args.store, &loaded)?
    {
        return Ok(report_stale(&ApplyError::Stale(vec![why]), &refuser));
    }
    // Every approvals file is read (and its format checked) before the
    // store is opened: a file refused creates no store.
    let files = args
        .approvals
        .iter()
        .map(|path| approvals::read_approvals(path).map(|f| (path, f)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(UsageError)?;
    let mut store = Store::open(&args.store)?;
    // Everything apply reads of the store (progress, states, last events)
    // is read from the log the latest signed checkpoint vouches for (its
    // first batch would check it anyway; a run with nothing left to write
    // reports from it too).
    store.vouch_for_log()?;
    // A plan made against a store applies to that store only: its
    // approvals were given for that store's partners and policy.
    if let Some(made_for) = &plan.header.store_id {
        let here = store.id()?.unwrap_or_default();
        if *made_for != here {
            let reason = format!(
                "the plan was made against another store (id {}; this one is {}): a plan, and the approvals of it, apply to the store it was made against; plan again with `pmf plan --store {}`",
                printable(made_for),
                here,
                args.store.display()
            );
            drop(store);
            return Ok(refuser.refuse(&reason, &[NOTHING_APPLIED]));
        }
    }
    // The fallback risks the plan shows its signers are those the store's
    // lineage predicts: from the illumination counts the plan names, as
    // the store holds them (a plan read from counts forged in the store,
    // or with its risks edited, applies nothing).
    if plan.header.kind == PlanKind::Migrate {
        let why = match store.illumination_named(&plan.header.history)? {
            Err(why) => Some(format!(
                "the plan's fallback risks were read from illumination counts this store's lineage does not hold: {why}; plan again against this store"
            )),
            Ok(outcomes) => {
                let wrong = plan_claims::unfounded_risks(plan, &History { outcomes });
                (!wrong.is_empty()).then(|| {
                    super::refusal::listed(
                        "the plan's fallback risks are not those the counts it names predict (it was edited)",
                        &wrong,
                    )
                })
            }
        };
        if let Some(reason) = why {
            drop(store);
            return Ok(refuser.refuse(&reason, &[NOTHING_APPLIED]));
        }
    }
    // The policy the store is governed by, and the plan's: another policy
    // needs the approval of the governing one's authorities (one of its
    // pinned keys each), which is recorded with the change.
    let governing = store.governing()?;
    let proposed = policy::governing(&policy);
    let change = governing.as_ref().filter(|g| **g != proposed);
    // The project's pinned trust root: the store was (or is now) first
    // governed by the reviewed policy.
    if let Some(pin) = super::trust::pinned(&args.store)?
        && let Some(why) = super::trust::problem(&store, &proposed.policy_hash, &pin)?
    {
        drop(store);
        return Ok(refuser.refuse(&why, &[NOTHING_APPLIED]));
    }

    // Approvals: every one must verify against the keys the policy trusts
    // (or, for a change of policy, the governing policy's); the valid ones
    // name who approved.
    let mut approved = HashSet::new();
    let mut signers: HashMap<String, Vec<String>> = HashMap::new();
    let mut accepted = Vec::new();
    let mut endorsers: Vec<(String, String, String)> = Vec::new();
    for (path, file) in &files {
        for a in &file.approvals {
            if let Err(why) = approvals::verify(&policy, &loaded.hash, &file.plan_hash, a) {
                let endorses = change.is_some_and(|g| {
                    g.trusts(&a.authority, &a.public_key)
                        && file.plan_hash == loaded.hash
                        && approvals::signature_holds(a, &loaded.hash)
                });
                if endorses {
                    endorsers.push((
                        a.authority.clone(),
                        a.public_key.to_ascii_lowercase(),
                        a.signature.clone(),
                    ));
                    continue;
                }
                let reason = format!(
                    "approval by `{}` in `{}` refused: {why}",
                    a.authority,
                    path.display()
                );
                return Ok(refuser.refuse(&reason, &[NOTHING_APPLIED]));
            }
            if change.is_some_and(|g| g.trusts(&a.authority, &a.public_key)) {
                endorsers.push((
                    a.authority.clone(),
                    a.public_key.to_ascii_lowercase(),
                    a.signature.clone(),
                ));
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

    // A policy given that is not the plan's makes the plan stale, before
    // what the store's governance asks of it: that is what the operator
    // can fix here.
    if let Some(why) = policy_changed(plan, &policy) {
        return Ok(report_stale(&ApplyError::Stale(vec![why]), &refuser));
    }
    if let Some(g) = change
        && plan.header.kind == PlanKind::Migrate
        && plan.header.replaces_policy.as_deref() != Some(g.policy_hash.as_str())
    {
        // Its signers were not told that their signatures replace the
        // store's policy: none of them counts as an endorsement.
        let reason = format!(
            "the plan's policy ({}) would replace the one this store is governed by ({}), but the plan does not say so to its signers ({}): make it again with `pmf plan --store {}` against this store, and have it signed again",
            short(&proposed.policy_hash),
            short(&g.policy_hash),
            match &plan.header.replaces_policy {
                Some(other) => format!("it says it replaces policy {}", short(other)),
                None => "it was made against no store governed by another policy".into(),
            },
            args.store.display()
        );
        return Ok(refuser.refuse(&reason, &[NOTHING_APPLIED]));
    }
    if let Some(g) = change {
        let missing = g.unendorsed(endorsers.iter().map(|(a, k, _)| (a.as_str(), k.as_str())));
        if !missing.is_empty() {
            let reason = format!(
                "the plan's policy ({}) is not the one this store is governed by ({}): a change of policy needs the approval of every authority of the governing policy, by one of the keys it trusts; missing: {}",
                short(&proposed.policy_hash),
                short(&g.policy_hash),
                missing
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let hint = format!(
                "sign this plan with those keys (`pmf approve {} --key KEY -o approvals.json`); nothing was applied",
                args.plan.display()
            );
            return Ok(refuser.refuse(&reason, &[&hint]));
        }
    }
    let operator = super::keys::operator_key(&store, args.operator_key.as_deref())?;
    // A rollback and a replacement are carried out under the governing
    // policy only (a change of policy is applied with a migration plan).
    let other = match plan.header.kind {
        PlanKind::Migrate => None,
        PlanKind::Rollback => Some("rollback"),
        PlanKind::Replace => Some("replacement"),
    };
    if let Some(what) = other {
        if let Some(g) = change {
            let reason = format!(
                "the {what}'s policy ({}) is not the one this store is governed by ({}); plan the {what} under the governing policy (a change of policy is applied with a migration plan)",
                short(&proposed.policy_hash),
                short(&g.policy_hash)
            );
            return Ok(refuser.refuse(&reason, &[NOTHING_APPLIED]));
        }
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
        let approved_plan = ApprovedPlan {
            store: &args.store,
            operator: &operator,
            plan: &loaded,
            policy: &policy,
            kept_sources: &kept_sources,
            approved: &approved,
            signers: &signers,
            accepted: &accepted,
            format: args.format,
            refuser: &refuser,
        };
        return if plan.header.kind == PlanKind::Rollback {
            super::rollback::apply(&approved_plan)
        } else {
            // A store no policy governs yet is governed by this one.
            super::replace::apply(&approved_plan, governing.is_none().then_some(&proposed))
        };
    }
    let progress = store.progress(&loaded.hash)?;
    // The illumination counts each batch adds to.
    let mut lit = store.illumination()?;
    // The WAL is copied back into the database by a checkpointer thread of
    // its own, on the other core, while this one goes on writing.
    store.disable_autocheckpoint()?;
    let _checkpointer = crate::store::WalCheckpointer::start(&args.store);

    // The states the plan carries, taken out of its entries: each is
    // dropped once read into `current` (about 430 MB at a million
    // partners, not held beside the states read from them).
    let carried = loaded
        .plan
        .entries
        .iter_mut()
        .map(|e| e.state.take())
        .collect();
    let plan = &loaded.plan;
    let inputs = ApplyInputs {
        policy: &policy,
        plan: &loaded,
        observed: &observed,
        approved: &approved,
        signers: &signers,
    };
    let current = match current_states(&store, &inputs, progress, carried) {
        Ok(s) => s,
        // A stale plan is reported reason by reason; any other error by
        // its message. Either way the error's kind gives the exit code.
        Err(e) => {
            if !matches!(e, ApplyError::Stale(_)) {
                return Err(e.into());
            }
            return Ok(report_stale(&e, &refuser));
        }
    };

    let total = plan.entries.len();
    // Whether the store marks the plan begun, and finished (`@plans`): the
    // first batch marks it begun, the batch that reaches its last partner
    // finished, once each.
    let marked = store.plan_records()?.remove(&loaded.hash);
    let (mut begun, mut finished) = (
        marked.is_some(),
        marked.is_some_and(|r| r.finished.is_some()),
    );
    let last_batch = total.div_ceil(APPLY_BATCH).saturating_sub(1);
    // Few partners: a line each; many: a summary (and a progress bar).
    let listed = args.verbose || total <= FEW_PARTNERS;
    let human = args.format == OutputFormat::Human;
    let width = if human {
        super::view::terminal_width()
    } else {
        None
    };
    let bar = (human && !listed && std::io::stderr().is_terminal()).then(|| {
        // As wide as the terminal allows, counts included (never wrapped).
        let bar = stderr_width().saturating_sub(28).clamp(5, 40);
        let style = indicatif::ProgressStyle::with_template(&format!(
            "{{bar:{bar}}} {{pos}}/{{len}} applied"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        indicatif::ProgressBar::new(total as u64).with_style(style)
    });
    let mut summary = Summary::default();
    // The checkpoint this run signed last: its JSON summary hands it to
    // whoever keeps the output (a CI log is then a witness).
    let mut signed = None;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    let mut skipped = 0usize;
    let mut pending = 0usize;
    // Partners walked with no observed metrics (their validation and health
    // read the target state, and their events say so).
    let mut unobserved = 0usize;
    let mut stdout_open = true;
    // Asked to stop (Ctrl-C, SIGTERM): the batches committed stay, the
    // rest is left for a run again.
    let mut interrupted = false;
    // Partners are prepared (assessed, walked, and for a partner the store
    // did not hold, its rows and run made) on a thread of their own, a
    // batch ahead of the one being written: a partner appears once in a
    // plan (checked above), and what is prepared ahead reads nothing the
    // batches before it write. Partners are committed in batches: an error
    // in any partner rolls its whole batch back (a re-run redoes it).
    // Output is printed once the batch is durable.
    let target_all = target_for_all(&inputs);
    // The store's texts as last committed: states and runs are packed
    // ahead with them.
    let texts = std::sync::Mutex::new(std::sync::Arc::new(
        store
            .texts()
            .map_err(|e| store_failure(&args.store, e.into()))?,
    ));
    std::thread::scope(|scope| -> Result<(), CliError> {
        let (ahead, prepared) = std::sync::mpsc::sync_channel::<std::sync::Arc<Lane<'_>>>(1);
        let (inputs, current, texts) = (&inputs, &current, &texts);
        let target_all = target_all.as_ref();
        // Events are shown from the lines written ahead (JSON), or only
        // for partners that need attention (a summary): the others' are
        // dropped where they were made.
        let shown = Shown {
            json: args.format == OutputFormat::Json,
            events: human && listed,
        };
        // A batch's partners are prepared by the preparing thread and, once
        // it is done with the batch before, by this one too (a shared batch:
        // neither core waits while the other works).
        // Each thread keeps its own canonical texts of shared values.
        let work = move |lane: &Lane<'_>,
                         at: usize,
                         entry: &PlanEntry,
                         memo: &std::cell::RefCell<CanonicalMemo>| {
            let start = current.starts.get(lane.first + at)?;
            prepare(
                inputs,
                target_all,
                entry,
                start,
                lane.known.as_deref(),
                shown,
                &mut memo.borrow_mut(),
            )
        };
        let stop = interrupt.clone();
        scope.spawn(move || {
            let memo = std::cell::RefCell::default();
            for (n, chunk) in plan.entries.chunks(APPLY_BATCH).enumerate() {
                if stop.requested() {
                    break;
                }
                let lane = std::sync::Arc::new(Lane {
                    partners: SharedBatch::new(chunk),
                    first: n * APPLY_BATCH,
                    known: texts.lock().map(|t| t.clone()).ok(),
                });
                if ahead.send(std::sync::Arc::clone(&lane)).is_err() {
                    break;
                }
                lane.partners
                    .work(|at, entry| work(&lane, at, entry, &memo));
            }
        });
        let memo = std::cell::RefCell::default();
        for (n, lane) in prepared.iter().enumerate() {
            // Between batches: what is committed is whole.
            if interrupt.requested() {
                interrupted = true;
                break;
            }
            // `None`: preparing a partner panicked on the other thread
            // (its panic is reported when the scope ends); nothing of this
            // batch is written.
            let Some(prepared_batch) = lane
                .partners
                .finish(|at, entry| work(&lane, at, entry, &memo))
            else {
                return Err(store_failure(
                    &args.store,
                    ApplyError::Input(
                        "preparing a batch of partners failed; nothing of it was written".into(),
                    ),
                ));
            };
            drop(lane);
            let items = prepared_batch
                .into_iter()
                .flatten()
                .collect::<Result<Vec<Ahead>, ApplyError>>();
            let items = items.map_err(|e| store_failure(&args.store, e))?;
            let mut results = Vec::with_capacity(items.len());
            let mut batch = store
                .begin(&operator)
                .map_err(|e| store_failure(&args.store, e.into()))?;
            if n == 0 {
                // Until when the plan may continue a paused partner, for
                // `pmf review` to say.
                if let Some(at) = &plan.header.expires_at {
                    batch
                        .note_plan_expiry(&loaded.hash, at)
                        .map_err(|e| store_failure(&args.store, e.into()))?;
                }
                // The approvals accepted, kept for `pmf lineage verify`.
                for a in &accepted {
                    batch
                        .add_approval(&loaded.hash, &a.authority, &a.public_key, &a.signature)
                        .map_err(|e| store_failure(&args.store, e.into()))?;
                }
                // The policy governs the store from here on (the first plan
                // applied, or an approved change), before any partner's run.
                if governing.as_ref() != Some(&proposed) {
                    let mut named = Vec::new();
                    for (authority, key, signature) in &endorsers {
                        batch
                            .add_approval(&loaded.hash, authority, key, signature)
                            .map_err(|e| store_failure(&args.store, e.into()))?;
                        named.push(format!("{authority}:{key}"));
                    }
                    batch
                        .govern(
                            &proposed,
                            &kept_sources,
                            &loaded.hash,
                            named,
                            &now_rfc3339(),
                        )
                        .map_err(|e| store_failure(&args.store, e.into()))?;
                }
            }
            let mark = |batch: &mut crate::store::batch::Batch<'_>, mark| {
                batch
                    .mark_plan(mark, &loaded.hash, &policy.hash, total as u64)
                    .map_err(|e| store_failure(&args.store, e.into()))
            };
            if !begun {
                mark(&mut batch, Mark::Begun)?;
            }
            if n == last_batch && !finished {
                mark(&mut batch, Mark::Finished)?;
            }
            let mut shared = ApplyBatch::begin(inputs);
            for item in items {
                let result = match item {
                    Ahead::Done(id, outcome) => {
                        skipped += 1;
                        let r = PartnerResult {
                            id,
                            outcome,
                            events: Vec::new(),
                            skipped: true,
                            pending: None,
                        };
                        (r, None)
                    }
                    Ahead::Walked {
                        partner,
                        absent,
                        shown,
                    } => {
                        let r = record_partner(&mut batch, inputs, &mut shared, *partner, absent)
                            .map_err(|e| store_failure(&args.store, e))?;
                        if r.skipped {
                            pending += 1;
                        }
                        (r, shown)
                    }
                };
                results.push(result);
            }
            shared
                .finish(&mut batch, &policy, &loaded.hash, &mut lit)
                .map_err(|e| store_failure(&args.store, e))?;
            let numbered = batch.texts();
            if let Some(c) = batch
                .commit()
                .map_err(|e| store_failure(&args.store, e.into()))?
            {
                signed = Some(c);
            }
            begun = true;
            finished |= n == last_batch;
            if let Ok(mut t) = texts.lock() {
                *t = std::sync::Arc::new(numbered);
            }
            for (result, shown) in results {
                *counts.entry(result.outcome.as_str()).or_default() += 1;
                if !result.skipped
                    && result.outcome != PartnerOutcome::Unchanged
                    && !observed.contains_key(&result.id)
                {
                    unobserved += 1;
                }
                if !listed && human {
                    summary.add(&result);
                } else if stdout_open {
                    let written = match args.format {
                        OutputFormat::Json => write_ndjson(&mut out, &result, shown.as_deref()),
                        OutputFormat::Human => write_human(&mut out, &result, args.verbose, width),
                    };
                    // Stdout closed or full: the work goes on being recorded
                    // in the store, and the failure is reported at the end.
                    if let Err(e) = written {
                        stdout_open = false;
                        super::output::failed_with(e);
                    }
                }
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
        }
        Ok(())
    })?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // Every partner a batch committed is counted once.
    let processed: usize = counts.values().sum();
    let interrupted = (interrupted || interrupt.requested()) && processed < total;
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
    let summarised = match args.format {
        OutputFormat::Json => writeln!(
            out,
            "{}",
            if interrupted {
                serde_json::json!({"event": "summary", "plan_hash": loaded.hash, "partners": total, "skipped": skipped, "still_pending": pending, "outcomes": counts, "interrupted": true, "partners_done": processed, "checkpoint": signed})
            } else {
                serde_json::json!({"event": "summary", "plan_hash": loaded.hash, "partners": total, "skipped": skipped, "still_pending": pending, "outcomes": counts, "checkpoint": signed})
            }
        ),
        OutputFormat::Human => {
            let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let (stopped, applied) = if interrupted {
                ("interrupted: ", format!("{processed} of {total} partners"))
            } else {
                ("", format!("{total} partners"))
            };
            let totals = format!(
                "{stopped}applied plan {} to {applied}: {}{}",
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
            );
            // A blank line after the partners' lines.
            (if listed { writeln!(out) } else { Ok(()) })
                .and_then(|()| write_line(&mut out, &totals, width))
                .and_then(|()| {
                    if listed {
                        Ok(())
                    } else {
                        summary.write(&mut out, width)
                    }
                })
        }
    };
    if let Err(e) = summarised.and_then(|()| out.flush()) {
        super::output::failed_with(e);
    }
    if unobserved > 0 {
        eprintln!(
            "pmf: the plan carries no observed metrics for {unobserved} of the partners walked: where they were validated and scored, their target state stood for what was observed, and their lineage says so; plan with `--observed FILE` to validate what was measured"
        );
    }
    // The plan and the states read from it are not needed any more: freeing
    // their hundreds of thousands of small parts is left to a thread of its
    // own (the process may well exit first), not to the run's last step.
    drop_elsewhere((current, loaded, observed));
    if interrupted {
        errln!(
            "pmf: interrupted: {processed} of {total} partners were applied and committed, the rest not begun; run the same `pmf apply` again to resume where it stopped"
        );
        return Ok(Exit::Interrupted);
    }
    // Pending work first: a caller must come back for it.
    Ok(if pending_now > 0 {
        Exit::Pending
    } else if attention > 0 {
        Exit::Attention
    } else {
        Exit::Success
    })
}

/// Whether earlier runs of `plan` into the store at `path` finished
/// every partner it names (a store that does not exist finished none).
fn finished_earlier(path: &std::path::Path, plan: &LoadedPlan) -> Result<bool, CliError> {
    if !path.exists() {
        return Ok(false);
    }
    let progress = Store::open_existing(path)?.progress(&plan.hash)?;
    // A rollback's and a replacement's partners end so, a migration's in a
    // final outcome.
    let finished = |o: &str| match outcome_from_str(o) {
        Some(o) => o.is_final(),
        None => o == super::rollback::ROLLED_BACK || o == super::replace::REPLACED,
    };
    Ok(plan
        .plan
        .entries
        .iter()
        .all(|e| progress.get(&e.id).is_some_and(|o| finished(o))))
}

/// Report a stale plan (`e` is [`ApplyError::Stale`]) reason by reason,
/// and record it refused (the reasons the store keeps are the first few);
/// the error's kind gives the exit code.
fn report_stale(e: &ApplyError, refuser: &Refuser<'_>) -> Exit {
    if let ApplyError::Stale(why) = e {
        errln!("pmf: the plan is stale; make a new one with `pmf plan`:");
        for w in why.iter().take(20) {
            errln!("  - {w}");
        }
        if why.len() > 20 {
            errln!("  - ... and {} more", why.len() - 20);
        }
        errln!("pmf: {NOTHING_APPLIED}");
        refuser.record(&super::refusal::listed("the plan is stale", why));
    }
    Exit::from(e)
}

/// What `apply` hands a rollback or a replacement plan (whose approvals it
/// verified).
pub struct ApprovedPlan<'a> {
    /// The store's path.
    pub store: &'a std::path::Path,
    /// The operator's key.
    pub operator: &'a OperatorKey,
    /// The plan.
    pub plan: &'a LoadedPlan,
    /// Its policy.
    pub policy: &'a CompiledPolicy,
    /// The policy's sources as the store keeps them when the policy comes
    /// to govern it ([`policy::kept_sources`]).
    pub kept_sources: &'a std::collections::BTreeMap<String, String>,
    /// Authorities whose approval verified.
    pub approved: &'a HashSet<String>,
    /// Keys that signed, by authority.
    pub signers: &'a HashMap<String, Vec<String>>,
    /// The approvals accepted: (authority, public key, signature).
    pub accepted: &'a [(String, String, String)],
    /// Output format.
    pub format: OutputFormat,
    /// Records the plan refused, if it is.
    pub refuser: &'a Refuser<'a>,
}

impl ApprovedPlan<'_> {
    /// The authorities of `needed` that did not approve the plan.
    pub fn missing<'n>(&self, needed: &'n [String]) -> Vec<&'n str> {
        needed
            .iter()
            .map(String::as_str)
            .filter(|a| !self.approved.contains(*a))
            .collect()
    }
}

/// Drop `value` on a thread of its own (here, when no thread can be made).
fn drop_elsewhere<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("pmf-drop".into())
        .spawn(move || drop(value));
}

/// The width of the terminal stderr is (`COLUMNS` wins when set; 80 when
/// neither says).
fn stderr_width() -> usize {
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&w| w >= 20)
    {
        return w;
    }
    #[cfg(unix)]
    {
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ fills the `winsize` it is given; on a
        // descriptor that is no terminal it fails and fills nothing.
        let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
        if ok && size.ws_col >= 20 {
            return usize::from(size.ws_col);
        }
    }
    80
}

/// A batch of the plan's partners, prepared by two threads
/// ([`SharedBatch`]).
struct Lane<'a> {
    partners: SharedBatch<'a, PlanEntry, Option<Result<Ahead, ApplyError>>>,
    /// The place in the plan of its first partner.
    first: usize,
    /// The texts the store numbered when the batch was begun.
    known: Option<std::sync::Arc<Texts>>,
}

/// A partner of the plan, prepared ahead of its batch.
enum Ahead {
    /// Done by an earlier run of this plan (id, outcome).
    Done(String, PartnerOutcome),
    /// Walked (or still waiting as before).
    Walked {
        partner: Box<PreparedPartner>,
        /// Whether the store did not hold it.
        absent: bool,
        /// Its events' `--format json` lines, when its run was sealed
        /// ahead: written out while the events are still in the cache of
        /// the core that made them ([`lineage_lines`]).
        shown: Option<Vec<u8>>,
    },
}

/// What a partner prepared ahead keeps for the output.
#[derive(Clone, Copy)]
struct Shown {
    /// Write its events' output lines ahead (`--format json`).
    json: bool,
    /// Keep its events for the output (else they are dropped where they
    /// were made, when recording does not need them).
    events: bool,
}

/// Prepare the partner of `entry` ([`prepare_partner`]); `None` for a
/// partner with nothing to apply. `known`: the texts the store numbers,
/// to pack the rows of a partner it did not hold with; `memo`: the
/// thread's canonical texts of shared values.
fn prepare(
    inputs: &ApplyInputs<'_>,
    target_all: Option<&Value>,
    entry: &PlanEntry,
    start: &Start,
    known: Option<&Texts>,
    shown: Shown,
    memo: &mut CanonicalMemo,
) -> Option<Result<Ahead, ApplyError>> {
    let (state, last, absent) = match start {
        Start::Done(o) => {
            let done = outcome_from_str(o).filter(|o| o.is_final())?;
            return Some(Ok(Ahead::Done(entry.id.clone(), done)));
        }
        Start::Walk {
            state,
            last,
            absent,
        } => (state, last.as_deref(), *absent),
    };
    Some(
        prepare_partner(
            inputs,
            target_all,
            entry,
            state,
            last,
            known.filter(|_| absent),
            memo,
        )
        .map(|mut p| {
            let lines = p.sealed_events().filter(|_| shown.json).map(lineage_lines);
            if !shown.events {
                p.shed();
            }
            Ahead::Walked {
                shown: lines,
                partner: Box::new(p),
                absent,
            }
        }),
    )
}

/// `events` as lines of `--format json` output.
fn lineage_lines(events: &[crate::store::lineage::Event]) -> Vec<u8> {
    let mut lines = Vec::with_capacity(512 * events.len());
    for e in events {
        lines.extend_from_slice(b"{\"event\":\"lineage\",\"data\":");
        e.write_json(&mut lines);
        lines.extend_from_slice(b"}\n");
    }
    lines
}

/// A failure in the middle of applying: the store failed (exit 2; what
/// was not committed is redone by the next run), or was found edited
/// outside pmf (a next run stops there too).
fn store_failure(store: &std::path::Path, e: ApplyError) -> CliError {
    if let ApplyError::Store(s) = &e
        && s.edited_outside()
    {
        return CliError::from(e).then(
            "what was committed is kept; nothing more is applied to this store until it is restored (from a backup, or as `pmf lineage verify` says)",
        );
    }
    CliError::Interrupted {
        store: store.to_path_buf(),
        source: e,
    }
}

/// The `--format json` output of an apply carried out in one transaction (a
/// rollback's, a replacement's): the lineage events it `stored`, then a
/// `summary` line with the checkpoint it `signed`, as a migration's ends.
pub(crate) fn write_events_and_summary(
    stored: &[String],
    plan_hash: &str,
    partners: usize,
    signed: Option<crate::store::checkpoint::Checkpoint>,
) {
    let mut out = std::io::stdout().lock();
    for json in stored {
        let _ = write_lineage_line(&mut out, json);
    }
    drop(out);
    outln!(
        "{}",
        serde_json::json!({"event": "summary", "plan_hash": plan_hash, "partners": partners, "checkpoint": signed})
    );
}

/// Write a lineage event as a line of `--format json` output, from its
/// JSON (the event as `pmf lineage show --format json` gives it).
pub(crate) fn write_lineage_line(out: &mut impl Write, stored: &str) -> std::io::Result<()> {
    out.write_all(b"{\"event\":\"lineage\",\"data\":")?;
    out.write_all(super::output::json_safe(stored).as_bytes())?;
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
    /// Why it ended there ([`PartnerResult::reason`]).
    reason: String,
}

/// The `--format json` lines of a partner: its events (`shown`, when they
/// were written out ahead) and its outcome.
fn write_ndjson(
    out: &mut impl Write,
    r: &PartnerResult,
    shown: Option<&[u8]>,
) -> std::io::Result<()> {
    match shown {
        Some(lines) => out.write_all(lines)?,
        None => out.write_all(&lineage_lines(&r.events))?,
    }
    let line = PartnerLine {
        event: "partner",
        id: &r.id,
        outcome: r.outcome,
        skipped: r.skipped,
        pending: r.pending.as_deref(),
        reason: r.reason(),
    };
    // Its reason quotes the policy (a band, a rite, a ceiling).
    super::output::write_json_safe(out, &line)?;
    out.write_all(b"\n")
}

/// `line` and a new line, cut to `width` columns when there is one (a
/// terminal): never wrapped by the terminal.
fn write_line(out: &mut impl Write, line: &str, width: Option<usize>) -> std::io::Result<()> {
    match width {
        Some(w) => writeln!(out, "{}", super::view::truncate(line, w)),
        None => writeln!(out, "{line}"),
    }
}

/// An outcome in words.
fn label(outcome: PartnerOutcome) -> &'static str {
    match outcome {
        PartnerOutcome::Unchanged => "unchanged",
        PartnerOutcome::Completed => "completed",
        PartnerOutcome::FellBack => "fell back",
        PartnerOutcome::Restricted => "restricted",
        PartnerOutcome::AwaitingReview => "awaiting review",
        PartnerOutcome::Throttled => "throttled",
    }
}

/// A partner's line: its mark, id, change and type, and how it ended with
/// why (`restricted: the target breaks the ceiling on `power``).
fn partner_line(r: &PartnerResult) -> String {
    let mark = match r.outcome {
        PartnerOutcome::Completed => "✓",
        PartnerOutcome::Unchanged => "=",
        PartnerOutcome::FellBack => "↩",
        PartnerOutcome::Restricted => "✗",
        PartnerOutcome::AwaitingReview | PartnerOutcome::Throttled => "⏸",
    };
    let id = printable(&r.id);
    let reason = r.reason();
    let reason = printable(&reason);
    let label = label(r.outcome);
    // `awaiting approval by TSC` says the outcome itself.
    let said = if reason == label || reason.starts_with("awaiting ") {
        reason.to_string()
    } else {
        format!("{label}: {reason}")
    };
    let ended = match (r.skipped, &r.pending) {
        (false, _) => said,
        (true, Some(_)) => format!("{said} (still pending as before)"),
        (true, None) => format!("{label} ({reason})"),
    };
    if r.skipped {
        return format!("{mark} {id:<14} {ended}");
    }
    let first = r.events.first();
    let text = |v: Option<&str>| printable(v.unwrap_or_default()).into_owned();
    let from = text(first.and_then(|e| e.from.as_deref()));
    let to = text(first.and_then(|e| e.to.as_deref()));
    let ty = text(first.and_then(|e| e.migration.as_deref()));
    let change = match (from.is_empty() && to.is_empty(), ty.is_empty()) {
        (true, _) => String::new(),
        (false, true) => format!("{from} → {to}: "),
        (false, false) => format!("{from} → {to} {ty}: "),
    };
    format!("{mark} {id:<14} {change}{ended}")
}

fn write_human(
    out: &mut impl Write,
    r: &PartnerResult,
    detailed: bool,
    width: Option<usize>,
) -> std::io::Result<()> {
    write_line(out, &partner_line(r), width)?;
    if !detailed {
        return Ok(());
    }
    let mut in_phase: Option<&str> = None;
    for e in &r.events {
        let phase = e.phase.as_deref().unwrap_or_default().to_string();
        // A phase's entry, folded into its first event (`push_folded`):
        // its line first, as when it was an event of its own.
        let entered = e.kind != EventKind::PhaseEntered
            && e.kind != EventKind::Released
            && e.phase.is_some()
            && (e.rite.is_some() || e.phase.as_deref() != in_phase);
        in_phase = e.phase.as_deref().or(in_phase);
        if entered {
            let line = match &e.rite {
                Some(words) => format!("{phase:<14} “{words}”"),
                None => phase.clone(),
            };
            write_line(out, &format!("    {}", printable(&line)), width)?;
        }
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
        write_line(out, &format!("    {}", printable(&line)), width)?;
    }
    Ok(())
}

/// What a summary of many partners keeps: outcome counts by reason, and
/// the first partners that need attention.
#[derive(Default)]
struct Summary {
    /// Outcome → reason (without scores) → partners.
    reasons: BTreeMap<PartnerOutcome, BTreeMap<String, usize>>,
    /// Lines of the first partners that need attention, in plan order.
    shown: Vec<String>,
    /// Every partner that needs attention.
    attention: usize,
}

impl Summary {
    fn add(&mut self, r: &PartnerResult) {
        if matches!(
            r.outcome,
            PartnerOutcome::Completed | PartnerOutcome::Unchanged
        ) {
            return;
        }
        *self
            .reasons
            .entry(r.outcome)
            .or_default()
            .entry(r.reason_kind())
            .or_default() += 1;
        self.attention += 1;
        if self.shown.len() < ATTENTION_SHOWN {
            self.shown.push(partner_line(r));
        }
    }

    /// The outcomes with their reasons (`restricted 12 — the target breaks
    /// the ceiling on `power` (9) · …`), then the partners that need
    /// attention, at most [`ATTENTION_SHOWN`].
    fn write(&self, out: &mut impl Write, width: Option<usize>) -> std::io::Result<()> {
        // Pending first: a caller must come back for them.
        let order = [
            PartnerOutcome::AwaitingReview,
            PartnerOutcome::Throttled,
            PartnerOutcome::FellBack,
            PartnerOutcome::Restricted,
        ];
        for outcome in order {
            let Some(reasons) = self.reasons.get(&outcome) else {
                continue;
            };
            let total: usize = reasons.values().sum();
            let mut by_count: Vec<(&String, &usize)> = reasons.iter().collect();
            by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let mut items: Vec<String> = by_count
                .iter()
                .take(REASONS_SHOWN)
                .map(|(why, n)| format!("{} ({n})", printable(why)))
                .collect();
            if let Some(rest) = by_count.get(REASONS_SHOWN..)
                && !rest.is_empty()
            {
                let n: usize = rest.iter().map(|(_, n)| **n).sum();
                items.push(format!("{} other reasons ({n})", rest.len()));
            }
            let head = format!("  {} {total} — ", label(outcome));
            let indent = super::view::width(&head);
            let body = super::view::joined(&items, indent, width);
            for (i, line) in body.lines().enumerate() {
                let line = if i == 0 {
                    format!("{head}{line}")
                } else {
                    line.to_string()
                };
                write_line(out, &line, width)?;
            }
        }
        if self.attention == 0 {
            return Ok(());
        }
        writeln!(out)?;
        write_line(
            out,
            &format!("{} partners need attention:", self.attention),
            width,
        )?;
        for line in &self.shown {
            write_line(out, line, width)?;
        }
        if self.attention > self.shown.len() {
            let more = format!(
                "… and {} more: `pmf review list` / `pmf status`",
                self.attention - self.shown.len()
            );
            writeln!(out, "{}", super::view::wrap_words(&more, width))?;
        }
        Ok(())
    }
}

/// The first 12 hex digits of a hash, as messages show it.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::lineage::Event;

    fn result(id: &str, outcome: PartnerOutcome, events: Vec<Event>) -> PartnerResult {
        PartnerResult {
            id: id.into(),
            outcome,
            events,
            skipped: false,
            pending: None,
        }
    }

    fn event(kind: EventKind, phase: &str) -> Event {
        Event {
            kind,
            phase: Some(phase.into()),
            from: Some("1.0.0".into()),
            to: Some("2.0.0".into()),
            migration: Some("soft".into()),
            ..Event::default()
        }
    }

    #[test]
    fn lines_say_why_and_escape_what_could_forge_output() {
        let restricted = result(
            "p-\u{1b}[2J",
            PartnerOutcome::Restricted,
            vec![Event {
                detail: Some("the target breaks the ceiling on `power`".into()),
                ..event(EventKind::Restricted, "transition")
            }],
        );
        assert_eq!(
            partner_line(&restricted),
            "✗ p-\\u{001b}[2J  1.0.0 → 2.0.0 soft: restricted: the target breaks the ceiling on `power`"
        );
        let review = result(
            "p-2",
            PartnerOutcome::AwaitingReview,
            vec![
                Event {
                    health: Some(71.6),
                    band: Some("vulnerable".into()),
                    ..event(EventKind::Health, "stabilization")
                },
                Event {
                    detail: Some("health band requires review".into()),
                    ..event(EventKind::AwaitingReview, "stabilization")
                },
            ],
        );
        assert_eq!(
            partner_line(&review),
            "⏸ p-2            1.0.0 → 2.0.0 soft: awaiting review: health 72 is in band `vulnerable`"
        );
        assert_eq!(review.reason_kind(), "health in band `vulnerable`");
        let done = PartnerResult {
            skipped: true,
            ..result("p-3", PartnerOutcome::Completed, Vec::new())
        };
        assert_eq!(
            partner_line(&done),
            "✓ p-3            completed (done by an earlier run)"
        );
    }

    #[test]
    fn summaries_count_reasons_and_break_between_them() {
        let mut summary = Summary::default();
        for (i, field) in ["power", "power", "version"].iter().enumerate() {
            summary.add(&result(
                &format!("p-{i}"),
                PartnerOutcome::Restricted,
                vec![Event {
                    detail: Some(format!("the target breaks the ceiling on `{field}`")),
                    ..event(EventKind::Restricted, "transition")
                }],
            ));
        }
        summary.add(&result(
            "p-9",
            PartnerOutcome::Completed,
            vec![event(EventKind::Completed, "continuity")],
        ));
        let mut out = Vec::new();
        summary.write(&mut out, None).unwrap();
        let shown = String::from_utf8(out).unwrap();
        assert!(
            shown.starts_with("  restricted 3 — the target breaks the ceiling on `power` (2) · the target breaks the ceiling on `version` (1)\n\n3 partners need attention:\n"),
            "{shown}"
        );
        let mut out = Vec::new();
        summary.write(&mut out, Some(64)).unwrap();
        let shown = String::from_utf8(out).unwrap();
        assert!(
            shown.starts_with("  restricted 3 — the target breaks the ceiling on `power` (2)\n                 the target breaks the ceiling on `version` (1)\n"),
            "{shown}"
        );
        assert!(
            shown.lines().all(|l| super::super::view::width(l) <= 64),
            "{shown}"
        );
    }
}
