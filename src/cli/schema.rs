//! `pmf schema KIND --policy FILES`: the JSON Schema of an input file of
//! `pmf plan` (partners, target, observed), made from the policy's partner
//! schema, for editors and CI validation.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Exit, policy};
use crate::runtime::schema::{InputKind, input_schema};

/// Arguments of `pmf schema`.
#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Which input file.
    #[arg(value_enum)]
    pub kind: InputArg,
    /// The policy: its file and the files of its parents, directories, or a
    /// policy's name among them (repeatable).
    #[arg(long, required = true, num_args = 1.., value_name = "FILE|DIR|NAME")]
    pub policy: Vec<PathBuf>,
    /// Write the schema to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// The input file named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InputArg {
    /// Partner states: a JSON array of records, or NDJSON (one per line).
    Partners,
    /// The target: a partial state for all, or `{"all": …, "partners": {"ID": …}}`.
    Target,
    /// Observed metrics: `{"ID": partial state}`, `null` for not measured.
    Observed,
}

impl From<InputArg> for InputKind {
    fn from(arg: InputArg) -> Self {
        match arg {
            InputArg::Partners => InputKind::Partners,
            InputArg::Target => InputKind::Target,
            InputArg::Observed => InputKind::Observed,
        }
    }
}

/// Run `pmf schema`.
pub fn run(args: &SchemaArgs) -> Result<Exit, CliError> {
    let policy = match policy::load(&args.policy) {
        Ok(p) => p,
        Err(f) => return f.exit(),
    };
    let schema = input_schema(&policy.name, &policy.schema, args.kind.into());
    let text = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
    match &args.output {
        None => out!("{text}"),
        Some(path) => super::files::write_text(path, &text)?,
    }
    Ok(Exit::Success)
}
