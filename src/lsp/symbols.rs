//! Document symbols: a hierarchical outline of one file. Each top-level
//! declaration is a symbol; schema fields, rules, validation dimensions and
//! checks, health factors and bands, and flow phases are its children.

use lsp_types::{DocumentSymbol, SymbolKind};

use super::workspace::DocRef;
use crate::db::{parse_file, placed};
use crate::syntax::ast::{Decl, DeclKind, FieldDecl, Ident, TypeExprKind};
use crate::syntax::{Place, PlaceMap};

/// `textDocument/documentSymbol`: the outline of the document, read chunk
/// by chunk from the syntax trees salsa keeps (in stable places).
pub fn document_symbols(doc: &DocRef<'_>) -> Vec<DocumentSymbol> {
    let db = doc.session.db();
    let mut out = Vec::new();
    let chunks = parse_file(db, doc.file);
    for chunk in &chunks.chunks {
        let outline = Outline {
            doc,
            places: &chunks.places,
            in_chunk: PlaceMap::chunk(chunk.base),
            text: chunk.placed.text(db).as_str(),
        };
        for decl in &placed(db, chunk.placed).parse.decls {
            out.push(decl_symbol(&outline, decl));
        }
    }
    out
}

/// One chunk of the document being outlined: its spans are stable places.
struct Outline<'a> {
    doc: &'a DocRef<'a>,
    /// Where the file's stable places are in its text.
    places: &'a PlaceMap,
    /// Where the chunk's places are in its own text.
    in_chunk: PlaceMap,
    /// The chunk's text.
    text: &'a str,
}

impl Outline<'_> {
    fn range(&self, span: Place) -> lsp_types::Range {
        self.doc.range(self.places.bytes(span))
    }

    /// The chunk's text of `span`.
    fn source(&self, span: Place) -> Option<&str> {
        self.text.get(self.in_chunk.bytes(span).range())
    }
}

#[allow(deprecated)] // `deprecated` is a required field of the struct.
fn symbol(
    doc: &Outline<'_>,
    name: String,
    detail: Option<String>,
    kind: SymbolKind,
    span: Place,
    selection: Place,
    children: Vec<DocumentSymbol>,
) -> DocumentSymbol {
    // The selection must lie inside the range.
    let selection = if selection.start >= span.start && selection.end <= span.end {
        selection
    } else {
        span
    };
    DocumentSymbol {
        name: if name.is_empty() { "?".into() } else { name },
        detail,
        kind,
        tags: None,
        deprecated: None,
        range: doc.range(span),
        selection_range: doc.range(selection),
        children: (!children.is_empty()).then_some(children),
    }
}

fn leaf(
    doc: &Outline<'_>,
    name: &Ident,
    detail: Option<String>,
    kind: SymbolKind,
    span: Place,
) -> DocumentSymbol {
    symbol(
        doc,
        name.name.to_string(),
        detail,
        kind,
        span,
        name.span,
        Vec::new(),
    )
}

fn field_symbol(doc: &Outline<'_>, f: &FieldDecl) -> DocumentSymbol {
    let children = match &f.ty.kind {
        TypeExprKind::Record(fields) => fields.iter().map(|g| field_symbol(doc, g)).collect(),
        _ => Vec::new(),
    };
    let ty = doc
        .source(f.ty.span)
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "));
    symbol(
        doc,
        f.name.name.to_string(),
        ty,
        SymbolKind::Field,
        f.span,
        f.name.span,
        children,
    )
}

