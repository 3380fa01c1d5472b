//! What a migration plan says of each partner, held to what its policy
//! decides. A plan is a file anyone can edit before it is signed: `apply`
//! decides every partner again and never takes a type, a category or an
//! approval from the plan, but a signer reads the plan's words
//! (`pmf approve`'s summary, `pmf plan show`). An entry that says less than
//! the policy decides (another type, fewer approvals, a milder action)
//! would have the signer approve what they were not shown.

use pmf_store::lineage::Text;
use rayon::prelude::*;

use super::compile::State;
use super::engine::CompiledPolicy;
use super::fast::ParseCache;
use super::plan::{History, Plan, PlanEntry, PlanKind, Prediction};
use super::value::{self, Completeness, Value};

/// The most entries named in one answer.
const NAMED: usize = 10;

/// The entries of `plan` (a migration plan) whose words are not what
/// `policy` decides for the state, target and observed metrics they
/// carry: one line each (the first [`NAMED`], then how many more), in the
/// plan's order. Empty when every entry holds, and for other kinds of
/// plan (a rollback's and a replacement's needs are decided where they
/// are applied).
pub fn unfounded(plan: &Plan, policy: &CompiledPolicy) -> Vec<String> {
    if plan.header.kind != PlanKind::Migrate {
        return Vec::new();
    }
    let target_all = plan
        .header
        .target_all
        .as_ref()
        .and_then(|j| value::from_json(&policy.schema, j, "", Completeness::Partial).ok());
    let problems: Vec<String> = plan
        .entries
        .par_iter()
        .map_init(
            || ParseCache::new(&policy.schema, Completeness::Full),
            |cache, e| check(e, policy, target_all.as_ref(), cache),
        )
        .flatten()
        .collect();
    named(problems)
}

/// The entries of `plan` (a migration plan) whose fallback risk is not
/// what `history` (the illumination counts the plan names, as the store
/// holds them) predicts for the type, categories and action the entry
/// says (`pmf approve` holds those to the policy): one line each (the
/// first [`NAMED`], then how many more), in the plan's order.
pub fn unfounded_risks(plan: &Plan, history: &History) -> Vec<String> {
    if plan.header.kind != PlanKind::Migrate {
        return Vec::new();
    }
    let problems: Vec<String> = plan
        .entries
        .par_iter()
        .filter_map(|e| {
            let predicted = history.fallback_risk(
                e.migration.as_deref().unwrap_or("none"),
                &e.categories.join("+"),
                e.predicted.action,
            );
            // Risks are written to three decimals: any other number (or
            // none) was not written by `pmf plan` from these counts.
            let held = (e.fallback_risk - predicted).abs() < 1e-9;
            (!held).then(|| {
                format!(
                    "partner `{}`: the plan says fallback risk {}; the counts it names predict {predicted}",
                    super::value::shown_id(&e.id),
                    e.fallback_risk
                )
            })
        })
        .collect();
    named(problems)
}

/// The first [`NAMED`] of `problems`, then how many more there are.
fn named(problems: Vec<String>) -> Vec<String> {
    let more = problems.len().saturating_sub(NAMED);
    let mut named: Vec<String> = problems.into_iter().take(NAMED).collect();
    if more > 0 {
        named.push(format!("… and {more} more entries"));
    }
    named
}

/// What one entry says and what the policy decides, when they differ.
fn check(
    e: &PlanEntry,
    policy: &CompiledPolicy,
    target_all: Option<&Value>,
    cache: &mut ParseCache,
) -> Option<String> {
    let id = super::value::shown_id(&e.id);
    let state = match e
        .state
        .read(&policy.schema, Completeness::Full, Some(cache))
    {
        Ok(s) => s,
        Err(why) => return Some(format!("partner `{id}`: the state it carries: {why}")),
    };
    let own = match &e.target {
        Some(j) => match value::from_json(&policy.schema, j, "", Completeness::Partial) {
            Ok(t) => Some(t),
            Err(why) => return Some(format!("partner `{id}`: its target: {why}")),
        },
        None => None,
    };
    let observed = match &e.observed {
        Some(o) => match o.read(&policy.schema, Completeness::Partial, None) {
            Ok(o) => Some(o),
            Err(why) => return Some(format!("partner `{id}`: its observed metrics: {why}")),
        },
        None => None,
    };
    let target = State::of(&state).with(own.as_ref().or(target_all));
    let a = policy.assess(&state, target, target.with(observed.as_ref()));
    let decided = Words {
        from: policy.version_text_of(&state),
        to: policy.version_text_of(&target.merged()),
        migration: a
            .migration
            .and_then(|m| policy.migrations.get(m))
            .map(|m| m.name.as_str().into()),
        categories: policy
            .category_names(&a.categories)
            .map(Text::from)
            .collect(),
        approvals: policy
            .authority_names(&a.approvals)
            .map(Text::from)
            .collect(),
        predicted: Prediction {
            score: a.shown_score(),
            band: a
                .band
                .and_then(|b| policy.bands.get(b))
                .map(|b| b.status.as_str().into()),
            action: a.action,
            reason: policy.reason(a.reason).into(),
            validation: a.verdict.as_str().into(),
        },
    };
    let said = Words {
        from: e.from.clone(),
        to: e.to.clone(),
        migration: e.migration.clone(),
        categories: e.categories.clone(),
        approvals: e.approvals_required.clone(),
        predicted: e.predicted.clone(),
    };
    (said != decided).then(|| {
        format!(
            "partner `{id}`: the plan says {}; its policy decides {}",
            said.differing(&decided),
            decided.differing(&said)
        )
    })
}

/// The words of an entry a signer reads.
#[derive(PartialEq)]
struct Words {
    from: Option<Text>,
    to: Option<Text>,
    migration: Option<Text>,
    categories: Vec<Text>,
    approvals: Vec<Text>,
    predicted: Prediction,
}

impl Words {
    /// The fields of `self` that differ from `other`'s, as `name value`.
    fn differing(&self, other: &Words) -> String {
        let shown = |s: &str| super::plan_view::printable(s).into_owned();
        let opt = |v: &Option<Text>| v.as_deref().map_or("none".into(), shown);
        let list = super::plan_view::printable_list;
        let (p, q) = (&self.predicted, &other.predicted);
        let mut parts = Vec::new();
        if self.from != other.from {
            parts.push(format!("from {}", opt(&self.from)));
        }
        if self.to != other.to {
            parts.push(format!("to {}", opt(&self.to)));
        }
        if self.migration != other.migration {
            parts.push(format!("type {}", opt(&self.migration)));
        }
        if self.categories != other.categories {
            parts.push(format!("categories {}", list(&self.categories)));
        }
        if self.approvals != other.approvals {
            parts.push(format!("approvals {}", list(&self.approvals)));
        }
        if p.action != q.action {
            parts.push(format!("action {}", p.action.as_str()));
        }
        if p.score != q.score {
            parts.push(format!(
                "score {}",
                p.score.map_or("none".into(), |s| s.to_string())
            ));
        }
        if p.band != q.band {
            parts.push(format!("band {}", opt(&p.band)));
        }
        if p.reason != q.reason {
            parts.push(format!("reason “{}”", shown(&p.reason)));
        }
        if p.validation != q.validation {
            parts.push(format!("validation {}", shown(&p.validation)));
        }
        parts.join(", ")
    }
}
