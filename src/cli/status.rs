//! `pmf status`: what a store holds at a glance — partners by status,
//! what the paused ones wait for, the plans applied, the policy that
//! governs it (and the one that governed it first), the changes it
//! refused, the latest signed checkpoint and who holds the lock.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::plan::OutputFormat;
use super::view::short;
use super::{CliError, Exit};
use crate::store::plans::PlanRecord;
use crate::store::{DEFAULT_PATH, Store};

/// Arguments of `pmf status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The store.
    #[arg(long, default_value = DEFAULT_PATH)]
    pub store: PathBuf,
    /// A policy to compare with the one that governs the store (files,
    /// directories, or a policy's name among them): whether it is the
    /// policy in force, one that governed the store before, or another.
    #[arg(long, num_args = 1.., value_name = "FILE|DIR|NAME")]
    pub policy: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Where a policy given to `pmf status --policy` stands with the store.
#[derive(Clone, Copy)]
enum Standing {
    /// It governs the store.
    Governs,
    /// It governed the store, and another governs it now.
    GovernedBefore,
    /// No `governed` event names it.
    NeverGoverned,
}

impl Standing {
    /// As the JSON output names it.
    fn as_str(self) -> &'static str {
        match self {
            Standing::Governs => "governs",
            Standing::GovernedBefore => "governed_before",
            Standing::NeverGoverned => "never_governed",
        }
    }
}

