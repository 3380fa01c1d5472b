//! `pmf init [DIR] [--name NAME]`: start a project — `pmf.toml`, a policy
//! that extends the standard library, its tests, and example inputs of
//! `pmf plan` — that `pmf check --deny-warnings`, `pmf test` and `pmf plan`
//! accept as written. Nothing is ever overwritten: when any of the files
//! exists, none is written.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, Exit, OutputFormat, UsageError, files};

/// Arguments of `pmf init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// The project's directory (made if missing); default `.`.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The policy's name (default: the directory's name, made an identifier).
    #[arg(long)]
    pub name: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// The placeholder the templates hold where the policy's name goes.
const NAME_PLACEHOLDER: &str = "@NAME@";

/// The files of a new project: the file's name (`@NAME@` replaced) and its
/// template.
const TEMPLATES: [(&str, &str); 6] = [
    ("pmf.toml", include_str!("init/pmf.toml.tmpl")),
    ("@NAME@.pmf", include_str!("init/policy.pmf.tmpl")),
    ("@NAME@.test.pmf", include_str!("init/policy.test.pmf.tmpl")),
    ("partners.json", include_str!("init/partners.json.tmpl")),
    ("target.json", include_str!("init/target.json.tmpl")),
    ("observed.json", include_str!("init/observed.json.tmpl")),
];

/// `raw` made a policy name: ASCII letters, digits and `_`, lower case,
/// not starting with a digit (`My Fleet-2` → `my_fleet_2`, `2024` →
/// `p_2024`); `project` when nothing is left.
pub fn policy_name_from(raw: &str) -> String {
    let mut name = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    let name = name.trim_matches('_').to_string();
    match name.chars().next() {
        None => "project".to_string(),
        Some(c) if c.is_ascii_digit() => format!("p_{name}"),
        Some(_) => name,
    }
}

/// Whether `name` reads as a policy name: a letter or `_`, then letters,
/// digits and `_`.
fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The policy's name: `--name` as given (it must be an identifier), else
/// the directory's own name made one.
fn choose_name(args: &InitArgs) -> Result<String, UsageError> {
    if let Some(name) = &args.name {
        if !is_identifier(name) {
            return Err(UsageError(format!(
                "`{name}` cannot name a policy: use letters, digits and `_`, not starting with a digit (such as `{}`)",
                policy_name_from(name)
            )));
        }
        return Ok(name.clone());
    }
    // The real path when the directory exists (`pmf init .` is named after
    // the current directory, `a/..` after `a`'s parent).
    let resolved = std::fs::canonicalize(&args.dir)
        .or_else(|_| std::path::absolute(&args.dir))
        .unwrap_or_else(|_| args.dir.clone());
    let base = resolved
        .components()
        .rfind(|c| matches!(c, std::path::Component::Normal(_)))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(policy_name_from(&base))
}

/// The project's files for the policy `name`: file name → text.
fn project_files(name: &str) -> Vec<(String, String)> {
    TEMPLATES
        .iter()
        .map(|(file, text)| {
            (
                file.replace(NAME_PLACEHOLDER, name),
                text.replace(NAME_PLACEHOLDER, name),
            )
        })
        .collect()
}

/// Check the policy and its tests in memory before anything is written: a
/// name the language reserves (`policy`, `kwanus`…) would make a project
/// that does not check, and is refused.
fn check_scaffold(dir: &Path, name: &str, texts: &[(String, String)]) -> Result<(), UsageError> {
    let policies: Vec<(String, String)> = texts
        .iter()
        .filter(|(file, _)| file.ends_with(".pmf"))
        .map(|(file, text)| (dir.join(file).display().to_string(), text.clone()))
        .collect();
    let report = super::check::check_texts(policies);
    let (errors, warnings) = report.counts();
    if errors + warnings > 0 || name == "kwanus" {
        return Err(UsageError(format!(
            "`{name}` cannot name a policy here (it is a word of the language or the standard library's name); choose another with `--name`"
        )));
    }
    Ok(())
}

/// Run `pmf init`.
pub fn run(args: &InitArgs) -> Result<Exit, CliError> {
    let name = choose_name(args)?;
    let texts = project_files(&name);
    check_scaffold(&args.dir, &name, &texts)?;
    if args.dir.exists() && !args.dir.is_dir() {
        return Err(UsageError(format!(
            "`{}` is not a directory; nothing was written",
            args.dir.display()
        ))
        .into());
    }
    // Every file is looked at before any is written: all or nothing.
    let clashes: Vec<String> = texts
        .iter()
        .map(|(file, _)| args.dir.join(file))
        .filter(|path| path.symlink_metadata().is_ok())
        .map(|path| format!("`{}`", path.display()))
        .collect();
    if !clashes.is_empty() {
        return Err(UsageError(format!(
            "{} already {}; pmf init never overwrites a file, and nothing was written",
            clashes.join(", "),
            if clashes.len() == 1 {
                "exists"
            } else {
                "exist"
            }
        ))
        .into());
    }
    std::fs::create_dir_all(&args.dir).map_err(|e| {
        UsageError(format!(
            "cannot create `{}`: {}",
            args.dir.display(),
            files::io_reason(&e)
        ))
    })?;
    let mut written = Vec::new();
    for (file, text) in &texts {
        files::write_text(&args.dir.join(file), text)?;
        written.push(file.clone());
    }
    let policy_file = format!("{name}.pmf");
    let next = next_commands(&args.dir, &policy_file);
    match args.format {
        OutputFormat::Json => super::print_json(&serde_json::json!({
            "format_version": 1,
            "policy": name,
            "directory": args.dir.display().to_string(),
            "files": written,
            "next": next,
        })),
        OutputFormat::Human => {
            outln!("created project `{name}` in {}:", args.dir.display());
            for file in &written {
                outln!("  {file}");
            }
            outln!("next:");
            for command in &next {
                outln!("  {command}");
            }
        }
    }
    Ok(Exit::Success)
}

/// The commands to run next, from the current directory.
fn next_commands(dir: &Path, policy_file: &str) -> Vec<String> {
    let mut next = Vec::new();
    if dir != Path::new(".") {
        let shown = dir.display().to_string();
        let plain = shown
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+@:,".contains(c));
        next.push(if plain {
            format!("cd {shown}")
        } else {
            format!("cd '{}'", shown.replace('\'', "'\\''"))
        });
    }
    next.push("pmf check --deny-warnings".to_string());
    next.push("pmf test --coverage".to_string());
    next.push(format!(
        "pmf plan --policy {policy_file} --partners partners.json --target target.json --observed observed.json"
    ));
    next.push("pmf plan show plan.json".to_string());
    next
}
