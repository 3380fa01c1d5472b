//! Composition: turning one file's declarations into keyed items and fusing
//! them with the effective policies of its parents (`extends`, `override`).

use std::collections::hash_map::Entry;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;

use super::{EffectivePolicy, ItemKey, ItemNode, Sourced};
use pmf_syntax::diagnostics::{Code, Diagnostic, Fix};
use pmf_syntax::{Place, PlaceMap, Span};
use rayon::prelude::*;

use pmf_syntax::ast::{Decl, DeclKind, Ident, PolicyHeader, SourceAst};

/// The keyed items one file declares, in source order (declarations are
/// independent: large files turn them into items on every core).
pub fn items_of(file: &str, text: &str, ast: &SourceAst) -> Vec<Arc<Sourced>> {
    let places = PlaceMap::identity();
    let file: Arc<str> = file.into();
    let file = &file;
    if ast.decls.len() >= 256 {
        ast.decls
            .par_iter()
            .flat_map_iter(|decl| items_of_decl(file, text, &places, decl))
            .collect()
    } else {
        ast.decls
            .iter()
            .flat_map(|decl| items_of_decl(file, text, &places, decl))
            .collect()
    }
}

/// The keyed items of one declaration; `text` is a whole file or the chunk
/// that holds `decl`, and `places` maps the declaration's places into it.
pub(crate) fn items_of_decl(
    file: &Arc<str>,
    text: &str,
    places: &PlaceMap,
    decl: &Decl,
) -> Vec<Arc<Sourced>> {
    let mut out = Vec::new();
    {
        let ov = decl.override_kw;
        let override_place = override_place(text, places, decl);
        let head = keyword_span(text, places, decl);
        let mut push = |key: ItemKey, span: Place, name_span: Place, node: ItemNode| {
            out.push(Arc::new(Sourced {
                key_hash: key.hash_of(),
                key,
                file: file.clone(),
                span,
                name_span,
                override_kw: ov,
                override_place,
                reads: node.reads(),
                node,
                fingerprint: fingerprint(text, places.bytes(span)),
            }));
        };
        match &decl.kind {
            DeclKind::Policy(_) | DeclKind::Test(_) | DeclKind::Fixture(_) => {}
            DeclKind::Authority(a) => push(
                ItemKey::Authority(a.name.name.clone()),
                decl.span,
                a.name.span,
                ItemNode::Authority(a.clone()),
            ),
            DeclKind::Category(c) => push(
                ItemKey::Category(c.name.name.clone()),
                decl.span,
                c.name.span,
                ItemNode::Category(c.clone()),
            ),
            DeclKind::Partner(schema) => {
                for f in &schema.fields {
                    push(
                        ItemKey::Field(f.name.name.clone()),
                        f.span,
                        f.name.span,
                        ItemNode::Field(f.clone()),
                    );
                }
            }
            DeclKind::Migration(m) => push(
                ItemKey::Migration(m.name.name.clone()),
                decl.span,
                m.name.span,
                ItemNode::Migration(m.clone()),
            ),
            DeclKind::Order(o) => push(ItemKey::Order, decl.span, head, ItemNode::Order(o.clone())),
            DeclKind::Rules(block) => {
                for r in &block.rules {
                    push(
                        ItemKey::Rule(block.kind, r.name.name.clone()),
                        r.span,
                        r.name.span,
                        ItemNode::Rule(block.kind, r.clone()),
                    );
                }
            }
            DeclKind::Validation(v) => {
                for d in &v.dimensions {
                    for c in &d.checks {
                        push(
                            ItemKey::Check(d.name.name.clone(), c.name.name.clone()),
                            c.span,
                            c.name.span,
                            ItemNode::Check(d.name.clone(), c.clone()),
                        );
                    }
                }
            }
            DeclKind::Health(h) => push(
                ItemKey::Health,
                decl.span,
                head,
                ItemNode::Health(h.clone()),
            ),
            DeclKind::Flow(f) => push(
                ItemKey::Flow,
                decl.span,
                f.name.span,
                ItemNode::Flow(f.clone()),
            ),
            DeclKind::Ceiling(c) => push(
                ItemKey::Ceiling(c.field.dotted().into()),
                decl.span,
                c.field.span,
                ItemNode::Ceiling(c.clone()),
            ),
            DeclKind::Rite(r) => push(
                ItemKey::Rite(r.phase.name.clone()),
                decl.span,
                r.phase.span,
                ItemNode::Rite(r.clone()),
            ),
            DeclKind::Key(k) => push(
                ItemKey::Key(k.authority.name.clone(), k.key.value.as_str().into()),
                decl.span,
                k.key.span,
                ItemNode::Key(k.clone()),
            ),
        }
    }
    out
}

