//! `pmf doc FILES -o DIR`: the policy as a document for a governance board
//! (HTML with an inline SVG flow, and Markdown with `flow.svg`); the policy
//! named positionally or with `--policy`, as `pmf plan` names it.

use std::path::{Component, Path, PathBuf};

use clap::Args;

use super::{CliError, Exit, OutputFormat, UsageError, files};
use crate::db;
use crate::doc::{DocInput, SourceLink, flow_svg, html, markdown};

/// Arguments of `pmf doc`.
#[derive(Args, Debug)]
pub struct DocArgs {
    /// The policy file and the files of its parents (or `--policy`).
    #[arg(required_unless_present = "policy", value_name = "FILE|DIR|NAME")]
    pub files: Vec<PathBuf>,
    /// The policy, as every command names it: a file, a directory, or a
    /// policy's name among the files given. Repeatable.
    #[arg(long, num_args = 1.., value_name = "FILE|DIR|NAME")]
    pub policy: Vec<PathBuf>,
    /// The directory to write `index.html`, `policy.md` and `flow.svg` to.
    #[arg(short = 'o', long = "output", default_value = "policy-doc")]
    pub output: PathBuf,
    /// Output format (`json`: the policy documented and the files written).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// `to` relative to the directory `from` (both made absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let (from, to) = (resolved(from), resolved(to));
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in b.iter().skip(common) {
        out.push(c.as_os_str());
    }
    out
}

/// `path` as an absolute path without `.` or `..`: the real path when it
/// exists (symbolic links followed), else the absolute path with `..`
/// taken lexically (`-o ../doc` before the directory is made).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// What stands at `path` when it is something other than a regular file
/// (or nothing): a link, even to a file, is one.
fn not_a_document(path: &Path) -> Option<&'static str> {
    let kind = std::fs::symlink_metadata(path).ok()?.file_type();
    if kind.is_file() {
        None
    } else if kind.is_symlink() {
        Some("a symbolic link")
    } else if kind.is_dir() {
        Some("a directory")
    } else {
        Some("not a regular file")
    }
}

/// Run `pmf doc`.
pub fn run(args: &DocArgs) -> Result<Exit, CliError> {
    // Check first: a policy with errors gets no document.
    let loaded = match super::policy::load_checked(
        &[args.files.as_slice(), args.policy.as_slice()].concat(),
    ) {
        Ok(l) => l,
        Err(f) => return f.exit(),
    };
    let (policy, session, leaf) = (&loaded.policy, &loaded.report.session, loaded.leaf);
    let resolved = db::resolve(session.db(), session.workspace, leaf);
    let sources = session.placed_texts();
    let out_dir = args.output.clone();
    let link = |file: &str, line: usize| {
        if file == crate::stdlib::KWANUS_PATH {
            SourceLink {
                label: format!("kwanus (stdlib) line {line}"),
                href: None,
            }
        } else {
            let name = Path::new(file)
                .file_name()
                .map_or(file.to_string(), |n| n.to_string_lossy().into_owned());
            SourceLink {
                label: format!("{name}:{line}"),
                href: Some(format!(
                    "{}#L{line}",
                    relative(&out_dir, Path::new(file)).display()
                )),
            }
        }
    };
    let input = DocInput {
        policy: &resolved.policy,
        graph: &policy.graph,
        sources: &sources,
        link: &link,
        hash: &loaded.policy.hash,
    };
    std::fs::create_dir_all(&args.output).map_err(|e| {
        UsageError(format!(
            "cannot create `{}`: {}",
            args.output.display(),
            files::io_reason(&e)
        ))
    })?;
    let documents = [
        ("index.html", html(&input)),
        ("policy.md", markdown(&input)),
        ("flow.svg", flow_svg(&policy.graph)),
    ];
    // The names in the directory are pmf's, not the user's: what is there
    // under them is replaced only when it is a file. A link planted there
    // (a directory others can write to) would have a file anywhere
    // replaced, a pipe or a device written to; all are refused before any
    // document is written.
    for (name, _) in &documents {
        let path = args.output.join(name);
        if let Some(what) = not_a_document(&path) {
            return Err(UsageError(format!(
                "`{}` is {what}: `pmf doc` writes its own files into `{}` and replaces only files there; remove it, or choose another directory; nothing was written",
                path.display(),
                args.output.display()
            ))
            .into());
        }
    }
    for (name, text) in &documents {
        let path = args.output.join(name);
        files::write_text(&path, text)?;
    }
    if args.format == OutputFormat::Json {
        super::print_json(&serde_json::json!({
            "format_version": 1,
            "policy": policy.name,
            "policy_hash": loaded.policy.hash,
            "directory": args.output.display().to_string(),
            "files": documents.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        }));
        return Ok(Exit::Success);
    }
    outln!(
        "documented policy `{}` in {} (index.html, policy.md, flow.svg)",
        policy.name,
        args.output.display()
    );
    Ok(Exit::Success)
}
