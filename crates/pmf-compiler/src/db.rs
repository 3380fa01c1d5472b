//! The salsa database and the tracked queries of the compiler pipeline:
//! `parse_file` (chunks) → `chunk_parse` → `resolve` (parents, fusion,
//! stdlib) → `type_check`, `phase_graph`, `policy_checks`, `lints` →
//! `check_file`.
//!
//! The CLI and the language server both drive these queries; after an edit
//! only the queries that read the edited file run again, and in that file
//! only the edited chunk is parsed again.
//!
//! # Stable places
//!
//! The checks do not read byte offsets into the file: they read *stable
//! places*, where each chunk of a file has a base that edits elsewhere in
//! the file leave alone ([`PlaceMap::following`]). An edit inside one chunk,
//! or a declaration added or removed, moves every later chunk in the text
//! but none in stable places, so when the edited chunk's items are
//! unchanged (an edit in a comment, in white space) the effective policy is
//! equal to the previous one and no check runs again. Diagnostics stay in
//! stable places; whoever shows one maps it with the file's [`PlaceMap`]
//! ([`FileChunks::place`], [`Session::placed_texts`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use salsa::Setter;

use crate::check::{self, Context};
use crate::graph::PhaseGraph;
use crate::model::EffectivePolicy;
use crate::model::compose::{self, Parent};
use crate::model::fixtures::{ExpandedTests, expand_tests};
use crate::model::{ItemNode, Sourced};
use crate::sections::{self, OldSection, Piece, SectionChunk};
use pmf_syntax::ast::{DeclKind, PolicyHeader};
use pmf_syntax::diagnostics::{Code, Diagnostic, closest, sort_and_dedup};
use pmf_syntax::parser::{ChunkParse, DeclHead, header_diagnostics};
use pmf_syntax::{self as syntax, Place, PlaceMap, PlacedTexts, Span};

pub use salsa_inputs::{Section, SourceFile, Workspace};

/// The pipeline's inputs, in a module of their own: salsa generates their
/// constructors, getters and setters, which carry no documentation.
mod salsa_inputs {
    #![allow(missing_docs)]
    use super::*;

    /// One source file: an input of the pipeline.
    #[salsa::input(debug)]
    pub struct SourceFile {
        /// The path as given by the user (used in diagnostics).
        #[returns(ref)]
        pub path: String,
        /// The file's text.
        #[returns(ref)]
        pub text: String,
        /// Its chunks and their stable places ([`PlaceMap::following`] the
        /// previous text's, so that chunks an edit leaves alone keep theirs).
        #[returns(ref)]
        pub places: PlaceMap,
        /// Its chunks in sections ([`crate::sections`]), in order: the
        /// text again, cut where the places are.
        #[returns(ref)]
        pub sections: Vec<Section>,
    }

    /// A run of a file's chunks ([`crate::sections`]), set again only when
    /// an edit reaches it.
    #[salsa::input(debug)]
    pub struct Section {
        /// The file's path (the chunks' diagnostics name it).
        #[returns(ref)]
        pub path: String,
        /// The section's text: its chunks, whole (shared with them).
        #[returns(ref)]
        pub text: Arc<str>,
        /// Where each chunk starts in the text, and its stable place.
        #[returns(ref)]
        pub chunks: Vec<SectionChunk>,
    }

    /// The set of files checked together (the embedded stdlib included).
    #[salsa::input(debug)]
    pub struct Workspace {
        /// Every file, stdlib first.
        #[returns(ref)]
        pub files: Vec<SourceFile>,
    }
}

/// The compiler database.
#[salsa::db]
#[derive(Clone)]
pub struct Database {
    storage: salsa::Storage<Self>,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            storage: salsa::Storage::new(None),
        }
    }
}

#[salsa::db]
impl salsa::Database for Database {}

/// A shared log of the queries that executed, for incrementality tests and
/// latency measurements.
pub(crate) type ExecutionLog = Arc<Mutex<Vec<String>>>;

impl Database {
    /// A database that logs every query execution (`query(input)`).
    pub fn with_execution_log() -> (Self, ExecutionLog) {
        let log: ExecutionLog = Arc::default();
        let sink = log.clone();
        let storage = salsa::Storage::new(Some(Box::new(move |event: salsa::Event| {
            if let salsa::EventKind::WillExecute { database_key } = event.kind
                && let Ok(mut l) = sink.lock()
            {
                l.push(format!("{database_key:?}"));
            }
        })));
        (Database { storage }, log)
    }
}

/// Workspaces with at least this many chunks are parsed on all cores.
const PARALLEL_CHUNKS: usize = 256;

/// A workspace of files to check, plus the embedded stdlib.
pub struct Session {
    /// The database: read through [`Session::db`], changed only through the
    /// session's methods (files and workspaces stay consistent).
    db: Database,
    /// The workspace input.
    pub workspace: Workspace,
    /// The stdlib file.
    pub stdlib: SourceFile,
    /// Chunks [`Session::prepare`] already had parsed.
    prepared: Mutex<rustc_hash::FxHashSet<salsa::Id>>,
    /// Sections set since [`Session::prepare`] last ran: the only ones
    /// that can hold chunks not parsed yet.
    fresh: Mutex<Vec<Section>>,
    /// Sections no file holds any more, emptied: set again before new
    /// ones are made (inputs are never freed).
    spare: Vec<Section>,
}

impl Session {
    /// The database, for the queries.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Make `ws` hold `files` (the language server's projects).
    pub fn set_workspace_files(&mut self, ws: Workspace, files: Vec<SourceFile>) {
        ws.set_files(&mut self.db).to(files);
    }

    /// A session over `db` holding only the stdlib.
    pub fn new(mut db: Database) -> Self {
        let mut spare = Vec::new();
        let (stdlib, fresh) = new_file(
            &mut db,
            &mut spare,
            crate::stdlib::KWANUS_PATH,
            crate::stdlib::KWANUS_SOURCE.to_string(),
        );
        let workspace = Workspace::new(&db, vec![stdlib]);
        Session {
            db,
            workspace,
            stdlib,
            prepared: Mutex::default(),
            fresh: Mutex::new(fresh),
            spare,
        }
    }

    /// A fresh session of `texts` (name → text) with every file checked:
    /// the session and all their diagnostics, sorted.
    pub fn checked(texts: Vec<(String, String)>) -> (Session, Vec<Diagnostic>) {
        let mut session = Session::default();
        let files: Vec<SourceFile> = texts
            .into_iter()
            .map(|(name, text)| session.set_file(&name, text))
            .collect();
        let mut diagnostics: Vec<Diagnostic> =
            files.iter().flat_map(|f| session.check(*f)).collect();
        sort_and_dedup(&mut diagnostics);
        (session, diagnostics)
    }

