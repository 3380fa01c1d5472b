//! Name occurrences: every place a file names an authority, category,
//! migration type, phase, schema field, policy, type, action, function,
//! root or authority key, and whether the place declares it. Hover, definition and
//! references start here.
//!
//! The lists are salsa queries over each chunk's syntax tree, in stable
//! places, so an edit re-walks only the chunk it touched; whoever shows an
//! occurrence maps its place to bytes (`DocRef::bytes`).

use crate::check::types::{BUILTIN_NAMES, FUNCTIONS, ROOTS};
use crate::db::{Placed, SourceFile, parse_file, placed};
use crate::syntax::Place;
use crate::syntax::ast::{
    Decl, DeclKind, Expr, ExprKind, FieldDecl, FieldPath, Ident, MigrationItemKind, TypeExpr,
    TypeExprKind,
};

/// What a name refers to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Symbol {
    /// A policy (`policy NAME`, `extends NAME`).
    Policy(String),
    /// An authority.
    Authority(String),
    /// A migration category.
    Category(String),
    /// A migration type.
    Migration(String),
    /// A phase of the flow (or `release` in a rite).
    Phase(String),
    /// A schema field by its path from the schema root, such as
    /// `["metrics", "stability"]`.
    Field(Vec<String>),
    /// `partner`, `target` or `observed`.
    Root(String),
    /// `compatible` or `sustainable`.
    Builtin(String),
    /// A built-in function.
    Function(String),
    /// A type name.
    Type(String),
    /// A runtime action.
    Action(String),
    /// A validation dimension.
    Dimension(String),
    /// A public key of an authority: the authority and the key as written
    /// (the occurrence is the key's string; a key declares itself).
    Key(String, String),
    /// A test fixture (`fixture NAME`, `like NAME`), of its own file.
    Fixture(String),
}

/// One occurrence of a name in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    /// Where the name is written.
    pub span: Place,
    /// What it names.
    pub symbol: Symbol,
    /// True when this place declares the symbol.
    pub def: bool,
}

/// Every occurrence of a name in one chunk of a file, in stable places and
/// source order: salsa keeps a chunk's list while the chunk's text and
/// place are unchanged, so an edit walks only the chunk it touched.
#[salsa::tracked(returns(ref))]
pub fn chunk_occurrences<'db>(db: &'db dyn salsa::Database, chunk: Placed<'db>) -> Vec<Occurrence> {
    let mut out = Vec::new();
    for decl in &placed(db, chunk).parse.decls {
        decl_occurrences(decl, &mut out);
    }
    out.sort_by_key(|o| (o.span.start, o.span.end));
    out
}

/// Every occurrence of a name in `file`, in source order (for references,
/// which need them all).
#[salsa::tracked(returns(ref))]
pub fn occurrences(db: &dyn salsa::Database, file: SourceFile) -> Vec<Occurrence> {
    parse_file(db, file)
        .chunks
        .iter()
        .flat_map(|c| chunk_occurrences(db, c.placed).iter().cloned())
        .collect()
}

/// The occurrence at byte `offset` of `file` (the cursor may sit just
/// after the name): only the chunk at the offset is read (and the one
/// before, when the offset is where a chunk starts).
pub fn occurrence_at(
    db: &dyn salsa::Database,
    file: SourceFile,
    offset: usize,
) -> Option<Occurrence> {
    let off = offset as u32;
    let chunks = parse_file(db, file);
    chunks
        .around(off)
        .find_map(|c| at(chunk_occurrences(db, c.placed), c.to_stable(off)).cloned())
}

/// The occurrence at place `offset` of a list in source order (the cursor
/// may sit just after the name).
pub fn at(occurrences: &[Occurrence], offset: u32) -> Option<&Occurrence> {
    // Occurrences do not overlap: the last one starting at or before the
    // offset is the only candidate.
    let i = occurrences.partition_point(|o| o.span.start <= offset);
    occurrences
        .get(..i)?
        .last()
        .filter(|o| offset <= o.span.end)
}

fn push(out: &mut Vec<Occurrence>, ident: &Ident, symbol: Symbol, def: bool) {
    out.push(Occurrence {
        span: ident.span,
        symbol,
        def,
    });
}

fn name(ident: &Ident) -> String {
    ident.name.to_string()
}

