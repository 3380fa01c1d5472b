//! `pmf rollback PARTNER [--to VERSION] --policy FILES -o PLAN`: plan the
//! return of a partner to its previous (or a named) stable version. A
//! rollback is a migration like any other: the plan names the categories
//! the reverse change touches and the authorities who must approve it;
//! `pmf approve` signs it and `pmf apply` carries it out, as new lineage
//! events (roll forward, never a rewrite) with the rites of fallback and
//! release.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::apply::ApprovedPlan;
use super::plan::OutputFormat;
use super::{CliError, Exit, UsageError, policy};
use crate::model::vocabulary::Phase;
use crate::runtime::engine::Action;
use crate::runtime::plan::{
    CarriedJson, InputFile, Plan, PlanEntry, PlanHeader, PlanKind, PolicyRef, Prediction, Totals,
    expires_after, now_rfc3339, state_digest,
};
use crate::runtime::value::{self, Completeness};
use crate::store::lineage::{Event, EventKind, Text};
use crate::store::{DEFAULT_PATH, StableVersion, Store};

/// The outcome a rollback records (its progress row says the same).
pub const ROLLED_BACK: &str = "rolled_back";

/// Arguments of `pmf rollback`.
#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The partner to roll back.
    pub partner: String,
    /// The stable version to return to: a version, or `#N`, the position
    /// `--list` gives (default: the one before the current).
    #[arg(long, value_name = "VERSION|#N")]
    pub to: Option<String>,
    /// List the partner's stable states (position, version, and how each
    /// differs from its current state) instead of planning: `--to #N`
    /// names any of them.
    #[arg(long, conflicts_with = "to")]
    pub list: bool,
    /// The store.
    #[arg(long, default_value = DEFAULT_PATH)]
    pub store: PathBuf,
    /// The policy files: its categories and authorities say who must
    /// approve, its rites are spoken (files, directories, or a policy's name
    /// among them; repeatable).
    #[arg(long, num_args = 1.., required_unless_present = "list", value_name = "FILE|DIR|NAME")]
    pub policy: Vec<PathBuf>,
    /// Where to write the rollback plan.
    #[arg(short = 'o', long = "output", default_value = "rollback.json")]
    pub output: PathBuf,
    /// How long the rollback plan may be signed and applied (`36h`, `7d`;
    /// at most 90 days).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = super::plan::validity)]
    pub valid_for: u64,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Which stable version a rollback goes to.
enum Back<'a> {
    /// The latest one other than the partner's current state.
    Previous,
    /// The latest one at this version (`pmf rollback --to`).
    Version(&'a str),
    /// The one at this position of the partner's list: the stable version
    /// whose state a rollback plan carries (a partner may have been stable
    /// at one version in two states, as a replacement keeps the version,
    /// and the version alone would then name the wrong one).
    Stable(i64),
    /// The one at this position, as the user named it (`--to #N`, from
    /// `--list`).
    Position(i64),
}

