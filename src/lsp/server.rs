//! The server: the initialize handshake, the main loop and the dispatch of
//! requests and notifications.
//!
//! One long-lived [`Session`] holds every file, each in its project
//! ([`super::projects`]: the files `pmf check` would check together); an
//! edit sets the file's text, and salsa re-runs only the queries of its
//! project that read it. Messages are
//! handled in order on the main loop. Diagnostics are published once no
//! message is waiting, so a burst of edits is checked once, for its last
//! version. Every handler runs inside `catch_unwind`: a panic answers the
//! request with `InternalError` and the server goes on.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lsp_server::{
    Connection, ErrorCode, Message, Notification, Request, RequestId, Response, ResponseError,
};
use lsp_types::{
    CodeActionKind, CodeActionOptions, CodeActionParams, CodeActionProvider, CompletionOptions,
    DefinitionProvider, DidChangeTextDocumentParams, DidChangeWatchedFilesParams,
    DidCloseTextDocumentParams, DidOpenTextDocumentParams, DidSaveTextDocumentParams,
    DocumentFormattingParams, DocumentFormattingProvider, DocumentSymbolParams,
    DocumentSymbolProvider, FileChangeType, HoverProvider, Position, PositionEncodingKind,
    PublishDiagnosticsParams, Range, ReferenceParams, ReferencesProvider, Save, SaveOptions,
    ServerCapabilities, ServerInfo, TextDocumentContent, TextDocumentContentChangeEvent,
    TextDocumentContentOptions, TextDocumentContentParams, TextDocumentContentResult,
    TextDocumentPositionParams, TextDocumentSync, TextDocumentSyncKind, TextDocumentSyncOptions,
    TextEdit, WorkspaceOptions,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::convert::{Encoding, LineIndex};
use super::diagnostics::{group_by_file, to_lsp};
use super::projects::{ProjectKey, Projects, project_key};
use super::workspace::{
    DocRef, Document, Documents, STDLIB_SCHEME, Texts, folder_paths, load_directory, load_folders,
    path_of_uri, read_disk, uri_of_path,
};
use super::{actions, completion, hover, navigation, symbols};
use crate::cli::files::PROJECT_FILE;
use crate::db::{Session, SourceFile};
use crate::stdlib::{KWANUS_PATH, KWANUS_SOURCE};

/// How long to wait, after a change, for a message already on its way
/// before checking.
const GRACE: Duration = Duration::from_micros(300);

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// `shutdown` then `exit`: exit code 0.
    Clean,
    /// `exit` without `shutdown`, or the client went away: exit code 1.
    Abrupt,
}

