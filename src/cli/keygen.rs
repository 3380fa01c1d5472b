//! `pmf keygen --authority NAME -o FILE`: an ed25519 key for an authority.
//! Nothing is registered: the key counts once its public half is declared
//! in the policy (`key NAME "ed25519:…"`), a change that goes through review.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Exit, OutputFormat, UsageError};
use crate::runtime::approvals;

/// Arguments of `pmf keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// The authority the key signs for, such as `TSC`.
    #[arg(long)]
    pub authority: String,
    /// Where to write the private key (mode 0600).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Output format (`json`: authority, key file, public key and the
    /// policy line that trusts it).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Run `pmf keygen`.
pub fn run(args: &KeygenArgs) -> Result<Exit, CliError> {
    if args.output.exists() {
        return Err(UsageError(format!(
            "`{}` exists; keygen never overwrites a key",
            args.output.display()
        ))
        .into());
    }
    let key = approvals::generate(&args.authority).map_err(UsageError)?;
    approvals::write_json(&args.output, &key, true).map_err(UsageError)?;
    let public_key = format!("ed25519:{}", key.public_key);
    let policy_line = format!("key {} \"{public_key}\"", args.authority);
    if args.format == OutputFormat::Json {
        super::print_json(&serde_json::json!({
            "format_version": 1,
            "authority": args.authority,
            "key_file": args.output.display().to_string(),
            "public_key": public_key,
            "policy_line": policy_line,
        }));
        return Ok(Exit::Success);
    }
    outln!(
        "private key for `{}` written to {} (keep it private; never commit it)",
        args.authority,
        args.output.display()
    );
    outln!("to trust it, add this line to the policy and have the change reviewed:");
    outln!();
    outln!("{policy_line}");
    Ok(Exit::Success)
}
