//! `pmf check [PATHS...]`: check policies and report diagnostics.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{CliError, Exit, UsageError, files};
use crate::db::Session;
use crate::diagnostics::render::{self, HumanStyle};
use crate::diagnostics::{Code, Diagnostic, sort_and_dedup};

/// Output formats of `pmf check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// miette's graphical reports.
    Human,
    /// One JSON document (see docs/cli.md).
    Json,
    /// GitHub Actions workflow commands.
    Github,
    /// SARIF 2.1.0, for code-scanning upload.
    Sarif,
    /// JUnit XML, one test case per file.
    Junit,
}

/// Arguments of `pmf check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Files or directories (searched recursively for `*.pmf`); default `.`.
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Exit 1 when there are warnings, too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Lint levels (default: the nearest `pmf.toml` from the current directory up).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The outcome of checking a set of files.
pub struct Report {
    /// How many files were checked.
    pub files: usize,
    /// Their paths, in order.
    pub paths: Vec<String>,
    /// The diagnostics, sorted.
    pub diagnostics: Vec<Diagnostic>,
    /// The session that produced them (for sources).
    pub session: Session,
    /// Sources that are not policies (such as `pmf.toml`), for rendering.
    pub extra_sources: crate::syntax::PlacedTexts,
    /// Files and directories that could not be read, each also a
    /// diagnostic (`PMF005`) among the others: the run exits 2.
    pub unreadable: Vec<String>,
}

/// Load `paths` into a fresh session and check every file; a file that
/// cannot be read is a usage error.
pub fn check_paths(paths: &[PathBuf]) -> Result<Report, UsageError> {
    let report = check_found(paths, false)?;
    match report.unreadable.first() {
        Some(problem) => Err(UsageError(problem.clone())),
        None => Ok(report),
    }
}

/// Load `paths` into a fresh session and check every file that can be
/// read; each one that cannot (not UTF-8, permission denied, a directory
/// that cannot be listed) is a `PMF005` diagnostic among the others and is
/// listed in [`Report::unreadable`]. A path that does not exist is a usage
/// error. Files of different projects (see [`files`]) are checked apart:
/// their names never collide.
pub fn check_all_paths(paths: &[PathBuf]) -> Result<Report, UsageError> {
    check_found(paths, true)
}

/// [`check_all_paths`]; `by_project`: each project's files in a session of
/// their own, else all files in one (a policy and its parents given by
/// hand).
fn check_found(paths: &[PathBuf], by_project: bool) -> Result<Report, UsageError> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths.to_vec()
    };
    let (found, problems) = files::collect_all(&paths)?;
    if found.is_empty() && problems.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| format!("`{}`", p.display())).collect();
        return Err(UsageError(format!(
            "no `.pmf` files found in {}",
            shown.join(", ")
        )));
    }
    let mut texts = Vec::with_capacity(found.len());
    let mut unreadable: Vec<(String, String)> = problems
        .into_iter()
        .map(|(dir, message)| (dir.display().to_string(), message))
        .collect();
    for p in &found {
        match files::read_text(p) {
            Ok(text) => texts.push((p.display().to_string(), text)),
            Err(files::ProjectError(message)) => {
                unreadable.push((p.display().to_string(), message))
            }
        }
    }
    let mut report = if by_project {
        check_projects(texts)
    } else {
        check_texts(texts)
    };
    for (path, message) in unreadable {
        report.diagnostics.push(Diagnostic::new(
            Code::UnreadableFile,
            &path,
            crate::syntax::Place::new(0, 0),
            message.clone(),
        ));
        report.unreadable.push(message);
    }
    sort_and_dedup(&mut report.diagnostics);
    report.files = found.len();
    report.paths = found.iter().map(|p| p.display().to_string()).collect();
    Ok(report)
}

/// Check files (name → text) project by project, each in a session of its
/// own; the report keeps the first session, and the sources of the others
/// for rendering.
fn check_projects(texts: Vec<(String, String)>) -> Report {
    let mut groups: std::collections::BTreeMap<Option<PathBuf>, Vec<(String, String)>> =
        std::collections::BTreeMap::new();
    for (name, text) in texts {
        let root = files::project_root(std::path::Path::new(&name));
        groups.entry(root).or_default().push((name, text));
    }
    let mut reports = groups.into_values().map(check_texts);
    let Some(mut report) = reports.next() else {
        return check_texts(Vec::new());
    };
    for other in reports {
        report.extra_sources.extend(other.session.placed_texts());
        report.diagnostics.extend(other.diagnostics);
        report.paths.extend(other.paths);
        report.files += other.files;
    }
    sort_and_dedup(&mut report.diagnostics);
    report
}

/// Check policy sources held in memory (name → text), as `pmf check`
/// checks files: what `apply` does with the sources a plan carries.
pub fn check_texts(texts: Vec<(String, String)>) -> Report {
    let paths: Vec<String> = texts.iter().map(|(name, _)| name.clone()).collect();
    let (session, diagnostics) = Session::checked(texts);
    Report {
        files: paths.len(),
        paths,
        diagnostics,
        session,
        extra_sources: Default::default(),
        unreadable: Vec::new(),
    }
}

