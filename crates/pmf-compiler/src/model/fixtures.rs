//! Test fixtures: `fixture NAME [like BASE] { ... }` names a record, and a
//! test state `partner like NAME { ... }` (or `target`, `observed`) starts
//! from it and refines it, so a test restates only what it changes.
//!
//! Refining is by field: a field the refining record gives replaces the
//! base's, except that a record refines a record field by field (so
//! `metrics: { stability: 40 }` keeps the other metrics); every other field
//! of the base is kept, in its place. Fixtures belong to the file that
//! declares them, as its tests do.
//!
//! [`expand_tests`] returns each test with its states refined out (no
//! `like` left), which is what `pmf check` checks and `pmf test` runs. A
//! state whose `like` names no fixture, or a cycle of fixtures, keeps its
//! `like` and only its own fields; the diagnostics say why, and the
//! checks then treat the state as partial (no cascade of "lacks a field").

use std::collections::HashMap;

use pmf_syntax::ast::{DeclKind, FixtureDecl, Ident, RecordValue, TestDecl, ValueNode};
use pmf_syntax::diagnostics::{Code, Diagnostic};

use crate::check::unknown;

/// A file's tests with their states refined, and what was wrong with its
/// fixtures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpandedTests {
    /// The tests, in order; a state's `like` is `None` once refined.
    pub tests: Vec<TestDecl>,
    /// Unknown, cyclic or duplicate fixtures.
    pub diagnostics: Vec<Diagnostic>,
    /// The file's fixtures as written (for their own checks).
    pub fixtures: Vec<FixtureDecl>,
}

/// The tests among `decls` (the declarations of `file`), their states
/// refined from the file's fixtures.
pub(crate) fn expand_tests<'a>(
    file: &str,
    decls: impl IntoIterator<Item = &'a DeclKind>,
) -> ExpandedTests {
    let mut fixtures: HashMap<&str, &FixtureDecl> = HashMap::new();
    let mut tests = Vec::new();
    let mut declared = Vec::new();
    let mut diagnostics = Vec::new();
    for decl in decls {
        match decl {
            DeclKind::Fixture(f) => {
                declared.push(f.clone());
                if let Some(first) = fixtures.get(f.name.name.as_str()) {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::DuplicateDeclaration,
                            file,
                            f.name.span,
                            format!("fixture `{}` is declared twice", f.name.name),
                        )
                        .with_label("declared again here")
                        .with_secondary(file, first.name.span, "first declared here")
                        .with_help("rename one of them, or merge their fields"),
                    );
                } else {
                    fixtures.insert(f.name.name.as_str(), f);
                }
            }
            DeclKind::Test(t) => tests.push(t),
            _ => {}
        }
    }
    let mut resolver = Resolver {
        file,
        fixtures,
        resolved: HashMap::new(),
        diagnostics,
    };
    // Every fixture is resolved, used or not, so that its mistakes show.
    let mut names: Vec<&str> = resolver.fixtures.keys().copied().collect();
    names.sort_unstable();
    for name in names {
        resolver.fixture(name, &mut Vec::new());
    }
    let tests = tests
        .into_iter()
        .map(|t| {
            let mut t = t.clone();
            for state in &mut t.states {
                let Some(like) = &state.like else { continue };
                if let Some(base) = resolver.base(like, &mut Vec::new()) {
                    state.record = refine(&base, &state.record);
                    state.like = None;
                }
            }
            t
        })
        .collect();
    ExpandedTests {
        tests,
        diagnostics: resolver.diagnostics,
        fixtures: declared,
    }
}

/// `base` refined by `over`: `over`'s fields replace the base's (records
/// field by field), in the base's order, new fields after; the span is
/// `over`'s.
pub fn refine(base: &RecordValue, over: &RecordValue) -> RecordValue {
    let mut fields = base.fields.clone();
    for (name, value) in &over.fields {
        match fields.iter_mut().find(|(n, _)| n.name == name.name) {
            Some((n, slot)) => {
                *slot = match (&*slot, value) {
                    (ValueNode::Record(b), ValueNode::Record(o)) => ValueNode::Record(refine(b, o)),
                    _ => value.clone(),
                };
                *n = name.clone();
            }
            None => fields.push((name.clone(), value.clone())),
        }
    }
    RecordValue {
        fields,
        span: over.span,
    }
}

