//! `pmf explain CODE` / `pmf explain --list`: the documentation of codes.

use clap::Args;

use super::{Exit, UsageError};
use crate::diagnostics::{Code, closest};

/// Arguments of `pmf explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The code, such as `PMF303`.
    #[arg(required_unless_present = "list")]
    pub code: Option<String>,
    /// List every code with its summary.
    #[arg(long)]
    pub list: bool,
}

/// Run `pmf explain`.
pub fn run(args: &ExplainArgs) -> Result<Exit, UsageError> {
    if args.list {
        for c in Code::ALL {
            println!(
                "{}  {:<8} {:<12} {}",
                c.id(),
                c.default_severity().as_str(),
                c.family(),
                c.summary()
            );
        }
        return Ok(Exit::Success);
    }
    let id = args.code.as_deref().unwrap_or_default();
    match Code::from_id(id) {
        Some(code) => {
            print!("{}", code.page());
            Ok(Exit::Success)
        }
        None => {
            let hint = closest(&id.to_ascii_uppercase(), Code::ALL.iter().map(|c| c.id()))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_else(|| "; `pmf explain --list` lists every code".into());
            Err(UsageError(format!("unknown diagnostic code `{id}`{hint}")))
        }
    }
}
