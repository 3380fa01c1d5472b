//! `pmf graph FILES [--format dot|mermaid|json]`: the compiled phase graph
//! (the policy named positionally or with `--policy`, as `pmf plan` names it).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{CliError, Exit, policy};
use crate::graph::render;

/// Graph formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// Mermaid (like the seed's diagrams).
    Mermaid,
    /// JSON.
    Json,
}

/// Arguments of `pmf graph`.
#[derive(Args, Debug)]
pub struct GraphArgs {
    /// The policy file and the files of its parents (or `--policy`).
    #[arg(required_unless_present = "policy", value_name = "FILE|DIR|NAME")]
    pub files: Vec<PathBuf>,
    /// The policy, as every command names it: a file, a directory, or a
    /// policy's name among the files given. Repeatable.
    #[arg(long, num_args = 1.., value_name = "FILE|DIR|NAME")]
    pub policy: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

/// Run `pmf graph`.
pub fn run(args: &GraphArgs) -> Result<Exit, CliError> {
    let policy = match policy::load(&[args.files.as_slice(), args.policy.as_slice()].concat()) {
        Ok(p) => p,
        Err(f) => return f.exit(),
    };
    let g = &policy.graph;
    out!(
        "{}",
        match args.format {
            GraphFormat::Dot => render::dot(g),
            GraphFormat::Mermaid => render::mermaid(g),
            GraphFormat::Json => render::json(g),
        }
    );
    Ok(Exit::Success)
}
