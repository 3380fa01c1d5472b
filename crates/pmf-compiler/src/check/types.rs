//! Types: every expression is checked against the partner schema, operators
//! against their operands, scores against 0–100 and version literals against
//! semver.
//!
//! Each code is made by its own function: the type inference that walks
//! every expression once calls them where it finds what they report.

use rayon::prelude::*;

use super::Context;
use super::names::unknown_field_diag;
use crate::model::ExprRole;
use crate::model::types::{TYPE_NAMES, Type};
use pmf_syntax::ast::{
    BinaryOp, CompareOp, Expr, ExprKind, Ident, TypeExpr, TypeExprKind, UnaryOp,
};
use pmf_syntax::diagnostics::{Code, Diagnostic, Fix, closest};

/// The roots every path starts from.
pub const ROOTS: [&str; 3] = ["partner", "target", "observed"];
/// Built-in boolean names.
pub const BUILTIN_NAMES: [&str; 2] = ["compatible", "sustainable"];
/// Built-in functions.
pub const FUNCTIONS: [&str; 4] = ["len", "min", "max", "abs"];

/// Run the type checks.
pub(crate) fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = unknown_types(cx);
    out.extend(expression_types(cx));
    out
}

/// PMF206: a schema field declared with a type that does not exist.
fn unknown_types(cx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (s, f) in cx.policy.fields() {
        unknown_types_in(&s.file, &f.ty, &mut out);
    }
    out
}

/// The diagnostics of every expression's type: one traversal (the type
/// inference, [`infer`]) finds PMF201, PMF203, PMF204, PMF205, PMF106 and
/// PMF107, each made by its own function, and then what the expression's
/// role asks of its type (PMF202, PMF201).
fn expression_types(cx: &Context<'_>) -> Vec<Diagnostic> {
    let expressions = cx.policy.expressions();
    let check_one =
        |(file, role, expr): &(&str, ExprRole, &Expr)| check_expression(cx, file, *role, expr);
    // Expressions are independent: many are checked on every core.
    let found: Vec<Vec<Diagnostic>> = if expressions.len() >= 512 {
        expressions.par_iter().map(check_one).collect()
    } else {
        expressions.iter().map(check_one).collect()
    };
    found.into_iter().flatten().collect()
}

fn check_expression(cx: &Context<'_>, file: &str, role: ExprRole, expr: &Expr) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let ty = infer(file, &cx.schema, expr, &mut out);
    out.extend(match role {
        ExprRole::Condition => condition_not_bool(file, expr, &ty),
        ExprRole::Numeric => factor_not_numeric(file, expr, &ty),
        _ => None,
    });
    out
}

/// PMF202: a condition whose type is not `bool`.
fn condition_not_bool(file: &str, expr: &Expr, ty: &Type) -> Option<Diagnostic> {
    if matches!(ty, Type::Bool | Type::Unknown) {
        return None;
    }
    Some(
        Diagnostic::new(
            Code::ConditionNotBool,
            file,
            expr.span,
            format!("condition has type `{ty}`, not `bool`"),
        )
        .with_label(format!("this is a `{ty}`"))
        .with_help(condition_help(ty)),
    )
}

/// PMF201: a health factor that reads no score or number.
fn factor_not_numeric(file: &str, expr: &Expr, ty: &Type) -> Option<Diagnostic> {
    if ty.is_numeric() {
        return None;
    }
    Some(
        Diagnostic::new(
            Code::TypeMismatch,
            file,
            expr.span,
            format!("health factor has type `{ty}`, expected a score or number"),
        )
        .with_label(format!("this is a `{ty}`"))
        .with_help("a factor reads a score, such as `observed.metrics.stability`"),
    )
}

fn condition_help(ty: &Type) -> String {
    match ty {
        Type::Number | Type::Score => "compare it with a value, such as `... >= 60`".into(),
        Type::Set(_) => "test membership with `in` or inclusion with `<=` / `>=`".into(),
        _ => "a condition must be a comparison or a boolean combination of comparisons".into(),
    }
}

