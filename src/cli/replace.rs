//! Replacing partner states outside the migration flow, as a governed
//! change: `pmf state import FILE --replace --reason TEXT -o PLAN` writes a
//! replacement plan (kind `replace`) when the policy has authorities; every
//! one of them must approve it (`pmf approve`), and `pmf apply` carries it
//! out, recording the reason, the approvals and the plan in each partner's
//! lineage. A partner's state changes only through an approved, recorded
//! plan: an operator alone cannot rewrite one with a reason of their own.

use std::collections::BTreeMap;
use std::path::Path;

use super::apply::ApprovedPlan;
use super::plan::OutputFormat as PlanFormat;
use super::{CliError, Exit, OutputFormat, UsageError};
use crate::runtime::engine::{Action, CompiledPolicy};
use crate::runtime::plan::{
    CarriedJson, InputFile, Plan, PlanEntry, PlanHeader, PlanKind, PolicyRef, Prediction, Totals,
    now_rfc3339, state_digest,
};
use crate::runtime::value::{self, Completeness, Value};
use crate::store::Store;
use crate::store::governance::Governing;
use crate::store::lineage::{Event, EventKind, Text};

/// The outcome a replacement records (its progress row says the same).
pub const REPLACED: &str = "replaced";

/// The authorities that must approve a replacement under `policy`: every
/// one it declares (a state set by hand skips every check the flow makes,
/// so no one authority's category covers it).
pub fn required(policy: &CompiledPolicy) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in &policy.authorities {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// What a replacement plan is made from.
pub struct Planned<'a> {
    /// The store, as given.
    pub store_path: &'a Path,
    /// The store, open.
    pub store: &'a Store,
    /// The policy and its own source files.
    pub policy: &'a CompiledPolicy,
    /// The policy's source files, carried by the plan.
    pub sources: BTreeMap<String, String>,
    /// The states file, as given, with its BLAKE3 (none for a pipe).
    pub states: InputFile,
    /// The new states.
    pub partners: &'a [Value],
    /// Why.
    pub reason: &'a str,
    /// Where to write the plan.
    pub output: &'a Path,
    /// How long the plan may be signed and applied (seconds).
    pub valid_for: u64,
    /// Output format of the summary.
    pub format: OutputFormat,
}

/// Write the replacement plan of `p`: an entry per partner of the file,
/// carrying the state the store holds (none for a partner it does not
/// hold yet) and the state that replaces it.
pub fn plan(p: &Planned<'_>) -> Result<Exit, CliError> {
    let policy = p.policy;
    let approvals = required(policy);
    let mut entries = Vec::with_capacity(p.partners.len());
    let mut replaced = 0usize;
    for v in p.partners {
        let id = policy.id_of(v);
        let held = p.store.bound_partner(id)?.map(|(p, _)| p);
        let state = match &held {
            Some(h) => {
                replaced += 1;
                serde_json::from_str(&h.state).map_err(|e| {
                    UsageError(format!("the stored state of `{id}` is unreadable: {e}"))
                })?
            }
            None => serde_json::Value::Null,
        };
        let version = policy.version_of(v).map(|v| v.to_string());
        entries.push(PlanEntry {
            id: id.to_string(),
            state_digest: None,
            from: held.and_then(|h| h.version).map(Into::into),
            to: version.map(Into::into),
            migration: None,
            categories: Vec::new(),
            approvals_required: approvals.iter().map(|a| a.as_str().into()).collect(),
            predicted: Prediction {
                score: None,
                band: None,
                action: Action::Proceed,
                reason: p.reason.into(),
                validation: "not run".into(),
            },
            fallback_risk: 0.0,
            target: Some(v.to_json(&policy.schema)),
            state: CarriedJson::of(&state),
            observed: None,
        });
    }
    // The illumination counts it was made beside (its risks are none).
    let history = p.store.illumination()?.name();
    let plan = Plan {
        format_version: crate::runtime::plan::FORMAT_VERSION,
        header: PlanHeader {
            kind: PlanKind::Replace,
            policy: PolicyRef {
                name: policy.name.clone(),
                hash: policy.hash.clone(),
            },
            created_at: now_rfc3339(),
            expires_at: Some(crate::runtime::plan::expires_after(p.valid_for)),
            policy_sources: p.sources.clone(),
            partners: InputFile {
                file: format!("store `{}`", p.store_path.display()),
                blake3: None,
            },
            target: p.states.clone(),
            observed: None,
            history,
            target_all: None,
            replaces_policy: None,
            store_id: p.store.id()?,
        },
        totals: Totals {
            partners: entries.len(),
            by_type: BTreeMap::from([(REPLACED.to_string(), entries.len())]),
            by_band: BTreeMap::from([("unknown".to_string(), entries.len())]),
            by_action: BTreeMap::from([("proceed".to_string(), entries.len())]),
            not_planned: Default::default(),
        },
        entries,
    };
    let text = serde_json::to_string(&plan).map_err(|e| UsageError(e.to_string()))? + "\n";
    crate::output::write(p.output, text.as_bytes(), false)
        .map_err(|e| UsageError(format!("cannot write `{}`: {e}", p.output.display())))?;
    let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
    let out = p.output.display();
    match p.format {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::json!({"format_version": 1, "plan": out.to_string(), "plan_hash": hash, "expires_at": plan.header.expires_at,
                "partners": plan.entries.len(), "replaced": replaced, "approvals_required": approvals})
        ),
        OutputFormat::Human => {
            outln!(
                "planned the replacement of {} partner state{} ({replaced} held, {} new) → {out} (plan {})",
                plan.entries.len(),
                if plan.entries.len() == 1 { "" } else { "s" },
                plan.entries.len() - replaced,
                super::view::short(&hash)
            );
            outln!(
                "  needs the approval of {}: `pmf approve {out} --key KEY -o approvals.json`, then `pmf apply {out} --approvals approvals.json`",
                approvals.join(", ")
            );
        }
    }
    Ok(Exit::Success)
}

