//! Documents and files: URIs ↔ session paths, open documents with their
//! versions and line indexes, and the `*.pmf` files of the workspace folders
//! loaded from disk so that `extends` of sibling policies resolves (each
//! file in its project: see [`super::projects`]).
//!
//! A `file://` URI maps to its decoded filesystem path (the path `pmf check`
//! would print); the embedded stdlib `<stdlib>/kwanus.pmf` is served as the
//! read-only document [`STDLIB_URI`]; any other URI (such as `untitled:`)
//! is its own path.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lsp_types::{Location, Position, Range};

use super::convert::{Encoding, LineIndex};
use crate::db::{Session, SourceFile, Workspace, parse_file};
use crate::diagnostics::Diagnostic;
use crate::stdlib::KWANUS_PATH;
use crate::syntax::{Place, Span};

/// The URI of the embedded standard library.
pub const STDLIB_URI: &str = "pmf-stdlib:///kwanus.pmf";

/// The URI scheme of the embedded standard library.
pub const STDLIB_SCHEME: &str = "pmf-stdlib";

/// At most this many files are loaded from the workspace folders.
pub const MAX_WORKSPACE_FILES: usize = 2_000;

/// Files larger than this are not loaded from the workspace folders.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// An open document.
#[derive(Debug)]
pub struct Document {
    /// The path of the document in the session.
    pub path: String,
    /// The session's input for it.
    pub file: SourceFile,
    /// The version the client last sent.
    pub version: i32,
    /// Line starts of the current text.
    pub index: LineIndex,
    /// True for the stdlib: it never changes.
    pub read_only: bool,
}

/// Open documents by session path.
pub type Documents = HashMap<String, Document>;

/// Texts and line indexes of any file of the session: open documents use
/// their index; other files get one on first use.
pub struct Texts<'a> {
    session: &'a Session,
    docs: &'a Documents,
    cache: HashMap<String, Option<(&'a str, LineIndex)>>,
}

impl<'a> Texts<'a> {
    /// Texts of `session`'s files, with the indexes of `docs`.
    pub fn new(session: &'a Session, docs: &'a Documents) -> Self {
        Texts {
            session,
            docs,
            cache: HashMap::new(),
        }
    }

    /// The text and line index of the file at `path`, if the session has it.
    pub fn get(&mut self, path: &str) -> Option<(&'a str, &LineIndex)> {
        if let Some(doc) = self.docs.get(path) {
            return Some((doc.file.text(self.session.db()).as_str(), &doc.index));
        }
        let session = self.session;
        self.cache
            .entry(path.to_string())
            .or_insert_with(|| {
                session.file(path).map(|f| {
                    let text = f.text(session.db()).as_str();
                    (text, LineIndex::new(text))
                })
            })
            .as_ref()
            .map(|(t, i)| (*t, i))
    }

    /// The LSP range of `place` in the file at `path`, if the session has
    /// the file.
    pub fn range(&mut self, path: &str, place: Place, enc: Encoding) -> Option<Range> {
        let session = self.session;
        let bytes = parse_file(session.db(), session.file(path)?).place(place);
        let (text, index) = self.get(path)?;
        Some(index.range(text, bytes, enc))
    }

    /// The LSP location of `place` in the file at `path`.
    pub fn location(&mut self, path: &str, place: Place, enc: Encoding) -> Option<Location> {
        Some(Location {
            uri: uri_of_path(path).into(),
            range: self.range(path, place, enc)?,
        })
    }
}

/// One document as a request sees it.
pub struct DocRef<'a> {
    /// The session.
    pub session: &'a Session,
    /// The document's project: the files its names resolve among.
    pub ws: Workspace,
    /// Every open document.
    pub docs: &'a Documents,
    /// The document's session path.
    pub path: &'a str,
    /// Its input.
    pub file: SourceFile,
    /// Its text.
    pub text: &'a str,
    /// Its line index.
    pub index: Cow<'a, LineIndex>,
    /// The negotiated position encoding.
    pub enc: Encoding,
}

impl<'a> DocRef<'a> {
    /// The document at `path` (open or not) in the project `ws`, if the
    /// session has it.
    pub fn new(
        session: &'a Session,
        ws: Workspace,
        docs: &'a Documents,
        path: &'a str,
        enc: Encoding,
    ) -> Option<Self> {
        let (file, index) = match docs.get(path) {
            Some(doc) => (doc.file, Cow::Borrowed(&doc.index)),
            None => {
                let file = session.file(path)?;
                (file, Cow::Owned(LineIndex::new(file.text(session.db()))))
            }
        };
        Some(DocRef {
            session,
            ws,
            docs,
            path,
            file,
            text: file.text(session.db()).as_str(),
            index,
            enc,
        })
    }

    /// Every diagnostic of the document, checked with its project.
    pub fn check(&self) -> Vec<Diagnostic> {
        self.session.check_in(self.ws, self.file)
    }

    /// The byte offset of `pos`.
    pub fn offset(&self, pos: Position) -> usize {
        self.index.offset(self.text, pos, self.enc)
    }

    /// The byte range of `place` in this document.
    pub fn bytes(&self, place: Place) -> Span {
        parse_file(self.session.db(), self.file).place(place)
    }

    /// The LSP range of `span` in this document.
    pub fn range(&self, span: Span) -> Range {
        self.index.range(self.text, span, self.enc)
    }

