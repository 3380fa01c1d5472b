//! `pmf completions SHELL`: a completion script for bash, zsh, fish,
//! elvish or PowerShell, made from the command line's own definition.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, CliError, Exit};

/// Arguments of `pmf completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Run `pmf completions`: the script on standard output, to be sourced or
/// saved where the shell looks (see docs/cli.md).
pub fn run(args: &CompletionsArgs) -> Result<Exit, CliError> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "pmf", &mut script);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed reader (`pmf completions bash | head`) is not an error.
    let _ = out.write_all(&script);
    let _ = out.flush();
    Ok(Exit::Success)
}
