//! `pmf test`: running the `test` declarations of a policy — states in,
//! expectations checked against what the runtime would do — and measuring
//! which types, bands, rules, phases and edges the tests exercised.

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

use super::apply::{PartnerOutcome, walk};
use super::compile::State;
use super::engine::CompiledPolicy;
use super::value::{Completeness, from_json};
use pmf_store::lineage::{Event, EventKind};
use pmf_syntax::Place;
use pmf_syntax::ast::{EdgeKind, Expr};
use pmf_syntax::ast::{ExpectWhat, ExprKind, RecordValue, TestDecl, TestRoot, UnaryOp, ValueNode};

/// One failed expectation.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Where the expectation (or the problem) is written.
    #[serde(skip)]
    pub span: Place,
    /// Expected against actual.
    pub message: String,
}

/// What running one test found.
#[derive(Debug, Clone, Default)]
pub struct TestRun {
    /// Failed expectations (empty: the test passed).
    pub failures: Vec<Failure>,
    /// The migration type detected.
    pub migration: Option<usize>,
    /// The band hit.
    pub band: Option<usize>,
    /// Rules that fired (compatibility or sustainability), by name.
    pub fired: BTreeSet<String>,
    /// Phases entered, by index.
    pub phases: BTreeSet<usize>,
    /// Edges taken, by index.
    pub edges: BTreeSet<usize>,
}

fn literal(e: &Expr) -> Result<serde_json::Value, String> {
    Ok(match &e.kind {
        ExprKind::Bool(b) => (*b).into(),
        ExprKind::Number(n) => {
            serde_json::Number::from_f64(n.0).map_or(serde_json::Value::Null, Into::into)
        }
        ExprKind::Str(s) => s.clone().into(),
        ExprKind::Version(v) => v.clone().into(),
        ExprKind::Set(items) => items
            .iter()
            .map(literal)
            .collect::<Result<Vec<_>, _>>()?
            .into(),
        ExprKind::Unary(UnaryOp::Neg, inner) => match &inner.kind {
            ExprKind::Number(n) => {
                serde_json::Number::from_f64(-n.0).map_or(serde_json::Value::Null, Into::into)
            }
            _ => return Err("only literal values may appear in a test state".into()),
        },
        _ => return Err("only literal values may appear in a test state".into()),
    })
}

fn record_json(r: &RecordValue) -> Result<serde_json::Value, (Place, String)> {
    let mut map = serde_json::Map::new();
    for (name, value) in &r.fields {
        let v = match value {
            ValueNode::Record(inner) => record_json(inner)?,
            ValueNode::Null(_) => serde_json::Value::Null,
            ValueNode::Expr(e) => literal(e).map_err(|m| (e.span, m))?,
        };
        map.insert(name.name.to_string(), v);
    }
    Ok(serde_json::Value::Object(map))
}

