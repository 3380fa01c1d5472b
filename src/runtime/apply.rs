//! Applying a plan: each partner walks the compiled phase graph in its own
//! transaction (the seed's shielding), speaking the rite of each phase it
//! enters, and every step lands in the lineage in that same transaction.
//! A crash leaves each partner either untouched or fully applied; a re-run
//! skips what is done.

use std::collections::{HashMap, HashSet};

use rusqlite::params;
use serde::Serialize;

use super::compile::State;
use super::engine::{Action, Assessment, CompiledPolicy, Outcome, Reason, Rule};
use super::plan::{LoadedPlan, PlanEntry, now_rfc3339, state_digest};
use super::value::Value;
use crate::graph::PhaseGraph;
use crate::store::lineage::{self, Event};
use crate::store::{Store, StoreError};
use crate::syntax::ast::EdgeKind;

/// Where a partner ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerOutcome {
    /// Already at its target.
    Unchanged,
    /// Migrated and resumed (continuity).
    Completed,
    /// Returned to its previous stable state.
    FellBack,
    /// Blocked and restricted.
    Restricted,
    /// Paused for governance review.
    AwaitingReview,
    /// Paused until the ecosystem recovers.
    Throttled,
}

impl PartnerOutcome {
    /// As stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerOutcome::Unchanged => "unchanged",
            PartnerOutcome::Completed => "completed",
            PartnerOutcome::FellBack => "fell_back",
            PartnerOutcome::Restricted => "restricted",
            PartnerOutcome::AwaitingReview => "awaiting_review",
            PartnerOutcome::Throttled => "throttled",
        }
    }

    /// Final outcomes are not retried by a re-run of the same plan.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            PartnerOutcome::AwaitingReview | PartnerOutcome::Throttled
        )
    }

    /// Partner status after this outcome.
    pub fn status(self) -> &'static str {
        match self {
            PartnerOutcome::Restricted => "restricted",
            PartnerOutcome::AwaitingReview => "awaiting_review",
            PartnerOutcome::Throttled => "throttled",
            _ => "active",
        }
    }
}

/// Why apply refused to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// The plan no longer matches the policy or the partners (exit 1).
    Stale(Vec<String>),
    /// A partner in the plan has no state anywhere (exit 1).
    Input(String),
    /// The store failed (exit 2).
    Store(StoreError),
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        ApplyError::Store(e)
    }
}

impl From<rusqlite::Error> for ApplyError {
    fn from(e: rusqlite::Error) -> Self {
        ApplyError::Store(e.into())
    }
}

/// What apply needs besides the plan.
pub struct ApplyInputs<'a> {
    /// The policy (its hash must match the plan's).
    pub policy: &'a CompiledPolicy,
    /// The plan.
    pub plan: &'a LoadedPlan,
    /// Partner states not yet in the store, by id (from the plan's partners file).
    pub initial_states: &'a HashMap<String, Value>,
    /// Observed metrics by partner id.
    pub observed: &'a HashMap<String, Value>,
    /// Authorities with a valid approval of this plan.
    pub approved: &'a HashSet<String>,
}

/// One partner's result.
#[derive(Debug, Clone, Serialize)]
pub struct PartnerResult {
    /// Partner id.
    pub id: String,
    /// Outcome.
    pub outcome: PartnerOutcome,
    /// Events written, in order.
    pub events: Vec<Event>,
    /// The same events' JSON as stored in the lineage (when written).
    pub events_json: Vec<String>,
    /// Skipped: done by an earlier run of this plan.
    pub skipped: bool,
}

