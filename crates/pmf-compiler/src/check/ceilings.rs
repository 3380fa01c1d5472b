//! Ceilings: an upper bound (`<` or `<=`) on an ordered partner field, with
//! a value of the field's type.
//!
//! Each code has its own function; [`check`] runs them in a fixed order.

use super::Context;
use super::names::unknown_field;
use super::types::infer;
use crate::model::types::{Type, field_type};
use pmf_syntax::ast::{Ceiling, CompareOp};
use pmf_syntax::diagnostics::{Code, Diagnostic};

/// Run the ceiling checks.
pub(crate) fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = not_upper_bounds(cx);
    out.extend(unknown_ceiling_fields(cx));
    out.extend(unordered_ceiling_fields(cx));
    out.extend(ceiling_values_of_wrong_type(cx));
    out.extend(scores_out_of_range(cx));
    out
}

/// PMF802: a ceiling whose operator is not `<` or `<=`.
fn not_upper_bounds(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.policy
        .ceilings()
        .filter(|(_, c)| !matches!(c.op, CompareOp::Lt | CompareOp::Le))
        .map(|(s, c)| {
            Diagnostic::new(
                Code::CeilingOperator,
                &s.file,
                c.op_span,
                format!(
                    "a ceiling is an upper bound, but `{}` is not",
                    c.op.symbol()
                ),
            )
            .with_label("use `<` or `<=`")
            .with_help(format!(
                "write `ceiling {} <= ...` or `ceiling {} < ...`",
                c.field.dotted(),
                c.field.dotted()
            ))
        })
        .collect()
}

/// PMF106: a ceiling on a field the schema does not declare.
fn unknown_ceiling_fields(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.policy
        .ceilings()
        .filter_map(|(s, c)| unknown_field(&s.file, &cx.schema, &c.field))
        .collect()
}

/// The type of the field a ceiling bounds, when the field is declared and
/// its type known.
fn field_of<'a>(cx: &'a Context<'_>, file: &str, c: &Ceiling) -> Option<&'a Type> {
    if unknown_field(file, &cx.schema, &c.field).is_some() {
        return None;
    }
    let path: Vec<&str> = c.field.segments.iter().map(|s| s.name.as_str()).collect();
    field_type(&cx.schema, &path).filter(|t| **t != Type::Unknown)
}

/// True for the types a ceiling can bound.
fn ordered(ty: &Type) -> bool {
    matches!(ty, Type::Version | Type::Number | Type::Score)
}

/// PMF801: a ceiling on a field whose type has no order.
fn unordered_ceiling_fields(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.policy
        .ceilings()
        .filter_map(|(s, c)| {
            let field_ty = field_of(cx, &s.file, c).filter(|t| !ordered(t))?;
            Some(
                Diagnostic::new(
                    Code::CeilingField,
                    &s.file,
                    c.field.span,
                    format!("field `{}` is a `{field_ty}`, which has no order to bound", c.field.dotted()),
                )
                .with_label("not a version, number or score")
                .with_help("ceilings bound versions (`ceiling version < 4.0.0`) and numbers (`ceiling power <= 7`)"),
            )
        })
        .collect()
}

/// The ordered field a ceiling bounds, with the type of its value when
/// that is known and does not fit the field.
fn value_mismatch<'a>(
    cx: &'a Context<'_>,
    file: &str,
    c: &Ceiling,
) -> Option<(&'a Type, Option<Type>)> {
    let field_ty = field_of(cx, file, c).filter(|t| ordered(t))?;
    // Inner problems of the value are reported by the type checks.
    let value_ty = infer(file, &cx.schema, &c.value, &mut Vec::new());
    let wrong = value_ty != Type::Unknown && !field_ty.compatible(&value_ty);
    Some((field_ty, wrong.then_some(value_ty)))
}

/// PMF803: a ceiling whose value is not of its field's type.
fn ceiling_values_of_wrong_type(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.policy
        .ceilings()
        .filter_map(|(s, c)| {
            let (field_ty, Some(value_ty)) = value_mismatch(cx, &s.file, c)? else {
                return None;
            };
            let help = match field_ty {
                Type::Version => {
                    "bound a version with a full version literal, such as `4.0.0`".to_string()
                }
                _ => "bound a number with a number literal, such as `7`".to_string(),
            };
            Some(
                Diagnostic::new(
                    Code::CeilingValue,
                    &s.file,
                    c.value.span,
                    format!(
                        "ceiling on `{}` (a `{field_ty}`) has a `{value_ty}` value",
                        c.field.dotted()
                    ),
                )
                .with_label(format!("expected a `{field_ty}`"))
                .with_help(help),
            )
        })
        .collect()
}

/// PMF203: a ceiling on a score at a number outside 0–100.
fn scores_out_of_range(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.policy
        .ceilings()
        .filter_map(|(s, c)| {
            let (field_ty, None) = value_mismatch(cx, &s.file, c)? else {
                return None;
            };
            let v = super::types::literal_number(&c.value)?;
            if *field_ty != Type::Score || (0.0..=100.0).contains(&v) {
                return None;
            }
            Some(
                Diagnostic::new(
                    Code::ScoreOutOfRange,
                    &s.file,
                    c.value.span,
                    format!("score ceiling {v} is outside 0–100"),
                )
                .with_label("a score is never this value")
                .with_help("scores run from 0 to 100"),
            )
        })
        .collect()
}
