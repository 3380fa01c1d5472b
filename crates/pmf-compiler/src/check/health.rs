//! Health: factor weights are non-negative and sum to 1; bands cover
//! 0..=100 exactly once; every band names a known action.
//!
//! Each code has its own function; [`check`] runs them in a fixed order.

use super::Context;
use crate::model::ACTIONS;
use pmf_syntax::ast::{Band, Health, Ident};
use pmf_syntax::diagnostics::{Code, Diagnostic, closest};

/// Actions a band may lead to.
pub const BAND_ACTIONS: [&str; 6] = [
    "proceed", "monitor", "review", "fallback", "throttle", "restrict",
];

/// Run the health checks.
pub(crate) fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let Some((s, health)) = cx.policy.health() else {
        return vec![missing_health(cx)];
    };
    let file = &*s.file;
    let coverage = Coverage::of(&health.bands);
    let mut out = negative_weights(file, health);
    out.extend(weights_do_not_sum_to_one(file, s.name_span, health));
    out.extend(invalid_bands(file, &health.bands));
    out.extend(band_gaps(file, s.name_span, &health.bands, &coverage));
    out.extend(bands_overlap(file, &coverage));
    out.extend(
        health
            .bands
            .iter()
            .filter_map(|b| unknown_action(file, &b.action, &BAND_ACTIONS)),
    );
    out.extend(
        health
            .bands
            .iter()
            .filter_map(|b| action_not_allowed(file, &b.action, &BAND_ACTIONS, "a health band")),
    );
    out
}

/// PMF307: the policy, with its parents, has no health block.
fn missing_health(cx: &Context<'_>) -> Diagnostic {
    Diagnostic::new(
        Code::MissingHealth,
        &cx.policy.file,
        cx.policy.header_span,
        format!("policy `{}` has no health block", cx.policy.name),
    )
    .with_label("no `health` here or in any parent")
    .with_help("add `extends kwanus` to inherit the seed's health table, or declare `health { factor ... band ... }`")
}

/// PMF301: a health factor weighs less than 0.
fn negative_weights(file: &str, health: &Health) -> Vec<Diagnostic> {
    health
        .factors
        .iter()
        .filter(|f| f.weight.value.0 < 0.0)
        .map(|f| {
            let w = f.weight.value.0;
            Diagnostic::new(
                Code::NegativeWeight,
                file,
                f.weight.span,
                format!("health factor `{}` has negative weight {w}", f.name.name),
            )
            .with_label("weights must be 0 or more")
            .with_help("a factor that should not count gets weight 0")
        })
        .collect()
}

/// PMF302: the factors' weights do not add up to 1.
fn weights_do_not_sum_to_one(
    file: &str,
    block: pmf_syntax::Place,
    health: &Health,
) -> Option<Diagnostic> {
    let mut sum = 0.0;
    for f in &health.factors {
        sum += f.weight.value.0;
    }
    if (sum - 1.0).abs() <= 1e-9 {
        return None;
    }
    let mut d = Diagnostic::new(
        Code::WeightsDoNotSumToOne,
        file,
        block,
        format!("health weights sum to {}, not 1", round(sum)),
    )
    .with_label("weights of this block")
    .with_help(if health.factors.is_empty() {
        "declare factors such as `factor stability weight 0.35 from observed.metrics.stability`"
            .to_string()
    } else {
        format!(
            "adjust the weights so that they add up to exactly 1 (off by {})",
            round(1.0 - sum)
        )
    });
    for f in &health.factors {
        d = d.with_secondary(file, f.weight.span, format!("`{}`", f.name.name));
    }
    Some(d)
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// PMF305: `action` is no action at all.
pub(crate) fn unknown_action(file: &str, action: &Ident, allowed: &[&str]) -> Option<Diagnostic> {
    if ACTIONS.contains(&action.name.as_str()) {
        return None;
    }
    let close = closest(&action.name, allowed.iter().copied());
    Some(
        Diagnostic::new(
            Code::UnknownAction,
            file,
            action.span,
            format!("unknown action `{}`", action.name),
        )
        .with_label("not an action")
        .with_help(format!("actions here: {}", quoted(allowed)))
        .with_suggestion(action.span, close),
    )
}

/// PMF606: `action` is an action, but not one of those `place` allows.
pub(crate) fn action_not_allowed(
    file: &str,
    action: &Ident,
    allowed: &[&str],
    place: &str,
) -> Option<Diagnostic> {
    let name = action.name.as_str();
    if !ACTIONS.contains(&name) || allowed.contains(&name) {
        return None;
    }
    Some(
        Diagnostic::new(
            Code::ActionNotAllowed,
            file,
            action.span,
            format!("action `{}` is not allowed in {place}", action.name),
        )
        .with_label("not allowed here")
        .with_help(format!("use one of {}", quoted(allowed))),
    )
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when the band's bounds are whole numbers with 0 <= LOW <= HIGH <= 100.
fn valid_bounds(b: &Band) -> bool {
    let (lo, hi) = (b.low.value.0, b.high.value.0);
    !(lo.fract() != 0.0 || hi.fract() != 0.0 || lo < 0.0 || hi > 100.0 || lo > hi)
}

/// PMF306: a band's bounds are fractional, reversed or outside 0..=100.
fn invalid_bands(file: &str, bands: &[Band]) -> Vec<Diagnostic> {
    bands
        .iter()
        .filter(|b| !valid_bounds(b))
        .map(|b| {
            let (lo, hi) = (b.low.value.0, b.high.value.0);
            let why = if lo > hi {
                format!("band `{}` runs from {lo} down to {hi}", b.status.name)
            } else if lo.fract() != 0.0 || hi.fract() != 0.0 {
                format!("band `{}` has a fractional bound", b.status.name)
            } else {
                format!("band `{}` reaches outside 0..=100", b.status.name)
            };
            Diagnostic::new(Code::InvalidBand, file, b.low.span.cover(b.high.span), why)
                .with_label("invalid bounds")
                .with_help("bands are whole-number ranges LOW..=HIGH with 0 <= LOW <= HIGH <= 100")
        })
        .collect()
}

/// One valid band in the sweep over 0..=100, with what the bands before it
/// (in order of their bounds) cover.
struct Step<'a> {
    lo: i64,
    hi: i64,
    band: &'a Band,
    /// The first score the bands before this one leave uncovered.
    next: i64,
    /// The band before this one that reaches furthest.
    prev: Option<&'a Band>,
}

/// The sweep over the valid bands, sorted by their bounds, that both
/// [`band_gaps`] and [`bands_overlap`] read.
struct Coverage<'a> {
    steps: Vec<Step<'a>>,
    /// The first score no band covers after the last one.
    next: i64,
    /// The band that reaches furthest.
    last: Option<&'a Band>,
}