fn decl_occurrences(decl: &Decl, out: &mut Vec<Occurrence>) {
    match &decl.kind {
        DeclKind::Policy(h) => {
            push(out, &h.name, Symbol::Policy(name(&h.name)), true);
            for p in &h.parents {
                push(out, p, Symbol::Policy(name(p)), false);
            }
        }
        DeclKind::Authority(a) => {
            push(out, &a.name, Symbol::Authority(name(&a.name)), true);
            for c in &a.governs {
                push(out, c, Symbol::Category(name(c)), false);
            }
        }
        DeclKind::Category(c) => {
            push(out, &c.name, Symbol::Category(name(&c.name)), true);
            for path in &c.covers {
                field_path(path, out);
            }
        }
        DeclKind::Partner(schema) => {
            for f in &schema.fields {
                field_decl(f, &[], out);
            }
        }
        DeclKind::Migration(m) => {
            push(out, &m.name, Symbol::Migration(name(&m.name)), true);
            for item in &m.items {
                match &item.kind {
                    MigrationItemKind::When(e) => expr(e, out),
                    MigrationItemKind::To(Some(e)) => expr(e, out),
                    MigrationItemKind::Approve(Some(list)) => {
                        for a in list {
                            push(out, a, Symbol::Authority(name(a)), false);
                        }
                    }
                    MigrationItemKind::Touches(list) => {
                        for c in list {
                            push(out, c, Symbol::Category(name(c)), false);
                        }
                    }
                    _ => {}
                }
            }
        }
        DeclKind::Order(o) => {
            for t in &o.types {
                push(out, t, Symbol::Migration(name(t)), false);
            }
        }
        DeclKind::Rules(block) => {
            for r in &block.rules {
                expr(&r.condition, out);
                push(out, &r.action, Symbol::Action(name(&r.action)), false);
            }
        }
        DeclKind::Validation(v) => {
            for d in &v.dimensions {
                push(out, &d.name, Symbol::Dimension(name(&d.name)), false);
                for c in &d.checks {
                    expr(&c.condition, out);
                }
            }
        }
        DeclKind::Health(h) => {
            for f in &h.factors {
                expr(&f.source, out);
            }
            for b in &h.bands {
                push(out, &b.action, Symbol::Action(name(&b.action)), false);
            }
        }
        DeclKind::Flow(f) => {
            for p in &f.phases {
                push(out, &p.name, Symbol::Phase(name(&p.name)), true);
            }
            for e in &f.edges {
                push(out, &e.from, Symbol::Phase(name(&e.from)), false);
                push(out, &e.to, Symbol::Phase(name(&e.to)), false);
            }
        }
        DeclKind::Ceiling(c) => {
            field_path(&c.field, out);
            expr(&c.value, out);
        }
        DeclKind::Rite(r) => push(out, &r.phase, Symbol::Phase(name(&r.phase)), false),
        DeclKind::Key(k) => {
            push(
                out,
                &k.authority,
                Symbol::Authority(name(&k.authority)),
                false,
            );
            out.push(Occurrence {
                span: k.key.span,
                symbol: Symbol::Key(name(&k.authority), k.key.value.clone()),
                def: true,
            });
        }
        DeclKind::Test(t) => {
            for like in t.states.iter().filter_map(|s| s.like.as_ref()) {
                push(out, like, Symbol::Fixture(name(like)), false);
            }
        }
        DeclKind::Fixture(f) => {
            push(out, &f.name, Symbol::Fixture(name(&f.name)), true);
            if let Some(like) = &f.like {
                push(out, like, Symbol::Fixture(name(like)), false);
            }
        }
    }
}

/// A field declaration under `prefix`, and the fields of its record type.
fn field_decl(f: &FieldDecl, prefix: &[String], out: &mut Vec<Occurrence>) {
    let mut path = prefix.to_vec();
    path.push(name(&f.name));
    push(out, &f.name, Symbol::Field(path.clone()), true);
    type_expr(&f.ty, &path, out);
}

fn type_expr(ty: &TypeExpr, path: &[String], out: &mut Vec<Occurrence>) {
    match &ty.kind {
        TypeExprKind::Named(n) => push(out, n, Symbol::Type(name(n)), false),
        TypeExprKind::Set(inner) => type_expr(inner, path, out),
        TypeExprKind::Record(fields) => {
            for f in fields {
                field_decl(f, path, out);
            }
        }
    }
}

