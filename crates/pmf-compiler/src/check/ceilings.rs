//! Ceilings: an upper bound (`<` or `<=`) on an ordered partner field, with
//! a value of the field's type.

use super::Context;
use super::names::unknown_field;
use super::types::infer;
use crate::model::types::{Type, field_type};
use pmf_syntax::ast::CompareOp;
use pmf_syntax::diagnostics::{Code, Diagnostic};

/// Run the ceiling checks.
pub fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (s, c) in cx.policy.ceilings() {
        let file = s.file.as_str();
        if !matches!(c.op, CompareOp::Lt | CompareOp::Le) {
            out.push(
                Diagnostic::new(
                    Code::CeilingOperator,
                    file,
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
                )),
            );
        }
        if let Some(d) = unknown_field(file, &cx.schema, &c.field) {
            out.push(d);
            continue;
        }
        let path: Vec<&str> = c.field.segments.iter().map(|s| s.name.as_str()).collect();
        let Some(field_ty) = field_type(&cx.schema, &path).filter(|t| **t != Type::Unknown) else {
            continue;
        };
        if !matches!(field_ty, Type::Version | Type::Number | Type::Score) {
            out.push(
                Diagnostic::new(
                    Code::CeilingField,
                    file,
                    c.field.span,
                    format!("field `{}` is a `{field_ty}`, which has no order to bound", c.field.dotted()),
                )
                .with_label("not a version, number or score")
                .with_help("ceilings bound versions (`ceiling version < 4.0.0`) and numbers (`ceiling power <= 7`)"),
            );
            continue;
        }
        // Inner problems of the value are reported by the type checks.
        let value_ty = infer(file, &cx.schema, &c.value, &mut Vec::new());
        if value_ty != Type::Unknown && !field_ty.compatible(&value_ty) {
            let help = match field_ty {
                Type::Version => {
                    "bound a version with a full version literal, such as `4.0.0`".to_string()
                }
                _ => "bound a number with a number literal, such as `7`".to_string(),
            };
            out.push(
                Diagnostic::new(
                    Code::CeilingValue,
                    file,
                    c.value.span,
                    format!(
                        "ceiling on `{}` (a `{field_ty}`) has a `{value_ty}` value",
                        c.field.dotted()
                    ),
                )
                .with_label(format!("expected a `{field_ty}`"))
                .with_help(help),
            );
        } else if *field_ty == Type::Score
            && let Some(v) = super::types::literal_number(&c.value)
            && !(0.0..=100.0).contains(&v)
        {
            out.push(
                Diagnostic::new(
                    Code::ScoreOutOfRange,
                    file,
                    c.value.span,
                    format!("score ceiling {v} is outside 0–100"),
                )
                .with_label("a score is never this value")
                .with_help("scores run from 0 to 100"),
            );
        }
    }
    out
}
