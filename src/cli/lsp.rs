//! `pmf lsp`: run the language server over stdio.

use clap::Args;

use super::{CliError, Exit, UsageError};
use crate::lsp::{self, Ending};

/// Arguments of `pmf lsp`.
#[derive(Args, Debug)]
pub struct LspArgs {
    /// Speak LSP over stdin/stdout (the only transport; accepted because
    /// clients such as VS Code pass it).
    #[arg(long)]
    pub stdio: bool,
}

/// Run `pmf lsp`: exit code 0 after `shutdown` and `exit`, 1 otherwise.
pub fn run(_args: &LspArgs) -> Result<Exit, CliError> {
    match lsp::run_stdio() {
        Ok(Ending::Clean) => Ok(Exit::Success),
        Ok(Ending::Abrupt) => Ok(Exit::Failure),
        Err(e) => Err(UsageError(format!("lsp: {e}")).into()),
    }
}
