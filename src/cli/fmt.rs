//! `pmf fmt [PATHS] [--check] [--diff]`: one canonical layout.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Exit, OutputFormat, files};
use crate::fmt::format;

/// Arguments of `pmf fmt`.
#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Files or directories (recursively `*.pmf`); default `.`.
    pub paths: Vec<PathBuf>,
    /// Change nothing; exit 1 and list the files that would change.
    #[arg(long)]
    pub check: bool,
    /// Change nothing; print a unified diff of what would change (exit 1 if any).
    #[arg(long)]
    pub diff: bool,
    /// Output format (`json`: the files that changed, or would change under
    /// `--check`, as one document; not with `--diff`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human, conflicts_with = "diff")]
    pub format: OutputFormat,
}

/// Run `pmf fmt`.
pub fn run(args: &FmtArgs) -> Result<Exit, CliError> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let found = files::collect(&paths)?;
    let mut changed = Vec::new();
    for path in &found {
        let text = files::read_text(path)?;
        let formatted = format(&text);
        if formatted == text {
            continue;
        }
        changed.push(path.display().to_string());
        if args.diff {
            let name = path.display().to_string();
            let diff = similar::TextDiff::from_lines(&text, &formatted)
                .unified_diff()
                .context_radius(2)
                .header(&name, &name)
                .to_string();
            // The policy's text as a report shows it: a character a terminal
            // would obey (an escape sequence in a pull request's file) is
            // shown as `?`, never obeyed in a CI log.
            out!("{}", crate::diagnostics::render::shown_text(&diff));
        } else if !args.check {
            files::write_text(path, &formatted)?;
        }
    }
    if args.format == OutputFormat::Json {
        super::print_json(&serde_json::json!({
            "format_version": 1,
            "files": found.len(),
            "changed": changed,
            "written": !args.check,
        }));
        return Ok(if args.check && !changed.is_empty() {
            Exit::Failure
        } else {
            Exit::Success
        });
    }
    if args.check || args.diff {
        for c in &changed {
            if args.check {
                outln!("{c}");
            }
        }
        if !changed.is_empty() {
            errln!(
                "pmf: {} of {} files are not formatted; run `pmf fmt`",
                changed.len(),
                found.len()
            );
            return Ok(Exit::Failure);
        }
        return Ok(Exit::Success);
    }
    outln!("formatted {} of {} files", changed.len(), found.len());
    Ok(Exit::Success)
}