/// What removing the `override` of `decl` removes: the keyword and the
/// blank after it (`places` maps the declaration's places into `text`); the
/// empty place at the start of `decl` without one.
pub(crate) fn override_place(text: &str, places: &PlaceMap, decl: &Decl) -> Place {
    match decl.override_kw {
        Some(kw) => {
            let after = places.bytes(kw).end as usize;
            let blank = text
                .get(after..)
                .map_or(0, |t| t.len() - t.trim_start_matches([' ', '\t']).len());
            Place::new(kw.start as usize, kw.end as usize + blank)
        }
        None => Place::new(decl.span.start as usize, decl.span.start as usize),
    }
}

/// The place of the declaration's keyword, after `override` and its blank
/// when there is one (`places` maps the declaration's places into `text`).
pub fn keyword_span(text: &str, places: &PlaceMap, decl: &Decl) -> Place {
    let start = if decl.override_kw.is_some() {
        override_place(text, places, decl).end
    } else {
        decl.span.start
    } as usize;
    Place::new(start, start + decl.kind.keyword().len())
}

/// A hash of the text of `span` normalized (see [`normalize`]): equal for
/// definitions that differ only in layout and comments.
///
/// Every item of a policy is hashed, so this reads bytes rather than
/// characters: ASCII is hashed as it is read, a character beyond it is
/// decoded only to ask whether it is white space. A test holds it equal to
/// hashing what [`normalize`] emits ([`fingerprint_of_normalized`]).
fn fingerprint(text: &str, span: Span) -> u64 {
    let slice = text.get(span.range()).unwrap_or("");
    let slice = slice.strip_prefix("override").unwrap_or(slice);
    let bytes = slice.as_bytes();
    let mut hash = WordHash::default();
    let mut i = 0;
    let mut in_string = false;
    let mut pending_space = false;
    let mut started = false;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            // Bytes of a string, escapes and all, go in as they are: a
            // character beyond ASCII is its bytes, none of them `"` or `\`.
            // Up to the next quote or escape they go in at once.
            let run = bytes.get(i..).map_or(0, |rest| {
                rest.iter()
                    .position(|&c| c == b'"' || c == b'\\')
                    .unwrap_or(rest.len())
            });
            if run > 0 {
                hash.bytes(bytes.get(i..i + run).unwrap_or(&[]));
                i += run;
                continue;
            }
            hash.byte(b);
            i += 1;
            if b == b'\\' {
                if let Some(&n) = bytes.get(i) {
                    hash.byte(n);
                    i += 1;
                }
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = bytes
                    .get(i + 2..)
                    .and_then(|rest| rest.iter().position(|&c| c == b'\n'))
                    .map_or(bytes.len(), |n| i + 2 + n + 1);
                pending_space = true;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = slice
                    .get(i + 2..)
                    .and_then(|rest| rest.find("*/"))
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
                pending_space = true;
            }
            b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' => {
                pending_space = true;
                i += 1;
            }
            0..0x80 => {
                if pending_space && started {
                    hash.byte(b' ');
                }
                pending_space = false;
                started = true;
                if b == b'"' {
                    in_string = true;
                }
                // The ASCII bytes after it that are neither white space nor
                // the start of a comment or string go in with it, at once.
                let run = 1 + bytes.get(i + 1..).map_or(0, |rest| {
                    rest.iter()
                        .take_while(|&&c| PLAIN.get(usize::from(c)).copied().unwrap_or(false))
                        .count()
                });
                let run = if in_string { 1 } else { run };
                hash.bytes(bytes.get(i..i + run).unwrap_or(&[]));
                i += run;
            }
            _ => {
                let Some(c) = slice.get(i..).and_then(|rest| rest.chars().next()) else {
                    break;
                };
                let len = c.len_utf8();
                if c.is_whitespace() {
                    pending_space = true;
                } else {
                    if pending_space && started {
                        hash.byte(b' ');
                    }
                    pending_space = false;
                    started = true;
                    for &b in bytes.get(i..i + len).unwrap_or(&[]) {
                        hash.byte(b);
                    }
                }
                i += len;
            }
        }
    }
    hash.finish()
}