/// A path into the schema without a root (`covers`, `ceiling`).
fn field_path(path: &FieldPath, out: &mut Vec<Occurrence>) {
    segments(&path.segments, out);
}

fn segments(segs: &[Ident], out: &mut Vec<Occurrence>) {
    let mut prefix = Vec::with_capacity(segs.len());
    for s in segs {
        prefix.push(name(s));
        push(out, s, Symbol::Field(prefix.clone()), false);
    }
}

fn expr(e: &Expr, out: &mut Vec<Occurrence>) {
    match &e.kind {
        ExprKind::Path(segs) => {
            let Some((first, rest)) = segs.split_first() else {
                return;
            };
            if ROOTS.contains(&first.name.as_str()) {
                push(out, first, Symbol::Root(name(first)), false);
                segments(rest, out);
            } else if rest.is_empty() && BUILTIN_NAMES.contains(&first.name.as_str()) {
                push(out, first, Symbol::Builtin(name(first)), false);
            }
        }
        ExprKind::Call(call) => {
            let (f, args) = (&call.name, &call.args);
            if FUNCTIONS.contains(&f.name.as_str()) {
                push(out, f, Symbol::Function(name(f)), false);
            }
            for a in args {
                expr(a, out);
            }
        }
        ExprKind::Set(items) => {
            for a in items {
                expr(a, out);
            }
        }
        ExprKind::Unary(_, a) => expr(a, out),
        ExprKind::Binary(_, a, b) => {
            expr(a, out);
            expr(b, out);
        }
        ExprKind::Chain(_, operands) => {
            for a in operands {
                expr(a, out);
            }
        }
        ExprKind::Bool(_)
        | ExprKind::Number(_)
        | ExprKind::Str(_)
        | ExprKind::Version(_)
        | ExprKind::Error => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Session;
    use crate::syntax::Span;

    #[test]
    fn finds_names_and_declarations() {
        let mut s = Session::default();
        let text = "policy a extends kwanus\nauthority X \"x\" governs structural\nceiling metrics.stability <= 9\n";
        let f = s.set_file("a.pmf", text.into());
        let occ = occurrences(s.db(), f);
        let places = &parse_file(s.db(), f).places;
        let at_off = |needle: &str, delta: usize| {
            let off = text.find(needle).unwrap_or_default() + delta;
            let place = places.place(Span::new(off, off)).start;
            at(occ, place).map(|o| (o.symbol.clone(), o.def))
        };
        assert_eq!(
            at_off("kwanus", 2),
            Some((Symbol::Policy("kwanus".into()), false))
        );
        assert_eq!(at_off("X ", 0), Some((Symbol::Authority("X".into()), true)));
        assert_eq!(
            at_off("structural", 10),
            Some((Symbol::Category("structural".into()), false))
        );
        assert_eq!(
            at_off("stability", 1),
            Some((
                Symbol::Field(vec!["metrics".into(), "stability".into()]),
                false
            ))
        );
        assert_eq!(at_off("ceiling", 1), None);
    }

    /// The lookup in one chunk finds, at every offset, what the file's
    /// list finds, also after an edit moves the chunks.
    #[test]
    fn the_lookup_in_a_chunk_agrees_with_the_files_list() {
        let mut s = Session::default();
        let text = "policy a extends kwanus\nauthority X \"x\" governs structural\n\n// note\nceiling metrics.stability <= 9\nauthority Y \"y\" governs behavioral";
        for text in [text.to_string(), format!("// moved\n{text}")] {
            let f = s.set_file("a.pmf", text.clone());
            let all = occurrences(s.db(), f);
            let places = &parse_file(s.db(), f).places;
            assert!(all.len() >= 6, "{all:?}");
            for offset in 0..=text.len() {
                let place = places.place(Span::new(offset, offset)).start;
                let found = occurrence_at(s.db(), f, offset);
                let expected = at(all, place);
                // Where chunks meet, the cursor may also end the name
                // before: both lookups find a name that holds the cursor.
                match (&found, expected) {
                    (Some(f), Some(e)) if f != e => {
                        let bytes = |o: &Occurrence| places.bytes(o.span);
                        assert!(bytes(f).start <= offset as u32 && offset as u32 <= bytes(f).end);
                        assert!(bytes(e).start <= offset as u32 && offset as u32 <= bytes(e).end);
                    }
                    _ => assert_eq!(found.as_ref(), expected, "offset {offset}"),
                }
            }
        }
    }
}