/// Apply the lint levels of `config` (or of the nearest `pmf.toml`).
pub fn apply_config(
    report: &mut Report,
    config: Option<&std::path::Path>,
) -> Result<(), UsageError> {
    let path = match config {
        Some(p) => Some(p.to_path_buf()),
        None => std::env::current_dir()
            .ok()
            .and_then(|d| crate::diagnostics::config::find(&d)),
    };
    let Some(path) = path else { return Ok(()) };
    let text = files::read_text(&path)?;
    let name = path.display().to_string();
    let (config, mut problems) =
        crate::diagnostics::config::parse(&name, &text).map_err(UsageError)?;
    config.apply(&mut report.diagnostics);
    report.diagnostics.append(&mut problems);
    sort_and_dedup(&mut report.diagnostics);
    report
        .extra_sources
        .insert(name, text, crate::syntax::PlaceMap::identity());
    Ok(())
}

/// Run `pmf check`. A file that cannot be read is reported among the
/// diagnostics of the others, in every format, and the exit code is 2.
pub fn run(args: &CheckArgs, color: bool) -> Result<Exit, CliError> {
    let mut report = check_all_paths(&args.paths)?;
    apply_config(&mut report, args.config.as_deref())?;
    let style = HumanStyle {
        color,
        width: terminal_width(),
    };
    out!("{}", render(&report, args.format, style));
    // On stderr too, as every I/O problem is: the output may go to a file.
    for problem in &report.unreadable {
        errln!("pmf: {problem}");
    }
    let (errors, warnings) = report.counts();
    let unreadable = !report.unreadable.is_empty();
    // The process ends here: skip freeing the whole database (a tenth of
    // the run time on large policies).
    std::mem::forget(report);
    Ok(if unreadable {
        Exit::Usage
    } else if errors > 0 || (args.deny_warnings && warnings > 0) {
        Exit::Failure
    } else {
        Exit::Success
    })
}

impl Report {
    /// Number of errors and of warnings.
    pub fn counts(&self) -> (usize, usize) {
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        (errors, self.diagnostics.len() - errors)
    }
}

/// The whole output of `pmf check` for `report` in `format`.
pub fn render(report: &Report, format: Format, style: HumanStyle) -> String {
    // Only the texts of the files a diagnostic points into are read (a
    // clean check of a large policy copies none).
    let named: std::collections::HashSet<&str> = report
        .diagnostics
        .iter()
        .flat_map(|d| std::iter::once(&d.primary).chain(&d.labels))
        .map(|l| l.file.as_str())
        .collect();
    let mut sources = report.session.placed_texts_of(|path| named.contains(path));
    let mut extra = report.extra_sources.clone();
    extra.retain(|path| named.contains(path));
    sources.extend(extra);
    // Each file indexed once, for every diagnostic in it.
    let sources = render::IndexedSources::placed(sources);
    let diags = &report.diagnostics;
    let mut out = String::new();
    match format {
        Format::Human => {
            // Each report is drawn on its own (miette's drawing is most of
            // the time), on every core, and printed in order.
            use rayon::prelude::*;
            let drawn: Vec<String> = diags
                .par_iter()
                .map(|d| render::human(d, &sources, style))
                .collect();
            for d in drawn {
                out.push_str(&d);
                out.push('\n');
            }
            let in_stdlib = diags.iter().any(|d| {
                std::iter::once(&d.primary)
                    .chain(&d.labels)
                    .any(|l| l.file == crate::stdlib::KWANUS_PATH)
            });
            if in_stdlib {
                out.push_str(super::stdlib::NOTE);
                out.push('\n');
            }
            let (errors, warnings) = report.counts();
            out.push_str(&summary(report.files, errors, warnings));
            out.push('\n');
        }
        Format::Json => {
            let doc = render::json_report(report.files, diags, &sources);
            // Serialising plain data to a String cannot fail.
            out.push_str(&serde_json::to_string_pretty(&doc).unwrap_or_default());
            out.push('\n');
        }
        Format::Github => {
            for d in diags {
                out.push_str(&render::github(d, &sources));
                out.push('\n');
            }
        }
        Format::Sarif => {
            let doc = render::sarif(diags, &sources);
            out.push_str(&serde_json::to_string_pretty(&doc).unwrap_or_default());
            out.push('\n');
        }
        Format::Junit => out.push_str(&render::junit(&report.paths, diags, &sources)),
    }
    out
}

/// `checked N files: E errors, W warnings`.
pub fn summary(files: usize, errors: usize, warnings: usize) -> String {
    let plural = |n: usize, what: &str| super::view::counted(n as u64, what);
    if errors == 0 && warnings == 0 {
        format!("checked {}: no problems", plural(files, "file"))
    } else {
        format!(
            "checked {}: {}, {}",
            plural(files, "file"),
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&w: &usize| w >= 40)
        .unwrap_or(100)
}
