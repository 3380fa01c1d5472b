//! `pmf review`: partners that wait for governance, and an authority's
//! signed decision on them. `list` shows each paused partner with the
//! reason and what would unblock it; `promote` lets it go on where review
//! paused it (the next `pmf apply` of its plan continues it); `abort` ends
//! its migration with a fallback to its previous stable state, with the
//! rites. A decision is signed by a key the policy trusts, over the
//! partner's last event, and `pmf lineage verify` checks it again.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ed25519_dalek::Signer;

use super::plan::OutputFormat;
use super::refusal::Refuser;
use super::{CliError, Exit, UsageError, policy};
use crate::model::vocabulary::Phase;
use crate::runtime::approvals;
use crate::runtime::plan::now_rfc3339;
use crate::runtime::plan_view::printable;
use crate::store::lineage::{Event, EventKind, LastEvent, Text};
use crate::store::verify::review_message;
use crate::store::{DEFAULT_PATH, Store, StoredPartner};

/// Arguments of `pmf review`.
#[derive(Args, Debug)]
pub struct ReviewArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ReviewCommand,
}

/// A decision on a paused partner.
#[derive(Args, Debug)]
pub struct Decision {
    /// The paused partner.
    pub partner: String,
    /// The deciding authority's private key (its public key must be
    /// declared for it in the policy).
    #[arg(long)]
    pub key: PathBuf,
    /// The policy whose keys are trusted: files, directories, or a policy's
    /// name among them (repeatable).
    #[arg(long, num_args = 1.., required = true, value_name = "FILE|DIR|NAME")]
    pub policy: Vec<PathBuf>,
    /// Why (recorded in the lineage).
    #[arg(long)]
    pub reason: String,
    /// The store.
    #[arg(long, default_value = DEFAULT_PATH)]
    pub store: PathBuf,
    /// The operator's key, which signs the lineage's checkpoints.
    #[arg(long, env = "PMF_OPERATOR_KEY")]
    pub operator_key: Option<PathBuf>,
    /// Output format (`json`: the decision, authority, partner and plan).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Review subcommands.
#[derive(Subcommand, Debug)]
pub enum ReviewCommand {
    /// Partners waiting for governance: why, and what would unblock each.
    List {
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
    },
    /// Let a partner paused for review go on (the next apply of its plan
    /// continues it past the review). A decision lifts neither a throttle
    /// nor missing approvals.
    Promote(Decision),
    /// End a paused partner's migration (one promoted too, until an apply
    /// uses the promotion): it falls back to its previous stable state,
    /// with the rites.
    Abort(Decision),
}

/// Whether a plan that expires at `expires_at` (as the store noted it)
/// has expired; `None` when the store does not know when it expires.
fn expired(expires_at: Option<&str>) -> Option<bool> {
    let at = crate::runtime::plan::parse_rfc3339(expires_at?)?;
    Some(crate::runtime::plan::now_secs() >= at)
}

/// Where a paused partner's walk stopped, and who promoted it since.
struct Pause {
    /// The walk's last event: where it paused, and why.
    at: LastEvent,
    /// The authority whose promotion the next apply of the plan uses, when
    /// one promoted the partner since it paused.
    promoted_by: Option<String>,
}

/// Where the walk of partner `id`, whose last event is `last`, paused: that
/// event, or when an authority promoted the partner since (and no apply has
/// used the promotion yet), the event before the promotion.
fn pause_of(store: &Store, id: &str, last: LastEvent) -> Result<Pause, CliError> {
    if last.kind != EventKind::ReviewPromoted {
        return Ok(Pause {
            at: last,
            promoted_by: None,
        });
    }
    let events = store.lineage(Some(id))?;
    let promoted_by = events
        .last()
        .and_then(|e| e.event.approvals.first().cloned());
    let at = events
        .into_iter()
        .rev()
        .find(|e| e.event.kind != EventKind::ReviewPromoted)
        .map(|e| LastEvent::from(e.event))
        .unwrap_or_default();
    Ok(Pause { at, promoted_by })
}

/// Until when the plan a walk paused at `pause` waits on (`plan_hash`)
/// may continue it: as the paused event records it (signed with the walk),
/// else, for a walk an earlier pmf paused, as the store noted it when the
/// plan was applied.
fn expiry_of(
    store: &Store,
    pause: &LastEvent,
    plan_hash: &str,
) -> Result<Option<String>, CliError> {
    match &pause.expires_at {
        Some(at) => Ok(Some(at.clone())),
        None => Ok(store.plan_expiry(plan_hash)?),
    }
}

/// What would unblock a paused partner, whose plan expires at `expiry`
/// (when the store knows).
fn unblock(p: &StoredPartner, pause: Option<&Pause>, expiry: Option<&str>) -> String {
    let why = pause.and_then(|l| l.at.detail.clone()).unwrap_or_default();
    let plan = pause
        .and_then(|l| l.at.plan_hash.as_deref())
        .map_or("its plan".to_string(), |h| {
            format!("plan {}", super::view::short(h))
        });
    let promoted = pause.and_then(|l| l.promoted_by.as_deref());
    if p.status != "throttled"
        && let (Some(true), Some(at)) = (expired(expiry), expiry)
    {
        return format!(
            "{}{plan} expired at {}: a new plan made from the partner's state (`pmf state export`) walks it again, and asks again; or `pmf review abort {}`",
            promoted.map_or(String::new(), |a| format!("promoted by `{a}`, but ")),
            printable(at),
            p.id
        );
    }
    if let Some(authority) = promoted {
        format!(
            "promoted by `{authority}`: `pmf apply` of {plan} again continues it past review (before the plan expires); or `pmf review abort {}`",
            p.id
        )
    } else if let Some(who) = why.strip_prefix("awaiting approval by ") {
        format!(
            "signatures of {who} on {plan} (`pmf approve`), then `pmf apply` of it again before it expires (after, a new plan from `pmf state export`); or `pmf review abort`"
        )
    } else if p.status == "throttled" {
        format!(
            "a new plan once the ecosystem recovers (new observed metrics); or `pmf review abort {}`",
            p.id
        )
    } else {
        format!(
            "an authority's decision: `pmf review promote {}` (then `pmf apply` of {plan} again before it expires; after, a new plan from `pmf state export`) or `pmf review abort {}`",
            p.id, p.id
        )
    }
}

/// Run `pmf review`.
pub fn run(args: &ReviewArgs) -> Result<Exit, CliError> {
    match &args.command {
        ReviewCommand::List { store, format } => {
            let store = Store::open_to_read(store)?;
            // Every paused partner is read from one snapshot, under one lock.
            let _snapshot = store.snapshot()?;
            let paused = store.partners_with_status(&["awaiting_review", "throttled"])?;
            let mut rows = Vec::new();
            for p in &paused {
                let pause = match store.last_event(&p.id)? {
                    Some(last) => Some(pause_of(&store, &p.id, last)?),
                    None => None,
                };
                let plan_hash = pause.as_ref().and_then(|l| l.at.plan_hash.clone());
                let expiry = match (&pause, &plan_hash) {
                    (Some(p), Some(h)) => expiry_of(&store, &p.at, h)?,
                    _ => None,
                };
                rows.push(serde_json::json!({
                    "partner": p.id,
                    "status": p.status,
                    "version": p.version,
                    "plan_hash": plan_hash,
                    "plan_expires_at": expiry,
                    "plan_expired": expired(expiry.as_deref()),
                    "reason": pause.as_ref().and_then(|l| l.at.detail.clone()),
                    "promoted_by": pause.as_ref().and_then(|l| l.promoted_by.clone()),
                    "unblock": unblock(p, pause.as_ref(), expiry.as_deref()),
                }));
            }
            match format {
                OutputFormat::Json => outln!(
                    "{}",
                    serde_json::json!({"format_version": 1, "pending": rows})
                ),
                OutputFormat::Human => {
                    for r in &rows {
                        outln!(
                            "⏸ {:<14} {} — {}\n    to go on: {}",
                            r["partner"].as_str().unwrap_or_default(),
                            r["status"].as_str().unwrap_or_default(),
                            r["reason"].as_str().unwrap_or("no reason recorded"),
                            r["unblock"].as_str().unwrap_or_default()
                        );
                    }
                    outln!("{} partners wait for governance", rows.len());
                }
            }
            Ok(Exit::Success)
        }
        ReviewCommand::Promote(d) => decide(d, EventKind::ReviewPromoted),
        ReviewCommand::Abort(d) => decide(d, EventKind::ReviewAborted),
    }
}

fn decide(d: &Decision, decision: EventKind) -> Result<Exit, CliError> {
    let policy = match policy::load(&d.policy) {
        Ok(p) => p,
        Err(f) => return f.exit(),
    };
    let (file, key) = approvals::read_key(&d.key).map_err(UsageError)?;
    super::keys::warn_if_exposed(&d.key, "as its authority");
    let _lock = crate::store::lock::lock(&d.store, "review")
        .map_err(|e| CliError::from(e).then("nothing was decided"))?;
    // A decision refused is recorded in the store's lineage, naming who
    // tried to decide what.
    let refuser = Refuser {
        store: &d.store,
        operator_key: d.operator_key.as_deref(),
        plan_hash: None,
        policy_hash: policy.hash.clone(),
        prefix: format!(
            "review {} of `{}` by `{}` (key {}…): ",
            if decision == EventKind::ReviewPromoted {
                "promote"
            } else {
                "abort"
            },
            crate::runtime::value::shown_id(&d.partner),
            file.authority,
            file.public_key.get(..16).unwrap_or(&file.public_key)
        ),
    };
    if policy.authority_of_key(&file.public_key) != Some(file.authority.as_str()) {
        let reason = format!(
            "the key `{}` is not one the policy trusts for `{}` (declare it with `key {} \"ed25519:…\"`); nothing was decided",
            d.key.display(),
            file.authority,
            file.authority
        );
        return Ok(refuser.refuse(&reason, &[]));
    }
    let mut store = Store::open_existing(&d.store)?;
    // The store's governing policy decides whose decisions count, not the
    // policy given here (which anyone can write).
    if let Some(g) = store.governing()?
        && (!g.trusts(&file.authority, &file.public_key) || g.policy_hash != policy.hash)
    {
        let reason = format!(
            "the store is governed by policy {} and the key `{}` {}; nothing was decided",
            super::view::short(&g.policy_hash),
            d.key.display(),
            if g.trusts(&file.authority, &file.public_key) {
                "is trusted there, but `--policy` names another policy: give the governing one"
                    .to_string()
            } else {
                format!("is not one it trusts for `{}`", file.authority)
            }
        );
        drop(store);
        return Ok(refuser.refuse(&reason, &[]));
    }
    // A store first governed by another policy than the project's pinned
    // trust root is written no more.
    if let Some(pin) = super::trust::pinned(&d.store)?
        && let Some(why) = super::trust::problem(&store, &policy.hash, &pin)?
    {
        drop(store);
        return Ok(refuser.refuse(&format!("{why}; nothing was decided"), &[]));
    }
    let (partner, last) = store
        .bound_partner(&d.partner)?
        .ok_or_else(|| UsageError(format!("no partner `{}` in the store", d.partner)))?;
    let last = last.unwrap_or_default();
    // The very decision by this very key, already recorded (its success
    // unseen: a crash, a lost terminal, a pipeline run again): nothing is
    // decided twice, and nothing is wrong.
    let signer = format!("{}:{}", file.authority, file.public_key);
    if let Some(at) = decided_already(&store, &d.partner, decision, &signer)? {
        // Said only of a record the signed checkpoints vouch for (as a
        // decision is written only onto such a log).
        store.vouch_for_log()?;
        return Ok(said_already(d, decision, &file.authority, &at));
    }
    let paused = matches!(partner.status.as_str(), "awaiting_review" | "throttled");
    let promoted = last.kind == EventKind::ReviewPromoted;
    if !paused {
        return Err(UsageError(format!(
            "partner `{}` is {} and waits for no decision",
            d.partner, partner.status
        ))
        .into());
    }
    if promoted && decision == EventKind::ReviewPromoted {
        return Err(UsageError(format!(
            "partner `{}` was promoted already: `pmf apply` its plan again to continue it, or `pmf review abort {}` to end its walk",
            d.partner, d.partner
        ))
        .into());
    }
    // The decision is about where the walk paused: a promotion no apply
    // has used yet can still be overruled by an abort.
    let pause = pause_of(&store, &d.partner, last)?.at;
    let why = pause.detail.clone().unwrap_or_default();
    if decision == EventKind::ReviewPromoted && partner.status == "throttled" {
        let reason = format!(
            "partner `{}` is throttled ({why}): a review decision does not lift a throttle, which holds until the ecosystem recovers; a new plan with new observed metrics walks it again, or `pmf review abort {}` ends its walk",
            d.partner, d.partner
        );
        drop(store);
        return Ok(refuser.refuse(&reason, &[]));
    }
    if decision == EventKind::ReviewPromoted && why.starts_with("awaiting approval by ") {
        let reason = format!(
            "partner `{}` waits for approvals ({why}); a review decision does not replace them: have them sign the plan, or abort",
            d.partner
        );
        drop(store);
        return Ok(refuser.refuse(&reason, &[]));
    }
    let plan_hash = pause.plan_hash.clone().unwrap_or_default();
    // A promotion is used by the next apply of the partner's plan: once
    // that plan expired, none will come.
    if decision == EventKind::ReviewPromoted
        && let Some(at) = expiry_of(&store, &pause, &plan_hash)?
        && expired(Some(&at)) == Some(true)
    {
        let reason = format!(
            "partner `{}` waits on plan {}, which expired at {}: no apply of it will come to use a promotion; a new plan made from the partner's state (`pmf state export`) walks it again, and asks again (or abort)",
            d.partner,
            super::view::short(&plan_hash),
            printable(&at)
        );
        drop(store);
        return Ok(refuser.refuse(&reason, &[]));
    }
    // An abort ends the walk as a fallback: counted for illumination (the
    // fallback risks of later plans) under the migration type and the
    // categories its paused event names. A walk an earlier pmf paused
    // names no categories, and is not counted.
    let counted = match (&pause.migration, &pause.categories) {
        (Some(m), Some(c)) if decision == EventKind::ReviewAborted => {
            Some((m.clone(), c.join("+")))
        }
        _ => None,
    };
    let mut lit = store.illumination()?;
    let operator = super::keys::operator_key(&store, d.operator_key.as_deref())?;
    let mut batch = store.begin(&operator)?;
    let mut chain = batch.chain(&d.partner)?;
    let signature = key.sign(&review_message(
        &file.authority,
        &d.partner,
        decision.as_str(),
        &plan_hash,
        &chain.head(),
    ));
    let base = Event {
        from: partner.version.as_deref().map(Text::from),
        plan_hash: Some(plan_hash.clone()),
        time: now_rfc3339().into(),
        ..Event::default()
    };
    let status = if decision == EventKind::ReviewPromoted {
        partner.status.clone()
    } else {
        "active".to_string()
    };
    let digest = batch.put_partner(
        &partner.id,
        &partner.state,
        partner.version.as_deref(),
        &status,
    )?;
    let mut events = vec![Event {
        kind: decision,
        detail: Some(d.reason.clone()),
        signers: vec![format!("{}:{}", file.authority, file.public_key)],
        signature: Some(hex::encode(signature.to_bytes())),
        approvals: vec![file.authority.clone()],
        ..base.clone()
    }];
    if decision == EventKind::ReviewAborted {
        let rite = |phase: Phase| {
            policy
                .graph
                .phase(phase)
                .and_then(|i| policy.graph.phases.get(i))
                .and_then(|p| p.rite.clone())
        };
        events.push(Event {
            kind: EventKind::Fallback,
            phase: Some(Phase::Fallback.as_str().into()),
            rite: rite(Phase::Fallback),
            to: partner.version.as_deref().map(Text::from),
            detail: Some("review aborted: returned to the previous stable state".into()),
            plan_hash: None,
            ..base.clone()
        });
        events.push(Event {
            kind: EventKind::Resumed,
            phase: Some(Phase::Continuity.as_str().into()),
            rite: rite(Phase::Continuity),
            outcome: Some("fell_back".into()),
            // Named when counted: `verify` holds the counts to the walks
            // that end with a type.
            migration: counted.as_ref().map(|(m, _)| m.as_str().into()),
            ..base.clone()
        });
        batch.set_progress(&plan_hash, &partner.id, "fell_back")?;
    }
    if let Some(last_event) = events.last_mut() {
        last_event.state = Some(digest);
    }
    batch.append_all(&mut chain, &mut events)?;
    if let Some(key) = counted {
        batch.count_outcomes(&mut lit, &plan_hash, [(key, (1, 1))])?;
    }
    let signed = batch.commit()?;
    if d.format == OutputFormat::Json {
        super::print_json(&serde_json::json!({
            "format_version": 1,
            "decision": if decision == EventKind::ReviewPromoted { "promoted" } else { "aborted" },
            "authority": file.authority,
            "partner": d.partner,
            "plan_hash": plan_hash,
            "version": partner.version,
            "checkpoint": signed,
        }));
        return Ok(Exit::Success);
    }
    if decision == EventKind::ReviewPromoted {
        outln!(
            "`{}` promoted {}: the next `pmf apply` of plan {} continues it past review, if it runs before the plan expires (after, a new plan walks the partner again, and review asks again)",
            file.authority,
            d.partner,
            super::view::short(&plan_hash)
        );
    } else {
        outln!(
            "`{}` aborted the migration of {}: it stays at its previous stable state {}",
            file.authority,
            d.partner,
            partner.version.as_deref().unwrap_or("")
        );
    }
    Ok(Exit::Success)
}

/// The last review decision recorded for `partner`, when it is `decision`
/// by `signer` (`AUTHORITY:KEY`) and nothing follows it but the run it
/// ended (an abort's fallback).
fn decided_already(
    store: &Store,
    partner: &str,
    decision: EventKind,
    signer: &str,
) -> Result<Option<Event>, CliError> {
    let events = store.lineage(Some(partner))?;
    let Some(at) = events.iter().rposition(|s| {
        matches!(
            s.event.kind,
            EventKind::ReviewPromoted | EventKind::ReviewAborted
        )
    }) else {
        return Ok(None);
    };
    let after: Vec<EventKind> = events.iter().skip(at + 1).map(|s| s.event.kind).collect();
    let ended = match decision {
        EventKind::ReviewAborted => after == [EventKind::Fallback, EventKind::Resumed],
        _ => after.is_empty(),
    };
    Ok(events.into_iter().nth(at).map(|s| s.event).filter(|e| {
        ended
            && e.kind == decision
            && e.signers
                .first()
                .is_some_and(|s| s.eq_ignore_ascii_case(signer))
    }))
}

/// Say that `authority` took `decision` (recorded as `earlier`) already:
/// exit 0, nothing written.
fn said_already(d: &Decision, decision: EventKind, authority: &str, earlier: &Event) -> Exit {
    let plan_hash = earlier.plan_hash.clone().unwrap_or_default();
    let promoted = decision == EventKind::ReviewPromoted;
    if d.format == OutputFormat::Json {
        super::print_json(&serde_json::json!({
            "format_version": 1,
            "decision": if promoted { "promoted" } else { "aborted" },
            "authority": authority,
            "partner": d.partner,
            "plan_hash": plan_hash,
            "already": true,
            "decided_at": earlier.time,
        }));
    } else if promoted {
        outln!(
            "nothing to decide: `{authority}` promoted {} already, with this key, at {}; the next `pmf apply` of plan {} continues it past review",
            d.partner,
            earlier.time,
            super::view::short(&plan_hash)
        );
    } else {
        outln!(
            "nothing to decide: `{authority}` aborted the migration of {} already, with this key, at {}",
            d.partner,
            earlier.time
        );
    }
    Exit::Success
}