    /// Add a file (or replace its text when the path is known); returns it.
    /// A new text keeps the stable places of the chunks it shares with the
    /// file's previous text ([`PlaceMap::following`]).
    pub fn set_file(&mut self, path: &str, text: String) -> SourceFile {
        if let Some(f) = self.file(path) {
            let (old, old_text) = (f.places(&self.db), f.text(&self.db));
            if old_text != &text {
                // Only the part of the text around the edit is scanned again.
                let old_spans = old.spans(old_text.len() as u32);
                let ends = syntax::split::common_ends(old_text, &text);
                let chunks = syntax::split::chunk_spans_after(&old_spans, old_text, &text, ends);
                let places = PlaceMap::following(old, old_text, &chunks, &text);
                let old_len = old_text.len();
                let old_sections = f.sections(&self.db).clone();
                let (sections, fresh) = sections_after(
                    &mut self.db,
                    &mut self.spare,
                    path,
                    &old_sections,
                    (old_len, ends),
                    &text,
                    &chunks,
                    &places,
                );
                self.note_fresh(fresh);
                f.set_text(&mut self.db).to(text);
                f.set_places(&mut self.db).to(places);
                if sections != old_sections {
                    f.set_sections(&mut self.db).to(sections);
                }
            }
            return f;
        }
        let (f, fresh) = new_file(&mut self.db, &mut self.spare, path, text);
        self.note_fresh(fresh);
        let mut files = self.workspace.files(&self.db).clone();
        files.push(f);
        self.workspace.set_files(&mut self.db).to(files);
        f
    }

    /// Remember `sections` for [`Session::prepare`].
    fn note_fresh(&self, sections: Vec<Section>) {
        if let Ok(mut fresh) = self.fresh.lock() {
            fresh.extend(sections);
        }
    }

    /// Remove a file from the workspace.
    pub fn remove_file(&mut self, path: &str) {
        let files: Vec<SourceFile> = self
            .workspace
            .files(&self.db)
            .iter()
            .copied()
            .filter(|f| f.path(&self.db) != path)
            .collect();
        self.workspace.set_files(&mut self.db).to(files);
    }

    /// The file at `path`, if present.
    pub fn file(&self, path: &str) -> Option<SourceFile> {
        self.workspace
            .files(&self.db)
            .iter()
            .copied()
            .find(|f| f.path(&self.db) == path)
    }

    /// Every diagnostic of `file`.
    pub fn check(&self, file: SourceFile) -> Vec<Diagnostic> {
        self.check_in(self.workspace, file)
    }

    /// Every diagnostic of `file` checked with the files of `ws` (a
    /// language server's project).
    pub fn check_in(&self, ws: Workspace, file: SourceFile) -> Vec<Diagnostic> {
        self.prepare();
        self.check_families(ws, file);
        check_file(&self.db, ws, file).clone()
    }

    /// Run the check families of a large file side by side: once its
    /// effective policy is resolved, the families read it and not each
    /// other (the lints read the phase graph, which salsa then waits for),
    /// so a database clone per family runs them on all cores. They are the
    /// queries [`stable_check`] would run one after the other, no others:
    /// it then only reads their results.
    fn check_families(&self, ws: Workspace, file: SourceFile) {
        let db = &self.db;
        if rayon::current_num_threads() < 2 || file.places(db).len() < PARALLEL_CHUNKS {
            return;
        }
        let families = families_of(db, ws, file);
        if families.len() < 2 {
            return;
        }
        let jobs: Vec<(Database, Family)> = families
            .into_iter()
            .map(|family| (self.db.clone(), family))
            .collect();
        rayon::scope(move |scope| {
            for (db, family) in jobs {
                scope.spawn(move |_| family(&db, ws, file));
            }
        });
    }

    /// Parse the chunks of every file on all cores (each chunk once: what
    /// is already parsed is only looked up). The queries would parse them
    /// one after the other; a database clone per thread runs them side by
    /// side. Only worth it for many new chunks (opening a file, not typing).
    pub fn prepare(&self) {
        use salsa::plumbing::AsId;
        let db = &self.db;
        let Ok(mut prepared) = self.prepared.lock() else {
            return;
        };
        let Ok(mut fresh) = self.fresh.lock() else {
            return;
        };
        let sections = std::mem::take(&mut *fresh);
        drop(fresh);
        let work: Vec<Placed<'_>> = sections
            .iter()
            .flat_map(|s| section_chunks(db, *s).iter().copied())
            .filter(|p| !prepared.contains(&p.as_id()))
            .collect();
        if prepared.len() > 1 << 20 {
            // Chunks of texts long gone: forget them.
            prepared.clear();
        }
        prepared.extend(work.iter().map(|p| p.as_id()));
        drop(prepared);
        let threads = rayon::current_num_threads();
        if work.len() < PARALLEL_CHUNKS || threads < 2 {
            return;
        }
        // Many parts of about equal text per thread, so the thread that
        // finishes first takes the rest: cut by count, a part of long
        // declarations kept one core parsing alone for a fifth of a check.
        // 64 per thread: the last part parsed alone is a millisecond, not
        // four (100k lines: wall median 257.6 -> 253.5 ms over 40 runs).
        let parts = parts_of_equal_text(&work, threads * 64, |p| p.text(db).as_str().len());
        let jobs: Vec<(Database, &[Placed<'_>])> =
            parts.map(|part| (self.db.clone(), part)).collect();
        rayon::scope(move |scope| {
            for (db, part) in jobs {
                scope.spawn(move |_| {
                    for p in part {
                        let _ = placed(&db, *p);
                    }
                });
            }
        });
    }

    /// Every file's text with the map from the stable places that items,
    /// graphs and diagnostics hold back to its bytes.
    pub fn placed_texts(&self) -> PlacedTexts {
        self.placed_texts_of(|_| true)
    }

    /// [`Session::placed_texts`] of the files whose paths `keep` accepts.
    pub fn placed_texts_of(&self, keep: impl Fn(&str) -> bool) -> PlacedTexts {
        let mut out = PlacedTexts::default();
        for &f in self.workspace.files(&self.db) {
            if keep(f.path(&self.db)) {
                out.insert(
                    f.path(&self.db).clone(),
                    f.text(&self.db).clone(),
                    parse_file(&self.db, f).places.clone(),
                );
            }
        }
        out
    }
}

/// The sections of `text`, cut into `chunks` at `places`, after `old`
/// were the sections of a text of `old_len` bytes that it begins and
/// ends with `ends` bytes alike ([`sections::relayout`]): the sections
/// kept are the same inputs, and the new ones take the inputs of those
/// dropped, or the `spare` ones, before new inputs are made. Returns the
/// sections and, of them, those set.
#[allow(clippy::too_many_arguments)]
fn sections_after(
    db: &mut Database,
    spare: &mut Vec<Section>,
    path: &str,
    old: &[Section],
    (old_len, ends): (usize, (usize, usize)),
    text: &str,
    chunks: &[Span],
    places: &PlaceMap,
) -> (Vec<Section>, Vec<Section>) {
    let pieces = {
        let laid: Vec<OldSection<'_>> = old
            .iter()
            .map(|s| OldSection {
                len: s.text(&*db).len(),
                chunks: s.chunks(&*db),
            })
            .collect();
        sections::relayout(&laid, old_len, ends, text.len(), chunks, places)
    };
    let kept: HashSet<usize> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Kept(i) => Some(*i),
            Piece::Fresh(_) => None,
        })
        .collect();
    let mut dropped: Vec<Section> = old
        .iter()
        .enumerate()
        .filter(|(i, _)| !kept.contains(i))
        .map(|(_, s)| *s)
        .rev()
        .collect();
    let mut out = Vec::with_capacity(pieces.len());
    let mut fresh = Vec::new();
    for piece in pieces {
        let (bytes, section_chunks) = match piece {
            Piece::Kept(i) => {
                out.extend(old.get(i).copied());
                continue;
            }
            Piece::Fresh(range) => sections::fresh_section(text.len(), chunks, places, range),
        };
        // Chunks start at ASCII keywords: always a character boundary.
        let section_text = text.get(bytes).unwrap_or_default();
        let section = match dropped.pop().or_else(|| spare.pop()) {
            Some(s) => {
                if &**s.text(&*db) != section_text {
                    s.set_text(db).to(section_text.into());
                }
                if *s.chunks(&*db) != section_chunks {
                    s.set_chunks(db).to(section_chunks);
                }
                if s.path(&*db) != path {
                    s.set_path(db).to(path.to_string());
                }
                s
            }
            None => Section::new(&*db, path.to_string(), section_text.into(), section_chunks),
        };
        fresh.push(section);
        out.push(section);
    }
    // What no section holds any more is emptied and kept for later.
    for s in dropped {
        s.set_text(db).to("".into());
        s.set_chunks(db).to(Vec::new());
        spare.push(s);
    }
    (out, fresh)
}