/// The stable version a rollback goes to, checked against the lineage.
fn choose(
    store: &Store,
    partner: &str,
    back: Back<'_>,
) -> Result<(crate::store::StoredPartner, StableVersion), CliError> {
    let (current, last) = store
        .bound_partner(partner)?
        .ok_or_else(|| UsageError(format!("no partner `{partner}` in the store")))?;
    // Stable versions are bound to the lineage, and the lineage to its
    // signed checkpoints: one edited outside pmf is never installed. A
    // problem of this partner, or of the log as a whole (a rewrite with its
    // digests and every chain hash recomputed, which only the checkpoints
    // catch), leaves its stable versions unvouched for; another partner's
    // problem does not.
    let verification = store.verify(None)?;
    if let Some(b) = verification
        .problems
        .iter()
        .find(|b| b.partner.as_deref().is_none_or(|p| p == partner))
    {
        return Err(UsageError(format!(
            "partner `{partner}` cannot be rolled back: {}",
            b.reason
        ))
        .into());
    }
    let stable = store.stable_versions(partner)?;
    let chosen = match back {
        Back::Stable(seq) | Back::Position(seq) => stable
            .iter()
            .find(|s| s.seq == seq)
            .cloned()
            .ok_or_else(|| {
                UsageError(if matches!(back, Back::Position(_)) {
                    format!(
                        "partner `{partner}` has no stable state #{seq}: `pmf rollback {partner} --list` lists them"
                    )
                } else {
                    format!("partner `{partner}` has no stable version the rollback plan returns to")
                })
            })?,
        // At a version the partner was stable at in several states (a
        // replacement keeps the version), the latest other than where it is.
        Back::Version(v) => stable
            .iter()
            .rev()
            .filter(|s| s.version.as_deref() == Some(v))
            .find(|s| s.state != current.state)
            .or_else(|| {
                stable
                    .iter()
                    .rev()
                    .find(|s| s.version.as_deref() == Some(v))
            })
            .cloned()
            .ok_or_else(|| {
                let known: Vec<String> = stable.iter().filter_map(|s| s.version.clone()).collect();
                UsageError(format!(
                    "partner `{partner}` was never stable at {v}; its stable versions: {}",
                    known.join(", ")
                ))
            })?,
        Back::Previous => {
            if last
                .as_ref()
                .is_some_and(|l| l.outcome.as_deref() == Some(ROLLED_BACK))
            {
                return Err(UsageError(format!(
                    "partner `{partner}` was just rolled back to {}; rolling back again would not go further back but forth: name the version with `--to VERSION`",
                    current.version.as_deref().unwrap_or("its previous state")
                )).into());
            }
            stable
                .iter()
                .rev()
                .find(|s| s.version != current.version || s.state != current.state)
                .cloned()
                .ok_or_else(|| {
                    UsageError(format!("partner `{partner}` has no earlier stable version"))
                })?
        }
    };
    if chosen.version == current.version && chosen.state == current.state {
        return Err(UsageError(format!(
            "partner `{partner}` is already at {}: nothing to roll back",
            chosen.version.as_deref().unwrap_or("that state")
        ))
        .into());
    }
    Ok((current, chosen))
}

/// Run `pmf rollback`: write the rollback plan (or, with `--list`, list
/// the states it can return to).
pub fn run(args: &RollbackArgs) -> Result<Exit, CliError> {
    if args.list {
        return list(args);
    }
    let mut inputs = vec![(args.store.as_path(), "--store")];
    inputs.extend(args.policy.iter().map(|p| (p.as_path(), "--policy")));
    super::files::refuse_output_over(&args.output, "the rollback plan", &inputs)?;
    let loaded = match policy::load_checked(&args.policy) {
        Ok(p) => p,
        Err(f) => return f.exit(),
    };
    let sources = policy::own_sources(&loaded);
    let policy = loaded.policy;
    let store = Store::open_existing(&args.store)?;
    let back = match args.to.as_deref() {
        None => Back::Previous,
        Some(to) => match to.strip_prefix('#') {
            Some(n) => Back::Position(n.parse::<i64>().map_err(|_| {
                UsageError(format!(
                    "--to {to}: a position is `#` and a number, as `pmf rollback {} --list` gives",
                    args.partner
                ))
            })?),
            None => Back::Version(to),
        },
    };
    let (current, chosen) = choose(&store, &args.partner, back)?;
    let read = |json: &str, what: &str| -> Result<value::Value, UsageError> {
        let json: serde_json::Value = serde_json::from_str(json).map_err(|e| {
            UsageError(format!(
                "the {what} of `{}` is unreadable: {e}",
                args.partner
            ))
        })?;
        value::from_json(&policy.schema, &json, "", Completeness::Full).map_err(|e| {
            UsageError(format!(
                "the {what} of `{}` does not fit the policy's schema: {e}",
                args.partner
            ))
        })
    };
    let now_state = read(&current.state, "current state")?;
    let back_state = read(&chosen.state, "stable version")?;
    let broken = policy.ceilings_broken_by(&back_state);
    if !broken.is_empty() {
        return Err(UsageError(format!(
            "the stable version {} of `{}` passes the policy's ceilings: {}; no partner's state may (roll back to another with `--to`)",
            chosen.version.as_deref().unwrap_or("-"),
            args.partner,
            broken.join(", ")
        ))
        .into());
    }
    let ReverseChange {
        migration,
        categories,
        approvals,
    } = reverse_change(&policy, &now_state, &back_state);
    let entry = PlanEntry {
        id: args.partner.clone(),
        state_digest: None,
        from: current.version.as_deref().map(Text::from),
        to: chosen.version.as_deref().map(Text::from),
        migration: Some(migration.as_str().into()),
        categories: categories.into_iter().map(Text::from).collect(),
        approvals_required: approvals.iter().map(|a| a.as_str().into()).collect(),
        predicted: Prediction {
            score: None,
            band: None,
            action: Action::Fallback,
            reason: format!(
                "roll back to stable version {}",
                chosen.version.as_deref().unwrap_or("(no version)")
            )
            .into(),
            validation: "passed".into(),
        },
        fallback_risk: 0.0,
        target: Some(back_state.to_json(&policy.schema)),
        state: CarriedJson::of(&now_state.to_json(&policy.schema)),
        observed: None,
    };
    // The illumination counts it was made beside (its risks are none).
    let history = store.illumination()?.name();
    let plan = Plan {
        format_version: crate::runtime::plan::FORMAT_VERSION,
        header: PlanHeader {
            kind: PlanKind::Rollback,
            policy: PolicyRef {
                name: policy.name.clone(),
                hash: policy.hash.clone(),
            },
            created_at: now_rfc3339(),
            expires_at: Some(expires_after(args.valid_for)),
            policy_sources: sources,
            partners: InputFile {
                file: format!("store `{}`", args.store.display()),
                blake3: None,
            },
            target: InputFile {
                file: format!(
                    "stable version {} of `{}`",
                    chosen.version.as_deref().unwrap_or("-"),
                    args.partner
                ),
                blake3: None,
            },
            observed: None,
            history,
            target_all: None,
            replaces_policy: None,
            store_id: store.id()?,
        },
        totals: Totals {
            partners: 1,
            by_type: BTreeMap::from([(migration, 1)]),
            by_band: BTreeMap::from([("unknown".to_string(), 1)]),
            by_action: BTreeMap::from([("fallback".to_string(), 1)]),
            not_planned: Default::default(),
        },
        entries: vec![entry],
    };
    let text = serde_json::to_string(&plan).map_err(|e| UsageError(e.to_string()))? + "\n";
    crate::output::write(&args.output, text.as_bytes(), false)
        .map_err(|e| UsageError(format!("cannot write `{}`: {e}", args.output.display())))?;
    let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
    match args.format {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::json!({"format_version": 1, "plan": args.output.display().to_string(), "plan_hash": hash, "expires_at": plan.header.expires_at, "partner": args.partner,
                "from": current.version, "to": chosen.version, "approvals_required": approvals})
        ),
        OutputFormat::Human => {
            outln!(
                "planned the rollback of {} {} → {} → {} (plan {})",
                args.partner,
                current.version.as_deref().unwrap_or("-"),
                chosen.version.as_deref().unwrap_or("-"),
                args.output.display(),
                super::view::short(&hash)
            );
            if approvals.is_empty() {
                outln!(
                    "  no approval needed; apply it with `pmf apply {}`",
                    args.output.display()
                );
            } else {
                outln!(
                    "  needs the approval of {}: `pmf approve {} --key KEY`, then `pmf apply {} --approvals approvals.json`",
                    approvals.join(", "),
                    args.output.display(),
                    args.output.display()
                );
            }
        }
    }
    Ok(Exit::Success)
}