/// The PMF206 diagnostics of `ty` and the types it is made of.
fn unknown_types_in(file: &str, ty: &TypeExpr, out: &mut Vec<Diagnostic>) {
    match &ty.kind {
        TypeExprKind::Named(n) => {
            if !TYPE_NAMES.contains(&n.name.as_str()) {
                out.push(
                    Diagnostic::new(
                        Code::UnknownType,
                        file,
                        n.span,
                        format!("unknown type `{}`", n.name),
                    )
                    .with_label("not a type")
                    .with_help("types are `bool`, `number`, `score`, `string`, `version`, `set<T>` and records `{ name: T }`")
                    .with_suggestion(n.span, closest(&n.name, TYPE_NAMES.iter().copied())),
                );
            }
        }
        TypeExprKind::Set(t) => unknown_types_in(file, t, out),
        TypeExprKind::Record(fields) => {
            for f in fields {
                unknown_types_in(file, &f.ty, out);
            }
        }
    }
}

/// PMF201: an operator or value of the wrong type.
fn mismatch(file: &str, span: pmf_syntax::Place, message: String, label: String) -> Diagnostic {
    Diagnostic::new(Code::TypeMismatch, file, span, message).with_label(label)
}

/// The type of `expr`; problems go to `out`.
pub(crate) fn infer(file: &str, schema: &Type, expr: &Expr, out: &mut Vec<Diagnostic>) -> Type {
    match &expr.kind {
        ExprKind::Bool(_) => Type::Bool,
        ExprKind::Number(_) => Type::Number,
        ExprKind::Str(_) => Type::String,
        ExprKind::Error => Type::Unknown,
        ExprKind::Version(text) => {
            out.extend(malformed_version(file, expr, text));
            Type::Version
        }
        ExprKind::Path(segs) => infer_path(file, schema, segs, out),
        ExprKind::Call(call) => {
            let (name, args) = (&call.name, &call.args);
            let arg_types: Vec<Type> = args.iter().map(|a| infer(file, schema, a, out)).collect();
            let (arity, wants): (usize, fn(&Type) -> bool) = match name.name.as_str() {
                "len" => (1, |t| matches!(t, Type::Set(_) | Type::Unknown)),
                "min" | "max" => (2, Type::is_numeric),
                "abs" => (1, Type::is_numeric),
                _ => {
                    out.push(unknown_function(file, name));
                    return Type::Unknown;
                }
            };
            if args.len() != arity {
                out.push(wrong_arity(file, expr, name, arity, args.len()));
            } else {
                for (a, t) in args.iter().zip(&arg_types) {
                    if !wants(t) {
                        let expected = if name.name == "len" {
                            "a set"
                        } else {
                            "a number"
                        };
                        out.push(mismatch(
                            file,
                            a.span,
                            format!("`{}` expects {expected}, found `{t}`", name.name),
                            format!("this is a `{t}`"),
                        ));
                    }
                }
            }
            Type::Number
        }
        ExprKind::Set(elems) => {
            let mut elem = Type::Unknown;
            for e in elems {
                let t = infer(file, schema, e, out);
                if elem == Type::Unknown {
                    elem = t;
                } else if !elem.compatible(&t) {
                    out.push(mismatch(
                        file,
                        e.span,
                        format!("set elements must share one type: `{elem}` and `{t}`"),
                        format!("this is a `{t}`"),
                    ));
                }
            }
            Type::Set(Box::new(elem))
        }
        ExprKind::Unary(op, inner) => {
            let t = infer(file, schema, inner, out);
            match op {
                UnaryOp::Not => {
                    if !matches!(t, Type::Bool | Type::Unknown) {
                        out.push(mismatch(
                            file,
                            inner.span,
                            format!("`not` needs a `bool`, found `{t}`"),
                            format!("this is a `{t}`"),
                        ));
                    }
                    Type::Bool
                }
                UnaryOp::Neg => {
                    if !t.is_numeric() {
                        out.push(mismatch(
                            file,
                            inner.span,
                            format!("`-` needs a number, found `{t}`"),
                            format!("this is a `{t}`"),
                        ));
                    }
                    Type::Number
                }
            }
        }
        ExprKind::Binary(op, lhs, rhs) => {
            let lt = infer(file, schema, lhs, out);
            let rt = infer(file, schema, rhs, out);
            infer_binary(file, expr, *op, (lhs, &lt), (rhs, &rt), out)
        }
        ExprKind::Chain(op, operands) => {
            let sym = op.symbol();
            for e in operands {
                let t = infer(file, schema, e, out);
                if !matches!(t, Type::Bool | Type::Unknown) {
                    out.push(mismatch(
                        file,
                        e.span,
                        format!("`{sym}` needs `bool` operands, found `{t}`"),
                        format!("this is a `{t}`"),
                    ));
                }
            }
            Type::Bool
        }
    }
}

