//! Loading a policy to run: the library entry point the CLI, the tests and
//! the benchmarks share. Nothing here prints; a policy with errors comes
//! back as its diagnostics, for the caller to render.
//!
//! The policy run is picked among the files given by one rule: the policy
//! no other file extends, test files (`*.test.pmf`) aside, unless names
//! pick one ([`select_policy`]).

use std::collections::HashSet;
use std::path::PathBuf;

use pmf_compiler::db::{self, Session, SourceFile};
use pmf_compiler::project;
use pmf_syntax::PlacedTexts;
use pmf_syntax::diagnostics::{Diagnostic, Severity, closest};

use crate::engine::{CompiledPolicy, NotRunnable};

/// Why no policy could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be found or read, or the files given do not name
    /// exactly one policy to run: a usage problem (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The policy checked but cannot be compiled to run (exit code 2).
    #[error(transparent)]
    NotRunnable(#[from] NotRunnable),
    /// The policy has errors (exit code 1): the diagnostics, sorted, and
    /// the text of every file they point into, to render them.
    #[error("the policy has {} error(s)", errors(diagnostics))]
    Invalid {
        /// Every diagnostic of the files, warnings included.
        diagnostics: Vec<Diagnostic>,
        /// The texts of the files, with their place maps.
        sources: PlacedTexts,
    },
}

/// How many of `diagnostics` are errors.
fn errors(diagnostics: &[Diagnostic]) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count()
}

/// Check the policy files named by `paths` (files and directories; a value
/// that is no file and reads as a policy name, such as `fleet`, picks that
/// policy among those the files define) and compile the one policy to run.
pub fn load_policy(paths: &[PathBuf]) -> Result<CompiledPolicy, LoadError> {
    let (paths, names) = selectors(paths);
    if paths.is_empty() {
        return Err(LoadError::Usage(
            "name the policy with `--policy FILE` (and its parents' files)".into(),
        ));
    }
    let found = project::collect(&paths).map_err(|e| LoadError::Usage(e.0))?;
    let texts = found
        .iter()
        .map(|path| Ok((path.display().to_string(), project::read_text(path)?)))
        .collect::<Result<Vec<_>, project::ProjectError>>()
        .map_err(|e| LoadError::Usage(e.0))?;
    let (session, diagnostics) = Session::checked(texts);
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return Err(LoadError::Invalid {
            diagnostics,
            sources: session.placed_texts(),
        });
    }
    compile_selected(&session, &names).map(|(policy, _)| policy)
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

/// Compile the policy to run among those of `session`, which checked
/// without errors: the one [`select_policy`] picks. Returns it with the
/// file that declares it.
pub fn compile_selected(
    session: &Session,
    names: &[String],
) -> Result<(CompiledPolicy, SourceFile), LoadError> {
    let leaf = select_policy(session, names)?;
    let resolved = db::resolve(session.db(), session.workspace, leaf);
    let (graph, _) = db::phase_graph(session.db(), session.workspace, leaf);
    let graph = graph
        .as_ref()
        .ok_or_else(|| LoadError::Usage("the policy has no flow".into()))?;
    let policy = CompiledPolicy::compile(&resolved.policy, graph, &session.placed_texts())?;
    Ok((policy, leaf))
}

/// Whether `path` is a file of tests (`*.test.pmf`): never the policy run,
/// unless named.
fn is_test_file(path: &str) -> bool {
    path.ends_with(".test.pmf")
}

/// The file of the policy to run among the files of `session` (the
/// standard library aside): the policy named by `names` if given, else the
/// one no other policy extends (tests aside, which extend the policy they
/// test). None, or several, is a usage problem that says what to pass.
pub fn select_policy(session: &Session, names: &[String]) -> Result<SourceFile, LoadError> {
    let files: Vec<SourceFile> = session
        .workspace
        .files(session.db())
        .iter()
        .copied()
        .filter(|f| f.path(session.db()) != pmf_compiler::stdlib::KWANUS_PATH)
        .collect();
    let name_of = |f: &SourceFile| {
        db::stable_header(session.db(), *f)
            .as_ref()
            .map(|h| h.name.name.to_string())
    };
    let extended_by = |among: &[SourceFile]| -> HashSet<String> {
        among
            .iter()
            .filter_map(|f| db::stable_header(session.db(), *f).as_ref())
            .flat_map(|h| h.parents.iter().map(|p| p.name.to_string()))
            .collect()
    };
    let leaves: Vec<SourceFile> = if names.is_empty() {
        let extended = extended_by(&files);
        let leaves: Vec<SourceFile> = files
            .iter()
            .copied()
            .filter(|f| name_of(f).is_some_and(|n| !extended.contains(n.as_str())))
            .collect();
        // Tests extend the policy they test: the policy run is the one no
        // other policy (tests aside) extends, when there is one.
        let policies: Vec<SourceFile> = files
            .iter()
            .copied()
            .filter(|f| !is_test_file(f.path(session.db())))
            .collect();
        let extended_by_policies = extended_by(&policies);
        let runnable: Vec<SourceFile> = policies
            .into_iter()
            .filter(|f| name_of(f).is_some_and(|n| !extended_by_policies.contains(&n)))
            .collect();
        if runnable.is_empty() {
            leaves
        } else {
            runnable
        }
    } else {
        let named: Vec<SourceFile> = files
            .iter()
            .copied()
            .filter(|f| name_of(f).is_some_and(|n| names.contains(&n)))
            .collect();
        if named.is_empty() {
            let known: Vec<String> = files.iter().filter_map(name_of).collect();
            let first = names.first().map(String::as_str).unwrap_or_default();
            let hint = closest(first, known.iter().map(String::as_str))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            return Err(LoadError::Usage(format!(
                "no policy named `{}` in the files given (they define {}){hint}",
                names.join("`, `"),
                known
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        named
    };
    match leaves.as_slice() {
        [one] => Ok(*one),
        [] => Err(LoadError::Usage(
            "no policy to run: every policy given is extended by another".into(),
        )),
        many => {
            let files: Vec<String> = many
                .iter()
                .map(|f| format!("`{}`", f.path(session.db())))
                .collect();
            let first = many.first().and_then(name_of).unwrap_or_default();
            Err(LoadError::Usage(format!(
                "several policies given ({}); pass one policy and the files of its parents, \
                 or name one among them (`--policy {first}`)",
                files.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fleet"))
    }

    #[test]
    fn the_fleet_loads_from_its_directory_and_by_name() {
        let by_dir = load_policy(&[fleet()]).unwrap();
        let by_name = load_policy(&[fleet(), PathBuf::from("fleet")]).unwrap();
        assert_eq!(by_dir.hash, by_name.hash);
    }

    #[test]
    fn an_unknown_name_is_a_usage_problem_with_a_suggestion() {
        let err = load_policy(&[fleet(), PathBuf::from("flet")]).unwrap_err();
        let LoadError::Usage(message) = err else {
            panic!("expected a usage problem, got {err}")
        };
        assert!(message.contains("did you mean `fleet`?"), "{message}");
    }

    #[test]
    fn a_policy_with_errors_comes_back_as_its_diagnostics() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.pmf");
        std::fs::write(&file, "policy bad extends kwanus\nhealth { score >= }\n").unwrap();
        match load_policy(&[file]).unwrap_err() {
            LoadError::Invalid {
                diagnostics,
                sources,
            } => {
                assert!(diagnostics.iter().any(|d| d.severity == Severity::Error));
                assert!(sources.texts().keys().any(|k| k.ends_with("bad.pmf")));
            }
            other => panic!("expected diagnostics, got {other}"),
        }
    }
}
