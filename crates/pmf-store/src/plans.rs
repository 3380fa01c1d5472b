//! The plans carried out on a store: when each was begun, over how many
//! partners, and whether a run of it went through to its last partner.
//!
//! `pmf apply` commits a migration plan batch by batch: a crash, a Ctrl-C
//! or a failing disk leaves its first batches committed and the rest not
//! begun, and a partner already at its target leaves no trace. The store
//! alone could not say whether a plan was carried out whole. So the first
//! batch of a plan appends a `plan_begun` event to the reserved chain
//! [`PLANS`], naming the plan, its policy and how many partners it holds,
//! and the batch that reaches its last partner appends `plan_finished`
//! (once: a run again of a finished plan adds nothing). A rollback or a
//! replacement, carried out in one transaction, records both at once. The
//! signed checkpoints cover them like every event; `pmf status` reads
//! them, and `pmf lineage verify` holds the chain to them: each plan begun
//! once, finished once and after it, over the same count, and no plan
//! walking more partners than it was begun with.

use std::collections::{BTreeMap, HashMap};

use crate::batch::Batch;
use crate::lineage::{Event, EventKind};
use crate::{Store, StoreError};

/// The reserved chain that records the plans carried out.
pub const PLANS: &str = "@plans";

/// A plan as [`PLANS`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRecord {
    /// The plan's hash.
    pub plan_hash: String,
    /// The policy it was carried out under.
    pub policy_hash: String,
    /// How many partners it holds.
    pub partners: u64,
    /// When its first batch was committed (RFC 3339).
    pub begun: String,
    /// When the batch that reached its last partner was committed, if one
    /// was.
    pub finished: Option<String>,
}

/// What an event of [`PLANS`] marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The plan's first batch was committed.
    Begun,
    /// A run of the plan reached its last partner.
    Finished,
}

impl Mark {
    fn kind(self) -> EventKind {
        match self {
            Mark::Begun => EventKind::PlanBegun,
            Mark::Finished => EventKind::PlanFinished,
        }
    }

    fn of(kind: EventKind) -> Option<Mark> {
        match kind {
            EventKind::PlanBegun => Some(Mark::Begun),
            EventKind::PlanFinished => Some(Mark::Finished),
            _ => None,
        }
    }
}

/// The event that marks plan `plan_hash` (of policy `policy_hash`, over
/// `partners` partners).
fn event(mark: Mark, plan_hash: &str, policy_hash: &str, partners: u64) -> Event {
    Event {
        kind: mark.kind(),
        plan_hash: Some(plan_hash.to_string()),
        policy_hash: Some(policy_hash.to_string()),
        detail: Some(count_text(partners)),
        time: crate::clock::now_rfc3339().into(),
        ..Event::default()
    }
}

/// How a mark says its count: `1 partner`, `N partners`.
fn count_text(partners: u64) -> String {
    let s = if partners == 1 { "" } else { "s" };
    format!("{partners} partner{s}")
}

/// The partner count an event of [`PLANS`] says, written exactly as
/// [`count_text`] writes it.
fn partners_of(e: &Event) -> Option<u64> {
    let detail = e.detail.as_deref()?;
    let digits = detail.split(' ').next()?;
    // `u64::from_str` takes a leading `+`; the count is written without.
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = digits.parse().ok()?;
    (count_text(n) == detail).then_some(n)
}

/// What is wrong with `e`, an event of `chain`, as a mark of a plan or
/// beside one: only [`PLANS`] holds `plan_begun` and `plan_finished`
/// events, each naming a plan, its policy and a count of partners, and
/// they approve and change nothing.
pub fn problem(chain: &str, e: &Event) -> Option<String> {
    let mark = Mark::of(e.kind);
    if chain != PLANS {
        return mark.map(|_| "it marks a plan begun or finished outside the chain of plans".into());
    }
    if mark.is_none() {
        return Some(format!("the chain of plans holds a `{}` event", e.kind));
    }
    if e.plan_hash.is_none() || e.policy_hash.is_none() {
        return Some("it marks a plan without naming the plan and its policy".into());
    }
    if partners_of(e).is_none() {
        return Some("it marks a plan without saying how many partners it holds".into());
    }
    e.changes_anything()
        .then(|| "a mark of a plan that names approvals, an outcome or a state".into())
}

/// The chain of plans followed event by event (`pmf lineage verify`).
#[derive(Default)]
pub struct Followed {
    /// Plan hash → (partners, finished).
    plans: HashMap<String, (u64, bool)>,
}

impl Followed {
    /// Follow `e`, an event of [`PLANS`] [`problem`] found nothing wrong
    /// with: what is wrong with it after the ones before, if anything.
    pub fn follow(&mut self, e: &Event) -> Option<String> {
        let (mark, plan, partners) = (Mark::of(e.kind)?, e.plan_hash.as_deref()?, partners_of(e)?);
        let short = plan.get(..12).unwrap_or(plan);
        match (mark, self.plans.get_mut(plan)) {
            (Mark::Begun, None) => {
                self.plans.insert(plan.to_string(), (partners, false));
                None
            }
            (Mark::Begun, Some(_)) => Some(format!("plan {short} is marked begun a second time")),
            (Mark::Finished, None) => Some(format!(
                "plan {short} is marked finished, but nothing marks it begun"
            )),
            (Mark::Finished, Some((_, true))) => {
                Some(format!("plan {short} is marked finished a second time"))
            }
            (Mark::Finished, Some((begun, finished))) => {
                *finished = true;
                (*begun != partners).then(|| {
                    format!(
                        "plan {short} is marked finished over {partners} partners, but begun over {begun}"
                    )
                })
            }
        }
    }

