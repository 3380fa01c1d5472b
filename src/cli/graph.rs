//! `pmf graph FILES --format dot|mermaid|json`: the compiled phase graph.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{Exit, UsageError, policy};
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
    /// The policy file and the files of its parents.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

/// Run `pmf graph`.
pub fn run(args: &GraphArgs) -> Result<Exit, UsageError> {
    let policy = match policy::load(&args.files) {
        Ok(p) => p,
        Err(f) => return f.exit(),
    };
    let g = &policy.graph;
    print!(
        "{}",
        match args.format {
            GraphFormat::Dot => render::dot(g),
            GraphFormat::Mermaid => render::mermaid(g),
            GraphFormat::Json => render::json(g),
        }
    );
    Ok(Exit::Success)
}