/// The capabilities the server announces for `enc`.
pub fn capabilities(enc: Encoding) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(enc.kind()),
        text_document_sync: Some(TextDocumentSync::Options(TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(TextDocumentSyncKind::Incremental),
            save: Some(Save::SaveOptions(SaveOptions {
                include_text: Some(false),
            })),
            ..Default::default()
        })),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), " ".into(), ",".into()]),
            ..Default::default()
        }),
        hover_provider: Some(HoverProvider::Bool(true)),
        definition_provider: Some(DefinitionProvider::Bool(true)),
        references_provider: Some(ReferencesProvider::Bool(true)),
        document_symbol_provider: Some(DocumentSymbolProvider::Bool(true)),
        document_formatting_provider: Some(DocumentFormattingProvider::Bool(true)),
        code_action_provider: Some(CodeActionProvider::CodeActionOptions(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QuickFix]),
            ..Default::default()
        })),
        workspace: Some(WorkspaceOptions {
            text_document_content: Some(TextDocumentContent::Options(TextDocumentContentOptions {
                schemes: vec![STDLIB_SCHEME.to_string()],
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What the server takes from the `initialize` parameters.
struct InitOptions {
    encoding: Encoding,
    folders: Vec<String>,
    /// The client registers file watchers on request.
    watch: bool,
}

fn read_init(params: &Value) -> InitOptions {
    let offered: Option<Vec<PositionEncodingKind>> = params
        .pointer("/capabilities/general/positionEncodings")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let mut folders: Vec<String> = params
        .get("workspaceFolders")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|f| f.get("uri").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if folders.is_empty()
        && let Some(root) = params.get("rootUri").and_then(Value::as_str)
    {
        folders.push(root.to_string());
    }
    InitOptions {
        encoding: Encoding::negotiate(offered.as_deref()),
        folders,
        watch: params
            .pointer("/capabilities/workspace/didChangeWatchedFiles/dynamicRegistration")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

/// Run the initialize handshake and serve `connection` until `exit`.
///
/// Requests before `initialize` are answered `ServerNotInitialized`; an
/// `exit` (or the end of the input) before it ends the session abruptly.
pub fn serve(connection: &Connection) -> Result<Ending, String> {
    let (id, params) = match connection.initialize_start() {
        Ok(start) => start,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "pmf lsp: before initialize: {e}");
            return Ok(Ending::Abrupt);
        }
    };
    let init = read_init(&params);
    let result = serde_json::json!({
        "capabilities": capabilities(init.encoding),
        "serverInfo": ServerInfo {
            name: "pmf".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
        },
    });
    // The `initialized` notification that follows is ignored by the loop.
    send(connection, Response::new_ok(id, result).into())?;
    if init.watch {
        // The client's answer is a response, which the loop ignores.
        send(connection, register_watchers().into())?;
    }
    let mut server = Server::new(init.encoding);
    server.load_workspace(&init.folders);
    server.run(connection)
}

/// The state of a running server.
pub struct Server {
    session: Session,
    /// The project of every file, each with its workspace input.
    projects: Projects,
    enc: Encoding,
    docs: Documents,
    /// Paths of documents edited, opened or saved since the last publish:
    /// they are published even when their diagnostics did not change.
    touched: HashSet<String>,
    /// Something changed since the last publish.
    dirty: bool,
    /// The diagnostics last published, by session path.
    published: HashMap<String, Vec<lsp_types::Diagnostic>>,
    shutdown: bool,
    /// The workspace folders.
    roots: Vec<PathBuf>,
    /// Directories whose `*.pmf` files were loaded recursively: the
    /// workspace folders, and the project roots of documents opened
    /// outside them.
    walked: Vec<PathBuf>,
    /// Directories under no `pmf.toml` whose `*.pmf` files (not their
    /// subdirectories') were loaded for a document opened outside the
    /// workspace folders.
    sibling_dirs: HashSet<PathBuf>,
    /// Lint levels from the workspace's `pmf.toml`, as `pmf check` applies them.
    lints: crate::diagnostics::config::Config,
    /// Messages taken in but not handled yet.
    queue: std::collections::VecDeque<Message>,
    /// Requests the client cancelled before they ran.
    cancelled: HashSet<RequestId>,
}

impl Server {
    /// A server with an empty workspace, speaking `enc` positions.
    pub fn new(enc: Encoding) -> Self {
        let session = Session::default();
        let projects = Projects::new(&session);
        Server {
            session,
            projects,
            enc,
            docs: Documents::new(),
            touched: HashSet::new(),
            dirty: false,
            published: HashMap::new(),
            shutdown: false,
            roots: Vec::new(),
            walked: Vec::new(),
            sibling_dirs: HashSet::new(),
            lints: Default::default(),
            queue: Default::default(),
            cancelled: HashSet::new(),
        }
    }

    /// Load the `*.pmf` files of the workspace folders (URIs), each into
    /// its project.
    pub fn load_workspace(&mut self, folders: &[String]) {
        self.roots = folder_paths(folders);
        self.walked = self.roots.clone();
        let found = load_folders(&self.roots);
        self.add_found(found);
        self.load_lints();
    }

    /// Add files read from disk, each to its project; open documents keep
    /// the editor's text.
    fn add_found(&mut self, found: Vec<(String, String)>) {
        // Files found by a walk are never excluded, and the files of one
        // directory share their project.
        let mut by_dir: HashMap<PathBuf, ProjectKey> = HashMap::new();
        for (path, text) in found {
            if self.docs.contains_key(&path) {
                continue;
            }
            let dir = Path::new(&path)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let key = by_dir
                .entry(dir)
                .or_insert_with(|| project_key(&path, &self.roots, false))
                .clone();
            self.projects.set_file(&mut self.session, &path, text, key);
        }
    }

    /// Read the lint levels `pmf check` run from the first workspace folder
    /// applies; an unreadable or invalid `pmf.toml` leaves the defaults.
    fn load_lints(&mut self) {
        self.lints = Default::default();
        if let Some(config) = self
            .roots
            .first()
            .and_then(|r| crate::diagnostics::config::find(r))
            && let Ok(text) = crate::cli::files::read_text(&config)
            && let Ok((lints, _)) =
                crate::diagnostics::config::parse(&config.display().to_string(), &text)
        {
            self.lints = lints;
        }
    }

    /// Load the files of the project `key` when no walk has yet, so that
    /// a document opened outside the workspace folders resolves its
    /// parents: the tree under its `pmf.toml` or, under none, the files of
    /// its directory (once each).
    fn load_project(&mut self, key: &ProjectKey) {
        let ProjectKey::Directory(dir) = key else {
            return;
        };
        if self.walked.iter().any(|w| dir.starts_with(w)) {
            return;
        }
        if dir.join(PROJECT_FILE).is_file() {
            self.walked.push(dir.clone());
            let found = load_folders(std::slice::from_ref(dir));
            self.add_found(found);
        } else if self.sibling_dirs.insert(dir.clone()) {
            let found = load_directory(dir);
            self.add_found(found);
        }
    }

    /// Sort every file into its project again after a `pmf.toml` appeared,
    /// changed or went away: walk again (the excluded folders may differ),
    /// drop the files no walk finds any more (unless open), and move each
    /// file to the project the rule now gives it.
    fn relayout(&mut self) {
        let mut found = load_folders(&self.walked);
        for dir in &self.sibling_dirs {
            found.extend(load_directory(dir));
        }
        let on_disk: HashSet<String> = found.iter().map(|(p, _)| p.clone()).collect();
        for path in self.projects.paths() {
            if !on_disk.contains(&path) && !self.docs.contains_key(&path) {
                self.projects.remove_file(&mut self.session, &path);
            }
        }
        self.add_found(found);
        let open: Vec<(String, SourceFile)> = self
            .docs
            .values()
            .filter(|d| !d.read_only)
            .map(|d| (d.path.clone(), d.file))
            .collect();
        for (path, file) in open {
            let key = project_key(&path, &self.roots, true);
            self.load_project(&key);
            self.projects.assign(&mut self.session, &path, file, key);
        }
        self.load_lints();
        self.dirty = true;
    }

    fn run(&mut self, connection: &Connection) -> Result<Ending, String> {
        loop {
            if self.queue.is_empty() {
                let msg = if self.dirty && !self.shutdown {
                    // Check once nothing is waiting: a message already on its
                    // way (the next change of a burst) would make the check stale.
                    match connection.receiver.recv_timeout(GRACE) {
                        Ok(msg) => msg,
                        Err(e) if e.is_timeout() => {
                            self.guarded("publishing diagnostics", |s| s.publish(connection));
                            continue;
                        }
                        Err(_) => return Ok(self.ending()),
                    }
                } else {
                    match connection.receiver.recv() {
                        Ok(msg) => msg,
                        Err(_) => return Ok(self.ending()),
                    }
                };
                self.take_in(msg);
            }
            // Take in whatever else has arrived: a `$/cancelRequest` queued
            // behind its request is seen before the request runs, and the
            // stale request is answered as cancelled instead of computed.
            while let Ok(msg) = connection.receiver.try_recv() {
                self.take_in(msg);
            }
            let Some(msg) = self.queue.pop_front() else {
                continue;
            };
            if let Some(ending) = self.handle(connection, msg)? {
                return Ok(ending);
            }
        }
    }

    /// Queue a message, noting the request a `$/cancelRequest` names.
    fn take_in(&mut self, msg: Message) {
        self.note_cancellation(&msg);
        self.queue.push_back(msg);
    }

    /// Remember the request a `$/cancelRequest` names.
    fn note_cancellation(&mut self, msg: &Message) {
        if let Message::Notification(n) = msg
            && n.method == "$/cancelRequest"
        {
            let id = match n.params.get("id") {
                Some(serde_json::Value::Number(num)) => num
                    .as_i64()
                    .and_then(|i| i32::try_from(i).ok())
                    .map(RequestId::from),
                Some(serde_json::Value::String(s)) => Some(RequestId::from(s.clone())),
                _ => None,
            };
            if let Some(id) = id {
                // Cancellations of requests already answered are never
                // looked up again: keep the set small.
                if self.cancelled.len() >= 1024 {
                    self.cancelled.clear();
                }
                self.cancelled.insert(id);
            }
        }
    }

    /// Handle one message; `Some` when it was `exit`.
    fn handle(&mut self, connection: &Connection, msg: Message) -> Result<Option<Ending>, String> {
        match msg {
            Message::Request(req) => {
                let response = self.handle_request(req);
                send(connection, response.into())?;
            }
            Message::Notification(n) if n.method == "exit" => return Ok(Some(self.ending())),
            Message::Notification(n) => {
                let method = n.method.clone();
                self.guarded(&method, |s| s.handle_notification(n));
            }
            Message::Response(_) => {}
        }
        Ok(None)
    }

    fn ending(&self) -> Ending {
        if self.shutdown {
            Ending::Clean
        } else {
            Ending::Abrupt
        }
    }

    /// Run `f`; a panic is logged and the server goes on.
    fn guarded(&mut self, what: &str, f: impl FnOnce(&mut Self)) {
        if catch_unwind(AssertUnwindSafe(|| f(self))).is_err() {
            let _ = writeln!(
                std::io::stderr(),
                "pmf lsp: internal error while handling {what}; continuing"
            );
            self.dirty = false;
        }
    }

    /// Answer one request; never panics.
    pub fn handle_request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        if self.cancelled.remove(&id) {
            return error(id, ErrorCode::RequestCanceled, "cancelled by the client");
        }
        if self.shutdown {
            return error(id, ErrorCode::InvalidRequest, "the server is shutting down");
        }
        if req.method == "shutdown" {
            self.shutdown = true;
            return Response::new_ok(id, ());
        }
        if req.method == "initialize" {
            return error(
                id,
                ErrorCode::InvalidRequest,
                "the server is already initialized",
            );
        }
        let method = req.method.clone();
        match catch_unwind(AssertUnwindSafe(|| self.dispatch(req))) {
            Ok(Ok(value)) => Response {
                id,
                response_result: Ok(value),
            },
            Ok(Err(e)) => Response {
                id,
                response_result: Err(e),
            },
            Err(_) => error(
                id,
                ErrorCode::InternalError,
                &format!("internal error while handling `{method}`"),
            ),
        }
    }

    fn dispatch(&mut self, req: Request) -> Result<Value, ResponseError> {
        match req.method.as_str() {
            "textDocument/hover" => {
                let p: TextDocumentPositionParams = params(req.params)?;
                self.at_position(&p, hover::hover)
            }
            "textDocument/definition" => {
                let p: TextDocumentPositionParams = params(req.params)?;
                self.at_position(&p, navigation::definition)
            }
            "textDocument/references" => {
                let p: ReferenceParams = params(req.params)?;
                let include = p.context.include_declaration;
                self.at_position(&p.text_document_position_params, |doc, off| {
                    Some(navigation::references(doc, off, include))
                })
            }
            "textDocument/completion" => {
                let p: TextDocumentPositionParams = params(req.params)?;
                self.at_position(&p, |doc, off| Some(completion::completion(doc, off)))
            }
            "textDocument/formatting" => {
                let p: DocumentFormattingParams = params(req.params)?;
                let path = path_of_uri(p.text_document.uri.as_ref());
                let result = self
                    .doc(&path)
                    .filter(|doc| doc.path != crate::stdlib::KWANUS_PATH)
                    .and_then(|doc| {
                        let formatted = crate::fmt::format(doc.text);
                        (formatted != doc.text).then(|| {
                            // One edit replacing the whole document.
                            let end = doc.index.position(doc.text, doc.text.len(), doc.enc);
                            vec![TextEdit {
                                range: Range {
                                    start: Position {
                                        line: 0,
                                        character: 0,
                                    },
                                    end,
                                },
                                new_text: formatted,
                            }]
                        })
                    });
                to_value(result.unwrap_or_default())
            }
            "textDocument/documentSymbol" => {
                let p: DocumentSymbolParams = params(req.params)?;
                let path = path_of_uri(p.text_document.uri.as_ref());
                let result = self.doc(&path).map(|doc| symbols::document_symbols(&doc));
                to_value(result)
            }
            "textDocument/codeAction" => {
                let p: CodeActionParams = params(req.params)?;
                let path = path_of_uri(p.text_document.uri.as_ref());
                // Only quick fixes are offered.
                let wanted = p.context.only.as_ref().is_none_or(|kinds| {
                    kinds.iter().any(|k| {
                        let k = String::from(k.clone());
                        k.is_empty() || "quickfix".starts_with(&k)
                    })
                });
                let result = self.doc(&path).filter(|_| wanted).map(|doc| {
                    let span = doc.index.span(doc.text, p.range, doc.enc);
                    actions::code_actions(&doc, span)
                });
                to_value(result)
            }
            "workspace/textDocumentContent" => {
                let p: TextDocumentContentParams = params(req.params)?;
                let path = path_of_uri(p.uri.as_ref());
                let text = if path == KWANUS_PATH {
                    KWANUS_SOURCE.to_string()
                } else {
                    match self.session.file(&path) {
                        Some(f) => f.text(self.session.db()).clone(),
                        None => {
                            return Err(ResponseError {
                                code: ErrorCode::InvalidParams as i32,
                                message: format!("unknown document `{}`", p.uri),
                                data: None,
                            });
                        }
                    }
                };
                to_value(TextDocumentContentResult { text })
            }
            _ => Err(ResponseError {
                code: ErrorCode::MethodNotFound as i32,
                message: format!("unknown request `{}`", req.method),
                data: None,
            }),
        }
    }

    /// The document at `path` as requests see it.
    fn doc<'a>(&'a self, path: &'a str) -> Option<DocRef<'a>> {
        let ws = self.projects.workspace_of(path);
        DocRef::new(&self.session, ws, &self.docs, path, self.enc)
    }

    fn at_position<R: serde::Serialize>(
        &self,
        p: &TextDocumentPositionParams,
        f: impl FnOnce(&DocRef<'_>, usize) -> Option<R>,
    ) -> Result<Value, ResponseError> {
        let path = path_of_uri(p.text_document.uri.as_ref());
        let result = self.doc(&path).and_then(|doc| {
            let offset = doc.offset(p.position);
            f(&doc, offset)
        });
        to_value(result)
    }

    /// Handle one notification.
    pub fn handle_notification(&mut self, n: Notification) {
        match n.method.as_str() {
            "textDocument/didOpen" => {
                if let Ok(p) = serde_json::from_value::<DidOpenTextDocumentParams>(n.params) {
                    let item = p.text_document;
                    self.open(item.uri.as_ref(), item.version, item.text);
                }
            }
            "textDocument/didChange" => {
                if let Ok(p) = serde_json::from_value::<DidChangeTextDocumentParams>(n.params) {
                    let id = p.text_document;
                    self.change(
                        id.text_document_identifier.uri.as_ref(),
                        id.version,
                        p.content_changes,
                    );
                }
            }
            "textDocument/didSave" => {
                if let Ok(p) = serde_json::from_value::<DidSaveTextDocumentParams>(n.params) {
                    let path = path_of_uri(p.text_document.uri.as_ref());
                    if self.docs.contains_key(&path) {
                        self.touched.insert(path);
                        self.dirty = true;
                    }
                }
            }
            "textDocument/didClose" => {
                if let Ok(p) = serde_json::from_value::<DidCloseTextDocumentParams>(n.params) {
                    self.close(p.text_document.uri.as_ref());
                }
            }
            "workspace/didChangeWatchedFiles" => {
                if let Ok(p) = serde_json::from_value::<DidChangeWatchedFilesParams>(n.params) {
                    for change in p.changes {
                        self.disk_changed(change.uri.as_ref(), change.kind);
                    }
                }
            }
            _ => {}
        }
    }

    fn open(&mut self, uri: &str, version: i32, text: String) {
        let path = path_of_uri(uri);
        let read_only = path == KWANUS_PATH;
        let file = if read_only {
            self.session.stdlib
        } else {
            let key = project_key(&path, &self.roots, true);
            if uri.starts_with("file:") {
                self.load_project(&key);
            }
            self.projects.set_file(&mut self.session, &path, text, key)
        };
        let index = LineIndex::new(file.text(self.session.db()));
        self.docs.insert(
            path.clone(),
            Document {
                path: path.clone(),
                file,
                version,
                index,
                read_only,
            },
        );
        self.touched.insert(path);
        self.dirty = true;
    }

    fn change(&mut self, uri: &str, version: i32, changes: Vec<TextDocumentContentChangeEvent>) {
        let path = path_of_uri(uri);
        let enc = self.enc;
        let Some(doc) = self.docs.get_mut(&path) else {
            return;
        };
        if doc.read_only {
            return;
        }
        let mut text = doc.file.text(self.session.db()).clone();
        // Each change is read against the text the one before it left, and
        // the line index follows it edit by edit (not rebuilt from the
        // whole text: a keystroke in a large document stays cheap).
        let mut index = doc.index.clone();
        for change in changes {
            match change {
                TextDocumentContentChangeEvent::TextDocumentContentChangePartial(c) => {
                    let span = index.span(&text, c.range, enc);
                    text.replace_range(span.range(), &c.text);
                    index.edit(span, &c.text);
                }
                TextDocumentContentChangeEvent::TextDocumentContentChangeWholeDocument(c) => {
                    text = c.text;
                    index = LineIndex::new(&text);
                }
            }
        }
        doc.index = index;
        doc.version = version;
        self.session.set_file(&path, text);
        self.touched.insert(path);
        self.dirty = true;
    }

    fn close(&mut self, uri: &str) {
        let path = path_of_uri(uri);
        let Some(doc) = self.docs.remove(&path) else {
            return;
        };
        if !doc.read_only {
            // Back to what is on disk, or out of the workspace (a document
            // alone, in an excluded folder, too).
            let alone = matches!(self.projects.key_of(&path), Some(ProjectKey::Alone(_)));
            match read_disk(&path) {
                Some(text) if !alone => {
                    self.session.set_file(&path, text);
                }
                _ => self.projects.remove_file(&mut self.session, &path),
            }
        }
        self.dirty = true;
    }

    fn disk_changed(&mut self, uri: &str, kind: FileChangeType) {
        let path = path_of_uri(uri);
        if uri.starts_with("file:") && Path::new(&path).ends_with(PROJECT_FILE) {
            self.relayout();
            return;
        }
        if self.docs.contains_key(&path) || !path.ends_with(".pmf") || path == KWANUS_PATH {
            return;
        }
        match (kind, read_disk(&path)) {
            (FileChangeType::Deleted, _) | (_, None) => {
                if self.session.file(&path).is_some() {
                    self.projects.remove_file(&mut self.session, &path);
                }
            }
            (_, Some(text)) => {
                if self.projects.key_of(&path).is_some() {
                    self.session.set_file(&path, text);
                } else {
                    // A new file: into its project, unless excluded.
                    let key = project_key(&path, &self.roots, true);
                    if matches!(key, ProjectKey::Alone(_)) {
                        return;
                    }
                    self.projects.set_file(&mut self.session, &path, text, key);
                }
            }
        }
        self.dirty = true;
    }

    /// Check every open document and publish what changed, grouped by the
    /// file each diagnostic points into.
    fn publish(&mut self, connection: &Connection) {
        self.dirty = false;
        let touched = std::mem::take(&mut self.touched);
        let mut all = Vec::new();
        for doc in self.docs.values().filter(|d| !d.read_only) {
            let ws = self.projects.workspace_of(&doc.path);
            all.extend(self.session.check_in(ws, doc.file));
        }
        self.lints.apply(&mut all);
        let groups = group_by_file(all);
        let mut texts = Texts::new(&self.session, &self.docs);
        let mut paths: Vec<String> = self
            .docs
            .values()
            .filter(|d| !d.read_only)
            .map(|d| d.path.clone())
            .collect();
        paths.extend(groups.keys().cloned());
        paths.extend(self.published.keys().cloned());
        paths.sort();
        paths.dedup();
        let mut outgoing = Vec::new();
        for path in paths {
            if path == KWANUS_PATH {
                continue;
            }
            let diagnostics: Vec<lsp_types::Diagnostic> = groups
                .get(&path)
                .map(|list| {
                    list.iter()
                        .map(|d| to_lsp(d, &mut texts, self.enc))
                        .collect()
                })
                .unwrap_or_default();
            let previous = self.published.get(&path);
            let unchanged = previous.map_or(diagnostics.is_empty(), |p| *p == diagnostics);
            if unchanged && !touched.contains(&path) {
                continue;
            }
            let version = self.docs.get(&path).map(|d| d.version);
            outgoing.push((path, version, diagnostics));
        }
        drop(texts);
        for (path, version, diagnostics) in outgoing {
            let params = PublishDiagnosticsParams {
                uri: uri_of_path(&path).into(),
                version,
                diagnostics: diagnostics.clone(),
            };
            let note = Notification::new("textDocument/publishDiagnostics".into(), params);
            if connection.sender.send(note.into()).is_err() {
                return;
            }
            if diagnostics.is_empty() {
                self.published.remove(&path);
            } else {
                self.published.insert(path, diagnostics);
            }
        }
        // Closed documents keep nothing.
        for path in touched {
            if !self.docs.contains_key(&path) {
                self.published.remove(&path);
            }
        }
    }
}

/// The id of the request that registers the file watchers.
pub const WATCHERS_REQUEST: &str = "pmf/watch-pmf-files";

/// Ask the client to report `*.pmf` and `pmf.toml` files created, changed
/// or deleted on disk (`workspace/didChangeWatchedFiles`): policy files
/// that are not open are read again, so their children see the change; a
/// `pmf.toml` sorts the files into their projects again.
fn register_watchers() -> Request {
    Request::new(
        RequestId::from(WATCHERS_REQUEST.to_string()),
        "client/registerCapability".into(),
        serde_json::json!({
            "registrations": [{
                "id": WATCHERS_REQUEST,
                "method": "workspace/didChangeWatchedFiles",
                "registerOptions": {"watchers": [
                    {"globPattern": "**/*.pmf"},
                    {"globPattern": "**/pmf.toml"},
                ]},
            }],
        }),
    )
}

fn send(connection: &Connection, msg: Message) -> Result<(), String> {
    connection
        .sender
        .send(msg)
        .map_err(|_| "the client connection is closed".to_string())
}

fn error(id: RequestId, code: ErrorCode, message: &str) -> Response {
    Response {
        id,
        response_result: Err(ResponseError {
            code: code as i32,
            message: message.to_string(),
            data: None,
        }),
    }
}

fn params<P: DeserializeOwned>(value: Value) -> Result<P, ResponseError> {
    serde_json::from_value(value).map_err(|e| ResponseError {
        code: ErrorCode::InvalidParams as i32,
        message: format!("invalid parameters: {e}"),
        data: None,
    })
}

fn to_value<R: serde::Serialize>(result: R) -> Result<Value, ResponseError> {
    serde_json::to_value(result).map_err(|e| ResponseError {
        code: ErrorCode::InternalError as i32,
        message: format!("cannot serialize the result: {e}"),
        data: None,
    })
}