/// Run `pmf status`.
pub fn run(args: &StatusArgs) -> Result<Exit, CliError> {
    // The policy given, compiled first: a policy with errors says so and
    // nothing more.
    let given = if args.policy.is_empty() {
        None
    } else {
        match super::policy::load(&args.policy) {
            Ok(p) => Some(p.hash),
            Err(f) => return f.exit(),
        }
    };
    let holder = crate::store::lock::holder(&args.store)?;
    let store = Store::open_to_read(&args.store)?;
    // Everything below is read from one snapshot, under one lock.
    let _snapshot = store.snapshot()?;
    let statuses = store.status_counts()?;
    let plans = applied(store.applied_plans()?, store.plan_records()?);
    let latest = store.latest_checkpoint()?;
    let governing = store.governing()?.map(|g| g.policy_hash);
    let root = store.first_governing()?.map(|g| g.policy_hash);
    // The trust root the store's project pins, and whether the store keeps it.
    let pin = super::trust::pinned(&args.store)?;
    let (refused, last_refused) = store.refusals()?;
    // The outcome counts fallback risks are predicted from (an edited
    // event is reported, not fatal: status is what an operator reads
    // first).
    let lit = store.illumination().map_err(|e| e.to_string());
    // The key that signs the store's checkpoints, and how it came to.
    let operator = store.pinned_operator_key()?;
    let rekeys = store.rekeys()?;
    // What the key beside the store remembers of it (the last checkpoint
    // it signed, which the store must still hold).
    let memory = store.key_memory(&crate::store::checkpoint::OperatorKey::default_path(
        &args.store,
    ))?;
    // Where the policy given stands: in force, in force before, or never.
    let given = match given {
        Some(hash) => {
            let standing = if governing.as_deref() == Some(hash.as_str()) {
                Standing::Governs
            } else if store.governed_by(&hash)? {
                Standing::GovernedBefore
            } else {
                Standing::NeverGoverned
            };
            Some((hash, standing))
        }
        None => None,
    };
    let mut pending: BTreeMap<String, usize> = BTreeMap::new();
    for p in store.partners_with_status(&["awaiting_review", "throttled"])? {
        let why = store
            .last_event(&p.id)?
            .and_then(|l| l.detail)
            .unwrap_or_else(|| p.status.clone());
        *pending.entry(why).or_default() += 1;
    }
    match args.format {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::json!({
                "format_version": 1,
                "store": args.store.display().to_string(),
                "partners": statuses.iter().map(|(s, n)| (s.clone(), *n)).collect::<BTreeMap<_, _>>(),
                "pending": pending,
                "plans": plans.iter().map(|p| serde_json::json!({
                    "plan_hash": p.hash,
                    "partners": p.walked,
                    "pending": p.pending,
                    "planned": p.record.as_ref().map(|r| r.partners),
                    "begun": p.record.as_ref().map(|r| &r.begun),
                    "finished": p.record.as_ref().map(|r| r.finished.is_some()),
                    "finished_at": p.record.as_ref().and_then(|r| r.finished.as_ref()),
                })).collect::<Vec<_>>(),
                "governing_policy": governing,
                "root_policy": root,
                "pinned_root": pin.as_ref().map(|p| serde_json::json!({
                    "hash": p.hash,
                    "file": p.file.display().to_string(),
                    "holds": root.as_deref().is_none_or(|r| r == p.hash),
                })),
                "given_policy": given.as_ref().map(|(hash, standing)| serde_json::json!({"hash": hash, "standing": standing.as_str()})),
                "refused": {
                    "changes": refused,
                    "last": last_refused.as_ref().map(|r| serde_json::json!({
                        "plan_hash": r.plan_hash,
                        "policy_hash": r.policy_hash,
                        "reason": r.reason,
                        "time": r.time,
                    })),
                },
                "illumination": match &lit {
                    Ok(l) => serde_json::json!({
                        "seq": l.seq,
                        "migrations": l.totals().0,
                        "fallbacks": l.totals().1,
                    }),
                    Err(why) => serde_json::json!({"error": why}),
                },
                "latest_checkpoint": latest,
                "operator": {
                    "key": operator,
                    "successions": rekeys.len(),
                    "last": rekeys.last().map(|(_, r)| serde_json::json!({
                        "from": r.from,
                        "to": r.to,
                        "reason": r.reason,
                        "time": r.time,
                    })),
                },
                "key_memory": memory.as_ref().map(|m| serde_json::json!({
                    "file": m.file.display().to_string(),
                    "checkpoint": m.checkpoint,
                    "held": m.held,
                    "of_another_key": m.of_another_key,
                })),
                "lock": holder,
            })
        ),
        OutputFormat::Human => {
            let total: i64 = statuses.iter().map(|(_, n)| n).sum();
            let parts: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
            outln!("store     {}", args.store.display());
            outln!("partners  {total}: {}", parts.join(" · "));
            for (why, n) in &pending {
                outln!("  waiting {n}: {why}");
            }
            let unfinished = plans
                .iter()
                .filter(|p| p.record.as_ref().is_some_and(|r| r.finished.is_none()))
                .count();
            outln!(
                "plans     {} applied{}",
                plans.len(),
                match unfinished {
                    0 => String::new(),
                    n => format!(", {n} unfinished"),
                }
            );
            for p in &plans {
                outln!("  {}", p.line());
            }
            match (&governing, &root) {
                (Some(g), Some(r)) if g == r => outln!(
                    "policy    {} governs, as it did first (`pmf lineage verify --policy FILES` holds it to the reviewed policy)",
                    short(g)
                ),
                (Some(g), Some(r)) => outln!(
                    "policy    {} governs; {} governed first (`pmf lineage verify --policy FILES` holds that to the reviewed policy)",
                    short(g),
                    short(r)
                ),
                _ => outln!(
                    "policy    none governs yet: the first plan applied or `state import` governs the store"
                ),
            }
            if let Some(p) = &pin {
                outln!(
                    "trust     `{}` pins the root policy {}: {}",
                    p.file.display(),
                    short(&p.hash),
                    match &root {
                        Some(r) if *r == p.hash => "the store's root".to_string(),
                        Some(r) => format!("NOT the store's root ({})", short(r)),
                        None => "the first plan applied or `state import` must be under it".into(),
                    }
                );
            }
            if let Some((hash, standing)) = &given {
                let governs = governing.as_deref().map(short).unwrap_or_default();
                outln!(
                    "given     {} {}",
                    short(hash),
                    match standing {
                        Standing::Governs => "is the policy that governs the store".to_string(),
                        Standing::GovernedBefore => format!(
                            "governed the store before, and no longer does: {governs} governs it now"
                        ),
                        Standing::NeverGoverned if governing.is_none() =>
                            "has never governed the store (none governs it yet)".to_string(),
                        Standing::NeverGoverned =>
                            format!("has never governed the store: {governs} governs it"),
                    }
                );
            }
            match &last_refused {
                Some(r) => outln!(
                    "refused   {refused} change{} refused, the last at {}{}: {} (`pmf lineage show @refused`)",
                    if refused == 1 { "" } else { "s" },
                    r.time,
                    r.plan_hash
                        .as_deref()
                        .map(|h| format!(" (plan {})", short(h)))
                        .unwrap_or_default(),
                    crate::runtime::plan_view::printable(&r.reason)
                ),
                None => outln!("refused   none"),
            }
            match &lit {
                Ok(l) if l.counts.is_empty() => outln!("outcomes  none counted yet"),
                Ok(l) => {
                    let (migrations, fallbacks) = l.totals();
                    let kinds = l.counts.len();
                    outln!(
                        "outcomes  {migrations} migration{} counted ({fallbacks} fell back) over {kinds} kind{} of migration, {}; fallback risks are predicted from them",
                        if migrations == 1 { "" } else { "s" },
                        if kinds == 1 { "" } else { "s" },
                        if l.seq == 0 {
                            "in the table of schema 7 (the next apply carries them into `@illumination`)".to_string()
                        } else {
                            format!("by event {} of `@illumination`", l.seq)
                        }
                    )
                }
                Err(why) => outln!("outcomes  {why}"),
            }
            match &latest {
                Some(c) => outln!(
                    "lineage   {} events, last checkpoint signed at {} (root {}…)",
                    c.size,
                    c.time,
                    c.root.get(..16).unwrap_or(&c.root)
                ),
                None => outln!("lineage   no signed checkpoint yet"),
            }
            match (&operator, rekeys.last()) {
                (Some(k), Some((_, r))) => outln!(
                    "operator  key {}…, since {} ({} succession{}, the last: {}; `pmf lineage show @operator`)",
                    short(k),
                    r.time,
                    rekeys.len(),
                    if rekeys.len() == 1 { "" } else { "s" },
                    crate::runtime::plan_view::printable(&r.reason)
                ),
                (Some(k), None) => outln!("operator  key {}…", short(k)),
                (None, _) => outln!(
                    "operator  no key yet (the first command that writes the store makes one)"
                ),
            }
            if let Some(m) = &memory {
                match &m.checkpoint {
                    Some(c) => outln!(
                        "memory    `{}` remembers the checkpoint of {} events signed at {}: {}",
                        m.file.display(),
                        c.size,
                        c.time,
                        if m.held {
                            "the store holds it"
                        } else {
                            "the store no longer holds it (rolled back, or a backup restored: the key writes to it no more)"
                        }
                    ),
                    None if m.of_another_key => outln!(
                        "memory    `{}` remembers a checkpoint signed by another key than the one in force (one the store retired); the key in force keeps its memory beside itself, from its next write",
                        m.file.display()
                    ),
                    None => outln!(
                        "memory    none at `{}` (the key beside the store remembers the checkpoint it signs from its next write; a key kept elsewhere keeps its memory beside it)",
                        m.file.display()
                    ),
                }
            }
            outln!("lock      {}", holder.unwrap_or_else(|| "free".to_string()));
        }
    }
    Ok(Exit::Success)
}

