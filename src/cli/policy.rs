//! Loading a policy for the runtime commands: check it like `pmf check`,
//! print its errors, and compile the one policy the files define.

use std::path::PathBuf;

use super::check::{Format, check_paths, render};
use super::{Exit, UsageError};
use crate::db;
use crate::diagnostics::render::HumanStyle;
use crate::runtime::engine::CompiledPolicy;

/// A failure to load: either a usage problem or a policy with errors.
pub enum LoadFailure {
    /// Exit 2.
    Usage(UsageError),
    /// The policy has errors (already printed): exit 1.
    Invalid,
}

impl From<UsageError> for LoadFailure {
    fn from(e: UsageError) -> Self {
        LoadFailure::Usage(e)
    }
}

impl LoadFailure {
    /// The exit code, after printing a usage problem.
    pub fn exit(self) -> Result<Exit, UsageError> {
        match self {
            LoadFailure::Usage(e) => Err(e),
            LoadFailure::Invalid => Ok(Exit::Failure),
        }
    }
}

/// Check `paths` and compile the policy they define: the one policy no
/// other file extends. Errors are printed to stderr.
pub fn load(paths: &[PathBuf]) -> Result<CompiledPolicy, LoadFailure> {
    load_checked(paths).map(|l| l.policy)
}

/// A loaded policy with the session that checked it and its file.
pub struct Loaded {
    /// The compiled policy.
    pub policy: CompiledPolicy,
    /// The check that loaded it (session and sources).
    pub report: super::check::Report,
    /// The file that declares the policy.
    pub leaf: db::SourceFile,
}

/// Like [`load`], keeping the session for commands that read more of the
/// checked policy (such as `pmf doc`).
pub fn load_checked(paths: &[PathBuf]) -> Result<Loaded, LoadFailure> {
    let (paths, names) = selectors(paths);
    if paths.is_empty() {
        return Err(UsageError(
            "name the policy with `--policy FILE` (and its parents' files)".into(),
        )
        .into());
    }
    compile_report(check_paths(&paths)?, &names)
}

/// `--policy` values as files and directories, and names: a value that is
/// no file and reads as a policy name (`fleet`) picks that policy among
/// those the files define.
pub fn selectors(values: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut paths = Vec::new();
    let mut names = Vec::new();
    for v in values {
        let name = v.to_str().filter(|s| {
            !v.exists()
                && s.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        match name {
            Some(n) => names.push(n.to_string()),
            None => paths.push(v.clone()),
        }
    }
    (paths, names)
}

/// Check and compile the policy sources a plan carries (name → text).
pub fn load_sources(
    sources: &std::collections::BTreeMap<String, String>,
) -> Result<Loaded, LoadFailure> {
    if sources.is_empty() {
        return Err(UsageError("the plan carries no policy sources".into()).into());
    }
    compile_report(
        super::check::check_texts(
            sources
                .iter()
                .map(|(n, t)| (n.clone(), t.clone()))
                .collect(),
        ),
        &[],
    )
}

/// The sources of a loaded policy's own files (the standard library aside),
/// by name: what a plan carries.
pub fn own_sources(loaded: &Loaded) -> std::collections::BTreeMap<String, String> {
    let mut sources = loaded.report.session.sources();
    sources.remove(crate::stdlib::KWANUS_PATH);
    sources.into_iter().collect()
}

/// Whether `path` is a file of tests (`*.test.pmf`): never the policy run,
/// unless named.
fn is_test_file(path: &str) -> bool {
    path.ends_with(".test.pmf")
}

fn compile_report(report: super::check::Report, names: &[String]) -> Result<Loaded, LoadFailure> {
    let (errors, _) = report.counts();
    if errors > 0 {
        let style = HumanStyle {
            color: false,
            width: 100,
        };
        eprint!("{}", render(&report, Format::Human, style));
        eprintln!("pmf: the policy has errors; nothing was done");
        return Err(LoadFailure::Invalid);
    }
    let session = &report.session;
    let files: Vec<db::SourceFile> = session
        .workspace
        .files(&session.db)
        .iter()
        .copied()
        .filter(|f| f.path(&session.db) != crate::stdlib::KWANUS_PATH)
        .collect();
    let extended: std::collections::HashSet<String> = files
        .iter()
        .filter_map(|f| db::file_header(&session.db, *f).as_ref())
        .flat_map(|h| h.parents.iter().map(|p| p.name.to_string()))
        .collect();
    let name_of = |f: &db::SourceFile| {
        db::file_header(&session.db, *f)
            .as_ref()
            .map(|h| h.name.name.to_string())
    };
    let leaves: Vec<db::SourceFile> = if names.is_empty() {
        let leaves: Vec<db::SourceFile> = files
            .iter()
            .copied()
            .filter(|f| name_of(f).is_some_and(|n| !extended.contains(n.as_str())))
            .collect();
        // Tests extend the policy they test: the policy run is the one no
        // other policy (tests aside) extends, when there is one.
        let policies: Vec<db::SourceFile> = files
            .iter()
            .copied()
            .filter(|f| !is_test_file(f.path(&session.db)))
            .collect();
        let extended_by_policies: std::collections::HashSet<String> = policies
            .iter()
            .filter_map(|f| db::file_header(&session.db, *f).as_ref())
            .flat_map(|h| h.parents.iter().map(|p| p.name.to_string()))
            .collect();
        let runnable: Vec<db::SourceFile> = policies
            .into_iter()
            .filter(|f| name_of(f).is_some_and(|n| !extended_by_policies.contains(&n)))
            .collect();
        if runnable.is_empty() {
            leaves
        } else {
            runnable
        }
    } else {
        let named: Vec<db::SourceFile> = files
            .iter()
            .copied()
            .filter(|f| name_of(f).is_some_and(|n| names.contains(&n)))
            .collect();
        if named.is_empty() {
            let known: Vec<String> = files.iter().filter_map(name_of).collect();
            let hint = crate::diagnostics::closest(&names[0], known.iter().map(String::as_str))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            return Err(UsageError(format!(
                "no policy named `{}` in the files given (they define {}){hint}",
                names.join("`, `"),
                known
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        named
    };
    let leaf = match leaves.as_slice() {
        [one] => *one,
        [] => {
            return Err(UsageError(
                "no policy to run: every policy given is extended by another".into(),
            )
            .into());
        }
        many => {
            let files: Vec<String> = many
                .iter()
                .map(|f| format!("`{}`", f.path(&session.db)))
                .collect();
            let first = many.first().and_then(name_of).unwrap_or_default();
            return Err(UsageError(format!(
                "several policies given ({}); pass one policy and the files of its parents, \
                 or name one among them (`--policy {first}`)",
                files.join(", ")
            ))
            .into());
        }
    };
    let resolved = db::resolve(&session.db, session.workspace, leaf);
    let (graph, _) = db::phase_graph(&session.db, session.workspace, leaf);
    let graph = graph
        .as_ref()
        .ok_or_else(|| UsageError("the policy has no flow".into()))?;
    let policy = CompiledPolicy::compile(&resolved.policy, graph, &session.sources())
        .map_err(|e| LoadFailure::Usage(UsageError(e.0)))?;
    Ok(Loaded {
        policy,
        report,
        leaf,
    })
}