/// ASCII bytes that stand for themselves in a normalized text: not white
/// space, not `/` (a comment may start) and not `"` (a string starts).
// Evaluated at compile time: an index out of bounds fails the build.
#[allow(clippy::indexing_slicing)]
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x80 {
        table[b] = !matches!(
            b as u8,
            b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | b'/' | b'"'
        );
        b += 1;
    }
    table
};

/// A 64-bit hash of a stream of bytes, eight at a time (a multiply and a
/// rotation per word: a collision between two different definitions of
/// one key is negligible). The result depends only on the bytes, not on
/// how they were handed in, one at a time or in runs: runs go in a word at
/// a time (FNV-1a, a byte at a time, was a third of turning a chunk into
/// items).
struct WordHash {
    hash: u64,
    /// Bytes not yet mixed in (the low ones first).
    word: u64,
    /// How many.
    held: u32,
    /// How many bytes went in.
    len: u64,
}

impl Default for WordHash {
    fn default() -> Self {
        WordHash {
            hash: 0xcbf2_9ce4_8422_2325,
            word: 0,
            held: 0,
            len: 0,
        }
    }
}

impl WordHash {
    fn mix(&mut self, word: u64) {
        self.hash = (self.hash ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(31);
    }

    fn byte(&mut self, b: u8) {
        self.word |= u64::from(b) << (8 * self.held);
        self.held += 1;
        self.len += 1;
        if self.held == 8 {
            let word = self.word;
            self.mix(word);
            self.word = 0;
            self.held = 0;
        }
    }

    fn bytes(&mut self, mut bytes: &[u8]) {
        while self.held != 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return;
            };
            self.byte(b);
            bytes = rest;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut le = [0u8; 8];
            le.copy_from_slice(w);
            self.mix(u64::from_le_bytes(le));
        }
        self.len += (bytes.len() - words.remainder().len()) as u64;
        for &b in words.remainder() {
            self.byte(b);
        }
    }

    fn finish(mut self) -> u64 {
        let (word, len) = (self.word, self.len);
        self.mix(word);
        self.mix(len);
        self.hash
    }
}

/// The reference of [`fingerprint`]: the hash of the UTF-8 bytes of what
/// [`normalize`] emits.
#[cfg(test)]
fn fingerprint_of_normalized(text: &str, span: Span) -> u64 {
    let mut hash = WordHash::default();
    normalize(text, span, |c| {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).as_bytes() {
            hash.byte(*b);
        }
    });
    hash.finish()
}

