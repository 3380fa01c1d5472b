//! Go to definition and find references.
//!
//! A name resolves in the effective policy of the file it is written in, so
//! a declaration inherited from a parent (the embedded stdlib included) is
//! found in the parent's file. References are the occurrences, in every
//! file of the document's project, that resolve to the same declaration.

use lsp_types::Location;

use super::occurrences::{Symbol, occurrence_at, occurrences};
use super::workspace::DocRef;
use crate::db::{Session, SourceFile, Workspace, policy_index, resolve, stable_header};
use crate::model::Sourced;
use crate::syntax::Place;
use crate::syntax::ast::{FieldDecl, TypeExprKind};

/// Where a name is declared: a file of the session and a place in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    /// The file's session path.
    pub file: String,
    /// The name's place.
    pub span: Place,
}

/// The declaration `symbol` resolves to in `file`'s effective policy, in
/// the project `ws`.
pub fn definition_of(
    session: &Session,
    ws: Workspace,
    file: SourceFile,
    symbol: &Symbol,
) -> Option<Declared> {
    let db = session.db();
    if let Symbol::Policy(name) = symbol {
        let declaring = *policy_index(db, ws).get(name)?.first()?;
        let header = stable_header(db, declaring).as_ref()?;
        return Some(Declared {
            file: declaring.path(db).clone(),
            span: header.name.span,
        });
    }
    // A fixture belongs to its own file.
    if let Symbol::Fixture(_) = symbol {
        let def = occurrences(db, file)
            .iter()
            .find(|o| o.def && o.symbol == *symbol)?;
        return Some(Declared {
            file: file.path(db).clone(),
            span: def.span,
        });
    }
    // The policy in stable places (edits rarely change it).
    let policy = &resolve(db, ws, file).policy;
    let (item, span) = declaration(policy, symbol)?;
    Some(Declared {
        file: item.file.to_string(),
        span,
    })
}

/// The item of `policy` that declares `symbol`, and the span of its name.
pub fn declaration<'p>(
    policy: &'p crate::model::EffectivePolicy,
    symbol: &Symbol,
) -> Option<(&'p Sourced, Place)> {
    match symbol {
        Symbol::Authority(n) => policy
            .authorities()
            .find(|(_, a)| a.name.name == n.as_str())
            .map(|(s, a)| (s, a.name.span)),
        Symbol::Category(n) => policy
            .categories()
            .find(|(_, c)| c.name.name == n.as_str())
            .map(|(s, c)| (s, c.name.span)),
        Symbol::Migration(n) => policy
            .migrations()
            .find(|(_, m)| m.name.name == n.as_str())
            .map(|(s, m)| (s, m.name.span)),
        Symbol::Phase(n) => {
            let (s, flow) = policy.flow()?;
            let phase = flow.phases.iter().find(|p| p.name.name == n.as_str())?;
            Some((s, phase.name.span))
        }
        Symbol::Field(path) => {
            let (s, f) = field_decl(policy, path)?;
            Some((s, f.name.span))
        }
        Symbol::Key(a, k) => policy
            .keys()
            .find(|(_, key)| key.authority.name == a.as_str() && key.key.value == *k)
            .map(|(s, key)| (s, key.key.span)),
        _ => None,
    }
}

/// The declaration of the schema field at `path` (records followed).
pub fn field_decl<'p>(
    policy: &'p crate::model::EffectivePolicy,
    path: &[String],
) -> Option<(&'p Sourced, &'p FieldDecl)> {
    let (first, rest) = path.split_first()?;
    let (s, mut decl) = policy
        .fields()
        .find(|(_, f)| f.name.name == first.as_str())?;
    for seg in rest {
        match &decl.ty.kind {
            TypeExprKind::Record(fields) => {
                decl = fields.iter().find(|f| f.name.name == seg.as_str())?;
            }
            _ => return None,
        }
    }
    Some((s, decl))
}

/// `textDocument/definition`: the declaration of the name at `offset`.
pub fn definition(doc: &DocRef<'_>, offset: usize) -> Option<Location> {
    let occ = occurrence_at(doc.session.db(), doc.file, offset)?;
    let place = definition_of(doc.session, doc.ws, doc.file, &occ.symbol)?;
    doc.texts().location(&place.file, place.span, doc.enc)
}

/// `textDocument/references`: every occurrence of the name at `offset`
/// that resolves to the same declaration (the declaration itself when
/// `include_declaration`).
pub fn references(doc: &DocRef<'_>, offset: usize, include_declaration: bool) -> Vec<Location> {
    let db = doc.session.db();
    let Some(occ) = occurrence_at(db, doc.file, offset) else {
        return Vec::new();
    };
    let symbol = occ.symbol;
    let target = definition_of(doc.session, doc.ws, doc.file, &symbol);
    let mut texts = doc.texts();
    let mut out = Vec::new();
    for &file in doc.ws.files(db) {
        let found: Vec<Place> = occurrences(db, file)
            .iter()
            .filter(|o| o.symbol == symbol && (include_declaration || !o.def))
            .map(|o| o.span)
            .collect();
        if found.is_empty() {
            continue;
        }
        // Names without a declaration (actions, types, ...) match by name.
        if target.is_some() && definition_of(doc.session, doc.ws, file, &symbol) != target {
            continue;
        }
        let path = file.path(db).clone();
        for span in found {
            if !include_declaration
                && target
                    .as_ref()
                    .is_some_and(|t| t.file == path && t.span == span)
            {
                continue;
            }
            out.extend(texts.location(&path, span, doc.enc));
        }
    }
    out
}