fn decl_symbol(doc: &Outline<'_>, decl: &Decl) -> DocumentSymbol {
    let head = crate::model::compose::keyword_span(doc.text, &doc.in_chunk, decl);
    let kw = decl.kind.keyword();
    let over = decl.override_kw.is_some();
    let with_override = |d: Option<String>| -> Option<String> {
        match (over, d) {
            (true, Some(d)) => Some(format!("override · {d}")),
            (true, None) => Some("override".into()),
            (false, d) => d,
        }
    };
    let title = |t: &Option<crate::syntax::ast::StrLit>| t.as_ref().map(|t| t.value.clone());
    match &decl.kind {
        DeclKind::Policy(h) => {
            let parents: Vec<&str> = h.parents.iter().map(|p| p.name.as_str()).collect();
            let detail = (!parents.is_empty()).then(|| format!("extends {}", parents.join(", ")));
            symbol(
                doc,
                format!("policy {}", h.name.name),
                detail,
                SymbolKind::Module,
                decl.span,
                h.name.span,
                Vec::new(),
            )
        }
        DeclKind::Authority(a) => symbol(
            doc,
            format!("authority {}", a.name.name),
            with_override(title(&a.title)),
            SymbolKind::Interface,
            decl.span,
            a.name.span,
            Vec::new(),
        ),
        DeclKind::Category(c) => symbol(
            doc,
            format!("category {}", c.name.name),
            with_override(title(&c.title)),
            SymbolKind::Enum,
            decl.span,
            c.name.span,
            Vec::new(),
        ),
        DeclKind::Partner(schema) => {
            let children = schema.fields.iter().map(|f| field_symbol(doc, f)).collect();
            symbol(
                doc,
                kw.into(),
                with_override(None),
                SymbolKind::Struct,
                decl.span,
                head,
                children,
            )
        }
        DeclKind::Migration(m) => symbol(
            doc,
            format!("migration {}", m.name.name),
            with_override(title(&m.title)),
            SymbolKind::Class,
            decl.span,
            m.name.span,
            Vec::new(),
        ),
        DeclKind::Order(o) => {
            let types: Vec<&str> = o.types.iter().map(|t| t.name.as_str()).collect();
            symbol(
                doc,
                kw.into(),
                with_override(Some(types.join(", "))),
                SymbolKind::Array,
                decl.span,
                head,
                Vec::new(),
            )
        }
        DeclKind::Rules(block) => {
            let children = block
                .rules
                .iter()
                .map(|r| {
                    leaf(
                        doc,
                        &r.name,
                        Some(format!("else {}", r.action.name)),
                        SymbolKind::Property,
                        r.span,
                    )
                })
                .collect();
            symbol(
                doc,
                kw.into(),
                with_override(None),
                SymbolKind::Namespace,
                decl.span,
                head,
                children,
            )
        }
        DeclKind::Validation(v) => {
            let children = v
                .dimensions
                .iter()
                .map(|d| {
                    let checks = d
                        .checks
                        .iter()
                        .map(|c| leaf(doc, &c.name, None, SymbolKind::Boolean, c.span))
                        .collect();
                    symbol(
                        doc,
                        d.name.name.to_string(),
                        None,
                        SymbolKind::Namespace,
                        d.span,
                        d.name.span,
                        checks,
                    )
                })
                .collect();
            symbol(
                doc,
                kw.into(),
                with_override(None),
                SymbolKind::Namespace,
                decl.span,
                head,
                children,
            )
        }
        DeclKind::Health(h) => {
            let mut children: Vec<DocumentSymbol> = h
                .factors
                .iter()
                .map(|f| {
                    leaf(
                        doc,
                        &f.name,
                        Some(format!("weight {}", f.weight.value.0)),
                        SymbolKind::Number,
                        f.span,
                    )
                })
                .collect();
            children.extend(h.bands.iter().map(|b| {
                let detail = format!(
                    "{}..={} -> {}",
                    b.low.value.0, b.high.value.0, b.action.name
                );
                leaf(doc, &b.status, Some(detail), SymbolKind::EnumMember, b.span)
            }));
            symbol(
                doc,
                kw.into(),
                with_override(None),
                SymbolKind::Object,
                decl.span,
                head,
                children,
            )
        }
        DeclKind::Flow(f) => {
            let children = f
                .phases
                .iter()
                .map(|p| {
                    let detail = match (&p.description, p.fallible) {
                        (Some(d), true) => Some(format!("fallible · {}", d.value)),
                        (Some(d), false) => Some(d.value.clone()),
                        (None, true) => Some("fallible".into()),
                        (None, false) => None,
                    };
                    leaf(doc, &p.name, detail, SymbolKind::Event, p.span)
                })
                .collect();
            symbol(
                doc,
                format!("flow {}", f.name.name),
                with_override(None),
                SymbolKind::Namespace,
                decl.span,
                f.name.span,
                children,
            )
        }
        DeclKind::Ceiling(c) => {
            let value = doc
                .source(c.value.span)
                .map(|v| format!("{} {}", c.op.symbol(), v.trim()));
            symbol(
                doc,
                format!("ceiling {}", c.field.dotted()),
                with_override(value),
                SymbolKind::Constant,
                decl.span,
                c.field.span,
                Vec::new(),
            )
        }
        DeclKind::Rite(r) => symbol(
            doc,
            format!("rite {}", r.phase.name),
            with_override(Some(r.words.value.clone())),
            SymbolKind::String,
            decl.span,
            r.phase.span,
            Vec::new(),
        ),
        DeclKind::Key(k) => {
            let short = crate::model::keys::fingerprint(&k.key.value);
            let detail = match &k.label {
                Some(l) => format!("{short} · {}", l.value),
                None => short,
            };
            symbol(
                doc,
                format!("key {}", k.authority.name),
                with_override(Some(detail)),
                SymbolKind::Key,
                decl.span,
                k.key.span,
                Vec::new(),
            )
        }
        DeclKind::Test(t) => symbol(
            doc,
            format!("test \"{}\"", t.name.value),
            None,
            SymbolKind::Event,
            decl.span,
            t.name.span,
            Vec::new(),
        ),
        DeclKind::Fixture(f) => symbol(
            doc,
            format!("fixture {}", f.name.name),
            f.like.as_ref().map(|l| format!("like {}", l.name)),
            SymbolKind::Struct,
            decl.span,
            f.name.span,
            Vec::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Session;
    use crate::lsp::convert::Encoding;
    use crate::lsp::workspace::Documents;

    /// A ceiling's detail is its bound, read from its own chunk's text in
    /// every chunk (not only the first, whose places are its bytes).
    #[test]
    fn a_ceiling_in_any_chunk_shows_its_bound() {
        let mut session = Session::default();
        let text =
            "policy p extends kwanus\n\nceiling power <= 7\n\nceiling metrics.stability >= 2\n";
        session.set_file("p.pmf", text.into());
        let docs = Documents::default();
        let doc = DocRef::new(&session, session.workspace, &docs, "p.pmf", Encoding::Utf8)
            .expect("document");
        let details: Vec<Option<String>> = document_symbols(&doc)
            .into_iter()
            .filter(|s| s.name.starts_with("ceiling"))
            .map(|s| s.detail)
            .collect();
        assert_eq!(
            details,
            [Some("<= 7".to_string()), Some(">= 2".to_string())]
        );
    }
}
