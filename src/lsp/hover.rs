//! Hover: what a name is (authority with its keys, category, migration
//! type, phase, schema field with its type, policy, authority key), the
//! documentation of keywords, types, functions and actions, and the page of
//! every diagnostic code reported at the cursor.

use std::fmt::Write;

use lsp_types::{Contents, Hover, MarkupContent, MarkupKind};

use super::context::{cursor, word_at};
use super::docs;
use super::navigation::{declaration, definition_of, field_decl};
use super::occurrences::{Symbol, occurrence_at};
use super::workspace::DocRef;
use crate::db::{Session, offsets, parse_file, placed, policy_index, resolve, stable_header};
use crate::model::EffectivePolicy;
use crate::model::types::{Type, field_type, lower};
use crate::stdlib::KWANUS_PATH;
// A policy's words in a hover's Markdown are text, never markup or links.
use crate::cli::view::md;
use crate::syntax::ast::{DeclKind, Key};
use crate::syntax::{Place, Span};

/// At most this many lines of a declaration are shown.
const MAX_SOURCE_LINES: usize = 16;

/// `textDocument/hover` at byte `offset`.
pub fn hover(doc: &DocRef<'_>, offset: usize) -> Option<Hover> {
    let mut sections = Vec::new();
    let mut range: Option<Span> = None;
    let db = doc.session.db();
    if let Some(occ) = occurrence_at(db, doc.file, offset) {
        let text = match &occ.symbol {
            Symbol::Key(..) => key_markdown(doc, offset).map(|(text, _)| text),
            symbol => symbol_markdown(doc, symbol),
        };
        if let Some(text) = text {
            sections.push(text);
            range = Some(doc.bytes(occ.span));
        }
    } else if cursor(doc.text, offset).in_comment_or_string {
        // On a key's label: the key too.
        if let Some((text, label)) = key_markdown(doc, offset) {
            sections.push(text);
            range = Some(label);
        }
    } else if let Some((start, word)) = word_at(doc.text, offset)
        && let Some(text) = docs::keyword(word)
    {
        sections.push(text.to_string());
        range = Some(Span::new(start, start + word.len()));
    }
    // The pages of the codes reported here.
    let off = offset as u32;
    let mut codes = Vec::new();
    for d in doc.check() {
        let span = doc.bytes(d.primary.span);
        let here = d.primary.file == doc.path && span.start <= off && off <= span.end;
        if here && !codes.contains(&d.code) {
            codes.push(d.code);
            range.get_or_insert(span);
        }
    }
    for code in codes {
        sections.push(code.page().trim_end().to_string());
    }
    if sections.is_empty() {
        return None;
    }
    Some(Hover {
        contents: Contents::MarkupContent(MarkupContent {
            kind: MarkupKind::Markdown,
            value: sections.join("\n\n---\n\n"),
        }),
        range: range.map(|s| doc.range(s)),
    })
}

/// Where a file is, as a reader would name it.
fn origin(doc: &DocRef<'_>, path: &str) -> String {
    if path == KWANUS_PATH {
        "the standard library (`kwanus`)".into()
    } else if path == doc.path {
        "this file".into()
    } else {
        let name = std::path::Path::new(path)
            .file_name()
            .map_or(path.into(), |n| n.to_string_lossy());
        format!("`{name}`")
    }
}

/// The source text of `span` in the file at `path`, as a code block.
fn source_block(session: &Session, path: &str, span: Span) -> Option<String> {
    let text = session.file(path)?.text(session.db()).as_str();
    let snippet = text.get(span.range())?;
    let mut lines: Vec<&str> = snippet.lines().take(MAX_SOURCE_LINES + 1).collect();
    if lines.len() > MAX_SOURCE_LINES {
        lines.truncate(MAX_SOURCE_LINES);
        lines.push("  ...");
    }
    Some(format!("```pmf\n{}\n```", lines.join("\n")))
}

fn names<'a>(list: impl Iterator<Item = &'a str>) -> String {
    let shown: Vec<String> = list.map(|n| format!("`{n}`")).collect();
    shown.join(", ")
}

