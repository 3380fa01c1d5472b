//! Test blocks: what a `test` expects names something the policy (or the
//! runtime) has, and its `partner`, `target` and `observed` states fit the
//! partner schema. `pmf test` would fail on either; checking them here shows
//! them in `pmf check` and in the editor.
//!
//! Each name check has its own function; the states are walked once, the
//! walk making the type codes it finds.

use super::names::unknown_field_diag;
use super::{Context, unknown};
use crate::model::types::Type;
use crate::model::{TEST_ACTIONS, TEST_OUTCOMES, TEST_VERDICTS};
use pmf_syntax::Place;
use pmf_syntax::ast::{
    ExpectWhat, Expr, ExprKind, FixtureDecl, Ident, RecordValue, TestDecl, TestRoot, UnaryOp,
    ValueNode,
};
use pmf_syntax::diagnostics::{Code, Diagnostic};

/// Check the `test` declarations `tests` of `file` (their states refined
/// from its fixtures) and the `fixtures` themselves against its policy.
pub fn check(
    cx: &Context<'_>,
    file: &str,
    tests: &[TestDecl],
    fixtures: &[FixtureDecl],
) -> Vec<Diagnostic> {
    let mut out = state_problems(cx, file, tests, fixtures);
    out.extend(unknown_test_authorities(cx, file, tests));
    out.extend(unknown_expected_migrations(cx, file, tests));
    out.extend(unknown_expectations(cx, file, tests));
    out
}

/// What the fixtures' and tests' states do not fit in the partner schema:
/// one walk of each state finds PMF207, PMF201, PMF203, PMF204 and PMF106.
fn state_problems(
    cx: &Context<'_>,
    file: &str,
    tests: &[TestDecl],
    fixtures: &[FixtureDecl],
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Type::Record(_) = &cx.schema {
        // A fixture may be partial: the states that refine it complete it.
        for f in fixtures {
            let mut walk = Walk {
                file,
                full: false,
                out: &mut out,
            };
            walk.record(&cx.schema, &f.record, "partner");
        }
    }
    for t in tests {
        check_states(cx, file, t, &mut out);
    }
    out
}

/// The values a test expects of kind `what`.
fn expected(t: &TestDecl, what: ExpectWhat) -> impl Iterator<Item = &Ident> {
    t.expects
        .iter()
        .filter(move |x| x.what == what)
        .flat_map(|x| x.values.iter())
}

/// PMF103: a test approved by, or expecting approvals of, an authority the
/// policy does not declare.
fn unknown_test_authorities(cx: &Context<'_>, file: &str, tests: &[TestDecl]) -> Vec<Diagnostic> {
    let authorities = cx.authority_names();
    tests
        .iter()
        .flat_map(|t| {
            t.approved
                .iter()
                .flatten()
                .chain(expected(t, ExpectWhat::Approvals))
        })
        .filter(|a| !cx.has_authority(&a.name))
        .map(|a| unknown(Code::UnknownAuthority, file, "authority", a, &authorities))
        .collect()
}

/// PMF105: a test expecting a migration type the policy does not declare.
fn unknown_expected_migrations(
    cx: &Context<'_>,
    file: &str,
    tests: &[TestDecl],
) -> Vec<Diagnostic> {
    tests
        .iter()
        .flat_map(|t| expected(t, ExpectWhat::Type))
        .filter(|v| !cx.has_migration(&v.name))
        .map(|v| {
            unknown(
                Code::UnknownMigration,
                file,
                "migration type",
                v,
                cx.migration_names(),
            )
        })
        .collect()
}