/// A new file of `text` at `path`, and its sections (all set).
fn new_file(
    db: &mut Database,
    spare: &mut Vec<Section>,
    path: &str,
    text: String,
) -> (SourceFile, Vec<Section>) {
    let chunks = syntax::parser::chunk_spans(&text);
    let places = PlaceMap::new(&chunks);
    let (sections, fresh) =
        sections_after(db, spare, path, &[], (0, (0, 0)), &text, &chunks, &places);
    let f = SourceFile::new(&*db, path.to_string(), text, places, sections);
    (f, fresh)
}

impl Default for Session {
    fn default() -> Self {
        Session::new(Database::default())
    }
}

/// `items` cut, in order, into about `parts` runs of about equal total
/// `size`: the last run takes what is left.
fn parts_of_equal_text<T>(
    items: &[T],
    parts: usize,
    size: impl Fn(&T) -> usize,
) -> impl Iterator<Item = &[T]> {
    let total: usize = items.iter().map(&size).sum();
    let per = total.div_ceil(parts.max(1)).max(1);
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut taken = 0;
        let mut end = 0;
        for item in rest {
            end += 1;
            taken += size(item);
            if taken >= per {
                break;
            }
        }
        let (part, later) = rest.split_at(end);
        rest = later;
        Some(part)
    })
}

/// A chunk's text with its hash, computed once when the chunk is cut.
/// Salsa's table of interned chunks hashes every key again each time it
/// grows: with the text's own hash that was the whole file's text again
/// at each doubling, on the one thread a check starts with. Equal texts
/// have equal hashes, so the table finds what it found before.
///
/// The text is a range of its section's text, shared: a file's text is
/// not held once more chunk by chunk.
#[derive(Clone)]
pub struct ChunkText {
    hash: u64,
    /// The section's text.
    whole: Arc<str>,
    /// The chunk's bytes in it.
    start: u32,
    end: u32,
}

impl ChunkText {
    /// The text.
    pub fn as_str(&self) -> &str {
        self.whole
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

impl PartialEq for ChunkText {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.as_str() == other.as_str()
    }
}

impl Eq for ChunkText {}

impl std::fmt::Debug for ChunkText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ChunkText").field(&self.as_str()).finish()
    }
}

impl std::hash::Hash for ChunkText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// A chunk's text as cut from its section, to look up (and intern) without
/// copying it: the key of [`Placed::new`].
#[derive(Clone, Copy)]
pub struct ChunkKey<'t> {
    hash: u64,
    whole: &'t Arc<str>,
    start: u32,
    end: u32,
}

impl<'t> ChunkKey<'t> {
    /// The key of bytes `start..end` of `whole` (all of it when they are
    /// not a range of it).
    pub fn of(whole: &'t Arc<str>, start: u32, end: u32) -> Self {
        use std::hash::BuildHasher;
        let (start, end) = match whole.get(start as usize..end as usize) {
            Some(_) => (start, end),
            None => (0, whole.len() as u32),
        };
        let mut key = ChunkKey {
            hash: 0,
            whole,
            start,
            end,
        };
        key.hash = rustc_hash::FxBuildHasher.hash_one(key.text());
        key
    }

    /// The chunk's text.
    fn text(&self) -> &'t str {
        self.whole
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

impl std::hash::Hash for ChunkKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl salsa::plumbing::Lookup<ChunkText> for ChunkKey<'_> {
    fn into_owned(self) -> ChunkText {
        ChunkText {
            hash: self.hash,
            whole: self.whole.clone(),
            start: self.start,
            end: self.end,
        }
    }
}

impl salsa::plumbing::HashEqLike<ChunkKey<'_>> for ChunkText {
    fn eq(&self, key: &ChunkKey<'_>) -> bool {
        self.hash == key.hash && self.as_str() == key.text()
    }
}

pub use salsa_interned::Placed;

/// Interned chunks, in a module of their own: salsa generates their
/// constructor and getters, which carry no documentation.
mod salsa_interned {
    #![allow(missing_docs)]
    use super::*;

    /// One chunk of a file's text (a top-level declaration and the comments
    /// after it) at its stable place (see the module documentation), interned:
    /// an unchanged chunk at an unchanged place is not parsed again, however
    /// far it moved in the text.
    #[salsa::interned(debug)]
    pub struct Placed<'db> {
        /// The file's path (diagnostics name it).
        #[returns(ref)]
        pub path: String,
        /// The chunk's text.
        #[returns(ref)]
        pub text: ChunkText,
        /// Where it starts in stable places.
        #[returns(copy)]
        pub base: u32,
    }
}

/// One chunk of a file and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, salsa::SalsaValue)]
pub struct ChunkAt<'db> {
    /// The chunk at its stable place.
    pub placed: Placed<'db>,
    /// Its first byte in the file.
    pub start: u32,
    /// Its first stable place.
    pub base: u32,
}

impl ChunkAt<'_> {
    /// Byte `offset` of the file (in this chunk) as a stable place.
    pub fn to_stable(&self, offset: u32) -> u32 {
        offset.saturating_sub(self.start) + self.base
    }
}

/// A file cut into chunks.
#[derive(Clone, Debug, PartialEq, Eq, Default, salsa::SalsaValue)]
pub struct FileChunks<'db> {
    /// The chunks, in order; together they cover the text.
    pub chunks: Vec<ChunkAt<'db>>,
    /// Where each chunk's stable places are in the text.
    pub places: PlaceMap,
}

impl FileChunks<'_> {
    /// The byte range a place names ([`PlaceMap::bytes`]).
    pub fn place(&self, span: Place) -> Span {
        self.places.bytes(span)
    }
}

impl<'db> FileChunks<'db> {
    /// The chunk that holds byte `offset`, and the one before it when the
    /// offset is where a chunk starts (a name just before the cursor ends
    /// there).
    pub fn around(&self, offset: u32) -> impl Iterator<Item = &ChunkAt<'db>> {
        let i = self.chunks.partition_point(|c| c.start <= offset);
        let here = i.checked_sub(1).and_then(|h| self.chunks.get(h));
        let before = here
            .filter(|c| c.start == offset)
            .and_then(|_| i.checked_sub(2))
            .and_then(|b| self.chunks.get(b));
        here.into_iter().chain(before)
    }
}

/// Every chunk of a file with where it is, in order: its sections' chunks
/// ([`section_chunks`]) put together (the chunks themselves are parsed by
/// [`placed`], each only once). The checks read the sections instead
/// ([`stable_file`]): this list changes with every edit that moves text.
#[salsa::tracked(returns(ref))]
pub fn parse_file<'db>(db: &'db dyn salsa::Database, file: SourceFile) -> FileChunks<'db> {
    let places = file.places(db).clone();
    let mut chunks = Vec::with_capacity(places.len());
    let mut offset = 0;
    for &section in file.sections(db) {
        let placed = section_chunks(db, section);
        chunks.extend(
            placed
                .iter()
                .zip(section.chunks(db))
                .map(|(&placed, c)| ChunkAt {
                    placed,
                    start: offset + c.start,
                    base: c.base,
                }),
        );
        offset += section.text(db).len() as u32;
    }
    FileChunks { chunks, places }
}