/// A partner's state as the plan carries it: `None` for one the store did
/// not hold.
fn carried(e: &PlanEntry, policy: &CompiledPolicy) -> Result<Option<Value>, UsageError> {
    let json: serde_json::Value = serde_json::from_str(e.state.text())
        .map_err(|err| UsageError(format!("the plan's state of `{}`: {err}", e.id)))?;
    if json.is_null() {
        return Ok(None);
    }
    value::from_json(&policy.schema, &json, "", Completeness::Full)
        .map(Some)
        .map_err(|err| UsageError(format!("the plan's state of `{}`: {err}", e.id)))
}

/// Whether entry `e` names other approvals than `needed` (in any order).
fn names_other_approvals(e: &PlanEntry, needed: &[String]) -> bool {
    let named = |a: &str| e.approvals_required.iter().any(|n| n == a);
    e.approvals_required
        .iter()
        .any(|a| !needed.iter().any(|n| n == a))
        || needed.iter().any(|a| !named(a))
}

/// The entries of replacement plan `plan` that name other approvals than
/// a replacement needs under `policy` (every authority): one line each.
pub fn unfounded(plan: &Plan, policy: &CompiledPolicy) -> Vec<String> {
    let needed = required(policy);
    plan.entries
        .iter()
        .filter(|e| names_other_approvals(e, &needed))
        .map(|e| {
            format!(
                "partner `{}`: the plan says approvals {}; a replacement needs every authority's ({})",
                value::shown_id(&e.id),
                crate::runtime::plan_view::printable(&e.approvals_required.join(", ")),
                needed.join(", ")
            )
        })
        .collect()
}