impl<'a> Coverage<'a> {
    fn of(bands: &'a [Band]) -> Self {
        let mut valid: Vec<(i64, i64, &Band)> = bands
            .iter()
            .filter(|b| valid_bounds(b))
            .map(|b| (b.low.value.0 as i64, b.high.value.0 as i64, b))
            .collect();
        valid.sort_by_key(|(lo, hi, _)| (*lo, *hi));
        let mut steps = Vec::with_capacity(valid.len());
        let mut next = 0i64;
        let mut prev: Option<&Band> = None;
        for (lo, hi, band) in valid {
            steps.push(Step {
                lo,
                hi,
                band,
                next,
                prev,
            });
            if hi + 1 > next {
                next = hi + 1;
                prev = Some(band);
            }
        }
        Coverage {
            steps,
            next,
            last: prev,
        }
    }
}

/// PMF303: scores that belong to no band (or no bands at all).
fn band_gaps(
    file: &str,
    block: pmf_syntax::Place,
    bands: &[Band],
    coverage: &Coverage<'_>,
) -> Vec<Diagnostic> {
    if bands.is_empty() {
        return vec![
            Diagnostic::new(
                Code::BandGap,
                file,
                block,
                "health has no bands: scores 0..=100 belong to no band",
            )
            .with_label("no `band` in this block")
            .with_help("add bands such as `band 90..=100 stable -> proceed` that cover 0..=100"),
        ];
    }
    let mut out = Vec::new();
    for &Step {
        lo,
        band: b,
        next,
        prev,
        ..
    } in coverage.steps.iter().filter(|s| s.lo > s.next)
    {
        let mut d = Diagnostic::new(
            Code::BandGap,
            file,
            b.span,
            format!("scores {next}..={} belong to no band", lo - 1),
        )
        .with_label(format!("`{}` starts at {lo}", b.status.name));
        if let Some(p) = prev {
            d = d
                .with_secondary(
                    file,
                    p.span,
                    format!("`{}` ends at {}", p.status.name, next - 1),
                )
                .with_help(format!(
                    "extend `{}` down to {next} or `{}` up to {}",
                    b.status.name,
                    p.status.name,
                    lo - 1
                ));
        } else {
            d = d.with_help(format!("extend `{}` down to 0", b.status.name));
        }
        out.push(d);
    }
    let next = coverage.next;
    if next <= 100
        && let Some(p) = coverage.last
    {
        out.push(
            Diagnostic::new(
                Code::BandGap,
                file,
                p.span,
                format!("scores {next}..=100 belong to no band"),
            )
            .with_label(format!("`{}` ends at {}", p.status.name, next - 1))
            .with_help(format!(
                "extend `{}` up to 100 or add a band {next}..=100",
                p.status.name
            )),
        );
    }
    out
}

/// PMF304: scores that belong to two bands.
fn bands_overlap(file: &str, coverage: &Coverage<'_>) -> Vec<Diagnostic> {
    coverage
        .steps
        .iter()
        .filter(|s| s.lo < s.next)
        .map(
            |&Step {
                 lo,
                 hi,
                 band: b,
                 next,
                 prev,
             }| {
                let p = prev.unwrap_or(b);
                Diagnostic::new(
                    Code::BandOverlap,
                    file,
                    b.span,
                    format!(
                        "scores {lo}..={} fall in both `{}` and `{}`",
                        hi.min(next - 1),
                        p.status.name,
                        b.status.name
                    ),
                )
                .with_label(format!("`{}` starts at {lo}", b.status.name))
                .with_secondary(
                    file,
                    p.span,
                    format!("`{}` reaches {}", p.status.name, next - 1),
                )
                .with_help(format!(
                    "start `{}` at {} or end `{}` at {}",
                    b.status.name,
                    next,
                    p.status.name,
                    lo - 1
                ))
            },
        )
        .collect()
}
