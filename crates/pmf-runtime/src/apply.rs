//! Applying a plan: each partner walks the compiled phase graph in its own
//! transaction (the seed's shielding), speaking the rite of each phase it
//! enters, and every step lands in the lineage in that same transaction.
//! A crash leaves each partner either untouched or fully applied; a re-run
//! skips what is done.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::compile::State;
use super::engine::{Action, Assessment, CompiledPolicy, Reason, Rule, Verdict};
use super::plan::{CarriedJson, LoadedPlan, PlanEntry, state_digest};
use super::value::{CanonicalMemo, Value};
pub use pmf_compiler::model::vocabulary::PartnerOutcome;
use pmf_compiler::model::vocabulary::Phase;
use pmf_store::batch::{Batch, PartnerChain, PreparedState, SealedRun};
use pmf_store::illumination::Illumination;
use pmf_store::interned::Texts;
use pmf_store::lineage::{Event, EventKind, LastEvent, Text};
use pmf_store::{Store, StoreError};
use pmf_syntax::ast::EdgeKind;

/// The kind of the event a walk that stopped with `outcome` ends on.
fn outcome_event(outcome: PartnerOutcome) -> EventKind {
    match outcome {
        PartnerOutcome::Restricted => EventKind::Restricted,
        PartnerOutcome::Throttled => EventKind::Throttled,
        PartnerOutcome::AwaitingReview => EventKind::AwaitingReview,
        PartnerOutcome::FellBack => EventKind::Fallback,
        PartnerOutcome::Completed => EventKind::Completed,
        PartnerOutcome::Unchanged => EventKind::Unchanged,
    }
}

/// Why apply refused to run.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The plan no longer matches the policy or the partners (exit 1):
    /// each reason.
    #[error("{}", .0.join("; "))]
    Stale(Vec<String>),
    /// A partner in the plan has no state anywhere (exit 1).
    #[error("{0}")]
    Input(String),
    /// The store failed (exit 2).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What apply needs besides the plan.
pub struct ApplyInputs<'a> {
    /// The policy (its hash must match the plan's).
    pub policy: &'a CompiledPolicy,
    /// The plan.
    pub plan: &'a LoadedPlan,
    /// Observed metrics by partner id.
    pub observed: &'a HashMap<String, Value>,
    /// Authorities with a valid approval of this plan.
    pub approved: &'a HashSet<String>,
    /// The keys that signed for each approving authority (hex).
    pub signers: &'a HashMap<String, Vec<String>>,
}

/// The keys that signed for `authorities`, as the lineage records them
/// (`AUTHORITY:KEY`), from the keys that signed for each authority.
pub fn signers_of(signers: &HashMap<String, Vec<String>>, authorities: &[String]) -> Vec<String> {
    authorities
        .iter()
        .flat_map(|auth| {
            signers
                .get(auth)
                .into_iter()
                .flatten()
                .map(move |k| format!("{auth}:{k}"))
        })
        .collect()
}

/// One partner's result.
#[derive(Debug, Clone, Serialize)]
pub struct PartnerResult {
    /// Partner id.
    pub id: String,
    /// Outcome.
    pub outcome: PartnerOutcome,
    /// Events written, in order (the lineage's: a phase's entry is
    /// folded into the event that follows it in the same phase).
    pub events: Vec<Event>,
    /// Skipped: done by an earlier run of this plan, or still waiting
    /// for what it waited for then.
    pub skipped: bool,
    /// Why a skipped partner is still pending.
    pub pending: Option<String>,
}

impl PartnerResult {
    /// Why the partner ended where it did, in words: `completed`, `already
    /// at its target`, or the reason of a stop or a fallback (`the target
    /// breaks the ceiling on `power``, `health 66 is in band `vulnerable``,
    /// `awaiting approval by SCO`); for a partner skipped by a re-run, what
    /// it still waits for, or `done by an earlier run`.
    pub fn reason(&self) -> String {
        self.why(false)
    }

    /// [`PartnerResult::reason`] without what differs between partners
    /// stopped for the same cause (a health score): partners are counted
    /// by it in a summary.
    pub fn reason_kind(&self) -> String {
        self.why(true)
    }

    fn why(&self, general: bool) -> String {
        if self.skipped {
            return match &self.pending {
                Some(p) => p.clone(),
                None => "done by an earlier run".into(),
            };
        }
        // A stop or failure in stabilization: the health and band it had.
        let health = |phase: Option<&str>| -> Option<String> {
            if phase != Some(Phase::Stabilization.as_str()) {
                return None;
            }
            let e = self
                .events
                .iter()
                .rev()
                .find(|e| e.kind == EventKind::Health)?;
            let band = e.band.as_deref()?;
            let score = e.health?;
            Some(if general {
                format!("health in band `{band}`")
            } else {
                format!("health {} is in band `{band}`", score.round())
            })
        };
        let from = |e: &Event| health(e.phase.as_deref()).or_else(|| e.detail.clone());
        match self.outcome {
            PartnerOutcome::Completed => "completed".into(),
            PartnerOutcome::Unchanged => "already at its target".into(),
            PartnerOutcome::FellBack => self
                .events
                .iter()
                .find(|e| e.kind == EventKind::PhaseFailed)
                .and_then(from)
                .or_else(|| {
                    self.events
                        .iter()
                        .find(|e| e.kind == EventKind::Fallback)
                        .and_then(|e| e.detail.clone())
                })
                .unwrap_or_else(|| "returned to the previous stable state".into()),
            outcome => self
                .events
                .iter()
                .rev()
                .find(|e| e.kind == outcome_event(outcome))
                .and_then(from)
                .unwrap_or_else(|| outcome.as_str().replace('_', " ")),
        }
    }
}