/// The current state of every partner of the plan, checked against the
/// digests the plan recorded. Partners done by an earlier run of this plan
/// are not checked (their state has legitimately changed).
pub fn current_states(
    store: &Store,
    inputs: &ApplyInputs<'_>,
    done: &HashMap<String, String>,
) -> Result<HashMap<String, Value>, ApplyError> {
    let policy = inputs.policy;
    let plan = &inputs.plan.plan;
    let mut stale = Vec::new();
    if plan.header.policy.hash != policy.hash {
        stale.push(format!(
            "the policy changed since planning (planned with {}, now {})",
            short(&plan.header.policy.hash),
            short(&policy.hash)
        ));
    }
    let mut states = HashMap::new();
    for e in &plan.entries {
        if done
            .get(&e.id)
            .is_some_and(|o| outcome_from_str(o).is_some_and(PartnerOutcome::is_final))
        {
            continue;
        }
        let state = match store.partner(&e.id)? {
            Some(p) => {
                let json: serde_json::Value = serde_json::from_str(&p.state).map_err(|err| {
                    ApplyError::Store(StoreError(format!(
                        "stored state of `{}` is unreadable: {err}",
                        e.id
                    )))
                })?;
                super::value::from_json(&policy.schema, &json, "", super::value::Completeness::Full)
                    .map_err(|err| {
                        ApplyError::Input(format!(
                            "stored state of partner `{}` does not fit the schema: {err}",
                            e.id
                        ))
                    })?
            }
            None => inputs.initial_states.get(&e.id).cloned().ok_or_else(|| {
                ApplyError::Input(format!(
                    "partner `{}` is neither in the store nor in `{}`",
                    e.id, plan.header.partners_file
                ))
            })?,
        };
        if state_digest(&state) != e.state_digest {
            stale.push(format!("partner `{}` changed since planning", e.id));
        }
        states.insert(e.id.clone(), state);
    }
    if stale.is_empty() {
        Ok(states)
    } else {
        Err(ApplyError::Stale(stale))
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// Parse a stored outcome.
pub fn outcome_from_str(s: &str) -> Option<PartnerOutcome> {
    Some(match s {
        "unchanged" => PartnerOutcome::Unchanged,
        "completed" => PartnerOutcome::Completed,
        "fell_back" => PartnerOutcome::FellBack,
        "restricted" => PartnerOutcome::Restricted,
        "awaiting_review" => PartnerOutcome::AwaitingReview,
        "throttled" => PartnerOutcome::Throttled,
        _ => return None,
    })
}

/// How a phase ended.
enum Step {
    /// Go on along the success edge.
    Next,
    /// Take the failure edge.
    Fail(String),
    /// Stop here with this outcome.
    Stop(PartnerOutcome, String),
}

/// Apply one partner inside `tx`: its events, state and progress land
/// together or not at all, as `tx` is committed only after every partner of
/// its batch was written, and any error returns before the commit (the
/// whole batch rolls back; a crash loses at most the uncommitted batch,
/// which a re-run redoes). A partner's migration failing (fallback,
/// restriction, review) is an outcome, not an error: it never touches
/// another partner.
pub fn apply_partner(
    tx: &rusqlite::Transaction<'_>,
    inputs: &ApplyInputs<'_>,
    batch: &mut ApplyBatch,
    entry: &PlanEntry,
    partner: &Value,
) -> Result<PartnerResult, ApplyError> {
    let policy = inputs.policy;
    let own_target = entry.target.as_ref().and_then(|j| {
        super::value::from_json(&policy.schema, j, "", super::value::Completeness::Partial).ok()
    });
    let target = State::of(partner).with(own_target.as_ref().or(batch.target_all.as_ref()));
    let a = policy.assess(partner, target, target.with(inputs.observed.get(&entry.id)));
    // The state the partner reaches when it completes.
    let reached = target.merged();
    let now = now_rfc3339();
    let base = Event {
        partner: entry.id.clone(),
        from: policy.version_of(partner).map(|v| v.to_string()),
        to: policy.version_of(&reached).map(|v| v.to_string()),
        migration: a.migration.map(|m| policy.migrations[m].name.clone()),
        policy_hash: Some(policy.hash.clone()),
        plan_hash: Some(inputs.plan.hash.clone()),
        time: now.clone(),
        ..Event::default()
    };

    let tx: &rusqlite::Connection = tx;
    let mut events: Vec<Event> = Vec::new();
    let mut events_json: Vec<String> = Vec::new();
    // A partner the store has never seen has no chain yet.
    let existed: bool = tx
        .prepare_cached("SELECT 1 FROM partners WHERE id = ?1")?
        .exists([&entry.id])?;
    let mut chain = if existed {
        lineage::Chain::resume(tx, &entry.id, batch.global.clone())?
    } else {
        lineage::Chain::first(&entry.id, batch.global.clone())
    };
    let mut record = |tx: &rusqlite::Connection, mut e: Event| -> Result<(), ApplyError> {
        // The run's first event pins the policy and the plan; the chain
        // carries them to the events after it.
        if !events.is_empty() {
            e.policy_hash = None;
            e.plan_hash = None;
        }
        events_json.push(chain.append(tx, &mut e)?);
        events.push(e);
        Ok(())
    };

    let outcome = if a.nothing_to_do {
        PartnerOutcome::Unchanged
    } else {
        walk(policy, &policy.graph, &a, inputs.approved, &base, |e| {
            record(tx, e)
        })?
    };

    // The partner's state after the outcome.
    let canonical = |state: &Value| {
        let mut json = String::new();
        state.write_canonical(&policy.schema, &mut json);
        json
    };
    let partner_json = canonical(partner);
    let (state_json, version) = if outcome == PartnerOutcome::Completed {
        (canonical(&reached), base.to.clone())
    } else {
        (partner_json.clone(), base.from.clone())
    };
    tx.prepare_cached(
        "INSERT INTO partners (id, state, version, status, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, version = excluded.version,
           status = excluded.status, updated_at = excluded.updated_at",
    )?
    .execute(params![
        entry.id,
        state_json,
        version,
        outcome.status(),
        now
    ])?;
    let mut stable_seq: Option<i64> = (!existed).then_some(0);
    let mut push_stable = |json: &str, version: &Option<String>| -> rusqlite::Result<()> {
        let seq = match stable_seq {
            Some(n) => n + 1,
            None => tx
                .prepare_cached(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM stable_versions WHERE partner_id = ?1",
                )?
                .query_row([&entry.id], |r| r.get(0))?,
        };
        tx.prepare_cached(
            "INSERT INTO stable_versions (partner_id, seq, version, state) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![entry.id, seq, version, json])?;
        stable_seq = Some(seq);
        Ok(())
    };
    if !existed {
        // First time seen: its current state is its first stable state.
        push_stable(&partner_json, &base.from)?;
    }
    if outcome == PartnerOutcome::Completed {
        push_stable(&state_json, &version)?;
    }
    tx.prepare_cached(
        "INSERT INTO progress (plan_hash, partner_id, outcome) VALUES (?1, ?2, ?3)
         ON CONFLICT (plan_hash, partner_id) DO UPDATE SET outcome = excluded.outcome",
    )?
    .execute(params![inputs.plan.hash, entry.id, outcome.as_str()])?;
    // The partner is in: the batch goes on from its chain and counts its outcome.
    batch.global = chain.into_global();
    if let Some(m) = a.migration
        && matches!(
            outcome,
            PartnerOutcome::Completed | PartnerOutcome::FellBack
        )
    {
        let counts = batch.outcomes.entry((m, a.categories.clone())).or_default();
        counts.0 += 1;
        counts.1 += i64::from(outcome == PartnerOutcome::FellBack);
    }
    Ok(PartnerResult {
        id: entry.id.clone(),
        outcome,
        events,
        events_json,
        skipped: false,
    })
}

/// What the partners applied in one transaction share: the target for all
/// (read once), the head of the global chain (carried from partner to
/// partner), and the outcome counts that feed illumination; the head and
/// the counts are written by [`ApplyBatch::finish`] before the commit.
pub struct ApplyBatch {
    target_all: Option<Value>,
    global: lineage::GlobalHead,
    /// (migration type, categories) → (migrations, fallbacks).
    outcomes: std::collections::BTreeMap<(usize, Vec<usize>), (i64, i64)>,
}

impl ApplyBatch {
    /// Start a batch inside `tx`.
    pub fn begin(tx: &rusqlite::Connection, inputs: &ApplyInputs<'_>) -> Result<Self, ApplyError> {
        let policy = inputs.policy;
        Ok(ApplyBatch {
            target_all: inputs.plan.plan.header.target_all.as_ref().and_then(|j| {
                super::value::from_json(&policy.schema, j, "", super::value::Completeness::Partial)
                    .ok()
            }),
            global: lineage::GlobalHead::load(tx)?,
            outcomes: Default::default(),
        })
    }

    /// Write the global head and the outcome counts; the caller commits.
    pub fn finish(
        self,
        tx: &rusqlite::Connection,
        policy: &CompiledPolicy,
    ) -> Result<(), ApplyError> {
        self.global.save(tx)?;
        for ((m, categories), (total, fallbacks)) in &self.outcomes {
            let cats: Vec<&str> = categories
                .iter()
                .map(|&c| policy.categories[c].name.as_str())
                .collect();
            tx.prepare_cached(
                "INSERT INTO outcomes (migration, categories, total, fallbacks) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (migration, categories) DO UPDATE SET total = total + excluded.total, fallbacks = fallbacks + excluded.fallbacks",
            )?
            .execute(params![policy.migrations[*m].name, cats.join("+"), total, fallbacks])?;
        }
        Ok(())
    }
}

/// Walk the phase graph from detection; `record` writes each event (the
/// store during `apply`, a list during `pmf test`).
pub fn walk(
    policy: &CompiledPolicy,
    graph: &PhaseGraph,
    a: &Assessment,
    approved: &HashSet<String>,
    base: &Event,
    mut record: impl FnMut(Event) -> Result<(), ApplyError>,
) -> Result<PartnerOutcome, ApplyError> {
    let event = |kind: &str, phase: Option<&str>| Event {
        kind: kind.to_string(),
        phase: phase.map(str::to_string),
        ..base.clone()
    };
    let Some(mut at) = graph.index("detection") else {
        record(Event {
            detail: Some("the flow has no detection phase".into()),
            ..event("awaiting_review", None)
        })?;
        return Ok(PartnerOutcome::AwaitingReview);
    };
    let mut taken: HashMap<usize, u32> = HashMap::new();
    let mut fell_back = false;
    let mut staged = false;
    for _ in 0..10_000 {
        let phase = &graph.phases[at];
        record(Event {
            rite: phase.rite.clone(),
            ..event("phase_entered", Some(&phase.name))
        })?;
        let step = match phase.name.as_str() {
            "detection" => match a.migration {
                Some(_) => Step::Next,
                None => Step::Stop(
                    PartnerOutcome::AwaitingReview,
                    "no migration type matches this change".into(),
                ),
            },
            "preparation" => {
                let missing: Vec<&str> = a
                    .approvals
                    .iter()
                    .map(|&i| policy.authorities[i].as_str())
                    .filter(|n| !approved.contains(*n))
                    .collect();
                if missing.is_empty() {
                    if !a.approvals.is_empty() {
                        record(Event {
                            approvals: a
                                .approvals
                                .iter()
                                .map(|&i| policy.authorities[i].clone())
                                .collect(),
                            ..event("approved", Some(&phase.name))
                        })?;
                    }
                    Step::Next
                } else {
                    record(Event {
                        detail: Some(format!("approvals missing: {}", missing.join(", "))),
                        ..event("approvals_missing", Some(&phase.name))
                    })?;
                    Step::Stop(
                        PartnerOutcome::AwaitingReview,
                        format!("awaiting approval by {}", missing.join(", ")),
                    )
                }
            }
            "transition" => {
                staged = true;
                let rule = |rules: &[Rule], fails: &[usize], act: &str| {
                    fails.iter().copied().find(|&r| rules[r].action == act)
                };
                if let Some(&c) = a.ceiling_violations.first() {
                    Step::Stop(
                        PartnerOutcome::Restricted,
                        policy.reason(Reason::Ceiling(c)),
                    )
                } else if let Some(r) =
                    rule(&policy.compatibility, &a.compatibility_failures, "restrict")
                {
                    Step::Stop(
                        PartnerOutcome::Restricted,
                        policy.reason(Reason::Compatibility(r)),
                    )
                } else if let Some(&r) = a.compatibility_failures.first() {
                    Step::Fail(policy.reason(Reason::Compatibility(r)))
                } else if let Some(r) = rule(
                    &policy.sustainability,
                    &a.sustainability_failures,
                    "throttle",
                ) {
                    Step::Stop(
                        PartnerOutcome::Throttled,
                        policy.reason(Reason::Sustainability(r)),
                    )
                } else {
                    Step::Next
                }
            }
            "validation" => {
                let failing: Vec<String> = a
                    .validation
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| **o == a.verdict && **o != Outcome::Passed)
                    .map(|(c, _)| policy.check_name(c))
                    .collect();
                record(Event {
                    outcome: Some(a.verdict.as_str().to_string()),
                    detail: (!failing.is_empty()).then(|| failing.join(", ")),
                    ..event("validated", Some(&phase.name))
                })?;
                match a.verdict {
                    Outcome::Passed => Step::Next,
                    Outcome::Inconclusive => Step::Stop(
                        PartnerOutcome::AwaitingReview,
                        format!("validation inconclusive ({})", failing.join(", ")),
                    ),
                    Outcome::Error | Outcome::Failed => Step::Fail(format!(
                        "validation {} ({})",
                        a.verdict.as_str(),
                        failing.join(", ")
                    )),
                }
            }
            "stabilization" => {
                let band = a.band.map(|b| &policy.bands[b]);
                record(Event {
                    health: a.score.map(|s| (s * 100.0).round() / 100.0),
                    band: band.map(|b| b.status.clone()),
                    action: band.map(|b| b.action.as_str().to_string()),
                    detail: band.map(|b| b.label.clone()),
                    ..event("health", Some(&phase.name))
                })?;
                match band.map(|b| b.action) {
                    None => Step::Stop(
                        PartnerOutcome::AwaitingReview,
                        "health unknown: a factor was not observed".into(),
                    ),
                    Some(Action::Proceed | Action::Monitor | Action::None) => Step::Next,
                    Some(Action::Review) => Step::Stop(
                        PartnerOutcome::AwaitingReview,
                        "health band requires review".into(),
                    ),
                    Some(Action::Throttle) => {
                        Step::Stop(PartnerOutcome::Throttled, "health band throttles".into())
                    }
                    Some(Action::Fallback) => Step::Fail("health band falls back".into()),
                    Some(Action::Restrict) => {
                        Step::Stop(PartnerOutcome::Restricted, "health band restricts".into())
                    }
                }
            }
            "fallback" => {
                fell_back = true;
                record(Event {
                    to: base.from.clone(),
                    detail: Some("returned to the previous stable state".into()),
                    ..event("fallback", Some(&phase.name))
                })?;
                Step::Next
            }
            "continuity" => {
                let outcome = if fell_back || !staged {
                    PartnerOutcome::FellBack
                } else {
                    PartnerOutcome::Completed
                };
                if outcome == PartnerOutcome::Completed {
                    record(Event {
                        outcome: Some("completed".into()),
                        ..event("completed", Some(&phase.name))
                    })?;
                    if base.from != base.to {
                        record(Event {
                            rite: policy.release_rite.clone(),
                            detail: base.from.as_ref().map(|v| format!("version {v} released")),
                            ..event("released", None)
                        })?;
                    }
                } else {
                    record(Event {
                        outcome: Some("fell_back".into()),
                        ..event("resumed", Some(&phase.name))
                    })?;
                }
                return Ok(outcome);
            }
            _ => Step::Next,
        };
        let kind = match step {
            Step::Next => EdgeKind::Next,
            Step::Fail(why) => {
                record(Event {
                    detail: Some(why),
                    ..event("phase_failed", Some(&phase.name))
                })?;
                EdgeKind::Failure
            }
            Step::Stop(outcome, why) => {
                let action = match outcome {
                    PartnerOutcome::Restricted => Action::Restrict,
                    PartnerOutcome::Throttled => Action::Throttle,
                    _ => Action::Review,
                };
                record(Event {
                    outcome: Some(outcome.as_str().to_string()),
                    action: Some(action.as_str().to_string()),
                    detail: Some(why),
                    ..event(outcome.as_str(), Some(&phase.name))
                })?;
                return Ok(outcome);
            }
        };
        let next = graph.edges.iter().enumerate().find(|(i, e)| {
            e.from == at
                && e.kind == kind
                && e.bound
                    .is_none_or(|b| taken.get(i).copied().unwrap_or(0) < b)
        });
        match next {
            Some((i, e)) => {
                *taken.entry(i).or_default() += 1;
                at = e.to;
            }
            None if kind == EdgeKind::Failure => {
                // No failure edge: the partner falls back where it stands.
                record(Event {
                    to: base.from.clone(),
                    detail: Some(format!(
                        "`{}` has no failure edge: returned to the previous stable state",
                        phase.name
                    )),
                    ..event("fallback", Some(&phase.name))
                })?;
                return Ok(PartnerOutcome::FellBack);
            }
            None => {
                record(Event {
                    outcome: Some("awaiting_review".into()),
                    detail: Some(format!("no way on from phase `{}`", phase.name)),
                    ..event("awaiting_review", Some(&phase.name))
                })?;
                return Ok(PartnerOutcome::AwaitingReview);
            }
        }
    }
    record(Event {
        detail: Some("the flow did not reach continuity".into()),
        ..event("awaiting_review", None)
    })?;
    Ok(PartnerOutcome::AwaitingReview)
}
