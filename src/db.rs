//! The salsa database and the tracked queries of the compiler pipeline:
//! `parse_file` → `resolve` (parents, fusion, stdlib) → `type_check`,
//! `phase_graph`, `policy_checks`, `lints` → `check_file`.
//!
//! The CLI and the language server both drive these queries; after an edit
//! only the queries that read the edited file run again.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use salsa::Setter;

use crate::check::{self, Context};
use crate::diagnostics::{Code, Diagnostic, did_you_mean, sort_and_dedup};
use crate::graph::PhaseGraph;
use crate::model::EffectivePolicy;
use crate::model::compose::{self, Parent};
use crate::syntax::ast::PolicyHeader;
use crate::syntax::{self, Parsed};

/// One source file: an input of the pipeline.
#[salsa::input(debug)]
pub struct SourceFile {
    /// The path as given by the user (used in diagnostics).
    #[returns(ref)]
    pub path: String,
    /// The file's text.
    #[returns(ref)]
    pub text: String,
}

/// The set of files checked together (the embedded stdlib included).
#[salsa::input(debug)]
pub struct Workspace {
    /// Every file, stdlib first.
    #[returns(ref)]
    pub files: Vec<SourceFile>,
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
pub type ExecutionLog = Arc<Mutex<Vec<String>>>;

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

/// A workspace of files to check, plus the embedded stdlib.
pub struct Session {
    /// The database.
    pub db: Database,
    /// The workspace input.
    pub workspace: Workspace,
    /// The stdlib file.
    pub stdlib: SourceFile,
}

impl Session {
    /// A session over `db` holding only the stdlib.
    pub fn new(db: Database) -> Self {
        let stdlib = SourceFile::new(
            &db,
            crate::stdlib::KWANUS_PATH.to_string(),
            crate::stdlib::KWANUS_SOURCE.to_string(),
        );
        let workspace = Workspace::new(&db, vec![stdlib]);
        Session {
            db,
            workspace,
            stdlib,
        }
    }

    /// Add a file (or replace its text when the path is known); returns it.
    pub fn set_file(&mut self, path: &str, text: String) -> SourceFile {
        if let Some(f) = self.file(path) {
            if f.text(&self.db) != &text {
                f.set_text(&mut self.db).to(text);
            }
            return f;
        }
        let f = SourceFile::new(&self.db, path.to_string(), text);
        let mut files = self.workspace.files(&self.db).clone();
        files.push(f);
        self.workspace.set_files(&mut self.db).to(files);
        f
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
        check_file(&self.db, self.workspace, file).clone()
    }