/// PMF111: a test expecting a band, action, outcome or verdict that does
/// not exist.
fn unknown_expectations(cx: &Context<'_>, file: &str, tests: &[TestDecl]) -> Vec<Diagnostic> {
    let bands: Vec<&str> = cx
        .policy
        .health()
        .map(|(_, h)| h.bands.iter().map(|b| b.status.name.as_str()).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for x in tests.iter().flat_map(|t| &t.expects) {
        for v in &x.values {
            let name = v.name.as_str();
            let found = match x.what {
                ExpectWhat::Band if !bands.contains(&name) => {
                    Some(expectation(file, "band", v, &bands))
                }
                ExpectWhat::Action if !TEST_ACTIONS.contains(&name) => {
                    Some(expectation(file, "action", v, &TEST_ACTIONS))
                }
                ExpectWhat::Outcome if !TEST_OUTCOMES.contains(&name) => {
                    Some(expectation(file, "outcome", v, &TEST_OUTCOMES))
                }
                ExpectWhat::Validation if !TEST_VERDICTS.contains(&name) => {
                    Some(expectation(file, "validation verdict", v, &TEST_VERDICTS))
                }
                _ => None,
            };
            out.extend(found);
        }
    }
    out
}

/// PMF111: an expected band, action, outcome or verdict that no run can give.
fn expectation(file: &str, what: &str, v: &Ident, candidates: &[&str]) -> Diagnostic {
    unknown(Code::UnknownExpectation, file, what, v, candidates)
        .with_label(format!("no run of this policy ends with this {what}"))
}

/// The problems of test `t`'s states: none for `partner` (PMF207), and
/// what the walk of each finds.
fn check_states(cx: &Context<'_>, file: &str, t: &TestDecl, out: &mut Vec<Diagnostic>) {
    if !t.states.iter().any(|s| s.root == TestRoot::Partner) {
        out.push(
            Diagnostic::new(
                Code::TestStateMismatch,
                file,
                t.name.span,
                "the test gives no `partner { ... }` state",
            )
            .with_label("what partner does this test migrate?")
            .with_help("add `partner { ... }` with a value for every field of the partner schema"),
        );
    }
    let Type::Record(_) = &cx.schema else {
        return;
    };
    for s in &t.states {
        // A state whose `like` is left could not be refined (PMF112,
        // PMF113): what it lacks may be the fixture's, so it is partial.
        let (root, full) = match s.root {
            TestRoot::Partner => ("partner", s.like.is_none()),
            TestRoot::Target => ("target", false),
            TestRoot::Observed => ("observed", false),
        };
        let mut walk = Walk {
            file,
            full,
            out: &mut *out,
        };
        walk.record(&cx.schema, &s.record, root);
    }
}

/// A walk of one test state against the schema.
struct Walk<'a> {
    file: &'a str,
    /// A full state (`partner`): every field, no `null`.
    full: bool,
    out: &'a mut Vec<Diagnostic>,
}

