//! Finding and reading policy files, and the projects they belong to.
//!
//! A `pmf.toml` marks a project root: the files under it (down to the next
//! `pmf.toml`) are one project, whose policies resolve `extends` among
//! themselves and the standard library. Its `[project] exclude` lists
//! folders (relative to it) that a directory walk skips, such as test
//! fixtures that are not policies of the project:
//!
//! ```toml
//! [project]
//! exclude = ["tests/fixtures", "editors"]
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use pmf_syntax::diagnostics::io_reason;

/// A file or directory that cannot be found, read or listed, or a
/// `pmf.toml` that cannot be understood: the message names the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectError(pub String);

impl std::fmt::Display for ProjectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every `.pmf` file named by `paths` (directories searched recursively, in
/// sorted order); a path that does not exist is an error.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ProjectError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| {
            ProjectError(format!("cannot read `{}`: {}", p.display(), io_reason(&e)))
        })?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    out.dedup();
    Ok(out)
}

/// Files found, and the directories that could not be listed (each with
/// its message).
pub type Found = (Vec<PathBuf>, Vec<(PathBuf, String)>);

/// Like [`collect`], but a directory found inside a walked one that cannot
/// be listed is a problem of its own (its path and message), not an error
/// that ends the walk. A path given that does not exist is still a usage
/// error.
pub fn collect_all(paths: &[PathBuf]) -> Result<Found, ProjectError> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| {
            ProjectError(format!("cannot read `{}`: {}", p.display(), io_reason(&e)))
        })?;
        if meta.is_dir() {
            let mut excludes = inherited_excludes(p)?;
            walk_into(
                p,
                &mut out,
                &mut Some(&mut problems),
                &mut excludes,
                &mut HashSet::new(),
            )?;
        } else {
            out.push(p.clone());
        }
    }
    out.dedup();
    Ok((out, problems))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ProjectError> {
    let mut excludes = inherited_excludes(dir)?;
    walk_into(dir, out, &mut None, &mut excludes, &mut HashSet::new())
}

/// The name of the file that marks a project root.
pub const PROJECT_FILE: &str = "pmf.toml";

/// The project root of `path`: the nearest directory at or above it (made
/// absolute) that holds a `pmf.toml`.
pub fn project_root(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let start = if absolute.is_dir() {
        absolute.as_path()
    } else {
        absolute.parent()?
    };
    start
        .ancestors()
        .find(|d| d.join(PROJECT_FILE).is_file())
        .map(Path::to_path_buf)
}

/// The folders the project at `root` excludes from walks (absolute), from
/// its `pmf.toml`'s `[project] exclude`; a file that is not valid TOML or
/// an `exclude` that is not a list of strings is an error.
pub fn project_excludes(root: &Path) -> Result<Vec<PathBuf>, ProjectError> {
    let file = root.join(PROJECT_FILE);
    let bad = |why: &str| ProjectError(format!("`{}`: {why}", file.display()));
    let text = match read_text(&file) {
        Ok(text) => text,
        Err(_) if !file.exists() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e| bad(&format!("not valid TOML: {e}")))?;
    let Some(project) = table.get("project") else {
        return Ok(Vec::new());
    };
    let project = project
        .as_table()
        .ok_or_else(|| bad("`project` must be a table"))?;
    let Some(exclude) = project.get("exclude") else {
        return Ok(Vec::new());
    };
    exclude
        .as_array()
        .ok_or_else(|| bad("`project.exclude` must be a list of folders"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(|s| root.join(s))
                .ok_or_else(|| bad("`project.exclude` must be a list of folders"))
        })
        .collect()
}