/// A section's chunks, each interned at its stable place (an unchanged
/// chunk is the same [`Placed`] as before, whose parse is kept).
#[salsa::tracked(returns(ref))]
pub fn section_chunks<'db>(db: &'db dyn salsa::Database, section: Section) -> Vec<Placed<'db>> {
    let (path, text, chunks) = (section.path(db), section.text(db), section.chunks(db));
    let ends = chunks
        .iter()
        .skip(1)
        .map(|c| c.start as usize)
        .chain([text.len()]);
    chunks
        .iter()
        .zip(ends)
        .map(|(c, end)| {
            Placed::new(
                db,
                path.as_str(),
                ChunkKey::of(text, c.start, end as u32),
                c.base,
            )
        })
        .collect()
}

/// What [`stable_file`] reads of one section: its chunks' facts put
/// together, in order.
#[derive(Clone, Debug, PartialEq, Eq, Default, salsa::SalsaValue)]
pub(crate) struct SectionFacts<'db> {
    /// The chunks' lexical diagnostics.
    lexical: Vec<Diagnostic>,
    /// Their syntax diagnostics.
    diagnostics: Vec<Diagnostic>,
    /// Their keyed items; `None` without any.
    items: Option<Arc<[Arc<Sourced>]>>,
    /// The first declaration's head and every `policy` header's: all that
    /// [`header_diagnostics`] reads of a file besides the first header.
    heads: Vec<DeclHead>,
    /// A chunk's header is broken.
    broken_header: bool,
    /// The first `policy` header.
    header: Option<PolicyHeader>,
    /// `override` of a test.
    overridden_tests: Vec<Diagnostic>,
    /// The chunks that declare a test or a fixture.
    tests: Vec<Placed<'db>>,
}

/// The facts of a section's chunks ([`placed`]) put together.
#[salsa::tracked(returns(ref))]
pub(crate) fn section_facts<'db>(
    db: &'db dyn salsa::Database,
    section: Section,
) -> SectionFacts<'db> {
    let mut out = SectionFacts::default();
    let mut items: Vec<Arc<Sourced>> = Vec::new();
    for &p in section_chunks(db, section) {
        let f = placed(db, p);
        out.lexical.extend(f.parse.lexical.iter().cloned());
        out.diagnostics.extend(f.parse.diagnostics.iter().cloned());
        items.extend(f.items.iter().cloned());
        for (i, h) in f.heads.iter().enumerate() {
            if h.policy || (i == 0 && out.heads.is_empty()) {
                out.heads.push(*h);
            }
        }
        out.broken_header |= f.parse.broken_header;
        if out.header.is_none() {
            out.header.clone_from(&f.header);
        }
        out.overridden_tests
            .extend(f.overridden_tests.iter().cloned());
        if f.parse
            .decls
            .iter()
            .any(|d| matches!(d.kind, DeclKind::Test(_) | DeclKind::Fixture(_)))
        {
            out.tests.push(p);
        }
    }
    if !items.is_empty() {
        out.items = Some(items.into());
    }
    out
}

/// What the checks read of one chunk, in stable places.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PlacedFacts {
    /// The chunk's syntax tree and syntax diagnostics.
    pub parse: ChunkParse,
    /// The keyed items the chunk declares (shared: a file's items are its
    /// chunks' lists, [`StableItems`]).
    pub items: Arc<[Arc<Sourced>]>,
    /// Its `policy` header, if it is one.
    pub header: Option<PolicyHeader>,
    /// Kinds and keywords of its declarations.
    pub heads: Vec<DeclHead>,
    /// `override` of a test.
    pub overridden_tests: Vec<Diagnostic>,
}

/// Parse one chunk at its stable place; its items and header.
#[salsa::tracked(returns(ref))]
pub fn placed<'db>(db: &'db dyn salsa::Database, placed: Placed<'db>) -> PlacedFacts {
    let base = placed.base(db);
    let path = placed.path(db).as_str();
    let text = placed.text(db).as_str();
    let parse = syntax::parse_chunk(path, text, base as usize);
    let places = PlaceMap::chunk(base);
    let mut out = PlacedFacts::default();
    let file = shared_path(path);
    let mut items = Vec::new();
    for decl in &parse.decls {
        out.heads.push(DeclHead::of(decl));
        items.extend(compose::items_of_decl(&file, text, &places, decl));
        match &decl.kind {
            DeclKind::Policy(h) if out.header.is_none() => out.header = Some(h.clone()),
            DeclKind::Test(t) => {
                if let Some(kw) = decl.override_kw {
                    let removal = compose::override_place(text, &places, decl);
                    out.overridden_tests
                        .push(overridden_test(path, t.name.span, kw, removal));
                }
            }
            _ => {}
        }
    }
    out.parse = parse;
    // Kept for as long as the file is open: no spare room.
    out.heads.shrink_to_fit();
    out.items = items.into();
    out
}

/// `path` as a shared string: the items of a file name it with one
/// string, not one each (a thread keeps the last path it was asked for,
/// and the chunks of a file come one after the other).
fn shared_path(path: &str) -> Arc<str> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<Arc<str>>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return Arc::from(path);
        };
        match &*last {
            Some(p) if &**p == path => p.clone(),
            _ => {
                let p: Arc<str> = Arc::from(path);
                *last = Some(p.clone());
                p
            }
        }
    })
}

fn overridden_test(path: &str, name: Place, kw: Place, removal: Place) -> Diagnostic {
    Diagnostic::new(
        Code::NothingToOverride,
        path,
        name,
        "`override` of a test: tests are not inherited",
    )
    .with_label("no parent has this test")
    .with_secondary(path, kw, "nothing to override")
    .with_help("remove `override`; a test belongs to the file that declares it")
    .with_fix(pmf_syntax::diagnostics::Fix::certain(removal, ""))
}

/// What the checks read of one file, in stable places.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct StableFile {
    /// The first `policy` header.
    pub header: Option<PolicyHeader>,
    /// The keyed items, in source order.
    pub items: StableItems,
    /// The syntax diagnostics, in the order of [`syntax::parse`], then the
    /// `override`s of tests.
    pub diagnostics: Vec<Diagnostic>,
}

/// A file's chunks put together, in stable places.
#[salsa::tracked(returns(ref))]
pub(crate) fn stable_file(db: &dyn salsa::Database, file: SourceFile) -> StableFile {
    let facts: Vec<&SectionFacts<'_>> = file
        .sections(db)
        .iter()
        .map(|s| section_facts(db, *s))
        .collect();
    let mut out = StableFile::default();
    for f in &facts {
        out.diagnostics.extend(f.lexical.iter().cloned());
    }
    // The first declaration's head and the headers' (as each section's).
    let mut heads = Vec::new();
    let mut broken_header = false;
    for f in &facts {
        out.diagnostics.extend(f.diagnostics.iter().cloned());
        out.items.chunks.extend(f.items.iter().cloned());
        for h in &f.heads {
            if h.policy || heads.is_empty() {
                heads.push(*h);
            }
        }
        broken_header |= f.broken_header;
        if out.header.is_none() {
            out.header.clone_from(&f.header);
        }
    }
    out.diagnostics
        .extend(header_diagnostics(file.path(db), broken_header, &heads));
    for f in &facts {
        out.diagnostics.extend(f.overridden_tests.iter().cloned());
    }
    out
}

