//! `pmf state import|export|unlock`: partner states in the store.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::plan::input_failure;
use super::{Exit, UsageError, policy};
use crate::runtime::input::read_all_partners;
use crate::store::{DEFAULT_PATH, Store};

/// Arguments of `pmf state`.
#[derive(Args, Debug)]
pub struct StateArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: StateCommand,
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON array.
    Json,
    /// One partner per line.
    Ndjson,
}

/// State subcommands.
#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// Import partner states (JSON array or NDJSON), checked against the policy's schema.
    Import {
        /// The partner states.
        file: PathBuf,
        /// The policy files (for the schema).
        #[arg(long, num_args = 1.., required = true)]
        policy: Vec<PathBuf>,
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
    },
    /// Export every partner's current state.
    Export {
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
    },
    /// Clear the apply lock left by a process that died.
    Unlock {
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// Clear it even if its holder still runs.
        #[arg(long)]
        force: bool,
    },
}

/// Run `pmf state`.
pub fn run(args: &StateArgs) -> Result<Exit, UsageError> {
    match &args.command {
        StateCommand::Import {
            file,
            policy,
            store,
        } => {
            let policy = match policy::load(policy) {
                Ok(p) => p,
                Err(f) => return f.exit(),
            };
            let partners = match read_all_partners(&policy.schema, file) {
                Ok(p) => p,
                Err(e) => return input_failure(e),
            };
            let rows: Vec<(String, Option<String>, String)> = partners
                .iter()
                .map(|v| {
                    (
                        policy.id_of(v).to_string(),
                        policy.version_of(v).map(|v| v.to_string()),
                        v.to_json(&policy.schema).to_string(),
                    )
                })
                .collect();
            let mut store = Store::open(store).map_err(|e| UsageError(e.0))?;
            let n = store.import(&rows).map_err(|e| UsageError(e.0))?;
            println!("imported {n} partners into {}", store.path().display());
            Ok(Exit::Success)
        }
        StateCommand::Export { store, format } => {
            let store = Store::open_existing(store).map_err(|e| UsageError(e.0))?;
            let partners = store.partners().map_err(|e| UsageError(e.0))?;
            let states: Vec<serde_json::Value> = partners
                .iter()
                .map(|p| serde_json::from_str(&p.state).unwrap_or(serde_json::Value::Null))
                .collect();
            match format {
                ExportFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&states).unwrap_or_default()
                ),
                ExportFormat::Ndjson => {
                    for s in states {
                        println!("{s}");
                    }
                }
            }
            Ok(Exit::Success)
        }
        StateCommand::Unlock { store, force } => {
            let store = Store::open_existing(store).map_err(|e| UsageError(e.0))?;
            match store.lock_holder("apply").map_err(|e| UsageError(e.0))? {
                None => println!("the store is not locked"),
                Some(h) if !h.is_dead() && !force => {
                    return Err(UsageError(format!(
                        "the lock is held by pid {} on {} since {}, which is still running (or on another host); pass --force to clear it anyway",
                        h.pid, h.host, h.started_at
                    )));
                }
                Some(_) => {
                    if let Some(h) = store.clear_lock("apply").map_err(|e| UsageError(e.0))? {
                        println!(
                            "cleared the lock of pid {} on {} (since {})",
                            h.pid, h.host, h.started_at
                        );
                    }
                }
            }
            Ok(Exit::Success)
        }
    }
}
