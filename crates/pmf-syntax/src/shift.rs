//! Moving a syntax tree: every span of a node, visited in place.
//!
//! A chunk is parsed on its own, at any place (`parser::parse_chunk`); the
//! queries move its tree to where the chunk sits in the file. Every node is
//! destructured in full, so a new span field fails to compile here until it
//! is visited too.

use std::sync::Arc;

use crate::diagnostics::{Diagnostic, Fix, Label};

use super::ast::*;
use super::parser::ChunkParse;
use super::span::Span;

/// A node whose spans can be visited.
pub trait Spanned {
    /// Call `f` on every span of the node.
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span));

    /// Move every span `offset` bytes to the right.
    fn shift(&mut self, offset: usize) {
        if offset != 0 {
            self.each_span(&mut |s| *s = s.shifted(offset));
        }
    }
}

impl Spanned for Span {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        f(self)
    }
}

impl<T: Spanned> Spanned for Option<T> {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        if let Some(x) = self {
            x.each_span(f);
        }
    }
}

impl<T: Spanned> Spanned for Vec<T> {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        for x in self {
            x.each_span(f);
        }
    }
}

impl<T: Spanned> Spanned for Box<T> {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        (**self).each_span(f)
    }
}

impl<T: Spanned + Clone> Spanned for Arc<T> {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        Arc::make_mut(self).each_span(f)
    }
}

impl Spanned for Ident {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Ident { name: _, span } = self;
        f(span);
    }
}

impl Spanned for StrLit {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let StrLit { value: _, span } = self;
        f(span);
    }
}

impl Spanned for NumLit {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let NumLit { value: _, span } = self;
        f(span);
    }
}

impl Spanned for Comment {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Comment { text: _, span } = self;
        f(span);
    }
}

impl Spanned for Decl {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Decl {
            override_kw,
            kind,
            span,
        } = self;
        override_kw.each_span(f);
        kind.each_span(f);
        f(span);
    }
}

impl Spanned for DeclKind {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        match self {
            DeclKind::Policy(x) => x.each_span(f),
            DeclKind::Authority(x) => x.each_span(f),
            DeclKind::Category(x) => x.each_span(f),
            DeclKind::Partner(x) => x.each_span(f),
            DeclKind::Migration(x) => x.each_span(f),
            DeclKind::Order(x) => x.each_span(f),
            DeclKind::Rules(x) => x.each_span(f),
            DeclKind::Validation(x) => x.each_span(f),
            DeclKind::Health(x) => x.each_span(f),
            DeclKind::Flow(x) => x.each_span(f),
            DeclKind::Ceiling(x) => x.each_span(f),
            DeclKind::Rite(x) => x.each_span(f),
            DeclKind::Key(x) => x.each_span(f),
            DeclKind::Test(x) => x.each_span(f),
            DeclKind::Fixture(x) => x.each_span(f),
        }
    }
}

impl Spanned for PolicyHeader {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let PolicyHeader { name, parents } = self;
        name.each_span(f);
        parents.each_span(f);
    }
}

impl Spanned for Authority {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Authority {
            name,
            title,
            governs,
        } = self;
        name.each_span(f);
        title.each_span(f);
        governs.each_span(f);
    }
}

impl Spanned for Category {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Category {
            name,
            title,
            covers,
        } = self;
        name.each_span(f);
        title.each_span(f);
        covers.each_span(f);
    }
}

impl Spanned for FieldPath {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let FieldPath { segments, span } = self;
        segments.each_span(f);
        f(span);
    }
}

impl Spanned for Schema {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Schema { fields } = self;
        fields.each_span(f);
    }
}

impl Spanned for FieldDecl {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let FieldDecl { name, ty, span } = self;
        name.each_span(f);
        ty.each_span(f);
        f(span);
    }
}

impl Spanned for TypeExpr {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let TypeExpr { kind, span } = self;
        match kind {
            TypeExprKind::Named(x) => x.each_span(f),
            TypeExprKind::Set(x) => x.each_span(f),
            TypeExprKind::Record(x) => x.each_span(f),
        }
        f(span);
    }
}

impl Spanned for Migration {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Migration { name, title, items } = self;
        name.each_span(f);
        title.each_span(f);
        items.each_span(f);
    }
}

impl Spanned for MigrationItem {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let MigrationItem { kind, span } = self;
        match kind {
            MigrationItemKind::When(x) => x.each_span(f),
            MigrationItemKind::Reversible
            | MigrationItemKind::BackwardCompatible
            | MigrationItemKind::RequiresMapping => {}
            MigrationItemKind::Approve(x) => x.each_span(f),
            MigrationItemKind::Touches(x) => x.each_span(f),
            MigrationItemKind::To(x) => x.each_span(f),
        }
        f(span);
    }
}

impl Spanned for Order {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Order { types } = self;
        types.each_span(f);
    }
}

impl Spanned for RuleBlock {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let RuleBlock { kind: _, rules } = self;
        rules.each_span(f);
    }
}

impl Spanned for Rule {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Rule {
            name,
            condition,
            action,
            span,
        } = self;
        name.each_span(f);
        condition.each_span(f);
        action.each_span(f);
        f(span);
    }
}