/// Feed `emit` the text of `span` without comments, with whitespace runs
/// folded to one space and without a leading `override` (how a definition
/// is introduced, not what it says).
pub fn normalize(text: &str, span: Span, mut emit: impl FnMut(char)) {
    let slice = text.get(span.range()).unwrap_or("");
    let slice = slice.strip_prefix("override").unwrap_or(slice);
    let mut chars = slice.chars().peekable();
    let mut in_string = false;
    let mut pending_space = false;
    let mut started = false;
    while let Some(c) = chars.next() {
        if in_string {
            emit(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    emit(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
                pending_space = true;
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                pending_space = true;
            }
            c if c.is_whitespace() => pending_space = true,
            c => {
                if pending_space && started {
                    emit(' ');
                }
                pending_space = false;
                started = true;
                if c == '"' {
                    in_string = true;
                }
                emit(c);
            }
        }
    }
}

/// A resolved parent: the name as written in `extends` and its policy.
pub struct Parent<'a> {
    /// The name in the `extends` clause.
    pub name: &'a Ident,
    /// The parent's effective policy.
    pub policy: &'a EffectivePolicy,
}

/// Fuse `own` items (in lists, one per chunk) over the parents' effective policies. When a parent
/// could not be resolved (`parents_complete` false), an `override` of
/// something no known parent has is not reported: the missing parent may
/// well have it.
pub fn compose<'a>(
    file: &str,
    header: Option<&PolicyHeader>,
    own: &'a [Arc<[Arc<Sourced>]>],
    parents: &[Parent<'a>],
    parents_complete: bool,
) -> (EffectivePolicy, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let inherited_len: usize = parents.iter().map(|p| p.policy.items.len()).sum();
    let own_len: usize = own.iter().map(|c| c.len()).sum();
    let mut items: Vec<Arc<Sourced>> = Vec::with_capacity(inherited_len + own_len);
    // Keys are borrowed from the items, which outlive the composition. Each
    // key's slot in `items` and whether the policy itself declares it (its
    // first declaration is then the item in the slot): one map, so that
    // each item hashes its key once.
    let mut index: HashMap<Keyed<'a>, (usize, bool)> = HashMap::default();
    index.reserve(inherited_len + own_len);
    // Which parent contributed each inherited item.
    let mut from_parent: Vec<usize> = Vec::new();
    let mut conflicts: Vec<(usize, Arc<Sourced>, usize)> = Vec::new();

    // Keys are additive: every parent's keys are kept, once each (a key two
    // parents inherit from a common ancestor, or declare alike, is one key).
    let mut inherited_keys: HashSet<(&str, &str, Option<&str>)> = HashSet::default();
    for (pi, parent) in parents.iter().enumerate() {
        for item in &parent.policy.items {
            if let ItemNode::Key(k) = &item.node {
                let id = (
                    k.authority.name.as_str(),
                    k.key.value.as_str(),
                    k.label.as_ref().map(|l| l.value.as_str()),
                );
                if inherited_keys.insert(id) {
                    items.push(item.clone());
                    from_parent.push(pi);
                }
                continue;
            }
            match index.entry(Keyed(item)) {
                Entry::Vacant(slot) => {
                    slot.insert((items.len(), false));
                    items.push(item.clone());
                    from_parent.push(pi);
                }
                Entry::Occupied(slot) => {
                    let at = slot.get().0;
                    // `items` and `from_parent` grow together: `at` is in both.
                    let (Some(existing), Some(first)) = (
                        items.get(at),
                        from_parent.get(at).and_then(|&o| parents.get(o)),
                    ) else {
                        continue;
                    };
                    let same_origin = existing.file == item.file && existing.span == item.span;
                    if same_origin || existing.fingerprint == item.fingerprint {
                        continue;
                    }
                    if parent.policy.lineage.contains(&*existing.file) {
                        // This parent inherited the existing definition and
                        // replaced it: its refinement wins (three-way merge).
                        if let (Some(slot), Some(origin)) =
                            (items.get_mut(at), from_parent.get_mut(at))
                        {
                            *slot = item.clone();
                            *origin = pi;
                        }
                    } else if !first.policy.lineage.contains(&*item.file) {
                        conflicts.push((at, item.clone(), pi));
                    }
                }
            }
        }
    }
    let inherited = items.len();
    let mut overridden = Vec::new();

    for item in own.iter().flat_map(|c| c.iter()) {
        if matches!(item.node, ItemNode::Key(_)) {
            // Added to the parents' keys, never replacing one; the key checks
            // report a key declared twice or for two authorities.
            if let Some(kw) = item.override_kw {
                diags.push(
                    Diagnostic::new(
                        Code::OverrideOfKey,
                        file,
                        item.name_span,
                        "a key cannot be overridden",
                    )
                    .with_label("a key is added, never replaced")
                    .with_secondary(file, kw, "`override` before `key`")
                    .with_fix(Fix::certain(item.override_place, ""))
                    .with_help(
                        "remove `override`: keys are additive, a policy trusts its parents' keys and its own; to replace or revoke an inherited key, change the policy that declares it",
                    ),
                );
            }
            items.push(item.clone());
            continue;
        }
        let slot = match index.entry(Keyed(item)) {
            Entry::Occupied(slot) => Some(slot.into_mut()),
            Entry::Vacant(slot) => {
                // A key neither inherited nor declared before.
                let at = items.len();
                slot.insert((at, true));
                None
            }
        };
        if let Some(&mut (at, true)) = slot {
            let first = items.get(at).map_or(item.name_span, |i| i.name_span);
            diags.push(
                Diagnostic::new(
                    Code::DuplicateDeclaration,
                    file,
                    item.name_span,
                    format!("`{}` is declared twice", item.key.describe()),
                )
                .with_label("declared again here")
                .with_secondary(file, first, "first declared here")
                .with_help("remove one of the two declarations or give them different names"),
            );
            continue;
        }
        match slot {
            Some((at, own)) if *at < inherited => {
                *own = true;
                let at = *at;
                let Some(slot) = items.get_mut(at) else {
                    continue;
                };
                let parent_item = std::mem::replace(slot, item.clone());
                if item.override_kw.is_none() {
                    let parent_name = from_parent
                        .get(at)
                        .and_then(|&o| parents.get(o))
                        .map_or("", |p| p.name.name.as_str());
                    diags.push(
                        Diagnostic::new(
                            Code::OverrideRequired,
                            file,
                            item.name_span,
                            format!(
                                "`{}` redefines a declaration inherited from `{}`",
                                item.key.describe(),
                                parent_name
                            ),
                        )
                        .with_label("redefined here without `override`")
                        .with_secondary(
                            &parent_item.file,
                            parent_item.name_span,
                            "inherited definition",
                        )
                        .with_help(format!(
                            "write `override` before the declaration to replace the inherited `{}`",
                            item.key.describe()
                        ))
                        .with_fix(Fix {
                            span: item.override_place,
                            replacement: "override ".into(),
                            machine_applicable: item.alone_in_declaration(),
                        }),
                    );
                } else {
                    overridden.push(parent_item);
                }
            }
            _ => {
                if let Some(kw) = item.override_kw.filter(|_| parents_complete) {
                    let mut d = Diagnostic::new(
                        Code::NothingToOverride,
                        file,
                        item.name_span,
                        format!(
                            "`override` of `{}`, which no parent declares",
                            item.key.describe()
                        ),
                    )
                    .with_label("no parent declares this")
                    .with_secondary(file, kw, "nothing to override")
                    .with_fix(Fix {
                        span: item.override_place,
                        replacement: String::new(),
                        machine_applicable: item.alone_in_declaration(),
                    });
                    d = if parents.is_empty() {
                        d.with_help("this policy has no parents; remove `override`")
                    } else {
                        d.with_help("remove `override`, or check the name against the parents' declarations")
                    };
                    diags.push(d);
                }
                items.push(item.clone());
            }
        }
    }

    for (at, other, other_parent) in conflicts {
        let Some(chosen) = items.get(at) else {
            continue;
        };
        if at >= inherited || *chosen.file == *file {
            // The policy itself defines (or overrides) the key: no conflict.
            continue;
        }
        let (Some(first_parent), Some(second_parent)) = (
            from_parent
                .get(at)
                .and_then(|&o| parents.get(o))
                .map(|p| p.name),
            parents.get(other_parent).map(|p| p.name),
        ) else {
            continue;
        };
        let primary = second_parent.span;
        diags.push(
            Diagnostic::new(
                Code::ParentConflict,
                file,
                primary,
                format!(
                    "parents `{}` and `{}` define `{}` differently",
                    first_parent.name,
                    second_parent.name,
                    chosen.key.describe()
                ),
            )
            .with_label(format!(
                "`{}` brings a second definition",
                second_parent.name
            ))
            .with_secondary(
                &chosen.file,
                chosen.name_span,
                format!("defined by `{}` here", first_parent.name),
            )
            .with_secondary(
                &other.file,
                other.name_span,
                format!("defined by `{}` here", second_parent.name),
            )
            .with_help(format!(
                "choose one: add `override` with the definition this policy wants for `{}`",
                chosen.key.describe()
            )),
        );
    }

    let policy = EffectivePolicy {
        name: header.map(|h| h.name.name.to_string()).unwrap_or_default(),
        file: file.to_string(),
        header_span: header.map_or(Place::default(), |h| h.name.span),
        lineage: parents
            .iter()
            .flat_map(|p| p.policy.lineage.iter().cloned())
            .chain([file.to_string()])
            .collect(),
        items,
        overridden,
    };
    (policy, diags)
}