/// The `policy` header of a file, in stable places.
#[salsa::tracked(returns(ref))]
pub fn stable_header(db: &dyn salsa::Database, file: SourceFile) -> Option<PolicyHeader> {
    stable_file(db, file).header.clone()
}

/// The keyed items of a file, in order: its chunks' lists of items, shared
/// with [`placed`] (a file's items are not copied one by one after each
/// edit, nor compared one by one: an unchanged chunk's list is the same).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StableItems {
    /// The lists of the chunks that declare items, in order.
    pub chunks: Vec<Arc<[Arc<Sourced>]>>,
}

impl StableItems {
    /// Every item, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Sourced>> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// How many items there are.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    /// True without items.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// The keyed items of a file, in stable places.
#[salsa::tracked(returns(ref))]
pub fn stable_items(db: &dyn salsa::Database, file: SourceFile) -> StableItems {
    stable_file(db, file).items.clone()
}

/// Policies by name: which files declare `policy NAME` (the embedded stdlib
/// only where no checked file takes its name).
#[salsa::tracked(returns(ref))]
pub fn policy_index(db: &dyn salsa::Database, ws: Workspace) -> BTreeMap<String, Vec<SourceFile>> {
    let mut index: BTreeMap<String, Vec<SourceFile>> = BTreeMap::new();
    let mut embedded = Vec::new();
    for &f in ws.files(db) {
        if let Some(h) = stable_header(db, f) {
            if f.path(db) == crate::stdlib::KWANUS_PATH {
                embedded.push((h.name.name.to_string(), f));
            } else {
                index.entry(h.name.name.to_string()).or_default().push(f);
            }
        }
    }
    // A checked file that declares `policy kwanus` shadows the embedded copy.
    for (name, f) in embedded {
        index.entry(name).or_insert_with(|| vec![f]);
    }
    index
}

/// A file's effective policy and the diagnostics found building it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Resolved {
    /// The policy with its parents fused in.
    pub policy: EffectivePolicy,
    /// Names and composition diagnostics.
    pub diagnostics: Vec<Diagnostic>,
}

/// True when `target` is `start` or one of its ancestors.
fn reaches(db: &dyn salsa::Database, ws: Workspace, start: SourceFile, target: SourceFile) -> bool {
    let index = policy_index(db, ws);
    let mut seen = HashSet::new();
    let mut stack = vec![start];
    while let Some(f) = stack.pop() {
        if f == target {
            return true;
        }
        if !seen.insert(f) {
            continue;
        }
        if let Some(h) = stable_header(db, f) {
            for p in &h.parents {
                if let Some(files) = index.get(p.name.as_str()) {
                    stack.extend(files.first().copied());
                }
            }
        }
    }
    false
}

/// Resolve parents and fuse them with the file's own declarations, in
/// stable places (map a place to the text with [`FileChunks::place`] or
/// [`Session::placed_texts`]).
#[salsa::tracked(returns(ref))]
pub fn resolve(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Resolved {
    let header_of = |f: SourceFile| stable_header(db, f);
    let path = file.path(db).as_str();
    let header = header_of(file);
    let index = policy_index(db, ws);
    let mut diagnostics = Vec::new();
    let mut parents = Vec::new();
    if let Some(h) = header {
        if let Some(files) = index.get(h.name.name.as_str())
            && files.len() > 1
            && let Some(&first) = files.first()
            && first != file
        {
            let first_span = header_of(first)
                .as_ref()
                .map(|h| h.name.span)
                .unwrap_or_default();
            diagnostics.push(
                Diagnostic::new(
                    Code::DuplicateDeclaration,
                    path,
                    h.name.span,
                    format!("policy `{}` is declared by two files", h.name.name),
                )
                .with_label("declared again here")
                .with_secondary(first.path(db), first_span, "first declared here")
                .with_help("give each policy a unique name"),
            );
        }
        for p in &h.parents {
            let Some(&parent) = index.get(p.name.as_str()).and_then(|f| f.first()) else {
                // A policy never extends itself: its own name is no suggestion.
                let others = index
                    .keys()
                    .map(String::as_str)
                    .filter(|n| *n != h.name.name.as_str());
                diagnostics.push(
                    Diagnostic::new(
                        Code::UnknownParent,
                        path,
                        p.span,
                        format!("unknown parent policy `{}`", p.name),
                    )
                    .with_label("no policy of this name")
                    .with_help("a parent is `kwanus` (the standard library) or the name of a policy among the files checked together")
                    .with_suggestion(p.span, closest(&p.name, others)),
                );
                continue;
            };
            if reaches(db, ws, parent, file) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::CyclicExtends,
                        path,
                        p.span,
                        format!(
                            "policy `{}` extends itself through `{}`",
                            h.name.name, p.name
                        ),
                    )
                    .with_label("this parent leads back here")
                    .with_help("remove one `extends` link of the cycle"),
                );
                continue;
            }
            parents.push((p, parent));
        }
    }
    let resolved_parents: Vec<(&syntax::ast::Ident, &Resolved)> = parents
        .iter()
        .map(|(p, f)| (*p, resolve(db, ws, *f)))
        .collect();
    let parent_refs: Vec<Parent<'_>> = resolved_parents
        .iter()
        .map(|(name, r)| Parent {
            name,
            policy: &r.policy,
        })
        .collect();
    let parents_complete = header
        .as_ref()
        .is_none_or(|h| h.parents.len() == parents.len());
    let (policy, composition) = compose::compose(
        path,
        header.as_ref(),
        &stable_items(db, file).chunks,
        &parent_refs,
        parents_complete,
    );
    diagnostics.extend(composition);
    Resolved {
        policy,
        diagnostics,
    }
}

/// The items of a file's effective policy that type checking reads: the
/// partner fields (the schema) and the items with expressions, in order.
/// A firewall: an edit that changes other items (an authority, a category)
/// leaves this equal (the same `Arc`s), so [`type_check`] is not run again.
#[salsa::tracked(returns(ref))]
pub(crate) fn typed_items(
    db: &dyn salsa::Database,
    ws: Workspace,
    file: SourceFile,
) -> Vec<Arc<Sourced>> {
    filtered(&resolve(db, ws, file).policy.items, |s| s.node.is_typed())
}

/// The items `keep` accepts, in order, in a vector of their number (kept
/// while the file is open: collected, it could hold twice the room).
fn filtered(items: &[Arc<Sourced>], keep: impl Fn(&Sourced) -> bool) -> Vec<Arc<Sourced>> {
    let mut out = Vec::with_capacity(items.iter().filter(|s| keep(s)).count());
    out.extend(items.iter().filter(|s| keep(s)).cloned());
    out
}

/// The partner schema of a file's effective policy as one record type
/// ([`crate::model::types::schema`]): built once for the check families,
/// which each built it for its own [`Context`] (thousands of fields, lowered
/// and indexed five times over).
#[salsa::tracked(returns(ref))]
pub(crate) fn policy_schema(
    db: &dyn salsa::Database,
    ws: Workspace,
    file: SourceFile,
) -> crate::model::types::Type {
    // The schema reads the fields alone: built from them (a firewall, like
    // [`typed_items`]), it is not built again when a rule or a category is
    // added.
    crate::model::types::schema(&EffectivePolicy {
        items: schema_fields(db, ws, file).clone(),
        ..EffectivePolicy::default()
    })
}

