//! Loading a policy for the runtime commands: check it like `pmf check`,
//! print its errors, and compile the one policy the files define (picked
//! by [`crate::runtime::load`], the library's loader).

use std::path::PathBuf;

use super::check::{Format, check_paths, render};
use super::{CliError, Exit, UsageError};
use crate::db;
use crate::diagnostics::render::HumanStyle;
use crate::runtime::engine::CompiledPolicy;
pub use crate::runtime::load::selectors;
use crate::runtime::load::{LoadError, compile_selected};

/// A failure to load: either an error to report (a usage problem, or a
/// policy that checked but cannot run: exit 2) or a policy with errors.
pub enum LoadFailure {
    /// Exit 2 (by its kind: `Exit`'s `From<&CliError>`).
    Usage(CliError),
    /// The policy has errors (already printed): exit 1.
    Invalid,
}

impl From<UsageError> for LoadFailure {
    fn from(e: UsageError) -> Self {
        LoadFailure::Usage(e.into())
    }
}

impl LoadFailure {
    /// The exit code, after printing a usage problem.
    pub fn exit(self) -> Result<Exit, CliError> {
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

/// What a store governed by `policy` records of it: its hash and the keys
/// it pins for each authority.
pub fn governing(policy: &CompiledPolicy) -> crate::store::governance::Governing {
    crate::store::governance::Governing::new(
        &policy.hash,
        policy
            .keys
            .iter()
            .map(|k| (k.authority.as_str(), k.public_key.as_str())),
    )
}

/// The sources of a loaded policy's own files (the standard library aside),
/// by name: what a plan carries.
pub fn own_sources(loaded: &Loaded) -> std::collections::BTreeMap<String, String> {
    let mut sources = loaded.report.session.placed_texts();
    sources.retain(|path| path != crate::stdlib::KWANUS_PATH);
    sources.texts()
}

/// The name under which a kept copy of the standard library is compiled
/// again: a file of its own, which the policy beside it then extends.
const KEPT_STDLIB: &str = "stdlib/kwanus.pmf";

/// What a store keeps of a policy that comes to govern it: its own sources
/// and, when it read the embedded standard library (no file of its own
/// declares `policy kwanus`), that library's text under its path. The rules in force, whichever
/// pmf (and standard library) reads them later.
pub fn kept_sources(loaded: &Loaded) -> std::collections::BTreeMap<String, String> {
    use crate::stdlib::{KWANUS_NAME, KWANUS_PATH, KWANUS_SOURCE};
    let mut out = own_sources(loaded);
    // `extends kwanus` reads the embedded copy unless a file checked with
    // the policy declares it (the session's index of policies says which).
    let session = &loaded.report.session;
    let embedded = db::policy_index(session.db(), session.workspace)
        .get(KWANUS_NAME)
        .and_then(|files| files.first())
        .is_some_and(|f| f.path(session.db()) == KWANUS_PATH);
    if embedded {
        out.insert(KWANUS_PATH.to_string(), KWANUS_SOURCE.to_string());
    }
    out
}

/// The hash the sources a store kept (see [`kept_sources`]) compile to,
/// or why they do not: their copy of the standard library stands in for
/// the embedded one when it differs. Nothing is printed.
pub fn hash_of_kept(
    sources: &std::collections::BTreeMap<String, String>,
) -> Result<String, String> {
    use crate::stdlib::{KWANUS_PATH, KWANUS_SOURCE};
    let texts: Vec<(String, String)> = sources
        .iter()
        .filter_map(|(path, text)| match path.as_str() {
            KWANUS_PATH if text == KWANUS_SOURCE => None,
            KWANUS_PATH => Some((KEPT_STDLIB.to_string(), text.clone())),
            _ => Some((path.clone(), text.clone())),
        })
        .collect();
    if texts.is_empty() {
        return Err("they hold no policy".into());
    }
    let report = super::check::check_texts(texts);
    let (errors, _) = report.counts();
    if errors > 0 {
        return Err(format!("they do not compile ({errors} errors)"));
    }
    compile_selected(&report.session, &[])
        .map(|(policy, _)| policy.hash)
        .map_err(|e| e.to_string())
}

fn compile_report(report: super::check::Report, names: &[String]) -> Result<Loaded, LoadFailure> {
    let (errors, _) = report.counts();
    if errors > 0 {
        let style = HumanStyle {
            color: false,
            width: 100,
        };
        err!("{}", render(&report, Format::Human, style));
        errln!("pmf: the policy has errors; nothing was done");
        return Err(LoadFailure::Invalid);
    }
    let (policy, leaf) = compile_selected(&report.session, names).map_err(|e| match e {
        LoadError::Invalid { .. } => LoadFailure::Invalid,
        e => LoadFailure::Usage(e.into()),
    })?;
    Ok(Loaded {
        policy,
        report,
        leaf,
    })
}
