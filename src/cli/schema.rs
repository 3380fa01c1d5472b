//! `pmf schema KIND --policy FILES`: the JSON Schema of an input file of
//! `pmf plan` (partners, target, observed), made from the policy's partner
//! schema, for editors and CI validation.

use std::path::PathBuf;

use clap::Args;

use super::{Exit, UsageError, policy};
use crate::runtime::schema::{InputKind, input_schema};

/// Arguments of `pmf schema`.
#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Which input file.
    #[arg(value_enum)]
    pub kind: InputKind,
    /// The policy: its file and the files of its parents, directories, or a
    /// policy's name among them (repeatable).
    #[arg(long, required = true, num_args = 1.., value_name = "FILE|DIR|NAME")]
    pub policy: Vec<PathBuf>,
    /// Write the schema to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Run `pmf schema`.
pub fn run(args: &SchemaArgs) -> Result<Exit, UsageError> {
    let policy = match policy::load(&args.policy) {
        Ok(p) => p,
        Err(f) => return f.exit(),
    };
    let schema = input_schema(&policy.name, &policy.schema, args.kind);
    let text = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
    match &args.output {
        None => print!("{text}"),
        Some(path) => super::files::write_text(path, &text)?,
    }
    Ok(Exit::Success)
}