/// The hover of the `key` declaration whose key or label string is at byte
/// `offset` of the document (its authority, fingerprint, label and public
/// key), with the string's span.
fn key_markdown(doc: &DocRef<'_>, offset: usize) -> Option<(String, Span)> {
    let db = doc.session.db();
    let off = offset as u32;
    // The key declarations of the chunk at the cursor, in stable places.
    let chunks = parse_file(db, doc.file);
    let (key, span) = chunks.around(off).find_map(|c| {
        let here = c.to_stable(off);
        let within = |s: Place| s.start <= here && here <= s.end;
        placed(db, c.placed)
            .parse
            .decls
            .iter()
            .find_map(|d| match &d.kind {
                DeclKind::Key(k) => std::iter::once(k.key.span)
                    .chain(k.label.as_ref().map(|l| l.span))
                    .find(|s| within(*s))
                    .map(|s| (k, chunks.place(s))),
                _ => None,
            })
    })?;
    let policy: &EffectivePolicy = &resolve(db, doc.ws, doc.file).policy;
    let authority = key.authority.name.as_str();
    let mut out = format!("**key** of authority `{authority}`");
    if let Some((_, a)) = policy.authorities().find(|(_, a)| a.name.name == authority)
        && let Some(t) = &a.title
    {
        let _ = write!(out, " — {}", md(&t.value));
    }
    let _ = write!(
        out,
        "\n\nfingerprint `{}`",
        crate::model::keys::fingerprint(&key.key.value)
    );
    if let Some(l) = &key.label {
        let _ = write!(out, "\n\nheld by {}", md(&l.value));
    }
    match crate::model::keys::parse(&key.key.value) {
        Ok(hex) => {
            let _ = write!(
                out,
                "\n\npublic key `{}{hex}`\n\nan approval signed with this key counts as `{authority}`'s",
                Key::PREFIX
            );
        }
        Err(problem) => {
            let _ = write!(out, "\n\nnot a usable key: {}", problem.describe());
        }
    }
    Some((out, span))
}