/// Fixtures resolved through their `like` chains, once each.
struct Resolver<'a> {
    file: &'a str,
    fixtures: HashMap<&'a str, &'a FixtureDecl>,
    /// Name → the record it stands for; `None`: its chain is broken.
    resolved: HashMap<&'a str, Option<RecordValue>>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Resolver<'a> {
    /// The record `like` names, reporting an unknown name; `None` when
    /// there is no such fixture or its chain is broken.
    fn base(&mut self, like: &Ident, visiting: &mut Vec<&'a str>) -> Option<RecordValue> {
        let Some((&name, _)) = self.fixtures.get_key_value(like.name.as_str()) else {
            let mut known: Vec<&str> = self.fixtures.keys().copied().collect();
            known.sort_unstable();
            self.diagnostics.push(unknown(
                Code::UnknownFixture,
                self.file,
                "fixture",
                like,
                &known,
            ));
            return None;
        };
        if visiting.contains(&name) {
            return None;
        }
        self.fixture(name, visiting)
    }

    /// The record of fixture `name` (which exists), refined from its base.
    fn fixture(&mut self, name: &'a str, visiting: &mut Vec<&'a str>) -> Option<RecordValue> {
        if let Some(done) = self.resolved.get(name) {
            return done.clone();
        }
        let decl = *self.fixtures.get(name)?;
        let Some(like) = &decl.like else {
            self.resolved.insert(name, Some(decl.record.clone()));
            return Some(decl.record.clone());
        };
        visiting.push(name);
        let record = if visiting.contains(&like.name.as_str()) {
            let chain: Vec<String> = visiting
                .iter()
                .skip_while(|n| **n != like.name.as_str())
                .map(|n| format!("`{n}`"))
                .collect();
            self.diagnostics.push(
                Diagnostic::new(
                    Code::CyclicFixture,
                    self.file,
                    like.span,
                    format!("fixture `{name}` refines itself"),
                )
                .with_label(format!("{} → `{}`", chain.join(" → "), like.name.as_str()))
                .with_help("one fixture of the cycle must give its fields without `like`"),
            );
            None
        } else {
            self.base(like, visiting)
                .map(|base| refine(&base, &decl.record))
        };
        visiting.pop();
        self.resolved.insert(name, record.clone());
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls(text: &str) -> Vec<DeclKind> {
        let parsed = pmf_syntax::parse("t.pmf", text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        parsed.ast.decls.into_iter().map(|d| d.kind).collect()
    }

    fn fields(r: &RecordValue) -> Vec<String> {
        r.fields
            .iter()
            .map(|(n, v)| match v {
                ValueNode::Record(inner) => format!("{}{{{}}}", n.name, fields(inner).join(",")),
                ValueNode::Null(_) => format!("{}=null", n.name),
                ValueNode::Expr(e) => format!("{}={:?}", n.name, e.kind),
            })
            .collect()
    }

    #[test]
    fn a_state_refines_its_fixture_field_by_field_and_records_deeply() {
        let d = decls(
            "policy t extends kwanus\n\
             fixture base { id: \"p\", power: 5, metrics: { stability: 80, ecosystem: 70 } }\n\
             fixture strong like base { power: 9 }\n\
             test \"x\" {\n  partner like strong { metrics: { stability: 40 }, region: \"eu\" }\n}\n",
        );
        let out = expand_tests("t.pmf", &d);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        let state = &out.tests[0].states[0];
        assert_eq!(state.like, None);
        assert_eq!(
            fields(&state.record),
            [
                "id=Str(\"p\")",
                "power=Number(Number(9.0))",
                "metrics{stability=Number(Number(40.0)),ecosystem=Number(Number(70.0))}",
                "region=Str(\"eu\")",
            ]
        );
    }

    #[test]
    fn unknown_cyclic_and_twice_declared_fixtures_are_reported_once_each() {
        let d = decls(
            "policy t extends kwanus\n\
             fixture a like b { power: 1 }\n\
             fixture b like a { power: 2 }\n\
             fixture c { power: 3 }\n\
             fixture c { power: 4 }\n\
             test \"x\" {\n  partner like bas { power: 9 }\n}\n\
             test \"y\" {\n  partner like a { power: 9 }\n}\n",
        );
        let out = expand_tests("t.pmf", &d);
        let codes: Vec<&str> = out.diagnostics.iter().map(|d| d.code.id()).collect();
        assert_eq!(
            codes,
            ["PMF101", "PMF113", "PMF112"],
            "{:?}",
            out.diagnostics
        );
        // The states that could not be refined keep their `like` and fields.
        assert!(out.tests.iter().all(|t| t.states[0].like.is_some()));
    }
}