/// The partner fields of a file's effective policy, in order: a firewall
/// in front of [`policy_schema`] (an edit that changes no field leaves it
/// equal, the same `Arc`s).
#[salsa::tracked(returns(ref))]
pub(crate) fn schema_fields(
    db: &dyn salsa::Database,
    ws: Workspace,
    file: SourceFile,
) -> Vec<Arc<Sourced>> {
    filtered(typed_items(db, ws, file), |s| {
        matches!(s.node, ItemNode::Field(_))
    })
}

/// The schema of a policy without fields, for the [`Context`] of checks
/// that read none.
fn no_schema() -> crate::model::types::Type {
    crate::model::types::schema(&EffectivePolicy::default())
}

/// `policy` with only the items `keep` accepts (its name, file, header and
/// lineage kept, nothing overridden): what a firewall query gives a check
/// family that reads no other item, so that an edit of other items leaves
/// it equal and the family does not run again.
fn projected(policy: &EffectivePolicy, keep: impl Fn(&Sourced) -> bool) -> EffectivePolicy {
    EffectivePolicy {
        name: policy.name.clone(),
        file: policy.file.clone(),
        header_span: policy.header_span,
        lineage: policy.lineage.clone(),
        items: filtered(&policy.items, keep),
        overridden: Vec::new(),
    }
}

/// What the migration checks ([`check::migrations`]) read of a file's
/// effective policy: its migration types, detection order and rules, and,
/// without an order, the file's last own item (where the proposed `order`
/// goes). A firewall: adding an authority or a category, or editing a
/// field or a check, leaves it equal, so [`migration_checks`] does not run
/// again.
#[salsa::tracked(returns(ref))]
pub(crate) fn migration_policy(
    db: &dyn salsa::Database,
    ws: Workspace,
    file: SourceFile,
) -> EffectivePolicy {
    let policy = &resolve(db, ws, file).policy;
    let last_own = match policy.order() {
        Some(_) => None,
        None => (policy.items.iter())
            .filter(|i| *i.file == *policy.file)
            .max_by_key(|i| i.span.end),
    };
    projected(policy, |s| {
        matches!(
            s.node,
            ItemNode::Migration(_) | ItemNode::Order(_) | ItemNode::Rule(..)
        ) || last_own.is_some_and(|l| std::ptr::eq(&**l, s))
    })
}

/// The migration checks of a file's effective policy, on what they read
/// ([`migration_policy`]).
#[salsa::tracked(returns(ref))]
pub(crate) fn migration_checks(
    db: &dyn salsa::Database,
    ws: Workspace,
    file: SourceFile,
) -> Vec<Diagnostic> {
    // They read no field: the schema of no policy (not the policy's, which
    // would make them run again after an edit of a field).
    let policy = migration_policy(db, ws, file);
    check::migrations::check(&Context::with_schema(policy, no_schema()))
}

/// What the ceiling checks ([`check::ceilings`]) read of a file's
/// effective policy: its ceilings (and the schema, [`policy_schema`]).
#[salsa::tracked(returns(ref))]
pub(crate) fn ceiling_policy(
    db: &dyn salsa::Database,
    ws: Workspace,
    file: SourceFile,
) -> EffectivePolicy {
    projected(&resolve(db, ws, file).policy, |s| {
        matches!(s.node, ItemNode::Ceiling(_))
    })
}

/// The ceiling checks of a file's effective policy, on what they read
/// ([`ceiling_policy`]).
#[salsa::tracked(returns(ref))]
pub(crate) fn ceiling_checks(
    db: &dyn salsa::Database,
    ws: Workspace,
    file: SourceFile,
) -> Vec<Diagnostic> {
    check::ceilings::check(&Context::with_schema(
        ceiling_policy(db, ws, file),
        policy_schema(db, ws, file).clone(),
    ))
}

/// What the phase graph and the flow checks read of a file's effective
/// policy: its flow and its rites.
#[salsa::tracked(returns(ref))]
pub(crate) fn flow_policy(
    db: &dyn salsa::Database,
    ws: Workspace,
    file: SourceFile,
) -> EffectivePolicy {
    projected(&resolve(db, ws, file).policy, |s| {
        matches!(s.node, ItemNode::Flow(_) | ItemNode::Rite(_))
    })
}

/// The checks' [`Context`] of a file's effective policy, with the schema
/// built once ([`policy_schema`]).
fn context(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Context<'_> {
    Context::with_schema(
        &resolve(db, ws, file).policy,
        policy_schema(db, ws, file).clone(),
    )
}

/// Type-check every expression of a file's effective policy.
#[salsa::tracked(returns(ref))]
pub fn type_check(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Vec<Diagnostic> {
    // The type checks read fields and expressions only (a test holds that
    // they find the same on the whole policy), with the shared schema.
    let policy = EffectivePolicy {
        items: typed_items(db, ws, file).clone(),
        ..EffectivePolicy::default()
    };
    check::types::check(&Context::with_schema(
        &policy,
        policy_schema(db, ws, file).clone(),
    ))
}

/// The compiled phase graph of a file's effective policy (in stable
/// places), and its checks.
#[salsa::tracked(returns(ref))]
pub fn phase_graph(
    db: &dyn salsa::Database,
    ws: Workspace,
    file: SourceFile,
) -> (Option<PhaseGraph>, Vec<Diagnostic>) {
    // The flow and the rites alone ([`flow_policy`]): a declaration of
    // anything else leaves the graph as it was.
    let policy = flow_policy(db, ws, file);
    let graph = PhaseGraph::build(policy);
    // The flow checks read no field.
    let diags = check::flow::check(&Context::with_schema(policy, no_schema()), graph.as_ref());
    (graph, diags)
}

/// Names, health, governance, key, migration and ceiling checks.
#[salsa::tracked(returns(ref))]
pub fn policy_checks(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Vec<Diagnostic> {
    let cx = context(db, ws, file);
    let mut out = check::names::check(&cx);
    out.extend(check::health::check(&cx));
    out.extend(check::governance::check(&cx));
    out.extend(check::keys::check(&cx));
    // These two read few items: queries of their own, behind firewalls.
    out.extend(migration_checks(db, ws, file).iter().cloned());
    out.extend(ceiling_checks(db, ws, file).iter().cloned());
    out
}

/// The `test` declarations of a file, in stable places, their states
/// refined from the file's fixtures (see [`crate::model::fixtures`]).
#[salsa::tracked(returns(ref))]
pub fn stable_tests(db: &dyn salsa::Database, file: SourceFile) -> ExpandedTests {
    // Only the chunks that declare tests or fixtures ([`test_chunks`]):
    // a declaration of anything else does not expand the tests again.
    let decls = test_chunks(db, file)
        .iter()
        .flat_map(|c| placed(db, *c).parse.decls.iter())
        .map(|d| &d.kind);
    expand_tests(file.path(db), decls)
}

/// The chunks of a file that declare a test or a fixture (what
/// [`stable_tests`] reads), in order: a firewall, equal after an edit of
/// any other declaration.
#[salsa::tracked(returns(ref))]
pub(crate) fn test_chunks<'db>(db: &'db dyn salsa::Database, file: SourceFile) -> Vec<Placed<'db>> {
    file.sections(db)
        .iter()
        .flat_map(|s| section_facts(db, *s).tests.iter().copied())
        .collect()
}