/// What returning a partner from one state to an earlier one is, under a
/// policy: the one place a rollback's type, categories and approvals are
/// decided, when it is planned and again when it is applied (a plan is a
/// file anyone can edit: what it says it needs is never taken from it).
#[derive(Debug, PartialEq, Eq)]
struct ReverseChange {
    /// The migration type (the policy's fallback type).
    migration: String,
    /// The categories the reverse change touches.
    categories: Vec<String>,
    /// The authorities governing them: each must approve.
    approvals: Vec<String>,
}

impl ReverseChange {
    /// What rollback plan entry `e` says the reverse change is.
    fn said_by(e: &PlanEntry) -> ReverseChange {
        ReverseChange {
            migration: e.migration.as_deref().unwrap_or_default().to_string(),
            categories: e.categories.iter().map(ToString::to_string).collect(),
            approvals: e
                .approvals_required
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }

    /// `type T, categories C, approvals A` (as a plan entry would say it).
    fn described(&self) -> String {
        let list = crate::runtime::plan_view::printable_list;
        format!(
            "type {}, categories {}, approvals {}",
            crate::runtime::plan_view::printable(&self.migration),
            list(&self.categories),
            list(&self.approvals)
        )
    }
}

/// The entries of rollback plan `plan` whose type, categories or
/// approvals are not what `policy` decides for the states they carry (the
/// state now, and the stable version as `target`): one line each.
pub fn unfounded(plan: &Plan, policy: &crate::runtime::engine::CompiledPolicy) -> Vec<String> {
    plan.entries
        .iter()
        .filter_map(|e| {
            let id = value::shown_id(&e.id);
            let now = e
                .state
                .read(&policy.schema, Completeness::Full, None)
                .map_err(|why| format!("partner `{id}`: the state it carries: {why}"));
            let back = e
                .target
                .as_ref()
                .ok_or_else(|| format!("partner `{id}`: it carries no stable version to return to"))
                .and_then(|j| {
                    value::from_json(&policy.schema, j, "", Completeness::Full)
                        .map_err(|why| format!("partner `{id}`: its stable version: {why}"))
                });
            let (now, back) = match (now, back) {
                (Ok(now), Ok(back)) => (now, back),
                (Err(why), _) | (_, Err(why)) => return Some(why),
            };
            let needs = reverse_change(policy, &now, &back);
            let says = ReverseChange::said_by(e);
            (says != needs).then(|| {
                format!(
                    "partner `{id}`: the plan says {}; its policy decides {}",
                    says.described(),
                    needs.described()
                )
            })
        })
        .collect()
}

/// What returning `now_state` to `back_state` is under `policy`.
fn reverse_change(
    policy: &crate::runtime::engine::CompiledPolicy,
    now_state: &value::Value,
    back_state: &value::Value,
) -> ReverseChange {
    let target = crate::runtime::compile::State::of(now_state).with(Some(back_state));
    let a = policy.assess(now_state, target, target);
    // The reverse change needs the approval of every authority governing
    // a category it touches.
    let mut approvals: Vec<String> = Vec::new();
    let governors = a
        .categories
        .iter()
        .filter_map(|&c| policy.categories.get(c)?.governor);
    for name in governors.filter_map(|g| policy.authorities.get(g)) {
        if !approvals.contains(name) {
            approvals.push(name.clone());
        }
    }
    let categories: Vec<String> = policy
        .category_names(&a.categories)
        .map(str::to_string)
        .collect();
    let migration = policy
        .fallback
        .and_then(|f| policy.migrations.get(f))
        .map_or("fallback".to_string(), |m| m.name.clone());
    ReverseChange {
        migration,
        categories,
        approvals,
    }
}

/// Carry out a rollback plan (the caller holds the store's lock): each
/// partner must still be where the plan found it, its stable version
/// still the one the lineage records, and every approval it needs given.
pub fn apply(r: &ApprovedPlan<'_>) -> Result<Exit, CliError> {
    let mut store = Store::open_existing(r.store)?;
    let policy = r.policy;
    let plan = &r.plan.plan;
    if plan.header.policy.hash != policy.hash {
        return Ok(r.refuser.refuse(
            "the policy changed since the rollback was planned; plan it again",
            &[],
        ));
    }
    let mut work = Vec::new();
    let mut done = 0usize;
    for e in &plan.entries {
        // Carried out once: a partner whose lineage records this plan's
        // rollback is not rolled back again by its approvals, even where it
        // has since come back to the state the plan was made from.
        if store.plan_outcome(&e.id, &r.plan.hash)?.is_some() {
            done += 1;
            continue;
        }
        // A partner that changed since the rollback was planned makes the
        // plan stale, whatever its stable versions now say (it may even
        // have come to the version the plan returns to, by a migration).
        let (current, _) = store
            .bound_partner(&e.id)?
            .ok_or_else(|| UsageError(format!("no partner `{}` in the store", e.id)))?;
        let now_state = value::from_json(
            &policy.schema,
            &serde_json::from_str(&current.state).unwrap_or_default(),
            "",
            Completeness::Full,
        )
        .map_err(|err| UsageError(format!("stored state of `{}`: {err}", e.id)))?;
        let planned = e
            .planned_digest(&policy.schema, None)
            .map_err(|err| UsageError(format!("the rollback's state of `{}`: {err}", e.id)))?;
        if state_digest(&now_state) != planned {
            let reason = format!(
                "partner `{}` changed since the rollback was planned; plan it again",
                e.id
            );
            return Ok(r.refuser.refuse(&reason, &[]));
        }
        // The stable version the plan returns to is the one whose state it
        // carries; an entry that carries none of the partner's was edited.
        let target_digest = e.target.as_ref().and_then(|t| {
            value::from_json(&policy.schema, t, "", Completeness::Full)
                .ok()
                .map(|v| state_digest(&v))
        });
        let planned = |text: &str| {
            serde_json::from_str(text)
                .ok()
                .and_then(|j| value::from_json(&policy.schema, &j, "", Completeness::Full).ok())
                .is_some_and(|v| Some(state_digest(&v)) == target_digest)
        };
        let stable = store.stable_versions(&e.id)?;
        let Some(seq) = stable
            .iter()
            .rev()
            .find(|s| s.version.as_deref() == e.to.as_deref() && planned(&s.state))
            .map(|s| s.seq)
        else {
            let reason = format!(
                "the rollback plan's entry for `{}` returns to a state that is none of its stable versions at {}: the plan was edited; plan the rollback again",
                e.id,
                e.to.as_deref().unwrap_or("its version")
            );
            return Ok(r.refuser.refuse(&reason, &["nothing was rolled back"]));
        };
        let (current, chosen) = choose(&store, &e.id, Back::Stable(seq))?;
        // What the rollback needs is decided again here, from the store's
        // states and the policy: an entry that says otherwise was edited.
        let back_state = value::from_json(
            &policy.schema,
            &serde_json::from_str(&chosen.state).unwrap_or_default(),
            "",
            Completeness::Full,
        )
        .map_err(|err| UsageError(format!("stable version of `{}`: {err}", e.id)))?;
        let broken = policy.ceilings_broken_by(&back_state);
        if !broken.is_empty() {
            let reason = format!(
                "the stable version {} of `{}` passes the policy's ceilings: {}; no partner's state may; nothing was rolled back",
                chosen.version.as_deref().unwrap_or("-"),
                value::shown_id(&e.id),
                broken.join(", ")
            );
            return Ok(r.refuser.refuse(&reason, &[]));
        }
        let needs = reverse_change(policy, &now_state, &back_state);
        let says = ReverseChange::said_by(e);
        if says != needs {
            let reason = format!(
                "the rollback plan's entry for `{}` does not say what the policy decides of it (it says {}; the policy: {}): the plan was edited; plan the rollback again",
                e.id,
                says.described(),
                needs.described()
            );
            return Ok(r.refuser.refuse(&reason, &["nothing was rolled back"]));
        }
        let missing = r.missing(&needs.approvals);
        if !missing.is_empty() {
            let reason = format!(
                "the rollback of `{}` needs the approval of {}; nothing was rolled back",
                e.id,
                missing.join(", ")
            );
            return Ok(r.refuser.refuse(&reason, &[]));
        }
        work.push((e, current, chosen, needs));
    }
    if work.is_empty() {
        if r.format == OutputFormat::Human {
            outln!(
                "rollback plan {}: nothing to do ({done} partner{} rolled back by an earlier run)",
                super::view::short(&r.plan.hash),
                if done == 1 { "" } else { "s" }
            );
        }
        return Ok(Exit::Success);
    }
    let fallback_rite = policy
        .graph
        .phase(Phase::Fallback)
        .and_then(|i| policy.graph.phases.get(i))
        .and_then(|p| p.rite.clone());
    let marked = store.plan_marked(&r.plan.hash)?;
    let mut batch = store.begin(r.operator)?;
    for (authority, key, signature) in r.accepted {
        batch.add_approval(&r.plan.hash, authority, key, signature)?;
    }
    if !marked {
        batch.mark_plan_whole(&r.plan.hash, &policy.hash, plan.entries.len() as u64)?;
    }
    let mut stored = Vec::new();
    // What is recorded is what the policy decided (the entry said the same).
    for (e, current, chosen, needs) in &work {
        let base = Event {
            partner: e.id.clone(),
            from: current.version.as_deref().map(Text::from),
            to: chosen.version.as_deref().map(Text::from),
            migration: Some(needs.migration.as_str().into()),
            time: now_rfc3339().into(),
            ..Event::default()
        };
        let seq = batch.next_stable_seq(&e.id)?;
        let stable = batch.push_stable(&e.id, seq, chosen.version.as_deref(), &chosen.state)?;
        let digest =
            batch.put_partner(&e.id, &chosen.state, chosen.version.as_deref(), "active")?;
        let signers = crate::runtime::apply::signers_of(r.signers, &needs.approvals);
        let mut events = vec![
            Event {
                kind: EventKind::Rollback,
                phase: Some(Phase::Fallback.as_str().into()),
                rite: fallback_rite.clone(),
                detail: Some(format!(
                    "roll back to stable version {}",
                    chosen.version.as_deref().unwrap_or("-")
                )),
                approvals: needs.approvals.clone(),
                signers,
                policy_hash: Some(policy.hash.clone()),
                plan_hash: Some(r.plan.hash.clone()),
                ..base.clone()
            },
            Event {
                kind: EventKind::Released,
                rite: policy.release_rite.clone(),
                detail: current
                    .version
                    .as_ref()
                    .map(|v| format!("version {v} released")),
                ..base.clone()
            },
            Event {
                kind: EventKind::PhaseEntered,
                phase: Some(Phase::Continuity.as_str().into()),
                rite: policy
                    .graph
                    .phase(Phase::Continuity)
                    .and_then(|i| policy.graph.phases.get(i))
                    .and_then(|p| p.rite.clone()),
                ..base.clone()
            },
            Event {
                kind: EventKind::Completed,
                outcome: Some(ROLLED_BACK.into()),
                state: Some(digest),
                stable: vec![stable],
                plan_hash: Some(r.plan.hash.clone()),
                ..base.clone()
            },
        ];
        let mut chain = batch.chain(&e.id)?;
        batch.append_all(&mut chain, &mut events)?;
        for ev in &events {
            stored.push(serde_json::to_string(ev).map_err(|e| UsageError(e.to_string()))?);
        }
        // The run is recorded as any plan's is (`verify` holds the
        // progress rows to the lineage).
        batch.set_progress(&r.plan.hash, &e.id, ROLLED_BACK)?;
        if r.format == OutputFormat::Human {
            outln!(
                "↩ {} rolled back {} → {}",
                e.id,
                current.version.as_deref().unwrap_or_default(),
                chosen.version.as_deref().unwrap_or_default()
            );
            for words in [&fallback_rite, &policy.release_rite].into_iter().flatten() {
                outln!("    “{words}”");
            }
        }
    }
    let signed = batch.commit()?;
    if r.format == OutputFormat::Json {
        super::apply::write_events_and_summary(&stored, &r.plan.hash, plan.entries.len(), signed);
    }
    Ok(Exit::Success)
}

/// `pmf rollback PARTNER --list`: the partner's stable states, in the order
/// it reached them, each with its position (`--to #N`), its version and
/// the fields in which it differs from the partner's current state.
fn list(args: &RollbackArgs) -> Result<Exit, CliError> {
    let store = Store::open_existing(&args.store)?;
    let partner = &args.partner;
    let (current, _) = store
        .bound_partner(partner)?
        .ok_or_else(|| UsageError(format!("no partner `{partner}` in the store")))?;
    let parse = |json: &str| serde_json::from_str::<serde_json::Value>(json).unwrap_or_default();
    let now = parse(&current.state);
    let rows: Vec<(StableVersion, Vec<String>)> = store
        .stable_versions(partner)?
        .into_iter()
        .map(|s| {
            // What returning to it would change: now → then.
            let differs = differences(&now, &parse(&s.state));
            (s, differs)
        })
        .collect();
    if args.format == OutputFormat::Json {
        let states: Vec<serde_json::Value> = rows
            .iter()
            .map(|(s, differs)| {
                serde_json::json!({
                    "position": s.seq,
                    "version": s.version,
                    "current": differs.is_empty() && s.version == current.version,
                    "differs": differs,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::json!({"format_version": 1, "partner": partner, "version": current.version, "stable": states})
        );
        return Ok(Exit::Success);
    }
    outln!(
        "stable states of `{partner}` (now at {}); `pmf rollback {partner} --to #N` returns to one:",
        current.version.as_deref().unwrap_or("no version")
    );
    for (s, differs) in &rows {
        let version = s.version.as_deref().unwrap_or("-");
        let how = if differs.is_empty() {
            "its current state".to_string()
        } else {
            let mut shown: Vec<String> = differs.iter().take(4).cloned().collect();
            if differs.len() > 4 {
                shown.push(format!("and {} more", differs.len() - 4));
            }
            format!("differs in {}", shown.join(", "))
        };
        outln!("  #{:<4} {version:<12} {how}", s.seq);
    }
    Ok(Exit::Success)
}

/// The fields in which state `a` differs from state `b`, each as
/// `field: A → B` (values as JSON, shortened), in field order.
fn differences(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (a, b) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    let mut fields: Vec<&String> = a.keys().chain(b.keys()).collect();
    fields.sort();
    fields.dedup();
    let shown = |v: Option<&serde_json::Value>| {
        let text = v.map_or_else(|| "(none)".to_string(), serde_json::Value::to_string);
        let text = crate::runtime::value::shown_id(&text);
        match text.char_indices().nth(40) {
            Some((at, _)) => format!("{}…", text.get(..at).unwrap_or_default()),
            None => text,
        }
    };
    fields
        .into_iter()
        .filter(|f| a.get(*f) != b.get(*f))
        .map(|f| format!("{f}: {} → {}", shown(a.get(f)), shown(b.get(f))))
        .collect()
}