/// An item by its key, hashed by the hash the item holds
/// ([`Sourced::key_hash`]): the index takes one word, not the key's text.
#[derive(Clone, Copy)]
struct Keyed<'a>(&'a Sourced);

impl std::hash::Hash for Keyed<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.key_hash);
    }
}

impl PartialEq for Keyed<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

impl Eq for Keyed<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item of every example policy and of the stdlib holds the hash
    /// of its own key.
    #[test]
    fn every_item_holds_the_hash_of_its_key() {
        let mut items = 0;
        for path in crate::test_files::policies(&["examples", "stdlib"]) {
            let (session, file) = crate::test_files::session_of(&path);
            let (db, ws) = (session.db(), session.workspace);
            for item in &crate::db::resolve(db, ws, file).policy.items {
                assert_eq!(item.key_hash, item.key.hash_of(), "{}", path.display());
                items += 1;
            }
        }
        assert!(items > 200, "only {items} items");
    }

    /// The byte-wise fingerprint hashes what `normalize` emits, on every
    /// text made of these pieces (white space of all kinds, comments,
    /// strings with escapes, characters beyond ASCII, runs of more than a
    /// word) and every span of it.
    #[test]
    fn the_fingerprint_hashes_the_normalized_text() {
        let pieces = [
            "override ",
            "rule",
            " ",
            "\t",
            "\n",
            "\r\n",
            "\u{b}",
            "\u{c}",
            "\u{a0}",
            "\u{2028}",
            "\u{3000}",
            "é",
            "名",
            "🦀",
            "// line\n",
            "// open",
            "/* block */",
            "/*/ x */",
            "/* open",
            "\"s\"",
            "\"a \\\" b\"",
            "\"\\\\\"",
            "\"é \\é\"",
            "\"open",
            "/",
            "*",
            "a",
            ">=",
            "\\",
            // Runs longer than a word (the hash takes eight bytes at once).
            "partner.version.major",
        ];
        let mut texts: Vec<String> = Vec::new();
        for a in pieces {
            for b in pieces {
                texts.push(format!("{a}{b}"));
                for c in ["x", " ", "/* c */", "\"", "é"] {
                    texts.push(format!("{a}{c}{b}"));
                    texts.push(format!("{c}{a}{b}{c}"));
                }
            }
        }
        for text in &texts {
            for start in 0..=text.len() {
                for end in start..=text.len() {
                    let span = Span::new(start, end);
                    assert_eq!(
                        fingerprint(text, span),
                        fingerprint_of_normalized(text, span),
                        "{text:?} {start}..{end}"
                    );
                }
            }
        }
    }
}