/// Run one test against `policy`.
pub fn run_test(policy: &CompiledPolicy, t: &TestDecl) -> TestRun {
    let mut run = TestRun::default();
    let fail = |run: &mut TestRun, span: Place, message: String| {
        run.failures.push(Failure { span, message })
    };
    let state = |root: TestRoot| t.states.iter().find(|s| s.root == root);
    let convert = |root: TestRoot,
                   completeness: Completeness|
     -> Result<Option<super::value::Value>, (Place, String)> {
        let Some(s) = state(root) else {
            return Ok(None);
        };
        let json = record_json(&s.record)?;
        from_json(&policy.schema, &json, "", completeness)
            .map(Some)
            .map_err(|e| (s.span, e.to_string()))
    };
    let partner = match convert(TestRoot::Partner, Completeness::Full) {
        Ok(Some(p)) => p,
        Ok(None) => {
            fail(
                &mut run,
                t.name.span,
                "the test gives no `partner { ... }` state".into(),
            );
            return run;
        }
        Err((span, m)) => {
            fail(&mut run, span, format!("partner state: {m}"));
            return run;
        }
    };
    let (target, observed) = match (
        convert(TestRoot::Target, Completeness::Partial),
        convert(TestRoot::Observed, Completeness::Partial),
    ) {
        (Ok(t), Ok(o)) => (t, o),
        (Err((span, m)), _) => {
            fail(&mut run, span, format!("target state: {m}"));
            return run;
        }
        (_, Err((span, m))) => {
            fail(&mut run, span, format!("observed state: {m}"));
            return run;
        }
    };
    let target_view = State::of(&partner).with(target.as_ref());
    let a = policy.assess(&partner, target_view, target_view.with(observed.as_ref()));
    run.migration = a.migration;
    run.band = a.band;
    run.fired = a
        .compatibility_failures
        .iter()
        .filter_map(|&r| policy.compatibility.get(r))
        .chain(
            a.sustainability_failures
                .iter()
                .filter_map(|&r| policy.sustainability.get(r)),
        )
        .map(|r| r.name.clone())
        .collect();
    let approved: HashSet<String> = match &t.approved {
        Some(list) => list.iter().map(|i| i.name.to_string()).collect(),
        None => policy
            .authority_names(&a.approvals)
            .map(str::to_string)
            .collect(),
    };
    let mut events: Vec<Event> = Vec::new();
    let outcome = if a.nothing_to_do {
        PartnerOutcome::Unchanged
    } else {
        let base = Event::default();
        walk(
            policy,
            &a,
            &approved,
            false,
            observed.is_some(),
            &base,
            |e| {
                events.push(e);
                Ok(())
            },
        )
        .unwrap_or(PartnerOutcome::AwaitingReview)
    };
    // Phases entered and the edges between them.
    let mut prev: Option<usize> = None;
    let mut failed_here = false;
    for e in &events {
        match e.kind {
            EventKind::PhaseEntered => {
                let Some(i) = e.phase.as_deref().and_then(|p| policy.graph.index(p)) else {
                    continue;
                };
                run.phases.insert(i);
                if let Some(from) = prev {
                    let kind = if failed_here {
                        EdgeKind::Failure
                    } else {
                        EdgeKind::Next
                    };
                    if let Some(edge) = policy
                        .graph
                        .edges
                        .iter()
                        .position(|ed| ed.from == from && ed.to == i && ed.kind == kind)
                    {
                        run.edges.insert(edge);
                    }
                }
                prev = Some(i);
                failed_here = false;
            }
            EventKind::PhaseFailed => failed_here = true,
            _ => {}
        }
    }

    let names =
        |v: &[pmf_syntax::ast::Ident]| v.iter().map(|i| i.name.to_string()).collect::<Vec<_>>();
    for x in &t.expects {
        let mut want = names(&x.values);
        if want.is_empty()
            && matches!(
                x.what,
                ExpectWhat::Action | ExpectWhat::Outcome | ExpectWhat::Validation
            )
        {
            // `expect action none`: the action named `none`.
            want.push("none".into());
        }
        let (got, what): (Vec<String>, &str) = match x.what {
            ExpectWhat::Type => (
                a.migration
                    .and_then(|m| policy.migrations.get(m))
                    .map(|m| m.name.clone())
                    .into_iter()
                    .collect(),
                "type",
            ),
            ExpectWhat::Band => (
                a.band
                    .and_then(|b| policy.bands.get(b))
                    .map(|b| b.status.clone())
                    .into_iter()
                    .collect(),
                "band",
            ),
            ExpectWhat::Action => (vec![a.action.as_str().to_string()], "action"),
            ExpectWhat::Outcome => (vec![outcome.as_str().to_string()], "outcome"),
            ExpectWhat::Validation => (vec![a.verdict.as_str().to_string()], "validation"),
            ExpectWhat::Approvals => {
                let mut v: Vec<String> = a
                    .approvals
                    .iter()
                    .filter_map(|&i| policy.authorities.get(i).cloned())
                    .collect();
                v.sort();
                (v, "approvals")
            }
        };
        let mut want_sorted = want.clone();
        let mut got_sorted = got.clone();
        if x.what == ExpectWhat::Approvals {
            want_sorted.sort();
            got_sorted.sort();
        }
        if want_sorted != got_sorted {
            let show = |v: &[String]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            let mut message = format!("expected {what} {}, got {}", show(&want), show(&got));
            if matches!(x.what, ExpectWhat::Action | ExpectWhat::Outcome) {
                message.push_str(&format!(" ({})", policy.reason(a.reason)));
            }
            fail(&mut run, x.span, message);
        }
    }
    run
}

/// Coverage of one category: covered items out of all, and the misses.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    /// Items exercised.
    pub covered: usize,
    /// Items in the policy.
    pub total: usize,
    /// Names not exercised.
    pub missing: Vec<String>,
}