impl Spanned for Validation {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Validation { dimensions } = self;
        dimensions.each_span(f);
    }
}

impl Spanned for Dimension {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Dimension { name, checks, span } = self;
        name.each_span(f);
        checks.each_span(f);
        f(span);
    }
}

impl Spanned for Check {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Check {
            name,
            condition,
            span,
        } = self;
        name.each_span(f);
        condition.each_span(f);
        f(span);
    }
}

impl Spanned for Health {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Health { factors, bands } = self;
        factors.each_span(f);
        bands.each_span(f);
    }
}

impl Spanned for Factor {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Factor {
            name,
            weight,
            source,
            span,
        } = self;
        name.each_span(f);
        weight.each_span(f);
        source.each_span(f);
        f(span);
    }
}

impl Spanned for Band {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Band {
            low,
            high,
            status,
            status_label,
            action,
            label,
            span,
        } = self;
        low.each_span(f);
        high.each_span(f);
        status.each_span(f);
        status_label.each_span(f);
        action.each_span(f);
        label.each_span(f);
        f(span);
    }
}

impl Spanned for Flow {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Flow {
            name,
            phases,
            edges,
        } = self;
        name.each_span(f);
        phases.each_span(f);
        edges.each_span(f);
    }
}

impl Spanned for PhaseDecl {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let PhaseDecl {
            name,
            fallible: _,
            description,
            span,
        } = self;
        name.each_span(f);
        description.each_span(f);
        f(span);
    }
}

impl Spanned for Edge {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Edge {
            from,
            to,
            kind: _,
            bound,
            span,
        } = self;
        from.each_span(f);
        to.each_span(f);
        bound.each_span(f);
        f(span);
    }
}

impl Spanned for Ceiling {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Ceiling {
            field,
            op: _,
            op_span,
            value,
        } = self;
        field.each_span(f);
        f(op_span);
        value.each_span(f);
    }
}

impl Spanned for Rite {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Rite { phase, words } = self;
        phase.each_span(f);
        words.each_span(f);
    }
}

impl Spanned for Key {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Key {
            authority,
            key,
            label,
        } = self;
        authority.each_span(f);
        key.each_span(f);
        label.each_span(f);
    }
}

impl Spanned for Expr {
    // Recursion is bounded: the parser never builds a tree deeper than
    // `MAX_EXPR_DEPTH` (plus one marker level).
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Expr { kind, span } = self;
        match kind {
            ExprKind::Bool(_)
            | ExprKind::Number(_)
            | ExprKind::Str(_)
            | ExprKind::Version(_)
            | ExprKind::Error => {}
            ExprKind::Path(x) => x.each_span(f),
            ExprKind::Call(call) => {
                call.name.each_span(f);
                call.args.each_span(f);
            }
            ExprKind::Set(x) => x.each_span(f),
            ExprKind::Unary(_, x) => x.each_span(f),
            ExprKind::Binary(_, a, b) => {
                a.each_span(f);
                b.each_span(f);
            }
            ExprKind::Chain(_, operands) => operands.each_span(f),
        }
        f(span);
    }
}

impl Spanned for TestDecl {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let TestDecl {
            name,
            states,
            approved,
            expects,
        } = self;
        name.each_span(f);
        states.each_span(f);
        approved.each_span(f);
        expects.each_span(f);
    }
}

impl Spanned for TestState {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let TestState {
            root: _,
            like,
            record,
            span,
        } = self;
        like.each_span(f);
        record.each_span(f);
        f(span);
    }
}

impl Spanned for FixtureDecl {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let FixtureDecl { name, like, record } = self;
        name.each_span(f);
        like.each_span(f);
        record.each_span(f);
    }
}

impl Spanned for RecordValue {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let RecordValue { fields, span } = self;
        for (name, value) in fields {
            name.each_span(f);
            value.each_span(f);
        }
        f(span);
    }
}

impl Spanned for ValueNode {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        match self {
            ValueNode::Record(x) => x.each_span(f),
            ValueNode::Null(s) => f(s),
            ValueNode::Expr(x) => x.each_span(f),
        }
    }
}

impl Spanned for Expect {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Expect {
            what: _,
            values,
            span,
        } = self;
        values.each_span(f);
        f(span);
    }
}

impl Spanned for Label {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Label {
            file: _,
            span,
            message: _,
        } = self;
        f(span);
    }
}

impl Spanned for Fix {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Fix {
            span,
            replacement: _,
            machine_applicable: _,
        } = self;
        f(span);
    }
}

impl Spanned for Diagnostic {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let Diagnostic {
            code: _,
            severity: _,
            message: _,
            primary,
            labels,
            help: _,
            fixes,
        } = self;
        primary.each_span(f);
        labels.each_span(f);
        fixes.each_span(f);
    }
}

impl Spanned for ChunkParse {
    fn each_span(&mut self, f: &mut dyn FnMut(&mut Span)) {
        let ChunkParse {
            decls,
            lexical,
            diagnostics,
            comments,
            broken_header: _,
        } = self;
        decls.each_span(f);
        lexical.each_span(f);
        diagnostics.each_span(f);
        comments.each_span(f);
    }
}