    /// Source texts of every file, for rendering.
    pub fn sources(&self) -> BTreeMap<String, String> {
        self.workspace
            .files(&self.db)
            .iter()
            .map(|f| (f.path(&self.db).clone(), f.text(&self.db).clone()))
            .collect()
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new(Database::default())
    }
}

/// Parse one file.
#[salsa::tracked(returns(ref))]
pub fn parse_file(db: &dyn salsa::Database, file: SourceFile) -> Parsed {
    syntax::parse(file.path(db), file.text(db))
}

/// The `policy` header of a file, if it has one.
#[salsa::tracked(returns(ref))]
pub fn file_header(db: &dyn salsa::Database, file: SourceFile) -> Option<PolicyHeader> {
    parse_file(db, file).ast.header().cloned()
}

/// The keyed items a file declares.
#[salsa::tracked(returns(ref))]
pub fn file_items(db: &dyn salsa::Database, file: SourceFile) -> Vec<Arc<crate::model::Sourced>> {
    compose::items_of(file.path(db), file.text(db), &parse_file(db, file).ast)
}

/// Policies by name: which files declare `policy NAME` (the embedded stdlib
/// only where no checked file takes its name).
#[salsa::tracked(returns(ref))]
pub fn policy_index(db: &dyn salsa::Database, ws: Workspace) -> BTreeMap<String, Vec<SourceFile>> {
    let mut index: BTreeMap<String, Vec<SourceFile>> = BTreeMap::new();
    let mut embedded = Vec::new();
    for &f in ws.files(db) {
        if let Some(h) = file_header(db, f) {
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
        if let Some(h) = file_header(db, f) {
            for p in &h.parents {
                if let Some(files) = index.get(p.name.as_str()) {
                    stack.extend(files.first().copied());
                }
            }
        }
    }
    false
}

/// Resolve parents and fuse them with the file's own declarations.
#[salsa::tracked(returns(ref))]
pub fn resolve(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Resolved {
    let path = file.path(db).as_str();
    let header = file_header(db, file);
    let index = policy_index(db, ws);
    let mut diagnostics = Vec::new();
    let mut parents = Vec::new();
    if let Some(h) = header {
        if let Some(files) = index.get(h.name.name.as_str())
            && files.len() > 1
            && files[0] != file
        {
            let first = files[0];
            let first_span = file_header(db, first)
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
                let help = did_you_mean(&p.name, index.keys().map(String::as_str)).unwrap_or_else(|| {
                    "a parent is `kwanus` (the standard library) or the name of a policy among the files checked together".into()
                });
                diagnostics.push(
                    Diagnostic::new(
                        Code::UnknownParent,
                        path,
                        p.span,
                        format!("unknown parent policy `{}`", p.name),
                    )
                    .with_label("no policy of this name")
                    .with_help(help),
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
        file_items(db, file),
        &parent_refs,
        parents_complete,
    );
    diagnostics.extend(composition);
    Resolved {
        policy,
        diagnostics,
    }
}

/// Type-check every expression of a file's effective policy.
#[salsa::tracked(returns(ref))]
pub fn type_check(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Vec<Diagnostic> {
    let cx = Context::new(&resolve(db, ws, file).policy);
    check::types::check(&cx)
}

/// The compiled phase graph of a file's effective policy, and its checks.
#[salsa::tracked(returns(ref))]
pub fn phase_graph(
    db: &dyn salsa::Database,
    ws: Workspace,
    file: SourceFile,
) -> (Option<PhaseGraph>, Vec<Diagnostic>) {
    let policy = &resolve(db, ws, file).policy;
    let graph = PhaseGraph::build(policy);
    let diags = check::flow::check(&Context::new(policy), graph.as_ref());
    (graph, diags)
}

/// Names, health, governance, migration and ceiling checks.
#[salsa::tracked(returns(ref))]
pub fn policy_checks(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Vec<Diagnostic> {
    let cx = Context::new(&resolve(db, ws, file).policy);
    let mut out = check::names::check(&cx);
    out.extend(check::health::check(&cx));
    out.extend(check::governance::check(&cx));
    out.extend(check::migrations::check(&cx));
    out.extend(check::ceilings::check(&cx));
    out
}

/// Warnings about what the file itself declares.
#[salsa::tracked(returns(ref))]
pub fn lints(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Vec<Diagnostic> {
    let policy = &resolve(db, ws, file).policy;
    let (graph, _) = phase_graph(db, ws, file);
    check::lints::check(&Context::new(policy), graph.as_ref(), file.path(db))
}

/// Every diagnostic of a file, sorted and without duplicates.
///
/// A diagnostic that points into a parent but that the parent does not have
/// on its own is caused by this file: it moves here (see [`relocate`]).
#[salsa::tracked(returns(ref))]
pub fn check_file(db: &dyn salsa::Database, ws: Workspace, file: SourceFile) -> Vec<Diagnostic> {
    let parsed = parse_file(db, file);
    let mut out = parsed.diagnostics.clone();
    for decl in &parsed.ast.decls {
        if let (Some(kw), crate::syntax::ast::DeclKind::Test(_)) = (decl.override_kw, &decl.kind) {
            out.push(
                Diagnostic::new(
                    Code::NothingToOverride,
                    file.path(db),
                    kw,
                    "`override` of a test: tests are not inherited",
                )
                .with_label("nothing to override")
                .with_help("remove `override`; a test belongs to the file that declares it"),
            );
        }
    }
    if parsed.ast.header().is_some() {
        let resolved = resolve(db, ws, file);
        out.extend(resolved.diagnostics.iter().cloned());
        // With a parent missing, the policy is incomplete: every further
        // finding would be noise.
        let parents_resolved = !resolved
            .diagnostics
            .iter()
            .any(|d| matches!(d.code, Code::UnknownParent | Code::CyclicExtends));
        if parents_resolved {
            let mut semantic: Vec<Diagnostic> = type_check(db, ws, file).clone();
            semantic.extend(phase_graph(db, ws, file).1.iter().cloned());
            semantic.extend(policy_checks(db, ws, file).iter().cloned());
            semantic.extend(lints(db, ws, file).iter().cloned());
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
    let (suppressions, malformed) =
        check::suppress::suppressions(file.path(db), file.text(db), &parsed.ast);
    check::suppress::apply(file.path(db), &mut out, &suppressions);
    out.extend(malformed);
    sort_and_dedup(&mut out);
    out
}

/// True when the file at `path` reports `diag` when checked on its own.
fn reported_by(db: &dyn salsa::Database, ws: Workspace, path: &str, diag: &Diagnostic) -> bool {
    let Some(&other) = ws.files(db).iter().find(|f| f.path(db) == path) else {
        return false;
    };
    check_file(db, ws, other)
        .iter()
        .any(|d| d.code == diag.code && d.primary == diag.primary && d.message == diag.message)
}

/// Move a diagnostic into `own`: its primary place becomes its first label
/// in `own` (or `own`'s header), and the old primary place a label.
pub fn relocate(mut d: Diagnostic, own: &str, header: crate::syntax::Span) -> Diagnostic {
    let new_primary = match d.labels.iter().position(|l| l.file == own) {
        Some(i) => d.labels.remove(i),
        None => crate::diagnostics::Label {
            file: own.to_string(),
            span: header,
            message: "this policy's declarations cause it".into(),
        },
    };
    let mut old = std::mem::replace(&mut d.primary, new_primary);
    if old.message.is_empty() {
        old.message = "here".into();
    }
    d.labels.insert(0, old);
    d
}
