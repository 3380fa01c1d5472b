//! `pmf lineage show [PARTNER]` and `pmf lineage verify`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::plan::OutputFormat;
use super::{Exit, UsageError};
use crate::store::{DEFAULT_PATH, Store};

/// Arguments of `pmf lineage`.
#[derive(Args, Debug)]
pub struct LineageArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LineageCommand,
}

/// Lineage subcommands.
#[derive(Subcommand, Debug)]
pub enum LineageCommand {
    /// Show the lineage of one partner, or of all.
    Show {
        /// The partner (default: all).
        partner: Option<String>,
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
    },
    /// Recompute every hash; exit 1 naming the first broken event.
    Verify {
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
    },
}

/// Run `pmf lineage`.
pub fn run(args: &LineageArgs) -> Result<Exit, UsageError> {
    match &args.command {
        LineageCommand::Show {
            partner,
            store,
            format,
        } => {
            let store = Store::open_existing(store).map_err(|e| UsageError(e.0))?;
            let events = store
                .lineage(partner.as_deref())
                .map_err(|e| UsageError(e.0))?;
            if let Some(p) = partner
                && events.is_empty()
                && store.partner(p).map_err(|e| UsageError(e.0))?.is_none()
            {
                return Err(UsageError(format!("no partner `{p}` in the store")));
            }
            match format {
                OutputFormat::Json => {
                    let doc = serde_json::json!({"format_version": 1, "events": events});
                    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                }
                OutputFormat::Human => {
                    for e in &events {
                        let ev = &e.event;
                        let mut line = format!(
                            "#{:<5} {:<12} {:>3} {:<16} {:<14}",
                            e.global_seq,
                            ev.partner,
                            ev.seq,
                            ev.kind,
                            ev.phase.clone().unwrap_or_default()
                        );
                        if let (Some(f), Some(t)) = (&ev.from, &ev.to) {
                            line.push_str(&format!(" {f} → {t}"));
                        }
                        if let Some(t) = &ev.migration {
                            line.push_str(&format!(" [{t}]"));
                        }
                        if let Some(o) = &ev.outcome {
                            line.push_str(&format!(" {o}"));
                        }
                        if let Some(h) = ev.health {
                            line.push_str(&format!(
                                " health {h} {}",
                                ev.band.clone().unwrap_or_default()
                            ));
                        }
                        if let Some(r) = &ev.rite {
                            line.push_str(&format!(" “{r}”"));
                        }
                        if let Some(d) = &ev.detail {
                            line.push_str(&format!(" — {d}"));
                        }
                        println!("{}", line.trim_end());
                    }
                    println!("{} events", events.len());
                }
            }
            Ok(Exit::Success)
        }
        LineageCommand::Verify { store, format } => {
            let store = Store::open_existing(store).map_err(|e| UsageError(e.0))?;
            let v = store.verify().map_err(|e| UsageError(e.0))?;
            match format {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::json!({"format_version": 1, "intact": v.broken.is_none(), "events": v.events, "partners": v.partners, "broken": v.broken})
                ),
                OutputFormat::Human => match &v.broken {
                    None => println!(
                        "lineage intact: {} events across {} partners",
                        v.events, v.partners
                    ),
                    Some(b) => {
                        let who = match (&b.partner, b.seq) {
                            (Some(p), Some(s)) => format!(" (partner `{p}`, event {s})"),
                            _ => String::new(),
                        };
                        println!(
                            "lineage broken at event #{}{who}: {}",
                            b.global_seq, b.reason
                        );
                    }
                },
            }
            Ok(if v.broken.is_none() {
                Exit::Success
            } else {
                Exit::Failure
            })
        }
    }
}