/// Carry out a replacement plan (the caller holds the store's lock, has
/// verified the approvals and that the store is governed by the plan's
/// policy, or by none: `govern` is then what governs it from here on):
/// every partner must still be where the plan found it, and every
/// authority the replacement needs must have approved; otherwise nothing
/// is written. Partners the plan replaced already (a re-run) are skipped.
pub fn apply(r: &ApprovedPlan<'_>, govern: Option<&Governing>) -> Result<Exit, CliError> {
    let mut store = Store::open_existing(r.store)?;
    let policy = r.policy;
    let plan = &r.plan.plan;
    let needed = required(policy);
    let missing = r.missing(&needed);
    if !missing.is_empty() {
        let reason = format!(
            "replacing partner states needs the approval of every authority of the policy; missing: {}",
            missing.join(", ")
        );
        return Ok(r.refuser.refuse(&reason, &["nothing was replaced"]));
    }
    let mut work = Vec::new();
    for e in &plan.entries {
        if names_other_approvals(e, &needed) {
            let reason = format!(
                "the plan's entry for `{}` names other approvals than the policy requires for a replacement (the plan was edited); nothing was replaced",
                value::shown_id(&e.id)
            );
            return Ok(r.refuser.refuse(&reason, &[]));
        }
        // Carried out once: done when the partner's lineage records this
        // plan's run (a progress row deleted outside pmf does not make an
        // approved plan replayable, nor one inserted make it done).
        if store.plan_outcome(&e.id, &r.plan.hash)?.is_some() {
            continue;
        }
        let planned = carried(e, policy)?;
        let held = store.bound_partner(&e.id)?.map(|(p, _)| p);
        let now = match &held {
            Some(h) => {
                let json = serde_json::from_str(&h.state).unwrap_or_default();
                Some(
                    value::from_json(&policy.schema, &json, "", Completeness::Full)
                        .map_err(|err| UsageError(format!("stored state of `{}`: {err}", e.id)))?,
                )
            }
            None => None,
        };
        if now.as_ref().map(state_digest) != planned.as_ref().map(state_digest) {
            let reason = format!(
                "partner `{}` changed since the replacement was planned; plan it again",
                value::shown_id(&e.id)
            );
            return Ok(r.refuser.refuse(&reason, &["nothing was replaced"]));
        }
        let Some(target) = &e.target else {
            return Err(UsageError(format!(
                "the plan's entry for `{}` has no state to replace with",
                e.id
            ))
            .into());
        };
        let new = value::from_json(&policy.schema, target, "", Completeness::Full)
            .map_err(|err| UsageError(format!("the plan's new state of `{}`: {err}", e.id)))?;
        if policy.id_of(&new) != e.id {
            let reason = format!(
                "the plan's entry for `{}` carries the state of partner `{}` (the plan was edited); nothing was replaced",
                value::shown_id(&e.id),
                value::shown_id(policy.id_of(&new))
            );
            return Ok(r.refuser.refuse(&reason, &[]));
        }
        let broken = policy.ceilings_broken_by(&new);
        if !broken.is_empty() {
            let reason = format!(
                "the plan's new state of `{}` passes the policy's ceilings: {}; no partner's state may (the plan was edited, or the policy changed since); nothing was replaced",
                value::shown_id(&e.id),
                broken.join(", ")
            );
            return Ok(r.refuser.refuse(&reason, &[]));
        }
        work.push((e, held, new));
    }
    let reason = plan
        .entries
        .first()
        .map(|e| e.predicted.reason.clone())
        .unwrap_or_default();
    let marked = store.plan_marked(&r.plan.hash)?;
    let mut batch = store.begin(r.operator)?;
    if !work.is_empty() {
        for (authority, key, signature) in r.accepted {
            batch.add_approval(&r.plan.hash, authority, key, signature)?;
        }
        // A store no policy governs yet is governed by this one from here
        // on, as by the first plan applied to it.
        if let Some(g) = govern {
            batch.govern(g, r.kept_sources, &r.plan.hash, Vec::new(), &now_rfc3339())?;
        }
        if !marked {
            batch.mark_plan_whole(&r.plan.hash, &r.policy.hash, plan.entries.len() as u64)?;
        }
    }
    let signers = crate::runtime::apply::signers_of(r.signers, &needed);
    let mut stored = Vec::new();
    for (e, held, new) in &work {
        let version = policy.version_of(new).map(|v| v.to_string());
        let state = new.to_json(&policy.schema).to_string();
        let seq = batch.next_stable_seq(&e.id)?;
        let stable = batch.push_stable(&e.id, seq, version.as_deref(), &state)?;
        let digest = batch.put_partner(&e.id, &state, version.as_deref(), "active")?;
        let mut event = Event {
            partner: e.id.clone(),
            kind: if held.is_some() {
                EventKind::Replaced
            } else {
                EventKind::Imported
            },
            from: held
                .as_ref()
                .and_then(|h| h.version.as_deref().map(Text::from)),
            to: version.map(Text::from),
            detail: Some(e.predicted.reason.to_string()),
            outcome: Some(REPLACED.into()),
            approvals: needed.clone(),
            signers: signers.clone(),
            policy_hash: Some(policy.hash.clone()),
            plan_hash: Some(r.plan.hash.clone()),
            state: Some(digest),
            stable: vec![stable],
            time: now_rfc3339().into(),
            ..Event::default()
        };
        let mut chain = batch.chain(&e.id)?;
        batch.append(&mut chain, &mut event)?;
        stored.push(serde_json::to_string(&event).map_err(|e| UsageError(e.to_string()))?);
        batch.set_progress(&r.plan.hash, &e.id, REPLACED)?;
    }
    let signed = batch.commit()?;
    match r.format {
        PlanFormat::Json => {
            super::apply::write_events_and_summary(
                &stored,
                &r.plan.hash,
                plan.entries.len(),
                signed,
            );
        }
        PlanFormat::Human => {
            for (e, held, new) in &work {
                outln!(
                    "⇄ {} {} {} → {}",
                    value::shown_id(&e.id),
                    if held.is_some() {
                        "replaced"
                    } else {
                        "imported"
                    },
                    held.as_ref()
                        .and_then(|h| h.version.as_deref())
                        .unwrap_or("-"),
                    policy
                        .version_of(new)
                        .map_or("-".to_string(), |v| v.to_string())
                );
            }
            let skipped = plan.entries.len() - work.len();
            outln!(
                "replaced the state of {} partner{} ({}){}",
                work.len(),
                if work.len() == 1 { "" } else { "s" },
                crate::runtime::plan_view::printable(&reason),
                if skipped > 0 {
                    format!(" ({skipped} done by an earlier run)")
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(Exit::Success)
}
