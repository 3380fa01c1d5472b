//! `pmf stdlib`: the embedded standard library (`policy kwanus`), which
//! `extends kwanus` reads and diagnostics name `<stdlib>/kwanus.pmf`.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Exit};
use crate::stdlib::KWANUS_SOURCE;

/// Arguments of `pmf stdlib`.
#[derive(Args, Debug)]
pub struct StdlibArgs {
    /// Write it to this file instead of standard output (replaced whole,
    /// never half-written).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Run `pmf stdlib`.
pub fn run(args: &StdlibArgs) -> Result<Exit, CliError> {
    match &args.output {
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed reader (`pmf stdlib | head`) is not an error.
            let _ = out.write_all(KWANUS_SOURCE.as_bytes());
            let _ = out.flush();
        }
        Some(path) => super::files::write_text(path, KWANUS_SOURCE)?,
    }
    Ok(Exit::Success)
}

/// The note printed after human diagnostics that point into the standard
/// library: how to read it.
pub const NOTE: &str = "note: `<stdlib>/kwanus.pmf` is the standard library built into pmf; \
                        `pmf stdlib` prints it";