impl Walk<'_> {
    fn record(&mut self, ty: &Type, r: &RecordValue, path: &str) {
        let fields = match ty {
            Type::Record(fields) => fields,
            Type::Unknown => return,
            other => {
                self.out
                    .push(wrong_type(self.file, r.span, path, other, "a record"));
                return;
            }
        };
        let mut seen: Vec<&str> = Vec::with_capacity(r.fields.len());
        for (name, value) in &r.fields {
            seen.push(name.name.as_str());
            let Some(fty) = fields.get(name.name.as_str()) else {
                let owner = path.split('.').next().unwrap_or(path);
                self.out.push(
                    unknown_field_diag(self.file, name, fields.keys().map(String::as_str), owner)
                        .with_label(format!("`{path}` has no such field in the partner schema")),
                );
                continue;
            };
            let inner = format!("{path}.{}", name.name);
            match value {
                ValueNode::Record(r) => self.record(fty, r, &inner),
                ValueNode::Null(span) => {
                    if self.full {
                        self.out.push(
                            Diagnostic::new(
                                Code::TestStateMismatch,
                                self.file,
                                *span,
                                format!("`{inner}` is `null` in the partner state"),
                            )
                            .with_label("the partner state is full: every field has a value")
                            .with_help(format!(
                                "give `{inner}` a `{fty}`; `null` (not measured) belongs in `observed`"
                            )),
                        );
                    }
                }
                ValueNode::Expr(e) => self.value(fty, e, &inner),
            }
        }
        if self.full {
            let missing: Vec<String> = fields
                .iter()
                .filter(|(n, _)| !seen.contains(&n.as_str()))
                .map(|(n, t)| format!("`{n}: {t}`"))
                .collect();
            if !missing.is_empty() {
                let shown: Vec<&str> = missing.iter().take(8).map(String::as_str).collect();
                let more = if missing.len() > shown.len() {
                    format!(" and {} more", missing.len() - shown.len())
                } else {
                    String::new()
                };
                self.out.push(
                    Diagnostic::new(
                        Code::TestStateMismatch,
                        self.file,
                        r.span,
                        format!(
                            "`{path}` lacks {} of the partner schema",
                            if missing.len() == 1 {
                                "a field".to_string()
                            } else {
                                format!("{} fields", missing.len())
                            }
                        ),
                    )
                    .with_label("the partner state is full: every field has a value")
                    .with_help(format!("add {}{more}", shown.join(", "))),
                );
            }
        }
    }

    fn value(&mut self, ty: &Type, e: &Expr, path: &str) {
        let file = self.file;
        let found = match &e.kind {
            ExprKind::Bool(_) => "a boolean",
            ExprKind::Number(_) => "a number",
            ExprKind::Unary(UnaryOp::Neg, x) if matches!(x.kind, ExprKind::Number(_)) => "a number",
            ExprKind::Str(_) => "a string",
            ExprKind::Version(_) => "a version",
            ExprKind::Set(_) => "a set",
            ExprKind::Error => return,
            _ => {
                self.out.push(
                    Diagnostic::new(
                        Code::TestStateMismatch,
                        file,
                        e.span,
                        format!("`{path}` is not a literal value"),
                    )
                    .with_label("computed, not written out")
                    .with_help(format!(
                        "a test state holds literal values: write the `{ty}` itself"
                    )),
                );
                return;
            }
        };
        let fits = matches!(
            (ty, &e.kind),
            (Type::Unknown, _)
                | (Type::Bool, ExprKind::Bool(_))
                | (
                    Type::Number | Type::Score,
                    ExprKind::Number(_) | ExprKind::Unary(..)
                )
                | (Type::String, ExprKind::Str(_))
                | (Type::Version, ExprKind::Version(_) | ExprKind::Str(_))
                | (Type::Set(_), ExprKind::Set(_))
        );
        if !fits {
            self.out.push(wrong_type(file, e.span, path, ty, found));
            return;
        }
        match (ty, &e.kind) {
            (Type::Score, _) => {
                let n = match &e.kind {
                    ExprKind::Number(n) => n.0,
                    ExprKind::Unary(_, x) => match &x.kind {
                        ExprKind::Number(n) => -n.0,
                        _ => return,
                    },
                    _ => return,
                };
                if !(0.0..=100.0).contains(&n) {
                    self.out.push(
                        Diagnostic::new(
                            Code::ScoreOutOfRange,
                            file,
                            e.span,
                            format!("`{path}` is a score, but {n} is outside 0–100"),
                        )
                        .with_label("not a score")
                        .with_help("scores run from 0 to 100"),
                    );
                }
            }
            (Type::Version, ExprKind::Version(text) | ExprKind::Str(text)) => {
                if let Err(err) = semver::Version::parse(text) {
                    self.out.push(
                        Diagnostic::new(
                            Code::MalformedVersion,
                            file,
                            e.span,
                            format!("malformed version `{text}` for `{path}`"),
                        )
                        .with_label(err.to_string())
                        .with_help("a version is MAJOR.MINOR.PATCH, such as `1.4.0`"),
                    );
                }
            }
            (Type::Set(elem), ExprKind::Set(items)) => {
                let inner = format!("{path}[]");
                for item in items {
                    self.value(elem, item, &inner);
                }
            }
            _ => {}
        }
    }
}

/// PMF201: a value of a test state that is not of its field's type.
fn wrong_type(file: &str, span: Place, path: &str, ty: &Type, found: &str) -> Diagnostic {
    Diagnostic::new(
        Code::TypeMismatch,
        file,
        span,
        format!("`{path}` is a `{ty}`, but the test gives {found}"),
    )
    .with_label(format!("expected a `{ty}`"))
    .with_help(format!(
        "write a `{ty}` value here, as the partner schema declares"
    ))
}
