//! Health: factor weights are non-negative and sum to 1; bands cover
//! 0..=100 exactly once; every band names a known action.

use super::Context;
use crate::model::ACTIONS;
use pmf_syntax::ast::{Band, Ident};
use pmf_syntax::diagnostics::{Code, Diagnostic, closest};

/// Actions a band may lead to.
pub const BAND_ACTIONS: [&str; 6] = [
    "proceed", "monitor", "review", "fallback", "throttle", "restrict",
];

/// Run the health checks.
pub fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some((s, health)) = cx.policy.health() else {
        out.push(
            Diagnostic::new(
                Code::MissingHealth,
                &cx.policy.file,
                cx.policy.header_span,
                format!("policy `{}` has no health block", cx.policy.name),
            )
            .with_label("no `health` here or in any parent")
            .with_help("add `extends kwanus` to inherit the seed's health table, or declare `health { factor ... band ... }`"),
        );
        return out;
    };
    let file = s.file.as_str();

    let mut sum = 0.0;
    for f in &health.factors {
        let w = f.weight.value.0;
        if w < 0.0 {
            out.push(
                Diagnostic::new(
                    Code::NegativeWeight,
                    file,
                    f.weight.span,
                    format!("health factor `{}` has negative weight {w}", f.name.name),
                )
                .with_label("weights must be 0 or more")
                .with_help("a factor that should not count gets weight 0"),
            );
        }
        sum += w;
    }
    if (sum - 1.0).abs() > 1e-9 {
        let mut d = Diagnostic::new(
            Code::WeightsDoNotSumToOne,
            file,
            s.name_span,
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
        out.push(d);
    }

    check_bands(file, s.name_span, &health.bands, &mut out);
    for b in &health.bands {
        check_action(file, &b.action, &BAND_ACTIONS, "a health band", &mut out);
    }
    out
}

fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// PMF305 for an unknown action, PMF606 for a known one not allowed here.
pub fn check_action(
    file: &str,
    action: &Ident,
    allowed: &[&str],
    place: &str,
    out: &mut Vec<Diagnostic>,
) {
    if !ACTIONS.contains(&action.name.as_str()) {
        let close = closest(&action.name, allowed.iter().copied());
        out.push(
            Diagnostic::new(
                Code::UnknownAction,
                file,
                action.span,
                format!("unknown action `{}`", action.name),
            )
            .with_label("not an action")
            .with_help(format!("actions here: {}", quoted(allowed)))
            .with_suggestion(action.span, close),
        );
    } else if !allowed.contains(&action.name.as_str()) {
        out.push(
            Diagnostic::new(
                Code::ActionNotAllowed,
                file,
                action.span,
                format!("action `{}` is not allowed in {place}", action.name),
            )
            .with_label("not allowed here")
            .with_help(format!("use one of {}", quoted(allowed))),
        );
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_bands(file: &str, block: pmf_syntax::Span, bands: &[Band], out: &mut Vec<Diagnostic>) {
    let mut valid: Vec<(i64, i64, &Band)> = Vec::new();
    for b in bands {
        let (lo, hi) = (b.low.value.0, b.high.value.0);
        if lo.fract() != 0.0 || hi.fract() != 0.0 || lo < 0.0 || hi > 100.0 || lo > hi {
            let why = if lo > hi {
                format!("band `{}` runs from {lo} down to {hi}", b.status.name)
            } else if lo.fract() != 0.0 || hi.fract() != 0.0 {
                format!("band `{}` has a fractional bound", b.status.name)
            } else {
                format!("band `{}` reaches outside 0..=100", b.status.name)
            };
            out.push(
                Diagnostic::new(Code::InvalidBand, file, b.low.span.cover(b.high.span), why)
                    .with_label("invalid bounds")
                    .with_help(
                        "bands are whole-number ranges LOW..=HIGH with 0 <= LOW <= HIGH <= 100",
                    ),
            );
            continue;
        }
        valid.push((lo as i64, hi as i64, b));
    }
    if bands.is_empty() {
        out.push(
            Diagnostic::new(
                Code::BandGap,
                file,
                block,
                "health has no bands: scores 0..=100 belong to no band",
            )
            .with_label("no `band` in this block")
            .with_help("add bands such as `band 90..=100 stable -> proceed` that cover 0..=100"),
        );
        return;
    }
    valid.sort_by_key(|(lo, hi, _)| (*lo, *hi));
    let mut next = 0i64;
    let mut prev: Option<&Band> = None;
    for (lo, hi, b) in &valid {
        if *lo > next {
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
        } else if *lo < next {
            let p = prev.unwrap_or(b);
            out.push(
                Diagnostic::new(
                    Code::BandOverlap,
                    file,
                    b.span,
                    format!(
                        "scores {lo}..={} fall in both `{}` and `{}`",
                        (*hi).min(next - 1),
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
                )),
            );
        }
        if hi + 1 > next {
            next = hi + 1;
            prev = Some(b);
        }
    }
    if next <= 100
        && let Some(p) = prev
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
}