/// What the tests exercised.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// Migration types with a detection condition.
    pub types: Part,
    /// Health bands.
    pub bands: Part,
    /// Compatibility and sustainability rules that fired.
    pub rules: Part,
    /// Phases entered.
    pub phases: Part,
    /// Edges taken.
    pub edges: Part,
    /// All parts together, in percent.
    pub percent: f64,
}

/// Coverage of `policy` by `runs`.
pub fn coverage<'a>(
    policy: &CompiledPolicy,
    runs: impl IntoIterator<Item = &'a TestRun>,
) -> Coverage {
    let mut types = BTreeSet::new();
    let mut bands = BTreeSet::new();
    let mut fired = BTreeSet::new();
    let mut phases = BTreeSet::new();
    let mut edges = BTreeSet::new();
    for r in runs {
        types.extend(r.migration);
        bands.extend(r.band);
        fired.extend(r.fired.iter().cloned());
        phases.extend(r.phases.iter().copied());
        edges.extend(r.edges.iter().copied());
    }
    let part = |all: Vec<(bool, String)>| Part {
        covered: all.iter().filter(|(c, _)| *c).count(),
        total: all.len(),
        missing: all
            .into_iter()
            .filter(|(c, _)| !c)
            .map(|(_, n)| n)
            .collect(),
    };
    let g = &policy.graph;
    let c = Coverage {
        types: part(
            policy
                .detection
                .iter()
                .filter_map(|&m| {
                    let t = policy.migrations.get(m)?;
                    Some((types.contains(&m), t.name.clone()))
                })
                .collect(),
        ),
        bands: part(
            policy
                .bands
                .iter()
                .enumerate()
                .map(|(i, b)| (bands.contains(&i), b.status.clone()))
                .collect(),
        ),
        rules: part(
            policy
                .compatibility
                .iter()
                .chain(&policy.sustainability)
                .map(|r| (fired.contains(&r.name), r.name.clone()))
                .collect(),
        ),
        phases: part(
            g.phases
                .iter()
                .enumerate()
                .map(|(i, p)| (phases.contains(&i), p.name.clone()))
                .collect(),
        ),
        edges: part(
            g.edges
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let arrow = if e.kind == EdgeKind::Failure {
                        " fail -> "
                    } else {
                        " -> "
                    };
                    // Edges join the graph's own phases.
                    let name = |p: usize| g.phases.get(p).map_or("", |p| p.name.as_str());
                    (
                        edges.contains(&i),
                        format!("{}{arrow}{}", name(e.from), name(e.to)),
                    )
                })
                .collect(),
        ),
        percent: 0.0,
    };
    let (covered, total) = [&c.types, &c.bands, &c.rules, &c.phases, &c.edges]
        .iter()
        .fold((0, 0), |(a, b), p| (a + p.covered, b + p.total));
    let percent = if total == 0 {
        100.0
    } else {
        (covered as f64 * 1000.0 / total as f64).round() / 10.0
    };
    Coverage { percent, ..c }
}

#[cfg(test)]
mod tests {
    use super::super::apply::{PartnerOutcome, outcome_from_str};
    use super::super::engine::{Action, Verdict};
    use pmf_compiler::model::{TEST_ACTIONS, TEST_OUTCOMES, TEST_VERDICTS};

    /// The checks (which do not know the runtime) list what a test may
    /// expect; the lists are the runtime's names, all of them.
    #[test]
    fn the_checks_know_every_name_a_test_can_expect() {
        let actions: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(actions, TEST_ACTIONS);
        let every_outcome = |o: PartnerOutcome| match o {
            PartnerOutcome::Unchanged
            | PartnerOutcome::Completed
            | PartnerOutcome::FellBack
            | PartnerOutcome::Restricted
            | PartnerOutcome::AwaitingReview
            | PartnerOutcome::Throttled => o.as_str(),
        };
        let outcomes: Vec<&str> = TEST_OUTCOMES
            .iter()
            .filter_map(|o| outcome_from_str(o))
            .map(every_outcome)
            .collect();
        assert_eq!(outcomes, TEST_OUTCOMES);
        let verdicts: Vec<&str> = [
            Verdict::Passed,
            Verdict::Inconclusive,
            Verdict::Error,
            Verdict::Failed,
        ]
        .iter()
        .map(|v| match v {
            Verdict::Passed | Verdict::Inconclusive | Verdict::Error | Verdict::Failed => {
                v.as_str()
            }
        })
        .collect();
        assert_eq!(verdicts, TEST_VERDICTS);
    }
}
