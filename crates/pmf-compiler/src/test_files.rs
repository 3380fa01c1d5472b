//! The repository's policies, for the compiler's tests.

use std::path::{Path, PathBuf};

use crate::db::{Session, SourceFile};

/// Every `.pmf` file under `dirs` (relative to the repository's root),
/// recursively, sorted.
pub(crate) fn policies(dirs: &[&str]) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut stack: Vec<PathBuf> = dirs.iter().map(|d| root.join(d)).collect();
    let mut out = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "pmf") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A fresh session holding the file at `path` (named by its path).
pub(crate) fn session_of(path: &Path) -> (Session, SourceFile) {
    let mut session = Session::default();
    let text = crate::project::read_text(path).unwrap_or_default();
    let file = session.set_file(&path.display().to_string(), text);
    (session, file)
}