fn infer_binary(
    file: &str,
    expr: &Expr,
    op: BinaryOp,
    (lhs, lt): (&Expr, &Type),
    (rhs, rt): (&Expr, &Type),
    out: &mut Vec<Diagnostic>,
) -> Type {
    let sym = op.symbol();
    match op {
        BinaryOp::And | BinaryOp::Or => {
            for (e, t) in [(lhs, lt), (rhs, rt)] {
                if !matches!(t, Type::Bool | Type::Unknown) {
                    out.push(mismatch(
                        file,
                        e.span,
                        format!("`{sym}` needs `bool` operands, found `{t}`"),
                        format!("this is a `{t}`"),
                    ));
                }
            }
            Type::Bool
        }
        BinaryOp::Compare(c) => {
            let ordered = !matches!(c, CompareOp::Eq | CompareOp::Ne);
            let ok = if *lt == Type::Unknown || *rt == Type::Unknown {
                true
            } else if ordered {
                (lt.is_ordered() && rt.is_ordered() && lt.compatible(rt))
                    || matches!((lt, rt), (Type::Set(_), Type::Set(_)) if lt.compatible(rt))
            } else {
                lt.compatible(rt)
            };
            if !ok {
                let mut d = mismatch(
                    file,
                    expr.span,
                    format!("cannot compare `{lt}` {sym} `{rt}`"),
                    format!("`{lt}` and `{rt}` do not compare with `{sym}`"),
                );
                if matches!(
                    (lt, rt),
                    (Type::Version, Type::Number) | (Type::Number, Type::Version)
                ) {
                    d = d.with_help("write a full version such as `4.0.0`, or compare a part: `partner.version.major`");
                }
                out.push(d);
            }
            for (score_side, other) in [(lt, rhs), (rt, lhs)] {
                if *score_side == Type::Score
                    && let Some(v) = literal_number(other)
                    && !(0.0..=100.0).contains(&v)
                {
                    out.push(score_out_of_range(file, other, v));
                }
            }
            Type::Bool
        }
        BinaryOp::In | BinaryOp::NotIn => {
            match rt {
                Type::Set(elem) => {
                    if !lt.compatible(elem) {
                        out.push(mismatch(
                            file,
                            lhs.span,
                            format!("`{sym}` tests a `{lt}` against a `{rt}`"),
                            format!("this is a `{lt}`"),
                        ));
                    }
                }
                Type::Unknown => {}
                other => out.push(mismatch(
                    file,
                    rhs.span,
                    format!("`{sym}` needs a set on the right, found `{other}`"),
                    format!("this is a `{other}`"),
                )),
            }
            Type::Bool
        }
        BinaryOp::Add | BinaryOp::Sub => match (lt, rt) {
            (a, b) if a.is_numeric() && b.is_numeric() => Type::Number,
            (Type::Set(_), Type::Set(_)) if lt.compatible(rt) => {
                if matches!(lt, Type::Set(e) if **e == Type::Unknown) {
                    rt.clone()
                } else {
                    lt.clone()
                }
            }
            (Type::Set(_), Type::Unknown) | (Type::Unknown, Type::Set(_)) => {
                if *lt == Type::Unknown {
                    rt.clone()
                } else {
                    lt.clone()
                }
            }
            _ => {
                out.push(mismatch(
                    file,
                    expr.span,
                    format!("`{sym}` cannot combine `{lt}` and `{rt}`"),
                    format!("`{sym}` works on two numbers or two sets of one type"),
                ));
                Type::Unknown
            }
        },
        BinaryOp::Mul | BinaryOp::Div => {
            for (e, t) in [(lhs, lt), (rhs, rt)] {
                if !t.is_numeric() {
                    out.push(mismatch(
                        file,
                        e.span,
                        format!("`{sym}` needs numbers, found `{t}`"),
                        format!("this is a `{t}`"),
                    ));
                }
            }
            Type::Number
        }
    }
}

/// The value of a (possibly negated) number literal.
pub fn literal_number(e: &Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Number(n) => Some(n.0),
        ExprKind::Unary(UnaryOp::Neg, inner) => literal_number(inner).map(|v| -v),
        _ => None,
    }
}

