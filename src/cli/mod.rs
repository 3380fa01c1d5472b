//! The `pmf` command line: one file per command.
//!
//! Exit codes: 0 success; 1 the policy (or input) has errors; 2 usage or I/O
//! problem. Nothing here exits 101: panics are caught in `main`.

pub mod apply;
pub mod approve;
pub mod check;
pub mod completions;
pub mod doc;
pub mod explain;
pub mod files;
pub mod fmt;
pub mod graph;
pub mod init;
pub mod keygen;
pub mod lineage;
pub mod lsp;
pub mod plan;
pub mod plan_diff;
pub mod plan_show;
pub mod policy;
pub mod review;
pub mod rollback;
pub mod schema;
pub mod state;
pub mod status;
pub mod stdlib;
pub mod test;
pub mod view;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit status of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything fine.
    Success = 0,
    /// The user's policy or input has errors.
    Failure = 1,
    /// Usage or I/O problem.
    Usage = 2,
    /// `apply`: done, but some partner fell back or was restricted.
    Attention = 3,
    /// `apply`: some partner is still pending (awaits review or approvals,
    /// or is throttled).
    Pending = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// A usage or I/O problem, reported with exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// PMF: policy-as-code for governed partner migrations.
#[derive(Parser, Debug)]
#[command(name = "pmf", version, about, propagate_version = true)]
pub struct Cli {
    /// When to use colour in human output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `--format` of every command that reports something: text for
/// people, or one JSON document with a `format_version` (NDJSON where a
/// command streams, as `apply` does). Commands with more formats (`check`,
/// `test`, `graph`, `plan show`) have enums of their own with these two
/// among them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Human,
    /// For machines.
    Json,
}

/// Print `doc` as the one JSON document of a command's `--format json`.
pub fn print_json(doc: &serde_json::Value) {
    // Serialising a JSON value to a String cannot fail.
    println!("{}", serde_json::to_string_pretty(doc).unwrap_or_default());
}

/// Colour choice for human output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal unless `NO_COLOR` is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether stdout gets colour.
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        }
    }
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check policy files and report diagnostics.
    Check(check::CheckArgs),
    /// Explain a diagnostic code, or list them all.
    Explain(explain::ExplainArgs),
    /// Format policies in the one canonical layout.
    Fmt(fmt::FmtArgs),
    /// Draw the compiled phase graph (dot, mermaid or json).
    Graph(graph::GraphArgs),
    /// Write the policy as a document (HTML and Markdown) for a governance board.
    Doc(doc::DocArgs),
    /// Run the `test` declarations of policies, with coverage.
    Test(test::TestArgs),
    /// Predict every partner's migration into a plan file; `plan show`
    /// and `plan diff` read plans.
    Plan(plan::PlanArgs),
    /// Apply a plan: run each partner through the flow on the store.
    Apply(apply::ApplyArgs),
    /// Make an ed25519 key for an authority.
    Keygen(keygen::KeygenArgs),
    /// Sign a plan for an authority.
    Approve(approve::ApproveArgs),
    /// Show or verify the lineage.
    Lineage(lineage::LineageArgs),
    /// Roll a partner back to a previous stable version.
    Rollback(rollback::RollbackArgs),
    /// Import, export or unlock the store's partner states.
    State(state::StateArgs),
    /// Partners waiting for governance, and an authority's decision on them.
    Review(review::ReviewArgs),
    /// What a store holds: partners by status, pending, plans, checkpoint, lock.
    Status(status::StatusArgs),
    /// The JSON Schema of an input file of `pmf plan`, from a policy.
    Schema(schema::SchemaArgs),
    /// Print the embedded standard library (`policy kwanus`).
    Stdlib(stdlib::StdlibArgs),
    /// Run the language server (LSP over stdio).
    Lsp(lsp::LspArgs),
    /// Start a project: pmf.toml, a policy, its tests and example inputs.
    Init(init::InitArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
}

/// Parse the arguments and run the command.
pub fn run(args: Vec<std::ffi::OsString>) -> Exit {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Exit::Success,
                _ => Exit::Usage,
            };
        }
    };
    let result = match &cli.command {
        Command::Check(args) => check::run(args, cli.color.enabled()),
        Command::Explain(args) => explain::run(args),
        Command::Fmt(args) => fmt::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Doc(args) => doc::run(args),
        Command::Test(args) => test::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Approve(args) => approve::run(args),
        Command::Lineage(args) => lineage::run(args),
        Command::Rollback(args) => rollback::run(args),
        Command::State(args) => state::run(args),
        Command::Review(args) => review::run(args),
        Command::Status(args) => status::run(args),
        Command::Stdlib(args) => stdlib::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Lsp(args) => lsp::run(args),
        Command::Init(args) => init::run(args),
        Command::Completions(args) => completions::run(args),
    };
    match result {
        Ok(exit) => exit,
        Err(UsageError(msg)) => {
            eprintln!("pmf: {msg}");
            Exit::Usage
        }
    }
}