/// A plan applied to the store: what its progress rows say, and what the
/// chain of plans records of it.
struct Applied {
    hash: String,
    /// Partners its runs walked (a partner already at its target whose
    /// row stayed as it was leaves no trace).
    walked: i64,
    /// Of them, paused (awaiting review, throttled).
    pending: i64,
    /// Its marks (`@plans`); `None` for a plan applied before stores
    /// recorded them.
    record: Option<PlanRecord>,
}

impl Applied {
    /// Its line under `plans`.
    fn line(&self) -> String {
        let (pending, paused) = if self.pending > 0 {
            (
                format!(", {} still pending", self.pending),
                format!(" ({} still pending)", self.pending),
            )
        } else {
            (String::new(), String::new())
        };
        let hash = short(&self.hash);
        let partners = |n: u64| super::view::counted(n, "partner");
        match &self.record {
            None => format!("{hash} {} partners{pending}", self.walked),
            Some(r) => match &r.finished {
                Some(at) => format!(
                    "{hash} {}, finished {at}: {} walked{paused}",
                    partners(r.partners),
                    self.walked
                ),
                None => format!(
                    "{hash} {}, unfinished: {} walked{paused}, the rest not begun (begun {}: run `pmf apply` of the plan again to go on where it stopped)",
                    partners(r.partners),
                    self.walked,
                    r.begun
                ),
            },
        }
    }
}

/// The plans applied, in the order they were first applied (then those
/// only the chain of plans records: begun, no partner walked yet).
fn applied(
    progress: Vec<(String, i64, i64)>,
    mut records: BTreeMap<String, PlanRecord>,
) -> Vec<Applied> {
    let mut out: Vec<Applied> = progress
        .into_iter()
        .map(|(hash, walked, pending)| Applied {
            record: records.remove(&hash),
            hash,
            walked,
            pending,
        })
        .collect();
    let mut rest: Vec<PlanRecord> = records.into_values().collect();
    rest.sort_by(|a, b| a.begun.cmp(&b.begun));
    out.extend(rest.into_iter().map(|r| Applied {
        hash: r.plan_hash.clone(),
        walked: 0,
        pending: 0,
        record: Some(r),
    }));
    out
}