    /// How many plans were marked begun, and of them finished.
    pub fn counts(&self) -> (usize, usize) {
        let finished = self.plans.values().filter(|(_, f)| *f).count();
        (self.plans.len(), finished)
    }

    /// How many partners plan `plan_hash` was begun with, if it is marked.
    pub fn partners(&self, plan_hash: &str) -> Option<u64> {
        self.plans.get(plan_hash).map(|(n, _)| *n)
    }
}

impl Batch<'_> {
    /// Mark plan `plan_hash` (of policy `policy_hash`, over `partners`
    /// partners) as the next event of [`PLANS`].
    pub fn mark_plan(
        &mut self,
        mark: Mark,
        plan_hash: &str,
        policy_hash: &str,
        partners: u64,
    ) -> Result<(), StoreError> {
        let mut chain = self.chain(PLANS)?;
        self.append(
            &mut chain,
            &mut event(mark, plan_hash, policy_hash, partners),
        )
    }

    /// Mark plan `plan_hash`, carried out whole in this batch (a rollback,
    /// a replacement), begun and finished.
    pub fn mark_plan_whole(
        &mut self,
        plan_hash: &str,
        policy_hash: &str,
        partners: u64,
    ) -> Result<(), StoreError> {
        self.mark_plan(Mark::Begun, plan_hash, policy_hash, partners)?;
        self.mark_plan(Mark::Finished, plan_hash, policy_hash, partners)
    }
}

impl Store {
    /// Whether [`PLANS`] marks plan `plan_hash` begun.
    pub fn plan_marked(&self, plan_hash: &str) -> Result<bool, StoreError> {
        Ok(self.plan_records()?.contains_key(plan_hash))
    }

    /// The plans [`PLANS`] records, by hash (read, not verified: `pmf
    /// lineage verify` holds the chain). Plans carried out before stores
    /// recorded them are not among them.
    pub fn plan_records(&self) -> Result<BTreeMap<String, PlanRecord>, StoreError> {
        let mut out: BTreeMap<String, PlanRecord> = BTreeMap::new();
        for stored in self.lineage(Some(PLANS))? {
            let e = stored.event;
            let (Some(mark), Some(plan), Some(partners)) =
                (Mark::of(e.kind), e.plan_hash.clone(), partners_of(&e))
            else {
                continue;
            };
            match mark {
                Mark::Begun => {
                    out.entry(plan.clone()).or_insert(PlanRecord {
                        plan_hash: plan,
                        policy_hash: e.policy_hash.unwrap_or_default(),
                        partners,
                        begun: e.time.into(),
                        finished: None,
                    });
                }
                Mark::Finished => {
                    if let Some(r) = out.get_mut(&plan) {
                        r.finished.get_or_insert(e.time.into());
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_says_its_count_and_nothing_else() {
        let e = event(Mark::Begun, "aa", "pp", 100_000);
        assert_eq!(partners_of(&e), Some(100_000));
        assert_eq!(problem(PLANS, &e), None);
        assert!(problem("p-1", &e).is_some());
        let one = event(Mark::Begun, "aa", "pp", 1);
        assert_eq!(one.detail.as_deref(), Some("1 partner"));
        assert_eq!(partners_of(&one), Some(1));
        for detail in [
            "+5 partners",
            "5",
            "five partners",
            " partners",
            "05 partners",
            "1 partners",
            "5 partner",
        ] {
            let e = Event {
                detail: Some(detail.into()),
                ..e.clone()
            };
            assert!(problem(PLANS, &e).is_some(), "{detail}");
        }
        let approving = Event {
            approvals: vec!["TSC".into()],
            ..e.clone()
        };
        assert!(problem(PLANS, &approving).is_some());
        let other = Event {
            kind: EventKind::Refused,
            ..e
        };
        assert!(problem(PLANS, &other).is_some());
    }

    #[test]
    fn a_plan_is_begun_once_then_finished_once_over_the_same_count() {
        let mut f = Followed::default();
        let begun = event(Mark::Begun, "aa", "pp", 3);
        let finished = event(Mark::Finished, "aa", "pp", 3);
        assert!(f.follow(&finished).is_some(), "finished before begun");
        assert_eq!(f.follow(&begun), None);
        assert!(f.follow(&begun).is_some(), "begun twice");
        assert!(
            f.follow(&event(Mark::Finished, "aa", "pp", 4)).is_some(),
            "another count"
        );
        assert!(f.follow(&finished).is_some(), "finished twice");
        assert_eq!(f.partners("aa"), Some(3));
        assert_eq!(f.partners("bb"), None);
    }
}