/// What `apply` knows of the partners of a plan before it runs: where
/// each entry of the plan starts, in the plan's order (a plan names a
/// partner once).
pub struct Current {
    /// One per entry of the plan, in its order.
    pub starts: Vec<Start>,
}

/// Where apply starts the partner of a plan entry from.
#[derive(Debug)]
pub enum Start {
    /// This plan finished it in an earlier run (from `progress`, or from
    /// the lineage when `progress` lost it): its outcome.
    Done(String),
    /// It is walked.
    Walk {
        /// Its current state.
        state: Value,
        /// The last event the store holds of it.
        last: Option<Box<LastEvent>>,
        /// Whether the store did not hold it (read under the store's write
        /// lock, so still absent when it is applied: no second read).
        absent: bool,
    },
}

/// Why `plan` is stale under `policy`, when it was made under another.
pub fn policy_changed(plan: &super::plan::Plan, policy: &CompiledPolicy) -> Option<String> {
    (plan.header.policy.hash != policy.hash).then(|| {
        format!(
            "the policy changed since planning (planned with {}, now {})",
            short(&plan.header.policy.hash),
            short(&policy.hash)
        )
    })
}

/// The current state of every partner of the plan, checked against the
/// states the plan carries. Partners done by an earlier run of this plan
/// are not checked (their state has legitimately changed); the lineage
/// says which they are even if `progress` was lost.
pub fn current_states(
    store: &Store,
    inputs: &ApplyInputs<'_>,
    progress: HashMap<String, String>,
    carried: Vec<CarriedJson>,
) -> Result<Current, ApplyError> {
    let policy = inputs.policy;
    let plan = &inputs.plan.plan;
    let mut stale: Vec<String> = policy_changed(&inputs.plan.plan, policy)
        .into_iter()
        .collect();
    let is_final = |o: &str| outcome_from_str(o).is_some_and(PartnerOutcome::is_final);
    // Every partner is read from one snapshot, under one lock.
    let _snapshot = store.snapshot()?;
    // A store that holds no partner (a first apply) is not asked for each.
    let empty = store.holds_no_partner()?;
    // The store is read in order; each state is then parsed and checked
    // on every core; what they give is used in order again (the first
    // error in the plan's order is the one reported).
    enum Read<'p> {
        Done(String),
        /// The entry, its stored state and last event, if the store holds it.
        Walk(&'p PlanEntry, Option<(String, Option<Box<LastEvent>>)>),
    }
    let mut work: Vec<Read<'_>> = Vec::with_capacity(plan.entries.len());
    for e in &plan.entries {
        if let Some(o) = progress.get(&e.id).filter(|o| is_final(o)) {
            // A partner is skipped as done only when its lineage records
            // this plan's outcome: a progress row inserted or edited outside
            // pmf would otherwise leave it unwalked, reported done.
            if store.plan_outcome(&e.id, &inputs.plan.hash)?.as_deref() != Some(o.as_str()) {
                return Err(StoreError::ProgressEdited {
                    partner: e.id.clone(),
                    outcome: o.clone(),
                }
                .into());
            }
            work.push(Read::Done(o.clone()));
            continue;
        }
        let bound = if empty {
            None
        } else {
            store.bound_partner(&e.id)?
        };
        // Not in the store yet: the state the plan carries.
        work.push(Read::Walk(
            e,
            bound.map(|(p, last)| (p.state, last.map(Box::new))),
        ));
    }
    if carried.len() != work.len() {
        return Err(ApplyError::Input(format!(
            "{} states carried for a plan of {} partners",
            carried.len(),
            work.len()
        )));
    }
    use rayon::prelude::*;
    // Each carried state is dropped once read: the plan's texts and the
    // states read from them are not all held at once.
    let parsed: Vec<Option<Result<(Value, bool), ApplyError>>> = work
        .par_iter()
        .zip(carried.into_par_iter())
        .map_init(
            || super::fast::ParseCache::new(&policy.schema, super::value::Completeness::Full),
            |cache, (read, carried)| match read {
                Read::Done(_) => None,
                Read::Walk(e, bound) => {
                    let stored = bound.as_ref().map(|(state, _)| state.as_str());
                    Some(start_state(policy, e, &carried, stored, cache))
                }
            },
        )
        .collect();
    let mut starts = Vec::with_capacity(work.len());
    for (read, parsed) in work.into_iter().zip(parsed) {
        let (e, bound, parsed) = match (read, parsed) {
            (Read::Done(outcome), _) => {
                starts.push(Start::Done(outcome));
                continue;
            }
            (Read::Walk(e, bound), Some(parsed)) => (e, bound, parsed),
            // Every entry walked was parsed: a start for each, in order.
            (Read::Walk(e, _), None) => {
                return Err(ApplyError::Input(format!(
                    "the state of partner `{}` was not read",
                    e.id
                )));
            }
        };
        let absent = bound.is_none();
        let last = bound.and_then(|(_, last)| last);
        let (state, unchanged) = parsed?;
        // Finished by this plan in a run whose progress was lost?
        let finished = if last.is_some() && !progress.contains_key(&e.id) {
            store
                .plan_outcome(&e.id, &inputs.plan.hash)?
                .filter(|o| is_final(o))
        } else {
            None
        };
        if let Some(outcome) = finished {
            starts.push(Start::Done(outcome));
            continue;
        }
        if !unchanged {
            stale.push(format!("partner `{}` changed since planning", e.id));
        }
        starts.push(Start::Walk {
            state,
            last,
            absent,
        });
    }
    if stale.is_empty() {
        Ok(Current { starts })
    } else {
        Err(ApplyError::Stale(stale))
    }
}