    /// Texts of every file, for places in other files.
    pub fn texts(&self) -> Texts<'a> {
        Texts::new(self.session, self.docs)
    }
}

/// The session path of a document URI.
pub fn path_of_uri(uri: &str) -> String {
    if uri == STDLIB_URI || uri.starts_with("pmf-stdlib:") {
        return KWANUS_PATH.to_string();
    }
    if let Some(rest) = uri.strip_prefix("file://") {
        // `file:///path` (empty authority) or `file://host/path`.
        let path = match rest.find('/') {
            Some(0) => rest,
            Some(i) => &rest[i..],
            None => return uri.to_string(),
        };
        let decoded = percent_decode(path);
        // Windows: `/C:/dir/file.pmf` → `C:/dir/file.pmf`.
        if let [b'/', drive, b':', ..] = decoded.as_bytes()
            && drive.is_ascii_alphabetic()
        {
            return decoded[1..].to_string();
        }
        return decoded;
    }
    uri.to_string()
}

/// The URI of a session path.
pub fn uri_of_path(path: &str) -> String {
    if path == KWANUS_PATH {
        return STDLIB_URI.to_string();
    }
    if path.starts_with('/') {
        return format!("file://{}", percent_encode(path));
    }
    if let [drive, b':', _, ..] = path.as_bytes()
        && drive.is_ascii_alphabetic()
    {
        return format!("file:///{}", percent_encode(&path.replace('\\', "/")));
    }
    if has_scheme(path) {
        return path.to_string();
    }
    // A relative path: make it absolute against the working directory.
    match std::env::current_dir() {
        Ok(dir) => format!(
            "file://{}",
            percent_encode(&dir.join(path).to_string_lossy())
        ),
        Err(_) => path.to_string(),
    }
}

/// True when `s` starts with a URI scheme (`name:`, two letters or more so
/// that a Windows drive is not one).
fn has_scheme(s: &str) -> bool {
    match s.find(':') {
        Some(i) if i >= 2 => {
            let scheme = &s[..i];
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        _ => false,
    }
}

/// Decode `%XX` escapes (invalid escapes are kept as written; invalid UTF-8
/// is replaced).
pub fn percent_decode(s: &str) -> String {
    let mut rest = s.as_bytes();
    let mut out = Vec::with_capacity(rest.len());
    while let [b, tail @ ..] = rest {
        if let [b'%', h, l, after @ ..] = rest
            && let (Some(h), Some(l)) = (hex(*h), hex(*l))
        {
            out.push(h * 16 + l);
            rest = after;
            continue;
        }
        out.push(*b);
        rest = tail;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encode a path for a `file://` URI (`/` is kept).
pub fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The directories of the workspace folders given as URIs.
pub fn folder_paths(folder_uris: &[String]) -> Vec<PathBuf> {
    folder_uris
        .iter()
        .filter(|u| u.starts_with("file:"))
        .map(|u| PathBuf::from(path_of_uri(u)))
        .filter(|p| p.is_dir())
        .collect()
}

/// The `*.pmf` files under `roots`, searched recursively as `pmf check`
/// does (sorted, deduplicated, at most [`MAX_WORKSPACE_FILES`], skipping
/// the folders projects exclude), with their text. Unreadable, oversized
/// and non-UTF-8 files are skipped; so is a root under a `pmf.toml` that
/// is not valid (`pmf check` refuses it too).
pub fn load_folders(roots: &[PathBuf]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for root in roots {
        if let Ok(files) = crate::cli::files::collect(std::slice::from_ref(root)) {
            found.extend(files);
        }
    }
    read_all(found)
}

/// The `*.pmf` files directly in `dir` (not in its subdirectories), with
/// their text: the siblings of a document opened outside any workspace
/// folder.
pub fn load_directory(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "pmf"))
        .collect();
    found.sort();
    read_all(found)
}

fn read_all(paths: Vec<PathBuf>) -> Vec<(String, String)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for p in paths {
        if out.len() >= MAX_WORKSPACE_FILES {
            break;
        }
        let small = std::fs::metadata(&p).is_ok_and(|m| m.len() <= MAX_FILE_BYTES);
        if !small {
            continue;
        }
        let path = p.display().to_string();
        if seen.contains(&path) {
            continue;
        }
        if let Ok(text) = crate::cli::files::read_text(&p) {
            seen.insert(path.clone());
            out.push((path, text));
        }
    }
    out
}

/// The text of `path` on disk, when it is a readable UTF-8 file.
pub fn read_disk(path: &str) -> Option<String> {
    if path == KWANUS_PATH || !std::path::Path::new(path).is_file() {
        return None;
    }
    crate::cli::files::read_text(std::path::Path::new(path)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_round_trip() {
        let path = "/tmp/a dir/ñandú.pmf";
        let uri = uri_of_path(path);
        assert_eq!(uri, "file:///tmp/a%20dir/%C3%B1and%C3%BA.pmf");
        assert_eq!(path_of_uri(&uri), path);
        assert_eq!(path_of_uri("file:///c%3A/x/y.pmf"), "c:/x/y.pmf");
        assert_eq!(path_of_uri("untitled:Untitled-1"), "untitled:Untitled-1");
        assert_eq!(uri_of_path("untitled:Untitled-1"), "untitled:Untitled-1");
        assert_eq!(path_of_uri(STDLIB_URI), KWANUS_PATH);
        assert_eq!(uri_of_path(KWANUS_PATH), STDLIB_URI);
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
