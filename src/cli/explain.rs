//! `pmf explain CODE` / `pmf explain --list`: the documentation of codes.

use clap::Args;

use super::{CliError, Exit, OutputFormat, UsageError};
use crate::diagnostics::{Code, closest};

/// Arguments of `pmf explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The code, such as `PMF303`.
    #[arg(required_unless_present = "list")]
    pub code: Option<String>,
    /// List every code with its summary.
    #[arg(long)]
    pub list: bool,
    /// Output format (`json`: the code's severity, family, summary, title
    /// and page as one document).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// A code's facts as `--format json` gives them.
fn code_json(c: Code) -> serde_json::Value {
    serde_json::json!({
        "code": c.id(),
        "severity": c.default_severity().as_str(),
        "family": c.family(),
        "summary": c.summary(),
    })
}

/// The title of a code's page: its first line without the `# `.
fn title(page: &str) -> &str {
    page.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches('#')
        .trim()
}

/// Run `pmf explain`.
pub fn run(args: &ExplainArgs) -> Result<Exit, CliError> {
    if args.list {
        if args.format == OutputFormat::Json {
            super::print_json(&serde_json::json!({
                "format_version": 1,
                "codes": Code::ALL.iter().map(|c| code_json(*c)).collect::<Vec<_>>(),
            }));
            return Ok(Exit::Success);
        }
        for c in Code::ALL {
            outln!(
                "{}  {:<8} {:<12} {}",
                c.id(),
                c.default_severity().as_str(),
                c.family(),
                c.summary()
            );
        }
        return Ok(Exit::Success);
    }
    let id = args.code.as_deref().unwrap_or_default();
    match Code::from_id(id) {
        Some(code) if args.format == OutputFormat::Json => {
            let mut doc = code_json(code);
            if let Some(fields) = doc.as_object_mut() {
                fields.insert("format_version".into(), 1.into());
                fields.insert("title".into(), title(code.page()).into());
                fields.insert("text".into(), code.page().into());
            }
            super::print_json(&doc);
            Ok(Exit::Success)
        }
        Some(code) => {
            out!("{}", code.page());
            Ok(Exit::Success)
        }
        None => {
            let hint = closest(&id.to_ascii_uppercase(), Code::ALL.iter().map(|c| c.id()))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_else(|| "; `pmf explain --list` lists every code".into());
            Err(UsageError(format!("unknown diagnostic code `{id}`{hint}")).into())
        }
    }
}