/// The trust root the project at `root` pins in its `pmf.toml`: the hash
/// of the policy its stores must have been governed by first
/// (`[trust] root_policy`, 64 hex digits), if it pins one. A file that is
/// not valid TOML, or a pin that is not such a hash, is an error: a pin
/// that cannot be read must not read as none.
///
/// ```toml
/// [trust]
/// root_policy = "718c4b39177c…"
/// ```
pub fn trust_root(root: &Path) -> Result<Option<String>, ProjectError> {
    let file = root.join(PROJECT_FILE);
    let bad = |why: &str| ProjectError(format!("`{}`: {why}", file.display()));
    let text = match read_text(&file) {
        Ok(text) => text,
        Err(_) if !file.exists() => return Ok(None),
        Err(e) => return Err(e),
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e| bad(&format!("not valid TOML: {e}")))?;
    // A table pmf does not know may be the pin misspelt (`[turst]`).
    use pmf_syntax::diagnostics::config::{SETTINGS, tables_listed};
    if let Some(other) = table.keys().find(|k| !SETTINGS.iter().any(|(t, _)| t == k)) {
        return Err(bad(&format!(
            "`{other}` is not a table pmf knows ({}): a trust root pinned under a misspelt table would pin none (`pmf check` names it, PMF907)",
            tables_listed()
        )));
    }
    let Some(trust) = table.get("trust") else {
        return Ok(None);
    };
    let trust = trust
        .as_table()
        .ok_or_else(|| bad("`trust` must be a table"))?;
    if let Some(other) = trust.keys().find(|k| k.as_str() != "root_policy") {
        return Err(bad(&format!(
            "`trust.{other}` is not a setting pmf knows (only `trust.root_policy`)"
        )));
    }
    let Some(pin) = trust.get("root_policy") else {
        return Ok(None);
    };
    let hash = pin
        .as_str()
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            bad("`trust.root_policy` must be a policy's hash: 64 hexadecimal digits, as the document `pmf doc` writes shows it (`Policy hash`)")
        })?;
    Ok(Some(hash.to_ascii_lowercase()))
}

/// The folders that projects above `dir` exclude (absolute): where a walk
/// of `dir` starts from.
fn inherited_excludes(dir: &Path) -> Result<Vec<PathBuf>, ProjectError> {
    let mut excludes = Vec::new();
    if let Ok(absolute) = std::path::absolute(dir) {
        for d in absolute.ancestors().skip(1) {
            if d.join(PROJECT_FILE).is_file() {
                excludes.extend(project_excludes(d)?);
            }
        }
    }
    Ok(excludes)
}

/// True when a project at or above `path` excludes a folder holding it: a
/// walk would skip it. An unreadable or invalid `pmf.toml` excludes
/// nothing here (a walk reports it).
pub fn excluded(path: &Path) -> bool {
    let Ok(absolute) = std::path::absolute(path) else {
        return false;
    };
    inherited_excludes(&absolute)
        .is_ok_and(|excludes| excludes.iter().any(|e| absolute.starts_with(e)))
}

/// Walk `dir`; a directory that cannot be listed goes to `problems` when
/// given, else ends the walk. `excludes` holds the folders the projects
/// met so far exclude (absolute; a project's `pmf.toml` is read once, when
/// the walk enters its root); `visited`, the folders walked (their real
/// paths).
fn walk_into(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    problems: &mut Option<&mut Vec<(PathBuf, String)>>,
    excludes: &mut Vec<PathBuf>,
    visited: &mut HashSet<PathBuf>,
) -> Result<(), ProjectError> {
    // A folder reached twice (a link back up the tree, or two links to one
    // folder) is walked once: a loop of links would never end, and its
    // files would be found twice.
    if let Ok(real) = std::fs::canonicalize(dir)
        && !visited.insert(real)
    {
        return Ok(());
    }
    if dir.join(PROJECT_FILE).is_file()
        && let Ok(root) = std::path::absolute(dir)
    {
        excludes.extend(project_excludes(&root)?);
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            let message = format!(
                "cannot read directory `{}`: {}",
                dir.display(),
                io_reason(&e)
            );
            return match problems {
                Some(problems) => {
                    problems.push((dir.to_path_buf(), message));
                    Ok(())
                }
                None => Err(ProjectError(message)),
            };
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') || n == "target" || n == "node_modules");
        if hidden {
            continue;
        }
        if p.is_dir() {
            if std::path::absolute(&p).is_ok_and(|a| excludes.contains(&a)) {
                continue;
            }
            walk_into(&p, out, problems, excludes, visited)?;
        } else if p.extension().is_some_and(|e| e == "pmf") {
            out.push(p);
        }
    }
    Ok(())
}

/// Read a file as UTF-8 text; unreadable or non-UTF-8 files are usage
/// errors, their message naming the path.
pub fn read_text(path: &Path) -> Result<String, ProjectError> {
    let bytes =
        pmf_syntax::read::whole(path, pmf_syntax::read::POLICY_FILE_LIMIT).map_err(|e| {
            ProjectError(format!(
                "cannot read `{}`: {}",
                path.display(),
                io_reason(&e)
            ))
        })?;
    String::from_utf8(bytes).map_err(|e| {
        ProjectError(format!(
            "`{}` is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}
