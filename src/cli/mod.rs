//! The `pmf` command line: one file per command.
//!
//! Exit codes: 0 success; 1 the policy (or input) has errors; 2 usage or I/O
//! problem (the store's too). A command's error keeps its type ([`CliError`])
//! up to [`run`], where one mapping (`impl From<&CliError> for Exit`) gives
//! its exit code. Nothing here exits 101: panics are caught in `main`.

/// `print!` to stdout through [`output`]: a failed write is reported when
/// the command ends, never a panic.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::print(format_args!($($arg)*))
    };
}

/// `eprint!` that never panics: see [`output`].
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::cli::output::print_err(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: see [`output`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::print_err_line(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `println!` to stdout through [`output`].
macro_rules! outln {
    () => {
        $crate::cli::output::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::print_line(format_args!("{}\n", format_args!($($arg)*)))
    };
}

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
pub mod interrupt;
pub mod keygen;
pub mod keys;
pub mod lineage;
pub mod lsp;
pub mod output;
pub mod plan;
pub mod plan_diff;
pub mod plan_show;
pub mod policy;
pub mod refusal;
pub mod rekey;
pub mod replace;
pub mod review;
pub mod rollback;
pub mod schema;
pub mod state;
pub mod status;
pub mod stdlib;
pub mod test;
pub mod trust;
pub mod view;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::runtime::apply::ApplyError;
use crate::runtime::engine::NotRunnable;
use crate::runtime::input::InputError;
use crate::runtime::load::LoadError;
use crate::runtime::plan::PlanError;
use crate::runtime::plan_view::PlanReadError;
use crate::store::StoreError;
use crate::store::lock::LockError;

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
    /// Stopped by Ctrl-C or SIGTERM where what was done is whole (see
    /// [`interrupt`]): 128 + SIGINT, as shells report it.
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// A usage or I/O problem, reported with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Why a command failed. Each variant keeps the error it was raised with,
/// so that its kind, not the command, decides the exit code: [`run`]
/// prints `pmf: MESSAGE` and exits with `Exit::from(&error)`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A usage or I/O problem of the command itself.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The store failed, or its file is damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store's lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// An input file cannot be read (a file with bad records is reported
    /// record by record by [`plan::input_failure`]).
    #[error(transparent)]
    Input(#[from] InputError),
    /// Planning failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A plan file cannot be read.
    #[error(transparent)]
    PlanRead(#[from] PlanReadError),
    /// Apply refused to run.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// No policy to run could be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A policy file checked but cannot run.
    #[error("{file}: {source}")]
    NotRunnable {
        /// The file.
        file: String,
        /// Why.
        source: NotRunnable,
    },
    /// Applying stopped partway through (what was committed is kept).
    #[error(
        "the store `{}` failed: {source}; what was committed is kept, and running this apply again resumes where it stopped",
        store.display()
    )]
    Interrupted {
        /// The store.
        store: PathBuf,
        /// What failed.
        source: ApplyError,
    },
    /// An error and what it meant for the command (`nothing was applied`).
    #[error("{source}; {then}")]
    Then {
        /// The error.
        source: Box<CliError>,
        /// What was (not) done.
        then: &'static str,
    },
}

impl CliError {
    /// This error, followed by what it meant for the command.
    pub fn then(self, then: &'static str) -> CliError {
        CliError::Then {
            source: Box::new(self),
            then,
        }
    }
}

/// The exit code of a command that failed with `e`: the one mapping from
/// an error's kind to an exit code (the `From` impls below are its parts,
/// for the commands that print an exit-1 error themselves).
impl From<&CliError> for Exit {
    fn from(e: &CliError) -> Exit {
        match e {
            CliError::Usage(_)
            | CliError::Store(_)
            | CliError::Lock(_)
            | CliError::PlanRead(_)
            | CliError::NotRunnable { .. }
            | CliError::Interrupted { .. } => Exit::Usage,
            CliError::Input(e) | CliError::Plan(PlanError::Input(e)) => e.into(),
            CliError::Plan(PlanError::Io(_)) => Exit::Usage,
            CliError::Plan(PlanError::Stopped) => Exit::Interrupted,
            CliError::Apply(e) => e.into(),
            CliError::Load(e) => e.into(),
            CliError::Then { source, .. } => (&**source).into(),
        }
    }
}

/// A bad record is the user's (exit 1); an unreadable file is I/O (exit 2).
impl From<&InputError> for Exit {
    fn from(e: &InputError) -> Exit {
        match e {
            InputError::Io(_) => Exit::Usage,
            InputError::Invalid { .. } | InputError::Many { .. } => Exit::Failure,
        }
    }
}

/// A stale plan or a partner with no state is the user's (exit 1); the
/// store's failure is exit 2.
impl From<&ApplyError> for Exit {
    fn from(e: &ApplyError) -> Exit {
        match e {
            ApplyError::Stale(_) | ApplyError::Input(_) => Exit::Failure,
            ApplyError::Store(_) => Exit::Usage,
        }
    }
}

/// A policy with errors is exit 1; no policy to run is a usage problem.
impl From<&LoadError> for Exit {
    fn from(e: &LoadError) -> Exit {
        match e {
            LoadError::Invalid { .. } => Exit::Failure,
            LoadError::Usage(_) | LoadError::NotRunnable(_) => Exit::Usage,
        }
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
    outln!("{}", serde_json::to_string_pretty(doc).unwrap_or_default());
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
    /// Import, export or unlock the store's partner states; rekey its operator key.
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
    let exit = match result {
        Ok(exit) => exit,
        Err(e) => {
            errln!("pmf: {e}");
            Exit::from(&e)
        }
    };
    // The store is as sound without it, but a rollback behind what the key
    // signed here would go unseen: say so.
    if let Some(why) = crate::store::key_memory::unkept() {
        errln!(
            "pmf: warning: the operator key cannot remember the checkpoint it signed ({why}): a store rolled back behind it would not be seen"
        );
    }
    // A report that did not reach its reader is no success (an error the
    // command reported keeps its exit code).
    match output::failure() {
        Some(e) => {
            errln!("pmf: cannot write the output: {e}");
            match exit {
                Exit::Success | Exit::Pending | Exit::Attention => Exit::Usage,
                other => other,
            }
        }
        None => exit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(e: impl Into<CliError>) -> Exit {
        Exit::from(&e.into())
    }

    fn invalid() -> InputError {
        InputError::Invalid {
            file: "partners.ndjson".into(),
            at: "line 3".into(),
            partner: Some("p-1".into()),
            problem: "`score` is missing".into(),
        }
    }

    #[test]
    fn a_damaged_store_is_exit_2_with_the_stores_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
        let Err(e) = crate::store::Store::open_existing(&path) else {
            panic!("a file of garbage opened as a store")
        };
        let message = e.to_string();
        let e = CliError::from(e);
        assert!(matches!(&e, CliError::Store(s) if s.is_damaged()), "{e:?}");
        assert_eq!(e.to_string(), message);
        assert!(
            message.starts_with("the store file is damaged ("),
            "{message}"
        );
        assert_eq!(Exit::from(&e), Exit::Usage);
    }

    #[test]
    fn a_held_lock_is_exit_2_and_keeps_its_kind_under_what_it_meant() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let _held = crate::store::lock::lock(&path, "apply").unwrap();
        let Err(e) = crate::store::lock::lock(&path, "review") else {
            panic!("the lock was taken twice")
        };
        let e = CliError::from(e).then("nothing was decided");
        let CliError::Then { source, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(
            matches!(**source, CliError::Lock(LockError::Held(_))),
            "{e:?}"
        );
        let message = e.to_string();
        assert!(
            message.starts_with("the store is in use by `pmf apply` (pid ")
                && message.ends_with("; nothing was decided"),
            "{message}"
        );
        assert_eq!(Exit::from(&e), Exit::Usage);
    }

    #[test]
    fn each_kind_has_its_exit_code() {
        // The user's input or policy: exit 1.
        assert_eq!(exit(invalid()), Exit::Failure);
        assert_eq!(exit(PlanError::Input(invalid())), Exit::Failure);
        assert_eq!(
            exit(ApplyError::Stale(vec!["the policy changed".into()])),
            Exit::Failure
        );
        assert_eq!(exit(ApplyError::Input("no state".into())), Exit::Failure);
        let diagnostics = Vec::new();
        let sources = Default::default();
        assert_eq!(
            exit(LoadError::Invalid {
                diagnostics,
                sources
            }),
            Exit::Failure
        );
        // Usage, I/O and the store: exit 2.
        assert_eq!(exit(UsageError("no such file".into())), Exit::Usage);
        assert_eq!(exit(InputError::Io("cannot read `x`".into())), Exit::Usage);
        assert_eq!(
            exit(PlanError::Io("cannot write `plan.json`".into())),
            Exit::Usage
        );
        assert_eq!(exit(PlanReadError("not a plan".into())), Exit::Usage);
        assert_eq!(
            exit(LoadError::Usage("name the policy".into())),
            Exit::Usage
        );
        assert_eq!(
            exit(LoadError::from(NotRunnable("no flow".into()))),
            Exit::Usage
        );
        let store = || StoreError::NoId;
        assert_eq!(exit(store()), Exit::Usage);
        assert_eq!(exit(ApplyError::from(store())), Exit::Usage);
        assert_eq!(exit(LockError::from(store())), Exit::Usage);
        // Apply interrupted partway: the store's problem, whatever stopped it.
        let interrupted = CliError::Interrupted {
            store: PathBuf::from(".pmf/state.db"),
            source: ApplyError::Input("stored state of partner `p-1` does not fit".into()),
        };
        assert_eq!(Exit::from(&interrupted), Exit::Usage);
        // What an error meant for the command never changes its kind.
        assert_eq!(
            Exit::from(&CliError::from(invalid()).then("nothing was imported")),
            Exit::Failure
        );
    }

    #[test]
    fn messages_pass_through_unchanged() {
        assert_eq!(CliError::from(invalid()).to_string(), invalid().to_string());
        assert_eq!(
            invalid().to_string(),
            "partners.ndjson, line 3, partner `p-1`: `score` is missing"
        );
        assert_eq!(
            CliError::from(ApplyError::from(StoreError::NoId)).to_string(),
            "the store has no id (edited outside pmf)"
        );
        let interrupted = CliError::Interrupted {
            store: PathBuf::from(".pmf/state.db"),
            source: ApplyError::from(StoreError::NoId),
        };
        assert_eq!(
            interrupted.to_string(),
            "the store `.pmf/state.db` failed: the store has no id (edited outside pmf); what was committed is kept, and running this apply again resumes where it stopped"
        );
        let not_runnable = CliError::NotRunnable {
            file: "a.pmf".into(),
            source: NotRunnable("cannot compile the health score".into()),
        };
        assert_eq!(
            not_runnable.to_string(),
            "a.pmf: cannot compile the health score"
        );
    }
}