/// The checks of a file's `test` declarations against its effective policy.
#[salsa::tracked(returns(ref))]
pub(crate) fn test_checks(
    db: &dyn salsa::Database,
    ws: Workspace,
    file: SourceFile,
) -> Vec<Diagnostic> {
    let expanded = stable_tests(db, file);
    if expanded.tests.is_empty() && expanded.fixtures.is_empty() {
        return expanded.diagnostics.clone();
    }
    let cx = context(db, ws, file);
    let mut out = expanded.diagnostics.clone();
    out.extend(check::test_blocks::check(
        &cx,
        file.path(db),
        &expanded.tests,
        &expanded.fixtures,
    ));
    out
}

/// Warnings about what the file itself declares.
#[salsa::tracked(returns(ref))]
pub fn lints(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Vec<Diagnostic> {
    let (graph, _) = phase_graph(db, ws, file);
    check::lints::check(&resolve(db, ws, file).policy, graph.as_ref(), file.path(db))
}

/// Every diagnostic of a file, sorted and without duplicates.
///
/// A diagnostic that points into a parent but that the parent does not have
/// on its own is caused by this file: it moves here (see [`relocate`]).
///
/// Diagnostics stay in stable places (places of one file keep the order of
/// their bytes, so the order is the text's): whoever shows one maps it with
/// the file's [`PlaceMap`] ([`Session::placed_texts`], [`FileChunks::place`]).
#[salsa::tracked(returns(ref))]
pub fn check_file(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = stable_check(db, ws, file).clone();
    // Only a comment that starts with `pmf-allow` suppresses anything.
    if file.text(db).contains("pmf-allow") {
        let chunks = parse_file(db, file);
        let (mut comments, mut decls) = (Vec::new(), Vec::new());
        for c in &chunks.chunks {
            let parse = &placed(db, c.placed).parse;
            comments.extend(parse.comments.iter().cloned());
            decls.extend(parse.decls.iter().map(|d| d.span));
        }
        let (path, text) = (file.path(db), file.text(db));
        let (suppressions, malformed) =
            check::suppress::suppressions(path, text, &chunks.places, &comments, &decls);
        check::suppress::apply(path, &chunks.places, &mut out, &suppressions);
        out.extend(malformed);
    }
    sort_and_dedup(&mut out);
    out
}

/// With a parent missing, the policy is incomplete: every further finding
/// would be noise.
fn parents_resolved(resolved: &Resolved) -> bool {
    !resolved
        .diagnostics
        .iter()
        .any(|d| matches!(d.code, Code::UnknownParent | Code::CyclicExtends))
}

/// A declaration dropped by the parser's recovery would make the lints
/// speak of what it declared or used ("never used"): with a syntax error in
/// the file, its warnings wait.
fn syntax_broken(db: &dyn salsa::Database, file: SourceFile) -> bool {
    stable_file(db, file).diagnostics.iter().any(|d| {
        matches!(
            d.code,
            Code::SyntaxError | Code::NestingTooDeep | Code::Unterminated
        )
    })
}

/// A check family: a query that reads the effective policy.
type Family = fn(&dyn salsa::Database, Workspace, SourceFile);

/// The check families [`stable_check`] runs for `file` (after resolving
/// its policy, which this resolves): none without a header or with a
/// parent missing, the lints only without a syntax error.
///
/// In the order [`Session::check_families`] spawns them: a rayon scope's
/// own thread runs the last spawned first and a thread that steals takes
/// the first, so the longest (the policy checks) comes first and the next
/// longest (the lints, then type inference) last; the short ones fill in.
/// (Spawned the other way round, the policy checks started last and ran
/// alone for the last 6% of the 100k-line check.)
fn families_of(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Vec<Family> {
    if stable_header(db, file).is_none() || !parents_resolved(resolve(db, ws, file)) {
        return Vec::new();
    }
    let mut out: Vec<Family> = vec![
        |db, ws, file| {
            policy_checks(db, ws, file);
        },
        |db, ws, file| {
            phase_graph(db, ws, file);
        },
        |db, ws, file| {
            test_checks(db, ws, file);
        },
        |db, ws, file| {
            type_check(db, ws, file);
        },
    ];
    if !syntax_broken(db, file) {
        out.push(|db, ws, file| {
            lints(db, ws, file);
        });
    }
    out
}

/// Every diagnostic of a file in stable places, before suppressions: the
/// part of [`check_file`] that an edit elsewhere in the text leaves alone.
#[salsa::tracked(returns(ref))]
pub fn stable_check(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Vec<Diagnostic> {
    let mut out = stable_file(db, file).diagnostics.clone();
    // Only a file that declares the standard library's policy is compared
    // with it: reading the text of every file would tie this query to
    // every edit, comments included.
    if let Some(header) = stable_header(db, file)
        && header.name.name.as_str() == crate::stdlib::KWANUS_NAME
    {
        out.extend(check::names::replaced_standard_library(
            file.path(db),
            file.text(db),
            header,
        ));
    }
    if stable_header(db, file).is_some() {
        let resolved = resolve(db, ws, file);
        out.extend(resolved.diagnostics.iter().cloned());
        if parents_resolved(resolved) {
            // The queries of `families_of`, in a fixed order.
            let mut semantic: Vec<Diagnostic> = type_check(db, ws, file).clone();
            semantic.extend(phase_graph(db, ws, file).1.iter().cloned());
            semantic.extend(policy_checks(db, ws, file).iter().cloned());
            semantic.extend(test_checks(db, ws, file).iter().cloned());
            if !syntax_broken(db, file) {
                semantic.extend(lints(db, ws, file).iter().cloned());
            }
            let own = file.path(db).as_str();
            for d in semantic {
                if d.primary.file == own {
                    out.push(d);
                } else if !reported_by(db, ws, &d.primary.file, &d) {
                    out.push(relocate(d, own, resolved.policy.header_span));
                }
            }
        }
    }
    out
}

/// True when the file at `path` reports `diag` (in stable places) when
/// checked on its own.
fn reported_by(db: &dyn salsa::Database, ws: Workspace, path: &str, diag: &Diagnostic) -> bool {
    let Some(&other) = ws.files(db).iter().find(|f| f.path(db) == path) else {
        return false;
    };
    check_file(db, ws, other)
        .iter()
        .any(|d| d.code == diag.code && d.primary == diag.primary && d.message == diag.message)
}

/// The byte range, in the file at `path`, of `span` in stable places (as
/// [`resolve`] and the checks hold them); `span` itself for a path
/// that is not in the workspace.
pub fn offsets(db: &dyn salsa::Database, ws: Workspace, path: &str, span: Place) -> Span {
    match ws.files(db).iter().find(|f| f.path(db) == path) {
        Some(f) => parse_file(db, *f).place(span),
        None => PlaceMap::identity().bytes(span),
    }
}

/// Move a diagnostic into `own`: its primary place becomes its first label
/// in `own` (or `own`'s header), and the old primary place a label.
pub(crate) fn relocate(mut d: Diagnostic, own: &str, header: pmf_syntax::Place) -> Diagnostic {
    let new_primary = match d.labels.iter().position(|l| l.file == own) {
        Some(i) => d.labels.remove(i),
        None => pmf_syntax::diagnostics::Label {
            file: own.to_string(),
            span: header,
            message: "this policy's declarations cause it".into(),
        },
    };
    // Fixes edit the file of the primary place, which changes.
    d.fixes.clear();
    let mut old = std::mem::replace(&mut d.primary, new_primary);
    if old.message.is_empty() {
        old.message = "here".into();
    }
    d.labels.insert(0, old);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file put together from its sections says what the same file put
    /// together chunk by chunk says: its items, its first header, and its
    /// syntax and header diagnostics, in the same order (the sections keep
    /// only the heads the header checks read). Headers first, late, twice
    /// or missing, in sections far apart, with syntax errors between.
    #[test]
    fn a_file_put_together_by_sections_equals_it_put_together_by_chunks() {
        let body = |from: usize, to: usize| -> String {
            (from..to)
                .map(|i| format!("authority A{i} \"A\" governs c{i}\n"))
                .collect()
        };
        let texts = [
            format!("policy p extends kwanus\n{}", body(0, 100)),
            format!(
                "{}policy late extends kwanus\n{}",
                body(0, 70),
                body(70, 100)
            ),
            format!(
                "policy one\n{}policy two\n{}policy three\n",
                body(0, 40),
                body(40, 90)
            ),
            format!("{}authority ( broken\n{}", body(0, 50), body(50, 99)),
            format!("policy (\n{}", body(0, 80)),
            body(0, 100),
        ];
        let mut found = 0;
        for text in texts {
            let mut session = Session::default();
            let file = session.set_file("sections.pmf", text.clone());
            let db = session.db();
            assert!(file.sections(db).len() > 2, "{text}");
            let facts: Vec<&PlacedFacts> = parse_file(db, file)
                .chunks
                .iter()
                .map(|c| placed(db, c.placed))
                .collect();
            let mut diagnostics: Vec<Diagnostic> = facts
                .iter()
                .flat_map(|f| f.parse.lexical.iter().cloned())
                .collect();
            diagnostics.extend(
                facts
                    .iter()
                    .flat_map(|f| f.parse.diagnostics.iter().cloned()),
            );
            let heads: Vec<DeclHead> = facts.iter().flat_map(|f| f.heads.iter().copied()).collect();
            let broken = facts.iter().any(|f| f.parse.broken_header);
            let header_findings = header_diagnostics("sections.pmf", broken, &heads);
            found += header_findings.len();
            diagnostics.extend(header_findings);
            diagnostics.extend(
                facts
                    .iter()
                    .flat_map(|f| f.overridden_tests.iter().cloned()),
            );
            let items: Vec<&Arc<Sourced>> = facts.iter().flat_map(|f| f.items.iter()).collect();
            let header = facts.iter().find_map(|f| f.header.as_ref());
            let stable = stable_file(db, file);
            assert_eq!(stable.diagnostics, diagnostics, "{text}");
            assert_eq!(stable.items.iter().collect::<Vec<_>>(), items, "{text}");
            assert_eq!(stable.header.as_ref(), header, "{text}");
        }
        // A late header, two more, and none at all.
        assert!(found >= 4, "{found} header findings");
    }

    /// The parts cover every item once, in order, none empty, and no part
    /// but the last holds much more than its share.
    #[test]
    fn parts_of_equal_text_cover_everything_in_even_runs() {
        for (sizes, parts) in [
            (vec![], 4),
            (vec![5], 4),
            (vec![1; 100], 7),
            ((0..200).map(|i| if i > 150 { 50 } else { 1 }).collect(), 16),
            (vec![0, 0, 0], 2),
        ] {
            let cut: Vec<&[usize]> = parts_of_equal_text(&sizes, parts, |s| *s).collect();
            let joined: Vec<usize> = cut.iter().flat_map(|p| p.iter().copied()).collect();
            assert_eq!(joined, sizes);
            assert!(cut.iter().all(|p| !p.is_empty()));
            let total: usize = sizes.iter().sum();
            let per = total.div_ceil(parts).max(1);
            let biggest = sizes.iter().copied().max().unwrap_or(0);
            for part in &cut {
                assert!(
                    part.iter().sum::<usize>() < per + biggest,
                    "{part:?} of {sizes:?}"
                );
            }
            if total > 0 {
                assert!(cut.len() <= parts + 1, "{} parts of {sizes:?}", cut.len());
            }
        }
    }

    /// The firewall of [`type_check`] against the reference: the type
    /// checks run on the whole effective policy find the same, on every
    /// example and fixture (type errors included).
    #[test]
    fn type_checks_of_the_typed_items_are_those_of_the_whole_policy() {
        let files = crate::test_files::policies(&["examples", "tests/fixtures"]);
        let mut found = 0;
        for path in &files {
            let (session, file) = crate::test_files::session_of(path);
            let (db, ws) = (session.db(), session.workspace);
            let whole = check::types::check(&Context::new(&resolve(db, ws, file).policy));
            assert_eq!(type_check(db, ws, file), &whole, "{}", path.display());
            found += whole.len();
        }
        assert!(
            files.len() > 100 && found > 10,
            "{} files, {found} findings",
            files.len()
        );
    }

    /// The firewalls of the migration checks, the ceiling checks, the
    /// phase graph (and its flow checks) and the tests against their
    /// references: each run on the whole effective policy (the tests on
    /// every declaration of the file) finds the same, on every example and
    /// fixture (findings of each family included).
    #[test]
    fn checks_behind_firewalls_find_what_they_find_on_the_whole_policy() {
        let files = crate::test_files::policies(&["examples", "tests/fixtures"]);
        let (mut migrations, mut ceilings, mut flows, mut tests) = (0, 0, 0, 0);
        for path in &files {
            let (session, file) = crate::test_files::session_of(path);
            let (db, ws) = (session.db(), session.workspace);
            let name = path.display();
            let policy = &resolve(db, ws, file).policy;
            let whole = Context::new(policy);
            let reference = check::migrations::check(&whole);
            assert_eq!(migration_checks(db, ws, file), &reference, "{name}");
            migrations += reference.len();
            let reference = check::ceilings::check(&whole);
            assert_eq!(ceiling_checks(db, ws, file), &reference, "{name}");
            ceilings += reference.len();
            let graph = PhaseGraph::build(policy);
            let reference = check::flow::check(&whole, graph.as_ref());
            assert_eq!(
                phase_graph(db, ws, file),
                &(graph, reference.clone()),
                "{name}"
            );
            flows += reference.len();
            let decls = parse_file(db, file)
                .chunks
                .iter()
                .flat_map(|c| placed(db, c.placed).parse.decls.iter())
                .map(|d| &d.kind);
            let reference = expand_tests(file.path(db), decls);
            assert_eq!(stable_tests(db, file), &reference, "{name}");
            tests += reference.tests.len() + reference.diagnostics.len();
        }
        assert!(
            files.len() > 100 && migrations > 5 && ceilings > 3 && flows > 3 && tests > 3,
            "{} files: {migrations} migration, {ceilings} ceiling and {flows} flow findings, {tests} tests",
            files.len()
        );
    }

    /// The schema the check families share is the one each built for
    /// itself, on every example policy (and the stdlib alone).
    #[test]
    fn the_shared_schema_is_the_schema_of_the_policy() {
        // `none.pmf` is not there: the stdlib alone.
        let mut files = crate::test_files::policies(&["examples"]);
        files.push(std::path::PathBuf::from("none.pmf"));
        let mut checked = 0;
        for path in files {
            let (session, file) = crate::test_files::session_of(&path);
            let (db, ws) = (session.db(), session.workspace);
            let policy = &resolve(db, ws, file).policy;
            assert_eq!(
                policy_schema(db, ws, file),
                &crate::model::types::schema(policy),
                "{}",
                path.display()
            );
            assert_eq!(context(db, ws, file).schema, Context::new(policy).schema);
            checked += 1;
        }
        assert!(checked > 3, "only {checked} policies");
    }
}