fn infer_path(
    file: &str,
    schema: &Type,
    segs: &[pmf_syntax::ast::Ident],
    out: &mut Vec<Diagnostic>,
) -> Type {
    let Some(first) = segs.first() else {
        return Type::Unknown;
    };
    let mut current = match first.name.as_str() {
        "partner" | "target" | "observed" => schema.clone(),
        "compatible" | "sustainable" if segs.len() == 1 => return Type::Bool,
        _ => {
            out.push(unknown_identifier(file, schema, first));
            return Type::Unknown;
        }
    };
    let root = &first.name;
    for seg in segs.iter().skip(1) {
        current = match &current {
            Type::Record(fields) => match fields.get(seg.name.as_str()) {
                Some(t) => t.clone(),
                None => {
                    out.push(unknown_field_diag(
                        file,
                        seg,
                        fields.keys().map(String::as_str),
                        root,
                    ));
                    return Type::Unknown;
                }
            },
            Type::Version => match seg.name.as_str() {
                "major" | "minor" | "patch" => Type::Number,
                _ => {
                    out.push(unknown_field_diag(
                        file,
                        seg,
                        ["major", "minor", "patch"].into_iter(),
                        "version",
                    ));
                    return Type::Unknown;
                }
            },
            Type::Unknown => return Type::Unknown,
            other => {
                out.push(field_of_fieldless(file, seg, other));
                return Type::Unknown;
            }
        };
    }
    current
}

/// PMF204: a version literal that is not semver.
fn malformed_version(file: &str, expr: &Expr, text: &str) -> Option<Diagnostic> {
    let e = semver::Version::parse(text).err()?;
    Some(
        Diagnostic::new(
            Code::MalformedVersion,
            file,
            expr.span,
            format!("malformed version literal `{text}`"),
        )
        .with_label(e.to_string())
        .with_help("a version is MAJOR.MINOR.PATCH without leading zeros, optionally with `-prerelease`, such as `4.0.0` or `4.0.0-rc.1`"),
    )
}

/// PMF107: a call of a function that is not built in.
fn unknown_function(file: &str, name: &Ident) -> Diagnostic {
    Diagnostic::new(
        Code::UnknownIdentifier,
        file,
        name.span,
        format!("unknown function `{}`", name.name),
    )
    .with_label("no such function")
    .with_help("functions are `len(set)`, `min(a, b)`, `max(a, b)` and `abs(n)`")
    .with_suggestion(name.span, closest(&name.name, FUNCTIONS.iter().copied()))
}

/// PMF205: a call with the wrong number of arguments.
fn wrong_arity(file: &str, call: &Expr, name: &Ident, arity: usize, found: usize) -> Diagnostic {
    Diagnostic::new(
        Code::WrongArity,
        file,
        call.span,
        format!(
            "`{}` takes {arity} argument{}, found {found}",
            name.name,
            if arity == 1 { "" } else { "s" },
        ),
    )
    .with_label("wrong number of arguments")
}

/// PMF203: a score compared with a number outside 0–100.
fn score_out_of_range(file: &str, literal: &Expr, v: f64) -> Diagnostic {
    Diagnostic::new(
        Code::ScoreOutOfRange,
        file,
        literal.span,
        format!("score compared with `{v}`, outside 0–100"),
    )
    .with_label("a score is never this value")
    .with_help("scores run from 0 to 100; this comparison is always the same")
}

/// PMF107: a path that starts with no root or built-in name.
fn unknown_identifier(file: &str, schema: &Type, first: &Ident) -> Diagnostic {
    let other = first.name.as_str();
    let is_field = matches!(schema, Type::Record(fields) if fields.contains_key(other));
    let mut names: Vec<&str> = ROOTS.to_vec();
    names.extend(BUILTIN_NAMES);
    let d = Diagnostic::new(
        Code::UnknownIdentifier,
        file,
        first.span,
        format!("unknown identifier `{other}`"),
    )
    .with_label("not a known name")
    .with_help("paths start with `partner`, `target` or `observed`; `compatible` and `sustainable` are built in");
    if is_field {
        // A field without its root: which root is for the user.
        let mut d = d.with_help(format!(
            "did you mean `partner.{other}` (or `target.{other}`, `observed.{other}`)?"
        ));
        for root in ROOTS {
            d = d.with_fix(Fix::maybe(first.span, format!("{root}.{other}")));
        }
        d
    } else {
        d.with_suggestion(first.span, closest(other, names.iter().copied()))
    }
}

/// PMF106: a field of a value of type `ty`, which has none.
fn field_of_fieldless(file: &str, seg: &Ident, ty: &Type) -> Diagnostic {
    let d = Diagnostic::new(
        Code::UnknownField,
        file,
        seg.span,
        format!("`{ty}` has no field `{}`", seg.name),
    )
    .with_label("no fields here");
    if matches!(ty, Type::Set(_)) && seg.name == "len" {
        d.with_help("use `len(...)` for the size of a set")
    } else {
        d
    }
}