/// The state apply starts `e` from ([`parse_state`]), and whether it is
/// still the one planned: a stored state against the one the plan carries
/// (or format 3's digest of it); a state taken from the plan is the one
/// planned (format 3: when its digest agrees).
fn start_state(
    policy: &CompiledPolicy,
    e: &PlanEntry,
    carried: &CarriedJson,
    stored: Option<&str>,
    cache: &mut super::fast::ParseCache,
) -> Result<(Value, bool), ApplyError> {
    let state = parse_state(policy, e, carried, stored, cache)?;
    let planned = match (stored, &e.state_digest) {
        (None, None) => return Ok((state, true)),
        (None, Some(digest)) => digest.clone(),
        (Some(_), _) => e
            .planned_digest_of(carried, &policy.schema, Some(cache))
            .map_err(|err| {
                ApplyError::Input(format!(
                    "the plan's state of partner `{}` is not valid: {err}",
                    e.id
                ))
            })?,
    };
    let unchanged = state_digest(&state) == planned;
    Ok((state, unchanged))
}

/// The state apply starts `e` from: the stored one (`stored`, its JSON), or
/// the one the plan carries for a partner the store does not hold.
fn parse_state(
    policy: &CompiledPolicy,
    e: &PlanEntry,
    carried: &CarriedJson,
    stored: Option<&str>,
    cache: &mut super::fast::ParseCache,
) -> Result<Value, ApplyError> {
    match stored {
        Some(json) => {
            let json: serde_json::Value =
                serde_json::from_str(json).map_err(|source| StoreError::UnreadableState {
                    partner: e.id.clone(),
                    source,
                })?;
            super::value::from_json(&policy.schema, &json, "", super::value::Completeness::Full)
                .map_err(|err| {
                    ApplyError::Input(format!(
                        "stored state of partner `{}` does not fit the schema: {err}",
                        e.id
                    ))
                })
        }
        None => {
            let state = carried
                .read(
                    &policy.schema,
                    super::value::Completeness::Full,
                    Some(cache),
                )
                .map_err(|err| {
                    ApplyError::Input(format!(
                        "the plan's state of partner `{}` is not valid: {err}",
                        super::value::shown_id(&e.id)
                    ))
                })?;
            // The state a plan carries is its partner's: an entry edited to
            // another id would store one partner under another's name.
            if policy.id_of(&state) != e.id {
                return Err(ApplyError::Input(format!(
                    "the plan's entry for partner `{}` carries the state of partner `{}` (the plan was edited; make a new one with `pmf plan`)",
                    super::value::shown_id(&e.id),
                    super::value::shown_id(policy.id_of(&state))
                )));
            }
            Ok(state)
        }
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// The outcome stored as `s`.
pub fn outcome_from_str(s: &str) -> Option<PartnerOutcome> {
    PartnerOutcome::parse(s)
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

/// What a paused partner waits for: the approvals it needed that were
/// given. The same plan walks it again only when this changes.
fn waits_digest(policy: &CompiledPolicy, a: &Assessment, approved: &HashSet<String>) -> String {
    let mut h = Sha256::new();
    h.update(b"pmf-waits-v1");
    for name in policy.authority_names(&a.approvals) {
        if approved.contains(name) {
            h.update(b"\0");
            h.update(name.as_bytes());
        }
    }
    pmf_store::lineage::hex32(&h.finalize().into())
}

/// Apply one partner in `batch`: its events, state and progress land
/// together or not at all, as the batch commits only after every partner
/// of it was written, and any error returns before the commit (the whole
/// batch rolls back; a crash loses at most the uncommitted batch, which a
/// re-run redoes). A partner's migration failing (fallback, restriction,
/// review) is an outcome, not an error: it never touches another partner.
/// A partner this plan paused is walked again only when what it waits for
/// changed (`prior` is its last event). `absent`: the store was found not
/// to hold the partner ([`Current::absent`]), so its row is not read again.
///
/// The reference for [`prepare_partner`] then [`record_partner`]: the
/// same, everything done here, in the batch.
pub fn apply_partner(
    batch: &mut Batch<'_>,
    inputs: &ApplyInputs<'_>,
    shared: &mut ApplyBatch,
    entry: &PlanEntry,
    partner: &Value,
    prior: Option<&LastEvent>,
    absent: bool,
) -> Result<PartnerResult, ApplyError> {
    let prepared = prepare_partner(
        inputs,
        shared.target_all.as_ref(),
        entry,
        partner,
        prior,
        None,
        &mut shared.canonical,
    )?;
    record_partner(batch, inputs, shared, prepared, absent)
}

/// A partner walked ahead of its batch by [`prepare_partner`], written by
/// [`record_partner`].
pub struct PreparedPartner {
    id: String,
    walked: Result<Walked, PartnerResult>,
}

impl PreparedPartner {
    /// Whether its rows and run were made ahead ([`prepare_partner`] with
    /// the texts, for a partner the store did not hold), with every state
    /// packed and every event's stored form made: [`record_partner`] then
    /// only writes.
    pub fn is_ready(&self) -> bool {
        self.walked.as_ref().is_ok_and(|w| {
            w.ready.as_ref().is_some_and(|(rows, sealed)| {
                sealed.is_stored()
                    && rows
                        .stable
                        .iter()
                        .map(|(_, _, s)| s)
                        .chain(rows.row.as_ref().map(|(s, _)| s))
                        .all(PreparedState::is_packed)
            })
        })
    }

    /// Its events as [`record_partner`] will record them, when its run was
    /// sealed ahead (each with its partner, position and time): they can
    /// be shown before they are written.
    pub fn sealed_events(&self) -> Option<&[Event]> {
        let walked = self.walked.as_ref().ok()?;
        walked.ready.as_ref().map(|_| walked.events.as_slice())
    }

    /// Drop, on the thread that prepared it, what [`record_partner`] will
    /// not read: when its run's stored form and its rows were made ahead,
    /// and it completed or was unchanged (its result's reason needs no
    /// event), its events (shown ahead if at all) and the texts its rows
    /// were made from. Its result then has no events. Whether it did.
    pub fn shed(&mut self) -> bool {
        let Ok(walked) = &mut self.walked else {
            return false;
        };
        let stored = walked
            .ready
            .as_ref()
            .is_some_and(|(_, sealed)| sealed.is_stored());
        if !stored
            || !matches!(
                walked.outcome,
                PartnerOutcome::Completed | PartnerOutcome::Unchanged
            )
        {
            return false;
        }
        walked.events = Vec::new();
        walked.base = Event::default();
        walked.partner_json = String::new();
        walked.state_json = String::new();
        walked.waits = String::new();
        true
    }
}

/// What a partner's walk gave, before its rows are written.
struct Walked {
    outcome: PartnerOutcome,
    events: Vec<Event>,
    /// What the walk's events share (versions, migration, time).
    base: Event,
    /// The partner's state before, and after the outcome (canonical).
    partner_json: String,
    state_json: String,
    /// The version after the outcome.
    version: Option<Text>,
    waits: String,
    migration: Option<usize>,
    categories: Vec<usize>,
    /// Its rows and sealed run, made ahead for a partner the store does
    /// not hold.
    ready: Option<(Rows, SealedRun)>,
}

/// The rows a partner's walk writes.
struct Rows {
    /// Stable versions: number, version, state.
    stable: Vec<(i64, Option<Text>, PreparedState)>,
    /// The partner's row (state, version), when it changes.
    row: Option<(PreparedState, Option<Text>)>,
}

/// What the partners of a plan share while they are prepared: the target
/// for all, read once.
pub fn target_for_all(inputs: &ApplyInputs<'_>) -> Option<Value> {
    let policy = inputs.policy;
    inputs.plan.plan.header.target_all.as_ref().and_then(|j| {
        super::value::from_json(&policy.schema, j, "", super::value::Completeness::Partial).ok()
    })
}

/// Walk one partner without the store: its assessment, its walk of the
/// phase graph and its states before and after. Reads and writes nothing,
/// so partners are prepared on any thread while earlier ones are written.
/// `ahead`: the texts the store numbers so far, given when the store was
/// found not to hold the partner ([`Current::absent`]): its rows, its
/// events' chain hashes and their stored forms are then made here too.
/// `memo`: the thread's canonical texts of shared values, for the states.
/// [`record_partner`] writes the result.
pub fn prepare_partner(
    inputs: &ApplyInputs<'_>,
    target_all: Option<&Value>,
    entry: &PlanEntry,
    partner: &Value,
    prior: Option<&LastEvent>,
    ahead: Option<&Texts>,
    memo: &mut CanonicalMemo,
) -> Result<PreparedPartner, ApplyError> {
    let policy = inputs.policy;
    let own_target = entry.target.as_ref().and_then(|j| {
        super::value::from_json(&policy.schema, j, "", super::value::Completeness::Partial).ok()
    });
    let target = State::of(partner).with(own_target.as_ref().or(target_all));
    let a = policy.assess(partner, target, target.with(inputs.observed.get(&entry.id)));
    let waits = waits_digest(policy, &a, inputs.approved);
    if let Some(p) = prior
        && p.plan_hash.as_deref() == Some(inputs.plan.hash.as_str())
        && p.waits.as_deref() == Some(waits.as_str())
        && let Some(outcome) = p.outcome.as_deref().and_then(outcome_from_str)
        && !outcome.is_final()
    {
        return Ok(PreparedPartner {
            id: entry.id.clone(),
            walked: Err(PartnerResult {
                id: entry.id.clone(),
                outcome,
                events: Vec::new(),
                skipped: true,
                pending: p.detail.clone(),
            }),
        });
    }
    // The state the partner reaches when it completes.
    let reached = target.merged();
    // What every event of the walk says. Its partner and position are set
    // when the run is sealed, and its time once the walk's events are
    // folded (the walk copies `base` into each event, most of which are
    // folded away).
    let mut base = Event {
        from: policy.version_text_of(partner),
        to: policy.version_text_of(&reached),
        migration: a
            .migration
            .and_then(|m| policy.migrations.get(m))
            .map(|m| m.name.as_str().into()),
        // The policy and plan hashes are set on the first event only.
        ..Event::default()
    };

    // Room for a walk's events, folded (seven on average): no growing.
    let mut events: Vec<Event> = Vec::with_capacity(8);
    let outcome = if a.nothing_to_do {
        PartnerOutcome::Unchanged
    } else {
        let promoted = prior.is_some_and(|p| {
            p.kind == EventKind::ReviewPromoted
                && p.plan_hash.as_deref() == Some(inputs.plan.hash.as_str())
        });
        walk(
            policy,
            &a,
            inputs.approved,
            promoted,
            inputs.observed.contains_key(&entry.id),
            &base,
            |e| {
                push_folded(&mut events, e);
                Ok(())
            },
        )?
    };

    base.time = pmf_store::clock::rfc3339_again(pmf_store::clock::now_secs());
    for e in &mut events {
        e.time.clone_from(&base.time);
    }
    // A paused walk's last event names the categories its migration
    // touches: a review decision that ends the walk counts it under them
    // (the fallback risks of later plans are learned from those counts).
    if !outcome.is_final()
        && let Some(last) = events.last_mut()
    {
        last.categories = Some(
            policy
                .category_names(&a.categories)
                .map(str::to_string)
                .collect(),
        );
        // And until when its plan may continue it: what a review decision
        // is judged by, signed with the walk (the store's note of it is
        // not).
        last.expires_at
            .clone_from(&inputs.plan.plan.header.expires_at);
    }

    // The partner's state after the outcome.
    let mut canonical = |state: &Value| memo.text_of(state, &policy.schema);
    let partner_json = canonical(partner);
    let (state_json, version) = if outcome == PartnerOutcome::Completed {
        (canonical(&reached), base.to.clone())
    } else {
        (partner_json.clone(), base.from.clone())
    };
    let mut walked = Walked {
        outcome,
        events,
        base,
        partner_json,
        state_json,
        version,
        waits,
        migration: a.migration,
        categories: a.categories,
        ready: None,
    };
    if let Some(texts) = ahead {
        let rows = walked.rows(inputs, None, || Ok(1), Some(texts))?;
        let sealed = PartnerChain::start(&entry.id).seal(&mut walked.events, texts);
        walked.ready = Some((rows, sealed));
    }
    Ok(PreparedPartner {
        id: entry.id.clone(),
        walked: Ok(walked),
    })
}

impl Walked {
    /// The rows the walk writes over `stored` (the partner's row, if the
    /// store holds it; `next_seq` gives its next stable version's number),
    /// and its events completed: the run's first event pins the policy and
    /// the plan; its last records the row it left, the stable versions,
    /// where the partner ended in this plan and what it waits for.
    /// `texts`: to pack the states ahead with.
    fn rows(
        &mut self,
        inputs: &ApplyInputs<'_>,
        stored: Option<&pmf_store::StoredPartner>,
        next_seq: impl FnOnce() -> Result<i64, StoreError>,
        texts: Option<&Texts>,
    ) -> Result<Rows, ApplyError> {
        let outcome = self.outcome;
        let status = outcome.status();
        let changes_row = stored.is_none_or(|s| {
            s.state != self.state_json
                || s.version.as_deref() != self.version.as_deref()
                || s.status != status
        });
        if self.events.is_empty() && changes_row {
            self.events.push(Event {
                kind: EventKind::Unchanged,
                outcome: Some(outcome.as_str().into()),
                detail: Some("already at its target".into()),
                ..self.base.clone()
            });
        }
        // The row's digest, then the texts are the rows' own (a walk's
        // rows are made once).
        let digest = pmf_store::row_digest(&self.state_json, self.version.as_deref(), status);
        let state = PreparedState::new(std::mem::take(&mut self.state_json), texts);
        let mut stable = Vec::new();
        let mut seq = match stored {
            None => 1,
            Some(_) if outcome == PartnerOutcome::Completed => next_seq()?,
            Some(_) => 0,
        };
        if stored.is_none() {
            // First time seen: its current state is its first stable state.
            let first = if outcome == PartnerOutcome::Completed {
                PreparedState::new(std::mem::take(&mut self.partner_json), texts)
            } else {
                state.clone()
            };
            stable.push((seq, self.base.from.clone(), first));
            seq += 1;
        }
        if outcome == PartnerOutcome::Completed {
            stable.push((seq, self.version.clone(), state.clone()));
        }
        let mut digests: Vec<String> = stable
            .iter()
            .map(|(seq, version, state)| {
                pmf_store::stable_digest(*seq, version.as_deref(), state.text())
            })
            .collect();
        let n = self.events.len();
        for (i, e) in self.events.iter_mut().enumerate() {
            if i == 0 {
                e.policy_hash = Some(inputs.policy.hash.clone());
                e.plan_hash = Some(inputs.plan.hash.clone());
            }
            if e.kind == EventKind::Approved {
                e.signers = signers_of(inputs.signers, &e.approvals);
            }
            if i + 1 == n {
                e.state = Some(digest.clone());
                e.stable = std::mem::take(&mut digests);
                e.plan_hash = Some(inputs.plan.hash.clone());
                if e.outcome.is_none() {
                    e.outcome = Some(outcome.as_str().into());
                }
                if !outcome.is_final() {
                    e.waits = Some(self.waits.clone());
                }
            }
        }
        Ok(Rows {
            stable,
            row: changes_row.then(|| (state, self.version.clone())),
        })
    }
}

/// Write a partner prepared by [`prepare_partner`] in `batch`: its stable
/// versions, its row, its run of events and its progress (see
/// [`apply_partner`], the same done in one step). What was not made ahead
/// is made here, over the partner's row as the batch reads it.
pub fn record_partner(
    batch: &mut Batch<'_>,
    inputs: &ApplyInputs<'_>,
    shared: &mut ApplyBatch,
    prepared: PreparedPartner,
    absent: bool,
) -> Result<PartnerResult, ApplyError> {
    let id = prepared.id;
    let mut walked = match prepared.walked {
        Ok(walked) => walked,
        Err(skipped) => return Ok(skipped),
    };
    let (rows, sealed) = match walked.ready.take() {
        Some(ready) => ready,
        None => {
            let stored = if absent { None } else { batch.partner(&id)? };
            let rows = walked.rows(inputs, stored.as_ref(), || batch.next_stable_seq(&id), None)?;
            let mut chain = if stored.is_some() {
                batch.chain(&id)?
            } else {
                PartnerChain::start(&id)
            };
            let sealed = batch.seal(&mut chain, &mut walked.events);
            (rows, sealed)
        }
    };
    for (seq, version, state) in rows.stable {
        batch.push_prepared_stable(&id, seq, version.as_deref(), state)?;
    }
    if let Some((state, version)) = rows.row {
        batch.put_prepared_partner(&id, state, version.as_deref(), walked.outcome.status())?;
    }
    // The walk is one row of the lineage (none when it had no event; its
    // events may have been shed once sealed).
    let recorded = !sealed.is_empty();
    batch.append_sealed(sealed, &walked.events)?;
    let outcome = walked.outcome;
    // A partner already at its target whose row stays as it was leaves no
    // trace: no event, so no progress row either (verify holds every row to
    // an event of its run; a re-run finds it unchanged again).
    if recorded {
        batch.set_progress(&inputs.plan.hash, &id, outcome.as_str())?;
    }
    if let Some(m) = walked.migration
        && matches!(
            outcome,
            PartnerOutcome::Completed | PartnerOutcome::FellBack
        )
    {
        let counts = shared.outcomes.entry((m, walked.categories)).or_default();
        counts.0 += 1;
        counts.1 += i64::from(outcome == PartnerOutcome::FellBack);
    }
    Ok(PartnerResult {
        id,
        outcome,
        events: walked.events,
        skipped: false,
        pending: None,
    })
}

/// One event per phase: a phase's entry (with its rite) is folded into
/// the event that follows it in the same phase (its verdict, its health,
/// where it stopped), which then carries the rite; an entry with nothing
/// after it in its phase stays a `phase_entered` event. The walk's events
/// say the same with fewer rows. `push_folded` appends `e` to `events` so.
fn push_folded(events: &mut Vec<Event>, e: Event) {
    if let Some(last) = events.last_mut()
        && last.kind == EventKind::PhaseEntered
        && e.kind != EventKind::PhaseEntered
        && e.phase == last.phase
        && e.rite.is_none()
    {
        let rite = last.rite.take();
        *last = Event { rite, ..e };
    } else {
        events.push(e);
    }
}

/// What the partners applied in one transaction share: the target for all
/// (read once) and the outcome counts that feed illumination, written by
/// [`ApplyBatch::finish`] before the commit.
pub struct ApplyBatch {
    target_all: Option<Value>,
    /// (migration type, categories) → (migrations, fallbacks).
    outcomes: std::collections::BTreeMap<(usize, Vec<usize>), (i64, i64)>,
    canonical: CanonicalMemo,
}

impl ApplyBatch {
    /// Start a batch.
    pub fn begin(inputs: &ApplyInputs<'_>) -> Self {
        ApplyBatch {
            target_all: target_for_all(inputs),
            outcomes: Default::default(),
            canonical: CanonicalMemo::default(),
        }
    }

    /// Record the batch's outcome counts in the lineage, added to `lit`
    /// (the counts as the batch before left them,
    /// [`pmf_store::Store::illumination`]), which then holds the sum; the
    /// caller commits. A batch that completed and fell back no partner
    /// records nothing.
    pub fn finish(
        self,
        batch: &mut Batch<'_>,
        policy: &CompiledPolicy,
        plan_hash: &str,
        lit: &mut Illumination,
    ) -> Result<(), ApplyError> {
        if self.outcomes.is_empty() {
            return Ok(());
        }
        let added = self
            .outcomes
            .iter()
            // Assessments name the policy's own migration types.
            .filter_map(|((m, categories), (total, fallbacks))| {
                let migration = policy.migrations.get(*m)?;
                let cats: Vec<&str> = policy.category_names(categories).collect();
                Some((
                    (migration.name.clone(), cats.join("+")),
                    (*total as u64, *fallbacks as u64),
                ))
            });
        batch.count_outcomes(lit, plan_hash, added)?;
        Ok(())
    }
}

/// What validation and health say of a partner no metrics were observed
/// for: the target state stood for what was observed, and the record says
/// so (a verdict and a score otherwise read as measured).
pub const NOT_OBSERVED: &str = "no metrics observed: the target state stood for them";

/// Walk the policy's phase graph from detection; `record` writes each
/// event (the store during `apply`, a list during `pmf test`). A partner
/// an authority `promoted` (`pmf review promote`) goes on where governance
/// review would pause it (inconclusive validation, unknown health, a
/// review band); missing approvals are never passed. Unless metrics were
/// `observed` for the partner, its validation and health events say so
/// ([`NOT_OBSERVED`]).
pub(crate) fn walk(
    policy: &CompiledPolicy,
    a: &Assessment,
    approved: &HashSet<String>,
    promoted: bool,
    observed: bool,
    base: &Event,
    mut record: impl FnMut(Event) -> Result<(), ApplyError>,
) -> Result<PartnerOutcome, ApplyError> {
    let graph = &policy.graph;
    // Appended to what validation and health record, when nothing was
    // observed.
    let basis = |said: Option<String>| match (said, observed) {
        (said, true) => said,
        (None, false) => Some(NOT_OBSERVED.to_string()),
        (Some(said), false) => Some(format!("{said}; {NOT_OBSERVED}")),
    };
    let event = |kind: EventKind, phase: Option<&str>| Event {
        kind,
        phase: phase.map(Text::from),
        ..base.clone()
    };
    // Where governance review pauses the partner, unless it was promoted.
    let review = |why: String,
                  phase: &str,
                  record: &mut dyn FnMut(Event) -> Result<(), ApplyError>|
     -> Result<Step, ApplyError> {
        if promoted {
            record(Event {
                detail: Some(format!("promoted by a review decision ({why})")),
                ..event(EventKind::Promoted, Some(phase))
            })?;
            Ok(Step::Next)
        } else {
            Ok(Step::Stop(PartnerOutcome::AwaitingReview, why))
        }
    };
    let Some(mut at) = graph.phase(Phase::Detection) else {
        record(Event {
            detail: Some("the flow has no detection phase".into()),
            ..event(EventKind::AwaitingReview, None)
        })?;
        return Ok(PartnerOutcome::AwaitingReview);
    };
    let mut taken: HashMap<usize, u32> = HashMap::new();
    let mut fell_back = false;
    let mut staged = false;
    for _ in 0..10_000 {
        // Edges lead to the graph's own phases; if one did not, the flow
        // would not reach continuity.
        let Some(phase) = graph.phases.get(at) else {
            break;
        };
        record(Event {
            rite: phase.rite.clone(),
            ..event(EventKind::PhaseEntered, Some(&phase.name))
        })?;
        let step = match Phase::parse(&phase.name) {
            Some(Phase::Detection) => match a.migration {
                Some(_) => Step::Next,
                None => Step::Stop(
                    PartnerOutcome::AwaitingReview,
                    "no migration type matches this change".into(),
                ),
            },
            Some(Phase::Preparation) => {
                let missing: Vec<&str> = policy
                    .authority_names(&a.approvals)
                    .filter(|n| !approved.contains(*n))
                    .collect();
                if missing.is_empty() {
                    if !a.approvals.is_empty() {
                        record(Event {
                            approvals: policy
                                .authority_names(&a.approvals)
                                .map(str::to_string)
                                .collect(),
                            ..event(EventKind::Approved, Some(&phase.name))
                        })?;
                    }
                    Step::Next
                } else {
                    record(Event {
                        detail: Some(format!("approvals missing: {}", missing.join(", "))),
                        ..event(EventKind::ApprovalsMissing, Some(&phase.name))
                    })?;
                    Step::Stop(
                        PartnerOutcome::AwaitingReview,
                        format!("awaiting approval by {}", missing.join(", ")),
                    )
                }
            }
            Some(Phase::Transition) => {
                staged = true;
                let rule = |rules: &[Rule], fails: &[usize], act: Option<Action>| {
                    fails
                        .iter()
                        .copied()
                        .find(|&r| rules.get(r).is_some_and(|rule| rule.action == act))
                };
                if let Some(&c) = a.ceiling_violations.first() {
                    Step::Stop(
                        PartnerOutcome::Restricted,
                        policy.reason(Reason::Ceiling(c)),
                    )
                } else if let Some(r) = rule(
                    &policy.compatibility,
                    &a.compatibility_failures,
                    Some(Action::Restrict),
                ) {
                    Step::Stop(
                        PartnerOutcome::Restricted,
                        policy.reason(Reason::Compatibility(r)),
                    )
                } else if let Some(&r) = a.compatibility_failures.first() {
                    Step::Fail(policy.reason(Reason::Compatibility(r)))
                } else if let Some(r) = rule(
                    &policy.sustainability,
                    &a.sustainability_failures,
                    Some(Action::Throttle),
                ) {
                    Step::Stop(
                        PartnerOutcome::Throttled,
                        policy.reason(Reason::Sustainability(r)),
                    )
                } else {
                    Step::Next
                }
            }
            Some(Phase::Validation) => {
                let failing: Vec<String> = a
                    .validation
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| **o == a.verdict && **o != Verdict::Passed)
                    .map(|(c, _)| policy.check_name(c))
                    .collect();
                record(Event {
                    outcome: Some(a.verdict.as_str().into()),
                    detail: basis((!failing.is_empty()).then(|| failing.join(", "))),
                    ..event(EventKind::Validated, Some(&phase.name))
                })?;
                match a.verdict {
                    Verdict::Passed => Step::Next,
                    Verdict::Inconclusive => review(
                        format!("validation inconclusive ({})", failing.join(", ")),
                        &phase.name,
                        &mut record,
                    )?,
                    Verdict::Error | Verdict::Failed => Step::Fail(format!(
                        "validation {} ({})",
                        a.verdict.as_str(),
                        failing.join(", ")
                    )),
                }
            }
            Some(Phase::Stabilization) => {
                let band = a.band.and_then(|b| policy.bands.get(b));
                record(Event {
                    health: a.shown_score(),
                    band: band.map(|b| b.status.as_str().into()),
                    action: band.map(|b| b.action.as_str().into()),
                    detail: basis(band.map(|b| b.label.clone())),
                    ..event(EventKind::Health, Some(&phase.name))
                })?;
                match band.map(|b| b.action) {
                    None => review(
                        "health unknown: a factor was not observed".into(),
                        &phase.name,
                        &mut record,
                    )?,
                    Some(Action::Proceed | Action::Monitor | Action::None) => Step::Next,
                    Some(Action::Review) => review(
                        "health band requires review".into(),
                        &phase.name,
                        &mut record,
                    )?,
                    Some(Action::Throttle) => {
                        Step::Stop(PartnerOutcome::Throttled, "health band throttles".into())
                    }
                    Some(Action::Fallback) => Step::Fail("health band falls back".into()),
                    Some(Action::Restrict) => {
                        Step::Stop(PartnerOutcome::Restricted, "health band restricts".into())
                    }
                }
            }
            Some(Phase::Fallback) => {
                fell_back = true;
                record(Event {
                    to: base.from.clone(),
                    detail: Some("returned to the previous stable state".into()),
                    ..event(EventKind::Fallback, Some(&phase.name))
                })?;
                Step::Next
            }
            Some(Phase::Continuity) => {
                let outcome = if fell_back || !staged {
                    PartnerOutcome::FellBack
                } else {
                    PartnerOutcome::Completed
                };
                if outcome == PartnerOutcome::Completed {
                    record(Event {
                        outcome: Some("completed".into()),
                        ..event(EventKind::Completed, Some(&phase.name))
                    })?;
                    if base.from != base.to {
                        record(Event {
                            rite: policy.release_rite.clone(),
                            detail: base.from.as_ref().map(|v| format!("version {v} released")),
                            ..event(EventKind::Released, None)
                        })?;
                    }
                } else {
                    record(Event {
                        outcome: Some("fell_back".into()),
                        ..event(EventKind::Resumed, Some(&phase.name))
                    })?;
                }
                return Ok(outcome);
            }
            None => Step::Next,
        };
        let kind = match step {
            Step::Next => EdgeKind::Next,
            Step::Fail(why) => {
                record(Event {
                    detail: Some(why),
                    ..event(EventKind::PhaseFailed, Some(&phase.name))
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
                    outcome: Some(outcome.as_str().into()),
                    action: Some(action.as_str().into()),
                    detail: Some(why),
                    ..event(outcome_event(outcome), Some(&phase.name))
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
                    ..event(EventKind::Fallback, Some(&phase.name))
                })?;
                return Ok(PartnerOutcome::FellBack);
            }
            None => {
                record(Event {
                    outcome: Some("awaiting_review".into()),
                    detail: Some(format!("no way on from phase `{}`", phase.name)),
                    ..event(EventKind::AwaitingReview, Some(&phase.name))
                })?;
                return Ok(PartnerOutcome::AwaitingReview);
            }
        }
    }
    record(Event {
        detail: Some("the flow did not reach continuity".into()),
        ..event(EventKind::AwaitingReview, None)
    })?;
    Ok(PartnerOutcome::AwaitingReview)
}