fn symbol_markdown(doc: &DocRef<'_>, symbol: &Symbol) -> Option<String> {
    let db = doc.session.db();
    // In stable places: spans are mapped to byte offsets where they are used.
    let policy: &EffectivePolicy = &resolve(db, doc.ws, doc.file).policy;
    let mut out = String::new();
    match symbol {
        Symbol::Policy(name) => {
            let place = definition_of(doc.session, doc.ws, doc.file, symbol)?;
            let _ = write!(out, "**policy** `{name}`");
            let declaring = policy_index(db, doc.ws)
                .get(name)
                .and_then(|f| f.first().copied());
            if let Some(h) = declaring.and_then(|f| stable_header(db, f).as_ref())
                && !h.parents.is_empty()
            {
                let _ = write!(
                    out,
                    " extends {}",
                    names(h.parents.iter().map(|p| p.name.as_str()))
                );
            }
            let _ = write!(out, "\n\ndeclared in {}", origin(doc, &place.file));
        }
        Symbol::Authority(name) => {
            let (item, _) = declaration(policy, symbol)?;
            let (_, a) = policy
                .authorities()
                .find(|(_, a)| a.name.name == name.as_str())?;
            let _ = write!(out, "**authority** `{name}`");
            if let Some(t) = &a.title {
                let _ = write!(out, " — {}", md(&t.value));
            }
            if !a.governs.is_empty() {
                let _ = write!(
                    out,
                    "\n\ngoverns {}",
                    names(a.governs.iter().map(|c| c.name.as_str()))
                );
            }
            let keys: Vec<String> = policy
                .keys()
                .filter(|(_, k)| k.authority.name == name.as_str())
                .map(|(_, k)| {
                    let short = crate::model::keys::fingerprint(&k.key.value);
                    match &k.label {
                        Some(l) => format!("- `{short}` {}", md(&l.value)),
                        None => format!("- `{short}`"),
                    }
                })
                .collect();
            if keys.is_empty() {
                out.push_str("\n\nno key: it cannot sign approvals");
            } else {
                let _ = write!(out, "\n\nkeys:\n{}", keys.join("\n"));
            }
            let _ = write!(out, "\n\ndeclared in {}", origin(doc, &item.file));
        }
        Symbol::Category(name) => {
            let (item, _) = declaration(policy, symbol)?;
            let (_, c) = policy
                .categories()
                .find(|(_, c)| c.name.name == name.as_str())?;
            let _ = write!(out, "**category** `{name}`");
            if let Some(t) = &c.title {
                let _ = write!(out, " — {}", md(&t.value));
            }
            if !c.covers.is_empty() {
                let covered: Vec<String> = c.covers.iter().map(|p| p.dotted()).collect();
                let _ = write!(
                    out,
                    "\n\ncovers {}",
                    names(covered.iter().map(String::as_str))
                );
            }
            let governors: Vec<&str> = policy
                .authorities()
                .filter(|(_, a)| a.governs.iter().any(|g| g.name == name.as_str()))
                .map(|(_, a)| a.name.name.as_str())
                .collect();
            if !governors.is_empty() {
                let _ = write!(out, "\n\ngoverned by {}", names(governors.into_iter()));
            }
            let _ = write!(out, "\n\ndeclared in {}", origin(doc, &item.file));
        }
        Symbol::Migration(name) => {
            let (item, _) = declaration(policy, symbol)?;
            let (_, m) = policy
                .migrations()
                .find(|(_, m)| m.name.name == name.as_str())?;
            let _ = write!(out, "**migration type** `{name}`");
            if let Some(t) = &m.title {
                let _ = write!(out, " — {}", md(&t.value));
            }
            let span = offsets(db, doc.ws, &item.file, item.span);
            if let Some(block) = source_block(doc.session, &item.file, span) {
                let _ = write!(out, "\n\n{block}");
            }
            let _ = write!(out, "\n\ndeclared in {}", origin(doc, &item.file));
        }
        Symbol::Phase(name) if name == crate::model::RELEASE_RITE => {
            out.push_str(docs::keyword("release")?);
        }
        Symbol::Phase(name) => {
            let (item, flow) = policy.flow()?;
            let phase = flow.phases.iter().find(|p| p.name.name == name.as_str())?;
            let _ = write!(out, "**phase** `{name}`");
            if phase.fallible {
                out.push_str(" (fallible)");
            }
            let _ = write!(out, " of flow `{}`", flow.name.name);
            if let Some(d) = &phase.description {
                let _ = write!(out, "\n\n{}", md(&d.value));
            }
            if let Some((_, r)) = policy.rites().find(|(_, r)| r.phase.name == name.as_str()) {
                let _ = write!(out, "\n\nrite: “{}”", md(&r.words.value));
            } else {
                out.push_str("\n\nno rite");
            }
            let _ = write!(out, "\n\ndeclared in {}", origin(doc, &item.file));
        }
        Symbol::Field(path) => {
            let dotted = path.join(".");
            match field_decl(policy, path) {
                Some((item, f)) => {
                    let _ = write!(out, "**field** `{dotted}`: `{}`", lower(&f.ty));
                    let _ = write!(
                        out,
                        "\n\nfield of the partner schema, declared in {}",
                        origin(doc, &item.file)
                    );
                }
                None => {
                    // `.major`, `.minor`, `.patch` of a version.
                    let (last, parent) = path.split_last()?;
                    let schema = crate::model::types::schema(policy);
                    let parent: Vec<&str> = parent.iter().map(String::as_str).collect();
                    let is_version = matches!(field_type(&schema, &parent), Some(Type::Version));
                    if !(is_version && ["major", "minor", "patch"].contains(&last.as_str())) {
                        return None;
                    }
                    let _ = write!(
                        out,
                        "**version component** `{dotted}`: `number`\n\nthe {last} number of the version `{}`",
                        parent.join(".")
                    );
                }
            }
        }
        Symbol::Root(name) => out.push_str(docs::keyword(name)?),
        Symbol::Builtin(name) => out.push_str(docs::builtin(name)?),
        Symbol::Function(name) => out.push_str(docs::builtin(name).or(docs::keyword(name))?),
        Symbol::Type(name) => out.push_str(docs::type_doc(name)?),
        Symbol::Action(name) => out.push_str(docs::action(name)?),
        Symbol::Dimension(name) => out.push_str(docs::dimension(name)?),
        // Answered by `key_markdown`, from the declaration at the cursor.
        Symbol::Key(..) => return None,
        Symbol::Fixture(name) => {
            definition_of(doc.session, doc.ws, doc.file, symbol)?;
            let _ = write!(
                out,
                "**fixture** `{name}`\n\na named record of this file: `partner like {name} {{ ... }}` \
                 starts from its fields and changes only those it gives"
            );
        }
    }
    Some(out)
}
